/*
 * fixture.h: set-ups the unit tests share, built into every unit test with
 * tap.c. Each works in tap_tmpdir().
 */
#ifndef COFFER_TESTS_FIXTURE_H
#define COFFER_TESTS_FIXTURE_H

#include "engine/store.h"

/* Paths under tap_tmpdir() are short; 1024 bytes keep the tests' own
 * buffers built from them free of truncation. */
struct fixture_paths {
	char store[1024], key[1024], target[1024];
};

/*
 * A new store at DIR/store with its key file at DIR/coffer.key and, when
 * target is not NULL, snapshot_target = DIR/<target> in its coffer.conf;
 * opened into *st_r, its paths in *p_r (may be NULL). 0, or the error of the
 * step that failed.
 */
int fixture_store(const char *target, struct coffer_store **st_r, struct fixture_paths *p_r);

/* Delivers text to account name's INBOX through a file, as `coffer deliver`
 * reads stdin. 0 or the error. */
int fixture_deliver(struct coffer_store *st, const char *name, const char *text);

#endif
