/*
 * buf.h: a growable byte buffer, the one type Coffer uses for paths, names,
 * records and output so that no fixed-size array ever bounds untrusted input.
 *
 * The buffer owns its memory. data is always NUL-terminated past len (so
 * text can be used as a C string), and len never counts that NUL. A buffer
 * that failed to grow keeps its old contents and every later append fails
 * with COFFER_ENOMEM, so a chain of appends needs one check at the end via
 * coffer_buf_ok(). Not for secrets: use crypto.h's secure memory for those.
 * coffer_array_grow() grows arrays of any element type the same way.
 */
#ifndef COFFER_BUF_H
#define COFFER_BUF_H

#include <stddef.h>
#include <stdint.h>

struct coffer_buf {
	unsigned char *data; /* NULL until the first append */
	size_t len;
	size_t cap;
	int failed; /* an allocation failed; sticky */
};

/* clang-format off */
#define COFFER_BUF_INIT { NULL, 0, 0, 0 }
/* clang-format on */

/* Make room for extra more bytes; 0 or COFFER_ENOMEM. */
int coffer_buf_reserve(struct coffer_buf *b, size_t extra);
int coffer_buf_append(struct coffer_buf *b, const void *p, size_t n);
int coffer_buf_puts(struct coffer_buf *b, const char *s);
int coffer_buf_putc(struct coffer_buf *b, int c);
int coffer_buf_printf(struct coffer_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Little-endian fixed-width integers, for records. */
int coffer_buf_put_u8(struct coffer_buf *b, uint8_t v);
int coffer_buf_put_u32le(struct coffer_buf *b, uint32_t v);
int coffer_buf_put_u64le(struct coffer_buf *b, uint64_t v);
/* Appends the n bytes at s as a JSON string literal, quotes included, that is
 * always valid JSON and valid UTF-8. The bytes are read as UTF-8: valid
 * sequences are copied as they are (C1 controls and all, which JSON allows);
 * '"', '\\', and the controls below 0x20 and DEL are escaped; each invalid
 * sequence (each maximal ill-formed subpart in Unicode's sense: "\xe2\x82" cut
 * short is one, an overlong "\xc0\xaf" is two) becomes U+FFFD. NUL bytes
 * within n are data (\u0000). */
int coffer_buf_put_json_str(struct coffer_buf *b, const char *s, size_t n);

/* 0 if every append so far succeeded, else COFFER_ENOMEM. */
int coffer_buf_ok(const struct coffer_buf *b);
/* The contents as a C string; "" for an empty buffer. */
const char *coffer_buf_str(const struct coffer_buf *b);
void coffer_buf_reset(struct coffer_buf *b); /* len = 0, keeps memory */
void coffer_buf_free(struct coffer_buf *b);  /* frees, back to INIT */

/* Makes room for element n of a growable array: pp is the address of the
 * array pointer (a T **, passed as &a->v; NULL when nothing is allocated yet),
 * *cap its capacity in elements of size (> 0) bytes, n the elements in use.
 * When n == *cap the capacity doubles (to first when it was 0), so n
 * additions cost O(n) copies in total; when n < *cap nothing changes. The
 * byte count is checked for overflow before realloc is asked. 0, or
 * COFFER_ENOMEM with *pp and *cap as they were (no message is set: the caller
 * names what it was growing with coffer_err_set()). */
int coffer_array_grow(void *pp, size_t *cap, size_t n, size_t size, size_t first);

/* A bounds-checked reader over a byte range, for decoding records read from
 * disk. Every get fails (returns COFFER_ECORRUPT) once the range is short,
 * and the failure is sticky. */
struct coffer_rd {
	const unsigned char *p;
	size_t left;
	int failed;
};

void coffer_rd_init(struct coffer_rd *r, const void *p, size_t n);
int coffer_rd_u8(struct coffer_rd *r, uint8_t *v_r);
int coffer_rd_u32le(struct coffer_rd *r, uint32_t *v_r);
int coffer_rd_u64le(struct coffer_rd *r, uint64_t *v_r);
/* Points *p_r into the range (no copy); valid as long as the range is. */
int coffer_rd_bytes(struct coffer_rd *r, size_t n, const unsigned char **p_r);
int coffer_rd_copy(struct coffer_rd *r, void *dst, size_t n);

/* Big-endian helpers for LMDB keys, which must sort numerically. */
void coffer_put_u32be(unsigned char *p, uint32_t v);
void coffer_put_u64be(unsigned char *p, uint64_t v);
uint32_t coffer_get_u32be(const unsigned char *p);
uint64_t coffer_get_u64be(const unsigned char *p);
/* Little-endian, for fixed-size values and associated data. */
void coffer_put_u32le(unsigned char *p, uint32_t v);
void coffer_put_u64le(unsigned char *p, uint64_t v);
uint32_t coffer_get_u32le(const unsigned char *p);
uint64_t coffer_get_u64le(const unsigned char *p);

#endif
