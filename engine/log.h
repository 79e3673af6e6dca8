/*
 * log.h: log lines from Coffer's long-running modes (the worker, the mount
 * daemon) to stderr, with levels that journald understands.
 *
 * Under systemd (stderr is the stream named by $JOURNAL_STREAM), every line
 * starts with its syslog priority in angle brackets, "<3>...", as
 * sd-daemon(3) describes; journald strips the prefix and records the
 * priority, so `journalctl -p warning` works. Anywhere else (a terminal, a
 * file, cron's mail) a line reads "coffer: LEVEL: message".
 *
 * $COFFER_LOG_LEVEL (error, warning, info, debug; default info) sets the
 * least severe level written. Both variables are read at the first call and
 * then kept (coffer_log_reset() reads them again, for tests).
 *
 * Each call writes its lines with one write(2), so lines from several
 * threads never interleave mid-line. A message holding newlines becomes
 * several lines, each with the prefix; other control characters are shown
 * as '?', so a logged name cannot forge a line or drive a terminal.
 * Logging never fails the caller: a write error is ignored. Messages must
 * never hold secrets or message content (as for errors.h).
 */
#ifndef COFFER_LOG_H
#define COFFER_LOG_H

#include <stdarg.h>

/* Levels are the syslog(3) priorities of the same names. */
enum coffer_log_level {
	COFFER_LOG_ERROR = 3,
	COFFER_LOG_WARNING = 4,
	COFFER_LOG_INFO = 6,
	COFFER_LOG_DEBUG = 7,
};

/* Writes one message at level to stderr, if level is enabled. */
void coffer_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void coffer_log_v(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* 1 if a message at level would be written. */
int coffer_log_enabled(int level);

/* Parses a level name ("error", "warning" or "warn", "info", "debug"; any
 * case) into *level_r: 0, or COFFER_EINVAL. */
int coffer_log_level_parse(const char *name, int *level_r);

/* The lower-case name of a level ("error", ...). */
const char *coffer_log_level_name(int level);

/* Reads $JOURNAL_STREAM and $COFFER_LOG_LEVEL again (for tests and after
 * stderr was redirected). Not thread-safe against concurrent coffer_log(). */
void coffer_log_reset(void);

#endif
