/*
 * mount.h: `coffer mount`, a FUSE (libfuse3) filesystem presenting each
 * active account of a store as a Maildir++ tree, so that unmodified IMAP and
 * POP3 servers (Dovecot) keep their Maildir on Coffer. docs/design.md
 * section "The mount" describes the tree, the write paths, durability and
 * caching; docs/dovecot.md the Dovecot side.
 *
 * The pieces that need no FUSE (path parsing, file name rules) are public
 * here so that tests/test-mount.c can exercise them.
 */
#ifndef COFFER_MAILDIR_MOUNT_H
#define COFFER_MAILDIR_MOUNT_H

#include "engine/buf.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What a path inside the mount names (before looking anything up). */
enum coffer_mount_kind {
	COFFER_MP_ROOT = 1, /* "/" */
	COFFER_MP_ACCT,     /* "/alice@x" : INBOX's Maildir root */
	COFFER_MP_ENTRY,    /* "/alice@x/NAME" or "/alice@x/.F/NAME": a folder dir
	                        (".F" at the account root only), a control file, or
	                        another directory */
	COFFER_MP_FOLDER,   /* "/alice@x/.F" when followed by more components */
	COFFER_MP_SUB,      /* ".../cur", ".../new", ".../tmp" */
	COFFER_MP_FILE,     /* ".../cur/NAME" etc. */
};

enum { COFFER_MP_CUR = 0, COFFER_MP_NEW = 1, COFFER_MP_TMP = 2 };

struct coffer_mount_path {
	int kind;         /* enum coffer_mount_kind */
	const char *acct; /* account name component (not NUL-terminated) */
	size_t acct_n;
	const char *dir; /* ".F" folder directory, or NULL for INBOX */
	size_t dir_n;
	int sub;          /* COFFER_MP_CUR/NEW/TMP for SUB and FILE */
	const char *name; /* last component for ENTRY and FILE */
	size_t name_n;
};

/*
 * Splits an absolute path of the mount. COFFER_EINVAL for anything that is
 * not a valid path of the tree: empty components, ".", "..", NUL, a
 * component over 255 bytes, more levels than the tree has. Pointers refer
 * into path.
 */
int coffer_mount_path_parse(const char *path, struct coffer_mount_path *p);

/* 1 if a name at a mailbox directory's level names cur/, new/ or tmp/
 * (*sub_r set), else 0. */
int coffer_mount_is_subdir(const char *name, size_t n, int *sub_r);

/*
 * The file name a message has in cur/ (is_new 0: "<unique>:2,<flags>") or
 * new/ (is_new 1: "<unique>", with ":2,<flags>" only when it has flags or
 * keywords), appended to out.
 */
int coffer_mount_message_name(struct coffer_buf *out, const char *unique, size_t n, int is_new,
                              unsigned flags, uint32_t keywords);

struct coffer_mount_opts {
	const char *store_path;
	const char *key_file; /* NULL: the store's recorded one */
	const char *mountpoint;
	const char *fuse_opts; /* extra -o options, or NULL */
	int allow_other;       /* --allow-user given */
	uid_t uid;             /* owner shown for every file */
	gid_t gid;
	int ready_fd; /* >= 0: write "ok\n" or an error line once mounted, then close */
};

/*
 * Runs the mount daemon in the calling process: opens the store, loads the
 * key file, takes STORE/locks/mount.lock (one mount per store), mounts and
 * serves until unmounted (fusermount3 -u, `coffer umount`, SIGTERM/SIGINT),
 * then writes out every dirty control file and returns. Returns 0 or a
 * COFFER_E* code (detail set).
 */
int coffer_mount_run(const struct coffer_mount_opts *o);

/* Waits (up to timeout_s seconds) until no mount daemon holds the store's
 * mount lock: COFFER_ETEMP on timeout. */
int coffer_mount_wait_exit(const char *store_path, int timeout_s);

#endif
