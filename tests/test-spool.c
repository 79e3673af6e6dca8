/*
 * test-spool.c: spooled deliveries (engine/spool.h).
 *
 * A spooled delivery returns with its blob filled, noted and fsynced, and
 * no index entry; absorb then indexes it (uid, size, internal date, the
 * delivery event, which names the folder by id: read back under its name,
 * or "(deleted folder)") in delivery order, drops its pool record and its
 * note.
 * Opening the account's mailbox absorbs. A delivery to a folder that does
 * not exist yet is indexed at once. A torn file (bytes that do not match its
 * note) goes back to the pool, empty; a filled file without a note, or one
 * a writer still holds, is left alone. A folder deleted meanwhile sends the
 * message to INBOX. A delivery whose fsync fails leaves nothing, not even
 * a note. More deliveries than a pool batch work, the pool absorbing its
 * own when it runs out.
 */
#include "engine/account.h"
#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/events.h"
#include "engine/folder.h"
#include "engine/io.h"
#include "engine/mailops.h"
#include "engine/message.h"
#include "engine/pool.h"
#include "engine/record.h"
#include "engine/spool.h"
#include "engine/store.h"
#include "fixture.h"
#include "maildir/deliver.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACCT "spool@example.org"
#define ID COFFER_ID_BYTES

static struct coffer_store *st;
static unsigned char sacct[ID];
static char input[2048];

static int spool_text(const char *folder, const char *text, struct coffer_deliver_result *res)
{
	int fd = open(input, O_RDWR | O_CREAT | O_TRUNC, 0600), rc;

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return -1;
	lseek(fd, 0, SEEK_SET);
	rc = coffer_deliver_flags(st, ACCT, folder, fd, COFFER_DELIVER_SPOOL, res);
	close(fd);
	return rc;
}

static int count_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	(void)k, (void)kl, (void)v, (void)vl;
	++*(size_t *)arg;
	return 0;
}

struct count {
	enum coffer_db db;
	size_t n;
};

static int count_txn(struct coffer_txn *t, void *arg)
{
	struct count *c = arg;

	c->n = 0;
	return coffer_txn_scan(t, c->db, sacct, ID, count_one, &c->n);
}

/* index records of sacct in db, read without absorbing */
static size_t records(enum coffer_db db)
{
	struct count c = { db, 0 };

	coffer_index_view(coffer_store_index(st), count_txn, &c);
	return c.n;
}

struct msgs {
	uint32_t uid[128];
	int64_t date[128];
	uint64_t size[128];
	unsigned char blob[128][ID];
	size_t n;
};

static int list_one(const struct coffer_message *m, void *arg)
{
	struct msgs *l = arg;

	if (l->n < 128) {
		l->uid[l->n] = m->uid;
		l->date[l->n] = m->rec.internal_date;
		l->size[l->n] = m->rec.size;
		memcpy(l->blob[l->n], m->rec.blob_id, ID);
		l->n++;
	}
	return 0;
}

/* the messages of folder fid, through the mailbox (which absorbs) */
static struct msgs list(uint32_t fid)
{
	struct coffer_mailbox *mb = NULL;
	struct msgs l;

	memset(&l, 0, sizeof l);
	if (coffer_mailbox_open(st, ACCT, strlen(ACCT), &mb) == 0)
		coffer_message_list(mb, fid, list_one, &l);
	coffer_mailbox_close(&mb);
	return l;
}

static int blob_fd(const unsigned char *id, int flags)
{
	struct coffer_buf p = COFFER_BUF_INIT;
	int fd = -1;

	if (coffer_store_blob_path(st, sacct, id, &p) == 0)
		fd = open(coffer_buf_str(&p), flags | O_CLOEXEC);
	coffer_buf_free(&p);
	return fd;
}

/* the pool file most recently filled: the only non-empty one with a record */
struct filled {
	unsigned char id[ID];
	int n;
};

static int find_filled(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct filled *f = arg;
	struct stat sb;
	int fd;

	(void)kl, (void)v, (void)vl;
	fd = blob_fd((const unsigned char *)k + ID, O_RDONLY);
	if (fd >= 0 && fstat(fd, &sb) == 0 && sb.st_size > 0) {
		memcpy(f->id, (const unsigned char *)k + ID, ID);
		f->n++;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

static int filled_txn(struct coffer_txn *t, void *arg)
{
	return coffer_txn_scan(t, COFFER_DB_POOL, sacct, ID, find_filled, arg);
}

static struct filled filled(void)
{
	struct filled f = { { 0 }, 0 };

	coffer_index_view(coffer_store_index(st), filled_txn, &f);
	return f;
}

static off_t size_of(const unsigned char *id)
{
	struct stat sb;
	int fd = blob_fd(id, O_RDONLY);
	off_t n = -1;

	if (fd >= 0 && fstat(fd, &sb) == 0)
		n = sb.st_size;
	if (fd >= 0)
		close(fd);
	return n;
}

static int marked(const unsigned char *id)
{
	int fd = blob_fd(id, O_RDONLY), m = 0;

	if (fd >= 0)
		m = coffer_spool_marked(fd);
	if (fd >= 0)
		close(fd);
	return m;
}

static int deliveries;
static char last_folder[64];
static int count_delivery(const struct coffer_event *ev, void *arg)
{
	(void)arg;
	if (ev->type == COFFER_EVENT_DELIVERY) {
		deliveries++;
		snprintf(last_folder, sizeof last_folder, "%s", ev->folder);
	}
	return 0;
}

static int delivery_events(void)
{
	struct coffer_mailbox *mb = NULL;

	deliveries = 0;
	if (coffer_mailbox_open(st, ACCT, strlen(ACCT), &mb) == 0)
		coffer_events_scan(mb, 0, 0, count_delivery, NULL);
	coffer_mailbox_close(&mb);
	return deliveries;
}

static int failing_fsync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

struct del_args {
	const char *folder;
};

static int delete_txn(struct coffer_txn *t, void *arg)
{
	struct del_args *a = arg;

	return coffer_mailops_folder_delete_txn(t, st, sacct, a->folder, 0, NULL);
}

static int id_txn(struct coffer_txn *t, void *arg)
{
	struct coffer_account_rec rec;

	return coffer_account_lookup_txn(t, st, ACCT, arg, &rec);
}

int main(void)
{
	struct coffer_deliver_result res, work;
	struct coffer_io_ops fail;
	struct filled f;
	struct msgs l;
	uint64_t n;
	uint32_t work_fid;
	int fd, rc;

	snprintf(input, sizeof input, "%s/input.eml", tap_tmpdir());
	setenv("COFFER_NOW", "2026-03-01T10:00:00Z", 1);
	ok(fixture_store(NULL, &st, NULL) == 0 &&
	       coffer_account_add(st, ACCT, strlen(ACCT), NULL) == 0 &&
	       coffer_index_view(coffer_store_index(st), id_txn, sacct) == 0,
	   "a store and an account");

	/* a folder that does not exist yet: indexed at once */
	ok(spool_text("Work", "Subject: w\n\nfirst\n", &work) == 0 && !work.spooled &&
	       work.uid == 1 && records(COFFER_DB_MESSAGES) == 1,
	   "a delivery that creates its folder is indexed at once");
	work_fid = work.folder_id;

	/* spooled: durable, noted, not indexed */
	setenv("COFFER_NOW", "2026-03-01T10:00:05Z", 1);
	rc = spool_text(NULL, "Subject: one\n\nbody one\n", &res);
	f = filled();
	ok(rc == 0 && res.spooled && res.uid == 0 && res.folder_id == COFFER_FOLDER_INBOX,
	   "a delivery to INBOX is spooled");
	ok(f.n == 1 && marked(f.id) && records(COFFER_DB_MESSAGES) == 1,
	   "its pool file is filled and noted; no index entry yet");

	/* absorbed: indexed, record and note gone */
	ok(coffer_spool_absorb(st, sacct, &n) == 0 && n == 1, "absorb indexes it (%llu)",
	   (unsigned long long)n);
	l = list(COFFER_FOLDER_INBOX);
	ok(l.n == 1 && l.uid[0] == 1 && l.size[0] == 23 && memcmp(l.blob[0], f.id, ID) == 0 &&
	       l.date[0] == 1772359205LL * 1000000000LL,
	   "with uid 1, its size, its blob and its delivery time");
	ok(filled().n == 0 && !marked(f.id), "its pool record and its note are gone");
	ok(delivery_events() == 2 && strcmp(last_folder, "INBOX") == 0,
	   "and its delivery event is recorded, the folder named by id (%s)", last_folder);
	ok(coffer_spool_absorb(st, sacct, &n) == 0 && n == 0, "a second absorb finds nothing");

	/* delivery order, whatever the order of the pool's records */
	for (int i = 0; i < 3; i++) {
		char when[32], text[64];

		snprintf(when, sizeof when, "2026-03-01T11:00:0%dZ", i);
		setenv("COFFER_NOW", when, 1);
		snprintf(text, sizeof text, "Subject: %d\n\n%.*s\n", i, i + 1, "xyz");
		spool_text(NULL, text, &res);
	}
	l = list(COFFER_FOLDER_INBOX); /* the mailbox absorbs */
	ok(l.n == 4 && l.uid[1] == 2 && l.uid[3] == 4 && l.date[1] < l.date[2] &&
	       l.date[2] < l.date[3] && l.size[1] < l.size[2] && l.size[2] < l.size[3],
	   "opening the mailbox absorbs, uids in delivery order");

	/* torn: one byte differs from the note's digest */
	ok(spool_text(NULL, "Subject: torn\n\ntorn\n", &res) == 0 && (f = filled()).n == 1,
	   "another spooled delivery");
	fd = blob_fd(f.id, O_RDWR);
	ok(fd >= 0 && pwrite(fd, "\x5a", 1, 40) == 1, "a byte of it changed (a torn write)");
	close(fd);
	ok(coffer_spool_absorb(st, sacct, &n) == 0 && n == 0 && size_of(f.id) == 0 &&
	       !marked(f.id) && records(COFFER_DB_MESSAGES) == 5,
	   "absorb empties it, note and all, and indexes nothing");
	ok(records(COFFER_DB_POOL) > 0 && filled().n == 0, "the file is back in the pool");

	/* held by a writer, or filled without a note: left alone */
	ok(spool_text(NULL, "Subject: held\n\nheld\n", &res) == 0 && (f = filled()).n == 1,
	   "a spooled delivery");
	fd = blob_fd(f.id, O_RDONLY);
	ok(fd >= 0 && flock(fd, LOCK_EX) == 0, "a writer holds its file");
	ok(coffer_spool_absorb(st, sacct, &n) == 0 && n == 0 && marked(f.id),
	   "absorb skips a file a writer holds");
	close(fd);
	ok(coffer_spool_absorb(st, sacct, &n) == 0 && n == 1, "and takes it once released");
	{
		unsigned char id[ID];
		struct coffer_buf p = COFFER_BUF_INIT;

		ok(coffer_pool_claim(st, sacct, id, &fd, &p) == 0 && write(fd, "x", 1) == 1,
		   "another writer fills a pool file and closes it before its commit");
		close(fd);
		ok(coffer_spool_absorb(st, sacct, &n) == 0 && n == 0 && size_of(id) == 1,
		   "absorb leaves a file without a note alone");
		fd = blob_fd(id, O_RDWR);
		ok(fd >= 0 && ftruncate(fd, 0) == 0, "(emptied again)");
		close(fd);
		coffer_buf_free(&p);
	}

	/* the folder is deleted before the absorb: INBOX */
	{
		struct del_args d = { "Work" };
		size_t before = list(COFFER_FOLDER_INBOX).n;

		ok(spool_text("Work", "Subject: late\n\nlate\n", &res) == 0 && res.spooled &&
		       res.folder_id == work_fid,
		   "a spooled delivery to Work");
		ok(coffer_index_update(coffer_store_index(st), delete_txn, &d) == 0,
		   "Work is deleted before it is absorbed");
		ok(coffer_spool_absorb(st, sacct, &n) == 0 && n == 1 &&
		       list(COFFER_FOLDER_INBOX).n == before + 1,
		   "the message is absorbed into INBOX");
		ok(delivery_events() > 0 && strcmp(last_folder, "INBOX") == 0,
		   "and its event names INBOX (%s)", last_folder);
	}
	{
		struct del_args d = { "Later" };

		setenv("COFFER_NOW", "2026-03-01T12:00:00Z", 1);
		spool_text("Later", "Subject: a\n\na\n", &res); /* makes the folder */
		setenv("COFFER_NOW", "2026-03-01T12:00:01Z", 1);
		ok(spool_text("Later", "Subject: b\n\nb\n", &res) == 0 && res.spooled &&
		       coffer_spool_absorb(st, sacct, &n) == 0 && n == 1,
		   "a spooled delivery to Later, absorbed");
		ok(delivery_events() > 0 && strcmp(last_folder, "Later") == 0,
		   "its event names the folder by id: read back as Later (%s)", last_folder);
		ok(coffer_index_update(coffer_store_index(st), delete_txn, &d) == 0 &&
		       delivery_events() > 0 && strcmp(last_folder, "(deleted folder)") == 0,
		   "and as \"(deleted folder)\" once Later is deleted (%s)", last_folder);
	}

	/* a failed fsync: nothing stored, no note left */
	memset(&fail, 0, sizeof fail);
	fail = *coffer_io_get_ops();
	fail.fsync = failing_fsync;
	n = records(COFFER_DB_MESSAGES);
	coffer_io_set_ops(&fail);
	rc = spool_text(NULL, "Subject: fails\n\nx\n", &res);
	coffer_io_set_ops(NULL);
	ok(rc == COFFER_EIO && filled().n == 0,
	   "a delivery whose fsync fails leaves its file empty");
	coffer_err_clear();
	ok(coffer_spool_absorb(st, sacct, &n) == 0 && n == 0, "and nothing to absorb");

	/* more than a batch: the pool absorbs its own as it runs out */
	{
		size_t before = list(COFFER_FOLDER_INBOX).n;
		int good = 1;

		for (int i = 0; i < 2 * COFFER_POOL_BATCH + 5 && good; i++)
			good = spool_text(NULL, "Subject: many\n\nmany\n", &res) == 0;
		ok(good, "%d deliveries in a row", 2 * COFFER_POOL_BATCH + 5);
		ok(records(COFFER_DB_MESSAGES) >= 5 + before + COFFER_POOL_BATCH,
		   "most of them indexed already, as the pool ran out (%zu)",
		   records(COFFER_DB_MESSAGES));
		l = list(COFFER_FOLDER_INBOX);
		ok(l.n == before + 2 * COFFER_POOL_BATCH + 5 && filled().n == 0,
		   "all of them once the mailbox is opened (%zu)", l.n);
	}

	coffer_store_close(&st);
	return tap_done();
}
