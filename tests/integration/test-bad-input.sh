#!/usr/bin/env bash
# Hostile and unusual input to `coffer`: every case is either stored faithfully
# (cat gives back the exact bytes) or refused with exactly one error line and
# the documented exit code; never a crash, and never a change to what was
# stored before. Prints TAP.
. "$(dirname "$0")/lib.sh"

A=carol@example.org
new_store main || { diag_run; fail "init"; done_testing; }
c account add "$A"
expect_success || fail "account add"

# Baseline: messages stored before the hostile input, compared after each case.
for i in 1 2 3; do
	msg "$T_TMP/base$i.eml" "Baseline $i"
	c deliver "$A" --folder Base <"$T_TMP/base$i.eml"
	expect_success || fail "baseline delivery $i"
done
c ls "$A" Base --json
cp "$R_OUT" "$T_TMP/base.json"
jq -e 'length == 3' "$T_TMP/base.json" >/dev/null
ok $? "baseline: three messages stored"

# unchanged: the baseline folder lists and reads exactly as before.
unchanged() {
	local i uid out=$T_TMP/.unch
	"$COFFER_BIN" --store "$S" --key-file "$K" ls "$A" Base --json >"$out" 2>/dev/null || return 1
	cmp -s "$out" "$T_TMP/base.json" || { diag "ls --json of the baseline changed"; return 1; }
	for i in 1 2 3; do
		uid=$(jq -r "sort_by(.uid) | .[$((i - 1))].uid" "$T_TMP/base.json")
		"$COFFER_BIN" --store "$S" --key-file "$K" cat "$A" Base "$uid" >"$out" 2>/dev/null || return 1
		cmp -s "$out" "$T_TMP/base$i.eml" || { diag "baseline message $i changed"; return 1; }
	done
	return 0
}

# count FOLDER: number of messages in FOLDER (0 if it does not exist).
count() {
	local n
	n=$("$COFFER_BIN" --store "$S" --key-file "$K" ls "$A" "$1" --json 2>/dev/null | jq length 2>/dev/null)
	echo "${n:-0}"
}

# refused DESC CODE FILE [deliver args...]: delivering FILE (to $A unless the
# args name another account with --to) is refused with CODE and one error
# line; nothing is stored; the baseline is unchanged.
refused() {
	local desc=$1 code=$2 file=$3
	shift 3
	local before blobs acct=$A
	if [ "${1:-}" = --to ]; then
		acct=$2
		shift 2
	fi
	before=$(count INBOX)
	blobs=$(all_blobs | wc -l)
	c deliver "$acct" "$@" <"$file"
	if not_crashed && expect_error "$code" && [ "$(count INBOX)" = "$before" ] &&
		[ "$(all_blobs | wc -l)" = "$blobs" ] && unchanged; then
		pass "$desc: refused ($code), one error line, nothing stored"
	else
		fail "$desc: refused ($code), one error line, nothing stored"
	fi
}

# stored DESC FILE [FOLDER]: delivering FILE succeeds and cat gives it back exactly.
stored() {
	local desc=$1 file=$2 folder=${3:-Odd}
	local uid
	c deliver "$A" --folder "$folder" <"$file"
	if ! not_crashed || ! expect_success; then
		fail "$desc: stored"
		return
	fi
	uid=$(ls_json "$A" "$folder" | jq -r 'max_by(.uid) | .uid')
	c cat "$A" "$folder" "$uid"
	if expect_rc 0 && cmp -s "$R_OUT" "$file" &&
		[ "$(ls_json "$A" "$folder" | jq "max_by(.uid) | .size")" = "$(stat -c %s "$file")" ] &&
		unchanged; then
		pass "$desc: stored and read back byte for byte"
	else
		cmp "$R_OUT" "$file" 2>&1 | head -1 | while IFS= read -r l; do diag "$l"; done
		fail "$desc: stored and read back byte for byte"
	fi
}

# --- malformed or odd messages ------------------------------------------------
: >"$T_TMP/empty"
refused "empty input" 65 "$T_TMP/empty"
printf 'hello\n' >"$T_TMP/hello"
refused "input that is not a message ('hello')" 65 "$T_TMP/hello"
printf '\n\n\n' >"$T_TMP/blank"
refused "input of blank lines only" 65 "$T_TMP/blank"
head -c 4096 /dev/urandom | tr -d '\n:' >"$T_TMP/binary"
refused "random binary without a header" 65 "$T_TMP/binary"
refused "empty input with --qmail" 100 "$T_TMP/empty" --qmail

printf 'From: a@example.org\nSubject: no separator\nX-Last: header' >"$T_TMP/nosep"
stored "headers only, no header/body separator, no final newline" "$T_TMP/nosep"
printf 'From: a@example.org\nSubject: nul\n\nbefore\0after\0\0end\n' >"$T_TMP/nul"
stored "NUL bytes in the body" "$T_TMP/nul"
printf 'From: a@example.org\r\nSubject: crlf\r\n\r\nline one\r\nline two\r\n' >"$T_TMP/crlf"
stored "CRLF line endings" "$T_TMP/crlf"
printf 'From: a@example.org\nSubject: lf\n\nline one\nline two\n' >"$T_TMP/lf"
stored "bare LF line endings" "$T_TMP/lf"
printf 'From: a@example.org\r\nSubject: mixed\n\r\nline\rone\n\r\n' >"$T_TMP/mixed"
stored "mixed CR, LF and CRLF" "$T_TMP/mixed"
{ printf 'From: a@example.org\nX-Long: '; head -c $((1024 * 1024)) /dev/zero | tr '\0' 'h'; printf '\nSubject: long header\n\nbody\n'; } >"$T_TMP/longhdr"
stored "a header line of 1 MiB" "$T_TMP/longhdr"
{ printf 'From: a@example.org\nSubject: =?UTF-8?B?%s?=\n\n' "$(head -c 3000 /dev/urandom | base64 -w0)"; echo body; } >"$T_TMP/badmime"
stored "a subject of encoded binary garbage" "$T_TMP/badmime"
{ printf 'From: a@example.org\nSubject: \xff\xfe invalid \xc3 utf-8\n\n'; head -c 65536 /dev/urandom; } >"$T_TMP/raw8"
stored "invalid UTF-8 headers and a binary body" "$T_TMP/raw8"
hdr='From: a@example.org\nSubject: chunk edge\n\n'
{ printf "$hdr"; head -c $((65536 * 2 - $(printf "$hdr" | wc -c))) /dev/zero | tr '\0' x; } >"$T_TMP/edge"
[ "$(stat -c %s "$T_TMP/edge")" = 131072 ]
ok $? "chunk-edge message is exactly 2 x 64 KiB"
stored "a message of exactly two 64 KiB chunks" "$T_TMP/edge"
c ls "$A" Odd --json
expect_success && jq -e 'all(.[]; (.subject|type) == "string" and (.from|type) == "string")' "$R_OUT" >/dev/null
ok $? "ls --json stays valid JSON over all the odd messages"

# --- 50 MiB message: stored, read back, in small memory --------------------------------
# Under AddressSanitizer freed memory sits in a quarantine; keep it small so the
# figure reflects what the program holds, not the sanitizer.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
BIG=$T_TMP/big.eml
{ printf 'From: a@example.org\nSubject: fifty mebibytes\n\n'; head -c $((38 * 1024 * 1024)) /dev/urandom | base64; } | head -c $((50 * 1024 * 1024)) >"$BIG"
/usr/bin/time -f %M -o "$T_TMP/rss.deliver" "$COFFER_BIN" --store "$S" --key-file "$K" deliver "$A" --folder Big <"$BIG" >"$R_OUT" 2>"$R_ERR"
R_RC=$? R_CMD="coffer deliver (50 MiB)"
expect_success && pass "50 MiB message delivered" || fail "50 MiB message delivered"
uid=$(ls_json "$A" Big | jq -r 'max_by(.uid) | .uid')
[ "$(ls_json "$A" Big | jq -r 'max_by(.uid) | .size')" = $((50 * 1024 * 1024)) ]
ok $? "50 MiB message: ls reports its size"
/usr/bin/time -f %M -o "$T_TMP/rss.cat" "$COFFER_BIN" --store "$S" --key-file "$K" cat "$A" Big "$uid" >"$T_TMP/big.out" 2>"$R_ERR"
R_RC=$?
[ "$R_RC" = 0 ] && cmp -s "$T_TMP/big.out" "$BIG"
ok $? "50 MiB message read back byte for byte"
rm -f "$T_TMP/big.out"
rss_d=$(tail -1 "$T_TMP/rss.deliver") rss_c=$(tail -1 "$T_TMP/rss.cat")
[ "$rss_d" -lt 65536 ]
ok $? "deliver of 50 MiB peaks below 64 MiB RSS (${rss_d} KiB)"
[ "$rss_c" -lt 65536 ]
ok $? "cat of 50 MiB peaks below 64 MiB RSS (${rss_c} KiB)"
rm -f "$BIG"
unchanged
ok $? "baseline unchanged after the big message"

# --- names that must be refused -----------------------------------------------------
M=$T_TMP/ok.eml
msg "$M" "valid message"
for bad in "../x" "a/../b" "/abs" "x/" "a//b" ".." "." "" $'ctl\x01name' $'new\nline' $'tab\tname' "a/./b"; do
	refused "deliver --folder $(printf '%q' "$bad")" 64 "$M" --folder "$bad"
done
for bad in "a/b@example.org" "../x@example.org" "x@../example.org" ".." $'ctl\x01@example.org' \
	$'new\nline@example.org' "a@b/c"; do
	refused "deliver to account $(printf '%q' "$bad")" "64 67" "$M" --to "$bad"
done
for bad in "a/b@example.org" "../x@example.org" $'ctl\x01@example.org' $'new\nline@example.org'; do
	c account add "$bad"
	not_crashed && expect_error 64 && pass "account add $(printf '%q' "$bad"): 64" ||
		fail "account add $(printf '%q' "$bad"): 64"
done
c ls "$A" "../Base"
not_crashed && expect_error "64" && pass "ls of folder ../Base: 64" || fail "ls of folder ../Base: 64"
c cat "$A" Base notanumber
not_crashed && expect_error "64" && pass "cat with a non-numeric uid: 64" || fail "cat with a non-numeric uid: 64"
c cat "$A" Base -1
not_crashed && expect_error "64" && pass "cat with a negative uid: 64" || fail "cat with a negative uid: 64"
c cat "$A" Base 99999999999999999999
not_crashed && expect_error "64" && pass "cat with an overflowing uid: 64" || fail "cat with an overflowing uid: 64"
c deliver
not_crashed && expect_error 64 && pass "deliver without an account: 64" || fail "deliver without an account: 64"
unchanged
ok $? "baseline unchanged after the refused names"

# --- damaged blobs -------------------------------------------------------------------------
# A separate account whose blob files we can identify by watching the store.
D=dave@example.org
c account add "$D"
msg "$T_TMP/d1.eml" "Dave one" "$(head -c 20000 /dev/urandom | base64)"
msg "$T_TMP/d2.eml" "Dave two"
msg "$T_TMP/d3.eml" "Dave three"
all_blobs >"$T_TMP/b0"
c deliver "$D" --folder Work <"$T_TMP/d1.eml"
all_blobs >"$T_TMP/b1"
c deliver "$D" --folder Work <"$T_TMP/d2.eml"
all_blobs >"$T_TMP/b2"
c deliver "$D" --folder Work <"$T_TMP/d3.eml"
blob1=$(comm -13 "$T_TMP/b0" "$T_TMP/b1")
blob2=$(comm -13 "$T_TMP/b1" "$T_TMP/b2")
[ -n "$blob1" ] && [ "$(echo "$blob1" | wc -l)" = 1 ] && [ -n "$blob2" ] && [ "$(echo "$blob2" | wc -l)" = 1 ]
ok $? "each delivery adds exactly one blob file under STORE/blobs"
c ls "$D" Work --json
u1=$(jq -r 'sort_by(.uid) | .[0].uid' "$R_OUT")
u2=$(jq -r 'sort_by(.uid) | .[1].uid' "$R_OUT")
u3=$(jq -r 'sort_by(.uid) | .[2].uid' "$R_OUT")
if [ -n "$blob1" ] && [ -f "$blob1" ]; then
	size=$(stat -c %s "$blob1")
	python3 - "$blob1" "$((size / 2))" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x01]))
PY
fi
c cat "$D" Work "$u1"
not_crashed && expect_rc 1 && [ "$(wc -l <"$R_ERR")" = 1 ] && grep -qF "$D" "$R_ERR" &&
	grep -qF Work "$R_ERR" && grep -qF "$u1" "$R_ERR"
ok $? "cat of a blob with one flipped byte: exit 1, one error line naming account, folder and uid"
if [ -n "$blob2" ] && [ -f "$blob2" ]; then
	truncate -s $(($(stat -c %s "$blob2") * 2 / 3)) "$blob2"
fi
c cat "$D" Work "$u2"
not_crashed && expect_rc 1 && [ "$(wc -l <"$R_ERR")" = 1 ] && grep -qF "$D" "$R_ERR" &&
	grep -qF Work "$R_ERR" && grep -qF "$u2" "$R_ERR" && [ ! -s "$R_OUT" ]
ok $? "cat of a truncated blob: exit 1, one error line naming account, folder and uid, no output"
c cat "$D" Work "$u3"
expect_rc 0 && cmp -s "$R_OUT" "$T_TMP/d3.eml"
ok $? "the undamaged message in the same folder still reads fine"
# ls reads headers from the blobs: it may list the folder, or refuse with one
# line naming a damaged message; it must not crash or print garbage.
c ls "$D" Work --json
if [ "$R_RC" = 0 ]; then
	jq -e 'length == 3' "$R_OUT" >/dev/null
else
	not_crashed && expect_error 1 "$D" Work
fi
ok $? "ls of the folder with damaged blobs lists it or names the damage in one line"
unchanged
ok $? "other accounts unaffected by the damage"

# --- key file problems ------------------------------------------------------------
mv "$K" "$K.away"
c ls "$A" Base
not_crashed && expect_error 66 "$K" && pass "missing key file: exit 66, names the file" ||
	fail "missing key file: exit 66, names the file"
mv "$K.away" "$K"
chmod 0644 "$K"
c ls "$A" Base
not_crashed && expect_error 77 "$K" && pass "world-readable key file: exit 77, names the file" ||
	fail "world-readable key file: exit 77, names the file"
chmod 0640 "$K"
c cat "$A" Base 1
not_crashed && expect_error 77 "$K" && pass "group-readable key file: exit 77, names the file" ||
	fail "group-readable key file: exit 77, names the file"
chmod 0600 "$K"
unchanged
ok $? "with the key file restored everything reads as before"

done_testing
