/*
 * test-account.c: accounts (engine/account.h).
 *
 * add/show/list/terminate/reactivate; name validation (no '/', '..',
 * control characters, NUL, non-ASCII; an '@' and a two-label domain) and
 * case folding ("Alice@Example.COM" is "alice@example.com"); duplicate add is
 * EEXIST; the state machine refuses terminate twice and reactivate of an
 * active account (EINVAL); a terminated account cannot be opened
 * (ETERMINATED, with the date in the detail). Which operations need the key
 * file: show, terminate and reactivate do not, add, list and mailbox open do
 * (tested by pointing the store at a missing key file, since we run as root
 * and chmod 000 would not stop reads). Every account has its own keys: one
 * account's secret cannot open another's blobs.
 */
#include "engine/account.h"
#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/envelope.h"
#include "engine/errors.h"
#include "engine/message.h"
#include "engine/store.h"
#include "maildir/deliver.h"
#include "tap.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[2048];
static char store_path[PATH_MAX], key_path[PATH_MAX], missing_key[PATH_MAX];

struct listed {
	int n;
	char names[16][256];
	uint8_t states[16];
	unsigned char ids[16][COFFER_ID_BYTES];
	uint64_t messages[16];
	int null_names;
};

static int collect(const struct coffer_account_info *info, void *arg)
{
	struct listed *l = arg;

	if (l->n >= 16)
		return coffer_err_set(COFFER_ELIMIT, "too many");
	if (info->name == NULL)
		l->null_names++;
	snprintf(l->names[l->n], sizeof l->names[l->n], "%s", info->name ? info->name : "");
	l->states[l->n] = info->state;
	memcpy(l->ids[l->n], info->id, COFFER_ID_BYTES);
	l->messages[l->n] = info->messages;
	l->n++;
	return 0;
}

static int listed_has(const struct listed *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->names[i], name) == 0)
			return i + 1;
	return 0;
}

static int add(struct coffer_store *st, const char *name)
{
	return coffer_account_add(st, name, strlen(name), NULL);
}

static int deliver_text(struct coffer_store *st, const char *acct, const char *text,
                        struct coffer_deliver_result *res)
{
	int p[2], rc;
	size_t n = strlen(text);

	if (pipe(p) < 0)
		return -1;
	if (write(p[1], text, n) != (ssize_t)n)
		return -1;
	close(p[1]);
	rc = coffer_deliver(st, acct, NULL, p[0], res);
	close(p[0]);
	return rc;
}

static int first_blob(const struct coffer_message *m, void *arg)
{
	memcpy(arg, m->rec.blob_id, COFFER_ID_BYTES);
	return 1;
}

/* Does the file at path contain the bytes s? */
static int file_contains(const char *path, const char *s)
{
	FILE *f = fopen(path, "rb");
	size_t n = strlen(s), cap = 1 << 20, got;
	char *buf;
	int found = 0;

	if (f == NULL)
		return 0;
	buf = malloc(cap);
	while (buf && !found && (got = fread(buf, 1, cap, f)) > 0)
		found = memmem(buf, got, s, n) != NULL;
	free(buf);
	fclose(f);
	return found;
}

static void test_lifecycle(struct coffer_store *st)
{
	struct coffer_account_info info, info2;
	struct listed l;
	int rc;

	memset(&info, 0, sizeof info);
	rc = coffer_account_add(st, "alice@example.com", 17, &info);
	ok(rc == 0, "add alice@example.com: %s", rc ? coffer_errmsg() : "ok");
	ok(info.name && strcmp(info.name, "alice@example.com") == 0, "info: canonical name");
	ok(info.state == COFFER_ACCOUNT_ACTIVE && info.created_at > 0 && info.terminated_at == 0,
	   "info: active, created now");
	ok(info.folders == 1 && info.messages == 0, "info: one folder (INBOX), no messages");

	ok(add(st, "alice@example.com") == COFFER_EEXIST, "adding the same name again: EEXIST");
	ok(strstr(coffer_errmsg(), "alice@example.com") != NULL, "naming it: %s", coffer_errmsg());
	ok(add(st, "Alice@Example.COM") == COFFER_EEXIST, "a different case of it: EEXIST");
	ok(add(st, "ALICE@EXAMPLE.COM") == COFFER_EEXIST, "upper case: EEXIST");

	memset(&info2, 0, sizeof info2);
	rc = coffer_account_show(st, "Alice@Example.COM", 17, &info2);
	ok(rc == 0 && info2.name && strcmp(info2.name, "alice@example.com") == 0,
	   "show with another case finds alice, canonical name");
	ok(!memcmp(info.id, info2.id, COFFER_ID_BYTES) && info2.created_at == info.created_at &&
	       info2.state == COFFER_ACCOUNT_ACTIVE && info2.folders == 1,
	   "show: same id, dates, state, folders");
	coffer_account_info_clear(&info2);
	ok(info2.name == NULL, "info_clear frees and clears");

	rc = coffer_account_show(st, "nobody@example.com", 18, &info2);
	ok(rc == COFFER_ENOACCOUNT, "show of an unknown account: ENOACCOUNT (%d)", rc);
	ok(strstr(coffer_errmsg(), "nobody@example.com") != NULL, "naming it: %s", coffer_errmsg());
	coffer_account_info_clear(&info2);

	ok(add(st, "bob@example.org") == 0 && add(st, "carol.c+tag@mail.example.net") == 0,
	   "add bob and carol");
	memset(&l, 0, sizeof l);
	ok(coffer_account_list(st, collect, &l) == 0 && l.n == 3, "list: three accounts (%d)", l.n);
	ok(listed_has(&l, "alice@example.com") && listed_has(&l, "bob@example.org") &&
	       listed_has(&l, "carol.c+tag@mail.example.net") && l.null_names == 0,
	   "list: decrypted, canonical names");
	{
		int sorted = 1;

		for (int i = 1; i < l.n; i++)
			if (memcmp(l.ids[i - 1], l.ids[i], COFFER_ID_BYTES) >= 0)
				sorted = 0;
		ok(sorted, "list: in id order");
	}

	/* terminate / reactivate */
	ok(coffer_account_terminate(st, "bob@example.org", 15) == 0, "terminate bob");
	memset(&info2, 0, sizeof info2);
	coffer_account_show(st, "bob@example.org", 15, &info2);
	ok(info2.state == COFFER_ACCOUNT_TERMINATED && info2.terminated_at >= info2.created_at &&
	       info2.terminated_at > 0,
	   "show: terminated, with its date");
	{
		struct coffer_mailbox *mb = (struct coffer_mailbox *)1;
		char date[COFFER_CLOCK_ISO_MAX], day[16];

		rc = coffer_mailbox_open(st, "bob@example.org", 15, &mb);
		ok(rc == COFFER_ETERMINATED && mb == NULL, "mailbox open of a terminated account: "
		                                           "ETERMINATED");
		coffer_clock_format(info2.terminated_at, date);
		snprintf(day, sizeof day, "%.10s", date);
		ok(strstr(coffer_errmsg(), "bob@example.org") && strstr(coffer_errmsg(), day),
		   "the detail names the account and the date (%s): %s", day, coffer_errmsg());
	}
	ok(coffer_account_terminate(st, "bob@example.org", 15) == COFFER_EINVAL,
	   "terminate twice: EINVAL");
	ok(strstr(coffer_errmsg(), "bob@example.org") != NULL, "naming it: %s", coffer_errmsg());
	ok(add(st, "bob@example.org") == COFFER_EEXIST,
	   "a terminated account's name is still taken");
	memset(&l, 0, sizeof l);
	coffer_account_list(st, collect, &l);
	ok(l.n == 3 && listed_has(&l, "bob@example.org") &&
	       l.states[listed_has(&l, "bob@example.org") - 1] == COFFER_ACCOUNT_TERMINATED,
	   "list shows bob as terminated");
	ok(coffer_account_reactivate(st, "BOB@example.org", 15) == 0, "reactivate bob (any case)");
	coffer_account_info_clear(&info2);
	coffer_account_show(st, "bob@example.org", 15, &info2);
	ok(info2.state == COFFER_ACCOUNT_ACTIVE && info2.terminated_at == 0,
	   "active again, no termination date");
	coffer_account_info_clear(&info2);
	ok(coffer_account_reactivate(st, "bob@example.org", 15) == COFFER_EINVAL,
	   "reactivate of an active account: EINVAL");
	ok(coffer_account_terminate(st, "nobody@example.com", 18) == COFFER_ENOACCOUNT,
	   "terminate of an unknown account: ENOACCOUNT");
	ok(coffer_account_reactivate(st, "nobody@example.com", 18) == COFFER_ENOACCOUNT,
	   "reactivate of an unknown account: ENOACCOUNT");
	{
		struct coffer_mailbox *mb = NULL;

		rc = coffer_mailbox_open(st, "Bob@Example.org", 15, &mb);
		ok(rc == 0 && mb && strcmp(coffer_mailbox_name(mb), "bob@example.org") == 0 &&
		       coffer_mailbox_secret(mb) != NULL && coffer_mailbox_store(mb) == st,
		   "mailbox open after reactivation");
		coffer_mailbox_close(&mb);
		ok(mb == NULL, "mailbox close clears the handle");
		coffer_mailbox_close(&mb);
		rc = coffer_mailbox_open(st, "nobody@example.com", 18, &mb);
		ok(rc == COFFER_ENOACCOUNT && mb == NULL,
		   "mailbox open of an unknown account fails (%d)", rc);
	}
	ok(strcmp(coffer_account_state_name(COFFER_ACCOUNT_ACTIVE), "active") == 0 &&
	       strcmp(coffer_account_state_name(COFFER_ACCOUNT_TERMINATED), "terminated") == 0 &&
	       strcmp(coffer_account_state_name(COFFER_ACCOUNT_SHREDDED), "shredded") == 0 &&
	       strcmp(coffer_account_state_name(0), "unknown") == 0,
	   "state names");
	coffer_account_info_clear(&info);
}

#define S(lit) lit, sizeof(lit) - 1

static void test_invalid(struct coffer_store *st)
{
	static const struct {
		const char *name;
		size_t n;
		const char *why;
	} bad[] = {
		{ S(""), "empty" },
		{ S("alice"), "no '@'" },
		{ S("@example.com"), "empty local part" },
		{ S("alice@"), "empty domain" },
		{ S("alice@@example.com"), "two '@'" },
		{ S("a@b@example.com"), "two '@' apart" },
		{ S("al/ice@example.com"), "'/' in the local part" },
		{ S("alice@exa/mple.com"), "'/' in the domain" },
		{ S("../etc@example.com"), "'..' at the start" },
		{ S("a..b@example.com"), "'..' inside" },
		{ S("alice@.."), "'..' as the domain" },
		{ S("alice@example..com"), "empty label" },
		{ S(".alice@example.com"), "leading dot" },
		{ S("alice.@example.com"), "trailing dot" },
		{ S("alice@localhost"), "one-label domain" },
		{ S("alice@-example.com"), "label starting with '-'" },
		{ S("alice@example-.com"), "label ending with '-'" },
		{ S("alice@exa_mple.com"), "'_' in the domain" },
		{ S("al ice@example.com"), "space" },
		{ "\"al\"@example.com", 16, "quotes" },
		{ S("al\x01ice@example.com"), "control character" },
		{ S("alice\n@example.com"), "newline" },
		{ S("alice\r@example.com"), "CR" },
		{ S("al\x7fice@example.com"), "DEL" },
		{ S("al\x1b[31mice@example.com"), "escape sequence" },
		{ S("alice\0@example.com"), "NUL inside" },
		{ S("alice@example.com\0"), "trailing NUL" },
		{ S("j\xc3\xb6rg@example.com"), "UTF-8 (needs punycode)" },
		{ S("alice@b\xc3\xbc"
		    "cher.example"),
		  "UTF-8 domain" },
		{ S("\xff@example.com"), "invalid byte" },
	};
	struct listed l;
	char long_name[300];
	int wrong = 0, before;

	memset(&l, 0, sizeof l);
	coffer_account_list(st, collect, &l);
	before = l.n;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct coffer_account_info info;
		int rc = coffer_account_add(st, bad[i].name, bad[i].n, NULL);

		if (rc != COFFER_EINVAL) {
			tap_diag("add of %s (%s) gave %d", bad[i].why, bad[i].name, rc);
			wrong++;
		}
		if (strchr(coffer_errmsg(), '\n') || strchr(coffer_errmsg(), '\x1b'))
			wrong++; /* the detail must be one safe line */
		rc = coffer_account_show(st, bad[i].name, bad[i].n, &info);
		if (rc != COFFER_EINVAL)
			wrong++;
		coffer_account_info_clear(&info);
		if (coffer_account_terminate(st, bad[i].name, bad[i].n) != COFFER_EINVAL)
			wrong++;
	}
	ok(wrong == 0,
	   "%zu invalid names: add, show and terminate are EINVAL with a one-line detail",
	   sizeof bad / sizeof bad[0]);

	memset(long_name, 'a', sizeof long_name);
	memcpy(long_name + 255 - 12, "@example.com", 12); /* 255 bytes */
	ok(coffer_account_add(st, long_name, 255, NULL) == COFFER_EINVAL, "255 bytes: EINVAL");
	/* 254 bytes with labels of at most 63: local part 64, domain 189 */
	{
		char n254[255];
		size_t k = 0;

		memset(n254, 'b', 64);
		k = 64;
		n254[k++] = '@';
		while (k < 254) {
			size_t lab = 254 - k > 62 ? 61 : 254 - k;

			memset(n254 + k, 'c', lab);
			k += lab;
			if (k < 254)
				n254[k++] = '.';
		}
		ok(coffer_account_add(st, n254, 254, NULL) == 0, "254 bytes is accepted: %s",
		   coffer_errmsg());
	}
	memset(&l, 0, sizeof l);
	coffer_account_list(st, collect, &l);
	ok(l.n == before + 1, "only the valid one was added (%d -> %d)", before, l.n);
	ok(coffer_account_add(st, "o'hara!#$%&*+-=?^_`{|}~@x-y.example.org", 39, NULL) == 0,
	   "every atext character of the local part is accepted");
}

static void test_key_file_needed(void)
{
	struct coffer_store *st = NULL;
	struct coffer_account_info info;
	struct coffer_mailbox *mb = NULL;
	struct listed l;
	int rc;

	rc = coffer_store_open(store_path, missing_key, &st);
	ok(rc == 0, "open the store with a key file path that does not exist");
	if (st == NULL)
		return;
	memset(&info, 0, sizeof info);
	rc = coffer_account_show(st, "alice@example.com", 17, &info);
	ok(rc == 0 && info.state == COFFER_ACCOUNT_ACTIVE, "show works without the key file");
	coffer_account_info_clear(&info);
	memset(&l, 0, sizeof l);
	ok(coffer_account_list(st, collect, &l) == COFFER_ENOTFOUND && l.n == 0,
	   "list needs the key file: ENOTFOUND, nothing listed");
	ok(strstr(coffer_errmsg(), missing_key) != NULL, "naming it: %s", coffer_errmsg());
	ok(add(st, "dave@example.com") == COFFER_ENOTFOUND, "add needs the key file");
	rc = coffer_account_show(st, "dave@example.com", 16, &info);
	ok(rc == COFFER_ENOACCOUNT, "and added nothing");
	coffer_account_info_clear(&info);
	ok(coffer_mailbox_open(st, "alice@example.com", 17, &mb) == COFFER_ENOTFOUND && mb == NULL,
	   "mailbox open needs the key file");
	ok(strstr(coffer_errmsg(), "alice@example.com") != NULL, "naming the account: %s",
	   coffer_errmsg());
	ok(coffer_account_terminate(st, "alice@example.com", 17) == 0 &&
	       coffer_account_reactivate(st, "alice@example.com", 17) == 0,
	   "terminate and reactivate need no key file");
	coffer_store_close(&st);
}

static void test_distinct_keys(struct coffer_store *st)
{
	struct coffer_mailbox *a = NULL, *b = NULL;
	struct coffer_deliver_result ra, rb;
	unsigned char blob_a[COFFER_ID_BYTES], blob_b[COFFER_ID_BYTES];
	struct coffer_blob_ids ids;
	struct coffer_blob_reader *r = NULL;
	struct coffer_buf path = COFFER_BUF_INIT;
	int fd, rc;

	ok(deliver_text(st, "alice@example.com", "Subject: for alice\n\nhello alice\n", &ra) == 0 &&
	       deliver_text(st, "bob@example.org", "Subject: for bob\n\nhello bob\n", &rb) == 0,
	   "deliver one message to alice and one to bob");
	ok(coffer_mailbox_open(st, "alice@example.com", 17, &a) == 0 &&
	       coffer_mailbox_open(st, "bob@example.org", 15, &b) == 0,
	   "open both mailboxes");
	if (a == NULL || b == NULL)
		return;
	ok(memcmp(coffer_mailbox_id(a), coffer_mailbox_id(b), COFFER_ID_BYTES) != 0,
	   "different account ids");
	ok(memcmp(coffer_mailbox_secret(a)->pk, coffer_mailbox_secret(b)->pk, COFFER_PK_BYTES) !=
	           0 &&
	       !coffer_ct_equal(coffer_mailbox_secret(a)->sk, coffer_mailbox_secret(b)->sk,
	                        COFFER_SK_BYTES) &&
	       !coffer_ct_equal(coffer_mailbox_secret(a)->data_key,
	                        coffer_mailbox_secret(b)->data_key, COFFER_KEY_BYTES),
	   "different public keys, secret keys and data keys");
	coffer_message_list(a, 0, first_blob, blob_a);
	coffer_message_list(b, 0, first_blob, blob_b);

	/* bob's blob, with bob's ids (as the index says), opened with alice's secret */
	coffer_store_blob_path(st, coffer_mailbox_id(b), blob_b, &path);
	fd = open(coffer_buf_str(&path), O_RDONLY);
	ok(fd >= 0, "bob's blob file exists");
	memcpy(ids.account_id, coffer_mailbox_id(b), COFFER_ID_BYTES);
	memcpy(ids.blob_id, blob_b, COFFER_ID_BYTES);
	ids.kind = COFFER_BLOB_MESSAGE;
	rc = coffer_blob_reader_open(fd, &ids, coffer_mailbox_secret(a), &r);
	ok(rc == COFFER_ECORRUPT && r == NULL, "alice's secret cannot open bob's blob");
	coffer_blob_reader_free(&r);
	rc = coffer_blob_reader_open(fd, &ids, coffer_mailbox_secret(b), &r);
	ok(rc == 0 && r != NULL, "bob's secret can");
	coffer_blob_reader_free(&r);
	/* alice's ids on bob's blob (moved into alice's tree) */
	memcpy(ids.account_id, coffer_mailbox_id(a), COFFER_ID_BYTES);
	rc = coffer_blob_reader_open(fd, &ids, coffer_mailbox_secret(a), &r);
	ok(rc == COFFER_ECORRUPT, "bob's blob presented as alice's does not open either");
	coffer_blob_reader_free(&r);
	close(fd);

	coffer_store_blob_path(st, coffer_mailbox_id(a), blob_a, &path);
	fd = open(coffer_buf_str(&path), O_RDONLY);
	memcpy(ids.account_id, coffer_mailbox_id(a), COFFER_ID_BYTES);
	memcpy(ids.blob_id, blob_a, COFFER_ID_BYTES);
	rc = coffer_blob_reader_open(fd, &ids, coffer_mailbox_secret(b), &r);
	ok(fd >= 0 && rc == COFFER_ECORRUPT, "bob's secret cannot open alice's blob");
	coffer_blob_reader_free(&r);
	close(fd);

	{
		struct coffer_account_info info;

		memset(&info, 0, sizeof info);
		coffer_account_show(st, "alice@example.com", 17, &info);
		ok(info.messages == 1 &&
		       info.bytes == strlen("Subject: for alice\n\nhello alice\n"),
		   "show counts alice's message and bytes (%llu, %llu)",
		   (unsigned long long)info.messages, (unsigned long long)info.bytes);
		coffer_account_info_clear(&info);
	}
	coffer_buf_free(&path);
	coffer_mailbox_close(&a);
	coffer_mailbox_close(&b);
}

int main(void)
{
	struct coffer_store *st = NULL;
	char idx[PATH_MAX + 32];
	int rc;

	if (coffer_crypto_init() < 0)
		return 99;
	snprintf(dir, sizeof dir, "%s", tap_tmpdir());
	snprintf(store_path, sizeof store_path, "%s/store", dir);
	snprintf(key_path, sizeof key_path, "%s/coffer.key", dir);
	snprintf(missing_key, sizeof missing_key, "%s/no-such.key", dir);
	rc = coffer_store_init(store_path, key_path, &st);
	ok(rc == 0, "init a store: %s", rc ? coffer_errmsg() : "ok");
	if (rc < 0)
		return tap_done();
	test_lifecycle(st);
	test_invalid(st);
	test_distinct_keys(st);
	coffer_store_close(&st);
	test_key_file_needed();

	snprintf(idx, sizeof idx, "%s/index/data.mdb", store_path);
	ok(!file_contains(idx, "alice@example.com") && !file_contains(idx, "example.com") &&
	       !file_contains(idx, "bob"),
	   "no account name appears in the index file");
	return tap_done();
}
