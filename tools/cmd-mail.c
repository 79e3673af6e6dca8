/*
 * cmd-mail.c: `coffer deliver`, `coffer folders`, `coffer ls`, `coffer cat`.
 */
#include "cmds.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/header.h"
#include "engine/io.h"
#include "engine/message.h"
#include "engine/names.h"
#include "maildir/deliver.h"
#include "maildir/name.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- deliver ---- */

struct deliver_opts {
	const char *folder;
	int qmail;
};

enum { OPT_FOLDER = 1000, OPT_QMAIL };

static int deliver_opt(int opt, const char *arg, void *ctx)
{
	struct deliver_opts *o = ctx;

	if (opt == OPT_FOLDER)
		o->folder = arg;
	else if (opt == OPT_QMAIL)
		o->qmail = 1;
	return 0;
}

/* qmail-local's convention: 0 delivered, 100 permanent, 111 temporary. */
static int qmail_code(int code)
{
	if (code == 0)
		return 0;
	return code == EXIT_TEMPFAIL || code == EXIT_IOERR || code == EXIT_SOFTWARE ? 111 : 100;
}

static int run_deliver(struct cli *cli, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{ "folder", 1, OPT_FOLDER },
		{ "qmail", 0, OPT_QMAIL },
		{ NULL, 0, 0 },
	};
	struct deliver_opts o = { NULL, 0 };
	struct coffer_deliver_result res;
	char *pos[1];
	int n, rc, code;

	n = cli_parse(&cmd_deliver, argc, argv, opts, deliver_opt, &o, NULL, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : (o.qmail ? 100 : -n);
	if (n != 1) {
		code = cli_usage_error("deliver", "needs the account NAME");
		return o.qmail ? qmail_code(code) : code;
	}
	rc = coffer_store_open(cli->store_path, cli->key_file, &cli->st);
	if (rc < 0) {
		/* A store that cannot be opened is the host's problem, not the
		 * sender's: ask the MTA to retry rather than bounce. */
		cli_fail(rc);
		return o.qmail ? 111 : EXIT_TEMPFAIL;
	}
	rc = coffer_deliver_flags(cli->st, pos[0], o.folder, STDIN_FILENO, COFFER_DELIVER_SPOOL,
	                          &res);
	code = rc < 0 ? cli_fail(rc) : 0;
	return o.qmail ? qmail_code(code) : code;
}

const struct cli_cmd cmd_deliver = {
	"deliver",
	"NAME [--folder FOLDER] [--qmail]",
	"The local delivery agent: reads one RFC 5322 message on stdin and stores it in\n"
	"FOLDER (default INBOX; created when missing) of account NAME, as new mail.\n"
	"Needs no secret key. The bytes are stored exactly as given.\n"
	"Exit codes (sysexits): 0 delivered and durable, 64 bad usage or invalid\n"
	"folder name, 65 malformed input (empty, not a message, too large), 67 unknown\n"
	"or terminated account, 75 temporary failure (retry later: lock, disk full,\n"
	"store unavailable). With --qmail: 0, 100 permanent, 111 temporary.\n"
	"On a non-zero exit nothing of the message is stored.",
	run_deliver,
};

/* ---- folders ---- */

struct folders_ctx {
	struct coffer_buf out;
	int json;
	int count;
};

static int folder_row(const struct coffer_folder_info *f, void *arg)
{
	struct folders_ctx *c = arg;
	int first = 1;

	if (c->json) {
		coffer_buf_puts(&c->out, c->count ? ",\n  {" : "\n  {");
		json_key_str(&c->out, &first, "name", f->name);
		json_key_u64(&c->out, &first, "uidvalidity", f->uidvalidity);
		json_key_u64(&c->out, &first, "uidnext", f->uidnext);
		json_key_u64(&c->out, &first, "messages", f->messages);
		json_key_u64(&c->out, &first, "unseen", f->unseen);
		json_key_u64(&c->out, &first, "bytes", f->bytes);
		coffer_buf_putc(&c->out, '}');
	} else {
		coffer_buf_printf(&c->out, "%s\n", f->name);
	}
	c->count++;
	return coffer_buf_ok(&c->out);
}

static int run_folders(struct cli *cli, int argc, char **argv)
{
	struct folders_ctx c = { COFFER_BUF_INIT, 0, 0 };
	struct coffer_mailbox *mb = NULL;
	char *pos[1];
	int n, rc;

	n = cli_parse(&cmd_folders, argc, argv, NULL, NULL, NULL, &c.json, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 1)
		return cli_usage_error("folders", "needs the account NAME");
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	rc = coffer_mailbox_open(cli->st, pos[0], strlen(pos[0]), &mb);
	if (rc == 0) {
		if (c.json)
			coffer_buf_putc(&c.out, '[');
		rc = coffer_folder_list(mb, folder_row, &c);
		if (c.json)
			coffer_buf_puts(&c.out, c.count ? "\n]\n" : "]\n");
	}
	coffer_mailbox_close(&mb);
	rc = rc < 0 ? cli_fail(rc) : cli_write_stdout(&c.out);
	coffer_buf_free(&c.out);
	return rc;
}

const struct cli_cmd cmd_folders = {
	"folders",
	"NAME [--json]",
	"Lists the folders of account NAME, INBOX first, hierarchy separated by '/'.\n"
	"With --json: name, uidvalidity, uidnext, messages, unseen, bytes.",
	run_folders,
};

/* ---- ls ---- */

struct ls_ctx {
	struct coffer_mailbox *mb;
	const char *folder;
	struct coffer_buf out;
	unsigned char *head;
	int json;
	int count;
};

/* Reads the start of a message and extracts From and Subject. */
static int summarize(struct ls_ctx *c, const struct coffer_message *m,
                     struct coffer_header_summary *s)
{
	struct coffer_message_reader *r = NULL;
	size_t len = 0, got;
	uint64_t want = m->rec.size < COFFER_HEADER_SCAN ? m->rec.size : COFFER_HEADER_SCAN;
	int rc;

	memset(s, 0, sizeof *s);
	rc = coffer_message_open(c->mb, m->folder_id, c->folder, m->uid, &r);
	while (rc == 0 && len < want) {
		rc = coffer_message_pread(r, c->head + len, want - len, len, &got);
		if (rc == 0 && got == 0)
			break;
		len += got;
	}
	coffer_message_close(&r);
	if (rc == 0)
		rc = coffer_header_summary(c->head, len, s);
	return rc;
}

static int ls_row(const struct coffer_message *m, void *arg)
{
	struct ls_ctx *c = arg;
	struct coffer_header_summary s;
	struct coffer_buf flags = COFFER_BUF_INIT;
	char date[COFFER_CLOCK_ISO_MAX];
	int rc, first = 1;

	rc = summarize(c, m, &s);
	if (rc == COFFER_ENOTFOUND) {
		/* expunged between the listing and now (an IMAP client, the
		 * mount): it is simply no longer there */
		coffer_err_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	coffer_maildir_flags_format(&flags, m->rec.flags);
	coffer_clock_format(m->rec.internal_date, date);
	if (c->json) {
		coffer_buf_puts(&c->out, c->count ? ",\n  {" : "\n  {");
		json_key_u64(&c->out, &first, "uid", m->uid);
		json_key_str(&c->out, &first, "flags", coffer_buf_str(&flags));
		json_key_u64(&c->out, &first, "size", m->rec.size);
		json_key_str(&c->out, &first, "date", date);
		json_key_str(&c->out, &first, "from", s.from ? s.from : "");
		json_key_str(&c->out, &first, "subject", s.subject ? s.subject : "");
		json_key_str(&c->out, &first, "name", m->unique);
		coffer_buf_putc(&c->out, '}');
	} else {
		coffer_buf_printf(&c->out, "%u\t%s\t%llu\t%s\t%s\t%s\t%s\n", m->uid,
		                  coffer_buf_str(&flags), (unsigned long long)m->rec.size, date,
		                  s.from ? s.from : "", s.subject ? s.subject : "", m->unique);
	}
	c->count++;
	coffer_header_summary_free(&s);
	coffer_buf_free(&flags);
	/* stream big listings instead of holding them */
	if (c->out.len > (1u << 20)) {
		rc = coffer_io_write_all(STDOUT_FILENO, c->out.data, c->out.len);
		coffer_buf_reset(&c->out);
		if (rc < 0)
			return rc;
	}
	return coffer_buf_ok(&c->out);
}

static int run_ls(struct cli *cli, int argc, char **argv)
{
	struct ls_ctx c;
	struct coffer_buf canon = COFFER_BUF_INIT;
	char *pos[2];
	uint32_t fid;
	int n, rc;

	memset(&c, 0, sizeof c);
	n = cli_parse(&cmd_ls, argc, argv, NULL, NULL, NULL, &c.json, pos, 2);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n < 1)
		return cli_usage_error("ls", "needs the account NAME");
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	rc = coffer_names_folder(n == 2 ? pos[1] : "INBOX", strlen(n == 2 ? pos[1] : "INBOX"),
	                         &canon);
	if (rc == 0)
		rc = coffer_mailbox_open(cli->st, pos[0], strlen(pos[0]), &c.mb);
	if (rc == 0)
		rc = coffer_folder_find(c.mb, coffer_buf_str(&canon), &fid);
	if (rc == 0) {
		c.folder = coffer_buf_str(&canon);
		c.head = malloc(COFFER_HEADER_SCAN);
		if (c.head == NULL)
			rc = coffer_err_set(COFFER_ENOMEM, "ls: out of memory");
	}
	if (rc == 0) {
		if (c.json)
			coffer_buf_putc(&c.out, '[');
		rc = coffer_message_list(c.mb, fid, ls_row, &c);
		if (c.json)
			coffer_buf_puts(&c.out, c.count ? "\n]\n" : "]\n");
	}
	rc = rc < 0 ? cli_fail(rc) : cli_write_stdout(&c.out);
	free(c.head);
	coffer_mailbox_close(&c.mb);
	coffer_buf_free(&c.out);
	coffer_buf_free(&canon);
	return rc;
}

const struct cli_cmd cmd_ls = {
	"ls",
	"NAME [FOLDER] [--json]",
	"Lists the messages of FOLDER (default INBOX) of account NAME, one row each:\n"
	"uid, flags, size, date (internal date, ISO-8601 UTC), from, subject (RFC 2047\n"
	"decoded) and name (the Maildir base name), tab-separated. With --json, an\n"
	"array of objects with exactly those keys.",
	run_ls,
};

/* ---- cat ---- */

#define CAT_BUF (256u * 1024u)

static int run_cat(struct cli *cli, int argc, char **argv)
{
	struct coffer_mailbox *mb = NULL;
	struct coffer_message_reader *r = NULL;
	struct coffer_buf canon = COFFER_BUF_INIT;
	unsigned char *buf = NULL;
	char *pos[3], *end;
	unsigned long uid;
	uint32_t fid;
	size_t got;
	int n, rc;

	n = cli_parse(&cmd_cat, argc, argv, NULL, NULL, NULL, NULL, pos, 3);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 3)
		return cli_usage_error("cat", "needs NAME FOLDER UID");
	uid = strtoul(pos[2], &end, 10);
	if (*pos[2] == '\0' || *end != '\0' || uid == 0 || uid > UINT32_MAX)
		return cli_usage_error("cat", "UID '%s' is not a number from 1 to 4294967295",
		                       pos[2]);
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	rc = coffer_names_folder(pos[1], strlen(pos[1]), &canon);
	if (rc == 0)
		rc = coffer_mailbox_open(cli->st, pos[0], strlen(pos[0]), &mb);
	if (rc == 0)
		rc = coffer_folder_find(mb, coffer_buf_str(&canon), &fid);
	if (rc == 0)
		rc = coffer_message_open(mb, fid, coffer_buf_str(&canon), (uint32_t)uid, &r);
	if (rc == 0 && (buf = malloc(CAT_BUF)) == NULL)
		rc = coffer_err_set(COFFER_ENOMEM, "cat: out of memory");
	while (rc == 0) {
		rc = coffer_message_read(r, buf, CAT_BUF, &got);
		if (rc < 0 || got == 0)
			break;
		rc = coffer_io_write_all(STDOUT_FILENO, buf, got);
	}
	free(buf);
	coffer_message_close(&r);
	coffer_mailbox_close(&mb);
	coffer_buf_free(&canon);
	return rc < 0 ? cli_fail(rc) : 0;
}

const struct cli_cmd cmd_cat = {
	"cat",
	"NAME FOLDER UID",
	"Writes message UID of FOLDER of account NAME to stdout, byte for byte as\n"
	"delivered. A damaged message is reported with its account, folder and uid\n"
	"(exit 1).",
	run_cat,
};
