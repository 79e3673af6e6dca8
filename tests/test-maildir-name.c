/*
 * test-maildir-name.c: Maildir file names, modified UTF-7 and Maildir++
 * directory names (maildir/name.c).
 *
 * Hand cases from real Maildir writers (Dovecot, Courier, the RFC 3501
 * examples), strict-decoding refusals, then round-trip properties over random
 * inputs from a fixed-seed PRNG:
 *   - format(parse(x)) is canonical and parses back to the same fields;
 *   - mutf7 decode(encode(x)) == x for valid UTF-8, and encode(decode(y)) == y
 *     for every y that decodes (one spelling per name);
 *   - dir_to_folder(folder_to_dir(f)) == f.
 */
#include "engine/buf.h"
#include "engine/errors.h"
#include "engine/names.h"
#include "maildir/name.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static int parse(const char *s, struct coffer_maildir_name *m)
{
	return coffer_maildir_name_parse(s, strlen(s), m);
}

static int parse_bad(const char *s, size_t n, const char *needle)
{
	struct coffer_maildir_name m;
	int r = coffer_maildir_name_parse(s, n, &m);
	int good = r == COFFER_EINVAL && strstr(coffer_errmsg(), needle) != NULL &&
	           strncmp(coffer_errmsg(), "Maildir file name '", 19) == 0;

	if (!good)
		tap_diag("parse bad: r=%d err='%s' (want '%s')", r, coffer_errmsg(), needle);
	return good;
}

/* The canonical form of name s. */
static int canonical_is(const char *s, const char *want)
{
	struct coffer_maildir_name m;
	struct coffer_buf out = COFFER_BUF_INIT;
	int good = parse(s, &m) == 0 &&
	           coffer_maildir_name_format(&out, s, m.unique_len, m.has_info, m.flags,
	                                      m.keywords) == 0 &&
	           strcmp(coffer_buf_str(&out), want) == 0;

	if (!good)
		tap_diag("canonical '%s' -> '%s' (%s)", s, coffer_buf_str(&out), coffer_errmsg());
	coffer_buf_free(&out);
	return good;
}

static void test_parse(void)
{
	struct coffer_maildir_name m;
	char big[300];

	ok(parse("1700000000.M123456P7890.mail.example.org,S=4321,W=4400:2,FS", &m) == 0 &&
	       m.unique_len == 54 && m.has_info &&
	       m.flags == (COFFER_FLAG_FLAGGED | COFFER_FLAG_SEEN) && m.keywords == 0 &&
	       m.has_size && m.size == 4321,
	   "Dovecot name with S=, W= and flags");
	ok(parse("1700000000.M1P2.host", &m) == 0 && m.unique_len == 20 && !m.has_info &&
	       m.flags == 0 && !m.has_size && m.size == 0,
	   "new/ name without info");
	ok(parse("1700000000.M1P2.host:2,", &m) == 0 && m.has_info && m.flags == 0 &&
	       m.unique_len == 20,
	   "empty info");
	ok(parse("x:2,DFPRST", &m) == 0 && m.flags == 0x3f, "all flags");
	ok(parse("x:2,TSRPFD", &m) == 0 && m.flags == 0x3f, "flags in any order");
	ok(parse("x:2,Sac", &m) == 0 && m.flags == COFFER_FLAG_SEEN && m.keywords == 5,
	   "keywords a and c");
	ok(parse("x:2,zSa", &m) == 0 && m.keywords == ((1u << 25) | 1u), "keyword z before flags");
	ok(parse("x:2,SSaa", &m) == 0 && m.flags == COFFER_FLAG_SEEN && m.keywords == 1,
	   "duplicates accepted");
	ok(parse("1.2.host,S=0:2,S", &m) == 0 && m.has_size && m.size == 0, "S=0");
	ok(parse("1.2.host,W=9,S=77", &m) == 0 && m.has_size && m.size == 77, "W= before S=");
	ok(parse("1.2.host,S=12x,S=9", &m) == 0 && m.has_size && m.size == 9,
	   "malformed S= skipped, next one used");
	ok(parse("1.2.host,S=", &m) == 0 && !m.has_size, "S= without digits is no size");
	ok(parse("1.2.host,S=abc", &m) == 0 && !m.has_size, "S=abc is no size");
	ok(parse("1.2.hostS=5", &m) == 0 && !m.has_size, "S= needs a comma before it");
	ok(parse("1.2.host,s=5", &m) == 0 && !m.has_size, "lower-case s= is not a size");
	ok(parse("1.2.host,S=18446744073709551615", &m) == 0 && m.has_size && m.size == UINT64_MAX,
	   "S= at UINT64_MAX");
	ok(parse("1.2.host,S=18446744073709551616", &m) == 0 && !m.has_size,
	   "S= overflowing 64 bits is no size");
	ok(parse("1.2.host:2,S,S=5", &m) != 0, "S= in the info part is not a size (and refused)");
	ok(parse("caf\xc3\xa9:2,S", &m) == 0 && m.unique_len == 5, "8-bit bytes allowed in unique");

	ok(parse_bad("", 0, "empty"), "empty refused");
	ok(parse_bad(".hidden", 7, "starts with '.'"), "leading dot refused");
	ok(parse_bad("a/b:2,S", 7, "'/' at byte 1"), "slash refused");
	ok(parse_bad("a\0b", 3, "NUL at byte 1"), "NUL refused");
	ok(strstr(coffer_errmsg(), "'a\\x00b'") != NULL, "NUL escaped in detail");
	ok(parse_bad("a\nb", 3, "control character \\x0a at byte 1"), "newline refused");
	ok(parse_bad("a\x7f", 2, "control character \\x7f"), "DEL refused");
	ok(parse_bad("x:1,S", 5, "':1,'"), "experimental :1, refused by name");
	ok(parse_bad("x:2S", 4, "not ':2,<flags>'"), ":2 without comma refused");
	ok(parse_bad("x:", 2, "not ':2,<flags>'"), "bare colon refused");
	ok(parse_bad("x:2", 3, "not ':2,<flags>'"), ":2 refused");
	ok(parse_bad("x:3,S", 5, "not ':2,<flags>'"), ":3, refused");
	ok(parse_bad(":2,S", 4, "empty unique part"), "empty unique refused");
	ok(parse_bad("x:2,X", 5, "unknown info letter 'X' at byte 4"), "unknown upper-case letter");
	ok(parse_bad("x:2,S:2,S", 9, "unknown info letter ':'"), "second colon refused");
	ok(parse_bad("x:2,S ", 6, "unknown info letter ' '"), "space in info refused");
	ok(parse_bad("x:2,\xc3\xa9", 6, "unknown info letter '\\xc3'"),
	   "8-bit info letter refused and escaped");
	ok(parse_bad("x:2,1", 5, "unknown info letter '1'"), "digit in info refused");
	memset(big, 'u', sizeof big);
	memcpy(big + 250, ":2,S", 4);
	ok(coffer_maildir_name_parse(big, 255, &m) == 0 && m.unique_len == 250 &&
	       m.flags == COFFER_FLAG_SEEN,
	   "255-byte name accepted");
	ok(parse_bad(big, 256, "longer than 255 bytes"), "256-byte name refused");
	ok(strlen(coffer_errmsg()) < 150, "long name cut in detail");
	ok(parse_bad(big, sizeof big, "longer"), "300-byte name refused");
	ok(parse("x:1,S", &m) != 0 && m.unique_len == 0 && m.flags == 0 && !m.has_info,
	   "output cleared on failure");
}

static void test_format(void)
{
	struct coffer_buf out = COFFER_BUF_INIT;
	char big[300];

	ok(canonical_is("x:2,TSRPFD", "x:2,DFPRST"), "flags formatted in ASCII order");
	ok(canonical_is("x:2,zSaSa", "x:2,Saz"), "duplicates dropped, keywords after flags");
	ok(canonical_is("1.2.host,S=5,W=6", "1.2.host,S=5,W=6"), "no info stays without info");
	ok(canonical_is("1.2.host,S=5,W=6:2,", "1.2.host,S=5,W=6:2,"), "empty info kept");

	ok(coffer_maildir_name_format(&out, "abc", 3, 1, 0xffffffffu, 0xffffffffu) == 0 &&
	       strcmp(coffer_buf_str(&out), "abc:2,DFPRSTabcdefghijklmnopqrstuvwxyz") == 0,
	   "bits without letters ignored: %s", coffer_buf_str(&out));
	coffer_buf_reset(&out);
	ok(coffer_maildir_name_format(&out, "abc:2,S", 3, 0, COFFER_FLAG_SEEN, 0) == 0 &&
	       strcmp(coffer_buf_str(&out), "abc") == 0,
	   "info 0 writes no info");
	coffer_buf_puts(&out, "/");
	ok(coffer_maildir_name_format(&out, "d", 1, 1, COFFER_FLAG_DRAFT, 0) == 0 &&
	       strcmp(coffer_buf_str(&out), "abc/d:2,D") == 0,
	   "format appends");
	ok(coffer_maildir_name_format(&out, "a:b", 3, 1, 0, 0) == COFFER_EINVAL,
	   "colon in unique refused");
	ok(coffer_maildir_name_format(&out, "a/b", 3, 1, 0, 0) == COFFER_EINVAL,
	   "slash in unique refused");
	ok(coffer_maildir_name_format(&out, ".a", 2, 1, 0, 0) == COFFER_EINVAL,
	   "leading dot refused");
	ok(coffer_maildir_name_format(&out, "", 0, 1, 0, 0) == COFFER_EINVAL, "empty refused");
	ok(coffer_maildir_name_format(&out, "a\nb", 3, 0, 0, 0) == COFFER_EINVAL,
	   "control in unique refused");
	memset(big, 'u', sizeof big);
	ok(strcmp(coffer_buf_str(&out), "abc/d:2,D") == 0, "refusals append nothing");
	coffer_buf_reset(&out);
	ok(coffer_maildir_name_format(&out, big, 252, 1, 0, 0) == 0 && out.len == 255,
	   "exactly 255 bytes accepted");
	coffer_buf_reset(&out);
	ok(coffer_maildir_name_format(&out, big, 252, 1, COFFER_FLAG_SEEN, 0) == COFFER_EINVAL &&
	       out.len == 0 && strstr(coffer_errmsg(), "longer than 255") != NULL,
	   "256 bytes refused");

	coffer_buf_reset(&out);
	ok(coffer_maildir_flags_format(&out, COFFER_FLAG_SEEN | COFFER_FLAG_DRAFT |
	                                         COFFER_FLAG_TRASHED) == 0 &&
	       strcmp(coffer_buf_str(&out), "DST") == 0,
	   "flags_format DST");
	coffer_buf_reset(&out);
	ok(coffer_maildir_flags_format(&out, 0) == 0 && out.len == 0, "flags_format empty");
	coffer_buf_free(&out);
}

static int mutf7_is(const char *utf8, const char *mutf7)
{
	struct coffer_buf e = COFFER_BUF_INIT, d = COFFER_BUF_INIT;
	int good = coffer_mutf7_encode(utf8, strlen(utf8), &e) == 0 &&
	           strcmp(coffer_buf_str(&e), mutf7) == 0 &&
	           coffer_mutf7_decode(mutf7, strlen(mutf7), &d) == 0 &&
	           strcmp(coffer_buf_str(&d), utf8) == 0;

	if (!good)
		tap_diag("mutf7: enc '%s' dec '%s' (%s)", coffer_buf_str(&e), coffer_buf_str(&d),
		         coffer_errmsg());
	coffer_buf_free(&e);
	coffer_buf_free(&d);
	return good;
}

static int mutf7_bad(const char *in, const char *needle)
{
	struct coffer_buf d = COFFER_BUF_INIT;
	int good;

	coffer_buf_puts(&d, "keep");
	good = coffer_mutf7_decode(in, strlen(in), &d) == COFFER_EINVAL &&
	       strcmp(coffer_buf_str(&d), "keep") == 0 && strstr(coffer_errmsg(), needle) != NULL;
	if (!good)
		tap_diag("mutf7 bad '%s': out '%s' err '%s'", in, coffer_buf_str(&d),
		         coffer_errmsg());
	coffer_buf_free(&d);
	return good;
}

static void test_mutf7(void)
{
	struct coffer_buf b = COFFER_BUF_INIT;

	ok(mutf7_is("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
	   "RFC 3501 example");
	ok(mutf7_is("&", "&-"), "ampersand");
	ok(mutf7_is("a&b&&", "a&-b&-&-"), "ampersands");
	ok(mutf7_is("\xc3\xa9", "&AOk-"), "e acute");
	ok(mutf7_is("\xc3\xa9t\xc3\xa9", "&AOk-t&AOk-"), "shifts separated by ASCII");
	ok(mutf7_is("\xc3\xa9\xc3\xa9", "&AOkA6Q-"), "two characters in one shift");
	ok(mutf7_is("\xf0\x9f\x98\x80", "&2D3eAA-"), "astral character as a surrogate pair");
	ok(mutf7_is("\xc3\xa9&", "&AOk-&-"), "shift then literal ampersand");
	ok(mutf7_is("&\xc3\xa9", "&-&AOk-"), "literal ampersand then shift");
	ok(mutf7_is("a\tb", "a&AAk-b"), "tab is encoded");
	ok(mutf7_is("", ""), "empty");
	ok(mutf7_is(" ~-+,", " ~-+,"), "printable ASCII direct");

	ok(mutf7_bad("&", "unterminated"), "lone & refused");
	ok(mutf7_bad("&AOk", "unterminated"), "unterminated shift refused");
	ok(mutf7_bad("&AOk-&AOk-", "non-minimal"), "adjacent shifts refused");
	ok(mutf7_bad("&AGE-", "printable ASCII inside a shift"), "encoded 'a' refused");
	ok(mutf7_bad("&ACY-", "printable ASCII inside a shift"), "encoded '&' refused");
	ok(mutf7_bad("&AOl-", "padding bits"), "non-zero padding bits refused");
	ok(mutf7_bad("&AOkA-", "spare base64"), "spare base64 character refused");
	ok(mutf7_bad("&AO-", "spare base64"), "short shift refused");
	ok(mutf7_bad("&A-", "spare base64"), "one-character shift refused");
	ok(mutf7_bad("&2D0-", "unpaired"), "lone high surrogate refused");
	ok(mutf7_bad("&3gA-", "unpaired"), "lone low surrogate refused");
	ok(mutf7_bad("&2D3YPQ-", "unpaired"), "high surrogate followed by high refused");
	ok(mutf7_bad("&AO/-", "bad base64"), "'/' is not modified base64");
	ok(mutf7_bad("&AO=-", "bad base64"), "padding '=' refused");
	ok(mutf7_bad("a\x01", "outside printable ASCII"), "raw control refused");
	ok(mutf7_bad("\xc3\xa9", "outside printable ASCII"), "raw 8-bit refused");
	ok(mutf7_bad("a\x1b[2J", "'a\\x1b[2J'"), "hostile bytes escaped in detail");

	coffer_buf_puts(&b, "keep");
	ok(coffer_mutf7_encode("a\xff", 2, &b) == COFFER_EINVAL &&
	       strcmp(coffer_buf_str(&b), "keep") == 0,
	   "encode refuses invalid UTF-8, appends nothing");
	ok(coffer_mutf7_encode("\xed\xa0\x80", 3, &b) == COFFER_EINVAL,
	   "encode refuses surrogates");
	coffer_buf_reset(&b);
	ok(coffer_mutf7_decode("&AAA-", 5, &b) == 0 && b.len == 1 && b.data[0] == 0,
	   "encoded NUL decodes (the folder layer refuses it)");
	coffer_buf_free(&b);
}

static int dir_is(const char *dir, const char *folder)
{
	struct coffer_buf f = COFFER_BUF_INIT, d = COFFER_BUF_INIT;
	int good = coffer_maildir_dir_to_folder(dir, strlen(dir), &f) == 0 &&
	           strcmp(coffer_buf_str(&f), folder) == 0 &&
	           coffer_maildir_folder_to_dir(folder, &d) == 0 &&
	           strcmp(coffer_buf_str(&d), dir) == 0;

	if (!good)
		tap_diag("dir '%s': folder '%s' back '%s' (%s)", dir, coffer_buf_str(&f),
		         coffer_buf_str(&d), coffer_errmsg());
	coffer_buf_free(&f);
	coffer_buf_free(&d);
	return good;
}

static int dir_bad(const char *dir, size_t n, const char *needle)
{
	struct coffer_buf f = COFFER_BUF_INIT;
	int good;

	coffer_buf_puts(&f, "junk");
	good = coffer_maildir_dir_to_folder(dir, n, &f) == COFFER_EINVAL && f.len == 0 &&
	       strstr(coffer_errmsg(), needle) != NULL &&
	       strncmp(coffer_errmsg(), "Maildir++ folder directory '", 28) == 0;
	if (!good)
		tap_diag("dir bad: err '%s' (want '%s')", coffer_errmsg(), needle);
	coffer_buf_free(&f);
	return good;
}

static void test_dirs(void)
{
	struct coffer_buf d = COFFER_BUF_INIT;
	char big[400];
	size_t i;

	ok(dir_is(".Lists.debian", "Lists/debian"), ".Lists.debian");
	ok(dir_is(".Sent", "Sent"), ".Sent");
	ok(dir_is(".&U,BTFw-.&ZeVnLIqe-",
	          "\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"),
	   "CJK folder");
	ok(dir_is(".Entw&APw-rfe", "Entw\xc3\xbc"
	                           "rfe"),
	   "German folder");
	ok(dir_is(".a&-b", "a&b"), "ampersand folder");
	ok(dir_is(".INBOX.foo", "INBOX/foo"), "INBOX child");
	ok(dir_is(".Sent Items", "Sent Items"), "space in folder");

	ok(dir_bad(".INBOX", 6, "inbox is the Maildir root"), ".INBOX refused");
	ok(dir_bad(".inbox", 6, "inbox is the Maildir root"), ".inbox refused");
	ok(dir_bad("Lists", 5, "no leading '.'"), "no leading dot");
	ok(dir_bad("cur", 3, "no leading '.'"), "cur is not a folder");
	ok(dir_bad("", 0, "empty"), "empty");
	ok(dir_bad(".", 1, "not folders"), ".");
	ok(dir_bad("..", 2, "not folders"), "..");
	ok(dir_bad(".a..b", 5, "empty component"), "double dot");
	ok(dir_bad("...", 3, "empty component"), "...");
	ok(dir_bad(".a.", 3, "ends with '.'"), "trailing dot");
	ok(dir_bad(".a/b", 4, "contains '/'"), "slash");
	ok(dir_bad(".&AGE-", 6, "printable ASCII inside a shift"), "bad mutf7 refused");
	ok(dir_bad(".&AAE-", 6, "control character U+0001"), "encoded control refused");
	ok(dir_bad(".&AC8-", 6, "printable ASCII"), "encoded slash refused");
	ok(dir_bad(".a\0b", 4, "outside printable ASCII"), "NUL refused");
	ok(dir_bad(".\xc3\xa9", 3, "outside printable ASCII"), "raw UTF-8 refused");
	memset(big, 'x', sizeof big);
	big[0] = '.';
	ok(dir_bad(big, 256, "longer than 255 bytes"), "256-byte directory refused");
	big[255] = '\0';
	ok(dir_is(big, big + 1), "255-byte directory accepted");

	ok(coffer_maildir_folder_to_dir("INBOX", &d) == COFFER_EINVAL && d.len == 0,
	   "INBOX has no directory");
	ok(coffer_maildir_folder_to_dir("inbox", &d) == COFFER_EINVAL, "inbox has no directory");
	ok(coffer_maildir_folder_to_dir("a//b", &d) == COFFER_EINVAL &&
	       strstr(coffer_errmsg(), "empty component") != NULL,
	   "invalid folder refused");
	ok(coffer_maildir_folder_to_dir("Lists.debian", &d) == 0 &&
	       strcmp(coffer_buf_str(&d), ".Lists.debian") == 0,
	   "dot-separated input canonicalised");
	big[0] = '\0';
	for (i = 0; i < 127; i++)
		strcat(big, "\xc3\xa9");
	ok(coffer_maildir_folder_to_dir(big, &d) == COFFER_EINVAL && d.len == 0 &&
	       strstr(coffer_errmsg(), "longer than 255") != NULL,
	   "folder whose directory name would exceed 255 bytes refused");
	coffer_buf_free(&d);
}

/* ---- properties ---------------------------------------------------------- */

static void random_utf8(struct coffer_buf *b, size_t chars)
{
	static const uint32_t ranges[][2] = {
		{ 0x01, 0x1f },     { 0x20, 0x7e },        { '&', '&' },
		{ 0x7f, 0xff },     { 0x100, 0x7ff },      { 0x800, 0xd7ff },
		{ 0xe000, 0xfffd }, { 0x10000, 0x10ffff }, { 0x0, 0x0 },
	};
	size_t i;

	for (i = 0; i < chars; i++) {
		const uint32_t *r = ranges[rng() % (sizeof ranges / sizeof ranges[0])];
		uint32_t cp = r[0] + rng() % (r[1] - r[0] + 1);
		unsigned char u[4];
		size_t n;

		if (cp < 0x80) {
			u[0] = (unsigned char)cp;
			n = 1;
		} else if (cp < 0x800) {
			u[0] = (unsigned char)(0xc0 | (cp >> 6));
			u[1] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			u[0] = (unsigned char)(0xe0 | (cp >> 12));
			u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
			u[2] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			u[0] = (unsigned char)(0xf0 | (cp >> 18));
			u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
			u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
			u[3] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 4;
		}
		coffer_buf_append(b, u, n);
	}
}

static void test_mutf7_properties(void)
{
	static const char alphabet[] = "&-AOkAgEa2D3eZV,+/ .";
	struct coffer_buf in = COFFER_BUF_INIT, enc = COFFER_BUF_INIT, dec = COFFER_BUF_INIT;
	size_t iter, i, bad = 0, decoded = 0;
	int printable;

	for (iter = 0; iter < 50000; iter++) {
		coffer_buf_reset(&in);
		coffer_buf_reset(&enc);
		coffer_buf_reset(&dec);
		random_utf8(&in, rng() % 12);
		printable = coffer_mutf7_encode((char *)in.data, in.len, &enc) == 0;
		for (i = 0; printable && i < enc.len; i++)
			if (enc.data[i] < 0x20 || enc.data[i] > 0x7e)
				printable = 0;
		if (!printable || coffer_mutf7_decode((char *)enc.data, enc.len, &dec) != 0 ||
		    dec.len != in.len || (in.len && memcmp(dec.data, in.data, in.len) != 0)) {
			if (bad++ == 0)
				tap_diag("mutf7 round trip failed: enc '%s' (%s)",
				         coffer_buf_str(&enc), coffer_errmsg());
		}
	}
	ok(bad == 0, "50000 random UTF-8 strings: decode(encode(x)) == x, encoding printable");

	bad = 0;
	for (iter = 0; iter < 300000; iter++) {
		coffer_buf_reset(&in);
		coffer_buf_reset(&enc);
		coffer_buf_reset(&dec);
		for (i = rng() % 14; i > 0; i--)
			coffer_buf_putc(&in, alphabet[rng() % (sizeof alphabet - 1)]);
		if (coffer_mutf7_decode((char *)in.data, in.len, &dec) != 0)
			continue;
		decoded++;
		if (coffer_mutf7_encode((char *)dec.data, dec.len, &enc) != 0 ||
		    enc.len != in.len || (in.len && memcmp(enc.data, in.data, in.len) != 0)) {
			if (bad++ == 0)
				tap_diag("non-canonical spelling accepted: '%s' -> '%s'",
				         coffer_buf_str(&in), coffer_buf_str(&enc));
		}
	}
	ok(bad == 0,
	   "random ASCII: all %zu decodable strings are canonical (encode(decode(y)) == y)",
	   decoded);
	ok(decoded > 10000, "enough random strings decoded");
	coffer_buf_free(&in);
	coffer_buf_free(&enc);
	coffer_buf_free(&dec);
}

static void test_dir_properties(void)
{
	struct coffer_buf in = COFFER_BUF_INIT, canon = COFFER_BUF_INIT, dir = COFFER_BUF_INIT,
			  back = COFFER_BUF_INIT;
	size_t iter, c, bad = 0, tried = 0;

	for (iter = 0; iter < 20000; iter++) {
		coffer_buf_reset(&in);
		for (c = 1 + rng() % 3; c > 0; c--) {
			if (in.len)
				coffer_buf_putc(&in, '/');
			random_utf8(&in, 1 + rng() % 8);
		}
		if (coffer_names_folder((char *)in.data, in.len, &canon) != 0 ||
		    coffer_names_is_inbox(coffer_buf_str(&canon)))
			continue; /* generated controls, dots or NULs */
		if (coffer_maildir_folder_to_dir(coffer_buf_str(&canon), &dir) != 0)
			continue; /* longer than 255 bytes as a directory */
		tried++;
		if (coffer_maildir_dir_to_folder((char *)dir.data, dir.len, &back) != 0 ||
		    strcmp(coffer_buf_str(&back), coffer_buf_str(&canon)) != 0) {
			if (bad++ == 0)
				tap_diag("dir round trip: '%s' -> '%s' -> '%s' (%s)",
				         coffer_buf_str(&canon), coffer_buf_str(&dir),
				         coffer_buf_str(&back), coffer_errmsg());
		}
	}
	ok(bad == 0 && tried > 1000, "%zu random folders: dir_to_folder(folder_to_dir(f)) == f",
	   tried);
	coffer_buf_free(&in);
	coffer_buf_free(&canon);
	coffer_buf_free(&dir);
	coffer_buf_free(&back);
}

static void test_name_properties(void)
{
	static const char unique_chars[] = "0123456789.MPVIQ,S=W_host-";
	static const char info_chars[] = "DFPRSTabcxyz";
	struct coffer_buf name = COFFER_BUF_INIT, canon = COFFER_BUF_INIT, again = COFFER_BUF_INIT;
	struct coffer_maildir_name m, m2;
	size_t iter, i, bad = 0, parsed = 0;

	for (iter = 0; iter < 100000; iter++) {
		coffer_buf_reset(&name);
		coffer_buf_reset(&canon);
		coffer_buf_reset(&again);
		for (i = rng() % 30; i > 0; i--)
			coffer_buf_putc(&name, unique_chars[rng() % (sizeof unique_chars - 1)]);
		if (rng() % 4) {
			coffer_buf_puts(&name, rng() % 20 ? ":2," : ":1,");
			for (i = rng() % 10; i > 0; i--)
				coffer_buf_putc(&name, info_chars[rng() % (sizeof info_chars - 1)]);
		}
		if (coffer_maildir_name_parse((char *)name.data, name.len, &m) != 0)
			continue;
		parsed++;
		int good = coffer_maildir_name_format(&canon, (char *)name.data, m.unique_len,
		                                      m.has_info, m.flags, m.keywords) == 0 &&
		           canon.len <= name.len &&
		           coffer_maildir_name_parse((char *)canon.data, canon.len, &m2) == 0 &&
		           m2.unique_len == m.unique_len && m2.has_info == m.has_info &&
		           m2.flags == m.flags && m2.keywords == m.keywords &&
		           m2.has_size == m.has_size && m2.size == m.size &&
		           coffer_maildir_name_format(&again, (char *)canon.data, m2.unique_len,
		                                      m2.has_info, m2.flags, m2.keywords) == 0 &&
		           again.len == canon.len && memcmp(again.data, canon.data, canon.len) == 0;
		if (!good && bad++ == 0)
			tap_diag("name round trip: '%s' -> '%s'", coffer_buf_str(&name),
			         coffer_buf_str(&canon));
	}
	ok(bad == 0 && parsed > 10000,
	   "%zu random names: format(parse(x)) canonical, parses to the same fields", parsed);
	coffer_buf_free(&name);
	coffer_buf_free(&canon);
	coffer_buf_free(&again);
}

int main(void)
{
	test_parse();
	test_format();
	test_mutf7();
	test_dirs();
	test_mutf7_properties();
	test_dir_properties();
	test_name_properties();
	return tap_done();
}
