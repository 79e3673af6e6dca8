/*
 * test-archive.c: the tar writer (maildir/archive.c), checked by reading
 * back with libarchive's reader: names, types, modes, mtimes to the
 * nanosecond, contents; zstd; standard output through a pipe; descriptors;
 * refused and failing targets leave nothing behind.
 */
#include "maildir/archive.h"

#include "engine/errors.h"
#include "engine/io.h"
#include "tests/tap.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct want {
	const char *name;
	int dir;
	mode_t mode;
	int64_t mtime_ns;
	const unsigned char *data;
	size_t size;
	int found;
};

static unsigned char *big;
static size_t big_len = (3u << 20) + 12345; /* several blocks, not a multiple */
static char long_name[400];

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
}

static int write_sample(struct coffer_archive *a, struct want *w, size_t nw)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < nw; i++) {
		if (w[i].dir) {
			rc = coffer_archive_add_dir(a, w[i].name, w[i].mode, w[i].mtime_ns);
			continue;
		}
		rc = coffer_archive_file_begin(a, w[i].name, w[i].mode, w[i].mtime_ns, w[i].size);
		/* stream in uneven pieces */
		for (size_t off = 0, step = 1; rc == 0 && off < w[i].size; step = step * 7 + 3) {
			size_t n = w[i].size - off < step ? w[i].size - off : step;

			rc = coffer_archive_write(a, w[i].data + off, n);
			off += n;
		}
		if (rc == 0)
			rc = coffer_archive_file_end(a);
	}
	return rc;
}

/* Reads the archive from fd and checks every entry against w. Returns the
 * number of mismatches (diagnosed); *filter_r the outermost filter code. */
static int check_archive_fd(int fd, struct want *w, size_t nw, int *filter_r)
{
	struct archive *ar = archive_read_new();
	struct archive_entry *e;
	unsigned char *buf = malloc(big_len + 1);
	int bad = 0, r, entries = 0;

	archive_read_support_format_tar(ar);
	archive_read_support_filter_all(ar);
	for (size_t i = 0; i < nw; i++)
		w[i].found = 0;
	if (archive_read_open_fd(ar, fd, 10240) != ARCHIVE_OK) {
		tap_diag("open: %s", archive_error_string(ar));
		bad++;
		goto out;
	}
	while ((r = archive_read_next_header(ar, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		struct want *x = NULL;
		char trimmed[512];
		size_t got = 0;
		la_ssize_t n;

		entries++;
		snprintf(trimmed, sizeof trimmed, "%s", name);
		for (size_t i = 0; i < nw; i++) {
			char wn[512];

			snprintf(wn, sizeof wn, "%s", w[i].name);
			if (wn[strlen(wn) - 1] == '/')
				wn[strlen(wn) - 1] = '\0';
			if (trimmed[strlen(trimmed) - 1] == '/')
				trimmed[strlen(trimmed) - 1] = '\0';
			if (strcmp(wn, trimmed) == 0)
				x = &w[i];
		}
		if (x == NULL) {
			tap_diag("unexpected entry %s", name);
			bad++;
			continue;
		}
		x->found++;
		if ((archive_entry_filetype(e) == AE_IFDIR) != x->dir) {
			tap_diag("%s: wrong type", name);
			bad++;
		}
		if ((archive_entry_perm(e) & 07777) != x->mode) {
			tap_diag("%s: mode %o, want %o", name, archive_entry_perm(e), x->mode);
			bad++;
		}
		if ((int64_t)archive_entry_mtime(e) * 1000000000LL + archive_entry_mtime_nsec(e) !=
		    x->mtime_ns) {
			tap_diag("%s: mtime %lld.%09ld, want %lld ns", name,
			         (long long)archive_entry_mtime(e), archive_entry_mtime_nsec(e),
			         (long long)x->mtime_ns);
			bad++;
		}
		while ((n = archive_read_data(ar, buf + got, big_len + 1 - got)) > 0)
			got += (size_t)n;
		if (n < 0 || got != x->size || (got && memcmp(buf, x->data, got) != 0)) {
			tap_diag("%s: content differs (%zu bytes, want %zu)", name, got, x->size);
			bad++;
		}
	}
	if (r != ARCHIVE_EOF) {
		tap_diag("read: %s", archive_error_string(ar));
		bad++;
	}
	for (size_t i = 0; i < nw; i++)
		if (w[i].found != 1) {
			tap_diag("%s: found %d times", w[i].name, w[i].found);
			bad++;
		}
	if (filter_r)
		*filter_r = archive_filter_code(ar, 0);
out:
	archive_read_free(ar);
	free(buf);
	return bad;
}

static int check_archive(const char *path, struct want *w, size_t nw, int *filter_r)
{
	int fd = open(path, O_RDONLY), bad;

	if (fd < 0) {
		tap_diag("%s: %s", path, strerror(errno));
		return 1;
	}
	bad = check_archive_fd(fd, w, nw, filter_r);
	close(fd);
	return bad;
}

/* Entries in dir other than those listed (NULL-terminated). */
static int extra_entries(const char *dir, const char *const *allowed)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		int ok_ = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;

		for (size_t i = 0; allowed && allowed[i]; i++)
			ok_ |= strcmp(de->d_name, allowed[i]) == 0;
		if (!ok_) {
			tap_diag("extra entry %s/%s", dir, de->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

static ssize_t enospc_write(int fd, const void *p, size_t n)
{
	errno = ENOSPC;
	return -1;
}

static int read_small(void *arg, void *buf, size_t cap, size_t *n_r)
{
	size_t *left = arg;
	size_t n = *left < cap ? *left : cap;

	memset(buf, 'x', n);
	*left -= n;
	*n_r = n;
	return 0;
}

static int read_fails(void *arg, void *buf, size_t cap, size_t *n_r)
{
	return coffer_err_set(COFFER_ECORRUPT, "test: source is damaged");
}

int main(void)
{
	const char *tmp = tap_tmpdir();
	char path[4096], path2[4096];
	unsigned char small[] = "From: a@b\n\nhello\n";
	struct coffer_archive *a = NULL;
	int rc, filter, fds[2];
	pid_t pid;
	int status;

	big = malloc(big_len);
	fill(big, big_len, 42);
	memset(long_name, 0, sizeof long_name);
	strcpy(long_name, ".Lists.a-rather-long-folder-name-for-ustar/cur/");
	while (strlen(long_name) < 300)
		strcat(long_name, "x");
	strcat(long_name, ":2,FS");

	struct want w[] = {
		{ "cur/", 1, 0700, 1700000000LL * 1000000000LL, NULL, 0, 0 },
		{ "new", 1, 0700, 1700000001LL * 1000000000LL + 5, NULL, 0, 0 },
		{ "tmp/", 1, 0700, 0, NULL, 0, 0 },
		{ "cur/1.M1.host:2,S", 0, 0600, 1234567890123456789LL, small, sizeof small - 1, 0 },
		{ "new/empty", 0, 0600, 1000000000LL * 1000000000LL, small, 0, 0 },
		{ "cur/big:2,", 0, 0644, 1600000000LL * 1000000000LL + 999999999, NULL, 0, 0 },
		{ long_name, 0, 0600, 946684800LL * 1000000000LL + 1, small, 5, 0 },
		{ "cur/old", 0, 0600, -86400LL * 1000000000LL - 7, small, 3, 0 },
	};
	size_t nw = sizeof w / sizeof w[0];

	w[5].data = big;
	w[5].size = big_len;

	/* plain tar to a path */
	snprintf(path, sizeof path, "%s/a.tar", tmp);
	rc = coffer_archive_open(path, COFFER_ARCHIVE_BY_NAME, &a);
	ok(rc == 0, "open %s", path);
	ok(access(path, F_OK) != 0, "the path does not exist before finish");
	rc = rc == 0 ? write_sample(a, w, nw) : rc;
	ok(rc == 0, "entries written (%s)", coffer_errmsg());
	rc = rc == 0 ? coffer_archive_finish(a) : rc;
	ok(rc == 0, "finish");
	ok(coffer_archive_bytes_written(a) > big_len, "bytes written counted");
	coffer_archive_free(&a);
	ok(check_archive(path, w, nw, &filter) == 0, "read back: names, types, modes, ns mtimes, "
	                                             "contents");
	ok(filter == ARCHIVE_FILTER_NONE, "not compressed");
	{
		struct stat sb;

		ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "archive file is 0600");
	}
	{
		const char *allowed[] = { "a.tar", NULL };

		ok(extra_entries(tmp, allowed) == 0, "no temporary file left");
	}
	/* GNU tar agrees, when present */
	if (access("/bin/tar", X_OK) == 0) {
		char cmd[8192];

		snprintf(cmd, sizeof cmd, "tar -tf '%s' >/dev/null 2>&1", path);
		ok(system(cmd) == 0, "GNU tar lists it");
	}

	/* zstd, chosen by the name */
	snprintf(path, sizeof path, "%s/a.tar.zst", tmp);
	rc = coffer_archive_open(path, COFFER_ARCHIVE_BY_NAME, &a);
	rc = rc == 0 ? write_sample(a, w, nw) : rc;
	rc = rc == 0 ? coffer_archive_finish(a) : rc;
	ok(rc == 0, "zstd archive written (%s)", rc ? coffer_errmsg() : "");
	coffer_archive_free(&a);
	ok(check_archive(path, w, nw, &filter) == 0, "zstd archive reads back");
	ok(filter == ARCHIVE_FILTER_ZSTD, "zstd filter used");
	if (access("/bin/tar", X_OK) == 0 && access("/usr/bin/zstd", X_OK) == 0) {
		char cmd[8192];

		snprintf(cmd, sizeof cmd, "tar --zstd -tf '%s' >/dev/null 2>&1", path);
		ok(system(cmd) == 0, "GNU tar --zstd lists it");
	}

	/* add_file from a callback; a failing callback fails the entry */
	snprintf(path, sizeof path, "%s/cb.tar", tmp);
	rc = coffer_archive_open(path, 0, &a);
	{
		size_t left = 200000;
		unsigned char *xs = malloc(200000);

		memset(xs, 'x', 200000);
		rc = rc == 0 ? coffer_archive_add_file(a, "f", 0600, 5, 200000, read_small, &left)
		             : rc;
		ok(rc == 0 && left == 0, "add_file from a callback");
		rc = rc == 0 ? coffer_archive_finish(a) : rc;
		coffer_archive_free(&a);
		struct want wc[] = { { "f", 0, 0600, 5, xs, 200000, 0 } };
		ok(rc == 0 && check_archive(path, wc, 1, NULL) == 0, "callback file reads back");
		free(xs);
	}
	snprintf(path, sizeof path, "%s/fail.tar", tmp);
	rc = coffer_archive_open(path, 0, &a);
	rc = rc == 0 ? coffer_archive_add_file(a, "f", 0600, 5, 100, read_fails, NULL) : rc;
	ok(rc == COFFER_ECORRUPT, "a failing source fails add_file with its code");
	ok(coffer_archive_finish(a) == COFFER_EINVAL, "finish refused after a failure");
	coffer_archive_free(&a);
	ok(access(path, F_OK) != 0, "a failed archive leaves no file");

	/* size contract */
	snprintf(path, sizeof path, "%s/short.tar", tmp);
	rc = coffer_archive_open(path, 0, &a);
	rc = rc == 0 ? coffer_archive_file_begin(a, "f", 0600, 0, 10) : rc;
	rc = rc == 0 ? coffer_archive_write(a, "abc", 3) : rc;
	ok(rc == 0 && coffer_archive_file_end(a) == COFFER_EINVAL, "a short file is refused");
	coffer_archive_free(&a);
	rc = coffer_archive_open(path, 0, &a);
	rc = rc == 0 ? coffer_archive_file_begin(a, "f", 0600, 0, 2) : rc;
	ok(rc == 0 && coffer_archive_write(a, "abc", 3) == COFFER_EINVAL, "a long file is refused");
	coffer_archive_free(&a);
	ok(access(path, F_OK) != 0, "abandoned archives leave no file");
	rc = coffer_archive_open(path, 0, &a);
	ok(rc == 0 && coffer_archive_add_dir(a, "/abs", 0700, 0) == COFFER_EINVAL,
	   "absolute names are refused");
	coffer_archive_free(&a);

	/* standard output through a pipe */
	ok(pipe(fds) == 0, "pipe");
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDOUT_FILENO);
		close(fds[1]);
		rc = coffer_archive_open("-", COFFER_ARCHIVE_BY_NAME, &a);
		rc = rc == 0 ? write_sample(a, w, nw) : rc;
		rc = rc == 0 ? coffer_archive_finish(a) : rc;
		coffer_archive_free(&a);
		_exit(rc == 0 ? 0 : 1);
	}
	close(fds[1]);
	ok(check_archive_fd(fds[0], w, nw, &filter) == 0,
	   "stdout archive through a pipe reads back");
	{
		/* drain the end-of-archive padding the reader may not have asked
		 * for, so the writer is not cut off with EPIPE */
		char sink[4096];

		while (read(fds[0], sink, sizeof sink) > 0)
			;
	}
	close(fds[0]);
	ok(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "writer child exited 0");

	/* zstd on a descriptor, forced */
	ok(pipe(fds) == 0, "pipe");
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		rc = coffer_archive_open_fd(fds[1], "pipe", COFFER_ARCHIVE_ZSTD, &a);
		rc = rc == 0 ? write_sample(a, w, nw) : rc;
		rc = rc == 0 ? coffer_archive_finish(a) : rc;
		coffer_archive_free(&a);
		close(fds[1]);
		_exit(rc == 0 ? 0 : 1);
	}
	close(fds[1]);
	ok(check_archive_fd(fds[0], w, nw, &filter) == 0 && filter == ARCHIVE_FILTER_ZSTD,
	   "zstd on a descriptor reads back");
	close(fds[0]);
	ok(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "fd writer child exited 0");

	/* a terminal is refused */
	{
		int m = posix_openpt(O_RDWR | O_NOCTTY);

		if (m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0) {
			int s = open(ptsname(m), O_RDWR | O_NOCTTY);
			int saved = dup(STDOUT_FILENO);

			fflush(stdout);
			dup2(s, STDOUT_FILENO);
			rc = coffer_archive_open("-", 0, &a);
			dup2(saved, STDOUT_FILENO);
			close(saved);
			close(s);
			ok(rc == COFFER_EINVAL && a == NULL,
			   "standard output on a terminal refused");
			coffer_archive_free(&a);
		}
		if (m >= 0)
			close(m);
	}

	/* character devices are written to in place */
	rc = coffer_archive_open("/dev/null", 0, &a);
	rc = rc == 0 ? write_sample(a, w, nw) : rc;
	rc = rc == 0 ? coffer_archive_finish(a) : rc;
	coffer_archive_free(&a);
	{
		struct stat sb;

		ok(rc == 0 && stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode),
		   "/dev/null is written to, and stays a device");
	}

	/* refused and impossible targets */
	snprintf(path, sizeof path, "%s/exists", tmp);
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

		ok(fd >= 0 && write(fd, "keep", 4) == 4, "made an existing file");
		close(fd);
	}
	rc = coffer_archive_open(path, 0, &a);
	ok(rc == COFFER_EEXIST && a == NULL, "an existing file is refused (%s)", coffer_errmsg());
	{
		char got[8] = "";
		int fd = open(path, O_RDONLY);

		ok(fd >= 0 && read(fd, got, sizeof got) == 4 && memcmp(got, "keep", 4) == 0,
		   "and left untouched");
		close(fd);
	}
	snprintf(path2, sizeof path2, "%s/no/such/dir/x.tar", tmp);
	rc = coffer_archive_open(path2, 0, &a);
	ok(rc == COFFER_ENOTFOUND && strstr(coffer_errmsg(), path2) != NULL,
	   "missing directory: not found, detail names the path (%s)", coffer_errmsg());
	snprintf(path2, sizeof path2, "%s/exists/x.tar", tmp);
	rc = coffer_archive_open(path2, 0, &a);
	ok(rc == -ENOTDIR, "parent is a file: -ENOTDIR");
	ok(coffer_archive_open("", 0, &a) == COFFER_EINVAL, "empty name refused");
	if (geteuid() == 0) {
		/* unwritable directory, as an unprivileged user */
		snprintf(path, sizeof path, "%s/ro", tmp);
		mkdir(path, 0755);
		chmod(tmp, 0755);
		snprintf(path2, sizeof path2, "%s/ro/x.tar", tmp);
		pid = fork();
		if (pid == 0) {
			if (setgid(65534) != 0 || setuid(65534) != 0)
				_exit(2);
			rc = coffer_archive_open(path2, 0, &a);
			_exit(rc == COFFER_EPERM ? 0 : 1);
		}
		ok(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		   "unwritable directory: COFFER_EPERM");
		ok(extra_entries(path, NULL) == 0, "and nothing created there");
	}

	/* the target fails midway (disk full) */
	snprintf(path, sizeof path, "%s/full.tar", tmp);
	rc = coffer_archive_open(path, 0, &a);
	ok(rc == 0, "open full.tar");
	{
		struct coffer_io_ops ops = *coffer_io_get_ops();

		ops.write = enospc_write;
		coffer_io_set_ops(&ops);
		rc = write_sample(a, w, nw);
		if (rc == 0)
			rc = coffer_archive_finish(a);
		coffer_io_set_ops(NULL);
	}
	ok(rc == COFFER_ENOSPACE, "disk full: COFFER_ENOSPACE (%s)", coffer_errmsg());
	ok(strstr(coffer_errmsg(), "full.tar") != NULL, "detail names the archive");
	coffer_archive_free(&a);
	ok(access(path, F_OK) != 0, "and leaves no file");

	free(big);
	return tap_done();
}
