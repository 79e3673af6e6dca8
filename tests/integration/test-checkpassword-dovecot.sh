#!/bin/bash
# Real Dovecot (Debian's dovecot-imapd, -pop3d) authenticating through
# `coffer checkpassword` (passdb { driver = checkpassword }, userdb static),
# with the mail on `coffer mount` when FUSE is available (else a plain
# Maildir in the test directory). Two clients: Python's imaplib/poplib and
# curl (imap://, pop3://; credentials from a netrc file, never argv).
# Checks: right password in, wrong out; an application password works and
# stops the moment it is revoked; with 2FA on, the main password is refused
# for IMAP while an application password works; a terminated account is
# refused. Then `coffer logins` shows exactly those attempts, with IP and
# service, and no log holds the canary password.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount-lib.sh"
if ! command -v dovecot >/dev/null 2>&1 || [ ! -x /usr/lib/dovecot/checkpassword-reply ]; then
	echo "1..0 # SKIP dovecot missing (Debian: dovecot-imapd dovecot-pop3d)"
	exit 77
fi
if [ ! -x /usr/lib/dovecot/pop3 ] && [ ! -x /usr/lib/dovecot/pop3-login ]; then
	echo "1..0 # SKIP dovecot-pop3d missing"
	exit 77
fi
if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root (Dovecot switches to the mail user)"
	exit 77
fi
for p in python3 curl; do
	command -v $p >/dev/null 2>&1 || { echo "1..0 # SKIP $p missing"; exit 77; }
done

A=alice@example.org
B=bob@example.org
CANARY=CanaryCheckpw-5b8e21
VM=coffer-cpw
mnt_user "$VM"

new_store s || { fail "store"; done_testing; }
c account add "$A"; expect_success && pass "account $A" || fail "account $A"
c account add "$B"; expect_success && pass "account $B" || fail "account $B"
printf '%s\n' "$CANARY" | "$COFFER_BIN" --store "$S" --key-file "$K" passwd "$A" 2>"$T_TMP/passwd.err"
ok $? "passwd from stdin"
printf '%s\n' "bob-pw-$CANARY" | "$COFFER_BIN" --store "$S" --key-file "$K" passwd "$B" 2>>"$T_TMP/passwd.err"
ok $? "passwd bob"

mkdir -p "$DV/mail"
chown "$VM" "$DV/mail"
MAIL=$DV/mail
MOUNTED=0
if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null 2>&1 &&
	"$COFFER_BIN" mount --help >/dev/null 2>&1 && mnt_start --allow-user "$VM"; then
	MAIL=$MNT
	MOUNTED=1
fi
diag "mail store: $MAIL (mount: $MOUNTED)"

# The wrapper Dovecot runs: the store and key file are its configuration.
cat >"$DV/checkpassword" <<SH
#!/bin/sh
exec "$COFFER_BIN" --store "$S" --key-file "$K" checkpassword "\$@" 2>>"$DV/checkpassword.err"
SH
chmod 0755 "$DV/checkpassword"

# Mostly the settings of mount-lib.sh's mnt_dovecot, with only IMAP and POP3,
# and coffer checkpassword as the passdb.
DV_PROTOCOLS="imap pop3"
DV_PASSDB="driver = checkpassword
  args = $DV/checkpassword"
DV_EXTRA_CONF="auth_mechanisms = plain login
auth_failure_delay = 0
auth_cache_size = 0
# Dovecot limits its processes' address space (256 MiB by default); a coffer
# built with AddressSanitizer (the CI build) reserves terabytes of shadow
# memory and cannot start under it. Production builds need no such setting.
default_vsz_limit = 0
service auth {
  user = root
}"
mnt_dovecot "$VM" "$MAIL"; ok $? "dovecot starts"

# imap USER: password on stdin; exit 0 logged in (and INBOX selected), 1 refused.
imap() {
	python3 -c '
import imaplib, sys
pw = sys.stdin.readline().rstrip("\n")
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[2]))
try:
    m.login(sys.argv[1], pw)
except imaplib.IMAP4.error:
    sys.exit(1)
typ, _ = m.select("INBOX")
m.logout()
sys.exit(0 if typ == "OK" else 3)
' "$1" "$DV_IMAP"
}
pop3() {
	python3 -c '
import poplib, sys
pw = sys.stdin.readline().rstrip("\n")
p = poplib.POP3("127.0.0.1", int(sys.argv[2]))
try:
    p.user(sys.argv[1]); p.pass_(pw)
except poplib.error_proto:
    sys.exit(1)
p.stat(); p.quit()
' "$1" "$DV_POP3"
}
# curl_login PROTO USER PASSWORD-FILE: credentials through a netrc file.
curl_login() {
	local proto=$1 user=$2 pwfile=$3 port
	[ "$proto" = imap ] && port=$DV_IMAP || port=$DV_POP3
	printf 'machine 127.0.0.1 login %s password %s\n' "$user" "$(cat "$pwfile")" >"$T_TMP/netrc"
	curl -s --max-time 20 --netrc-file "$T_TMP/netrc" "$proto://127.0.0.1:$port/" \
		>"$T_TMP/curl.out" 2>&1
}
pwf() { printf '%s' "$1" >"$T_TMP/pw"; echo "$T_TMP/pw"; }

# Every attempt made, in order: service result label.
EXPECT=()
imap "$A" <<<"$CANARY"; ok $? "imaplib: right password logs in"
EXPECT+=("imap success -")
imap "$A" <<<"wrong-$CANARY"; [ $? = 1 ]; ok $? "imaplib: wrong password refused"
EXPECT+=("imap failure -")
pop3 "$A" <<<"$CANARY"; ok $? "poplib: right password logs in"
EXPECT+=("pop3 success -")
pop3 "$A" <<<"nope"; [ $? = 1 ]; ok $? "poplib: wrong password refused"
EXPECT+=("pop3 failure -")
curl_login imap "$A" "$(pwf "$CANARY")"; ok $? "curl imap://: right password logs in"
EXPECT+=("imap success -")
curl_login pop3 "$A" "$(pwf "x$CANARY")"; [ $? = 67 ]; ok $? "curl pop3://: wrong password refused (67)"
EXPECT+=("pop3 failure -")

c apppass add "$A" thunderbird
APP=$(cat "$R_OUT")
expect_success && [ ${#APP} = 29 ]; ok $? "app password created"
imap "$A" <<<"$APP"; ok $? "imaplib: app password logs in"
EXPECT+=("imap success thunderbird")
curl_login pop3 "$A" "$(pwf "$APP")"; ok $? "curl pop3://: app password logs in"
EXPECT+=("pop3 success thunderbird")
c apppass revoke "$A" thunderbird; expect_success; ok $? "app password revoked"
imap "$A" <<<"$APP"; [ $? = 1 ]; ok $? "imaplib: revoked app password refused at once"
EXPECT+=("imap failure thunderbird")
curl_login imap "$A" "$(pwf "$APP")"; [ $? = 67 ]; ok $? "curl imap://: revoked app password refused"
EXPECT+=("imap failure thunderbird")

c totp enable "$A"; expect_success; ok $? "2FA on"
grep -q '^otpauth://totp/' "$R_OUT"; ok $? "otpauth URI printed"
c apppass add "$A" phone
APP2=$(cat "$R_OUT")
imap "$A" <<<"$CANARY"; [ $? = 1 ]; ok $? "2FA on: main password refused for IMAP"
EXPECT+=("imap failure -")
pop3 "$A" <<<"$CANARY"; [ $? = 1 ]; ok $? "2FA on: main password refused for POP3"
EXPECT+=("pop3 failure -")
imap "$A" <<<"$APP2"; ok $? "2FA on: app password works over IMAP"
EXPECT+=("imap success phone")
curl_login imap "$A" "$(pwf "$APP2")"; ok $? "2FA on: curl with app password works"
EXPECT+=("imap success phone")

imap "$B" <<<"bob-pw-$CANARY"; ok $? "bob logs in"
c account terminate "$B"; expect_success; ok $? "bob terminated"
imap "$B" <<<"bob-pw-$CANARY"; [ $? = 1 ]; ok $? "terminated account refused (imaplib)"
curl_login pop3 "$B" "$(pwf "bob-pw-$CANARY")"; [ $? = 67 ]; ok $? "terminated account refused (curl)"
imap "nobody@example.org" <<<"$CANARY"; [ $? = 1 ]; ok $? "unknown account refused"

# Last Logins: exactly those attempts, newest first, with IP and service.
c logins "$A" --json
expect_success; ok $? "coffer logins --json"
python3 - "$R_OUT" "${EXPECT[@]}" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))
want = list(reversed(sys.argv[2:]))
ok = len(got) == len(want)
for g, w in zip(got, want):
    svc, res, label = w.split(" ")
    if (g["service"], g["result"], g["app_password"] or "-") != (svc, res, label) or g["ip"] != "127.0.0.1":
        ok = False
        print("# mismatch:", g, "want", w)
if len(got) != len(want):
    print("# got %d events, want %d" % (len(got), len(want)))
    for g in got: print("#", g)
sys.exit(0 if ok else 1)
PY
ok $? "coffer logins shows exactly the ${#EXPECT[@]} attempts with IPs and services"
c logins "$A" --json --limit 3
python3 -c 'import json,sys; g=json.load(open(sys.argv[1])); sys.exit(0 if len(g)==3 and g[0]["app_password"]=="phone" else 1)' "$R_OUT"
ok $? "--limit 3: the three newest"
c logins "$B" --json
expect_error 67 terminated; ok $? "a terminated account's log is closed too"
c account reactivate "$B"
c logins "$B" --json
python3 -c '
import json,sys
g=json.load(open(sys.argv[1]))
sys.exit(0 if len(g)==3 and g[0]["reason"]=="account-terminated" and g[1]["reason"]=="account-terminated" and g[2]["result"]=="success" else 1)' "$R_OUT"
ok $? "after reactivation, bob's log: the success, then two refusals as terminated"
c security "$A" --json
python3 -c '
import json,sys
g=json.load(open(sys.argv[1]))
sys.exit(0 if any(f["kind"]=="revoked-app-password" and f["app_password"]=="thunderbird" for f in g) else 1)' "$R_OUT"
ok $? "coffer security reports the revoked application password's use"

# No secret in any log.
mnt_dovecot_stop
leak=0
for f in "$DV"/dovecot.log "$DV"/checkpassword.err "$T_TMP"/passwd.err "$T_TMP"/.err "$T_TMP"/mount.log; do
	[ -f "$f" ] || continue
	if grep -qaF -- "$CANARY" "$f" || grep -qaF -- "$APP" "$f" || grep -qaF -- '$2b$' "$f"; then
		diag "secret found in $f"
		leak=1
	fi
done
[ $leak = 0 ]; ok $? "no password or hash in Dovecot's log, checkpassword's stderr or coffer's"
grep -q "login refused" "$DV/checkpassword.err"; ok $? "refusals are explained on stderr (Dovecot's log)"
if grep -aq -- "$CANARY" "$S/index/data.mdb"; then fail "canary in the index"; else pass "no canary in the index"; fi
[ "$MOUNTED" = 1 ] && mnt_stop
done_testing
