/*
 * test-events.c: the metadata log: encoding, IP helpers, recording
 * (symmetric and sealed boxes; delivery events of one sealer: tag 3, one
 * ephemeral key, each opening), newest-first listing with limit and since
 * (checked against a brute-force model), retention expiry with COFFER_NOW
 * (more than one batch), and purge of one account's events.
 */
#include "tap.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/store.h"
#include "engine/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct coffer_store *st;

static void encoding(void)
{
	struct coffer_buf b = COFFER_BUF_INIT, scratch = COFFER_BUF_INIT;
	struct coffer_event ev, d;
	char ip[COFFER_IP_TEXT_MAX], net[COFFER_IP_TEXT_MAX + 4];
	struct coffer_ip a, c;

	memset(&ev, 0, sizeof ev);
	ev.type = COFFER_EVENT_LOGIN;
	ev.success = 1;
	ev.service = COFFER_SVC_POP3;
	ev.method = COFFER_METHOD_APP_PASSWORD;
	ev.label = "phone";
	coffer_ip_parse("2001:db8:1:2::5", &ev.ip);
	ok(coffer_event_encode(&ev, &b) == 0, "login event encodes");
	ok(coffer_event_decode(b.data, b.len, &scratch, &d) == 0 && d.type == COFFER_EVENT_LOGIN &&
	       d.success == 1 && d.service == COFFER_SVC_POP3 && !strcmp(d.label, "phone") &&
	       d.ip.len == 16 && !memcmp(d.ip.addr, ev.ip.addr, 16),
	   "and decodes");
	for (size_t n = 0; n < b.len; n++)
		if (coffer_event_decode(b.data, n, &scratch, &d) != COFFER_ECORRUPT)
			break;
		else if (n + 1 == b.len)
			ok(1, "every truncation is COFFER_ECORRUPT");
	coffer_buf_putc(&b, 0);
	ok(coffer_event_decode(b.data, b.len, &scratch, &d) == COFFER_ECORRUPT,
	   "trailing byte refused");
	b.data[0] = 9;
	ok(coffer_event_decode(b.data, b.len, &scratch, &d) == COFFER_ECORRUPT,
	   "unknown version refused");
	coffer_buf_reset(&b);
	memset(&ev, 0, sizeof ev);
	ev.type = COFFER_EVENT_DELIVERY;
	ev.size = 123456;
	ev.folder = "Lists/debian";
	ok(coffer_event_encode(&ev, &b) == 0 &&
	       coffer_event_decode(b.data, b.len, &scratch, &d) == 0 && d.size == 123456 &&
	       !strcmp(d.folder, "Lists/debian") && !d.by_id,
	   "delivery event round-trips");
	coffer_buf_reset(&b);
	ev.by_id = 1; /* a spooled delivery's: the folder by id */
	ev.folder_id = 42;
	ok(coffer_event_encode(&ev, &b) == 0 &&
	       coffer_event_decode(b.data, b.len, &scratch, &d) == 0 && d.by_id &&
	       d.folder_id == 42 && !strcmp(d.folder, "") && d.size == 123456,
	   "so does one naming its folder by id (decoded with an empty name)");
	coffer_buf_putc(&b, 0);
	ok(coffer_event_decode(b.data, b.len, &scratch, &d) == COFFER_ECORRUPT,
	   "and a trailing byte after the id is refused");
	ev.type = 7;
	ok(coffer_event_encode(&ev, &b) == COFFER_EINVAL, "unknown type refused");

	ok(coffer_ip_parse("::ffff:192.0.2.1", &a) == 0 && a.len == 4, "v4-mapped v6 is v4");
	coffer_ip_format(&a, ip);
	ok(!strcmp(ip, "192.0.2.1"), "formats as %s", ip);
	ok(coffer_ip_parse("192.0.2.200", &c) == 0 && coffer_ip_same_network(&a, &c), "same /24");
	ok(coffer_ip_parse("192.0.3.1", &c) == 0 && !coffer_ip_same_network(&a, &c),
	   "different /24");
	coffer_ip_network_format(&a, net);
	ok(!strcmp(net, "192.0.2.0/24"), "network %s", net);
	ok(coffer_ip_parse("2001:db8:1:ffff::1", &a) == 0 &&
	       coffer_ip_parse("2001:db8:1::9", &c) == 0 && coffer_ip_same_network(&a, &c),
	   "same /48");
	coffer_ip_network_format(&a, net);
	ok(!strcmp(net, "2001:db8:1::/48"), "network %s", net);
	ok(coffer_ip_parse("2001:db8:2::9", &c) == 0 && !coffer_ip_same_network(&a, &c),
	   "different /48");
	ok(coffer_ip_parse("300.1.1.1", &c) == COFFER_EINVAL &&
	       coffer_ip_parse("", &c) == COFFER_EINVAL,
	   "bad addresses refused");
	ok(coffer_service_parse("IMAP") == COFFER_SVC_IMAP &&
	       coffer_service_parse("submission") == COFFER_SVC_SMTP &&
	       coffer_service_parse("x") == COFFER_SVC_UNKNOWN,
	   "service names");
	coffer_buf_free(&b);
	coffer_buf_free(&scratch);
}

struct rec_args {
	struct coffer_mailbox *mb;
	const int64_t *times;
	size_t n;
	int sealed; /* delivery events: 1 sealed to pk, 2 by sealer */
	struct coffer_sealer *sealer;
};

static int rec_txn(struct coffer_txn *t, void *arg)
{
	struct rec_args *a = arg;
	const struct coffer_acct_secret *s = coffer_mailbox_secret(a->mb);
	int rc = 0;

	for (size_t i = 0; i < a->n && rc == 0; i++) {
		if (a->sealed) {
			rc = coffer_events_record_delivery_txn(t, coffer_mailbox_id(a->mb), s->pk,
			                                       NULL,
			                                       a->sealed == 2 ? a->sealer : NULL,
			                                       a->times[i], i, "INBOX", 5);
		} else {
			struct coffer_event ev;

			memset(&ev, 0, sizeof ev);
			ev.type = COFFER_EVENT_LOGIN;
			ev.at = a->times[i];
			ev.success = (uint8_t)(i & 1);
			ev.service = COFFER_SVC_IMAP;
			ev.label = "";
			rc = coffer_events_record_txn(t, coffer_mailbox_id(a->mb), s->pk, s, &ev);
		}
	}
	return rc;
}

static int record(struct coffer_mailbox *mb, const int64_t *times, size_t n, int sealed)
{
	struct rec_args a = { mb, times, n, sealed, NULL };

	return coffer_index_update(coffer_store_index(st), rec_txn, &a);
}

struct got {
	int64_t *t;
	size_t n, cap;
	int types;
};

static int got_row(const struct coffer_event *ev, void *arg)
{
	struct got *g = arg;

	if (g->n < g->cap)
		g->t[g->n] = ev->at;
	g->n++;
	g->types |= 1 << ev->type;
	return 0;
}

static int cmp_desc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

static void listing(void)
{
	struct coffer_mailbox *mb = NULL, *mb2 = NULL;
	enum { N = 600 };
	int64_t times[N], sorted[N], got_t[N];
	struct got g;
	int bad = 0;
	uint32_t r;

	ok(coffer_account_add(st, "carol@example.org", 17, NULL) == 0, "account carol");
	ok(coffer_account_add(st, "dave@example.org", 16, NULL) == 0, "account dave");
	ok(coffer_mailbox_open(st, "carol@example.org", 17, &mb) == 0, "open carol");
	ok(coffer_mailbox_open(st, "dave@example.org", 16, &mb2) == 0, "open dave");
	for (int i = 0; i < N; i++) {
		coffer_random(&r, sizeof r);
		/* clustered times, many duplicates */
		times[i] = 1700000000LL * COFFER_NS_PER_SEC +
		           (int64_t)(r % 200) * COFFER_NS_PER_SEC * (i % 3 == 0 ? 1000 : 1);
		sorted[i] = times[i];
	}
	qsort(sorted, N, sizeof sorted[0], cmp_desc);
	ok(record(mb, times, N, 0) == 0, "600 login events recorded");
	ok(record(mb2, times, 50, 0) == 0, "50 for dave");
	{
		int64_t d = 1700000000LL * COFFER_NS_PER_SEC;

		ok(record(mb, &d, 1, 1) == 0, "a sealed delivery event recorded");
		sorted[N - 1] = sorted[N - 1]; /* (the delivery is older than all but one) */
	}
	/* limit 20: the 20 newest, newest first. */
	{
		static const size_t limits[] = { 1, 2, 20, 599, 601, 602, 1000 };

		for (size_t li = 0; li < sizeof limits / sizeof limits[0]; li++) {
			size_t lim = limits[li], want = lim < N + 1 ? lim : N + 1;

			memset(&g, 0, sizeof g);
			g.t = got_t;
			g.cap = N;
			bad = coffer_events_list(mb, 0, lim, got_row, &g) != 0 || g.n != want;
			for (size_t i = 0; !bad && i < g.n && i < (size_t)N; i++)
				bad = got_t[i] != sorted[i] && !(i == (size_t)N - 1);
			ok(!bad, "limit %zu: %zu newest, newest first (got %zu)", lim, want, g.n);
		}
	}
	memset(&g, 0, sizeof g);
	g.t = got_t;
	g.cap = N;
	coffer_events_list(mb, 0, 0, got_row, &g);
	ok(g.n == N + 1 && g.types == ((1 << 1) | (1 << 2)), "no limit: all 601, both kinds");
	{
		int64_t since = sorted[99];
		size_t want = 0;

		for (int i = 0; i < N; i++)
			want += sorted[i] >= since;
		memset(&g, 0, sizeof g);
		g.t = got_t;
		g.cap = N;
		coffer_events_list(mb, since, 0, got_row, &g);
		ok(g.n == want, "since: %zu events at or after the 100th newest", want);
		memset(&g, 0, sizeof g);
		g.t = got_t;
		g.cap = N;
		coffer_events_list(mb, since, 20, got_row, &g);
		ok(g.n == 20 && got_t[0] == sorted[0] && got_t[19] == sorted[19], "since + limit");
		memset(&g, 0, sizeof g);
		g.t = got_t;
		g.cap = N;
		coffer_events_scan(mb, since, 0, got_row, &g);
		ok(g.n == want && got_t[0] == sorted[want - 1], "scan: oldest first");
	}
	memset(&g, 0, sizeof g);
	g.t = got_t;
	g.cap = N;
	coffer_events_list(mb2, 0, 100, got_row, &g);
	ok(g.n == 50, "dave's log is his own");
	coffer_mailbox_close(&mb);
	coffer_mailbox_close(&mb2);
}

struct del_args {
	const unsigned char *acct;
	uint64_t n;
	uint64_t left;
	int64_t oldest;
};

static int del_txn(struct coffer_txn *t, void *arg)
{
	struct del_args *a = arg;
	int rc = coffer_events_delete_account_txn(t, a->acct, &a->n);

	if (rc == 0)
		rc = coffer_events_stat_txn(t, a->acct, &a->left, &a->oldest);
	return rc;
}

static int stat_txn(struct coffer_txn *t, void *arg)
{
	struct del_args *a = arg;

	return coffer_events_stat_txn(t, a->acct, &a->left, &a->oldest);
}

/* Raw event values of one account: tag bytes, and the ephemeral keys of
 * tag-3 boxes. */
struct raw_args {
	const unsigned char *acct;
	int tags[4];
	unsigned char epk[8][32];
	int nepk;
};

static int raw_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct raw_args *a = arg;
	const unsigned char *p = v;

	if (vl > 0 && p[0] < 4)
		a->tags[p[0]]++;
	if (vl > 33 && p[0] == COFFER_BOX_SHARED && a->nepk < 8)
		memcpy(a->epk[a->nepk++], p + 1, 32);
	return 0;
}

static int raw_txn(struct coffer_txn *t, void *arg)
{
	struct raw_args *a = arg;

	return coffer_txn_scan(t, COFFER_DB_EVENTS, a->acct, COFFER_ID_BYTES, raw_one, a);
}

struct sizes {
	int n, bad;
	uint64_t sum;
};

static int size_row(const struct coffer_event *ev, void *arg)
{
	struct sizes *z = arg;

	z->n++;
	z->sum += ev->size;
	z->bad |= ev->type != COFFER_EVENT_DELIVERY || strcmp(ev->folder, "INBOX") != 0;
	return 0;
}

static void sealer_events(void)
{
	struct coffer_mailbox *mb = NULL;
	struct coffer_sealer *sealer = NULL;
	struct raw_args raw;
	struct sizes z = { 0, 0, 0 };
	int64_t t0 = 1700000000LL * COFFER_NS_PER_SEC;
	int64_t times[3] = { t0, t0 + 1, t0 + 2 };
	struct rec_args a;

	ok(coffer_account_add(st, "frank@example.org", 17, NULL) == 0 &&
	       coffer_mailbox_open(st, "frank@example.org", 17, &mb) == 0,
	   "account frank");
	if (mb == NULL)
		return;
	ok(coffer_sealer_new(coffer_mailbox_secret(mb)->pk, &sealer) == 0, "a sealer for frank");
	ok(record(mb, times, 1, 1) == 0, "a delivery event sealed to pk (tag 1)");
	a = (struct rec_args){ mb, times, 3, 2, sealer };
	ok(coffer_index_update(coffer_store_index(st), rec_txn, &a) == 0,
	   "three delivery events made by one sealer");
	coffer_sealer_free(&sealer);
	ok(sealer == NULL, "sealer_free clears the pointer");
	coffer_sealer_free(&sealer);
	coffer_sealer_free(NULL);
	memset(&raw, 0, sizeof raw);
	raw.acct = coffer_mailbox_id(mb);
	ok(coffer_index_view(coffer_store_index(st), raw_txn, &raw) == 0 && raw.tags[1] == 1 &&
	       raw.tags[3] == 3 && raw.tags[2] == 0,
	   "stored: one tag 1, three tag 3 boxes");
	ok(raw.nepk == 3 && memcmp(raw.epk[0], raw.epk[1], 32) == 0 &&
	       memcmp(raw.epk[1], raw.epk[2], 32) == 0,
	   "the tag 3 boxes share one ephemeral key");
	ok(coffer_events_scan(mb, 0, 0, size_row, &z) == 0 && z.n == 4 && !z.bad &&
	       z.sum == 0 + 0 + 1 + 2,
	   "all four open: deliveries to INBOX, sizes as recorded");
	{
		/* (out of the way of retention()'s counts) */
		struct del_args da = { coffer_mailbox_id(mb), 0, 0, 0 };

		ok(coffer_index_update(coffer_store_index(st), del_txn, &da) == 0 && da.n == 4,
		   "frank's events purged");
	}
	coffer_mailbox_close(&mb);
}

static void retention(void)
{
	struct coffer_mailbox *mb = NULL, *mb2 = NULL;
	enum { OLD = 12000, NEW = 300 };
	int64_t *times = calloc(OLD + NEW, sizeof *times);
	int64_t now;
	uint64_t removed = 0;
	struct del_args da;
	struct got g;

	setenv("COFFER_NOW", "2026-06-30T00:00:00Z", 1);
	coffer_clock_now(&now);
	ok(coffer_account_add(st, "erin@example.org", 16, NULL) == 0, "account erin");
	coffer_mailbox_open(st, "erin@example.org", 16, &mb);
	coffer_mailbox_open(st, "carol@example.org", 17, &mb2);
	for (int i = 0; i < OLD; i++) /* 181 .. 400 days old */
		times[i] = now - (181 + i % 220) * COFFER_NS_PER_DAY - i;
	for (int i = 0; i < NEW; i++) /* 0 .. 179 days old */
		times[OLD + i] = now - (i % 180) * COFFER_NS_PER_DAY;
	ok(record(mb, times, OLD + NEW, 0) == 0, "12,300 events for erin, 12,000 past 180 days");
	ok(coffer_events_expire(st, now - 180 * COFFER_NS_PER_DAY, &removed) == 0, "expiry runs");
	/* carol's 601 and dave's 50 events (2023) are older than 180 days too. */
	ok(removed == OLD + 601 + 50, "removed erin's 12,000 old, carol's 601, dave's 50 (%llu)",
	   (unsigned long long)removed);
	memset(&g, 0, sizeof g);
	coffer_events_list(mb, 0, 0, got_row, &g);
	ok(g.n == NEW, "erin keeps her 300 recent events");
	memset(&g, 0, sizeof g);
	coffer_events_list(mb2, 0, 0, got_row, &g);
	ok(g.n == 0, "carol keeps none");
	ok(coffer_events_expire(st, now - 180 * COFFER_NS_PER_DAY, &removed) == 0 && removed == 0,
	   "a second run removes nothing (idempotent)");
	da = (struct del_args){ coffer_mailbox_id(mb), 0, 0, 0 };
	coffer_index_view(coffer_store_index(st), stat_txn, &da);
	ok(da.left == NEW && da.oldest >= now - 180 * COFFER_NS_PER_DAY, "stat: count, oldest");
	da = (struct del_args){ coffer_mailbox_id(mb), 0, 0, 0 };
	ok(coffer_index_update(coffer_store_index(st), del_txn, &da) == 0 && da.n == NEW &&
	       da.left == 0,
	   "purge deletes erin's events");
	memset(&g, 0, sizeof g);
	coffer_events_list(mb, 0, 0, got_row, &g);
	ok(g.n == 0, "erin's log is empty");
	coffer_mailbox_close(&mb);
	coffer_mailbox_close(&mb2);
	free(times);
	unsetenv("COFFER_NOW");
}

int main(void)
{
	struct coffer_buf path = COFFER_BUF_INIT, key = COFFER_BUF_INIT;

	coffer_crypto_init();
	encoding();
	coffer_buf_printf(&path, "%s/store", tap_tmpdir());
	coffer_buf_printf(&key, "%s/coffer.key", tap_tmpdir());
	if (coffer_store_init(coffer_buf_str(&path), coffer_buf_str(&key), &st) != 0) {
		ok(0, "store: %s", coffer_errmsg());
		return tap_done();
	}
	listing();
	sealer_events();
	retention();
	coffer_store_close(&st);
	coffer_buf_free(&path);
	coffer_buf_free(&key);
	return tap_done();
}
