/*
 * mount-ops.c: the FUSE operations of the mount, by path, in the table of
 * libfuse3's high-level API (mount-ll.c calls them for the kernel's
 * inodes). docs/design.md "The mount" is the contract; in short:
 *
 *   /ACCT/                  INBOX's Maildir root; .FOLDER/ for the others
 *   .../cur/ .../new/       messages, generated from the index per call
 *   .../tmp/                files being written: daemon memory (or a
 *                           staging blob), never plaintext on disk
 *   .../NAME                control files (engine/ctlfile), in memory while
 *                           used, written out as encrypted blobs
 *
 * Every operation takes the daemon's lock (mount-private.h; the op_*
 * functions here, through LOCKED), resolves the path in one read
 * transaction (mnt_resolve), and makes any change in one write transaction
 * that commits before the operation returns: a rename() or link() out of
 * tmp/ (blob fsynced, then LMDB commit), a flag rename, an unlink, a folder
 * mkdir/rename/rmdir and an fsync() of a control file survive the daemon's
 * death when they return; changes to the Maildir tree survive a crash of
 * the system once a directory or message is fsynced (docs/design.md,
 * Durability).
 *
 * Map: path resolution and the lock; getattr; readdir; files (create,
 * read, write, fsync, with the full-disk check); attributes; unlink; then
 * the directory operations, whose work is in mount-folder.c (mkdir, rmdir,
 * a folder's rename) and mount-rename.c (rename and link of files, the
 * Maildir write paths); the table.
 *
 * All state is kept per path, not per handle: the kernel never sends open()
 * (mount-ll.c answers ENOSYS) and keeps each file's page cache. POSIX and
 * flock locks are handled by the kernel (no lock operations: FUSE's local
 * locking). Paths ending in the hidden names of files unlinked or renamed
 * over while the kernel holds them are served by mount-hidden.c.
 */
#define FUSE_USE_VERSION 35
#include "mount-private.h"

#include "engine/clock.h"
#include "engine/ctlfile.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/message.h"
#include "engine/reserve.h"

#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* ---- path resolution and the lock ---- */

void mnt_res_free(struct mres *r)
{
	coffer_buf_free(&r->folder);
	coffer_buf_free(&r->efolder);
	coffer_buf_free(&r->unique);
}

static int res_txn(struct coffer_txn *t, void *arg)
{
	struct mres *r = arg;
	struct mnt *m = r->m;
	int rc;

	rc = mnt_account_check_txn(t, m, r->a);
	if (rc < 0)
		return rc;
	r->fid = COFFER_FOLDER_INBOX;
	if (r->p.dir) {
		rc = coffer_folder_resolve_txn(t, m->st, r->a->id, coffer_buf_str(&r->folder), 0,
		                               NULL, 0, &r->fid, NULL);
		if (rc < 0)
			return rc;
	}
	if (r->p.kind == COFFER_MP_ENTRY && r->efolder.len) {
		rc = coffer_folder_resolve_txn(t, m->st, r->a->id, coffer_buf_str(&r->efolder), 0,
		                               NULL, 0, &r->efid, NULL);
		if (rc == 0)
			r->is_folder = 1;
		else if (rc != COFFER_ENOTFOUND)
			return rc;
	}
	if (r->p.kind == COFFER_MP_FILE && r->p.sub != COFFER_MP_TMP &&
	    coffer_maildir_name_parse(r->p.name, r->p.name_n, &r->mn) == 0) {
		struct coffer_buf want = COFFER_BUF_INIT;

		rc = coffer_message_find_name_txn(t, m->st, r->a->id, r->fid, r->p.name,
		                                  r->mn.unique_len, &r->uid);
		if (rc == COFFER_ENOTFOUND)
			return 0;
		if (rc == 0)
			rc = coffer_message_get_txn(t, r->a->id, r->fid, r->uid, &r->rec);
		if (rc < 0)
			return rc;
		r->rec.name_box = NULL;
		r->rec.name_box_len = 0;
		/* the name must be the message's current one, in the right dir */
		rc = coffer_mount_message_name(&want, r->p.name, r->mn.unique_len, r->rec.is_new,
		                               r->rec.flags, r->rec.keywords);
		if (rc == 0 && (r->rec.is_new == (r->p.sub == COFFER_MP_NEW)) &&
		    want.len == r->p.name_n && memcmp(want.data, r->p.name, want.len) == 0)
			r->is_msg = 1;
		coffer_buf_free(&want);
		if (rc == 0)
			rc = coffer_buf_append(&r->unique, r->p.name, r->mn.unique_len);
		return rc;
	}
	return 0;
}

/* Resolves path; 0 with r filled, or -errno. The account and the mailbox
 * directory must exist; the last component may not. */
int mnt_resolve(struct mnt *m, const char *path, struct mres *r)
{
	int rc;

	memset(r, 0, sizeof *r);
	r->m = m;
	if (coffer_mount_path_parse(path, &r->p) < 0)
		return -ENOENT;
	if (r->p.kind == COFFER_MP_ROOT)
		return 0;
	rc = mnt_account(m, r->p.acct, r->p.acct_n, &r->a);
	if (rc < 0)
		return mnt_errno(rc) == -EIO ? -EIO : -ENOENT;
	if (r->p.dir) {
		if (coffer_maildir_dir_to_folder(r->p.dir, r->p.dir_n, &r->folder) < 0)
			return -ENOENT;
	} else {
		coffer_buf_puts(&r->folder, "INBOX");
	}
	if (r->p.kind == COFFER_MP_ENTRY && r->p.dir == NULL && r->p.name[0] == '.' &&
	    coffer_maildir_dir_to_folder(r->p.name, r->p.name_n, &r->efolder) < 0)
		coffer_buf_reset(&r->efolder);
	rc = coffer_index_view(coffer_store_index(m->st), res_txn, r);
	if (rc < 0)
		return mnt_errno(rc);
	if ((r->p.kind == COFFER_MP_SUB || r->p.kind == COFFER_MP_FILE) &&
	    !mnt_sub_exists(r->a, r->fid, r->p.sub))
		r->sub_missing = 1;
	return 0;
}

/* The tree lock (mount-private.h), exclusive or as shared decides; a
 * request whose path went stale meanwhile does nothing (mnt_ll_stale). */
#define LOCKED_AS(shared, body)                             \
	do {                                                \
		struct mnt *m = coffer_mnt;                 \
		int rc_;                                    \
		if (shared)                                 \
			pthread_rwlock_rdlock(&m->lock);    \
		else                                        \
			pthread_rwlock_wrlock(&m->lock);    \
		rc_ = mnt_ll_stale(m) ? MNT_RETRY : (body); \
		pthread_rwlock_unlock(&m->lock);            \
		return rc_;                                 \
	} while (0)
#define LOCKED(body) LOCKED_AS(0, body)
/* LOCKED for a write or truncate: one that reached a link copy
 * (mfile.peer) sets inval, and the copy's kernel caches are invalidated
 * after the lock is dropped and before the answer, so that a reader that
 * saw the original grow finds the copy grown too, as on one inode. */
#define LOCKED_MIRRORED(body)                               \
	do {                                                \
		struct mnt *m = coffer_mnt;                 \
		char *inval = NULL;                         \
		int rc_;                                    \
		pthread_rwlock_wrlock(&m->lock);            \
		rc_ = mnt_ll_stale(m) ? MNT_RETRY : (body); \
		pthread_rwlock_unlock(&m->lock);            \
		mnt_inval_copy(m, inval);                   \
		return rc_;                                 \
	} while (0)

/*
 * Whether an operation of this kind on path only reads the tree's state
 * (mount-private.h): messages in cur/ new/, directories (not control files
 * at a mailbox's level, which are loaded into the table on first use).
 * what: 'g' getattr, 'd' readdir, 'r' read.
 */
static int shared_path(const char *path, int what)
{
	struct coffer_mount_path p;

	if (coffer_mount_path_parse(path, &p) < 0)
		return 1; /* ENOENT */
	switch (p.kind) {
	case COFFER_MP_ROOT:
	case COFFER_MP_ACCT:
	case COFFER_MP_SUB: return 1;
	case COFFER_MP_FILE: return what == 'r' ? p.sub != COFFER_MP_TMP : 1;
	default: return 0;
	}
}

static void stat_dir(struct mnt *m, struct stat *st, int64_t mtime)
{
	memset(st, 0, sizeof *st);
	st->st_mode = S_IFDIR | 0700;
	st->st_nlink = 2;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_mtim.tv_sec = mtime / COFFER_NS_PER_SEC;
	st->st_mtim.tv_nsec = mtime % COFFER_NS_PER_SEC;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
	st->st_size = 4096;
	st->st_blksize = 4096;
}

static void stat_file(struct mnt *m, struct stat *st, uint64_t size, int64_t mtime, uint32_t mode)
{
	memset(st, 0, sizeof *st);
	st->st_mode = S_IFREG | (mode & 0777);
	st->st_nlink = 1;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_blksize = 65536;
	st->st_mtim.tv_sec = mtime / COFFER_NS_PER_SEC;
	st->st_mtim.tv_nsec = mtime % COFFER_NS_PER_SEC;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

/* An in-memory file's attributes: a tmp file linked to a message has the
 * message's size and internal date. */
static void stat_mfile(struct mnt *m, struct stat *st, const struct mfile *f)
{
	stat_file(m, st, f->linked ? f->lrec.size : f->size,
	          f->linked ? f->lrec.internal_date : f->mtime, f->mode);
}

/* What a mailbox-level ENTRY names, once resolved. */
int mnt_entry_file(struct mnt *m, struct mres *r, struct mfile **f_r)
{
	struct mfile *f = mnt_file_find(m, MF_CTL, r->a, r->fid, r->p.name, r->p.name_n);
	int rc;

	*f_r = NULL;
	if (f && f->gone)
		return -ENOENT; /* unlinked while open (mount-hidden.c) */
	if (f) {
		*f_r = f;
		return 0;
	}
	rc = mnt_ctl_get(m, r->a, r->fid, r->p.name, r->p.name_n, f_r);
	return rc == COFFER_ENOTFOUND ? -ENOENT : mnt_errno(rc);
}

static int do_getattr(struct mnt *m, const char *path, struct stat *st)
{
	struct mres r;
	struct mfile *f;
	int rc;

	if (mnt_hidden_name(path)) {
		f = mnt_hidden_find(m, path);
		if (f == NULL)
			return -ENOENT;
		stat_mfile(m, st, f);
		return 0;
	}
	rc = mnt_resolve(m, path, &r);
	if (rc < 0)
		goto out;
	switch (r.p.kind) {
	case COFFER_MP_ROOT: stat_dir(m, st, m->started_at); break;
	case COFFER_MP_SUB:
		if (r.sub_missing) {
			rc = -ENOENT;
			break;
		}
		/* fall through */
	case COFFER_MP_ACCT: stat_dir(m, st, mnt_changed(r.a)); break;
	case COFFER_MP_ENTRY:
		if (r.is_folder) {
			stat_dir(m, st, mnt_changed(r.a));
			break;
		}
		rc = mnt_entry_file(m, &r, &f);
		if (rc < 0)
			break;
		if (f->type == MF_XDIR)
			stat_dir(m, st, f->mtime);
		else
			stat_file(m, st, f->size, f->mtime, f->mode);
		break;
	case COFFER_MP_FILE:
		if (r.sub_missing) {
			rc = -ENOENT;
		} else if (r.p.sub == COFFER_MP_TMP) {
			f = mnt_file_find(m, MF_TMP, r.a, r.fid, r.p.name, r.p.name_n);
			if (f == NULL)
				rc = -ENOENT;
			else
				stat_mfile(m, st, f);
		} else if (r.is_msg) {
			stat_file(m, st, r.rec.size, r.rec.internal_date, 0600);
		} else {
			rc = -ENOENT;
		}
		break;
	default: rc = -ENOENT;
	}
out:
	mnt_res_free(&r);
	return rc;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	LOCKED_AS(shared_path(path, 'g'), do_getattr(m, path, st));
}

/* ---- readdir ---- */

struct fill {
	void *buf;
	fuse_fill_dir_t filler;
	struct mnt *m;
	struct macct *a;
	int sub;
	uint32_t fid;
	int rc;
};

static int fill_account(const struct coffer_account_info *info, void *arg)
{
	struct fill *c = arg;

	if (info->state == COFFER_ACCOUNT_ACTIVE && info->name)
		c->filler(c->buf, info->name, NULL, 0, 0);
	return 0;
}

static int fill_folder(const struct coffer_folder_info *info, void *arg)
{
	struct fill *c = arg;
	struct coffer_buf dir = COFFER_BUF_INIT;

	if (info->id != COFFER_FOLDER_INBOX && coffer_maildir_folder_to_dir(info->name, &dir) == 0)
		c->filler(c->buf, coffer_buf_str(&dir), NULL, 0, 0);
	coffer_buf_free(&dir);
	return 0;
}

static int fill_message(const struct coffer_message *msg, void *arg)
{
	struct fill *c = arg;
	struct coffer_buf name = COFFER_BUF_INIT;

	if (msg->rec.is_new != (c->sub == COFFER_MP_NEW))
		return 0;
	if (coffer_mount_message_name(&name, msg->unique, strlen(msg->unique), msg->rec.is_new,
	                              msg->rec.flags, msg->rec.keywords) == 0)
		c->filler(c->buf, coffer_buf_str(&name), NULL, 0, 0);
	coffer_buf_free(&name);
	return 0;
}

static int fill_ctl(const char *name, size_t n, const struct coffer_ctlfile_rec *rec, void *arg)
{
	struct fill *c = arg;
	struct mfile *f = mnt_file_find(c->m, MF_CTL, c->a, c->fid, name, n);

	/* in memory and persisted: listed from the index, here; a tombstone
	 * (unlinked while open) is not listed */
	if (f == NULL || (f->type == MF_CTL && !f->gone))
		c->filler(c->buf, name, NULL, 0, 0);
	return 0;
}

struct ctl_list_args {
	struct fill *c;
};

static int ctl_list_txn(struct coffer_txn *t, void *arg)
{
	struct fill *c = arg;

	return coffer_ctlfile_list_txn(t, c->a->id, c->fid, c->a->secret, fill_ctl, c);
}

static int do_readdir(struct mnt *m, const char *path, void *buf, fuse_fill_dir_t filler)
{
	struct fill c;
	struct mres r;
	int rc;

	rc = mnt_resolve(m, path, &r);
	if (rc < 0)
		goto out;
	memset(&c, 0, sizeof c);
	c.buf = buf;
	c.filler = filler;
	c.m = m;
	c.a = r.a;
	c.fid = r.fid;
	c.sub = r.p.sub;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	switch (r.p.kind) {
	case COFFER_MP_ROOT: rc = mnt_errno(coffer_account_list(m->st, fill_account, &c)); break;
	case COFFER_MP_ENTRY:
		if (!r.is_folder) {
			struct mfile *f;

			rc = mnt_entry_file(m, &r, &f);
			if (rc == 0 && f->type != MF_XDIR)
				rc = -ENOTDIR;
			break; /* other directories are always empty */
		}
		c.fid = r.efid;
		/* fall through */
	case COFFER_MP_ACCT:
		if (mnt_sub_exists(r.a, c.fid, COFFER_MP_CUR))
			filler(buf, "cur", NULL, 0, 0);
		if (mnt_sub_exists(r.a, c.fid, COFFER_MP_NEW))
			filler(buf, "new", NULL, 0, 0);
		if (mnt_sub_exists(r.a, c.fid, COFFER_MP_TMP))
			filler(buf, "tmp", NULL, 0, 0);
		if (r.p.kind == COFFER_MP_ACCT)
			rc = mnt_errno(coffer_folder_list(r.a->mb, fill_folder, &c));
		if (rc == 0)
			rc = mnt_errno(
			    coffer_index_view(coffer_store_index(m->st), ctl_list_txn, &c));
		for (int i = 0; rc == 0 && i < MNT_HASH; i++)
			for (struct mfile *f = m->files[i]; f; f = f->next)
				if (f->type != MF_TMP && f->a == r.a && f->fid == c.fid &&
				    !f->gone && (f->type == MF_XDIR || !f->persisted))
					filler(buf, f->name, NULL, 0, 0);
		break;
	case COFFER_MP_SUB:
		if (r.p.sub == COFFER_MP_TMP) {
			for (int i = 0; i < MNT_HASH; i++)
				for (struct mfile *f = m->files[i]; f; f = f->next)
					if (f->type == MF_TMP && f->a == r.a && f->fid == r.fid)
						filler(buf, f->name, NULL, 0, 0);
		} else {
			/* `coffer deliver`'s spooled mail (always for new/)
			 * is listed at once, not at the next second's tick */
			if (r.p.sub == COFFER_MP_NEW)
				mnt_absorb(m, r.a);
			rc = mnt_errno(coffer_message_list(r.a->mb, r.fid, fill_message, &c));
		}
		break;
	default: rc = -ENOTDIR;
	}
out:
	if (rc < 0)
		mnt_log("readdir", path, rc);
	mnt_res_free(&r);
	return rc;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	LOCKED_AS(shared_path(path, 'd'), do_readdir(m, path, buf, filler));
}

/* ---- files: create, open, read, write ---- */

static int do_create(struct mnt *m, const char *path, mode_t mode)
{
	struct mres r;
	struct mfile *f = NULL;
	int rc;

	if (!S_ISREG(mode) && (mode & S_IFMT) != 0)
		return -EPERM;
	if (mode & (S_ISUID | S_ISGID | S_ISVTX))
		return -EPERM;
	if (mnt_hidden_name(path))
		return -EPERM; /* the names of hidden files (mount-hidden.c) */
	rc = mnt_resolve(m, path, &r);
	if (rc < 0)
		goto out;
	if (r.p.kind == COFFER_MP_FILE && r.p.sub == COFFER_MP_TMP) {
		if (mnt_file_find(m, MF_TMP, r.a, r.fid, r.p.name, r.p.name_n)) {
			rc = -EEXIST;
		} else if ((f = mnt_file_new(m, MF_TMP, r.a, r.fid, r.p.name, r.p.name_n)) ==
		           NULL) {
			rc = -ENOMEM;
		}
	} else if (r.p.kind == COFFER_MP_ENTRY) {
		if (r.is_folder) {
			rc = -EEXIST;
		} else {
			struct mfile *tomb = mnt_file_find(m, MF_CTL, r.a, r.fid, r.p.name,
			                                   r.p.name_n);

			rc = mnt_entry_file(m, &r, &f);
			if (rc == 0)
				rc = -EEXIST;
			else if (rc == -ENOENT && tomb && tomb->gone) {
				/* the name of a file unlinked while open: a new,
				 * empty file that replaces its index entry */
				f = tomb;
				f->gone = 0;
				f->loaded = 1;
				f->size = 0;
				f->mtime = mnt_now();
				rc = 0;
			} else if (rc == -ENOENT &&
			           (f = mnt_file_new(m, MF_CTL, r.a, r.fid, r.p.name,
			                             r.p.name_n)) == NULL)
				rc = -ENOMEM;
			else if (rc == -ENOENT)
				rc = 0;
			if (f && rc == 0) {
				f->dirty = 1;
				f->dirty_since = f->mtime;
			}
		}
	} else if (r.p.kind == COFFER_MP_FILE) {
		rc = r.is_msg ? -EEXIST : -EPERM; /* messages arrive through tmp/ */
	} else {
		rc = -EEXIST;
	}
	if (rc == 0 && f)
		f->mode = (mode & 0777) ? (mode & 0777) : 0600;
out:
	if (rc < 0)
		mnt_log("create", path, rc);
	mnt_res_free(&r);
	return rc;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	fi->keep_cache = 1;
	LOCKED(do_create(m, path, mode | S_IFREG));
}

static int op_mknod(const char *path, mode_t mode, dev_t dev)
{
	if (!S_ISREG(mode))
		return -EPERM; /* no devices, fifos or sockets */
	LOCKED(do_create(m, path, mode));
}

/* The in-memory file a FILE in tmp/ or an ENTRY control file names. */
static int data_file(struct mnt *m, struct mres *r, struct mfile **f_r)
{
	*f_r = NULL;
	if (r->p.kind == COFFER_MP_FILE && r->p.sub == COFFER_MP_TMP) {
		*f_r = mnt_file_find(m, MF_TMP, r->a, r->fid, r->p.name, r->p.name_n);
		return *f_r ? 0 : -ENOENT;
	}
	if (r->p.kind == COFFER_MP_ENTRY && !r->is_folder) {
		int rc = mnt_entry_file(m, r, f_r);

		if (rc == 0 && (*f_r)->type == MF_XDIR)
			rc = -EISDIR;
		return rc;
	}
	return r->p.kind == COFFER_MP_FILE ? -ENOENT : -EISDIR;
}

static int do_read(struct mnt *m, const char *path, char *buf, size_t size, off_t off)
{
	struct mres r;
	struct mfile *f;
	size_t got = 0;
	int rc;

	if (off < 0)
		return -EINVAL;
	if (mnt_hidden_name(path)) {
		f = mnt_hidden_find(m, path);
		rc = f ? mnt_errno(mnt_file_read(m, f, buf, size, (uint64_t)off, &got)) : -ENOENT;
		return rc < 0 ? rc : (int)got;
	}
	rc = mnt_resolve(m, path, &r);
	if (rc < 0)
		goto out;
	if (r.p.kind == COFFER_MP_FILE && r.p.sub != COFFER_MP_TMP) {
		if (!r.is_msg)
			rc = -ENOENT;
		else
			rc = mnt_errno(
			    mnt_msg_read(m, r.a, &r.rec, -1, buf, size, (uint64_t)off, &got));
	} else {
		rc = data_file(m, &r, &f);
		if (rc == 0)
			rc = mnt_errno(mnt_file_read(m, f, buf, size, (uint64_t)off, &got));
	}
out:
	if (rc < 0)
		mnt_log("read", path, rc);
	mnt_res_free(&r);
	return rc < 0 ? rc : (int)got;
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	LOCKED_AS(shared_path(path, 'r'), do_read(m, path, buf, size, off));
}

/*
 * Writes to tmp/ and control files land in daemon memory (or a staging blob)
 * and reach the store's disk only at the rename or flush that makes them
 * durable. A full disk must not surface only then: Dovecot expects ENOSPC
 * from write() and fsync(), and refuses the APPEND cleanly when it gets it
 * there. So writes and fsyncs check that the store's file system still has
 * room for the whole file, with a margin:
 *   - a tmp/ file (new mail) needs room for itself, a margin for the index
 *     and the envelope, and whatever the space reserve lacks: the space a
 *     released reserve gave back is not for new mail;
 *   - a control file needs room for its new blob and its index records
 *     only; without it the reserve is released (engine/reserve.h). Dovecot
 *     must rewrite dovecot-uidlist and its indexes even to SELECT, and on a
 *     full disk it must keep serving the mail it has.
 */
#define ROOM_MARGIN (4u << 20)
#define CTL_ROOM_MARGIN (256u << 10)

static int room_for(struct mnt *m, uint64_t bytes)
{
	uint64_t free_bytes = coffer_reserve_free_bytes(m->st);

	if (free_bytes == UINT64_MAX)
		return 0; /* cannot tell: the write will report what happens */
	if (free_bytes < bytes + bytes / 16 + ROOM_MARGIN + coffer_reserve_missing(m->st))
		return -ENOSPC;
	return 0;
}

static int ctl_room_for(struct mnt *m, uint64_t bytes)
{
	for (int released = 0;; released = 1) {
		uint64_t free_bytes = coffer_reserve_free_bytes(m->st);

		if (free_bytes == UINT64_MAX || free_bytes >= bytes + bytes / 16 + CTL_ROOM_MARGIN)
			return 0;
		if (released || mnt_reserve_release(m) <= 0)
			return -ENOSPC;
	}
}

static int do_write(struct mnt *m, const char *path, const char *buf, size_t size, off_t off,
                    char **inval_r)
{
	struct mres r;
	struct mfile *f;
	int rc;

	if (off < 0)
		return -EINVAL;
	if (mnt_hidden_name(path)) {
		f = mnt_hidden_find(m, path);
		rc = f ? mnt_errno(mnt_file_write(m, f, buf, size, (uint64_t)off, inval_r))
		       : -ENOENT;
		return rc < 0 ? rc : (int)size;
	}
	rc = mnt_resolve(m, path, &r);
	if (rc == 0 && r.p.kind == COFFER_MP_FILE && r.p.sub != COFFER_MP_TMP)
		rc = r.is_msg ? -EPERM : -ENOENT; /* messages never change */
	if (rc == 0)
		rc = data_file(m, &r, &f);
	if (rc == 0 && (uint64_t)off + size > f->size)
		rc = f->type == MF_CTL ? ctl_room_for(m, (uint64_t)off + size)
		                       : room_for(m, (uint64_t)off + size);
	if (rc == 0)
		rc = mnt_errno(mnt_file_write(m, f, buf, size, (uint64_t)off, inval_r));
	if (rc < 0)
		mnt_log("write", path, rc);
	mnt_res_free(&r);
	return rc < 0 ? rc : (int)size;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	LOCKED_MIRRORED(do_write(m, path, buf, size, off, &inval));
}

/* 0, an error, or 1 for a message (whose lazy commits op_fsync syncs) */
static int do_fsync(struct mnt *m, const char *path)
{
	struct mres r;
	struct mfile *f;
	int rc;

	if (mnt_hidden_name(path))
		return mnt_hidden_find(m, path) ? 0 : -ENOENT; /* never written out */
	rc = mnt_resolve(m, path, &r);
	if (rc == 0 && r.p.kind == COFFER_MP_ENTRY && !r.is_folder &&
	    mnt_entry_file(m, &r, &f) == 0 && f->type == MF_CTL)
		rc = mnt_errno(mnt_ctl_persist(m, f));
	/* tmp files become durable in the rename that delivers them, which
	 * must have room for them (their blob is made ahead, mount-seal.c); a
	 * message's rename (or flags) once fsynced, it or its directory */
	else if (rc == 0 && r.p.kind == COFFER_MP_FILE && r.p.sub == COFFER_MP_TMP &&
	         data_file(m, &r, &f) == 0) {
		rc = room_for(m, f->size);
		if (rc == 0)
			mnt_seal_queue(m, f); /* its rename is near: seal it meanwhile */
	} else if (rc == 0 && r.p.kind == COFFER_MP_FILE)
		rc = 1; /* op_fsync syncs, without the tree lock */
	if (rc < 0)
		mnt_log("fsync", path, rc);
	mnt_res_free(&r);
	return rc;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct mnt *m = coffer_mnt;
	int rc;

	(void)datasync;
	(void)fi;
	pthread_rwlock_wrlock(&m->lock);
	rc = mnt_ll_stale(m) ? MNT_RETRY : do_fsync(m, path);
	pthread_rwlock_unlock(&m->lock);
	if (rc == 1) {
		rc = mnt_errno(mnt_lazy_sync(m));
		if (rc < 0)
			mnt_log("fsync", path, rc);
	}
	return rc;
}

/* The directory's renames, links and unlinks: every lazy commit so far. */
static int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	int rc = mnt_errno(mnt_lazy_sync(coffer_mnt));

	(void)datasync;
	(void)fi;
	if (rc < 0)
		mnt_log("fsyncdir", path, rc);
	return rc;
}

/* ---- attributes ---- */

struct msg_update {
	struct mnt *m;
	struct mres *r;
	int64_t internal_date;
};

static int msg_update_txn(struct coffer_txn *t, void *arg)
{
	struct msg_update *u = arg;
	struct coffer_message_rec rec;
	int rc;

	rc = coffer_message_get_txn(t, u->r->a->id, u->r->fid, u->r->uid, &rec);
	if (rc < 0)
		return rc;
	rec.internal_date = u->internal_date;
	/* the name box is the one read in t, as the update requires */
	return coffer_message_update_txn(t, u->r->a->id, u->r->fid, u->r->uid, &rec);
}

static int64_t ts_ns(const struct timespec *ts, int64_t cur)
{
	if (ts->tv_nsec == UTIME_OMIT)
		return cur;
	if (ts->tv_nsec == UTIME_NOW)
		return mnt_now();
	return (int64_t)ts->tv_sec * COFFER_NS_PER_SEC + ts->tv_nsec;
}

/* utimensat on an in-memory file (a linked tmp file: its message's date;
 * a control file: written out with its new mtime). */
static void utime_mfile(struct mfile *f, const struct timespec *mt)
{
	if (f->linked) {
		f->lrec.internal_date = ts_ns(mt, f->lrec.internal_date);
		return;
	}
	f->mtime = ts_ns(mt, f->mtime);
	if (f->type == MF_CTL) {
		if (!f->dirty)
			f->dirty_since = mnt_now();
		f->dirty = 1;
	}
}

static int do_utimens(struct mnt *m, const char *path, const struct timespec tv[2])
{
	struct mres r;
	struct mfile *f;
	int rc;

	if (mnt_hidden_name(path)) {
		f = mnt_hidden_find(m, path);
		if (f)
			utime_mfile(f, &tv[1]);
		return f ? 0 : -ENOENT;
	}
	rc = mnt_resolve(m, path, &r);
	if (rc < 0)
		goto out;
	if (r.p.kind == COFFER_MP_FILE && r.p.sub != COFFER_MP_TMP) {
		if (!r.is_msg) {
			rc = -ENOENT;
		} else if (tv[1].tv_nsec != UTIME_OMIT) {
			struct msg_update u = { m, &r, ts_ns(&tv[1], r.rec.internal_date) };

			rc = mnt_errno(mnt_commit_lazy(m, msg_update_txn, &u));
			mnt_touch(r.a);
		}
	} else if (r.p.kind == COFFER_MP_FILE || (r.p.kind == COFFER_MP_ENTRY && !r.is_folder)) {
		rc = data_file(m, &r, &f);
		if (rc == -EISDIR)
			rc = 0;
		else if (rc == 0)
			utime_mfile(f, &tv[1]);
	}
	/* directories: their times are generated */
out:
	if (rc < 0)
		mnt_log("utimens", path, rc);
	mnt_res_free(&r);
	return rc;
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	LOCKED(do_utimens(m, path, tv));
}

static int do_truncate(struct mnt *m, const char *path, off_t size, char **inval_r)
{
	struct mres r;
	struct mfile *f;
	int rc;

	if (size < 0)
		return -EINVAL;
	if (mnt_hidden_name(path)) {
		f = mnt_hidden_find(m, path);
		return f ? mnt_errno(mnt_file_truncate(m, f, (uint64_t)size, inval_r)) : -ENOENT;
	}
	rc = mnt_resolve(m, path, &r);
	if (rc == 0 && r.p.kind == COFFER_MP_FILE && r.p.sub != COFFER_MP_TMP)
		rc = !r.is_msg ? -ENOENT : (uint64_t)size == r.rec.size ? 0 : -EPERM;
	else if (rc == 0 && (rc = data_file(m, &r, &f)) == 0)
		rc = mnt_errno(mnt_file_truncate(m, f, (uint64_t)size, inval_r));
	if (rc < 0)
		mnt_log("truncate", path, rc);
	mnt_res_free(&r);
	return rc;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	LOCKED_MIRRORED(do_truncate(m, path, size, &inval));
}

static int do_chmod(struct mnt *m, const char *path, mode_t mode)
{
	struct mres r;
	struct mfile *f;
	int rc;

	if (mode & (S_ISUID | S_ISGID))
		return -EPERM;
	if (mnt_hidden_name(path)) {
		f = mnt_hidden_find(m, path);
		if (f)
			f->mode = mode & 0700 ? mode & 0700 : 0600;
		return f ? 0 : -ENOENT;
	}
	rc = mnt_resolve(m, path, &r);
	if (rc == 0 &&
	    (r.p.kind == COFFER_MP_ENTRY ||
	     (r.p.kind == COFFER_MP_FILE && r.p.sub == COFFER_MP_TMP)) &&
	    data_file(m, &r, &f) == 0) {
		f->mode = mode & 0700 ? mode & 0700 : 0600;
		if (f->type == MF_CTL) {
			if (!f->dirty)
				f->dirty_since = mnt_now();
			f->dirty = 1;
		}
	}
	mnt_res_free(&r);
	return rc;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	LOCKED(do_chmod(m, path, mode));
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct mnt *m = coffer_mnt;

	/* owners are fixed: accept only the owner every file already has */
	if ((uid != (uid_t)-1 && uid != m->uid) || (gid != (gid_t)-1 && gid != m->gid))
		return -EPERM;
	return 0;
}

static int op_statfs(const char *path, struct statvfs *sv)
{
	struct mnt *m = coffer_mnt;

	if (statvfs(coffer_store_path(m->st), sv) < 0)
		return -errno;
	sv->f_namemax = COFFER_MAILDIR_NAME_MAX;
	return 0;
}

/* ---- unlink ---- */

struct expunge_args {
	struct mnt *m;
	struct mres *r;
};

static int expunge_txn(struct coffer_txn *t, void *arg)
{
	struct expunge_args *e = arg;

	return coffer_message_expunge_txn(t, e->m->st, e->r->a->id, e->r->fid, e->r->uid,
	                                  coffer_buf_str(&e->r->unique), e->r->unique.len,
	                                  mnt_now());
}

struct ctl_del_args {
	struct mnt *m;
	struct mfile *f;
};

static int ctl_del_txn(struct coffer_txn *t, void *arg)
{
	struct ctl_del_args *d = arg;
	int rc;

	rc = coffer_ctlfile_del_txn(t, d->m->st, d->f->a->id, d->f->fid, d->f->name, d->f->name_n,
	                            mnt_now());
	return rc == COFFER_ENOTFOUND ? 0 : rc;
}

int mnt_expunge(struct mnt *m, struct mres *r)
{
	struct expunge_args e = { m, r };
	int rc;

	if (!r->is_msg)
		return -ENOENT;
	rc = mnt_errno(mnt_commit_lazy(m, expunge_txn, &e));
	if (rc == 0) {
		m->gc_pending = 1;
		mnt_touch(r->a);
		/* no expunged plaintext in memory (a hidden one reads its blob) */
		mnt_cache_drop(m, r->a->id, r->rec.blob_id);
	}
	return rc;
}

static int do_unlink(struct mnt *m, const char *path)
{
	struct mres r;
	struct mfile *f;
	int rc;

	if (mnt_hidden_name(path))
		return mnt_hidden_unlink(m, path); /* the last close */
	rc = mnt_resolve(m, path, &r);
	if (rc < 0)
		goto out;
	if (r.p.kind == COFFER_MP_FILE && r.p.sub != COFFER_MP_TMP) {
		rc = mnt_expunge(m, &r);
		goto out;
	}
	rc = data_file(m, &r, &f);
	if (rc < 0)
		goto out;
	if (f->type == MF_CTL && f->persisted) {
		struct ctl_del_args d = { m, f };

		rc = mnt_errno(coffer_index_update(coffer_store_index(m->st), ctl_del_txn, &d));
		if (rc < 0)
			goto out;
		m->gc_pending = 1;
	}
	mnt_file_free(m, f);
out:
	if (rc < 0)
		mnt_log("unlink", path, rc);
	mnt_res_free(&r);
	return rc;
}

static int op_unlink(const char *path)
{
	LOCKED(do_unlink(m, path));
}

/* ---- directories (mount-folder.c), rename and link (mount-rename.c) ---- */

static int op_mkdir(const char *path, mode_t mode)
{
	LOCKED(mnt_do_mkdir(m, path, mode));
}

static int op_rmdir(const char *path)
{
	LOCKED(mnt_do_rmdir(m, path));
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	LOCKED(mnt_do_rename(m, from, to, flags, 0));
}

static int op_link(const char *from, const char *to)
{
	LOCKED(mnt_do_rename(m, from, to, 0, 1));
}

static int op_symlink(const char *target, const char *path)
{
	return -EPERM;
}

/* ---- the table ---- */

static const struct fuse_operations ops = {
	.getattr = op_getattr,
	.readdir = op_readdir,
	.mknod = op_mknod,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.fsync = op_fsync,
	.fsyncdir = op_fsyncdir,
	.utimens = op_utimens,
	.truncate = op_truncate,
	.chmod = op_chmod,
	.chown = op_chown,
	.statfs = op_statfs,
	.unlink = op_unlink,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.link = op_link,
	.symlink = op_symlink,
};

const struct fuse_operations *mnt_ops(void)
{
	return &ops;
}
