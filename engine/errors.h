/*
 * errors.h: Coffer's one error convention.
 *
 * Every fallible function returns int: 0 on success, a negative COFFER_E*
 * code, or -errno. Codes say what happened to the caller, not which library
 * failed; adapters (index.c for LMDB, compress.c for zstd, crypto.c for
 * libsodium) translate their library's codes at their boundary.
 *
 * The detail travels with the error: the function that fails first records a
 * one-line, human message naming the module and object (account, folder, uid,
 * file) with coffer_err_set(). Callers that add context use
 * coffer_err_prefix(). The CLI prints coffer_errmsg() as it stands. The message
 * is thread-local and valid until the next coffer_err_set() in that thread.
 * It must never contain secrets or message content.
 */
#ifndef COFFER_ERRORS_H
#define COFFER_ERRORS_H

enum {
	COFFER_OK = 0,
	COFFER_EINVAL = -1000,      /* bad argument or malformed input */
	COFFER_ENOTFOUND = -1001,   /* no such account, folder, message, file */
	COFFER_EEXIST = -1002,      /* already exists */
	COFFER_ECORRUPT = -1003,    /* stored data fails a check (AEAD, size, format) */
	COFFER_ETEMP = -1004,       /* temporary: lock held, resource busy; retry later */
	COFFER_ENOSPACE = -1005,    /* disk or map full */
	COFFER_ESHREDDED = -1006,   /* the account was crypto-shredded */
	COFFER_EPERM = -1007,       /* key file unreadable or with unsafe mode, access denied */
	COFFER_ETERMINATED = -1008, /* the account is terminated */
	COFFER_ENOMEM = -1009,      /* allocation failed */
	COFFER_ECONFIG = -1010,     /* coffer.conf is malformed */
	COFFER_ELIMIT = -1011,      /* a documented limit was reached (size, count) */
	COFFER_EIO = -1012,         /* I/O error reading or writing */
	COFFER_ENOACCOUNT = -1013,  /* no such account */
	COFFER_EBADMSG = -1014,     /* input is not an acceptable message */
};

/* A static, human name for code (COFFER_E* or -errno). Never NULL. */
const char *coffer_strerror(int code);

/* The detail line recorded for the last failure in this thread; "" if none. */
const char *coffer_errmsg(void);

/* The code of the last coffer_err_set() in this thread. */
int coffer_errcode(void);

/* Record code with a printf-style detail; returns code, so callers can write
 * `return coffer_err_set(COFFER_EINVAL, "...")`. */
int coffer_err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepend context ("account alice: ") to the current detail; returns code. */
int coffer_err_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Map errno-style failures of a system call to a COFFER code: ENOSPC/EDQUOT to
 * COFFER_ENOSPACE, EACCES/EPERM to COFFER_EPERM, ENOENT to COFFER_ENOTFOUND,
 * EIO to COFFER_EIO, anything else to -err. */
int coffer_err_from_errno(int err);

/* Clear the thread's detail. */
void coffer_err_clear(void);

#endif
