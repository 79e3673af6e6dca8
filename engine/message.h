/*
 * message.h: messages in the index, and reading them back.
 *
 * A message is an index record (account, folder, uid → blob id, size, dates,
 * flags, keywords, optional Maildir name) plus its blob. Adding one happens
 * after its blob is durable (docs/design.md section 6): the caller writes and
 * fsyncs the blob, then calls coffer_message_add_txn() in a write
 * transaction, which allocates the uid and records the blob (refs = 1) and
 * its place in the next snapshot's work list (unsnapped).
 *
 * The Maildir unique name of a message written by `coffer deliver` is not
 * stored: it is derived from immutable fields as
 * "<delivered seconds>.C<first 16 hex of blob id>.coffer,S=<size>".
 * Names chosen by other writers (the mount, import) are kept in an account
 * box bound to the blob id.
 */
#ifndef COFFER_MESSAGE_H
#define COFFER_MESSAGE_H

#include "account.h"
#include "buf.h"
#include "index.h"
#include "record.h"

#include <stdint.h>

struct coffer_message_new {
	const unsigned char *acct;
	const char *folder; /* canonical name; created when missing */
	unsigned char blob_id[COFFER_ID_BYTES];
	uint64_t size;        /* plaintext */
	uint64_t stored_size; /* blob bytes on disk */
	int64_t internal_date;
	int64_t delivered_at;
	uint8_t flags;
	uint8_t is_new;
	uint32_t keywords;
	const char *unique; /* Maildir unique name, or NULL to derive */
	size_t unique_len;
	/* with secret NULL: makes the boxes (new folder name, Maildir name) in
	 * place of sealing each to the account's public key; borrowed (crypto.h
	 * "sealer"). NULL: sealed boxes. Ignored when a secret is given. */
	struct coffer_sealer *sealer;
};

/* In a write transaction: checks the account is active (name is used in the
 * errors), resolves or creates the folder (boxing a new folder name with
 * secret, or, when secret is NULL, with m->sealer or sealed to the account's
 * public key), allocates the uid and stores the records. fid_r and uid_r may
 * be NULL. */
int coffer_message_add_txn(struct coffer_txn *t, struct coffer_store *st, const char *name,
                           const struct coffer_message_new *m,
                           const struct coffer_acct_secret *secret, uint32_t *fid_r,
                           uint32_t *uid_r);

/* The same into existing folder fid, with no check of the account's state
 * and no name box (m->unique and m->sealer must be NULL): what a spooled
 * delivery, accepted earlier, becomes (engine/spool.h). m->folder and name
 * only label errors. COFFER_ENOTFOUND when the folder is gone. */
int coffer_message_add_to_txn(struct coffer_txn *t, struct coffer_store *st, const char *name,
                              const struct coffer_message_new *m, uint32_t fid, uint32_t *uid_r);

struct coffer_message {
	uint32_t folder_id;
	uint32_t uid;
	struct coffer_message_rec rec; /* rec.name_box is NULL here */
	const char *unique;            /* Maildir unique name; valid during the callback */
};

/* Every message of folder fid, by uid, read in one transaction and passed
 * to fn after it ends (so fn may do slow work). */
typedef int (*coffer_message_fn)(const struct coffer_message *m, void *arg);
int coffer_message_list(struct coffer_mailbox *mb, uint32_t fid, coffer_message_fn fn, void *arg);

#define COFFER_KEY_MSG_NAME (COFFER_ID_BYTES + 4 + COFFER_MAC_BYTES)
/* The msg_names key of a Maildir unique name in folder fid. */
int coffer_message_name_key(struct coffer_store *st, const unsigned char *acct, uint32_t fid,
                            const char *unique, size_t n, unsigned char key[COFFER_KEY_MSG_NAME]);
/* Finds the uid of the message with that unique name: COFFER_ENOTFOUND if none. */
int coffer_message_find_name_txn(struct coffer_txn *t, struct coffer_store *st,
                                 const unsigned char *acct, uint32_t fid, const char *unique,
                                 size_t n, uint32_t *uid_r);
/* Reads a record; rec->name_box points into the map (valid in t). */
int coffer_message_get_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                           uint32_t uid, struct coffer_message_rec *rec_r);
/* Rewrites a record in place (flags, keywords, new/cur), bumping the
 * account's modseq. The name box, if any, must be the one read from t. */
int coffer_message_update_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                              uint32_t uid, const struct coffer_message_rec *rec);
/* Removes message uid whose unique name is unique (its name index entry
 * too) and drops its blob reference (the blob goes to the trash when that
 * was the last). */
int coffer_message_expunge_txn(struct coffer_txn *t, struct coffer_store *st,
                               const unsigned char *acct, uint32_t fid, uint32_t uid,
                               const char *unique, size_t n, int64_t now);
/* Makes the Maildir-name box of a message whose blob is blob_id (appended
 * to out): under secret's data key, or sealed to pk when secret is NULL. The
 * box is bound to the blob, so it moves with the message. */
int coffer_message_name_box(struct coffer_buf *out, const unsigned char *acct,
                            const unsigned char *blob_id, const char *unique, size_t n,
                            const struct coffer_acct_secret *secret, const unsigned char *pk);
/* Opens the name box of rec (message names written by the mount or import)
 * or derives the name, into out (appended). */
int coffer_message_unique_name(const struct coffer_message_rec *rec, const unsigned char *acct,
                               const struct coffer_acct_secret *secret, struct coffer_buf *out);

/* Writes the derived unique name of a record into out (appended). */
int coffer_message_derived_name(const struct coffer_message_rec *rec, struct coffer_buf *out);

struct coffer_message_reader;

/* Opens message uid of folder fid for reading. folder is the folder's name
 * for error details. COFFER_ENOTFOUND if there is no such uid; COFFER_ECORRUPT
 * (detail: account, folder, uid, what is wrong) if its blob is missing or
 * damaged. */
int coffer_message_open(struct coffer_mailbox *mb, uint32_t fid, const char *folder, uint32_t uid,
                        struct coffer_message_reader **r_r);
/* Sequential read; *n_r = 0 at the end. Errors name the message. */
int coffer_message_read(struct coffer_message_reader *r, void *buf, size_t cap, size_t *n_r);
int coffer_message_pread(struct coffer_message_reader *r, void *buf, size_t cap, uint64_t off,
                         size_t *n_r);
const struct coffer_message_rec *coffer_message_record(const struct coffer_message_reader *r);
void coffer_message_close(struct coffer_message_reader **r);

#endif
