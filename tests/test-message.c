/*
 * test-message.c: message records, the name index, updates, expunge, and
 * reading with damage detection (engine/message.h).
 *
 * Derived Maildir names are found through the name index; names given by a
 * writer are boxed and found too (a second message with the same name is
 * EEXIST); update changes flags, keywords and new/cur and bumps the
 * account's modseq; expunge removes the record and the name and moves the
 * blob to the trash, from which coffer_blob_collect() unlinks the file; a
 * blob with two references survives one expunge. A blob that is flipped,
 * truncated, deleted or swapped for another is ECORRUPT on open or read,
 * and the detail names the account, the folder and the uid. A writer
 * without secrets given a sealer boxes a new folder's name and the Maildir
 * name with it (tag 3, one ephemeral key), also when its transaction is run
 * again, and both open.
 */
#include "engine/account.h"
#include "engine/blob.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/message.h"
#include "engine/record.h"
#include "engine/store.h"
#include "maildir/deliver.h"
#include "maildir/name.h"
#include "tap.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ACCT "alice@example.com"

static struct coffer_store *st;
static struct coffer_mailbox *mb;

/* Delivers text through a pipe fed by a child (any size fits). */
static int deliver(const char *text, uint32_t *uid_r)
{
	struct coffer_deliver_result res;
	size_t n = strlen(text);
	int p[2], rc, status;
	pid_t pid;

	memset(&res, 0, sizeof res);
	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		_exit(write(p[1], text, n) == (ssize_t)n ? 0 : 1);
	}
	close(p[1]);
	rc = coffer_deliver(st, ACCT, NULL, p[0], &res);
	close(p[0]);
	waitpid(pid, &status, 0);
	if (uid_r)
		*uid_r = res.uid;
	return rc;
}

struct listed {
	int n;
	uint32_t uid[32];
	char name[32][128];
	struct coffer_message_rec rec[32];
};

static int collect(const struct coffer_message *m, void *arg)
{
	struct listed *l = arg;

	if (l->n >= 32)
		return 1;
	l->uid[l->n] = m->uid;
	snprintf(l->name[l->n], sizeof l->name[l->n], "%s", m->unique);
	l->rec[l->n] = m->rec;
	l->n++;
	return 0;
}

static int list(struct listed *l)
{
	memset(l, 0, sizeof *l);
	return coffer_message_list(mb, COFFER_FOLDER_INBOX, collect, l);
}

struct op {
	uint32_t uid;
	const char *unique;
	size_t n;
	uint32_t found;
	struct coffer_message_rec rec;
	uint64_t modseq;
	const unsigned char *blob;
	struct coffer_message_new *add;
	uint32_t fid;
};

static int find_txn(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;

	return coffer_message_find_name_txn(t, st, coffer_mailbox_id(mb), COFFER_FOLDER_INBOX,
	                                    o->unique, o->n, &o->found);
}

static int get_txn(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;
	struct coffer_account_rec arec;
	int rc;

	rc = coffer_account_get_txn(t, coffer_mailbox_id(mb), &arec);
	if (rc < 0)
		return rc;
	o->modseq = arec.modseq;
	rc = coffer_message_get_txn(t, coffer_mailbox_id(mb), COFFER_FOLDER_INBOX, o->uid, &o->rec);
	o->rec.name_box = NULL;
	return rc;
}

static int update_txn(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;
	struct coffer_message_rec rec;
	int rc;

	rc = coffer_message_get_txn(t, coffer_mailbox_id(mb), COFFER_FOLDER_INBOX, o->uid, &rec);
	if (rc < 0)
		return rc;
	rec.flags = o->rec.flags;
	rec.keywords = o->rec.keywords;
	rec.is_new = o->rec.is_new;
	return coffer_message_update_txn(t, coffer_mailbox_id(mb), COFFER_FOLDER_INBOX, o->uid,
	                                 &rec);
}

static int expunge_txn(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;

	return coffer_message_expunge_txn(t, st, coffer_mailbox_id(mb), COFFER_FOLDER_INBOX, o->uid,
	                                  o->unique, o->n, 12345);
}

static int ref_txn(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;

	return coffer_blob_ref_txn(t, coffer_mailbox_id(mb), o->blob);
}

static int add_txn(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;

	return coffer_message_add_txn(t, st, ACCT, o->add, coffer_mailbox_secret(mb), &o->fid,
	                              &o->uid);
}

static int db_has(enum coffer_db db, const unsigned char *blob);

struct has_args {
	enum coffer_db db;
	unsigned char key[COFFER_KEY_BLOB];
	int found;
	uint32_t refs;
};

static int has_txn(struct coffer_txn *t, void *arg)
{
	struct has_args *a = arg;
	const void *v;
	size_t n;
	int rc = coffer_txn_get(t, a->db, a->key, sizeof a->key, &v, &n);

	a->found = rc == 0;
	if (rc == 0 && a->db == COFFER_DB_BLOBS) {
		struct coffer_blob_rec b;

		if (coffer_blob_rec_decode(v, n, &b) == 0)
			a->refs = b.refs;
	}
	return rc == COFFER_ENOTFOUND ? 0 : rc;
}

static uint32_t blob_refs;

static int db_has(enum coffer_db db, const unsigned char *blob)
{
	struct has_args a;

	memset(&a, 0, sizeof a);
	a.db = db;
	coffer_key_blob(a.key, coffer_mailbox_id(mb), blob);
	coffer_index_view(coffer_store_index(st), has_txn, &a);
	blob_refs = a.refs;
	return a.found;
}

static char *blob_path(const unsigned char *blob)
{
	static struct coffer_buf p = COFFER_BUF_INIT;

	coffer_store_blob_path(st, coffer_mailbox_id(mb), blob, &p);
	return (char *)p.data;
}

static int exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

/* Reads a whole message: 0, or the error of open or read. */
static int read_all(uint32_t uid, size_t *len_r)
{
	struct coffer_message_reader *r = NULL;
	char buf[4096];
	size_t k, len = 0;
	int rc;

	rc = coffer_message_open(mb, COFFER_FOLDER_INBOX, "INBOX", uid, &r);
	while (rc == 0 && (rc = coffer_message_read(r, buf, sizeof buf, &k)) == 0 && k > 0)
		len += k;
	coffer_message_close(&r);
	if (len_r)
		*len_r = len;
	return rc;
}

static int names_message(uint32_t uid)
{
	char want[64];

	snprintf(want, sizeof want, "uid %u", uid);
	return strstr(coffer_errmsg(), ACCT) != NULL && strstr(coffer_errmsg(), "INBOX") != NULL &&
	       strstr(coffer_errmsg(), want) != NULL;
}

static void test_names_update(void)
{
	struct listed l;
	struct op o;
	uint64_t modseq;
	int good = 1;

	ok(deliver("Subject: one\n\n1\n", NULL) == 0 &&
	       deliver("Subject: two\n\n22\n", NULL) == 0 &&
	       deliver("Subject: three\n\n333\n", NULL) == 0,
	   "deliver three messages");
	ok(list(&l) == 0 && l.n == 3 && l.uid[0] == 1 && l.uid[2] == 3, "list: uids 1, 2, 3");
	for (int i = 0; i < l.n; i++) {
		struct coffer_buf d = COFFER_BUF_INIT;
		char hex[2 * COFFER_ID_BYTES + 1], want[128];

		coffer_hex(hex, l.rec[i].blob_id, COFFER_ID_BYTES);
		snprintf(want, sizeof want, "%lld.C%.16s.coffer,S=%llu",
		         (long long)(l.rec[i].delivered_at / 1000000000LL), hex,
		         (unsigned long long)l.rec[i].size);
		coffer_message_derived_name(&l.rec[i], &d);
		if (strcmp(l.name[i], want) != 0 || strcmp(coffer_buf_str(&d), want) != 0) {
			tap_diag("name %s, want %s", l.name[i], want);
			good = 0;
		}
		coffer_buf_free(&d);
	}
	ok(good, "derived names: <seconds>.C<16 hex of the blob id>.coffer,S=<size>");
	ok(l.rec[1].size == 17 && l.rec[1].is_new == 1 && l.rec[1].flags == 0 &&
	       l.rec[1].keywords == 0 && l.rec[1].internal_date == l.rec[1].delivered_at,
	   "delivered record: size, new/, no flags, internal date = delivery time");

	good = 1;
	for (int i = 0; i < l.n; i++) {
		o = (struct op){ .unique = l.name[i], .n = strlen(l.name[i]) };
		if (coffer_index_view(coffer_store_index(st), find_txn, &o) != 0 ||
		    o.found != l.uid[i])
			good = 0;
	}
	ok(good, "find_name_txn finds each derived name's uid");
	o = (struct op){ .unique = "1.Cdeadbeef.coffer,S=1", .n = 22 };
	ok(coffer_index_view(coffer_store_index(st), find_txn, &o) == COFFER_ENOTFOUND,
	   "an unknown name: ENOTFOUND");
	o = (struct op){ .unique = l.name[0], .n = strlen(l.name[0]) - 1 };
	ok(coffer_index_view(coffer_store_index(st), find_txn, &o) == COFFER_ENOTFOUND,
	   "a prefix of a name: ENOTFOUND");

	/* update */
	o = (struct op){ .uid = 2 };
	coffer_index_view(coffer_store_index(st), get_txn, &o);
	modseq = o.modseq;
	o.rec.flags = COFFER_FLAG_SEEN | COFFER_FLAG_REPLIED;
	o.rec.keywords = 1u << 3 | 1u << 25;
	o.rec.is_new = 0;
	ok(coffer_index_update(coffer_store_index(st), update_txn, &o) == 0, "update uid 2");
	memset(&o.rec, 0, sizeof o.rec);
	coffer_index_view(coffer_store_index(st), get_txn, &o);
	ok(o.rec.flags == (COFFER_FLAG_SEEN | COFFER_FLAG_REPLIED) &&
	       o.rec.keywords == (1u << 3 | 1u << 25) && o.rec.is_new == 0 && o.rec.size == 17,
	   "flags, keywords and cur/ changed; size kept");
	ok(o.modseq > modseq, "the account's modseq went up (%llu -> %llu)",
	   (unsigned long long)modseq, (unsigned long long)o.modseq);
	ok(read_all(2, NULL) == 0, "the updated message still reads");
}

static void test_unique_names(void)
{
	struct coffer_message_new m;
	struct op o;
	struct listed l;
	static const char uniq[] = "1700000000.M12P34.mail.example.com";
	int rc;

	memset(&m, 0, sizeof m);
	m.acct = coffer_mailbox_id(mb);
	m.folder = "INBOX";
	coffer_random(m.blob_id, sizeof m.blob_id);
	m.size = 5;
	m.stored_size = 100;
	m.internal_date = 1700000000LL * 1000000000LL;
	m.delivered_at = 1700000001LL * 1000000000LL;
	m.flags = COFFER_FLAG_FLAGGED;
	m.unique = uniq;
	m.unique_len = sizeof uniq - 1;
	o = (struct op){ .add = &m };
	rc = coffer_index_update(coffer_store_index(st), add_txn, &o);
	ok(rc == 0 && o.fid == 0 && o.uid == 4, "add a record with a given Maildir name: uid 4");
	o.unique = uniq;
	o.n = sizeof uniq - 1;
	ok(coffer_index_view(coffer_store_index(st), find_txn, &o) == 0 && o.found == 4,
	   "the given name is found");
	ok(list(&l) == 0 && l.n == 4 && strcmp(l.name[3], uniq) == 0,
	   "list shows the given name (opened from its box)");
	coffer_random(m.blob_id, sizeof m.blob_id);
	o = (struct op){ .add = &m };
	rc = coffer_index_update(coffer_store_index(st), add_txn, &o);
	ok(rc == COFFER_EEXIST, "a second message with the same name: EEXIST (%d)", rc);
	ok(list(&l) == 0 && l.n == 4, "and nothing was added");
	{
		struct op g = { .uid = 5 };

		ok(coffer_index_view(coffer_store_index(st), get_txn, &g) == COFFER_ENOTFOUND,
		   "uid 5 was not used");
	}
	/* the index holds no plaintext name */
	{
		char idx[PATH_MAX + 32];
		FILE *f;
		char *buf = malloc(1 << 20);
		size_t n = 0;

		snprintf(idx, sizeof idx, "%s/index/data.mdb", coffer_store_path(st));
		f = buf ? fopen(idx, "rb") : NULL;
		if (f) {
			n = fread(buf, 1, 1 << 20, f);
			fclose(f);
		}
		ok(buf && n > 0 && memmem(buf, n, "M12P34", 6) == NULL &&
		       memmem(buf, n, "INBOX", 5) == NULL,
		   "neither the Maildir name nor the folder name is in the index file");
		free(buf);
	}
	/* expunge it by its name */
	o = (struct op){ .uid = 4, .unique = uniq, .n = sizeof uniq - 1 };
	ok(coffer_index_update(coffer_store_index(st), expunge_txn, &o) == 0,
	   "expunge the message with the given name");
	ok(coffer_index_view(coffer_store_index(st), find_txn, &o) == COFFER_ENOTFOUND,
	   "its name is gone");
	ok(db_has(COFFER_DB_TRASH, m.blob_id) == 0, "(the refused duplicate left no trash)");
	{
		uint64_t removed = 0;
		unsigned char first[COFFER_ID_BYTES];

		(void)first;
		ok(coffer_blob_collect(st, NULL, &removed) == 0 && removed == 1,
		   "collecting a trashed blob whose file never existed succeeds (%llu)",
		   (unsigned long long)removed);
	}
}

struct sealed_op {
	struct coffer_message_new *m;
	int abort_once; /* fail the first run after adding, as LMDB's map-full retry does */
	uint32_t fid, uid;
	unsigned char fbox[128], mbox[128];
	size_t fbox_len, mbox_len;
};

static int sealed_add_txn(struct coffer_txn *t, void *arg)
{
	struct sealed_op *o = arg;
	struct coffer_folder_rec frec;
	struct coffer_message_rec mrec;
	int rc;

	rc = coffer_message_add_txn(t, st, ACCT, o->m, NULL, &o->fid, &o->uid);
	if (rc == 0 && o->abort_once) {
		o->abort_once = 0;
		return coffer_err_set(COFFER_EINVAL, "test: aborted once");
	}
	if (rc == 0)
		rc = coffer_folder_get_txn(t, o->m->acct, o->fid, &frec);
	if (rc == 0)
		rc = coffer_message_get_txn(t, o->m->acct, o->fid, o->uid, &mrec);
	if (rc == 0 && (frec.name_box_len > sizeof o->fbox || mrec.name_box_len > sizeof o->mbox))
		rc = COFFER_ELIMIT;
	if (rc == 0) {
		memcpy(o->fbox, frec.name_box, o->fbox_len = frec.name_box_len);
		memcpy(o->mbox, mrec.name_box, o->mbox_len = mrec.name_box_len);
	}
	return rc;
}

struct folder_seen {
	const char *want;
	uint32_t fid;
	int found;
};

static int folder_row(const struct coffer_folder_info *info, void *arg)
{
	struct folder_seen *f = arg;

	if (strcmp(info->name, f->want) == 0) {
		f->fid = info->id;
		f->found = 1;
	}
	return 0;
}

static void test_sealer_boxes(void)
{
	static const char uniq[] = "1700000100.M7P8.mx.example.com";
	struct coffer_message_new m;
	struct coffer_sealer *sealer = NULL;
	struct sealed_op o;
	struct folder_seen fs = { "Archive/2024", 0, 0 };
	struct listed l;

	ok(coffer_sealer_new(coffer_mailbox_secret(mb)->pk, &sealer) == 0, "sealer: made");
	memset(&m, 0, sizeof m);
	m.acct = coffer_mailbox_id(mb);
	m.folder = "Archive/2024";
	coffer_random(m.blob_id, sizeof m.blob_id);
	m.size = 5;
	m.stored_size = 100;
	m.internal_date = 1700000100LL * 1000000000LL;
	m.delivered_at = m.internal_date;
	m.unique = uniq;
	m.unique_len = sizeof uniq - 1;
	m.sealer = sealer;
	memset(&o, 0, sizeof o);
	o.m = &m;
	o.abort_once = 1;
	ok(coffer_index_update(coffer_store_index(st), sealed_add_txn, &o) == COFFER_EINVAL,
	   "sealer: first run of the transaction aborted after boxing");
	ok(coffer_index_update(coffer_store_index(st), sealed_add_txn, &o) == 0 && o.fid > 0 &&
	       o.uid == 1,
	   "sealer: run again, it adds the message to a new folder (%u, uid %u)", o.fid, o.uid);
	coffer_sealer_free(&sealer);
	ok(o.fbox_len > 33 && o.mbox_len > 33 && o.fbox[0] == COFFER_BOX_SHARED &&
	       o.mbox[0] == COFFER_BOX_SHARED && memcmp(o.fbox + 1, o.mbox + 1, 32) == 0,
	   "sealer: folder and Maildir name boxes are tag 3 with one ephemeral key");
	ok(coffer_folder_list(mb, folder_row, &fs) == 0 && fs.found && fs.fid == o.fid,
	   "sealer: the folder's name opens");
	memset(&l, 0, sizeof l);
	ok(coffer_message_list(mb, o.fid, collect, &l) == 0 && l.n == 1 && l.uid[0] == 1 &&
	       strcmp(l.name[0], uniq) == 0,
	   "sealer: the Maildir name opens");
}

static void test_expunge(void)
{
	struct listed l;
	struct op o;
	uint64_t removed = 99;
	unsigned char blob2[COFFER_ID_BYTES], blob3[COFFER_ID_BYTES];
	char path2[PATH_MAX], path3[PATH_MAX];
	int rc;

	list(&l);
	ok(l.n == 3, "three delivered messages");
	memcpy(blob2, l.rec[1].blob_id, sizeof blob2);
	memcpy(blob3, l.rec[2].blob_id, sizeof blob3);
	snprintf(path2, sizeof path2, "%s", blob_path(blob2));
	snprintf(path3, sizeof path3, "%s", blob_path(blob3));
	ok(exists(path2) && db_has(COFFER_DB_BLOBS, blob2) && blob_refs == 1 &&
	       db_has(COFFER_DB_UNSNAPPED, blob2) && !db_has(COFFER_DB_TRASH, blob2),
	   "uid 2's blob: file, record (1 ref), unsnapped, not in the trash");

	o = (struct op){ .uid = 2, .unique = l.name[1], .n = strlen(l.name[1]) };
	rc = coffer_index_update(coffer_store_index(st), expunge_txn, &o);
	ok(rc == 0, "expunge uid 2: %s", rc ? coffer_errmsg() : "ok");
	ok(coffer_index_view(coffer_store_index(st), get_txn, &o) == COFFER_ENOTFOUND,
	   "its record is gone");
	ok(coffer_index_view(coffer_store_index(st), find_txn, &o) == COFFER_ENOTFOUND,
	   "its name is gone");
	ok(!db_has(COFFER_DB_BLOBS, blob2) && !db_has(COFFER_DB_UNSNAPPED, blob2) &&
	       db_has(COFFER_DB_TRASH, blob2),
	   "its blob left blobs and unsnapped for the trash");
	ok(exists(path2), "the file stays until collection");
	ok(read_all(2, NULL) == COFFER_ENOTFOUND, "reading uid 2: ENOTFOUND");
	ok(list(&l) == 0 && l.n == 2 && l.uid[0] == 1 && l.uid[1] == 3, "list: 1 and 3");
	rc = coffer_index_update(coffer_store_index(st), expunge_txn, &o);
	ok(rc == COFFER_ENOTFOUND, "expunging it again: ENOTFOUND");

	ok(coffer_blob_collect(st, NULL, &removed) == 0 && removed == 1, "collect removes 1 blob");
	ok(!exists(path2) && !db_has(COFFER_DB_TRASH, blob2), "file unlinked, trash entry gone");
	ok(exists(path3), "other blobs are untouched");
	ok(coffer_blob_collect(st, NULL, &removed) == 0 && removed == 0, "collect again: nothing");

	/* two references survive one expunge */
	o = (struct op){ .blob = blob3 };
	ok(coffer_index_update(coffer_store_index(st), ref_txn, &o) == 0 &&
	       db_has(COFFER_DB_BLOBS, blob3) && blob_refs == 2,
	   "a second reference to uid 3's blob");
	o = (struct op){ .uid = 3, .unique = l.name[1], .n = strlen(l.name[1]) };
	ok(coffer_index_update(coffer_store_index(st), expunge_txn, &o) == 0, "expunge uid 3");
	ok(db_has(COFFER_DB_BLOBS, blob3) && blob_refs == 1 && !db_has(COFFER_DB_TRASH, blob3),
	   "the blob keeps one reference and stays out of the trash");
	ok(coffer_blob_collect(st, NULL, &removed) == 0 && removed == 0 && exists(path3),
	   "collect leaves its file");
}

static void corrupt_and_check(const char *what, uint32_t uid, void (*damage)(const char *, void *),
                              void *arg)
{
	struct op o = { .uid = uid };
	char path[PATH_MAX];
	size_t len = 0;
	int rc;

	coffer_index_view(coffer_store_index(st), get_txn, &o);
	snprintf(path, sizeof path, "%s", blob_path(o.rec.blob_id));
	damage(path, arg);
	coffer_err_clear();
	rc = read_all(uid, &len);
	ok(rc == COFFER_ECORRUPT, "%s: open or read is ECORRUPT (%d)", what, rc);
	ok(names_message(uid), "%s: the detail names account, folder and uid: %s", what,
	   coffer_errmsg());
}

static void flip_at(const char *path, void *arg)
{
	long frac = *(long *)arg; /* per mille of the file */
	int fd = open(path, O_RDWR);
	struct stat sb;
	unsigned char c;
	off_t off;

	fstat(fd, &sb);
	off = (off_t)(sb.st_size * frac / 1000);
	if (off >= sb.st_size)
		off = sb.st_size - 1;
	if (pread(fd, &c, 1, off) == 1) {
		c ^= 0x20;
		if (pwrite(fd, &c, 1, off) != 1)
			tap_diag("pwrite failed");
	}
	close(fd);
}

static void truncate_by(const char *path, void *arg)
{
	long cut = *(long *)arg;
	struct stat sb;

	stat(path, &sb);
	if (truncate(path, sb.st_size - cut) < 0)
		tap_diag("truncate failed");
}

static void truncate_to(const char *path, void *arg)
{
	if (truncate(path, *(long *)arg) < 0)
		tap_diag("truncate failed");
}

static void delete_it(const char *path, void *arg)
{
	unlink(path);
}

static void replace_with(const char *path, void *arg)
{
	const char *other = arg;
	char cmd[2 * PATH_MAX + 16];

	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", other, path);
	if (system(cmd) != 0)
		tap_diag("cp failed");
}

static void test_damage(void)
{
	static const long fracs[] = { 0, 10, 100, 500, 900, 999, 1000 };
	static const long cuts[] = { 1, 16, 100 };
	uint32_t uid;
	char big[200000];
	int good_before = 1;
	struct op o;
	char other[PATH_MAX];

	memcpy(big, "Subject: big\n\n", 14);
	for (size_t i = 14; i < sizeof big - 1; i++)
		big[i] = (char)('a' + (i * 7919) % 26);
	big[sizeof big - 1] = '\0';

	for (size_t i = 0; i < sizeof fracs / sizeof fracs[0]; i++) {
		char what[64];

		deliver(i % 2 ? "Subject: flip\n\nsmall body\n" : big, &uid);
		if (read_all(uid, NULL) != 0)
			good_before = 0;
		snprintf(what, sizeof what, "a byte flipped at %ld/1000 of the blob", fracs[i]);
		corrupt_and_check(what, uid, flip_at, (void *)&fracs[i]);
	}
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		char what[64];

		deliver(i % 2 ? "Subject: cut\n\nsmall body\n" : big, &uid);
		if (read_all(uid, NULL) != 0)
			good_before = 0;
		snprintf(what, sizeof what, "the blob truncated by %ld bytes", cuts[i]);
		corrupt_and_check(what, uid, truncate_by, (void *)&cuts[i]);
	}
	deliver(big, &uid);
	corrupt_and_check("the blob truncated to 10 bytes", uid, truncate_to, &(long){ 10 });
	deliver(big, &uid);
	corrupt_and_check("the blob truncated to 0 bytes", uid, truncate_to, &(long){ 0 });
	deliver("Subject: gone\n\nbody\n", &uid);
	corrupt_and_check("the blob deleted", uid, delete_it, NULL);
	ok(strstr(coffer_errmsg(), "missing") != NULL, "and says the blob is missing");

	/* another valid blob of the same account in its place */
	deliver("Subject: donor\n\nbody of the donor\n", &uid);
	o = (struct op){ .uid = uid };
	coffer_index_view(coffer_store_index(st), get_txn, &o);
	snprintf(other, sizeof other, "%s", blob_path(o.rec.blob_id));
	deliver("Subject: victim\n\nbody of the victim\n", &uid);
	corrupt_and_check("another message's blob copied over it", uid, replace_with, other);
	ok(good_before, "every message read fine before it was damaged");

	{
		struct coffer_message_reader *r = NULL;

		ok(coffer_message_open(mb, COFFER_FOLDER_INBOX, "INBOX", 9999, &r) ==
		           COFFER_ENOTFOUND &&
		       r == NULL,
		   "open of a missing uid: ENOTFOUND");
		ok(names_message(9999), "naming it: %s", coffer_errmsg());
		ok(coffer_message_open(mb, 4242, "Nowhere", 1, &r) == COFFER_ENOTFOUND,
		   "open in a missing folder: ENOTFOUND");
	}
}

static void test_pread(void)
{
	static const char msg[] = "Subject: pread\n\n0123456789abcdefghij\n";
	struct coffer_message_reader *r = NULL;
	char buf[64];
	size_t n = 0;
	uint32_t uid;

	deliver(msg, &uid);
	ok(coffer_message_open(mb, COFFER_FOLDER_INBOX, "INBOX", uid, &r) == 0, "open for pread");
	if (r == NULL)
		return;
	ok(coffer_message_record(r)->size == sizeof msg - 1, "the record is available");
	ok(coffer_message_pread(r, buf, 10, 16, &n) == 0 && n == 10 &&
	       !memcmp(buf, "0123456789", 10),
	   "pread 10 bytes at 16");
	ok(coffer_message_pread(r, buf, sizeof buf, sizeof msg - 3, &n) == 0 && n == 2 &&
	       !memcmp(buf, "j\n", 2),
	   "pread across the end is short");
	ok(coffer_message_pread(r, buf, sizeof buf, sizeof msg - 1, &n) == 0 && n == 0,
	   "pread at the end: 0");
	ok(coffer_message_pread(r, buf, sizeof buf, 1u << 30, &n) == 0 && n == 0,
	   "pread far past the end: 0");
	ok(coffer_message_read(r, buf, sizeof buf, &n) == 0 && n == sizeof msg - 1 &&
	       !memcmp(buf, msg, n),
	   "sequential read is independent of pread");
	ok(coffer_message_read(r, buf, sizeof buf, &n) == 0 && n == 0, "then the end: 0");
	ok(coffer_message_read(r, buf, sizeof buf, &n) == 0 && n == 0, "and again 0");
	coffer_message_close(&r);
	ok(r == NULL, "close clears the handle");
	coffer_message_close(&r);
}

int main(void)
{
	char dir[2048], store_path[PATH_MAX], key_path[PATH_MAX];

	if (coffer_crypto_init() < 0)
		return 99;
	snprintf(dir, sizeof dir, "%s", tap_tmpdir());
	snprintf(store_path, sizeof store_path, "%s/store", dir);
	snprintf(key_path, sizeof key_path, "%s/coffer.key", dir);
	ok(coffer_store_init(store_path, key_path, &st) == 0, "init a store");
	ok(coffer_account_add(st, ACCT, strlen(ACCT), NULL) == 0, "add " ACCT);
	ok(coffer_mailbox_open(st, ACCT, strlen(ACCT), &mb) == 0, "open the mailbox");
	if (mb == NULL)
		return tap_done();
	test_names_update();
	test_unique_names();
	test_sealer_boxes();
	test_expunge();
	test_damage();
	test_pread();
	coffer_mailbox_close(&mb);
	coffer_store_close(&st);
	return tap_done();
}
