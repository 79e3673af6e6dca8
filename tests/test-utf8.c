/*
 * test-utf8.c: the strict UTF-8 decoder, validator and encoder (engine/utf8.h).
 *
 * Covers every boundary of table 3-7 by name (the first and last scalar value
 * of each length, the ends of the surrogate block, U+10FFFF and U+110000, each
 * overlong form, each lead byte that can never start a sequence, sequences cut
 * short at every position, stray continuation bytes), then checks the decoder
 * against an independent decode-then-check reference (the one engine/names.c,
 * engine/header.c and maildir/name.c carried before this module) on every
 * input of up to three bytes and on all four-byte inputs whose last two bytes
 * come from a set of boundary values. The encoder is round-tripped over every
 * scalar value and must refuse the rest. The maximal-subpart length is checked
 * against Unicode's own examples (tables 3-8 to 3-11) and, exhaustively,
 * against a table of every prefix of every valid sequence. Truncated inputs
 * live in malloc'd buffers of exactly their size, so AddressSanitizer sees any
 * read past n.
 */
#include "engine/utf8.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The reference: decode the bits, then refuse overlongs, surrogates and
 * values above U+10FFFF; 0 for invalid. */
static size_t ref_decode(const unsigned char *p, size_t n, uint32_t *cp_r)
{
	uint32_t cp;
	size_t len, i;

	if (n == 0)
		return 0;
	if (p[0] < 0x80) {
		*cp_r = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return len;
}

static int ref_valid(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t i = 0, len;

	while (i < n) {
		len = ref_decode(p + i, n - i, &cp);
		if (len == 0)
			return 0;
		i += len;
	}
	return 1;
}

/* A malloc'd copy of exactly the n bytes of s, so that ASan sees a read past n. */
static unsigned char *exact(const char *s, size_t n)
{
	unsigned char *copy = malloc(n ? n : 1);

	if (copy == NULL)
		abort();
	memcpy(copy, s, n);
	return copy;
}

static int decode_exact(const char *s, size_t n, uint32_t *cp_r)
{
	unsigned char *copy = exact(s, n);
	int r = coffer_utf8_decode(copy, n, cp_r);

	free(copy);
	return r;
}

static int valid_exact(const char *s, size_t n)
{
	unsigned char *copy = exact(s, n);
	int r = coffer_utf8_valid(copy, n);

	free(copy);
	return r;
}

static int decodes_to(const char *s, size_t n, uint32_t want)
{
	uint32_t cp = 0xdeadbeef;
	int len = decode_exact(s, n, &cp);

	if (len != (int)n || cp != want) {
		tap_diag("decode: got len %d U+%04X, want len %zu U+%04X", len, (unsigned)cp, n,
		         (unsigned)want);
		return 0;
	}
	return 1;
}

static int refused(const char *s, size_t n)
{
	uint32_t cp = 0xdeadbeef;
	int len = decode_exact(s, n, &cp);

	if (len != -1 || cp != 0xdeadbeef) {
		tap_diag("decode: got len %d U+%04X, want -1 and *cp_r untouched", len,
		         (unsigned)cp);
		return 0;
	}
	return 1;
}

struct decode_case {
	const char *s;
	size_t n;
	uint32_t cp; /* for valid cases */
	const char *what;
};

/* the first and last value of each length */
static const struct decode_case valid_cases[] = {
	{ "\x00", 1, 0x0, "U+0000 is one byte (NUL is valid UTF-8)" },
	{ "\x7f", 1, 0x7f, "U+007F, the last one-byte value" },
	{ "\xc2\x80", 2, 0x80, "U+0080, the first two-byte value" },
	{ "\xdf\xbf", 2, 0x7ff, "U+07FF, the last two-byte value" },
	{ "\xe0\xa0\x80", 3, 0x800, "U+0800, the first three-byte value" },
	{ "\xed\x9f\xbf", 3, 0xd7ff, "U+D7FF, just below the surrogates" },
	{ "\xee\x80\x80", 3, 0xe000, "U+E000, just above the surrogates" },
	{ "\xef\xbf\xbd", 3, 0xfffd, "U+FFFD" },
	{ "\xef\xbf\xbf", 3, 0xffff, "U+FFFF, the last three-byte value" },
	{ "\xf0\x90\x80\x80", 4, 0x10000, "U+10000, the first four-byte value" },
	{ "\xf3\xbf\xbf\xbf", 4, 0xfffff, "U+FFFFF (lead F3)" },
	{ "\xf4\x80\x80\x80", 4, 0x100000, "U+100000 (lead F4)" },
	{ "\xf4\x8f\xbf\xbf", 4, 0x10ffff, "U+10FFFF, the last scalar value" },
};

static const struct decode_case refused_cases[] = {
	/* values that are not scalar values */
	{ "\xed\xa0\x80", 3, 0, "U+D800 (first surrogate)" },
	{ "\xed\xaf\xbf", 3, 0, "U+DBFF (last high surrogate)" },
	{ "\xed\xb0\x80", 3, 0, "U+DC00 (first low surrogate)" },
	{ "\xed\xbf\xbf", 3, 0, "U+DFFF (last surrogate)" },
	{ "\xed\xa0\xbd\xed\xb2\xa9", 6, 0, "a CESU-8 surrogate pair" },
	{ "\xf4\x90\x80\x80", 4, 0, "U+110000" },
	{ "\xf7\xbf\xbf\xbf", 4, 0, "U+1FFFFF (lead F7)" },
	/* overlong forms, including the shortest overlong of each length */
	{ "\xc0\x80", 2, 0, "overlong NUL C0 80" },
	{ "\xc0\xaf", 2, 0, "overlong '/' C0 AF" },
	{ "\xc1\xbf", 2, 0, "overlong U+007F C1 BF" },
	{ "\xe0\x80\x80", 3, 0, "overlong NUL E0 80 80" },
	{ "\xe0\x9f\xbf", 3, 0, "overlong U+07FF E0 9F BF" },
	{ "\xf0\x80\x80\x80", 4, 0, "overlong NUL F0 80 80 80" },
	{ "\xf0\x8f\xbf\xbf", 4, 0, "overlong U+FFFF F0 8F BF BF" },
	{ "\xf8\x88\x80\x80\x80", 5, 0, "five-byte form" },
	{ "\xfc\x84\x80\x80\x80\x80", 6, 0, "six-byte form" },
	/* bytes that never start a sequence */
	{ "\x80", 1, 0, "a lone continuation byte 80" },
	{ "\xbf", 1, 0, "a lone continuation byte BF" },
	{ "\x80\x80", 2, 0, "two continuation bytes" },
	{ "\xfe", 1, 0, "FE" },
	{ "\xff", 1, 0, "FF" },
	/* cut short: by n, and by a byte that is not a continuation */
	{ "", 0, 0, "n = 0" },
	{ "\xc2", 1, 0, "a two-byte sequence cut after 1" },
	{ "\xe2", 1, 0, "a three-byte sequence cut after 1" },
	{ "\xe0\xa0", 2, 0, "a three-byte sequence cut after 2" },
	{ "\xf0", 1, 0, "a four-byte sequence cut after 1" },
	{ "\xf0\x90", 2, 0, "a four-byte sequence cut after 2" },
	{ "\xf0\x90\x80", 3, 0, "a four-byte sequence cut after 3" },
	{ "\xf4\x8f\xbf", 3, 0, "U+10FFFF cut after 3" },
	{ "\xc3\xa9", 1, 0, "n shorter than the sequence" },
	{ "\xc2\x41", 2, 0, "a two-byte lead followed by ASCII" },
	{ "\xe2\x82\x41", 3, 0, "a three-byte sequence broken by ASCII at byte 3" },
	{ "\xf0\x9f\x93\xc3", 4, 0, "a four-byte sequence broken by a lead at byte 4" },
	{ "\xe2\xc2\x80", 3, 0, "a lead where a continuation belongs" },
};

static void test_boundaries(void)
{
	const struct decode_case *c;
	int bad = 0;

	for (c = valid_cases; c < valid_cases + sizeof valid_cases / sizeof *c; c++)
		ok(decodes_to(c->s, c->n, c->cp), "%s", c->what);
	for (c = refused_cases; c < refused_cases + sizeof refused_cases / sizeof *c; c++)
		ok(refused(c->s, c->n), "%s refused", c->what);
	for (int b = 0xf5; b <= 0xff; b++) {
		char s[4] = { (char)b, (char)0x80, (char)0x80, (char)0x80 };

		if (!refused(s, 4))
			bad++;
	}
	ok(bad == 0, "lead bytes F5..FF refused (%d accepted)", bad);

	/* only the first sequence counts */
	ok(decode_exact("a\xff", 2, &(uint32_t){ 0 }) == 1, "decode looks at one sequence only");
	ok(decode_exact("\xc3\xa9\xff", 3, &(uint32_t){ 0 }) == 2,
	   "what follows a valid sequence is not looked at");
}

/* Four-byte inputs use every value of bytes 1 and 2, and these for 3 and 4. */
static const unsigned char tail_values[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
	                                     0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xff };

static void test_against_reference(void)
{
	unsigned char s[4];
	uint32_t cp, ref_cp;
	size_t ref_len;
	long mismatch = 0, checked = 0, valid = 0;
	int len;

	for (uint32_t v = 0; v < (1u << 24); v++) {
		s[0] = (unsigned char)(v >> 16);
		s[1] = (unsigned char)(v >> 8);
		s[2] = (unsigned char)v;
		for (size_t n = 1; n <= 3; n++) {
			if (n < 3 && (v & ((1u << (8 * (3 - n))) - 1)) != 0)
				continue; /* shorter inputs once each */
			cp = ref_cp = 0xdeadbeef;
			len = coffer_utf8_decode(s, n, &cp);
			ref_len = ref_decode(s, n, &ref_cp);
			checked++;
			if (ref_len == 0 ? len != -1 || cp != 0xdeadbeef
			                 : len != (int)ref_len || cp != ref_cp) {
				if (mismatch++ < 5)
					tap_diag("%02x %02x %02x n=%zu: len %d U+%X, ref %zu U+%X",
					         s[0], s[1], s[2], n, len, (unsigned)cp, ref_len,
					         (unsigned)ref_cp);
			}
			if (coffer_utf8_valid(s, n) != ref_valid(s, n))
				mismatch++;
		}
	}
	ok(mismatch == 0,
	   "every input of 1..3 bytes agrees with the reference (%ld checked, %ld wrong)", checked,
	   mismatch);

	mismatch = checked = 0;
	for (uint32_t v = 0; v < (1u << 16); v++) {
		s[0] = (unsigned char)(v >> 8);
		s[1] = (unsigned char)v;
		for (size_t a = 0; a < sizeof tail_values; a++) {
			for (size_t b = 0; b < sizeof tail_values; b++) {
				s[2] = tail_values[a];
				s[3] = tail_values[b];
				cp = ref_cp = 0xdeadbeef;
				len = coffer_utf8_decode(s, 4, &cp);
				ref_len = ref_decode(s, 4, &ref_cp);
				checked++;
				if (ref_len == 4)
					valid++;
				if (ref_len == 0 ? len != -1 : len != (int)ref_len || cp != ref_cp)
					mismatch++;
				if (coffer_utf8_valid(s, 4) != ref_valid(s, 4))
					mismatch++;
			}
		}
	}
	ok(mismatch == 0 && valid > 0,
	   "four-byte inputs agree with the reference (%ld checked, %ld valid, %ld wrong)", checked,
	   valid, mismatch);
}

static void test_encode(void)
{
	unsigned char out[COFFER_UTF8_MAX + 1];
	uint32_t cp, back;
	long wrong = 0, refused_wrong = 0;
	int len, want;

	for (cp = 0; cp <= 0x10ffff; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
		memset(out, 0xaa, sizeof out);
		len = coffer_utf8_encode(cp, out);
		back = 0xdeadbeef;
		if (len != want || out[want] != 0xaa ||
		    coffer_utf8_decode(out, (size_t)len, &back) != len || back != cp ||
		    coffer_utf8_decode(out, (size_t)len - 1, &back) != -1 ||
		    coffer_utf8_invalid_len(out, (size_t)len) != (size_t)len) {
			if (wrong++ < 5)
				tap_diag("encode U+%X: len %d (want %d), back U+%X", (unsigned)cp,
				         len, want, (unsigned)back);
		}
	}
	ok(wrong == 0,
	   "every scalar value encodes in the shortest form and decodes back (%ld wrong)", wrong);

	{
		static const uint32_t bad[] = { 0xd800,   0xdbff,   0xdc00,     0xdfff,
			                        0x110000, 0x1fffff, 0x7fffffff, 0xffffffff };

		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			memset(out, 0xaa, sizeof out);
			if (coffer_utf8_encode(bad[i], out) != -1)
				refused_wrong++;
			for (size_t k = 0; k < sizeof out; k++)
				if (out[k] != 0xaa)
					refused_wrong++;
		}
	}
	ok(refused_wrong == 0,
	   "surrogates and values above U+10FFFF are refused, nothing written (%ld wrong)",
	   refused_wrong);

	len = coffer_utf8_encode(0xfffd, out);
	ok(len == COFFER_UTF8_REPLACEMENT_LEN &&
	       memcmp(out, COFFER_UTF8_REPLACEMENT, COFFER_UTF8_REPLACEMENT_LEN) == 0,
	   "COFFER_UTF8_REPLACEMENT is U+FFFD");
}

static void test_valid(void)
{
	ok(valid_exact("", 0) == 1, "empty input is valid");
	ok(valid_exact("plain ASCII", 11) == 1, "ASCII is valid");
	ok(valid_exact("a\0b", 3) == 1, "NUL inside is valid UTF-8");
	ok(valid_exact("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa8 \xf4\x8f\xbf\xbf", 19) == 1,
	   "1-, 2-, 3- and 4-byte sequences together are valid");
	ok(valid_exact("caf\xc3\xa9", 4) == 0, "cut inside the last sequence is invalid");
	ok(valid_exact("abc\xff"
	               "def",
	               7) == 0,
	   "one bad byte in the middle is invalid");
	ok(valid_exact("\xed\xa0\x80"
	               "abc",
	               6) == 0,
	   "a surrogate at the start is invalid");
	ok(valid_exact("abc\xc0\x80", 5) == 0, "an overlong at the end is invalid");
	ok(valid_exact("ok\xff", 2) == 1, "only n bytes are looked at");
	{
		/* long input: linear, and the verdict depends on the last byte alone */
		size_t n = 1 << 20;
		char *big = malloc(n);

		if (big == NULL)
			abort();
		for (size_t i = 0; i + 2 <= n; i += 2)
			memcpy(big + i, "\xc3\xa9", 2);
		ok(coffer_utf8_valid(big, n) == 1, "1 MiB of two-byte sequences is valid");
		big[n - 1] = 'x';
		ok(coffer_utf8_valid(big, n) == 0, "and invalid once its last sequence is broken");
		free(big);
	}
}

/* The input with each maximal ill-formed subpart replaced by "?" and each valid
 * sequence copied; stepping with coffer_utf8_invalid_len() alone. */
static int replaced_is(const char *in, size_t n, const char *want)
{
	unsigned char *copy = exact(in, n);
	char out[256];
	size_t i = 0, o = 0, step;
	uint32_t cp;
	int len, good;

	while (i < n && o + 5 < sizeof out) {
		step = coffer_utf8_invalid_len(copy + i, n - i);
		len = coffer_utf8_decode(copy + i, n - i, &cp);
		if (step == 0 || step > n - i || (len > 0 && step != (size_t)len) ||
		    (len < 0 && step > 3)) {
			out[o++] = '!';
			break;
		}
		if (len < 0) {
			out[o++] = '?';
		} else {
			memcpy(out + o, copy + i, step);
			o += step;
		}
		i += step;
	}
	out[o] = '\0';
	free(copy);
	good = strcmp(out, want) == 0;
	if (!good)
		tap_diag("replaced: got [%s] want [%s]", out, want);
	return good;
}

/* Bitmaps of every proper prefix (1..3 bytes) of every valid sequence. */
static unsigned char *prefix1, *prefix2, *prefix3;

static void set_bit(unsigned char *map, uint32_t i)
{
	map[i >> 3] |= (unsigned char)(1u << (i & 7));
}

static int get_bit(const unsigned char *map, uint32_t i)
{
	return (map[i >> 3] >> (i & 7)) & 1;
}

static size_t ref_invalid_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len = ref_decode(s, n, &cp);

	if (len > 0)
		return len;
	if (n >= 3 && get_bit(prefix3, (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8 | s[2]))
		return 3;
	if (n >= 2 && get_bit(prefix2, (uint32_t)s[0] << 8 | s[1]))
		return 2;
	return 1;
}

static void test_invalid_len(void)
{
	unsigned char s[4], enc[COFFER_UTF8_MAX];
	long wrong = 0, checked = 0;
	int len;

	ok(coffer_utf8_invalid_len("", 0) == 0, "invalid_len of nothing is 0");
	ok(coffer_utf8_invalid_len("a", 1) == 1 && coffer_utf8_invalid_len("\xc3\xa9", 2) == 2 &&
	       coffer_utf8_invalid_len("\xf4\x8f\xbf\xbf", 4) == 4,
	   "invalid_len of a valid sequence is its length");

	/* Unicode 15, tables 3-8 to 3-11 */
	ok(replaced_is("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64", 13, "a???b?c??d"),
	   "table 3-8: truncated sequences are one U+FFFD each");
	ok(replaced_is("\xc0\xaf\xe0\x80\xbf\xf0\x81\x82\x41", 9, "????????A"),
	   "table 3-8: non-shortest forms are one U+FFFD a byte");
	ok(replaced_is("\xed\xa0\x80\xed\xbf\xbf\xed\xaf\x41", 9, "????????A"),
	   "table 3-9: surrogates are one U+FFFD a byte");
	ok(replaced_is("\xf4\x91\x92\x93\xff\x41\x80\xbf\x42", 9, "?????A??B"),
	   "table 3-10: other ill-formed sequences");
	ok(replaced_is("\xe1\x80\xe2\xf0\x91\x92\xf1\xbf\x41", 9, "????A"),
	   "table 3-11: truncated sequences");
	ok(replaced_is("caf\xc3\xa9\xe2\x82", 7, "caf\xc3\xa9?"),
	   "a sequence cut by the end of input is one U+FFFD");
	ok(replaced_is("\xf0\x9f\x93", 3, "?") && replaced_is("\xf0\x9f", 2, "?"),
	   "a four-byte sequence cut after 2 or 3 bytes is one U+FFFD");
	ok(replaced_is("\xf4\x8f\xbf\x41", 4, "?A") && replaced_is("\xf4\x90\x80\x80", 4, "????"),
	   "F4: 8F is a valid second byte, 90 is not");
	ok(replaced_is("\xe0\xa0\x41", 3, "?A") && replaced_is("\xe0\x9f\x80", 3, "???"),
	   "E0: A0 is a valid second byte, 9F is not");
	ok(replaced_is("\xed\x9f\x41", 3, "?A") && replaced_is("\xed\xa0\x80", 3, "???"),
	   "ED: 9F is a valid second byte, A0 is not");

	/* exhaustive against the table of valid prefixes */
	prefix2 = calloc(1, (1u << 16) / 8);
	prefix3 = calloc(1, (1u << 24) / 8);
	prefix1 = calloc(1, 256 / 8);
	if (prefix1 == NULL || prefix2 == NULL || prefix3 == NULL)
		abort();
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		len = coffer_utf8_encode(cp, enc);
		if (len < 0)
			continue;
		set_bit(prefix1, enc[0]);
		if (len > 2)
			set_bit(prefix2, (uint32_t)enc[0] << 8 | enc[1]);
		if (len > 3)
			set_bit(prefix3, (uint32_t)enc[0] << 16 | (uint32_t)enc[1] << 8 | enc[2]);
	}
	for (uint32_t v = 0; v < (1u << 24); v++) {
		s[0] = (unsigned char)(v >> 16);
		s[1] = (unsigned char)(v >> 8);
		s[2] = (unsigned char)v;
		for (size_t n = 1; n <= 3; n++) {
			if (n < 3 && (v & ((1u << (8 * (3 - n))) - 1)) != 0)
				continue;
			checked++;
			if (coffer_utf8_invalid_len(s, n) != ref_invalid_len(s, n) && wrong++ < 5)
				tap_diag("invalid_len %02x %02x %02x n=%zu: %zu, want %zu", s[0],
				         s[1], s[2], n, coffer_utf8_invalid_len(s, n),
				         ref_invalid_len(s, n));
		}
	}
	for (uint32_t v = 0; v < (1u << 24); v += 0x100) {
		s[0] = (unsigned char)(v >> 16);
		s[1] = (unsigned char)(v >> 8);
		for (size_t a = 0; a < sizeof tail_values; a++) {
			for (size_t b = 0; b < sizeof tail_values; b++) {
				s[2] = tail_values[a];
				s[3] = tail_values[b];
				checked++;
				if (coffer_utf8_invalid_len(s, 4) != ref_invalid_len(s, 4))
					wrong++;
			}
		}
	}
	ok(wrong == 0, "invalid_len equals the longest valid prefix (%ld checked, %ld wrong)",
	   checked, wrong);
	ok(get_bit(prefix1, 0xc2) && !get_bit(prefix1, 0xc1) && !get_bit(prefix1, 0xf5),
	   "the prefix table itself: C2 starts sequences, C1 and F5 do not");
	free(prefix1);
	free(prefix2);
	free(prefix3);
}

int main(void)
{
	test_boundaries();
	test_against_reference();
	test_encode();
	test_valid();
	test_invalid_len();
	return tap_done();
}
