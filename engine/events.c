/*
 * events.c: the per-account metadata log (see events.h for the format).
 *
 * Sections: IP addresses and names; event encoding; recording; listing
 * (newest first, without a reverse cursor); expiry and purge.
 *
 * Listing newest first. The index adapter offers forward scans only
 * (coffer_txn_scan_from). To find the newest `limit` events of an account
 * without reading its whole log, coffer_events_list() binary-searches the
 * time axis for the latest time lo such that at least `limit` events have
 * a time >= lo: each probe is one cursor seek plus at most `limit` steps, and
 * the search takes at most 64 probes. It then reads the events from lo on
 * (about `limit` of them) and returns them in reverse. The cost is
 * O(64 · (log n + limit)), independent of how many events the account has
 * and of how densely they are spread in time.
 *
 * Expiry walks the whole sub-database in key order, account by account: for
 * each account it collects the keys older than the cutoff and then seeks
 * straight to the next account (its id + 1), so accounts with nothing to
 * expire cost one seek. Keys are collected first and deleted after the
 * cursor is closed (never deleting under a live cursor). Each transaction
 * deletes at most COFFER_EVENTS_EXPIRE_BATCH events.
 */
#include "events.h"

#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/names.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EVENT_VERSION 1
#define FOLDER_BY_ID 0xffff /* a delivery's folder length: a folder id follows */

/* ---- IP addresses and names ---- */

int coffer_ip_parse(const char *s, struct coffer_ip *ip_r)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	unsigned char a6[16];

	memset(ip_r, 0, sizeof *ip_r);
	if (s == NULL || strlen(s) >= COFFER_IP_TEXT_MAX)
		return coffer_err_set(COFFER_EINVAL, "events: not an IP address");
	if (inet_pton(AF_INET, s, ip_r->addr) == 1) {
		ip_r->len = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a6) == 1) {
		if (memcmp(a6, mapped, sizeof mapped) == 0) {
			memcpy(ip_r->addr, a6 + 12, 4);
			ip_r->len = 4;
		} else {
			memcpy(ip_r->addr, a6, 16);
			ip_r->len = 16;
		}
		return 0;
	}
	return coffer_err_set(COFFER_EINVAL, "events: not an IP address");
}

void coffer_ip_format(const struct coffer_ip *ip, char *out)
{
	out[0] = '\0';
	if (ip->len == 4)
		inet_ntop(AF_INET, ip->addr, out, COFFER_IP_TEXT_MAX);
	else if (ip->len == 16)
		inet_ntop(AF_INET6, ip->addr, out, COFFER_IP_TEXT_MAX);
}

int coffer_ip_same_network(const struct coffer_ip *a, const struct coffer_ip *b)
{
	if (a->len != b->len || a->len == 0)
		return 0;
	return memcmp(a->addr, b->addr, a->len == 4 ? 3 : 6) == 0;
}

void coffer_ip_network_format(const struct coffer_ip *ip, char *out)
{
	struct coffer_ip net = *ip;

	if (ip->len == 0) {
		out[0] = '\0';
		return;
	}
	memset(net.addr + (ip->len == 4 ? 3 : 6), 0, ip->len == 4 ? 1 : 10);
	coffer_ip_format(&net, out);
	strcat(out, ip->len == 4 ? "/24" : "/48");
}

const char *coffer_service_name(uint8_t service)
{
	switch (service) {
	case COFFER_SVC_IMAP: return "imap";
	case COFFER_SVC_POP3: return "pop3";
	case COFFER_SVC_SMTP: return "smtp";
	case COFFER_SVC_PANEL: return "panel";
	}
	return "unknown";
}

uint8_t coffer_service_parse(const char *s)
{
	if (s == NULL)
		return COFFER_SVC_UNKNOWN;
	if (!strcasecmp(s, "imap"))
		return COFFER_SVC_IMAP;
	if (!strcasecmp(s, "pop3"))
		return COFFER_SVC_POP3;
	if (!strcasecmp(s, "smtp") || !strcasecmp(s, "submission"))
		return COFFER_SVC_SMTP;
	if (!strcasecmp(s, "panel"))
		return COFFER_SVC_PANEL;
	return COFFER_SVC_UNKNOWN;
}

const char *coffer_login_method_name(uint8_t method)
{
	switch (method) {
	case COFFER_METHOD_PASSWORD: return "password";
	case COFFER_METHOD_APP_PASSWORD: return "app-password";
	case COFFER_METHOD_PASSWORD_TOTP: return "password+totp";
	}
	return "none";
}

const char *coffer_login_reason_name(uint8_t reason)
{
	static const char *const names[COFFER_REASON_COUNT] = {
		"",
		"bad-password",
		"revoked-app-password",
		"two-factor-requires-app-password",
		"bad-totp",
		"totp-replayed",
		"missing-totp",
		"account-terminated",
		"no-password-set",
	};

	return reason < COFFER_REASON_COUNT ? names[reason] : "unknown";
}

/* ---- encoding ---- */

int coffer_event_encode(const struct coffer_event *ev, struct coffer_buf *out)
{
	size_t n;

	coffer_buf_put_u8(out, EVENT_VERSION);
	coffer_buf_put_u8(out, ev->type);
	if (ev->type == COFFER_EVENT_LOGIN) {
		n = ev->label ? strlen(ev->label) : 0;
		if (n > COFFER_EVENT_LABEL_MAX ||
		    (ev->ip.len != 0 && ev->ip.len != 4 && ev->ip.len != 16))
			return coffer_err_set(COFFER_EINVAL, "events: login event out of bounds");
		coffer_buf_put_u8(out, ev->success ? 1 : 0);
		coffer_buf_put_u8(out, ev->service);
		coffer_buf_put_u8(out, ev->method);
		coffer_buf_put_u8(out, ev->reason);
		coffer_buf_put_u8(out, ev->ip.len);
		coffer_buf_append(out, ev->ip.addr, ev->ip.len);
		coffer_buf_put_u8(out, (uint8_t)n);
		coffer_buf_append(out, ev->label, n);
	} else if (ev->type == COFFER_EVENT_DELIVERY && ev->by_id) {
		coffer_buf_put_u64le(out, ev->size);
		coffer_buf_put_u8(out, 0xff);
		coffer_buf_put_u8(out, 0xff);
		coffer_buf_put_u32le(out, ev->folder_id);
	} else if (ev->type == COFFER_EVENT_DELIVERY) {
		n = strlen(ev->folder);
		if (n > COFFER_EVENT_FOLDER_MAX)
			return coffer_err_set(COFFER_EINVAL, "events: folder name too long");
		coffer_buf_put_u64le(out, ev->size);
		coffer_buf_put_u8(out, (uint8_t)(n & 0xff));
		coffer_buf_put_u8(out, (uint8_t)(n >> 8));
		coffer_buf_append(out, ev->folder, n);
	} else {
		return coffer_err_set(COFFER_EINVAL, "events: unknown event type %u", ev->type);
	}
	return coffer_buf_ok(out);
}

int coffer_event_decode(const void *p, size_t n, struct coffer_buf *scratch,
                        struct coffer_event *ev)
{
	struct coffer_rd r;
	const unsigned char *s;
	uint8_t version, lo, hi, len;
	size_t label_at, folder_len;

	memset(ev, 0, sizeof *ev);
	coffer_buf_reset(scratch);
	coffer_rd_init(&r, p, n);
	coffer_rd_u8(&r, &version);
	coffer_rd_u8(&r, &ev->type);
	if (r.failed || version != EVENT_VERSION)
		goto corrupt;
	if (ev->type == COFFER_EVENT_LOGIN) {
		coffer_rd_u8(&r, &ev->success);
		coffer_rd_u8(&r, &ev->service);
		coffer_rd_u8(&r, &ev->method);
		coffer_rd_u8(&r, &ev->reason);
		coffer_rd_u8(&r, &ev->ip.len);
		if (r.failed || (ev->ip.len != 0 && ev->ip.len != 4 && ev->ip.len != 16))
			goto corrupt;
		coffer_rd_copy(&r, ev->ip.addr, ev->ip.len);
		coffer_rd_u8(&r, &len);
		if (r.failed || len > COFFER_EVENT_LABEL_MAX)
			goto corrupt;
		coffer_rd_bytes(&r, len, &s);
		if (r.failed || memchr(s, 0, len))
			goto corrupt;
		label_at = scratch->len;
		coffer_buf_append(scratch, s, len);
		coffer_buf_putc(scratch, 0);
		if (coffer_buf_ok(scratch) < 0)
			return coffer_err_set(COFFER_ENOMEM, "events: out of memory");
		ev->label = (const char *)scratch->data + label_at;
		ev->folder = "";
	} else if (ev->type == COFFER_EVENT_DELIVERY) {
		coffer_rd_u64le(&r, &ev->size);
		coffer_rd_u8(&r, &lo);
		coffer_rd_u8(&r, &hi);
		folder_len = (size_t)lo | (size_t)hi << 8;
		if (!r.failed && folder_len == FOLDER_BY_ID) {
			coffer_rd_u32le(&r, &ev->folder_id);
			if (r.failed || r.left != 0)
				goto corrupt;
			ev->by_id = 1;
			ev->folder = ""; /* open_event() resolves it */
			ev->label = "";
			return 0;
		}
		if (r.failed || folder_len > COFFER_EVENT_FOLDER_MAX)
			goto corrupt;
		coffer_rd_bytes(&r, folder_len, &s);
		if (r.failed || memchr(s, 0, folder_len))
			goto corrupt;
		coffer_buf_append(scratch, s, folder_len);
		if (coffer_buf_ok(scratch) < 0)
			return coffer_err_set(COFFER_ENOMEM, "events: out of memory");
		ev->folder = coffer_buf_str(scratch);
		ev->label = "";
	} else {
		goto corrupt;
	}
	if (r.left != 0)
		goto corrupt;
	return 0;
corrupt:
	return coffer_err_set(COFFER_ECORRUPT, "events: damaged event record");
}

/* ---- recording ---- */

static void event_key(unsigned char *k, const unsigned char *acct, int64_t at, uint32_t rnd)
{
	memcpy(k, acct, COFFER_ID_BYTES);
	coffer_put_u64be(k + COFFER_ID_BYTES, at < 0 ? 0 : (uint64_t)at);
	coffer_put_u32be(k + COFFER_ID_BYTES + 8, rnd);
}

static int64_t key_time(const unsigned char *k)
{
	uint64_t t = coffer_get_u64be(k + COFFER_ID_BYTES);

	return t > INT64_MAX ? INT64_MAX : (int64_t)t;
}

static int record_txn(struct coffer_txn *t, const unsigned char *acct, const unsigned char *pk,
                      const struct coffer_acct_secret *secret, struct coffer_sealer *sealer,
                      const struct coffer_event *ev)
{
	struct coffer_buf plain = COFFER_BUF_INIT, box = COFFER_BUF_INIT;
	unsigned char key[COFFER_EVENT_KEY_BYTES];
	uint32_t rnd;
	int rc, tries;

	rc = coffer_event_encode(ev, &plain);
	if (rc < 0)
		goto out;
	/* The random suffix keeps two events of the same nanosecond apart;
	 * on the (2^-32) chance of a clash, draw again. */
	for (tries = 0; tries < 4; tries++) {
		coffer_random(&rnd, sizeof rnd);
		event_key(key, acct, ev->at, rnd);
		coffer_buf_reset(&box);
		if (secret)
			rc = coffer_box_sym(&box, plain.data, plain.len, key, sizeof key, secret);
		else if (sealer)
			rc = coffer_box_seal_with(&box, plain.data, plain.len, key, sizeof key,
			                          sealer);
		else
			rc = coffer_box_seal(&box, plain.data, plain.len, key, sizeof key, pk);
		if (rc < 0)
			goto out;
		rc = coffer_txn_put(t, COFFER_DB_EVENTS, key, sizeof key, box.data, box.len,
		                    COFFER_PUT_NOOVERWRITE);
		if (rc != COFFER_EEXIST)
			break;
	}
out:
	coffer_buf_free(&plain);
	coffer_buf_free(&box);
	return rc;
}

int coffer_events_record_txn(struct coffer_txn *t, const unsigned char *acct,
                             const unsigned char pk[COFFER_PK_BYTES],
                             const struct coffer_acct_secret *secret, const struct coffer_event *ev)
{
	return record_txn(t, acct, pk, secret, NULL, ev);
}

int coffer_events_record_delivery_txn(struct coffer_txn *t, const unsigned char *acct,
                                      const unsigned char pk[COFFER_PK_BYTES],
                                      const struct coffer_acct_secret *secret,
                                      struct coffer_sealer *sealer, int64_t at, uint64_t size,
                                      const char *folder, size_t flen)
{
	struct coffer_event ev;
	struct coffer_buf f = COFFER_BUF_INIT;
	int rc;

	if (flen > COFFER_EVENT_FOLDER_MAX || memchr(folder, 0, flen))
		return coffer_err_set(COFFER_EINVAL,
		                      "events: bad folder name for a delivery event");
	coffer_buf_append(&f, folder, flen);
	rc = coffer_buf_ok(&f);
	if (rc == 0) {
		memset(&ev, 0, sizeof ev);
		ev.type = COFFER_EVENT_DELIVERY;
		ev.at = at;
		ev.size = size;
		ev.folder = coffer_buf_str(&f);
		rc = record_txn(t, acct, pk, secret, sealer, &ev);
	}
	coffer_buf_free(&f);
	return rc;
}

int coffer_events_record_delivery_id_txn(struct coffer_txn *t, const unsigned char *acct,
                                         struct coffer_sealer *sealer, int64_t at, uint64_t size,
                                         uint32_t folder_id)
{
	struct coffer_event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = COFFER_EVENT_DELIVERY;
	ev.at = at;
	ev.size = size;
	ev.by_id = 1;
	ev.folder_id = folder_id;
	return record_txn(t, acct, NULL, NULL, sealer, &ev);
}

/* ---- reading ---- */

struct open_ctx {
	const struct coffer_acct_secret *secret;
	struct coffer_buf plain;
	struct coffer_buf scratch;
	/* where a folder named by id is read: the caller's transaction t, or a
	 * view of st's index of its own */
	struct coffer_store *st;
	struct coffer_txn *t;
};

struct folder_args {
	const unsigned char *acct;
	uint32_t fid;
	const struct coffer_acct_secret *secret;
	struct coffer_buf *out;
};

static int folder_name_txn(struct coffer_txn *t, void *arg)
{
	struct folder_args *a = arg;
	struct coffer_folder_rec rec;
	int rc;

	rc = coffer_folder_get_txn(t, a->acct, a->fid, &rec);
	if (rc == 0)
		rc = coffer_folder_name_open(a->acct, a->fid, rec.name_box, rec.name_box_len,
		                             a->secret, a->out);
	if (rc == COFFER_ENOTFOUND) {
		coffer_err_clear();
		coffer_buf_puts(a->out, "(deleted folder)");
		rc = coffer_buf_ok(a->out);
	}
	return rc;
}

static int open_event(struct open_ctx *o, const unsigned char *key, const void *val, size_t vlen,
                      struct coffer_event *ev)
{
	int rc;

	coffer_buf_reset(&o->plain);
	rc = coffer_box_open(&o->plain, val, vlen, key, COFFER_EVENT_KEY_BYTES, o->secret);
	if (rc < 0)
		return coffer_err_set(COFFER_ECORRUPT, "events: an event cannot be decrypted");
	rc = coffer_event_decode(o->plain.data, o->plain.len, &o->scratch, ev);
	if (rc == 0 && ev->by_id) {
		struct folder_args fa = { key, ev->folder_id, o->secret, &o->scratch };

		rc = o->t ? folder_name_txn(o->t, &fa)
		          : coffer_index_view(coffer_store_index(o->st), folder_name_txn, &fa);
		if (rc == 0)
			ev->folder = coffer_buf_str(&o->scratch);
	}
	if (rc == 0)
		ev->at = key_time(key);
	return rc;
}

static void open_ctx_free(struct open_ctx *o)
{
	coffer_buf_free(&o->plain);
	coffer_buf_free(&o->scratch);
}

struct scan_args {
	struct open_ctx o;
	int64_t until;
	coffer_event_fn fn;
	void *arg;
};

static int scan_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct scan_args *a = arg;
	struct coffer_event ev;
	int rc;

	if (kl != COFFER_EVENT_KEY_BYTES)
		return coffer_err_set(COFFER_ECORRUPT, "events: damaged event key");
	if (a->until && key_time(k) >= a->until)
		return 1;
	rc = open_event(&a->o, k, v, vl, &ev);
	if (rc < 0)
		return rc;
	return a->fn(&ev, a->arg);
}

int coffer_events_scan_txn(struct coffer_txn *t, const unsigned char *acct,
                           const struct coffer_acct_secret *secret, int64_t since, int64_t until,
                           coffer_event_fn fn, void *arg)
{
	struct scan_args a = { { secret, COFFER_BUF_INIT, COFFER_BUF_INIT, NULL, t },
		               until,
		               fn,
		               arg };
	unsigned char start[COFFER_EVENT_KEY_BYTES];
	int rc;

	event_key(start, acct, since, 0);
	rc = coffer_txn_scan_from(t, COFFER_DB_EVENTS, acct, COFFER_ID_BYTES, start, sizeof start,
	                          scan_one, &a);
	open_ctx_free(&a.o);
	return rc;
}

struct scan_view {
	struct coffer_mailbox *mb;
	int64_t since, until;
	coffer_event_fn fn;
	void *arg;
};

static int scan_view_txn(struct coffer_txn *t, void *arg)
{
	struct scan_view *s = arg;

	return coffer_events_scan_txn(t, coffer_mailbox_id(s->mb), coffer_mailbox_secret(s->mb),
	                              s->since, s->until, s->fn, s->arg);
}

int coffer_events_scan(struct coffer_mailbox *mb, int64_t since, int64_t until, coffer_event_fn fn,
                       void *arg)
{
	struct scan_view s = { mb, since, until, fn, arg };

	return coffer_index_view(coffer_store_index(coffer_mailbox_store(mb)), scan_view_txn, &s);
}

/* Counting probe: stops after `cap` keys. */
struct count_args {
	size_t n, cap;
};

static int count_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct count_args *c = arg;

	return ++c->n >= c->cap ? 1 : 0;
}

static int count_from(struct coffer_txn *t, const unsigned char *acct, int64_t lo, size_t cap,
                      size_t *n_r)
{
	struct count_args c = { 0, cap };
	unsigned char start[COFFER_EVENT_KEY_BYTES];
	int rc;

	event_key(start, acct, lo, 0);
	rc = coffer_txn_scan_from(t, COFFER_DB_EVENTS, acct, COFFER_ID_BYTES, start, sizeof start,
	                          count_one, &c);
	*n_r = c.n;
	return rc;
}

/* One collected event: its key and a copy of its box. */
struct held {
	unsigned char key[COFFER_EVENT_KEY_BYTES];
	struct coffer_buf box;
};

struct collect_args {
	struct held *v;
	size_t n, cap;
};

static int collect_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct collect_args *c = arg;
	struct held *h;

	if (kl != COFFER_EVENT_KEY_BYTES)
		return coffer_err_set(COFFER_ECORRUPT, "events: damaged event key");
	if (c->n == c->cap) {
		size_t old = c->cap;

		if (coffer_array_grow(&c->v, &c->cap, c->n, sizeof *c->v, 32) < 0)
			return coffer_err_set(COFFER_ENOMEM, "events: out of memory");
		memset(c->v + old, 0, (c->cap - old) * sizeof *c->v);
	}
	h = &c->v[c->n++];
	memcpy(h->key, k, kl);
	coffer_buf_reset(&h->box);
	coffer_buf_append(&h->box, v, vl);
	return coffer_buf_ok(&h->box);
}

struct list_args {
	struct coffer_mailbox *mb;
	int64_t since;
	size_t limit;
	struct collect_args c;
};

static int list_txn(struct coffer_txn *t, void *arg)
{
	struct list_args *a = arg;
	const unsigned char *acct = coffer_mailbox_id(a->mb);
	unsigned char start[COFFER_EVENT_KEY_BYTES];
	int64_t lo = a->since < 0 ? 0 : a->since, hi = INT64_MAX;
	size_t n;
	int rc;

	a->c.n = 0;
	if (a->limit) {
		/* Invariant: count(>= lo) >= limit, count(>= hi) < limit. */
		rc = count_from(t, acct, lo, a->limit, &n);
		if (rc < 0)
			return rc;
		if (n >= a->limit) {
			while (hi - lo > 1) {
				int64_t mid = lo + (hi - lo) / 2;

				rc = count_from(t, acct, mid, a->limit, &n);
				if (rc < 0)
					return rc;
				if (n >= a->limit)
					lo = mid;
				else
					hi = mid;
			}
		}
	}
	event_key(start, acct, lo, 0);
	return coffer_txn_scan_from(t, COFFER_DB_EVENTS, acct, COFFER_ID_BYTES, start, sizeof start,
	                            collect_one, &a->c);
}

int coffer_events_list(struct coffer_mailbox *mb, int64_t since, size_t limit, coffer_event_fn fn,
                       void *arg)
{
	struct list_args a;
	struct open_ctx o = { coffer_mailbox_secret(mb), COFFER_BUF_INIT, COFFER_BUF_INIT,
		              coffer_mailbox_store(mb), NULL };
	struct coffer_event ev;
	size_t i, emitted = 0;
	int rc;

	memset(&a, 0, sizeof a);
	a.mb = mb;
	a.since = since;
	a.limit = limit;
	rc = coffer_index_view(coffer_store_index(coffer_mailbox_store(mb)), list_txn, &a);
	for (i = a.c.n; rc == 0 && i > 0 && (limit == 0 || emitted < limit); i--) {
		struct held *h = &a.c.v[i - 1];

		rc = open_event(&o, h->key, h->box.data, h->box.len, &ev);
		if (rc == 0)
			rc = fn(&ev, arg);
		emitted++;
	}
	if (rc > 0)
		rc = 0;
	for (i = 0; i < a.c.cap; i++)
		coffer_buf_free(&a.c.v[i].box);
	free(a.c.v);
	open_ctx_free(&o);
	return rc;
}

struct type_args {
	uint8_t type;
	size_t matched, seen, limit;
	coffer_event_fn fn; /* NULL: count only */
	void *arg;
};

static int type_one(const struct coffer_event *ev, void *arg)
{
	struct type_args *a = arg;

	a->seen++;
	if (ev->type != a->type)
		return 0;
	a->matched++;
	if (a->fn) {
		int rc = a->fn(ev, a->arg);

		if (rc != 0)
			return rc;
	}
	return a->limit && a->matched >= a->limit ? 1 : 0;
}

int coffer_events_list_type(struct coffer_mailbox *mb, uint8_t type, int64_t since, size_t limit,
                            coffer_event_fn fn, void *arg)
{
	struct type_args a = { type, 0, 0, limit, NULL, NULL };
	size_t window = limit;
	int rc;

	if (type == 0)
		return coffer_events_list(mb, since, limit, fn, arg);
	if (limit == 0) {
		a.fn = fn;
		a.arg = arg;
		return coffer_events_list(mb, since, 0, type_one, &a);
	}
	/* Dry runs: widen the window until it holds limit events of the type
	 * or everything there is. */
	for (;;) {
		a.matched = a.seen = 0;
		rc = coffer_events_list(mb, since, window, type_one, &a);
		if (rc < 0)
			return rc;
		if (a.matched >= limit || a.seen < window || window > SIZE_MAX / 4)
			break;
		window *= 4;
	}
	a.matched = a.seen = 0;
	a.fn = fn;
	a.arg = arg;
	return coffer_events_list(mb, since, window, type_one, &a);
}

/* ---- expiry and purge ---- */

struct expire_txn_args {
	int64_t before;
	unsigned char pos[COFFER_EVENT_KEY_BYTES];  /* where this batch starts */
	unsigned char next[COFFER_EVENT_KEY_BYTES]; /* where the next one starts */
	int done;                                   /* the whole db was walked */
	struct coffer_buf keys;
	size_t nkeys;
	/* per scan */
	int jump; /* the current account has nothing more to expire */
	unsigned char acct[COFFER_ID_BYTES];
	int full;
	int any;
};

static int expire_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct expire_txn_args *a = arg;

	a->any = 1;
	if (kl != COFFER_EVENT_KEY_BYTES) {
		/* Not an event key: skip past it. */
		memcpy(a->acct, k, kl < COFFER_ID_BYTES ? kl : COFFER_ID_BYTES);
		if (kl < COFFER_ID_BYTES)
			memset(a->acct + kl, 0, COFFER_ID_BYTES - kl);
		a->jump = 1;
		return 1;
	}
	if (key_time(k) >= a->before) {
		memcpy(a->acct, k, COFFER_ID_BYTES);
		a->jump = 1;
		return 1;
	}
	if (a->nkeys == COFFER_EVENTS_EXPIRE_BATCH) {
		memcpy(a->next, k, COFFER_EVENT_KEY_BYTES);
		a->full = 1;
		return 1;
	}
	coffer_buf_append(&a->keys, k, kl);
	a->nkeys++;
	return coffer_buf_ok(&a->keys);
}

/* acct + 1 as a 128-bit big-endian number; 0 if acct was all ones. */
static int next_acct(unsigned char *acct)
{
	for (int i = COFFER_ID_BYTES - 1; i >= 0; i--) {
		if (++acct[i] != 0)
			return 1;
	}
	return 0;
}

static int expire_txn(struct coffer_txn *t, void *arg)
{
	struct expire_txn_args *a = arg;
	unsigned char cur[COFFER_EVENT_KEY_BYTES];
	size_t i;
	int rc;

	coffer_buf_reset(&a->keys);
	a->nkeys = 0;
	a->done = 0;
	a->full = 0;
	memcpy(cur, a->pos, sizeof cur);
	for (;;) {
		a->jump = 0;
		a->any = 0;
		rc = coffer_txn_scan_from(t, COFFER_DB_EVENTS, cur, 0, cur, sizeof cur, expire_one,
		                          a);
		if (rc < 0)
			return rc;
		if (a->full)
			break;
		if (!a->any || !a->jump) {
			a->done = 1;
			break;
		}
		if (!next_acct(a->acct)) {
			a->done = 1;
			break;
		}
		memset(cur, 0, sizeof cur);
		memcpy(cur, a->acct, COFFER_ID_BYTES);
	}
	for (i = 0; i < a->nkeys; i++) {
		rc = coffer_txn_del(t, COFFER_DB_EVENTS, a->keys.data + i * COFFER_EVENT_KEY_BYTES,
		                    COFFER_EVENT_KEY_BYTES);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int coffer_events_expire(struct coffer_store *st, int64_t before_ns, uint64_t *removed_r)
{
	struct expire_txn_args a;
	uint64_t removed = 0;
	int rc;

	memset(&a, 0, sizeof a);
	a.before = before_ns;
	for (;;) {
		rc = coffer_index_update(coffer_store_index(st), expire_txn, &a);
		if (rc < 0)
			break;
		removed += a.nkeys;
		if (a.done)
			break;
		memcpy(a.pos, a.next, sizeof a.pos);
	}
	coffer_buf_free(&a.keys);
	if (removed_r)
		*removed_r = removed;
	if (rc < 0)
		return coffer_err_prefix(rc, "events: expiry: ");
	return 0;
}

int coffer_events_delete_account_txn(struct coffer_txn *t, const unsigned char *acct,
                                     uint64_t *removed_r)
{
	return coffer_txn_del_prefix(t, COFFER_DB_EVENTS, acct, COFFER_ID_BYTES, removed_r);
}

struct stat_args {
	uint64_t n;
	int64_t oldest;
};

static int stat_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct stat_args *s = arg;

	if (kl != COFFER_EVENT_KEY_BYTES)
		return 0;
	if (s->n++ == 0)
		s->oldest = key_time(k);
	return 0;
}

int coffer_events_stat_txn(struct coffer_txn *t, const unsigned char *acct, uint64_t *count_r,
                           int64_t *oldest_r)
{
	struct stat_args s = { 0, 0 };
	int rc;

	rc = coffer_txn_scan(t, COFFER_DB_EVENTS, acct, COFFER_ID_BYTES, stat_one, &s);
	*count_r = s.n;
	*oldest_r = s.oldest;
	return rc;
}
