/*
 * mount-cache.c: the mount's decrypted-content cache (see mount-private.h):
 * whole decrypted messages, keyed by (account, blob), in a hash table with
 * an LRU list, bounded in bytes by mount_cache_size. Blobs are immutable, so
 * an entry never goes stale; it is dropped when its message's blob is
 * (mnt_cache_drop), evicted least recently used first, and wiped on removal.
 * Messages larger than a quarter of the bound are decrypted chunk by chunk
 * for each read instead.
 *
 * Locking: cache_lock guards the table, the list and cache_bytes; it is
 * held to look up, insert and copy, never while decrypting.
 */
#include "mount-private.h"

#include "engine/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Blob ids are random: their first bytes are a hash already (the account
 * id is random too). The byte-wise FNV used before mixed the blob into bits
 * 8..15 only, which left 16 of the 4096 chains in use. */
static unsigned cache_hash(const unsigned char *acct, const unsigned char *blob)
{
	uint32_t h = ((uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 |
	              blob[3]) ^
	             ((uint32_t)acct[0] << 8 | acct[1]);

	return h % MNT_HASH;
}

static void lru_unlink(struct mnt *m, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		m->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		m->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct mnt *m, struct centry *e)
{
	e->next = m->lru_head;
	e->prev = NULL;
	if (m->lru_head)
		m->lru_head->prev = e;
	m->lru_head = e;
	if (m->lru_tail == NULL)
		m->lru_tail = e;
}

static void cache_remove(struct mnt *m, struct centry *e)
{
	struct centry **pp = &m->cache[cache_hash(e->acct, e->blob)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(m, e);
	m->cache_bytes -= e->len;
	coffer_wipe(e->data, e->len);
	free(e->data);
	free(e);
}

void mnt_cache_drop(struct mnt *m, const unsigned char *acct, const unsigned char *blob)
{
	pthread_mutex_lock(&m->cache_lock);
	for (struct centry *e = m->cache[cache_hash(acct, blob)]; e; e = e->hnext) {
		if (memcmp(e->acct, acct, COFFER_ID_BYTES) == 0 &&
		    memcmp(e->blob, blob, COFFER_ID_BYTES) == 0) {
			cache_remove(m, e);
			break;
		}
	}
	pthread_mutex_unlock(&m->cache_lock);
}

/* pin_fd: the blob already open (a hidden message's, maybe unlinked since),
 * reopened through /proc so that the reader has its own file offset. */
static int open_reader(struct mnt *m, struct macct *a, const struct coffer_message_rec *rec,
                       int pin_fd, struct coffer_blob_reader **r_r, int *fd_r)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	struct coffer_blob_ids ids;
	int rc;

	*fd_r = -1;
	rc = pin_fd >= 0 ? coffer_buf_printf(&path, "/proc/self/fd/%d", pin_fd)
	                 : coffer_store_blob_path(m->st, a->id, rec->blob_id, &path);
	if (rc == 0)
		rc = coffer_buf_ok(&path);
	if (rc < 0) {
		coffer_buf_free(&path);
		return rc;
	}
	*fd_r = open(coffer_buf_str(&path), O_RDONLY | O_CLOEXEC);
	coffer_buf_free(&path);
	if (*fd_r < 0)
		return coffer_err_set(COFFER_ECORRUPT,
		                      "account %s: a message's blob is missing: %s", a->name,
		                      strerror(errno));
	memcpy(ids.account_id, a->id, COFFER_ID_BYTES);
	memcpy(ids.blob_id, rec->blob_id, COFFER_ID_BYTES);
	ids.kind = COFFER_BLOB_MESSAGE;
	rc = coffer_blob_reader_open(*fd_r, &ids, a->secret, r_r);
	if (rc < 0) {
		close(*fd_r);
		*fd_r = -1;
	}
	return rc;
}

/* The cached entry of (acct, blob), moved to the LRU's head; under cache_lock. */
static struct centry *cache_find(struct mnt *m, const unsigned char *acct,
                                 const unsigned char *blob)
{
	struct centry *e;

	for (e = m->cache[cache_hash(acct, blob)]; e; e = e->hnext)
		if (memcmp(e->acct, acct, COFFER_ID_BYTES) == 0 &&
		    memcmp(e->blob, blob, COFFER_ID_BYTES) == 0)
			break;
	if (e) {
		lru_unlink(m, e);
		lru_push(m, e);
	}
	return e;
}

/* Copies [off, off + n) of a cached entry; under cache_lock. */
static void cache_copy(const struct centry *e, void *p, size_t n, uint64_t off, size_t *got_r)
{
	size_t len = 0;

	if (off < e->len) {
		len = e->len - (size_t)off < n ? e->len - (size_t)off : n;
		memcpy(p, e->data + off, len);
	}
	*got_r = len;
}

/*
 * Reads message content through the cache. The cache lock is held only to
 * look up, insert and copy: decryption runs without it, so two cold reads
 * decrypt in parallel (two threads reading the same new message may both
 * decrypt it; the second insert is dropped).
 */
int mnt_msg_read(struct mnt *m, struct macct *a, const struct coffer_message_rec *rec, int pin_fd,
                 void *p, size_t n, uint64_t off, size_t *got_r)
{
	struct coffer_blob_reader *r = NULL;
	struct centry *e, *have;
	size_t len = 0, got;
	int fd = -1, rc = 0;

	*got_r = 0;
	if (off >= rec->size)
		return 0;
	pthread_mutex_lock(&m->cache_lock);
	e = cache_find(m, a->id, rec->blob_id);
	if (e)
		cache_copy(e, p, n, off, got_r);
	pthread_mutex_unlock(&m->cache_lock);
	if (e)
		return 0;
	rc = open_reader(m, a, rec, pin_fd, &r, &fd);
	if (rc < 0)
		goto out;
	if (rec->size > m->cache_max / 4) {
		/* too large to cache: decrypt the chunks asked for */
		while (len < n) {
			rc = coffer_blob_reader_pread(r, (unsigned char *)p + len, n - len,
			                              off + len, &got);
			if (rc < 0 || got == 0)
				break;
			len += got;
		}
		*got_r = len;
		goto out;
	}
	e = calloc(1, sizeof *e);
	if (e == NULL || (e->data = malloc(rec->size ? (size_t)rec->size : 1)) == NULL) {
		free(e);
		e = NULL;
		rc = COFFER_ENOMEM;
		goto out;
	}
	while (len < rec->size) {
		rc = coffer_blob_reader_read(r, e->data + len, (size_t)rec->size - len, &got);
		if (rc < 0 || got == 0)
			break;
		len += got;
	}
	if (rc == 0 && len != rec->size)
		rc = coffer_err_set(COFFER_ECORRUPT,
		                    "account %s: a message is shorter than "
		                    "its record",
		                    a->name);
	if (rc < 0) {
		coffer_wipe(e->data, len);
		free(e->data);
		free(e);
		goto out;
	}
	memcpy(e->acct, a->id, COFFER_ID_BYTES);
	memcpy(e->blob, rec->blob_id, COFFER_ID_BYTES);
	e->len = len;
	pthread_mutex_lock(&m->cache_lock);
	have = cache_find(m, a->id, rec->blob_id);
	if (have == NULL) {
		e->hnext = m->cache[cache_hash(a->id, rec->blob_id)];
		m->cache[cache_hash(a->id, rec->blob_id)] = e;
		m->cache_bytes += len;
		lru_push(m, e);
		while (m->cache_bytes > m->cache_max && m->lru_tail && m->lru_tail != e)
			cache_remove(m, m->lru_tail);
	}
	cache_copy(have ? have : e, p, n, off, got_r);
	pthread_mutex_unlock(&m->cache_lock);
	if (have) {
		coffer_wipe(e->data, e->len);
		free(e->data);
		free(e);
	}
out:
	coffer_blob_reader_free(&r);
	if (fd >= 0)
		close(fd);
	return rc;
}

void mnt_cache_free(struct mnt *m)
{
	for (int i = 0; i < MNT_HASH; i++)
		while (m->cache[i])
			cache_remove(m, m->cache[i]);
}
