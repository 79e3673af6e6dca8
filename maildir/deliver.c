/*
 * deliver.c: delivery of one message (see deliver.h).
 *
 * Order of operations (docs/design.md section 6):
 *   1. resolve the account in a read transaction: its id, public key, state
 *      (and, for a spooling caller, the folder's id if it exists);
 *   2. claim an empty file of the account's blob pool (engine/pool.h), or
 *      create the blob file at its final path with O_EXCL (a random blob id
 *      never collides); stream stdin through the envelope writer into it;
 *   3. spooling, into a pool file and an existing folder: attach the note
 *      (engine/spool.h), fsync the file, done: the next absorb indexes it;
 *   4. otherwise fsync the blob, then its directory (and the directories
 *      made for it), unless it came from the pool, whose entries are
 *      durable; then one write transaction: re-check the account is
 *      active, resolve or create the folder, allocate the uid, insert the
 *      records (and drop the pool record); commit.
 * A failure after 2 unlinks the blob (a pool file is emptied, its note
 * removed, and stays in the pool). A crash between 2 and the commit of 4
 * leaves an orphan blob that no index entry names: invisible to readers,
 * removed by `coffer verify --repair`.
 *
 * The first bytes are checked before anything is written: the input must
 * start like a message. Up to one chunk is buffered to decide.
 *
 * Once the mount has released the store's space reserve (engine/reserve.h),
 * the space it gave back is for the index and Dovecot's control files, not
 * for new mail: delivery is refused (NOSPACE, exit 75) before the blob is
 * made (coffer_reserve_check(), as import does). So that this
 * one check sees the whole message where it can, the first chunk (64 KiB)
 * is read before the blob is made: most mail fits in it. A longer message
 * could still eat into that space, so for it alone the room is checked
 * again before the commit.
 *
 * Public-key work: one sealer (engine/crypto.h) per delivery, made from the
 * account's public key once the input looks like a message, makes every box
 * of the delivery: the blob's content-key wrap, the delivery event and, when
 * the delivery creates the folder, its name. That is one ephemeral key pair
 * and one X25519 in all, instead of both per box.
 */
#include "deliver.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/envelope.h"
#include "engine/errors.h"
#include "engine/events.h"
#include "engine/folder.h"
#include "engine/header.h"
#include "engine/io.h"
#include "engine/message.h"
#include "engine/names.h"
#include "engine/pool.h"
#include "engine/reserve.h"
#include "engine/spool.h"
#include "maildir/name.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK COFFER_BLOB_CHUNK

struct lookup_args {
	struct coffer_store *st;
	const char *canon, *folder;
	unsigned char *id;
	struct coffer_account_rec *rec;
	uint32_t fid;
	int have_fid; /* the folder exists (a spooled delivery needs its id) */
};

static int lookup_txn(struct coffer_txn *t, void *arg)
{
	struct lookup_args *a = arg;
	int rc;

	rc = coffer_account_lookup_txn(t, a->st, a->canon, a->id, a->rec);
	if (rc == 0)
		rc = coffer_account_check_active(a->rec, a->canon);
	if (rc == 0 && a->folder) {
		rc = coffer_folder_resolve_txn(t, a->st, a->id, a->folder, 0, NULL, 0, &a->fid,
		                               NULL);
		a->have_fid = rc == 0;
		if (rc == COFFER_ENOTFOUND) {
			coffer_err_clear();
			rc = 0;
		}
	}
	return rc;
}

/* The spooled ending (engine/spool.h): the note; the caller's fsync. */
static int spool(int fd, const struct coffer_blob_writer *w, const struct coffer_message_new *m,
                 uint32_t fid)
{
	struct coffer_spool_note note;
	int rc;

	note.folder_id = fid;
	note.delivered_at = m->delivered_at;
	note.size = m->size;
	rc = coffer_blob_writer_digest(w, note.digest);
	return rc < 0 ? rc : coffer_spool_mark(fd, &note);
}

struct commit_args {
	struct coffer_store *st;
	const char *canon;
	struct coffer_message_new *m; /* m->sealer: the delivery's sealer */
	uint32_t fid, uid;
};

/* The message, and its delivery event (time, size, folder; sealed to the
 * account by the delivery's sealer: kept metadata_retention_days), in one
 * transaction. */
static int commit_txn(struct coffer_txn *t, void *arg)
{
	struct commit_args *a = arg;
	int rc;

	rc = coffer_message_add_txn(t, a->st, a->canon, a->m, NULL, &a->fid, &a->uid);
	if (rc == 0)
		rc = coffer_events_record_delivery_txn(t, a->m->acct, NULL, NULL, a->m->sealer,
		                                       a->m->delivered_at, a->m->size, a->m->folder,
		                                       strlen(a->m->folder));
	return rc;
}

/* Reads into buf until it holds a complete first line (or two, after a
 * "From " line), EOF, or cap bytes. */
static int read_head(int fd, unsigned char *buf, size_t cap, size_t *len_r, int *eof_r)
{
	size_t len = 0;
	int rc;

	*eof_r = 0;
	while (len < cap) {
		size_t got;
		const unsigned char *nl;

		rc = coffer_io_read_full(fd, buf + len, cap - len < 4096 ? cap - len : 4096, &got);
		if (rc < 0)
			return coffer_err_prefix(rc, "deliver: reading the message: ");
		if (got == 0) {
			*eof_r = 1;
			break;
		}
		len += got;
		nl = memchr(buf, '\n', len);
		if (nl && (len < 5 || memcmp(buf, "From ", 5) != 0 ||
		           memchr(nl + 1, '\n', len - (size_t)(nl + 1 - buf)) != NULL))
			break;
	}
	*len_r = len;
	return 0;
}

int coffer_deliver(struct coffer_store *st, const char *name, const char *folder, int fd,
                   struct coffer_deliver_result *res_r)
{
	return coffer_deliver_flags(st, name, folder, fd, 0, res_r);
}

int coffer_deliver_flags(struct coffer_store *st, const char *name, const char *folder, int fd,
                         unsigned flags, struct coffer_deliver_result *res_r)
{
	struct coffer_buf canon = COFFER_BUF_INIT, fcanon = COFFER_BUF_INIT;
	struct coffer_buf dir = COFFER_BUF_INIT, path = COFFER_BUF_INIT;
	struct coffer_account_rec rec;
	struct coffer_blob_writer *w = NULL;
	struct coffer_sealer *sealer = NULL;
	struct coffer_blob_ids ids;
	struct coffer_message_new m;
	struct lookup_args la;
	struct commit_args ca;
	unsigned char *buf = NULL;
	uint64_t max = coffer_store_config(st)->max_message_size, total = 0;
	size_t len;
	int64_t now;
	int rc, eof, whole, pooled = 0, bfd = -1, made = 0, marked = 0;

	memset(res_r, 0, sizeof *res_r);
	rc = coffer_names_account(name, strlen(name), &canon);
	if (rc == 0)
		rc = coffer_names_folder(folder ? folder : "INBOX",
		                         strlen(folder ? folder : "INBOX"), &fcanon);
	if (rc == 0)
		rc = coffer_clock_now(&now);
	if (rc < 0)
		goto out;
	la = (struct lookup_args){ st,
		                   coffer_buf_str(&canon),
		                   (flags & COFFER_DELIVER_SPOOL) ? coffer_buf_str(&fcanon) : NULL,
		                   ids.account_id,
		                   &rec,
		                   0,
		                   0 };
	rc = coffer_index_view(coffer_store_index(st), lookup_txn, &la);
	if (rc < 0)
		goto out;

	buf = malloc(READ_CHUNK);
	if (buf == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "deliver: out of memory");
		goto out;
	}
	rc = read_head(fd, buf, READ_CHUNK, &len, &eof);
	if (rc < 0)
		goto out;
	if (len == 0) {
		rc = coffer_err_set(COFFER_EBADMSG, "deliver: the message is empty");
		goto out;
	}
	if (!coffer_header_is_message(buf, len)) {
		rc = coffer_err_set(COFFER_EBADMSG,
		                    "deliver: the input is not a message: its first line is not a "
		                    "header field");
		goto out;
	}

	/* the rest of the first chunk: what the room check can see of it */
	if (!eof) {
		size_t got;

		rc = coffer_io_read_full(fd, buf + len, READ_CHUNK - len, &got);
		if (rc < 0) {
			coffer_err_prefix(rc, "deliver: reading the message: ");
			goto out;
		}
		len += got;
		eof = len < READ_CHUNK;
	}
	whole = eof;

	rc = coffer_sealer_new(rec.pk, &sealer);
	if (rc < 0)
		goto out;
	coffer_random(ids.blob_id, sizeof ids.blob_id);
	ids.kind = COFFER_BLOB_MESSAGE;
	/* a pool file (engine/pool.h) spares the directory's fsync */
	rc = coffer_reserve_check(st, len);
	if (rc == 0)
		rc = coffer_pool_claim(st, ids.account_id, ids.blob_id, &bfd, &path);
	pooled = rc == 0;
	if (rc == COFFER_ENOTFOUND)
		rc = coffer_store_blob_create(st, ids.account_id, ids.blob_id, 1, &bfd, &path);
	if (rc == 0 && !pooled)
		rc = coffer_store_blob_dir(st, ids.account_id, ids.blob_id, &dir);
	if (rc < 0)
		goto out;
	made = 1;
	rc = coffer_blob_writer_new_sealed(bfd, &ids, sealer, 0, &w);
	while (rc == 0) {
		total += len;
		if (total > max) {
			rc = coffer_err_set(
			    COFFER_ELIMIT,
			    "deliver: the message is larger than max_message_size (%llu bytes)",
			    (unsigned long long)max);
			break;
		}
		rc = coffer_blob_writer_write(w, buf, len);
		if (rc < 0 || eof)
			break;
		rc = coffer_io_read_full(fd, buf, READ_CHUNK, &len);
		if (rc < 0) {
			coffer_err_prefix(rc, "deliver: reading the message: ");
			break;
		}
		if (len < READ_CHUNK)
			eof = 1;
		if (len == 0)
			break;
	}
	memset(&m, 0, sizeof m);
	if (rc == 0)
		rc = coffer_blob_writer_finish(w, &m.size, &m.stored_size);
	if (rc == 0 && !whole)
		rc = coffer_reserve_check(st, 0); /* longer than the bytes checked */
	if (rc < 0)
		goto out;
	m.acct = ids.account_id;
	m.folder = coffer_buf_str(&fcanon);
	memcpy(m.blob_id, ids.blob_id, sizeof m.blob_id);
	m.internal_date = now;
	m.delivered_at = now;
	m.is_new = 1;
	m.sealer = sealer;

	if (pooled && la.have_fid) {
		rc = spool(bfd, w, &m, la.fid);
		marked = rc == 0;
		if (rc == COFFER_ELIMIT) { /* no note: indexed below, as always */
			coffer_err_clear();
			rc = 0;
		}
	}
	if (rc == 0)
		rc = coffer_io_fsync(bfd);
	if (rc == 0 && !pooled)
		rc = coffer_io_fsync_dir(coffer_buf_str(&dir));
	if (rc < 0)
		goto out;
	if (marked) {
		made = 0;
		res_r->folder_id = la.fid;
		res_r->size = m.size;
		res_r->spooled = 1;
		goto out;
	}

	ca = (struct commit_args){ st, coffer_buf_str(&canon), &m, 0, 0 };
	rc = coffer_index_update(coffer_store_index(st), commit_txn, &ca);
	if (rc < 0)
		goto out;
	made = 0;
	res_r->folder_id = ca.fid;
	res_r->uid = ca.uid;
	res_r->size = m.size;
out:
	coffer_blob_writer_free(&w);
	coffer_sealer_free(&sealer);
	/* a pool file goes back to the pool, empty and without a note (we
	 * still hold its lock) */
	if (made && pooled && coffer_spool_discard(bfd) == 0)
		made = 0;
	if (bfd >= 0)
		close(bfd);
	if (made)
		unlink(coffer_buf_str(&path));
	free(buf);
	coffer_buf_free(&canon);
	coffer_buf_free(&fcanon);
	coffer_buf_free(&dir);
	coffer_buf_free(&path);
	return rc;
}
