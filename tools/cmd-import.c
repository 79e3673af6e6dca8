/*
 * cmd-import.c: `coffer import NAME MAILDIR [--folder-prefix P] [--json]`:
 * argument parsing, the progress line and the summary. The work is in
 * maildir/import.c.
 */
#include "cmds.h"

#include "engine/errors.h"
#include "maildir/import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct import_cli {
	const char *prefix;
	unsigned batch;
	int json;
	/* progress */
	int tty;
	double start, last;
	int shown;
};

enum { OPT_PREFIX = 1000, OPT_BATCH };

static int import_opt(int opt, const char *arg, void *ctx)
{
	struct import_cli *o = ctx;
	char *end;
	unsigned long v;

	if (opt == OPT_PREFIX) {
		o->prefix = arg;
	} else if (opt == OPT_BATCH) {
		v = strtoul(arg, &end, 10);
		if (*arg == '\0' || *end != '\0' || v < 1 || v > 4096)
			return cli_usage_error("import",
			                       "--batch '%s' is not a number from 1 to 4096", arg);
		o->batch = (unsigned)v;
	}
	return 0;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The progress line on stderr, at most 4 times a second. */
static void show_progress(const struct coffer_import_stats *s, void *arg)
{
	struct import_cli *o = arg;
	double now = mono_now(), el = now - o->start, rate, eta = -1;

	if (now - o->last < 0.25)
		return;
	o->last = now;
	rate = el > 0 ? (double)s->seen_bytes / el : 0;
	if (rate > 0 && s->total_bytes >= s->seen_bytes)
		eta = (double)(s->total_bytes - s->seen_bytes) / rate;
	fprintf(stderr, "\rimport: %llu/%llu files, %.1f MB/s", (unsigned long long)s->seen_files,
	        (unsigned long long)s->total_files, rate / 1e6);
	if (eta >= 0)
		fprintf(stderr, ", ETA %d:%02d", (int)eta / 60, (int)eta % 60);
	fprintf(stderr, "\033[K");
	o->shown = 1;
}

static void summary_text(struct coffer_buf *b, const char *name,
                         const struct coffer_import_stats *s)
{
	coffer_buf_printf(b, "account: %s\n", name);
	coffer_buf_printf(b, "messages imported: %llu\n", (unsigned long long)s->imported);
	coffer_buf_printf(b, "bytes imported: %llu (%.1f MiB)\n",
	                  (unsigned long long)s->imported_bytes,
	                  (double)s->imported_bytes / (1024.0 * 1024.0));
	coffer_buf_printf(b, "already imported: %llu\n", (unsigned long long)s->already);
	coffer_buf_printf(b, "folders: %llu (created: %llu)\n", (unsigned long long)s->folders,
	                  (unsigned long long)s->folders_created);
	if (s->keywords_dropped)
		coffer_buf_printf(b,
		                  "keyword letters dropped (no name in dovecot-keywords): %llu\n",
		                  (unsigned long long)s->keywords_dropped);
	if (s->orphans_removed)
		coffer_buf_printf(b, "blobs of an interrupted import removed: %llu\n",
		                  (unsigned long long)s->orphans_removed);
	coffer_buf_printf(b, "skipped: %llu\n", (unsigned long long)s->skipped_total);
	for (int i = 0; i < COFFER_IMPORT_SKIP_COUNT; i++) {
		if (s->skipped[i] == 0)
			continue;
		coffer_buf_printf(b, "  %s: %llu (%s)\n", coffer_import_skip_key(i),
		                  (unsigned long long)s->skipped[i], coffer_import_skip_text(i));
		for (int j = 0; j < COFFER_IMPORT_EXAMPLES && s->examples[i][j]; j++)
			coffer_buf_printf(b, "    %s\n", s->examples[i][j]);
		if (s->skipped[i] > COFFER_IMPORT_EXAMPLES)
			coffer_buf_printf(b, "    ... and %llu more\n",
			                  (unsigned long long)(s->skipped[i] -
			                                       COFFER_IMPORT_EXAMPLES));
	}
}

static void summary_json(struct coffer_buf *b, const char *name,
                         const struct coffer_import_stats *s)
{
	int first = 1, any = 0;

	coffer_buf_putc(b, '{');
	json_key_str(b, &first, "account", name);
	json_key_u64(b, &first, "messages", s->imported);
	json_key_u64(b, &first, "bytes", s->imported_bytes);
	json_key_u64(b, &first, "already", s->already);
	json_key_u64(b, &first, "folders", s->folders);
	json_key_u64(b, &first, "folders_created", s->folders_created);
	json_key_u64(b, &first, "keywords_dropped", s->keywords_dropped);
	json_key_u64(b, &first, "orphans_removed", s->orphans_removed);
	json_key_u64(b, &first, "skipped_total", s->skipped_total);
	coffer_buf_puts(b, ", \"skipped\": {");
	for (int i = 0; i < COFFER_IMPORT_SKIP_COUNT; i++) {
		int f2 = 1;

		if (s->skipped[i] == 0)
			continue;
		coffer_buf_puts(b, any ? ", " : "");
		coffer_buf_put_json_str(b, coffer_import_skip_key(i),
		                        strlen(coffer_import_skip_key(i)));
		coffer_buf_puts(b, ": {");
		json_key_u64(b, &f2, "count", s->skipped[i]);
		json_key_str(b, &f2, "reason", coffer_import_skip_text(i));
		coffer_buf_puts(b, ", \"examples\": [");
		for (int j = 0; j < COFFER_IMPORT_EXAMPLES && s->examples[i][j]; j++) {
			coffer_buf_puts(b, j ? ", " : "");
			coffer_buf_put_json_str(b, s->examples[i][j], strlen(s->examples[i][j]));
		}
		coffer_buf_puts(b, "]}");
		any = 1;
	}
	coffer_buf_puts(b, "}}\n");
}

static int run_import(struct cli *cli, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{ "folder-prefix", 1, OPT_PREFIX },
		{ "batch", 1, OPT_BATCH },
		{ NULL, 0, 0 },
	};
	struct import_cli o;
	struct coffer_import_opts io;
	struct coffer_import_stats stats;
	struct coffer_buf out = COFFER_BUF_INIT;
	char *pos[2];
	int n, rc, code;

	memset(&o, 0, sizeof o);
	n = cli_parse(&cmd_import, argc, argv, opts, import_opt, &o, &o.json, pos, 2);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 2)
		return cli_usage_error("import", "needs the account NAME and the MAILDIR");
	if ((code = cli_open_store(cli)) != 0)
		return code;
	memset(&io, 0, sizeof io);
	io.folder_prefix = o.prefix;
	io.batch_messages = o.batch;
	o.tty = isatty(STDERR_FILENO);
	if (o.tty) {
		io.prescan = 1;
		io.progress = show_progress;
		io.progress_arg = &o;
		o.start = o.last = mono_now();
	}
	rc = coffer_import_maildir(cli->st, pos[0], pos[1], &io, &stats);
	if (o.shown)
		fprintf(stderr, "\r\033[K");
	if (rc < 0) {
		code = cli_fail(rc);
		if (stats.imported > 0)
			fprintf(stderr,
			        "coffer: %llu messages were imported before the error; run the "
			        "same import again to resume\n",
			        (unsigned long long)stats.imported);
		coffer_import_stats_free(&stats);
		return code;
	}
	if (o.json)
		summary_json(&out, pos[0], &stats);
	else
		summary_text(&out, pos[0], &stats);
	code = coffer_buf_ok(&out) < 0 ? cli_fail(COFFER_ENOMEM) : cli_write_stdout(&out);
	coffer_buf_free(&out);
	coffer_import_stats_free(&stats);
	return code;
}

const struct cli_cmd cmd_import = {
	"import",
	"NAME MAILDIR [--folder-prefix P] [--json]",
	"Imports the Maildir++ tree MAILDIR (Dovecot, Courier, qmail, Postfix) into the\n"
	"existing account NAME: INBOX (MAILDIR/cur, MAILDIR/new) and every folder\n"
	"MAILDIR/.Name.Sub (modified UTF-7 on disk; becomes \"Name/Sub\"). Kept per\n"
	"message: the bytes, the flags (:2,DFPRST), the keywords (letters a-z named\n"
	"in the folder's dovecot-keywords), the mtime as internal date, the folder,\n"
	"new vs cur, and the Maildir file name. tmp/ and Dovecot's and Courier's\n"
	"control and index files are not imported. Symbolic links are never\n"
	"followed. Other entries that are not messages (bad names, unreadable,\n"
	"empty, not RFC 5322, too large, duplicates) are skipped and listed.\n"
	"With --folder-prefix P, INBOX is imported into folder P and .X.Y into P/X/Y.\n"
	"Resumable: a message already imported into its folder (same file name) is\n"
	"left alone, so after an interruption (even kill -9) run the same command\n"
	"again. Messages are committed in batches (--batch N messages, default 256)\n"
	"made durable together; a batch is stored whole or not at all.\n"
	"Shows progress on a terminal. Prints a summary on stdout (--json: one\n"
	"object: account, messages, bytes, already, folders, folders_created,\n"
	"keywords_dropped, orphans_removed, skipped_total, skipped {key: {count,\n"
	"reason, examples}}).\n"
	"Exit codes: 0 done (skipped entries are not errors), 64 bad usage or invalid\n"
	"--folder-prefix, 65 MAILDIR is not a Maildir (no cur/ or new/ at its root\n"
	"and no .Folder/cur), 66 MAILDIR does not exist, 67 unknown or terminated\n"
	"account, 75 another import into the account is running, or a temporary\n"
	"failure (disk full), 74 I/O error.",
	run_import,
};
