/*
 * auth.h: an account's credentials and the login check: the main password
 * (bcrypt through libcrypt), up to five application passwords, and TOTP
 * (RFC 6238) as a second factor for the control panel.
 *
 * Storage: one record per account in the `auth` sub-database, keyed by the
 * account id, whose value is an account box (secretbox under the account's
 * data key, AD "coffer-auth-v1" || id). Hashes, labels and the TOTP secret
 * therefore exist only encrypted: reading or changing credentials needs the
 * key file. docs/access.md describes the record and the reasons for it.
 *
 *   - main password: a crypt(3) hash; new ones are "$2b$12$..." (bcrypt,
 *     cost COFFER_AUTH_BCRYPT_COST). Imported bcrypt ($2a$, $2b$, $2y$) and
 *     yescrypt ($y$) hashes verify through libcrypt. argon2id ("$argon2id$")
 *     is recognised but this libcrypt (libxcrypt 4.4) cannot verify it: such
 *     a hash is refused at import with a message saying so.
 *   - application passwords: 24 random characters from a 32-letter alphabet
 *     (120 bits), shown as six groups of four. Stored as keyed BLAKE2b-256
 *     under the account's data key, not bcrypt: they are random, so a slow
 *     hash buys nothing, and checking one login against five bcrypt hashes
 *     would cost five bcrypt runs. Revoked ones are kept (hash, label,
 *     revocation time; at most COFFER_AUTH_REVOKED_KEPT) so that their use is
 *     recognised and reported.
 *   - TOTP: a 20-byte secret, SHA-1, 30 s steps, 6 digits; codes of the
 *     previous, current and next step are accepted, each step only once (the
 *     last accepted step is remembered, and only later steps are accepted).
 *
 * Every login attempt on an existing account is recorded in its metadata log
 * (events.h), in the same transaction that updates the credentials' "last
 * used" fields and the TOTP step.
 *
 * Secrets (passwords, hashes, the TOTP secret, the decrypted record) live in
 * coffer_secure_alloc memory and are wiped; comparisons use coffer_ct_equal.
 * No error detail contains a password, hash or secret.
 */
#ifndef COFFER_POLICY_AUTH_H
#define COFFER_POLICY_AUTH_H

#include "engine/events.h"

#include "engine/store.h"

#include <stddef.h>
#include <stdint.h>

#define COFFER_AUTH_BCRYPT_COST 12
#define COFFER_AUTH_APP_MAX 5       /* live application passwords */
#define COFFER_AUTH_REVOKED_KEPT 16 /* revoked ones remembered */
#define COFFER_AUTH_PASSWORD_MAX 72 /* bcrypt's limit; longer is refused */
#define COFFER_AUTH_HASH_MAX 255
#define COFFER_AUTH_LABEL_MAX COFFER_EVENT_LABEL_MAX
#define COFFER_AUTH_APP_PASSWORD_LEN 29 /* "xxxx-xxxx-xxxx-xxxx-xxxx-xxxx" */
#define COFFER_TOTP_SECRET_BYTES 20
#define COFFER_TOTP_STEP 30
#define COFFER_TOTP_DIGITS 6

/* ---- passwords (crypt(3)) ---- */

/* A new "$2b$12$..." hash of pw (n bytes, 1..COFFER_AUTH_PASSWORD_MAX, no
 * NUL) into out, a secure buffer of COFFER_AUTH_HASH_MAX + 1 bytes. */
int coffer_auth_hash_password(const char *pw, size_t n, char *out);
/* 1 if pw matches hash, 0 if not, < 0 on an unusable hash. Constant-time
 * comparison of the result. */
int coffer_auth_verify_hash(const char *pw, size_t n, const char *hash);
/* 0 if hash is a crypt(3) hash this build verifies and accepts for import
 * (bcrypt, yescrypt); COFFER_EINVAL otherwise, with a detail that does not
 * repeat the hash. */
int coffer_auth_check_hash(const char *hash);

/* ---- TOTP (RFC 6238) ---- */

/* The code for counter `step` (= unix time / 30) with HMAC-SHA-1, `digits`
 * (6..8) digits. */
int coffer_totp_code(const unsigned char *secret, size_t n, uint64_t step, int digits,
                     uint32_t *code_r);
/* Base32 (RFC 4648, no padding) of n bytes into out (appended). */
int coffer_base32(struct coffer_buf *out, const unsigned char *p, size_t n);

/* ---- account credentials ---- */

/* Sets the main password (pw) or, with hash != NULL (pw NULL), imports a
 * hash. Needs the key file. */
int coffer_auth_set_password(struct coffer_store *st, const char *name, size_t nlen, const char *pw,
                             size_t pwlen, const char *hash);

/* Adds an application password with label (1..64 printable ASCII, unique
 * among live ones). Writes the password, NUL-terminated, into pw_out, a
 * secure buffer of COFFER_AUTH_APP_PASSWORD_LEN + 1 bytes: the only time it
 * exists in the clear. COFFER_ELIMIT for a sixth. */
int coffer_auth_app_add(struct coffer_store *st, const char *name, size_t nlen, const char *label,
                        char *pw_out);
/* Revokes the live application password label. COFFER_ENOTFOUND if none. */
int coffer_auth_app_revoke(struct coffer_store *st, const char *name, size_t nlen,
                           const char *label);

struct coffer_app_info {
	const char *label;
	int64_t created_at;
	int64_t last_used_at; /* 0: never */
	struct coffer_ip last_ip;
	uint8_t last_service;
	int64_t revoked_at; /* 0: live */
};
typedef int (*coffer_app_fn)(const struct coffer_app_info *app, void *arg);
/* Calls fn for each application password (live ones; with revoked, also the
 * remembered revoked ones), oldest first. */
int coffer_auth_app_list(struct coffer_store *st, const char *name, size_t nlen, int revoked,
                         coffer_app_fn fn, void *arg);

/* Enables TOTP with a fresh secret; appends the otpauth:// URI to uri (the
 * secret is in it: the caller shows it once and wipes the buffer).
 * COFFER_EEXIST if already enabled. */
int coffer_auth_totp_enable(struct coffer_store *st, const char *name, size_t nlen,
                            struct coffer_buf *uri);
int coffer_auth_totp_disable(struct coffer_store *st, const char *name, size_t nlen);

struct coffer_auth_status {
	int has_password;
	int totp_enabled;
	unsigned app_live;
	unsigned app_revoked;
};
int coffer_auth_status(struct coffer_store *st, const char *name, size_t nlen,
                       struct coffer_auth_status *status_r);

/* ---- the login check ---- */

struct coffer_login {
	const char *name; /* as given (untrusted) */
	size_t name_len;
	const char *password; /* untrusted, password_len bytes */
	size_t password_len;
	const char *totp; /* the code, or NULL when the caller has none */
	uint8_t service;  /* enum coffer_service */
	struct coffer_ip ip;
};

struct coffer_login_result {
	uint8_t method;                        /* enum coffer_login_method, on success */
	uint8_t reason;                        /* enum coffer_login_reason, on refusal */
	int recorded;                          /* an event was written */
	char canonical[256];                   /* the canonical account name, on success */
	char label[COFFER_AUTH_LABEL_MAX + 1]; /* the app password used, if one */
};

/*
 * Checks a login and records it. Returns:
 *   0                    accepted (result->method says how);
 *   COFFER_EPERM         refused: bad credentials, unknown or invalid
 *                        name, revoked application password, 2FA rules
 *                        (result->reason says which; the detail is generic);
 *   COFFER_ETERMINATED, COFFER_ESHREDDED  the account may not log in;
 *   anything else        a temporary failure (store, key file, disk).
 * Rules: an application password is accepted for every service; the main
 * password is accepted for imap/pop3/smtp only while TOTP is off; with TOTP
 * on, the panel needs the main password and a fresh TOTP code. Unknown
 * accounts cost one bcrypt run like known ones (no timing oracle).
 */
int coffer_auth_login(struct coffer_store *st, const struct coffer_login *login,
                      struct coffer_login_result *result_r);

/* Purge: deletes the account's credentials in the caller's transaction. */
int coffer_auth_delete_account_txn(struct coffer_txn *t, const unsigned char *acct);

#endif
