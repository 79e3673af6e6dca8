/*
 * job.h: policy actions that reach the audit log exactly once.
 *
 * An action that changes the store (a snapshot, a prune, metadata expiry, a
 * restore, terminate, reactivate) is a job. Before it changes anything it
 * commits an intent in the index (META "job/<id>": the action, when it
 * began, the process that runs it, the account's pseudonym). Its audit entry
 * ends with " job=<id>" and removes the intent in the transaction that
 * records the entry as written (coffer_audit_append_txn). So at any moment a
 * job is in the log, or has an intent, or changed nothing.
 *
 * Two kinds of beginning:
 *   - coffer_job_begin: the intent alone; what the job did is known only
 *     when it ends (a snapshot writes files and several transactions);
 *   - coffer_job_begin_with: the intent in the same transaction as the
 *     change itself (terminate, reactivate), so an intent proves the change.
 *
 * Recovery (coffer_job_recover, run by the worker and before each audited
 * command): an intent whose process is gone is recorded now. Nothing more
 * when the log already holds its entry (the process stopped between the
 * entry's line and the transaction that ends the intent). Otherwise, a
 * change the intent proves is recorded as done, a snapshot taken since the
 * job began by its id, and anything else as "interrupted". An intent whose
 * process still runs (same pid and start time) is left to it. One that
 * cannot be read (a damaged record) is removed with a "recovery" entry
 * saying so, rather than stop every later recovery.
 *
 * An account's pseudonym needs the key file. A job on an account begun
 * without it (terminate needs no key file) names the account by its id
 * ("id:<hex>"): it cannot be written to the log then, and the next run that
 * has the key file (the worker) records it.
 *
 * Ownership: struct coffer_job is the caller's; nothing in it is allocated.
 */
#ifndef COFFER_POLICY_JOB_H
#define COFFER_POLICY_JOB_H

#include "audit.h"

#include "engine/index.h"
#include "engine/store.h"

#include <stdint.h>

#define COFFER_JOB_ID_CHARS 17 /* 16 hex digits */

struct coffer_job {
	char action[32];
	char account[COFFER_AUDIT_PSEUDONYM_MAX]; /* "ps:<hex>", "id:<hex>" or "" */
	char id[COFFER_JOB_ID_CHARS];
	int64_t began;
};

/* Commits the intent of action (on the account named by pseudonym or
 * "id:<hex>", or "" for the store) beginning at now. */
int coffer_job_begin(struct coffer_store *st, struct coffer_job *j, const char *action,
                     const char *account, int64_t now);

/* The same, committed in one transaction with fn(txn, arg): the change. */
int coffer_job_begin_with(struct coffer_store *st, struct coffer_job *j, const char *action,
                          const char *account, int64_t now, coffer_txn_fn fn, void *arg);

/* Writes the job's entry (detail, then " job=<id>"; detail may be "") and
 * ends the intent in one transaction. detail NULL: the job changed nothing;
 * the intent ends without an entry. COFFER_EPERM when the account has no
 * pseudonym (no key file): the intent stays for a later run. */
int coffer_job_end(struct coffer_store *st, const struct coffer_job *j, const char *detail);

/* Records every job an earlier process began and did not end (see above).
 * log (may be NULL) gets one line per job recorded. Jobs that need the key
 * file are left when the store has none. */
typedef void (*coffer_job_log_fn)(const char *line, void *arg);
int coffer_job_recover(struct coffer_store *st, coffer_job_log_fn log, void *arg);

/* Formats one line for log (nothing when log is NULL). */
void coffer_job_say(coffer_job_log_fn log, void *arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The start time of process pid (clock ticks since boot, field 22 of
 * /proc/<pid>/stat), 0 when it is gone or a zombie: what tells a job's
 * process from a later one with the same pid. */
unsigned long long coffer_job_proc_start(long pid);

#endif
