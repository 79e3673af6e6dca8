/*
 * checkpassword.h: the checkpassword interface (qmail's, as extended by
 * Dovecot's passdb checkpassword driver), on top of auth.h.
 *
 * Protocol (https://cr.yp.to/checkpwd/interface.html): the caller writes up
 * to 512 bytes to descriptor 3: "user\0password\0" followed, for qmail, by
 * "timestamp\0" (Dovecot sends nothing more). On success the program sets
 * $USER (and $HOME when configured), and execs PROG ARGS. Exit status:
 * 1 the credentials are unacceptable, 2 misuse (fd 3 missing, malformed or
 * oversized input, no PROG), 111 a temporary failure (store or key file
 * unavailable, disk full).
 *
 * Dovecot passes SERVICE (imap, pop3, smtp...), TCPREMOTEIP and TCPLOCALIP;
 * tcpserver passes TCPREMOTEIP (TCP6REMOTEIP for ucspi-tcp6). Dovecot's
 * CREDENTIALS_LOOKUP (non-plaintext mechanisms) and MASTER_USER logins are
 * refused: Coffer keeps no plaintext-equivalent credentials and has no
 * master users.
 */
#ifndef COFFER_POLICY_CHECKPASSWORD_H
#define COFFER_POLICY_CHECKPASSWORD_H

#include <stddef.h>
#include <stdint.h>

#define COFFER_CP_INPUT_MAX 512
#define COFFER_CP_EXIT_REFUSED 1
#define COFFER_CP_EXIT_MISUSE 2
#define COFFER_CP_EXIT_TEMP 111

/* The fields of the fd-3 input; pointers into the parsed buffer. */
struct coffer_cp_input {
	const char *user;
	size_t user_len;
	const char *password;
	size_t password_len;
	const char *rest; /* whatever follows (qmail: the timestamp), unused */
	size_t rest_len;
};

/* Parses n bytes of fd-3 input (untrusted). COFFER_EINVAL if n exceeds
 * COFFER_CP_INPUT_MAX, the user or password field is unterminated, or the
 * user is empty. */
int coffer_checkpassword_parse(const void *buf, size_t n, struct coffer_cp_input *in_r);

struct coffer_cp_options {
	const char *store_path;
	const char *key_file; /* NULL: the store's */
	const char *service;  /* used when $SERVICE is not set; NULL: unknown */
	const char *home;     /* $HOME template: %u name, %n local part, %d domain; NULL: keep */
	int input_fd;         /* 3 */
};

/*
 * Runs the whole protocol: reads and parses the input from opt->input_fd,
 * checks the login (recording it), and on success execs prog_argv[0] with
 * prog_argv. Returns an exit status (1, 2, 111) only when it does not exec.
 * Messages go to stderr; none contains the password.
 */
int coffer_checkpassword_run(const struct coffer_cp_options *opt, char **prog_argv);

#endif
