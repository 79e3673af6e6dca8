/*
 * snapshot.h: taking, listing and pruning snapshots (docs/format.md
 * "Snapshot target" gives the objects and the order of operations).
 *
 * Cost: a snapshot copies only blobs created since the previous one (the
 * store's `unsnapped` list) and writes a new state only for accounts whose
 * modseq changed; an unchanged account costs one manifest entry. Pruning one
 * expired snapshot deletes exactly the objects listed as freed by its
 * successor: work proportional to what expired.
 *
 * Concurrency: deliveries and the mount go on while a snapshot runs: each
 * account is read in its own short read transaction, and the blobs it lists
 * are protected from the trash collector by the blob gc lock (blob.h).
 */
#ifndef COFFER_SNAPSHOT_H
#define COFFER_SNAPSHOT_H

#include "objects.h"

#include "engine/store.h"

#include <stdint.h>

struct coffer_snapshot_result {
	char id[COFFER_SNAPID_MAX];
	uint32_t accounts;
	uint32_t changed;
	uint64_t messages;
	uint64_t new_blobs;
	uint64_t new_bytes;
	uint64_t freed;
};

typedef void (*coffer_progress_fn)(const char *what, uint64_t done, uint64_t total, void *arg);

/* Takes a snapshot of every account into target (NULL: coffer.conf's).
 * Refuses a target without a marker when the store already snapshots into
 * another one, unless flags has COFFER_SNAPSHOT_NEW_TARGET (repo.h
 * coffer_repo_bind). */
#define COFFER_SNAPSHOT_NEW_TARGET 1u
int coffer_snapshot_create_ex(struct coffer_store *st, const char *target, unsigned flags,
                              coffer_progress_fn progress, void *parg,
                              struct coffer_snapshot_result *res);
/* The same with flags 0. */
int coffer_snapshot_create(struct coffer_store *st, const char *target, coffer_progress_fn progress,
                           void *parg, struct coffer_snapshot_result *res);

struct coffer_snapshot_info {
	char id[COFFER_SNAPID_MAX];
	int64_t created_at;
	int64_t expires_at; /* created_at + data_retention_days */
	uint32_t accounts;
	uint64_t messages;
	uint64_t new_bytes;
	const struct coffer_manifest *manifest; /* valid during the callback */
};
typedef int (*coffer_snapshot_fn)(const struct coffer_snapshot_info *info, void *arg);
/* Every retained snapshot, oldest first. */
int coffer_snapshot_list(struct coffer_store *st, const char *target, coffer_snapshot_fn fn,
                         void *arg);

/* The newest snapshot in target (NULL: snapshot_target): its time in *t_r
 * and, when id_r is not NULL, its id; *t_r = 0 and "" when there is none
 * (or no marker to find them by yet). */
int coffer_snapshot_newest(struct coffer_store *st, const char *target, int64_t *t_r,
                           char id_r[COFFER_SNAPID_MAX]);

struct coffer_prune_result {
	uint32_t pruned;
	uint64_t objects_deleted;
	uint32_t kept;
};
/* Deletes the snapshots created before now - data_retention_days, and the
 * objects only they held. */
int coffer_snapshot_prune(struct coffer_store *st, const char *target, int64_t now,
                          struct coffer_prune_result *res);

/*
 * Crypto-shredding's part in the target (policy/shred.c): writes a new key
 * ring from the live index (where every account's key is now wrapped under
 * the new epoch and the shredded account is a tombstone), deletes every
 * older key ring, then every object of account shredded (may be NULL).
 * Takes the snapshot lock, waiting for a running snapshot to finish.
 * *deleted_r counts the deleted objects.
 */
int coffer_snapshot_rekey(struct coffer_store *st, const char *target,
                          const unsigned char *shredded, uint64_t *deleted_r);

#endif
