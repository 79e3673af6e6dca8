#!/usr/bin/env bash
# test-retention.sh: 200 days of time travel with COFFER_NOW (issue 6).
#
# Three accounts get mail every day; keep@ has one message expunged every day
# (through the library: `test-shred expunge`, since the command line has no
# expunge) and a failed IMAP login recorded every day (`coffer auth`, the
# metadata); `coffer worker --once` runs every morning at 06:00 with a
# snapshot target set. term@ is terminated on day 50 and left to auto-shred;
# gone@ is purged on request on day 120. Checked every day:
#   - no snapshot is older than data_retention_days (30);
#   - no metadata is older than metadata_retention_days (180);
#   - term@ is still held (terminated, messages > 0) until day 79 and shredded
#     (state, restore exit 79, cat exit 79) from day 80 on, not before;
#   - the report's overdue list is empty;
#   - a message expunged on day e is restorable on day e+30 and not on e+31
#     (checked for every e; plus a sample in between);
#   - the audit chain verifies.
# Each day's order: worker at 06:00 (snapshot of the morning), then mail and
# expunges at 12:00, so the last snapshot holding a message expunged on day e
# is day e's, which expires on day e+30. term@ is terminated on day 50 at
# 05:00, before that day's worker, so its grace ends at day 80's worker run.
#
# Thousands of coffer commands each fsync; the store lives in /dev/shm when
# it can (this test checks policy, not durability), so the 200 days take
# about a minute.
T_SHM=1 . "$(dirname "$0")/lib.sh"
require_shred_helper

DAYS=${RETENTION_DAYS:-200}
BASE=$(date -u -d 2026-01-01T00:00:00Z +%s)
to_s() { date -u -d "$1" +%s; }

new_store tt || { done_testing; }
echo "snapshot_target = \"$T_TMP/tt/target\"" >>"$S/coffer.conf"
KEEP=keep@example.org TERM=term@example.org GONE=gone@example.org
export COFFER_NOW=$(day_iso 0 3600)
for a in $KEEP $TERM $GONE; do
	c account add "$a"; expect_success || fail "account add $a"
done

# per-day failure flags (one TAP line per property at the end, with the
# first failing day named)
declare -A first_bad
bad() { [ -n "${first_bad[$1]:-}" ] || first_bad[$1]="day $2: ${3:-}"; }

keep_uid=0
declare -A expunged_uid   # day e -> uid of keep@ expunged that day
term_shredded_day=
workers_ok=1

for ((d = 0; d < DAYS; d++)); do
	if [ "$d" = 50 ]; then
		export COFFER_NOW=$(day_iso $d $((5 * 3600)))
		c account terminate $TERM
		[ "$R_RC" = 0 ] || bad terminate $d "exit $R_RC"
		c audit show
		grep -q '"action": "terminate"' "$R_OUT" || bad audit_actions $d "no terminate entry"
	fi
	# ---- 06:00: the worker
	export COFFER_NOW=$(day_iso $d $((6 * 3600)))
	now_s=$((BASE + d * 86400 + 6 * 3600))
	c worker --once
	[ "$R_RC" = 0 ] || { bad worker $d "$(head -c 300 "$R_ERR")"; workers_ok=0; }

	# no snapshot older than 30 days
	c snapshot list --json
	if [ "$R_RC" != 0 ]; then
		bad snapshots $d "snapshot list exit $R_RC"
	else
		oldest=$(jq -r 'map(.time) | min // empty' "$R_OUT")
		n_snaps=$(jq 'length' "$R_OUT")
		if [ -n "$oldest" ] && [ $(( now_s - $(to_s "$oldest") )) -gt $((30 * 86400)) ]; then
			bad snapshots $d "oldest snapshot $oldest"
		fi
		[ "$n_snaps" -ge 1 ] || bad snapshots $d "no snapshot at all"
	fi

	# the report: overdue empty, metadata within 180 days
	c report --format json
	if [ "$R_RC" != 0 ] || ! jq -e . "$R_OUT" >/dev/null 2>&1; then
		bad report $d "report exit $R_RC"
	else
		cp "$R_OUT" "$T_TMP/report.json"
		[ "$(jq '.overdue | length' "$T_TMP/report.json")" = 0 ] ||
			bad overdue $d "$(jq -c .overdue "$T_TMP/report.json")"
		old_ev=$(jq -r '[.accounts[].metadata.oldest_event | select(. != null)] | min // empty' \
			"$T_TMP/report.json")
		if [ -n "$old_ev" ] && [ $(( now_s - $(to_s "$old_ev") )) -gt $((180 * 86400)) ]; then
			bad metadata $d "oldest event $old_ev"
		fi
		term_state=$(jq -r --arg n $TERM '.accounts[] | select(.name == $n) | .state' \
			"$T_TMP/report.json")
	fi
	# metadata through the access log itself too (keep@ is always active);
	# every 5th day (each coffer command costs ~40 ms; the report checks daily)
	sparse=$(( d % 5 == 0 || d == 80 || d == 81 || d == 120 || d == 121 ))
	[ "$sparse" = 1 ] && c logins $KEEP --json
	if [ "$sparse" = 0 ]; then
		:
	elif [ "$R_RC" = 0 ]; then
		old_login=$(jq -r 'map(.time) | min // empty' "$R_OUT")
		if [ -n "$old_login" ] && [ $(( now_s - $(to_s "$old_login") )) -gt $((180 * 86400)) ]; then
			bad metadata $d "coffer logins shows $old_login"
		fi
		if [ "$d" -ge 1 ] && [ -z "$old_login" ]; then bad logins $d "no login events"; fi
	else
		bad logins $d "logins exit $R_RC"
	fi

	# term@: held until day 79, shredded from day 80 on (state and messages
	# from the report daily; account show, restore and cat as well on sparse days)
	term_msgs=$(jq -r --arg n $TERM '.accounts[] | select(.name == $n) | .messages' \
		"$T_TMP/report.json" 2>/dev/null)
	if [ "$d" -ge 50 ] && [ "$d" -lt 80 ]; then
		[ "$term_state" = terminated ] && [ "${term_msgs:-0}" -gt 0 ] ||
			bad term_held $d "report says $term_state, $term_msgs messages"
		if [ "$sparse" = 1 ] || [ "$d" = 79 ]; then
			c account show $TERM --json
			st=$(jq -r .state "$R_OUT" 2>/dev/null) msgs=$(jq -r .messages "$R_OUT" 2>/dev/null)
			[ "$st" = terminated ] && [ "${msgs:-0}" -gt 0 ] ||
				bad term_held $d "state=$st messages=$msgs"
			c restore $TERM --as-of "$(day_iso 40)"
			[ "$R_RC" != 79 ] || bad term_held $d "restore said shredded before day 80"
		fi
	elif [ "$d" -ge 80 ]; then
		# a shredded account is listed by pseudonym only: none of the names
		# in the report is term@ any more
		[ -z "$term_state" ] || bad term_gone $d "the report still lists $TERM as $term_state"
		c account show $TERM --json
		st=$(jq -r .state "$R_OUT" 2>/dev/null)
		[ "$st" = shredded ] || bad term_gone $d "state=$st"
		[ -z "$term_shredded_day" ] && [ "$st" = shredded ] && term_shredded_day=$d
		c cat $TERM INBOX 1
		[ "$R_RC" = 79 ] || bad term_gone $d "cat exit $R_RC"
		if [ "$sparse" = 1 ]; then
			c restore $TERM --as-of "$(day_iso $((d - 1)))"
			[ "$R_RC" = 79 ] || bad term_gone $d "restore exit $R_RC"
		fi
	fi

	# expunged messages: restorable on day e+30, not on e+31, and at e+15
	for age in 15 30 31; do
		[ "$age" != 15 ] || [ "$sparse" = 1 ] || continue
		e=$((d - age))
		[ "$e" -ge 0 ] && [ -n "${expunged_uid[$e]:-}" ] || continue
		u=${expunged_uid[$e]}
		c restore $KEEP --as-of "$(day_iso $e $((7 * 3600)))" --folder INBOX --uid "$u" \
			--into "R$e-$age"
		if [ "$age" -le 30 ]; then
			if [ "$R_RC" != 0 ]; then
				bad restorable $d "uid $u expunged day $e, age $age: exit $R_RC $(head -c 200 "$R_ERR")"
			else
				c ls $KEEP "R$e-$age/INBOX" --json
				[ "$(jq length "$R_OUT" 2>/dev/null)" = 1 ] ||
					bad restorable $d "uid $u expunged day $e: restored folder holds $(cat "$R_OUT")"
			fi
		else
			if [ "$R_RC" = 0 ]; then
				c ls $KEEP "R$e-$age/INBOX" --json
				n=$(jq length "$R_OUT" 2>/dev/null || echo 0)
				[ "${n:-0}" = 0 ] || bad not_restorable $d "uid $u expunged day $e still restorable at age $age"
			fi
			[ "$R_RC" -lt 128 ] || bad not_restorable $d "restore crashed"
		fi
	done

	# ---- 12:00: mail, logins, expunges, the day's events
	export COFFER_NOW=$(day_iso $d $((12 * 3600)))
	for a in $KEEP $TERM $GONE; do
		if [ "$a" = $TERM ] && [ "$d" -ge 50 ]; then continue; fi
		if [ "$a" = $GONE ] && [ "$d" -ge 120 ]; then continue; fi
		printf 'From: x@example.net\nSubject: day %d for %s\n\nbody CANARY-%s-%d\n' \
			$d "$a" "${a%@*}" $d | "$COFFER_BIN" --store "$S" --key-file "$K" deliver "$a" \
			>/dev/null 2>"$T_TMP/deliver.err" || bad deliver $d "$a: $(cat "$T_TMP/deliver.err")"
		# an access event: `coffer auth` every 20 days (its password hashing is
		# slow), the library helper on the other days
		if [ $((d % 20)) = 0 ]; then
			echo wrong-password | "$COFFER_BIN" --store "$S" --key-file "$K" auth "$a" \
				--service imap --ip 192.0.2.$((d % 250 + 1)) >/dev/null 2>&1
		else
			"$HELPER" login "$S" "$K" "$a" 2>"$T_TMP/login.err" ||
				bad logins $d "helper: $(cat "$T_TMP/login.err")"
		fi
	done
	keep_uid=$((keep_uid + 1))
	# expunge the message keep@ got two days ago
	if [ "$d" -ge 2 ]; then
		u=$((keep_uid - 2))
		if "$HELPER" expunge "$S" "$K" $KEEP "$u" 2>"$T_TMP/xp.err"; then
			expunged_uid[$d]=$u
		else
			bad expunge $d "$(cat "$T_TMP/xp.err")"
		fi
	fi
	if [ "$d" = 120 ]; then
		c purge $GONE --now --yes --terminate
		[ "$R_RC" = 0 ] || bad purge $d "exit $R_RC $(cat "$R_ERR")"
		c restore $GONE --as-of "$(day_iso 110)"
		[ "$R_RC" = 79 ] || bad purge $d "restore after purge exit $R_RC"
		grep -q "shredded" "$R_ERR" || bad purge $d "restore error does not say shredded: $(cat "$R_ERR")"
	fi
	if [ "$d" -gt 120 ] && [ "$sparse" = 1 ]; then
		c cat $GONE INBOX 1
		[ "$R_RC" = 79 ] || bad purge $d "cat after purge exit $R_RC"
	fi
	if [ $((d % 25)) = 0 ]; then
		c audit verify
		[ "$R_RC" = 0 ] || bad audit $d "$(cat "$R_ERR")"
	fi
done

check() { # NAME DESCRIPTION
	if [ -z "${first_bad[$1]:-}" ]; then pass "$2"; else fail "$2"; diag "first failure: ${first_bad[$1]}"; fi
}
check worker "coffer worker --once succeeded on all $DAYS days"
check deliver "daily deliveries succeeded"
check expunge "daily expunges succeeded"
check snapshots "no snapshot was ever older than 30 days"
check report "the report was produced every day"
check overdue "the report's overdue list was empty every day"
check metadata "no metadata older than 180 days, by the report and by coffer logins"
check logins "coffer logins shows the recorded events"
check term_held "term@ was kept (terminated, with its messages) on days 50..79"
check term_gone "term@ was shredded and unreadable (restore and cat exit 79) from day 80 on"
if [ "$DAYS" -gt 80 ]; then
	[ "$term_shredded_day" = 80 ]; ok $? "term@ was shredded on day 80 exactly (got ${term_shredded_day:-never})"
fi
check terminate "term@ was terminated on day 50"
check purge "gone@ was purged on day 120, and restore/cat exit 79 afterwards"
check restorable "every expunged message was restorable 30 days after (and 15, sampled)"
check not_restorable "no expunged message was restorable 31 days after"
check audit "the audit chain verified every 25 days"
check audit_actions "terminate is in the audit log"

# the metadata really expired (events started on day 0, we are past day 180)
if [ "$DAYS" -gt 182 ]; then
	c logins $KEEP --json --limit 1000
	n=$(jq length "$R_OUT" 2>/dev/null || echo 0)
	[ "$n" -ge 170 ] && [ "$n" -le 182 ]; ok $? "keep@ holds about 180 days of logins ($n)"
fi

# every policy action is in the audit log
c audit show
acts="snapshot prune policy-change"
[ "$DAYS" -gt 51 ] && acts="$acts terminate"
[ "$DAYS" -gt 121 ] && acts="$acts purge"
[ "$DAYS" -gt 182 ] && acts="$acts metadata-expiry"
for act in $acts; do
	grep -q "\"action\": \"$act\"" "$R_OUT"; ok $? "audit log has a '$act' entry"
done
if [ "$DAYS" -gt 81 ]; then
	grep -q 'termination grace ended' "$R_OUT"; ok $? "the auto-shred is recorded with its reason"
fi
! grep -q -e term@ -e gone@ -e keep@ "$S/audit.log"; ok $? "the audit log names no account"
c audit verify; expect_success; ok $? "audit verify at the end"
c snapshot verify --read-data; ok $R_RC "snapshot verify --read-data at the end"

# nothing of term@ or gone@ in plaintext, anywhere
! grep -r -a -q -e CANARY-term -e CANARY-gone -e term@example.org -e gone@example.org \
	"$S" "$T_TMP/tt/target"
ok $? "no canary or name of the shredded accounts in the store or the target"
c ls $KEEP INBOX --json
n=$(jq length "$R_OUT"); [ "$n" = 2 ]; ok $? "keep@ has its last two messages live ($n)"
done_testing
