/*
 * test-audit.c: the hash-chained audit log (policy/audit.h).
 *
 * A log of entries verifies; tampering with an entry (one byte of its
 * detail, its action, its time), deleting one, reordering two, cutting the
 * tail, or splicing in an entry from another store are each detected, and
 * the error names the first broken entry. A partial last line (a crash
 * mid-append) is reported and repaired by the next append; a tail longer
 * than an entry without a newline is refused, not cut. Pseudonyms are
 * stable, differ per account and per store, and never contain the name.
 */
#include "tap.h"

#include "engine/errors.h"
#include "engine/store.h"
#include "policy/audit.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char store_path[1024], key_path[1024], log_path[1100], saved[1100];
static struct coffer_store *st;

static char *slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	char *b;
	long len;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)len + 1);
	if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b) {
		b[len] = '\0';
		*n = (size_t)len;
	}
	return b;
}

static void spit(const char *p, const char *b, size_t n)
{
	FILE *f = fopen(p, "wb");

	if (f) {
		fwrite(b, 1, n, f);
		fclose(f);
	}
}

static void restore_log(void)
{
	size_t n;
	char *b = slurp(saved, &n);

	spit(log_path, b, n);
	free(b);
}

/* Splits the saved log into lines (pointers into a copy). */
static int lines_of(char *b, char **v, int max)
{
	int n = 0;

	for (char *p = b; *p && n < max;) {
		char *nl = strchr(p, '\n');

		v[n++] = p;
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	return n;
}

static void write_lines(char **v, int n)
{
	FILE *f = fopen(log_path, "wb");

	for (int i = 0; f && i < n; i++)
		fprintf(f, "%s\n", v[i]);
	if (f)
		fclose(f);
}

/* Verifies; returns the rc and copies the error detail. */
static int verify(char *detail, size_t cap, uint64_t *entries)
{
	int rc = coffer_audit_verify(st, entries);

	snprintf(detail, cap, "%s", rc ? coffer_errmsg() : "");
	return rc;
}

static void test_tamper(void)
{
	char detail[512], *v[64], *b;
	size_t n;
	uint64_t entries;
	int nl, rc;

	b = slurp(saved, &n);
	nl = lines_of(b, v, 64);
	ok(nl == 10, "the log has 10 lines (%d)", nl);

	/* tampering: change one byte of entry 4's detail */
	{
		char *p = strstr(v[3], "count=");
		char orig = p ? p[6] : 0;

		if (p)
			p[6] = orig == '9' ? '8' : '9';
		write_lines(v, nl);
		rc = verify(detail, sizeof detail, &entries);
		ok(rc == COFFER_ECORRUPT && strstr(detail, "entry 4 ") && strstr(detail, "altered"),
		   "a changed detail is detected at entry 4: %s", detail);
		ok(entries == 3, "three good entries before it (%llu)",
		   (unsigned long long)entries);
		if (p)
			p[6] = orig;
	}
	/* tampering: the action */
	{
		char *p = strstr(v[6], "\"action\": \"");

		if (p)
			p[11] ^= 0x20;
		write_lines(v, nl);
		rc = verify(detail, sizeof detail, &entries);
		ok(rc == COFFER_ECORRUPT && strstr(detail, "entry 7 "), "a changed action: %s",
		   detail);
		if (p)
			p[11] ^= 0x20;
	}
	/* deleting entry 5 */
	{
		char *w[64];
		int k = 0;

		for (int i = 0; i < nl; i++)
			if (i != 4)
				w[k++] = v[i];
		write_lines(w, k);
		rc = verify(detail, sizeof detail, &entries);
		ok(rc == COFFER_ECORRUPT && strstr(detail, "entry 6 ") && strstr(detail, "line 5"),
		   "a deleted entry is detected at the next one: %s", detail);
	}
	/* reordering entries 3 and 4 */
	{
		char *t = v[2];

		v[2] = v[3];
		v[3] = t;
		write_lines(v, nl);
		rc = verify(detail, sizeof detail, &entries);
		ok(rc == COFFER_ECORRUPT && strstr(detail, "entry 4 ") && strstr(detail, "line 3"),
		   "reordered entries are detected at the first moved one: %s", detail);
		v[3] = v[2];
		v[2] = t;
	}
	/* cutting the tail (last two entries) */
	write_lines(v, nl - 2);
	rc = verify(detail, sizeof detail, &entries);
	ok(rc == COFFER_ECORRUPT && strstr(detail, "cut off"), "a cut tail is detected: %s",
	   detail);
	/* cutting everything */
	write_lines(v, 0);
	rc = verify(detail, sizeof detail, &entries);
	ok(rc == COFFER_ECORRUPT, "an emptied log is detected: %s", detail);
	/* replacing the last entry by a recomputed-looking copy of an older one */
	{
		char *w[64];

		for (int i = 0; i < nl; i++)
			w[i] = v[i];
		w[nl - 1] = v[nl - 2];
		write_lines(w, nl);
		rc = verify(detail, sizeof detail, &entries);
		ok(rc == COFFER_ECORRUPT, "a duplicated entry is detected: %s", detail);
	}
	/* a garbage line */
	{
		char *w[64];

		for (int i = 0; i < nl; i++)
			w[i] = v[i];
		w[2] = "not json at all";
		write_lines(w, nl);
		rc = verify(detail, sizeof detail, &entries);
		ok(rc == COFFER_ECORRUPT && strstr(detail, "line 3"), "a garbage line: %s", detail);
	}
	write_lines(v, nl);
	ok(verify(detail, sizeof detail, &entries) == 0 && entries == 10,
	   "the untouched log verifies again");
	free(b);
}

static void test_partial(void)
{
	char detail[512];
	uint64_t entries;
	size_t n;
	char *b;
	int rc;

	restore_log();
	b = slurp(log_path, &n);
	spit(log_path, b, n);
	{
		FILE *f = fopen(log_path, "ab");

		fputs("{\"seq\": 11, \"time\": \"2026-", f);
		fclose(f);
	}
	rc = verify(detail, sizeof detail, &entries);
	ok(rc == COFFER_ECORRUPT && strstr(detail, "line 11") && strstr(detail, "incomplete"),
	   "a partial last line is reported: %s", detail);
	ok(coffer_audit_append(st, "snapshot", NULL, "after crash") == 0, "the next append works");
	rc = verify(detail, sizeof detail, &entries);
	ok(rc == 0 && entries == 12, "it repaired the log and recorded the recovery (%llu): %s",
	   (unsigned long long)entries, detail);
	free(b);
	b = slurp(log_path, &n);
	ok(b && strstr(b, "\"action\": \"recovery\""), "a recovery entry is in the log");
	free(b);

	/* more than an entry's worth of bytes without a newline is no crash's
	 * doing: the append refuses rather than cut the log down to nothing */
	b = slurp(log_path, &n);
	{
		FILE *f = fopen(log_path, "ab");

		for (int i = 0; f && i < COFFER_AUDIT_LINE_MAX + 10; i++)
			fputc('x', f);
		if (f)
			fclose(f);
	}
	rc = coffer_audit_append(st, "snapshot", NULL, "after junk");
	ok(rc == COFFER_ECORRUPT && strstr(coffer_errmsg(), "no complete entry"),
	   "a tail longer than an entry without a newline is refused: %s", coffer_errmsg());
	{
		size_t n2;
		char *b2 = slurp(log_path, &n2);

		ok(b2 && n2 == n + COFFER_AUDIT_LINE_MAX + 10 && memcmp(b, b2, n) == 0,
		   "and the log is left as it was (%zu bytes)", n2);
		free(b2);
	}
	spit(log_path, b, n);
	rc = verify(detail, sizeof detail, &entries);
	ok(rc == 0 && entries == 12, "without the junk it verifies (%llu): %s",
	   (unsigned long long)entries, detail);
	free(b);
}

static void test_pseudonyms(void)
{
	char a[COFFER_AUDIT_PSEUDONYM_MAX], a2[COFFER_AUDIT_PSEUDONYM_MAX],
	    bp[COFFER_AUDIT_PSEUDONYM_MAX];

	ok(coffer_audit_pseudonym(st, "alice@example.org", a) == 0 &&
	       coffer_audit_pseudonym(st, "alice@example.org", a2) == 0 && !strcmp(a, a2),
	   "a pseudonym is stable (%s)", a);
	ok(coffer_audit_pseudonym(st, "bob@example.org", bp) == 0 && strcmp(a, bp) != 0,
	   "two accounts, two pseudonyms");
	ok(strncmp(a, "ps:", 3) == 0 && strlen(a) == 35 && !strstr(a, "alice"),
	   "the form is ps:<32 hex>, without the name");
}

static int count_fn(const struct coffer_audit_record *r, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

int main(void)
{
	const char *dir;
	char cmd[2400], detail[256];
	uint64_t entries = 99;
	int rc, n = 0;

	if (sodium_init() < 0)
		return 1;
	setenv("COFFER_NOW", "2026-04-01T08:00:00Z", 1);
	dir = tap_tmpdir();
	snprintf(store_path, sizeof store_path, "%s/store", dir);
	snprintf(key_path, sizeof key_path, "%s/coffer.key", dir);
	snprintf(log_path, sizeof log_path, "%s/audit.log", store_path);
	snprintf(saved, sizeof saved, "%s/audit.saved", dir);
	rc = coffer_store_init(store_path, key_path, &st);
	ok(rc == 0, "store init");
	if (rc < 0)
		return tap_done();
	ok(coffer_audit_verify(st, &entries) == 0 && entries == 0, "an empty log verifies");
	for (int i = 1; i <= 10; i++) {
		char d[64];

		snprintf(d, sizeof d, "count=%d", i * 11);
		rc = coffer_audit_append(st, i % 2 ? "snapshot" : "prune",
		                         i % 3 ? NULL : "alice@example.org", d);
		if (rc < 0)
			break;
	}
	ok(rc == 0, "ten entries appended");
	rc = coffer_audit_verify(st, &entries);
	ok(rc == 0 && entries == 10, "they verify (%llu)", (unsigned long long)entries);
	{
		char ps[COFFER_AUDIT_PSEUDONYM_MAX];

		int found = 0;

		coffer_audit_pseudonym(st, "alice@example.org", ps);
		rc = coffer_audit_list(st, ps, count_fn, &n);
		ok(rc == 0 && n == 3, "three entries are alice's, found by pseudonym (%d)", n);
		/* entry 6: prune, alice, count=66; entry 4: prune, no account */
		ok(coffer_audit_find(st, NULL, "prune", "=66", &found) == 0 && found,
		   "find: an action and the end of its detail");
		ok(coffer_audit_find(st, ps, "prune", "=66", &found) == 0 && found,
		   "find: the same under alice's pseudonym");
		ok(coffer_audit_find(st, ps, "prune", "=44", &found) == 0 && !found,
		   "find: not an entry of another account");
		ok(coffer_audit_find(st, NULL, "snapshot", "=66", &found) == 0 && !found,
		   "find: not an entry of another action");
	}
	snprintf(cmd, sizeof cmd, "grep -q alice '%s'", log_path);
	ok(system(cmd) != 0, "the log does not contain the name");
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", log_path, saved);
	ok(system(cmd) == 0, "saved a copy");
	test_tamper();
	test_partial();
	test_pseudonyms();

	/* an entry spliced from another store's log (another key) */
	{
		struct coffer_store *other = NULL;
		char sp[1100], kp[1100], ol[1200];
		size_t on, mn;
		char *ob, *mb, *nl;

		snprintf(sp, sizeof sp, "%s/other", dir);
		snprintf(kp, sizeof kp, "%s/other.key", dir);
		snprintf(ol, sizeof ol, "%s/audit.log", sp);
		rc = coffer_store_init(sp, kp, &other);
		for (int i = 0; rc == 0 && i < 13; i++)
			rc = coffer_audit_append(other, "snapshot", NULL, "count=1");
		coffer_store_close(&other);
		ob = slurp(ol, &on);
		mb = slurp(log_path, &mn);
		if (ob && mb) {
			/* replace our last line (seq 12) by the other store's 12th */
			char *last = ob;

			for (int i = 0; i < 11 && last; i++)
				last = strchr(last, '\n') + 1;
			mb[mn - 1] = '\0';
			nl = strrchr(mb, '\n');
			if (nl)
				nl[1] = '\0';
			{
				FILE *f = fopen(log_path, "wb");

				fputs(mb, f);
				fputs(last, f);
				fclose(f);
			}
			rc = coffer_audit_verify(st, &entries);
			snprintf(detail, sizeof detail, "%s", coffer_errmsg());
			ok(rc == COFFER_ECORRUPT && strstr(detail, "entry 12 "),
			   "an entry from another store's log is detected: %s", detail);
		} else {
			ok(0, "other store's log");
		}
		free(ob);
		free(mb);
	}
	coffer_store_close(&st);
	return tap_done();
}
