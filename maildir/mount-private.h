/*
 * mount-private.h: state shared by the mount daemon's files (mount.c: the
 * daemon, in-memory files, write-out, the flusher; mount-cache.c: the
 * decrypted-content cache; mount-ops.c: the FUSE operations and path
 * resolution; mount-folder.c: folder directories, i.e. mkdir, rmdir and a
 * folder's rename; mount-rename.c: rename and link of files; mount-seal.c:
 * tmp files' blobs made ahead of their rename). Not for use outside
 * maildir/mount*.c.
 *
 * Locking (the FUSE loop is multi-threaded; LMDB read transactions run
 * concurrently, and index.c serialises writers):
 *   - mnt.lock, a read-write lock over the tree's in-memory state (the files
 *     table, each account's fresh folders). Operations that only read it and
 *     the index take it shared: lookups and reads of messages, readdir of
 *     cur/ new/ tmp/ and of an account root, getattr of directories. Those
 *     that change in-memory files (tmp/, control files) or write the index
 *     take it exclusive, as does the flusher while it writes files out. A
 *     delivery out of tmp/ drops it while it encrypts, fsyncs and commits
 *     (the tmp file is taken out of the table meanwhile; mount-rename.c).
 *   - mnt.acct_lock: the account list and each account's modseq_seen and
 *     modseq_inval; changed_at is read and written atomically
 *     (mnt_changed/mnt_touch).
 *   - mnt.cache_lock: the decrypted-content LRU; decryption runs outside it,
 *     so cold reads of different messages decrypt in parallel.
 *   - mnt.stop_lock with stop_cond: the flusher's sleep and the stop flag.
 *   - the sealer's queue lock (mount-seal.c), taken alone or inside lock.
 * Order: lock, then acct_lock or cache_lock (never both, never the reverse).
 */
#ifndef COFFER_MAILDIR_MOUNT_PRIVATE_H
#define COFFER_MAILDIR_MOUNT_PRIVATE_H

#include "mount.h"

#include "engine/account.h"
#include "engine/envelope.h"
#include "engine/record.h"
#include "engine/store.h"
#include "maildir/name.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

/* A control file at a mailbox directory's level, a file in tmp/, or a
 * directory that is not a folder (Dovecot's DOVECOT-TRASHED). */
enum { MF_CTL = 1, MF_TMP, MF_XDIR };

struct macct {
	struct macct *next;
	char *name; /* canonical */
	unsigned char id[COFFER_ID_BYTES];
	struct coffer_mailbox *mb;
	const struct coffer_acct_secret *secret;
	/* The account's modseq up to which changes are accounted for: in
	 * changed_at (seen), in the kernel's caches (inval). Both follow the
	 * daemon's own commits (mnt_observe: the kernel made those changes, or
	 * the operation touched); a change by another process leaves them
	 * behind, and the next check or flusher tick catches up. */
	uint64_t modseq_seen;
	uint64_t modseq_inval;
	int64_t changed_at; /* ns: when a change was last noticed */
	unsigned pool_use;  /* messages written and tmp files made
	                                  since the last pool top-up (atomic) */
	unsigned tmp_files; /* MF_TMP files (atomic): each may
	                                  become a message blob */
	/* folders made by mkdir in this session whose cur/ new/ tmp/ have not
	 * all been made yet (Dovecot's CREATE expects to make them itself) */
	struct mfresh {
		uint32_t fid;
		unsigned mask; /* bit COFFER_MP_*: made */
	} * fresh;
	size_t nfresh;
};

struct mfile {
	struct mfile *next; /* hash chain */
	int type;           /* MF_* */
	struct macct *a;
	uint32_t fid; /* the mailbox directory's folder */
	char *name;
	size_t name_n;
	struct coffer_buf data; /* content when loaded */
	int loaded;
	uint64_t size;
	int64_t mtime;
	uint32_t mode;
	int dirty;     /* ctl: content newer than the index */
	int persisted; /* ctl: has an index entry */
	/* ctl: unlinked while open (mount-hidden.c): the name is gone for
	 * lookups; a write-out deletes its index entry, a rename or create
	 * onto the name replaces it */
	int gone;
	/* ctl: link(2) made a copy of this file, `peer_name` in folder
	 * peer_fid (created as file number peer_ino; path peer_path). Writes to
	 * this file, or to its hidden continuation, go to the copy too while
	 * both have the same size, as they would to one inode: Dovecot links
	 * its transaction log to .log.2, then renames a new log over the open
	 * old one, and its processes append to the old one until they notice */
	uint64_t ino; /* unique in this daemon's life */
	uint64_t peer_ino;
	uint32_t peer_fid;
	char *peer_name, *peer_path;
	size_t peer_n;
	int64_t dirty_since, used_at;
	/* tmp files linked to an existing message (Dovecot's hard-link copy,
	 * or after qmail's link): content is that message's blob */
	int linked;
	struct coffer_message_rec lrec;
	/* a hidden message: its blob, held open so that the trash collector's
	 * unlink cannot take it away before the last close (-1 if none) */
	int pin_fd;
	/* tmp files over the memory limit stream into a staging blob */
	int spilled;
	int sfd;
	struct coffer_blob_writer *w;
	unsigned char sblob[COFFER_ID_BYTES];
	struct coffer_buf spath;
	/* tmp files: the blob made ahead of the rename (mount-seal.c) */
	uint64_t seal_gen; /* moves with every change of content */
	int seal_queued, sealed;
	int64_t sealed_at;
	uint64_t seal_stored;
	unsigned char seal_blob[COFFER_ID_BYTES];
};

struct centry {
	struct centry *hnext, *prev, *next;
	unsigned char acct[COFFER_ID_BYTES], blob[COFFER_ID_BYTES];
	unsigned char *data;
	size_t len;
};

#define MNT_HASH 4096

struct mnt {
	pthread_rwlock_t lock;
	pthread_mutex_t acct_lock;
	pthread_mutex_t cache_lock;
	pthread_mutex_t stop_lock;
	struct coffer_store *st;
	struct fuse_session *se; /* while mounted */
	struct mnt_ll *ll;       /* the kernel's inodes (mount-ll.c) */
	struct mnt_uring *uring; /* FUSE over io_uring (mount-uring.c) */
	const struct coffer_mount_opts *o;
	uid_t uid;
	gid_t gid;
	int64_t started_at;
	struct macct *accts;
	struct mfile *files[MNT_HASH];
	struct mfile *hidden; /* open files unlinked (mount-hidden.c) */
	uint64_t next_ino;
	struct centry *cache[MNT_HASH];
	struct centry *lru_head, *lru_tail; /* head = most recent */
	size_t cache_bytes, cache_max;
	size_t tmp_mem_max; /* per tmp file, before spilling */
	uint64_t max_message;
	int gc_pending;
	int reserve_released; /* by this daemon, not refilled yet */
	int linked;           /* a control file was linked (mfile.peer) */
	int stop;
	pthread_cond_t stop_cond;
	int pool_wake;         /* under stop_lock: top the pools up now */
	int sync_wake;         /* under stop_lock: sync now */
	unsigned unsynced;     /* lazy commits since the last sync (atomic) */
	struct mnt_seal *seal; /* tmp files sealed ahead (mount-seal.c) */
};

extern struct mnt *coffer_mnt;

/* errors */
int mnt_errno(int rc);
void mnt_log(const char *op, const char *path, int rc);

/* accounts: the account named by the path component (canonical), opened
 * (its state is checked by mnt_account_check_txn, in the operation's own
 * read transaction: one transaction per lookup) */
int mnt_account(struct mnt *m, const char *name, size_t n, struct macct **a_r);
/* COFFER_ENOTFOUND unless the account is active; notes a modseq change
 * (the directories' mtime). */
int mnt_account_check_txn(struct coffer_txn *t, struct mnt *m, struct macct *a);
/* Commits a change to the Maildir tree (a delivery out of tmp/, a flag
 * rename or move, an expunge, a message's mtime) lazily, as a file system
 * makes a rename durable only at the next fsync of its directory
 * (docs/design.md, Durability); mnt_lazy_sync() makes every lazy commit so
 * far durable: fsync of a directory or a message, the flusher's tick, the
 * unmount. */
#define MNT_SYNC_EVERY 512
int mnt_commit_lazy(struct mnt *m, coffer_txn_fn fn, void *arg);
int mnt_lazy_sync(struct mnt *m);
int64_t mnt_now(void);
/* Indexes a's spooled deliveries (engine/spool.h); if any, a's directories
 * move their mtime and are invalidated at the next tick. With m->lock held
 * or not; takes acct_lock. */
void mnt_absorb(struct mnt *m, struct macct *a);
/* A message blob of a was written, or a tmp file made: every
 * MNT_POOL_EVERY of them, the flusher tops a's blob pool up (engine/pool.h)
 * to a lazy batch plus a file for each tmp file, so that the files are made
 * off the requests' path, and ahead of a burst of renames (Dovecot writes
 * a transaction's tmp files first and renames them all at its commit). */
#define MNT_POOL_EVERY 32
void mnt_pool_use(struct mnt *m, struct macct *a);
/* The account's directory mtime: when a change was last seen or made. */
static inline int64_t mnt_changed(const struct macct *a)
{
	return __atomic_load_n(&a->changed_at, __ATOMIC_RELAXED);
}
static inline void mnt_touch(struct macct *a)
{
	__atomic_store_n(&a->changed_at, mnt_now(), __ATOMIC_RELAXED);
}

/* in-memory files */
struct mfile *mnt_file_find(struct mnt *m, int type, struct macct *a, uint32_t fid,
                            const char *name, size_t n);
struct mfile *mnt_file_new(struct mnt *m, int type, struct macct *a, uint32_t fid, const char *name,
                           size_t n);
void mnt_file_free(struct mnt *m, struct mfile *f);
/* Takes f out of the table (still owned by the caller), or puts it back:
 * 0, or COFFER_EEXIST when its name was taken meanwhile. */
void mnt_file_unhash(struct mnt *m, struct mfile *f);
int mnt_file_rehash(struct mnt *m, struct mfile *f);
int mnt_file_rename(struct mnt *m, struct mfile *f, uint32_t fid, const char *name, size_t n);
/* Loads a control file's content from its blob when not in memory. */
int mnt_ctl_load(struct mnt *m, struct mfile *f);
/* The control file named (in memory, or from the index: then cached). */
int mnt_ctl_get(struct mnt *m, struct macct *a, uint32_t fid, const char *name, size_t n,
                struct mfile **f_r);
/* In a write transaction: when name is dovecot-keywords, defines its
 * keyword names in folder fid at the file's indexes (see mount.c). */
int mnt_keywords_sync_txn(struct coffer_txn *t, struct macct *a, uint32_t fid, const char *name,
                          size_t n, const struct coffer_buf *data);
/* Writes a dirty control file out (new blob, one transaction); on a full
 * disk, releases the store's space reserve and tries once more. */
int mnt_ctl_persist(struct mnt *m, struct mfile *f);
/* Wipes and frees a control file's loaded content (read back from its blob
 * when used again). */
void mnt_ctl_unload(struct mfile *f);
/* The store's space reserve (engine/reserve.h), under the tree lock held
 * exclusively: release gives its space to control files (1 if it did, with
 * one log line), refill takes it back once the disk has room again. */
int mnt_reserve_release(struct mnt *m);
void mnt_reserve_refill(struct mnt *m);
/*
 * Writes and truncates f, and the copy a link made of it (see mfile.peer).
 * When the copy changed, *inval_r is its path (caller frees): the kernel
 * still caches its old size and pages, so the caller hands it to
 * mnt_inval_copy() after dropping the tree lock and before answering.
 */
int mnt_file_write(struct mnt *m, struct mfile *f, const void *p, size_t n, uint64_t off,
                   char **inval_r);
int mnt_file_truncate(struct mnt *m, struct mfile *f, uint64_t size, char **inval_r);
/* Invalidates the kernel's caches of the link copy at path and frees path.
 * Called with no lock held, by the thread serving the write to the copy's
 * original: that write holds the original's pages, never the copy's, and a
 * copy's own writes mirror nowhere, so no request the kernel waits on here
 * waits on this one. NULL is a no-op. */
void mnt_inval_copy(struct mnt *m, char *path);
/* f is about to go by name n in folder fid (UINT32_MAX: hidden, name its
 * path), at kernel path `path`, as file number ino: the files whose link
 * copy it is follow it, as they would one inode. */
void mnt_peer_moved(struct mnt *m, const struct mfile *f, uint32_t fid, const char *name, size_t n,
                    const char *path, uint64_t ino);
/* Ends f's mirroring into its copy (f keeps its content). */
void mnt_file_forget_peer(struct mfile *f);
/* Makes copy (made by link(2) from f, at path) f's peer. 0 or COFFER_ENOMEM. */
int mnt_file_set_peer(struct mnt *m, struct mfile *f, const struct mfile *copy, const char *path);
int mnt_file_read(struct mnt *m, struct mfile *f, void *p, size_t n, uint64_t off, size_t *got_r);

/*
 * Blobs of tmp files made ahead of their rename, by the sealer thread
 * (mount-seal.c). start and stop: the daemon's, around the FUSE loop.
 * queue: an fsync of f (tree lock held exclusive); does nothing unless f is
 * a tmp file in memory with content, not sealed yet. drop: f's content
 * changes or f goes (tree lock held exclusive, or f out of the table and
 * the caller's); a sealed blob is removed. take: a rename into account a
 * delivers f (out of the table, the caller's): 1 with the sealed blob's id
 * and stored size, now the caller's; 0 when it must seal inline.
 */
int mnt_seal_start(struct mnt *m);
void mnt_seal_stop(struct mnt *m);
void mnt_seal_queue(struct mnt *m, struct mfile *f);
void mnt_seal_drop(struct mnt *m, struct mfile *f);
int mnt_seal_take(struct mnt *m, struct mfile *f, const struct macct *a,
                  unsigned char blob_id_r[COFFER_ID_BYTES], uint64_t *stored_r);

/* message content through the cache (mount-cache.c) */
int mnt_msg_read(struct mnt *m, struct macct *a, const struct coffer_message_rec *rec, int pin_fd,
                 void *p, size_t n, uint64_t off, size_t *got_r);
void mnt_cache_drop(struct mnt *m, const unsigned char *acct, const unsigned char *blob);
/* Wipes and frees every entry (at unmount). */
void mnt_cache_free(struct mnt *m);

/* the FUSE operations, by path (mount-ops.c) */
struct fuse_operations;
const struct fuse_operations *mnt_ops(void);

/* The kernel's inodes over them (mount-ll.c): the session (NULL if the
 * options are refused; args may be changed), the once-a-tick release of
 * inode numbers remembered past their time, the kernel's cache of a path
 * dropped, and the table freed at the end. */
struct fuse_args;
struct fuse_session *mnt_ll_session(struct mnt *m, struct fuse_args *args);
/* Called by each operation of mount-ops.c once it holds the tree lock:
 * 1 if a rename or removal since the request's path was built may have
 * given that path to another file (mount-ll.c, ll_ctx). The operation then
 * does nothing and answers MNT_RETRY; mount-ll.c builds the path again. */
int mnt_ll_stale(struct mnt *m);
#define MNT_RETRY (-ERESTART)
void mnt_ll_sweep(struct mnt *m);
void mnt_ll_invalidate(struct mnt *m, const char *path);
void mnt_ll_free(struct mnt *m);

/* mount-uring.c: FUSE over io_uring. attach: after fuse_session_mount(),
 * takes over the session's I/O (0 or -errno; the ring itself starts, or
 * not, at INIT); stop: after the loop returned, before the session is
 * destroyed. */
int mnt_uring_attach(struct mnt *m, struct fuse_session *se);
void mnt_uring_stop(struct mnt *m);

/* A path resolved for an operation (mount-ops.c). */
struct mres {
	struct coffer_mount_path p;
	struct mnt *m;
	struct macct *a;
	uint32_t fid;             /* the mailbox directory's folder */
	struct coffer_buf folder; /* its canonical name */
	int is_folder;            /* ENTRY at the account root that is a folder */
	uint32_t efid;
	struct coffer_buf efolder;
	int is_msg; /* FILE in cur/ or new/ that is a message */
	uint32_t uid;
	struct coffer_message_rec rec; /* name_box cleared */
	struct coffer_maildir_name mn;
	struct coffer_buf unique;
	int sub_missing; /* SUB or FILE under a cur/new/tmp not made yet */
};

/* Resolves path, with m->lock held; 0 with r filled, or -errno. The
 * account and the mailbox directory must exist; the last component may
 * not. r is freed by mnt_res_free, whatever this returned. */
int mnt_resolve(struct mnt *m, const char *path, struct mres *r);
void mnt_res_free(struct mres *r);
/* The control file or in-memory directory a resolved mailbox-level ENTRY
 * names (owned by the table): 0, or -ENOENT (-errno). */
int mnt_entry_file(struct mnt *m, struct mres *r, struct mfile **f_r);

/* Folder directories (mount-folder.c), with m->lock held exclusive. */
/* 1 if cur/ new/ or tmp/ (sub: COFFER_MP_*) of folder fid exists; not yet
 * for a folder made by mkdir in this session. */
int mnt_sub_exists(struct macct *a, uint32_t fid, int sub);
/* mkdir() and rmdir(): 0 or -errno. */
int mnt_do_mkdir(struct mnt *m, const char *path, mode_t mode);
int mnt_do_rmdir(struct mnt *m, const char *path);
/* rename() of src, an ENTRY that is a folder, to dst: 0 or -errno. */
int mnt_rename_folder(struct mnt *m, struct mres *src, struct mres *dst, unsigned flags);

/* Files unlinked or renamed over while open (mount-hidden.c), under
 * m->lock: mount-ll.c renames such a file to ".fuse_hidden<16 hex>" in its
 * directory and unlinks that name when the kernel forgets it.
 * mnt_hidden_name: 1 if path's last component has that form (such names
 * are mount-ll.c's alone);
 * mnt_hidden_find: the file under that path, or NULL; mnt_hide: the rename
 * to it (0 or -errno); mnt_hidden_unlink: its last close; mnt_hidden_free_all
 * at unmount. */
int mnt_hidden_name(const char *path);
struct mfile *mnt_hidden_find(struct mnt *m, const char *path);
int mnt_hide(struct mnt *m, const char *from, const char *to);
int mnt_hidden_unlink(struct mnt *m, const char *path);
void mnt_hidden_free_all(struct mnt *m);
/* Expunges the message a resolved cur/ or new/ FILE names: 0 or -errno. */
int mnt_expunge(struct mnt *m, struct mres *r);

/* rename() (keep 0) or link() (keep 1), with m->lock held exclusive; it is
 * dropped and taken again while a tmp file is delivered (mount-rename.c).
 * 0 or -errno. */
int mnt_do_rename(struct mnt *m, const char *from, const char *to, unsigned flags, int keep);

#endif
