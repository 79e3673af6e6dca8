/*
 * archive.h: writing tar archives (the libarchive adapter). The only file
 * that includes <archive.h> is archive.c; libarchive's codes and messages do
 * not pass this interface: failures are COFFER_E* (or -errno) with a detail
 * naming the archive.
 *
 * An archive is written as POSIX pax (ustar headers, with pax extended
 * headers where ustar cannot say it: long names, nanosecond mtimes), plain
 * or zstd-compressed. Entries are added in order: directories, and regular
 * files whose size is declared up front and whose data is then streamed in
 * any number of writes (memory stays bounded by libarchive's block and the
 * compressor's window, whatever the file sizes).
 *
 * Targets:
 *   - a path: written to an anonymous file in the target's directory
 *     (O_TMPFILE; where the file system lacks it, to "<path>.tmp", created
 *     exclusively) and linked to path by coffer_archive_finish() after an
 *     fsync, followed by an fsync of the directory. So path appears only
 *     complete and durable; an archive freed without finishing leaves nothing
 *     (with the ".tmp" fallback, a kill -9 may leave "<path>.tmp"). An
 *     existing path is never overwritten (COFFER_EEXIST), except a FIFO or a
 *     character device, which is written to directly.
 *   - "-": standard output, streamed (a pipe, a terminal refused). Nothing
 *     can be taken back there: a failure midway leaves a truncated stream,
 *     which tar readers report as such.
 *   - a descriptor the caller owns: coffer_archive_open_fd().
 *
 * A struct coffer_archive is used by one thread at a time.
 */
#ifndef COFFER_MAILDIR_ARCHIVE_H
#define COFFER_MAILDIR_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
	COFFER_ARCHIVE_ZSTD = 1u << 0,    /* compress with zstd */
	COFFER_ARCHIVE_BY_NAME = 1u << 1, /* zstd iff the path ends in ".zst" */
};

struct coffer_archive;

/* Opens a tar writer on path ("-" = standard output). flags: COFFER_ARCHIVE_*.
 * COFFER_EEXIST if path exists (and is not a FIFO or character device);
 * COFFER_EPERM, COFFER_ENOTFOUND (missing directory) and other -errno codes
 * when it cannot be created; COFFER_EINVAL for "-" on a terminal. */
int coffer_archive_open(const char *path, unsigned flags, struct coffer_archive **a_r);
/* The same on fd, which the caller keeps owning (and closes after free).
 * name is used in error details. */
int coffer_archive_open_fd(int fd, const char *name, unsigned flags, struct coffer_archive **a_r);

/* Adds a directory entry (name without or with a trailing '/'). mtime_ns is
 * nanoseconds since the epoch. */
int coffer_archive_add_dir(struct coffer_archive *a, const char *name, mode_t mode,
                           int64_t mtime_ns);

/* Starts a regular file of exactly size bytes; its data follows through
 * coffer_archive_write() and ends with coffer_archive_file_end(), which fails
 * (COFFER_EINVAL) if fewer bytes came. Writing past size is COFFER_EINVAL. */
int coffer_archive_file_begin(struct coffer_archive *a, const char *name, mode_t mode,
                              int64_t mtime_ns, uint64_t size);
int coffer_archive_write(struct coffer_archive *a, const void *p, size_t n);
int coffer_archive_file_end(struct coffer_archive *a);

/* A whole file from a callback: fn fills up to cap bytes of buf and sets
 * *n_r (0 only at the end); its errors are passed through. */
typedef int (*coffer_archive_read_fn)(void *arg, void *buf, size_t cap, size_t *n_r);
int coffer_archive_add_file(struct coffer_archive *a, const char *name, mode_t mode,
                            int64_t mtime_ns, uint64_t size, coffer_archive_read_fn fn, void *arg);

/* Writes the end of the archive and flushes the compressor; for a path,
 * fsyncs, links the file into place and fsyncs its directory. After a
 * failure the archive can only be freed (which discards it). */
int coffer_archive_finish(struct coffer_archive *a);
/* Frees; an archive not finished is discarded (its temporary file removed).
 * Accepts NULL and *a == NULL. */
void coffer_archive_free(struct coffer_archive **a);

/* Bytes handed to the target so far (compressed size). */
uint64_t coffer_archive_bytes_written(const struct coffer_archive *a);

#endif
