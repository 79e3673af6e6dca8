/*
 * test-reserve.c: the store's space reserve (engine/reserve.h).
 *
 * init allocates STORE/reserve whole (st_blocks, not a sparse size);
 * release hands its blocks back once (1, then 0) and leaves an empty file
 * that counts as released; while released, coffer_reserve_check() refuses
 * (NOSPACE) what would eat into the space it gave back and accepts what
 * leaves it; fill takes it back only when the file system has room for it
 * plus min_free_after, and is a no-op once whole. A store without the file
 * keeps no reserve: nothing is missing and nothing is refused. The full-disk
 * behaviour itself is tests/integration/test-full-disk.sh.
 */
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/reserve.h"
#include "engine/store.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t blocks_bytes(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return UINT64_MAX;
	return (uint64_t)sb.st_blocks * 512;
}

int main(void)
{
	struct coffer_store *st = NULL;
	char store[4096], key[4096], res[4200];
	uint64_t free_bytes;
	int rc;

	if (coffer_crypto_init() < 0)
		return 1;
	snprintf(store, sizeof store, "%s/store", tap_tmpdir());
	snprintf(key, sizeof key, "%s/keys/coffer.key", tap_tmpdir());
	snprintf(res, sizeof res, "%s/" COFFER_RESERVE_NAME, store);
	rc = coffer_store_init(store, key, &st);
	ok(rc == 0, "init a store: %s", rc ? coffer_errmsg() : "ok");
	if (rc < 0)
		return tap_done();
	free_bytes = coffer_reserve_free_bytes(st);
	ok(free_bytes != UINT64_MAX, "free space is known (%llu bytes)",
	   (unsigned long long)free_bytes);
	if (free_bytes < 3 * (uint64_t)COFFER_RESERVE_BYTES) {
		tap_diag("too little free space here to test the reserve");
		coffer_store_close(&st);
		return tap_done();
	}
	ok(blocks_bytes(res) >= COFFER_RESERVE_BYTES, "init allocates the reserve (%llu bytes)",
	   (unsigned long long)blocks_bytes(res));
	ok(coffer_reserve_missing(st) == 0, "nothing is missing");
	ok(coffer_reserve_check(st, UINT64_MAX / 4) == 0, "a whole reserve refuses nothing");
	ok(coffer_reserve_fill(st, 0) == 0, "fill: a no-op when whole");

	ok(coffer_reserve_release(st) == 1, "release: space handed back");
	ok(blocks_bytes(res) == 0, "the file is left empty");
	ok(coffer_reserve_release(st) == 0, "release again: nothing to hand back");
	ok(coffer_reserve_missing(st) == COFFER_RESERVE_BYTES, "released: all of it is missing");
	ok(coffer_reserve_check(st, 0) == 0, "check: room left beyond the released reserve");
	rc = coffer_reserve_check(st, coffer_reserve_free_bytes(st));
	ok(rc == COFFER_ENOSPACE, "check: what would eat into it is NOSPACE (%s)", coffer_errmsg());

	ok(coffer_reserve_fill(st, UINT64_MAX / 4) == 0,
	   "fill: not without min_free_after to spare");
	ok(coffer_reserve_missing(st) == COFFER_RESERVE_BYTES, "still released");
	ok(coffer_reserve_fill(st, COFFER_RESERVE_BYTES) == 1, "fill: taken back when there is room");
	ok(coffer_reserve_missing(st) == 0 && blocks_bytes(res) >= COFFER_RESERVE_BYTES,
	   "whole again");

	ok(unlink(res) == 0, "remove the file");
	ok(coffer_reserve_missing(st) == 0, "no file: a store that keeps no reserve misses none");
	ok(coffer_reserve_check(st, UINT64_MAX / 4) == 0, "and refuses nothing");
	ok(coffer_reserve_release(st) == 0, "release without a file: nothing to hand back");
	coffer_store_close(&st);
	return tap_done();
}
