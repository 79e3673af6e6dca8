#!/usr/bin/env bash
# test-report.sh: `coffer report` (issue 6).
#
# - JSON validates against docs/report.schema.json (ajv-cli from the npm
#   registry, installed at test time into a cache directory), for a store
#   with active, terminated and shredded accounts, snapshots, metadata, and
#   with overdue items (the worker not run) as well as without;
# - the HTML is one self-contained page (no http:/https: other than the SVG
#   namespace, no scripts, no external references) that headless Chromium
#   renders to a non-empty screenshot with no console errors;
# - the CMS signature verifies with stock `openssl cms -verify`, and a
#   one-byte change to the report makes verification fail;
# - bad usage: unknown format, --sign-cert without --sign-key, signing to
#   stdout (exit 64); a wrong key (the error names the file).
# AJV_CACHE (default ~/.cache/coffer-ajv) is where ajv-cli is installed.
T_SHM=1 . "$(dirname "$0")/lib.sh"
require_jq
SCHEMA=$COFFER_SOURCE_ROOT/docs/report.schema.json

new_store rp || done_testing
echo "snapshot_target = \"$T_TMP/rp/target\"" >>"$S/coffer.conf"
export COFFER_NOW=2026-06-01T03:00:00Z
for a in 'active@example.org' 'term@example.org' 'gone@example.org'; do
	c account add "$a"
done
for d in 01 02 03; do
	export COFFER_NOW=2026-06-${d}T03:00:00Z
	for a in active@example.org term@example.org gone@example.org; do
		printf 'Subject: r%s\n\nreport test\n' $d | "$COFFER_BIN" --store "$S" --key-file "$K" deliver $a
		echo nope | "$COFFER_BIN" --store "$S" --key-file "$K" auth $a >/dev/null 2>&1
	done
	c worker --once
done
c account terminate term@example.org
c purge gone@example.org --now --yes --terminate; expect_rc 0 || fail "purge"

# ---- JSON and the schema
AJV_CACHE=${AJV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coffer-ajv}
AJV=$AJV_CACHE/node_modules/.bin/ajv
if [ ! -x "$AJV" ] && command -v npm >/dev/null; then
	mkdir -p "$AJV_CACHE"
	npm install --prefix "$AJV_CACHE" --no-audit --no-fund ajv-cli@5 ajv-formats@2 >"$T_TMP/npm.log" 2>&1 ||
		diag "npm install failed: $(tail -5 "$T_TMP/npm.log")"
fi
validate() { # FILE
	"$AJV" validate --spec=draft7 --strict=false -s "$SCHEMA" -d "$1" >"$T_TMP/ajv.out" 2>&1 ||
		{ diag "$(cat "$T_TMP/ajv.out")"; return 1; }
}
c report --format json --output "$T_TMP/r1.json"; expect_rc 0; ok $? "report --format json --output"
jq -e 'keys == ["accounts","generated_at","overdue","policy","snapshots"]' "$T_TMP/r1.json" >/dev/null
ok $? "top-level keys are generated_at, policy, accounts, snapshots, overdue"
jq -e '[.accounts[].state] | sort == ["active","shredded","terminated"]' "$T_TMP/r1.json" >/dev/null
ok $? "states: active, terminated, shredded"
jq -e '.accounts[] | select(.name == "term@example.org") | .next_action.action == "auto-shred" and .next_action.at == "2026-07-03T03:00:00Z"' \
	"$T_TMP/r1.json" >/dev/null; ok $? "term@: next action auto-shred on 2026-07-03"
jq -e '[.accounts[] | select(.state == "shredded")][0] | .name == null and .messages == 0 and (.snapshots | length) == 0' \
	"$T_TMP/r1.json" >/dev/null; ok $? "the shredded account: no name, nothing held"
! grep -q gone@ "$T_TMP/r1.json"; ok $? "the shredded account's name is not in the report"
jq -e '.accounts[] | select(.name == "active@example.org") | .messages == 3 and (.snapshots | length) == 3 and .metadata.events >= 3' \
	"$T_TMP/r1.json" >/dev/null; ok $? "active@: 3 messages, in 3 snapshots, its metadata counted"
jq -e '.overdue == []' "$T_TMP/r1.json" >/dev/null; ok $? "nothing overdue after the worker ran"
c report --account gone@example.org --format json --output "$T_TMP/r-gone.json"
jq -e '.accounts | length == 1 and .[0].name == "gone@example.org" and .[0].state == "shredded" and (.[0].pseudonym | startswith("ps:"))' \
	"$T_TMP/r-gone.json" >/dev/null; ok $? "report --account for a shredded account shows the name given and its pseudonym"
# a report with overdue items: time moves on without the worker
COFFER_NOW=2026-12-30T00:00:00Z "$COFFER_BIN" --store "$S" --key-file "$K" report --format json \
	--output "$T_TMP/r2.json"
jq -e '[.overdue[].what] | (index("snapshot") != null) and (index("terminated account") != null) and (index("metadata") != null)' \
	"$T_TMP/r2.json" >/dev/null; ok $? "without the worker, overdue lists snapshots, the terminated account and metadata"
if [ -x "$AJV" ]; then
	for f in r1 r-gone r2; do
		validate "$T_TMP/$f.json"; ok $? "$f.json validates against docs/report.schema.json"
	done
	jq '.accounts[0].state = "sleeping"' "$T_TMP/r1.json" >"$T_TMP/bad1.json"
	! validate "$T_TMP/bad1.json" 2>/dev/null; ok $? "the schema rejects an unknown state"
	jq 'del(.overdue)' "$T_TMP/r1.json" >"$T_TMP/bad2.json"
	! validate "$T_TMP/bad2.json" 2>/dev/null; ok $? "the schema rejects a report without overdue"
else
	echo "ok $((T_N + 1)) # SKIP ajv-cli unavailable (npm registry unreachable)"; T_N=$((T_N + 1))
fi

# ---- HTML
c report --format html --output "$T_TMP/r.html"; expect_rc 0; ok $? "report --format html"
grep -q '<svg xmlns="http://www.w3.org/2000/svg"' "$T_TMP/r.html"; ok $? "it has an inline SVG timeline"
! grep -o -i -E '(https?:|//)[^" <]*' "$T_TMP/r.html" | grep -v -x 'http://www.w3.org/2000/svg' | grep -q .
ok $? "no URL other than the SVG namespace"
! grep -q -i -E '<script|<link|<img|<iframe|@import|url\(|src=' "$T_TMP/r.html"; ok $? "no scripts, links, images or imports"
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$CHROME" ]; then
	prof=$(mktemp -d "$T_TMP/chrome.XXXXXX")
	timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$prof" --screenshot="$T_TMP/r.png" --window-size=1000,900 \
		--enable-logging=stderr --v=0 "file://$T_TMP/r.html" >"$T_TMP/chrome.out" 2>"$T_TMP/chrome.err"
	[ -s "$T_TMP/r.png" ] && [ "$(stat -c %s "$T_TMP/r.png")" -gt 5000 ]
	ok $? "Chromium renders the page to a non-empty screenshot ($(stat -c %s "$T_TMP/r.png" 2>/dev/null) bytes)"
	! grep -E 'CONSOLE|Uncaught|ERR_|Refused to' "$T_TMP/chrome.err" | grep -q .
	ok $? "no console errors or failed loads"
	[ -n "${REPORT_PNG:-}" ] && cp "$T_TMP/r.png" "$REPORT_PNG"
else
	echo "ok $((T_N + 1)) # SKIP chromium not installed"; T_N=$((T_N + 1))
fi

# ---- signature
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Coffer report test" \
	-keyout "$T_TMP/sign.key" -out "$T_TMP/sign.crt" >/dev/null 2>&1; ok $? "self-signed certificate"
c report --format json --output "$T_TMP/R" --sign-cert "$T_TMP/sign.crt" --sign-key "$T_TMP/sign.key"
expect_rc 0; ok $? "report --sign-cert --sign-key"
[ -s "$T_TMP/R.p7s" ]; ok $? "R.p7s written"
openssl cms -verify -binary -inform DER -in "$T_TMP/R.p7s" -content "$T_TMP/R" \
	-CAfile "$T_TMP/sign.crt" -purpose any -out /dev/null 2>"$T_TMP/v.err"
ok $? "openssl cms -verify accepts the signature"
cp "$T_TMP/R" "$T_TMP/R.bad"
printf '%s' "$(head -c 1 "$T_TMP/R" | tr '{' '[')" | dd of="$T_TMP/R.bad" bs=1 count=1 conv=notrunc 2>/dev/null
! cmp -s "$T_TMP/R" "$T_TMP/R.bad"; ok $? "one byte changed"
! openssl cms -verify -binary -inform DER -in "$T_TMP/R.p7s" -content "$T_TMP/R.bad" \
	-CAfile "$T_TMP/sign.crt" -purpose any -out /dev/null 2>/dev/null
ok $? "verification fails after a one-byte change"
c report --format html --output "$T_TMP/R.html" --sign-cert "$T_TMP/sign.crt" --sign-key "$T_TMP/sign.key"
openssl cms -verify -binary -inform DER -in "$T_TMP/R.html.p7s" -content "$T_TMP/R.html" \
	-CAfile "$T_TMP/sign.crt" -purpose any -out /dev/null 2>/dev/null
ok $? "an HTML report's signature verifies too"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=other" \
	-keyout "$T_TMP/other.key" -out "$T_TMP/other.crt" >/dev/null 2>&1
c report --format json --output "$T_TMP/R2" --sign-cert "$T_TMP/sign.crt" --sign-key "$T_TMP/other.key"
[ "$R_RC" != 0 ] && grep -q other.key "$R_ERR" && [ ! -e "$T_TMP/R2.p7s" ]
ok $? "a key that does not match the certificate is refused, naming the file ($R_RC)"

# ---- bad usage
c report --format pdf; expect_rc 64; ok $? "unknown format: 64"
c report --format json --output "$T_TMP/x" --sign-cert "$T_TMP/sign.crt"; expect_rc 64; ok $? "--sign-cert alone: 64"
c report --format json --sign-cert "$T_TMP/sign.crt" --sign-key "$T_TMP/sign.key"; expect_rc 64
ok $? "signing without --output: 64"
c report --account nobody@example.org; expect_rc 67; ok $? "report of an unknown account: 67"
done_testing
