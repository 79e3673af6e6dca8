/*
 * repo.h: a snapshot repository, i.e. a target opened for one store with the
 * keys to read it: the metadata key (from the key file's store secret) and,
 * per account, the account's secret (unwrapped from the key ring or the live
 * index with the key file's current epochs).
 *
 * It also owns the two pieces of crash recovery every writer runs first:
 * a pending journal (a snapshot that died before its manifest) has its
 * objects removed; the newest manifest's drop list is deleted again.
 *
 * One writer at a time: coffer_repo_lock() takes STORE/locks/snapshot.lock
 * (create, prune, purge, restore into the store).
 */
#ifndef COFFER_SNAPSHOT_REPO_H
#define COFFER_SNAPSHOT_REPO_H

#include "objects.h"
#include "state.h"
#include "target.h"

#include "engine/keyfile.h"
#include "engine/store.h"

struct coffer_repo {
	struct coffer_target *target;
	struct coffer_keyfile *kf; /* borrowed from the store, or owned (restore --all) */
	int owns_kf;
	unsigned char store_id[COFFER_ID_BYTES];
	unsigned char target_id[COFFER_ID_BYTES]; /* from the marker (or new) */
	int fresh;                                /* no marker yet: a new target */
	unsigned char *meta_key;                  /* secure */
	char **ids;                               /* snapshot ids, ascending */
	size_t n_ids;
	int lock_fd;
};

/* Opens the target of store st (path, else coffer.conf's snapshot_target);
 * with create, makes it and its marker. Checks that the target belongs to
 * this store. */
int coffer_repo_open(struct coffer_store *st, const char *path, int create,
                     struct coffer_repo **r_r);
/* Opens a target with only a key file (disaster recovery). */
int coffer_repo_open_keyfile(const char *path, const char *key_file, struct coffer_repo **r_r);
void coffer_repo_close(struct coffer_repo **r);

/*
 * Binds the store's work list (unsnapped) to this target, before
 * a snapshot is written into it. The store remembers which target its lists
 * describe: a snapshot into any other target must copy everything, so the
 * lists are reset (every blob unsnapped) when the target changes. A target
 * with no marker where the store already has another one is refused unless
 * new_target: an empty directory is what an unmounted snapshot disk looks
 * like, and silently starting over on the root disk would hide that.
 */
int coffer_repo_bind(struct coffer_repo *r, struct coffer_store *st, int new_target);

/* Takes the store's snapshot lock without waiting: COFFER_ETEMP with a clear
 * message when another snapshot writer holds it. */
int coffer_repo_lock(struct coffer_repo *r, struct coffer_store *st);
/* Every blob of the store goes on the unsnapped list, so that the next
 * snapshot copies everything (a new target, or one wiped by prune). Runs
 * in short write transactions, not one: a crash part-way leaves part of the
 * store marked, which is harmless (copies skip existing objects); callers
 * record what the marking is for only after it returns 0. */
int coffer_repo_mark_all_unsnapped(struct coffer_store *st);
/* Crash recovery (see above); call with the lock held. */
int coffer_repo_recover(struct coffer_repo *r);
/* Re-reads the list of snapshot ids. */
int coffer_repo_refresh(struct coffer_repo *r);

int coffer_repo_get_manifest(struct coffer_repo *r, const char *id, struct coffer_manifest *m);
int coffer_repo_put_sealed(struct coffer_repo *r, const char *name, uint8_t kind,
                           const unsigned char *key, const void *pt, size_t n);
int coffer_repo_get_sealed(struct coffer_repo *r, const char *name, uint8_t kind,
                           const unsigned char *key, struct coffer_buf *pt);
/* The newest key ring (by name); *name_r gets its name (may be NULL). */
int coffer_repo_get_keyring(struct coffer_repo *r, struct coffer_keyring *k, char *name_r,
                            size_t cap);
/* Its two halves: the newest ring's name ("keyring/<id>", "" when the
 * target holds none), and the ring of that name. */
int coffer_repo_newest_keyring(struct coffer_repo *r, char *name_r, size_t cap);
int coffer_repo_read_keyring(struct coffer_repo *r, const char *name, struct coffer_keyring *k);

/* An account's state as of snapshot id (which must be retained): the full
 * state named by the newest manifest, with reverse deltas applied back to id.
 * COFFER_ENOTFOUND if the account is not in snapshot id. */
int coffer_repo_account_state(struct coffer_repo *r, const struct coffer_manifest *newest,
                              const char *id, const unsigned char *acct,
                              const struct coffer_acct_secret *secret, struct coffer_state *s);

void coffer_repo_obj_name(char *out, size_t cap, const unsigned char *acct, const char *kind,
                          const char *leaf);

#endif
