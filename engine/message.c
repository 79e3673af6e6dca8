/*
 * message.c: message records and message reading (see message.h).
 *
 * Reading checks the blob against the index: the blob reader authenticates
 * every chunk with (account id, blob id, kind), and the size read must equal
 * the record's size at the end; a mismatch is reported as damage naming the
 * account, folder and uid. Nothing of a damaged message is trusted.
 */
#include "message.h"

#include "blob.h"
#include "buf.h"
#include "envelope.h"
#include "errors.h"
#include "folder.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_AD_LEN (8 + 2 * COFFER_ID_BYTES)

static void msg_name_ad(unsigned char *ad, const unsigned char *acct, const unsigned char *blob)
{
	memcpy(ad, "msg-name", 8);
	memcpy(ad + 8, acct, COFFER_ID_BYTES);
	memcpy(ad + 8 + COFFER_ID_BYTES, blob, COFFER_ID_BYTES);
}

/* Under secret if given, else with sealer if given, else sealed to pk. */
static int name_box(struct coffer_buf *out, const unsigned char *acct, const unsigned char *blob_id,
                    const char *unique, size_t n, const struct coffer_acct_secret *secret,
                    struct coffer_sealer *sealer, const unsigned char *pk)
{
	unsigned char ad[NAME_AD_LEN];

	msg_name_ad(ad, acct, blob_id);
	if (secret)
		return coffer_box_sym(out, unique, n, ad, sizeof ad, secret);
	if (sealer)
		return coffer_box_seal_with(out, unique, n, ad, sizeof ad, sealer);
	return coffer_box_seal(out, unique, n, ad, sizeof ad, pk);
}

static int add_to_folder(struct coffer_txn *t, struct coffer_store *st, const char *name,
                         const struct coffer_message_new *m,
                         const struct coffer_acct_secret *secret,
                         const struct coffer_account_rec *arec, uint32_t fid, uint32_t *uid_r);

int coffer_message_add_txn(struct coffer_txn *t, struct coffer_store *st, const char *name,
                           const struct coffer_message_new *m,
                           const struct coffer_acct_secret *secret, uint32_t *fid_r,
                           uint32_t *uid_r)
{
	struct coffer_account_rec arec;
	uint32_t fid;
	int rc;

	rc = coffer_account_get_txn(t, m->acct, &arec);
	if (rc == 0)
		rc = coffer_account_check_active(&arec, name);
	if (rc == 0 && secret == NULL && m->sealer != NULL)
		rc = coffer_folder_resolve_sealed_txn(t, st, m->acct, m->folder, m->sealer,
		                                      m->delivered_at, &fid, NULL);
	else if (rc == 0)
		rc = coffer_folder_resolve_txn(t, st, m->acct, m->folder, 1, secret,
		                               m->delivered_at, &fid, NULL);
	if (rc == 0)
		rc = add_to_folder(t, st, name, m, secret, &arec, fid, uid_r);
	if (rc == 0 && fid_r)
		*fid_r = fid;
	return rc;
}

int coffer_message_add_to_txn(struct coffer_txn *t, struct coffer_store *st, const char *name,
                              const struct coffer_message_new *m, uint32_t fid, uint32_t *uid_r)
{
	struct coffer_account_rec arec;
	int rc;

	if (m->unique != NULL || m->sealer != NULL)
		return coffer_err_set(COFFER_EINVAL, "message: no name box without a key");
	rc = coffer_account_get_txn(t, m->acct, &arec);
	return rc < 0 ? rc : add_to_folder(t, st, name, m, NULL, &arec, fid, uid_r);
}

/* The message's records in existing folder fid (the rest of add_txn). */
static int add_to_folder(struct coffer_txn *t, struct coffer_store *st, const char *name,
                         const struct coffer_message_new *m,
                         const struct coffer_acct_secret *secret,
                         const struct coffer_account_rec *arec, uint32_t fid, uint32_t *uid_r)
{
	struct coffer_folder_rec frec;
	struct coffer_message_rec mrec;
	struct coffer_buf val = COFFER_BUF_INIT, box = COFFER_BUF_INIT;
	unsigned char mkey[COFFER_KEY_MESSAGE];
	uint32_t uid;
	int rc;

	rc = coffer_folder_get_txn(t, m->acct, fid, &frec);
	if (rc < 0)
		goto out;
	if (frec.uidnext == UINT32_MAX) {
		rc = coffer_err_set(COFFER_ELIMIT, "account %s: folder %s has run out of uids",
		                    name, m->folder);
		goto out;
	}
	uid = frec.uidnext++;
	/* the folder record's name box points into the map: re-encode now */
	rc = coffer_folder_put_txn(t, m->acct, fid, &frec);
	if (rc < 0)
		goto out;

	memset(&mrec, 0, sizeof mrec);
	memcpy(mrec.blob_id, m->blob_id, COFFER_ID_BYTES);
	mrec.size = m->size;
	mrec.internal_date = m->internal_date;
	mrec.delivered_at = m->delivered_at;
	mrec.flags = m->flags;
	mrec.is_new = m->is_new;
	mrec.keywords = m->keywords;
	if (m->unique) {
		rc = name_box(&box, m->acct, m->blob_id, m->unique, m->unique_len, secret,
		              m->sealer, arec->pk);
		if (rc < 0)
			goto out;
		mrec.name_box = box.data;
		mrec.name_box_len = box.len;
	}
	{
		struct coffer_buf derived = COFFER_BUF_INIT;
		unsigned char nkey[COFFER_KEY_MSG_NAME], uidbuf[4];

		if (m->unique == NULL)
			rc = coffer_message_derived_name(&mrec, &derived);
		if (rc == 0)
			rc = coffer_message_name_key(st, m->acct, fid,
			                             m->unique ? m->unique
			                                       : coffer_buf_str(&derived),
			                             m->unique ? m->unique_len : derived.len, nkey);
		coffer_buf_free(&derived);
		coffer_put_u32be(uidbuf, uid);
		if (rc == 0)
			rc = coffer_txn_put(t, COFFER_DB_MSG_NAMES, nkey, sizeof nkey, uidbuf, 4,
			                    COFFER_PUT_NOOVERWRITE);
		if (rc == COFFER_EEXIST)
			rc = coffer_err_set(COFFER_EEXIST,
			                    "account %s: folder %s already has a message "
			                    "with that name",
			                    name, m->folder);
		if (rc < 0)
			goto out;
	}
	coffer_key_message(mkey, m->acct, fid, uid);
	rc = coffer_message_rec_encode(&mrec, &val);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_MESSAGES, mkey, sizeof mkey, val.data, val.len,
		                    COFFER_PUT_NOOVERWRITE);
	if (rc < 0)
		goto out;

	rc = coffer_blob_add_txn(t, m->acct, m->blob_id, COFFER_BLOB_MESSAGE, m->stored_size,
	                         m->delivered_at);
	if (rc < 0)
		goto out;
	rc = coffer_account_touch_txn(t, m->acct);
	if (rc == 0 && uid_r)
		*uid_r = uid;
out:
	coffer_buf_free(&val);
	coffer_buf_free(&box);
	return rc;
}

int coffer_message_name_key(struct coffer_store *st, const unsigned char *acct, uint32_t fid,
                            const char *unique, size_t n, unsigned char key[COFFER_KEY_MSG_NAME])
{
	unsigned char ctx[COFFER_ID_BYTES + 4];

	coffer_key_folder(ctx, acct, fid);
	memcpy(key, ctx, sizeof ctx);
	return coffer_store_name_mac(st, "mnam", ctx, sizeof ctx, unique, n, key + sizeof ctx);
}

int coffer_message_find_name_txn(struct coffer_txn *t, struct coffer_store *st,
                                 const unsigned char *acct, uint32_t fid, const char *unique,
                                 size_t n, uint32_t *uid_r)
{
	unsigned char key[COFFER_KEY_MSG_NAME];
	const void *v;
	size_t vl;
	int rc;

	rc = coffer_message_name_key(st, acct, fid, unique, n, key);
	if (rc == 0)
		rc = coffer_txn_get(t, COFFER_DB_MSG_NAMES, key, sizeof key, &v, &vl);
	if (rc < 0)
		return rc;
	if (vl != 4)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged message name record");
	*uid_r = coffer_get_u32be(v);
	return 0;
}

int coffer_message_get_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                           uint32_t uid, struct coffer_message_rec *rec_r)
{
	unsigned char key[COFFER_KEY_MESSAGE];
	const void *v;
	size_t n;
	int rc;

	coffer_key_message(key, acct, fid, uid);
	rc = coffer_txn_get(t, COFFER_DB_MESSAGES, key, sizeof key, &v, &n);
	if (rc < 0)
		return rc;
	return coffer_message_rec_decode(v, n, rec_r);
}

int coffer_message_update_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                              uint32_t uid, const struct coffer_message_rec *rec)
{
	unsigned char key[COFFER_KEY_MESSAGE];
	struct coffer_buf val = COFFER_BUF_INIT;
	int rc;

	coffer_key_message(key, acct, fid, uid);
	rc = coffer_message_rec_encode(rec, &val);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_MESSAGES, key, sizeof key, val.data, val.len, 0);
	coffer_buf_free(&val);
	return rc == 0 ? coffer_account_touch_txn(t, acct) : rc;
}

int coffer_message_expunge_txn(struct coffer_txn *t, struct coffer_store *st,
                               const unsigned char *acct, uint32_t fid, uint32_t uid,
                               const char *unique, size_t n, int64_t now)
{
	unsigned char key[COFFER_KEY_MESSAGE], nkey[COFFER_KEY_MSG_NAME];
	unsigned char blob_id[COFFER_ID_BYTES];
	struct coffer_message_rec rec;
	int rc;

	rc = coffer_message_get_txn(t, acct, fid, uid, &rec);
	if (rc < 0)
		return rc;
	memcpy(blob_id, rec.blob_id, sizeof blob_id);
	coffer_key_message(key, acct, fid, uid);
	rc = coffer_txn_del(t, COFFER_DB_MESSAGES, key, sizeof key);
	if (rc == 0)
		rc = coffer_message_name_key(st, acct, fid, unique, n, nkey);
	if (rc == 0) {
		rc = coffer_txn_del(t, COFFER_DB_MSG_NAMES, nkey, sizeof nkey);
		if (rc == COFFER_ENOTFOUND)
			rc = coffer_err_set(COFFER_ECORRUPT, "index: message %u has no name entry",
			                    uid);
	}
	if (rc == 0)
		rc = coffer_blob_unref_txn(t, acct, blob_id, now);
	return rc == 0 ? coffer_account_touch_txn(t, acct) : rc;
}

int coffer_message_name_box(struct coffer_buf *out, const unsigned char *acct,
                            const unsigned char *blob_id, const char *unique, size_t n,
                            const struct coffer_acct_secret *secret, const unsigned char *pk)
{
	return name_box(out, acct, blob_id, unique, n, secret, NULL, pk);
}

int coffer_message_unique_name(const struct coffer_message_rec *rec, const unsigned char *acct,
                               const struct coffer_acct_secret *secret, struct coffer_buf *out)
{
	unsigned char ad[NAME_AD_LEN];

	if (rec->name_box == NULL)
		return coffer_message_derived_name(rec, out);
	msg_name_ad(ad, acct, rec->blob_id);
	if (coffer_box_open(out, rec->name_box, rec->name_box_len, ad, sizeof ad, secret) < 0)
		return coffer_err_set(COFFER_ECORRUPT, "message name cannot be decrypted");
	return 0;
}

int coffer_message_derived_name(const struct coffer_message_rec *rec, struct coffer_buf *out)
{
	char hex[2 * COFFER_ID_BYTES + 1];

	coffer_hex(hex, rec->blob_id, COFFER_ID_BYTES);
	return coffer_buf_printf(out, "%lld.C%.16s.coffer,S=%llu",
	                         (long long)(rec->delivered_at / 1000000000LL), hex,
	                         (unsigned long long)rec->size);
}

struct list_entry {
	struct coffer_message m;
	char *unique;
};

struct list_args {
	struct coffer_mailbox *mb;
	uint32_t fid;
	struct list_entry *v;
	size_t n, cap;
};

static int collect(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct list_args *a = arg;
	struct list_entry *e;
	struct coffer_buf name = COFFER_BUF_INIT;
	int rc;

	if (kl != COFFER_KEY_MESSAGE)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged message key");
	if (coffer_array_grow(&a->v, &a->cap, a->n, sizeof *a->v, 64) < 0)
		return coffer_err_set(COFFER_ENOMEM, "message: out of memory");
	e = &a->v[a->n];
	memset(e, 0, sizeof *e);
	e->m.folder_id = a->fid;
	e->m.uid = coffer_get_u32be((const unsigned char *)k + COFFER_ID_BYTES + 4);
	rc = coffer_message_rec_decode(val, vl, &e->m.rec);
	if (rc < 0)
		return coffer_err_prefix(rc, "account %s: uid %u: ", coffer_mailbox_name(a->mb),
		                         e->m.uid);
	rc = coffer_message_unique_name(&e->m.rec, coffer_mailbox_id(a->mb),
	                                coffer_mailbox_secret(a->mb), &name);
	if (rc < 0) {
		coffer_buf_free(&name);
		return coffer_err_prefix(rc, "account %s: uid %u: ", coffer_mailbox_name(a->mb),
		                         e->m.uid);
	}
	e->m.rec.name_box = NULL;
	e->m.rec.name_box_len = 0;
	e->unique = (char *)name.data;
	a->n++;
	return 0;
}

static int list_txn(struct coffer_txn *t, void *arg)
{
	struct list_args *a = arg;
	unsigned char prefix[COFFER_KEY_FOLDER];

	coffer_key_folder(prefix, coffer_mailbox_id(a->mb), a->fid);
	return coffer_txn_scan(t, COFFER_DB_MESSAGES, prefix, sizeof prefix, collect, a);
}

int coffer_message_list(struct coffer_mailbox *mb, uint32_t fid, coffer_message_fn fn, void *arg)
{
	struct list_args a = { mb, fid, NULL, 0, 0 };
	int rc;

	rc = coffer_index_view(coffer_store_index(coffer_mailbox_store(mb)), list_txn, &a);
	for (size_t i = 0; rc == 0 && i < a.n; i++) {
		a.v[i].m.unique = a.v[i].unique ? a.v[i].unique : "";
		rc = fn(&a.v[i].m, arg);
	}
	for (size_t i = 0; i < a.n; i++)
		free(a.v[i].unique);
	free(a.v);
	return rc;
}

struct coffer_message_reader {
	struct coffer_mailbox *mb;
	struct coffer_blob_reader *blob;
	struct coffer_message_rec rec;
	int fd;
	uint64_t read_so_far;
	char *what; /* "account A folder F uid N", for errors */
};

struct get_args {
	const unsigned char *acct;
	uint32_t fid, uid;
	struct coffer_message_rec *rec;
};

static int get_txn(struct coffer_txn *t, void *arg)
{
	struct get_args *a = arg;
	unsigned char key[COFFER_KEY_MESSAGE];
	const void *v;
	size_t n;
	int rc;

	coffer_key_message(key, a->acct, a->fid, a->uid);
	rc = coffer_txn_get(t, COFFER_DB_MESSAGES, key, sizeof key, &v, &n);
	if (rc < 0)
		return rc;
	rc = coffer_message_rec_decode(v, n, a->rec);
	a->rec->name_box = NULL;
	a->rec->name_box_len = 0;
	return rc;
}

static int damaged(struct coffer_message_reader *r, const char *why)
{
	char detail[512];

	/* why may be coffer_errmsg() itself: copy it before overwriting */
	snprintf(detail, sizeof detail, "%s", why);
	return coffer_err_set(COFFER_ECORRUPT, "%s is damaged: %s", r->what, detail);
}

int coffer_message_open(struct coffer_mailbox *mb, uint32_t fid, const char *folder, uint32_t uid,
                        struct coffer_message_reader **r_r)
{
	struct coffer_message_reader *r;
	struct coffer_blob_ids ids;
	struct coffer_buf path = COFFER_BUF_INIT;
	struct get_args a;
	int rc;

	*r_r = NULL;
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return coffer_err_set(COFFER_ENOMEM, "message: out of memory");
	r->mb = mb;
	r->fd = -1;
	if (asprintf(&r->what, "account %s folder %s uid %u", coffer_mailbox_name(mb), folder,
	             uid) < 0) {
		r->what = NULL;
		rc = coffer_err_set(COFFER_ENOMEM, "message: out of memory");
		goto fail;
	}
	a = (struct get_args){ coffer_mailbox_id(mb), fid, uid, &r->rec };
	rc = coffer_index_view(coffer_store_index(coffer_mailbox_store(mb)), get_txn, &a);
	if (rc == COFFER_ENOTFOUND) {
		rc = coffer_err_set(rc, "%s does not exist", r->what);
		goto fail;
	}
	if (rc < 0)
		goto fail;
	rc = coffer_store_blob_path(coffer_mailbox_store(mb), coffer_mailbox_id(mb), r->rec.blob_id,
	                            &path);
	if (rc < 0)
		goto fail;
	r->fd = open(coffer_buf_str(&path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (r->fd < 0) {
		rc = errno == ENOENT
		         ? damaged(r, "its blob is missing")
		         : coffer_err_set(coffer_err_from_errno(errno), "%s: cannot open blob: %s",
		                          r->what, strerror(errno));
		goto fail;
	}
	memcpy(ids.account_id, coffer_mailbox_id(mb), COFFER_ID_BYTES);
	memcpy(ids.blob_id, r->rec.blob_id, COFFER_ID_BYTES);
	ids.kind = COFFER_BLOB_MESSAGE;
	rc = coffer_blob_reader_open(r->fd, &ids, coffer_mailbox_secret(mb), &r->blob);
	if (rc < 0) {
		rc = rc == COFFER_ECORRUPT ? damaged(r, coffer_errmsg())
		                           : coffer_err_prefix(rc, "%s: ", r->what);
		goto fail;
	}
	coffer_buf_free(&path);
	*r_r = r;
	return 0;
fail:
	coffer_buf_free(&path);
	coffer_message_close(&r);
	return rc;
}

int coffer_message_read(struct coffer_message_reader *r, void *buf, size_t cap, size_t *n_r)
{
	int rc;

	rc = coffer_blob_reader_read(r->blob, buf, cap, n_r);
	if (rc < 0)
		return rc == COFFER_ECORRUPT ? damaged(r, coffer_errmsg())
		                             : coffer_err_prefix(rc, "%s: ", r->what);
	r->read_so_far += *n_r;
	if (r->read_so_far > r->rec.size || (*n_r == 0 && r->read_so_far != r->rec.size))
		return damaged(r, "its size differs from the index");
	return 0;
}

int coffer_message_pread(struct coffer_message_reader *r, void *buf, size_t cap, uint64_t off,
                         size_t *n_r)
{
	int rc;

	rc = coffer_blob_reader_pread(r->blob, buf, cap, off, n_r);
	if (rc < 0)
		return rc == COFFER_ECORRUPT ? damaged(r, coffer_errmsg())
		                             : coffer_err_prefix(rc, "%s: ", r->what);
	return 0;
}

const struct coffer_message_rec *coffer_message_record(const struct coffer_message_reader *r)
{
	return &r->rec;
}

void coffer_message_close(struct coffer_message_reader **rp)
{
	struct coffer_message_reader *r = rp ? *rp : NULL;

	if (r == NULL)
		return;
	coffer_blob_reader_free(&r->blob);
	if (r->fd >= 0)
		close(r->fd);
	free(r->what);
	free(r);
	*rp = NULL;
}
