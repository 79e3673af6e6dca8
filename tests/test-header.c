/*
 * test-header.c: message detection and header summaries (engine/header.c).
 *
 * Real-world shapes: ISO-8859-1 Q words, UTF-8 B words, windows-1252,
 * ISO-2022-JP, subjects folded over several lines with encoded words, quoted
 * display names, bare LF and CRLF, NUL bytes, headers without a body, 1 MiB
 * lines (checked for linear time), and input that is not a message. Then a
 * property test: random and mutated headers always give valid UTF-8 without
 * control characters, at most COFFER_HEADER_FIELD_MAX bytes.
 */
#include "engine/header.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint32_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static int is_msg(const char *s)
{
	return coffer_header_is_message(s, strlen(s));
}

/* The decoded Subject: of the header text h (n bytes). */
static int field_is(const char *h, size_t n, int which, const char *want)
{
	struct coffer_header_summary s;
	const char *got;
	int good;

	if (coffer_header_summary(h, n, &s) != 0)
		return 0;
	got = which == 0 ? s.from : which == 1 ? s.subject : which == 2 ? s.date : s.message_id;
	good = want == NULL ? got == NULL : got != NULL && strcmp(got, want) == 0;
	if (!good)
		tap_diag("got '%s' want '%s'", got ? got : "(null)", want ? want : "(null)");
	coffer_header_summary_free(&s);
	return good;
}

static int subject_is(const char *h, const char *want)
{
	return field_is(h, strlen(h), 1, want);
}

static int from_is(const char *h, const char *want)
{
	return field_is(h, strlen(h), 0, want);
}

/* Valid UTF-8, no C0/DEL/C1 controls, at most the field maximum. */
static int clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, len, k;
	uint32_t cp;

	if (s == NULL)
		return 1;
	n = strlen(s);
	if (n > COFFER_HEADER_FIELD_MAX)
		return 0;
	while (i < n) {
		if (p[i] < 0x80) {
			if (p[i] < 0x20 || p[i] == 0x7f)
				return 0;
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			len = 2, cp = p[i] & 0x1f;
		else if (p[i] >= 0xe0 && p[i] <= 0xef)
			len = 3, cp = p[i] & 0x0f;
		else if (p[i] >= 0xf0 && p[i] <= 0xf4)
			len = 4, cp = p[i] & 0x07;
		else
			return 0;
		if (i + len > n)
			return 0;
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
			return 0;
		i += len;
	}
	return 1;
}

static void test_is_message(void)
{
	static const char nul_name[] = "X\0Y: z\n";

	ok(is_msg("From: a@example.com\nSubject: x\n\nbody"), "plain header");
	ok(is_msg("Return-Path: <a@b>\r\n"), "CRLF header");
	ok(is_msg("X-Foo:bar"), "no space after colon, no line end (short chunk)");
	ok(is_msg("From alice@example.com Mon Jan  1 00:00:00 2024\nSubject: x\n"),
	   "mbox From line");
	ok(is_msg("From alice@example.com Mon Jan  1 00:00:00 2024\r\nReceived: x\r\n"),
	   "mbox From line with CRLF");
	ok(!is_msg("From alice@example.com Mon Jan  1 00:00:00 2024"), "From line alone");
	ok(!is_msg("From alice@example.com\nHello there\n"), "From line then text");
	ok(!is_msg("From alice@example.com\n\nSubject: x\n"), "From line then empty line");
	ok(!is_msg("Subject : x\n"), "space before colon refused");
	ok(!is_msg("Subject\t: x\n"), "tab before colon refused");
	ok(!is_msg(" Subject: x\n"), "leading space refused");
	ok(!is_msg(":x\n"), "empty field name refused");
	ok(!is_msg(""), "empty input");
	ok(!is_msg("Subj"), "truncated name without colon");
	ok(!is_msg("Hello world, this is not a message.\n"), "prose");
	ok(!is_msg("%PDF-1.4\n"), "PDF");
	ok(!is_msg("\xef\xbb\xbf"
	           "Subject: x\n"),
	   "BOM then header");
	ok(!is_msg("Sub\xc3\xa9ject: x\n"), "8-bit field name");
	ok(!coffer_header_is_message(nul_name, sizeof nul_name - 1), "NUL in field name");
	ok(!is_msg("Subject\n: x\n"), "colon on the next line");
	ok(!is_msg("\r\nSubject: x\n"), "empty first line");
	ok(is_msg("From: x\n"), "From: is a header, not an mbox line");
}

static void test_decoding(void)
{
	ok(subject_is("Subject: =?ISO-8859-1?Q?Andr=E9_Pirard?=\n", "Andr\xc3\xa9 Pirard"),
	   "ISO-8859-1 Q word");
	ok(subject_is("Subject: =?iso-8859-1?q?caf=e9?=\n", "caf\xc3\xa9"), "lower-case q and hex");
	ok(subject_is("Subject: =?UTF-8?B?w6lsw6h2ZQ==?=\n", "\xc3\xa9l\xc3\xa8ve"),
	   "UTF-8 B word");
	ok(subject_is("Subject: =?utf-8?b?w6lsw6h2ZQ?=\n", "\xc3\xa9l\xc3\xa8ve"),
	   "lower-case b, missing padding tolerated");
	ok(subject_is("Subject: =?windows-1252?Q?=93Quotes=94_and_=80?=\n",
	              "\xe2\x80\x9cQuotes\xe2\x80\x9d and \xe2\x82\xac"),
	   "windows-1252 curly quotes and euro");
	ok(subject_is("Subject: =?iso-8859-1?q?=93hi=94?=\n", "\xe2\x80\x9chi\xe2\x80\x9d"),
	   "ISO-8859-1 label read as windows-1252");
	ok(subject_is("Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=\n",
	              "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"),
	   "ISO-2022-JP (stateful) B word");
	ok(subject_is("Subject: =?utf-8*en?q?hello?=\n", "hello"), "RFC 2231 language suffix");
	ok(subject_is("Subject: =?utf-8?q?a_b__c?=\n", "a b  c"), "underscore is space in Q");
	ok(subject_is("Subject: =?utf-8?b?YV9i?=\n", "a_b"), "underscore literal in B");

	ok(subject_is("Subject: =?utf-8?q?Hello_?=\r\n =?utf-8?q?W=C3=B6rld?=\r\n\t"
	              "=?iso-8859-1?q?_caf=E9?=\r\n\r\nbody\r\n",
	              "Hello W\xc3\xb6rld caf\xc3\xa9"),
	   "subject folded over three lines with encoded words, charsets mixed");
	ok(subject_is("Subject: =?utf-8?q?=C3?= =?utf-8?q?=A9t=C3=A9?=\n", "\xc3\xa9t\xc3\xa9"),
	   "character split across adjacent words");
	ok(subject_is("Subject: =?utf-8?q?a?=   \t =?utf-8?q?b?=\n", "ab"),
	   "whitespace between words dropped");
	ok(subject_is("Subject: =?utf-8?q?a?= b =?utf-8?q?c?=\n", "a b c"),
	   "text between words kept with its spaces");
	ok(subject_is("Subject: Re: [list] =?utf-8?q?Gr=C3=BC=C3=9Fe?= from me\n",
	              "Re: [list] Gr\xc3\xbc\xc3\x9f"
	              "e from me"),
	   "word among plain text");
	ok(subject_is("Subject: Re:=?utf-8?q?x?=\n", "Re:x"), "word glued to text decoded");
	ok(subject_is("Subject: plain\n folded\n\tagain\n", "plain folded again"),
	   "plain folding, tab becomes space");

	ok(subject_is("Subject: =?x-unknown?q?abc?= tail\n", "=?x-unknown?q?abc?= tail"),
	   "unknown charset kept raw");
	ok(subject_is("Subject: =?utf-8?q?a=ZZ?=\n", "=?utf-8?q?a=ZZ?="), "bad Q escape kept raw");
	ok(subject_is("Subject: =?utf-8?q?a=?=\n", "=?utf-8?q?a=?="),
	   "truncated Q escape kept raw");
	ok(subject_is("Subject: =?utf-8?b?!!!!?=\n", "=?utf-8?b?!!!!?="), "bad base64 kept raw");
	ok(subject_is("Subject: =?utf-8?b?Y?=\n", "=?utf-8?b?Y?="), "one base64 char kept raw");
	ok(subject_is("Subject: =?utf-8?x?abc?=\n", "=?utf-8?x?abc?="),
	   "unknown encoding kept raw");
	ok(subject_is("Subject: =?utf-8?q?a b?=\n", "=?utf-8?q?a b?="), "space inside kept raw");
	ok(subject_is("Subject: =?utf-8?q?a?= =?bogus?q?b?= =?utf-8?q?c?=\n", "a =?bogus?q?b?= c"),
	   "raw word between decoded ones keeps its spaces");
	ok(subject_is("Subject: =?utf-8?q?a=0Ab=1B[31m?=\n", "a\xef\xbf\xbd"
	                                                     "b\xef\xbf\xbd[31m"),
	   "decoded controls replaced");
	ok(subject_is("Subject: =?utf-8?q?=FF=FE?=\n", "\xef\xbf\xbd\xef\xbf\xbd"),
	   "decoded invalid UTF-8 replaced");
	ok(subject_is("Subject: =?utf-8?q?=C2=85?=\n", "\xef\xbf\xbd"), "decoded C1 replaced");
	ok(subject_is("Subject: =?us-ascii?q?=E9?=\n", "\xc3\xa9"), "8-bit in us-ascii word");
	ok(subject_is("Subject: =?shift_jis?b?gqA=?=\n", "\xe3\x81\x82"), "Shift_JIS");

	ok(from_is("From: \"Doe, John\" <john@example.com>\n", "\"Doe, John\" <john@example.com>"),
	   "quoted display name with comma");
	ok(from_is("From: =?utf-8?q?J=C3=B6rg?= <j@example.de>\n", "J\xc3\xb6rg <j@example.de>"),
	   "encoded display name");
	ok(from_is("From: \"=?utf-8?q?J=C3=B6rg?=\" <j@example.de>\n",
	           "\"J\xc3\xb6rg\" <j@example.de>"),
	   "encoded word inside quotes decoded");
}

static void test_structure(void)
{
	static const char nul_hdr[] = "Subject: a\0b\nFrom: x\0\n\n";
	static const char nul_name[] = "Sub\0ject: no\nSubject: yes\n";
	struct coffer_header_summary s;
	const char *h;

	h = "From: a@example.com\nSubject: lf\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
	    "Message-ID: <1@example.com>\n\nbody\n";
	ok(coffer_header_summary(h, strlen(h), &s) == 0 && s.from && s.subject && s.date &&
	       s.message_id && strcmp(s.from, "a@example.com") == 0 &&
	       strcmp(s.subject, "lf") == 0 &&
	       strcmp(s.date, "Mon, 1 Jan 2024 00:00:00 +0000") == 0 &&
	       strcmp(s.message_id, "<1@example.com>") == 0,
	   "all four fields, bare LF");
	coffer_header_summary_free(&s);
	ok(s.from == NULL && s.subject == NULL && s.date == NULL && s.message_id == NULL,
	   "free clears the pointers");
	coffer_header_summary_free(&s);
	coffer_header_summary_free(NULL);

	h = "FROM: a@example.com\r\nsubject: crlf\r\nDATE: d\r\nmessage-id:  <2@x>  \r\n\r\n";
	ok(coffer_header_summary(h, strlen(h), &s) == 0 && s.from && s.subject && s.date &&
	       s.message_id && strcmp(s.subject, "crlf") == 0 && strcmp(s.date, "d") == 0 &&
	       strcmp(s.message_id, "<2@x>") == 0,
	   "CRLF, case-insensitive names, trimmed values");
	coffer_header_summary_free(&s);

	ok(subject_is("Subject: first\nSubject: second\n", "first"), "first occurrence wins");
	ok(subject_is("From: x\n\nSubject: body\n", NULL), "LF blank line ends the header");
	ok(subject_is("From: x\r\n\r\nSubject: body\r\n", NULL), "CRLF blank line ends the header");
	ok(subject_is("From: x\nSubject: no body", "no body"), "header without body separator");
	ok(subject_is("From: x\r\nSubject: crlf no body\r\n", "crlf no body"),
	   "CRLF header without body");
	ok(subject_is("Subject:\n", ""), "empty subject is \"\", not NULL");
	ok(subject_is("Subject:   \n", ""), "blank subject is \"\"");
	ok(subject_is("Subject : obsolete\n", "obsolete"), "whitespace before colon tolerated");
	ok(subject_is("X-Subject: no\nSubject: yes\n", "yes"), "longer name not matched");
	ok(subject_is("Subjects: no\n", NULL), "prefix name not matched");
	ok(subject_is("From mbox@line Mon\nSubject: after mbox\n", "after mbox"),
	   "mbox From line skipped");
	ok(subject_is("Subject: a\n\tb\n c\nFrom: x\n d\n", "a b c"),
	   "continuations belong to their own field");
	ok(subject_is("X: y\ngarbage line\nSubject: found\n", "found"),
	   "a stray line does not hide later fields");
	ok(subject_is("Subject: cr\rinside\n", "cr\xef\xbf\xbdinside"), "bare CR replaced");
	ok(subject_is("Subject: Gr\xfc\xdf"
	              "e\n",
	              "Gr\xef\xbf\xbd\xef\xbf\xbd"
	              "e"),
	   "raw 8-bit Latin-1 replaced");
	ok(subject_is("Subject: Gr\xc3\xbc\xc3\x9f"
	              "e\n",
	              "Gr\xc3\xbc\xc3\x9f"
	              "e"),
	   "raw UTF-8 (RFC 6532) kept");
	ok(subject_is("Subject: \x1b]0;owned\x07 x\n", "\xef\xbf\xbd]0;owned\xef\xbf\xbd x"),
	   "terminal escapes replaced");
	ok(field_is("Date: Mon, 1 Jan\r\n 2024\r\n", 25, 2, "Mon, 1 Jan 2024"), "Date unfolded");
	ok(field_is("Message-ID: =?utf-8?q?x?=\n", 26, 3, "=?utf-8?q?x?="),
	   "Message-ID is raw, not decoded");

	ok(field_is(nul_hdr, sizeof nul_hdr - 1, 1,
	            "a\xef\xbf\xbd"
	            "b"),
	   "NUL in value replaced");
	ok(field_is(nul_hdr, sizeof nul_hdr - 1, 0, "x\xef\xbf\xbd"), "NUL at end of value");
	ok(field_is(nul_name, sizeof nul_name - 1, 1, "yes"), "NUL in a name is not that name");

	h = "Hello, this is not a message\nat all\n";
	ok(coffer_header_summary(h, strlen(h), &s) == 0 && !s.from && !s.subject && !s.date &&
	       !s.message_id,
	   "not a message: nothing found, no error");
	coffer_header_summary_free(&s);
	ok(coffer_header_summary("", 0, &s) == 0 && !s.subject, "empty input");
	coffer_header_summary_free(&s);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int timed_clean_summary(const char *desc, const char *buf, size_t n,
                               struct coffer_header_summary *s)
{
	double t0 = now(), dt;
	int r = coffer_header_summary(buf, n, s);

	dt = now() - t0;
	tap_diag("%s: %.3f s", desc, dt);
	return r == 0 && dt < 2.0 && clean(s->subject) && clean(s->from);
}

static void test_limits(void)
{
	const size_t mib = 1024 * 1024;
	struct coffer_header_summary s;
	char *buf = malloc(mib + 256);
	size_t i, n;
	const char *pat;

	if (buf == NULL) {
		ok(0, "malloc");
		return;
	}
	n = (size_t)sprintf(buf, "Subject: ");
	memset(buf + n, 'x', mib);
	n += mib;
	n += (size_t)sprintf(buf + n, "\nFrom: after@example.com\n\n");
	ok(timed_clean_summary("1 MiB subject line", buf, n, &s) && s.subject &&
	       strlen(s.subject) == COFFER_HEADER_FIELD_MAX &&
	       strspn(s.subject, "x") == COFFER_HEADER_FIELD_MAX && s.from &&
	       strcmp(s.from, "after@example.com") == 0,
	   "1 MiB line: cut at the maximum, later field still found");
	coffer_header_summary_free(&s);

	n = (size_t)sprintf(buf, "Subject: a");
	for (i = 0; i < 600; i++)
		n += (size_t)sprintf(buf + n, "\xc3\xa9");
	buf[n++] = '\n';
	ok(coffer_header_summary(buf, n, &s) == 0 && s.subject &&
	       strlen(s.subject) == COFFER_HEADER_FIELD_MAX - 1 && clean(s.subject),
	   "cut on a UTF-8 boundary (997 bytes)");
	coffer_header_summary_free(&s);

	/* Hostile shapes for the encoded-word scanner, each 1 MiB. */
	static const char *const patterns[] = {
		"=?",
		"=?a?q?",
		"=?utf-8?q?a?= ",
		"=?utf-8?q?",
		"=?x?q?a?= ",
		"=?utf-8?b?QQ==?=",
		" \r\n",
		"=?iso-8859-1?q?=E9?= =?windows-1252?q?=80?= ",
		"\0",
		"?=",
	};
	for (i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
		size_t plen = strlen(patterns[i]) ? strlen(patterns[i]) : 1;

		pat = patterns[i];
		n = (size_t)sprintf(buf, "Subject: ");
		while (n + plen < mib)
			memcpy(buf + n, pat, plen), n += plen;
		ok(timed_clean_summary("1 MiB of a pattern", buf, n, &s),
		   "1 MiB of pattern %zu: linear and clean", i);
		coffer_header_summary_free(&s);
	}

	/* 1 MiB of folded continuation lines. */
	n = (size_t)sprintf(buf, "Subject: start");
	while (n + 4 < mib)
		memcpy(buf + n, "\n x", 3), n += 3;
	ok(timed_clean_summary("1 MiB of folded lines", buf, n, &s) && s.subject &&
	       strncmp(s.subject, "start x x", 9) == 0,
	   "1 MiB of continuations");
	coffer_header_summary_free(&s);

	/* 1 MiB of header lines, none of them ours. */
	n = 0;
	while (n + 10 < mib)
		memcpy(buf + n, "X-A: b\r\n", 8), n += 8;
	n += (size_t)sprintf(buf + n, "Subject: late\r\n");
	ok(timed_clean_summary("1 MiB of other fields", buf, n, &s) && s.subject &&
	       strcmp(s.subject, "late") == 0,
	   "field after 1 MiB of others found");
	coffer_header_summary_free(&s);
	free(buf);
}

static void test_random(void)
{
	static const char *const pieces[] = {
		"Subject:",
		"From:",
		"Date:",
		"Message-ID:",
		" ",
		"\t",
		"\n",
		"\r\n",
		"\r",
		"\n\n",
		"=?",
		"?=",
		"?q?",
		"?B?",
		"utf-8",
		"iso-8859-1",
		"windows-1252",
		"ISO-2022-JP",
		"=E9",
		"=C3",
		"=A9",
		"_",
		"w6k=",
		"GyRC",
		"\0",
		"\x1b",
		"\xff",
		"\xc3\xa9",
		"\xe2\x80",
		"abc",
		"\"Doe, John\"",
		"<a@b>",
		"=",
		"?",
		"From ",
		"\x7f",
		"\xc2\x85",
	};
	struct coffer_header_summary s;
	unsigned char buf[512];
	size_t iter, n, k, len, bad = 0;

	for (iter = 0; iter < 30000; iter++) {
		n = 0;
		for (k = rng() % 40; k > 0; k--) {
			const char *p = pieces[rng() % (sizeof pieces / sizeof pieces[0])];

			len = p[0] == '\0' ? 1 : strlen(p);
			if (n + len > sizeof buf)
				break;
			memcpy(buf + n, p, len);
			n += len;
		}
		if (rng() % 4 == 0)
			for (k = 0; k < 3 && n > 0; k++)
				buf[rng() % n] = (unsigned char)rng();
		(void)coffer_header_is_message(buf, n);
		if (coffer_header_summary(buf, n, &s) != 0 || !clean(s.from) || !clean(s.subject) ||
		    !clean(s.date) || !clean(s.message_id)) {
			if (bad++ == 0)
				tap_diag("random header %zu gave unclean output", iter);
		}
		coffer_header_summary_free(&s);
	}
	ok(bad == 0, "30000 random headers: outputs valid UTF-8, no controls, bounded");
}

int main(void)
{
	test_is_message();
	test_decoding();
	test_structure();
	test_limits();
	test_random();
	return tap_done();
}
