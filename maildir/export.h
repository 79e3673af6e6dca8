/*
 * export.h: writing an account out as a standard Maildir++ tree, to a new
 * directory or into a tar archive (the engine under `coffer export`).
 *
 * The tree (the same in both forms):
 *   cur/ new/ tmp/               INBOX
 *   dovecot-keywords             INBOX's keywords, "<index> <name>\n" (index
 *                                0 = letter a), only when it has keywords
 *   subscriptions                every folder, one per line, as Dovecot's
 *                                Maildir++ layout names them: INBOX, then
 *                                "Lists.debian" (modified UTF-7, '.' as the
 *                                hierarchy separator: the directory name
 *                                without its leading dot)
 *   .Lists.debian/               folder "Lists/debian"
 *     cur/ new/ tmp/ maildirfolder (empty) [dovecot-keywords]
 * Each message is one file in new/ or cur/ (as the index says), named
 * "<unique>" for a new message without flags or keywords, otherwise
 * "<unique>:2,<flags><keyword letters>"; its mtime (and in a directory its
 * atime) is the internal date, to the nanosecond; its content is byte for
 * byte what was delivered or imported. Keyword bits with no keyword name in
 * the folder are left out (no reader could interpret the letter).
 *
 * Directories are 0700 and files 0600 (less what the umask removes).
 *
 * Memory is bounded: messages are streamed (one 256 KiB buffer), never held
 * whole; one folder's message list (uids and names) is held at a time.
 *
 * Consistency: each folder is listed in its own read transaction; a message
 * expunged after its folder was listed is left out (counted in skipped).
 * A damaged message (missing or failing blob) stops the export with
 * COFFER_ECORRUPT naming account, folder and uid.
 */
#ifndef COFFER_MAILDIR_EXPORT_H
#define COFFER_MAILDIR_EXPORT_H

#include "engine/account.h"

#include <stdint.h>

/* Where a failure happened, for the caller's exit code. */
enum coffer_export_failure {
	COFFER_EXPORT_FAILED_SOURCE = 0, /* reading the store (or none) */
	COFFER_EXPORT_FAILED_CREATE = 1, /* the target could not be created or was refused */
	COFFER_EXPORT_FAILED_WRITE = 2,  /* writing the target failed midway */
};

struct coffer_export_stats {
	uint64_t folders;
	uint64_t messages;
	uint64_t bytes;   /* message bytes written */
	uint64_t skipped; /* messages expunged while the export ran */
	int failed_at;    /* enum coffer_export_failure, on failure */
};

/*
 * A source of folders and messages to write out. The live account is one
 * (coffer_export_dir / _tar build it from a mailbox); an account as of a
 * snapshot is another (snapshots/restore.c), so `coffer restore --to/--tar`
 * writes the same tree as `coffer export`.
 */
struct coffer_export_folder {
	uint32_t id;           /* the source's own id, handed back to messages() */
	const char *name;      /* canonical name */
	char *const *keywords; /* COFFER_FOLDER_KEYWORDS_MAX names; NULL = unused */
};

struct coffer_export_msg {
	uint32_t uid;
	const char *unique; /* Maildir unique name (validated before use) */
	uint8_t flags;
	uint8_t is_new;
	uint32_t keywords;
	int64_t internal_date;
	uint64_t size;
	/* streams the content; *n_r = 0 at the end */
	int (*read)(void *read_ctx, void *buf, size_t cap, size_t *n_r);
	void *read_ctx;
};

typedef int (*coffer_export_folder_fn)(const struct coffer_export_folder *f, void *arg);
typedef int (*coffer_export_msg_fn)(const struct coffer_export_msg *m, void *arg);

struct coffer_export_source {
	const char *account; /* for error details */
	/* every folder, INBOX included */
	int (*folders)(void *ctx, coffer_export_folder_fn fn, void *arg);
	/* every message of folder f; a message gone since the listing is
	 * skipped by returning COFFER_ENOTFOUND from read_ctx setup: the source
	 * simply does not call fn for it and counts it in *skipped */
	int (*messages)(void *ctx, const struct coffer_export_folder *f, coffer_export_msg_fn fn,
	                void *arg, uint64_t *skipped);
	void *ctx;
};

int coffer_export_dir_source(const struct coffer_export_source *src, const char *dir,
                             struct coffer_export_stats *stats_r);
int coffer_export_tar_source(const struct coffer_export_source *src, const char *path,
                             struct coffer_export_stats *stats_r);

/*
 * Exports the open mailbox into directory dir, which must not exist (it is
 * created, mode 0700; its parent must exist) or be an empty directory
 * (COFFER_EEXIST otherwise: nothing is ever overwritten). Every file is
 * written exclusively (O_EXCL, no symlinks followed); the file system is
 * synced once at the end (syncfs), so the tree is durable when this returns
 * 0. On failure the partial tree is removed (dir too, when it was created
 * here); the detail says so, or says what is left if removal failed.
 * stats_r may be NULL.
 */
int coffer_export_dir(struct coffer_mailbox *mb, const char *dir,
                      struct coffer_export_stats *stats_r);

/*
 * Exports the open mailbox as a tar archive to path (archive.h: "-" is
 * standard output; zstd when path ends in ".zst"; an existing file is
 * refused; a file appears only complete and durable). stats_r may be NULL.
 */
int coffer_export_tar(struct coffer_mailbox *mb, const char *path,
                      struct coffer_export_stats *stats_r);

#endif
