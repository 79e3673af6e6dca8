/*
 * mount-uring.c: FUSE over io_uring, beside libfuse's /dev/fuse loop.
 *
 * Why. Each request Dovecot makes of the mount is a round trip: the client
 * sleeps, a daemon thread wakes, then the client wakes. With /dev/fuse the
 * daemon's thread is usually woken on another CPU, and on a virtual machine
 * whose idle CPUs halt that wake-up goes through the host: most of a round
 * trip's cost (docs/benchmarks.md, "What a FUSE request costs here"). Since
 * Linux 6.14 the kernel can hand requests to the daemon through io_uring,
 * one queue per CPU: a request made on CPU q goes to queue q, whose threads
 * are pinned to q, so the client's CPU runs the daemon while the client
 * waits, and the reply wakes the client where it slept.
 *
 * How. Debian 12's libfuse (3.14) predates io_uring but lets its I/O be
 * replaced (fuse_session_custom_io()); the requests themselves are still
 * parsed and dispatched by libfuse (fuse_session_process_buf()), so the
 * operations (mount-ll.c) do not know which way a request came.
 *   - read: a plain read of /dev/fuse. libfuse's own loop keeps reading it:
 *     INIT, every request until the ring is ready, and afterwards FORGET
 *     and INTERRUPT, which the kernel never sends through the ring.
 *   - writev: the reply to INIT is amended to accept FUSE_OVER_IO_URING
 *     when the kernel offered it (module parameter enable_uring) and the
 *     operator did not turn it off (COFFER_MOUNT_URING=0); once it is
 *     written, the ring's threads start. A reply to a request that came
 *     through a ring entry is copied into that entry and committed; any
 *     other message (replies from the loop, notifications) goes to
 *     /dev/fuse as before.
 *
 * The ring: for every possible CPU q (the kernel's queue count) PER_QUEUE
 * threads pinned to q, each with its own io_uring and one entry, so that a
 * request that waits (a flush, a decryption) holds one thread, not its
 * queue. A thread registers its entry (header + payload buffers), then
 * loops: wait for a request, copy its header and operation header in front
 * of the payload (libfuse wants one contiguous message; the payload, a
 * write's data included, is not copied), let libfuse process it, and the
 * reply commits the entry and fetches the next request in one submission.
 *
 * Invariants: an entry serves one request at a time; its commit id is the
 * request's unique while it is served, 0 otherwise; a reply made on
 * another thread finds its entry by unique and submits under the entry's
 * lock. Every entry the kernel holds has a thread waiting on it.
 *
 * Failures. The kernel uses the ring only once every queue has an entry;
 * until then, and for good if the ring cannot start (an old kernel,
 * io_uring refused, too little memory), /dev/fuse serves, and stderr says
 * why once. The first request served through the ring is logged ("serving
 * FUSE requests through io_uring"). Later, a refused commit registers its
 * entry again; a queue whose threads have all stopped would leave the
 * requests made on its CPU waiting for ever, so the mount stops instead.
 *
 * Teardown (mnt_uring_stop(), after libfuse's loop returned): each thread
 * is woken through an eventfd it polls in its ring, joined, and its ring
 * closed, which cancels the entry's command in the kernel. Nothing here is
 * on disk: crash safety is the operations' business.
 */
#define FUSE_USE_VERSION 35
#include "mount-private.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <unistd.h>

/* The kernel's io_uring interface (linux/fuse.h 7.42; Debian 12's header
 * is older). */
#define UR_OVER_IO_URING (1ULL << 41)
#define UR_INIT_EXT (1U << 30)
#define UR_HEADER_SZ 128
#define UR_OP_SZ 128
enum { UR_CMD_REGISTER = 1, UR_CMD_COMMIT_AND_FETCH = 2 };

struct ur_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct ur_req_header {
	char in_out[UR_HEADER_SZ];
	char op_in[UR_OP_SZ];
	struct ur_ent_in_out ent;
};

struct ur_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

/* fuse_init_in/out as of 7.36 (the fields read or amended here) */
struct ur_init_in {
	uint32_t major, minor, max_readahead, flags, flags2;
};

struct ur_init_out {
	uint32_t major, minor, max_readahead, flags;
	uint16_t max_background, congestion_threshold;
	uint32_t max_write, time_gran;
	uint16_t max_pages, map_alignment;
	uint32_t flags2;
};

_Static_assert(sizeof(struct ur_req_header) == 288, "fuse_uring_req_header");
_Static_assert(sizeof(struct ur_cmd_req) == 24, "fuse_uring_cmd_req");

#define PER_QUEUE 4
#define HEADROOM 4096 /* in front of the payload: fuse_in_header + op header */
#define EV_TAG ((void *)1)

struct ur_ent {
	struct mnt_uring *u;
	unsigned qid;
	int evfd;
	int ring_ok, started;
	pthread_t th;
	pthread_mutex_t lock; /* the ring's submission side */
	struct io_uring ring;
	struct ur_req_header *hdr;
	char *buf; /* HEADROOM + payload */
	struct iovec iov[2];
	uint64_t commit_id; /* the request served, 0 if none */
	int last_cmd;
};

struct mnt_uring {
	struct fuse_session *se;
	int fd;               /* /dev/fuse */
	int want;             /* not turned off by the operator */
	uint64_t init_unique; /* INIT's, once read */
	int offered;          /* the kernel offered FUSE_OVER_IO_URING */
	int announced;        /* the first request through the ring was logged */
	int warned;           /* the ring did not start: said once */
	unsigned *live;       /* per queue: threads serving it */
	size_t payload;
	unsigned nq; /* queues: the kernel's, one per possible CPU */
	unsigned n;  /* entries made: up to nq x PER_QUEUE */
	struct ur_ent *ents;
};

static __thread struct ur_ent *serving; /* the entry this thread serves */

static void ur_warn(const char *what, int err)
{
	fprintf(stderr,
	        "coffer mount: FUSE over io_uring not used: %s: %s; serving through "
	        "/dev/fuse\n",
	        what, strerror(err));
}

/* Prepares (does not submit) the entry's next command. Under e->lock. */
static int ur_prep(struct ur_ent *e, int cmd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
	struct ur_cmd_req *req;

	if (sqe == NULL)
		return -EBUSY;
	memset(sqe, 0, 2 * sizeof *sqe); /* SQE128 */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = e->u->fd;
	sqe->cmd_op = (uint32_t)cmd;
	if (cmd == UR_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	}
	req = (struct ur_cmd_req *)(void *)sqe->cmd;
	req->qid = (uint16_t)e->qid;
	req->commit_id = cmd == UR_CMD_COMMIT_AND_FETCH ? e->commit_id : 0;
	io_uring_sqe_set_data(sqe, e);
	e->last_cmd = cmd;
	return 0;
}

/* The reply to the request e serves: header into in_out, the rest into the
 * payload; then the commit, which also fetches e's next request (submitted
 * here, unless the reply comes from e's own thread, whose loop submits it
 * before it waits). */
static ssize_t ur_reply(struct ur_ent *e, const struct iovec *iov, int count)
{
	char *pl = e->buf + HEADROOM;
	size_t n = 0, total = iov[0].iov_len;
	struct fuse_out_header *oh = (struct fuse_out_header *)(void *)e->hdr->in_out;
	int rc;

	memcpy(oh, iov[0].iov_base, sizeof *oh);
	for (int i = 1; i < count; i++) {
		total += iov[i].iov_len;
		if (oh->error != 0)
			continue;
		if (n + iov[i].iov_len > e->u->payload) {
			oh->error =
			    -EIO; /* cannot happen: the kernel bounds replies by max_pages */
			n = 0;
			continue;
		}
		memcpy(pl + n, iov[i].iov_base, iov[i].iov_len);
		n += iov[i].iov_len;
	}
	if (oh->error != 0)
		n = 0;
	oh->len = (uint32_t)(sizeof *oh + n);
	e->hdr->ent.payload_sz = (uint32_t)n;
	pthread_mutex_lock(&e->lock);
	rc = ur_prep(e, UR_CMD_COMMIT_AND_FETCH);
	e->commit_id = 0;
	if (rc == 0 && serving != e)
		rc = io_uring_submit(&e->ring) < 0 ? -EIO : 0;
	pthread_mutex_unlock(&e->lock);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return (ssize_t)total;
}

static struct ur_ent *ur_find(struct mnt_uring *u, uint64_t unique)
{
	unsigned n = __atomic_load_n(&u->n, __ATOMIC_ACQUIRE);

	if (serving && serving->commit_id == unique)
		return serving;
	for (unsigned i = 0; i < n; i++) {
		struct ur_ent *e = &u->ents[i];
		uint64_t id;

		pthread_mutex_lock(&e->lock);
		id = e->commit_id;
		pthread_mutex_unlock(&e->lock);
		if (id == unique)
			return e;
	}
	return NULL;
}

/* One request that arrived in e: laid out as libfuse reads it from
 * /dev/fuse, then processed. */
static void ur_serve(struct ur_ent *e)
{
	struct fuse_in_header *in = (struct fuse_in_header *)(void *)e->hdr->in_out;
	size_t pl = e->hdr->ent.payload_sz, oplen;
	struct fuse_buf fb;
	char *start;

	memset(&fb, 0, sizeof fb);
	pthread_mutex_lock(&e->lock);
	e->commit_id = e->hdr->ent.commit_id;
	pthread_mutex_unlock(&e->lock);
	if (in->len < sizeof *in + pl || pl > e->u->payload ||
	    (oplen = in->len - sizeof *in - pl) > UR_OP_SZ) {
		/* not a layout this code knows: refuse the request, keep serving */
		struct fuse_out_header oh = { sizeof oh, -EIO, in->unique };
		struct iovec iov = { &oh, sizeof oh };

		ur_reply(e, &iov, 1);
		return;
	}
	start = e->buf + HEADROOM - sizeof *in - oplen;
	memmove(start + sizeof *in, e->hdr->op_in, oplen);
	memcpy(start, in, sizeof *in);
	fb.mem = start;
	fb.size = in->len;
	if (!__atomic_exchange_n(&e->u->announced, 1, __ATOMIC_RELAXED))
		fprintf(stderr,
		        "coffer mount: serving FUSE requests through io_uring (%u queues "
		        "of %d threads)\n",
		        e->u->nq, PER_QUEUE);
	fuse_session_process_buf(e->u->se, &fb);
}

/* e's thread stops on error res. Before the ring served anything that is
 * the ring not starting (one line; /dev/fuse serves). Once it serves, a
 * queue left without entries would leave the requests made on its CPU
 * waiting for ever: the mount stops instead, which its users see. */
static void ur_lost(struct ur_ent *e, int err)
{
	struct mnt_uring *u = e->u;

	if (!__atomic_load_n(&u->announced, __ATOMIC_RELAXED)) {
		if (!__atomic_exchange_n(&u->warned, 1, __ATOMIC_RELAXED))
			ur_warn("registering with the kernel", err);
		return;
	}
	fprintf(stderr, "coffer mount: io_uring queue %u: %s: one of its threads stopped\n", e->qid,
	        strerror(err));
	if (__atomic_sub_fetch(&u->live[e->qid], 1, __ATOMIC_RELAXED) == 0) {
		fprintf(stderr,
		        "coffer mount: io_uring queue %u has no thread left: stopping "
		        "the mount rather than leave the requests made on CPU %u waiting\n",
		        e->qid, e->qid);
		fuse_session_exit(u->se);
	}
}

static void *ur_thread(void *arg)
{
	struct ur_ent *e = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(e->qid, &set);
	(void)sched_setaffinity(0, sizeof set, &set); /* an offline CPU: unpinned */
	serving = e;
	for (;;) {
		struct io_uring_cqe *cqe;
		void *data;
		int res, rc;

		pthread_mutex_lock(&e->lock);
		rc = io_uring_submit(&e->ring);
		pthread_mutex_unlock(&e->lock);
		if (rc < 0)
			break;
		rc = io_uring_wait_cqe(&e->ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			break;
		data = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&e->ring, cqe);
		if (data == EV_TAG)
			break; /* mnt_uring_stop() */
		if (res == -EINTR || res == -EAGAIN) {
			pthread_mutex_lock(&e->lock);
			rc = ur_prep(e, e->last_cmd);
			pthread_mutex_unlock(&e->lock);
			if (rc < 0)
				break;
			continue;
		}
		if (res == -ENOTCONN || res == -ECANCELED)
			break; /* unmounted, or the ring is gone */
		if (res < 0 && e->last_cmd == UR_CMD_COMMIT_AND_FETCH) {
			/* a commit refused: the entry is no longer the kernel's to
			 * use; registering it again gives it back */
			fprintf(stderr,
			        "coffer mount: io_uring queue %u: a reply was refused (%s); "
			        "registering its entry again\n",
			        e->qid, strerror(-res));
			pthread_mutex_lock(&e->lock);
			rc = ur_prep(e, UR_CMD_REGISTER);
			pthread_mutex_unlock(&e->lock);
			if (rc == 0)
				continue;
		}
		if (res < 0) {
			ur_lost(e, -res);
			break;
		}
		ur_serve(e);
	}
	serving = NULL;
	return NULL;
}

/* A thread's ring, buffers and first command (its entry's registration and
 * the eventfd's poll). */
static int ur_ent_init(struct mnt_uring *u, struct ur_ent *e, unsigned qid)
{
	struct io_uring_params p;
	struct io_uring_sqe *sqe;
	int rc;

	e->u = u;
	e->qid = qid;
	pthread_mutex_init(&e->lock, NULL);
	e->evfd = eventfd(0, EFD_CLOEXEC);
	if (e->evfd < 0)
		return -errno;
	memset(&p, 0, sizeof p);
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
	p.cq_entries = 8;
	rc = io_uring_queue_init_params(4, &e->ring, &p);
	if (rc < 0)
		return rc;
	e->ring_ok = 1;
	e->hdr = aligned_alloc(4096, 4096);
	e->buf = aligned_alloc(4096, HEADROOM + ((u->payload + 4095) & ~(size_t)4095));
	if (e->hdr == NULL || e->buf == NULL)
		return -ENOMEM;
	memset(e->hdr, 0, sizeof *e->hdr);
	e->iov[0].iov_base = e->hdr;
	e->iov[0].iov_len = sizeof *e->hdr;
	e->iov[1].iov_base = e->buf + HEADROOM;
	e->iov[1].iov_len = u->payload;
	rc = ur_prep(e, UR_CMD_REGISTER);
	if (rc < 0)
		return rc;
	sqe = io_uring_get_sqe(&e->ring);
	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, e->evfd, POLLIN);
	io_uring_sqe_set_data(sqe, EV_TAG);
	/* registered now, so that a refusal is seen here, not in the thread */
	rc = io_uring_submit(&e->ring);
	return rc < 0 ? rc : 0;
}

/* After the INIT reply that accepted the ring is written: one thread per
 * entry. A failure leaves the entries made so far serving (the kernel
 * waits for every queue before it uses any, and meanwhile /dev/fuse
 * serves). */
static void ur_start(struct mnt_uring *u)
{
	unsigned nq = (unsigned)get_nprocs_conf();
	int rc = 0;

	u->nq = nq;
	u->ents = calloc((size_t)nq * PER_QUEUE, sizeof *u->ents);
	u->live = calloc(nq, sizeof *u->live);
	if (u->ents == NULL || u->live == NULL) {
		ur_warn("starting the ring", ENOMEM);
		return;
	}
	for (unsigned i = 0; rc == 0 && i < nq * PER_QUEUE; i++) {
		struct ur_ent *e = &u->ents[i];

		rc = ur_ent_init(u, e, i / PER_QUEUE);
		if (rc == 0) {
			__atomic_add_fetch(&u->live[e->qid], 1, __ATOMIC_RELAXED);
			rc = -pthread_create(&e->th, NULL, ur_thread, e);
			e->started = rc == 0;
			if (rc < 0) {
				/* no thread for an entry the kernel may pick: closing
				 * the ring cancels the entry */
				__atomic_sub_fetch(&u->live[e->qid], 1, __ATOMIC_RELAXED);
				io_uring_queue_exit(&e->ring);
				e->ring_ok = 0;
			}
		}
		/* from here on other threads' replies may look e up */
		__atomic_store_n(&u->n, i + 1, __ATOMIC_RELEASE);
	}
	/* the entries made serve if every queue has one (the kernel waits for
	 * that), else /dev/fuse does; the log says which ("serving FUSE
	 * requests through io_uring") */
	if (rc < 0)
		fprintf(stderr, "coffer mount: io_uring: thread %u of %u not started: %s\n", u->n,
		        nq * PER_QUEUE, strerror(-rc));
}

static ssize_t ur_read(int fd, void *buf, size_t len, void *userdata)
{
	struct mnt_uring *u = ((struct mnt *)userdata)->uring;
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *in = buf;

	if (n >= (ssize_t)(sizeof *in + sizeof(struct ur_init_in)) && in->opcode == FUSE_INIT &&
	    u->init_unique == 0) {
		const struct ur_init_in *ii = (const void *)(in + 1);

		u->init_unique = in->unique;
		u->offered = (ii->flags & UR_INIT_EXT) &&
		             (ii->flags2 & (uint32_t)(UR_OVER_IO_URING >> 32));
	}
	return n;
}

static ssize_t ur_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct mnt_uring *u = ((struct mnt *)userdata)->uring;
	const struct fuse_out_header *oh = iov[0].iov_base;
	struct ur_init_out io;
	struct iovec amended[3];
	ssize_t n;
	size_t pages;

	if (count < 1 || iov[0].iov_len < sizeof *oh || oh->unique == 0)
		return writev(fd, iov, count); /* a notification */
	if (u->ents != NULL) {
		struct ur_ent *e = ur_find(u, oh->unique);

		if (e != NULL)
			return ur_reply(e, iov, count);
	}
	/* INIT's reply (once: the ring, once started, answers above) */
	if (oh->unique != u->init_unique || !u->offered || !u->want || oh->error != 0 ||
	    count != 2 || iov[1].iov_len < sizeof io || u->ents != NULL)
		return writev(fd, iov, count);
	memcpy(&io, iov[1].iov_base, sizeof io);
	io.flags |= UR_INIT_EXT;
	io.flags2 |= (uint32_t)(UR_OVER_IO_URING >> 32);
	/* what the kernel wants an entry's payload buffer to hold at least:
	 * max(8 KiB, max_write, max_pages pages) */
	pages = (size_t)io.max_pages * (size_t)sysconf(_SC_PAGESIZE);
	u->payload = pages > io.max_write ? pages : io.max_write;
	if (u->payload < 8192)
		u->payload = 8192;
	/* the amended fields, then the rest of fuse_init_out as libfuse
	 * wrote it */
	amended[0] = iov[0];
	amended[1].iov_base = &io;
	amended[1].iov_len = sizeof io;
	amended[2].iov_base = (char *)iov[1].iov_base + sizeof io;
	amended[2].iov_len = iov[1].iov_len - sizeof io;
	n = writev(fd, amended, 3);
	if (n >= 0)
		ur_start(u);
	return n;
}

int mnt_uring_attach(struct mnt *m, struct fuse_session *se)
{
	static const struct fuse_custom_io io = { .writev = ur_writev, .read = ur_read };
	const char *env = getenv("COFFER_MOUNT_URING");
	struct mnt_uring *u = calloc(1, sizeof *u);

	if (u == NULL)
		return -ENOMEM;
	u->se = se;
	u->fd = fuse_session_fd(se);
	u->want = !(env && (strcmp(env, "0") == 0 || strcmp(env, "off") == 0));
	m->uring = u;
	if (fuse_session_custom_io(se, &io, u->fd) != 0) {
		m->uring = NULL;
		free(u);
		return -EIO;
	}
	return 0;
}

void mnt_uring_stop(struct mnt *m)
{
	struct mnt_uring *u = m ? m->uring : NULL;

	if (u == NULL)
		return;
	for (unsigned i = 0; i < u->n; i++) {
		struct ur_ent *e = &u->ents[i];
		uint64_t one = 1;

		if (e->started) {
			if (write(e->evfd, &one, sizeof one) < 0)
				(void)0;
			pthread_join(e->th, NULL);
		}
		if (e->ring_ok)
			io_uring_queue_exit(&e->ring);
		if (e->evfd >= 0)
			close(e->evfd);
		free(e->hdr);
		free(e->buf);
		pthread_mutex_destroy(&e->lock);
	}
	free(u->ents);
	free(u->live);
	free(u);
	m->uring = NULL;
}
