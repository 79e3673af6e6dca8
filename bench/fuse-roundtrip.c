/*
 * fuse-roundtrip: what one FUSE request costs on this machine, for
 * bench/fuse-roundtrip.sh. A minimal low-level filesystem with one file,
 * "f", and no caching (entry and attribute timeouts 0), so that every stat()
 * of MOUNT/f is a LOOKUP and a GETATTR sent to this process.
 *
 *   fuse-roundtrip MOUNT SPIN_US
 *
 * SPIN_US < 0: libfuse's own loop (fuse_session_loop: the thread sleeps in
 * read() between requests, as most FUSE daemons do). SPIN_US >= 0: one
 * thread reads the device non-blocking and keeps trying for SPIN_US
 * microseconds after each request before it sleeps in poll(): what a
 * request costs when the daemon need not be woken. Runs until unmounted.
 */
#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void attr_of(fuse_ino_t ino, struct stat *s)
{
	memset(s, 0, sizeof *s);
	s->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		s->st_mode = S_IFDIR | 0755;
		s->st_nlink = 2;
	} else {
		s->st_mode = S_IFREG | 0644;
		s->st_nlink = 1;
	}
}

static void rt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, "f") != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof e);
	e.ino = 2;
	attr_of(e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void rt_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat s;

	(void)fi;
	attr_of(ino, &s);
	fuse_reply_attr(req, &s, 0);
}

static const struct fuse_lowlevel_ops ops = { .lookup = rt_lookup, .getattr = rt_getattr };

static long long now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static void spin_loop(struct fuse_session *se, long long spin_us)
{
	struct fuse_buf buf = { 0 };
	int fd = fuse_session_fd(se), r;
	long long until = now_us() + spin_us;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (!fuse_session_exited(se)) {
		r = fuse_session_receive_buf(se, &buf);
		if (r > 0) {
			fuse_session_process_buf(se, &buf);
			until = now_us() + spin_us;
		} else if (r == -EAGAIN) {
			if (now_us() >= until) {
				struct pollfd p = { fd, POLLIN, 0 };

				poll(&p, 1, 1000);
				until = now_us() + spin_us;
			}
		} else if (r != -EINTR) {
			break;
		}
	}
	free(buf.mem);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se;
	long long spin;

	if (argc != 3) {
		fprintf(stderr, "usage: fuse-roundtrip MOUNT SPIN_US\n");
		return 2;
	}
	spin = atoll(argv[2]);
	if (fuse_opt_add_arg(&args, "fuse-roundtrip") != 0)
		return 1;
	se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	if (se == NULL || fuse_session_mount(se, argv[1]) != 0 || fuse_set_signal_handlers(se) != 0)
		return 1;
	if (spin < 0)
		fuse_session_loop(se);
	else
		spin_loop(se, spin);
	fuse_remove_signal_handlers(se);
	fuse_session_unmount(se);
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return 0;
}
