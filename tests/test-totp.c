/*
 * test-totp.c: TOTP (RFC 6238) and base32: the RFC's SHA-1 test vectors,
 * then the login rules through a store: codes one window off accepted,
 * older ones refused, a code not accepted twice.
 */
#include "tap.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/store.h"
#include "policy/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vectors(void)
{
	/* RFC 6238 appendix B, SHA-1, seed "12345678901234567890". */
	static const struct {
		uint64_t t;
		uint32_t code8;
	} v[] = {
		{ 59, 94287082 },         { 1111111109, 7081804 },  { 1111111111, 14050471 },
		{ 1234567890, 89005924 }, { 2000000000, 69279037 }, { 20000000000ULL, 65353130 },
	};
	const unsigned char *seed = (const unsigned char *)"12345678901234567890";
	uint32_t code;

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		int rc = coffer_totp_code(seed, 20, v[i].t / 30, 8, &code);

		ok(rc == 0 && code == v[i].code8, "RFC 6238 T=%llu: 8 digits %08u",
		   (unsigned long long)v[i].t, code);
		rc = coffer_totp_code(seed, 20, v[i].t / 30, 6, &code);
		ok(rc == 0 && code == v[i].code8 % 1000000, "RFC 6238 T=%llu: 6 digits %06u",
		   (unsigned long long)v[i].t, code);
	}
	ok(coffer_totp_code(seed, 20, 1, 5, &code) == COFFER_EINVAL, "5 digits refused");
}

static void base32(void)
{
	/* RFC 4648 section 10, without padding. */
	static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const out[] = { "",        "MY",       "MZXQ",      "MZXW6",
		                           "MZXW6YQ", "MZXW6YTB", "MZXW6YTBOI" };

	for (int i = 0; i < 7; i++) {
		struct coffer_buf b = COFFER_BUF_INIT;

		coffer_base32(&b, (const unsigned char *)in[i], strlen(in[i]));
		ok(strcmp(coffer_buf_str(&b), out[i]) == 0, "base32 '%s' = '%s'", in[i],
		   coffer_buf_str(&b));
		coffer_buf_free(&b);
	}
}

/* Decodes the secret from an otpauth URI. */
static size_t secret_from_uri(const char *uri, unsigned char *out)
{
	const char *p = strstr(uri, "secret="), *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	if (p == NULL)
		return 0;
	for (p += 7; *p && *p != '&'; p++) {
		const char *q = strchr(a, *p);

		if (q == NULL)
			return 0;
		acc = (acc << 5) | (uint32_t)(q - a);
		bits += 5;
		if (bits >= 8) {
			out[n++] = (unsigned char)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	return n;
}

static int64_t base_t = 1800000000; /* a multiple of 30 */

static void set_now(int64_t secs)
{
	char s[32];

	snprintf(s, sizeof s, "%lld", (long long)secs);
	setenv("COFFER_NOW", s, 1);
}

static int login(struct coffer_store *st, const char *pw, const char *code, uint8_t svc,
                 struct coffer_login_result *res)
{
	struct coffer_login l;

	memset(&l, 0, sizeof l);
	l.name = "alice@example.org";
	l.name_len = strlen(l.name);
	l.password = pw;
	l.password_len = strlen(pw);
	l.totp = code;
	l.service = svc;
	coffer_ip_parse("192.0.2.7", &l.ip);
	return coffer_auth_login(st, &l, res);
}

static void flows(void)
{
	struct coffer_store *st = NULL;
	struct coffer_buf path = COFFER_BUF_INIT, key = COFFER_BUF_INIT, uri = COFFER_BUF_INIT;
	struct coffer_login_result res;
	unsigned char secret[32];
	char code[16], app[COFFER_AUTH_APP_PASSWORD_LEN + 1];
	uint32_t c;
	size_t sn;
	int rc;

	coffer_buf_printf(&path, "%s/store", tap_tmpdir());
	coffer_buf_printf(&key, "%s/coffer.key", tap_tmpdir());
	set_now(base_t);
	rc = coffer_store_init(coffer_buf_str(&path), coffer_buf_str(&key), &st);
	ok(rc == 0, "store created");
	if (rc)
		return;
	ok(coffer_account_add(st, "alice@example.org", 17, NULL) == 0, "account added");
	ok(coffer_auth_set_password(st, "alice@example.org", 17, "correct horse", 13, NULL) == 0,
	   "password set");
	ok(coffer_auth_totp_enable(st, "alice@example.org", 17, &uri) == 0, "totp enabled");
	ok(strncmp(coffer_buf_str(&uri), "otpauth://totp/Coffer:alice%40example.org?secret=", 49) ==
	           0 &&
	       strstr(coffer_buf_str(&uri), "algorithm=SHA1&digits=6&period=30") != NULL,
	   "otpauth URI has the label, SHA1, 6 digits, 30 s (secret not printed)");
	sn = secret_from_uri(coffer_buf_str(&uri), secret);
	ok(sn == COFFER_TOTP_SECRET_BYTES, "secret of 20 bytes in the URI");
	coffer_wipe(uri.data, uri.len);
	coffer_buf_reset(&uri);
	ok(coffer_auth_totp_enable(st, "alice@example.org", 17, &uri) == COFFER_EEXIST,
	   "enabling twice refused");

	/* Current step. */
	set_now(base_t + 5);
	coffer_totp_code(secret, sn, (uint64_t)base_t / 30, 6, &c);
	snprintf(code, sizeof code, "%06u", c);
	ok(login(st, "correct horse", code, COFFER_SVC_PANEL, &res) == 0 &&
	       res.method == COFFER_METHOD_PASSWORD_TOTP,
	   "panel: password + current code accepted");
	ok(login(st, "correct horse", code, COFFER_SVC_PANEL, &res) == COFFER_EPERM &&
	       res.reason == COFFER_REASON_TOTP_REPLAY,
	   "the same code is not accepted twice");
	/* The next window (clock of the phone ahead by 30 s). */
	coffer_totp_code(secret, sn, (uint64_t)base_t / 30 + 1, 6, &c);
	snprintf(code, sizeof code, "%06u", c);
	ok(login(st, "correct horse", code, COFFER_SVC_PANEL, &res) == 0,
	   "a code one window ahead accepted");
	/* The previous window, now older than the last accepted step. */
	set_now(base_t + 65);
	coffer_totp_code(secret, sn, (uint64_t)base_t / 30 + 1, 6, &c);
	snprintf(code, sizeof code, "%06u", c);
	ok(login(st, "correct horse", code, COFFER_SVC_PANEL, &res) == COFFER_EPERM &&
	       res.reason == COFFER_REASON_TOTP_REPLAY,
	   "a used code one window behind refused");
	/* now = base + 65 s is step base/30 + 2; its next window is + 3. */
	coffer_totp_code(secret, sn, (uint64_t)base_t / 30 + 3, 6, &c);
	snprintf(code, sizeof code, "%06u", c);
	ok(login(st, "correct horse", code, COFFER_SVC_PANEL, &res) == 0,
	   "a fresh code one window ahead accepted");
	set_now(base_t + 200);
	coffer_totp_code(secret, sn, (uint64_t)(base_t + 200) / 30 - 2, 6, &c);
	snprintf(code, sizeof code, "%06u", c);
	ok(login(st, "correct horse", code, COFFER_SVC_PANEL, &res) == COFFER_EPERM &&
	       res.reason == COFFER_REASON_BAD_TOTP,
	   "a code two windows old refused");
	coffer_totp_code(secret, sn, (uint64_t)(base_t + 200) / 30 - 1, 6, &c);
	snprintf(code, sizeof code, "%06u", c);
	ok(login(st, "correct horse", code, COFFER_SVC_PANEL, &res) == 0,
	   "an unused code one window behind accepted");
	coffer_totp_code(secret, sn, (uint64_t)(base_t + 200) / 30, 6, &c);
	snprintf(code, sizeof code, "%06u", c);
	ok(login(st, "wrong horse", code, COFFER_SVC_PANEL, &res) == COFFER_EPERM &&
	       res.reason == COFFER_REASON_BAD_PASSWORD,
	   "right code, wrong password refused");
	ok(login(st, "correct horse", NULL, COFFER_SVC_PANEL, &res) == COFFER_EPERM &&
	       res.reason == COFFER_REASON_MISSING_TOTP,
	   "no code refused");
	ok(login(st, "correct horse", "12345", COFFER_SVC_PANEL, &res) == COFFER_EPERM &&
	       res.reason == COFFER_REASON_BAD_TOTP,
	   "malformed code refused");
	ok(login(st, "correct horse", NULL, COFFER_SVC_IMAP, &res) == COFFER_EPERM &&
	       res.reason == COFFER_REASON_TWO_FACTOR_REQUIRED,
	   "with 2FA on, the main password is refused for IMAP");
	ok(coffer_auth_app_add(st, "alice@example.org", 17, "phone", app) == 0, "app password");
	ok(login(st, app, NULL, COFFER_SVC_IMAP, &res) == 0 &&
	       res.method == COFFER_METHOD_APP_PASSWORD && strcmp(res.label, "phone") == 0,
	   "with 2FA on, an application password works for IMAP");
	ok(coffer_auth_totp_disable(st, "alice@example.org", 17) == 0, "totp disabled");
	ok(login(st, "correct horse", NULL, COFFER_SVC_IMAP, &res) == 0,
	   "with 2FA off, the main password works for IMAP again");
	ok(coffer_auth_totp_disable(st, "alice@example.org", 17) == COFFER_EINVAL,
	   "disabling twice refused");
	coffer_wipe(secret, sizeof secret);
	coffer_store_close(&st);
	coffer_buf_free(&path);
	coffer_buf_free(&key);
	coffer_buf_free(&uri);
}

int main(void)
{
	coffer_crypto_init();
	vectors();
	base32();
	flows();
	return tap_done();
}
