/*
 * export.c: an account out as a Maildir++ tree, into a directory or a tar
 * archive (see export.h for the tree and its guarantees).
 *
 * Sections: the two targets behind one small interface (directories, files
 * streamed in pieces); the walk over folders, keywords and messages; the
 * directory entry point with its refusal, durability and cleanup rules; the
 * tar entry point.
 *
 * Directory target and crash safety: nothing in the target is ever
 * replaced. The target directory is created here (mode 0700) or must be
 * empty; every file inside is created with O_EXCL | O_NOFOLLOW relative to
 * the target's descriptor, so a symlink planted under the target cannot
 * redirect a write. Files are not fsynced one by one (that would cost one
 * disk flush per message): one syncfs() at the end makes the whole tree
 * durable before 0 is returned. A crash before that may leave a partial
 * tree, which a re-run refuses (the directory is not empty); a failure
 * reported to us removes it.
 *
 * The per-message cost is what reading needs: an index read, the blob open
 * (which unwraps the content key: an X25519 sealed-box open for mail written
 * by `coffer deliver`), decryption and decompression of its chunks, then the
 * file write and futimens().
 */
#include "export.h"

#include "archive.h"
#include "name.h"

#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/io.h"
#include "engine/message.h"
#include "engine/names.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT_BUF (256u * 1024u)

struct export
{
	const struct coffer_export_source *src;
	struct coffer_export_stats *stats;
	/* target: an archive, or a directory */
	struct coffer_archive *ar;
	int root_fd;
	const char *root; /* the directory, for details */
	int file_fd;      /* the file being written (directory target) */
	int64_t file_mtime;
	int64_t now;        /* mtime of directories and control files */
	unsigned char *buf; /* EXPORT_BUF */
	/* the folder being written */
	const char *folder;       /* canonical name */
	struct coffer_buf prefix; /* "" or ".Lists.debian/" */
	uint32_t kw_mask;         /* keyword bits that have a name */
	struct coffer_buf path;   /* scratch */
};

/* ---- targets ---- */

static int target_failed(struct export *x, int rc)
{
	x->stats->failed_at = COFFER_EXPORT_FAILED_WRITE;
	return rc;
}

static int errno_failed(struct export *x, const char *what, const char *name)
{
	int err = errno;

	return target_failed(x, coffer_err_set(coffer_err_from_errno(err), "export %s/%s: %s: %s",
	                                       x->root, name, what, strerror(err)));
}

static int t_mkdir(struct export *x, const char *name)
{
	int rc;

	if (x->ar) {
		rc = coffer_archive_add_dir(x->ar, name, 0700, x->now);
		return rc < 0 ? target_failed(x, rc) : 0;
	}
	if (mkdirat(x->root_fd, name, 0700) < 0)
		return errno_failed(x, "cannot create the directory", name);
	return 0;
}

static int t_file_begin(struct export *x, const char *name, int64_t mtime, uint64_t size)
{
	int rc;

	if (x->ar) {
		rc = coffer_archive_file_begin(x->ar, name, 0600, mtime, size);
		return rc < 0 ? target_failed(x, rc) : 0;
	}
	x->file_fd = openat(x->root_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	                    0600);
	if (x->file_fd < 0)
		return errno_failed(x, "cannot create the file", name);
	x->file_mtime = mtime;
	return 0;
}

static int t_file_write(struct export *x, const void *p, size_t n)
{
	int rc;

	rc = x->ar ? coffer_archive_write(x->ar, p, n) : coffer_io_write_all(x->file_fd, p, n);
	if (rc < 0 && !x->ar)
		coffer_err_prefix(rc, "export %s: ", x->root);
	return rc < 0 ? target_failed(x, rc) : 0;
}

static int t_file_end(struct export *x, const char *name)
{
	struct timespec ts[2];
	int rc;

	if (x->ar) {
		rc = coffer_archive_file_end(x->ar);
		return rc < 0 ? target_failed(x, rc) : 0;
	}
	ts[0].tv_sec = x->file_mtime / COFFER_NS_PER_SEC;
	ts[0].tv_nsec = x->file_mtime % COFFER_NS_PER_SEC;
	if (ts[0].tv_nsec < 0) {
		ts[0].tv_nsec += COFFER_NS_PER_SEC;
		ts[0].tv_sec -= 1;
	}
	ts[1] = ts[0];
	rc = futimens(x->file_fd, ts) < 0 ? errno_failed(x, "cannot set its times", name) : 0;
	if (close(x->file_fd) < 0 && rc == 0)
		rc = errno_failed(x, "close", name);
	x->file_fd = -1;
	return rc;
}

static int t_small_file(struct export *x, const char *name, const void *p, size_t n)
{
	int rc;

	rc = t_file_begin(x, name, x->now, n);
	if (rc == 0 && n > 0)
		rc = t_file_write(x, p, n);
	if (rc == 0)
		rc = t_file_end(x, name);
	return rc;
}

/* prefix + rest into x->path; returns its C string, or NULL when out of memory */
static const char *at(struct export *x, const char *rest)
{
	coffer_buf_reset(&x->path);
	coffer_buf_append(&x->path, x->prefix.data, x->prefix.len);
	coffer_buf_puts(&x->path, rest);
	return coffer_buf_ok(&x->path) < 0 ? NULL : coffer_buf_str(&x->path);
}

static int oom(void)
{
	return coffer_err_set(COFFER_ENOMEM, "export: out of memory");
}

/* ---- the walk ---- */

struct folder_entry {
	struct coffer_export_folder f;
	char *name;
	char *kw[COFFER_FOLDER_KEYWORDS_MAX];
};

struct folders {
	struct folder_entry *v;
	size_t n, cap;
};

static int collect_folder(const struct coffer_export_folder *info, void *arg)
{
	struct folders *f = arg;
	struct folder_entry *e;

	if (coffer_array_grow(&f->v, &f->cap, f->n, sizeof *f->v, 16) < 0)
		return oom();
	e = &f->v[f->n];
	memset(e, 0, sizeof *e);
	e->f.id = info->id;
	e->name = strdup(info->name);
	if (e->name == NULL)
		return oom();
	for (unsigned i = 0; info->keywords && i < COFFER_FOLDER_KEYWORDS_MAX; i++)
		if (info->keywords[i] && (e->kw[i] = strdup(info->keywords[i])) == NULL)
			return oom();
	e->f.name = e->name;
	e->f.keywords = e->kw;
	f->n++;
	return 0;
}

static void folders_free(struct folders *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].name);
		coffer_folder_keywords_free(f->v[i].kw);
	}
	free(f->v);
}

/* "subscriptions": INBOX and every folder's Maildir++ name without the dot. */
static int write_subscriptions(struct export *x, const struct folders *f)
{
	struct coffer_buf subs = COFFER_BUF_INIT, dir = COFFER_BUF_INIT;
	int rc = 0;

	coffer_buf_puts(&subs, "INBOX\n");
	for (size_t i = 0; rc == 0 && i < f->n; i++) {
		if (coffer_names_is_inbox(f->v[i].name))
			continue;
		rc = coffer_maildir_folder_to_dir(f->v[i].name, &dir);
		if (rc == 0) {
			coffer_buf_append(&subs, dir.data + 1, dir.len - 1);
			coffer_buf_putc(&subs, '\n');
		}
	}
	if (rc == 0 && coffer_buf_ok(&subs) < 0)
		rc = oom();
	if (rc == 0)
		rc = t_small_file(x, "subscriptions", subs.data, subs.len);
	coffer_buf_free(&subs);
	coffer_buf_free(&dir);
	return rc;
}

/* dovecot-keywords of the current folder, and the mask of named keywords. */
static int write_keywords(struct export *x, const struct folder_entry *e)
{
	struct coffer_buf file = COFFER_BUF_INIT;
	char show[COFFER_NAMES_SHOW_SIZE];
	const char *p;
	int rc = 0;

	x->kw_mask = 0;
	for (unsigned i = 0; rc == 0 && i < COFFER_FOLDER_KEYWORDS_MAX; i++) {
		if (e->kw[i] == NULL)
			continue;
		/* one name per line, after a space: a name that would break
		 * the line structure cannot be written faithfully */
		for (p = e->kw[i]; *p; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f)
				break;
		if (*p || e->kw[i][0] == '\0') {
			rc = coffer_err_set(COFFER_ECORRUPT,
			                    "account %s folder %s: keyword %u ('%s') "
			                    "cannot be written to dovecot-keywords",
			                    x->src->account, x->folder, i,
			                    coffer_names_show(e->kw[i], strlen(e->kw[i]), show));
			break;
		}
		coffer_buf_printf(&file, "%u %s\n", i, e->kw[i]);
		x->kw_mask |= 1u << i;
	}
	if (rc == 0 && coffer_buf_ok(&file) < 0)
		rc = oom();
	if (rc == 0 && file.len > 0) {
		p = at(x, "dovecot-keywords");
		rc = p ? t_small_file(x, p, file.data, file.len) : oom();
	}
	coffer_buf_free(&file);
	return rc;
}

static int export_message(const struct coffer_export_msg *m, void *arg)
{
	struct export *x = arg;
	struct coffer_maildir_name parsed;
	char show[COFFER_NAMES_SHOW_SIZE];
	size_t ulen = strlen(m->unique), got;
	uint32_t keywords = m->keywords & x->kw_mask;
	int info = !m->is_new || m->flags != 0 || keywords != 0;
	const char *name;
	int rc;

	/* the name comes from the index (an import, the mount): it must be a
	 * plain Maildir unique part before it becomes a path */
	rc = coffer_maildir_name_parse(m->unique, ulen, &parsed);
	if (rc == 0 && (parsed.has_info || parsed.unique_len != ulen))
		rc = COFFER_EINVAL;
	if (rc < 0)
		return coffer_err_set(COFFER_ECORRUPT,
		                      "account %s folder %s uid %u: its Maildir name "
		                      "'%s' is not a valid unique name",
		                      x->src->account, x->folder, m->uid,
		                      coffer_names_show(m->unique, ulen, show));
	if (at(x, m->is_new ? "new/" : "cur/") == NULL)
		return oom();
	rc = coffer_maildir_name_format(&x->path, m->unique, ulen, info, m->flags, keywords);
	if (rc < 0)
		return rc;
	name = coffer_buf_str(&x->path);
	rc = t_file_begin(x, name, m->internal_date, m->size);
	while (rc == 0) {
		rc = m->read(m->read_ctx, x->buf, EXPORT_BUF, &got);
		if (rc < 0 || got == 0)
			break;
		rc = t_file_write(x, x->buf, got);
	}
	if (rc == 0)
		rc = t_file_end(x, name);
	if (rc == 0) {
		x->stats->messages++;
		x->stats->bytes += m->size;
	}
	return rc;
}

static int export_folder(struct export *x, const struct folder_entry *e)
{
	static const char *const subdirs[] = { "cur", "new", "tmp" };
	const char *p;
	int rc = 0;

	x->folder = e->name;
	coffer_buf_reset(&x->prefix);
	if (!coffer_names_is_inbox(e->name)) {
		rc = coffer_maildir_folder_to_dir(e->name, &x->prefix);
		if (rc < 0)
			return coffer_err_prefix(rc, "account %s: ", x->src->account);
		rc = t_mkdir(x, coffer_buf_str(&x->prefix));
		coffer_buf_putc(&x->prefix, '/');
		if (coffer_buf_ok(&x->prefix) < 0)
			return oom();
		for (size_t i = 0; rc == 0 && i < 3; i++)
			rc = (p = at(x, subdirs[i])) ? t_mkdir(x, p) : oom();
		if (rc == 0)
			rc = (p = at(x, "maildirfolder")) ? t_small_file(x, p, "", 0) : oom();
	}
	if (rc == 0)
		rc = write_keywords(x, e);
	if (rc == 0)
		rc = x->src->messages(x->src->ctx, &e->f, export_message, x, &x->stats->skipped);
	if (rc == 0)
		x->stats->folders++;
	return rc;
}

static int walk(struct export *x)
{
	struct folders f = { NULL, 0, 0 };
	int rc, inbox = 0;

	x->buf = malloc(EXPORT_BUF);
	if (x->buf == NULL)
		return oom();
	rc = coffer_clock_now(&x->now);
	if (rc == 0)
		rc = x->src->folders(x->src->ctx, collect_folder, &f);
	/* the root is INBOX's Maildir: written first, whatever the name order */
	if (rc == 0)
		rc = t_mkdir(x, "cur");
	if (rc == 0)
		rc = t_mkdir(x, "new");
	if (rc == 0)
		rc = t_mkdir(x, "tmp");
	if (rc == 0)
		rc = write_subscriptions(x, &f);
	for (size_t i = 0; rc == 0 && i < f.n; i++) {
		if (!coffer_names_is_inbox(f.v[i].name))
			continue;
		inbox = 1;
		rc = export_folder(x, &f.v[i]);
	}
	if (rc == 0 && !inbox)
		rc = coffer_err_set(COFFER_ECORRUPT, "account %s has no INBOX", x->src->account);
	for (size_t i = 0; rc == 0 && i < f.n; i++)
		if (!coffer_names_is_inbox(f.v[i].name))
			rc = export_folder(x, &f.v[i]);
	folders_free(&f);
	return rc;
}

static void export_init(struct export *x, const struct coffer_export_source *src,
                        struct coffer_export_stats *stats)
{
	memset(x, 0, sizeof *x);
	memset(stats, 0, sizeof *stats);
	x->src = src;
	x->stats = stats;
	x->root_fd = -1;
	x->file_fd = -1;
	x->prefix = (struct coffer_buf)COFFER_BUF_INIT;
	x->path = (struct coffer_buf)COFFER_BUF_INIT;
}

static void export_done(struct export *x)
{
	if (x->file_fd >= 0)
		close(x->file_fd);
	x->file_fd = -1;
	free(x->buf);
	x->buf = NULL;
	coffer_buf_free(&x->prefix);
	coffer_buf_free(&x->path);
}

/* ---- the live account as a source ---- */

struct live {
	struct coffer_mailbox *mb;
};

struct live_folders {
	struct coffer_mailbox *mb;
	coffer_export_folder_fn fn;
	void *arg;
};

struct kw_args {
	struct coffer_mailbox *mb;
	uint32_t fid;
	char *names[COFFER_FOLDER_KEYWORDS_MAX];
};

static int kw_txn(struct coffer_txn *t, void *arg)
{
	struct kw_args *k = arg;

	/* a repeated transaction starts afresh */
	coffer_folder_keywords_free(k->names);
	return coffer_folder_keywords_txn(t, coffer_mailbox_id(k->mb), k->fid,
	                                  coffer_mailbox_secret(k->mb), k->names);
}

static int live_folder(const struct coffer_folder_info *info, void *arg)
{
	struct live_folders *l = arg;
	struct kw_args k;
	struct coffer_export_folder f;
	int rc;

	memset(&k, 0, sizeof k);
	k.mb = l->mb;
	k.fid = info->id;
	rc = coffer_index_view(coffer_store_index(coffer_mailbox_store(l->mb)), kw_txn, &k);
	f = (struct coffer_export_folder){ info->id, info->name, k.names };
	if (rc == 0)
		rc = l->fn(&f, l->arg);
	coffer_folder_keywords_free(k.names);
	return rc;
}

static int live_folders(void *ctx, coffer_export_folder_fn fn, void *arg)
{
	struct live *lv = ctx;
	struct live_folders l = { lv->mb, fn, arg };

	return coffer_folder_list(lv->mb, live_folder, &l);
}

struct live_msgs {
	struct coffer_mailbox *mb;
	const struct coffer_export_folder *f;
	coffer_export_msg_fn fn;
	void *arg;
	uint64_t *skipped;
};

static int live_read(void *ctx, void *buf, size_t cap, size_t *n_r)
{
	return coffer_message_read(ctx, buf, cap, n_r);
}

static int live_msg(const struct coffer_message *m, void *arg)
{
	struct live_msgs *l = arg;
	struct coffer_message_reader *r = NULL;
	struct coffer_export_msg em;
	int rc;

	rc = coffer_message_open(l->mb, l->f->id, l->f->name, m->uid, &r);
	if (rc == COFFER_ENOTFOUND) {
		/* expunged since the folder was listed */
		(*l->skipped)++;
		return 0;
	}
	if (rc < 0)
		return rc;
	em = (struct coffer_export_msg){ m->uid,
		                         m->unique,
		                         m->rec.flags,
		                         m->rec.is_new,
		                         m->rec.keywords,
		                         coffer_message_record(r)->internal_date,
		                         coffer_message_record(r)->size,
		                         live_read,
		                         r };
	rc = l->fn(&em, l->arg);
	coffer_message_close(&r);
	return rc;
}

static int live_messages(void *ctx, const struct coffer_export_folder *f, coffer_export_msg_fn fn,
                         void *arg, uint64_t *skipped)
{
	struct live *lv = ctx;
	struct live_msgs l = { lv->mb, f, fn, arg, skipped };

	return coffer_message_list(lv->mb, f->id, live_msg, &l);
}

/* ---- into a directory ---- */

/* Removes everything under directory fd (not following symlinks). */
static int remove_contents(int fd)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int sub, rc = 0, dup_fd;

	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0)
		return -errno;
	d = fdopendir(dup_fd);
	if (d == NULL) {
		close(dup_fd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = -errno;
			continue;
		}
		if (S_ISDIR(sb.st_mode)) {
			sub = openat(fd, de->d_name,
			             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				rc = -errno;
				continue;
			}
			if (remove_contents(sub) < 0)
				rc = -EIO;
			close(sub);
			if (unlinkat(fd, de->d_name, AT_REMOVEDIR) < 0)
				rc = -errno;
		} else if (unlinkat(fd, de->d_name, 0) < 0) {
			rc = -errno;
		}
	}
	closedir(d);
	return rc;
}

/* Opens dir as the target: created (0700) when missing, else it must be an
 * empty directory. *created_r tells which. */
static int open_target_dir(const char *dir, int *fd_r, int *created_r)
{
	struct dirent *de;
	DIR *d;
	int fd, err, dup_fd, empty = 1;

	*fd_r = -1;
	*created_r = 0;
	if (dir[0] == '\0')
		return coffer_err_set(COFFER_EINVAL, "export: empty directory name");
	if (mkdir(dir, 0700) == 0) {
		*created_r = 1;
	} else if (errno != EEXIST) {
		err = errno;
		return coffer_err_set(coffer_err_from_errno(err),
		                      "export %s: cannot create the "
		                      "directory: %s",
		                      dir, strerror(err));
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		if (err == ENOTDIR)
			return coffer_err_set(COFFER_EEXIST,
			                      "export %s: exists and is not a directory; "
			                      "refusing to overwrite it",
			                      dir);
		return coffer_err_set(coffer_err_from_errno(err),
		                      "export %s: cannot open the "
		                      "directory: %s",
		                      dir, strerror(err));
	}
	if (!*created_r) {
		dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
		if (d == NULL) {
			err = errno;
			if (dup_fd >= 0)
				close(dup_fd);
			close(fd);
			return coffer_err_set(coffer_err_from_errno(err),
			                      "export %s: cannot read the "
			                      "directory: %s",
			                      dir, strerror(err));
		}
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				empty = 0;
		closedir(d);
		if (!empty) {
			close(fd);
			return coffer_err_set(COFFER_EEXIST,
			                      "export %s: the directory is not empty; "
			                      "refusing to write into it",
			                      dir);
		}
		/* probe: can we create in it at all? (a clear error before any work) */
		if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
			err = errno;
			close(fd);
			return coffer_err_set(coffer_err_from_errno(err),
			                      "export %s: cannot write into "
			                      "the directory: %s",
			                      dir, strerror(err));
		}
	}
	*fd_r = fd;
	return 0;
}

int coffer_export_dir_source(const struct coffer_export_source *src, const char *dir,
                             struct coffer_export_stats *stats_r)
{
	struct coffer_export_stats stats;
	struct export x;
	char detail[1024];
	int rc, created = 0, cleanup;

	export_init(&x, src, &stats);
	x.root = dir;
	rc = open_target_dir(dir, &x.root_fd, &created);
	if (rc < 0) {
		stats.failed_at = COFFER_EXPORT_FAILED_CREATE;
		goto out;
	}
	rc = walk(&x);
	if (rc == 0 && x.file_fd < 0) {
		rc = coffer_io_syncfs(x.root_fd, dir);
		if (rc < 0)
			target_failed(&x, rc);
	}
	if (rc < 0) {
		if (x.file_fd >= 0) {
			close(x.file_fd);
			x.file_fd = -1;
		}
		snprintf(detail, sizeof detail, "%s", coffer_errmsg());
		cleanup = remove_contents(x.root_fd);
		if (cleanup == 0 && created && rmdir(dir) < 0)
			cleanup = -errno;
		if (cleanup == 0)
			coffer_err_set(rc, "%s (the partial export was removed%s)", detail,
			               created ? "" : "; the directory is empty again");
		else
			coffer_err_set(rc, "%s (a partial export is left in %s: %s)", detail, dir,
			               coffer_strerror(cleanup));
	}
out:
	if (x.root_fd >= 0)
		close(x.root_fd);
	export_done(&x);
	if (stats_r)
		*stats_r = stats;
	return rc;
}

/* ---- into a tar archive ---- */

int coffer_export_tar_source(const struct coffer_export_source *src, const char *path,
                             struct coffer_export_stats *stats_r)
{
	struct coffer_export_stats stats;
	struct export x;
	int rc;

	export_init(&x, src, &stats);
	x.root = path;
	rc = coffer_archive_open(path, COFFER_ARCHIVE_BY_NAME, &x.ar);
	if (rc < 0) {
		stats.failed_at = COFFER_EXPORT_FAILED_CREATE;
		goto out;
	}
	rc = walk(&x);
	if (rc == 0) {
		rc = coffer_archive_finish(x.ar);
		if (rc < 0)
			target_failed(&x, rc);
	}
out:
	/* an unfinished archive is discarded: no file appears */
	coffer_archive_free(&x.ar);
	export_done(&x);
	if (stats_r)
		*stats_r = stats;
	return rc;
}

/* ---- the live account ---- */

int coffer_export_dir(struct coffer_mailbox *mb, const char *dir,
                      struct coffer_export_stats *stats_r)
{
	struct live lv = { mb };
	struct coffer_export_source src = { coffer_mailbox_name(mb), live_folders, live_messages,
		                            &lv };

	return coffer_export_dir_source(&src, dir, stats_r);
}

int coffer_export_tar(struct coffer_mailbox *mb, const char *path,
                      struct coffer_export_stats *stats_r)
{
	struct live lv = { mb };
	struct coffer_export_source src = { coffer_mailbox_name(mb), live_folders, live_messages,
		                            &lv };

	return coffer_export_tar_source(&src, path, stats_r);
}
