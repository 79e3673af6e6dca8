/*
 * mount-path.c: paths and file names of the mount's tree (see mount.h).
 *
 * The tree has at most four levels below the mount root:
 *     /ACCOUNT/[.FOLDER/]{cur,new,tmp}/FILE
 *     /ACCOUNT/[.FOLDER/]CONTROL-FILE
 * Paths come from the kernel, already split and free of "//", but every
 * component is still checked here: the names end up in MACs and boxes.
 */
#include "mount.h"

#include "engine/errors.h"
#include "maildir/name.h"

#include <string.h>

int coffer_mount_is_subdir(const char *name, size_t n, int *sub_r)
{
	static const char *const subs[] = { "cur", "new", "tmp" };

	if (n != 3)
		return 0;
	for (int i = 0; i < 3; i++) {
		if (memcmp(name, subs[i], 3) == 0) {
			if (sub_r)
				*sub_r = i;
			return 1;
		}
	}
	return 0;
}

int coffer_mount_path_parse(const char *path, struct coffer_mount_path *p)
{
	const char *comp[5];
	size_t len[5], ncomp = 0;
	const char *s = path;

	memset(p, 0, sizeof *p);
	if (path == NULL || path[0] != '/')
		return coffer_err_set(COFFER_EINVAL, "mount: path is not absolute");
	s++;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if (n == 0 || n > COFFER_MAILDIR_NAME_MAX || (n == 1 && s[0] == '.') ||
		    (n == 2 && s[0] == '.' && s[1] == '.'))
			return coffer_err_set(COFFER_EINVAL, "mount: invalid path component");
		if (ncomp == 5)
			return coffer_err_set(COFFER_EINVAL, "mount: path too deep");
		comp[ncomp] = s;
		len[ncomp++] = n;
		s += n;
		if (*s == '/')
			s++;
	}
	if (ncomp == 0) {
		p->kind = COFFER_MP_ROOT;
		return 0;
	}
	p->acct = comp[0];
	p->acct_n = len[0];
	if (ncomp == 1) {
		p->kind = COFFER_MP_ACCT;
		return 0;
	}
	if (coffer_mount_is_subdir(comp[1], len[1], &p->sub)) {
		if (ncomp == 2) {
			p->kind = COFFER_MP_SUB;
			return 0;
		}
		if (ncomp == 3) {
			p->kind = COFFER_MP_FILE;
			p->name = comp[2];
			p->name_n = len[2];
			return 0;
		}
		return coffer_err_set(COFFER_EINVAL, "mount: path too deep");
	}
	if (ncomp == 2) {
		p->kind = COFFER_MP_ENTRY;
		p->name = comp[1];
		p->name_n = len[1];
		return 0;
	}
	if (comp[1][0] != '.')
		return coffer_err_set(COFFER_EINVAL, "mount: not a folder directory");
	p->dir = comp[1];
	p->dir_n = len[1];
	if (ncomp == 3) {
		if (coffer_mount_is_subdir(comp[2], len[2], &p->sub)) {
			p->kind = COFFER_MP_SUB;
		} else {
			p->kind = COFFER_MP_ENTRY;
			p->name = comp[2];
			p->name_n = len[2];
		}
		return 0;
	}
	if (ncomp == 4 && coffer_mount_is_subdir(comp[2], len[2], &p->sub)) {
		p->kind = COFFER_MP_FILE;
		p->name = comp[3];
		p->name_n = len[3];
		return 0;
	}
	return coffer_err_set(COFFER_EINVAL, "mount: path too deep");
}

int coffer_mount_message_name(struct coffer_buf *out, const char *unique, size_t n, int is_new,
                              unsigned flags, uint32_t keywords)
{
	int info = !is_new || flags != 0 || keywords != 0;

	return coffer_maildir_name_format(out, unique, n, info, flags, keywords);
}
