/*
 * shred.h: crypto-shredding an account (docs/design.md section 4,
 * docs/security.md).
 *
 * After coffer_shred_account() returns 0, nothing of the account can be
 * decrypted with any key that still exists: not from the live store, not
 * from any snapshot, not from a copy of either taken before. Its secret key
 * existed only wrapped under the key file's epoch master; the purge moves
 * every other account to a new epoch (re-wrapping their keys in the index
 * and in the snapshot target's key ring) and then destroys the old master.
 * The account's records, blobs and snapshot objects are deleted too, which
 * reclaims the space; its name's MAC and dates stay as a tombstone, so that
 * later questions get "shredded on DATE".
 *
 * Crash safety: the intent is recorded in the index first ("shred_pending",
 * with the account id, the time and its audit pseudonym). Every step after
 * it is idempotent, and coffer_shred_resume() (run by purge and by the
 * worker) finishes an interrupted one. Until it finishes, the key file holds
 * both epochs, so no other account is ever unreadable.
 *
 * Nothing is changed before every precondition holds: the key file must be
 * readable (COFFER_EPERM otherwise), the account must exist (ENOACCOUNT),
 * not be shredded already (ESHREDDED), and be terminated (EINVAL) unless
 * terminate is given.
 */
#ifndef COFFER_SHRED_H
#define COFFER_SHRED_H

#include "engine/store.h"

#include <stdint.h>

struct coffer_shred_result {
	int64_t shredded_at;
	uint64_t records;        /* index records deleted */
	uint64_t target_objects; /* snapshot objects deleted */
	uint64_t other_accounts; /* accounts whose keys were re-wrapped */
};

/* why is recorded in the audit log ("request", "termination grace ended"). */
int coffer_shred_account(struct coffer_store *st, const char *name, int terminate, const char *why,
                         struct coffer_shred_result *res);

/* Finishes an interrupted shred, if any. 0 when there was nothing to do. */
int coffer_shred_resume(struct coffer_store *st, struct coffer_shred_result *res);

#endif
