/*
 * buf.c: growable buffers and bounded readers (see buf.h).
 *
 * Growth doubles the capacity, so n appends cost O(n) copies in total; the
 * same holds for arrays grown by coffer_array_grow(). Capacities are checked
 * for overflow before any arithmetic. JSON strings read their input as UTF-8
 * through utf8.h, so what they write is always valid UTF-8 whatever the bytes
 * were.
 */
#include "buf.h"

#include "errors.h"
#include "utf8.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int coffer_buf_reserve(struct coffer_buf *b, size_t extra)
{
	size_t need, cap;
	unsigned char *p;

	if (b->failed)
		return COFFER_ENOMEM;
	/* no object may exceed PTRDIFF_MAX bytes: refuse before asking malloc */
	if (extra > (size_t)PTRDIFF_MAX - b->len - 1)
		goto fail;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > (size_t)PTRDIFF_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		goto fail;
	b->data = p;
	b->cap = cap;
	return 0;
fail:
	b->failed = 1;
	return COFFER_ENOMEM;
}

int coffer_array_grow(void *pp, size_t *cap, size_t n, size_t size, size_t first)
{
	size_t max, ncap;
	void *p, *np;

	if (n < *cap)
		return 0;
	/* elements in the largest object (PTRDIFF_MAX bytes); n + 1 must fit */
	max = size ? (size_t)PTRDIFF_MAX / size : 0;
	if (n >= max)
		return COFFER_ENOMEM;
	if (*cap == 0)
		ncap = first;
	else
		ncap = *cap > max / 2 ? max : 2 * *cap;
	if (ncap <= n || ncap > max)
		ncap = n + 1;
	/* pp points at a T *, not at a void *: copy the pointer, never alias it */
	memcpy(&p, pp, sizeof p);
	np = realloc(p, ncap * size);
	if (np == NULL)
		return COFFER_ENOMEM;
	memcpy(pp, &np, sizeof np);
	*cap = ncap;
	return 0;
}

int coffer_buf_append(struct coffer_buf *b, const void *p, size_t n)
{
	if (coffer_buf_reserve(b, n) < 0)
		return COFFER_ENOMEM;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int coffer_buf_puts(struct coffer_buf *b, const char *s)
{
	return coffer_buf_append(b, s, strlen(s));
}

int coffer_buf_putc(struct coffer_buf *b, int c)
{
	unsigned char ch = (unsigned char)c;

	return coffer_buf_append(b, &ch, 1);
}

int coffer_buf_printf(struct coffer_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || coffer_buf_reserve(b, (size_t)n) < 0)
		return COFFER_ENOMEM;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int coffer_buf_put_u8(struct coffer_buf *b, uint8_t v)
{
	return coffer_buf_append(b, &v, 1);
}

int coffer_buf_put_u32le(struct coffer_buf *b, uint32_t v)
{
	unsigned char p[4];

	coffer_put_u32le(p, v);
	return coffer_buf_append(b, p, sizeof p);
}

int coffer_buf_put_u64le(struct coffer_buf *b, uint64_t v)
{
	unsigned char p[8];

	coffer_put_u64le(p, v);
	return coffer_buf_append(b, p, sizeof p);
}

int coffer_buf_put_json_str(struct coffer_buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	uint32_t cp;
	int len;

	coffer_buf_putc(b, '"');
	while (i < n) {
		unsigned char c = p[i];

		if (c >= 0x80) {
			len = coffer_utf8_decode(p + i, n - i, &cp);
			if (len > 0) {
				coffer_buf_append(b, p + i, (size_t)len);
				i += (size_t)len;
			} else {
				coffer_buf_append(b, COFFER_UTF8_REPLACEMENT,
				                  COFFER_UTF8_REPLACEMENT_LEN);
				i += coffer_utf8_invalid_len(p + i, n - i);
			}
			continue;
		}
		switch (c) {
		case '"': coffer_buf_puts(b, "\\\""); break;
		case '\\': coffer_buf_puts(b, "\\\\"); break;
		case '\n': coffer_buf_puts(b, "\\n"); break;
		case '\r': coffer_buf_puts(b, "\\r"); break;
		case '\t': coffer_buf_puts(b, "\\t"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				coffer_buf_printf(b, "\\u%04x", c);
			else
				coffer_buf_putc(b, c);
		}
		i++;
	}
	coffer_buf_putc(b, '"');
	return coffer_buf_ok(b);
}

int coffer_buf_ok(const struct coffer_buf *b)
{
	return b->failed ? COFFER_ENOMEM : 0;
}

const char *coffer_buf_str(const struct coffer_buf *b)
{
	return b->data ? (const char *)b->data : "";
}

void coffer_buf_reset(struct coffer_buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data)
		b->data[0] = '\0';
}

void coffer_buf_free(struct coffer_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

void coffer_rd_init(struct coffer_rd *r, const void *p, size_t n)
{
	r->p = p;
	r->left = n;
	r->failed = 0;
}

int coffer_rd_bytes(struct coffer_rd *r, size_t n, const unsigned char **p_r)
{
	if (r->failed || n > r->left) {
		r->failed = 1;
		return COFFER_ECORRUPT;
	}
	*p_r = r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

int coffer_rd_copy(struct coffer_rd *r, void *dst, size_t n)
{
	const unsigned char *p;

	if (coffer_rd_bytes(r, n, &p) < 0)
		return COFFER_ECORRUPT;
	memcpy(dst, p, n);
	return 0;
}

int coffer_rd_u8(struct coffer_rd *r, uint8_t *v_r)
{
	return coffer_rd_copy(r, v_r, 1);
}

int coffer_rd_u32le(struct coffer_rd *r, uint32_t *v_r)
{
	const unsigned char *p;
	uint32_t v = 0;

	if (coffer_rd_bytes(r, 4, &p) < 0)
		return COFFER_ECORRUPT;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	*v_r = v;
	return 0;
}

int coffer_rd_u64le(struct coffer_rd *r, uint64_t *v_r)
{
	const unsigned char *p;
	uint64_t v = 0;

	if (coffer_rd_bytes(r, 8, &p) < 0)
		return COFFER_ECORRUPT;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	*v_r = v;
	return 0;
}

void coffer_put_u32be(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (24 - 8 * i));
}

void coffer_put_u64be(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

uint32_t coffer_get_u32be(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint64_t coffer_get_u64be(const unsigned char *p)
{
	return ((uint64_t)coffer_get_u32be(p) << 32) | coffer_get_u32be(p + 4);
}

void coffer_put_u32le(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

void coffer_put_u64le(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

uint32_t coffer_get_u32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t coffer_get_u64le(const unsigned char *p)
{
	return coffer_get_u32le(p) | (uint64_t)coffer_get_u32le(p + 4) << 32;
}
