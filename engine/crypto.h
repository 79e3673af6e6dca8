/*
 * crypto.h: the libsodium adapter. Every cryptographic operation in Coffer
 * goes through this file; no other module includes <sodium.h>.
 *
 * Primitives (docs/design.md section 4):
 *   - keyed BLAKE2b-256 for key derivation and name MACs;
 *   - XChaCha20-Poly1305-IETF for symmetric AEAD;
 *   - X25519 sealed boxes (crypto_box_seal) for writers that hold only a
 *     public key, and "sealers" (below): several boxes to one public key
 *     under one ephemeral key, for a writer that makes a few at once;
 *   - "account boxes": small values encrypted to an account, tagged so a
 *     reader knows which kind a writer used.
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

#define COFFER_ID_BYTES 16  /* account and blob ids */
#define COFFER_KEY_BYTES 32 /* every symmetric key */
#define COFFER_PK_BYTES 32  /* X25519 public key */
#define COFFER_SK_BYTES 32  /* X25519 secret key */
#define COFFER_MAC_BYTES 32 /* keyed BLAKE2b-256 output */
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
                             const unsigned char key[COFFER_KEY_BYTES], const void *a, size_t alen,
                             const void *b, size_t blen);

/* Unkeyed BLAKE2b-256 over a stream: a checksum of bytes that are already
 * ciphertext (a spooled delivery's blob, engine/spool.h), not a MAC. The
 * handle is the caller's; coffer_hash_free() accepts NULL. */
#define COFFER_HASH_BYTES 32
struct coffer_hash;
int coffer_hash_new(struct coffer_hash **h_r);
void coffer_hash_update(struct coffer_hash *h, const void *p, size_t n);
void coffer_hash_final(struct coffer_hash *h, unsigned char out[COFFER_HASH_BYTES]);
void coffer_hash_free(struct coffer_hash **h);

/* X25519 key pair; sk must point to secure memory of COFFER_SK_BYTES. */
int coffer_crypto_keypair(unsigned char pk[COFFER_PK_BYTES], unsigned char *sk);

/* XChaCha20-Poly1305-IETF. ct has room for n + COFFER_AEAD_TAG_BYTES. */
int coffer_crypto_aead_seal(unsigned char *ct, const void *pt, size_t n, const void *ad,
                            size_t adlen, const unsigned char nonce[COFFER_AEAD_NONCE_BYTES],
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
 * A sealer: the boxes one writer makes to one public key pk (one delivery's
 * content-key wrap, event, folder name) share one ephemeral X25519 key pair,
 * so they cost one key pair and one X25519 between them instead of one of
 * each per box (docs/format.md "Shared-key sealed boxes"). The sealer holds
 * k = crypto_box_beforenm(pk, esk) in secure memory (esk itself is wiped as
 * soon as k is made) and the public epk. A box is
 *     epk (32) || crypto_box_easy_afternm(pt, nonce, k)   (16 + n)
 * as long as a crypto_box_seal() box (n + COFFER_SEAL_OVERHEAD), with
 *     nonce = BLAKE2b-192("coffer-shared-seal-v1" || epk || pk || ad)
 * so each box's associated data ad (not stored) both binds the box to its
 * context and keeps nonces apart: the ads of one sealer's boxes must differ.
 * The sealer remembers its nonces and refuses (COFFER_EINVAL) to use one
 * again for a different plaintext, and to make more than
 * COFFER_SEALER_MAX_BOXES boxes. Sealing the same (ad, plaintext) again is
 * allowed and gives the same bytes (a write transaction run again after
 * LMDB grew its map does that).
 *
 * Ownership: coffer_sealer_new() allocates; the caller owns the sealer and
 * releases it with coffer_sealer_free() (wipes k, clears *s; accepts NULL).
 * Functions that take a sealer only borrow it for the call. One thread at a
 * time.
 */
#define COFFER_SEALER_MAX_BOXES 16
struct coffer_sealer;

int coffer_sealer_new(const unsigned char pk[COFFER_PK_BYTES], struct coffer_sealer **s_r);
void coffer_sealer_free(struct coffer_sealer **s);
/* One box of pt bound to ad: ct has room for n + COFFER_SEAL_OVERHEAD. */
int coffer_sealer_seal(struct coffer_sealer *s, unsigned char *ct, const void *pt, size_t n,
                       const void *ad, size_t adlen);
/* Opens a sealer's box with the account's key pair and the same ad: pt has
 * room for ctlen - COFFER_SEAL_OVERHEAD. COFFER_ECORRUPT on any mismatch
 * (box, ad, key); the key derived from epk and sk is wiped. */
int coffer_crypto_shared_open(unsigned char *pt, const unsigned char *ct, size_t ctlen,
                              const void *ad, size_t adlen, const unsigned char pk[COFFER_PK_BYTES],
                              const unsigned char *sk);

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
 *   tag 3: a sealer's box (above), bound to ad, of BLAKE2b-128(ad) || pt
 *          (writer without secrets making several boxes: `coffer deliver`)
 * The output is appended to out (nothing is appended on failure).
 */
#define COFFER_BOX_SEALED 1
#define COFFER_BOX_SYM 2
#define COFFER_BOX_SHARED 3
int coffer_box_seal(struct coffer_buf *out, const void *pt, size_t n, const void *ad, size_t adlen,
                    const unsigned char pk[COFFER_PK_BYTES]);
int coffer_box_sym(struct coffer_buf *out, const void *pt, size_t n, const void *ad, size_t adlen,
                   const struct coffer_acct_secret *secret);
/* Tag 3 with sealer s (borrowed; its rules on ad apply). */
int coffer_box_seal_with(struct coffer_buf *out, const void *pt, size_t n, const void *ad,
                         size_t adlen, struct coffer_sealer *s);
/* Opens any kind into out (appended). COFFER_ECORRUPT on any mismatch. */
int coffer_box_open(struct coffer_buf *out, const unsigned char *box, size_t n, const void *ad,
                    size_t adlen, const struct coffer_acct_secret *secret);

#endif
