/*
 * spool.c: spooled deliveries, marked and absorbed (see spool.h).
 *
 * Only files that carry a note are ever touched here. A pool file filled by
 * another writer (a control file or a message the mount writes) has no note:
 * that writer may close it before its commit, so an unlocked, filled, noted-
 * less pool file is not necessarily abandoned, and absorb leaves it alone
 * (verify's orphan rules apply to it, as before).
 */
#include "spool.h"

#include "account.h"
#include "clock.h"
#include "errors.h"
#include "events.h"
#include "folder.h"
#include "io.h"
#include "log.h"
#include "message.h"
#include "pool.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define NOTE_NAME "user.coffer.spool"
#define NOTE_VERSION 1
/* version, folder id, delivered at, size, digest */
#define NOTE_BYTES (1 + 4 + 8 + 8 + COFFER_HASH_BYTES)
#define GATHER 4096      /* pool records one pass looks at */
#define TXN_BATCH 256    /* deliveries one transaction indexes */
#define READ_BYTES 65536 /* a digest check reads this much at a time */
#define ID COFFER_ID_BYTES

/* ---- the note ---- */

int coffer_spool_mark(int fd, const struct coffer_spool_note *n)
{
	unsigned char buf[NOTE_BYTES], *p = buf;

	*p++ = NOTE_VERSION;
	coffer_put_u32le(p, n->folder_id), p += 4;
	coffer_put_u64le(p, (uint64_t)n->delivered_at), p += 8;
	coffer_put_u64le(p, n->size), p += 8;
	memcpy(p, n->digest, COFFER_HASH_BYTES);
	if (fsetxattr(fd, NOTE_NAME, buf, sizeof buf, 0) < 0)
		return coffer_err_set(COFFER_ELIMIT, "spool: cannot attach a note: %s",
		                      strerror(errno));
	return 0;
}

void coffer_spool_unmark(int fd)
{
	(void)fremovexattr(fd, NOTE_NAME);
}

int coffer_spool_discard(int fd)
{
	if (ftruncate(fd, 0) < 0)
		return -1;
	coffer_spool_unmark(fd);
	return 0;
}

int coffer_spool_marked(int fd)
{
	return fgetxattr(fd, NOTE_NAME, NULL, 0) >= 0;
}

/* 1 with *n filled, 0 if fd has no note, or COFFER_ECORRUPT for one this
 * version cannot read. */
static int note_read(int fd, struct coffer_spool_note *n)
{
	unsigned char buf[NOTE_BYTES + 1];
	const unsigned char *p = buf + 1;
	ssize_t len = fgetxattr(fd, NOTE_NAME, buf, sizeof buf);

	if (len < 0)
		return errno == ENODATA || errno == ENOTSUP
		           ? 0
		           : coffer_err_set(COFFER_EIO, "spool: reading a note: %s",
		                            strerror(errno));
	if (len != NOTE_BYTES || buf[0] != NOTE_VERSION)
		return coffer_err_set(COFFER_ECORRUPT, "spool: unreadable note");
	n->folder_id = coffer_get_u32le(p), p += 4;
	n->delivered_at = (int64_t)coffer_get_u64le(p), p += 8;
	n->size = coffer_get_u64le(p), p += 8;
	memcpy(n->digest, p, COFFER_HASH_BYTES);
	if (n->delivered_at < 0)
		return coffer_err_set(COFFER_ECORRUPT, "spool: unreadable note");
	return 1;
}

/* 1 if the file's bytes are the note's (their digest), else 0. */
static int note_matches(int fd, const struct stat *sb, const struct coffer_spool_note *n)
{
	unsigned char sum[COFFER_HASH_BYTES];
	unsigned char *buf = NULL; /* not on the stack: mount threads call this */
	struct coffer_hash *h = NULL;
	off_t off = 0;
	int ok = 1;

	if ((buf = malloc(READ_BYTES)) == NULL || coffer_hash_new(&h) < 0) {
		coffer_err_clear();
		ok = 0;
	}
	while (ok && off < sb->st_size) {
		size_t got;

		if (coffer_io_pread_full(fd, buf, READ_BYTES, off, &got) < 0 || got == 0) {
			coffer_err_clear();
			ok = 0;
			break;
		}
		coffer_hash_update(h, buf, got);
		off += (off_t)got;
	}
	if (ok)
		coffer_hash_final(h, sum);
	coffer_hash_free(&h);
	free(buf);
	return ok && memcmp(sum, n->digest, sizeof sum) == 0;
}

/* ---- absorb ---- */

struct item {
	unsigned char key[COFFER_KEY_BLOB]; /* acct || blob id */
	int fd;                             /* locked */
	struct coffer_spool_note note;
	uint64_t stored_size; /* the file's length */
	enum { PENDING, INDEXED, DISCARD, LEFT } fate;
};

struct gather {
	unsigned char (*keys)[COFFER_KEY_BLOB];
	size_t n, cap;
	const unsigned char *after; /* resume past this key (NULL: from the start) */
};

static int gather_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct gather *g = arg;

	(void)v;
	(void)vl;
	if (kl != COFFER_KEY_BLOB || (g->after && memcmp(k, g->after, kl) <= 0))
		return 0;
	if (coffer_array_grow(&g->keys, &g->cap, g->n, sizeof *g->keys, 64) < 0)
		return coffer_err_set(COFFER_ENOMEM, "spool: out of memory");
	memcpy(g->keys[g->n++], k, COFFER_KEY_BLOB);
	return g->n >= GATHER;
}

struct gather_args {
	struct gather *g;
	const unsigned char *acct;
};

static int gather_txn(struct coffer_txn *t, void *arg)
{
	struct gather_args *a = arg;

	if (a->g->after)
		return coffer_txn_scan_from(t, COFFER_DB_POOL, a->acct, a->acct ? ID : 0,
		                            a->g->after, COFFER_KEY_BLOB, gather_one, a->g);
	return coffer_txn_scan(t, COFFER_DB_POOL, a->acct, a->acct ? ID : 0, gather_one, a->g);
}

struct batch {
	struct coffer_store *st;
	struct item **v;
	size_t n;
	/* the delivery events' sealer, for one account at a time and at most
	 * COFFER_SEALER_MAX_BOXES boxes (then a new one) */
	struct coffer_sealer *sealer;
	unsigned char sealer_acct[ID];
	unsigned sealed;
};

/* A torn file is emptied only while its pool record stands, under our lock:
 * nobody indexed it meanwhile. (A delivery to index is checked the same way
 * inside the transaction that indexes it, index_one.) */
static int recheck_txn(struct coffer_txn *t, void *arg)
{
	struct batch *b = arg;

	for (size_t i = 0; i < b->n; i++) {
		int rc;

		if (b->v[i]->fate != DISCARD)
			continue;
		rc = coffer_pool_has_txn(t, b->v[i]->key, b->v[i]->key + ID);

		if (rc < 0)
			return rc;
		if (rc == 0)
			b->v[i]->fate = LEFT;
	}
	return 0;
}

static int index_one(struct coffer_txn *t, struct batch *b, struct item *it)
{
	struct coffer_store *st = b->st;
	struct coffer_account_rec arec;
	struct coffer_message_new m;
	char label[2 * 4 + 16];
	uint32_t fid = it->note.folder_id;
	int rc;

	rc = coffer_pool_has_txn(t, it->key, it->key + ID);
	if (rc <= 0) {
		it->fate = LEFT;
		return rc;
	}
	rc = coffer_account_get_txn(t, it->key, &arec);
	if (rc == COFFER_ENOTFOUND || (rc == 0 && arec.state == COFFER_ACCOUNT_SHREDDED)) {
		coffer_err_clear();
		it->fate = DISCARD; /* its key is gone: nothing could ever read it */
		return 0;
	}
	if (rc < 0)
		return rc;
	if (b->sealer == NULL || memcmp(b->sealer_acct, it->key, ID) != 0 ||
	    b->sealed == COFFER_SEALER_MAX_BOXES) {
		coffer_sealer_free(&b->sealer);
		rc = coffer_sealer_new(arec.pk, &b->sealer);
		if (rc < 0)
			return rc;
		memcpy(b->sealer_acct, it->key, ID);
		b->sealed = 0;
	}
	memset(&m, 0, sizeof m);
	m.acct = it->key;
	memcpy(m.blob_id, it->key + ID, ID);
	m.size = it->note.size;
	m.stored_size = it->stored_size;
	m.internal_date = it->note.delivered_at;
	m.delivered_at = it->note.delivered_at;
	m.is_new = 1;
	snprintf(label, sizeof label, "#%u", (unsigned)fid);
	m.folder = label;
	rc = coffer_message_add_to_txn(t, st, "(spooled delivery)", &m, fid, NULL);
	if (rc == COFFER_ENOTFOUND) { /* its folder was deleted since: INBOX */
		coffer_err_clear();
		rc = coffer_folder_resolve_txn(t, st, it->key, "INBOX", 1, NULL,
		                               it->note.delivered_at, &fid, NULL);
		if (rc == 0)
			rc = coffer_message_add_to_txn(t, st, "(spooled delivery)", &m, fid, NULL);
	}
	if (rc == 0)
		rc = coffer_events_record_delivery_id_txn(t, it->key, b->sealer, m.delivered_at,
		                                          m.size, fid);
	b->sealed++; /* a box failed or rolled back keeps its nonce taken */
	if (rc == 0)
		it->fate = INDEXED;
	return rc;
}

static int index_txn(struct coffer_txn *t, void *arg)
{
	struct batch *b = arg;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < b->n; i++)
		if (b->v[i]->fate == PENDING)
			rc = index_one(t, b, b->v[i]);
	return rc;
}

static int by_time(const void *pa, const void *pb)
{
	const struct item *a = *(struct item *const *)pa, *b = *(struct item *const *)pb;
	int c = memcmp(a->key, b->key, ID);

	if (c != 0)
		return c;
	return (a->note.delivered_at > b->note.delivered_at) -
	       (a->note.delivered_at < b->note.delivered_at);
}

/* Takes the spooled deliveries among g's records into items (*n_r of them),
 * each locked, its note read and its digest checked (PENDING, or DISCARD
 * when torn). -1 when the caller may not write the store's files: nothing
 * is to be done then (items taken so far are the caller's to close). */
static int take(struct coffer_store *st, struct gather *g, struct item *items, size_t *n_r)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < g->n; i++) {
		struct item *it = &items[n];
		struct stat sb;
		int fd, r;

		rc = coffer_store_blob_path(st, g->keys[i], g->keys[i] + ID, &path);
		if (rc < 0)
			break;
		if (stat(coffer_buf_str(&path), &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0)
			continue; /* gone or empty: the pool's own business */
		fd = open(coffer_buf_str(&path), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			if (errno == EACCES || errno == EROFS || errno == EPERM)
				rc = -1;
			continue;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &sb) < 0 || sb.st_size == 0) {
			close(fd); /* still being written, or emptied meanwhile */
			continue;
		}
		r = note_read(fd, &it->note);
		if (r <= 0) {
			coffer_err_clear(); /* not a delivery's: left alone */
			close(fd);
			continue;
		}
		memcpy(it->key, g->keys[i], COFFER_KEY_BLOB);
		it->fd = fd;
		it->stored_size = (uint64_t)sb.st_size;
		it->fate = note_matches(fd, &sb, &it->note) ? PENDING : DISCARD;
		n++;
	}
	coffer_buf_free(&path);
	*n_r = n;
	return rc;
}

/* A full disk, a busy or failing store: nothing to retry now (the
 * deliveries stay spooled, durable; the caller decides whether to say so,
 * `coffer deliver` keeps to its one line). */
static int store_wide(int rc)
{
	return rc == COFFER_ENOSPACE || rc == COFFER_ETEMP || rc == COFFER_EIO;
}

/* v[0..n) after their transaction was rolled back: none indexed. */
static void unindex(struct item **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i]->fate == INDEXED)
			v[i]->fate = PENDING;
}

/* Indexes v[0..n) in one transaction. */
static int index_some(struct batch *b, struct item **v, size_t n)
{
	b->v = v;
	b->n = n;
	return coffer_index_update(coffer_store_index(b->st), index_txn, b);
}

static int absorb_items(struct coffer_store *st, struct item *items, size_t n, uint64_t *count)
{
	struct item **v = malloc((n ? n : 1) * sizeof *v);
	struct batch b;
	int rc = 0, torn = 0;

	if (v == NULL)
		return coffer_err_set(COFFER_ENOMEM, "spool: out of memory");
	for (size_t i = 0; i < n; i++) {
		v[i] = &items[i];
		torn |= items[i].fate == DISCARD;
	}
	qsort(v, n, sizeof *v, by_time);
	memset(&b, 0, sizeof b);
	b.st = st;
	b.v = v;
	b.n = n;
	if (torn)
		rc = coffer_index_view(coffer_store_index(st), recheck_txn, &b);
	for (size_t i = 0; rc == 0 && i < n; i += TXN_BATCH) {
		size_t k = n - i < TXN_BATCH ? n - i : TXN_BATCH;

		rc = index_some(&b, v + i, k);
		if (rc == 0)
			continue;
		unindex(v + i, k); /* the batch was rolled back */
		if (store_wide(rc))
			break;
		/* one bad delivery must not hold back the others: each goes
		 * again on its own */
		coffer_err_clear();
		rc = 0;
		for (size_t j = i; rc == 0 && j < i + k; j++) {
			if (v[j]->fate != PENDING)
				continue;
			rc = index_some(&b, v + j, 1);
			if (rc == 0)
				continue;
			unindex(v + j, 1);
			if (!store_wide(rc)) {
				coffer_log(COFFER_LOG_ERROR, "spool: a delivery stays spooled: %s",
				           coffer_errmsg());
				coffer_err_clear();
				v[j]->fate = LEFT;
				rc = 0;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i]->fate == INDEXED) { /* committed, whatever came after */
			coffer_spool_unmark(v[i]->fd);
			(*count)++;
		} else if (rc == 0 && v[i]->fate == DISCARD) {
			(void)coffer_spool_discard(v[i]->fd);
		}
	}
	coffer_sealer_free(&b.sealer);
	free(v);
	return rc;
}

int coffer_spool_absorb(struct coffer_store *st, const unsigned char *acct, uint64_t *absorbed_r)
{
	struct gather g = { NULL, 0, 0, NULL };
	struct gather_args ga = { &g, acct };
	unsigned char last[COFFER_KEY_BLOB];
	struct item *items = NULL;
	uint64_t count = 0;
	int rc;

	if (absorbed_r)
		*absorbed_r = 0;
	do {
		size_t n = 0;

		g.n = 0;
		rc = coffer_index_view(coffer_store_index(st), gather_txn, &ga);
		if (rc < 0 || g.n == 0)
			break;
		memcpy(last, g.keys[g.n - 1], sizeof last);
		free(items);
		items = calloc(g.n, sizeof *items);
		if (items == NULL) {
			rc = coffer_err_set(COFFER_ENOMEM, "spool: out of memory");
			break;
		}
		rc = take(st, &g, items, &n);
		if (rc == 0 && n > 0)
			rc = absorb_items(st, items, n, &count);
		for (size_t i = 0; i < n; i++)
			close(items[i].fd);
		if (rc == -1) { /* a store we may not write: nothing to do */
			rc = 0;
			break;
		}
		g.after = last;
	} while (rc == 0 && g.n >= GATHER);
	free(items);
	free(g.keys);
	if (rc == 0 && absorbed_r)
		*absorbed_r = count;
	return rc;
}
