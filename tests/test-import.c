/*
 * test-import.c: maildir/import.c: entry classification, folder names with
 * and without a prefix, dovecot-keywords parsing, escaping of reported paths,
 * and whole imports into a real store: flags, keywords (names and bits),
 * internal dates, new/cur, unique names, bytes, skip reasons, resuming,
 * duplicates, small batches, orphan cleanup through the journal, the import
 * lock, and bad input.
 */
#include "tap.h"

#include "engine/account.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/message.h"
#include "engine/record.h"
#include "engine/store.h"
#include "maildir/import.h"
#include "maildir/name.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char *path_of(const char *a, const char *b)
{
	char *p;

	if (asprintf(&p, "%s/%s", a, b) < 0)
		abort();
	return p;
}

static void mkdirs(const char *root, const char *rel)
{
	char *p = path_of(root, rel), *s;

	mkdir(root, 0700);
	for (s = p + strlen(root) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		mkdir(p, 0700);
		*s = '/';
	}
	mkdir(p, 0700);
	free(p);
}

/* Writes a file under root; mtime_s > 0 sets the mtime (with 123456789 ns). */
static void put(const char *root, const char *rel, const char *text, long mtime_s)
{
	char *p = path_of(root, rel);
	FILE *f = fopen(p, "wb");

	if (f == NULL) {
		perror(p);
		abort();
	}
	fputs(text, f);
	fclose(f);
	if (mtime_s > 0) {
		struct timespec ts[2] = { { mtime_s, 123456789 }, { mtime_s, 123456789 } };

		utimensat(AT_FDCWD, p, ts, 0);
	}
	free(p);
}

static void test_classify(void)
{
	ok(coffer_import_classify("cur") == COFFER_IMPORT_ENTRY_MAILDIR, "cur is a Maildir dir");
	ok(coffer_import_classify("new") == COFFER_IMPORT_ENTRY_MAILDIR, "new is a Maildir dir");
	ok(coffer_import_classify("tmp") == COFFER_IMPORT_ENTRY_IGNORED, "tmp is ignored");
	ok(coffer_import_classify("dovecot-uidlist") == COFFER_IMPORT_ENTRY_IGNORED, "uidlist");
	ok(coffer_import_classify("dovecot-keywords") == COFFER_IMPORT_ENTRY_IGNORED, "keywords");
	ok(coffer_import_classify("dovecot.index.cache") == COFFER_IMPORT_ENTRY_IGNORED, "index");
	ok(coffer_import_classify("dovecot-uidvalidity.5f1e") == COFFER_IMPORT_ENTRY_IGNORED,
	   "uidvalidity");
	ok(coffer_import_classify("subscriptions") == COFFER_IMPORT_ENTRY_IGNORED, "subscriptions");
	ok(coffer_import_classify("maildirfolder") == COFFER_IMPORT_ENTRY_IGNORED, "maildirfolder");
	ok(coffer_import_classify("courierimapuiddb") == COFFER_IMPORT_ENTRY_IGNORED, "courier");
	ok(coffer_import_classify(".Sent") == COFFER_IMPORT_ENTRY_FOLDER, ".Sent is a folder");
	ok(coffer_import_classify(".Lists.debian") == COFFER_IMPORT_ENTRY_FOLDER, "nested folder");
	ok(coffer_import_classify("..") == COFFER_IMPORT_ENTRY_UNKNOWN, ".. is not a folder");
	ok(coffer_import_classify("notes.txt") == COFFER_IMPORT_ENTRY_UNKNOWN, "stray file");
	ok(coffer_import_skip_key(COFFER_IMPORT_SKIP_SYMLINK)[0] != '?' &&
	       coffer_import_skip_text(COFFER_IMPORT_SKIP_COUNT)[0] == '?',
	   "skip keys and texts");
}

static void test_folder_names(void)
{
	struct coffer_buf b = COFFER_BUF_INIT;

	ok(coffer_import_folder_name(NULL, 0, NULL, &b) == 0 &&
	       !strcmp(coffer_buf_str(&b), "INBOX"),
	   "root is INBOX");
	ok(coffer_import_folder_name(".Lists.debian", 13, NULL, &b) == 0 &&
	       !strcmp(coffer_buf_str(&b), "Lists/debian"),
	   ".Lists.debian is Lists/debian");
	ok(coffer_import_folder_name(".&AMk-t&AOk-", 12, NULL, &b) == 0 &&
	       !strcmp(coffer_buf_str(&b), "\xc3\x89t\xc3\xa9"),
	   "modified UTF-7 decoded");
	ok(coffer_import_folder_name(NULL, 0, "Old", &b) == 0 && !strcmp(coffer_buf_str(&b), "Old"),
	   "prefix: INBOX goes to the prefix");
	ok(coffer_import_folder_name(".Sent", 5, "Old/mail", &b) == 0 &&
	       !strcmp(coffer_buf_str(&b), "Old/mail/Sent"),
	   "prefix: .Sent goes under it");
	ok(coffer_import_folder_name(".Sent", 5, "Old.mail", &b) == 0 &&
	       !strcmp(coffer_buf_str(&b), "Old/mail/Sent"),
	   "prefix given with '.' separators");
	ok(coffer_import_folder_name(".a..b", 5, NULL, &b) == COFFER_EINVAL,
	   "empty component refused");
	ok(coffer_import_folder_name(".&Jjo", 5, NULL, &b) == COFFER_EINVAL, "bad UTF-7 refused");
	ok(coffer_import_folder_name(NULL, 0, "a\001b", &b) == COFFER_EINVAL, "bad prefix refused");
	coffer_buf_free(&b);
}

static void test_keywords(void)
{
	char *kw[26];
	unsigned ign = 99;
	const char *text = "0 $Junk\n1 work\r\n\n3 $Forwarded\n2 bad name\n26 toohigh\nx y\n"
			   "4 (paren)\n1 Work2\n5 last";

	ok(coffer_import_keywords_parse(text, strlen(text), kw, &ign) == 0, "parse");
	ok(kw[0] && !strcmp(kw[0], "$Junk"), "index 0");
	ok(kw[1] && !strcmp(kw[1], "Work2"), "a later line for an index wins");
	ok(kw[2] == NULL, "a name with a space is ignored");
	ok(kw[3] && !strcmp(kw[3], "$Forwarded"), "index 3");
	ok(kw[4] == NULL, "a name with a paren is ignored");
	ok(kw[5] && !strcmp(kw[5], "last"), "last line without newline");
	ok(ign == 4, "4 lines ignored (%u)", ign);
	coffer_folder_keywords_free(kw);
	ok(coffer_import_keywords_parse("", 0, kw, NULL) == 0 && kw[0] == NULL, "empty file");
	ok(coffer_import_keywords_parse("00000000000000000000001 x\n", 26, kw, &ign) == 0 &&
	       kw[1] == NULL && ign == 1,
	   "absurd index ignored, no overflow");
	coffer_folder_keywords_free(kw);
}

static void test_escape(void)
{
	struct coffer_buf b = COFFER_BUF_INIT;

	coffer_import_escape(&b, "a\x1b[31m\\\xff\xc3\xa9", 10);
	ok(!strcmp(coffer_buf_str(&b), "a\\x1b[31m\\x5c\\xff\xc3\xa9"), "escaped: %s",
	   coffer_buf_str(&b));
	coffer_buf_free(&b);
}

/* ---- whole imports ---- */

struct seen {
	unsigned n;
	char names[16][64];
	uint8_t flags[16], is_new[16];
	uint32_t kws[16];
	int64_t dates[16];
	uint32_t uids[16];
};

static int collect(const struct coffer_message *m, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16) {
		snprintf(s->names[s->n], sizeof s->names[0], "%s", m->unique);
		s->flags[s->n] = m->rec.flags;
		s->is_new[s->n] = m->rec.is_new;
		s->kws[s->n] = m->rec.keywords;
		s->dates[s->n] = m->rec.internal_date;
		s->uids[s->n] = m->uid;
	}
	s->n++;
	return 0;
}

static int find(struct seen *s, const char *name)
{
	for (unsigned i = 0; i < s->n && i < 16; i++)
		if (!strcmp(s->names[i], name))
			return (int)i;
	return -1;
}

static int list_folder(struct coffer_store *st, const char *folder, struct seen *s)
{
	struct coffer_mailbox *mb = NULL;
	uint32_t fid;
	int rc;

	memset(s, 0, sizeof *s);
	rc = coffer_mailbox_open(st, "u@example.org", 13, &mb);
	if (rc == 0)
		rc = coffer_folder_find(mb, folder, &fid);
	if (rc == 0)
		rc = coffer_message_list(mb, fid, collect, s);
	coffer_mailbox_close(&mb);
	return rc;
}

struct kw_args {
	struct coffer_mailbox *mb;
	uint32_t fid;
	char *names[26];
};

static int kw_txn(struct coffer_txn *t, void *arg)
{
	struct kw_args *a = arg;

	return coffer_folder_keywords_txn(t, coffer_mailbox_id(a->mb), a->fid,
	                                  coffer_mailbox_secret(a->mb), a->names);
}

/* The names of the keyword bits of a message, "a,b" (sorted by index). */
static void kw_names(struct coffer_store *st, const char *folder, uint32_t bits, char *out,
                     size_t cap)
{
	struct kw_args a;

	memset(&a, 0, sizeof a);
	out[0] = '\0';
	if (coffer_mailbox_open(st, "u@example.org", 13, &a.mb) < 0 ||
	    coffer_folder_find(a.mb, folder, &a.fid) < 0 ||
	    coffer_index_view(coffer_store_index(st), kw_txn, &a) < 0) {
		snprintf(out, cap, "(error)");
	} else {
		for (int i = 0; i < 26; i++) {
			if (!(bits & (1u << i)))
				continue;
			snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? "," : "",
			         a.names[i] ? a.names[i] : "?");
		}
	}
	coffer_folder_keywords_free(a.names);
	coffer_mailbox_close(&a.mb);
}

static int read_message(struct coffer_store *st, const char *folder, uint32_t uid, char *buf,
                        size_t cap)
{
	struct coffer_mailbox *mb = NULL;
	struct coffer_message_reader *r = NULL;
	uint32_t fid;
	size_t got = 0, n;
	int rc;

	rc = coffer_mailbox_open(st, "u@example.org", 13, &mb);
	if (rc == 0)
		rc = coffer_folder_find(mb, folder, &fid);
	if (rc == 0)
		rc = coffer_message_open(mb, fid, folder, uid, &r);
	while (rc == 0 && got + 1 < cap) {
		rc = coffer_message_read(r, buf + got, cap - 1 - got, &n);
		if (rc < 0 || n == 0)
			break;
		got += n;
	}
	buf[got] = '\0';
	coffer_message_close(&r);
	coffer_mailbox_close(&mb);
	return rc;
}

static unsigned count_files(const char *dir)
{
	char cmd[512];
	unsigned n = 0;
	FILE *p;

	snprintf(cmd, sizeof cmd, "find '%s' -type f | wc -l", dir);
	p = popen(cmd, "r");
	if (p) {
		if (fscanf(p, "%u", &n) != 1)
			n = 0;
		pclose(p);
	}
	return n;
}

#define MSG(subj) "From: a@example.org\nSubject: " subj "\n\nbody of " subj "\n"

static void test_import(const char *tmp)
{
	struct coffer_store *st = NULL;
	struct coffer_import_stats s;
	struct coffer_import_opts o;
	struct seen seen;
	char *md = path_of(tmp, "md"), *sp = path_of(tmp, "store"), *kp = path_of(tmp, "key");
	char *blobs = path_of(sp, "blobs"), buf[4096], names[256];
	int rc, i;

	ok(coffer_store_init(sp, kp, &st) == 0, "store");
	ok(coffer_account_add(st, "u@example.org", 13, NULL) == 0, "account");

	mkdirs(md, "cur");
	mkdirs(md, "new");
	mkdirs(md, "tmp");
	mkdirs(md, ".Lists.debian/cur");
	mkdirs(md, ".Lists.debian/new");
	mkdirs(md, ".&AMk-t&AOk-/cur");
	mkdirs(md, ".bad..name/cur");
	put(md, "cur/1000.M1P1.host,S=40:2,FS", MSG("one"), 1000000000);
	put(md, "cur/1001.M2P1.host:2,RT", MSG("two"), 1100000000);
	put(md, "new/1002.M3P1.host", MSG("three"), 1200000000);
	put(md, "tmp/1003.M4P1.host", MSG("in tmp"), 0);
	put(md, "dovecot-uidlist", "3 V1 N4\n", 0);
	put(md, "dovecot.index.log", "binary", 0);
	put(md, "subscriptions", "Lists/debian\n", 0);
	put(md, "cur/notes", "not a maildir name? it is one, but not a message\n", 0);
	put(md, "cur/bad:3,X", MSG("badname"), 0);
	put(md, "cur/empty.1:2,", "", 0);
	ok(chdir(md) == 0, "cd");
	ok(symlink("/etc/passwd", "cur/link.1:2,S") == 0, "symlink out");
	ok(symlink("1000.M1P1.host,S=40:2,FS", "cur/link.2:2,S") == 0, "symlink in");
	ok(mkfifo("cur/fifo.1", 0600) == 0, "fifo");
	ok(chdir("/") == 0, "cd back");
	put(md, ".Lists.debian/dovecot-keywords", "0 $Junk\n1 work\n2 unused\n3 $Label1\n", 0);
	put(md, ".Lists.debian/cur/2000.M1.host:2,Sad", MSG("kw ad"), 1300000000);
	put(md, ".Lists.debian/cur/2001.M2.host:2,Sb", MSG("kw b"), 1300000001);
	put(md, ".Lists.debian/cur/2002.M3.host:2,z", MSG("kw z unknown"), 1300000002);
	put(md, ".Lists.debian/new/2003.M4.host", MSG("new in list"), 1300000003);
	/* the same unique name in cur/ and new/: one is a duplicate */
	put(md, ".Lists.debian/new/2000.M1.host", MSG("dup"), 1300000004);
	put(md, ".Lists.debian/maildirfolder", "", 0);
	put(md, ".Lists.debian/stray", "x", 0);
	put(md, ".&AMk-t&AOk-/cur/3000.M1.host:2,", MSG("accent"), 1400000000);
	put(md, ".bad..name/cur/4000.M1.host:2,", MSG("lost"), 0);
	put(md, "README", "stray\n", 0);

	memset(&o, 0, sizeof o);
	o.batch_messages = 2; /* several batches, one spanning cur/ and new/ */
	o.prescan = 1;
	rc = coffer_import_maildir(st, "u@example.org", md, &o, &s);
	ok(rc == 0, "import: %d %s", rc, coffer_errmsg());
	ok(s.imported == 8, "8 imported (%llu)", (unsigned long long)s.imported);
	ok(s.already == 0, "none already there");
	ok(s.folders == 3, "3 folders (%llu)", (unsigned long long)s.folders);
	ok(s.folders_created == 2, "2 folders created (%llu)",
	   (unsigned long long)s.folders_created);
	ok(s.total_files == 15 && s.seen_files == 15, "prescan counted 15 entries (%llu)",
	   (unsigned long long)s.total_files);
	ok(s.skipped[COFFER_IMPORT_SKIP_BAD_NAME] == 1, "bad name skipped");
	ok(s.skipped[COFFER_IMPORT_SKIP_NOT_MESSAGE] == 1, "non-message skipped");
	ok(s.skipped[COFFER_IMPORT_SKIP_EMPTY] == 1, "empty skipped");
	ok(s.skipped[COFFER_IMPORT_SKIP_SYMLINK] == 2, "both symlinks skipped");
	ok(s.skipped[COFFER_IMPORT_SKIP_NOT_FILE] == 1, "fifo skipped");
	ok(s.skipped[COFFER_IMPORT_SKIP_DUPLICATE] == 1, "duplicate skipped");
	ok(s.skipped[COFFER_IMPORT_SKIP_BAD_FOLDER] == 1 &&
	       !strcmp(s.examples[COFFER_IMPORT_SKIP_BAD_FOLDER][0], ".bad..name"),
	   "bad folder named");
	ok(s.skipped[COFFER_IMPORT_SKIP_UNKNOWN] == 2, "README and .Lists.debian/stray (%llu)",
	   (unsigned long long)s.skipped[COFFER_IMPORT_SKIP_UNKNOWN]);
	ok(s.examples[COFFER_IMPORT_SKIP_NOT_MESSAGE][0] &&
	       !strcmp(s.examples[COFFER_IMPORT_SKIP_NOT_MESSAGE][0], "cur/notes"),
	   "example path");
	ok(s.keywords_dropped == 1, "letter z without a name dropped");
	coffer_import_stats_free(&s);

	ok(list_folder(st, "INBOX", &seen) == 0 && seen.n == 3, "INBOX has 3");
	i = find(&seen, "1000.M1P1.host,S=40");
	ok(i >= 0 && seen.flags[i] == (COFFER_FLAG_FLAGGED | COFFER_FLAG_SEEN) && !seen.is_new[i],
	   "flags FS, cur");
	ok(i >= 0 && seen.dates[i] == 1000000000LL * 1000000000LL + 123456789,
	   "mtime kept to the nanosecond");
	if (i >= 0) {
		ok(read_message(st, "INBOX", seen.uids[i], buf, sizeof buf) == 0 &&
		       !strcmp(buf, MSG("one")),
		   "bytes identical");
	}
	i = find(&seen, "1001.M2P1.host");
	ok(i >= 0 && seen.flags[i] == (COFFER_FLAG_REPLIED | COFFER_FLAG_TRASHED), "flags RT");
	i = find(&seen, "1002.M3P1.host");
	ok(i >= 0 && seen.is_new[i] && seen.flags[i] == 0, "new/ stays new");

	ok(list_folder(st, "Lists/debian", &seen) == 0 && seen.n == 4, "Lists/debian has 4 (%u)",
	   seen.n);
	i = find(&seen, "2000.M1.host");
	kw_names(st, "Lists/debian", i >= 0 ? seen.kws[i] : 0, names, sizeof names);
	ok(i >= 0 && !strcmp(names, "$Junk,$Label1"), "keywords a,d: %s", names);
	ok(i >= 0 && seen.flags[i] == COFFER_FLAG_SEEN && !seen.is_new[i],
	   "the cur/ copy won over the new/ duplicate");
	if (i >= 0) {
		ok(read_message(st, "Lists/debian", seen.uids[i], buf, sizeof buf) == 0 &&
		       !strcmp(buf, MSG("kw ad")),
		   "its bytes are the cur/ file's");
	}
	i = find(&seen, "2001.M2.host");
	kw_names(st, "Lists/debian", i >= 0 ? seen.kws[i] : 0, names, sizeof names);
	ok(i >= 0 && !strcmp(names, "work"), "keyword b: %s", names);
	i = find(&seen, "2002.M3.host");
	ok(i >= 0 && seen.kws[i] == 0, "unknown letter dropped");
	ok(list_folder(st, "\xc3\x89t\xc3\xa9", &seen) == 0 && seen.n == 1, "UTF-7 folder");

	/* again: nothing new */
	rc = coffer_import_maildir(st, "u@example.org", md, NULL, &s);
	/* (the cur/+new/ duplicate's name is present too: 9) */
	ok(rc == 0 && s.imported == 0 && s.already == 9,
	   "second run: 0 new, 9 already (%d %s %llu %llu)", rc, coffer_errmsg(),
	   (unsigned long long)s.imported, (unsigned long long)s.already);
	coffer_import_stats_free(&s);

	/* an extra message later: only it is imported */
	put(md, "new/1005.M9.host", MSG("late"), 1500000000);
	ok(coffer_import_maildir(st, "u@example.org", md, NULL, &s) == 0 && s.imported == 1 &&
	       s.already == 9 && s.skipped[COFFER_IMPORT_SKIP_DUPLICATE] == 0,
	   "third run: 1 new");
	coffer_import_stats_free(&s);

	/* the journal: an orphan from a "crashed" batch goes, a committed blob stays */
	{
		char hex[33], *jp, jtext[256];
		unsigned char orphan_id[16];
		struct coffer_buf bp = COFFER_BUF_INIT;
		unsigned before = count_files(blobs);
		const unsigned char *acct;
		struct coffer_mailbox *mb = NULL;
		int fd;

		coffer_mailbox_open(st, "u@example.org", 13, &mb);
		acct = coffer_mailbox_id(mb);
		memset(orphan_id, 0xab, sizeof orphan_id);
		coffer_hex(hex, acct, 16);
		jp = malloc(strlen(sp) + 80);
		sprintf(jp, "%s/locks/import-%s.journal", sp, hex);
		coffer_store_blob_dir(st, acct, orphan_id, &bp);
		mkdir(coffer_buf_str(&bp), 0700);
		coffer_store_blob_path(st, acct, orphan_id, &bp);
		fd = open(coffer_buf_str(&bp), O_WRONLY | O_CREAT, 0600);
		ok(fd >= 0 && write(fd, "x", 1) == 1, "fake orphan blob");
		close(fd);
		coffer_hex(hex, orphan_id, 16);
		snprintf(jtext, sizeof jtext, "coffer-import-journal 1\n%s\nabababab", hex);
		fd = open(jp, O_WRONLY | O_TRUNC);
		ok(fd >= 0 && write(fd, jtext, strlen(jtext)) == (ssize_t)strlen(jtext), "journal");
		close(fd);

		/* held by someone else: refused */
		fd = open(jp, O_RDWR);
		ok(fd >= 0 && flock(fd, LOCK_EX) == 0, "lock the journal");
		rc = coffer_import_maildir(st, "u@example.org", md, NULL, &s);
		ok(rc == COFFER_ETEMP && strstr(coffer_errmsg(), "another import"),
		   "a concurrent import is refused: %s", coffer_errmsg());
		ok(access(coffer_buf_str(&bp), F_OK) == 0, "and it removed nothing");
		coffer_import_stats_free(&s);
		close(fd);

		rc = coffer_import_maildir(st, "u@example.org", md, NULL, &s);
		ok(rc == 0 && s.orphans_removed == 1, "orphan removed (%llu)",
		   (unsigned long long)s.orphans_removed);
		ok(access(coffer_buf_str(&bp), F_OK) < 0 && errno == ENOENT, "orphan gone");
		ok(count_files(blobs) == before, "every other blob kept");
		coffer_import_stats_free(&s);
		coffer_mailbox_close(&mb);
		coffer_buf_free(&bp);
		free(jp);
	}

	/* --folder-prefix */
	ok(coffer_import_maildir(st, "u@example.org", md,
	                         &(struct coffer_import_opts){ .folder_prefix = "Old" }, &s) == 0 &&
	       s.imported == 9,
	   "prefix import: 9 (%llu)", (unsigned long long)s.imported);
	coffer_import_stats_free(&s);
	ok(list_folder(st, "Old", &seen) == 0 && seen.n == 4, "INBOX went to Old");
	ok(list_folder(st, "Old/Lists/debian", &seen) == 0 && seen.n == 4, "Old/Lists/debian");

	/* bad input */
	rc = coffer_import_maildir(st, "u@example.org", "/nonexistent/md", NULL, &s);
	ok(rc == COFFER_ENOTFOUND, "missing maildir: ENOTFOUND: %s", coffer_errmsg());
	coffer_import_stats_free(&s);
	mkdirs(tmp, "notmd/.dir");
	put(tmp, "notmd/file", "x", 0);
	free(blobs);
	blobs = path_of(tmp, "notmd");
	rc = coffer_import_maildir(st, "u@example.org", blobs, NULL, &s);
	ok(rc == COFFER_EBADMSG && strstr(coffer_errmsg(), "not a Maildir"), "not a Maildir: %s",
	   coffer_errmsg());
	coffer_import_stats_free(&s);
	free(blobs);
	blobs = path_of(tmp, "notmd/file");
	rc = coffer_import_maildir(st, "u@example.org", blobs, NULL, &s);
	ok(rc == COFFER_EBADMSG, "a file is not a Maildir");
	coffer_import_stats_free(&s);
	rc = coffer_import_maildir(st, "nobody@example.org", md, NULL, &s);
	ok(rc < 0 && s.imported == 0, "unknown account refused: %s", coffer_errmsg());
	coffer_import_stats_free(&s);
	rc = coffer_import_maildir(st, "u@example.org", md,
	                           &(struct coffer_import_opts){ .folder_prefix = "a..b" }, &s);
	ok(rc == COFFER_EINVAL, "bad prefix refused: %s", coffer_errmsg());
	coffer_import_stats_free(&s);

	coffer_store_close(&st);
	free(md);
	free(sp);
	free(kp);
	free(blobs);
}

/* An unreadable file is skipped, not fatal (not testable as root). */
static void test_unreadable(const char *tmp)
{
	struct coffer_store *st = NULL;
	struct coffer_import_stats s;
	char *md = path_of(tmp, "md2"), *sp = path_of(tmp, "store2"), *kp = path_of(tmp, "key2");

	if (geteuid() == 0) {
		ok(1, "# SKIP unreadable files: running as root");
		free(md);
		free(sp);
		free(kp);
		return;
	}
	mkdirs(md, "cur");
	put(md, "cur/1.a:2,S", MSG("a"), 0);
	put(md, "cur/2.b:2,S", MSG("b"), 0);
	ok(chdir(md) == 0 && chmod("cur/2.b:2,S", 0) == 0 && chdir("/") == 0, "chmod 0");
	ok(coffer_store_init(sp, kp, &st) == 0 &&
	       coffer_account_add(st, "u@example.org", 13, NULL) == 0,
	   "store 2");
	ok(coffer_import_maildir(st, "u@example.org", md, NULL, &s) == 0 && s.imported == 1 &&
	       s.skipped[COFFER_IMPORT_SKIP_UNREADABLE] == 1,
	   "unreadable file skipped");
	coffer_import_stats_free(&s);
	coffer_store_close(&st);
	free(md);
	free(sp);
	free(kp);
}

int main(void)
{
	const char *tmp = tap_tmpdir();

	coffer_crypto_init();
	test_classify();
	test_folder_names();
	test_keywords();
	test_escape();
	test_import(tmp);
	test_unreadable(tmp);
	return tap_done();
}
