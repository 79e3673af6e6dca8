#!/bin/bash
# The access commands end to end: passwd (stdin, --hash import), apppass
# (limit of 5, list, revoke), totp (enable, codes through `coffer auth`,
# replay, disable), auth, logins (--limit, --since, --json), security, and
# the hardening of checkpassword's fd-3 input (missing fields, 1 MiB, NUL
# in the name, no fd 3) with a canary password that must appear in no
# output, error text or argv.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null 2>&1 || { echo "1..0 # SKIP python3 missing"; exit 77; }

A=alice@example.org
CANARY=CanaryAccessPw-83c1
LOGS=$T_TMP/all-output
: >"$LOGS"
keep() { cat "$R_OUT" "$R_ERR" >>"$LOGS"; }
cs() { c "$@"; keep; }
# cin INPUT ARGS: coffer with INPUT on stdin.
cin() {
	local input=$1
	shift
	R_CMD="coffer $*"
	printf '%s' "$input" | "$COFFER_BIN" --store "$S" --key-file "$K" "$@" >"$R_OUT" 2>"$R_ERR"
	R_RC=$?
	keep
}

new_store s || { fail "store"; done_testing; }
cs account add "$A"; expect_success; ok $? "account"

# ---- passwd ----
cin "$CANARY"$'\n' passwd "$A"; expect_success; ok $? "passwd reads stdin"
cin "$CANARY"$'\n' auth "$A" --service imap --ip 192.0.2.1; expect_success; ok $? "auth accepts it"
cin "x$CANARY"$'\n' auth "$A" --ip 192.0.2.1; expect_error 77 "login refused" "bad-password"
ok $? "auth refuses a wrong one (77, one line naming the reason)"
cin "$(printf 'a%.0s' $(seq 73))"$'\n' passwd "$A"; expect_error 64 "72 bytes"
ok $? "a password over 72 bytes refused"
cin $'\n' passwd "$A"; expect_error 64 "empty"; ok $? "an empty password refused"
HASH=$(python3 -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1<<12)))' "second-$CANARY" 2>/dev/null)
if [[ $HASH == '$2b$'* ]]; then
	cs passwd "$A" --hash "$HASH"; expect_success; ok $? "--hash imports a bcrypt hash"
	cin "second-$CANARY"$'\n' auth "$A"; expect_success; ok $? "imported hash in force"
	cin "$CANARY"$'\n' passwd "$A"
	cin "$HASH"$'\n' passwd "$A" --hash -; expect_success; ok $? "--hash - reads the hash from stdin"
	cin "second-$CANARY"$'\n' auth "$A"; expect_success; ok $? "imported hash in force again"
else
	fail "python3 crypt module unavailable: cannot make a bcrypt hash to import"
fi
Y=$(python3 -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_SHA512)))' x 2>/dev/null)
[ -n "$Y" ] && { cs passwd "$A" --hash "$Y"; expect_error 64 "bcrypt"; ok $? "sha512-crypt hash refused for import"; }
cs passwd "$A" --hash '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA'
expect_error 64 "argon2"; ok $? "argon2id import refused with a clear message"
grep -qF 'c2FsdA' "$R_ERR"; [ $? = 1 ]; ok $? "the message does not repeat the hash"
cin "$CANARY"$'\n' passwd "$A"; expect_success; ok $? "password back"

# ---- application passwords ----
for l in laptop phone tablet desktop car; do
	cs apppass add "$A" "$l"
	expect_success && [[ $(cat "$R_OUT") =~ ^[a-z2-9]{4}(-[a-z2-9]{4}){5}$ ]]
	ok $? "apppass add $l prints one password"
	eval "APP_$l=\$(cat \"\$R_OUT\")"
done
cs apppass add "$A" watch; expect_error 65 "5 application passwords"
ok $? "a sixth is refused with a clear message"
cin "$APP_phone"$'\n' auth "$A" --service imap --ip 198.51.100.4; expect_success
ok $? "app password accepted by auth"
cs apppass list "$A" --json; expect_success
python3 - "$R_OUT" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
ok = [a["label"] for a in g] == ["laptop", "phone", "tablet", "desktop", "car"]
p = g[1]
ok = ok and p["last_ip"] == "198.51.100.4" and p["last_protocol"] == "imap" and p["last_used"]
ok = ok and g[0]["last_used"] is None and set(g[0]) == {"label", "created", "last_used", "last_ip", "last_protocol"}
sys.exit(0 if ok else 1)
PY
ok $? "apppass list --json: labels, created, last used, last IP and protocol"
cs apppass list "$A"; expect_success && [ "$(wc -l <"$R_OUT")" = 5 ] && grep -q $'^phone\t.*\t198.51.100.4\timap$' "$R_OUT"
ok $? "apppass list (text)"
cs apppass revoke "$A" phone; expect_success; ok $? "revoke"
cs apppass revoke "$A" phone; expect_error 66 "phone"; ok $? "revoke again: not found (66)"
cin "$APP_phone"$'\n' auth "$A" --service imap --ip 203.0.113.9; expect_error 77 "revoked-app-password"
ok $? "revoked app password refused"
cs apppass add "$A" "bad/label"; expect_error 64 "label"; ok $? "bad label refused"
cs apppass frob "$A"; expect_rc 64; ok $? "unknown action: usage error"

# ---- TOTP ----
cs totp enable "$A"; expect_success; ok $? "totp enable"
URI=$(cat "$R_OUT")
[[ $URI == otpauth://totp/Coffer:alice%40example.org\?secret=*'&algorithm=SHA1&digits=6&period=30' ]]
ok $? "prints the otpauth:// URI"
code() {
	python3 - "$URI" "$1" <<'PY'
import base64, hashlib, hmac, struct, sys, time, urllib.parse
q = urllib.parse.parse_qs(urllib.parse.urlparse(sys.argv[1]).query)
key = base64.b32decode(q["secret"][0] + "=" * (-len(q["secret"][0]) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
o = h[19] & 15
print("%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7fffffff) % 1000000))
PY
}
C0=$(code 0)
cin "$CANARY"$'\n'"$C0"$'\n' auth "$A" --ip 192.0.2.1; expect_success; ok $? "auth: password + code"
cin "$CANARY"$'\n'"$C0"$'\n' auth "$A" --ip 192.0.2.1; expect_error 77 "totp-replayed"
ok $? "the same code is refused the second time"
cin "$CANARY"$'\n'"$(code -3)"$'\n' auth "$A"; expect_error 77 "bad-totp"; ok $? "an old code refused"
cin "$CANARY"$'\n'"$(code 1)"$'\n' auth "$A"; expect_success; ok $? "the next window's code accepted"
cin "$CANARY"$'\n' auth "$A" --service imap; expect_error 77 "two-factor"
ok $? "2FA on: main password refused for imap"
cin "$APP_laptop"$'\n' auth "$A" --service imap; expect_success; ok $? "2FA on: app password for imap"
cs totp enable "$A"; expect_error 73 "already"; ok $? "enable twice refused"
cs totp disable "$A"; expect_success; ok $? "totp disable"
cin "$CANARY"$'\n' auth "$A"; expect_success; ok $? "password alone again"

# ---- checkpassword fd-3 hardening ----
PROG=$T_TMP/prog.sh
cat >"$PROG" <<'SH'
#!/bin/sh
{ echo "USER=$USER"; echo "ARGS=$*"; env; } >"$(dirname "$0")/prog.out"
SH
chmod 0755 "$PROG"
cp3() { # cp3 INPUT-FILE [extra env...]: checkpassword with fd 3 from the file
	local in=$1
	shift
	rm -f "$T_TMP/prog.out"
	env "$@" "$COFFER_BIN" --store "$S" --key-file "$K" checkpassword "$PROG" one two \
		3<"$in" >"$R_OUT" 2>"$R_ERR"
	R_RC=$?
	keep
}
printf '%s\0%s\0%s\0' "$A" "$CANARY" "<1.2@x>" >"$T_TMP/in.ok"
cp3 "$T_TMP/in.ok" SERVICE=imap TCPREMOTEIP=192.0.2.55
[ "$R_RC" = 0 ] && grep -qx "USER=$A" "$T_TMP/prog.out" && grep -qx "ARGS=one two" "$T_TMP/prog.out"
ok $? "qmail input: PROG runs with USER and its arguments"
grep -qF -- "$CANARY" "$T_TMP/prog.out"; [ $? = 1 ]; ok $? "the password is not in PROG's argv or environment"
printf '%s\0%s\0' "$A" "$CANARY" >"$T_TMP/in.dovecot"
cp3 "$T_TMP/in.dovecot" SERVICE=pop3 TCPREMOTEIP=::ffff:192.0.2.56; [ "$R_RC" = 0 ]
ok $? "Dovecot input (no timestamp) accepted"
printf '%s\0%s' "$A" "$CANARY" >"$T_TMP/in.1"; cp3 "$T_TMP/in.1"
[ "$R_RC" = 2 ] && [ ! -e "$T_TMP/prog.out" ]; ok $? "unterminated password: exit 2, PROG not run"
printf '%s' "$A" >"$T_TMP/in.2"; cp3 "$T_TMP/in.2"; [ "$R_RC" = 2 ]; ok $? "user only: exit 2"
: >"$T_TMP/in.3"; cp3 "$T_TMP/in.3"; [ "$R_RC" = 2 ]; ok $? "empty input: exit 2"
printf '\0%s\0' "$CANARY" >"$T_TMP/in.4"; cp3 "$T_TMP/in.4"; [ "$R_RC" = 2 ]; ok $? "empty user: exit 2"
head -c 1048576 /dev/zero | tr '\0' 'a' >"$T_TMP/in.5"; cp3 "$T_TMP/in.5"
[ "$R_RC" = 2 ] && grep -q "512" "$R_ERR"; ok $? "1 MiB of input: exit 2, naming the limit"
{ printf '%s\0%s\0' "$A" "$CANARY"; head -c 600 /dev/zero; } >"$T_TMP/in.6"; cp3 "$T_TMP/in.6"
[ "$R_RC" = 2 ]; ok $? "valid fields padded past 512 bytes: exit 2"
printf 'ali\0ce@example.org\0%s\0' "$CANARY" >"$T_TMP/in.7"; cp3 "$T_TMP/in.7"
[ "$R_RC" = 1 ] && [ ! -e "$T_TMP/prog.out" ]; ok $? "NUL in the name: refused (exit 1)"
printf '%s\0%s\0' "$A" "x$CANARY" >"$T_TMP/in.8"; cp3 "$T_TMP/in.8" SERVICE=imap TCPREMOTEIP=192.0.2.57
[ "$R_RC" = 1 ] && [ ! -e "$T_TMP/prog.out" ]; ok $? "wrong password: exit 1, PROG not run"
cp3 "$T_TMP/in.ok" CREDENTIALS_LOOKUP=1; [ "$R_RC" = 1 ]; ok $? "credential lookups refused"
"$COFFER_BIN" --store "$S" --key-file "$K" checkpassword "$PROG" 3<&- >/dev/null 2>"$R_ERR"
[ $? = 2 ]; ok $? "no fd 3: exit 2"
"$COFFER_BIN" --store "$S" --key-file "$K" checkpassword 3<"$T_TMP/in.ok" 2>"$R_ERR"
[ $? = 2 ]; ok $? "no PROG: exit 2"
"$COFFER_BIN" --store "$T_TMP/nostore" --key-file "$K" checkpassword "$PROG" 3<"$T_TMP/in.ok" 2>"$R_ERR"
[ $? = 111 ]; ok $? "store unavailable: exit 111"

# ---- logins ----
cs logins "$A" --json --limit 3; expect_success
python3 - "$R_OUT" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
ok = len(g) == 3 and g[0]["service"] == "imap" and g[0]["result"] == "failure" and g[0]["ip"] == "192.0.2.57"
ok = ok and g[1]["service"] == "pop3" and g[1]["ip"] == "192.0.2.56" and g[2]["ip"] == "192.0.2.55"
sys.exit(0 if ok else 1)
PY
ok $? "logins --limit 3: the newest three checkpassword attempts, with IP and service"
cs logins "$A"; expect_success; N=$(wc -l <"$R_OUT")
[ "$N" -ge 12 ]; ok $? "logins lists every attempt ($N)"
cs logins "$A" --since 2000-01-01; [ "$(wc -l <"$R_OUT")" = "$N" ]; ok $? "--since in the past: all"
cs logins "$A" --since 2099-01-01; expect_success && [ ! -s "$R_OUT" ]; ok $? "--since in the future: none"
cs logins "$A" --since yesterday-ish; expect_error 64 "since"; ok $? "bad --since: usage error"
cs logins "$A" --limit 0; expect_rc 64; ok $? "--limit 0: usage error"

# ---- security ----
cs security "$A" --json; expect_success
python3 - "$R_OUT" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
kinds = {f["kind"] for f in g}
ok = "revoked-app-password" in kinds and "new-network" in kinds
ok = ok and all({"kind", "account", "first", "last", "count", "evidence"} <= set(f) for f in g)
sys.exit(0 if ok else 1)
PY
ok $? "security: revoked app password and new networks, with evidence"
cs security --all; expect_success; grep -q "revoked-app-password" "$R_OUT"; ok $? "security --all"
cs security; expect_rc 64; ok $? "security without NAME or --all: usage error"
cs security nobody@example.org; expect_error 67 "nobody"; ok $? "security of an unknown account"

# ---- no canary anywhere ----
grep -qaF -- "$CANARY" "$LOGS"; [ $? = 1 ]; ok $? "the canary password is in no output or error text"
grep -qaE -- '\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}' "$LOGS"; [ $? = 1 ]
ok $? "no stored hash in any output"
grep -aqF -- "$CANARY" "$S/index/data.mdb"; [ $? = 1 ]; ok $? "the canary is not in the index"
done_testing
