/*
 * snapshot.c: snapshot create, list and prune (see snapshot.h).
 *
 * Create, in order (each step is safe to die after; docs/format.md):
 *   1. lock; recover (pending journals, the last manifest's drop list);
 *   2. write pending/<id>;
 *   3. take the blob gc lock, so no blob file listed below disappears;
 *   4. per account, in its own read transaction: if its modseq equals the
 *      previous manifest's, carry its entry over; otherwise dump its state
 *      and its unsnapped list, then (outside the transaction)
 *      copy the new blobs, write full/<id> and rev/<id> (the reverse delta
 *      against the previous full state), and list what is freed and dropped;
 *   5. write the key ring if any account record changed;
 *   6. sync the target; write snap/<id> (the commit point); sync again;
 *   7. delete pending/<id> and the drop list (old full states, old key ring);
 *   8. clear the copied unsnapped entries.
 * Blobs freed since the previous snapshot are those its state referenced and
 * this one does not: the freed list comes from comparing the two states.
 * A crash before 6 leaves garbage that step 1 of the next run removes; a
 * crash after 6 leaves a complete snapshot and, at worst, entries that the
 * next snapshot lists again (copies are skipped when the object exists).
 *
 * Prune: for each expired snapshot P, oldest first, delete the objects its
 * successor lists as freed (held only by P and older, already gone), then
 * snap/P. When P is the newest, everything goes, and the store's blobs are
 * all marked unsnapped so that the next snapshot is complete again.
 */
#include "snapshot.h"

#include "repo.h"
#include "state.h"

#include "engine/account.h"
#include "engine/blob.h"
#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/ctlfile.h"
#include "engine/errors.h"
#include "engine/record.h"
#include "engine/spool.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLEAR_BATCH 2000 /* short write transactions: deliveries wait on them */

struct keylist {
	unsigned char (*v)[COFFER_KEY_BLOB];
	size_t n, cap;
};

static int blobkey_cmp(const void *a, const void *b)
{
	return memcmp(a, b, COFFER_KEY_BLOB);
}

static int keylist_add(struct keylist *l, const void *k)
{
	if (coffer_array_grow(&l->v, &l->cap, l->n, sizeof *l->v, 256) < 0)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	memcpy(l->v[l->n++], k, COFFER_KEY_BLOB);
	return 0;
}

/* ---- reading one account ---- */

struct acct_read {
	const unsigned char *id;
	struct coffer_account_rec rec;
	unsigned char rec_bytes[512];
	struct coffer_state state;
	struct keylist unsnapped;
	uint64_t messages, bytes;
	int changed;
	uint64_t prev_modseq;
	int have_prev;
};

static int add_key(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	return kl == COFFER_KEY_BLOB ? keylist_add(arg, k) : 0;
}

static int read_acct_txn(struct coffer_txn *t, void *arg)
{
	struct acct_read *a = arg;
	int rc;

	coffer_state_free(&a->state);
	a->unsnapped.n = 0;
	a->messages = a->bytes = 0;
	rc = coffer_account_get_txn(t, a->id, &a->rec);
	if (rc < 0)
		return rc;
	a->changed = !a->have_prev || a->rec.modseq != a->prev_modseq;
	if (!a->changed || a->rec.state == COFFER_ACCOUNT_SHREDDED)
		return 0;
	rc = coffer_state_dump_txn(t, a->id, &a->state);
	if (rc == 0)
		rc = coffer_txn_scan(t, COFFER_DB_UNSNAPPED, a->id, COFFER_ID_BYTES, add_key,
		                     &a->unsnapped);
	for (size_t i = 0; rc == 0 && i < a->state.n; i++) {
		struct coffer_message_rec m;

		if (a->state.v[i].db != COFFER_DB_MESSAGES)
			continue;
		rc = coffer_message_rec_decode(a->state.v[i].val, a->state.v[i].vlen, &m);
		a->messages++;
		a->bytes += m.size;
	}
	return rc;
}

/* ---- the account list and key ring ---- */

struct acct_list {
	unsigned char (*ids)[COFFER_ID_BYTES];
	size_t n;
	struct coffer_keyring ring;
};

static int ring_add(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct acct_list *l = arg;
	struct coffer_keyring_entry *e;

	if (vl != COFFER_ID_BYTES)
		return 0;
	/* account_names: MAC -> id; the ring is sorted by id afterwards */
	for (uint32_t i = 0; i < l->ring.n; i++) {
		e = &l->ring.v[i];
		if (memcmp(e->id, v, COFFER_ID_BYTES) == 0) {
			memcpy(e->name_mac, k, COFFER_MAC_BYTES);
			return 0;
		}
	}
	return 0;
}

static int acct_add(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct acct_list *l = arg;
	unsigned char zero[COFFER_MAC_BYTES] = { 0 };
	void *ids;

	if (kl != COFFER_ID_BYTES)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged account key");
	ids = realloc(l->ids, (l->n + 1) * COFFER_ID_BYTES);
	if (ids == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	l->ids = ids;
	memcpy(l->ids[l->n++], k, COFFER_ID_BYTES);
	return coffer_keyring_add(&l->ring, k, zero, v, vl);
}

static int list_txn(struct coffer_txn *t, void *arg)
{
	struct acct_list *l = arg;
	int rc;

	rc = coffer_txn_scan(t, COFFER_DB_ACCOUNTS, NULL, 0, acct_add, l);
	if (rc == 0)
		rc = coffer_txn_scan(t, COFFER_DB_ACCOUNT_NAMES, NULL, 0, ring_add, l);
	return rc;
}

/* ---- clearing the work lists ---- */

struct clear_args {
	struct keylist *l;
	enum coffer_db db;
	size_t from, to;
};

static int clear_txn(struct coffer_txn *t, void *arg)
{
	struct clear_args *c = arg;
	int rc;

	for (size_t i = c->from; i < c->to; i++) {
		rc = coffer_txn_del(t, c->db, c->l->v[i], COFFER_KEY_BLOB);
		if (rc < 0 && rc != COFFER_ENOTFOUND)
			return rc;
	}
	return 0;
}

static int clear_list(struct coffer_store *st, struct keylist *l, enum coffer_db db)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < l->n; i += CLEAR_BATCH) {
		struct clear_args c = { l, db, i, i + CLEAR_BATCH < l->n ? i + CLEAR_BATCH : l->n };

		rc = coffer_index_update(coffer_store_index(st), clear_txn, &c);
	}
	return rc;
}

/* ---- prune ---- */

static int delete_all(const char *name, uint64_t size, void *arg)
{
	struct coffer_repo *r = arg;

	return coffer_target_delete(r->target, name);
}

/* Everything in the target but the marker, once no snapshot is left: the
 * store's blobs are marked unsnapped first, so that a crash at any point
 * leaves the next snapshot complete. */
static int wipe(struct coffer_store *st, struct coffer_repo *repo, struct coffer_prune_result *res)
{
	int rc = coffer_repo_mark_all_unsnapped(st);

	if (rc == 0)
		rc = coffer_target_list(repo->target, "a/", delete_all, repo);
	if (rc == 0)
		rc = coffer_target_list(repo->target, "keyring/", delete_all, repo);
	(void)res;
	return rc;
}

static int any_object(const char *name, uint64_t size, void *arg)
{
	*(int *)arg = 1;
	return 1;
}

/* Lists keyring/ in name order: the last one seen is the newest. */
/* ---- create ---- */

struct create_ctx {
	struct coffer_store *st;
	struct coffer_repo *repo;
	struct coffer_manifest *prev; /* NULL for the first snapshot */
	struct coffer_manifest m;
	struct keylist clear_unsnapped;
	const char *oldest; /* oldest retained snapshot id */
	struct coffer_snapshot_result *res;
};

static int copy_blob(struct create_ctx *c, const unsigned char *acct, const unsigned char *blob,
                     uint64_t *bytes)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	char hex[2 * COFFER_ID_BYTES + 1], name[128];
	uint64_t size = 0;
	int fd, rc, exists;

	coffer_hex(hex, blob, COFFER_ID_BYTES);
	coffer_repo_obj_name(name, sizeof name, acct, "b", hex);
	exists = coffer_target_exists(c->repo->target, name, NULL);
	if (exists != 0)
		return exists < 0 ? exists : 0;
	rc = coffer_store_blob_path(c->st, acct, blob, &path);
	if (rc < 0)
		goto out;
	fd = open(coffer_buf_str(&path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = coffer_err_set(COFFER_ECORRUPT,
		                    "snapshot: blob %s of account %.32s is missing", hex, name + 2);
		goto out;
	}
	rc = coffer_target_put_fd(c->repo->target, name, fd, &size);
	close(fd);
	if (rc == COFFER_EEXIST)
		rc = 0;
	*bytes += size;
	c->res->new_blobs++;
out:
	coffer_buf_free(&path);
	return rc;
}

/* The blob ids a state references (messages and control files), sorted. */
static int state_blobs(const struct coffer_state *st, struct keylist *out)
{
	unsigned char key[COFFER_KEY_BLOB];
	int rc = 0;

	out->n = 0;
	for (size_t i = 0; rc == 0 && i < st->n; i++) {
		const struct coffer_rec *r = &st->v[i];
		struct coffer_message_rec m;
		struct coffer_ctlfile_rec cf;

		if (r->db == COFFER_DB_MESSAGES &&
		    coffer_message_rec_decode(r->val, r->vlen, &m) == 0) {
			coffer_key_blob(key, r->key, m.blob_id);
		} else if (r->db == COFFER_DB_CTLFILES &&
		           coffer_ctlfile_rec_decode(r->val, r->vlen, &cf) == 0 &&
		           !coffer_ctlfile_is_empty_blob(cf.blob_id)) {
			coffer_key_blob(key, r->key, cf.blob_id);
		} else {
			continue;
		}
		rc = keylist_add(out, key);
	}
	if (rc == 0 && out->n > 1)
		qsort(out->v, out->n, COFFER_KEY_BLOB, blobkey_cmp);
	return rc;
}

static int snapshot_account(struct create_ctx *c, const unsigned char *id)
{
	struct acct_read a;
	struct coffer_snap_account *e = &c->m.accounts[c->m.n_accounts];
	const struct coffer_snap_account *pa = c->prev ? coffer_manifest_account(c->prev, id)
	                                               : NULL;
	struct coffer_acct_secret *secret = NULL;
	struct coffer_buf enc = COFFER_BUF_INIT, pt = COFFER_BUF_INIT;
	struct coffer_state prev_state = { NULL, 0, 0 }, rev = { NULL, 0, 0 };
	char name[128], hex[2 * COFFER_ID_BYTES + 1];
	int rc;

	memset(&a, 0, sizeof a);
	memset(e, 0, sizeof *e);
	a.id = id;
	a.have_prev = pa != NULL;
	a.prev_modseq = pa ? pa->modseq : 0;
	rc = coffer_index_view(coffer_store_index(c->st), read_acct_txn, &a);
	if (rc < 0)
		goto out;
	if (a.rec.state == COFFER_ACCOUNT_SHREDDED)
		goto out; /* only its tombstone, in the key ring */
	memcpy(e->id, id, COFFER_ID_BYTES);
	e->modseq = a.rec.modseq;
	c->m.n_accounts++;
	if (!a.changed) {
		/* carried over: same state, same chain minus expired deltas */
		e->messages = pa->messages;
		e->bytes = pa->bytes;
		snprintf(e->full_at, sizeof e->full_at, "%s", pa->full_at);
		e->revs = calloc(pa->n_revs ? pa->n_revs : 1, sizeof *e->revs);
		if (e->revs == NULL) {
			rc = coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
			goto out;
		}
		for (uint32_t i = 0; i < pa->n_revs; i++)
			if (c->oldest == NULL || strcmp(pa->revs[i], c->oldest) > 0)
				memcpy(e->revs[e->n_revs++], pa->revs[i], COFFER_SNAPID_MAX);
		c->res->messages += e->messages;
		goto out;
	}
	rc = coffer_account_unlock(c->st, id, &a.rec, &secret);
	if (rc < 0)
		goto out;
	e->changed = 1;
	e->messages = a.messages;
	e->bytes = a.bytes;
	c->res->messages += a.messages;
	c->res->changed++;
	for (size_t i = 0; rc == 0 && i < a.unsnapped.n; i++) {
		rc = copy_blob(c, id, a.unsnapped.v[i] + COFFER_ID_BYTES, &e->new_bytes);
		if (rc == 0)
			rc = keylist_add(&c->clear_unsnapped, a.unsnapped.v[i]);
	}
	if (rc < 0)
		goto out;
	c->res->new_bytes += e->new_bytes;
	/* the new full state */
	rc = coffer_state_encode(&a.state, &enc);
	coffer_repo_obj_name(name, sizeof name, id, "full", c->m.id);
	if (rc == 0)
		rc = coffer_repo_put_sealed(c->repo, name, COFFER_OBJ_FULL, secret->data_key,
		                            enc.data, enc.len);
	if (rc < 0)
		goto out;
	snprintf(e->full_at, sizeof e->full_at, "%s", c->m.id);
	e->revs = calloc((pa ? pa->n_revs : 0) + 1, sizeof *e->revs);
	if (e->revs == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
		goto out;
	}
	if (pa) {
		/* the reverse delta back to the previous full state, which it replaces */
		coffer_repo_obj_name(name, sizeof name, id, "full", pa->full_at);
		rc = coffer_repo_get_sealed(c->repo, name, COFFER_OBJ_FULL, secret->data_key, &pt);
		if (rc == 0)
			rc = coffer_state_decode(pt.data, pt.len, &prev_state);
		if (rc == 0)
			rc = coffer_state_diff(&prev_state, &a.state, &rev);
		coffer_buf_reset(&enc);
		if (rc == 0)
			rc = coffer_state_encode(&rev, &enc);
		if (rc == 0)
			rc = coffer_manifest_add_name(&c->m.drop, &c->m.n_drop, name);
		coffer_repo_obj_name(name, sizeof name, id, "rev", c->m.id);
		if (rc == 0)
			rc = coffer_repo_put_sealed(c->repo, name, COFFER_OBJ_REV, secret->data_key,
			                            enc.data, enc.len);
		if (rc == 0)
			rc = coffer_manifest_add_name(&c->m.freed, &c->m.n_freed, name);
		if (rc < 0)
			goto out;
		for (uint32_t i = 0; i < pa->n_revs; i++)
			if (c->oldest == NULL || strcmp(pa->revs[i], c->oldest) > 0)
				memcpy(e->revs[e->n_revs++], pa->revs[i], COFFER_SNAPID_MAX);
		memcpy(e->revs[e->n_revs++], c->m.id, COFFER_SNAPID_MAX);
	}
	/*
	 * Freed: blobs the previous state references and this one does not
	 * (expunged since, even while this snapshot ran). Derived from the two
	 * states rather than from a side list, so it is right whatever happened
	 * in between (another target used meanwhile, a crash).
	 */
	if (rc == 0 && pa) {
		struct keylist before = { NULL, 0, 0 }, after = { NULL, 0, 0 };

		rc = state_blobs(&prev_state, &before);
		if (rc == 0)
			rc = state_blobs(&a.state, &after);
		for (size_t i = 0, j = 0; rc == 0 && i < before.n; i++) {
			if (i > 0 && memcmp(before.v[i], before.v[i - 1], COFFER_KEY_BLOB) == 0)
				continue;
			while (j < after.n && memcmp(after.v[j], before.v[i], COFFER_KEY_BLOB) < 0)
				j++;
			if (j < after.n && memcmp(after.v[j], before.v[i], COFFER_KEY_BLOB) == 0)
				continue;
			coffer_hex(hex, before.v[i] + COFFER_ID_BYTES, COFFER_ID_BYTES);
			coffer_repo_obj_name(name, sizeof name, id, "b", hex);
			rc = coffer_manifest_add_name(&c->m.freed, &c->m.n_freed, name);
			c->res->freed++;
		}
		free(before.v);
		free(after.v);
	}

out:
	coffer_acct_secret_free(&secret);
	coffer_state_free(&a.state);
	coffer_state_free(&prev_state);
	coffer_state_free(&rev);
	free(a.unsnapped.v);
	coffer_buf_free(&enc);
	coffer_buf_free(&pt);
	return rc;
}

static int ring_cmp(const void *a, const void *b)
{
	return memcmp(((const struct coffer_keyring_entry *)a)->id,
	              ((const struct coffer_keyring_entry *)b)->id, COFFER_ID_BYTES);
}

/* Writes keyring/<id> unless the previous ring, prev_name ("" for none),
 * is identical. */
static int write_keyring(struct create_ctx *c, struct acct_list *l, const char *prev_name)
{
	struct coffer_buf enc = COFFER_BUF_INIT, old = COFFER_BUF_INIT;
	struct coffer_keyring prev_ring;
	char name[64];
	int rc;

	qsort(l->ring.v, l->ring.n, sizeof *l->ring.v, ring_cmp);
	rc = coffer_keyring_encode(&l->ring, &enc);
	if (rc == 0 && prev_name[0]) {
		rc = coffer_repo_read_keyring(c->repo, prev_name, &prev_ring);
		if (rc == 0) {
			coffer_keyring_encode(&prev_ring, &old);
			coffer_keyring_free(&prev_ring);
			if (old.len == enc.len && memcmp(old.data, enc.data, enc.len) == 0) {
				snprintf(c->m.keyring, sizeof c->m.keyring, "%s", prev_name);
				goto out;
			}
		}
	}
	if (rc < 0)
		goto out;
	snprintf(name, sizeof name, "keyring/%s", c->m.id);
	rc = coffer_repo_put_sealed(c->repo, name, COFFER_OBJ_KEYRING, c->repo->meta_key, enc.data,
	                            enc.len);
	if (rc == 0)
		snprintf(c->m.keyring, sizeof c->m.keyring, "%s", name);
	if (rc == 0 && prev_name[0])
		rc = coffer_manifest_add_name(&c->m.drop, &c->m.n_drop, prev_name);
out:
	coffer_buf_free(&enc);
	coffer_buf_free(&old);
	return rc;
}

static int get_index_key(struct coffer_txn *t, void *arg)
{
	const void *v;
	size_t n;
	int rc = coffer_txn_get(t, COFFER_DB_META, "index_key", 9, &v, &n);

	if (rc == 0 && n == COFFER_KEY_BYTES)
		memcpy(arg, v, n);
	return rc;
}

int coffer_snapshot_create(struct coffer_store *st, const char *target, coffer_progress_fn progress,
                           void *parg, struct coffer_snapshot_result *res)
{
	return coffer_snapshot_create_ex(st, target, 0, progress, parg, res);
}

int coffer_snapshot_create_ex(struct coffer_store *st, const char *target, unsigned flags,
                              coffer_progress_fn progress, void *parg,
                              struct coffer_snapshot_result *res)
{
	struct create_ctx c;
	struct coffer_manifest prev;
	struct acct_list l = { NULL, 0, { 0, NULL } };
	struct coffer_buf enc = COFFER_BUF_INIT;
	char name[64], newest_ring[64] = "";
	int64_t now;
	int rc, gc_fd = -1, have_prev = 0;

	memset(&c, 0, sizeof c);
	memset(res, 0, sizeof *res);
	c.st = st;
	c.res = res;
	/* spooled deliveries (engine/spool.h) belong in it: indexed first */
	rc = coffer_spool_absorb(st, NULL, NULL);
	if (rc == 0)
		rc = coffer_clock_now(&now);
	if (rc == 0)
		rc = coffer_repo_open(st, target, 1, &c.repo);
	if (rc == 0)
		rc = coffer_repo_lock(c.repo, st);
	if (rc == 0)
		rc = coffer_repo_bind(c.repo, st, (flags & COFFER_SNAPSHOT_NEW_TARGET) != 0);
	if (rc == 0)
		rc = coffer_repo_recover(c.repo);
	if (rc == 0)
		rc = coffer_repo_refresh(c.repo);
	if (rc < 0)
		goto out;
	if (c.repo->n_ids == 0) {
		/* a prune that wiped everything may have died half-way */
		struct coffer_prune_result pr;
		int leftovers = 0;

		rc = coffer_target_list(c.repo->target, "a/", any_object, &leftovers);
		if (rc == 0 && leftovers)
			rc = wipe(st, c.repo, &pr);
		if (rc < 0)
			goto out;
	}
	if (c.repo->n_ids > 0) {
		rc = coffer_repo_get_manifest(c.repo, c.repo->ids[c.repo->n_ids - 1], &prev);
		if (rc < 0)
			goto out;
		have_prev = 1;
		c.prev = &prev;
		c.oldest = c.repo->ids[0];
	}
	/* A unique id, later than every existing one, and whose ring name
	 * keyring/<id> sorts after every ring: a rotation (rekey, below) names
	 * its ring like a snapshot id of its time, and this snapshot's ring must
	 * neither overwrite that one nor lose "newest name wins" to it. */
	rc = coffer_repo_newest_keyring(c.repo, newest_ring, sizeof newest_ring);
	if (rc < 0)
		goto out;
	for (unsigned n = 0;; n++) {
		coffer_snapid_format(now, n, c.m.id);
		snprintf(name, sizeof name, "keyring/%s", c.m.id);
		if ((!have_prev || strcmp(c.m.id, prev.id) > 0) && strcmp(name, newest_ring) > 0)
			break;
		if (n > 1000) {
			rc = coffer_err_set(
			    COFFER_EINVAL,
			    "the clock is before the newest snapshot or key ring (%s); "
			    "refusing to write an older one",
			    newest_ring[0] ? newest_ring : prev.id);
			goto out;
		}
	}
	c.m.created_at = now;
	memcpy(c.m.store_id, coffer_store_id(st), COFFER_ID_BYTES);
	rc = coffer_index_view(coffer_store_index(st), get_index_key, c.m.index_key);
	snprintf(name, sizeof name, "pending/%s", c.m.id);
	if (rc == 0)
		rc = coffer_repo_put_sealed(c.repo, name, COFFER_OBJ_JOURNAL, c.repo->meta_key,
		                            c.m.id, strlen(c.m.id));
	if (rc == 0)
		rc = coffer_target_sync(c.repo->target);
	if (rc == 0)
		rc = coffer_blob_gc_lock_exclusive(st, &gc_fd);
	if (rc == 0)
		rc = coffer_index_view(coffer_store_index(st), list_txn, &l);
	if (rc < 0)
		goto out;
	c.m.accounts = calloc(l.n ? l.n : 1, sizeof *c.m.accounts);
	if (c.m.accounts == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		rc = snapshot_account(&c, l.ids[i]);
		if (progress)
			progress("accounts", i + 1, l.n, parg);
	}
	res->accounts = c.m.n_accounts;
	if (rc == 0)
		rc = write_keyring(&c, &l, newest_ring);
	if (rc == 0)
		rc = coffer_target_sync(c.repo->target);
	if (rc == 0)
		rc = coffer_manifest_encode(&c.m, &enc);
	snprintf(name, sizeof name, "snap/%s", c.m.id);
	if (rc == 0)
		rc = coffer_repo_put_sealed(c.repo, name, COFFER_OBJ_MANIFEST, c.repo->meta_key,
		                            enc.data, enc.len);
	if (rc == 0) {
		rc = coffer_target_sync(c.repo->target);
		if (rc < 0) {
			/* the manifest is not known to be durable: withdraw it, so that
			 * a failed create leaves no snapshot (pending/ stays, and the
			 * next run's recovery sweeps the objects) */
			char why[512];

			snprintf(why, sizeof why, "%s", coffer_errmsg());
			if (coffer_target_delete(c.repo->target, name) < 0)
				rc = coffer_err_set(rc,
				                    "%s; and the unsynced snapshot %s could not be "
				                    "withdrawn: %s",
				                    why, c.m.id, coffer_errmsg());
			else
				rc = coffer_err_set(rc, "%s", why);
		}
	}
	if (rc < 0)
		goto out;
	/* committed: the rest is clean-up that recovery would redo */
	snprintf(name, sizeof name, "pending/%s", c.m.id);
	rc = coffer_target_delete(c.repo->target, name);
	for (uint32_t i = 0; rc == 0 && i < c.m.n_drop; i++)
		rc = coffer_target_delete(c.repo->target, c.m.drop[i]);
	if (rc == 0)
		rc = clear_list(st, &c.clear_unsnapped, COFFER_DB_UNSNAPPED);
	memcpy(res->id, c.m.id, sizeof res->id);
	if (gc_fd >= 0) {
		close(gc_fd);
		gc_fd = -1;
	}
	if (rc == 0)
		rc = coffer_blob_collect(st, NULL, NULL);
out:
	if (gc_fd >= 0)
		close(gc_fd);
	if (have_prev)
		coffer_manifest_free(&prev);
	coffer_manifest_free(&c.m);
	coffer_keyring_free(&l.ring);
	free(l.ids);
	free(c.clear_unsnapped.v);
	coffer_buf_free(&enc);
	coffer_repo_close(&c.repo);
	return rc;
}

/* ---- list ---- */

int coffer_snapshot_list(struct coffer_store *st, const char *target, coffer_snapshot_fn fn,
                         void *arg)
{
	struct coffer_repo *repo = NULL;
	int64_t keep = (int64_t)coffer_store_config(st)->data_retention_days * COFFER_NS_PER_DAY;
	int rc;

	rc = coffer_repo_open(st, target, 0, &repo);
	for (size_t i = 0; rc == 0 && i < repo->n_ids; i++) {
		struct coffer_manifest m;
		struct coffer_snapshot_info info;

		rc = coffer_repo_get_manifest(repo, repo->ids[i], &m);
		if (rc < 0)
			break;
		memset(&info, 0, sizeof info);
		memcpy(info.id, m.id, sizeof info.id);
		info.created_at = m.created_at;
		info.expires_at = m.created_at + keep;
		info.accounts = m.n_accounts;
		for (uint32_t a = 0; a < m.n_accounts; a++) {
			info.messages += m.accounts[a].messages;
			info.new_bytes += m.accounts[a].new_bytes;
		}
		info.manifest = &m;
		rc = fn(&info, arg);
		coffer_manifest_free(&m);
	}
	coffer_repo_close(&repo);
	return rc;
}

int coffer_snapshot_prune(struct coffer_store *st, const char *target, int64_t now,
                          struct coffer_prune_result *res)
{
	struct coffer_repo *repo = NULL;
	int64_t keep = (int64_t)coffer_store_config(st)->data_retention_days * COFFER_NS_PER_DAY;
	char name[64];
	size_t expired = 0;
	int rc, leftovers = 0;

	/*
	 * Order, oldest first, for each expired snapshot P: delete P's own
	 * freed list (objects that only snapshots older than P held: all gone
	 * already), then snap/P (the commit point: P stops being a restore
	 * point). Last, the oldest retained snapshot's freed list (objects only
	 * the expired ones held). Every step may be repeated, so a crash between
	 * any two loses nothing and leaves no retained snapshot incomplete.
	 */
	memset(res, 0, sizeof *res);
	rc = coffer_repo_open(st, target, 0, &repo);
	if (rc == 0)
		rc = coffer_repo_lock(repo, st);
	if (rc == 0)
		rc = coffer_repo_recover(repo);
	for (size_t i = 0; rc == 0 && i <= repo->n_ids; i++) {
		struct coffer_manifest m;
		int64_t created = 0;
		int is_expired;

		if (i < repo->n_ids) {
			rc = coffer_snapid_parse(repo->ids[i], &created);
			if (rc < 0)
				break;
		}
		is_expired = i < repo->n_ids && created < now - keep;
		if (i == repo->n_ids)
			break;
		rc = coffer_repo_get_manifest(repo, repo->ids[i], &m);
		for (uint32_t f = 0; rc == 0 && f < m.n_freed; f++) {
			if (coffer_target_exists(repo->target, m.freed[f], NULL) > 0) {
				rc = coffer_target_delete(repo->target, m.freed[f]);
				res->objects_deleted++;
			}
		}
		if (rc == 0)
			coffer_manifest_free(&m);
		if (rc < 0 || !is_expired) {
			res->kept = (uint32_t)(repo->n_ids - i);
			break;
		}
		rc = coffer_target_sync(repo->target);
		snprintf(name, sizeof name, "snap/%s", repo->ids[i]);
		if (rc == 0)
			rc = coffer_target_delete(repo->target, name);
		if (rc == 0) {
			res->pruned++;
			expired++;
		}
	}
	if (rc == 0 && expired == repo->n_ids) {
		/* no snapshot left: whatever remains is unreferenced */
		rc = coffer_target_list(repo->target, "a/", any_object, &leftovers);
		if (rc == 0 && !leftovers)
			rc = coffer_target_list(repo->target, "keyring/", any_object, &leftovers);
		if (rc == 0 && (leftovers || expired))
			rc = wipe(st, repo, res);
	}
	if (rc == 0)
		rc = coffer_target_sync(repo->target);
	coffer_repo_close(&repo);
	return rc;
}

/* ---- rekey (crypto-shredding) ---- */

struct rekey_args {
	struct coffer_repo *repo;
	const char *keep;
	uint64_t deleted;
};

static int delete_other_rings(const char *name, uint64_t size, void *arg)
{
	struct rekey_args *a = arg;

	if (strcmp(name, a->keep) == 0)
		return 0;
	a->deleted++;
	return coffer_target_delete(a->repo->target, name);
}

static int delete_counted(const char *name, uint64_t size, void *arg)
{
	struct rekey_args *a = arg;

	a->deleted++;
	return coffer_target_delete(a->repo->target, name);
}

int coffer_snapshot_rekey(struct coffer_store *st, const char *target,
                          const unsigned char *shredded, uint64_t *deleted_r)
{
	struct coffer_repo *repo = NULL;
	struct acct_list l = { NULL, 0, { 0, NULL } };
	struct coffer_buf enc = COFFER_BUF_INIT;
	struct rekey_args ra;
	char newest[64] = "", name[64], id[COFFER_SNAPID_MAX], hex[2 * COFFER_ID_BYTES + 4];
	int64_t now;
	int rc;

	*deleted_r = 0;
	rc = coffer_clock_now(&now);
	if (rc == 0)
		rc = coffer_repo_open(st, target, 0, &repo);
	if (rc < 0)
		return rc;
	/* wait for a running snapshot: the rotation must not race its key ring */
	for (int tries = 0; (rc = coffer_repo_lock(repo, st)) == COFFER_ETEMP && tries < 3600;
	     tries++)
		sleep(1);
	if (rc == 0)
		rc = coffer_repo_recover(repo);
	if (rc == 0)
		rc = coffer_repo_newest_keyring(repo, newest, sizeof newest);
	if (rc == 0)
		rc = coffer_index_view(coffer_store_index(st), list_txn, &l);
	if (rc < 0)
		goto out;
	qsort(l.ring.v, l.ring.n, sizeof *l.ring.v, ring_cmp);
	/* a name after every existing ring, so it is the newest */
	for (unsigned n = 0;; n++) {
		coffer_snapid_format(now, n, id);
		snprintf(name, sizeof name, "keyring/%s", id);
		if (strcmp(name, newest) > 0 || n > 100000)
			break;
	}
	rc = coffer_keyring_encode(&l.ring, &enc);
	if (rc == 0)
		rc = coffer_repo_put_sealed(repo, name, COFFER_OBJ_KEYRING, repo->meta_key,
		                            enc.data, enc.len);
	if (rc == 0)
		rc = coffer_target_sync(repo->target);
	ra = (struct rekey_args){ repo, name, 0 };
	if (rc == 0)
		rc = coffer_target_list(repo->target, "keyring/", delete_other_rings, &ra);
	if (rc == 0 && shredded) {
		/* "a/<hex>/": the walk starts in that account's own directory */
		memcpy(hex, "a/", 2);
		coffer_hex(hex + 2, shredded, COFFER_ID_BYTES);
		strcat(hex, "/");
		rc = coffer_target_list(repo->target, hex, delete_counted, &ra);
	}
	if (rc == 0)
		rc = coffer_target_sync(repo->target);
	*deleted_r = ra.deleted;
out:
	coffer_keyring_free(&l.ring);
	free(l.ids);
	coffer_buf_free(&enc);
	coffer_repo_close(&repo);
	return rc;
}

int coffer_snapshot_newest(struct coffer_store *st, const char *target, int64_t *t_r,
                           char id_r[COFFER_SNAPID_MAX])
{
	struct coffer_repo *repo = NULL;
	int rc;

	*t_r = 0;
	if (id_r)
		id_r[0] = '\0';
	rc = coffer_repo_open(st, target, 0, &repo);
	if (rc == COFFER_ENOTFOUND) {
		/* no marker yet (a first snapshot), or an unmounted disk: the
		 * snapshot itself decides, and says which */
		coffer_err_clear();
		return 0;
	}
	if (rc == 0 && repo->n_ids > 0) {
		rc = coffer_snapid_parse(repo->ids[repo->n_ids - 1], t_r);
		if (rc == 0 && id_r)
			snprintf(id_r, COFFER_SNAPID_MAX, "%s", repo->ids[repo->n_ids - 1]);
	}
	coffer_repo_close(&repo);
	return rc;
}
