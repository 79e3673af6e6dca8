/*
 * action.h: the policy actions an operator runs by hand (`coffer account
 * terminate|reactivate`, `coffer snapshot create|prune`, `coffer restore`),
 * each a job (job.h) so that it reaches the audit log exactly once, however
 * the process ends.
 *
 * Each first records the jobs earlier processes left unfinished, then:
 *   - terminate, reactivate: the state change and the intent commit
 *     together; the entry follows;
 *   - snapshot, prune, restore: the intent, the action, the entry (with the
 *     action's counts). An action refused before it changed anything (a
 *     busy lock, a bad argument, nothing to restore) leaves no entry; one
 *     that failed part-way is recorded as "failed: <the error code's text>".
 *
 * Return: the action's result (0, or a negative COFFER_E* code with the
 * detail in coffer_errmsg()). When the action succeeded but its entry could
 * not be written (no key file to name the account, a log that cannot be
 * appended), *pending_r (may be NULL) is set to 1 and coffer_errmsg() says
 * why; the intent stays, and the next worker run records it.
 */
#ifndef COFFER_POLICY_ACTION_H
#define COFFER_POLICY_ACTION_H

#include "engine/store.h"
#include "snapshots/restore.h"
#include "snapshots/snapshot.h"

#include <stddef.h>

int coffer_action_terminate(struct coffer_store *st, const char *name, size_t n, int *pending_r);
int coffer_action_reactivate(struct coffer_store *st, const char *name, size_t n, int *pending_r);

/* coffer_snapshot_create_ex() as a job. */
int coffer_action_snapshot(struct coffer_store *st, const char *target, unsigned flags,
                           coffer_progress_fn progress, void *parg,
                           struct coffer_snapshot_result *res, int *pending_r);

/* coffer_snapshot_prune() as a job (no entry when nothing was pruned). */
int coffer_action_prune(struct coffer_store *st, const char *target, int64_t now,
                        struct coffer_prune_result *res, int *pending_r);

/* coffer_restore_into() as a job. */
int coffer_action_restore(struct coffer_store *st, const struct coffer_restore_opts *o,
                          struct coffer_restore_result *res, int *pending_r);

/* coffer_restore_all(), then its entry in the new store's log. The one
 * action that is not a job: there is no store to hold an intent until the
 * rebuild is done, so a process killed between the two leaves a rebuilt
 * store without the entry. */
int coffer_action_restore_all(const char *store_path, const char *key_file, const char *from,
                              struct coffer_restore_result *res, int *pending_r);

#endif
