/*
 * objects.c: sealed objects, manifests and key rings (see objects.h).
 *
 * Manifest plaintext, little-endian:
 *   "CFM1" | id (u8 len + bytes) | i64 created | store id 16 | index key 32 |
 *   keyring (u8 len + bytes) | u32 accounts | accounts... | u32 freed | names |
 *   u32 drop | names
 *   account: id 16 | u64 modseq | u64 messages | u64 bytes | u64 new bytes |
 *            u8 changed | full_at (u8 len + bytes) | u32 revs | revs (u8 len + bytes)
 *   name: u16 len + bytes
 * Key ring plaintext: "CFR1" | u32 n | n * (id 16 | mac 32 | u32 len | record)
 */
#include "objects.h"

#include "engine/clock.h"
#include "engine/compress.h"
#include "engine/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 255u

static int obj_ad(struct coffer_buf *ad, uint8_t kind, const char *name,
                  const unsigned char *store_id)
{
	coffer_buf_append(ad, "CFO1", 4);
	coffer_buf_put_u8(ad, kind);
	coffer_buf_append(ad, store_id, COFFER_ID_BYTES);
	coffer_buf_puts(ad, name);
	return coffer_buf_ok(ad);
}

int coffer_obj_seal(struct coffer_buf *out, uint8_t kind, const char *name,
                    const unsigned char *store_id, const unsigned char *key, const void *pt,
                    size_t n)
{
	struct coffer_buf ad = COFFER_BUF_INIT, plain = COFFER_BUF_INIT;
	unsigned char nonce[COFFER_AEAD_NONCE_BYTES];
	size_t bound = coffer_compress_bound(n), clen = 0;
	int rc;

	rc = obj_ad(&ad, kind, name, store_id);
	if (rc == 0)
		rc = coffer_buf_put_u64le(&plain, n);
	if (rc == 0)
		rc = coffer_buf_reserve(&plain, bound);
	if (rc == 0)
		rc = coffer_compress(plain.data + plain.len, bound, pt, n, 3, &clen);
	if (rc < 0)
		goto out;
	plain.len += clen;
	coffer_random(nonce, sizeof nonce);
	coffer_buf_append(out, "CFO1", 4);
	coffer_buf_put_u8(out, kind);
	coffer_buf_append(out, nonce, sizeof nonce);
	rc = coffer_buf_reserve(out, plain.len + COFFER_AEAD_TAG_BYTES);
	if (rc < 0)
		goto out;
	rc = coffer_crypto_aead_seal(out->data + out->len, plain.data, plain.len, ad.data, ad.len,
	                             nonce, key);
	if (rc == 0)
		out->len += plain.len + COFFER_AEAD_TAG_BYTES;
out:
	coffer_buf_free(&ad);
	coffer_buf_free(&plain);
	return rc;
}

int coffer_obj_open(struct coffer_buf *pt, uint8_t kind, const char *name,
                    const unsigned char *store_id, const unsigned char *key, const void *obj,
                    size_t n)
{
	const unsigned char *o = obj;
	struct coffer_buf ad = COFFER_BUF_INIT, plain = COFFER_BUF_INIT;
	size_t hdr = 5 + COFFER_AEAD_NONCE_BYTES, got = 0;
	uint64_t len = 0;
	int rc;

	if (n < hdr + COFFER_AEAD_TAG_BYTES + 8 || memcmp(o, "CFO1", 4) != 0 || o[4] != kind)
		return coffer_err_set(COFFER_ECORRUPT, "snapshot object %s: not a sealed object",
		                      name);
	rc = obj_ad(&ad, kind, name, store_id);
	if (rc == 0)
		rc = coffer_buf_reserve(&plain, n - hdr);
	if (rc < 0)
		goto out;
	if (coffer_crypto_aead_open(plain.data, o + hdr, n - hdr, ad.data, ad.len, o + 5, key) <
	    0) {
		rc = coffer_err_set(
		    COFFER_ECORRUPT,
		    "snapshot object %s: fails authentication (damaged, or wrong key)", name);
		goto out;
	}
	plain.len = n - hdr - COFFER_AEAD_TAG_BYTES;
	for (int i = 7; i >= 0; i--)
		len = (len << 8) | plain.data[i];
	if (len > COFFER_OBJ_MAX_PLAIN) {
		rc = coffer_err_set(COFFER_ECORRUPT, "snapshot object %s: too large", name);
		goto out;
	}
	rc = coffer_buf_reserve(pt, (size_t)len);
	if (rc == 0)
		rc = coffer_decompress(pt->data + pt->len, (size_t)len, plain.data + 8,
		                       plain.len - 8, &got);
	if (rc == 0 && got != len)
		rc = COFFER_ECORRUPT;
	if (rc < 0) {
		rc = coffer_err_set(COFFER_ECORRUPT, "snapshot object %s: damaged contents", name);
		goto out;
	}
	pt->len += got;
	pt->data[pt->len] = '\0';
out:
	coffer_buf_free(&ad);
	coffer_buf_free(&plain);
	return rc;
}

void coffer_snapid_format(int64_t ns, unsigned n, char out[COFFER_SNAPID_MAX])
{
	char iso[COFFER_CLOCK_ISO_MAX];
	size_t j = 0;

	coffer_clock_format(ns, iso); /* 2026-11-29T02:00:00Z */
	for (size_t i = 0; iso[i] && j < COFFER_SNAPID_MAX - 8; i++)
		if (iso[i] != '-' && iso[i] != ':')
			out[j++] = iso[i];
	out[j] = '\0';
	if (n > 0)
		snprintf(out + j, COFFER_SNAPID_MAX - j, "-%u", n);
}

int coffer_snapid_parse(const char *id, int64_t *ns_r)
{
	char iso[32];

	if (strlen(id) < 16 || id[8] != 'T' || id[15] != 'Z')
		return coffer_err_set(COFFER_EINVAL, "'%s' is not a snapshot id", id);
	snprintf(iso, sizeof iso, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", id, id + 4, id + 6, id + 9,
	         id + 11, id + 13);
	if (coffer_clock_parse(iso, ns_r) < 0 || (id[16] != '\0' && id[16] != '-'))
		return coffer_err_set(COFFER_EINVAL, "'%s' is not a snapshot id", id);
	return 0;
}

static void put_str8(struct coffer_buf *b, const char *s)
{
	size_t n = strlen(s);

	coffer_buf_put_u8(b, (uint8_t)n);
	coffer_buf_append(b, s, n);
}

static void put_str16(struct coffer_buf *b, const char *s)
{
	size_t n = strlen(s);

	coffer_buf_put_u8(b, (uint8_t)(n & 0xff));
	coffer_buf_put_u8(b, (uint8_t)(n >> 8));
	coffer_buf_append(b, s, n);
}

static int get_str(struct coffer_rd *rd, int wide, char *dst, size_t cap, char **dup_r)
{
	uint8_t lo = 0, hi = 0;
	const unsigned char *p;
	size_t n;

	coffer_rd_u8(rd, &lo);
	if (wide)
		coffer_rd_u8(rd, &hi);
	n = (size_t)lo | ((size_t)hi << 8);
	if (coffer_rd_bytes(rd, n, &p) < 0 || memchr(p, '\0', n))
		return COFFER_ECORRUPT;
	if (dup_r) {
		*dup_r = strndup((const char *)p, n);
		return *dup_r ? 0 : coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	}
	if (n >= cap)
		return COFFER_ECORRUPT;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

void coffer_manifest_free(struct coffer_manifest *m)
{
	for (uint32_t i = 0; i < m->n_accounts; i++)
		free(m->accounts[i].revs);
	free(m->accounts);
	for (uint32_t i = 0; i < m->n_freed; i++)
		free(m->freed[i]);
	free(m->freed);
	for (uint32_t i = 0; i < m->n_drop; i++)
		free(m->drop[i]);
	free(m->drop);
	memset(m, 0, sizeof *m);
}

int coffer_manifest_add_name(char ***v, uint32_t *n, const char *name)
{
	char **nv;

	if (strlen(name) > MAX_NAME)
		return coffer_err_set(COFFER_ELIMIT, "snapshot: object name too long");
	nv = realloc(*v, ((size_t)*n + 1) * sizeof *nv);
	if (nv == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	*v = nv;
	nv[*n] = strdup(name);
	if (nv[*n] == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	(*n)++;
	return 0;
}

int coffer_manifest_encode(const struct coffer_manifest *m, struct coffer_buf *out)
{
	coffer_buf_append(out, "CFM1", 4);
	put_str8(out, m->id);
	coffer_buf_put_u64le(out, (uint64_t)m->created_at);
	coffer_buf_append(out, m->store_id, COFFER_ID_BYTES);
	coffer_buf_append(out, m->index_key, COFFER_KEY_BYTES);
	put_str8(out, m->keyring);
	coffer_buf_put_u32le(out, m->n_accounts);
	for (uint32_t i = 0; i < m->n_accounts; i++) {
		const struct coffer_snap_account *a = &m->accounts[i];

		coffer_buf_append(out, a->id, COFFER_ID_BYTES);
		coffer_buf_put_u64le(out, a->modseq);
		coffer_buf_put_u64le(out, a->messages);
		coffer_buf_put_u64le(out, a->bytes);
		coffer_buf_put_u64le(out, a->new_bytes);
		coffer_buf_put_u8(out, a->changed);
		put_str8(out, a->full_at);
		coffer_buf_put_u32le(out, a->n_revs);
		for (uint32_t r = 0; r < a->n_revs; r++)
			put_str8(out, a->revs[r]);
	}
	coffer_buf_put_u32le(out, m->n_freed);
	for (uint32_t i = 0; i < m->n_freed; i++)
		put_str16(out, m->freed[i]);
	coffer_buf_put_u32le(out, m->n_drop);
	for (uint32_t i = 0; i < m->n_drop; i++)
		put_str16(out, m->drop[i]);
	return coffer_buf_ok(out);
}

static int get_names(struct coffer_rd *rd, char ***v, uint32_t *n)
{
	uint32_t count;
	int rc = 0;

	if (coffer_rd_u32le(rd, &count) < 0 || count > rd->left / 2)
		return COFFER_ECORRUPT;
	*v = calloc(count ? count : 1, sizeof **v);
	if (*v == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	for (uint32_t i = 0; i < count && rc == 0; i++) {
		rc = get_str(rd, 1, NULL, 0, &(*v)[i]);
		if (rc == 0)
			(*n)++;
	}
	return rc;
}

int coffer_manifest_decode(const void *p, size_t n, struct coffer_manifest *m)
{
	struct coffer_rd rd;
	const unsigned char *magic;
	uint64_t v;
	uint32_t count;
	int rc = 0;

	memset(m, 0, sizeof *m);
	coffer_rd_init(&rd, p, n);
	if (coffer_rd_bytes(&rd, 4, &magic) < 0 || memcmp(magic, "CFM1", 4) != 0)
		return coffer_err_set(COFFER_ECORRUPT, "snapshot: not a manifest");
	rc = get_str(&rd, 0, m->id, sizeof m->id, NULL);
	coffer_rd_u64le(&rd, &v);
	m->created_at = (int64_t)v;
	coffer_rd_copy(&rd, m->store_id, COFFER_ID_BYTES);
	coffer_rd_copy(&rd, m->index_key, COFFER_KEY_BYTES);
	if (rc == 0)
		rc = get_str(&rd, 0, m->keyring, sizeof m->keyring, NULL);
	if (rc == 0 && (coffer_rd_u32le(&rd, &count) < 0 || count > rd.left / 60))
		rc = COFFER_ECORRUPT;
	if (rc == 0) {
		m->accounts = calloc(count ? count : 1, sizeof *m->accounts);
		if (m->accounts == NULL)
			rc = coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	}
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		struct coffer_snap_account *a = &m->accounts[i];
		uint32_t nr;

		coffer_rd_copy(&rd, a->id, COFFER_ID_BYTES);
		coffer_rd_u64le(&rd, &a->modseq);
		coffer_rd_u64le(&rd, &a->messages);
		coffer_rd_u64le(&rd, &a->bytes);
		coffer_rd_u64le(&rd, &a->new_bytes);
		coffer_rd_u8(&rd, &a->changed);
		m->n_accounts++;
		rc = get_str(&rd, 0, a->full_at, sizeof a->full_at, NULL);
		if (rc == 0 && (coffer_rd_u32le(&rd, &nr) < 0 || nr > rd.left))
			rc = COFFER_ECORRUPT;
		if (rc == 0 && nr) {
			a->revs = calloc(nr, sizeof *a->revs);
			if (a->revs == NULL)
				rc = coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
		}
		for (uint32_t r = 0; rc == 0 && r < nr; r++) {
			rc = get_str(&rd, 0, a->revs[r], sizeof a->revs[r], NULL);
			if (rc == 0)
				a->n_revs++;
		}
		if (rc == 0 && i > 0 && memcmp(m->accounts[i - 1].id, a->id, COFFER_ID_BYTES) >= 0)
			rc = COFFER_ECORRUPT;
	}
	if (rc == 0)
		rc = get_names(&rd, &m->freed, &m->n_freed);
	if (rc == 0)
		rc = get_names(&rd, &m->drop, &m->n_drop);
	if (rc == 0 && (rd.failed || rd.left != 0))
		rc = COFFER_ECORRUPT;
	if (rc < 0) {
		coffer_manifest_free(m);
		if (rc == COFFER_ECORRUPT)
			coffer_err_set(rc, "snapshot: damaged manifest");
	}
	return rc;
}

struct coffer_snap_account *coffer_manifest_account(const struct coffer_manifest *m,
                                                    const unsigned char *id)
{
	size_t lo = 0, hi = m->n_accounts;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(m->accounts[mid].id, id, COFFER_ID_BYTES);

		if (c == 0)
			return &m->accounts[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void coffer_keyring_free(struct coffer_keyring *k)
{
	for (uint32_t i = 0; i < k->n; i++)
		free(k->v[i].record);
	free(k->v);
	memset(k, 0, sizeof *k);
}

int coffer_keyring_add(struct coffer_keyring *k, const unsigned char *id, const unsigned char *mac,
                       const void *record, size_t len)
{
	struct coffer_keyring_entry *v = realloc(k->v, ((size_t)k->n + 1) * sizeof *v);

	if (v == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	k->v = v;
	memcpy(v[k->n].id, id, COFFER_ID_BYTES);
	memcpy(v[k->n].name_mac, mac, COFFER_MAC_BYTES);
	v[k->n].record = malloc(len ? len : 1);
	if (v[k->n].record == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	memcpy(v[k->n].record, record, len);
	v[k->n].record_len = len;
	k->n++;
	return 0;
}

int coffer_keyring_encode(const struct coffer_keyring *k, struct coffer_buf *out)
{
	coffer_buf_append(out, "CFR1", 4);
	coffer_buf_put_u32le(out, k->n);
	for (uint32_t i = 0; i < k->n; i++) {
		coffer_buf_append(out, k->v[i].id, COFFER_ID_BYTES);
		coffer_buf_append(out, k->v[i].name_mac, COFFER_MAC_BYTES);
		coffer_buf_put_u32le(out, (uint32_t)k->v[i].record_len);
		coffer_buf_append(out, k->v[i].record, k->v[i].record_len);
	}
	return coffer_buf_ok(out);
}

int coffer_keyring_decode(const void *p, size_t n, struct coffer_keyring *k)
{
	struct coffer_rd rd;
	const unsigned char *magic, *id, *mac, *rec;
	uint32_t count, len;
	int rc = 0;

	memset(k, 0, sizeof *k);
	coffer_rd_init(&rd, p, n);
	if (coffer_rd_bytes(&rd, 4, &magic) < 0 || memcmp(magic, "CFR1", 4) != 0 ||
	    coffer_rd_u32le(&rd, &count) < 0 || count > rd.left / 52)
		return coffer_err_set(COFFER_ECORRUPT, "snapshot: damaged key ring");
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		if (coffer_rd_bytes(&rd, COFFER_ID_BYTES, &id) < 0 ||
		    coffer_rd_bytes(&rd, COFFER_MAC_BYTES, &mac) < 0 ||
		    coffer_rd_u32le(&rd, &len) < 0 || len > 65536 ||
		    coffer_rd_bytes(&rd, len, &rec) < 0 ||
		    (i > 0 && memcmp(k->v[i - 1].id, id, COFFER_ID_BYTES) >= 0)) {
			rc = COFFER_ECORRUPT;
			break;
		}
		rc = coffer_keyring_add(k, id, mac, rec, len);
	}
	if (rc == 0 && rd.left != 0)
		rc = COFFER_ECORRUPT;
	if (rc < 0) {
		coffer_keyring_free(k);
		if (rc == COFFER_ECORRUPT)
			coffer_err_set(rc, "snapshot: damaged key ring");
	}
	return rc;
}

const struct coffer_keyring_entry *coffer_keyring_find(const struct coffer_keyring *k,
                                                       const unsigned char *id)
{
	size_t lo = 0, hi = k->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(k->v[mid].id, id, COFFER_ID_BYTES);

		if (c == 0)
			return &k->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
