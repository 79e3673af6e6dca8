/*
 * test-folder.c: folders (engine/folder.h).
 *
 * resolve with create: INBOX is id 0, new folders take the account's next
 * ids; the name is sealed to the public key when no secret is given
 * (delivery) and a symmetric box when it is; an existing folder resolves to
 * its id without being created again; without create a missing folder is
 * ENOTFOUND. UIDVALIDITY grows across folders even when they are created in
 * the same second (or with a clock that went back). list decrypts both kinds
 * of name and sorts INBOX first, then by name, with message, unseen and byte
 * counts. find accepts '.' and '/' spellings. Keywords: intern gives one
 * index per name, 26 at most (ELIMIT), per folder, bound to the account.
 */
#include "engine/account.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/message.h"
#include "engine/record.h"
#include "engine/store.h"
#include "maildir/deliver.h"
#include "maildir/name.h"
#include "tap.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct coffer_store *st;

struct resolve_args {
	const unsigned char *acct;
	const char *canon;
	int create;
	const struct coffer_acct_secret *secret;
	int64_t now;
	uint32_t fid;
	int created;
	struct coffer_folder_rec rec;
	uint8_t box_tag;
	uint32_t next_folder_id;
};

static int resolve_txn(struct coffer_txn *t, void *arg)
{
	struct resolve_args *a = arg;
	struct coffer_account_rec arec;
	int rc;

	rc = coffer_folder_resolve_txn(t, st, a->acct, a->canon, a->create, a->secret, a->now,
	                               &a->fid, &a->created);
	if (rc < 0)
		return rc;
	rc = coffer_folder_get_txn(t, a->acct, a->fid, &a->rec);
	if (rc < 0)
		return rc;
	a->box_tag = a->rec.name_box_len ? a->rec.name_box[0] : 0;
	a->rec.name_box = NULL; /* points into the map: not valid after the txn */
	rc = coffer_account_get_txn(t, a->acct, &arec);
	if (rc == 0)
		a->next_folder_id = arec.next_folder_id;
	return rc;
}

static int resolve(struct resolve_args *a)
{
	return coffer_index_update(coffer_store_index(st), resolve_txn, a);
}

struct listed {
	int n;
	char names[40][64];
	struct coffer_folder_info info[40];
};

static int collect(const struct coffer_folder_info *info, void *arg)
{
	struct listed *l = arg;

	if (l->n >= 40)
		return coffer_err_set(COFFER_ELIMIT, "too many folders");
	snprintf(l->names[l->n], sizeof l->names[l->n], "%s", info->name);
	l->info[l->n] = *info;
	l->info[l->n].name = NULL;
	l->n++;
	return 0;
}

static int deliver_to(const char *acct, const char *folder, const char *text,
                      struct coffer_deliver_result *res)
{
	int p[2], rc;
	size_t n = strlen(text);

	if (pipe(p) < 0 || write(p[1], text, n) != (ssize_t)n)
		return -1;
	close(p[1]);
	rc = coffer_deliver(st, acct, folder, p[0], res);
	close(p[0]);
	return rc;
}

struct flag_args {
	const unsigned char *acct;
	uint32_t fid, uid;
	uint8_t flags;
};

static int set_flags_txn(struct coffer_txn *t, void *arg)
{
	struct flag_args *a = arg;
	struct coffer_message_rec rec;
	int rc;

	rc = coffer_message_get_txn(t, a->acct, a->fid, a->uid, &rec);
	if (rc < 0)
		return rc;
	rec.flags = a->flags;
	return coffer_message_update_txn(t, a->acct, a->fid, a->uid, &rec);
}

struct kw_args {
	const unsigned char *acct;
	uint32_t fid;
	const struct coffer_acct_secret *secret;
	const char *name;
	unsigned idx;
	char *names[COFFER_FOLDER_KEYWORDS_MAX];
};

static int intern_txn(struct coffer_txn *t, void *arg)
{
	struct kw_args *a = arg;

	return coffer_folder_keyword_intern_txn(t, a->acct, a->fid, a->name, a->secret, &a->idx);
}

static int load_txn(struct coffer_txn *t, void *arg)
{
	struct kw_args *a = arg;

	return coffer_folder_keywords_txn(t, a->acct, a->fid, a->secret, a->names);
}

static int intern(struct kw_args *a, const char *name)
{
	a->name = name;
	return coffer_index_update(coffer_store_index(st), intern_txn, a);
}

static void test_resolve(struct coffer_mailbox *mb)
{
	const unsigned char *acct = coffer_mailbox_id(mb);
	struct resolve_args a;
	uint32_t uv[6];
	int rc;

	memset(&a, 0, sizeof a);
	a = (struct resolve_args){ .acct = acct, .canon = "INBOX", .create = 1, .now = 1 };
	ok(resolve(&a) == 0 && a.fid == COFFER_FOLDER_INBOX && !a.created,
	   "INBOX exists from account creation, id 0");
	ok(a.rec.uidnext == 1 && a.rec.uidvalidity > 0, "INBOX: uidnext 1, a uidvalidity");
	ok(a.box_tag == COFFER_BOX_SYM, "INBOX's name, made by account add, is a symmetric box");
	ok(a.next_folder_id == 1, "the account's next folder id is 1");
	uv[0] = a.rec.uidvalidity;

	/* sealed (no secret), as delivery does */
	a = (struct resolve_args){ .acct = acct,
		                   .canon = "Sealed",
		                   .create = 1,
		                   .secret = NULL,
		                   .now = 1800000000LL * 1000000000LL };
	rc = resolve(&a);
	ok(rc == 0 && a.created && a.fid == 1, "create 'Sealed' without a secret: id 1 (%d)", rc);
	ok(a.box_tag == COFFER_BOX_SEALED, "its name is a sealed box");
	ok(a.next_folder_id == 2, "next folder id 2");
	ok(a.rec.uidnext == 1 && a.rec.created_at == 1800000000LL * 1000000000LL,
	   "uidnext 1, created_at as given");
	uv[1] = a.rec.uidvalidity;
	ok(uv[1] == 1800000000u, "uidvalidity = creation time in seconds (%u)", uv[1]);

	a = (struct resolve_args){ .acct = acct,
		                   .canon = "Sym",
		                   .create = 1,
		                   .secret = coffer_mailbox_secret(mb),
		                   .now = 1800000000LL * 1000000000LL + 5 };
	ok(resolve(&a) == 0 && a.created && a.fid == 2 && a.box_tag == COFFER_BOX_SYM,
	   "create 'Sym' with the secret: id 2, symmetric box");
	uv[2] = a.rec.uidvalidity;
	ok(uv[2] > uv[1], "created in the same second, uidvalidity still grows (%u > %u)", uv[2],
	   uv[1]);
	a = (struct resolve_args){ .acct = acct,
		                   .canon = "Third",
		                   .create = 1,
		                   .now = 1800000000LL * 1000000000LL + 7 };
	resolve(&a);
	uv[3] = a.rec.uidvalidity;
	a = (struct resolve_args){ .acct = acct,
		                   .canon = "Past",
		                   .create = 1,
		                   .now = 1000000000LL * 1000000000LL };
	resolve(&a);
	uv[4] = a.rec.uidvalidity;
	ok(uv[3] > uv[2] && uv[4] > uv[3], "and again, even with a clock that went back (%u, %u)",
	   uv[3], uv[4]);

	/* existing: not created again */
	a = (struct resolve_args){ .acct = acct,
		                   .canon = "Sealed",
		                   .create = 1,
		                   .secret = coffer_mailbox_secret(mb),
		                   .now = 5 };
	ok(resolve(&a) == 0 && !a.created && a.fid == 1 && a.rec.uidvalidity == uv[1] &&
	       a.box_tag == COFFER_BOX_SEALED && a.next_folder_id == 5,
	   "resolving an existing folder finds it, changes nothing");
	a = (struct resolve_args){ .acct = acct, .canon = "Nope", .create = 0 };
	ok(resolve(&a) == COFFER_ENOTFOUND, "without create, a missing folder is ENOTFOUND");
	a = (struct resolve_args){ .acct = acct, .canon = "Nope", .create = 1 };
	ok(resolve(&a) == 0 && a.created && a.fid == 5, "with create it is made (id 5)");
	a = (struct resolve_args){ .acct = acct, .canon = "sealed", .create = 0 };
	ok(resolve(&a) == COFFER_ENOTFOUND, "folder names are case-sensitive ('sealed')");
}

static void test_list_find(struct coffer_mailbox *mb, const char *acct_name)
{
	static const char *const names[] = { "zeta",         "Alpha", "beta",
		                             "Lists/debian", "Lists", "Caf\xc3\xa9" };
	struct coffer_deliver_result r;
	struct listed l;
	uint32_t fid = 99;
	int rc;

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct resolve_args a = { .acct = coffer_mailbox_id(mb),
			                  .canon = names[i],
			                  .create = 1,
			                  .secret = (i % 2) ? coffer_mailbox_secret(mb) : NULL,
			                  .now = 7 };

		resolve(&a);
	}
	memset(&l, 0, sizeof l);
	rc = coffer_folder_list(mb, collect, &l);
	ok(rc == 0 && l.n == 12, "list: 12 folders (%d): %s", l.n, rc ? coffer_errmsg() : "ok");
	{
		static const char *const want[] = { "INBOX", "Alpha",        "Caf\xc3\xa9",
			                            "Lists", "Lists/debian", "Nope",
			                            "Past",  "Sealed",       "Sym",
			                            "Third", "beta",         "zeta" };
		int good = l.n == 12;

		for (int i = 0; good && i < 12; i++)
			if (strcmp(l.names[i], want[i]) != 0) {
				tap_diag("position %d: %s, want %s", i, l.names[i], want[i]);
				good = 0;
			}
		ok(good, "INBOX first, then byte order; sealed and symmetric names both decrypted");
	}

	/* counts */
	ok(deliver_to(acct_name, "Lists.debian", "Subject: one\n\nbody one\n", &r) == 0 &&
	       deliver_to(acct_name, "Lists/debian", "Subject: two\n\nbody two, longer\n", &r) == 0,
	   "deliver two messages to Lists/debian (both spellings)");
	{
		struct flag_args fa = { coffer_mailbox_id(mb), r.folder_id, r.uid,
			                COFFER_FLAG_SEEN };

		ok(coffer_index_update(coffer_store_index(st), set_flags_txn, &fa) == 0,
		   "mark the second one seen");
	}
	memset(&l, 0, sizeof l);
	coffer_folder_list(mb, collect, &l);
	{
		int i = 4; /* Lists/debian */

		ok(l.n == 12 && strcmp(l.names[i], "Lists/debian") == 0 &&
		       l.info[i].messages == 2 && l.info[i].unseen == 1 &&
		       l.info[i].bytes == strlen("Subject: one\n\nbody one\n") +
		                              strlen("Subject: two\n\nbody two, longer\n") &&
		       l.info[i].uidnext == 3,
		   "list counts messages (2), unseen (1), bytes, uidnext (3)");
		ok(l.info[0].messages == 0 && l.info[0].id == COFFER_FOLDER_INBOX,
		   "INBOX: id 0, empty");
	}

	/* find */
	ok(coffer_folder_find(mb, "Lists/debian", &fid) == 0 && fid == r.folder_id,
	   "find 'Lists/debian'");
	fid = 99;
	ok(coffer_folder_find(mb, "Lists.debian", &fid) == 0 && fid == r.folder_id,
	   "find 'Lists.debian' (Maildir++ spelling): same id");
	ok(coffer_folder_find(mb, "inbox", &fid) == 0 && fid == COFFER_FOLDER_INBOX,
	   "find 'inbox' (any case): INBOX");
	ok(coffer_folder_find(mb, "Caf\xc3\xa9", &fid) == 0, "find a UTF-8 name");
	rc = coffer_folder_find(mb, "Lists/ubuntu", &fid);
	ok(rc == COFFER_ENOTFOUND, "find of a missing folder: ENOTFOUND");
	ok(strstr(coffer_errmsg(), acct_name) && strstr(coffer_errmsg(), "Lists/ubuntu"),
	   "the detail names account and folder: %s", coffer_errmsg());
	{
		static const char *const bad[] = { "",      "a//b", "/a",   "a/", "..", "a/../b",
			                           "a\x01", "a\nb", "\xff", "a.", ".a" };
		int wrong = 0;

		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
			if (coffer_folder_find(mb, bad[i], &fid) != COFFER_EINVAL) {
				tap_diag("find('%s') was not EINVAL", bad[i]);
				wrong++;
			}
		ok(wrong == 0,
		   "invalid folder names ('', '//', '..', controls, bad UTF-8): EINVAL");
	}
}

static void test_keywords(struct coffer_mailbox *mb, struct coffer_mailbox *other)
{
	struct kw_args a;
	char name[32];
	int rc, wrong = 0;

	memset(&a, 0, sizeof a);
	a.acct = coffer_mailbox_id(mb);
	a.fid = 1;
	a.secret = coffer_mailbox_secret(mb);
	ok(intern(&a, "$Junk") == 0 && a.idx == 0, "first keyword: index 0");
	ok(intern(&a, "NonJunk") == 0 && a.idx == 1, "second keyword: index 1");
	ok(intern(&a, "$Junk") == 0 && a.idx == 0, "the same name again: the same index");
	ok(intern(&a, "$junk") == 0 && a.idx == 2, "keywords are case-sensitive: a new index");
	for (int i = 3; i < COFFER_FOLDER_KEYWORDS_MAX; i++) {
		snprintf(name, sizeof name, "kw%02d", i);
		if (intern(&a, name) != 0 || a.idx != (unsigned)i)
			wrong++;
	}
	ok(wrong == 0, "keywords 3..25 get indexes 3..25");
	rc = intern(&a, "one-too-many");
	ok(rc == COFFER_ELIMIT, "a 27th keyword: ELIMIT (%d)", rc);
	ok(strstr(coffer_errmsg(), "26") != NULL, "the detail states the limit: %s",
	   coffer_errmsg());
	ok(intern(&a, "NonJunk") == 0 && a.idx == 1, "an existing keyword still interns when full");
	ok(intern(&a, "kw25") == 0 && a.idx == 25, "the last one too");

	ok(coffer_index_view(coffer_store_index(st), load_txn, &a) == 0, "load the keywords");
	wrong = 0;
	for (int i = 0; i < COFFER_FOLDER_KEYWORDS_MAX; i++) {
		char want[32];

		if (i == 0)
			snprintf(want, sizeof want, "$Junk");
		else if (i == 1)
			snprintf(want, sizeof want, "NonJunk");
		else if (i == 2)
			snprintf(want, sizeof want, "$junk");
		else
			snprintf(want, sizeof want, "kw%02d", i);
		if (a.names[i] == NULL || strcmp(a.names[i], want) != 0)
			wrong++;
	}
	ok(wrong == 0, "every index holds its name");
	coffer_folder_keywords_free(a.names);
	ok(a.names[0] == NULL && a.names[25] == NULL, "keywords_free clears the array");

	/* another folder has its own table */
	a.fid = 2;
	ok(coffer_index_view(coffer_store_index(st), load_txn, &a) == 0 && a.names[0] == NULL,
	   "another folder has no keywords");
	ok(intern(&a, "NonJunk") == 0 && a.idx == 0, "and numbers its own from 0");
	coffer_folder_keywords_free(a.names);

	/* bound to the account: another account's secret cannot read them */
	a.fid = 1;
	a.secret = coffer_mailbox_secret(other);
	rc = coffer_index_view(coffer_store_index(st), load_txn, &a);
	ok(rc == COFFER_ECORRUPT, "another account's secret cannot open the keyword boxes");
	ok(a.names[0] == NULL, "and nothing is returned");
	a.secret = coffer_mailbox_secret(mb);
	a.fid = 77;
	ok(coffer_index_view(coffer_store_index(st), load_txn, &a) == 0 && a.names[0] == NULL,
	   "a folder id without keywords loads an empty table");
}

int main(void)
{
	char dir[2048], store_path[PATH_MAX], key_path[PATH_MAX];
	struct coffer_mailbox *mb = NULL, *other = NULL;
	int rc;

	if (coffer_crypto_init() < 0)
		return 99;
	snprintf(dir, sizeof dir, "%s", tap_tmpdir());
	snprintf(store_path, sizeof store_path, "%s/store", dir);
	snprintf(key_path, sizeof key_path, "%s/coffer.key", dir);
	rc = coffer_store_init(store_path, key_path, &st);
	ok(rc == 0, "init a store");
	ok(coffer_account_add(st, "folders@example.com", 19, NULL) == 0 &&
	       coffer_account_add(st, "other@example.com", 17, NULL) == 0,
	   "add two accounts");
	ok(coffer_mailbox_open(st, "folders@example.com", 19, &mb) == 0 &&
	       coffer_mailbox_open(st, "other@example.com", 17, &other) == 0,
	   "open their mailboxes");
	if (mb == NULL || other == NULL)
		return tap_done();
	test_resolve(mb);
	test_list_find(mb, "folders@example.com");
	test_keywords(mb, other);
	{
		struct listed l;

		memset(&l, 0, sizeof l);
		ok(coffer_folder_list(other, collect, &l) == 0 && l.n == 1 &&
		       strcmp(l.names[0], "INBOX") == 0,
		   "the other account has only its INBOX");
	}
	coffer_mailbox_close(&mb);
	coffer_mailbox_close(&other);
	coffer_store_close(&st);
	return tap_done();
}
