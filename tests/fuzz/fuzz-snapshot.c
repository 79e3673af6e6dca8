/*
 * fuzz-snapshot.c: libFuzzer target for the snapshot target's decoders
 * (snapshots/objects.c, snapshots/state.c).
 *
 * Everything read back from a snapshot target is untrusted: the target may
 * sit on another machine or an object store. The first input byte chooses
 * what the rest is fed to:
 *   0  coffer_manifest_decode()
 *   1  coffer_keyring_decode()
 *   2  coffer_state_decode()
 *   3  coffer_obj_open() with a fixed key, store id and name: the kind is
 *      the next byte, the rest the object (mostly fails authentication;
 *      the seeds are valid objects, so the header checks are exercised);
 *   4  the rest sealed by hand with XChaCha20-Poly1305 under the fixed key
 *      (so it authenticates) and opened: reaches the length field and the
 *      zstd frame behind the MAC;
 *   5  coffer_snapid_parse() of the rest as a string.
 * Arbitrary bytes must never crash, leak or read out of bounds. A failure
 * returns a negative code; a success must survive encode -> decode again
 * with the same encoding (decoders accept only what encoders write).
 *
 * Seeds: tests/fuzz/corpus/snapshot/ (one valid input per selector).
 */
#include "engine/buf.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "snapshots/objects.h"
#include "snapshots/state.h"
#include "fuzz-util.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char obj_name[] = "a/0123456789abcdef0123456789abcdef/full/20260301T020000Z";

static void fixed_keys(unsigned char key[COFFER_KEY_BYTES], unsigned char id[COFFER_ID_BYTES])
{
	memset(key, 0x42, COFFER_KEY_BYTES);
	memset(id, 0x11, COFFER_ID_BYTES);
}

static void check_manifest(const uint8_t *p, size_t n)
{
	struct coffer_manifest m, m2;
	struct coffer_buf a = COFFER_BUF_INIT, b = COFFER_BUF_INIT;

	if (coffer_manifest_decode(p, n, &m) < 0)
		return;
	if (coffer_manifest_encode(&m, &a) < 0 || coffer_manifest_decode(a.data, a.len, &m2) < 0)
		abort();
	if (coffer_manifest_encode(&m2, &b) < 0)
		abort();
	fuzz_same(&b, a.data, a.len);
	for (uint32_t i = 0; i < m.n_accounts; i++)
		(void)coffer_manifest_account(&m, m.accounts[i].id);
	coffer_manifest_free(&m);
	coffer_manifest_free(&m2);
	coffer_buf_free(&a);
	coffer_buf_free(&b);
}

static void check_keyring(const uint8_t *p, size_t n)
{
	struct coffer_keyring k = { 0, NULL }, k2 = { 0, NULL };
	struct coffer_buf a = COFFER_BUF_INIT, b = COFFER_BUF_INIT;

	if (coffer_keyring_decode(p, n, &k) < 0)
		return;
	if (coffer_keyring_encode(&k, &a) < 0 || coffer_keyring_decode(a.data, a.len, &k2) < 0)
		abort();
	if (coffer_keyring_encode(&k2, &b) < 0)
		abort();
	fuzz_same(&b, a.data, a.len);
	for (uint32_t i = 0; i < k.n; i++)
		if (coffer_keyring_find(&k, k.v[i].id) == NULL)
			abort();
	coffer_keyring_free(&k);
	coffer_keyring_free(&k2);
	coffer_buf_free(&a);
	coffer_buf_free(&b);
}

static void check_state(const uint8_t *p, size_t n)
{
	struct coffer_state s, s2, rev = { NULL, 0, 0 };
	struct coffer_buf a = COFFER_BUF_INIT;

	if (coffer_state_decode(p, n, &s) < 0)
		return;
	/* canonical: the encoding is the input itself */
	if (coffer_state_encode(&s, &a) < 0)
		abort();
	fuzz_same(&a, p, n);
	if (coffer_state_decode(a.data, a.len, &s2) < 0)
		abort();
	/* a decoded state diffs against itself to nothing and applies cleanly */
	if (coffer_state_diff(&s, &s2, &rev) < 0 || rev.n != 0)
		abort();
	if (coffer_state_apply(&s2, &s) < 0)
		abort();
	coffer_state_free(&s);
	coffer_state_free(&s2);
	coffer_state_free(&rev);
	coffer_buf_free(&a);
}

static void check_open(const uint8_t *p, size_t n)
{
	unsigned char key[COFFER_KEY_BYTES], id[COFFER_ID_BYTES];
	struct coffer_buf pt = COFFER_BUF_INIT;

	if (n < 1)
		return;
	fixed_keys(key, id);
	if (coffer_obj_open(&pt, p[0], obj_name, id, key, p + 1, n - 1) == 0) {
		/* only a real seal under this key gets here: sealing it again opens */
		struct coffer_buf again = COFFER_BUF_INIT, pt2 = COFFER_BUF_INIT;

		if (coffer_obj_seal(&again, p[0], obj_name, id, key, pt.data, pt.len) < 0 ||
		    coffer_obj_open(&pt2, p[0], obj_name, id, key, again.data, again.len) < 0 ||
		    pt2.len != pt.len || memcmp(pt.data, pt2.data, pt.len) != 0)
			abort();
		/* and not under another name */
		coffer_buf_reset(&pt2);
		if (coffer_obj_open(&pt2, p[0], "snap/20260301T020000Z", id, key, again.data,
		                    again.len) == 0)
			abort();
		coffer_buf_free(&again);
		coffer_buf_free(&pt2);
	}
	coffer_buf_free(&pt);
}

/* Seals body (u64 length | zstd frame, as fuzzed) by hand, then opens it. */
static void check_open_inner(const uint8_t *p, size_t n)
{
	unsigned char key[COFFER_KEY_BYTES], id[COFFER_ID_BYTES];
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	struct coffer_buf ad = COFFER_BUF_INIT, obj = COFFER_BUF_INIT, pt = COFFER_BUF_INIT;
	unsigned long long clen = 0;
	uint64_t declared = 0;
	const uint8_t kind = COFFER_OBJ_FULL;

	if (n < 8)
		return;
	for (int i = 7; i >= 0; i--)
		declared = (declared << 8) | p[i];
	/* Past the MAC the length field is trusted up to COFFER_OBJ_MAX_PLAIN
	 * (2 GiB): only the key holder can write it. Keep the fuzzer's memory
	 * limit out of the picture. */
	if (declared > (1u << 24))
		return;
	fixed_keys(key, id);
	memset(nonce, 7, sizeof nonce);
	coffer_buf_append(&ad, "CFO1", 4);
	coffer_buf_put_u8(&ad, kind);
	coffer_buf_append(&ad, id, COFFER_ID_BYTES);
	coffer_buf_puts(&ad, obj_name);
	coffer_buf_append(&obj, "CFO1", 4);
	coffer_buf_put_u8(&obj, kind);
	coffer_buf_append(&obj, nonce, sizeof nonce);
	if (coffer_buf_reserve(&obj, n + crypto_aead_xchacha20poly1305_ietf_ABYTES) < 0)
		abort();
	crypto_aead_xchacha20poly1305_ietf_encrypt(obj.data + obj.len, &clen, p, n, ad.data, ad.len,
	                                           NULL, nonce, key);
	obj.len += (size_t)clen;
	if (coffer_obj_open(&pt, kind, obj_name, id, key, obj.data, obj.len) == 0 &&
	    pt.len != declared)
		abort();
	coffer_buf_free(&ad);
	coffer_buf_free(&obj);
	coffer_buf_free(&pt);
}

static void check_snapid(const uint8_t *p, size_t n)
{
	char *s = fuzz_cstr(p, n), out[COFFER_SNAPID_MAX];
	int64_t ns = 0, ns2 = 0;

	if (coffer_snapid_parse(s, &ns) == 0) {
		/* a parsed id formats back to an id that parses to the same time */
		coffer_snapid_format(ns, 0, out);
		if (coffer_snapid_parse(out, &ns2) < 0 || ns2 != ns)
			abort();
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;

	if (!init) {
		if (sodium_init() < 0)
			abort();
		init = 1;
	}
	if (size < 1)
		return 0;
	switch (data[0] % 6) {
	case 0: check_manifest(data + 1, size - 1); break;
	case 1: check_keyring(data + 1, size - 1); break;
	case 2: check_state(data + 1, size - 1); break;
	case 3: check_open(data + 1, size - 1); break;
	case 4: check_open_inner(data + 1, size - 1); break;
	default: check_snapid(data + 1, size - 1); break;
	}
	coffer_err_clear();
	return 0;
}
