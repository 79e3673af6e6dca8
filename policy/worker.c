/*
 * worker.c: the retention worker (see worker.h).
 *
 * Due dates are computed from the store, not remembered: the snapshot is due
 * when the newest snapshot is older than the latest slot; a terminated
 * account is due when terminated_at + grace <= now; snapshots and events are
 * due when older than their retention. So a worker that was down, killed,
 * or run twice still converges on the same state.
 *
 * Audit, exactly once: snapshot, prune and metadata expiry are jobs
 * (job.h): an intent is committed before each, and its entry ends it. A job
 * that found nothing to do ends its intent without an entry. A run first
 * records the jobs earlier processes left unfinished (coffer_job_recover),
 * then does what is due. A policy change is recorded as the last one in the
 * same transaction as its entry.
 */
#include "worker.h"

#include "audit.h"
#include "job.h"
#include "engine/events.h"
#include "shred.h"

#include "engine/account.h"
#include "engine/blob.h"
#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/pool.h"
#include "engine/record.h"
#include "engine/spool.h"
#include "snapshots/objects.h"
#include "snapshots/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int coffer_worker_lock(struct coffer_store *st, int *fd_r)
{
	int rc = coffer_store_lock(st, "worker", LOCK_EX | LOCK_NB, fd_r);

	if (rc == COFFER_ETEMP)
		return coffer_err_set(COFFER_ETEMP,
		                      "another coffer worker is already running on this store");
	return rc;
}

int64_t coffer_worker_last_slot(const struct coffer_store *st, int64_t now)
{
	int64_t day = now - ((now % COFFER_NS_PER_DAY) + COFFER_NS_PER_DAY) % COFFER_NS_PER_DAY;
	int64_t slot = day +
	               (int64_t)coffer_store_config(st)->snapshot_time_min * 60 * COFFER_NS_PER_SEC;

	return slot > now ? slot - COFFER_NS_PER_DAY : slot;
}

struct due_acct {
	unsigned char id[COFFER_ID_BYTES];
	int64_t due;
};

struct due_list {
	struct due_acct *v;
	size_t n;
	int64_t now, grace;
	int64_t next; /* earliest future due time */
};

static int find_due(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct due_list *l = arg;
	struct coffer_account_rec rec;
	int64_t due;

	if (kl != COFFER_ID_BYTES || coffer_account_rec_decode(v, vl, &rec) < 0 ||
	    rec.state != COFFER_ACCOUNT_TERMINATED)
		return 0;
	due = rec.terminated_at + l->grace;
	if (due > l->now) {
		if (l->next == 0 || due < l->next)
			l->next = due;
		return 0;
	}
	struct due_acct *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (nv == NULL)
		return coffer_err_set(COFFER_ENOMEM, "worker: out of memory");
	l->v = nv;
	memcpy(nv[l->n].id, k, COFFER_ID_BYTES);
	nv[l->n].due = due;
	l->n++;
	return 0;
}

static int due_txn(struct coffer_txn *t, void *arg)
{
	return coffer_txn_scan(t, COFFER_DB_ACCOUNTS, NULL, 0, find_due, arg);
}

struct name_args {
	struct coffer_store *st;
	const unsigned char *id;
	struct coffer_buf *name;
};

static int name_txn(struct coffer_txn *t, void *arg)
{
	struct name_args *a = arg;
	struct coffer_account_rec rec;
	struct coffer_acct_secret *secret = NULL;
	int rc;

	rc = coffer_account_get_txn(t, a->id, &rec);
	if (rc == 0)
		rc = coffer_account_unlock(a->st, a->id, &rec, &secret);
	if (rc == 0)
		rc = coffer_account_name_open(a->id, &rec, secret, a->name);
	coffer_acct_secret_free(&secret);
	return rc;
}

static int auto_shred(struct coffer_store *st, int64_t now, coffer_worker_log_fn log, void *arg,
                      struct coffer_worker_result *res)
{
	struct due_list l = { NULL, 0, now, 0, 0 };
	int rc;

	l.grace = (int64_t)coffer_store_config(st)->termination_grace_days * COFFER_NS_PER_DAY;
	rc = coffer_index_view(coffer_store_index(st), due_txn, &l);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		struct coffer_buf name = COFFER_BUF_INIT;
		struct name_args na = { st, l.v[i].id, &name };
		struct coffer_shred_result sr;

		rc = coffer_index_view(coffer_store_index(st), name_txn, &na);
		if (rc == 0)
			rc = coffer_shred_account(st, coffer_buf_str(&name), 0,
			                          "termination grace ended", &sr);
		if (rc == 0) {
			res->shredded++;
			coffer_job_say(log, arg,
			               "auto-shred: an account terminated %d days ago was "
			               "crypto-shredded (%llu records, %llu snapshot objects)",
			               coffer_store_config(st)->termination_grace_days,
			               (unsigned long long)sr.records,
			               (unsigned long long)sr.target_objects);
		}
		coffer_buf_free(&name);
	}
	if (l.next && (res->next_due == 0 || l.next < res->next_due))
		res->next_due = l.next;
	free(l.v);
	return rc;
}

static int policy_get_txn(struct coffer_txn *t, void *arg)
{
	struct coffer_buf *b = arg;
	const void *v;
	size_t n;
	int rc = coffer_txn_get(t, COFFER_DB_META, "audit_policy", 12, &v, &n);

	return rc == 0 ? coffer_buf_append(b, v, n) : rc;
}

static int policy_put_txn(struct coffer_txn *t, void *arg)
{
	const char *p = arg;

	return coffer_txn_put(t, COFFER_DB_META, "audit_policy", 12, p, strlen(p), 0);
}

/* A job refused before it began (another snapshot writer holds the target's
 * lock) changed nothing, and its intent goes; any other failure leaves it,
 * for the next run to record as interrupted (job.h). */
static int job_failed(struct coffer_store *st, const struct coffer_job *j, int rc)
{
	if (rc == COFFER_ETEMP)
		coffer_job_end(st, j, NULL);
	return rc;
}

/* Records a policy change in the audit log when coffer.conf's policy differs
 * from the one last recorded (in the transaction that records the entry). */
static int audit_policy(struct coffer_store *st, coffer_worker_log_fn log, void *arg)
{
	const struct coffer_config *c = coffer_store_config(st);
	struct coffer_buf old = COFFER_BUF_INIT;
	char now[256];
	int rc;

	snprintf(now, sizeof now,
	         "data_retention_days=%d metadata_retention_days=%d termination_grace_days=%d "
	         "snapshot_time=%02d:%02d snapshot_target=%s",
	         c->data_retention_days, c->metadata_retention_days, c->termination_grace_days,
	         c->snapshot_time_min / 60, c->snapshot_time_min % 60,
	         c->snapshot_target ? "set" : "unset");
	rc = coffer_index_view(coffer_store_index(st), policy_get_txn, &old);
	if (rc == 0 && strcmp(coffer_buf_str(&old), now) == 0)
		goto out;
	if (rc < 0 && rc != COFFER_ENOTFOUND)
		goto out;
	coffer_job_say(log, arg, "policy: %s", now);
	rc = coffer_audit_append_txn(st, "policy-change", "", now, policy_put_txn, now);
out:
	coffer_buf_free(&old);
	return rc;
}

int coffer_worker_run(struct coffer_store *st, int64_t now, coffer_worker_log_fn log, void *arg,
                      struct coffer_worker_result *res)
{
	const struct coffer_config *cfg = coffer_store_config(st);
	struct coffer_shred_result sr;
	struct coffer_job job;
	char detail[256];
	int64_t slot, newest;
	int rc;

	memset(res, 0, sizeof *res);
	rc = audit_policy(st, log, arg);
	if (rc < 0)
		return coffer_err_prefix(rc, "worker: policy: ");
	rc = coffer_job_recover(st, log, arg);
	if (rc < 0)
		return coffer_err_prefix(rc, "worker: audit: ");
	rc = coffer_shred_resume(st, &sr);
	if (rc == 0 && sr.shredded_at)
		coffer_job_say(log, arg, "purge: finished an interrupted purge (%llu records)",
		               (unsigned long long)sr.records);
	if (rc == 0)
		rc = auto_shred(st, now, log, arg, res);
	if (rc < 0)
		return coffer_err_prefix(rc, "worker: auto-shred: ");

	slot = coffer_worker_last_slot(st, now);
	if (cfg->snapshot_target) {
		struct coffer_snapshot_result sres;
		struct coffer_prune_result pres;

		rc = coffer_snapshot_newest(st, NULL, &newest, NULL);
		if (rc == 0 && newest < slot) {
			rc = coffer_job_begin(st, &job, "snapshot", "", now);
			if (rc == 0)
				rc = job_failed(st, &job,
				                coffer_snapshot_create(st, NULL, NULL, NULL,
				                                       &sres));
			if (rc == 0) {
				snprintf(res->snapshot, sizeof res->snapshot, "%s", sres.id);
				snprintf(
				    detail, sizeof detail,
				    "id=%s accounts=%u changed=%u messages=%llu new_blobs=%llu "
				    "new_bytes=%llu",
				    sres.id, sres.accounts, sres.changed,
				    (unsigned long long)sres.messages,
				    (unsigned long long)sres.new_blobs,
				    (unsigned long long)sres.new_bytes);
				coffer_job_say(log, arg, "snapshot: %s", detail);
				rc = coffer_job_end(st, &job, detail);
			}
		}
		if (rc < 0)
			return coffer_err_prefix(rc, "worker: snapshot: ");
		rc = coffer_job_begin(st, &job, "prune", "", now);
		if (rc == 0)
			rc = job_failed(st, &job, coffer_snapshot_prune(st, NULL, now, &pres));
		if (rc == 0 && pres.pruned) {
			res->pruned = pres.pruned;
			snprintf(detail, sizeof detail, "snapshots=%u objects=%llu kept=%u",
			         pres.pruned, (unsigned long long)pres.objects_deleted, pres.kept);
			coffer_job_say(log, arg, "prune: %s", detail);
		}
		if (rc == 0)
			rc = coffer_job_end(st, &job, pres.pruned ? detail : NULL);
		if (rc < 0)
			return coffer_err_prefix(rc, "worker: prune: ");
	} else {
		coffer_job_say(log, arg,
		               "snapshot: no snapshot_target in coffer.conf; snapshots are "
		               "disabled");
	}
	rc = coffer_job_begin(st, &job, "metadata-expiry", "", now);
	if (rc == 0)
		rc = coffer_events_expire(st,
		                          now - (int64_t)cfg->metadata_retention_days *
		                                    COFFER_NS_PER_DAY,
		                          &res->events_expired);
	if (rc == 0 && res->events_expired) {
		snprintf(detail, sizeof detail, "events=%llu older_than_days=%d",
		         (unsigned long long)res->events_expired, cfg->metadata_retention_days);
		coffer_job_say(log, arg, "metadata-expiry: %s", detail);
	}
	if (rc == 0)
		rc = coffer_job_end(st, &job, res->events_expired ? detail : NULL);
	if (rc < 0)
		return coffer_err_prefix(rc, "worker: metadata expiry: ");
	rc = coffer_blob_collect(st, NULL, &res->blobs_collected);
	if (rc < 0)
		return coffer_err_prefix(rc, "worker: trash: ");
	if (res->blobs_collected)
		coffer_job_say(log, arg, "trash: %llu blob files removed",
		               (unsigned long long)res->blobs_collected);
	/* spooled deliveries no reader has indexed yet (engine/spool.h), then
	 * empty files made ahead for accounts that got no mail since */
	rc = coffer_spool_absorb(st, NULL, &res->spool_absorbed);
	if (rc < 0)
		return coffer_err_prefix(rc, "worker: spooled deliveries: ");
	if (res->spool_absorbed)
		coffer_job_say(log, arg, "spool: %llu spooled deliveries indexed",
		               (unsigned long long)res->spool_absorbed);
	rc = coffer_pool_trim(st, now - COFFER_NS_PER_DAY, &res->pool_trimmed);
	if (rc < 0)
		return coffer_err_prefix(rc, "worker: blob pool: ");
	if (res->pool_trimmed)
		coffer_job_say(log, arg, "pool: %llu unused blob files removed",
		               (unsigned long long)res->pool_trimmed);
	if (res->next_due == 0 || slot + COFFER_NS_PER_DAY < res->next_due)
		res->next_due = slot + COFFER_NS_PER_DAY;
	return 0;
}
