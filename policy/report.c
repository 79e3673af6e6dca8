/*
 * report.c: gathering the retention report (see report.h).
 *
 * Sources: the accounts sub-database (states and dates; names through each
 * account's key), messages (count, bytes, oldest internal date), the events
 * log (count, oldest), the snapshot manifests (which snapshots hold each
 * account), and the policy. "Overdue" compares each with the policy at the
 * report's time: a snapshot past data retention, an event past metadata
 * retention, a terminated account past its grace, an unfinished purge.
 */
#include "report.h"

#include "audit.h"
#include "engine/events.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/names.h"
#include "engine/record.h"
#include "snapshots/objects.h"
#include "snapshots/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gather {
	struct coffer_store *st;
	struct coffer_report *r;
	const unsigned char *only;
	int64_t now;
	struct coffer_manifest *manifests;
	size_t n_manifests;
	int64_t keep;
};

static int add_overdue(struct coffer_report *r, const char *what, const char *subject,
                       int64_t until)
{
	struct coffer_report_overdue *v = realloc(r->overdue, (r->n_overdue + 1) * sizeof *v);

	if (v == NULL)
		return coffer_err_set(COFFER_ENOMEM, "report: out of memory");
	r->overdue = v;
	memset(&v[r->n_overdue], 0, sizeof *v);
	snprintf(v[r->n_overdue].what, sizeof v->what, "%s", what);
	snprintf(v[r->n_overdue].subject, sizeof v->subject, "%s", subject);
	v[r->n_overdue].held_until = until;
	r->n_overdue++;
	return 0;
}

struct msg_stat {
	uint64_t n, bytes;
	int64_t oldest;
};

static int count_msg(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct msg_stat *m = arg;
	struct coffer_message_rec rec;

	if (coffer_message_rec_decode(v, vl, &rec) < 0)
		return 0;
	m->n++;
	m->bytes += rec.size;
	if (m->oldest == 0 || rec.internal_date < m->oldest)
		m->oldest = rec.internal_date;
	return 0;
}

static int one_account(struct gather *g, struct coffer_txn *t, const unsigned char *id,
                       const struct coffer_account_rec *rec)
{
	const struct coffer_config *cfg = coffer_store_config(g->st);
	struct coffer_report *r = g->r;
	struct coffer_report_account *a;
	struct coffer_acct_secret *secret = NULL;
	struct coffer_buf name = COFFER_BUF_INIT;
	struct msg_stat ms = { 0, 0, 0 };
	char hex[2 * COFFER_ID_BYTES + 1];
	int rc = 0;

	a = realloc(r->accounts, (r->n_accounts + 1) * sizeof *a);
	if (a == NULL)
		return coffer_err_set(COFFER_ENOMEM, "report: out of memory");
	r->accounts = a;
	a = &a[r->n_accounts++];
	memset(a, 0, sizeof *a);
	a->state = rec->state;
	a->created_at = rec->created_at;
	a->terminated_at = rec->terminated_at;
	a->shredded_at = rec->shredded_at;
	if (rec->state != COFFER_ACCOUNT_SHREDDED) {
		rc = coffer_account_unlock(g->st, id, rec, &secret);
		if (rc == 0)
			rc = coffer_account_name_open(id, rec, secret, &name);
		coffer_acct_secret_free(&secret);
		if (rc < 0)
			return rc;
		a->name = strdup(coffer_buf_str(&name));
		coffer_buf_free(&name);
		if (a->name == NULL)
			return coffer_err_set(COFFER_ENOMEM, "report: out of memory");
		rc = coffer_audit_pseudonym(g->st, a->name, a->pseudonym);
		if (rc < 0)
			return rc;
	} else {
		coffer_hex(hex, id, COFFER_ID_BYTES);
		snprintf(a->pseudonym, sizeof a->pseudonym, "id:%.16s", hex);
	}
	rc = coffer_txn_scan(t, COFFER_DB_MESSAGES, id, COFFER_ID_BYTES, count_msg, &ms);
	if (rc == 0)
		rc = coffer_events_stat_txn(t, id, &a->events, &a->oldest_event);
	if (rc < 0)
		return rc;
	a->messages = ms.n;
	a->bytes = ms.bytes;
	a->oldest_message = ms.oldest;
	if (a->events)
		a->events_expire = a->oldest_event +
		                   (int64_t)cfg->metadata_retention_days * COFFER_NS_PER_DAY;
	/* a shredded account's objects were deleted by its purge; old manifests
	 * still name its id, but hold nothing of it */
	for (size_t i = 0; rec->state != COFFER_ACCOUNT_SHREDDED && i < g->n_manifests; i++) {
		struct coffer_report_snap *s;

		if (coffer_manifest_account(&g->manifests[i], id) == NULL)
			continue;
		s = realloc(a->snaps, (a->n_snaps + 1) * sizeof *s);
		if (s == NULL)
			return coffer_err_set(COFFER_ENOMEM, "report: out of memory");
		a->snaps = s;
		snprintf(s[a->n_snaps].id, sizeof s->id, "%s", g->manifests[i].id);
		s[a->n_snaps].created_at = g->manifests[i].created_at;
		s[a->n_snaps].expires_at = g->manifests[i].created_at + g->keep;
		a->n_snaps++;
	}
	switch (rec->state) {
	case COFFER_ACCOUNT_ACTIVE: snprintf(a->next_action, sizeof a->next_action, "none"); break;
	case COFFER_ACCOUNT_TERMINATED:
		snprintf(a->next_action, sizeof a->next_action, "auto-shred");
		a->next_action_at = rec->terminated_at +
		                    (int64_t)cfg->termination_grace_days * COFFER_NS_PER_DAY;
		if (a->next_action_at < g->now)
			rc = add_overdue(r, "terminated account", a->name ? a->name : a->pseudonym,
			                 a->next_action_at);
		break;
	case COFFER_ACCOUNT_SHREDDED:
		snprintf(a->next_action, sizeof a->next_action, "none (shredded)");
		if (a->messages || a->events)
			rc = add_overdue(r, "shredded account's data", a->pseudonym,
			                 rec->shredded_at);
		break;
	}
	if (rc == 0 && a->events && a->events_expire < g->now)
		rc = add_overdue(r, "metadata", a->name ? a->name : a->pseudonym, a->events_expire);
	return rc;
}

struct scan_args {
	struct gather *g;
	struct coffer_txn *t;
};

static int scan_account(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct scan_args *s = arg;
	struct coffer_account_rec rec;
	int rc;

	if (kl != COFFER_ID_BYTES)
		return 0;
	if (s->g->only && memcmp(k, s->g->only, COFFER_ID_BYTES) != 0)
		return 0;
	rc = coffer_account_rec_decode(v, vl, &rec);
	return rc < 0 ? rc : one_account(s->g, s->t, k, &rec);
}

static int gather_txn(struct coffer_txn *t, void *arg)
{
	struct scan_args s = { arg, t };
	const void *v;
	size_t n;
	int rc;

	rc = coffer_txn_get(t, COFFER_DB_META, "shred_pending", 13, &v, &n);
	if (rc == 0)
		rc = add_overdue(s.g->r, "purge",
		                 "an interrupted purge (the worker will finish it)", s.g->now);
	else if (rc == COFFER_ENOTFOUND)
		rc = 0;
	return rc == 0 ? coffer_txn_scan(t, COFFER_DB_ACCOUNTS, NULL, 0, scan_account, &s) : rc;
}

struct lookup_args {
	struct coffer_store *st;
	const char *canon;
	unsigned char *id;
};

static int lookup_txn(struct coffer_txn *t, void *arg)
{
	struct lookup_args *a = arg;
	struct coffer_account_rec rec;

	return coffer_account_lookup_txn(t, a->st, a->canon, a->id, &rec);
}

static int load_manifests(struct gather *g)
{
	struct coffer_repo *repo = NULL;
	struct coffer_report *r = g->r;
	int rc;

	if (coffer_store_config(g->st)->snapshot_target == NULL)
		return 0;
	rc = coffer_repo_open(g->st, NULL, 0, &repo);
	if (rc < 0) {
		snprintf(r->target_problem, sizeof r->target_problem, "%s", coffer_errmsg());
		return 0;
	}
	g->manifests = calloc(repo->n_ids ? repo->n_ids : 1, sizeof *g->manifests);
	r->snaps = calloc(repo->n_ids ? repo->n_ids : 1, sizeof *r->snaps);
	if (g->manifests == NULL || r->snaps == NULL) {
		coffer_repo_close(&repo);
		return coffer_err_set(COFFER_ENOMEM, "report: out of memory");
	}
	for (size_t i = 0; rc == 0 && i < repo->n_ids; i++) {
		rc = coffer_repo_get_manifest(repo, repo->ids[i], &g->manifests[g->n_manifests]);
		if (rc < 0)
			break;
		struct coffer_report_snap *s = &r->snaps[r->n_snaps++];

		snprintf(s->id, sizeof s->id, "%s", repo->ids[i]);
		s->created_at = g->manifests[g->n_manifests].created_at;
		s->expires_at = s->created_at + g->keep;
		g->n_manifests++;
		if (s->expires_at < g->now)
			rc = add_overdue(r, "snapshot", s->id, s->expires_at);
	}
	coffer_repo_close(&repo);
	return rc;
}

int coffer_report_build(struct coffer_store *st, int64_t now, const char *account,
                        struct coffer_report *r)
{
	struct gather g;
	struct coffer_buf canon = COFFER_BUF_INIT;
	unsigned char id[COFFER_ID_BYTES];
	int rc;

	memset(r, 0, sizeof *r);
	memset(&g, 0, sizeof g);
	r->generated_at = now;
	r->policy = coffer_store_config(st);
	g.st = st;
	g.r = r;
	g.now = now;
	g.keep = (int64_t)r->policy->data_retention_days * COFFER_NS_PER_DAY;
	if (account) {
		struct lookup_args la;

		rc = coffer_names_account(account, strlen(account), &canon);
		la = (struct lookup_args){ st, coffer_buf_str(&canon), id };
		if (rc == 0)
			rc = coffer_index_view(coffer_store_index(st), lookup_txn, &la);
		if (rc < 0)
			goto out;
		g.only = id;
	}
	rc = load_manifests(&g);
	if (rc == 0)
		rc = coffer_index_view(coffer_store_index(st), gather_txn, &g);
	if (rc == 0 && account && r->n_accounts == 1 && r->accounts[0].name == NULL) {
		/* a shredded account the operator named: show the name given */
		r->accounts[0].name = strdup(coffer_buf_str(&canon));
		rc = coffer_audit_pseudonym(st, coffer_buf_str(&canon), r->accounts[0].pseudonym);
	}
out:
	for (size_t i = 0; i < g.n_manifests; i++)
		coffer_manifest_free(&g.manifests[i]);
	free(g.manifests);
	coffer_buf_free(&canon);
	if (rc < 0)
		coffer_report_free(r);
	return rc;
}

void coffer_report_free(struct coffer_report *r)
{
	for (size_t i = 0; i < r->n_accounts; i++) {
		free(r->accounts[i].name);
		free(r->accounts[i].snaps);
	}
	free(r->accounts);
	free(r->snaps);
	free(r->overdue);
	memset(r, 0, sizeof *r);
}
