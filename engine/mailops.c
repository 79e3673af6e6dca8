/*
 * mailops.c: folder and message operations for the mount (see mailops.h).
 *
 * Keys (docs/design.md section 2): folders acct || fid; folder_names acct ||
 * MAC("fold", acct, name); messages acct || fid || uid; msg_names acct || fid
 * || MAC("mnam", ...). Deleting a folder therefore deletes key prefixes
 * acct || fid in messages, msg_names, keywords and ctlfiles, after dropping
 * one blob reference per message.
 *
 * Moves keep the message's blob and its name box: the box is bound to
 * (acct, blob id), not to the folder, so it moves as it stands unless the
 * unique name changes.
 */
#include "mailops.h"

#include "account.h"
#include "blob.h"
#include "buf.h"
#include "ctlfile.h"
#include "errors.h"
#include "folder.h"
#include "message.h"
#include "names.h"

#include <stdlib.h>
#include <string.h>

/* Box layouts and name keys come from folder.h and message.h, the only places
 * that know them. */

static int find_folder(struct coffer_txn *t, struct coffer_store *st, const unsigned char *acct,
                       const char *canon, uint32_t *fid_r)
{
	unsigned char key[COFFER_KEY_FOLDER_NAME];
	const void *v;
	size_t n;
	int rc;

	/* Set on every path, as in next_uid(): a failure returns
	 * coffer_err_set()'s value, which the compiler cannot see is negative,
	 * so callers testing rc < 0 look to it (-Wmaybe-uninitialized at -O2)
	 * as if they could go on with *fid_r unset. UINT32_MAX names no folder:
	 * coffer_folder_resolve_txn() never hands it out. */
	*fid_r = UINT32_MAX;
	rc = coffer_folder_name_key(st, acct, canon, key);
	if (rc == 0)
		rc = coffer_txn_get(t, COFFER_DB_FOLDER_NAMES, key, sizeof key, &v, &n);
	if (rc == COFFER_ENOTFOUND)
		return coffer_err_set(COFFER_ENOTFOUND, "folder does not exist");
	if (rc < 0)
		return rc;
	if (n != 4)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged folder name record");
	*fid_r = coffer_get_u32be(v);
	return 0;
}

int coffer_mailops_folder_create_txn(struct coffer_txn *t, struct coffer_store *st,
                                     const unsigned char *acct, const char *canon,
                                     const struct coffer_acct_secret *secret, int64_t now,
                                     uint32_t *fid_r)
{
	int created = 0, rc;

	rc = coffer_folder_resolve_txn(t, st, acct, canon, 1, secret, now, fid_r, &created);
	if (rc == 0 && !created)
		return coffer_err_set(COFFER_EEXIST, "folder already exists");
	return rc;
}

int coffer_mailops_folder_name_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                                   const struct coffer_acct_secret *secret, struct coffer_buf *out)
{
	struct coffer_folder_rec rec;
	int rc;

	rc = coffer_folder_get_txn(t, acct, fid, &rec);
	if (rc < 0)
		return rc;
	return coffer_folder_name_open(acct, fid, rec.name_box, rec.name_box_len, secret, out);
}

/* Renames one folder record: new name box, new folder_names entry. */
static int rename_one(struct coffer_txn *t, struct coffer_store *st, const unsigned char *acct,
                      uint32_t fid, const char *from, const char *to,
                      const struct coffer_acct_secret *secret)
{
	unsigned char okey[COFFER_KEY_FOLDER_NAME], nkey[COFFER_KEY_FOLDER_NAME];
	unsigned char fidbuf[4];
	struct coffer_folder_rec rec;
	struct coffer_buf box = COFFER_BUF_INIT;
	int rc;

	rc = coffer_folder_name_key(st, acct, from, okey);
	if (rc == 0)
		rc = coffer_folder_name_key(st, acct, to, nkey);
	if (rc == 0)
		rc = coffer_folder_get_txn(t, acct, fid, &rec);
	if (rc < 0)
		return rc;
	rc = coffer_folder_name_box(&box, acct, fid, to, secret, NULL);
	if (rc < 0)
		goto out;
	rec.name_box = box.data;
	rec.name_box_len = box.len;
	rc = coffer_folder_put_txn(t, acct, fid, &rec);
	if (rc == 0)
		rc = coffer_txn_del(t, COFFER_DB_FOLDER_NAMES, okey, sizeof okey);
	coffer_put_u32be(fidbuf, fid);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_FOLDER_NAMES, nkey, sizeof nkey, fidbuf, 4,
		                    COFFER_PUT_NOOVERWRITE);
	if (rc == COFFER_EEXIST)
		rc = coffer_err_set(COFFER_EEXIST, "folder already exists");
out:
	coffer_buf_free(&box);
	return rc;
}

struct sub_entry {
	uint32_t fid;
	char *name;
};

struct sub_args {
	const unsigned char *acct;
	const struct coffer_acct_secret *secret;
	const char *prefix; /* "from/" */
	size_t plen;
	struct sub_entry *v;
	size_t n, cap;
};

static int collect_sub(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct sub_args *a = arg;
	struct coffer_folder_rec rec;
	struct coffer_buf name = COFFER_BUF_INIT;

	uint32_t fid;
	int rc;

	if (kl != COFFER_KEY_FOLDER)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged folder key");
	fid = coffer_get_u32be((const unsigned char *)k + COFFER_ID_BYTES);
	rc = coffer_folder_rec_decode(val, vl, &rec);
	if (rc < 0)
		return rc;
	if (coffer_folder_name_open(a->acct, fid, rec.name_box, rec.name_box_len, a->secret,
	                            &name) < 0) {
		coffer_buf_free(&name);
		return COFFER_ECORRUPT;
	}
	if (name.len <= a->plen || memcmp(name.data, a->prefix, a->plen) != 0) {
		coffer_buf_free(&name);
		return 0;
	}
	if (coffer_array_grow(&a->v, &a->cap, a->n, sizeof *a->v, 8) < 0) {
		coffer_buf_free(&name);
		return coffer_err_set(COFFER_ENOMEM, "mailops: out of memory");
	}
	a->v[a->n].fid = fid;
	a->v[a->n].name = (char *)name.data; /* NUL-terminated, owned now */
	a->n++;
	return 0;
}

int coffer_mailops_folder_rename_txn(struct coffer_txn *t, struct coffer_store *st,
                                     const unsigned char *acct, const char *from, const char *to,
                                     int subfolders, const struct coffer_acct_secret *secret)
{
	struct sub_args a;
	struct coffer_buf prefix = COFFER_BUF_INIT, target = COFFER_BUF_INIT;
	size_t flen = strlen(from);
	uint32_t fid, other;
	int rc;

	memset(&a, 0, sizeof a);
	if (coffer_names_is_inbox(from) || coffer_names_is_inbox(to))
		return coffer_err_set(COFFER_EINVAL, "INBOX cannot be renamed, nor renamed to");
	if (strncmp(to, from, flen) == 0 && (to[flen] == '/' || to[flen] == '\0'))
		return coffer_err_set(COFFER_EINVAL, "a folder cannot be renamed under itself");
	rc = find_folder(t, st, acct, from, &fid);
	if (rc < 0)
		return rc;
	rc = find_folder(t, st, acct, to, &other);
	if (rc == 0)
		return coffer_err_set(COFFER_EEXIST, "folder already exists");
	if (rc != COFFER_ENOTFOUND)
		return rc;
	if (subfolders) {
		coffer_buf_printf(&prefix, "%s/", from);
		rc = coffer_buf_ok(&prefix);
		if (rc < 0)
			goto out;
		a.acct = acct;
		a.secret = secret;
		a.prefix = coffer_buf_str(&prefix);
		a.plen = prefix.len;
		rc = coffer_txn_scan(t, COFFER_DB_FOLDERS, acct, COFFER_ID_BYTES, collect_sub, &a);
		if (rc < 0)
			goto out;
	}
	rc = rename_one(t, st, acct, fid, from, to, secret);
	for (size_t i = 0; rc == 0 && i < a.n; i++) {
		coffer_buf_reset(&target);
		coffer_buf_printf(&target, "%s%s", to, a.v[i].name + flen);
		rc = coffer_buf_ok(&target);
		if (rc == 0)
			rc = rename_one(t, st, acct, a.v[i].fid, a.v[i].name,
			                coffer_buf_str(&target), secret);
	}
	if (rc == 0)
		rc = coffer_account_touch_txn(t, acct);
out:
	for (size_t i = 0; i < a.n; i++)
		free(a.v[i].name);
	free(a.v);
	coffer_buf_free(&prefix);
	coffer_buf_free(&target);
	return rc;
}

struct blob_list {
	unsigned char (*ids)[COFFER_ID_BYTES];
	size_t n, cap;
};

static int collect_blob(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct blob_list *b = arg;
	struct coffer_message_rec rec;
	int rc;

	rc = coffer_message_rec_decode(val, vl, &rec);
	if (rc < 0)
		return rc;
	if (coffer_array_grow(&b->ids, &b->cap, b->n, sizeof *b->ids, 64) < 0)
		return coffer_err_set(COFFER_ENOMEM, "mailops: out of memory");
	memcpy(b->ids[b->n++], rec.blob_id, COFFER_ID_BYTES);
	return 0;
}

int coffer_mailops_folder_delete_txn(struct coffer_txn *t, struct coffer_store *st,
                                     const unsigned char *acct, const char *canon, int64_t now,
                                     uint64_t *messages_r)
{
	unsigned char fkey[COFFER_KEY_FOLDER], nkey[COFFER_KEY_FOLDER_NAME];
	struct blob_list b = { NULL, 0, 0 };
	uint32_t fid;
	int rc;

	if (coffer_names_is_inbox(canon))
		return coffer_err_set(COFFER_EINVAL, "INBOX cannot be deleted");
	rc = find_folder(t, st, acct, canon, &fid);
	if (rc < 0)
		return rc;
	coffer_key_folder(fkey, acct, fid);
	rc = coffer_txn_scan(t, COFFER_DB_MESSAGES, fkey, sizeof fkey, collect_blob, &b);
	for (size_t i = 0; rc == 0 && i < b.n; i++)
		rc = coffer_blob_unref_txn(t, acct, b.ids[i], now);
	if (rc == 0)
		rc = coffer_txn_del_prefix(t, COFFER_DB_MESSAGES, fkey, sizeof fkey, NULL);
	if (rc == 0)
		rc = coffer_txn_del_prefix(t, COFFER_DB_MSG_NAMES, fkey, sizeof fkey, NULL);
	if (rc == 0)
		rc = coffer_txn_del_prefix(t, COFFER_DB_KEYWORDS, fkey, sizeof fkey, NULL);
	if (rc == 0)
		rc = coffer_ctlfile_delete_folder_txn(t, acct, fid, now);
	if (rc == 0)
		rc = coffer_txn_del(t, COFFER_DB_FOLDERS, fkey, sizeof fkey);
	if (rc == 0)
		rc = coffer_folder_name_key(st, acct, canon, nkey);
	if (rc == 0)
		rc = coffer_txn_del(t, COFFER_DB_FOLDER_NAMES, nkey, sizeof nkey);
	if (rc == 0)
		rc = coffer_account_touch_txn(t, acct);
	if (rc == 0 && messages_r)
		*messages_r = b.n;
	free(b.ids);
	return rc;
}

/* Allocates the next uid of folder fid. */
static int next_uid(struct coffer_txn *t, const unsigned char *acct, uint32_t fid, uint32_t *uid_r)
{
	struct coffer_folder_rec frec;
	int rc;

	*uid_r = 0; /* no message has uid 0; see find_folder() for why */
	rc = coffer_folder_get_txn(t, acct, fid, &frec);
	if (rc < 0)
		return rc;
	if (frec.uidnext == UINT32_MAX)
		return coffer_err_set(COFFER_ELIMIT, "folder %u has run out of uids", fid);
	*uid_r = frec.uidnext++;
	return coffer_folder_put_txn(t, acct, fid, &frec);
}

static int put_name(struct coffer_txn *t, struct coffer_store *st, const unsigned char *acct,
                    uint32_t fid, const char *unique, size_t n, uint32_t uid)
{
	unsigned char nkey[COFFER_KEY_MSG_NAME], uidbuf[4];
	int rc;

	rc = coffer_message_name_key(st, acct, fid, unique, n, nkey);
	coffer_put_u32be(uidbuf, uid);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_MSG_NAMES, nkey, sizeof nkey, uidbuf, 4,
		                    COFFER_PUT_NOOVERWRITE);
	if (rc == COFFER_EEXIST)
		rc = coffer_err_set(COFFER_EEXIST, "folder %u already has a message with that name",
		                    fid);
	return rc;
}

static int del_name(struct coffer_txn *t, struct coffer_store *st, const unsigned char *acct,
                    uint32_t fid, const char *unique, size_t n)
{
	unsigned char nkey[COFFER_KEY_MSG_NAME];
	int rc;

	rc = coffer_message_name_key(st, acct, fid, unique, n, nkey);
	if (rc == 0)
		rc = coffer_txn_del(t, COFFER_DB_MSG_NAMES, nkey, sizeof nkey);
	if (rc == COFFER_ENOTFOUND)
		rc = coffer_err_set(COFFER_ECORRUPT, "index: message has no name entry");
	return rc;
}

static int put_message(struct coffer_txn *t, const unsigned char *acct, uint32_t fid, uint32_t uid,
                       const struct coffer_message_rec *rec, int overwrite)
{
	unsigned char key[COFFER_KEY_MESSAGE];
	struct coffer_buf val = COFFER_BUF_INIT;
	int rc;

	coffer_key_message(key, acct, fid, uid);
	rc = coffer_message_rec_encode(rec, &val);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_MESSAGES, key, sizeof key, val.data, val.len,
		                    overwrite ? 0 : COFFER_PUT_NOOVERWRITE);
	coffer_buf_free(&val);
	return rc;
}

int coffer_mailops_message_place_txn(struct coffer_txn *t, struct coffer_store *st,
                                     const unsigned char *acct,
                                     const struct coffer_mailops_place *p,
                                     const struct coffer_acct_secret *secret, uint32_t *uid_r)
{
	struct coffer_message_rec rec;
	struct coffer_buf box = COFFER_BUF_INIT;
	unsigned char key[COFFER_KEY_MESSAGE];
	int same_name, rc;
	uint32_t uid;

	rc = coffer_message_get_txn(t, acct, p->src_fid, p->uid, &rec);
	if (rc < 0)
		return rc;
	same_name = p->unique_n == p->old_n && memcmp(p->unique, p->old_unique, p->old_n) == 0;
	rec.flags = p->flags;
	rec.keywords = p->keywords;
	rec.is_new = p->is_new;
	if (!same_name || rec.name_box == NULL) {
		/* a derived name cannot be kept by a record in another folder
		 * with another uid only if it still derives the same: always box it
		 * when the name is given explicitly and differs, or the record
		 * had none and the place changes the name */
		if (!same_name) {
			rc = coffer_message_name_box(&box, acct, rec.blob_id, p->unique,
			                             p->unique_n, secret, NULL);
			if (rc < 0)
				goto out;
			rec.name_box = box.data;
			rec.name_box_len = box.len;
		}
	} else {
		/* the box points into the map: copy it before writing */
		rc = coffer_buf_append(&box, rec.name_box, rec.name_box_len);
		if (rc < 0)
			goto out;
		rec.name_box = box.data;
	}

	if (p->dst_fid == p->src_fid && !p->keep_src) {
		uid = p->uid;
		if (!same_name) {
			rc = del_name(t, st, acct, p->src_fid, p->old_unique, p->old_n);
			if (rc == 0)
				rc = put_name(t, st, acct, p->dst_fid, p->unique, p->unique_n, uid);
		}
		if (rc == 0)
			rc = put_message(t, acct, p->dst_fid, uid, &rec, 1);
	} else {
		rc = next_uid(t, acct, p->dst_fid, &uid);
		if (rc == 0)
			rc = put_name(t, st, acct, p->dst_fid, p->unique, p->unique_n, uid);
		if (rc == 0)
			rc = put_message(t, acct, p->dst_fid, uid, &rec, 0);
		if (rc == 0 && p->keep_src) {
			rc = coffer_blob_ref_txn(t, acct, rec.blob_id);
		} else if (rc == 0) {
			rc = del_name(t, st, acct, p->src_fid, p->old_unique, p->old_n);
			coffer_key_message(key, acct, p->src_fid, p->uid);
			if (rc == 0)
				rc = coffer_txn_del(t, COFFER_DB_MESSAGES, key, sizeof key);
		}
	}
	if (rc == 0)
		rc = coffer_account_touch_txn(t, acct);
	if (rc == 0)
		*uid_r = uid;
out:
	coffer_buf_free(&box);
	return rc;
}

int coffer_mailops_message_link_blob_txn(struct coffer_txn *t, struct coffer_store *st,
                                         const unsigned char *acct, uint32_t fid,
                                         const struct coffer_message_rec *rec, const char *unique,
                                         size_t unique_n, const struct coffer_acct_secret *secret,
                                         uint32_t *uid_r)
{
	struct coffer_message_rec r = *rec;
	struct coffer_buf box = COFFER_BUF_INIT;

	uint32_t uid;
	int rc;

	rc = coffer_blob_ref_txn(t, acct, rec->blob_id);
	if (rc == COFFER_ENOTFOUND)
		rc = coffer_err_set(COFFER_ENOTFOUND, "the linked message was expunged meanwhile");
	if (rc < 0)
		return rc;
	rc = coffer_message_name_box(&box, acct, rec->blob_id, unique, unique_n, secret, NULL);
	if (rc < 0)
		goto out;
	r.name_box = box.data;
	r.name_box_len = box.len;
	rc = next_uid(t, acct, fid, &uid);
	if (rc == 0)
		rc = put_name(t, st, acct, fid, unique, unique_n, uid);
	if (rc == 0)
		rc = put_message(t, acct, fid, uid, &r, 0);
	if (rc == 0)
		rc = coffer_account_touch_txn(t, acct);
	if (rc == 0)
		*uid_r = uid;
out:
	coffer_buf_free(&box);
	return rc;
}
