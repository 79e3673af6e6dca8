/*
 * plain-deliver: the baseline for bench/deliver.sh. One process per message,
 * the shape of a plain Maildir delivery and of `coffer deliver`: read the
 * message on stdin, write it to DIR/tmp/<unique>, fsync it, rename it to
 * DIR/new/<unique>. Exit 0 on success, 75 (EX_TEMPFAIL) on any error.
 *
 *   cc -O2 -o plain-deliver bench/plain-deliver.c
 *   plain-deliver MAILDIR < message
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static int fail(const char *what, const char *path)
{
	fprintf(stderr, "plain-deliver: %s %s: %s\n", what, path, strerror(errno));
	return 75;
}

int main(int argc, char **argv)
{
	char host[256], *tmp = NULL, *dst = NULL;
	static char buf[65536];
	struct timeval tv;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: plain-deliver MAILDIR < message\n");
		return 64;
	}
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	gettimeofday(&tv, NULL);
	if (asprintf(&tmp, "%s/tmp/%lld.M%06ldP%ld.%s", argv[1], (long long)tv.tv_sec,
	             (long)tv.tv_usec, (long)getpid(), host) < 0 ||
	    asprintf(&dst, "%s/new/%lld.M%06ldP%ld.%s", argv[1], (long long)tv.tv_sec,
	             (long)tv.tv_usec, (long)getpid(), host) < 0)
		return 75;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail("open", tmp);
	for (;;) {
		ssize_t n = read(0, buf, sizeof(buf)), off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("read", "stdin");
		if (n == 0)
			break;
		while (off < n) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				unlink(tmp);
				return fail("write", tmp);
			}
			off += w;
		}
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		unlink(tmp);
		return fail("fsync", tmp);
	}
	if (rename(tmp, dst) != 0) {
		unlink(tmp);
		return fail("rename", dst);
	}
	free(tmp);
	free(dst);
	return 0;
}
