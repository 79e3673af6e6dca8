/*
 * rollback.c: the rollback point (see rollback.h for the design).
 *
 * The boot id is /proc/sys/kernel/random/boot_id; COFFER_BOOT_ID replaces it
 * (a testing aid, like COFFER_NOW: a test "reboots" by changing it).
 */
#include "rollback.h"

#include "buf.h"
#include "crypto.h"
#include "errors.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "CFRBK001"
#define BOOT_BYTES 48
#define HDR_BYTES (8 + 8 + 8 + 4 + 4 + BOOT_BYTES)
#define MAX_PSIZE 65536
/* slot i starts at i * STRIDE, so that either header reads alone */
#define STRIDE (HDR_BYTES + 2 * MAX_PSIZE + COFFER_HASH_BYTES)

struct hdr {
	char magic[8];
	uint64_t seq, txnid;
	uint32_t psize, zero;
	char boot[BOOT_BYTES];
};

struct coffer_rollback {
	int fd;
	char *dir;
	struct hdr cur;        /* the newest valid record; seq 0: none */
	char boot[BOOT_BYTES]; /* this boot's id, read at open */
};

static void boot_id(char out[BOOT_BYTES])
{
	const char *env = getenv("COFFER_BOOT_ID");
	int fd;
	ssize_t n = 0;

	memset(out, 0, BOOT_BYTES);
	if (env != NULL && *env) {
		strncpy(out, env, BOOT_BYTES - 1);
		return;
	}
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, out, BOOT_BYTES - 1);
		close(fd);
	}
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
}

static size_t slot_bytes(uint32_t psize)
{
	return HDR_BYTES + 2 * (size_t)psize + COFFER_HASH_BYTES;
}

static int digest(const void *p, size_t n, unsigned char out[COFFER_HASH_BYTES])
{
	struct coffer_hash *h;
	int rc = coffer_hash_new(&h);

	if (rc < 0)
		return rc;
	coffer_hash_update(h, p, n);
	coffer_hash_final(h, out);
	coffer_hash_free(&h);
	return 0;
}

/* Reads slot i into buf (slot_bytes(psize) of it) if it is valid. */
static int read_slot(int fd, int i, struct hdr *h, struct coffer_buf *buf)
{
	unsigned char sum[COFFER_HASH_BYTES];
	size_t got, n;
	int rc;

	memset(h, 0, sizeof *h);
	rc = coffer_io_pread_full(fd, h, HDR_BYTES, (off_t)i * STRIDE, &got);
	if (rc < 0 || got < HDR_BYTES || memcmp(h->magic, MAGIC, 8) != 0 || h->psize < 512 ||
	    h->psize > MAX_PSIZE)
		goto invalid;
	n = slot_bytes(h->psize);
	coffer_buf_reset(buf);
	if (coffer_buf_reserve(buf, n) < 0)
		return coffer_err_set(COFFER_ENOMEM, "rollback point: out of memory");
	rc = coffer_io_pread_full(fd, buf->data, n, (off_t)i * STRIDE, &got);
	if (rc < 0)
		return rc;
	if (got < n)
		goto invalid;
	buf->len = n;
	memcpy(h, buf->data, HDR_BYTES);
	if (memcmp(h->magic, MAGIC, 8) != 0 || digest(buf->data, n - COFFER_HASH_BYTES, sum) < 0 ||
	    memcmp(sum, buf->data + n - COFFER_HASH_BYTES, COFFER_HASH_BYTES) != 0)
		goto invalid;
	return 1;
invalid:
	memset(h, 0, sizeof *h);
	return 0;
}

/* The newest valid slot: 1 with *h and buf filled, 0 when none is. */
static int newest(int fd, struct hdr *h, struct coffer_buf *buf)
{
	struct coffer_buf other = COFFER_BUF_INIT;
	struct hdr h1;
	int a, b;

	a = read_slot(fd, 0, h, buf);
	b = a < 0 ? a : read_slot(fd, 1, &h1, &other);
	if (a < 0 || b < 0) {
		coffer_buf_free(&other);
		return a < 0 ? a : b;
	}
	if (b && (!a || h1.seq > h->seq)) {
		*h = h1;
		coffer_buf_reset(buf);
		coffer_buf_append(buf, other.data, other.len);
		if (buf->failed)
			a = coffer_err_set(COFFER_ENOMEM, "rollback point: out of memory");
	}
	coffer_buf_free(&other);
	return a < 0 ? a : (a || b);
}

static int path_of(const char *dir, const char *name, struct coffer_buf *out)
{
	coffer_buf_reset(out);
	coffer_buf_printf(out, "%s/%s", dir, name);
	return out->failed ? coffer_err_set(COFFER_ENOMEM, "rollback point: out of memory") : 0;
}

int coffer_rollback_recover(const char *dir, uint64_t *kept_r)
{
	struct coffer_buf path = COFFER_BUF_INIT, slot = COFFER_BUF_INIT;
	char boot[BOOT_BYTES];
	struct hdr h;
	struct stat sb;
	int fd = -1, dfd = -1, rc;

	*kept_r = 0;
	rc = path_of(dir, COFFER_ROLLBACK_FILE, &path);
	for (; rc == 0;) {
		fd = open(coffer_buf_str(&path), O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT)
				rc = coffer_err_set(coffer_err_from_errno(errno),
				                    "index rollback point %s: %s",
				                    coffer_buf_str(&path), strerror(errno));
			goto out;
		}
		/* a concurrent opener may have recovered and removed it meanwhile */
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
			;
		if (fstat(fd, &sb) == 0 && sb.st_nlink > 0)
			break;
		close(fd);
		fd = -1;
	}
	if (rc < 0)
		goto out;
	rc = newest(fd, &h, &slot);
	boot_id(boot);
	if (rc <= 0 || memcmp(h.boot, boot, BOOT_BYTES) == 0) {
		/* same boot: the page cache held every commit; or no record:
		 * none was made unsynced after it */
		if (rc > 0)
			*kept_r = h.txnid;
		goto out;
	}
	rc = path_of(dir, "data.mdb", &path);
	if (rc < 0)
		goto out;
	dfd = open(coffer_buf_str(&path), O_RDWR | O_CLOEXEC);
	if (dfd < 0) {
		rc = coffer_err_set(coffer_err_from_errno(errno), "index %s: %s",
		                    coffer_buf_str(&path), strerror(errno));
		goto out;
	}
	rc = coffer_io_pwrite_all(dfd, slot.data + HDR_BYTES, 2 * (size_t)h.psize, 0);
	if (rc == 0)
		rc = coffer_io_fsync(dfd);
	if (rc == 0 && (rc = path_of(dir, COFFER_ROLLBACK_FILE, &path)) == 0) {
		if (unlink(coffer_buf_str(&path)) < 0)
			rc = coffer_err_set(coffer_err_from_errno(errno),
			                    "index rollback point: %s", strerror(errno));
	}
	if (rc == 0)
		rc = coffer_io_fsync_dir(dir);
out:
	if (dfd >= 0)
		close(dfd);
	if (fd >= 0)
		close(fd);
	coffer_buf_free(&slot);
	coffer_buf_free(&path);
	return rc < 0 ? rc : 0;
}

int coffer_rollback_open(const char *dir, int create, struct coffer_rollback **rb_r)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	struct coffer_rollback *rb;
	int rc;

	*rb_r = NULL;
	rc = path_of(dir, COFFER_ROLLBACK_FILE, &path);
	if (rc < 0)
		return rc;
	rb = calloc(1, sizeof *rb);
	if (rb == NULL || (rb->dir = strdup(dir)) == NULL) {
		free(rb);
		coffer_buf_free(&path);
		return coffer_err_set(COFFER_ENOMEM, "rollback point: out of memory");
	}
	rb->fd = open(coffer_buf_str(&path), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (rb->fd < 0) {
		rc = errno == ENOENT && !create
		         ? COFFER_ENOTFOUND
		         : coffer_err_set(coffer_err_from_errno(errno),
		                          "index rollback point %s: %s", coffer_buf_str(&path),
		                          strerror(errno));
		goto fail;
	}
	boot_id(rb->boot);
	rc = coffer_rollback_reload(rb);
	if (rc < 0)
		goto fail;
	if (create && (rc = coffer_io_fsync_dir(dir)) < 0)
		goto fail;
	coffer_buf_free(&path);
	*rb_r = rb;
	return 0;
fail:
	coffer_buf_free(&path);
	coffer_rollback_close(&rb);
	return rc;
}

int coffer_rollback_reload(struct coffer_rollback *rb)
{
	struct coffer_buf slot = COFFER_BUF_INIT;
	int rc = newest(rb->fd, &rb->cur, &slot);

	coffer_buf_free(&slot);
	return rc < 0 ? rc : 0;
}

uint64_t coffer_rollback_txnid(const struct coffer_rollback *rb)
{
	return rb->cur.seq ? rb->cur.txnid : 0;
}

int coffer_rollback_record(struct coffer_rollback *rb, const void *metas, size_t psize,
                           uint64_t txnid)
{
	struct coffer_buf slot = COFFER_BUF_INIT;
	struct hdr h;
	size_t n;
	int rc;

	if (psize < 512 || psize > MAX_PSIZE)
		return coffer_err_set(COFFER_EINVAL, "rollback point: page size %zu", psize);
	n = slot_bytes((uint32_t)psize);
	/* records of several processes go one at a time (a process's own,
	 * made through one handle, are serialized by index.c), and each
	 * starts from the newest on disk, which another may have written
	 * since this handle last looked */
	while (flock(rb->fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return coffer_err_set(coffer_err_from_errno(errno),
			                      "index rollback point: lock: %s", strerror(errno));
	rc = coffer_rollback_reload(rb);
	if (rc < 0 || (rb->cur.seq && rb->cur.txnid >= txnid))
		goto out; /* a newer point covers this commit */
	memset(&h, 0, sizeof h);
	memcpy(h.magic, MAGIC, 8);
	h.seq = rb->cur.seq + 1;
	h.txnid = txnid;
	h.psize = (uint32_t)psize;
	memcpy(h.boot, rb->boot, BOOT_BYTES);
	if (coffer_buf_reserve(&slot, n) < 0) {
		rc = coffer_err_set(COFFER_ENOMEM, "rollback point: out of memory");
		goto out;
	}
	memcpy(slot.data, &h, HDR_BYTES);
	memcpy(slot.data + HDR_BYTES, metas, 2 * psize);
	rc = digest(slot.data, n - COFFER_HASH_BYTES, slot.data + n - COFFER_HASH_BYTES);
	if (rc == 0)
		rc = coffer_io_pwrite_all(rb->fd, slot.data, n, (off_t)(h.seq & 1) * STRIDE);
	/* the first record also writes the other slot (zeros, invalid): later
	 * records overwrite blocks the file has, so a full disk cannot fail them */
	if (rc == 0 && h.seq == 1) {
		memset(slot.data, 0, n);
		rc = coffer_io_pwrite_all(rb->fd, slot.data, n, 0);
	}
	if (rc == 0)
		rc = coffer_io_fdatasync(rb->fd);
	if (rc == 0)
		rb->cur = h;
out:
	flock(rb->fd, LOCK_UN);
	coffer_buf_free(&slot);
	return rc;
}

int coffer_rollback_remove(struct coffer_rollback **rbp)
{
	struct coffer_rollback *rb = *rbp;
	struct coffer_buf path = COFFER_BUF_INIT;
	int rc;

	rc = path_of(rb->dir, COFFER_ROLLBACK_FILE, &path);
	if (rc == 0 && unlink(coffer_buf_str(&path)) < 0 && errno != ENOENT)
		rc = coffer_err_set(coffer_err_from_errno(errno), "index rollback point: %s",
		                    strerror(errno));
	if (rc == 0)
		rc = coffer_io_fsync_dir(rb->dir);
	coffer_buf_free(&path);
	coffer_rollback_close(rbp);
	return rc;
}

void coffer_rollback_close(struct coffer_rollback **rbp)
{
	struct coffer_rollback *rb = rbp ? *rbp : NULL;

	if (rb == NULL)
		return;
	if (rb->fd >= 0)
		close(rb->fd);
	free(rb->dir);
	free(rb);
	*rbp = NULL;
}
