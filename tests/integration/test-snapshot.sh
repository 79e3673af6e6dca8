#!/usr/bin/env bash
# `coffer snapshot` and `coffer restore` through the command:
#   - two accounts with corpus mail (or generated mail) in several folders,
#     a few canary messages; snapshot create / list --json;
#   - no plaintext: the canary subject, body, account and folder names never
#     appear in the target (grep -r, and strings over every file);
#   - concurrency: deliveries in a loop while a snapshot runs all succeed;
#     their latency (p50, max) is reported beside that of the same deliveries
#     with no snapshot running (the issue asks that none waits > 100 ms on
#     the snapshot; bench/snapshot.sh measures it);
#   - a second snapshot writer gets a clear error while one runs;
#   - disaster recovery: restore --all into a new store with only the target
#     and the key file; every account, folder (UIDVALIDITY, uidnext via
#     folders --json) and message (ls --json: uid, flags, date, name; cat:
#     bytes) is the same as in the original;
#   - damage: a flipped byte in one blob, one flipped byte in a full state, a
#     deleted reverse delta: snapshot verify --read-data exits 1 and names
#     each with its snapshot, account and object; a restore of the
#     undamaged account still works.
# Prints TAP.
. "$(dirname "$0")/lib.sh"

PER_ACCOUNT=${SNAPSHOT_PER_ACCOUNT:-300}
A=alice@example.org
B=bob@example.net
CANARY_SUBJ="SnapCanarySubject7f3a"
CANARY_BODY="SnapCanaryBody91c2e"
CANARY_FOLDER="CanaryFolderQx"
new_store snap || { fail "init"; done_testing; }
TGT=$T_TMP/target
W=$T_TMP/w
mkdir -p "$W/msgs"
c account add "$A" && expect_success && c account add "$B" && expect_success &&
	pass "two accounts" || fail "two accounts"

# mail: corpus files, else generated
if CORPUS=$(bash "$T_HERE/corpus.sh" 2>"$W/corpus.err"); then
	cut -f1 "$CORPUS/index.tsv" | head -n $((2 * PER_ACCOUNT)) | sed "s|^|$CORPUS/|" >"$W/files"
else
	diag "corpus unavailable; using generated messages"
	for i in $(seq 1 $((2 * PER_ACCOUNT))); do
		msg "$W/msgs/g$i.eml" "generated $i" "generated body $i"
		echo "$W/msgs/g$i.eml"
	done >"$W/files"
fi
folders=(INBOX Lists/debian Archive "$CANARY_FOLDER")
i=0
bad=0
while IFS= read -r f; do
	acct=$A
	[ $((i % 2)) = 1 ] && acct=$B
	folder=${folders[$((i % 4))]}
	"$COFFER_BIN" --store "$S" --key-file "$K" deliver "$acct" --folder "$folder" <"$f" || bad=$((bad + 1))
	i=$((i + 1))
done <"$W/files"
for acct in "$A" "$B"; do
	printf 'From: x@example.org\nTo: %s\nSubject: %s\n\n%s for %s\n' "$acct" "$CANARY_SUBJ" \
		"$CANARY_BODY" "$acct" | "$COFFER_BIN" --store "$S" --key-file "$K" deliver "$acct" \
		--folder "$CANARY_FOLDER" || bad=$((bad + 1))
done
[ "$bad" = 0 ] && pass "delivered $i messages and 2 canaries" || fail "$bad deliveries failed"

export COFFER_NOW=2026-03-01T02:00:00Z
c snapshot create --target "$TGT"
expect_success && pass "snapshot create" || fail "snapshot create"
c snapshot list --target "$TGT" --json
expect_success && python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
assert isinstance(v, list) and len(v) == 1, v
' "$R_OUT" && pass "snapshot list --json: one snapshot" || { diag_run; fail "snapshot list --json"; }

# ---- no plaintext ----
leaks=0
for w in "$CANARY_SUBJ" "$CANARY_BODY" "$CANARY_FOLDER" "$A" "$B" "alice" "Lists" "debian"; do
	if grep -raF -- "$w" "$TGT" >/dev/null || find "$TGT" | grep -qF -- "$w"; then
		diag "'$w' found in the target"
		leaks=$((leaks + 1))
	fi
	if find "$TGT" -type f -exec strings -n 6 {} + | grep -qF -- "$w"; then
		diag "'$w' found by strings in the target"
		leaks=$((leaks + 1))
	fi
done
[ "$leaks" = 0 ] && pass "no canary, account or folder name in the target" || fail "plaintext in the target"

# ---- deliveries during a snapshot ----
export COFFER_NOW=2026-03-02T02:00:00Z
for n in $(seq 1 40); do msg "$W/msgs/live$n.eml" "during snapshot $n"; done
# enough new mail that the create takes a while
while IFS= read -r f; do
	"$COFFER_BIN" --store "$S" --key-file "$K" deliver "$A" --folder Archive <"$f" || true
done < <(head -n 150 "$W/files")
# latency: the same deliveries with no snapshot running first, on the same
# disk at the same moment, so the report separates what the snapshot adds
# from a loaded disk's own fsync latency (bench/snapshot.sh has the figures;
# nothing here is timed, it would only flake on a busy machine)
for n in $(seq 41 60); do msg "$W/msgs/live$n.eml" "before snapshot $n"; done
timed_deliver() { # FILE: appends its wall time in ms to $W/lat.$phase
	local t0 t1
	t0=$(date +%s%N)
	"$COFFER_BIN" --store "$S" --key-file "$K" deliver "$B" <"$1" || dfail=$((dfail + 1))
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000)) >>"$W/lat.$phase"
}
latency() { # PHASE: "p50 X max Y ms over N"
	sort -n "$W/lat.$1" | awk '{a[NR]=$1} END {printf "p50 %d max %d ms over %d", a[int((NR+1)/2)], a[NR], NR}'
}
dfail=0
phase=idle
for n in $(seq 41 60); do timed_deliver "$W/msgs/live$n.eml"; done
phase=snapshot
"$COFFER_BIN" --store "$S" --key-file "$K" snapshot create --target "$TGT" >"$W/create.out" 2>"$W/create.err" &
cpid=$!
n=0
second=""
# the second writer must meet the first holding its lock, not beat it to it
# (a delivery can be quicker than the first writer's start); looked up in
# /proc/locks, since trying the lock could itself refuse the first writer
first_holds_lock() {
	local ino
	ino=$(stat -c %i "$S/locks/snapshot.lock" 2>/dev/null) || return 1
	grep -q "FLOCK.*WRITE.*:$ino " /proc/locks
}
while kill -0 "$cpid" 2>/dev/null || [ "$n" -lt 5 ]; do
	n=$((n + 1))
	[ "$n" -gt 40 ] && break
	timed_deliver "$W/msgs/live$n.eml"
	if [ -z "$second" ] && kill -0 "$cpid" 2>/dev/null && first_holds_lock; then
		"$COFFER_BIN" --store "$S" --key-file "$K" snapshot create --target "$TGT" >/dev/null 2>"$W/second.err"
		second=$?
		# the first may have ended between the check and the second's lock
		[ "$second" = 0 ] && ! grep -q . "$W/second.err" && [ -s "$W/create.out" ] && second=raced
	fi
done
wait "$cpid"
crc=$?
[ "$crc" = 0 ] && pass "snapshot create while delivering" || { diag "$(cat "$W/create.err")"; fail "snapshot create while delivering"; }
[ "$dfail" = 0 ] && pass "all $n deliveries during the snapshot (and 20 before it) succeeded" ||
	fail "$dfail of $((n + 20)) deliveries failed around the snapshot"
diag "delivery latency with no snapshot running: $(latency idle)"
diag "delivery latency during the snapshot:      $(latency snapshot)"
if [ -n "$second" ] && [ "$second" != 0 ] && [ "$second" != raced ]; then
	grep -q "snapshot" "$W/second.err" && pass "a second snapshot writer is refused (exit $second): $(head -1 "$W/second.err")" ||
		fail "second writer: exit $second, unclear message: [$(od -An -c "$W/second.err" | head -c 300)]"
elif [ -z "$second" ] || [ "$second" = raced ]; then
	diag "the snapshot finished before a second writer could take the lock"
	pass "second writer (not reached: snapshot too fast)"
else
	fail "a second snapshot writer was not refused"
fi
export COFFER_NOW=2026-03-03T02:00:00Z
c snapshot create --target "$TGT"
expect_success && pass "a third snapshot (after the deliveries)" || fail "third snapshot"

# ---- disaster recovery ----
S2=$T_TMP/recovered/store
mkdir -p "$T_TMP/recovered"
run --store "$S2" --key-file "$K" restore --all --from "$TGT"
expect_success && pass "restore --all into a new store" || fail "restore --all"
dr_bad=0
for acct in "$A" "$B"; do
	run --store "$S" --key-file "$K" folders "$acct" --json
	cp "$R_OUT" "$W/f1.json"
	run --store "$S2" --key-file "$K" folders "$acct" --json
	cp "$R_OUT" "$W/f2.json"
	if ! cmp -s "$W/f1.json" "$W/f2.json"; then
		diag "folders of $acct differ"
		dr_bad=$((dr_bad + 1))
	fi
	python3 -c '
import json, sys
for f in json.load(open(sys.argv[1])):
    print(f["name"])
' "$W/f1.json" >"$W/fnames"
	while IFS= read -r folder; do
		run --store "$S" --key-file "$K" ls "$acct" "$folder" --json
		cp "$R_OUT" "$W/l1.json"
		run --store "$S2" --key-file "$K" ls "$acct" "$folder" --json
		cp "$R_OUT" "$W/l2.json"
		if ! cmp -s "$W/l1.json" "$W/l2.json"; then
			diag "ls $acct $folder differs"
			dr_bad=$((dr_bad + 1))
			continue
		fi
		for uid in $(python3 -c '
import json, sys
for m in json.load(open(sys.argv[1])):
    print(m["uid"])
' "$W/l1.json"); do
			"$COFFER_BIN" --store "$S" --key-file "$K" cat "$acct" "$folder" "$uid" >"$W/c1" 2>/dev/null
			"$COFFER_BIN" --store "$S2" --key-file "$K" cat "$acct" "$folder" "$uid" >"$W/c2" 2>/dev/null
			if ! cmp -s "$W/c1" "$W/c2"; then
				diag "content of $acct $folder $uid differs"
				dr_bad=$((dr_bad + 1))
			fi
		done
	done <"$W/fnames"
done
[ "$dr_bad" = 0 ] && pass "recovered store: same folders (UIDVALIDITY, uidnext), messages (uid, flags, date, name) and bytes" ||
	fail "recovered store differs in $dr_bad places"

# ---- damage ----
c snapshot verify --target "$TGT" --read-data
expect_success && pass "verify --read-data of the intact target" || fail "verify of the intact target"
AHEX=""
for d in "$TGT"/a/*/; do
	# bob's directory is the one whose restore we keep working: damage the other
	AHEX=$(basename "$d")
	break
done
BLOB=$(find "$TGT/a/$AHEX/b" -type f | sort | head -1)
FULL=$(find "$TGT/a/$AHEX/full" -type f | sort | tail -1)
REV=$(find "$TGT/a/$AHEX/rev" -type f | sort | head -1)
flip() { # flip one byte in the middle of file $1
	local f=$1 off
	off=$(($(stat -c %s "$f") / 2))
	python3 -c '
import sys
f, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(f, "rb").read())
b[off] ^= 0x5a
open(f, "wb").write(bytes(b))
' "$f" "$off"
}
# reports_name OBJ: the last verify output names object OBJ with a snapshot id
reports_name() {
	local rel=${1#"$TGT"/}
	grep -hF -- "$rel" "$R_OUT" "$R_ERR" | grep -q "snapshot [0-9T]*Z"
}
if [ -n "$BLOB" ] && [ -n "$FULL" ] && [ -n "$REV" ]; then
	cp -a "$TGT" "$W/pristine"
	# one damage at a time first
	flip "$BLOB"
	c snapshot verify --target "$TGT" --read-data
	expect_rc 1 && reports_name "$BLOB" && pass "a flipped byte in a blob: exit 1, blob named with its snapshot" ||
		{ diag_run; fail "a flipped byte in a blob"; }
	rm -rf "$TGT" && cp -a "$W/pristine" "$TGT"
	rm -f "$REV"
	c snapshot verify --target "$TGT" --read-data
	expect_rc 1 && reports_name "$REV" && pass "a deleted reverse delta: exit 1, named with its snapshot" ||
		{ diag_run; fail "a deleted reverse delta"; }
	rm -rf "$TGT" && cp -a "$W/pristine" "$TGT"
	flip "$FULL"
	c snapshot verify --target "$TGT" --read-data
	expect_rc 1 && reports_name "$FULL" && pass "a flipped byte in a full state: exit 1, named with its snapshot" ||
		{ diag_run; fail "a flipped byte in a full state"; }
	# all three at once: every problem is reported
	flip "$BLOB"
	rm -f "$REV"
	c snapshot verify --target "$TGT" --read-data
	named=0
	for obj in "$BLOB" "$FULL" "$REV"; do
		if reports_name "$obj"; then named=$((named + 1)); else diag "no report naming ${obj#"$TGT"/}"; fi
	done
	# BUG (snapshots/snapverify.c): with the account's full state damaged,
	# verify reports only that object: the account's blobs and reverse deltas
	# are not checked at all (it learns them from the state), so a damaged
	# blob and a missing delta in the same account go unreported.
	expect_rc 1 && [ "$named" = 3 ] && pass "three damages at once: each is reported" ||
		{ diag_run; fail "three damages at once: $named of 3 reported"; }
	grep -E "account ($A|$B|$AHEX)" "$R_OUT" "$R_ERR" >/dev/null &&
		pass "the damaged account is named" || { diag_run; fail "the damaged account is not named"; }
	# restore of the undamaged account (into the live account) still works
	if grep -qF "account $A" "$R_OUT"; then OK_ACCT=$B; else OK_ACCT=$A; fi
	export COFFER_NOW=2026-03-04T02:00:00Z
	run --store "$S2" --key-file "$K" restore "$OK_ACCT" --as-of 2026-03-01T03:00:00Z --target "$TGT"
	expect_success && grep -q "restored" "$R_OUT" &&
		pass "restore of the undamaged account ($OK_ACCT) still works: $(head -1 "$R_OUT")" ||
		{ diag_run; fail "restore of the undamaged account"; }
else
	fail "could not find a blob, a full state and a reverse delta to damage"
fi

done_testing
