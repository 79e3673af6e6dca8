/* cmd-import.c: `coffer import` (being written). */
#include "cmds.h"

#include <stdio.h>

static int run(struct cli *cli, int argc, char **argv)
{
	fprintf(stderr, "coffer import: not available yet\n");
	return EXIT_SOFTWARE;
}

const struct cli_cmd cmd_import = { "import", "", "(being written)", run };
