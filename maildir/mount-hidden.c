/*
 * mount-hidden.c: files that are unlinked, or renamed over, while a process
 * still has them open.
 *
 * On a local file system such a file lives on, nameless, until its last
 * close: fstat() answers, reads see the old content, an mmap() stays valid.
 * Dovecot relies on all three (it fstat()s open index logs and lock files to
 * see whether another process replaced them, and maps its index files).
 * The operations work by path, so mount-ll.c keeps such a file alive by
 * renaming it to ".fuse_hidden<16 hex>" in its directory when the kernel
 * may still hold its inode, and unlinks that name when the kernel forgets
 * the inode (at the last close, or at once if it was not open). The mount
 * serves those names from memory, outside the tree:
 *
 *   - a control file: a copy of its content, while the name it had becomes
 *     a tombstone (mfile.gone): gone for every lookup, its index entry
 *     deleted by the next write-out of the account's control files (the
 *     flusher's, within a second; the same durability as a control file's
 *     content), or replaced in one transaction by a rename or create onto
 *     the name. So Dovecot's rewrite of dovecot-uidlist (rename over the
 *     open old one) stays one atomic transaction;
 *   - a tmp/ file: the file itself, moved out of the table;
 *   - a message in cur/ or new/: its blob, held open from before the
 *     expunge (which commits as an unlink's does), so that the trash
 *     collector's unlink of the file does not take it away.
 *
 * A hidden file is never written to the store: a crash forgets it, as a
 * crash forgets an unlinked file's last reference. Writes to it change the
 * copy only. Names of this form are refused for anything else (mkdir,
 * create), so they cannot collide with mail or folders.
 */
#include "mount-private.h"

#include "engine/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define HIDDEN_PREFIX ".fuse_hidden"

int mnt_hidden_name(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return strncmp(base, HIDDEN_PREFIX, sizeof HIDDEN_PREFIX - 1) == 0;
}

struct mfile *mnt_hidden_find(struct mnt *m, const char *path)
{
	for (struct mfile *f = m->hidden; f; f = f->next)
		if (strcmp(f->name, path) == 0)
			return f;
	return NULL;
}

/* A new hidden file named path (the whole path: libfuse's names are
 * unique across the mount), owned by the hidden list. */
static struct mfile *hidden_new(struct mnt *m, struct macct *a, int type, const char *path)
{
	struct mfile *f = mnt_file_new(m, type, a, UINT32_MAX, path, strlen(path));

	if (f == NULL)
		return NULL;
	mnt_file_unhash(m, f);
	f->next = m->hidden;
	m->hidden = f;
	return f;
}

static void hidden_drop(struct mnt *m, struct mfile *f)
{
	struct mfile **pp = &m->hidden;

	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
	f->next = NULL;
	mnt_file_free(m, f);
}

static int hide_message(struct mnt *m, struct mres *r, const char *to)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	struct mfile *h;
	int rc;

	rc = coffer_store_blob_path(m->st, r->a->id, r->rec.blob_id, &path);
	if (rc < 0)
		return mnt_errno(rc);
	h = hidden_new(m, r->a, MF_TMP, to);
	if (h == NULL) {
		coffer_buf_free(&path);
		return -ENOMEM;
	}
	h->mode = 0600;
	h->mtime = r->rec.internal_date;
	h->linked = 1;
	h->lrec = r->rec;
	h->pin_fd = open(coffer_buf_str(&path), O_RDONLY | O_CLOEXEC);
	coffer_buf_free(&path);
	rc = h->pin_fd < 0 ? -EIO : mnt_expunge(m, r);
	if (rc < 0)
		hidden_drop(m, h);
	return rc;
}

static int hide_ctl(struct mnt *m, struct mfile *f, const char *to)
{
	struct mfile *h;
	int rc = mnt_ctl_load(m, f);

	if (rc < 0)
		return mnt_errno(rc);
	h = hidden_new(m, f->a, MF_CTL, to);
	if (h == NULL)
		return -ENOMEM;
	h->mtime = f->mtime;
	h->mode = f->mode;
	/* the inode lives on: so does its link copy's mirroring (mfile.peer) */
	if (f->peer_name) {
		struct mfile peer = { .name = f->peer_name,
			              .name_n = f->peer_n,
			              .fid = f->peer_fid,
			              .ino = f->peer_ino };

		if (mnt_file_set_peer(m, h, &peer, f->peer_path) < 0) {
			hidden_drop(m, h);
			return -ENOMEM;
		}
	}
	/* the name's file forgets its copy (a file made on the name later is
	 * another), and the files whose copy it is follow it into hiding */
	mnt_file_forget_peer(f);
	mnt_peer_moved(m, f, UINT32_MAX, to, strlen(to), to, h->ino);
	/* the content moves, not copied: the name keeps none (it becomes a
	 * tombstone, or is freed) */
	h->data = f->data;
	f->data = (struct coffer_buf)COFFER_BUF_INIT;
	h->size = h->data.len;
	if (!f->persisted) {
		mnt_file_free(m, f);
		return 0;
	}
	/* a tombstone until the next write-out deletes its index entry */
	mnt_ctl_unload(f);
	f->size = 0;
	f->gone = 1;
	if (!f->dirty)
		f->dirty_since = mnt_now();
	f->dirty = 1;
	return 0;
}

int mnt_hide(struct mnt *m, const char *from, const char *to)
{
	struct mres r;
	struct mfile *f;
	int rc;

	if (mnt_hidden_name(from) || mnt_hidden_find(m, to))
		return -EPERM;
	rc = mnt_resolve(m, from, &r);
	if (rc < 0)
		goto out;
	if (r.p.kind == COFFER_MP_FILE && r.p.sub != COFFER_MP_TMP) {
		rc = r.is_msg ? hide_message(m, &r, to) : -ENOENT;
	} else if (r.p.kind == COFFER_MP_FILE) {
		f = mnt_file_find(m, MF_TMP, r.a, r.fid, r.p.name, r.p.name_n);
		if (f == NULL) {
			rc = -ENOENT;
		} else {
			char *name = strdup(to);

			if (name == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			mnt_file_unhash(m, f);
			free(f->name);
			f->name = name;
			f->name_n = strlen(name);
			f->fid = UINT32_MAX;
			f->next = m->hidden;
			m->hidden = f;
		}
	} else if (r.p.kind == COFFER_MP_ENTRY && !r.is_folder) {
		rc = mnt_entry_file(m, &r, &f);
		if (rc == 0)
			rc = f->type == MF_CTL ? hide_ctl(m, f, to) : -EPERM;
	} else {
		rc = -EPERM; /* directories are never open in libfuse's sense */
	}
out:
	mnt_res_free(&r);
	return rc;
}

int mnt_hidden_unlink(struct mnt *m, const char *path)
{
	struct mfile *f = mnt_hidden_find(m, path);

	if (f == NULL)
		return -ENOENT;
	hidden_drop(m, f);
	return 0;
}

void mnt_hidden_free_all(struct mnt *m)
{
	while (m->hidden)
		hidden_drop(m, m->hidden);
}
