/*
 * test-log.c: engine/log: prefixes with and without journald, the
 * JOURNAL_STREAM device:inode check, COFFER_LOG_LEVEL, multi-line and
 * control-character handling, long messages, errno preserved.
 *
 * stderr is pointed at a file for each case and read back.
 */
#include "engine/errors.h"
#include "engine/log.h"
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *log_path;
static int saved_stderr = -1;

/* Points stderr at a fresh empty file. */
static void capture(void)
{
	int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
		abort();
	close(fd);
}

/* Returns what was written to stderr since capture() (malloc'd). */
static char *captured(void)
{
	FILE *f = fopen(log_path, "r");
	char *s;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0)
		abort();
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	if (s == NULL || fread(s, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	return s;
}

static int check(const char *want, const char *what)
{
	char *got = captured();
	int good = strcmp(got, want) == 0;

	ok(good, "%s", what);
	if (!good)
		tap_diag("want [%s] got [%s]", want, got);
	free(got);
	return good;
}

static void journal_on_stderr(void)
{
	struct stat st;
	char v[64];

	if (fstat(STDERR_FILENO, &st) < 0)
		abort();
	snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
}

int main(void)
{
	int level = 0, held;
	char *big, *want;

	if (asprintf(&log_path, "%s/stderr.log", tap_tmpdir()) < 0)
		return 1;
	saved_stderr = dup(STDERR_FILENO);

	/* level names */
	ok(coffer_log_level_parse("error", &level) == 0 && level == COFFER_LOG_ERROR,
	   "parse error");
	ok(coffer_log_level_parse("WARNING", &level) == 0 && level == COFFER_LOG_WARNING,
	   "parse WARNING (any case)");
	ok(coffer_log_level_parse("warn", &level) == 0 && level == COFFER_LOG_WARNING,
	   "parse warn");
	ok(coffer_log_level_parse("info", &level) == 0 && level == 6, "info is syslog 6");
	ok(coffer_log_level_parse("debug", &level) == 0 && level == 7, "debug is syslog 7");
	ok(coffer_log_level_parse("verbose", &level) == COFFER_EINVAL, "unknown level refused");
	ok(coffer_log_level_parse("", &level) == COFFER_EINVAL, "empty level refused");
	ok(coffer_log_level_parse(NULL, &level) == COFFER_EINVAL, "NULL level refused");
	ok(strcmp(coffer_log_level_name(COFFER_LOG_WARNING), "warning") == 0, "level name");

	/* plain stderr, default level info */
	unsetenv("JOURNAL_STREAM");
	unsetenv("COFFER_LOG_LEVEL");
	capture();
	coffer_log_reset();
	coffer_log(COFFER_LOG_INFO, "worker: snapshot: %d accounts", 3);
	coffer_log(COFFER_LOG_DEBUG, "not shown");
	coffer_log(COFFER_LOG_WARNING, "disk %s", "nearly full");
	coffer_log(COFFER_LOG_ERROR, "failed");
	check("coffer: info: worker: snapshot: 3 accounts\n"
	      "coffer: warning: disk nearly full\n"
	      "coffer: error: failed\n",
	      "plain prefixes; debug hidden at the default level");
	ok(coffer_log_enabled(COFFER_LOG_INFO) && !coffer_log_enabled(COFFER_LOG_DEBUG),
	   "enabled() follows the default level");

	/* journald: JOURNAL_STREAM names our stderr */
	capture();
	journal_on_stderr();
	coffer_log_reset();
	coffer_log(COFFER_LOG_INFO, "mount: ready");
	coffer_log(COFFER_LOG_ERROR, "mount: read failed");
	coffer_log(COFFER_LOG_WARNING, "two\nlines\n");
	check("<6>mount: ready\n<3>mount: read failed\n<4>two\n<4>lines\n",
	      "journald: <N> priorities, one per line");

	/* JOURNAL_STREAM inherited but stderr redirected elsewhere: plain. The
	 * file it names stays open, so the new file has another inode. */
	held = open(log_path, O_RDONLY);
	if (held < 0 || unlink(log_path) < 0)
		return 1;
	capture();
	coffer_log_reset();
	coffer_log(COFFER_LOG_INFO, "x");
	check("coffer: info: x\n", "JOURNAL_STREAM for another stream is ignored");
	close(held);
	setenv("JOURNAL_STREAM", "garbage", 1);
	capture();
	coffer_log_reset();
	coffer_log(COFFER_LOG_INFO, "x");
	check("coffer: info: x\n", "malformed JOURNAL_STREAM is ignored");
	unsetenv("JOURNAL_STREAM");

	/* COFFER_LOG_LEVEL */
	setenv("COFFER_LOG_LEVEL", "error", 1);
	capture();
	coffer_log_reset();
	coffer_log(COFFER_LOG_WARNING, "w");
	coffer_log(COFFER_LOG_INFO, "i");
	coffer_log(COFFER_LOG_ERROR, "e");
	check("coffer: error: e\n", "COFFER_LOG_LEVEL=error shows errors only");
	setenv("COFFER_LOG_LEVEL", "Debug", 1);
	capture();
	coffer_log_reset();
	coffer_log(COFFER_LOG_DEBUG, "d");
	check("coffer: debug: d\n", "COFFER_LOG_LEVEL=Debug shows debug");
	setenv("COFFER_LOG_LEVEL", "warning", 1);
	capture();
	coffer_log_reset();
	coffer_log(COFFER_LOG_INFO, "i");
	coffer_log(COFFER_LOG_WARNING, "w");
	check("coffer: warning: w\n", "COFFER_LOG_LEVEL=warning hides info");
	setenv("COFFER_LOG_LEVEL", "loud", 1);
	capture();
	coffer_log_reset();
	coffer_log(COFFER_LOG_INFO, "i");
	coffer_log(COFFER_LOG_DEBUG, "d");
	check("coffer: warning: COFFER_LOG_LEVEL is not one of error, warning, info, debug; "
	      "using info\ncoffer: info: i\n",
	      "an unknown COFFER_LOG_LEVEL is reported once and info is used");
	unsetenv("COFFER_LOG_LEVEL");

	/* lines: every line prefixed; control characters neutralised */
	capture();
	coffer_log_reset();
	coffer_log(COFFER_LOG_INFO, "a\nb\n\nc");
	coffer_log(COFFER_LOG_INFO, "%s", "esc\x1b[31mred\rcr\ttab\x7f");
	coffer_log(COFFER_LOG_INFO, "%s", "");
	check("coffer: info: a\ncoffer: info: b\ncoffer: info: \ncoffer: info: c\n"
	      "coffer: info: esc?[31mred?cr\ttab?\n"
	      "coffer: info: \n",
	      "each line prefixed; control characters shown as '?'");

	/* a long message is written whole */
	big = malloc(200001);
	want = malloc(200001 + 64);
	if (big == NULL || want == NULL)
		return 1;
	memset(big, 'x', 200000);
	big[200000] = '\0';
	snprintf(want, 200001 + 64, "coffer: info: %s\n", big);
	capture();
	coffer_log(COFFER_LOG_INFO, "%s", big);
	check(want, "a 200,000-byte message is not truncated");
	free(big);
	free(want);

	/* errno survives logging */
	capture();
	errno = EAGAIN;
	coffer_log(COFFER_LOG_INFO, "keeps errno");
	ok(errno == EAGAIN, "errno is preserved");
	errno = ENOSPC;
	coffer_log(COFFER_LOG_DEBUG, "hidden, keeps errno");
	ok(errno == ENOSPC, "errno is preserved when the level is hidden");

	/* a closed stderr does not crash or fail the caller */
	close(STDERR_FILENO);
	coffer_log(COFFER_LOG_ERROR, "nowhere to go");
	ok(1, "logging with stderr closed returns");

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	free(log_path);
	return tap_done();
}
