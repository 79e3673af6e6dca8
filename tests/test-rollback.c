/*
 * test-rollback.c: lazy commits and the rollback point (engine/rollback.h),
 * through a simulated power loss.
 *
 * A child process opens the index lazily, commits generation 1 synced (the
 * rollback point), then many unsynced generations that rewrite every record,
 * so that LMDB's free pages are reused, and exits without closing (a killed
 * daemon: the point stays). It saves two images of data.mdb: at the point
 * (what the disk held then) and at the end (what the page cache holds).
 * The disk after a power loss is any mix of the two; the test builds the
 * worst ones:
 *   - new meta pages over old data pages: without the rollback, LMDB would
 *     follow the meta pages into pages that were never written;
 *   - old meta pages over new data pages: the point's tree must be intact,
 *     so no unsynced commit may have reused its pages.
 * Reopened in another boot (COFFER_BOOT_ID), the index must hold exactly
 * generation 1 and take commits again. Reopened in the same boot (a daemon
 * killed, the page cache intact), nothing is rolled back.
 */
#include "engine/buf.h"
#include "engine/errors.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/rollback.h"
#include "tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1024ull * 1024ull)
#define KEYS 400
#define GENS 40

struct gen_args {
	unsigned gen, keys;
};

static int put_gen(struct coffer_txn *t, void *arg)
{
	const struct gen_args *a = arg;
	unsigned char key[8], val[300];

	memset(val, (int)a->gen, sizeof val);
	for (uint32_t i = 0; i < a->keys; i++) {
		coffer_put_u32be(key, 9);
		coffer_put_u32be(key + 4, i);
		int rc = coffer_txn_put(t, COFFER_DB_MESSAGES, key, sizeof key, val, sizeof val, 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

struct seen {
	unsigned gen, n, bad;
};

static int see_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct seen *s = arg;
	const unsigned char *p = v;

	if (kl != 8 || vl != 300 || coffer_get_u32be((const unsigned char *)k + 4) != s->n)
		s->bad++;
	for (size_t i = 0; i < vl; i++)
		if (p[i] != s->gen) {
			s->bad++;
			break;
		}
	s->n++;
	return 0;
}

static int see_gen(struct coffer_txn *t, void *arg)
{
	unsigned char prefix[4];

	coffer_put_u32be(prefix, 9);
	return coffer_txn_scan(t, COFFER_DB_MESSAGES, prefix, 4, see_one, arg);
}

static int save(const char *from, const char *to)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	int rc = coffer_io_read_file(from, 1ull << 30, &b);

	if (rc == 0)
		rc = coffer_io_write_file_atomic(to, b.data, b.len, 0600);
	coffer_buf_free(&b);
	return rc;
}

/* The child: a lazy index's life, cut short. */
static int daemon_life(const char *dir, const char *img_point, const char *img_end)
{
	struct coffer_index *ix;
	struct gen_args g = { 1, KEYS };
	char data[1100];

	snprintf(data, sizeof data, "%s/data.mdb", dir);
	if (coffer_index_open(dir, 64 * MIB, 1, &ix) < 0 ||
	    coffer_index_update(ix, put_gen, &g) < 0 || coffer_index_set_lazy(ix) < 0 ||
	    save(data, img_point) < 0)
		return 1;
	for (g.gen = 2; g.gen <= GENS; g.gen++)
		if (coffer_index_update_flags(ix, COFFER_TXN_LAZY, put_gen, &g) < 0)
			return 1;
	if (save(data, img_end) < 0)
		return 1;
	_exit(0); /* no close: the rollback point stays, as after kill -9 */
}

/* data.mdb = the meta pages (the first two) of one image, the rest of the other. */
static int mix(const char *dir, const char *meta_img, const char *data_img, size_t psize)
{
	struct coffer_buf m = COFFER_BUF_INIT, d = COFFER_BUF_INIT;
	char data[1100];
	int rc;

	snprintf(data, sizeof data, "%s/data.mdb", dir);
	rc = coffer_io_read_file(meta_img, 1ull << 30, &m);
	if (rc == 0)
		rc = coffer_io_read_file(data_img, 1ull << 30, &d);
	if (rc == 0 && (m.len < 2 * psize || d.len < 2 * psize))
		rc = -1;
	if (rc == 0) {
		memcpy(d.data, m.data, 2 * psize);
		rc = coffer_io_write_file_atomic(data, d.data, d.len, 0600);
	}
	coffer_buf_free(&m);
	coffer_buf_free(&d);
	return rc;
}

static int run_child(const char *dir, const char *p, const char *e)
{
	int st;
	pid_t pid = fork();

	if (pid == 0)
		_exit(daemon_life(dir, p, e));
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static struct seen reopen_and_see(const char *dir, unsigned gen, int *took_commit)
{
	struct coffer_index *ix = NULL;
	struct seen s = { gen, 0, 0 };
	struct gen_args g = { 77, KEYS };

	*took_commit = 0;
	if (coffer_index_open(dir, 64 * MIB, 0, &ix) < 0) {
		s.bad = 1000;
		return s;
	}
	if (coffer_index_view(ix, see_gen, &s) < 0)
		s.bad += 1000;
	*took_commit = coffer_index_update(ix, put_gen, &g) == 0;
	coffer_index_close(&ix);
	return s;
}

static int point_exists(const char *dir)
{
	struct coffer_rollback *rb = NULL;
	int rc = coffer_rollback_open(dir, 0, &rb);

	coffer_rollback_close(&rb);
	return rc == 0;
}

int main(void)
{
	char dir[1024], p[1100], e[1100];
	const char *base = tap_tmpdir();
	size_t psize = (size_t)sysconf(_SC_PAGESIZE);
	struct seen s;
	int took;

	snprintf(p, sizeof p, "%s/point.img", base);
	snprintf(e, sizeof e, "%s/end.img", base);

	/* 1. new meta pages, old data pages, another boot: rolled back */
	snprintf(dir, sizeof dir, "%s/a", base);
	ok(coffer_io_mkdir_p(dir, 0700) == 0 && run_child(dir, p, e),
	   "a lazy daemon's life, killed");
	ok(point_exists(dir), "leaves its rollback point");
	ok(mix(dir, e, p, psize) == 0, "power loss: the newest meta pages reached the disk, "
	                               "none of the pages they name");
	setenv("COFFER_BOOT_ID", "another-boot", 1);
	s = reopen_and_see(dir, 1, &took);
	ok(s.n == KEYS && s.bad == 0,
	   "after the reboot the index holds the synced commit "
	   "(%u records, %u bad)",
	   s.n, s.bad);
	ok(took, "and takes commits");
	ok(!point_exists(dir), "the rollback point is gone once used");

	/* 2. old meta pages, every new data page: the point's tree intact */
	snprintf(dir, sizeof dir, "%s/b", base);
	unsetenv("COFFER_BOOT_ID");
	ok(coffer_io_mkdir_p(dir, 0700) == 0 && run_child(dir, p, e), "a second daemon, killed");
	ok(mix(dir, p, e, psize) == 0, "power loss: every data page written, no meta page");
	setenv("COFFER_BOOT_ID", "another-boot", 1);
	s = reopen_and_see(dir, 1, &took);
	ok(s.n == KEYS && s.bad == 0,
	   "the synced commit's pages were never reused "
	   "(%u records, %u bad)",
	   s.n, s.bad);
	ok(took, "and the index takes commits");

	/* 3. the same boot: a killed daemon's commits all stay */
	snprintf(dir, sizeof dir, "%s/c", base);
	unsetenv("COFFER_BOOT_ID");
	ok(coffer_io_mkdir_p(dir, 0700) == 0 && run_child(dir, p, e), "a third daemon, killed");
	s = reopen_and_see(dir, GENS, &took);
	ok(s.n == KEYS && s.bad == 0,
	   "in the same boot its last unsynced commit is there "
	   "(%u records, %u bad)",
	   s.n, s.bad);
	ok(took && point_exists(dir), "a synced commit of another process keeps the point");
	setenv("COFFER_BOOT_ID", "another-boot", 1);
	s = reopen_and_see(dir, 77, &took);
	ok(s.n == KEYS && s.bad == 0,
	   "which it moved: a reboot then keeps that commit "
	   "(%u records, %u bad)",
	   s.n, s.bad);
	unsetenv("COFFER_BOOT_ID");

	/* 4. a clean close removes the point */
	snprintf(dir, sizeof dir, "%s/d", base);
	{
		struct coffer_index *ix = NULL;
		struct gen_args g = { 5, KEYS };

		ok(coffer_io_mkdir_p(dir, 0700) == 0 &&
		       coffer_index_open(dir, 64 * MIB, 1, &ix) == 0 &&
		       coffer_index_set_lazy(ix) == 0 &&
		       coffer_index_update_flags(ix, COFFER_TXN_LAZY, put_gen, &g) == 0,
		   "a lazy index commits");
		coffer_index_close(&ix);
		ok(!point_exists(dir), "and its close leaves no rollback point");
		setenv("COFFER_BOOT_ID", "a-third-boot", 1);
		s = reopen_and_see(dir, 5, &took);
		ok(s.n == KEYS && s.bad == 0, "its commits are durable (%u records)", s.n);
		unsetenv("COFFER_BOOT_ID");
	}

	/* 5. a point torn at its first record: nothing unsynced followed it */
	{
		char f[1200];
		int fd;

		snprintf(dir, sizeof dir, "%s/b", base);
		snprintf(f, sizeof f, "%s/%s", dir, COFFER_ROLLBACK_FILE);
		fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ok(fd >= 0 && write(fd, "CFRBK001garbage", 15) == 15,
		   "a rollback point torn in its first record");
		if (fd >= 0)
			close(fd);
		setenv("COFFER_BOOT_ID", "a-fourth-boot", 1);
		s = reopen_and_see(dir, 77, &took);
		ok(s.n == KEYS && s.bad == 0 && took, "is no reason to roll back (%u records)",
		   s.n);
		unsetenv("COFFER_BOOT_ID");
	}

	/* 6. records of two handles (processes) never go back */
	{
		struct coffer_rollback *a = NULL, *b = NULL;
		static unsigned char metas[2 * 65536];

		snprintf(dir, sizeof dir, "%s/f", base);
		ok(coffer_io_mkdir_p(dir, 0700) == 0 && coffer_rollback_open(dir, 1, &a) == 0 &&
		       coffer_rollback_open(dir, 0, &b) == 0,
		   "two handles on one point");
		ok(a && b && coffer_rollback_record(a, metas, psize, 20) == 0 &&
		       coffer_rollback_txnid(a) == 20,
		   "one records commit 20");
		ok(b && coffer_rollback_record(b, metas, psize, 15) == 0 &&
		       coffer_rollback_txnid(b) == 20,
		   "the other, late with commit 15, finds 20 and writes nothing");
		ok(b && coffer_rollback_record(b, metas, psize, 30) == 0 && a &&
		       coffer_rollback_reload(a) == 0 && coffer_rollback_txnid(a) == 30,
		   "a newer commit is recorded, and seen by the first");
		coffer_rollback_close(&a);
		coffer_rollback_close(&b);
	}

	/* 7. a point ahead of the index is another data.mdb's: dropped */
	{
		struct coffer_rollback *a = NULL;
		struct coffer_index *ix = NULL;
		static unsigned char metas[2 * 65536];
		struct gen_args g = { 9, KEYS };

		snprintf(dir, sizeof dir, "%s/g", base);
		ok(coffer_io_mkdir_p(dir, 0700) == 0 &&
		       coffer_index_open(dir, 64 * MIB, 1, &ix) == 0,
		   "a new index");
		coffer_index_close(&ix);
		ok(coffer_rollback_open(dir, 1, &a) == 0 &&
		       coffer_rollback_record(a, metas, psize, 1000000) == 0,
		   "beside a point naming commit 1000000");
		coffer_rollback_close(&a);
		ok(coffer_index_open(dir, 64 * MIB, 0, &ix) == 0 && !point_exists(dir),
		   "its next open drops that point");
		ok(ix && coffer_index_update(ix, put_gen, &g) == 0, "and commits");
		coffer_index_close(&ix);
	}
	return tap_done();
}
