/*
 * clock.h: the current time, and parsing and printing of times.
 *
 * Every command takes "now" from coffer_clock_now(), which honours
 * COFFER_NOW (ISO-8601 UTC, a date, or Unix seconds) so that tests can
 * simulate months of retention in seconds. COFFER_NOW is a testing aid and
 * documented as such; with it unset the real clock is used.
 *
 * Times are int64 nanoseconds since the Unix epoch, UTC, throughout Coffer.
 */
#ifndef COFFER_CLOCK_H
#define COFFER_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define COFFER_NS_PER_SEC 1000000000LL
#define COFFER_NS_PER_DAY (86400LL * COFFER_NS_PER_SEC)

/* Now, in ns. If COFFER_NOW is set but malformed, returns COFFER_EINVAL
 * with a detail naming the variable; otherwise 0. */
int coffer_clock_now(int64_t *now_r);

/*
 * Parses a time given by a user or COFFER_NOW:
 *   - Unix seconds: "1732857600" (optionally with "@" prefix);
 *   - a date "2026-11-29" (midnight UTC);
 *   - "2026-11-29T05:00", "2026-11-29T05:00:00", with optional fraction,
 *     "Z" or "+hh:mm"/"-hh:mm" offset, and ' ' accepted for 'T'.
 * A missing offset means UTC. COFFER_EINVAL on anything else.
 */
int coffer_clock_parse(const char *s, int64_t *ns_r);

/* "2026-11-29T05:00:00Z" (seconds precision) into out, which must hold
 * COFFER_CLOCK_ISO_MAX bytes. */
#define COFFER_CLOCK_ISO_MAX 40
void coffer_clock_format(int64_t ns, char *out);
/* "2026-11-29" */
void coffer_clock_format_date(int64_t ns, char *out);

#endif
