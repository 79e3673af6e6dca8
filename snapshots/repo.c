/*
 * repo.c: snapshot repositories (see repo.h).
 *
 * The marker object "coffer-target" names the store the target belongs to,
 * so a target cannot be mixed up with another store's (whose key file could
 * not read it anyway, but the message is clearer).
 */
#include "repo.h"

#include "engine/errors.h"
#include "engine/record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define MARKER "coffer-target"
#define MANIFEST_MAX (256u << 20)
#define MARK_BATCH 2000 /* blobs per write transaction: deliveries wait on it */

void coffer_repo_obj_name(char *out, size_t cap, const unsigned char *acct, const char *kind,
                          const char *leaf)
{
	char hex[2 * COFFER_ID_BYTES + 1];

	coffer_hex(hex, acct, COFFER_ID_BYTES);
	snprintf(out, cap, "a/%s/%s/%s", hex, kind, leaf);
}

static void free_ids(struct coffer_repo *r)
{
	for (size_t i = 0; i < r->n_ids; i++)
		free(r->ids[i]);
	free(r->ids);
	r->ids = NULL;
	r->n_ids = 0;
}

static int collect_id(const char *name, uint64_t size, void *arg)
{
	struct coffer_repo *r = arg;
	char **v;

	v = realloc(r->ids, (r->n_ids + 1) * sizeof *v);
	if (v == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	r->ids = v;
	v[r->n_ids] = strdup(name + 5); /* "snap/" */
	if (v[r->n_ids] == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	r->n_ids++;
	return 0;
}

int coffer_repo_refresh(struct coffer_repo *r)
{
	free_ids(r);
	return coffer_target_list(r->target, "snap/", collect_id, r);
}

/* Reads the marker: "coffer-target 1\nstore <hex>\ntarget <hex>\n". */
static int read_marker(struct coffer_repo *r, unsigned char *store_id, unsigned char *target_id)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	char store_hex[2 * COFFER_ID_BYTES + 1], target_hex[2 * COFFER_ID_BYTES + 1];
	int rc;

	rc = coffer_target_get(r->target, MARKER, 4096, &b);
	if (rc < 0) {
		coffer_buf_free(&b);
		return rc;
	}
	if (sscanf(coffer_buf_str(&b), "coffer-target 1\nstore %32[0-9a-f]\ntarget %32[0-9a-f]\n",
	           store_hex, target_hex) != 2 ||
	    strlen(store_hex) != 32 || strlen(target_hex) != 32) {
		coffer_buf_free(&b);
		return coffer_err_set(COFFER_ECORRUPT, "snapshot target %s: damaged marker",
		                      coffer_target_path(r->target));
	}
	for (int i = 0; i < COFFER_ID_BYTES; i++) {
		unsigned v;

		sscanf(store_hex + 2 * i, "%2x", &v);
		store_id[i] = (unsigned char)v;
		sscanf(target_hex + 2 * i, "%2x", &v);
		target_id[i] = (unsigned char)v;
	}
	coffer_buf_free(&b);
	return 0;
}

static int write_marker(struct coffer_repo *r)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	char store_hex[2 * COFFER_ID_BYTES + 1], target_hex[2 * COFFER_ID_BYTES + 1];
	int rc;

	coffer_hex(store_hex, r->store_id, COFFER_ID_BYTES);
	coffer_hex(target_hex, r->target_id, COFFER_ID_BYTES);
	coffer_buf_printf(&b, "coffer-target 1\nstore %s\ntarget %s\n", store_hex, target_hex);
	rc = coffer_target_put(r->target, MARKER, b.data, b.len);
	if (rc == 0)
		rc = coffer_target_sync(r->target);
	coffer_buf_free(&b);
	return rc;
}

static int check_marker(struct coffer_repo *r, int create)
{
	unsigned char store_id[COFFER_ID_BYTES];
	int rc;

	rc = read_marker(r, store_id, r->target_id);
	if (rc == COFFER_ENOTFOUND && create) {
		/* the marker is written by coffer_repo_bind(), once the store agrees */
		r->fresh = 1;
		coffer_random(r->target_id, COFFER_ID_BYTES);
		return 0;
	}
	if (rc == COFFER_ENOTFOUND)
		return coffer_err_set(COFFER_ENOTFOUND, "%s is not a Coffer snapshot target",
		                      coffer_target_path(r->target));
	if (rc == 0 && !coffer_ct_equal(store_id, r->store_id, COFFER_ID_BYTES))
		rc = coffer_err_set(COFFER_EPERM, "snapshot target %s belongs to another store",
		                    coffer_target_path(r->target));
	return rc;
}

static int finish_open(struct coffer_repo *r, const char *path, int create)
{
	int rc;

	r->meta_key = coffer_secure_alloc(COFFER_KEY_BYTES);
	if (r->meta_key == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: cannot allocate secure memory");
	rc = coffer_keyfile_derive(r->kf, "snapshot-target-meta", r->meta_key);
	if (rc == 0)
		rc = coffer_target_open(path, create, &r->target);
	if (rc == 0)
		rc = check_marker(r, create);
	if (rc == 0)
		rc = coffer_repo_refresh(r);
	return rc;
}

/* ---- which target the store's work lists refer to ---- */

static int target_id_get(struct coffer_txn *t, void *arg)
{
	const void *v;
	size_t n;
	int rc = coffer_txn_get(t, COFFER_DB_META, "target_id", 9, &v, &n);

	if (rc == 0 && n == COFFER_ID_BYTES)
		memcpy(arg, v, n);
	else if (rc == 0)
		rc = coffer_err_set(COFFER_ECORRUPT, "index: damaged target_id record");
	return rc;
}

/* One batch of mark-all: up to MARK_BATCH blob keys from `start` on. */
struct mark_args {
	struct coffer_txn *t;
	unsigned char start[COFFER_KEY_BLOB], next[COFFER_KEY_BLOB];
	size_t start_len, next_len; /* 0: from the first key / no more keys */
	size_t n;
};

static int mark_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct mark_args *m = arg;

	if (kl != COFFER_KEY_BLOB)
		return 0;
	if (m->n == MARK_BATCH) {
		memcpy(m->next, k, COFFER_KEY_BLOB); /* where the next batch starts */
		m->next_len = COFFER_KEY_BLOB;
		return 1;
	}
	m->n++;
	return coffer_txn_put(m->t, COFFER_DB_UNSNAPPED, k, kl, "", 0, 0);
}

/* May run twice for one batch (map growth): it only reads start. */
static int mark_batch_txn(struct coffer_txn *t, void *arg)
{
	struct mark_args *m = arg;

	m->t = t;
	m->n = 0;
	m->next_len = 0;
	return coffer_txn_scan_from(t, COFFER_DB_BLOBS, NULL, 0, m->start, m->start_len, mark_one,
	                            m);
}

/*
 * In batches, so a delivery waits at most one batch commit however large the
 * store. Each batch reads the blobs table afresh: a blob delivered meanwhile
 * is on the list already (deliveries add their own), one removed meanwhile
 * has left both tables, so the union is every blob whatever the interleaving.
 */
int coffer_repo_mark_all_unsnapped(struct coffer_store *st)
{
	struct mark_args m;
	int rc;

	memset(&m, 0, sizeof m);
	for (;;) {
		rc = coffer_index_update(coffer_store_index(st), mark_batch_txn, &m);
		if (rc < 0 || m.next_len == 0)
			return rc;
		memcpy(m.start, m.next, m.next_len);
		m.start_len = m.next_len;
	}
}

static int target_adopt_txn(struct coffer_txn *t, void *arg)
{
	return coffer_txn_put(t, COFFER_DB_META, "target_id", 9, arg, COFFER_ID_BYTES, 0);
}

int coffer_repo_bind(struct coffer_repo *r, struct coffer_store *st, int new_target)
{
	unsigned char known[COFFER_ID_BYTES];
	int rc, reset;

	rc = coffer_index_view(coffer_store_index(st), target_id_get, known);
	if (rc < 0 && rc != COFFER_ENOTFOUND)
		return rc;
	if (rc == 0 && coffer_ct_equal(known, r->target_id, COFFER_ID_BYTES))
		return 0;
	if (rc == 0 && r->fresh && !new_target)
		return coffer_err_set(
		    COFFER_ENOTFOUND,
		    "snapshot target %s has no Coffer marker, but this store's "
		    "snapshots are in another target: if its disk is not mounted, "
		    "mount it; to start a new target here, pass --new-target",
		    coffer_target_path(r->target));
	/* the store's first target (its work lists hold every blob), or a new
	 * or another one (the next snapshot into it must be whole) */
	reset = rc == 0;
	if (r->fresh) {
		rc = write_marker(r);
		if (rc < 0)
			return rc;
		r->fresh = 0;
	}
	/* target_id last: a crash while marking leaves the old one, so the next
	 * run marks everything again */
	rc = reset ? coffer_repo_mark_all_unsnapped(st) : 0;
	if (rc == 0)
		rc = coffer_index_update(coffer_store_index(st), target_adopt_txn, r->target_id);
	return rc;
}

static int alloc_repo(struct coffer_repo **r_r)
{
	*r_r = calloc(1, sizeof **r_r);
	if (*r_r == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	(*r_r)->lock_fd = -1;
	return 0;
}

int coffer_repo_open(struct coffer_store *st, const char *path, int create,
                     struct coffer_repo **r_r)
{
	struct coffer_repo *r;
	int rc;

	*r_r = NULL;
	if (path == NULL)
		path = coffer_store_config(st)->snapshot_target;
	if (path == NULL)
		return coffer_err_set(
		    COFFER_EINVAL, "no snapshot target: set snapshot_target in coffer.conf or give "
				   "--target DIR");
	rc = alloc_repo(&r);
	if (rc < 0)
		return rc;
	memcpy(r->store_id, coffer_store_id(st), COFFER_ID_BYTES);
	rc = coffer_store_keyfile(st, &r->kf);
	if (rc == 0)
		rc = finish_open(r, path, create);
	if (rc < 0) {
		coffer_repo_close(&r);
		return rc;
	}
	*r_r = r;
	return 0;
}

int coffer_repo_open_keyfile(const char *path, const char *key_file, struct coffer_repo **r_r)
{
	struct coffer_repo *r;
	int rc;

	*r_r = NULL;
	rc = alloc_repo(&r);
	if (rc < 0)
		return rc;
	r->owns_kf = 1;
	rc = coffer_keyfile_load(key_file, &r->kf);
	if (rc == 0) {
		memcpy(r->store_id, coffer_keyfile_store_id(r->kf), COFFER_ID_BYTES);
		rc = finish_open(r, path, 0);
	}
	if (rc < 0) {
		coffer_repo_close(&r);
		return rc;
	}
	*r_r = r;
	return 0;
}

void coffer_repo_close(struct coffer_repo **rp)
{
	struct coffer_repo *r = rp ? *rp : NULL;

	if (r == NULL)
		return;
	free_ids(r);
	coffer_target_close(&r->target);
	coffer_secure_free(r->meta_key);
	if (r->owns_kf)
		coffer_keyfile_free(&r->kf);
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	free(r);
	*rp = NULL;
}

int coffer_repo_lock(struct coffer_repo *r, struct coffer_store *st)
{
	int rc = coffer_store_lock(st, "snapshot", LOCK_EX | LOCK_NB, &r->lock_fd);

	if (rc == COFFER_ETEMP)
		return coffer_err_set(
		    COFFER_ETEMP, "another snapshot, prune, purge or restore is running on this "
				  "store; try again when it has finished");
	return rc;
}

int coffer_repo_put_sealed(struct coffer_repo *r, const char *name, uint8_t kind,
                           const unsigned char *key, const void *pt, size_t n)
{
	struct coffer_buf obj = COFFER_BUF_INIT;
	int rc;

	rc = coffer_obj_seal(&obj, kind, name, r->store_id, key, pt, n);
	if (rc == 0)
		rc = coffer_target_put(r->target, name, obj.data, obj.len);
	coffer_buf_free(&obj);
	return rc;
}

int coffer_repo_get_sealed(struct coffer_repo *r, const char *name, uint8_t kind,
                           const unsigned char *key, struct coffer_buf *pt)
{
	struct coffer_buf obj = COFFER_BUF_INIT;
	int rc;

	rc = coffer_target_get(r->target, name, MANIFEST_MAX, &obj);
	if (rc == 0)
		rc = coffer_obj_open(pt, kind, name, r->store_id, key, obj.data, obj.len);
	coffer_buf_free(&obj);
	return rc;
}

int coffer_repo_get_manifest(struct coffer_repo *r, const char *id, struct coffer_manifest *m)
{
	struct coffer_buf pt = COFFER_BUF_INIT;
	char name[64];
	int rc;

	snprintf(name, sizeof name, "snap/%s", id);
	rc = coffer_repo_get_sealed(r, name, COFFER_OBJ_MANIFEST, r->meta_key, &pt);
	if (rc == 0)
		rc = coffer_manifest_decode(pt.data, pt.len, m);
	if (rc == 0 && strcmp(m->id, id) != 0) {
		coffer_manifest_free(m);
		rc = coffer_err_set(COFFER_ECORRUPT, "snapshot %s: manifest names another snapshot",
		                    id);
	}
	if (rc < 0 && rc != COFFER_ENOMEM)
		coffer_err_prefix(rc, "snapshot %s: ", id);
	coffer_buf_free(&pt);
	return rc;
}

struct last_name {
	char *name;
	size_t cap;
};

static int remember_last(const char *name, uint64_t size, void *arg)
{
	struct last_name *l = arg;

	snprintf(l->name, l->cap, "%s", name);
	return 0;
}

int coffer_repo_newest_keyring(struct coffer_repo *r, char *name_r, size_t cap)
{
	struct last_name l = { name_r, cap };

	name_r[0] = '\0';
	return coffer_target_list(r->target, "keyring/", remember_last, &l);
}

int coffer_repo_read_keyring(struct coffer_repo *r, const char *name, struct coffer_keyring *k)
{
	struct coffer_buf pt = COFFER_BUF_INIT;
	int rc = coffer_repo_get_sealed(r, name, COFFER_OBJ_KEYRING, r->meta_key, &pt);

	memset(k, 0, sizeof *k);
	if (rc == 0)
		rc = coffer_keyring_decode(pt.data, pt.len, k);
	coffer_buf_free(&pt);
	return rc;
}

int coffer_repo_get_keyring(struct coffer_repo *r, struct coffer_keyring *k, char *name_r,
                            size_t cap)
{
	char name[64];
	int rc = coffer_repo_newest_keyring(r, name, sizeof name);

	memset(k, 0, sizeof *k);
	if (rc == 0 && !name[0])
		rc = coffer_err_set(COFFER_ENOTFOUND, "the target holds no key ring (keyring/)");
	if (rc == 0)
		rc = coffer_repo_read_keyring(r, name, k);
	if (rc == 0 && name_r)
		snprintf(name_r, cap, "%s", name);
	return rc;
}

/* ---- recovery ---- */

struct pending_args {
	struct coffer_repo *r;
	char **ids;
	size_t n;
};

static int collect_pending(const char *name, uint64_t size, void *arg)
{
	struct pending_args *p = arg;
	char **v = realloc(p->ids, (p->n + 1) * sizeof *v);

	if (v == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	p->ids = v;
	v[p->n] = strdup(name + 8); /* "pending/" */
	if (v[p->n] == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	p->n++;
	return 0;
}

struct sweep_args {
	struct coffer_repo *r;
	const char *id;
};

/* Deletes a/<acct>/full/<id> and a/<acct>/rev/<id> objects. */
static int sweep_one(const char *name, uint64_t size, void *arg)
{
	struct sweep_args *s = arg;
	const char *leaf = strrchr(name, '/');

	if (leaf && strcmp(leaf + 1, s->id) == 0 &&
	    (strstr(name, "/full/") != NULL || strstr(name, "/rev/") != NULL))
		return coffer_target_delete(s->r->target, name);
	return 0;
}

int coffer_repo_recover(struct coffer_repo *r)
{
	struct pending_args p = { r, NULL, 0 };
	struct coffer_manifest m;
	char name[96];
	int rc;

	coffer_target_clean_tmp(r->target);
	rc = coffer_target_list(r->target, "pending/", collect_pending, &p);
	for (size_t i = 0; rc == 0 && i < p.n; i++) {
		struct sweep_args s = { r, p.ids[i] };
		int exists;

		snprintf(name, sizeof name, "snap/%s", p.ids[i]);
		exists = coffer_target_exists(r->target, name, NULL);
		if (exists == 0) {
			/* died before its manifest: its objects are garbage */
			rc = coffer_target_list(r->target, "a/", sweep_one, &s);
			snprintf(name, sizeof name, "keyring/%s", p.ids[i]);
			if (rc == 0)
				rc = coffer_target_delete(r->target, name);
		} else if (exists < 0) {
			rc = exists;
		}
		snprintf(name, sizeof name, "pending/%s", p.ids[i]);
		if (rc == 0)
			rc = coffer_target_delete(r->target, name);
	}
	for (size_t i = 0; i < p.n; i++)
		free(p.ids[i]);
	free(p.ids);
	if (rc == 0 && r->n_ids > 0) {
		rc = coffer_repo_get_manifest(r, r->ids[r->n_ids - 1], &m);
		for (uint32_t i = 0; rc == 0 && i < m.n_drop; i++)
			rc = coffer_target_delete(r->target, m.drop[i]);
		if (rc == 0)
			coffer_manifest_free(&m);
	}
	return rc;
}

int coffer_repo_account_state(struct coffer_repo *r, const struct coffer_manifest *newest,
                              const char *id, const unsigned char *acct,
                              const struct coffer_acct_secret *secret, struct coffer_state *s)
{
	const struct coffer_snap_account *a = coffer_manifest_account(newest, acct);
	struct coffer_buf pt = COFFER_BUF_INIT;
	char name[128];
	int rc;

	memset(s, 0, sizeof *s);
	if (a == NULL)
		return COFFER_ENOTFOUND;
	coffer_repo_obj_name(name, sizeof name, acct, "full", a->full_at);
	rc = coffer_repo_get_sealed(r, name, COFFER_OBJ_FULL, secret->data_key, &pt);
	if (rc == 0)
		rc = coffer_state_decode(pt.data, pt.len, s);
	for (uint32_t i = a->n_revs; rc == 0 && i > 0; i--) {
		struct coffer_state rev;

		if (strcmp(a->revs[i - 1], id) <= 0)
			break;
		coffer_repo_obj_name(name, sizeof name, acct, "rev", a->revs[i - 1]);
		coffer_buf_reset(&pt);
		rc = coffer_repo_get_sealed(r, name, COFFER_OBJ_REV, secret->data_key, &pt);
		if (rc == 0)
			rc = coffer_state_decode(pt.data, pt.len, &rev);
		if (rc == 0) {
			rc = coffer_state_apply(s, &rev);
			coffer_state_free(&rev);
		}
	}
	coffer_buf_free(&pt);
	if (rc < 0)
		coffer_state_free(s);
	return rc;
}
