/*
 * fuzz-maildir-name.c: libFuzzer target for maildir/name.c.
 *
 * The first byte picks a parser, the rest is its input:
 *   0: Maildir file names. Whatever parses formats to a canonical name that is
 *      no longer than the input and parses back to the same fields; formatting
 *      that again is a fixed point.
 *   1: modified UTF-7 decoding. Decoding is strict, so whatever decodes
 *      re-encodes to exactly the input.
 *   2: Maildir++ directory names. Whatever maps to a folder maps back to
 *      exactly the input directory name.
 * Refusals must come with COFFER_EINVAL and a detail free of control bytes.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *        tests/fuzz/fuzz-maildir-name.c maildir/name.c engine/names.c \
 *        engine/buf.c engine/errors.c tests/fuzz/fuzz-util.c
 */
#include "engine/buf.h"
#include "engine/errors.h"
#include "maildir/name.h"
#include "fuzz-util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_file_name(const char *in, size_t n)
{
	struct coffer_buf canon = COFFER_BUF_INIT, again = COFFER_BUF_INIT;
	struct coffer_maildir_name m, m2;
	int r;

	r = coffer_maildir_name_parse(in, n, &m);
	if (r != 0) {
		fuzz_check_refusal(r, COFFER_EINVAL);
		return;
	}
	if (m.unique_len == 0 || m.unique_len > n || (m.has_info && m.unique_len + 3 > n))
		abort();
	if (coffer_maildir_name_format(&canon, in, m.unique_len, m.has_info, m.flags, m.keywords) !=
	    0)
		abort();
	if (canon.len > n || memcmp(canon.data, in, m.unique_len) != 0)
		abort();
	if (coffer_maildir_name_parse((const char *)canon.data, canon.len, &m2) != 0)
		abort();
	if (m2.unique_len != m.unique_len || m2.has_info != m.has_info || m2.flags != m.flags ||
	    m2.keywords != m.keywords || m2.has_size != m.has_size || m2.size != m.size)
		abort();
	if (coffer_maildir_name_format(&again, (const char *)canon.data, m2.unique_len, m2.has_info,
	                               m2.flags, m2.keywords) != 0)
		abort();
	fuzz_same(&again, canon.data, canon.len);
	coffer_buf_free(&canon);
	coffer_buf_free(&again);
}

static void fuzz_mutf7(const char *in, size_t n)
{
	struct coffer_buf dec = COFFER_BUF_INIT, enc = COFFER_BUF_INIT;
	int r;

	r = coffer_mutf7_decode(in, n, &dec);
	if (r != 0) {
		fuzz_check_refusal_empty(r, COFFER_EINVAL, &dec);
		goto out;
	}
	if (coffer_mutf7_encode((const char *)dec.data, dec.len, &enc) != 0)
		abort();
	fuzz_same(&enc, in, n);
out:
	coffer_buf_free(&dec);
	coffer_buf_free(&enc);
}

static void fuzz_dir(const char *in, size_t n)
{
	struct coffer_buf folder = COFFER_BUF_INIT, dir = COFFER_BUF_INIT;
	int r;

	r = coffer_maildir_dir_to_folder(in, n, &folder);
	if (r != 0) {
		fuzz_check_refusal_empty(r, COFFER_EINVAL, &folder);
		goto out;
	}
	if (coffer_maildir_folder_to_dir(coffer_buf_str(&folder), &dir) != 0)
		abort();
	fuzz_same(&dir, in, n);
out:
	coffer_buf_free(&folder);
	coffer_buf_free(&dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + 1;

	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0: fuzz_file_name(in, size - 1); break;
	case 1: fuzz_mutf7(in, size - 1); break;
	case 2: fuzz_dir(in, size - 1); break;
	}
	return 0;
}
