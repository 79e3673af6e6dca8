/*
 * header.c: just enough RFC 5322 / RFC 2047 for listings, and the "is this a
 * message at all" test.
 *
 * Input is untrusted and may be anything. Invariants:
 *   - only the n bytes given are read; every scan moves forward, so time is
 *     linear in n (a 1 MiB header line costs one pass);
 *   - memory is bounded: each of the four fields collects at most
 *     COFFER_HEADER_SCAN raw bytes, and decoding stops once the output is well
 *     past COFFER_HEADER_FIELD_MAX;
 *   - nothing malformed is an error: the summary holds what could be found;
 *     only allocation failure is reported;
 *   - every output string is valid UTF-8 with no control characters (tab
 *     becomes a space; other C0, DEL, C1 controls, NUL and invalid UTF-8
 *     become U+FFFD), trimmed, and cut at COFFER_HEADER_FIELD_MAX bytes on a
 *     character boundary.
 *
 * Sections:
 *   1. is_message
 *   2. header section scanning and unfolding
 *   3. RFC 2047 encoded words
 *   4. output sanitising
 *
 * Header section. An mbox "From " line at the very start is skipped. Lines
 * end with LF or CRLF; the section ends at the first empty line (either
 * ending) or at the end of input. A line starting with space or tab continues
 * the previous field (unfolding removes only the line break). A line that is
 * neither a field nor a continuation is skipped rather than ending the
 * section, so a stray line from broken software does not hide the fields
 * after it. For listing purposes a name followed by whitespace before the
 * colon is accepted (RFC 5322 obs-syntax); coffer_header_is_message() is
 * stricter.
 *
 * Encoded words (=?charset?B|Q?text?=) are decoded wherever they appear,
 * as mail clients do, including inside quoted display names. Whitespace
 * between two encoded words is dropped. The decoded bytes of adjacent words in
 * the same charset are converted together, because real encoders split
 * multibyte characters across words. Charsets go through iconv(3); an
 * unknown charset or a malformed word (bad base64, bad =XX) keeps the raw
 * word. Labels that mail in the wild uses for a superset are widened as the
 * WHATWG Encoding Standard does (ISO-8859-1 and US-ASCII are read as
 * windows-1252, GB2312 as GB18030, ks_c_5601-1987 as CP949). At most
 * ICONV_OPENS_MAX charset conversions are opened per field, bounding the cost
 * of a header made of thousands of tiny words; later words stay raw.
 */
#include "header.h"

#include "buf.h"
#include "errors.h"
#include "utf8.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RAW_MAX COFFER_HEADER_SCAN
#define DECODE_MAX (4 * COFFER_HEADER_FIELD_MAX)
#define CHARSET_MAX 64
#define ICONV_OPENS_MAX 64

/* ---- 1. is_message ------------------------------------------------------- */

static int is_name_char(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

int coffer_header_is_message(const void *p, size_t n)
{
	const unsigned char *b = p;
	const unsigned char *lf;
	size_t i = 0, start;

	if (n >= 5 && memcmp(b, "From ", 5) == 0) {
		lf = memchr(b, '\n', n);
		if (lf == NULL)
			return 0;
		i = (size_t)(lf - b) + 1;
	}
	start = i;
	while (i < n && is_name_char(b[i]))
		i++;
	return i > start && i < n && b[i] == ':';
}

/* ---- 2. header section ---------------------------------------------------- */

enum { F_FROM, F_SUBJECT, F_DATE, F_MESSAGE_ID, F_COUNT };

static const struct {
	const char *name;
	size_t len;
	int decode; /* RFC 2047 decoding applies */
} fields[F_COUNT] = {
	[F_FROM] = { "From", 4, 1 },
	[F_SUBJECT] = { "Subject", 7, 1 },
	[F_DATE] = { "Date", 4, 0 },
	[F_MESSAGE_ID] = { "Message-ID", 10, 0 },
};

static void append_raw(struct coffer_buf *raw, const unsigned char *p, size_t n)
{
	if (raw->len >= RAW_MAX)
		return;
	if (n > RAW_MAX - raw->len)
		n = RAW_MAX - raw->len;
	coffer_buf_append(raw, p, n);
}

/* ---- 3. RFC 2047 ----------------------------------------------------------- */

struct encoded_word {
	size_t len;                    /* bytes of the whole word */
	char charset[CHARSET_MAX + 1]; /* without any RFC 2231 "*lang" */
	char encoding;                 /* 'B' or 'Q' */
	const unsigned char *text;
	size_t text_len;
};

static int is_charset_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("-_.:+()*", c) != NULL);
}

/* Recognises the syntax of an encoded word at p. Scans at most up to the
 * fourth '?' after p, which keeps the caller's loop linear. */
static int parse_encoded_word(const unsigned char *p, size_t n, struct encoded_word *ew)
{
	size_t i = 2, cs_start, cs_len, text_start;
	const unsigned char *star;

	if (n < 2 || p[0] != '=' || p[1] != '?')
		return 0;
	cs_start = i;
	while (i < n && i - cs_start <= CHARSET_MAX && is_charset_char(p[i]))
		i++;
	cs_len = i - cs_start;
	if (cs_len == 0 || cs_len > CHARSET_MAX || i >= n || p[i] != '?')
		return 0;
	i++;
	if (i + 1 >= n || p[i + 1] != '?')
		return 0;
	if (p[i] == 'B' || p[i] == 'b')
		ew->encoding = 'B';
	else if (p[i] == 'Q' || p[i] == 'q')
		ew->encoding = 'Q';
	else
		return 0;
	i += 2;
	text_start = i;
	while (i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != '?')
		i++;
	if (i + 1 >= n || p[i] != '?' || p[i + 1] != '=')
		return 0;
	star = memchr(p + cs_start, '*', cs_len);
	if (star != NULL)
		cs_len = (size_t)(star - (p + cs_start));
	if (cs_len == 0)
		return 0;
	memcpy(ew->charset, p + cs_start, cs_len);
	ew->charset[cs_len] = '\0';
	ew->text = p + text_start;
	ew->text_len = i - text_start;
	ew->len = i + 2;
	return 1;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Appends the decoded bytes of ew's text to out; 0, or -1 if malformed (out
 * is then restored). Missing base64 padding is tolerated, as clients do. */
static int decode_text(const struct encoded_word *ew, struct coffer_buf *out)
{
	size_t orig = out->len, i, pad = 0, chars = 0;
	uint32_t bits = 0;
	int v, h, l;

	if (ew->encoding == 'Q') {
		for (i = 0; i < ew->text_len; i++) {
			if (ew->text[i] == '_') {
				coffer_buf_putc(out, ' ');
			} else if (ew->text[i] == '=') {
				if (i + 2 >= ew->text_len)
					goto bad;
				h = hex_value(ew->text[i + 1]);
				l = hex_value(ew->text[i + 2]);
				if (h < 0 || l < 0)
					goto bad;
				coffer_buf_putc(out, h * 16 + l);
				i += 2;
			} else {
				coffer_buf_putc(out, ew->text[i]);
			}
		}
		return 0;
	}
	for (i = 0; i < ew->text_len; i++) {
		if (ew->text[i] == '=') {
			pad++;
			continue;
		}
		if (pad > 0)
			goto bad;
		v = b64_value(ew->text[i]);
		if (v < 0)
			goto bad;
		bits = (bits << 6) | (uint32_t)v;
		if (++chars % 4 == 0) {
			coffer_buf_putc(out, (int)(bits >> 16) & 0xff);
			coffer_buf_putc(out, (int)(bits >> 8) & 0xff);
			coffer_buf_putc(out, (int)bits & 0xff);
			bits = 0;
		}
	}
	switch (chars % 4) {
	case 0:
		if (pad != 0)
			goto bad;
		break;
	case 1: goto bad;
	case 2:
		if (pad != 0 && pad != 2)
			goto bad;
		coffer_buf_putc(out, (int)(bits >> 4) & 0xff);
		break;
	case 3:
		if (pad > 1)
			goto bad;
		coffer_buf_putc(out, (int)(bits >> 10) & 0xff);
		coffer_buf_putc(out, (int)(bits >> 2) & 0xff);
		break;
	}
	return 0;
bad:
	if (!out->failed) {
		out->len = orig;
		if (out->data != NULL)
			out->data[orig] = '\0';
	}
	return -1;
}

static int is_utf8_label(const char *cs)
{
	return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0;
}

/* The name to hand iconv for a MIME charset label. */
static const char *iconv_name(const char *cs)
{
	static const struct {
		const char *label, *name;
	} widen[] = {
		{ "iso-8859-1", "WINDOWS-1252" },
		{ "iso8859-1", "WINDOWS-1252" },
		{ "iso_8859-1", "WINDOWS-1252" },
		{ "latin1", "WINDOWS-1252" },
		{ "l1", "WINDOWS-1252" },
		{ "us-ascii", "WINDOWS-1252" },
		{ "ascii", "WINDOWS-1252" },
		{ "gb2312", "GB18030" },
		{ "gbk", "GB18030" },
		{ "ks_c_5601-1987", "CP949" },
	};
	size_t i;

	for (i = 0; i < sizeof widen / sizeof widen[0]; i++)
		if (strcasecmp(cs, widen[i].label) == 0)
			return widen[i].name;
	return cs;
}

/* A run of adjacent encoded words in one charset, decoded but not yet
 * converted. */
struct decoder {
	struct coffer_buf out;
	struct coffer_buf run;
	char run_charset[CHARSET_MAX + 1];
	iconv_t run_cd; /* (iconv_t)-1 for UTF-8 */
	int in_run;
	unsigned iconv_opens;
};

static void put_replacement(struct coffer_buf *b)
{
	coffer_buf_append(b, COFFER_UTF8_REPLACEMENT, COFFER_UTF8_REPLACEMENT_LEN);
}

static void flush_run(struct decoder *d)
{
	char tmp[1024], *in, *op;
	size_t inleft, oleft, r;

	if (!d->in_run)
		return;
	if (d->run_cd == (iconv_t)-1) {
		coffer_buf_append(&d->out, d->run.data, d->run.len);
		goto done;
	}
	in = (char *)d->run.data;
	inleft = d->run.len;
	while (inleft > 0 && d->out.len <= DECODE_MAX) {
		op = tmp;
		oleft = sizeof tmp;
		r = iconv(d->run_cd, &in, &inleft, &op, &oleft);
		coffer_buf_append(&d->out, tmp, sizeof tmp - oleft);
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		put_replacement(&d->out);
		if (errno != EILSEQ)
			break; /* EINVAL: a truncated sequence at the end */
		in++;
		inleft--;
	}
	op = tmp;
	oleft = sizeof tmp;
	if (iconv(d->run_cd, NULL, NULL, &op, &oleft) != (size_t)-1)
		coffer_buf_append(&d->out, tmp, sizeof tmp - oleft);
	iconv_close(d->run_cd);
done:
	d->run_cd = (iconv_t)-1;
	coffer_buf_reset(&d->run);
	d->in_run = 0;
}

/* Adds an encoded word to the current run (starting a new run when the
 * charset changes). 0, or -1 if the word must stay raw. */
static int take_word(struct decoder *d, const struct encoded_word *ew)
{
	iconv_t cd = (iconv_t)-1;

	if (d->in_run && strcasecmp(d->run_charset, ew->charset) == 0)
		return decode_text(ew, &d->run);
	if (!is_utf8_label(ew->charset)) {
		if (d->iconv_opens >= ICONV_OPENS_MAX)
			return -1;
		d->iconv_opens++;
		cd = iconv_open("UTF-8", iconv_name(ew->charset));
		if (cd == (iconv_t)-1)
			return -1;
	}
	flush_run(d);
	if (decode_text(ew, &d->run) < 0) {
		if (cd != (iconv_t)-1)
			iconv_close(cd);
		return -1;
	}
	memcpy(d->run_charset, ew->charset, sizeof d->run_charset);
	d->run_cd = cd;
	d->in_run = 1;
	return 0;
}

/* Decodes the raw (unfolded) value v into d->out as bytes, mostly UTF-8. */
static void decode_value(struct decoder *d, const unsigned char *v, size_t n)
{
	struct encoded_word ew;
	size_t i = 0, ws_start = 0, ws_len = 0;
	int after_word = 0;

	while (i < n && d->out.len <= DECODE_MAX) {
		if (v[i] == ' ' || v[i] == '\t') {
			ws_start = i;
			while (i < n && (v[i] == ' ' || v[i] == '\t'))
				i++;
			ws_len = i - ws_start;
			if (!after_word)
				coffer_buf_append(&d->out, v + ws_start, ws_len);
			continue;
		}
		if (v[i] == '=' && parse_encoded_word(v + i, n - i, &ew)) {
			if (take_word(d, &ew) == 0) {
				/* whitespace between two encoded words is dropped */
				ws_len = 0;
				after_word = 1;
				i += ew.len;
				continue;
			}
			flush_run(d);
			if (after_word)
				coffer_buf_append(&d->out, v + ws_start, ws_len);
			coffer_buf_append(&d->out, v + i, ew.len);
			i += ew.len;
			after_word = 0;
			ws_len = 0;
			continue;
		}
		flush_run(d);
		if (after_word)
			coffer_buf_append(&d->out, v + ws_start, ws_len);
		after_word = 0;
		ws_len = 0;
		coffer_buf_putc(&d->out, v[i++]);
	}
	flush_run(d);
}

/* ---- 4. output -------------------------------------------------------------- */

/* The sanitised, trimmed, cut copy of p as a malloc'd C string; NULL only
 * when memory runs out. */
static char *finish(const unsigned char *p, size_t n)
{
	struct coffer_buf o = COFFER_BUF_INIT;
	size_t i = 0, start, end;
	uint32_t cp = 0;
	int len;
	char *s;

	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	while (i < n && o.len <= COFFER_HEADER_FIELD_MAX + 4) {
		/* one U+FFFD per invalid byte (not per maximal subpart) */
		len = coffer_utf8_decode(p + i, n - i, &cp);
		if (len < 0) {
			put_replacement(&o);
			i++;
			continue;
		}
		if (cp == '\t')
			coffer_buf_putc(&o, ' ');
		else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
			put_replacement(&o);
		else
			coffer_buf_append(&o, p + i, (size_t)len);
		i += (size_t)len;
	}
	if (coffer_buf_ok(&o) < 0) {
		coffer_buf_free(&o);
		return NULL;
	}
	end = o.len;
	if (end > COFFER_HEADER_FIELD_MAX) {
		end = COFFER_HEADER_FIELD_MAX;
		while (end > 0 && (o.data[end] & 0xc0) == 0x80)
			end--;
	}
	start = 0;
	while (start < end && o.data != NULL && o.data[start] == ' ')
		start++;
	while (end > start && o.data[end - 1] == ' ')
		end--;
	s = malloc(end - start + 1);
	if (s != NULL) {
		if (end > start)
			memcpy(s, o.data + start, end - start);
		s[end - start] = '\0';
	}
	coffer_buf_free(&o);
	return s;
}

static char *summarise_field(int f, const struct coffer_buf *raw, int *nomem)
{
	struct decoder d = { COFFER_BUF_INIT, COFFER_BUF_INIT, "", (iconv_t)-1, 0, 0 };
	char *s = NULL;

	if (!fields[f].decode) {
		s = finish(raw->data, raw->len);
		goto out;
	}
	decode_value(&d, raw->data, raw->len);
	if (coffer_buf_ok(&d.out) < 0 || coffer_buf_ok(&d.run) < 0)
		goto out;
	s = finish(d.out.data, d.out.len);
out:
	if (s == NULL)
		*nomem = 1;
	coffer_buf_free(&d.out);
	coffer_buf_free(&d.run);
	return s;
}

int coffer_header_summary(const void *p, size_t n, struct coffer_header_summary *s)
{
	struct coffer_buf raw[F_COUNT] = { COFFER_BUF_INIT, COFFER_BUF_INIT, COFFER_BUF_INIT,
		                           COFFER_BUF_INIT };
	int found[F_COUNT] = { 0 };
	char **slot[F_COUNT] = { &s->from, &s->subject, &s->date, &s->message_id };
	const unsigned char *b = p;
	const unsigned char *lf;
	size_t pos = 0, eol, end, next, name_end, i;
	int cur = -1, f, nomem = 0, r = 0;

	memset(s, 0, sizeof *s);
	if (n >= 5 && memcmp(b, "From ", 5) == 0) {
		lf = memchr(b, '\n', n);
		pos = lf ? (size_t)(lf - b) + 1 : n;
	}
	while (pos < n) {
		lf = memchr(b + pos, '\n', n - pos);
		eol = lf ? (size_t)(lf - b) : n;
		next = lf ? eol + 1 : n;
		end = eol;
		if (end > pos && b[end - 1] == '\r')
			end--;
		if (end == pos)
			break; /* the empty line that ends the header section */
		if (b[pos] == ' ' || b[pos] == '\t') {
			if (cur >= 0)
				append_raw(&raw[cur], b + pos, end - pos);
			pos = next;
			continue;
		}
		cur = -1;
		for (i = pos; i < end && is_name_char(b[i]); i++)
			;
		name_end = i;
		while (i < end && (b[i] == ' ' || b[i] == '\t'))
			i++;
		if (name_end > pos && i < end && b[i] == ':') {
			for (f = 0; f < F_COUNT; f++) {
				if (found[f] || name_end - pos != fields[f].len ||
				    strncasecmp((const char *)b + pos, fields[f].name,
				                fields[f].len) != 0)
					continue;
				found[f] = 1;
				cur = f;
				/* present but empty is "", not NULL */
				coffer_buf_reserve(&raw[f], 0);
				append_raw(&raw[f], b + i + 1, end - i - 1);
				break;
			}
		}
		pos = next;
	}
	for (f = 0; f < F_COUNT; f++) {
		if (coffer_buf_ok(&raw[f]) < 0) {
			nomem = 1;
			continue;
		}
		if (found[f])
			*slot[f] = summarise_field(f, &raw[f], &nomem);
	}
	if (nomem) {
		coffer_header_summary_free(s);
		r = coffer_err_set(COFFER_ENOMEM, "message header: out of memory");
	}
	for (f = 0; f < F_COUNT; f++)
		coffer_buf_free(&raw[f]);
	return r;
}

void coffer_header_summary_free(struct coffer_header_summary *s)
{
	if (s == NULL)
		return;
	free(s->from);
	free(s->subject);
	free(s->date);
	free(s->message_id);
	s->from = s->subject = s->date = s->message_id = NULL;
}
