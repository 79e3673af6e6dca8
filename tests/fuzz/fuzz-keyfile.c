/*
 * fuzz-keyfile.c: libFuzzer target for coffer_keyfile_parse() (engine/keyfile.c).
 *
 * The key file is read from disk and may be damaged or hostile. Every input
 * goes through the parser. A failure must be COFFER_ECORRUPT (or ENOMEM),
 * hand back no key file, and name the input in its detail. A success must
 * describe a usable key file: one epoch, or two during a rotation, each
 * >= 1; a key wrapped under it unwraps again, not under another account id,
 * and not after a rotation has destroyed its epoch.
 *
 * Seeds: tests/fuzz/corpus/keyfile/ (dummy masters, not real secrets).
 */
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/keyfile.h"
#include "fuzz-util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char *sk, *out;
	struct coffer_keyfile *kf = (struct coffer_keyfile *)&kf;
	unsigned char acct[COFFER_ID_BYTES], other[COFFER_ID_BYTES];
	unsigned char wrapped[COFFER_WRAPPED_SK_BYTES];
	uint64_t epoch = 0, e0;
	int r;

	if (sk == NULL) {
		if (coffer_crypto_init() < 0)
			abort();
		sk = coffer_secure_alloc(COFFER_SK_BYTES);
		out = coffer_secure_alloc(COFFER_SK_BYTES);
		if (sk == NULL || out == NULL)
			abort();
	}
	r = coffer_keyfile_parse("fuzz.key", (const char *)data, size, &kf);
	if (r < 0) {
		if (kf != NULL)
			abort();
		if (r != COFFER_ECORRUPT && r != COFFER_ENOMEM)
			abort();
		if (r == COFFER_ECORRUPT && strstr(coffer_errmsg(), "fuzz.key") == NULL)
			abort();
		return 0;
	}
	if (kf == NULL)
		abort();
	e0 = coffer_keyfile_epoch(kf);
	if (e0 < 1 || (coffer_keyfile_rotating(kf) && e0 < 2))
		abort();

	memset(acct, 0x5a, sizeof acct);
	memcpy(acct, data, size < sizeof acct ? size : sizeof acct);
	memcpy(other, acct, sizeof other);
	other[0] ^= 1;
	memset(sk, 0x33, COFFER_SK_BYTES);
	if (coffer_keyfile_wrap(kf, acct, sk, &epoch, wrapped) < 0 || epoch != e0)
		abort();
	if (coffer_keyfile_unwrap(kf, acct, epoch, wrapped, out) < 0 ||
	    !coffer_ct_equal(sk, out, COFFER_SK_BYTES))
		abort();
	if (coffer_keyfile_unwrap(kf, other, epoch, wrapped, out) != COFFER_ECORRUPT)
		abort();

	/* finish any rotation, start one, end it: the old epoch must be gone */
	coffer_keyfile_end_rotation(kf);
	if (coffer_keyfile_rotating(kf) || coffer_keyfile_epoch(kf) != e0)
		abort();
	if (e0 < UINT64_MAX) {
		if (coffer_keyfile_begin_rotation(kf) < 0 || coffer_keyfile_epoch(kf) != e0 + 1)
			abort();
		coffer_keyfile_end_rotation(kf);
		if (coffer_keyfile_unwrap(kf, acct, e0, wrapped, out) != COFFER_EPERM)
			abort();
	}
	coffer_keyfile_free(&kf);
	if (kf != NULL)
		abort();
	return 0;
}
