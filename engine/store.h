/*
 * store.h: a Coffer store, the directory described in docs/design.md
 * section 1: its settings, its LMDB index, its blob tree, and (loaded only
 * when needed) its key file.
 *
 * Opening a store never reads the key file: `coffer deliver` opens stores
 * without one. coffer_store_keyfile() loads it on first use and keeps it,
 * in guarded memory, until the store is closed.
 *
 * A struct coffer_store is used by one thread at a time, except that its
 * index may be shared by threads (index.h). One per process per store.
 */
#ifndef COFFER_STORE_H
#define COFFER_STORE_H

#include "buf.h"
#include "config.h"
#include "crypto.h"
#include "index.h"
#include "keyfile.h"

#include <stdint.h>

#define COFFER_STORE_FORMAT 1
#define COFFER_DEFAULT_STORE "/var/lib/coffer"
#define COFFER_DEFAULT_KEY_FILE "/etc/coffer/coffer.key"

struct coffer_store;

/* Creates a store at path (which must not exist, or be an empty directory)
 * and its key file at key_file (NULL: COFFER_DEFAULT_KEY_FILE), which must
 * not exist. Refuses (COFFER_EEXIST) to overwrite either. On failure
 * nothing it created is left behind. The store is returned open. */
int coffer_store_init(const char *path, const char *key_file, struct coffer_store **st_r);

/* Disaster recovery: creates an empty store at path (which must not exist,
 * or be an empty directory) with the identity of a lost one: its store id
 * and index key, and its existing key file at key_file (which must belong to
 * that store id). */
int coffer_store_init_restore(const char *path, const char *key_file,
                              const unsigned char store_id[COFFER_ID_BYTES],
                              const unsigned char index_key[COFFER_KEY_BYTES],
                              struct coffer_store **st_r);

/* Opens an existing store. key_file overrides the path recorded in
 * coffer.conf (NULL: use the recorded one). COFFER_ENOTFOUND if path holds
 * no store, COFFER_EPERM if its mode lets group or others in. */
int coffer_store_open(const char *path, const char *key_file, struct coffer_store **st_r);
void coffer_store_close(struct coffer_store **st);

const char *coffer_store_path(const struct coffer_store *st);
const struct coffer_config *coffer_store_config(const struct coffer_store *st);
struct coffer_index *coffer_store_index(struct coffer_store *st);
/* The pool's memory of the files this handle made (engine/pool.h); NULL
 * when it could not be allocated. */
struct coffer_pool_hints *coffer_store_pool_hints(struct coffer_store *st);
const unsigned char *coffer_store_id(const struct coffer_store *st);
/* The key file path in force (override, else recorded, else default). */
const char *coffer_store_key_file_path(const struct coffer_store *st);

/* Loads (once) and returns the key file; errors as coffer_keyfile_load(),
 * plus COFFER_EPERM if it belongs to another store. Owned by the store. */
int coffer_store_keyfile(struct coffer_store *st, struct coffer_keyfile **kf_r);

/* MAC of a name for the *_names lookups: BLAKE2b-256 keyed with the store's
 * index key over label || a || b. */
int coffer_store_name_mac(const struct coffer_store *st, const char *label, const void *a,
                          size_t alen, const void *b, size_t blen,
                          unsigned char out[COFFER_MAC_BYTES]);

/* STORE/blobs/<acct hex>/<xx> and STORE/blobs/<acct hex>/<xx>/<blob hex>. */
int coffer_store_blob_dir(const struct coffer_store *st, const unsigned char *acct,
                          const unsigned char *blob_id, struct coffer_buf *out);
int coffer_store_blob_path(const struct coffer_store *st, const unsigned char *acct,
                           const unsigned char *blob_id, struct coffer_buf *out);
/* Removes the file of blob (acct, blob_id) that no commit names: a write
 * that failed, or was given up. Best effort (a file left behind is an orphan
 * that `coffer verify --repair` removes); a missing file is no error. */
void coffer_store_blob_discard(const struct coffer_store *st, const unsigned char *acct,
                               const unsigned char *blob_id);
/*
 * Creates the file of blob (acct, blob_id): O_EXCL, mode 0600, its
 * directories (0700) made first when missing. With durable, directories made
 * here are made durable at once (their parents fsynced); bulk writers pass 0
 * and make a whole batch durable with one syncfs(2). Everything made here is
 * handed to the store's owner (coffer_store_adopt). *fd_r is the open file
 * (read-write) and path_r (reset first) its path.
 */
int coffer_store_blob_create(struct coffer_store *st, const unsigned char *acct,
                             const unsigned char *blob_id, int durable, int *fd_r,
                             struct coffer_buf *path_r);

/*
 * coffer_store_blob_create() for a new message (`coffer deliver`, `coffer
 * import`): first coffer_reserve_check(st, bytes) (engine/reserve.h), so
 * that once the space reserve has been released, new mail that would take
 * the space it gave back is refused with COFFER_ENOSPACE before anything is
 * created. bytes is what the caller expects the blob to hold: the message's
 * size, or as much of it as it has read. Control files and restores, which
 * may use that space, call coffer_store_blob_create() directly.
 */
int coffer_store_mail_blob_create(struct coffer_store *st, const unsigned char *acct,
                                  const unsigned char *blob_id, int durable, uint64_t bytes,
                                  int *fd_r, struct coffer_buf *path_r);

/*
 * Gives a file or directory this process just made (by fd when fd >= 0, else
 * by path) to the user and group that own the store. A no-op unless the
 * process runs as root in a store owned by someone else: then the mail user's
 * own writers (`coffer deliver` run by the MTA) keep being able to write into
 * directories that a root process (the mount daemon, the worker) created.
 */
void coffer_store_adopt(const struct coffer_store *st, int fd, const char *path);

/*
 * Opens (creating, 0600, adopted) STORE/locks/<name>.lock and flock(2)s it
 * with op (LOCK_SH or LOCK_EX, optionally | LOCK_NB; EINTR is retried). On
 * success *fd_r holds the lock until the caller closes it. COFFER_ETEMP,
 * with no message, when LOCK_NB finds it held: the caller says by whom.
 */
int coffer_store_lock(struct coffer_store *st, const char *name, int op, int *fd_r);

/* STORE/blobs/<acct hex> */
int coffer_store_account_dir(const struct coffer_store *st, const unsigned char *acct,
                             struct coffer_buf *out);

#endif
