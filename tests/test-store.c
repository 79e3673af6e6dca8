/*
 * test-store.c: creating and opening stores (engine/store.h).
 *
 * init: the store directory is 0700 with coffer.conf, index/, blobs/ and
 * locks/; the key file is 0600 and outside it; coffer.conf records the key
 * file as an absolute path even when init got a relative one. init refuses
 * a non-empty directory, a file, an existing store and an existing key file
 * (EEXIST), leaving them untouched, and in the key-file case creates no store
 * directory; an existing empty directory is fine. A failed init leaves
 * nothing it made.
 *
 * open: a missing store or a directory without coffer.conf is ENOTFOUND, a
 * store open to group or others is EPERM; open never reads the key file.
 * The key file in force is the override, else the recorded path; a key file
 * of another store is EPERM. Also name MACs and blob paths.
 */
#include "engine/config.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/keyfile.h"
#include "engine/store.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[2048];

static char *PATH(const char *name)
{
	static char p[16][PATH_MAX + 256];
	static int i;

	i = (i + 1) % 16;
	snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
	return p[i];
}

static int mode_of(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return -1;
	return (int)(sb.st_mode & 07777);
}

static int exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

static char *slurp(const char *path, size_t *n_r)
{
	FILE *f = fopen(path, "rb");
	char *s = NULL;
	size_t n = 0, cap = 0, got;

	if (f == NULL)
		return NULL;
	do {
		if (cap - n < 4096) {
			cap = cap ? 2 * cap : 8192;
			s = realloc(s, cap + 1);
		}
		got = fread(s + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	s[n] = '\0';
	if (n_r)
		*n_r = n;
	return s;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	size_t n;
	char *s = slurp(from, &n);
	int fd, rc = -1;

	if (s == NULL)
		return -1;
	unlink(to);
	fd = open(to, O_WRONLY | O_CREAT | O_EXCL, mode);
	if (fd >= 0 && write(fd, s, n) == (ssize_t)n)
		rc = 0;
	if (fd >= 0) {
		fchmod(fd, mode);
		close(fd);
	}
	free(s);
	return rc;
}

static void system_rm_rf(const char *path)
{
	char cmd[PATH_MAX + 64];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	if (system(cmd) != 0)
		tap_diag("cannot remove %s", path);
}

static void test_init(void)
{
	struct coffer_store *st = NULL;
	struct coffer_keyfile *kf = NULL;
	struct coffer_config cfg;
	char *conf;
	int rc;

	rc = coffer_store_init(PATH("s1"), PATH("keys/s1.key"), &st);
	ok(rc == 0 && st != NULL, "init a store (key directory created on the way): %s",
	   rc ? coffer_errmsg() : "ok");
	if (st == NULL)
		return;
	ok(mode_of(PATH("s1")) == 0700, "the store directory is 0700 (%04o)", mode_of(PATH("s1")));
	ok(exists(PATH("s1/coffer.conf")), "coffer.conf exists");
	ok(exists(PATH("s1/index")) && exists(PATH("s1/index/data.mdb")), "the index exists");
	ok(exists(PATH("s1/blobs")) && exists(PATH("s1/locks")), "blobs/ and locks/ exist");
	ok(mode_of(PATH("keys/s1.key")) == 0600, "the key file is 0600 (%04o)",
	   mode_of(PATH("keys/s1.key")));
	ok(mode_of(PATH("keys")) == 0700, "a key directory made by init is 0700");
	ok(strcmp(coffer_store_path(st), PATH("s1")) == 0, "store path as given");
	ok(strcmp(coffer_store_key_file_path(st), PATH("keys/s1.key")) == 0,
	   "key file path in force: the one given");
	ok(coffer_store_index(st) != NULL && coffer_store_config(st) != NULL, "index and config");
	ok(coffer_store_keyfile(st, &kf) == 0 && kf != NULL &&
	       !memcmp(coffer_keyfile_store_id(kf), coffer_store_id(st), COFFER_ID_BYTES),
	   "the new key file belongs to the new store");

	conf = slurp(PATH("s1/coffer.conf"), NULL);
	ok(conf && !strstr(conf, "pseudonym") && !strstr(conf, "epoch") &&
	       !strstr(conf, "coffer-keyfile"),
	   "coffer.conf holds no key material");
	free(conf);
	coffer_config_defaults(&cfg);
	rc = coffer_config_load(&cfg, PATH("s1/coffer.conf"));
	ok(rc == 0 && cfg.key_file && strcmp(cfg.key_file, PATH("keys/s1.key")) == 0,
	   "coffer.conf records the key file path");
	coffer_config_free(&cfg);
	coffer_store_close(&st);
	ok(st == NULL, "close clears the handle");
	coffer_store_close(&st);
	coffer_store_close(NULL);

	/* relative key file path: recorded absolute */
	{
		char cwd[PATH_MAX], want[PATH_MAX + 32], real[PATH_MAX];

		ok(getcwd(cwd, sizeof cwd) != NULL && chdir(dir) == 0,
		   "chdir into the test directory");
		rc = coffer_store_init("rel-store", "relkeys/rel.key", &st);
		ok(rc == 0, "init with relative store and key file paths: %s",
		   rc ? coffer_errmsg() : "ok");
		if (realpath(dir, real) == NULL)
			real[0] = '\0';
		snprintf(want, sizeof want, "%s/relkeys/rel.key", real);
		ok(st && coffer_store_key_file_path(st)[0] == '/' &&
		       strcmp(coffer_store_key_file_path(st), want) == 0,
		   "the key file path in force is absolute: %s",
		   st ? coffer_store_key_file_path(st) : "-");
		coffer_config_defaults(&cfg);
		rc = coffer_config_load(&cfg, "rel-store/coffer.conf");
		ok(rc == 0 && cfg.key_file && strcmp(cfg.key_file, want) == 0,
		   "coffer.conf's key_file is absolute: %s",
		   cfg.key_file ? cfg.key_file : "(none)");
		coffer_config_free(&cfg);
		coffer_store_close(&st);

		/* a key file name without a directory */
		rc = coffer_store_init("rel-store2", "bare.key", &st);
		snprintf(want, sizeof want, "%s/bare.key", real);
		ok(rc == 0 && strcmp(coffer_store_key_file_path(st), want) == 0,
		   "a bare key file name is made absolute against the cwd");
		coffer_store_close(&st);
		ok(chdir(cwd) == 0, "back to the old cwd");
		/* and opening from elsewhere still finds the key file */
		rc = coffer_store_open(PATH("rel-store"), NULL, &st);
		ok(rc == 0 && coffer_store_keyfile(st, &kf) == 0,
		   "the relative-init store opens and finds its key file from another cwd");
		coffer_store_close(&st);
	}
}

static void test_refusals(void)
{
	struct coffer_store *st = NULL;
	char *before, *after;
	size_t nb, na;
	int rc;

	/* a non-empty directory */
	mkdir(PATH("full"), 0755);
	copy_file(PATH("s1/coffer.conf"), PATH("full/something"), 0644);
	rc = coffer_store_init(PATH("full"), PATH("keys/full.key"), &st);
	ok(rc == COFFER_EEXIST && st == NULL, "init into a non-empty directory is EEXIST");
	ok(strstr(coffer_errmsg(), PATH("full")) != NULL, "naming it: %s", coffer_errmsg());
	ok(!exists(PATH("keys/full.key")), "and no key file was created");
	ok(exists(PATH("full/something")) && !exists(PATH("full/coffer.conf")) &&
	       !exists(PATH("full/index")) && mode_of(PATH("full")) == 0755,
	   "the directory is untouched");

	/* a regular file */
	copy_file(PATH("s1/coffer.conf"), PATH("afile"), 0644);
	ok(coffer_store_init(PATH("afile"), PATH("keys/afile.key"), &st) == COFFER_EEXIST,
	   "init onto a regular file is EEXIST");
	ok(!exists(PATH("keys/afile.key")), "no key file");

	/* an existing store.
	 * BUG: coffer_store_init() (engine/store.c) jumps to its failure path for
	 * this refusal, and init_cleanup() then unlinks the EXISTING store's
	 * coffer.conf, index/data.mdb and index/lock.mdb and rmdirs its empty
	 * index/, blobs/ and locks/: `coffer init` run twice destroys the first
	 * store's index. Refusals made before init has created anything must
	 * return without cleanup. Tried on a store of its own so that the rest of
	 * this test does not depend on the outcome. */
	ok(coffer_store_init(PATH("victim"), PATH("keys/victim.key"), &st) == 0,
	   "a store to refuse");
	coffer_store_close(&st);
	before = slurp(PATH("victim/coffer.conf"), &nb);
	rc = coffer_store_init(PATH("victim"), PATH("keys/again.key"), &st);
	ok(rc == COFFER_EEXIST && st == NULL, "init over an existing store is EEXIST");
	ok(strstr(coffer_errmsg(), PATH("victim")) != NULL, "naming it: %s", coffer_errmsg());
	ok(!exists(PATH("keys/again.key")), "and no key file is made");
	after = slurp(PATH("victim/coffer.conf"), &na);
	ok(before && after && na == nb && !memcmp(before, after, nb),
	   "the existing store's coffer.conf is untouched");
	ok(exists(PATH("victim/index/data.mdb")) && exists(PATH("victim/blobs")) &&
	       exists(PATH("victim/locks")),
	   "its index, blobs/ and locks/ are still there");
	free(before);
	free(after);
	rc = coffer_store_open(PATH("victim"), NULL, &st);
	ok(rc == 0, "and the store still opens: %s", rc ? coffer_errmsg() : "ok");
	coffer_store_close(&st);
	/* the same refusal with the store's own key file path */
	rc = coffer_store_init(PATH("s1"), PATH("keys/s1.key"), &st);
	ok(rc == COFFER_EEXIST, "init of s1 again with its own key file: EEXIST");
	ok(exists(PATH("s1/coffer.conf")) && exists(PATH("s1/index/data.mdb")),
	   "s1's coffer.conf and index survive (same BUG as above)");
	if (!exists(PATH("s1/coffer.conf"))) {
		/* let the later tests run on a fresh s1 */
		system_rm_rf(PATH("s1"));
		unlink(PATH("keys/s1.key"));
		coffer_store_init(PATH("s1"), PATH("keys/s1.key"), &st);
		coffer_store_close(&st);
	}

	/* an existing key file */
	before = slurp(PATH("keys/s1.key"), &nb);
	rc = coffer_store_init(PATH("s-new"), PATH("keys/s1.key"), &st);
	ok(rc == COFFER_EEXIST && st == NULL, "init with an existing key file is EEXIST");
	ok(strstr(coffer_errmsg(), PATH("keys/s1.key")) != NULL, "naming the key file: %s",
	   coffer_errmsg());
	ok(!exists(PATH("s-new")), "and creates no store directory");
	after = slurp(PATH("keys/s1.key"), &na);
	ok(before && after && na == nb && !memcmp(before, after, nb) &&
	       mode_of(PATH("keys/s1.key")) == 0600,
	   "the existing key file is untouched");
	free(before);
	free(after);

	/* an existing key file, store dir an existing empty dir: left empty */
	mkdir(PATH("empty-kept"), 0700);
	ok(coffer_store_init(PATH("empty-kept"), PATH("keys/s1.key"), &st) == COFFER_EEXIST &&
	       exists(PATH("empty-kept")) && !exists(PATH("empty-kept/index")) &&
	       !exists(PATH("empty-kept/blobs")),
	   "existing key file + empty store dir: EEXIST, the dir stays empty");

	/* an existing empty directory is accepted and made 0700 */
	mkdir(PATH("empty"), 0755);
	chmod(PATH("empty"), 0755);
	rc = coffer_store_init(PATH("empty"), PATH("keys/empty.key"), &st);
	ok(rc == 0, "init into an existing empty directory works: %s", rc ? coffer_errmsg() : "ok");
	ok(mode_of(PATH("empty")) == 0700, "and makes it 0700 (%04o)", mode_of(PATH("empty")));
	coffer_store_close(&st);
	ok(coffer_store_open(PATH("empty"), NULL, &st) == 0, "it opens");
	coffer_store_close(&st);

	/* a failed init leaves nothing behind */
	rc = coffer_store_init(PATH("no/such/parent/store"), PATH("keys/orphan.key"), &st);
	ok(rc < 0 && st == NULL, "init under a missing parent directory fails (%d)", rc);
	ok(!exists(PATH("keys/orphan.key")), "and removes the key file it had created");
	ok(!exists(PATH("no")), "and makes no directories");
}

static void test_open(void)
{
	struct coffer_store *st = (struct coffer_store *)1, *st2 = NULL, *other = NULL;
	struct coffer_keyfile *kf = NULL;
	unsigned char id1[COFFER_ID_BYTES];
	int rc;

	ok(coffer_store_open(PATH("missing"), NULL, &st) == COFFER_ENOTFOUND && st == NULL,
	   "open of a missing store is ENOTFOUND");
	ok(strstr(coffer_errmsg(), PATH("missing")) != NULL, "naming it: %s", coffer_errmsg());
	mkdir(PATH("hollow"), 0700);
	ok(coffer_store_open(PATH("hollow"), NULL, &st) == COFFER_ENOTFOUND,
	   "open of a directory without coffer.conf is ENOTFOUND");
	ok(coffer_store_open(PATH("afile"), NULL, &st) == COFFER_ENOTFOUND,
	   "open of a regular file is ENOTFOUND");

	ok(coffer_store_open(PATH("s1"), NULL, &st) == 0, "open s1");
	memcpy(id1, coffer_store_id(st), sizeof id1);
	ok(strcmp(coffer_store_key_file_path(st), PATH("keys/s1.key")) == 0,
	   "without an override the recorded key file is in force");
	ok(coffer_store_keyfile(st, &kf) == 0, "and loads");
	coffer_store_close(&st);

	/* modes */
	chmod(PATH("s1"), 0755);
	ok(coffer_store_open(PATH("s1"), NULL, &st) == COFFER_EPERM && st == NULL,
	   "a store of mode 0755 is refused with EPERM");
	ok(strstr(coffer_errmsg(), PATH("s1")) != NULL, "naming it: %s", coffer_errmsg());
	chmod(PATH("s1"), 0750);
	ok(coffer_store_open(PATH("s1"), NULL, &st) == COFFER_EPERM, "mode 0750: EPERM");
	chmod(PATH("s1"), 0701);
	ok(coffer_store_open(PATH("s1"), NULL, &st) == COFFER_EPERM, "mode 0701: EPERM");
	chmod(PATH("s1"), 0700);
	ok(coffer_store_open(PATH("s1"), NULL, &st) == 0, "mode 0700: opens");
	coffer_store_close(&st);

	/* open never reads the key file */
	rename(PATH("keys/s1.key"), PATH("keys/s1.key.away"));
	rc = coffer_store_open(PATH("s1"), NULL, &st);
	ok(rc == 0, "open works while the key file is missing");
	ok(st && coffer_store_keyfile(st, &kf) == COFFER_ENOTFOUND,
	   "then asking for the key file is ENOTFOUND");
	ok(strstr(coffer_errmsg(), PATH("keys/s1.key")) != NULL, "naming it: %s", coffer_errmsg());
	coffer_store_close(&st);

	/* override */
	ok(copy_file(PATH("keys/s1.key.away"), PATH("elsewhere.key"), 0600) == 0,
	   "copy the key file");
	rc = coffer_store_open(PATH("s1"), PATH("elsewhere.key"), &st);
	ok(rc == 0 && strcmp(coffer_store_key_file_path(st), PATH("elsewhere.key")) == 0,
	   "an override replaces the recorded path");
	ok(coffer_store_keyfile(st, &kf) == 0, "and is the one loaded");
	{
		struct coffer_keyfile *kf2 = NULL;

		ok(coffer_store_keyfile(st, &kf2) == 0 && kf2 == kf, "the key file is loaded once");
	}
	coffer_store_close(&st);
	rename(PATH("keys/s1.key.away"), PATH("keys/s1.key"));
	rc = coffer_store_open(PATH("s1"), PATH("does-not-exist.key"), &st);
	ok(rc == 0 && coffer_store_keyfile(st, &kf) == COFFER_ENOTFOUND,
	   "an override to a missing file: open works, the key file is ENOTFOUND");
	coffer_store_close(&st);

	/* an unsafe key file */
	chmod(PATH("elsewhere.key"), 0644);
	coffer_store_open(PATH("s1"), PATH("elsewhere.key"), &st);
	ok(st && coffer_store_keyfile(st, &kf) == COFFER_EPERM, "a world-readable key file: EPERM");
	ok(strstr(coffer_errmsg(), PATH("elsewhere.key")) != NULL, "naming it: %s",
	   coffer_errmsg());
	coffer_store_close(&st);

	/* another store's key file */
	ok(coffer_store_init(PATH("s2"), PATH("keys/s2.key"), &other) == 0, "a second store");
	ok(memcmp(coffer_store_id(other), id1, sizeof id1) != 0, "with another store id");
	coffer_store_close(&other);
	rc = coffer_store_open(PATH("s1"), PATH("keys/s2.key"), &st);
	ok(rc == 0 && coffer_store_keyfile(st, &kf) == COFFER_EPERM,
	   "s1 with s2's key file: EPERM on coffer_store_keyfile");
	ok(strstr(coffer_errmsg(), "another store") != NULL &&
	       strstr(coffer_errmsg(), PATH("keys/s2.key")) != NULL,
	   "naming the key file: %s", coffer_errmsg());
	ok(coffer_store_keyfile(st, &kf) == COFFER_EPERM, "and stays refused on a second call");
	coffer_store_close(&st);

	/* two handles on one store in one process are not allowed by LMDB, so
	 * the store id is compared across an open/close */
	ok(coffer_store_open(PATH("s1"), NULL, &st2) == 0 &&
	       memcmp(coffer_store_id(st2), id1, sizeof id1) == 0,
	   "reopening gives the same store id");
	coffer_store_close(&st2);
}

static void test_names_paths(void)
{
	struct coffer_store *a = NULL, *b = NULL;
	unsigned char m1[COFFER_MAC_BYTES], m2[COFFER_MAC_BYTES], m3[COFFER_MAC_BYTES];
	unsigned char acct[COFFER_ID_BYTES], blob[COFFER_ID_BYTES];
	struct coffer_buf p = COFFER_BUF_INIT;
	char want[PATH_MAX];

	coffer_store_open(PATH("s1"), NULL, &a);
	if (a == NULL) {
		ok(0, "open s1");
		return;
	}
	ok(coffer_store_name_mac(a, "acct", "x@y.example", 11, NULL, 0, m1) == 0 &&
	       coffer_store_name_mac(a, "acct", "x@y.example", 11, NULL, 0, m2) == 0 &&
	       !memcmp(m1, m2, sizeof m1),
	   "name MAC is deterministic");
	coffer_store_name_mac(a, "fold", "x@y.example", 11, NULL, 0, m2);
	ok(memcmp(m1, m2, sizeof m1) != 0, "the label separates domains");
	coffer_store_name_mac(a, "acct", "x@y.exampl", 10, NULL, 0, m2);
	ok(memcmp(m1, m2, sizeof m1) != 0, "different names, different MACs");
	coffer_store_name_mac(a, "mnam", "ab", 2, "c", 1, m2);
	coffer_store_name_mac(a, "mnam", "a", 1, "bc", 2, m3);
	ok(memcmp(m2, m3, sizeof m2) != 0, "(ab, c) and (a, bc) differ: unambiguous concatenation");
	coffer_store_close(&a);
	coffer_store_open(PATH("s2"), NULL, &b);
	coffer_store_name_mac(b, "acct", "x@y.example", 11, NULL, 0, m2);
	ok(memcmp(m1, m2, sizeof m1) != 0, "another store (index key) gives another MAC");

	for (int i = 0; i < COFFER_ID_BYTES; i++) {
		acct[i] = (unsigned char)(0xa0 + i);
		blob[i] = (unsigned char)(0x3c + i);
	}
	ok(coffer_store_account_dir(b, acct, &p) == 0, "account dir");
	snprintf(want, sizeof want, "%s/blobs/a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", PATH("s2"));
	ok(strcmp(coffer_buf_str(&p), want) == 0, "account dir: STORE/blobs/<acct hex>");
	coffer_store_blob_dir(b, acct, blob, &p);
	snprintf(want, sizeof want, "%s/blobs/a0a1a2a3a4a5a6a7a8a9aaabacadaeaf/3c", PATH("s2"));
	ok(strcmp(coffer_buf_str(&p), want) == 0, "blob dir: .../<first two hex of the blob id>");
	coffer_store_blob_path(b, acct, blob, &p);
	snprintf(want, sizeof want,
	         "%s/blobs/a0a1a2a3a4a5a6a7a8a9aaabacadaeaf/3c/3c3d3e3f404142434445464748494a4b",
	         PATH("s2"));
	ok(strcmp(coffer_buf_str(&p), want) == 0, "blob path: .../<xx>/<blob hex>");
	coffer_buf_puts(&p, "junk");
	coffer_store_blob_path(b, acct, blob, &p);
	ok(strcmp(coffer_buf_str(&p), want) == 0, "the path functions reset their output first");
	coffer_buf_free(&p);
	coffer_store_close(&b);
}

int main(void)
{
	if (coffer_crypto_init() < 0)
		return 99;
	snprintf(dir, sizeof dir, "%s", tap_tmpdir());
	test_init();
	test_refusals();
	test_open();
	test_names_paths();
	return tap_done();
}
