/*
 * events.h: the per-account metadata log (sub-database `events`): login
 * attempts and deliveries, kept metadata_retention_days (180 by default) and
 * then deleted by the policy worker through coffer_events_expire().
 *
 * Key:   account id (16) || time ns (u64 BE) || random (u32 BE)   28 bytes
 * Value: an account box (crypto.h) of the encoded event, with the key as its
 *        associated data, so a box cannot be moved to another account or time.
 *        Writers that hold the account's secret (checkpassword, `coffer auth`,
 *        the CLI, the mount) write a secretbox; `coffer deliver`, which holds
 *        only its public key, a box of the delivery's sealer (tag 3); the
 *        login check of a terminated account a sealed box (tag 1).
 *
 * Only the account id and the time are in the clear: a copy of the store
 * tells how many events an account had and when, not what they were.
 *
 * Event encoding (inside the box, little-endian, docs/access.md):
 *   u8 version (1), u8 type
 *   type 1 login:    u8 result (1 success), u8 service, u8 method, u8 reason,
 *                    u8 ip length (0, 4, 16), ip, u8 label length, label
 *   type 2 delivery: u64 size, u16 folder length, folder (canonical name);
 *                    or u64 size, u16 0xffff, u32 folder id: a spooled
 *                    delivery (engine/spool.h), recorded by a process that
 *                    cannot read folder names; readers show the folder's
 *                    name at the time they read (or "(deleted folder)")
 *
 * Concurrency: every function runs in one LMDB transaction (or, for expiry,
 * a series of bounded ones), so concurrent writers are serialised by LMDB.
 */
#ifndef COFFER_POLICY_EVENTS_H
#define COFFER_POLICY_EVENTS_H

#include "engine/account.h"
#include "engine/crypto.h"
#include "engine/index.h"
#include "engine/store.h"

#include <stddef.h>
#include <stdint.h>

#define COFFER_EVENT_KEY_BYTES (COFFER_ID_BYTES + 8 + 4)
#define COFFER_EVENT_LABEL_MAX 64
#define COFFER_EVENT_FOLDER_MAX 1024
/* Events one expiry transaction deletes at most, so that a delivery waits
 * for at most one such batch (design.md section 5). */
#define COFFER_EVENTS_EXPIRE_BATCH 5000

enum coffer_event_type {
	COFFER_EVENT_LOGIN = 1,
	COFFER_EVENT_DELIVERY = 2,
};

enum coffer_service {
	COFFER_SVC_UNKNOWN = 0,
	COFFER_SVC_IMAP = 1,
	COFFER_SVC_POP3 = 2,
	COFFER_SVC_SMTP = 3,
	COFFER_SVC_PANEL = 4,
};

/* How a login attempt presented itself (or succeeded). */
enum coffer_login_method {
	COFFER_METHOD_NONE = 0,
	COFFER_METHOD_PASSWORD = 1,      /* the main password */
	COFFER_METHOD_APP_PASSWORD = 2,  /* an application password (label set) */
	COFFER_METHOD_PASSWORD_TOTP = 3, /* main password and a TOTP code */
};

/* Why an attempt failed (0 for successes). */
enum coffer_login_reason {
	COFFER_REASON_NONE = 0,
	COFFER_REASON_BAD_PASSWORD = 1,
	COFFER_REASON_REVOKED_APP_PASSWORD = 2,
	COFFER_REASON_TWO_FACTOR_REQUIRED = 3, /* main password where only app passwords go */
	COFFER_REASON_BAD_TOTP = 4,
	COFFER_REASON_TOTP_REPLAY = 5,
	COFFER_REASON_MISSING_TOTP = 6,
	COFFER_REASON_TERMINATED = 7,
	COFFER_REASON_NO_PASSWORD = 8, /* no password set */
	COFFER_REASON_COUNT
};

/* An IP address: len 4 (IPv4, also for IPv4-mapped IPv6), 16, or 0 (none). */
struct coffer_ip {
	uint8_t len;
	unsigned char addr[16];
};
#define COFFER_IP_TEXT_MAX 46 /* INET6_ADDRSTRLEN */

/* Parses dotted IPv4 or IPv6 text; COFFER_EINVAL otherwise. */
int coffer_ip_parse(const char *s, struct coffer_ip *ip_r);
/* Text form into out (COFFER_IP_TEXT_MAX bytes); "" for none. */
void coffer_ip_format(const struct coffer_ip *ip, char *out);
/* 1 if a and b are in the same network: /24 for IPv4, /48 for IPv6. */
int coffer_ip_same_network(const struct coffer_ip *a, const struct coffer_ip *b);
/* "198.51.100.0/24", "2001:db8:1::/48" into out (COFFER_IP_TEXT_MAX + 4). */
void coffer_ip_network_format(const struct coffer_ip *ip, char *out);

const char *coffer_service_name(uint8_t service);
/* "imap", "pop3", "smtp", "panel" (case-insensitive; "submission" is smtp);
 * anything else is COFFER_SVC_UNKNOWN. */
uint8_t coffer_service_parse(const char *s);
const char *coffer_login_method_name(uint8_t method);
const char *coffer_login_reason_name(uint8_t reason);

/* A decoded event. Pointers (label, folder) point into memory valid only
 * for the duration of the callback that receives the event. */
struct coffer_event {
	int64_t at;
	uint8_t type;
	/* login */
	uint8_t success;
	uint8_t service;
	uint8_t method;
	uint8_t reason;
	struct coffer_ip ip;
	const char *label; /* application password label, "" if none */
	/* delivery */
	uint64_t size;
	const char *folder;
	/* the by-id form (a spooled delivery's): folder_id is encoded, folder
	 * is ignored; decoded, folder is "" until a reader resolves it
	 * (listings do) */
	uint8_t by_id;
	uint32_t folder_id;
};

/* Encodes ev (without its time, which is in the key) into out (appended). */
int coffer_event_encode(const struct coffer_event *ev, struct coffer_buf *out);
/* Decodes; label and folder point into scratch, a buffer the caller owns
 * (reset first). COFFER_ECORRUPT on malformed input. */
int coffer_event_decode(const void *p, size_t n, struct coffer_buf *scratch,
                        struct coffer_event *ev_r);

/* Appends an event for account acct at ev->at. With secret (the account's
 * keys) the box is symmetric; with secret NULL it is sealed to pk. */
int coffer_events_record_txn(struct coffer_txn *t, const unsigned char *acct,
                             const unsigned char pk[COFFER_PK_BYTES],
                             const struct coffer_acct_secret *secret,
                             const struct coffer_event *ev);

/* For `coffer deliver` and the mount: records a delivery (at ns, size bytes
 * of plaintext, canonical folder name folder of flen bytes): under secret
 * when the caller holds it (the mount: no public-key work), else with sealer
 * (borrowed; `coffer deliver`: the sealer that wrapped the blob's key), else
 * sealed to pk. To be called inside the delivery's own write transaction, so
 * the event exists exactly when the message does. */
int coffer_events_record_delivery_txn(struct coffer_txn *t, const unsigned char *acct,
                                      const unsigned char pk[COFFER_PK_BYTES],
                                      const struct coffer_acct_secret *secret,
                                      struct coffer_sealer *sealer, int64_t at, uint64_t size,
                                      const char *folder, size_t flen);

/* The same for a spooled delivery absorbed by a process without the
 * account's secret (engine/spool.h): the folder by id, boxed by sealer
 * (borrowed, one for the absorb's deliveries to the account). */
int coffer_events_record_delivery_id_txn(struct coffer_txn *t, const unsigned char *acct,
                                         struct coffer_sealer *sealer, int64_t at, uint64_t size,
                                         uint32_t folder_id);

/* Calls fn for the events of the account opened as mb with time >= since,
 * newest first, at most limit of them (0: no limit). fn returns 0 to go on,
 * > 0 to stop, < 0 to fail. Cost grows with limit, not with the size of the
 * log (see events.c on how it works without a reverse cursor). */
typedef int (*coffer_event_fn)(const struct coffer_event *ev, void *arg);
int coffer_events_list(struct coffer_mailbox *mb, int64_t since, size_t limit, coffer_event_fn fn,
                       void *arg);
/* The same, counting and returning only events of type `type` (0: all).
 * Types are inside the boxes, so this reads the newest limit·4^k events for
 * growing k until limit of the type are found or the log is exhausted. */
int coffer_events_list_type(struct coffer_mailbox *mb, uint8_t type, int64_t since, size_t limit,
                            coffer_event_fn fn, void *arg);
/* Same, oldest first, every event with since <= time < until (until 0: no
 * upper bound). */
int coffer_events_scan(struct coffer_mailbox *mb, int64_t since, int64_t until, coffer_event_fn fn,
                       void *arg);
/* The same over an account id and secret, in an open transaction. */
int coffer_events_scan_txn(struct coffer_txn *t, const unsigned char *acct,
                           const struct coffer_acct_secret *secret, int64_t since, int64_t until,
                           coffer_event_fn fn, void *arg);

/* Retention: deletes every event (of every account) older than before_ns,
 * in transactions of at most COFFER_EVENTS_EXPIRE_BATCH deletions each.
 * *removed_r (may be NULL) counts them. Needs no key file. Idempotent; safe
 * to interrupt (what was committed stays deleted, the rest is done by the
 * next run). */
int coffer_events_expire(struct coffer_store *st, int64_t before_ns, uint64_t *removed_r);

/* Purge: deletes every event of account acct, in the caller's transaction
 * (the purge's), so the log goes with the account's keys. */
int coffer_events_delete_account_txn(struct coffer_txn *t, const unsigned char *acct,
                                     uint64_t *removed_r);

/* Number of events of an account and the time of its oldest (0 if none);
 * needs no key file (for the retention report). */
int coffer_events_stat_txn(struct coffer_txn *t, const unsigned char *acct, uint64_t *count_r,
                           int64_t *oldest_r);

#endif
