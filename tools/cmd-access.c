/*
 * cmd-access.c: `coffer passwd`, `apppass`, `totp`, `auth`, `checkpassword`,
 * `logins`, `security` (docs/access.md).
 *
 * Passwords, codes and hashes come from stdin (or fd 3 for checkpassword),
 * never from argv, except `passwd --hash HASH` as the command-line contract
 * has it (`--hash -` reads the hash from stdin instead, and is what scripts
 * should use). They are read into secure memory and wiped.
 */
#include "cmds.h"

#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "policy/auth.h"
#include "policy/checkpassword.h"
#include "engine/events.h"
#include "policy/security.h"

#include <errno.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define LINE_MAX_ 1024

/* Reads one line (without its newline, and a trailing CR) from fd into
 * secure memory, at most LINE_MAX_ bytes. On a terminal, prompts on stderr
 * with echo off. *line_r is coffer_secure_free()d by the caller. A line
 * that is too long is refused (not truncated). */
static int read_secret_line(int fd, const char *prompt, char **line_r, size_t *n_r)
{
	struct termios old, noecho;
	int tty = isatty(fd), restore = 0, rc = 0;
	char *line = coffer_secure_alloc(LINE_MAX_ + 1);
	size_t n = 0;

	*line_r = NULL;
	if (line == NULL)
		return coffer_err_set(COFFER_ENOMEM, "cannot allocate secure memory");
	if (tty) {
		fprintf(stderr, "%s", prompt);
		fflush(stderr);
		if (tcgetattr(fd, &old) == 0) {
			noecho = old;
			noecho.c_lflag &= ~(tcflag_t)ECHO;
			restore = tcsetattr(fd, TCSAFLUSH, &noecho) == 0;
		}
	}
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = coffer_err_set(COFFER_EIO, "cannot read stdin: %s", strerror(errno));
			break;
		}
		if (r == 0 || c == '\n')
			break;
		if (n == LINE_MAX_) {
			rc = coffer_err_set(COFFER_EINVAL, "input line longer than %d bytes",
			                    LINE_MAX_);
			break;
		}
		line[n++] = c;
	}
	if (restore) {
		tcsetattr(fd, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (rc == 0 && n && line[n - 1] == '\r')
		n--;
	if (rc < 0) {
		coffer_secure_free(line);
		return rc;
	}
	line[n] = '\0';
	*line_r = line;
	*n_r = n;
	return 0;
}

/* ---- passwd ---- */

struct passwd_opts {
	const char *hash;
};

static int passwd_opt(int opt, const char *arg, void *ctx)
{
	((struct passwd_opts *)ctx)->hash = arg;
	return 0;
}

static int run_passwd(struct cli *cli, int argc, char **argv)
{
	static const struct cli_opt opts[] = { { "hash", 1, 'H' }, { NULL, 0, 0 } };
	struct passwd_opts o = { NULL };
	char *pos[1], *pw = NULL, *again = NULL;
	size_t n = 0, n2 = 0;
	int np, rc;

	np = cli_parse(&cmd_passwd, argc, argv, opts, passwd_opt, &o, NULL, pos, 1);
	if (np < 0)
		return np == -1 ? 0 : -np;
	if (np != 1)
		return cli_usage_error("passwd", "needs the account NAME");
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	if (o.hash && strcmp(o.hash, "-") != 0) {
		rc = coffer_auth_set_password(cli->st, pos[0], strlen(pos[0]), NULL, 0, o.hash);
		return rc < 0 ? cli_fail(rc) : 0;
	}
	rc = read_secret_line(STDIN_FILENO, o.hash ? "Hash: " : "New password: ", &pw, &n);
	if (rc == 0 && !o.hash && isatty(STDIN_FILENO)) {
		rc = read_secret_line(STDIN_FILENO, "Again: ", &again, &n2);
		if (rc == 0 && (n != n2 || !coffer_ct_equal(pw, again, n)))
			rc = coffer_err_set(COFFER_EINVAL, "the passwords do not match");
	}
	if (rc == 0 && o.hash)
		rc = coffer_auth_set_password(cli->st, pos[0], strlen(pos[0]), NULL, 0, pw);
	else if (rc == 0)
		rc = coffer_auth_set_password(cli->st, pos[0], strlen(pos[0]), pw, n, NULL);
	coffer_secure_free(pw);
	coffer_secure_free(again);
	return rc < 0 ? cli_fail(rc) : 0;
}

const struct cli_cmd cmd_passwd = {
	"passwd",
	"NAME [--hash HASH|-]",
	"Sets the password of account NAME: read from stdin (one line), or asked twice\n"
	"without echo on a terminal. Stored as bcrypt ($2b$, cost 12); at most 72 bytes.\n"
	"--hash imports an existing bcrypt ($2a$/$2b$/$2y$) or yescrypt ($y$) hash, for\n"
	"migration; '--hash -' reads it from stdin and keeps it out of the process list.\n"
	"Needs the key file.",
	run_passwd,
};

/* ---- apppass ---- */

struct apps_ctx {
	struct coffer_buf out;
	int json, count;
};

static int app_row(const struct coffer_app_info *a, void *arg)
{
	struct apps_ctx *c = arg;
	char ip[COFFER_IP_TEXT_MAX], created[COFFER_CLOCK_ISO_MAX], used[COFFER_CLOCK_ISO_MAX];
	int first = 1;

	coffer_ip_format(&a->last_ip, ip);
	if (c->json) {
		coffer_buf_puts(&c->out, c->count ? ",\n  {" : "\n  {");
		json_key_str(&c->out, &first, "label", a->label);
		json_key_time(&c->out, &first, "created", a->created_at);
		json_key_time(&c->out, &first, "last_used", a->last_used_at);
		json_key_str(&c->out, &first, "last_ip", ip[0] ? ip : NULL);
		json_key_str(&c->out, &first, "last_protocol",
		             a->last_used_at ? coffer_service_name(a->last_service) : NULL);
		coffer_buf_putc(&c->out, '}');
	} else {
		coffer_clock_format(a->created_at, created);
		if (a->last_used_at)
			coffer_clock_format(a->last_used_at, used);
		else
			strcpy(used, "never");
		coffer_buf_printf(&c->out, "%s\t%s\t%s\t%s\t%s\n", a->label, created, used,
		                  ip[0] ? ip : "-",
		                  a->last_used_at ? coffer_service_name(a->last_service) : "-");
	}
	c->count++;
	return coffer_buf_ok(&c->out);
}

static int run_apppass(struct cli *cli, int argc, char **argv)
{
	struct apps_ctx c = { COFFER_BUF_INIT, 0, 0 };
	char *pos[3], *pw = NULL;
	int n, rc;

	n = cli_parse(&cmd_apppass, argc, argv, NULL, NULL, NULL, &c.json, pos, 3);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n < 2)
		return cli_usage_error("apppass", "needs add|list|revoke and the account NAME");
	if (!strcmp(pos[0], "list")) {
		if (n != 2)
			return cli_usage_error("apppass", "list takes NAME only");
		if ((rc = cli_open_store(cli)) != 0)
			return rc;
		if (c.json)
			coffer_buf_putc(&c.out, '[');
		rc = coffer_auth_app_list(cli->st, pos[1], strlen(pos[1]), 0, app_row, &c);
		if (c.json)
			coffer_buf_puts(&c.out, c.count ? "\n]\n" : "]\n");
		rc = rc < 0 ? cli_fail(rc) : cli_write_stdout(&c.out);
		coffer_buf_free(&c.out);
		return rc;
	}
	if (strcmp(pos[0], "add") && strcmp(pos[0], "revoke"))
		return cli_usage_error("apppass", "unknown action '%s' (add, list, revoke)",
		                       pos[0]);
	if (n != 3)
		return cli_usage_error("apppass", "%s needs NAME and LABEL", pos[0]);
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	if (!strcmp(pos[0], "revoke")) {
		rc = coffer_auth_app_revoke(cli->st, pos[1], strlen(pos[1]), pos[2]);
		return rc < 0 ? cli_fail(rc) : 0;
	}
	pw = coffer_secure_alloc(COFFER_AUTH_APP_PASSWORD_LEN + 1);
	if (pw == NULL)
		return cli_fail(coffer_err_set(COFFER_ENOMEM, "cannot allocate secure memory"));
	rc = coffer_auth_app_add(cli->st, pos[1], strlen(pos[1]), pos[2], pw);
	if (rc == 0) {
		printf("%s\n", pw);
		if (isatty(STDOUT_FILENO))
			fprintf(stderr,
			        "This is the only time the password is shown. Use it in place of "
			        "the account password in the mail client labelled '%s'.\n",
			        pos[2]);
	}
	coffer_secure_free(pw);
	return rc < 0 ? cli_fail(rc) : 0;
}

const struct cli_cmd cmd_apppass = {
	"apppass",
	"add NAME LABEL | list NAME [--json] | revoke NAME LABEL",
	"Application passwords of account NAME: separate passwords for mail clients, so\n"
	"a leak can be traced to one client and revoked alone. At most 5 per account.\n"
	"add prints a new one (24 random characters, in groups of 4) once; only a keyed\n"
	"hash is kept. list shows label, created, last used, last IP and protocol\n"
	"(--json: label, created, last_used, last_ip, last_protocol). revoke makes it\n"
	"stop working at once; later attempts with it are reported by `coffer security`.",
	run_apppass,
};

/* ---- totp ---- */

/* A QR code in Unicode half blocks, two modules per character row, with a
 * quiet zone; dark modules drawn as background so it scans on dark and light
 * terminals alike. */
static void print_qr(const char *text)
{
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	int w, q = 2;

	if (qr == NULL)
		return;
	w = qr->width;
	for (int y = -q; y < w + q; y += 2) {
		for (int x = -q; x < w + q; x++) {
			int top = y >= 0 && y < w && x >= 0 && x < w && (qr->data[y * w + x] & 1);
			int bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w &&
			          (qr->data[(y + 1) * w + x] & 1);

			fputs(!top && !bot ? "\u2588"
			      : top && bot ? " "
			      : top        ? "\u2584"
			                   : "\u2580",
			      stdout);
		}
		fputc('\n', stdout);
	}
	QRcode_free(qr);
}

static int run_totp(struct cli *cli, int argc, char **argv)
{
	struct coffer_buf uri = COFFER_BUF_INIT;
	char *pos[2];
	int n, rc;

	n = cli_parse(&cmd_totp, argc, argv, NULL, NULL, NULL, NULL, pos, 2);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 2 || (strcmp(pos[0], "enable") && strcmp(pos[0], "disable")))
		return cli_usage_error("totp", "needs enable|disable and the account NAME");
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	if (!strcmp(pos[0], "disable")) {
		rc = coffer_auth_totp_disable(cli->st, pos[1], strlen(pos[1]));
		return rc < 0 ? cli_fail(rc) : 0;
	}
	rc = coffer_auth_totp_enable(cli->st, pos[1], strlen(pos[1]), &uri);
	if (rc == 0) {
		printf("%s\n", coffer_buf_str(&uri));
		if (isatty(STDOUT_FILENO))
			print_qr(coffer_buf_str(&uri));
	}
	if (uri.data)
		coffer_wipe(uri.data, uri.cap);
	coffer_buf_free(&uri);
	return rc < 0 ? cli_fail(rc) : 0;
}

const struct cli_cmd cmd_totp = {
	"totp",
	"enable NAME | disable NAME",
	"Two-factor authentication (TOTP, RFC 6238: SHA-1, 30 s, 6 digits) for account\n"
	"NAME. enable makes a secret, stores it encrypted with the account's keys and\n"
	"prints the otpauth:// URI (and a QR code on a terminal) once. With 2FA on, the\n"
	"control panel (`coffer auth`) needs password and code, and IMAP, POP3 and SMTP\n"
	"accept application passwords only.",
	run_totp,
};

/* ---- auth ---- */

struct auth_opts {
	const char *service;
	const char *ip;
};

static int auth_opt(int opt, const char *arg, void *ctx)
{
	struct auth_opts *o = ctx;

	if (opt == 'S')
		o->service = arg;
	else
		o->ip = arg;
	return 0;
}

static int run_auth(struct cli *cli, int argc, char **argv)
{
	static const struct cli_opt opts[] = { { "service", 1, 'S' },
		                               { "ip", 1, 'I' },
		                               { NULL, 0, 0 } };
	struct auth_opts o = { "panel", NULL };
	struct coffer_auth_status status;
	struct coffer_login login;
	struct coffer_login_result res;
	char *pos[1], *pw = NULL, *code = NULL;
	size_t n = 0, cn = 0;
	int np, rc;

	np = cli_parse(&cmd_auth, argc, argv, opts, auth_opt, &o, NULL, pos, 1);
	if (np < 0)
		return np == -1 ? 0 : -np;
	if (np != 1)
		return cli_usage_error("auth", "needs the account NAME");
	memset(&login, 0, sizeof login);
	login.service = coffer_service_parse(o.service);
	if (login.service == COFFER_SVC_UNKNOWN)
		return cli_usage_error("auth", "unknown service '%s' (imap, pop3, smtp, panel)",
		                       o.service);
	if (o.ip && coffer_ip_parse(o.ip, &login.ip) < 0)
		return cli_usage_error("auth", "'%s' is not an IP address", o.ip);
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	rc = read_secret_line(STDIN_FILENO, "Password: ", &pw, &n);
	/* Ask for a code only when the account has 2FA on (an unknown account
	 * reads none, and is refused the same way as a bad password). */
	if (rc == 0 && coffer_auth_status(cli->st, pos[0], strlen(pos[0]), &status) == 0 &&
	    status.totp_enabled && login.service == COFFER_SVC_PANEL)
		rc = read_secret_line(STDIN_FILENO, "Code: ", &code, &cn);
	coffer_err_clear();
	if (rc == 0) {
		login.name = pos[0];
		login.name_len = strlen(pos[0]);
		login.password = pw;
		login.password_len = n;
		login.totp = code;
		rc = coffer_auth_login(cli->st, &login, &res);
	}
	coffer_secure_free(pw);
	coffer_secure_free(code);
	return rc < 0 ? cli_fail(rc) : 0;
}

const struct cli_cmd cmd_auth = {
	"auth",
	"NAME [--service panel|imap|pop3|smtp] [--ip IP]",
	"The login check for a control panel or webmail: reads the password (one line)\n"
	"on stdin, then, when two-factor authentication is on, the 6-digit code (a\n"
	"second line). Exits 0 when the login is accepted, 77 when refused (wrong\n"
	"password or code, replayed code, unknown account), 67 for a terminated\n"
	"account, 79 for a shredded one. The attempt is recorded with --ip (the\n"
	"client's address as the panel saw it) and --service (default panel).",
	run_auth,
};

/* ---- checkpassword ---- */

static int run_checkpassword(struct cli *cli, int argc, char **argv)
{
	struct coffer_cp_options o = { cli->store_path, cli->key_file, NULL, NULL, 3 };
	int i = 1;

	/* Options only before PROG: everything from PROG on is its argv. */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--help")) {
			cli_print_help(&cmd_checkpassword);
			return 0;
		} else if (!strcmp(argv[i], "--service") && i + 1 < argc) {
			o.service = argv[++i];
		} else if (!strcmp(argv[i], "--home") && i + 1 < argc) {
			o.home = argv[++i];
		} else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else {
			fprintf(stderr, "coffer checkpassword: unknown option %s\n", argv[i]);
			return COFFER_CP_EXIT_MISUSE;
		}
	}
	return coffer_checkpassword_run(&o, argv + i);
}

const struct cli_cmd cmd_checkpassword = {
	"checkpassword",
	"[--service S] [--home DIR] PROG [ARGS...]",
	"The checkpassword interface, for Dovecot (passdb { driver = checkpassword })\n"
	"and qmail-popup: reads \"user\\0password\\0...\" (at most 512 bytes) from fd 3,\n"
	"checks it (main password, or any live application password; only application\n"
	"passwords when 2FA is on), records the attempt with $SERVICE (else --service)\n"
	"and $TCPREMOTEIP, and on success sets $USER (and $HOME from --home, where %u is\n"
	"the account, %n its local part, %d its domain) and runs PROG ARGS.\n"
	"Exit codes: 1 refused, 2 misuse (malformed input on fd 3, no PROG), 111\n"
	"temporary failure.",
	run_checkpassword,
};

/* ---- logins ---- */

struct logins_opts {
	size_t limit;
	int64_t since;
	int deliveries;
	int bad;
};

static int logins_opt(int opt, const char *arg, void *ctx)
{
	struct logins_opts *o = ctx;
	char *end;

	if (opt == 'L') {
		unsigned long long v = strtoull(arg, &end, 10);

		if (*arg == '\0' || *end != '\0' || v == 0 || v > 1000000)
			return cli_usage_error("logins",
			                       "--limit takes a number from 1 to 1000000");
		o->limit = (size_t)v;
	} else if (opt == 'S') {
		if (coffer_clock_parse(arg, &o->since) < 0)
			return cli_usage_error("logins", "--since: '%s' is not a date or time",
			                       arg);
	} else {
		o->deliveries = 1;
	}
	return 0;
}

struct logins_ctx {
	struct coffer_buf out;
	int json, count;
};

static int login_row(const struct coffer_event *ev, void *arg)
{
	struct logins_ctx *c = arg;
	char t[COFFER_CLOCK_ISO_MAX], ip[COFFER_IP_TEXT_MAX];
	int first = 1;

	coffer_clock_format(ev->at, t);
	coffer_ip_format(&ev->ip, ip);
	if (c->json) {
		coffer_buf_puts(&c->out, c->count ? ",\n  {" : "\n  {");
		json_key_str(&c->out, &first, "time", t);
		if (ev->type == COFFER_EVENT_DELIVERY) {
			json_key_str(&c->out, &first, "event", "delivery");
			json_key_u64(&c->out, &first, "size", ev->size);
			json_key_str(&c->out, &first, "folder", ev->folder);
		} else {
			json_key_str(&c->out, &first, "event", "login");
			json_key_str(&c->out, &first, "result",
			             ev->success ? "success" : "failure");
			json_key_str(&c->out, &first, "service", coffer_service_name(ev->service));
			json_key_str(&c->out, &first, "ip", ip[0] ? ip : NULL);
			json_key_str(&c->out, &first, "method",
			             coffer_login_method_name(ev->method));
			json_key_str(&c->out, &first, "app_password",
			             ev->label[0] ? ev->label : NULL);
			json_key_str(&c->out, &first, "reason",
			             ev->success ? NULL : coffer_login_reason_name(ev->reason));
		}
		coffer_buf_putc(&c->out, '}');
	} else if (ev->type == COFFER_EVENT_DELIVERY) {
		coffer_buf_printf(&c->out, "%s\tdelivery\t%llu bytes\t%s\n", t,
		                  (unsigned long long)ev->size, ev->folder);
	} else {
		coffer_buf_printf(&c->out, "%s\t%s\t%s\t%s\t%s%s%s\t%s\n", t,
		                  ev->success ? "success" : "failure",
		                  coffer_service_name(ev->service), ip[0] ? ip : "-",
		                  coffer_login_method_name(ev->method), ev->label[0] ? ":" : "",
		                  ev->label,
		                  ev->success ? "-" : coffer_login_reason_name(ev->reason));
	}
	c->count++;
	return coffer_buf_ok(&c->out);
}

static int run_logins(struct cli *cli, int argc, char **argv)
{
	static const struct cli_opt opts[] = { { "limit", 1, 'L' },
		                               { "since", 1, 'S' },
		                               { "deliveries", 0, 'D' },
		                               { NULL, 0, 0 } };
	struct logins_opts o = { 0, 0, 0, 0 };
	struct logins_ctx c = { COFFER_BUF_INIT, 0, 0 };
	struct coffer_mailbox *mb = NULL;
	char *pos[1];
	int n, rc;

	n = cli_parse(&cmd_logins, argc, argv, opts, logins_opt, &o, &c.json, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 1)
		return cli_usage_error("logins", "needs the account NAME");
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	rc = coffer_mailbox_open(cli->st, pos[0], strlen(pos[0]), &mb);
	if (rc == 0) {
		if (c.json)
			coffer_buf_putc(&c.out, '[');
		rc = coffer_events_list_type(mb, o.deliveries ? 0 : COFFER_EVENT_LOGIN, o.since,
		                             o.limit, login_row, &c);
		if (c.json)
			coffer_buf_puts(&c.out, c.count ? "\n]\n" : "]\n");
	}
	coffer_mailbox_close(&mb);
	rc = rc < 0 ? cli_fail(rc) : cli_write_stdout(&c.out);
	coffer_buf_free(&c.out);
	return rc;
}

const struct cli_cmd cmd_logins = {
	"logins",
	"NAME [--json] [--limit N] [--since WHEN] [--deliveries]",
	"Last Logins of account NAME, newest first: time, result, service, IP, method\n"
	"(password, app-password:LABEL, password+totp) and, for failures, the reason.\n"
	"--since takes a date or time (ISO-8601, UTC), --limit a count. --deliveries\n"
	"adds delivery events (time, size, folder). With --json: an array of objects\n"
	"with time, event, result, service, ip, method, app_password, reason (logins)\n"
	"or time, event, size, folder (deliveries). Kept 180 days.",
	run_logins,
};

/* ---- security ---- */

static int security_opt(int opt, const char *arg, void *ctx)
{
	*(int *)ctx = 1;
	return 0;
}

static int run_security(struct cli *cli, int argc, char **argv)
{
	static const struct cli_opt opts[] = { { "all", 0, 'A' }, { NULL, 0, 0 } };
	struct coffer_security_report r;
	struct coffer_buf out = COFFER_BUF_INIT;
	char *pos[1], ip[COFFER_IP_TEXT_MAX], t1[COFFER_CLOCK_ISO_MAX], t2[COFFER_CLOCK_ISO_MAX];
	int all = 0, json, n, rc;
	int64_t now;

	n = cli_parse(&cmd_security, argc, argv, opts, security_opt, &all, &json, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if ((n == 1) == all)
		return cli_usage_error("security", "needs the account NAME, or --all");
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	rc = coffer_clock_now(&now);
	if (rc < 0)
		return cli_fail(rc);
	memset(&r, 0, sizeof r);
	rc = coffer_security_check(cli->st, all ? NULL : pos[0], all ? 0 : strlen(pos[0]), now, &r);
	if (rc < 0) {
		coffer_security_report_free(&r);
		return cli_fail(rc);
	}
	if (json)
		coffer_buf_putc(&out, '[');
	for (size_t i = 0; i < r.n; i++) {
		const struct coffer_finding *f = &r.v[i];
		int first = 1;

		coffer_ip_format(&f->ip, ip);
		coffer_clock_format(f->first_at, t1);
		coffer_clock_format(f->last_at, t2);
		if (json) {
			coffer_buf_puts(&out, i ? ",\n  {" : "\n  {");
			json_key_str(&out, &first, "kind", coffer_finding_kind_name(f->kind));
			json_key_str(&out, &first, "account", f->account);
			json_key_str(&out, &first, "first", t1);
			json_key_str(&out, &first, "last", t2);
			json_key_u64(&out, &first, "count", f->count);
			if (f->kind == COFFER_FINDING_MANY_ACCOUNTS_ONE_IP)
				json_key_u64(&out, &first, "accounts", f->accounts);
			json_key_str(&out, &first, "ip", ip[0] ? ip : NULL);
			json_key_str(&out, &first, "service",
			             f->service ? coffer_service_name(f->service) : NULL);
			json_key_str(&out, &first, "app_password", f->label[0] ? f->label : NULL);
			json_key_str(&out, &first, "evidence", f->evidence);
			coffer_buf_putc(&out, '}');
		} else {
			coffer_buf_printf(&out, "%s\t%s\t%s\t%s\t%s\n", t2,
			                  coffer_finding_kind_name(f->kind), f->account,
			                  ip[0] ? ip : "-", f->evidence);
		}
	}
	if (json)
		coffer_buf_puts(&out, r.n ? "\n]\n" : "]\n");
	else if (r.n == 0)
		coffer_buf_printf(&out,
		                  "no possibly undesired access in the last %d days "
		                  "(%llu accounts, %llu events checked)\n",
		                  COFFER_SECURITY_LOOKBACK_DAYS,
		                  (unsigned long long)r.accounts_checked,
		                  (unsigned long long)r.events_checked);
	coffer_security_report_free(&r);
	rc = coffer_buf_ok(&out) < 0 ? cli_fail(COFFER_ENOMEM) : cli_write_stdout(&out);
	coffer_buf_free(&out);
	return rc;
}

const struct cli_cmd cmd_security = {
	"security",
	"NAME [--json] | --all [--json]",
	"Possibly undesired access to account NAME in the last 180 days, newest first,\n"
	"each with its evidence: failure-burst (5 or more failures, each within 10\n"
	"minutes of the last), new-network (a successful login from a /24 or /48 not\n"
	"used in the 180 days before), revoked-app-password (a revoked application\n"
	"password tried), many-accounts-one-ip (one IP failing on 3 or more accounts\n"
	"within an hour). --all is the operator's view over every active account.\n"
	"Text: last time, kind, account, IP, evidence (tab-separated). --json: objects\n"
	"with kind, account, first, last, count, [accounts], ip, service, app_password,\n"
	"evidence. Needs the key file.",
	run_security,
};
