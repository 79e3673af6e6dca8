/*
 * cmds.h: the subcommands of `coffer`, one table entry each. Each file
 * cmd-*.c defines the entries for one group of commands.
 */
#ifndef COFFER_TOOLS_CMDS_H
#define COFFER_TOOLS_CMDS_H

#include "out.h"

extern const struct cli_cmd cmd_init;
extern const struct cli_cmd cmd_account;
extern const struct cli_cmd cmd_deliver;
extern const struct cli_cmd cmd_folders;
extern const struct cli_cmd cmd_ls;
extern const struct cli_cmd cmd_cat;
extern const struct cli_cmd cmd_import;
extern const struct cli_cmd cmd_export;
extern const struct cli_cmd cmd_verify;
extern const struct cli_cmd cmd_mount;
extern const struct cli_cmd cmd_umount;
extern const struct cli_cmd cmd_snapshot;
extern const struct cli_cmd cmd_restore;
extern const struct cli_cmd cmd_policy;
extern const struct cli_cmd cmd_worker;
extern const struct cli_cmd cmd_purge;
extern const struct cli_cmd cmd_audit;
extern const struct cli_cmd cmd_report;
extern const struct cli_cmd cmd_passwd;
extern const struct cli_cmd cmd_apppass;
extern const struct cli_cmd cmd_totp;
extern const struct cli_cmd cmd_auth;
extern const struct cli_cmd cmd_checkpassword;
extern const struct cli_cmd cmd_logins;
extern const struct cli_cmd cmd_security;

/* getopt_long over argv (argv[0] = subcommand) with the options every
 * subcommand has (--help, --json where json_ok). Fills positional[] (up to
 * max) and returns their count, or -1 after printing help (exit 0), or
 * -EXIT_USAGE after printing a usage error. Extra options come as
 * longopts/handler: handler(opt, optarg, ctx) returns 0 or an exit code. */
struct cli_opt {
	const char *name;
	int has_arg;
	int val;
};
/* Parses the global options (--store, --key-file, and their environment
 * defaults) into cli. Returns the index of the subcommand (argc if none), or
 * minus the index of an option it does not handle (--help, --version,
 * unknown ones). */
int cli_globals(int argc, char **argv, struct cli *cli);

int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, const struct cli_opt *opts,
              int (*handler)(int opt, const char *arg, void *ctx), void *ctx, int *json_r,
              char **positional, int max);

#endif
