#!/usr/bin/env bash
# test-worker.sh: robustness of `coffer worker` (issue 6).
#
# For each job (the daily snapshot, pruning, metadata expiry, auto-shred, and
# a `coffer purge` interrupted and finished by the worker), the process is
# killed with SIGKILL at a random point, many times; then a clean run must
# complete the job, `coffer audit verify` and `coffer snapshot verify
# --read-data` must pass, and nothing of the other accounts may be lost.
# Two workers at once: the second exits 75 with a clear message. Snapshots
# taken by hand and killed are in the audit log once each.
# WORKER_KILLS (default 10) sets the kills per job.
T_SHM=1 . "$(dirname "$0")/lib.sh"
require_shred_helper
KILLS=${WORKER_KILLS:-10}

BASE=$(date -u -d 2026-02-01T00:00:00Z +%s)

new_store wk || done_testing
echo "snapshot_target = \"$T_TMP/wk/target\"" >>"$S/coffer.conf"
export COFFER_NOW=$(day_iso 0 3600)
KEEP="keep1@example.org keep2@example.org"
for a in $KEEP t1@example.org t2@example.org p1@example.org; do
	c account add $a; expect_success || fail "add $a"
done
declare -A expect_msgs
deliver() { # ACCOUNT TAG
	printf 'Subject: %s\n\nbody %s %s\n' "$2" "$2" "$(head -c 3000 /dev/urandom | base64 -w0)" |
		"$COFFER_BIN" --store "$S" --key-file "$K" deliver "$1" >/dev/null || fail "deliver $1"
	expect_msgs[$1]=$(( ${expect_msgs[$1]:-0} + 1 ))
}

# kill_during DESC NOW ARGS...: run coffer ARGS under COFFER_NOW=NOW, SIGKILL it
# after a random 0..80 ms; KILLS times. Then one clean run of the worker.
killed=0
kill_during() {
	local desc=$1 now=$2 i ms
	shift 2
	for ((i = 0; i < KILLS; i++)); do
		ms=$((RANDOM % 80))
		kill_after "$ms" env COFFER_NOW="$now" "$COFFER_BIN" --store "$S" --key-file "$K" "$@" \
			>/dev/null 2>>"$T_TMP/killed.err" </dev/null
		if [ $? = 137 ]; then killed=$((killed + 1)); fi
	done
}
others_intact() { # every message of the accounts that must survive reads back
	local a n u bad=0
	for a in $KEEP; do
		c ls $a INBOX --json
		n=$(jq length "$R_OUT")
		if [ "$n" != "${expect_msgs[$a]}" ]; then diag "$a has $n messages, expected ${expect_msgs[$a]}"; bad=1; fi
		for u in $(jq -r '.[].uid' "$R_OUT"); do
			c cat $a INBOX $u; [ "$R_RC" = 0 ] || { bad=1; diag_run; }
		done
	done
	return $bad
}
after_job() { # DESC NOW: a clean run completes; everything verifies
	local desc=$1
	export COFFER_NOW=$2
	c worker --once; expect_rc 0; ok $? "$desc: a clean worker run after $KILLS kills succeeds"
	c worker --once; expect_rc 0; ok $? "$desc: a second run too (idempotent)"
	c audit verify; expect_rc 0; ok $? "$desc: audit verify passes"
	c snapshot verify --read-data; expect_rc 0; ok $? "$desc: snapshot verify --read-data passes"
	c verify; expect_rc 0; ok $? "$desc: coffer verify passes"
	others_intact; ok $? "$desc: nothing of the other accounts is lost"
	c report --format json
	[ "$(jq '.overdue | length' "$R_OUT")" = 0 ]; ok $? "$desc: nothing overdue"
}

# ---- the snapshot job (day 1..3)
for d in 1 2 3; do
	for a in $KEEP t1@example.org t2@example.org p1@example.org; do deliver $a d$d; done
	kill_during snapshot "$(day_iso $d $((3 * 3600)))" worker --once
	after_job "snapshot day $d" "$(day_iso $d $((3 * 3600)))"
	c snapshot list --json
	jq -e --arg d "$(day_iso $d 0 | cut -c1-10)" 'map(.time[0:10]) | index($d) != null' "$R_OUT" >/dev/null
	ok $? "day $d's snapshot exists"
	# whichever run took it, killed or not, the log names it once
	snapd=$(date -u -d "@$((BASE + d * 86400))" +%Y%m%d)
	n=$(grep -c "\"id=${snapd}T" "$S/audit.log")
	[ "$n" = 1 ]; ok $? "day $d's snapshot is in the audit log once ($n)"
	[ "$n" = 1 ] || diag "$(grep -E '"action": "(snapshot|recovery)"' "$S/audit.log" |
		grep -o '"seq": [0-9]*\|"detail": "[^"]*"')"
done

# ---- metadata expiry: 40,000 old events, then time moves past retention
for a in $KEEP; do
	"$HELPER" login "$S" "$K" $a || fail "login event"
done
"$COFFER_BIN" --store "$S" --key-file "$K" account list >/dev/null
"$HELPER" accounts "$S" "$K" ev 2 || fail "event accounts"
COFFER_NOW=$(day_iso 3 7200) "$HELPER" events "$S" "$K" ev 2 40000 "$((BASE + 3 * 86400))" 0.01 ||
	fail "40,000 events written"
c report --format json
before=$(jq '[.accounts[].metadata.events] | add' "$R_OUT")
kill_during "metadata expiry" "$(day_iso 190 $((3 * 3600)))" worker --once
after_job "metadata expiry" "$(day_iso 190 $((3 * 3600)))"
c report --format json
left=$(jq '[.accounts[].metadata.events] | add' "$R_OUT")
[ "$before" -ge 40000 ] && [ "$left" = 0 ]; ok $? "every event older than 180 days is gone ($before -> $left)"
c audit show
grep -q '"action": "metadata-expiry"' "$R_OUT"; ok $? "metadata-expiry is in the audit log"

# ---- prune: by day 190 every snapshot of days 1..3 is long expired (done
# above already); make new ones and expire them again under kills
for d in 191 192 193; do
	for a in $KEEP; do deliver $a d$d; done
	COFFER_NOW=$(day_iso $d $((3 * 3600))) "$COFFER_BIN" --store "$S" --key-file "$K" worker --once 2>/dev/null
done
kill_during prune "$(day_iso 230 $((3 * 3600)))" worker --once
after_job prune "$(day_iso 230 $((3 * 3600)))"
c snapshot list --json
[ "$(jq '[.[] | select(.time < "2026-08-")] | length' "$R_OUT")" = 0 ]; ok $? "the expired snapshots are gone"
grep -q '"action": "prune"' "$S/audit.log"; ok $? "prune is in the audit log"

# ---- auto-shred: t1 and t2 terminated, grace runs out
export COFFER_NOW=$(day_iso 231 3600)
c account terminate t1@example.org; expect_rc 0 || fail "terminate t1"
c account terminate t2@example.org; expect_rc 0 || fail "terminate t2"
kill_during auto-shred "$(day_iso 262 $((3 * 3600)))" worker --once
after_job auto-shred "$(day_iso 262 $((3 * 3600)))"
for a in t1@example.org t2@example.org; do
	c account show $a --json; [ "$(jq -r .state "$R_OUT")" = shredded ]; ok $? "$a was auto-shredded"
	c cat $a INBOX 1; expect_rc 79; ok $? "$a: cat exit 79"
done
[ "$(grep -c 'termination grace ended' "$S/audit.log")" = 2 ]; ok $? "two auto-shreds in the audit log, once each"

# ---- purge killed part-way, finished by the next purge attempt or the worker
export COFFER_NOW=$(day_iso 263 3600)
kill_during purge "$(day_iso 263 3600)" purge p1@example.org --now --yes --terminate
after_job "interrupted purge" "$(day_iso 263 7200)"
c account show p1@example.org --json
st=$(jq -r .state "$R_OUT")
if [ "$st" = shredded ]; then pass "p1 is shredded (the worker finished the purge)"
else
	c purge p1@example.org --now --yes --terminate; expect_rc 0; ok $? "p1: purge completes after the kills (it was $st)"
fi
c cat p1@example.org INBOX 1; expect_rc 79; ok $? "p1: cat exit 79"
[ "$(grep -c '"action": "purge"' "$S/audit.log")" -ge 3 ]; ok $? "every shred is in the audit log"
c audit verify; expect_rc 0; ok $? "audit chain intact after all the kills ($killed processes killed)"
[ "$killed" -gt 0 ]; ok $? "some runs were really killed mid-way ($killed)"

# ---- two workers at once
export COFFER_NOW=$(day_iso 264 7200)
"$COFFER_BIN" --store "$S" --key-file "$K" worker >"$T_TMP/daemon.out" 2>"$T_TMP/daemon.err" &
dpid=$!
for _ in $(seq 50); do
	grep -q . "$T_TMP/daemon.err" 2>/dev/null && break
	sleep 0.1
done
sleep 0.3
c worker --once; expect_error 75 "another coffer worker is already running"
ok $? "a second worker exits 75 with a clear message"
c worker; expect_rc 75; ok $? "a second daemon too"
kill -TERM $dpid; wait $dpid; drc=$?
[ "$drc" = 0 ]; ok $? "the daemon stops on SIGTERM with exit 0 ($drc)"
c worker --once; expect_rc 0; ok $? "once it is gone, a worker runs"

# two --once workers started together: one runs, the other exits 75 or finds
# nothing due; both end well and the audit log shows each job once
export COFFER_NOW=$(day_iso 265 7200)
deliver keep1@example.org d265
"$COFFER_BIN" --store "$S" --key-file "$K" worker --once 2>"$T_TMP/w1.err" & p1=$!
"$COFFER_BIN" --store "$S" --key-file "$K" worker --once 2>"$T_TMP/w2.err" & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
{ [ "$r1" = 0 ] || [ "$r1" = 75 ]; } && { [ "$r2" = 0 ] || [ "$r2" = 75 ]; } && { [ "$r1" = 0 ] || [ "$r2" = 0 ]; }
ok $? "two workers at once: exits $r1 and $r2 (0 or 75, at least one 0)"
snap265=$(date -u -d "@$((BASE + 265 * 86400))" +%Y%m%d)
[ "$(grep -c "\"id=${snap265}T" "$S/audit.log")" = 1 ]; ok $? "day 265's snapshot was taken once"

# ---- snapshots taken by hand, killed part-way: each retained snapshot is in
# the audit log once, whoever recorded it (the command, the next command or
# the worker), and no job anywhere is recorded twice
deliver keep1@example.org d266
kill_during "snapshot create" "$(day_iso 266 7200)" snapshot create
after_job "snapshot create" "$(day_iso 266 7300)"
c snapshot list --json
bad=0
for id in $(jq -r '.[].id' "$R_OUT"); do
	n=$(grep -c "\"detail\": \"id=$id " "$S/audit.log")
	[ "$n" = 1 ] || { diag "snapshot $id is in the audit log $n times"; bad=1; }
done
ok $bad "every retained snapshot is in the audit log once"
dups=$(grep -o 'job=[0-9a-f]*' "$S/audit.log" | sort | uniq -d)
[ -z "$dups" ]; ok $? "no job is in the audit log twice ${dups:+($dups)}"
done_testing
