/*
 * verify-private.h: what the two files of `coffer verify` share (verify.c:
 * the run, the index pass and the blob pass; verify-tree.c: the tree pass).
 * Not for use outside engine/verify*.c; the names here are not exported by
 * libcoffer.
 *
 * One struct verify lives for a run, one struct vacct for each account while
 * it is checked; verify.c builds both, hands them to the tree pass and frees
 * them. The tree pass only reads them, but for the run's statistics (v->s).
 * A run is single-threaded: nothing here is locked.
 */
#ifndef COFFER_ENGINE_VERIFY_PRIVATE_H
#define COFFER_ENGINE_VERIFY_PRIVATE_H

#include "verify.h"

#include "crypto.h"
#include "store.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define ID COFFER_ID_BYTES
#define HEX_ID (2 * COFFER_ID_BYTES)

/* Built by the index pass (verify.c), read there and by the tree pass. */
struct vfolder;
struct vctl;
struct vunref;

/* One message's blob reference (sorted by blob id, then folder, uid). */
struct vref {
	unsigned char blob[ID];
	uint32_t fid;
	uint32_t uid;
};

struct vacct {
	unsigned char id[ID];
	char hex[HEX_ID + 1];
	char *name; /* canonical name or "account <hex>" */
	int rec_ok;
	struct coffer_acct_secret *secret; /* NULL: shredded, or the key does not unwrap */
	struct vfolder *folders;           /* by id (key order) */
	size_t nfolders, capfolders;
	struct vref *refs;
	size_t nrefs, caprefs;
	unsigned char (*trash)[ID]; /* key order */
	size_t ntrash, captrash;
	struct vunref *unref;
	size_t nunref, capunref;
	size_t next_ref;   /* merge position in refs while scanning blobs */
	struct vctl *ctls; /* control files with a blob */
	size_t nctls, capctls;
	size_t next_ctl;    /* merge position in ctls */
	int trash_conflict; /* a trashed blob is still referenced: do not collect */
};

struct verify {
	struct coffer_store *st;
	const struct coffer_verify_opts *o;
	struct coffer_verify_stats *s;
	int64_t now;
	int64_t grace;
	unsigned char *buf;
	unsigned char (*accts)[ID]; /* accounts checked, key order */
	size_t naccts, capaccts;
	uint64_t total; /* messages to check, for progress */
	uint64_t done;
};

/* verify.c */

/* One problem to the caller's callback, counted in the run's statistics as
 * pending, repaired (repair set) or a problem. The strings are the
 * problem's fields (NULL where they do not apply); they need only outlive
 * the call. 0, or the callback's negative return. */
int verify_vreport(struct verify *v, const char *account, const char *folder, uint32_t uid,
                   const char *blob, int pending, const char *repair, const char *fmt, va_list ap)
    __attribute__((format(printf, 8, 0)));
/* Makes room in the array at pp (a T **; capacity *cap elements of size
 * bytes) for element n: coffer_array_grow() with verify's message. */
int verify_grow(void *pp, size_t *cap, size_t n, size_t size);
/* 1 if id is among the n sorted ids of v. */
int verify_in_sorted(const unsigned char (*v)[ID], size_t n, const unsigned char *id);

/* verify-tree.c */

/* STORE/blobs/<acct>: every file matched against the account's blobs and
 * trash records; strays and orphans reported, and repaired when asked. */
int verify_tree_account(struct verify *v, const struct vacct *a);
/* STORE/blobs itself (every-account runs): directories of accounts that do
 * not exist, and anything else that is not an account's directory. */
int verify_tree_top(struct verify *v);

#endif
