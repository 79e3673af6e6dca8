/*
 * mount-ll.c: the mount's inodes, on libfuse's low-level API, under the
 * path-based operations of mount-ops.c.
 *
 * Why not libfuse's high-level API: it gives a file no identity but its
 * path, so it must be told of every open() to keep a file that is unlinked
 * while open (it renames it to a hidden name until the last close). Every
 * open(2) was then a round trip to the daemon, which made a warm read of a
 * message three times an ext4 read. Here the daemon knows the kernel's
 * inodes instead, and answers OPEN and FLUSH with ENOSYS: the kernel stops
 * sending them (no_open, no_flush) and keeps each file's page cache across
 * opens. Messages never change; control files change only through the
 * kernel, which updates its cache as they are written, or are invalidated
 * by the daemon (mount.c). Listings are READDIRPLUS, every entry with its
 * attributes and counted as a lookup (ll_readdirplus): the kernel marks a
 * file's atime stale after each READ, and Dovecot lists cur/ before it
 * reads, so a listing spares a GETATTR (or a LOOKUP) per message.
 *
 * The table: one node per name the kernel has looked up (ino, parent,
 * name, lookup count), found by ino and by (parent, name). Each request
 * builds the node's path and calls the operation of mount-ops.c, as
 * libfuse's high-level layer did. Invariants:
 *   - a node's name changes only after the operation that renamed or
 *     removed it returned; a request that raced with such an operation and
 *     got ENOENT for a node the kernel still holds waits for it to finish,
 *     then retries with the new path (busy, gen). A request for a name in
 *     a directory (lookup, create) waits only for renames of directories:
 *     a new name is ENOENT in the common case, and must not queue behind
 *     every delivery's rename;
 *   - a request acts on the file its path was built for, never on one a
 *     concurrent rename put under that path: renames mark the names they
 *     move (by bucket) before they change the tree, and each operation
 *     checks, once it holds the tree lock, that the names its path depends
 *     on were not moved since; a lookup checks again when it binds the
 *     name to a node (struct ll_ctx);
 *   - a file the kernel may still hold (lookup count > 0) is not removed
 *     when it is unlinked or renamed over: it is renamed to a hidden name
 *     (".fuse_hidden<16 hex>", served by mount-hidden.c) and removed when
 *     the kernel forgets it. With no_open the daemon cannot tell whether it
 *     is open; a file that is not is forgotten by the kernel right away;
 *   - a node the kernel forgot keeps its number for REMEMBER_NS while its
 *     name lives (Dovecot compares inode numbers of paths it stat()s);
 *   - the mount keeps default_permissions (mount.c): with no_open, pages the
 *     kernel cached are read without asking the daemon, so only the kernel
 *     can keep other users out of them.
 *
 * Locks: ll->lock (the table) is held only for table work, never across an
 * operation; the operations take the daemon's tree lock themselves.
 * Crash safety: the table is memory only; the kernel's inodes die with the
 * connection.
 */
#define FUSE_USE_VERSION 35
#include "mount-private.h"

#include "engine/buf.h"
#include "engine/clock.h"

#include <errno.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define LL_HASH 65536u
#define LL_NB 1024u /* name buckets: renames in progress, by name */
#define REMEMBER_NS (60 * (int64_t)COFFER_NS_PER_SEC)
#define RETRIES 3
#define STALE_RETRIES 1000
#define FUSE_NAME_MAX 1024 /* the kernel's limit on a name in a listing */

struct node {
	struct node *ihash, *nhash; /* chains by ino and by (parent, name) */
	struct node *lprev, *lnext; /* forgotten, oldest first */
	struct node *parent;        /* holds a count (ref) while named */
	char *name;                 /* NULL once removed */
	fuse_ino_t ino;
	uint64_t nlookup;
	uint64_t ref; /* named children */
	int64_t forgot_at;
	int isdir, hidden;
};

struct mnt_ll {
	pthread_mutex_t lock;
	pthread_cond_t quiet;
	struct node *byino[LL_HASH], *byname[LL_HASH];
	struct node *lru_head, *lru_tail;
	struct node root;
	fuse_ino_t next_ino;
	uint64_t hidden_ctr;
	/* renames and removals in progress, and bumped as each finishes:
	 * [0] all, [1] those of directories */
	unsigned busy[2];
	uint64_t gen[2];
	/* the same by the bucket of each name they take or give (the source's
	 * and the target's (parent, name)): marked before the operation
	 * changes the tree, bumped after the table follows (see ll_ctx) */
	unsigned moving[LL_NB];
	uint64_t moved[LL_NB];
	double entry_timeout, attr_timeout, negative_timeout;
};

static unsigned ino_hash(fuse_ino_t ino)
{
	return (unsigned)(ino * 0x9E3779B97F4A7C15ull >> 48) & (LL_HASH - 1);
}

static unsigned name_hash(fuse_ino_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (unsigned)(h >> 32) & (LL_HASH - 1);
}

static struct mnt_ll *LL(void)
{
	return coffer_mnt->ll;
}

/* ---- the table, under ll->lock ---- */

static struct node *find_ino(struct mnt_ll *ll, fuse_ino_t ino)
{
	struct node *n;

	if (ino == FUSE_ROOT_ID)
		return &ll->root;
	for (n = ll->byino[ino_hash(ino)]; n; n = n->ihash)
		if (n->ino == ino)
			return n;
	return NULL;
}

static struct node *find_name(struct mnt_ll *ll, struct node *parent, const char *name)
{
	for (struct node *n = ll->byname[name_hash(parent->ino, name)]; n; n = n->nhash)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

static void lru_del(struct mnt_ll *ll, struct node *n)
{
	if (n->forgot_at == 0)
		return;
	if (n->lprev)
		n->lprev->lnext = n->lnext;
	else
		ll->lru_head = n->lnext;
	if (n->lnext)
		n->lnext->lprev = n->lprev;
	else
		ll->lru_tail = n->lprev;
	n->lprev = n->lnext = NULL;
	n->forgot_at = 0;
}

static void node_free(struct mnt_ll *ll, struct node *n);

/* Takes n's name away (it keeps its number while the kernel holds it). */
static void unname(struct mnt_ll *ll, struct node *n)
{
	struct node **pp;
	struct node *parent = n->parent;

	if (n->name == NULL)
		return;
	for (pp = &ll->byname[name_hash(parent->ino, n->name)]; *pp != n; pp = &(*pp)->nhash)
		;
	*pp = n->nhash;
	n->nhash = NULL;
	free(n->name);
	n->name = NULL;
	n->parent = NULL;
	if (--parent->ref == 0 && parent->nlookup == 0 && parent != &ll->root)
		node_free(ll, parent);
}

static void node_free(struct mnt_ll *ll, struct node *n)
{
	struct node **pp;

	lru_del(ll, n);
	unname(ll, n);
	for (pp = &ll->byino[ino_hash(n->ino)]; *pp != n; pp = &(*pp)->ihash)
		;
	*pp = n->ihash;
	free(n);
}

/* Frees n if nothing names or holds it. */
static void maybe_free(struct mnt_ll *ll, struct node *n)
{
	if (n->name == NULL && n->nlookup == 0 && n->ref == 0)
		node_free(ll, n);
}

static int setname(struct mnt_ll *ll, struct node *n, struct node *parent, const char *name)
{
	char *copy = strdup(name);
	unsigned h;

	if (copy == NULL)
		return -ENOMEM;
	parent->ref++;
	unname(ll, n);
	h = name_hash(parent->ino, name);
	n->name = copy;
	n->parent = parent;
	n->nhash = ll->byname[h];
	ll->byname[h] = n;
	return 0;
}

/* The node named name in parent, made if need be, with one lookup more. */
static struct node *node_get(struct mnt_ll *ll, struct node *parent, const char *name, int isdir)
{
	struct node *n = find_name(ll, parent, name);

	if (n == NULL) {
		n = calloc(1, sizeof *n);
		if (n == NULL)
			return NULL;
		n->ino = ++ll->next_ino;
		if (setname(ll, n, parent, name) < 0) {
			free(n);
			return NULL;
		}
		n->ihash = ll->byino[ino_hash(n->ino)];
		ll->byino[ino_hash(n->ino)] = n;
	}
	lru_del(ll, n);
	n->isdir = isdir;
	n->nlookup++;
	return n;
}

/* n's path ("/a/b"), or -ENOENT once its name is gone. */
static int node_path(struct node *n, const char *name, struct coffer_buf *out)
{
	const char *parts[64];
	int k = 0;

	coffer_buf_reset(out);
	if (name)
		parts[k++] = name;
	for (; n->ino != FUSE_ROOT_ID; n = n->parent) {
		if (n->name == NULL || k == 64)
			return -ENOENT;
		parts[k++] = n->name;
	}
	if (k == 0)
		coffer_buf_puts(out, "/");
	while (k-- > 0) {
		coffer_buf_puts(out, "/");
		coffer_buf_puts(out, parts[k]);
	}
	return coffer_buf_ok(out) < 0 ? -ENOMEM : 0;
}

/*
 * What a request's path was built from, so that the operation can tell
 * whether the path still names the same file when it runs. A path is
 * built under ll->lock and used later, under the tree lock; a rename that
 * runs in between (the tree changed, the table not yet, or both) can make
 * the old path name another file: Dovecot rotates a log by renaming a new
 * one over the open old one, and an fstat() of the old one answered with
 * the new one's size. The buckets of the names the request depends on (the
 * node's own name, or the child name it makes or looks up) and the
 * directory generation are recorded; the operation checks them under the
 * tree lock (mnt_ll_stale) before it acts, and a lookup checks them again
 * when it binds the name to a node. A rename marks its buckets before it
 * changes the tree, which it can only do under the tree lock, so a request
 * that finds its buckets unmarked and unchanged there acts on the file its
 * path was built for.
 */
struct ll_ctx {
	int nb; /* buckets recorded: 0 to 2 */
	unsigned b[2];
	uint64_t moved[2];
	uint64_t dgen; /* gen[1] */
	uint64_t gen;  /* gen[name != NULL], for names_moved */
};

static __thread struct ll_ctx *tl_ctx; /* the request this thread serves */

static unsigned name_bucket(fuse_ino_t parent, const char *name)
{
	return name_hash(parent, name) & (LL_NB - 1);
}

/* Under ll->lock: records the bucket of n's name (or of child name). */
static void ctx_add(struct mnt_ll *ll, struct ll_ctx *c, struct node *n, const char *name)
{
	unsigned b;

	if (name)
		b = name_bucket(n->ino, name);
	else if (n != &ll->root && n->name && n->parent)
		b = name_bucket(n->parent->ino, n->name);
	else
		return;
	c->b[c->nb] = b;
	c->moved[c->nb++] = ll->moved[b];
}

/* Under ll->lock: 1 if a rename or removal that may change what c's path
 * names runs now or ran since it was built. */
static int ctx_stale_locked(struct mnt_ll *ll, const struct ll_ctx *c)
{
	if (ll->busy[1] || ll->gen[1] != c->dgen)
		return 1;
	for (int i = 0; i < c->nb; i++)
		if (ll->moving[c->b[i]] || ll->moved[c->b[i]] != c->moved[i])
			return 1;
	return 0;
}

int mnt_ll_stale(struct mnt *m)
{
	struct mnt_ll *ll = m->ll;
	int stale;

	if (tl_ctx == NULL || ll == NULL)
		return 0;
	pthread_mutex_lock(&ll->lock);
	stale = ctx_stale_locked(ll, tl_ctx);
	pthread_mutex_unlock(&ll->lock);
	return stale;
}

/* Waits until no rename or removal that c depends on is in progress. */
static void ctx_settle(const struct ll_ctx *c)
{
	struct mnt_ll *ll = LL();

	pthread_mutex_lock(&ll->lock);
	for (;;) {
		int busy = ll->busy[1] != 0;

		for (int i = 0; i < c->nb; i++)
			busy |= ll->moving[c->b[i]] != 0;
		if (!busy)
			break;
		pthread_cond_wait(&ll->quiet, &ll->lock);
	}
	pthread_mutex_unlock(&ll->lock);
}

/* Path of ino (and child name, if not NULL); c (may be NULL) records what
 * it was built from. */
static int path_of(fuse_ino_t ino, const char *name, struct coffer_buf *out, struct ll_ctx *c)
{
	struct mnt_ll *ll = LL();
	struct node *n;
	int rc;

	pthread_mutex_lock(&ll->lock);
	n = find_ino(ll, ino);
	rc = n ? node_path(n, name, out) : -ENOENT;
	if (c) {
		c->nb = 0;
		c->dgen = ll->gen[1];
		c->gen = ll->gen[name != NULL];
		if (n)
			ctx_add(ll, c, n, name);
	}
	pthread_mutex_unlock(&ll->lock);
	return rc;
}

/* After ENOENT for a path built at generation gen of kind k: 1 if a
 * rename or removal of that kind ran since or runs now (waited for), so
 * that a new path may do. */
static int names_moved(uint64_t gen, int k)
{
	struct mnt_ll *ll = LL();
	int moved;

	pthread_mutex_lock(&ll->lock);
	while (ll->busy[k] && ll->gen[k] == gen)
		pthread_cond_wait(&ll->quiet, &ll->lock);
	moved = ll->gen[k] != gen;
	pthread_mutex_unlock(&ll->lock);
	return moved;
}

/* A rename or removal of the names in buckets b1 and b2 (UINT_MAX: none)
 * begins, before it changes the tree. */
static void names_begin(int dir, unsigned b1, unsigned b2)
{
	struct mnt_ll *ll = LL();

	pthread_mutex_lock(&ll->lock);
	ll->busy[0]++;
	ll->busy[1] += dir != 0;
	if (b1 != UINT_MAX)
		ll->moving[b1]++;
	if (b2 != UINT_MAX)
		ll->moving[b2]++;
	pthread_mutex_unlock(&ll->lock);
}

/* ends what names_begin(dir, b1, b2) began; under ll->lock, after the
 * table follows the tree */
static void names_end_locked(struct mnt_ll *ll, int dir, unsigned b1, unsigned b2)
{
	ll->busy[0]--;
	ll->gen[0]++;
	if (dir) {
		ll->busy[1]--;
		ll->gen[1]++;
	}
	if (b1 != UINT_MAX) {
		ll->moving[b1]--;
		ll->moved[b1]++;
	}
	if (b2 != UINT_MAX) {
		ll->moving[b2]--;
		ll->moved[b2]++;
	}
	pthread_cond_broadcast(&ll->quiet);
}

/* ---- requests on a node's path, retried across a concurrent rename ---- */

#define OPS (mnt_ops())

/* Runs call (an expression using `path`) on ino's path; rc is its result.
 * The operation answers MNT_RETRY when a rename made the path stale
 * (mnt_ll_stale): it is built again once that rename is over. ctx is what
 * the last path was built from. */
#define ON_PATH_CTX(ino, name, rc, ctx, call)                              \
	do {                                                               \
		struct coffer_buf pb_ = COFFER_BUF_INIT;                   \
		for (int try_ = 0, stale_ = 0;; try_++) {                  \
			const char *path;                                  \
			rc = path_of((ino), (name), &pb_, (ctx));          \
			if (rc < 0)                                        \
				break;                                     \
			path = coffer_buf_str(&pb_);                       \
			tl_ctx = (ctx);                                    \
			rc = (call);                                       \
			tl_ctx = NULL;                                     \
			if (rc == MNT_RETRY && ++stale_ < STALE_RETRIES) { \
				ctx_settle(ctx);                           \
				try_--;                                    \
				continue;                                  \
			}                                                  \
			if (rc == MNT_RETRY)                               \
				rc = -EAGAIN;                              \
			if (rc != -ENOENT || try_ == RETRIES ||            \
			    !names_moved((ctx)->gen, (name) != NULL))      \
				break;                                     \
		}                                                          \
		coffer_buf_free(&pb_);                                     \
	} while (0)
#define ON_PATH(ino, name, rc, call)                   \
	do {                                           \
		struct ll_ctx c_;                      \
		ON_PATH_CTX(ino, name, rc, &c_, call); \
	} while (0)

/* The same, once: for renames and removals, which must not wait for
 * themselves. */
#define ON_PATH_ONCE(ino, name, rc, call)                        \
	do {                                                     \
		struct coffer_buf pb_ = COFFER_BUF_INIT;         \
		rc = path_of((ino), (name), &pb_, NULL);         \
		if (rc == 0) {                                   \
			const char *path = coffer_buf_str(&pb_); \
			rc = (call);                             \
		}                                                \
		coffer_buf_free(&pb_);                           \
	} while (0)

/* The inode number, and no link for a file that lives on only hidden. */
static void set_attr_ino(struct stat *st, fuse_ino_t ino)
{
	struct mnt_ll *ll = LL();
	struct node *n;

	st->st_ino = ino;
	pthread_mutex_lock(&ll->lock);
	n = find_ino(ll, ino);
	if (n && n->hidden && st->st_nlink > 0)
		st->st_nlink--;
	pthread_mutex_unlock(&ll->lock);
}

static void forget_unseen(struct mnt_ll *ll, fuse_ino_t ino);

/* The entry of name in parent, counted as one lookup of its node: 0, or
 * -errno (-ENOENT: no such name). */
static int entry_get(fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	struct mnt_ll *ll = LL();
	struct ll_ctx c;
	struct node *p, *n;
	int rc;

	for (int stale = 0;; stale++) {
		memset(e, 0, sizeof *e);
		ON_PATH_CTX(parent, name, rc, &c, OPS->getattr(path, &e->attr, NULL));
		if (rc < 0)
			return rc;
		pthread_mutex_lock(&ll->lock);
		/* the attributes are of the file the name had under the tree
		 * lock: a rename since may have given the name (and its node)
		 * to another (ll_ctx) */
		if (stale < STALE_RETRIES && ctx_stale_locked(ll, &c)) {
			pthread_mutex_unlock(&ll->lock);
			ctx_settle(&c);
			continue;
		}
		p = find_ino(ll, parent);
		n = p && (p == &ll->root || p->name)
		        ? node_get(ll, p, name, S_ISDIR(e->attr.st_mode))
		        : NULL;
		if (n) { /* set_attr_ino()'s work, under this lock */
			e->ino = e->attr.st_ino = n->ino;
			if (n->hidden && e->attr.st_nlink > 0)
				e->attr.st_nlink--;
		}
		pthread_mutex_unlock(&ll->lock);
		break;
	}
	if (n == NULL)
		return p ? -ENOMEM : -ENOENT;
	e->attr_timeout = ll->attr_timeout;
	e->entry_timeout = ll->entry_timeout;
	return 0;
}

static int reply_entry_for(fuse_req_t req, fuse_ino_t parent, const char *name, int negative_ok)
{
	struct fuse_entry_param e;
	int rc = entry_get(parent, name, &e);

	if (rc == -ENOENT && negative_ok) {
		memset(&e, 0, sizeof e);
		e.entry_timeout = LL()->negative_timeout;
		return fuse_reply_entry(req, &e);
	}
	if (rc < 0)
		return fuse_reply_err(req, -rc);
	rc = fuse_reply_entry(req, &e);
	if (rc == -ENOENT) /* the caller was interrupted: the kernel never saw it */
		forget_unseen(LL(), e.ino);
	return rc;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_entry_for(req, parent, name, 1);
}

/* The last forget of a node: a hidden one's name is removed, a removed
 * one is freed, a named one is remembered for a while. */
static void forget_one(struct mnt_ll *ll, fuse_ino_t ino, uint64_t count,
                       struct coffer_buf *unlink_path)
{
	struct node *n = find_ino(ll, ino);

	if (n == NULL || n == &ll->root)
		return;
	if (n->nlookup == 0)
		return; /* already forgotten: the kernel never sends more */
	n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
	if (n->nlookup)
		return;
	if (n->hidden) {
		if (unlink_path && node_path(n, NULL, unlink_path) < 0)
			coffer_buf_reset(unlink_path);
		node_free(ll, n);
	} else if (n->name == NULL) {
		node_free(ll, n);
	} else if (n->ref == 0) { /* else its named children keep it */
		n->forgot_at = mnt_now();
		n->lprev = ll->lru_tail;
		if (ll->lru_tail)
			ll->lru_tail->lnext = n;
		else
			ll->lru_head = n;
		ll->lru_tail = n;
	}
}

/* One lookup the kernel never got (its reply failed): not hidden yet. */
static void forget_unseen(struct mnt_ll *ll, fuse_ino_t ino)
{
	pthread_mutex_lock(&ll->lock);
	forget_one(ll, ino, 1, NULL);
	pthread_mutex_unlock(&ll->lock);
}

static void forget_hidden(struct coffer_buf *path)
{
	if (path->len) {
		int rc = OPS->unlink(coffer_buf_str(path));

		if (rc < 0)
			mnt_log("forget", coffer_buf_str(path), rc);
	}
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct mnt_ll *ll = LL();
	struct coffer_buf path = COFFER_BUF_INIT;

	pthread_mutex_lock(&ll->lock);
	forget_one(ll, ino, nlookup, &path);
	pthread_mutex_unlock(&ll->lock);
	forget_hidden(&path);
	coffer_buf_free(&path);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct mnt_ll *ll = LL();
	struct coffer_buf path = COFFER_BUF_INIT;

	for (size_t i = 0; i < count; i++) {
		pthread_mutex_lock(&ll->lock);
		forget_one(ll, forgets[i].ino, forgets[i].nlookup, &path);
		pthread_mutex_unlock(&ll->lock);
		forget_hidden(&path);
		coffer_buf_reset(&path);
	}
	coffer_buf_free(&path);
	fuse_reply_none(req);
}

void mnt_ll_sweep(struct mnt *m)
{
	struct mnt_ll *ll = m->ll;
	int64_t now = mnt_now();

	if (ll == NULL)
		return;
	pthread_mutex_lock(&ll->lock);
	while (ll->lru_head && now - ll->lru_head->forgot_at > REMEMBER_NS) {
		struct node *n = ll->lru_head;

		lru_del(ll, n);
		if (n->ref == 0)
			node_free(ll, n);
	}
	pthread_mutex_unlock(&ll->lock);
}

static void reply_attr(fuse_req_t req, fuse_ino_t ino, struct stat *st, int rc)
{
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	set_attr_ino(st, ino);
	fuse_reply_attr(req, st, LL()->attr_timeout);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int rc;

	(void)fi;
	memset(&st, 0, sizeof st);
	ON_PATH(ino, NULL, rc, OPS->getattr(path, &st, NULL));
	reply_attr(req, ino, &st, rc);
}

static int do_setattr(const char *path, struct stat *a, int to_set)
{
	int rc = 0;

	if (to_set & FUSE_SET_ATTR_MODE)
		rc = OPS->chmod(path, a->st_mode, NULL);
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = OPS->chown(path, (to_set & FUSE_SET_ATTR_UID) ? a->st_uid : (uid_t)-1,
		                (to_set & FUSE_SET_ATTR_GID) ? a->st_gid : (gid_t)-1, NULL);
	if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE))
		rc = OPS->truncate(path, a->st_size, NULL);
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2];

		tv[0].tv_sec = tv[1].tv_sec = 0;
		tv[0].tv_nsec = tv[1].tv_nsec = UTIME_OMIT;
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			tv[0] = a->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			tv[1] = a->st_mtim;
		rc = OPS->utimens(path, tv, NULL);
	}
	return rc;
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	struct stat st;
	int rc;

	(void)fi;
	memset(&st, 0, sizeof st);
	ON_PATH(ino, NULL, rc, do_setattr(path, attr, to_set));
	if (rc == 0)
		ON_PATH(ino, NULL, rc, OPS->getattr(path, &st, NULL));
	reply_attr(req, ino, &st, rc);
}

/* ---- files: no open, no flush ---- */

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS); /* the kernel stops asking (no_open) */
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS); /* no_flush */
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0); /* files made by create(); no state per handle */
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	char *buf = malloc(size ? size : 1);
	int rc;

	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ON_PATH(ino, NULL, rc, OPS->read(path, buf, size, off, fi));
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, (size_t)rc);
	free(buf);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	int rc;

	ON_PATH(ino, NULL, rc, OPS->write(path, buf, size, off, fi));
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, (size_t)rc);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int rc;

	ON_PATH(ino, NULL, rc, OPS->fsync(path, datasync, fi));
	fuse_reply_err(req, -rc);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int rc;

	ON_PATH(ino, NULL, rc, OPS->fsyncdir(path, datasync, fi));
	fuse_reply_err(req, -rc);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int rc;

	memset(&sv, 0, sizeof sv);
	ON_PATH(ino, NULL, rc, OPS->statfs(path, &sv));
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &sv);
}

/* ---- making names ---- */

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	struct mnt_ll *ll = LL();
	struct fuse_entry_param e;
	struct node *p, *n = NULL;
	int rc;

	memset(&e, 0, sizeof e);
	ON_PATH(parent, name, rc, OPS->create(path, mode, fi));
	if (rc == 0)
		ON_PATH(parent, name, rc, OPS->getattr(path, &e.attr, NULL));
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	pthread_mutex_lock(&ll->lock);
	p = find_ino(ll, parent);
	if (p)
		n = node_get(ll, p, name, 0);
	if (n)
		e.ino = n->ino;
	pthread_mutex_unlock(&ll->lock);
	if (n == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	set_attr_ino(&e.attr, e.ino);
	e.attr_timeout = ll->attr_timeout;
	e.entry_timeout = ll->entry_timeout;
	fi->keep_cache = 1;
	fi->noflush = 1;
	fi->fh = 0;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		/* the caller was interrupted: the kernel never saw the node */
		forget_unseen(ll, e.ino);
	}
}

/* The answer to a request that made name in parent (rc: the operation's). */
static void reply_made(fuse_req_t req, fuse_ino_t parent, const char *name, int rc)
{
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry_for(req, parent, name, 0);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	int rc;

	ON_PATH(parent, name, rc, OPS->mknod(path, mode, rdev));
	reply_made(req, parent, name, rc);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	int rc;

	ON_PATH(parent, name, rc, OPS->mkdir(path, mode));
	reply_made(req, parent, name, rc);
}

static void ll_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	int rc;

	ON_PATH(parent, name, rc, OPS->symlink(target, path));
	reply_made(req, parent, name, rc);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct coffer_buf from = COFFER_BUF_INIT, to = COFFER_BUF_INIT;
	struct ll_ctx c, t;
	int rc;

	/* one context for both paths: the source's name and the target's */
	for (int stale = 0;; stale++) {
		rc = path_of(ino, NULL, &from, &c);
		if (rc == 0)
			rc = path_of(newparent, newname, &to, &t);
		if (rc < 0)
			break;
		for (int i = 0; i < t.nb; i++) {
			c.b[c.nb] = t.b[i];
			c.moved[c.nb++] = t.moved[i];
		}
		tl_ctx = &c;
		rc = OPS->link(coffer_buf_str(&from), coffer_buf_str(&to));
		tl_ctx = NULL;
		if (rc != MNT_RETRY)
			break;
		if (stale == STALE_RETRIES) {
			rc = -EAGAIN;
			break;
		}
		ctx_settle(&c);
	}
	coffer_buf_free(&from);
	coffer_buf_free(&to);
	reply_made(req, newparent, newname, rc);
}

/* ---- removing and renaming names ---- */

/*
 * If name in parent is a file the kernel may hold, renames it to a hidden
 * name (mount-hidden.c) and marks its node: 0, 1 if there was nothing to
 * hide, or -errno. Between names_begin() and names_end_locked().
 */
static int hide(struct node *parent, const char *name)
{
	struct mnt_ll *ll = LL();
	struct coffer_buf from = COFFER_BUF_INIT, to = COFFER_BUF_INIT;
	struct node *n;
	char hname[40];
	int rc;

	pthread_mutex_lock(&ll->lock);
	n = find_name(ll, parent, name);
	if (n == NULL || n->nlookup == 0 || n->isdir || n->hidden) {
		pthread_mutex_unlock(&ll->lock);
		return 1;
	}
	snprintf(hname, sizeof hname, ".fuse_hidden%08x%08x", (unsigned)n->ino,
	         (unsigned)++ll->hidden_ctr);
	rc = node_path(parent, name, &from);
	if (rc == 0)
		rc = node_path(parent, hname, &to);
	pthread_mutex_unlock(&ll->lock);
	if (rc == 0)
		rc = OPS->rename(coffer_buf_str(&from), coffer_buf_str(&to), 0);
	if (rc == -EPERM)
		rc = 1; /* not a file that can live on hidden: removed outright */
	if (rc == 0) {
		pthread_mutex_lock(&ll->lock);
		if (find_name(ll, parent, name) == n && setname(ll, n, parent, hname) == 0)
			n->hidden = 1;
		pthread_mutex_unlock(&ll->lock);
	}
	coffer_buf_free(&from);
	coffer_buf_free(&to);
	return rc;
}

static void unname_child(fuse_ino_t parent, const char *name)
{
	struct mnt_ll *ll = LL();
	struct node *p, *n;

	p = find_ino(ll, parent);
	n = p ? find_name(ll, p, name) : NULL;
	if (n) {
		unname(ll, n);
		maybe_free(ll, n);
	}
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int dir)
{
	struct mnt_ll *ll = LL();
	struct node *p;
	unsigned b = name_bucket(parent, name);
	int rc = 1;

	names_begin(dir, b, UINT_MAX);
	pthread_mutex_lock(&ll->lock);
	p = find_ino(ll, parent);
	pthread_mutex_unlock(&ll->lock);
	if (p == NULL)
		rc = -ENOENT;
	else if (!dir)
		rc = hide(p, name);
	if (rc == 1)
		ON_PATH_ONCE(parent, name, rc, dir ? OPS->rmdir(path) : OPS->unlink(path));
	pthread_mutex_lock(&ll->lock);
	if (rc == 0)
		unname_child(parent, name);
	names_end_locked(ll, dir, b, UINT_MAX);
	pthread_mutex_unlock(&ll->lock);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 0);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 1);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	struct mnt_ll *ll = LL();
	struct coffer_buf from = COFFER_BUF_INIT;
	struct node *p, *np, *n, *t;
	unsigned b1 = name_bucket(parent, name), b2 = name_bucket(newparent, newname);
	int rc, dir;

	pthread_mutex_lock(&ll->lock);
	p = find_ino(ll, parent);
	np = find_ino(ll, newparent);
	n = p ? find_name(ll, p, name) : NULL;
	t = np ? find_name(ll, np, newname) : NULL;
	dir = n == NULL || n->isdir || (t && t->isdir); /* unknown: as a directory */
	pthread_mutex_unlock(&ll->lock);
	names_begin(dir, b1, b2);
	rc = np ? path_of(parent, name, &from, NULL) : -ENOENT;
	/* the target, if the kernel may hold it, lives on hidden */
	if (rc == 0 && !(flags & (RENAME_EXCHANGE | RENAME_NOREPLACE))) {
		rc = hide(np, newname);
		rc = rc == 1 ? 0 : rc;
	}
	if (rc == 0)
		ON_PATH_ONCE(newparent, newname, rc,
		             OPS->rename(coffer_buf_str(&from), path, flags));
	pthread_mutex_lock(&ll->lock);
	if (rc == 0) {
		p = find_ino(ll, parent);
		np = find_ino(ll, newparent);
		n = p ? find_name(ll, p, name) : NULL;
		t = np ? find_name(ll, np, newname) : NULL;
		if (flags & RENAME_EXCHANGE) {
			if (n && t) {
				char *nn = strdup(name);

				if (nn) {
					unname(ll, t);
					setname(ll, n, np, newname);
					setname(ll, t, p, nn);
					free(nn);
				}
			}
		} else if (n && np) {
			if (t && t != n) {
				unname(ll, t);
				maybe_free(ll, t);
			}
			if (setname(ll, n, np, newname) < 0)
				unname(ll, n);
		} else if (t && !(flags & RENAME_NOREPLACE)) {
			unname(ll, t);
			maybe_free(ll, t);
		}
	}
	names_end_locked(ll, dir, b1, b2);
	pthread_mutex_unlock(&ll->lock);
	coffer_buf_free(&from);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

/* ---- directories: listed once per opendir ---- */

/* A listing; busy and released under ll->lock: a READDIR the caller gave
 * up on may still be answering when RELEASEDIR comes, so the last of the
 * two frees it. */
struct dirh {
	char *buf;
	size_t len, cap;
	off_t next;
	fuse_req_t req;
	int err;
	unsigned busy;
	int released;
};

static void dirh_put(struct dirh *h, int release)
{
	struct mnt_ll *ll = LL();
	int last;

	pthread_mutex_lock(&ll->lock);
	if (release)
		h->released = 1;
	else
		h->busy--;
	last = h->released && h->busy == 0;
	pthread_mutex_unlock(&ll->lock);
	if (last) {
		free(h->buf);
		free(h);
	}
}

static int dir_fill(void *h_, const char *name, const struct stat *st, off_t off,
                    enum fuse_fill_dir_flags flags)
{
	struct dirh *h = h_;
	struct stat s;
	size_t need;

	(void)st;
	(void)off;
	(void)flags;
	memset(&s, 0, sizeof s);
	s.st_ino = 0xffffffffu; /* FUSE_UNKNOWN_INO, as libfuse's path API gave */
	s.st_mode = st ? st->st_mode : 0;
	need = fuse_add_direntry(h->req, NULL, 0, name, NULL, 0);
	if (h->len + need > h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16384;
		char *nb;

		while (cap < h->len + need)
			cap *= 2;
		nb = realloc(h->buf, cap);
		if (nb == NULL) {
			h->err = ENOMEM;
			return 1;
		}
		h->buf = nb;
		h->cap = cap;
	}
	fuse_add_direntry(h->req, h->buf + h->len, need, name, &s, ++h->next);
	h->len += need;
	return 0;
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirh *h = calloc(1, sizeof *h);
	int rc;

	if (h == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->req = req;
	ON_PATH(ino, NULL, rc, OPS->readdir(path, h, dir_fill, 0, NULL, 0));
	if (rc == 0 && h->err)
		rc = -h->err;
	if (rc < 0) {
		free(h->buf);
		free(h);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		free(h->buf);
		free(h);
	}
}

static size_t dirent_size(const char *e)
{
	uint32_t namelen;

	memcpy(&namelen, e + 16, sizeof namelen);
	return (24 + (size_t)namelen + 7) & ~(size_t)7;
}

/* Holds h for one READDIR or READDIRPLUS; where its entry number off
 * starts. Entries are back to back (struct fuse_dirent: ino, off, namelen,
 * type, name padded to 8); the offset of each is its ordinal. */
static size_t dir_begin(struct dirh *h, off_t off)
{
	struct mnt_ll *ll = LL();
	size_t start = 0;

	pthread_mutex_lock(&ll->lock);
	h->busy++;
	pthread_mutex_unlock(&ll->lock);
	for (off_t k = 0; k < off && start < h->len; k++)
		start += dirent_size(h->buf + start);
	return start;
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
	size_t start = dir_begin(h, off), end = start;

	(void)ino;
	while (end < h->len) {
		size_t one = dirent_size(h->buf + end);

		if (end - start + one > size)
			break;
		end += one;
	}
	fuse_reply_buf(req, h->buf + start, end - start);
	dirh_put(h, 0);
}

/*
 * READDIRPLUS: the same entries, each with its attributes, counted as a
 * lookup. The kernel takes them as fresh attributes of the inodes it has,
 * which a cold read of a message made stale (it invalidates the atime
 * after every READ, so the next stat() would be a GETATTR round trip):
 * Dovecot scans cur/ before each session, so one reply per few hundred
 * messages refreshes them all. A name gone since opendir (or "." and "..")
 * goes out without attributes, as a plain entry.
 */
static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	struct mnt_ll *ll = LL();
	struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
	fuse_ino_t *seen = NULL;
	size_t start, len = 0, nseen = 0;
	char *out = malloc(size ? size : 1);
	off_t k = off; /* past the end: no entry follows */

	if (out == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	start = dir_begin(h, off);
	while (start < h->len) {
		struct fuse_entry_param e;
		uint32_t namelen;
		char name[FUSE_NAME_MAX + 1];
		size_t need;

		memcpy(&namelen, h->buf + start + 16, sizeof namelen);
		if (namelen > FUSE_NAME_MAX)
			break;
		memcpy(name, h->buf + start + 24, namelen);
		name[namelen] = '\0';
		need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
		if (len + need > size)
			break;
		memset(&e, 0, sizeof e);
		if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
		    entry_get(ino, name, &e) < 0)
			memset(&e, 0, sizeof e);
		if (e.ino) {
			fuse_ino_t *ns = nseen % 64 ? seen
			                            : realloc(seen, (nseen + 64) * sizeof *seen);

			if (ns == NULL) {
				forget_unseen(ll, e.ino);
				break;
			}
			seen = ns;
			seen[nseen++] = e.ino;
		} else {
			e.attr.st_ino = 0xffffffffu;
		}
		fuse_add_direntry_plus(req, out + len, need, name, &e, ++k);
		len += need;
		start += dirent_size(h->buf + start);
	}
	if (fuse_reply_buf(req, out, len) == -ENOENT) /* interrupted: not seen */
		for (size_t i = 0; i < nseen; i++)
			forget_unseen(ll, seen[i]);
	free(seen);
	free(out);
	dirh_put(h, 0);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;

	(void)ino;
	dirh_put(h, 1);
	fuse_reply_err(req, 0);
}

/* ---- the session ---- */

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* O_TRUNC must reach setattr, not travel in an open() nobody sees */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* every listing with attributes (ll_readdirplus), not only the first
	 * chunk or after a lookup */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

static const struct fuse_lowlevel_ops llops = {
	.init = ll_init,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.forget_multi = ll_forget_multi,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.mknod = ll_mknod,
	.mkdir = ll_mkdir,
	.unlink = ll_unlink,
	.rmdir = ll_rmdir,
	.symlink = ll_symlink,
	.rename = ll_rename,
	.link = ll_link,
	.open = ll_open,
	.read = ll_read,
	.write = ll_write,
	.flush = ll_flush,
	.release = ll_release,
	.fsync = ll_fsync,
	.opendir = ll_opendir,
	.readdir = ll_readdir,
	.readdirplus = ll_readdirplus,
	.releasedir = ll_releasedir,
	.fsyncdir = ll_fsyncdir,
	.statfs = ll_statfs,
	.create = ll_create,
};

/* clang-format off */
#define LL_OPT(t, p) { t, offsetof(struct mnt_ll, p), 0 }
static const struct fuse_opt ll_opts[] = {
	LL_OPT("entry_timeout=%lf", entry_timeout),
	LL_OPT("attr_timeout=%lf", attr_timeout),
	LL_OPT("negative_timeout=%lf", negative_timeout),
	/* what libfuse's path API took, done here always */
	FUSE_OPT_KEY("remember=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("kernel_cache", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};
/* clang-format on */

struct fuse_session *mnt_ll_session(struct mnt *m, struct fuse_args *args)
{
	struct mnt_ll *ll = calloc(1, sizeof *ll);
	struct fuse_session *se;

	if (ll == NULL)
		return NULL;
	pthread_mutex_init(&ll->lock, NULL);
	pthread_cond_init(&ll->quiet, NULL);
	ll->root.ino = FUSE_ROOT_ID;
	ll->root.nlookup = 1;
	ll->root.isdir = 1;
	ll->next_ino = FUSE_ROOT_ID;
	if (fuse_opt_parse(args, ll, ll_opts, NULL) < 0) {
		free(ll);
		return NULL;
	}
	m->ll = ll;
	se = fuse_session_new(args, &llops, sizeof llops, m);
	if (se == NULL) {
		m->ll = NULL;
		free(ll);
	}
	return se;
}

void mnt_ll_free(struct mnt *m)
{
	struct mnt_ll *ll = m->ll;

	if (ll == NULL)
		return;
	for (unsigned i = 0; i < LL_HASH; i++)
		while (ll->byino[i]) {
			struct node *n = ll->byino[i];

			ll->byino[i] = n->ihash;
			free(n->name);
			free(n);
		}
	pthread_mutex_destroy(&ll->lock);
	pthread_cond_destroy(&ll->quiet);
	free(ll);
	m->ll = NULL;
}

/* fuse_invalidate_path()'s work: the kernel forgets the attributes and
 * cached pages of the node at path, if it has one. */
void mnt_ll_invalidate(struct mnt *m, const char *path)
{
	struct mnt_ll *ll = m->ll;
	struct node *n;
	fuse_ino_t ino = 0;
	char *copy, *save = NULL;

	if (ll == NULL || m->se == NULL || (copy = strdup(path)) == NULL)
		return;
	pthread_mutex_lock(&ll->lock);
	n = &ll->root;
	for (char *c = strtok_r(copy, "/", &save); c && n; c = strtok_r(NULL, "/", &save))
		n = find_name(ll, n, c);
	if (n && n->nlookup)
		ino = n->ino;
	pthread_mutex_unlock(&ll->lock);
	free(copy);
	if (ino)
		fuse_lowlevel_notify_inval_inode(m->se, ino, 0, 0);
}
