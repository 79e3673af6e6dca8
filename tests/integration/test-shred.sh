#!/usr/bin/env bash
# test-shred.sh: `coffer purge` through the command line (issue 6).
#
# The stale-copy test: the store directory and the snapshot target are copied
# (not the key file) before a purge; afterwards the copy, opened with the key
# file as it is after the purge, yields nothing of the purged account (cat,
# ls, folders, logins, restore --as-of, restore --all), and its canary strings
# are in plaintext nowhere (live store, target, copies). The other accounts
# read and restore from every retained snapshot before and after, and
# restore --all still rebuilds them after the purge.
#
# Bad input: a malformed coffer.conf (exit 78, naming the line), retention of
# 0 or negative days (78), purge of an unknown account (67), of an already
# shredded one (79), with a missing or unreadable key file (66/77), of an
# active account without --terminate, without --yes off a terminal: none of
# them shreds anything (the account is intact afterwards).
T_SHM=1 . "$(dirname "$0")/lib.sh"
require_jq

BASE=$(date -u -d 2026-05-01T00:00:00Z +%s)

new_store sc || done_testing
TGT=$T_TMP/sc/target
echo "snapshot_target = \"$TGT\"" >>"$S/coffer.conf"
A=alice@example.org B=bob@example.org C=carol@example.org
export COFFER_NOW=$(day_iso 0 3600)
for a in $A $B $C; do c account add $a; expect_success || fail "add $a"; done

# five days of mail and snapshots
for d in 0 1 2 3 4; do
	export COFFER_NOW=$(day_iso $d 7200)
	for a in $A $B $C; do
		printf 'Subject: CANARYSUBJ-%s-%d\n\nCANARYBODY-%s-%d plaintext\n' "${a%@*}" $d "${a%@*}" $d |
			"$COFFER_BIN" --store "$S" --key-file "$K" deliver $a --folder "Work" >/dev/null ||
			fail "deliver $a day $d"
	done
	c snapshot create; [ "$R_RC" = 0 ] || fail "snapshot day $d: $(cat "$R_ERR")"
done
export COFFER_NOW=$(day_iso 5 3600)
c snapshot list --json
snaps=$(jq -r '.[].id' "$R_OUT")
n_snaps=$(echo "$snaps" | wc -w)
[ "$n_snaps" = 5 ]; ok $? "five snapshots retained ($n_snaps)"

# other accounts restore from every retained snapshot (before)
restore_all_snaps() { # TAG: bob and carol restore from each snapshot; snapshot
	# number i (0-based) holds i+1 messages in Work (live ones count as "already
	# present": restore never duplicates live mail)
	local bad=0 s t i=0 got
	for s in $snaps; do
		t=$(jq -r --arg s "$s" '.[] | select(.id == $s) | .time' "$T_TMP/snaps.json")
		for a in $B $C; do
			c restore $a --as-of "$t" --folder Work --into "R-$1-$s"
			if [ "$R_RC" != 0 ]; then bad=1; diag_run; continue; fi
			got=$(sed -n 's/^restored \([0-9]*\) messages (\([0-9]*\) already present).*/\1+\2/p' "$R_OUT")
			if [ -z "$got" ] || [ $((got)) != $((i + 1)) ]; then
				bad=1; diag "snapshot $s of $a: expected $((i + 1)) messages"; diag_run
			fi
		done
		i=$((i + 1))
	done
	return $bad
}
c snapshot list --json; cp "$R_OUT" "$T_TMP/snaps.json"
restore_all_snaps before; ok $? "bob and carol restore from each of the $n_snaps snapshots before the purge"

# the stale copy: store and target, not the key file
cp -a "$S" "$T_TMP/stale-store"
cp -a "$TGT" "$T_TMP/stale-target"
cp -a "$K" "$T_TMP/key-before-purge"

# ---- bad input first: nothing may be shredded by accident
intact() { # the account $A still has its 5 messages and reads
	c account show $A --json
	[ "$(jq -r .state "$R_OUT")" = active ] && [ "$(jq -r .messages "$R_OUT")" = 5 ] || return 1
	c cat $A Work 1
	[ "$R_RC" = 0 ] && grep -q CANARYBODY-alice-0 "$R_OUT"
}
c purge nobody@example.org --now --yes; expect_rc 67; ok $? "purge of an unknown account: exit 67"
c purge $A --now --yes; expect_rc 64 || expect_rc "64 65 67 69 78"; ok $? "purge of an active account without --terminate is refused ($R_RC)"
grep -q -- "--terminate" "$R_ERR"; ok $? "and the error says to pass --terminate"
c purge $A --now --terminate </dev/null; expect_rc 64; ok $? "purge without --yes off a terminal is refused"
c purge $A --terminate --yes; expect_rc 64; ok $? "purge without --now is refused"
run --store "$S" --key-file "$T_TMP/missing.key" purge $A --now --yes --terminate
expect_rc "66 77"; ok $? "purge with a missing key file: exit $R_RC"
cp -a "$K" "$T_TMP/unreadable.key"; chmod 0644 "$T_TMP/unreadable.key"
run --store "$S" --key-file "$T_TMP/unreadable.key" purge $A --now --yes --terminate
expect_rc 77; ok $? "purge with a group/world-readable key file: exit 77"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	run_as nobody --store "$S" --key-file "$K" purge $A --now --yes --terminate
	expect_rc "66 77"; ok $? "purge as a user who cannot read the key file: exit $R_RC"
fi
mv "$K" "$K.away"
c purge $A --now --yes --terminate; expect_rc "66 77"; ok $? "purge with the key file moved away: exit $R_RC"
mv "$K.away" "$K"
cp "$S/coffer.conf" "$T_TMP/conf.good"
printf 'this line has no equals sign\n' >>"$S/coffer.conf"
c purge $A --now --yes --terminate; expect_error 78 "coffer.conf:" ; ok $? "malformed coffer.conf: exit 78"
n=$(wc -l <"$S/coffer.conf"); grep -q "coffer.conf:$n" "$R_ERR"; ok $? "the error names line $n"
c worker --once; expect_rc 78; ok $? "the worker refuses a malformed coffer.conf too"
for v in 0 -5; do
	for key in data_retention_days metadata_retention_days; do
		sed "s/^$key = .*/$key = $v/" "$T_TMP/conf.good" >"$S/coffer.conf"
		c worker --once; expect_rc 78; ok $? "$key = $v: worker exit 78"
		grep -q "$key" "$R_ERR"; ok $? "the error names $key"
	done
	sed "s/^termination_grace_days = .*/termination_grace_days = -1/" "$T_TMP/conf.good" >"$S/coffer.conf"
	c purge $A --now --yes --terminate; expect_rc 78; ok $? "termination_grace_days = -1: purge exit 78"
done
cp "$T_TMP/conf.good" "$S/coffer.conf"
intact; ok $? "after all the refusals alice is active with her 5 messages, readable"
c audit show
! grep -q '"action": "purge"' "$R_OUT"; ok $? "no purge in the audit log yet"

# ---- the purge
c account terminate $A; expect_rc 0; ok $? "terminate alice"
c purge $A --now --yes; expect_rc 0; ok $? "purge alice --now --yes"
grep -q "crypto-shredded" "$R_OUT"; ok $? "purge reports what it did"
c purge $A --now --yes; expect_error 79 "$A"; ok $? "a second purge: exit 79, naming the account"
c purge $A --now --yes --terminate; expect_rc 79; ok $? "with --terminate too: exit 79"

# live store: nothing of alice through any command
for cmd in "cat $A Work 1" "ls $A Work" "folders $A" "logins $A" "export $A --to $T_TMP/exp-alice" \
	"restore $A --as-of $(day_iso 3 7300)"; do
	c $cmd; expect_rc 79; ok $? "live: coffer $cmd exits 79"
done
grep -q "shredded on" "$R_ERR"; ok $? "restore says when alice was shredded: $(cat "$R_ERR")"
c account show $A --json
[ "$(jq -r .state "$R_OUT")" = shredded ] && [ "$(jq -r .messages "$R_OUT")" = 0 ]
ok $? "account show: shredded, 0 messages"
c report --account $A --format json
[ "$(jq -r '.accounts[0].state' "$R_OUT")" = shredded ] &&
	[ "$(jq -r '.accounts[0].snapshots | length' "$R_OUT")" = 0 ] &&
	[ "$(jq -r '.accounts[0].metadata.events' "$R_OUT")" = 0 ] &&
	[ "$(jq -r '.overdue | length' "$R_OUT")" = 0 ]
ok $? "the report: shredded, no snapshots, no metadata, nothing overdue"

# the stale copy with the key file as it is now
sc() { run --store "$T_TMP/stale-store" --key-file "$K" "$@"; }
for cmd in "cat $A Work 1" "ls $A Work" "folders $A" "logins $A"; do
	sc $cmd
	[ "$R_RC" != 0 ] && ! grep -q CANARY "$R_OUT"; ok $? "stale copy: coffer $cmd fails ($R_RC), nothing shown"
done
sed "s|^snapshot_target = .*|snapshot_target = \"$T_TMP/stale-target\"|" -i "$T_TMP/stale-store/coffer.conf"
sc restore $A --as-of "$(day_iso 3 7300)"
[ "$R_RC" != 0 ]; ok $? "stale copy: restore of alice from the stale target fails ($R_RC)"
sc restore $A --as-of "$(day_iso 3 7300)" --target "$T_TMP/stale-target"
[ "$R_RC" != 0 ]; ok $? "stale copy: restore --target of alice fails ($R_RC)"
run --store "$T_TMP/dr-stale" --key-file "$K" restore --all --from "$T_TMP/stale-target"
dr_rc=$R_RC
if [ "$dr_rc" = 0 ]; then
	run --store "$T_TMP/dr-stale" --key-file "$K" cat $A Work 1
	[ "$R_RC" != 0 ] && ! grep -q CANARY "$R_OUT"; ok $? "restore --all from the stale target: alice unreadable ($R_RC)"
else
	ok 0 "restore --all from the stale target refuses the stale key ring ($dr_rc)"
fi
! grep -q -r -a CANARYBODY-alice "$T_TMP/dr-stale" 2>/dev/null; ok $? "no alice canary in the store rebuilt from the stale target"

# canaries: never in plaintext, anywhere
for d in "$S" "$TGT" "$T_TMP/stale-store" "$T_TMP/stale-target"; do
	! grep -r -a -q -e CANARYBODY -e CANARYSUBJ -e alice@example.org -e bob@example.org "$d"
	ok $? "no canary or account name in plaintext under ${d#$T_TMP/}"
done

# space reclaimed
c snapshot list --json
alice_id_dirs=$(comm -23 <(ls "$T_TMP/stale-store/blobs" | sort) <(ls "$S/blobs" | sort) | wc -l)
[ "$alice_id_dirs" = 1 ]; ok $? "exactly one account's blob directory was removed from the store"
[ "$(du -sk "$TGT" | cut -f1)" -lt "$(du -sk "$T_TMP/stale-target" | cut -f1)" ]
ok $? "the target shrank (alice's objects deleted)"

# the other accounts: read and restore from every retained snapshot after
c cat $B Work 1; [ "$R_RC" = 0 ] && grep -q CANARYBODY-bob-0 "$R_OUT"; ok $? "bob reads his mail after the purge"
c snapshot list --json; cp "$R_OUT" "$T_TMP/snaps.json"
restore_all_snaps after; ok $? "bob and carol restore from each of the $n_snaps snapshots after the purge"
c snapshot verify --read-data; expect_rc 0; ok $? "snapshot verify --read-data passes after the purge"
c verify; expect_rc 0; ok $? "coffer verify passes after the purge"
c audit verify; expect_rc 0; ok $? "audit verify passes"
c audit show --account $A
[ "$(grep -c '"action": "purge"' "$R_OUT")" = 1 ]; ok $? "audit show --account alice finds the purge by pseudonym"
! grep -q alice "$S/audit.log"; ok $? "the audit log does not name alice"

# disaster recovery still works after the purge, with the current key file
run --store "$T_TMP/dr" --key-file "$K" restore --all --from "$TGT"
expect_rc 0; ok $? "restore --all after the purge"
run --store "$T_TMP/dr" --key-file "$K" cat $B Work 1
[ "$R_RC" = 0 ] && grep -q CANARYBODY-bob-0 "$R_OUT"; ok $? "the rebuilt store reads bob's mail"
run --store "$T_TMP/dr" --key-file "$K" cat $C Work 5
[ "$R_RC" = 0 ] && grep -q CANARYBODY-carol-4 "$R_OUT"; ok $? "and carol's newest"
run --store "$T_TMP/dr" --key-file "$K" cat $A Work 1
expect_rc 79; ok $? "the rebuilt store: alice is shredded (79)"

# the old key file (a backup taken before the purge) is what docs/security.md
# warns about: with it the stale copy still opens alice. Recorded, not hidden.
run --store "$T_TMP/stale-store" --key-file "$T_TMP/key-before-purge" cat $A Work 1
if [ "$R_RC" = 0 ]; then
	diag "as documented: a key-file backup from before the purge still opens the stale copy"
fi
ok 0 "key-file backups from before a purge must be destroyed (docs/security.md)"

# A purge's key ring and the next snapshot in the same second (the crash
# matrix's worker found it): the rotation names its ring like a snapshot id of
# its time; the next snapshot must take a later id, or it overwrote that ring
# and then dropped it, leaving snapshots without a key ring.
new_store same || done_testing
TGT=$T_TMP/same/target
echo "snapshot_target = \"$TGT\"" >>"$S/coffer.conf"
export COFFER_NOW=$(day_iso 0 3600)
for a in $A $B; do c account add $a; msg "$T_TMP/m" "same second $a"; c deliver $a <"$T_TMP/m"; done
c snapshot create; expect_success || fail "snapshot"
c purge $A --now --yes --terminate; expect_success || fail "purge"
c account add $C; msg "$T_TMP/m" "same second carol"; c deliver $C <"$T_TMP/m"
c snapshot create; expect_success; ok $? "a snapshot in the purge's second"
c snapshot verify --read-data; expect_rc 0; ok $? "snapshot verify passes (a key ring for every account)"
run --store "$T_TMP/same/dr" --key-file "$K" restore --all --from "$TGT"; expect_rc 0
run --store "$T_TMP/same/dr" --key-file "$K" cat $C INBOX 1
[ "$R_RC" = 0 ] && grep -q 'same second carol' "$R_OUT"; ok $? "restore --all rebuilds carol's mail"
done_testing
