/*
 * audit.c: the audit log (see audit.h).
 *
 * Line: {"seq": N, "time": "...", "uid": U, "user": "...", "action": "...",
 *        "account": "ps:...", "detail": "...", "prev": "<hex>", "mac": "<hex>"}
 * The MAC covers prev_mac (32 bytes) || the line's bytes up to and including
 * the "prev" field (the part before ", \"mac\""). The first entry's prev is
 * 64 zeros.
 *
 * Reading: coffer_audit_line_parse() takes one line apart (seq, prev, mac
 * and the descriptive fields) for the walk behind verify and list, which
 * bounds each line to COFFER_AUDIT_LINE_MAX first. Lines are untrusted:
 * every field is copied into a bounded buffer, a missing one reads as "".
 * tests/fuzz/fuzz-audit.c fuzzes it.
 */
#include "audit.h"

#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/errors.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/keyfile.h"
#include "engine/record.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MAX (1ull << 34)

static int audit_key(struct coffer_store *st, unsigned char **key_r)
{
	struct coffer_keyfile *kf;
	unsigned char *key;
	int rc;

	rc = coffer_store_keyfile(st, &kf);
	if (rc < 0)
		return rc;
	key = coffer_secure_alloc(COFFER_KEY_BYTES);
	if (key == NULL)
		return coffer_err_set(COFFER_ENOMEM, "audit: cannot allocate secure memory");
	rc = coffer_keyfile_derive(kf, "audit-chain", key);
	if (rc < 0) {
		coffer_secure_free(key);
		return rc;
	}
	*key_r = key;
	return 0;
}

int coffer_audit_pseudonym(struct coffer_store *st, const char *account,
                           char out[COFFER_AUDIT_PSEUDONYM_MAX])
{
	struct coffer_keyfile *kf;
	unsigned char *key, mac[16];
	int rc;

	rc = coffer_store_keyfile(st, &kf);
	if (rc < 0)
		return rc;
	key = coffer_secure_alloc(COFFER_KEY_BYTES);
	if (key == NULL)
		return coffer_err_set(COFFER_ENOMEM, "audit: cannot allocate secure memory");
	rc = coffer_keyfile_derive(kf, "audit-pseudonym", key);
	if (rc == 0)
		rc = coffer_crypto_hash_keyed(mac, sizeof mac, key, account, strlen(account), NULL,
		                              0);
	coffer_secure_free(key);
	if (rc == 0) {
		memcpy(out, "ps:", 3);
		coffer_hex(out + 3, mac, sizeof mac);
	}
	return rc;
}

static char *log_path(struct coffer_store *st)
{
	char *p;

	return asprintf(&p, "%s/audit.log", coffer_store_path(st)) < 0 ? NULL : p;
}

static int unhex32(const char *h, unsigned char *out)
{
	for (int i = 0; i < 32; i++) {
		unsigned v = 0;

		for (int j = 0; j < 2; j++) {
			char c = h[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* Finds "key": "value" in a line we wrote; copies the value (unescaped only
 * for the characters we escape) into out. */
static int field(const char *line, const char *key, char *out, size_t cap)
{
	char pat[32];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof pat, "\"%s\": ", key);
	p = strstr(line, pat);
	if (p == NULL)
		return -1;
	p += strlen(pat);
	if (*p == '"') {
		for (p++; *p && *p != '"' && n + 1 < cap; p++) {
			if (*p == '\\' && p[1])
				p++;
			out[n++] = *p;
		}
	} else {
		for (; *p && *p != ',' && *p != '}' && n + 1 < cap; p++)
			out[n++] = *p;
	}
	out[n] = '\0';
	return 0;
}

static int head_txn_get(struct coffer_txn *t, void *arg)
{
	const void *v;
	size_t n;
	int rc = coffer_txn_get(t, COFFER_DB_META, "audit_head", 10, &v, &n);

	if (rc == 0 && n == 8 + 32)
		memcpy(arg, v, n);
	else if (rc == 0)
		rc = coffer_err_set(COFFER_ECORRUPT, "audit: damaged head record");
	return rc;
}

struct head_put {
	unsigned char head[8 + 32]; /* seq u64 LE, MAC */
	coffer_txn_fn fn;           /* the caller's change, in the same transaction */
	void *arg;
};

static int head_txn_put(struct coffer_txn *t, void *arg)
{
	struct head_put *h = arg;
	int rc = coffer_txn_put(t, COFFER_DB_META, "audit_head", 10, h->head, sizeof h->head, 0);

	return rc == 0 && h->fn ? h->fn(t, h->arg) : rc;
}

/* Reads the log's last complete entry: its seq and MAC; cuts a partial
 * tail. *cut_r tells whether it did, *size_r is the log's size after it. The
 * reads and the sync go through engine/io.h (faultable). */
static int read_tail(int fd, uint64_t *seq_r, unsigned char *mac_r, int *cut_r, off_t *size_r)
{
	struct stat st;
	char buf[COFFER_AUDIT_LINE_MAX + 1], v[80];
	off_t end, start;
	size_t got;
	char *last;
	int rc;

	*seq_r = 0;
	memset(mac_r, 0, 32);
	*cut_r = 0;
	*size_r = 0;
	if (fstat(fd, &st) < 0)
		return coffer_err_set(coffer_err_from_errno(errno), "audit: %s", strerror(errno));
	end = st.st_size;
	if (end == 0)
		return 0;
	start = end > COFFER_AUDIT_LINE_MAX ? end - COFFER_AUDIT_LINE_MAX : 0;
	rc = coffer_io_pread_full(fd, buf, (size_t)(end - start), start, &got);
	if (rc < 0)
		return coffer_err_prefix(rc, "audit: reading the last entry: ");
	if (got == 0) /* shrunk since fstat: nobody truncates it but us */
		return coffer_err_set(COFFER_EIO, "audit: the log shrank while it was read");
	end = start + (off_t)got;
	*size_r = end;
	buf[got] = '\0';
	if (buf[got - 1] != '\n') {
		/* a crash cut the last entry: drop it */
		char *nl = memrchr(buf, '\n', got);
		off_t keep = nl ? start + (nl - buf) + 1 : 0;

		/* An entry takes at most COFFER_AUDIT_LINE_MAX bytes with its
		 * newline, so a cut one ends less than that after the previous
		 * newline. Anything longer is not a crash's doing: say so rather
		 * than cut the whole log. */
		if (nl == NULL && start > 0)
			return coffer_err_set(
			    COFFER_ECORRUPT,
			    "audit: the last %d bytes of the log hold no complete "
			    "entry",
			    COFFER_AUDIT_LINE_MAX);
		if (ftruncate(fd, keep) < 0)
			return coffer_err_set(coffer_err_from_errno(errno),
			                      "audit: cutting a partial entry: %s",
			                      strerror(errno));
		*size_r = keep;
		rc = coffer_io_fsync(fd);
		if (rc < 0)
			return coffer_err_prefix(rc, "audit: cutting a partial entry: ");
		*cut_r = 1;
		if (nl == NULL)
			return 0;
		got = (size_t)(nl - buf) + 1;
		buf[got] = '\0';
	}
	buf[got - 1] = '\0';
	last = strrchr(buf, '\n');
	last = last ? last + 1 : buf;
	if (field(last, "seq", v, sizeof v) < 0)
		return coffer_err_set(COFFER_ECORRUPT, "audit: the last entry is damaged");
	*seq_r = strtoull(v, NULL, 10);
	if (field(last, "mac", v, sizeof v) < 0 || strlen(v) != 64 || unhex32(v, mac_r) < 0)
		return coffer_err_set(COFFER_ECORRUPT, "audit: the last entry is damaged");
	return 0;
}

static int append_locked(struct coffer_store *st, int fd, const unsigned char *key,
                         const char *action, const char *pseudonym, const char *detail,
                         coffer_txn_fn fn, void *fn_arg)
{
	struct coffer_buf line = COFFER_BUF_INIT;
	struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");
	unsigned char prev[32], mac[32];
	struct head_put h = { .fn = fn, .arg = fn_arg };
	char prevhex[65], machex[65], when[COFFER_CLOCK_ISO_MAX], user[300];
	uint64_t seq;
	int64_t now;
	off_t size;
	int rc, cut;

	rc = read_tail(fd, &seq, prev, &cut, &size);
	if (rc == 0)
		rc = coffer_clock_now(&now);
	if (rc < 0)
		return rc;
	coffer_clock_format(now, when);
	coffer_hex(prevhex, prev, 32);
	snprintf(user, sizeof user, "%s%s%s", pw ? pw->pw_name : "?", sudo ? " via sudo by " : "",
	         sudo ? sudo : "");
	coffer_buf_printf(&line, "{\"seq\": %llu, \"time\": \"%s\", \"uid\": %u, \"user\": ",
	                  (unsigned long long)(seq + 1), when, (unsigned)getuid());
	coffer_buf_put_json_str(&line, user, strlen(user));
	coffer_buf_puts(&line, ", \"action\": ");
	coffer_buf_put_json_str(&line, action, strlen(action));
	coffer_buf_puts(&line, ", \"account\": ");
	coffer_buf_put_json_str(&line, pseudonym, strlen(pseudonym));
	coffer_buf_puts(&line, ", \"detail\": ");
	coffer_buf_put_json_str(&line, detail ? detail : "", detail ? strlen(detail) : 0);
	coffer_buf_printf(&line, ", \"prev\": \"%s\"", prevhex);
	rc = coffer_buf_ok(&line);
	if (rc == 0)
		rc = coffer_crypto_hash_keyed(mac, sizeof mac, key, prev, sizeof prev, line.data,
		                              line.len);
	coffer_hex(machex, mac, 32);
	coffer_buf_printf(&line, ", \"mac\": \"%s\"}\n", machex);
	if (rc == 0 && line.len > COFFER_AUDIT_LINE_MAX)
		rc = coffer_err_set(COFFER_ELIMIT, "audit: entry too long");
	if (rc == 0) {
		rc = coffer_io_write_all(fd, line.data, line.len);
		/* a write that failed part-way (a full disk) leaves a torn line:
		 * cut it now, so that the log verifies after a failed append */
		if (rc < 0 && ftruncate(fd, size) < 0) {
			/* the next append cuts it, as after a crash */
		}
	}
	if (rc == 0)
		rc = coffer_io_fsync(fd);
	if (rc == 0) {
		coffer_put_u64le(h.head, seq + 1);
		memcpy(h.head + 8, mac, 32);
		rc = coffer_index_update(coffer_store_index(st), head_txn_put, &h);
	}
	coffer_buf_free(&line);
	if (rc == 0 && cut)
		rc = append_locked(st, fd, key, "recovery", "",
		                   "a partial entry left by a crash was removed", NULL, NULL);
	return rc;
}

int coffer_audit_append(struct coffer_store *st, const char *action, const char *account,
                        const char *detail)
{
	char pseudonym[COFFER_AUDIT_PSEUDONYM_MAX] = "";
	int rc = 0;

	if (account)
		rc = coffer_audit_pseudonym(st, account, pseudonym);
	return rc < 0 ? rc : coffer_audit_append_pseudonym(st, action, pseudonym, detail);
}

int coffer_audit_append_pseudonym(struct coffer_store *st, const char *action,
                                  const char *pseudonym, const char *detail)
{
	return coffer_audit_append_txn(st, action, pseudonym, detail, NULL, NULL);
}

int coffer_audit_append_txn(struct coffer_store *st, const char *action, const char *pseudonym,
                            const char *detail, coffer_txn_fn fn, void *arg)
{
	unsigned char *key = NULL;
	char *path = log_path(st);
	int fd = -1, rc;

	if (path == NULL)
		return coffer_err_set(COFFER_ENOMEM, "audit: out of memory");
	rc = audit_key(st, &key);
	if (rc < 0)
		goto out;
	fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = coffer_err_set(coffer_err_from_errno(errno), "audit: %s: %s", path,
		                    strerror(errno));
		goto out;
	}
	coffer_store_adopt(st, fd, NULL);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			rc = coffer_err_set(coffer_err_from_errno(errno), "audit: lock: %s",
			                    strerror(errno));
			goto out;
		}
	}
	rc = append_locked(st, fd, key, action, pseudonym, detail, fn, arg);
out:
	if (fd >= 0)
		close(fd);
	coffer_secure_free(key);
	free(path);
	return rc;
}

struct walk {
	struct coffer_store *st;
	const unsigned char *key;
	const char *pseudonym;
	coffer_audit_fn fn;
	void *arg;
	int verify;
	uint64_t entries;
	unsigned char prev[32];
};

int coffer_audit_line_parse(const char *line, uint64_t lineno, struct coffer_audit_line *l_r)
{
	char seqs[32], machex[80];
	const char *macfield;

	memset(l_r, 0, sizeof *l_r);
	if (field(line, "seq", seqs, sizeof seqs) < 0 ||
	    field(line, "prev", l_r->prev, sizeof l_r->prev) < 0 ||
	    field(line, "mac", machex, sizeof machex) < 0 || strlen(machex) != 64 ||
	    unhex32(machex, l_r->mac) < 0 || (macfield = strstr(line, ", \"mac\": ")) == NULL)
		return coffer_err_set(COFFER_ECORRUPT, "audit: line %llu is not an audit entry",
		                      (unsigned long long)lineno);
	l_r->seq = strtoull(seqs, NULL, 10);
	l_r->signed_len = (size_t)(macfield - line);
	/* descriptive fields: a missing one reads as "" */
	field(line, "time", l_r->time, sizeof l_r->time);
	field(line, "action", l_r->action, sizeof l_r->action);
	field(line, "account", l_r->account, sizeof l_r->account);
	field(line, "detail", l_r->detail, sizeof l_r->detail);
	return 0;
}

static int walk_line(struct walk *w, char *line, uint64_t lineno)
{
	struct coffer_audit_line l;
	unsigned char want[32];
	struct coffer_audit_record r;
	int rc;

	rc = coffer_audit_line_parse(line, lineno, &l);
	if (rc < 0)
		return rc;
	if (w->verify) {
		char expect[65];

		coffer_hex(expect, w->prev, 32);
		if (l.seq != w->entries + 1)
			return coffer_err_set(
			    COFFER_ECORRUPT,
			    "audit: entry %llu (line %llu) is out of sequence: entries "
			    "were removed or reordered before it",
			    (unsigned long long)l.seq, (unsigned long long)lineno);
		if (strcmp(l.prev, expect) != 0)
			return coffer_err_set(COFFER_ECORRUPT,
			                      "audit: entry %llu (line %llu) does not follow its "
			                      "predecessor: the chain is broken there",
			                      (unsigned long long)l.seq,
			                      (unsigned long long)lineno);
		coffer_crypto_hash_keyed(want, sizeof want, w->key, w->prev, 32, line,
		                         l.signed_len);
		if (!coffer_ct_equal(want, l.mac, 32))
			return coffer_err_set(
			    COFFER_ECORRUPT,
			    "audit: entry %llu (line %llu) was altered: its MAC does "
			    "not match",
			    (unsigned long long)l.seq, (unsigned long long)lineno);
	}
	memcpy(w->prev, l.mac, 32);
	w->entries++;
	if (w->fn) {
		if (w->pseudonym && strcmp(w->pseudonym, l.account) != 0)
			return 0;
		r = (struct coffer_audit_record){
			l.seq, l.time, l.action, l.account, l.detail, line
		};
		return w->fn(&r, w->arg);
	}
	return 0;
}

static int walk_log(struct walk *w)
{
	char *path = log_path(w->st), *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint64_t lineno = 0;
	FILE *f;
	int rc = 0;

	if (path == NULL)
		return coffer_err_set(COFFER_ENOMEM, "audit: out of memory");
	f = fopen(path, "re");
	free(path);
	if (f == NULL)
		return errno == ENOENT ? 0
		                       : coffer_err_set(coffer_err_from_errno(errno), "audit: %s",
		                                        strerror(errno));
	while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
		lineno++;
		if (line[n - 1] != '\n') {
			if (w->verify)
				rc = coffer_err_set(
				    COFFER_ECORRUPT,
				    "audit: line %llu is incomplete (a crash during an append; "
				    "the next append repairs it)",
				    (unsigned long long)lineno);
			break;
		}
		line[n - 1] = '\0';
		if (n > COFFER_AUDIT_LINE_MAX) {
			rc = coffer_err_set(COFFER_ECORRUPT, "audit: line %llu is too long",
			                    (unsigned long long)lineno);
			break;
		}
		rc = walk_line(w, line, lineno);
	}
	free(line);
	fclose(f);
	return rc;
}

int coffer_audit_verify(struct coffer_store *st, uint64_t *entries_r)
{
	struct walk w;
	unsigned char head[40];
	unsigned char *key = NULL;
	uint64_t head_seq = 0;
	int rc;

	memset(&w, 0, sizeof w);
	rc = audit_key(st, &key);
	if (rc < 0)
		return rc;
	w.st = st;
	w.key = key;
	w.verify = 1;
	rc = walk_log(&w);
	*entries_r = w.entries;
	if (rc == 0) {
		int hr = coffer_index_view(coffer_store_index(st), head_txn_get, head);

		if (hr == 0) {
			head_seq = coffer_get_u64le(head);
			if (w.entries < head_seq)
				rc = coffer_err_set(
				    COFFER_ECORRUPT,
				    "audit: the log ends at entry %llu but entry %llu was "
				    "written: entries were cut off the end",
				    (unsigned long long)w.entries, (unsigned long long)head_seq);
			else if (w.entries == head_seq && !coffer_ct_equal(head + 8, w.prev, 32))
				rc = coffer_err_set(
				    COFFER_ECORRUPT,
				    "audit: the last entry is not the one recorded as written");
		} else if (hr != COFFER_ENOTFOUND) {
			rc = hr;
		} else if (w.entries > 0) {
			rc = coffer_err_set(COFFER_ECORRUPT,
			                    "audit: the index has no record of the log's head");
		}
	}
	coffer_secure_free(key);
	return rc;
}

int coffer_audit_list(struct coffer_store *st, const char *pseudonym, coffer_audit_fn fn, void *arg)
{
	struct walk w;

	memset(&w, 0, sizeof w);
	w.st = st;
	w.pseudonym = pseudonym;
	w.fn = fn;
	w.arg = arg;
	return walk_log(&w);
}

struct find {
	const char *action, *suffix;
	int found;
};

static int find_fn(const struct coffer_audit_record *r, void *arg)
{
	struct find *f = arg;
	size_t dl = strlen(r->detail), sl = strlen(f->suffix);

	if (strcmp(r->action, f->action) == 0 && dl >= sl &&
	    strcmp(r->detail + dl - sl, f->suffix) == 0)
		f->found = 1;
	return 0;
}

int coffer_audit_find(struct coffer_store *st, const char *pseudonym, const char *action,
                      const char *suffix, int *found_r)
{
	struct find f = { action, suffix, 0 };
	int rc = coffer_audit_list(st, pseudonym, find_fn, &f);

	*found_r = rc == 0 && f.found;
	return rc;
}
