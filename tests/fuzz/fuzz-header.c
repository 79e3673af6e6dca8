/*
 * fuzz-header.c: libFuzzer target for engine/header.c.
 *
 * Feeds the input to coffer_header_is_message() and coffer_header_summary()
 * and checks the summary's contract: only COFFER_ENOMEM may fail, and every
 * field is valid UTF-8 without control characters (C0, DEL, C1), no longer
 * than COFFER_HEADER_FIELD_MAX bytes, and without leading or trailing spaces.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *        tests/fuzz/fuzz-header.c engine/header.c engine/buf.c engine/errors.c
 */
#include "engine/errors.h"
#include "engine/header.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, len, k;
	uint32_t cp;

	if (s == NULL)
		return 1;
	n = strlen(s);
	if (n > COFFER_HEADER_FIELD_MAX)
		return 0;
	if (n > 0 && (p[0] == ' ' || p[n - 1] == ' '))
		return 0;
	while (i < n) {
		if (p[i] < 0x80) {
			if (p[i] < 0x20 || p[i] == 0x7f)
				return 0;
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf) {
			len = 2;
			cp = p[i] & 0x1f;
		} else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			len = 3;
			cp = p[i] & 0x0f;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			len = 4;
			cp = p[i] & 0x07;
		} else {
			return 0;
		}
		if (i + len > n)
			return 0;
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
			return 0;
		i += len;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coffer_header_summary s;
	int r, m;

	m = coffer_header_is_message(data, size);
	if (m != 0 && m != 1)
		abort();
	r = coffer_header_summary(data, size, &s);
	if (r == COFFER_ENOMEM)
		return 0;
	if (r != 0)
		abort();
	if (!clean(s.from) || !clean(s.subject) || !clean(s.date) || !clean(s.message_id))
		abort();
	coffer_header_summary_free(&s);
	if (s.from != NULL || s.subject != NULL || s.date != NULL || s.message_id != NULL)
		abort();
	return 0;
}
