/*
 * index.c: the LMDB adapter (see index.h for the contract).
 *
 * Map growth. LMDB reports MDB_MAP_FULL from a put or a commit; the
 * transaction is then dead. coffer_index_update() aborts it, takes the resize
 * lock exclusively (so no other thread of this process has a transaction
 * open), doubles the map with mdb_env_set_mapsize(), and runs the callback
 * again. Other processes find out at their next mdb_txn_begin(), which fails
 * with MDB_MAP_RESIZED; we then call mdb_env_set_mapsize(env, 0) to adopt the
 * size recorded in the file, and begin again. A map can only grow.
 *
 * Readers: maxreaders is raised to 1024 and mdb_reader_check() runs at open,
 * so slots left by killed processes are reclaimed. MDB_NOTLS lets a read
 * transaction be used by whichever thread holds it (the mount daemon).
 *
 * Errors are translated here and nowhere else: MDB_NOTFOUND → NOTFOUND,
 * MDB_KEYEXIST → EEXIST, corruption codes → CORRUPT, reader table full →
 * TEMP, ENOSPC → NOSPACE.
 */
#include "index.h"

#include "errors.h"
#include "io.h"
#include "rollback.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MAP_SIZE (1ull << 40) /* 1 TiB of address space, never more */

static const char *const db_names[COFFER_DB_COUNT] = {
	[COFFER_DB_META] = "meta",
	[COFFER_DB_ACCOUNTS] = "accounts",
	[COFFER_DB_ACCOUNT_NAMES] = "account_names",
	[COFFER_DB_FOLDERS] = "folders",
	[COFFER_DB_FOLDER_NAMES] = "folder_names",
	[COFFER_DB_KEYWORDS] = "keywords",
	[COFFER_DB_MESSAGES] = "messages",
	[COFFER_DB_BLOBS] = "blobs",
	[COFFER_DB_UNSNAPPED] = "unsnapped",
	[COFFER_DB_TRASH] = "trash",
	[COFFER_DB_MSG_NAMES] = "msg_names",
	[COFFER_DB_SNAPFREED] = "snapfreed",
	[COFFER_DB_CTLFILES] = "ctlfiles",
	[COFFER_DB_AUTH] = "auth",
	[COFFER_DB_EVENTS] = "events",
	[COFFER_DB_POOL] = "pool",
};

struct coffer_index {
	MDB_env *env;
	MDB_dbi dbi[COFFER_DB_COUNT];
	pthread_rwlock_t resize_lock;
	coffer_commit_fn observer; /* set before any transaction, then read-only */
	void *observer_arg;
	char *dir;
	size_t psize;
	int lazy; /* MDB_NOSYNC (coffer_index_set_lazy) */
	/* lazy only, changed under barrier_lock: the rollback point, and a
	 * reader on its commit, so that LMDB never reuses that tree's pages */
	pthread_mutex_t barrier_lock;
	struct coffer_rollback *rb;
	MDB_txn *pin;
	uint64_t durable_txnid; /* the point's commit; atomic */
};

struct coffer_txn {
	struct coffer_index *ix;
	MDB_txn *txn;
	int map_full; /* a put hit MDB_MAP_FULL: grow and redo */
	/* modseq moves, for the observer (write transactions only) */
	struct coffer_modseq_note notes[COFFER_TXN_NOTES];
	size_t n_notes;
	int notes_overflow;
};

static int map_err(int rc, const char *what)
{
	switch (rc) {
	case 0: return 0;
	case MDB_NOTFOUND: return COFFER_ENOTFOUND;
	case MDB_KEYEXIST: return COFFER_EEXIST;
	case MDB_MAP_FULL: return coffer_err_set(COFFER_ENOSPACE, "index: %s: map full", what);
	case MDB_READERS_FULL:
		return coffer_err_set(COFFER_ETEMP, "index: %s: reader table full", what);
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_BAD_TXN:
		return coffer_err_set(COFFER_ECORRUPT, "index: %s: %s", what, mdb_strerror(rc));
	case ENOSPC:
	case EDQUOT:
		return coffer_err_set(COFFER_ENOSPACE, "index: %s: no space left on device", what);
	case EACCES:
	case EPERM: return coffer_err_set(COFFER_EPERM, "index: %s: %s", what, mdb_strerror(rc));
	}
	if (rc > 0)
		return coffer_err_set(coffer_err_from_errno(rc), "index: %s: %s", what,
		                      mdb_strerror(rc));
	return coffer_err_set(COFFER_EIO, "index: %s: %s", what, mdb_strerror(rc));
}

/* Sub-databases added after the format's first release: a store made
 * before has none, and gets them, empty, from the first open. */
#define FIRST_LATE_DB COFFER_DB_POOL

static int open_late(struct coffer_index *ix)
{
	MDB_txn *txn = NULL;
	int rc;

	rc = mdb_txn_begin(ix->env, NULL, 0, &txn);
	for (int i = FIRST_LATE_DB; rc == 0 && i < COFFER_DB_COUNT; i++)
		rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &ix->dbi[i]);
	if (rc == 0)
		return mdb_txn_commit(txn);
	if (txn)
		mdb_txn_abort(txn);
	return rc;
}

/*
 * LMDB reports a short write as EIO ("TODO: Use which error code?" in
 * mdb_page_flush): on a disk that fills up part-way through a commit's
 * pages, that is ENOSPC, a temporary failure, not damage. The commit was not
 * made either way.
 */
static int commit_errno(struct coffer_index *ix, int rc)
{
	const char *dir;

	if (rc != EIO || mdb_env_get_path(ix->env, &dir) != 0)
		return rc;
	return coffer_io_free_bytes(dir) < (1u << 20) ? ENOSPC : rc;
}

/*
 * A rollback point names a commit this index made: records never go back
 * (engine/rollback.h), so one ahead of the index's newest commit belongs to
 * another data.mdb (replaced by hand while a point was left) and would
 * keep every later record from being written. It is removed. kept: the
 * point's commit as recovery read it (0: none); the file is read again
 * only when that is ahead.
 */
static int drop_foreign_point(struct coffer_index *ix, uint64_t kept)
{
	struct coffer_rollback *rb = NULL;
	MDB_envinfo info;
	int rc;

	mdb_env_info(ix->env, &info);
	if (kept <= info.me_last_txnid)
		return 0;
	rc = coffer_rollback_open(ix->dir, 0, &rb);
	if (rc == COFFER_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	if (coffer_rollback_txnid(rb) > info.me_last_txnid)
		return coffer_rollback_remove(&rb);
	coffer_rollback_close(&rb);
	return 0;
}

int coffer_index_open(const char *dir, uint64_t map_size, int create, struct coffer_index **ix_r)
{
	struct coffer_index *ix;
	MDB_txn *txn = NULL;
	MDB_stat st;
	uint64_t kept;
	int rc, dead, late = 0;

	*ix_r = NULL;
	/* before LMDB reads a meta page that may name pages never written */
	rc = coffer_rollback_recover(dir, &kept);
	if (rc < 0)
		return rc;
	ix = calloc(1, sizeof *ix);
	if (ix == NULL || (ix->dir = strdup(dir)) == NULL) {
		free(ix);
		return coffer_err_set(COFFER_ENOMEM, "index: out of memory");
	}
	pthread_rwlock_init(&ix->resize_lock, NULL);
	pthread_mutex_init(&ix->barrier_lock, NULL);
	rc = mdb_env_create(&ix->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(ix->env, COFFER_DB_COUNT + 8);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(ix->env, 1024);
	if (rc == 0)
		rc = mdb_env_set_mapsize(ix->env, map_size);
	if (rc != 0) {
		rc = map_err(rc, "setup");
		goto fail;
	}
	rc = mdb_env_open(ix->env, dir, MDB_NOTLS, 0600);
	if (rc != 0) {
		if (rc == ENOENT && !create)
			rc = coffer_err_set(COFFER_ENOTFOUND, "index %s: not found", dir);
		else
			rc = map_err(rc, "open");
		goto fail;
	}
	mdb_reader_check(ix->env, &dead);
	rc = mdb_txn_begin(ix->env, NULL, create ? 0 : MDB_RDONLY, &txn);
	if (rc == MDB_MAP_RESIZED) {
		mdb_env_set_mapsize(ix->env, 0);
		rc = mdb_txn_begin(ix->env, NULL, create ? 0 : MDB_RDONLY, &txn);
	}
	if (rc != 0) {
		rc = map_err(rc, "begin");
		goto fail;
	}
	for (int i = 0; i < COFFER_DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, db_names[i], create ? MDB_CREATE : 0, &ix->dbi[i]);
		if (rc == MDB_NOTFOUND && i >= FIRST_LATE_DB) {
			late = 1;
			continue;
		}
		if (rc != 0) {
			rc = rc == MDB_NOTFOUND
			         ? coffer_err_set(COFFER_ECORRUPT, "index: sub-database %s missing",
			                          db_names[i])
			         : map_err(rc, "open sub-database");
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc == 0 && late)
		rc = open_late(ix);
	if (rc != 0) {
		rc = map_err(rc, "commit");
		goto fail;
	}
	mdb_env_stat(ix->env, &st);
	ix->psize = st.ms_psize;
	rc = drop_foreign_point(ix, kept);
	if (rc < 0)
		goto fail;
	*ix_r = ix;
	return 0;
fail:
	mdb_env_close(ix->env);
	pthread_rwlock_destroy(&ix->resize_lock);
	pthread_mutex_destroy(&ix->barrier_lock);
	free(ix->dir);
	free(ix);
	return rc;
}

static int retire(struct coffer_index *ix);

void coffer_index_close(struct coffer_index **ixp)
{
	struct coffer_index *ix = ixp ? *ixp : NULL;

	if (ix == NULL)
		return;
	if (ix->lazy)
		retire(ix);
	mdb_env_close(ix->env);
	pthread_rwlock_destroy(&ix->resize_lock);
	pthread_mutex_destroy(&ix->barrier_lock);
	free(ix->dir);
	free(ix);
	*ixp = NULL;
}

static int grow(struct coffer_index *ix)
{
	MDB_envinfo info;
	uint64_t size;
	int rc;

	pthread_rwlock_wrlock(&ix->resize_lock);
	mdb_env_info(ix->env, &info);
	size = (uint64_t)info.me_mapsize;
	if (size >= MAX_MAP_SIZE) {
		pthread_rwlock_unlock(&ix->resize_lock);
		return coffer_err_set(COFFER_ENOSPACE, "index: map reached its %llu byte limit",
		                      (unsigned long long)MAX_MAP_SIZE);
	}
	rc = mdb_env_set_mapsize(ix->env, (size_t)(size * 2));
	pthread_rwlock_unlock(&ix->resize_lock);
	return rc ? map_err(rc, "grow map") : 0;
}

static int begin(struct coffer_index *ix, unsigned flags, MDB_txn **txn_r)
{
	int rc;

	for (int tries = 0; tries < 4; tries++) {
		pthread_rwlock_rdlock(&ix->resize_lock);
		rc = mdb_txn_begin(ix->env, NULL, flags, txn_r);
		if (rc != MDB_MAP_RESIZED)
			break;
		pthread_rwlock_unlock(&ix->resize_lock);
		pthread_rwlock_wrlock(&ix->resize_lock);
		mdb_env_set_mapsize(ix->env, 0);
		pthread_rwlock_unlock(&ix->resize_lock);
	}
	if (rc != 0) {
		pthread_rwlock_unlock(&ix->resize_lock);
		return map_err(rc, "begin transaction");
	}
	return 0;
}

static void end(struct coffer_index *ix)
{
	pthread_rwlock_unlock(&ix->resize_lock);
}

void coffer_index_set_observer(struct coffer_index *ix, coffer_commit_fn fn, void *arg)
{
	ix->observer = fn;
	ix->observer_arg = arg;
}

void coffer_txn_note_modseq(struct coffer_txn *t, const unsigned char *acct, uint64_t before,
                            uint64_t after)
{
	size_t i;

	for (i = 0; i < t->n_notes; i++)
		if (memcmp(t->notes[i].acct, acct, COFFER_TXN_NOTE_ID) == 0) {
			t->notes[i].after = after;
			return;
		}
	if (t->n_notes == COFFER_TXN_NOTES) {
		t->notes_overflow = 1;
		return;
	}
	memcpy(t->notes[i].acct, acct, COFFER_TXN_NOTE_ID);
	t->notes[i].before = before;
	t->notes[i].after = after;
	t->n_notes++;
}

int coffer_index_update(struct coffer_index *ix, coffer_txn_fn fn, void *arg)
{
	return coffer_index_update_flags(ix, 0, fn, arg);
}

/* Under LMDB's write lock: the newest commit and its two meta pages, as
 * data.mdb holds them until the next commit. */
static int capture(struct coffer_index *ix, uint64_t *txnid_r, struct coffer_buf *metas)
{
	MDB_envinfo info;
	size_t got;
	int fd, rc;

	mdb_env_info(ix->env, &info);
	*txnid_r = info.me_last_txnid;
	if (mdb_env_get_fd(ix->env, &fd) != 0)
		return coffer_err_set(COFFER_EIO, "index: no file");
	coffer_buf_reset(metas);
	if (coffer_buf_reserve(metas, 2 * ix->psize) < 0)
		return coffer_err_set(COFFER_ENOMEM, "index: out of memory");
	rc = coffer_io_pread_full(fd, metas->data, 2 * ix->psize, 0, &got);
	if (rc == 0 && got < 2 * ix->psize)
		rc = coffer_err_set(COFFER_ECORRUPT, "index: meta pages short");
	return rc;
}

/*
 * Makes commit txnid durable with everything written before it (one
 * syncfs: the blobs too) and records it as rb's point. Needs no lock: the
 * caller keeps txnid's pages from reuse (its reader, or LMDB's write lock),
 * and any other process records a newer point before its commit writes.
 */
static int settle(struct coffer_index *ix, struct coffer_rollback *rb, uint64_t txnid,
                  const struct coffer_buf *metas)
{
	int fd, rc;

	if (mdb_env_get_fd(ix->env, &fd) != 0)
		return coffer_err_set(COFFER_EIO, "index: no file");
	rc = coffer_io_syncfs(fd, "index");
	if (rc == 0)
		rc = coffer_rollback_record(rb, metas->data, ix->psize, txnid);
	return rc;
}

/* Under LMDB's write lock: the newest commit made durable and recorded as
 * rb's point, unless it is already. */
static int record_now(struct coffer_index *ix, struct coffer_rollback *rb)
{
	struct coffer_buf metas = COFFER_BUF_INIT;
	uint64_t txnid;
	int rc;

	rc = coffer_rollback_reload(rb);
	if (rc == 0)
		rc = capture(ix, &txnid, &metas);
	if (rc == 0 && (coffer_rollback_txnid(rb) != txnid || txnid == 0))
		rc = settle(ix, rb, txnid, &metas);
	coffer_buf_free(&metas);
	return rc;
}

/*
 * record_now() with LMDB's write lock held only while the newest commit is
 * read, so that commits go on during the syncfs. For the process making
 * unsynced commits (rb == ix->rb) a reader opened on that commit keeps its
 * pages until the point is recorded, and then replaces the reader on the
 * previous point; its barriers run one at a time (barrier_lock).
 */
static int barrier(struct coffer_index *ix, struct coffer_rollback *rb)
{
	struct coffer_buf metas = COFFER_BUF_INIT;
	MDB_txn *w, *pin = NULL;
	uint64_t txnid = 0;
	int rc, own = rb == ix->rb, todo = 1;

	if (own)
		pthread_mutex_lock(&ix->barrier_lock);
	rc = begin(ix, 0, &w);
	if (rc < 0)
		goto out;
	rc = capture(ix, &txnid, &metas);
	if (rc == 0 && own) {
		todo = __atomic_load_n(&ix->durable_txnid, __ATOMIC_ACQUIRE) != txnid;
		if (todo && (rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &pin)) != 0)
			rc = map_err(rc, "pin the rollback point");
	}
	mdb_txn_abort(w);
	end(ix);
	if (rc == 0 && todo)
		rc = settle(ix, rb, txnid, &metas);
	if (pin && rc == 0) {
		if (ix->pin)
			mdb_txn_abort(ix->pin);
		ix->pin = pin;
		__atomic_store_n(&ix->durable_txnid, txnid, __ATOMIC_RELEASE);
	} else if (pin) {
		mdb_txn_abort(pin);
	}
out:
	if (own)
		pthread_mutex_unlock(&ix->barrier_lock);
	coffer_buf_free(&metas);
	return rc;
}

/* Another process's unsynced commits: its rollback point, if any. */
static int point_of_others(struct coffer_index *ix, struct coffer_rollback **rb_r)
{
	int rc = coffer_rollback_open(ix->dir, 0, rb_r);

	return rc == COFFER_ENOTFOUND ? 0 : rc;
}

int coffer_index_update_flags(struct coffer_index *ix, unsigned flags, coffer_txn_fn fn, void *arg)
{
	struct coffer_txn t = { .ix = ix };
	struct coffer_rollback *others = NULL;
	int rc, mdb_rc;

	for (;;) {
		t.map_full = 0;
		t.n_notes = 0;
		t.notes_overflow = 0;
		rc = begin(ix, 0, &t.txn);
		if (rc < 0)
			break;
		/* A rollback point another process keeps must be the newest
		 * commit before this one writes: without that process's reader
		 * (killed), this commit could reuse the point's pages. */
		if (!ix->lazy && others == NULL)
			rc = point_of_others(ix, &others);
		if (rc == 0 && others)
			rc = record_now(ix, others);
		if (rc == 0)
			rc = fn(&t, arg);
		if (rc < 0) {
			mdb_txn_abort(t.txn);
			end(ix);
			if (t.map_full) {
				rc = grow(ix);
				if (rc < 0)
					break;
				continue;
			}
			break;
		}
		mdb_rc = mdb_txn_commit(t.txn);
		end(ix);
		if (mdb_rc == MDB_MAP_FULL) {
			rc = grow(ix);
			if (rc < 0)
				break;
			continue;
		}
		if (mdb_rc != 0) {
			rc = map_err(commit_errno(ix, mdb_rc), "commit");
			break;
		}
		if (ix->observer && (t.n_notes > 0 || t.notes_overflow))
			ix->observer(ix->observer_arg, t.notes, t.n_notes, t.notes_overflow);
		/* committed; an error below: not known to be durable */
		if (ix->lazy && !(flags & COFFER_TXN_LAZY)) {
			int s = coffer_index_sync(ix);

			if (s < 0)
				rc = s;
		} else if (others) {
			int s = barrier(ix, others); /* synced: now the point */

			if (s < 0)
				rc = s;
		}
		break;
	}
	coffer_rollback_close(&others);
	return rc;
}

int coffer_index_set_lazy(struct coffer_index *ix)
{
	int rc = coffer_rollback_open(ix->dir, 1, &ix->rb);

	if (rc == 0)
		rc = barrier(ix, ix->rb); /* the first point, before any unsynced commit */
	if (rc == COFFER_ENOSPACE) {
		/* no room for the point: commits stay synced */
		coffer_err_clear();
		if (ix->rb && coffer_rollback_remove(&ix->rb) < 0)
			coffer_err_clear(); /* an empty point: nothing to roll back to */
		return 0;
	}
	if (rc == 0 && (rc = mdb_env_set_flags(ix->env, MDB_NOSYNC, 1)) != 0)
		rc = map_err(rc, "set lazy commits");
	if (rc < 0) {
		if (ix->pin)
			mdb_txn_abort(ix->pin);
		ix->pin = NULL;
		coffer_rollback_close(&ix->rb);
		return rc;
	}
	ix->lazy = 1;
	return 0;
}

int coffer_index_is_lazy(const struct coffer_index *ix)
{
	return ix->lazy;
}

int coffer_index_sync(struct coffer_index *ix)
{
	MDB_envinfo info;
	int rc;

	if (ix->lazy) {
		mdb_env_info(ix->env, &info);
		if (__atomic_load_n(&ix->durable_txnid, __ATOMIC_ACQUIRE) == info.me_last_txnid)
			return 0; /* nothing committed since the point */
		return barrier(ix, ix->rb);
	}
	rc = mdb_env_sync(ix->env, 1);
	if (rc != 0)
		return coffer_err_set(rc == ENOSPC ? COFFER_ENOSPACE : COFFER_EIO,
		                      "index: sync: %s", strerror(rc));
	return 0;
}

/* At close: everything durable, then no rollback point (nothing unsynced
 * follows it, and other processes' commits need not keep it). */
static int retire(struct coffer_index *ix)
{
	MDB_txn *w;
	int rc;

	rc = begin(ix, 0, &w);
	if (rc == 0) {
		rc = record_now(ix, ix->rb);
		if (rc == 0)
			rc = coffer_rollback_remove(&ix->rb);
		mdb_txn_abort(w);
		end(ix);
	}
	if (ix->pin)
		mdb_txn_abort(ix->pin);
	ix->pin = NULL;
	coffer_rollback_close(&ix->rb);
	return rc;
}

int coffer_index_view(struct coffer_index *ix, coffer_txn_fn fn, void *arg)
{
	struct coffer_txn t = { .ix = ix };
	int rc;

	rc = begin(ix, MDB_RDONLY, &t.txn);
	if (rc < 0)
		return rc;
	rc = fn(&t, arg);
	mdb_txn_abort(t.txn);
	end(ix);
	return rc;
}

int coffer_txn_get(struct coffer_txn *t, enum coffer_db db, const void *key, size_t klen,
                   const void **val_r, size_t *vlen_r)
{
	MDB_val k = { klen, (void *)key }, v;
	int rc;

	rc = mdb_get(t->txn, t->ix->dbi[db], &k, &v);
	if (rc == MDB_NOTFOUND)
		return COFFER_ENOTFOUND;
	if (rc != 0)
		return map_err(rc, db_names[db]);
	*val_r = v.mv_data;
	*vlen_r = v.mv_size;
	return 0;
}

int coffer_txn_put(struct coffer_txn *t, enum coffer_db db, const void *key, size_t klen,
                   const void *val, size_t vlen, unsigned flags)
{
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
	int rc;

	rc = mdb_put(t->txn, t->ix->dbi[db], &k, &v,
	             (flags & COFFER_PUT_NOOVERWRITE) ? MDB_NOOVERWRITE : 0);
	if (rc == MDB_MAP_FULL)
		t->map_full = 1;
	if (rc == MDB_KEYEXIST)
		return COFFER_EEXIST;
	return map_err(rc, db_names[db]);
}

int coffer_txn_del(struct coffer_txn *t, enum coffer_db db, const void *key, size_t klen)
{
	MDB_val k = { klen, (void *)key };
	int rc;

	rc = mdb_del(t->txn, t->ix->dbi[db], &k, NULL);
	if (rc == MDB_MAP_FULL)
		t->map_full = 1;
	if (rc == MDB_NOTFOUND)
		return COFFER_ENOTFOUND;
	return map_err(rc, db_names[db]);
}

int coffer_txn_scan_from(struct coffer_txn *t, enum coffer_db db, const void *prefix, size_t plen,
                         const void *start, size_t slen, coffer_scan_fn fn, void *arg)
{
	MDB_cursor *cur;
	MDB_val k = { slen, (void *)start }, v;
	int rc;

	rc = mdb_cursor_open(t->txn, t->ix->dbi[db], &cur);
	if (rc != 0)
		return map_err(rc, db_names[db]);
	rc = slen ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
	          : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
			break;
		rc = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, arg);
		if (rc != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND || rc > 0)
		return 0;
	if (rc < 0)
		return rc;
	return map_err(rc, db_names[db]);
}

int coffer_txn_scan(struct coffer_txn *t, enum coffer_db db, const void *prefix, size_t plen,
                    coffer_scan_fn fn, void *arg)
{
	return coffer_txn_scan_from(t, db, prefix, plen, prefix, plen, fn, arg);
}

int coffer_txn_del_prefix(struct coffer_txn *t, enum coffer_db db, const void *prefix, size_t plen,
                          uint64_t *n_r)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t n = 0;
	int rc;

	rc = mdb_cursor_open(t->txn, t->ix->dbi[db], &cur);
	if (rc != 0)
		return map_err(rc, db_names[db]);
	/* Re-seek after every delete: simple, and independent of how a cursor
	 * is positioned after mdb_cursor_del(). */
	for (;;) {
		k.mv_size = plen;
		k.mv_data = (void *)prefix;
		rc = plen ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
		          : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc != 0)
			break;
		if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc == MDB_MAP_FULL)
			t->map_full = 1;
		if (rc != 0)
			break;
		n++;
	}
	mdb_cursor_close(cur);
	if (n_r)
		*n_r = n;
	if (rc == MDB_NOTFOUND || rc == 0)
		return 0;
	return map_err(rc, db_names[db]);
}

int coffer_txn_count(struct coffer_txn *t, enum coffer_db db, uint64_t *n_r)
{
	MDB_stat st;
	int rc;

	rc = mdb_stat(t->txn, t->ix->dbi[db], &st);
	if (rc != 0)
		return map_err(rc, db_names[db]);
	*n_r = st.ms_entries;
	return 0;
}

int coffer_index_stat(struct coffer_index *ix, uint64_t *map_size_r, uint64_t *used_r)
{
	MDB_envinfo info;
	MDB_stat st;

	mdb_env_info(ix->env, &info);
	mdb_env_stat(ix->env, &st);
	*map_size_r = info.me_mapsize;
	*used_r = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	return 0;
}
