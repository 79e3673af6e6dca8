/* cmd-verify.c: `coffer verify` (being written). */
#include "cmds.h"

#include <stdio.h>

static int run(struct cli *cli, int argc, char **argv)
{
	fprintf(stderr, "coffer verify: not available yet\n");
	return EXIT_SOFTWARE;
}

const struct cli_cmd cmd_verify = { "verify", "", "(being written)", run };
