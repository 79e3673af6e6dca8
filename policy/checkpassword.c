/*
 * checkpassword.c: the checkpassword protocol (see checkpassword.h).
 *
 * The input is read into secure memory (it holds the password), at most
 * COFFER_CP_INPUT_MAX + 1 bytes: one byte more than allowed tells an
 * oversized input from a full one without reading the rest (a writer of
 * 1 MiB gets EPIPE when we exit; we never buffer it). The buffer is wiped
 * before exec and on every exit path.
 *
 * Exit statuses follow the interface: 1 for anything that is the client's
 * fault (wrong password, unknown or invalid name, terminated account, 2FA
 * rules), 2 for a caller that misuses the program, 111 for our own
 * temporary trouble, so that Dovecot answers "temporary failure" and
 * qmail-popup asks the client to retry rather than blaming the password.
 */
#include "checkpassword.h"

#include "auth.h"

#include "engine/errors.h"
#include "engine/io.h"
#include "engine/names.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int coffer_checkpassword_parse(const void *buf, size_t n, struct coffer_cp_input *in)
{
	const char *p = buf, *nul1, *nul2;

	memset(in, 0, sizeof *in);
	if (n > COFFER_CP_INPUT_MAX)
		return coffer_err_set(COFFER_EINVAL, "checkpassword: more than %d bytes on fd 3",
		                      COFFER_CP_INPUT_MAX);
	nul1 = memchr(p, 0, n);
	if (nul1 == NULL)
		return coffer_err_set(COFFER_EINVAL,
		                      "checkpassword: the user name is not terminated");
	if (nul1 == p)
		return coffer_err_set(COFFER_EINVAL, "checkpassword: the user name is empty");
	nul2 = memchr(nul1 + 1, 0, n - (size_t)(nul1 + 1 - p));
	if (nul2 == NULL)
		return coffer_err_set(COFFER_EINVAL,
		                      "checkpassword: the password is not terminated");
	in->user = p;
	in->user_len = (size_t)(nul1 - p);
	in->password = nul1 + 1;
	in->password_len = (size_t)(nul2 - (nul1 + 1));
	in->rest = nul2 + 1;
	in->rest_len = n - (size_t)(nul2 + 1 - p);
	return 0;
}

/* Reads up to max bytes (stops at EOF). */
static int read_input(int fd, unsigned char *buf, size_t max, size_t *n_r)
{
	size_t n = 0;

	while (n < max) {
		ssize_t r = read(fd, buf + n, max - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*n_r = n;
	return 0;
}

static int expand_home(const char *tmpl, const char *user, struct coffer_buf *out)
{
	const char *at = strchr(user, '@');
	size_t local = at ? (size_t)(at - user) : strlen(user);

	for (const char *p = tmpl; *p; p++) {
		if (p[0] == '%' && p[1] == 'u') {
			coffer_buf_puts(out, user);
			p++;
		} else if (p[0] == '%' && p[1] == 'n') {
			coffer_buf_append(out, user, local);
			p++;
		} else if (p[0] == '%' && p[1] == 'd') {
			coffer_buf_puts(out, at ? at + 1 : "");
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			coffer_buf_putc(out, '%');
			p++;
		} else {
			coffer_buf_putc(out, *p);
		}
	}
	return coffer_buf_ok(out);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "coffer checkpassword: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int coffer_checkpassword_run(const struct coffer_cp_options *opt, char **prog_argv)
{
	struct coffer_store *st = NULL;
	struct coffer_cp_input in;
	struct coffer_login login;
	struct coffer_login_result res;
	struct coffer_buf home = COFFER_BUF_INIT;
	unsigned char *buf = NULL;
	const char *svc, *ip;
	char shown[COFFER_NAMES_SHOW_SIZE];
	size_t n = 0;
	int rc, code = COFFER_CP_EXIT_TEMP;

	if (prog_argv == NULL || prog_argv[0] == NULL) {
		say("no program to run after a successful login");
		return COFFER_CP_EXIT_MISUSE;
	}
	buf = coffer_secure_alloc(COFFER_CP_INPUT_MAX + 2);
	if (buf == NULL) {
		say("cannot allocate secure memory");
		return COFFER_CP_EXIT_TEMP;
	}
	rc = read_input(opt->input_fd, buf, COFFER_CP_INPUT_MAX + 1, &n);
	close(opt->input_fd);
	if (rc < 0) {
		say("cannot read fd %d: %s", opt->input_fd, strerror(-rc));
		code = COFFER_CP_EXIT_MISUSE;
		goto out;
	}
	rc = coffer_checkpassword_parse(buf, n, &in);
	if (rc < 0) {
		say("%s", coffer_errmsg());
		code = COFFER_CP_EXIT_MISUSE;
		goto out;
	}
	if (getenv("CREDENTIALS_LOOKUP") || getenv("MASTER_USER")) {
		say("credential lookups and master-user logins are not supported");
		code = COFFER_CP_EXIT_REFUSED;
		goto out;
	}
	memset(&login, 0, sizeof login);
	login.name = in.user;
	login.name_len = in.user_len;
	login.password = in.password;
	login.password_len = in.password_len;
	svc = getenv("SERVICE");
	if (svc == NULL || !*svc)
		svc = opt->service;
	login.service = coffer_service_parse(svc);
	ip = getenv("TCPREMOTEIP");
	if (ip == NULL || !*ip)
		ip = getenv("TCP6REMOTEIP");
	if (ip && *ip && coffer_ip_parse(ip, &login.ip) < 0)
		memset(&login.ip, 0, sizeof login.ip);
	rc = coffer_store_open(opt->store_path, opt->key_file, &st);
	if (rc < 0) {
		say("%s", coffer_errmsg());
		code = COFFER_CP_EXIT_TEMP;
		goto out;
	}
	rc = coffer_auth_login(st, &login, &res);
	if (rc == COFFER_EPERM || rc == COFFER_ETERMINATED || rc == COFFER_ESHREDDED) {
		if (res.reason == COFFER_REASON_TERMINATED || rc != COFFER_EPERM)
			say("%s", coffer_errmsg());
		else
			say("login refused for %s (%s)",
			    coffer_names_show(in.user, in.user_len, shown),
			    coffer_login_reason_name(res.reason));
		code = COFFER_CP_EXIT_REFUSED;
		goto out;
	}
	if (rc < 0) {
		say("%s", coffer_errmsg());
		code = COFFER_CP_EXIT_TEMP;
		goto out;
	}
	coffer_store_close(&st);
	coffer_wipe(buf, COFFER_CP_INPUT_MAX + 2);
	if (setenv("USER", res.canonical, 1) < 0) {
		code = COFFER_CP_EXIT_TEMP;
		goto out;
	}
	/* Dovecot's userdb-through-checkpassword handshake. */
	if (getenv("AUTHORIZED") && strcmp(getenv("AUTHORIZED"), "1") == 0)
		setenv("AUTHORIZED", "2", 1);
	if (opt->home) {
		if (expand_home(opt->home, res.canonical, &home) < 0 ||
		    setenv("HOME", coffer_buf_str(&home), 1) < 0) {
			code = COFFER_CP_EXIT_TEMP;
			goto out;
		}
		if (chdir(coffer_buf_str(&home)) < 0) {
			say("cannot change to the home directory %s: %s", coffer_buf_str(&home),
			    strerror(errno));
			code = COFFER_CP_EXIT_TEMP;
			goto out;
		}
	}
	coffer_secure_free(buf);
	buf = NULL;
	coffer_buf_free(&home);
	execvp(prog_argv[0], prog_argv);
	say("cannot run %s: %s", prog_argv[0], strerror(errno));
	code = COFFER_CP_EXIT_TEMP;
out:
	coffer_store_close(&st);
	coffer_secure_free(buf);
	coffer_buf_free(&home);
	return code;
}
