/*
 * envelope.c: blob format v1 (see envelope.h and docs/format.md "Blob v1").
 *
 * Layout:
 *
 *   header  "CFBL" | version u8 = 1 | kind u8 | wrap type u8 | flags u8 = 0 |
 *           chunk size u32le = 65536 | nonce prefix (16) | wrap length u16le |
 *           wrapped content key (80 bytes sealed or shared-sealed, 72 symmetric)
 *   chunks  ciphertext length u32le | XChaCha20-Poly1305(mode u8 || payload)
 *
 * Every header byte is either compared with the one value it may hold or
 * bound into the chunks' authentication (the nonce prefix is part of every
 * nonce, the kind part of every associated data, the wrapped key determines
 * the content key), so nothing in the header is trusted before it is checked.
 *
 * Writer: plaintext collects in one chunk buffer. A full chunk is sealed only
 * when the next byte arrives, because only then is it known not to be the
 * last; finish() seals whatever is buffered (0..CHUNK bytes) with the final
 * flag. So a blob of exactly k * CHUNK bytes (k >= 1) has k chunks and an
 * empty blob one empty final chunk: the encoding is canonical, and the
 * reader refuses an empty final chunk after data. Memory: the plaintext
 * chunk, one compressed frame and one ciphertext, whatever the message size.
 *
 * Reader: chunk i holds plaintext [i * CHUNK, (i + 1) * CHUNK), so a read at
 * any offset needs only the file offset of chunk i. The reader learns chunk
 * offsets lazily by reading the length prefixes in order (offs[]: 8 bytes per
 * chunk, built only as far as a read needs, bounded by the file). Whether a
 * chunk is expected to carry the final flag is decided by the file: a chunk is
 * final iff no further length prefix follows it. A file cut at a chunk
 * boundary therefore ends in a non-final chunk (authentication fails), and
 * data after the final chunk makes the final chunk look non-final (fails
 * too); on such a failure the reader retries the other flag only to name the
 * damage ("truncated", "trailing data"), never to accept it. Non-final chunks
 * must hold exactly CHUNK bytes. The last decrypted chunk is cached, so
 * sequential reads (FUSE's 128 KiB requests) decrypt each chunk once.
 *
 * Secrets: the content key, plaintext chunks and compressed frames live in
 * secure memory, freed (wiped) by writer_free/reader_free on every path.
 * Ciphertext buffers are ordinary memory.
 *
 * Concurrency: a writer or reader is used by one thread at a time; the file
 * is immutable once written, so several readers may share it.
 */
#include "envelope.h"

#include "buf.h"
#include "compress.h"
#include "errors.h"
#include "io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char blob_magic[4] = { 'C', 'F', 'B', 'L' };
static const unsigned char chunk_ad_tag[4] = { 'C', 'F', 'B', '1' };
static const unsigned char wrap_ad_tag[4] = { 'C', 'F', 'K', '1' };

#define WRAP_SEALED 1
#define WRAP_SYM 2
#define WRAP_SHARED 3 /* a sealer's box (crypto.h), bound to the wrap AD */
#define NONCE_PREFIX_BYTES 16
#define HEADER_FIXED_BYTES 30 /* up to and including the wrap length */
#define WRAP_SEALED_BYTES (COFFER_KEY_BYTES + COFFER_SEAL_OVERHEAD)
#define WRAP_SYM_BYTES (COFFER_AEAD_NONCE_BYTES + COFFER_KEY_BYTES + COFFER_AEAD_TAG_BYTES)
/* A chunk's ciphertext: mode byte, payload (raw: at most CHUNK; zstd: kept
 * only when smaller than the raw payload), tag. */
#define CHUNK_CT_MIN (1 + COFFER_AEAD_TAG_BYTES)
#define CHUNK_CT_MAX (1 + COFFER_BLOB_CHUNK + COFFER_AEAD_TAG_BYTES)
#define MODE_RAW 0
#define MODE_ZSTD 1
#define CHUNK_AD_BYTES (4 + 2 * COFFER_ID_BYTES + 1 + 8 + 1)
#define WRAP_AD_BYTES (4 + 2 * COFFER_ID_BYTES + 1)
#define HEX_ID_CHARS (2 * COFFER_ID_BYTES + 1)

static void hex_id(char out[HEX_ID_CHARS], const unsigned char id[COFFER_ID_BYTES])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < COFFER_ID_BYTES; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	out[2 * COFFER_ID_BYTES] = '\0';
}

static void chunk_nonce(unsigned char nonce[COFFER_AEAD_NONCE_BYTES],
                        const unsigned char prefix[NONCE_PREFIX_BYTES], uint64_t index)
{
	memcpy(nonce, prefix, NONCE_PREFIX_BYTES);
	coffer_put_u64le(nonce + NONCE_PREFIX_BYTES, index);
}

static void chunk_ad(unsigned char ad[CHUNK_AD_BYTES], const struct coffer_blob_ids *ids,
                     uint64_t index, int final)
{
	memcpy(ad, chunk_ad_tag, 4);
	memcpy(ad + 4, ids->account_id, COFFER_ID_BYTES);
	memcpy(ad + 4 + COFFER_ID_BYTES, ids->blob_id, COFFER_ID_BYTES);
	ad[4 + 2 * COFFER_ID_BYTES] = ids->kind;
	coffer_put_u64le(ad + 5 + 2 * COFFER_ID_BYTES, index);
	ad[13 + 2 * COFFER_ID_BYTES] = final ? 1 : 0;
}

static void wrap_ad(unsigned char ad[WRAP_AD_BYTES], const struct coffer_blob_ids *ids)
{
	memcpy(ad, wrap_ad_tag, 4);
	memcpy(ad + 4, ids->account_id, COFFER_ID_BYTES);
	memcpy(ad + 4 + COFFER_ID_BYTES, ids->blob_id, COFFER_ID_BYTES);
	ad[4 + 2 * COFFER_ID_BYTES] = ids->kind;
}

static int kind_valid(uint8_t kind)
{
	return kind == COFFER_BLOB_MESSAGE || kind == COFFER_BLOB_CONTROL;
}

/* ---- writer ---- */

struct coffer_blob_writer {
	int fd;
	struct coffer_blob_ids ids;
	char hex[HEX_ID_CHARS];
	unsigned char nonce_prefix[NONCE_PREFIX_BYTES];
	unsigned char *key;   /* secure: content key */
	unsigned char *chunk; /* plaintext: mode byte + CHUNK plaintext bytes */
	size_t fill;          /* plaintext bytes buffered at chunk + 1 */
	unsigned char *frame; /* plaintext: mode byte + compressed payload */
	/* bytes of chunk and frame ever written: what a wipe must cover (a
	 * small message touches a few pages of each 64 KiB buffer, and wiping
	 * the rest would fault them in only to zero them) */
	size_t chunk_used, frame_used;
	unsigned char *out; /* length prefix + ciphertext */
	struct coffer_zstd *zstd;
	struct coffer_hash *digest; /* of every byte written (sealed writers) */
	int level;
	uint64_t index; /* of the next chunk to seal */
	uint64_t plain_size;
	uint64_t stored_size;
	unsigned char sum[COFFER_HASH_BYTES]; /* the digest, once finished */
	int failed;                           /* first error; every later call returns it */
	int finished;
};

/* The key is wrapped under secret if given, else by sealer if given, else
 * sealed to pk. */
static int writer_put_header(struct coffer_blob_writer *w, const unsigned char *pk,
                             const struct coffer_acct_secret *secret, struct coffer_sealer *sealer)
{
	unsigned char hdr[HEADER_FIXED_BYTES + WRAP_SEALED_BYTES];
	unsigned char ad[WRAP_AD_BYTES];
	size_t wrap_len = secret != NULL ? WRAP_SYM_BYTES : WRAP_SEALED_BYTES;
	unsigned char *wrap = hdr + HEADER_FIXED_BYTES;
	int rc;

	memcpy(hdr, blob_magic, 4);
	hdr[4] = COFFER_BLOB_VERSION;
	hdr[5] = w->ids.kind;
	hdr[6] = secret != NULL ? WRAP_SYM : sealer != NULL ? WRAP_SHARED : WRAP_SEALED;
	hdr[7] = 0;
	coffer_put_u32le(hdr + 8, COFFER_BLOB_CHUNK);
	memcpy(hdr + 12, w->nonce_prefix, NONCE_PREFIX_BYTES);
	hdr[28] = wrap_len & 0xff;
	hdr[29] = wrap_len >> 8;
	wrap_ad(ad, &w->ids);
	if (secret != NULL) {
		coffer_random(wrap, COFFER_AEAD_NONCE_BYTES);
		rc = coffer_crypto_aead_seal(wrap + COFFER_AEAD_NONCE_BYTES, w->key,
		                             COFFER_KEY_BYTES, ad, sizeof ad, wrap,
		                             secret->data_key);
	} else if (sealer != NULL) {
		rc = coffer_sealer_seal(sealer, wrap, w->key, COFFER_KEY_BYTES, ad, sizeof ad);
	} else {
		rc = coffer_crypto_seal(wrap, w->key, COFFER_KEY_BYTES, pk);
	}
	if (rc < 0)
		return coffer_err_prefix(rc, "blob %s: wrapping content key: ", w->hex);
	rc = coffer_io_write_all(w->fd, hdr, HEADER_FIXED_BYTES + wrap_len);
	if (rc < 0)
		return coffer_err_prefix(rc, "blob %s: writing header: ", w->hex);
	if (w->digest)
		coffer_hash_update(w->digest, hdr, HEADER_FIXED_BYTES + wrap_len);
	w->stored_size = HEADER_FIXED_BYTES + wrap_len;
	return 0;
}

static int writer_new(int fd, const struct coffer_blob_ids *ids, const unsigned char *pk,
                      const struct coffer_acct_secret *secret, struct coffer_sealer *sealer,
                      int zstd_level, struct coffer_blob_writer **w_r)
{
	struct coffer_blob_writer *w;
	int rc;

	*w_r = NULL;
	if (!kind_valid(ids->kind))
		return coffer_err_set(COFFER_EINVAL, "blob: unknown kind %u", (unsigned)ids->kind);
	if (secret == NULL && sealer == NULL && pk == NULL)
		return coffer_err_set(COFFER_EINVAL, "blob: neither public key nor secret given");
	rc = coffer_compress_check_level(zstd_level);
	if (rc < 0)
		return coffer_err_prefix(rc, "blob: ");
	rc = coffer_crypto_init();
	if (rc < 0)
		return rc;
	w = calloc(1, sizeof *w);
	if (w == NULL)
		return coffer_err_set(COFFER_ENOMEM, "blob: cannot allocate writer");
	w->fd = fd;
	w->ids = *ids;
	w->level = zstd_level;
	hex_id(w->hex, ids->blob_id);
	w->key = coffer_secure_alloc(COFFER_KEY_BYTES);
	/* plaintext buffers: ordinary memory, wiped on free (keys alone are
	 * guarded: see coffer_secure_alloc) */
	w->chunk = malloc(1 + COFFER_BLOB_CHUNK);
	w->frame = malloc(1 + COFFER_BLOB_CHUNK);
	w->out = malloc(4 + CHUNK_CT_MAX);
	if (w->key == NULL || w->chunk == NULL || w->frame == NULL || w->out == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "blob %s: cannot allocate writer buffers",
		                    w->hex);
		goto out;
	}
	rc = coffer_zstd_new(&w->zstd);
	if (rc == 0 && sealer != NULL)
		rc = coffer_hash_new(&w->digest);
	if (rc < 0)
		goto out;
	coffer_random(w->key, COFFER_KEY_BYTES);
	coffer_random(w->nonce_prefix, NONCE_PREFIX_BYTES);
	rc = writer_put_header(w, pk, secret, sealer);
out:
	if (rc < 0) {
		coffer_blob_writer_free(&w);
		return rc;
	}
	*w_r = w;
	return 0;
}

int coffer_blob_writer_new(int fd, const struct coffer_blob_ids *ids,
                           const unsigned char pk[COFFER_PK_BYTES],
                           const struct coffer_acct_secret *secret, int zstd_level,
                           struct coffer_blob_writer **w_r)
{
	return writer_new(fd, ids, pk, secret, NULL, zstd_level, w_r);
}

int coffer_blob_writer_new_sealed(int fd, const struct coffer_blob_ids *ids,
                                  struct coffer_sealer *sealer, int zstd_level,
                                  struct coffer_blob_writer **w_r)
{
	*w_r = NULL;
	if (sealer == NULL)
		return coffer_err_set(COFFER_EINVAL, "blob: no sealer given");
	return writer_new(fd, ids, NULL, NULL, sealer, zstd_level, w_r);
}

/* Seals the buffered plaintext as chunk w->index and writes it. */
static int writer_flush(struct coffer_blob_writer *w, int final)
{
	unsigned char nonce[COFFER_AEAD_NONCE_BYTES];
	unsigned char ad[CHUNK_AD_BYTES];
	const unsigned char *frame = w->chunk;
	size_t frame_len = 1 + w->fill, zlen = 0;
	int rc;

	/* Keep zstd's output only when strictly smaller than the raw payload:
	 * a capacity of fill - 1 makes zstd itself refuse anything else. */
	w->chunk[0] = MODE_RAW;
	if (w->fill > 1) {
		rc = coffer_zstd_compress(w->zstd, w->frame + 1, w->fill - 1, w->chunk + 1, w->fill,
		                          w->level, &zlen);
		if (w->frame_used < w->fill) /* zstd may fill its whole capacity */
			w->frame_used = w->fill;
		if (rc == 0) {
			w->frame[0] = MODE_ZSTD;
			frame = w->frame;
			frame_len = 1 + zlen;
		} else if (rc != COFFER_ELIMIT) {
			return coffer_err_prefix(rc, "blob %s: chunk %llu: ", w->hex,
			                         (unsigned long long)w->index);
		}
	}
	chunk_nonce(nonce, w->nonce_prefix, w->index);
	chunk_ad(ad, &w->ids, w->index, final);
	coffer_put_u32le(w->out, (uint32_t)(frame_len + COFFER_AEAD_TAG_BYTES));
	rc = coffer_crypto_aead_seal(w->out + 4, frame, frame_len, ad, sizeof ad, nonce, w->key);
	if (rc < 0)
		return coffer_err_prefix(rc, "blob %s: chunk %llu: ", w->hex,
		                         (unsigned long long)w->index);
	rc = coffer_io_write_all(w->fd, w->out, 4 + frame_len + COFFER_AEAD_TAG_BYTES);
	if (rc < 0)
		return coffer_err_prefix(rc, "blob %s: writing chunk %llu: ", w->hex,
		                         (unsigned long long)w->index);
	if (w->digest)
		coffer_hash_update(w->digest, w->out, 4 + frame_len + COFFER_AEAD_TAG_BYTES);
	w->stored_size += 4 + frame_len + COFFER_AEAD_TAG_BYTES;
	w->index++;
	w->fill = 0;
	return 0;
}

static int writer_usable(struct coffer_blob_writer *w)
{
	if (w->failed)
		return coffer_err_set(w->failed, "blob %s: writer failed earlier", w->hex);
	if (w->finished)
		return coffer_err_set(COFFER_EINVAL, "blob %s: write after finish", w->hex);
	return 0;
}

int coffer_blob_writer_write(struct coffer_blob_writer *w, const void *p, size_t n)
{
	const unsigned char *src = p;
	size_t take;
	int rc;

	rc = writer_usable(w);
	if (rc < 0)
		return rc;
	while (n > 0) {
		if (w->fill == COFFER_BLOB_CHUNK) {
			/* More data follows, so the buffered chunk is not the last. */
			rc = writer_flush(w, 0);
			if (rc < 0) {
				w->failed = rc;
				return rc;
			}
		}
		take = COFFER_BLOB_CHUNK - w->fill;
		if (take > n)
			take = n;
		memcpy(w->chunk + 1 + w->fill, src, take);
		w->fill += take;
		if (w->chunk_used < 1 + w->fill)
			w->chunk_used = 1 + w->fill;
		w->plain_size += take;
		src += take;
		n -= take;
	}
	return 0;
}

int coffer_blob_writer_finish(struct coffer_blob_writer *w, uint64_t *plain_size_r,
                              uint64_t *stored_size_r)
{
	int rc;

	rc = writer_usable(w);
	if (rc < 0)
		return rc;
	rc = writer_flush(w, 1);
	coffer_wipe(w->chunk, w->chunk_used);
	w->chunk_used = 0;
	if (rc < 0) {
		w->failed = rc;
		return rc;
	}
	w->finished = 1;
	if (w->digest)
		coffer_hash_final(w->digest, w->sum);
	*plain_size_r = w->plain_size;
	*stored_size_r = w->stored_size;
	return 0;
}

int coffer_blob_writer_digest(const struct coffer_blob_writer *w,
                              unsigned char out[COFFER_HASH_BYTES])
{
	if (w->digest == NULL || !w->finished)
		return coffer_err_set(COFFER_EINVAL, "blob %s: no digest of this writer", w->hex);
	memcpy(out, w->sum, COFFER_HASH_BYTES);
	return 0;
}

void coffer_blob_writer_free(struct coffer_blob_writer **w)
{
	if (w == NULL || *w == NULL)
		return;
	coffer_secure_free((*w)->key);
	coffer_wipe((*w)->chunk, (*w)->chunk_used);
	coffer_wipe((*w)->frame, (*w)->frame_used);
	free((*w)->chunk);
	free((*w)->frame);
	free((*w)->out);
	coffer_zstd_free(&(*w)->zstd);
	coffer_hash_free(&(*w)->digest);
	coffer_wipe(*w, sizeof **w);
	free(*w);
	*w = NULL;
}

/* ---- reader ---- */

struct coffer_blob_reader {
	int fd;
	struct coffer_blob_ids ids;
	char hex[HEX_ID_CHARS];
	unsigned char nonce_prefix[NONCE_PREFIX_BYTES];
	unsigned char *key; /* secure: content key */
	/* offs[k] = file offset of chunk k's length prefix, known for k < noffs.
	 * Chunk k exists (its prefix was read) for k + 1 < noffs. */
	uint64_t *offs;
	size_t noffs, offs_cap;
	int eof_known;              /* the prefix at offs[noffs - 1] hit end of file */
	unsigned char *ct;          /* ciphertext of one chunk */
	unsigned char *frame;       /* secure: decrypted mode byte + payload */
	unsigned char *zplain;      /* secure: decompressed payload */
	const unsigned char *plain; /* the cached chunk: frame + 1 or zplain */
	size_t plain_len;
	uint64_t cached; /* index of the cached chunk, if have_cache */
	int have_cache;
	int size_known;
	uint64_t size;
	uint64_t pos; /* sequential read position */
	struct coffer_zstd *zstd;
};

static int reader_unwrap(struct coffer_blob_reader *r, uint8_t wrap_type, const unsigned char *wrap,
                         const struct coffer_acct_secret *secret)
{
	unsigned char ad[WRAP_AD_BYTES];
	int rc;

	wrap_ad(ad, &r->ids);
	if (wrap_type == WRAP_SEALED) {
		rc = coffer_crypto_seal_open(r->key, wrap, WRAP_SEALED_BYTES, secret->pk,
		                             secret->sk);
	} else if (wrap_type == WRAP_SHARED) {
		rc = coffer_crypto_shared_open(r->key, wrap, WRAP_SEALED_BYTES, ad, sizeof ad,
		                               secret->pk, secret->sk);
	} else {
		rc = coffer_crypto_aead_open(r->key, wrap + COFFER_AEAD_NONCE_BYTES,
		                             COFFER_KEY_BYTES + COFFER_AEAD_TAG_BYTES, ad,
		                             sizeof ad, wrap, secret->data_key);
	}
	if (rc < 0)
		return coffer_err_set(COFFER_ECORRUPT,
		                      "blob %s: cannot be opened with this account's key or ids "
		                      "(content key does not unwrap)",
		                      r->hex);
	return 0;
}

static int reader_header(struct coffer_blob_reader *r, const struct coffer_acct_secret *secret)
{
	unsigned char hdr[HEADER_FIXED_BYTES + WRAP_SEALED_BYTES];
	size_t got, wrap_len, expect_len;
	uint8_t wrap_type;
	int rc;

	rc = coffer_io_pread_full(r->fd, hdr, HEADER_FIXED_BYTES, 0, &got);
	if (rc < 0)
		return coffer_err_prefix(rc, "blob %s: reading header: ", r->hex);
	if (got < HEADER_FIXED_BYTES)
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: header truncated (%zu bytes)",
		                      r->hex, got);
	if (memcmp(hdr, blob_magic, 4) != 0)
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: header: not a Coffer blob",
		                      r->hex);
	if (hdr[4] != COFFER_BLOB_VERSION)
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: header: unsupported version %u",
		                      r->hex, (unsigned)hdr[4]);
	if (hdr[5] != r->ids.kind)
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: header: kind %u, expected %u",
		                      r->hex, (unsigned)hdr[5], (unsigned)r->ids.kind);
	wrap_type = hdr[6];
	if (wrap_type == WRAP_SEALED || wrap_type == WRAP_SHARED)
		expect_len = WRAP_SEALED_BYTES;
	else if (wrap_type == WRAP_SYM)
		expect_len = WRAP_SYM_BYTES;
	else
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: header: unknown key wrap %u",
		                      r->hex, (unsigned)wrap_type);
	if (hdr[7] != 0)
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: header: unknown flags 0x%02x",
		                      r->hex, (unsigned)hdr[7]);
	if (coffer_get_u32le(hdr + 8) != COFFER_BLOB_CHUNK)
		return coffer_err_set(COFFER_ECORRUPT,
		                      "blob %s: header: chunk size %u, expected %u", r->hex,
		                      coffer_get_u32le(hdr + 8), COFFER_BLOB_CHUNK);
	memcpy(r->nonce_prefix, hdr + 12, NONCE_PREFIX_BYTES);
	wrap_len = (size_t)hdr[28] | (size_t)hdr[29] << 8;
	if (wrap_len != expect_len)
		return coffer_err_set(COFFER_ECORRUPT,
		                      "blob %s: header: key wrap of %zu bytes, expected %zu",
		                      r->hex, wrap_len, expect_len);
	rc = coffer_io_pread_full(r->fd, hdr + HEADER_FIXED_BYTES, wrap_len, HEADER_FIXED_BYTES,
	                          &got);
	if (rc < 0)
		return coffer_err_prefix(rc, "blob %s: reading header: ", r->hex);
	if (got < wrap_len)
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: header truncated in key wrap",
		                      r->hex);
	rc = reader_unwrap(r, wrap_type, hdr + HEADER_FIXED_BYTES, secret);
	if (rc < 0)
		return rc;
	r->offs[0] = HEADER_FIXED_BYTES + wrap_len;
	r->noffs = 1;
	return 0;
}

int coffer_blob_reader_open(int fd, const struct coffer_blob_ids *ids,
                            const struct coffer_acct_secret *secret,
                            struct coffer_blob_reader **r_r)
{
	struct coffer_blob_reader *r;
	int rc;

	*r_r = NULL;
	if (!kind_valid(ids->kind))
		return coffer_err_set(COFFER_EINVAL, "blob: unknown kind %u", (unsigned)ids->kind);
	rc = coffer_crypto_init();
	if (rc < 0)
		return rc;
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return coffer_err_set(COFFER_ENOMEM, "blob: cannot allocate reader");
	r->fd = fd;
	r->ids = *ids;
	hex_id(r->hex, ids->blob_id);
	r->offs_cap = 16;
	r->offs = malloc(r->offs_cap * sizeof *r->offs);
	r->key = coffer_secure_alloc(COFFER_KEY_BYTES);
	r->ct = malloc(CHUNK_CT_MAX);
	r->frame = malloc(CHUNK_CT_MAX - COFFER_AEAD_TAG_BYTES);
	r->zplain = malloc(COFFER_BLOB_CHUNK);
	if (r->offs == NULL || r->key == NULL || r->ct == NULL || r->frame == NULL ||
	    r->zplain == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "blob %s: cannot allocate reader buffers",
		                    r->hex);
		goto out;
	}
	rc = coffer_zstd_new(&r->zstd);
	if (rc < 0)
		goto out;
	rc = reader_header(r, secret);
out:
	if (rc < 0) {
		coffer_blob_reader_free(&r);
		return rc;
	}
	*r_r = r;
	return 0;
}

/* Reads the length prefix at offs[noffs - 1]: either learns the next chunk's
 * offset or that the file ends there. */
static int reader_scan_one(struct coffer_blob_reader *r)
{
	unsigned char pfx[4];
	uint64_t at = r->offs[r->noffs - 1], index = r->noffs - 1;
	size_t got;
	uint32_t len;
	int rc;

	rc = coffer_io_pread_full(r->fd, pfx, sizeof pfx, (off_t)at, &got);
	if (rc < 0)
		return coffer_err_prefix(rc, "blob %s: reading chunk %llu: ", r->hex,
		                         (unsigned long long)index);
	if (got == 0) {
		r->eof_known = 1;
		return 0;
	}
	if (got < sizeof pfx)
		return coffer_err_set(COFFER_ECORRUPT,
		                      "blob %s: chunk %llu: truncated length, or trailing data",
		                      r->hex, (unsigned long long)index);
	len = coffer_get_u32le(pfx);
	if (len < CHUNK_CT_MIN || len > CHUNK_CT_MAX)
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: chunk %llu: bad length %u", r->hex,
		                      (unsigned long long)index, len);
	if (at > (uint64_t)INT64_MAX - 4 - len)
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: chunk %llu: offset out of range",
		                      r->hex, (unsigned long long)index);
	if (coffer_array_grow(&r->offs, &r->offs_cap, r->noffs, sizeof *r->offs, 16) < 0)
		return coffer_err_set(COFFER_ENOMEM, "blob %s: cannot grow chunk table", r->hex);
	r->offs[r->noffs++] = at + 4 + len;
	return 0;
}

/* Scans far enough to know whether chunk i exists and, if it does, whether a
 * chunk follows it. */
static int reader_scan_to(struct coffer_blob_reader *r, uint64_t i)
{
	int rc;

	while (!r->eof_known && r->noffs < i + 3) {
		rc = reader_scan_one(r);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static uint64_t reader_nchunks_known(const struct coffer_blob_reader *r)
{
	return r->noffs - 1;
}

static int chunk_open(struct coffer_blob_reader *r, uint64_t i, size_t ct_len, int final)
{
	unsigned char nonce[COFFER_AEAD_NONCE_BYTES];
	unsigned char ad[CHUNK_AD_BYTES];

	chunk_nonce(nonce, r->nonce_prefix, i);
	chunk_ad(ad, &r->ids, i, final);
	return coffer_crypto_aead_open(r->frame, r->ct, ct_len, ad, sizeof ad, nonce, r->key);
}

/* Decrypts chunk i (which must exist: i + 1 < noffs) into the cache. */
static int reader_load(struct coffer_blob_reader *r, uint64_t i)
{
	unsigned long long ci = (unsigned long long)i;
	size_t ct_len, got, frame_len, zlen;
	int last, rc;

	if (r->have_cache && r->cached == i)
		return 0;
	r->have_cache = 0;
	ct_len = (size_t)(r->offs[i + 1] - r->offs[i] - 4);
	rc = coffer_io_pread_full(r->fd, r->ct, ct_len, (off_t)(r->offs[i] + 4), &got);
	if (rc < 0)
		return coffer_err_prefix(rc, "blob %s: reading chunk %llu: ", r->hex, ci);
	if (got < ct_len)
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: truncated in chunk %llu", r->hex,
		                      ci);
	last = r->eof_known && reader_nchunks_known(r) == i + 1;
	if (chunk_open(r, i, ct_len, last) < 0) {
		/* Only to name the damage: the other flag is never accepted. */
		if (chunk_open(r, i, ct_len, !last) == 0) {
			coffer_wipe(r->frame, ct_len - COFFER_AEAD_TAG_BYTES);
			if (last)
				return coffer_err_set(COFFER_ECORRUPT,
				                      "blob %s: truncated after chunk %llu "
				                      "(final chunk missing)",
				                      r->hex, ci);
			return coffer_err_set(COFFER_ECORRUPT,
			                      "blob %s: trailing data after final chunk %llu",
			                      r->hex, ci);
		}
		if (i == 0)
			return coffer_err_set(COFFER_ECORRUPT,
			                      "blob %s: cannot be opened with this account's key "
			                      "or ids (chunk 0 fails authentication)",
			                      r->hex);
		return coffer_err_set(COFFER_ECORRUPT,
		                      "blob %s: chunk %llu fails authentication (damaged)", r->hex,
		                      ci);
	}
	frame_len = ct_len - COFFER_AEAD_TAG_BYTES;
	if (r->frame[0] == MODE_RAW) {
		r->plain = r->frame + 1;
		r->plain_len = frame_len - 1;
	} else if (r->frame[0] == MODE_ZSTD) {
		rc = coffer_zstd_decompress(r->zstd, r->zplain, COFFER_BLOB_CHUNK, r->frame + 1,
		                            frame_len - 1, &zlen);
		if (rc < 0)
			return coffer_err_prefix(COFFER_ECORRUPT, "blob %s: chunk %llu: ", r->hex,
			                         ci);
		r->plain = r->zplain;
		r->plain_len = zlen;
	} else {
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: chunk %llu: unknown mode %u",
		                      r->hex, ci, (unsigned)r->frame[0]);
	}
	if (!last && r->plain_len != COFFER_BLOB_CHUNK)
		return coffer_err_set(COFFER_ECORRUPT,
		                      "blob %s: chunk %llu holds %zu bytes, expected %u", r->hex,
		                      ci, r->plain_len, COFFER_BLOB_CHUNK);
	if (last && i > 0 && r->plain_len == 0)
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: empty final chunk %llu after data",
		                      r->hex, ci);
	if (last) {
		r->size = i * COFFER_BLOB_CHUNK + r->plain_len;
		r->size_known = 1;
	}
	r->cached = i;
	r->have_cache = 1;
	return 0;
}

/* Scans to the end of the file and authenticates the final chunk. */
static int reader_find_size(struct coffer_blob_reader *r)
{
	int rc;

	while (!r->eof_known) {
		rc = reader_scan_one(r);
		if (rc < 0)
			return rc;
	}
	if (reader_nchunks_known(r) == 0)
		return coffer_err_set(COFFER_ECORRUPT, "blob %s: truncated (no chunks)", r->hex);
	return reader_load(r, reader_nchunks_known(r) - 1);
}

int coffer_blob_reader_pread(struct coffer_blob_reader *r, void *buf, size_t cap, uint64_t off,
                             size_t *n_r)
{
	unsigned char *dst = buf;
	size_t total = 0, take;
	uint64_t at, i, within;
	int rc = 0;

	while (total < cap) {
		at = off + total;
		if (at < off)
			break; /* past any possible end */
		if (r->size_known && at >= r->size)
			break;
		i = at / COFFER_BLOB_CHUNK;
		rc = reader_scan_to(r, i);
		if (rc < 0)
			goto out;
		if (i + 1 >= r->noffs) {
			/* No chunk i: the end is authenticated by the final chunk. */
			rc = reader_find_size(r);
			if (rc < 0)
				goto out;
			break;
		}
		rc = reader_load(r, i);
		if (rc < 0)
			goto out;
		within = at - i * COFFER_BLOB_CHUNK;
		if (within >= r->plain_len)
			break;
		take = r->plain_len - (size_t)within;
		if (take > cap - total)
			take = cap - total;
		memcpy(dst + total, r->plain + within, take);
		total += take;
	}
out:
	if (rc < 0) {
		coffer_wipe(buf, total);
		return rc;
	}
	*n_r = total;
	return 0;
}

int coffer_blob_reader_read(struct coffer_blob_reader *r, void *buf, size_t cap, size_t *n_r)
{
	size_t n;
	int rc;

	rc = coffer_blob_reader_pread(r, buf, cap, r->pos, &n);
	if (rc < 0)
		return rc;
	r->pos += n;
	*n_r = n;
	return 0;
}

int coffer_blob_reader_size(struct coffer_blob_reader *r, uint64_t *size_r)
{
	int rc;

	if (!r->size_known) {
		rc = reader_find_size(r);
		if (rc < 0)
			return rc;
	}
	*size_r = r->size;
	return 0;
}

void coffer_blob_reader_free(struct coffer_blob_reader **r)
{
	if (r == NULL || *r == NULL)
		return;
	coffer_secure_free((*r)->key);
	coffer_wipe((*r)->frame, (*r)->frame ? CHUNK_CT_MAX - COFFER_AEAD_TAG_BYTES : 0);
	coffer_wipe((*r)->zplain, (*r)->zplain ? COFFER_BLOB_CHUNK : 0);
	free((*r)->frame);
	free((*r)->zplain);
	free((*r)->ct);
	free((*r)->offs);
	coffer_zstd_free(&(*r)->zstd);
	coffer_wipe(*r, sizeof **r);
	free(*r);
	*r = NULL;
}
