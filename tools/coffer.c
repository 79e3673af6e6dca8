/*
 * coffer.c: the `coffer` command: global options, then a subcommand.
 *
 *     coffer [--store DIR] [--key-file FILE] SUBCOMMAND [ARGS...]
 *
 * --store defaults to $COFFER_STORE, else /var/lib/coffer; --key-file to
 * $COFFER_KEY_FILE, else the path recorded in coffer.conf at init. Global
 * options go before the subcommand (git style). Every subcommand takes
 * --help. Exit codes: docs/exit-codes.md.
 *
 * The hidden option --man [SUBCOMMAND] prints a roff man page built from the
 * same tables as --help (the subcommands' usage and help, the global
 * options, the environment, and out.c's exit codes); man/meson.build runs it
 * at build time, so the pages are never edited by hand.
 */
#include "cmds.h"

#include "engine/buf.h"
#include "engine/crypto.h"
#include "engine/errors.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#ifndef COFFER_DOCDIR
#define COFFER_DOCDIR "/usr/share/doc/coffer"
#endif

static const struct cli_cmd *const commands[] = {
	&cmd_init,    &cmd_account, &cmd_deliver,       &cmd_folders, &cmd_ls,
	&cmd_cat,     &cmd_import,  &cmd_export,        &cmd_verify,  &cmd_snapshot,
	&cmd_restore, &cmd_policy,  &cmd_worker,        &cmd_purge,   &cmd_audit,
	&cmd_report,  &cmd_mount,   &cmd_umount,        &cmd_passwd,  &cmd_apppass,
	&cmd_totp,    &cmd_auth,    &cmd_checkpassword, &cmd_logins,  &cmd_security,
	NULL,
};

/* The one description of the command and its global options: printed by
 * --help and by the man pages (--man). */
static const char intro[] =
    "Coffer keeps mail encrypted, compressed and indexed, with snapshots and\n"
    "retention.";

static const struct {
	const char *opt, *arg, *help;
} global_opts[] = {
	{ "--store", "DIR", "the store (default $COFFER_STORE, else " COFFER_DEFAULT_STORE ")" },
	{ "--key-file", "FILE",
	  "the key file (default $COFFER_KEY_FILE, else the path recorded at init)" },
	{ "--version", NULL, "print the version" },
	{ "--help", NULL, "print this help; after a subcommand, the subcommand's help" },
};

static const struct {
	const char *name, *help;
} environment[] = {
	{ "COFFER_STORE",
	  "The store, when --store is not given (default " COFFER_DEFAULT_STORE ")." },
	{ "COFFER_KEY_FILE",
	  "The key file, when --key-file is not given (default: the path "
	  "recorded in coffer.conf at init, normally " COFFER_DEFAULT_KEY_FILE ")." },
	{ "COFFER_NOW", "Overrides the current time (ISO-8601 UTC, or Unix seconds). A testing "
	                "aid: never set it in production, where a clock moved forward prunes "
	                "snapshots, expires metadata and shreds terminated accounts early." },
	{ "COFFER_LOG_LEVEL", "The least severe level the worker and the mount daemon log: error, "
	                      "warning, info (default) or debug." },
	{ "JOURNAL_STREAM", "Set by systemd. When it names coffer's stderr, log lines carry "
	                    "syslog priorities (<3>, <4>, ...) for journald instead of the "
	                    "\"coffer: LEVEL:\" prefix." },
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: coffer [--store DIR] [--key-file FILE] SUBCOMMAND [ARGS...]\n\n"
	        "%s Subcommands:\n",
	        intro);
	for (int i = 0; commands[i]; i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->usage);
	fprintf(f, "\nGlobal options:\n");
	for (size_t i = 0; i < ARRAY_SIZE(global_opts); i++) {
		char opt[32];

		snprintf(opt, sizeof opt, "%s%s%s", global_opts[i].opt,
		         global_opts[i].arg ? " " : "",
		         global_opts[i].arg ? global_opts[i].arg : "");
		fprintf(f, "  %-16s %s\n", opt, global_opts[i].help);
	}
	fprintf(f, "Run 'coffer SUBCOMMAND --help' for a subcommand's options.\n"
	           "COFFER_NOW (ISO-8601 UTC or Unix seconds) overrides the current time; it is\n"
	           "a testing aid.\n");
}

/* ---- man pages (coffer --man [SUBCOMMAND]) ----
 *
 * The pages are generated from the same table as --help, at build time
 * (man/meson.build), so they cannot drift from the command. Help texts are
 * plain text with a light structure that maps onto man(7):
 *   - unindented lines are prose, filled into paragraphs;
 *   - a line indented by two spaces starts an item, "TAG  description"
 *     (two or more spaces end the tag), rendered as .TP;
 *   - a line indented further continues the item's description.
 * Text is escaped for roff: backslashes, '-' as \- (so options can be copied
 * from the rendered page), quotes as \(aq and \(ga, and a leading '.'.
 */

/* Writes n bytes of text with roff escapes (no line breaks inside). */
static void roff_escape(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '\\': fputs("\\e", f); break;
		case '-': fputs("\\-", f); break;
		case '\'': fputs("\\(aq", f); break;
		case '`': fputs("\\(ga", f); break;
		case '.':
			if (i == 0)
				fputs("\\&", f);
			fputc('.', f);
			break;
		default: fputc(s[i], f);
		}
	}
}

/* A text line: escaped, leading blanks dropped (a leading blank would break
 * the filled paragraph in roff). */
static void roff_line(FILE *f, const char *s, size_t n)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	if (n == 0)
		return;
	roff_escape(f, s, n);
	fputc('\n', f);
}

/* A synopsis: option names in bold, upper-case placeholders in italics. */
static void roff_usage(FILE *f, const char *s)
{
	size_t i = 0, j;

	while (s[i]) {
		if (s[i] == '-' && (i == 0 || strchr(" [(|", s[i - 1]))) {
			for (j = i; s[j] == '-' || (s[j] >= 'a' && s[j] <= 'z') ||
			            (s[j] >= '0' && s[j] <= '9');
			     j++)
				;
			fputs("\\fB", f);
			roff_escape(f, s + i, j - i);
			fputs("\\fR", f);
		} else if (s[i] >= 'A' && s[i] <= 'Z' && s[i + 1] >= 'A' && s[i + 1] <= 'Z' &&
		           (i == 0 || !isalnum((unsigned char)s[i - 1]))) {
			for (j = i; (s[j] >= 'A' && s[j] <= 'Z') || s[j] == '_' ||
			            (s[j] >= '0' && s[j] <= '9');
			     j++)
				;
			fputs("\\fI", f);
			roff_escape(f, s + i, j - i);
			fputs("\\fR", f);
		} else {
			for (j = i + 1; s[j] && s[j] != '-' && !(s[j] >= 'A' && s[j] <= 'Z'); j++)
				;
			roff_escape(f, s + i, j - i);
		}
		i = j;
	}
	fputc('\n', f);
}

/* The help text (see above) as man(7) paragraphs and items. */
static void roff_help(FILE *f, const char *help)
{
	const char *line = help;
	int in_item = 0;

	while (*line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line), indent = 0;

		while (indent < n && line[indent] == ' ')
			indent++;
		if (indent == n) {
			fputs(".PP\n", f);
			in_item = 0;
		} else if (indent == 2) {
			const char *tag = line + 2, *gap = NULL;

			for (size_t k = 2; k + 1 < n; k++) {
				if (line[k] == ' ' && line[k + 1] == ' ') {
					gap = line + k;
					break;
				}
			}
			fputs(".TP\n\\fB", f);
			roff_escape(f, tag, (size_t)((gap ? gap : line + n) - tag));
			fputs("\\fR\n", f);
			if (gap)
				roff_line(f, gap, (size_t)(line + n - gap));
			in_item = 1;
		} else if (indent > 2 && in_item) {
			roff_line(f, line, n);
		} else {
			if (in_item)
				fputs(".PP\n", f);
			in_item = 0;
			roff_line(f, line, n);
		}
		line += n + (end != NULL);
	}
}

/* The first clause of a help text (up to ". " or ": " outside brackets),
 * on one line, for the NAME section. */
static void roff_summary(FILE *f, const char *help)
{
	int depth = 0;
	size_t n;

	for (n = 0; help[n]; n++) {
		if (help[n] == '(' || help[n] == '[' || help[n] == '{')
			depth++;
		else if ((help[n] == ')' || help[n] == ']' || help[n] == '}') && depth > 0)
			depth--;
		else if (depth == 0 && (help[n] == '.' || help[n] == ':') &&
		         (help[n + 1] == ' ' || help[n + 1] == '\n' || help[n + 1] == '\0'))
			break;
	}
	for (size_t i = 0; i < n; i++) {
		if (help[i] == '\n')
			fputc(' ', f);
		else
			roff_escape(f, help + i, 1);
	}
}

static void roff_header(FILE *f, const char *title)
{
	fputs(".\\\" Generated by coffer --man from the command's own help; do not edit.\n", f);
	fprintf(f, ".TH \"%s\" 1 \"\" \"coffer %s\" \"Coffer Manual\"\n.nh\n.ad l\n", title,
	        COFFER_VERSION);
}

static void roff_global_options(FILE *f, const char *heading)
{
	fprintf(f, ".SH %s\n", heading);
	for (size_t i = 0; i < ARRAY_SIZE(global_opts); i++) {
		fputs(".TP\n\\fB", f);
		roff_escape(f, global_opts[i].opt, strlen(global_opts[i].opt));
		fputs("\\fR", f);
		if (global_opts[i].arg)
			fprintf(f, " \\fI%s\\fR", global_opts[i].arg);
		fputc('\n', f);
		roff_line(f, global_opts[i].help, strlen(global_opts[i].help));
	}
}

static const char docs_pointer[] =
    "The operator's guide (operations.md), the design (design.md), the security model "
    "(security.md), Dovecot wiring (dovecot.md) and the exit codes (exit-codes.md) are in " COFFER_DOCDIR
    ".";

static void roff_common_tail(FILE *f, const struct cli_cmd *cmd)
{
	fputs(".SH EXIT STATUS\n", f);
	if (cmd)
		fputs("Where the description above gives codes of its own, they apply; "
		      "otherwise, as for every command:\n",
		      f);
	else
		fputs("The sysexits(3) codes below; subcommands that document codes of their "
		      "own (deliver, verify, checkpassword, ...) say so in their pages.\n",
		      f);
	for (const struct cli_exit_status *e = cli_exit_statuses; e->meaning; e++) {
		fprintf(f, ".TP\n.B %d", e->code);
		if (e->name)
			fprintf(f, " (%s)", e->name);
		fputc('\n', f);
		roff_line(f, e->meaning, strlen(e->meaning));
	}
	fputs(".SH ENVIRONMENT\n", f);
	for (size_t i = 0; i < ARRAY_SIZE(environment); i++) {
		fprintf(f, ".TP\n.B %s\n", environment[i].name);
		roff_line(f, environment[i].help, strlen(environment[i].help));
	}
	fputs(".SH FILES\n"
	      ".TP\n.I " COFFER_DEFAULT_STORE "\n"
	      "The default store (mode 0700): \\fIcoffer.conf\\fR (settings), \\fIindex/\\fR "
	      "(LMDB), \\fIblobs/\\fR (encrypted messages), \\fIlocks/\\fR.\n"
	      ".TP\n.I STORE/coffer.conf\n"
	      "Retention periods, snapshot target and time, index map and message size limits; "
	      "no secrets.\n"
	      ".TP\n.I " COFFER_DEFAULT_KEY_FILE "\n"
	      "The default key file (mode 0600, outside the store). Whoever holds it and a copy "
	      "of the store reads all mail; its backups are part of the retention promise.\n",
	      f);
	fputs(".SH SEE ALSO\n", f);
	if (cmd) {
		fputs(".BR coffer (1)\n", f);
	} else {
		for (int i = 0; commands[i]; i++)
			fprintf(f, ".BR coffer\\-%s (1)%s\n", commands[i]->name,
			        commands[i + 1] ? "," : "");
	}
	fputs(".PP\n", f);
	roff_line(f, docs_pointer, strlen(docs_pointer));
}

static void man_main(FILE *f)
{
	roff_header(f, "COFFER");
	fputs(".SH NAME\ncoffer \\- encrypted, compressed and indexed mail storage with "
	      "snapshots and retention\n"
	      ".SH SYNOPSIS\n",
	      f);
	roff_usage(f, "coffer [--store DIR] [--key-file FILE] SUBCOMMAND [ARGS...]");
	fputs(".br\n", f);
	roff_usage(f, "coffer --version");
	fputs(".br\n", f);
	roff_usage(f, "coffer --help");
	fputs(".SH DESCRIPTION\n", f);
	roff_help(f, intro);
	fputs("Coffer keeps every account's mail in one store: Maildir-shaped, indexed by "
	      "LMDB, each message compressed and encrypted under a key of its account. "
	      "Delivery needs no secret key; reading needs the key file.\n"
	      ".PP\n"
	      "Global options go before the subcommand. Every subcommand takes "
	      "\\fB\\-\\-help\\fR; its page is \\fBcoffer\\-\\fR\\fISUBCOMMAND\\fR(1).\n",
	      f);
	fputs(".SH COMMANDS\n", f);
	for (int i = 0; commands[i]; i++) {
		fputs(".TP\n\\fB", f);
		roff_escape(f, commands[i]->name, strlen(commands[i]->name));
		fputs("\\fR ", f);
		roff_usage(f, commands[i]->usage);
		roff_summary(f, commands[i]->help);
		fprintf(f, ". See \\fBcoffer\\-%s\\fR(1).\n", commands[i]->name);
	}
	roff_global_options(f, "GLOBAL OPTIONS");
	roff_common_tail(f, NULL);
}

static void man_sub(FILE *f, const struct cli_cmd *cmd)
{
	struct coffer_buf title = COFFER_BUF_INIT;

	coffer_buf_puts(&title, "COFFER-");
	for (const char *p = cmd->name; *p; p++)
		coffer_buf_putc(&title, toupper((unsigned char)*p));
	roff_header(f, coffer_buf_str(&title));
	coffer_buf_free(&title);
	fprintf(f, ".SH NAME\ncoffer\\-%s \\- ", cmd->name);
	roff_summary(f, cmd->help);
	fputs("\n.SH SYNOPSIS\n", f);
	roff_usage(f, "coffer [--store DIR] [--key-file FILE]");
	fprintf(f, "\\fB%s\\fR ", cmd->name);
	roff_usage(f, cmd->usage);
	fputs(".br\n", f);
	fprintf(f, "\\fBcoffer %s \\-\\-help\\fR\n", cmd->name);
	fputs(".SH DESCRIPTION\n", f);
	roff_help(f, cmd->help);
	roff_global_options(f, "GLOBAL OPTIONS");
	roff_common_tail(f, cmd);
}

/* coffer --man [SUBCOMMAND]: prints the man page; exit 0, or 64 for an
 * unknown subcommand. */
static int run_man(const char *sub)
{
	if (sub == NULL) {
		man_main(stdout);
		return 0;
	}
	for (int i = 0; commands[i]; i++) {
		if (strcmp(commands[i]->name, sub) == 0) {
			man_sub(stdout, commands[i]);
			return 0;
		}
	}
	fprintf(stderr, "coffer: --man: unknown subcommand '%s' (see coffer --help)\n", sub);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	struct cli cli = { "coffer", NULL, NULL, NULL };
	struct rlimit no_core = { 0, 0 };
	int i, rc;

	/* Key material must never reach a core file. */
	setrlimit(RLIMIT_CORE, &no_core);
	i = cli_globals(argc, argv, &cli);
	if (i < 0) {
		const char *a = argv[-i];

		i = -i;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--version")) {
			printf("coffer %s\n", COFFER_VERSION);
			return 0;
		}
		if (strcmp(a, "--man") != 0) {
			fprintf(
			    stderr,
			    "coffer: unknown or incomplete global option %s (see coffer --help)\n",
			    a);
			return EXIT_USAGE;
		}
		/* hidden: the build generates the man pages with it */
		if (i + 2 < argc) {
			fprintf(stderr, "coffer: --man takes at most one subcommand\n");
			return EXIT_USAGE;
		}
		rc = run_man(i + 1 < argc ? argv[i + 1] : NULL);
		if (fflush(stdout) != 0 && rc == 0) {
			fprintf(stderr, "coffer: cannot write the output\n");
			rc = EXIT_IOERR;
		}
		return rc;
	}
	if (i == argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (coffer_crypto_init() < 0) {
		fprintf(stderr, "coffer: cannot initialise libsodium\n");
		return EXIT_SOFTWARE;
	}
	for (int c = 0; commands[c]; c++) {
		if (strcmp(commands[c]->name, argv[i]) == 0) {
			rc = commands[c]->run(&cli, argc - i, argv + i);
			coffer_store_close(&cli.st);
			if (fflush(stdout) != 0 && rc == 0) {
				fprintf(stderr, "coffer: cannot write the output\n");
				rc = EXIT_IOERR;
			}
			return rc;
		}
	}
	fprintf(stderr, "coffer: unknown subcommand '%s' (see coffer --help)\n", argv[i]);
	return EXIT_USAGE;
}
