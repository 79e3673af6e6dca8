/*
 * blob.h: blob reference counts and the deferred removal of blob files.
 *
 * A blob is referenced by one or more index entries (a message, or a
 * message hard-linked into two folders through the mount). When the last
 * reference goes, the blob's record moves to the trash sub-database in the
 * same transaction; its file is unlinked later by coffer_blob_collect().
 *
 * Why deferred: a snapshot copies blobs while reading an older LMDB view;
 * a blob removed under it would be missing from the snapshot. Snapshot
 * writers hold locks/blobgc.lock exclusively while they copy; the collector
 * takes it shared and without waiting, and skips its work (leaving the trash
 * for the next run) when a snapshot is running. Collection is idempotent:
 * a crash between unlinking files and deleting their trash records only
 * means the next run finds the files already gone.
 */
#ifndef COFFER_BLOB_H
#define COFFER_BLOB_H

#include "index.h"
#include "record.h"
#include "store.h"

#include <stdint.h>

/* The record of a fresh blob (refs 1, COFFER_EEXIST if it has one), its
 * unsnapped entry, and the end of its pool record (engine/pool.h) if it was
 * a pool file: what every writer commits with a new blob. */
int coffer_blob_add_txn(struct coffer_txn *t, const unsigned char *acct,
                        const unsigned char *blob_id, uint8_t kind, uint64_t stored_size,
                        int64_t created_at);
/* One more reference to an existing blob (COFFER_ENOTFOUND if none). */
int coffer_blob_ref_txn(struct coffer_txn *t, const unsigned char *acct,
                        const unsigned char *blob_id);
/* One reference fewer; at zero the blob moves to the trash (at time now)
 * and leaves the unsnapped list. */
int coffer_blob_unref_txn(struct coffer_txn *t, const unsigned char *acct,
                          const unsigned char *blob_id, int64_t now);

/* Unlinks the files of trashed blobs (all accounts, or only acct when it
 * is not NULL) and forgets them. *removed_r (may be NULL) counts them. Returns
 * 0 without doing anything when a snapshot holds the collection lock. */
int coffer_blob_collect(struct coffer_store *st, const unsigned char *acct, uint64_t *removed_r);

/* The collection lock, for snapshot writers: exclusive, waiting. The fd is
 * returned in *fd_r; close it to release. */
int coffer_blob_gc_lock_exclusive(struct coffer_store *st, int *fd_r);

#endif
