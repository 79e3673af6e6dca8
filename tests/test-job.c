/*
 * test-job.c: policy actions reach the audit log exactly once
 * (policy/job.h, policy/action.h).
 *
 * Each way a job can be left unfinished is made by hand, as a killed process
 * would leave it: an intent proven by its change without an entry; an
 * intent whose entry was written but not recorded as written; an intent of
 * a process that still runs, and of one whose pid was reused; the worker
 * intent of an older store; a terminate without the key file. Recovery
 * must record each once, or leave it to its process.
 */
#include "tap.h"
#include "fixture.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/index.h"
#include "engine/store.h"
#include "policy/action.h"
#include "policy/audit.h"
#include "policy/job.h"

#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct coffer_store *st;

/* ---- the log, counted ---- */

struct counts {
	const char *action, *account, *prefix;
	int n;
};

static int count_fn(const struct coffer_audit_record *r, void *arg)
{
	struct counts *c = arg;

	if (strcmp(r->action, c->action) == 0 &&
	    (!c->account || strcmp(r->account, c->account) == 0) &&
	    strncmp(r->detail, c->prefix, strlen(c->prefix)) == 0)
		c->n++;
	return 0;
}

/* Entries of action (of account, unless NULL) whose detail starts with prefix. */
static int entries(const char *action, const char *account, const char *prefix)
{
	struct counts c = { action, account, prefix, 0 };

	return coffer_audit_list(st, NULL, count_fn, &c) < 0 ? -1 : c.n;
}

static int intents_fn(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	(void)k, (void)kl, (void)v, (void)vl;
	++*(int *)arg;
	return 0;
}

static int intents_txn(struct coffer_txn *t, void *arg)
{
	return coffer_txn_scan(t, COFFER_DB_META, "job/", 4, intents_fn, arg);
}

/* Intents in the index. */
static int intents(void)
{
	int n = 0;

	return coffer_index_view(coffer_store_index(st), intents_txn, &n) < 0 ? -1 : n;
}

struct put {
	const char *key, *val;
};

static int put_txn(struct coffer_txn *t, void *arg)
{
	const struct put *p = arg;

	return coffer_txn_put(t, COFFER_DB_META, p->key, strlen(p->key), p->val, strlen(p->val), 0);
}

/* Writes META key = val, as another process (or an older Coffer) would. */
static int put(const char *key, const char *val)
{
	struct put p = { key, val };

	return coffer_index_update(coffer_store_index(st), put_txn, &p);
}

static uint8_t state_of(const char *name)
{
	struct coffer_account_info info;
	uint8_t s = 0;

	if (coffer_account_show(st, name, strlen(name), &info) == 0)
		s = info.state;
	coffer_account_info_clear(&info);
	return s;
}

int main(void)
{
	static struct fixture_paths fp;
	char psa[COFFER_AUDIT_PSEUDONYM_MAX], psb[COFFER_AUDIT_PSEUDONYM_MAX], key[64], val[1100];
	struct coffer_job j;
	struct coffer_restore_opts ro;
	struct coffer_restore_result rres;
	struct coffer_account_state_change s;
	uint64_t n = 0;
	int64_t now;
	int rc, pending = -1;

	if (sodium_init() < 0)
		return 1;
	setenv("COFFER_NOW", "2026-06-01T03:00:00Z", 1);
	coffer_clock_now(&now);
	rc = fixture_store(NULL, &st, &fp);
	ok(rc == 0, "store init");
	if (rc < 0)
		return tap_done();
	ok(coffer_account_add(st, "a@example.org", 13, NULL) == 0 &&
	       coffer_account_add(st, "b@example.org", 13, NULL) == 0,
	   "two accounts");
	ok(coffer_audit_pseudonym(st, "a@example.org", psa) == 0 &&
	       coffer_audit_pseudonym(st, "b@example.org", psb) == 0,
	   "their pseudonyms");

	/* the command line's actions */
	rc = coffer_action_terminate(st, "a@example.org", 13, &pending);
	ok(rc == 0 && pending == 0 && entries("terminate", psa, "job=") == 1 && intents() == 0,
	   "terminate: one entry, no intent left (%d, %d)", rc, pending);
	rc = coffer_action_terminate(st, "a@example.org", 13, &pending);
	ok(rc == COFFER_EINVAL && entries("terminate", psa, "") == 1 && intents() == 0,
	   "a second terminate is refused and leaves nothing (%d)", rc);
	rc = coffer_action_reactivate(st, "a@example.org", 13, &pending);
	ok(rc == 0 && entries("reactivate", psa, "job=") == 1 && intents() == 0,
	   "reactivate: one entry (%d)", rc);
	memset(&ro, 0, sizeof ro);
	ro.account = "a@example.org";
	ro.as_of = now;
	rc = coffer_action_restore(st, &ro, &rres, &pending);
	ok(rc < 0 && entries("restore", NULL, "") == 0 && intents() == 0,
	   "a restore refused (no snapshot target) leaves no entry and no intent (%d)", rc);

	/* a terminate whose process stopped after its change, before its entry */
	s = (struct coffer_account_state_change){ st, "a@example.org", 1, now };
	rc = coffer_job_begin_with(st, &j, "terminate", psa, now, coffer_account_state_txn, &s);
	ok(rc == 0 && state_of("a@example.org") == COFFER_ACCOUNT_TERMINATED && intents() == 1,
	   "a change committed with its intent (%d)", rc);
	rc = coffer_job_recover(st, NULL, NULL);
	ok(rc == 0 && entries("terminate", psa, "recorded by a later run") == 1 && intents() == 0,
	   "recovery records it as done, once (%d)", rc);
	rc = coffer_job_recover(st, NULL, NULL);
	ok(rc == 0 && entries("terminate", psa, "") == 2, "a second recovery records nothing");

	/* a prune whose entry was written, but not recorded as written */
	rc = coffer_job_begin(st, &j, "prune", "", now);
	snprintf(val, sizeof val, "snapshots=1 objects=2 kept=3 job=%s", j.id);
	ok(rc == 0 && coffer_audit_append(st, "prune", NULL, val) == 0 && intents() == 1,
	   "a prune's entry written, its intent left");
	rc = coffer_job_recover(st, NULL, NULL);
	ok(rc == 0 && entries("prune", NULL, "") == 1 && intents() == 0,
	   "recovery ends the intent and writes no second entry (%d)", rc);

	/* an intent of a process that still runs, then of one whose pid was
	 * given to another process since */
	snprintf(key, sizeof key, "job/0123456789abcdef");
	snprintf(val, sizeof val, "snapshot %lld %ld %llu 0 -", (long long)now, (long)getppid(),
	         coffer_job_proc_start(getppid()));
	rc = put(key, val);
	ok(rc == 0 && coffer_job_recover(st, NULL, NULL) == 0 && intents() == 1 &&
	       entries("snapshot", NULL, "") == 0,
	   "an intent of a running process is left to it");
	snprintf(val, sizeof val, "snapshot %lld %ld %llu 0 -", (long long)now, (long)getppid(),
	         coffer_job_proc_start(getppid()) + 1);
	rc = put(key, val);
	ok(rc == 0 && coffer_job_recover(st, NULL, NULL) == 0 && intents() == 0 &&
	       entries("snapshot", NULL, "interrupted") == 1,
	   "the same pid with another start time: recorded as interrupted");

	/* a process killed while its parent does not reap it stays a zombie,
	 * with its pid and start time: it has ended all the same */
	{
		int pfd[2];
		pid_t child = -1;
		unsigned long long start = 0;
		char st_path[64], state = 0, line[512], *p;
		FILE *f;

		fflush(stdout); /* the child must not print the parent's buffer */
		if (pipe(pfd) == 0)
			child = fork();
		if (child == 0) {
			char c;

			close(pfd[1]);
			(void)read(pfd[0], &c, 1); /* until the parent closes */
			_exit(0);
		}
		ok(child > 0, "a child process");
		if (child < 0)
			return tap_done();
		close(pfd[0]);
		start = coffer_job_proc_start(child);
		close(pfd[1]);
		snprintf(st_path, sizeof st_path, "/proc/%ld/stat", (long)child);
		for (int i = 0; i < 500 && state != 'Z'; i++) { /* until it has exited */
			f = fopen(st_path, "r");
			if (f && fgets(line, sizeof line, f) && (p = strrchr(line, ')')) && p[1])
				state = p[2];
			if (f)
				fclose(f);
			if (state != 'Z')
				usleep(10000);
		}
		snprintf(val, sizeof val, "prune %lld %ld %llu 0 -", (long long)now, (long)child,
		         start);
		ok(start > 0 && state == 'Z' && put("job/00000000000000aa", val) == 0 &&
		       coffer_job_recover(st, NULL, NULL) == 0 && intents() == 0 &&
		       entries("prune", NULL, "interrupted") == 1,
		   "an intent of a zombie process is recorded as interrupted (start %llu, state %c)",
		   start, state ? state : '?');
		waitpid(child, NULL, 0);
	}

	/* the one worker intent an older store kept */
	snprintf(val, sizeof val, "metadata-expiry %lld fedcba9876543210", (long long)now);
	rc = put("worker_job", val);
	ok(rc == 0 && coffer_job_recover(st, NULL, NULL) == 0 &&
	       entries("metadata-expiry", NULL, "interrupted") == 1 &&
	       coffer_job_recover(st, NULL, NULL) == 0 && entries("metadata-expiry", NULL, "") == 1,
	   "an older store's worker intent is recorded once");

	/* an intent that cannot be read (a damaged index record) must not stop
	 * every later recovery */
	ok(put("job/0123456789abcdef", "snapshot not-a-number") == 0 && put("job/xyz", "") == 0 &&
	       coffer_job_recover(st, NULL, NULL) == 0 && intents() == 0 &&
	       entries("recovery", NULL, "a damaged job intent was removed") == 2,
	   "damaged intents are removed, each with a recovery entry");

	/* terminate without the key file: the change stands, the entry waits */
	coffer_store_close(&st);
	snprintf(val, sizeof val, "%s/absent.key", tap_tmpdir());
	rc = coffer_store_open(fp.store, val, &st);
	ok(rc == 0, "the store opens without its key file");
	rc = coffer_action_terminate(st, "b@example.org", 13, &pending);
	ok(rc == 0 && pending == 1 && strstr(coffer_errmsg(), "key file") != NULL && intents() == 1,
	   "terminate without the key file: done, its entry pending (%d, %d: %s)", rc, pending,
	   coffer_errmsg());
	ok(coffer_job_recover(st, NULL, NULL) == 0 && intents() == 1,
	   "recovery without the key file leaves it");
	coffer_store_close(&st);
	rc = coffer_store_open(fp.store, fp.key, &st);
	ok(rc == 0 && coffer_job_recover(st, NULL, NULL) == 0 && intents() == 0 &&
	       entries("terminate", psb, "recorded by a later run") == 1,
	   "with the key file, recovery names the account by its pseudonym (%d)", rc);

	rc = coffer_audit_verify(st, &n);
	ok(rc == 0, "the audit chain verifies (%d, %llu entries)", rc, (unsigned long long)n);
	coffer_store_close(&st);
	return tap_done();
}
