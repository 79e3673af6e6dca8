/*
 * job.c: policy actions that reach the audit log exactly once (see job.h).
 *
 * The intent: META "job/<16 hex>" = "<action> <began ns> <pid> <start>
 * <proven> <account or ->", where start is the process's start time (field
 * 22 of /proc/<pid>/stat), so that a pid the kernel gave to another process
 * since is not taken for the job's, and proven is 1 when the intent was
 * committed with the change. Stores written before this module kept at most
 * one worker intent under META "worker_job" ("<action> <began> <id>"); it is
 * recovered the same way.
 *
 * Recoveries take the store's "jobs" lock (locks/jobs.lock), so two never
 * record the same intent. An intent of the recovering process itself is
 * stale: a process runs its jobs one at a time and recovers only between
 * them (the worker's loop does both in one process).
 */
#include "job.h"

#include "engine/account.h"
#include "engine/buf.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/record.h"
#include "snapshots/snapshot.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define PREFIX "job/"
#define PREFIX_LEN 4
#define LEGACY_KEY "worker_job"
#define LEGACY_KEY_LEN 10
#define KEY_MAX (PREFIX_LEN + COFFER_JOB_ID_CHARS)

unsigned long long coffer_job_proc_start(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	FILE *f;
	size_t n;
	int i;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name, in parentheses, may hold spaces: count fields
	 * after its closing one (field 2); the state is field 3, the start
	 * time field 22. A zombie (Z) or dying (X) process has ended: a
	 * process killed while its parent does not reap it (an orphan whose
	 * new parent is slow to) must not pass for running */
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X' || p[2] == 'x')
		return 0;
	for (i = 2; p && i < 22; i++)
		p = strchr(p + 1, ' ');
	if (p)
		start = strtoull(p + 1, NULL, 10);
	return start;
}

static void job_key(const struct coffer_job *j, char key[KEY_MAX])
{
	snprintf(key, KEY_MAX, PREFIX "%s", j->id);
}

struct put_args {
	const struct coffer_job *j;
	int proven;
	coffer_txn_fn fn;
	void *arg;
	long pid;
	unsigned long long start; /* read before the transaction: no file I/O
	                             under the index's writer lock */
};

static int put_txn(struct coffer_txn *t, void *arg)
{
	struct put_args *a = arg;
	char key[KEY_MAX], v[160];
	int rc = a->fn ? a->fn(t, a->arg) : 0;

	if (rc < 0)
		return rc;
	job_key(a->j, key);
	snprintf(v, sizeof v, "%s %" PRId64 " %ld %llu %d %s", a->j->action, a->j->began, a->pid,
	         a->start, a->proven, a->j->account[0] ? a->j->account : "-");
	return coffer_txn_put(t, COFFER_DB_META, key, strlen(key), v, strlen(v), 0);
}

static int begin(struct coffer_store *st, struct coffer_job *j, const char *action,
                 const char *account, int64_t now, coffer_txn_fn fn, void *arg)
{
	struct put_args a = { j, fn != NULL, fn, arg, (long)getpid(), 0 };
	unsigned char r[8];

	a.start = coffer_job_proc_start(a.pid);
	snprintf(j->action, sizeof j->action, "%s", action);
	snprintf(j->account, sizeof j->account, "%s", account ? account : "");
	coffer_random(r, sizeof r);
	coffer_hex(j->id, r, sizeof r);
	j->began = now;
	return coffer_index_update(coffer_store_index(st), put_txn, &a);
}

int coffer_job_begin(struct coffer_store *st, struct coffer_job *j, const char *action,
                     const char *account, int64_t now)
{
	return begin(st, j, action, account, now, NULL, NULL);
}

int coffer_job_begin_with(struct coffer_store *st, struct coffer_job *j, const char *action,
                          const char *account, int64_t now, coffer_txn_fn fn, void *arg)
{
	return begin(st, j, action, account, now, fn, arg);
}

static int del_txn(struct coffer_txn *t, void *arg)
{
	const char *key = arg;
	int rc = coffer_txn_del(t, COFFER_DB_META, key, strlen(key));

	return rc == COFFER_ENOTFOUND ? 0 : rc;
}

struct raw_key {
	const char *p;
	size_t n;
};

static int del_raw_txn(struct coffer_txn *t, void *arg)
{
	const struct raw_key *k = arg;
	int rc = coffer_txn_del(t, COFFER_DB_META, k->p, k->n);

	return rc == COFFER_ENOTFOUND ? 0 : rc;
}

/* The entry of job id under key: detail, then " job=<id>". */
static int record(struct coffer_store *st, const char *key, const char *action,
                  const char *pseudonym, const char *id, const char *detail)
{
	struct coffer_buf d = COFFER_BUF_INIT;
	int rc;

	coffer_buf_printf(&d, "%s%sjob=%s", detail, detail[0] ? " " : "", id);
	rc = coffer_buf_ok(&d);
	if (rc == 0)
		rc = coffer_audit_append_txn(st, action, pseudonym, coffer_buf_str(&d), del_txn,
		                             (void *)key);
	coffer_buf_free(&d);
	return rc;
}

int coffer_job_end(struct coffer_store *st, const struct coffer_job *j, const char *detail)
{
	char key[KEY_MAX];

	job_key(j, key);
	if (detail == NULL)
		return coffer_index_update(coffer_store_index(st), del_txn, key);
	if (strncmp(j->account, "id:", 3) == 0)
		return coffer_err_set(
		    COFFER_EPERM,
		    "the %s is not in the audit log yet: naming the "
		    "account there needs the key file; the next worker run records "
		    "it",
		    j->action);
	return record(st, key, j->action, j->account, j->id, detail);
}

/* ---- recovery ---- */

struct intent {
	char key[64];
	size_t key_len;
	int damaged; /* unreadable: removed with a recovery entry */
	char action[32], account[COFFER_AUDIT_PSEUDONYM_MAX], id[COFFER_JOB_ID_CHARS];
	long long began;
	long pid;
	unsigned long long start;
	int proven;
};

struct intents {
	struct intent *v;
	size_t n, cap;
};

static int parse(const void *k, size_t kl, const void *val, size_t vl, struct intent *in)
{
	char v[200], acct[COFFER_AUDIT_PSEUDONYM_MAX + 8] = "-";
	int legacy = kl == LEGACY_KEY_LEN && memcmp(k, LEGACY_KEY, kl) == 0, n;

	memset(in, 0, sizeof *in);
	if (kl >= sizeof in->key)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged job intent");
	memcpy(in->key, k, kl);
	in->key_len = kl;
	if (vl >= sizeof v)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged job intent");
	memcpy(v, val, vl);
	v[vl] = '\0';
	if (legacy) {
		n = sscanf(v, "%31s %lld %16s", in->action, &in->began, in->id);
		if (n != 3)
			return coffer_err_set(COFFER_ECORRUPT, "index: damaged worker_job record");
		return 0;
	}
	n = sscanf(v, "%31s %lld %ld %llu %d %47s", in->action, &in->began, &in->pid, &in->start,
	           &in->proven, acct);
	if (n != 6 || kl != PREFIX_LEN + COFFER_JOB_ID_CHARS - 1)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged job intent %.*s", (int)kl,
		                      (const char *)k);
	memcpy(in->id, (const char *)k + PREFIX_LEN, COFFER_JOB_ID_CHARS - 1);
	if (strcmp(acct, "-") != 0)
		snprintf(in->account, sizeof in->account, "%s", acct);
	return 0;
}

static int collect(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct intents *l = arg;
	int rc;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		struct intent *nv = realloc(l->v, cap * sizeof *nv);

		if (nv == NULL)
			return coffer_err_set(COFFER_ENOMEM, "job: out of memory");
		l->v = nv;
		l->cap = cap;
	}
	/* one that cannot be read must not stop every later recovery: it is
	 * removed, and the log says so */
	rc = parse(k, kl, v, vl, &l->v[l->n]);
	if (rc < 0) {
		coffer_err_clear();
		if (l->v[l->n].key_len == 0)
			return 0; /* a key longer than any of ours: not an intent */
		l->v[l->n].damaged = 1;
	}
	l->n++;
	return 0;
}

static int collect_txn(struct coffer_txn *t, void *arg)
{
	const void *v;
	size_t n;
	int rc = coffer_txn_get(t, COFFER_DB_META, LEGACY_KEY, LEGACY_KEY_LEN, &v, &n);

	if (rc == 0)
		rc = collect(LEGACY_KEY, LEGACY_KEY_LEN, v, n, arg);
	if (rc < 0 && rc != COFFER_ENOTFOUND)
		return rc;
	return coffer_txn_scan(t, COFFER_DB_META, PREFIX, PREFIX_LEN, collect, arg);
}

struct by_id {
	const char *hex;
	char *pseudonym;
	struct coffer_store *st;
	int found;
};

static int match_id(const struct coffer_account_info *info, void *arg)
{
	struct by_id *b = arg;
	char hex[2 * COFFER_ID_BYTES + 1];
	int rc;

	coffer_hex(hex, info->id, COFFER_ID_BYTES);
	if (strcmp(hex, b->hex) != 0 || info->name == NULL)
		return 0;
	b->found = 1;
	rc = coffer_audit_pseudonym(b->st, info->name, b->pseudonym);
	return rc < 0 ? rc : 1;
}

/* An "id:<hex>" account as its pseudonym ("" for an account no longer
 * named: shredded since). */
static int pseudonym_of(struct coffer_store *st, struct intent *in)
{
	char ps[COFFER_AUDIT_PSEUDONYM_MAX] = "";
	struct by_id b = { in->account + 3, ps, st, 0 };
	int rc;

	if (strncmp(in->account, "id:", 3) != 0)
		return 0;
	rc = coffer_account_list(st, match_id, &b);
	if (rc < 0)
		return rc;
	snprintf(in->account, sizeof in->account, "%s", ps);
	return 0;
}

void coffer_job_say(coffer_job_log_fn log, void *arg, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	log(line, arg);
}

/*
 * The snapshot an interrupted snapshot job took, if any: the oldest retained
 * snapshot taken since the job began that no entry of the log names (every
 * snapshot job's entry, and its recovery's, begins "id=<id> "). Times alone
 * cannot tell: snapshots of one instant (a clock held by COFFER_NOW, or one
 * second) are as new as the job that took none.
 */
struct unnamed {
	int64_t began;
	char (*named)[COFFER_SNAPID_MAX];
	size_t n, cap;
	char id[COFFER_SNAPID_MAX];
	int rc;
};

static int named_fn(const struct coffer_audit_record *r, void *arg)
{
	struct unnamed *u = arg;
	size_t len;

	if (strcmp(r->action, "snapshot") != 0 || strncmp(r->detail, "id=", 3) != 0)
		return 0;
	len = strcspn(r->detail + 3, " ");
	if (len >= COFFER_SNAPID_MAX)
		return 0;
	if (coffer_array_grow(&u->named, &u->cap, u->n, sizeof *u->named, 32) < 0)
		return COFFER_ENOMEM;
	memcpy(u->named[u->n], r->detail + 3, len);
	u->named[u->n++][len] = '\0';
	return 0;
}

static int unnamed_fn(const struct coffer_snapshot_info *info, void *arg)
{
	struct unnamed *u = arg;

	if (u->id[0] || info->created_at < u->began)
		return 0;
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->named[i], info->id) == 0)
			return 0;
	snprintf(u->id, sizeof u->id, "%s", info->id);
	return 0;
}

/* id_r: the snapshot, or "" (none, or a target that cannot be read now:
 * none configured, not mounted) */
static int snapshot_unnamed(struct coffer_store *st, int64_t began, char id_r[COFFER_SNAPID_MAX])
{
	struct unnamed u = { began, NULL, 0, 0, "", 0 };
	int rc = coffer_audit_list(st, NULL, named_fn, &u);

	if (rc == 0 && coffer_snapshot_list(st, NULL, unnamed_fn, &u) < 0) {
		coffer_err_clear();
		u.id[0] = '\0';
	}
	free(u.named);
	snprintf(id_r, COFFER_SNAPID_MAX, "%s", u.id);
	return rc;
}

static int recover_one(struct coffer_store *st, struct intent *in, coffer_job_log_fn log, void *arg)
{
	char want[32], snap[COFFER_SNAPID_MAX], detail[200];
	int found = 0, rc;

	if (in->damaged) {
		struct raw_key k = { in->key, in->key_len };

		coffer_job_say(log, arg, "a damaged job intent was removed");
		return coffer_audit_append_txn(st, "recovery", "",
		                               "a damaged job intent was removed: "
		                               "what its job did is not known",
		                               del_raw_txn, &k);
	}
	if (in->pid && in->pid != (long)getpid() && in->start &&
	    coffer_job_proc_start(in->pid) == in->start)
		return 0; /* still running */
	rc = pseudonym_of(st, in);
	if (rc < 0)
		return rc;
	snprintf(want, sizeof want, " job=%s", in->id);
	rc = coffer_audit_find(st, in->account[0] ? in->account : NULL, in->action, want, &found);
	if (rc < 0)
		return rc;
	if (found)
		return coffer_index_update(coffer_store_index(st), del_txn, in->key);
	if (in->proven) {
		snprintf(detail, sizeof detail,
		         "recorded by a later run: the process that made this change did not "
		         "write its entry");
	} else {
		snprintf(detail, sizeof detail,
		         "interrupted: the process stopped during this job; what it left due is "
		         "done by a later run");
		if (strcmp(in->action, "snapshot") == 0) {
			rc = snapshot_unnamed(st, in->began, snap);
			if (rc < 0)
				return rc;
			if (snap[0])
				snprintf(detail, sizeof detail,
				         "id=%s recorded by a later run: the process that took it "
				         "stopped before its entry",
				         snap);
		}
	}
	coffer_job_say(log, arg, "%s: left unrecorded by an earlier process: %s", in->action,
	               detail);
	return record(st, in->key, in->action, in->account, in->id, detail);
}

int coffer_job_recover(struct coffer_store *st, coffer_job_log_fn log, void *arg)
{
	struct coffer_keyfile *kf;
	struct intents l = { NULL, 0, 0 };
	size_t i;
	int fd = -1, rc;

	/* one recovery at a time (the worker, a command): two that found the
	 * same intent would each record it */
	rc = coffer_store_lock(st, "jobs", LOCK_EX, &fd);
	if (rc == 0)
		rc = coffer_index_view(coffer_store_index(st), collect_txn, &l);

	if (rc == 0 && l.n > 0 && coffer_store_keyfile(st, &kf) < 0) {
		/* nothing can be written to the log without the key file: the
		 * next run that has it records these */
		coffer_err_clear();
		l.n = 0;
	}
	for (i = 0; rc == 0 && i < l.n; i++)
		rc = recover_one(st, &l.v[i], log, arg);
	free(l.v);
	if (fd >= 0)
		close(fd);
	return rc;
}
