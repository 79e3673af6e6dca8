/*
 * index.h: the LMDB adapter. The only file that includes <lmdb.h>.
 *
 * One struct coffer_index per process per store (LMDB forbids opening one
 * environment twice in a process, and using one across fork()). Sub-database
 * names and their keys and values are listed in docs/design.md section 2;
 * record encodings live in record.c.
 *
 * Transactions are run through callbacks so that the adapter can redo them:
 *   - a write transaction that hits MDB_MAP_FULL is aborted, the map doubled
 *     and the callback run again from the start. A callback must therefore
 *     have no effect outside the transaction that it cannot repeat (it may
 *     build output in a buffer it resets at its start).
 *   - a transaction begun after another process grew the map
 *     (MDB_MAP_RESIZED) adopts the new size and is begun again.
 * Growing the map needs no transaction open in this process; a rwlock held
 * shared by every transaction and exclusively by the resize guarantees it,
 * so the mount daemon's threads may use one index concurrently.
 *
 * Values returned by coffer_txn_get() and passed to scan callbacks point
 * into the map: valid only until the end of the transaction.
 *
 * Durability: a write transaction returns 0 only after LMDB has synced the
 * data pages and the meta page (no MDB_NOSYNC), except a lazy one (below).
 */
#ifndef COFFER_INDEX_H
#define COFFER_INDEX_H

#include <stddef.h>
#include <stdint.h>

enum coffer_db {
	COFFER_DB_META,
	COFFER_DB_ACCOUNTS,
	COFFER_DB_ACCOUNT_NAMES,
	COFFER_DB_FOLDERS,
	COFFER_DB_FOLDER_NAMES,
	COFFER_DB_KEYWORDS,
	COFFER_DB_MESSAGES,
	COFFER_DB_BLOBS,
	COFFER_DB_UNSNAPPED,
	COFFER_DB_TRASH,
	COFFER_DB_MSG_NAMES,
	COFFER_DB_SNAPFREED, /* retired, always empty: snapshots derive the blobs
	                      * they free by comparing states; the number stays
	                      * because state records name databases by it */
	COFFER_DB_CTLFILES,
	COFFER_DB_AUTH,
	COFFER_DB_EVENTS,
	COFFER_DB_POOL, /* engine/pool.h; added later: made on first open */
	COFFER_DB_COUNT
};

struct coffer_index;
struct coffer_txn;

/* Opens (and with create, creates) the environment in directory dir, which
 * must exist. map_size is the initial map size in bytes. */
int coffer_index_open(const char *dir, uint64_t map_size, int create, struct coffer_index **ix_r);
/* Closes; accepts NULL and *ix == NULL. No transaction may be open. */
void coffer_index_close(struct coffer_index **ix);

typedef int (*coffer_txn_fn)(struct coffer_txn *txn, void *arg);

/* Runs fn in a write transaction and commits it if fn returns >= 0 (the
 * return value is passed through); aborts if fn returns < 0. */
int coffer_index_update(struct coffer_index *ix, coffer_txn_fn fn, void *arg);
/*
 * Lazy commits (the mount daemon). After coffer_index_set_lazy() (before any
 * transaction of this process), no commit syncs anything itself: LMDB runs
 * with MDB_NOSYNC. A commit made with COFFER_TXN_LAZY survives the death of
 * this process at once, and a crash of the system once coffer_index_sync()
 * has returned (the mount: on fsync, fsyncdir, its once-a-second tick and
 * unmount). A commit made without it returns after coffer_index_sync().
 * coffer_index_sync() syncs the file system (so the blobs written before
 * the commits, without their own fsync, are durable with them) and records
 * the newest commit as the *rollback point* (engine/rollback.h): after a
 * system crash the index reopens exactly at the last synced commit, never
 * at a meta page naming pages that did not reach the disk.
 *
 * Other processes commit as before (synced), and while a rollback point
 * exists each of their commits also moves it to the newest commit, before
 * and after (two syncfs calls), so that a rollback never undoes a commit
 * that returned. coffer_index_close() of the lazy index syncs and removes
 * the point. Without set_lazy, COFFER_TXN_LAZY changes nothing; so too when
 * set_lazy finds no room for the point (a full disk): it returns 0 and
 * every commit stays synced.
 */
#define COFFER_TXN_LAZY 1u
int coffer_index_set_lazy(struct coffer_index *ix);
/* 1 after coffer_index_set_lazy(): a blob written for a commit of this
 * index needs no fsync of its own (coffer_index_sync() covers it). */
int coffer_index_is_lazy(const struct coffer_index *ix);
int coffer_index_update_flags(struct coffer_index *ix, unsigned flags, coffer_txn_fn fn, void *arg);
/* Makes every commit so far durable (for a lazy index, with the blobs
 * written before them). */
int coffer_index_sync(struct coffer_index *ix);
/* Runs fn in a read-only transaction. */
int coffer_index_view(struct coffer_index *ix, coffer_txn_fn fn, void *arg);

int coffer_txn_get(struct coffer_txn *t, enum coffer_db db, const void *key, size_t klen,
                   const void **val_r, size_t *vlen_r);
#define COFFER_PUT_NOOVERWRITE 1u
int coffer_txn_put(struct coffer_txn *t, enum coffer_db db, const void *key, size_t klen,
                   const void *val, size_t vlen, unsigned flags);
/* COFFER_ENOTFOUND if absent. */
int coffer_txn_del(struct coffer_txn *t, enum coffer_db db, const void *key, size_t klen);

/* Calls fn for every key that starts with prefix (plen may be 0), in key
 * order. fn returns 0 to go on, > 0 to stop (scan returns 0), < 0 to stop
 * with that error. */
typedef int (*coffer_scan_fn)(const void *key, size_t klen, const void *val, size_t vlen,
                              void *arg);
int coffer_txn_scan(struct coffer_txn *t, enum coffer_db db, const void *prefix, size_t plen,
                    coffer_scan_fn fn, void *arg);
/* Same, starting at the first key >= start (which must begin with prefix). */
int coffer_txn_scan_from(struct coffer_txn *t, enum coffer_db db, const void *prefix, size_t plen,
                         const void *start, size_t slen, coffer_scan_fn fn, void *arg);
/* Deletes every key that starts with prefix; *n_r counts them (may be NULL). */
int coffer_txn_del_prefix(struct coffer_txn *t, enum coffer_db db, const void *prefix, size_t plen,
                          uint64_t *n_r);
/* Number of entries in db. */
int coffer_txn_count(struct coffer_txn *t, enum coffer_db db, uint64_t *n_r);

/*
 * Commit observer. A process may ask to hear, after each write transaction
 * of its own commits, which accounts' modseq it moved and from what to what
 * (account.c notes every bump). The mount uses it to tell its own changes
 * from other processes'. A transaction that moves more than
 * COFFER_TXN_NOTES accounts reports overflow = 1 and only the first ones.
 * The observer runs after the commit, in the committing thread, with no
 * transaction open; it must not begin one.
 */
#define COFFER_TXN_NOTES 8
#define COFFER_TXN_NOTE_ID 16
struct coffer_modseq_note {
	unsigned char acct[COFFER_TXN_NOTE_ID];
	uint64_t before, after;
};
typedef void (*coffer_commit_fn)(void *arg, const struct coffer_modseq_note *notes, size_t n,
                                 int overflow);
void coffer_index_set_observer(struct coffer_index *ix, coffer_commit_fn fn, void *arg);
/* Notes that t moved account acct's modseq from before to after (several
 * notes of one account fold into one). */
void coffer_txn_note_modseq(struct coffer_txn *t, const unsigned char *acct, uint64_t before,
                            uint64_t after);

/* The current map size in bytes, and the size used by data pages. */
int coffer_index_stat(struct coffer_index *ix, uint64_t *map_size_r, uint64_t *used_r);

#endif
