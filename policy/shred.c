/*
 * shred.c: crypto-shredding (see shred.h).
 *
 * Order of operations, each step idempotent:
 *   0. checks (key file readable, account exists, terminated, not shredded);
 *   1. index: "shred_pending" = account id || time || pseudonym (and the
 *      termination, with --terminate), one transaction;
 *   2. key file: add epoch e+1 (both epochs present), atomic replace;
 *   3. index, one transaction: every other live account's secret key
 *      re-wrapped under e+1; the account becomes a tombstone (no keys, no
 *      name box) and every record under its id is deleted;
 *   4. snapshot target (if one is set): a key ring written from the index,
 *      older rings deleted, the account's objects deleted;
 *   5. key file: epoch e destroyed (only e+1 left), atomic replace;
 *   6. the account's blob directory removed from the store;
 *   7. the audit log records the purge, and the transaction that records
 *      the entry as written (the log's head) removes shred_pending.
 * A crash anywhere leaves shred_pending set, and the resume redoes from 2:
 * step 2 is skipped when a rotation is already under way; step 3 re-wraps
 * whatever is not yet under the newest epoch; step 7 appends no second
 * entry when the log already holds this purge's (a crash between its line
 * and its head: the entry's detail ends with the request's time in ns, as
 * recorded in step 1, which tells one purge of a name from another).
 * Removing shred_pending before the entry was written would lose the entry
 * to a crash between the two: a purge the audit log never records.
 */
#include "shred.h"

#include "audit.h"

#include "engine/account.h"
#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/index.h"
#include "engine/keyfile.h"
#include "engine/names.h"
#include "engine/record.h"
#include "snapshots/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PENDING_KEY "shred_pending"
#define PENDING_KEY_LEN 13

/* Sub-databases whose keys start with the account id. */
static const enum coffer_db per_account[] = {
	COFFER_DB_FOLDERS,   COFFER_DB_FOLDER_NAMES, COFFER_DB_KEYWORDS,  COFFER_DB_MESSAGES,
	COFFER_DB_MSG_NAMES, COFFER_DB_BLOBS,        COFFER_DB_UNSNAPPED, COFFER_DB_TRASH,
	COFFER_DB_CTLFILES,  COFFER_DB_AUTH,         COFFER_DB_EVENTS,    COFFER_DB_POOL,
};

struct pending {
	unsigned char id[COFFER_ID_BYTES];
	int64_t when;
	char pseudonym[COFFER_AUDIT_PSEUDONYM_MAX];
	char why[64];
};

static int encode_pending(const struct pending *p, unsigned char *buf, size_t *len)
{
	size_t n = COFFER_ID_BYTES;

	memcpy(buf, p->id, COFFER_ID_BYTES);
	coffer_put_u64le(buf + n, (uint64_t)p->when);
	n += 8;
	memcpy(buf + n, p->pseudonym, sizeof p->pseudonym);
	n += sizeof p->pseudonym;
	memcpy(buf + n, p->why, sizeof p->why);
	n += sizeof p->why;
	*len = n;
	return 0;
}

static int get_pending_txn(struct coffer_txn *t, void *arg)
{
	struct pending *p = arg;
	const unsigned char *v;
	const void *vp;
	size_t n;
	int rc;

	rc = coffer_txn_get(t, COFFER_DB_META, PENDING_KEY, PENDING_KEY_LEN, &vp, &n);
	if (rc < 0)
		return rc;
	v = vp;
	if (n != COFFER_ID_BYTES + 8 + sizeof p->pseudonym + sizeof p->why)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged shred_pending record");
	memcpy(p->id, v, COFFER_ID_BYTES);
	p->when = (int64_t)coffer_get_u64le(v + COFFER_ID_BYTES);
	memcpy(p->pseudonym, v + COFFER_ID_BYTES + 8, sizeof p->pseudonym);
	memcpy(p->why, v + COFFER_ID_BYTES + 8 + sizeof p->pseudonym, sizeof p->why);
	p->pseudonym[sizeof p->pseudonym - 1] = '\0';
	p->why[sizeof p->why - 1] = '\0';
	return 0;
}

struct begin_args {
	struct coffer_store *st;
	const char *canon;
	int terminate;
	struct pending *p;
};

static int begin_txn(struct coffer_txn *t, void *arg)
{
	struct begin_args *a = arg;
	struct coffer_account_rec rec;
	unsigned char buf[256];
	size_t len;
	int rc;

	rc = coffer_account_lookup_txn(t, a->st, a->canon, a->p->id, &rec);
	if (rc < 0)
		return rc;
	if (rec.state == COFFER_ACCOUNT_SHREDDED)
		return coffer_account_check_active(&rec, a->canon);
	if (rec.state == COFFER_ACCOUNT_ACTIVE) {
		if (!a->terminate)
			return coffer_err_set(COFFER_EINVAL,
			                      "account %s is active: terminate it first, or pass "
			                      "--terminate",
			                      a->canon);
		rec.state = COFFER_ACCOUNT_TERMINATED;
		rec.terminated_at = a->p->when;
		rc = coffer_account_put_txn(t, a->p->id, &rec);
		if (rc < 0)
			return rc;
	}
	encode_pending(a->p, buf, &len);
	return coffer_txn_put(t, COFFER_DB_META, PENDING_KEY, PENDING_KEY_LEN, buf, len, 0);
}

struct rewrap_args {
	struct coffer_store *st;
	struct coffer_keyfile *kf;
	const struct pending *p;
	struct coffer_shred_result *res;
};

struct idlist {
	unsigned char (*ids)[COFFER_ID_BYTES];
	size_t n, cap;
};

static int collect_id(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct idlist *l = arg;

	if (kl != COFFER_ID_BYTES)
		return 0;
	if (coffer_array_grow(&l->ids, &l->cap, l->n, sizeof *l->ids, 64) < 0)
		return coffer_err_set(COFFER_ENOMEM, "shred: out of memory");
	memcpy(l->ids[l->n++], k, COFFER_ID_BYTES);
	return 0;
}

static int rewrap_txn(struct coffer_txn *t, void *arg)
{
	struct rewrap_args *a = arg;
	struct idlist l = { NULL, 0, 0 };
	unsigned char *sk = NULL;
	size_t n;
	int rc;

	a->res->other_accounts = 0;
	a->res->records = 0;
	/* ids first: the loop below writes to the same sub-database */
	rc = coffer_txn_scan(t, COFFER_DB_ACCOUNTS, NULL, 0, collect_id, &l);
	n = l.n;
	sk = coffer_secure_alloc(COFFER_SK_BYTES);
	if (rc == 0 && sk == NULL)
		rc = coffer_err_set(COFFER_ENOMEM, "shred: cannot allocate secure memory");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const unsigned char *id = l.ids[i];
		struct coffer_account_rec rec;

		rc = coffer_account_get_txn(t, id, &rec);
		if (rc < 0)
			break;
		if (memcmp(id, a->p->id, COFFER_ID_BYTES) == 0) {
			if (rec.state != COFFER_ACCOUNT_SHREDDED) {
				rec.state = COFFER_ACCOUNT_SHREDDED;
				rec.shredded_at = a->p->when;
			}
			rec.key_epoch = 0;
			memset(rec.pk, 0, sizeof rec.pk);
			memset(rec.wrapped_sk, 0, sizeof rec.wrapped_sk);
			rec.name_box = NULL;
			rec.name_box_len = 0;
			rc = coffer_account_put_txn(t, id, &rec);
			for (size_t d = 0;
			     rc == 0 && d < sizeof per_account / sizeof per_account[0]; d++) {
				uint64_t removed = 0;

				rc = coffer_txn_del_prefix(t, per_account[d], id, COFFER_ID_BYTES,
				                           &removed);
				a->res->records += removed;
			}
			continue;
		}
		if (rec.state == COFFER_ACCOUNT_SHREDDED ||
		    rec.key_epoch == coffer_keyfile_epoch(a->kf))
			continue;
		rc = coffer_keyfile_unwrap(a->kf, id, rec.key_epoch, rec.wrapped_sk, sk);
		if (rc == 0)
			rc = coffer_keyfile_wrap(a->kf, id, sk, &rec.key_epoch, rec.wrapped_sk);
		if (rc == 0)
			rc = coffer_account_put_txn(t, id, &rec);
		a->res->other_accounts++;
	}
	coffer_secure_free(sk);
	free(l.ids);
	return rc;
}

static int clear_pending_txn(struct coffer_txn *t, void *arg)
{
	int rc = coffer_txn_del(t, COFFER_DB_META, PENDING_KEY, PENDING_KEY_LEN);

	return rc == COFFER_ENOTFOUND ? 0 : rc;
}

/* rm -rf of STORE/blobs/<acct> (two levels: <xx>/<blob>). */
static int remove_blob_dir(struct coffer_store *st, const unsigned char *acct)
{
	struct coffer_buf dir = COFFER_BUF_INIT;
	DIR *d, *sub;
	struct dirent *e, *f;
	int rc = 0, dfd, sfd;

	rc = coffer_store_account_dir(st, acct, &dir);
	if (rc < 0)
		return rc;
	d = opendir(coffer_buf_str(&dir));
	if (d == NULL) {
		rc = errno == ENOENT ? 0
		                     : coffer_err_set(coffer_err_from_errno(errno), "shred: %s: %s",
		                                      coffer_buf_str(&dir), strerror(errno));
		goto out;
	}
	dfd = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		sfd = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0) {
			unlinkat(dfd, e->d_name, 0);
			continue;
		}
		sub = fdopendir(sfd);
		if (sub == NULL) {
			close(sfd);
			continue;
		}
		while ((f = readdir(sub)) != NULL)
			if (f->d_name[0] != '.')
				unlinkat(sfd, f->d_name, 0);
		closedir(sub);
		if (unlinkat(dfd, e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			rc = coffer_err_set(coffer_err_from_errno(errno),
			                    "shred: cannot remove %s/%s: %s", coffer_buf_str(&dir),
			                    e->d_name, strerror(errno));
	}
	closedir(d);
	if (rc == 0 && rmdir(coffer_buf_str(&dir)) < 0 && errno != ENOENT)
		rc = coffer_err_set(coffer_err_from_errno(errno), "shred: cannot remove %s: %s",
		                    coffer_buf_str(&dir), strerror(errno));
out:
	coffer_buf_free(&dir);
	return rc;
}

/* Step 7: the entry, and shred_pending removed with its head. Only a resumed
 * purge can find its entry written already (a purge begun in this call
 * appended nothing before). */
static int record_purge(struct coffer_store *st, const struct pending *p, int resumed,
                        const char *detail)
{
	char want[48]; /* how the entry's detail ends */
	int found = 0, rc = 0;

	snprintf(want, sizeof want, " requested_ns=%lld", (long long)p->when);
	if (resumed)
		rc = coffer_audit_find(st, p->pseudonym, "purge", want, &found);
	if (rc < 0)
		return rc;
	if (found)
		return coffer_index_update(coffer_store_index(st), clear_pending_txn, NULL);
	return coffer_audit_append_txn(st, "purge", p->pseudonym, detail, clear_pending_txn, NULL);
}

static int finish(struct coffer_store *st, const struct pending *p, int resumed,
                  struct coffer_shred_result *res)
{
	struct coffer_keyfile *kf;
	struct rewrap_args ra;
	const char *path = coffer_store_key_file_path(st);
	char detail[256];
	int rc;

	memset(res, 0, sizeof *res);
	res->shredded_at = p->when;
	rc = coffer_store_keyfile(st, &kf);
	if (rc < 0)
		return rc;
	if (!coffer_keyfile_rotating(kf)) {
		rc = coffer_keyfile_begin_rotation(kf);
		if (rc == 0)
			rc = coffer_keyfile_replace(path, kf);
		if (rc < 0)
			return coffer_err_prefix(rc, "shred: cannot start the key rotation: ");
	}
	ra = (struct rewrap_args){ st, kf, p, res };
	rc = coffer_index_update(coffer_store_index(st), rewrap_txn, &ra);
	if (rc < 0)
		return coffer_err_prefix(rc, "shred: ");
	if (coffer_store_config(st)->snapshot_target) {
		rc = coffer_snapshot_rekey(st, NULL, p->id, &res->target_objects);
		if (rc < 0)
			return coffer_err_prefix(rc,
			                         "shred: the snapshot target could not be re-keyed "
			                         "(the purge will finish when it can): ");
	}
	coffer_keyfile_end_rotation(kf);
	rc = coffer_keyfile_replace(path, kf);
	if (rc < 0)
		return coffer_err_prefix(rc, "shred: cannot end the key rotation: ");
	rc = remove_blob_dir(st, p->id);
	if (rc < 0)
		return rc;
	snprintf(detail, sizeof detail,
	         "reason=%s records=%llu snapshot_objects=%llu rewrapped_accounts=%llu epoch=%llu "
	         "requested_ns=%lld",
	         p->why, (unsigned long long)res->records, (unsigned long long)res->target_objects,
	         (unsigned long long)res->other_accounts,
	         (unsigned long long)coffer_keyfile_epoch(kf), (long long)p->when);
	return record_purge(st, p, resumed, detail);
}

int coffer_shred_resume(struct coffer_store *st, struct coffer_shred_result *res)
{
	struct pending p;
	int rc;

	memset(res, 0, sizeof *res);
	rc = coffer_index_view(coffer_store_index(st), get_pending_txn, &p);
	if (rc == COFFER_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	return finish(st, &p, 1, res);
}

int coffer_shred_account(struct coffer_store *st, const char *name, int terminate, const char *why,
                         struct coffer_shred_result *res)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct coffer_keyfile *kf;
	struct begin_args a;
	struct pending p;
	int rc;

	memset(res, 0, sizeof *res);
	memset(&p, 0, sizeof p);
	rc = coffer_names_account(name, strlen(name), &canon);
	if (rc == 0)
		rc = coffer_store_keyfile(st, &kf); /* refuse before changing anything */
	if (rc == 0)
		rc = coffer_shred_resume(st, res); /* an earlier purge comes first */
	if (rc == 0)
		rc = coffer_clock_now(&p.when);
	if (rc == 0)
		rc = coffer_audit_pseudonym(st, coffer_buf_str(&canon), p.pseudonym);
	if (rc < 0)
		goto out;
	snprintf(p.why, sizeof p.why, "%s", why ? why : "request");
	a = (struct begin_args){ st, coffer_buf_str(&canon), terminate, &p };
	rc = coffer_index_update(coffer_store_index(st), begin_txn, &a);
	if (rc == 0)
		rc = finish(st, &p, 0, res);
out:
	coffer_buf_free(&canon);
	return rc;
}
