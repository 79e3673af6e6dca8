/*
 * cmd-verify.c: `coffer verify [NAME] [--json] [--repair]`: checks the store
 * (engine/verify.h) and prints each problem as it is found, one line each:
 *
 *   ACCOUNT [FOLDER] [uid UID]: PROBLEM                      (a message)
 *   ACCOUNT blob BLOB: PROBLEM                               (a blob, no message)
 *   [ACCOUNT] PATH: PROBLEM                                  (a stray file)
 *
 * then the pending blobs ("pending: ..." lines) and a summary line. With
 * --json, one object at the end instead. Progress goes to stderr, on a
 * terminal only. Exit 0 when sound, 1 when damage remains.
 */
#include "cmds.h"

#include "engine/errors.h"
#include "engine/verify.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { OPT_REPAIR = 1000 };

struct verify_ctx {
	int json;
	int repair;
	int tty; /* progress on stderr */
	int progress_shown;
	struct coffer_buf problems; /* JSON: the array's members */
	struct coffer_buf pending;  /* JSON members, or text lines */
	uint64_t nproblems, npending;
	struct timespec start, last;
};

static int verify_opt(int opt, const char *arg, void *ctx)
{
	struct verify_ctx *c = ctx;

	if (opt == OPT_REPAIR)
		c->repair = 1;
	return 0;
}

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void clear_progress(struct verify_ctx *c)
{
	if (c->progress_shown) {
		fputs("\r\033[K", stderr);
		c->progress_shown = 0;
	}
}

static void progress(uint64_t done, uint64_t total, uint64_t bytes, void *arg)
{
	struct verify_ctx *c = arg;
	struct timespec now;
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (done != total && c->progress_shown && seconds_between(&c->last, &now) < 0.1)
		return;
	c->last = now;
	secs = seconds_between(&c->start, &now);
	fprintf(stderr, "\rverify: %llu/%llu messages, %.1f MB/s\033[K", (unsigned long long)done,
	        (unsigned long long)total, secs > 0 ? (double)bytes / 1e6 / secs : 0.0);
	c->progress_shown = 1;
}

static void json_problem(struct coffer_buf *b, const struct coffer_verify_problem *p, int repair,
                         int more)
{
	int first = 1;

	coffer_buf_puts(b, more ? ",\n    {" : "\n    {");
	json_key_str(b, &first, "account", p->account);
	json_key_str(b, &first, "folder", p->folder);
	if (p->uid)
		json_key_u64(b, &first, "uid", p->uid);
	else
		json_key_str(b, &first, "uid", NULL);
	json_key_str(b, &first, "blob", p->blob);
	json_key_str(b, &first, "problem", p->problem);
	if (repair)
		json_key_str(b, &first, "repair", p->repair);
	coffer_buf_putc(b, '}');
}

static void text_problem(struct coffer_buf *b, const struct coffer_verify_problem *p)
{
	const char *sep = "";

	if (p->pending)
		coffer_buf_puts(b, "pending: ");
	if (p->account) {
		coffer_buf_puts(b, p->account);
		sep = " ";
	}
	if (p->folder) {
		coffer_buf_printf(b, "%s%s", sep, p->folder);
		sep = " ";
	}
	if (p->uid) {
		coffer_buf_printf(b, "%suid %u", sep, p->uid);
		sep = " ";
	} else if (p->blob) {
		coffer_buf_printf(b, strchr(p->blob, '/') ? "%s%s" : "%sblob %s", sep, p->blob);
	}
	coffer_buf_printf(b, ": %s", p->problem);
	if (p->repair)
		coffer_buf_printf(b, " (repaired: %s)", p->repair);
	coffer_buf_putc(b, '\n');
}

static int on_problem(const struct coffer_verify_problem *p, void *arg)
{
	struct verify_ctx *c = arg;
	struct coffer_buf line = COFFER_BUF_INIT;
	int rc;

	if (c->json) {
		if (p->pending)
			json_problem(&c->pending, p, c->repair, c->npending++ > 0);
		else
			json_problem(&c->problems, p, c->repair, c->nproblems++ > 0);
		return coffer_buf_ok(p->pending ? &c->pending : &c->problems);
	}
	if (p->pending) {
		text_problem(&c->pending, p);
		c->npending++;
		return coffer_buf_ok(&c->pending);
	}
	/* damage is printed at once: a long run shows it as it goes */
	text_problem(&line, p);
	rc = coffer_buf_ok(&line);
	if (rc == 0) {
		clear_progress(c);
		fputs(coffer_buf_str(&line), stdout);
		fflush(stdout);
	}
	c->nproblems++;
	coffer_buf_free(&line);
	return rc;
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static void summary(struct coffer_buf *b, const struct coffer_verify_stats *s, int repair)
{
	coffer_buf_printf(b, "checked %llu %s, %llu %s, %llu %s: ", (unsigned long long)s->accounts,
	                  plural(s->accounts, "account", "accounts"),
	                  (unsigned long long)s->messages,
	                  plural(s->messages, "message", "messages"), (unsigned long long)s->blobs,
	                  plural(s->blobs, "blob", "blobs"));
	if (s->problems == 0)
		coffer_buf_puts(b, "ok");
	else
		coffer_buf_printf(b, "%llu %s", (unsigned long long)s->problems,
		                  plural(s->problems, "problem", "problems"));
	if (repair)
		coffer_buf_printf(b, ", %llu repaired, %llu trash %s collected",
		                  (unsigned long long)s->repaired, (unsigned long long)s->collected,
		                  plural(s->collected, "blob", "blobs"));
	if (s->pending)
		coffer_buf_printf(b, ", %llu pending", (unsigned long long)s->pending);
	coffer_buf_putc(b, '\n');
}

static int run_verify(struct cli *cli, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{ "repair", 0, OPT_REPAIR },
		{ NULL, 0, 0 },
	};
	struct verify_ctx c;
	struct coffer_verify_opts vo;
	struct coffer_verify_stats stats;
	struct coffer_buf out = COFFER_BUF_INIT;
	char *pos[1];
	int n, rc, first = 1;

	memset(&c, 0, sizeof c);
	n = cli_parse(&cmd_verify, argc, argv, opts, verify_opt, &c, &c.json, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	c.tty = isatty(STDERR_FILENO);
	clock_gettime(CLOCK_MONOTONIC, &c.start);
	c.last = c.start;
	memset(&vo, 0, sizeof vo);
	vo.account = n == 1 ? pos[0] : NULL;
	vo.repair = c.repair;
	vo.problem = on_problem;
	vo.problem_arg = &c;
	vo.progress = c.tty ? progress : NULL;
	vo.progress_arg = &c;
	rc = coffer_verify_run(cli->st, &vo, &stats);
	clear_progress(&c);
	if (rc < 0) {
		rc = cli_fail(rc);
		goto out;
	}
	if (c.json) {
		coffer_buf_putc(&out, '{');
		json_key_u64(&out, &first, "accounts", stats.accounts);
		json_key_u64(&out, &first, "messages", stats.messages);
		json_key_u64(&out, &first, "blobs", stats.blobs);
		coffer_buf_puts(&out, ",\n  \"problems\": [");
		coffer_buf_append(&out, c.problems.data, c.problems.len);
		coffer_buf_puts(&out,
		                c.nproblems ? "\n  ],\n  \"pending\": [" : "],\n  \"pending\": [");
		coffer_buf_append(&out, c.pending.data, c.pending.len);
		coffer_buf_puts(&out, c.npending ? "\n  ]" : "]");
		if (c.repair) {
			coffer_buf_printf(&out, ",\n  \"repaired\": %llu, \"collected\": %llu",
			                  (unsigned long long)stats.repaired,
			                  (unsigned long long)stats.collected);
		}
		coffer_buf_printf(&out, ",\n  \"ok\": %s\n}\n", stats.problems ? "false" : "true");
	} else {
		coffer_buf_append(&out, c.pending.data, c.pending.len);
		summary(&out, &stats, c.repair);
	}
	rc = coffer_buf_ok(&out);
	if (rc < 0) {
		rc = cli_fail(rc);
		goto out;
	}
	rc = cli_write_stdout(&out);
	if (rc == 0 && stats.problems)
		rc = EXIT_DAMAGE;
out:
	coffer_buf_free(&c.problems);
	coffer_buf_free(&c.pending);
	coffer_buf_free(&out);
	return rc;
}

const struct cli_cmd cmd_verify = {
	"verify",
	"[NAME] [--json] [--repair]",
	"Checks every account (or only NAME) against itself: decrypts every message\n"
	"blob to the end (it must exist, authenticate for its account, blob id and\n"
	"kind, and have the size the index records), and checks the index: blob\n"
	"reference counts, folder, message-name and keyword entries, uidnext, and that\n"
	"each account's key unwraps. In reverse, every file in the blob tree must be a\n"
	"blob the index knows (or one in the trash, waiting to be removed).\n"
	"Each problem is one line on stdout: account, folder, uid and what is wrong,\n"
	"e.g. 'alice@example.com INBOX uid 17: blob fails authentication (damaged)';\n"
	"it never stops at the first. Blob files without an index entry younger than\n"
	"10 minutes may be deliveries in progress: listed as 'pending', not damage.\n"
	"--repair removes orphan blobs (left by interrupted writes, older than 10\n"
	"minutes), moves stray files to STORE/lost+found/, and empties the trash. It\n"
	"never touches data the index refers to: damaged blobs are only reported.\n"
	"With --json: {\"accounts\", \"messages\", \"blobs\", \"problems\": [{\"account\",\n"
	"\"folder\", \"uid\", \"blob\", \"problem\"}], \"pending\": [...], \"ok\"}.\n"
	"Progress (messages, MB/s) is shown on stderr when it is a terminal.\n"
	"Exit codes: 0 sound, 1 damage found (after --repair: damage left), others as\n"
	"for every command (docs/exit-codes.md).",
	run_verify,
};
