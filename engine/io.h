/*
 * io.h: file I/O helpers, routed through one replaceable table of system
 * calls so tests can inject EIO, ENOSPC and short writes (docs/reliability.md).
 *
 * Every helper retries EINTR and short transfers, and maps errno through
 * coffer_err_from_errno() with a detail naming the path (or "fd N") and the
 * operation. Crash-safe replacement of a whole file is
 * coffer_io_write_file_atomic(): temporary name in the same directory, write,
 * fsync, rename, fsync the directory.
 */
#ifndef COFFER_IO_H
#define COFFER_IO_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct statvfs;

struct coffer_io_ops {
	ssize_t (*write)(int fd, const void *p, size_t n);
	ssize_t (*pwrite)(int fd, const void *p, size_t n, off_t off);
	ssize_t (*read)(int fd, void *p, size_t n);
	ssize_t (*pread)(int fd, void *p, size_t n, off_t off);
	int (*fsync)(int fd);
	int (*syncfs)(int fd);    /* NULL in a fake table: the system call */
	int (*fdatasync)(int fd); /* likewise */
	/* free space, for the space reserve's checks: a fake can play a full
	 * disk (likewise) */
	int (*statvfs)(const char *path, struct statvfs *sv);
};

/* Replace the table (NULL restores the system calls). For tests only; not
 * thread-safe against concurrent I/O. */
void coffer_io_set_ops(const struct coffer_io_ops *ops);
const struct coffer_io_ops *coffer_io_get_ops(void);

int coffer_io_write_all(int fd, const void *p, size_t n);
int coffer_io_pwrite_all(int fd, const void *p, size_t n, off_t off);
/* Reads until n bytes or EOF; *got_r < n only at EOF. */
int coffer_io_read_full(int fd, void *p, size_t n, size_t *got_r);
int coffer_io_pread_full(int fd, void *p, size_t n, off_t off, size_t *got_r);
int coffer_io_fsync(int fd);
/* fdatasync(2): the data and the size, not the other metadata (the import
 * journal's one sync per batch). */
int coffer_io_fdatasync(int fd);
/* syncfs(2) on the file system of fd: makes every write and directory entry
 * made so far durable at once (the bulk writers' single durability point).
 * what names the place in the detail. */
int coffer_io_syncfs(int fd, const char *what);
/* statvfs(2) of path (EINTR retried). */
int coffer_io_statvfs(const char *path, struct statvfs *sv);
/* Bytes free to unprivileged writers on path's file system (f_bavail: ext4
 * keeps clusters back even from root), through the table; UINT64_MAX when
 * statvfs fails. */
uint64_t coffer_io_free_bytes(const char *path);
/* Opens the directory read-only, fsyncs it, closes it. */
int coffer_io_fsync_dir(const char *path);
/* mkdir -p with mode for each created component; existing dirs are fine. */
int coffer_io_mkdir_p(const char *path, mode_t mode);
/* Atomic, durable replacement of path with n bytes of p, created with mode. */
int coffer_io_write_file_atomic(const char *path, const void *p, size_t n, mode_t mode);
/* Reads a whole regular file into out (appended); COFFER_ELIMIT past max. */
int coffer_io_read_file(const char *path, size_t max, struct coffer_buf *out);

#endif
