/*
 * pool.c: empty blob files made ahead of writers (see pool.h).
 */
#include "pool.h"

#include "buf.h"
#include "clock.h"
#include "crypto.h"
#include "errors.h"
#include "io.h"
#include "record.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PICK 64         /* records a claim considers (a batch and more) */
#define HINTS_MAX 16384 /* files remembered per account */
#define HINT_TRIES 8    /* remembered files a claim tries before it scans */
#define TRIM_BATCH 4096 /* records one trim pass looks at */
#define ID COFFER_ID_BYTES

struct pick {
	unsigned char ids[PICK][ID];
	size_t n;
};

static int pick_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct pick *p = arg;

	(void)v;
	(void)vl;
	if (kl != COFFER_KEY_BLOB)
		return 0;
	memcpy(p->ids[p->n++], (const unsigned char *)k + ID, ID);
	return p->n == PICK;
}

struct pick_args {
	const unsigned char *acct;
	struct pick *p;
};

static int pick_txn(struct coffer_txn *t, void *arg)
{
	struct pick_args *a = arg;

	a->p->n = 0;
	return coffer_txn_scan(t, COFFER_DB_POOL, a->acct, ID, pick_one, a->p);
}

enum { CLAIMED, BUSY, STALE, FILLED };

/* CLAIMED with *fd_r open and locked on an empty, linked file; BUSY (another
 * claimant holds it); STALE (gone: its record is of no use); FILLED (a
 * spooled delivery waiting for its absorb, engine/spool.h, or a blob whose
 * writer has yet to commit it: its record is not ours to drop). */
static int try_claim(struct coffer_store *st, const unsigned char *acct, const unsigned char *id,
                     int *fd_r, struct coffer_buf *path)
{
	struct stat sb;
	int fd, rc;

	rc = coffer_store_blob_path(st, acct, id, path);
	if (rc < 0)
		return rc;
	/* a filled file costs one stat, not open, lock and close */
	if (stat(coffer_buf_str(path), &sb) == 0 && sb.st_size != 0)
		return FILLED;
	fd = open(coffer_buf_str(path), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? STALE : BUSY;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return BUSY;
	}
	/* under the lock: still empty (nobody filled it) and still linked
	 * (coffer_pool_trim unlinks holding the same lock) */
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_nlink == 0) {
		close(fd);
		return STALE;
	}
	if (sb.st_size != 0) {
		close(fd);
		return FILLED;
	}
	*fd_r = fd;
	return CLAIMED;
}

/*
 * The files this process made and has not handed out (coffer_pool_hints):
 * a claim tries them first. A scan takes the account's records in key
 * order, and filled files a writer has yet to commit (the mount seals a
 * burst of tmp files ahead of their renames, maildir/mount-seal.c) keep
 * their records and sort anywhere among them: without the hints, each claim
 * would stat its way past them. A hint is only a guess: try_claim() checks
 * it like any record.
 */
struct hint_acct {
	unsigned char acct[ID];
	unsigned char (*ids)[ID];
	size_t n, cap;
};

struct coffer_pool_hints {
	pthread_mutex_t lock;
	struct hint_acct *v;
	size_t n, cap;
};

struct coffer_pool_hints *coffer_pool_hints_new(void)
{
	struct coffer_pool_hints *h = calloc(1, sizeof *h);

	if (h)
		pthread_mutex_init(&h->lock, NULL);
	return h;
}

void coffer_pool_hints_free(struct coffer_pool_hints **hp)
{
	struct coffer_pool_hints *h = *hp;

	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i].ids);
	free(h->v);
	pthread_mutex_destroy(&h->lock);
	free(h);
	*hp = NULL;
}

/* Under h->lock: acct's entry, made if make. */
static struct hint_acct *hint_acct(struct coffer_pool_hints *h, const unsigned char *acct, int make)
{
	for (size_t i = 0; i < h->n; i++)
		if (memcmp(h->v[i].acct, acct, ID) == 0)
			return &h->v[i];
	if (!make || coffer_array_grow(&h->v, &h->cap, h->n, sizeof *h->v, 8) < 0)
		return NULL;
	memset(&h->v[h->n], 0, sizeof h->v[h->n]);
	memcpy(h->v[h->n].acct, acct, ID);
	return &h->v[h->n++];
}

static void hints_add(struct coffer_store *st, const unsigned char *acct, unsigned char (*ids)[ID],
                      size_t n)
{
	struct coffer_pool_hints *h = coffer_store_pool_hints(st);
	struct hint_acct *e;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	e = hint_acct(h, acct, 1);
	for (size_t i = 0; e && i < n && e->n < HINTS_MAX; i++) {
		if (coffer_array_grow(&e->ids, &e->cap, e->n, sizeof *e->ids, 256) < 0)
			break;
		memcpy(e->ids[e->n++], ids[i], ID);
	}
	pthread_mutex_unlock(&h->lock);
}

static int hint_take(struct coffer_store *st, const unsigned char *acct, unsigned char *id)
{
	struct coffer_pool_hints *h = coffer_store_pool_hints(st);
	struct hint_acct *e;
	int got = 0;

	if (h == NULL)
		return 0;
	pthread_mutex_lock(&h->lock);
	e = hint_acct(h, acct, 0);
	if (e && e->n > 0) {
		memcpy(id, e->ids[--e->n], ID);
		got = 1;
	}
	pthread_mutex_unlock(&h->lock);
	return got;
}

/* 1 with a remembered file claimed, 0 when none was (an error: < 0). */
static int claim_hinted(struct coffer_store *st, const unsigned char *acct,
                        unsigned char *blob_id_r, int *fd_r, struct coffer_buf *path_r)
{
	unsigned char id[ID];

	for (int i = 0; i < HINT_TRIES && hint_take(st, acct, id); i++) {
		int rc = try_claim(st, acct, id, fd_r, path_r);

		if (rc < 0)
			return rc;
		if (rc == CLAIMED) {
			memcpy(blob_id_r, id, ID);
			return 1;
		}
	}
	return 0;
}

/* A batch, if it can be made: a writer that finds none creates its blob the
 * usual way, and meets any real trouble (a full disk) there. */
static void fill(struct coffer_store *st, const unsigned char *acct)
{
	if (coffer_pool_fill(st, acct) < 0)
		coffer_err_clear();
}

struct drop_args {
	unsigned char (*keys)[COFFER_KEY_BLOB];
	size_t n;
};

static int drop_txn(struct coffer_txn *t, void *arg)
{
	struct drop_args *d = arg;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < d->n; i++) {
		rc = coffer_txn_del(t, COFFER_DB_POOL, d->keys[i], COFFER_KEY_BLOB);
		if (rc == COFFER_ENOTFOUND)
			rc = 0;
	}
	return rc;
}

int coffer_pool_claim(struct coffer_store *st, const unsigned char *acct, unsigned char *blob_id_r,
                      int *fd_r, struct coffer_buf *path_r)
{
	unsigned char stale[PICK][COFFER_KEY_BLOB];
	struct pick p;
	struct pick_args a = { acct, &p };
	size_t nstale = 0;
	int rc = 0, got = 0, absorbed = 0;
	int lazy = coffer_index_is_lazy(coffer_store_index(st));

	*fd_r = -1;
	rc = claim_hinted(st, acct, blob_id_r, fd_r, path_r);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	for (int round = 0, filled = 0; rc == 0 && !got && round < 3; round++) {
		int dropped = 0, pending = 0;
		size_t start;

		rc = coffer_index_view(coffer_store_index(st), pick_txn, &a);
		/* concurrent writers start at different files */
		coffer_random(&start, sizeof start);
		for (size_t i = 0; rc == 0 && !got && i < p.n; i++) {
			const unsigned char *id = p.ids[(start + i) % p.n];

			rc = try_claim(st, acct, id, fd_r, path_r);
			if (rc == CLAIMED) {
				memcpy(blob_id_r, id, ID);
				got = 1;
			} else if (rc == STALE) {
				coffer_key_blob(stale[nstale++], acct, id);
			} else if (rc == FILLED) {
				pending = 1;
			}
			rc = rc < 0 ? rc : 0;
		}
		/* stale records would be tried first again: dropped (rare; if
		 * that fails, they are tried again next time) */
		if (rc == 0 && nstale > 0) {
			struct drop_args d = { stale, nstale };

			if (coffer_index_update(coffer_store_index(st), drop_txn, &d) < 0)
				coffer_err_clear();
			else
				dropped = 1;
			nstale = 0;
		}
		/* none to claim: the account's spooled deliveries are indexed
		 * (so that their records go), then one batch is made (unless
		 * stale ones made room to look again, or the index is lazy:
		 * the mount makes its batches ahead, off the requests' path,
		 * its claims find them through the hints, and a request that
		 * finds none makes just its own file, after one look) */
		if (rc == 0 && !got && pending && !absorbed) {
			if (coffer_spool_absorb(st, acct, NULL) < 0)
				coffer_err_clear();
			absorbed = 1;
		}
		if (rc == 0 && !got && !dropped && lazy)
			break;
		if (rc == 0 && !got && !dropped && !filled) {
			fill(st, acct);
			filled = 1;
		}
	}
	return rc < 0 ? rc : got ? 0 : COFFER_ENOTFOUND;
}

int coffer_pool_take_txn(struct coffer_txn *t, const unsigned char *acct,
                         const unsigned char *blob_id)
{
	unsigned char key[COFFER_KEY_BLOB];
	int rc;

	coffer_key_blob(key, acct, blob_id);
	rc = coffer_txn_del(t, COFFER_DB_POOL, key, sizeof key);
	return rc == COFFER_ENOTFOUND ? 0 : rc;
}

int coffer_pool_has_txn(struct coffer_txn *t, const unsigned char *acct,
                        const unsigned char *blob_id)
{
	unsigned char key[COFFER_KEY_BLOB];
	const void *v;
	size_t n;
	int rc;

	coffer_key_blob(key, acct, blob_id);
	rc = coffer_txn_get(t, COFFER_DB_POOL, key, sizeof key, &v, &n);
	if (rc == COFFER_ENOTFOUND)
		return 0;
	return rc < 0 ? rc : 1;
}

struct record_args {
	const unsigned char *acct;
	unsigned char (*ids)[ID];
	size_t n;
	int64_t now;
};

static int record_txn(struct coffer_txn *t, void *arg)
{
	struct record_args *a = arg;
	unsigned char key[COFFER_KEY_BLOB], when[8];
	int rc = 0;

	coffer_put_u64le(when, (uint64_t)a->now);
	for (size_t i = 0; rc == 0 && i < a->n; i++) {
		coffer_key_blob(key, a->acct, a->ids[i]);
		rc = coffer_txn_put(t, COFFER_DB_POOL, key, sizeof key, when, sizeof when, 0);
	}
	return rc;
}

int coffer_pool_fill(struct coffer_store *st, const unsigned char *acct)
{
	static const unsigned char zero[ID];
	unsigned char ids[COFFER_POOL_BATCH_LAZY][ID], first;
	struct coffer_buf path = COFFER_BUF_INIT;
	struct record_args ra;
	size_t n = 0, want;
	int64_t now;
	int lock = -1, fd, lazy, rc;

	rc = coffer_store_lock(st, "pool", LOCK_EX | LOCK_NB, &lock);
	if (rc == COFFER_ETEMP)
		return 0; /* another writer is making a batch */
	if (rc == 0)
		rc = coffer_clock_now(&now);
	if (rc < 0)
		goto out;
	/* one directory, so that one fsync makes every entry durable */
	coffer_random(&first, 1);
	lazy = coffer_index_is_lazy(coffer_store_index(st));
	want = lazy ? COFFER_POOL_BATCH_LAZY : COFFER_POOL_BATCH;
	while (rc == 0 && n < want) {
		coffer_random(ids[n], ID);
		ids[n][0] = first;
		if (memcmp(ids[n], zero, ID) == 0) /* the empty control file's id */
			continue;
		rc = coffer_store_blob_create(st, acct, ids[n], 1, &fd, &path);
		if (rc == COFFER_EEXIST) {
			rc = 0;
			continue;
		}
		if (rc == 0) {
			close(fd);
			n++;
		}
	}
	/* the entries durable before their records; for a lazy index, both
	 * at its next sync */
	if (rc == 0 && n > 0 && !lazy)
		rc = coffer_store_blob_dir(st, acct, ids[0], &path);
	if (rc == 0 && n > 0 && !lazy)
		rc = coffer_io_fsync_dir(coffer_buf_str(&path));
	if (rc == 0 && n > 0) {
		ra = (struct record_args){ acct, ids, n, now };
		rc = coffer_index_update_flags(coffer_store_index(st), COFFER_TXN_LAZY, record_txn,
		                               &ra);
	}
	if (rc == 0)
		hints_add(st, acct, ids, n);
	if (rc < 0) /* files no record names: verify's orphans, or removed here */
		for (size_t i = 0; i < n; i++)
			coffer_store_blob_discard(st, acct, ids[i]);
out:
	if (lock >= 0)
		close(lock);
	coffer_buf_free(&path);
	return rc < 0 ? rc : n > 0;
}

struct count_args {
	size_t n, min;
};

static int count_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct count_args *c = arg;

	(void)k;
	(void)v;
	(void)vl;
	c->n += kl == COFFER_KEY_BLOB;
	return c->n >= c->min;
}

struct count_txn_args {
	const unsigned char *acct;
	struct count_args c;
};

static int count_txn(struct coffer_txn *t, void *arg)
{
	struct count_txn_args *a = arg;

	return coffer_txn_scan(t, COFFER_DB_POOL, a->acct, ID, count_one, &a->c);
}

int coffer_pool_top_up(struct coffer_store *st, const unsigned char *acct, size_t min)
{
	struct count_txn_args a = { acct, { 0, min } };
	int rc = coffer_index_view(coffer_store_index(st), count_txn, &a);

	if (rc < 0 || a.c.n >= min)
		return rc;
	return coffer_pool_fill(st, acct);
}

/* ---- trimming ---- */

struct old {
	unsigned char (*keys)[COFFER_KEY_BLOB];
	size_t n, cap;
	int64_t before;
};

static int gather_old(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct old *o = arg;
	int64_t made;

	if (kl != COFFER_KEY_BLOB || vl != 8)
		return 0;
	made = (int64_t)coffer_get_u64le(v);
	if (made >= o->before)
		return 0;
	if (coffer_array_grow(&o->keys, &o->cap, o->n, sizeof *o->keys, 64) < 0)
		return coffer_err_set(COFFER_ENOMEM, "pool: out of memory");
	memcpy(o->keys[o->n++], k, COFFER_KEY_BLOB);
	return o->n >= TRIM_BATCH;
}

static int gather_txn(struct coffer_txn *t, void *arg)
{
	return coffer_txn_scan(t, COFFER_DB_POOL, NULL, 0, gather_old, arg);
}

int coffer_pool_trim(struct coffer_store *st, int64_t before, uint64_t *removed_r)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	struct old o = { NULL, 0, 0, before };
	struct drop_args d;
	size_t keep = 0;
	int rc;

	if (removed_r)
		*removed_r = 0;
	rc = coffer_index_view(coffer_store_index(st), gather_txn, &o);
	for (size_t i = 0; rc == 0 && i < o.n; i++) {
		const unsigned char *acct = o.keys[i], *id = o.keys[i] + ID;
		struct stat sb;
		int fd;

		rc = coffer_store_blob_path(st, acct, id, &path);
		if (rc < 0)
			break;
		fd = open(coffer_buf_str(&path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			/* in use (being filled): not now; a spooled delivery:
			 * the absorb's; filled otherwise: an orphan for verify,
			 * only the record goes; empty: unlinked under the lock a
			 * claimant checks */
			if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &sb) < 0 ||
			    (sb.st_size != 0 && coffer_spool_marked(fd))) {
				close(fd);
				continue;
			}
			if (S_ISREG(sb.st_mode) && sb.st_size == 0 &&
			    unlink(coffer_buf_str(&path)) < 0 && errno != ENOENT) {
				close(fd);
				continue;
			}
			close(fd);
		}
		memmove(o.keys[keep++], o.keys[i], COFFER_KEY_BLOB);
	}
	if (rc == 0 && keep > 0) {
		d = (struct drop_args){ o.keys, keep };
		rc = coffer_index_update(coffer_store_index(st), drop_txn, &d);
		if (rc == 0 && removed_r)
			*removed_r = keep;
	}
	free(o.keys);
	coffer_buf_free(&path);
	return rc;
}
