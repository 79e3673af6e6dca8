/*
 * name.c: Maildir file names and Maildir++ folder directory names.
 *
 * Everything parsed here comes from untrusted writers: IMAP servers writing
 * through the mount, and imported Maildir trees. Parsers read only the bytes
 * they are given, run in linear time, and refuse with COFFER_EINVAL and a
 * detail that quotes the name safely (coffer_names_show()).
 *
 * Sections:
 *   1. Maildir file names: "<unique>[:2,<info>]"
 *   2. IMAP modified UTF-7 (RFC 3501 5.1.3)
 *   3. Maildir++ directory names <-> Coffer folder names
 *
 * File names. The unique part is everything before the first ':'; it may
 * carry Dovecot's ",S=<size>" and ",W=<vsize>" fields, which stay inside it as
 * written, and the first well-formed S= is parsed into size. The info part
 * must be ":2," followed by flag letters DFPRST and keyword letters a..z in
 * any order, duplicates allowed; formatting writes them once each, flags then
 * keywords, in ASCII order, so format(parse(x)) is the canonical form of x.
 * The experimental ":1," info and anything else is refused by name.
 *
 * Modified UTF-7 is decoded strictly, so that every directory name has exactly
 * one spelling and encode(decode(x)) == x for every x that decodes: printable
 * ASCII (0x20..0x7e) other than '&' must appear as itself, '&' only as "&-",
 * a shift must hold whole UTF-16 units with zero padding bits and no spare
 * base64 character, surrogates must pair, and two shifts must not touch
 * ("&AGE-&AGI-" is the non-minimal spelling of "&AGEAYg-"). Encoded C0
 * controls and DEL are valid modified UTF-7 (the encoder produces them for
 * such input); the folder layer refuses them afterwards.
 *
 * The inbox is the Maildir root itself, so it has no Maildir++ directory: the
 * folder INBOX does not map to ".INBOX" and ".INBOX" is refused rather than
 * silently merged with the root.
 */
#include "name.h"

#include "engine/errors.h"
#include "engine/names.h"
#include "engine/utf8.h"

#include <assert.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

static void put_utf8(struct coffer_buf *b, uint32_t cp)
{
	unsigned char u[COFFER_UTF8_MAX];
	int n;

	/* cp is a scalar value: coffer_mutf7_decode() pairs surrogates first */
	n = coffer_utf8_encode(cp, u);
	assert(n > 0);
	if (n > 0)
		coffer_buf_append(b, u, (size_t)n);
}

static unsigned popcount32(uint32_t v)
{
	return (unsigned)__builtin_popcount(v);
}

/* ---- 1. Maildir file names ----------------------------------------------- */

#define FLAG_LETTERS "DFPRST"
#define FLAGS_ALL 0x3fu
#define KEYWORDS_ALL 0x3ffffffu

static int name_fail(const char *name, size_t n, const char *what)
{
	char show[COFFER_NAMES_SHOW_SIZE];

	return coffer_err_set(COFFER_EINVAL, "Maildir file name '%s': %s",
	                      coffer_names_show(name, n, show), what);
}

/* The first ",S=<digits>" field (digits up to ',' or the end of unique) that
 * fits in 64 bits; malformed ones are not size fields and are skipped. */
static void parse_size(const char *u, size_t len, struct coffer_maildir_name *out)
{
	size_t i, j;
	uint64_t v;

	for (i = 0; i + 3 <= len; i++) {
		if (u[i] != ',' || u[i + 1] != 'S' || u[i + 2] != '=')
			continue;
		v = 0;
		for (j = i + 3; j < len && u[j] >= '0' && u[j] <= '9'; j++) {
			if (v > (UINT64_MAX - (uint64_t)(u[j] - '0')) / 10)
				break;
			v = v * 10 + (uint64_t)(u[j] - '0');
		}
		if (j == i + 3 || (j < len && u[j] != ','))
			continue;
		out->size = v;
		out->has_size = 1;
		return;
	}
}

int coffer_maildir_name_parse(const char *name, size_t n, struct coffer_maildir_name *out)
{
	char show[COFFER_NAMES_SHOW_SIZE], letter[COFFER_NAMES_SHOW_SIZE];
	const unsigned char *s = (const unsigned char *)name;
	const char *colon, *p;
	size_t i, info_len;

	memset(out, 0, sizeof *out);
	if (n == 0)
		return name_fail(name, n, "empty");
	if (n > COFFER_MAILDIR_NAME_MAX)
		return name_fail(name, n, "longer than 255 bytes");
	if (s[0] == '.')
		return name_fail(name, n, "starts with '.'");
	for (i = 0; i < n; i++) {
		if (s[i] == '/')
			return coffer_err_set(COFFER_EINVAL,
			                      "Maildir file name '%s': '/' at byte %zu",
			                      coffer_names_show(name, n, show), i);
		if (s[i] == 0)
			return coffer_err_set(COFFER_EINVAL,
			                      "Maildir file name '%s': NUL at byte %zu",
			                      coffer_names_show(name, n, show), i);
		if (s[i] < 0x20 || s[i] == 0x7f)
			return coffer_err_set(
			    COFFER_EINVAL,
			    "Maildir file name '%s': control character \\x%02x at "
			    "byte %zu",
			    coffer_names_show(name, n, show), s[i], i);
	}
	colon = memchr(name, ':', n);
	out->unique_len = colon ? (size_t)(colon - name) : n;
	if (out->unique_len == 0)
		return name_fail(name, n, "empty unique part");
	parse_size(name, out->unique_len, out);
	if (colon == NULL)
		return 0;

	p = colon + 1;
	info_len = n - out->unique_len - 1;
	if (info_len < 2 || p[0] != '2' || p[1] != ',') {
		memset(out, 0, sizeof *out);
		if (info_len >= 2 && p[0] == '1' && p[1] == ',')
			return name_fail(name, n,
			                 "experimental info ':1,' is not supported "
			                 "(only ':2,<flags>')");
		return name_fail(name, n, "info part is not ':2,<flags>'");
	}
	out->has_info = 1;
	for (i = 2; i < info_len; i++) {
		const char *f = p[i] != '\0' ? strchr(FLAG_LETTERS, p[i]) : NULL;

		if (f != NULL) {
			out->flags |= 1u << (f - FLAG_LETTERS);
		} else if (p[i] >= 'a' && p[i] <= 'z') {
			out->keywords |= UINT32_C(1) << (p[i] - 'a');
		} else {
			coffer_names_show(p + i, 1, letter);
			memset(out, 0, sizeof *out);
			return coffer_err_set(COFFER_EINVAL,
			                      "Maildir file name '%s': unknown info letter '%s' at "
			                      "byte %zu",
			                      coffer_names_show(name, n, show), letter,
			                      (size_t)(p + i - name));
		}
	}
	return 0;
}

int coffer_maildir_flags_format(struct coffer_buf *out, unsigned flags)
{
	size_t i;

	for (i = 0; FLAG_LETTERS[i] != '\0'; i++)
		if (flags & (1u << i))
			coffer_buf_putc(out, FLAG_LETTERS[i]);
	return coffer_buf_ok(out);
}

/*
 * Flag bits above T and keyword bits above z have no letter and are ignored
 * (callers may carry other state in the same word). The unique part is
 * checked, so that whatever this writes parses back to the same fields.
 */
int coffer_maildir_name_format(struct coffer_buf *out, const char *unique, size_t unique_len,
                               int info, unsigned flags, uint32_t keywords)
{
	char show[COFFER_NAMES_SHOW_SIZE];
	const unsigned char *u = (const unsigned char *)unique;
	size_t i, total;

	if (unique_len == 0)
		return coffer_err_set(COFFER_EINVAL, "Maildir unique part '': empty");
	if (u[0] == '.')
		return coffer_err_set(COFFER_EINVAL, "Maildir unique part '%s': starts with '.'",
		                      coffer_names_show(unique, unique_len, show));
	for (i = 0; i < unique_len; i++)
		if (u[i] == '/' || u[i] == ':' || u[i] < 0x20 || u[i] == 0x7f)
			return coffer_err_set(COFFER_EINVAL,
			                      "Maildir unique part '%s': byte \\x%02x at %zu not "
			                      "allowed",
			                      coffer_names_show(unique, unique_len, show), u[i], i);
	flags &= FLAGS_ALL;
	keywords &= KEYWORDS_ALL;
	total = unique_len;
	if (info)
		total += 3 + popcount32(flags) + popcount32(keywords);
	if (total > COFFER_MAILDIR_NAME_MAX)
		return coffer_err_set(COFFER_EINVAL,
		                      "Maildir unique part '%s': file name would be longer than "
		                      "255 bytes",
		                      coffer_names_show(unique, unique_len, show));
	coffer_buf_append(out, unique, unique_len);
	if (info) {
		coffer_buf_puts(out, ":2,");
		coffer_maildir_flags_format(out, flags);
		for (i = 0; i < 26; i++)
			if (keywords & (UINT32_C(1) << i))
				coffer_buf_putc(out, (int)('a' + i));
	}
	if (coffer_buf_ok(out) < 0)
		return coffer_err_set(COFFER_ENOMEM, "Maildir file name: out of memory");
	return 0;
}

/* ---- 2. IMAP modified UTF-7 ---------------------------------------------- */

static const char mb64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int mb64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static int is_direct(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

static int mutf7_fail(struct coffer_buf *out, size_t orig_len, const char *in, size_t n,
                      const char *what, size_t at)
{
	char show[COFFER_NAMES_SHOW_SIZE];

	if (!out->failed) {
		out->len = orig_len;
		if (out->data != NULL)
			out->data[orig_len] = '\0';
	}
	return coffer_err_set(COFFER_EINVAL, "modified UTF-7 name '%s': %s at byte %zu",
	                      coffer_names_show(in, n, show), what, at);
}

int coffer_mutf7_decode(const char *in, size_t n, struct coffer_buf *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t orig_len = out->len, i = 0, shift_start, last_shift_end = (size_t)-1, chars;
	uint32_t bits, high, unit, cp;
	unsigned nbits;
	int v;

	while (i < n) {
		if (!is_direct(s[i]))
			return mutf7_fail(out, orig_len, in, n, "byte outside printable ASCII", i);
		if (s[i] != '&') {
			coffer_buf_putc(out, s[i++]);
			continue;
		}
		if (i + 1 < n && s[i + 1] == '-') {
			coffer_buf_putc(out, '&');
			i += 2;
			continue;
		}
		if (i == last_shift_end)
			return mutf7_fail(out, orig_len, in, n,
			                  "shift directly after a shift (non-minimal encoding)", i);
		shift_start = i++;
		bits = 0;
		nbits = 0;
		high = 0;
		chars = 0;
		for (;; i++) {
			if (i >= n)
				return mutf7_fail(out, orig_len, in, n, "unterminated '&' shift",
				                  shift_start);
			if (s[i] == '-')
				break;
			v = mb64_value(s[i]);
			if (v < 0)
				return mutf7_fail(out, orig_len, in, n, "bad base64 character", i);
			chars++;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			unit = (bits >> nbits) & 0xffff;
			bits &= (UINT32_C(1) << nbits) - 1;
			if (high != 0) {
				if (unit < 0xdc00 || unit > 0xdfff)
					return mutf7_fail(out, orig_len, in, n,
					                  "unpaired UTF-16 surrogate", i);
				cp = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
				high = 0;
			} else if (unit >= 0xd800 && unit <= 0xdbff) {
				high = unit;
				continue;
			} else if (unit >= 0xdc00 && unit <= 0xdfff) {
				return mutf7_fail(out, orig_len, in, n, "unpaired UTF-16 surrogate",
				                  i);
			} else {
				cp = unit;
			}
			if (cp >= 0x20 && cp <= 0x7e)
				return mutf7_fail(out, orig_len, in, n,
				                  "printable ASCII inside a shift", i);
			put_utf8(out, cp);
		}
		if (high != 0)
			return mutf7_fail(out, orig_len, in, n, "unpaired UTF-16 surrogate", i);
		if (chars == 0 || nbits >= 6)
			return mutf7_fail(out, orig_len, in, n, "spare base64 character", i);
		if (bits != 0)
			return mutf7_fail(out, orig_len, in, n, "non-zero base64 padding bits", i);
		last_shift_end = ++i;
	}
	if (coffer_buf_ok(out) < 0)
		return coffer_err_set(COFFER_ENOMEM, "modified UTF-7: out of memory");
	return 0;
}

static void mb64_put_unit(struct coffer_buf *out, uint32_t unit, uint32_t *bits, unsigned *nbits)
{
	*bits = (*bits << 16) | unit;
	*nbits += 16;
	while (*nbits >= 6) {
		*nbits -= 6;
		coffer_buf_putc(out, mb64[(*bits >> *nbits) & 63]);
	}
	*bits &= (UINT32_C(1) << *nbits) - 1;
}

int coffer_mutf7_encode(const char *in, size_t n, struct coffer_buf *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t orig_len = out->len, i = 0;
	uint32_t bits, cp = 0;
	unsigned nbits;
	int len;

	while (i < n) {
		if (is_direct(s[i])) {
			if (s[i] == '&')
				coffer_buf_puts(out, "&-");
			else
				coffer_buf_putc(out, s[i]);
			i++;
			continue;
		}
		coffer_buf_putc(out, '&');
		bits = 0;
		nbits = 0;
		while (i < n && !is_direct(s[i])) {
			len = coffer_utf8_decode(s + i, n - i, &cp);
			if (len < 0)
				return mutf7_fail(out, orig_len, in, n, "invalid UTF-8", i);
			if (cp >= 0x10000) {
				mb64_put_unit(out, 0xd800 + ((cp - 0x10000) >> 10), &bits, &nbits);
				mb64_put_unit(out, 0xdc00 + ((cp - 0x10000) & 0x3ff), &bits,
				              &nbits);
			} else {
				mb64_put_unit(out, cp, &bits, &nbits);
			}
			i += (size_t)len;
		}
		if (nbits > 0)
			coffer_buf_putc(out, mb64[(bits << (6 - nbits)) & 63]);
		coffer_buf_putc(out, '-');
	}
	if (coffer_buf_ok(out) < 0)
		return coffer_err_set(COFFER_ENOMEM, "modified UTF-7: out of memory");
	return 0;
}

/* ---- 3. Maildir++ directory names ---------------------------------------- */

static int dir_fail(const char *dir, size_t n, const char *what)
{
	char show[COFFER_NAMES_SHOW_SIZE];

	return coffer_err_set(COFFER_EINVAL, "Maildir++ folder directory '%s': %s",
	                      coffer_names_show(dir, n, show), what);
}

int coffer_maildir_dir_to_folder(const char *dir, size_t n, struct coffer_buf *out)
{
	char show[COFFER_NAMES_SHOW_SIZE];
	struct coffer_buf utf8 = COFFER_BUF_INIT;
	size_t i, start;
	int r;

	coffer_buf_reset(out);
	if (n == 0)
		return dir_fail(dir, n, "empty");
	if (n > COFFER_MAILDIR_NAME_MAX)
		return dir_fail(dir, n, "longer than 255 bytes");
	if (dir[0] != '.')
		return dir_fail(dir, n, "not a Maildir++ folder (no leading '.')");
	if (n == 1 || (n == 2 && dir[1] == '.'))
		return dir_fail(dir, n, "'.' and '..' are not folders");
	if (memchr(dir, '/', n) != NULL)
		return dir_fail(dir, n, "contains '/'");
	start = 1;
	for (i = 1; i <= n; i++) {
		if (i < n && dir[i] != '.')
			continue;
		if (i == start) {
			r = dir_fail(dir, n, i == n ? "ends with '.'" : "empty component ('..')");
			goto out;
		}
		if (start > 1)
			coffer_buf_putc(&utf8, '/');
		r = coffer_mutf7_decode(dir + start, i - start, &utf8);
		if (r < 0) {
			coffer_err_prefix(r, "Maildir++ folder directory '%s': ",
			                  coffer_names_show(dir, n, show));
			goto out;
		}
		start = i + 1;
	}
	if (coffer_buf_ok(&utf8) < 0) {
		r = coffer_err_set(COFFER_ENOMEM, "Maildir++ folder directory: out of memory");
		goto out;
	}
	r = coffer_names_folder((const char *)utf8.data, utf8.len, out);
	if (r < 0) {
		coffer_err_prefix(r, "Maildir++ folder directory '%s': ",
		                  coffer_names_show(dir, n, show));
		goto out;
	}
	if (coffer_names_is_inbox(coffer_buf_str(out))) {
		coffer_buf_reset(out);
		r = dir_fail(dir, n, "the inbox is the Maildir root, not a folder directory");
		goto out;
	}
out:
	if (r < 0)
		coffer_buf_reset(out);
	coffer_buf_free(&utf8);
	return r;
}

int coffer_maildir_folder_to_dir(const char *folder, struct coffer_buf *out)
{
	char show[COFFER_NAMES_SHOW_SIZE];
	struct coffer_buf canon = COFFER_BUF_INIT;
	const char *c, *slash;
	size_t len;
	int r;

	coffer_buf_reset(out);
	r = coffer_names_folder(folder, strlen(folder), &canon);
	if (r < 0)
		goto out;
	if (coffer_names_is_inbox(coffer_buf_str(&canon))) {
		r = coffer_err_set(COFFER_EINVAL,
		                   "folder 'INBOX': the inbox is the Maildir root and has no "
		                   "Maildir++ directory");
		goto out;
	}
	c = coffer_buf_str(&canon);
	for (;;) {
		slash = strchr(c, '/');
		len = slash ? (size_t)(slash - c) : strlen(c);
		coffer_buf_putc(out, '.');
		r = coffer_mutf7_encode(c, len, out);
		if (r < 0)
			goto out;
		if (slash == NULL)
			break;
		c = slash + 1;
	}
	if (coffer_buf_ok(out) < 0) {
		r = coffer_err_set(COFFER_ENOMEM, "Maildir++ folder directory: out of memory");
		goto out;
	}
	if (out->len > COFFER_MAILDIR_NAME_MAX)
		r = coffer_err_set(COFFER_EINVAL,
		                   "folder '%s': its Maildir++ directory name would be longer "
		                   "than 255 bytes",
		                   coffer_names_show(canon.data, canon.len, show));
out:
	if (r < 0)
		coffer_buf_reset(out);
	coffer_buf_free(&canon);
	return r;
}
