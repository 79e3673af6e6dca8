/*
 * test-faults.c: I/O fault injection through the replaceable system-call
 * table of engine/io.h (coffer_io_set_ops), against the writers that route
 * their file I/O through it: delivery, import, snapshot create, export
 * (directory and tar) and the audit log's append with its tail repair.
 *
 * Method (as SQLite's I/O error tests): each operation is first run once with
 * a counting table, which gives the number of write (write + pwrite), sync
 * (fsync + fdatasync) and read (read + pread) calls it makes. It is then run
 * again once per call number k and per fault kind, with a table that fails
 * the k-th call:
 *
 *   EIO           the k-th write fails with EIO
 *   ENOSPC        the k-th write fails with ENOSPC
 *   SHORT+ENOSPC  the k-th write stores half its bytes, the next one ENOSPC
 *                 (what a filling disk does)
 *   SHORT         the k-th write stores half its bytes (benign: retried)
 *   EINTR         the k-th write fails with EINTR (benign: retried)
 *   FSYNC-EIO     the k-th fsync or fdatasync fails with EIO
 *   FSYNC-ENOSPC  the k-th fsync or fdatasync fails with ENOSPC
 *   READ-EIO      the k-th read fails with EIO
 *
 * After every run, with the system calls restored:
 *   - a failed run returned a Coffer code (EIO -> COFFER_EIO, ENOSPC ->
 *     COFFER_ENOSPACE, so `coffer deliver` exits 75) with a detail line;
 *   - a benign fault did not fail the operation, and its result is exact;
 *   - coffer_verify_run() finds no problem in the store;
 *   - nothing of a failed operation is visible: a failed delivery leaves no
 *     message and no blob file; a failed import leaves the committed batches
 *     and the next import completes it with no orphan left; a failed snapshot
 *     leaves the target verifying clean (100% of the data read) and the next
 *     snapshot succeeds; a failed export leaves no directory or tar file; a
 *     failed audit append leaves the log as the crash before it left it, or
 *     verifying with every earlier entry, and the next append repairs it.
 *
 * The store's LMDB index does its own I/O (not through the table); the
 * points faulted here are every blob, journal (its fdatasync included),
 * target object, export file and audit log write, read and fsync the layer
 * makes, syncfs(2) (import, export, snapshot target) included.
 */
#include "engine/account.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/io.h"
#include "engine/message.h"
#include "engine/store.h"
#include "engine/verify.h"
#include "maildir/deliver.h"
#include "maildir/export.h"
#include "maildir/import.h"
#include "policy/audit.h"
#include "snapshots/repo.h"
#include "snapshots/snapshot.h"
#include "snapshots/snapverify.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the faulty system-call table ---- */

enum fault_kind {
	F_NONE,
	F_EIO,
	F_ENOSPC,
	F_SHORT_NOSPC,
	F_SHORT,
	F_EINTR,
	F_FSYNC_EIO,
	F_FSYNC_NOSPC,
	F_READ_EIO,
	F_KINDS
};

static const char *const kind_name[F_KINDS] = {
	"none",  "EIO",       "ENOSPC",       "SHORT+ENOSPC", "SHORT",
	"EINTR", "FSYNC-EIO", "FSYNC-ENOSPC", "READ-EIO",
};

static struct {
	enum fault_kind kind;
	long at; /* the call number that fails (1-based) */
	long writes, fsyncs, reads;
	long datasyncs; /* of fsyncs, those made with fdatasync */
	int fired;      /* the fault happened */
	int nospc_next; /* SHORT+ENOSPC: the next write fails */
} fx;

static int is_benign(enum fault_kind k)
{
	return k == F_SHORT || k == F_EINTR;
}

/* How many calls a kind of fault can hit, of the counting run's writes,
 * syncs and reads. */
static long calls_of(enum fault_kind k, long writes, long syncs, long reads)
{
	if (k == F_FSYNC_EIO || k == F_FSYNC_NOSPC)
		return syncs;
	return k == F_READ_EIO ? reads : writes;
}

static ssize_t fault_write_common(int fd, const void *p, size_t n, off_t off, int positional)
{
	long k = ++fx.writes;

	if (fx.nospc_next) {
		fx.nospc_next = 0;
		errno = ENOSPC;
		return -1;
	}
	if (k == fx.at && !fx.fired) {
		switch (fx.kind) {
		case F_EIO:
			fx.fired = 1;
			errno = EIO;
			return -1;
		case F_ENOSPC:
			fx.fired = 1;
			errno = ENOSPC;
			return -1;
		case F_EINTR:
			fx.fired = 1;
			errno = EINTR;
			return -1;
		case F_SHORT:
		case F_SHORT_NOSPC:
			if (n < 2)
				break; /* nothing shorter to write: let it through */
			fx.fired = 1;
			if (fx.kind == F_SHORT_NOSPC)
				fx.nospc_next = 1;
			n /= 2;
			break;
		default: break;
		}
	}
	return positional ? pwrite(fd, p, n, off) : write(fd, p, n);
}

static ssize_t fault_write(int fd, const void *p, size_t n)
{
	return fault_write_common(fd, p, n, 0, 0);
}

static ssize_t fault_pwrite(int fd, const void *p, size_t n, off_t off)
{
	return fault_write_common(fd, p, n, off, 1);
}

static int read_fault(void)
{
	long k = ++fx.reads;

	if (fx.kind == F_READ_EIO && k == fx.at && !fx.fired) {
		fx.fired = 1;
		errno = EIO;
		return 1;
	}
	return 0;
}

static ssize_t fault_read(int fd, void *p, size_t n)
{
	return read_fault() ? -1 : read(fd, p, n);
}

static ssize_t fault_pread(int fd, void *p, size_t n, off_t off)
{
	return read_fault() ? -1 : pread(fd, p, n, off);
}

/* fsync and fdatasync count as one kind of call: a sync */
static int sync_fault(void)
{
	long k = ++fx.fsyncs;

	if ((fx.kind == F_FSYNC_EIO || fx.kind == F_FSYNC_NOSPC) && k == fx.at && !fx.fired) {
		fx.fired = 1;
		errno = fx.kind == F_FSYNC_EIO ? EIO : ENOSPC;
		return 1;
	}
	return 0;
}

static int fault_fsync(int fd)
{
	return sync_fault() ? -1 : fsync(fd);
}

static int fault_fdatasync(int fd)
{
	fx.datasyncs++;
	return sync_fault() ? -1 : fdatasync(fd);
}

static int fault_syncfs(int fd)
{
	return sync_fault() ? -1 : syncfs(fd);
}

static const struct coffer_io_ops fault_ops = {
	.write = fault_write,
	.pwrite = fault_pwrite,
	.read = fault_read,
	.pread = fault_pread,
	.fsync = fault_fsync,
	.fdatasync = fault_fdatasync,
	.syncfs = fault_syncfs,
};

static void arm(enum fault_kind kind, long at)
{
	memset(&fx, 0, sizeof fx);
	fx.kind = kind;
	fx.at = at;
	coffer_io_set_ops(&fault_ops);
}

static void disarm(void)
{
	coffer_io_set_ops(NULL);
}

/* ---- the store under test ---- */

static char dir[2048], store_path[PATH_MAX], key_path[PATH_MAX];
static struct coffer_store *st;
static int quiet_failures; /* diagnostics printed so far (bounded) */

static int nfiles;
static int count_file(const char *p, const struct stat *sb, int type, struct FTW *f)
{
	if (type == FTW_F)
		nfiles++;
	return 0;
}

static int files_under(const char *path)
{
	nfiles = 0;
	nftw(path, count_file, 16, FTW_PHYS);
	return nfiles;
}

static int count_content(const char *p, const struct stat *sb, int type, struct FTW *f)
{
	if (type == FTW_F && sb->st_size > 0)
		nfiles++;
	return 0;
}

/* Blob files with content (the blob pool's files are empty: engine/pool.h). */
static int blob_files(void)
{
	char p[PATH_MAX + 16];

	snprintf(p, sizeof p, "%s/blobs", store_path);
	nfiles = 0;
	nftw(p, count_content, 16, FTW_PHYS);
	return nfiles;
}

static int verify_problem(const struct coffer_verify_problem *p, void *arg)
{
	if (quiet_failures++ < 20)
		tap_diag("verify: %s %s uid %u blob %s: %s", p->account ? p->account : "-",
		         p->folder ? p->folder : "-", p->uid, p->blob ? p->blob : "-", p->problem);
	return 0;
}

/* coffer verify: 0 problems (young orphans are pending, not damage). */
static int store_sound(uint64_t *messages_r)
{
	struct coffer_verify_opts o = { .problem = verify_problem };
	struct coffer_verify_stats s;
	int rc;

	memset(&s, 0, sizeof s);
	rc = coffer_verify_run(st, &o, &s);
	if (messages_r)
		*messages_r = s.messages;
	if (rc < 0) {
		tap_diag("verify failed: %s", coffer_errmsg());
		return 0;
	}
	return s.problems == 0;
}

/* The error contract: a Coffer code and a detail line, and the code the
 * injected errno must map to. */
static int clean_error(int rc, enum fault_kind kind)
{
	const char *msg = coffer_errmsg();

	if (rc >= 0 || coffer_strerror(rc) == NULL || msg == NULL || msg[0] == '\0')
		return 0;
	if (strchr(msg, '\n'))
		return 0;
	if (kind == F_ENOSPC || kind == F_SHORT_NOSPC || kind == F_FSYNC_NOSPC)
		return rc == COFFER_ENOSPACE;
	if (kind == F_EIO || kind == F_FSYNC_EIO || kind == F_READ_EIO)
		return rc == COFFER_EIO;
	return 1;
}

/* A message of n bytes with a recognisable body. */
static char *make_message(size_t n, unsigned seed)
{
	char *m = malloc(n + 1);
	int h;

	if (m == NULL)
		return NULL;
	h = snprintf(m, n + 1, "From: faults@example.org\nSubject: fault %u\n\n", seed);
	for (size_t i = (size_t)h; i < n; i++)
		m[i] = (i % 73 == 72) ? '\n' : (char)('a' + (i * 7 + seed) % 26);
	m[n] = '\0';
	return m;
}

static int write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int ok_ = fd >= 0 && write(fd, p, n) == (ssize_t)n;

	if (fd >= 0)
		close(fd);
	return ok_ ? 0 : -1;
}

/* Counts messages of folder (by name) and checks that uid holds want. */
struct find_ctx {
	uint32_t n, last_uid;
};
static int count_msg(const struct coffer_message *m, void *arg)
{
	struct find_ctx *c = arg;

	c->n++;
	c->last_uid = m->uid;
	return 0;
}

static int folder_count(const char *acct, const char *folder, uint32_t *last_uid_r)
{
	struct coffer_mailbox *mb = NULL;
	struct find_ctx c = { 0, 0 };
	uint32_t fid;
	int rc;

	rc = coffer_mailbox_open(st, acct, strlen(acct), &mb);
	if (rc == 0)
		rc = coffer_folder_find(mb, folder, &fid);
	if (rc == 0)
		rc = coffer_message_list(mb, fid, count_msg, &c);
	else if (rc == COFFER_ENOTFOUND)
		rc = 0; /* not created (yet): no messages */
	coffer_mailbox_close(&mb);
	if (last_uid_r)
		*last_uid_r = c.last_uid;
	return rc < 0 ? -1 : (int)c.n;
}

static int reads_back(const char *acct, uint32_t uid, const char *want, size_t n)
{
	struct coffer_mailbox *mb = NULL;
	struct coffer_message_reader *r = NULL;
	char *got = malloc(n + 1);
	size_t len = 0, k;
	uint32_t fid;
	int rc, same;

	rc = coffer_mailbox_open(st, acct, strlen(acct), &mb);
	if (rc == 0)
		rc = coffer_folder_find(mb, "INBOX", &fid);
	if (rc == 0)
		rc = coffer_message_open(mb, fid, "INBOX", uid, &r);
	while (rc == 0 && got) {
		rc = coffer_message_read(r, got + len, n + 1 - len, &k);
		if (rc < 0 || k == 0 || (len += k) > n)
			break;
	}
	same = rc == 0 && got && len == n && memcmp(got, want, n) == 0;
	coffer_message_close(&r);
	coffer_mailbox_close(&mb);
	free(got);
	return same;
}

/* ---- delivery ---- */

#define DELIVER_SIZE (150 * 1024) /* three chunks */
static const char *deliver_acct = "deliver@example.org";

static int do_deliver(const char *msg, size_t n, struct coffer_deliver_result *res)
{
	char path[PATH_MAX + 16];
	int fd, rc;

	snprintf(path, sizeof path, "%s/input.eml", dir);
	if (write_file(path, msg, n) < 0)
		return -1;
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	rc = coffer_deliver(st, deliver_acct, NULL, fd, res);
	close(fd);
	return rc;
}

static void test_deliver(void)
{
	struct coffer_deliver_result res;
	long w, f, r;
	uint32_t delivered = 0;
	int bad = 0, runs = 0, fired = 0;
	char *msg = make_message(DELIVER_SIZE, 1);

	ok(coffer_account_add(st, deliver_acct, strlen(deliver_acct), NULL) == 0,
	   "deliver: account");
	arm(F_NONE, 0);
	ok(do_deliver(msg, DELIVER_SIZE, &res) == 0, "deliver: counting run delivers");
	disarm();
	w = fx.writes, f = fx.fsyncs, r = fx.reads;
	delivered++;
	ok(w >= 4 && f >= 2 && r >= 1, "deliver: %ld writes, %ld fsyncs, %ld reads to fault", w, f,
	   r);

	for (int kind = F_EIO; kind < F_KINDS; kind++) {
		long limit = calls_of((enum fault_kind)kind, w, f, r);

		for (long k = 1; k <= limit; k++) {
			int blobs_before = blob_files(), n_before, n_after, rc;
			uint32_t last;

			n_before = folder_count(deliver_acct, "INBOX", NULL);
			free(msg);
			msg = make_message(DELIVER_SIZE, (unsigned)(runs + 2));
			arm((enum fault_kind)kind, k);
			rc = do_deliver(msg, DELIVER_SIZE, &res);
			disarm();
			runs++;
			fired += fx.fired;
			n_after = folder_count(deliver_acct, "INBOX", &last);
			if (!fx.fired) {
				bad += rc != 0;
				delivered += rc == 0;
				continue;
			}
			if (is_benign((enum fault_kind)kind)) {
				if (rc != 0 || n_after != n_before + 1 ||
				    !reads_back(deliver_acct, res.uid, msg, DELIVER_SIZE)) {
					bad++;
					tap_diag(
					    "deliver %s at write %ld: rc %d (%s); not stored exactly",
					    kind_name[kind], k, rc, coffer_errmsg());
				}
				delivered++;
			} else if (!clean_error(rc, (enum fault_kind)kind) || n_after != n_before ||
			           blob_files() != blobs_before) {
				bad++;
				tap_diag(
				    "deliver %s at call %ld: rc %d (%s), messages %d -> %d, blob "
				    "files %d -> %d",
				    kind_name[kind], k, rc, rc < 0 ? coffer_errmsg() : "-",
				    n_before, n_after, blobs_before, blob_files());
			}
		}
	}
	ok(bad == 0,
	   "deliver: %d faulted runs (%d faults fired): clean errors (EIO -> EIO, "
	   "ENOSPC -> NOSPACE), nothing left of a failed delivery, exact copies after "
	   "benign faults",
	   runs, fired);
	ok(folder_count(deliver_acct, "INBOX", NULL) == (int)delivered,
	   "deliver: the folder holds exactly the %u successful deliveries", delivered);
	ok(store_sound(NULL), "deliver: verify finds no problem");
	free(msg);
}

/* ---- import ---- */

#define IMPORT_MSGS 9
static char maildir[PATH_MAX];

static void make_maildir(void)
{
	char p[PATH_MAX + 128];
	const char *subs[] = { "", "/.Work", "/.Work.Sub" };

	snprintf(maildir, sizeof maildir, "%s/maildir", dir);
	for (int d = 0; d < 3; d++) {
		const char *leaf[] = { "", "/cur", "/new", "/tmp" };

		for (int l = 0; l < 4; l++) {
			snprintf(p, sizeof p, "%s%s%s", maildir, subs[d], leaf[l]);
			mkdir(p, 0700);
		}
		snprintf(p, sizeof p, "%s%s/dovecot-keywords", maildir, subs[d]);
		write_file(p, "0 $Junk\n1 project-x\n", 20);
	}
	for (int i = 0; i < IMPORT_MSGS; i++) {
		/* sizes 1 KiB .. ~100 KiB: some messages span two chunks */
		size_t n = 1024 + (size_t)i * 12000;
		char *m = make_message(n, 100 + (unsigned)i);

		snprintf(p, sizeof p, "%s%s/%s/17000000%02d.M%dP1.host%s", maildir, subs[i % 3],
		         i % 2 ? "cur" : "new", i, i, i % 2 ? ":2,Sab" : "");
		write_file(p, m, n);
		free(m);
	}
}

static int do_import(const char *acct, struct coffer_import_stats *s)
{
	struct coffer_import_opts o = { .batch_messages = 2 };

	memset(s, 0, sizeof *s);
	return coffer_import_maildir(st, acct, maildir, &o, s);
}

static int account_blob_count(const char *acct)
{
	struct coffer_account_info info;
	struct coffer_buf p = COFFER_BUF_INIT;
	int n = -1;

	memset(&info, 0, sizeof info);
	if (coffer_account_show(st, acct, strlen(acct), &info) == 0 &&
	    coffer_store_account_dir(st, info.id, &p) == 0)
		n = files_under(coffer_buf_str(&p));
	coffer_account_info_clear(&info);
	coffer_buf_free(&p);
	return n;
}

static int import_total(const char *acct)
{
	const char *f[] = { "INBOX", "Work", "Work/Sub" };
	int total = 0;

	for (int i = 0; i < 3; i++) {
		int n = folder_count(acct, f[i], NULL);

		if (n < 0)
			return -1;
		total += n;
	}
	return total;
}

static void test_import(void)
{
	struct coffer_import_stats s;
	long w, f, r;
	int bad = 0, runs = 0, fired = 0, seq = 0;
	char acct[64];

	make_maildir();
	snprintf(acct, sizeof acct, "import%d@example.org", seq++);
	ok(coffer_account_add(st, acct, strlen(acct), NULL) == 0, "import: account");
	arm(F_NONE, 0);
	ok(do_import(acct, &s) == 0 && s.imported == IMPORT_MSGS, "import: counting run imports %d",
	   IMPORT_MSGS);
	disarm();
	coffer_import_stats_free(&s);
	w = fx.writes, f = fx.fsyncs, r = fx.reads;
	ok(w >= IMPORT_MSGS && r >= IMPORT_MSGS,
	   "import: %ld writes, %ld fsyncs, %ld reads to fault", w, f, r);
	/* 9 messages, 3 to a folder, batches of 2: 6 batches, each journaled */
	ok(fx.datasyncs == 6 && f >= fx.datasyncs,
	   "import: the journal's fdatasync, one per batch, is faultable (%ld of the %ld syncs)",
	   fx.datasyncs, f);

	for (int kind = F_EIO; kind < F_KINDS; kind++) {
		long limit = calls_of((enum fault_kind)kind, w, f, r);

		for (long k = 1; k <= limit; k++) {
			int rc, rc2, total, files;
			uint64_t before_total;

			snprintf(acct, sizeof acct, "import%d@example.org", seq++);
			if (coffer_account_add(st, acct, strlen(acct), NULL) != 0) {
				bad++;
				continue;
			}
			arm((enum fault_kind)kind, k);
			rc = do_import(acct, &s);
			disarm();
			runs++;
			fired += fx.fired;
			before_total = s.imported;
			coffer_import_stats_free(&s);
			total = import_total(acct);
			if (fx.fired && !is_benign((enum fault_kind)kind) && kind != F_READ_EIO &&
			    !clean_error(rc, (enum fault_kind)kind)) {
				bad++;
				tap_diag("import %s at call %ld: rc %d (%s)", kind_name[kind], k,
				         rc, rc < 0 ? coffer_errmsg() : "-");
			}
			if ((!fx.fired || is_benign((enum fault_kind)kind)) && rc != 0) {
				bad++;
				tap_diag("import %s at call %ld (benign or not fired): rc %d (%s)",
				         kind_name[kind], k, rc, coffer_errmsg());
			}
			/* committed batches are visible, the failed one is not */
			if (total != (int)before_total) {
				bad++;
				tap_diag(
				    "import %s at call %ld: %d messages visible, %llu reported "
				    "committed",
				    kind_name[kind], k, total, (unsigned long long)before_total);
			}
			if (!store_sound(NULL)) {
				bad++;
				tap_diag(
				    "import %s at call %ld: verify found problems after the fault",
				    kind_name[kind], k);
			}
			/* the next import completes it, leaving no orphan */
			rc2 = do_import(acct, &s);
			coffer_import_stats_free(&s);
			total = import_total(acct);
			files = account_blob_count(acct);
			if (rc2 != 0 || total != IMPORT_MSGS || files != IMPORT_MSGS) {
				bad++;
				tap_diag(
				    "import %s at call %ld: rerun rc %d (%s), %d messages, %d blob "
				    "files (want %d)",
				    kind_name[kind], k, rc2, rc2 < 0 ? coffer_errmsg() : "-", total,
				    files, IMPORT_MSGS);
			}
		}
	}
	ok(bad == 0,
	   "import: %d faulted runs (%d faults fired): clean errors, committed batches "
	   "kept and nothing of the failed batch visible; the rerun completes with no orphan",
	   runs, fired);
	ok(store_sound(NULL), "import: verify finds no problem");
}

/* ---- snapshot create ---- */

static char target[PATH_MAX];
static int snap_problems;

static void snap_problem(const struct coffer_snapverify_problem *p, void *arg)
{
	snap_problems++;
	if (quiet_failures++ < 20)
		tap_diag("snapshot verify: %s %s %s: %s", p->snapshot, p->account, p->object,
		         p->problem);
}

static int target_sound(void)
{
	struct coffer_repo *repo = NULL;
	struct coffer_snapverify_stats s;
	int rc;

	snap_problems = 0;
	memset(&s, 0, sizeof s);
	rc = coffer_repo_open(st, target, 0, &repo);
	if (rc == 0)
		rc = coffer_snapshot_verify(repo, 100, snap_problem, NULL, &s);
	coffer_repo_close(&repo);
	if (rc < 0)
		tap_diag("snapshot verify failed: %s", coffer_errmsg());
	return rc == 0 && s.problems == 0 && snap_problems == 0;
}

static int snapshot_count;
static int count_snap(const struct coffer_snapshot_info *info, void *arg)
{
	snapshot_count++;
	return 0;
}

static int snapshots(void)
{
	snapshot_count = 0;
	if (coffer_snapshot_list(st, target, count_snap, NULL) < 0)
		return -1;
	return snapshot_count;
}

static void test_snapshot(void)
{
	struct coffer_snapshot_result res;
	struct coffer_deliver_result dres;
	long w, f, r;
	int bad = 0, runs = 0, fired = 0;
	char *m;

	snprintf(target, sizeof target, "%s/target", dir);
	arm(F_NONE, 0);
	ok(coffer_snapshot_create(st, target, NULL, NULL, &res) == 0, "snapshot: first snapshot");
	disarm();
	/* the counting run: a snapshot with new mail in one account */
	m = make_message(DELIVER_SIZE, 7777);
	ok(do_deliver(m, DELIVER_SIZE, &dres) == 0, "snapshot: a new message");
	free(m);
	arm(F_NONE, 0);
	ok(coffer_snapshot_create(st, target, NULL, NULL, &res) == 0 && res.new_blobs == 1,
	   "snapshot: counting run copies 1 new blob");
	disarm();
	w = fx.writes, f = fx.fsyncs, r = fx.reads;
	ok(w >= 3 && r >= 1, "snapshot: %ld writes, %ld fsyncs, %ld reads to fault", w, f, r);

	for (int kind = F_EIO; kind < F_KINDS; kind++) {
		long limit = calls_of((enum fault_kind)kind, w, f, r);

		for (long k = 1; k <= limit; k++) {
			int before, after, rc;

			m = make_message(2000 + (size_t)runs, (unsigned)(9000 + runs));
			if (do_deliver(m, 2000 + (size_t)runs, &dres) != 0)
				bad++;
			free(m);
			before = snapshots();
			arm((enum fault_kind)kind, k);
			memset(&res, 0, sizeof res);
			rc = coffer_snapshot_create(st, target, NULL, NULL, &res);
			disarm();
			runs++;
			fired += fx.fired;
			after = snapshots();
			if (fx.fired && !is_benign((enum fault_kind)kind)) {
				if (!clean_error(rc, (enum fault_kind)kind) || after != before) {
					bad++;
					tap_diag(
					    "snapshot %s at call %ld: rc %d (%s), snapshots %d -> %d",
					    kind_name[kind], k, rc, rc < 0 ? coffer_errmsg() : "-",
					    before, after);
				}
			} else if (rc != 0 || after != before + 1) {
				bad++;
				tap_diag(
				    "snapshot %s at call %ld (benign or not fired): rc %d (%s)",
				    kind_name[kind], k, rc, rc < 0 ? coffer_errmsg() : "-");
			}
			if (!target_sound()) {
				bad++;
				tap_diag("snapshot %s at call %ld: the target does not verify",
				         kind_name[kind], k);
			}
			/* the next snapshot completes (recovering the pending one) */
			if (rc != 0) {
				memset(&res, 0, sizeof res);
				rc = coffer_snapshot_create(st, target, NULL, NULL, &res);
				if (rc != 0 || snapshots() != before + 1 || !target_sound()) {
					bad++;
					tap_diag(
					    "snapshot %s at call %ld: the next snapshot: rc %d (%s)",
					    kind_name[kind], k, rc, rc < 0 ? coffer_errmsg() : "-");
				}
			}
		}
	}
	ok(bad == 0,
	   "snapshot create: %d faulted runs (%d faults fired): clean errors, no "
	   "snapshot listed after a failure, the target verifies (100%% read), the next "
	   "snapshot succeeds",
	   runs, fired);
	ok(store_sound(NULL), "snapshot: verify of the store finds no problem");
}

/* ---- export ---- */

static int path_exists(const char *p)
{
	struct stat sb;

	return lstat(p, &sb) == 0;
}

static void test_export(void)
{
	struct coffer_mailbox *mb = NULL;
	struct coffer_export_stats s;
	char out[PATH_MAX + 32];
	long w[2], f[2], r[2];
	int bad = 0, runs = 0, fired = 0, rc;

	ok(coffer_mailbox_open(st, "import0@example.org", 19, &mb) == 0, "export: mailbox");
	for (int tar = 0; tar < 2; tar++) {
		snprintf(out, sizeof out, "%s/export-count%s", dir, tar ? ".tar" : "");
		arm(F_NONE, 0);
		rc = tar ? coffer_export_tar(mb, out, &s) : coffer_export_dir(mb, out, &s);
		disarm();
		ok(rc == 0 && s.messages == IMPORT_MSGS, "export %s: counting run",
		   tar ? "tar" : "dir");
		w[tar] = fx.writes, f[tar] = fx.fsyncs, r[tar] = fx.reads;
		ok(w[tar] >= IMPORT_MSGS, "export %s: %ld writes, %ld fsyncs, %ld reads to fault",
		   tar ? "tar" : "dir", w[tar], f[tar], r[tar]);
	}
	for (int tar = 0; tar < 2; tar++) {
		for (int kind = F_EIO; kind < F_KINDS; kind++) {
			long limit = calls_of((enum fault_kind)kind, w[tar], f[tar], r[tar]);

			for (long k = 1; k <= limit; k++) {
				snprintf(out, sizeof out, "%s/export-%d-%d-%ld%s", dir, tar, kind,
				         k, tar ? ".tar" : "");
				arm((enum fault_kind)kind, k);
				memset(&s, 0, sizeof s);
				rc = tar ? coffer_export_tar(mb, out, &s)
				         : coffer_export_dir(mb, out, &s);
				disarm();
				runs++;
				fired += fx.fired;
				/* BUG: maildir/archive.c link_into_place(): when the
				 * directory fsync after linking the tar into place
				 * fails, coffer_export_tar() returns COFFER_EIO but
				 * leaves the file at its final name ("a file appears
				 * only complete and durable", export.h), and a retry
				 * is refused as existing. */
				if (fx.fired && !is_benign((enum fault_kind)kind)) {
					if (!clean_error(rc, (enum fault_kind)kind) ||
					    path_exists(out)) {
						bad++;
						tap_diag(
						    "export %s %s at call %ld: rc %d (%s); %s left",
						    tar ? "tar" : "dir", kind_name[kind], k, rc,
						    rc < 0 ? coffer_errmsg() : "-",
						    path_exists(out) ? "something" : "nothing");
					}
				} else if (rc != 0 || s.messages != IMPORT_MSGS) {
					bad++;
					tap_diag(
					    "export %s %s at call %ld (benign or not fired): rc %d (%s)",
					    tar ? "tar" : "dir", kind_name[kind], k, rc,
					    rc < 0 ? coffer_errmsg() : "-");
				}
			}
		}
	}
	coffer_mailbox_close(&mb);
	ok(bad == 0,
	   "export dir and tar: %d faulted runs (%d faults fired): clean errors, no "
	   "partial tree or archive left",
	   runs, fired);
	ok(store_sound(NULL), "export: verify finds no problem");
}

/* ---- the audit log's tail repair ---- */

#define AUDIT_PARTIAL "{\"seq\": 99, \"time\": \"2026-11-29T12:4"

static char audit_log[PATH_MAX + 16];

/* coffer audit verify: the entries, or -1 (with a diagnostic) when the chain
 * does not verify. */
static long audit_entries(void)
{
	uint64_t n = 0;
	int rc = coffer_audit_verify(st, &n);

	if (rc < 0) {
		if (quiet_failures++ < 20)
			tap_diag("audit verify: %s", coffer_errmsg());
		return -1;
	}
	return (long)n;
}

static off_t file_size(const char *p)
{
	struct stat sb;

	return stat(p, &sb) == 0 ? sb.st_size : -1;
}

/* What a crash in the middle of an append leaves: a line without its end. */
static int add_partial_tail(void)
{
	int fd = open(audit_log, O_WRONLY | O_APPEND);
	int ok_ = fd >= 0 &&
	          write(fd, AUDIT_PARTIAL, strlen(AUDIT_PARTIAL)) == (ssize_t)strlen(AUDIT_PARTIAL);

	if (fd >= 0)
		close(fd);
	return ok_ ? 0 : -1;
}

struct last_entry {
	char action[64], detail[128];
};

static int note_last(const struct coffer_audit_record *r, void *arg)
{
	struct last_entry *l = arg;

	if (strcmp(r->action, "recovery") == 0)
		return 0; /* written after the entry of the append that cut a tail */
	snprintf(l->action, sizeof l->action, "%s", r->action);
	snprintf(l->detail, sizeof l->detail, "%s", r->detail);
	return 0;
}

/*
 * An append that finds a partial last line cuts it (pread, ftruncate, fsync)
 * and writes its entry and then a recovery entry (each a write and an fsync).
 * Every one of those reads, writes and syncs is faulted. Afterwards, with the
 * system calls back: the error is clean; the log is as the crash left it
 * (the fault came before the cut) or it verifies, with every earlier entry;
 * the next append works, and then the log verifies and ends with it (and
 * the recovery entry, when that append is the one that cuts the tail).
 */
static void test_audit(void)
{
	struct last_entry last;
	long w, f, r, before, after;
	int bad = 0, runs = 0, fired = 0, rc;
	char detail[64];

	snprintf(audit_log, sizeof audit_log, "%s/audit.log", store_path);
	for (int i = 0; i < 3; i++) {
		snprintf(detail, sizeof detail, "count=%d", i);
		if (coffer_audit_append(st, "snapshot", NULL, detail) != 0)
			bad++;
	}
	ok(bad == 0 && audit_entries() == 3, "audit: a log of 3 entries verifies");
	ok(add_partial_tail() == 0, "audit: a partial last line, as a crash leaves it");
	arm(F_NONE, 0);
	rc = coffer_audit_append(st, "snapshot", NULL, "counting");
	disarm();
	w = fx.writes, f = fx.fsyncs, r = fx.reads;
	ok(rc == 0 && audit_entries() == 5, "audit: counting run cuts the tail, appends its entry "
	                                    "and a recovery entry");
	ok(w >= 2 && f >= 3 && r >= 2, "audit: %ld writes, %ld fsyncs, %ld reads to fault", w, f,
	   r);

	for (int kind = F_EIO; kind < F_KINDS; kind++) {
		long limit = calls_of((enum fault_kind)kind, w, f, r);

		for (long k = 1; k <= limit; k++) {
			off_t torn_size;

			before = audit_entries();
			if (before < 0 || add_partial_tail() != 0) {
				bad++;
				continue;
			}
			torn_size = file_size(audit_log);
			snprintf(detail, sizeof detail, "run=%d", runs);
			arm((enum fault_kind)kind, k);
			rc = coffer_audit_append(st, "snapshot", NULL, detail);
			disarm();
			runs++;
			fired += fx.fired;
			if (fx.fired && !is_benign((enum fault_kind)kind)) {
				if (!clean_error(rc, (enum fault_kind)kind)) {
					bad++;
					tap_diag("audit %s at call %ld: rc %d (%s)",
					         kind_name[kind], k, rc,
					         rc < 0 ? coffer_errmsg() : "-");
				}
			} else if (rc != 0) {
				bad++;
				tap_diag("audit %s at call %ld (benign or not fired): rc %d (%s)",
				         kind_name[kind], k, rc, coffer_errmsg());
			}
			/* untouched (still torn as the crash left it), or sound */
			if (file_size(audit_log) != torn_size) {
				after = audit_entries();
				if (after < before || after > before + 2) {
					bad++;
					tap_diag(
					    "audit %s at call %ld: %ld entries before, %ld after (-1: "
					    "does not verify)",
					    kind_name[kind], k, before, after);
				}
			}
			/* the next append repairs whatever is left */
			memset(&last, 0, sizeof last);
			rc = coffer_audit_append(st, "prune", NULL, detail);
			after = audit_entries();
			if (rc == 0)
				rc = coffer_audit_list(st, NULL, note_last, &last);
			if (rc != 0 || after < before + 1 || strcmp(last.action, "prune") != 0 ||
			    strcmp(last.detail, detail) != 0) {
				bad++;
				tap_diag(
				    "audit %s at call %ld: the next append: rc %d (%s), %ld entries "
				    "(before %ld), last %s %s",
				    kind_name[kind], k, rc, rc < 0 ? coffer_errmsg() : "-", after,
				    before, last.action, last.detail);
			}
		}
	}
	ok(bad == 0,
	   "audit: %d faulted runs (%d faults fired) of an append that repairs a torn "
	   "tail: clean errors, the log as the crash left it or verifying with every earlier "
	   "entry, the next append works and the log verifies",
	   runs, fired);
	ok(store_sound(NULL), "audit: verify of the store finds no problem");
}

int main(void)
{
	/* Real durability is not what is tested here (the faults are injected
	 * above the system calls), and hundreds of runs of fsync-heavy writers
	 * on a disk take minutes: use tmpfs when there is one, unless
	 * FAULTS_TMPDIR names the place. */
	if (getenv("FAULTS_TMPDIR"))
		setenv("TMPDIR", getenv("FAULTS_TMPDIR"), 1);
	else if (access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
	snprintf(dir, sizeof dir, "%s", tap_tmpdir());
	snprintf(store_path, sizeof store_path, "%s/store", dir);
	snprintf(key_path, sizeof key_path, "%s/coffer.key", dir);
	if (coffer_store_init(store_path, key_path, &st) != 0) {
		ok(0, "init: %s", coffer_errmsg());
		return tap_done();
	}
	test_deliver();
	test_import();
	test_snapshot();
	test_export();
	test_audit();
	coffer_store_close(&st);
	return tap_done();
}
