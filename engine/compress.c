/*
 * compress.c: the zstd adapter (see compress.h).
 *
 * This is the only file that includes <zstd.h>. zstd reports errors folded
 * into size_t results; compress_error() and decompress_error() translate
 * them to COFFER_E* codes with a detail line, so nothing of zstd's error
 * scheme leaks out.
 *
 * Wiped state: contexts are created with ZSTD_createCCtx_advanced() and a
 * custom allocator that wipes every block on free, so the window and tables
 * (which hold plaintext) do not linger in freed memory. They are plaintext,
 * not keys, so they live in ordinary memory (guarded, mlock'd memory per
 * message cost more than the compression). That API sits in zstd's "static
 * linking only" section; it has kept its signature since zstd 1.0 and
 * libzstd.so exports it.
 *
 * Hostile frames: decompression first checks that the input is one standard
 * frame (magic number, frame size equal to the input, declared content size
 * within cap) and then decompresses in one pass into the caller's buffer,
 * whose capacity zstd never exceeds (dstSize_tooSmall, reported as
 * COFFER_ECORRUPT). One-pass decompression allocates no window, so a frame
 * that claims a huge window costs nothing.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include "compress.h"

#include "crypto.h"
#include "errors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

struct coffer_zstd {
	ZSTD_CCtx *cctx; /* created on first compression */
	ZSTD_DCtx *dctx; /* created on first decompression */
};

/* Each block carries its size in a 64-byte header (keeping zstd's 64-byte
 * alignment for its tables), so it can be wiped on free. */
#define ZHDR 64u

static void *secure_zalloc(void *opaque, size_t size)
{
	unsigned char *p;

	(void)opaque;
	if (size > SIZE_MAX - ZHDR || posix_memalign((void **)&p, 64, size + ZHDR) != 0)
		return NULL;
	memcpy(p, &size, sizeof size);
	return p + ZHDR;
}

static void secure_zfree(void *opaque, void *address)
{
	unsigned char *p = address;
	size_t size;

	(void)opaque;
	if (p == NULL)
		return;
	p -= ZHDR;
	memcpy(&size, p, sizeof size);
	coffer_wipe(p, size + ZHDR);
	free(p);
}

static const ZSTD_customMem secure_mem = { secure_zalloc, secure_zfree, NULL };

size_t coffer_compress_bound(size_t n)
{
	size_t b = ZSTD_compressBound(n);

	return ZSTD_isError(b) ? 0 : b;
}

int coffer_compress_check_level(int level)
{
	if (level != 0 && (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()))
		return coffer_err_set(COFFER_EINVAL, "compress: level %d outside %d..%d", level,
		                      ZSTD_minCLevel(), ZSTD_maxCLevel());
	return 0;
}

int coffer_zstd_new(struct coffer_zstd **z_r)
{
	struct coffer_zstd *z;

	*z_r = NULL;
	z = calloc(1, sizeof *z);
	if (z == NULL)
		return coffer_err_set(COFFER_ENOMEM, "compress: cannot allocate context");
	*z_r = z;
	return 0;
}

void coffer_zstd_free(struct coffer_zstd **z)
{
	if (z == NULL || *z == NULL)
		return;
	ZSTD_freeCCtx((*z)->cctx);
	ZSTD_freeDCtx((*z)->dctx);
	free(*z);
	*z = NULL;
}

static int compress_error(size_t r)
{
	switch (ZSTD_getErrorCode(r)) {
	case ZSTD_error_dstSize_tooSmall:
		return coffer_err_set(COFFER_ELIMIT, "compress: output does not fit its buffer");
	case ZSTD_error_memory_allocation:
		return coffer_err_set(COFFER_ENOMEM, "compress: out of memory");
	default: break;
	}
	return coffer_err_set(COFFER_EINVAL, "compress: zstd failed: %s", ZSTD_getErrorName(r));
}

static int decompress_error(size_t r, size_t cap)
{
	switch (ZSTD_getErrorCode(r)) {
	case ZSTD_error_dstSize_tooSmall:
		return coffer_err_set(COFFER_ECORRUPT,
		                      "compress: compressed data expands past %zu bytes", cap);
	case ZSTD_error_memory_allocation:
		return coffer_err_set(COFFER_ENOMEM, "compress: out of memory");
	default: break;
	}
	return coffer_err_set(COFFER_ECORRUPT, "compress: bad compressed data: %s",
	                      ZSTD_getErrorName(r));
}

int coffer_zstd_compress(struct coffer_zstd *z, void *dst, size_t cap, const void *src, size_t n,
                         int level, size_t *outlen_r)
{
	size_t r;

	if (coffer_compress_check_level(level) < 0)
		return COFFER_EINVAL;
	if (level == 0)
		level = COFFER_COMPRESS_DEFAULT_LEVEL;
	if (z->cctx == NULL) {
		z->cctx = ZSTD_createCCtx_advanced(secure_mem);
		if (z->cctx == NULL)
			return coffer_err_set(COFFER_ENOMEM, "compress: cannot create context");
	}
	r = ZSTD_compressCCtx(z->cctx, dst, cap, src, n, level);
	if (ZSTD_isError(r))
		return compress_error(r);
	*outlen_r = r;
	return 0;
}

int coffer_zstd_decompress(struct coffer_zstd *z, void *dst, size_t cap, const void *src, size_t n,
                           size_t *outlen_r)
{
	const unsigned char *p = src;
	unsigned long long content;
	size_t frame, r;

	if (n < 4 || ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	              (uint32_t)p[3] << 24) != ZSTD_MAGICNUMBER)
		return coffer_err_set(COFFER_ECORRUPT, "compress: not a zstd frame");
	frame = ZSTD_findFrameCompressedSize(src, n);
	if (ZSTD_isError(frame))
		return decompress_error(frame, cap);
	if (frame != n)
		return coffer_err_set(COFFER_ECORRUPT, "compress: %zu bytes after the zstd frame",
		                      n - frame);
	content = ZSTD_getFrameContentSize(src, n);
	if (content == ZSTD_CONTENTSIZE_ERROR)
		return coffer_err_set(COFFER_ECORRUPT, "compress: bad zstd frame header");
	if (content != ZSTD_CONTENTSIZE_UNKNOWN && content > cap)
		return coffer_err_set(COFFER_ECORRUPT,
		                      "compress: frame declares %llu bytes, more than %zu", content,
		                      cap);
	if (z->dctx == NULL) {
		z->dctx = ZSTD_createDCtx_advanced(secure_mem);
		if (z->dctx == NULL)
			return coffer_err_set(COFFER_ENOMEM, "compress: cannot create context");
	}
	r = ZSTD_decompressDCtx(z->dctx, dst, cap, src, n);
	if (ZSTD_isError(r))
		return decompress_error(r, cap);
	*outlen_r = r;
	return 0;
}

int coffer_compress(void *dst, size_t cap, const void *src, size_t n, int level, size_t *outlen_r)
{
	struct coffer_zstd *z;
	int rc;

	rc = coffer_zstd_new(&z);
	if (rc < 0)
		return rc;
	rc = coffer_zstd_compress(z, dst, cap, src, n, level, outlen_r);
	coffer_zstd_free(&z);
	return rc;
}

int coffer_decompress(void *dst, size_t cap, const void *src, size_t n, size_t *outlen_r)
{
	struct coffer_zstd *z;
	int rc;

	rc = coffer_zstd_new(&z);
	if (rc < 0)
		return rc;
	rc = coffer_zstd_decompress(z, dst, cap, src, n, outlen_r);
	coffer_zstd_free(&z);
	return rc;
}
