/*
 * security.h: "possibly undesired access": rules over the login events of
 * the last COFFER_SECURITY_LOOKBACK_DAYS (the metadata retention) that point
 * at attempts the account holder should look at, each with its evidence.
 *
 * Rules (thresholds below; docs/access.md explains them):
 *   failure-burst         COFFER_SECURITY_BURST_MIN or more failed attempts,
 *                         each within COFFER_SECURITY_BURST_GAP of the one
 *                         before;
 *   new-network           a successful login from a network (/24 IPv4, /48
 *                         IPv6) that no successful login of the account used
 *                         in the 180 days before it (the account's very first
 *                         successful login sets the baseline and is not
 *                         reported);
 *   revoked-app-password  an attempt with an application password that was
 *                         revoked;
 *   many-accounts-one-ip  one IP failing on COFFER_SECURITY_MANY_ACCOUNTS or
 *                         more accounts within COFFER_SECURITY_MANY_WINDOW.
 *                         The account view gives the count of other
 *                         accounts, never their names; the operator view
 *                         (all accounts) names them.
 *
 * Reading events needs the accounts' keys (the key file). Terminated and
 * shredded accounts are not analysed (their logs cannot be opened for
 * reading through a mailbox).
 */
#ifndef COFFER_POLICY_SECURITY_H
#define COFFER_POLICY_SECURITY_H

#include "engine/events.h"

#include "engine/store.h"

#include <stddef.h>
#include <stdint.h>

#define COFFER_SECURITY_LOOKBACK_DAYS 180
#define COFFER_SECURITY_BURST_MIN 5
#define COFFER_SECURITY_BURST_GAP (10 * 60 * COFFER_NS_PER_SEC)
#define COFFER_SECURITY_MANY_ACCOUNTS 3
#define COFFER_SECURITY_MANY_WINDOW (60 * 60 * COFFER_NS_PER_SEC)

enum coffer_finding_kind {
	COFFER_FINDING_FAILURE_BURST = 1,
	COFFER_FINDING_NEW_NETWORK = 2,
	COFFER_FINDING_REVOKED_APP_PASSWORD = 3,
	COFFER_FINDING_MANY_ACCOUNTS_ONE_IP = 4,
};

struct coffer_finding {
	uint8_t kind;
	char *account;    /* canonical name */
	int64_t first_at; /* first and last event of the evidence */
	int64_t last_at;
	uint32_t count;      /* events in the evidence */
	uint32_t accounts;   /* distinct accounts (many-accounts-one-ip) */
	struct coffer_ip ip; /* the IP (new-network: the login's) */
	uint8_t service;
	char *label;    /* application password label, "" if none */
	char *evidence; /* one human line */
};

/* The findings, newest (last_at) first. Owns every string. */
struct coffer_security_report {
	struct coffer_finding *v;
	size_t n, cap;
	uint64_t accounts_checked;
	uint64_t events_checked;
};

void coffer_security_report_free(struct coffer_security_report *r);
const char *coffer_finding_kind_name(uint8_t kind);

/* A login event as the rules see it (events.h struct coffer_event, with the
 * label copied). */
struct coffer_login_sample {
	int64_t at;
	uint8_t success;
	uint8_t service;
	uint8_t reason;
	struct coffer_ip ip;
	char label[COFFER_EVENT_LABEL_MAX + 1];
};

/* The per-account rules over samples (oldest first, n of them) of account
 * `account`, looking at those with time in [now - 180 days, now]. Appends to
 * r. Pure: for tests and for coffer_security_check(). */
int coffer_security_analyze(const char *account, const struct coffer_login_sample *s, size_t n,
                            int64_t now, struct coffer_security_report *r);

/* Runs every rule for account name (nlen bytes), or for every active
 * account when name is NULL (the operator's view), at time now. Needs the
 * key file. r must be zeroed; free it with coffer_security_report_free(). */
int coffer_security_check(struct coffer_store *st, const char *name, size_t nlen, int64_t now,
                          struct coffer_security_report *r);

#endif
