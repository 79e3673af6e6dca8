/*
 * state.c: account states and reverse deltas (see state.h).
 *
 * Encoding (before compression), all integers little-endian:
 *   "CFS1" | u32 count | count * ( u8 db | u8 op (1 put, 2 del) |
 *                                  u16 klen | key | [u32 vlen | value] )
 * Records must be strictly increasing by (db, key); a decoder refuses
 * anything else, so a state has one encoding.
 */
#include "state.h"

#include "engine/buf.h"
#include "engine/errors.h"
#include "engine/record.h"

#include <stdlib.h>
#include <string.h>

#define MAX_KEY 512u
#define MAX_VAL (1u << 20)

void coffer_state_free(struct coffer_state *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key);
		free(s->v[i].val);
	}
	free(s->v);
	memset(s, 0, sizeof *s);
}

static int push(struct coffer_state *s, struct coffer_rec r)
{
	if (coffer_array_grow(&s->v, &s->cap, s->n, sizeof *s->v, 256) < 0)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	s->v[s->n++] = r;
	return 0;
}

static int rec_copy(struct coffer_rec *r, uint8_t db, const void *k, size_t klen, const void *v,
                    size_t vlen, int del)
{
	memset(r, 0, sizeof *r);
	if (klen > MAX_KEY || vlen > MAX_VAL)
		return coffer_err_set(COFFER_ELIMIT, "snapshot: record too large");
	r->db = db;
	r->klen = (uint16_t)klen;
	r->key = malloc(klen ? klen : 1);
	if (r->key == NULL)
		return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
	memcpy(r->key, k, klen);
	if (!del) {
		r->vlen = (uint32_t)vlen;
		r->val = malloc(vlen ? vlen : 1);
		if (r->val == NULL) {
			free(r->key);
			return coffer_err_set(COFFER_ENOMEM, "snapshot: out of memory");
		}
		memcpy(r->val, v, vlen);
	}
	return 0;
}

int coffer_state_add(struct coffer_state *s, uint8_t db, const void *k, size_t klen, const void *v,
                     size_t vlen)
{
	struct coffer_rec r;
	int rc;

	rc = rec_copy(&r, db, k, klen, v, vlen, v == NULL);
	if (rc == 0 && (rc = push(s, r)) < 0) {
		free(r.key);
		free(r.val);
	}
	return rc;
}

int coffer_rec_cmp(const struct coffer_rec *a, const struct coffer_rec *b)
{
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c;

	if (a->db != b->db)
		return a->db < b->db ? -1 : 1;
	c = memcmp(a->key, b->key, n);
	if (c)
		return c;
	return a->klen == b->klen ? 0 : (a->klen < b->klen ? -1 : 1);
}

static int cmp_void(const void *a, const void *b)
{
	return coffer_rec_cmp(a, b);
}

void coffer_state_sort(struct coffer_state *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof *s->v, cmp_void);
}

struct dump_args {
	struct coffer_state *s;
	uint8_t db;
};

static int dump_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct dump_args *a = arg;

	return coffer_state_add(a->s, a->db, k, kl, v, vl);
}

int coffer_state_dump_txn(struct coffer_txn *t, const unsigned char *acct, struct coffer_state *s)
{
	/* in enum order, so the result is sorted by (db, key) */
	static const uint8_t dbs[] = { COFFER_DB_FOLDERS, COFFER_DB_KEYWORDS, COFFER_DB_MESSAGES,
		                       COFFER_DB_CTLFILES };
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof dbs; i++) {
		struct dump_args a = { s, dbs[i] };

		rc = coffer_txn_scan(t, dbs[i], acct, COFFER_ID_BYTES, dump_one, &a);
	}
	return rc;
}

int coffer_state_encode(const struct coffer_state *s, struct coffer_buf *out)
{
	coffer_buf_append(out, "CFS1", 4);
	coffer_buf_put_u32le(out, (uint32_t)s->n);
	for (size_t i = 0; i < s->n; i++) {
		const struct coffer_rec *r = &s->v[i];

		coffer_buf_put_u8(out, r->db);
		coffer_buf_put_u8(out, r->val ? 1 : 2);
		coffer_buf_put_u8(out, (uint8_t)(r->klen & 0xff));
		coffer_buf_put_u8(out, (uint8_t)(r->klen >> 8));
		coffer_buf_append(out, r->key, r->klen);
		if (r->val) {
			coffer_buf_put_u32le(out, r->vlen);
			coffer_buf_append(out, r->val, r->vlen);
		}
	}
	return coffer_buf_ok(out);
}

int coffer_state_decode(const void *p, size_t n, struct coffer_state *s)
{
	struct coffer_rd rd;
	const unsigned char *magic, *key, *val;
	uint32_t count, vlen;
	int rc = 0;

	memset(s, 0, sizeof *s);
	coffer_rd_init(&rd, p, n);
	if (coffer_rd_bytes(&rd, 4, &magic) < 0 || memcmp(magic, "CFS1", 4) != 0 ||
	    coffer_rd_u32le(&rd, &count) < 0)
		return coffer_err_set(COFFER_ECORRUPT, "snapshot: not an account state");
	for (uint32_t i = 0; i < count && rc == 0; i++) {
		uint8_t db = 0, op = 0, lo = 0, hi = 0; /* a failed read leaves them */
		struct coffer_rec r;

		coffer_rd_u8(&rd, &db);
		coffer_rd_u8(&rd, &op);
		coffer_rd_u8(&rd, &lo);
		coffer_rd_u8(&rd, &hi);
		if (coffer_rd_bytes(&rd, (size_t)lo | ((size_t)hi << 8), &key) < 0 ||
		    db >= COFFER_DB_COUNT || (op != 1 && op != 2)) {
			rc = COFFER_ECORRUPT;
			break;
		}
		val = NULL;
		vlen = 0;
		if (op == 1 && (coffer_rd_u32le(&rd, &vlen) < 0 || vlen > MAX_VAL ||
		                coffer_rd_bytes(&rd, vlen, &val) < 0)) {
			rc = COFFER_ECORRUPT;
			break;
		}
		rc = rec_copy(&r, db, key, (size_t)lo | ((size_t)hi << 8), val, vlen, op == 2);
		if (rc == 0 && s->n > 0 && coffer_rec_cmp(&s->v[s->n - 1], &r) >= 0) {
			free(r.key);
			free(r.val);
			rc = COFFER_ECORRUPT;
		}
		if (rc == 0 && (rc = push(s, r)) < 0) {
			free(r.key);
			free(r.val);
		}
	}
	if (rc == 0 && (rd.failed || rd.left != 0))
		rc = COFFER_ECORRUPT;
	if (rc < 0) {
		coffer_state_free(s);
		if (rc == COFFER_ECORRUPT)
			coffer_err_set(rc, "snapshot: damaged account state");
	}
	return rc;
}

static int same_value(const struct coffer_rec *a, const struct coffer_rec *b)
{
	return a->vlen == b->vlen && (a->vlen == 0 || memcmp(a->val, b->val, a->vlen) == 0);
}

int coffer_state_diff(const struct coffer_state *prev, const struct coffer_state *cur,
                      struct coffer_state *rev)
{
	size_t i = 0, j = 0;
	int rc = 0;

	while (rc == 0 && (i < prev->n || j < cur->n)) {
		int c = i == prev->n  ? 1
		        : j == cur->n ? -1
		                      : coffer_rec_cmp(&prev->v[i], &cur->v[j]);
		const struct coffer_rec *p = i < prev->n ? &prev->v[i] : NULL;
		const struct coffer_rec *q = j < cur->n ? &cur->v[j] : NULL;

		if (c < 0) { /* removed since prev: put it back */
			rc = coffer_state_add(rev, p->db, p->key, p->klen, p->val, p->vlen);
			i++;
		} else if (c > 0) { /* added since prev: delete it */
			rc = coffer_state_add(rev, q->db, q->key, q->klen, NULL, 0);
			j++;
		} else {
			if (!same_value(p, q))
				rc = coffer_state_add(rev, p->db, p->key, p->klen, p->val, p->vlen);
			i++;
			j++;
		}
	}
	return rc;
}

int coffer_state_apply(struct coffer_state *s, const struct coffer_state *rev)
{
	struct coffer_state out = { NULL, 0, 0 };
	size_t i = 0, j = 0;
	int rc = 0;

	while (rc == 0 && (i < s->n || j < rev->n)) {
		int c = i == s->n ? 1 : j == rev->n ? -1 : coffer_rec_cmp(&s->v[i], &rev->v[j]);

		if (c < 0) {
			rc = push(&out, s->v[i]);
			if (rc == 0)
				s->v[i].key = s->v[i].val = NULL;
			i++;
		} else {
			const struct coffer_rec *d = &rev->v[j];

			if (d->val)
				rc = coffer_state_add(&out, d->db, d->key, d->klen, d->val,
				                      d->vlen);
			if (c == 0)
				i++; /* replaced or deleted; freed below */
			j++;
		}
	}
	coffer_state_free(s);
	if (rc < 0) {
		coffer_state_free(&out);
		return rc;
	}
	*s = out;
	return 0;
}
