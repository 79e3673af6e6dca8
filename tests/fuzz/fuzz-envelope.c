/*
 * fuzz-envelope.c: libFuzzer target for the blob reader (engine/envelope.c)
 * and, on the same bytes, the zstd adapter's decompressor (compress.c).
 *
 * Each input is written to a memfd and opened as a blob with fixed ids and
 * the TEST-ONLY account key of tests/golden/envelope (embedded below), then
 * read sequentially, at a few offsets derived from the input, and sized.
 * Seeds in tests/fuzz/corpus/envelope are valid blobs for exactly these ids
 * and key (written by `test-envelope --write-golden`), so mutations get past
 * the header and key unwrap and exercise the chunk scanner and the
 * truncation, trailing-data and authentication checks. The reader must
 * return 0 or a negative code, never crash, hang or leak.
 *
 * Random bytes cannot forge a chunk, so the decompressor never sees hostile
 * data through the reader here; the target also feeds the input straight to
 * coffer_decompress() with a chunk-sized capacity.
 *
 * Build and run (from the source root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *     tests/fuzz/fuzz-envelope.c engine/envelope.c engine/crypto.c \
 *     engine/compress.c engine/io.c engine/errors.c engine/buf.c \
 *     $(pkg-config --cflags --libs libsodium libzstd) -o fuzz-envelope
 *   mkdir -p /tmp/fuzz-corpus && ./fuzz-envelope -max_total_time=60 \
 *     /tmp/fuzz-corpus tests/fuzz/corpus/envelope
 * Add any crash input to tests/fuzz/corpus/envelope as a regression seed.
 */
#include "engine/compress.h"
#include "engine/crypto.h"
#include "engine/envelope.h"
#include "fuzz-util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* TEST-ONLY key: tests/golden/envelope/TEST-ONLY-account-key.txt */
static const unsigned char test_account_id[16] = {
	0xfa, 0x11, 0xec, 0x35, 0x1d, 0x48, 0x9a, 0xc4,
	0xa9, 0x15, 0x4e, 0x91, 0x9e, 0xbf, 0x80, 0x70,
};
static const unsigned char test_pk[32] = {
	0x1f, 0xfe, 0xe1, 0x4b, 0x8b, 0xfc, 0x44, 0x35, 0x96, 0x0a, 0xad,
	0xc4, 0xc8, 0xdb, 0xc4, 0xb3, 0x5f, 0xd1, 0x22, 0xc6, 0xeb, 0xea,
	0x07, 0xa1, 0x5d, 0xd0, 0x27, 0x0d, 0xe2, 0xc9, 0x86, 0x3e,
};
static const unsigned char test_sk[32] = {
	0xca, 0x0a, 0x5e, 0x6b, 0x1c, 0xd4, 0xec, 0xc9, 0xd8, 0xc3, 0x4c,
	0x5b, 0xe9, 0x47, 0x73, 0x76, 0x2d, 0xa5, 0xa2, 0x70, 0x95, 0x73,
	0xf6, 0xdf, 0x2c, 0x5f, 0xc9, 0x70, 0x3a, 0xf8, 0x1d, 0x2e,
};
/* Same as fuzz_blob_id in tests/test-envelope.c. */
static const unsigned char test_blob_id[16] = {
	0xf0, 0x22, 0xf0, 0x22, 0xf0, 0x22, 0xf0, 0x22,
	0xf0, 0x22, 0xf0, 0x22, 0xf0, 0x22, 0xf0, 0x22,
};

static struct coffer_acct_secret *secret;
static int blob_fd = -1;
static unsigned char *buf;

#define BUF_BYTES (3 * COFFER_BLOB_CHUNK)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (coffer_crypto_init() < 0 || coffer_acct_secret_new(test_pk, test_sk, &secret) < 0)
		abort();
	blob_fd = memfd_create("fuzz-blob", MFD_CLOEXEC);
	buf = malloc(BUF_BYTES);
	if (blob_fd < 0 || buf == NULL)
		abort();
	return 0;
}

static void load(const uint8_t *data, size_t size)
{
	size_t done = 0;
	ssize_t w;

	if (ftruncate(blob_fd, 0) != 0)
		abort();
	while (done < size) {
		w = pwrite(blob_fd, data + done, size - done, (off_t)done);
		if (w <= 0)
			abort();
		done += (size_t)w;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coffer_blob_ids ids;
	struct coffer_blob_reader *r = NULL;
	size_t got, total = 0;
	uint64_t blob_size = 0;
	int rc;

	/* 1. the decompressor on raw bytes */
	rc = coffer_decompress(buf, COFFER_BLOB_CHUNK, data, size, &got);
	if (rc == 0 && got > COFFER_BLOB_CHUNK)
		abort();

	/* 2. the bytes as a blob file */
	load(data, size);
	memcpy(ids.account_id, test_account_id, sizeof ids.account_id);
	memcpy(ids.blob_id, test_blob_id, sizeof ids.blob_id);
	ids.kind = COFFER_BLOB_MESSAGE;
	if (coffer_blob_reader_open(blob_fd, &ids, secret, &r) < 0)
		return 0;

	/* sequential, in pieces whose size depends on the input */
	for (;;) {
		size_t step = 1 + (size > 0 ? data[size - 1] : 0) * 613;

		rc = coffer_blob_reader_read(r, buf, step, &got);
		if (rc < 0 || got == 0)
			break;
		if (got > step)
			abort();
		total += got;
	}

	/* random access at offsets taken from the input, and the boundaries */
	{
		uint64_t offs[] = { 0,
			            COFFER_BLOB_CHUNK - 1,
			            COFFER_BLOB_CHUNK,
			            2 * (uint64_t)COFFER_BLOB_CHUNK + 1,
			            total,
			            total + 1,
			            UINT64_MAX,
			            0 };

		if (size >= 8) {
			uint64_t v = 0;

			for (int i = 0; i < 8; i++)
				v = v << 8 | data[i];
			offs[7] = v % (4 * (uint64_t)COFFER_BLOB_CHUNK);
		}
		for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
			rc = coffer_blob_reader_pread(r, buf, BUF_BYTES, offs[i], &got);
			if (rc == 0 && got > BUF_BYTES)
				abort();
		}
	}

	rc = coffer_blob_reader_size(r, &blob_size);
	/* a blob that read to its end must agree with its size */
	if (rc == 0 && blob_size < total)
		abort();
	coffer_blob_reader_free(&r);
	return 0;
}
