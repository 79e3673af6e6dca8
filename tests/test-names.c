/*
 * test-names.c: account and folder name validation (engine/names.c).
 *
 * Hand cases for every rule in names.h, error details (named problem, hostile
 * bytes escaped, long names cut), then property tests over random inputs from
 * a fixed-seed PRNG: generated valid names canonicalise to the expected form,
 * canonical forms are fixed points, and random bytes never yield an accepted
 * name that breaks the rules.
 */
#include "engine/buf.h"
#include "engine/errors.h"
#include "engine/names.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static int account_is(const char *in, const char *want)
{
	struct coffer_buf out = COFFER_BUF_INIT;
	int r = coffer_names_account(in, strlen(in), &out);
	int good = r == 0 && strcmp(coffer_buf_str(&out), want) == 0;

	if (!good)
		tap_diag("account '%s': r=%d out='%s' err='%s'", in, r, coffer_buf_str(&out),
		         coffer_errmsg());
	coffer_buf_free(&out);
	return good;
}

/* Refused with EINVAL, an empty output, and a detail containing needle. */
static int account_bad(const char *in, size_t n, const char *needle)
{
	struct coffer_buf out = COFFER_BUF_INIT;
	int r = coffer_names_account(in, n, &out);
	int good = r == COFFER_EINVAL && out.len == 0 && strstr(coffer_errmsg(), needle) != NULL &&
	           strncmp(coffer_errmsg(), "account name '", 14) == 0;

	if (!good)
		tap_diag("account bad: r=%d err='%s' (want '%s')", r, coffer_errmsg(), needle);
	coffer_buf_free(&out);
	return good;
}

static int folder_is(const char *in, size_t n, const char *want)
{
	struct coffer_buf out = COFFER_BUF_INIT;
	int r = coffer_names_folder(in, n, &out);
	int good = r == 0 && strcmp(coffer_buf_str(&out), want) == 0 && out.len == strlen(want);

	if (!good)
		tap_diag("folder: r=%d out='%s' err='%s'", r, coffer_buf_str(&out),
		         coffer_errmsg());
	coffer_buf_free(&out);
	return good;
}

static int folder_bad(const char *in, size_t n, const char *needle)
{
	struct coffer_buf out = COFFER_BUF_INIT;
	int r = coffer_names_folder(in, n, &out);
	int good = r == COFFER_EINVAL && out.len == 0 && strstr(coffer_errmsg(), needle) != NULL &&
	           strncmp(coffer_errmsg(), "folder name '", 13) == 0;

	if (!good)
		tap_diag("folder bad: r=%d err='%s' (want '%s')", r, coffer_errmsg(), needle);
	coffer_buf_free(&out);
	return good;
}

/* No byte of the detail is a control character or DEL. */
static int printable_detail(void)
{
	const unsigned char *p = (const unsigned char *)coffer_errmsg();

	for (; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

static void test_accounts(void)
{
	char long_name[300];

	ok(account_is("Alice@Example.COM", "alice@example.com"), "account folds to lower case");
	ok(account_is("a.b+tag@mail.example.org", "a.b+tag@mail.example.org"), "dots and plus");
	ok(account_is("o'brien!#$%&*=?^_`{|}~-@x-y.example", "o'brien!#$%&*=?^_`{|}~-@x-y.example"),
	   "all atext specials in the local part");
	ok(account_is("u@xn--bcher-kva.example", "u@xn--bcher-kva.example"), "punycode domain");
	ok(account_bad("", 0, "empty"), "empty account refused");
	ok(account_bad("alice", 5, "no '@'"), "no @");
	ok(account_bad("alice@", 6, "empty domain"), "empty domain");
	ok(account_bad("@example.com", 12, "empty local part"), "empty local part");
	ok(account_bad("alice@example", 13, "two labels"), "single-label domain");
	ok(account_bad("a..b@example.com", 16, "'..'"), "double dot in local part");
	ok(account_bad(".a@example.com", 14, "starts with '.'"), "leading dot in local part");
	ok(account_bad("a.@example.com", 14, "ends with '.'"), "trailing dot in local part");
	ok(account_bad("a@b@example.com", 15, "more than one '@'"), "two @");
	ok(account_bad("alice@-example.com", 18, "'-'"), "label starting with -");
	ok(account_bad("alice@example-.com", 18, "'-'"), "label ending with -");
	ok(account_bad("alice@exa_mple.com", 18, "'_' not allowed in the domain"), "_ in domain");
	ok(account_bad("alice@example..com", 18, "empty domain label"), "empty label");
	ok(account_bad("alice@example.com.", 18, "empty domain label"), "trailing dot domain");
	ok(account_bad("al ice@example.com", 18, "' ' not allowed in the local part"), "space");
	ok(account_bad("\"al\"@example.com", 16, "'\"' not allowed"), "quotes refused");
	ok(account_bad("a/b@example.com", 15, "'/' not allowed"), "slash refused");
	ok(account_bad("a\0b@example.com", 15, "control character \\x00 at byte 1"), "NUL refused");
	ok(printable_detail(), "NUL detail is printable");
	ok(account_bad("j\xc3\xb6rg@example.com", 16, "non-ASCII byte at byte 1"), "UTF-8 refused");
	ok(strstr(coffer_errmsg(), "j\xc3\xb6rg") != NULL, "valid UTF-8 shown as itself in detail");
	ok(account_bad("\x1b[31mred@example.com", 20, "\\x1b[31mred"), "escape sequence escaped");
	ok(printable_detail(), "escape sequence detail is printable");

	memset(long_name, 'a', sizeof long_name);
	memcpy(long_name + 254 - 12, "@example.com", 12);
	long_name[254] = '\0';
	ok(account_is(long_name, long_name), "254-byte account accepted");
	memset(long_name, 'a', sizeof long_name);
	memcpy(long_name + 255 - 12, "@example.com", 12);
	long_name[255] = '\0';
	ok(account_bad(long_name, 255, "longer than 254 bytes"), "255-byte account refused");
	ok(strstr(coffer_errmsg(), "...") != NULL && strlen(coffer_errmsg()) < 200,
	   "long name cut in detail: %s", coffer_errmsg());
}

static void test_folders(void)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	char big[2048];
	size_t i;

	ok(folder_is("Lists/debian", 12, "Lists/debian"), "slash separator");
	ok(folder_is("Lists.debian", 12, "Lists/debian"), "dot separator canonicalises to /");
	ok(folder_is("a.b/c", 5, "a/b/c"), "mixed separators");
	ok(folder_is("inbox", 5, "INBOX"), "inbox folds to INBOX");
	ok(folder_is("InBoX", 5, "INBOX"), "InBoX folds to INBOX");
	ok(folder_is("INBOX/Sub", 9, "INBOX/Sub"), "INBOX child kept");
	ok(folder_is("Inboxes", 7, "Inboxes"), "Inboxes is not the inbox");
	ok(folder_is("Sent Items", 10, "Sent Items"), "space allowed");
	ok(folder_is("a&b", 3, "a&b"), "ampersand allowed");
	ok(folder_is("\xc3\x9c"
	             "ber/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x93\xa7",
	             17,
	             "\xc3\x9c"
	             "ber/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x93\xa7"),
	   "UTF-8 components");

	ok(folder_bad("a//b", 4, "empty component"), "double slash refused");
	ok(strcmp(coffer_errmsg(), "folder name 'a//b': empty component") == 0,
	   "detail is exact: %s", coffer_errmsg());
	ok(folder_bad("", 0, "empty"), "empty refused");
	ok(folder_bad("/a", 2, "starts with a separator"), "leading slash");
	ok(folder_bad(".a", 2, "starts with a separator"), "leading dot");
	ok(folder_bad("a/", 2, "ends with a separator"), "trailing slash");
	ok(folder_bad("a.", 2, "ends with a separator"), "trailing dot");
	ok(folder_bad("a..b", 4, "empty component"), "double dot separator");
	ok(folder_bad("a/.b", 4, "empty component"), "slash dot");
	ok(folder_bad(".", 1, "component '.'"), "'.' refused");
	ok(folder_bad("..", 2, "component '..'"), "'..' refused");
	ok(folder_bad("a/../b", 6, "component '..'"), "'..' inside refused");
	ok(folder_bad("../etc", 6, "component '..'"), "leading '..' refused");
	ok(folder_bad("a/./b", 5, "component '.'"), "'.' inside refused");
	ok(folder_bad("a\0b", 3, "NUL at byte 1"), "NUL refused");
	ok(strstr(coffer_errmsg(), "'a\\x00b'") != NULL && printable_detail(),
	   "NUL escaped in detail: %s", coffer_errmsg());
	ok(folder_bad("a\tb", 3, "control character U+0009"), "tab refused");
	ok(folder_bad("a\x7f", 2, "control character U+007F"), "DEL refused");
	ok(folder_bad("a\xc2\x85", 3, "control character U+0085"), "C1 control refused");
	ok(strstr(coffer_errmsg(), "\\xc2\\x85") != NULL, "C1 escaped in detail");
	ok(folder_bad("a\xff", 2, "invalid UTF-8 at byte 1"), "invalid byte refused");
	ok(strstr(coffer_errmsg(), "'a\\xff'") != NULL, "invalid byte escaped in detail");
	ok(folder_bad("\xc0\xaf", 2, "invalid UTF-8"), "overlong '/' refused");
	ok(folder_bad("\xed\xa0\x80", 3, "invalid UTF-8"), "surrogate refused");
	ok(folder_bad("\xf4\x90\x80\x80", 4, "invalid UTF-8"), "above U+10FFFF refused");
	ok(folder_bad("\xe6\x97", 2, "invalid UTF-8"), "truncated sequence refused");
	ok(folder_bad("x\x1b]0;pwned\x07", 11, "control character"), "terminal escape refused");
	ok(printable_detail(), "terminal escape detail is printable");
	ok(folder_is("it's\\", 5, "it's\\"), "quote and backslash accepted");
	ok(folder_bad("it's\\/", 6, "ends with a separator"), "refused with quote in name");
	ok(strstr(coffer_errmsg(), "'it\\x27s\\x5c/'") != NULL,
	   "quote and backslash escaped in detail: %s", coffer_errmsg());

	memset(big, 'x', sizeof big);
	big[255] = '\0';
	ok(folder_is(big, 255, big), "255-byte component accepted");
	memset(big, 'x', sizeof big);
	ok(folder_bad(big, 256, "component longer than 255 bytes"), "256-byte component refused");
	for (i = 200; i < 1024; i += 201)
		big[i] = '/';
	big[1024] = '\0';
	ok(folder_is(big, 1024, big), "1024-byte name accepted");
	ok(folder_bad(big, 1025, "longer than 1024 bytes"), "1025-byte name refused");
	ok(strlen(coffer_errmsg()) < 120 && strstr(coffer_errmsg(), "...'") != NULL,
	   "long name cut in detail");

	/* Output is reset, not appended. */
	coffer_buf_puts(&b, "junk");
	ok(coffer_names_folder("a/b", 3, &b) == 0 && strcmp(coffer_buf_str(&b), "a/b") == 0,
	   "output buffer reset first");
	ok(coffer_names_folder("a//b", 4, &b) == COFFER_EINVAL && b.len == 0,
	   "output empty on failure");
	coffer_buf_free(&b);

	ok(coffer_names_is_inbox("INBOX"), "is_inbox INBOX");
	ok(!coffer_names_is_inbox("INBOX/x"), "is_inbox INBOX/x");
	ok(!coffer_names_is_inbox("Lists"), "is_inbox Lists");
	ok(!coffer_names_is_inbox(NULL), "is_inbox NULL");
}

static void test_show(void)
{
	char show[COFFER_NAMES_SHOW_SIZE], in[300];
	size_t i;

	ok(strcmp(coffer_names_show("abc", 3, show), "abc") == 0, "show plain");
	ok(strcmp(coffer_names_show("a\0\n\x7f", 4, show), "a\\x00\\x0a\\x7f") == 0,
	   "show controls");
	ok(strcmp(coffer_names_show("\xe2\x80\xae", 3, show), "\\xe2\\x80\\xae") == 0,
	   "show escapes a bidi override");
	/* 63 ASCII bytes then a 2-byte character that would cross the limit. */
	memset(in, 'a', 63);
	memcpy(in + 63, "\xc3\xa9zz", 4);
	coffer_names_show(in, 67, show);
	ok(strlen(show) == 66 && strcmp(show + 63, "...") == 0,
	   "show cuts on a character boundary");
	for (i = 0; i < sizeof in; i++)
		in[i] = (char)0x01;
	coffer_names_show(in, sizeof in, show);
	ok(strlen(show) == 4 * COFFER_NAMES_SHOW_MAX + 3, "worst case fits the display buffer");
}

/* ---- properties ---------------------------------------------------------- */

static const char *const pieces[] = {
	"a",
	"Z",
	"0",
	" ",
	"&",
	"-",
	"_",
	"'",
	"\\",
	"\xc3\xa9",
	"\xe6\x97\xa5",
	"\xf0\x9f\x93\xa7",
	"\xc2\xa0",
	"~",
	"+",
	",",
	"INBOX",
	"inbox",
};

static void random_component(struct coffer_buf *b)
{
	size_t k, n = 1 + rng() % 6;

	for (k = 0; k < n; k++)
		coffer_buf_puts(b, pieces[rng() % (sizeof pieces / sizeof pieces[0])]);
}

static void test_folder_properties(void)
{
	struct coffer_buf in = COFFER_BUF_INIT, want = COFFER_BUF_INIT, out = COFFER_BUF_INIT,
			  again = COFFER_BUF_INIT;
	size_t iter, c, ncomp, i, bad_generated = 0, bad_random = 0, accepted_random = 0;
	unsigned char raw[24];
	uint32_t cp;

	for (iter = 0; iter < 20000; iter++) {
		coffer_buf_reset(&in);
		coffer_buf_reset(&want);
		ncomp = 1 + rng() % 5;
		for (c = 0; c < ncomp; c++) {
			if (c > 0) {
				coffer_buf_putc(&in, rng() % 2 ? '/' : '.');
				coffer_buf_putc(&want, '/');
			}
			size_t before = in.len;

			random_component(&in);
			coffer_buf_append(&want, in.data + before, in.len - before);
		}
		if (ncomp == 1 && want.len == 5 &&
		    strncasecmp((char *)want.data, "inbox", 5) == 0) {
			coffer_buf_reset(&want);
			coffer_buf_puts(&want, "INBOX");
		}
		if (coffer_names_folder((char *)in.data, in.len, &out) != 0 ||
		    out.len != want.len || memcmp(out.data, want.data, want.len) != 0 ||
		    coffer_names_folder((char *)out.data, out.len, &again) != 0 ||
		    again.len != out.len || memcmp(again.data, out.data, out.len) != 0) {
			if (bad_generated++ == 0)
				tap_diag("generated '%s' -> '%s' (%s)", coffer_buf_str(&in),
				         coffer_buf_str(&out), coffer_errmsg());
		}
	}
	ok(bad_generated == 0,
	   "20000 generated folder names canonicalise as expected, idempotently");

	/* Random bytes: anything accepted is valid UTF-8 without controls, has no
	 * '.', no empty component, and is a fixed point. */
	for (iter = 0; iter < 200000; iter++) {
		size_t n = rng() % sizeof raw;

		for (i = 0; i < n; i++) {
			uint32_t r = rng() % 16;

			raw[i] = r < 8 ? (unsigned char)("ab/.\x01\xc3\xa9\x80"[r])
			               : (unsigned char)rng();
		}
		if (coffer_names_folder((char *)raw, n, &out) != 0)
			continue;
		accepted_random++;
		int good = out.len > 0 && memchr(out.data, '.', out.len) == NULL &&
		           out.data[0] != '/' && out.data[out.len - 1] != '/' &&
		           strstr((char *)out.data, "//") == NULL &&
		           strlen((char *)out.data) == out.len;
		for (i = 0; good && i < out.len;) {
			unsigned char b0 = out.data[i];
			size_t len = b0 < 0x80 ? 1 : b0 < 0xe0 ? 2 : b0 < 0xf0 ? 3 : 4;

			cp = b0 < 0x80 ? b0 : 0x80;
			if (b0 < 0x20 || b0 == 0x7f || (b0 >= 0x80 && b0 < 0xc2) || b0 > 0xf4 ||
			    i + len > out.len)
				good = 0;
			if (b0 == 0xc2 && i + 1 < out.len && out.data[i + 1] < 0xa0)
				good = 0; /* C1 control */
			(void)cp;
			i += len;
		}
		if (good && (coffer_names_folder((char *)out.data, out.len, &again) != 0 ||
		             again.len != out.len || memcmp(again.data, out.data, out.len) != 0))
			good = 0;
		if (!good && bad_random++ == 0)
			tap_diag("random input accepted badly: '%s'", coffer_buf_str(&out));
	}
	ok(bad_random == 0, "random bytes: %zu accepted folder names all well-formed fixed points",
	   accepted_random);
	ok(accepted_random > 1000, "random test accepted enough names to mean something");
	coffer_buf_free(&in);
	coffer_buf_free(&want);
	coffer_buf_free(&out);
	coffer_buf_free(&again);
}

static void test_account_properties(void)
{
	static const char local_chars[] = "abcXYZ019!#$%&'*+-=?^_`{|}~";
	static const char domain_chars[] = "abcXYZ019";
	struct coffer_buf in = COFFER_BUF_INIT, out = COFFER_BUF_INIT, again = COFFER_BUF_INIT;
	size_t iter, i, k, bad = 0, accepted = 0;
	unsigned char raw[40];

	for (iter = 0; iter < 20000; iter++) {
		coffer_buf_reset(&in);
		size_t atoms = 1 + rng() % 3, labels = 2 + rng() % 3;

		for (i = 0; i < atoms; i++) {
			if (i > 0)
				coffer_buf_putc(&in, '.');
			for (k = 1 + rng() % 5; k > 0; k--)
				coffer_buf_putc(&in, local_chars[rng() % (sizeof local_chars - 1)]);
		}
		coffer_buf_putc(&in, '@');
		for (i = 0; i < labels; i++) {
			if (i > 0)
				coffer_buf_putc(&in, '.');
			coffer_buf_putc(&in, domain_chars[rng() % (sizeof domain_chars - 1)]);
			if (rng() % 2) {
				coffer_buf_putc(&in, '-');
				coffer_buf_putc(&in,
				                domain_chars[rng() % (sizeof domain_chars - 1)]);
			}
		}
		int good = coffer_names_account((char *)in.data, in.len, &out) == 0 &&
		           out.len == in.len;
		for (i = 0; good && i < in.len; i++)
			if (out.data[i] !=
			    (in.data[i] >= 'A' && in.data[i] <= 'Z' ? in.data[i] + 32 : in.data[i]))
				good = 0;
		if (!good && bad++ == 0)
			tap_diag("generated account '%s': %s", coffer_buf_str(&in),
			         coffer_errmsg());
	}
	ok(bad == 0, "20000 generated accounts accepted and lower-cased");

	bad = 0;
	for (iter = 0; iter < 200000; iter++) {
		size_t n = 3 + rng() % 20;

		for (i = 0; i < n; i++)
			raw[i] = (unsigned char)("aBab.@-c\x01\xc3_"[rng() % (i % 5 ? 8 : 11)]);
		if (coffer_names_account((char *)raw, n, &out) != 0)
			continue;
		accepted++;
		int good = coffer_names_account((char *)out.data, out.len, &again) == 0 &&
		           again.len == out.len && memcmp(again.data, out.data, out.len) == 0 &&
		           memchr(out.data, '@', out.len) != NULL;
		for (i = 0; good && i < out.len; i++)
			if (out.data[i] < 0x21 || out.data[i] > 0x7e ||
			    (out.data[i] >= 'A' && out.data[i] <= 'Z'))
				good = 0;
		if (!good && bad++ == 0)
			tap_diag("random account accepted badly: '%s'", coffer_buf_str(&out));
	}
	ok(bad == 0 && accepted > 100, "random bytes: %zu accepted accounts are fixed points",
	   accepted);
	coffer_buf_free(&in);
	coffer_buf_free(&out);
	coffer_buf_free(&again);
}

int main(void)
{
	test_accounts();
	test_folders();
	test_show();
	test_folder_properties();
	test_account_properties();
	return tap_done();
}
