/*
 * auth.c: passwords, application passwords, TOTP and the login check (see
 * auth.h). This file is Coffer's adapter for libcrypt (crypt_rn,
 * crypt_gensalt_rn) and for OpenSSL's HMAC (TOTP).
 *
 * Sections: crypt(3); TOTP and base32; the auth record (encoding, reading
 * and writing it in a transaction); credential changes; the login check.
 *
 * The auth record (value of `auth`[account id], inside a secretbox):
 *   u8 version (1)
 *   u8 hash length, hash (ASCII crypt string; length 0: no password)
 *   u64 password set at
 *   u8 totp on, 20 bytes totp secret, u64 last accepted step, u64 enabled at
 *   u8 count, then per application password:
 *     u8 state (1 live, 2 revoked), u8 label length, label,
 *     32 bytes keyed hash, u64 created, u64 last used, u64 revoked at,
 *     u8 last service, u8 last ip length (0/4/16), ip
 * The decoded record lives in secure memory (struct auth_rec); the plaintext
 * encodings pass through coffer_bufs that are wiped before they are freed.
 *
 * Concurrency: every change reads, modifies and writes the record in one
 * write transaction, so two concurrent logins cannot both accept the same
 * TOTP step, and "last used" updates are never lost. The slow part of a
 * login (bcrypt) runs outside any transaction, on a snapshot of the record;
 * the decision that depends on mutable state (the TOTP step) is re-checked
 * inside the write transaction.
 */
#include "auth.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/names.h"

#include <crypt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_VERSION 1
#define APP_SLOTS (COFFER_AUTH_APP_MAX + COFFER_AUTH_REVOKED_KEPT)
#define APP_HASH_BYTES 32
#define APP_RANDOM_CHARS 24
#define APP_LIVE 1
#define APP_REVOKED 2

static const char app_alphabet[] = "abcdefghijkmnpqrstuvwxyz23456789"; /* 32, no l/o/0/1 */
static const char auth_ad_label[] = "coffer-auth-v1";
/* A bcrypt setting used to spend the same time on unknown accounts. */
static const char dummy_setting[] = "$2b$12$Q29mZmVyRHVtbXlTYWx0Lu";

/* ---- crypt(3) ---- */

static int is_supported_prefix(const char *h)
{
	return !strncmp(h, "$2a$", 4) || !strncmp(h, "$2b$", 4) || !strncmp(h, "$2y$", 4) ||
	       !strncmp(h, "$y$", 3);
}

/* crypt_rn into secure memory; returns the result copied into out (secure,
 * COFFER_AUTH_HASH_MAX + 1) or an error. */
static int crypt_secure(const char *pw, size_t n, const char *setting, char *out)
{
	struct crypt_data *cd = NULL;
	char *phrase = NULL, *r;
	int rc = 0;

	cd = coffer_secure_alloc(sizeof *cd);
	phrase = coffer_secure_alloc(n + 1);
	if (cd == NULL || phrase == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "auth: cannot allocate secure memory");
		goto out;
	}
	memset(cd, 0, sizeof *cd);
	memcpy(phrase, pw, n);
	phrase[n] = '\0';
	r = crypt_rn(phrase, setting, cd, (int)sizeof *cd);
	if (r == NULL || r[0] == '*' || strlen(r) > COFFER_AUTH_HASH_MAX) {
		rc = coffer_err_set(COFFER_EINVAL, "auth: the stored password hash is not usable");
		goto out;
	}
	strcpy(out, r);
out:
	coffer_secure_free(phrase);
	coffer_secure_free(cd);
	return rc;
}

static int check_password_text(const char *pw, size_t n)
{
	if (n == 0)
		return coffer_err_set(COFFER_EINVAL, "auth: the password is empty");
	if (n > COFFER_AUTH_PASSWORD_MAX)
		return coffer_err_set(COFFER_EINVAL,
		                      "auth: the password is longer than %d bytes (bcrypt's limit)",
		                      COFFER_AUTH_PASSWORD_MAX);
	if (memchr(pw, 0, n))
		return coffer_err_set(COFFER_EINVAL, "auth: the password contains a NUL byte");
	return 0;
}

int coffer_auth_hash_password(const char *pw, size_t n, char *out)
{
	char setting[64];
	unsigned char salt[16];
	int rc;

	rc = check_password_text(pw, n);
	if (rc < 0)
		return rc;
	coffer_random(salt, sizeof salt);
	if (crypt_gensalt_rn("$2b$", COFFER_AUTH_BCRYPT_COST, (const char *)salt, sizeof salt,
	                     setting, sizeof setting) == NULL)
		return coffer_err_set(COFFER_EIO, "auth: libcrypt cannot make a bcrypt salt");
	return crypt_secure(pw, n, setting, out);
}

int coffer_auth_check_hash(const char *hash)
{
	size_t n = strlen(hash);
	char *out;
	int rc;

	if (!strncmp(hash, "$argon2", 7))
		return n > COFFER_AUTH_HASH_MAX
		           ? coffer_err_set(COFFER_EINVAL, "auth: hash too long")
		           : coffer_crypto_argon2_check(hash);
	if (n == 0 || n > COFFER_AUTH_HASH_MAX || !is_supported_prefix(hash))
		return coffer_err_set(COFFER_EINVAL,
		                      "auth: not a bcrypt ($2b$) or yescrypt ($y$) hash");
	for (size_t i = 0; i < n; i++) {
		if (hash[i] <= ' ' || hash[i] > '~')
			return coffer_err_set(COFFER_EINVAL,
			                      "auth: the hash has invalid characters");
	}
	out = coffer_secure_alloc(COFFER_AUTH_HASH_MAX + 1);
	if (out == NULL)
		return coffer_err_set(COFFER_ENOMEM, "auth: cannot allocate secure memory");
	rc = crypt_secure("x", 1, hash, out);
	/* A well-formed hash used as a setting yields a hash of the same shape. */
	if (rc == 0 && strlen(out) != n)
		rc = coffer_err_set(COFFER_EINVAL, "auth: the hash is malformed");
	else if (rc < 0)
		rc = coffer_err_set(COFFER_EINVAL, "auth: the hash is malformed");
	coffer_secure_free(out);
	return rc;
}

int coffer_auth_verify_hash(const char *pw, size_t n, const char *hash)
{
	char *out;
	size_t hl = strlen(hash);
	int rc, match;

	/* argon2: libcrypt cannot, libsodium can */
	if (!strncmp(hash, "$argon2", 7))
		return coffer_crypto_argon2_verify(hash, pw, n);
	out = coffer_secure_alloc(COFFER_AUTH_HASH_MAX + 1);
	if (out == NULL)
		return coffer_err_set(COFFER_ENOMEM, "auth: cannot allocate secure memory");
	rc = crypt_secure(pw, n, hash, out);
	if (rc == 0) {
		match = strlen(out) == hl && coffer_ct_equal(out, hash, hl);
		rc = match ? 1 : 0;
	}
	coffer_secure_free(out);
	return rc;
}

/* Spends one bcrypt run (unknown account, no password set). */
static void dummy_verify(const char *pw, size_t n)
{
	char *out = coffer_secure_alloc(COFFER_AUTH_HASH_MAX + 1);

	if (out) {
		crypt_secure(pw, n > COFFER_AUTH_PASSWORD_MAX ? COFFER_AUTH_PASSWORD_MAX : n,
		             dummy_setting, out);
		coffer_secure_free(out);
	}
	coffer_err_clear();
}

/* ---- TOTP and base32 ---- */

int coffer_totp_code(const unsigned char *secret, size_t n, uint64_t step, int digits,
                     uint32_t *code_r)
{
	unsigned char msg[8], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint32_t bin, mod = 1;
	unsigned off;

	if (digits < 6 || digits > 8 || n == 0 || n > 64)
		return coffer_err_set(COFFER_EINVAL, "totp: bad parameters");
	coffer_put_u64be(msg, step);
	if (HMAC(EVP_sha1(), secret, (int)n, msg, sizeof msg, md, &mdlen) == NULL || mdlen != 20)
		return coffer_err_set(COFFER_EIO, "totp: HMAC-SHA-1 failed");
	off = md[19] & 0x0f;
	bin = ((uint32_t)(md[off] & 0x7f) << 24) | ((uint32_t)md[off + 1] << 16) |
	      ((uint32_t)md[off + 2] << 8) | md[off + 3];
	for (int i = 0; i < digits; i++)
		mod *= 10;
	*code_r = bin % mod;
	coffer_wipe(md, sizeof md);
	return 0;
}

int coffer_base32(struct coffer_buf *out, const unsigned char *p, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 5) {
			coffer_buf_putc(out, a[(acc >> (bits - 5)) & 31]);
			bits -= 5;
		}
	}
	if (bits > 0)
		coffer_buf_putc(out, a[(acc << (5 - bits)) & 31]);
	return coffer_buf_ok(out);
}

/* ---- the auth record ---- */

struct app_slot {
	uint8_t state; /* 0 empty, APP_LIVE, APP_REVOKED */
	char label[COFFER_AUTH_LABEL_MAX + 1];
	unsigned char hash[APP_HASH_BYTES];
	int64_t created_at, last_used_at, revoked_at;
	uint8_t last_service;
	struct coffer_ip last_ip;
};

struct auth_rec {
	char pw_hash[COFFER_AUTH_HASH_MAX + 1];
	int64_t pw_set_at;
	uint8_t totp_on;
	unsigned char totp_secret[COFFER_TOTP_SECRET_BYTES];
	uint64_t totp_last_step;
	int64_t totp_enabled_at;
	unsigned napp;
	struct app_slot app[APP_SLOTS];
};

static void buf_wipe_free(struct coffer_buf *b)
{
	if (b->data)
		coffer_wipe(b->data, b->cap);
	coffer_buf_free(b);
}

static void auth_ad(unsigned char *ad, const unsigned char *acct)
{
	memcpy(ad, auth_ad_label, sizeof auth_ad_label - 1);
	memcpy(ad + sizeof auth_ad_label - 1, acct, COFFER_ID_BYTES);
}
#define AUTH_AD_LEN (sizeof auth_ad_label - 1 + COFFER_ID_BYTES)

static int rec_encode(const struct auth_rec *r, struct coffer_buf *out)
{
	size_t hl = strlen(r->pw_hash);

	coffer_buf_put_u8(out, AUTH_VERSION);
	coffer_buf_put_u8(out, (uint8_t)hl);
	coffer_buf_append(out, r->pw_hash, hl);
	coffer_buf_put_u64le(out, (uint64_t)r->pw_set_at);
	coffer_buf_put_u8(out, r->totp_on);
	coffer_buf_append(out, r->totp_secret, sizeof r->totp_secret);
	coffer_buf_put_u64le(out, r->totp_last_step);
	coffer_buf_put_u64le(out, (uint64_t)r->totp_enabled_at);
	coffer_buf_put_u8(out, (uint8_t)r->napp);
	for (unsigned i = 0; i < r->napp; i++) {
		const struct app_slot *a = &r->app[i];
		size_t ll = strlen(a->label);

		coffer_buf_put_u8(out, a->state);
		coffer_buf_put_u8(out, (uint8_t)ll);
		coffer_buf_append(out, a->label, ll);
		coffer_buf_append(out, a->hash, sizeof a->hash);
		coffer_buf_put_u64le(out, (uint64_t)a->created_at);
		coffer_buf_put_u64le(out, (uint64_t)a->last_used_at);
		coffer_buf_put_u64le(out, (uint64_t)a->revoked_at);
		coffer_buf_put_u8(out, a->last_service);
		coffer_buf_put_u8(out, a->last_ip.len);
		coffer_buf_append(out, a->last_ip.addr, a->last_ip.len);
	}
	return coffer_buf_ok(out);
}

static int rec_decode(const void *p, size_t n, struct auth_rec *r)
{
	struct coffer_rd rd;
	uint8_t version, hl, napp, ll;
	uint64_t v = 0;

	memset(r, 0, sizeof *r);
	coffer_rd_init(&rd, p, n);
	coffer_rd_u8(&rd, &version);
	coffer_rd_u8(&rd, &hl);
	if (rd.failed || version != AUTH_VERSION)
		goto corrupt;
	coffer_rd_copy(&rd, r->pw_hash, hl);
	r->pw_hash[hl] = '\0';
	coffer_rd_u64le(&rd, &v);
	r->pw_set_at = (int64_t)v;
	coffer_rd_u8(&rd, &r->totp_on);
	coffer_rd_copy(&rd, r->totp_secret, sizeof r->totp_secret);
	coffer_rd_u64le(&rd, &r->totp_last_step);
	coffer_rd_u64le(&rd, &v);
	r->totp_enabled_at = (int64_t)v;
	coffer_rd_u8(&rd, &napp);
	if (rd.failed || napp > APP_SLOTS || strlen(r->pw_hash) != hl)
		goto corrupt;
	r->napp = napp;
	for (unsigned i = 0; i < napp; i++) {
		struct app_slot *a = &r->app[i];

		coffer_rd_u8(&rd, &a->state);
		coffer_rd_u8(&rd, &ll);
		if (rd.failed || ll > COFFER_AUTH_LABEL_MAX ||
		    (a->state != APP_LIVE && a->state != APP_REVOKED))
			goto corrupt;
		coffer_rd_copy(&rd, a->label, ll);
		a->label[ll] = '\0';
		coffer_rd_copy(&rd, a->hash, sizeof a->hash);
		coffer_rd_u64le(&rd, &v);
		a->created_at = (int64_t)v;
		coffer_rd_u64le(&rd, &v);
		a->last_used_at = (int64_t)v;
		coffer_rd_u64le(&rd, &v);
		a->revoked_at = (int64_t)v;
		coffer_rd_u8(&rd, &a->last_service);
		coffer_rd_u8(&rd, &a->last_ip.len);
		if (rd.failed ||
		    (a->last_ip.len != 0 && a->last_ip.len != 4 && a->last_ip.len != 16))
			goto corrupt;
		coffer_rd_copy(&rd, a->last_ip.addr, a->last_ip.len);
		if (strlen(a->label) != ll)
			goto corrupt;
	}
	if (rd.failed || rd.left != 0)
		goto corrupt;
	return 0;
corrupt:
	return coffer_err_set(COFFER_ECORRUPT, "auth: damaged credentials record");
}

/* Reads the account's record into r (an empty record if it has none). */
static int rec_read_txn(struct coffer_txn *t, const unsigned char *acct,
                        const struct coffer_acct_secret *secret, struct auth_rec *r)
{
	struct coffer_buf plain = COFFER_BUF_INIT;
	unsigned char ad[AUTH_AD_LEN];
	const void *v;
	size_t n;
	int rc;

	memset(r, 0, sizeof *r);
	rc = coffer_txn_get(t, COFFER_DB_AUTH, acct, COFFER_ID_BYTES, &v, &n);
	if (rc == COFFER_ENOTFOUND) {
		coffer_err_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	auth_ad(ad, acct);
	rc = coffer_box_open(&plain, v, n, ad, sizeof ad, secret);
	if (rc < 0)
		rc = coffer_err_set(COFFER_ECORRUPT, "auth: the credentials record cannot be "
		                                     "decrypted");
	else
		rc = rec_decode(plain.data, plain.len, r);
	buf_wipe_free(&plain);
	return rc;
}

static int rec_write_txn(struct coffer_txn *t, const unsigned char *acct,
                         const struct coffer_acct_secret *secret, const struct auth_rec *r)
{
	struct coffer_buf plain = COFFER_BUF_INIT, box = COFFER_BUF_INIT;
	unsigned char ad[AUTH_AD_LEN];
	int rc;

	auth_ad(ad, acct);
	rc = rec_encode(r, &plain);
	if (rc == 0)
		rc = coffer_box_sym(&box, plain.data, plain.len, ad, sizeof ad, secret);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_AUTH, acct, COFFER_ID_BYTES, box.data, box.len, 0);
	buf_wipe_free(&plain);
	coffer_buf_free(&box);
	return rc;
}

int coffer_auth_delete_account_txn(struct coffer_txn *t, const unsigned char *acct)
{
	int rc = coffer_txn_del(t, COFFER_DB_AUTH, acct, COFFER_ID_BYTES);

	if (rc == COFFER_ENOTFOUND) {
		coffer_err_clear();
		rc = 0;
	}
	return rc;
}

/* ---- credential changes: read, modify, write in one transaction ---- */

typedef int (*modify_fn)(struct auth_rec *r, int64_t now, void *arg);

struct modify_args {
	struct coffer_mailbox *mb;
	struct auth_rec *rec; /* secure scratch */
	int64_t now;
	modify_fn fn;
	void *arg;
	int write;
};

static int modify_txn(struct coffer_txn *t, void *arg)
{
	struct modify_args *a = arg;
	const unsigned char *acct = coffer_mailbox_id(a->mb);
	const struct coffer_acct_secret *secret = coffer_mailbox_secret(a->mb);
	int rc;

	rc = rec_read_txn(t, acct, secret, a->rec);
	if (rc == 0)
		rc = a->fn(a->rec, a->now, a->arg);
	if (rc == 0 && a->write)
		rc = rec_write_txn(t, acct, secret, a->rec);
	return rc;
}

static int with_record(struct coffer_store *st, const char *name, size_t nlen, int write,
                       modify_fn fn, void *arg)
{
	struct modify_args a;
	int rc;

	memset(&a, 0, sizeof a);
	a.fn = fn;
	a.arg = arg;
	a.write = write;
	rc = coffer_clock_now(&a.now);
	if (rc < 0)
		return rc;
	rc = coffer_mailbox_open(st, name, nlen, &a.mb);
	if (rc < 0)
		return rc;
	a.rec = coffer_secure_alloc(sizeof *a.rec);
	if (a.rec == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "auth: cannot allocate secure memory");
		goto out;
	}
	if (write)
		rc = coffer_index_update(coffer_store_index(st), modify_txn, &a);
	else
		rc = coffer_index_view(coffer_store_index(st), modify_txn, &a);
	if (rc < 0)
		coffer_err_prefix(rc, "account %s: ", coffer_mailbox_name(a.mb));
out:
	coffer_secure_free(a.rec);
	coffer_mailbox_close(&a.mb);
	return rc;
}

struct set_pw_args {
	const char *hash; /* secure */
};

static int set_pw(struct auth_rec *r, int64_t now, void *arg)
{
	struct set_pw_args *a = arg;

	strcpy(r->pw_hash, a->hash);
	r->pw_set_at = now;
	return 0;
}

int coffer_auth_set_password(struct coffer_store *st, const char *name, size_t nlen, const char *pw,
                             size_t pwlen, const char *hash)
{
	struct set_pw_args a;
	char *h;
	int rc;

	h = coffer_secure_alloc(COFFER_AUTH_HASH_MAX + 1);
	if (h == NULL)
		return coffer_err_set(COFFER_ENOMEM, "auth: cannot allocate secure memory");
	if (hash) {
		rc = coffer_auth_check_hash(hash);
		if (rc == 0)
			strcpy(h, hash);
	} else {
		rc = coffer_auth_hash_password(pw, pwlen, h);
	}
	if (rc == 0) {
		a.hash = h;
		rc = with_record(st, name, nlen, 1, set_pw, &a);
	}
	coffer_secure_free(h);
	return rc;
}

static int label_ok(const char *label)
{
	size_t n = strlen(label);

	if (n == 0 || n > COFFER_AUTH_LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)label[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr(" ._+@-", c)))
			return 0;
	}
	return label[0] != ' ' && label[n - 1] != ' ';
}

/* Normalises an application password as typed (drops '-' and spaces, folds
 * case) into norm[APP_RANDOM_CHARS]; 1 if it has the shape of one. */
static int app_normalise(const char *pw, size_t n, char *norm)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		char c = pw[i];

		if (c == '-' || c == ' ')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (k == APP_RANDOM_CHARS || c == '\0' || strchr(app_alphabet, c) == NULL)
			return 0;
		norm[k++] = c;
	}
	return k == APP_RANDOM_CHARS;
}

static int app_hash(const struct coffer_acct_secret *secret, const char *norm, unsigned char *out)
{
	return coffer_crypto_hash_keyed(out, APP_HASH_BYTES, secret->data_key, "coffer-app-v1", 13,
	                                norm, APP_RANDOM_CHARS);
}

struct app_add_args {
	const char *label;
	const struct coffer_acct_secret *secret;
	char *norm; /* secure, APP_RANDOM_CHARS */
};

static void drop_oldest_revoked(struct auth_rec *r)
{
	unsigned oldest = r->napp;

	for (unsigned i = 0; i < r->napp; i++) {
		if (r->app[i].state == APP_REVOKED &&
		    (oldest == r->napp || r->app[i].revoked_at < r->app[oldest].revoked_at))
			oldest = i;
	}
	if (oldest == r->napp)
		return;
	memmove(&r->app[oldest], &r->app[oldest + 1], (r->napp - oldest - 1) * sizeof r->app[0]);
	r->napp--;
	coffer_wipe(&r->app[r->napp], sizeof r->app[0]);
}

static int app_add(struct auth_rec *r, int64_t now, void *arg)
{
	struct app_add_args *a = arg;
	struct app_slot *s;
	unsigned live = 0;

	for (unsigned i = 0; i < r->napp; i++) {
		if (r->app[i].state != APP_LIVE)
			continue;
		live++;
		if (strcmp(r->app[i].label, a->label) == 0)
			return coffer_err_set(COFFER_EEXIST,
			                      "an application password labelled '%s' "
			                      "exists; revoke it first",
			                      a->label);
	}
	if (live >= COFFER_AUTH_APP_MAX)
		return coffer_err_set(COFFER_ELIMIT,
		                      "already %d application passwords (the most "
		                      "allowed); revoke one first",
		                      COFFER_AUTH_APP_MAX);
	if (r->napp == APP_SLOTS)
		drop_oldest_revoked(r);
	s = &r->app[r->napp++];
	memset(s, 0, sizeof *s);
	s->state = APP_LIVE;
	strcpy(s->label, a->label);
	s->created_at = now;
	return app_hash(a->secret, a->norm, s->hash);
}

int coffer_auth_app_add(struct coffer_store *st, const char *name, size_t nlen, const char *label,
                        char *pw_out)
{
	struct coffer_mailbox *mb = NULL;
	struct app_add_args a;
	unsigned char rnd[APP_RANDOM_CHARS];
	char *norm;
	size_t k = 0;
	int rc;

	pw_out[0] = '\0';
	if (!label_ok(label))
		return coffer_err_set(COFFER_EINVAL,
		                      "auth: a label is 1 to %d letters, digits, spaces "
		                      "or . _ + @ -",
		                      COFFER_AUTH_LABEL_MAX);
	norm = coffer_secure_alloc(APP_RANDOM_CHARS);
	if (norm == NULL)
		return coffer_err_set(COFFER_ENOMEM, "auth: cannot allocate secure memory");
	/* 32 letters: the low 5 bits of a random byte are uniform. */
	coffer_random(rnd, sizeof rnd);
	for (int i = 0; i < APP_RANDOM_CHARS; i++)
		norm[i] = app_alphabet[rnd[i] & 31];
	coffer_wipe(rnd, sizeof rnd);
	rc = coffer_mailbox_open(st, name, nlen, &mb);
	if (rc == 0) {
		a = (struct app_add_args){ label, coffer_mailbox_secret(mb), norm };
		rc = with_record(st, name, nlen, 1, app_add, &a);
	}
	if (rc == 0) {
		for (int i = 0; i < APP_RANDOM_CHARS; i++) {
			if (i && i % 4 == 0)
				pw_out[k++] = '-';
			pw_out[k++] = norm[i];
		}
		pw_out[k] = '\0';
	}
	coffer_mailbox_close(&mb);
	coffer_secure_free(norm);
	return rc;
}

static int app_revoke(struct auth_rec *r, int64_t now, void *arg)
{
	const char *label = arg;

	for (unsigned i = 0; i < r->napp; i++) {
		if (r->app[i].state == APP_LIVE && strcmp(r->app[i].label, label) == 0) {
			r->app[i].state = APP_REVOKED;
			r->app[i].revoked_at = now;
			/* Keep at most COFFER_AUTH_REVOKED_KEPT revoked ones. */
			unsigned revoked = 0;

			for (unsigned j = 0; j < r->napp; j++)
				revoked += r->app[j].state == APP_REVOKED;
			if (revoked > COFFER_AUTH_REVOKED_KEPT)
				drop_oldest_revoked(r);
			return 0;
		}
	}
	return coffer_err_set(COFFER_ENOTFOUND, "no live application password labelled '%s'",
	                      label);
}

int coffer_auth_app_revoke(struct coffer_store *st, const char *name, size_t nlen,
                           const char *label)
{
	char shown[COFFER_NAMES_SHOW_SIZE];

	if (!label_ok(label))
		return coffer_err_set(COFFER_ENOTFOUND, "no application password labelled '%s'",
		                      coffer_names_show(label, strlen(label), shown));
	return with_record(st, name, nlen, 1, app_revoke, (void *)label);
}

struct app_list_args {
	int revoked;
	coffer_app_fn fn;
	void *arg;
};

static int app_list(struct auth_rec *r, int64_t now, void *arg)
{
	struct app_list_args *a = arg;
	struct coffer_app_info info;
	int rc;

	for (unsigned i = 0; i < r->napp; i++) {
		const struct app_slot *s = &r->app[i];

		if (s->state == APP_REVOKED && !a->revoked)
			continue;
		info = (struct coffer_app_info){ s->label,   s->created_at,   s->last_used_at,
			                         s->last_ip, s->last_service, s->revoked_at };
		rc = a->fn(&info, a->arg);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	return 0;
}

int coffer_auth_app_list(struct coffer_store *st, const char *name, size_t nlen, int revoked,
                         coffer_app_fn fn, void *arg)
{
	struct app_list_args a = { revoked, fn, arg };

	return with_record(st, name, nlen, 0, app_list, &a);
}

struct totp_enable_args {
	const char *canon;
	struct coffer_buf *uri;
};

static int totp_enable(struct auth_rec *r, int64_t now, void *arg)
{
	struct totp_enable_args *a = arg;

	if (r->totp_on)
		return coffer_err_set(COFFER_EEXIST,
		                      "two-factor authentication is already enabled; "
		                      "disable it first to make a new secret");
	coffer_random(r->totp_secret, sizeof r->totp_secret);
	r->totp_on = 1;
	r->totp_last_step = 0;
	r->totp_enabled_at = now;
	coffer_buf_reset(a->uri);
	coffer_buf_puts(a->uri, "otpauth://totp/Coffer:");
	for (const char *p = a->canon; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~", c))
			coffer_buf_putc(a->uri, c);
		else
			coffer_buf_printf(a->uri, "%%%02X", c);
	}
	coffer_buf_puts(a->uri, "?secret=");
	coffer_base32(a->uri, r->totp_secret, sizeof r->totp_secret);
	coffer_buf_printf(a->uri, "&issuer=Coffer&algorithm=SHA1&digits=%d&period=%d",
	                  COFFER_TOTP_DIGITS, COFFER_TOTP_STEP);
	return coffer_buf_ok(a->uri);
}

int coffer_auth_totp_enable(struct coffer_store *st, const char *name, size_t nlen,
                            struct coffer_buf *uri)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct totp_enable_args a;
	int rc;

	rc = coffer_names_account(name, nlen, &canon);
	if (rc == 0) {
		a = (struct totp_enable_args){ coffer_buf_str(&canon), uri };
		rc = with_record(st, name, nlen, 1, totp_enable, &a);
	}
	if (rc < 0 && uri->data) {
		coffer_wipe(uri->data, uri->cap);
		coffer_buf_reset(uri);
	}
	coffer_buf_free(&canon);
	return rc;
}

static int totp_disable(struct auth_rec *r, int64_t now, void *arg)
{
	if (!r->totp_on)
		return coffer_err_set(COFFER_EINVAL, "two-factor authentication is not enabled");
	r->totp_on = 0;
	coffer_wipe(r->totp_secret, sizeof r->totp_secret);
	r->totp_last_step = 0;
	r->totp_enabled_at = 0;
	return 0;
}

int coffer_auth_totp_disable(struct coffer_store *st, const char *name, size_t nlen)
{
	return with_record(st, name, nlen, 1, totp_disable, NULL);
}

static int status_fn(struct auth_rec *r, int64_t now, void *arg)
{
	struct coffer_auth_status *s = arg;

	s->has_password = r->pw_hash[0] != '\0';
	s->totp_enabled = r->totp_on;
	for (unsigned i = 0; i < r->napp; i++) {
		if (r->app[i].state == APP_LIVE)
			s->app_live++;
		else
			s->app_revoked++;
	}
	return 0;
}

int coffer_auth_status(struct coffer_store *st, const char *name, size_t nlen,
                       struct coffer_auth_status *status_r)
{
	memset(status_r, 0, sizeof *status_r);
	return with_record(st, name, nlen, 0, status_fn, status_r);
}

/* ---- the login check ---- */

/* Parses a TOTP code as typed: 6 digits, spaces ignored. -1 if malformed. */
static int64_t parse_totp(const char *s)
{
	int64_t v = 0;
	int digits = 0;

	for (; *s; s++) {
		if (*s == ' ')
			continue;
		if (*s < '0' || *s > '9' || ++digits > COFFER_TOTP_DIGITS)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return digits == COFFER_TOTP_DIGITS ? v : -1;
}

/* TOTP check against r at time now: accepts steps now-1..now+1 that are
 * later than the last accepted one. Returns 1 (and advances the step),
 * or 0 with *reason set. */
static int totp_check(struct auth_rec *r, int64_t now, const char *code, uint8_t *reason)
{
	int64_t want = code ? parse_totp(code) : -1;
	uint64_t step = (uint64_t)(now / COFFER_NS_PER_SEC) / COFFER_TOTP_STEP;
	int replay = 0;

	if (code == NULL) {
		*reason = COFFER_REASON_MISSING_TOTP;
		return 0;
	}
	for (int d = -1; d <= 1; d++) {
		uint64_t s = step + (uint64_t)(int64_t)d;
		uint32_t c;
		unsigned char a[4], b[4];

		if (d < 0 && step == 0)
			continue;
		if (coffer_totp_code(r->totp_secret, sizeof r->totp_secret, s, COFFER_TOTP_DIGITS,
		                     &c) < 0)
			continue;
		coffer_put_u32be(a, c);
		coffer_put_u32be(b, want < 0 ? UINT32_MAX : (uint32_t)want);
		if (!coffer_ct_equal(a, b, sizeof a))
			continue;
		if (s <= r->totp_last_step) {
			replay = 1;
			continue;
		}
		r->totp_last_step = s;
		return 1;
	}
	*reason = replay ? COFFER_REASON_TOTP_REPLAY : COFFER_REASON_BAD_TOTP;
	return 0;
}

/* What the slow, transaction-free part of the check decided. */
struct verdict {
	int accept; /* credentials accepted (subject to TOTP for the panel) */
	int need_totp;
	uint8_t method;
	uint8_t reason;
	unsigned char app_hash[APP_HASH_BYTES];
	int app_used; /* app_hash identifies the slot */
	char label[COFFER_AUTH_LABEL_MAX + 1];
};

struct login_txn_args {
	const unsigned char *acct;
	const unsigned char *pk;
	const struct coffer_acct_secret *secret; /* NULL: seal the event */
	const struct coffer_login *login;
	struct verdict *v;
	struct auth_rec *rec; /* secure scratch */
	int64_t now;
	int accepted;   /* out */
	uint8_t reason; /* out */
};

static int login_txn(struct coffer_txn *t, void *arg)
{
	struct login_txn_args *a = arg;
	struct coffer_event ev;
	int rc, accepted = a->v->accept, changed = 0;
	uint8_t reason = a->v->reason;

	if (a->secret && accepted) {
		rc = rec_read_txn(t, a->acct, a->secret, a->rec);
		if (rc < 0)
			return rc;
		if (a->v->need_totp) {
			/* Re-checked here, on the record as of this transaction, so a
			 * code is accepted once even by concurrent logins. */
			accepted = totp_check(a->rec, a->now, a->login->totp, &reason);
			changed = accepted;
		}
		if (accepted && a->v->app_used) {
			for (unsigned i = 0; i < a->rec->napp; i++) {
				struct app_slot *s = &a->rec->app[i];

				if (s->state == APP_LIVE &&
				    coffer_ct_equal(s->hash, a->v->app_hash, APP_HASH_BYTES)) {
					s->last_used_at = a->now;
					s->last_service = a->login->service;
					s->last_ip = a->login->ip;
					changed = 1;
					break;
				}
				if (i + 1 == a->rec->napp) {
					/* revoked between the check and now */
					accepted = 0;
					reason = COFFER_REASON_REVOKED_APP_PASSWORD;
				}
			}
		}
		if (changed && accepted) {
			rc = rec_write_txn(t, a->acct, a->secret, a->rec);
			if (rc < 0)
				return rc;
		}
	}
	memset(&ev, 0, sizeof ev);
	ev.type = COFFER_EVENT_LOGIN;
	ev.at = a->now;
	ev.success = accepted ? 1 : 0;
	ev.service = a->login->service;
	ev.method = a->v->method;
	ev.reason = accepted ? COFFER_REASON_NONE : reason;
	ev.ip = a->login->ip;
	ev.label = a->v->label;
	a->accepted = accepted;
	a->reason = ev.reason;
	return coffer_events_record_txn(t, a->acct, a->pk, a->secret, &ev);
}

struct lookup_args {
	struct coffer_store *st;
	const char *canon;
	unsigned char id[COFFER_ID_BYTES];
	struct coffer_account_rec rec;
	unsigned char pk[COFFER_PK_BYTES];
};

static int lookup_txn(struct coffer_txn *t, void *arg)
{
	struct lookup_args *a = arg;
	int rc = coffer_account_lookup_txn(t, a->st, a->canon, a->id, &a->rec);

	if (rc == 0)
		memcpy(a->pk, a->rec.pk, sizeof a->pk);
	a->rec.name_box = NULL;
	return rc;
}

struct read_args {
	const unsigned char *acct;
	const struct coffer_acct_secret *secret;
	struct auth_rec *rec;
};

static int read_txn(struct coffer_txn *t, void *arg)
{
	struct read_args *a = arg;

	return rec_read_txn(t, a->acct, a->secret, a->rec);
}

/* The credential check proper, on a snapshot of the record. */
static int judge(const struct auth_rec *r, const struct coffer_acct_secret *secret,
                 const struct coffer_login *l, char *norm, struct verdict *v)
{
	int rc, is_app = app_normalise(l->password, l->password_len, norm);

	if (is_app) {
		rc = app_hash(secret, norm, v->app_hash);
		if (rc < 0)
			return rc;
		for (unsigned i = 0; i < r->napp; i++) {
			const struct app_slot *s = &r->app[i];

			if (!coffer_ct_equal(s->hash, v->app_hash, APP_HASH_BYTES))
				continue;
			strcpy(v->label, s->label);
			v->method = COFFER_METHOD_APP_PASSWORD;
			if (s->state == APP_LIVE) {
				v->accept = 1;
				v->app_used = 1;
			} else {
				v->reason = COFFER_REASON_REVOKED_APP_PASSWORD;
			}
			return 0;
		}
	}
	/* Not an application password: the main password. */
	v->method = COFFER_METHOD_PASSWORD;
	if (r->pw_hash[0] == '\0') {
		dummy_verify(l->password, l->password_len);
		v->reason = COFFER_REASON_NO_PASSWORD;
		return 0;
	}
	if (l->password_len > COFFER_AUTH_PASSWORD_MAX || memchr(l->password, 0, l->password_len)) {
		dummy_verify(l->password, l->password_len);
		v->reason = COFFER_REASON_BAD_PASSWORD;
		return 0;
	}
	rc = coffer_auth_verify_hash(l->password, l->password_len, r->pw_hash);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		v->reason = COFFER_REASON_BAD_PASSWORD;
		return 0;
	}
	if (!r->totp_on) {
		v->accept = 1;
		return 0;
	}
	if (l->service != COFFER_SVC_PANEL) {
		/* Mail clients cannot send a TOTP code: with 2FA on they use
		 * application passwords. */
		v->reason = COFFER_REASON_TWO_FACTOR_REQUIRED;
		return 0;
	}
	v->accept = 1;
	v->need_totp = 1;
	v->method = COFFER_METHOD_PASSWORD_TOTP;
	return 0;
}

int coffer_auth_login(struct coffer_store *st, const struct coffer_login *l,
                      struct coffer_login_result *res)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct coffer_mailbox *mb = NULL;
	struct lookup_args la;
	struct login_txn_args ta;
	struct read_args ra;
	struct verdict *v = NULL;
	struct auth_rec *rec = NULL;
	char *norm = NULL;
	int64_t now;
	int rc;

	memset(res, 0, sizeof *res);
	rc = coffer_clock_now(&now);
	if (rc < 0)
		return rc;
	v = coffer_secure_alloc(sizeof *v);
	rec = coffer_secure_alloc(sizeof *rec);
	norm = coffer_secure_alloc(APP_RANDOM_CHARS);
	if (v == NULL || rec == NULL || norm == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "auth: cannot allocate secure memory");
		goto out;
	}
	memset(v, 0, sizeof *v);
	if (coffer_names_account(l->name, l->name_len, &canon) < 0) {
		dummy_verify(l->password, l->password_len);
		res->reason = COFFER_REASON_BAD_PASSWORD;
		rc = coffer_err_set(COFFER_EPERM, "login refused: invalid account name");
		goto out;
	}
	memset(&la, 0, sizeof la);
	la.st = st;
	la.canon = coffer_buf_str(&canon);
	rc = coffer_index_view(coffer_store_index(st), lookup_txn, &la);
	if (rc == COFFER_ENOACCOUNT) {
		dummy_verify(l->password, l->password_len);
		res->reason = COFFER_REASON_BAD_PASSWORD;
		rc = coffer_err_set(COFFER_EPERM, "login refused for %s", la.canon);
		goto out;
	}
	if (rc < 0)
		goto out;
	if (la.rec.state == COFFER_ACCOUNT_SHREDDED) {
		rc = coffer_account_check_active(&la.rec, la.canon);
		res->reason = COFFER_REASON_TERMINATED;
		goto out;
	}
	ta = (struct login_txn_args){ la.id, la.pk, NULL, l, v, rec, now, 0, 0 };
	if (la.rec.state != COFFER_ACCOUNT_ACTIVE) {
		/* Terminated: no access, whatever the credentials; the attempt
		 * is recorded, sealed (no secret needed). */
		v->reason = COFFER_REASON_TERMINATED;
		rc = coffer_index_update(coffer_store_index(st), login_txn, &ta);
		res->recorded = rc == 0;
		res->reason = COFFER_REASON_TERMINATED;
		rc = rc < 0 ? rc : coffer_account_check_active(&la.rec, la.canon);
		goto out;
	}
	rc = coffer_mailbox_open(st, la.canon, strlen(la.canon), &mb);
	if (rc < 0)
		goto out;
	ra = (struct read_args){ la.id, coffer_mailbox_secret(mb), rec };
	rc = coffer_index_view(coffer_store_index(st), read_txn, &ra);
	if (rc == 0)
		rc = judge(rec, coffer_mailbox_secret(mb), l, norm, v);
	if (rc < 0)
		goto out;
	ta.secret = coffer_mailbox_secret(mb);
	rc = coffer_index_update(coffer_store_index(st), login_txn, &ta);
	if (rc < 0)
		goto out;
	res->recorded = 1;
	res->method = v->method;
	res->reason = ta.reason;
	strcpy(res->label, v->label);
	if (ta.accepted) {
		snprintf(res->canonical, sizeof res->canonical, "%s", la.canon);
		rc = 0;
	} else {
		rc = coffer_err_set(COFFER_EPERM, "login refused for %s (%s)", la.canon,
		                    coffer_login_reason_name(ta.reason));
	}
out:
	coffer_mailbox_close(&mb);
	coffer_secure_free(norm);
	coffer_secure_free(rec);
	coffer_secure_free(v);
	coffer_buf_free(&canon);
	return rc;
}
