/*
 * deliver.h: local delivery, the engine under `coffer deliver` (and later the
 * mount's new/ and import): one message from a descriptor into a folder.
 *
 * Delivery needs no secret: it uses the account's public key (the content
 * key is sealed to it; a new folder's name too), and the store's index key
 * to find the account and folder by name.
 *
 * Contract: on success the message and its index entry are durable; on any
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
	uint32_t uid;
	uint64_t size;
};

/* Reads a message from fd until EOF and stores it in folder (any accepted
 * spelling; NULL: INBOX) of account name. */
int coffer_deliver(struct coffer_store *st, const char *name, const char *folder, int fd,
                   struct coffer_deliver_result *res_r);

#endif
