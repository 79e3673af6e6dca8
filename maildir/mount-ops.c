/*
 * mount-ops.c: the FUSE operations of the mount (libfuse3 high-level API,
 * path based). docs/design.md "The mount" is the contract; in short:
 *
 *   /ACCT/                  INBOX's Maildir root; .FOLDER/ for the others
 *   .../cur/ .../new/       messages, generated from the index per call
 *   .../tmp/                files being written: daemon memory (or a
 *                           staging blob), never plaintext on disk
 *   .../NAME                control files (engine/ctlfile), in memory while
 *                           used, written out as encrypted blobs
 *
 * Every operation takes the daemon's lock (mount-private.h), resolves the
 * path in one read transaction, and makes any change in one write
 * transaction that commits before the operation returns: a rename() or
 * link() out of tmp/ is durable when it returns (blob fsynced, then LMDB
 * commit), as is a flag rename, an unlink, a folder mkdir/rename/rmdir, and
 * an fsync() of a control file.
 *
 * open() answers ENOSYS so the kernel stops sending open/release for every
 * file (FUSE no_open): all state is therefore kept per path, not per handle.
 * flush is left unimplemented (ENOSYS) for the same reason. POSIX and flock
 * locks are handled by the kernel (no lock operations: FUSE's local locking).
 */
#define FUSE_USE_VERSION 35
#include "mount-private.h"

#include "engine/clock.h"
#include "engine/ctlfile.h"
#include "engine/errors.h"
#include "engine/events.h"
#include "engine/folder.h"
#include "engine/mailops.h"
#include "engine/message.h"

#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct res {
	struct coffer_mount_path p;
	struct mnt *m;
	struct macct *a;
	uint32_t fid;                 /* the mailbox directory's folder */
	struct coffer_buf folder;     /* its canonical name */
	int is_folder;                /* ENTRY at the account root that is a folder */
	uint32_t efid;
	struct coffer_buf efolder;
	int is_msg;                   /* FILE in cur/ or new/ that is a message */
	uint32_t uid;
	struct coffer_message_rec rec; /* name_box cleared */
	struct coffer_maildir_name mn;
	struct coffer_buf unique;
	int sub_missing;              /* SUB or FILE under a cur/new/tmp not made yet */
};

static struct mfresh *fresh_find(struct macct *a, uint32_t fid)
{
	for (size_t i = 0; i < a->nfresh; i++)
		if (a->fresh[i].fid == fid)
			return &a->fresh[i];
	return NULL;
}

/* 1 if cur/ new/ or tmp/ (sub) of folder fid exists. */
static int sub_exists(struct macct *a, uint32_t fid, int sub)
{
	struct mfresh *f = fresh_find(a, fid);

	return f == NULL || (f->mask & (1u << sub));
}

static int fresh_add(struct macct *a, uint32_t fid)
{
	struct mfresh *v = realloc(a->fresh, (a->nfresh + 1) * sizeof *v);

	if (v == NULL)
		return -ENOMEM;
	a->fresh = v;
	a->fresh[a->nfresh].fid = fid;
	a->fresh[a->nfresh++].mask = 0;
	return 0;
}

/* mkdir of a cur/ new/ tmp/ not made yet: 0, or -EEXIST. */
static int fresh_make(struct macct *a, uint32_t fid, int sub)
{
	struct mfresh *f = fresh_find(a, fid);

	if (f == NULL || (f->mask & (1u << sub)))
		return -EEXIST;
	f->mask |= 1u << sub;
	if (f->mask == 7u)
		*f = a->fresh[--a->nfresh];
	return 0;
}

static void res_free(struct res *r)
{
	coffer_buf_free(&r->folder);
	coffer_buf_free(&r->efolder);
	coffer_buf_free(&r->unique);
}

static int res_txn(struct coffer_txn *t, void *arg)
{
	struct res *r = arg;
	struct mnt *m = r->m;
	int rc;

	rc = mnt_account_check_txn(t, m, r->a);
	if (rc < 0)
		return rc;
	r->fid = COFFER_FOLDER_INBOX;
	if (r->p.dir) {
		rc = coffer_folder_resolve_txn(t, m->st, r->a->id, coffer_buf_str(&r->folder), 0, NULL,
		                               0, &r->fid, NULL);
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
static int resolve(struct mnt *m, const char *path, struct res *r)
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
	    !sub_exists(r->a, r->fid, r->p.sub))
		r->sub_missing = 1;
	return 0;
}

/* The tree lock (mount-private.h), exclusive or as shared decides. */
#define LOCKED_AS(shared, body)                                   \
	do {                                                      \
		struct mnt *m = coffer_mnt;                       \
		int rc_;                                          \
		if (shared)                                       \
			pthread_rwlock_rdlock(&m->lock);          \
		else                                              \
			pthread_rwlock_wrlock(&m->lock);          \
		rc_ = (body);                                     \
		pthread_rwlock_unlock(&m->lock);                  \
		return rc_;                                       \
	} while (0)
#define LOCKED(body) LOCKED_AS(0, body)

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
	case COFFER_MP_SUB:
		return 1;
	case COFFER_MP_FILE:
		return what == 'r' ? p.sub != COFFER_MP_TMP : 1;
	default:
		return 0;
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

/* What a mailbox-level ENTRY names, once resolved. */
static int entry_file(struct mnt *m, struct res *r, struct mfile **f_r)
{
	struct mfile *f = mnt_file_find(m, MF_CTL, r->a, r->fid, r->p.name, r->p.name_n);
	int rc;

	*f_r = NULL;
	if (f) {
		*f_r = f;
		return 0;
	}
	rc = mnt_ctl_get(m, r->a, r->fid, r->p.name, r->p.name_n, f_r);
	return rc == COFFER_ENOTFOUND ? -ENOENT : mnt_errno(rc);
}

static int do_getattr(struct mnt *m, const char *path, struct stat *st)
{
	struct res r;
	struct mfile *f;
	int rc;

	rc = resolve(m, path, &r);
	if (rc < 0)
		goto out;
	switch (r.p.kind) {
	case COFFER_MP_ROOT:
		stat_dir(m, st, m->started_at);
		break;
	case COFFER_MP_SUB:
		if (r.sub_missing) {
			rc = -ENOENT;
			break;
		}
		/* fall through */
	case COFFER_MP_ACCT:
		stat_dir(m, st, mnt_changed(r.a));
		break;
	case COFFER_MP_ENTRY:
		if (r.is_folder) {
			stat_dir(m, st, mnt_changed(r.a));
			break;
		}
		rc = entry_file(m, &r, &f);
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
				stat_file(m, st, f->linked ? f->lrec.size : f->size,
				          f->linked ? f->lrec.internal_date : f->mtime, f->mode);
		} else if (r.is_msg) {
			stat_file(m, st, r.rec.size, r.rec.internal_date, 0600);
		} else {
			rc = -ENOENT;
		}
		break;
	default:
		rc = -ENOENT;
	}
out:
	res_free(&r);
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

	/* in memory and persisted: listed from the index, here */
	if (f == NULL || f->type == MF_CTL)
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
	struct res r;
	int rc;

	rc = resolve(m, path, &r);
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
	case COFFER_MP_ROOT:
		rc = mnt_errno(coffer_account_list(m->st, fill_account, &c));
		break;
	case COFFER_MP_ENTRY:
		if (!r.is_folder) {
			struct mfile *f;

			rc = entry_file(m, &r, &f);
			if (rc == 0 && f->type != MF_XDIR)
				rc = -ENOTDIR;
			break; /* other directories are always empty */
		}
		c.fid = r.efid;
		/* fall through */
	case COFFER_MP_ACCT:
		if (sub_exists(r.a, c.fid, COFFER_MP_CUR))
			filler(buf, "cur", NULL, 0, 0);
		if (sub_exists(r.a, c.fid, COFFER_MP_NEW))
			filler(buf, "new", NULL, 0, 0);
		if (sub_exists(r.a, c.fid, COFFER_MP_TMP))
			filler(buf, "tmp", NULL, 0, 0);
		if (r.p.kind == COFFER_MP_ACCT)
			rc = mnt_errno(coffer_folder_list(r.a->mb, fill_folder, &c));
		if (rc == 0)
			rc = mnt_errno(coffer_index_view(coffer_store_index(m->st), ctl_list_txn, &c));
		for (int i = 0; rc == 0 && i < MNT_HASH; i++)
			for (struct mfile *f = m->files[i]; f; f = f->next)
				if (f->type != MF_TMP && f->a == r.a && f->fid == c.fid &&
				    (f->type == MF_XDIR || !f->persisted))
					filler(buf, f->name, NULL, 0, 0);
		break;
	case COFFER_MP_SUB:
		if (r.p.sub == COFFER_MP_TMP) {
			for (int i = 0; i < MNT_HASH; i++)
				for (struct mfile *f = m->files[i]; f; f = f->next)
					if (f->type == MF_TMP && f->a == r.a && f->fid == r.fid)
						filler(buf, f->name, NULL, 0, 0);
		} else {
			rc = mnt_errno(coffer_message_list(r.a->mb, r.fid, fill_message, &c));
		}
		break;
	default:
		rc = -ENOTDIR;
	}
out:
	if (rc < 0)
		mnt_log("readdir", path, rc);
	res_free(&r);
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
	struct res r;
	struct mfile *f = NULL;
	int rc;

	if (!S_ISREG(mode) && (mode & S_IFMT) != 0)
		return -EPERM;
	if (mode & (S_ISUID | S_ISGID | S_ISVTX))
		return -EPERM;
	rc = resolve(m, path, &r);
	if (rc < 0)
		goto out;
	if (r.p.kind == COFFER_MP_FILE && r.p.sub == COFFER_MP_TMP) {
		if (mnt_file_find(m, MF_TMP, r.a, r.fid, r.p.name, r.p.name_n)) {
			rc = -EEXIST;
		} else if ((f = mnt_file_new(m, MF_TMP, r.a, r.fid, r.p.name, r.p.name_n)) == NULL) {
			rc = -ENOMEM;
		}
	} else if (r.p.kind == COFFER_MP_ENTRY) {
		if (r.is_folder) {
			rc = -EEXIST;
		} else {
			rc = entry_file(m, &r, &f);
			if (rc == 0)
				rc = -EEXIST;
			else if (rc == -ENOENT &&
			         (f = mnt_file_new(m, MF_CTL, r.a, r.fid, r.p.name, r.p.name_n)) == NULL)
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
	res_free(&r);
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

/* No per-open state: ENOSYS makes the kernel stop sending open and release
 * (FUSE_CAP_NO_OPEN_SUPPORT); it then keeps its page cache across opens. */
static int op_open(const char *path, struct fuse_file_info *fi)
{
	return -ENOSYS;
}

/* The in-memory file a FILE in tmp/ or an ENTRY control file names. */
static int data_file(struct mnt *m, struct res *r, struct mfile **f_r)
{
	*f_r = NULL;
	if (r->p.kind == COFFER_MP_FILE && r->p.sub == COFFER_MP_TMP) {
		*f_r = mnt_file_find(m, MF_TMP, r->a, r->fid, r->p.name, r->p.name_n);
		return *f_r ? 0 : -ENOENT;
	}
	if (r->p.kind == COFFER_MP_ENTRY && !r->is_folder) {
		int rc = entry_file(m, r, f_r);

		if (rc == 0 && (*f_r)->type == MF_XDIR)
			rc = -EISDIR;
		return rc;
	}
	return r->p.kind == COFFER_MP_FILE ? -ENOENT : -EISDIR;
}

static int do_read(struct mnt *m, const char *path, char *buf, size_t size, off_t off)
{
	struct res r;
	struct mfile *f;
	size_t got = 0;
	int rc;

	if (off < 0)
		return -EINVAL;
	rc = resolve(m, path, &r);
	if (rc < 0)
		goto out;
	if (r.p.kind == COFFER_MP_FILE && r.p.sub != COFFER_MP_TMP) {
		if (!r.is_msg)
			rc = -ENOENT;
		else
			rc = mnt_errno(mnt_msg_read(m, r.a, r.fid, r.uid, &r.rec, buf, size,
			                            (uint64_t)off, &got));
	} else {
		rc = data_file(m, &r, &f);
		if (rc == 0)
			rc = mnt_errno(mnt_file_read(m, f, buf, size, (uint64_t)off, &got));
	}
out:
	if (rc < 0)
		mnt_log("read", path, rc);
	res_free(&r);
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
 * room for the whole file, with a margin for the index and the envelope.
 */
#define ROOM_MARGIN (4u << 20)

static int room_for(struct mnt *m, uint64_t bytes)
{
	struct statvfs sv;

	if (statvfs(coffer_store_path(m->st), &sv) < 0)
		return 0; /* cannot tell: the write will report what happens */
	if ((uint64_t)sv.f_bavail * sv.f_frsize < bytes + bytes / 16 + ROOM_MARGIN)
		return -ENOSPC;
	return 0;
}

static int do_write(struct mnt *m, const char *path, const char *buf, size_t size, off_t off)
{
	struct res r;
	struct mfile *f;
	int rc;

	if (off < 0)
		return -EINVAL;
	rc = resolve(m, path, &r);
	if (rc == 0 && r.p.kind == COFFER_MP_FILE && r.p.sub != COFFER_MP_TMP)
		rc = r.is_msg ? -EPERM : -ENOENT; /* messages never change */
	if (rc == 0)
		rc = data_file(m, &r, &f);
	if (rc == 0 && (uint64_t)off + size > f->size)
		rc = room_for(m, (uint64_t)off + size);
	if (rc == 0)
		rc = mnt_errno(mnt_file_write(m, f, buf, size, (uint64_t)off));
	if (rc < 0)
		mnt_log("write", path, rc);
	res_free(&r);
	return rc < 0 ? rc : (int)size;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	LOCKED(do_write(m, path, buf, size, off));
}

static int do_fsync(struct mnt *m, const char *path)
{
	struct res r;
	struct mfile *f;
	int rc;

	rc = resolve(m, path, &r);
	if (rc == 0 && r.p.kind == COFFER_MP_ENTRY && !r.is_folder &&
	    entry_file(m, &r, &f) == 0 && f->type == MF_CTL)
		rc = mnt_errno(mnt_ctl_persist(m, f));
	/* messages are durable since their rename; tmp files become durable
	 * in the rename that delivers them, which must have room for them */
	else if (rc == 0 && r.p.kind == COFFER_MP_FILE && r.p.sub == COFFER_MP_TMP &&
	         data_file(m, &r, &f) == 0)
		rc = room_for(m, f->size);
	if (rc < 0)
		mnt_log("fsync", path, rc);
	res_free(&r);
	return rc;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	LOCKED(do_fsync(m, path));
}

/* ---- attributes ---- */

struct msg_update {
	struct mnt *m;
	struct res *r;
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

static int do_utimens(struct mnt *m, const char *path, const struct timespec tv[2])
{
	struct res r;
	struct mfile *f;
	int rc;

	rc = resolve(m, path, &r);
	if (rc < 0)
		goto out;
	if (r.p.kind == COFFER_MP_FILE && r.p.sub != COFFER_MP_TMP) {
		if (!r.is_msg) {
			rc = -ENOENT;
		} else if (tv[1].tv_nsec != UTIME_OMIT) {
			struct msg_update u = { m, &r, ts_ns(&tv[1], r.rec.internal_date) };

			rc = mnt_errno(coffer_index_update(coffer_store_index(m->st), msg_update_txn, &u));
			mnt_touch(r.a);
		}
	} else if (r.p.kind == COFFER_MP_FILE || (r.p.kind == COFFER_MP_ENTRY && !r.is_folder)) {
		rc = data_file(m, &r, &f);
		if (rc == -EISDIR)
			rc = 0;
		else if (rc == 0 && f->linked)
			f->lrec.internal_date = ts_ns(&tv[1], f->lrec.internal_date);
		else if (rc == 0) {
			f->mtime = ts_ns(&tv[1], f->mtime);
			if (f->type == MF_CTL) {
				if (!f->dirty)
					f->dirty_since = mnt_now();
				f->dirty = 1;
			}
		}
	}
	/* directories: their times are generated */
out:
	if (rc < 0)
		mnt_log("utimens", path, rc);
	res_free(&r);
	return rc;
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	LOCKED(do_utimens(m, path, tv));
}

static int do_truncate(struct mnt *m, const char *path, off_t size)
{
	struct res r;
	struct mfile *f;
	int rc;

	if (size < 0)
		return -EINVAL;
	rc = resolve(m, path, &r);
	if (rc == 0 && r.p.kind == COFFER_MP_FILE && r.p.sub != COFFER_MP_TMP)
		rc = !r.is_msg ? -ENOENT : (uint64_t)size == r.rec.size ? 0 : -EPERM;
	else if (rc == 0 && (rc = data_file(m, &r, &f)) == 0)
		rc = mnt_errno(mnt_file_truncate(m, f, (uint64_t)size));
	if (rc < 0)
		mnt_log("truncate", path, rc);
	res_free(&r);
	return rc;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	LOCKED(do_truncate(m, path, size));
}

static int do_chmod(struct mnt *m, const char *path, mode_t mode)
{
	struct res r;
	struct mfile *f;
	int rc;

	if (mode & (S_ISUID | S_ISGID))
		return -EPERM;
	rc = resolve(m, path, &r);
	if (rc == 0 && (r.p.kind == COFFER_MP_ENTRY || (r.p.kind == COFFER_MP_FILE &&
	                                                r.p.sub == COFFER_MP_TMP)) &&
	    data_file(m, &r, &f) == 0) {
		f->mode = mode & 0700 ? mode & 0700 : 0600;
		if (f->type == MF_CTL) {
			if (!f->dirty)
				f->dirty_since = mnt_now();
			f->dirty = 1;
		}
	}
	res_free(&r);
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
	struct res *r;
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

static int do_unlink(struct mnt *m, const char *path)
{
	struct res r;
	struct mfile *f;
	int rc;

	rc = resolve(m, path, &r);
	if (rc < 0)
		goto out;
	if (r.p.kind == COFFER_MP_FILE && r.p.sub != COFFER_MP_TMP) {
		struct expunge_args e = { m, &r };

		if (!r.is_msg) {
			rc = -ENOENT;
			goto out;
		}
		rc = mnt_errno(coffer_index_update(coffer_store_index(m->st), expunge_txn, &e));
		if (rc == 0) {
			m->gc_pending = 1;
			mnt_touch(r.a);
		}
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
	res_free(&r);
	return rc;
}

static int op_unlink(const char *path)
{
	LOCKED(do_unlink(m, path));
}

/* ---- directories ---- */

struct folder_args {
	struct mnt *m;
	struct macct *a;
	const char *from, *to;
	uint32_t fid;
	uint64_t count;
};

static int mkdir_txn(struct coffer_txn *t, void *arg)
{
	struct folder_args *f = arg;

	return coffer_mailops_folder_create_txn(t, f->m->st, f->a->id, f->to, f->a->secret,
	                                        mnt_now(), &f->fid);
}

static int rename_folder_txn(struct coffer_txn *t, void *arg)
{
	struct folder_args *f = arg;

	return coffer_mailops_folder_rename_txn(t, f->m->st, f->a->id, f->from, f->to, 0,
	                                        f->a->secret);
}

static int delete_folder_txn(struct coffer_txn *t, void *arg)
{
	struct folder_args *f = arg;

	return coffer_mailops_folder_delete_txn(t, f->m->st, f->a->id, f->from, mnt_now(),
	                                        &f->count);
}

static void drop_folder_files(struct mnt *m, struct macct *a, uint32_t fid)
{
	for (int i = 0; i < MNT_HASH; i++) {
		struct mfile *f = m->files[i];

		while (f) {
			struct mfile *next = f->next;

			if (f->a == a && f->fid == fid)
				mnt_file_free(m, f);
			f = next;
		}
	}
}

static int do_mkdir(struct mnt *m, const char *path, mode_t mode)
{
	struct res r;
	struct mfile *f;
	int rc;

	rc = resolve(m, path, &r);
	if (rc < 0)
		goto out;
	if (r.p.kind == COFFER_MP_SUB) {
		rc = fresh_make(r.a, r.fid, r.p.sub);
		goto out;
	}
	if (r.p.kind != COFFER_MP_ENTRY) {
		rc = r.p.kind == COFFER_MP_FILE ? -EPERM : -EEXIST;
		goto out;
	}
	if (r.is_folder) {
		rc = -EEXIST;
	} else if (entry_file(m, &r, &f) == 0) {
		rc = -EEXIST;
	} else if (r.efolder.len) {
		struct folder_args fa = { m, r.a, NULL, coffer_buf_str(&r.efolder), 0, 0 };

		rc = mnt_errno(coffer_index_update(coffer_store_index(m->st), mkdir_txn, &fa));
		if (rc == 0)
			rc = fresh_add(r.a, fa.fid);
		mnt_touch(r.a);
	} else if (r.p.dir == NULL) {
		/* not a folder: a directory kept in memory (Dovecot's trash) */
		f = mnt_file_new(m, MF_XDIR, r.a, r.fid, r.p.name, r.p.name_n);
		rc = f ? 0 : -ENOMEM;
	} else {
		rc = -EPERM;
	}
out:
	if (rc < 0)
		mnt_log("mkdir", path, rc);
	res_free(&r);
	return rc;
}

static int op_mkdir(const char *path, mode_t mode)
{
	LOCKED(do_mkdir(m, path, mode));
}

struct count_args {
	int sub;
	uint64_t n;
};

static int count_msg(const struct coffer_message *msg, void *arg)
{
	struct count_args *c = arg;

	if (c->sub < 0 || msg->rec.is_new == (c->sub == COFFER_MP_NEW))
		c->n++;
	return 0;
}

static int count_ctl(const char *name, size_t n, const struct coffer_ctlfile_rec *rec, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

struct ctl_count_args {
	struct macct *a;
	uint32_t fid;
	uint64_t n;
};

static int ctl_count_txn(struct coffer_txn *t, void *arg)
{
	struct ctl_count_args *c = arg;

	return coffer_ctlfile_list_txn(t, c->a->id, c->fid, c->a->secret, count_ctl, &c->n);
}

/* Whether a folder (or one of its cur/new/tmp) holds anything. */
static int folder_busy(struct mnt *m, struct macct *a, uint32_t fid, int sub, int *busy_r)
{
	struct count_args c = { sub, 0 };
	struct ctl_count_args cc = { a, fid, 0 };
	int rc = 0;

	*busy_r = 0;
	for (int i = 0; i < MNT_HASH; i++)
		for (struct mfile *f = m->files[i]; f; f = f->next)
			if (f->a == a && f->fid == fid &&
			    (sub < 0 || (sub == COFFER_MP_TMP && f->type == MF_TMP)))
				*busy_r = 1;
	if (sub == COFFER_MP_TMP || *busy_r)
		return 0;
	rc = coffer_message_list(a->mb, fid, count_msg, &c);
	if (rc == 0 && sub < 0)
		rc = coffer_index_view(coffer_store_index(m->st), ctl_count_txn, &cc);
	*busy_r = c.n + cc.n > 0;
	return rc;
}

static int do_rmdir(struct mnt *m, const char *path)
{
	struct res r;
	struct mfile *f;
	int rc, busy;

	rc = resolve(m, path, &r);
	if (rc < 0)
		goto out;
	if (r.p.kind == COFFER_MP_SUB) {
		/* cur/ new/ tmp/ always exist; removing an empty one is a no-op so
		 * that `rm -r` of a folder works */
		rc = mnt_errno(folder_busy(m, r.a, r.fid, r.p.sub, &busy));
		if (rc == 0 && busy)
			rc = -ENOTEMPTY;
		if (rc == 0 && r.p.dir == NULL)
			rc = -EBUSY;
	} else if (r.p.kind == COFFER_MP_ENTRY && r.is_folder) {
		struct folder_args fa = { m, r.a, coffer_buf_str(&r.efolder), NULL, 0, 0 };

		rc = mnt_errno(folder_busy(m, r.a, r.efid, -1, &busy));
		if (rc == 0 && busy)
			rc = -ENOTEMPTY;
		if (rc == 0)
			rc = mnt_errno(coffer_index_update(coffer_store_index(m->st), delete_folder_txn,
			                                   &fa));
		if (rc == 0)
			mnt_touch(r.a);
	} else if (r.p.kind == COFFER_MP_ENTRY) {
		rc = entry_file(m, &r, &f);
		if (rc == 0 && f->type != MF_XDIR)
			rc = -ENOTDIR;
		if (rc == 0)
			mnt_file_free(m, f);
	} else {
		rc = r.p.kind == COFFER_MP_FILE ? -ENOTDIR : -EBUSY;
	}
out:
	if (rc < 0)
		mnt_log("rmdir", path, rc);
	res_free(&r);
	return rc;
}

static int op_rmdir(const char *path)
{
	LOCKED(do_rmdir(m, path));
}

/* ---- rename and link: the Maildir write paths ---- */

struct deliver_args {
	struct mnt *m;
	struct res *dst;
	struct mfile *src;
	struct coffer_message_new nm;
	uint32_t fid, uid;
};

/*
 * The message, and (for arrivals in new/) its delivery event, in one
 * transaction: the event exists exactly when the message does, as with
 * `coffer deliver`. Flag-carrying names in cur/ are an IMAP APPEND or COPY
 * of a message the user already has, not a delivery.
 */
static int deliver_txn(struct coffer_txn *t, void *arg)
{
	struct deliver_args *d = arg;
	int rc;

	if (d->src->linked) {
		struct coffer_message_rec rec = d->src->lrec;

		rec.flags = (uint8_t)d->dst->mn.flags;
		rec.keywords = d->dst->mn.keywords;
		rec.is_new = d->dst->p.sub == COFFER_MP_NEW;
		rec.delivered_at = d->nm.delivered_at;
		d->fid = d->dst->fid;
		d->nm.size = rec.size;
		rc = coffer_mailops_message_link_blob_txn(t, d->m->st, d->dst->a->id, d->dst->fid,
		                                          &rec, d->nm.unique, d->nm.unique_len,
		                                          d->dst->a->secret, &d->uid);
	} else {
		rc = coffer_message_add_txn(t, d->m->st, d->dst->a->name, &d->nm, d->dst->a->secret,
		                            &d->fid, &d->uid);
	}
	if (rc == 0 && d->nm.is_new)
		rc = coffer_events_record_delivery_txn(t, d->dst->a->id, d->dst->a->secret->pk,
		                                       d->nm.delivered_at, d->nm.size, d->nm.folder,
		                                       strlen(d->nm.folder));
	return rc;
}

/* A tmp file becomes a message in dst (rename or link out of tmp/). On
 * return 0 the message is durable; the tmp file then refers to it. */
static int deliver_tmp(struct mnt *m, struct mfile *f, struct res *dst)
{
	struct deliver_args d;
	struct coffer_buf path = COFFER_BUF_INIT;
	uint64_t plain = 0;
	int rc, made = 0;

	if (coffer_maildir_name_parse(dst->p.name, dst->p.name_n, &dst->mn) < 0)
		return -EINVAL;
	if (dst->p.sub == COFFER_MP_NEW ? 0 : !dst->mn.has_info)
		return -EINVAL; /* cur/ names carry ":2," */
	memset(&d, 0, sizeof d);
	d.m = m;
	d.dst = dst;
	d.src = f;
	d.nm.acct = dst->a->id;
	d.nm.folder = coffer_buf_str(&dst->folder);
	d.nm.internal_date = f->mtime;
	d.nm.delivered_at = mnt_now();
	d.nm.flags = (uint8_t)dst->mn.flags;
	d.nm.keywords = dst->mn.keywords;
	d.nm.is_new = dst->p.sub == COFFER_MP_NEW;
	d.nm.unique = dst->p.name;
	d.nm.unique_len = dst->mn.unique_len;
	if (!f->linked) {
		if (f->spilled) {
			rc = coffer_blob_writer_finish(f->w, &plain, &d.nm.stored_size);
			coffer_blob_writer_free(&f->w);
			if (rc == 0)
				rc = coffer_ctlfile_blobfile_sync(f->sfd, coffer_buf_str(&f->spath));
			close(f->sfd);
			f->sfd = -1;
			if (rc < 0) {
				unlink(coffer_buf_str(&f->spath));
				f->spilled = 0;
				return rc;
			}
			memcpy(d.nm.blob_id, f->sblob, COFFER_ID_BYTES);
			coffer_buf_reset(&path);
			coffer_buf_append(&path, f->spath.data, f->spath.len);
			d.nm.size = plain;
		} else {
			rc = coffer_ctlfile_blob_write(m->st, dst->a->id, COFFER_BLOB_MESSAGE,
			                               dst->a->secret, f->data.data, f->data.len,
			                               d.nm.blob_id, &d.nm.stored_size);
			if (rc < 0)
				return rc;
			d.nm.size = f->data.len;
			coffer_store_blob_path(m->st, dst->a->id, d.nm.blob_id, &path);
		}
		made = 1;
	}
	rc = coffer_index_update(coffer_store_index(m->st), deliver_txn, &d);
	if (rc < 0) {
		if (made)
			unlink(coffer_buf_str(&path));
		if (f->spilled) {
			/* the staging blob is gone: the tmp file cannot be delivered again */
			f->spilled = 0;
			f->size = 0;
		}
		goto out;
	}
	/* the tmp file now is that message (for a later unlink or link) */
	if (!f->linked) {
		memset(&f->lrec, 0, sizeof f->lrec);
		memcpy(f->lrec.blob_id, d.nm.blob_id, COFFER_ID_BYTES);
		f->lrec.size = d.nm.size;
		f->lrec.internal_date = d.nm.internal_date;
		f->lrec.delivered_at = d.nm.delivered_at;
		f->linked = 1;
		f->spilled = 0;
		coffer_wipe(f->data.data, f->data.cap);
		coffer_buf_free(&f->data);
	}
	mnt_touch(dst->a);
out:
	coffer_buf_free(&path);
	return rc;
}

struct place_args {
	struct mnt *m;
	struct res *src, *dst;
	int keep;
	uint32_t uid;
};

static int place_txn(struct coffer_txn *t, void *arg)
{
	struct place_args *p = arg;
	struct coffer_mailops_place pl;

	memset(&pl, 0, sizeof pl);
	pl.src_fid = p->src->fid;
	pl.uid = p->src->uid;
	pl.dst_fid = p->dst->fid;
	pl.old_unique = coffer_buf_str(&p->src->unique);
	pl.old_n = p->src->unique.len;
	pl.unique = p->dst->p.name;
	pl.unique_n = p->dst->mn.unique_len;
	pl.flags = (uint8_t)p->dst->mn.flags;
	pl.keywords = p->dst->mn.keywords;
	pl.is_new = p->dst->p.sub == COFFER_MP_NEW;
	pl.keep_src = p->keep;
	pl.now = mnt_now();
	return coffer_mailops_message_place_txn(t, p->m->st, p->src->a->id, &pl, p->src->a->secret,
	                                        &p->uid);
}

static int place_msg(struct mnt *m, struct res *src, struct res *dst, int keep)
{
	struct place_args p = { m, src, dst, keep, 0 };
	int rc;

	if (coffer_maildir_name_parse(dst->p.name, dst->p.name_n, &dst->mn) < 0)
		return -EINVAL;
	if (dst->p.sub == COFFER_MP_CUR && !dst->mn.has_info)
		return -EINVAL;
	rc = coffer_index_update(coffer_store_index(m->st), place_txn, &p);
	if (rc == 0)
		mnt_touch(src->a);
	return mnt_errno(rc);
}

struct ctl_rename_args {
	struct mnt *m;
	struct mfile *f;
	struct res *dst;
};

static int ctl_rename_txn(struct coffer_txn *t, void *arg)
{
	struct ctl_rename_args *c = arg;
	int rc;

	rc = coffer_ctlfile_rename_txn(t, c->m->st, c->f->a->id, c->f->fid, c->f->name,
	                               c->f->name_n, c->dst->fid, c->dst->p.name, c->dst->p.name_n,
	                               c->f->a->secret, mnt_now());
	if (rc == 0)
		rc = mnt_keywords_sync_txn(t, c->f->a, c->dst->fid, c->dst->p.name, c->dst->p.name_n,
		                           &c->f->data);
	return rc;
}

static int rename_ctl(struct mnt *m, struct mfile *f, struct res *dst, int keep)
{
	struct mfile *old = NULL, *copy;
	int rc;

	if (entry_file(m, dst, &old) == 0 && old->type == MF_XDIR)
		return -EISDIR;
	if (keep) {
		/* link(): a copy under the new name (dotlocks); never replaces */
		if (old)
			return -EEXIST;
		rc = mnt_ctl_load(m, f);
		if (rc < 0)
			return mnt_errno(rc);
		copy = mnt_file_new(m, MF_CTL, dst->a, dst->fid, dst->p.name, dst->p.name_n);
		if (copy == NULL)
			return -ENOMEM;
		if (coffer_buf_append(&copy->data, f->data.data, f->data.len) < 0) {
			mnt_file_free(m, copy);
			return -ENOMEM;
		}
		copy->size = f->data.len;
		copy->mtime = f->mtime;
		copy->mode = f->mode;
		copy->dirty = 1;
		copy->dirty_since = mnt_now();
		return 0;
	}
	/* rename(): the source's content, durable under the new name, in one
	 * transaction that also drops the replaced file */
	if (!f->persisted || f->dirty) {
		f->dirty = 1;
		rc = mnt_ctl_persist(m, f);
		if (rc < 0)
			return mnt_errno(rc);
	}
	{
		struct ctl_rename_args c = { m, f, dst };

		if (dst->p.name_n == 16 && memcmp(dst->p.name, "dovecot-keywords", 16) == 0) {
			rc = mnt_ctl_load(m, f);
			if (rc < 0)
				return mnt_errno(rc);
		}

		rc = coffer_index_update(coffer_store_index(m->st), ctl_rename_txn, &c);
		if (rc < 0)
			return mnt_errno(rc);
	}
	m->gc_pending = 1;
	if (old)
		mnt_file_free(m, old);
	return mnt_errno(mnt_file_rename(m, f, dst->fid, dst->p.name, dst->p.name_n));
}

static int rename_folder(struct mnt *m, struct res *src, struct res *dst, unsigned flags)
{
	struct folder_args fa = { m, src->a, coffer_buf_str(&src->efolder), NULL, 0, 0 };
	struct mfile *f;
	int rc;

	if (dst->p.kind != COFFER_MP_ENTRY || dst->p.dir != NULL)
		return -EXDEV;
	if (dst->is_folder || entry_file(m, dst, &f) == 0)
		return (flags & RENAME_NOREPLACE) ? -EEXIST : -ENOTEMPTY;
	if (dst->efolder.len) {
		fa.to = coffer_buf_str(&dst->efolder);
		rc = coffer_index_update(coffer_store_index(m->st), rename_folder_txn, &fa);
	} else {
		/* renamed to a name that is no folder (Dovecot's DOVECOT-TRASHED,
		 * on its way to removal): the folder is deleted now, and an empty
		 * directory stands in its place until it is removed */
		rc = coffer_index_update(coffer_store_index(m->st), delete_folder_txn, &fa);
		if (rc == 0) {
			drop_folder_files(m, src->a, src->efid);
			if (mnt_file_new(m, MF_XDIR, dst->a, dst->fid, dst->p.name, dst->p.name_n) ==
			    NULL)
				rc = COFFER_ENOMEM;
			m->gc_pending = 1;
		}
	}
	mnt_touch(src->a);
	return mnt_errno(rc);
}

static int do_rename(struct mnt *m, const char *from, const char *to, unsigned flags, int keep)
{
	struct res src, dst;
	struct mfile *f;
	int rc;

	memset(&dst, 0, sizeof dst);
	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	rc = resolve(m, from, &src);
	if (rc < 0)
		goto out;
	rc = resolve(m, to, &dst);
	if (rc < 0)
		goto out;
	if (src.a != dst.a) {
		rc = -EXDEV;
		goto out;
	}
	if (src.p.kind == COFFER_MP_FILE && src.p.sub != COFFER_MP_TMP) {
		/* a message: flags (same folder), a move, or a link */
		if (!src.is_msg) {
			rc = -ENOENT;
		} else if (dst.p.kind == COFFER_MP_FILE && dst.p.sub != COFFER_MP_TMP) {
			if (strcmp(from, to) == 0)
				rc = keep ? -EEXIST : 0;
			else if (dst.is_msg)
				rc = -EEXIST;
			else
				rc = place_msg(m, &src, &dst, keep);
		} else if (dst.p.kind == COFFER_MP_FILE && keep) {
			/* link into tmp/: Dovecot's copy by hard link */
			if (mnt_file_find(m, MF_TMP, dst.a, dst.fid, dst.p.name, dst.p.name_n)) {
				rc = -EEXIST;
			} else if ((f = mnt_file_new(m, MF_TMP, dst.a, dst.fid, dst.p.name,
			                             dst.p.name_n)) == NULL) {
				rc = -ENOMEM;
			} else {
				f->linked = 1;
				f->lrec = src.rec;
			}
		} else {
			rc = -EPERM;
		}
	} else if (src.p.kind == COFFER_MP_FILE) {
		f = mnt_file_find(m, MF_TMP, src.a, src.fid, src.p.name, src.p.name_n);
		if (f == NULL) {
			rc = -ENOENT;
		} else if (dst.p.kind == COFFER_MP_FILE && dst.p.sub != COFFER_MP_TMP) {
			if (dst.is_msg) {
				rc = -EEXIST;
			} else {
				/* the slow part (encrypt, fsync, commit) runs without
				 * the tree lock: the tmp file is ours meanwhile, out of
				 * the table; a duplicate name fails in the commit */
				mnt_file_unhash(m, f);
				pthread_rwlock_unlock(&m->lock);
				rc = mnt_errno(deliver_tmp(m, f, &dst));
				pthread_rwlock_wrlock(&m->lock);
				if ((rc == 0 && !keep) || mnt_file_rehash(m, f) < 0)
					mnt_file_free(m, f);
			}
		} else if (dst.p.kind == COFFER_MP_FILE) {
			struct mfile *old = mnt_file_find(m, MF_TMP, dst.a, dst.fid, dst.p.name,
			                                  dst.p.name_n);

			if (old == f) {
				rc = keep ? -EEXIST : 0;
			} else if (keep) {
				rc = -EPERM; /* a second name in tmp/: nobody needs it */
			} else {
				if (old)
					mnt_file_free(m, old);
				rc = mnt_errno(mnt_file_rename(m, f, dst.fid, dst.p.name, dst.p.name_n));
			}
		} else {
			rc = -EPERM;
		}
	} else if (src.p.kind == COFFER_MP_ENTRY && src.is_folder) {
		rc = keep ? -EPERM : rename_folder(m, &src, &dst, flags);
	} else if (src.p.kind == COFFER_MP_ENTRY) {
		rc = entry_file(m, &src, &f);
		if (rc < 0)
			goto out;
		if (dst.p.kind != COFFER_MP_ENTRY || dst.is_folder) {
			rc = dst.is_folder ? -EISDIR : -EPERM;
		} else if (f->type == MF_XDIR) {
			struct mfile *old = NULL;

			if (keep)
				rc = -EPERM;
			else if (entry_file(m, &dst, &old) == 0)
				rc = -EEXIST;
			else
				rc = mnt_errno(mnt_file_rename(m, f, dst.fid, dst.p.name, dst.p.name_n));
		} else {
			struct mfile *old = NULL;

			if ((flags & RENAME_NOREPLACE) && entry_file(m, &dst, &old) == 0)
				rc = -EEXIST;
			else if (strcmp(from, to) == 0)
				rc = keep ? -EEXIST : 0;
			else
				rc = rename_ctl(m, f, &dst, keep);
		}
	} else {
		rc = -EPERM;
	}
out:
	if (rc < 0)
		mnt_log(keep ? "link" : "rename", from, rc);
	res_free(&src);
	res_free(&dst);
	return rc;
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	LOCKED(do_rename(m, from, to, flags, 0));
}

static int op_link(const char *from, const char *to)
{
	LOCKED(do_rename(m, from, to, 0, 1));
}

static int op_symlink(const char *target, const char *path)
{
	return -EPERM;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* O_TRUNC must reach setattr: with atomic_o_trunc it would travel in
	 * open(), which answers ENOSYS */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* an unlinked open file must not be renamed to .fuse_hidden* inside
	 * cur/ (that would be a message rename) */
	cfg->hard_remove = 1;
	cfg->nullpath_ok = 0;
	cfg->use_ino = 0;
	return coffer_mnt;
}

static const struct fuse_operations ops = {
	.init = op_init,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.mknod = op_mknod,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.fsync = op_fsync,
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
