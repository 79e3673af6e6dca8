/*
 * clock.c: "now", and parsing and printing of UTC times.
 *
 * This file implements clock.h. It is the only place that reads COFFER_NOW
 * or asks the system for the current time, so a test can move every command
 * of Coffer through months of retention by setting one variable.
 *
 * Calendar arithmetic is done here, not by timegm()/gmtime_r(): the proleptic
 * Gregorian days-from-civil and civil-from-days conversions (H. Hinnant's
 * algorithms) are exact for any year, need no time-zone database, and do not
 * depend on the width of time_t. Parsing accepts years 1..9999 and validates
 * every field (month 1..12, the day against the month's length including
 * leap years, hour < 24, minute < 60, second <= 60 for a leap second, offset
 * below 24 h). A time that does not fit in int64 nanoseconds (roughly before
 * 1677-09-21 or after 2262-04-11) is rejected rather than wrapped.
 *
 * An empty COFFER_NOW counts as unset, so `COFFER_NOW= coffer ...` restores
 * the real clock.
 *
 * No state; every function is thread-safe.
 */
#include "clock.h"

#include "errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y_r, unsigned *m_r, unsigned *d_r)
{
	int64_t era, doe, yoe, doy, mp, y;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d_r = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m_r = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y_r = y + (*m_r <= 2);
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned char len[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Exactly n decimal digits at *p; advances *p. */
static int digits(const char **p, int n, unsigned *v_r)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + (unsigned)((*p)[i] - '0');
	}
	*p += n;
	*v_r = v;
	return 0;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int parse_unix(const char *s, int64_t *ns_r)
{
	int64_t secs = 0, ns;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (!is_digit(*s))
			return -1;
		if (__builtin_mul_overflow(secs, 10, &secs) ||
		    __builtin_add_overflow(secs, *s - '0', &secs))
			return -1;
	}
	if (__builtin_mul_overflow(secs, COFFER_NS_PER_SEC, &ns))
		return -1;
	*ns_r = ns;
	return 0;
}

static int parse_iso(const char *s, int64_t *ns_r)
{
	unsigned year, month, day, hour = 0, minute = 0, second = 0, oh, om;
	int64_t secs, ns, frac = 0, offset = 0;
	int fdigits;

	if (digits(&s, 4, &year) < 0 || *s++ != '-' || digits(&s, 2, &month) < 0 || *s++ != '-' ||
	    digits(&s, 2, &day) < 0)
		return -1;
	if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
		return -1;
	if (*s == 'T' || *s == 't' || *s == ' ') {
		s++;
		if (digits(&s, 2, &hour) < 0 || *s++ != ':' || digits(&s, 2, &minute) < 0)
			return -1;
		if (*s == ':') {
			s++;
			if (digits(&s, 2, &second) < 0)
				return -1;
			if (*s == '.' || *s == ',') {
				s++;
				for (fdigits = 0; is_digit(*s); fdigits++, s++) {
					if (fdigits >= 9)
						return -1;
					frac = frac * 10 + (*s - '0');
				}
				if (fdigits == 0)
					return -1;
				for (; fdigits < 9; fdigits++)
					frac *= 10;
			}
		}
		if (hour > 23 || minute > 59 || second > 60)
			return -1;
		if (*s == 'Z' || *s == 'z') {
			s++;
		} else if (*s == '+' || *s == '-') {
			int sign = *s++ == '-' ? -1 : 1;

			if (digits(&s, 2, &oh) < 0 || *s++ != ':' || digits(&s, 2, &om) < 0)
				return -1;
			if (oh > 23 || om > 59)
				return -1;
			offset = sign * (int64_t)(oh * 3600 + om * 60);
		}
	}
	if (*s)
		return -1;
	secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
	       offset;
	if (__builtin_mul_overflow(secs, COFFER_NS_PER_SEC, &ns) ||
	    __builtin_add_overflow(ns, frac, &ns))
		return -1;
	*ns_r = ns;
	return 0;
}

int coffer_clock_parse(const char *s, int64_t *ns_r)
{
	int64_t ns;
	int r;

	if (!s)
		return coffer_err_set(COFFER_EINVAL, "clock: invalid time (none given)");
	if (*s == '@')
		r = parse_unix(s + 1, &ns);
	else if (strlen(s) > 4 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) &&
	         is_digit(s[3]) && s[4] == '-')
		r = parse_iso(s, &ns);
	else
		r = parse_unix(s, &ns);
	if (r < 0)
		return coffer_err_set(COFFER_EINVAL,
		                      "clock: invalid time \"%.64s\" (want Unix seconds, "
		                      "YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][Z|+hh:mm])",
		                      s);
	*ns_r = ns;
	return 0;
}

int coffer_clock_now(int64_t *now_r)
{
	const char *env = getenv("COFFER_NOW");
	struct timespec ts;
	int64_t ns;
	int r;

	if (env && *env) {
		r = coffer_clock_parse(env, &ns);
		if (r < 0)
			return coffer_err_prefix(r, "COFFER_NOW: ");
		*now_r = ns;
		return 0;
	}
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return coffer_err_set(COFFER_EIO, "clock: cannot read the system clock");
	*now_r = (int64_t)ts.tv_sec * COFFER_NS_PER_SEC + ts.tv_nsec;
	return 0;
}

/* Splits ns into a civil date and the seconds into that day, rounding toward
 * the past so that times before 1970 print correctly. */
static void split(int64_t ns, int64_t *y_r, unsigned *m_r, unsigned *d_r, int64_t *sod_r)
{
	int64_t secs = ns / COFFER_NS_PER_SEC, days, sod;

	if (ns % COFFER_NS_PER_SEC < 0)
		secs--;
	days = secs / 86400;
	sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	civil_from_days(days, y_r, m_r, d_r);
	*sod_r = sod;
}

void coffer_clock_format(int64_t ns, char *out)
{
	int64_t y, sod;
	unsigned m, d;

	split(ns, &y, &m, &d, &sod);
	snprintf(out, COFFER_CLOCK_ISO_MAX, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d,
	         (unsigned)(sod / 3600), (unsigned)(sod / 60 % 60), (unsigned)(sod % 60));
}

void coffer_clock_format_date(int64_t ns, char *out)
{
	int64_t y, sod;
	unsigned m, d;

	split(ns, &y, &m, &d, &sod);
	snprintf(out, COFFER_CLOCK_ISO_MAX, "%04lld-%02u-%02u", (long long)y, m, d);
}
