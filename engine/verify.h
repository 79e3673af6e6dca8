/*
 * verify.h: checking a store against itself (`coffer verify`), and the
 * repairs that are safe to make without a snapshot (`--repair`).
 *
 * What is checked, per account (all of them, or one):
 *   - the account record decodes and its wrapped secret key unwraps with the
 *     key file; its name box opens;
 *   - every folder record decodes and its name box opens; folder_names
 *     entries point at existing folders and every folder has its entry;
 *   - every keyword box opens and belongs to an existing folder;
 *   - every message record decodes, belongs to an existing folder, has a uid
 *     below the folder's uidnext, uses only keywords the folder defines, and
 *     has its msg_names entry; every msg_names entry points at a message;
 *   - every message's blob exists, its AEAD opens for (account id, blob id,
 *     kind) to the end, and the plaintext size equals the record's size;
 *   - every control file record (the mount's, engine/ctlfile.h) decodes and
 *     belongs to an existing folder; its blob opens as kind control to the
 *     end and holds the recorded size;
 *   - the blobs record of every message blob counts exactly the messages
 *     that point at it, that of every control-file blob exactly the control
 *     files; neither kind is named by the other; no blob is both live and in
 *     the trash;
 *   - and the reverse: every file under STORE/blobs/<acct>/<xx>/ is named by
 *     a blob id starting with <xx> and has a blobs or trash record. Anything
 *     else in the blob tree (other names, other file types, directories of
 *     unknown accounts) is a stray.
 *
 * Orphans: a blob file without a record is what a crash between writing a
 * blob and committing its transaction leaves (docs/design.md section 6).
 * One younger than the grace period (by mtime) may belong to a write in
 * progress: it is reported as pending, not damage.
 *
 * Repair (opts.repair) makes only these changes, each re-checked just before
 * it is made:
 *   - an orphan older than the grace period that no message points at, and
 *     that still has neither a blobs nor a trash record, is unlinked;
 *   - a stray is moved (rename(2), never over an existing file) to
 *     STORE/lost+found/ under its path relative to the store, with ".N"
 *     appended on a clash: an operator's file is never deleted;
 *   - the account's trash is collected (coffer_blob_collect()), unless one of
 *     its trashed blobs is still referenced, which is reported instead.
 * Damaged blobs and index records are reported, never changed.
 *
 * Concurrency: no transaction is held across blob I/O. Per account, one read
 * transaction checks the index (no file access but the few stat(2) calls
 * below); messages are then read in batches of COFFER_VERIFY_BATCH records,
 * each batch's transaction closed before its blobs are decrypted; the blob
 * tree is listed one <xx> directory at a time, each with a short
 * transaction. A blob found missing is re-checked against a fresh
 * transaction, so a message expunged meanwhile is not reported.
 *
 * Memory: per account, one entry of 24 bytes (blob id, folder id, uid) per
 * message, sorted by blob id, to count references and to recognise blob
 * files that messages point at (60,000 messages: 1.4 MiB); 76 bytes per
 * control file with a blob; 16 bytes per
 * trashed blob; one batch of records; one 256 KiB read buffer; the names of
 * one directory at a time. Nothing grows with the number of accounts but
 * the list of account ids.
 */
#ifndef COFFER_VERIFY_H
#define COFFER_VERIFY_H

#include "store.h"

#include <stdint.h>

/* Blob files without index entries younger than this may be writes in
 * progress. */
#define COFFER_VERIFY_GRACE_NS (600LL * 1000000000LL)
#define COFFER_VERIFY_BATCH 256

struct coffer_verify_problem {
	/* Account name; "account <hex id>" when it cannot be read; NULL for
	 * the top of the blob tree. */
	const char *account;
	const char *folder; /* folder name ("#<id>" if unreadable), or NULL */
	uint32_t uid;       /* 0 when the problem is not about one message */
	/* Blob id (32 hex), or for a stray its path relative to the store, or
	 * NULL. */
	const char *blob;
	const char *problem; /* what is wrong: one line */
	int pending;         /* 1: not damage (a young orphan: a write in progress?) */
	const char *repair;  /* what the repair did ("removed", "moved to ..."), or NULL */
};

/* Strings in *p are valid during the call only. A negative return stops the
 * run with that error. */
typedef int (*coffer_verify_problem_fn)(const struct coffer_verify_problem *p, void *arg);
/* Called after each message: done of total messages, bytes of blob files
 * read so far. */
typedef void (*coffer_verify_progress_fn)(uint64_t done, uint64_t total, uint64_t bytes, void *arg);

struct coffer_verify_opts {
	const char *account; /* NULL: every account, and the whole blob tree */
	int repair;
	int64_t grace_ns; /* 0: COFFER_VERIFY_GRACE_NS */
	coffer_verify_problem_fn problem;
	void *problem_arg;
	coffer_verify_progress_fn progress; /* may be NULL */
	void *progress_arg;
};

struct coffer_verify_stats {
	uint64_t accounts;      /* accounts checked */
	uint64_t messages;      /* message records checked */
	uint64_t blobs;         /* files with blob names found in the blob tree */
	uint64_t bytes;         /* bytes of blob files read */
	uint64_t problems;      /* damage found and not repaired */
	uint64_t repaired;      /* problems the repair resolved (orphans, strays) */
	uint64_t pending;       /* young orphans */
	uint64_t collected;     /* trash blob files removed by the repair */
	uint64_t control_files; /* control files (the mount's) whose blob was checked */
};

/*
 * Checks the store (see the top of this file), calling opts->problem for
 * each problem as it is found; never stops at one. Returns 0 when the check
 * ran to its end, whatever it found: stats_r->problems == 0 means sound.
 * Needs the key file (errors as coffer_store_keyfile()). Other failures:
 * COFFER_ENOACCOUNT if opts->account names no account, COFFER_EINVAL if
 * that name is invalid, COFFER_ENOMEM, index errors, and whatever the
 * callback returns.
 */
int coffer_verify_run(struct coffer_store *st, const struct coffer_verify_opts *opts,
                      struct coffer_verify_stats *stats_r);

#endif
