/*
 * verify-tree.c: the tree pass of `coffer verify` (see verify.h): the files
 * under STORE/blobs matched against the index, and their repair. The run
 * (verify.c) calls it for each account after the index and blob passes, and
 * once more for the top of the blob tree; what both share is in
 * verify-private.h.
 *
 * Map of this file:
 *   1. reporting and listing: problems about a file of the tree; a
 *      directory's entries, sorted;
 *   2. strays: anything in the blob tree that is no blob file (other names,
 *      other file types, directories of unknown accounts); reported, and
 *      moved to STORE/lost+found/ on repair (rename(2) with
 *      RENAME_NOREPLACE, ".N" appended on a clash, both directories fsynced
 *      after): an operator's file is never deleted;
 *   3. orphans: blob files with neither a blobs nor a trash record, looked up
 *      in one read transaction per <xx> directory (an EMPTY file with a pool
 *      record is no orphan: a writer will fill it, engine/pool.h; it is not
 *      counted as a blob either). One younger than the
 *      grace period (by mtime) may belong to a write in progress and is
 *      reported as pending; an older one is what a crash between writing a
 *      blob and committing its transaction leaves. On repair it is unlinked
 *      (and its directory fsynced) only after checking again, in a fresh
 *      transaction and with lstat(), that it still has no record, that no
 *      message points at it and that its mtime has not changed;
 *   4. the walk: STORE/blobs/<acct>/<xx>/ listed one directory at a time,
 *      every file matched against the blobs and trash records; then
 *      STORE/blobs itself on every-account runs.
 *
 * A file that a message points at but that has no blobs record is not an
 * orphan: the index pass has reported the missing record, and the file is
 * left alone.
 */
#include "verify-private.h"

#include "clock.h"
#include "errors.h"
#include "index.h"
#include "io.h"
#include "pool.h"
#include "record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- 1. Reporting and listing ---- */

static int report_file(struct verify *v, const struct vacct *a, const char *blob, int pending,
                       const char *repair, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* A problem about a file of the blob tree (blob id or relative path). */
static int report_file(struct verify *v, const struct vacct *a, const char *blob, int pending,
                       const char *repair, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = verify_vreport(v, a ? a->name : NULL, NULL, 0, blob, pending, repair, fmt, ap);
	va_end(ap);
	return rc;
}

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = s[2 * i] <= '9' ? s[2 * i] - '0' : s[2 * i] - 'a' + 10;
		int lo = s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0' : s[2 * i + 1] - 'a' + 10;

		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* The first message pointing at blob, or NULL. */
static const struct vref *find_ref(const struct vacct *a, const unsigned char *blob)
{
	size_t lo = 0, hi = a->nrefs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(a->refs[mid].blob, blob, ID) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->nrefs && memcmp(a->refs[lo].blob, blob, ID) == 0 ? &a->refs[lo] : NULL;
}

static int cmp_str(const void *pa, const void *pb)
{
	return strcmp(*(char *const *)pa, *(char *const *)pb);
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The entries of dir but . and .., sorted. Errors carry a detail naming the
 * directory. */
static int list_dir(const char *dir, char ***names_r, size_t *n_r)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	*names_r = NULL;
	*n_r = 0;
	d = opendir(dir);
	if (d == NULL)
		return coffer_err_set(coffer_err_from_errno(errno), "cannot list %s: %s", dir,
		                      strerror(errno));
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = verify_grow(&names, &cap, n, sizeof *names);
		if (rc < 0)
			break;
		names[n] = strdup(de->d_name);
		if (names[n] == NULL) {
			rc = coffer_err_set(COFFER_ENOMEM, "verify: out of memory");
			break;
		}
		n++;
		errno = 0;
	}
	if (rc == 0 && errno != 0)
		rc = coffer_err_set(coffer_err_from_errno(errno), "cannot list %s: %s", dir,
		                    strerror(errno));
	closedir(d);
	if (rc < 0) {
		free_names(names, n);
		return rc;
	}
	if (n > 1)
		qsort(names, n, sizeof *names, cmp_str);
	*names_r = names;
	*n_r = n;
	return 0;
}

/* ---- 2. Strays ---- */

/* Moves STORE/rel to STORE/lost+found/rel (".N" appended on a clash, never
 * over an existing file); the destination, relative to the store, is
 * appended to dest. rel contains at least one '/'. */
static int move_to_lost(struct verify *v, const char *rel, struct coffer_buf *dest)
{
	const char *store = coffer_store_path(v->st);
	struct coffer_buf src = COFFER_BUF_INIT, dst = COFFER_BUF_INIT;
	struct coffer_buf src_dir = COFFER_BUF_INIT, dst_dir = COFFER_BUF_INIT;
	int dirlen = (int)(strrchr(rel, '/') - rel);
	int rc;

	coffer_buf_printf(&src, "%s/%s", store, rel);
	coffer_buf_printf(&src_dir, "%s/%.*s", store, dirlen, rel);
	coffer_buf_printf(&dst_dir, "%s/lost+found/%.*s", store, dirlen, rel);
	rc = coffer_buf_ok(&src);
	if (rc == 0)
		rc = coffer_buf_ok(&src_dir);
	if (rc == 0)
		rc = coffer_buf_ok(&dst_dir);
	if (rc == 0)
		rc = coffer_io_mkdir_p(coffer_buf_str(&dst_dir), 0700);
	for (unsigned i = 0; rc == 0; i++) {
		coffer_buf_reset(&dst);
		coffer_buf_printf(&dst, "%s/lost+found/%s", store, rel);
		if (i > 0)
			coffer_buf_printf(&dst, ".%u", i);
		rc = coffer_buf_ok(&dst);
		if (rc < 0)
			break;
		if (renameat2(AT_FDCWD, coffer_buf_str(&src), AT_FDCWD, coffer_buf_str(&dst),
		              RENAME_NOREPLACE) == 0)
			break;
		if (errno == EEXIST && i < 1000)
			continue;
		rc = coffer_err_set(coffer_err_from_errno(errno), "cannot move it to %s: %s",
		                    coffer_buf_str(&dst), strerror(errno));
	}
	if (rc == 0)
		rc = coffer_io_fsync_dir(coffer_buf_str(&dst_dir));
	if (rc == 0)
		rc = coffer_io_fsync_dir(coffer_buf_str(&src_dir));
	if (rc == 0)
		coffer_buf_puts(dest, coffer_buf_str(&dst) + strlen(store) + 1);
	coffer_buf_free(&src);
	coffer_buf_free(&dst);
	coffer_buf_free(&src_dir);
	coffer_buf_free(&dst_dir);
	return rc;
}

/* A stray in the blob tree: reported, and moved to lost+found on repair. */
static int stray(struct verify *v, const struct vacct *a, const char *rel, const char *what)
{
	struct coffer_buf dest = COFFER_BUF_INIT, how = COFFER_BUF_INIT;
	int rc;

	if (!v->o->repair)
		return report_file(v, a, rel, 0, NULL, "%s", what);
	rc = move_to_lost(v, rel, &dest);
	if (rc == COFFER_ENOMEM)
		goto out;
	if (rc < 0) {
		rc = report_file(v, a, rel, 0, NULL, "%s; repair failed: %s", what,
		                 coffer_errmsg());
		goto out;
	}
	coffer_buf_printf(&how, "moved to %s", coffer_buf_str(&dest));
	rc = coffer_buf_ok(&how);
	if (rc == 0)
		rc = report_file(v, a, rel, 0, coffer_buf_str(&how), "%s", what);
out:
	coffer_buf_free(&dest);
	coffer_buf_free(&how);
	return rc;
}

/* ---- 3. Orphans ---- */

enum { FILE_LIVE, FILE_TRASH, FILE_POOL, FILE_ORPHAN };

struct candidate {
	unsigned char id[ID];
	int64_t mtime;
	int empty;
	int state;
};

struct classify_args {
	const unsigned char *acct;
	struct candidate *c;
	size_t n;
};

static int classify_txn(struct coffer_txn *t, void *arg)
{
	struct classify_args *s = arg;
	unsigned char key[COFFER_KEY_BLOB];
	const void *val;
	size_t vl;
	int rc;

	for (size_t i = 0; i < s->n; i++) {
		coffer_key_blob(key, s->acct, s->c[i].id);
		rc = coffer_txn_get(t, COFFER_DB_BLOBS, key, sizeof key, &val, &vl);
		if (rc == COFFER_ENOTFOUND) {
			rc = coffer_txn_get(t, COFFER_DB_TRASH, key, sizeof key, &val, &vl);
			s->c[i].state = rc == 0 ? FILE_TRASH : FILE_ORPHAN;
			/* an empty file made ahead for a writer (engine/pool.h) */
			if (s->c[i].state == FILE_ORPHAN && s->c[i].empty &&
			    (rc = coffer_pool_has_txn(t, s->acct, s->c[i].id)) == 1) {
				s->c[i].state = FILE_POOL;
				rc = 0;
			}
		} else {
			s->c[i].state = FILE_LIVE;
		}
		if (rc < 0 && rc != COFFER_ENOTFOUND)
			return rc;
	}
	return 0;
}

static int64_t mtime_ns(const struct stat *sb)
{
	return (int64_t)sb->st_mtim.tv_sec * COFFER_NS_PER_SEC + sb->st_mtim.tv_nsec;
}

/* Unlinks an orphan after checking again, in a fresh transaction and on
 * disk, that it is still an old regular file nothing refers to. */
static int remove_orphan(struct verify *v, const struct vacct *a, struct candidate *cand,
                         const char *path, const char *dir)
{
	struct classify_args s = { a->id, cand, 1 };
	struct stat sb;
	int rc;

	rc = coffer_index_view(coffer_store_index(v->st), classify_txn, &s);
	if (rc < 0)
		return rc;
	if (cand->state != FILE_ORPHAN || find_ref(a, cand->id))
		return coffer_err_set(COFFER_ETEMP, "it gained an index entry");
	if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode) || mtime_ns(&sb) != cand->mtime)
		return coffer_err_set(COFFER_ETEMP, "it changed while being checked");
	if (unlink(path) < 0)
		return coffer_err_set(coffer_err_from_errno(errno), "cannot remove it: %s",
		                      strerror(errno));
	return coffer_io_fsync_dir(dir);
}

/* ---- 4. The walk ---- */

/* One directory STORE/blobs/<acct>/<xx>. */
static int scan_subdir(struct verify *v, const struct vacct *a, const char *xx)
{
	const char *store = coffer_store_path(v->st);
	struct coffer_buf dir = COFFER_BUF_INIT, path = COFFER_BUF_INIT, rel = COFFER_BUF_INIT;
	struct candidate *cands = NULL;
	struct classify_args s;
	size_t ncands = 0, capcands = 0, n = 0;
	char **names = NULL;
	char hex[HEX_ID + 1];
	struct stat sb;
	int rc;

	coffer_buf_printf(&dir, "%s/blobs/%s/%s", store, a->hex, xx);
	rc = coffer_buf_ok(&dir);
	if (rc == 0)
		rc = list_dir(coffer_buf_str(&dir), &names, &n);
	if (rc < 0 && rc != COFFER_ENOMEM) {
		rc = report_file(v, a, NULL, 0, NULL, "%s", coffer_errmsg());
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		coffer_buf_reset(&rel);
		coffer_buf_printf(&rel, "blobs/%s/%s/%s", a->hex, xx, names[i]);
		coffer_buf_reset(&path);
		coffer_buf_printf(&path, "%s/%s", store, coffer_buf_str(&rel));
		rc = coffer_buf_ok(&rel);
		if (rc == 0)
			rc = coffer_buf_ok(&path);
		if (rc < 0)
			break;
		if (!is_hex(names[i], HEX_ID) || strncmp(names[i], xx, 2) != 0) {
			rc = stray(v, a, coffer_buf_str(&rel),
			           "stray file in the blob tree (not a blob name)");
			continue;
		}
		if (lstat(coffer_buf_str(&path), &sb) < 0) {
			if (errno != ENOENT) /* gone meanwhile: collected */
				rc = report_file(v, a, coffer_buf_str(&rel), 0, NULL,
				                 "cannot stat: %s", strerror(errno));
			continue;
		}
		if (!S_ISREG(sb.st_mode)) {
			rc = stray(v, a, coffer_buf_str(&rel),
			           "stray file in the blob tree (not a regular file)");
			continue;
		}
		rc = verify_grow(&cands, &capcands, ncands, sizeof *cands);
		if (rc < 0)
			break;
		unhex(names[i], cands[ncands].id, ID);
		cands[ncands].mtime = mtime_ns(&sb);
		cands[ncands].empty = sb.st_size == 0;
		cands[ncands].state = FILE_LIVE;
		ncands++;
		v->s->blobs++;
	}
	if (rc < 0 || ncands == 0)
		goto out;
	s = (struct classify_args){ a->id, cands, ncands };
	rc = coffer_index_view(coffer_store_index(v->st), classify_txn, &s);
	for (size_t i = 0; rc == 0 && i < ncands; i++) {
		struct candidate *cand = &cands[i];

		if (cand->state == FILE_POOL)
			v->s->blobs--; /* not a blob yet */
		if (cand->state != FILE_ORPHAN)
			continue;
		if (find_ref(a, cand->id))
			continue; /* a message points at it: reported as a missing record */
		coffer_hex(hex, cand->id, ID);
		if (cand->mtime > v->now - v->grace) {
			rc = report_file(
			    v, a, hex, 1, NULL,
			    "blob without an index entry, younger than the grace period "
			    "(a write may be in progress)");
			continue;
		}
		if (!v->o->repair) {
			rc = report_file(v, a, hex, 0, NULL,
			                 "orphan blob (left by an interrupted write)");
			continue;
		}
		coffer_buf_reset(&path);
		coffer_buf_printf(&path, "%s/%s", coffer_buf_str(&dir), hex);
		rc = coffer_buf_ok(&path);
		if (rc == 0)
			rc = remove_orphan(v, a, cand, coffer_buf_str(&path), coffer_buf_str(&dir));
		if (rc == 0)
			rc = report_file(v, a, hex, 0, "removed",
			                 "orphan blob (left by an interrupted write)");
		else if (rc != COFFER_ENOMEM)
			rc = report_file(
			    v, a, hex, 0, NULL,
			    "orphan blob (left by an interrupted write); not removed: %s",
			    coffer_errmsg());
	}
out:
	free_names(names, n);
	free(cands);
	coffer_buf_free(&dir);
	coffer_buf_free(&path);
	coffer_buf_free(&rel);
	return rc;
}

/* STORE/blobs/<acct>: <xx> directories only. */
int verify_tree_account(struct verify *v, const struct vacct *a)
{
	const char *store = coffer_store_path(v->st);
	struct coffer_buf dir = COFFER_BUF_INIT, path = COFFER_BUF_INIT, rel = COFFER_BUF_INIT;
	char **names = NULL;
	size_t n = 0;
	struct stat sb;
	int rc;

	coffer_buf_printf(&dir, "%s/blobs/%s", store, a->hex);
	rc = coffer_buf_ok(&dir);
	if (rc < 0)
		goto out;
	if (lstat(coffer_buf_str(&dir), &sb) < 0) {
		if (errno != ENOENT)
			rc = report_file(v, a, NULL, 0, NULL, "cannot stat blobs/%s: %s", a->hex,
			                 strerror(errno));
		goto out; /* no blob yet */
	}
	if (!S_ISDIR(sb.st_mode)) {
		coffer_buf_printf(&rel, "blobs/%s", a->hex);
		rc = coffer_buf_ok(&rel);
		if (rc == 0)
			rc = stray(
			    v, a, coffer_buf_str(&rel),
			    "stray file in the blob tree (where the account's directory belongs)");
		goto out;
	}
	rc = list_dir(coffer_buf_str(&dir), &names, &n);
	if (rc < 0 && rc != COFFER_ENOMEM) {
		rc = report_file(v, a, NULL, 0, NULL, "%s", coffer_errmsg());
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		coffer_buf_reset(&path);
		coffer_buf_printf(&path, "%s/%s", coffer_buf_str(&dir), names[i]);
		coffer_buf_reset(&rel);
		coffer_buf_printf(&rel, "blobs/%s/%s", a->hex, names[i]);
		rc = coffer_buf_ok(&path);
		if (rc == 0)
			rc = coffer_buf_ok(&rel);
		if (rc < 0)
			break;
		if (is_hex(names[i], 2) && lstat(coffer_buf_str(&path), &sb) == 0 &&
		    S_ISDIR(sb.st_mode))
			rc = scan_subdir(v, a, names[i]);
		else
			rc = stray(v, a, coffer_buf_str(&rel), "stray file in the blob tree");
	}
out:
	free_names(names, n);
	coffer_buf_free(&dir);
	coffer_buf_free(&path);
	coffer_buf_free(&rel);
	return rc;
}

/* STORE/blobs itself (every-account runs): account directories only. */
int verify_tree_top(struct verify *v)
{
	const char *store = coffer_store_path(v->st);
	struct coffer_buf dir = COFFER_BUF_INIT, path = COFFER_BUF_INIT, rel = COFFER_BUF_INIT;
	unsigned char id[ID];
	char **names = NULL;
	size_t n = 0;
	struct stat sb;
	int rc;

	coffer_buf_printf(&dir, "%s/blobs", store);
	rc = coffer_buf_ok(&dir);
	if (rc == 0)
		rc = list_dir(coffer_buf_str(&dir), &names, &n);
	if (rc < 0 && rc != COFFER_ENOMEM) {
		rc = report_file(v, NULL, "blobs", 0, NULL, "%s", coffer_errmsg());
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		coffer_buf_reset(&path);
		coffer_buf_printf(&path, "%s/%s", coffer_buf_str(&dir), names[i]);
		coffer_buf_reset(&rel);
		coffer_buf_printf(&rel, "blobs/%s", names[i]);
		rc = coffer_buf_ok(&path);
		if (rc == 0)
			rc = coffer_buf_ok(&rel);
		if (rc < 0)
			break;
		if (!is_hex(names[i], HEX_ID)) {
			rc = stray(v, NULL, coffer_buf_str(&rel), "stray file in the blob tree");
			continue;
		}
		unhex(names[i], id, ID);
		if (verify_in_sorted((const unsigned char(*)[ID])v->accts, v->naccts, id))
			continue; /* checked with its account (non-directories too) */
		if (lstat(coffer_buf_str(&path), &sb) == 0 && S_ISDIR(sb.st_mode))
			rc = stray(
			    v, NULL, coffer_buf_str(&rel),
			    "stray directory in the blob tree (of an account that does not exist)");
		else
			rc = stray(v, NULL, coffer_buf_str(&rel), "stray file in the blob tree");
	}
out:
	free_names(names, n);
	coffer_buf_free(&dir);
	coffer_buf_free(&path);
	coffer_buf_free(&rel);
	return rc;
}
