/*
 * cmd-export.c: `coffer export NAME (--to DIR | --tar FILE)`.
 */
#include "cmds.h"

#include "engine/account.h"
#include "engine/errors.h"
#include "maildir/export.h"

#include <stdio.h>
#include <string.h>

struct export_opts {
	const char *to;
	const char *tar;
	int twice;
};

enum { OPT_TO = 1000, OPT_TAR };

static int export_opt(int opt, const char *arg, void *ctx)
{
	struct export_opts *o = ctx;

	if (opt == OPT_TO) {
		o->twice |= o->to != NULL;
		o->to = arg;
	} else if (opt == OPT_TAR) {
		o->twice |= o->tar != NULL;
		o->tar = arg;
	}
	return 0;
}

static int run_export(struct cli *cli, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{ "to", 1, OPT_TO },
		{ "tar", 1, OPT_TAR },
		{ NULL, 0, 0 },
	};
	struct export_opts o = { NULL, NULL, 0 };
	struct coffer_export_stats stats;
	struct coffer_mailbox *mb = NULL;
	char *pos[1];
	int n, rc, code;

	n = cli_parse(&cmd_export, argc, argv, opts, export_opt, &o, NULL, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 1)
		return cli_usage_error("export", "needs the account NAME");
	if ((o.to == NULL) == (o.tar == NULL) || o.twice)
		return cli_usage_error("export", "needs exactly one of --to DIR or --tar FILE");
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	memset(&stats, 0, sizeof stats);
	rc = coffer_mailbox_open(cli->st, pos[0], strlen(pos[0]), &mb);
	if (rc == 0)
		rc = o.to ? coffer_export_dir(mb, o.to, &stats)
		          : coffer_export_tar(mb, o.tar, &stats);
	coffer_mailbox_close(&mb);
	if (rc < 0) {
		code = cli_fail(rc);
		if (stats.failed_at == COFFER_EXPORT_FAILED_CREATE)
			code = EXIT_CANTCREAT;
		else if (stats.failed_at == COFFER_EXPORT_FAILED_WRITE)
			code = rc == COFFER_ENOSPACE ? EXIT_TEMPFAIL : EXIT_IOERR;
		return code;
	}
	/* with --tar - standard output is the archive: say nothing */
	if (o.tar && strcmp(o.tar, "-") == 0)
		return 0;
	printf("exported %llu messages (%llu bytes) in %llu folders of %s to %s\n",
	       (unsigned long long)stats.messages, (unsigned long long)stats.bytes,
	       (unsigned long long)stats.folders, pos[0], o.to ? o.to : o.tar);
	if (stats.skipped)
		printf("%llu messages were expunged while exporting and are not included\n",
		       (unsigned long long)stats.skipped);
	return fflush(stdout) == 0 ? 0 : EXIT_IOERR;
}

const struct cli_cmd cmd_export = {
	"export",
	"NAME (--to DIR | --tar FILE)",
	"Writes account NAME out as a standard Maildir++ tree: INBOX at the root, each\n"
	"folder as a dot-directory (\".Lists.debian\", modified UTF-7) with cur/ new/ tmp/\n"
	"and maildirfolder, flags and keywords in the file names (keywords named in each\n"
	"folder's dovecot-keywords), a Dovecot \"subscriptions\" file listing every folder,\n"
	"each message byte for byte with its internal date as mtime. Needs the key file.\n"
	"  --to DIR    into DIR, which must not exist (it is created, mode 0700) or be\n"
	"              empty; files are 0600. Durable (synced) when the exit is 0; on a\n"
	"              failure the partial tree is removed.\n"
	"  --tar FILE  as a tar (pax) archive, zstd-compressed when FILE ends in .zst;\n"
	"              FILE must not exist; it appears only complete and synced.\n"
	"              \"--tar -\" streams the archive to standard output.\n"
	"Exit codes: 0 exported; 64 bad usage; 67 unknown or terminated account; 79\n"
	"shredded account; 73 the target cannot be created (exists, not empty, no\n"
	"permission, missing parent directory); 74 writing the target failed midway;\n"
	"75 the disk is full; 1 a damaged message (named) stops the export.",
	run_export,
};
