/*
 * cmd-snapshot.c: `coffer snapshot create|list|verify|prune` and
 * `coffer restore`.
 */
#include "cmds.h"

#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/names.h"
#include "policy/action.h"
#include "snapshots/repo.h"
#include "snapshots/restore.h"
#include "snapshots/snapshot.h"
#include "snapshots/snapverify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	OPT_TARGET = 1000,
	OPT_READ_DATA,
	OPT_AS_OF,
	OPT_FOLDER,
	OPT_UID,
	OPT_INTO,
	OPT_TO,
	OPT_TAR,
	OPT_ALL,
	OPT_FROM,
	OPT_NEW_TARGET,
};

struct snap_opts {
	const char *target;
	int read_data; /* -1: not asked */
	const char *as_of;
	const char *folder;
	const char *uid;
	const char *into;
	const char *to;
	const char *tar;
	int all;
	const char *from;
	int new_target;
};

static int snap_opt(int opt, const char *arg, void *ctx)
{
	struct snap_opts *o = ctx;
	char *end;

	switch (opt) {
	case OPT_TARGET: o->target = arg; break;
	case OPT_READ_DATA:
		o->read_data = 100;
		if (arg) {
			long p = strtol(arg, &end, 10);

			if (*arg == '\0' || (*end != '\0' && strcmp(end, "%") != 0) || p < 0 ||
			    p > 100)
				return cli_usage_error(
				    "snapshot verify",
				    "--read-data takes a percentage from 0 to 100");
			o->read_data = (int)p;
		}
		break;
	case OPT_AS_OF: o->as_of = arg; break;
	case OPT_FOLDER: o->folder = arg; break;
	case OPT_UID: o->uid = arg; break;
	case OPT_INTO: o->into = arg; break;
	case OPT_TO: o->to = arg; break;
	case OPT_TAR: o->tar = arg; break;
	case OPT_ALL: o->all = 1; break;
	case OPT_FROM: o->from = arg; break;
	case OPT_NEW_TARGET: o->new_target = 1; break;
	}
	return 0;
}

static void progress(const char *what, uint64_t done, uint64_t total, void *arg)
{
	fprintf(stderr, "\r%s %llu/%llu", what, (unsigned long long)done,
	        (unsigned long long)total);
	if (done == total)
		fputc('\n', stderr);
}

static int snap_create(struct cli *cli, struct snap_opts *o)
{
	struct coffer_snapshot_result res;
	int rc, p;

	rc = coffer_action_snapshot(cli->st, o->target,
	                            o->new_target ? COFFER_SNAPSHOT_NEW_TARGET : 0,
	                            isatty(STDERR_FILENO) ? progress : NULL, NULL, &res, &p);
	if (rc < 0)
		return cli_fail(rc);
	cli_warn_pending(p);
	printf("snapshot %s: %u accounts (%u changed), %llu messages, %llu new blobs "
	       "(%llu bytes), %llu freed\n",
	       res.id, res.accounts, res.changed, (unsigned long long)res.messages,
	       (unsigned long long)res.new_blobs, (unsigned long long)res.new_bytes,
	       (unsigned long long)res.freed);
	return 0;
}

struct list_ctx {
	struct coffer_buf out;
	int json;
	int count;
};

static int list_one(const struct coffer_snapshot_info *s, void *arg)
{
	struct list_ctx *c = arg;
	char created[COFFER_CLOCK_ISO_MAX], expires[COFFER_CLOCK_ISO_MAX];
	int first = 1;

	if (c->json) {
		coffer_buf_puts(&c->out, c->count ? ",\n  {" : "\n  {");
		json_key_str(&c->out, &first, "id", s->id);
		json_key_time(&c->out, &first, "time", s->created_at);
		json_key_u64(&c->out, &first, "accounts", s->accounts);
		json_key_u64(&c->out, &first, "messages", s->messages);
		json_key_u64(&c->out, &first, "new_bytes", s->new_bytes);
		json_key_time(&c->out, &first, "expires", s->expires_at);
		coffer_buf_putc(&c->out, '}');
	} else {
		coffer_clock_format(s->created_at, created);
		coffer_clock_format(s->expires_at, expires);
		coffer_buf_printf(&c->out,
		                  "%-20s %s %6u accounts %9llu messages %12llu new bytes  "
		                  "expires %s\n",
		                  s->id, created, s->accounts, (unsigned long long)s->messages,
		                  (unsigned long long)s->new_bytes, expires);
	}
	c->count++;
	return coffer_buf_ok(&c->out);
}

static int snap_list(struct cli *cli, struct snap_opts *o, int json)
{
	struct list_ctx c = { COFFER_BUF_INIT, json, 0 };
	int rc;

	if (json)
		coffer_buf_putc(&c.out, '[');
	rc = coffer_snapshot_list(cli->st, o->target, list_one, &c);
	if (json)
		coffer_buf_puts(&c.out, c.count ? "\n]\n" : "]\n");
	rc = rc < 0 ? cli_fail(rc) : cli_write_stdout(&c.out);
	coffer_buf_free(&c.out);
	return rc;
}

static void verify_problem(const struct coffer_snapverify_problem *p, void *arg)
{
	printf("snapshot %s account %s object %s: %s\n", p->snapshot[0] ? p->snapshot : "-",
	       p->account[0] ? p->account : "-", p->object[0] ? p->object : "-", p->problem);
}

static int snap_verify(struct cli *cli, struct snap_opts *o)
{
	struct coffer_repo *repo = NULL;
	struct coffer_snapverify_stats s;
	int rc;

	rc = coffer_repo_open(cli->st, o->target, 0, &repo);
	if (rc == 0)
		rc = coffer_snapshot_verify(repo, o->read_data < 0 ? 0 : o->read_data,
		                            verify_problem, NULL, &s);
	coffer_repo_close(&repo);
	if (rc < 0)
		return cli_fail(rc);
	printf("%llu snapshots, %llu accounts, %llu objects, %llu blobs (%llu decrypted): %llu "
	       "problems\n",
	       (unsigned long long)s.snapshots, (unsigned long long)s.accounts,
	       (unsigned long long)s.objects, (unsigned long long)s.blobs,
	       (unsigned long long)s.blobs_read, (unsigned long long)s.problems);
	return s.problems ? EXIT_DAMAGE : 0;
}

static int snap_prune(struct cli *cli, struct snap_opts *o)
{
	struct coffer_prune_result res;
	int64_t now;
	int rc, p;

	rc = coffer_clock_now(&now);
	if (rc == 0)
		rc = coffer_action_prune(cli->st, o->target, now, &res, &p);
	if (rc < 0)
		return cli_fail(rc);
	cli_warn_pending(p);
	printf("pruned %u snapshots (%llu objects deleted), %u kept\n", res.pruned,
	       (unsigned long long)res.objects_deleted, res.kept);
	return 0;
}

static const struct cli_opt snap_opts_list[] = {
	{ "target", 1, OPT_TARGET },
	{ "read-data", 2, OPT_READ_DATA },
	{ "new-target", 0, OPT_NEW_TARGET },
	{ NULL, 0, 0 },
};

static int run_snapshot(struct cli *cli, int argc, char **argv)
{
	struct snap_opts o = { 0 };
	char *pos[1];
	int n, json, rc;

	o.read_data = -1;
	n = cli_parse(&cmd_snapshot, argc, argv, snap_opts_list, snap_opt, &o, &json, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 1)
		return cli_usage_error("snapshot", "needs a verb: create, list, verify or prune");
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	if (strcmp(pos[0], "create") == 0)
		return snap_create(cli, &o);
	if (strcmp(pos[0], "list") == 0)
		return snap_list(cli, &o, json);
	if (strcmp(pos[0], "verify") == 0)
		return snap_verify(cli, &o);
	if (strcmp(pos[0], "prune") == 0)
		return snap_prune(cli, &o);
	return cli_usage_error("snapshot", "unknown verb '%s'", pos[0]);
}

const struct cli_cmd cmd_snapshot = {
	"snapshot",
	"create|list|verify|prune [--target DIR] [--new-target] [--json] [--read-data[=PERCENT]]",
	"Daily incremental snapshots of every account into a target directory (coffer.conf's\n"
	"snapshot_target, or --target DIR).\n"
	"  create [--new-target]\n"
	"                     a consistent snapshot; costs what changed since the last one.\n"
	"                     A directory without a Coffer marker is refused while the\n"
	"                     store has another target (an unmounted disk looks like\n"
	"                     that); --new-target starts a new, complete target there\n"
	"  list [--json]      id, time, accounts, messages, new bytes, expiry\n"
	"  verify [--read-data[=PERCENT]]\n"
	"                     checks structure; --read-data also decrypts that share of the\n"
	"                     blobs (default 100). Exit 1 when anything is damaged.\n"
	"  prune              deletes snapshots older than data_retention_days and the data\n"
	"                     only they held",
	run_snapshot,
};

static int run_restore(struct cli *cli, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{ "target", 1, OPT_TARGET }, { "as-of", 1, OPT_AS_OF },
		{ "folder", 1, OPT_FOLDER }, { "uid", 1, OPT_UID },
		{ "into", 1, OPT_INTO },     { "to", 1, OPT_TO },
		{ "tar", 1, OPT_TAR },       { "all", 0, OPT_ALL },
		{ "from", 1, OPT_FROM },     { NULL, 0, 0 },
	};
	struct snap_opts o = { 0 };
	struct coffer_restore_opts ro;
	struct coffer_restore_result res;
	char *pos[1], *end, when[COFFER_CLOCK_ISO_MAX];
	int n, rc, p;

	o.read_data = -1;
	n = cli_parse(&cmd_restore, argc, argv, opts, snap_opt, &o, NULL, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (o.all) {
		if (n != 0 || !o.from)
			return cli_usage_error("restore",
			                       "--all takes --from TARGET and no account");
		if (!cli->key_file)
			return cli_usage_error("restore",
			                       "--all needs the key file: give --key-file FILE "
			                       "before the subcommand");
		rc = coffer_action_restore_all(cli->store_path, cli->key_file, o.from, &res, &p);
		if (rc < 0)
			return cli_fail(rc);
		cli_warn_pending(p);
		coffer_clock_format(res.snapshot_time, when);
		printf("restored store %s from snapshot %s (%s): %llu accounts, %llu messages\n",
		       cli->store_path, res.snapshot, when, (unsigned long long)res.accounts,
		       (unsigned long long)res.restored);
		return 0;
	}
	if (n != 1 || !o.as_of)
		return cli_usage_error("restore", "needs NAME and --as-of WHEN");
	if ((o.into != NULL) + (o.to != NULL) + (o.tar != NULL) > 1)
		return cli_usage_error("restore", "--into, --to and --tar exclude each other");
	memset(&ro, 0, sizeof ro);
	ro.target = o.target;
	ro.account = pos[0];
	ro.folder = o.folder;
	ro.into = o.into;
	rc = coffer_clock_parse(o.as_of, &ro.as_of);
	if (rc < 0)
		return cli_usage_error("restore", "--as-of '%s' is not a date or time", o.as_of);
	/* a bare date means the whole day */
	if (strlen(o.as_of) == 10)
		ro.as_of += COFFER_NS_PER_DAY - 1;
	if (o.uid) {
		unsigned long u = strtoul(o.uid, &end, 10);

		if (*o.uid == '\0' || *end != '\0' || u == 0 || u > UINT32_MAX)
			return cli_usage_error("restore", "--uid '%s' is not a uid", o.uid);
		ro.uid = (uint32_t)u;
		if (!ro.folder)
			ro.folder = "INBOX";
	}
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	if (o.to || o.tar) {
		rc = coffer_restore_export(cli->st, &ro, o.to, o.tar, &res);
		if (rc < 0)
			return cli_fail(rc);
		coffer_clock_format(res.snapshot_time, when);
		fprintf(o.tar && strcmp(o.tar, "-") == 0 ? stderr : stdout,
		        "wrote %llu messages in %llu folders from snapshot %s (%s) to %s\n",
		        (unsigned long long)res.restored, (unsigned long long)res.folders,
		        res.snapshot, when, o.to ? o.to : o.tar);
		return 0;
	}
	rc = coffer_action_restore(cli->st, &ro, &res, &p);
	if (rc < 0)
		return cli_fail(rc);
	cli_warn_pending(p);
	coffer_clock_format(res.snapshot_time, when);
	printf("restored %llu messages (%llu already present) from snapshot %s (%s) into %s\n",
	       (unsigned long long)res.restored, (unsigned long long)res.present, res.snapshot,
	       when, res.into);
	return 0;
}

const struct cli_cmd cmd_restore = {
	"restore",
	"NAME --as-of WHEN [--folder F] [--uid N] [(--into FOLDER | --to DIR | --tar FILE)] [--target DIR] | --all --from TARGET",
	"Restores mail from the newest snapshot taken at or before WHEN (a date or a time).\n"
	"By default (and with --into), messages go into the live account under a new folder\n"
	"Restored/<snapshot date>/<original folder>, keeping flags, keywords and internal\n"
	"dates; live mail is never overwritten or duplicated. --to DIR and --tar FILE\n"
	"(\"-\": stdout; .zst: zstd) write the selection as a Maildir++ tree instead, like\n"
	"coffer export, without touching the live store.\n"
	"--all --from TARGET rebuilds a whole store (given by --store, which must not exist\n"
	"or be empty) from the newest snapshot, with only the target and --key-file.",
	run_restore,
};
