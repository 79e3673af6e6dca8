/*
 * cmd-policy.c: `coffer policy show`, `coffer worker`, `coffer purge`,
 * `coffer audit verify|show`, `coffer report`.
 */
#include "cmds.h"

#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/io.h"
#include "engine/log.h"
#include "engine/names.h"
#include "policy/audit.h"
#include "policy/report.h"
#include "policy/shred.h"
#include "policy/sign.h"
#include "policy/worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
	OPT_ONCE = 1000,
	OPT_NOW,
	OPT_YES,
	OPT_TERMINATE,
	OPT_ACCOUNT,
	OPT_FORMAT,
	OPT_OUTPUT,
	OPT_CERT,
	OPT_KEY,
};

struct popts {
	int once, now, yes, terminate;
	const char *account, *format, *output, *cert, *key;
};

static int popt(int opt, const char *arg, void *ctx)
{
	struct popts *o = ctx;

	switch (opt) {
	case OPT_ONCE: o->once = 1; break;
	case OPT_NOW: o->now = 1; break;
	case OPT_YES: o->yes = 1; break;
	case OPT_TERMINATE: o->terminate = 1; break;
	case OPT_ACCOUNT: o->account = arg; break;
	case OPT_FORMAT: o->format = arg; break;
	case OPT_OUTPUT: o->output = arg; break;
	case OPT_CERT: o->cert = arg; break;
	case OPT_KEY: o->key = arg; break;
	}
	return 0;
}

static const struct cli_opt all_opts[] = {
	{ "once", 0, OPT_ONCE },       { "now", 0, OPT_NOW },
	{ "yes", 0, OPT_YES },         { "terminate", 0, OPT_TERMINATE },
	{ "account", 1, OPT_ACCOUNT }, { "format", 1, OPT_FORMAT },
	{ "output", 1, OPT_OUTPUT },   { "sign-cert", 1, OPT_CERT },
	{ "sign-key", 1, OPT_KEY },    { NULL, 0, 0 },
};

/* ---- policy show ---- */

static int run_policy(struct cli *cli, int argc, char **argv)
{
	const struct coffer_config *c;
	char *pos[1];
	int n, json, rc;

	n = cli_parse(&cmd_policy, argc, argv, NULL, NULL, NULL, &json, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 1 || strcmp(pos[0], "show") != 0)
		return cli_usage_error("policy", "the only verb is 'show'");
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	c = coffer_store_config(cli->st);
	if (json)
		printf("{\"data_retention_days\": %d, \"metadata_retention_days\": %d, "
		       "\"termination_grace_days\": %d, \"snapshot_time\": \"%02d:%02d\", "
		       "\"snapshot_target\": %s%s%s}\n",
		       c->data_retention_days, c->metadata_retention_days,
		       c->termination_grace_days, c->snapshot_time_min / 60,
		       c->snapshot_time_min % 60, c->snapshot_target ? "\"" : "",
		       c->snapshot_target ? c->snapshot_target : "null",
		       c->snapshot_target ? "\"" : "");
	else
		printf("data_retention_days = %d\nmetadata_retention_days = %d\n"
		       "termination_grace_days = %d\nsnapshot_time = %02d:%02d (UTC)\n"
		       "snapshot_target = %s\n",
		       c->data_retention_days, c->metadata_retention_days,
		       c->termination_grace_days, c->snapshot_time_min / 60,
		       c->snapshot_time_min % 60,
		       c->snapshot_target ? c->snapshot_target : "(none: snapshots disabled)");
	return 0;
}

const struct cli_cmd cmd_policy = {
	"policy",
	"show [--json]",
	"Prints the retention policy in force (from coffer.conf): data_retention_days\n"
	"(snapshots, and so deleted mail), metadata_retention_days (access and delivery\n"
	"logs), termination_grace_days, snapshot_time (UTC) and snapshot_target.",
	run_policy,
};

/* ---- worker ---- */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* One line per job, with its figures: "<6>worker: snapshot: ..." under
 * journald, "coffer: info: worker: snapshot: ..." elsewhere (engine/log.h). */
static void log_line(const char *line, void *arg)
{
	coffer_log(COFFER_LOG_INFO, "worker: %s", line);
}

static int run_worker(struct cli *cli, int argc, char **argv)
{
	struct popts o = { 0 };
	struct coffer_worker_result res;
	char *pos[1];
	int n, rc, fd;

	n = cli_parse(&cmd_worker, argc, argv, all_opts, popt, &o, NULL, pos, 0);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	rc = coffer_worker_lock(cli->st, &fd);
	if (rc < 0)
		return cli_fail(rc);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	for (;;) {
		int64_t now;

		rc = coffer_clock_now(&now);
		if (rc == 0)
			rc = coffer_worker_run(cli->st, now, log_line, NULL, &res);
		if (rc < 0) {
			if (o.once) {
				close(fd);
				return cli_fail(rc);
			}
			coffer_log(COFFER_LOG_ERROR, "worker: %s (retrying in 5 minutes)",
			           coffer_errmsg());
			res.next_due = now + 300 * COFFER_NS_PER_SEC;
		}
		if (o.once || stop_requested)
			break;
		/* sleep until the next due job, waking hourly to re-check and on signals */
		{
			int64_t wait = res.next_due - now;

			if (wait > 3600 * COFFER_NS_PER_SEC || wait <= 0)
				wait = 3600 * COFFER_NS_PER_SEC;
			for (int64_t slept = 0; slept < wait && !stop_requested;
			     slept += COFFER_NS_PER_SEC)
				sleep(1);
		}
		if (stop_requested)
			break;
	}
	close(fd);
	return 0;
}

const struct cli_cmd cmd_worker = {
	"worker",
	"[--once]",
	"Enforces the retention policy: the daily snapshot, pruning snapshots older than\n"
	"data_retention_days, deleting metadata older than metadata_retention_days, and\n"
	"crypto-shredding terminated accounts whose termination_grace_days have passed.\n"
	"Idempotent; catches up after downtime (doing what is due once). Only one worker\n"
	"runs per store. --once runs the due jobs and exits (for cron or a systemd timer);\n"
	"without it the worker stays running and sleeps until the next job is due. One log\n"
	"line per job goes to stderr.",
	run_worker,
};

/* ---- purge ---- */

static int confirm(const char *name)
{
	char line[512];

	fprintf(stderr,
	        "This destroys every copy of %s's mail, metadata and snapshots for good.\n"
	        "Type the account name to confirm: ",
	        name);
	if (fgets(line, sizeof line, stdin) == NULL)
		return 0;
	line[strcspn(line, "\n")] = '\0';
	return strcmp(line, name) == 0;
}

static int run_purge(struct cli *cli, int argc, char **argv)
{
	struct popts o = { 0 };
	struct coffer_shred_result res;
	struct coffer_buf canon = COFFER_BUF_INIT;
	char *pos[1], when[COFFER_CLOCK_ISO_MAX];
	int n, rc;

	n = cli_parse(&cmd_purge, argc, argv, all_opts, popt, &o, NULL, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 1 || !o.now)
		return cli_usage_error("purge", "needs NAME and --now");
	if (coffer_names_account(pos[0], strlen(pos[0]), &canon) < 0) {
		coffer_buf_free(&canon);
		return cli_fail(COFFER_EINVAL);
	}
	if ((rc = cli_open_store(cli)) != 0)
		goto out;
	if (!o.yes) {
		if (!isatty(STDIN_FILENO)) {
			rc = cli_usage_error("purge",
			                     "refusing without --yes when not on a terminal");
			goto out;
		}
		if (!confirm(coffer_buf_str(&canon))) {
			fprintf(stderr, "coffer purge: not confirmed; nothing was changed\n");
			rc = EXIT_USAGE;
			goto out;
		}
	}
	rc = coffer_shred_account(cli->st, coffer_buf_str(&canon), o.terminate, "request", &res);
	if (rc < 0) {
		rc = cli_fail(rc);
		goto out;
	}
	coffer_clock_format(res.shredded_at, when);
	printf("account %s was crypto-shredded at %s: %llu index records and %llu snapshot objects "
	       "deleted, %llu other accounts re-keyed\n",
	       coffer_buf_str(&canon), when, (unsigned long long)res.records,
	       (unsigned long long)res.target_objects, (unsigned long long)res.other_accounts);
	rc = 0;
out:
	coffer_buf_free(&canon);
	return rc;
}

const struct cli_cmd cmd_purge = {
	"purge",
	"NAME --now [--yes] [--terminate]",
	"Crypto-shreds account NAME at once, on its holder's request: afterwards nothing of\n"
	"it can be decrypted from the live store, any snapshot, or any copy of them taken\n"
	"before, with any key that still exists (see docs/security.md for key-file backups).\n"
	"The account must be terminated, or --terminate must be given. Asks for\n"
	"confirmation on a terminal unless --yes is given. Exit 79 if it was already\n"
	"shredded.",
	run_purge,
};

/* ---- audit ---- */

static int show_entry(const struct coffer_audit_record *r, void *arg)
{
	printf("%s\n", r->line);
	return 0;
}

static int run_audit(struct cli *cli, int argc, char **argv)
{
	struct popts o = { 0 };
	char *pos[1], pseudonym[COFFER_AUDIT_PSEUDONYM_MAX];
	uint64_t entries = 0;
	int n, rc;

	n = cli_parse(&cmd_audit, argc, argv, all_opts, popt, &o, NULL, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 1)
		return cli_usage_error("audit", "needs a verb: verify or show");
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	if (strcmp(pos[0], "verify") == 0) {
		rc = coffer_audit_verify(cli->st, &entries);
		if (rc < 0) {
			fprintf(stderr, "coffer: %s\n", coffer_errmsg());
			printf("audit log: BROKEN after %llu good entries\n",
			       (unsigned long long)entries);
			return rc == COFFER_ECORRUPT ? EXIT_DAMAGE : cli_exit_code(rc);
		}
		printf("audit log: %llu entries, chain intact\n", (unsigned long long)entries);
		return 0;
	}
	if (strcmp(pos[0], "show") != 0)
		return cli_usage_error("audit", "unknown verb '%s'", pos[0]);
	if (o.account) {
		struct coffer_buf canon = COFFER_BUF_INIT;

		rc = coffer_names_account(o.account, strlen(o.account), &canon);
		if (rc == 0)
			rc = coffer_audit_pseudonym(cli->st, coffer_buf_str(&canon), pseudonym);
		coffer_buf_free(&canon);
		if (rc < 0)
			return cli_fail(rc);
		fprintf(stderr, "entries for pseudonym %s:\n", pseudonym);
	}
	rc = coffer_audit_list(cli->st, o.account ? pseudonym : NULL, show_entry, NULL);
	return rc < 0 ? cli_fail(rc) : 0;
}

const struct cli_cmd cmd_audit = {
	"audit",
	"verify | show [--account NAME]",
	"The audit log of policy actions (snapshot, prune, metadata expiry, terminate,\n"
	"reactivate, purge, restore, policy change), hash-chained with a key from the key\n"
	"file. Accounts appear as keyed pseudonyms, never by name.\n"
	"  verify               checks the chain; reports the first broken entry (exit 1)\n"
	"  show [--account N]   prints the entries (of one account, by its pseudonym)",
	run_audit,
};

/* ---- report ---- */

static int run_report(struct cli *cli, int argc, char **argv)
{
	struct popts o = { 0 };
	struct coffer_report r;
	struct coffer_buf out = COFFER_BUF_INIT;
	char *pos[1], *sig = NULL;
	int64_t now;
	int n, rc;

	n = cli_parse(&cmd_report, argc, argv, all_opts, popt, &o, NULL, pos, 0);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (o.format && strcmp(o.format, "text") && strcmp(o.format, "json") &&
	    strcmp(o.format, "html"))
		return cli_usage_error("report", "--format is text, json or html");
	if ((o.cert == NULL) != (o.key == NULL))
		return cli_usage_error("report", "--sign-cert and --sign-key go together");
	if (o.cert && (o.output == NULL || strcmp(o.output, "-") == 0))
		return cli_usage_error("report", "signing needs --output FILE (the signature is "
		                                 "written to FILE.p7s)");
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	rc = coffer_clock_now(&now);
	if (rc == 0)
		rc = coffer_report_build(cli->st, now, o.account, &r);
	if (rc < 0)
		return cli_fail(rc);
	if (o.format == NULL || strcmp(o.format, "text") == 0)
		rc = coffer_report_text(&r, &out);
	else if (strcmp(o.format, "json") == 0)
		rc = coffer_report_json(&r, &out);
	else
		rc = coffer_report_html(&r, &out);
	coffer_report_free(&r);
	if (rc == 0 && o.output && strcmp(o.output, "-") != 0)
		rc = coffer_io_write_file_atomic(o.output, out.data, out.len, 0644);
	else if (rc == 0)
		rc = cli_write_stdout(&out) ? COFFER_EIO : 0;
	if (rc == 0 && o.cert) {
		if (asprintf(&sig, "%s.p7s", o.output) < 0)
			rc = coffer_err_set(COFFER_ENOMEM, "report: out of memory");
		else
			rc = coffer_sign_detached(out.data, out.len, o.cert, o.key, sig);
	}
	if (rc == 0 && o.output && strcmp(o.output, "-") != 0)
		fprintf(stderr, "wrote %s%s%s\n", o.output, sig ? " and " : "", sig ? sig : "");
	free(sig);
	coffer_buf_free(&out);
	return rc < 0 ? cli_fail(rc) : 0;
}

const struct cli_cmd cmd_report = {
	"report",
	"[--account NAME] [--format text|json|html] [--output FILE] [--sign-cert CERT --sign-key KEY]",
	"The retention report: per account its state, live messages and bytes, oldest\n"
	"message, the snapshots holding its data and their expiry, its metadata and when\n"
	"it expires, and the next due action; store-wide the snapshots and an 'overdue'\n"
	"list (empty whenever the worker has run). JSON keys: generated_at, policy,\n"
	"accounts, snapshots, overdue (schema: docs/report.schema.json). With --sign-cert\n"
	"and --sign-key, FILE.p7s gets a detached CMS signature that stock openssl\n"
	"verifies: openssl cms -verify -binary -inform DER -in FILE.p7s -content FILE\n"
	"-CAfile CERT -purpose any -out /dev/null",
	run_report,
};
