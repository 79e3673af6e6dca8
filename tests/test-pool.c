/*
 * test-pool.c: the blob pool (engine/pool.h).
 *
 * A claim on an empty pool makes a batch (COFFER_POOL_BATCH empty files in
 * one blob directory, each recorded); claims hand out distinct files, never
 * one another claimant holds or has filled, and drop the records of files
 * gone; a delivery fills a pool file and
 * its commit drops the record; a failed delivery gives its file back, empty.
 * verify counts pool files neither as blobs nor as orphans, but a filled pool
 * file nothing recorded is an orphan. trim removes old unclaimed files and
 * their records, keeps a file a claimant holds, and only forgets the record
 * of a filled one; a file trimmed under a claimant that opened it first is
 * not handed out (it is unlinked).
 */
#include "engine/account.h"
#include "engine/clock.h"
#include "engine/config.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/pool.h"
#include "engine/record.h"
#include "engine/store.h"
#include "engine/verify.h"
#include "maildir/deliver.h"
#include "tap.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID COFFER_ID_BYTES

static struct coffer_store *st;
static unsigned char pacct[ID];

static int count_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	(void)k, (void)kl, (void)v, (void)vl;
	++*(size_t *)arg;
	return 0;
}

static int count_txn(struct coffer_txn *t, void *arg)
{
	*(size_t *)arg = 0;
	return coffer_txn_scan(t, COFFER_DB_POOL, pacct, ID, count_one, arg);
}

static size_t records(void)
{
	size_t n = 0;

	coffer_index_view(coffer_store_index(st), count_txn, &n);
	return n;
}

struct has_args {
	const unsigned char *id;
	int has;
};

static int has_txn(struct coffer_txn *t, void *arg)
{
	struct has_args *h = arg;

	h->has = coffer_pool_has_txn(t, pacct, h->id);
	return h->has < 0 ? h->has : 0;
}

static int recorded(const unsigned char *id)
{
	struct has_args h = { id, -1 };

	coffer_index_view(coffer_store_index(st), has_txn, &h);
	return h.has;
}

struct recs {
	unsigned char ids[4 * COFFER_POOL_BATCH][ID];
	size_t n;
};

static int rec_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct recs *f = arg;

	(void)kl, (void)v, (void)vl;
	memcpy(f->ids[f->n++], (const unsigned char *)k + ID, ID);
	return f->n == sizeof f->ids / sizeof f->ids[0];
}

static int recs_txn(struct coffer_txn *t, void *arg)
{
	return coffer_txn_scan(t, COFFER_DB_POOL, pacct, ID, rec_one, arg);
}

static int take_txn(struct coffer_txn *t, void *arg)
{
	return coffer_pool_take_txn(t, pacct, arg);
}

static off_t file_size(const unsigned char *id)
{
	struct coffer_buf p = COFFER_BUF_INIT;
	struct stat sb;
	off_t n = -1;

	if (coffer_store_blob_path(st, pacct, id, &p) == 0 && stat(coffer_buf_str(&p), &sb) == 0)
		n = sb.st_size;
	coffer_buf_free(&p);
	return n;
}

struct vrun {
	int orphans, pending, other;
	struct coffer_verify_stats stats;
	int rc;
};

static int collect(const struct coffer_verify_problem *p, void *arg)
{
	struct vrun *r = arg;

	if (strstr(p->problem, "orphan blob"))
		r->orphans++;
	else if (p->pending)
		r->pending++;
	else {
		r->other++;
		tap_diag("verify: %s", p->problem);
	}
	return 0;
}

static struct vrun verify(int64_t grace)
{
	struct coffer_verify_opts o;
	struct vrun r;

	memset(&o, 0, sizeof o);
	memset(&r, 0, sizeof r);
	o.grace_ns = grace;
	o.problem = collect;
	o.problem_arg = &r;
	r.rc = coffer_verify_run(st, &o, &r.stats);
	return r;
}

static int deliver_text(const char *text, struct coffer_deliver_result *res)
{
	char path[PATH_MAX];
	int fd, rc;

	snprintf(path, sizeof path, "%s/msg", tap_tmpdir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    lseek(fd, 0, SEEK_SET) != 0)
		return -1;
	rc = coffer_deliver(st, "a@example.com", NULL, fd, res);
	close(fd);
	return rc;
}

int main(void)
{
	char store_path[PATH_MAX], key_path[PATH_MAX];
	unsigned char id1[ID], id2[ID], id[ID];
	struct coffer_buf path = COFFER_BUF_INIT, path2 = COFFER_BUF_INIT;
	struct coffer_account_info ia;
	struct coffer_deliver_result res;
	struct vrun v;
	uint64_t trimmed = 0;
	int64_t now;
	int fd1 = -1, fd2 = -1, fd, distinct, rc;
	size_t before;

	if (coffer_crypto_init() < 0)
		return 99;
	snprintf(store_path, sizeof store_path, "%s/store", tap_tmpdir());
	snprintf(key_path, sizeof key_path, "%s/coffer.key", tap_tmpdir());
	ok(coffer_store_init(store_path, key_path, &st) == 0, "init a store");
	ok(coffer_account_add(st, "a@example.com", 13, &ia) == 0, "an account");
	memcpy(pacct, ia.id, ID);
	coffer_account_info_clear(&ia);

	/* ---- claims ---- */
	ok(records() == 0, "the pool starts empty");
	rc = coffer_pool_claim(st, pacct, id1, &fd1, &path);
	ok(rc == 0 && fd1 >= 0, "a claim on an empty pool makes a batch and succeeds");
	ok(records() == COFFER_POOL_BATCH, "the batch: %d records (%zu)", COFFER_POOL_BATCH,
	   records());
	ok(file_size(id1) == 0 && recorded(id1) == 1, "the claimed file is empty and recorded");
	ok(flock(open(coffer_buf_str(&path), O_RDONLY | O_CLOEXEC), LOCK_EX | LOCK_NB) < 0,
	   "and locked by its claimant");
	rc = coffer_pool_claim(st, pacct, id2, &fd2, &path2);
	ok(rc == 0 && memcmp(id1, id2, ID) != 0, "a second claim gets another file");
	ok(memcmp(coffer_buf_str(&path), coffer_buf_str(&path2),
	          strlen(coffer_buf_str(&path)) - 2 * ID) == 0,
	   "in the same blob directory (one fsync made the batch durable)");

	/* a filled file is never handed out again, even once unlocked */
	ok(write(fd1, "x", 1) == 1, "the first claimant writes");
	close(fd1);
	fd1 = -1;
	distinct = 1;
	for (int i = 0; i < 3 * COFFER_POOL_BATCH && distinct; i++) {
		rc = coffer_pool_claim(st, pacct, id, &fd, &path2);
		if (rc != 0)
			break;
		distinct = memcmp(id, id1, ID) != 0 && memcmp(id, id2, ID) != 0;
		close(fd);
	}
	ok(distinct, "claims never return a filled file or one held by another claimant");
	ok(coffer_index_update(coffer_store_index(st), take_txn, id1) == 0 && recorded(id1) == 0,
	   "take drops the record of the filled file");
	ok(coffer_index_update(coffer_store_index(st), take_txn, id1) == 0,
	   "taking it again is no error");

	/* stale records (files gone) are dropped by the claim that meets them:
	 * the files of every record but the one held by the second claimant
	 * are removed; the claim drops them, makes a batch and claims from it */
	{
		struct recs f = { { { 0 } }, 0 };
		size_t n = 0;
		int gone = 1;

		coffer_index_view(coffer_store_index(st), recs_txn, &f);
		for (size_t i = 0; i < f.n; i++)
			if (memcmp(f.ids[i], id2, ID) != 0 &&
			    coffer_store_blob_path(st, pacct, f.ids[i], &path2) == 0 &&
			    unlink(coffer_buf_str(&path2)) == 0)
				n++;
		before = records();
		rc = coffer_pool_claim(st, pacct, id, &fd, &path2);
		for (size_t i = 0; i < f.n; i++)
			gone = gone && (memcmp(f.ids[i], id2, ID) == 0 || recorded(f.ids[i]) == 0);
		ok(rc == 0 && n + 1 == f.n && gone,
		   "a claim that finds %zu of the files it looks at gone drops their records, and "
		   "claims another",
		   n);
		ok(records() == before - n + COFFER_POOL_BATCH, "(%zu -> %zu records)", before,
		   records());
		close(fd);
	}

	/* ---- verify ---- */
	v = verify(0);
	ok(v.rc == 0 && v.orphans == 0 && v.pending == 1 && v.other == 0,
	   "verify: empty pool files are no problem; the filled one is pending (%d orphans, %d "
	   "pending, %d other)",
	   v.orphans, v.pending, v.other);
	ok(v.stats.blobs == 1, "and only the filled file counts as a blob (%llu)",
	   (unsigned long long)v.stats.blobs);
	v = verify(1);
	ok(v.orphans == 1 && v.other == 0, "past the grace period the filled file is an orphan");

	/* ---- delivery ---- */
	before = records();
	ok(deliver_text("Subject: pooled\r\n\r\nhello\r\n", &res) == 0, "a delivery");
	ok(records() == before - 1, "it took one pool file (%zu -> %zu records)", before,
	   records());
	ok(deliver_text("Subject: x\r\n\r\n", &res) == 0 && records() == before - 2,
	   "and the next delivery the next one");
	v = verify(0);
	ok(v.rc == 0 && v.other == 0 && v.stats.messages == 2,
	   "verify: the delivered messages read back");

	/* ---- trim ---- */
	ok(coffer_clock_now(&now) == 0, "now");
	ok(coffer_pool_trim(st, now - COFFER_NS_PER_DAY, &trimmed) == 0 && trimmed == 0,
	   "trim keeps files made within the day");
	{
		/* a claimant that opened a file before the trim unlinked it */
		struct coffer_buf p3 = COFFER_BUF_INIT;
		int early;

		coffer_store_blob_path(st, pacct, id1, &p3); /* any path; replaced below */
		rc = coffer_pool_claim(st, pacct, id, &fd, &p3);
		close(fd);
		early = open(coffer_buf_str(&p3), O_RDWR | O_CLOEXEC);
		ok(coffer_pool_trim(st, now + COFFER_NS_PER_DAY, &trimmed) == 0,
		   "trim of everything older than tomorrow");
		ok(file_size(id2) == 0 && recorded(id2) == 1,
		   "keeps the file a claimant holds, and its record");
		ok(file_size(id1) == 1, "keeps the filled file (an orphan for verify)");
		ok(file_size(id) == -1 && recorded(id) == 0, "removes unclaimed files and records");
		ok(records() == 1 && trimmed >= 1,
		   "only the held file's record is left (%zu; %llu "
		   "trimmed)",
		   records(), (unsigned long long)trimmed);
		ok(early >= 0 && flock(early, LOCK_EX | LOCK_NB) == 0,
		   "a file opened before the trim "
		   "can still be locked...");
		{
			struct stat sb;

			ok(fstat(early, &sb) == 0 && sb.st_nlink == 0,
			   "...but it is unlinked, which a claim checks under the lock");
		}
		close(early);
		coffer_buf_free(&p3);
	}
	close(fd2);

	/* ---- a failed delivery gives its file back ---- */
	{
		struct coffer_config cfg;
		char conf[PATH_MAX + 32];

		snprintf(conf, sizeof conf, "%s/coffer.conf", store_path);
		coffer_config_defaults(&cfg);
		rc = coffer_config_load(&cfg, conf);
		cfg.max_message_size = 1024;
		if (rc == 0)
			rc = coffer_config_save(&cfg, conf);
		coffer_config_free(&cfg);
		coffer_store_close(&st);
		ok(rc == 0 && coffer_store_open(store_path, key_path, &st) == 0,
		   "max_message_size = 1K");
	}
	ok(coffer_pool_fill(st, pacct) == 1, "a fresh batch");
	before = records();
	{
		char big[1200];

		memset(big, 'x', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		memcpy(big, "Subject: big\r\n\r\n", 16);
		rc = deliver_text(big, &res);
		ok(rc == COFFER_ELIMIT,
		   "a longer message fails after its blob was started: ELIMIT "
		   "(%d: %s)",
		   rc, coffer_errmsg());
	}
	ok(records() == before, "the pool keeps its file (%zu records)", records());
	v = verify(1);
	ok(v.rc == 0 && v.orphans == 1 && v.other == 0,
	   "given back empty: verify finds only the earlier orphan");

	coffer_buf_free(&path);
	coffer_buf_free(&path2);
	coffer_store_close(&st);
	return tap_done();
}
