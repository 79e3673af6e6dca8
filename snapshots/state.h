/*
 * state.h: an account's index state as a sorted set of records, the unit
 * that snapshots store (docs/format.md "Account state" and "Reverse delta").
 *
 * A state holds the account's own records from the sub-databases that cannot
 * be derived: folders, keywords, messages and ctlfiles, each as (db, key,
 * value) with the LMDB bytes verbatim (records are self-describing and
 * versioned; their boxes are bound to account, folder and blob ids, so they
 * restore unchanged). Derivable sub-databases (folder_names, msg_names,
 * blobs) are rebuilt on restore.
 *
 * A reverse delta turns the state at one snapshot into the state at the
 * previous snapshot where the account changed: "put (db, key, old value)" for
 * records changed or removed since, "del (db, key)" for records added since.
 *
 * Serialised states and deltas are zstd-compressed and sealed (objects.h).
 * Decoders treat input as untrusted: every length is bounded.
 */
#ifndef COFFER_SNAPSHOT_STATE_H
#define COFFER_SNAPSHOT_STATE_H

#include "engine/buf.h"
#include "engine/index.h"

#include <stddef.h>
#include <stdint.h>

struct coffer_rec {
	uint8_t db; /* enum coffer_db */
	uint16_t klen;
	uint32_t vlen;
	unsigned char *key; /* owned */
	unsigned char *val; /* owned; NULL in a "del" op */
};

/* A sorted (by db, then key bytes) vector of records. */
struct coffer_state {
	struct coffer_rec *v;
	size_t n, cap;
};

void coffer_state_free(struct coffer_state *s);
/* Appends a copy; records must be appended in sorted order
 * (coffer_state_sort() otherwise). */
int coffer_state_add(struct coffer_state *s, uint8_t db, const void *k, size_t klen, const void *v,
                     size_t vlen);
void coffer_state_sort(struct coffer_state *s);
int coffer_rec_cmp(const struct coffer_rec *a, const struct coffer_rec *b);

/* In a transaction: the state of account acct (its folders, keywords,
 * messages, ctlfiles). */
int coffer_state_dump_txn(struct coffer_txn *t, const unsigned char *acct, struct coffer_state *s);

/* Serialisation of a state (ops = 0) or a delta (records with val == NULL
 * are deletions). */
int coffer_state_encode(const struct coffer_state *s, struct coffer_buf *out);
int coffer_state_decode(const void *p, size_t n, struct coffer_state *s);

/* The reverse delta turning cur back into prev: into rev (empty on entry). */
int coffer_state_diff(const struct coffer_state *prev, const struct coffer_state *cur,
                      struct coffer_state *rev);
/* Applies a reverse delta to s in place. */
int coffer_state_apply(struct coffer_state *s, const struct coffer_state *rev);

#endif
