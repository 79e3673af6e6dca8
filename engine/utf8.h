/*
 * utf8.h: strict UTF-8 decoding, validation and encoding, the one decoder
 * every module that inspects text uses (names, headers, Maildir names, JSON).
 *
 * "Valid" is the Unicode definition (Unicode 15, table 3-7): the shortest form
 * of a scalar value, so no overlong forms (C0 80, E0 80 80, ...), no UTF-16
 * surrogates U+D800..U+DFFF (ED A0 80 ...), nothing above U+10FFFF (F4 90 80
 * 80 and the lead bytes F5..FF), and no sequence cut short by the end of the
 * input. The NUL byte and control characters are valid UTF-8; refusing them is
 * the caller's policy.
 *
 * The functions read only the n bytes they are given (never a terminating
 * NUL), never allocate, keep no state and are safe from any thread. Input may
 * be hostile: every function is linear in n.
 */
#ifndef COFFER_UTF8_H
#define COFFER_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The longest encoded scalar value, in bytes. */
#define COFFER_UTF8_MAX 4
/* U+FFFD REPLACEMENT CHARACTER, encoded (3 bytes). */
#define COFFER_UTF8_REPLACEMENT "\xef\xbf\xbd"
#define COFFER_UTF8_REPLACEMENT_LEN 3

/* The scalar value encoded at the start of the n bytes at p: its length (1..4)
 * with the value in *cp_r, or -1 (not a COFFER_E* code; no detail is set) if
 * the bytes do not start with a valid sequence or n is 0. *cp_r is left
 * untouched on -1. */
int coffer_utf8_decode(const void *p, size_t n, uint32_t *cp_r);

/* How many bytes to step over at p, 0 only when n is 0. Where
 * coffer_utf8_decode() returns -1 for the same bytes, the length (1..3) of
 * the maximal ill-formed subpart at p: the lead byte and the continuation
 * bytes that could still have begun a valid sequence. Replacing each such
 * subpart with one U+FFFD and going on after it is the Unicode "best
 * practice" (chapter 3.9, as in the WHATWG decoder): "\xe2\x82" cut short is
 * one U+FFFD, "\xc0\xaf" is two. Where the bytes start a valid sequence, its
 * length (1..4). */
size_t coffer_utf8_invalid_len(const void *p, size_t n);

/* 1 if all n bytes at p are valid UTF-8 (0 bytes are), else 0. */
int coffer_utf8_valid(const void *p, size_t n);

/* Writes the UTF-8 form of the scalar value cp to out, which must hold
 * COFFER_UTF8_MAX bytes, and returns its length (1..4). Returns -1 and writes
 * nothing if cp is a surrogate (U+D800..U+DFFF) or above U+10FFFF. */
int coffer_utf8_encode(uint32_t cp, unsigned char *out);

#endif
