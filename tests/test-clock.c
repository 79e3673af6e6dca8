/*
 * test-clock.c: parsing and printing of times, leap years, COFFER_NOW.
 */
#include "engine/clock.h"
#include "engine/errors.h"
#include "tests/tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t parse_ok(const char *s)
{
	int64_t ns = INT64_MIN;
	int r = coffer_clock_parse(s, &ns);

	ok(r == 0, "parse \"%s\" (%d %s)", s, r, r ? coffer_errmsg() : "");
	return ns;
}

static void parse_bad(const char *s)
{
	int64_t ns = 12345;
	int r = coffer_clock_parse(s, &ns);

	ok(r == COFFER_EINVAL && ns == 12345, "reject \"%s\"", s);
	ok(strstr(coffer_errmsg(), "invalid time") != NULL, "detail for \"%s\": %s", s,
	   coffer_errmsg());
}

static void fmt_is(int64_t ns, const char *want)
{
	char out[COFFER_CLOCK_ISO_MAX];

	coffer_clock_format(ns, out);
	ok(strcmp(out, want) == 0, "format %lld = %s (got %s)", (long long)ns, want, out);
}

static void date_is(int64_t ns, const char *want)
{
	char out[COFFER_CLOCK_ISO_MAX];

	coffer_clock_format_date(ns, out);
	ok(strcmp(out, want) == 0, "format_date %lld = %s (got %s)", (long long)ns, want, out);
}

static void test_parse_forms(void)
{
	const int64_t base = 1795928400LL * COFFER_NS_PER_SEC; /* 2026-11-29T05:00:00Z */

	ok(parse_ok("0") == 0, "epoch as Unix seconds");
	ok(parse_ok("1732857600") == 1732857600LL * COFFER_NS_PER_SEC, "Unix seconds");
	ok(parse_ok("@1732857600") == 1732857600LL * COFFER_NS_PER_SEC, "@Unix seconds");
	ok(parse_ok("2024-11-29") == 1732838400LL * COFFER_NS_PER_SEC, "date is midnight UTC");
	ok(parse_ok("2026-11-29T05:00") == base, "minutes");
	ok(parse_ok("2026-11-29T05:00:00") == base, "seconds");
	ok(parse_ok("2026-11-29T05:00:00Z") == base, "Z");
	ok(parse_ok("2026-11-29t05:00:00z") == base, "lower-case t and z");
	ok(parse_ok("2026-11-29 05:00:00Z") == base, "space for T");
	ok(parse_ok("2026-11-29T05:00:00.5Z") == base + 500000000, "fraction .5");
	ok(parse_ok("2026-11-29T05:00:00.000000001") == base + 1, "fraction ns");
	ok(parse_ok("2026-11-29T05:00:00,25") == base + 250000000, "comma fraction");
	ok(parse_ok("2026-11-29T07:30:00+02:30") == base, "positive offset");
	ok(parse_ok("2026-11-29T00:00-05:00") == base, "negative offset");
	ok(parse_ok("2026-11-28T23:00:00-06:00") == base, "offset across midnight");
	ok(parse_ok("2026-11-29T05:00:00+00:00") == base, "zero offset");
	ok(parse_ok("1970-01-01T00:00:00Z") == 0, "epoch ISO");
	ok(parse_ok("1969-12-31T23:59:59Z") == -COFFER_NS_PER_SEC, "before epoch");
	ok(parse_ok("1900-01-01") == -2208988800LL * COFFER_NS_PER_SEC, "1900");
	ok(parse_ok("2016-12-31T23:59:60Z") == 1483228800LL * COFFER_NS_PER_SEC,
	   "leap second counts as the next second");
	ok(parse_ok("2262-04-11T23:47:16Z") == 9223372036LL * COFFER_NS_PER_SEC,
	   "last whole second representable");
	ok(parse_ok("1677-09-21T00:12:44Z") == -9223372036LL * COFFER_NS_PER_SEC,
	   "first whole second representable");
	ok(parse_ok("9223372036") == 9223372036LL * COFFER_NS_PER_SEC, "largest Unix seconds");
}

static void test_parse_errors(void)
{
	static const char *bad[] = {
		"",
		"@",
		"@-1",
		"-1",
		"abc",
		"12a",
		" 0",
		"0 ",
		"1.5",
		"9223372037",
		"99999999999999999999999",
		"2026-11-29Z",
		"2026-11-29T",
		"2026-11-29T5:00",
		"2026-11-29T05",
		"2026-11-29T05:0",
		"2026-11-29T05:00:0",
		"2026-11-29T05:00:00.",
		"2026-11-29T05:00:00.1234567890",
		"2026-11-29T05:00:00+2",
		"2026-11-29T05:00:00+0200",
		"2026-11-29T05:00:00+24:00",
		"2026-11-29T05:00:00+02:60",
		"2026-11-29T05:00:00ZZ",
		"2026-11-29T05:00:00 ",
		"2026-11-29T24:00",
		"2026-11-29T23:60",
		"2026-11-29T23:59:61",
		"2026-13-01",
		"2026-00-10",
		"2026-01-00",
		"2026-01-32",
		"2026-04-31",
		"2026-02-29",
		"2100-02-29",
		"1900-02-29",
		"0000-01-01",
		"26-11-29",
		"2026-1-29",
		"2026/11/29",
		"2026-11-29x",
		"1677-09-21T00:12:43Z",
		"2262-04-11T23:47:17Z",
		"9999-12-31",
		"0001-01-01",
		"2026-11-29T05:00:00.5+",
		"2026-11-29T05:00:00-",
		"2026-11-29T-5:00",
	};
	size_t i;
	int64_t ns = 7;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		parse_bad(bad[i]);
	ok(coffer_clock_parse(NULL, &ns) == COFFER_EINVAL && ns == 7, "reject NULL");
}

static void test_leap_years(void)
{
	int64_t a, b;

	ok(parse_ok("2024-02-29") == 1709164800LL * COFFER_NS_PER_SEC, "2024-02-29");
	ok(parse_ok("2000-02-29") == 951782400LL * COFFER_NS_PER_SEC, "2000 is a leap year");
	a = parse_ok("2024-02-28");
	b = parse_ok("2024-03-01");
	ok(b - a == 2 * COFFER_NS_PER_DAY, "2024: Feb has 29 days");
	a = parse_ok("2023-02-28");
	b = parse_ok("2023-03-01");
	ok(b - a == COFFER_NS_PER_DAY, "2023: Feb has 28 days");
	a = parse_ok("2024-01-01");
	b = parse_ok("2025-01-01");
	ok(b - a == 366 * COFFER_NS_PER_DAY, "2024 has 366 days");
	a = parse_ok("2100-01-01");
	b = parse_ok("2101-01-01");
	ok(b - a == 365 * COFFER_NS_PER_DAY, "2100 has 365 days");
	fmt_is(parse_ok("2024-02-29T12:00:00Z"), "2024-02-29T12:00:00Z");
	date_is(parse_ok("2000-02-29T23:59:59Z"), "2000-02-29");
	date_is(parse_ok("2000-02-29T23:59:59Z") + COFFER_NS_PER_SEC, "2000-03-01");
}

static void test_format(void)
{
	fmt_is(0, "1970-01-01T00:00:00Z");
	fmt_is(1795928400LL * COFFER_NS_PER_SEC, "2026-11-29T05:00:00Z");
	fmt_is(1795928400LL * COFFER_NS_PER_SEC + 999999999, "2026-11-29T05:00:00Z");
	fmt_is(-1, "1969-12-31T23:59:59Z");
	fmt_is(-COFFER_NS_PER_SEC, "1969-12-31T23:59:59Z");
	fmt_is(-COFFER_NS_PER_SEC - 1, "1969-12-31T23:59:58Z");
	fmt_is(-COFFER_NS_PER_DAY, "1969-12-31T00:00:00Z");
	fmt_is(INT64_MAX, "2262-04-11T23:47:16Z");
	fmt_is(INT64_MIN, "1677-09-21T00:12:43Z");
	date_is(0, "1970-01-01");
	date_is(-1, "1969-12-31");
	date_is(1795928400LL * COFFER_NS_PER_SEC, "2026-11-29");
	date_is(INT64_MAX, "2262-04-11");
}

/* Every second of a few days around awkward boundaries, and a sweep of
 * midnights across the representable range, survive format -> parse. */
static void test_round_trips(void)
{
	static const char *starts[] = {
		"1970-01-01", "1999-12-31", "2000-02-28", "2100-02-28", "1900-02-28", "1969-12-31",
	};
	char out[COFFER_CLOCK_ISO_MAX], date[COFFER_CLOCK_ISO_MAX];
	int64_t start, ns, back, day;
	size_t i, bad = 0, checked = 0;
	struct tm tm;
	time_t t;

	for (i = 0; i < sizeof starts / sizeof starts[0]; i++) {
		start = parse_ok(starts[i]);
		for (ns = start; ns < start + 2 * COFFER_NS_PER_DAY; ns += 7 * COFFER_NS_PER_SEC) {
			coffer_clock_format(ns, out);
			if (coffer_clock_parse(out, &back) < 0 || back != ns)
				bad++;
			checked++;
		}
	}
	ok(bad == 0, "%zu of %zu second-level round trips failed", bad, checked);

	/* Daily from 1678 to 2261, checked against the C library's gmtime_r. */
	bad = checked = 0;
	for (day = -106000; day < 106000; day++) {
		ns = day * COFFER_NS_PER_DAY + 12345 * COFFER_NS_PER_SEC;
		coffer_clock_format(ns, out);
		coffer_clock_format_date(ns, date);
		t = (time_t)(day * 86400 + 12345);
		if (!gmtime_r(&t, &tm)) {
			bad++;
			continue;
		}
		char want[64];
		snprintf(want, sizeof want, "%04d-%02d-%02dT03:25:45Z", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday);
		if (strcmp(out, want) != 0 || strncmp(date, want, 10) != 0 || date[10] != '\0')
			bad++;
		if (coffer_clock_parse(out, &back) < 0 || back != ns)
			bad++;
		if (coffer_clock_parse(date, &back) < 0 || back != day * COFFER_NS_PER_DAY)
			bad++;
		checked++;
	}
	ok(bad == 0, "daily sweep: %zu mismatches in %zu days", bad, checked);
}

static void test_now(void)
{
	int64_t now = 0, before, after;
	struct timespec ts;

	unsetenv("COFFER_NOW");
	clock_gettime(CLOCK_REALTIME, &ts);
	before = (int64_t)ts.tv_sec * COFFER_NS_PER_SEC + ts.tv_nsec;
	ok(coffer_clock_now(&now) == 0, "real clock");
	clock_gettime(CLOCK_REALTIME, &ts);
	after = (int64_t)ts.tv_sec * COFFER_NS_PER_SEC + ts.tv_nsec;
	ok(now >= before && now <= after, "real clock is now");

	setenv("COFFER_NOW", "", 1);
	ok(coffer_clock_now(&now) == 0 && now >= before, "empty COFFER_NOW is the real clock");

	setenv("COFFER_NOW", "1732857600", 1);
	ok(coffer_clock_now(&now) == 0 && now == 1732857600LL * COFFER_NS_PER_SEC,
	   "COFFER_NOW Unix seconds");
	setenv("COFFER_NOW", "@86400", 1);
	ok(coffer_clock_now(&now) == 0 && now == COFFER_NS_PER_DAY, "COFFER_NOW @seconds");
	setenv("COFFER_NOW", "2026-11-29", 1);
	ok(coffer_clock_now(&now) == 0 && now == 1795910400LL * COFFER_NS_PER_SEC,
	   "COFFER_NOW date");
	setenv("COFFER_NOW", "2026-11-29T05:00:00Z", 1);
	ok(coffer_clock_now(&now) == 0 && now == 1795928400LL * COFFER_NS_PER_SEC,
	   "COFFER_NOW ISO");
	setenv("COFFER_NOW", "2026-11-29 07:00+02:00", 1);
	ok(coffer_clock_now(&now) == 0 && now == 1795928400LL * COFFER_NS_PER_SEC,
	   "COFFER_NOW ISO with offset");

	now = 99;
	setenv("COFFER_NOW", "yesterday", 1);
	ok(coffer_clock_now(&now) == COFFER_EINVAL && now == 99, "malformed COFFER_NOW refused");
	ok(strstr(coffer_errmsg(), "COFFER_NOW") != NULL, "detail names COFFER_NOW: %s",
	   coffer_errmsg());
	ok(strstr(coffer_errmsg(), "yesterday") != NULL, "detail quotes the value");
	setenv("COFFER_NOW", "2026-02-30", 1);
	ok(coffer_clock_now(&now) == COFFER_EINVAL, "COFFER_NOW with a bad day refused");
	setenv("COFFER_NOW", "2026-11-29T05:00:00+25:00", 1);
	ok(coffer_clock_now(&now) == COFFER_EINVAL, "COFFER_NOW with a bad offset refused");
	setenv("COFFER_NOW", "99999999999", 1);
	ok(coffer_clock_now(&now) == COFFER_EINVAL, "COFFER_NOW out of range refused");
	unsetenv("COFFER_NOW");
}

int main(void)
{
	test_parse_forms();
	test_parse_errors();
	test_leap_years();
	test_format();
	test_round_trips();
	test_now();
	return tap_done();
}
