/*
 * coffer.c: the `coffer` command: global options, then a subcommand.
 *
 *     coffer [--store DIR] [--key-file FILE] SUBCOMMAND [ARGS...]
 *
 * --store defaults to $COFFER_STORE, else /var/lib/coffer; --key-file to
 * $COFFER_KEY_FILE, else the path recorded in coffer.conf at init. Global
 * options go before the subcommand (git style). Every subcommand takes
 * --help. Exit codes: docs/exit-codes.md.
 */
#include "cmds.h"

#include "engine/crypto.h"
#include "engine/errors.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const struct cli_cmd *const commands[] = {
	&cmd_init,   &cmd_account, &cmd_deliver, &cmd_folders, &cmd_ls,
	&cmd_cat,    &cmd_import,  &cmd_export,  &cmd_verify,
	&cmd_snapshot, &cmd_restore, &cmd_policy, &cmd_worker, &cmd_purge,
	&cmd_audit, &cmd_report, &cmd_mount,  &cmd_umount,
	&cmd_passwd, &cmd_apppass, &cmd_totp, &cmd_auth, &cmd_checkpassword, &cmd_logins,
	&cmd_security, NULL,
};

static void usage(FILE *f)
{
	fprintf(f, "usage: coffer [--store DIR] [--key-file FILE] SUBCOMMAND [ARGS...]\n\n"
	           "Coffer keeps mail encrypted, compressed and indexed, with snapshots and\n"
	           "retention. Subcommands:\n");
	for (int i = 0; commands[i]; i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->usage);
	fprintf(f, "\nGlobal options:\n"
	           "  --store DIR      the store (default $COFFER_STORE, else /var/lib/coffer)\n"
	           "  --key-file FILE  the key file (default $COFFER_KEY_FILE, else the path\n"
	           "                   recorded at init)\n"
	           "  --version        print the version\n"
	           "Run 'coffer SUBCOMMAND --help' for a subcommand's options.\n"
	           "COFFER_NOW (ISO-8601 UTC or Unix seconds) overrides the current time; it is\n"
	           "a testing aid.\n");
}

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
			return -cli_usage_error(cmd->name, "unknown option, or option without its value: %s",
			                        argv[optind - 1]);
		if (handler) {
			int rc = handler(c, optarg, ctx);

			if (rc)
				return -rc;
		}
	}
	for (; optind < argc; optind++) {
		if (npos == max)
			return -cli_usage_error(cmd->name, "unexpected argument '%s'", argv[optind]);
		positional[npos++] = argv[optind];
	}
	return npos;
}

int main(int argc, char **argv)
{
	struct cli cli = { "coffer", NULL, NULL, NULL };
	struct rlimit no_core = { 0, 0 };
	int i = 1, rc;

	/* Key material must never reach a core file. */
	setrlimit(RLIMIT_CORE, &no_core);
	cli.store_path = getenv("COFFER_STORE");
	if (cli.store_path == NULL || !*cli.store_path)
		cli.store_path = COFFER_DEFAULT_STORE;
	cli.key_file = getenv("COFFER_KEY_FILE");
	if (cli.key_file && !*cli.key_file)
		cli.key_file = NULL;

	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--version")) {
			printf("coffer %s\n", COFFER_VERSION);
			return 0;
		} else if (!strncmp(a, "--store=", 8)) {
			cli.store_path = a + 8;
		} else if (!strcmp(a, "--store") && i + 1 < argc) {
			cli.store_path = argv[++i];
		} else if (!strncmp(a, "--key-file=", 11)) {
			cli.key_file = a + 11;
		} else if (!strcmp(a, "--key-file") && i + 1 < argc) {
			cli.key_file = argv[++i];
		} else {
			fprintf(stderr, "coffer: unknown or incomplete global option %s (see coffer --help)\n",
			        a);
			return EXIT_USAGE;
		}
		i++;
	}
	if (i == argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (coffer_crypto_init() < 0) {
		fprintf(stderr, "coffer: cannot initialise libsodium\n");
		return EXIT_SOFTWARE;
	}
	for (int c = 0; commands[c]; c++) {
		if (strcmp(commands[c]->name, argv[i]) == 0) {
			rc = commands[c]->run(&cli, argc - i, argv + i);
			coffer_store_close(&cli.st);
			if (fflush(stdout) != 0 && rc == 0) {
				fprintf(stderr, "coffer: cannot write the output\n");
				rc = EXIT_IOERR;
			}
			return rc;
		}
	}
	fprintf(stderr, "coffer: unknown subcommand '%s' (see coffer --help)\n", argv[i]);
	return EXIT_USAGE;
}
