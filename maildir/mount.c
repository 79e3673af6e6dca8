/*
 * mount.c: the mount daemon (see mount.h, docs/design.md "The mount"):
 * its lifecycle, the accounts it serves, the in-memory files (control
 * files, tmp/ files, non-folder directories) and the flusher thread. The
 * FUSE operations are in mount-ops.c, the decrypted-content cache in
 * mount-cache.c.
 *
 * Durability: a control file is written out (new blob, fsync, one LMDB
 * commit) when fsync()ed, when renamed, by the flusher once it has been
 * dirty for a second, and at unmount. Messages are committed in the
 * rename()/link() that moves them out of tmp/ (mount-rename.c), lazily
 * (mnt_commit_lazy): safe from the daemon's death at once, durable across a
 * system crash at the next fsync of a directory or message, the flusher's
 * tick, or the unmount.
 *
 * A full disk refuses new mail and keeps serving what is stored: control
 * files (which Dovecot must rewrite even to SELECT) may use the store's
 * space reserve (engine/reserve.h), which a write-out that finds no room
 * releases; tmp/ files never may (mount-ops.c, room checks). The flusher
 * refills the reserve once the disk has room again.
 *
 * Plaintext never reaches the disk: tmp files live in memory up to
 * tmp_mem_max bytes, then stream into a staging blob (encrypted like any
 * message, under the account's data key) which becomes the message's blob.
 *
 * Memory: decrypted messages (an LRU) and clean control files (unloaded
 * least recently used first) are each bounded by mount_cache_size; dirty
 * control files are written out within a second.
 */
#define FUSE_USE_VERSION 35
#include "mount-private.h"

#include "engine/blob.h"
#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/ctlfile.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/index.h"
#include "engine/message.h"
#include "maildir/name.h"
#include "engine/names.h"
#include "engine/pool.h"
#include "engine/reserve.h"
#include "engine/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

struct mnt *coffer_mnt;

int64_t mnt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * COFFER_NS_PER_SEC + ts.tv_nsec;
}

/* For the flusher's tick and slices: a clock no one sets. */
static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * COFFER_NS_PER_SEC + ts.tv_nsec;
}

int mnt_errno(int rc)
{
	if (rc >= 0)
		return 0;
	switch (rc) {
	case COFFER_ENOTFOUND:
	case COFFER_ENOACCOUNT:
	case COFFER_ETERMINATED:
	case COFFER_ESHREDDED: return -ENOENT;
	case COFFER_EEXIST: return -EEXIST;
	case COFFER_EINVAL:
	case COFFER_EBADMSG: return -EINVAL;
	case COFFER_EPERM: return -EACCES;
	case COFFER_ENOSPACE: return -ENOSPC;
	case COFFER_ELIMIT: return -EFBIG;
	case COFFER_ENOMEM: return -ENOMEM;
	case COFFER_ETEMP: return -EAGAIN;
	case COFFER_ECORRUPT:
	case COFFER_EIO:
	case COFFER_ECONFIG: return -EIO;
	default: return rc > -4096 ? rc : -EIO;
	}
}

void mnt_log(const char *op, const char *path, int rc)
{
	char shown[COFFER_NAMES_SHOW_SIZE];
	int e = mnt_errno(rc);

	/* expected answers are not errors */
	if (e == 0 || e == -ENOENT || e == -EEXIST || e == -ENOTEMPTY || e == -EPERM ||
	    e == -EXDEV || e == -EINVAL || e == -EACCES)
		return;
	fprintf(stderr, "coffer mount: %s %s: %s%s%s\n", op,
	        coffer_names_show(path, strlen(path), shown), strerror(-e),
	        rc <= -1000 && *coffer_errmsg() ? ": " : "", rc <= -1000 ? coffer_errmsg() : "");
}

/* ---- accounts ---- */

/* An open account whose name is exactly name (canonical names only are
 * kept), or NULL; under acct_lock. */
static struct macct *acct_find(struct mnt *m, const char *name, size_t n)
{
	struct macct *a;

	for (a = m->accts; a; a = a->next)
		if (strlen(a->name) == n && memcmp(a->name, name, n) == 0)
			break;
	return a;
}

int mnt_account(struct mnt *m, const char *name, size_t n, struct macct **a_r)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct coffer_mailbox *mb = NULL;
	struct macct *a, *other;
	int rc = 0;

	/* the common case, an account already open: no canonicalisation */
	pthread_mutex_lock(&m->acct_lock);
	a = acct_find(m, name, n);
	pthread_mutex_unlock(&m->acct_lock);
	if (a) {
		*a_r = a;
		return 0;
	}
	rc = coffer_names_account(name, n, &canon);
	if (rc < 0 || canon.len != n || memcmp(canon.data, name, n) != 0) {
		coffer_buf_free(&canon);
		return COFFER_ENOTFOUND;
	}
	rc = coffer_mailbox_open(m->st, coffer_buf_str(&canon), canon.len, &mb);
	if (rc < 0)
		goto out;
	a = calloc(1, sizeof *a);
	if (a == NULL || (a->name = strdup(coffer_buf_str(&canon))) == NULL) {
		free(a);
		coffer_mailbox_close(&mb);
		rc = COFFER_ENOMEM;
		goto out;
	}
	a->mb = mb;
	memcpy(a->id, coffer_mailbox_id(mb), COFFER_ID_BYTES);
	a->secret = coffer_mailbox_secret(mb);
	a->changed_at = m->started_at;
	/* another thread may have opened it meanwhile */
	pthread_mutex_lock(&m->acct_lock);
	other = acct_find(m, name, n);
	if (other == NULL) {
		a->next = m->accts;
		m->accts = a;
	}
	pthread_mutex_unlock(&m->acct_lock);
	if (other) {
		coffer_mailbox_close(&a->mb);
		free(a->name);
		free(a);
		a = other;
	}
	*a_r = a;
out:
	coffer_buf_free(&canon);
	return rc;
}

/* The account's modseq, read in a view, is modseq: a change nobody
 * accounted for moves the directories' mtime. > not !=: modseq only grows,
 * and mnt_observe may have moved past that view. Under acct_lock. */
static void acct_saw(struct macct *a, uint64_t modseq)
{
	if (modseq > a->modseq_seen) {
		a->modseq_seen = modseq;
		mnt_touch(a);
	}
}

int mnt_account_check_txn(struct coffer_txn *t, struct mnt *m, struct macct *a)
{
	struct coffer_account_rec rec;
	int rc;

	rc = coffer_account_get_txn(t, a->id, &rec);
	if (rc < 0)
		return rc;
	/* terminated (or shredded) since it was opened: gone from the tree */
	if (rec.state != COFFER_ACCOUNT_ACTIVE)
		return COFFER_ENOTFOUND;
	pthread_mutex_lock(&m->acct_lock);
	acct_saw(a, rec.modseq);
	pthread_mutex_unlock(&m->acct_lock);
	return 0;
}

static void flusher_wake(struct mnt *m, int *what)
{
	pthread_mutex_lock(&m->stop_lock);
	*what = 1;
	pthread_cond_signal(&m->stop_cond);
	pthread_mutex_unlock(&m->stop_lock);
}

int mnt_commit_lazy(struct mnt *m, coffer_txn_fn fn, void *arg)
{
	int rc = coffer_index_update_flags(coffer_store_index(m->st), COFFER_TXN_LAZY, fn, arg);

	if (rc >= 0 && __atomic_add_fetch(&m->unsynced, 1, __ATOMIC_RELAXED) % MNT_SYNC_EVERY == 0)
		flusher_wake(m, &m->sync_wake);
	return rc;
}

/* Every lazy commit of the index, whoever made it (the pool's batches
 * too): while one is not synced, the rollback point's reader keeps LMDB
 * from reusing any page freed since, so each tick's sync is also what
 * bounds data.mdb. Nothing when the newest commit is the point. */
int mnt_lazy_sync(struct mnt *m)
{
	__atomic_store_n(&m->unsynced, 0, __ATOMIC_RELAXED);
	return coffer_index_sync(coffer_store_index(m->st));
}

/* ---- in-memory files ---- */

static unsigned file_hash(int type, const struct macct *a, uint32_t fid, const char *name, size_t n)
{
	uint32_t h = 2166136261u;
	int area = type == MF_TMP;

	h = (h ^ (uint32_t)area) * 16777619u;
	h = (h ^ fid) * 16777619u;
	h = (h ^ (uint32_t)(uintptr_t)a) * 16777619u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	return h % MNT_HASH;
}

struct mfile *mnt_file_find(struct mnt *m, int type, struct macct *a, uint32_t fid,
                            const char *name, size_t n)
{
	/* control files and other directories share a directory's namespace */
	int tmp = type == MF_TMP;

	for (struct mfile *f = m->files[file_hash(type, a, fid, name, n)]; f; f = f->next)
		if ((f->type == MF_TMP) == tmp && f->a == a && f->fid == fid && f->name_n == n &&
		    memcmp(f->name, name, n) == 0)
			return f;
	return NULL;
}

struct mfile *mnt_file_new(struct mnt *m, int type, struct macct *a, uint32_t fid, const char *name,
                           size_t n)
{
	struct mfile *f = calloc(1, sizeof *f);
	unsigned h = file_hash(type, a, fid, name, n);

	if (f == NULL || (f->name = strndup(name, n)) == NULL) {
		free(f);
		return NULL;
	}
	f->type = type;
	f->a = a;
	f->fid = fid;
	f->name_n = n;
	f->sfd = -1;
	f->pin_fd = -1;
	f->mode = 0600;
	f->mtime = mnt_now();
	f->used_at = f->mtime;
	f->loaded = 1;
	f->ino = ++m->next_ino;
	f->next = m->files[h];
	m->files[h] = f;
	if (type == MF_TMP) {
		__atomic_add_fetch(&a->tmp_files, 1, __ATOMIC_RELAXED);
		mnt_pool_use(m, a);
	}
	return f;
}

void mnt_file_unhash(struct mnt *m, struct mfile *f)
{
	struct mfile **pp = &m->files[file_hash(f->type, f->a, f->fid, f->name, f->name_n)];

	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
	f->next = NULL;
}

void mnt_file_free(struct mnt *m, struct mfile *f)
{
	if (f == NULL)
		return;
	mnt_file_unhash(m, f);
	if (f->type == MF_TMP) {
		__atomic_sub_fetch(&f->a->tmp_files, 1, __ATOMIC_RELAXED);
		mnt_seal_drop(m, f);
	}
	coffer_blob_writer_free(&f->w);
	if (f->sfd >= 0) {
		close(f->sfd);
		unlink(coffer_buf_str(&f->spath));
	}
	if (f->pin_fd >= 0)
		close(f->pin_fd);
	if (f->data.data)
		coffer_wipe(f->data.data, f->data.cap);
	coffer_buf_free(&f->data);
	coffer_buf_free(&f->spath);
	free(f->peer_name);
	free(f->peer_path);
	free(f->name);
	free(f);
}

void mnt_file_forget_peer(struct mfile *f)
{
	free(f->peer_name);
	free(f->peer_path);
	f->peer_name = f->peer_path = NULL;
}

int mnt_file_set_peer(struct mnt *m, struct mfile *f, const struct mfile *copy, const char *path)
{
	mnt_file_forget_peer(f);
	f->peer_name = strndup(copy->name, copy->name_n);
	f->peer_path = strdup(path);
	if (f->peer_name == NULL || f->peer_path == NULL) {
		mnt_file_forget_peer(f);
		return COFFER_ENOMEM;
	}
	f->peer_n = copy->name_n;
	f->peer_fid = copy->fid;
	f->peer_ino = copy->ino;
	m->linked = 1;
	return 0;
}

static void peer_follow(struct mfile *g, const struct mfile *f, uint32_t fid, const char *name,
                        size_t n, const char *path, uint64_t ino)
{
	char *nn, *np;

	if (g->peer_name == NULL || g->peer_ino != f->ino || g == f)
		return;
	nn = strndup(name, n);
	np = strdup(path);
	mnt_file_forget_peer(g);
	if (nn == NULL || np == NULL) { /* out of memory: the copy stops following */
		free(nn);
		free(np);
		return;
	}
	g->peer_name = nn;
	g->peer_path = np;
	g->peer_n = n;
	g->peer_fid = fid;
	g->peer_ino = ino;
}

void mnt_peer_moved(struct mnt *m, const struct mfile *f, uint32_t fid, const char *name, size_t n,
                    const char *path, uint64_t ino)
{
	if (!m->linked)
		return;
	for (int i = 0; i < MNT_HASH; i++)
		for (struct mfile *g = m->files[i]; g; g = g->next)
			peer_follow(g, f, fid, name, n, path, ino);
	for (struct mfile *g = m->hidden; g; g = g->next)
		peer_follow(g, f, fid, name, n, path, ino);
}

/* The copy a link made of f while it still mirrors f, whose size was
 * size_before; else NULL (and f forgets it). */
static struct mfile *peer_of(struct mnt *m, struct mfile *f, uint64_t size_before)
{
	struct mfile *y;

	if (f->type != MF_CTL || f->peer_name == NULL)
		return NULL;
	/* a copy hidden (unlinked or renamed over while open) is found by its
	 * path (mnt_peer_moved) */
	y = f->peer_fid == UINT32_MAX
	        ? mnt_hidden_find(m, f->peer_name)
	        : mnt_file_find(m, MF_CTL, f->a, f->peer_fid, f->peer_name, f->peer_n);
	if (y && y != f && y->type == MF_CTL && !y->gone && y->ino == f->peer_ino &&
	    y->size == size_before)
		return y;
	mnt_file_forget_peer(f);
	return NULL;
}

/* The kernel caches y's pages and size: the caller invalidates them. */
static void peer_changed(struct mfile *f, char **inval_r)
{
	free(*inval_r);
	*inval_r = strdup(f->peer_path); /* out of memory: the copy's cache lags */
}

void mnt_inval_copy(struct mnt *m, char *path)
{
	if (path)
		mnt_ll_invalidate(m, path);
	free(path);
}

int mnt_file_rehash(struct mnt *m, struct mfile *f)
{
	unsigned h = file_hash(f->type, f->a, f->fid, f->name, f->name_n);

	if (mnt_file_find(m, f->type, f->a, f->fid, f->name, f->name_n))
		return COFFER_EEXIST;
	f->next = m->files[h];
	m->files[h] = f;
	return 0;
}

int mnt_file_rename(struct mnt *m, struct mfile *f, uint32_t fid, const char *name, size_t n)
{
	char *copy = strndup(name, n);
	unsigned h;

	if (copy == NULL)
		return COFFER_ENOMEM;
	mnt_file_unhash(m, f);
	free(f->name);
	f->name = copy;
	f->name_n = n;
	f->fid = fid;
	h = file_hash(f->type, f->a, fid, name, n);
	f->next = m->files[h];
	m->files[h] = f;
	return 0;
}

struct ctl_get_args {
	struct mnt *m;
	struct macct *a;
	uint32_t fid;
	const char *name;
	size_t n;
	struct coffer_ctlfile_rec rec;
};

static int ctl_get_txn(struct coffer_txn *t, void *arg)
{
	struct ctl_get_args *g = arg;

	return coffer_ctlfile_get_txn(t, g->m->st, g->a->id, g->fid, g->name, g->n, &g->rec);
}

int mnt_ctl_get(struct mnt *m, struct macct *a, uint32_t fid, const char *name, size_t n,
                struct mfile **f_r)
{
	struct ctl_get_args g = { m, a, fid, name, n, { { 0 }, 0, 0, 0, 0, 0 } };
	struct mfile *f = mnt_file_find(m, MF_CTL, a, fid, name, n);
	int rc;

	if (f) {
		*f_r = f->type == MF_CTL ? f : NULL;
		return f->type == MF_CTL ? 0 : COFFER_EEXIST;
	}
	rc = coffer_index_view(coffer_store_index(m->st), ctl_get_txn, &g);
	if (rc < 0)
		return rc;
	f = mnt_file_new(m, MF_CTL, a, fid, name, n);
	if (f == NULL)
		return COFFER_ENOMEM;
	f->loaded = 0;
	f->persisted = 1;
	f->size = g.rec.size;
	f->mtime = g.rec.mtime;
	f->mode = g.rec.mode & 07777;
	memcpy(f->lrec.blob_id, g.rec.blob_id, COFFER_ID_BYTES);
	*f_r = f;
	return 0;
}

int mnt_ctl_load(struct mnt *m, struct mfile *f)
{
	struct coffer_ctlfile_rec rec;
	int rc;

	f->used_at = mnt_now();
	if (f->loaded)
		return 0;
	memset(&rec, 0, sizeof rec);
	memcpy(rec.blob_id, f->lrec.blob_id, COFFER_ID_BYTES);
	rec.size = f->size;
	coffer_buf_reset(&f->data);
	rc = coffer_ctlfile_read(m->st, f->a->id, f->a->secret, &rec, &f->data);
	if (rc == 0)
		f->loaded = 1;
	return rc;
}

/*
 * Dovecot keeps keyword names in dovecot-keywords ("<index> <name>" lines,
 * index = the letter a..z of file names) and puts only the letters in
 * message names, which the mount stores as keyword bits. So that those bits
 * name keywords the index defines (coffer verify, ls, export), every write of
 * a folder's dovecot-keywords defines its names at the same indexes, in the
 * transaction that writes the file. Names are interned in index order, so
 * index i is taken only when 0..i-1 are; a table that disagrees with the
 * file (keywords defined otherwise) is left as it is.
 */
int mnt_keywords_sync_txn(struct coffer_txn *t, struct macct *a, uint32_t fid, const char *name,
                          size_t n, const struct coffer_buf *data)
{
	char *names[COFFER_FOLDER_KEYWORDS_MAX];
	const char *p, *end;
	int rc = 0;

	if (n != 16 || memcmp(name, "dovecot-keywords", 16) != 0 || data->data == NULL)
		return 0;
	memset(names, 0, sizeof names);
	p = (const char *)data->data;
	end = p + data->len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		char *sp;
		unsigned long idx;

		if (le - p > 2 && p[0] >= '0' && p[0] <= '9') {
			idx = strtoul(p, &sp, 10);
			if (sp < le && *sp == ' ' && idx < COFFER_FOLDER_KEYWORDS_MAX &&
			    names[idx] == NULL && le - sp - 1 > 0 && le - sp - 1 <= 255 &&
			    memchr(sp + 1, '\0', (size_t)(le - sp - 1)) == NULL) {
				names[idx] = strndup(sp + 1, (size_t)(le - sp - 1));
				if (names[idx] == NULL) {
					rc = COFFER_ENOMEM;
					goto out;
				}
			}
		}
		p = le + 1;
	}
	for (unsigned i = 0; i < COFFER_FOLDER_KEYWORDS_MAX && names[i]; i++) {
		unsigned got;

		rc = coffer_folder_keyword_intern_txn(t, a->id, fid, names[i], a->secret, &got);
		if (rc < 0 || got != i)
			break;
	}
out:
	for (unsigned i = 0; i < COFFER_FOLDER_KEYWORDS_MAX; i++)
		free(names[i]);
	return rc;
}

struct ctl_put_args {
	struct mnt *m;
	struct mfile **v;
	struct coffer_ctlfile_rec *recs;
	size_t n;
};

static int ctl_put_txn(struct coffer_txn *t, void *arg)
{
	struct ctl_put_args *p = arg;
	int64_t now = mnt_now();
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < p->n; i++) {
		if (p->v[i]->gone) {
			/* unlinked while open (mount-hidden.c) */
			rc = coffer_ctlfile_del_txn(t, p->m->st, p->v[i]->a->id, p->v[i]->fid,
			                            p->v[i]->name, p->v[i]->name_n, now);
			if (rc == COFFER_ENOTFOUND)
				rc = 0;
			continue;
		}
		rc = coffer_ctlfile_put_txn(t, p->m->st, p->v[i]->a->id, p->v[i]->fid,
		                            p->v[i]->name, p->v[i]->name_n, &p->recs[i],
		                            p->v[i]->a->secret, 0, now);
		if (rc == 0)
			rc = mnt_keywords_sync_txn(t, p->v[i]->a, p->v[i]->fid, p->v[i]->name,
			                           p->v[i]->name_n, &p->v[i]->data);
	}
	return rc;
}

/*
 * Writes out every dirty control file of the account in one transaction:
 * the index then holds the control files as they all were at one instant,
 * never a newer dovecot.index with an older dovecot.index.log. Called on
 * fsync() and rename() of a control file (so all that was written before
 * is durable when they return) and by the flusher.
 */
static int ctl_persist_once(struct mnt *m, struct mfile *only)
{
	struct macct *a = only->a;
	struct ctl_put_args p = { m, NULL, NULL, 0 };
	struct coffer_buf path = COFFER_BUF_INIT;
	size_t capv = 0, caprecs = 0, written = 0;
	int rc = 0;

	for (int i = 0; i < MNT_HASH; i++) {
		for (struct mfile *f = m->files[i]; f; f = f->next) {
			if (f->type != MF_CTL || f->a != a || !f->dirty)
				continue;
			if (coffer_array_grow(&p.v, &capv, p.n, sizeof *p.v, 16) < 0 ||
			    coffer_array_grow(&p.recs, &caprecs, p.n, sizeof *p.recs, 16) < 0) {
				rc = COFFER_ENOMEM;
				goto out;
			}
			p.v[p.n++] = f;
		}
	}
	if (p.n == 0)
		goto out;
	for (written = 0; written < p.n; written++) {
		struct mfile *f = p.v[written];
		struct coffer_ctlfile_rec *r = &p.recs[written];

		memset(r, 0, sizeof *r);
		if (f->gone)
			continue; /* its deletion needs no blob */
		rc = mnt_ctl_load(m, f);
		if (rc < 0)
			break;
		rc = coffer_ctlfile_blob_write(m->st, a->id, COFFER_BLOB_CONTROL, a->secret,
		                               f->data.data, f->data.len, r->blob_id,
		                               &r->stored_size);
		if (rc < 0)
			break;
		r->size = f->data.len;
		r->mtime = f->mtime;
		r->mode = f->mode;
		r->fresh_blob = 1;
	}
	if (rc == 0)
		rc = coffer_index_update(coffer_store_index(m->st), ctl_put_txn, &p);
	if (rc < 0) {
		for (size_t i = 0; i < written; i++) {
			if (p.v[i]->gone || coffer_ctlfile_is_empty_blob(p.recs[i].blob_id))
				continue;
			coffer_store_blob_discard(m->st, a->id, p.recs[i].blob_id);
		}
		goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		memcpy(p.v[i]->lrec.blob_id, p.recs[i].blob_id, COFFER_ID_BYTES);
		p.v[i]->dirty = 0;
		p.v[i]->persisted = !p.v[i]->gone; /* a tombstone: the flusher frees it */
	}
	m->gc_pending = 1;
out:
	free(p.v);
	free(p.recs);
	coffer_buf_free(&path);
	return rc;
}

/*
 * On a full disk the write-out fails with NOSPACE: the reserve is released
 * for it, and it runs again. Nothing of the failed attempt is left (its
 * blobs are unlinked, the files stay dirty).
 */
int mnt_ctl_persist(struct mnt *m, struct mfile *only)
{
	int rc = ctl_persist_once(m, only);

	if (rc == COFFER_ENOSPACE && mnt_reserve_release(m) > 0)
		rc = ctl_persist_once(m, only);
	return rc;
}

int mnt_reserve_release(struct mnt *m)
{
	int rc = coffer_reserve_release(m->st);

	if (rc < 0) {
		mnt_log("reserve", "", rc);
		return rc;
	}
	if (rc > 0) {
		m->reserve_released = 1;
		fprintf(stderr,
		        "coffer mount: the disk of %s is full: released the space reserve "
		        "(%u KiB) for the index and control files; new mail is refused "
		        "until there is room again\n",
		        coffer_store_path(m->st), COFFER_RESERVE_BYTES >> 10);
	}
	return rc;
}

/* Takes the reserve back once the disk has room for it and twice as much
 * again, so that a disk on the edge does not release and refill it in turn. */
void mnt_reserve_refill(struct mnt *m)
{
	int rc;

	if (coffer_reserve_missing(m->st) == 0)
		return;
	rc = coffer_reserve_fill(m->st, 2 * (uint64_t)COFFER_RESERVE_BYTES);
	if (rc < 0)
		mnt_log("reserve", "", rc);
	if (rc > 0 && m->reserve_released) {
		m->reserve_released = 0;
		fprintf(stderr,
		        "coffer mount: the disk of %s has room again: space reserve refilled\n",
		        coffer_store_path(m->st));
	}
}

/* Moves a tmp file's content from memory into a staging blob. */
static int spill(struct mnt *m, struct mfile *f)
{
	struct coffer_blob_ids ids;
	int rc;

	rc = coffer_ctlfile_blobfile_create(m->st, f->a->id, f->sblob, &f->sfd, &f->spath);
	if (rc < 0)
		return rc;
	memcpy(ids.account_id, f->a->id, COFFER_ID_BYTES);
	memcpy(ids.blob_id, f->sblob, COFFER_ID_BYTES);
	ids.kind = COFFER_BLOB_MESSAGE;
	rc = coffer_blob_writer_new(f->sfd, &ids, f->a->secret->pk, f->a->secret, 0, &f->w);
	if (rc == 0)
		rc = coffer_blob_writer_write(f->w, f->data.data, f->data.len);
	if (rc < 0) {
		coffer_blob_writer_free(&f->w);
		close(f->sfd);
		f->sfd = -1;
		unlink(coffer_buf_str(&f->spath));
		return rc;
	}
	coffer_wipe(f->data.data, f->data.cap);
	coffer_buf_free(&f->data);
	f->spilled = 1;
	return 0;
}

static int file_write_one(struct mnt *m, struct mfile *f, const void *p, size_t n, uint64_t off)
{
	uint64_t end = off + n;
	int rc;

	if (f->type == MF_XDIR)
		return -EISDIR;
	if (f->linked)
		return -EPERM; /* a message: immutable */
	if (end < off || end > (f->type == MF_TMP ? m->max_message : COFFER_CTLFILE_MAX))
		return -EFBIG;
	if (f->type == MF_CTL) {
		rc = mnt_ctl_load(m, f);
		if (rc < 0)
			return rc;
	}
	if (f->type == MF_TMP)
		mnt_seal_drop(m, f);
	if (f->spilled) {
		/* the staging blob is a stream: appends only */
		if (off != f->size)
			return coffer_err_set(COFFER_EIO,
			                      "tmp file over %zu bytes written out of order",
			                      m->tmp_mem_max);
		rc = coffer_blob_writer_write(f->w, p, n);
		if (rc < 0)
			return rc;
		f->size = end;
		return 0;
	}
	if (f->type == MF_TMP && end > m->tmp_mem_max && off == f->data.len) {
		rc = spill(m, f);
		if (rc < 0)
			return rc;
		return file_write_one(m, f, p, n, off);
	}
	if (end > f->data.len) {
		rc = coffer_buf_reserve(&f->data, (size_t)(end - f->data.len));
		if (rc < 0)
			return rc;
		if (off > f->data.len)
			memset(f->data.data + f->data.len, 0, (size_t)(off - f->data.len));
		f->data.len = (size_t)end;
		f->data.data[end] = '\0';
	}
	memcpy(f->data.data + off, p, n);
	f->size = f->data.len;
	f->mtime = mnt_now();
	if (!f->dirty)
		f->dirty_since = f->mtime;
	f->dirty = 1;
	return 0;
}

static int file_truncate_one(struct mnt *m, struct mfile *f, uint64_t size)
{
	int rc;

	if (f->type == MF_XDIR)
		return -EISDIR;
	if (f->linked)
		return size == f->lrec.size ? 0 : -EPERM;
	if (f->spilled)
		return size == f->size ? 0 : -EPERM;
	if (size > (f->type == MF_TMP ? m->max_message : COFFER_CTLFILE_MAX))
		return -EFBIG;
	if (f->type == MF_CTL) {
		rc = mnt_ctl_load(m, f);
		if (rc < 0)
			return rc;
	}
	if (f->type == MF_TMP)
		mnt_seal_drop(m, f);
	if (size > f->data.len) {
		rc = coffer_buf_reserve(&f->data, (size_t)(size - f->data.len));
		if (rc < 0)
			return rc;
		memset(f->data.data + f->data.len, 0, (size_t)(size - f->data.len));
	}
	f->data.len = (size_t)size;
	if (f->data.data)
		f->data.data[size] = '\0';
	f->size = size;
	f->mtime = mnt_now();
	if (!f->dirty)
		f->dirty_since = f->mtime;
	f->dirty = 1;
	return 0;
}

int mnt_file_write(struct mnt *m, struct mfile *f, const void *p, size_t n, uint64_t off,
                   char **inval_r)
{
	uint64_t before = f->size;
	struct mfile *y;
	int rc = file_write_one(m, f, p, n, off);

	if (rc == 0 && (y = peer_of(m, f, before)) != NULL) {
		if (file_write_one(m, y, p, n, off) == 0)
			peer_changed(f, inval_r);
		else
			mnt_file_forget_peer(f);
	}
	return rc;
}

int mnt_file_truncate(struct mnt *m, struct mfile *f, uint64_t size, char **inval_r)
{
	uint64_t before = f->size;
	struct mfile *y;
	int rc = file_truncate_one(m, f, size);

	if (rc == 0 && before != size && (y = peer_of(m, f, before)) != NULL) {
		if (file_truncate_one(m, y, size) == 0)
			peer_changed(f, inval_r);
		else
			mnt_file_forget_peer(f);
	}
	return rc;
}

int mnt_file_read(struct mnt *m, struct mfile *f, void *p, size_t n, uint64_t off, size_t *got_r)
{
	int rc;

	*got_r = 0;
	if (f->type == MF_XDIR)
		return -EISDIR;
	if (f->linked)
		return mnt_msg_read(m, f->a, &f->lrec, f->pin_fd, p, n, off, got_r);
	if (f->spilled)
		return coffer_err_set(COFFER_EIO,
		                      "tmp file over %zu bytes cannot be read back "
		                      "before it is delivered",
		                      m->tmp_mem_max);
	if (f->type == MF_CTL) {
		rc = mnt_ctl_load(m, f);
		if (rc < 0)
			return rc;
	}
	if (off >= f->data.len)
		return 0;
	if (n > f->data.len - off)
		n = (size_t)(f->data.len - off);
	memcpy(p, f->data.data + off, n);
	*got_r = n;
	return 0;
}

/* ---- the flusher ---- */

struct inval_args {
	struct mnt *m;
	struct macct *a;
	struct coffer_account_rec rec;
	struct coffer_buf path;
};

static int inval_acct_txn(struct coffer_txn *t, void *arg)
{
	struct inval_args *v = arg;

	return coffer_account_get_txn(t, v->a->id, &v->rec);
}

static void inval(struct inval_args *v, const char *dir, const char *sub)
{
	coffer_buf_reset(&v->path);
	coffer_buf_printf(&v->path, "/%s%s%s%s%s", v->a->name, dir ? "/" : "", dir ? dir : "",
	                  sub ? "/" : "", sub ? sub : "");
	if (coffer_buf_ok(&v->path) == 0)
		mnt_ll_invalidate(v->m, coffer_buf_str(&v->path));
}

static int inval_folder(const struct coffer_folder_info *info, void *arg)
{
	struct inval_args *v = arg;
	struct coffer_buf dir = COFFER_BUF_INIT;

	if (info->id != COFFER_FOLDER_INBOX &&
	    coffer_maildir_folder_to_dir(info->name, &dir) == 0) {
		inval(v, coffer_buf_str(&dir), NULL);
		inval(v, coffer_buf_str(&dir), "cur");
		inval(v, coffer_buf_str(&dir), "new");
	}
	coffer_buf_free(&dir);
	return 0;
}

/*
 * The index's commit observer (index.h): a commit of this daemon's moved an
 * account's modseq from before to after. Nothing else can have changed the
 * account between the two (LMDB serialises writers), so if everything up to
 * before was accounted for, everything up to after is: the kernel made the
 * change itself, and operations that change a directory's listing touch the
 * account. A control-file write-out thus costs no invalidation. Runs in the
 * committing thread, which may hold the tree lock (order: lock, acct_lock).
 */
static void mnt_observe(void *arg, const struct coffer_modseq_note *notes, size_t n, int overflow)
{
	struct mnt *m = arg;

	(void)overflow; /* accounts left out stay behind: caught up later */
	pthread_mutex_lock(&m->acct_lock);
	for (size_t i = 0; i < n; i++) {
		struct macct *a;

		for (a = m->accts; a; a = a->next)
			if (memcmp(a->id, notes[i].acct, COFFER_ID_BYTES) == 0)
				break;
		if (a == NULL)
			continue;
		if (a->modseq_seen == notes[i].before)
			a->modseq_seen = notes[i].after;
		if (a->modseq_inval == notes[i].before)
			a->modseq_inval = notes[i].after;
	}
	pthread_mutex_unlock(&m->acct_lock);
}

/*
 * Spooled deliveries (engine/spool.h) are indexed by a commit of ours, which
 * mnt_observe takes for a change the kernel was told of. It was not: the
 * account's directories move their mtime now and are invalidated at the
 * next tick (modseq_inval forgotten).
 */
void mnt_absorb(struct mnt *m, struct macct *a)
{
	uint64_t n = 0;

	if (coffer_spool_absorb(m->st, a->id, &n) < 0)
		coffer_err_clear();
	if (n == 0)
		return;
	pthread_mutex_lock(&m->acct_lock);
	a->modseq_inval = 0;
	mnt_touch(a);
	pthread_mutex_unlock(&m->acct_lock);
}

void mnt_pool_use(struct mnt *m, struct macct *a)
{
	if (__atomic_add_fetch(&a->pool_use, 1, __ATOMIC_RELAXED) % MNT_POOL_EVERY == 0)
		flusher_wake(m, &m->pool_wake);
}

#define POOL_SLICE_NS 200000000 /* batches per wake: the tick's sync waits */

/* The pools of the accounts used since the last time, each topped up to a
 * lazy batch beyond its tmp files (engine/pool.h), for at most
 * POOL_SLICE_NS; an account still short is visited again at once. */
static void top_up_pools(struct mnt *m)
{
	struct macct **list = NULL;
	size_t n = 0, cap = 0;
	int64_t until = mono_ns() + POOL_SLICE_NS;

	pthread_mutex_lock(&m->acct_lock);
	for (struct macct *a = m->accts; a; a = a->next)
		if (__atomic_exchange_n(&a->pool_use, 0, __ATOMIC_RELAXED) != 0) {
			if (coffer_array_grow(&list, &cap, n, sizeof *list, 16) < 0)
				break;
			list[n++] = a;
		}
	pthread_mutex_unlock(&m->acct_lock);
	for (size_t i = 0; i < n; i++) {
		struct macct *a = list[i];
		int rc;

		do
			rc = coffer_pool_top_up(m->st, a->id,
			                        COFFER_POOL_BATCH_LAZY +
			                            __atomic_load_n(&a->tmp_files,
			                                            __ATOMIC_RELAXED));
		while (rc == 1 && mono_ns() < until);
		if (rc < 0)
			coffer_err_clear(); /* the next wake tries again */
		if (rc == 1) {              /* still short, perhaps: next time round */
			__atomic_add_fetch(&a->pool_use, 1, __ATOMIC_RELAXED);
			flusher_wake(m, &m->pool_wake);
		}
	}
	free(list);
}

/*
 * The kernel caches attributes (directory mtimes included) for attr_timeout
 * seconds. Changes made through the mount invalidate them in the kernel
 * already; changes made outside it (coffer deliver, the CLI, the worker)
 * are noticed here, once a second, by the account's modseq having moved
 * past modseq_inval: the account's mailbox directories are then
 * invalidated, so that Dovecot's mtime-based sync sees new mail within a
 * second whatever attr_timeout is. Runs with no lock of ours held (the
 * kernel may wait on requests we serve).
 */
static void invalidate_changed(struct mnt *m)
{
	struct inval_args v;
	struct macct **list = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&m->acct_lock);
	for (struct macct *a = m->accts; a; a = a->next) {
		if (coffer_array_grow(&list, &cap, n, sizeof *list, 16) < 0)
			break;
		list[n++] = a;
	}
	pthread_mutex_unlock(&m->acct_lock);
	memset(&v, 0, sizeof v);
	v.m = m;
	for (size_t i = 0; i < n; i++) {
		int stale;

		v.a = list[i];
		mnt_absorb(m, v.a); /* `coffer deliver`'s spooled mail */
		if (coffer_index_view(coffer_store_index(m->st), inval_acct_txn, &v) < 0)
			continue;
		pthread_mutex_lock(&m->acct_lock);
		/* > not !=: mnt_observe may have moved past this view */
		stale = v.rec.modseq > v.a->modseq_inval;
		if (stale)
			v.a->modseq_inval = v.rec.modseq;
		acct_saw(v.a, v.rec.modseq);
		pthread_mutex_unlock(&m->acct_lock);
		if (!stale)
			continue;
		inval(&v, NULL, NULL);
		inval(&v, "cur", NULL);
		inval(&v, "new", NULL);
		coffer_folder_list(v.a->mb, inval_folder, &v);
	}
	coffer_buf_free(&v.path);
	free(list);
}

void mnt_ctl_unload(struct mfile *f)
{
	coffer_wipe(f->data.data, f->data.cap);
	coffer_buf_free(&f->data);
	f->loaded = 0;
}

static int by_use(const void *a, const void *b)
{
	const struct mfile *x = *(struct mfile *const *)a, *y = *(struct mfile *const *)b;

	return x->used_at < y->used_at ? -1 : x->used_at > y->used_at;
}

/* The clean, loaded control files of one flusher pass. */
struct clean_set {
	struct mfile **v;
	size_t n, cap, bytes;
};

/*
 * One control file's turn in the flusher's pass: a dirty one is written
 * out; a clean one is unloaded 30 s after its last use, or kept in cs for
 * ctl_bound(). 1 when f is a tombstone whose deletion is now written out
 * (by this or an earlier batch): the caller unlinks and frees it.
 */
static int flush_ctl(struct mnt *m, struct mfile *f, int64_t now, struct clean_set *cs)
{
	if (f->dirty) {
		int rc = mnt_ctl_persist(m, f);

		if (rc < 0)
			mnt_log("write-out", f->name, rc);
	}
	if (f->dirty)
		return 0;
	if (f->gone)
		return 1;
	if (!f->loaded)
		return 0;
	if (now - f->used_at > 30 * COFFER_NS_PER_SEC)
		mnt_ctl_unload(f);
	else if (coffer_array_grow(&cs->v, &cs->cap, cs->n, sizeof *cs->v, 64) == 0) {
		cs->v[cs->n++] = f;
		cs->bytes += f->data.cap;
	}
	return 0;
}

/*
 * Clean control files stay loaded within the cache bound: beyond it the
 * least recently used are unloaded now, and read back from their blobs when
 * used again. Dirty ones are written out within the second, so the daemon's
 * heap is bounded by the cache, this bound and one second of control-file
 * writes.
 */
static void ctl_bound(struct mnt *m, struct clean_set *cs)
{
	size_t bytes = cs->bytes;

	if (bytes <= m->cache_max)
		return;
	qsort(cs->v, cs->n, sizeof *cs->v, by_use);
	for (size_t i = 0; i < cs->n && bytes > m->cache_max; i++) {
		bytes -= cs->v[i]->data.cap;
		mnt_ctl_unload(cs->v[i]);
	}
}

static int tick_due(const struct timespec *tick)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > tick->tv_sec ||
	       (now.tv_sec == tick->tv_sec && now.tv_nsec >= tick->tv_nsec);
}

static void *flusher(void *arg)
{
	struct mnt *m = arg;
	struct clean_set cs = { 0 };
	struct timespec tick;

	clock_gettime(CLOCK_MONOTONIC, &tick);
	tick.tv_sec += 1;
	pthread_mutex_lock(&m->stop_lock);
	while (!m->stop) {
		int64_t now;
		int gc, sync_now, r = 0;

		while (!m->stop && !m->pool_wake && !m->sync_wake && r != ETIMEDOUT)
			r = pthread_cond_timedwait(&m->stop_cond, &m->stop_lock, &tick);
		if (m->stop)
			break;
		sync_now = m->sync_wake;
		m->pool_wake = 0;
		m->sync_wake = 0;
		pthread_mutex_unlock(&m->stop_lock);
		if (sync_now && mnt_lazy_sync(m) < 0)
			mnt_log("sync", "", COFFER_EIO);
		top_up_pools(m);
		if (r != ETIMEDOUT && !tick_due(&tick)) { /* woken for the pools only */
			pthread_mutex_lock(&m->stop_lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &tick);
		tick.tv_sec += 1;
		pthread_rwlock_wrlock(&m->lock);
		now = mnt_now();
		cs.n = 0;
		cs.bytes = 0;
		for (int i = 0; i < MNT_HASH; i++) {
			struct mfile **pp = &m->files[i];

			while (*pp) {
				struct mfile *f = *pp;

				if (f->type == MF_CTL && flush_ctl(m, f, now, &cs)) {
					*pp = f->next;
					f->next = NULL;
					mnt_file_free(m, f);
				} else {
					pp = &f->next;
				}
			}
		}
		ctl_bound(m, &cs);
		gc = m->gc_pending;
		m->gc_pending = 0;
		mnt_reserve_refill(m);
		pthread_rwlock_unlock(&m->lock);
		/* lazy commits are at most a tick from durable */
		if (mnt_lazy_sync(m) < 0)
			mnt_log("sync", "", COFFER_EIO);
		if (m->se)
			invalidate_changed(m);
		mnt_ll_sweep(m);
		/* outside the tree lock: the trash holds only blobs nothing names */
		if (gc) {
			uint64_t removed;
			int rc = coffer_blob_collect(m->st, NULL, &removed);

			if (rc < 0)
				mnt_log("blob-collect", "", rc);
		}
		pthread_mutex_lock(&m->stop_lock);
	}
	pthread_mutex_unlock(&m->stop_lock);
	free(cs.v);
	return NULL;
}

static void flush_all(struct mnt *m)
{
	pthread_rwlock_wrlock(&m->lock);
	for (int i = 0; i < MNT_HASH; i++)
		for (struct mfile *f = m->files[i]; f; f = f->next)
			if (f->type == MF_CTL && f->dirty) {
				int rc = mnt_ctl_persist(m, f);

				if (rc < 0)
					mnt_log("write-out", f->name, rc);
			}
	pthread_rwlock_unlock(&m->lock);
	if (mnt_lazy_sync(m) < 0)
		mnt_log("sync", "", COFFER_EIO);
	coffer_blob_collect(m->st, NULL, NULL);
}

static void free_all(struct mnt *m)
{
	mnt_hidden_free_all(m);
	for (int i = 0; i < MNT_HASH; i++) {
		while (m->files[i])
			mnt_file_free(m, m->files[i]);
	}
	mnt_cache_free(m);
	while (m->accts) {
		struct macct *a = m->accts;

		m->accts = a->next;
		coffer_mailbox_close(&a->mb);
		free(a->fresh);
		free(a->name);
		free(a);
	}
}

/* ---- the daemon ---- */

static int lock_path(const char *store, struct coffer_buf *out)
{
	coffer_buf_printf(out, "%s/locks/mount.lock", store);
	return coffer_buf_ok(out);
}

static void ready(const struct coffer_mount_opts *o, int rc)
{
	char line[512];

	if (o->ready_fd < 0)
		return;
	if (rc == 0)
		snprintf(line, sizeof line, "ok\n");
	else
		snprintf(line, sizeof line, "%d %s\n", rc,
		         *coffer_errmsg() ? coffer_errmsg() : coffer_strerror(rc));
	if (write(o->ready_fd, line, strlen(line)) < 0)
		(void)0;
	close(o->ready_fd);
}

int coffer_mount_run(const struct coffer_mount_opts *o)
{
	struct mnt *m = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct coffer_keyfile *kf;
	struct coffer_buf opts = COFFER_BUF_INIT, lpath = COFFER_BUF_INIT;
	struct fuse_loop_config lc;
	pthread_condattr_t ca;
	pthread_t th;
	int rc, lockfd = -1, mounted = 0, thread = 0, handlers = 0;

	prctl(PR_SET_DUMPABLE, 0);
	/* glibc gives each FUSE worker thread its own arena, and each arena
	 * keeps what its thread freed: the heap grew towards workers x working
	 * set. Two arenas bound it by about the working set (docs/design.md). */
	mallopt(M_ARENA_MAX, 2);
	m = calloc(1, sizeof *m);
	if (m == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "mount: out of memory");
		goto out;
	}
	pthread_rwlock_init(&m->lock, NULL);
	pthread_mutex_init(&m->acct_lock, NULL);
	pthread_mutex_init(&m->cache_lock, NULL);
	pthread_mutex_init(&m->stop_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the flusher's tick */
	pthread_cond_init(&m->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	m->o = o;
	m->uid = o->uid;
	m->gid = o->gid;
	m->started_at = mnt_now();
	m->tmp_mem_max = 8u << 20;
	rc = coffer_store_open(o->store_path, o->key_file, &m->st);
	if (rc < 0)
		goto out;
	m->max_message = coffer_store_config(m->st)->max_message_size;
	m->cache_max = coffer_store_config(m->st)->mount_cache_size;
	coffer_index_set_observer(coffer_store_index(m->st), mnt_observe, m);
	rc = coffer_index_set_lazy(coffer_store_index(m->st));
	if (rc < 0)
		goto out;
	/* a store made before the reserve existed gets one here, if it fits */
	if (coffer_reserve_fill(m->st, 0) < 0)
		coffer_err_clear();
	/* loaded once, before any thread: the store's lazy load is not
	 * thread-safe */
	rc = coffer_store_keyfile(m->st, &kf);
	if (rc < 0)
		goto out;
	rc = lock_path(o->store_path, &lpath);
	if (rc < 0)
		goto out;
	lockfd = open(coffer_buf_str(&lpath), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = coffer_err_set(COFFER_ETEMP,
		                    "mount: the store %s is already mounted (%s is "
		                    "locked by another mount daemon)",
		                    o->store_path, coffer_buf_str(&lpath));
		goto out;
	}
	if (ftruncate(lockfd, 0) == 0)
		dprintf(lockfd, "%ld %s\n", (long)getpid(), o->mountpoint);

	/* defaults first, so that -o given by the user overrides them
	 * (docs/design.md, Coordination and caching; the timeouts are
	 * mount-ll.c's). negative_timeout=1: a name made outside the kernel's
	 * sight (another process's delivery) may stay hidden as long as the
	 * once-a-second check takes to notice it anyway, and Dovecot's
	 * per-message probe of an absent dovecot.index.cache is not a round
	 * trip each time */
	coffer_buf_printf(&opts,
	                  "fsname=coffer,subtype=coffer,default_permissions,"
	                  "entry_timeout=60,attr_timeout=60,negative_timeout=1%s",
	                  o->allow_other ? ",allow_other" : "");
	rc = coffer_buf_ok(&opts);
	if (rc < 0)
		goto out;
	if (fuse_opt_add_arg(&args, "coffer") < 0 || fuse_opt_add_arg(&args, "-o") < 0 ||
	    fuse_opt_add_arg(&args, coffer_buf_str(&opts)) < 0 ||
	    (o->fuse_opts &&
	     (fuse_opt_add_arg(&args, "-o") < 0 || fuse_opt_add_arg(&args, o->fuse_opts) < 0))) {
		rc = coffer_err_set(COFFER_ENOMEM, "mount: out of memory");
		goto out;
	}
	coffer_mnt = m;
	se = mnt_ll_session(m, &args);
	if (se == NULL) {
		rc = coffer_err_set(COFFER_EINVAL, "mount: FUSE refused the options (-o %s%s%s)",
		                    coffer_buf_str(&opts), o->fuse_opts ? "," : "",
		                    o->fuse_opts ? o->fuse_opts : "");
		goto out;
	}
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		rc = coffer_err_set(COFFER_EIO,
		                    "mount: cannot mount on %s (is /dev/fuse there, "
		                    "and the directory empty and not mounted?)",
		                    o->mountpoint);
		goto out;
	}
	mounted = 1;
	m->se = se;
	if (mnt_uring_attach(m, se) < 0) {
		rc = coffer_err_set(COFFER_ENOMEM, "mount: cannot set up the session's I/O");
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		rc = coffer_err_set(COFFER_EIO, "mount: cannot set signal handlers");
		goto out;
	}
	handlers = 1;
	if (pthread_create(&th, NULL, flusher, m) != 0) {
		rc = coffer_err_set(COFFER_ENOMEM, "mount: cannot start the flusher thread");
		goto out;
	}
	thread = 1;
	rc = mnt_seal_start(m);
	if (rc < 0)
		goto out;
	ready(o, 0);
	memset(&lc, 0, sizeof lc);
	lc.clone_fd = 0;
	lc.max_idle_threads = 16;
	rc = fuse_session_loop_mt(se, &lc);
	rc = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP
	         ? 0
	         : coffer_err_set(COFFER_EIO, "mount: the FUSE loop failed");
	if (rc < 0)
		fprintf(stderr, "coffer mount: %s\n", coffer_errmsg());
out:
	mnt_uring_stop(m);
	if (m)
		mnt_seal_stop(m);
	if (rc < 0)
		ready(o, rc);
	if (thread) {
		pthread_mutex_lock(&m->stop_lock);
		m->stop = 1;
		pthread_cond_signal(&m->stop_cond);
		pthread_mutex_unlock(&m->stop_lock);
		pthread_join(th, NULL);
	}
	if (m && m->st && mounted)
		flush_all(m);
	if (se) {
		m->se = NULL;
		if (handlers)
			fuse_remove_signal_handlers(se);
		if (mounted)
			fuse_session_unmount(se);
		fuse_session_destroy(se);
	}
	fuse_opt_free_args(&args);
	if (m) {
		free_all(m);
		mnt_ll_free(m);
		coffer_store_close(&m->st);
		pthread_rwlock_destroy(&m->lock);
		pthread_mutex_destroy(&m->acct_lock);
		pthread_mutex_destroy(&m->cache_lock);
		pthread_mutex_destroy(&m->stop_lock);
		pthread_cond_destroy(&m->stop_cond);
		free(m);
	}
	coffer_mnt = NULL;
	if (lockfd >= 0)
		close(lockfd);
	coffer_buf_free(&opts);
	coffer_buf_free(&lpath);
	return rc;
}

int coffer_mount_wait_exit(const char *store_path, int timeout_s)
{
	struct coffer_buf lpath = COFFER_BUF_INIT;
	int fd, rc;

	rc = lock_path(store_path, &lpath);
	if (rc < 0)
		return rc;
	fd = open(coffer_buf_str(&lpath), O_RDONLY | O_CLOEXEC);
	coffer_buf_free(&lpath);
	if (fd < 0)
		return 0; /* never mounted */
	for (int i = 0; i < timeout_s * 10; i++) {
		if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
			close(fd);
			return 0;
		}
		usleep(100000);
	}
	close(fd);
	return coffer_err_set(COFFER_ETEMP, "umount: the mount daemon has not exited after %d s",
	                      timeout_s);
}
