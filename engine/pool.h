/*
 * pool.h: empty blob files made ahead of the writers that fill them.
 *
 * Why: a new blob is durable only once its file is fsynced AND its
 * directory is (the directory entry), and each fsync is a flush of the
 * disk's cache. A writer that takes a file made earlier, whose entry is
 * already durable, needs only the file's fsync: one flush per message fewer
 * (docs/design.md section 6; docs/benchmarks.md).
 *
 * A pool file is an empty regular file at the path of a blob that does not
 * exist yet (STORE/blobs/<acct>/<xx>/<id>), with a record in the pool
 * sub-database (key account id || blob id, value: made-at, u64 LE ns).
 * A batch is made in one blob directory: files created, the directory
 * fsynced once, then one commit records them all. For a lazy index (the
 * mount) the directory is not fsynced and the commit is lazy: its next
 * sync makes entries and records durable together.
 *
 * Claiming (coffer_pool_claim): open a recorded file, take flock(LOCK_EX |
 * LOCK_NB) on it, and check that it is still empty. The files the claiming
 * store handle made itself are tried first (coffer_pool_hints), the
 * account's records in key order after them. The lock is held as long
 * as the caller keeps the descriptor, so two writers never fill the same
 * file, and a file another writer has filled (not empty) or removed is
 * skipped. The writer then fills and fsyncs the file and, in the
 * transaction that records the blob, drops the pool record
 * (coffer_pool_take_txn) -- or, for a spooled delivery (engine/spool.h),
 * leaves file and record for an absorb to index. A filled file's record is
 * therefore never dropped by a claim; a claim that finds no empty file but
 * filled ones absorbs the account's spooled deliveries before it makes a
 * batch, so an account's records stay about a batch or two.
 *
 * Crash safety. A crash before the batch's commit leaves empty files no
 * record names: orphans, which `coffer verify --repair` removes after its
 * grace period. A crash after a claimant wrote but before its commit leaves a
 * non-empty file with a pool record and no note: an orphan as well (verify
 * absorbs first, then treats a pool record only as excusing an EMPTY file).
 * A record whose file is gone is dropped by the claim that finds it; one
 * whose file is filled without a note, by coffer_pool_trim().
 *
 * Pool files hold no data (nothing to shred); an account's removal drops
 * its records with its other per-account keys and its files with its blob
 * directory. Pools of accounts that receive no mail are trimmed by the
 * retention worker (records older than a day).
 */
#ifndef COFFER_POOL_H
#define COFFER_POOL_H

#include "buf.h"
#include "index.h"
#include "store.h"

#include <stdint.h>

#define COFFER_POOL_BATCH 32 /* files per batch (one directory fsync) */
/* for a lazy index (the mount): a batch costs no flush, and the flusher
 * makes it ahead of need, so it makes more at once */
#define COFFER_POOL_BATCH_LAZY 256

/*
 * Claims an empty pool file of account acct, making a batch first when the
 * account has none. On success: blob_id_r names it, *fd_r is open
 * (O_RDWR, locked; the caller closes it), path_r holds its path. The caller
 * checks the store's room first, as for any blob (engine/reserve.h).
 * COFFER_ENOTFOUND when no file could be claimed (the caller then creates
 * a blob the usual way). For a lazy index no batch is made here: its
 * writer (the mount's flusher) tops the pool up ahead of need.
 */
int coffer_pool_claim(struct coffer_store *st, const unsigned char *acct, unsigned char *blob_id_r,
                      int *fd_r, struct coffer_buf *path_r);

/* In every transaction that records a new blob (engine/message.c,
 * engine/ctlfile.c): drops its pool record, if it has one. */
int coffer_pool_take_txn(struct coffer_txn *t, const unsigned char *acct,
                         const unsigned char *blob_id);

/* Makes a batch of COFFER_POOL_BATCH files (COFFER_POOL_BATCH_LAZY for a
 * lazy index) for acct: 1, or 0 when another process is making one
 * (nothing done). */
int coffer_pool_fill(struct coffer_store *st, const unsigned char *acct);

/* Makes a batch for acct when its pool records fewer than min files: a
 * writer that keeps fills off its requests' path calls this ahead of need
 * (the mount's flusher). 1 when it made one, 0 when the pool had min files
 * (or another process was making a batch). */
int coffer_pool_top_up(struct coffer_store *st, const unsigned char *acct, size_t min);

/* The files a store handle's fills made, remembered for its claims (see
 * pool.c): made and freed by the store (engine/store.c), with the handle.
 * Thread-safe. */
struct coffer_pool_hints;
struct coffer_pool_hints *coffer_pool_hints_new(void);
void coffer_pool_hints_free(struct coffer_pool_hints **hp);

/* 1 if the pool records blob_id of acct (an empty file there is no orphan),
 * 0 if not, or an error. */
int coffer_pool_has_txn(struct coffer_txn *t, const unsigned char *acct,
                        const unsigned char *blob_id);

/* Removes pool files (still empty, not claimed) and records made before
 * `before` (ns), and records whose file is gone or filled without a note
 * (a spooled delivery's stays: the absorb's). *removed_r (may be NULL)
 * counts the records dropped. */
int coffer_pool_trim(struct coffer_store *st, int64_t before, uint64_t *removed_r);

#endif
