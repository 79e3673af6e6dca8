/*
 * test-keyfile.c: the key file (engine/keyfile.h).
 *
 * Generation, creation (mode 0600 whatever the umask; an existing file is
 * refused with EEXIST and left byte for byte as it was, with no temporary
 * left behind), loading (missing: ENOTFOUND; group- or world-accessible:
 * EPERM naming the file, decided before the contents are looked at),
 * replacement, wrapping and unwrapping of account keys (bound to the account
 * id, the epoch and the key file), rotation (begin, wrap under the new
 * epoch, end: the old epoch is gone and what it wrapped no longer opens),
 * and the parser's strictness on malformed text: every truncation, bad hex,
 * wrong magic, three epochs, epochs out of order, NUL bytes. The rendered
 * text holds only the documented fields.
 */
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/keyfile.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[4096];

static char *path_of(const char *name)
{
	static char p[8][4200];
	static int i;

	i = (i + 1) % 8;
	snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
	return p[i];
}

static char *slurp(const char *path, size_t *n_r)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = malloc((size_t)n + 1);
	if (fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	} else {
		s[n] = '\0';
	}
	fclose(f);
	if (n_r)
		*n_r = (size_t)n;
	return s;
}

static void spit(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, p, n) != (ssize_t)n)
		tap_diag("cannot write %s: %s", path, strerror(errno));
	fchmod(fd, mode);
	close(fd);
}

/* Entries in dir whose name contains ".tmp." (a leftover temporary). */
static int temporaries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".tmp.") != NULL)
			n++;
	closedir(d);
	return n;
}

static int is_hex(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

/* Every line is a comment, the magic, or one of the three documented
 * fields with the documented lengths. Returns the number of epoch lines,
 * or -1 on anything else. */
static int documented_only(const char *text, size_t n, const unsigned char *store_id)
{
	char store_hex[2 * COFFER_ID_BYTES + 1];
	int epochs = 0, magic = 0, store = 0, pseudo = 0;
	size_t pos = 0;

	coffer_hex(store_hex, store_id, COFFER_ID_BYTES);
	while (pos < n) {
		const char *l = text + pos, *nl = memchr(l, '\n', n - pos);
		size_t len;

		if (nl == NULL)
			return -1; /* the file ends with a newline */
		len = (size_t)(nl - l);
		pos += len + 1;
		if (memchr(l, '\0', len))
			return -1;
		if (len > 0 && l[0] == '#')
			continue;
		if (len == 16 && !memcmp(l, "coffer-keyfile 1", 16) && !magic && !store)
			magic++;
		else if (len == 6 + 32 && !memcmp(l, "store ", 6) &&
		         !memcmp(l + 6, store_hex, 32) && magic)
			store++;
		else if (len > 6 + 1 + 64 && !memcmp(l, "epoch ", 6) && l[len - 65] == ' ' &&
		         is_hex(l + len - 64, 64) && strspn(l + 6, "0123456789") == len - 6 - 65)
			epochs++;
		else if (len == 10 + 64 && !memcmp(l, "pseudonym ", 10) && is_hex(l + 10, 64))
			pseudo++;
		else
			return -1;
	}
	return magic == 1 && store == 1 && pseudo == 1 ? epochs : -1;
}

static int parse_text(const char *t, size_t n)
{
	struct coffer_keyfile *kf = (struct coffer_keyfile *)1;
	int rc = coffer_keyfile_parse("test.key", t, n, &kf);

	if (rc == 0 && kf == NULL)
		return -12345;
	if (rc < 0 && kf != NULL)
		return -12346; /* must not hand back anything on failure */
	coffer_keyfile_free(&kf);
	return rc;
}

static void test_generate_create_load(void)
{
	unsigned char sid[COFFER_ID_BYTES], sid2[COFFER_ID_BYTES];
	struct coffer_keyfile *kf = NULL, *kf2 = NULL, *loaded = NULL;
	struct stat sb;
	char *before, *after, *text;
	size_t nb, na, n;
	mode_t old_umask;
	int rc;

	coffer_random(sid, sizeof sid);
	coffer_random(sid2, sizeof sid2);
	ok(coffer_keyfile_generate(sid, &kf) == 0 && kf != NULL, "generate");
	ok(!memcmp(coffer_keyfile_store_id(kf), sid, sizeof sid), "bound to the store id");
	ok(coffer_keyfile_epoch(kf) == 1 && !coffer_keyfile_rotating(kf), "epoch 1, not rotating");
	ok(coffer_keyfile_generate(sid, &kf2) == 0, "generate a second one for the same store");
	ok(!coffer_ct_equal(coffer_keyfile_pseudonym_key(kf), coffer_keyfile_pseudonym_key(kf2),
	                    COFFER_KEY_BYTES),
	   "pseudonym keys are random");

	old_umask = umask(0);
	ok(coffer_keyfile_create(path_of("a.key"), kf) == 0, "create a.key (umask 0)");
	umask(old_umask);
	memset(&sb, 0, sizeof sb);
	rc = stat(path_of("a.key"), &sb); /* before ok(): argument order is unspecified */
	ok(rc == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 07777) == 0600,
	   "the key file is mode 0600 whatever the umask (%04o)", (unsigned)(sb.st_mode & 07777));
	ok(temporaries() == 0, "no temporary file is left behind");

	before = slurp(path_of("a.key"), &nb);
	ok(coffer_keyfile_create(path_of("a.key"), kf2) == COFFER_EEXIST,
	   "create over an existing key file is EEXIST");
	ok(strstr(coffer_errmsg(), path_of("a.key")) != NULL, "and the detail names it: %s",
	   coffer_errmsg());
	after = slurp(path_of("a.key"), &na);
	ok(before && after && nb == na && !memcmp(before, after, nb),
	   "the existing key file is untouched");
	ok(stat(path_of("a.key"), &sb) == 0 && (sb.st_mode & 07777) == 0600, "and keeps its mode");
	ok(temporaries() == 0, "no temporary left after the refusal");
	free(after);

	/* a file that is not a key file is never overwritten either */
	spit(path_of("other"), "precious", 8, 0644);
	ok(coffer_keyfile_create(path_of("other"), kf) == COFFER_EEXIST,
	   "any existing file: EEXIST");
	after = slurp(path_of("other"), &na);
	ok(after && na == 8 && !memcmp(after, "precious", 8), "and it is untouched");
	free(after);

	ok(coffer_keyfile_create(path_of("no/such/dir/k.key"), kf) < 0,
	   "create in a missing directory fails");

	ok(documented_only(before, nb, sid) == 1,
	   "the file holds only comments, the magic, store, one epoch and pseudonym");
	{
		char hex[2 * COFFER_KEY_BYTES + 1];

		coffer_hex(hex, coffer_keyfile_pseudonym_key(kf), COFFER_KEY_BYTES);
		ok(strstr(before, hex) != NULL, "the pseudonym line holds the pseudonym key");
	}
	free(before);

	ok(coffer_keyfile_load(path_of("a.key"), &loaded) == 0 && loaded != NULL, "load");
	ok(loaded && !memcmp(coffer_keyfile_store_id(loaded), sid, sizeof sid) &&
	       coffer_keyfile_epoch(loaded) == 1 && !coffer_keyfile_rotating(loaded) &&
	       coffer_ct_equal(coffer_keyfile_pseudonym_key(loaded),
	                       coffer_keyfile_pseudonym_key(kf), COFFER_KEY_BYTES),
	   "loaded: same store id, epoch, pseudonym key");
	{
		unsigned char acct[COFFER_ID_BYTES], wrapped[COFFER_WRAPPED_SK_BYTES];
		unsigned char *sk = coffer_secure_alloc(COFFER_SK_BYTES);
		unsigned char *out = coffer_secure_alloc(COFFER_SK_BYTES);
		uint64_t e = 0;

		coffer_random(acct, sizeof acct);
		coffer_random(sk, COFFER_SK_BYTES);
		ok(coffer_keyfile_wrap(kf, acct, sk, &e, wrapped) == 0 && e == 1,
		   "wrap (generated)");
		ok(loaded && coffer_keyfile_unwrap(loaded, acct, e, wrapped, out) == 0 &&
		       coffer_ct_equal(sk, out, COFFER_SK_BYTES),
		   "unwrap with the loaded copy: same master");
		ok(coffer_keyfile_unwrap(kf2, acct, e, wrapped, out) == COFFER_ECORRUPT,
		   "another key file of the same store cannot unwrap it (ECORRUPT)");
		coffer_secure_free(sk);
		coffer_secure_free(out);
	}
	coffer_keyfile_free(&loaded);
	ok(loaded == NULL, "free clears the handle");
	coffer_keyfile_free(&loaded);
	coffer_keyfile_free(NULL);
	ok(1, "free accepts NULL and a NULL handle");

	/* missing */
	loaded = (struct coffer_keyfile *)1;
	ok(coffer_keyfile_load(path_of("missing.key"), &loaded) == COFFER_ENOTFOUND &&
	       loaded == NULL,
	   "a missing key file is ENOTFOUND");
	ok(strstr(coffer_errmsg(), path_of("missing.key")) != NULL, "naming it: %s",
	   coffer_errmsg());

	/* modes: group or others may not have any access; stricter than 0600 is fine */
	{
		static const mode_t bad[] = { 0640, 0604, 0644, 0660, 0666,
			                      0610, 0601, 0620, 0602, 0777 };
		static const mode_t good[] = { 0600, 0400, 0200 };

		text = slurp(path_of("a.key"), &n);
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			spit(path_of("m.key"), text, n, bad[i]);
			ok(coffer_keyfile_load(path_of("m.key"), &loaded) == COFFER_EPERM &&
			       loaded == NULL,
			   "mode %04o is refused with EPERM", (unsigned)bad[i]);
			ok(strstr(coffer_errmsg(), path_of("m.key")) != NULL, "naming the file: %s",
			   coffer_errmsg());
		}
		for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
			spit(path_of("m.key"), text, n, good[i]);
			ok(coffer_keyfile_load(path_of("m.key"), &loaded) == 0,
			   "mode %04o is accepted (we run as root)", (unsigned)good[i]);
			coffer_keyfile_free(&loaded);
		}
		/* the mode is checked before the contents */
		spit(path_of("m.key"), "garbage", 7, 0644);
		ok(coffer_keyfile_load(path_of("m.key"), &loaded) == COFFER_EPERM,
		   "a world-readable file is EPERM before its contents are judged");
		spit(path_of("m.key"), "garbage", 7, 0600);
		ok(coffer_keyfile_load(path_of("m.key"), &loaded) == COFFER_ECORRUPT,
		   "a 0600 file of garbage is ECORRUPT");
		ok(strstr(coffer_errmsg(), path_of("m.key")) != NULL, "naming it: %s",
		   coffer_errmsg());
		free(text);
	}
	/* not a regular file */
	mkdir(path_of("d.key"), 0700);
	ok(coffer_keyfile_load(path_of("d.key"), &loaded) == COFFER_EPERM && loaded == NULL,
	   "a directory is refused (EPERM)");
	/* too large */
	{
		size_t big = 5000;
		char *t = malloc(big);

		memset(t, '#', big);
		spit(path_of("big.key"), t, big, 0600);
		ok(coffer_keyfile_load(path_of("big.key"), &loaded) == COFFER_ECORRUPT &&
		       loaded == NULL,
		   "a key file over 4 KiB is ECORRUPT");
		free(t);
	}
	/* empty */
	spit(path_of("empty.key"), "", 0, 0600);
	ok(coffer_keyfile_load(path_of("empty.key"), &loaded) == COFFER_ECORRUPT,
	   "an empty key file is ECORRUPT");

	coffer_keyfile_free(&kf);
	coffer_keyfile_free(&kf2);
}

static void test_wrap(void)
{
	unsigned char sid[COFFER_ID_BYTES], a1[COFFER_ID_BYTES], a2[COFFER_ID_BYTES];
	unsigned char w1[COFFER_WRAPPED_SK_BYTES], w1b[COFFER_WRAPPED_SK_BYTES],
	    w2[COFFER_WRAPPED_SK_BYTES];
	unsigned char *sk = coffer_secure_alloc(COFFER_SK_BYTES);
	unsigned char *out = coffer_secure_alloc(COFFER_SK_BYTES);
	struct coffer_keyfile *kf = NULL, *other = NULL, *loaded = NULL;
	uint64_t e1 = 0, e2 = 0;
	int bad;

	coffer_random(sid, sizeof sid);
	coffer_random(a1, sizeof a1);
	coffer_random(a2, sizeof a2);
	coffer_random(sk, COFFER_SK_BYTES);
	coffer_keyfile_generate(sid, &kf);
	{
		unsigned char sid2[COFFER_ID_BYTES];

		coffer_random(sid2, sizeof sid2);
		coffer_keyfile_generate(sid2, &other);
	}
	ok(coffer_keyfile_wrap(kf, a1, sk, &e1, w1) == 0 && e1 == 1, "wrap under epoch 1");
	ok(coffer_keyfile_wrap(kf, a1, sk, &e1, w1b) == 0 && memcmp(w1, w1b, sizeof w1) != 0,
	   "wrapping twice gives different bytes (random nonce)");
	ok(coffer_keyfile_unwrap(kf, a1, 1, w1, out) == 0 &&
	       coffer_ct_equal(out, sk, COFFER_SK_BYTES),
	   "unwrap round trip");
	ok(coffer_keyfile_unwrap(kf, a1, 1, w1b, out) == 0 &&
	       coffer_ct_equal(out, sk, COFFER_SK_BYTES),
	   "the second wrap unwraps too");
	ok(coffer_keyfile_unwrap(kf, a2, 1, w1, out) == COFFER_ECORRUPT,
	   "unwrap with another account id fails (ECORRUPT)");
	ok(coffer_keyfile_unwrap(kf, a1, 2, w1, out) == COFFER_EPERM,
	   "unwrap with an epoch not in the key file fails (EPERM)");
	ok(strstr(coffer_errmsg(), "epoch 2") != NULL, "naming the epoch: %s", coffer_errmsg());
	ok(coffer_keyfile_unwrap(kf, a1, 0, w1, out) == COFFER_EPERM, "epoch 0: EPERM");
	ok(coffer_keyfile_unwrap(other, a1, 1, w1, out) == COFFER_ECORRUPT,
	   "another store's key file cannot unwrap it");
	bad = 0;
	for (size_t i = 0; i < sizeof w1; i++) {
		unsigned char t[COFFER_WRAPPED_SK_BYTES];

		memcpy(t, w1, sizeof t);
		t[i] ^= 0x01;
		if (coffer_keyfile_unwrap(kf, a1, 1, t, out) != COFFER_ECORRUPT)
			bad++;
	}
	ok(bad == 0, "flipping any one bit of the %zu wrapped bytes is ECORRUPT", sizeof w1);

	/* rotation */
	ok(coffer_keyfile_begin_rotation(kf) == 0, "begin rotation");
	ok(coffer_keyfile_rotating(kf) && coffer_keyfile_epoch(kf) == 2,
	   "rotating, newest epoch 2");
	ok(coffer_keyfile_begin_rotation(kf) == COFFER_EINVAL, "a second begin is EINVAL");
	ok(coffer_keyfile_unwrap(kf, a1, 1, w1, out) == 0 &&
	       coffer_ct_equal(out, sk, COFFER_SK_BYTES),
	   "during rotation, epoch 1 wraps still open");
	ok(coffer_keyfile_wrap(kf, a1, sk, &e2, w2) == 0 && e2 == 2, "new wraps use epoch 2");
	ok(coffer_keyfile_unwrap(kf, a1, 2, w2, out) == 0 &&
	       coffer_ct_equal(out, sk, COFFER_SK_BYTES),
	   "and unwrap under epoch 2");
	ok(coffer_keyfile_unwrap(kf, a1, 1, w2, out) == COFFER_ECORRUPT,
	   "an epoch-2 wrap does not open as epoch 1");
	ok(coffer_keyfile_unwrap(kf, a1, 2, w1, out) == COFFER_ECORRUPT,
	   "an epoch-1 wrap does not open as epoch 2");

	/* the two-epoch file round trips */
	ok(coffer_keyfile_create(path_of("rot.key"), kf) == 0, "write the key file mid-rotation");
	{
		size_t n;
		char *t = slurp(path_of("rot.key"), &n);

		ok(t && documented_only(t, n, sid) == 2, "it holds exactly two epoch lines");
		ok(t && strstr(t, "\nepoch 1 ") && strstr(t, "\nepoch 2 ") &&
		       strstr(t, "\nepoch 1 ") < strstr(t, "\nepoch 2 "),
		   "epoch 1, then epoch 2");
		free(t);
	}
	ok(coffer_keyfile_load(path_of("rot.key"), &loaded) == 0 &&
	       coffer_keyfile_rotating(loaded) && coffer_keyfile_epoch(loaded) == 2,
	   "load of a two-epoch file: rotating, newest 2");
	ok(loaded && coffer_keyfile_unwrap(loaded, a1, 1, w1, out) == 0 &&
	       coffer_keyfile_unwrap(loaded, a1, 2, w2, out) == 0,
	   "both epochs unwrap from the loaded file");

	coffer_keyfile_end_rotation(kf);
	ok(!coffer_keyfile_rotating(kf) && coffer_keyfile_epoch(kf) == 2, "end: only epoch 2");
	ok(coffer_keyfile_unwrap(kf, a1, 1, w1, out) == COFFER_EPERM,
	   "after the rotation an epoch-1 wrap fails with EPERM");
	ok(strstr(coffer_errmsg(), "epoch 1") != NULL, "naming the epoch: %s", coffer_errmsg());
	ok(coffer_keyfile_unwrap(kf, a1, 2, w2, out) == 0 &&
	       coffer_ct_equal(out, sk, COFFER_SK_BYTES),
	   "epoch-2 wraps still open");
	coffer_keyfile_end_rotation(kf);
	ok(coffer_keyfile_epoch(kf) == 2, "end without a rotation changes nothing");

	/* a write killed before its rename left a temporary holding epoch 1 */
	{
		size_t n;
		char *t = slurp(path_of("rot.key"), &n);
		FILE *f = fopen(path_of("rot.key.tmp.0123456789abcdef"), "w");
		FILE *g = fopen(path_of("rot.key.bak"), "w");

		ok(t && f && g && fwrite(t, 1, n, f) == n && fclose(f) == 0 && fclose(g) == 0,
		   "a stale temporary with epoch 1 beside the key file");
		free(t);
	}
	ok(coffer_keyfile_replace(path_of("rot.key"), kf) == 0,
	   "replace the file after the rotation");
	ok(access(path_of("rot.key.tmp.0123456789abcdef"), F_OK) < 0 && errno == ENOENT,
	   "the replace removed the stale temporary (it held the retired master)");
	ok(access(path_of("rot.key.bak"), F_OK) == 0, "and nothing else");
	unlink(path_of("rot.key.bak"));
	{
		struct stat sb;
		size_t n;
		char *t = slurp(path_of("rot.key"), &n);

		ok(t && documented_only(t, n, sid) == 1 && strstr(t, "\nepoch 2 ") &&
		       !strstr(t, "epoch 1 "),
		   "the replaced file holds epoch 2 only");
		ok(stat(path_of("rot.key"), &sb) == 0 && (sb.st_mode & 07777) == 0600,
		   "replace writes mode 0600");
		ok(temporaries() == 0, "and leaves no temporary");
		free(t);
	}
	coffer_keyfile_free(&loaded);
	ok(coffer_keyfile_load(path_of("rot.key"), &loaded) == 0 &&
	       !coffer_keyfile_rotating(loaded),
	   "reload: one epoch");
	ok(loaded && coffer_keyfile_unwrap(loaded, a1, 1, w1, out) == COFFER_EPERM,
	   "the reloaded file cannot open the old wrap (EPERM)");
	ok(loaded && coffer_keyfile_unwrap(loaded, a1, 2, w2, out) == 0, "but opens the new one");

	/* a second rotation goes to epoch 3 */
	ok(coffer_keyfile_begin_rotation(kf) == 0 && coffer_keyfile_epoch(kf) == 3,
	   "a second rotation: epoch 3");
	coffer_keyfile_end_rotation(kf);
	ok(coffer_keyfile_unwrap(kf, a1, 2, w2, out) == COFFER_EPERM, "then epoch 2 is gone too");

	ok(coffer_keyfile_replace(path_of("fresh.key"), kf) == 0 &&
	       access(path_of("fresh.key"), F_OK) == 0,
	   "replace creates a missing file");

	coffer_keyfile_free(&loaded);
	coffer_keyfile_free(&kf);
	coffer_keyfile_free(&other);
	coffer_secure_free(sk);
	coffer_secure_free(out);
}

/* Replaces [off, off+len) of t with rep. */
static char *edit_text(const char *t, size_t n, size_t off, size_t len, const char *rep, size_t rl,
                       size_t *n_r)
{
	char *s = malloc(n - len + rl + 1);

	memcpy(s, t, off);
	memcpy(s + off, rep, rl);
	memcpy(s + off + rl, t + off + len, n - off - len);
	*n_r = n - len + rl;
	s[*n_r] = '\0';
	return s;
}

static void test_parse(void)
{
	unsigned char sid[COFFER_ID_BYTES];
	struct coffer_keyfile *kf = NULL, *p = NULL;
	char good[1024], *t;
	size_t n, m;
	int bad, line_starts[16], nlines = 0;

	coffer_random(sid, sizeof sid);
	coffer_keyfile_generate(sid, &kf);
	coffer_keyfile_begin_rotation(kf);
	coffer_keyfile_create(path_of("p.key"), kf);
	t = slurp(path_of("p.key"), &n);
	ok(t && n < sizeof good, "a two-epoch key file to mangle (%zu bytes)", n);
	memcpy(good, t, n);
	good[n] = '\0';
	free(t);

	ok(parse_text(good, n) == 0, "the original parses");
	ok(coffer_keyfile_parse("x", good, n, &p) == 0 && coffer_keyfile_rotating(p), "two epochs");
	coffer_keyfile_free(&p);
	ok(parse_text(good, n - 1) == 0, "the final newline is optional");

	/* every prefix that cuts into a field */
	bad = 0;
	for (size_t len = 0; len + 1 < n; len++) {
		char *c = malloc(len ? len : 1);

		memcpy(c, good, len);
		if (parse_text(c, len) != COFFER_ECORRUPT)
			bad++;
		free(c);
	}
	ok(bad == 0, "every truncation of the file (%zu) is ECORRUPT (%d accepted)", n - 1, bad);

	/* every non-comment line cut at every length, the rest kept */
	for (size_t i = 0; i < n; i = (size_t)(strchr(good + i, '\n') - good) + 1)
		if (good[i] != '#')
			line_starts[nlines++] = (int)i;
	ok(nlines == 5, "5 field lines (magic, store, 2 epochs, pseudonym)");
	bad = 0;
	for (int l = 0; l < nlines; l++) {
		size_t start = (size_t)line_starts[l];
		size_t len = (size_t)(strchr(good + start, '\n') - (good + start));

		for (size_t keep = 0; keep < len; keep++) {
			char *c = edit_text(good, n, start + keep, len - keep, "", 0, &m);
			int rc = parse_text(c, m);
			/* emptying one of the two epoch lines leaves a valid one-epoch file */
			int want = keep == 0 && (l == 2 || l == 3) ? 0 : COFFER_ECORRUPT;

			if (rc != want) {
				if (bad++ < 3)
					tap_diag("line %d cut to %zu bytes: rc %d", l + 1, keep,
					         rc);
			}
			free(c);
		}
	}
	ok(bad == 0,
	   "every field line cut short, at every length, is ECORRUPT (an emptied epoch line of two is fine)");

	/* bad hex in each hex field, at each position */
	bad = 0;
	for (int l = 1; l < nlines; l++) {
		size_t start = (size_t)line_starts[l];
		size_t end = (size_t)(strchr(good + start, '\n') - good);
		size_t hex0 = start;

		/* the hex field follows the line's last space */
		for (size_t i = start; i < end; i++)
			if (good[i] == ' ')
				hex0 = i + 1;
		for (size_t i = hex0; i < end; i++) {
			static const char reps[] = "gxG- \t";

			for (const char *r = reps; *r; r++) {
				char *c = edit_text(good, n, i, 1, r, 1, &m);

				if (parse_text(c, m) != COFFER_ECORRUPT)
					bad++;
				free(c);
			}
		}
	}
	ok(bad == 0, "a non-hex character anywhere in a hex field is ECORRUPT");
	{
		/* upper-case hex is still hex */
		char *c = strdup(good);

		for (char *q = c + line_starts[4] + 10; *q && *q != '\n'; q++)
			if (*q >= 'a' && *q <= 'f')
				*q = (char)(*q - 'a' + 'A');
		ok(parse_text(c, n) == 0, "upper-case hex digits are accepted");
		free(c);
	}
	/* a hex field one digit too long */
	{
		size_t end = (size_t)(strchr(good + line_starts[1], '\n') - good);
		char *c = edit_text(good, n, end, 0, "0", 1, &m);

		ok(parse_text(c, m) == COFFER_ECORRUPT, "a store id of 33 hex digits is ECORRUPT");
		free(c);
	}

	/* wrong magic */
	{
		static const char *const magics[] = { "coffer-keyfile 2",  "Coffer-keyfile 1",
			                              "coffer-keyfile 1 ", "coffer-keyfile  1",
			                              "coffer-keyfile 10", "coffer-keyfil 1",
			                              "coffer-keyfile" };

		bad = 0;
		for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++) {
			char *c = edit_text(good, n, (size_t)line_starts[0], 16, magics[i],
			                    strlen(magics[i]), &m);

			if (parse_text(c, m) != COFFER_ECORRUPT)
				bad++;
			free(c);
		}
		ok(bad == 0, "7 wrong magic lines are ECORRUPT");
		t = edit_text(good, n, (size_t)line_starts[0], 17, "", 0, &m);
		ok(parse_text(t, m) == COFFER_ECORRUPT, "no magic line: ECORRUPT");
		free(t);
		coffer_keyfile_parse("named.key", "coffer-keyfile 9\n", 17, &p);
		ok(strstr(coffer_errmsg(), "named.key") != NULL, "the detail names the file: %s",
		   coffer_errmsg());
	}

	/* epochs */
	{
		size_t e1 = (size_t)line_starts[2], e2 = (size_t)line_starts[3];
		size_t len1 = (size_t)line_starts[3] - e1, len2 = (size_t)line_starts[4] - e2;
		char l1[256], l2[256], l3[256];
		char *c, *d;

		memcpy(l1, good + e1, len1);
		l1[len1] = '\0';
		memcpy(l2, good + e2, len2);
		l2[len2] = '\0';
		ok(!strncmp(l1, "epoch 1 ", 8) && !strncmp(l2, "epoch 2 ", 8),
		   "epoch lines 1 and 2");

		/* three epochs */
		snprintf(l3, sizeof l3, "epoch 3 %s", l2 + 8);
		c = edit_text(good, n, e2 + len2, 0, l3, strlen(l3), &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "three epochs: ECORRUPT");
		free(c);
		/* decreasing: swap the two lines */
		c = edit_text(good, n, e1, len1 + len2, l2, len2, &m);
		d = edit_text(c, m, e1 + len2, 0, l1, len1, &m);
		ok(parse_text(d, m) == COFFER_ECORRUPT, "epoch 2 before epoch 1: ECORRUPT");
		free(c);
		free(d);
		/* equal */
		c = edit_text(good, n, e2, 7, "epoch 1", 7, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "epoch 1 twice: ECORRUPT");
		free(c);
		/* other bad numbers */
		{
			static const char *const nums[] = { "0",
				                            "-1",
				                            "+1",
				                            "1a",
				                            "",
				                            "18446744073709551616",
				                            "99999999999999999999",
				                            " 1" };

			bad = 0;
			for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
				c = edit_text(good, n, e1 + 6, 1, nums[i], strlen(nums[i]), &m);
				d = edit_text(c, m, e1 + 6 + strlen(nums[i]) + 1 + 64 + 1, len2, "",
				              0, &m);
				if (parse_text(d, m) != COFFER_ECORRUPT) {
					tap_diag("epoch number '%s' accepted", nums[i]);
					bad++;
				}
				free(c);
				free(d);
			}
			ok(bad == 0,
			   "epoch numbers 0, -1, +1, 1a, empty, 2^64, 20 digits: ECORRUPT");
		}
		/* a large but valid epoch */
		c = edit_text(good, n, e1 + 6, 1, "1000000000000000000", 19, &m);
		d = edit_text(c, m, e1 + 19 + len1 - 1, len2, "", 0, &m);
		ok(parse_text(d, m) == 0, "a 19-digit epoch parses");
		free(c);
		free(d);
		/* no epoch at all */
		c = edit_text(good, n, e1, len1 + len2, "", 0, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "no epoch line: ECORRUPT");
		free(c);
	}

	/* duplicates, unknown and misplaced lines */
	{
		size_t s0 = (size_t)line_starts[1], slen = (size_t)line_starts[2] - s0;
		size_t p0 = (size_t)line_starts[4], plen = n - p0;
		char *c;

		c = edit_text(good, n, n, 0, good + s0, slen, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "a second store line: ECORRUPT");
		free(c);
		c = edit_text(good, n, n, 0, good + p0, plen, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "a second pseudonym line: ECORRUPT");
		free(c);
		c = edit_text(good, n, n, 0, "color blue\n", 11, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "an unknown field: ECORRUPT");
		free(c);
		c = edit_text(good, n, n, 0, "coffer-keyfile 1\n", 17, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "a second magic line: ECORRUPT");
		free(c);
		c = edit_text(good, n, s0, slen, "", 0, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "no store line: ECORRUPT");
		free(c);
		c = edit_text(good, n, p0, plen, "", 0, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "no pseudonym line: ECORRUPT");
		free(c);
		c = edit_text(good, n, n, 0, "\n\n# trailing comment\n\n", 22, &m);
		ok(parse_text(c, m) == 0, "blank lines and comments anywhere are fine");
		free(c);
		c = edit_text(good, n, s0, 0, "store\n", 6, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "a bare 'store' line: ECORRUPT");
		free(c);
		c = edit_text(good, n, s0, 0, "epoch\n", 6, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "a bare 'epoch' line: ECORRUPT");
		free(c);
		c = edit_text(good, n, s0, 0, "epoch \n", 7, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "'epoch ' with nothing after: ECORRUPT");
		free(c);
		c = edit_text(good, n, s0, 0, "epoch 5 \n", 9, &m);
		ok(parse_text(c, m) == COFFER_ECORRUPT, "'epoch 5 ' with no master: ECORRUPT");
		free(c);
	}

	/* NUL bytes: in every field line, at several places; and a NUL line */
	bad = 0;
	for (int l = 0; l < nlines; l++) {
		size_t start = (size_t)line_starts[l];
		size_t len = (size_t)(strchr(good + start, '\n') - (good + start));
		size_t at[] = { 0, 1, len / 2, len - 1, len };

		for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
			char *c = edit_text(good, n, start + at[i], at[i] == len ? 0 : 1, "\0", 1,
			                    &m);

			if (parse_text(c, m) != COFFER_ECORRUPT)
				bad++;
			free(c);
		}
	}
	ok(bad == 0, "a NUL byte in or at the end of any field line is ECORRUPT");
	t = edit_text(good, n, n, 0, "\0\n", 2, &m);
	ok(parse_text(t, m) == COFFER_ECORRUPT, "a line holding a NUL: ECORRUPT");
	free(t);
	t = edit_text(good, n, n, 0, "\0", 1, &m);
	ok(parse_text(t, m) == COFFER_ECORRUPT, "a trailing NUL: ECORRUPT");
	free(t);
	/* text parsed by length, not by C string */
	t = malloc(n + 100);
	memcpy(t, good, n);
	memset(t + n, 'Z', 100);
	ok(parse_text(t, n) == 0, "only n bytes are read (no terminator needed)");
	free(t);

	ok(parse_text("", 0) == COFFER_ECORRUPT, "empty text: ECORRUPT");
	ok(parse_text("\n\n\n", 3) == COFFER_ECORRUPT, "blank lines only: ECORRUPT");
	ok(parse_text("# just a comment", 16) == COFFER_ECORRUPT, "a comment only: ECORRUPT");
	{
		char *c = edit_text(good, n, 0, 0, "\xff\xfe", 2, &m);

		ok(parse_text(c, m) == COFFER_ECORRUPT, "binary before the magic: ECORRUPT");
		free(c);
	}
	{
		/* CRLF endings do not parse as the documented LF format */
		char crlf[2048];
		size_t k = 0;

		for (size_t i = 0; i < n; i++) {
			if (good[i] == '\n')
				crlf[k++] = '\r';
			crlf[k++] = good[i];
		}
		ok(parse_text(crlf, k) == COFFER_ECORRUPT,
		   "CRLF line endings: ECORRUPT, not misread");
	}
	coffer_keyfile_free(&kf);
}

int main(void)
{
	if (coffer_crypto_init() < 0)
		return 99;
	snprintf(dir, sizeof dir, "%s", tap_tmpdir());
	test_generate_create_load();
	test_wrap();
	test_parse();
	return tap_done();
}
