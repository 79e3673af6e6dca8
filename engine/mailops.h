/*
 * mailops.h: mailbox operations built on folder.h and message.h, as
 * transaction-level functions, for the mount (and later IMAP-like tools):
 *
 *   - folders: create, rename (optionally with every subfolder), delete
 *     (with its messages, keywords and control files);
 *   - messages: move to another folder keeping the blob (no copy, no
 *     re-encryption), a second reference to the same blob in a folder (a
 *     hard link), and renaming a message in place (new Maildir unique name,
 *     same uid).
 *
 * Every function runs inside the caller's write transaction and touches the
 * account (coffer_account_touch_txn), so snapshots see the change. Names
 * are canonical folder names (names.h). Functions that write a name box
 * take the account secret (the mount holds it).
 *
 * Format note: a folder's name box and a message's name box are bound to
 * the same associated data folder.c and message.c use ("fold-name" || acct
 * || fid, "msg-name" || acct || blob id); the two constructions are
 * repeated here, so a change there must be made here too.
 */
#ifndef COFFER_MAILOPS_H
#define COFFER_MAILOPS_H

#include "crypto.h"
#include "index.h"
#include "record.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* Creates folder canon: COFFER_EEXIST if it exists. */
int coffer_mailops_folder_create_txn(struct coffer_txn *t, struct coffer_store *st,
                                     const unsigned char *acct, const char *canon,
                                     const struct coffer_acct_secret *secret, int64_t now,
                                     uint32_t *fid_r);

/* Renames folder from to to (canonical names). With subfolders, every
 * folder "from/..." becomes "to/..." too. Folder ids, UIDVALIDITY, uids,
 * messages and control files stay. COFFER_ENOTFOUND if from is missing,
 * COFFER_EEXIST if to (or a renamed subfolder's target) exists, COFFER_EINVAL
 * for INBOX on either side or for to under from. */
int coffer_mailops_folder_rename_txn(struct coffer_txn *t, struct coffer_store *st,
                                     const unsigned char *acct, const char *from, const char *to,
                                     int subfolders, const struct coffer_acct_secret *secret);

/* Deletes folder canon and everything in it: messages (their blob
 * references dropped; last references go to the trash), keywords, control
 * files. COFFER_EINVAL for INBOX, COFFER_ENOTFOUND if missing. *messages_r
 * (may be NULL) counts the messages removed. */
int coffer_mailops_folder_delete_txn(struct coffer_txn *t, struct coffer_store *st,
                                     const unsigned char *acct, const char *canon, int64_t now,
                                     uint64_t *messages_r);

/* The canonical name of folder fid, into out (appended). */
int coffer_mailops_folder_name_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                                   const struct coffer_acct_secret *secret, struct coffer_buf *out);

/*
 * Places message (src_fid, uid) under a new name:
 *   - dst_fid == src_fid: renamed in place (same uid); flags, keywords and
 *     new/cur as given; a different unique name replaces the name entry;
 *   - dst_fid != src_fid and keep_src == 0: moved (new uid in dst, the
 *     blob's reference moves with it);
 *   - keep_src == 1: a second message in dst_fid (or src_fid) sharing the
 *     blob (coffer_blob_ref_txn), the hard link of the mount.
 * unique/unique_n is the message's Maildir unique name in dst;
 * old_unique/old_n its unique name in src (to drop its name entry). uid_r
 * gets the uid in dst. COFFER_EEXIST if dst already has that unique name.
 */
struct coffer_mailops_place {
	uint32_t src_fid, uid, dst_fid;
	const char *old_unique;
	size_t old_n;
	const char *unique;
	size_t unique_n;
	uint8_t flags;
	uint8_t is_new;
	uint32_t keywords;
	int keep_src;
	int64_t now;
};
int coffer_mailops_message_place_txn(struct coffer_txn *t, struct coffer_store *st,
                                     const unsigned char *acct,
                                     const struct coffer_mailops_place *p,
                                     const struct coffer_acct_secret *secret, uint32_t *uid_r);

/* A new message in folder fid pointing at an existing blob (one more
 * reference), with the given record fields (rec->name_box ignored) and
 * unique name. COFFER_ENOTFOUND if the blob is no longer referenced. */
int coffer_mailops_message_link_blob_txn(struct coffer_txn *t, struct coffer_store *st,
                                         const unsigned char *acct, uint32_t fid,
                                         const struct coffer_message_rec *rec, const char *unique,
                                         size_t unique_n, const struct coffer_acct_secret *secret,
                                         uint32_t *uid_r);

#endif
