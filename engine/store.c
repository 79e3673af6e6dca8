/*
 * store.c: creating and opening stores (see store.h).
 *
 * Init order, chosen so that a failure or crash leaves nothing half-made
 * that a later init would trip over or, worse, accept:
 *   1. the key file is created with link(2), which refuses an existing file;
 *   2. the store directory (0700) and its subdirectories are made;
 *   3. the LMDB environment is created and its meta records (format,
 *      store id, index key) committed;
 *   4. coffer.conf is written atomically, last: a directory without
 *      coffer.conf is not a store, and init may reuse it if it is empty;
 *   5. then, best effort, the space reserve (reserve.h) is allocated.
 * On failure, init removes what it made in steps 1-4.
 *
 * The index key is in the store (meta), not in the key file, because
 * `coffer deliver` must find accounts and folders by name without secrets;
 * docs/security.md states what that implies.
 */
#include "store.h"

#include "errors.h"
#include "io.h"
#include "pool.h"
#include "record.h"
#include "reserve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct coffer_store {
	char *path;
	char *key_file;
	struct coffer_config cfg;
	struct coffer_index *ix;
	unsigned char store_id[COFFER_ID_BYTES];
	unsigned char index_key[COFFER_KEY_BYTES];
	struct coffer_keyfile *kf;
	uid_t owner_uid; /* who owns the store directory */
	gid_t owner_gid;
	struct coffer_pool_hints *pool_hints; /* NULL: out of memory, none kept */
};

const char *coffer_store_path(const struct coffer_store *st)
{
	return st->path;
}

const struct coffer_config *coffer_store_config(const struct coffer_store *st)
{
	return &st->cfg;
}

struct coffer_index *coffer_store_index(struct coffer_store *st)
{
	return st->ix;
}

struct coffer_pool_hints *coffer_store_pool_hints(struct coffer_store *st)
{
	return st->pool_hints;
}

const unsigned char *coffer_store_id(const struct coffer_store *st)
{
	return st->store_id;
}

const char *coffer_store_key_file_path(const struct coffer_store *st)
{
	return st->key_file;
}

static char *join(const char *a, const char *b)
{
	char *p;

	if (asprintf(&p, "%s/%s", a, b) < 0)
		return NULL;
	return p;
}

/* An absolute form of path whose directory exists (the file need not). */
static char *absolute(const char *path)
{
	char *dir, *base, *slash, *res = NULL, real[PATH_MAX];

	if (path[0] == '/')
		return strdup(path);
	dir = strdup(path);
	if (dir == NULL)
		return NULL;
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		base = slash + 1;
		if (realpath(dir, real) != NULL && asprintf(&res, "%s/%s", real, base) < 0)
			res = NULL;
	} else if (getcwd(real, sizeof real) != NULL && asprintf(&res, "%s/%s", real, dir) < 0) {
		res = NULL;
	}
	free(dir);
	return res;
}

struct meta_args {
	struct coffer_store *st;
	int create;
};

static int meta_txn(struct coffer_txn *t, void *arg)
{
	struct meta_args *a = arg;
	struct coffer_store *st = a->st;
	const void *v;
	size_t n;
	unsigned char fmt[4];
	int rc;

	if (a->create) {
		coffer_put_u32be(fmt, COFFER_STORE_FORMAT);
		rc = coffer_txn_put(t, COFFER_DB_META, "format", 6, fmt, 4, 0);
		if (rc == 0)
			rc = coffer_txn_put(t, COFFER_DB_META, "store_id", 8, st->store_id,
			                    COFFER_ID_BYTES, 0);
		if (rc == 0)
			rc = coffer_txn_put(t, COFFER_DB_META, "index_key", 9, st->index_key,
			                    COFFER_KEY_BYTES, 0);
		return rc;
	}
	rc = coffer_txn_get(t, COFFER_DB_META, "format", 6, &v, &n);
	if (rc < 0 || n != 4)
		return coffer_err_set(COFFER_ECORRUPT, "store %s: index has no format record",
		                      st->path);
	if (coffer_get_u32be(v) != COFFER_STORE_FORMAT)
		return coffer_err_set(COFFER_ECORRUPT,
		                      "store %s: format %u is not supported by this version (%u)",
		                      st->path, coffer_get_u32be(v), COFFER_STORE_FORMAT);
	rc = coffer_txn_get(t, COFFER_DB_META, "store_id", 8, &v, &n);
	if (rc < 0 || n != COFFER_ID_BYTES)
		return coffer_err_set(COFFER_ECORRUPT, "store %s: index has no store id", st->path);
	memcpy(st->store_id, v, COFFER_ID_BYTES);
	rc = coffer_txn_get(t, COFFER_DB_META, "index_key", 9, &v, &n);
	if (rc < 0 || n != COFFER_KEY_BYTES)
		return coffer_err_set(COFFER_ECORRUPT, "store %s: index has no index key",
		                      st->path);
	memcpy(st->index_key, v, COFFER_KEY_BYTES);
	return 0;
}

static int open_index(struct coffer_store *st, int create)
{
	struct meta_args a = { st, create };
	char *dir = join(st->path, "index");
	int rc;

	if (dir == NULL)
		return coffer_err_set(COFFER_ENOMEM, "store: out of memory");
	if (create && mkdir(dir, 0700) < 0) {
		rc = coffer_err_set(coffer_err_from_errno(errno),
		                    "store %s: cannot create index: %s", st->path, strerror(errno));
		free(dir);
		return rc;
	}
	rc = coffer_index_open(dir, st->cfg.index_map_size, create, &st->ix);
	free(dir);
	if (rc < 0)
		return coffer_err_prefix(rc, "store %s: ", st->path);
	return create ? coffer_index_update(st->ix, meta_txn, &a)
	              : coffer_index_view(st->ix, meta_txn, &a);
}

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

static void store_free(struct coffer_store *st)
{
	coffer_index_close(&st->ix);
	coffer_pool_hints_free(&st->pool_hints);
	coffer_keyfile_free(&st->kf);
	coffer_config_free(&st->cfg);
	coffer_wipe(st->index_key, sizeof st->index_key);
	free(st->path);
	free(st->key_file);
	free(st);
}

void coffer_store_close(struct coffer_store **stp)
{
	if (stp == NULL || *stp == NULL)
		return;
	store_free(*stp);
	*stp = NULL;
}

/* Removes what a failed init made: the tree under path (only the entries
 * init creates) and the key file. */
static void init_cleanup(const char *path, int made_dir, const char *key_file)
{
	static const char *const files[] = { "coffer.conf", "index/data.mdb", "index/lock.mdb" };
	static const char *const dirs[] = { "index", "blobs", "locks" };
	char *p;

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		if ((p = join(path, files[i])) != NULL) {
			unlink(p);
			free(p);
		}
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if ((p = join(path, dirs[i])) != NULL) {
			rmdir(p);
			free(p);
		}
	if (made_dir)
		rmdir(path);
	if (key_file)
		unlink(key_file);
}

/* restore: NULL for a new store; otherwise the identity to recreate, with
 * an existing key file at key_file. */
struct init_identity {
	const unsigned char *store_id;
	const unsigned char *index_key;
};

static int store_init(const char *path, const char *key_file, const struct init_identity *restore,
                      struct coffer_store **st_r)
{
	struct coffer_store *st;
	struct coffer_keyfile *kf = NULL;
	struct stat sb;
	char *conf = NULL, *sub = NULL, *kdir = NULL, *slash;
	int rc, made_dir = 0, made_key = 0, entered = 0;

	*st_r = NULL;
	st = calloc(1, sizeof *st);
	if (st == NULL)
		return coffer_err_set(COFFER_ENOMEM, "store: out of memory");
	st->pool_hints = coffer_pool_hints_new();
	coffer_config_defaults(&st->cfg);
	st->path = strdup(path);
	if (st->path == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "store: out of memory");
		goto fail;
	}
	if (stat(path, &sb) == 0 && !(S_ISDIR(sb.st_mode) && dir_is_empty(path))) {
		rc = coffer_err_set(
		    COFFER_EEXIST,
		    "store %s already exists and is not empty; refusing to overwrite it", path);
		goto fail;
	}
	/* The key file: its directory (0700) first, then the file itself. */
	kdir = strdup(key_file ? key_file : COFFER_DEFAULT_KEY_FILE);
	if (kdir == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "store: out of memory");
		goto fail;
	}
	slash = strrchr(kdir, '/');
	if (slash && slash != kdir) {
		*slash = '\0';
		rc = coffer_io_mkdir_p(kdir, 0700);
		if (rc < 0)
			goto fail;
	}
	st->key_file = absolute(key_file ? key_file : COFFER_DEFAULT_KEY_FILE);
	if (st->key_file == NULL) {
		rc = coffer_err_set(COFFER_ENOTFOUND,
		                    "key file %s: its directory cannot be resolved",
		                    key_file ? key_file : COFFER_DEFAULT_KEY_FILE);
		goto fail;
	}
	if (restore) {
		memcpy(st->store_id, restore->store_id, sizeof st->store_id);
		memcpy(st->index_key, restore->index_key, sizeof st->index_key);
		rc = coffer_store_keyfile(st, &kf);
		kf = NULL; /* owned by st */
		if (rc < 0)
			goto fail;
	} else {
		coffer_random(st->store_id, sizeof st->store_id);
		coffer_random(st->index_key, sizeof st->index_key);
		rc = coffer_keyfile_generate(st->store_id, &kf);
		if (rc < 0)
			goto fail;
		rc = coffer_keyfile_create(st->key_file, kf);
		if (rc < 0)
			goto fail;
		made_key = 1;
		st->kf = kf;
		kf = NULL;
	}

	/* From here on the store directory is ours (new, or empty): a failure
	 * may remove what init put in it, and nothing else. */
	entered = 1;
	if (mkdir(path, 0700) == 0) {
		made_dir = 1;
	} else if (errno != EEXIST) {
		rc = coffer_err_set(coffer_err_from_errno(errno), "store %s: cannot create: %s",
		                    path, strerror(errno));
		goto fail;
	} else if (chmod(path, 0700) < 0) {
		rc = coffer_err_set(coffer_err_from_errno(errno), "store %s: chmod: %s", path,
		                    strerror(errno));
		goto fail;
	}
	if (stat(path, &sb) == 0) {
		st->owner_uid = sb.st_uid;
		st->owner_gid = sb.st_gid;
	}
	for (const char *const *d = (const char *const[]){ "blobs", "locks", NULL }; *d; d++) {
		sub = join(path, *d);
		if (sub == NULL || mkdir(sub, 0700) < 0) {
			rc = coffer_err_set(sub ? coffer_err_from_errno(errno) : COFFER_ENOMEM,
			                    "store %s: cannot create %s", path, *d);
			goto fail;
		}
		free(sub);
		sub = NULL;
	}
	rc = open_index(st, 1);
	if (rc < 0)
		goto fail;
	st->cfg.key_file = strdup(st->key_file);
	conf = join(path, "coffer.conf");
	if (st->cfg.key_file == NULL || conf == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "store: out of memory");
		goto fail;
	}
	rc = coffer_config_save(&st->cfg, conf);
	if (rc == 0)
		rc = coffer_io_fsync_dir(path);
	if (rc < 0)
		goto fail;
	/* best effort: a store on a disk too small for it keeps none */
	if (coffer_reserve_fill(st, 0) < 0)
		coffer_err_clear();
	free(conf);
	free(kdir);
	*st_r = st;
	return 0;
fail:
	coffer_index_close(&st->ix);
	if (entered)
		init_cleanup(path, made_dir, made_key ? st->key_file : NULL);
	else if (made_key)
		unlink(st->key_file);
	coffer_keyfile_free(&kf);
	free(conf);
	free(sub);
	free(kdir);
	store_free(st);
	return rc;
}

int coffer_store_init(const char *path, const char *key_file, struct coffer_store **st_r)
{
	return store_init(path, key_file, NULL, st_r);
}

int coffer_store_init_restore(const char *path, const char *key_file,
                              const unsigned char store_id[COFFER_ID_BYTES],
                              const unsigned char index_key[COFFER_KEY_BYTES],
                              struct coffer_store **st_r)
{
	struct init_identity id = { store_id, index_key };

	return store_init(path, key_file, &id, st_r);
}

int coffer_store_open(const char *path, const char *key_file, struct coffer_store **st_r)
{
	struct coffer_store *st;
	struct stat sb;
	char *conf = NULL;
	int rc;

	*st_r = NULL;
	if (stat(path, &sb) < 0) {
		if (errno == ENOENT)
			return coffer_err_set(
			    COFFER_ENOTFOUND,
			    "store %s does not exist (create it with coffer init)", path);
		return coffer_err_set(coffer_err_from_errno(errno), "store %s: %s", path,
		                      strerror(errno));
	}
	if (!S_ISDIR(sb.st_mode))
		return coffer_err_set(COFFER_ENOTFOUND, "store %s is not a directory", path);
	if (sb.st_mode & 077)
		return coffer_err_set(
		    COFFER_EPERM,
		    "store %s is open to group or others (mode %04o); run chmod 700 on it", path,
		    (unsigned)(sb.st_mode & 07777));
	st = calloc(1, sizeof *st);
	if (st == NULL)
		return coffer_err_set(COFFER_ENOMEM, "store: out of memory");
	st->pool_hints = coffer_pool_hints_new();
	st->owner_uid = sb.st_uid;
	st->owner_gid = sb.st_gid;
	coffer_config_defaults(&st->cfg);
	st->path = strdup(path);
	conf = join(path, "coffer.conf");
	if (st->path == NULL || conf == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "store: out of memory");
		goto fail;
	}
	rc = coffer_config_load(&st->cfg, conf);
	if (rc == COFFER_ENOTFOUND)
		rc = coffer_err_set(COFFER_ENOTFOUND,
		                    "store %s: no coffer.conf; not a Coffer store", path);
	if (rc < 0)
		goto fail;
	key_file = key_file           ? key_file
	           : st->cfg.key_file ? st->cfg.key_file
	                              : COFFER_DEFAULT_KEY_FILE;
	st->key_file = strdup(key_file);
	if (st->key_file == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "store: out of memory");
		goto fail;
	}
	rc = open_index(st, 0);
	if (rc < 0)
		goto fail;
	free(conf);
	*st_r = st;
	return 0;
fail:
	free(conf);
	store_free(st);
	return rc;
}

int coffer_store_keyfile(struct coffer_store *st, struct coffer_keyfile **kf_r)
{
	int rc;

	if (st->kf == NULL) {
		rc = coffer_keyfile_load(st->key_file, &st->kf);
		if (rc < 0)
			return rc;
		if (!coffer_ct_equal(coffer_keyfile_store_id(st->kf), st->store_id,
		                     COFFER_ID_BYTES)) {
			coffer_keyfile_free(&st->kf);
			return coffer_err_set(COFFER_EPERM, "key file %s belongs to another store",
			                      st->key_file);
		}
	}
	*kf_r = st->kf;
	return 0;
}

int coffer_store_name_mac(const struct coffer_store *st, const char *label, const void *a,
                          size_t alen, const void *b, size_t blen,
                          unsigned char out[COFFER_MAC_BYTES])
{
	struct coffer_buf m = COFFER_BUF_INIT;
	int rc;

	/* label, then a length-prefixed a, then b: unambiguous concatenation. */
	coffer_buf_puts(&m, label);
	coffer_buf_put_u32le(&m, (uint32_t)alen);
	coffer_buf_append(&m, a, alen);
	rc = coffer_buf_ok(&m);
	if (rc == 0)
		rc = coffer_crypto_hash_keyed(out, COFFER_MAC_BYTES, st->index_key, m.data, m.len,
		                              b, blen);
	coffer_buf_free(&m);
	return rc;
}

void coffer_store_adopt(const struct coffer_store *st, int fd, const char *path)
{
	if (geteuid() != 0 || st->owner_uid == 0)
		return;
	/* best effort: a failure here shows later as EACCES, with the path */
	if (fd >= 0) {
		if (fchown(fd, st->owner_uid, st->owner_gid) < 0)
			return;
	} else if (path && lchown(path, st->owner_uid, st->owner_gid) < 0) {
		return;
	}
}

int coffer_store_lock(struct coffer_store *st, const char *name, int op, int *fd_r)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	int fd, err;

	if (coffer_buf_printf(&path, "%s/locks/%s.lock", st->path, name) < 0)
		return coffer_err_set(COFFER_ENOMEM, "store: out of memory");
	fd = open(coffer_buf_str(&path), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	err = errno;
	coffer_buf_free(&path);
	if (fd < 0)
		return coffer_err_set(coffer_err_from_errno(err),
		                      "store: cannot open the %s lock: %s", name, strerror(err));
	coffer_store_adopt(st, fd, NULL);
	while (flock(fd, op) < 0) {
		err = errno;
		if (err == EINTR)
			continue;
		close(fd);
		if (err == EWOULDBLOCK)
			return COFFER_ETEMP;
		return coffer_err_set(coffer_err_from_errno(err),
		                      "store: cannot take the %s lock: %s", name, strerror(err));
	}
	*fd_r = fd;
	return 0;
}

/* mkdir that tolerates an existing directory; a new one is adopted and, with
 * durable, made durable by fsyncing its parent. */
static int blob_mkdir(const struct coffer_store *st, const char *path, int durable)
{
	char *parent;
	int rc;

	if (mkdir(path, 0700) < 0) {
		if (errno == EEXIST)
			return 0;
		return coffer_err_set(coffer_err_from_errno(errno), "store: cannot create %s: %s",
		                      path, strerror(errno));
	}
	coffer_store_adopt(st, -1, path);
	if (!durable)
		return 0;
	parent = strdup(path);
	if (parent == NULL)
		return coffer_err_set(COFFER_ENOMEM, "store: out of memory");
	*strrchr(parent, '/') = '\0';
	rc = coffer_io_fsync_dir(parent);
	free(parent);
	return rc;
}

int coffer_store_blob_create(struct coffer_store *st, const unsigned char *acct,
                             const unsigned char *blob_id, int durable, int *fd_r,
                             struct coffer_buf *path_r)
{
	struct coffer_buf dir = COFFER_BUF_INIT;
	int fd, rc;

	*fd_r = -1;
	rc = coffer_store_blob_path(st, acct, blob_id, path_r);
	if (rc < 0)
		return rc;
	/* the common case first: the directories exist */
	fd = open(coffer_buf_str(path_r), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == ENOENT) {
		rc = coffer_store_account_dir(st, acct, &dir);
		if (rc == 0)
			rc = blob_mkdir(st, coffer_buf_str(&dir), durable);
		if (rc == 0)
			rc = coffer_store_blob_dir(st, acct, blob_id, &dir);
		if (rc == 0)
			rc = blob_mkdir(st, coffer_buf_str(&dir), durable);
		coffer_buf_free(&dir);
		if (rc < 0)
			return rc;
		fd = open(coffer_buf_str(path_r),
		          O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (fd < 0)
		return coffer_err_set(coffer_err_from_errno(errno),
		                      "store: cannot create a blob: %s", strerror(errno));
	coffer_store_adopt(st, fd, NULL);
	*fd_r = fd;
	return 0;
}

int coffer_store_mail_blob_create(struct coffer_store *st, const unsigned char *acct,
                                  const unsigned char *blob_id, int durable, uint64_t bytes,
                                  int *fd_r, struct coffer_buf *path_r)
{
	int rc = coffer_reserve_check(st, bytes);

	*fd_r = -1;
	return rc < 0 ? rc : coffer_store_blob_create(st, acct, blob_id, durable, fd_r, path_r);
}

int coffer_store_account_dir(const struct coffer_store *st, const unsigned char *acct,
                             struct coffer_buf *out)
{
	char hex[2 * COFFER_ID_BYTES + 1];

	coffer_hex(hex, acct, COFFER_ID_BYTES);
	coffer_buf_reset(out);
	coffer_buf_printf(out, "%s/blobs/%s", st->path, hex);
	return coffer_buf_ok(out);
}

int coffer_store_blob_dir(const struct coffer_store *st, const unsigned char *acct,
                          const unsigned char *blob_id, struct coffer_buf *out)
{
	char hex[2 * COFFER_ID_BYTES + 1];

	coffer_store_account_dir(st, acct, out);
	coffer_hex(hex, blob_id, COFFER_ID_BYTES);
	coffer_buf_printf(out, "/%.2s", hex);
	return coffer_buf_ok(out);
}

int coffer_store_blob_path(const struct coffer_store *st, const unsigned char *acct,
                           const unsigned char *blob_id, struct coffer_buf *out)
{
	char hex[2 * COFFER_ID_BYTES + 1];

	coffer_store_blob_dir(st, acct, blob_id, out);
	coffer_hex(hex, blob_id, COFFER_ID_BYTES);
	coffer_buf_printf(out, "/%s", hex);
	return coffer_buf_ok(out);
}

void coffer_store_blob_discard(const struct coffer_store *st, const unsigned char *acct,
                               const unsigned char *blob_id)
{
	struct coffer_buf path = COFFER_BUF_INIT;

	if (coffer_store_blob_path(st, acct, blob_id, &path) == 0)
		unlink(coffer_buf_str(&path));
	coffer_buf_free(&path);
}
