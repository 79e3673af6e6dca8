/*
 * import.h: importing an existing Maildir++ tree into an account (the engine
 * under `coffer import`), with the bulk write path.
 *
 * What is read: INBOX (MAILDIR/cur, MAILDIR/new) and every Maildir++ folder
 * MAILDIR/.<name> (modified UTF-7, '.' as separator: ".Lists.debian" is
 * "Lists/debian"), each with cur/ and new/. Per message the import keeps the
 * bytes, the standard flags (":2,DFPRST"), the keywords (letters a..z named
 * by the folder's dovecot-keywords), the mtime as the internal date (ns), the
 * folder, new vs cur, and the Maildir unique name (everything before ":2,"),
 * so that export and the mount give the file its old name back.
 *
 * What is skipped: tmp/, Dovecot's and Courier's control and index files
 * (read: dovecot-keywords; never imported as mail). Anything else that is not
 * a message is skipped and counted with a reason (enum coffer_import_skip):
 * the import goes on. Symbolic links are never followed, wherever they point.
 *
 * Resumable: a message whose unique name is already in its folder's name
 * index is counted as already imported and left alone, so running the import
 * again after any interruption imports nothing twice and loses nothing.
 *
 * Durability and crash safety: see import.c's top comment (batches, one
 * syncfs(2) per batch, one LMDB transaction per batch, and the import journal
 * that lets the next import remove the blobs of a batch that never committed).
 *
 * Memory is bounded by the batch size, whatever the number of messages: the
 * tree is walked as a stream of directory entries and no list of names is
 * held.
 */
#ifndef COFFER_MAILDIR_IMPORT_H
#define COFFER_MAILDIR_IMPORT_H

#include "engine/buf.h"
#include "engine/store.h"

#include <stddef.h>
#include <stdint.h>

/* Why a directory entry was not imported. */
enum coffer_import_skip {
	COFFER_IMPORT_SKIP_BAD_NAME,    /* not a Maildir message file name */
	COFFER_IMPORT_SKIP_SYMLINK,     /* a symbolic link: never followed */
	COFFER_IMPORT_SKIP_NOT_FILE,    /* a directory, FIFO, device or socket */
	COFFER_IMPORT_SKIP_UNREADABLE,  /* open or read failed (permissions, I/O) */
	COFFER_IMPORT_SKIP_EMPTY,       /* an empty file */
	COFFER_IMPORT_SKIP_NOT_MESSAGE, /* the first line is not a header field */
	COFFER_IMPORT_SKIP_TOO_LARGE,   /* larger than max_message_size */
	COFFER_IMPORT_SKIP_DUPLICATE,   /* its unique name is taken by another file of the folder */
	COFFER_IMPORT_SKIP_BAD_FOLDER,  /* a '.' directory whose name is not a valid folder */
	COFFER_IMPORT_SKIP_UNKNOWN,     /* an entry that has no place in a Maildir++ tree */
	COFFER_IMPORT_SKIP_COUNT
};

/* Short stable key ("bad-name") and a human description of a reason. */
const char *coffer_import_skip_key(enum coffer_import_skip why);
const char *coffer_import_skip_text(enum coffer_import_skip why);

/* How many example paths are kept per reason. */
#define COFFER_IMPORT_EXAMPLES 5

struct coffer_import_stats {
	/* filled before the walk when opts->prescan is set, else 0 */
	uint64_t total_files; /* entries of cur/ and new/ directories */
	uint64_t total_bytes;
	/* progress */
	uint64_t seen_files; /* entries of cur/ and new/ looked at so far */
	uint64_t seen_bytes;
	/* results */
	uint64_t imported;         /* messages stored by this run */
	uint64_t imported_bytes;   /* their plaintext bytes */
	uint64_t already;          /* present from an earlier run: left alone */
	uint64_t folders;          /* folders found in the tree (INBOX included) */
	uint64_t folders_created;  /* of which created in the account by this run */
	uint64_t keywords_dropped; /* keyword letters with no dovecot-keywords name, or
	                            * beyond the folder's 26 keywords */
	uint64_t orphans_removed;  /* blobs of an interrupted earlier run removed */
	uint64_t skipped_total;
	uint64_t skipped[COFFER_IMPORT_SKIP_COUNT];
	/* up to COFFER_IMPORT_EXAMPLES paths per reason, relative to MAILDIR, with
	 * control characters and invalid UTF-8 escaped as \xNN (safe to print);
	 * malloc'd, freed by coffer_import_stats_free() */
	char *examples[COFFER_IMPORT_SKIP_COUNT][COFFER_IMPORT_EXAMPLES];
};

struct coffer_import_opts {
	/* NULL or "": none. Otherwise INBOX goes to folder P and ".X.Y" to "P/X/Y". */
	const char *folder_prefix;
	/* Count files and bytes first (total_*), for an ETA. */
	int prescan;
	/* Batch limits: a batch is committed when it holds this many messages or
	 * bytes (0: defaults 256 and 32 MiB; messages at most 4096). */
	unsigned batch_messages;
	uint64_t batch_bytes;
	/* Called after every cur/new entry is dealt with, and once at the end;
	 * must be cheap (throttle in the callback). May be NULL. */
	void (*progress)(const struct coffer_import_stats *s, void *arg);
	void *progress_arg;
};

/*
 * Imports the Maildir++ tree at maildir into account name (which must exist
 * and be active; the key file is needed). stats_r is always filled (also on
 * failure: what was committed before it); free with coffer_import_stats_free().
 * Errors: COFFER_ENOTFOUND if maildir does not exist; COFFER_EBADMSG if it is
 * not a directory or not a Maildir (no cur/ or new/ at its root and no
 * Maildir++ folder); COFFER_ETEMP if another import into the account is
 * running; account and store errors as coffer_mailbox_open(); I/O errors of
 * the store. Skipped entries are not errors. On failure every batch already
 * committed stays (running again resumes) and nothing of the failed batch is
 * visible.
 */
int coffer_import_maildir(struct coffer_store *st, const char *name, const char *maildir,
                          const struct coffer_import_opts *opts,
                          struct coffer_import_stats *stats_r);
void coffer_import_stats_free(struct coffer_import_stats *s);

/* ---- pieces, exposed for tests ---- */

/* The Coffer folder of a Maildir++ directory: dir NULL (or "") is INBOX,
 * else a ".Name.Sub" directory name (n bytes). With a prefix (canonical form
 * not required): INBOX is the prefix itself, ".X" is prefix/X. The result is
 * canonical (names.h), in out (reset first). COFFER_EINVAL if not valid. */
int coffer_import_folder_name(const char *dir, size_t n, const char *prefix,
                              struct coffer_buf *out);

/* Parses a dovecot-keywords file (n bytes: lines "<index> <name>"): names_r[i]
 * is the malloc'd name of letter 'a'+i, or NULL. Lines that are malformed,
 * have an index past 25, or a name that is not a valid keyword (1..255 bytes
 * of printable ASCII without space or ()[]{}%*"\\) are ignored, as Dovecot
 * ignores them; a later line for the same index wins. *lines_ignored_r (may be
 * NULL) counts ignored non-empty lines. 0 or COFFER_ENOMEM. Free with
 * coffer_folder_keywords_free() (engine/folder.h). */
int coffer_import_keywords_parse(const char *p, size_t n, char *names_r[26],
                                 unsigned *lines_ignored_r);

/* What an entry of a Maildir++ directory (the root or a folder) is. */
enum coffer_import_entry {
	COFFER_IMPORT_ENTRY_MAILDIR, /* cur or new */
	COFFER_IMPORT_ENTRY_IGNORED, /* tmp, dovecot*, courier*, subscriptions, ... */
	COFFER_IMPORT_ENTRY_FOLDER,  /* ".Name" (only meaningful at the root) */
	COFFER_IMPORT_ENTRY_UNKNOWN,
};
enum coffer_import_entry coffer_import_classify(const char *name);

/* Appends a printable form of n bytes of an untrusted path to out: bytes
 * < 0x20, 0x7f, '\\' and invalid UTF-8 as \xNN. */
int coffer_import_escape(struct coffer_buf *out, const char *p, size_t n);

#endif
