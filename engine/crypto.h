/*
 * crypto.h: the libsodium adapter. Every cryptographic operation in Coffer
 * goes through this file; no other module includes <sodium.h>.
 *
 * Primitives (docs/design.md section 4):
 *   - keyed BLAKE2b-256 for key derivation and name MACs;
 *   - XChaCha20-Poly1305-IETF for symmetric AEAD;
 *   - X25519 sealed boxes (crypto_box_seal) for writers that hold only a
 *     public key;
 *   - "account boxes": small values encrypted to an account, tagged so a
 *     reader knows which of the two a writer used.
 *
 * Secrets (secret keys, data keys, masters) live in memory from
 * coffer_secure_alloc(): sodium_malloc, guarded and mlock'd, wiped on free.
 * Comparisons of secrets use coffer_ct_equal().
 */
#ifndef COFFER_CRYPTO_H
#define COFFER_CRYPTO_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

#define COFFER_ID_BYTES 16   /* account and blob ids */
#define COFFER_KEY_BYTES 32  /* every symmetric key */
#define COFFER_PK_BYTES 32   /* X25519 public key */
#define COFFER_SK_BYTES 32   /* X25519 secret key */
#define COFFER_MAC_BYTES 32  /* keyed BLAKE2b-256 output */
#define COFFER_AEAD_NONCE_BYTES 24
#define COFFER_AEAD_TAG_BYTES 16
#define COFFER_SEAL_OVERHEAD 48 /* crypto_box_SEALBYTES */

/* sodium_init(); safe to call more than once. 0 or COFFER_EIO. */
int coffer_crypto_init(void);

/* Guarded memory for secrets. alloc returns NULL on failure; free wipes and
 * accepts NULL. */
void *coffer_secure_alloc(size_t n);
void coffer_secure_free(void *p);
void coffer_wipe(void *p, size_t n); /* sodium_memzero */

void coffer_random(void *p, size_t n);
/* 1 if equal, 0 if not, in time independent of the contents. */
int coffer_ct_equal(const void *a, const void *b, size_t n);

/* Keyed BLAKE2b with an output of outlen (16..64) bytes over the
 * concatenation of two parts (either may be empty). Used for KDFs and MACs. */
int coffer_crypto_hash_keyed(unsigned char *out, size_t outlen,
                             const unsigned char key[COFFER_KEY_BYTES],
                             const void *a, size_t alen, const void *b, size_t blen);

/* X25519 key pair; sk must point to secure memory of COFFER_SK_BYTES. */
int coffer_crypto_keypair(unsigned char pk[COFFER_PK_BYTES], unsigned char *sk);

/* XChaCha20-Poly1305-IETF. ct has room for n + COFFER_AEAD_TAG_BYTES. */
int coffer_crypto_aead_seal(unsigned char *ct, const void *pt, size_t n,
                            const void *ad, size_t adlen,
                            const unsigned char nonce[COFFER_AEAD_NONCE_BYTES],
                            const unsigned char *key);
/* pt has room for ctlen - COFFER_AEAD_TAG_BYTES. COFFER_ECORRUPT if the
 * ciphertext, ad, nonce or key do not match. */
int coffer_crypto_aead_open(unsigned char *pt, const unsigned char *ct, size_t ctlen,
                            const void *ad, size_t adlen,
                            const unsigned char nonce[COFFER_AEAD_NONCE_BYTES],
                            const unsigned char *key);

/* Sealed box to pk: ct has room for n + COFFER_SEAL_OVERHEAD. */
int coffer_crypto_seal(unsigned char *ct, const void *pt, size_t n,
                       const unsigned char pk[COFFER_PK_BYTES]);
int coffer_crypto_seal_open(unsigned char *pt, const unsigned char *ct, size_t ctlen,
                            const unsigned char pk[COFFER_PK_BYTES], const unsigned char *sk);

/*
 * argon2id / argon2i password hashes (PHC strings "$argon2id$v=19$m=...,t=...,
 * p=...$salt$hash"), for migrated passwords; libcrypt cannot verify them.
 * A string asking for more than COFFER_ARGON2_MAX_KIB of memory is refused
 * (COFFER_EINVAL) rather than allowed to exhaust the host.
 * check: 0 if the string is one libsodium can verify, else COFFER_EINVAL.
 * verify: 1 if pw matches, 0 if not, COFFER_EINVAL if the string is bad.
 */
#define COFFER_ARGON2_MAX_KIB (1024u * 1024u)
int coffer_crypto_argon2_check(const char *hash);
int coffer_crypto_argon2_verify(const char *hash, const char *pw, size_t n);

/*
 * An account's secret keys, unwrapped. Always allocated with
 * coffer_acct_secret_new() (secure memory) and released with
 * coffer_acct_secret_free(), which wipes it.
 */
struct coffer_acct_secret {
	unsigned char pk[COFFER_PK_BYTES];
	unsigned char sk[COFFER_SK_BYTES];
	unsigned char data_key[COFFER_KEY_BYTES]; /* BLAKE2b(key=sk, "coffer-data-v1") */
};

/* Builds the secret from pk and sk (copies sk) and derives data_key. */
int coffer_acct_secret_new(const unsigned char pk[COFFER_PK_BYTES], const unsigned char *sk,
                           struct coffer_acct_secret **s_r);
void coffer_acct_secret_free(struct coffer_acct_secret **s);

/*
 * Account boxes (docs/format.md "account box"): small values (names,
 * keywords, events) encrypted to an account, bound to ad (the record's
 * context, e.g. its LMDB key) so they cannot be moved between records.
 *   tag 1: sealed box to pk of  BLAKE2b-128(ad) || pt   (writer without secrets)
 *   tag 2: nonce(24) || XChaCha20-Poly1305(pt, ad) under data_key
 * The output is appended to out.
 */
#define COFFER_BOX_SEALED 1
#define COFFER_BOX_SYM 2
int coffer_box_seal(struct coffer_buf *out, const void *pt, size_t n, const void *ad,
                    size_t adlen, const unsigned char pk[COFFER_PK_BYTES]);
int coffer_box_sym(struct coffer_buf *out, const void *pt, size_t n, const void *ad,
                   size_t adlen, const struct coffer_acct_secret *secret);
/* Opens either kind into out (appended). COFFER_ECORRUPT on any mismatch. */
int coffer_box_open(struct coffer_buf *out, const unsigned char *box, size_t n,
                    const void *ad, size_t adlen, const struct coffer_acct_secret *secret);

#endif
