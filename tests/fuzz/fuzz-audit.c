/*
 * fuzz-audit.c: libFuzzer target for the audit log line reader of
 * policy/audit.c (coffer_audit_line_parse), which `coffer audit verify` and
 * `coffer audit show` run over STORE/audit.log: a file anyone who can write
 * the store can edit.
 *
 * The input is a log: it is cut into lines as the reader cuts them (at each
 * newline; a line longer than COFFER_AUDIT_LINE_MAX is refused before
 * parsing, a last line without its newline is not parsed), and each line is
 * parsed from an exactly sized heap copy, so that ASan sees any read past
 * its NUL. The whole input is also parsed as one line.
 *
 * Checks on every line: the result is 0 or COFFER_ECORRUPT with a one-line
 * detail; a parsed line's signed part ends where ", \"mac\": " starts, inside
 * the line; every string field is NUL-terminated inside its buffer; the
 * signed part can be MACed as verify does (with a fixed key).
 *
 * Seeds in tests/fuzz/corpus/audit are lines written by coffer itself:
 * snapshot create and prune, terminate, reactivate, purge, restore, the
 * worker's policy-change, snapshot and metadata-expiry, a user name with
 * escapes (SUDO_USER), three chained lines, and a crash-cut line with the
 * recovery entry the next append wrote.
 */
#include "engine/crypto.h"
#include "engine/errors.h"
#include "policy/audit.h"
#include "fuzz-util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_str(const char *s, size_t cap)
{
	if (memchr(s, '\0', cap) == NULL)
		abort();
}

static void parse_one(const char *line, size_t n, uint64_t lineno)
{
	static const unsigned char key[COFFER_KEY_BYTES] = { 1, 2, 3 };
	static struct coffer_audit_line l; /* 8 KiB: not on the fuzzer's stack */
	unsigned char prev[32] = { 0 }, mac[32];
	char *copy = fuzz_cstr((const uint8_t *)line, n);
	size_t len = strlen(copy);
	int rc;

	rc = coffer_audit_line_parse(copy, lineno, &l);
	if (rc != 0) {
		fuzz_check_refusal(rc, COFFER_ECORRUPT);
	} else {
		if (l.signed_len >= len || strncmp(copy + l.signed_len, ", \"mac\": ", 9) != 0)
			abort();
		check_str(l.prev, sizeof l.prev);
		check_str(l.time, sizeof l.time);
		check_str(l.action, sizeof l.action);
		check_str(l.account, sizeof l.account);
		check_str(l.detail, sizeof l.detail);
		if (coffer_crypto_hash_keyed(mac, sizeof mac, key, prev, sizeof prev, copy,
		                             l.signed_len) != 0)
			abort();
	}
	free(copy);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (coffer_crypto_init() < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	uint64_t lineno = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n;

		if (nl == NULL)
			break; /* incomplete: the reader stops there */
		n = (size_t)(nl - p);
		lineno++;
		if (n + 1 > COFFER_AUDIT_LINE_MAX)
			break; /* refused as too long before parsing */
		parse_one(p, n, lineno);
		p = nl + 1;
	}
	if (size <= COFFER_AUDIT_LINE_MAX)
		parse_one((const char *)data, size, 0);
	return 0;
}
