/*
 * test-errors.c: error names, the thread-local detail line, errno mapping
 * (engine/errors.h).
 */
#include "engine/errors.h"
#include "tap.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int codes[] = {
	COFFER_EINVAL,   COFFER_ENOTFOUND, COFFER_EEXIST, COFFER_ECORRUPT,    COFFER_ETEMP,
	COFFER_ENOSPACE, COFFER_ESHREDDED, COFFER_EPERM,  COFFER_ETERMINATED, COFFER_ENOMEM,
	COFFER_ECONFIG,  COFFER_ELIMIT,    COFFER_EIO,    COFFER_ENOACCOUNT,  COFFER_EBADMSG,
};
#define NCODES (sizeof codes / sizeof codes[0])

static void *thread_main(void *arg)
{
	int *seen = arg;

	/* a new thread starts with no detail and sets its own */
	seen[0] = strcmp(coffer_errmsg(), "") == 0 && coffer_errcode() == 0;
	coffer_err_set(COFFER_ETEMP, "from the thread");
	seen[1] = strcmp(coffer_errmsg(), "from the thread") == 0;
	return NULL;
}

static void test_names(void)
{
	int unnamed = 0, dup = 0, contiguous = 1;

	ok(strcmp(coffer_strerror(COFFER_OK), "success") == 0, "0 is \"success\"");
	for (size_t i = 0; i < NCODES; i++) {
		const char *s = coffer_strerror(codes[i]);

		if (s == NULL || *s == '\0' || strcmp(s, "unknown error") == 0 ||
		    strncmp(s, "Unknown error", 13) == 0) {
			tap_diag("code %d has no name", codes[i]);
			unnamed++;
		}
		for (size_t j = 0; j < i; j++)
			if (s && strcmp(s, coffer_strerror(codes[j])) == 0)
				dup++;
		if (codes[i] != COFFER_EINVAL - (int)i)
			contiguous = 0;
	}
	ok(unnamed == 0, "every COFFER_E* code has its own name (%d unnamed)", unnamed);
	ok(dup == 0, "no two codes share a name");
	ok(contiguous, "codes run from -1000 down without gaps (this list is complete)");
	ok(strcmp(coffer_strerror(-ENOENT), strerror(ENOENT)) == 0 &&
	       strcmp(coffer_strerror(-EACCES), strerror(EACCES)) == 0,
	   "-errno is named by strerror");
	ok(strcmp(coffer_strerror(1), "unknown error") == 0, "a positive code is unknown");
	ok(strcmp(coffer_strerror(-100000), "unknown error") == 0,
	   "a huge negative code is unknown");
	ok(strcmp(coffer_strerror(INT32_MIN), "unknown error") == 0,
	   "INT_MIN is unknown, no crash");
	ok(coffer_strerror(COFFER_EBADMSG - 1) != NULL, "the code past the last is still a string");
}

static void test_detail(void)
{
	pthread_t th;
	int seen[2] = { 0, 0 };

	coffer_err_clear();
	ok(strcmp(coffer_errmsg(), "") == 0 && coffer_errcode() == 0,
	   "clear: empty detail, code 0");
	ok(coffer_err_set(COFFER_ENOTFOUND, "account %s uid %u", "a@b.example", 7u) ==
	       COFFER_ENOTFOUND,
	   "err_set returns its code");
	ok(strcmp(coffer_errmsg(), "account a@b.example uid 7") == 0, "err_set formats the detail");
	ok(coffer_errcode() == COFFER_ENOTFOUND, "err_set records the code");
	ok(coffer_err_prefix(COFFER_ECORRUPT, "store %s: ", "/s") == COFFER_ECORRUPT,
	   "err_prefix returns its code");
	ok(strcmp(coffer_errmsg(), "store /s: account a@b.example uid 7") == 0,
	   "err_prefix prepends to the detail");
	ok(coffer_errcode() == COFFER_ECORRUPT, "err_prefix records its (new) code");
	coffer_err_prefix(COFFER_ECORRUPT, "%s", "");
	ok(strcmp(coffer_errmsg(), "store /s: account a@b.example uid 7") == 0,
	   "an empty prefix changes nothing");
	coffer_err_clear();
	coffer_err_prefix(COFFER_EIO, "ctx: ");
	ok(strcmp(coffer_errmsg(), "ctx: ") == 0 && coffer_errcode() == COFFER_EIO,
	   "prefix of an empty detail");
	coffer_err_set(COFFER_EINVAL, "%d%%", 50);
	ok(strcmp(coffer_errmsg(), "50%") == 0, "printf escapes work");
	coffer_err_set(COFFER_EINVAL, "%s", "second");
	ok(strcmp(coffer_errmsg(), "second") == 0, "a later set replaces the detail");

	/* thread-local */
	coffer_err_set(COFFER_EPERM, "main thread");
	ok(pthread_create(&th, NULL, thread_main, seen) == 0 && pthread_join(th, NULL) == 0,
	   "a second thread ran");
	ok(seen[0], "a new thread starts with an empty detail");
	ok(seen[1], "and sets its own");
	ok(strcmp(coffer_errmsg(), "main thread") == 0 && coffer_errcode() == COFFER_EPERM,
	   "the main thread's detail is untouched");
}

static void test_long(void)
{
	size_t big = 5000;
	char *s = malloc(big + 1), *p = malloc(3000);
	size_t n;

	memset(s, 'a', big);
	s[big] = '\0';
	for (size_t i = 0; i < big; i += 10)
		s[i] = (char)('0' + (i / 10) % 10);
	coffer_err_set(COFFER_EINVAL, "%s", s);
	n = strlen(coffer_errmsg());
	ok(n > 0 && n < 1024, "a 5000-byte detail is cut below 1 KiB (%zu)", n);
	ok(memcmp(coffer_errmsg(), s, n) == 0, "the cut detail is a prefix of the original");

	/* prefix onto a full detail: the result is bounded and starts with the prefix */
	coffer_err_prefix(COFFER_EIO, "prefix: ");
	n = strlen(coffer_errmsg());
	ok(n < 1024 && strncmp(coffer_errmsg(), "prefix: ", 8) == 0 &&
	       memcmp(coffer_errmsg() + 8, s, n - 8) == 0,
	   "prefix onto a full detail keeps the prefix and cuts the tail (%zu)", n);

	/* a prefix that is itself longer than the buffer */
	memset(p, 'p', 2999);
	p[2999] = '\0';
	coffer_err_set(COFFER_EINVAL, "short");
	coffer_err_prefix(COFFER_EIO, "%s", p);
	n = strlen(coffer_errmsg());
	ok(n < 1024 && strspn(coffer_errmsg(), "p") == n,
	   "a prefix longer than the buffer is cut, and nothing overflows");
	ok(coffer_errcode() == COFFER_EIO, "the code is still recorded");

	/* repeated prefixes never grow past the bound */
	coffer_err_set(COFFER_EINVAL, "base");
	for (int i = 0; i < 200; i++)
		coffer_err_prefix(COFFER_EINVAL, "level %d: ", i);
	n = strlen(coffer_errmsg());
	ok(n < 1024 && strncmp(coffer_errmsg(), "level 199: level 198: ", 22) == 0,
	   "200 nested prefixes stay bounded, newest first");
	free(s);
	free(p);
}

static void test_errno(void)
{
	ok(coffer_err_from_errno(ENOSPC) == COFFER_ENOSPACE, "ENOSPC -> ENOSPACE");
	ok(coffer_err_from_errno(EDQUOT) == COFFER_ENOSPACE, "EDQUOT -> ENOSPACE");
	ok(coffer_err_from_errno(EACCES) == COFFER_EPERM, "EACCES -> EPERM");
	ok(coffer_err_from_errno(EPERM) == COFFER_EPERM, "EPERM -> EPERM");
	ok(coffer_err_from_errno(ENOENT) == COFFER_ENOTFOUND, "ENOENT -> ENOTFOUND");
	ok(coffer_err_from_errno(EIO) == COFFER_EIO, "EIO -> EIO");
	/* errors.h documents "anything else to -err", errors.c maps ENOMEM to
	 * COFFER_ENOMEM: both mean out of memory, accept either. */
	ok(coffer_err_from_errno(ENOMEM) == COFFER_ENOMEM ||
	       coffer_err_from_errno(ENOMEM) == -ENOMEM,
	   "ENOMEM -> an out-of-memory code");
	ok(coffer_err_from_errno(EINVAL) == -EINVAL, "EINVAL -> -EINVAL");
	ok(coffer_err_from_errno(EBUSY) == -EBUSY, "EBUSY -> -EBUSY");
	ok(coffer_err_from_errno(ELOOP) == -ELOOP, "ELOOP -> -ELOOP");
	ok(strcmp(coffer_strerror(coffer_err_from_errno(EXDEV)), strerror(EXDEV)) == 0,
	   "an unmapped errno keeps its strerror name");
}

int main(void)
{
	test_names();
	test_detail();
	test_long();
	test_errno();
	return tap_done();
}
