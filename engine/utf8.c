/*
 * utf8.c: strict UTF-8 (see utf8.h).
 *
 * One scanner serves every entry point. It follows Unicode's table 3-7 of
 * well-formed sequences directly instead of decoding first and checking the
 * value afterwards: the lead byte fixes the length and the allowed range of
 * the second byte (E0 needs A0..BF against overlongs, ED needs 80..9F
 * against surrogates, F0 needs 90..BF against overlongs, F4 needs 80..8F
 * against values above U+10FFFF); every later byte is 80..BF. Checking byte
 * by byte is what lets the scanner also report how far a broken sequence
 * went (the maximal subpart), which a decode-then-check design cannot.
 *
 * Invariants: no byte at or past p + n is read; nothing is written on
 * failure; time is O(n) for coffer_utf8_valid() and O(1) otherwise.
 */
#include "utf8.h"

/* The sequence at p: its length with the value in *cp_r, or -1 with the
 * length of the maximal ill-formed subpart in *bad_r (0 for n == 0). */
static int scan(const unsigned char *p, size_t n, uint32_t *cp_r, size_t *bad_r)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;
	uint32_t cp;

	if (n == 0) {
		*bad_r = 0;
		return -1;
	}
	if (p[0] < 0x80) {
		*cp_r = p[0];
		return 1;
	}
	if (p[0] < 0xc2 || p[0] > 0xf4) {
		/* a continuation byte, an overlong lead (C0, C1), or F5..FF */
		*bad_r = 1;
		return -1;
	}
	if (p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else {
		len = 4;
		cp = p[0] & 0x07;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	}
	for (i = 1; i < len; i++) {
		if (i >= n || p[i] < lo || p[i] > hi) {
			*bad_r = i;
			return -1;
		}
		cp = (cp << 6) | (p[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	*cp_r = cp;
	return (int)len;
}

int coffer_utf8_decode(const void *p, size_t n, uint32_t *cp_r)
{
	size_t bad;

	return scan(p, n, cp_r, &bad);
}

size_t coffer_utf8_invalid_len(const void *p, size_t n)
{
	uint32_t cp;
	size_t bad;
	int len;

	len = scan(p, n, &cp, &bad);
	return len < 0 ? bad : (size_t)len;
}

int coffer_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t cp;
	size_t i = 0, bad;
	int len;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		len = scan(s + i, n - i, &cp, &bad);
		if (len < 0)
			return 0;
		i += (size_t)len;
	}
	return 1;
}

int coffer_utf8_encode(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp >= 0xd800 && cp <= 0xdfff)
		return -1;
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	if (cp > 0x10ffff)
		return -1;
	out[0] = (unsigned char)(0xf0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}
