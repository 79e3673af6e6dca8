/*
 * test-reserve.c: the store's space reserve (engine/reserve.h).
 *
 * init allocates STORE/reserve whole (st_blocks, not a sparse size);
 * release hands its blocks back once (1, then 0) and leaves an empty file
 * that counts as released; while released, coffer_reserve_check() refuses
 * (NOSPACE) what would eat into the space it gave back and accepts what
 * leaves it; fill takes it back only when the file system has room for it
 * plus min_free_after, and is a no-op once whole. A store without the file
 * keeps no reserve: nothing is missing and nothing is refused. The full-disk
 * behaviour itself is tests/integration/test-full-disk.sh.
 *
 * The writers of new mail, `coffer deliver` and `coffer import`, both make
 * their blobs with coffer_store_mail_blob_create(). A fake statvfs in the
 * engine/io.h table plays the full disk (releasing the reserve on a roomy
 * disk refuses nothing). With the reserve released: a delivery that fits in
 * one chunk checks the room once (one statvfs), a longer one twice; on a
 * disk with no room beyond what the reserve gave back a delivery is refused
 * (NOSPACE) with no message and no blob file left; an import whose disk
 * fills after three messages stops with NOSPACE keeping its one committed
 * batch (2 messages) and no other blob file, the store verifies, and once
 * there is room again the same import resumes and completes.
 */
#include "engine/account.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/io.h"
#include "engine/message.h"
#include "engine/reserve.h"
#include "engine/store.h"
#include "engine/verify.h"
#include "maildir/deliver.h"
#include "maildir/import.h"
#include "tap.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static uint64_t blocks_bytes(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return UINT64_MAX;
	return (uint64_t)sb.st_blocks * 512;
}

/* ---- the writers of new mail on a full disk ---- */

static struct {
	long calls;      /* statvfs calls seen */
	long room_calls; /* the first this many see the real disk; -1: all */
} fake;

/* The real figures, but after room_calls calls the file system has no room
 * left beyond the space the released reserve gave back. */
static int fake_statvfs(const char *path, struct statvfs *sv)
{
	fake.calls++;
	if (statvfs(path, sv) < 0)
		return -1;
	if (fake.room_calls >= 0 && fake.calls > fake.room_calls)
		sv->f_bavail = COFFER_RESERVE_BYTES / sv->f_frsize;
	return 0;
}

static const struct coffer_io_ops fake_ops = { .statvfs = fake_statvfs };

static void play_disk(long room_calls)
{
	fake.calls = 0;
	fake.room_calls = room_calls;
	coffer_io_set_ops(&fake_ops);
}

static int nfiles;
static int count_file(const char *p, const struct stat *sb, int type, struct FTW *f)
{
	(void)p, (void)f;
	nfiles += type == FTW_F && sb->st_size > 0;
	return 0;
}

/* Blob files with content (the blob pool's files are empty: engine/pool.h). */
static int blob_files(const char *store)
{
	char p[4200];

	snprintf(p, sizeof p, "%s/blobs", store);
	nfiles = 0;
	nftw(p, count_file, 16, FTW_PHYS);
	return nfiles;
}

static int count_msg(const struct coffer_message *m, void *arg)
{
	(void)m;
	++*(int *)arg;
	return 0;
}

static int inbox_count(struct coffer_store *st, const char *acct)
{
	struct coffer_mailbox *mb = NULL;
	uint32_t fid;
	int n = 0, rc;

	rc = coffer_mailbox_open(st, acct, strlen(acct), &mb);
	if (rc == 0)
		rc = coffer_folder_find(mb, "INBOX", &fid);
	if (rc == 0)
		rc = coffer_message_list(mb, fid, count_msg, &n);
	coffer_mailbox_close(&mb);
	return rc == COFFER_ENOTFOUND ? 0 : rc < 0 ? -1 : n;
}

static int write_file(const char *path, const char *text, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int good = fd >= 0 && write(fd, text, n) == (ssize_t)n;

	if (fd >= 0)
		close(fd);
	return good ? 0 : -1;
}

/* A message of n bytes (at least 64) as a file to deliver from. */
static int deliver_bytes(struct coffer_store *st, const char *acct, size_t n)
{
	struct coffer_deliver_result res;
	char path[4200], *m = malloc(n);
	int fd, rc = -1;

	snprintf(path, sizeof path, "%s/input.eml", tap_tmpdir());
	if (m == NULL)
		return -1;
	memset(m, 'x', n);
	memcpy(m, "From: r@example.org\nSubject: reserve\n\n", 39);
	m[n - 1] = '\n';
	if (write_file(path, m, n) == 0 && (fd = open(path, O_RDONLY)) >= 0) {
		rc = coffer_deliver(st, acct, NULL, fd, &res);
		close(fd);
	}
	free(m);
	return rc;
}

static int store_sound(struct coffer_store *st)
{
	struct coffer_verify_opts o = { 0 };
	struct coffer_verify_stats s;

	memset(&s, 0, sizeof s);
	return coffer_verify_run(st, &o, &s) == 0 && s.problems == 0;
}

static void test_mail_writers(struct coffer_store *st, const char *store)
{
	static const char acct[] = "mail@example.org";
	struct coffer_import_opts io = { .batch_messages = 2 };
	struct coffer_import_stats is;
	char maildir[4200], p[4300];
	int rc, files;

	ok(coffer_account_add(st, acct, strlen(acct), NULL) == 0, "an account for new mail");
	ok(coffer_reserve_release(st) == 1, "the reserve is released");

	/* a roomy disk: one check per message that fits in a chunk */
	play_disk(-1);
	rc = deliver_bytes(st, acct, 2000);
	coffer_io_set_ops(NULL);
	ok(rc == 0 && fake.calls == 1,
	   "released, with room: a 2000-byte delivery checks the "
	   "room once (%ld statvfs)",
	   fake.calls);
	play_disk(-1);
	rc = deliver_bytes(st, acct, 100000);
	coffer_io_set_ops(NULL);
	ok(rc == 0 && fake.calls == 2,
	   "a 100000-byte one (two chunks) again before its commit "
	   "(%ld statvfs)",
	   fake.calls);

	/* a full disk */
	files = blob_files(store);
	play_disk(0);
	rc = deliver_bytes(st, acct, 2000);
	coffer_io_set_ops(NULL);
	ok(rc == COFFER_ENOSPACE && strstr(coffer_errmsg(), "no space left for new mail"),
	   "no room beyond the released reserve: deliver is refused (%s)", coffer_errmsg());
	ok(inbox_count(st, acct) == 2 && blob_files(store) == files,
	   "nothing of it is left (2 messages, %d blob files)", blob_files(store));

	/* import: room for three messages, then none */
	snprintf(maildir, sizeof maildir, "%s/maildir", tap_tmpdir());
	mkdir(maildir, 0700);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/%s", maildir, i == 0 ? "cur" : i == 1 ? "new" : "tmp");
		mkdir(p, 0700);
	}
	for (int i = 0; i < 5; i++) {
		char text[200];
		int n = snprintf(text, sizeof text,
		                 "From: i%d@example.org\nSubject: %d\n\nbody %d\n", i, i, i);

		snprintf(p, sizeof p, "%s/cur/17000000%02d.M%dP1.host:2,S", maildir, i, i);
		if (write_file(p, text, (size_t)n) < 0)
			tap_diag("cannot write %s", p);
	}
	play_disk(3);
	memset(&is, 0, sizeof is);
	rc = coffer_import_maildir(st, acct, maildir, &io, &is);
	coffer_io_set_ops(NULL);
	ok(rc == COFFER_ENOSPACE && strstr(coffer_errmsg(), "import into mail@example.org") &&
	       strstr(coffer_errmsg(), "no space left for new mail"),
	   "the disk fills after 3 messages: import stops with NOSPACE, so exit 75 (%s)",
	   coffer_errmsg());
	ok(is.imported == 2 && inbox_count(st, acct) == 4,
	   "its committed batch stays (%llu imported, %d in INBOX with the 2 deliveries)",
	   (unsigned long long)is.imported, inbox_count(st, acct));
	ok(blob_files(store) == files + 2,
	   "no blob of the dropped batch is left (%d files, want %d)", blob_files(store),
	   files + 2);
	coffer_import_stats_free(&is);
	ok(store_sound(st), "the store verifies");

	/* room again */
	play_disk(-1);
	memset(&is, 0, sizeof is);
	rc = coffer_import_maildir(st, acct, maildir, &io, &is);
	coffer_io_set_ops(NULL);
	ok(rc == 0 && is.imported == 3 && is.already == 2 && inbox_count(st, acct) == 7,
	   "with room again the same import resumes: %llu more, %llu already there (rc %d)",
	   (unsigned long long)is.imported, (unsigned long long)is.already, rc);
	ok(blob_files(store) == files + 5 && store_sound(st), "%d blob files, the store verifies",
	   blob_files(store));
	coffer_import_stats_free(&is);
}

int main(void)
{
	struct coffer_store *st = NULL;
	char store[4096], key[4096], res[4200];
	uint64_t free_bytes;
	int rc;

	if (coffer_crypto_init() < 0)
		return 1;
	snprintf(store, sizeof store, "%s/store", tap_tmpdir());
	snprintf(key, sizeof key, "%s/keys/coffer.key", tap_tmpdir());
	snprintf(res, sizeof res, "%s/" COFFER_RESERVE_NAME, store);
	rc = coffer_store_init(store, key, &st);
	ok(rc == 0, "init a store: %s", rc ? coffer_errmsg() : "ok");
	if (rc < 0)
		return tap_done();
	free_bytes = coffer_reserve_free_bytes(st);
	ok(free_bytes != UINT64_MAX, "free space is known (%llu bytes)",
	   (unsigned long long)free_bytes);
	if (free_bytes < 3 * (uint64_t)COFFER_RESERVE_BYTES) {
		tap_diag("too little free space here to test the reserve");
		coffer_store_close(&st);
		return tap_done();
	}
	ok(blocks_bytes(res) >= COFFER_RESERVE_BYTES, "init allocates the reserve (%llu bytes)",
	   (unsigned long long)blocks_bytes(res));
	ok(coffer_reserve_missing(st) == 0, "nothing is missing");
	ok(coffer_reserve_check(st, UINT64_MAX / 4) == 0, "a whole reserve refuses nothing");
	ok(coffer_reserve_fill(st, 0) == 0, "fill: a no-op when whole");

	ok(coffer_reserve_release(st) == 1, "release: space handed back");
	ok(blocks_bytes(res) == 0, "the file is left empty");
	ok(coffer_reserve_release(st) == 0, "release again: nothing to hand back");
	ok(coffer_reserve_missing(st) == COFFER_RESERVE_BYTES, "released: all of it is missing");
	ok(coffer_reserve_check(st, 0) == 0, "check: room left beyond the released reserve");
	rc = coffer_reserve_check(st, coffer_reserve_free_bytes(st));
	ok(rc == COFFER_ENOSPACE, "check: what would eat into it is NOSPACE (%s)", coffer_errmsg());

	ok(coffer_reserve_fill(st, UINT64_MAX / 4) == 0,
	   "fill: not without min_free_after to spare");
	ok(coffer_reserve_missing(st) == COFFER_RESERVE_BYTES, "still released");
	ok(coffer_reserve_fill(st, COFFER_RESERVE_BYTES) == 1,
	   "fill: taken back when there is room");
	ok(coffer_reserve_missing(st) == 0 && blocks_bytes(res) >= COFFER_RESERVE_BYTES,
	   "whole again");

	ok(unlink(res) == 0, "remove the file");
	ok(coffer_reserve_missing(st) == 0, "no file: a store that keeps no reserve misses none");
	ok(coffer_reserve_check(st, UINT64_MAX / 4) == 0, "and refuses nothing");
	ok(coffer_reserve_release(st) == 0, "release without a file: nothing to hand back");
	ok(coffer_reserve_fill(st, 0) == 1, "fill makes a new one");

	test_mail_writers(st, store);
	coffer_store_close(&st);
	return tap_done();
}
