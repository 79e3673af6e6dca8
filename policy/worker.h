/*
 * worker.h: the retention policy worker (`coffer worker [--once]`).
 *
 * One pass runs every job that is due, in this order:
 *   1. finish an interrupted purge (shred.h);
 *   2. crypto-shred terminated accounts whose grace (termination_grace_days)
 *      has run out;
 *   3. take the daily snapshot when none exists since the latest daily slot
 *      (snapshot_time, UTC): a worker that was off for three days takes one,
 *      not three;
 *   4. prune snapshots older than data_retention_days;
 *   5. delete access and delivery events older than metadata_retention_days;
 *   6. unlink trashed blobs.
 * Every job is idempotent, so a pass after a crash, or a second pass, does
 * only what is still due. Jobs that did something are written to the audit
 * log. Only one worker runs per store (locks/worker.lock).
 */
#ifndef COFFER_WORKER_H
#define COFFER_WORKER_H

#include "engine/store.h"

#include <stdint.h>

struct coffer_worker_result {
	char snapshot[32]; /* id taken, or "" */
	uint32_t pruned;
	uint64_t events_expired;
	uint32_t shredded;
	uint64_t blobs_collected;
	uint64_t pool_trimmed;   /* unused pool files (engine/pool.h) removed */
	uint64_t spool_absorbed; /* spooled deliveries indexed (engine/spool.h) */
	int64_t next_due;        /* when the next job falls due (ns) */
};

/* Takes the worker lock without waiting (COFFER_ETEMP when another worker
 * holds it); *fd_r is released by closing it. */
int coffer_worker_lock(struct coffer_store *st, int *fd_r);

/* One pass at time now. log (may be NULL) gets one line per job. */
typedef void (*coffer_worker_log_fn)(const char *line, void *arg);
int coffer_worker_run(struct coffer_store *st, int64_t now, coffer_worker_log_fn log, void *arg,
                      struct coffer_worker_result *res);

/* The latest daily snapshot slot at or before now. */
int64_t coffer_worker_last_slot(const struct coffer_store *st, int64_t now);

#endif
