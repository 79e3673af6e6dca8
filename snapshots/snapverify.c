/*
 * snapverify.c: snapshot target verification (see snapverify.h).
 *
 * For each account, states are rebuilt from the full state backwards, one
 * reverse delta at a time, and the blob ids of every intermediate state are
 * collected into one sorted set; then each is checked once. Memory is one
 * account's state plus its blob set.
 */
#include "snapverify.h"

#include "engine/account.h"
#include "engine/buf.h"
#include "engine/ctlfile.h"
#include "engine/envelope.h"
#include "engine/errors.h"
#include "engine/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ctx {
	struct coffer_repo *repo;
	coffer_snapverify_fn fn;
	void *arg;
	struct coffer_snapverify_stats *stats;
	int percent;
};

static void problem(struct ctx *c, const char *snap, const char *acct, const char *obj,
                    const char *what)
{
	struct coffer_snapverify_problem p = { snap ? snap : "", acct ? acct : "", obj ? obj : "",
		                               what };

	c->stats->problems++;
	c->fn(&p, c->arg);
}

struct blobref {
	unsigned char id[COFFER_ID_BYTES];
	uint64_t size;
	uint8_t kind;
	char snap[COFFER_SNAPID_MAX]; /* a snapshot whose state holds it */
};

struct blobset {
	struct blobref *v;
	size_t n, cap;
};

static int collect_blobs(struct blobset *b, const struct coffer_state *s, const char *snap)
{
	for (size_t i = 0; i < s->n; i++) {
		struct coffer_message_rec m;
		struct coffer_ctlfile_rec c;
		uint8_t kind = COFFER_BLOB_MESSAGE;

		if (s->v[i].db == COFFER_DB_CTLFILES &&
		    coffer_ctlfile_rec_decode(s->v[i].val, s->v[i].vlen, &c) == 0 &&
		    !coffer_ctlfile_is_empty_blob(c.blob_id)) {
			memcpy(m.blob_id, c.blob_id, COFFER_ID_BYTES);
			m.size = c.size;
			kind = COFFER_BLOB_CONTROL;
		} else if (s->v[i].db != COFFER_DB_MESSAGES ||
		           coffer_message_rec_decode(s->v[i].val, s->v[i].vlen, &m) < 0) {
			continue;
		}
		if (coffer_array_grow(&b->v, &b->cap, b->n, sizeof *b->v, 256) < 0)
			return coffer_err_set(COFFER_ENOMEM, "snapshot verify: out of memory");
		memcpy(b->v[b->n].id, m.blob_id, COFFER_ID_BYTES);
		b->v[b->n].size = m.size;
		b->v[b->n].kind = kind;
		snprintf(b->v[b->n].snap, sizeof b->v[b->n].snap, "%s", snap);
		b->n++;
	}
	return 0;
}

/* By id, then newest snapshot first. */
static int id_cmp(const void *a, const void *b)
{
	const struct blobref *x = a, *y = b;
	int c = memcmp(x->id, y->id, COFFER_ID_BYTES);

	return c ? c : -strcmp(x->snap, y->snap);
}

static void check_blob(struct ctx *c, const char *snap, const char *acct_name,
                       const unsigned char *acct, const unsigned char *blob, uint64_t size,
                       uint8_t kind, const struct coffer_acct_secret *secret)
{
	char hex[2 * COFFER_ID_BYTES + 1], name[128];
	struct coffer_blob_ids ids;
	struct coffer_blob_reader *r = NULL;
	unsigned char buf[65536];
	uint64_t total = 0;
	size_t got;
	int fd, rc;

	coffer_hex(hex, blob, COFFER_ID_BYTES);
	coffer_repo_obj_name(name, sizeof name, acct, "b", hex);
	c->stats->blobs++;
	rc = coffer_target_exists(c->repo->target, name, NULL);
	if (rc <= 0) {
		problem(c, snap, acct_name, name, rc == 0 ? "blob is missing" : coffer_errmsg());
		return;
	}
	/* the same blobs every run for the same share: first byte of the id */
	if (c->percent <= 0 || (unsigned)blob[0] * 100u >= (unsigned)c->percent * 256u)
		return;
	c->stats->blobs_read++;
	if (coffer_target_open_read(c->repo->target, name, &fd) < 0) {
		problem(c, snap, acct_name, name, coffer_errmsg());
		return;
	}
	memcpy(ids.account_id, acct, COFFER_ID_BYTES);
	memcpy(ids.blob_id, blob, COFFER_ID_BYTES);
	ids.kind = kind;
	rc = coffer_blob_reader_open(fd, &ids, secret, &r);
	while (rc == 0) {
		rc = coffer_blob_reader_read(r, buf, sizeof buf, &got);
		if (rc < 0 || got == 0)
			break;
		total += got;
	}
	if (rc < 0)
		problem(c, snap, acct_name, name, coffer_errmsg());
	else if (size != UINT64_MAX && total != size)
		problem(c, snap, acct_name, name, "blob size differs from its record");
	coffer_blob_reader_free(&r);
	close(fd);
}

/* COFFER_BLOB_CONTROL if the blob's header opens as a control file, else
 * COFFER_BLOB_MESSAGE (a damaged blob is then reported as a message). */
static uint8_t probe_kind(struct ctx *c, const char *name, const unsigned char *acct,
                          const unsigned char *blob, const struct coffer_acct_secret *secret)
{
	struct coffer_blob_ids ids;
	struct coffer_blob_reader *r = NULL;
	uint8_t kind = COFFER_BLOB_MESSAGE;
	int fd;

	if (coffer_target_open_read(c->repo->target, name, &fd) < 0)
		return kind;
	memcpy(ids.account_id, acct, COFFER_ID_BYTES);
	memcpy(ids.blob_id, blob, COFFER_ID_BYTES);
	ids.kind = COFFER_BLOB_CONTROL;
	if (coffer_blob_reader_open(fd, &ids, secret, &r) == 0)
		kind = COFFER_BLOB_CONTROL;
	coffer_blob_reader_free(&r);
	close(fd);
	coffer_err_clear();
	return kind;
}

struct listing {
	struct ctx *c;
	const struct coffer_snap_account *a;
	const char *acct_name;
	const struct coffer_acct_secret *secret;
};

static int check_listed_blob(const char *name, uint64_t size, void *arg)
{
	struct listing *l = arg;
	const char *leaf = strrchr(name, '/');
	unsigned char id[COFFER_ID_BYTES];
	if (leaf == NULL || strlen(leaf + 1) != 2 * COFFER_ID_BYTES)
		return 0;
	for (unsigned i = 0; i < COFFER_ID_BYTES; i++) {
		unsigned v;

		if (sscanf(leaf + 1 + 2 * i, "%2x", &v) != 1)
			return 0;
		id[i] = (unsigned char)v;
	}
	/* no record says its kind or size: it is whichever kind opens */
	check_blob(l->c, l->a->full_at, l->acct_name, l->a->id, id, UINT64_MAX,
	           probe_kind(l->c, name, l->a->id, id, l->secret), l->secret);
	return 0;
}

/* The account's full state cannot be read: its reverse deltas and blob
 * objects are still checked, one by one. */
static void check_without_state(struct ctx *c, const struct coffer_snap_account *a,
                                const char *acct_name, const struct coffer_acct_secret *secret)
{
	struct listing l = { c, a, acct_name, secret };
	struct coffer_buf pt = COFFER_BUF_INIT;
	char name[128], prefix[2 * COFFER_ID_BYTES + 8];

	for (uint32_t i = 0; i < a->n_revs; i++) {
		struct coffer_state rev;

		if (strcmp(a->revs[i], c->repo->ids[0]) <= 0)
			continue;
		coffer_repo_obj_name(name, sizeof name, a->id, "rev", a->revs[i]);
		c->stats->objects++;
		coffer_buf_reset(&pt);
		if (coffer_repo_get_sealed(c->repo, name, COFFER_OBJ_REV, secret->data_key, &pt) <
		        0 ||
		    coffer_state_decode(pt.data, pt.len, &rev) < 0) {
			problem(c, a->revs[i], acct_name, name, coffer_errmsg());
			continue;
		}
		coffer_state_free(&rev);
	}
	coffer_buf_free(&pt);
	memcpy(prefix, "a/", 2);
	coffer_hex(prefix + 2, a->id, COFFER_ID_BYTES);
	strcat(prefix, "/b/");
	coffer_target_list(c->repo->target, prefix, check_listed_blob, &l);
}

static void check_account(struct ctx *c, const struct coffer_manifest *newest,
                          const struct coffer_snap_account *a, const struct coffer_keyring *ring)
{
	const struct coffer_keyring_entry *e = coffer_keyring_find(ring, a->id);
	struct coffer_account_rec rec;
	struct coffer_acct_secret *secret = NULL;
	struct coffer_state state = { NULL, 0, 0 };
	struct coffer_buf pt = COFFER_BUF_INIT, nm = COFFER_BUF_INIT;
	struct blobset set = { NULL, 0, 0 };
	char acct_name[256], name[128];
	unsigned char *sk = NULL;
	int rc;

	coffer_hex(acct_name, a->id, COFFER_ID_BYTES);
	c->stats->accounts++;
	if (e == NULL || coffer_account_rec_decode(e->record, e->record_len, &rec) < 0) {
		problem(c, newest->id, acct_name, newest->keyring,
		        "account is missing from the key ring");
		return;
	}
	if (rec.state == COFFER_ACCOUNT_SHREDDED)
		return;
	sk = coffer_secure_alloc(COFFER_SK_BYTES);
	rc = sk ? coffer_keyfile_unwrap(c->repo->kf, a->id, rec.key_epoch, rec.wrapped_sk, sk)
	        : COFFER_ENOMEM;
	if (rc == 0)
		rc = coffer_acct_secret_new(rec.pk, sk, &secret);
	coffer_secure_free(sk);
	if (rc < 0) {
		problem(c, newest->id, acct_name, newest->keyring, coffer_errmsg());
		return;
	}
	if (coffer_account_name_open(a->id, &rec, secret, &nm) == 0)
		snprintf(acct_name, sizeof acct_name, "%s", coffer_buf_str(&nm));
	coffer_repo_obj_name(name, sizeof name, a->id, "full", a->full_at);
	c->stats->objects++;
	rc = coffer_repo_get_sealed(c->repo, name, COFFER_OBJ_FULL, secret->data_key, &pt);
	if (rc == 0)
		rc = coffer_state_decode(pt.data, pt.len, &state);
	if (rc < 0) {
		/* without the state, check what the manifest and the listing name */
		problem(c, a->full_at, acct_name, name, coffer_errmsg());
		check_without_state(c, a, acct_name, secret);
		goto out;
	}
	rc = collect_blobs(&set, &state, a->full_at);
	for (uint32_t i = a->n_revs; rc == 0 && i > 0; i--) {
		struct coffer_state rev;

		if (strcmp(a->revs[i - 1], c->repo->ids[0]) <= 0)
			break; /* its predecessor is pruned: not needed, may be gone */
		coffer_repo_obj_name(name, sizeof name, a->id, "rev", a->revs[i - 1]);
		c->stats->objects++;
		coffer_buf_reset(&pt);
		rc = coffer_repo_get_sealed(c->repo, name, COFFER_OBJ_REV, secret->data_key, &pt);
		if (rc == 0)
			rc = coffer_state_decode(pt.data, pt.len, &rev);
		if (rc < 0) {
			problem(c, a->revs[i - 1], acct_name, name, coffer_errmsg());
			rc = 0;
			break; /* older states cannot be rebuilt without it */
		}
		rc = coffer_state_apply(&state, &rev);
		coffer_state_free(&rev);
		/* the state before change point revs[i-1] */
		if (rc == 0)
			rc = collect_blobs(&set, &state, i >= 2 ? a->revs[i - 2] : c->repo->ids[0]);
	}
	if (rc < 0) {
		problem(c, "", acct_name, "", coffer_errmsg());
		goto out;
	}
	qsort(set.v, set.n, sizeof *set.v, id_cmp);
	for (size_t i = 0; i < set.n; i++) {
		if (i > 0 && memcmp(set.v[i].id, set.v[i - 1].id, COFFER_ID_BYTES) == 0)
			continue;
		check_blob(c, set.v[i].snap, acct_name, a->id, set.v[i].id, set.v[i].size,
		           set.v[i].kind, secret);
	}
out:
	free(set.v);
	coffer_state_free(&state);
	coffer_buf_free(&pt);
	coffer_buf_free(&nm);
	coffer_acct_secret_free(&secret);
}

int coffer_snapshot_verify(struct coffer_repo *repo, int read_data_percent, coffer_snapverify_fn fn,
                           void *arg, struct coffer_snapverify_stats *stats)
{
	struct ctx c = { repo, fn, arg, stats, read_data_percent };
	struct coffer_manifest newest;
	struct coffer_keyring ring = { 0, NULL };
	int have_newest = 0, rc;

	memset(stats, 0, sizeof *stats);
	for (size_t i = 0; i < repo->n_ids; i++) {
		struct coffer_manifest m;
		char name[64];

		snprintf(name, sizeof name, "snap/%s", repo->ids[i]);
		stats->snapshots++;
		stats->objects++;
		if (coffer_repo_get_manifest(repo, repo->ids[i], &m) < 0) {
			problem(&c, repo->ids[i], "", name, coffer_errmsg());
			continue;
		}
		if (i + 1 == repo->n_ids) {
			newest = m;
			have_newest = 1;
		} else {
			coffer_manifest_free(&m);
		}
	}
	if (!have_newest)
		return 0;
	rc = coffer_repo_get_keyring(repo, &ring, NULL, 0);
	if (rc < 0) {
		problem(&c, "", "", "keyring/", coffer_errmsg());
	} else {
		for (uint32_t i = 0; i < newest.n_accounts; i++)
			check_account(&c, &newest, &newest.accounts[i], &ring);
	}
	coffer_keyring_free(&ring);
	coffer_manifest_free(&newest);
	return 0;
}
