/* cmd-export.c: `coffer export` (being written). */
#include "cmds.h"

#include <stdio.h>

static int run(struct cli *cli, int argc, char **argv)
{
	fprintf(stderr, "coffer export: not available yet\n");
	return EXIT_SOFTWARE;
}

const struct cli_cmd cmd_export = { "export", "", "(being written)", run };
