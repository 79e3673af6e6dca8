/*
 * fuzz-mount-path.c: libFuzzer target for maildir/mount-path.c: paths the
 * kernel hands the mount daemon (any local user's open/rename/link names).
 * Checks the parse contract: no component "", "." or "..", no NUL, the
 * pieces point inside the input.
 */
#include "engine/errors.h"
#include "maildir/mount.h"
#include "fuzz-util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void inside(const char *p, size_t n, const char *s, size_t len)
{
	if (p == NULL)
		return;
	if (p < s || p + n > s + len)
		abort();
	if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
		abort();
	if (memchr(p, '/', n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coffer_mount_path mp;
	struct coffer_buf out = COFFER_BUF_INIT;
	char *z = fuzz_cstr(data, size);
	size_t len = strlen(z);

	if (coffer_mount_path_parse(z, &mp) == 0) {
		inside(mp.acct, mp.acct_n, z, len);
		inside(mp.dir, mp.dir_n, z, len);
	}
	coffer_mount_message_name(&out, z, len, size & 1, (uint8_t)(size ? data[0] : 0), 0);
	coffer_buf_free(&out);
	free(z);
	return 0;
}
