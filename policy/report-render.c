/*
 * report-render.c: the retention report as text, JSON and HTML (see
 * report.h). The HTML page is self-contained: inline CSS and an inline SVG
 * timeline, no scripts, no external fetches. Every string from the model is
 * escaped for its context (JSON strings, HTML text and attributes).
 */
#include "report.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/record.h"

#include <stdio.h>
#include <string.h>

static const char *iso(int64_t ns, char *buf)
{
	if (ns == 0)
		return "-";
	coffer_clock_format(ns, buf);
	return buf;
}

static const char *day(int64_t ns, char *buf)
{
	if (ns == 0)
		return "-";
	coffer_clock_format_date(ns, buf);
	return buf;
}

/* The latest time anything of the account is held until. */
static int64_t held_until(const struct coffer_report_account *a)
{
	int64_t t = a->events_expire;

	for (size_t i = 0; i < a->n_snaps; i++)
		if (a->snaps[i].expires_at > t)
			t = a->snaps[i].expires_at;
	if (a->next_action_at > t)
		t = a->next_action_at;
	return t;
}

int coffer_report_text(const struct coffer_report *r, struct coffer_buf *o)
{
	char t1[COFFER_CLOCK_ISO_MAX], t2[COFFER_CLOCK_ISO_MAX];

	coffer_buf_printf(o, "Coffer retention report, generated %s\n\n", iso(r->generated_at, t1));
	coffer_buf_printf(o,
	                  "Policy: backups and deleted mail kept %d days; access and delivery "
	                  "metadata %d days;\n        terminated accounts kept %d days; daily "
	                  "snapshot at %02d:%02d UTC.\n\n",
	                  r->policy->data_retention_days, r->policy->metadata_retention_days,
	                  r->policy->termination_grace_days, r->policy->snapshot_time_min / 60,
	                  r->policy->snapshot_time_min % 60);
	for (size_t i = 0; i < r->n_accounts; i++) {
		const struct coffer_report_account *a = &r->accounts[i];

		coffer_buf_printf(o, "Account %s\n", a->name ? a->name : a->pseudonym);
		coffer_buf_printf(o, "  state:            %s", coffer_account_state_name(a->state));
		if (a->state == COFFER_ACCOUNT_TERMINATED)
			coffer_buf_printf(o, " since %s", day(a->terminated_at, t1));
		if (a->state == COFFER_ACCOUNT_SHREDDED)
			coffer_buf_printf(o, " on %s", day(a->shredded_at, t1));
		coffer_buf_printf(o, "\n  live:             %llu messages, %llu bytes, oldest %s\n",
		                  (unsigned long long)a->messages, (unsigned long long)a->bytes,
		                  day(a->oldest_message, t1));
		coffer_buf_printf(o, "  snapshots:        %zu", a->n_snaps);
		if (a->n_snaps)
			coffer_buf_printf(o, " (%s .. %s), the last expires %s", a->snaps[0].id,
			                  a->snaps[a->n_snaps - 1].id,
			                  day(a->snaps[a->n_snaps - 1].expires_at, t2));
		coffer_buf_printf(o, "\n  metadata:         %llu events",
		                  (unsigned long long)a->events);
		if (a->events)
			coffer_buf_printf(o, ", oldest %s, expires %s", day(a->oldest_event, t1),
			                  day(a->events_expire, t2));
		coffer_buf_printf(o, "\n  next action:      %s", a->next_action);
		if (a->next_action_at)
			coffer_buf_printf(o, " on %s", day(a->next_action_at, t1));
		coffer_buf_puts(o, "\n\n");
	}
	coffer_buf_printf(o, "Snapshots: %zu\n", r->n_snaps);
	for (size_t i = 0; i < r->n_snaps; i++)
		coffer_buf_printf(o, "  %-20s taken %s  expires %s\n", r->snaps[i].id,
		                  iso(r->snaps[i].created_at, t1), iso(r->snaps[i].expires_at, t2));
	if (r->target_problem[0])
		coffer_buf_printf(o, "  (the snapshot target could not be read: %s)\n",
		                  r->target_problem);
	coffer_buf_printf(o, "\nOverdue: %s\n", r->n_overdue ? "" : "none");
	for (size_t i = 0; i < r->n_overdue; i++)
		coffer_buf_printf(o, "  %s %s: held past %s\n", r->overdue[i].what,
		                  r->overdue[i].subject, iso(r->overdue[i].held_until, t1));
	return coffer_buf_ok(o);
}

static void jstr(struct coffer_buf *o, const char *key, const char *v, int comma)
{
	coffer_buf_printf(o, "%s\"%s\": ", comma ? ", " : "", key);
	if (v)
		coffer_buf_put_json_str(o, v, strlen(v));
	else
		coffer_buf_puts(o, "null");
}

static void jtime(struct coffer_buf *o, const char *key, int64_t ns, int comma)
{
	char t[COFFER_CLOCK_ISO_MAX];

	jstr(o, key, ns ? iso(ns, t) : NULL, comma);
}

int coffer_report_json(const struct coffer_report *r, struct coffer_buf *o)
{
	char t[16];

	coffer_buf_puts(o, "{");
	jtime(o, "generated_at", r->generated_at, 0);
	snprintf(t, sizeof t, "%02d:%02d", r->policy->snapshot_time_min / 60,
	         r->policy->snapshot_time_min % 60);
	coffer_buf_printf(o,
	                  ",\n \"policy\": {\"data_retention_days\": %d, "
	                  "\"metadata_retention_days\": %d, \"termination_grace_days\": %d",
	                  r->policy->data_retention_days, r->policy->metadata_retention_days,
	                  r->policy->termination_grace_days);
	jstr(o, "snapshot_time", t, 1);
	coffer_buf_puts(o, "},\n \"accounts\": [");
	for (size_t i = 0; i < r->n_accounts; i++) {
		const struct coffer_report_account *a = &r->accounts[i];

		coffer_buf_puts(o, i ? ",\n  {" : "\n  {");
		jstr(o, "name", a->name, 0);
		jstr(o, "pseudonym", a->pseudonym, 1);
		jstr(o, "state", coffer_account_state_name(a->state), 1);
		jtime(o, "created_at", a->created_at, 1);
		jtime(o, "terminated_at", a->terminated_at, 1);
		jtime(o, "shredded_at", a->shredded_at, 1);
		coffer_buf_printf(o, ", \"messages\": %llu, \"bytes\": %llu",
		                  (unsigned long long)a->messages, (unsigned long long)a->bytes);
		jtime(o, "oldest_message", a->oldest_message, 1);
		coffer_buf_puts(o, ", \"snapshots\": [");
		for (size_t s = 0; s < a->n_snaps; s++) {
			coffer_buf_puts(o, s ? ", {" : "{");
			jstr(o, "id", a->snaps[s].id, 0);
			jtime(o, "expires_at", a->snaps[s].expires_at, 1);
			coffer_buf_puts(o, "}");
		}
		coffer_buf_printf(o, "], \"metadata\": {\"events\": %llu",
		                  (unsigned long long)a->events);
		jtime(o, "oldest_event", a->oldest_event, 1);
		jtime(o, "expires_at", a->events_expire, 1);
		coffer_buf_puts(o, "}, \"next_action\": {");
		jstr(o, "action", a->next_action, 0);
		jtime(o, "at", a->next_action_at, 1);
		coffer_buf_puts(o, "}");
		jtime(o, "held_until", held_until(a), 1);
		coffer_buf_puts(o, "}");
	}
	coffer_buf_puts(o, r->n_accounts ? "\n ],\n \"snapshots\": [" : "],\n \"snapshots\": [");
	for (size_t i = 0; i < r->n_snaps; i++) {
		coffer_buf_puts(o, i ? ",\n  {" : "\n  {");
		jstr(o, "id", r->snaps[i].id, 0);
		jtime(o, "created_at", r->snaps[i].created_at, 1);
		jtime(o, "expires_at", r->snaps[i].expires_at, 1);
		coffer_buf_puts(o, "}");
	}
	coffer_buf_puts(o, r->n_snaps ? "\n ],\n \"overdue\": [" : "],\n \"overdue\": [");
	for (size_t i = 0; i < r->n_overdue; i++) {
		coffer_buf_puts(o, i ? ",\n  {" : "\n  {");
		jstr(o, "what", r->overdue[i].what, 0);
		jstr(o, "subject", r->overdue[i].subject, 1);
		jtime(o, "held_until", r->overdue[i].held_until, 1);
		coffer_buf_puts(o, "}");
	}
	coffer_buf_puts(o, r->n_overdue ? "\n ]\n}\n" : "]\n}\n");
	return coffer_buf_ok(o);
}

static void html_esc(struct coffer_buf *o, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': coffer_buf_puts(o, "&amp;"); break;
		case '<': coffer_buf_puts(o, "&lt;"); break;
		case '>': coffer_buf_puts(o, "&gt;"); break;
		case '"': coffer_buf_puts(o, "&quot;"); break;
		case '\'': coffer_buf_puts(o, "&#39;"); break;
		default: coffer_buf_putc(o, *s);
		}
	}
}

/* The timeline: one row per account, from now to the latest hold date. */
static void timeline(const struct coffer_report *r, struct coffer_buf *o)
{
	const int left = 220, width = 640, row = 26;
	int64_t start = r->generated_at, end = start + 7 * COFFER_NS_PER_DAY;
	char t[COFFER_CLOCK_ISO_MAX];
	int height = 40 + row * (int)(r->n_accounts ? r->n_accounts : 1);

	for (size_t i = 0; i < r->n_accounts; i++)
		if (held_until(&r->accounts[i]) > end)
			end = held_until(&r->accounts[i]);
#define X(ns) \
	(left + (int)((double)((ns) < start ? 0 : (ns)-start) * width / (double)(end - start)))
	coffer_buf_printf(o,
	                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	                  "role=\"img\" aria-label=\"Retention timeline\">\n",
	                  left + width + 20, height);
	coffer_buf_printf(o, "<text x=\"%d\" y=\"14\" class=\"axis\">now %s</text>", left,
	                  day(start, t));
	coffer_buf_printf(o,
	                  "<text x=\"%d\" y=\"14\" class=\"axis\" text-anchor=\"end\">%s</text>\n",
	                  left + width, day(end, t));
	for (size_t i = 0; i < r->n_accounts; i++) {
		const struct coffer_report_account *a = &r->accounts[i];
		int y = 30 + row * (int)i;
		int64_t snap_end = a->n_snaps ? a->snaps[a->n_snaps - 1].expires_at : 0;

		coffer_buf_printf(o, "<text x=\"4\" y=\"%d\" class=\"name\">", y + 12);
		html_esc(o, a->name ? a->name : a->pseudonym);
		coffer_buf_puts(o, "</text>");
		if (a->state == COFFER_ACCOUNT_ACTIVE && a->messages)
			coffer_buf_printf(
			    o,
			    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"6\" "
			    "class=\"live\"><title>live mail (kept while active)</title></rect>",
			    left, y, width);
		else if (a->state == COFFER_ACCOUNT_TERMINATED && a->messages && a->next_action_at)
			coffer_buf_printf(o,
			                  "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"6\" "
			                  "class=\"live\"><title>mail kept until %s (termination "
			                  "grace)</title></rect>",
			                  left, y, X(a->next_action_at) - left,
			                  day(a->next_action_at, t));
		if (snap_end)
			coffer_buf_printf(
			    o,
			    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"6\" "
			    "class=\"snap\"><title>in snapshots until %s</title></rect>",
			    left, y + 7, X(snap_end) - left, day(snap_end, t));
		if (a->events_expire)
			coffer_buf_printf(o,
			                  "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"6\" "
			                  "class=\"meta\"><title>metadata until %s</title></rect>",
			                  left, y + 14, X(a->events_expire) - left,
			                  day(a->events_expire, t));
		if (a->next_action_at)
			coffer_buf_printf(
			    o,
			    "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" class=\"due\">"
			    "<title>%s on %s</title></line>",
			    X(a->next_action_at), X(a->next_action_at), y - 2, y + 22,
			    a->next_action, day(a->next_action_at, t));
		coffer_buf_putc(o, '\n');
	}
#undef X
	coffer_buf_puts(o, "</svg>\n");
}

int coffer_report_html(const struct coffer_report *r, struct coffer_buf *o)
{
	struct coffer_buf text = COFFER_BUF_INIT;
	char t[COFFER_CLOCK_ISO_MAX];
	int rc;

	coffer_buf_puts(
	    o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	       "<title>Coffer retention report</title>\n<style>\n"
	       "body{font-family:sans-serif;margin:2em;color:#222}"
	       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
	       "text-align:left}th{background:#f4f4f4}"
	       ".live{fill:#4a90d9}.snap{fill:#7bbf6a}.meta{fill:#e0a040}"
	       ".due{stroke:#c00;stroke-width:2}.axis{font-size:11px;fill:#666}"
	       ".name{font-size:12px}.ok{color:#080}.bad{color:#c00}\n"
	       "</style></head><body>\n<h1>Coffer retention report</h1>\n");
	coffer_buf_printf(o,
	                  "<p>Generated %s. Backups and deleted mail are kept %d days, access "
	                  "and delivery metadata %d days, terminated accounts %d days.</p>\n",
	                  iso(r->generated_at, t), r->policy->data_retention_days,
	                  r->policy->metadata_retention_days, r->policy->termination_grace_days);
	coffer_buf_puts(o, "<h2>Timeline</h2>\n<p>Blue: live mail; green: held in snapshots; "
	                   "orange: metadata; red: next due action.</p>\n");
	timeline(r, o);
	coffer_buf_puts(o,
	                "<h2>Accounts</h2>\n<table><tr><th>Account</th><th>State</th>"
	                "<th>Messages</th><th>Bytes</th><th>Snapshots</th><th>Metadata until</th>"
	                "<th>Next action</th></tr>\n");
	for (size_t i = 0; i < r->n_accounts; i++) {
		const struct coffer_report_account *a = &r->accounts[i];

		coffer_buf_puts(o, "<tr><td>");
		html_esc(o, a->name ? a->name : a->pseudonym);
		coffer_buf_printf(
		    o, "</td><td>%s</td><td>%llu</td><td>%llu</td><td>%zu</td><td>%s</td>",
		    coffer_account_state_name(a->state), (unsigned long long)a->messages,
		    (unsigned long long)a->bytes, a->n_snaps, day(a->events_expire, t));
		coffer_buf_puts(o, "<td>");
		html_esc(o, a->next_action);
		if (a->next_action_at)
			coffer_buf_printf(o, " on %s", day(a->next_action_at, t));
		coffer_buf_puts(o, "</td></tr>\n");
	}
	coffer_buf_puts(o, "</table>\n<h2>Overdue</h2>\n");
	if (r->n_overdue == 0)
		coffer_buf_puts(
		    o, "<p class=\"ok\">Nothing is held longer than the policy allows.</p>\n");
	for (size_t i = 0; i < r->n_overdue; i++) {
		coffer_buf_puts(o, "<p class=\"bad\">");
		html_esc(o, r->overdue[i].what);
		coffer_buf_puts(o, " ");
		html_esc(o, r->overdue[i].subject);
		coffer_buf_printf(o, ": held past %s</p>\n", iso(r->overdue[i].held_until, t));
	}
	rc = coffer_report_text(r, &text);
	coffer_buf_puts(o, "<h2>Details</h2>\n<pre>");
	html_esc(o, coffer_buf_str(&text));
	coffer_buf_puts(o, "</pre>\n</body></html>\n");
	coffer_buf_free(&text);
	return rc < 0 ? rc : coffer_buf_ok(o);
}
