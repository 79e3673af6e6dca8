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
#include "fuzz-util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A summary field: absent, or at most COFFER_HEADER_FIELD_MAX bytes of
 * control-free UTF-8 without leading or trailing spaces. */
static int clean(const char *s)
{
	size_t n;

	if (s == NULL)
		return 1;
	n = strlen(s);
	if (n > COFFER_HEADER_FIELD_MAX)
		return 0;
	if (n > 0 && (s[0] == ' ' || s[n - 1] == ' '))
		return 0;
	return fuzz_utf8_clean(s, n);
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
