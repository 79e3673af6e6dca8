/*
 * target.c: the local-directory snapshot target (see target.h).
 *
 * Layout: DIR/<object name>, directories made as needed (0700), files 0600.
 * A put goes to DIR/.tmp/<random> and is renamed into place with
 * RENAME_NOREPLACE semantics (link + unlink), so a name is never replaced.
 * Leftover .tmp files (a crash mid-put) are removed by
 * coffer_target_clean_tmp(), which only a writer holding the store's
 * snapshot lock may call (another process may be writing them).
 *
 * Listing walks the directories under the prefix's directory part and sorts
 * names, so the result is independent of readdir order.
 */
#include "target.h"

#include "engine/buf.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/io.h"
#include "engine/record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct coffer_target {
	char *path;
	int dirfd;
};

const char *coffer_target_path(const struct coffer_target *t)
{
	return t->path;
}

static int valid_name(const char *name)
{
	if (name[0] == '\0' || name[0] == '/' || name[0] == '.')
		return 0;
	for (const char *c = name; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' ||
		      *c == '_' || *c == '-' || *c == '/' || (*c >= 'A' && *c <= 'Z')))
			return 0;
		if (*c == '/' && (c[1] == '/' || c[1] == '.' || c[1] == '\0'))
			return 0;
	}
	return 1;
}

static int bad_name(const char *name)
{
	return coffer_err_set(COFFER_EINVAL, "snapshot target: invalid object name");
	(void)name;
}

void coffer_target_clean_tmp(struct coffer_target *t)
{
	DIR *d;
	struct dirent *e;
	int fd = openat(t->dirfd, ".tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			unlinkat(fd, e->d_name, 0);
	closedir(d);
}

int coffer_target_open(const char *path, int create, struct coffer_target **t_r)
{
	struct coffer_target *t;
	int rc;

	*t_r = NULL;
	if (create) {
		rc = coffer_io_mkdir_p(path, 0700);
		if (rc < 0)
			return coffer_err_prefix(rc, "snapshot target %s: ", path);
	}
	t = calloc(1, sizeof *t);
	if (t == NULL || (t->path = strdup(path)) == NULL) {
		free(t);
		return coffer_err_set(COFFER_ENOMEM, "snapshot target: out of memory");
	}
	t->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dirfd < 0) {
		rc = coffer_err_set(errno == ENOENT ? COFFER_ENOTFOUND
		                                    : coffer_err_from_errno(errno),
		                    "snapshot target %s: %s", path, strerror(errno));
		free(t->path);
		free(t);
		return rc;
	}
	if (mkdirat(t->dirfd, ".tmp", 0700) < 0 && errno != EEXIST) {
		rc = coffer_err_set(coffer_err_from_errno(errno), "snapshot target %s: %s", path,
		                    strerror(errno));
		coffer_target_close(&t);
		return rc;
	}
	*t_r = t;
	return 0;
}

void coffer_target_close(struct coffer_target **tp)
{
	struct coffer_target *t = tp ? *tp : NULL;

	if (t == NULL)
		return;
	if (t->dirfd >= 0)
		close(t->dirfd);
	free(t->path);
	free(t);
	*tp = NULL;
}

/* mkdir -p of the directories in name (relative to dirfd). */
static int make_parents(struct coffer_target *t, const char *name)
{
	char *dup = strdup(name), *slash;
	int rc = 0;

	if (dup == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot target: out of memory");
	for (slash = strchr(dup, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdirat(t->dirfd, dup, 0700) < 0 && errno != EEXIST) {
			rc = coffer_err_set(coffer_err_from_errno(errno),
			                    "snapshot target %s: mkdir %s: %s", t->path, dup,
			                    strerror(errno));
			break;
		}
		*slash = '/';
	}
	free(dup);
	return rc;
}

/* Creates a temporary file; its name is written into tmp (>= 24 bytes). */
static int open_tmp(struct coffer_target *t, char *tmp)
{
	unsigned char rnd[8];
	char hex[17];
	int fd;

	coffer_random(rnd, sizeof rnd);
	coffer_hex(hex, rnd, sizeof rnd);
	snprintf(tmp, 24, ".tmp/%s", hex);
	fd = openat(t->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return coffer_err_set(coffer_err_from_errno(errno), "snapshot target %s: %s",
		                      t->path, strerror(errno));
	return fd;
}

/* Links tmp to name without replacing it, then removes tmp. */
static int publish(struct coffer_target *t, const char *tmp, const char *name)
{
	int rc = make_parents(t, name);

	if (rc == 0 && linkat(t->dirfd, tmp, t->dirfd, name, 0) < 0) {
		rc = errno == EEXIST ? COFFER_EEXIST
		                     : coffer_err_set(coffer_err_from_errno(errno),
		                                      "snapshot target %s: cannot store %s: %s",
		                                      t->path, name, strerror(errno));
	}
	unlinkat(t->dirfd, tmp, 0);
	return rc;
}

int coffer_target_put(struct coffer_target *t, const char *name, const void *p, size_t n)
{
	char tmp[24];
	int fd, rc;

	if (!valid_name(name))
		return bad_name(name);
	fd = open_tmp(t, tmp);
	if (fd < 0)
		return fd;
	rc = coffer_io_write_all(fd, p, n);
	close(fd);
	if (rc < 0) {
		unlinkat(t->dirfd, tmp, 0);
		return coffer_err_prefix(rc, "snapshot target %s: ", t->path);
	}
	return publish(t, tmp, name);
}

int coffer_target_put_fd(struct coffer_target *t, const char *name, int src, uint64_t *size_r)
{
	char tmp[24];
	unsigned char *buf;
	uint64_t total = 0;
	size_t got;
	int fd, rc;

	if (!valid_name(name))
		return bad_name(name);
	buf = malloc(1 << 16);
	if (buf == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot target: out of memory");
	fd = open_tmp(t, tmp);
	if (fd < 0) {
		free(buf);
		return fd;
	}
	for (;;) {
		rc = coffer_io_read_full(src, buf, 1 << 16, &got);
		if (rc < 0 || got == 0)
			break;
		rc = coffer_io_write_all(fd, buf, got);
		if (rc < 0)
			break;
		total += got;
	}
	close(fd);
	free(buf);
	if (rc < 0) {
		unlinkat(t->dirfd, tmp, 0);
		return coffer_err_prefix(rc, "snapshot target %s: ", t->path);
	}
	if (size_r)
		*size_r = total;
	return publish(t, tmp, name);
}

int coffer_target_sync(struct coffer_target *t)
{
	return coffer_io_syncfs(t->dirfd, t->path);
}

int coffer_target_open_read(struct coffer_target *t, const char *name, int *fd_r)
{
	int fd;

	if (!valid_name(name))
		return bad_name(name);
	fd = openat(t->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return coffer_err_set(COFFER_ENOTFOUND,
			                      "snapshot target %s: object %s is missing", t->path,
			                      name);
		return coffer_err_set(coffer_err_from_errno(errno), "snapshot target %s: %s: %s",
		                      t->path, name, strerror(errno));
	}
	*fd_r = fd;
	return 0;
}

int coffer_target_get(struct coffer_target *t, const char *name, size_t max, struct coffer_buf *out)
{
	struct stat st;
	size_t got;
	int fd, rc;

	rc = coffer_target_open_read(t, name, &fd);
	if (rc < 0)
		return rc;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return coffer_err_set(COFFER_ECORRUPT, "snapshot target: %s is not a file", name);
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return coffer_err_set(COFFER_ELIMIT, "snapshot target: %s is too large", name);
	}
	rc = coffer_buf_reserve(out, (size_t)st.st_size);
	if (rc == 0)
		rc = coffer_io_read_full(fd, out->data + out->len, (size_t)st.st_size, &got);
	close(fd);
	if (rc < 0)
		return rc;
	out->len += got;
	out->data[out->len] = '\0';
	return 0;
}

int coffer_target_exists(struct coffer_target *t, const char *name, uint64_t *size_r)
{
	struct stat st;

	if (!valid_name(name))
		return bad_name(name);
	if (fstatat(t->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return coffer_err_set(coffer_err_from_errno(errno), "snapshot target: %s: %s", name,
		                      strerror(errno));
	}
	if (size_r)
		*size_r = (uint64_t)st.st_size;
	return 1;
}

int coffer_target_delete(struct coffer_target *t, const char *name)
{
	if (!valid_name(name))
		return bad_name(name);
	if (unlinkat(t->dirfd, name, 0) < 0 && errno != ENOENT)
		return coffer_err_set(coffer_err_from_errno(errno),
		                      "snapshot target: delete %s: %s", name, strerror(errno));
	return 0;
}

struct entry {
	char *name;
	uint64_t size;
};

struct walk {
	struct entry *v;
	size_t n, cap;
};

static int walk_dir(struct coffer_target *t, const char *rel, struct walk *w)
{
	DIR *d;
	struct dirent *e;
	int fd, rc = 0;

	fd = rel[0] ? openat(t->dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : dup(t->dirfd);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR
		           ? 0
		           : coffer_err_set(coffer_err_from_errno(errno), "snapshot target: %s: %s",
		                            rel, strerror(errno));
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return coffer_err_set(COFFER_ENOMEM, "snapshot target: out of memory");
	}
	if (!rel[0])
		rewinddir(d);
	while (rc == 0 && (e = readdir(d)) != NULL) {
		struct stat st;
		char *child;

		if (e->d_name[0] == '.')
			continue;
		if (asprintf(&child, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) < 0)
			return coffer_err_set(COFFER_ENOMEM, "snapshot target: out of memory");
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			free(child);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			rc = walk_dir(t, child, w);
			free(child);
		} else if (S_ISREG(st.st_mode)) {
			if (coffer_array_grow(&w->v, &w->cap, w->n, sizeof *w->v, 64) < 0) {
				free(child);
				rc = coffer_err_set(COFFER_ENOMEM,
				                    "snapshot target: out of memory");
				break;
			}
			w->v[w->n].name = child;
			w->v[w->n].size = (uint64_t)st.st_size;
			w->n++;
		} else {
			free(child);
		}
	}
	closedir(d);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

int coffer_target_list(struct coffer_target *t, const char *prefix, coffer_target_list_fn fn,
                       void *arg)
{
	struct walk w = { NULL, 0, 0 };
	char *dir = strdup(prefix), *slash;
	size_t plen = strlen(prefix);
	int rc;

	if (dir == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot target: out of memory");
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		dir[0] = '\0';
	rc = walk_dir(t, dir, &w);
	free(dir);
	if (rc == 0 && w.n > 1)
		qsort(w.v, w.n, sizeof *w.v, by_name);
	for (size_t i = 0; rc == 0 && i < w.n; i++) {
		if (strncmp(w.v[i].name, prefix, plen) != 0)
			continue;
		rc = fn(w.v[i].name, w.v[i].size, arg);
		if (rc > 0)
			rc = 0, i = w.n;
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.v[i].name);
	free(w.v);
	return rc;
}
