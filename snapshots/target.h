/*
 * target.h: where snapshots are kept. The snapshot format needs only four
 * things from a target (docs/format.md "Snapshot target"): objects written
 * once and never changed, read back whole or streamed, listed by name
 * prefix, and deleted whole. No rename, append or in-place update is part of
 * the interface, so an S3-compatible object store can implement it later.
 *
 * Today's implementation is a local directory: an object named "a/b/c" is
 * the file DIR/a/b/c. Internally a put writes a temporary file, fsyncs it and
 * renames it into place, so an object is either absent or complete, even
 * after a crash; coffer_target_sync() makes every put since the last sync
 * durable at once (one syncfs(2)), which is what lets a snapshot copy
 * thousands of blobs without one fsync each.
 *
 * Object names are built by Coffer from hex ids and fixed words; they are
 * checked anyway ([a-z0-9._/-], no "..", no leading '/').
 */
#ifndef COFFER_TARGET_H
#define COFFER_TARGET_H

#include "engine/buf.h"

#include <stdint.h>

struct coffer_target;

/* Opens (creating with create) the target directory path. */
int coffer_target_open(const char *path, int create, struct coffer_target **t_r);
void coffer_target_close(struct coffer_target **t);
const char *coffer_target_path(const struct coffer_target *t);

/* Writes object name with n bytes; COFFER_EEXIST if it exists (objects are
 * written once). Not durable until coffer_target_sync(). */
int coffer_target_put(struct coffer_target *t, const char *name, const void *p, size_t n);
/* The same, copying from the file descriptor fd (read to its end). */
int coffer_target_put_fd(struct coffer_target *t, const char *name, int fd, uint64_t *size_r);
/* Makes every earlier put durable. */
int coffer_target_sync(struct coffer_target *t);

/* Reads object name whole (COFFER_ENOTFOUND; COFFER_ELIMIT past max). */
int coffer_target_get(struct coffer_target *t, const char *name, size_t max,
                      struct coffer_buf *out);
/* Opens object name for reading; the caller closes *fd_r. */
int coffer_target_open_read(struct coffer_target *t, const char *name, int *fd_r);
/* 1 if it exists, 0 if not, < 0 on error; *size_r (may be NULL) its size. */
int coffer_target_exists(struct coffer_target *t, const char *name, uint64_t *size_r);
/* Deletes object name; a missing object is not an error (deletes are
 * repeated after crashes). */
int coffer_target_delete(struct coffer_target *t, const char *name);

/* Removes temporary files left by puts that a crash interrupted. Only a
 * writer holding the snapshot lock may call it. */
void coffer_target_clean_tmp(struct coffer_target *t);

/* Calls fn for every object whose name starts with prefix, in name order.
 * fn returns 0 to go on, > 0 to stop, < 0 to stop with that error. */
typedef int (*coffer_target_list_fn)(const char *name, uint64_t size, void *arg);
int coffer_target_list(struct coffer_target *t, const char *prefix, coffer_target_list_fn fn,
                       void *arg);

#endif
