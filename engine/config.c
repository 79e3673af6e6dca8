/*
 * config.c: coffer.conf, the store's settings (see config.h for the syntax).
 *
 * This file implements config.h: a strict parser, the loader, and the writer.
 *
 * Strictness is the point: a typo in a retention setting must stop the
 * command, not silently keep mail for the default period. So every problem is
 * COFFER_ECONFIG with a detail "NAME:LINE: what is wrong", and:
 *   - unknown keys, duplicate keys and lines without '=' are errors;
 *   - section headers ("[x]") are errors (none are used);
 *   - a line may not hold NUL or other control characters (a tab is allowed
 *     only as whitespace around key and value), and is at most
 *     CONFIG_LINE_MAX bytes; the whole text is at most CONFIG_FILE_MAX bytes;
 *   - a string value (a path) is at most CONFIG_VALUE_MAX bytes;
 *   - an empty value is an error (comment the key out to leave it unset);
 *   - there are no inline comments: '#' inside a value is part of it;
 *   - a value wrapped in double quotes loses the outer quotes only (there are
 *     no escapes), which is how a value keeps leading or trailing blanks;
 *   - "\r\n" line ends are accepted.
 *
 * Values: *_days are decimal integers in the ranges of struct coffer_config;
 * snapshot_time is "HH:MM" (UTC, H may be one digit); sizes are decimal
 * integers with an optional K, M, G or T suffix (powers of 1024, either case).
 *
 * coffer_config_save() writes every key with a comment, unset optional keys
 * commented out, sizes with the largest exact suffix, and strings quoted, so
 * that save -> load gives back the same settings; it refuses a configuration
 * that load would refuse. The file is replaced atomically (io.h).
 *
 * Ownership: struct coffer_config owns its strings (malloc); parse and load
 * treat the struct as output only and do not free what it held before.
 */
#include "config.h"

#include "buf.h"
#include "errors.h"
#include "io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_LINE_MAX 4096
#define CONFIG_FILE_MAX (1024 * 1024)
#define CONFIG_DAYS_MAX 36500
/* A string value is at most this long, so that save can always write it
 * quoted on one line that load accepts. */
#define CONFIG_VALUE_MAX 4000

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)
#define TIB (1024ULL * GIB)

#define MAP_SIZE_MIN MIB
#define MAP_SIZE_MAX TIB
#define MSG_SIZE_MIN KIB
#define MSG_SIZE_MAX (16 * GIB)
#define CACHE_SIZE_MIN MIB
#define CACHE_SIZE_MAX (64 * GIB)

enum key_id {
	K_KEY_FILE,
	K_SNAPSHOT_TARGET,
	K_DATA_RETENTION,
	K_METADATA_RETENTION,
	K_TERMINATION_GRACE,
	K_SNAPSHOT_TIME,
	K_INDEX_MAP_SIZE,
	K_MAX_MESSAGE_SIZE,
	K_MOUNT_CACHE_SIZE,
	K_COUNT
};

static const char *const key_names[K_COUNT] = {
	[K_KEY_FILE] = "key_file",
	[K_SNAPSHOT_TARGET] = "snapshot_target",
	[K_DATA_RETENTION] = "data_retention_days",
	[K_METADATA_RETENTION] = "metadata_retention_days",
	[K_TERMINATION_GRACE] = "termination_grace_days",
	[K_SNAPSHOT_TIME] = "snapshot_time",
	[K_INDEX_MAP_SIZE] = "index_map_size",
	[K_MAX_MESSAGE_SIZE] = "max_message_size",
	[K_MOUNT_CACHE_SIZE] = "mount_cache_size",
};

void coffer_config_defaults(struct coffer_config *c)
{
	c->key_file = NULL;
	c->snapshot_target = NULL;
	c->data_retention_days = 30;
	c->metadata_retention_days = 180;
	c->termination_grace_days = 30;
	c->snapshot_time_min = 2 * 60;
	c->index_map_size = 64 * MIB;
	c->mount_cache_size = 256 * MIB;
	c->max_message_size = 256 * MIB;
}

void coffer_config_free(struct coffer_config *c)
{
	if (!c)
		return;
	free(c->key_file);
	free(c->snapshot_target);
	c->key_file = NULL;
	c->snapshot_target = NULL;
}

/* ---- parsing ---- */

struct parser {
	const char *name;
	size_t line;
};

static int perr(const struct parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int perr(const struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	char what[512]; /* one error line; errors.c bounds the detail anyway */

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return coffer_err_set(COFFER_ECONFIG, "%s:%zu: %s", ps->name, ps->line, what);
}

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static int is_control(unsigned char ch)
{
	return ch < 0x20 || ch == 0x7f;
}

/* Decimal integer with optional sign; *v_r saturates far outside any range
 * we accept, so the range check reports the overflow. */
static int parse_int(const char *s, size_t n, long long *v_r)
{
	long long v = 0;
	int neg = 0;
	size_t i = 0;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (i == n)
		return -1;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v < 1000000000000LL)
			v = v * 10 + (s[i] - '0');
	}
	*v_r = neg ? -v : v;
	return 0;
}

static int set_days(const struct parser *ps, const char *key, const char *v, size_t n, int min,
                    int *out)
{
	long long d;

	if (parse_int(v, n, &d) < 0)
		return perr(ps, "%s: \"%.*s\" is not a whole number of days", key,
		            (int)(n > 64 ? 64 : n), v);
	if (d < min || d > CONFIG_DAYS_MAX)
		return perr(ps, "%s must be between %d and %d days (got %.*s)", key, min,
		            CONFIG_DAYS_MAX, (int)(n > 64 ? 64 : n), v);
	*out = (int)d;
	return 0;
}

static int set_time(const struct parser *ps, const char *key, const char *v, size_t n, int *out)
{
	unsigned h = 0, m = 0;
	size_t i = 0, hd;

	for (hd = 0; i < n && hd < 2 && v[i] >= '0' && v[i] <= '9'; i++, hd++)
		h = h * 10 + (unsigned)(v[i] - '0');
	if (hd == 0 || i >= n || v[i] != ':' || n - i != 3 || v[i + 1] < '0' || v[i + 1] > '9' ||
	    v[i + 2] < '0' || v[i + 2] > '9')
		return perr(ps, "%s: \"%.*s\" is not a time HH:MM", key, (int)(n > 64 ? 64 : n), v);
	m = (unsigned)(v[i + 1] - '0') * 10 + (unsigned)(v[i + 2] - '0');
	if (h > 23 || m > 59)
		return perr(ps, "%s: \"%.*s\" is not a time of day (00:00 to 23:59)", key, (int)n,
		            v);
	*out = (int)(h * 60 + m);
	return 0;
}

static int set_size(const struct parser *ps, const char *key, const char *v, size_t n, uint64_t min,
                    uint64_t max, uint64_t *out)
{
	uint64_t mult = 1, x = 0;
	size_t i, digits = n;
	int over = 0;

	if (n > 0) {
		switch (v[n - 1]) {
		case 'k':
		case 'K': mult = KIB; break;
		case 'm':
		case 'M': mult = MIB; break;
		case 'g':
		case 'G': mult = GIB; break;
		case 't':
		case 'T': mult = TIB; break;
		}
		if (mult != 1)
			digits = n - 1;
	}
	if (digits == 0)
		goto bad;
	for (i = 0; i < digits; i++) {
		if (v[i] < '0' || v[i] > '9')
			goto bad;
		if (__builtin_mul_overflow(x, 10, &x) ||
		    __builtin_add_overflow(x, (uint64_t)(v[i] - '0'), &x))
			over = 1;
	}
	if (over || __builtin_mul_overflow(x, mult, &x) || x < min || x > max)
		return perr(ps, "%s must be between %llu and %llu bytes (got %.*s)", key,
		            (unsigned long long)min, (unsigned long long)max,
		            (int)(n > 64 ? 64 : n), v);
	*out = x;
	return 0;
bad:
	return perr(ps, "%s: \"%.*s\" is not a size (a number with optional K, M, G or T)", key,
	            (int)(n > 64 ? 64 : n), v);
}

static int set_string(const struct parser *ps, const char *key, const char *v, size_t n, char **out)
{
	char *s;

	if (n > CONFIG_VALUE_MAX)
		return perr(ps, "%s: value longer than %d bytes", key, CONFIG_VALUE_MAX);
	s = malloc(n + 1);
	if (!s)
		return coffer_err_set(COFFER_ENOMEM, "%s:%zu: %s: out of memory", ps->name,
		                      ps->line, key);
	memcpy(s, v, n);
	s[n] = '\0';
	free(*out);
	*out = s;
	return 0;
}

/* One "key = value" line, already free of control characters but for tabs,
 * and trimmed. */
static int parse_line(struct parser *ps, struct coffer_config *c, size_t *seen, const char *p,
                      size_t n)
{
	const char *eq = memchr(p, '=', n), *k, *v;
	size_t kn, vn, i;
	enum key_id id;

	if (p[0] == '[')
		return perr(ps, "section headers are not used in this file");
	if (!eq)
		return perr(ps, "expected \"key = value\"");
	k = p;
	kn = (size_t)(eq - p);
	while (kn > 0 && is_blank(k[kn - 1]))
		kn--;
	v = eq + 1;
	vn = n - (size_t)(v - p);
	while (vn > 0 && is_blank(*v)) {
		v++;
		vn--;
	}
	if (kn == 0)
		return perr(ps, "missing key before '='");
	for (id = 0; id < K_COUNT; id++)
		if (strlen(key_names[id]) == kn && memcmp(key_names[id], k, kn) == 0)
			break;
	if (id == K_COUNT)
		return perr(ps, "unknown key \"%.*s\"", (int)(kn > 64 ? 64 : kn), k);
	if (seen[id])
		return perr(ps, "duplicate key %s (first set on line %zu)", key_names[id],
		            seen[id]);
	seen[id] = ps->line;

	if (vn > 0 && v[0] == '"') {
		if (vn < 2 || v[vn - 1] != '"')
			return perr(ps, "%s: unterminated quoted value", key_names[id]);
		v++;
		vn -= 2;
	}
	if (vn == 0)
		return perr(ps, "%s: empty value (comment the line out to leave it unset)",
		            key_names[id]);
	for (i = 0; i < vn; i++)
		if (is_control((unsigned char)v[i]))
			return perr(ps, "%s: control character in value", key_names[id]);

	switch (id) {
	case K_KEY_FILE: return set_string(ps, key_names[id], v, vn, &c->key_file);
	case K_SNAPSHOT_TARGET: return set_string(ps, key_names[id], v, vn, &c->snapshot_target);
	case K_DATA_RETENTION:
		return set_days(ps, key_names[id], v, vn, 1, &c->data_retention_days);
	case K_METADATA_RETENTION:
		return set_days(ps, key_names[id], v, vn, 1, &c->metadata_retention_days);
	case K_TERMINATION_GRACE:
		return set_days(ps, key_names[id], v, vn, 0, &c->termination_grace_days);
	case K_SNAPSHOT_TIME: return set_time(ps, key_names[id], v, vn, &c->snapshot_time_min);
	case K_INDEX_MAP_SIZE:
		return set_size(ps, key_names[id], v, vn, MAP_SIZE_MIN, MAP_SIZE_MAX,
		                &c->index_map_size);
	case K_MAX_MESSAGE_SIZE:
		return set_size(ps, key_names[id], v, vn, MSG_SIZE_MIN, MSG_SIZE_MAX,
		                &c->max_message_size);
	case K_MOUNT_CACHE_SIZE:
		return set_size(ps, key_names[id], v, vn, CACHE_SIZE_MIN, CACHE_SIZE_MAX,
		                &c->mount_cache_size);
	case K_COUNT: break;
	}
	return perr(ps, "internal error: unhandled key");
}

int coffer_config_parse(struct coffer_config *c, const char *name, const char *text, size_t n)
{
	struct coffer_config tmp;
	struct parser ps = { name ? name : "coffer.conf", 0 };
	size_t seen[K_COUNT] = { 0 };
	size_t pos = 0, len, i;
	const char *line, *nl;
	int r = 0;

	coffer_config_defaults(&tmp);
	coffer_config_defaults(c);
	if (n > CONFIG_FILE_MAX)
		return coffer_err_set(COFFER_ECONFIG, "%s: larger than %d bytes", ps.name,
		                      CONFIG_FILE_MAX);
	while (pos < n) {
		ps.line++;
		line = text + pos;
		nl = memchr(line, '\n', n - pos);
		len = nl ? (size_t)(nl - line) : n - pos;
		pos += len + (nl ? 1 : 0);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len > CONFIG_LINE_MAX) {
			r = perr(&ps, "line longer than %d bytes", CONFIG_LINE_MAX);
			goto out;
		}
		for (i = 0; i < len; i++) {
			if (line[i] != '\t' && is_control((unsigned char)line[i])) {
				r = perr(&ps, "control character (0x%02x) in line",
				         (unsigned char)line[i]);
				goto out;
			}
		}
		while (len > 0 && is_blank(*line)) {
			line++;
			len--;
		}
		while (len > 0 && is_blank(line[len - 1]))
			len--;
		if (len == 0 || line[0] == '#' || line[0] == ';')
			continue;
		r = parse_line(&ps, &tmp, seen, line, len);
		if (r < 0)
			goto out;
	}
out:
	if (r < 0) {
		coffer_config_free(&tmp);
		return r;
	}
	*c = tmp;
	return 0;
}

/* ---- loading and saving ---- */

/* The file to use: path itself, or path/coffer.conf when path is the store
 * directory. Appends to file. */
static int config_file(const char *path, struct coffer_buf *file)
{
	struct stat st;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		coffer_buf_printf(file, "%s/coffer.conf", path);
	else
		coffer_buf_puts(file, path);
	if (coffer_buf_ok(file) < 0)
		return coffer_err_set(COFFER_ENOMEM, "config %s: out of memory", path);
	return 0;
}

int coffer_config_load(struct coffer_config *c, const char *path)
{
	struct coffer_buf file = COFFER_BUF_INIT;
	struct coffer_buf text = COFFER_BUF_INIT;
	int r;

	coffer_config_defaults(c);
	r = config_file(path, &file);
	if (r < 0)
		goto out;
	r = coffer_io_read_file(coffer_buf_str(&file), CONFIG_FILE_MAX, &text);
	if (r == COFFER_ELIMIT) {
		r = coffer_err_set(COFFER_ECONFIG, "%s: larger than %d bytes",
		                   coffer_buf_str(&file), CONFIG_FILE_MAX);
		goto out;
	}
	if (r < 0)
		goto out;
	r = coffer_config_parse(c, coffer_buf_str(&file), (const char *)text.data, text.len);
out:
	coffer_buf_free(&file);
	coffer_buf_free(&text);
	return r;
}

/* Writes size with the largest suffix that divides it exactly. */
static void put_size(struct coffer_buf *b, uint64_t v)
{
	static const struct {
		uint64_t mult;
		char suffix;
	} units[] = { { TIB, 'T' }, { GIB, 'G' }, { MIB, 'M' }, { KIB, 'K' } };
	size_t i;

	for (i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (v >= units[i].mult && v % units[i].mult == 0) {
			coffer_buf_printf(b, "%llu%c\n", (unsigned long long)(v / units[i].mult),
			                  units[i].suffix);
			return;
		}
	}
	coffer_buf_printf(b, "%llu\n", (unsigned long long)v);
}

static int check_string(const char *key, const char *s)
{
	const unsigned char *p;

	if (!s)
		return 0;
	if (!*s)
		return coffer_err_set(COFFER_EINVAL, "config: %s is empty", key);
	if (strlen(s) > CONFIG_VALUE_MAX)
		return coffer_err_set(COFFER_EINVAL, "config: %s is longer than %d bytes", key,
		                      CONFIG_VALUE_MAX);
	for (p = (const unsigned char *)s; *p; p++)
		if (is_control(*p))
			return coffer_err_set(COFFER_EINVAL, "config: %s holds a control character",
			                      key);
	return 0;
}

static int check_config(const struct coffer_config *c)
{
	int r;

	r = check_string("key_file", c->key_file);
	if (r < 0)
		return r;
	r = check_string("snapshot_target", c->snapshot_target);
	if (r < 0)
		return r;
	if (c->data_retention_days < 1 || c->data_retention_days > CONFIG_DAYS_MAX ||
	    c->metadata_retention_days < 1 || c->metadata_retention_days > CONFIG_DAYS_MAX ||
	    c->termination_grace_days < 0 || c->termination_grace_days > CONFIG_DAYS_MAX)
		return coffer_err_set(COFFER_EINVAL, "config: a retention period is out of range");
	if (c->snapshot_time_min < 0 || c->snapshot_time_min >= 24 * 60)
		return coffer_err_set(COFFER_EINVAL, "config: snapshot_time is out of range");
	if (c->index_map_size < MAP_SIZE_MIN || c->index_map_size > MAP_SIZE_MAX)
		return coffer_err_set(COFFER_EINVAL, "config: index_map_size is out of range");
	if (c->max_message_size < MSG_SIZE_MIN || c->max_message_size > MSG_SIZE_MAX)
		return coffer_err_set(COFFER_EINVAL, "config: max_message_size is out of range");
	if (c->mount_cache_size < CACHE_SIZE_MIN || c->mount_cache_size > CACHE_SIZE_MAX)
		return coffer_err_set(COFFER_EINVAL, "config: mount_cache_size is out of range");
	return 0;
}

int coffer_config_save(const struct coffer_config *c, const char *path)
{
	struct coffer_buf file = COFFER_BUF_INIT;
	struct coffer_buf b = COFFER_BUF_INIT;
	int r;

	r = check_config(c);
	if (r < 0)
		return r;
	r = config_file(path, &file);
	if (r < 0)
		goto out;

	coffer_buf_puts(&b,
	                "# coffer.conf: settings of this Coffer store, written by coffer.\n"
	                "#\n"
	                "# One \"key = value\" per line; lines starting with '#' or ';' are\n"
	                "# comments. A value may be wrapped in double quotes. Unknown or repeated\n"
	                "# keys and out-of-range values are errors, so a typo cannot silently\n"
	                "# change how long mail is kept. No secrets belong in this file.\n"
	                "\n");

	coffer_buf_puts(&b, "# The key file recorded at init (outside the store).\n");
	if (c->key_file)
		coffer_buf_printf(&b, "key_file = \"%s\"\n\n", c->key_file);
	else
		coffer_buf_puts(&b, "# key_file = \"/etc/coffer/coffer.key\"\n\n");

	coffer_buf_puts(&b, "# Where snapshots are written; unset: no snapshots are taken.\n");
	if (c->snapshot_target)
		coffer_buf_printf(&b, "snapshot_target = \"%s\"\n\n", c->snapshot_target);
	else
		coffer_buf_puts(&b, "# snapshot_target = \"/srv/coffer-snapshots\"\n\n");

	coffer_buf_printf(&b,
	                  "# Retention period of message content, in days (1..%d).\n"
	                  "data_retention_days = %d\n\n",
	                  CONFIG_DAYS_MAX, c->data_retention_days);
	coffer_buf_printf(&b,
	                  "# Retention period of access and delivery metadata, in days (1..%d).\n"
	                  "metadata_retention_days = %d\n\n",
	                  CONFIG_DAYS_MAX, c->metadata_retention_days);
	coffer_buf_printf(&b,
	                  "# Days a terminated account is kept before it is shredded (0..%d).\n"
	                  "termination_grace_days = %d\n\n",
	                  CONFIG_DAYS_MAX, c->termination_grace_days);
	coffer_buf_printf(&b,
	                  "# Time of day (UTC, HH:MM) at which the daily snapshot runs.\n"
	                  "snapshot_time = %02d:%02d\n\n",
	                  c->snapshot_time_min / 60, c->snapshot_time_min % 60);
	coffer_buf_puts(&b, "# Initial size of the index map (grows on demand); K, M, G, T "
	                    "suffixes.\nindex_map_size = ");
	put_size(&b, c->index_map_size);
	coffer_buf_puts(&b, "\n# Largest message accepted; K, M, G, T suffixes.\n"
	                    "max_message_size = ");
	put_size(&b, c->max_message_size);
	coffer_buf_puts(&b,
	                "\n# Decrypted messages the mount keeps in memory; K, M, G, T suffixes.\n"
	                "mount_cache_size = ");
	put_size(&b, c->mount_cache_size);

	r = coffer_buf_ok(&b);
	if (r < 0) {
		r = coffer_err_set(r, "config %s: out of memory", coffer_buf_str(&file));
		goto out;
	}
	r = coffer_io_write_file_atomic(coffer_buf_str(&file), b.data, b.len, 0600);
out:
	coffer_buf_free(&file);
	coffer_buf_free(&b);
	return r;
}
