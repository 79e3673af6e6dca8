/*
 * mount-folder.c: the mount's folder directories: mkdir and rmdir at an
 * account's root and of cur/ new/ tmp/, and rename() of a folder's
 * directory. mount-ops.c has the operations as a whole (and takes the tree
 * lock, exclusive, before calling these); mount-private.h the locking.
 * Every change to the index is one write transaction that commits before
 * the operation returns.
 *
 *   mkdir .NAME        creates folder NAME (engine/mailops.h). Its cur/ new/
 *                      tmp/ then do not exist until mkdir makes them, for
 *                      Dovecot's CREATE makes them itself and fails on
 *                      EEXIST: such "fresh" folders are kept per account
 *                      (macct.fresh), in memory, for this session only.
 *   mkdir OTHER        a name at an account's root that is no folder
 *                      (Dovecot's DOVECOT-TRASHED): a directory in memory.
 *   rmdir .NAME        deletes the folder if nothing is in it (messages,
 *                      control files, tmp files), else ENOTEMPTY.
 *   rmdir cur|new|tmp  a no-op when empty, so that `rm -r` of a folder
 *                      works (they always exist); INBOX's answer EBUSY.
 *   rename .A .B       renames folder A (alone: .A.SUB is a directory of
 *                      its own). Renamed to a name that is no folder, the
 *                      folder is deleted with everything in it, and an
 *                      empty directory in memory stands in its place until
 *                      it is removed (Dovecot's way of deleting a mailbox).
 */
#include "mount-private.h"

#include "engine/ctlfile.h"
#include "engine/errors.h"
#include "engine/mailops.h"
#include "engine/message.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fresh folders ---- */

static struct mfresh *fresh_find(struct macct *a, uint32_t fid)
{
	for (size_t i = 0; i < a->nfresh; i++)
		if (a->fresh[i].fid == fid)
			return &a->fresh[i];
	return NULL;
}

/* 1 if cur/ new/ or tmp/ (sub) of folder fid exists. */
int mnt_sub_exists(struct macct *a, uint32_t fid, int sub)
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

/* ---- the index changes ---- */

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

/* ---- mkdir ---- */

int mnt_do_mkdir(struct mnt *m, const char *path, mode_t mode)
{
	struct mres r;
	struct mfile *f;
	int rc;

	if (mnt_hidden_name(path))
		return -EPERM; /* libfuse's names for unlinked open files */
	rc = mnt_resolve(m, path, &r);
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
	} else if (mnt_entry_file(m, &r, &f) == 0) {
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
	mnt_res_free(&r);
	return rc;
}

/* ---- rmdir ---- */

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

int mnt_do_rmdir(struct mnt *m, const char *path)
{
	struct mres r;
	struct mfile *f;
	int rc, busy;

	rc = mnt_resolve(m, path, &r);
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
			rc = mnt_errno(
			    coffer_index_update(coffer_store_index(m->st), delete_folder_txn, &fa));
		if (rc == 0)
			mnt_touch(r.a);
	} else if (r.p.kind == COFFER_MP_ENTRY) {
		rc = mnt_entry_file(m, &r, &f);
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
	mnt_res_free(&r);
	return rc;
}

/* ---- a folder's rename ---- */

int mnt_rename_folder(struct mnt *m, struct mres *src, struct mres *dst, unsigned flags)
{
	struct folder_args fa = { m, src->a, coffer_buf_str(&src->efolder), NULL, 0, 0 };
	struct mfile *f;
	int rc;

	if (dst->p.kind != COFFER_MP_ENTRY || dst->p.dir != NULL)
		return -EXDEV;
	if (dst->is_folder || mnt_entry_file(m, dst, &f) == 0)
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
			if (mnt_file_new(m, MF_XDIR, dst->a, dst->fid, dst->p.name,
			                 dst->p.name_n) == NULL)
				rc = COFFER_ENOMEM;
			m->gc_pending = 1;
		}
	}
	mnt_touch(src->a);
	return mnt_errno(rc);
}
