/*
 * test-io.c: the I/O helpers, with faults injected through coffer_io_set_ops:
 * EIO and ENOSPC on write, short transfers, EINTR, failing fsync, and the
 * guarantee that a failed atomic write leaves the old file intact.
 */
#include "engine/errors.h"
#include "engine/io.h"
#include "tests/tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the fault injector ---- */

static struct {
	size_t max_chunk;  /* cap on each transfer; 0 = none */
	int eintr_odd;     /* odd-numbered calls fail with EINTR */
	int fail_errno;    /* transfers fail with this errno ... */
	size_t fail_after; /* ... once this many bytes went through */
	int zero_write;    /* writes return 0 */
	int fsync_errno;   /* fsync fails with this errno */
	int fsync_eintr;   /* this many fsyncs fail with EINTR first */
	size_t moved;      /* bytes transferred so far */
	unsigned calls;    /* transfer calls */
	unsigned fsyncs;   /* fsync calls */
} f;

static void faults_reset(void)
{
	memset(&f, 0, sizeof f);
}

/* Decides the fate of one call: -1 with errno, or the count to pass on. */
static ssize_t fault(size_t n)
{
	f.calls++;
	if (f.eintr_odd && f.calls % 2 == 1) {
		errno = EINTR;
		return -1;
	}
	if (f.fail_errno && f.moved >= f.fail_after) {
		errno = f.fail_errno;
		return -1;
	}
	if (f.fail_errno && n > f.fail_after - f.moved)
		n = f.fail_after - f.moved;
	if (f.max_chunk && n > f.max_chunk)
		n = f.max_chunk;
	return (ssize_t)n;
}

static ssize_t fake_write(int fd, const void *p, size_t n)
{
	ssize_t k = fault(n), w;

	if (k < 0)
		return k;
	if (f.zero_write)
		return 0;
	w = write(fd, p, (size_t)k);
	if (w > 0)
		f.moved += (size_t)w;
	return w;
}

static ssize_t fake_pwrite(int fd, const void *p, size_t n, off_t off)
{
	ssize_t k = fault(n), w;

	if (k < 0)
		return k;
	w = pwrite(fd, p, (size_t)k, off);
	if (w > 0)
		f.moved += (size_t)w;
	return w;
}

static ssize_t fake_read(int fd, void *p, size_t n)
{
	ssize_t k = fault(n), r;

	if (k < 0)
		return k;
	r = read(fd, p, (size_t)k);
	if (r > 0)
		f.moved += (size_t)r;
	return r;
}

static ssize_t fake_pread(int fd, void *p, size_t n, off_t off)
{
	ssize_t k = fault(n), r;

	if (k < 0)
		return k;
	r = pread(fd, p, (size_t)k, off);
	if (r > 0)
		f.moved += (size_t)r;
	return r;
}

static int fake_fsync(int fd)
{
	f.fsyncs++;
	if (f.fsync_eintr > 0) {
		f.fsync_eintr--;
		errno = EINTR;
		return -1;
	}
	if (f.fsync_errno) {
		errno = f.fsync_errno;
		return -1;
	}
	return fsync(fd);
}

static const struct coffer_io_ops fake_ops = {
	.write = fake_write,
	.pwrite = fake_pwrite,
	.read = fake_read,
	.pread = fake_pread,
	.fsync = fake_fsync,
};

/* ---- helpers ---- */

static char *path_in(const char *name)
{
	static char buf[8][4400];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, sizeof buf[0], "%s/%s", tap_tmpdir(), name);
	return p;
}

static unsigned char pattern[100000];

static void fill_pattern(void)
{
	size_t i;

	for (i = 0; i < sizeof pattern; i++)
		pattern[i] = (unsigned char)(i * 7 + i / 251);
}

/* The whole file, read with plain system calls. */
static size_t slurp(const char *path, unsigned char *out, size_t cap)
{
	int fd = open(path, O_RDONLY);
	size_t got = 0;
	ssize_t r;

	if (fd < 0)
		return (size_t)-1;
	while (got < cap && (r = read(fd, out + got, cap - got)) > 0)
		got += (size_t)r;
	close(fd);
	return got;
}

static int file_is(const char *path, const void *want, size_t n)
{
	static unsigned char got[200000];
	size_t len = slurp(path, got, sizeof got);

	return len == n && memcmp(got, want, n) == 0;
}

static int count_tmp_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp."))
			n++;
	closedir(d);
	return n;
}

static int new_file(const char *name)
{
	return open(path_in(name), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

/* ---- tests ---- */

static void test_ops_table(void)
{
	const struct coffer_io_ops *sys = coffer_io_get_ops();
	static const struct coffer_io_ops partial = { .fsync = fake_fsync };
	int fd;

	ok(sys && sys->write && sys->pwrite && sys->read && sys->pread && sys->fsync,
	   "default table is complete");
	coffer_io_set_ops(&fake_ops);
	ok(coffer_io_get_ops() == &fake_ops, "set_ops installs a table");
	coffer_io_set_ops(NULL);
	ok(coffer_io_get_ops() == sys, "set_ops(NULL) restores the system calls");

	/* A partial table: NULL members fall back to the system calls. */
	faults_reset();
	coffer_io_set_ops(&partial);
	fd = new_file("partial");
	ok(coffer_io_write_all(fd, "abc", 3) == 0 && coffer_io_fsync(fd) == 0,
	   "partial table works");
	ok(f.fsyncs == 1 && f.calls == 0, "its fsync was used, the write fell back");
	close(fd);
	coffer_io_set_ops(NULL);
}

static void test_write_all(void)
{
	int fd, r;

	fd = new_file("w");
	ok(coffer_io_write_all(fd, pattern, sizeof pattern) == 0, "write_all");
	ok(coffer_io_write_all(fd, pattern, 0) == 0, "write_all of 0 bytes");
	close(fd);
	ok(file_is(path_in("w"), pattern, sizeof pattern), "content written");

	coffer_io_set_ops(&fake_ops);

	faults_reset();
	f.max_chunk = 3;
	fd = new_file("w-short");
	ok(coffer_io_write_all(fd, pattern, 1000) == 0, "short writes are completed");
	ok(f.calls == 334, "in 334 calls (%u)", f.calls);
	close(fd);
	ok(file_is(path_in("w-short"), pattern, 1000), "content after short writes");

	faults_reset();
	f.eintr_odd = 1;
	f.max_chunk = 100;
	fd = new_file("w-eintr");
	ok(coffer_io_write_all(fd, pattern, 1000) == 0, "EINTR is retried");
	ok(f.calls == 20, "every other call interrupted (%u calls)", f.calls);
	close(fd);
	ok(file_is(path_in("w-eintr"), pattern, 1000), "content after EINTR");

	faults_reset();
	f.fail_errno = EIO;
	fd = new_file("w-eio");
	r = coffer_io_write_all(fd, pattern, 1000);
	ok(r == COFFER_EIO, "EIO on write is COFFER_EIO (%d)", r);
	ok(coffer_errcode() == COFFER_EIO, "and recorded");
	{
		char want[64];

		snprintf(want, sizeof want, "write fd %d: ", fd);
		ok(strstr(coffer_errmsg(), want) && strstr(coffer_errmsg(), strerror(EIO)),
		   "detail names op, fd and cause: %s", coffer_errmsg());
	}
	close(fd);

	faults_reset();
	f.fail_errno = ENOSPC;
	f.fail_after = 600;
	fd = new_file("w-enospc");
	r = coffer_io_write_all(fd, pattern, 1000);
	ok(r == COFFER_ENOSPACE, "ENOSPC after a partial write is COFFER_ENOSPACE (%d)", r);
	ok(strstr(coffer_errmsg(), strerror(ENOSPC)) != NULL, "detail: %s", coffer_errmsg());
	ok(f.moved == 600, "the part that fit was written (%zu)", f.moved);
	close(fd);

	faults_reset();
	f.fail_errno = EBADF;
	r = coffer_io_write_all(12345, pattern, 10);
	ok(r == -EBADF, "other errno passes as -errno (%d)", r);

	faults_reset();
	f.zero_write = 1;
	fd = new_file("w-zero");
	r = coffer_io_write_all(fd, pattern, 10);
	ok(r == COFFER_EIO && f.calls == 1, "a write returning 0 is an error, not a spin");
	close(fd);

	coffer_io_set_ops(NULL);
	r = coffer_io_write_all(-1, "x", 1);
	ok(r == -EBADF && strstr(coffer_errmsg(), "write fd -1"), "real EBADF: %s",
	   coffer_errmsg());
}

static void test_pwrite_all(void)
{
	int fd, r;

	coffer_io_set_ops(&fake_ops);
	faults_reset();
	f.max_chunk = 7;
	f.eintr_odd = 1;
	fd = new_file("pw");
	ok(coffer_io_pwrite_all(fd, pattern, 500, 0) == 0, "pwrite_all short + EINTR");
	ok(coffer_io_pwrite_all(fd, pattern + 500, 500, 500) == 0, "pwrite_all at an offset");
	ok(coffer_io_pwrite_all(fd, "ABC", 3, 10) == 0, "pwrite_all overwrite in place");
	close(fd);
	{
		unsigned char want[1000];

		memcpy(want, pattern, 1000);
		memcpy(want + 10, "ABC", 3);
		ok(file_is(path_in("pw"), want, 1000), "pwrite content");
	}

	faults_reset();
	f.fail_errno = ENOSPC;
	f.fail_after = 5;
	fd = new_file("pw-enospc");
	r = coffer_io_pwrite_all(fd, pattern, 100, 4096);
	ok(r == COFFER_ENOSPACE && strstr(coffer_errmsg(), "pwrite fd"), "pwrite ENOSPC: %s",
	   coffer_errmsg());
	faults_reset();
	f.fail_errno = EIO;
	r = coffer_io_pwrite_all(fd, pattern, 100, 0);
	ok(r == COFFER_EIO, "pwrite EIO");
	r = coffer_io_pwrite_all(fd, pattern, 100, -1);
	ok(r == COFFER_EINVAL, "negative offset refused");
	close(fd);
	coffer_io_set_ops(NULL);
}

static void test_read_full(void)
{
	unsigned char buf[2000];
	size_t got;
	int fd, r;

	fd = new_file("r");
	ok(coffer_io_write_all(fd, pattern, 1000) == 0, "write source");
	lseek(fd, 0, SEEK_SET);
	coffer_io_set_ops(&fake_ops);

	faults_reset();
	f.max_chunk = 1;
	f.eintr_odd = 1;
	got = 0;
	ok(coffer_io_read_full(fd, buf, 600, &got) == 0 && got == 600, "read_full short + EINTR");
	ok(memcmp(buf, pattern, 600) == 0, "read_full content");
	ok(coffer_io_read_full(fd, buf, 1000, &got) == 0 && got == 400, "read_full stops at EOF");
	ok(memcmp(buf, pattern + 600, 400) == 0, "tail content");
	ok(coffer_io_read_full(fd, buf, 10, &got) == 0 && got == 0, "read_full at EOF gives 0");

	faults_reset();
	f.max_chunk = 13;
	got = 0;
	ok(coffer_io_pread_full(fd, buf, 100, 900, &got) == 0 && got == 100 &&
	       memcmp(buf, pattern + 900, 100) == 0,
	   "pread_full short");
	ok(coffer_io_pread_full(fd, buf, 100, 950, &got) == 0 && got == 50, "pread_full EOF");
	ok(coffer_io_pread_full(fd, buf, 100, 5000, &got) == 0 && got == 0, "pread past EOF");

	faults_reset();
	f.fail_errno = EIO;
	f.fail_after = 30;
	f.max_chunk = 20;
	lseek(fd, 0, SEEK_SET);
	r = coffer_io_read_full(fd, buf, 100, &got);
	ok(r == COFFER_EIO && got == 30, "read EIO reports what was read (%d, %zu)", r, got);
	ok(strstr(coffer_errmsg(), "read fd") && strstr(coffer_errmsg(), strerror(EIO)),
	   "detail: %s", coffer_errmsg());
	faults_reset();
	f.fail_errno = EIO;
	r = coffer_io_pread_full(fd, buf, 100, 0, &got);
	ok(r == COFFER_EIO && got == 0 && strstr(coffer_errmsg(), "pread fd"), "pread EIO: %s",
	   coffer_errmsg());
	r = coffer_io_pread_full(fd, buf, 100, -5, &got);
	ok(r == COFFER_EINVAL && got == 0, "pread negative offset refused");
	close(fd);
	coffer_io_set_ops(NULL);
}

static void test_fsync(void)
{
	int fd, r;

	fd = new_file("fs");
	ok(coffer_io_fsync(fd) == 0, "fsync");
	coffer_io_set_ops(&fake_ops);
	faults_reset();
	f.fsync_eintr = 3;
	ok(coffer_io_fsync(fd) == 0 && f.fsyncs == 4, "fsync retries EINTR");
	faults_reset();
	f.fsync_errno = EIO;
	r = coffer_io_fsync(fd);
	ok(r == COFFER_EIO && strstr(coffer_errmsg(), "fsync fd"), "fsync EIO: %s",
	   coffer_errmsg());
	faults_reset();
	f.fsync_errno = ENOSPC;
	ok(coffer_io_fsync(fd) == COFFER_ENOSPACE, "fsync ENOSPC");
	close(fd);

	faults_reset();
	ok(coffer_io_fsync_dir(tap_tmpdir()) == 0 && f.fsyncs == 1, "fsync_dir uses the table");
	f.fsync_errno = EIO;
	r = coffer_io_fsync_dir(tap_tmpdir());
	ok(r == COFFER_EIO && strstr(coffer_errmsg(), tap_tmpdir()),
	   "fsync_dir failure names the directory: %s", coffer_errmsg());
	coffer_io_set_ops(NULL);
	r = coffer_io_fsync_dir(path_in("no-such-dir"));
	ok(r == COFFER_ENOTFOUND && strstr(coffer_errmsg(), "no-such-dir"),
	   "fsync_dir of a missing directory: %s", coffer_errmsg());
	r = coffer_io_fsync_dir(path_in("fs"));
	ok(r == -ENOTDIR, "fsync_dir of a file (%d)", r);
}

static void test_mkdir_p(void)
{
	struct stat st;
	int r;

	ok(coffer_io_mkdir_p(path_in("m/a/b/c"), 0700) == 0, "mkdir -p nested");
	ok(stat(path_in("m/a/b/c"), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
	   "created with mode 0700");
	ok(coffer_io_mkdir_p(path_in("m/a/b/c"), 0700) == 0, "existing is fine");
	ok(coffer_io_mkdir_p(path_in("m//a///b/d/"), 0700) == 0, "doubled and trailing slashes");
	ok(stat(path_in("m/a/b/d"), &st) == 0 && S_ISDIR(st.st_mode), "created d");
	ok(coffer_io_mkdir_p("/", 0700) == 0, "root exists");
	ok(coffer_io_mkdir_p(tap_tmpdir(), 0700) == 0, "absolute existing");
	close(new_file("m/file"));
	r = coffer_io_mkdir_p(path_in("m/file/x"), 0700);
	ok(r == -ENOTDIR && strstr(coffer_errmsg(), "m/file"), "a file in the way: %s",
	   coffer_errmsg());
	r = coffer_io_mkdir_p(path_in("m/file"), 0700);
	ok(r == -ENOTDIR, "the path itself is a file");
	ok(coffer_io_mkdir_p("", 0700) == COFFER_EINVAL, "empty path");

	coffer_io_set_ops(&fake_ops);
	faults_reset();
	ok(coffer_io_mkdir_p(path_in("m/e/f"), 0700) == 0 && f.fsyncs == 2,
	   "each new directory's parent is fsynced (%u)", f.fsyncs);
	faults_reset();
	f.fsync_errno = EIO;
	r = coffer_io_mkdir_p(path_in("m/g"), 0700);
	ok(r == COFFER_EIO, "a failed parent fsync is reported");
	coffer_io_set_ops(NULL);

	{
		/* Relative paths. */
		char cwd[4096];

		ok(getcwd(cwd, sizeof cwd) != NULL && chdir(tap_tmpdir()) == 0, "chdir");
		ok(coffer_io_mkdir_p("rel/x", 0700) == 0 && stat("rel/x", &st) == 0,
		   "relative mkdir -p");
		ok(coffer_io_write_file_atomic("rel-file", "r", 1, 0600) == 0 &&
		       file_is("rel-file", "r", 1),
		   "atomic write of a bare name");
		ok(chdir(cwd) == 0, "chdir back");
	}
}

static void test_atomic(void)
{
	const char *dir = tap_tmpdir();
	const char *path = path_in("atomic");
	struct stat st;
	int r;

	ok(coffer_io_write_file_atomic(path, "old contents\n", 13, 0600) == 0, "create");
	ok(file_is(path, "old contents\n", 13), "content");
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode 0600");
	ok(count_tmp_files(dir) == 0, "no temporary left");
	ok(coffer_io_write_file_atomic(path, pattern, sizeof pattern, 0640) == 0, "replace");
	ok(file_is(path, pattern, sizeof pattern), "replaced content");
	ok(coffer_io_write_file_atomic(path, "old contents\n", 13, 0600) == 0, "replace again");
	ok(coffer_io_write_file_atomic(path_in("empty"), "", 0, 0600) == 0 &&
	       stat(path_in("empty"), &st) == 0 && st.st_size == 0,
	   "an empty file");

	coffer_io_set_ops(&fake_ops);

	faults_reset();
	f.max_chunk = 999;
	f.eintr_odd = 1;
	ok(coffer_io_write_file_atomic(path_in("atomic2"), pattern, sizeof pattern, 0600) == 0,
	   "short writes and EINTR still succeed");
	ok(file_is(path_in("atomic2"), pattern, sizeof pattern), "content");
	ok(f.fsyncs == 2, "file and directory fsynced (%u)", f.fsyncs);

	faults_reset();
	f.fail_errno = EIO;
	f.fail_after = 4096;
	r = coffer_io_write_file_atomic(path, pattern, sizeof pattern, 0600);
	ok(r == COFFER_EIO, "EIO on write fails (%d)", r);
	ok(strstr(coffer_errmsg(), "write ") && strstr(coffer_errmsg(), "atomic.tmp.") &&
	       strstr(coffer_errmsg(), strerror(EIO)),
	   "detail names the file: %s", coffer_errmsg());
	ok(file_is(path, "old contents\n", 13), "old file intact after EIO");
	ok(count_tmp_files(dir) == 0, "temporary removed after EIO");

	faults_reset();
	f.fail_errno = ENOSPC;
	f.fail_after = 50000;
	r = coffer_io_write_file_atomic(path, pattern, sizeof pattern, 0600);
	ok(r == COFFER_ENOSPACE, "ENOSPC on write fails (%d)", r);
	ok(file_is(path, "old contents\n", 13), "old file intact after ENOSPC");
	ok(count_tmp_files(dir) == 0, "temporary removed after ENOSPC");

	faults_reset();
	f.fsync_errno = EIO;
	r = coffer_io_write_file_atomic(path, pattern, sizeof pattern, 0600);
	ok(r == COFFER_EIO && strstr(coffer_errmsg(), "fsync"), "fsync failure fails: %s",
	   coffer_errmsg());
	ok(f.fsyncs == 1, "nothing renamed after the failed fsync");
	ok(file_is(path, "old contents\n", 13), "old file intact after fsync failure");
	ok(count_tmp_files(dir) == 0, "temporary removed after fsync failure");

	faults_reset();
	f.zero_write = 1;
	r = coffer_io_write_file_atomic(path, pattern, 10, 0600);
	ok(r == COFFER_EIO && file_is(path, "old contents\n", 13) && count_tmp_files(dir) == 0,
	   "a stuck write fails cleanly");

	coffer_io_set_ops(NULL);

	r = coffer_io_write_file_atomic(path_in("missing/dir/file"), "x", 1, 0600);
	ok(r == COFFER_ENOTFOUND && strstr(coffer_errmsg(), "missing/dir/file.tmp."),
	   "a missing directory: %s", coffer_errmsg());

	ok(mkdir(path_in("isdir"), 0700) == 0, "mkdir isdir");
	r = coffer_io_write_file_atomic(path_in("isdir"), "x", 1, 0600);
	ok(r == -EISDIR && strstr(coffer_errmsg(), "rename"), "rename over a directory: %s",
	   coffer_errmsg());
	ok(count_tmp_files(dir) == 0, "temporary removed after a failed rename");
	ok(coffer_io_write_file_atomic("", "x", 1, 0600) == COFFER_EINVAL, "empty path");
}

static void test_read_file(void)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	const char *path = path_in("rf");
	size_t old;
	int r;

	ok(coffer_io_write_file_atomic(path, pattern, sizeof pattern, 0600) == 0, "source");
	ok(coffer_io_read_file(path, sizeof pattern, &b) == 0, "read_file at exactly max");
	ok(b.len == sizeof pattern && memcmp(b.data, pattern, b.len) == 0, "content");
	ok(b.data[b.len] == '\0', "NUL-terminated");
	coffer_buf_reset(&b);
	coffer_buf_puts(&b, "prefix:");
	ok(coffer_io_read_file(path, 1 << 20, &b) == 0 && b.len == 7 + sizeof pattern &&
	       memcmp(b.data, "prefix:", 7) == 0 &&
	       memcmp(b.data + 7, pattern, sizeof pattern) == 0,
	   "read_file appends");

	coffer_buf_reset(&b);
	coffer_buf_puts(&b, "keep");
	r = coffer_io_read_file(path, sizeof pattern - 1, &b);
	ok(r == COFFER_ELIMIT, "one byte over max is COFFER_ELIMIT (%d)", r);
	ok(strstr(coffer_errmsg(), "rf") && strstr(coffer_errmsg(), "larger than 99999 bytes"),
	   "detail: %s", coffer_errmsg());
	ok(b.len == 4 && strcmp(coffer_buf_str(&b), "keep") == 0, "buffer unchanged on failure");

	ok(coffer_io_write_file_atomic(path_in("rf-empty"), "", 0, 0600) == 0, "empty source");
	ok(coffer_io_read_file(path_in("rf-empty"), 0, &b) == 0 && b.len == 4, "empty file, max 0");

	r = coffer_io_read_file(tap_tmpdir(), 100, &b);
	ok(r == COFFER_EINVAL && strstr(coffer_errmsg(), "not a regular file"),
	   "a directory is refused: %s", coffer_errmsg());
	ok(mkfifo(path_in("fifo"), 0600) == 0, "mkfifo");
	r = coffer_io_read_file(path_in("fifo"), 100, &b);
	ok(r == COFFER_EINVAL, "a FIFO is refused without blocking");
	r = coffer_io_read_file("/dev/zero", 100, &b);
	ok(r == COFFER_EINVAL, "a device is refused");
	r = coffer_io_read_file(path_in("nope"), 100, &b);
	ok(r == COFFER_ENOTFOUND && strstr(coffer_errmsg(), "nope"), "missing: %s",
	   coffer_errmsg());

	coffer_io_set_ops(&fake_ops);
	faults_reset();
	f.max_chunk = 777;
	f.eintr_odd = 1;
	old = b.len;
	ok(coffer_io_read_file(path, 1 << 20, &b) == 0 && b.len == old + sizeof pattern &&
	       memcmp(b.data + old, pattern, sizeof pattern) == 0,
	   "read_file with short reads + EINTR");
	faults_reset();
	f.fail_errno = EIO;
	f.fail_after = 70000;
	old = b.len;
	r = coffer_io_read_file(path, 1 << 20, &b);
	ok(r == COFFER_EIO && strstr(coffer_errmsg(), "read ") && strstr(coffer_errmsg(), "rf:"),
	   "EIO while reading names the file: %s", coffer_errmsg());
	ok(b.len == old, "buffer restored after EIO");
	coffer_io_set_ops(NULL);
	coffer_buf_free(&b);
}

int main(void)
{
	fill_pattern();
	test_ops_table();
	test_write_all();
	test_pwrite_all();
	test_read_full();
	test_fsync();
	test_mkdir_p();
	test_atomic();
	test_read_file();
	return tap_done();
}
