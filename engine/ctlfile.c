/*
 * ctlfile.c: encrypted control files (see ctlfile.h).
 *
 * Record (value of ctlfiles): u8 version (1), blob id (16), size u64 LE,
 * mtime i64 LE, mode u32 LE, name box length u32 LE, name box. Decoding
 * bounds every length (the index is untrusted input).
 *
 * Blob files are written like deliver.c writes messages: created O_EXCL at
 * their final path (a random id never collides), streamed through the
 * envelope writer, fsynced with their directory before the transaction that
 * names them.
 */
#include "ctlfile.h"

#include "account.h"
#include "blob.h"
#include "buf.h"
#include "envelope.h"
#include "errors.h"
#include "index.h"
#include "io.h"
#include "pool.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CTL_VERSION 1
#define NAME_AD_LEN (8 + COFFER_ID_BYTES + 4)
#define BOX_MAX 4096

static const unsigned char zero_id[COFFER_ID_BYTES];

int coffer_ctlfile_is_empty_blob(const unsigned char *blob_id)
{
	return memcmp(blob_id, zero_id, COFFER_ID_BYTES) == 0;
}

static void name_ad(unsigned char *ad, const unsigned char *acct, uint32_t fid)
{
	memcpy(ad, "ctl-name", 8);
	memcpy(ad + 8, acct, COFFER_ID_BYTES);
	coffer_put_u32be(ad + 8 + COFFER_ID_BYTES, fid);
}

static int ctl_key(struct coffer_store *st, const unsigned char *acct, uint32_t fid,
                   const char *name, size_t n, unsigned char key[COFFER_KEY_CTLFILE])
{
	if (n == 0 || n > COFFER_CTLFILE_NAME_MAX || memchr(name, '/', n) || memchr(name, '\0', n))
		return coffer_err_set(COFFER_EINVAL, "control file name is not a valid file name");
	coffer_key_folder(key, acct, fid);
	return coffer_store_name_mac(st, "ctlf", key, COFFER_ID_BYTES + 4, name, n,
	                             key + COFFER_ID_BYTES + 4);
}

static int rec_encode(const struct coffer_ctlfile_rec *r, const void *box, size_t box_len,
                      struct coffer_buf *out)
{
	coffer_buf_put_u8(out, CTL_VERSION);
	coffer_buf_append(out, r->blob_id, COFFER_ID_BYTES);
	coffer_buf_put_u64le(out, r->size);
	coffer_buf_put_u64le(out, (uint64_t)r->mtime);
	coffer_buf_put_u32le(out, r->mode);
	coffer_buf_put_u32le(out, (uint32_t)box_len);
	coffer_buf_append(out, box, box_len);
	return coffer_buf_ok(out);
}

static int rec_decode(const void *p, size_t n, struct coffer_ctlfile_rec *r,
                      const unsigned char **box_r, size_t *box_len_r)
{
	struct coffer_rd rd;
	uint8_t ver = 0;
	uint64_t mtime = 0;
	uint32_t blen = 0;

	memset(r, 0, sizeof *r);
	coffer_rd_init(&rd, p, n);
	coffer_rd_u8(&rd, &ver);
	coffer_rd_copy(&rd, r->blob_id, COFFER_ID_BYTES);
	coffer_rd_u64le(&rd, &r->size);
	coffer_rd_u64le(&rd, &mtime);
	coffer_rd_u32le(&rd, &r->mode);
	coffer_rd_u32le(&rd, &blen);
	if (rd.failed || ver != CTL_VERSION || blen > BOX_MAX || blen != rd.left ||
	    r->size > COFFER_CTLFILE_MAX)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged control file record");
	coffer_rd_bytes(&rd, blen, box_r);
	*box_len_r = blen;
	r->mtime = (int64_t)mtime;
	return 0;
}

int coffer_ctlfile_rec_decode(const void *p, size_t n, struct coffer_ctlfile_rec *rec_r)
{
	const unsigned char *box;
	size_t bl;

	return rec_decode(p, n, rec_r, &box, &bl);
}

int coffer_ctlfile_get_txn(struct coffer_txn *t, struct coffer_store *st, const unsigned char *acct,
                           uint32_t fid, const char *name, size_t n,
                           struct coffer_ctlfile_rec *rec_r)
{
	unsigned char key[COFFER_KEY_CTLFILE];
	const unsigned char *box;
	const void *v;
	size_t vl, bl;
	int rc;

	rc = ctl_key(st, acct, fid, name, n, key);
	if (rc == 0)
		rc = coffer_txn_get(t, COFFER_DB_CTLFILES, key, sizeof key, &v, &vl);
	if (rc < 0)
		return rc;
	return rec_decode(v, vl, rec_r, &box, &bl);
}

int coffer_ctlfile_put_txn(struct coffer_txn *t, struct coffer_store *st, const unsigned char *acct,
                           uint32_t fid, const char *name, size_t n,
                           const struct coffer_ctlfile_rec *rec,
                           const struct coffer_acct_secret *secret, int excl, int64_t now)
{
	unsigned char key[COFFER_KEY_CTLFILE], ad[NAME_AD_LEN], old_blob[COFFER_ID_BYTES];
	struct coffer_ctlfile_rec old;
	struct coffer_buf box = COFFER_BUF_INIT, val = COFFER_BUF_INIT;
	const unsigned char *obox;
	const void *v;
	size_t vl, obl;
	int rc, had_old = 0;

	rc = ctl_key(st, acct, fid, name, n, key);
	if (rc < 0)
		return rc;
	rc = coffer_txn_get(t, COFFER_DB_CTLFILES, key, sizeof key, &v, &vl);
	if (rc == 0) {
		if (excl)
			return coffer_err_set(COFFER_EEXIST, "control file exists");
		rc = rec_decode(v, vl, &old, &obox, &obl);
		if (rc < 0)
			return rc;
		memcpy(old_blob, old.blob_id, sizeof old_blob);
		had_old = 1;
	} else if (rc != COFFER_ENOTFOUND) {
		return rc;
	}
	if (rec->fresh_blob && !coffer_ctlfile_is_empty_blob(rec->blob_id)) {
		rc = coffer_blob_add_txn(t, acct, rec->blob_id, COFFER_BLOB_CONTROL,
		                         rec->stored_size, now);
		if (rc < 0)
			goto out;
	}
	name_ad(ad, acct, fid);
	rc = coffer_box_sym(&box, name, n, ad, sizeof ad, secret);
	if (rc == 0)
		rc = rec_encode(rec, box.data, box.len, &val);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_CTLFILES, key, sizeof key, val.data, val.len, 0);
	if (rc == 0 && had_old && !coffer_ctlfile_is_empty_blob(old_blob) &&
	    memcmp(old_blob, rec->blob_id, COFFER_ID_BYTES) != 0)
		rc = coffer_blob_unref_txn(t, acct, old_blob, now);
	if (rc == 0)
		rc = coffer_account_touch_txn(t, acct);
out:
	coffer_buf_free(&box);
	coffer_buf_free(&val);
	return rc;
}

int coffer_ctlfile_del_txn(struct coffer_txn *t, struct coffer_store *st, const unsigned char *acct,
                           uint32_t fid, const char *name, size_t n, int64_t now)
{
	unsigned char key[COFFER_KEY_CTLFILE], blob[COFFER_ID_BYTES];
	struct coffer_ctlfile_rec rec;
	const unsigned char *box;
	const void *v;
	size_t vl, bl;
	int rc;

	rc = ctl_key(st, acct, fid, name, n, key);
	if (rc == 0)
		rc = coffer_txn_get(t, COFFER_DB_CTLFILES, key, sizeof key, &v, &vl);
	if (rc == 0)
		rc = rec_decode(v, vl, &rec, &box, &bl);
	if (rc < 0)
		return rc;
	memcpy(blob, rec.blob_id, sizeof blob);
	rc = coffer_txn_del(t, COFFER_DB_CTLFILES, key, sizeof key);
	if (rc == 0 && !coffer_ctlfile_is_empty_blob(blob))
		rc = coffer_blob_unref_txn(t, acct, blob, now);
	if (rc == 0)
		rc = coffer_account_touch_txn(t, acct);
	return rc;
}

int coffer_ctlfile_rename_txn(struct coffer_txn *t, struct coffer_store *st,
                              const unsigned char *acct, uint32_t from_fid, const char *from,
                              size_t from_n, uint32_t to_fid, const char *to, size_t to_n,
                              const struct coffer_acct_secret *secret, int64_t now)
{
	unsigned char key[COFFER_KEY_CTLFILE];
	struct coffer_ctlfile_rec rec;
	int rc;

	if (from_fid == to_fid && from_n == to_n && memcmp(from, to, to_n) == 0)
		return 0;
	rc = coffer_ctlfile_get_txn(t, st, acct, from_fid, from, from_n, &rec);
	if (rc < 0)
		return rc;
	/* the source's reference moves to the target: delete the source key
	 * without dropping the reference, then put (which drops the old
	 * target's reference) */
	rc = ctl_key(st, acct, from_fid, from, from_n, key);
	if (rc == 0)
		rc = coffer_txn_del(t, COFFER_DB_CTLFILES, key, sizeof key);
	rec.fresh_blob = 0;
	if (rc == 0)
		rc = coffer_ctlfile_put_txn(t, st, acct, to_fid, to, to_n, &rec, secret, 0, now);
	return rc;
}

struct list_args {
	const unsigned char *acct;
	uint32_t fid;
	const struct coffer_acct_secret *secret;
	coffer_ctlfile_fn fn;
	void *arg;
};

static int list_one(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct list_args *a = arg;
	struct coffer_ctlfile_rec rec;
	struct coffer_buf name = COFFER_BUF_INIT;
	unsigned char ad[NAME_AD_LEN];
	const unsigned char *box;
	size_t bl;
	int rc;

	if (kl != COFFER_KEY_CTLFILE)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged control file key");
	rc = rec_decode(val, vl, &rec, &box, &bl);
	if (rc < 0)
		return rc;
	name_ad(ad, a->acct, a->fid);
	if (coffer_box_open(&name, box, bl, ad, sizeof ad, a->secret) < 0) {
		coffer_buf_free(&name);
		return coffer_err_set(COFFER_ECORRUPT, "control file name cannot be decrypted");
	}
	rc = a->fn(coffer_buf_str(&name), name.len, &rec, a->arg);
	coffer_buf_free(&name);
	return rc;
}

int coffer_ctlfile_list_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                            const struct coffer_acct_secret *secret, coffer_ctlfile_fn fn,
                            void *arg)
{
	unsigned char prefix[COFFER_ID_BYTES + 4];
	struct list_args a = { acct, fid, secret, fn, arg };

	coffer_key_folder(prefix, acct, fid);
	return coffer_txn_scan(t, COFFER_DB_CTLFILES, prefix, sizeof prefix, list_one, &a);
}

struct del_args {
	unsigned char (*ids)[COFFER_ID_BYTES];
	size_t n, cap;
};

static int collect_blob(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct del_args *a = arg;
	struct coffer_ctlfile_rec rec;
	const unsigned char *box;
	size_t bl;
	int rc;

	rc = rec_decode(val, vl, &rec, &box, &bl);
	if (rc < 0 || coffer_ctlfile_is_empty_blob(rec.blob_id))
		return rc;
	if (coffer_array_grow(&a->ids, &a->cap, a->n, sizeof *a->ids, 16) < 0)
		return coffer_err_set(COFFER_ENOMEM, "ctlfile: out of memory");
	memcpy(a->ids[a->n++], rec.blob_id, COFFER_ID_BYTES);
	return 0;
}

int coffer_ctlfile_delete_folder_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                                     int64_t now)
{
	unsigned char prefix[COFFER_ID_BYTES + 4];
	struct del_args a = { NULL, 0, 0 };
	int rc;

	coffer_key_folder(prefix, acct, fid);
	rc = coffer_txn_scan(t, COFFER_DB_CTLFILES, prefix, sizeof prefix, collect_blob, &a);
	for (size_t i = 0; rc == 0 && i < a.n; i++)
		rc = coffer_blob_unref_txn(t, acct, a.ids[i], now);
	if (rc == 0)
		rc = coffer_txn_del_prefix(t, COFFER_DB_CTLFILES, prefix, sizeof prefix, NULL);
	free(a.ids);
	return rc;
}

int coffer_ctlfile_blobfile_create(struct coffer_store *st, const unsigned char *acct,
                                   unsigned char blob_id_r[COFFER_ID_BYTES], int *fd_r,
                                   struct coffer_buf *path_r)
{
	do
		coffer_random(blob_id_r, COFFER_ID_BYTES);
	while (coffer_ctlfile_is_empty_blob(blob_id_r));
	return coffer_store_blob_create(st, acct, blob_id_r, 1, fd_r, path_r);
}

int coffer_ctlfile_blobfile_sync(struct coffer_store *st, int fd, const char *path, int pooled)
{
	char *dir;
	int rc;

	if (coffer_index_is_lazy(coffer_store_index(st)))
		return 0;
	rc = coffer_io_fsync(fd);
	if (rc < 0 || pooled)
		return rc;
	dir = strdup(path);
	if (dir == NULL)
		return coffer_err_set(COFFER_ENOMEM, "out of memory");
	*strrchr(dir, '/') = '\0';
	rc = coffer_io_fsync_dir(dir);
	free(dir);
	return rc;
}

int coffer_ctlfile_blob_write(struct coffer_store *st, const unsigned char *acct, uint8_t kind,
                              const struct coffer_acct_secret *secret, const void *p, size_t n,
                              unsigned char blob_id_r[COFFER_ID_BYTES], uint64_t *stored_r)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	struct coffer_blob_writer *w = NULL;
	struct coffer_blob_ids ids;
	uint64_t plain = 0;
	int fd = -1, pooled, rc;

	*stored_r = 0;
	if (n == 0 && kind == COFFER_BLOB_CONTROL) {
		memset(blob_id_r, 0, COFFER_ID_BYTES);
		return 0;
	}
	rc = coffer_pool_claim(st, acct, blob_id_r, &fd, &path);
	pooled = rc == 0;
	if (rc == COFFER_ENOTFOUND)
		rc = coffer_ctlfile_blobfile_create(st, acct, blob_id_r, &fd, &path);
	if (rc < 0)
		goto out;
	memcpy(ids.account_id, acct, COFFER_ID_BYTES);
	memcpy(ids.blob_id, blob_id_r, COFFER_ID_BYTES);
	ids.kind = kind;
	rc = coffer_blob_writer_new(fd, &ids, secret->pk, secret, 0, &w);
	if (rc == 0)
		rc = coffer_blob_writer_write(w, p, n);
	if (rc == 0)
		rc = coffer_blob_writer_finish(w, &plain, stored_r);
	if (rc == 0)
		rc = coffer_ctlfile_blobfile_sync(st, fd, coffer_buf_str(&path), pooled);
out:
	coffer_blob_writer_free(&w);
	if (fd >= 0)
		close(fd);
	if (rc < 0 && path.len)
		unlink(coffer_buf_str(&path));
	coffer_buf_free(&path);
	return rc;
}

int coffer_ctlfile_read(struct coffer_store *st, const unsigned char *acct,
                        const struct coffer_acct_secret *secret,
                        const struct coffer_ctlfile_rec *rec, struct coffer_buf *out)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	struct coffer_blob_reader *r = NULL;
	struct coffer_blob_ids ids;
	size_t start = out->len, got;
	int fd = -1, rc;

	if (coffer_ctlfile_is_empty_blob(rec->blob_id))
		return rec->size == 0
		           ? 0
		           : coffer_err_set(COFFER_ECORRUPT, "control file without its blob");
	if (rec->size > COFFER_CTLFILE_MAX)
		return coffer_err_set(COFFER_ECORRUPT, "control file too large");
	rc = coffer_store_blob_path(st, acct, rec->blob_id, &path);
	if (rc < 0)
		goto out;
	fd = open(coffer_buf_str(&path), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = coffer_err_set(COFFER_ECORRUPT, "control file blob missing: %s",
		                    strerror(errno));
		goto out;
	}
	memcpy(ids.account_id, acct, COFFER_ID_BYTES);
	memcpy(ids.blob_id, rec->blob_id, COFFER_ID_BYTES);
	ids.kind = COFFER_BLOB_CONTROL;
	rc = coffer_blob_reader_open(fd, &ids, secret, &r);
	if (rc == 0)
		rc = coffer_buf_reserve(out, (size_t)rec->size + 1);
	while (rc == 0) {
		size_t room = out->cap - out->len - 1;

		if (room == 0) {
			rc = coffer_buf_reserve(out, 65536);
			if (rc < 0)
				break;
			room = out->cap - out->len - 1;
		}
		rc = coffer_blob_reader_read(r, out->data + out->len, room, &got);
		if (rc < 0 || got == 0)
			break;
		out->len += got;
		out->data[out->len] = '\0';
		if (out->len - start > rec->size) {
			rc = coffer_err_set(COFFER_ECORRUPT, "control file longer than recorded");
			break;
		}
	}
	if (rc == 0 && out->len - start != rec->size)
		rc = coffer_err_set(COFFER_ECORRUPT, "control file size differs from its record");
out:
	coffer_blob_reader_free(&r);
	if (fd >= 0)
		close(fd);
	coffer_buf_free(&path);
	return rc;
}
