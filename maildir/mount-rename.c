/*
 * mount-rename.c: rename() and link() of files in the mount, the Maildir
 * write paths. mount-ops.c has the operations as a whole (and takes the
 * tree lock, exclusive, before calling mnt_do_rename); mount-private.h the
 * locking. A folder's rename is in mount-folder.c.
 *
 *   tmp/X to new/ or cur/   delivery: the tmp file's content (daemon memory,
 *                           or its staging blob) becomes an encrypted blob;
 *                           then the message record and, for new/, its
 *                           delivery event commit in one transaction:
 *                           visible, and safe from the daemon's death, when
 *                           rename() returns; durable across a system crash
 *                           once the directory is fsynced, or within a
 *                           second (mnt_commit_lazy: one syncfs covers the
 *                           blob and the commit). link() does the same and
 *                           keeps the tmp file, which then refers to the
 *                           message. The slow part (encrypt, write, commit)
 *                           runs without the tree lock: the tmp file is
 *                           taken out of the table meanwhile, and a
 *                           duplicate name fails in the commit.
 *   cur|new to cur|new      a flag change, a move to another folder, or
 *                           (link) a copy: one transaction
 *                           (coffer_mailops_message_place_txn), same blob.
 *   cur|new to tmp/ (link)  Dovecot's copy by hard link: a tmp file that
 *                           refers to the message's blob.
 *   tmp/X to tmp/Y          renames the file in memory.
 *   control files           rename(): made durable, then renamed in one
 *                           transaction that also drops the replaced file;
 *                           link(): a copy in memory under the new name
 *                           (dotlocks), never replacing anything.
 *   X to .fuse_hidden*      mount-ll.c hiding a file unlinked or renamed
 *                           over while the kernel holds it: mount-hidden.c.
 *
 * Across accounts: EXDEV. RENAME_EXCHANGE: EINVAL.
 */
#include "mount-private.h"

#include "engine/ctlfile.h"
#include "engine/events.h"
#include "engine/index.h"
#include "engine/mailops.h"
#include "engine/message.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct deliver_args {
	struct mnt *m;
	struct mres *dst;
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
		                                       d->dst->a->secret, NULL, d->nm.delivered_at,
		                                       d->nm.size, d->nm.folder,
		                                       strlen(d->nm.folder));
	return rc;
}

/* A tmp file becomes a message in dst (rename or link out of tmp/). On
 * return 0 the message is durable; the tmp file then refers to it. */
static int deliver_tmp(struct mnt *m, struct mfile *f, struct mres *dst)
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
				rc = coffer_ctlfile_blobfile_sync(m->st, f->sfd,
				                                  coffer_buf_str(&f->spath), 0);
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
			if (!mnt_seal_take(m, f, dst->a, d.nm.blob_id, &d.nm.stored_size)) {
				rc = coffer_ctlfile_blob_write(m->st, dst->a->id,
				                               COFFER_BLOB_MESSAGE, dst->a->secret,
				                               f->data.data, f->data.len,
				                               d.nm.blob_id, &d.nm.stored_size);
				if (rc < 0)
					return rc;
			}
			d.nm.size = f->data.len;
			coffer_store_blob_path(m->st, dst->a->id, d.nm.blob_id, &path);
		}
		made = 1;
	}
	rc = mnt_commit_lazy(m, deliver_txn, &d);
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
	if (made)
		mnt_pool_use(m, dst->a);
out:
	coffer_buf_free(&path);
	return rc;
}

struct place_args {
	struct mnt *m;
	struct mres *src, *dst;
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

static int place_msg(struct mnt *m, struct mres *src, struct mres *dst, int keep)
{
	struct place_args p = { m, src, dst, keep, 0 };
	int rc;

	if (coffer_maildir_name_parse(dst->p.name, dst->p.name_n, &dst->mn) < 0)
		return -EINVAL;
	if (dst->p.sub == COFFER_MP_CUR && !dst->mn.has_info)
		return -EINVAL;
	rc = mnt_commit_lazy(m, place_txn, &p);
	if (rc == 0)
		mnt_touch(src->a);
	return mnt_errno(rc);
}

struct ctl_rename_args {
	struct mnt *m;
	struct mfile *f;
	struct mres *dst;
};

static int ctl_rename_txn(struct coffer_txn *t, void *arg)
{
	struct ctl_rename_args *c = arg;
	int rc;

	rc = coffer_ctlfile_rename_txn(t, c->m->st, c->f->a->id, c->f->fid, c->f->name,
	                               c->f->name_n, c->dst->fid, c->dst->p.name, c->dst->p.name_n,
	                               c->f->a->secret, mnt_now());
	if (rc == 0)
		rc = mnt_keywords_sync_txn(t, c->f->a, c->dst->fid, c->dst->p.name,
		                           c->dst->p.name_n, &c->f->data);
	return rc;
}

static int rename_ctl(struct mnt *m, struct mfile *f, struct mres *dst, const char *to, int keep)
{
	struct mfile *old = NULL, *copy;
	struct mfile *tomb = mnt_file_find(m, MF_CTL, dst->a, dst->fid, dst->p.name, dst->p.name_n);
	int rc, entry = 0; /* the name still has an index entry (a tombstone's) */

	if (mnt_entry_file(m, dst, &old) == 0 && old->type == MF_XDIR)
		return -EISDIR;
	/* the name of a file unlinked while open (mount-hidden.c): whatever
	 * lands there replaces its index entry, as the transaction below, or
	 * the copy's write-out, does for any file */
	if (tomb && tomb->gone) {
		entry = tomb->persisted; /* 0 once a write-out deleted it */
		mnt_file_free(m, tomb);
	}
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
		/* the tombstone's index entry is now the copy's: its write-out
		 * replaces it, and an unlink before that deletes it (else the
		 * entry would bring the unlinked file's old content back) */
		copy->persisted = entry;
		/* one inode on a local file system: later writes to f reach the
		 * copy too (mfile.peer) */
		return mnt_errno(mnt_file_set_peer(m, f, copy, to));
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
	mnt_peer_moved(m, f, dst->fid, dst->p.name, dst->p.name_n, to, f->ino);
	return mnt_errno(mnt_file_rename(m, f, dst->fid, dst->p.name, dst->p.name_n));
}

int mnt_do_rename(struct mnt *m, const char *from, const char *to, unsigned flags, int keep)
{
	struct mres src, dst;
	struct mfile *f;
	int rc;

	memset(&dst, 0, sizeof dst);
	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	if (mnt_hidden_name(to))
		return keep ? -EPERM : mnt_hide(m, from, to); /* unlinked while open */
	if (mnt_hidden_name(from))
		return -EPERM;
	rc = mnt_resolve(m, from, &src);
	if (rc < 0)
		goto out;
	rc = mnt_resolve(m, to, &dst);
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
				rc = mnt_errno(
				    mnt_file_rename(m, f, dst.fid, dst.p.name, dst.p.name_n));
			}
		} else {
			rc = -EPERM;
		}
	} else if (src.p.kind == COFFER_MP_ENTRY && src.is_folder) {
		rc = keep ? -EPERM : mnt_rename_folder(m, &src, &dst, flags);
	} else if (src.p.kind == COFFER_MP_ENTRY) {
		rc = mnt_entry_file(m, &src, &f);
		if (rc < 0)
			goto out;
		if (dst.p.kind != COFFER_MP_ENTRY || dst.is_folder) {
			rc = dst.is_folder ? -EISDIR : -EPERM;
		} else if (f->type == MF_XDIR) {
			struct mfile *old = NULL;

			if (keep)
				rc = -EPERM;
			else if (mnt_entry_file(m, &dst, &old) == 0)
				rc = -EEXIST;
			else
				rc = mnt_errno(
				    mnt_file_rename(m, f, dst.fid, dst.p.name, dst.p.name_n));
		} else {
			struct mfile *old = NULL;

			if ((flags & RENAME_NOREPLACE) && mnt_entry_file(m, &dst, &old) == 0)
				rc = -EEXIST;
			else if (strcmp(from, to) == 0)
				rc = keep ? -EEXIST : 0;
			else
				rc = rename_ctl(m, f, &dst, to, keep);
		}
	} else {
		rc = -EPERM;
	}
out:
	if (rc < 0)
		mnt_log(keep ? "link" : "rename", from, rc);
	mnt_res_free(&src);
	mnt_res_free(&dst);
	return rc;
}
