/*
 * restore.h: getting mail back from snapshots.
 *
 *   - coffer_restore_into(): messages of one account as of a time, into the
 *     live account under a new folder ("Restored/<date>/<original folder>" by
 *     default), keeping flags, keywords, internal dates and Maildir names.
 *     It never overwrites or duplicates live mail: a message whose blob is
 *     still live, or whose name already exists in the destination folder, is
 *     counted as present and skipped. Restored messages are re-encrypted
 *     under new blob ids, so their backups are independent of the old ones
 *     (which prune may delete on schedule).
 *   - coffer_restore_walk(): the same selection, handed to a callback (for
 *     writing a Maildir or a tar without touching the live store).
 *   - coffer_restore_all(): disaster recovery: a new store rebuilt from the
 *     newest snapshot with only the target and the key file: every account
 *     with its state (terminated, shredded tombstones), every message and
 *     control file with the same ids, uids and UIDVALIDITY.
 *
 * Times: the snapshot used is the newest one created at or before as_of.
 * When as_of is older than every retained snapshot the answer is
 * COFFER_ENOTFOUND with "beyond retention" and the oldest retained date.
 */
#ifndef COFFER_RESTORE_H
#define COFFER_RESTORE_H

#include "objects.h"

#include "engine/record.h"
#include "engine/store.h"

#include <stdint.h>

struct coffer_restore_opts {
	const char *target;  /* NULL: coffer.conf's snapshot_target */
	const char *account; /* account name */
	int64_t as_of;       /* ns */
	const char *folder;  /* only this folder (any spelling); NULL: all */
	uint32_t uid;        /* only this uid (needs folder); 0: all */
	const char *into;    /* destination folder root; NULL: Restored/<date> */
};

struct coffer_restore_result {
	char snapshot[COFFER_SNAPID_MAX];
	int64_t snapshot_time;
	char into[512];
	uint64_t restored;
	uint64_t present; /* already live: skipped */
	uint64_t folders;
	uint64_t accounts; /* restore_all */
	uint64_t bytes;
};

int coffer_restore_into(struct coffer_store *st, const struct coffer_restore_opts *o,
                        struct coffer_restore_result *res);

/* One message of a snapshot, for coffer_restore_walk(). read() streams its
 * content; valid during the callback only. */
struct coffer_restore_msg {
	const char *folder; /* canonical name */
	uint32_t uid;
	const struct coffer_message_rec *rec;
	const char *unique;    /* Maildir unique name */
	char *const *keywords; /* the folder's 26 keyword names (NULL = unused) */
	void *reader;          /* internal */
};
int coffer_restore_msg_read(const struct coffer_restore_msg *m, void *buf, size_t cap, size_t *n_r);
typedef int (*coffer_restore_fn)(const struct coffer_restore_msg *m, void *arg);
/* Calls fn for every selected message, folder by folder, uid order. Folders
 * with no selected message are still announced with rec == NULL (so empty
 * folders are kept). */
int coffer_restore_walk(struct coffer_store *st, const struct coffer_restore_opts *o,
                        coffer_restore_fn fn, void *arg, struct coffer_restore_result *res);

/* Writes the selection (as coffer_restore_walk) as a Maildir++ tree into
 * directory dir, or as a tar archive to tar (exactly one is non-NULL), with
 * the same layout and guarantees as `coffer export`; the live store is not
 * touched. */
int coffer_restore_export(struct coffer_store *st, const struct coffer_restore_opts *o,
                          const char *dir, const char *tar, struct coffer_restore_result *res);

/* Disaster recovery into a new store at store_path. */
int coffer_restore_all(const char *store_path, const char *key_file, const char *from,
                       struct coffer_restore_result *res);

#endif
