/*
 * audit.h: the append-only, hash-chained audit log of policy actions
 * (STORE/audit.log): snapshot, prune, metadata expiry, terminate,
 * reactivate, purge, auto-shred, restore, policy change.
 *
 * Each entry is one JSON line: seq, time, actor (uid and user), action, the
 * account as a keyed pseudonym (never the name), a detail (counts), the
 * previous entry's MAC, and its own MAC: BLAKE2b-256 keyed with a key
 * derived from the key file's store secret, over the previous MAC and the
 * line up to the "mac" field. Without the key file nobody can forge, edit,
 * reorder or splice entries unnoticed. The newest (seq, MAC) is also kept in
 * the index ("audit_head"), so cutting entries off the end is noticed too.
 *
 * "Was alice@example.com shredded?": compute her pseudonym
 * (coffer_audit_pseudonym, or `coffer audit show --account NAME`) and look
 * for it; the log alone does not reveal names.
 *
 * Crash safety: an entry is appended with one write and fsynced before the
 * index head moves. A crash may leave a partial last line (without its
 * newline); the next append cuts it off and says so in a recovery entry. A
 * write that fails (EIO, a full disk) is cut off at once, so a failed append
 * leaves no torn line; one whose fsync fails stays, and the next entry chains
 * on it. The reads, writes and syncs go through engine/io.h, so
 * tests/test-faults.c can fail each of them.
 */
#ifndef COFFER_AUDIT_H
#define COFFER_AUDIT_H

#include "engine/index.h"
#include "engine/store.h"

#include <stddef.h>
#include <stdint.h>

#define COFFER_AUDIT_PSEUDONYM_MAX 40

/* Appends an entry. account is a canonical account name (pseudonymised
 * here) or NULL; detail is free text without names (counts, ids). */
int coffer_audit_append(struct coffer_store *st, const char *action, const char *account,
                        const char *detail);

/* The same with the account's pseudonym already computed ("" for none):
 * for actions on accounts whose name is no longer known (a resumed purge). */
int coffer_audit_append_pseudonym(struct coffer_store *st, const char *action,
                                  const char *pseudonym, const char *detail);
/* The same, and fn(txn, arg) runs in the transaction that moves the index's
 * head to the new entry: the change commits exactly when the entry is
 * recorded as written (after the entry's line is fsynced). A crash before
 * that commit may leave the line in the log without the change; a caller
 * that retries must look for it (coffer_audit_list) before appending again. */
int coffer_audit_append_txn(struct coffer_store *st, const char *action, const char *pseudonym,
                            const char *detail, coffer_txn_fn fn, void *arg);

/* "ps:<32 hex>" for a canonical account name. */
int coffer_audit_pseudonym(struct coffer_store *st, const char *account,
                           char out[COFFER_AUDIT_PSEUDONYM_MAX]);

struct coffer_audit_record {
	uint64_t seq;
	const char *time;
	const char *action;
	const char *account; /* pseudonym or "" */
	const char *detail;
	const char *line; /* the whole line */
};

/* The longest line an entry may take, its newline included. */
#define COFFER_AUDIT_LINE_MAX 8192

/*
 * One log line as read back: what coffer_audit_line_parse() takes out of it.
 * The strings are NUL-terminated copies (unescaped only for the characters
 * the writer escapes), cut to their buffer when longer; a field the line
 * lacks is "". The caller owns the struct; nothing in it points into the
 * line or is allocated.
 */
struct coffer_audit_line {
	uint64_t seq;
	unsigned char mac[32];
	size_t signed_len; /* bytes of the line the MAC covers */
	char prev[80];     /* the predecessor's MAC, in hex as written */
	char time[64], action[64], account[64];
	char detail[COFFER_AUDIT_LINE_MAX];
};

/*
 * Parses one line of the log (NUL-terminated, its newline removed): the
 * reader behind coffer_audit_verify() and coffer_audit_list(), exposed for
 * tests/fuzz/fuzz-audit.c. The line is untrusted (anyone who can write the
 * store can write the log): it needs "seq", "prev" and a "mac" of 64 hex
 * digits after ", \"mac\": ", else COFFER_ECORRUPT naming lineno. It checks
 * no MAC and no sequence: that is the chain's job. Reads nothing past the
 * line's NUL; allocates nothing.
 */
int coffer_audit_line_parse(const char *line, uint64_t lineno, struct coffer_audit_line *l_r);

/* Checks the chain. Returns 0 when intact; COFFER_ECORRUPT with a detail
 * naming the first broken entry (its seq and line number) otherwise.
 * *entries_r counts the entries checked. */
int coffer_audit_verify(struct coffer_store *st, uint64_t *entries_r);

/* Calls fn for each entry (all, or those of one pseudonym), oldest first. */
typedef int (*coffer_audit_fn)(const struct coffer_audit_record *r, void *arg);
int coffer_audit_list(struct coffer_store *st, const char *pseudonym, coffer_audit_fn fn,
                      void *arg);
/* *found_r = 1 when an entry of action (and of pseudonym, unless NULL)
 * has a detail ending with suffix: how a retried step finds the entry an
 * interrupted one wrote (coffer_audit_append_txn). */
int coffer_audit_find(struct coffer_store *st, const char *pseudonym, const char *action,
                      const char *suffix, int *found_r);

#endif
