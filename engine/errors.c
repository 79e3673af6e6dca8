/*
 * errors.c: error names and the thread-local detail line.
 *
 * The detail is a fixed 1 KiB thread-local buffer: an error line is bounded
 * by nature, and an error path must not allocate. Longer details are cut.
 */
#include "errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERRMSG_MAX 1024

static _Thread_local char errmsg[ERRMSG_MAX];
static _Thread_local int errcode;

const char *coffer_strerror(int code)
{
	switch (code) {
	case COFFER_OK: return "success";
	case COFFER_EINVAL: return "invalid input";
	case COFFER_ENOTFOUND: return "not found";
	case COFFER_EEXIST: return "already exists";
	case COFFER_ECORRUPT: return "damaged data";
	case COFFER_ETEMP: return "temporary failure";
	case COFFER_ENOSPACE: return "no space left";
	case COFFER_ESHREDDED: return "account was shredded";
	case COFFER_EPERM: return "permission denied";
	case COFFER_ETERMINATED: return "account is terminated";
	case COFFER_ENOMEM: return "out of memory";
	case COFFER_ECONFIG: return "configuration error";
	case COFFER_ELIMIT: return "limit reached";
	case COFFER_EIO: return "I/O error";
	case COFFER_ENOACCOUNT: return "no such account";
	case COFFER_EBADMSG: return "malformed message";
	}
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown error";
}

const char *coffer_errmsg(void)
{
	return errmsg;
}

int coffer_errcode(void)
{
	return errcode;
}

int coffer_err_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof errmsg, fmt, ap);
	va_end(ap);
	errcode = code;
	return code;
}

int coffer_err_prefix(int code, const char *fmt, ...)
{
	char old[ERRMSG_MAX];
	size_t n;
	va_list ap;

	memcpy(old, errmsg, sizeof old);
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof errmsg, fmt, ap);
	va_end(ap);
	n = strlen(errmsg);
	if (n < sizeof errmsg)
		snprintf(errmsg + n, sizeof errmsg - n, "%s", old);
	errcode = code;
	return code;
}

int coffer_err_from_errno(int err)
{
	switch (err) {
	case ENOSPC:
	case EDQUOT: return COFFER_ENOSPACE;
	case EACCES:
	case EPERM: return COFFER_EPERM;
	case ENOENT: return COFFER_ENOTFOUND;
	case EIO: return COFFER_EIO;
	case ENOMEM: return COFFER_ENOMEM;
	}
	return -err;
}

void coffer_err_clear(void)
{
	errmsg[0] = '\0';
	errcode = 0;
}
