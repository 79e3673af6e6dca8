#!/bin/bash
# SMTP into Coffer with Haraka (npm `Haraka`), both routes of docs/dovecot.md:
#   1. Haraka's queue/lmtp → Dovecot's LMTP → the mount;
#   2. a Haraka queue plugin that pipes the message to `coffer deliver`
#      (no Dovecot, no secret key on the delivery path).
# Mail is sent with a real SMTP client (python smtplib) to Haraka on loopback
# and read back over IMAP from Dovecot on `coffer mount`, byte for byte.
#
# Haraka is installed at test time with npm into a cache directory
# (COFFER_HARAKA_CACHE, default ~/.cache/coffer/haraka; never committed). The
# test exits 77 when node/npm are missing or npm cannot install Haraka.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount-lib.sh"
mnt_require dovecot

HVER=${COFFER_HARAKA_VERSION:-3.3.4}
HCACHE=${COFFER_HARAKA_CACHE:-${HOME:-/tmp}/.cache/coffer/haraka}
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "1..0 # SKIP node or npm missing (Debian: nodejs npm)"
	exit 77
fi
HARAKA=$HCACHE/node_modules/.bin/haraka
mkdir -p "$HCACHE"
(
	flock 9
	if [ ! -x "$HARAKA" ]; then
		cd "$HCACHE" && npm install --no-audit --no-fund --loglevel=error "Haraka@$HVER" >"$HCACHE/npm.log" 2>&1
	fi
) 9>"$HCACHE/.lock"
if [ ! -x "$HARAKA" ]; then
	echo "1..0 # SKIP npm could not install Haraka@$HVER: $(tail -n 3 "$HCACHE/npm.log" 2>/dev/null | tr '\n' ' ')"
	exit 77
fi

VM=coffer-mnt-a
A=erin@example.org
PASS=smtp-pw
mnt_account "$A"
mnt_dovecot_mount "$VM" "$A" "$PASS"
export A PASS

H=$T_TMP/haraka
"$HARAKA" -i "$H" >/dev/null 2>&1; ok $? "haraka -i (a fresh Haraka config)"
HPORT=$(free_port)
export HPORT
mkdir -p "$H/plugins" "$H/queue"
cat >"$H/config/smtp.ini" <<INI
listen=127.0.0.1:$HPORT
nodes=0
INI
echo example.org >"$H/config/host_list"
printf 'level=info\n' >"$H/config/log.ini"
cat >"$H/config/lmtp.ini" <<INI
[main]
host=127.0.0.1
port=$DV_LMTP
INI
# The pipe route: one `coffer deliver NAME` per recipient, message on stdin.
# Exit 0 → OK; anything else → DENYSOFT (the client retries), as Postfix's
# mailbox_command treats EX_TEMPFAIL.
cat >"$H/plugins/coffer_deliver.js" <<'JS'
'use strict'
const { spawn } = require('child_process')

exports.hook_queue = function (next, connection) {
    const txn = connection.transaction
    const rcpts = txn.rcpt_to.map((r) => (typeof r.address === 'function' ? r.address() : r.address))
    const one = (i) => {
        if (i === rcpts.length) return next(OK, 'delivered to Coffer')
        const p = spawn(process.env.COFFER_BIN, ['deliver', rcpts[i]], {
            stdio: ['pipe', 'ignore', 'pipe'],
        })
        let err = ''
        p.stderr.on('data', (d) => (err += d))
        p.stdin.on('error', () => {})
        p.on('close', (code) => {
            if (code !== 0) {
                connection.logerror(this, `coffer deliver ${rcpts[i]}: exit ${code}: ${err}`)
                return next(DENYSOFT, 'coffer deliver failed')
            }
            one(i + 1)
        })
        txn.message_stream.pipe(p.stdin, { line_endings: '\n' })
    }
    one(0)
}
JS

harakad=
haraka_start() { # PLUGINS...
	printf '%s\n' rcpt_to.in_host_list "$@" >"$H/config/plugins"
	COFFER_STORE=$S COFFER_KEY_FILE=$K "$HARAKA" -c "$H" >>"$T_TMP/haraka.log" 2>&1 &
	harakad=$!
	wait_port "$HPORT" 100
}
haraka_stop() {
	[ -n "$harakad" ] && kill "$harakad" 2>/dev/null && wait "$harakad" 2>/dev/null
	harakad=
	return 0
}
trap 'haraka_stop; mnt_dovecot_stop; mnt_cleanup' EXIT

send() { # SUBJECT
	python3 - "$1" "$T_TMP/sent.$1" <<'PY'
import os, smtplib, sys
subj = sys.argv[1]
msg = ("From: Sender <sender@example.net>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@example.net>\r\n"
       "\r\nHello over SMTP (%s).\r\n.leading dot line\r\n" % (os.environ["A"], subj, subj, subj)).encode()
s = smtplib.SMTP("127.0.0.1", int(os.environ["HPORT"]), timeout=30)
s.ehlo("client.example.net")
refused = s.sendmail("sender@example.net", [os.environ["A"]], msg)
s.quit()
open(sys.argv[2], "wb").write(msg)
sys.exit(1 if refused else 0)
PY
}

# imap_body SUBJECT: wait (up to 30 s) for the message over IMAP; prints
# its body as IMAP returns it
imap_check() { # SUBJECT SENTFILE
	python3 - "$1" "$2" <<'PY'
import imaplib, os, sys, time
subj, sent = sys.argv[1], open(sys.argv[2], "rb").read()
for _ in range(300):
    m = imaplib.IMAP4("127.0.0.1", int(os.environ["DV_IMAP"]))
    m.login(os.environ["A"], os.environ["PASS"])
    m.select("INBOX")
    typ, d = m.search(None, "SUBJECT", subj)
    ids = d[0].split()
    if ids:
        typ, f = m.fetch(ids[0], "(BODY.PEEK[])")
        body = f[0][1]
        m.logout()
        # the sent message, after the headers Haraka adds in front
        ok = len(ids) == 1 and body.endswith(sent.split(b"\r\n\r\n", 1)[1]) and \
            (b"Subject: " + subj.encode()) in body and b"Received:" in body
        if not ok:
            print("# got:", repr(body[:600]))
        sys.exit(0 if ok else 1)
    m.logout()
    time.sleep(0.1)
print("# not found over IMAP:", subj)
sys.exit(1)
PY
}

# 1. Haraka → LMTP → Dovecot → the mount
haraka_start queue/lmtp; ok $? "Haraka listens on 127.0.0.1:$HPORT (queue/lmtp to Dovecot's LMTP)"
send via-haraka-lmtp; ok $? "smtplib: Haraka accepts a message"
imap_check via-haraka-lmtp "$T_TMP/sent.via-haraka-lmtp"; ok $? "it arrives through LMTP and reads back over IMAP"
haraka_stop

# 2. Haraka → coffer deliver
haraka_start coffer_deliver; ok $? "Haraka restarted with the coffer deliver queue plugin"
send via-haraka-pipe; ok $? "smtplib: Haraka accepts a message"
imap_check via-haraka-pipe "$T_TMP/sent.via-haraka-pipe"; ok $? "it arrives through coffer deliver and reads back over IMAP"
n=$("$COFFER_BIN" logins "$A" --deliveries --json | grep -c '"delivery"')
[ "$n" = 2 ]; ok $? "two delivery events: Dovecot's LMTP write into new/ and coffer deliver ($n)"
# a refused delivery is a temporary failure for the client, never a loss
"$COFFER_BIN" account terminate "$A" >/dev/null
python3 - <<'PY'
import os, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(os.environ["HPORT"]), timeout=30)
try:
    s.sendmail("sender@example.net", [os.environ["A"]], b"From: x@example.net\r\nSubject: refused\r\n\r\nx\r\n")
    sys.exit(1)
except smtplib.SMTPDataError as e:
    sys.exit(0 if 400 <= e.smtp_code < 500 else 1)
PY
[ $? = 0 ] && grep -q "coffer deliver $A: exit [1-9]" "$T_TMP/haraka.log"
ok $? "a delivery coffer deliver refuses (terminated account) is a 4xx for the SMTP client"
"$COFFER_BIN" account reactivate "$A" >/dev/null
haraka_stop
if grep -qi "crit\|emerg" "$T_TMP/haraka.log"; then diag "haraka log: $(grep -i 'crit\|emerg' "$T_TMP/haraka.log" | tail -n 5)"; fi
canary_free "$S" "via-haraka-lmtp" "via-haraka-pipe" "Hello over SMTP"; ok $? "no plaintext of the messages under the store"
mnt_dovecot_log_check; ok $? "no panic or fatal in Dovecot's log"
mnt_dovecot_stop
mnt_stop; ok $? "umount"
done_testing
