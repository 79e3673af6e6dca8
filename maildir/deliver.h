/*
 * deliver.h: local delivery, the engine under `coffer deliver` (and later the
 * mount's new/ and import): one message from a descriptor into a folder.
 *
 * Delivery needs no secret: it uses the account's public key (the content
 * key is sealed to it; a new folder's name too), and the store's index key
 * to find the account and folder by name.
 *
 * Contract: on success the message and its index entry are durable (a
 * spooled message: the message, with what its index entry needs); on any
 * failure nothing of the message remains visible, and its partial blob is
 * removed (a crash may leave an orphan blob, never an index entry without
 * its blob). Memory stays bounded whatever the message size.
 *
 * What is accepted (docs/deliver.md): any non-empty input whose first line
 * (after an optional mbox "From " line) is a header field; the bytes are
 * stored exactly as given (CRLF or LF, NULs, long lines, no body). Empty input
 * and input that does not start like a message are COFFER_EBADMSG; input over
 * max_message_size is COFFER_ELIMIT. The delivery is recorded in the
 * account's metadata log (engine/events.h) in the same transaction.
 */
#ifndef COFFER_DELIVER_H
#define COFFER_DELIVER_H

#include "engine/store.h"

#include <stdint.h>

struct coffer_deliver_result {
	uint32_t folder_id;
	uint32_t uid; /* 0 when spooled: assigned when the delivery is absorbed */
	uint64_t size;
	int spooled; /* 1: durable, indexed at the next absorb (engine/spool.h) */
};

/* Reads a message from fd until EOF and stores it in folder (any accepted
 * spelling; NULL: INBOX) of account name, indexed when this returns. */
int coffer_deliver(struct coffer_store *st, const char *name, const char *folder, int fd,
                   struct coffer_deliver_result *res_r);

/*
 * The same with flags. COFFER_DELIVER_SPOOL: when the folder exists, the
 * account has a pool file to fill and the file system takes the note, the
 * message is spooled (engine/spool.h): on success it is durable, and its
 * index entry is made by the next absorb; otherwise it is indexed as above.
 * `coffer deliver` spools; the library's other callers want the uid at once.
 */
#define COFFER_DELIVER_SPOOL 1u
int coffer_deliver_flags(struct coffer_store *st, const char *name, const char *folder, int fd,
                         unsigned flags, struct coffer_deliver_result *res_r);

#endif
