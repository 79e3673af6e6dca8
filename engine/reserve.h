/*
 * reserve.h: the store's space reserve, STORE/reserve: a file of
 * COFFER_RESERVE_BYTES allocated on the store's file system so that, once
 * new mail has filled the disk, the index and Dovecot's control files
 * (dovecot-uidlist, dovecot.index*) still have room: a full disk refuses
 * new mail and keeps serving what is stored (docs/reliability.md "Full
 * disk").
 *
 * Who does what:
 *   - `coffer init` and the mount at start fill it (best effort);
 *   - the mount releases it (truncates it to 0) when a control file has no
 *     room, and refills it once the file system has room again;
 *   - writers of new mail never take what a released reserve gave back:
 *     coffer_reserve_check(), which `coffer deliver` and `coffer import` run
 *     through coffer_store_mail_blob_create() (store.h) and the mount's
 *     tmp/ files through their room checks.
 * While the reserve is whole, mail writers run into ENOSPC as on any disk.
 *
 * The file holds zeros and no secret; `coffer verify` ignores it (it walks
 * STORE/blobs only) and snapshots do not copy it. A store without the file
 * keeps no reserve (one made before it existed and not mounted since): mail
 * writers then run into ENOSPC as on any disk. Safe to call from several
 * processes: the file is only ever grown with fallocate or truncated to 0.
 */
#ifndef COFFER_RESERVE_H
#define COFFER_RESERVE_H

#include "store.h"

#include <stdint.h>

#define COFFER_RESERVE_BYTES (4u << 20)
#define COFFER_RESERVE_NAME "reserve"

/* Bytes the reserve lacks: 0 when it is whole or the store keeps none,
 * COFFER_RESERVE_BYTES when it is released. */
uint64_t coffer_reserve_missing(const struct coffer_store *st);

/* Grows the reserve to its full size if the file system has room for it
 * and then still min_free_after bytes free. 1 if it grew, 0 if nothing was
 * done (whole already, or not enough room), negative COFFER_E* on an error. */
int coffer_reserve_fill(struct coffer_store *st, uint64_t min_free_after);

/* Releases the reserve (truncates it to 0) so that its space can be used.
 * 1 if space was released, 0 if there was none to release, negative
 * COFFER_E* on an error. */
int coffer_reserve_release(struct coffer_store *st);

/* For writers of new mail: COFFER_ENOSPACE (with a detail) unless the store's
 * file system has bytes free beyond what the reserve lacks; 0 otherwise, and
 * 0 when free space cannot be told. */
int coffer_reserve_check(const struct coffer_store *st, uint64_t bytes);

/* Free bytes on the store's file system (for an unprivileged user), or
 * UINT64_MAX when statvfs fails. */
uint64_t coffer_reserve_free_bytes(const struct coffer_store *st);

#endif
