/*
 * test-blob.c: blob reference counts and deferred collection (engine/blob.h).
 *
 * ref of a missing blob is ENOTFOUND, unref of one is ECORRUPT (a message
 * pointing at nothing); refs count up and down; the last unref moves the
 * blob from blobs and unsnapped to the trash with its removal time; the
 * collector unlinks trashed files (all accounts, or one), forgets them, and
 * tolerates files already gone; it does nothing while a snapshot holds the
 * collection lock, and catches up once it is released. A count at UINT32_MAX
 * is ELIMIT rather than wrapping.
 */
#include "engine/account.h"
#include "engine/blob.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/record.h"
#include "engine/store.h"
#include "tap.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct coffer_store *st;
static unsigned char acct_a[COFFER_ID_BYTES], acct_b[COFFER_ID_BYTES];

struct op {
	const unsigned char *acct;
	const unsigned char *blob;
	uint32_t refs;
	int64_t now;
	int found;
	uint64_t when;
};

static int put_txn(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;
	struct coffer_blob_rec r = { o->refs, 1, 7, 100 };
	struct coffer_buf b = COFFER_BUF_INIT;
	unsigned char key[COFFER_KEY_BLOB];
	int rc;

	coffer_key_blob(key, o->acct, o->blob);
	rc = coffer_blob_rec_encode(&r, &b);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_BLOBS, key, sizeof key, b.data, b.len, 0);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_UNSNAPPED, key, sizeof key, "", 0, 0);
	coffer_buf_free(&b);
	return rc;
}

static int ref_txn(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;

	return coffer_blob_ref_txn(t, o->acct, o->blob);
}

static int unref_txn(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;

	return coffer_blob_unref_txn(t, o->acct, o->blob, o->now);
}

static int get_in(struct coffer_txn *t, enum coffer_db db, struct op *o, const void **v, size_t *n)
{
	unsigned char key[COFFER_KEY_BLOB];

	coffer_key_blob(key, o->acct, o->blob);
	return coffer_txn_get(t, db, key, sizeof key, v, n);
}

/* refs (0 if no record), found = bit 0 unsnapped, bit 1 trash; when = trash time */
static int state_txn(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;
	struct coffer_blob_rec r;
	const void *v;
	size_t n;

	o->refs = 0;
	o->found = 0;
	o->when = 0;
	if (get_in(t, COFFER_DB_BLOBS, o, &v, &n) == 0 && coffer_blob_rec_decode(v, n, &r) == 0)
		o->refs = r.refs;
	if (get_in(t, COFFER_DB_UNSNAPPED, o, &v, &n) == 0)
		o->found |= 1;
	if (get_in(t, COFFER_DB_TRASH, o, &v, &n) == 0) {
		o->found |= 2;
		if (n == 8)
			for (int i = 7; i >= 0; i--)
				o->when = (o->when << 8) | ((const unsigned char *)v)[i];
	}
	return 0;
}

static struct op state(const unsigned char *acct, const unsigned char *blob)
{
	struct op o = { .acct = acct, .blob = blob };

	coffer_index_view(coffer_store_index(st), state_txn, &o);
	return o;
}

static int run(coffer_txn_fn fn, const unsigned char *acct, const unsigned char *blob,
               uint32_t refs, int64_t now)
{
	struct op o = { .acct = acct, .blob = blob, .refs = refs, .now = now };

	return coffer_index_update(coffer_store_index(st), fn, &o);
}

static char *path_of(const unsigned char *acct, const unsigned char *blob)
{
	static struct coffer_buf p = COFFER_BUF_INIT;
	struct coffer_buf d = COFFER_BUF_INIT;
	char *slash;

	coffer_store_blob_path(st, acct, blob, &p);
	/* make the directories and a dummy file, as a writer would */
	coffer_buf_puts(&d, coffer_buf_str(&p));
	slash = strrchr((char *)d.data, '/');
	*slash = '\0';
	slash = strrchr((char *)d.data, '/');
	*slash = '\0';
	mkdir((char *)d.data, 0700);
	*slash = '/';
	mkdir((char *)d.data, 0700);
	coffer_buf_free(&d);
	return (char *)p.data;
}

static void make_file(const unsigned char *acct, const unsigned char *blob)
{
	int fd = open(path_of(acct, blob), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, "blob", 4) != 4)
		tap_diag("cannot make a blob file");
	close(fd);
}

static int file_exists(const unsigned char *acct, const unsigned char *blob)
{
	struct stat sb;

	return stat(path_of(acct, blob), &sb) == 0;
}

int main(void)
{
	char dir[2048], store_path[PATH_MAX], key_path[PATH_MAX];
	unsigned char b1[COFFER_ID_BYTES], b2[COFFER_ID_BYTES], b3[COFFER_ID_BYTES],
	    b4[COFFER_ID_BYTES], gone[COFFER_ID_BYTES];
	struct coffer_account_info ia, ib;
	struct op s;
	uint64_t removed = 99;
	int fd = -1, rc;

	if (coffer_crypto_init() < 0)
		return 99;
	snprintf(dir, sizeof dir, "%s", tap_tmpdir());
	snprintf(store_path, sizeof store_path, "%s/store", dir);
	snprintf(key_path, sizeof key_path, "%s/coffer.key", dir);
	ok(coffer_store_init(store_path, key_path, &st) == 0, "init a store");
	ok(coffer_account_add(st, "a@example.com", 13, &ia) == 0 &&
	       coffer_account_add(st, "b@example.com", 13, &ib) == 0,
	   "two accounts");
	memcpy(acct_a, ia.id, sizeof acct_a);
	memcpy(acct_b, ib.id, sizeof acct_b);
	coffer_account_info_clear(&ia);
	coffer_account_info_clear(&ib);
	coffer_random(b1, sizeof b1);
	coffer_random(b2, sizeof b2);
	coffer_random(b3, sizeof b3);
	coffer_random(b4, sizeof b4);
	coffer_random(gone, sizeof gone);

	ok(run(ref_txn, acct_a, b1, 0, 0) == COFFER_ENOTFOUND, "ref of an unknown blob: ENOTFOUND");
	ok(run(unref_txn, acct_a, b1, 0, 0) == COFFER_ECORRUPT,
	   "unref of an unknown blob: ECORRUPT");

	ok(run(put_txn, acct_a, b1, 1, 0) == 0 && run(put_txn, acct_a, b2, 1, 0) == 0 &&
	       run(put_txn, acct_b, b3, 1, 0) == 0 && run(put_txn, acct_a, gone, 1, 0) == 0,
	   "four blob records (3 for a, 1 for b), each unsnapped");
	make_file(acct_a, b1);
	make_file(acct_a, b2);
	make_file(acct_b, b3);
	ok(file_exists(acct_a, b1) && file_exists(acct_b, b3) && !file_exists(acct_a, gone),
	   "and their files (not for 'gone')");

	ok(run(ref_txn, acct_a, b1, 0, 0) == 0 && run(ref_txn, acct_a, b1, 0, 0) == 0,
	   "two more references to b1");
	s = state(acct_a, b1);
	ok(s.refs == 3 && s.found == 1, "b1: 3 refs, unsnapped, not trash");
	ok(run(ref_txn, acct_b, b1, 0, 0) == COFFER_ENOTFOUND,
	   "b1 under the other account: ENOTFOUND (keys are per account)");
	ok(run(unref_txn, acct_a, b1, 0, 111) == 0 && run(unref_txn, acct_a, b1, 0, 222) == 0,
	   "two unrefs");
	s = state(acct_a, b1);
	ok(s.refs == 1 && s.found == 1, "b1: 1 ref left, still live");
	ok(run(unref_txn, acct_a, b1, 0, 1700000000123456789LL) == 0, "the last unref");
	s = state(acct_a, b1);
	ok(s.refs == 0 && s.found == 2 && s.when == 1700000000123456789ull,
	   "b1: no record, not unsnapped, in the trash with its removal time");
	ok(run(unref_txn, acct_a, b1, 0, 0) == COFFER_ECORRUPT, "unref after that: ECORRUPT");
	ok(run(ref_txn, acct_a, b1, 0, 0) == COFFER_ENOTFOUND, "ref after that: ENOTFOUND");
	ok(file_exists(acct_a, b1), "the file stays until collection");

	ok(run(unref_txn, acct_b, b3, 0, 5) == 0 && run(unref_txn, acct_a, gone, 0, 5) == 0,
	   "trash b3 (account b) and 'gone' (no file)");

	/* a snapshot holds the lock: collection waits */
	ok(coffer_blob_gc_lock_exclusive(st, &fd) == 0 && fd >= 0, "take the gc lock exclusively");
	rc = coffer_blob_collect(st, NULL, &removed);
	ok(rc == 0 && removed == 0, "collect while it is held: 0, nothing removed");
	ok(file_exists(acct_a, b1) && state(acct_a, b1).found == 2,
	   "b1's file and trash entry remain");
	close(fd);

	/* per account */
	ok(coffer_blob_collect(st, acct_b, &removed) == 0 && removed == 1, "collect account b: 1");
	ok(!file_exists(acct_b, b3) && state(acct_b, b3).found == 0, "b3 is gone, file and entry");
	ok(file_exists(acct_a, b1) && state(acct_a, b1).found == 2, "account a's trash untouched");
	ok(coffer_blob_collect(st, NULL, &removed) == 0 && removed == 2,
	   "collect all: 2 (b1, and 'gone' whose file was never there)");
	ok(!file_exists(acct_a, b1) && state(acct_a, b1).found == 0 &&
	       state(acct_a, gone).found == 0,
	   "files unlinked, trash empty");
	ok(file_exists(acct_a, b2) && state(acct_a, b2).refs == 1, "live b2 untouched");
	ok(coffer_blob_collect(st, NULL, NULL) == 0, "collect with nothing to do, NULL counter");

	/* no wrap-around */
	ok(run(put_txn, acct_a, b4, UINT32_MAX, 0) == 0, "a blob at UINT32_MAX refs");
	ok(run(ref_txn, acct_a, b4, 0, 0) == COFFER_ELIMIT && state(acct_a, b4).refs == UINT32_MAX,
	   "one more ref: ELIMIT, count unchanged");

	coffer_store_close(&st);
	return tap_done();
}
