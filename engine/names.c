/*
 * names.c: validation and canonical forms of account and folder names.
 *
 * Every byte handled here is untrusted (argv, stdin, IMAP clients through the
 * mount, imported Maildir trees). The functions only read the n bytes they
 * are given, never allocate more than the output name, and run in time linear
 * in n (long inputs are refused by length before they are scanned).
 *
 * Sections:
 *   1. UTF-8 and safe display of hostile bytes (coffer_names_show)
 *   2. account names (email addresses)
 *   3. folder names
 *
 * Error details quote the offending name through coffer_names_show(), so a
 * name full of escape sequences, NULs or megabytes of junk prints as one
 * short, harmless line. The display buffer is a bounded fixed array on
 * purpose: it holds at most COFFER_NAMES_SHOW_MAX input bytes, and error
 * paths must not allocate (see errors.c).
 *
 * Beyond the letter of names.h, folder components also refuse the C1 control
 * characters U+0080..U+009F: they are control characters (U+009B is a
 * terminal CSI) and a name that passes here must be safe to print.
 */
#include "names.h"

#include "errors.h"
#include "utf8.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#define ACCOUNT_MAX 254
#define FOLDER_MAX 1024
#define COMPONENT_MAX 255

/* ---- 1. UTF-8 and safe display ---------------------------------------- */

/* UTF-8 itself is decoded by utf8.h; this section decides what is safe to show. */

static int is_control(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
}

/* Code points that make printed text lie: bidirectional overrides and
 * isolates, and the Unicode line and paragraph separators. */
static int is_deceptive(uint32_t cp)
{
	return cp == 0x200e || cp == 0x200f || cp == 0x2028 || cp == 0x2029 ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

const char *coffer_names_show(const void *p, size_t n, char *dst)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = p;
	size_t i = 0, o = 0, len, k;
	uint32_t cp = 0;
	int seq, escape;

	while (i < n) {
		seq = coffer_utf8_decode(s + i, n - i, &cp);
		escape = seq < 0 || is_control(cp) || is_deceptive(cp) || cp == '\'' || cp == '\\';
		len = seq < 0 ? 1 : (size_t)seq;
		if (i + len > COFFER_NAMES_SHOW_MAX)
			break;
		for (k = 0; k < len; k++) {
			if (escape) {
				dst[o++] = '\\';
				dst[o++] = 'x';
				dst[o++] = hex[s[i + k] >> 4];
				dst[o++] = hex[s[i + k] & 15];
			} else {
				dst[o++] = (char)s[i + k];
			}
		}
		i += len;
	}
	if (i < n) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

/* ---- 2. account names ---------------------------------------------------- */

static int is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-=?^_`{|}~", c) != NULL;
}

static int is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

static unsigned char ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static int account_fail(const char *in, size_t n, const char *what)
{
	char show[COFFER_NAMES_SHOW_SIZE];

	return coffer_err_set(COFFER_EINVAL, "account name '%s': %s",
	                      coffer_names_show(in, n, show), what);
}

int coffer_names_account(const char *in, size_t n, struct coffer_buf *out)
{
	char show[COFFER_NAMES_SHOW_SIZE];
	const unsigned char *s = (const unsigned char *)in;
	size_t i, at = n, label_start, labels;

	coffer_buf_reset(out);
	if (n == 0)
		return account_fail(in, n, "empty");
	if (n > ACCOUNT_MAX)
		return account_fail(in, n, "longer than 254 bytes");
	for (i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return coffer_err_set(
			    COFFER_EINVAL,
			    "account name '%s': control character \\x%02x at byte %zu",
			    coffer_names_show(in, n, show), s[i], i);
		if (s[i] >= 0x80)
			return coffer_err_set(COFFER_EINVAL,
			                      "account name '%s': non-ASCII byte at byte %zu "
			                      "(use IDNA/punycode)",
			                      coffer_names_show(in, n, show), i);
		if (s[i] == '@') {
			if (at != n)
				return account_fail(in, n, "more than one '@'");
			at = i;
		}
	}
	if (at == n)
		return account_fail(in, n, "no '@'");
	if (at == 0)
		return account_fail(in, n, "empty local part");
	if (at == n - 1)
		return account_fail(in, n, "empty domain");

	/* Local part: a dot-atom. */
	for (i = 0; i < at; i++) {
		if (s[i] == '.') {
			if (i == 0)
				return account_fail(in, n, "local part starts with '.'");
			if (i + 1 == at)
				return account_fail(in, n, "local part ends with '.'");
			if (s[i + 1] == '.')
				return account_fail(in, n, "'..' in the local part");
		} else if (!is_atext(s[i])) {
			return coffer_err_set(
			    COFFER_EINVAL,
			    "account name '%s': character '%c' not allowed in the "
			    "local part",
			    coffer_names_show(in, n, show), s[i]);
		}
	}

	/* Domain: LDH labels, at least two. */
	labels = 0;
	label_start = at + 1;
	for (i = at + 1; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (!is_ldh(s[i]))
				return coffer_err_set(
				    COFFER_EINVAL,
				    "account name '%s': character '%c' not allowed in "
				    "the domain",
				    coffer_names_show(in, n, show), s[i]);
			continue;
		}
		if (i == label_start)
			return account_fail(in, n, "empty domain label");
		if (s[label_start] == '-' || s[i - 1] == '-')
			return account_fail(in, n, "domain label starts or ends with '-'");
		labels++;
		label_start = i + 1;
	}
	if (labels < 2)
		return account_fail(in, n, "the domain needs at least two labels");

	if (coffer_buf_reserve(out, n) < 0)
		return coffer_err_set(COFFER_ENOMEM, "account name: out of memory");
	for (i = 0; i < n; i++)
		coffer_buf_putc(out, ascii_lower(s[i]));
	if (coffer_buf_ok(out) < 0)
		return coffer_err_set(COFFER_ENOMEM, "account name: out of memory");
	return 0;
}

/* ---- 3. folder names ----------------------------------------------------- */

static int folder_fail(const char *in, size_t n, const char *what)
{
	char show[COFFER_NAMES_SHOW_SIZE];

	return coffer_err_set(COFFER_EINVAL, "folder name '%s': %s", coffer_names_show(in, n, show),
	                      what);
}

static int is_sep(unsigned char c)
{
	return c == '/' || c == '.';
}

static int folder_canonical(const char *in, size_t n, struct coffer_buf *out);

int coffer_names_folder(const char *in, size_t n, struct coffer_buf *out)
{
	int r;

	coffer_buf_reset(out);
	r = folder_canonical(in, n, out);
	if (r < 0)
		coffer_buf_reset(out);
	return r;
}

/* The work of coffer_names_folder(), which empties out again on failure. */
static int folder_canonical(const char *in, size_t n, struct coffer_buf *out)
{
	char show[COFFER_NAMES_SHOW_SIZE];
	const unsigned char *s = (const unsigned char *)in;
	size_t i, len, start, components;
	uint32_t cp = 0;
	int seq;

	if (n == 0)
		return folder_fail(in, n, "empty");
	if (n > FOLDER_MAX)
		return folder_fail(in, n, "longer than 1024 bytes");
	for (i = 0; i < n; i += (size_t)seq) {
		seq = coffer_utf8_decode(s + i, n - i, &cp);
		if (seq < 0)
			return coffer_err_set(COFFER_EINVAL,
			                      "folder name '%s': invalid UTF-8 at byte %zu",
			                      coffer_names_show(in, n, show), i);
		if (cp == 0)
			return coffer_err_set(COFFER_EINVAL, "folder name '%s': NUL at byte %zu",
			                      coffer_names_show(in, n, show), i);
		if (is_control(cp))
			return coffer_err_set(
			    COFFER_EINVAL, "folder name '%s': control character U+%04X at byte %zu",
			    coffer_names_show(in, n, show), (unsigned)cp, i);
	}

	/* "." and ".." between slashes get their own message: they are the
	 * path-traversal attempts an operator will want to recognise. */
	start = 0;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '/')
			continue;
		len = i - start;
		if ((len == 1 && s[start] == '.') ||
		    (len == 2 && s[start] == '.' && s[start + 1] == '.'))
			return coffer_err_set(COFFER_EINVAL, "folder name '%s': component '%s'",
			                      coffer_names_show(in, n, show),
			                      len == 1 ? "." : "..");
		start = i + 1;
	}

	if (coffer_buf_reserve(out, n) < 0)
		return coffer_err_set(COFFER_ENOMEM, "folder name: out of memory");
	components = 0;
	start = 0;
	for (i = 0; i <= n; i++) {
		if (i < n && !is_sep(s[i]))
			continue;
		len = i - start;
		if (len == 0) {
			if (i == 0)
				return folder_fail(in, n, "starts with a separator");
			if (i == n)
				return folder_fail(in, n, "ends with a separator");
			return folder_fail(in, n, "empty component");
		}
		if (len > COMPONENT_MAX)
			return folder_fail(in, n, "component longer than 255 bytes");
		if (components++ > 0)
			coffer_buf_putc(out, '/');
		coffer_buf_append(out, s + start, len);
		start = i + 1;
	}
	if (components == 1 && n == 5 && strncasecmp(in, "INBOX", 5) == 0) {
		coffer_buf_reset(out);
		coffer_buf_puts(out, "INBOX");
	}
	if (coffer_buf_ok(out) < 0)
		return coffer_err_set(COFFER_ENOMEM, "folder name: out of memory");
	return 0;
}

int coffer_names_is_inbox(const char *canonical)
{
	return canonical != NULL && strcmp(canonical, "INBOX") == 0;
}
