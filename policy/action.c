/*
 * action.c: the operator's policy actions as audited jobs (see action.h).
 */
#include "action.h"

#include "audit.h"
#include "job.h"

#include "engine/account.h"
#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/names.h"
#include "engine/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Jobs earlier processes left unfinished: recorded first, so that the log
 * keeps their order. A failure here does not stop the action (the next
 * worker run tries again). */
static void recover(struct coffer_store *st)
{
	if (coffer_job_recover(st, NULL, NULL) < 0)
		coffer_err_clear();
}

/* The entry of a job that succeeded; a failure to write it leaves the intent
 * and is reported through *pending_r, not as the action's failure. */
static int end(struct coffer_store *st, const struct coffer_job *j, const char *detail,
               int *pending_r)
{
	if (pending_r)
		*pending_r = 0;
	if (coffer_job_end(st, j, detail) < 0 && pending_r)
		*pending_r = 1;
	return 0;
}

/* Codes of actions refused before they change anything: a busy lock, a bad
 * argument, nothing found, no target configured, a key problem, an account
 * that is terminated or shredded. */
static int refused(int rc)
{
	return rc == COFFER_ETEMP || rc == COFFER_EINVAL || rc == COFFER_ENOTFOUND ||
	       rc == COFFER_ENOACCOUNT || rc == COFFER_ECONFIG || rc == COFFER_EPERM ||
	       rc == COFFER_ETERMINATED || rc == COFFER_ESHREDDED;
}

/* A job that failed with rc: refused, its intent ends without an entry;
 * else the failure is its entry (the code's generic text only: the log names
 * no account). */
static int failed(struct coffer_store *st, const struct coffer_job *j, int rc)
{
	struct coffer_buf d = COFFER_BUF_INIT;
	char *msg = strdup(coffer_errmsg());

	if (refused(rc)) {
		coffer_job_end(st, j, NULL);
	} else {
		coffer_buf_printf(&d, "failed: %s", coffer_strerror(rc));
		if (coffer_buf_ok(&d) == 0)
			coffer_job_end(st, j, coffer_buf_str(&d));
		coffer_buf_free(&d);
	}
	/* the action's own message is what the caller reports */
	if (msg)
		coffer_err_set(rc, "%s", msg);
	free(msg);
	return rc;
}

/* The account's pseudonym for the log, or "id:<hex>" when the store has no
 * key file to compute it (terminate needs none). */
struct lookup_args {
	struct coffer_store *st;
	const char *canon;
	unsigned char id[COFFER_ID_BYTES];
};

static int lookup_txn(struct coffer_txn *t, void *arg)
{
	struct lookup_args *a = arg;
	struct coffer_account_rec rec;

	return coffer_account_lookup_txn(t, a->st, a->canon, a->id, &rec);
}

static int account_ref(struct coffer_store *st, const char *canon,
                       char out[COFFER_AUDIT_PSEUDONYM_MAX])
{
	struct lookup_args a = { st, canon, { 0 } };
	int rc = coffer_audit_pseudonym(st, canon, out);

	if (rc == 0)
		return 0;
	coffer_err_clear();
	rc = coffer_index_view(coffer_store_index(st), lookup_txn, &a);
	if (rc == 0) {
		memcpy(out, "id:", 3);
		coffer_hex(out + 3, a.id, COFFER_ID_BYTES);
	}
	return rc;
}

static int set_state(struct coffer_store *st, const char *name, size_t n, int terminate,
                     int *pending_r)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct coffer_job j;
	struct coffer_account_state_change a;
	char ref[COFFER_AUDIT_PSEUDONYM_MAX];
	int rc;

	if (pending_r)
		*pending_r = 0;
	rc = coffer_names_account(name, n, &canon);
	if (rc == 0)
		rc = account_ref(st, coffer_buf_str(&canon), ref);
	if (rc == 0) {
		recover(st);
		a = (struct coffer_account_state_change){ st, coffer_buf_str(&canon), terminate,
			                                  0 };
		rc = coffer_clock_now(&a.now);
	}
	if (rc == 0)
		rc = coffer_job_begin_with(st, &j, terminate ? "terminate" : "reactivate", ref,
		                           a.now, coffer_account_state_txn, &a);
	if (rc == 0)
		rc = end(st, &j, "", pending_r);
	coffer_buf_free(&canon);
	return rc;
}

int coffer_action_terminate(struct coffer_store *st, const char *name, size_t n, int *pending_r)
{
	return set_state(st, name, n, 1, pending_r);
}

int coffer_action_reactivate(struct coffer_store *st, const char *name, size_t n, int *pending_r)
{
	return set_state(st, name, n, 0, pending_r);
}

/* The intent of a store-wide job at the current time. */
static int begin(struct coffer_store *st, struct coffer_job *j, const char *action,
                 const char *account, int *pending_r)
{
	int64_t now;
	int rc;

	if (pending_r)
		*pending_r = 0;
	recover(st);
	rc = coffer_clock_now(&now);
	return rc < 0 ? rc : coffer_job_begin(st, j, action, account, now);
}

int coffer_action_snapshot(struct coffer_store *st, const char *target, unsigned flags,
                           coffer_progress_fn progress, void *parg,
                           struct coffer_snapshot_result *res, int *pending_r)
{
	struct coffer_job j;
	char detail[200];
	int rc = begin(st, &j, "snapshot", "", pending_r);

	if (rc < 0)
		return rc;
	rc = coffer_snapshot_create_ex(st, target, flags, progress, parg, res);
	if (rc < 0)
		return failed(st, &j, rc);
	snprintf(detail, sizeof detail,
	         "id=%s accounts=%u changed=%u messages=%llu new_blobs=%llu "
	         "new_bytes=%llu",
	         res->id, res->accounts, res->changed, (unsigned long long)res->messages,
	         (unsigned long long)res->new_blobs, (unsigned long long)res->new_bytes);
	return end(st, &j, detail, pending_r);
}

int coffer_action_prune(struct coffer_store *st, const char *target, int64_t now,
                        struct coffer_prune_result *res, int *pending_r)
{
	struct coffer_job j;
	char detail[120];
	int rc = begin(st, &j, "prune", "", pending_r);

	if (rc < 0)
		return rc;
	rc = coffer_snapshot_prune(st, target, now, res);
	if (rc < 0)
		return failed(st, &j, rc);
	if (res->pruned == 0)
		return end(st, &j, NULL, pending_r);
	snprintf(detail, sizeof detail, "snapshots=%u objects=%llu kept=%u", res->pruned,
	         (unsigned long long)res->objects_deleted, res->kept);
	return end(st, &j, detail, pending_r);
}

int coffer_action_restore(struct coffer_store *st, const struct coffer_restore_opts *o,
                          struct coffer_restore_result *res, int *pending_r)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct coffer_job j;
	char ref[COFFER_AUDIT_PSEUDONYM_MAX], detail[700];
	int rc = coffer_names_account(o->account, strlen(o->account), &canon);

	if (rc == 0)
		rc = coffer_audit_pseudonym(st, coffer_buf_str(&canon), ref);
	coffer_buf_free(&canon);
	if (rc == 0)
		rc = begin(st, &j, "restore", ref, pending_r);
	if (rc < 0)
		return rc;
	rc = coffer_restore_into(st, o, res);
	if (rc < 0)
		return failed(st, &j, rc);
	snprintf(detail, sizeof detail, "snapshot=%s restored=%llu present=%llu uid=%u",
	         res->snapshot, (unsigned long long)res->restored, (unsigned long long)res->present,
	         o->uid);
	return end(st, &j, detail, pending_r);
}

int coffer_action_restore_all(const char *store_path, const char *key_file, const char *from,
                              struct coffer_restore_result *res, int *pending_r)
{
	struct coffer_store *st = NULL;
	struct coffer_job j;
	char detail[160];
	int rc = coffer_restore_all(store_path, key_file, from, res);

	if (pending_r)
		*pending_r = 0;
	if (rc < 0)
		return rc;
	snprintf(detail, sizeof detail, "all accounts=%llu snapshot=%s",
	         (unsigned long long)res->accounts, res->snapshot);
	if (coffer_store_open(store_path, key_file, &st) == 0 &&
	    begin(st, &j, "restore", "", pending_r) == 0)
		end(st, &j, detail, pending_r);
	else if (pending_r)
		*pending_r = 1;
	coffer_store_close(&st);
	return 0;
}
