/*
 * log.c: leveled log lines on stderr (see log.h).
 *
 * This file implements log.h in three parts: reading the environment once
 * (log_setup), formatting one message into lines with their prefix
 * (format_lines), and writing them with one write(2) (write_whole).
 *
 * Journal detection follows systemd's advice for JOURNAL_STREAM: the
 * variable names the device and inode ("DEV:INO", decimal) of the stream
 * systemd connected to stdout/stderr, and a program must compare them with
 * fstat(2) of its own stderr, since a child whose stderr was redirected
 * (to a file, a pipe) inherits the variable but not the stream. Only when
 * both match are "<N>" prefixes written.
 *
 * Concurrency: the settings are two ints published with atomic stores
 * after being computed; two threads racing on the first call compute the
 * same values, so the race is benign. Formatting uses only the caller's
 * memory; the write is one system call per message (a message of several
 * lines stays together), retried on EINTR and short writes.
 *
 * Memory: a message is measured with vsnprintf and formatted into malloc'd
 * memory, so no length limit applies; when memory runs out a fixed line
 * saying so is written instead.
 */
#include "log.h"

#include "errors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* 0: not read yet; else the settings below are valid. */
static int log_ready;
static int log_min_level = COFFER_LOG_INFO;
static int log_journal;

static const struct {
	const char *name;
	int level;
} level_names[] = {
	{ "error", COFFER_LOG_ERROR },  { "warning", COFFER_LOG_WARNING },
	{ "warn", COFFER_LOG_WARNING }, { "info", COFFER_LOG_INFO },
	{ "debug", COFFER_LOG_DEBUG },
};

int coffer_log_level_parse(const char *name, int *level_r)
{
	if (name == NULL)
		return COFFER_EINVAL;
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcasecmp(name, level_names[i].name) == 0) {
			*level_r = level_names[i].level;
			return 0;
		}
	}
	return COFFER_EINVAL;
}

const char *coffer_log_level_name(int level)
{
	switch (level) {
	case COFFER_LOG_ERROR: return "error";
	case COFFER_LOG_WARNING: return "warning";
	case COFFER_LOG_INFO: return "info";
	case COFFER_LOG_DEBUG: return "debug";
	}
	return level < COFFER_LOG_ERROR ? "error" : "debug";
}

/* 1 if $JOURNAL_STREAM names the stream on fd 2. */
static int stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (env == NULL || *env == '\0')
		return 0;
	errno = 0;
	dev = strtoull(env, &end, 10);
	if (errno || end == env || *end != ':')
		return 0;
	env = end + 1;
	ino = strtoull(env, &end, 10);
	if (errno || end == env || *end != '\0')
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int write_whole(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void log_setup(void)
{
	const char *env = getenv("COFFER_LOG_LEVEL");
	int level = COFFER_LOG_INFO, bad = 0;

	if (env && *env && coffer_log_level_parse(env, &level) < 0) {
		level = COFFER_LOG_INFO;
		bad = 1;
	}
	__atomic_store_n(&log_journal, stderr_is_journal(), __ATOMIC_RELAXED);
	__atomic_store_n(&log_min_level, level, __ATOMIC_RELAXED);
	__atomic_store_n(&log_ready, 1, __ATOMIC_RELEASE);
	if (bad)
		coffer_log(
		    COFFER_LOG_WARNING,
		    "COFFER_LOG_LEVEL is not one of error, warning, info, debug; using info");
}

void coffer_log_reset(void)
{
	__atomic_store_n(&log_ready, 0, __ATOMIC_RELEASE);
	log_setup();
}

int coffer_log_enabled(int level)
{
	if (!__atomic_load_n(&log_ready, __ATOMIC_ACQUIRE))
		log_setup();
	return level <= __atomic_load_n(&log_min_level, __ATOMIC_RELAXED);
}

/* Writes prefix + line for every line of msg (n bytes) into out (which has
 * room: see coffer_log_v), returning the length. */
static size_t format_lines(char *out, const char *prefix, size_t plen, const char *msg, size_t n)
{
	size_t o = 0, i = 0;

	/* a trailing newline ends the last line; it does not start an empty one */
	if (n > 0 && msg[n - 1] == '\n')
		n--;
	do {
		memcpy(out + o, prefix, plen);
		o += plen;
		for (; i < n && msg[i] != '\n'; i++) {
			unsigned char c = (unsigned char)msg[i];

			out[o++] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
		}
		out[o++] = '\n';
	} while (i++ < n);
	return o;
}

void coffer_log_v(int level, const char *fmt, va_list ap)
{
	static const char oom[] = "coffer: error: out of memory while logging a message\n";
	char prefix[32], *msg = NULL, *out = NULL;
	size_t plen, lines = 1, total;
	va_list copy;
	int n, saved_errno = errno;

	if (!coffer_log_enabled(level))
		goto out;
	if (level < COFFER_LOG_ERROR)
		level = COFFER_LOG_ERROR;
	if (level > COFFER_LOG_DEBUG)
		level = COFFER_LOG_DEBUG;
	if (__atomic_load_n(&log_journal, __ATOMIC_RELAXED))
		n = snprintf(prefix, sizeof prefix, "<%d>", level);
	else
		n = snprintf(prefix, sizeof prefix, "coffer: %s: ", coffer_log_level_name(level));
	plen = (size_t)n;

	va_copy(copy, ap);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		goto out;
	msg = malloc((size_t)n + 1);
	if (msg == NULL) {
		write_whole(oom, sizeof oom - 1);
		goto out;
	}
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	for (int i = 0; i < n; i++)
		lines += msg[i] == '\n';
	/* each line: prefix + its bytes + '\n' (no overflow: n < INT_MAX) */
	total = (size_t)n + lines * (plen + 1);
	out = malloc(total);
	if (out == NULL) {
		write_whole(oom, sizeof oom - 1);
		goto out;
	}
	write_whole(out, format_lines(out, prefix, plen, msg, (size_t)n));
out:
	free(out);
	free(msg);
	errno = saved_errno;
}

void coffer_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	coffer_log_v(level, fmt, ap);
	va_end(ap);
}
