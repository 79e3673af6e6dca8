/*
 * import.c: importing a Maildir++ tree (see import.h), and the bulk write
 * path.
 *
 * Map of this file: names and classification; dovecot-keywords; the import
 * journal (crash cleanup); batches (blobs, syncfs, one transaction); the
 * walk (folders, cur/ and new/, one file); the entry point.
 *
 * The bulk write path. `coffer deliver` pays two fsyncs per message; an
 * import of years of mail cannot. Messages are gathered into batches (256
 * messages or 32 MiB). For each batch:
 *   1. the import journal (below) is rewritten to list the blob ids the batch
 *      may use, and fdatasync'd: one sync per batch;
 *   2. each message's blob is written with the envelope writer at its final
 *      path (O_EXCL, random id), content key wrapped symmetrically under the
 *      account's data key (we hold the secret: no X25519 per message), and
 *      closed without fsync;
 *   3. syncfs(2) on STORE/blobs/<acct> makes the whole batch durable at once;
 *   4. one coffer_index_update() transaction inserts the batch (it re-checks
 *      each unique name: see "duplicates") and commits; LMDB syncs it.
 * Why syncfs is enough on Linux: syncfs writes back every dirty inode and
 * page of the filesystem holding the descriptor (the new blob files' data,
 * their inodes, and the directory blocks of the new entries, including any
 * <xx> directory made for the batch) and then calls the filesystem's
 * sync_fs with wait, which on ext4/xfs commits the journal and flushes the
 * device cache, exactly what fsync(file) + fsync(dir) for each file would
 * have done one by one. Since Linux 5.8 syncfs also reports writeback errors
 * that happened since the descriptor was opened (errseq on the superblock),
 * so an I/O error on any blob of the batch fails the batch before the
 * transaction that would point at it. (Older kernels may not report such an
 * error; the AEAD makes the damage visible to `coffer verify`.) The cost:
 * syncfs also flushes unrelated dirty data of that filesystem.
 * Hence docs/design.md section 6 holds batch-wide: no index entry ever points
 * at a blob that is not durable.
 *
 * The import journal: STORE/locks/import-<acct hex>.journal. A crash (kill
 * -9, power loss) between step 2 and the commit leaves blobs no index entry
 * names. The journal lists, before any of them is created, every id the
 * batch may use: "coffer-import-journal 1\n" then one "<32 hex>\n" per id.
 * The next import of the account first removes the journal's blobs that have
 * no record in the blobs or trash sub-databases (never committed), then
 * empties the journal. This never touches anything but ids this process (or a
 * dead earlier import) drew at random, so concurrent deliveries are safe and
 * no age heuristic is needed. The journal file is also the lock: an import
 * holds flock(LOCK_EX) on it for its whole run, and a second import into the
 * same account fails at once with COFFER_ETEMP, so it cannot clean up a live
 * import's batch. After a commit the journal is truncated (no sync: a stale
 * list only costs lookups that find the records). The file stays, empty,
 * between imports. `coffer verify --repair` finds any other orphan.
 *
 * Duplicates and resuming. Before a file's blob is written, its unique name
 * is looked up in the folder's name index (a read transaction); a hit with a
 * uid below the folder's UIDNEXT as this run found it means an earlier run
 * imported it ("already"); a hit on a uid this run allocated is a second file
 * with the same unique name in the folder (e.g. both in cur/ and new/: a
 * "duplicate"). The batch transaction looks each name up again, to catch
 * duplicates within one batch: such a file is skipped and its blob unlinked
 * after the commit. The transaction callback may be run more
 * than once (map growth), so everything it computes lives in fields it
 * resets at its start.
 *
 * A full disk. Each blob is made by coffer_store_mail_blob_create(), as
 * `coffer deliver` makes its own: once the store's space reserve has been
 * released (engine/reserve.h), a file that would take the space it gave
 * back stops the import with COFFER_ENOSPACE (exit 75) before its blob is
 * made. The batch in progress is dropped like any failed batch (its blobs
 * unlinked, nothing of it in the index); the committed batches stay, and
 * the next run resumes after them.
 *
 * Concurrency: the import writes only new blobs and new index entries, in
 * short transactions, so deliveries, the mount and readers go on meanwhile;
 * a delivery waits at most one batch commit.
 *
 * Untrusted input: every name and file in the tree. Names are parsed by
 * maildir/name.c, folder names by names.c; files are opened with O_NOFOLLOW
 * and O_NONBLOCK relative to their directory's descriptor (directories with
 * O_DIRECTORY|O_NOFOLLOW), and checked with fstat, so a symlink or a FIFO
 * swapped in after readdir is never followed or waited on. dovecot-keywords
 * is read with a bound.
 */
#include "import.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/envelope.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/header.h"
#include "engine/io.h"
#include "engine/message.h"
#include "engine/names.h"
#include "engine/record.h"
#include "maildir/name.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK COFFER_BLOB_CHUNK
#define DEFAULT_BATCH_MESSAGES 256u
#define MAX_BATCH_MESSAGES 4096u
#define DEFAULT_BATCH_BYTES (32ull << 20)
#define KEYWORDS_FILE_MAX (64u * 1024u)
#define KEYWORD_MAX 255u
#define NKW COFFER_FOLDER_KEYWORDS_MAX
#define JOURNAL_MAGIC "coffer-import-journal 1\n"
#define JOURNAL_LINE (2 * COFFER_ID_BYTES + 1)

/* ---- names and classification ---- */

static const char *const skip_keys[COFFER_IMPORT_SKIP_COUNT] = {
	"bad-name",    "symlink",   "not-file",  "unreadable", "empty",
	"not-message", "too-large", "duplicate", "bad-folder", "unknown-entry",
};
static const char *const skip_texts[COFFER_IMPORT_SKIP_COUNT] = {
	"not a Maildir message file name",
	"symbolic link (not followed)",
	"not a regular file",
	"unreadable",
	"empty file",
	"not a message (the first line is not a header field)",
	"larger than max_message_size",
	"unique name used by another file of the same folder",
	"not a valid Maildir++ folder name",
	"not part of a Maildir++ tree",
};

const char *coffer_import_skip_key(enum coffer_import_skip why)
{
	return (unsigned)why < COFFER_IMPORT_SKIP_COUNT ? skip_keys[why] : "?";
}

const char *coffer_import_skip_text(enum coffer_import_skip why)
{
	return (unsigned)why < COFFER_IMPORT_SKIP_COUNT ? skip_texts[why] : "?";
}

int coffer_import_folder_name(const char *dir, size_t n, const char *prefix, struct coffer_buf *out)
{
	struct coffer_buf sub = COFFER_BUF_INIT, joined = COFFER_BUF_INIT;
	int rc;

	coffer_buf_reset(out);
	if (prefix != NULL && *prefix == '\0')
		prefix = NULL;
	if (dir == NULL || n == 0) {
		const char *f = prefix ? prefix : "INBOX";

		return coffer_names_folder(f, strlen(f), out);
	}
	rc = coffer_maildir_dir_to_folder(dir, n, &sub);
	if (rc < 0 || prefix == NULL) {
		if (rc == 0)
			rc = coffer_buf_append(out, sub.data, sub.len);
		goto out;
	}
	coffer_buf_puts(&joined, prefix);
	coffer_buf_putc(&joined, '/');
	coffer_buf_append(&joined, sub.data, sub.len);
	rc = coffer_buf_ok(&joined);
	if (rc == 0)
		rc = coffer_names_folder((const char *)joined.data, joined.len, out);
out:
	coffer_buf_free(&sub);
	coffer_buf_free(&joined);
	return rc;
}

enum coffer_import_entry coffer_import_classify(const char *name)
{
	static const char *const ignored[] = {
		"tmp",          "subscriptions", "maildirfolder", "maildirsize", "dovecot-shared",
		".customflags", ".uidvalidity",  ".qmail",        NULL,
	};

	if (strcmp(name, "cur") == 0 || strcmp(name, "new") == 0)
		return COFFER_IMPORT_ENTRY_MAILDIR;
	for (int i = 0; ignored[i]; i++)
		if (strcmp(name, ignored[i]) == 0)
			return COFFER_IMPORT_ENTRY_IGNORED;
	/* dovecot-uidlist, dovecot-keywords, dovecot.index*, dovecot-uidvalidity*,
	 * dovecot.list.index*, dovecot-acl*, dovecot.mailbox.log; courierimap*,
	 * courierpop3dsizelist */
	if (strncmp(name, "dovecot", 7) == 0 || strncmp(name, "courier", 7) == 0)
		return COFFER_IMPORT_ENTRY_IGNORED;
	if (name[0] == '.' && name[1] != '\0' && strcmp(name, "..") != 0)
		return COFFER_IMPORT_ENTRY_FOLDER;
	return COFFER_IMPORT_ENTRY_UNKNOWN;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	/* C1 controls */
	if (cp >= 0x80 && cp < 0xa0)
		return 0;
	return len;
}

int coffer_import_escape(struct coffer_buf *out, const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, l;

	while (i < n) {
		if (u[i] < 0x20 || u[i] == 0x7f || u[i] == '\\' ||
		    (l = utf8_len(u + i, n - i)) == 0) {
			coffer_buf_printf(out, "\\x%02x", u[i]);
			i++;
			continue;
		}
		coffer_buf_append(out, u + i, l);
		i += l;
	}
	return coffer_buf_ok(out);
}

/* ---- dovecot-keywords ---- */

static int keyword_valid(const char *p, size_t n)
{
	if (n == 0 || n > KEYWORD_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){}[]%*\"\\", c) != NULL)
			return 0;
	}
	return 1;
}

int coffer_import_keywords_parse(const char *p, size_t n, char *names_r[26],
                                 unsigned *lines_ignored_r)
{
	size_t pos = 0;
	unsigned ignored = 0;

	for (int i = 0; i < NKW; i++)
		names_r[i] = NULL;
	while (pos < n) {
		const char *line = p + pos, *nl = memchr(line, '\n', n - pos), *sp;
		size_t len = nl ? (size_t)(nl - line) : n - pos;
		unsigned long idx = 0;
		size_t i = 0;

		pos += len + (nl != NULL);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0)
			continue;
		while (i < len && i < 4 && line[i] >= '0' && line[i] <= '9')
			idx = idx * 10 + (unsigned long)(line[i++] - '0');
		sp = line + i;
		if (i == 0 || i == len || *sp != ' ' || idx >= NKW ||
		    !keyword_valid(sp + 1, len - i - 1)) {
			ignored++;
			continue;
		}
		free(names_r[idx]);
		names_r[idx] = strndup(sp + 1, len - i - 1);
		if (names_r[idx] == NULL) {
			coffer_folder_keywords_free(names_r);
			return coffer_err_set(COFFER_ENOMEM, "import: out of memory");
		}
	}
	if (lines_ignored_r)
		*lines_ignored_r = ignored;
	return 0;
}

/* Reads a whole descriptor (from offset 0) into out: COFFER_ELIMIT past max
 * bytes, COFFER_EINVAL if it is not a regular file. */
static int read_fd_bounded(int fd, size_t max, struct coffer_buf *out)
{
	struct stat sb;
	size_t got;
	int rc;

	if (fstat(fd, &sb) < 0)
		return coffer_err_set(coffer_err_from_errno(errno), "import: stat: %s",
		                      strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return coffer_err_set(COFFER_EINVAL, "import: not a regular file");
	for (;;) {
		rc = coffer_buf_reserve(out, 4096);
		if (rc < 0)
			return rc;
		rc = coffer_io_pread_full(fd, out->data + out->len, 4096, (off_t)out->len, &got);
		if (rc < 0)
			return rc;
		out->len += got;
		out->data[out->len] = '\0';
		if (out->len > max)
			return coffer_err_set(COFFER_ELIMIT, "import: file larger than %zu bytes",
			                      max);
		if (got < 4096)
			return 0;
	}
}

/* ---- the importer ---- */

struct item {
	unsigned char blob_id[COFFER_ID_BYTES];
	char *unique; /* malloc'd */
	size_t unique_len;
	char *rel; /* malloc'd, escaped path for reports */
	uint64_t size, stored_size;
	int64_t mtime;
	uint8_t flags, is_new;
	uint32_t letters; /* keyword letters of the file name */
	int dup;          /* set by the batch transaction */
};

struct importer {
	struct coffer_store *st;
	struct coffer_mailbox *mb;
	const unsigned char *acct;
	const struct coffer_acct_secret *secret;
	const char *acct_name;
	const struct coffer_import_opts *opts;
	struct coffer_import_stats *stats;
	uint64_t max_size;
	int64_t now;
	int root_fd, acct_dir_fd, journal_fd;
	unsigned char *buf;
	struct coffer_buf rel;  /* path of the current entry, relative to MAILDIR */
	struct coffer_buf path; /* scratch: blob paths */
	/* the current folder */
	struct coffer_buf folder;
	int folder_known;
	uint32_t fid;
	uint32_t start_uidnext; /* uids from here on were added during this run */
	char *kw[NKW];
	/* the current batch */
	struct item *items;
	unsigned cap, n;
	uint64_t bytes, batch_bytes;
	unsigned char (*ids)[COFFER_ID_BYTES];
	int journaled;
	/* outputs of the batch transaction (reset at its start) */
	uint32_t txn_fid;
	int txn_created;
	uint64_t txn_kw_dropped;
};

static void stats_skip(struct importer *im, enum coffer_import_skip why, const char *rel)
{
	struct coffer_import_stats *s = im->stats;
	uint64_t k = s->skipped[why]++;

	s->skipped_total++;
	if (k < COFFER_IMPORT_EXAMPLES && rel != NULL)
		s->examples[why][k] = strdup(rel);
}

static void progress(struct importer *im)
{
	if (im->opts->progress)
		im->opts->progress(im->stats, im->opts->progress_arg);
}

/* rel = base (the folder dir's relative path) + "/" + name, escaped */
static int set_rel(struct importer *im, size_t base_len, const char *name)
{
	im->rel.len = base_len;
	if (base_len)
		coffer_buf_putc(&im->rel, '/');
	return coffer_import_escape(&im->rel, name, strlen(name));
}

/* ---- the journal ---- */

static int journal_path(struct importer *im, struct coffer_buf *out)
{
	char hex[2 * COFFER_ID_BYTES + 1];

	coffer_hex(hex, im->acct, COFFER_ID_BYTES);
	coffer_buf_reset(out);
	coffer_buf_printf(out, "%s/locks/import-%s.journal", coffer_store_path(im->st), hex);
	return coffer_buf_ok(out);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

struct orphan_args {
	const unsigned char *acct;
	const unsigned char (*ids)[COFFER_ID_BYTES];
	unsigned char *orphan;
	size_t n;
};

static int orphan_txn(struct coffer_txn *t, void *arg)
{
	struct orphan_args *a = arg;
	unsigned char key[COFFER_KEY_BLOB];
	const void *v;
	size_t vl;
	int rc;

	for (size_t i = 0; i < a->n; i++) {
		coffer_key_blob(key, a->acct, a->ids[i]);
		rc = coffer_txn_get(t, COFFER_DB_BLOBS, key, sizeof key, &v, &vl);
		if (rc == COFFER_ENOTFOUND)
			rc = coffer_txn_get(t, COFFER_DB_TRASH, key, sizeof key, &v, &vl);
		if (rc != 0 && rc != COFFER_ENOTFOUND)
			return rc;
		a->orphan[i] = rc == COFFER_ENOTFOUND;
	}
	return 0;
}

/* Removes the blobs a dead earlier import listed and never committed. */
static int journal_recover(struct importer *im)
{
	struct coffer_buf text = COFFER_BUF_INIT;
	struct orphan_args oa = { im->acct, NULL, NULL, 0 };
	unsigned char(*ids)[COFFER_ID_BYTES] = NULL;
	size_t n = 0, pos, max = sizeof JOURNAL_MAGIC + (size_t)MAX_BATCH_MESSAGES * JOURNAL_LINE;
	int rc;

	rc = read_fd_bounded(im->journal_fd, max, &text);
	if (rc < 0)
		goto out;
	if (text.len < sizeof JOURNAL_MAGIC - 1 ||
	    memcmp(text.data, JOURNAL_MAGIC, sizeof JOURNAL_MAGIC - 1) != 0)
		goto truncate; /* empty, or cut before the first id: nothing was written */
	pos = sizeof JOURNAL_MAGIC - 1;
	ids = malloc((text.len - pos) / JOURNAL_LINE * COFFER_ID_BYTES + 1);
	if (ids == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "import: out of memory");
		goto out;
	}
	/* a line cut by the crash ends the list (its blob was never created:
	 * the journal is synced before any blob of the batch) */
	for (; pos + JOURNAL_LINE <= text.len; pos += JOURNAL_LINE, n++) {
		const unsigned char *l = text.data + pos;
		int bad = l[JOURNAL_LINE - 1] != '\n';

		for (size_t i = 0; !bad && i < COFFER_ID_BYTES; i++) {
			int hi = hexval(l[2 * i]), lo = hexval(l[2 * i + 1]);

			bad = hi < 0 || lo < 0;
			ids[n][i] = (unsigned char)(hi << 4 | lo);
		}
		if (bad)
			break;
	}
	oa.ids = (const unsigned char(*)[COFFER_ID_BYTES])ids;
	oa.n = n;
	oa.orphan = malloc(n + 1);
	if (oa.orphan == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "import: out of memory");
		goto out;
	}
	rc = coffer_index_view(coffer_store_index(im->st), orphan_txn, &oa);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!oa.orphan[i])
			continue;
		rc = coffer_store_blob_path(im->st, im->acct, ids[i], &im->path);
		if (rc < 0)
			goto out;
		if (unlink(coffer_buf_str(&im->path)) == 0) {
			im->stats->orphans_removed++;
		} else if (errno != ENOENT) {
			rc = coffer_err_set(coffer_err_from_errno(errno),
			                    "import: cannot remove the orphan blob %s: %s",
			                    coffer_buf_str(&im->path), strerror(errno));
			goto out;
		}
	}
truncate:
	if (ftruncate(im->journal_fd, 0) < 0)
		rc = coffer_err_set(coffer_err_from_errno(errno),
		                    "import: cannot empty the journal: %s", strerror(errno));
out:
	free(oa.orphan);
	free(ids);
	coffer_buf_free(&text);
	return rc;
}

static int journal_open(struct importer *im)
{
	struct coffer_buf jp = COFFER_BUF_INIT;
	int rc;

	rc = journal_path(im, &jp);
	if (rc < 0)
		goto out;
	im->journal_fd = open(coffer_buf_str(&jp), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (im->journal_fd >= 0)
		coffer_store_adopt(im->st, im->journal_fd, NULL);
	if (im->journal_fd < 0) {
		rc = coffer_err_set(coffer_err_from_errno(errno), "import: cannot open %s: %s",
		                    coffer_buf_str(&jp), strerror(errno));
		goto out;
	}
	if (flock(im->journal_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			rc = coffer_err_set(COFFER_ETEMP,
			                    "import: another import into account %s is "
			                    "running; try again when it has finished",
			                    im->acct_name);
		else
			rc = coffer_err_set(coffer_err_from_errno(errno),
			                    "import: cannot lock %s: %s", coffer_buf_str(&jp),
			                    strerror(errno));
		goto out;
	}
	rc = journal_recover(im);
out:
	coffer_buf_free(&jp);
	return rc;
}

/* Lists the ids the batch may use, durably, before any blob exists. */
static int journal_write(struct importer *im)
{
	struct coffer_buf text = COFFER_BUF_INIT;
	char hex[2 * COFFER_ID_BYTES + 1];
	int rc;

	coffer_buf_puts(&text, JOURNAL_MAGIC);
	for (unsigned i = 0; i < im->cap; i++) {
		coffer_random(im->ids[i], COFFER_ID_BYTES);
		coffer_hex(hex, im->ids[i], COFFER_ID_BYTES);
		coffer_buf_puts(&text, hex);
		coffer_buf_putc(&text, '\n');
	}
	rc = coffer_buf_ok(&text);
	if (rc == 0)
		rc = coffer_io_pwrite_all(im->journal_fd, text.data, text.len, 0);
	if (rc == 0 && ftruncate(im->journal_fd, (off_t)text.len) < 0)
		rc = coffer_err_set(coffer_err_from_errno(errno), "import: journal: %s",
		                    strerror(errno));
	if (rc == 0 && (rc = coffer_io_fdatasync(im->journal_fd)) < 0)
		coffer_err_prefix(rc, "import: journal: ");
	if (rc == 0)
		im->journaled = 1;
	coffer_buf_free(&text);
	return rc;
}

/* ---- batches ---- */

static void batch_clear(struct importer *im)
{
	for (unsigned i = 0; i < im->n; i++) {
		free(im->items[i].unique);
		free(im->items[i].rel);
	}
	im->n = 0;
	im->bytes = 0;
	im->journaled = 0;
}

/* Drops a batch that will not be committed: its blobs go now; the journal
 * still lists them in case we die before the unlinks finish. */
static void batch_abort(struct importer *im)
{
	for (unsigned i = 0; i < im->n; i++)
		coffer_store_blob_discard(im->st, im->acct, im->items[i].blob_id);
	if (im->n && im->journal_fd >= 0 && ftruncate(im->journal_fd, 0) < 0) {
		/* harmless: the next import finds the ids without blobs */
	}
	batch_clear(im);
}

static int batch_txn(struct coffer_txn *t, void *arg)
{
	struct importer *im = arg;
	const char *folder = coffer_buf_str(&im->folder);
	int remap[NKW];
	uint32_t used = 0, uid, fid;
	int rc;

	/* may run more than once: start from scratch */
	im->txn_fid = 0;
	im->txn_created = 0;
	im->txn_kw_dropped = 0;
	for (unsigned i = 0; i < im->n; i++) {
		im->items[i].dup = 0;
		used |= im->items[i].letters;
	}
	rc = coffer_folder_resolve_txn(t, im->st, im->acct, folder, 1, im->secret, im->now,
	                               &im->txn_fid, &im->txn_created);
	if (rc < 0)
		return rc;
	/* in letter order, so that a new folder's keyword i is Dovecot's i */
	for (int k = 0; k < NKW; k++) {
		unsigned idx;

		remap[k] = -1;
		if (!(used & (1u << k)) || im->kw[k] == NULL)
			continue;
		rc = coffer_folder_keyword_intern_txn(t, im->acct, im->txn_fid, im->kw[k],
		                                      im->secret, &idx);
		if (rc == COFFER_ELIMIT)
			continue;
		if (rc < 0)
			return rc;
		remap[k] = (int)idx;
	}
	for (unsigned i = 0; i < im->n; i++) {
		struct item *it = &im->items[i];
		struct coffer_message_new m;

		rc = coffer_message_find_name_txn(t, im->st, im->acct, im->txn_fid, it->unique,
		                                  it->unique_len, &uid);
		if (rc == 0) {
			it->dup = 1;
			continue;
		}
		if (rc != COFFER_ENOTFOUND)
			return rc;
		memset(&m, 0, sizeof m);
		m.acct = im->acct;
		m.folder = folder;
		memcpy(m.blob_id, it->blob_id, COFFER_ID_BYTES);
		m.size = it->size;
		m.stored_size = it->stored_size;
		m.internal_date = it->mtime;
		m.delivered_at = im->now;
		m.flags = it->flags;
		m.is_new = it->is_new;
		for (int k = 0; k < NKW; k++) {
			if (!(it->letters & (1u << k)))
				continue;
			if (remap[k] < 0)
				im->txn_kw_dropped++;
			else
				m.keywords |= 1u << remap[k];
		}
		m.unique = it->unique;
		m.unique_len = it->unique_len;
		rc = coffer_message_add_txn(t, im->st, im->acct_name, &m, im->secret, &fid, &uid);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int batch_flush(struct importer *im)
{
	struct coffer_import_stats *s = im->stats;
	int rc;

	if (im->n == 0)
		return 0;
	rc = coffer_io_syncfs(im->acct_dir_fd, "import: the batch's blobs");
	if (rc < 0)
		goto fail;
	rc = coffer_index_update(coffer_store_index(im->st), batch_txn, im);
	if (rc < 0) {
		coffer_err_prefix(rc, "import into %s, folder %s: ", im->acct_name,
		                  coffer_buf_str(&im->folder));
		goto fail;
	}
	im->folder_known = 1;
	im->fid = im->txn_fid;
	s->folders_created += im->txn_created;
	s->keywords_dropped += im->txn_kw_dropped;
	for (unsigned i = 0; i < im->n; i++) {
		struct item *it = &im->items[i];

		if (it->dup) {
			coffer_store_blob_discard(im->st, im->acct, it->blob_id);
			stats_skip(im, COFFER_IMPORT_SKIP_DUPLICATE, it->rel);
		} else {
			s->imported++;
			s->imported_bytes += it->size;
		}
	}
	/* committed: the listed ids are no orphans; no sync needed */
	if (ftruncate(im->journal_fd, 0) < 0) {
		/* harmless: the next import looks them up and finds the records */
	}
	batch_clear(im);
	return 0;
fail:
	batch_abort(im);
	return rc;
}

/* ---- one file ---- */

struct find_args {
	struct importer *im;
	const char *unique;
	size_t n;
	uint32_t uid;
};

static int find_txn(struct coffer_txn *t, void *arg)
{
	struct find_args *a = arg;

	return coffer_message_find_name_txn(t, a->im->st, a->im->acct, a->im->fid, a->unique, a->n,
	                                    &a->uid);
}

/* Streams fd (whose first len bytes are in im->buf, file_size in all) into
 * a new blob. Returns 0, 1 with *why set for a file to skip (nothing left
 * behind), or < 0 on a store error: COFFER_ENOSPACE, before the blob is
 * made, when the file would take the space a released space reserve gave
 * back (coffer_store_mail_blob_create(), as for `coffer deliver`). */
static int write_blob(struct importer *im, int fd, size_t len, uint64_t file_size,
                      const unsigned char *blob_id, uint64_t *size_r, uint64_t *stored_r,
                      enum coffer_import_skip *why)
{
	struct coffer_blob_writer *w = NULL;
	struct coffer_blob_ids ids;
	uint64_t total = 0;
	int rc, bfd = -1, made = 0;

	memcpy(ids.account_id, im->acct, COFFER_ID_BYTES);
	memcpy(ids.blob_id, blob_id, COFFER_ID_BYTES);
	ids.kind = COFFER_BLOB_MESSAGE;
	/* its directories' durability comes with the batch's syncfs */
	rc = coffer_store_mail_blob_create(im->st, im->acct, blob_id, 0, file_size, &bfd,
	                                   &im->path);
	if (rc < 0) {
		coffer_err_prefix(rc, "import into %s: ", im->acct_name);
		goto out;
	}
	made = 1;
	rc = coffer_blob_writer_new(bfd, &ids, NULL, im->secret, 0, &w);
	while (rc == 0 && len > 0) {
		total += len;
		if (total > im->max_size) {
			*why = COFFER_IMPORT_SKIP_TOO_LARGE;
			rc = 1;
			break;
		}
		rc = coffer_blob_writer_write(w, im->buf, len);
		if (rc < 0)
			break;
		rc = coffer_io_read_full(fd, im->buf, READ_CHUNK, &len);
		if (rc < 0) {
			*why = COFFER_IMPORT_SKIP_UNREADABLE;
			rc = 1;
		}
	}
	if (rc == 0)
		rc = coffer_blob_writer_finish(w, size_r, stored_r);
out:
	coffer_blob_writer_free(&w);
	if (bfd >= 0 && close(bfd) < 0 && rc == 0)
		rc = coffer_err_set(coffer_err_from_errno(errno), "import: writing a blob: %s",
		                    strerror(errno));
	if (rc != 0 && made)
		unlink(coffer_buf_str(&im->path));
	return rc;
}

static int import_file(struct importer *im, int dirfd, const char *name, unsigned char d_type,
                       int is_new, size_t base_len)
{
	struct coffer_maildir_name mn;
	struct stat sb;
	enum coffer_import_skip why = COFFER_IMPORT_SKIP_NOT_MESSAGE;
	struct item *it;
	size_t len;
	int rc, fd = -1;

	im->stats->seen_files++;
	rc = set_rel(im, base_len, name);
	if (rc < 0)
		return rc;
	if (d_type == DT_LNK) {
		why = COFFER_IMPORT_SKIP_SYMLINK;
		goto skip;
	}
	if (d_type != DT_REG && d_type != DT_UNKNOWN) {
		why = COFFER_IMPORT_SKIP_NOT_FILE;
		goto skip;
	}
	if (coffer_maildir_name_parse(name, strlen(name), &mn) < 0) {
		why = COFFER_IMPORT_SKIP_BAD_NAME;
		goto skip;
	}
	if (im->folder_known) {
		struct find_args fa = { im, name, mn.unique_len, 0 };

		rc = coffer_index_view(coffer_store_index(im->st), find_txn, &fa);
		if (rc == 0 && fa.uid >= im->start_uidnext) {
			/* added by this run: a second file with the same unique name */
			why = COFFER_IMPORT_SKIP_DUPLICATE;
			goto skip;
		}
		if (rc == 0) {
			im->stats->already++;
			goto done;
		}
		if (rc != COFFER_ENOTFOUND)
			return rc;
	}
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		why = errno == ELOOP ? COFFER_IMPORT_SKIP_SYMLINK : COFFER_IMPORT_SKIP_UNREADABLE;
		goto skip;
	}
	if (fstat(fd, &sb) < 0) {
		why = COFFER_IMPORT_SKIP_UNREADABLE;
		goto skip;
	}
	if (!S_ISREG(sb.st_mode)) {
		why = COFFER_IMPORT_SKIP_NOT_FILE;
		goto skip;
	}
	if (sb.st_size == 0) {
		why = COFFER_IMPORT_SKIP_EMPTY;
		goto skip;
	}
	if ((uint64_t)sb.st_size > im->max_size) {
		why = COFFER_IMPORT_SKIP_TOO_LARGE;
		goto skip;
	}
	if (coffer_io_read_full(fd, im->buf, READ_CHUNK, &len) < 0) {
		why = COFFER_IMPORT_SKIP_UNREADABLE;
		goto skip;
	}
	if (len == 0) {
		why = COFFER_IMPORT_SKIP_EMPTY;
		goto skip;
	}
	if (!coffer_header_is_message(im->buf, len)) {
		why = COFFER_IMPORT_SKIP_NOT_MESSAGE;
		goto skip;
	}

	if (!im->journaled) {
		rc = journal_write(im);
		if (rc < 0)
			goto out;
	}
	it = &im->items[im->n];
	memset(it, 0, sizeof *it);
	memcpy(it->blob_id, im->ids[im->n], COFFER_ID_BYTES);
	rc = write_blob(im, fd, len, (uint64_t)sb.st_size, it->blob_id, &it->size, &it->stored_size,
	                &why);
	if (rc == 1)
		goto skip;
	if (rc < 0)
		goto out;
	it->unique = strndup(name, mn.unique_len);
	it->rel = strdup(coffer_buf_str(&im->rel));
	if (it->unique == NULL || it->rel == NULL) {
		free(it->unique);
		free(it->rel);
		coffer_store_blob_discard(im->st, im->acct, it->blob_id);
		rc = coffer_err_set(COFFER_ENOMEM, "import: out of memory");
		goto out;
	}
	it->unique_len = mn.unique_len;
	it->mtime = (int64_t)sb.st_mtim.tv_sec * COFFER_NS_PER_SEC + sb.st_mtim.tv_nsec;
	it->flags = (uint8_t)mn.flags;
	it->is_new = (uint8_t)is_new;
	it->letters = mn.keywords;
	im->n++;
	im->bytes += it->size;
	im->stats->seen_bytes += it->size;
	if (im->n == im->cap || im->bytes >= im->batch_bytes)
		rc = batch_flush(im);
	goto out;
skip:
	stats_skip(im, why, coffer_buf_str(&im->rel));
done:
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	progress(im);
	return rc;
}

/* ---- the walk ---- */

/* Opens sub (a directory, never through a symlink) under dirfd. Returns the
 * fd, -1 with *why set for an entry to skip, or -2 if it does not exist. */
static int open_subdir(int dirfd, const char *sub, enum coffer_import_skip *why)
{
	int fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat sb;

	if (fd >= 0)
		return fd;

	if (errno == ENOENT)
		return -2;
	if (errno == ELOOP || errno == ENOTDIR) {
		/* Linux says ENOTDIR, not ELOOP, for a symlink opened with
		 * O_DIRECTORY|O_NOFOLLOW: look at the entry itself */
		if (fstatat(dirfd, sub, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
			*why = COFFER_IMPORT_SKIP_SYMLINK;
		else
			*why = COFFER_IMPORT_SKIP_NOT_FILE;
	} else {
		*why = COFFER_IMPORT_SKIP_UNREADABLE;
	}
	return -1;
}

static int walk_maildir_dir(struct importer *im, int folder_fd, const char *sub, size_t base_len)
{
	enum coffer_import_skip why = COFFER_IMPORT_SKIP_NOT_MESSAGE;
	struct dirent *de;
	DIR *d;
	size_t dir_len;
	int fd, rc = 0;

	fd = open_subdir(folder_fd, sub, &why);
	if (fd == -2)
		return 0;
	rc = set_rel(im, base_len, sub);
	if (rc < 0)
		return rc;
	if (fd < 0) {
		stats_skip(im, why, coffer_buf_str(&im->rel));
		return 0;
	}
	dir_len = im->rel.len;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return coffer_err_set(COFFER_ENOMEM, "import: out of memory");
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			if (errno != 0) {
				im->rel.len = dir_len;
				rc = coffer_err_set(coffer_err_from_errno(errno),
				                    "import: reading %s: %s",
				                    coffer_buf_str(&im->rel), strerror(errno));
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rc = import_file(im, dirfd(d), de->d_name, de->d_type, sub[0] == 'n', dir_len);
		if (rc < 0)
			break;
	}
	closedir(d);
	return rc;
}

struct folder_args {
	struct importer *im;
	int found;
};

static int folder_lookup_txn(struct coffer_txn *t, void *arg)
{
	struct folder_args *a = arg;

	struct coffer_folder_rec rec;
	int rc;

	a->im->start_uidnext = 0;
	rc = coffer_folder_resolve_txn(t, a->im->st, a->im->acct, coffer_buf_str(&a->im->folder), 0,
	                               NULL, 0, &a->im->fid, NULL);
	a->found = rc == 0;
	if (rc == COFFER_ENOTFOUND)
		return 0;
	if (rc == 0)
		rc = coffer_folder_get_txn(t, a->im->acct, a->im->fid, &rec);
	if (rc == 0)
		a->im->start_uidnext = rec.uidnext;
	return rc;
}

static int load_keywords(struct importer *im, int folder_fd)
{
	struct coffer_buf text = COFFER_BUF_INIT;
	int fd, rc;

	coffer_folder_keywords_free(im->kw);
	fd = openat(folder_fd, "dovecot-keywords", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0; /* none (or unusable): keyword letters are dropped and counted */
	rc = read_fd_bounded(fd, KEYWORDS_FILE_MAX, &text);
	close(fd);
	if (rc < 0) {
		/* unreadable or absurdly large: treat as absent */
		coffer_buf_free(&text);
		return 0;
	}
	rc = coffer_import_keywords_parse((const char *)text.data, text.len, im->kw, NULL);
	coffer_buf_free(&text);
	return rc;
}

/* Imports one folder: INBOX (dir NULL, folder_fd the root) or a dot-folder. */
static int import_folder(struct importer *im, int folder_fd, const char *dir)
{
	struct folder_args fa = { im, 0 };
	size_t base_len;
	int rc;

	rc = coffer_import_folder_name(dir, dir ? strlen(dir) : 0, im->opts->folder_prefix,
	                               &im->folder);
	if (rc < 0) {
		if (rc == COFFER_ENOMEM)
			return rc;
		coffer_buf_reset(&im->rel);
		coffer_import_escape(&im->rel, dir, strlen(dir));
		stats_skip(im, COFFER_IMPORT_SKIP_BAD_FOLDER, coffer_buf_str(&im->rel));
		return 0;
	}
	im->stats->folders++;
	rc = load_keywords(im, folder_fd);
	if (rc == 0)
		rc = coffer_index_view(coffer_store_index(im->st), folder_lookup_txn, &fa);
	if (rc < 0)
		return rc;
	im->folder_known = fa.found;
	coffer_buf_reset(&im->rel);
	if (dir)
		coffer_import_escape(&im->rel, dir, strlen(dir));
	base_len = im->rel.len;
	rc = walk_maildir_dir(im, folder_fd, "cur", base_len);
	if (rc == 0)
		rc = walk_maildir_dir(im, folder_fd, "new", base_len);
	if (rc == 0)
		rc = batch_flush(im);
	if (rc < 0 || dir == NULL)
		return rc;

	/* report what else a dot-folder holds */
	{
		struct dirent *de;
		DIR *d;
		int fd = openat(folder_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0 || (d = fdopendir(fd)) == NULL) {
			if (fd >= 0)
				close(fd);
			return 0;
		}
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (coffer_import_classify(de->d_name) != COFFER_IMPORT_ENTRY_UNKNOWN &&
			    coffer_import_classify(de->d_name) != COFFER_IMPORT_ENTRY_FOLDER)
				continue;
			set_rel(im, base_len, de->d_name);
			stats_skip(im, COFFER_IMPORT_SKIP_UNKNOWN, coffer_buf_str(&im->rel));
		}
		closedir(d);
	}
	return 0;
}

/* 1 if fd holds cur/ or new/ (real directories). */
static int has_maildir(int fd)
{
	struct stat sb;

	return (fstatat(fd, "cur", &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode)) ||
	       (fstatat(fd, "new", &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode));
}

/* 1 if the tree at root_fd is a Maildir: cur/ or new/ at the root, or a
 * dot-folder holding one. Streams the root once. */
static int is_maildir(int root_fd)
{
	struct dirent *de;
	DIR *d;
	int fd, found = 0;

	if (has_maildir(root_fd))
		return 1;
	fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while (!found && (de = readdir(d)) != NULL) {
		int sub;

		if (coffer_import_classify(de->d_name) != COFFER_IMPORT_ENTRY_FOLDER)
			continue;
		sub = openat(root_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			continue;
		found = has_maildir(sub);
		close(sub);
	}
	closedir(d);
	return found;
}

/* Counts the entries (and bytes of regular files) of dir/cur and dir/new. */
static void prescan_folder(struct importer *im, int folder_fd)
{
	static const char *const subs[] = { "cur", "new" };

	for (int i = 0; i < 2; i++) {
		struct dirent *de;
		struct stat sb;
		DIR *d;
		int fd = openat(folder_fd, subs[i],
		                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (fd < 0 || (d = fdopendir(fd)) == NULL) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			im->stats->total_files++;
			if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(sb.st_mode))
				im->stats->total_bytes += (uint64_t)sb.st_size;
		}
		closedir(d);
	}
}

/* Walks the root: INBOX first (or, for the prescan, counts), then every
 * dot-folder as readdir gives it. */
static int walk_root(struct importer *im, int counting)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (counting)
		prescan_folder(im, im->root_fd);
	else if (has_maildir(im->root_fd))
		rc = import_folder(im, im->root_fd, NULL);
	if (rc < 0)
		return rc;
	fd = openat(im->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return coffer_err_set(coffer_err_from_errno(errno),
		                      "import: cannot read the Maildir: %s", strerror(errno));
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return coffer_err_set(COFFER_ENOMEM, "import: out of memory");
	}
	for (;;) {
		enum coffer_import_skip why = COFFER_IMPORT_SKIP_NOT_MESSAGE;
		enum coffer_import_entry kind;
		int sub;

		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				rc = coffer_err_set(coffer_err_from_errno(errno),
				                    "import: reading the Maildir: %s",
				                    strerror(errno));
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		kind = coffer_import_classify(de->d_name);
		if (kind == COFFER_IMPORT_ENTRY_MAILDIR || kind == COFFER_IMPORT_ENTRY_IGNORED)
			continue;
		if (counting) {
			if (kind == COFFER_IMPORT_ENTRY_FOLDER &&
			    coffer_import_folder_name(de->d_name, strlen(de->d_name),
			                              im->opts->folder_prefix, &im->folder) == 0 &&
			    (sub = open_subdir(im->root_fd, de->d_name, &why)) >= 0) {
				prescan_folder(im, sub);
				close(sub);
			}
			continue;
		}
		coffer_buf_reset(&im->rel);
		coffer_import_escape(&im->rel, de->d_name, strlen(de->d_name));
		if (kind == COFFER_IMPORT_ENTRY_UNKNOWN) {
			stats_skip(im, COFFER_IMPORT_SKIP_UNKNOWN, coffer_buf_str(&im->rel));
			continue;
		}
		sub = open_subdir(im->root_fd, de->d_name, &why);
		if (sub == -1) {
			/* a ".file" that is not a directory has no place here either */
			stats_skip(im,
			           why == COFFER_IMPORT_SKIP_NOT_FILE ? COFFER_IMPORT_SKIP_UNKNOWN
			                                              : why,
			           coffer_buf_str(&im->rel));
			continue;
		}
		if (sub == -2)
			continue; /* gone since readdir */
		rc = import_folder(im, sub, de->d_name);
		close(sub);
		if (rc < 0)
			break;
	}
	closedir(d);
	return rc;
}

/* ---- the entry point ---- */

void coffer_import_stats_free(struct coffer_import_stats *s)
{
	for (int i = 0; i < COFFER_IMPORT_SKIP_COUNT; i++)
		for (int j = 0; j < COFFER_IMPORT_EXAMPLES; j++) {
			free(s->examples[i][j]);
			s->examples[i][j] = NULL;
		}
}

static int open_root(const char *maildir, int *fd_r)
{
	struct stat sb;
	int fd;

	*fd_r = -1;
	if (stat(maildir, &sb) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return coffer_err_set(COFFER_ENOTFOUND, "import: %s does not exist",
			                      maildir);
		return coffer_err_set(coffer_err_from_errno(errno), "import: cannot read %s: %s",
		                      maildir, strerror(errno));
	}
	if (!S_ISDIR(sb.st_mode))
		return coffer_err_set(COFFER_EBADMSG,
		                      "import: %s is not a directory, so not a Maildir", maildir);
	fd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return coffer_err_set(coffer_err_from_errno(errno), "import: cannot read %s: %s",
		                      maildir, strerror(errno));
	if (!is_maildir(fd)) {
		close(fd);
		return coffer_err_set(COFFER_EBADMSG,
		                      "import: %s is not a Maildir: it has no cur/ or "
		                      "new/ directory and no Maildir++ folder (.Name/cur)",
		                      maildir);
	}
	*fd_r = fd;
	return 0;
}

int coffer_import_maildir(struct coffer_store *st, const char *name, const char *maildir,
                          const struct coffer_import_opts *opts,
                          struct coffer_import_stats *stats_r)
{
	static const struct coffer_import_opts no_opts;
	struct importer im;
	struct coffer_buf dir = COFFER_BUF_INIT;
	int rc;

	memset(stats_r, 0, sizeof *stats_r);
	memset(&im, 0, sizeof im);
	im.st = st;
	im.opts = opts ? opts : &no_opts;
	im.stats = stats_r;
	im.root_fd = im.acct_dir_fd = im.journal_fd = -1;
	im.max_size = coffer_store_config(st)->max_message_size;
	im.cap = im.opts->batch_messages ? im.opts->batch_messages : DEFAULT_BATCH_MESSAGES;
	if (im.cap > MAX_BATCH_MESSAGES)
		im.cap = MAX_BATCH_MESSAGES;
	im.batch_bytes = im.opts->batch_bytes ? im.opts->batch_bytes : DEFAULT_BATCH_BYTES;

	/* the arguments and the tree first: reported before the key file is needed */
	rc = coffer_import_folder_name(NULL, 0, im.opts->folder_prefix, &dir);
	if (rc < 0) {
		coffer_err_prefix(rc, "import: --folder-prefix: ");
		goto out;
	}
	rc = open_root(maildir, &im.root_fd);
	if (rc == 0)
		rc = coffer_mailbox_open(st, name, strlen(name), &im.mb);
	if (rc == 0)
		rc = coffer_clock_now(&im.now);
	if (rc < 0)
		goto out;
	im.acct = coffer_mailbox_id(im.mb);
	im.secret = coffer_mailbox_secret(im.mb);
	im.acct_name = coffer_mailbox_name(im.mb);
	im.items = calloc(im.cap, sizeof *im.items);
	im.ids = calloc(im.cap, sizeof *im.ids);
	im.buf = malloc(READ_CHUNK);
	if (im.items == NULL || im.ids == NULL || im.buf == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "import: out of memory");
		goto out;
	}
	rc = coffer_store_account_dir(st, im.acct, &dir);
	if (rc == 0 && mkdir(coffer_buf_str(&dir), 0700) == 0)
		coffer_store_adopt(st, -1, coffer_buf_str(&dir));
	else if (rc == 0 && errno != EEXIST)
		rc = coffer_err_set(coffer_err_from_errno(errno), "import: cannot create %s: %s",
		                    coffer_buf_str(&dir), strerror(errno));
	if (rc < 0)
		goto out;
	im.acct_dir_fd = open(coffer_buf_str(&dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (im.acct_dir_fd < 0) {
		rc = coffer_err_set(coffer_err_from_errno(errno), "import: cannot open %s: %s",
		                    coffer_buf_str(&dir), strerror(errno));
		goto out;
	}
	rc = journal_open(&im);
	if (rc < 0)
		goto out;
	if (im.opts->prescan) {
		rc = walk_root(&im, 1);
		if (rc < 0)
			goto out;
	}
	rc = walk_root(&im, 0);
	if (rc == 0)
		rc = batch_flush(&im);
	progress(&im);
out:
	if (im.n)
		batch_abort(&im);
	if (im.journal_fd >= 0)
		close(im.journal_fd); /* releases the lock */
	if (im.acct_dir_fd >= 0)
		close(im.acct_dir_fd);
	if (im.root_fd >= 0)
		close(im.root_fd);
	coffer_folder_keywords_free(im.kw);
	coffer_mailbox_close(&im.mb);
	free(im.items);
	free(im.ids);
	free(im.buf);
	coffer_buf_free(&im.rel);
	coffer_buf_free(&im.path);
	coffer_buf_free(&im.folder);
	coffer_buf_free(&dir);
	return rc;
}
