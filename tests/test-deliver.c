/*
 * test-deliver.c: local delivery (maildir/deliver.h), read back through
 * engine/message.h.
 *
 * Through pipes and regular files: ordinary mail, an mbox "From " first line
 * (kept), CRLF, bare LF, NUL bytes, a 1 MiB header line, no header/body
 * separator, no final newline, sizes around the 64 KiB chunk, a 3 MiB
 * message: all read back byte for byte. Refused, with nothing left on disk:
 * empty input and "hello\n" (EBADMSG), one byte over max_message_size
 * (ELIMIT; exactly the limit is stored), an unknown account (ENOACCOUNT), a
 * terminated one (ETERMINATED). UIDs are 1, 2, 3 in order, a missing folder
 * is created, delivery needs no key file, and 8 processes delivering 25
 * messages each to one folder get 200 distinct uids 1..200, all readable.
 * One delivery's boxes (blob key wrap type 3, the new folder's name and the
 * delivery event, tag 3) carry one ephemeral key, and all open.
 */
#include "engine/account.h"
#include "engine/config.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/events.h"
#include "engine/folder.h"
#include "engine/io.h"
#include "engine/message.h"
#include "engine/store.h"
#include "maildir/deliver.h"
#include "tap.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[2048], store_path[PATH_MAX], key_path[PATH_MAX], missing_key[PATH_MAX];
static struct coffer_store *st;

static int nfiles;
static int count_one(const char *p, const struct stat *sb, int type, struct FTW *f)
{
	if (type == FTW_F && sb->st_size > 0)
		nfiles++;
	return 0;
}

/* Files under STORE/blobs with content (the blob pool's files, made ahead
 * for writers, are empty: engine/pool.h). */
static int blob_files(void)
{
	char p[PATH_MAX + 16];

	snprintf(p, sizeof p, "%s/blobs", store_path);
	nfiles = 0;
	nftw(p, count_one, 16, FTW_PHYS);
	return nfiles;
}

/* Writes n bytes into a pipe from a child process (so any size works) and
 * delivers from the read end. */
static int deliver_pipe(const char *acct, const char *folder, const void *msg, size_t n,
                        struct coffer_deliver_result *res)
{
	int p[2], rc, status;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		const char *c = msg;
		size_t off = 0;

		close(p[0]);
		while (off < n) {
			ssize_t w = write(p[1], c + off, n - off > 7000 ? 7000 : n - off);

			if (w <= 0)
				_exit(1);
			off += (size_t)w;
		}
		_exit(0);
	}
	close(p[1]);
	rc = coffer_deliver(st, acct, folder, p[0], res);
	/* a refused delivery may stop reading early: let the writer go */
	close(p[0]);
	waitpid(pid, &status, 0);
	return rc;
}

static int deliver_file(const char *acct, const char *folder, const void *msg, size_t n,
                        struct coffer_deliver_result *res)
{
	char path[PATH_MAX + 16];
	int fd, rc;

	snprintf(path, sizeof path, "%s/input.eml", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, msg, n) != (ssize_t)n)
		return -1;
	lseek(fd, 0, SEEK_SET);
	rc = coffer_deliver(st, acct, folder, fd, res);
	close(fd);
	unlink(path);
	return rc;
}

/* Reads message (fid, uid) of acct back and compares it with want. */
static int reads_back(const char *acct, uint32_t fid, uint32_t uid, const void *want, size_t n)
{
	struct coffer_mailbox *mb = NULL;
	struct coffer_message_reader *r = NULL;
	unsigned char *got = malloc(n + 65536);
	size_t len = 0, k;
	int rc, same = 0;

	rc = coffer_mailbox_open(st, acct, strlen(acct), &mb);
	if (rc == 0)
		rc = coffer_message_open(mb, fid, "F", uid, &r);
	while (rc == 0) {
		rc = coffer_message_read(r, got + len,
		                         n + 65536 - len > 10000 ? 10000 : n + 65536 - len, &k);
		if (rc < 0 || k == 0)
			break;
		len += k;
		if (len > n)
			break;
	}
	if (rc == 0 && len == n && memcmp(got, want, n) == 0 && coffer_message_record(r)->size == n)
		same = 1;
	if (rc < 0)
		tap_diag("read back %u/%u: %s", fid, uid, coffer_errmsg());
	else if (!same)
		tap_diag("read back %u/%u: %zu bytes, want %zu", fid, uid, len, n);
	coffer_message_close(&r);
	coffer_mailbox_close(&mb);
	free(got);
	return same;
}

static void round_trip(const char *what, const void *msg, size_t n)
{
	struct coffer_deliver_result res;
	int rc;

	rc = deliver_pipe("alice@example.com", NULL, msg, n, &res);
	ok(rc == 0 && res.size == n, "%s (%zu bytes): delivered through a pipe: %s", what, n,
	   rc ? coffer_errmsg() : "ok");
	ok(rc == 0 && reads_back("alice@example.com", res.folder_id, res.uid, msg, n),
	   "%s: read back byte for byte", what);
	rc = deliver_file("alice@example.com", NULL, msg, n, &res);
	ok(rc == 0 && res.size == n &&
	       reads_back("alice@example.com", res.folder_id, res.uid, msg, n),
	   "%s: delivered from a regular file and read back", what);
}

static void test_faithful(void)
{
	static const char plain[] =
	    "From: a@example.org\nTo: alice@example.com\nSubject: hi\n\nHello.\n";
	static const char mbox[] = "From sender@example.org Mon Jan  1 00:00:00 2024\n"
				   "From: sender@example.org\nSubject: mbox\n\nbody\n";
	static const char crlf[] =
	    "From: a@example.org\r\nSubject: crlf\r\n\r\nline 1\r\nline 2\r\n";
	static const char nul[] = "Subject: a\0b\n\nbo\0dy\0\n";
	static const char nosep[] = "Subject: only headers\nFrom: a@example.org\n";
	static const char nonl[] = "Subject: no newline at all";
	static const char mixed[] = "Subject: mixed\r\nX: y\n\r\nbody\rstray CR\n";
	struct coffer_deliver_result res;
	char *big;
	size_t n;

	ok(deliver_pipe("alice@example.com", NULL, plain, sizeof plain - 1, &res) == 0 &&
	       res.folder_id == COFFER_FOLDER_INBOX && res.uid == 1,
	   "first delivery: INBOX uid 1");
	ok(deliver_pipe("alice@example.com", NULL, plain, sizeof plain - 1, &res) == 0 &&
	       res.uid == 2,
	   "second: uid 2");
	ok(deliver_pipe("alice@example.com", "INBOX", plain, sizeof plain - 1, &res) == 0 &&
	       res.uid == 3,
	   "third (folder \"INBOX\"): uid 3");
	ok(reads_back("alice@example.com", 0, 1, plain, sizeof plain - 1) &&
	       reads_back("alice@example.com", 0, 3, plain, sizeof plain - 1),
	   "uids 1 and 3 read back");

	round_trip("mbox 'From ' first line, kept", mbox, sizeof mbox - 1);
	round_trip("CRLF mail", crlf, sizeof crlf - 1);
	round_trip("bare-LF mail", plain, sizeof plain - 1);
	round_trip("NUL bytes", nul, sizeof nul - 1);
	round_trip("no header/body separator", nosep, sizeof nosep - 1);
	round_trip("no final newline", nonl, sizeof nonl - 1);
	round_trip("mixed line endings and a stray CR", mixed, sizeof mixed - 1);

	/* a 1 MiB header line */
	n = (1u << 20) + 64;
	big = malloc(n);
	memcpy(big, "X-Long: ", 8);
	for (size_t i = 8; i < (1u << 20); i++)
		big[i] = (char)('a' + i % 26);
	memcpy(big + (1u << 20), "\nSubject: long\n\nbody\n", 21);
	round_trip("a 1 MiB header line", big, (1u << 20) + 21);
	/* a 1 MiB first line that is a header field starting after an mbox line */
	free(big);

	/* chunk boundaries and a multi-chunk message */
	{
		static const size_t sizes[] = { 65535, 65536, 65537, 131072, 3u << 20 };

		for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
			char what[64];

			n = sizes[s];
			big = malloc(n);
			memcpy(big, "Subject: size\n\n", 15);
			srand((unsigned)n);
			for (size_t i = 15; i < n; i++)
				big[i] = (char)(s % 2 ? (size_t)rand()
				                      : 'x' + (i % 3)); /* random or compressible */
			snprintf(what, sizeof what, "%zu-byte message", n);
			round_trip(what, big, n);
			free(big);
		}
	}
}

static void test_refused(void)
{
	struct coffer_deliver_result res;
	int before = blob_files(), rc;

	ok(deliver_pipe("alice@example.com", NULL, "", 0, &res) == COFFER_EBADMSG,
	   "empty input: EBADMSG");
	ok(strstr(coffer_errmsg(), "empty") != NULL, "the detail says so: %s", coffer_errmsg());
	ok(deliver_file("alice@example.com", NULL, "", 0, &res) == COFFER_EBADMSG,
	   "empty file: EBADMSG");
	ok(deliver_pipe("alice@example.com", NULL, "hello\n", 6, &res) == COFFER_EBADMSG,
	   "\"hello\\n\": EBADMSG");
	ok(deliver_pipe("alice@example.com", NULL, "\n\nSubject: x\n", 13, &res) == COFFER_EBADMSG,
	   "leading blank lines: EBADMSG");
	ok(deliver_pipe("alice@example.com", NULL, "From x\nhello\n", 13, &res) == COFFER_EBADMSG,
	   "an mbox line followed by a non-header: EBADMSG");
	ok(deliver_pipe("alice@example.com", NULL, ": no name\n\nb\n", 13, &res) == COFFER_EBADMSG,
	   "a field with an empty name: EBADMSG");
	ok(blob_files() == before, "refused input leaves no blob file (%d)", blob_files());

	rc = deliver_pipe("nobody@example.com", NULL, "Subject: x\n\ny\n", 14, &res);
	ok(rc == COFFER_ENOACCOUNT, "unknown account: ENOACCOUNT (%d)", rc);
	ok(strstr(coffer_errmsg(), "nobody@example.com") != NULL, "naming it: %s", coffer_errmsg());
	ok(deliver_pipe("not an address", NULL, "Subject: x\n\ny\n", 14, &res) == COFFER_EINVAL,
	   "an invalid account name: EINVAL");
	ok(deliver_pipe("alice@example.com", "a/../b", "Subject: x\n\ny\n", 14, &res) ==
	       COFFER_EINVAL,
	   "an invalid folder name: EINVAL");
	ok(deliver_pipe("alice@example.com", "bad\nname", "Subject: x\n\ny\n", 14, &res) ==
	       COFFER_EINVAL,
	   "a folder name with a newline: EINVAL");

	ok(coffer_account_terminate(st, "bob@example.org", 15) == 0, "terminate bob");
	rc = deliver_pipe("bob@example.org", NULL, "Subject: x\n\ny\n", 14, &res);
	ok(rc == COFFER_ETERMINATED, "delivery to a terminated account: ETERMINATED (%d)", rc);
	ok(strstr(coffer_errmsg(), "bob@example.org") != NULL, "naming it: %s", coffer_errmsg());
	ok(blob_files() == before, "and no blob is left behind");
	coffer_account_reactivate(st, "bob@example.org", 15);
	ok(deliver_pipe("bob@example.org", NULL, "Subject: x\n\ny\n", 14, &res) == 0 &&
	       res.uid == 1,
	   "after reactivation bob gets uid 1");
}

static int set_max_size(uint64_t max)
{
	struct coffer_config cfg;
	char conf[PATH_MAX + 32];
	int rc;

	snprintf(conf, sizeof conf, "%s/coffer.conf", store_path);
	coffer_config_defaults(&cfg);
	rc = coffer_config_load(&cfg, conf);
	if (rc == 0) {
		cfg.max_message_size = max;
		rc = coffer_config_save(&cfg, conf);
	}
	coffer_config_free(&cfg);
	coffer_store_close(&st);
	if (rc == 0)
		rc = coffer_store_open(store_path, NULL, &st);
	return rc;
}

static void test_limit(void)
{
	struct coffer_deliver_result res;
	char msg[1025 + 70000];
	int before, rc;

	ok(set_max_size(1024) == 0 && coffer_store_config(st)->max_message_size == 1024,
	   "max_message_size = 1K in coffer.conf");
	memcpy(msg, "Subject: limit\n\n", 16);
	memset(msg + 16, 'L', sizeof msg - 16);
	before = blob_files();
	rc = deliver_pipe("alice@example.com", NULL, msg, 1024, &res);
	ok(rc == 0 && res.size == 1024, "exactly 1024 bytes is stored");
	ok(rc == 0 && reads_back("alice@example.com", res.folder_id, res.uid, msg, 1024),
	   "and reads back");
	before = blob_files();
	rc = deliver_pipe("alice@example.com", NULL, msg, 1025, &res);
	ok(rc == COFFER_ELIMIT, "1025 bytes: ELIMIT (%d)", rc);
	ok(strstr(coffer_errmsg(), "1024") != NULL, "the detail states the limit: %s",
	   coffer_errmsg());
	ok(blob_files() == before, "no blob file is left behind");
	rc = deliver_file("alice@example.com", NULL, msg, 1025, &res);
	ok(rc == COFFER_ELIMIT && blob_files() == before, "from a file too: ELIMIT, no blob");
	rc = deliver_pipe("alice@example.com", NULL, msg, sizeof msg, &res);
	ok(rc == COFFER_ELIMIT && blob_files() == before,
	   "71 KiB (past one chunk): ELIMIT, no blob");
	ok(set_max_size(256u << 20) == 0, "limit back to 256 MiB");
}

/* The raw boxes of one delivery: the blob id of (fid, uid), the folder's
 * name box and the ephemeral keys of the account's tag-3 event boxes. */
struct raw {
	const unsigned char *acct;
	uint32_t fid, uid;
	unsigned char blob_id[COFFER_ID_BYTES];
	unsigned char fbox[256];
	size_t fbox_len;
	unsigned char epk[64][32];
	int nepk;
};

static int raw_event(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct raw *r = arg;
	const unsigned char *p = v;

	if (vl > 33 && p[0] == COFFER_BOX_SHARED && r->nepk < 64)
		memcpy(r->epk[r->nepk++], p + 1, 32);
	return 0;
}

static int raw_txn(struct coffer_txn *t, void *arg)
{
	struct raw *r = arg;
	struct coffer_message_rec mrec;
	struct coffer_folder_rec frec;
	int rc;

	rc = coffer_message_get_txn(t, r->acct, r->fid, r->uid, &mrec);
	if (rc == 0)
		rc = coffer_folder_get_txn(t, r->acct, r->fid, &frec);
	if (rc == 0 && frec.name_box_len > sizeof r->fbox)
		rc = COFFER_ELIMIT;
	if (rc < 0)
		return rc;
	memcpy(r->blob_id, mrec.blob_id, COFFER_ID_BYTES);
	memcpy(r->fbox, frec.name_box, r->fbox_len = frec.name_box_len);
	return coffer_txn_scan(t, COFFER_DB_EVENTS, r->acct, COFFER_ID_BYTES, raw_event, r);
}

static int count_event(const struct coffer_event *ev, void *arg)
{
	int *n = arg;

	*n += ev->type == COFFER_EVENT_DELIVERY;
	return 0;
}

/* Message (fid, uid) of alice, delivered into a folder it created: one
 * ephemeral key in its blob's key wrap (type 3), the folder's name box and
 * one delivery event (tag 3); every event of the account opens. */
static void check_one_sealer(uint32_t fid, uint32_t uid)
{
	struct coffer_mailbox *mb = NULL;
	struct coffer_buf path = COFFER_BUF_INIT;
	struct raw *r = calloc(1, sizeof *r);
	unsigned char hdr[62];
	size_t got = 0;
	int fd = -1, same = 0, rc, deliveries = 0;

	rc = coffer_mailbox_open(st, "alice@example.com", 17, &mb);
	if (rc == 0) {
		r->acct = coffer_mailbox_id(mb);
		r->fid = fid;
		r->uid = uid;
		rc = coffer_index_view(coffer_store_index(st), raw_txn, r);
	}
	if (rc == 0)
		rc = coffer_store_blob_path(st, r->acct, r->blob_id, &path);
	if (rc == 0)
		fd = open(coffer_buf_str(&path), O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		rc = coffer_io_pread_full(fd, hdr, sizeof hdr, 0, &got);
	ok(rc == 0 && got == sizeof hdr && hdr[6] == 3 && hdr[28] == 80,
	   "deliver: the blob's key wrap is type 3, 80 bytes");
	ok(r->fbox_len > 33 && r->fbox[0] == COFFER_BOX_SHARED && got == sizeof hdr &&
	       memcmp(r->fbox + 1, hdr + 30, 32) == 0,
	   "deliver: the new folder's name box is tag 3 with the blob's ephemeral key");
	for (int i = 0; got == sizeof hdr && i < r->nepk; i++)
		same += memcmp(r->epk[i], hdr + 30, 32) == 0;
	ok(same == 1, "deliver: so is exactly one delivery event (of %d tag 3 events)", r->nepk);
	/* before ok(): its arguments are evaluated in any order */
	rc = mb != NULL ? coffer_events_list(mb, 0, 0, count_event, &deliveries) : -1;
	ok(rc == 0 && deliveries == r->nepk, "deliver: all %d delivery events open", deliveries);
	if (fd >= 0)
		close(fd);
	coffer_buf_free(&path);
	coffer_mailbox_close(&mb);
	free(r);
}

static void test_new_folder_and_no_key(void)
{
	struct coffer_deliver_result res, res2;
	struct coffer_mailbox *mb = NULL;
	uint32_t fid = 0;
	static const char msg[] = "Subject: to a new folder\n\nbody\n";
	int rc;

	ok(deliver_pipe("alice@example.com", "Lists.new", msg, sizeof msg - 1, &res) == 0 &&
	       res.folder_id != COFFER_FOLDER_INBOX && res.uid == 1,
	   "delivery creates a missing folder (uid 1 there)");
	ok(deliver_pipe("alice@example.com", "Lists/new", msg, sizeof msg - 1, &res2) == 0 &&
	       res2.folder_id == res.folder_id && res2.uid == 2,
	   "the other spelling reaches the same folder (uid 2)");
	ok(coffer_mailbox_open(st, "alice@example.com", 17, &mb) == 0 &&
	       coffer_folder_find(mb, "Lists/new", &fid) == 0 && fid == res.folder_id,
	   "the folder is found by name");
	coffer_mailbox_close(&mb);
	ok(reads_back("alice@example.com", res.folder_id, 1, msg, sizeof msg - 1),
	   "and reads back");
	check_one_sealer(res.folder_id, 1);

	/* no key file */
	coffer_store_close(&st);
	ok(coffer_store_open(store_path, missing_key, &st) == 0, "reopen with a missing key file");
	rc = deliver_pipe("alice@example.com", "Keyless", msg, sizeof msg - 1, &res);
	ok(rc == 0, "delivery (into a new folder) needs no key file: %s",
	   rc ? coffer_errmsg() : "ok");
	ok(coffer_mailbox_open(st, "alice@example.com", 17, &mb) == COFFER_ENOTFOUND,
	   "while reading fails cleanly (ENOTFOUND)");
	coffer_store_close(&st);
	coffer_store_open(store_path, NULL, &st);
	ok(reads_back("alice@example.com", res.folder_id, res.uid, msg, sizeof msg - 1),
	   "with the key file, the keyless delivery reads back");
}

struct seen {
	int n, bad;
	uint32_t uids[256];
};

static int collect_uid(const struct coffer_message *m, void *arg)
{
	struct seen *s = arg;

	if (s->n < 256)
		s->uids[s->n++] = m->uid;
	else
		s->bad++;
	return 0;
}

static void test_concurrent(void)
{
	enum { PROCS = 8, EACH = 25 };
	pid_t pids[PROCS];
	int failed = 0;
	struct coffer_mailbox *mb = NULL;
	uint32_t fid = 0;
	struct seen s;
	char *got = calloc(PROCS * EACH, 1);

	/* LMDB environments must not cross fork(): close, fork, reopen */
	coffer_store_close(&st);
	for (int c = 0; c < PROCS; c++) {
		pids[c] = fork();
		if (pids[c] == 0) {
			struct coffer_store *cst = NULL;
			int bad = 0;

			if (coffer_store_open(store_path, missing_key, &cst) < 0)
				_exit(2);
			st = cst;
			for (int i = 0; i < EACH; i++) {
				char msg[128];
				struct coffer_deliver_result res;
				int n = snprintf(msg, sizeof msg,
				                 "Subject: proc %d msg %d\n\nfrom %02d-%02d\n", c,
				                 i, c, i);

				if (deliver_pipe("carol@example.net", "Shared", msg, (size_t)n,
				                 &res) < 0)
					bad++;
			}
			coffer_store_close(&cst);
			_exit(bad ? 1 : 0);
		}
	}
	for (int c = 0; c < PROCS; c++) {
		int status = 0;

		if (pids[c] < 0 || waitpid(pids[c], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			failed++;
	}
	ok(failed == 0, "8 processes delivered 25 messages each to one folder (%d failed)", failed);
	ok(coffer_store_open(store_path, NULL, &st) == 0, "reopen");
	ok(coffer_mailbox_open(st, "carol@example.net", 17, &mb) == 0 &&
	       coffer_folder_find(mb, "Shared", &fid) == 0,
	   "the folder exists once");
	memset(&s, 0, sizeof s);
	ok(mb && coffer_message_list(mb, fid, collect_uid, &s) == 0 && s.n == PROCS * EACH,
	   "200 messages listed (%d)", s.n);
	{
		int good = s.n == PROCS * EACH;

		for (int i = 0; good && i < s.n; i++)
			if (s.uids[i] != (uint32_t)i + 1)
				good = 0;
		ok(good, "uids are exactly 1..200, distinct and in order");
	}
	/* all readable, and each (process, message) pair exactly once */
	{
		int unreadable = 0, dup = 0;

		for (int i = 0; mb && i < s.n; i++) {
			struct coffer_message_reader *r = NULL;
			char buf[256];
			size_t len = 0, k;
			int c, m, rc;

			rc = coffer_message_open(mb, fid, "Shared", s.uids[i], &r);
			while (rc == 0 &&
			       (rc = coffer_message_read(r, buf + len, sizeof buf - 1 - len, &k)) ==
			           0 &&
			       k > 0)
				len += k;
			buf[len] = '\0';
			coffer_message_close(&r);
			if (rc < 0 || sscanf(buf, "Subject: proc %d msg %d", &c, &m) != 2 ||
			    c < 0 || c >= PROCS || m < 0 || m >= EACH) {
				unreadable++;
				continue;
			}
			if (got[c * EACH + m]++)
				dup++;
		}
		ok(unreadable == 0 && dup == 0,
		   "all 200 read back, each message once (%d bad, %d dup)", unreadable, dup);
	}
	coffer_mailbox_close(&mb);
	free(got);
}

int main(void)
{
	int rc;

	if (coffer_crypto_init() < 0)
		return 99;
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof dir, "%s", tap_tmpdir());
	snprintf(store_path, sizeof store_path, "%s/store", dir);
	snprintf(key_path, sizeof key_path, "%s/coffer.key", dir);
	snprintf(missing_key, sizeof missing_key, "%s/missing.key", dir);
	rc = coffer_store_init(store_path, key_path, &st);
	ok(rc == 0, "init a store");
	ok(coffer_account_add(st, "alice@example.com", 17, NULL) == 0 &&
	       coffer_account_add(st, "bob@example.org", 15, NULL) == 0 &&
	       coffer_account_add(st, "carol@example.net", 17, NULL) == 0,
	   "add alice, bob and carol");
	test_faithful();
	test_refused();
	test_limit();
	test_new_folder_and_no_key();
	test_concurrent();
	coffer_store_close(&st);
	return tap_done();
}
