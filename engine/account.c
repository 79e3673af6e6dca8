/*
 * account.c: account lifecycle and lookup (see account.h).
 *
 * Creation: a random 16-byte id, an X25519 key pair, the secret key wrapped
 * under the key file's current epoch, the name in an account box under the
 * new account's data key (AD "acct-name" || id), and INBOX (folder 0). All in
 * one write transaction, after the name's MAC has been checked for a live
 * holder. A shredded holder of the same name may be replaced: its tombstone
 * stays under its old id.
 *
 * Lookup by name needs only the index key: MAC("acct", name).
 */
#include "account.h"

#include "clock.h"
#include "errors.h"
#include "folder.h"
#include "names.h"
#include "spool.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(COFFER_TXN_NOTE_ID == COFFER_ID_BYTES, "index.h notes hold account ids");

struct coffer_mailbox {
	struct coffer_store *st;
	unsigned char id[COFFER_ID_BYTES];
	char *name;
	struct coffer_acct_secret *secret;
};

static const char name_ad_label[] = "acct-name";

void coffer_account_info_clear(struct coffer_account_info *info)
{
	free(info->name);
	memset(info, 0, sizeof *info);
}

const char *coffer_account_state_name(uint8_t state)
{
	switch (state) {
	case COFFER_ACCOUNT_ACTIVE: return "active";
	case COFFER_ACCOUNT_TERMINATED: return "terminated";
	case COFFER_ACCOUNT_SHREDDED: return "shredded";
	}
	return "unknown";
}

static void name_ad(unsigned char *ad, const unsigned char *id)
{
	memcpy(ad, name_ad_label, sizeof name_ad_label - 1);
	memcpy(ad + sizeof name_ad_label - 1, id, COFFER_ID_BYTES);
}
#define NAME_AD_LEN (sizeof name_ad_label - 1 + COFFER_ID_BYTES)

static int canon_name(const char *name, size_t n, struct coffer_buf *canon)
{
	return coffer_names_account(name, n, canon);
}

static int name_mac(struct coffer_store *st, const char *canon, unsigned char *mac)
{
	return coffer_store_name_mac(st, "acct", canon, strlen(canon), NULL, 0, mac);
}

int coffer_account_get_txn(struct coffer_txn *t, const unsigned char *id,
                           struct coffer_account_rec *rec_r)
{
	const void *v;
	size_t n;
	int rc;

	rc = coffer_txn_get(t, COFFER_DB_ACCOUNTS, id, COFFER_ID_BYTES, &v, &n);
	if (rc == COFFER_ENOTFOUND)
		return coffer_err_set(COFFER_ECORRUPT, "index: account record missing");
	if (rc < 0)
		return rc;
	return coffer_account_rec_decode(v, n, rec_r);
}

int coffer_account_put_txn(struct coffer_txn *t, const unsigned char *id,
                           const struct coffer_account_rec *rec)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	int rc;

	rc = coffer_account_rec_encode(rec, &b);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_ACCOUNTS, id, COFFER_ID_BYTES, b.data, b.len, 0);
	coffer_buf_free(&b);
	return rc;
}

int coffer_account_name_open(const unsigned char *id, const struct coffer_account_rec *rec,
                             const struct coffer_acct_secret *secret, struct coffer_buf *out)
{
	unsigned char ad[NAME_AD_LEN];

	name_ad(ad, id);
	if (rec->name_box == NULL ||
	    coffer_box_open(out, rec->name_box, rec->name_box_len, ad, sizeof ad, secret) < 0)
		return coffer_err_set(COFFER_ECORRUPT, "an account name cannot be decrypted");
	return 0;
}

int coffer_account_touch_txn(struct coffer_txn *t, const unsigned char *id)
{
	struct coffer_account_rec rec;
	int rc;

	rc = coffer_account_get_txn(t, id, &rec);
	if (rc < 0)
		return rc;
	rec.modseq++;
	rc = coffer_account_put_txn(t, id, &rec);
	if (rc == 0)
		coffer_txn_note_modseq(t, id, rec.modseq - 1, rec.modseq);
	return rc;
}

int coffer_account_lookup_txn(struct coffer_txn *t, struct coffer_store *st, const char *canon,
                              unsigned char id_r[COFFER_ID_BYTES], struct coffer_account_rec *rec_r)
{
	unsigned char mac[COFFER_MAC_BYTES];
	const void *v;
	size_t n;
	int rc;

	rc = name_mac(st, canon, mac);
	if (rc < 0)
		return rc;
	rc = coffer_txn_get(t, COFFER_DB_ACCOUNT_NAMES, mac, sizeof mac, &v, &n);
	if (rc == COFFER_ENOTFOUND)
		return coffer_err_set(COFFER_ENOACCOUNT, "account %s does not exist", canon);
	if (rc < 0)
		return rc;
	if (n != COFFER_ID_BYTES)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged name record for account %s",
		                      canon);
	memcpy(id_r, v, COFFER_ID_BYTES);
	rc = coffer_account_get_txn(t, id_r, rec_r);
	if (rc < 0)
		return coffer_err_prefix(rc, "account %s: ", canon);
	return 0;
}

int coffer_account_check_active(const struct coffer_account_rec *rec, const char *name)
{
	char date[COFFER_CLOCK_ISO_MAX];

	switch (rec->state) {
	case COFFER_ACCOUNT_ACTIVE: return 0;
	case COFFER_ACCOUNT_TERMINATED:
		coffer_clock_format(rec->terminated_at, date);
		return coffer_err_set(COFFER_ETERMINATED, "account %s was terminated on %s", name,
		                      date);
	case COFFER_ACCOUNT_SHREDDED:
		coffer_clock_format_date(rec->shredded_at, date);
		return coffer_err_set(COFFER_ESHREDDED, "account %s was shredded on %s", name,
		                      date);
	}
	return coffer_err_set(COFFER_ECORRUPT, "account %s: unknown state %u", name, rec->state);
}

struct add_args {
	struct coffer_store *st;
	const char *canon;
	const unsigned char *id;
	struct coffer_account_rec *rec;
	const struct coffer_acct_secret *secret;
	int64_t now;
};

static int add_txn(struct coffer_txn *t, void *arg)
{
	struct add_args *a = arg;
	struct coffer_account_rec old;
	unsigned char mac[COFFER_MAC_BYTES], old_id[COFFER_ID_BYTES];
	const void *v;
	size_t n;
	uint32_t fid;
	int rc, created;

	rc = name_mac(a->st, a->canon, mac);
	if (rc < 0)
		return rc;
	rc = coffer_txn_get(t, COFFER_DB_ACCOUNT_NAMES, mac, sizeof mac, &v, &n);
	if (rc == 0 && n == COFFER_ID_BYTES) {
		memcpy(old_id, v, COFFER_ID_BYTES);
		rc = coffer_account_get_txn(t, old_id, &old);
		if (rc < 0)
			return rc;
		if (old.state != COFFER_ACCOUNT_SHREDDED)
			return coffer_err_set(COFFER_EEXIST, "account %s already exists", a->canon);
	} else if (rc != COFFER_ENOTFOUND) {
		return rc < 0 ? rc : coffer_err_set(COFFER_ECORRUPT, "index: damaged name record");
	}
	rc = coffer_txn_put(t, COFFER_DB_ACCOUNT_NAMES, mac, sizeof mac, a->id, COFFER_ID_BYTES, 0);
	if (rc == 0)
		rc = coffer_account_put_txn(t, a->id, a->rec);
	if (rc == 0)
		rc = coffer_folder_resolve_txn(t, a->st, a->id, "INBOX", 1, a->secret, a->now, &fid,
		                               &created);
	return rc;
}

static int fill_info(struct coffer_txn *t, const unsigned char *id,
                     const struct coffer_account_rec *rec, struct coffer_account_info *info);

int coffer_account_add(struct coffer_store *st, const char *name, size_t n,
                       struct coffer_account_info *info_r)
{
	struct coffer_buf canon = COFFER_BUF_INIT, box = COFFER_BUF_INIT;
	struct coffer_account_rec rec;
	struct coffer_acct_secret *secret = NULL;
	struct coffer_keyfile *kf;
	unsigned char id[COFFER_ID_BYTES], ad[NAME_AD_LEN];
	unsigned char *sk = NULL;
	struct add_args a;
	int64_t now;
	int rc;

	rc = canon_name(name, n, &canon);
	if (rc < 0)
		goto out;
	rc = coffer_clock_now(&now);
	if (rc < 0)
		goto out;
	rc = coffer_store_keyfile(st, &kf);
	if (rc < 0)
		goto out;
	sk = coffer_secure_alloc(COFFER_SK_BYTES);
	if (sk == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "account: cannot allocate secure memory");
		goto out;
	}
	memset(&rec, 0, sizeof rec);
	coffer_random(id, sizeof id);
	rc = coffer_crypto_keypair(rec.pk, sk);
	if (rc == 0)
		rc = coffer_acct_secret_new(rec.pk, sk, &secret);
	if (rc == 0)
		rc = coffer_keyfile_wrap(kf, id, sk, &rec.key_epoch, rec.wrapped_sk);
	if (rc < 0)
		goto out;
	name_ad(ad, id);
	rc = coffer_box_sym(&box, canon.data, canon.len, ad, sizeof ad, secret);
	if (rc < 0)
		goto out;
	rec.state = COFFER_ACCOUNT_ACTIVE;
	rec.created_at = now;
	rec.next_folder_id = 1;
	rec.name_box = box.data;
	rec.name_box_len = box.len;
	a = (struct add_args){ st, coffer_buf_str(&canon), id, &rec, secret, now };
	rc = coffer_index_update(coffer_store_index(st), add_txn, &a);
	if (rc < 0)
		goto out;
	if (info_r) {
		memset(info_r, 0, sizeof *info_r);
		memcpy(info_r->id, id, sizeof id);
		info_r->name = strdup(coffer_buf_str(&canon));
		info_r->state = rec.state;
		info_r->created_at = now;
		info_r->folders = 1;
	}
out:
	coffer_secure_free(sk);
	coffer_acct_secret_free(&secret);
	coffer_buf_free(&canon);
	coffer_buf_free(&box);
	return rc;
}

struct count_args {
	struct coffer_account_info *info;
};

static int count_msg(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct coffer_account_info *info = arg;
	struct coffer_message_rec m;

	if (coffer_message_rec_decode(v, vl, &m) < 0)
		return coffer_err_prefix(COFFER_ECORRUPT,
		                         "account %s: ", info->name ? info->name : "?");
	info->messages++;
	info->bytes += m.size;
	return 0;
}

static int count_folder(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct coffer_account_info *info = arg;

	info->folders++;
	return 0;
}

static int fill_info(struct coffer_txn *t, const unsigned char *id,
                     const struct coffer_account_rec *rec, struct coffer_account_info *info)
{
	int rc;

	memcpy(info->id, id, COFFER_ID_BYTES);
	info->state = rec->state;
	info->created_at = rec->created_at;
	info->terminated_at = rec->terminated_at;
	info->shredded_at = rec->shredded_at;
	info->folders = 0;
	info->messages = info->bytes = 0;
	rc = coffer_txn_scan(t, COFFER_DB_FOLDERS, id, COFFER_ID_BYTES, count_folder, info);
	if (rc == 0)
		rc = coffer_txn_scan(t, COFFER_DB_MESSAGES, id, COFFER_ID_BYTES, count_msg, info);
	return rc;
}

struct show_args {
	struct coffer_store *st;
	const char *canon;
	struct coffer_account_info *info;
};

static int show_txn(struct coffer_txn *t, void *arg)
{
	struct show_args *a = arg;
	struct coffer_account_rec rec;
	unsigned char id[COFFER_ID_BYTES];
	int rc;

	rc = coffer_account_lookup_txn(t, a->st, a->canon, id, &rec);
	if (rc < 0)
		return rc;
	return fill_info(t, id, &rec, a->info);
}

int coffer_account_show(struct coffer_store *st, const char *name, size_t n,
                        struct coffer_account_info *info_r)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct show_args a;
	int rc;

	memset(info_r, 0, sizeof *info_r);
	rc = canon_name(name, n, &canon);
	if (rc < 0)
		goto out;
	a = (struct show_args){ st, coffer_buf_str(&canon), info_r };
	rc = coffer_index_view(coffer_store_index(st), show_txn, &a);
	if (rc == 0) {
		info_r->name = strdup(coffer_buf_str(&canon));
		if (info_r->name == NULL)
			rc = coffer_err_set(COFFER_ENOMEM, "account: out of memory");
	}
out:
	coffer_buf_free(&canon);
	return rc;
}

int coffer_account_unlock(struct coffer_store *st, const unsigned char *id,
                          const struct coffer_account_rec *rec,
                          struct coffer_acct_secret **secret_r)
{
	struct coffer_keyfile *kf;
	unsigned char *sk;
	int rc;

	rc = coffer_store_keyfile(st, &kf);
	if (rc < 0)
		return rc;
	sk = coffer_secure_alloc(COFFER_SK_BYTES);
	if (sk == NULL)
		return coffer_err_set(COFFER_ENOMEM, "account: cannot allocate secure memory");
	rc = coffer_keyfile_unwrap(kf, id, rec->key_epoch, rec->wrapped_sk, sk);
	if (rc == 0)
		rc = coffer_acct_secret_new(rec->pk, sk, secret_r);
	coffer_secure_free(sk);
	return rc;
}

struct list_args {
	struct coffer_store *st;
	coffer_account_fn fn;
	void *arg;
	struct coffer_txn *t;
};

static int list_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct list_args *a = arg;
	struct coffer_account_rec rec;
	struct coffer_account_info info;
	struct coffer_acct_secret *secret = NULL;
	struct coffer_buf name = COFFER_BUF_INIT;
	unsigned char ad[NAME_AD_LEN];
	int rc;

	if (kl != COFFER_ID_BYTES)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged account key");
	rc = coffer_account_rec_decode(v, vl, &rec);
	if (rc < 0)
		return rc;
	memset(&info, 0, sizeof info);
	if (rec.state != COFFER_ACCOUNT_SHREDDED) {
		rc = coffer_account_unlock(a->st, k, &rec, &secret);
		if (rc < 0)
			goto out;
		name_ad(ad, k);
		rc = coffer_box_open(&name, rec.name_box, rec.name_box_len, ad, sizeof ad, secret);
		if (rc < 0) {
			rc = coffer_err_set(COFFER_ECORRUPT,
			                    "index: an account name cannot be decrypted");
			goto out;
		}
		info.name = strdup(coffer_buf_str(&name));
	}
	rc = fill_info(a->t, k, &rec, &info);
	if (rc == 0)
		rc = a->fn(&info, a->arg);
out:
	coffer_acct_secret_free(&secret);
	coffer_buf_free(&name);
	coffer_account_info_clear(&info);
	return rc;
}

static int list_txn(struct coffer_txn *t, void *arg)
{
	struct list_args *a = arg;

	a->t = t;
	return coffer_txn_scan(t, COFFER_DB_ACCOUNTS, NULL, 0, list_one, a);
}

int coffer_account_list(struct coffer_store *st, coffer_account_fn fn, void *arg)
{
	struct list_args a = { st, fn, arg, NULL };
	struct coffer_keyfile *kf;
	int rc;

	rc = coffer_store_keyfile(st, &kf);
	if (rc < 0)
		return rc;
	return coffer_index_view(coffer_store_index(st), list_txn, &a);
}

int coffer_account_state_txn(struct coffer_txn *t, void *arg)
{
	const struct coffer_account_state_change *a = arg;
	struct coffer_account_rec rec;
	unsigned char id[COFFER_ID_BYTES];
	int rc;

	rc = coffer_account_lookup_txn(t, a->st, a->canon, id, &rec);
	if (rc < 0)
		return rc;
	if (rec.state == COFFER_ACCOUNT_SHREDDED)
		return coffer_account_check_active(&rec, a->canon);
	if (a->terminate) {
		if (rec.state != COFFER_ACCOUNT_ACTIVE)
			return coffer_err_set(COFFER_EINVAL, "account %s is already terminated",
			                      a->canon);
		rec.state = COFFER_ACCOUNT_TERMINATED;
		rec.terminated_at = a->now;
	} else {
		if (rec.state != COFFER_ACCOUNT_TERMINATED)
			return coffer_err_set(COFFER_EINVAL, "account %s is not terminated",
			                      a->canon);
		rec.state = COFFER_ACCOUNT_ACTIVE;
		rec.terminated_at = 0;
	}
	rec.modseq++;
	rc = coffer_account_put_txn(t, id, &rec);
	if (rc == 0)
		coffer_txn_note_modseq(t, id, rec.modseq - 1, rec.modseq);
	return rc;
}

static int set_state(struct coffer_store *st, const char *name, size_t n, int terminate)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct coffer_account_state_change a;
	int rc;

	rc = canon_name(name, n, &canon);
	if (rc == 0) {
		a = (struct coffer_account_state_change){ st, coffer_buf_str(&canon), terminate,
			                                  0 };
		rc = coffer_clock_now(&a.now);
		if (rc == 0)
			rc = coffer_index_update(coffer_store_index(st), coffer_account_state_txn,
			                         &a);
	}
	coffer_buf_free(&canon);
	return rc;
}

int coffer_account_terminate(struct coffer_store *st, const char *name, size_t n)
{
	return set_state(st, name, n, 1);
}

int coffer_account_reactivate(struct coffer_store *st, const char *name, size_t n)
{
	return set_state(st, name, n, 0);
}

struct open_args {
	struct coffer_store *st;
	const char *canon;
	unsigned char *id;
	struct coffer_account_rec *rec;
};

static int open_txn(struct coffer_txn *t, void *arg)
{
	struct open_args *a = arg;
	int rc;

	rc = coffer_account_lookup_txn(t, a->st, a->canon, a->id, a->rec);
	if (rc == 0)
		rc = coffer_account_check_active(a->rec, a->canon);
	return rc;
}

int coffer_mailbox_open(struct coffer_store *st, const char *name, size_t n,
                        struct coffer_mailbox **mb_r)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct coffer_account_rec rec;
	struct coffer_mailbox *mb;
	struct open_args a;
	int rc;

	*mb_r = NULL;
	mb = calloc(1, sizeof *mb);
	if (mb == NULL)
		return coffer_err_set(COFFER_ENOMEM, "account: out of memory");
	mb->st = st;
	rc = canon_name(name, n, &canon);
	if (rc < 0)
		goto fail;
	a = (struct open_args){ st, coffer_buf_str(&canon), mb->id, &rec };
	rc = coffer_index_view(coffer_store_index(st), open_txn, &a);
	if (rc < 0)
		goto fail;
	/* mail delivered but not indexed yet (engine/spool.h) is shown too; a
	 * reader that may not write the store shows what is indexed */
	if (coffer_spool_absorb(st, mb->id, NULL) < 0)
		coffer_err_clear();
	rc = coffer_account_unlock(st, mb->id, &rec, &mb->secret);
	if (rc < 0) {
		coffer_err_prefix(rc, "account %s: ", coffer_buf_str(&canon));
		goto fail;
	}
	mb->name = strdup(coffer_buf_str(&canon));
	if (mb->name == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "account: out of memory");
		goto fail;
	}
	coffer_buf_free(&canon);
	*mb_r = mb;
	return 0;
fail:
	coffer_buf_free(&canon);
	coffer_mailbox_close(&mb);
	return rc;
}

void coffer_mailbox_close(struct coffer_mailbox **mbp)
{
	struct coffer_mailbox *mb = mbp ? *mbp : NULL;

	if (mb == NULL)
		return;
	coffer_acct_secret_free(&mb->secret);
	free(mb->name);
	free(mb);
	*mbp = NULL;
}

struct coffer_store *coffer_mailbox_store(const struct coffer_mailbox *mb)
{
	return mb->st;
}

const unsigned char *coffer_mailbox_id(const struct coffer_mailbox *mb)
{
	return mb->id;
}

const char *coffer_mailbox_name(const struct coffer_mailbox *mb)
{
	return mb->name;
}

const struct coffer_acct_secret *coffer_mailbox_secret(const struct coffer_mailbox *mb)
{
	return mb->secret;
}
