/*
 * keyfile.h: the store's key file, the only place where Coffer's root
 * secrets live (docs/design.md section 4, docs/security.md).
 *
 * It holds the store id it belongs to, one or two epoch masters (two only
 * while a crypto-shredding rotation is under way), and the pseudonym key of
 * the audit log. Account secret keys are wrapped under a key derived from
 * the master of an epoch, so destroying a master makes every copy of every
 * key wrapped under it useless.
 *
 * The file is text, mode 0600 (or stricter): a key file readable by group or
 * others is refused, by name, before its contents are read. Its contents are
 * read into guarded memory (coffer_secure_alloc) and wiped after parsing.
 *
 * Crash safety: coffer_keyfile_create() never replaces an existing file
 * (link(2) of a fully written, fsynced temporary file); coffer_keyfile_
 * replace() is an atomic rename of a fsynced temporary file, so a reader sees
 * the old or the new file, never a mix. A write killed before its rename
 * leaves "<path>.tmp.<16 hex>" behind, with the masters of its day; every
 * later create or replace removes such files before its directory fsync, so
 * a crypto-shredding rotation leaves no copy of the retired master.
 */
#ifndef COFFER_KEYFILE_H
#define COFFER_KEYFILE_H

#include "crypto.h"
#include "record.h"

#include <stdint.h>

struct coffer_keyfile;

/* A new key file in memory: epoch 1 with a random master, a random
 * pseudonym key, bound to store_id. */
int coffer_keyfile_generate(const unsigned char store_id[COFFER_ID_BYTES],
                            struct coffer_keyfile **kf_r);
/* Writes kf to path, which must not exist (COFFER_EEXIST), mode 0600. */
int coffer_keyfile_create(const char *path, const struct coffer_keyfile *kf);
/* Atomically replaces the key file at path with kf. */
int coffer_keyfile_replace(const char *path, const struct coffer_keyfile *kf);
/* Reads and checks path: COFFER_ENOTFOUND if missing, COFFER_EPERM if it
 * cannot be read or its mode lets group or others read it, COFFER_ECORRUPT if
 * malformed. */
int coffer_keyfile_load(const char *path, struct coffer_keyfile **kf_r);
/* Parses key file text (for tests and fuzzing); name is used in errors. */
int coffer_keyfile_parse(const char *name, const char *text, size_t n,
                         struct coffer_keyfile **kf_r);
void coffer_keyfile_free(struct coffer_keyfile **kf);

const unsigned char *coffer_keyfile_store_id(const struct coffer_keyfile *kf);
/* The newest epoch: new wraps use it. */
uint64_t coffer_keyfile_epoch(const struct coffer_keyfile *kf);
/* 1 if a rotation is under way (two epochs present). */
int coffer_keyfile_rotating(const struct coffer_keyfile *kf);
/* Starts a rotation: adds epoch+1 with a fresh master. COFFER_EINVAL if one
 * is already under way. */
int coffer_keyfile_begin_rotation(struct coffer_keyfile *kf);
/* Ends it: destroys (wipes) every master but the newest. */
void coffer_keyfile_end_rotation(struct coffer_keyfile *kf);
/* The store secret (COFFER_KEY_BYTES), never rotated, valid while kf lives:
 * audit pseudonyms and snapshot metadata keys derive from it. */
const unsigned char *coffer_keyfile_pseudonym_key(const struct coffer_keyfile *kf);
/* A key for one purpose derived from the store secret:
 * BLAKE2b-256(key = secret, "coffer-derive-v1" || label). out: secure memory. */
int coffer_keyfile_derive(const struct coffer_keyfile *kf, const char *label, unsigned char *out);

/* Wraps an account secret key under the newest epoch. */
int coffer_keyfile_wrap(const struct coffer_keyfile *kf, const unsigned char *acct_id,
                        const unsigned char *sk, uint64_t *epoch_r,
                        unsigned char wrapped_r[COFFER_WRAPPED_SK_BYTES]);
/* Unwraps into sk (secure memory of COFFER_SK_BYTES). COFFER_ESHREDDED-free:
 * a missing epoch is COFFER_EPERM ("key epoch N is not in the key file"),
 * a failed open COFFER_ECORRUPT. */
int coffer_keyfile_unwrap(const struct coffer_keyfile *kf, const unsigned char *acct_id,
                          uint64_t epoch, const unsigned char wrapped[COFFER_WRAPPED_SK_BYTES],
                          unsigned char *sk);

#endif
