/*
 * objects.h: the snapshot target's objects (docs/format.md "Snapshot
 * target"): sealing, and the manifest and key ring formats.
 *
 * Every object except blobs (copied verbatim from the store, already
 * encrypted) is sealed: "CFO1" | kind u8 | nonce(24) | XChaCha20-Poly1305 of
 * (u64 plaintext length | zstd frame), with AD = "CFO1" | kind | store id |
 * object name. Binding the name means an object cannot be passed off as
 * another. Manifests, key rings and journals are sealed with the target
 * metadata key, derived from the key file's store secret (never rotated);
 * account states and deltas with the account's data key (so they are
 * crypto-shredded with the account).
 *
 * Object names:
 *   coffer-target               marker: "coffer-target 1\nstore <hex>\n"
 *   keyring/<id>                key ring (newest name wins)
 *   snap/<id>                   manifest: the snapshot exists once this exists
 *   pending/<id>                journal of a snapshot being written
 *   a/<acct>/full/<id>          account state as of snapshot <id>
 *   a/<acct>/rev/<id>           reverse delta: state at <id> → previous change
 *   a/<acct>/b/<blob>           blob
 * <id> is the snapshot id "YYYYMMDDTHHMMSSZ" (UTC, sortable), with "-N"
 * appended when two snapshots fall in one second.
 */
#ifndef COFFER_SNAPSHOT_OBJECTS_H
#define COFFER_SNAPSHOT_OBJECTS_H

#include "engine/buf.h"
#include "engine/crypto.h"
#include "engine/record.h"

#include <stdint.h>

#define COFFER_SNAPID_MAX 24
#define COFFER_OBJ_MANIFEST 1
#define COFFER_OBJ_KEYRING 2
#define COFFER_OBJ_JOURNAL 3
#define COFFER_OBJ_FULL 4
#define COFFER_OBJ_REV 5
#define COFFER_OBJ_MAX_PLAIN (1ull << 31)

int coffer_obj_seal(struct coffer_buf *out, uint8_t kind, const char *name,
                    const unsigned char *store_id, const unsigned char *key, const void *pt,
                    size_t n);
/* Opens into pt (appended). COFFER_ECORRUPT with a detail naming the object. */
int coffer_obj_open(struct coffer_buf *pt, uint8_t kind, const char *name,
                    const unsigned char *store_id, const unsigned char *key, const void *obj,
                    size_t n);

/* "20261129T020000Z" for ns (suffix -N when n > 0). */
void coffer_snapid_format(int64_t ns, unsigned n, char out[COFFER_SNAPID_MAX]);
/* Parses an id back to its time; COFFER_EINVAL if it is not one. */
int coffer_snapid_parse(const char *id, int64_t *ns_r);

struct coffer_snap_account {
	unsigned char id[COFFER_ID_BYTES];
	uint64_t modseq;                 /* account modseq captured */
	uint64_t messages;               /* live messages */
	uint64_t bytes;                  /* plaintext bytes of live messages */
	uint64_t new_bytes;              /* blob bytes this snapshot copied for it */
	uint8_t changed;                 /* its state was written by this snapshot */
	char full_at[COFFER_SNAPID_MAX]; /* snapshot whose full state is current */
	uint32_t n_revs;
	char (*revs)[COFFER_SNAPID_MAX]; /* change points with a reverse delta, ascending */
};

struct coffer_manifest {
	char id[COFFER_SNAPID_MAX];
	int64_t created_at;
	unsigned char store_id[COFFER_ID_BYTES];
	unsigned char index_key[COFFER_KEY_BYTES];
	char keyring[64]; /* key ring object current when this was written */
	uint32_t n_accounts;
	struct coffer_snap_account *accounts; /* sorted by id */
	uint32_t n_freed;
	char **freed; /* objects held only by earlier snapshots */
	uint32_t n_drop;
	char **drop; /* objects to delete once this manifest is durable */
};

void coffer_manifest_free(struct coffer_manifest *m);
int coffer_manifest_encode(const struct coffer_manifest *m, struct coffer_buf *out);
int coffer_manifest_decode(const void *p, size_t n, struct coffer_manifest *m);
/* The entry of account id, or NULL. */
struct coffer_snap_account *coffer_manifest_account(const struct coffer_manifest *m,
                                                    const unsigned char *id);
int coffer_manifest_add_name(char ***v, uint32_t *n, const char *name);

struct coffer_keyring_entry {
	unsigned char id[COFFER_ID_BYTES];
	unsigned char name_mac[COFFER_MAC_BYTES]; /* the account_names key */
	unsigned char *record;                    /* accounts record bytes (owned) */
	size_t record_len;
};

struct coffer_keyring {
	uint32_t n;
	struct coffer_keyring_entry *v; /* sorted by id */
};

void coffer_keyring_free(struct coffer_keyring *k);
int coffer_keyring_add(struct coffer_keyring *k, const unsigned char *id, const unsigned char *mac,
                       const void *record, size_t len);
int coffer_keyring_encode(const struct coffer_keyring *k, struct coffer_buf *out);
int coffer_keyring_decode(const void *p, size_t n, struct coffer_keyring *k);
const struct coffer_keyring_entry *coffer_keyring_find(const struct coffer_keyring *k,
                                                       const unsigned char *id);

#endif
