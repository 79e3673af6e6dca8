/*
 * archive.c: the libarchive adapter: tar (pax) writing, plain or zstd (see
 * archive.h). The only file that includes <archive.h>.
 *
 * Sections: target files (the anonymous temporary file and its linking into
 * place); libarchive's write callbacks and error translation; the entry API.
 *
 * Error translation: libarchive reports failures as ARCHIVE_FATAL/FAILED with
 * an errno and a string. Failures of the target happen in our own write
 * callback, which keeps the COFFER_E* code and detail from engine/io.c and
 * hands libarchive only a short copy; translate() prefers the kept code, so
 * the caller sees "archive FILE: write: No space left on device" as
 * COFFER_ENOSPACE, not a libarchive string. Other failures (compressor,
 * header encoding) map errno through coffer_err_from_errno(), else
 * COFFER_EIO.
 *
 * Crash safety of a path target: data goes to an O_TMPFILE file in the
 * target's directory, which has no name until coffer_archive_finish() has
 * fsynced it and linked it (linkat through /proc/self/fd, which refuses to
 * replace an existing name), then fsynced the directory. A process killed at
 * any point before leaves no file. Without O_TMPFILE support the file is
 * "<path>.tmp" (O_EXCL, so a stale one is reported, not overwritten), renamed
 * with RENAME_NOREPLACE.
 *
 * Loading: libarchive is opened with dlopen() on first use instead of being
 * linked. It brings libxml2, ICU and libstdc++ along, whose relocations would
 * add tens of milliseconds to every `coffer` command although only tar
 * writing needs them. The functions keep their names and exact types (taken
 * from libarchive's own header with __typeof__), so the code below reads as
 * if linked.
 */
#include "archive.h"

#include "engine/buf.h"
#include "engine/errors.h"
#include "engine/io.h"

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_BUF (64u * 1024u)

/* ---- loading libarchive ---- */

/* clang-format off */
#define LA_FUNCS(X)                                                                           \
	X(archive_write_new) X(archive_write_set_format_pax) X(archive_write_add_filter_zstd)  \
	X(archive_write_add_filter_none) X(archive_write_set_bytes_in_last_block)             \
	X(archive_write_open2) X(archive_write_header) X(archive_write_data)                  \
	X(archive_write_finish_entry) X(archive_write_close) X(archive_write_free)            \
	X(archive_error_string) X(archive_errno) X(archive_set_error) X(archive_entry_new)    \
	X(archive_entry_free) X(archive_entry_clear) X(archive_entry_copy_pathname)           \
	X(archive_entry_set_filetype) X(archive_entry_set_perm) X(archive_entry_set_size)     \
	X(archive_entry_set_mtime) X(archive_entry_set_uid) X(archive_entry_set_gid)
/* clang-format on */

#define LA_POINTER(name) static __typeof__(&name) la_##name;
LA_FUNCS(LA_POINTER)
#undef LA_POINTER

static pthread_once_t la_once = PTHREAD_ONCE_INIT;
static int la_loaded;
static char la_error[256];

static void la_load_once(void)
{
	static const char *const names[] = { "libarchive.so.13", "libarchive.so" };
	void *h = NULL;

	for (size_t i = 0; h == NULL && i < sizeof names / sizeof names[0]; i++)
		h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(la_error, sizeof la_error, "%s", dlerror());
		return;
	}
#define LA_SYM(name)                                                                \
	if ((la_##name = (__typeof__(la_##name))dlsym(h, #name)) == NULL) {         \
		snprintf(la_error, sizeof la_error, "libarchive has no %s", #name); \
		return;                                                             \
	}
	LA_FUNCS(LA_SYM)
#undef LA_SYM
	la_loaded = 1;
}

static int la_load(void)
{
	pthread_once(&la_once, la_load_once);
	if (!la_loaded)
		return coffer_err_set(COFFER_EIO,
		                      "archive: cannot load libarchive (package "
		                      "libarchive13): %s",
		                      la_error);
	return 0;
}

/* From here on the names call through the loaded pointers. */
#define archive_write_new la_archive_write_new
#define archive_write_set_format_pax la_archive_write_set_format_pax
#define archive_write_add_filter_zstd la_archive_write_add_filter_zstd
#define archive_write_add_filter_none la_archive_write_add_filter_none
#define archive_write_set_bytes_in_last_block la_archive_write_set_bytes_in_last_block
#define archive_write_open2 la_archive_write_open2
#define archive_write_header la_archive_write_header
#define archive_write_data la_archive_write_data
#define archive_write_finish_entry la_archive_write_finish_entry
#define archive_write_close la_archive_write_close
#define archive_write_free la_archive_write_free
#define archive_error_string la_archive_error_string
#define archive_errno la_archive_errno
#define archive_set_error la_archive_set_error
#define archive_entry_new la_archive_entry_new
#define archive_entry_free la_archive_entry_free
#define archive_entry_clear la_archive_entry_clear
#define archive_entry_copy_pathname la_archive_entry_copy_pathname
#define archive_entry_set_filetype la_archive_entry_set_filetype
#define archive_entry_set_perm la_archive_entry_set_perm
#define archive_entry_set_size la_archive_entry_set_size
#define archive_entry_set_mtime la_archive_entry_set_mtime
#define archive_entry_set_uid la_archive_entry_set_uid
#define archive_entry_set_gid la_archive_entry_set_gid

struct coffer_archive {
	struct archive *ar;
	struct archive_entry *entry; /* reused for every header */
	int fd;
	int own_fd; /* close fd at free */
	int failed;
	int finished;
	char *name;          /* for details: the path, "standard output", ... */
	char *path;          /* target path (NULL: fd or stdout) */
	char *tmp_path;      /* fallback temporary name, or NULL (O_TMPFILE) */
	int tmpfile;         /* fd is an O_TMPFILE to link at finish */
	int in_file;         /* between file_begin and file_end */
	uint64_t left;       /* bytes still due in the current file */
	uint64_t written;    /* bytes handed to the target */
	int io_rc;           /* error kept from the write callback */
	int discard;         /* abandoning: the write callback drops data */
	unsigned char *copy; /* COPY_BUF, for add_file */
};

/* ---- errors ---- */

/* Turns the state of a after a libarchive failure into a COFFER code with
 * a detail naming the archive and what was being done. */
static int translate(struct coffer_archive *a, const char *what)
{
	const char *msg;
	int err, rc;

	a->failed = 1;
	if (a->io_rc < 0)
		return coffer_err_set(a->io_rc, "archive %s: %s: %s", a->name, what,
		                      archive_error_string(a->ar) ? archive_error_string(a->ar)
		                                                  : coffer_strerror(a->io_rc));
	err = archive_errno(a->ar);
	msg = archive_error_string(a->ar);
	rc = err > 0 ? coffer_err_from_errno(err) : COFFER_EIO;
	if (rc == -ENOMEM)
		rc = COFFER_ENOMEM;
	return coffer_err_set(rc, "archive %s: %s: %s", a->name, what,
	                      msg ? msg : (err > 0 ? strerror(err) : "libarchive failed"));
}

static int check_usable(struct coffer_archive *a)
{
	if (a->failed || a->finished)
		return coffer_err_set(COFFER_EINVAL, "archive %s: %s", a->name,
		                      a->finished ? "already finished" : "unusable after an error");
	return 0;
}

/* ---- libarchive callbacks ---- */

static int cb_open(struct archive *ar, void *arg)
{
	return ARCHIVE_OK;
}

static la_ssize_t cb_write(struct archive *ar, void *arg, const void *p, size_t n)
{
	struct coffer_archive *a = arg;
	int rc;

	if (a->discard)
		return (la_ssize_t)n;
	rc = coffer_io_write_all(a->fd, p, n);
	if (rc < 0) {
		a->io_rc = rc;
		/* keep the detail: libarchive prints its own copy */
		archive_set_error(ar, rc > -4096 ? -rc : EIO, "%s", coffer_errmsg());
		return -1;
	}
	a->written += n;
	return (la_ssize_t)n;
}

static int cb_close(struct archive *ar, void *arg)
{
	return ARCHIVE_OK;
}

/* ---- setup ---- */

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int start(struct coffer_archive *a, unsigned flags)
{
	int zstd = (flags & COFFER_ARCHIVE_ZSTD) ||
	           ((flags & COFFER_ARCHIVE_BY_NAME) && a->path && ends_with(a->path, ".zst"));

	if (la_load() < 0)
		return coffer_errcode();
	a->ar = archive_write_new();
	a->entry = archive_entry_new();
	a->copy = malloc(COPY_BUF);
	if (a->ar == NULL || a->entry == NULL || a->copy == NULL)
		return coffer_err_set(COFFER_ENOMEM, "archive %s: out of memory", a->name);
	/* pax interchange: ustar headers, plus pax records for what ustar
	 * cannot hold (long names, sub-second mtimes) */
	if (archive_write_set_format_pax(a->ar) != ARCHIVE_OK)
		return translate(a, "setting the format");
	if (zstd && archive_write_add_filter_zstd(a->ar) != ARCHIVE_OK)
		return translate(a, "setting up zstd");
	if (!zstd && archive_write_add_filter_none(a->ar) != ARCHIVE_OK)
		return translate(a, "setting up");
	/* tar pads its end to a 10 KiB block; a compressed stream must end
	 * with the compressor's frame, or zstd -d reports trailing garbage */
	if (zstd && archive_write_set_bytes_in_last_block(a->ar, 1) != ARCHIVE_OK)
		return translate(a, "setting up");
	if (archive_write_open2(a->ar, a, cb_open, cb_write, cb_close, NULL) != ARCHIVE_OK)
		return translate(a, "opening");
	return 0;
}

static struct coffer_archive *alloc_archive(const char *name)
{
	struct coffer_archive *a = calloc(1, sizeof *a);

	if (a == NULL)
		return NULL;
	a->fd = -1;
	a->name = strdup(name);
	if (a->name == NULL) {
		free(a);
		return NULL;
	}
	return a;
}

int coffer_archive_open_fd(int fd, const char *name, unsigned flags, struct coffer_archive **a_r)
{
	struct coffer_archive *a;
	int rc;

	*a_r = NULL;
	a = alloc_archive(name);
	if (a == NULL)
		return coffer_err_set(COFFER_ENOMEM, "archive %s: out of memory", name);
	a->fd = fd;
	rc = start(a, flags & ~COFFER_ARCHIVE_BY_NAME);
	if (rc < 0) {
		coffer_archive_free(&a);
		return rc;
	}
	*a_r = a;
	return 0;
}

/* The directory part of path ("." if none), into dir. */
static int dir_of(const char *path, struct coffer_buf *dir)
{
	const char *slash = strrchr(path, '/');

	coffer_buf_reset(dir);
	if (slash == NULL)
		coffer_buf_putc(dir, '.');
	else if (slash == path)
		coffer_buf_putc(dir, '/');
	else
		coffer_buf_append(dir, path, (size_t)(slash - path));
	return coffer_buf_ok(dir) < 0 ? coffer_err_set(COFFER_ENOMEM, "archive: out of memory") : 0;
}

static int create_target(struct coffer_archive *a)
{
	struct coffer_buf dir = COFFER_BUF_INIT;
	struct stat sb;
	int rc = 0, err;

	if (stat(a->path, &sb) == 0 && (S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode))) {
		a->fd = open(a->path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (a->fd < 0)
			goto fail_errno;
		a->own_fd = 1;
		goto out;
	}
	if (lstat(a->path, &sb) == 0) {
		rc = coffer_err_set(COFFER_EEXIST,
		                    "archive %s: the file exists; refusing to "
		                    "overwrite it",
		                    a->path);
		goto out;
	}
	if (errno != ENOENT)
		goto fail_errno;
	rc = dir_of(a->path, &dir);
	if (rc < 0)
		goto out;
	a->fd = open(coffer_buf_str(&dir), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (a->fd >= 0) {
		a->tmpfile = 1;
		a->own_fd = 1;
		goto out;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
		err = errno;
		rc = coffer_err_set(coffer_err_from_errno(err),
		                    "archive %s: cannot create it in %s: %s", a->path,
		                    coffer_buf_str(&dir), strerror(err));
		goto out;
	}
	if (asprintf(&a->tmp_path, "%s.tmp", a->path) < 0) {
		a->tmp_path = NULL;
		rc = coffer_err_set(COFFER_ENOMEM, "archive: out of memory");
		goto out;
	}
	a->fd = open(a->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (a->fd < 0) {
		err = errno;
		rc = coffer_err_set(coffer_err_from_errno(err),
		                    "archive %s: cannot create %s: %s%s", a->path, a->tmp_path,
		                    strerror(err),
		                    err == EEXIST ? " (left by an interrupted export? remove it)"
		                                  : "");
		free(a->tmp_path);
		a->tmp_path = NULL;
		goto out;
	}
	a->own_fd = 1;
	goto out;
fail_errno:
	err = errno;
	rc = coffer_err_set(coffer_err_from_errno(err), "archive %s: cannot create it: %s", a->path,
	                    strerror(err));
out:
	coffer_buf_free(&dir);
	return rc;
}

int coffer_archive_open(const char *path, unsigned flags, struct coffer_archive **a_r)
{
	struct coffer_archive *a;
	int rc;

	*a_r = NULL;
	if (path[0] == '\0')
		return coffer_err_set(COFFER_EINVAL, "archive: empty file name");
	a = alloc_archive(strcmp(path, "-") == 0 ? "(standard output)" : path);
	if (a == NULL)
		return coffer_err_set(COFFER_ENOMEM, "archive %s: out of memory", path);
	if (strcmp(path, "-") == 0) {
		if (isatty(STDOUT_FILENO)) {
			rc = coffer_err_set(COFFER_EINVAL,
			                    "archive: refusing to write an archive to "
			                    "a terminal (redirect standard output)");
			goto fail;
		}
		a->fd = STDOUT_FILENO;
		flags &= ~COFFER_ARCHIVE_BY_NAME;
	} else {
		a->path = strdup(path);
		if (a->path == NULL) {
			rc = coffer_err_set(COFFER_ENOMEM, "archive %s: out of memory", path);
			goto fail;
		}
		rc = create_target(a);
		if (rc < 0)
			goto fail;
	}
	rc = start(a, flags);
	if (rc < 0)
		goto fail;
	*a_r = a;
	return 0;
fail:
	coffer_archive_free(&a);
	return rc;
}

/* ---- entries ---- */

static void set_times(struct archive_entry *e, int64_t mtime_ns)
{
	int64_t sec = mtime_ns / 1000000000LL, nsec = mtime_ns % 1000000000LL;

	if (nsec < 0) {
		nsec += 1000000000LL;
		sec -= 1;
	}
	archive_entry_set_mtime(e, (time_t)sec, (long)nsec);
}

static int header(struct coffer_archive *a, const char *name, mode_t type, mode_t mode,
                  int64_t mtime_ns, uint64_t size)
{
	int r;

	if (name[0] == '\0' || name[0] == '/')
		return coffer_err_set(COFFER_EINVAL, "archive %s: entry name '%s' is not relative",
		                      a->name, name);
	if (size > INT64_MAX)
		return coffer_err_set(COFFER_EINVAL, "archive %s: %s: size too large", a->name,
		                      name);
	archive_entry_clear(a->entry);
	archive_entry_copy_pathname(a->entry, name);
	archive_entry_set_filetype(a->entry, type);
	archive_entry_set_perm(a->entry, mode & 07777);
	archive_entry_set_uid(a->entry, geteuid());
	archive_entry_set_gid(a->entry, getegid());
	archive_entry_set_size(a->entry, (la_int64_t)size);
	set_times(a->entry, mtime_ns);
	r = archive_write_header(a->ar, a->entry);
	if (r < ARCHIVE_WARN)
		return translate(a, name);
	return 0;
}

int coffer_archive_add_dir(struct coffer_archive *a, const char *name, mode_t mode,
                           int64_t mtime_ns)
{
	int rc = check_usable(a);

	if (rc == 0 && a->in_file)
		rc = coffer_err_set(COFFER_EINVAL, "archive %s: a file entry is still open",
		                    a->name);
	if (rc == 0)
		rc = header(a, name, AE_IFDIR, mode, mtime_ns, 0);
	return rc;
}

int coffer_archive_file_begin(struct coffer_archive *a, const char *name, mode_t mode,
                              int64_t mtime_ns, uint64_t size)
{
	int rc = check_usable(a);

	if (rc == 0 && a->in_file)
		rc = coffer_err_set(COFFER_EINVAL, "archive %s: a file entry is still open",
		                    a->name);
	if (rc == 0)
		rc = header(a, name, AE_IFREG, mode, mtime_ns, size);
	if (rc == 0) {
		a->in_file = 1;
		a->left = size;
	}
	return rc;
}

int coffer_archive_write(struct coffer_archive *a, const void *p, size_t n)
{
	const unsigned char *c = p;
	la_ssize_t w;
	int rc = check_usable(a);

	if (rc < 0)
		return rc;
	if (!a->in_file)
		return coffer_err_set(COFFER_EINVAL, "archive %s: write outside a file entry",
		                      a->name);
	if (n > a->left) {
		a->failed = 1;
		return coffer_err_set(COFFER_EINVAL, "archive %s: more data than the size declared",
		                      a->name);
	}
	while (n > 0) {
		w = archive_write_data(a->ar, c, n);
		if (w < 0)
			return translate(a, "writing");
		if (w == 0) {
			a->failed = 1;
			return coffer_err_set(COFFER_EIO, "archive %s: libarchive accepted no data",
			                      a->name);
		}
		c += w;
		n -= (size_t)w;
		a->left -= (uint64_t)w;
	}
	return 0;
}

int coffer_archive_file_end(struct coffer_archive *a)
{
	int rc = check_usable(a);

	if (rc < 0)
		return rc;
	if (!a->in_file)
		return coffer_err_set(COFFER_EINVAL, "archive %s: no file entry is open", a->name);
	if (a->left != 0) {
		/* the entry would be padded with zeros: never a faithful copy */
		a->failed = 1;
		return coffer_err_set(COFFER_EINVAL,
		                      "archive %s: %llu bytes short of the size "
		                      "declared",
		                      a->name, (unsigned long long)a->left);
	}
	a->in_file = 0;
	if (archive_write_finish_entry(a->ar) < ARCHIVE_WARN)
		return translate(a, "finishing an entry");
	return 0;
}

int coffer_archive_add_file(struct coffer_archive *a, const char *name, mode_t mode,
                            int64_t mtime_ns, uint64_t size, coffer_archive_read_fn fn, void *arg)
{
	size_t got;
	int rc;

	rc = coffer_archive_file_begin(a, name, mode, mtime_ns, size);
	while (rc == 0) {
		rc = fn(arg, a->copy, COPY_BUF, &got);
		if (rc < 0) {
			a->failed = 1;
			break;
		}
		if (got == 0)
			break;
		rc = coffer_archive_write(a, a->copy, got);
	}
	if (rc == 0)
		rc = coffer_archive_file_end(a);
	return rc;
}

/* ---- the end ---- */

static int link_into_place(struct coffer_archive *a)
{
	struct coffer_buf dir = COFFER_BUF_INIT;
	char proc[64];
	int rc, err;

	if (!a->tmpfile && a->tmp_path == NULL)
		return 0; /* a FIFO or device: nothing to make durable */
	rc = coffer_io_fsync(a->fd);
	if (rc < 0)
		return coffer_err_prefix(rc, "archive %s: ", a->path);
	if (a->tmpfile) {
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", a->fd);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, a->path, AT_SYMLINK_FOLLOW) < 0 &&
		    (errno != ENOENT || linkat(a->fd, "", AT_FDCWD, a->path, AT_EMPTY_PATH) < 0)) {
			err = errno;
			return coffer_err_set(coffer_err_from_errno(err),
			                      "archive %s: cannot link it "
			                      "into place: %s",
			                      a->path, strerror(err));
		}
		a->tmpfile = 0;
	} else if (a->tmp_path) {
		if (renameat2(AT_FDCWD, a->tmp_path, AT_FDCWD, a->path, RENAME_NOREPLACE) < 0) {
			err = errno;
			return coffer_err_set(coffer_err_from_errno(err),
			                      "archive %s: cannot rename "
			                      "%s to it: %s",
			                      a->path, a->tmp_path, strerror(err));
		}
		free(a->tmp_path);
		a->tmp_path = NULL;
	}
	rc = dir_of(a->path, &dir);
	if (rc == 0)
		rc = coffer_io_fsync_dir(coffer_buf_str(&dir));
	coffer_buf_free(&dir);
	if (rc < 0) {
		/* not durable: take the name back, so the failure leaves nothing
		 * and a retry is not refused as "exists" */
		unlink(a->path);
		coffer_err_prefix(rc, "archive %s: ", a->path);
	}
	return rc;
}

int coffer_archive_finish(struct coffer_archive *a)
{
	int rc = check_usable(a);

	if (rc < 0)
		return rc;
	if (a->in_file) {
		a->failed = 1;
		return coffer_err_set(COFFER_EINVAL, "archive %s: a file entry is still open",
		                      a->name);
	}
	if (archive_write_close(a->ar) != ARCHIVE_OK)
		return translate(a, "finishing");
	if (a->path) {
		rc = link_into_place(a);
		if (rc < 0) {
			a->failed = 1;
			return rc;
		}
	}
	a->finished = 1;
	return 0;
}

uint64_t coffer_archive_bytes_written(const struct coffer_archive *a)
{
	return a->written;
}

void coffer_archive_free(struct coffer_archive **ap)
{
	struct coffer_archive *a = ap ? *ap : NULL;

	if (a == NULL)
		return;
	if (a->ar) {
		/* Abandoning: close into the void (so libarchive frees its
		 * filter buffers, which archive_write_free() skips in its
		 * FATAL state), then free. */
		if (!a->finished) {
			a->discard = 1;
			archive_write_close(a->ar);
		}
		archive_write_free(a->ar);
	}
	if (a->entry) /* NULL too when libarchive was never loaded */
		archive_entry_free(a->entry);
	if (a->tmp_path && !a->finished)
		unlink(a->tmp_path);
	if (a->own_fd && a->fd >= 0)
		close(a->fd);
	free(a->tmp_path);
	free(a->path);
	free(a->name);
	free(a->copy);
	free(a);
	*ap = NULL;
}
