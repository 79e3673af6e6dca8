#!/usr/bin/env bash
# Integration test of `coffer verify`: a sound store (exit 0, --json ok:true);
# the four kinds of damage (a flipped byte, a truncation, a deleted blob, a
# stray file) reported exactly, with an orphan younger than the grace period
# pending and exit 1; old orphans; --repair (orphans removed, strays moved
# to lost+found, damaged blobs left alone) and a second run; a store with
# only repairable problems passing after --repair; NAME; progress only on a
# terminal. Prints TAP.
. "$(dirname "$0")/lib.sh"

A=alice@example.com
B=bob@example.org

if ! command -v python3 >/dev/null 2>&1; then
	echo "1..0 # SKIP python3 is needed to read JSON"
	exit 77
fi

# blob_file UID: the blob file of $A's INBOX message UID (through the derived
# Maildir name "<secs>.C<first 16 hex of the blob id>.coffer,S=<size>").
blob_file() {
	local prefix
	prefix=$(ls_json "$A" | python3 -c '
import json, sys
for m in json.load(sys.stdin):
    if m["uid"] == int(sys.argv[1]):
        print(m["name"].split(".C", 1)[1][:16])' "$1")
	[ -n "$prefix" ] || return 1
	ls "$S"/blobs/*/"${prefix:0:2}"/"$prefix"*
}
# json_get EXPR: evaluates EXPR on the JSON in $R_OUT (as `d`), prints it.
json_get() {
	python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($1)" "$R_OUT"
}
# expect_stdout FILE: stdout of the last run equals FILE.
expect_stdout() {
	if ! diff -u "$1" "$R_OUT" >"$T_TMP/.diff"; then
		diag "unexpected output:"
		diag "$(cat "$T_TMP/.diff")"
		diag_run
		return 1
	fi
	return 0
}

# --- a sound store --------------------------------------------------------
new_store sound || fail "init"
c account add "$A"
for i in 1 2 3 4 5; do
	msg "$T_TMP/m$i" "message $i"
	c deliver "$A" <"$T_TMP/m$i"
done
msg "$T_TMP/m6" "a list message"
c deliver "$A" --folder Lists/debian <"$T_TMP/m6"
c account add "$B"
msg "$T_TMP/m7" "for bob"
c deliver "$B" <"$T_TMP/m7"

c verify
expect_success && [ "$(cat "$R_OUT")" = "checked 2 accounts, 7 messages, 7 blobs: ok" ]
ok $? "sound store: exit 0, one summary line, nothing on stderr"

c verify --json
expect_success && [ "$(json_get 'd["ok"], d["accounts"], d["messages"], d["blobs"], d["problems"], d["pending"]')" = \
	"True 2 7 7 [] []" ]
ok $? "sound store: --json ok:true, 2 accounts, 7 messages, 7 blobs, no problems"

c verify "$B"
expect_success && [ "$(cat "$R_OUT")" = "checked 1 account, 1 message, 1 blob: ok" ]
ok $? "verify NAME checks that account only"

c verify nobody@example.com
expect_error 67 "nobody@example.com" && pass "verify of an unknown account: exit 67, one error line" ||
	fail "verify of an unknown account: exit 67, one error line"

c verify --frobnicate
expect_error 64 && pass "unknown option: exit 64" || fail "unknown option: exit 64"

run --store "$S" --key-file "$T_TMP/no-such-key" verify
expect_error 66 && pass "missing key file: exit 66" || fail "missing key file: exit 66"

# --- progress: on a terminal only ------------------------------------------
if command -v script >/dev/null 2>&1; then
	script -qec "$(printf '%q ' "$COFFER_BIN" --store "$S" --key-file "$K" verify) 2>&1 >/dev/null" \
		/dev/null >"$T_TMP/tty.out" 2>&1
	grep -q "verify: 7/7 messages, .* MB/s" "$T_TMP/tty.out"
	ok $? "progress (messages, MB/s) on stderr when it is a terminal"
fi

# --- the four kinds of damage -----------------------------------------------
f1=$(blob_file 1) && f2=$(blob_file 2) && f3=$(blob_file 3) && f5=$(blob_file 5)
ok $? "blob files of uids 1, 2, 3 and 5 found"
# 1: one byte flipped in the middle
python3 - "$f1" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2 + 10] ^= 0x40
open(p, "r+b").write(bytes(b))
EOF
# 2: truncated to half, 3: deleted
size2=$(stat -c %s "$f2")
truncate -s $((size2 / 2)) "$f2"
rm -f "$f3"
# 4: a stray file beside uid 5's blob (where the orphan below goes too, so
# that the order of the lines is known: per directory, strays come first)
d5=$(dirname "$f5")
echo "an operator's note" >"$d5/notes.txt"
stray_rel=${d5#"$S"/}/notes.txt
# and a copy of uid 5's blob under a fresh name: an orphan of a moment ago
xx=$(basename "$d5")
orphan_id=$xx$(head -c 15 /dev/urandom | od -An -tx1 | tr -d ' \n')
cp "$f5" "$d5/$orphan_id"

cat >"$T_TMP/expect1" <<EOF
$A INBOX uid 1: blob fails authentication (damaged)
$A INBOX uid 2: blob is truncated (damaged)
$A INBOX uid 3: blob is missing
$A $stray_rel: stray file in the blob tree (not a blob name)
pending: $A blob $orphan_id: blob without an index entry, younger than the grace period (a write may be in progress)
checked 2 accounts, 7 messages, 7 blobs: 4 problems, 1 pending
EOF
c verify
expect_rc 1 && [ ! -s "$R_ERR" ] && expect_stdout "$T_TMP/expect1"
ok $? "damage: exactly the four problems, the young orphan pending, exit 1"

c verify --json
expect_rc 1 && [ "$(json_get 'd["ok"], len(d["problems"]), len(d["pending"])')" = "False 4 1" ]
ok $? "damage --json: ok:false, 4 problems, 1 pending, exit 1"
[ "$(json_get '[(p["account"], p["folder"], p["uid"], p["problem"]) for p in d["problems"]][:3]')" = \
	"[('$A', 'INBOX', 1, 'blob fails authentication (damaged)'), ('$A', 'INBOX', 2, 'blob is truncated (damaged)'), ('$A', 'INBOX', 3, 'blob is missing')]" ]
ok $? "damage --json: account, folder, uid and problem of the three damaged messages"
[ "$(json_get 'd["problems"][0]["blob"]')" = "$(basename "$f1")" ]
ok $? "damage --json: the blob id of the damaged message"
[ "$(json_get '(d["problems"][3]["account"], d["problems"][3]["folder"], d["problems"][3]["uid"], d["problems"][3]["blob"])')" = \
	"('$A', None, None, '$stray_rel')" ]
ok $? "damage --json: the stray, with its path and null folder and uid"
[ "$(json_get 'd["pending"][0]["blob"]')" = "$orphan_id" ]
ok $? "damage --json: the pending orphan's blob id"

c verify "$B"
expect_success
ok $? "the damage is $A's: verify $B still passes"

# --- old orphans, --repair --------------------------------------------------
touch -d '1 hour ago' "$d5/$orphan_id"
c verify
expect_rc 1 && grep -qxF "$A blob $orphan_id: orphan blob (left by an interrupted write)" "$R_OUT" &&
	[ "$(tail -n 1 "$R_OUT")" = "checked 2 accounts, 7 messages, 7 blobs: 5 problems" ]
ok $? "an orphan older than 10 minutes is damage, named by blob id"
[ -e "$d5/$orphan_id" ] && [ -e "$d5/notes.txt" ]
ok $? "without --repair nothing is changed"

cat >"$T_TMP/expect2" <<EOF
$A INBOX uid 1: blob fails authentication (damaged)
$A INBOX uid 2: blob is truncated (damaged)
$A INBOX uid 3: blob is missing
$A $stray_rel: stray file in the blob tree (not a blob name) (repaired: moved to lost+found/$stray_rel)
$A blob $orphan_id: orphan blob (left by an interrupted write) (repaired: removed)
checked 2 accounts, 7 messages, 7 blobs: 3 problems, 2 repaired, 0 trash blobs collected
EOF
c verify --repair
expect_rc 1 && expect_stdout "$T_TMP/expect2"
ok $? "--repair: stray moved, orphan removed, damage reported; exit 1 (damage left)"
[ ! -e "$d5/$orphan_id" ] && [ ! -e "$d5/notes.txt" ] &&
	[ "$(cat "$S/lost+found/$stray_rel")" = "an operator's note" ]
ok $? "the orphan is gone; the stray is in STORE/lost+found with its contents"
[ -e "$f1" ] && [ "$(stat -c %s "$f2")" = $((size2 / 2)) ]
ok $? "damaged blobs are left as they are"

cat >"$T_TMP/expect3" <<EOF
$A INBOX uid 1: blob fails authentication (damaged)
$A INBOX uid 2: blob is truncated (damaged)
$A INBOX uid 3: blob is missing
checked 2 accounts, 7 messages, 6 blobs: 3 problems
EOF
c verify
expect_rc 1 && expect_stdout "$T_TMP/expect3"
ok $? "second run: only the damage a repair cannot fix"

# --- only repairable problems: --repair, then a clean run ---------------------
new_store repairable || fail "init"
c account add "$A"
for i in 1 2 3; do
	c deliver "$A" <"$T_TMP/m$i"
done
f=$(blob_file 2)
d=$(dirname "$f")
o2=$(basename "$d")$(head -c 15 /dev/urandom | od -An -tx1 | tr -d ' \n')
cp "$f" "$d/$o2"
touch -d '11 minutes ago' "$d/$o2"
echo junk >"$S/blobs/junk"
mkdir "$(dirname "$d")/zz-not-a-dir-name"
c verify
expect_rc 1 && [ "$(grep -c . "$R_OUT")" = 4 ] &&
	[ "$(tail -n 1 "$R_OUT")" = "checked 1 account, 3 messages, 4 blobs: 3 problems" ] &&
	grep -qxF "blobs/junk: stray file in the blob tree" "$R_OUT"
ok $? "orphan, stray file, stray directory: 3 problems, exit 1"
c verify --repair
expect_success && [ "$(tail -n 1 "$R_OUT")" = \
	"checked 1 account, 3 messages, 4 blobs: ok, 3 repaired, 0 trash blobs collected" ]
ok $? "--repair fixes them all: exit 0"
c verify
expect_success && [ "$(cat "$R_OUT")" = "checked 1 account, 3 messages, 3 blobs: ok" ]
ok $? "after --repair, verify passes"
c verify --json
expect_success && [ "$(json_get 'd["ok"], d["problems"], d["pending"]')" = "True [] []" ]
ok $? "after --repair, --json ok:true"
[ -f "$S/lost+found/blobs/junk" ] && acct_rel=$(dirname "${d#"$S"/}")
[ -d "$S/lost+found/$acct_rel/zz-not-a-dir-name" ]
ok $? "the strays are kept in STORE/lost+found"

done_testing
