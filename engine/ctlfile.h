/*
 * ctlfile.h: control files: the non-message files an IMAP server keeps
 * beside a Maildir (dovecot-uidlist, dovecot-keywords, subscriptions,
 * dovecot.index*, dovecot-uidvalidity*, maildirfolder, dotlocks...), stored
 * encrypted like mail.
 *
 * Each version of a control file is one blob of kind COFFER_BLOB_CONTROL
 * (content key wrapped under the account's data key). The ctlfiles
 * sub-database maps
 *     acct || folder id (u32 BE) || MAC(index_key, "ctlf" || acct || fid || name)
 * to a record: version u8, blob id (16 B; all zero for an empty file, which
 * has no blob), size u64, mtime (ns) i64, mode u32, name box length u32,
 * name box (account box, AD "ctl-name" || acct || fid). The name is only in
 * the box; lookups go through the MAC.
 *
 * Replacing a file's content: write the new blob (coffer_ctlfile_blob_write,
 * durable when it returns), then in one write transaction put the record
 * with fresh_blob set (the blob's record is created with one reference) —
 * the old blob loses its reference. Renaming over an existing name is one
 * transaction (atomic for readers). Crash safety is the message rule
 * (design.md section 6): the blob is durable before the commit that names it.
 */
#ifndef COFFER_CTLFILE_H
#define COFFER_CTLFILE_H

#include "buf.h"
#include "crypto.h"
#include "index.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

#define COFFER_KEY_CTLFILE (COFFER_ID_BYTES + 4 + COFFER_MAC_BYTES)
/* Control files above this size are refused (EFBIG in the mount). */
#define COFFER_CTLFILE_MAX (256u * 1024u * 1024u)
#define COFFER_CTLFILE_NAME_MAX 255

struct coffer_ctlfile_rec {
	unsigned char blob_id[COFFER_ID_BYTES]; /* all zero: empty, no blob */
	uint64_t size;                          /* plaintext bytes */
	uint64_t stored_size;                   /* blob bytes on disk (for a fresh blob's record) */
	int64_t mtime;                          /* ns */
	uint32_t mode;                          /* permission bits */
	int fresh_blob;                         /* put: blob_id is new, create its record */
};

/* Decodes a ctlfiles value (snapshots and verify read them raw). */
int coffer_ctlfile_rec_decode(const void *p, size_t n, struct coffer_ctlfile_rec *rec_r);

/* 1 if the blob id is the "no blob" id (all zero). */
int coffer_ctlfile_is_empty_blob(const unsigned char *blob_id);

/* Reads control file name of folder fid: COFFER_ENOTFOUND if absent. */
int coffer_ctlfile_get_txn(struct coffer_txn *t, struct coffer_store *st, const unsigned char *acct,
                           uint32_t fid, const char *name, size_t n,
                           struct coffer_ctlfile_rec *rec_r);
/* Creates or replaces control file name (dropping the old blob's reference
 * when it changes). With excl, COFFER_EEXIST if it exists. */
int coffer_ctlfile_put_txn(struct coffer_txn *t, struct coffer_store *st, const unsigned char *acct,
                           uint32_t fid, const char *name, size_t n,
                           const struct coffer_ctlfile_rec *rec,
                           const struct coffer_acct_secret *secret, int excl, int64_t now);
/* Removes it: COFFER_ENOTFOUND if absent. */
int coffer_ctlfile_del_txn(struct coffer_txn *t, struct coffer_store *st, const unsigned char *acct,
                           uint32_t fid, const char *name, size_t n, int64_t now);
/* Renames from (in from_fid) to to (in to_fid), replacing to if it exists:
 * one transaction, so readers see the old or the new file, never neither. */
int coffer_ctlfile_rename_txn(struct coffer_txn *t, struct coffer_store *st,
                              const unsigned char *acct, uint32_t from_fid, const char *from,
                              size_t from_n, uint32_t to_fid, const char *to, size_t to_n,
                              const struct coffer_acct_secret *secret, int64_t now);
/* Every control file of folder fid (decrypted names), in key order. name is
 * valid during the call only. */
typedef int (*coffer_ctlfile_fn)(const char *name, size_t n, const struct coffer_ctlfile_rec *rec,
                                 void *arg);
int coffer_ctlfile_list_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                            const struct coffer_acct_secret *secret, coffer_ctlfile_fn fn,
                            void *arg);
/* Deletes every control file of folder fid (used when deleting a folder). */
int coffer_ctlfile_delete_folder_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                                     int64_t now);

/* Writes n bytes as a new blob of kind (COFFER_BLOB_CONTROL or _MESSAGE)
 * under the account's data key; durable (blob and directory fsynced) on
 * return, or, when the store's index is lazy (engine/index.h), once
 * coffer_index_sync() returns. n == 0 with kind CONTROL writes nothing and returns the zero id.
 * On failure nothing is left behind. */
int coffer_ctlfile_blob_write(struct coffer_store *st, const unsigned char *acct, uint8_t kind,
                              const struct coffer_acct_secret *secret, const void *p, size_t n,
                              unsigned char blob_id_r[COFFER_ID_BYTES], uint64_t *stored_r);
/* Reads a control file's whole content into out (appended); the size read
 * must equal rec->size (COFFER_ECORRUPT otherwise). */
int coffer_ctlfile_read(struct coffer_store *st, const unsigned char *acct,
                        const struct coffer_acct_secret *secret,
                        const struct coffer_ctlfile_rec *rec, struct coffer_buf *out);

/* Blob files for streaming writers: creates STORE/blobs/<acct>/<xx>/ (durably)
 * and a new blob file with a random id, O_EXCL, mode 0600. */
int coffer_ctlfile_blobfile_create(struct coffer_store *st, const unsigned char *acct,
                                   unsigned char blob_id_r[COFFER_ID_BYTES], int *fd_r,
                                   struct coffer_buf *path_r);
/*
 * Makes a blob file written for a commit durable before that commit: an
 * fsync of the file and (unless pooled: a pool file's entry is durable
 * already) of its directory; nothing when the index is lazy, whose next
 * sync covers every blob written before its commits (engine/index.h).
 */
int coffer_ctlfile_blobfile_sync(struct coffer_store *st, int fd, const char *path, int pooled);

#endif
