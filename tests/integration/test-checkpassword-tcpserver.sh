#!/bin/bash
# The checkpassword interface as qmail uses it: tcpserver (Debian's
# ucspi-tcp) accepts POP3 connections and runs a faithful stand-in for
# qmail-popup (qmail-pop3d is not in Debian 12): it reads USER and PASS,
# writes "user\0password\0<timestamp>\0" to a pipe on fd 3 of
# `coffer checkpassword`, which on success runs the stand-in for
# qmail-pop3d with $USER set and the working directory at $HOME. Like
# qmail-popup, it answers "-ERR authorization failed" on exit 1 and
# "-ERR temporary failure" otherwise. Checks logins, refusals, the IP and
# service recorded, and the temporary-failure path.
. "$(dirname "$0")/lib.sh"
if ! command -v tcpserver >/dev/null 2>&1; then
	echo "1..0 # SKIP tcpserver missing (Debian: ucspi-tcp)"
	exit 77
fi
command -v python3 >/dev/null 2>&1 || { echo "1..0 # SKIP python3 missing"; exit 77; }

A=carol@example.org
PW=Canary-Tcp-4411
new_store s || { fail "store"; done_testing; }
c account add "$A"; expect_success && pass "account" || fail "account"
printf '%s\n' "$PW" | "$COFFER_BIN" --store "$S" --key-file "$K" passwd "$A"; ok $? "passwd"
mkdir -p "$T_TMP/home/$A"

# qmail-popup stand-in (fd 0/1 are the TCP connection, from tcpserver).
cat >"$T_TMP/popup.py" <<'PY'
import os, sys, time
inp, out = sys.stdin.buffer, sys.stdout.buffer
def say(s):
    out.write(s.encode() + b"\r\n"); out.flush()
say("+OK <%d.%d@popup>" % (os.getpid(), int(time.time())))
user = None
while True:
    line = inp.readline()
    if not line:
        sys.exit(0)
    cmd, _, arg = line.rstrip(b"\r\n").partition(b" ")
    cmd = cmd.upper()
    if cmd == b"QUIT":
        say("+OK"); sys.exit(0)
    if cmd == b"USER":
        user = arg; say("+OK"); continue
    if cmd == b"PASS" and user is not None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(w)
            if r != 3:
                os.dup2(r, 3)
            os.set_inheritable(3, True)
            os.execvp(sys.argv[1], sys.argv[1:])
        os.close(r)
        os.write(w, user + b"\0" + arg + b"\0" + b"<%d.%d@popup>\0" % (pid, int(time.time())))
        os.close(w)
        _, st = os.waitpid(pid, 0)
        code = os.WEXITSTATUS(st) if os.WIFEXITED(st) else 111
        say("-ERR authorization failed" if code == 1 else "-ERR temporary failure (#%d)" % code)
        user = None
        continue
    say("-ERR unknown command")
PY
# qmail-pop3d stand-in: greets with what checkpassword gave it.
cat >"$T_TMP/pop3d.sh" <<'SH'
#!/bin/sh
printf '+OK logged in as %s in %s with %s\r\n' "$USER" "$(pwd)" "$1"
read -r line
printf '+OK bye\r\n'
SH
chmod 0755 "$T_TMP/pop3d.sh"

PORT=$(free_port)
tcpserver -q -H -R -l localhost 127.0.0.1 "$PORT" \
	python3 "$T_TMP/popup.py" "$COFFER_BIN" --store "$S" --key-file "$K" checkpassword \
	--service pop3 --home "$T_TMP/home/%u" "$T_TMP/pop3d.sh" Maildir 2>"$T_TMP/tcpserver.err" &
TS=$!
trap 'kill $TS 2>/dev/null; t_cleanup' EXIT
wait_port "$PORT"

# pop USER: password on stdin; prints the server's answer to PASS.
pop() {
	python3 -c '
import socket, sys
pw = sys.stdin.readline().rstrip("\n")
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
f = s.makefile("rb")
f.readline()
s.sendall(b"USER " + sys.argv[1].encode() + b"\r\n"); f.readline()
s.sendall(b"PASS " + pw.encode() + b"\r\n")
print(f.readline().decode().strip())
s.sendall(b"QUIT\r\n")
' "$1" "$PORT"
}

out=$(pop "$A" <<<"$PW")
[[ $out == "+OK logged in as $A in $T_TMP/home/$A with Maildir" ]]
ok $? "right password: qmail-pop3d runs with USER, HOME as cwd, its args ($out)"
out=$(pop "CAROL@example.org" <<<"$PW")
[[ $out == "+OK logged in as $A "* ]]; ok $? "USER is the canonical name"
out=$(pop "$A" <<<"x$PW")
[ "$out" = "-ERR authorization failed" ]; ok $? "wrong password: exit 1 → authorization failed"
c apppass add "$A" mua
APP=$(cat "$R_OUT")
out=$(pop "$A" <<<"$APP")
[[ $out == "+OK logged in as $A"* ]]; ok $? "application password logs in"
out=$(pop "dave@example.org" <<<"$PW")
[ "$out" = "-ERR authorization failed" ]; ok $? "unknown account refused"
c account terminate "$A"
out=$(pop "$A" <<<"$PW")
[ "$out" = "-ERR authorization failed" ]; ok $? "terminated account refused"
c account reactivate "$A"

c logins "$A" --json
python3 - "$R_OUT" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
want = [("failure", None, "account-terminated"), ("success", "mua", None),
        ("failure", None, "bad-password"), ("success", None, None), ("success", None, None)]
got = [(e["result"], e["app_password"], e["reason"]) for e in g]
ok = got == want and all(e["service"] == "pop3" and e["ip"] == "127.0.0.1" for e in g)
if not ok:
    print("# got", g)
sys.exit(0 if ok else 1)
PY
ok $? "logins: the five attempts on carol, service pop3, IP 127.0.0.1 from tcpserver"

# Temporary failure: the store becomes unreadable.
chmod 0000 "$K"
if [ "$(id -u)" = 0 ]; then
	# root reads anything: move the key file away instead
	mv "$K" "$K.away"
fi
out=$(pop "$A" <<<"$PW")
[[ $out == "-ERR temporary failure (#111)" ]]; ok $? "key file gone: exit 111 → temporary failure ($out)"
[ -f "$K.away" ] && mv "$K.away" "$K"
chmod 0600 "$K"
out=$(pop "$A" <<<"$PW")
[[ $out == "+OK logged in"* ]]; ok $? "back to normal"
if grep -qaF -- "$PW" "$T_TMP/tcpserver.err"; then fail "password in stderr"; else pass "no password in stderr"; fi
done_testing
