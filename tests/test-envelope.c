/*
 * test-envelope.c: blob format v1 (engine/envelope.c).
 *
 * Sections: round trips (sizes, wraps, levels, piece sizes); random access and
 * the chunk cache; damage (every flipped byte, every truncation, trailing
 * data, reordered chunks); wrong ids and keys; chunks forged with the right
 * key but against the rules (this file encodes blobs itself from
 * docs/format.md, so it also checks the implementation against the
 * document); streaming memory bound; I/O errors; golden vectors.
 *
 * Golden vectors live in tests/golden/envelope (found through
 * $COFFER_SOURCE_ROOT, or relative to the working directory). This test only
 * reads them. To regenerate them after a deliberate format change (new
 * version number!), run
 *   test-envelope --write-golden tests/golden/envelope tests/fuzz/corpus/envelope
 * which keeps the TEST-ONLY account key if present (fuzz-envelope.c embeds
 * it), writes fresh vectors and the fuzz seed blobs.
 */
#include "engine/buf.h"
#include "engine/compress.h"
#include "engine/crypto.h"
#include "engine/envelope.h"
#include "engine/errors.h"
#include "engine/io.h"
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK ((size_t)COFFER_BLOB_CHUNK)
#define MiB (1024u * 1024u)

/* ---- helpers ---- */

static uint64_t rng_state = 88172645463325252ull;

static void rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

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
		p[i] = (unsigned char)(rng() >> 24);
}

static void fill_text(unsigned char *p, size_t n)
{
	static const char *words[] = { "Received: ",
		                       "from ",
		                       "mail.example.org ",
		                       "by ",
		                       "mx1.example.net ",
		                       "with ",
		                       "ESMTPS ",
		                       "id ",
		                       "4Xyz9 ",
		                       "\r\n",
		                       "Subject: ",
		                       "quarterly ",
		                       "report ",
		                       "the ",
		                       "and ",
		                       "meeting ",
		                       "tomorrow ",
		                       "at ",
		                       "noon. " };
	size_t i = 0;

	while (i < n) {
		const char *w = words[rng() % (sizeof words / sizeof *words)];

		for (size_t k = 0; w[k] != '\0' && i < n; k++)
			p[i++] = (unsigned char)w[k];
	}
}

/* Text in chunk 0 and 2, random in chunk 1 and past chunk 2: raw and zstd
 * chunks in one blob. */
static void fill_mixed(unsigned char *p, size_t n)
{
	for (size_t at = 0; at < n; at += CHUNK) {
		size_t len = n - at < CHUNK ? n - at : CHUNK;
		size_t c = at / CHUNK;

		(c == 0 || c == 2 ? fill_text : fill_random)(p + at, len);
	}
}

static void put_u32le(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static uint32_t get_u32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u64le(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

/* dir/name in b (reset first); exits on allocation failure. */
static const char *path_join(struct coffer_buf *b, const char *dir, const char *name)
{
	coffer_buf_reset(b);
	coffer_buf_printf(b, "%s/%s", dir, name);
	if (coffer_buf_ok(b) != 0)
		exit(99);
	return coffer_buf_str(b);
}

/* name.ext in b (reset first). */
static const char *name_ext(struct coffer_buf *b, const char *name, const char *ext)
{
	coffer_buf_reset(b);
	coffer_buf_printf(b, "%s.%s", name, ext);
	if (coffer_buf_ok(b) != 0)
		exit(99);
	return coffer_buf_str(b);
}

static int new_account(struct coffer_acct_secret **s_r)
{
	unsigned char pk[COFFER_PK_BYTES];
	unsigned char *sk = coffer_secure_alloc(COFFER_SK_BYTES);
	int rc;

	if (sk == NULL)
		return COFFER_ENOMEM;
	rc = coffer_crypto_keypair(pk, sk);
	if (rc == 0)
		rc = coffer_acct_secret_new(pk, sk, s_r);
	coffer_secure_free(sk);
	return rc;
}

static void new_ids(struct coffer_blob_ids *ids, uint8_t kind)
{
	coffer_random(ids->account_id, COFFER_ID_BYTES);
	coffer_random(ids->blob_id, COFFER_ID_BYTES);
	ids->kind = kind;
}

static int mem_fd(void)
{
	int fd = memfd_create("coffer-test-blob", MFD_CLOEXEC);

	if (fd < 0) {
		perror("memfd_create");
		exit(99);
	}
	return fd;
}

static void set_image(int fd, const unsigned char *p, size_t n)
{
	if (ftruncate(fd, 0) != 0 || (n > 0 && coffer_io_pwrite_all(fd, p, n, 0) != 0)) {
		perror("set_image");
		exit(99);
	}
}

static void get_image(int fd, struct coffer_buf *img)
{
	struct stat st;
	size_t got;

	coffer_buf_reset(img);
	if (fstat(fd, &st) != 0 || coffer_buf_reserve(img, (size_t)st.st_size) != 0 ||
	    coffer_io_pread_full(fd, img->data, (size_t)st.st_size, 0, &got) != 0) {
		perror("get_image");
		exit(99);
	}
	img->len = got;
}

static uint64_t file_size(int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return 0;
	return (uint64_t)st.st_size;
}

/* Key wraps, as write_blob()'s sym: 0 sealed (type 1), 1 symmetric (type 2),
 * 2 by a sealer (type 3). */
#define WRAPS 3
static const char *const wrap_names[WRAPS] = { "sealed", "sym", "shared" };
static const uint8_t wrap_types[WRAPS] = { 1, 2, 3 };

/* Writes data as a blob on fd (truncated first) in pieces of piece bytes. */
static int write_blob(int fd, const struct coffer_blob_ids *ids, const struct coffer_acct_secret *s,
                      int sym, int level, const unsigned char *data, size_t n, size_t piece,
                      uint64_t *stored_r)
{
	struct coffer_blob_writer *w = NULL;
	struct coffer_sealer *sealer = NULL;
	uint64_t plain = 0, stored = 0;
	int rc;

	if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
		return -errno;
	if (sym == 2) {
		rc = coffer_sealer_new(s->pk, &sealer);
		if (rc == 0)
			rc = coffer_blob_writer_new_sealed(fd, ids, sealer, level, &w);
		coffer_sealer_free(&sealer);
	} else {
		rc = coffer_blob_writer_new(fd, ids, s->pk, sym ? s : NULL, level, &w);
	}
	for (size_t at = 0; rc == 0 && at < n; at += piece)
		rc = coffer_blob_writer_write(w, data + at, n - at < piece ? n - at : piece);
	if (rc == 0)
		rc = coffer_blob_writer_finish(w, &plain, &stored);
	coffer_blob_writer_free(&w);
	if (rc == 0 && plain != n)
		rc = COFFER_EINVAL;
	if (stored_r)
		*stored_r = stored;
	return rc;
}

/*
 * Opens the blob on fd, reads it to the end in pieces of step bytes, then asks
 * its size. Returns 0 or the first error. *prefix_ok_r is 0 if any byte
 * returned differs from expect, or (on success) if the total or size is not n.
 */
static int read_all(int fd, const struct coffer_blob_ids *ids, const struct coffer_acct_secret *s,
                    const unsigned char *expect, size_t n, size_t step, int *prefix_ok_r)
{
	struct coffer_blob_reader *r = NULL;
	unsigned char *buf = malloc(step);
	size_t total = 0, got;
	uint64_t size = 0;
	int rc, prefix_ok = 1;

	rc = coffer_blob_reader_open(fd, ids, s, &r);
	while (rc == 0) {
		rc = coffer_blob_reader_read(r, buf, step, &got);
		if (rc < 0 || got == 0)
			break;
		if (total + got > n || memcmp(buf, expect + total, got) != 0)
			prefix_ok = 0;
		total += got;
	}
	if (rc == 0)
		rc = coffer_blob_reader_size(r, &size);
	if (rc == 0 && (total != n || size != n))
		prefix_ok = 0;
	coffer_blob_reader_free(&r);
	free(buf);
	if (prefix_ok_r)
		*prefix_ok_r = prefix_ok;
	return rc;
}

/* 1 if the image is refused with ECORRUPT and nothing wrong was returned. */
static int refused(int fd, const unsigned char *img, size_t len, const struct coffer_blob_ids *ids,
                   const struct coffer_acct_secret *s, const unsigned char *expect, size_t n)
{
	int prefix_ok, rc;

	set_image(fd, img, len);
	rc = read_all(fd, ids, s, expect, n, 50000, &prefix_ok);
	return rc == COFFER_ECORRUPT && prefix_ok;
}

/* The test's own walk of the layout in docs/format.md. */
struct layout {
	size_t header_len;
	size_t nchunks;
	size_t offs[4096]; /* offset of each chunk's length prefix */
	size_t end;
};

static int parse_layout(const unsigned char *img, size_t len, struct layout *l)
{
	size_t at;

	if (len < 30 || memcmp(img, "CFBL", 4) != 0)
		return -1;
	l->header_len = 30 + ((size_t)img[28] | (size_t)img[29] << 8);
	l->nchunks = 0;
	for (at = l->header_len; at + 4 <= len && l->nchunks < 4096; l->nchunks++) {
		l->offs[l->nchunks] = at;
		at += 4 + get_u32le(img + at);
	}
	l->end = at;
	return at == len ? 0 : -1;
}

/* ---- 1. round trips ---- */

static struct coffer_acct_secret *account, *other_acct;

static void test_roundtrips(void)
{
	static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 3 * 65536 };
	static const size_t pieces[] = { 1000, 65536, 7, 100000 };
	size_t max = 3 * CHUNK;
	unsigned char *data = malloc(max);
	struct coffer_buf img = COFFER_BUF_INIT;
	struct coffer_blob_ids ids;
	struct layout *l = malloc(sizeof *l);
	int fd = mem_fd();

	for (int sym = 0; sym < WRAPS; sym++) {
		for (int text = 0; text <= 1; text++) {
			for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
				size_t n = sizes[k], piece = pieces[k % 4];
				size_t want_chunks = n == 0 ? 1 : (n + CHUNK - 1) / CHUNK;
				uint64_t stored = 0;
				int prefix_ok = 0, rc;

				if (n == 1 || n == 0)
					piece = 1;
				new_ids(&ids, k % 2 ? COFFER_BLOB_CONTROL : COFFER_BLOB_MESSAGE);
				(text ? fill_text : fill_random)(data, n);
				rc = write_blob(fd, &ids, account, sym, 0, data, n, piece, &stored);
				ok(rc == 0 && stored == file_size(fd),
				   "%s %s %zu bytes: written, stored size %llu is the file size",
				   wrap_names[sym], text ? "text" : "random", n,
				   (unsigned long long)stored);
				get_image(fd, &img);
				/* before ok(): its arguments are evaluated in any order */
				rc = parse_layout(img.data, img.len, l);
				ok(rc == 0 && l->header_len == (sym == 1 ? 102u : 110u) &&
				       l->nchunks == want_chunks && img.data[4] == 1 &&
				       img.data[5] == ids.kind && img.data[6] == wrap_types[sym],
				   "  layout: header %zu bytes, %zu chunk(s)", l->header_len,
				   want_chunks);
				rc = read_all(fd, &ids, account, data, n, 4099, &prefix_ok);
				ok(rc == 0 && prefix_ok, "  reads back, size %zu", n);
			}
		}
	}

	/* Two blobs of the same plaintext share nothing. */
	{
		struct coffer_buf img2 = COFFER_BUF_INIT;

		fill_text(data, 1000);
		new_ids(&ids, COFFER_BLOB_MESSAGE);
		write_blob(fd, &ids, account, 1, 0, data, 1000, 1000, NULL);
		get_image(fd, &img);
		write_blob(fd, &ids, account, 1, 0, data, 1000, 1000, NULL);
		get_image(fd, &img2);
		ok(img.len > 40 && memcmp(img.data + 12, img2.data + 12, 16) != 0 &&
		       memcmp(img.data + img.len - 40, img2.data + img2.len - 40, 40) != 0,
		   "same plaintext twice: different nonce prefixes and ciphertexts");
		coffer_buf_free(&img2);
	}

	/* Compression levels and the raw/zstd choice. */
	{
		uint64_t s3 = 0, s19 = 0, sneg = 0;
		int p1 = 0, p2 = 0, p3 = 0;

		fill_text(data, 2 * CHUNK);
		new_ids(&ids, COFFER_BLOB_MESSAGE);
		ok(write_blob(fd, &ids, account, 1, 19, data, 2 * CHUNK, CHUNK, &s19) == 0 &&
		       read_all(fd, &ids, account, data, 2 * CHUNK, CHUNK, &p1) == 0 && p1,
		   "level 19 round trip");
		ok(write_blob(fd, &ids, account, 1, -3, data, 2 * CHUNK, CHUNK, &sneg) == 0 &&
		       read_all(fd, &ids, account, data, 2 * CHUNK, CHUNK, &p2) == 0 && p2,
		   "level -3 round trip");
		ok(write_blob(fd, &ids, account, 1, 0, data, 2 * CHUNK, CHUNK, &s3) == 0 &&
		       read_all(fd, &ids, account, data, 2 * CHUNK, CHUNK, &p3) == 0 && p3,
		   "default level round trip");
		ok(s3 < CHUNK && s19 <= s3,
		   "text compresses (%llu bytes for 128 KiB; level 19 %llu)",
		   (unsigned long long)s3, (unsigned long long)s19);
		fill_random(data, 2 * CHUNK);
		ok(write_blob(fd, &ids, account, 1, 0, data, 2 * CHUNK, CHUNK, &s3) == 0 &&
		       s3 == 102 + 2 * (4 + 1 + CHUNK + 16),
		   "random data is kept raw: exactly header + 2 * (4 + 1 + CHUNK + 16) bytes");
	}

	free(l);
	free(data);
	coffer_buf_free(&img);
	close(fd);
}

static void test_big_messages(void)
{
	size_t n = 5 * MiB;
	unsigned char *data = malloc(n);
	struct coffer_blob_ids ids;
	uint64_t stored = 0;
	int fd = mem_fd(), prefix_ok = 0;

	fill_random(data, n);
	new_ids(&ids, COFFER_BLOB_MESSAGE);
	ok(write_blob(fd, &ids, account, 0, 0, data, n, 131072, &stored) == 0,
	   "5 MiB random, sealed wrap: written");
	ok(stored == 110 + 80 * (4 + 1 + CHUNK + 16), "  stored raw: %llu bytes",
	   (unsigned long long)stored);
	ok(read_all(fd, &ids, account, data, n, 131072, &prefix_ok) == 0 && prefix_ok,
	   "  reads back");
	fill_text(data, n);
	new_ids(&ids, COFFER_BLOB_MESSAGE);
	ok(write_blob(fd, &ids, account, 1, 0, data, n, 3000, &stored) == 0,
	   "5 MiB text, sym wrap: written");
	ok(stored < n / 3, "  compressed to %llu bytes", (unsigned long long)stored);
	ok(read_all(fd, &ids, account, data, n, 65536, &prefix_ok) == 0 && prefix_ok,
	   "  reads back");
	free(data);
	close(fd);
}

/* ---- 2. random access and the cache ---- */

static int pread_matches(struct coffer_blob_reader *r, const unsigned char *data, size_t n,
                         uint64_t off, size_t cap)
{
	unsigned char *buf = malloc(cap ? cap : 1);
	size_t got = 12345, want = off < n ? (n - off < cap ? n - off : cap) : 0;
	int rc, good;

	rc = coffer_blob_reader_pread(r, buf, cap, off, &got);
	good = rc == 0 && got == want && (want == 0 || memcmp(buf, data + off, want) == 0);
	if (!good)
		tap_diag("pread off %llu cap %zu: rc %d got %zu want %zu (%s)",
		         (unsigned long long)off, cap, rc, got, want, coffer_errmsg());
	free(buf);
	return good;
}

static unsigned pread_calls;
static ssize_t counting_pread(int fd, void *p, size_t n, off_t off)
{
	pread_calls++;
	return pread(fd, p, n, off);
}

static void test_pread(void)
{
	size_t n = 3 * CHUNK + 1234;
	unsigned char *data = malloc(n);
	struct coffer_blob_reader *r = NULL;
	struct coffer_blob_ids ids;
	static const size_t caps[] = { 0, 1, 7, 65535, 65536, 65537, 2 * 65536 + 3, 300000 };
	uint64_t bounds[] = { 0, CHUNK, 2 * CHUNK, 3 * CHUNK, n };
	uint64_t far[] = { n + 1, n + CHUNK, 10 * CHUNK, UINT64_MAX - 5, UINT64_MAX };
	int fd = mem_fd(), good;
	size_t got;

	fill_mixed(data, n);
	new_ids(&ids, COFFER_BLOB_MESSAGE);
	ok(write_blob(fd, &ids, account, 1, 0, data, n, 5000, NULL) == 0, "mixed blob written");

	/* past the end first, on a fresh reader (size not yet known) */
	ok(coffer_blob_reader_open(fd, &ids, account, &r) == 0 &&
	       pread_matches(r, data, n, n + 5, 10),
	   "pread past the end on a fresh reader: 0 bytes");
	coffer_blob_reader_free(&r);
	ok(r == NULL, "reader_free clears the pointer");
	coffer_blob_reader_free(&r);
	coffer_blob_reader_free(NULL);

	ok(coffer_blob_reader_open(fd, &ids, account, &r) == 0, "reader open");
	good = 1;
	for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++)
		for (int d = -2; d <= 2; d++)
			for (size_t c = 0; c < sizeof caps / sizeof *caps; c++)
				if ((int64_t)bounds[b] + d >= 0)
					good &= pread_matches(r, data, n, bounds[b] + d, caps[c]);
	ok(good, "pread at chunk boundaries +-2, caps 0..300000");
	good = 1;
	for (size_t f = 0; f < sizeof far / sizeof *far; f++)
		good &= pread_matches(r, data, n, far[f], 100);
	ok(good, "pread past the end, up to UINT64_MAX: 0 bytes");
	good = 1;
	for (int i = 0; i < 300; i++)
		good &= pread_matches(r, data, n, rng() % (n + 100), (size_t)(rng() % 140000));
	ok(good, "300 random preads");

	/* sequential reads are independent of pread */
	{
		unsigned char a[1000], b[1000];
		size_t ga = 0, gb = 0;

		coffer_blob_reader_free(&r);
		coffer_blob_reader_open(fd, &ids, account, &r);
		coffer_blob_reader_read(r, a, sizeof a, &ga);
		pread_matches(r, data, n, 2 * CHUNK + 5, 100);
		coffer_blob_reader_read(r, b, sizeof b, &gb);
		ok(ga == 1000 && gb == 1000 && memcmp(a, data, 1000) == 0 &&
		       memcmp(b, data + 1000, 1000) == 0,
		   "read position unaffected by pread");
	}
	coffer_blob_reader_free(&r);

	/* the cache: FUSE-like 128 KiB reads at an unaligned start decrypt each
	 * chunk once: one pread per length prefix and one per chunk */
	{
		size_t big = 16 * CHUNK;
		unsigned char *d2 = malloc(big), *buf = malloc(131072);
		struct coffer_io_ops ops = *coffer_io_get_ops();
		uint64_t off;
		unsigned calls_seq, calls_same;

		fill_random(d2, big);
		write_blob(fd, &ids, account, 0, 0, d2, big, CHUNK, NULL);
		ops.pread = counting_pread;
		coffer_blob_reader_open(fd, &ids, account, &r);
		coffer_io_set_ops(&ops);
		pread_calls = 0;
		good = 1;
		for (off = 1000; off < big; off += 131072)
			good &= coffer_blob_reader_pread(r, buf, 131072, off, &got) == 0 &&
			        memcmp(buf, d2 + off, got) == 0;
		calls_seq = pread_calls;
		pread_calls = 0;
		good &= coffer_blob_reader_pread(r, buf, 100, big - 300, &got) == 0 && got == 100;
		good &= coffer_blob_reader_pread(r, buf, 100, big - 200, &got) == 0 && got == 100;
		calls_same = pread_calls;
		coffer_io_set_ops(NULL);
		ok(good, "128 KiB reads from offset 1000 return the right bytes");
		ok(calls_seq <= 2 * 16 + 1,
		   "  %u file reads for 16 chunks: each chunk decrypted once", calls_seq);
		ok(calls_same == 0, "  two reads inside the cached chunk: no file read");
		coffer_blob_reader_free(&r);
		free(d2);
		free(buf);
	}
	free(data);
	close(fd);
}

/* ---- 3. damage ---- */

static void test_damage(void)
{
	size_t n = 3 * CHUNK + 777;
	unsigned char *data = malloc(n), *img = NULL;
	struct coffer_buf b = COFFER_BUF_INIT;
	struct coffer_blob_ids ids;
	struct layout *l = malloc(sizeof *l);
	size_t len;
	int fd = mem_fd(), good;

	/* A compressible blob small enough for exhaustive damage. */
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)("Lorem ipsum dolor sit amet\n"[i % 27]);
	for (int sym = 0; sym < WRAPS; sym++) {
		new_ids(&ids, COFFER_BLOB_MESSAGE);
		write_blob(fd, &ids, account, sym, 0, data, n, 10000, NULL);
		get_image(fd, &b);
		len = b.len;
		img = malloc(len + CHUNK + 100);
		memcpy(img, b.data, len);
		ok(parse_layout(img, len, l) == 0 && l->nchunks == 4,
		   "%s: compressible 4-chunk blob of %zu bytes", wrap_names[sym], len);

		good = 1;
		for (size_t i = 0; i < len; i++) {
			for (int bit = 0; bit < 8; bit++) {
				img[i] ^= (unsigned char)(1u << bit);
				if (!refused(fd, img, len, &ids, account, data, n)) {
					tap_diag("flip byte %zu bit %d accepted", i, bit);
					good = 0;
				}
				img[i] ^= (unsigned char)(1u << bit);
			}
		}
		ok(good, "  every one of %zu single-bit flips is refused", 8 * len);

		good = 1;
		for (size_t cut = 0; cut < len; cut++)
			good &= refused(fd, img, cut, &ids, account, data, n);
		ok(good, "  every truncation (0..%zu bytes) is refused", len - 1);
		set_image(fd, img, l->offs[3]);
		ok(read_all(fd, &ids, account, data, n, 50000, &good) == COFFER_ECORRUPT && good &&
		       strstr(coffer_errmsg(), "truncated after chunk 2") != NULL,
		   "  cut at a chunk boundary: \"%s\"", coffer_errmsg());
		set_image(fd, img, len);
		ok(read_all(fd, &ids, account, data, n, 50000, &good) == 0 && good,
		   "  undamaged image still reads");

		/* trailing data */
		good = 1;
		for (size_t extra = 1; extra <= 40; extra++) {
			memset(img + len, extra == 4 ? 0 : 0x41, extra);
			good &= refused(fd, img, len + extra, &ids, account, data, n);
		}
		ok(good, "  1..40 bytes of trailing junk are refused");
		memcpy(img + len, img + l->offs[3], len - l->offs[3]);
		set_image(fd, img, len + (len - l->offs[3]));
		ok(read_all(fd, &ids, account, data, n, 50000, &good) == COFFER_ECORRUPT && good &&
		       strstr(coffer_errmsg(), "trailing data after final chunk 3") != NULL,
		   "  final chunk repeated: \"%s\"", coffer_errmsg());
		memcpy(img + len, img + l->offs[0], l->offs[1] - l->offs[0]);
		ok(refused(fd, img, len + (l->offs[1] - l->offs[0]), &ids, account, data, n),
		   "  chunk 0 appended after the end: refused");

		/* reorder: swap chunks 1 and 2 (same length: same content) */
		{
			size_t l1 = l->offs[2] - l->offs[1], l2 = l->offs[3] - l->offs[2];
			unsigned char *sw = malloc(len);

			memcpy(sw, img, len);
			memcpy(sw + l->offs[1], img + l->offs[2], l2);
			memcpy(sw + l->offs[1] + l2, img + l->offs[1], l1);
			ok(refused(fd, sw, len, &ids, account, data, n),
			   "  chunks 1 and 2 swapped: refused");
			/* drop chunk 1 */
			memcpy(sw, img, l->offs[1]);
			memcpy(sw + l->offs[1], img + l->offs[2], len - l->offs[2]);
			ok(refused(fd, sw, len - l1, &ids, account, data, n),
			   "  chunk 1 dropped: refused");
			free(sw);
			/* chunk 1 in place of chunk 2 */
			sw = malloc(len + l1);
			memcpy(sw, img, l->offs[2]);
			memcpy(sw + l->offs[2], img + l->offs[1], l1);
			memcpy(sw + l->offs[2] + l1, img + l->offs[3], len - l->offs[3]);
			ok(refused(fd, sw, len - l2 + l1, &ids, account, data, n),
			   "  chunk 1 in place of chunk 2: refused");
			free(sw);
		}
		free(img);
	}

	/* A raw (incompressible) blob: sampled flips, truncation near boundaries. */
	fill_random(data, n);
	new_ids(&ids, COFFER_BLOB_MESSAGE);
	write_blob(fd, &ids, account, 0, 0, data, n, 10000, NULL);
	get_image(fd, &b);
	len = b.len;
	img = malloc(len);
	memcpy(img, b.data, len);
	parse_layout(img, len, l);
	good = 1;
	for (size_t i = 0; i < 110 + 4; i++) {
		img[i] ^= 0x80;
		good &= refused(fd, img, len, &ids, account, data, n);
		img[i] ^= 0x80;
	}
	for (size_t c = 0; c < l->nchunks; c++) {
		size_t start = l->offs[c], stop = c + 1 < l->nchunks ? l->offs[c + 1] : len;
		size_t pos[] = { start,     start + 1, start + 2,   start + 3,
			         start + 4, start + 5, start + 100, (start + stop) / 2,
			         stop - 17, stop - 16, stop - 1 };

		for (size_t k = 0; k < sizeof pos / sizeof *pos; k++) {
			img[pos[k]] ^= 0x01;
			good &= refused(fd, img, len, &ids, account, data, n);
			img[pos[k]] ^= 0x01;
		}
	}
	for (int k = 0; k < 200; k++) {
		size_t i = (size_t)(rng() % len);

		img[i] ^= (unsigned char)(1u << (rng() % 8));
		good &= refused(fd, img, len, &ids, account, data, n);
		img[i] = b.data[i];
	}
	ok(good, "raw blob: flips in header, prefixes, chunk edges and 200 random places refused");
	good = 1;
	for (size_t c = 0; c < l->nchunks; c++)
		for (int d = -5; d <= 5; d++)
			if ((int64_t)l->offs[c] + d >= 0 && l->offs[c] + (size_t)d < len)
				good &= refused(fd, img, l->offs[c] + (size_t)d, &ids, account,
				                data, n);
	for (int k = 0; k < 50; k++)
		good &= refused(fd, img, (size_t)(rng() % len), &ids, account, data, n);
	ok(good, "raw blob: truncation at every chunk boundary +-5 and 50 random places refused");

	/* pread past the end of a blob cut at a chunk boundary is an error, not EOF */
	{
		struct coffer_blob_reader *r = NULL;
		unsigned char buf[16];
		size_t got;
		uint64_t size;

		set_image(fd, img, l->offs[3]);
		ok(coffer_blob_reader_open(fd, &ids, account, &r) == 0 &&
		       coffer_blob_reader_pread(r, buf, sizeof buf, 10 * CHUNK, &got) ==
		           COFFER_ECORRUPT &&
		       coffer_blob_reader_size(r, &size) == COFFER_ECORRUPT,
		   "truncated blob: pread past the end and size fail");
		coffer_blob_reader_free(&r);
		set_image(fd, img, l->header_len);
		ok(coffer_blob_reader_open(fd, &ids, account, &r) == 0 &&
		       coffer_blob_reader_size(r, &size) == COFFER_ECORRUPT &&
		       coffer_blob_reader_pread(r, buf, sizeof buf, 0, &got) == COFFER_ECORRUPT,
		   "header without chunks: size and read fail");
		coffer_blob_reader_free(&r);
	}

	free(img);
	free(l);
	free(data);
	coffer_buf_free(&b);
	close(fd);
}

/* ---- 4. wrong ids and keys ---- */

static void test_wrong_ids(void)
{
	unsigned char data[5000];
	struct coffer_blob_ids ids, bad;
	struct coffer_blob_reader *r = NULL;
	int fd = mem_fd(), good;

	fill_text(data, sizeof data);
	for (int sym = 0; sym < WRAPS; sym++) {
		const char *w = wrap_names[sym];

		new_ids(&ids, COFFER_BLOB_MESSAGE);
		write_blob(fd, &ids, account, sym, 0, data, sizeof data, sizeof data, NULL);
		ok(read_all(fd, &ids, account, data, sizeof data, 999, &good) == 0 && good,
		   "%s: right ids read", w);

		bad = ids;
		bad.account_id[15] ^= 1;
		ok(read_all(fd, &bad, account, data, sizeof data, 999, &good) == COFFER_ECORRUPT &&
		       strstr(coffer_errmsg(), "cannot be opened with this account's key or ids") &&
		       good,
		   "%s: wrong account id: \"%s\"", w, coffer_errmsg());
		bad = ids;
		bad.blob_id[0] ^= 1;
		ok(read_all(fd, &bad, account, data, sizeof data, 999, &good) == COFFER_ECORRUPT &&
		       strstr(coffer_errmsg(), "cannot be opened with this account's key or ids") &&
		       good,
		   "%s: wrong blob id: \"%s\"", w, coffer_errmsg());
		bad = ids;
		bad.kind = COFFER_BLOB_CONTROL;
		ok(read_all(fd, &bad, account, data, sizeof data, 999, &good) == COFFER_ECORRUPT,
		   "%s: wrong kind: \"%s\"", w, coffer_errmsg());
		ok(read_all(fd, &ids, other_acct, data, sizeof data, 999, &good) ==
		           COFFER_ECORRUPT &&
		       strstr(coffer_errmsg(), "cannot be opened with this account's key or ids"),
		   "%s: other account's key: \"%s\"", w, coffer_errmsg());
	}
	bad = ids;
	bad.kind = 0;
	ok(coffer_blob_reader_open(fd, &bad, account, &r) == COFFER_EINVAL && r == NULL,
	   "reader: kind 0 is EINVAL");
	bad.kind = 3;
	ok(coffer_blob_reader_open(fd, &bad, account, &r) == COFFER_EINVAL,
	   "reader: kind 3 is EINVAL");
	set_image(fd, (const unsigned char *)"not a blob at all, just some text here", 38);
	ok(coffer_blob_reader_open(fd, &ids, account, &r) == COFFER_ECORRUPT && r == NULL,
	   "text file: \"%s\"", coffer_errmsg());
	set_image(fd, NULL, 0);
	ok(coffer_blob_reader_open(fd, &ids, account, &r) == COFFER_ECORRUPT, "empty file: \"%s\"",
	   coffer_errmsg());
	close(fd);
}

/* ---- 5. forged chunks: right key, wrong contents ---- */

struct forge_chunk {
	uint8_t mode;
	const unsigned char *payload;
	size_t len;
	int final;
	uint64_t index; /* as sealed */
};

/*
 * Encodes a blob from docs/format.md, independently of envelope.c: header with
 * the symmetric key wrap, then the given chunks.
 */
static void forge_blob(struct coffer_buf *out, const struct coffer_blob_ids *ids,
                       const struct coffer_acct_secret *s, const struct forge_chunk *c, size_t nc)
{
	unsigned char key[32], prefix[16], wrap[72], ad[46], nonce[24], hdr[30];
	unsigned char *frame, *ct;

	coffer_random(key, sizeof key);
	coffer_random(prefix, sizeof prefix);
	memcpy(hdr, "CFBL", 4);
	hdr[4] = 1;
	hdr[5] = ids->kind;
	hdr[6] = 2;
	hdr[7] = 0;
	put_u32le(hdr + 8, 65536);
	memcpy(hdr + 12, prefix, 16);
	hdr[28] = 72;
	hdr[29] = 0;
	memcpy(ad, "CFK1", 4);
	memcpy(ad + 4, ids->account_id, 16);
	memcpy(ad + 20, ids->blob_id, 16);
	ad[36] = ids->kind;
	coffer_random(wrap, 24);
	coffer_crypto_aead_seal(wrap + 24, key, 32, ad, 37, wrap, s->data_key);
	coffer_buf_reset(out);
	coffer_buf_append(out, hdr, sizeof hdr);
	coffer_buf_append(out, wrap, sizeof wrap);
	for (size_t i = 0; i < nc; i++) {
		size_t flen = 1 + c[i].len;

		frame = malloc(flen);
		ct = malloc(flen + 16);
		frame[0] = c[i].mode;
		if (c[i].len > 0)
			memcpy(frame + 1, c[i].payload, c[i].len);
		memcpy(nonce, prefix, 16);
		put_u64le(nonce + 16, c[i].index);
		memcpy(ad, "CFB1", 4);
		memcpy(ad + 4, ids->account_id, 16);
		memcpy(ad + 20, ids->blob_id, 16);
		ad[36] = ids->kind;
		put_u64le(ad + 37, c[i].index);
		ad[45] = c[i].final ? 1 : 0;
		coffer_crypto_aead_seal(ct, frame, flen, ad, 46, nonce, key);
		coffer_buf_put_u32le(out, (uint32_t)(flen + 16));
		coffer_buf_append(out, ct, flen + 16);
		free(frame);
		free(ct);
	}
}

static int forged_read(int fd, struct coffer_buf *img, const struct coffer_blob_ids *ids,
                       const unsigned char *expect, size_t n, int *prefix_ok_r)
{
	set_image(fd, img->data, img->len);
	return read_all(fd, ids, account, expect, n, 70000, prefix_ok_r);
}

static void test_forged(void)
{
	size_t zcap = coffer_compress_bound(CHUNK + 1);
	unsigned char *text = malloc(3 * CHUNK), *z = malloc(zcap), *zbig = malloc(zcap);
	unsigned char *zshort = malloc(zcap);
	size_t zlen = 0, zbiglen = 0, zshortlen = 0;
	struct coffer_buf img = COFFER_BUF_INIT;
	struct coffer_blob_ids ids;
	int fd = mem_fd(), good = 0, rc;

	new_ids(&ids, COFFER_BLOB_MESSAGE);
	fill_text(text, 3 * CHUNK);
	coffer_compress(z, zcap, text + CHUNK, CHUNK, 0, &zlen);
	coffer_compress(zbig, zcap, text, CHUNK + 1, 0, &zbiglen);
	coffer_compress(zshort, zcap, text + CHUNK, CHUNK - 1, 0, &zshortlen);

	{
		struct forge_chunk c[] = { { 0, text, CHUNK, 0, 0 },
			                   { 1, z, zlen, 0, 1 },
			                   { 0, text + 2 * CHUNK, 100, 1, 2 } };

		forge_blob(&img, &ids, account, c, 3);
		ok(forged_read(fd, &img, &ids, text, 2 * CHUNK + 100, &good) == 0 && good,
		   "blob encoded from docs/format.md (raw, zstd, raw final) reads back");
	}
	{
		struct forge_chunk c[] = { { 0, NULL, 0, 1, 0 } };

		forge_blob(&img, &ids, account, c, 1);
		ok(forged_read(fd, &img, &ids, text, 0, &good) == 0 && good,
		   "forged empty blob (one empty final chunk) reads back");
	}
	{
		struct forge_chunk c[] = { { 1, zbig, zbiglen, 1, 0 } };

		forge_blob(&img, &ids, account, c, 1);
		rc = forged_read(fd, &img, &ids, text, CHUNK + 1, &good);
		ok(rc == COFFER_ECORRUPT, "zstd chunk expanding to CHUNK + 1: \"%s\"",
		   coffer_errmsg());
	}
	{
		struct forge_chunk c[] = { { 0, text, 100, 0, 0 }, { 0, text + 100, 100, 1, 1 } };

		forge_blob(&img, &ids, account, c, 2);
		rc = forged_read(fd, &img, &ids, text, 200, &good);
		ok(rc == COFFER_ECORRUPT && strstr(coffer_errmsg(), "holds 100 bytes"),
		   "non-final chunk of 100 bytes: \"%s\"", coffer_errmsg());
	}
	{
		struct forge_chunk c[] = { { 1, zshort, zshortlen, 0, 0 }, { 0, text, 10, 1, 1 } };

		forge_blob(&img, &ids, account, c, 2);
		ok(forged_read(fd, &img, &ids, text, CHUNK + 9, &good) == COFFER_ECORRUPT,
		   "non-final zstd chunk of CHUNK - 1 bytes: \"%s\"", coffer_errmsg());
	}
	{
		struct forge_chunk c[] = { { 0, text, CHUNK, 0, 0 }, { 0, NULL, 0, 1, 1 } };

		forge_blob(&img, &ids, account, c, 2);
		ok(forged_read(fd, &img, &ids, text, CHUNK, &good) == COFFER_ECORRUPT,
		   "empty final chunk after data (not canonical): \"%s\"", coffer_errmsg());
	}
	{
		struct forge_chunk c[] = { { 2, text, 10, 1, 0 } };

		forge_blob(&img, &ids, account, c, 1);
		ok(forged_read(fd, &img, &ids, text, 10, &good) == COFFER_ECORRUPT,
		   "unknown chunk mode 2: \"%s\"", coffer_errmsg());
	}
	{
		struct forge_chunk c[] = { { 1, text, 500, 1, 0 } };

		forge_blob(&img, &ids, account, c, 1);
		ok(forged_read(fd, &img, &ids, text, 500, &good) == COFFER_ECORRUPT,
		   "zstd mode with text payload: \"%s\"", coffer_errmsg());
	}
	{
		struct forge_chunk c[] = { { 0, text, CHUNK + 1, 1, 0 } };

		forge_blob(&img, &ids, account, c, 1);
		ok(forged_read(fd, &img, &ids, text, CHUNK + 1, &good) == COFFER_ECORRUPT,
		   "raw chunk of CHUNK + 1 bytes (length over bound): \"%s\"", coffer_errmsg());
	}
	{
		struct forge_chunk c[] = { { 0, text, 10, 1, 0 }, { 0, text + 10, 10, 1, 1 } };

		forge_blob(&img, &ids, account, c, 2);
		ok(forged_read(fd, &img, &ids, text, 20, &good) == COFFER_ECORRUPT,
		   "two final chunks: \"%s\"", coffer_errmsg());
	}
	{
		struct forge_chunk c[] = { { 0, text, CHUNK, 0, 0 }, { 0, text, 10, 1, 0 } };

		forge_blob(&img, &ids, account, c, 2);
		ok(forged_read(fd, &img, &ids, text, CHUNK + 10, &good) == COFFER_ECORRUPT,
		   "chunk 1 sealed as index 0: \"%s\"", coffer_errmsg());
	}
	{
		struct forge_chunk c[] = { { 0, text, 10, 1, 0 } };

		forge_blob(&img, &ids, account, c, 1);
		img.data[7] = 1;
		ok(forged_read(fd, &img, &ids, text, 10, &good) == COFFER_ECORRUPT,
		   "unknown header flag: \"%s\"", coffer_errmsg());
		img.data[7] = 0;
		img.data[4] = 2;
		ok(forged_read(fd, &img, &ids, text, 10, &good) == COFFER_ECORRUPT,
		   "version 2: \"%s\"", coffer_errmsg());
		img.data[4] = 1;
		put_u32le(img.data + 8, 32768);
		ok(forged_read(fd, &img, &ids, text, 10, &good) == COFFER_ECORRUPT,
		   "chunk size 32768: \"%s\"", coffer_errmsg());
		put_u32le(img.data + 8, 65536);
		img.data[6] = 3;
		ok(forged_read(fd, &img, &ids, text, 10, &good) == COFFER_ECORRUPT,
		   "wrap type 3 with a 72-byte wrap: \"%s\"", coffer_errmsg());
		img.data[6] = 4;
		ok(forged_read(fd, &img, &ids, text, 10, &good) == COFFER_ECORRUPT,
		   "wrap type 4: \"%s\"", coffer_errmsg());
		img.data[6] = 2;
		ok(forged_read(fd, &img, &ids, text, 10, &good) == 0 && good,
		   "restored header reads again");
	}
	free(text);
	free(z);
	free(zbig);
	free(zshort);
	coffer_buf_free(&img);
	close(fd);
}

/* ---- 6. streaming bound, misuse, I/O errors ---- */

static long max_rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void test_streaming(void)
{
	size_t total = 50 * MiB, piece = 65536;
	unsigned char *buf = malloc(piece), *back = malloc(piece);
	struct coffer_blob_writer *w = NULL;
	struct coffer_blob_reader *r = NULL;
	struct coffer_blob_ids ids;
	uint64_t plain = 0, stored = 0, max_buffered = 0;
	long rss_before, rss_after;
	struct coffer_buf pathbuf = COFFER_BUF_INIT;
	const char *path = path_join(&pathbuf, tap_tmpdir(), "stream.blob");
	size_t got;
	int fd, good = 1;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	new_ids(&ids, COFFER_BLOB_MESSAGE);
	rss_before = max_rss_kib();
	rng_seed(4242);
	ok(coffer_blob_writer_new(fd, &ids, account->pk, NULL, 0, &w) == 0, "streaming writer");
	for (size_t done = 0; done < total; done += piece) {
		uint64_t in_file, buffered;

		fill_random(buf, piece);
		good &= coffer_blob_writer_write(w, buf, piece) == 0;
		/* raw chunks: file bytes past the header ~ plaintext written out */
		in_file = file_size(fd) - 110;
		in_file = in_file / (4 + 1 + CHUNK + 16) * CHUNK;
		buffered = done + piece - in_file;
		if (buffered > max_buffered)
			max_buffered = buffered;
	}
	good &= coffer_blob_writer_finish(w, &plain, &stored) == 0;
	coffer_blob_writer_free(&w);
	rss_after = max_rss_kib();
	ok(good && plain == total && stored == file_size(fd), "50 MiB written in 64 KiB pieces");
	ok(max_buffered <= 2 * CHUNK,
	   "  the file grows while writing: at most %llu plaintext bytes held back (<= 2 chunks)",
	   (unsigned long long)max_buffered);
	ok(rss_after - rss_before < 24 * 1024, "  peak RSS grew by %ld KiB (< 24 MiB)",
	   rss_after - rss_before);

	rng_seed(4242);
	good = coffer_blob_reader_open(fd, &ids, account, &r) == 0;
	for (size_t done = 0; good && done < total; done += piece) {
		fill_random(buf, piece);
		good &= coffer_blob_reader_read(r, back, piece, &got) == 0 && got == piece &&
		        memcmp(buf, back, piece) == 0;
	}
	good &= coffer_blob_reader_read(r, back, piece, &got) == 0 && got == 0;
	ok(good, "  50 MiB read back in 64 KiB pieces");
	coffer_blob_reader_free(&r);
	close(fd);
	unlink(path);
	coffer_buf_free(&pathbuf);
	free(buf);
	free(back);
}

static int fail_write_after;
static ssize_t failing_write(int fd, const void *p, size_t n)
{
	if (fail_write_after-- <= 0) {
		errno = ENOSPC;
		return -1;
	}
	return write(fd, p, n < 3 ? n : n / 3); /* short writes too */
}

static ssize_t failing_pread(int fd, void *p, size_t n, off_t off)
{
	if (off > 200) {
		errno = EIO;
		return -1;
	}
	return pread(fd, p, n, off);
}

static void test_misuse_and_errors(void)
{
	unsigned char data[3 * 65536];
	struct coffer_blob_writer *w = NULL;
	struct coffer_blob_reader *r = NULL;
	struct coffer_blob_ids ids;
	struct coffer_io_ops ops = *coffer_io_get_ops();
	uint64_t plain, stored;
	int fd = mem_fd(), rofd, good, rc;
	size_t got;

	fill_text(data, sizeof data);
	new_ids(&ids, COFFER_BLOB_MESSAGE);
	ok(coffer_blob_writer_new(fd, &ids, account->pk, NULL, 0, &w) == 0 &&
	       coffer_blob_writer_write(w, data, 10) == 0 &&
	       coffer_blob_writer_finish(w, &plain, &stored) == 0 && plain == 10,
	   "writer finishes");
	ok(coffer_blob_writer_write(w, data, 10) == COFFER_EINVAL, "write after finish: EINVAL");
	ok(coffer_blob_writer_finish(w, &plain, &stored) == COFFER_EINVAL, "second finish: EINVAL");
	coffer_blob_writer_free(&w);
	ok(w == NULL, "writer_free clears the pointer");
	coffer_blob_writer_free(&w);
	coffer_blob_writer_free(NULL);
	ids.kind = 0;
	ok(coffer_blob_writer_new(fd, &ids, account->pk, NULL, 0, &w) == COFFER_EINVAL && w == NULL,
	   "writer: kind 0 is EINVAL");
	ids.kind = COFFER_BLOB_MESSAGE;
	ok(coffer_blob_writer_new(fd, &ids, account->pk, NULL, 1000, &w) == COFFER_EINVAL,
	   "writer: zstd level 1000 is EINVAL");
	ok(coffer_blob_writer_new(fd, &ids, NULL, NULL, 0, &w) == COFFER_EINVAL,
	   "writer: no key is EINVAL");
	ok(coffer_blob_writer_new_sealed(fd, &ids, NULL, 0, &w) == COFFER_EINVAL && w == NULL,
	   "writer: no sealer is EINVAL");

	/* one sealer for a blob's key and the account boxes of its delivery */
	{
		struct coffer_sealer *sl = NULL;
		struct coffer_buf box = COFFER_BUF_INIT, out = COFFER_BUF_INIT,
				  img = COFFER_BUF_INIT;

		if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
			return;
		rc = coffer_sealer_new(account->pk, &sl);
		if (rc == 0)
			rc = coffer_blob_writer_new_sealed(fd, &ids, sl, 0, &w);
		if (rc == 0)
			rc = coffer_blob_writer_write(w, data, 1000);
		if (rc == 0)
			rc = coffer_blob_writer_finish(w, &plain, &stored);
		coffer_blob_writer_free(&w);
		ok(rc == 0 && coffer_box_seal_with(&box, "INBOX", 5, "event-key", 9, sl) == 0,
		   "shared: a blob and an account box from one sealer");
		get_image(fd, &img);
		ok(img.len > 62 && box.len > 33 && img.data[6] == 3 &&
		       memcmp(img.data + 30, box.data + 1, 32) == 0,
		   "shared: the blob's key wrap and the box carry the same ephemeral key");
		ok(read_all(fd, &ids, account, data, 1000, 999, &good) == 0 && good &&
		       coffer_box_open(&out, box.data, box.len, "event-key", 9, account) == 0 &&
		       out.len == 5 && memcmp(out.data, "INBOX", 5) == 0,
		   "shared: both open");
		rc = coffer_blob_writer_new_sealed(fd, &ids, sl, 0, &w);
		ok(rc == COFFER_EINVAL && w == NULL,
		   "shared: a second blob for the same ids from one sealer is refused "
		   "(nonce reuse): \"%s\"",
		   coffer_errmsg());
		coffer_sealer_free(&sl);
		coffer_buf_free(&box);
		coffer_buf_free(&out);
		coffer_buf_free(&img);
	}

	/* a descriptor not open for writing */
	rofd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ok(coffer_blob_writer_new(rofd, &ids, account->pk, NULL, 0, &w) < 0 && w == NULL,
	   "writer on a read-only descriptor fails: \"%s\"", coffer_errmsg());
	close(rofd);

	/* disk full in the middle, with short writes before it */
	ops.write = failing_write;
	fail_write_after = 60;
	if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
		return;
	coffer_io_set_ops(&ops);
	rc = coffer_blob_writer_new(fd, &ids, account->pk, NULL, 0, &w);
	for (int i = 0; rc == 0 && i < 100; i++)
		rc = coffer_blob_writer_write(w, data + (i % 2) * 65536, 65536);
	coffer_io_set_ops(NULL);
	ok(rc == COFFER_ENOSPACE, "disk full while writing: ENOSPACE \"%s\"", coffer_errmsg());
	ok(w != NULL && coffer_blob_writer_write(w, data, 1) == COFFER_ENOSPACE &&
	       coffer_blob_writer_finish(w, &plain, &stored) == COFFER_ENOSPACE,
	   "the failure is sticky");
	coffer_blob_writer_free(&w);

	/* short writes alone still produce a good blob */
	ops.write = failing_write;
	fail_write_after = 1000000;
	coffer_io_set_ops(&ops);
	rc = write_blob(fd, &ids, account, 1, 0, data, sizeof data, 5000, NULL);
	coffer_io_set_ops(NULL);
	ok(rc == 0 && read_all(fd, &ids, account, data, sizeof data, 1000, &good) == 0 && good,
	   "short writes: blob intact");

	/* read errors surface as such, not as damage */
	ops = *coffer_io_get_ops();
	ops.pread = failing_pread;
	coffer_io_set_ops(&ops);
	rc = coffer_blob_reader_open(fd, &ids, account, &r);
	if (rc == 0)
		rc = coffer_blob_reader_pread(r, data, 100, CHUNK, &got);
	coffer_io_set_ops(NULL);
	ok(rc == COFFER_EIO, "EIO while reading: EIO \"%s\"", coffer_errmsg());
	coffer_blob_reader_free(&r);
	close(fd);
}

/* ---- 7. golden vectors ---- */

static int from_hex(unsigned char *out, size_t n, const char *hex)
{
	if (strlen(hex) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

static void to_hex(char *out, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

#define GOLDEN_KEY_FILE "TEST-ONLY-account-key.txt"

/* The fixed ids fuzz-envelope.c uses with the TEST-ONLY key. */
static const unsigned char fuzz_blob_id[16] = { 0xf0, 0x22, 0xf0, 0x22, 0xf0, 0x22, 0xf0, 0x22,
	                                        0xf0, 0x22, 0xf0, 0x22, 0xf0, 0x22, 0xf0, 0x22 };

struct golden_account {
	unsigned char account_id[16];
	unsigned char pk[32];
	unsigned char sk[32];
};

/* Reads "account_id <hex>", "pk <hex>", "sk <hex>" lines ('#' comments). */
static int golden_read_key(const char *dir, struct golden_account *a)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	char line[256], name[32], hex[130];
	int have = 0;
	FILE *f;

	f = fopen(path_join(&path, dir, GOLDEN_KEY_FILE), "r");
	coffer_buf_free(&path);
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		if (line[0] == '#' || sscanf(line, "%31s %129s", name, hex) != 2)
			continue;
		if (strcmp(name, "account_id") == 0 && from_hex(a->account_id, 16, hex) == 0)
			have |= 1;
		else if (strcmp(name, "pk") == 0 && from_hex(a->pk, 32, hex) == 0)
			have |= 2;
		else if (strcmp(name, "sk") == 0 && from_hex(a->sk, 32, hex) == 0)
			have |= 4;
	}
	fclose(f);
	return have == 7 ? 0 : -1;
}

static int read_file(const char *dir, const char *name, struct coffer_buf *out)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	int rc;

	coffer_buf_reset(out);
	rc = coffer_io_read_file(path_join(&path, dir, name), 64 * MiB, out);
	coffer_buf_free(&path);
	return rc;
}

/* $COFFER_SOURCE_ROOT/tests/golden/envelope, else relative to the working
 * directory; valid until exit. */
static const char *golden_dir(void)
{
	static struct coffer_buf dir = COFFER_BUF_INIT;
	const char *root = getenv("COFFER_SOURCE_ROOT");

	return path_join(&dir, root && *root ? root : ".", "tests/golden/envelope");
}

static void test_golden(void)
{
	const char *dir = golden_dir();
	struct golden_account ga;
	struct coffer_acct_secret *s = NULL;
	struct coffer_buf blob = COFFER_BUF_INIT, plain = COFFER_BUF_INIT;
	struct coffer_buf path = COFFER_BUF_INIT, fname = COFFER_BUF_INIT;
	char line[512], name[128], wrap[16], hex[64];
	unsigned kind;
	int count = 0, wraps_seen = 0, multi_seen = 0;
	FILE *manifest;

	ok(golden_read_key(dir, &ga) == 0, "golden: TEST-ONLY account key in %s", dir);
	ok(coffer_acct_secret_new(ga.pk, ga.sk, &s) == 0, "golden: account secret");
	manifest = fopen(path_join(&path, dir, "vectors.txt"), "r");
	ok(manifest != NULL, "golden: manifest %s", coffer_buf_str(&path));
	while (manifest != NULL && s != NULL && fgets(line, sizeof line, manifest) != NULL) {
		struct coffer_blob_ids ids;
		struct coffer_blob_reader *r = NULL;
		int fd = -1, good, rc;

		if (line[0] == '#' ||
		    sscanf(line, "%127s %u %15s %63s", name, &kind, wrap, hex) != 4)
			continue;
		count++;
		memcpy(ids.account_id, ga.account_id, 16);
		ids.kind = (uint8_t)kind;
		rc = from_hex(ids.blob_id, 16, hex);
		rc |= read_file(dir, name_ext(&fname, name, "blob"), &blob);
		rc |= read_file(dir, name_ext(&fname, name, "plain"), &plain);
		ok(rc == 0 && blob.len > 30, "golden %s: files present", name);
		if (rc != 0 || blob.len <= 30)
			continue;
		good = 0;
		for (int w = 0; w < WRAPS; w++)
			good |= strcmp(wrap, wrap_names[w]) == 0 && blob.data[6] == wrap_types[w];
		ok(good && blob.data[5] == kind, "golden %s: header says kind %u, %s wrap", name,
		   kind, wrap);
		wraps_seen |= 1 << blob.data[6];
		multi_seen |= plain.len > 3 * CHUNK;
		fd = mem_fd();
		set_image(fd, blob.data, blob.len);
		rc = read_all(fd, &ids, s, plain.data, plain.len, 10007, &good);
		ok(rc == 0 && good, "golden %s: %zu bytes decrypt byte for byte (%s)", name,
		   plain.len, rc ? coffer_errmsg() : "ok");
		good = coffer_blob_reader_open(fd, &ids, s, &r) == 0;
		for (int i = 0; good && i < 50; i++)
			good &= pread_matches(r, plain.data, plain.len, rng() % (plain.len + 10),
			                      (size_t)(rng() % 100000));
		ok(good, "golden %s: random preads", name);
		coffer_blob_reader_free(&r);
		ids.blob_id[3] ^= 1;
		ok(read_all(fd, &ids, s, plain.data, plain.len, 10007, &good) == COFFER_ECORRUPT,
		   "golden %s: refused under another blob id", name);
		close(fd);
	}
	if (manifest != NULL)
		fclose(manifest);
	ok(count >= 4 && wraps_seen == (1 << 1 | 1 << 2 | 1 << 3) && multi_seen,
	   "golden: %d vectors, the three wraps, a multi-chunk one", count);

	/* the fuzz target's valid seeds must stay valid for its fixed ids */
	{
		static const char *seeds[] = { "valid-small-sealed", "valid-4chunk-sym",
			                       "valid-empty-sym", "valid-1chunk-raw-sealed",
			                       "valid-small-shared" };
		const char *root = getenv("COFFER_SOURCE_ROOT");
		struct coffer_buf cdir = COFFER_BUF_INIT;
		struct coffer_blob_ids ids;
		int good = s != NULL;

		path_join(&cdir, root && *root ? root : ".", "tests/fuzz/corpus/envelope");
		memcpy(ids.account_id, ga.account_id, 16);
		memcpy(ids.blob_id, fuzz_blob_id, 16);
		ids.kind = COFFER_BLOB_MESSAGE;
		for (size_t i = 0; good && i < sizeof seeds / sizeof *seeds; i++) {
			struct coffer_blob_reader *r = NULL;
			uint64_t size = 0;
			int fd;

			good = read_file(coffer_buf_str(&cdir), seeds[i], &blob) == 0;
			if (!good)
				break;
			fd = mem_fd();
			set_image(fd, blob.data, blob.len);
			good = coffer_blob_reader_open(fd, &ids, s, &r) == 0 &&
			       coffer_blob_reader_size(r, &size) == 0;
			coffer_blob_reader_free(&r);
			close(fd);
		}
		ok(good, "fuzz seeds open under the fuzz target's ids and TEST-ONLY key");
		coffer_buf_free(&cdir);
	}
	coffer_acct_secret_free(&s);
	coffer_buf_free(&blob);
	coffer_buf_free(&plain);
	coffer_buf_free(&path);
	coffer_buf_free(&fname);
}

/* --write-golden GOLDEN_DIR FUZZ_CORPUS_DIR: not a test; see the top. */

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	int rc;

	rc = coffer_io_write_file_atomic(path_join(&path, dir, name), p, n, 0644);
	coffer_buf_free(&path);
	return rc;
}

static int blob_to_file(const char *dir, const char *name, const struct coffer_blob_ids *ids,
                        const struct coffer_acct_secret *s, int sym, const unsigned char *data,
                        size_t n)
{
	struct coffer_buf img = COFFER_BUF_INIT;
	int fd = mem_fd(), rc;

	rc = write_blob(fd, ids, s, sym, 0, data, n, 4096, NULL);
	if (rc == 0) {
		get_image(fd, &img);
		rc = write_file(dir, name, img.data, img.len);
	}
	coffer_buf_free(&img);
	close(fd);
	return rc;
}

static int write_golden(const char *dir, const char *fuzz_dir)
{
	static const struct {
		const char *name;
		uint8_t kind;
		int sym;
		size_t size;
	} vec[] = {
		{ "small-sealed", COFFER_BLOB_MESSAGE, 0, 0 },
		{ "multi-sym", COFFER_BLOB_MESSAGE, 1, 200 * 1024 },
		{ "control-empty", COFFER_BLOB_CONTROL, 1, 0 },
		{ "small-shared", COFFER_BLOB_MESSAGE, 2, 0 },
	};
	static const char small_msg[] =
	    "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: golden vector\r\n"
	    "Date: Mon, 1 Jan 2024 12:00:00 +0000\r\nMessage-ID: <golden-1@example.org>\r\n\r\n"
	    "This message is a golden test vector for Coffer blob format v1.\r\n";
	struct golden_account ga;
	struct coffer_acct_secret *s = NULL;
	struct coffer_buf manifest = COFFER_BUF_INIT, keytext = COFFER_BUF_INIT;
	struct coffer_buf fname = COFFER_BUF_INIT;
	unsigned char *data = malloc(200 * 1024);
	char hex[65];
	int rc;

	if (golden_read_key(dir, &ga) != 0) {
		unsigned char *sk = coffer_secure_alloc(32);

		coffer_random(ga.account_id, 16);
		coffer_crypto_keypair(ga.pk, sk);
		memcpy(ga.sk, sk, 32);
		coffer_secure_free(sk);
		coffer_buf_puts(&keytext, "# TEST-ONLY account key for the envelope golden vectors "
		                          "and fuzz seeds.\n# Never use it for real mail. "
		                          "tests/fuzz/fuzz-envelope.c embeds the same key.\n");
		to_hex(hex, ga.account_id, 16);
		coffer_buf_printf(&keytext, "account_id %s\n", hex);
		to_hex(hex, ga.pk, 32);
		coffer_buf_printf(&keytext, "pk %s\n", hex);
		to_hex(hex, ga.sk, 32);
		coffer_buf_printf(&keytext, "sk %s\n", hex);
		rc = write_file(dir, GOLDEN_KEY_FILE, keytext.data, keytext.len);
		if (rc < 0)
			goto out;
	}
	rc = coffer_acct_secret_new(ga.pk, ga.sk, &s);
	if (rc < 0)
		goto out;
	coffer_buf_puts(&manifest, "# name kind wrap blob_id: NAME.blob decrypts to NAME.plain "
	                           "under the TEST-ONLY account key\n");
	rng_seed(20240101);
	for (size_t v = 0; v < sizeof vec / sizeof *vec; v++) {
		struct coffer_blob_ids ids;
		const unsigned char *plain = data;
		size_t n = vec[v].size;

		memcpy(ids.account_id, ga.account_id, 16);
		coffer_random(ids.blob_id, 16);
		ids.kind = vec[v].kind;
		if (vec[v].kind == COFFER_BLOB_MESSAGE && n == 0) {
			plain = (const unsigned char *)small_msg;
			n = sizeof small_msg - 1;
		} else {
			fill_mixed(data, n);
		}
		rc = blob_to_file(dir, name_ext(&fname, vec[v].name, "blob"), &ids, s, vec[v].sym,
		                  plain, n);
		if (rc == 0)
			rc = write_file(dir, name_ext(&fname, vec[v].name, "plain"), plain, n);
		if (rc < 0)
			goto out;
		to_hex(hex, ids.blob_id, 16);
		coffer_buf_printf(&manifest, "%s %u %s %s\n", vec[v].name, (unsigned)vec[v].kind,
		                  wrap_names[vec[v].sym], hex);
	}
	rc = write_file(dir, "vectors.txt", manifest.data, manifest.len);
	if (rc < 0)
		goto out;

	/* fuzz seeds: valid blobs for the fuzz target's fixed ids */
	{
		struct coffer_blob_ids ids;

		memcpy(ids.account_id, ga.account_id, 16);
		memcpy(ids.blob_id, fuzz_blob_id, 16);
		ids.kind = COFFER_BLOB_MESSAGE;
		rc = blob_to_file(fuzz_dir, "valid-small-sealed", &ids, s, 0,
		                  (const unsigned char *)small_msg, sizeof small_msg - 1);
		for (size_t i = 0; i < 3 * CHUNK + 50 && i < 200 * 1024; i++)
			data[i] = (unsigned char)("abcabcabd\n"[i % 10]);
		if (rc == 0)
			rc = blob_to_file(fuzz_dir, "valid-4chunk-sym", &ids, s, 1, data,
			                  3 * CHUNK + 50);
		if (rc == 0)
			rc = blob_to_file(fuzz_dir, "valid-empty-sym", &ids, s, 1, data, 0);
		if (rc == 0)
			rc = blob_to_file(fuzz_dir, "valid-1chunk-raw-sealed", &ids, s, 0,
			                  (const unsigned char *)"xy", 2);
		if (rc == 0)
			rc = blob_to_file(fuzz_dir, "valid-small-shared", &ids, s, 2,
			                  (const unsigned char *)small_msg, sizeof small_msg - 1);
	}
out:
	if (rc < 0)
		fprintf(stderr, "write-golden: %s\n", coffer_errmsg());
	coffer_acct_secret_free(&s);
	coffer_buf_free(&manifest);
	coffer_buf_free(&keytext);
	coffer_buf_free(&fname);
	free(data);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (coffer_crypto_init() < 0)
		return 99;
	if (argc == 4 && strcmp(argv[1], "--write-golden") == 0)
		return write_golden(argv[2], argv[3]);
	if (new_account(&account) < 0 || new_account(&other_acct) < 0)
		return 99;
	test_streaming(); /* first, so its peak-RSS check starts from a low mark */
	test_roundtrips();
	test_big_messages();
	test_pread();
	test_damage();
	test_wrong_ids();
	test_forged();
	test_misuse_and_errors();
	test_golden();
	coffer_acct_secret_free(&account);
	coffer_acct_secret_free(&other_acct);
	return tap_done();
}
