/*
 * test-auth.c: passwords (bcrypt through libcrypt, imports of bcrypt and
 * yescrypt hashes), application passwords (limit, revocation, use), the
 * login check and its records, and the hardening rules (no canary in error
 * text, records encrypted at rest).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tap.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/index.h"
#include "engine/store.h"
#include "policy/auth.h"
#include "engine/events.h"

#include <crypt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANARY "Canary-Pw-7d1f3e"
#define ALICE "alice@example.org"

static struct coffer_store *st;

static void no_canary(const char *what)
{
	ok(strstr(coffer_errmsg(), CANARY) == NULL && strstr(coffer_errmsg(), "$2b$") == NULL,
	   "%s: error text holds no password or hash", what);
}

static void hashing(void)
{
	char *h = coffer_secure_alloc(COFFER_AUTH_HASH_MAX + 1);
	struct crypt_data cd;
	char setting[128], hash[256];
	int rc;

	rc = coffer_auth_hash_password(CANARY, strlen(CANARY), h);
	ok(rc == 0 && strncmp(h, "$2b$12$", 7) == 0 && strlen(h) == 60,
	   "new hashes are bcrypt $2b$ cost 12");
	ok(coffer_auth_verify_hash(CANARY, strlen(CANARY), h) == 1, "right password verifies");
	ok(coffer_auth_verify_hash("canary-pw-7d1f3e", 16, h) == 0, "wrong password does not");
	ok(coffer_auth_check_hash(h) == 0, "own hash accepted for import");
	ok(coffer_auth_hash_password("", 0, h) == COFFER_EINVAL, "empty password refused");
	ok(coffer_auth_hash_password("a\0b", 3, h) == COFFER_EINVAL, "NUL in password refused");
	{
		char longpw[80];

		memset(longpw, 'x', sizeof longpw);
		ok(coffer_auth_hash_password(longpw, 73, h) == COFFER_EINVAL, "73 bytes refused");
		ok(coffer_auth_hash_password(longpw, 72, h) == 0, "72 bytes accepted");
	}
	/* yescrypt, as Debian's passwd writes them. */
	memset(&cd, 0, sizeof cd);
	ok(crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof setting) != NULL, "yescrypt salt");
	snprintf(hash, sizeof hash, "%s", crypt_rn(CANARY, setting, &cd, sizeof cd));
	ok(strncmp(hash, "$y$", 3) == 0 && coffer_auth_check_hash(hash) == 0,
	   "yescrypt hash accepted for import");
	ok(coffer_auth_verify_hash(CANARY, strlen(CANARY), hash) == 1, "yescrypt verifies");
	ok(coffer_auth_verify_hash("nope", 4, hash) == 0, "yescrypt rejects a wrong password");
	/* $2y$ (PHP) and $2a$ bcrypt. */
	ok(crypt_gensalt_rn("$2y$", 4, NULL, 0, setting, sizeof setting) != NULL, "$2y$ salt");
	snprintf(hash, sizeof hash, "%s", crypt_rn(CANARY, setting, &cd, sizeof cd));
	ok(coffer_auth_check_hash(hash) == 0 &&
	       coffer_auth_verify_hash(CANARY, strlen(CANARY), hash) == 1,
	   "$2y$ bcrypt imported and verified");
	/* argon2id (libsodium verifies what libcrypt cannot) */
	{
		char a2[crypto_pwhash_argon2id_STRBYTES];

		ok(crypto_pwhash_argon2id_str(a2, CANARY, strlen(CANARY),
		                              crypto_pwhash_argon2id_OPSLIMIT_MIN,
		                              crypto_pwhash_argon2id_MEMLIMIT_MIN) == 0,
		   "an argon2id hash made with libsodium");
		ok(coffer_auth_check_hash(a2) == 0 &&
		       coffer_auth_verify_hash(CANARY, strlen(CANARY), a2) == 1 &&
		       coffer_auth_verify_hash("nope", 4, a2) == 0,
		   "argon2id imported, verifies the right password, rejects a wrong one");
	}
	rc = coffer_auth_check_hash(
	    "$argon2id$v=19$m=4194304,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo");
	ok(rc == COFFER_EINVAL && strstr(coffer_errmsg(), "argon2") != NULL &&
	       strstr(coffer_errmsg(), "c2FsdHNhbHQ") == NULL,
	   "an argon2id hash asking for 4 GiB is refused with a clear message (not repeating it)");
	ok(coffer_auth_check_hash("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo") ==
	       COFFER_EINVAL,
	   "a malformed argon2id hash (short digest) is refused");
	ok(coffer_auth_check_hash("$2b$12$tooshort") == COFFER_EINVAL, "malformed bcrypt refused");
	ok(coffer_auth_check_hash("plaintext") == COFFER_EINVAL, "plain text refused");
	ok(coffer_auth_check_hash("$1$abc$def") == COFFER_EINVAL, "md5-crypt refused");
	ok(coffer_auth_check_hash("$6$salt$hash\n") == COFFER_EINVAL, "sha512-crypt refused");
	coffer_secure_free(h);
}

static int login(const char *name, const char *pw, uint8_t svc, const char *ip,
                 struct coffer_login_result *res)
{
	struct coffer_login l;

	memset(&l, 0, sizeof l);
	l.name = name;
	l.name_len = strlen(name);
	l.password = pw;
	l.password_len = strlen(pw);
	l.service = svc;
	if (ip)
		coffer_ip_parse(ip, &l.ip);
	return coffer_auth_login(st, &l, res);
}

struct apps {
	int n;
	char labels[8][80];
	int64_t last_used[8];
	uint8_t service[8];
	char ip[8][COFFER_IP_TEXT_MAX];
};

static int app_row(const struct coffer_app_info *a, void *arg)
{
	struct apps *x = arg;

	if (x->n < 8) {
		snprintf(x->labels[x->n], sizeof x->labels[0], "%s", a->label);
		x->last_used[x->n] = a->last_used_at;
		x->service[x->n] = a->last_service;
		coffer_ip_format(&a->last_ip, x->ip[x->n]);
	}
	x->n++;
	return 0;
}

struct evs {
	int n;
	int success[16];
	uint8_t reason[16];
	char label[16][80];
};

static int ev_row(const struct coffer_event *ev, void *arg)
{
	struct evs *x = arg;

	if (x->n < 16) {
		x->success[x->n] = ev->success;
		x->reason[x->n] = ev->reason;
		snprintf(x->label[x->n], sizeof x->label[0], "%s", ev->label);
	}
	x->n++;
	return 0;
}

struct raw {
	int found;
	int plain;
};

static int raw_txn(struct coffer_txn *t, void *arg)
{
	struct raw *r = arg;
	unsigned char id[COFFER_ID_BYTES];
	struct coffer_account_rec rec;
	const void *v;
	size_t n;
	int rc;

	rc = coffer_account_lookup_txn(t, st, ALICE, id, &rec);
	if (rc == 0)
		rc = coffer_txn_get(t, COFFER_DB_AUTH, id, sizeof id, &v, &n);
	if (rc == 0) {
		r->found = 1;
		r->plain = memmem(v, n, "$2b$", 4) != NULL || memmem(v, n, "laptop", 6) != NULL;
	}
	return rc;
}

static void accounts(void)
{
	struct coffer_login_result res;
	struct coffer_mailbox *mb = NULL;
	char pw[6][COFFER_AUTH_APP_PASSWORD_LEN + 1], alt[64];
	const char *labels[6] = { "laptop", "phone", "tablet", "desktop", "car", "watch" };
	struct apps apps;
	struct evs evs;
	struct raw raw = { 0, 0 };
	int rc;

	ok(coffer_account_add(st, ALICE, strlen(ALICE), NULL) == 0, "account alice");
	ok(coffer_account_add(st, "bob@example.org", 15, NULL) == 0, "account bob");
	rc = login(ALICE, CANARY, COFFER_SVC_IMAP, "192.0.2.1", &res);
	ok(rc == COFFER_EPERM && res.reason == COFFER_REASON_NO_PASSWORD,
	   "no password set: refused");
	ok(coffer_auth_set_password(st, ALICE, strlen(ALICE), CANARY, strlen(CANARY), NULL) == 0,
	   "password set");
	rc = login(ALICE, CANARY, COFFER_SVC_IMAP, "192.0.2.1", &res);
	ok(rc == 0 && res.method == COFFER_METHOD_PASSWORD && strcmp(res.canonical, ALICE) == 0,
	   "right password accepted");
	rc = login("Alice@Example.ORG", CANARY, COFFER_SVC_POP3, "192.0.2.1", &res);
	ok(rc == 0, "name is case-folded");
	rc = login(ALICE, "Canary-Pw-7d1f3E", COFFER_SVC_IMAP, "192.0.2.1", &res);
	ok(rc == COFFER_EPERM && res.reason == COFFER_REASON_BAD_PASSWORD,
	   "wrong password refused");
	no_canary("wrong password");
	rc = login("nobody@example.org", CANARY, COFFER_SVC_IMAP, "192.0.2.1", &res);
	ok(rc == COFFER_EPERM && !res.recorded, "unknown account refused like a bad password");
	no_canary("unknown account");
	rc = login("not a name", CANARY, COFFER_SVC_IMAP, NULL, &res);
	ok(rc == COFFER_EPERM, "invalid name refused");
	{
		struct coffer_login l;

		memset(&l, 0, sizeof l);
		l.name = "alice\0@example.org";
		l.name_len = 18;
		l.password = CANARY;
		l.password_len = strlen(CANARY);
		ok(coffer_auth_login(st, &l, &res) == COFFER_EPERM, "NUL in the name refused");
	}

	/* Application passwords. */
	for (int i = 0; i < 5; i++) {
		rc = coffer_auth_app_add(st, ALICE, strlen(ALICE), labels[i], pw[i]);
		ok(rc == 0 && strlen(pw[i]) == COFFER_AUTH_APP_PASSWORD_LEN && pw[i][4] == '-',
		   "app password %d (%s) added", i + 1, labels[i]);
	}
	ok(strcmp(pw[0], pw[1]) != 0, "app passwords differ");
	rc = coffer_auth_app_add(st, ALICE, strlen(ALICE), labels[5], pw[5]);
	ok(rc == COFFER_ELIMIT && strstr(coffer_errmsg(), "5") != NULL && pw[5][0] == '\0',
	   "a sixth is refused with a clear message: %s", coffer_errmsg());
	ok(coffer_auth_app_add(st, ALICE, strlen(ALICE), "bad\tlabel", pw[5]) == COFFER_EINVAL,
	   "a label with a tab refused");
	rc = login(ALICE, pw[1], COFFER_SVC_IMAP, "198.51.100.9", &res);
	ok(rc == 0 && res.method == COFFER_METHOD_APP_PASSWORD && !strcmp(res.label, "phone"),
	   "app password 'phone' logs in and is identified");
	/* As typed by a user: upper case, no dashes. */
	{
		size_t k = 0;

		for (const char *p = pw[2]; *p; p++) {
			if (*p != '-')
				alt[k++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		}
		alt[k] = '\0';
	}
	ok(login(ALICE, alt, COFFER_SVC_SMTP, "198.51.100.9", &res) == 0 &&
	       !strcmp(res.label, "tablet"),
	   "app password without dashes, upper case, accepted");
	ok(login("bob@example.org", pw[1], COFFER_SVC_IMAP, NULL, &res) == COFFER_EPERM,
	   "alice's app password does not open bob");
	memset(&apps, 0, sizeof apps);
	ok(coffer_auth_app_list(st, ALICE, strlen(ALICE), 0, app_row, &apps) == 0 && apps.n == 5,
	   "list shows 5");
	ok(!strcmp(apps.labels[1], "phone") && apps.last_used[1] != 0 &&
	       apps.service[1] == COFFER_SVC_IMAP && !strcmp(apps.ip[1], "198.51.100.9") &&
	       apps.last_used[0] == 0,
	   "last used, IP and protocol recorded for 'phone' only");
	ok(coffer_auth_app_revoke(st, ALICE, strlen(ALICE), "phone") == 0, "revoke 'phone'");
	ok(coffer_auth_app_revoke(st, ALICE, strlen(ALICE), "phone") == COFFER_ENOTFOUND,
	   "revoke twice: not found");
	rc = login(ALICE, pw[1], COFFER_SVC_IMAP, "203.0.113.5", &res);
	ok(rc == COFFER_EPERM && res.reason == COFFER_REASON_REVOKED_APP_PASSWORD &&
	       !strcmp(res.label, "phone"),
	   "revoked app password refused, recognised");
	ok(login(ALICE, pw[0], COFFER_SVC_IMAP, NULL, &res) == 0, "the others still work");
	ok(coffer_auth_app_add(st, ALICE, strlen(ALICE), "watch", pw[5]) == 0,
	   "after a revocation a fifth live one can be added");
	ok(coffer_auth_app_add(st, ALICE, strlen(ALICE), "car", pw[5]) == COFFER_EEXIST,
	   "duplicate live label refused");
	memset(&apps, 0, sizeof apps);
	coffer_auth_app_list(st, ALICE, strlen(ALICE), 1, app_row, &apps);
	ok(apps.n == 6, "list with revoked shows 6");

	/* Records: encrypted at rest. */
	coffer_index_view(coffer_store_index(st), raw_txn, &raw);
	ok(raw.found && !raw.plain, "auth record holds no hash or label in the clear");

	/* Events. */
	rc = coffer_mailbox_open(st, ALICE, strlen(ALICE), &mb);
	memset(&evs, 0, sizeof evs);
	ok(rc == 0 && coffer_events_list(mb, 0, 0, ev_row, &evs) == 0, "events listed");
	ok(evs.n == 8, "every attempt on alice recorded (8, got %d)", evs.n);
	ok(evs.success[1] == 0 && evs.reason[1] == COFFER_REASON_REVOKED_APP_PASSWORD &&
	       !strcmp(evs.label[1], "phone"),
	   "the revoked-password attempt recorded with its label");
	coffer_mailbox_close(&mb);

	/* Terminated accounts. */
	ok(coffer_account_terminate(st, ALICE, strlen(ALICE)) == 0, "terminate alice");
	rc = login(ALICE, CANARY, COFFER_SVC_IMAP, "192.0.2.1", &res);
	ok(rc == COFFER_ETERMINATED && res.recorded, "terminated account refused (and recorded)");
	rc = login(ALICE, pw[0], COFFER_SVC_IMAP, "192.0.2.1", &res);
	ok(rc == COFFER_ETERMINATED, "terminated: app password refused too");
	no_canary("terminated");
	ok(coffer_account_reactivate(st, ALICE, strlen(ALICE)) == 0, "reactivate");
	rc = coffer_mailbox_open(st, ALICE, strlen(ALICE), &mb);
	memset(&evs, 0, sizeof evs);
	ok(rc == 0 && coffer_events_list(mb, 0, 2, ev_row, &evs) == 0 && evs.n == 2 &&
	       evs.reason[0] == COFFER_REASON_TERMINATED &&
	       evs.reason[1] == COFFER_REASON_TERMINATED,
	   "sealed events of the terminated attempts readable after reactivation");
	coffer_mailbox_close(&mb);
	ok(login(ALICE, CANARY, COFFER_SVC_IMAP, NULL, &res) == 0, "login works again");
	/* Importing a hash replaces the password. */
	{
		char *h = coffer_secure_alloc(COFFER_AUTH_HASH_MAX + 1);

		coffer_auth_hash_password("second password", 15, h);
		ok(coffer_auth_set_password(st, ALICE, strlen(ALICE), NULL, 0, h) == 0,
		   "hash imported");
		ok(login(ALICE, "second password", COFFER_SVC_IMAP, NULL, &res) == 0 &&
		       login(ALICE, CANARY, COFFER_SVC_IMAP, NULL, &res) == COFFER_EPERM,
		   "imported hash in force");
		coffer_secure_free(h);
	}
	ok(coffer_auth_set_password(st, ALICE, strlen(ALICE), NULL, 0, "$argon2id$v=19$x") ==
	       COFFER_EINVAL,
	   "a malformed argon2 import is refused");
}

struct purge_args {
	unsigned char id[COFFER_ID_BYTES];
	int have;
};

static int purge_txn(struct coffer_txn *t, void *arg)
{
	struct purge_args *a = arg;
	struct coffer_account_rec rec;
	const void *v;
	size_t n;
	int rc;

	rc = coffer_account_lookup_txn(t, st, ALICE, a->id, &rec);
	if (rc == 0)
		rc = coffer_auth_delete_account_txn(t, a->id);
	if (rc == 0)
		rc = coffer_auth_delete_account_txn(t, a->id); /* idempotent */
	if (rc == 0)
		a->have = coffer_txn_get(t, COFFER_DB_AUTH, a->id, sizeof a->id, &v, &n) == 0;
	return rc;
}

int main(void)
{
	struct coffer_buf path = COFFER_BUF_INIT, key = COFFER_BUF_INIT;
	struct purge_args pa = { { 0 }, 1 };

	coffer_crypto_init();
	hashing();
	coffer_buf_printf(&path, "%s/store", tap_tmpdir());
	coffer_buf_printf(&key, "%s/coffer.key", tap_tmpdir());
	if (coffer_store_init(coffer_buf_str(&path), coffer_buf_str(&key), &st) != 0) {
		ok(0, "store: %s", coffer_errmsg());
		return tap_done();
	}
	accounts();
	ok(coffer_index_update(coffer_store_index(st), purge_txn, &pa) == 0 && !pa.have,
	   "purge deletes the credentials");
	coffer_store_close(&st);
	coffer_buf_free(&path);
	coffer_buf_free(&key);
	return tap_done();
}
