/*
 * cmd-store.c: `coffer init`.
 */
#include "cmds.h"

#include "engine/errors.h"

#include <stdio.h>

static int run_init(struct cli *cli, int argc, char **argv)
{
	char *pos[1];
	int n, rc;

	n = cli_parse(&cmd_init, argc, argv, NULL, NULL, NULL, NULL, pos, 0);
	if (n < 0)
		return n == -1 ? 0 : -n;
	rc = coffer_store_init(cli->store_path, cli->key_file, &cli->st);
	if (rc < 0)
		return cli_fail(rc);
	printf("created store %s\nkey file %s (mode 0600; keep it secret, see docs/security.md)\n",
	       coffer_store_path(cli->st), coffer_store_key_file_path(cli->st));
	return 0;
}

const struct cli_cmd cmd_init = {
	"init",
	"",
	"Creates a store at --store (mode 0700) and its secret key material in --key-file\n"
	"(mode 0600, default /etc/coffer/coffer.key, outside the store). Refuses to\n"
	"overwrite an existing store or key file. The key file's path is recorded in\n"
	"the store's coffer.conf.",
	run_init,
};
