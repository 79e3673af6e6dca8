/*
 * test-buf.c: the growable buffer and the bounded reader (engine/buf.h).
 *
 * Covers appends of every kind, printf, JSON string escaping (control
 * characters, quotes, backslash, NUL, UTF-8 passed through, each invalid
 * UTF-8 sequence replaced by U+FFFD so the output is always valid JSON), growth with a
 * bounded number of reallocations, the sticky failure of an impossible
 * reservation, growable arrays (coffer_array_grow: first allocation, doubling,
 * overflow refused with the array untouched), readers that fail (and stay
 * failed) on short input, and the big-endian key helpers, whose byte order
 * must be numeric order.
 */
#include "engine/buf.h"
#include "engine/errors.h"
#include "engine/utf8.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int json_is(const char *in, size_t n, const char *want)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	int good;

	good = coffer_buf_put_json_str(&b, in, n) == 0 && b.len == strlen(want) &&
	       memcmp(b.data, want, b.len) == 0;
	if (!good)
		tap_diag("json: got [%s] want [%s]", coffer_buf_str(&b), want);
	coffer_buf_free(&b);
	return good;
}

static void test_appends(void)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	static const unsigned char bin[] = { 'a', 0, 'b', 0xff, 0 };

	ok(b.data == NULL && b.len == 0 && b.cap == 0 && !b.failed, "COFFER_BUF_INIT is empty");
	ok(strcmp(coffer_buf_str(&b), "") == 0, "an empty buffer reads as \"\"");
	ok(coffer_buf_ok(&b) == 0, "an empty buffer is ok");
	ok(coffer_buf_append(&b, "", 0) == 0 && b.len == 0 && b.data && b.data[0] == '\0',
	   "appending 0 bytes allocates and terminates");

	ok(coffer_buf_append(&b, bin, sizeof bin) == 0 && b.len == sizeof bin &&
	       memcmp(b.data, bin, sizeof bin) == 0 && b.data[b.len] == '\0',
	   "append keeps binary bytes (NUL, 0xff) and terminates past len");
	coffer_buf_reset(&b);
	ok(coffer_buf_puts(&b, "hello") == 0 && coffer_buf_putc(&b, ' ') == 0 &&
	       coffer_buf_putc(&b, 0x1ff) == 0,
	   "puts and putc");
	ok(b.len == 7 && memcmp(b.data, "hello \xff", 7) == 0, "putc truncates its int to a byte");
	ok(coffer_buf_printf(&b, "[%d|%s|%05.1f]", -42, "x", 2.25) == 0 &&
	       strcmp(coffer_buf_str(&b), "hello \xff[-42|x|002.2]") == 0,
	   "printf appends formatted text");
	ok(coffer_buf_printf(&b, "%s", "") == 0 && b.len == 20, "printf of nothing adds nothing");
	ok(b.data[b.len] == '\0', "still terminated");

	{
		unsigned char *before = b.data;
		size_t cap = b.cap;

		coffer_buf_reset(&b);
		ok(b.len == 0 && b.data == before && b.cap == cap &&
		       strcmp(coffer_buf_str(&b), "") == 0,
		   "reset empties but keeps the memory");
	}
	coffer_buf_free(&b);
	ok(b.data == NULL && b.len == 0 && b.cap == 0 && !b.failed, "free returns to INIT");
	coffer_buf_free(&b);
	ok(b.data == NULL, "free twice is harmless");

	/* printf longer than the initial capacity, several times over */
	{
		char big[5000];

		memset(big, 'q', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		ok(coffer_buf_printf(&b, "<%s>", big) == 0 && b.len == sizeof big + 1 &&
		       b.data[0] == '<' && b.data[b.len - 1] == '>' && b.data[b.len] == '\0' &&
		       b.data[2500] == 'q',
		   "printf of 5000 bytes grows the buffer");
	}
	coffer_buf_free(&b);

	/* fixed-width little-endian integers */
	ok(coffer_buf_put_u8(&b, 0xab) == 0 && coffer_buf_put_u32le(&b, 0x01020304u) == 0 &&
	       coffer_buf_put_u64le(&b, 0x1122334455667788ull) == 0,
	   "put_u8, put_u32le, put_u64le");
	{
		static const unsigned char want[] = { 0xab, 4,    3,    2,    1,    0x88, 0x77,
			                              0x66, 0x55, 0x44, 0x33, 0x22, 0x11 };

		ok(b.len == sizeof want && memcmp(b.data, want, sizeof want) == 0,
		   "little-endian byte order");
	}
	coffer_buf_free(&b);
}

static void test_growth(void)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	size_t caps = 0, last_cap = 0, bad = 0;
	const size_t total = 1000000;

	for (size_t i = 0; i < total; i++) {
		if (coffer_buf_putc(&b, (int)('a' + i % 26)) < 0)
			break;
		if (b.cap != last_cap) {
			caps++;
			last_cap = b.cap;
		}
		if (b.cap < b.len + 1)
			bad++;
	}
	ok(b.len == total && coffer_buf_ok(&b) == 0, "a million one-byte appends");
	ok(bad == 0, "capacity always covers len + NUL");
	ok(caps <= 20, "capacity changed %zu times (doubling: at most ~log2(n))", caps);
	{
		size_t wrong = 0;

		for (size_t i = 0; i < total; i++)
			if (b.data[i] != 'a' + i % 26)
				wrong++;
		ok(wrong == 0 && b.data[total] == '\0', "contents survive every reallocation");
	}
	coffer_buf_free(&b);
}

static void test_failure(void)
{
	struct coffer_buf b = COFFER_BUF_INIT;

	coffer_buf_puts(&b, "keep");
	ok(coffer_buf_reserve(&b, SIZE_MAX) == COFFER_ENOMEM, "reserving SIZE_MAX fails");
	ok(coffer_buf_ok(&b) == COFFER_ENOMEM && b.failed, "the failure is recorded");
	ok(coffer_buf_reserve(&b, SIZE_MAX - b.len) == COFFER_ENOMEM,
	   "reserve past SIZE_MAX - len - 1 fails without wrapping");
	ok(coffer_buf_puts(&b, "x") == COFFER_ENOMEM && coffer_buf_putc(&b, 'y') == COFFER_ENOMEM &&
	       coffer_buf_append(&b, "z", 1) == COFFER_ENOMEM &&
	       coffer_buf_printf(&b, "%d", 1) == COFFER_ENOMEM &&
	       coffer_buf_put_u32le(&b, 1) == COFFER_ENOMEM &&
	       coffer_buf_reserve(&b, 1) == COFFER_ENOMEM,
	   "every later append fails (sticky)");
	ok(coffer_buf_put_json_str(&b, "a", 1) == COFFER_ENOMEM, "and so does put_json_str");
	ok(b.len == 4 && strcmp(coffer_buf_str(&b), "keep") == 0,
	   "a failed buffer keeps its old contents");
	coffer_buf_reset(&b);
	ok(coffer_buf_ok(&b) == 0 && coffer_buf_puts(&b, "again") == 0 &&
	       strcmp(coffer_buf_str(&b), "again") == 0,
	   "reset clears the failure");
	coffer_buf_free(&b);

	/* a fresh buffer too: the overflow check must not depend on existing memory */
	ok(coffer_buf_reserve(&b, SIZE_MAX - 1) == COFFER_ENOMEM && b.data == NULL,
	   "reserve(SIZE_MAX - 1) on an empty buffer fails cleanly, without asking malloc");
	coffer_buf_free(&b);
}

static void test_array_grow(void)
{
	struct elem {
		uint64_t x;
		char tag[12];
	} *v = NULL, *before;
	size_t cap = 0, n, caps = 0, bad = 0;
	unsigned char *bytes = NULL;
	size_t bcap = 0;

	ok(coffer_array_grow(&v, &cap, 0, sizeof *v, 16) == 0 && v != NULL && cap == 16,
	   "growth from an empty array allocates first elements");
	before = v;
	ok(coffer_array_grow(&v, &cap, 5, sizeof *v, 16) == 0 && v == before && cap == 16,
	   "n < cap: nothing changes");
	for (n = 0; n < 16; n++) {
		v[n].x = n * 0x0101010101010101ull;
		snprintf(v[n].tag, sizeof v[n].tag, "e%zu", n);
	}
	ok(coffer_array_grow(&v, &cap, 16, sizeof *v, 16) == 0 && cap == 32,
	   "n == cap: the capacity doubles");
	{
		size_t wrong = 0;
		char tag[12];

		for (size_t i = 0; i < 16; i++) {
			snprintf(tag, sizeof tag, "e%zu", i);
			if (v[i].x != i * 0x0101010101010101ull || strcmp(v[i].tag, tag) != 0)
				wrong++;
		}
		ok(wrong == 0, "the elements survive the reallocation");
	}
	for (size_t last = cap; n < 100000; n++) {
		if (coffer_array_grow(&v, &cap, n, sizeof *v, 16) < 0)
			break;
		if (cap != last) {
			if (cap != 2 * last)
				bad++;
			caps++;
			last = cap;
		}
		v[n].x = n;
	}
	ok(n == 100000 && bad == 0, "100000 additions, every growth a doubling");
	ok(caps <= 13 && cap >= n, "capacity changed %zu times (16 << 13 covers 100000)", caps);

	/* refusals at n == cap: nothing is asked of realloc, the array is as it was */
	{
		size_t full = cap;

		before = v;
		ok(coffer_array_grow(&v, &cap, full, SIZE_MAX / 2, 16) == COFFER_ENOMEM &&
		       v == before && cap == full,
		   "n * size past SIZE_MAX: COFFER_ENOMEM, array and capacity untouched");
		ok(coffer_array_grow(&v, &cap, full, (size_t)PTRDIFF_MAX / full, 16) ==
		           COFFER_ENOMEM &&
		       v == before && cap == full,
		   "(n + 1) * size past PTRDIFF_MAX: refused, untouched");
		ok(v[0].x == 0 && v[n - 1].x == n - 1, "the contents are intact after refusals");
	}
	free(v);

	v = NULL;
	cap = 0;
	ok(coffer_array_grow(&v, &cap, 0, (size_t)PTRDIFF_MAX + 1, 16) == COFFER_ENOMEM &&
	       v == NULL && cap == 0,
	   "an element larger than any object: refused on an empty array, still NULL");
	ok(coffer_array_grow(&v, &cap, 0, 0, 16) == COFFER_ENOMEM && v == NULL && cap == 0,
	   "size 0 is refused");

	ok(coffer_array_grow(&bytes, &bcap, 0, 1, 0) == 0 && bytes != NULL && bcap == 1,
	   "first 0 starts at one element");
	ok(coffer_array_grow(&bytes, &bcap, 1, 1, 0) == 0 && bcap == 2, "and then doubles");
	free(bytes);
	bytes = NULL;
	bcap = 0;
	ok(coffer_array_grow(&bytes, &bcap, 0, 1, SIZE_MAX) == 0 && bytes != NULL && bcap == 1,
	   "a first beyond the largest object falls back to n + 1");
	free(bytes);
}

static void test_json(void)
{
	char all[32];
	struct coffer_buf b = COFFER_BUF_INIT;

	ok(json_is("", 0, "\"\""), "empty string");
	ok(json_is("plain text", 10, "\"plain text\""), "plain ASCII unchanged");
	ok(json_is("a\"b\\c", 5, "\"a\\\"b\\\\c\""), "quote and backslash escaped");
	ok(json_is("\n\r\t", 3, "\"\\n\\r\\t\""), "newline, CR, tab as short escapes");
	ok(json_is("a\0b", 3, "\"a\\u0000b\""), "NUL inside the range is \\u0000, not an end");
	ok(json_is("\x01\x08\x0c\x1b\x1f\x7f", 6, "\"\\u0001\\u0008\\u000c\\u001b\\u001f\\u007f\""),
	   "other controls and DEL as \\u00XX");
	ok(json_is("/ ~ </script>", 13, "\"/ ~ </script>\""), "printable ASCII passes through");
	ok(json_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa8", 14,
	           "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa8\""),
	   "UTF-8 (2, 3 and 4 byte sequences) passes through");
	ok(json_is("\xc2\x85", 2, "\"\xc2\x85\""),
	   "a C1 control as UTF-8 passes through (valid JSON)");
	ok(json_is("abc", 2, "\"ab\""), "only n bytes are used");

	/* every control character comes out escaped: no raw byte < 0x20 in the output */
	for (int i = 0; i < 32; i++)
		all[i] = (char)i;
	coffer_buf_put_json_str(&b, all, sizeof all);
	{
		int raw = 0;

		for (size_t i = 0; i < b.len; i++)
			if (b.data[i] < 0x20)
				raw++;
		ok(raw == 0 && b.data[0] == '"' && b.data[b.len - 1] == '"',
		   "32 control characters: none raw in the output (%zu bytes)", b.len);
	}
	/* appends to what is there */
	coffer_buf_reset(&b);
	coffer_buf_puts(&b, "{\"k\":");
	coffer_buf_put_json_str(&b, "v", 1);
	coffer_buf_putc(&b, '}');
	ok(strcmp(coffer_buf_str(&b), "{\"k\":\"v\"}") == 0, "put_json_str appends");
	coffer_buf_free(&b);
}

#define FFFD "\xef\xbf\xbd"

/* 1 if the n bytes at p are exactly one JSON string literal (RFC 8259) in
 * valid UTF-8 with no raw control characters. */
static int is_json_string(const unsigned char *p, size_t n)
{
	size_t i = 1;

	if (n < 2 || p[0] != '"' || p[n - 1] != '"' || !coffer_utf8_valid(p, n))
		return 0;
	while (i < n - 1) {
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '"')
			return 0;
		if (p[i] != '\\') {
			i++;
			continue;
		}
		if (i + 1 >= n - 1)
			return 0;
		if (strchr("\"\\/bfnrt", p[i + 1]) != NULL && p[i + 1] != '\0') {
			i += 2;
			continue;
		}
		if (p[i + 1] != 'u' || i + 6 > n - 1)
			return 0;
		for (size_t k = 2; k < 6; k++)
			if (strchr("0123456789abcdefABCDEF", p[i + k]) == NULL || p[i + k] == '\0')
				return 0;
		i += 6;
	}
	return 1;
}

static void test_json_invalid_utf8(void)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	unsigned char in[16];
	long bad = 0, changed = 0;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	ok(json_is("\x80", 1, "\"" FFFD "\""), "a lone continuation byte becomes U+FFFD");
	ok(json_is("a\xfe\xff"
	           "b",
	           4, "\"a" FFFD FFFD "b\""),
	   "FE and FF are one U+FFFD each");
	ok(json_is("Gr\xfc\xdf"
	           "e",
	           5, "\"Gr" FFFD FFFD "e\""),
	   "Latin-1 text: each stray byte becomes U+FFFD, the ASCII stays");
	ok(json_is("\xc0\xaf", 2, "\"" FFFD FFFD "\""), "an overlong '/' is two U+FFFD");
	ok(json_is("\xe0\x80\xaf", 3, "\"" FFFD FFFD FFFD "\""), "a three-byte overlong is three");
	ok(json_is("\xed\xa0\x80", 3, "\"" FFFD FFFD FFFD "\""),
	   "a surrogate (U+D800) is replaced, one U+FFFD a byte");
	ok(json_is("\xf4\x90\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\""),
	   "U+110000 is replaced, one U+FFFD a byte");
	ok(json_is("caf\xc3", 4, "\"caf" FFFD "\""), "a sequence cut by the end is one U+FFFD");
	ok(json_is("\xe2\x82", 2, "\"" FFFD "\"") && json_is("\xf0\x9f\x93", 3, "\"" FFFD "\""),
	   "three- and four-byte sequences cut short are one U+FFFD each");
	ok(json_is("\xc3\xa9", 1, "\"" FFFD "\""), "a sequence cut by n is replaced too");
	ok(json_is("\xe2\x82\"", 3, "\"" FFFD "\\\"\""),
	   "a broken sequence does not swallow the quote after it");
	ok(json_is("\xc3\\\n\x01", 4, "\"" FFFD "\\\\\\n\\u0001\""),
	   "nor a backslash, newline or control after it: they are still escaped");
	ok(json_is("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64", 13,
	           "\"a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d\""),
	   "Unicode's example (table 3-8): one U+FFFD per maximal subpart");
	ok(json_is("ok \xe2\x82\xac \xff \xf0\x9f\x93\xa8", 13,
	           "\"ok \xe2\x82\xac " FFFD " \xf0\x9f\x93\xa8\""),
	   "valid sequences around an invalid byte are kept as they are");

	/* every two-byte input, and random short ones: always one valid JSON string */
	for (unsigned v = 0; v < 65536; v++) {
		in[0] = (unsigned char)(v >> 8);
		in[1] = (unsigned char)v;
		coffer_buf_reset(&b);
		if (coffer_buf_put_json_str(&b, (const char *)in, 2) != 0 ||
		    !is_json_string(b.data, b.len))
			bad++;
	}
	for (int t = 0; t < 50000; t++) {
		size_t n = 0, len;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		len = (size_t)(x % sizeof in);
		for (n = 0; n < len; n++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* mostly bytes that matter: leads, continuations, ASCII specials */
			in[n] = (unsigned char)(x & 1 ? 0x80 + ((x >> 8) % 0x80)
			                              : (x >> 8) % 0x100);
		}
		coffer_buf_reset(&b);
		if (coffer_buf_put_json_str(&b, (const char *)in, len) != 0 ||
		    !is_json_string(b.data, b.len))
			bad++;
		/* valid UTF-8 with nothing to escape comes out as it went in */
		if (coffer_utf8_valid(in, len) && memchr(in, '"', len) == NULL &&
		    memchr(in, '\\', len) == NULL && memchr(in, 0x7f, len) == NULL) {
			int ctl = 0;

			for (size_t k = 0; k < len; k++)
				ctl |= in[k] < 0x20;
			if (!ctl && (b.len != len + 2 || memcmp(b.data + 1, in, len) != 0))
				changed++;
		}
	}
	ok(bad == 0, "all 65536 two-byte inputs and 50000 random ones give valid JSON (%ld bad)",
	   bad);
	ok(changed == 0, "valid UTF-8 needing no escapes is copied unchanged (%ld changed)",
	   changed);
	ok(!is_json_string((const unsigned char *)"\"\xff\"", 3) &&
	       !is_json_string((const unsigned char *)"\"a\"b\"", 5) &&
	       is_json_string((const unsigned char *)"\"\\u00e9\"", 8),
	   "the JSON checker itself tells good from bad");
	coffer_buf_free(&b);
}

static void test_reader(void)
{
	static const unsigned char in[] = { 7, 4, 3, 2, 1, 8, 7, 6, 5, 4, 3, 2, 1, 'x', 'y', 'z' };
	struct coffer_rd r;
	uint8_t u8 = 0;
	uint32_t u32 = 0;
	uint64_t u64 = 0;
	const unsigned char *p = NULL;
	unsigned char dst[4] = { 0 };

	coffer_rd_init(&r, in, sizeof in);
	ok(coffer_rd_u8(&r, &u8) == 0 && u8 == 7, "rd_u8");
	ok(coffer_rd_u32le(&r, &u32) == 0 && u32 == 0x01020304u, "rd_u32le");
	ok(coffer_rd_u64le(&r, &u64) == 0 && u64 == 0x0102030405060708ull, "rd_u64le");
	ok(coffer_rd_bytes(&r, 1, &p) == 0 && p == in + 13, "rd_bytes points into the input");
	ok(coffer_rd_copy(&r, dst, 2) == 0 && memcmp(dst, "yz", 2) == 0 && r.left == 0,
	   "rd_copy copies; range used up");
	ok(coffer_rd_bytes(&r, 0, &p) == 0 && !r.failed, "reading 0 bytes at the end is fine");
	ok(coffer_rd_u8(&r, &u8) == COFFER_ECORRUPT && r.failed, "reading past the end: ECORRUPT");

	/* each getter fails on a range one byte too short, and leaves the output alone */
	coffer_rd_init(&r, in, 3);
	u32 = 0xdeadbeef;
	ok(coffer_rd_u32le(&r, &u32) == COFFER_ECORRUPT && u32 == 0xdeadbeef && r.left == 3,
	   "u32 from 3 bytes fails, output and position untouched");
	coffer_rd_init(&r, in, 7);
	u64 = 42;
	ok(coffer_rd_u64le(&r, &u64) == COFFER_ECORRUPT && u64 == 42, "u64 from 7 bytes fails");
	coffer_rd_init(&r, in, 0);
	ok(coffer_rd_u8(&r, &u8) == COFFER_ECORRUPT, "u8 from 0 bytes fails");
	coffer_rd_init(&r, in, 2);
	memset(dst, 0, sizeof dst);
	ok(coffer_rd_copy(&r, dst, 3) == COFFER_ECORRUPT && dst[0] == 0, "copy of 3 from 2 fails");
	coffer_rd_init(&r, in, 2);
	ok(coffer_rd_bytes(&r, SIZE_MAX, &p) == COFFER_ECORRUPT, "bytes(SIZE_MAX) fails");

	/* sticky: after one failure even reads that would fit fail */
	coffer_rd_init(&r, in, sizeof in);
	ok(coffer_rd_bytes(&r, sizeof in + 1, &p) == COFFER_ECORRUPT, "an oversized read fails");
	ok(r.left == sizeof in, "without consuming anything");
	ok(coffer_rd_u8(&r, &u8) == COFFER_ECORRUPT &&
	       coffer_rd_u32le(&r, &u32) == COFFER_ECORRUPT &&
	       coffer_rd_bytes(&r, 0, &p) == COFFER_ECORRUPT &&
	       coffer_rd_copy(&r, dst, 1) == COFFER_ECORRUPT,
	   "then every later read fails too (sticky)");
	coffer_rd_init(&r, in, sizeof in);
	ok(coffer_rd_u8(&r, &u8) == 0 && !r.failed, "init resets the failure");
}

static void test_be(void)
{
	unsigned char k[8], a[8], b[8];
	int wrong = 0;

	coffer_put_u32be(k, 0x01020304u);
	ok(memcmp(k, "\x01\x02\x03\x04", 4) == 0 && coffer_get_u32be(k) == 0x01020304u,
	   "u32 big-endian layout and round trip");
	coffer_put_u64be(k, 0x0102030405060708ull);
	ok(memcmp(k, "\x01\x02\x03\x04\x05\x06\x07\x08", 8) == 0 &&
	       coffer_get_u64be(k) == 0x0102030405060708ull,
	   "u64 big-endian layout and round trip");
	coffer_put_u32be(k, UINT32_MAX);
	ok(coffer_get_u32be(k) == UINT32_MAX, "u32 max");
	coffer_put_u64be(k, UINT64_MAX);
	ok(coffer_get_u64be(k) == UINT64_MAX, "u64 max");
	coffer_put_u64be(k, 0x8000000000000001ull);
	ok(coffer_get_u64be(k) == 0x8000000000000001ull, "u64 with the top bit set");

	/* memcmp order is numeric order, which is what LMDB keys rely on */
	srand(12345);
	for (int i = 0; i < 20000; i++) {
		uint64_t x = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
		uint64_t y = (i % 3 == 0) ? x + 1 : ((uint64_t)rand() << 40) ^ (uint64_t)rand();
		int c;

		coffer_put_u64be(a, x);
		coffer_put_u64be(b, y);
		c = memcmp(a, b, 8);
		if ((x < y) != (c < 0) || (x == y) != (c == 0))
			wrong++;
		coffer_put_u32be(a, (uint32_t)x);
		coffer_put_u32be(b, (uint32_t)y);
		c = memcmp(a, b, 4);
		if (((uint32_t)x < (uint32_t)y) != (c < 0))
			wrong++;
	}
	ok(wrong == 0, "byte order equals numeric order for 20000 random pairs (%d wrong)", wrong);
}

int main(void)
{
	test_appends();
	test_growth();
	test_failure();
	test_array_grow();
	test_json();
	test_json_invalid_utf8();
	test_reader();
	test_be();
	return tap_done();
}
