/*
 * front.c: `coffer` as installed is a small front end.
 *
 * `coffer deliver` runs once per message, started by the MTA, so its start-up
 * cost is part of every delivery. This front runs it directly and links only
 * what delivery needs (LMDB, zstd, libsodium): no libarchive with its
 * libxml2 and ICU, no OpenSSL, FUSE, libqrencode or libcrypt, whose dynamic
 * relocations cost more than a delivery's own CPU time. Where the toolchain
 * allows (not under sanitizers), tools/meson.build links it as a static PIE
 * against static LMDB, zstd and libsodium, so no dynamic loading is left at
 * all. Every other
 * subcommand, and --help and --version, is handed to coffer-full (the whole
 * command) with execv(), unchanged: same arguments, same environment, same
 * exit code.
 *
 * coffer-full is looked for next to this binary first (the build tree, or an
 * install that puts both in one directory), then in COFFER_LIBEXECDIR.
 */
#include "cmds.h"

#include "engine/crypto.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef COFFER_LIBEXECDIR
#define COFFER_LIBEXECDIR "/usr/local/libexec/coffer"
#endif

static void exec_full(char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(path, sizeof path, "%s/coffer-full", self);
			if (access(path, X_OK) == 0) {
				execv(path, argv);
			}
		}
	}
	snprintf(path, sizeof path, "%s/coffer-full", COFFER_LIBEXECDIR);
	execv(path, argv);
	fprintf(stderr, "coffer: cannot run %s: %s\n", path, strerror(errno));
	exit(EXIT_SOFTWARE);
}

int main(int argc, char **argv)
{
	struct cli cli = { "coffer", NULL, NULL, NULL };
	struct rlimit no_core = { 0, 0 };
	int i, rc;

	/* Key material must never reach a core file. */
	setrlimit(RLIMIT_CORE, &no_core);
	i = cli_globals(argc, argv, &cli);
	if (i <= 0 || i >= argc || strcmp(argv[i], "deliver") != 0)
		exec_full(argv); /* does not return */
	if (coffer_crypto_init() < 0) {
		fprintf(stderr, "coffer: cannot initialise libsodium\n");
		return EXIT_SOFTWARE;
	}
	rc = cmd_deliver.run(&cli, argc - i, argv + i);
	coffer_store_close(&cli.st);
	return rc;
}
