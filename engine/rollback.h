/*
 * rollback.h: the rollback point of an index whose commits are not all
 * synced (engine/index.h, lazy commits).
 *
 * Why: a lazy commit (the mount's renames, flag changes, expunges) must
 * survive the death of the daemon at once, and a crash of the system only
 * once a directory or a file is fsynced. LMDB's MDB_NOSYNC gives the first
 * for free (the page cache) but not a safe second: the kernel may write a
 * commit's meta page before the data pages it names, and LMDB has no
 * checksums to notice. So the index keeps a *rollback point*: the two meta
 * pages of a commit known to be durable, with the boot it was taken in,
 * in the file ROLLBACK_FILE beside data.mdb. While the file exists:
 *
 *   - the process making unsynced commits keeps a read transaction open on
 *     the rollback point, so LMDB never reuses the pages of that tree (a
 *     page freed by commit F is reused only once no reader is older than
 *     F): the tree stays on disk as it was synced;
 *   - every synced point (coffer_index_sync, and any other process's commit)
 *     syncs the file system (the blobs written since, then the index) and
 *     records the newest commit as the rollback point;
 *   - the first opener after a reboot (another boot id) writes the saved
 *     meta pages back over data.mdb before LMDB opens it: the index is then
 *     exactly the last durable commit, whatever reached the disk after it.
 *     Within the same boot nothing is rolled back: the page cache held
 *     every commit, even one whose process was killed.
 *
 * Format (docs/format.md; host byte order, like data.mdb): two slots, each
 * a header { "CFRBK001", u64 seq, u64 txnid, u32 page size, u32 0, boot
 * id[48] }, the two meta pages, and a BLAKE2b-256 of the rest, slot i at a
 * fixed offset so that either header reads alone. A record goes to the
 * slot seq & 1 and is fdatasynced: a torn write leaves the other slot.
 *
 * Errors: coffer_err_set() codes. A handle is owned by its opener and
 * freed by coffer_rollback_close(); it is not thread-safe (index.c uses a
 * handle from one thread at a time).
 */
#ifndef COFFER_ROLLBACK_H
#define COFFER_ROLLBACK_H

#include <stddef.h>
#include <stdint.h>

#define COFFER_ROLLBACK_FILE "rollback"

struct coffer_rollback;

/*
 * Before LMDB opens the index in dir: if a rollback point from another boot
 * exists, writes its meta pages back into data.mdb, syncs it and removes
 * the point. *kept_r: the commit of a point of this boot, left in place; 0
 * when none is left.
 */
int coffer_rollback_recover(const char *dir, uint64_t *kept_r);

/* Opens the point of dir; create makes an empty one. COFFER_ENOTFOUND when
 * absent and !create. */
int coffer_rollback_open(const char *dir, int create, struct coffer_rollback **rb_r);
/* Reads the newest valid record again: another process may have written
 * one since. */
int coffer_rollback_reload(struct coffer_rollback *rb);
/* The commit of the newest valid record read; 0 when there is none. */
uint64_t coffer_rollback_txnid(const struct coffer_rollback *rb);
/*
 * Records commit txnid as the rollback point: metas are its two meta pages
 * (2 * psize bytes, copied from data.mdb under LMDB's write lock), and the
 * caller has made the commit durable (syncfs) and keeps its pages from
 * reuse. Records are serialized between processes (flock) and never go
 * back: when the newest record on disk is txnid or later, nothing is
 * written and 0 is returned.
 */
int coffer_rollback_record(struct coffer_rollback *rb, const void *metas, size_t psize,
                           uint64_t txnid);
/* Removes the point (durably: the directory is fsynced) and frees *rbp. */
int coffer_rollback_remove(struct coffer_rollback **rbp);
void coffer_rollback_close(struct coffer_rollback **rbp);

#endif
