/*
 * fuzz-config.c: libFuzzer target for engine/config.c.
 *
 * Every input goes through coffer_config_parse(). A parse that succeeds must
 * give values inside the documented ranges, and must survive
 * coffer_config_save() -> coffer_config_load() unchanged (in a scratch
 * directory under $TMPDIR, made once). A parse that fails must say
 * COFFER_ECONFIG with a detail naming the input, and leave the defaults.
 */
#include "engine/config.h"
#include "engine/errors.h"
#include "fuzz-util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char conf_path[4200];

static void setup(void)
{
	static char dir[4096];
	const char *base = getenv("TMPDIR");

	if (conf_path[0])
		return;
	snprintf(dir, sizeof dir, "%s/coffer-fuzz-config-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(conf_path, sizeof conf_path, "%s/coffer.conf", dir);
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int is_default(const struct coffer_config *c)
{
	struct coffer_config d;

	coffer_config_defaults(&d);
	return !c->key_file && !c->snapshot_target &&
	       c->data_retention_days == d.data_retention_days &&
	       c->metadata_retention_days == d.metadata_retention_days &&
	       c->termination_grace_days == d.termination_grace_days &&
	       c->snapshot_time_min == d.snapshot_time_min &&
	       c->index_map_size == d.index_map_size && c->max_message_size == d.max_message_size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coffer_config c, back;
	int r;

	setup();
	r = coffer_config_parse(&c, "fuzz.conf", (const char *)data, size);
	if (r < 0) {
		if (r != COFFER_ECONFIG || strncmp(coffer_errmsg(), "fuzz.conf:", 10) != 0 ||
		    !is_default(&c))
			abort();
		return 0;
	}
	if (c.data_retention_days < 1 || c.data_retention_days > 36500 ||
	    c.metadata_retention_days < 1 || c.metadata_retention_days > 36500 ||
	    c.termination_grace_days < 0 || c.termination_grace_days > 36500 ||
	    c.snapshot_time_min < 0 || c.snapshot_time_min >= 1440 || c.index_map_size == 0 ||
	    c.max_message_size == 0)
		abort();
	if (c.key_file && (!*c.key_file || strpbrk(c.key_file, "\n\r\t")))
		abort();
	if (c.snapshot_target && (!*c.snapshot_target || strpbrk(c.snapshot_target, "\n\r\t")))
		abort();

	r = coffer_config_save(&c, conf_path);
	if (r < 0)
		abort();
	r = coffer_config_load(&back, conf_path);
	if (r < 0)
		abort();
	if (!same_str(c.key_file, back.key_file) ||
	    !same_str(c.snapshot_target, back.snapshot_target) ||
	    c.data_retention_days != back.data_retention_days ||
	    c.metadata_retention_days != back.metadata_retention_days ||
	    c.termination_grace_days != back.termination_grace_days ||
	    c.snapshot_time_min != back.snapshot_time_min ||
	    c.index_map_size != back.index_map_size || c.max_message_size != back.max_message_size)
		abort();
	coffer_config_free(&back);
	coffer_config_free(&c);
	return 0;
}
