#!/usr/bin/env bash
# Integration test of the `coffer` command line: init, accounts, delivery,
# folders, ls, cat, --help, COFFER_NOW, delivery without the secret key, qmail
# exit codes. Prints TAP.
. "$(dirname "$0")/lib.sh"

A=alice@example.org
B=bob.smith+tag@mail.example.net

# --- --help everywhere, without a store ----------------------------------
NOSTORE=$T_TMP/no-such-store
for sub in "" init "account" "account add" "account list" "account show" "account terminate" \
	"account reactivate" deliver folders ls cat; do
	# shellcheck disable=SC2086
	run --store "$NOSTORE" --key-file "$T_TMP/no-such-key" $sub --help
	expect_rc 0 && [ -s "$R_OUT" ] && pass "coffer $sub --help prints usage, exit 0" ||
		fail "coffer $sub --help prints usage, exit 0"
done
[ ! -e "$NOSTORE" ]
ok $? "--help creates nothing"

run --store "$NOSTORE" frobnicate
expect_error 64 && pass "unknown subcommand: exit 64, one error line" ||
	fail "unknown subcommand: exit 64, one error line"

run --store "$NOSTORE" --key-file "$T_TMP/no-such-key" account list
expect_error 66 && pass "missing store: exit 66, one error line" ||
	fail "missing store: exit 66, one error line"

# --- init --------------------------------------------------------------------
mkdir -p "$T_TMP/s1"
S=$T_TMP/s1/store K=$T_TMP/s1/keys/coffer.key
mkdir -p "$T_TMP/s1/keys"
run --store "$S" --key-file "$K" init
expect_success && pass "init creates a store" || fail "init creates a store"
[ "$(stat -c %a "$S" 2>/dev/null)" = 700 ]
ok $? "store directory is mode 0700 (got $(stat -c %a "$S" 2>/dev/null))"
[ "$(stat -c %a "$K" 2>/dev/null)" = 600 ] && [ -s "$K" ]
ok $? "key file is mode 0600 and not empty (got $(stat -c %a "$K" 2>/dev/null))"
[ -f "$S/coffer.conf" ] && grep -qF "$K" "$S/coffer.conf"
ok $? "coffer.conf records the key file path"
keysum=$(sha256sum <"$K")

# Refusals are tried on a store of their own, which must survive them intact.
mkdir -p "$T_TMP/s0"
S0=$T_TMP/s0/store K0=$T_TMP/s0/coffer.key
run --store "$S0" --key-file "$K0" init
run --store "$S0" --key-file "$K0" account add keep@example.org
(cd "$S0" && find . -type f -exec sha256sum {} + | sort) >"$T_TMP/s0.sums"
key0sum=$(sha256sum <"$K0")
run --store "$S0" --key-file "$K0" init
expect_error 73 "$S0" && pass "init refuses to overwrite an existing store (73, names it)" ||
	fail "init refuses to overwrite an existing store (73, names it)"
run --store "$S0" --key-file "$T_TMP/s0/other.key" init
expect_error 73 "$S0" && pass "init refuses an existing store even with a new key file (73)" ||
	fail "init refuses an existing store even with a new key file (73)"
[ ! -e "$T_TMP/s0/other.key" ]
ok $? "refused init wrote no key file"
[ "$(sha256sum <"$K0")" = "$key0sum" ] &&
	[ "$(cd "$S0" && find . -type f -exec sha256sum {} + | sort)" = "$(cat "$T_TMP/s0.sums")" ]
ok $? "refused init left the existing store and its key file byte for byte unchanged"
run --store "$S0" --key-file "$K0" account list
expect_success && grep -qF keep@example.org "$R_OUT"
ok $? "the existing store still works after the refused init"

run --store "$T_TMP/s1/other-store" --key-file "$K" init
expect_error 73 "$K" && pass "init refuses to overwrite an existing key file (73, names it)" ||
	fail "init refuses to overwrite an existing key file (73, names it)"
[ "$(sha256sum <"$K")" = "$keysum" ]
ok $? "key file unchanged after refused init into a new store"

printf 'not a key\n' >"$T_TMP/s1/loose.key"
chmod 0644 "$T_TMP/s1/loose.key"
run --store "$T_TMP/s1/store3" --key-file "$T_TMP/s1/loose.key" init
expect_error "73 77" "$T_TMP/s1/loose.key" &&
	pass "init refuses a pre-existing 0644 key file, naming it" ||
	fail "init refuses a pre-existing 0644 key file, naming it"
[ "$(cat "$T_TMP/s1/loose.key")" = "not a key" ]
ok $? "the 0644 key file is left alone"

# --- accounts ----------------------------------------------------------------
c account add "$A"
expect_success && pass "account add $A" || fail "account add $A"
c account add "$B"
expect_success && pass "account add $B" || fail "account add $B"
c account add "$A"
expect_error "1 64 73" && pass "account add refuses a duplicate, one error line" ||
	fail "account add refuses a duplicate, one error line"
for bad in "not-an-address" "@example.org" "alice@" "" "a b@example.org"; do
	c account add "$bad"
	expect_error 64 && pass "account add refuses invalid name '$bad' (64)" ||
		fail "account add refuses invalid name '$bad' (64)"
done

c account list
expect_success && grep -qF "$A" "$R_OUT" && grep -qF "$B" "$R_OUT"
ok $? "account list shows both accounts"
c account list --json
expect_success && jq -e --arg a "$A" --arg b "$B" '
	type == "array" and length == 2 and all(.[]; type == "object")
	and any(.[]; [.. | strings] | index($a)) and any(.[]; [.. | strings] | index($b))' \
	"$R_OUT" >/dev/null
ok $? "account list --json: array of 2 objects naming both accounts"
c account show "$A" --json
expect_success && jq -e --arg a "$A" 'type == "object" and ([.. | strings] | index($a))' \
	"$R_OUT" >/dev/null
ok $? "account show --json: one object naming the account"
c account show "$A"
expect_success && grep -qF "$A" "$R_OUT"
ok $? "account show prints the account"
c account show nobody@example.org
expect_error "67" "nobody@example.org" && pass "account show of an unknown account: 67, names it" ||
	fail "account show of an unknown account: 67, names it"

# Defaults: key file recorded in coffer.conf; store from $COFFER_STORE.
"$COFFER_BIN" --store "$S" account list >"$R_OUT" 2>"$R_ERR"
R_RC=$? R_CMD="coffer --store S account list (no --key-file)"
expect_success && grep -qF "$A" "$R_OUT"
ok $? "without --key-file the key file recorded at init is used"
COFFER_STORE=$S COFFER_KEY_FILE=$K "$COFFER_BIN" account list >"$R_OUT" 2>"$R_ERR"
R_RC=$? R_CMD="COFFER_STORE=S COFFER_KEY_FILE=K coffer account list"
expect_success && grep -qF "$A" "$R_OUT"
ok $? "COFFER_STORE and COFFER_KEY_FILE select the store and key file"

# --- deliver, folders, ls, cat -------------------------------------------------
M1=$T_TMP/m1.eml
printf 'From: "Alice Example" <alice@example.org>\nTo: bob@example.org\nSubject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\nDate: Tue, 05 Mar 2024 09:30:00 +0000\nMessage-ID: <m1@example.org>\n\nFirst message.\n' >"$M1"
c deliver "$A" <"$M1"
expect_success && pass "deliver a message to INBOX" || fail "deliver a message to INBOX"
M2=$T_TMP/m2.eml
msg "$M2" "Second message"
c deliver "$A" <"$M2"
expect_success && pass "deliver a second message" || fail "deliver a second message"

c folders "$A"
expect_success && grep -qx INBOX "$R_OUT"
ok $? "folders lists INBOX"

c ls "$A" --json
cp "$R_OUT" "$T_TMP/ls1.json"
expect_success && jq -e 'type == "array" and length == 2' "$R_OUT" >/dev/null
ok $? "ls --json: two messages"
jq -e 'all(.[]; (keys == ["date","flags","from","name","size","subject","uid"])
	and (.uid|type) == "number" and (.size|type) == "number"
	and (.date|type) == "string" and (.flags|type) == "string" and (.from|type) == "string"
	and (.subject|type) == "string" and (.name|type) == "string")' "$T_TMP/ls1.json" >/dev/null
ok $? "ls --json: exactly the keys uid flags size date from subject name, with the right types"
jq -e --argjson s1 "$(stat -c %s "$M1")" --argjson s2 "$(stat -c %s "$M2")" \
	'sort_by(.uid) | .[0].size == $s1 and .[1].size == $s2 and .[0].uid < .[1].uid' \
	"$T_TMP/ls1.json" >/dev/null
ok $? "ls --json: sizes are the delivered byte counts, uids ascend"
jq -e 'sort_by(.uid) | .[0].subject == "Grüße aus Köln"' "$T_TMP/ls1.json" >/dev/null
ok $? "ls --json: subject is RFC 2047 decoded"
jq -e 'sort_by(.uid) | (.[0].from | contains("alice@example.org")) and .[1].subject == "Second message"' \
	"$T_TMP/ls1.json" >/dev/null
ok $? "ls --json: from and subject of the messages"
jq -e 'all(.[]; (.name | length) > 0 and (.name | contains("/") | not)
	and (.date | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")))' \
	"$T_TMP/ls1.json" >/dev/null
ok $? "ls --json: Maildir base names and ISO-8601 dates"

c ls "$A"
expect_success && [ "$(wc -l <"$R_OUT")" = 2 ] &&
	awk -F'\t' 'NF != 7 { bad = 1 } END { exit bad }' "$R_OUT"
ok $? "ls text output: one tab-separated row of 7 columns per message"
uid1=$(jq -r 'sort_by(.uid) | .[0].uid' "$T_TMP/ls1.json")
uid2=$(jq -r 'sort_by(.uid) | .[1].uid' "$T_TMP/ls1.json")
awk -F'\t' -v u="$uid1" '$1 == u && $6 == "Grüße aus Köln"' "$R_OUT" | grep -q .
ok $? "ls text output: columns in the order uid ... subject"
c ls "$A" INBOX --json
expect_success && cmp -s "$R_OUT" "$T_TMP/ls1.json"
ok $? "ls NAME INBOX equals ls NAME"

c cat "$A" INBOX "$uid1"
expect_rc 0 && cmp -s "$R_OUT" "$M1"
ok $? "cat gives back the first message byte for byte"
c cat "$A" INBOX "$uid2"
expect_rc 0 && cmp -s "$R_OUT" "$M2"
ok $? "cat gives back the second message byte for byte"
c cat "$A" INBOX 999999
expect_error "1 64 66 67" 999999 && pass "cat of a missing uid: one error line naming it" ||
	fail "cat of a missing uid: one error line naming it"

# --- folders: nested, '/' or '.' ---------------------------------------------
M3=$T_TMP/m3.eml
msg "$M3" "For the debian list"
c deliver "$A" --folder Lists/debian <"$M3"
expect_success && pass "deliver --folder Lists/debian creates the folder" ||
	fail "deliver --folder Lists/debian creates the folder"
M4=$T_TMP/m4.eml
msg "$M4" "For the other list"
c deliver "$A" --folder Lists.other <"$M4"
expect_success && pass "deliver --folder Lists.other ('.' separator)" ||
	fail "deliver --folder Lists.other ('.' separator)"
c deliver "$A" --folder Lists.debian <"$M4"
expect_success && pass "deliver --folder Lists.debian reaches Lists/debian" ||
	fail "deliver --folder Lists.debian reaches Lists/debian"
c folders "$A"
expect_success && grep -qx INBOX "$R_OUT" && grep -qx Lists/debian "$R_OUT" &&
	grep -qx Lists/other "$R_OUT" && ! grep -q 'Lists\.' "$R_OUT"
ok $? "folders: INBOX, Lists/debian, Lists/other (canonical '/' names)"
c folders "$A" --json
expect_success && jq -e '[.[] | if type == "string" then . else .name end] as $n
	| ($n | index("INBOX")) and ($n | index("Lists/debian")) and ($n | index("Lists/other"))' \
	"$R_OUT" >/dev/null
ok $? "folders --json lists the same folders"
c ls "$A" Lists/debian --json
expect_success && jq -e 'length == 2' "$R_OUT" >/dev/null
ok $? "ls Lists/debian: two messages"
duid=$(jq -r 'sort_by(.uid) | .[0].uid' "$R_OUT")
c ls "$A" Lists.debian --json
expect_success && jq -e 'length == 2' "$R_OUT" >/dev/null
ok $? "ls Lists.debian names the same folder"
c cat "$A" Lists/debian "$duid"
expect_rc 0 && cmp -s "$R_OUT" "$M3"
ok $? "cat from a nested folder is byte-identical"
c ls "$A" INBOX --json
expect_success && jq -e 'length == 2' "$R_OUT" >/dev/null
ok $? "INBOX still holds two messages"
c ls "$B" --json
expect_success && jq -e 'length == 0' "$R_OUT" >/dev/null
ok $? "the other account's INBOX is empty"
c ls "$A" No/Such/Folder
expect_error "1 64 66 67" "No/Such/Folder" && pass "ls of a missing folder: one error line naming it" ||
	fail "ls of a missing folder: one error line naming it"
c deliver nobody@example.org <"$M1"
expect_error 67 && pass "deliver to an unknown account: 67, one error line" ||
	fail "deliver to an unknown account: 67, one error line"

# --- terminate / reactivate -----------------------------------------------------
c account terminate "$B"
expect_success && pass "account terminate" || fail "account terminate"
c account show "$B" --json
expect_success && jq -e '[.. | strings] | any(test("terminated"; "i"))' "$R_OUT" >/dev/null
ok $? "account show reports the account as terminated"
c deliver "$B" <"$M1"
expect_error 67 && pass "deliver to a terminated account: 67" || fail "deliver to a terminated account: 67"
c deliver "$B" --qmail <"$M1"
expect_rc 100 && pass "deliver --qmail to a terminated account: 100" ||
	fail "deliver --qmail to a terminated account: 100"
c ls "$B"
expect_error "67 77" "$B" && pass "ls of a terminated account is refused, naming it" ||
	fail "ls of a terminated account is refused, naming it"
c account reactivate "$B"
expect_success && pass "account reactivate" || fail "account reactivate"
c deliver "$B" <"$M2"
expect_success && pass "deliver after reactivate" || fail "deliver after reactivate"
c ls "$B" --json
expect_success && jq -e 'length == 1' "$R_OUT" >/dev/null
ok $? "ls after reactivate: the message is there"
c cat "$B" INBOX "$(jq -r '.[0].uid' "$R_OUT")"
expect_rc 0 && cmp -s "$R_OUT" "$M2"
ok $? "cat after reactivate is byte-identical"
c account terminate "$A"
c account reactivate "$A"
c ls "$A" --json
expect_success && jq -e 'length == 2' "$R_OUT" >/dev/null
ok $? "terminate then reactivate keeps the data"

# --- COFFER_NOW sets the internal date ------------------------------------------
M5=$T_TMP/m5.eml
msg "$M5" "Time travel"
COFFER_NOW=2001-02-03T04:05:06Z c deliver "$A" --folder Dated <"$M5"
expect_success && pass "deliver with COFFER_NOW (ISO-8601)" || fail "deliver with COFFER_NOW (ISO-8601)"
COFFER_NOW=1000000000 c deliver "$A" --folder Dated <"$M5"
expect_success && pass "deliver with COFFER_NOW (Unix seconds)" || fail "deliver with COFFER_NOW (Unix seconds)"
c ls "$A" Dated --json
expect_success && jq -e 'sort_by(.uid) | (.[0].date | startswith("2001-02-03T04:05:06"))
	and (.[1].date | startswith("2001-09-09T01:46:40"))' "$R_OUT" >/dev/null
ok $? "COFFER_NOW is the internal date shown by ls"

# --- delivery needs no secret key ----------------------------------------------------
# As root a mode-000 file is still readable, so this runs as `nobody`, with the
# store handed to that user and the key file left unreadable to it.
mkdir -p "$T_TMP/s2"
S=$T_TMP/s2/store K=$T_TMP/s2/coffer.key
run --store "$S" --key-file "$K" init
c account add "$A"
M6=$T_TMP/m6.eml
msg "$M6" "Delivered without the key"
chmod 0644 "$M6"
chown -R nobody: "$S"
chmod 000 "$K"
run_as nobody --store "$S" --key-file "$K" deliver "$A" <"$M6"
expect_success && pass "deliver succeeds with the key file chmod 000 (as nobody)" ||
	fail "deliver succeeds with the key file chmod 000 (as nobody)"
run_as nobody --store "$S" --key-file "$K" deliver "$A" --folder Later/On <"$M6"
expect_success && pass "deliver into a new folder without the key (as nobody)" ||
	fail "deliver into a new folder without the key (as nobody)"
run_as nobody --store "$S" --key-file "$K" cat "$A" INBOX 1
expect_error "66 77" "$K" && pass "cat without a readable key file fails cleanly, naming the key file" ||
	fail "cat without a readable key file fails cleanly, naming the key file"
run_as nobody --store "$S" --key-file "$K" ls "$A"
expect_error "66 77" "$K" && pass "ls without a readable key file fails cleanly, naming the key file" ||
	fail "ls without a readable key file fails cleanly, naming the key file"
chmod 000 "$K"
c deliver "$A" <"$M6"
expect_success && pass "deliver succeeds with the key file chmod 000 (as root)" ||
	fail "deliver succeeds with the key file chmod 000 (as root)"
chmod 0600 "$K"
c ls "$A" --json
expect_success && jq -e 'length == 2' "$R_OUT" >/dev/null
ok $? "with the key back, ls shows the keyless deliveries"
c cat "$A" INBOX "$(jq -r 'sort_by(.uid) | .[0].uid' "$R_OUT")"
expect_rc 0 && cmp -s "$R_OUT" "$M6"
ok $? "a keyless delivery reads back byte for byte"
c folders "$A"
expect_success && grep -qx Later/On "$R_OUT"
ok $? "the folder created without the key has its name"

# --- deliver --qmail exit codes ------------------------------------------------------
c deliver "$A" --qmail <"$M1"
expect_rc 0 && pass "deliver --qmail: 0 on success" || fail "deliver --qmail: 0 on success"
c deliver nobody@example.org --qmail <"$M1"
expect_rc 100 && pass "deliver --qmail: unknown account is permanent (100)" ||
	fail "deliver --qmail: unknown account is permanent (100)"
c deliver "$A" --qmail </dev/null
expect_rc 100 && pass "deliver --qmail: empty input is permanent (100)" ||
	fail "deliver --qmail: empty input is permanent (100)"
c deliver "$A" --qmail --folder ../up <"$M1"
expect_rc 100 && pass "deliver --qmail: invalid folder is permanent (100)" ||
	fail "deliver --qmail: invalid folder is permanent (100)"
# A write that cannot complete (file size limit: EFBIG, as a full disk would)
# is temporary: 111 with --qmail, 74/75 without; nothing is stored.
big=$T_TMP/big.eml
{ printf 'From: a@example.org\nSubject: big\n\n'; head -c 3000000 /dev/urandom | base64; } >"$big"
before=$(ls_json "$A" | jq length)
blobs_before=$(all_blobs | wc -l)
(trap '' XFSZ; ulimit -f 512; "$COFFER_BIN" --store "$S" --key-file "$K" deliver "$A" --qmail <"$big" >"$R_OUT" 2>"$R_ERR")
R_RC=$? R_CMD="(ulimit -f 512) coffer deliver --qmail"
expect_rc 111 && pass "deliver --qmail: a failed write is temporary (111)" ||
	fail "deliver --qmail: a failed write is temporary (111)"
(trap '' XFSZ; ulimit -f 512; "$COFFER_BIN" --store "$S" --key-file "$K" deliver "$A" <"$big" >"$R_OUT" 2>"$R_ERR")
R_RC=$? R_CMD="(ulimit -f 512) coffer deliver"
expect_error "74 75" && pass "deliver: a failed write exits 74/75 with one error line" ||
	fail "deliver: a failed write exits 74/75 with one error line"
[ "$(ls_json "$A" | jq length)" = "$before" ] && [ "$(all_blobs | wc -l)" = "$blobs_before" ]
ok $? "failed deliveries left no message and no blob behind"

done_testing
