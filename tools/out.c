/*
 * out.c: error reporting, exit codes and output helpers for `coffer`
 * (see out.h). The exit-code table here (cli_exit_statuses, which the man
 * pages print) is the one docs/exit-codes.md documents; the install test
 * checks that the two list the same codes.
 */
#include "out.h"

#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/io.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const struct cli_exit_status cli_exit_statuses[] = {
	{ EXIT_OK_, "EX_OK", "success; for coffer deliver, the message is durably stored" },
	{ EXIT_DAMAGE, NULL,
	  "damage found (e.g. a blob fails authentication or is truncated), or generic failure" },
	{ EXIT_USAGE, "EX_USAGE",
	  "bad usage: unknown option or subcommand, missing argument, invalid account or folder "
	  "name, invalid uid" },
	{ EXIT_DATAERR, "EX_DATAERR",
	  "malformed input: what deliver read is not a message (empty input included)" },
	{ EXIT_NOINPUT, "EX_NOINPUT", "a missing input file, or a missing store or key file" },
	{ EXIT_NOUSER, "EX_NOUSER",
	  "unknown account, or an account that is terminated (deliveries and access refused)" },
	{ EXIT_CANTCREAT, "EX_CANTCREAT",
	  "refusing to overwrite (init on an existing store or key file)" },
	{ EXIT_IOERR, "EX_IOERR", "I/O error" },
	{ EXIT_TEMPFAIL, "EX_TEMPFAIL",
	  "temporary failure (a lock is busy, the disk is full): try again later" },
	{ EXIT_NOPERM, "EX_NOPERM",
	  "permission: the key file is group- or world-readable, or unreadable" },
	{ EXIT_CONFIG, "EX_CONFIG", "configuration error (coffer.conf)" },
	{ EXIT_SHREDDED, NULL,
	  "the account was shredded (its keys are destroyed; its mail is gone for good)" },
	{ 0, NULL, NULL },
};

int cli_exit_code(int rc)
{
	switch (rc) {
	case 0: return 0;
	case COFFER_EINVAL: return EXIT_USAGE;
	case COFFER_EBADMSG:
	case COFFER_ELIMIT: return EXIT_DATAERR;
	case COFFER_ENOTFOUND: return EXIT_NOINPUT;
	case COFFER_ENOACCOUNT:
	case COFFER_ETERMINATED: return EXIT_NOUSER;
	case COFFER_EEXIST: return EXIT_CANTCREAT;
	case COFFER_EIO: return EXIT_IOERR;
	case COFFER_ETEMP:
	case COFFER_ENOSPACE:
	case COFFER_ENOMEM: return EXIT_TEMPFAIL;
	case COFFER_EPERM: return EXIT_NOPERM;
	case COFFER_ECONFIG: return EXIT_CONFIG;
	case COFFER_ESHREDDED: return EXIT_SHREDDED;
	case COFFER_ECORRUPT: return EXIT_DAMAGE;
	}
	return rc < 0 && rc > -4096 ? EXIT_IOERR : EXIT_DAMAGE;
}

void cli_warn_pending(int pending)
{
	if (pending)
		fprintf(stderr, "coffer: warning: %s\n", coffer_errmsg());
}

int cli_fail(int rc)
{
	const char *msg = coffer_errmsg();

	if (coffer_errcode() == rc && msg[0])
		fprintf(stderr, "coffer: %s\n", msg);
	else if (msg[0])
		fprintf(stderr, "coffer: %s (%s)\n", msg, coffer_strerror(rc));
	else
		fprintf(stderr, "coffer: %s\n", coffer_strerror(rc));
	return cli_exit_code(rc);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "coffer %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see coffer %s --help)\n", cmd);
	return EXIT_USAGE;
}

int cli_open_store(struct cli *cli)
{
	int rc;

	if (cli->st)
		return 0;
	rc = coffer_store_open(cli->store_path, cli->key_file, &cli->st);
	return rc < 0 ? cli_fail(rc) : 0;
}

int cli_write_stdout(const struct coffer_buf *b)
{
	int rc;

	if (b->len == 0)
		return 0;
	rc = coffer_io_write_all(STDOUT_FILENO, b->data, b->len);
	return rc < 0 ? cli_fail(rc) : 0;
}

static void json_sep(struct coffer_buf *b, int *first, const char *key)
{
	if (!*first)
		coffer_buf_puts(b, ", ");
	*first = 0;
	coffer_buf_put_json_str(b, key, strlen(key));
	coffer_buf_puts(b, ": ");
}

void json_key_str(struct coffer_buf *b, int *first, const char *key, const char *val)
{
	json_sep(b, first, key);
	if (val)
		coffer_buf_put_json_str(b, val, strlen(val));
	else
		coffer_buf_puts(b, "null");
}

void json_key_u64(struct coffer_buf *b, int *first, const char *key, uint64_t v)
{
	json_sep(b, first, key);
	coffer_buf_printf(b, "%llu", (unsigned long long)v);
}

void json_key_time(struct coffer_buf *b, int *first, const char *key, int64_t ns)
{
	char iso[COFFER_CLOCK_ISO_MAX];

	if (ns == 0) {
		json_key_str(b, first, key, NULL);
		return;
	}
	coffer_clock_format(ns, iso);
	json_key_str(b, first, key, iso);
}

void cli_print_help(const struct cli_cmd *cmd)
{
	printf("usage: coffer [--store DIR] [--key-file FILE] %s %s\n\n%s\n", cmd->name, cmd->usage,
	       cmd->help);
}
