/*
 * test-compress.c: the zstd adapter (engine/compress.c).
 *
 * Hostile frames are built by hand from the zstd frame format (RFC 8878), so
 * this test does not include <zstd.h> either: magic FD2FB528 (LE), frame
 * header descriptor, optional window descriptor and content size, then blocks
 * with a 3-byte header (last flag, type 0 raw / 1 RLE, size).
 */
#include "engine/compress.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "tests/tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 65536u

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill_random(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)rng();
}

static void fill_text(unsigned char *p, size_t n)
{
	static const char *words[] = { "Received: ", "from ",     "mail.example.org ",
		                       "by ",        "mx1 ",      "with ",
		                       "ESMTPS ",    "id ",       "4Xyz ",
		                       "\r\n",       "Subject: ", "quarterly ",
		                       "report ",    "the ",      "and " };
	size_t i = 0;

	while (i < n) {
		const char *w = words[rng() % (sizeof words / sizeof *words)];

		for (size_t k = 0; w[k] != '\0' && i < n; k++)
			p[i++] = (unsigned char)w[k];
	}
}

static size_t put_magic(unsigned char *p)
{
	p[0] = 0x28;
	p[1] = 0xb5;
	p[2] = 0x2f;
	p[3] = 0xfd;
	return 4;
}

static size_t put_block_header(unsigned char *p, int last, int type, uint32_t size)
{
	uint32_t v = (uint32_t)(last ? 1 : 0) | (uint32_t)type << 1 | size << 3;

	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	return 3;
}

static void test_roundtrips(void)
{
	static const size_t sizes[] = { 0, 1, 100, 4096, CHUNK - 1, CHUNK, 3 * CHUNK + 7 };
	size_t max = 3 * CHUNK + 7;
	unsigned char *src = malloc(max), *dst = malloc(coffer_compress_bound(max)),
		      *back = malloc(max);
	size_t clen, dlen;
	int good;

	ok(coffer_compress_bound(0) > 0, "bound of 0 bytes is positive");
	ok(coffer_compress_bound(CHUNK) >= CHUNK, "bound of a chunk covers the chunk");
	for (int text = 0; text <= 1; text++) {
		good = 1;
		for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
			size_t n = sizes[k];

			(text ? fill_text : fill_random)(src, n);
			good &= coffer_compress(dst, coffer_compress_bound(n), src, n, 0, &clen) ==
			        0;
			good &= clen <= coffer_compress_bound(n);
			good &= coffer_decompress(back, n, dst, clen, &dlen) == 0;
			good &= dlen == n && memcmp(back, src, n) == 0;
			if (text && n >= 4096)
				good &= clen < n / 2;
		}
		ok(good, "%s round trips at sizes 0..3*CHUNK+7%s", text ? "text" : "random",
		   text ? ", text at least halves" : "");
	}
	fill_text(src, CHUNK);
	good = 1;
	for (int level = -5; level <= 19; level += 3) {
		good &= coffer_compress(dst, coffer_compress_bound(CHUNK), src, CHUNK, level,
		                        &clen) == 0;
		good &= coffer_decompress(back, CHUNK, dst, clen, &dlen) == 0 && dlen == CHUNK &&
		        memcmp(back, src, CHUNK) == 0;
	}
	ok(good, "levels -5..19 round trip");
	ok(coffer_compress(dst, coffer_compress_bound(CHUNK), src, CHUNK, 1000, &clen) ==
	       COFFER_EINVAL,
	   "level 1000 refused");
	ok(coffer_compress_check_level(0) == 0 && coffer_compress_check_level(3) == 0 &&
	       coffer_compress_check_level(-1000000000) == COFFER_EINVAL,
	   "check_level");

	/* capacity: too small is ELIMIT, never an overflow */
	fill_random(src, CHUNK);
	memset(dst, 0xee, coffer_compress_bound(CHUNK));
	ok(coffer_compress(dst, CHUNK - 1, src, CHUNK, 0, &clen) == COFFER_ELIMIT,
	   "random chunk does not fit in CHUNK - 1 bytes: ELIMIT");
	ok(dst[CHUNK - 1] == 0xee, "nothing written past the capacity");
	ok(coffer_compress(dst, 0, src, 10, 0, &clen) == COFFER_ELIMIT, "capacity 0: ELIMIT");

	/* output larger than the decompression capacity */
	fill_text(src, CHUNK);
	coffer_compress(dst, coffer_compress_bound(CHUNK), src, CHUNK, 0, &clen);
	memset(back, 0xcd, max);
	ok(coffer_decompress(back, CHUNK - 1, dst, clen, &dlen) == COFFER_ECORRUPT,
	   "frame of CHUNK bytes into CHUNK - 1: ECORRUPT");
	ok(back[CHUNK - 1] == 0xcd, "nothing written past the capacity");
	ok(coffer_decompress(back, CHUNK, dst, clen, &dlen) == 0 && dlen == CHUNK,
	   "exact capacity suffices");

	/* trailing bytes and concatenated frames */
	{
		unsigned char *two = malloc(2 * clen + 1);

		memcpy(two, dst, clen);
		two[clen] = 0;
		ok(coffer_decompress(back, max, two, clen + 1, &dlen) == COFFER_ECORRUPT,
		   "a byte after the frame: ECORRUPT");
		memcpy(two + clen, dst, clen);
		ok(coffer_decompress(back, max, two, 2 * clen, &dlen) == COFFER_ECORRUPT,
		   "two concatenated frames: ECORRUPT");
		free(two);
	}
	good = 1;
	for (size_t cut = 0; cut < clen; cut++)
		good &= coffer_decompress(back, max, dst, cut, &dlen) == COFFER_ECORRUPT;
	ok(good, "every truncation of a frame: ECORRUPT");

	free(src);
	free(dst);
	free(back);
}

static void test_contexts(void)
{
	struct coffer_zstd *z = NULL;
	unsigned char src[CHUNK], dst[CHUNK + 1024], back[CHUNK];
	size_t clen, dlen;
	int good = 1;

	ok(coffer_zstd_new(&z) == 0 && z != NULL, "zstd context");
	for (int i = 0; i < 20; i++) {
		size_t n = (size_t)(rng() % CHUNK);

		(i % 2 ? fill_text : fill_random)(src, n);
		good &= coffer_zstd_compress(z, dst, sizeof dst, src, n, 0, &clen) == 0;
		good &= coffer_zstd_decompress(z, back, sizeof back, dst, clen, &dlen) == 0;
		good &= dlen == n && memcmp(src, back, n) == 0;
	}
	ok(good, "one context compresses and decompresses 20 chunks");
	coffer_zstd_free(&z);
	ok(z == NULL, "zstd_free clears the pointer");
	coffer_zstd_free(&z);
	coffer_zstd_free(NULL);
	ok(1, "zstd_free accepts NULL");
}

static void test_hostile_frames(void)
{
	unsigned char f[256], out[CHUNK + 64];
	size_t n, dlen;
	int good;

	ok(coffer_decompress(out, CHUNK, "", 0, &dlen) == COFFER_ECORRUPT, "empty input");
	ok(coffer_decompress(out, CHUNK, "\x28\xb5\x2f", 3, &dlen) == COFFER_ECORRUPT,
	   "three bytes");
	ok(coffer_decompress(out, CHUNK, "hello, world", 12, &dlen) == COFFER_ECORRUPT,
	   "text is not a frame");

	/* a valid hand-made frame: unknown content size, window 128 KiB, one RLE
	 * block of 1000 'A' */
	n = put_magic(f);
	f[n++] = 0x00;   /* FHD: no content size, no single segment */
	f[n++] = 7 << 3; /* window descriptor: 2^(10+7) */
	n += put_block_header(f + n, 1, 1, 1000);
	f[n++] = 'A';
	good = coffer_decompress(out, CHUNK, f, n, &dlen) == 0 && dlen == 1000;
	for (size_t i = 0; good && i < 1000; i++)
		good = out[i] == 'A';
	ok(good, "hand-made RLE frame without content size decompresses");
	ok(coffer_decompress(out, 999, f, n, &dlen) == COFFER_ECORRUPT,
	   "same frame into 999 bytes: ECORRUPT");

	/* expansion bomb: unknown content size, 40 RLE blocks of 128 KiB (5 MiB) */
	n = put_magic(f);
	f[n++] = 0x00;
	f[n++] = 7 << 3;
	for (int b = 0; b < 40; b++) {
		n += put_block_header(f + n, b == 39, 1, 128 * 1024);
		f[n++] = 'B';
	}
	memset(out, 0x5a, sizeof out);
	ok(coffer_decompress(out, CHUNK, f, n, &dlen) == COFFER_ECORRUPT,
	   "5 MiB RLE bomb in %zu bytes into CHUNK: ECORRUPT", n);
	good = 1;
	for (size_t i = CHUNK; i < sizeof out; i++)
		good &= out[i] == 0x5a;
	ok(good, "bomb wrote nothing past the capacity");

	/* declared content size of 1 GiB */
	n = put_magic(f);
	f[n++] = 0xa0; /* FCS field 4 bytes, single segment */
	f[n++] = 0x00;
	f[n++] = 0x00;
	f[n++] = 0x00;
	f[n++] = 0x40;
	n += put_block_header(f + n, 1, 1, 10);
	f[n++] = 'C';
	ok(coffer_decompress(out, CHUNK, f, n, &dlen) == COFFER_ECORRUPT,
	   "frame declaring 1 GiB: ECORRUPT");

	/* declared size disagrees with the blocks */
	n = put_magic(f);
	f[n++] = 0x20; /* single segment, FCS 1 byte */
	f[n++] = 20;
	n += put_block_header(f + n, 1, 1, 10);
	f[n++] = 'D';
	ok(coffer_decompress(out, CHUNK, f, n, &dlen) == COFFER_ECORRUPT,
	   "content size mismatch: ECORRUPT");

	/* skippable frame and a legacy (v0.7) magic */
	memcpy(f, "\x50\x2a\x4d\x18\x04\x00\x00\x00xxxx", 12);
	ok(coffer_decompress(out, CHUNK, f, 12, &dlen) == COFFER_ECORRUPT,
	   "skippable frame: ECORRUPT");
	memcpy(f, "\x27\xb5\x2f\xfd\x00\x00\x00\x00", 8);
	ok(coffer_decompress(out, CHUNK, f, 8, &dlen) == COFFER_ECORRUPT, "legacy magic: ECORRUPT");

	/* a frame that needs a dictionary */
	n = put_magic(f);
	f[n++] = 0x21; /* single segment, dict id 1 byte, FCS 1 byte */
	f[n++] = 7;    /* dict id */
	f[n++] = 5;    /* content size */
	n += put_block_header(f + n, 1, 1, 5);
	f[n++] = 'E';
	ok(coffer_decompress(out, CHUNK, f, n, &dlen) == COFFER_ECORRUPT,
	   "frame that needs a dictionary: ECORRUPT");
}

/* Random damage to real frames must be refused or decode within capacity. */
static void test_mutations(void)
{
	unsigned char src[8192], frame[9000], mutated[9000], out[8192 + 64];
	size_t clen, dlen;
	int in_bounds = 1, sane = 1;

	fill_text(src, sizeof src);
	coffer_compress(frame, sizeof frame, src, sizeof src, 0, &clen);
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = clen;
		int rc;

		memcpy(mutated, frame, clen);
		for (int k = 0; k < 1 + (int)(rng() % 4); k++)
			mutated[rng() % clen] ^= (unsigned char)(1u << (rng() % 8));
		if (iter % 5 == 0)
			len = (size_t)(rng() % clen);
		memset(out, 0x77, sizeof out);
		rc = coffer_decompress(out, 8192, mutated, len, &dlen);
		sane &= rc == 0 ? dlen <= 8192 : rc == COFFER_ECORRUPT;
		for (size_t i = 8192; i < sizeof out; i++)
			in_bounds &= out[i] == 0x77;
	}
	ok(sane, "3000 damaged frames: refused with ECORRUPT or within capacity");
	ok(in_bounds, "no damaged frame wrote past the capacity");
}

int main(void)
{
	if (coffer_crypto_init() < 0)
		return 99;
	test_roundtrips();
	test_contexts();
	test_hostile_frames();
	test_mutations();
	return tap_done();
}
