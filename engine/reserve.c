/*
 * reserve.c: the store's space reserve (see reserve.h).
 *
 * STORE/reserve is allocated with posix_fallocate, so its blocks are taken
 * from the file system at once and handed back by one truncate. How much of
 * it is there is read from st_blocks, not st_size: a file that was merely
 * extended (sparse) reserves nothing. Nothing here is durable on purpose: a
 * crash that loses the allocation only means the reserve is refilled later.
 */
#include "reserve.h"

#include "buf.h"
#include "errors.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int reserve_path(const struct coffer_store *st, struct coffer_buf *path)
{
	if (coffer_buf_printf(path, "%s/" COFFER_RESERVE_NAME, coffer_store_path(st)) < 0)
		return coffer_err_set(COFFER_ENOMEM, "store: out of memory");
	return 0;
}

static uint64_t allocated(const struct stat *sb)
{
	uint64_t have = (uint64_t)sb->st_blocks * 512;

	return have > COFFER_RESERVE_BYTES ? COFFER_RESERVE_BYTES : have;
}

uint64_t coffer_reserve_free_bytes(const struct coffer_store *st)
{
	/* through engine/io.h: tests play a full disk there */
	return coffer_io_free_bytes(coffer_store_path(st));
}

uint64_t coffer_reserve_missing(const struct coffer_store *st)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	struct stat sb;
	uint64_t missing = 0;

	/* no file: a store that keeps no reserve (made before it existed, never
	 * mounted since) */
	if (reserve_path(st, &path) == 0 && stat(coffer_buf_str(&path), &sb) == 0)
		missing = S_ISREG(sb.st_mode) ? COFFER_RESERVE_BYTES - allocated(&sb)
		                              : COFFER_RESERVE_BYTES;
	coffer_buf_free(&path);
	return missing;
}

int coffer_reserve_fill(struct coffer_store *st, uint64_t min_free_after)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	struct stat sb;
	uint64_t free_bytes;
	int fd = -1, rc, err;

	rc = reserve_path(st, &path);
	if (rc < 0)
		goto out;
	fd = open(coffer_buf_str(&path), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		err = errno;
		rc = coffer_err_set(coffer_err_from_errno(err), "store %s: the space reserve: %s",
		                    coffer_store_path(st), strerror(err));
		goto out;
	}
	coffer_store_adopt(st, fd, NULL);
	free_bytes = coffer_reserve_free_bytes(st);
	if (!S_ISREG(sb.st_mode) || allocated(&sb) >= COFFER_RESERVE_BYTES ||
	    free_bytes == UINT64_MAX ||
	    free_bytes < COFFER_RESERVE_BYTES - allocated(&sb) + min_free_after) {
		rc = 0;
		goto out;
	}
	err = posix_fallocate(fd, 0, COFFER_RESERVE_BYTES);
	if (err != 0) {
		/* whatever got allocated would be a reserve nobody planned */
		if (ftruncate(fd, 0) < 0) {
			/* the next release truncates it */
		}
		rc = err == ENOSPC || err == EDQUOT
		         ? 0
		         : coffer_err_set(coffer_err_from_errno(err),
		                          "store %s: allocating the space reserve: %s",
		                          coffer_store_path(st), strerror(err));
		goto out;
	}
	rc = 1;
out:
	if (fd >= 0)
		close(fd);
	coffer_buf_free(&path);
	return rc;
}

int coffer_reserve_release(struct coffer_store *st)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	struct stat sb;
	int rc, err;

	rc = reserve_path(st, &path);
	if (rc < 0)
		goto out;
	if (lstat(coffer_buf_str(&path), &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_blocks == 0) {
		rc = 0;
		goto out;
	}
	if (truncate(coffer_buf_str(&path), 0) < 0) {
		err = errno;
		rc = coffer_err_set(coffer_err_from_errno(err),
		                    "store %s: releasing the space reserve: %s",
		                    coffer_store_path(st), strerror(err));
		goto out;
	}
	rc = 1;
out:
	coffer_buf_free(&path);
	return rc;
}

int coffer_reserve_check(const struct coffer_store *st, uint64_t bytes)
{
	uint64_t missing = coffer_reserve_missing(st);
	uint64_t free_bytes;

	if (missing == 0)
		return 0;
	free_bytes = coffer_reserve_free_bytes(st);
	if (free_bytes == UINT64_MAX || free_bytes >= bytes + missing)
		return 0;
	return coffer_err_set(
	    COFFER_ENOSPACE,
	    "store %s: no space left for new mail: %llu bytes free, %llu of "
	    "them kept for the index and control files (STORE/" COFFER_RESERVE_NAME " released)",
	    coffer_store_path(st), (unsigned long long)free_bytes, (unsigned long long)missing);
}
