/*
 * io.c: file I/O helpers over one replaceable table of system calls.
 *
 * This file implements io.h. Sections:
 *   1. the ops table (system calls by default; tests swap in fakes that fail
 *      with EIO or ENOSPC, return short counts or EINTR, or report a full
 *      disk);
 *   2. whole-buffer transfers: write_all, pwrite_all, read_full, pread_full;
 *   3. fsync and fdatasync of files, syncfs, statvfs, fsync of directories,
 *      mkdir -p;
 *   4. atomic replacement of a file, and reading a whole (bounded) file.
 *
 * Invariants. Every helper retries EINTR and short transfers; a transfer that
 * makes no progress (a write returning 0) is an I/O error rather than a
 * spin. Every failure sets the thread's detail with coffer_err_set() to
 * "<op> <path or fd N>: <strerror>" and returns coffer_err_from_errno().
 *
 * Crash safety of coffer_io_write_file_atomic() (docs/design.md section 6):
 * the new contents go to "<path>.tmp.<16 hex>" in the same directory (so the
 * rename cannot cross file systems), created O_EXCL with the final mode, then
 * written, fsynced and closed; only then is it renamed over path and the
 * directory fsynced so the rename itself is durable. Until the rename the old
 * file is untouched, and any failure before it unlinks the temporary. A crash
 * before the rename leaves at worst a stray "*.tmp.*" file beside the old one;
 * after it, the new one. A failure of the final directory fsync is reported,
 * but the new contents are already in place by then.
 *
 * mkdir_p fsyncs the parent of every directory it creates, so that a blob
 * written into a fresh directory and fsynced with its directory is reachable
 * after a crash.
 *
 * Concurrency: the ops table is process-global and only meant to be replaced
 * by single-threaded tests; the helpers themselves are otherwise reentrant.
 */
#include "io.h"

#include "errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* ---- 1. the ops table ---- */

static ssize_t sys_write(int fd, const void *p, size_t n)
{
	return write(fd, p, n);
}

static ssize_t sys_pwrite(int fd, const void *p, size_t n, off_t off)
{
	return pwrite(fd, p, n, off);
}

static ssize_t sys_read(int fd, void *p, size_t n)
{
	return read(fd, p, n);
}

static ssize_t sys_pread(int fd, void *p, size_t n, off_t off)
{
	return pread(fd, p, n, off);
}

static int sys_fsync(int fd)
{
	return fsync(fd);
}

static int sys_syncfs(int fd)
{
	return syncfs(fd);
}

static int sys_fdatasync(int fd)
{
	return fdatasync(fd);
}

static int sys_statvfs(const char *path, struct statvfs *sv)
{
	return statvfs(path, sv);
}

static const struct coffer_io_ops sys_ops = {
	.write = sys_write,
	.pwrite = sys_pwrite,
	.read = sys_read,
	.pread = sys_pread,
	.fsync = sys_fsync,
	.syncfs = sys_syncfs,
	.fdatasync = sys_fdatasync,
	.statvfs = sys_statvfs,
};

static const struct coffer_io_ops *cur_ops = &sys_ops;

void coffer_io_set_ops(const struct coffer_io_ops *ops)
{
	cur_ops = ops ? ops : &sys_ops;
}

const struct coffer_io_ops *coffer_io_get_ops(void)
{
	return cur_ops;
}

/* A fake table may leave members NULL: those fall back to the system call. */
static ssize_t op_write(int fd, const void *p, size_t n)
{
	return (cur_ops->write ? cur_ops->write : sys_write)(fd, p, n);
}

static ssize_t op_pwrite(int fd, const void *p, size_t n, off_t off)
{
	return (cur_ops->pwrite ? cur_ops->pwrite : sys_pwrite)(fd, p, n, off);
}

static ssize_t op_read(int fd, void *p, size_t n)
{
	return (cur_ops->read ? cur_ops->read : sys_read)(fd, p, n);
}

static ssize_t op_pread(int fd, void *p, size_t n, off_t off)
{
	return (cur_ops->pread ? cur_ops->pread : sys_pread)(fd, p, n, off);
}

static int op_fsync(int fd)
{
	return (cur_ops->fsync ? cur_ops->fsync : sys_fsync)(fd);
}

static int fd_error(int err, const char *op, int fd)
{
	return coffer_err_set(coffer_err_from_errno(err), "%s fd %d: %s", op, fd, strerror(err));
}

static int path_error(int err, const char *op, const char *path)
{
	return coffer_err_set(coffer_err_from_errno(err), "%s %s: %s", op, path, strerror(err));
}

/* ---- 2. whole-buffer transfers ---- */

/*
 * The loops below take the name to report in errors: a path when the caller
 * knows one, else NULL for "fd N".
 */
static int xfer_error(int err, const char *op, int fd, const char *name)
{
	if (name)
		return path_error(err, op, name);
	return fd_error(err, op, fd);
}

/* A fake (or a broken file system) returning more than asked is a bug we
 * refuse to follow past the end of the caller's buffer; one returning 0 for
 * a write would spin forever. Both are I/O errors. */
static int bad_count(const char *op, int fd, const char *name, ssize_t got, size_t asked)
{
	if (name)
		return coffer_err_set(COFFER_EIO, "%s %s: transferred %zd of %zu bytes", op, name,
		                      got, asked);
	return coffer_err_set(COFFER_EIO, "%s fd %d: transferred %zd of %zu bytes", op, fd, got,
	                      asked);
}

static int write_all_named(int fd, const void *p, size_t n, const char *name)
{
	const unsigned char *c = p;
	ssize_t w;

	while (n > 0) {
		w = op_write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return xfer_error(errno, "write", fd, name);
		}
		if (w == 0 || (size_t)w > n)
			return bad_count("write", fd, name, w, n);
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int coffer_io_write_all(int fd, const void *p, size_t n)
{
	return write_all_named(fd, p, n, NULL);
}

int coffer_io_pwrite_all(int fd, const void *p, size_t n, off_t off)
{
	const unsigned char *c = p;
	ssize_t w;

	if (off < 0)
		return coffer_err_set(COFFER_EINVAL, "pwrite fd %d: negative offset", fd);
	while (n > 0) {
		w = op_pwrite(fd, c, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return fd_error(errno, "pwrite", fd);
		}
		if (w == 0 || (size_t)w > n)
			return bad_count("pwrite", fd, NULL, w, n);
		c += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static int read_full_named(int fd, void *p, size_t n, size_t *got_r, const char *name)
{
	unsigned char *c = p;
	size_t got = 0;
	ssize_t rd;
	int r = 0;

	while (got < n) {
		rd = op_read(fd, c + got, n - got);
		if (rd < 0) {
			if (errno == EINTR)
				continue;
			r = xfer_error(errno, "read", fd, name);
			goto out;
		}
		if (rd == 0)
			break;
		if ((size_t)rd > n - got) {
			r = bad_count("read", fd, name, rd, n - got);
			goto out;
		}
		got += (size_t)rd;
	}
out:
	if (got_r)
		*got_r = got;
	return r;
}

int coffer_io_read_full(int fd, void *p, size_t n, size_t *got_r)
{
	return read_full_named(fd, p, n, got_r, NULL);
}

int coffer_io_pread_full(int fd, void *p, size_t n, off_t off, size_t *got_r)
{
	unsigned char *c = p;
	size_t got = 0;
	ssize_t rd;
	int r = 0;

	if (off < 0) {
		r = coffer_err_set(COFFER_EINVAL, "pread fd %d: negative offset", fd);
		goto out;
	}
	while (got < n) {
		rd = op_pread(fd, c + got, n - got, off + (off_t)got);
		if (rd < 0) {
			if (errno == EINTR)
				continue;
			r = fd_error(errno, "pread", fd);
			goto out;
		}
		if (rd == 0)
			break;
		if ((size_t)rd > n - got) {
			r = bad_count("pread", fd, NULL, rd, n - got);
			goto out;
		}
		got += (size_t)rd;
	}
out:
	if (got_r)
		*got_r = got;
	return r;
}

/* ---- 3. fsync, mkdir -p ---- */

static int fsync_retry(int fd)
{
	int rc;

	do
		rc = op_fsync(fd);
	while (rc < 0 && errno == EINTR);
	return rc;
}

int coffer_io_syncfs(int fd, const char *what)
{
	int (*fn)(int) = cur_ops->syncfs ? cur_ops->syncfs : sys_syncfs;

	while (fn(fd) < 0) {
		if (errno != EINTR)
			return coffer_err_set(coffer_err_from_errno(errno), "syncfs %s: %s", what,
			                      strerror(errno));
	}
	return 0;
}

int coffer_io_fsync(int fd)
{
	if (fsync_retry(fd) < 0)
		return fd_error(errno, "fsync", fd);
	return 0;
}

int coffer_io_fdatasync(int fd)
{
	int (*fn)(int) = cur_ops->fdatasync ? cur_ops->fdatasync : sys_fdatasync;

	while (fn(fd) < 0) {
		if (errno != EINTR)
			return fd_error(errno, "fdatasync", fd);
	}
	return 0;
}

int coffer_io_statvfs(const char *path, struct statvfs *sv)
{
	int (*fn)(const char *, struct statvfs *) = cur_ops->statvfs ? cur_ops->statvfs
	                                                             : sys_statvfs;

	while (fn(path, sv) < 0) {
		if (errno != EINTR)
			return path_error(errno, "statvfs", path);
	}
	return 0;
}

uint64_t coffer_io_free_bytes(const char *path)
{
	struct statvfs sv;

	if (coffer_io_statvfs(path, &sv) < 0)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

int coffer_io_fsync_dir(const char *path)
{
	int fd, err, r = 0;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return path_error(errno, "open directory", path);
	/* Some file systems cannot fsync a directory (EINVAL): nothing more can
	 * be done there, and their rename is then as durable as it gets. */
	if (fsync_retry(fd) < 0 && errno != EINVAL) {
		err = errno;
		r = path_error(err, "fsync directory", path);
	}
	close(fd);
	return r;
}

/* The directory holding path: "." for a bare name, "/" for "/x". Appends to
 * dir, which the caller frees. */
static int parent_dir(const char *path, struct coffer_buf *dir)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return coffer_buf_puts(dir, ".");
	while (slash > path && slash[-1] == '/')
		slash--;
	if (slash == path)
		return coffer_buf_puts(dir, "/");
	return coffer_buf_append(dir, path, (size_t)(slash - path));
}

int coffer_io_mkdir_p(const char *path, mode_t mode)
{
	struct coffer_buf prefix = COFFER_BUF_INIT;
	struct coffer_buf parent = COFFER_BUF_INIT;
	struct stat st;
	size_t i, len;
	char *cur;
	int err, r = 0;

	if (!path || !*path)
		return coffer_err_set(COFFER_EINVAL, "mkdir: empty path");
	len = strlen(path);
	r = coffer_buf_append(&prefix, path, len);
	if (r < 0) {
		r = coffer_err_set(r, "mkdir %s: out of memory", path);
		goto out;
	}
	cur = (char *)prefix.data;
	/* Visit every prefix that ends a component ("/a", "/a/b", ...), cutting
	 * the copy in place with a NUL, and create what is missing. */
	for (i = 1; i <= len; i++) {
		if (i < len && (path[i] != '/' || path[i - 1] == '/'))
			continue;
		cur[i] = '\0';
		if (mkdir(cur, mode) == 0) {
			coffer_buf_reset(&parent);
			r = parent_dir(cur, &parent);
			if (r < 0) {
				r = coffer_err_set(r, "mkdir %s: out of memory", path);
				goto out;
			}
			r = coffer_io_fsync_dir(coffer_buf_str(&parent));
			if (r < 0)
				goto out;
		} else {
			/* An existing directory is fine whatever mkdir said about
			 * it (EEXIST, or EACCES/EROFS on a parent we may not
			 * write). */
			err = errno;
			if (stat(cur, &st) < 0 || !S_ISDIR(st.st_mode)) {
				r = path_error(err == EEXIST ? ENOTDIR : err, "mkdir", cur);
				goto out;
			}
		}
		if (i < len)
			cur[i] = '/';
	}
out:
	coffer_buf_free(&prefix);
	coffer_buf_free(&parent);
	return r;
}

/* ---- 4. atomic replacement, whole-file read ---- */

/* 64 random bits for the temporary name; O_EXCL catches the rare clash. */
static uint64_t tmp_suffix(void)
{
	uint64_t v = 0;
	struct timespec ts;

	if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
		return v;
	/* Entropy pool not ready (early boot): uniqueness, not secrecy, is all
	 * the name needs. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^
	       ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&v;
}

int coffer_io_write_file_atomic(const char *path, const void *p, size_t n, mode_t mode)
{
	struct coffer_buf tmp = COFFER_BUF_INIT;
	struct coffer_buf dir = COFFER_BUF_INIT;
	int fd = -1, attempt, err, r = 0;
	int tmp_exists = 0;

	if (!path || !*path)
		return coffer_err_set(COFFER_EINVAL, "write: empty path");
	r = parent_dir(path, &dir);
	if (r < 0) {
		r = coffer_err_set(r, "write %s: out of memory", path);
		goto out;
	}
	for (attempt = 0; attempt < 16; attempt++) {
		coffer_buf_reset(&tmp);
		coffer_buf_printf(&tmp, "%s.tmp.%016llx", path, (unsigned long long)tmp_suffix());
		r = coffer_buf_ok(&tmp);
		if (r < 0) {
			r = coffer_err_set(r, "write %s: out of memory", path);
			goto out;
		}
		fd = open(coffer_buf_str(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		r = path_error(errno, "create", coffer_buf_str(&tmp));
		goto out;
	}
	tmp_exists = 1;

	r = write_all_named(fd, p, n, coffer_buf_str(&tmp));
	if (r < 0)
		goto out;
	if (fsync_retry(fd) < 0) {
		r = path_error(errno, "fsync", coffer_buf_str(&tmp));
		goto out;
	}
	err = close(fd);
	fd = -1;
	if (err < 0) {
		r = path_error(errno, "close", coffer_buf_str(&tmp));
		goto out;
	}
	if (rename(coffer_buf_str(&tmp), path) < 0) {
		r = path_error(errno, "rename", path);
		goto out;
	}
	tmp_exists = 0;
	r = coffer_io_fsync_dir(coffer_buf_str(&dir));
out:
	if (fd >= 0)
		close(fd);
	if (tmp_exists)
		unlink(coffer_buf_str(&tmp));
	coffer_buf_free(&tmp);
	coffer_buf_free(&dir);
	return r;
}

int coffer_io_read_file(const char *path, size_t max, struct coffer_buf *out)
{
	size_t old_len = out->len, total = 0, want, got;
	struct stat st;
	int fd, r = 0;

	/* O_NONBLOCK so that opening a FIFO by mistake cannot hang; it has no
	 * effect on the regular files we accept. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return path_error(errno, "open", path);
	if (fstat(fd, &st) < 0) {
		r = path_error(errno, "stat", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = coffer_err_set(COFFER_EINVAL, "read %s: not a regular file", path);
		goto out;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > max) {
		r = coffer_err_set(COFFER_ELIMIT, "read %s: file is larger than %zu bytes", path,
		                   max);
		goto out;
	}
	/* Read to EOF rather than trusting st_size (the file may change under
	 * us), but never past max: one byte beyond it proves the excess. */
	for (;;) {
		want = max - total < 65536 ? max - total + 1 : 65536;
		r = coffer_buf_reserve(out, want);
		if (r < 0) {
			r = coffer_err_set(r, "read %s: out of memory", path);
			goto out;
		}
		r = read_full_named(fd, out->data + out->len, want, &got, path);
		if (r < 0)
			goto out;
		out->len += got;
		out->data[out->len] = '\0';
		total += got;
		if (total > max) {
			r = coffer_err_set(COFFER_ELIMIT, "read %s: file is larger than %zu bytes",
			                   path, max);
			goto out;
		}
		if (got < want)
			break;
	}
out:
	if (r < 0 && out->data) {
		out->len = old_len;
		out->data[old_len] = '\0';
	}
	close(fd);
	return r;
}
