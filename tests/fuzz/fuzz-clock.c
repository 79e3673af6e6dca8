/*
 * fuzz-clock.c: libFuzzer target for engine/clock.c.
 *
 * The input, as a string, goes through coffer_clock_parse(); whatever parses
 * must print and parse back to the same second (and day). Independently, the
 * first 8 bytes as an int64 nanosecond time must print exactly as the C
 * library's gmtime_r() prints it, and parse back unless the whole second (or
 * day) it falls in starts before the int64 range. Any disagreement aborts.
 */
#include "engine/clock.h"
#include "engine/errors.h"
#include "fuzz-util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_INPUT 256

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b < 0) ? q - 1 : q;
}

/* s, printed from a time in its units of unit_ns (a second or a day), must
 * parse back to where that unit starts, or say COFFER_EINVAL when that lies
 * before the int64 range. */
static void check_back(const char *s, int64_t units, int64_t unit_ns)
{
	int64_t back;
	int r = coffer_clock_parse(s, &back);

	if (units >= INT64_MIN / unit_ns) {
		if (r != 0 || back != units * unit_ns)
			abort();
	} else if (r != COFFER_EINVAL) {
		abort();
	}
}

static void check_time(int64_t ns)
{
	char iso[COFFER_CLOCK_ISO_MAX], date[COFFER_CLOCK_ISO_MAX], want[64];
	int64_t secs = floor_div(ns, COFFER_NS_PER_SEC);
	int64_t days = floor_div(secs, 86400);
	struct tm tm;
	time_t t = (time_t)secs;

	coffer_clock_format(ns, iso);
	coffer_clock_format_date(ns, date);
	if (!gmtime_r(&t, &tm))
		abort();
	snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (strcmp(iso, want) != 0)
		abort();
	if (strlen(date) != 10 || strncmp(date, want, 10) != 0)
		abort();

	check_back(iso, secs, COFFER_NS_PER_SEC);
	check_back(date, days, COFFER_NS_PER_DAY);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	int64_t ns = 0, raw;
	int r;

	if (size > MAX_INPUT)
		return 0;
	s = fuzz_cstr(data, size);
	r = coffer_clock_parse(s, &ns);
	free(s);
	if (r == 0)
		check_time(ns);
	else if (r != COFFER_EINVAL || coffer_errmsg()[0] == '\0')
		abort();

	if (size >= sizeof raw) {
		memcpy(&raw, data, sizeof raw);
		check_time(raw);
	}
	return 0;
}
