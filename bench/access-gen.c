/*
 * access-gen.c: data for bench/access.sh, through the library's own
 * functions (so the events are real account boxes):
 *
 *   access-gen STORE KEYFILE events NAME N
 *       N login events for account NAME, spread evenly over the last 180
 *       days, 10,000 per transaction;
 *   access-gen STORE KEYFILE accounts PREFIX N E
 *       N accounts PREFIX<i>@bench.example with E login events each (a
 *       mix of successes from a home network and failures, some from a few
 *       IPs shared by many accounts).
 */
#include "engine/account.h"
#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/store.h"
#include "engine/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gen {
	struct coffer_mailbox *mb;
	int64_t now;
	uint64_t from, n;
	unsigned idx;
};

static int gen_txn(struct coffer_txn *t, void *arg)
{
	struct gen *g = arg;
	const struct coffer_acct_secret *s = coffer_mailbox_secret(g->mb);
	char ip[64];
	int rc = 0;

	for (uint64_t i = g->from; i < g->from + g->n && rc == 0; i++) {
		struct coffer_event ev;

		memset(&ev, 0, sizeof ev);
		ev.type = COFFER_EVENT_LOGIN;
		ev.at = g->now - 180 * COFFER_NS_PER_DAY +
		        (int64_t)(i * 15552ULL * 1000000ULL) % (180 * COFFER_NS_PER_DAY);
		ev.success = i % 7 != 0;
		ev.service = (uint8_t)(1 + i % 3);
		ev.method = COFFER_METHOD_PASSWORD;
		ev.reason = ev.success ? 0 : COFFER_REASON_BAD_PASSWORD;
		if (ev.success)
			snprintf(ip, sizeof ip, "192.0.2.%u", (unsigned)(i % 200) + 1);
		else
			snprintf(ip, sizeof ip, "203.0.113.%u", (unsigned)((i + g->idx) % 5) + 1);
		coffer_ip_parse(ip, &ev.ip);
		ev.label = "";
		rc = coffer_events_record_txn(t, coffer_mailbox_id(g->mb), s->pk, s, &ev);
	}
	return rc;
}

static int fill(struct coffer_store *st, const char *name, uint64_t n, unsigned idx)
{
	struct gen g = { NULL, 0, 0, 0, idx };
	int rc;

	rc = coffer_clock_now(&g.now);
	if (rc == 0)
		rc = coffer_mailbox_open(st, name, strlen(name), &g.mb);
	for (uint64_t done = 0; rc == 0 && done < n; done += g.n) {
		g.from = done;
		g.n = n - done < 10000 ? n - done : 10000;
		rc = coffer_index_update(coffer_store_index(st), gen_txn, &g);
	}
	coffer_mailbox_close(&g.mb);
	return rc;
}

int main(int argc, char **argv)
{
	struct coffer_store *st = NULL;
	char name[128];
	int rc;

	if (argc < 6 || coffer_crypto_init() < 0) {
		fprintf(stderr,
		        "usage: access-gen STORE KEYFILE events NAME N | accounts PREFIX N E\n");
		return 64;
	}
	rc = coffer_store_open(argv[1], argv[2], &st);
	if (rc == 0 && !strcmp(argv[3], "events")) {
		rc = fill(st, argv[4], strtoull(argv[5], NULL, 10), 0);
	} else if (rc == 0 && !strcmp(argv[3], "accounts") && argc == 7) {
		unsigned long n = strtoul(argv[5], NULL, 10), e = strtoul(argv[6], NULL, 10);

		for (unsigned long i = 0; rc == 0 && i < n; i++) {
			snprintf(name, sizeof name, "%s%lu@bench.example", argv[4], i);
			rc = coffer_account_add(st, name, strlen(name), NULL);
			if (rc == 0 && e)
				rc = fill(st, name, e, (unsigned)i);
		}
	} else if (rc == 0) {
		rc = coffer_err_set(COFFER_EINVAL, "unknown mode %s", argv[3]);
	}
	if (rc < 0)
		fprintf(stderr, "access-gen: %s\n", coffer_errmsg());
	coffer_store_close(&st);
	return rc < 0 ? 1 : 0;
}
