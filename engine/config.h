/*
 * config.h: coffer.conf, the store's settings, as INI-style `key = value`
 * lines at the store's root.
 *
 * Syntax: blank lines and lines starting with '#' or ';' are ignored;
 * whitespace around keys and values is trimmed; a value may be wrapped in
 * double quotes. Section headers are not used. An unknown key, a duplicate
 * key, a line without '=', or a value out of range is COFFER_ECONFIG with a
 * detail "coffer.conf:LINE: what is wrong": retention is too important to
 * let a typo pass silently.
 *
 * Reading never writes; coffer_config_save() writes atomically.
 */
#ifndef COFFER_CONFIG_H
#define COFFER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct coffer_config {
	char *key_file;              /* path recorded at init; may be NULL */
	char *snapshot_target;       /* NULL if unset */
	int data_retention_days;     /* default 30, 1..36500 */
	int metadata_retention_days; /* default 180, 1..36500 */
	int termination_grace_days;  /* default 30, 0..36500 */
	int snapshot_time_min;       /* minutes after 00:00 UTC; "02:00" -> 120 */
	uint64_t index_map_size;     /* bytes, default 64 MiB; "64M", "1G" accepted */
	uint64_t max_message_size;   /* bytes, default 256 MiB */
	uint64_t mount_cache_size;   /* bytes, default 256 MiB: the mount's decrypted LRU */
};

/* Fills defaults. Owns no memory until a string field is set. */
void coffer_config_defaults(struct coffer_config *c);
/* Parses text (n bytes, need not be NUL-terminated); name is used in errors
 * ("coffer.conf"). On failure c is left with defaults. */
int coffer_config_parse(struct coffer_config *c, const char *name, const char *text, size_t n);
/* Reads STORE/coffer.conf. A missing file is COFFER_ENOTFOUND. */
int coffer_config_load(struct coffer_config *c, const char *path);
/* Writes every setting, with comments, atomically (mode 0600). */
int coffer_config_save(const struct coffer_config *c, const char *path);
void coffer_config_free(struct coffer_config *c);

#endif
