/*
 * test-config.c: coffer.conf parsing (defaults, every key, every error with
 * its line number), loading, and save -> load round trips.
 */
#include "engine/config.h"
#include "engine/errors.h"
#include "engine/io.h"
#include "tests/tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1024ULL * 1024)

static int parse(struct coffer_config *c, const char *text)
{
	return coffer_config_parse(c, "coffer.conf", text, strlen(text));
}

static const char *path_of_tmp(const char *name)
{
	static char p[4200];

	snprintf(p, sizeof p, "%s/%s", tap_tmpdir(), name);
	return p;
}

static int is_default(const struct coffer_config *c)
{
	return c->key_file == NULL && c->snapshot_target == NULL && c->data_retention_days == 30 &&
	       c->metadata_retention_days == 180 && c->termination_grace_days == 30 &&
	       c->snapshot_time_min == 120 && c->index_map_size == 64 * MIB &&
	       c->max_message_size == 256 * MIB && c->mount_cache_size == 256 * MIB;
}

static void test_defaults(void)
{
	struct coffer_config c;

	coffer_config_defaults(&c);
	ok(is_default(&c), "defaults");
	ok(parse(&c, "") == 0 && is_default(&c), "empty text gives defaults");
	ok(parse(&c, "# only a comment\n; another\n\n   \n\t\n") == 0 && is_default(&c),
	   "comments and blank lines give defaults");
	ok(coffer_config_parse(&c, "coffer.conf", NULL, 0) == 0 && is_default(&c),
	   "NULL text of length 0");
	coffer_config_free(&c);
	coffer_config_free(NULL);
	ok(1, "free accepts NULL");
}

static void test_every_key(void)
{
	struct coffer_config c;
	const char *text = "# settings\n"
			   "key_file = /etc/coffer/other.key\n"
			   "snapshot_target=\"/srv/snap shots\"\n"
			   "\tdata_retention_days\t=\t7\t\n"
			   "metadata_retention_days = 36500\n"
			   "termination_grace_days = 0\n"
			   "snapshot_time = 23:59\n"
			   "index_map_size = 1G\n"
			   "max_message_size = 512k\n"
			   "mount_cache_size = 32M\n";
	int r;

	r = parse(&c, text);
	ok(r == 0, "every key parses (%s)", coffer_errmsg());
	ok(c.key_file && strcmp(c.key_file, "/etc/coffer/other.key") == 0, "key_file");
	ok(c.snapshot_target && strcmp(c.snapshot_target, "/srv/snap shots") == 0,
	   "snapshot_target, quotes removed");
	ok(c.data_retention_days == 7, "data_retention_days with tabs around");
	ok(c.metadata_retention_days == 36500, "metadata_retention_days at maximum");
	ok(c.termination_grace_days == 0, "termination_grace_days may be 0");
	ok(c.snapshot_time_min == 23 * 60 + 59, "snapshot_time 23:59");
	ok(c.index_map_size == 1024 * MIB, "index_map_size 1G");
	ok(c.max_message_size == 512 * 1024, "max_message_size 512k");
	ok(c.mount_cache_size == 32 * MIB, "mount_cache_size 32M");
	coffer_config_free(&c);
	ok(c.key_file == NULL && c.snapshot_target == NULL, "free clears the strings");

	ok(parse(&c, "snapshot_time = 2:05\r\nindex_map_size = 1048576\r\n"
	             "max_message_size=4096\r\ndata_retention_days = 1\r\n") == 0,
	   "CRLF line ends");
	ok(c.snapshot_time_min == 125 && c.index_map_size == MIB && c.max_message_size == 4096 &&
	       c.data_retention_days == 1,
	   "one-digit hour, plain byte sizes, minimum retention");
	coffer_config_free(&c);

	ok(parse(&c, "index_map_size = 1T\nmax_message_size = 16G\nsnapshot_time = 00:00\n"
	             "termination_grace_days = +5") == 0,
	   "T suffix, largest sizes, last line without newline");
	ok(c.index_map_size == 1024ULL * 1024 * MIB && c.max_message_size == 16384 * MIB &&
	       c.snapshot_time_min == 0 && c.termination_grace_days == 5,
	   "values");
	coffer_config_free(&c);

	ok(parse(&c, "key_file = \"  spaced  \"\nsnapshot_target = a # not a comment\n") == 0,
	   "quoted blanks, '#' inside a value");
	ok(c.key_file && strcmp(c.key_file, "  spaced  ") == 0, "quotes keep blanks");
	ok(c.snapshot_target && strcmp(c.snapshot_target, "a # not a comment") == 0,
	   "no inline comments");
	coffer_config_free(&c);

	ok(parse(&c, "key_file = \"a\"b\"\n") == 0 && strcmp(c.key_file, "a\"b") == 0,
	   "only the outer quotes are removed");
	coffer_config_free(&c);
	ok(parse(&c, "key_file = caf\xc3\xa9\n") == 0 && strcmp(c.key_file, "caf\xc3\xa9") == 0,
	   "UTF-8 in a value");
	coffer_config_free(&c);
}

/* Each bad text must fail with COFFER_ECONFIG, a detail naming the line, the
 * given fragment, and leave the struct with defaults. */
static void bad(const char *text, size_t n, size_t line, const char *fragment)
{
	struct coffer_config c;
	char want[64];
	int r;

	c.key_file = (char *)"garbage";
	c.data_retention_days = -99;
	r = coffer_config_parse(&c, "coffer.conf", text, n);
	snprintf(want, sizeof want, "coffer.conf:%zu: ", line);
	ok(r == COFFER_ECONFIG, "error for line %zu (%s): %d", line, fragment, r);
	ok(strncmp(coffer_errmsg(), want, strlen(want)) == 0 &&
	       strstr(coffer_errmsg(), fragment) != NULL,
	   "detail \"%s\" has \"%s\" and \"%s\"", coffer_errmsg(), want, fragment);
	ok(is_default(&c), "struct left with defaults");
}

#define BAD(text, line, fragment) bad(text, sizeof(text) - 1, line, fragment)

static void test_errors(void)
{
	char *big;
	size_t n;

	BAD("data_retention_days = 0\n", 1, "data_retention_days must be between 1 and 36500");
	BAD("# c\ndata_retention_days = -3\n", 2, "data_retention_days must be between 1");
	BAD("\n\nmetadata_retention_days = 0\n", 3, "metadata_retention_days must be between 1");
	BAD("metadata_retention_days = -1\n", 1, "(got -1)");
	BAD("data_retention_days = 36501\n", 1, "between 1 and 36500");
	BAD("data_retention_days = 99999999999999999999999\n", 1, "between 1 and 36500");
	BAD("termination_grace_days = -1\n", 1, "termination_grace_days must be between 0");
	BAD("data_retention_days = 3 days\n", 1, "is not a whole number of days");
	BAD("data_retention_days = 1.5\n", 1, "is not a whole number of days");
	BAD("data_retention_days = -\n", 1, "is not a whole number of days");
	BAD("data_retention_days = 0x10\n", 1, "is not a whole number of days");
	BAD("snapshot_time = 24:00\n", 1, "not a time of day");
	BAD("snapshot_time = 02:60\n", 1, "not a time of day");
	BAD("snapshot_time = 2\n", 1, "is not a time HH:MM");
	BAD("snapshot_time = 02:0\n", 1, "is not a time HH:MM");
	BAD("snapshot_time = 002:00\n", 1, "is not a time HH:MM");
	BAD("snapshot_time = 02:00:00\n", 1, "is not a time HH:MM");
	BAD("snapshot_time = :00\n", 1, "is not a time HH:MM");
	BAD("snapshot_time = -1:00\n", 1, "is not a time HH:MM");
	BAD("index_map_size = 64X\n", 1, "is not a size");
	BAD("index_map_size = M\n", 1, "is not a size");
	BAD("index_map_size = -64M\n", 1, "is not a size");
	BAD("index_map_size = 6 4M\n", 1, "is not a size");
	BAD("index_map_size = 64MB\n", 1, "is not a size");
	BAD("index_map_size = 1K\n", 1, "index_map_size must be between");
	BAD("index_map_size = 0\n", 1, "index_map_size must be between");
	BAD("index_map_size = 99999999999999999999999\n", 1, "index_map_size must be between");
	BAD("index_map_size = 17179869184G\n", 1, "index_map_size must be between");
	BAD("max_message_size = 17G\n", 1, "max_message_size must be between");
	BAD("max_message_size = 1023\n", 1, "max_message_size must be between");
	BAD("mount_cache_size = 1023K\n", 1, "mount_cache_size must be between");
	BAD("mount_cache_size = 65G\n", 1, "mount_cache_size must be between");
	BAD("retention_days = 30\n", 1, "unknown key \"retention_days\"");
	BAD("Data_Retention_Days = 30\n", 1, "unknown key");
	BAD("data_retention_days = 30\ndata_retention_days = 40\n", 2,
	    "duplicate key data_retention_days (first set on line 1)");
	BAD("key_file = a\n\n# x\nkey_file = a\n", 4, "duplicate key key_file");
	BAD("data_retention_days 30\n", 1, "expected \"key = value\"");
	BAD("[store]\n", 1, "section headers are not used");
	BAD(" = 30\n", 1, "missing key");
	BAD("key_file =\n", 1, "key_file: empty value");
	BAD("key_file = \"\"\n", 1, "key_file: empty value");
	BAD("snapshot_target =   \n", 1, "snapshot_target: empty value");
	BAD("key_file = \"abc\n", 1, "unterminated quoted value");
	BAD("key_file = \"\n", 1, "unterminated quoted value");
	BAD("key_file = \"a\tb\"\n", 1, "control character in value");
	BAD("key_file = a\tb\n", 1, "control character in value");
	BAD("key_file = a\x01"
	    "b\n",
	    1, "control character (0x01)");
	BAD("# comment \x1b[31m\n", 1, "control character (0x1b)");
	BAD("key_file = a\x7f\n", 1, "control character (0x7f)");
	BAD("key_file = a\rb\n", 1, "control character (0x0d)");
	BAD("\n\nkey_file = a\0b\n", 3, "control character (0x00)");
	BAD("data_retention_days = 30\0\n", 1, "control character (0x00)");

	/* A line of exactly 4096 bytes is fine; 4097 is not. */
	n = 4096;
	big = malloc(n + 64);
	memset(big, '#', n);
	strcpy(big + n, "\nkey_file = x\n");
	{
		struct coffer_config c;

		ok(parse(&c, big) == 0 && c.key_file && strcmp(c.key_file, "x") == 0,
		   "a 4096-byte line is accepted");
		coffer_config_free(&c);
	}
	memset(big, '#', n + 1);
	strcpy(big + n + 1, "\n");
	bad(big, strlen(big), 1, "line longer than 4096 bytes");
	free(big);

	/* String values are bounded at 4000 bytes, on load and on save. */
	big = malloc(5000);
	strcpy(big, "\nkey_file = ");
	memset(big + 12, 'k', 4000);
	strcpy(big + 12 + 4000, "\n");
	{
		struct coffer_config c;
		int r;

		ok(parse(&c, big) == 0 && c.key_file && strlen(c.key_file) == 4000,
		   "a 4000-byte value is accepted");
		ok(coffer_config_save(&c, path_of_tmp("long.conf")) == 0, "and saved");
		coffer_config_free(&c);
		ok(coffer_config_load(&c, path_of_tmp("long.conf")) == 0 && c.key_file &&
		       strlen(c.key_file) == 4000,
		   "and loaded back");
		coffer_config_free(&c);
		c.key_file = big + 2;
		r = coffer_config_save(&c, path_of_tmp("long.conf"));
		ok(r == COFFER_EINVAL && strstr(coffer_errmsg(), "longer than 4000"),
		   "save refuses a longer value: %s", coffer_errmsg());
		c.key_file = NULL;
	}
	memmove(big + 13, big + 12, 4002);
	big[12] = 'k';
	bad(big, strlen(big), 2, "key_file: value longer than 4000 bytes");
	free(big);

	/* The whole text is bounded at 1 MiB. */
	n = 1024 * 1024 + 1;
	big = malloc(n);
	memset(big, '\n', n);
	{
		struct coffer_config c;
		int r = coffer_config_parse(&c, "coffer.conf", big, n);

		ok(r == COFFER_ECONFIG && strstr(coffer_errmsg(), "larger than 1048576 bytes"),
		   "text over 1 MiB refused: %s", coffer_errmsg());
		ok(is_default(&c), "defaults after the size error");
		ok(coffer_config_parse(&c, "coffer.conf", big, n - 1) == 0,
		   "exactly 1 MiB of blank lines accepted");
	}
	free(big);
}

static void write_text(const char *path, const char *text)
{
	ok(coffer_io_write_file_atomic(path, text, strlen(text), 0600) == 0, "write %s", path);
}

static int same(const struct coffer_config *a, const struct coffer_config *b)
{
	return ((!a->key_file && !b->key_file) ||
	        (a->key_file && b->key_file && strcmp(a->key_file, b->key_file) == 0)) &&
	       ((!a->snapshot_target && !b->snapshot_target) ||
	        (a->snapshot_target && b->snapshot_target &&
	         strcmp(a->snapshot_target, b->snapshot_target) == 0)) &&
	       a->data_retention_days == b->data_retention_days &&
	       a->metadata_retention_days == b->metadata_retention_days &&
	       a->termination_grace_days == b->termination_grace_days &&
	       a->snapshot_time_min == b->snapshot_time_min &&
	       a->index_map_size == b->index_map_size &&
	       a->max_message_size == b->max_message_size &&
	       a->mount_cache_size == b->mount_cache_size;
}

static void test_load_save(void)
{
	const char *dir = tap_tmpdir();
	char path[4300], store[4200];
	struct coffer_config c, back;
	struct coffer_buf text = COFFER_BUF_INIT;
	struct stat st;
	int r;

	snprintf(path, sizeof path, "%s/coffer.conf", dir);
	snprintf(store, sizeof store, "%s/store", dir);

	r = coffer_config_load(&c, path);
	ok(r == COFFER_ENOTFOUND, "missing file is ENOTFOUND (%d)", r);
	ok(is_default(&c), "defaults after a missing file");

	write_text(path, "data_retention_days = 14\nsnapshot_time = 03:30\n");
	ok(coffer_config_load(&c, path) == 0 && c.data_retention_days == 14 &&
	       c.snapshot_time_min == 210,
	   "load a file");
	coffer_config_free(&c);

	write_text(path, "data_retention_days = 14\nbogus = 1\n");
	r = coffer_config_load(&c, path);
	ok(r == COFFER_ECONFIG, "load reports a bad file");
	ok(strstr(coffer_errmsg(), "coffer.conf:2: unknown key \"bogus\"") != NULL,
	   "with the file and line: %s", coffer_errmsg());
	ok(is_default(&c), "defaults after a bad file");

	{
		char *big = malloc(2 * 1024 * 1024);

		memset(big, '\n', 2 * 1024 * 1024);
		ok(coffer_io_write_file_atomic(path, big, 2 * 1024 * 1024, 0600) == 0,
		   "write a 2 MiB file");
		free(big);
	}
	r = coffer_config_load(&c, path);
	ok(r == COFFER_ECONFIG && strstr(coffer_errmsg(), "larger than"),
	   "an oversized file is refused: %s", coffer_errmsg());

	/* Defaults: save, check the text, load back. */
	coffer_config_defaults(&c);
	ok(coffer_config_save(&c, path) == 0, "save defaults");
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "saved with mode 0600");
	ok(coffer_io_read_file(path, 1 << 20, &text) == 0, "read it back");
	ok(strstr(coffer_buf_str(&text), "\n# key_file = ") != NULL, "unset key_file commented");
	ok(strstr(coffer_buf_str(&text), "\n# snapshot_target = ") != NULL,
	   "unset snapshot_target commented");
	ok(strstr(coffer_buf_str(&text), "\ndata_retention_days = 30\n") &&
	       strstr(coffer_buf_str(&text), "\nmetadata_retention_days = 180\n") &&
	       strstr(coffer_buf_str(&text), "\ntermination_grace_days = 30\n") &&
	       strstr(coffer_buf_str(&text), "\nsnapshot_time = 02:00\n") &&
	       strstr(coffer_buf_str(&text), "\nindex_map_size = 64M\n") &&
	       strstr(coffer_buf_str(&text), "\nmax_message_size = 256M\n"),
	   "every key listed");
	ok(coffer_config_load(&back, path) == 0 && same(&c, &back), "defaults round trip");
	coffer_config_free(&back);
	coffer_buf_free(&text);

	/* Every field set, odd values. */
	coffer_config_defaults(&c);
	c.key_file = strdup("/etc/coffer/a \"quoted\" # key");
	c.snapshot_target = strdup("  /srv/snap  ");
	c.data_retention_days = 1;
	c.metadata_retention_days = 36500;
	c.termination_grace_days = 0;
	c.snapshot_time_min = 23 * 60 + 7;
	c.index_map_size = 3 * 1024 * MIB + 512 * 1024;
	c.max_message_size = 1000;
	r = coffer_config_save(&c, path);
	ok(r == COFFER_EINVAL, "save refuses a value load would refuse (%d)", r);
	c.max_message_size = 12345678;
	ok(coffer_config_save(&c, path) == 0, "save every field");
	ok(coffer_config_load(&back, path) == 0, "load it (%s)", coffer_errmsg());
	ok(same(&c, &back), "full round trip");
	coffer_config_free(&back);

	/* A directory stands for STORE/coffer.conf. */
	ok(mkdir(store, 0700) == 0, "mkdir store");
	ok(coffer_config_save(&c, store) == 0, "save to a store directory");
	snprintf(path, sizeof path, "%s/coffer.conf", store);
	ok(stat(path, &st) == 0 && S_ISREG(st.st_mode), "wrote STORE/coffer.conf");
	ok(coffer_config_load(&back, store) == 0 && same(&c, &back), "load from the directory");
	coffer_config_free(&back);

	free(c.key_file);
	c.key_file = strdup("bad\nline");
	r = coffer_config_save(&c, store);
	ok(r == COFFER_EINVAL && strstr(coffer_errmsg(), "key_file"),
	   "save refuses a control character: %s", coffer_errmsg());
	free(c.key_file);
	c.key_file = strdup("");
	ok(coffer_config_save(&c, store) == COFFER_EINVAL, "save refuses an empty string");
	ok(coffer_config_load(&back, store) == 0 && back.key_file &&
	       strcmp(back.key_file, "/etc/coffer/a \"quoted\" # key") == 0,
	   "a refused save leaves the old file");
	coffer_config_free(&back);
	coffer_config_free(&c);

	/* A save that cannot write reports it. */
	snprintf(path, sizeof path, "%s/no/such/dir/coffer.conf", dir);
	coffer_config_defaults(&c);
	r = coffer_config_save(&c, path);
	ok(r == COFFER_ENOTFOUND, "save into a missing directory fails (%d: %s)", r,
	   coffer_errmsg());
}

int main(void)
{
	test_defaults();
	test_every_key();
	test_errors();
	test_load_save();
	return tap_done();
}
