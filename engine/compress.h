/*
 * compress.h: the zstd adapter. Every (de)compression in Coffer goes through
 * this file; no other module includes <zstd.h>, and zstd's size_t error
 * codes never leave compress.c: callers see COFFER_E* codes only.
 *
 * The interface is one-shot on caller-supplied buffers with capacities, as
 * the blob format compresses each 64 KiB chunk alone (docs/format.md).
 *
 * Untrusted input: coffer_decompress() treats src as hostile. It accepts
 * exactly one standard zstd frame (no legacy, skippable or concatenated
 * frames, no trailing bytes) and refuses, with COFFER_ECORRUPT, any frame that
 * would produce more than cap bytes; it never writes past dst + cap.
 *
 * Memory: zstd's working state (which holds plaintext) is allocated through
 * crypto.h's secure memory, so it is never swapped and is wiped when freed.
 * A struct coffer_zstd caches that state for a caller that compresses many
 * chunks; the plain functions create and free one per call.
 *
 * Thread safety: a struct coffer_zstd is used by one thread at a time.
 */
#ifndef COFFER_COMPRESS_H
#define COFFER_COMPRESS_H

#include <stddef.h>

#define COFFER_COMPRESS_DEFAULT_LEVEL 3

/* Largest output of coffer_compress() for n input bytes (ZSTD_compressBound).
 * Returns 0 if n is too large to compress at all. */
size_t coffer_compress_bound(size_t n);

/* 0 if level is 0 (the default) or within zstd's range, else COFFER_EINVAL. */
int coffer_compress_check_level(int level);

/* Reusable (de)compression state; created lazily inside on first use. */
struct coffer_zstd;
int coffer_zstd_new(struct coffer_zstd **z_r);
/* Frees and wipes; accepts NULL and *z == NULL. */
void coffer_zstd_free(struct coffer_zstd **z);

/*
 * Compresses n bytes of src into one zstd frame in dst (capacity cap), the
 * content size recorded in the frame header. level 0 means
 * COFFER_COMPRESS_DEFAULT_LEVEL; otherwise it must lie within zstd's range
 * (COFFER_EINVAL if not). COFFER_ELIMIT if the frame does not fit in cap (a
 * cap of coffer_compress_bound(n) always fits); callers that only want the
 * output when it is smaller than some size can pass that size as cap.
 */
int coffer_compress(void *dst, size_t cap, const void *src, size_t n, int level, size_t *outlen_r);
int coffer_zstd_compress(struct coffer_zstd *z, void *dst, size_t cap, const void *src, size_t n,
                         int level, size_t *outlen_r);

/*
 * Decompresses exactly one zstd frame src[0..n) into dst (capacity cap).
 * COFFER_ECORRUPT if src is not exactly one valid frame or if its output
 * would exceed cap. *outlen_r is set only on success.
 */
int coffer_decompress(void *dst, size_t cap, const void *src, size_t n, size_t *outlen_r);
int coffer_zstd_decompress(struct coffer_zstd *z, void *dst, size_t cap, const void *src, size_t n,
                           size_t *outlen_r);

#endif
