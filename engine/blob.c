/*
 * blob.c: blob reference counts and trash collection (see blob.h).
 *
 * Trash records: key acct || blob id, value removed-at (u64 LE, ns).
 */
#include "blob.h"

#include "buf.h"
#include "errors.h"
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int get_rec(struct coffer_txn *t, const unsigned char *key, struct coffer_blob_rec *rec)
{
	const void *v;
	size_t n;
	int rc;

	rc = coffer_txn_get(t, COFFER_DB_BLOBS, key, COFFER_KEY_BLOB, &v, &n);
	if (rc < 0)
		return rc;
	return coffer_blob_rec_decode(v, n, rec);
}

static int put_rec(struct coffer_txn *t, const unsigned char *key,
                   const struct coffer_blob_rec *rec)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	int rc;

	rc = coffer_blob_rec_encode(rec, &b);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_BLOBS, key, COFFER_KEY_BLOB, b.data, b.len, 0);
	coffer_buf_free(&b);
	return rc;
}

int coffer_blob_add_txn(struct coffer_txn *t, const unsigned char *acct,
                        const unsigned char *blob_id, uint8_t kind, uint64_t stored_size,
                        int64_t created_at)
{
	unsigned char key[COFFER_KEY_BLOB];
	struct coffer_blob_rec rec;
	struct coffer_buf b = COFFER_BUF_INIT;
	int rc;

	memset(&rec, 0, sizeof rec);
	rec.refs = 1;
	rec.kind = kind;
	rec.created_at = created_at;
	rec.stored_size = stored_size;
	coffer_key_blob(key, acct, blob_id);
	rc = coffer_blob_rec_encode(&rec, &b);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_BLOBS, key, sizeof key, b.data, b.len,
		                    COFFER_PUT_NOOVERWRITE);
	coffer_buf_free(&b);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_UNSNAPPED, key, sizeof key, "", 0, 0);
	if (rc == 0)
		rc = coffer_pool_take_txn(t, acct, blob_id);
	return rc;
}

int coffer_blob_ref_txn(struct coffer_txn *t, const unsigned char *acct,
                        const unsigned char *blob_id)
{
	unsigned char key[COFFER_KEY_BLOB];
	struct coffer_blob_rec rec;
	int rc;

	coffer_key_blob(key, acct, blob_id);
	rc = get_rec(t, key, &rec);
	if (rc < 0)
		return rc;
	if (rec.refs == UINT32_MAX)
		return coffer_err_set(COFFER_ELIMIT, "blob has too many references");
	rec.refs++;
	return put_rec(t, key, &rec);
}

int coffer_blob_unref_txn(struct coffer_txn *t, const unsigned char *acct,
                          const unsigned char *blob_id, int64_t now)
{
	unsigned char key[COFFER_KEY_BLOB], when[8];
	struct coffer_blob_rec rec;
	int rc;

	coffer_key_blob(key, acct, blob_id);
	rc = get_rec(t, key, &rec);
	if (rc == COFFER_ENOTFOUND)
		return coffer_err_set(COFFER_ECORRUPT,
		                      "index: a message points at an unknown blob");
	if (rc < 0)
		return rc;
	if (rec.refs > 1) {
		rec.refs--;
		return put_rec(t, key, &rec);
	}
	rc = coffer_txn_del(t, COFFER_DB_BLOBS, key, sizeof key);
	if (rc < 0)
		return rc;
	coffer_put_u64le(when, (uint64_t)now);
	/* A blob no snapshot holds yet leaves the next snapshot's work list.
	 * (Snapshots find the blobs they free by comparing states.) */
	rc = coffer_txn_del(t, COFFER_DB_UNSNAPPED, key, sizeof key);
	if (rc < 0 && rc != COFFER_ENOTFOUND)
		return rc;
	return coffer_txn_put(t, COFFER_DB_TRASH, key, sizeof key, when, sizeof when, 0);
}

int coffer_blob_gc_lock_exclusive(struct coffer_store *st, int *fd_r)
{
	return coffer_store_lock(st, "blobgc", LOCK_EX, fd_r);
}

#define FORGET_BATCH 2000 /* trash records per write transaction: deliveries wait on it */

struct collect_args {
	unsigned char (*keys)[COFFER_KEY_BLOB];
	size_t n, cap;
	size_t from, to; /* the batch forget_txn removes */
};

static int gather(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct collect_args *a = arg;

	if (kl != COFFER_KEY_BLOB)
		return 0;
	if (coffer_array_grow(&a->keys, &a->cap, a->n, sizeof *a->keys, 256) < 0)
		return coffer_err_set(COFFER_ENOMEM, "blob: out of memory");
	memcpy(a->keys[a->n++], k, COFFER_KEY_BLOB);
	return a->n >= 100000 ? 1 : 0; /* bounded batch; the rest next time */
}

struct scan_args {
	struct collect_args *c;
	const unsigned char *acct;
};

static int gather_txn(struct coffer_txn *t, void *arg)
{
	struct scan_args *s = arg;

	return coffer_txn_scan(t, COFFER_DB_TRASH, s->acct, s->acct ? COFFER_ID_BYTES : 0, gather,
	                       s->c);
}

static int forget_txn(struct coffer_txn *t, void *arg)
{
	struct collect_args *a = arg;
	int rc;

	for (size_t i = a->from; i < a->to; i++) {
		rc = coffer_txn_del(t, COFFER_DB_TRASH, a->keys[i], COFFER_KEY_BLOB);
		if (rc < 0 && rc != COFFER_ENOTFOUND)
			return rc;
	}
	return 0;
}

int coffer_blob_collect(struct coffer_store *st, const unsigned char *acct, uint64_t *removed_r)
{
	struct collect_args c = { NULL, 0, 0, 0, 0 };
	struct scan_args s = { &c, acct };
	struct coffer_buf path = COFFER_BUF_INIT;
	int fd, rc;

	if (removed_r)
		*removed_r = 0;
	rc = coffer_store_lock(st, "blobgc", LOCK_SH | LOCK_NB, &fd);
	if (rc == COFFER_ETEMP)
		return 0; /* a snapshot is copying: leave the trash for later */
	if (rc < 0)
		return rc;
	rc = coffer_index_view(coffer_store_index(st), gather_txn, &s);
	/* a trash record may come from a lazy commit (index.h), which a
	 * system crash could undo: made durable before its blob goes */
	if (rc == 0 && c.n > 0)
		rc = coffer_index_sync(coffer_store_index(st));
	for (size_t i = 0; rc == 0 && i < c.n; i++) {
		rc = coffer_store_blob_path(st, c.keys[i], c.keys[i] + COFFER_ID_BYTES, &path);
		if (rc == 0 && unlink(coffer_buf_str(&path)) < 0 && errno != ENOENT)
			rc = coffer_err_set(coffer_err_from_errno(errno),
			                    "blob: cannot remove %s: %s", coffer_buf_str(&path),
			                    strerror(errno));
	}
	for (c.from = 0; rc == 0 && c.from < c.n; c.from = c.to) {
		c.to = c.n - c.from > FORGET_BATCH ? c.from + FORGET_BATCH : c.n;
		rc = coffer_index_update(coffer_store_index(st), forget_txn, &c);
	}
	if (rc == 0 && removed_r)
		*removed_r = c.n;
	close(fd);
	free(c.keys);
	coffer_buf_free(&path);
	return rc;
}
