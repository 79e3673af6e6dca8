/*
 * folder.c: folders of an account (see folder.h).
 *
 * Keys: folders = acct || id (u32 BE); folder_names = acct || MAC("fold",
 * acct, name). The folder name box has AD "fold-name" || acct || id (BE), so
 * it cannot be moved to another folder record unnoticed.
 */
#include "folder.h"

#include "buf.h"
#include "errors.h"
#include "names.h"
#include "record.h"

#include <stdlib.h>
#include <string.h>

#define NAME_AD_LEN (9 + COFFER_ID_BYTES + 4)

static void folder_name_ad(unsigned char *ad, const unsigned char *acct, uint32_t fid)
{
	memcpy(ad, "fold-name", 9);
	memcpy(ad + 9, acct, COFFER_ID_BYTES);
	coffer_put_u32be(ad + 9 + COFFER_ID_BYTES, fid);
}

int coffer_folder_name_key(struct coffer_store *st, const unsigned char *acct, const char *canon,
                           unsigned char key[COFFER_KEY_FOLDER_NAME])
{
	memcpy(key, acct, COFFER_ID_BYTES);
	return coffer_store_name_mac(st, "fold", acct, COFFER_ID_BYTES, canon, strlen(canon),
	                             key + COFFER_ID_BYTES);
}

/* Under secret if given, else with sealer if given, else sealed to pk. */
static int name_box(struct coffer_buf *out, const unsigned char *acct, uint32_t fid,
                    const char *canon, const struct coffer_acct_secret *secret,
                    struct coffer_sealer *sealer, const unsigned char *pk)
{
	unsigned char ad[NAME_AD_LEN];

	folder_name_ad(ad, acct, fid);
	if (secret)
		return coffer_box_sym(out, canon, strlen(canon), ad, sizeof ad, secret);
	if (sealer)
		return coffer_box_seal_with(out, canon, strlen(canon), ad, sizeof ad, sealer);
	return coffer_box_seal(out, canon, strlen(canon), ad, sizeof ad, pk);
}

int coffer_folder_name_box(struct coffer_buf *out, const unsigned char *acct, uint32_t fid,
                           const char *canon, const struct coffer_acct_secret *secret,
                           const unsigned char *pk)
{
	return name_box(out, acct, fid, canon, secret, NULL, pk);
}

int coffer_folder_name_open(const unsigned char *acct, uint32_t fid, const unsigned char *box,
                            size_t n, const struct coffer_acct_secret *secret,
                            struct coffer_buf *out)
{
	unsigned char ad[NAME_AD_LEN];

	folder_name_ad(ad, acct, fid);
	if (coffer_box_open(out, box, n, ad, sizeof ad, secret) < 0)
		return coffer_err_set(COFFER_ECORRUPT, "folder %u: name cannot be decrypted", fid);
	return 0;
}

int coffer_folder_get_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                          struct coffer_folder_rec *rec_r)
{
	unsigned char key[COFFER_KEY_FOLDER];
	const void *v;
	size_t n;
	int rc;

	coffer_key_folder(key, acct, fid);
	rc = coffer_txn_get(t, COFFER_DB_FOLDERS, key, sizeof key, &v, &n);
	if (rc < 0)
		return rc;
	return coffer_folder_rec_decode(v, n, rec_r);
}

int coffer_folder_put_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                          const struct coffer_folder_rec *rec)
{
	unsigned char key[COFFER_KEY_FOLDER];
	struct coffer_buf b = COFFER_BUF_INIT;
	int rc;

	coffer_key_folder(key, acct, fid);
	rc = coffer_folder_rec_encode(rec, &b);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_FOLDERS, key, sizeof key, b.data, b.len, 0);
	coffer_buf_free(&b);
	return rc;
}

static int max_uidvalidity(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	uint32_t *max = arg;
	struct coffer_folder_rec rec;

	if (coffer_folder_rec_decode(v, vl, &rec) == 0 && rec.uidvalidity > *max)
		*max = rec.uidvalidity;
	return 0;
}

static int resolve_txn(struct coffer_txn *t, struct coffer_store *st, const unsigned char *acct,
                       const char *canon, int create, const struct coffer_acct_secret *secret,
                       struct coffer_sealer *sealer, int64_t now, uint32_t *fid_r, int *created_r)
{
	unsigned char key[COFFER_KEY_FOLDER_NAME], fidbuf[4];
	struct coffer_account_rec arec;
	struct coffer_folder_rec frec;
	struct coffer_buf box = COFFER_BUF_INIT;
	const void *v;
	size_t n;
	uint32_t fid, uidvalidity = 0;
	int rc;

	if (created_r)
		*created_r = 0;
	rc = coffer_folder_name_key(st, acct, canon, key);
	if (rc < 0)
		return rc;
	rc = coffer_txn_get(t, COFFER_DB_FOLDER_NAMES, key, sizeof key, &v, &n);
	if (rc == 0) {
		if (n != 4)
			return coffer_err_set(COFFER_ECORRUPT, "index: damaged folder name record");
		*fid_r = coffer_get_u32be(v);
		return 0;
	}
	if (rc != COFFER_ENOTFOUND)
		return rc;
	if (!create)
		return coffer_err_set(COFFER_ENOTFOUND, "folder %s does not exist", canon);

	rc = coffer_account_get_txn(t, acct, &arec);
	if (rc < 0)
		return rc;
	fid = coffer_names_is_inbox(canon) ? COFFER_FOLDER_INBOX : arec.next_folder_id;
	if (fid != COFFER_FOLDER_INBOX) {
		if (arec.next_folder_id == UINT32_MAX)
			return coffer_err_set(COFFER_ELIMIT, "account has run out of folder ids");
		arec.next_folder_id++;
		rc = coffer_account_put_txn(t, acct, &arec);
		if (rc < 0)
			return rc;
	}
	rc = coffer_txn_scan(t, COFFER_DB_FOLDERS, acct, COFFER_ID_BYTES, max_uidvalidity,
	                     &uidvalidity);
	if (rc < 0)
		return rc;
	rc = name_box(&box, acct, fid, canon, secret, sealer, arec.pk);
	if (rc < 0)
		goto out;
	memset(&frec, 0, sizeof frec);
	frec.uidvalidity = (uint32_t)(now / 1000000000LL);
	if (frec.uidvalidity <= uidvalidity)
		frec.uidvalidity = uidvalidity + 1;
	frec.uidnext = 1;
	frec.created_at = now;
	frec.name_box = box.data;
	frec.name_box_len = box.len;
	rc = coffer_folder_put_txn(t, acct, fid, &frec);
	if (rc < 0)
		goto out;
	coffer_put_u32be(fidbuf, fid);
	rc = coffer_txn_put(t, COFFER_DB_FOLDER_NAMES, key, sizeof key, fidbuf, 4, 0);
	if (rc == 0)
		rc = coffer_account_touch_txn(t, acct);
	if (rc < 0)
		goto out;
	*fid_r = fid;
	if (created_r)
		*created_r = 1;
out:
	coffer_buf_free(&box);
	return rc;
}

int coffer_folder_resolve_txn(struct coffer_txn *t, struct coffer_store *st,
                              const unsigned char *acct, const char *canon, int create,
                              const struct coffer_acct_secret *secret, int64_t now, uint32_t *fid_r,
                              int *created_r)
{
	return resolve_txn(t, st, acct, canon, create, secret, NULL, now, fid_r, created_r);
}

int coffer_folder_resolve_sealed_txn(struct coffer_txn *t, struct coffer_store *st,
                                     const unsigned char *acct, const char *canon,
                                     struct coffer_sealer *sealer, int64_t now, uint32_t *fid_r,
                                     int *created_r)
{
	return resolve_txn(t, st, acct, canon, 1, NULL, sealer, now, fid_r, created_r);
}

struct folder_entry {
	struct coffer_folder_info info;
	char *name;
};

struct list_args {
	struct coffer_mailbox *mb;
	struct folder_entry *v;
	size_t n, cap;
};

static int collect_folder(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct list_args *a = arg;
	struct coffer_folder_rec rec;
	struct coffer_buf name = COFFER_BUF_INIT;
	unsigned char ad[NAME_AD_LEN];
	uint32_t fid;
	int rc;

	if (kl != COFFER_KEY_FOLDER)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged folder key");
	fid = coffer_get_u32be((const unsigned char *)k + COFFER_ID_BYTES);
	rc = coffer_folder_rec_decode(val, vl, &rec);
	if (rc < 0)
		return coffer_err_prefix(rc, "folder %u: ", fid);
	folder_name_ad(ad, coffer_mailbox_id(a->mb), fid);
	rc = coffer_box_open(&name, rec.name_box, rec.name_box_len, ad, sizeof ad,
	                     coffer_mailbox_secret(a->mb));
	if (rc < 0) {
		coffer_buf_free(&name);
		return coffer_err_set(COFFER_ECORRUPT,
		                      "account %s: folder %u: name cannot be decrypted",
		                      coffer_mailbox_name(a->mb), fid);
	}
	if (coffer_array_grow(&a->v, &a->cap, a->n, sizeof *a->v, 16) < 0) {
		coffer_buf_free(&name);
		return coffer_err_set(COFFER_ENOMEM, "folder: out of memory");
	}
	memset(&a->v[a->n], 0, sizeof a->v[a->n]);
	a->v[a->n].name = (char *)name.data;
	if (a->v[a->n].name == NULL)
		a->v[a->n].name = strdup("");
	a->v[a->n].info.id = fid;
	a->v[a->n].info.uidvalidity = rec.uidvalidity;
	a->v[a->n].info.uidnext = rec.uidnext;
	a->n++;
	return 0;
}

static int count_message(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct coffer_folder_info *info = arg;
	struct coffer_message_rec m;

	if (coffer_message_rec_decode(val, vl, &m) < 0)
		return COFFER_ECORRUPT;
	info->messages++;
	info->bytes += m.size;
	if (!(m.flags & (1 << 4)))
		info->unseen++;
	return 0;
}

static int list_txn(struct coffer_txn *t, void *arg)
{
	struct list_args *a = arg;
	unsigned char prefix[COFFER_KEY_FOLDER];
	int rc;

	rc = coffer_txn_scan(t, COFFER_DB_FOLDERS, coffer_mailbox_id(a->mb), COFFER_ID_BYTES,
	                     collect_folder, a);
	for (size_t i = 0; rc == 0 && i < a->n; i++) {
		coffer_key_folder(prefix, coffer_mailbox_id(a->mb), a->v[i].info.id);
		rc = coffer_txn_scan(t, COFFER_DB_MESSAGES, prefix, sizeof prefix, count_message,
		                     &a->v[i].info);
	}
	return rc;
}

static int by_name(const void *pa, const void *pb)
{
	const struct folder_entry *a = pa, *b = pb;

	/* INBOX first, then byte order. */
	if (a->info.id == COFFER_FOLDER_INBOX || b->info.id == COFFER_FOLDER_INBOX)
		return a->info.id == COFFER_FOLDER_INBOX ? -1 : 1;
	return strcmp(a->name, b->name);
}

int coffer_folder_list(struct coffer_mailbox *mb, coffer_folder_fn fn, void *arg)
{
	struct list_args a = { mb, NULL, 0, 0 };
	int rc;

	rc = coffer_index_view(coffer_store_index(coffer_mailbox_store(mb)), list_txn, &a);
	if (rc == 0)
		qsort(a.v, a.n, sizeof *a.v, by_name);
	for (size_t i = 0; rc == 0 && i < a.n; i++) {
		a.v[i].info.name = a.v[i].name;
		rc = fn(&a.v[i].info, arg);
	}
	for (size_t i = 0; i < a.n; i++)
		free(a.v[i].name);
	free(a.v);
	return rc;
}

struct find_args {
	struct coffer_mailbox *mb;
	const char *canon;
	uint32_t *fid;
};

static int find_txn(struct coffer_txn *t, void *arg)
{
	struct find_args *a = arg;

	return coffer_folder_resolve_txn(t, coffer_mailbox_store(a->mb), coffer_mailbox_id(a->mb),
	                                 a->canon, 0, NULL, 0, a->fid, NULL);
}

int coffer_folder_find(struct coffer_mailbox *mb, const char *name, uint32_t *fid_r)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct find_args a;
	int rc;

	rc = coffer_names_folder(name, strlen(name), &canon);
	if (rc == 0) {
		a = (struct find_args){ mb, coffer_buf_str(&canon), fid_r };
		rc = coffer_index_view(coffer_store_index(coffer_mailbox_store(mb)), find_txn, &a);
		if (rc == COFFER_ENOTFOUND)
			coffer_err_set(rc, "account %s: folder %s does not exist",
			               coffer_mailbox_name(mb), coffer_buf_str(&canon));
	}
	coffer_buf_free(&canon);
	return rc;
}

static void kw_key(unsigned char *k, const unsigned char *acct, uint32_t fid, unsigned idx)
{
	coffer_key_folder(k, acct, fid);
	k[COFFER_KEY_FOLDER] = (unsigned char)idx;
}

static void kw_ad(unsigned char *ad, const unsigned char *acct, uint32_t fid, unsigned idx)
{
	ad[0] = 'k';
	ad[1] = 'w';
	kw_key(ad + 2, acct, fid, idx);
}

int coffer_folder_keywords_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                               const struct coffer_acct_secret *secret,
                               char *names_r[COFFER_FOLDER_KEYWORDS_MAX])
{
	unsigned char key[COFFER_KEY_KEYWORD], ad[2 + COFFER_KEY_KEYWORD];
	struct coffer_buf name = COFFER_BUF_INIT;
	const void *v;
	size_t n;
	int rc = 0;

	memset(names_r, 0, COFFER_FOLDER_KEYWORDS_MAX * sizeof *names_r);
	for (unsigned i = 0; i < COFFER_FOLDER_KEYWORDS_MAX; i++) {
		kw_key(key, acct, fid, i);
		rc = coffer_txn_get(t, COFFER_DB_KEYWORDS, key, sizeof key, &v, &n);
		if (rc == COFFER_ENOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		kw_ad(ad, acct, fid, i);
		coffer_buf_reset(&name);
		rc = coffer_box_open(&name, v, n, ad, sizeof ad, secret);
		if (rc < 0) {
			rc = coffer_err_set(COFFER_ECORRUPT,
			                    "folder %u: keyword %u cannot be decrypted", fid, i);
			break;
		}
		names_r[i] = strdup(coffer_buf_str(&name));
		if (names_r[i] == NULL) {
			rc = coffer_err_set(COFFER_ENOMEM, "folder: out of memory");
			break;
		}
	}
	coffer_buf_free(&name);
	if (rc < 0)
		coffer_folder_keywords_free(names_r);
	return rc;
}

void coffer_folder_keywords_free(char *names[COFFER_FOLDER_KEYWORDS_MAX])
{
	for (unsigned i = 0; i < COFFER_FOLDER_KEYWORDS_MAX; i++) {
		free(names[i]);
		names[i] = NULL;
	}
}

int coffer_folder_keyword_intern_txn(struct coffer_txn *t, const unsigned char *acct, uint32_t fid,
                                     const char *name, const struct coffer_acct_secret *secret,
                                     unsigned *idx_r)
{
	char *names[COFFER_FOLDER_KEYWORDS_MAX];
	unsigned char key[COFFER_KEY_KEYWORD], ad[2 + COFFER_KEY_KEYWORD];
	struct coffer_buf box = COFFER_BUF_INIT;
	unsigned i, free_idx = COFFER_FOLDER_KEYWORDS_MAX;
	int rc;

	rc = coffer_folder_keywords_txn(t, acct, fid, secret, names);
	if (rc < 0)
		return rc;
	for (i = 0; i < COFFER_FOLDER_KEYWORDS_MAX; i++) {
		if (names[i] && strcmp(names[i], name) == 0)
			break;
		if (names[i] == NULL && free_idx == COFFER_FOLDER_KEYWORDS_MAX)
			free_idx = i;
	}
	coffer_folder_keywords_free(names);
	if (i < COFFER_FOLDER_KEYWORDS_MAX) {
		*idx_r = i;
		return 0;
	}
	if (free_idx == COFFER_FOLDER_KEYWORDS_MAX)
		return coffer_err_set(COFFER_ELIMIT, "folder %u already has %d keywords", fid,
		                      COFFER_FOLDER_KEYWORDS_MAX);
	kw_key(key, acct, fid, free_idx);
	kw_ad(ad, acct, fid, free_idx);
	rc = coffer_box_sym(&box, name, strlen(name), ad, sizeof ad, secret);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_KEYWORDS, key, sizeof key, box.data, box.len, 0);
	if (rc == 0)
		rc = coffer_account_touch_txn(t, acct);
	coffer_buf_free(&box);
	if (rc == 0)
		*idx_r = free_idx;
	return rc;
}

int coffer_folder_keyword_open(const unsigned char *acct, uint32_t fid, unsigned idx,
                               const unsigned char *box, size_t n,
                               const struct coffer_acct_secret *secret, struct coffer_buf *out)
{
	unsigned char ad[2 + COFFER_KEY_KEYWORD];

	kw_ad(ad, acct, fid, idx);
	if (coffer_box_open(out, box, n, ad, sizeof ad, secret) < 0)
		return coffer_err_set(COFFER_ECORRUPT, "folder %u: keyword %u cannot be decrypted",
		                      fid, idx);
	return 0;
}
