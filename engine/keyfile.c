/*
 * keyfile.c: reading, writing and using the key file (see keyfile.h).
 *
 * Format (docs/format.md "Key file"), one item per line, '#' comments:
 *
 *     coffer-keyfile 1
 *     store <32 hex>
 *     epoch <n> <64 hex>        (one line per live epoch, at most two)
 *     pseudonym <64 hex>
 *
 * KEK(acct, e) = BLAKE2b-256(key = master_e, "coffer-kek-v1" || store id ||
 * acct id); a wrapped key is nonce(24) || XChaCha20-Poly1305(sk) with
 * AD = "CFW1" || store id || acct id || e (u64 LE).
 *
 * The text is built and parsed in guarded memory; nothing secret passes
 * through stdio or a struct coffer_buf.
 */
#include "keyfile.h"

#include "buf.h"
#include "errors.h"
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_EPOCHS 2
#define KEYFILE_MAX 4096

struct coffer_keyfile {
	unsigned char store_id[COFFER_ID_BYTES];
	int n_epochs;
	uint64_t epoch[MAX_EPOCHS]; /* ascending */
	unsigned char *master;      /* secure: MAX_EPOCHS * COFFER_KEY_BYTES */
	unsigned char *pseudonym;   /* secure: COFFER_KEY_BYTES */
};

/* *kf_r is set on every path (NULL on failure): the failure returns are
 * coffer_err_set()'s value, which the compiler cannot see is negative, so
 * without this a caller's "rc < 0" test leaves an apparent path on which its
 * handle is read uninitialised (-Wmaybe-uninitialized at -O2). */
static int kf_alloc(struct coffer_keyfile **kf_r)
{
	struct coffer_keyfile *kf;

	*kf_r = NULL;
	kf = calloc(1, sizeof *kf);
	if (kf == NULL)
		return coffer_err_set(COFFER_ENOMEM, "key file: out of memory");
	kf->master = coffer_secure_alloc(MAX_EPOCHS * COFFER_KEY_BYTES);
	kf->pseudonym = coffer_secure_alloc(COFFER_KEY_BYTES);
	if (kf->master == NULL || kf->pseudonym == NULL) {
		coffer_keyfile_free(&kf);
		return coffer_err_set(COFFER_ENOMEM, "key file: cannot allocate secure memory");
	}
	*kf_r = kf;
	return 0;
}

void coffer_keyfile_free(struct coffer_keyfile **kfp)
{
	struct coffer_keyfile *kf = kfp ? *kfp : NULL;

	if (kf == NULL)
		return;
	coffer_secure_free(kf->master);
	coffer_secure_free(kf->pseudonym);
	free(kf);
	*kfp = NULL;
}

int coffer_keyfile_generate(const unsigned char store_id[COFFER_ID_BYTES],
                            struct coffer_keyfile **kf_r)
{
	struct coffer_keyfile *kf = NULL;
	int rc;

	rc = kf_alloc(&kf);
	if (rc < 0)
		return rc;
	memcpy(kf->store_id, store_id, COFFER_ID_BYTES);
	kf->n_epochs = 1;
	kf->epoch[0] = 1;
	coffer_random(kf->master, COFFER_KEY_BYTES);
	coffer_random(kf->pseudonym, COFFER_KEY_BYTES);
	*kf_r = kf;
	return 0;
}

/* Hex into secure text; p must have room for 2n. */
static void put_hex(char *p, const unsigned char *v, size_t n)
{
	coffer_hex(p, v, n);
}

/* Renders the file into secure memory; *len_r bytes, caller frees. */
static int render(const struct coffer_keyfile *kf, char **text_r, size_t *len_r)
{
	char *t = coffer_secure_alloc(KEYFILE_MAX);
	size_t n = 0;

	if (t == NULL)
		return coffer_err_set(COFFER_ENOMEM, "key file: cannot allocate secure memory");
	n += (size_t)snprintf(t + n, KEYFILE_MAX - n,
	                      "# Coffer key file: the root secret of one store.\n"
	                      "# Keep it mode 0600, outside the store, and read docs/security.md\n"
	                      "# before making backups of it (crypto-shredding depends on it).\n"
	                      "coffer-keyfile 1\nstore ");
	put_hex(t + n, kf->store_id, COFFER_ID_BYTES);
	n += 2 * COFFER_ID_BYTES;
	t[n++] = '\n';
	for (int i = 0; i < kf->n_epochs; i++) {
		n += (size_t)snprintf(t + n, KEYFILE_MAX - n, "epoch %llu ",
		                      (unsigned long long)kf->epoch[i]);
		put_hex(t + n, kf->master + i * COFFER_KEY_BYTES, COFFER_KEY_BYTES);
		n += 2 * COFFER_KEY_BYTES;
		t[n++] = '\n';
	}
	memcpy(t + n, "pseudonym ", 10);
	n += 10;
	put_hex(t + n, kf->pseudonym, COFFER_KEY_BYTES);
	n += 2 * COFFER_KEY_BYTES;
	t[n++] = '\n';
	*text_r = t;
	*len_r = n;
	return 0;
}

/* Writes text to a fresh temporary file next to path; returns its name. */
static int write_temp(const char *path, const char *text, size_t n, char **tmp_r)
{
	char *tmp;
	unsigned char rnd[8];
	char rhex[17];
	int fd, rc;

	coffer_random(rnd, sizeof rnd);
	coffer_hex(rhex, rnd, sizeof rnd);
	if (asprintf(&tmp, "%s.tmp.%s", path, rhex) < 0)
		return coffer_err_set(COFFER_ENOMEM, "key file: out of memory");
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = coffer_err_set(coffer_err_from_errno(errno), "key file %s: cannot create: %s",
		                    path, strerror(errno));
		free(tmp);
		return rc;
	}
	rc = coffer_io_write_all(fd, text, n);
	if (rc == 0)
		rc = coffer_io_fsync(fd);
	close(fd);
	if (rc < 0) {
		unlink(tmp);
		free(tmp);
		return coffer_err_prefix(rc, "key file %s: ", path);
	}
	*tmp_r = tmp;
	return 0;
}

static int parent_fsync(const char *path)
{
	char *dir = strdup(path), *slash;
	int rc;

	if (dir == NULL)
		return coffer_err_set(COFFER_ENOMEM, "key file: out of memory");
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	rc = coffer_io_fsync_dir(dir);
	free(dir);
	return rc;
}

/* Removes "<path>.tmp.<16 hex>" files that a write killed before its rename
 * left beside the key file (never our own: the caller's is renamed or
 * unlinked first). They hold a master that a later crypto-shredding rotation
 * retires, so one left behind would keep shredded accounts decryptable. */
static int sweep_temps(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t bn = strlen(base);
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (dir == NULL)
		return coffer_err_set(COFFER_ENOMEM, "key file: out of memory");
	d = opendir(dir);
	if (d == NULL) {
		rc = coffer_err_set(coffer_err_from_errno(errno), "key file %s: cannot list %s: %s",
		                    path, dir, strerror(errno));
		free(dir);
		return rc;
	}
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;

		if (strncmp(n, base, bn) != 0 || strncmp(n + bn, ".tmp.", 5) != 0 ||
		    strlen(n + bn + 5) != 16 || strspn(n + bn + 5, "0123456789abcdef") != 16)
			continue;
		if (unlinkat(dirfd(d), n, 0) < 0 && errno != ENOENT) {
			rc = coffer_err_set(coffer_err_from_errno(errno),
			                    "key file %s: cannot remove the stale temporary %s: %s",
			                    path, n, strerror(errno));
			break;
		}
	}
	closedir(d);
	free(dir);
	return rc;
}

static int write_file(const char *path, const struct coffer_keyfile *kf, int replace)
{
	char *text = NULL, *tmp = NULL;
	size_t n = 0;
	int rc;

	rc = render(kf, &text, &n);
	if (rc < 0)
		return rc;
	rc = write_temp(path, text, n, &tmp);
	coffer_secure_free(text);
	if (rc < 0)
		return rc;
	if (replace)
		rc = rename(tmp, path);
	else
		rc = link(tmp, path);
	if (rc < 0) {
		int err = errno;

		rc = err == EEXIST
		         ? coffer_err_set(COFFER_EEXIST,
		                          "key file %s already exists; refusing to overwrite it",
		                          path)
		         : coffer_err_set(coffer_err_from_errno(err),
		                          "key file %s: cannot write: %s", path, strerror(err));
		unlink(tmp);
		free(tmp);
		return rc;
	}
	if (!replace)
		unlink(tmp);
	free(tmp);
	rc = sweep_temps(path);
	if (rc < 0)
		return rc;
	return parent_fsync(path);
}

int coffer_keyfile_create(const char *path, const struct coffer_keyfile *kf)
{
	return write_file(path, kf, 0);
}

int coffer_keyfile_replace(const char *path, const struct coffer_keyfile *kf)
{
	return write_file(path, kf, 1);
}

static int unhex(unsigned char *out, size_t n, const char *p, size_t len)
{
	if (len != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = 0;

		for (int j = 0; j < 2; j++) {
			char c = p[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				v |= c - 'A' + 10;
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

int coffer_keyfile_parse(const char *name, const char *text, size_t n, struct coffer_keyfile **kf_r)
{
	struct coffer_keyfile *kf = NULL;
	size_t pos = 0;
	int line = 0, have_magic = 0, have_store = 0, have_pseudo = 0, rc;

	*kf_r = NULL;
	rc = kf_alloc(&kf);
	if (rc < 0)
		return rc;
	while (pos < n) {
		const char *l = text + pos, *nl = memchr(l, '\n', n - pos), *sp;
		size_t len = nl ? (size_t)(nl - l) : n - pos;

		pos += len + (nl ? 1 : 0);
		line++;
		if (len == 0 || l[0] == '#')
			continue;
		if (memchr(l, '\0', len) != NULL)
			goto bad;
		sp = memchr(l, ' ', len);
		if (sp == NULL)
			goto bad;
		if (!have_magic) {
			if (len != 16 || memcmp(l, "coffer-keyfile 1", 16) != 0) {
				rc = coffer_err_set(
				    COFFER_ECORRUPT,
				    "key file %s: not a Coffer key file (or an unknown version)",
				    name);
				goto out;
			}
			have_magic = 1;
		} else if ((size_t)(sp - l) == 5 && memcmp(l, "store", 5) == 0 && !have_store) {
			if (unhex(kf->store_id, COFFER_ID_BYTES, sp + 1, len - 6) < 0)
				goto bad;
			have_store = 1;
		} else if ((size_t)(sp - l) == 5 && memcmp(l, "epoch", 5) == 0) {
			const char *num = sp + 1, *sp2;
			uint64_t e = 0;

			sp2 = memchr(num, ' ', len - 6);
			if (sp2 == NULL || sp2 == num || sp2 - num > 19 ||
			    kf->n_epochs == MAX_EPOCHS)
				goto bad;
			for (const char *c = num; c < sp2; c++) {
				if (*c < '0' || *c > '9')
					goto bad;
				e = e * 10 + (uint64_t)(*c - '0');
			}
			if (e == 0 || (kf->n_epochs > 0 && e <= kf->epoch[kf->n_epochs - 1]))
				goto bad;
			if (unhex(kf->master + kf->n_epochs * COFFER_KEY_BYTES, COFFER_KEY_BYTES,
			          sp2 + 1, (size_t)(l + len - sp2 - 1)) < 0)
				goto bad;
			kf->epoch[kf->n_epochs++] = e;
		} else if ((size_t)(sp - l) == 9 && memcmp(l, "pseudonym", 9) == 0 &&
		           !have_pseudo) {
			if (unhex(kf->pseudonym, COFFER_KEY_BYTES, sp + 1, len - 10) < 0)
				goto bad;
			have_pseudo = 1;
		} else {
			goto bad;
		}
	}
	if (!have_magic || !have_store || !have_pseudo || kf->n_epochs == 0) {
		rc = coffer_err_set(COFFER_ECORRUPT, "key file %s: incomplete (truncated?)", name);
		goto out;
	}
	*kf_r = kf;
	return 0;
bad:
	rc = coffer_err_set(COFFER_ECORRUPT, "key file %s: line %d is malformed", name, line);
out:
	coffer_keyfile_free(&kf);
	return rc;
}

int coffer_keyfile_load(const char *path, struct coffer_keyfile **kf_r)
{
	struct stat st;
	char *text = NULL;
	size_t got = 0;
	int fd, rc;

	*kf_r = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int err = errno;

		if (err == ENOENT)
			return coffer_err_set(COFFER_ENOTFOUND, "key file %s does not exist", path);
		return coffer_err_set(err == EACCES || err == EPERM ? COFFER_EPERM
		                                                    : coffer_err_from_errno(err),
		                      "key file %s cannot be read: %s", path, strerror(err));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return coffer_err_set(COFFER_EPERM, "key file %s is not a regular file", path);
	}
	if (st.st_mode & 077) {
		close(fd);
		return coffer_err_set(COFFER_EPERM,
		                      "key file %s is readable by group or others (mode %04o); "
		                      "run chmod 600 on it",
		                      path, (unsigned)(st.st_mode & 07777));
	}
	if (st.st_size > KEYFILE_MAX) {
		close(fd);
		return coffer_err_set(COFFER_ECORRUPT, "key file %s is too large", path);
	}
	text = coffer_secure_alloc(KEYFILE_MAX);
	if (text == NULL) {
		close(fd);
		return coffer_err_set(COFFER_ENOMEM, "key file: cannot allocate secure memory");
	}
	rc = coffer_io_read_full(fd, text, KEYFILE_MAX, &got);
	close(fd);
	if (rc == 0)
		rc = coffer_keyfile_parse(path, text, got, kf_r);
	else
		rc = coffer_err_prefix(rc, "key file %s: ", path);
	coffer_secure_free(text);
	return rc;
}

const unsigned char *coffer_keyfile_store_id(const struct coffer_keyfile *kf)
{
	return kf->store_id;
}

uint64_t coffer_keyfile_epoch(const struct coffer_keyfile *kf)
{
	return kf->epoch[kf->n_epochs - 1];
}

int coffer_keyfile_rotating(const struct coffer_keyfile *kf)
{
	return kf->n_epochs > 1;
}

int coffer_keyfile_begin_rotation(struct coffer_keyfile *kf)
{
	if (kf->n_epochs != 1)
		return coffer_err_set(COFFER_EINVAL,
		                      "key file: a key rotation is already under way");
	kf->epoch[1] = kf->epoch[0] + 1;
	coffer_random(kf->master + COFFER_KEY_BYTES, COFFER_KEY_BYTES);
	kf->n_epochs = 2;
	return 0;
}

void coffer_keyfile_end_rotation(struct coffer_keyfile *kf)
{
	if (kf->n_epochs < 2)
		return;
	memcpy(kf->master, kf->master + COFFER_KEY_BYTES, COFFER_KEY_BYTES);
	coffer_wipe(kf->master + COFFER_KEY_BYTES, COFFER_KEY_BYTES);
	kf->epoch[0] = kf->epoch[1];
	kf->n_epochs = 1;
}

const unsigned char *coffer_keyfile_pseudonym_key(const struct coffer_keyfile *kf)
{
	return kf->pseudonym;
}

int coffer_keyfile_derive(const struct coffer_keyfile *kf, const char *label, unsigned char *out)
{
	static const char prefix[] = "coffer-derive-v1";

	return coffer_crypto_hash_keyed(out, COFFER_KEY_BYTES, kf->pseudonym, prefix,
	                                sizeof prefix - 1, label, strlen(label));
}

static const unsigned char *master_of(const struct coffer_keyfile *kf, uint64_t epoch)
{
	for (int i = 0; i < kf->n_epochs; i++)
		if (kf->epoch[i] == epoch)
			return kf->master + i * COFFER_KEY_BYTES;
	return NULL;
}

static int kek_and_ad(const struct coffer_keyfile *kf, const unsigned char *master,
                      const unsigned char *acct_id, uint64_t epoch, unsigned char *kek,
                      unsigned char ad[4 + 2 * COFFER_ID_BYTES + 8])
{
	static const char label[] = "coffer-kek-v1";
	unsigned char ctx[sizeof label - 1 + 2 * COFFER_ID_BYTES];

	memcpy(ctx, label, sizeof label - 1);
	memcpy(ctx + sizeof label - 1, kf->store_id, COFFER_ID_BYTES);
	memcpy(ctx + sizeof label - 1 + COFFER_ID_BYTES, acct_id, COFFER_ID_BYTES);
	memcpy(ad, "CFW1", 4);
	memcpy(ad + 4, kf->store_id, COFFER_ID_BYTES);
	memcpy(ad + 4 + COFFER_ID_BYTES, acct_id, COFFER_ID_BYTES);
	coffer_put_u64le(ad + 4 + 2 * COFFER_ID_BYTES, epoch);
	return coffer_crypto_hash_keyed(kek, COFFER_KEY_BYTES, master, ctx, sizeof ctx, NULL, 0);
}

int coffer_keyfile_wrap(const struct coffer_keyfile *kf, const unsigned char *acct_id,
                        const unsigned char *sk, uint64_t *epoch_r,
                        unsigned char wrapped_r[COFFER_WRAPPED_SK_BYTES])
{
	uint64_t epoch = coffer_keyfile_epoch(kf);
	unsigned char ad[4 + 2 * COFFER_ID_BYTES + 8];
	unsigned char *kek = coffer_secure_alloc(COFFER_KEY_BYTES);
	int rc;

	if (kek == NULL)
		return coffer_err_set(COFFER_ENOMEM, "key file: cannot allocate secure memory");
	rc = kek_and_ad(kf, master_of(kf, epoch), acct_id, epoch, kek, ad);
	if (rc == 0) {
		coffer_random(wrapped_r, COFFER_AEAD_NONCE_BYTES);
		rc = coffer_crypto_aead_seal(wrapped_r + COFFER_AEAD_NONCE_BYTES, sk,
		                             COFFER_SK_BYTES, ad, sizeof ad, wrapped_r, kek);
	}
	coffer_secure_free(kek);
	if (rc == 0)
		*epoch_r = epoch;
	return rc;
}

int coffer_keyfile_unwrap(const struct coffer_keyfile *kf, const unsigned char *acct_id,
                          uint64_t epoch, const unsigned char wrapped[COFFER_WRAPPED_SK_BYTES],
                          unsigned char *sk)
{
	const unsigned char *master = master_of(kf, epoch);
	unsigned char ad[4 + 2 * COFFER_ID_BYTES + 8];
	unsigned char *kek;
	int rc;

	if (master == NULL)
		return coffer_err_set(
		    COFFER_EPERM,
		    "key epoch %llu is not in the key file (destroyed, or another "
		    "store's key file)",
		    (unsigned long long)epoch);
	kek = coffer_secure_alloc(COFFER_KEY_BYTES);
	if (kek == NULL)
		return coffer_err_set(COFFER_ENOMEM, "key file: cannot allocate secure memory");
	rc = kek_and_ad(kf, master, acct_id, epoch, kek, ad);
	if (rc == 0)
		rc = coffer_crypto_aead_open(sk, wrapped + COFFER_AEAD_NONCE_BYTES,
		                             COFFER_SK_BYTES + COFFER_AEAD_TAG_BYTES, ad, sizeof ad,
		                             wrapped, kek);
	coffer_secure_free(kek);
	if (rc < 0)
		return coffer_err_set(COFFER_ECORRUPT,
		                      "account key cannot be unwrapped with this key file");
	return 0;
}
