/*
 * test-export.c: maildir/export.c on a real store built through the library:
 * messages delivered into several folders, flags, keywords and new/cur set
 * in the index, then exported to a directory and to tar archives and
 * compared file by file (names, contents, mtimes/atimes to the nanosecond,
 * modes, control files). Also: refused targets, a failing target and a
 * damaged blob leave nothing behind; terminated accounts are refused.
 */
#include "maildir/export.h"

#include "engine/account.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/message.h"
#include "engine/store.h"
#include "maildir/deliver.h"
#include "maildir/name.h"
#include "tests/tap.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACCT "alice@example.org"
#define NMSG 6

struct msg {
	const char *folder;
	char *data;
	size_t len;
	uint32_t fid, uid;
	/* what the index says after the updates */
	unsigned flags;
	int is_new;
	uint32_t keywords;
	int64_t internal_date;
	char *unique;
	char expect[1024]; /* relative path expected in the export */
};

static struct msg msgs[NMSG];
static struct coffer_store *st;
static struct coffer_mailbox *mb;

static int deliver_bytes(const char *folder, const char *p, size_t n,
                         struct coffer_deliver_result *res)
{
	int fd = memfd_create("msg", 0), rc;

	if (fd < 0 || coffer_io_write_all(fd, p, n) < 0 || lseek(fd, 0, SEEK_SET) != 0)
		return -EIO;
	rc = coffer_deliver(st, ACCT, folder, fd, res);
	close(fd);
	return rc;
}

struct update_args {
	struct msg *m;
	unsigned kw_names; /* intern this many keywords first (folder of m) */
};

static const char *const kw_names[] = { "$Forwarded", "Work", "Later" };

static int update_txn(struct coffer_txn *t, void *arg)
{
	struct update_args *u = arg;
	struct coffer_message_rec rec;
	unsigned idx;
	int rc = 0;

	for (unsigned i = 0; rc == 0 && i < u->kw_names; i++) {
		rc = coffer_folder_keyword_intern_txn(t, coffer_mailbox_id(mb), u->m->fid,
		                                      kw_names[i], coffer_mailbox_secret(mb), &idx);
		if (rc == 0 && idx != i)
			rc = COFFER_EINVAL;
	}
	if (rc == 0)
		rc = coffer_message_get_txn(t, coffer_mailbox_id(mb), u->m->fid, u->m->uid, &rec);
	if (rc < 0)
		return rc;
	rec.flags = (uint8_t)u->m->flags;
	rec.is_new = (uint8_t)u->m->is_new;
	rec.keywords = u->m->keywords;
	return coffer_message_update_txn(t, coffer_mailbox_id(mb), u->m->fid, u->m->uid, &rec);
}

static int record_msg(const struct coffer_message *cm, void *arg)
{
	for (int i = 0; i < NMSG; i++)
		if (msgs[i].fid == cm->folder_id && msgs[i].uid == cm->uid) {
			msgs[i].internal_date = cm->rec.internal_date;
			msgs[i].unique = strdup(cm->unique);
		}
	return 0;
}

static int file_equals(const char *path, const char *p, size_t n)
{
	struct stat sb;
	char *buf;
	int fd = open(path, O_RDONLY), same;
	size_t got = 0;

	if (fd < 0 || fstat(fd, &sb) < 0 || (size_t)sb.st_size != n) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	buf = malloc(n + 1);
	same = coffer_io_read_full(fd, buf, n, &got) == 0 && got == n && memcmp(buf, p, n) == 0;
	free(buf);
	close(fd);
	return same;
}

static int count_tree(const char *dir, int *files, int *dirs)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char sub[4096];
	struct stat sb;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
		if (lstat(sub, &sb) < 0)
			return -1;
		if (S_ISDIR(sb.st_mode)) {
			(*dirs)++;
			count_tree(sub, files, dirs);
		} else {
			(*files)++;
		}
	}
	closedir(d);
	return 0;
}

static int64_t ns_of(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

/* Checks an exported directory against msgs and the control files. */
/* atime: also check atimes (only before anything has read the files) */
static void check_tree(const char *out, const char *what, int atime)
{
	char p[4096];
	struct stat sb;
	int bad = 0, files = 0, dirs = 0;
	static const char *const dirs_want[] = {
		"cur",
		"new",
		"tmp",
		".Lists.debian",
		".Lists.debian/cur",
		".Lists.debian/new",
		".Lists.debian/tmp",
		".Entw&APw-rfe",
		".Entw&APw-rfe/cur",
		".Entw&APw-rfe/new",
		".Entw&APw-rfe/tmp",
	};

	for (size_t i = 0; i < sizeof dirs_want / sizeof dirs_want[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", out, dirs_want[i]);
		if (stat(p, &sb) < 0 || !S_ISDIR(sb.st_mode) || (sb.st_mode & 0777) != 0700) {
			tap_diag("%s: missing or not a 0700 directory", p);
			bad++;
		}
	}
	ok(bad == 0, "%s: Maildir++ directories, 0700", what);
	snprintf(p, sizeof p, "%s/subscriptions", out);
	ok(file_equals(p, "INBOX\nEntw&APw-rfe\nLists.debian\n", 32),
	   "%s: subscriptions lists every folder, Maildir++ names", what);
	snprintf(p, sizeof p, "%s/dovecot-keywords", out);
	ok(file_equals(p, "0 $Forwarded\n1 Work\n2 Later\n", 28), "%s: INBOX dovecot-keywords",
	   what);
	snprintf(p, sizeof p, "%s/.Lists.debian/dovecot-keywords", out);
	ok(access(p, F_OK) != 0, "%s: no dovecot-keywords for a folder without keywords", what);
	snprintf(p, sizeof p, "%s/.Lists.debian/maildirfolder", out);
	ok(stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0,
	   "%s: maildirfolder in folders", what);
	snprintf(p, sizeof p, "%s/maildirfolder", out);
	ok(access(p, F_OK) != 0, "%s: no maildirfolder at the root", what);
	bad = 0;
	for (int i = 0; i < NMSG; i++) {
		snprintf(p, sizeof p, "%s/%s", out, msgs[i].expect);
		/* stat before reading: reading may move the atime */
		if (stat(p, &sb) < 0 || !file_equals(p, msgs[i].data, msgs[i].len)) {
			tap_diag("%s: missing or differs", p);
			bad++;
			continue;
		}
		if (ns_of(&sb.st_mtim) != msgs[i].internal_date ||
		    (atime && ns_of(&sb.st_atim) != msgs[i].internal_date) ||
		    (sb.st_mode & 0777) != 0600) {
			tap_diag("%s: mtime %lld atime %lld mode %o, want %lld 0600", p,
			         (long long)ns_of(&sb.st_mtim), (long long)ns_of(&sb.st_atim),
			         sb.st_mode & 0777, (long long)msgs[i].internal_date);
			bad++;
		}
	}
	ok(bad == 0,
	   "%s: every message byte-identical under its Maildir name, mtime = atime = "
	   "internal date (ns), 0600",
	   what);
	count_tree(out, &files, &dirs);
	/* messages + subscriptions + 1 dovecot-keywords + 2 maildirfolder */
	ok(files == NMSG + 4 && dirs == 11, "%s: nothing else (%d files, %d dirs)", what, files,
	   dirs);
}

/* Compares a tar export with the directory export ref, entry by entry. */
static void check_tar(const char *tarpath, const char *ref, int want_filter, const char *what)
{
	struct archive *ar = archive_read_new();
	struct archive_entry *e;
	char p[4096];
	struct stat sb;
	char *buf = malloc(8u << 20);
	int bad = 0, files = 0, dirs = 0, rfiles = 0, rdirs = 0, r;

	archive_read_support_format_tar(ar);
	archive_read_support_filter_all(ar);
	if (archive_read_open_filename(ar, tarpath, 65536) != ARCHIVE_OK) {
		ok(0, "%s: opens", what);
		goto out;
	}
	while ((r = archive_read_next_header(ar, &e)) == ARCHIVE_OK) {
		size_t got = 0;
		la_ssize_t n;

		snprintf(p, sizeof p, "%s/%s", ref, archive_entry_pathname(e));
		if (lstat(p, &sb) < 0) {
			tap_diag("%s: %s not in the directory export", what,
			         archive_entry_pathname(e));
			bad++;
			continue;
		}
		if (archive_entry_filetype(e) == AE_IFDIR) {
			dirs++;
			bad += !S_ISDIR(sb.st_mode) || (archive_entry_perm(e) & 0777) != 0700;
			continue;
		}
		files++;
		while ((n = archive_read_data(ar, buf + got, (8u << 20) - got)) > 0)
			got += (size_t)n;
		if (!S_ISREG(sb.st_mode) || !file_equals(p, buf, got) ||
		    (archive_entry_perm(e) & 0777) != 0600) {
			tap_diag("%s: %s differs", what, archive_entry_pathname(e));
			bad++;
		}
		/* messages carry their internal date; control files the export time */
		if (strstr(archive_entry_pathname(e), "/cur/") ||
		    strstr(archive_entry_pathname(e), "/new/") ||
		    !strncmp(archive_entry_pathname(e), "cur/", 4) ||
		    !strncmp(archive_entry_pathname(e), "new/", 4)) {
			int64_t t = (int64_t)archive_entry_mtime(e) * 1000000000LL +
			            archive_entry_mtime_nsec(e);

			if (t != ns_of(&sb.st_mtim)) {
				tap_diag("%s: %s mtime %lld, want %lld", what,
				         archive_entry_pathname(e), (long long)t,
				         (long long)ns_of(&sb.st_mtim));
				bad++;
			}
		}
	}
	count_tree(ref, &rfiles, &rdirs);
	ok(r == ARCHIVE_EOF && bad == 0 && files == rfiles && dirs == rdirs,
	   "%s: same tree as the directory export (%d files, %d dirs): names, contents, ns mtimes, "
	   "modes",
	   what, files, dirs);
	ok(archive_filter_code(ar, 0) == want_filter, "%s: filter %d", what, want_filter);
out:
	archive_read_free(ar);
	free(buf);
}

static ssize_t enospc_after(int fd, const void *p, size_t n);
static int write_budget;

static ssize_t enospc_after(int fd, const void *p, size_t n)
{
	if (write_budget-- <= 0) {
		errno = ENOSPC;
		return -1;
	}
	return write(fd, p, n);
}

static int dir_is_empty(const char *dir)
{
	int files = 0, dirs = 0;

	return count_tree(dir, &files, &dirs) == 0 && files == 0 && dirs == 0;
}

int main(void)
{
	const char *tmp = tap_tmpdir();
	struct coffer_export_stats stats;
	struct coffer_deliver_result res;
	char store[4096], key[4096], out[4096], p[8192];
	int rc;

	snprintf(store, sizeof store, "%s/store", tmp);
	snprintf(key, sizeof key, "%s/coffer.key", tmp);
	rc = coffer_store_init(store, key, &st);
	ok(rc == 0, "store init (%s)", coffer_errmsg());
	if (rc < 0)
		return tap_done();
	ok(coffer_account_add(st, ACCT, strlen(ACCT), NULL) == 0, "account add");

	/* INBOX: flagged+seen with keywords (and a bit with no name), cur
	 * without flags, new with flags; a large one; other folders */
	static const char *const folders[NMSG] = { "INBOX", "INBOX",        "INBOX",
		                                   "INBOX", "Lists/debian", "Entwürfe" };
	for (int i = 0; i < NMSG; i++) {
		struct coffer_buf b = COFFER_BUF_INIT;

		coffer_buf_printf(&b,
		                  "From: Bob <bob@example.org>\r\nSubject: message %d\r\n"
		                  "Message-ID: <%d@example.org>\r\n\r\nBody %d\r\n",
		                  i, i, i);
		if (i == 3) {
			/* 3 MiB + a bit: many chunks, streamed */
			for (size_t k = 0; b.len < (3u << 20) + 777; k++)
				coffer_buf_printf(&b, "line %zu of a long message, with text\r\n",
				                  k);
		}
		if (i == 1)
			coffer_buf_append(&b, "nul\0byte\n", 9);
		msgs[i].folder = folders[i];
		msgs[i].len = b.len;
		msgs[i].data = (char *)b.data;
		rc = deliver_bytes(folders[i], msgs[i].data, msgs[i].len, &res);
		msgs[i].fid = res.folder_id;
		msgs[i].uid = res.uid;
		msgs[i].is_new = 1;
		if (rc < 0)
			break;
	}
	ok(rc == 0, "delivered %d messages (%s)", NMSG, rc ? coffer_errmsg() : "");
	rc = coffer_mailbox_open(st, ACCT, strlen(ACCT), &mb);
	ok(rc == 0, "mailbox open");
	if (rc < 0)
		return tap_done();

	msgs[0].flags = COFFER_FLAG_SEEN | COFFER_FLAG_FLAGGED;
	msgs[0].is_new = 0;
	msgs[0].keywords = (1u << 0) | (1u << 2) | (1u << 7); /* 7 has no name */
	msgs[1].is_new = 0;
	msgs[2].flags = COFFER_FLAG_REPLIED;
	msgs[4].flags = COFFER_FLAG_SEEN | COFFER_FLAG_DRAFT | COFFER_FLAG_TRASHED |
	                COFFER_FLAG_PASSED;
	msgs[4].is_new = 0;
	rc = 0;
	for (int i = 0; rc == 0 && i < NMSG; i++) {
		struct update_args u = { &msgs[i], i == 0 ? 3 : 0 };

		rc = coffer_index_update(coffer_store_index(st), update_txn, &u);
	}
	ok(rc == 0, "flags, keywords, new/cur set (%s)", rc ? coffer_errmsg() : "");
	for (int i = 0; i < NMSG; i++)
		if (i == 0 || msgs[i].fid != msgs[i - 1].fid)
			coffer_message_list(mb, msgs[i].fid, record_msg, NULL);
	for (int i = 0; i < NMSG; i++) {
		const char *dir = !strcmp(msgs[i].folder, "INBOX")          ? ""
		                  : !strcmp(msgs[i].folder, "Lists/debian") ? ".Lists.debian/"
		                                                            : ".Entw&APw-rfe/";

		ok(msgs[i].unique != NULL && msgs[i].internal_date != 0, "message %d listed", i);
		if (msgs[i].unique == NULL)
			return tap_done();
		snprintf(msgs[i].expect, sizeof msgs[i].expect, "%s%s%s", dir,
		         msgs[i].is_new ? "new/" : "cur/", msgs[i].unique);
	}
	strcat(msgs[0].expect, ":2,FSac");
	strcat(msgs[1].expect, ":2,");
	strcat(msgs[2].expect, ":2,R");
	strcat(msgs[4].expect, ":2,DPST");

	/* to a new directory */
	snprintf(out, sizeof out, "%s/out", tmp);
	rc = coffer_export_dir(mb, out, &stats);
	ok(rc == 0, "export to a new directory (%s)", rc ? coffer_errmsg() : "");
	ok(stats.messages == NMSG && stats.folders == 3 && stats.skipped == 0,
	   "stats: %llu messages, %llu folders", (unsigned long long)stats.messages,
	   (unsigned long long)stats.folders);
	{
		uint64_t total = 0;

		for (int i = 0; i < NMSG; i++)
			total += msgs[i].len;
		ok(stats.bytes == total, "stats: bytes");
	}
	{
		struct stat sb;

		ok(stat(out, &sb) == 0 && (sb.st_mode & 0777) == 0700, "created 0700");
	}
	check_tree(out, "dir", 1);

	/* refused targets */
	rc = coffer_export_dir(mb, out, &stats);
	ok(rc == COFFER_EEXIST && stats.failed_at == COFFER_EXPORT_FAILED_CREATE,
	   "a non-empty directory is refused (%s)", coffer_errmsg());
	check_tree(out, "dir after the refusal", 0);
	snprintf(p, sizeof p, "%s/subscriptions", out);
	rc = coffer_export_dir(mb, p, &stats);
	ok(rc == COFFER_EEXIST && stats.failed_at == COFFER_EXPORT_FAILED_CREATE,
	   "a file is refused as a directory");
	snprintf(p, sizeof p, "%s/missing/parent", tmp);
	rc = coffer_export_dir(mb, p, &stats);
	ok(rc == COFFER_ENOTFOUND && stats.failed_at == COFFER_EXPORT_FAILED_CREATE &&
	       strstr(coffer_errmsg(), p),
	   "a missing parent: not found, named (%s)", coffer_errmsg());

	/* into an existing empty directory */
	snprintf(p, sizeof p, "%s/empty", tmp);
	mkdir(p, 0755);
	rc = coffer_export_dir(mb, p, &stats);
	ok(rc == 0, "export into an existing empty directory");
	check_tree(p, "empty dir", 1);

	/* tar, tar.zst */
	snprintf(p, sizeof p, "%s/x.tar", tmp);
	rc = coffer_export_tar(mb, p, &stats);
	ok(rc == 0 && stats.messages == NMSG, "export to x.tar (%s)", rc ? coffer_errmsg() : "");
	check_tar(p, out, ARCHIVE_FILTER_NONE, "tar");
	rc = coffer_export_tar(mb, p, &stats);
	ok(rc == COFFER_EEXIST && stats.failed_at == COFFER_EXPORT_FAILED_CREATE,
	   "an existing tar file is refused");
	snprintf(p, sizeof p, "%s/x.tar.zst", tmp);
	rc = coffer_export_tar(mb, p, &stats);
	ok(rc == 0, "export to x.tar.zst");
	check_tar(p, out, ARCHIVE_FILTER_ZSTD, "tar.zst");

	/* the target fails midway: everything created is removed */
	{
		struct coffer_io_ops ops = *coffer_io_get_ops();

		ops.write = enospc_after;
		snprintf(p, sizeof p, "%s/full", tmp);
		write_budget = 3;
		coffer_io_set_ops(&ops);
		rc = coffer_export_dir(mb, p, &stats);
		coffer_io_set_ops(NULL);
		ok(rc == COFFER_ENOSPACE && stats.failed_at == COFFER_EXPORT_FAILED_WRITE,
		   "disk full midway: COFFER_ENOSPACE (%s)", coffer_errmsg());
		ok(strstr(coffer_errmsg(), "removed") != NULL, "the detail says the partial tree "
		                                               "was removed");
		ok(access(p, F_OK) != 0, "the directory it created is gone");

		snprintf(p, sizeof p, "%s/empty2", tmp);
		mkdir(p, 0700);
		write_budget = 5;
		coffer_io_set_ops(&ops);
		rc = coffer_export_dir(mb, p, &stats);
		coffer_io_set_ops(NULL);
		ok(rc == COFFER_ENOSPACE && dir_is_empty(p),
		   "an existing directory is left empty after a failure");

		snprintf(p, sizeof p, "%s/full.tar", tmp);
		write_budget = 1;
		coffer_io_set_ops(&ops);
		rc = coffer_export_tar(mb, p, &stats);
		coffer_io_set_ops(NULL);
		ok(rc == COFFER_ENOSPACE && stats.failed_at == COFFER_EXPORT_FAILED_WRITE &&
		       access(p, F_OK) != 0,
		   "tar: disk full leaves no file (%s)", coffer_errmsg());
	}

	/* a damaged blob stops the export, names the message, leaves nothing */
	{
		struct coffer_message_reader *r = NULL;
		struct coffer_buf bp = COFFER_BUF_INIT;
		unsigned char blob_id[COFFER_ID_BYTES];

		rc = coffer_message_open(mb, msgs[4].fid, "Lists/debian", msgs[4].uid, &r);
		if (rc == 0)
			memcpy(blob_id, coffer_message_record(r)->blob_id, sizeof blob_id);
		coffer_message_close(&r);
		rc = rc == 0 ? coffer_store_blob_path(st, coffer_mailbox_id(mb), blob_id, &bp) : rc;
		ok(rc == 0 && truncate(coffer_buf_str(&bp), 60) == 0, "damaged one blob");
		coffer_buf_free(&bp);
		snprintf(p, sizeof p, "%s/damaged", tmp);
		rc = coffer_export_dir(mb, p, &stats);
		snprintf(out, sizeof out, "uid %u", msgs[4].uid);
		ok(rc == COFFER_ECORRUPT && stats.failed_at == COFFER_EXPORT_FAILED_SOURCE &&
		       strstr(coffer_errmsg(), "Lists/debian") && strstr(coffer_errmsg(), out),
		   "damaged message: COFFER_ECORRUPT naming folder and uid (%s)", coffer_errmsg());
		ok(access(p, F_OK) != 0, "and no partial tree is left");
		snprintf(p, sizeof p, "%s/damaged.tar.zst", tmp);
		rc = coffer_export_tar(mb, p, &stats);
		ok(rc == COFFER_ECORRUPT && access(p, F_OK) != 0, "tar: same, no file left");
	}
	coffer_mailbox_close(&mb);

	/* a terminated account cannot be opened for export */
	ok(coffer_account_terminate(st, ACCT, strlen(ACCT)) == 0, "terminate");
	ok(coffer_mailbox_open(st, ACCT, strlen(ACCT), &mb) == COFFER_ETERMINATED,
	   "a terminated account is refused");

	for (int i = 0; i < NMSG; i++) {
		free(msgs[i].data);
		free(msgs[i].unique);
	}
	coffer_store_close(&st);
	return tap_done();
}
