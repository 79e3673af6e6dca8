/*
 * record.h: encodings of the index's keys and values (docs/format.md
 * "Index records").
 *
 * Values are little-endian records that start with a version byte; keys are
 * big-endian so that LMDB's byte order is numeric order. Decoders treat
 * their input as untrusted (a damaged or hostile index): every length is
 * checked and a short or oversized record is COFFER_ECORRUPT. Decoded
 * records may point into the input (the *_box fields): valid only as long as
 * the input, i.e. until the end of the LMDB transaction.
 */
#ifndef COFFER_RECORD_H
#define COFFER_RECORD_H

#include "buf.h"
#include "crypto.h"

#include <stdint.h>

#define COFFER_RECORD_VERSION 1

/* Key sizes. */
#define COFFER_KEY_ACCT COFFER_ID_BYTES         /* accounts */
#define COFFER_KEY_FOLDER (COFFER_ID_BYTES + 4) /* folders */
#define COFFER_KEY_FOLDER_NAME (COFFER_ID_BYTES + COFFER_MAC_BYTES)
#define COFFER_KEY_MESSAGE (COFFER_ID_BYTES + 4 + 4)        /* messages */
#define COFFER_KEY_BLOB (COFFER_ID_BYTES + COFFER_ID_BYTES) /* blobs, unsnapped, trash */
#define COFFER_KEY_KEYWORD (COFFER_ID_BYTES + 4 + 1)

void coffer_key_folder(unsigned char *k, const unsigned char *acct, uint32_t folder_id);
void coffer_key_message(unsigned char *k, const unsigned char *acct, uint32_t folder_id,
                        uint32_t uid);
void coffer_key_blob(unsigned char *k, const unsigned char *acct, const unsigned char *blob_id);

enum coffer_account_state {
	COFFER_ACCOUNT_ACTIVE = 1,
	COFFER_ACCOUNT_TERMINATED = 2,
	COFFER_ACCOUNT_SHREDDED = 3,
};

#define COFFER_WRAPPED_SK_BYTES (COFFER_AEAD_NONCE_BYTES + COFFER_SK_BYTES + COFFER_AEAD_TAG_BYTES)

struct coffer_account_rec {
	uint8_t state;           /* enum coffer_account_state */
	int64_t created_at;      /* ns */
	int64_t terminated_at;   /* ns, 0 if never */
	int64_t shredded_at;     /* ns, 0 if not shredded */
	uint64_t modseq;         /* bumped by every change to the account's mail */
	uint32_t next_folder_id; /* INBOX is 0 */
	unsigned char pk[COFFER_PK_BYTES];
	uint64_t key_epoch; /* epoch of the master that wraps sk; 0 once shredded */
	unsigned char wrapped_sk[COFFER_WRAPPED_SK_BYTES];
	const unsigned char *name_box; /* account box of the name; NULL once shredded */
	size_t name_box_len;
};

struct coffer_folder_rec {
	uint32_t uidvalidity;
	uint32_t uidnext;
	int64_t created_at;
	const unsigned char *name_box;
	size_t name_box_len;
};

struct coffer_message_rec {
	unsigned char blob_id[COFFER_ID_BYTES];
	uint64_t size;                 /* plaintext bytes */
	int64_t internal_date;         /* ns; the Maildir mtime / IMAP INTERNALDATE */
	int64_t delivered_at;          /* ns */
	uint8_t flags;                 /* COFFER_FLAG_* bits (maildir/name.h) */
	uint8_t is_new;                /* 1: new/, 0: cur/ */
	uint32_t keywords;             /* bit i = the folder's keyword i */
	const unsigned char *name_box; /* Maildir unique name; NULL: derived */
	size_t name_box_len;
};

struct coffer_blob_rec {
	uint32_t refs; /* messages (or control files) that point at it */
	uint8_t kind;  /* enum coffer_blob_kind */
	int64_t created_at;
	uint64_t stored_size; /* bytes on disk */
};

/* Encoders append to out (a reset buffer) and return 0 or COFFER_ENOMEM. */
int coffer_account_rec_encode(const struct coffer_account_rec *r, struct coffer_buf *out);
int coffer_account_rec_decode(const void *p, size_t n, struct coffer_account_rec *r);
int coffer_folder_rec_encode(const struct coffer_folder_rec *r, struct coffer_buf *out);
int coffer_folder_rec_decode(const void *p, size_t n, struct coffer_folder_rec *r);
int coffer_message_rec_encode(const struct coffer_message_rec *r, struct coffer_buf *out);
int coffer_message_rec_decode(const void *p, size_t n, struct coffer_message_rec *r);
int coffer_blob_rec_encode(const struct coffer_blob_rec *r, struct coffer_buf *out);
int coffer_blob_rec_decode(const void *p, size_t n, struct coffer_blob_rec *r);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void coffer_hex(char *out, const unsigned char *p, size_t n);

#endif
