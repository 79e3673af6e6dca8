/*
 * test-security.c: the "possibly undesired access" rules, first on samples
 * (pure), then through a store for the cross-account rule and the account
 * and operator views.
 */
#include "tap.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/store.h"
#include "engine/events.h"
#include "policy/security.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 (1750000000LL * COFFER_NS_PER_SEC)
#define MIN (60LL * COFFER_NS_PER_SEC)
#define DAY COFFER_NS_PER_DAY

static struct coffer_login_sample S(int64_t at, int success, const char *ip, uint8_t reason,
                                    const char *label) {
	struct coffer_login_sample s;

	memset(&s, 0, sizeof s);
	s.at = at;
	s.success = (uint8_t)success;
	s.service = COFFER_SVC_IMAP;
	s.reason = reason;
	coffer_ip_parse(ip, &s.ip);
	snprintf(s.label, sizeof s.label, "%s", label);
	return s;
}

static size_t
count_kind(const struct coffer_security_report *r, uint8_t kind)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += r->v[i].kind == kind;
	return n;
}

static const struct coffer_finding *find_kind(const struct coffer_security_report *r, uint8_t kind)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].kind == kind)
			return &r->v[i];
	return NULL;
}

static void pure(void)
{
	struct coffer_login_sample s[32];
	struct coffer_security_report r;
	const struct coffer_finding *f;
	size_t n = 0;
	int64_t now = T0 + 200 * DAY;

	/* Baseline: first login, then regular logins from the home network. */
	s[n++] = S(T0 + 30 * DAY, 1, "192.0.2.10", 0, "");
	s[n++] = S(T0 + 40 * DAY, 1, "192.0.2.99", 0, ""); /* same /24 */
	/* 4 failures within minutes: not a burst. */
	for (int i = 0; i < 4; i++)
		s[n++] = S(T0 + 50 * DAY + i * MIN, 0, "203.0.113.9", COFFER_REASON_BAD_PASSWORD,
		           "");
	/* 6 failures, each 9 minutes apart: a burst. */
	for (int i = 0; i < 6; i++)
		s[n++] = S(T0 + 60 * DAY + i * 9 * MIN, 0, "203.0.113.10",
		           COFFER_REASON_BAD_PASSWORD, "");
	/* 5 failures, 11 minutes apart: not a burst. */
	for (int i = 0; i < 5; i++)
		s[n++] = S(T0 + 70 * DAY + i * 11 * MIN, 0, "203.0.113.11",
		           COFFER_REASON_BAD_PASSWORD, "");
	s[n++] = S(T0 + 80 * DAY, 1, "198.51.100.7", 0, "phone"); /* new network */
	s[n++] = S(T0 + 81 * DAY, 1, "198.51.100.8", 0, "");      /* seen now */
	s[n++] = S(T0 + 90 * DAY, 0, "198.51.100.8", COFFER_REASON_REVOKED_APP_PASSWORD, "tablet");
	s[n++] = S(T0 + 100 * DAY, 1, "2001:db8:5:1::1", 0, ""); /* new v6 net */
	s[n++] = S(T0 + 101 * DAY, 1, "2001:db8:5:9::1", 0, ""); /* same /48 */
	s[n++] = S(T0 + 102 * DAY, 1, "2001:db8:6::1", 0, "");   /* new /48 */

	memset(&r, 0, sizeof r);
	ok(coffer_security_analyze("alice@example.org", s, n, now, &r) == 0, "analysis runs");
	ok(count_kind(&r, COFFER_FINDING_FAILURE_BURST) == 1, "one burst");
	f = find_kind(&r, COFFER_FINDING_FAILURE_BURST);
	ok(f && f->count == 6 && f->first_at == T0 + 60 * DAY &&
	       strstr(f->evidence, "203.0.113.10") != NULL,
	   "burst evidence: 6, the IP: %s", f ? f->evidence : "");
	ok(count_kind(&r, COFFER_FINDING_NEW_NETWORK) == 3,
	   "three new networks (not the first login, not known networks)");
	f = find_kind(&r, COFFER_FINDING_NEW_NETWORK);
	ok(f && f->first_at == T0 + 80 * DAY && !strcmp(f->label, "phone") &&
	       strstr(f->evidence, "198.51.100.0/24") != NULL,
	   "new-network evidence: %s", f ? f->evidence : "");
	ok(count_kind(&r, COFFER_FINDING_REVOKED_APP_PASSWORD) == 1, "one revoked-password use");
	f = find_kind(&r, COFFER_FINDING_REVOKED_APP_PASSWORD);
	ok(f && !strcmp(f->label, "tablet") && strstr(f->evidence, "198.51.100.8") != NULL,
	   "revoked evidence names the label and IP");
	coffer_security_report_free(&r);

	/* A network last seen more than 180 days before counts as new again;
	 * events older than the window are not reported. */
	n = 0;
	s[n++] = S(T0, 1, "192.0.2.1", 0, "");
	s[n++] = S(T0 + 1 * DAY, 1, "10.1.1.1", 0, "");
	s[n++] = S(T0 + 190 * DAY, 1, "192.0.2.2", 0, "");
	memset(&r, 0, sizeof r);
	coffer_security_analyze("a@example.org", s, n, T0 + 200 * DAY, &r);
	ok(count_kind(&r, COFFER_FINDING_NEW_NETWORK) == 1 && r.v[0].first_at == T0 + 190 * DAY,
	   "a network unseen for 180 days is new again; older findings out of the window");
	coffer_security_report_free(&r);
	memset(&r, 0, sizeof r);
	ok(coffer_security_analyze("a@example.org", s, 0, now, &r) == 0 && r.n == 0,
	   "no events, no findings");
	coffer_security_report_free(&r);
}

/* ---- through a store ---- */

static struct coffer_store *st;

struct rec_args {
	struct coffer_mailbox *mb;
	const struct coffer_login_sample *s;
	size_t n;
};

static int rec_txn(struct coffer_txn *t, void *arg)
{
	struct rec_args *a = arg;
	const struct coffer_acct_secret *sec = coffer_mailbox_secret(a->mb);
	int rc = 0;

	for (size_t i = 0; i < a->n && rc == 0; i++) {
		struct coffer_event ev;

		memset(&ev, 0, sizeof ev);
		ev.type = COFFER_EVENT_LOGIN;
		ev.at = a->s[i].at;
		ev.success = a->s[i].success;
		ev.service = a->s[i].service;
		ev.reason = a->s[i].reason;
		ev.ip = a->s[i].ip;
		ev.label = a->s[i].label;
		rc = coffer_events_record_txn(t, coffer_mailbox_id(a->mb), sec->pk, sec, &ev);
	}
	return rc;
}

static void record(const char *name, const struct coffer_login_sample *s, size_t n)
{
	struct rec_args a = { NULL, s, n };

	if (coffer_mailbox_open(st, name, strlen(name), &a.mb) == 0)
		coffer_index_update(coffer_store_index(st), rec_txn, &a);
	coffer_mailbox_close(&a.mb);
}

static void stored(void)
{
	static const char *const names[] = { "a1@example.org", "a2@example.org", "a3@example.org",
		                             "a4@example.org" };
	struct coffer_login_sample s[4];
	struct coffer_security_report r;
	const struct coffer_finding *f;
	int64_t now = T0 + 10 * DAY;

	for (int i = 0; i < 4; i++)
		coffer_account_add(st, names[i], strlen(names[i]), NULL);
	/* 203.0.113.66 fails on a1, a2, a3 within 30 minutes; a4 is clean. */
	for (int i = 0; i < 3; i++) {
		s[0] = S(T0 + 5 * DAY + i * 10 * MIN, 0, "203.0.113.66", COFFER_REASON_BAD_PASSWORD,
		         "");
		record(names[i], s, 1);
	}
	/* 203.0.113.77 fails on a1 and a2 only: below the threshold. */
	for (int i = 0; i < 2; i++) {
		s[0] = S(T0 + 6 * DAY, 0, "203.0.113.77", COFFER_REASON_BAD_PASSWORD, "");
		record(names[i], s, 1);
	}
	/* 203.0.113.88 on a1, a2, a3 but hours apart: no finding. */
	for (int i = 0; i < 3; i++) {
		s[0] = S(T0 + 7 * DAY + i * 120 * MIN, 0, "203.0.113.88",
		         COFFER_REASON_BAD_PASSWORD, "");
		record(names[i], s, 1);
	}
	s[0] = S(T0 + 1 * DAY, 1, "192.0.2.1", 0, "");
	s[1] = S(T0 + 2 * DAY, 1, "198.51.100.1", 0, "");
	record(names[3], s, 2);

	memset(&r, 0, sizeof r);
	ok(coffer_security_check(st, NULL, 0, now, &r) == 0, "operator view runs");
	ok(r.accounts_checked == 4, "4 accounts checked");
	ok(count_kind(&r, COFFER_FINDING_MANY_ACCOUNTS_ONE_IP) == 1, "one many-accounts finding");
	f = find_kind(&r, COFFER_FINDING_MANY_ACCOUNTS_ONE_IP);
	ok(f && f->accounts == 3 && f->count == 3 && strstr(f->evidence, "203.0.113.66") &&
	       strstr(f->evidence, "a1@example.org") && strstr(f->evidence, "a3@example.org"),
	   "operator evidence names the IP and accounts: %s", f ? f->evidence : "");
	ok(count_kind(&r, COFFER_FINDING_NEW_NETWORK) == 1,
	   "a4's new network in the operator view");
	coffer_security_report_free(&r);

	memset(&r, 0, sizeof r);
	ok(coffer_security_check(st, "A2@example.org", 14, now, &r) == 0, "account view runs");
	f = find_kind(&r, COFFER_FINDING_MANY_ACCOUNTS_ONE_IP);
	ok(r.n == 1 && f && !strcmp(f->account, "a2@example.org") &&
	       strstr(f->evidence, "a1@example.org") == NULL && strstr(f->evidence, "2 others"),
	   "account view: the finding, without the other accounts' names: %s",
	   f ? f->evidence : "");
	coffer_security_report_free(&r);
	memset(&r, 0, sizeof r);
	ok(coffer_security_check(st, "a4@example.org", 14, now, &r) == 0 && r.n == 1 &&
	       r.v[0].kind == COFFER_FINDING_NEW_NETWORK,
	   "a4: only its new network");
	coffer_security_report_free(&r);
	memset(&r, 0, sizeof r);
	ok(coffer_security_check(st, "zz@example.org", 14, now, &r) == COFFER_ENOACCOUNT,
	   "unknown account");
	coffer_security_report_free(&r);
}

int main(void)
{
	struct coffer_buf path = COFFER_BUF_INIT, key = COFFER_BUF_INIT;

	coffer_crypto_init();
	pure();
	coffer_buf_printf(&path, "%s/store", tap_tmpdir());
	coffer_buf_printf(&key, "%s/coffer.key", tap_tmpdir());
	if (coffer_store_init(coffer_buf_str(&path), coffer_buf_str(&key), &st) != 0) {
		ok(0, "store: %s", coffer_errmsg());
		return tap_done();
	}
	stored();
	coffer_store_close(&st);
	coffer_buf_free(&path);
	coffer_buf_free(&key);
	return tap_done();
}
