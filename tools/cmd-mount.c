/*
 * cmd-mount.c: `coffer mount` and `coffer umount` (maildir/mount.h).
 *
 * `coffer mount` forks before it opens anything (LMDB environments must
 * not cross fork()): the child becomes the daemon, mounts, and reports
 * through a pipe; the parent exits 0 once the mount is usable, or with the
 * daemon's error. --foreground runs the daemon in the command itself.
 */
#include "cmds.h"

#include "engine/errors.h"
#include "maildir/mount.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct mount_cli {
	int foreground;
	const char *allow_user;
	const char *fuse_opts;
};

enum { OPT_FOREGROUND = 1100, OPT_ALLOW_USER, OPT_O };

static int mount_opt(int opt, const char *arg, void *ctx)
{
	struct mount_cli *o = ctx;

	if (opt == OPT_FOREGROUND)
		o->foreground = 1;
	else if (opt == OPT_ALLOW_USER)
		o->allow_user = arg;
	else if (opt == OPT_O)
		o->fuse_opts = arg;
	return 0;
}

/* Clears a mount left by a daemon that died (ENOTCONN) so a new one can
 * take its place. */
static void clear_stale(const char *mp)
{
	struct stat sb;

	if (stat(mp, &sb) == 0 || errno != ENOTCONN)
		return;
	if (umount2(mp, MNT_DETACH) < 0) {
		pid_t pid = fork();

		if (pid == 0) {
			execlp("fusermount3", "fusermount3", "-u", "-z", mp, (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
}

static int mount_main(struct cli *cli, int argc, char **argv, struct coffer_mount_opts *o_out);

static int run_mount(struct cli *cli, int argc, char **argv)
{
	struct coffer_mount_opts o;
	int rc;

	memset(&o, 0, sizeof o);
	rc = mount_main(cli, argc, argv, &o);
	free((char *)o.store_path);
	free((char *)o.key_file);
	free((char *)o.mountpoint);
	return rc;
}

static int mount_main(struct cli *cli, int argc, char **argv, struct coffer_mount_opts *op)
{
	static const struct cli_opt opts[] = {
		{ "foreground", 0, OPT_FOREGROUND },
		{ "allow-user", 1, OPT_ALLOW_USER },
		{ "o", 1, OPT_O },
		{ NULL, 0, 0 },
	};
	struct mount_cli mc = { 0, NULL, NULL };
	struct coffer_mount_opts o = *op;
	char *pos[1], line[600];
	int n, rc, fds[2];
	pid_t pid;
	ssize_t got;

	/* "-o X" is the FUSE convention: accept it beside --o */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-o") == 0)
			argv[i] = "--o";
	n = cli_parse(&cmd_mount, argc, argv, opts, mount_opt, &mc, NULL, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 1)
		return cli_usage_error("mount", "needs the MOUNTPOINT");
	/* absolute paths: the daemon leaves the working directory */
	o.store_path = op->store_path = realpath(cli->store_path, NULL);
	o.key_file = op->key_file = cli->key_file ? realpath(cli->key_file, NULL) : NULL;
	o.mountpoint = op->mountpoint = realpath(pos[0], NULL);
	if (o.store_path == NULL || o.mountpoint == NULL || (cli->key_file && !o.key_file)) {
		fprintf(stderr, "coffer mount: %s: %s\n",
		        o.store_path == NULL   ? cli->store_path
		        : o.mountpoint == NULL ? pos[0]
		                               : cli->key_file,
		        strerror(errno));
		return EXIT_NOINPUT;
	}
	o.fuse_opts = mc.fuse_opts;
	o.uid = getuid();
	o.gid = getgid();
	o.ready_fd = -1;
	if (mc.allow_user) {
		struct passwd *pw = getpwnam(mc.allow_user);

		if (pw == NULL) {
			fprintf(stderr, "coffer mount: no such user '%s'\n", mc.allow_user);
			return EXIT_NOUSER;
		}
		o.uid = pw->pw_uid;
		o.gid = pw->pw_gid;
		o.allow_other = 1;
	}
	clear_stale(pos[0]);
	if (mc.foreground) {
		rc = coffer_mount_run(&o);
		return rc < 0 ? cli_fail(rc) : 0;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		fprintf(stderr, "coffer mount: pipe: %s\n", strerror(errno));
		return EXIT_SOFTWARE;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "coffer mount: fork: %s\n", strerror(errno));
		return EXIT_SOFTWARE;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		close(fds[0]);
		setsid();
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			close(null);
		}
		if (chdir("/") < 0)
			_exit(EXIT_SOFTWARE);
		o.ready_fd = fds[1];
		/* errors before the mount go to the parent through the pipe;
		 * later ones are logged by the daemon */
		rc = coffer_mount_run(&o);
		_exit(rc < 0 ? cli_exit_code(rc) : 0);
	}
	close(fds[1]);
	got = read(fds[0], line, sizeof line - 1);
	close(fds[0]);
	if (got > 0) {
		line[got] = '\0';
		if (strcmp(line, "ok\n") == 0)
			return 0;
		rc = atoi(line);
		fprintf(stderr, "coffer: %s", strchr(line, ' ') ? strchr(line, ' ') + 1 : line);
		waitpid(pid, NULL, 0);
		return cli_exit_code(rc);
	}
	waitpid(pid, &rc, 0);
	fprintf(stderr, "coffer mount: the mount daemon exited before mounting\n");
	return EXIT_SOFTWARE;
}

const struct cli_cmd cmd_mount = {
	"mount",
	"MOUNTPOINT [--foreground] [--allow-user USER] [-o FUSE_OPTIONS]",
	"Mounts the store at MOUNTPOINT (FUSE): MOUNTPOINT/<account>/ is that account's\n"
	"Maildir++ tree (cur/ new/ tmp/, .Folder/), for Dovecot or any Maildir reader.\n"
	"Needs the key file. Returns once the mount is usable; the daemon stays in the\n"
	"background (--foreground: in this process) and logs errors to stderr.\n"
	"--allow-user USER: files belong to USER (0600/0700), who alone (and root) may\n"
	"enter (allow_other + default_permissions). -o passes FUSE options (e.g.\n"
	"entry_timeout=60,attr_timeout=60). One mount per store. Unmount with\n"
	"'coffer umount MOUNTPOINT' (or fusermount3 -u). Where the kernel offers FUSE\n"
	"over io_uring (fuse module parameter enable_uring=Y), requests are served\n"
	"through it, one queue per CPU; COFFER_MOUNT_URING=0 turns that off.",
	run_mount,
};

static int run_umount(struct cli *cli, int argc, char **argv)
{
	char *pos[1];
	int n, rc, st;
	pid_t pid;

	n = cli_parse(&cmd_umount, argc, argv, NULL, NULL, NULL, NULL, pos, 1);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n != 1)
		return cli_usage_error("umount", "needs the MOUNTPOINT");
	if (umount2(pos[0], 0) < 0) {
		if (errno == EINVAL) {
			fprintf(stderr, "coffer umount: %s is not mounted\n", pos[0]);
			return EXIT_USAGE;
		}
		if (errno != EPERM) {
			fprintf(stderr, "coffer umount: %s: %s\n", pos[0], strerror(errno));
			return errno == EBUSY ? EXIT_TEMPFAIL : EXIT_IOERR;
		}
		/* not root: fusermount3 unmounts what this user mounted */
		pid = fork();
		if (pid == 0) {
			execlp("fusermount3", "fusermount3", "-u", pos[0], (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "coffer umount: fusermount3 -u %s failed\n", pos[0]);
			return EXIT_IOERR;
		}
	}
	/* the daemon writes out what it holds, then exits and drops its lock */
	rc = coffer_mount_wait_exit(cli->store_path, 60);
	return rc < 0 ? cli_fail(rc) : 0;
}

const struct cli_cmd cmd_umount = {
	"umount",
	"MOUNTPOINT",
	"Unmounts a 'coffer mount' of the store (--store) and waits until its daemon\n"
	"has written out every control file and exited.",
	run_umount,
};
