/*
 * test-shred.c: crypto-shredding through the library (policy/shred.h).
 *
 * Preconditions refuse without changing anything (unknown account, an active
 * account without terminate, an unreadable key file); a purge makes the
 * account unreadable in the live store, in a copy of the store taken before
 * (opened with the key file as it is after the purge), and in the snapshot
 * target; its blobs and events are gone; no canary of it is left in
 * plaintext anywhere; the other accounts still read their mail and their key
 * file epoch moved on; a second purge is COFFER_ESHREDDED; the audit log
 * records the purge under the pseudonym, never the name.
 *
 * The same program is a helper for the shell tests and the benchmark
 * (integration/test-retention.sh, bench/policy.sh), because the command line
 * has no expunge and no bulk event writer:
 *   test-shred expunge STORE KEYFILE ACCOUNT UID        expunge INBOX uid UID
 *   test-shred accounts STORE KEYFILE PREFIX N          add PREFIXi@bench.test
 *   test-shred events STORE KEYFILE PREFIX NACCT N FROM_S STEP_S
 *        N events spread round-robin over NACCT accounts, times FROM_S + i*STEP_S
 *        (Unix seconds), 50,000 per transaction; secretboxes under the
 *        account keys of the first 64 accounts (as `coffer auth` writes
 *        them), sealed boxes for the rest (as `coffer deliver` writes them)
 *   test-shred login STORE KEYFILE ACCOUNT               a successful IMAP login
 *        event at COFFER_NOW (what `coffer auth` records, without its slow
 *        password hashing)
 */
#include "tap.h"
#include "fixture.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/keyfile.h"
#include "engine/message.h"
#include "engine/record.h"
#include "engine/store.h"
#include "maildir/deliver.h"
#include "policy/audit.h"
#include "engine/events.h"
#include "policy/shred.h"
#include "snapshots/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

struct xp {
	struct coffer_store *st;
	struct coffer_mailbox *mb;
	uint32_t uid;
	int64_t now;
};

static int expunge_txn(struct coffer_txn *t, void *arg)
{
	struct xp *x = arg;
	struct coffer_message_rec rec;
	struct coffer_buf uniq = COFFER_BUF_INIT;
	int rc;

	rc = coffer_message_get_txn(t, coffer_mailbox_id(x->mb), 0, x->uid, &rec);
	if (rc == 0)
		rc = coffer_message_unique_name(&rec, coffer_mailbox_id(x->mb),
		                                coffer_mailbox_secret(x->mb), &uniq);
	if (rc == 0)
		rc = coffer_message_expunge_txn(t, x->st, coffer_mailbox_id(x->mb), 0, x->uid,
		                                coffer_buf_str(&uniq), uniq.len, x->now);
	coffer_buf_free(&uniq);
	return rc;
}

static int helper_expunge(char **argv)
{
	struct coffer_store *st = NULL;
	struct xp x = { 0 };
	int rc;

	rc = coffer_store_open(argv[2], argv[3], &st);
	if (rc == 0)
		rc = coffer_mailbox_open(st, argv[4], strlen(argv[4]), &x.mb);
	if (rc == 0)
		rc = coffer_clock_now(&x.now);
	x.st = st;
	x.uid = (uint32_t)strtoul(argv[5], NULL, 10);
	if (rc == 0)
		rc = coffer_index_update(coffer_store_index(st), expunge_txn, &x);
	if (rc < 0)
		fprintf(stderr, "expunge: %s\n", coffer_errmsg());
	coffer_mailbox_close(&x.mb);
	coffer_store_close(&st);
	return rc < 0 ? 1 : 0;
}

static int helper_accounts(char **argv)
{
	struct coffer_store *st = NULL;
	long n = strtol(argv[5], NULL, 10);
	char name[256];
	int rc;

	rc = coffer_store_open(argv[2], argv[3], &st);
	for (long i = 0; rc == 0 && i < n; i++) {
		snprintf(name, sizeof name, "%s%ld@bench.test", argv[4], i);
		rc = coffer_account_add(st, name, strlen(name), NULL);
	}
	if (rc < 0)
		fprintf(stderr, "accounts: %s\n", coffer_errmsg());
	coffer_store_close(&st);
	return rc < 0 ? 1 : 0;
}

#define EV_SECRETS 64

struct ev_args {
	unsigned char (*ids)[COFFER_ID_BYTES];
	unsigned char (*pks)[COFFER_PK_BYTES];
	struct coffer_acct_secret *secrets[EV_SECRETS];
	long nacct, from, to;
	int64_t t0, step;
};

static int events_txn(struct coffer_txn *t, void *arg)
{
	struct ev_args *a = arg;
	int rc = 0;

	for (long i = a->from; rc == 0 && i < a->to; i++) {
		long k = i % a->nacct;
		struct coffer_event ev;

		if (k < EV_SECRETS && a->secrets[k]) {
			memset(&ev, 0, sizeof ev);
			ev.type = COFFER_EVENT_LOGIN;
			ev.at = a->t0 + (int64_t)i * a->step;
			ev.service = COFFER_SVC_IMAP;
			ev.reason = COFFER_REASON_BAD_PASSWORD;
			ev.label = "";
			rc = coffer_events_record_txn(t, a->ids[k], a->pks[k], a->secrets[k], &ev);
		} else {
			rc = coffer_events_record_delivery_txn(t, a->ids[k], a->pks[k], NULL, NULL,
			                                       a->t0 + (int64_t)i * a->step, 1000,
			                                       "INBOX", 5);
		}
	}
	return rc;
}

struct ids_args {
	struct coffer_store *st;
	const char *prefix;
	struct ev_args *ev;
};

static int ids_txn(struct coffer_txn *t, void *arg)
{
	struct ids_args *a = arg;
	struct coffer_account_rec rec;
	char name[256];
	int rc = 0;

	for (long i = 0; rc == 0 && i < a->ev->nacct; i++) {
		snprintf(name, sizeof name, "%s%ld@bench.test", a->prefix, i);
		rc = coffer_account_lookup_txn(t, a->st, name, a->ev->ids[i], &rec);
		if (rc == 0)
			memcpy(a->ev->pks[i], rec.pk, COFFER_PK_BYTES);
		if (rc == 0 && i < EV_SECRETS)
			rc = coffer_account_unlock(a->st, a->ev->ids[i], &rec, &a->ev->secrets[i]);
	}
	return rc;
}

static int helper_events(char **argv)
{
	struct coffer_store *st = NULL;
	struct ev_args a;
	struct ids_args ia;
	long n = strtol(argv[6], NULL, 10);
	int rc;

	memset(&a, 0, sizeof a);
	a.nacct = strtol(argv[5], NULL, 10);
	a.t0 = (int64_t)strtoll(argv[7], NULL, 10) * COFFER_NS_PER_SEC;
	a.step = (int64_t)(strtod(argv[8], NULL) * (double)COFFER_NS_PER_SEC);
	a.ids = calloc((size_t)a.nacct, COFFER_ID_BYTES);
	a.pks = calloc((size_t)a.nacct, COFFER_PK_BYTES);
	if (a.nacct <= 0 || a.ids == NULL || a.pks == NULL)
		return 2;
	rc = coffer_store_open(argv[2], argv[3], &st);
	ia = (struct ids_args){ st, argv[4], &a };
	if (rc == 0)
		rc = coffer_index_view(coffer_store_index(st), ids_txn, &ia);
	for (long i = 0; rc == 0 && i < n; i += 50000) {
		a.from = i;
		a.to = i + 50000 < n ? i + 50000 : n;
		rc = coffer_index_update(coffer_store_index(st), events_txn, &a);
	}
	if (rc < 0)
		fprintf(stderr, "events: %s\n", coffer_errmsg());
	for (int i = 0; i < EV_SECRETS; i++)
		coffer_acct_secret_free(&a.secrets[i]);
	coffer_store_close(&st);
	free(a.ids);
	free(a.pks);
	return rc < 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ tests */

static struct fixture_paths fp;
static char copy_path[1024];
static struct coffer_store *st;

static void set_now(const char *iso)
{
	setenv("COFFER_NOW", iso, 1);
}

/* Reads INBOX uid of name into out; returns the error code. */
static int read_msg(struct coffer_store *s, const char *name, uint32_t uid, struct coffer_buf *out)
{
	struct coffer_mailbox *mb = NULL;
	struct coffer_message_reader *r = NULL;
	char buf[4096];
	size_t n;
	int rc;

	coffer_buf_reset(out);
	rc = coffer_mailbox_open(s, name, strlen(name), &mb);
	if (rc == 0)
		rc = coffer_message_open(mb, 0, "INBOX", uid, &r);
	while (rc == 0 && (rc = coffer_message_read(r, buf, sizeof buf, &n)) == 0 && n > 0)
		coffer_buf_append(out, buf, n);
	coffer_message_close(&r);
	coffer_mailbox_close(&mb);
	return rc;
}

/* 1 if needle occurs in any regular file under dir. */
static int grep_tree(const char *dir, const char *needle)
{
	char cmd[4096];

	snprintf(cmd, sizeof cmd, "grep -r -a -q -F -e '%s' '%s' 2>/dev/null", needle, dir);
	return system(cmd) == 0;
}

static int count_files(const char *dir)
{
	char cmd[2200];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof cmd, "find '%s' -type f 2>/dev/null | wc -l", dir);
	p = popen(cmd, "r");
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

static int audit_count(const struct coffer_audit_record *r, void *arg)
{
	int *n = arg;

	if (!strcmp(r->action, "purge"))
		(*n)++;
	return 0;
}

struct login_args {
	struct coffer_mailbox *mb;
	int64_t at;
};

static int login_txn(struct coffer_txn *t, void *arg)
{
	struct login_args *a = arg;
	const struct coffer_acct_secret *s = coffer_mailbox_secret(a->mb);
	struct coffer_event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = COFFER_EVENT_LOGIN;
	ev.at = a->at;
	ev.success = 1;
	ev.service = COFFER_SVC_IMAP;
	ev.label = "canarylabelALICE";
	return coffer_events_record_txn(t, coffer_mailbox_id(a->mb), s->pk, s, &ev);
}

static int add_login(const char *name, int64_t at)
{
	struct login_args a = { NULL, at };
	int rc = coffer_mailbox_open(st, name, strlen(name), &a.mb);

	if (rc == 0)
		rc = coffer_index_update(coffer_store_index(st), login_txn, &a);
	coffer_mailbox_close(&a.mb);
	return rc;
}

static int helper_login(char **argv)
{
	int64_t now;
	int rc;

	rc = coffer_store_open(argv[2], argv[3], &st);
	if (rc == 0)
		rc = coffer_clock_now(&now);
	if (rc == 0)
		rc = add_login(argv[4], now);
	if (rc < 0)
		fprintf(stderr, "login: %s\n", coffer_errmsg());
	coffer_store_close(&st);
	return rc < 0 ? 1 : 0;
}

static void test_shred(void)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	struct coffer_shred_result res;
	struct coffer_snapshot_result sres;
	struct coffer_account_info info;
	struct coffer_keyfile *kf = NULL;
	struct coffer_store *copy = NULL;
	char acct_dir_alice[1100], cmd[4200], badkey[1100];
	uint64_t epoch_before, epoch_after;
	int rc, purges = 0;
	int64_t now;

	ok(fixture_deliver(st, "alice@example.org", "Subject: s1\n\nCANARYalice0001 body\n") == 0,
	   "deliver to alice");
	ok(fixture_deliver(st, "alice@example.org", "Subject: CANARYalice0002subject\n\nmore\n") ==
	       0,
	   "second message to alice");
	ok(fixture_deliver(st, "bob@example.org", "Subject: b\n\nbob keeps this CANARYbob0001\n") ==
	       0,
	   "deliver to bob");
	coffer_clock_now(&now);
	ok(add_login("alice@example.org", now) == 0, "an access event for alice");
	rc = coffer_snapshot_create(st, NULL, NULL, NULL, &sres);
	ok(rc == 0, "snapshot before the purge (%s)", rc ? coffer_errmsg() : sres.id);

	/* a stale copy of the store and the target, taken before (no key file) */
	snprintf(cmd, sizeof cmd, "cp -a '%s' '%s/copy-store' && cp -a '%s' '%s/copy-target'",
	         fp.store, tap_tmpdir(), fp.target, tap_tmpdir());
	ok(system(cmd) == 0, "copied the store and the target");
	snprintf(copy_path, sizeof copy_path, "%s/copy-store", tap_tmpdir());

	ok(coffer_store_keyfile(st, &kf) == 0, "key file loads");
	epoch_before = coffer_keyfile_epoch(kf);

	/* refusals change nothing */
	rc = coffer_shred_account(st, "nobody@example.org", 0, "request", &res);
	ok(rc == COFFER_ENOACCOUNT || rc == COFFER_ENOTFOUND, "unknown account refused (%d)", rc);
	rc = coffer_shred_account(st, "alice@example.org", 0, "request", &res);
	ok(rc == COFFER_EINVAL, "active account without terminate refused (%d)", rc);
	ok(read_msg(st, "alice@example.org", 1, &b) == 0 &&
	       strstr(coffer_buf_str(&b), "CANARYalice0001"),
	   "alice is intact after the refusals");
	rc = coffer_shred_account(st, "not a valid name", 0, "request", &res);
	ok(rc < 0, "an invalid name is refused");

	/* an unreadable key file: refused, nothing changed */
	{
		struct coffer_store *s2 = NULL;

		snprintf(badkey, sizeof badkey, "%s/missing.key", tap_tmpdir());
		rc = coffer_store_open(fp.store, badkey, &s2);
		if (rc == 0) {
			rc = coffer_shred_account(s2, "alice@example.org", 1, "request", &res);
			ok(rc < 0, "purge with a missing key file fails (%d)", rc);
			coffer_store_close(&s2);
		} else {
			ok(rc < 0, "a store with a missing key file does not even open (%d)", rc);
		}
		ok(coffer_account_show(st, "alice@example.org", 17, &info) == 0 &&
		       info.state == COFFER_ACCOUNT_ACTIVE && info.messages == 2,
		   "alice is still active with 2 messages");
		coffer_account_info_clear(&info);
	}

	snprintf(acct_dir_alice, sizeof acct_dir_alice, "%s/blobs", fp.store);
	{
		struct coffer_mailbox *mb = NULL;
		struct coffer_buf d = COFFER_BUF_INIT;

		coffer_mailbox_open(st, "alice@example.org", 17, &mb);
		if (mb)
			coffer_store_account_dir(st, coffer_mailbox_id(mb), &d);
		snprintf(acct_dir_alice, sizeof acct_dir_alice, "%s", coffer_buf_str(&d));
		coffer_buf_free(&d);
		coffer_mailbox_close(&mb);
	}
	ok(access(acct_dir_alice, F_OK) == 0, "alice's blob directory exists before");

	rc = coffer_shred_account(st, "alice@example.org", 1, "request", &res);
	ok(rc == 0, "purge with terminate (%s)", rc ? coffer_errmsg() : "ok");
	ok(res.shredded_at > 0 && res.records > 0, "the result counts deleted records (%llu)",
	   (unsigned long long)res.records);
	ok(res.other_accounts >= 2, "the other accounts were re-keyed (%llu)",
	   (unsigned long long)res.other_accounts);
	ok(res.target_objects > 0, "snapshot objects of alice deleted (%llu)",
	   (unsigned long long)res.target_objects);

	/* reload the key file as it is now */
	coffer_store_close(&st);
	ok(coffer_store_open(fp.store, fp.key, &st) == 0, "store reopens");
	ok(coffer_store_keyfile(st, &kf) == 0, "key file loads after the purge");
	epoch_after = coffer_keyfile_epoch(kf);
	ok(epoch_after == epoch_before + 1 && !coffer_keyfile_rotating(kf),
	   "the key file moved to epoch %llu with one master only",
	   (unsigned long long)epoch_after);

	rc = read_msg(st, "alice@example.org", 1, &b);
	ok(rc == COFFER_ESHREDDED, "alice cannot be opened: shredded (%d)", rc);
	ok(coffer_account_show(st, "alice@example.org", 17, &info) == 0 &&
	       info.state == COFFER_ACCOUNT_SHREDDED && info.shredded_at == res.shredded_at &&
	       info.messages == 0,
	   "the tombstone tells when alice was shredded");
	coffer_account_info_clear(&info);
	ok(access(acct_dir_alice, F_OK) != 0, "alice's blob directory is gone");
	ok(read_msg(st, "bob@example.org", 1, &b) == 0 &&
	       strstr(coffer_buf_str(&b), "CANARYbob0001"),
	   "bob still reads his mail");
	ok(read_msg(st, "carol@example.org", 1, &b) == COFFER_ENOTFOUND ||
	       read_msg(st, "carol@example.org", 1, &b) == 0,
	   "carol still opens");

	rc = coffer_shred_account(st, "alice@example.org", 1, "request", &res);
	ok(rc == COFFER_ESHREDDED, "a second purge is COFFER_ESHREDDED (%d)", rc);
	ok(coffer_shred_resume(st, &res) == 0 && res.shredded_at == 0, "nothing left to resume");

	/* the stale copy, opened with the key file as it is now */
	rc = coffer_store_open(copy_path, fp.key, &copy);
	ok(rc == 0, "the stale copy opens with the current key file");
	if (rc == 0) {
		rc = read_msg(copy, "alice@example.org", 1, &b);
		ok(rc < 0 && strstr(coffer_buf_str(&b), "CANARY") == NULL,
		   "alice's mail cannot be read from the stale copy (%d: %s)", rc, coffer_errmsg());
		coffer_store_close(&copy);
	}

	/* no plaintext canary anywhere */
	ok(!grep_tree(fp.store, "CANARYalice") && !grep_tree(fp.target, "CANARYalice") &&
	       !grep_tree(copy_path, "CANARYalice") && !grep_tree(fp.store, "canarylabelALICE") &&
	       !grep_tree(fp.store, "alice@example.org") &&
	       !grep_tree(fp.target, "alice@example.org"),
	   "no plaintext canary or name of alice in the store, the target or the copy");

	/* the audit log has one purge entry, under the pseudonym */
	{
		char ps[COFFER_AUDIT_PSEUDONYM_MAX];
		uint64_t entries = 0;

		ok(coffer_audit_pseudonym(st, "alice@example.org", ps) == 0, "pseudonym");
		rc = coffer_audit_list(st, ps, audit_count, &purges);
		ok(rc == 0 && purges == 1,
		   "the audit log has the purge under alice's pseudonym (%d)", purges);
		rc = coffer_audit_verify(st, &entries);
		ok(rc == 0 && entries >= 1, "the audit chain verifies (%llu entries)",
		   (unsigned long long)entries);
		snprintf(cmd, sizeof cmd, "%s/audit.log", fp.store);
		ok(!grep_tree(cmd, "alice"), "the audit log does not name alice");
	}

	/* the snapshot target: bob's data remains, a new snapshot works */
	ok(count_files(fp.target) > 0, "the target still holds objects");
	rc = coffer_snapshot_create(st, NULL, NULL, NULL, &sres);
	ok(rc == 0, "a snapshot after the purge (%s)", rc ? coffer_errmsg() : "ok");
	coffer_buf_free(&b);
}

/*
 * Step 7 under faults: the purge's audit entry and the end of shred_pending
 * commit together. An entry whose line was written but whose fsync failed
 * (as a crash between the line and its head would leave it) keeps the
 * purge pending, and the resume records no second entry; an entry whose
 * write failed (cut again at once) keeps it pending, and the resume writes
 * it. Either way the log ends with exactly one purge of the account.
 */
static int fail_on_audit; /* 1: its fsync fails, 2: its write fails */

static int is_audit_log(int fd)
{
	char link[64], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof target - 1);
	if (n <= 0)
		return 0;
	target[n] = '\0';
	return n >= 10 && strcmp(target + n - 10, "/audit.log") == 0;
}

static ssize_t audit_write(int fd, const void *p, size_t n)
{
	if (fail_on_audit == 2 && is_audit_log(fd)) {
		errno = EIO;
		return -1;
	}
	return write(fd, p, n);
}

static int audit_fsync(int fd)
{
	if (fail_on_audit == 1 && is_audit_log(fd)) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static const struct coffer_io_ops audit_fault_ops = {
	.write = audit_write,
	.pwrite = pwrite,
	.read = read,
	.pread = pread,
	.fsync = audit_fsync,
};

static void test_entry_faults(void)
{
	static const char *names[] = { "dave@example.org", "erin@example.org" };
	struct coffer_shred_result res;

	for (int kind = 1; kind <= 2; kind++) {
		const char *name = names[kind - 1], *what = kind == 1 ? "fsync" : "write";
		char ps[COFFER_AUDIT_PSEUDONYM_MAX];
		int purges = 0, rc;
		uint64_t entries = 0;

		ok(coffer_account_add(st, name, strlen(name), NULL) == 0 &&
		       fixture_deliver(st, name, "Subject: x\n\nbody\n") == 0,
		   "%s: an account with mail", name);
		fail_on_audit = kind;
		coffer_io_set_ops(&audit_fault_ops);
		rc = coffer_shred_account(st, name, 1, "request", &res);
		coffer_io_set_ops(NULL);
		fail_on_audit = 0;
		ok(rc == COFFER_EIO, "%s: the purge fails when its audit entry's %s does (%d)",
		   name, what, rc);
		rc = coffer_shred_resume(st, &res);
		ok(rc == 0 && res.shredded_at > 0, "%s: the resume finishes the pending purge (%d)",
		   name, rc);
		ok(coffer_shred_resume(st, &res) == 0 && res.shredded_at == 0,
		   "%s: nothing is pending after it", name);
		rc = coffer_audit_pseudonym(st, name, ps);
		if (rc == 0)
			rc = coffer_audit_list(st, ps, audit_count, &purges);
		ok(rc == 0 && purges == 1, "%s: the log holds the purge once (%d)", name, purges);
		rc = coffer_audit_verify(st, &entries);
		ok(rc == 0, "%s: the audit chain verifies (%d)", name, rc);
	}
}

int main(int argc, char **argv)
{
	int rc;

	if (sodium_init() < 0)
		return 1;
	if (argc == 6 && !strcmp(argv[1], "expunge"))
		return helper_expunge(argv);
	if (argc == 6 && !strcmp(argv[1], "accounts"))
		return helper_accounts(argv);
	if (argc == 5 && !strcmp(argv[1], "login"))
		return helper_login(argv);
	if (argc == 9 && !strcmp(argv[1], "events"))
		return helper_events(argv);

	set_now("2026-03-01T10:00:00Z");
	rc = fixture_store("target", &st, &fp);
	ok(rc == 0 && coffer_store_config(st)->snapshot_target, "a store with a snapshot target");
	if (rc < 0)
		return tap_done();
	ok(coffer_account_add(st, "alice@example.org", 17, NULL) == 0, "add alice");
	ok(coffer_account_add(st, "bob@example.org", 15, NULL) == 0, "add bob");
	ok(coffer_account_add(st, "carol@example.org", 17, NULL) == 0, "add carol");
	test_shred();
	test_entry_faults();
	coffer_store_close(&st);
	return tap_done();
}
