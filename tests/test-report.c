/*
 * test-report.c: the retention report model and its renderings
 * (policy/report.h).
 *
 * With active, terminated and shredded accounts, snapshots and events, at
 * times moved with COFFER_NOW:
 *   - the model: states, counts, oldest message, snapshots per account with
 *     their expiry, metadata count/oldest/expiry, next action and its date;
 *   - overdue is empty right after the worker's jobs, and lists the expired
 *     snapshot, the metadata and the terminated account once time moves on
 *     without them;
 *   - --account for a shredded account shows the name given and its audit
 *     pseudonym; an unknown one is COFFER_ENOACCOUNT;
 *   - JSON has exactly the top-level keys, and null for missing times; the
 *     HTML escapes, has an inline SVG and no external URL; the text names
 *     the next action with its date.
 */
#include "tap.h"
#include "fixture.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/store.h"
#include "maildir/deliver.h"
#include "policy/audit.h"
#include "policy/report.h"
#include "policy/shred.h"
#include "policy/worker.h"
#include "snapshots/snapshot.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct coffer_store *st;

static int64_t at(const char *iso)
{
	int64_t t = 0;

	setenv("COFFER_NOW", iso, 1);
	coffer_clock_now(&t);
	return t;
}

static const struct coffer_report_account *find(const struct coffer_report *r, const char *name)
{
	for (size_t i = 0; i < r->n_accounts; i++)
		if (r->accounts[i].name && !strcmp(r->accounts[i].name, name))
			return &r->accounts[i];
	return NULL;
}

static int has_overdue(const struct coffer_report *r, const char *what)
{
	for (size_t i = 0; i < r->n_overdue; i++)
		if (!strcmp(r->overdue[i].what, what))
			return 1;
	return 0;
}

int main(void)
{
	struct coffer_report r;
	struct coffer_worker_result wr;
	struct coffer_shred_result sr;
	struct coffer_buf out = COFFER_BUF_INIT;
	const struct coffer_report_account *a;
	int64_t now, day = COFFER_NS_PER_DAY;
	int rc;

	if (sodium_init() < 0)
		return 1;
	now = at("2026-06-01T03:00:00Z");
	rc = fixture_store("target", &st, NULL);
	ok(rc == 0, "a store with a snapshot target");
	if (rc < 0)
		return tap_done();
	ok(coffer_account_add(st, "act@example.org", 15, NULL) == 0 &&
	       coffer_account_add(st, "term@example.org", 16, NULL) == 0 &&
	       coffer_account_add(st, "gone@example.org", 16, NULL) == 0 &&
	       coffer_account_add(st, "empty@example.org", 17, NULL) == 0,
	   "four accounts");
	ok(fixture_deliver(st, "act@example.org", "Subject: a\n\nhello\n") == 0 &&
	       fixture_deliver(st, "term@example.org", "Subject: t\n\nhello\n") == 0 &&
	       fixture_deliver(st, "gone@example.org", "Subject: g\n\nhello\n") == 0,
	   "mail");
	ok(coffer_worker_run(st, now, NULL, NULL, &wr) == 0 && wr.snapshot[0], "worker day 0");
	now = at("2026-06-02T03:00:00Z");
	ok(fixture_deliver(st, "act@example.org", "Subject: a2\n\nhello again\n") == 0,
	   "more mail");
	ok(coffer_worker_run(st, now, NULL, NULL, &wr) == 0 && wr.snapshot[0], "worker day 1");
	ok(coffer_account_terminate(st, "term@example.org", 16) == 0, "terminate term@");
	rc = coffer_shred_account(st, "gone@example.org", 1, "request", &sr);
	ok(rc == 0, "purge gone@");

	rc = coffer_report_build(st, now, NULL, &r);
	ok(rc == 0, "report builds (%s)", rc ? coffer_errmsg() : "ok");
	ok(r.n_accounts == 4 && r.n_snaps == 2 && r.n_overdue == 0,
	   "4 accounts, 2 snapshots, nothing overdue (%zu, %zu, %zu)", r.n_accounts, r.n_snaps,
	   r.n_overdue);
	a = find(&r, "act@example.org");
	ok(a && a->state == COFFER_ACCOUNT_ACTIVE && a->messages == 2 && a->bytes > 0 &&
	       a->oldest_message > 0 && a->n_snaps == 2 && !strcmp(a->next_action, "none") &&
	       a->next_action_at == 0,
	   "act@: active, 2 messages, in 2 snapshots");
	ok(a && a->n_snaps == 2 && a->snaps[0].expires_at == a->snaps[0].created_at + 30 * day,
	   "each snapshot expires 30 days after it was taken");
	a = find(&r, "term@example.org");
	ok(a && a->state == COFFER_ACCOUNT_TERMINATED && a->messages == 1 &&
	       !strcmp(a->next_action, "auto-shred") && a->next_action_at == now + 30 * day,
	   "term@: auto-shred 30 days after termination");
	ok(find(&r, "empty@example.org") && find(&r, "empty@example.org")->messages == 0 &&
	       find(&r, "empty@example.org")->oldest_message == 0,
	   "empty@: no messages, no oldest");
	{
		int shredded = 0;

		for (size_t i = 0; i < r.n_accounts; i++)
			if (r.accounts[i].state == COFFER_ACCOUNT_SHREDDED) {
				shredded++;
				ok(r.accounts[i].name == NULL && r.accounts[i].messages == 0 &&
				       r.accounts[i].n_snaps == 0 && r.accounts[i].events == 0,
				   "the shredded account: no name, nothing held");
			}
		ok(shredded == 1, "one shredded account");
	}
	ok(coffer_report_json(&r, &out) == 0, "JSON renders");
	ok(strstr(coffer_buf_str(&out), "\"generated_at\": \"2026-06-02T03:00:00Z\"") &&
	       strstr(coffer_buf_str(&out), "\"overdue\": []") &&
	       strstr(coffer_buf_str(&out), "\"terminated_at\": null") &&
	       !strstr(coffer_buf_str(&out), "gone@"),
	   "JSON: times, nulls, empty overdue, no shredded name");
	coffer_buf_reset(&out);
	ok(coffer_report_text(&r, &out) == 0 &&
	       strstr(coffer_buf_str(&out), "auto-shred on 2026-07-02"),
	   "text names the next action and its date");
	coffer_buf_reset(&out);
	ok(coffer_report_html(&r, &out) == 0, "HTML renders");
	{
		const char *h = coffer_buf_str(&out), *p = h;
		int urls = 0;

		while ((p = strstr(p, "http")) != NULL) {
			if (strncmp(p, "http://www.w3.org/2000/svg", 26) != 0)
				urls++;
			p += 4;
		}
		ok(urls == 0 && strstr(h, "<svg") && !strstr(h, "<script"),
		   "HTML: inline SVG, no scripts, no URL but the SVG namespace");
	}
	coffer_report_free(&r);

	/* one account, shredded, named by the operator */
	rc = coffer_report_build(st, now, "gone@example.org", &r);
	ok(rc == 0 && r.n_accounts == 1 && r.accounts[0].name &&
	       !strcmp(r.accounts[0].name, "gone@example.org") &&
	       !strncmp(r.accounts[0].pseudonym, "ps:", 3),
	   "--account for a shredded account");
	if (rc == 0) {
		char ps[COFFER_AUDIT_PSEUDONYM_MAX];

		coffer_audit_pseudonym(st, "gone@example.org", ps);
		ok(!strcmp(ps, r.accounts[0].pseudonym), "its pseudonym is the audit log's");
		coffer_report_free(&r);
	}
	rc = coffer_report_build(st, now, "nobody@example.org", &r);
	ok(rc == COFFER_ENOACCOUNT || rc == COFFER_ENOTFOUND, "unknown account (%d)", rc);

	/* 200 days later without the worker: overdue lists everything */
	now = at("2026-12-20T03:00:00Z");
	rc = coffer_report_build(st, now, NULL, &r);
	ok(rc == 0 && has_overdue(&r, "snapshot") && has_overdue(&r, "terminated account"),
	   "without the worker: expired snapshots and the terminated account are overdue");
	if (rc == 0)
		coffer_report_free(&r);
	ok(coffer_worker_run(st, now, NULL, NULL, &wr) == 0 && wr.shredded == 1 && wr.pruned == 2,
	   "the worker catches up (shredded %u, pruned %u)", wr.shredded, wr.pruned);
	rc = coffer_report_build(st, now, NULL, &r);
	ok(rc == 0 && r.n_overdue == 0, "and overdue is empty again (%zu)", r.n_overdue);
	a = rc == 0 ? find(&r, "act@example.org") : NULL;
	ok(a && a->n_snaps == 1, "act@ is in the one snapshot left (%zu)", a ? a->n_snaps : 0);
	if (rc == 0)
		coffer_report_free(&r);
	coffer_buf_free(&out);
	coffer_store_close(&st);
	return tap_done();
}
