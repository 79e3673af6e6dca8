/*
 * cmd-account.c: `coffer account add|list|show|terminate|reactivate`.
 */
#include "cmds.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/names.h"
#include "policy/action.h"

#include <stdio.h>
#include <string.h>

static void info_json(struct coffer_buf *b, const struct coffer_account_info *info)
{
	int first = 1;

	coffer_buf_putc(b, '{');
	json_key_str(b, &first, "name", info->name);
	json_key_str(b, &first, "state", coffer_account_state_name(info->state));
	json_key_time(b, &first, "created_at", info->created_at);
	json_key_time(b, &first, "terminated_at", info->terminated_at);
	json_key_time(b, &first, "shredded_at", info->shredded_at);
	json_key_u64(b, &first, "folders", info->folders);
	json_key_u64(b, &first, "messages", info->messages);
	json_key_u64(b, &first, "bytes", info->bytes);
	coffer_buf_putc(b, '}');
}

static void info_text_row(struct coffer_buf *b, const struct coffer_account_info *info)
{
	char created[COFFER_CLOCK_ISO_MAX];

	coffer_clock_format(info->created_at, created);
	coffer_buf_printf(b, "%-40s %-10s %s %8llu msgs %12llu bytes\n",
	                  info->name ? info->name : "(shredded)",
	                  coffer_account_state_name(info->state), created,
	                  (unsigned long long)info->messages, (unsigned long long)info->bytes);
}

struct list_ctx {
	struct coffer_buf out;
	int json;
	int count;
};

static int list_one(const struct coffer_account_info *info, void *arg)
{
	struct list_ctx *c = arg;

	if (c->json) {
		coffer_buf_puts(&c->out, c->count ? ",\n  " : "\n  ");
		info_json(&c->out, info);
	} else {
		info_text_row(&c->out, info);
	}
	c->count++;
	return coffer_buf_ok(&c->out);
}

static int show(struct cli *cli, const char *name, int json)
{
	struct coffer_account_info info;
	struct coffer_buf out = COFFER_BUF_INIT;
	char t[COFFER_CLOCK_ISO_MAX];
	int rc;

	rc = coffer_account_show(cli->st, name, strlen(name), &info);
	if (rc < 0)
		return cli_fail(rc);
	if (json) {
		info_json(&out, &info);
		coffer_buf_putc(&out, '\n');
	} else {
		coffer_buf_printf(&out, "name:       %s\nstate:      %s\n", info.name,
		                  coffer_account_state_name(info.state));
		coffer_clock_format(info.created_at, t);
		coffer_buf_printf(&out, "created:    %s\n", t);
		if (info.terminated_at) {
			coffer_clock_format(info.terminated_at, t);
			coffer_buf_printf(&out, "terminated: %s\n", t);
		}
		if (info.shredded_at) {
			coffer_clock_format(info.shredded_at, t);
			coffer_buf_printf(&out, "shredded:   %s\n", t);
		}
		coffer_buf_printf(&out, "folders:    %u\nmessages:   %llu\nbytes:      %llu\n",
		                  info.folders, (unsigned long long)info.messages,
		                  (unsigned long long)info.bytes);
	}
	rc = coffer_buf_ok(&out) < 0 ? cli_fail(COFFER_ENOMEM) : cli_write_stdout(&out);
	coffer_buf_free(&out);
	coffer_account_info_clear(&info);
	return rc;
}

static int run_account(struct cli *cli, int argc, char **argv)
{
	char *pos[2];
	const char *verb;
	int n, json, rc, p;

	n = cli_parse(&cmd_account, argc, argv, NULL, NULL, NULL, &json, pos, 2);
	if (n < 0)
		return n == -1 ? 0 : -n;
	if (n == 0)
		return cli_usage_error("account",
		                       "missing verb (add, list, show, terminate, reactivate)");
	verb = pos[0];
	if (strcmp(verb, "list") == 0) {
		struct list_ctx c = { COFFER_BUF_INIT, json, 0 };

		if (n != 1)
			return cli_usage_error("account", "list takes no name");
		if ((rc = cli_open_store(cli)) != 0)
			return rc;
		if (json)
			coffer_buf_putc(&c.out, '[');
		rc = coffer_account_list(cli->st, list_one, &c);
		if (rc < 0) {
			coffer_buf_free(&c.out);
			return cli_fail(rc);
		}
		if (json)
			coffer_buf_puts(&c.out, c.count ? "\n]\n" : "]\n");
		rc = cli_write_stdout(&c.out);
		coffer_buf_free(&c.out);
		return rc;
	}
	if (n != 2)
		return cli_usage_error("account", "%s needs an account NAME", verb);
	if (strcmp(verb, "add") && strcmp(verb, "show") && strcmp(verb, "terminate") &&
	    strcmp(verb, "reactivate"))
		return cli_usage_error("account", "unknown verb '%s'", verb);
	if ((rc = cli_open_store(cli)) != 0)
		return rc;
	if (strcmp(verb, "show") == 0)
		return show(cli, pos[1], json);
	if (strcmp(verb, "add") == 0) {
		struct coffer_account_info info;

		rc = coffer_account_add(cli->st, pos[1], strlen(pos[1]), &info);
		if (rc < 0)
			return cli_fail(rc);
		printf("added account %s\n", info.name);
		coffer_account_info_clear(&info);
		return 0;
	}
	if (strcmp(verb, "terminate") == 0) {
		rc = coffer_action_terminate(cli->st, pos[1], strlen(pos[1]), &p);
		if (rc < 0)
			return cli_fail(rc);
		cli_warn_pending(p);
		printf("terminated account %s: deliveries and access are refused, data is kept\n",
		       pos[1]);
		return 0;
	}
	rc = coffer_action_reactivate(cli->st, pos[1], strlen(pos[1]), &p);
	if (rc < 0)
		return cli_fail(rc);
	cli_warn_pending(p);
	printf("reactivated account %s\n", pos[1]);
	return 0;
}

const struct cli_cmd cmd_account = {
	"account",
	"add|list|show|terminate|reactivate [NAME] [--json]",
	"Manages accounts. NAME is an email address.\n"
	"  add NAME         creates the account with its own keys and an INBOX\n"
	"  list [--json]    lists every account (needs the key file)\n"
	"  show NAME [--json]\n"
	"                   state, dates, folders, messages and bytes of one account\n"
	"  terminate NAME   refuses deliveries and access from now on; keeps the data\n"
	"  reactivate NAME  undoes terminate",
	run_account,
};
