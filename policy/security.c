/*
 * security.c: the "possibly undesired access" rules (see security.h).
 *
 * Sections: the report; the per-account rules (pure, over samples); the
 * cross-account rule; reading the accounts' logs.
 *
 * Costs: the per-account rules are one pass over the account's login events
 * of the last 180 days, plus, for new-network, a comparison against the
 * networks seen so far (few per account). The cross-account rule collects
 * every failure of the accounts read (time, IP, account index), sorts them
 * by IP and time and slides a one-hour window over each IP's failures:
 * O(f log f) for f failures. For one account it must still read every
 * account's failures (that is what the rule is about), so `coffer security
 * NAME` costs about as much as `--all`, minus the output.
 */
#include "security.h"

#include "engine/account.h"
#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/names.h"

#include <stdlib.h>
#include <string.h>

/* ---- the report ---- */

void coffer_security_report_free(struct coffer_security_report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].account);
		free(r->v[i].label);
		free(r->v[i].evidence);
	}
	free(r->v);
	memset(r, 0, sizeof *r);
}

const char *coffer_finding_kind_name(uint8_t kind)
{
	switch (kind) {
	case COFFER_FINDING_FAILURE_BURST: return "failure-burst";
	case COFFER_FINDING_NEW_NETWORK: return "new-network";
	case COFFER_FINDING_REVOKED_APP_PASSWORD: return "revoked-app-password";
	case COFFER_FINDING_MANY_ACCOUNTS_ONE_IP: return "many-accounts-one-ip";
	}
	return "unknown";
}

static int add_finding(struct coffer_security_report *r, const struct coffer_finding *f,
                       const char *account, const char *label, const struct coffer_buf *evidence)
{
	struct coffer_finding *d;

	if (coffer_array_grow(&r->v, &r->cap, r->n, sizeof *r->v, 16) < 0)
		return coffer_err_set(COFFER_ENOMEM, "security: out of memory");
	d = &r->v[r->n];
	*d = *f;
	d->account = strdup(account);
	d->label = strdup(label ? label : "");
	d->evidence = strdup(coffer_buf_str(evidence));
	if (d->account == NULL || d->label == NULL || d->evidence == NULL ||
	    coffer_buf_ok(evidence) < 0) {
		free(d->account);
		free(d->label);
		free(d->evidence);
		return coffer_err_set(COFFER_ENOMEM, "security: out of memory");
	}
	r->n++;
	return 0;
}

/* ---- per-account rules ---- */

static int burst_rule(const char *account, const struct coffer_login_sample *s, size_t n,
                      int64_t from, struct coffer_security_report *r)
{
	struct coffer_buf ev = COFFER_BUF_INIT;
	char t1[COFFER_CLOCK_ISO_MAX], t2[COFFER_CLOCK_ISO_MAX], ip[COFFER_IP_TEXT_MAX];
	size_t i = 0;
	int rc = 0;

	while (i < n && rc == 0) {
		size_t first, last, count = 0, ips = 0;
		struct coffer_ip seen[3];

		if (s[i].success || s[i].at < from) {
			i++;
			continue;
		}
		/* A cluster of failures, each within BURST_GAP of the previous
		 * failure; successes in between do not break it. */
		first = last = i;
		for (size_t j = i; j < n; j++) {
			if (s[j].success)
				continue;
			if (s[j].at - s[last].at > COFFER_SECURITY_BURST_GAP)
				break;
			last = j;
			count++;
			int known = 0;

			for (size_t k = 0; k < ips; k++)
				known |= seen[k].len == s[j].ip.len &&
				         !memcmp(seen[k].addr, s[j].ip.addr, s[j].ip.len);
			if (!known && ips < 3)
				seen[ips++] = s[j].ip;
		}
		if (count >= COFFER_SECURITY_BURST_MIN) {
			struct coffer_finding f;

			memset(&f, 0, sizeof f);
			f.kind = COFFER_FINDING_FAILURE_BURST;
			f.first_at = s[first].at;
			f.last_at = s[last].at;
			f.count = (uint32_t)count;
			f.ip = s[first].ip;
			f.service = s[first].service;
			coffer_clock_format(f.first_at, t1);
			coffer_clock_format(f.last_at, t2);
			coffer_buf_reset(&ev);
			coffer_buf_printf(&ev, "%zu failed logins from %s to %s, from", count, t1,
			                  t2);
			for (size_t k = 0; k < ips; k++) {
				coffer_ip_format(&seen[k], ip);
				coffer_buf_printf(&ev, "%s %s", k ? "," : "",
				                  ip[0] ? ip : "an unknown address");
			}
			rc = add_finding(r, &f, account, "", &ev);
		}
		i = last + 1;
	}
	coffer_buf_free(&ev);
	return rc;
}

struct net_seen {
	struct coffer_ip ip;
	int64_t last_at;
};

static int network_rule(const char *account, const struct coffer_login_sample *s, size_t n,
                        int64_t from, struct coffer_security_report *r)
{
	struct coffer_buf ev = COFFER_BUF_INIT;
	struct net_seen *nets = NULL;
	size_t nn = 0, cap = 0;
	char t[COFFER_CLOCK_ISO_MAX], ip[COFFER_IP_TEXT_MAX], net[COFFER_IP_TEXT_MAX + 4];
	int rc = 0, any_success = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t k;

		if (!s[i].success)
			continue;
		for (k = 0; k < nn; k++) {
			if (coffer_ip_same_network(&nets[k].ip, &s[i].ip))
				break;
		}
		if (s[i].ip.len == 0)
			k = nn + 1; /* no address: nothing to compare */
		else if (k < nn && s[i].at - nets[k].last_at <=
		                       COFFER_SECURITY_LOOKBACK_DAYS * COFFER_NS_PER_DAY)
			k = nn + 1; /* seen within 180 days */
		if (k <= nn && any_success && s[i].at >= from) {
			struct coffer_finding f;

			memset(&f, 0, sizeof f);
			f.kind = COFFER_FINDING_NEW_NETWORK;
			f.first_at = f.last_at = s[i].at;
			f.count = 1;
			f.ip = s[i].ip;
			f.service = s[i].service;
			coffer_clock_format(s[i].at, t);
			coffer_ip_format(&s[i].ip, ip);
			coffer_ip_network_format(&s[i].ip, net);
			coffer_buf_reset(&ev);
			coffer_buf_printf(
			    &ev,
			    "successful %s login at %s from %s: network %s not seen in "
			    "the %d days before",
			    coffer_service_name(s[i].service), t, ip, net,
			    COFFER_SECURITY_LOOKBACK_DAYS);
			if (s[i].label[0])
				coffer_buf_printf(&ev, " (application password '%s')", s[i].label);
			rc = add_finding(r, &f, account, s[i].label, &ev);
		}
		if (s[i].ip.len) {
			for (k = 0; k < nn; k++) {
				if (coffer_ip_same_network(&nets[k].ip, &s[i].ip))
					break;
			}
			if (k == nn) {
				if (coffer_array_grow(&nets, &cap, nn, sizeof *nets, 8) < 0) {
					rc = coffer_err_set(COFFER_ENOMEM,
					                    "security: out of memory");
					break;
				}
				nets[nn++].ip = s[i].ip;
			}
			nets[k].last_at = s[i].at;
		}
		any_success = 1;
	}
	free(nets);
	coffer_buf_free(&ev);
	return rc;
}

static int revoked_rule(const char *account, const struct coffer_login_sample *s, size_t n,
                        int64_t from, struct coffer_security_report *r)
{
	struct coffer_buf ev = COFFER_BUF_INIT;
	char t[COFFER_CLOCK_ISO_MAX], ip[COFFER_IP_TEXT_MAX];
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		struct coffer_finding f;

		if (s[i].reason != COFFER_REASON_REVOKED_APP_PASSWORD || s[i].at < from)
			continue;
		memset(&f, 0, sizeof f);
		f.kind = COFFER_FINDING_REVOKED_APP_PASSWORD;
		f.first_at = f.last_at = s[i].at;
		f.count = 1;
		f.ip = s[i].ip;
		f.service = s[i].service;
		coffer_clock_format(s[i].at, t);
		coffer_ip_format(&s[i].ip, ip);
		coffer_buf_reset(&ev);
		coffer_buf_printf(&ev,
		                  "revoked application password '%s' tried over %s at %s from %s",
		                  s[i].label, coffer_service_name(s[i].service), t,
		                  ip[0] ? ip : "an unknown address");
		rc = add_finding(r, &f, account, s[i].label, &ev);
	}
	coffer_buf_free(&ev);
	return rc;
}

int coffer_security_analyze(const char *account, const struct coffer_login_sample *s, size_t n,
                            int64_t now, struct coffer_security_report *r)
{
	int64_t from = now - COFFER_SECURITY_LOOKBACK_DAYS * COFFER_NS_PER_DAY;
	int rc;

	rc = burst_rule(account, s, n, from, r);
	if (rc == 0)
		rc = network_rule(account, s, n, from, r);
	if (rc == 0)
		rc = revoked_rule(account, s, n, from, r);
	return rc;
}

/* ---- cross-account rule ---- */

struct failure {
	struct coffer_ip ip;
	int64_t at;
	uint32_t account; /* index into the names */
};

struct failures {
	struct failure *v;
	size_t n, cap;
};

static int failure_cmp(const void *pa, const void *pb)
{
	const struct failure *a = pa, *b = pb;
	int c;

	if (a->ip.len != b->ip.len)
		return a->ip.len < b->ip.len ? -1 : 1;
	c = memcmp(a->ip.addr, b->ip.addr, a->ip.len);
	if (c)
		return c;
	return a->at < b->at ? -1 : a->at > b->at;
}

static int u32_cmp(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	return a < b ? -1 : a > b;
}

/* For every IP: clusters of failures each within MANY_WINDOW of the first;
 * reported when they touch MANY_ACCOUNTS accounts or more. only < 0: report
 * all (operator view, naming the accounts); else only clusters that include
 * account `only`, naming it alone. */
static int many_rule(struct failures *fl, char **names, int64_t from, long only,
                     struct coffer_security_report *r)
{
	struct coffer_buf ev = COFFER_BUF_INIT;
	uint32_t *accts = NULL;
	char t1[COFFER_CLOCK_ISO_MAX], t2[COFFER_CLOCK_ISO_MAX], ip[COFFER_IP_TEXT_MAX];
	size_t i = 0;
	int rc = 0;

	qsort(fl->v, fl->n, sizeof *fl->v, failure_cmp);
	accts = malloc((fl->n ? fl->n : 1) * sizeof *accts);
	if (accts == NULL)
		return coffer_err_set(COFFER_ENOMEM, "security: out of memory");
	while (i < fl->n && rc == 0) {
		size_t j = i, na = 0, distinct = 0;
		int includes = 0;

		while (j < fl->n && fl->v[j].ip.len == fl->v[i].ip.len &&
		       !memcmp(fl->v[j].ip.addr, fl->v[i].ip.addr, fl->v[i].ip.len) &&
		       fl->v[j].at - fl->v[i].at <= COFFER_SECURITY_MANY_WINDOW) {
			accts[na++] = fl->v[j].account;
			j++;
		}
		qsort(accts, na, sizeof *accts, u32_cmp);
		for (size_t k = 0; k < na; k++) {
			if (k == 0 || accts[k] != accts[k - 1])
				accts[distinct++] = accts[k];
		}
		for (size_t k = 0; k < distinct; k++)
			includes |= (long)accts[k] == only;
		if (fl->v[i].ip.len && distinct >= COFFER_SECURITY_MANY_ACCOUNTS &&
		    fl->v[j - 1].at >= from && (only < 0 || includes)) {
			struct coffer_finding f;

			memset(&f, 0, sizeof f);
			f.kind = COFFER_FINDING_MANY_ACCOUNTS_ONE_IP;
			f.first_at = fl->v[i].at;
			f.last_at = fl->v[j - 1].at;
			f.count = (uint32_t)(j - i);
			f.accounts = (uint32_t)distinct;
			f.ip = fl->v[i].ip;
			coffer_clock_format(f.first_at, t1);
			coffer_clock_format(f.last_at, t2);
			coffer_ip_format(&f.ip, ip);
			coffer_buf_reset(&ev);
			coffer_buf_printf(&ev, "%s failed %u times on %zu accounts from %s to %s",
			                  ip, f.count, distinct, t1, t2);
			if (only < 0) {
				coffer_buf_puts(&ev, ":");
				for (size_t k = 0; k < distinct; k++)
					coffer_buf_printf(&ev, " %s", names[accts[k]]);
			} else {
				coffer_buf_printf(&ev, " (this one and %zu others)", distinct - 1);
			}
			rc = add_finding(r, &f, only < 0 ? "*" : names[only], "", &ev);
		}
		/* Next cluster starts after this one. */
		i = j;
	}
	free(accts);
	coffer_buf_free(&ev);
	return rc;
}

/* ---- reading the logs ---- */

struct sample_vec {
	struct coffer_login_sample *v;
	size_t n, cap;
};

static int collect_sample(const struct coffer_event *ev, void *arg)
{
	struct sample_vec *sv = arg;
	struct coffer_login_sample *s;

	if (ev->type != COFFER_EVENT_LOGIN)
		return 0;
	if (coffer_array_grow(&sv->v, &sv->cap, sv->n, sizeof *sv->v, 64) < 0)
		return coffer_err_set(COFFER_ENOMEM, "security: out of memory");
	s = &sv->v[sv->n++];
	memset(s, 0, sizeof *s);
	s->at = ev->at;
	s->success = ev->success;
	s->service = ev->service;
	s->reason = ev->reason;
	s->ip = ev->ip;
	strcpy(s->label, ev->label);
	return 0;
}

struct name_list {
	char **v;
	size_t n, cap;
};

static int collect_name(const struct coffer_account_info *info, void *arg)
{
	struct name_list *nl = arg;

	if (info->state != COFFER_ACCOUNT_ACTIVE || info->name == NULL)
		return 0;
	if (coffer_array_grow(&nl->v, &nl->cap, nl->n, sizeof *nl->v, 64) < 0)
		return coffer_err_set(COFFER_ENOMEM, "security: out of memory");
	nl->v[nl->n] = strdup(info->name);
	if (nl->v[nl->n] == NULL)
		return coffer_err_set(COFFER_ENOMEM, "security: out of memory");
	nl->n++;
	return 0;
}

static int finding_cmp(const void *pa, const void *pb)
{
	const struct coffer_finding *a = pa, *b = pb;

	if (a->last_at != b->last_at)
		return a->last_at > b->last_at ? -1 : 1;
	return strcmp(a->account, b->account);
}

int coffer_security_check(struct coffer_store *st, const char *name, size_t nlen, int64_t now,
                          struct coffer_security_report *r)
{
	struct name_list nl = { NULL, 0, 0 };
	struct failures fl = { NULL, 0, 0 };
	struct sample_vec sv = { NULL, 0, 0 };
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct coffer_mailbox *mb = NULL;
	int64_t from = now - COFFER_SECURITY_LOOKBACK_DAYS * COFFER_NS_PER_DAY;
	/* Failures one hour before the window still make clusters inside it. */
	int64_t scan_from = from - COFFER_SECURITY_MANY_WINDOW;
	long only = -1;
	int rc;

	if (name) {
		rc = coffer_names_account(name, nlen, &canon);
		if (rc < 0)
			goto out;
		/* Fails early, with the usual errors, for unknown or closed accounts. */
		rc = coffer_mailbox_open(st, name, nlen, &mb);
		coffer_mailbox_close(&mb);
		if (rc < 0)
			goto out;
	}
	rc = coffer_account_list(st, collect_name, &nl);
	if (rc < 0)
		goto out;
	for (size_t a = 0; a < nl.n; a++) {
		int self = name && strcmp(nl.v[a], coffer_buf_str(&canon)) == 0;

		if (self)
			only = (long)a;
		rc = coffer_mailbox_open(st, nl.v[a], strlen(nl.v[a]), &mb);
		if (rc < 0)
			goto out;
		sv.n = 0;
		rc = coffer_events_scan(mb, scan_from, 0, collect_sample, &sv);
		coffer_mailbox_close(&mb);
		if (rc < 0)
			goto out;
		r->accounts_checked++;
		r->events_checked += sv.n;
		if (name == NULL || self) {
			rc = coffer_security_analyze(nl.v[a], sv.v, sv.n, now, r);
			if (rc < 0)
				goto out;
		}
		for (size_t i = 0; i < sv.n; i++) {
			if (sv.v[i].success || sv.v[i].ip.len == 0)
				continue;
			if (coffer_array_grow(&fl.v, &fl.cap, fl.n, sizeof *fl.v, 256) < 0) {
				rc = coffer_err_set(COFFER_ENOMEM, "security: out of memory");
				goto out;
			}
			fl.v[fl.n++] = (struct failure){ sv.v[i].ip, sv.v[i].at, (uint32_t)a };
		}
	}
	if (name == NULL || only >= 0)
		rc = many_rule(&fl, nl.v, from, only, r);
	if (rc == 0)
		qsort(r->v, r->n, sizeof *r->v, finding_cmp);
out:
	coffer_mailbox_close(&mb);
	for (size_t i = 0; i < nl.n; i++)
		free(nl.v[i]);
	free(nl.v);
	free(fl.v);
	free(sv.v);
	coffer_buf_free(&canon);
	return rc;
}
