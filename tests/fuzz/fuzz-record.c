/*
 * fuzz-record.c: libFuzzer target for the index record decoders
 * (engine/record.c): every input is given to each of coffer_account_rec_
 * decode, coffer_folder_rec_decode, coffer_message_rec_decode and
 * coffer_blob_rec_decode. A damaged or hostile index hands them arbitrary
 * bytes; `coffer verify` relies on them to say COFFER_ECORRUPT, not crash.
 *
 * Invariants checked on every input, for every decoder:
 *   - the result is 0 or COFFER_ECORRUPT, never anything else;
 *   - a box pointer returned points inside the input, with its length, and
 *     a zero length comes with a NULL pointer;
 *   - a record that decodes re-encodes to exactly the input bytes (records
 *     have one encoding: the decoders ignore nothing, trailing bytes
 *     included), and the decoded enums and bit sets are in range.
 *
 * Seeds in tests/fuzz/corpus/record are records written by the encoders
 * (valid ones of each kind, with and without boxes) and a few damaged ones.
 *
 * Build and run (from the source root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *     tests/fuzz/fuzz-record.c tests/fuzz/fuzz-util.c engine/record.c \
 *     engine/buf.c engine/errors.c -o fuzz-record
 *   cp -r tests/fuzz/corpus/record /tmp/rc && ./fuzz-record /tmp/rc
 */
#include "engine/buf.h"
#include "engine/errors.h"
#include "engine/record.h"
#include "fuzz-util.h"

#include <stdint.h>
#include <stdlib.h>

static void check_rc(int rc)
{
	if (rc != 0 && rc != COFFER_ECORRUPT)
		abort();
}

static void check_box(const uint8_t *data, size_t size, const unsigned char *box, size_t len)
{
	if (len == 0) {
		if (box != NULL)
			abort();
		return;
	}
	if (box == NULL || box < data || len > size || box > data + size - len)
		abort();
}

/* rc is the re-encoding's result, b the encoding: it must be the input. */
static void check_same(const struct coffer_buf *b, const uint8_t *data, size_t size, int rc)
{
	if (rc != 0)
		abort();
	fuzz_same(b, data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coffer_account_rec a;
	struct coffer_folder_rec f;
	struct coffer_message_rec m;
	struct coffer_blob_rec b;
	struct coffer_buf out = COFFER_BUF_INIT;
	int rc;

	rc = coffer_account_rec_decode(data, size, &a);
	check_rc(rc);
	if (rc == 0) {
		check_box(data, size, a.name_box, a.name_box_len);
		if (a.state < COFFER_ACCOUNT_ACTIVE || a.state > COFFER_ACCOUNT_SHREDDED)
			abort();
		coffer_buf_reset(&out);
		check_same(&out, data, size, coffer_account_rec_encode(&a, &out));
	}

	rc = coffer_folder_rec_decode(data, size, &f);
	check_rc(rc);
	if (rc == 0) {
		check_box(data, size, f.name_box, f.name_box_len);
		coffer_buf_reset(&out);
		check_same(&out, data, size, coffer_folder_rec_encode(&f, &out));
	}

	rc = coffer_message_rec_decode(data, size, &m);
	check_rc(rc);
	if (rc == 0) {
		check_box(data, size, m.name_box, m.name_box_len);
		if (m.is_new > 1 || m.flags > 0x3f || m.keywords >= (1u << 26))
			abort();
		coffer_buf_reset(&out);
		check_same(&out, data, size, coffer_message_rec_encode(&m, &out));
	}

	rc = coffer_blob_rec_decode(data, size, &b);
	check_rc(rc);
	if (rc == 0) {
		coffer_buf_reset(&out);
		check_same(&out, data, size, coffer_blob_rec_encode(&b, &out));
	}

	coffer_buf_free(&out);
	return 0;
}
