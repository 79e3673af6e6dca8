/*
 * fuzz-checkpassword.c: libFuzzer target for the untrusted inputs of the
 * access modules: the checkpassword fd-3 input (policy/checkpassword.c)
 * and, on the same bytes, the event record decoder (engine/events.c), which
 * reads values from an index that may be damaged or hostile.
 *
 * Invariants checked on every input:
 *   - parse succeeds exactly when the input is at most 512 bytes, holds two
 *     NULs and does not start with one; then user and password lie inside
 *     the input, contain no NUL, are followed by a NUL, and user is first;
 *   - refusals are COFFER_EINVAL with a printable, non-empty detail;
 *   - the event decoder either fails with COFFER_ECORRUPT or returns a
 *     login/delivery event whose strings are NUL-free and within bounds.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *        tests/fuzz/fuzz-checkpassword.c tests/fuzz/fuzz-util.c \
 *        policy/checkpassword.c engine/events.c \
 *        policy/auth.c engine/ALL.c maildir/name.c (engine/ALL.c: every engine source) \
 *        $(pkg-config --libs libsodium lmdb libzstd libcrypt openssl libarchive)
 */
#include "engine/buf.h"
#include "engine/errors.h"
#include "policy/checkpassword.h"
#include "engine/events.h"
#include "fuzz-util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_parse(const uint8_t *data, size_t size)
{
	struct coffer_cp_input in;
	const uint8_t *n1 = size ? memchr(data, 0, size) : NULL;
	const uint8_t *n2 = n1 ? memchr(n1 + 1, 0, size - (size_t)(n1 + 1 - data)) : NULL;
	int expect_ok = size <= COFFER_CP_INPUT_MAX && n1 && n2 && n1 != data;
	int r = coffer_checkpassword_parse(data, size, &in);

	if (!expect_ok) {
		fuzz_check_refusal(r, COFFER_EINVAL);
		return;
	}
	if (r != 0 || in.user != (const char *)data || in.user_len == 0 ||
	    in.user + in.user_len != (const char *)n1 || in.password != (const char *)n1 + 1 ||
	    in.password + in.password_len != (const char *)n2 || memchr(in.user, 0, in.user_len) ||
	    memchr(in.password, 0, in.password_len) ||
	    in.rest + in.rest_len != (const char *)data + size)
		abort();
}

static void fuzz_event(const uint8_t *data, size_t size)
{
	struct coffer_buf scratch = COFFER_BUF_INIT;
	struct coffer_event ev;
	int r = coffer_event_decode(data, size, &scratch, &ev);

	if (r < 0) {
		fuzz_check_refusal(r, COFFER_ECORRUPT);
	} else if (ev.type == COFFER_EVENT_LOGIN) {
		if (strlen(ev.label) > COFFER_EVENT_LABEL_MAX ||
		    (ev.ip.len != 0 && ev.ip.len != 4 && ev.ip.len != 16))
			abort();
	} else if (ev.type == COFFER_EVENT_DELIVERY) {
		if (strlen(ev.folder) > COFFER_EVENT_FOLDER_MAX)
			abort();
	} else {
		abort();
	}
	coffer_buf_free(&scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parse(data, size);
	fuzz_event(data, size);
	coffer_err_clear();
	return 0;
}
