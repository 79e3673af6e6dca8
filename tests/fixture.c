/*
 * fixture.c: set-ups the unit tests share (see fixture.h).
 */
#include "fixture.h"

#include "tap.h"

#include "maildir/deliver.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fixture_store(const char *target, struct coffer_store **st_r, struct fixture_paths *p_r)
{
	static struct fixture_paths none;
	struct fixture_paths *p = p_r ? p_r : &none;
	char conf[1100];
	FILE *f;
	int rc;

	snprintf(p->store, sizeof p->store, "%s/store", tap_tmpdir());
	snprintf(p->key, sizeof p->key, "%s/coffer.key", tap_tmpdir());
	snprintf(p->target, sizeof p->target, "%s/%s", tap_tmpdir(), target ? target : "");
	rc = coffer_store_init(p->store, p->key, st_r);
	if (rc < 0 || target == NULL)
		return rc;
	coffer_store_close(st_r);
	snprintf(conf, sizeof conf, "%s/coffer.conf", p->store);
	f = fopen(conf, "a");
	if (f == NULL || fprintf(f, "snapshot_target = \"%s\"\n", p->target) < 0 || fclose(f) != 0)
		return -1;
	return coffer_store_open(p->store, p->key, st_r);
}

int fixture_deliver(struct coffer_store *st, const char *name, const char *text)
{
	char tmpl[PATH_MAX];
	struct coffer_deliver_result res;
	size_t n = strlen(text);
	int fd, rc;

	snprintf(tmpl, sizeof tmpl, "%s/msg.XXXXXX", tap_tmpdir());
	fd = mkstemp(tmpl);
	if (fd < 0)
		return -1;
	unlink(tmpl);
	if (write(fd, text, n) != (ssize_t)n || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	rc = coffer_deliver(st, name, NULL, fd, &res);
	close(fd);
	return rc;
}
