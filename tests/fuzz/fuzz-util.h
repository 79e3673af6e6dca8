/*
 * fuzz-util.h: checks and helpers shared by the libFuzzer targets in
 * tests/fuzz/ (linked into each of them; not part of coffer itself).
 *
 * Provides:
 *   - the libFuzzer entry point prototypes (for -Wmissing-prototypes);
 *   - fuzz_cstr(): the input copied to a NUL-terminated heap string;
 *   - fuzz_check_refusal(), fuzz_check_refusal_empty(): a refusal carries the
 *     expected code and a non-empty detail free of control bytes (and, for
 *     the second, left its output buffer empty);
 *   - fuzz_same(): a buffer holds exactly the given bytes;
 *   - fuzz_no_ctl(): bytes free of C0 controls and DEL;
 *   - fuzz_utf8_valid(), fuzz_utf8_clean(): an independent strict UTF-8
 *     check (no overlongs, surrogates or code points above U+10FFFF), the
 *     second also refusing C0, DEL and C1 controls.
 * The check_ and same functions abort() when the invariant does not hold;
 * the others return 1 (holds) or 0.
 */
#ifndef COFFER_FUZZ_UTIL_H
#define COFFER_FUZZ_UTIL_H

#include "engine/buf.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A malloc'ed copy of data[0..size) followed by a NUL, for parsers that take
 * a C string; free() it. Aborts when out of memory (inputs are small). */
char *fuzz_cstr(const uint8_t *data, size_t size);

/* Aborts unless r == want and coffer_errmsg() is non-empty and free of
 * control bytes (C0, DEL). */
void fuzz_check_refusal(int r, int want);

/* fuzz_check_refusal(r, want), and aborts unless out is empty. */
void fuzz_check_refusal_empty(int r, int want, const struct coffer_buf *out);

/* Aborts unless b holds exactly the n bytes at p. */
void fuzz_same(const struct coffer_buf *b, const void *p, size_t n);

/* 1 if no byte of p[0..n) is below 0x20 or is 0x7f. */
int fuzz_no_ctl(const void *p, size_t n);

/* 1 if p[0..n) is strict UTF-8. */
int fuzz_utf8_valid(const void *p, size_t n);

/* 1 if p[0..n) is strict UTF-8 without C0, DEL or C1 (U+0080..U+009F). */
int fuzz_utf8_clean(const void *p, size_t n);

#endif
