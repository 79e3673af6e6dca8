/*
 * fuzz-names.c: libFuzzer target for engine/names.c and the modified UTF-7
 * encoder that turns folder names into Maildir++ directory names.
 *
 * Invariants checked on every input:
 *   - account and folder names that pass are fixed points (canonicalising
 *     the output gives the output), contain no control bytes, and refusals
 *     carry COFFER_EINVAL with a printable detail;
 *   - canonical folder names have no '.', no empty component, and valid UTF-8;
 *   - for valid UTF-8 input, mutf7 decode(encode(x)) == x and the encoding is
 *     printable ASCII; for invalid UTF-8, encode refuses;
 *   - a canonical folder maps to a Maildir++ directory and back to itself
 *     (unless it is INBOX or its directory name would exceed 255 bytes).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *        tests/fuzz/fuzz-names.c engine/names.c maildir/name.c \
 *        engine/buf.c engine/errors.c
 */
#include "engine/buf.h"
#include "engine/errors.h"
#include "engine/names.h"
#include "maildir/name.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_refusal(int r)
{
	const unsigned char *p = (const unsigned char *)coffer_errmsg();

	if (r != COFFER_EINVAL || *p == '\0')
		abort();
	for (; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
}

static void same(const struct coffer_buf *b, const void *p, size_t n)
{
	if (b->len != n || (n > 0 && memcmp(b->data, p, n) != 0))
		abort();
}

/* Independent strict UTF-8 check (no overlongs, surrogates, > U+10FFFF). */
static int valid_utf8(const unsigned char *p, size_t n)
{
	size_t i = 0, len, k;
	uint32_t cp;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf) {
			len = 2;
			cp = p[i] & 0x1f;
		} else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			len = 3;
			cp = p[i] & 0x0f;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			len = 4;
			cp = p[i] & 0x07;
		} else {
			return 0;
		}
		if (i + len > n)
			return 0;
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

static void fuzz_account(const char *in, size_t n)
{
	struct coffer_buf out = COFFER_BUF_INIT, again = COFFER_BUF_INIT;
	size_t i;
	int r;

	r = coffer_names_account(in, n, &out);
	if (r != 0) {
		check_refusal(r);
		if (out.len != 0)
			abort();
		goto done;
	}
	if (out.len != n || out.len > 254 || memchr(out.data, '@', out.len) == NULL)
		abort();
	for (i = 0; i < out.len; i++)
		if (out.data[i] <= 0x20 || out.data[i] >= 0x7f ||
		    (out.data[i] >= 'A' && out.data[i] <= 'Z'))
			abort();
	if (coffer_names_account((const char *)out.data, out.len, &again) != 0)
		abort();
	same(&again, out.data, out.len);
done:
	coffer_buf_free(&out);
	coffer_buf_free(&again);
}

static void fuzz_folder(const char *in, size_t n)
{
	struct coffer_buf out = COFFER_BUF_INIT, again = COFFER_BUF_INIT, dir = COFFER_BUF_INIT,
	                  back = COFFER_BUF_INIT;
	size_t i;
	int r;

	r = coffer_names_folder(in, n, &out);
	if (r != 0) {
		check_refusal(r);
		if (out.len != 0)
			abort();
		goto done;
	}
	if (out.len == 0 || out.len != n || strlen((const char *)out.data) != out.len ||
	    memchr(out.data, '.', out.len) != NULL || out.data[0] == '/' ||
	    out.data[out.len - 1] == '/' || strstr((const char *)out.data, "//") != NULL ||
	    !valid_utf8(out.data, out.len))
		abort();
	for (i = 0; i < out.len; i++)
		if (out.data[i] < 0x20 || out.data[i] == 0x7f ||
		    (out.data[i] == 0xc2 && i + 1 < out.len && out.data[i + 1] < 0xa0))
			abort();
	if (coffer_names_folder((const char *)out.data, out.len, &again) != 0)
		abort();
	same(&again, out.data, out.len);

	r = coffer_maildir_folder_to_dir(coffer_buf_str(&out), &dir);
	if (r != 0) {
		check_refusal(r);
		if (!coffer_names_is_inbox(coffer_buf_str(&out)) &&
		    strstr(coffer_errmsg(), "longer than 255 bytes") == NULL)
			abort();
		goto done;
	}
	if (dir.len > 255 || dir.data[0] != '.')
		abort();
	if (coffer_maildir_dir_to_folder((const char *)dir.data, dir.len, &back) != 0)
		abort();
	same(&back, out.data, out.len);
done:
	coffer_buf_free(&out);
	coffer_buf_free(&again);
	coffer_buf_free(&dir);
	coffer_buf_free(&back);
}

static void fuzz_mutf7_encode(const char *in, size_t n)
{
	struct coffer_buf enc = COFFER_BUF_INIT, dec = COFFER_BUF_INIT;
	size_t i;
	int r;

	r = coffer_mutf7_encode(in, n, &enc);
	if (!valid_utf8((const unsigned char *)in, n)) {
		if (r == 0)
			abort();
		check_refusal(r);
		goto done;
	}
	if (r != 0)
		abort();
	for (i = 0; i < enc.len; i++)
		if (enc.data[i] < 0x20 || enc.data[i] > 0x7e)
			abort();
	if (coffer_mutf7_decode((const char *)enc.data, enc.len, &dec) != 0)
		abort();
	same(&dec, in, n);
done:
	coffer_buf_free(&enc);
	coffer_buf_free(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;

	fuzz_account(in, size);
	fuzz_folder(in, size);
	fuzz_mutf7_encode(in, size);
	return 0;
}
