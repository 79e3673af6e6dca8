/*
 * parse.c: option parsing shared by every subcommand (cmds.h cli_parse):
 * --help, --json where the command has it, and the command's own options,
 * in any order with its positional arguments.
 */
#include "cmds.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, const struct cli_opt *opts,
              int (*handler)(int opt, const char *arg, void *ctx), void *ctx, int *json_r,
              char **positional, int max)
{
	struct option lo[32];
	int n = 0, c, npos = 0;

	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	if (json_r) {
		*json_r = 0;
		lo[n++] = (struct option){ "json", no_argument, NULL, 'j' };
	}
	for (int i = 0; opts && opts[i].name && n < 30; i++)
		lo[n++] = (struct option){ opts[i].name, opts[i].has_arg, NULL, opts[i].val };
	lo[n] = (struct option){ NULL, 0, NULL, 0 };
	/* GNU getopt permutes: options may follow positionals; "--" ends them. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'h') {
			cli_print_help(cmd);
			return -1;
		}
		if (c == 'j' && json_r) {
			*json_r = 1;
			continue;
		}
		if (c == '?' || c == ':')
			return -cli_usage_error(cmd->name,
			                        "unknown option, or option without its value: %s",
			                        argv[optind - 1]);
		if (handler) {
			int rc = handler(c, optarg, ctx);

			if (rc)
				return -rc;
		}
	}
	for (; optind < argc; optind++) {
		if (npos == max)
			return -cli_usage_error(cmd->name, "unexpected argument '%s'",
			                        argv[optind]);
		positional[npos++] = argv[optind];
	}
	return npos;
}

int cli_globals(int argc, char **argv, struct cli *cli)
{
	int i = 1;

	cli->store_path = getenv("COFFER_STORE");
	if (cli->store_path == NULL || !*cli->store_path)
		cli->store_path = COFFER_DEFAULT_STORE;
	cli->key_file = getenv("COFFER_KEY_FILE");
	if (cli->key_file && !*cli->key_file)
		cli->key_file = NULL;
	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i];

		if (!strncmp(a, "--store=", 8))
			cli->store_path = a + 8;
		else if (!strcmp(a, "--store") && i + 1 < argc)
			cli->store_path = argv[++i];
		else if (!strncmp(a, "--key-file=", 11))
			cli->key_file = a + 11;
		else if (!strcmp(a, "--key-file") && i + 1 < argc)
			cli->key_file = argv[++i];
		else
			return -i; /* --help, --version, or an unknown option */
		i++;
	}
	return i;
}
