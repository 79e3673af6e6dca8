/*
 * envelope.h: the blob format (docs/format.md "blob v1"), a streaming writer
 * and a streaming, seekable reader.
 *
 * A blob is one immutable file holding one message (or one version of a
 * control file): a header with the content key wrapped to the account, then
 * chunks of at most COFFER_BLOB_CHUNK plaintext bytes, each compressed alone
 * with zstd (or kept raw) and sealed with XChaCha20-Poly1305 under the content
 * key. Associated data binds every chunk to (account id, blob id, kind,
 * chunk index, final flag), so swapping, reordering or truncating is detected.
 *
 * Memory is bounded: a writer buffers two chunks, a reader one, whatever the
 * message size.
 *
 * Untrusted input: the reader treats the file as hostile. Every length is
 * bounded before use; any mismatch is COFFER_ECORRUPT with a detail naming
 * what failed (header, chunk N, truncated, trailing data), never a crash.
 *
 * The writer and reader do plain write()/pread() on a descriptor the caller
 * owns; durability (fsync) is the caller's job.
 */
#ifndef COFFER_ENVELOPE_H
#define COFFER_ENVELOPE_H

#include "crypto.h"

#include <stdint.h>
#include <sys/types.h>

#define COFFER_BLOB_CHUNK 65536u
#define COFFER_BLOB_VERSION 1

enum coffer_blob_kind {
	COFFER_BLOB_MESSAGE = 1,
	COFFER_BLOB_CONTROL = 2,
};

struct coffer_blob_ids {
	unsigned char account_id[COFFER_ID_BYTES];
	unsigned char blob_id[COFFER_ID_BYTES];
	uint8_t kind; /* enum coffer_blob_kind */
};

struct coffer_blob_writer;

/*
 * Starts a blob on fd (opened for writing, positioned at 0). If secret is
 * NULL the content key is sealed to pk; otherwise it is wrapped under
 * secret->data_key and pk is ignored. zstd_level 0 means the default (3).
 * The writer copies ids and keys; the caller keeps ownership of its own.
 */
int coffer_blob_writer_new(int fd, const struct coffer_blob_ids *ids,
                           const unsigned char pk[COFFER_PK_BYTES],
                           const struct coffer_acct_secret *secret, int zstd_level,
                           struct coffer_blob_writer **w_r);
/*
 * The same with the content key wrapped by sealer (wrap type 3: a sealer's
 * box bound to the ids; the writer of a delivery makes its other boxes with
 * the same sealer). The sealer is borrowed for this call only; it refuses a
 * second blob for the same ids.
 */
int coffer_blob_writer_new_sealed(int fd, const struct coffer_blob_ids *ids,
                                  struct coffer_sealer *sealer, int zstd_level,
                                  struct coffer_blob_writer **w_r);
/* Appends plaintext. May write complete chunks to fd. */
int coffer_blob_writer_write(struct coffer_blob_writer *w, const void *p, size_t n);
/* Writes the final chunk. Returns the plaintext size and the bytes written
 * to fd. Must be called exactly once; no write after it. */
int coffer_blob_writer_finish(struct coffer_blob_writer *w, uint64_t *plain_size_r,
                              uint64_t *stored_size_r);
/* A sealed writer's BLAKE2b-256 of every byte it wrote to fd (header and
 * chunks), once finished: what a spooled delivery records so that a reader
 * without the secret key can tell a complete blob from a torn one
 * (engine/spool.h). COFFER_EINVAL for other writers, or before finish. */
int coffer_blob_writer_digest(const struct coffer_blob_writer *w,
                              unsigned char out[COFFER_HASH_BYTES]);
/* Wipes the content key and frees. Accepts NULL and *w == NULL. */
void coffer_blob_writer_free(struct coffer_blob_writer **w);

struct coffer_blob_reader;

/*
 * Reads and checks the header of the blob on fd, and unwraps its content key
 * with secret (sealed, shared-sealed or symmetric, whichever the header
 * says). ids must be the ids the index expects; a blob written for other ids
 * fails with COFFER_ECORRUPT. The reader does not own fd.
 */
int coffer_blob_reader_open(int fd, const struct coffer_blob_ids *ids,
                            const struct coffer_acct_secret *secret,
                            struct coffer_blob_reader **r_r);
/* Sequential read: fills up to cap bytes, *n_r = 0 at the (authenticated)
 * end. COFFER_ECORRUPT on damage or truncation. */
int coffer_blob_reader_read(struct coffer_blob_reader *r, void *buf, size_t cap, size_t *n_r);
/* Random access: reads up to cap bytes at plaintext offset off; *n_r = 0 at
 * or past the end. Independent of the sequential position. */
int coffer_blob_reader_pread(struct coffer_blob_reader *r, void *buf, size_t cap, uint64_t off,
                             size_t *n_r);
/* Plaintext size, authenticated (reads the final chunk). */
int coffer_blob_reader_size(struct coffer_blob_reader *r, uint64_t *size_r);
void coffer_blob_reader_free(struct coffer_blob_reader **r);

#endif
