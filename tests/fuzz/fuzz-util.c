/*
 * fuzz-util.c: checks and helpers shared by the libFuzzer targets: input
 * copying, refusal and error-detail checks, buffer comparison and an
 * independent strict UTF-8 checker. See fuzz-util.h.
 */
#include "fuzz-util.h"

#include "engine/errors.h"

#include <stdlib.h>
#include <string.h>

char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

void fuzz_check_refusal(int r, int want)
{
	const char *msg = coffer_errmsg();

	if (r != want || *msg == '\0' || !fuzz_no_ctl(msg, strlen(msg)))
		abort();
}

void fuzz_check_refusal_empty(int r, int want, const struct coffer_buf *out)
{
	fuzz_check_refusal(r, want);
	if (out->len != 0)
		abort();
}

void fuzz_same(const struct coffer_buf *b, const void *p, size_t n)
{
	if (b->len != n || (n > 0 && memcmp(b->data, p, n) != 0))
		abort();
}

int fuzz_no_ctl(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* The code point of the sequence at p[0..n) (n > 0) in *cp; returns its
 * length, or 0 when it is not strict UTF-8. */
static size_t utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t len, k;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		*cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		*cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		*cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (p[k] & 0x3f);
	}
	if ((len == 3 && *cp < 0x800) || (len == 4 && (*cp < 0x10000 || *cp > 0x10ffff)) ||
	    (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

static int utf8_check(const void *p, size_t n, int controls)
{
	const unsigned char *s = p;
	size_t i = 0, len;
	uint32_t cp;

	while (i < n) {
		len = utf8_next(s + i, n - i, &cp);
		if (len == 0)
			return 0;
		if (!controls && (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)))
			return 0;
		i += len;
	}
	return 1;
}

int fuzz_utf8_valid(const void *p, size_t n)
{
	return utf8_check(p, n, 1);
}

int fuzz_utf8_clean(const void *p, size_t n)
{
	return utf8_check(p, n, 0);
}
