/*
 * report.h: the retention report (`coffer report`): for each account, what
 * is held, where, and until when; store-wide, the snapshots and anything
 * held longer than the policy allows ("overdue", empty whenever the worker
 * has run). docs/report.schema.json is the JSON format's schema.
 *
 * The model is gathered once (report.c) and rendered as text, JSON or a
 * self-contained HTML page with an inline SVG timeline (report-render.c).
 * Account names appear only for accounts whose keys still exist; a shredded
 * account is shown by its audit pseudonym, or by the name the operator gave
 * with --account.
 */
#ifndef COFFER_REPORT_H
#define COFFER_REPORT_H

#include "engine/buf.h"
#include "engine/store.h"

#include <stdint.h>

struct coffer_report_snap {
	char id[32];
	int64_t created_at;
	int64_t expires_at;
};

struct coffer_report_account {
	char *name; /* NULL when unknown (shredded) */
	char pseudonym[40];
	uint8_t state;
	int64_t created_at, terminated_at, shredded_at;
	uint64_t messages, bytes;
	int64_t oldest_message;           /* internal date; 0 if none */
	struct coffer_report_snap *snaps; /* snapshots holding its data */
	size_t n_snaps;
	uint64_t events;
	int64_t oldest_event;
	int64_t events_expire; /* oldest_event + metadata retention */
	char next_action[64];  /* "auto-shred", "none", ... */
	int64_t next_action_at;
};

struct coffer_report_overdue {
	char what[64];      /* "snapshot", "metadata", "terminated account", "purge" */
	char subject[96];   /* snapshot id, account name or pseudonym */
	int64_t held_until; /* when it should have gone */
};

struct coffer_report {
	int64_t generated_at;
	const struct coffer_config *policy;
	struct coffer_report_account *accounts;
	size_t n_accounts;
	struct coffer_report_snap *snaps;
	size_t n_snaps;
	struct coffer_report_overdue *overdue;
	size_t n_overdue;
	char target_problem[256]; /* why snapshots could not be listed, or "" */
};

/* Gathers the report at time now, for every account or only account (any
 * spelling; also works for a shredded one). Needs the key file. */
int coffer_report_build(struct coffer_store *st, int64_t now, const char *account,
                        struct coffer_report *r);
void coffer_report_free(struct coffer_report *r);

int coffer_report_text(const struct coffer_report *r, struct coffer_buf *out);
int coffer_report_json(const struct coffer_report *r, struct coffer_buf *out);
int coffer_report_html(const struct coffer_report *r, struct coffer_buf *out);

#endif
