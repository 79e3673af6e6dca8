/*
 * out.h: what every `coffer` subcommand shares: the context built from the
 * global options, error reporting with documented exit codes
 * (docs/exit-codes.md), and output helpers (text tables, JSON).
 *
 * tools/ holds no logic: a subcommand parses its arguments, calls the
 * library, and formats what it returns.
 */
#ifndef COFFER_TOOLS_OUT_H
#define COFFER_TOOLS_OUT_H

#include "engine/buf.h"
#include "engine/store.h"

#include <stdint.h>

/* Exit codes (sysexits.h, plus Coffer's own). */
enum {
	EXIT_OK_ = 0,
	EXIT_DAMAGE = 1, /* damage found, or a failure with no better code */
	EXIT_USAGE = 64,
	EXIT_DATAERR = 65,
	EXIT_NOINPUT = 66,
	EXIT_NOUSER = 67,
	EXIT_SOFTWARE = 70,
	EXIT_CANTCREAT = 73,
	EXIT_IOERR = 74,
	EXIT_TEMPFAIL = 75,
	EXIT_NOPERM = 77,
	EXIT_CONFIG = 78,
	EXIT_SHREDDED = 79,
};

/* The exit codes every command shares, as docs/exit-codes.md lists them
 * (the man pages print this table): the code, its sysexits(3) name or NULL,
 * and its meaning. Ends with an entry whose meaning is NULL. */
struct cli_exit_status {
	int code;
	const char *name;
	const char *meaning;
};
extern const struct cli_exit_status cli_exit_statuses[];

struct cli {
	const char *prog;       /* "coffer" */
	const char *store_path; /* --store, $COFFER_STORE, default */
	const char *key_file;   /* --key-file, $COFFER_KEY_FILE, or NULL */
	struct coffer_store *st;
};

/* Opens the store named by the global options (once); on failure prints the
 * error and returns its exit code (> 0). */
int cli_open_store(struct cli *cli);

/* The exit code for a library error. */
int cli_exit_code(int rc);
/* Prints "coffer: <detail>" (or the generic text) to stderr and returns
 * cli_exit_code(rc). */
int cli_fail(int rc);
/* Prints "coffer CMD: <printf>" and a hint to use --help; returns 64. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For an action that stands but whose audit entry is pending
 * (policy/action.h): prints "coffer: warning: <detail>" when pending. */
void cli_warn_pending(int pending);

/* Writes the buffer to stdout; returns 0 or an exit code. */
int cli_write_stdout(const struct coffer_buf *b);

/* JSON helpers: appends "key": value (with a leading comma unless first). */
void json_key_str(struct coffer_buf *b, int *first, const char *key, const char *val);
void json_key_u64(struct coffer_buf *b, int *first, const char *key, uint64_t v);
/* An ISO time, or null when ns == 0. */
void json_key_time(struct coffer_buf *b, int *first, const char *key, int64_t ns);

/* Option parsing shared by subcommands: argv[0] is the subcommand. Returns
 * 1 if --help was given (after printing help), 0 otherwise. */
struct cli_cmd {
	const char *name;
	const char *usage; /* "NAME [FOLDER] [--json]" */
	const char *help;  /* paragraph */
	int (*run)(struct cli *cli, int argc, char **argv);
};
void cli_print_help(const struct cli_cmd *cmd);

#endif
