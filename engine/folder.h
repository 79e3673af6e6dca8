/*
 * folder.h: an account's folders.
 *
 * A folder has a numeric id (INBOX is 0), UIDVALIDITY and UIDNEXT, and a
 * name kept only in an account box; folder_names maps MAC(account, name) to
 * the id, so delivery can find or create a folder by name without secrets
 * (the new folder's name is then sealed to the account's public key).
 *
 * UIDs are allocated from uidnext inside the write transaction that stores
 * the message, so they are unique and increasing per folder whatever the
 * number of concurrent writers. UIDVALIDITY is the creation time in seconds,
 * made larger than any earlier folder of the account, so that a folder
 * deleted and created again gets a new one.
 */
#ifndef COFFER_FOLDER_H
#define COFFER_FOLDER_H

#include "account.h"
#include "crypto.h"
#include "index.h"
#include "store.h"

#include <stdint.h>

#define COFFER_FOLDER_INBOX 0u

/*
 * Finds folder canon (canonical name, names.h) of account acct; with create,
 * makes it if missing (updating the account record's next_folder_id), its
 * name boxed with secret, or sealed to the account's public key when secret
 * is NULL. *created_r tells which happened (may be NULL).
 */
int coffer_folder_resolve_txn(struct coffer_txn *t, struct coffer_store *st,
                              const unsigned char *acct, const char *canon, int create,
                              const struct coffer_acct_secret *secret, int64_t now, uint32_t *fid_r,
                              int *created_r);
/* The same with create, a new folder's name boxed by sealer (borrowed; see
 * crypto.h): `coffer deliver`, whose other boxes share the sealer. */
int coffer_folder_resolve_sealed_txn(struct coffer_txn *t, struct coffer_store *st,
                                     const unsigned char *acct, const char *canon,
                                     struct coffer_sealer *sealer, int64_t now, uint32_t *fid_r,
                                     int *created_r);

/* The folder_names key of canonical name canon in account acct. */
int coffer_folder_name_key(struct coffer_store *st, const unsigned char *acct, const char *canon,
                           unsigned char key[COFFER_KEY_FOLDER_NAME]);
/* Makes folder fid's name box for canon, appended to out: under the data key
 * of secret, or sealed to pk when secret is NULL. The only place that knows
 * the box's associated data, with coffer_folder_name_open(). */
int coffer_folder_name_box(struct coffer_buf *out, const unsigned char *acct, uint32_t fid,
                           const char *canon, const struct coffer_acct_secret *secret,
                           const unsigned char *pk);
/* Opens a folder's name box (from its record) into out (appended). */
int coffer_folder_name_open(const unsigned char *acct, uint32_t fid, const unsigned char *box,
                            size_t n, const struct coffer_acct_secret *secret,
                            struct coffer_buf *out);
/* Opens keyword idx's box of folder fid into out (appended). */
int coffer_folder_keyword_open(const unsigned char *acct, uint32_t fid, unsigned idx,
                               const unsigned char *box, size_t n,
                               const struct coffer_acct_secret *secret, struct coffer_buf *out);

/* Reads a folder's record; COFFER_ENOTFOUND if there is none. */
int coffer_folder_get_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                          struct coffer_folder_rec *rec_r);
int coffer_folder_put_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                          const struct coffer_folder_rec *rec);

struct coffer_folder_info {
	uint32_t id;
	const char *name; /* canonical, decrypted; valid during the callback */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t messages;
	uint64_t unseen;
	uint64_t bytes;
};

/* Every folder of the open mailbox, sorted by name. */
typedef int (*coffer_folder_fn)(const struct coffer_folder_info *info, void *arg);
int coffer_folder_list(struct coffer_mailbox *mb, coffer_folder_fn fn, void *arg);

/* The id of folder name (any accepted spelling) in the open mailbox:
 * COFFER_ENOTFOUND with a detail if there is none. */
int coffer_folder_find(struct coffer_mailbox *mb, const char *name, uint32_t *fid_r);

/*
 * Keywords: each folder has up to COFFER_FOLDER_KEYWORDS_MAX keyword names
 * (Dovecot's letters a..z), each in an account box in the keywords
 * sub-database (AD "kw" || acct || folder id || index). A message's keyword
 * bit i refers to its folder's keyword i.
 */
#define COFFER_FOLDER_KEYWORDS_MAX 26

/* Finds keyword name in folder fid, or adds it at the first free index:
 * *idx_r. COFFER_ELIMIT when all 26 are taken. Needs the secret. */
int coffer_folder_keyword_intern_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                                     const char *name, const struct coffer_acct_secret *secret,
                                     unsigned *idx_r);
/* Loads the folder's keyword names: names_r[i] is NULL or a malloc'd name.
 * Free with coffer_folder_keywords_free(). */
int coffer_folder_keywords_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                               const struct coffer_acct_secret *secret,
                               char *names_r[COFFER_FOLDER_KEYWORDS_MAX]);
void coffer_folder_keywords_free(char *names[COFFER_FOLDER_KEYWORDS_MAX]);

#endif
