/*
 * test-crypto.c: the libsodium adapter (engine/crypto.c).
 *
 * Known answers for keyed BLAKE2b come from Python's hashlib (an independent
 * implementation) and are cross-checked against libsodium directly; this
 * test is the one place outside crypto.c that includes <sodium.h>, to compare.
 * Sealers (several boxes under one ephemeral key) are checked against the
 * construction in docs/format.md, built here from libsodium directly.
 */
#include "engine/crypto.h"
#include "engine/errors.h"
#include "tests/tap.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void from_hex(unsigned char *out, const char *hex, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			abort();
		out[i] = (unsigned char)v;
	}
}

static int hex_equal(const unsigned char *p, const char *hex, size_t n)
{
	unsigned char *want = malloc(n);
	int eq;

	from_hex(want, hex, n);
	eq = memcmp(p, want, n) == 0;
	free(want);
	return eq;
}

static void test_init_and_memory(void)
{
	unsigned char *p;
	struct coffer_acct_secret *none = NULL;
	unsigned char z[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	int all_zero = 1;

	ok(coffer_crypto_init() == 0, "init");
	ok(coffer_crypto_init() == 0, "init twice");
	p = coffer_secure_alloc(100);
	ok(p != NULL, "secure alloc");
	memset(p, 0xab, 100);
	coffer_secure_free(p);
	coffer_secure_free(NULL);
	ok(1, "secure free accepts NULL");
	coffer_acct_secret_free(NULL);
	coffer_acct_secret_free(&none);
	ok(none == NULL, "acct_secret_free accepts NULL and *NULL");
	coffer_wipe(z, sizeof z);
	for (size_t i = 0; i < sizeof z; i++)
		all_zero &= z[i] == 0;
	ok(all_zero, "wipe zeroes");
	coffer_wipe(NULL, 0);
	ok(1, "wipe accepts NULL");
}

static void test_random_and_compare(void)
{
	unsigned char a[32] = { 0 }, b[32] = { 0 }, zero[32] = { 0 };

	coffer_random(a, sizeof a);
	coffer_random(b, sizeof b);
	ok(memcmp(a, zero, 32) != 0 && memcmp(a, b, 32) != 0, "random bytes differ");
	ok(coffer_ct_equal(a, a, 32) == 1, "ct_equal: equal");
	memcpy(b, a, 32);
	b[31] ^= 1;
	ok(coffer_ct_equal(a, b, 32) == 0, "ct_equal: last byte differs");
	b[31] ^= 1;
	b[0] ^= 0x80;
	ok(coffer_ct_equal(a, b, 32) == 0, "ct_equal: first byte differs");
	ok(coffer_ct_equal(a, b, 0) == 1, "ct_equal: empty ranges are equal");
}

static void test_keyed_hash(void)
{
	unsigned char key[32], out[64], ref[64];
	const char msg[] = "abcdef";
	int rc, all_match;

	for (int i = 0; i < 32; i++)
		key[i] = (unsigned char)i;
	rc = coffer_crypto_hash_keyed(out, 16, key, "abc", 3, "def", 3);
	ok(rc == 0 && hex_equal(out, "9354937c2934ef80443588f91cfe4c6c", 16),
	   "keyed BLAKE2b-128 over two parts matches hashlib");
	rc = coffer_crypto_hash_keyed(out, 64, key, msg, 6, NULL, 0);
	ok(rc == 0 && hex_equal(out,
	                        "920467cf2137347ed9f84e61092f187c5a40f61049f2e3f789e54d1b"
	                        "629032a6340c9559a057d33db43477ef5af747e606f454ae0aef6d97b7"
	                        "74fc2563daa3e5",
	                        64),
	   "keyed BLAKE2b-512 matches hashlib");
	rc = coffer_crypto_hash_keyed(out, 32, key, NULL, 0, NULL, 0);
	ok(rc == 0 && hex_equal(out,
	                        "4e51e7a913fc80137da52880fecca175bf81e117d5c68126dc277403"
	                        "3517ea0d",
	                        32),
	   "keyed BLAKE2b-256 of nothing matches hashlib");
	all_match = 1;
	for (size_t split = 0; split <= 6; split++) {
		for (size_t outlen = 16; outlen <= 64; outlen += 16) {
			rc = coffer_crypto_hash_keyed(out, outlen, key, msg, split, msg + split,
			                              6 - split);
			crypto_generichash(ref, outlen, (const unsigned char *)msg, 6, key, 32);
			all_match &= rc == 0 && memcmp(out, ref, outlen) == 0;
		}
	}
	ok(all_match, "every split and length matches libsodium's one-shot keyed hash");
	ok(coffer_crypto_hash_keyed(out, 15, key, msg, 6, NULL, 0) == COFFER_EINVAL,
	   "hash length 15 refused");
	ok(coffer_crypto_hash_keyed(out, 65, key, msg, 6, NULL, 0) == COFFER_EINVAL,
	   "hash length 65 refused");
}

static void test_aead(void)
{
	unsigned char key[32], key2[32], nonce[24], ct[64 + 16], pt[64];
	const char msg[] = "the quick brown fox jumps over the lazy dog";
	size_t n = sizeof msg;

	coffer_random(key, 32);
	coffer_random(key2, 32);
	coffer_random(nonce, 24);
	ok(coffer_crypto_aead_seal(ct, msg, n, "ad", 2, nonce, key) == 0, "aead seal");
	ok(memcmp(ct, msg, n) != 0, "aead ciphertext differs from plaintext");
	memset(pt, 0, sizeof pt);
	ok(coffer_crypto_aead_open(pt, ct, n + 16, "ad", 2, nonce, key) == 0 &&
	       memcmp(pt, msg, n) == 0,
	   "aead round trip");
	ok(coffer_crypto_aead_open(pt, ct, n + 16, "ae", 2, nonce, key) == COFFER_ECORRUPT,
	   "aead: wrong ad fails");
	ok(coffer_crypto_aead_open(pt, ct, n + 16, "ad", 2, nonce, key2) == COFFER_ECORRUPT,
	   "aead: wrong key fails");
	nonce[23] ^= 1;
	ok(coffer_crypto_aead_open(pt, ct, n + 16, "ad", 2, nonce, key) == COFFER_ECORRUPT,
	   "aead: wrong nonce fails");
	nonce[23] ^= 1;
	ct[3] ^= 4;
	ok(coffer_crypto_aead_open(pt, ct, n + 16, "ad", 2, nonce, key) == COFFER_ECORRUPT,
	   "aead: flipped ciphertext byte fails");
	ct[3] ^= 4;
	ok(coffer_crypto_aead_open(pt, ct, n + 15, "ad", 2, nonce, key) == COFFER_ECORRUPT,
	   "aead: truncated ciphertext fails");
	ok(coffer_crypto_aead_open(pt, ct, 15, "ad", 2, nonce, key) == COFFER_ECORRUPT,
	   "aead: ciphertext shorter than the tag fails");
	ok(coffer_crypto_aead_seal(ct, NULL, 0, NULL, 0, nonce, key) == 0 &&
	       coffer_crypto_aead_open(pt, ct, 16, NULL, 0, nonce, key) == 0,
	   "aead: empty message round trip");
}

static void test_seal(void)
{
	unsigned char pk[32], pk2[32], ct[32 + 48], pt[32], msg[32];
	unsigned char *sk = coffer_secure_alloc(32), *sk2 = coffer_secure_alloc(32);

	ok(coffer_crypto_keypair(pk, sk) == 0 && coffer_crypto_keypair(pk2, sk2) == 0,
	   "two key pairs");
	ok(memcmp(pk, pk2, 32) != 0, "key pairs differ");
	coffer_random(msg, 32);
	ok(coffer_crypto_seal(ct, msg, 32, pk) == 0, "seal to pk");
	ok(coffer_crypto_seal_open(pt, ct, sizeof ct, pk, sk) == 0 && memcmp(pt, msg, 32) == 0,
	   "sealed box round trip");
	ok(coffer_crypto_seal_open(pt, ct, sizeof ct, pk2, sk2) == COFFER_ECORRUPT,
	   "sealed box: other key pair fails");
	ct[50] ^= 1;
	ok(coffer_crypto_seal_open(pt, ct, sizeof ct, pk, sk) == COFFER_ECORRUPT,
	   "sealed box: flipped byte fails");
	ok(coffer_crypto_seal_open(pt, ct, 47, pk, sk) == COFFER_ECORRUPT,
	   "sealed box: shorter than overhead fails");
	coffer_secure_free(sk);
	coffer_secure_free(sk2);
}

static void test_acct_secret(void)
{
	unsigned char pk[32], sk[32];
	struct coffer_acct_secret *s = NULL;

	for (int i = 0; i < 32; i++) {
		sk[i] = (unsigned char)i;
		pk[i] = (unsigned char)(0xff - i);
	}
	ok(coffer_acct_secret_new(pk, sk, &s) == 0 && s != NULL, "acct_secret_new");
	ok(memcmp(s->pk, pk, 32) == 0 && memcmp(s->sk, sk, 32) == 0, "secret copies pk and sk");
	ok(hex_equal(s->data_key,
	             "7a4d52176f25f5e4995b405c730a99a672b5906d4881f8075b22c8962706"
	             "9219",
	             32),
	   "data_key = BLAKE2b-256(key=sk, \"coffer-data-v1\") (hashlib)");
	coffer_acct_secret_free(&s);
	ok(s == NULL, "acct_secret_free clears the pointer");
}

static int new_account(struct coffer_acct_secret **s_r)
{
	unsigned char pk[32];
	unsigned char *sk = coffer_secure_alloc(32);
	int rc;

	rc = coffer_crypto_keypair(pk, sk);
	if (rc == 0)
		rc = coffer_acct_secret_new(pk, sk, s_r);
	coffer_secure_free(sk);
	return rc;
}

static int try_open(const unsigned char *box, size_t n, const char *ad,
                    const struct coffer_acct_secret *s)
{
	struct coffer_buf out = COFFER_BUF_INIT;
	int rc;

	rc = coffer_box_open(&out, box, n, ad, strlen(ad), s);
	coffer_buf_free(&out);
	return rc;
}

static void test_boxes(void)
{
	struct coffer_acct_secret *s = NULL, *other = NULL;
	struct coffer_buf box = COFFER_BUF_INIT, out = COFFER_BUF_INIT;
	const char name[] = "INBOX.Projects/2024";
	const char ad[] = "folders:acct1:7";
	int all_fail;

	ok(new_account(&s) == 0 && new_account(&other) == 0, "two accounts");

	/* tag 1: sealed */
	ok(coffer_box_seal(&box, name, strlen(name), ad, strlen(ad), s->pk) == 0, "box_seal");
	ok(box.len == 1 + 16 + strlen(name) + 48 && box.data[0] == COFFER_BOX_SEALED,
	   "sealed box: tag 1 and length 1 + 16 + n + 48");
	coffer_buf_puts(&out, "xx");
	ok(coffer_box_open(&out, box.data, box.len, ad, strlen(ad), s) == 0 &&
	       out.len == 2 + strlen(name) && memcmp(out.data, "xx", 2) == 0 &&
	       memcmp(out.data + 2, name, strlen(name)) == 0,
	   "sealed box round trip appends to out");
	ok(coffer_box_open(&out, box.data, box.len, "folders:acct1:8", 15, s) == COFFER_ECORRUPT,
	   "sealed box: wrong ad fails");
	ok(out.len == 2 + strlen(name), "failed open appends nothing");
	ok(try_open(box.data, box.len, ad, other) == COFFER_ECORRUPT,
	   "sealed box: other account fails");
	all_fail = 1;
	for (size_t i = 0; i < box.len; i++) {
		box.data[i] ^= 0x10;
		all_fail &= try_open(box.data, box.len, ad, s) == COFFER_ECORRUPT;
		box.data[i] ^= 0x10;
	}
	ok(all_fail, "sealed box: every flipped byte fails");
	all_fail = 1;
	for (size_t i = 0; i < box.len; i++)
		all_fail &= try_open(box.data, i, ad, s) == COFFER_ECORRUPT;
	ok(all_fail, "sealed box: every truncation fails");

	/* tag 2: symmetric */
	coffer_buf_reset(&box);
	coffer_buf_reset(&out);
	ok(coffer_box_sym(&box, name, strlen(name), ad, strlen(ad), s) == 0, "box_sym");
	ok(box.len == 1 + 24 + strlen(name) + 16 && box.data[0] == COFFER_BOX_SYM,
	   "sym box: tag 2 and length 1 + 24 + n + 16");
	ok(coffer_box_open(&out, box.data, box.len, ad, strlen(ad), s) == 0 &&
	       out.len == strlen(name) && memcmp(out.data, name, out.len) == 0,
	   "sym box round trip");
	ok(try_open(box.data, box.len, "folders:acct1:8", s) == COFFER_ECORRUPT,
	   "sym box: wrong ad fails");
	ok(try_open(box.data, box.len, ad, other) == COFFER_ECORRUPT,
	   "sym box: other account fails");
	all_fail = 1;
	for (size_t i = 0; i < box.len; i++) {
		box.data[i] ^= 0x01;
		all_fail &= try_open(box.data, box.len, ad, s) == COFFER_ECORRUPT;
		box.data[i] ^= 0x01;
	}
	ok(all_fail, "sym box: every flipped byte fails");
	all_fail = 1;
	for (size_t i = 0; i < box.len; i++)
		all_fail &= try_open(box.data, i, ad, s) == COFFER_ECORRUPT;
	ok(all_fail, "sym box: every truncation fails");

	/* two boxes of the same value differ (random nonce / ephemeral key) */
	{
		struct coffer_buf b2 = COFFER_BUF_INIT;

		coffer_box_sym(&b2, name, strlen(name), ad, strlen(ad), s);
		ok(b2.len == box.len && memcmp(b2.data, box.data, box.len) != 0,
		   "sym boxes of one value differ");
		coffer_buf_free(&b2);
	}

	/* empty values and unknown tags */
	coffer_buf_reset(&box);
	coffer_buf_reset(&out);
	ok(coffer_box_seal(&box, NULL, 0, NULL, 0, s->pk) == 0 &&
	       coffer_box_open(&out, box.data, box.len, NULL, 0, s) == 0 && out.len == 0,
	   "sealed box of an empty value");
	coffer_buf_reset(&box);
	ok(coffer_box_sym(&box, NULL, 0, "", 0, s) == 0 &&
	       coffer_box_open(&out, box.data, box.len, "", 0, s) == 0 && out.len == 0,
	   "sym box of an empty value");
	box.data[0] = 4;
	ok(try_open(box.data, box.len, "", s) == COFFER_ECORRUPT, "unknown box tag fails");
	ok(try_open(box.data, 0, "", s) == COFFER_ECORRUPT, "empty box fails");

	coffer_buf_free(&box);
	coffer_buf_free(&out);
	coffer_acct_secret_free(&s);
	coffer_acct_secret_free(&other);
}

/* The documented construction (docs/format.md "Shared-key sealed boxes"),
 * with libsodium directly: nonce = BLAKE2b-192("coffer-shared-seal-v1" ||
 * epk || pk || ad), box = epk || crypto_box_easy_afternm. */
static void doc_nonce(unsigned char nonce[24], const unsigned char *epk, const unsigned char *pk,
                      const char *ad)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 24);
	crypto_generichash_update(&st, (const unsigned char *)"coffer-shared-seal-v1", 21);
	crypto_generichash_update(&st, epk, 32);
	crypto_generichash_update(&st, pk, 32);
	crypto_generichash_update(&st, (const unsigned char *)ad, strlen(ad));
	crypto_generichash_final(&st, nonce, 24);
}

static int doc_open(unsigned char *pt, const unsigned char *box, size_t n, const char *ad,
                    const struct coffer_acct_secret *s)
{
	unsigned char nonce[24], k[32];
	int rc;

	doc_nonce(nonce, box, s->pk, ad);
	rc = crypto_box_beforenm(k, box, s->sk);
	if (rc == 0)
		rc = crypto_box_open_easy_afternm(pt, box + 32, n - 32, nonce, k);
	sodium_memzero(k, sizeof k);
	return rc;
}

static void test_sealer(void)
{
	static const char *ads[3] = { "CFK1:acct:blob:1", "event:acct:t:r", "fold-name:acct:7" };
	struct coffer_acct_secret *s = NULL, *other = NULL;
	struct coffer_sealer *sl = NULL, *sl2 = NULL;
	unsigned char msg[3][40], box[3][40 + 48], again[40 + 48], pt[40];
	unsigned char nonce[3][24], zero_pk[32] = { 0 };
	int good, all_fail;

	ok(new_account(&s) == 0 && new_account(&other) == 0, "sealer: two accounts");
	ok(coffer_sealer_new(s->pk, &sl) == 0 && sl != NULL, "sealer_new");
	for (int i = 0; i < 3; i++) {
		coffer_random(msg[i], sizeof msg[i]);
		ok(coffer_sealer_seal(sl, box[i], msg[i], 32 + 4 * i, ads[i], strlen(ads[i])) == 0,
		   "sealer box %d (%zu-byte ad)", i, strlen(ads[i]));
	}
	ok(memcmp(box[0], box[1], 32) == 0 && memcmp(box[1], box[2], 32) == 0,
	   "the three boxes share one ephemeral public key");
	for (int i = 0; i < 3; i++)
		doc_nonce(nonce[i], box[i], s->pk, ads[i]);
	ok(memcmp(nonce[0], nonce[1], 24) != 0 && memcmp(nonce[0], nonce[2], 24) != 0 &&
	       memcmp(nonce[1], nonce[2], 24) != 0,
	   "their nonces differ");
	good = 1;
	for (int i = 0; i < 3; i++)
		good &= doc_open(pt, box[i], 32 + 4 * i + 48, ads[i], s) == 0 &&
		        memcmp(pt, msg[i], 32 + 4 * i) == 0;
	ok(good, "each opens with libsodium as the format document says");
	good = 1;
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			int rc = coffer_crypto_shared_open(pt, box[i], 32 + 4 * i + 48, ads[j],
			                                   strlen(ads[j]), s->pk, s->sk);

			good &= i == j ? rc == 0 && memcmp(pt, msg[i], 32 + 4 * i) == 0
			               : rc == COFFER_ECORRUPT;
		}
	ok(good, "shared_open: each box opens with its own ad only");
	ok(coffer_crypto_shared_open(pt, box[0], 80, ads[0], strlen(ads[0]), other->pk,
	                             other->sk) == COFFER_ECORRUPT,
	   "shared_open: another account's key fails");
	all_fail = 1;
	for (size_t i = 0; i < 80; i++) {
		box[0][i] ^= 0x20;
		all_fail &= coffer_crypto_shared_open(pt, box[0], 80, ads[0], strlen(ads[0]), s->pk,
		                                      s->sk) == COFFER_ECORRUPT;
		box[0][i] ^= 0x20;
	}
	ok(all_fail, "shared_open: every flipped byte fails");
	all_fail = 1;
	for (size_t i = 0; i < 80; i++)
		all_fail &= coffer_crypto_shared_open(pt, box[0], i, ads[0], strlen(ads[0]), s->pk,
		                                      s->sk) == COFFER_ECORRUPT;
	ok(all_fail, "shared_open: every truncation fails");

	/* nonce reuse */
	ok(coffer_sealer_seal(sl, again, msg[1], 32, ads[0], strlen(ads[0])) == COFFER_EINVAL,
	   "a second plaintext under an ad already used is refused");
	ok(coffer_sealer_seal(sl, again, msg[0], 36, ads[0], strlen(ads[0])) == COFFER_EINVAL,
	   "so is a longer plaintext with the same prefix");
	ok(coffer_sealer_seal(sl, again, msg[0], 32, ads[0], strlen(ads[0])) == 0 &&
	       memcmp(again, box[0], 80) == 0,
	   "the same (ad, plaintext) again gives the same bytes (a retried transaction)");
	{
		struct coffer_buf b = COFFER_BUF_INIT;

		ok(coffer_box_seal_with(&b, "x", 1, ads[1], strlen(ads[1]), sl) == COFFER_EINVAL &&
		       b.len == 0,
		   "an account box under a raw box's ad is refused, appends nothing");
		coffer_buf_free(&b);
	}
	good = 1;
	for (int i = 3; i < COFFER_SEALER_MAX_BOXES; i++) {
		char ad[16];

		snprintf(ad, sizeof ad, "ad-%d", i);
		good &= coffer_sealer_seal(sl, again, msg[0], 8, ad, strlen(ad)) == 0;
	}
	ok(good, "boxes up to COFFER_SEALER_MAX_BOXES (%d)", COFFER_SEALER_MAX_BOXES);
	ok(coffer_sealer_seal(sl, again, msg[0], 8, "one more", 8) == COFFER_EINVAL,
	   "one more is refused");
	ok(coffer_sealer_seal(sl, again, msg[0], 8, "ad-5", 4) == 0,
	   "a repeat still goes through when full");
	coffer_sealer_free(&sl);
	ok(sl == NULL, "sealer_free clears the pointer");
	coffer_sealer_free(&sl);
	coffer_sealer_free(NULL);

	ok(coffer_sealer_new(s->pk, &sl) == 0 && coffer_sealer_new(s->pk, &sl2) == 0 &&
	       coffer_sealer_seal(sl, box[0], msg[0], 32, ads[0], strlen(ads[0])) == 0 &&
	       coffer_sealer_seal(sl2, box[1], msg[0], 32, ads[0], strlen(ads[0])) == 0 &&
	       memcmp(box[0], box[1], 80) != 0,
	   "two sealers: other ephemeral keys, other boxes");
	coffer_sealer_free(&sl);
	coffer_sealer_free(&sl2);
	ok(coffer_sealer_new(zero_pk, &sl) == COFFER_EINVAL && sl == NULL,
	   "sealer_new: a low-order public key is refused");

	/* account box tag 3 */
	{
		struct coffer_buf b = COFFER_BUF_INIT, out = COFFER_BUF_INIT, b1 = COFFER_BUF_INIT;
		const char name[] = "Lists/debian-devel";
		const char ad[] = "fold-name:acct:9";

		ok(coffer_sealer_new(s->pk, &sl) == 0, "a sealer for account boxes");
		ok(coffer_box_seal_with(&b, name, strlen(name), ad, strlen(ad), sl) == 0 &&
		       b.len == 1 + 16 + strlen(name) + 48 && b.data[0] == COFFER_BOX_SHARED,
		   "box_seal_with: tag 3 and length 1 + 16 + n + 48");
		coffer_buf_puts(&out, "xx");
		ok(coffer_box_open(&out, b.data, b.len, ad, strlen(ad), s) == 0 &&
		       out.len == 2 + strlen(name) && memcmp(out.data + 2, name, strlen(name)) == 0,
		   "tag 3 round trip appends to out");
		ok(coffer_box_open(&out, b.data, b.len, "fold-name:acct:8", 16, s) ==
		           COFFER_ECORRUPT &&
		       out.len == 2 + strlen(name),
		   "tag 3: wrong ad fails, appends nothing");
		ok(try_open(b.data, b.len, ad, other) == COFFER_ECORRUPT,
		   "tag 3: other account fails");
		all_fail = 1;
		for (size_t i = 0; i < b.len; i++) {
			b.data[i] ^= 0x10;
			all_fail &= try_open(b.data, b.len, ad, s) == COFFER_ECORRUPT;
			b.data[i] ^= 0x10;
		}
		ok(all_fail, "tag 3: every flipped byte fails");
		all_fail = 1;
		for (size_t i = 0; i < b.len; i++)
			all_fail &= try_open(b.data, i, ad, s) == COFFER_ECORRUPT;
		ok(all_fail, "tag 3: every truncation fails");
		/* the body of tag 3 is not a tag 1 body, nor the other way round */
		b.data[0] = COFFER_BOX_SEALED;
		ok(try_open(b.data, b.len, ad, s) == COFFER_ECORRUPT,
		   "tag 3 body read as tag 1 fails");
		b.data[0] = COFFER_BOX_SHARED;
		ok(coffer_box_seal(&b1, name, strlen(name), ad, strlen(ad), s->pk) == 0 &&
		       try_open(b1.data, b1.len, ad, s) == 0,
		   "tag 1 (old data) still opens");
		b1.data[0] = COFFER_BOX_SHARED;
		ok(try_open(b1.data, b1.len, ad, s) == COFFER_ECORRUPT,
		   "tag 1 body read as tag 3 fails");
		coffer_buf_reset(&b);
		coffer_buf_reset(&out);
		ok(coffer_box_seal_with(&b, NULL, 0, NULL, 0, sl) == 0 &&
		       coffer_box_open(&out, b.data, b.len, NULL, 0, s) == 0 && out.len == 0,
		   "tag 3 of an empty value, empty ad");
		coffer_sealer_free(&sl);
		coffer_buf_free(&b);
		coffer_buf_free(&b1);
		coffer_buf_free(&out);
	}
	coffer_acct_secret_free(&s);
	coffer_acct_secret_free(&other);
}

int main(void)
{
	test_init_and_memory();
	test_random_and_compare();
	test_keyed_hash();
	test_aead();
	test_seal();
	test_acct_secret();
	test_boxes();
	test_sealer();
	return tap_done();
}
