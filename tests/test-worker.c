/*
 * test-worker.c: the retention worker's audit of its jobs (policy/worker.h):
 * a job that stops part-way is recorded as interrupted by the next run,
 * which then does what is due and records that too; a run with nothing due
 * records nothing; a policy change is recorded once.
 *
 * The interruptions, through engine/io.h's table, leave the job as a worker
 * killed during it would: begun, not ended. A snapshot whose writes to the
 * target fail (EIO) is recorded as interrupted; a snapshot taken whose audit
 * entry cannot be written is recorded by its id by the next run, which takes
 * no second one; a snapshot whose entry was written but not recorded as
 * written (its fsync fails) is not recorded a second time; a snapshot
 * refused because another writer holds the target's lock leaves nothing to
 * record. The worker's killed runs themselves are in
 * tests/integration/test-worker.sh.
 */
#include "tap.h"
#include "fixture.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/io.h"
#include "engine/store.h"
#include "maildir/deliver.h"
#include "policy/audit.h"
#include "policy/worker.h"
#include "snapshots/repo.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct coffer_store *st;
static struct fixture_paths fp;

static int64_t at(const char *iso)
{
	int64_t t = 0;

	setenv("COFFER_NOW", iso, 1);
	coffer_clock_now(&t);
	return t;
}

/* ---- faults: one kind at a time ---- */

enum fault { NONE, TARGET_WRITES, AUDIT_WRITES, AUDIT_FSYNCS };
static enum fault fault;

/* 1 when fd's path starts with prefix (a directory: then '/' or its end
 * follows) or, with suffix set, ends with it. */
static int fd_is(int fd, const char *s, int suffix)
{
	char link[64], path[PATH_MAX];
	size_t n = strlen(s);
	ssize_t got;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	got = readlink(link, path, sizeof path - 1);
	if (got <= 0 || (size_t)got < n)
		return 0;
	path[got] = '\0';
	if (suffix)
		return strcmp(path + got - n, s) == 0;
	return strncmp(path, s, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static int write_fails(int fd)
{
	return (fault == TARGET_WRITES && fd_is(fd, fp.target, 0)) ||
	       (fault == AUDIT_WRITES && fd_is(fd, "/audit.log", 1));
}

static ssize_t fault_write(int fd, const void *p, size_t n)
{
	if (write_fails(fd)) {
		errno = EIO;
		return -1;
	}
	return write(fd, p, n);
}

static ssize_t fault_pwrite(int fd, const void *p, size_t n, off_t off)
{
	if (write_fails(fd)) {
		errno = EIO;
		return -1;
	}
	return pwrite(fd, p, n, off);
}

static int fault_fsync(int fd)
{
	if (fault == AUDIT_FSYNCS && fd_is(fd, "/audit.log", 1)) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static const struct coffer_io_ops fault_ops = {
	.write = fault_write,
	.pwrite = fault_pwrite,
	.read = read,
	.pread = pread,
	.fsync = fault_fsync,
};

/* One worker run with fault f. */
static int faulted_run(enum fault f, int64_t now, struct coffer_worker_result *wr)
{
	int rc;

	fault = f;
	coffer_io_set_ops(&fault_ops);
	rc = coffer_worker_run(st, now, NULL, NULL, wr);
	coffer_io_set_ops(NULL);
	fault = NONE;
	return rc;
}

/* ---- the audit log, counted ---- */

struct counts {
	int snapshot, snapshot_interrupted, policy, other_interrupted;
};

static int count_fn(const struct coffer_audit_record *r, void *arg)
{
	struct counts *c = arg;
	int interrupted = strncmp(r->detail, "interrupted", 11) == 0;

	if (strcmp(r->action, "snapshot") == 0) {
		if (interrupted)
			c->snapshot_interrupted++;
		else if (strncmp(r->detail, "id=", 3) == 0)
			c->snapshot++;
	} else if (strcmp(r->action, "policy-change") == 0) {
		c->policy++;
	} else if (interrupted) {
		c->other_interrupted++;
	}
	return 0;
}

static struct counts count(void)
{
	struct counts c = { 0, 0, 0, 0 };

	if (coffer_audit_list(st, NULL, count_fn, &c) < 0)
		c.snapshot = -1;
	return c;
}

int main(void)
{
	struct coffer_worker_result wr;
	struct counts c;
	uint64_t entries = 0;
	int64_t now;
	int rc;

	if (sodium_init() < 0)
		return 1;
	now = at("2026-06-01T03:00:00Z");
	rc = fixture_store("target", &st, &fp);
	ok(rc == 0, "a store with a snapshot target");
	if (rc < 0)
		return tap_done();
	ok(coffer_account_add(st, "a@example.org", 13, NULL) == 0 &&
	       fixture_deliver(st, "a@example.org", "Subject: a\n\nhello\n") == 0,
	   "an account with mail");

	/* the daily snapshot fails part-way */
	rc = faulted_run(TARGET_WRITES, now, &wr);
	ok(rc == COFFER_EIO, "the worker fails when the target's writes do (%d)", rc);
	c = count();
	ok(c.snapshot == 0 && c.snapshot_interrupted == 0 && c.policy == 1,
	   "so far: the policy, and no snapshot entry (%d, %d, %d)", c.policy, c.snapshot,
	   c.snapshot_interrupted);

	/* the next run records the interruption, then takes the snapshot */
	rc = coffer_worker_run(st, now, NULL, NULL, &wr);
	ok(rc == 0 && wr.snapshot[0], "the next run takes the snapshot (%d)", rc);
	c = count();
	ok(c.snapshot_interrupted == 1, "the interrupted snapshot is in the log once (%d)",
	   c.snapshot_interrupted);
	ok(c.snapshot == 1, "the snapshot taken is in the log once (%d)", c.snapshot);

	/* nothing due: nothing recorded */
	rc = coffer_worker_run(st, now, NULL, NULL, &wr);
	ok(rc == 0 && wr.snapshot[0] == '\0', "a run with nothing due takes no snapshot (%d)", rc);
	c = count();
	ok(c.snapshot == 1 && c.snapshot_interrupted == 1 && c.other_interrupted == 0,
	   "and records nothing: no second entry, no prune or expiry left interrupted "
	   "(%d, %d, %d)",
	   c.snapshot, c.snapshot_interrupted, c.other_interrupted);
	ok(c.policy == 1, "the policy was recorded once over three runs (%d)", c.policy);

	/* the next day: one snapshot, one entry */
	now = at("2026-06-02T03:00:00Z");
	ok(fixture_deliver(st, "a@example.org", "Subject: b\n\nagain\n") == 0, "more mail");
	rc = coffer_worker_run(st, now, NULL, NULL, &wr);
	c = count();
	ok(rc == 0 && wr.snapshot[0] && c.snapshot == 2 && c.snapshot_interrupted == 1,
	   "the next day's snapshot is in the log once (%d, %d)", c.snapshot,
	   c.snapshot_interrupted);

	/* day 3: the snapshot is taken, its entry cannot be written */
	now = at("2026-06-03T03:00:00Z");
	ok(fixture_deliver(st, "a@example.org", "Subject: c\n\nthird\n") == 0, "more mail");
	rc = faulted_run(AUDIT_WRITES, now, &wr);
	c = count();
	ok(rc == COFFER_EIO && c.snapshot == 2, "the worker fails when its entry does (%d, %d)", rc,
	   c.snapshot);
	rc = coffer_worker_run(st, now, NULL, NULL, &wr);
	c = count();
	ok(rc == 0 && wr.snapshot[0] == '\0', "the next run takes no second snapshot (%d)", rc);
	ok(c.snapshot == 3 && c.snapshot_interrupted == 1,
	   "it records the snapshot taken, by its id (%d, %d)", c.snapshot, c.snapshot_interrupted);

	/* day 4: the entry's line is written, its fsync fails */
	now = at("2026-06-04T03:00:00Z");
	ok(fixture_deliver(st, "a@example.org", "Subject: d\n\nfourth\n") == 0, "more mail");
	rc = faulted_run(AUDIT_FSYNCS, now, &wr);
	c = count();
	ok(rc == COFFER_EIO && c.snapshot == 4,
	   "the worker fails when the entry's fsync does, "
	   "its line written (%d, %d)",
	   rc, c.snapshot);
	rc = coffer_worker_run(st, now, NULL, NULL, &wr);
	c = count();
	ok(rc == 0 && wr.snapshot[0] == '\0' && c.snapshot == 4 && c.snapshot_interrupted == 1,
	   "the next run records nothing more (%d: %d, %d)", rc, c.snapshot,
	   c.snapshot_interrupted);

	/* day 5: another snapshot writer holds the target's lock */
	now = at("2026-06-05T03:00:00Z");
	ok(fixture_deliver(st, "a@example.org", "Subject: e\n\nfifth\n") == 0, "more mail");
	{
		struct coffer_repo *repo = NULL;

		rc = coffer_repo_open(st, NULL, 0, &repo);
		if (rc == 0)
			rc = coffer_repo_lock(repo, st);
		ok(rc == 0, "the target's lock is held (%d)", rc);
		rc = coffer_worker_run(st, now, NULL, NULL, &wr);
		ok(rc == COFFER_ETEMP, "the worker is refused (%d)", rc);
		coffer_repo_close(&repo);
	}
	rc = coffer_worker_run(st, now, NULL, NULL, &wr);
	c = count();
	ok(rc == 0 && wr.snapshot[0] && c.snapshot == 5 && c.snapshot_interrupted == 1,
	   "the next run takes the snapshot; nothing recorded as interrupted (%d: %d, %d)", rc,
	   c.snapshot, c.snapshot_interrupted);
	rc = coffer_audit_verify(st, &entries);
	ok(rc == 0, "the audit chain verifies (%d, %llu entries)", rc, (unsigned long long)entries);
	coffer_store_close(&st);
	return tap_done();
}
