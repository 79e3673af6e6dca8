/*
 * coffer.h: the public API of libcoffer, for programs outside Coffer.
 *
 * Installed as <coffer/coffer.h>, with the engine headers it includes under
 * <coffer/engine/>. Build against the installed library with pkg-config:
 *
 *     cc prog.c $(pkg-config --cflags --libs coffer)
 *
 * (--cflags adds -I$includedir/coffer, so `#include <coffer.h>` works too.)
 *
 * What it offers: opening a store (store.h), accounts (account.h), folders
 * (folder.h) and messages (message.h), with the error convention of
 * errors.h (every call returns int: 0, or a negative code that
 * coffer_strerror() names and coffer_errmsg() details), growable buffers
 * (buf.h), times (clock.h) and secure memory (crypto.h). Each header says
 * who owns what it returns. Only the functions these headers declare are
 * exported by libcoffer (a version script hides the rest).
 *
 * Inside the project there is no catch-all header: modules include what they
 * use. This file exists for external users only.
 */
#ifndef COFFER_COFFER_H
#define COFFER_COFFER_H

#ifdef __cplusplus
extern "C" {
#endif

#include "engine/errors.h"
#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/store.h"
#include "engine/account.h"
#include "engine/folder.h"
#include "engine/message.h"

#ifdef __cplusplus
}
#endif

#endif
