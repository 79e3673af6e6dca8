/*
 * spool.h: deliveries whose blob is their only durable record until a
 * later transaction indexes them.
 *
 * Why: `coffer deliver` runs once per message. Its blob must be durable
 * (one fsync), but the LMDB commit that indexes it costs as much again:
 * about 19 scattered pages written, then flushed, then the meta page
 * (docs/benchmarks.md, "Delivery"). A spooled delivery skips that commit. It
 * fills a pool file (engine/pool.h), whose directory entry and pool record
 * are durable already, attaches a *note* to it as an extended attribute,
 * and fsyncs the file once: content, size and note reach the disk
 * together. Exit 0 then means the message is durable, as before; it is
 * indexed at the next *absorb*.
 *
 * The note (xattr "user.coffer.spool", docs/format.md) holds what the index
 * entry needs and a reader without the account's secret key cannot
 * recompute: the folder id (the folder existed at delivery; deliver takes
 * the commit path to create one), the delivery time, the plaintext size and
 * a BLAKE2b-256 of the blob's bytes: an id, a time, a size and a checksum of
 * ciphertext, nothing readable. 53 bytes, so that ext4 keeps it inside the
 * inode: a bigger one costs an xattr block, allocated, written by the same
 * fsync and freed again at the absorb (0.26 ms more a file in a write,
 * fsync, remove loop here: docs/benchmarks.md). The
 * delivery event is recorded by the absorb, naming the folder by id
 * (engine/events.h).
 *
 * Absorb (coffer_spool_absorb) finds pool records whose file is not empty.
 * For each it takes the file's flock (a writer still filling it holds the
 * lock: skipped), then checks, in the transaction that acts on it, that the
 * pool record still exists (a writer that committed the blob dropped the
 * record before it released the lock). Then:
 *   - a note whose size and digest match the file: a delivery, indexed in
 *     one write transaction with the others, oldest first (uids follow
 *     delivery order), its pool record dropped in the same transaction;
 *   - no note, or one that does not match (a writer killed before its
 *     fsync returned, so it never reported success): the file is emptied and
 *     stays in the pool.
 * Absorb needs write access to the store but no secret key, so `coffer
 * deliver` itself absorbs when its account's pool runs out, and every
 * reader of an account (coffer_mailbox_open), the mount (once a second and
 * when a directory is opened), snapshots, verify and the worker absorb
 * before they look.
 *
 * Crash safety: the absorb's commit is durable before the notes are
 * removed; a note left behind on an indexed blob is inert (no pool record
 * names the file any more). A delivery's folder deleted before the absorb
 * sends the message to INBOX, as a delivery a moment later would have. An
 * account terminated since keeps the mail it accepted; a shredded one's
 * spooled files are emptied (their key is gone).
 */
#ifndef COFFER_SPOOL_H
#define COFFER_SPOOL_H

#include "crypto.h"
#include "store.h"

#include <stdint.h>

struct coffer_spool_note {
	uint32_t folder_id;
	int64_t delivered_at;                    /* ns; also the internal date */
	uint64_t size;                           /* plaintext */
	unsigned char digest[COFFER_HASH_BYTES]; /* of the blob file's bytes */
};

/*
 * Attaches note to the blob file fd (a claimed pool file, fully written,
 * not yet fsynced; the caller's fsync makes both durable). COFFER_ELIMIT
 * when the file system refuses the attribute (no user xattrs):
 * the caller indexes the blob itself, as before.
 */
int coffer_spool_mark(int fd, const struct coffer_spool_note *note);

/* Removes the note of fd, if any (an absorbed delivery). */
void coffer_spool_unmark(int fd);
/* Empties fd and removes its note: a pool file again (a torn delivery, or
 * one that failed after its file was filled). 0, or -1 with errno. */
int coffer_spool_discard(int fd);
/* 1 if fd carries a note (a spooled delivery, absorbed or not), else 0. */
int coffer_spool_marked(int fd);

/*
 * Indexes the spooled deliveries of account acct (NULL: of every account)
 * and empties torn pool files, as described above. *absorbed_r (may be
 * NULL) counts the messages indexed. A store the caller cannot write is
 * not an error: nothing is done.
 */
int coffer_spool_absorb(struct coffer_store *st, const unsigned char *acct, uint64_t *absorbed_r);

#endif
