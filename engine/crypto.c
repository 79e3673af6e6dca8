/*
 * crypto.c: the libsodium adapter (see crypto.h). This is the only file that
 * includes <sodium.h>; libsodium's return values are translated here, so
 * callers see COFFER_E* codes only.
 *
 * Sections:
 *   1. init, secure memory, randomness, constant-time compare
 *   2. keyed BLAKE2b, key pairs
 *   3. AEAD (XChaCha20-Poly1305-IETF) and sealed boxes
 *   3b. sealers: several boxes under one ephemeral key (crypto.h)
 *   4. account secrets and account boxes (docs/format.md "Account box")
 *
 * Every plaintext scratch buffer is secure memory and is freed (wiped) on
 * every path. Decryption writes into caller memory only after the tag has
 * been verified (libsodium's guarantee), and an output buffer's length is
 * advanced only on success, so a failed open appends nothing.
 */
#include "crypto.h"

#include "errors.h"

#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 1. init, secure memory, randomness, constant-time compare */

int coffer_crypto_init(void)
{
	if (sodium_init() < 0)
		return coffer_err_set(COFFER_EIO, "crypto: libsodium initialisation failed");
	return 0;
}

/*
 * Small secrets (keys of at most SLOT_SIZE bytes) come from one arena of
 * slots allocated once with sodium_malloc (guarded, mlock'd): a message
 * read or write needs a content key, and a fresh sodium_malloc (an mmap,
 * two mprotects and an mlock) per message cost more than decrypting it.
 * A freed slot is wiped before it is reused. Larger secrets, and small ones
 * when the arena is full, get their own sodium_malloc block.
 */
#define SLOT_SIZE 128u
#define SLOTS 256u

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *arena;
static uint64_t arena_used[SLOTS / 64];

static void *arena_alloc(size_t n)
{
	void *p = NULL;

	if (n > SLOT_SIZE)
		return NULL;
	pthread_mutex_lock(&arena_lock);
	if (arena == NULL)
		arena = sodium_malloc(SLOT_SIZE * SLOTS);
	for (unsigned w = 0; arena && p == NULL && w < SLOTS / 64; w++) {
		if (arena_used[w] == UINT64_MAX)
			continue;
		for (unsigned b = 0; b < 64; b++) {
			if (!(arena_used[w] & (1ull << b))) {
				arena_used[w] |= 1ull << b;
				p = arena + (size_t)(w * 64 + b) * SLOT_SIZE;
				break;
			}
		}
	}
	pthread_mutex_unlock(&arena_lock);
	return p;
}

static int arena_free(void *p)
{
	unsigned char *c = p;
	size_t slot;

	if (arena == NULL || c < arena || c >= arena + SLOT_SIZE * SLOTS)
		return 0;
	slot = (size_t)(c - arena) / SLOT_SIZE;
	sodium_memzero(arena + slot * SLOT_SIZE, SLOT_SIZE);
	pthread_mutex_lock(&arena_lock);
	arena_used[slot / 64] &= ~(1ull << (slot % 64));
	pthread_mutex_unlock(&arena_lock);
	return 1;
}

void *coffer_secure_alloc(size_t n)
{
	void *p;

	/* sodium_malloc needs the page size that sodium_init() records; calling
	 * it here (idempotent, thread-safe) makes the order of calls not matter. */
	if (sodium_init() < 0)
		return NULL;
	p = arena_alloc(n);
	return p ? p : sodium_malloc(n);
}

void coffer_secure_free(void *p)
{
	if (p != NULL && !arena_free(p))
		sodium_free(p);
}

void coffer_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		sodium_memzero(p, n);
}

void coffer_random(void *p, size_t n)
{
	randombytes_buf(p, n);
}

int coffer_ct_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

/* 2. keyed BLAKE2b, key pairs */

int coffer_crypto_hash_keyed(unsigned char *out, size_t outlen,
                             const unsigned char key[COFFER_KEY_BYTES], const void *a, size_t alen,
                             const void *b, size_t blen)
{
	crypto_generichash_state st;
	int rc = 0;

	if (outlen < crypto_generichash_BYTES_MIN || outlen > crypto_generichash_BYTES_MAX)
		return coffer_err_set(COFFER_EINVAL, "crypto: hash length %zu out of range",
		                      outlen);
	if (crypto_generichash_init(&st, key, COFFER_KEY_BYTES, outlen) != 0 ||
	    (alen > 0 && crypto_generichash_update(&st, a, alen) != 0) ||
	    (blen > 0 && crypto_generichash_update(&st, b, blen) != 0) ||
	    crypto_generichash_final(&st, out, outlen) != 0)
		rc = coffer_err_set(COFFER_EINVAL, "crypto: keyed hash failed");
	sodium_memzero(&st, sizeof st);
	return rc;
}

struct coffer_hash {
	crypto_generichash_state st;
};

int coffer_hash_new(struct coffer_hash **h_r)
{
	struct coffer_hash *h = malloc(sizeof *h);

	*h_r = NULL;
	if (h == NULL)
		return coffer_err_set(COFFER_ENOMEM, "crypto: out of memory");
	crypto_generichash_init(&h->st, NULL, 0, COFFER_HASH_BYTES);
	*h_r = h;
	return 0;
}

void coffer_hash_update(struct coffer_hash *h, const void *p, size_t n)
{
	crypto_generichash_update(&h->st, p, n);
}

void coffer_hash_final(struct coffer_hash *h, unsigned char out[COFFER_HASH_BYTES])
{
	crypto_generichash_final(&h->st, out, COFFER_HASH_BYTES);
}

void coffer_hash_free(struct coffer_hash **h)
{
	free(*h);
	*h = NULL;
}

int coffer_crypto_keypair(unsigned char pk[COFFER_PK_BYTES], unsigned char *sk)
{
	if (crypto_box_keypair(pk, sk) != 0)
		return coffer_err_set(COFFER_EIO, "crypto: key pair generation failed");
	return 0;
}

/* 3. AEAD and sealed boxes */

int coffer_crypto_aead_seal(unsigned char *ct, const void *pt, size_t n, const void *ad,
                            size_t adlen, const unsigned char nonce[COFFER_AEAD_NONCE_BYTES],
                            const unsigned char *key)
{
	unsigned long long clen;

	if (n > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX)
		return coffer_err_set(COFFER_ELIMIT, "crypto: message too long to seal");
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, pt, n, ad, adlen, NULL, nonce,
	                                               key) != 0)
		return coffer_err_set(COFFER_EINVAL, "crypto: AEAD encryption failed");
	return 0;
}

int coffer_crypto_aead_open(unsigned char *pt, const unsigned char *ct, size_t ctlen,
                            const void *ad, size_t adlen,
                            const unsigned char nonce[COFFER_AEAD_NONCE_BYTES],
                            const unsigned char *key)
{
	unsigned long long plen;

	if (ctlen < COFFER_AEAD_TAG_BYTES)
		return coffer_err_set(COFFER_ECORRUPT, "crypto: ciphertext shorter than its tag");
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &plen, NULL, ct, ctlen, ad, adlen, nonce,
	                                               key) != 0)
		return coffer_err_set(COFFER_ECORRUPT, "crypto: authentication failed");
	return 0;
}

int coffer_crypto_seal(unsigned char *ct, const void *pt, size_t n,
                       const unsigned char pk[COFFER_PK_BYTES])
{
	if (n > SIZE_MAX - COFFER_SEAL_OVERHEAD)
		return coffer_err_set(COFFER_ELIMIT, "crypto: message too long to seal");
	if (crypto_box_seal(ct, pt, n, pk) != 0)
		return coffer_err_set(COFFER_EINVAL, "crypto: sealing to public key failed");
	return 0;
}

int coffer_crypto_seal_open(unsigned char *pt, const unsigned char *ct, size_t ctlen,
                            const unsigned char pk[COFFER_PK_BYTES], const unsigned char *sk)
{
	if (ctlen < COFFER_SEAL_OVERHEAD)
		return coffer_err_set(COFFER_ECORRUPT, "crypto: sealed box too short");
	if (crypto_box_seal_open(pt, ct, ctlen, pk, sk) != 0)
		return coffer_err_set(COFFER_ECORRUPT, "crypto: sealed box cannot be opened");
	return 0;
}

/* 3b. sealers */

struct coffer_sealer {
	unsigned char *k; /* secure: crypto_box_beforenm(pk, esk) */
	unsigned char epk[COFFER_PK_BYTES];
	unsigned char pk[COFFER_PK_BYTES];
	unsigned n; /* boxes made (distinct nonces below) */
	struct {
		unsigned char nonce[crypto_box_NONCEBYTES];
		/* BLAKE2b-128(key = k, pt): tells a repeat of the same box (the
		 * same bytes again, harmless) from a second plaintext under one
		 * nonce (refused) without keeping the plaintext */
		unsigned char digest[16];
	} made[COFFER_SEALER_MAX_BOXES];
};

static const char shared_seal_tag[] = "coffer-shared-seal-v1";

/* nonce = BLAKE2b-192(tag || epk || pk || ad): every part before ad has a
 * fixed length, so distinct ads give distinct inputs. */
static int shared_nonce(unsigned char nonce[crypto_box_NONCEBYTES],
                        const unsigned char epk[COFFER_PK_BYTES],
                        const unsigned char pk[COFFER_PK_BYTES], const void *ad, size_t adlen)
{
	crypto_generichash_state st;
	int rc = 0;

	if (crypto_generichash_init(&st, NULL, 0, crypto_box_NONCEBYTES) != 0 ||
	    crypto_generichash_update(&st, (const unsigned char *)shared_seal_tag,
	                              sizeof shared_seal_tag - 1) != 0 ||
	    crypto_generichash_update(&st, epk, COFFER_PK_BYTES) != 0 ||
	    crypto_generichash_update(&st, pk, COFFER_PK_BYTES) != 0 ||
	    (adlen > 0 && crypto_generichash_update(&st, ad, adlen) != 0) ||
	    crypto_generichash_final(&st, nonce, crypto_box_NONCEBYTES) != 0)
		rc = coffer_err_set(COFFER_EINVAL, "crypto: deriving a box nonce failed");
	return rc;
}

int coffer_sealer_new(const unsigned char pk[COFFER_PK_BYTES], struct coffer_sealer **s_r)
{
	struct coffer_sealer *s;
	unsigned char *esk;
	int rc = 0;

	*s_r = NULL;
	if (sodium_init() < 0)
		return coffer_err_set(COFFER_EIO, "crypto: libsodium initialisation failed");
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return coffer_err_set(COFFER_ENOMEM, "crypto: cannot allocate a sealer");
	/* one slot of secure memory: esk, then k */
	esk = coffer_secure_alloc(crypto_box_SECRETKEYBYTES + crypto_box_BEFORENMBYTES);
	if (esk == NULL) {
		free(s);
		return coffer_err_set(COFFER_ENOMEM, "crypto: cannot allocate secure memory");
	}
	s->k = esk + crypto_box_SECRETKEYBYTES;
	memcpy(s->pk, pk, COFFER_PK_BYTES);
	if (crypto_box_keypair(s->epk, esk) != 0)
		rc = coffer_err_set(COFFER_EIO, "crypto: key pair generation failed");
	else if (crypto_box_beforenm(s->k, pk, esk) != 0)
		rc = coffer_err_set(COFFER_EINVAL, "crypto: the public key is not usable "
		                                   "(low order point)");
	sodium_memzero(esk, crypto_box_SECRETKEYBYTES); /* k is all the sealer needs */
	if (rc < 0) {
		coffer_sealer_free(&s);
		return rc;
	}
	*s_r = s;
	return 0;
}

void coffer_sealer_free(struct coffer_sealer **s)
{
	if (s == NULL || *s == NULL)
		return;
	/* k sits after esk in one secure block; freeing wipes both */
	coffer_secure_free((*s)->k - crypto_box_SECRETKEYBYTES);
	sodium_memzero(*s, sizeof **s);
	free(*s);
	*s = NULL;
}

int coffer_sealer_seal(struct coffer_sealer *s, unsigned char *ct, const void *pt, size_t n,
                       const void *ad, size_t adlen)
{
	unsigned char nonce[crypto_box_NONCEBYTES], digest[16];
	unsigned i;
	int rc;

	if (n > SIZE_MAX - COFFER_SEAL_OVERHEAD || n > crypto_box_MESSAGEBYTES_MAX)
		return coffer_err_set(COFFER_ELIMIT, "crypto: message too long to seal");
	rc = shared_nonce(nonce, s->epk, s->pk, ad, adlen);
	if (rc < 0)
		return rc;
	if (crypto_generichash(digest, sizeof digest, pt, n, s->k, crypto_box_BEFORENMBYTES) != 0)
		return coffer_err_set(COFFER_EINVAL, "crypto: hashing a box failed");
	for (i = 0; i < s->n; i++)
		if (memcmp(s->made[i].nonce, nonce, sizeof nonce) == 0)
			break;
	if (i < s->n && memcmp(s->made[i].digest, digest, sizeof digest) != 0)
		return coffer_err_set(COFFER_EINVAL, "crypto: sealer asked for two boxes with the "
		                                     "same context (nonce reuse refused)");
	if (i == s->n && s->n == COFFER_SEALER_MAX_BOXES)
		return coffer_err_set(COFFER_EINVAL, "crypto: sealer has made its %u boxes",
		                      COFFER_SEALER_MAX_BOXES);
	memcpy(ct, s->epk, COFFER_PK_BYTES);
	if (crypto_box_easy_afternm(ct + COFFER_PK_BYTES, pt, n, nonce, s->k) != 0)
		return coffer_err_set(COFFER_EINVAL, "crypto: sealing to public key failed");
	if (i == s->n) {
		memcpy(s->made[i].nonce, nonce, sizeof nonce);
		memcpy(s->made[i].digest, digest, sizeof digest);
		s->n++;
	}
	return 0;
}

int coffer_crypto_shared_open(unsigned char *pt, const unsigned char *ct, size_t ctlen,
                              const void *ad, size_t adlen, const unsigned char pk[COFFER_PK_BYTES],
                              const unsigned char *sk)
{
	unsigned char nonce[crypto_box_NONCEBYTES], k[crypto_box_BEFORENMBYTES];
	int rc = 0;

	if (ctlen < COFFER_SEAL_OVERHEAD)
		return coffer_err_set(COFFER_ECORRUPT, "crypto: sealed box too short");
	rc = shared_nonce(nonce, ct, pk, ad, adlen);
	if (rc < 0)
		return rc;
	if (crypto_box_beforenm(k, ct, sk) != 0 ||
	    crypto_box_open_easy_afternm(pt, ct + COFFER_PK_BYTES, ctlen - COFFER_PK_BYTES, nonce,
	                                 k) != 0)
		rc = coffer_err_set(COFFER_ECORRUPT, "crypto: sealed box cannot be opened");
	sodium_memzero(k, sizeof k);
	return rc;
}

/* 4. account secrets and account boxes */

static const char data_key_context[] = "coffer-data-v1";

int coffer_acct_secret_new(const unsigned char pk[COFFER_PK_BYTES], const unsigned char *sk,
                           struct coffer_acct_secret **s_r)
{
	struct coffer_acct_secret *s;
	int rc;

	*s_r = NULL;
	s = coffer_secure_alloc(sizeof *s);
	if (s == NULL)
		return coffer_err_set(COFFER_ENOMEM, "crypto: cannot allocate secure memory");
	memcpy(s->pk, pk, COFFER_PK_BYTES);
	memcpy(s->sk, sk, COFFER_SK_BYTES);
	rc = coffer_crypto_hash_keyed(s->data_key, COFFER_KEY_BYTES, s->sk, data_key_context,
	                              sizeof data_key_context - 1, NULL, 0);
	if (rc < 0) {
		coffer_secure_free(s);
		return rc;
	}
	*s_r = s;
	return 0;
}

void coffer_acct_secret_free(struct coffer_acct_secret **s)
{
	if (s == NULL || *s == NULL)
		return;
	coffer_secure_free(*s); /* sodium_free wipes */
	*s = NULL;
}

#define BOX_AD_HASH_BYTES 16

/* Unkeyed BLAKE2b-128 of the box's associated data. */
static int box_ad_hash(unsigned char out[BOX_AD_HASH_BYTES], const void *ad, size_t adlen)
{
	if (crypto_generichash(out, BOX_AD_HASH_BYTES, ad, adlen, NULL, 0) != 0)
		return coffer_err_set(COFFER_EINVAL, "crypto: hashing box context failed");
	return 0;
}

/* Tags 1 and 3: BLAKE2b-128(ad) || pt, sealed to pk (sealer NULL) or by
 * the sealer. */
static int box_seal_any(struct coffer_buf *out, const void *pt, size_t n, const void *ad,
                        size_t adlen, const unsigned char *pk, struct coffer_sealer *sealer)
{
	unsigned char *inner = NULL;
	size_t inner_len, box_len;
	int rc;

	if (n > SIZE_MAX / 2 - BOX_AD_HASH_BYTES - COFFER_SEAL_OVERHEAD - 1)
		return coffer_err_set(COFFER_ELIMIT, "crypto: box content too long");
	inner_len = BOX_AD_HASH_BYTES + n;
	box_len = 1 + inner_len + COFFER_SEAL_OVERHEAD;
	rc = coffer_buf_reserve(out, box_len);
	if (rc < 0) {
		rc = coffer_err_set(COFFER_ENOMEM, "crypto: cannot grow box buffer");
		goto out;
	}
	inner = coffer_secure_alloc(inner_len);
	if (inner == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "crypto: cannot allocate secure memory");
		goto out;
	}
	rc = box_ad_hash(inner, ad, adlen);
	if (rc < 0)
		goto out;
	if (n > 0)
		memcpy(inner + BOX_AD_HASH_BYTES, pt, n);
	if (sealer != NULL) {
		out->data[out->len] = COFFER_BOX_SHARED;
		rc = coffer_sealer_seal(sealer, out->data + out->len + 1, inner, inner_len, ad,
		                        adlen);
	} else {
		out->data[out->len] = COFFER_BOX_SEALED;
		rc = coffer_crypto_seal(out->data + out->len + 1, inner, inner_len, pk);
	}
	if (rc < 0)
		goto out;
	out->len += box_len;
	out->data[out->len] = '\0';
out:
	coffer_secure_free(inner);
	return rc;
}

int coffer_box_seal(struct coffer_buf *out, const void *pt, size_t n, const void *ad, size_t adlen,
                    const unsigned char pk[COFFER_PK_BYTES])
{
	return box_seal_any(out, pt, n, ad, adlen, pk, NULL);
}

int coffer_box_seal_with(struct coffer_buf *out, const void *pt, size_t n, const void *ad,
                         size_t adlen, struct coffer_sealer *s)
{
	return box_seal_any(out, pt, n, ad, adlen, NULL, s);
}

int coffer_box_sym(struct coffer_buf *out, const void *pt, size_t n, const void *ad, size_t adlen,
                   const struct coffer_acct_secret *secret)
{
	unsigned char *p;
	size_t box_len;
	int rc;

	if (n > SIZE_MAX / 2 - COFFER_AEAD_NONCE_BYTES - COFFER_AEAD_TAG_BYTES - 1)
		return coffer_err_set(COFFER_ELIMIT, "crypto: box content too long");
	box_len = 1 + COFFER_AEAD_NONCE_BYTES + n + COFFER_AEAD_TAG_BYTES;
	if (coffer_buf_reserve(out, box_len) < 0)
		return coffer_err_set(COFFER_ENOMEM, "crypto: cannot grow box buffer");
	p = out->data + out->len;
	p[0] = COFFER_BOX_SYM;
	coffer_random(p + 1, COFFER_AEAD_NONCE_BYTES);
	rc = coffer_crypto_aead_seal(p + 1 + COFFER_AEAD_NONCE_BYTES, pt, n, ad, adlen, p + 1,
	                             secret->data_key);
	if (rc < 0)
		return rc;
	out->len += box_len;
	out->data[out->len] = '\0';
	return 0;
}

/* Tags 1 and 3 (shared: a sealer's box, whose nonce also binds ad). */
static int box_open_sealed(struct coffer_buf *out, const unsigned char *body, size_t n,
                           const void *ad, size_t adlen, const struct coffer_acct_secret *secret,
                           int shared)
{
	unsigned char expect[BOX_AD_HASH_BYTES];
	unsigned char *inner = NULL;
	size_t inner_len, pt_len;
	int rc;

	if (n < COFFER_SEAL_OVERHEAD + BOX_AD_HASH_BYTES)
		return coffer_err_set(COFFER_ECORRUPT, "crypto: sealed account box too short");
	inner_len = n - COFFER_SEAL_OVERHEAD;
	pt_len = inner_len - BOX_AD_HASH_BYTES;
	inner = coffer_secure_alloc(inner_len);
	if (inner == NULL)
		return coffer_err_set(COFFER_ENOMEM, "crypto: cannot allocate secure memory");
	rc = shared ? coffer_crypto_shared_open(inner, body, n, ad, adlen, secret->pk, secret->sk)
	            : coffer_crypto_seal_open(inner, body, n, secret->pk, secret->sk);
	if (rc < 0) {
		rc =
		    coffer_err_set(COFFER_ECORRUPT,
		                   "crypto: account box cannot be opened with this account's key%s",
		                   shared ? " or context" : "");
		goto out;
	}
	rc = box_ad_hash(expect, ad, adlen);
	if (rc < 0)
		goto out;
	if (!coffer_ct_equal(expect, inner, BOX_AD_HASH_BYTES)) {
		rc = coffer_err_set(COFFER_ECORRUPT, "crypto: account box belongs to another "
		                                     "record (context mismatch)");
		goto out;
	}
	rc = coffer_buf_append(out, inner + BOX_AD_HASH_BYTES, pt_len);
	if (rc < 0)
		rc = coffer_err_set(COFFER_ENOMEM, "crypto: cannot grow output buffer");
out:
	coffer_secure_free(inner);
	return rc;
}

static int box_open_sym(struct coffer_buf *out, const unsigned char *body, size_t n, const void *ad,
                        size_t adlen, const struct coffer_acct_secret *secret)
{
	size_t pt_len;
	int rc;

	if (n < COFFER_AEAD_NONCE_BYTES + COFFER_AEAD_TAG_BYTES)
		return coffer_err_set(COFFER_ECORRUPT, "crypto: account box too short");
	pt_len = n - COFFER_AEAD_NONCE_BYTES - COFFER_AEAD_TAG_BYTES;
	if (coffer_buf_reserve(out, pt_len) < 0)
		return coffer_err_set(COFFER_ENOMEM, "crypto: cannot grow output buffer");
	rc = coffer_crypto_aead_open(out->data + out->len, body + COFFER_AEAD_NONCE_BYTES,
	                             n - COFFER_AEAD_NONCE_BYTES, ad, adlen, body,
	                             secret->data_key);
	if (rc < 0)
		return coffer_err_set(COFFER_ECORRUPT, "crypto: account box cannot be opened "
		                                       "with this account's key or context");
	out->len += pt_len;
	out->data[out->len] = '\0';
	return 0;
}

int coffer_box_open(struct coffer_buf *out, const unsigned char *box, size_t n, const void *ad,
                    size_t adlen, const struct coffer_acct_secret *secret)
{
	if (n < 1)
		return coffer_err_set(COFFER_ECORRUPT, "crypto: empty account box");
	switch (box[0]) {
	case COFFER_BOX_SEALED: return box_open_sealed(out, box + 1, n - 1, ad, adlen, secret, 0);
	case COFFER_BOX_SYM: return box_open_sym(out, box + 1, n - 1, ad, adlen, secret);
	case COFFER_BOX_SHARED: return box_open_sealed(out, box + 1, n - 1, ad, adlen, secret, 1);
	}
	return coffer_err_set(COFFER_ECORRUPT, "crypto: unknown account box type %u",
	                      (unsigned)box[0]);
}

int coffer_crypto_argon2_check(const char *hash)
{
	const char *m = strstr(hash, "$m=");
	unsigned long kib;
	char *end;
	int rc;

	if (strncmp(hash, "$argon2id$", 10) != 0 && strncmp(hash, "$argon2i$", 9) != 0)
		return coffer_err_set(COFFER_EINVAL, "crypto: not an argon2id or argon2i hash");
	if (m == NULL)
		m = strstr(hash, ",m=") ? strstr(hash, ",m=") : strstr(hash, "$m=");
	if (m == NULL)
		return coffer_err_set(COFFER_EINVAL, "crypto: the argon2 hash has no memory cost");
	kib = strtoul(m + 3, &end, 10);
	if (end == m + 3 || kib == 0 || kib > COFFER_ARGON2_MAX_KIB)
		return coffer_err_set(
		    COFFER_EINVAL,
		    "crypto: the argon2 hash's memory cost is out of range (1 KiB to "
		    "1 GiB)");
	/* -1: not a string this algorithm can read */
	if (hash[7] == 'i' && hash[8] == 'd')
		rc = crypto_pwhash_argon2id_str_needs_rehash(hash,
		                                             crypto_pwhash_argon2id_OPSLIMIT_MIN,
		                                             crypto_pwhash_argon2id_MEMLIMIT_MIN);
	else
		rc = crypto_pwhash_argon2i_str_needs_rehash(hash,
		                                            crypto_pwhash_argon2i_OPSLIMIT_MIN,
		                                            crypto_pwhash_argon2i_MEMLIMIT_MIN);
	if (rc < 0)
		return coffer_err_set(COFFER_EINVAL, "crypto: the argon2 hash is malformed");
	return 0;
}

int coffer_crypto_argon2_verify(const char *hash, const char *pw, size_t n)
{
	int rc = coffer_crypto_argon2_check(hash);

	if (rc < 0)
		return rc;
	if (strncmp(hash, "$argon2id$", 10) == 0)
		return crypto_pwhash_argon2id_str_verify(hash, pw, n) == 0 ? 1 : 0;
	return crypto_pwhash_argon2i_str_verify(hash, pw, n) == 0 ? 1 : 0;
}
