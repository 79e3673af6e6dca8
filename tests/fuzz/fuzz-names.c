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
 *        engine/buf.c engine/errors.c tests/fuzz/fuzz-util.c
 */
#include "engine/buf.h"
#include "engine/errors.h"
#include "engine/names.h"
#include "maildir/name.h"
#include "fuzz-util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_account(const char *in, size_t n)
{
	struct coffer_buf out = COFFER_BUF_INIT, again = COFFER_BUF_INIT;
	size_t i;
	int r;

	r = coffer_names_account(in, n, &out);
	if (r != 0) {
		fuzz_check_refusal_empty(r, COFFER_EINVAL, &out);
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
	fuzz_same(&again, out.data, out.len);
done:
	coffer_buf_free(&out);
	coffer_buf_free(&again);
}

static void fuzz_folder(const char *in, size_t n)
{
	struct coffer_buf out = COFFER_BUF_INIT, again = COFFER_BUF_INIT, dir = COFFER_BUF_INIT,
			  back = COFFER_BUF_INIT;
	int r;

	r = coffer_names_folder(in, n, &out);
	if (r != 0) {
		fuzz_check_refusal_empty(r, COFFER_EINVAL, &out);
		goto done;
	}
	/* valid UTF-8 without C0, DEL or C1 controls */
	if (out.len == 0 || out.len != n || strlen((const char *)out.data) != out.len ||
	    memchr(out.data, '.', out.len) != NULL || out.data[0] == '/' ||
	    out.data[out.len - 1] == '/' || strstr((const char *)out.data, "//") != NULL ||
	    !fuzz_utf8_clean(out.data, out.len))
		abort();
	if (coffer_names_folder((const char *)out.data, out.len, &again) != 0)
		abort();
	fuzz_same(&again, out.data, out.len);

	r = coffer_maildir_folder_to_dir(coffer_buf_str(&out), &dir);
	if (r != 0) {
		fuzz_check_refusal(r, COFFER_EINVAL);
		if (!coffer_names_is_inbox(coffer_buf_str(&out)) &&
		    strstr(coffer_errmsg(), "longer than 255 bytes") == NULL)
			abort();
		goto done;
	}
	if (dir.len > 255 || dir.data[0] != '.')
		abort();
	if (coffer_maildir_dir_to_folder((const char *)dir.data, dir.len, &back) != 0)
		abort();
	fuzz_same(&back, out.data, out.len);
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
	if (!fuzz_utf8_valid(in, n)) {
		if (r == 0)
			abort();
		fuzz_check_refusal(r, COFFER_EINVAL);
		goto done;
	}
	if (r != 0)
		abort();
	for (i = 0; i < enc.len; i++)
		if (enc.data[i] < 0x20 || enc.data[i] > 0x7e)
			abort();
	if (coffer_mutf7_decode((const char *)enc.data, enc.len, &dec) != 0)
		abort();
	fuzz_same(&dec, in, n);
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
