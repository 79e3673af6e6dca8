/*
 * test-verify.c: engine/verify.c on real stores made in a temporary
 * directory: a sound store; the four kinds of blob damage (a flipped byte, a
 * truncation, a deleted blob, a stray file) reported exactly, with an orphan
 * younger than the grace period pending; old orphans; --repair removing
 * orphans, moving strays to lost+found, collecting the trash and leaving
 * damaged and referenced blobs alone; a second run passing after a repair of
 * repairable problems only; index damage (missing name entry, uidnext,
 * refcount, an account key that no longer unwraps); NAME mode.
 */
#include "tap.h"

#include "engine/account.h"
#include "engine/blob.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/index.h"
#include "engine/message.h"
#include "engine/record.h"
#include "engine/store.h"
#include "engine/verify.h"
#include "maildir/deliver.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ALICE "alice@example.com"
#define BOB "bob@example.org"

struct seen {
	char *account, *folder, *blob, *problem, *repair;
	uint32_t uid;
	int pending;
};

struct run {
	struct seen v[64];
	size_t n;
	struct coffer_verify_stats stats;
	int rc;
};

static int collect(const struct coffer_verify_problem *p, void *arg)
{
	struct run *r = arg;
	struct seen *s;

	tap_diag("%s%s | %s | %u | %s | %s%s%s", p->pending ? "pending: " : "",
	         p->account ? p->account : "-", p->folder ? p->folder : "-", p->uid,
	         p->blob ? p->blob : "-", p->problem, p->repair ? " | repaired: " : "",
	         p->repair ? p->repair : "");
	if (r->n == sizeof r->v / sizeof r->v[0])
		return 0;
	s = &r->v[r->n++];
	s->account = p->account ? strdup(p->account) : NULL;
	s->folder = p->folder ? strdup(p->folder) : NULL;
	s->blob = p->blob ? strdup(p->blob) : NULL;
	s->problem = strdup(p->problem);
	s->repair = p->repair ? strdup(p->repair) : NULL;
	s->uid = p->uid;
	s->pending = p->pending;
	return 0;
}

static void run_free(struct run *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].account);
		free(r->v[i].folder);
		free(r->v[i].blob);
		free(r->v[i].problem);
		free(r->v[i].repair);
	}
	memset(r, 0, sizeof *r);
}

static void verify(struct coffer_store *st, const char *account, int repair, struct run *r)
{
	struct coffer_verify_opts o;

	run_free(r);
	memset(&o, 0, sizeof o);
	o.account = account;
	o.repair = repair;
	o.problem = collect;
	o.problem_arg = r;
	tap_diag("verify %s%s", account ? account : "(all)", repair ? " --repair" : "");
	r->rc = coffer_verify_run(st, &o, &r->stats);
}

static const struct seen *find(const struct run *r, const char *account, const char *folder,
                               uint32_t uid, const char *problem_start)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct seen *s = &r->v[i];

		if ((account == NULL) != (s->account == NULL) ||
		    (account && strcmp(account, s->account) != 0))
			continue;
		if ((folder == NULL) != (s->folder == NULL) ||
		    (folder && strcmp(folder, s->folder)))
			continue;
		if (s->uid == uid && strncmp(s->problem, problem_start, strlen(problem_start)) == 0)
			return s;
	}
	return NULL;
}

static int deliver(struct coffer_store *st, const char *name, const char *folder, int i,
                   struct coffer_deliver_result *res)
{
	char text[512];
	int fd, len, rc;

	len = snprintf(text, sizeof text,
	               "From: Carol <carol@example.net>\nTo: %s\nSubject: test %d\n"
	               "Message-ID: <%d.test@example.net>\n\nBody of message %d.\n%s",
	               name, i, i, i,
	               i % 2 ? "An odd one, a little longer than the others.\n" : "");
	fd = memfd_create("msg", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (write(fd, text, (size_t)len) != len || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	rc = coffer_deliver(st, name, folder, fd, res);
	close(fd);
	return rc;
}

static void account_id(struct coffer_store *st, const char *name, unsigned char *id)
{
	struct coffer_account_info info;

	if (coffer_account_show(st, name, strlen(name), &info) == 0)
		memcpy(id, info.id, COFFER_ID_BYTES);
	coffer_account_info_clear(&info);
}

struct get_args {
	const unsigned char *acct;
	uint32_t fid, uid;
	struct coffer_message_rec rec;
};

static int get_txn(struct coffer_txn *t, void *arg)
{
	struct get_args *a = arg;

	return coffer_message_get_txn(t, a->acct, a->fid, a->uid, &a->rec);
}

/* The blob path and hex id of a message. */
static void blob_of(struct coffer_store *st, const unsigned char *acct, uint32_t fid, uint32_t uid,
                    struct coffer_buf *path, char hex[33])
{
	struct get_args a = { acct, fid, uid, { { 0 }, 0, 0, 0, 0, 0, 0, NULL, 0 } };

	coffer_buf_reset(path);
	if (coffer_index_view(coffer_store_index(st), get_txn, &a) == 0) {
		coffer_store_blob_path(st, acct, a.rec.blob_id, path);
		coffer_hex(hex, a.rec.blob_id, COFFER_ID_BYTES);
	}
}

static off_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static int exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

static void flip_byte(const char *path, off_t off)
{
	unsigned char c;
	int fd = open(path, O_RDWR);

	if (fd >= 0 && pread(fd, &c, 1, off) == 1) {
		c ^= 0x40;
		if (pwrite(fd, &c, 1, off) != 1)
			tap_diag("pwrite failed");
	}
	if (fd >= 0)
		close(fd);
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600), rc = 0;

	if (in < 0 || out < 0)
		rc = -1;
	while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n)
			rc = -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

static void age(const char *path, int seconds)
{
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= seconds;
	ts[1] = ts[0];
	utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

/* An orphan: a copy of blob `model` under a fresh id in the same directory. */
static void make_orphan(const char *model, char hex_r[33], struct coffer_buf *path_r)
{
	const char *slash = strrchr(model, '/');
	unsigned char id[COFFER_ID_BYTES];

	coffer_random(id, sizeof id);
	coffer_hex(hex_r, id, sizeof id);
	hex_r[0] = slash[1];
	hex_r[1] = slash[2];
	coffer_buf_reset(path_r);
	coffer_buf_printf(path_r, "%.*s/%s", (int)(slash - model), model, hex_r);
	if (copy_file(model, coffer_buf_str(path_r)) < 0)
		tap_diag("cannot make an orphan");
}

struct del_args {
	enum coffer_db db;
	unsigned char key[64];
	size_t klen;
};

static int del_txn(struct coffer_txn *t, void *arg)
{
	struct del_args *a = arg;

	return coffer_txn_del(t, a->db, a->key, a->klen);
}

struct expunge_args {
	struct coffer_store *st;
	const unsigned char *acct;
	uint32_t fid, uid;
};

static int expunge_txn(struct coffer_txn *t, void *arg)
{
	struct expunge_args *a = arg;
	struct coffer_message_rec rec;
	struct coffer_buf name = COFFER_BUF_INIT;
	int rc;

	rc = coffer_message_get_txn(t, a->acct, a->fid, a->uid, &rec);
	if (rc == 0)
		rc = coffer_message_derived_name(&rec, &name);
	if (rc == 0)
		rc = coffer_message_expunge_txn(t, a->st, a->acct, a->fid, a->uid,
		                                coffer_buf_str(&name), name.len, 1);
	coffer_buf_free(&name);
	return rc;
}

struct folder_args {
	const unsigned char *acct;
	uint32_t fid;
	uint32_t uidnext;
};

static int uidnext_txn(struct coffer_txn *t, void *arg)
{
	struct folder_args *a = arg;
	struct coffer_folder_rec rec;
	struct coffer_buf val = COFFER_BUF_INIT;
	int rc;

	rc = coffer_folder_get_txn(t, a->acct, a->fid, &rec);
	if (rc < 0)
		return rc;
	/* rec.name_box points into the map: encode before writing anything */
	rec.uidnext = a->uidnext;
	rc = coffer_folder_rec_encode(&rec, &val);
	if (rc == 0) {
		unsigned char key[COFFER_KEY_FOLDER];

		coffer_key_folder(key, a->acct, a->fid);
		rc = coffer_txn_put(t, COFFER_DB_FOLDERS, key, sizeof key, val.data, val.len, 0);
	}
	coffer_buf_free(&val);
	return rc;
}

static int break_key_txn(struct coffer_txn *t, void *arg)
{
	const unsigned char *acct = arg;
	struct coffer_account_rec rec;
	struct coffer_buf box = COFFER_BUF_INIT;
	int rc;

	rc = coffer_account_get_txn(t, acct, &rec);
	if (rc < 0)
		return rc;
	coffer_buf_append(&box, rec.name_box, rec.name_box_len);
	rec.name_box = box.data;
	rec.wrapped_sk[COFFER_AEAD_NONCE_BYTES + 3] ^= 1;
	rc = coffer_account_put_txn(t, acct, &rec);
	coffer_buf_free(&box);
	return rc;
}

/* Damage scenario on one store: the four kinds, then orphans and
 * the repair. */
static void test_damage(const char *dir)
{
	struct coffer_store *st = NULL;
	struct coffer_deliver_result res;
	struct coffer_buf path[5], stray = COFFER_BUF_INIT, lost = COFFER_BUF_INIT;
	struct coffer_buf orphan = COFFER_BUF_INIT, orphan2 = COFFER_BUF_INIT;
	struct coffer_buf bob_blob = COFFER_BUF_INIT, rel = COFFER_BUF_INIT;
	unsigned char alice[COFFER_ID_BYTES], bob[COFFER_ID_BYTES];
	char hex[5][33], ohex[33], o2hex[33], bhex[33], sp[PATH_MAX + 16], kp[PATH_MAX + 16],
	    ahex[33];
	struct run r;
	const struct seen *s;
	off_t size2, size1;
	int rc;

	memset(&r, 0, sizeof r);
	snprintf(sp, sizeof sp, "%s/store", dir);
	snprintf(kp, sizeof kp, "%s/coffer.key", dir);
	rc = coffer_store_init(sp, kp, &st);
	ok(rc == 0, "store created (%s)", coffer_errmsg());
	if (rc < 0)
		return;
	ok(coffer_account_add(st, ALICE, strlen(ALICE), NULL) == 0, "account alice");
	ok(coffer_account_add(st, BOB, strlen(BOB), NULL) == 0, "account bob");
	rc = 0;
	for (int i = 1; i <= 5; i++)
		rc |= deliver(st, ALICE, NULL, i, &res);
	rc |= deliver(st, ALICE, "Lists/debian", 6, &res);
	rc |= deliver(st, BOB, NULL, 7, &res);
	rc |= deliver(st, BOB, NULL, 8, &res);
	ok(rc == 0, "8 messages delivered (%s)", coffer_errmsg());
	account_id(st, ALICE, alice);
	account_id(st, BOB, bob);
	coffer_hex(ahex, alice, sizeof alice);

	verify(st, NULL, 0, &r);
	ok(r.rc == 0 && r.n == 0 && r.stats.problems == 0 && r.stats.pending == 0,
	   "a sound store: no problem (rc %d, %zu reports)", r.rc, r.n);
	ok(r.stats.accounts == 2 && r.stats.messages == 8 && r.stats.blobs == 8,
	   "counts: 2 accounts, 8 messages, 8 blobs (%llu %llu %llu)",
	   (unsigned long long)r.stats.accounts, (unsigned long long)r.stats.messages,
	   (unsigned long long)r.stats.blobs);
	ok(r.stats.bytes > 0, "blob bytes were read");

	for (int i = 0; i < 5; i++) {
		path[i] = (struct coffer_buf)COFFER_BUF_INIT;
		blob_of(st, alice, 0, (uint32_t)i + 1, &path[i], hex[i]);
	}
	/* 1: one byte flipped in the middle of the blob */
	size1 = file_size(coffer_buf_str(&path[0]));
	flip_byte(coffer_buf_str(&path[0]), size1 / 2 + 10);
	/* 2: truncated to half */
	size2 = file_size(coffer_buf_str(&path[1]));
	ok(truncate(coffer_buf_str(&path[1]), size2 / 2) == 0, "blob of uid 2 truncated");
	/* 3: deleted */
	ok(unlink(coffer_buf_str(&path[2])) == 0, "blob of uid 3 deleted");
	/* 4: a stray file in a blob directory */
	{
		const char *p = coffer_buf_str(&path[3]);
		const char *slash = strrchr(p, '/');

		coffer_buf_printf(&stray, "%.*s/notes.txt", (int)(slash - p), p);
		coffer_buf_printf(&rel, "blobs/%s/%.2s/notes.txt", ahex, slash + 1);
		coffer_buf_printf(&lost, "%s/lost+found/%s", sp, coffer_buf_str(&rel));
		FILE *f = fopen(coffer_buf_str(&stray), "w");

		if (f) {
			fputs("an operator's note\n", f);
			fclose(f);
		}
	}
	/* and an orphan of a moment ago: pending, not damage */
	make_orphan(coffer_buf_str(&path[4]), ohex, &orphan);

	verify(st, NULL, 0, &r);
	ok(r.rc == 0, "verify runs to its end on a damaged store");
	ok(r.stats.problems == 4, "exactly four problems (%llu)",
	   (unsigned long long)r.stats.problems);
	s = find(&r, ALICE, "INBOX", 1, "blob fails authentication (damaged)");
	ok(s && s->blob && !strcmp(s->blob, hex[0]) && !s->pending,
	   "flipped byte: INBOX uid 1: blob fails authentication (damaged), with its blob id");
	ok(find(&r, ALICE, "INBOX", 2, "blob is truncated (damaged)") != NULL,
	   "truncation: INBOX uid 2: blob is truncated (damaged)");
	ok(find(&r, ALICE, "INBOX", 3, "blob is missing") != NULL,
	   "deletion: INBOX uid 3: blob is missing");
	s = find(&r, ALICE, NULL, 0, "stray file in the blob tree");
	ok(s && s->blob && !strcmp(s->blob, coffer_buf_str(&rel)) && !s->pending,
	   "stray file reported with its path in the store");
	ok(r.stats.pending == 1, "one pending blob");
	s = find(&r, ALICE, NULL, 0, "blob without an index entry, younger");
	ok(s && s->pending && s->blob && !strcmp(s->blob, ohex),
	   "the young orphan is pending, by blob id");
	ok(r.n == 5, "nothing else reported (%zu)", r.n);

	/* make the orphan old, and another in bob's tree */
	age(coffer_buf_str(&orphan), 3600);
	blob_of(st, bob, 0, 1, &bob_blob, bhex);
	make_orphan(coffer_buf_str(&bob_blob), o2hex, &orphan2);
	age(coffer_buf_str(&orphan2), 3600);
	verify(st, NULL, 0, &r);
	ok(r.stats.problems == 6 && r.stats.pending == 0,
	   "old orphans are damage: 6 problems, none pending (%llu, %llu)",
	   (unsigned long long)r.stats.problems, (unsigned long long)r.stats.pending);
	s = find(&r, ALICE, NULL, 0, "orphan blob (left by an interrupted write)");
	ok(s && !strcmp(s->blob, ohex), "alice's orphan reported");
	s = find(&r, BOB, NULL, 0, "orphan blob (left by an interrupted write)");
	ok(s && !strcmp(s->blob, o2hex), "bob's orphan reported");
	ok(exists(coffer_buf_str(&orphan)) && exists(coffer_buf_str(&stray)),
	   "without --repair nothing is changed");

	/* a message whose blob record is gone: its file looks like an orphan, but
	 * it is referenced, so the repair must keep it */
	{
		struct del_args d;
		struct coffer_buf p5 = COFFER_BUF_INIT;
		char h5[33];

		blob_of(st, alice, 0, 5, &p5, h5);
		d.db = COFFER_DB_BLOBS;
		memcpy(d.key, alice, COFFER_ID_BYTES);
		for (int i = 0; i < COFFER_ID_BYTES; i++) {
			unsigned byte;

			sscanf(h5 + 2 * i, "%2x", &byte);
			d.key[COFFER_ID_BYTES + i] = (unsigned char)byte;
		}
		d.klen = COFFER_KEY_BLOB;
		ok(coffer_index_update(coffer_store_index(st), del_txn, &d) == 0,
		   "blob record of uid 5 deleted");
		age(coffer_buf_str(&p5), 3600);

		verify(st, NULL, 1, &r);
		ok(r.rc == 0, "verify --repair runs");
		ok(find(&r, ALICE, "INBOX", 5,
		        "message points at a blob that has no blob record") != NULL,
		   "uid 5: message points at a blob that has no blob record");
		ok(exists(coffer_buf_str(&p5)), "the repair keeps a blob a message points at");
		ok(find(&r, ALICE, NULL, 0, "orphan blob") != NULL &&
		       !strcmp(find(&r, ALICE, NULL, 0, "orphan blob")->repair, "removed"),
		   "alice's orphan: repaired, removed");
		ok(!exists(coffer_buf_str(&orphan)) && !exists(coffer_buf_str(&orphan2)),
		   "both orphan files removed");
		s = find(&r, ALICE, NULL, 0, "stray file");
		ok(s && s->repair && strstr(s->repair, "lost+found/") != NULL,
		   "stray: repaired, moved to lost+found (%s)", s && s->repair ? s->repair : "-");
		ok(!exists(coffer_buf_str(&stray)) && exists(coffer_buf_str(&lost)),
		   "the stray file is in STORE/lost+found under its path");
		ok(r.stats.repaired == 3, "3 repaired (%llu)",
		   (unsigned long long)r.stats.repaired);
		ok(r.stats.problems == 4,
		   "4 problems left: 3 damaged blobs and uid 5's record (%llu)",
		   (unsigned long long)r.stats.problems);
		ok(exists(coffer_buf_str(&path[0])) &&
		       file_size(coffer_buf_str(&path[0])) == size1 &&
		       file_size(coffer_buf_str(&path[1])) == size2 / 2,
		   "damaged blobs are left as they are");

		verify(st, NULL, 0, &r);
		ok(r.stats.problems == 4 && r.stats.repaired == 0 && r.stats.pending == 0,
		   "second run: only the damage the repair cannot fix");
		coffer_buf_free(&p5);
	}

	/* a stray there again: lost+found keeps both */
	{
		FILE *f = fopen(coffer_buf_str(&stray), "w");

		if (f) {
			fputs("another note\n", f);
			fclose(f);
		}
		verify(st, NULL, 1, &r);
		coffer_buf_puts(&lost, ".1");
		ok(exists(coffer_buf_str(&lost)), "a second stray of that name goes to .1");
	}

	/* NAME mode: bob only */
	verify(st, BOB, 0, &r);
	ok(r.rc == 0 && r.stats.accounts == 1 && r.stats.messages == 2 && r.stats.problems == 0,
	   "verify bob: 1 account, 2 messages, sound");
	verify(st, "nobody@example.com", 0, &r);
	ok(r.rc == COFFER_ENOACCOUNT, "verify of an unknown account: COFFER_ENOACCOUNT");
	verify(st, "not an address", 0, &r);
	ok(r.rc == COFFER_EINVAL, "verify of an invalid name: COFFER_EINVAL");

	/* the trash is not damage, and the repair collects it */
	{
		struct expunge_args e = { st, bob, 0, 2 };
		struct coffer_buf p = COFFER_BUF_INIT;
		char h[33];

		blob_of(st, bob, 0, 2, &p, h);
		ok(coffer_index_update(coffer_store_index(st), expunge_txn, &e) == 0,
		   "bob's uid 2 expunged: its blob is in the trash");
		verify(st, BOB, 0, &r);
		ok(r.stats.problems == 0 && r.stats.pending == 0 && exists(coffer_buf_str(&p)),
		   "a trashed blob file is not damage");
		verify(st, BOB, 1, &r);
		ok(r.stats.collected == 1 && !exists(coffer_buf_str(&p)),
		   "--repair collects the trash");
		coffer_buf_free(&p);
	}

	for (int i = 0; i < 5; i++)
		coffer_buf_free(&path[i]);
	coffer_buf_free(&stray);
	coffer_buf_free(&lost);
	coffer_buf_free(&orphan);
	coffer_buf_free(&orphan2);
	coffer_buf_free(&bob_blob);
	coffer_buf_free(&rel);
	run_free(&r);
	coffer_store_close(&st);
}

/* Only repairable problems: after --repair a second run passes. */
static void test_repair_passes(const char *dir)
{
	struct coffer_store *st = NULL;
	struct coffer_deliver_result res;
	struct coffer_buf p = COFFER_BUF_INIT, orphan = COFFER_BUF_INIT, top = COFFER_BUF_INIT;
	struct coffer_buf unknown = COFFER_BUF_INIT;
	unsigned char alice[COFFER_ID_BYTES];
	char sp[PATH_MAX + 16], kp[PATH_MAX + 16], h[33], ohex[33];
	struct run r;
	int rc;

	memset(&r, 0, sizeof r);
	snprintf(sp, sizeof sp, "%s/store", dir);
	snprintf(kp, sizeof kp, "%s/coffer.key", dir);
	rc = coffer_store_init(sp, kp, &st);
	ok(rc == 0, "second store created");
	if (rc < 0)
		return;
	rc = coffer_account_add(st, ALICE, strlen(ALICE), NULL);
	for (int i = 1; rc == 0 && i <= 3; i++)
		rc = deliver(st, ALICE, "Archive", i, &res);
	ok(rc == 0, "3 messages in Archive");
	account_id(st, ALICE, alice);
	blob_of(st, alice, res.folder_id, 1, &p, h);
	make_orphan(coffer_buf_str(&p), ohex, &orphan);
	age(coffer_buf_str(&orphan), 11 * 60);
	coffer_buf_printf(&top, "%s/blobs/README", sp);
	{
		FILE *f = fopen(coffer_buf_str(&top), "w");

		if (f)
			fclose(f);
	}
	/* a directory of an account that does not exist */
	coffer_buf_printf(&unknown, "%s/blobs/0123456789abcdef0123456789abcdef", sp);
	mkdir(coffer_buf_str(&unknown), 0700);

	verify(st, NULL, 0, &r);
	ok(r.stats.problems == 3, "orphan (11 minutes old), stray file, unknown account directory");
	ok(find(&r, NULL, NULL, 0, "stray file in the blob tree") != NULL,
	   "a stray at the top of the blob tree has no account");
	ok(find(&r, NULL, NULL, 0, "stray directory in the blob tree") != NULL,
	   "the unknown account's directory is a stray");
	verify(st, ALICE, 0, &r);
	ok(r.stats.problems == 1, "verify NAME looks at that account's tree only");
	verify(st, NULL, 1, &r);
	ok(r.stats.problems == 0 && r.stats.repaired == 3, "--repair fixes all three");
	verify(st, NULL, 0, &r);
	ok(r.rc == 0 && r.stats.problems == 0 && r.stats.pending == 0 && r.n == 0,
	   "after --repair the store passes");
	coffer_buf_reset(&top);
	coffer_buf_printf(&top, "%s/lost+found/blobs/README", sp);
	ok(exists(coffer_buf_str(&top)), "README kept in lost+found");

	coffer_buf_free(&p);
	coffer_buf_free(&orphan);
	coffer_buf_free(&top);
	coffer_buf_free(&unknown);
	run_free(&r);
	coffer_store_close(&st);
}

/* Index damage: each reported with its account, folder and uid. */
static void test_index_damage(const char *dir)
{
	struct coffer_store *st = NULL;
	struct coffer_deliver_result res;
	unsigned char alice[COFFER_ID_BYTES], bob[COFFER_ID_BYTES];
	char sp[PATH_MAX + 16], kp[PATH_MAX + 16];
	struct run r;
	int rc;

	memset(&r, 0, sizeof r);
	snprintf(sp, sizeof sp, "%s/store", dir);
	snprintf(kp, sizeof kp, "%s/coffer.key", dir);
	rc = coffer_store_init(sp, kp, &st);
	ok(rc == 0, "third store created");
	if (rc < 0)
		return;
	rc = coffer_account_add(st, ALICE, strlen(ALICE), NULL);
	if (rc == 0)
		rc = coffer_account_add(st, BOB, strlen(BOB), NULL);
	for (int i = 1; rc == 0 && i <= 3; i++)
		rc = deliver(st, ALICE, NULL, i, &res);
	if (rc == 0)
		rc = deliver(st, BOB, NULL, 9, &res);
	ok(rc == 0, "messages delivered");
	account_id(st, ALICE, alice);
	account_id(st, BOB, bob);

	/* uid 2 loses its name index entry */
	{
		struct get_args g = { alice, 0, 2, { { 0 }, 0, 0, 0, 0, 0, 0, NULL, 0 } };
		struct coffer_buf name = COFFER_BUF_INIT;
		struct del_args d;

		coffer_index_view(coffer_store_index(st), get_txn, &g);
		coffer_message_derived_name(&g.rec, &name);
		d.db = COFFER_DB_MSG_NAMES;
		d.klen = COFFER_KEY_MSG_NAME;
		coffer_message_name_key(st, alice, 0, coffer_buf_str(&name), name.len, d.key);
		ok(coffer_index_update(coffer_store_index(st), del_txn, &d) == 0,
		   "name entry of uid 2 deleted");
		coffer_buf_free(&name);
	}
	/* INBOX's uidnext goes back to 3: uid 3 is no longer below it */
	{
		struct folder_args f = { alice, 0, 3 };

		ok(coffer_index_update(coffer_store_index(st), uidnext_txn, &f) == 0,
		   "INBOX uidnext set to 3");
	}
	/* bob's wrapped key damaged */
	ok(coffer_index_update(coffer_store_index(st), break_key_txn, bob) == 0,
	   "bob's wrapped key damaged");

	verify(st, NULL, 0, &r);
	ok(r.rc == 0, "verify runs");
	ok(find(&r, ALICE, "INBOX", 2, "message has no name index entry") != NULL,
	   "INBOX uid 2: message has no name index entry");
	ok(find(&r, ALICE, "INBOX", 3, "uid is not below the folder's uidnext (3)") != NULL,
	   "INBOX uid 3: uid is not below the folder's uidnext");
	{
		char name[64];

		snprintf(name, sizeof name, "account ");
		coffer_hex(name + 8, bob, COFFER_ID_BYTES);
		ok(find(&r, name, NULL, 0, "account key does not unwrap with the key file") != NULL,
		   "bob: account key does not unwrap (named by id)");
	}
	ok(r.stats.problems == 3, "exactly three problems (%llu)",
	   (unsigned long long)r.stats.problems);
	ok(r.stats.messages == 4, "bob's message still counted (existence checked)");
	verify(st, BOB, 0, &r);
	ok(find(&r, BOB, NULL, 0, "account key does not unwrap with the key file") != NULL &&
	       r.stats.problems == 1,
	   "verify NAME names the account whose key fails");
	run_free(&r);
	coffer_store_close(&st);
}

int main(void)
{
	char d1[4096], d2[4096], d3[4096];

	if (coffer_crypto_init() < 0)
		return tap_skip_all("libsodium cannot initialise");
	snprintf(d1, sizeof d1, "%s/damage", tap_tmpdir());
	snprintf(d2, sizeof d2, "%s/repair", tap_tmpdir());
	snprintf(d3, sizeof d3, "%s/index", tap_tmpdir());
	mkdir(d1, 0700);
	mkdir(d2, 0700);
	mkdir(d3, 0700);
	test_damage(d1);
	test_repair_passes(d2);
	test_index_damage(d3);
	return tap_done();
}
