/*
 * account.h: accounts: creating them with their own keys, their states
 * (active → terminated → shredded, reactivate going back), looking them up
 * by name without secrets, and opening one for reading (a "mailbox": the
 * account with its unwrapped secret key).
 *
 * Names are email addresses (names.h), canonicalised before use. The
 * accounts sub-database is keyed by a random id; the name is found through
 * account_names (a MAC of the name) and stored only inside an account box.
 * Listing names therefore needs the key file; looking one up does not.
 *
 * States: a terminated account takes no deliveries and gives no access, but
 * keeps its data; a shredded account keeps only a tombstone (state and
 * dates) so that later questions get "shredded on DATE".
 */
#ifndef COFFER_ACCOUNT_H
#define COFFER_ACCOUNT_H

#include "crypto.h"
#include "index.h"
#include "record.h"
#include "store.h"

#include <stdint.h>

struct coffer_account_info {
	unsigned char id[COFFER_ID_BYTES];
	char *name;    /* canonical; NULL when it cannot be known (shredded) */
	uint8_t state; /* enum coffer_account_state */
	int64_t created_at;
	int64_t terminated_at; /* 0 if not terminated */
	int64_t shredded_at;   /* 0 if not shredded */
	uint32_t folders;
	uint64_t messages;
	uint64_t bytes; /* plaintext bytes of live messages */
};

/* Frees info->name; the struct itself is the caller's. */
void coffer_account_info_clear(struct coffer_account_info *info);
const char *coffer_account_state_name(uint8_t state);

/* Creates an account with fresh keys and an INBOX. Needs the key file (to
 * wrap the new secret key). COFFER_EEXIST if the name is taken by a live or
 * terminated account. info_r may be NULL. */
int coffer_account_add(struct coffer_store *st, const char *name, size_t n,
                       struct coffer_account_info *info_r);
/* Details of one account, by name; needs no key file. */
int coffer_account_show(struct coffer_store *st, const char *name, size_t n,
                        struct coffer_account_info *info_r);
/* Calls fn for every account, in id order; needs the key file for names. */
typedef int (*coffer_account_fn)(const struct coffer_account_info *info, void *arg);
int coffer_account_list(struct coffer_store *st, coffer_account_fn fn, void *arg);
/* terminate: active → terminated; reactivate: terminated → active.
 * COFFER_EINVAL if the account is not in the state the change starts from. */
int coffer_account_terminate(struct coffer_store *st, const char *name, size_t n);
int coffer_account_reactivate(struct coffer_store *st, const char *name, size_t n);
/* The same change as a coffer_txn_fn, in the caller's transaction: arg is a
 * struct coffer_account_state_change (a canonical name; the time it takes effect). */
struct coffer_account_state_change {
	struct coffer_store *st;
	const char *canon;
	int terminate; /* 1: terminate, 0: reactivate */
	int64_t now;
};
int coffer_account_state_txn(struct coffer_txn *t, void *arg);

/* In a transaction: finds the account named canon (canonical). */
int coffer_account_lookup_txn(struct coffer_txn *t, struct coffer_store *st, const char *canon,
                              unsigned char id_r[COFFER_ID_BYTES],
                              struct coffer_account_rec *rec_r);
int coffer_account_get_txn(struct coffer_txn *t, const unsigned char *id,
                           struct coffer_account_rec *rec_r);
int coffer_account_put_txn(struct coffer_txn *t, const unsigned char *id,
                           const struct coffer_account_rec *rec);
/* Marks the account changed (bumps its modseq): every write to an
 * account's folders, messages, keywords or control files must call it in the
 * same transaction, so that snapshots can skip unchanged accounts. */
int coffer_account_touch_txn(struct coffer_txn *t, const unsigned char *id);
/* Refuses deliveries and access to accounts not active: COFFER_ETERMINATED
 * or COFFER_ESHREDDED with a detail naming the account (and the date). */
int coffer_account_check_active(const struct coffer_account_rec *rec, const char *name);

/* Unwraps the secret key of account id (whose record is rec) with the
 * store's key file. Free with coffer_acct_secret_free(). */
int coffer_account_unlock(struct coffer_store *st, const unsigned char *id,
                          const struct coffer_account_rec *rec,
                          struct coffer_acct_secret **secret_r);

/* Opens the name box of an account record into out (appended). */
int coffer_account_name_open(const unsigned char *id, const struct coffer_account_rec *rec,
                             const struct coffer_acct_secret *secret, struct coffer_buf *out);

/* ---- Reading: an account opened with its secret key ---- */
struct coffer_mailbox;

/* Opens account name for reading: loads the key file and unwraps the
 * account's secret key. COFFER_ENOACCOUNT, COFFER_ETERMINATED,
 * COFFER_ESHREDDED as the account's state says; key file errors as
 * coffer_store_keyfile(). */
int coffer_mailbox_open(struct coffer_store *st, const char *name, size_t n,
                        struct coffer_mailbox **mb_r);
void coffer_mailbox_close(struct coffer_mailbox **mb);
struct coffer_store *coffer_mailbox_store(const struct coffer_mailbox *mb);
const unsigned char *coffer_mailbox_id(const struct coffer_mailbox *mb);
const char *coffer_mailbox_name(const struct coffer_mailbox *mb);
const struct coffer_acct_secret *coffer_mailbox_secret(const struct coffer_mailbox *mb);

#endif
