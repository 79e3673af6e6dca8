/*
 * tap.c: see tap.h.
 */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tests_run;
static int tests_failed;
static char tmpdir[4096];

int ok_at(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tests_run++;
	printf("%sok %d - ", cond ? "" : "not ", tests_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tests_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void cleanup(void)
{
	char cmd[4200];

	if (tmpdir[0] && tests_failed == 0) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
}

const char *tap_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (tmpdir[0])
		return tmpdir;
	snprintf(tmpdir, sizeof tmpdir, "%s/coffer-test-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(99);
	}
	atexit(cleanup);
	return tmpdir;
}

int tap_done(void)
{
	printf("1..%d\n", tests_run);
	return tests_failed == 0 && tests_run > 0 ? 0 : 1;
}

int tap_skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	return 77;
}
