#!/bin/bash
# The real thing: Dovecot (Debian's dovecot-imapd, -pop3d, -lmtpd) with
# mail_location = maildir:MOUNTPOINT/%u on `coffer mount`, started by this
# test on loopback with default Maildir settings. IMAP (imaplib), POP3
# (poplib), LMTP (smtplib), a qmail-style writer, no plaintext on disk, and
# kill -9 of the mount daemon during an APPEND storm, then a simulated
# reboot (the index rolled back to the last sync point).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount-lib.sh"
mnt_require dovecot

VM=coffer-mnt-a
A=alice@example.org
PASS=secret-pw
CANARY=CanaryDovecotQuux9931
mnt_account "$A"
mnt_dovecot_mount "$VM" "$A" "$PASS"

export A PASS CANARY MNT T_N
T_N0=$T_N
python3 - "$T_TMP/state.json" <<'PY' | tee "$T_TMP/imap.tap"
import imaplib, json, os, re, sys, time
A, P, C = os.environ["A"], os.environ["PASS"], os.environ["CANARY"]
n = int(os.environ["T_N"])
def t(cond, desc, info=None):
    global n
    n += 1
    print(("ok" if cond else "not ok"), n, "-", desc, flush=True)
    if not cond and info is not None:
        print("# got:", repr(info)[:600], flush=True)
def imap():
    m = imaplib.IMAP4("127.0.0.1", int(os.environ["DV_IMAP"]))
    m.login(A, P)
    return m
def msg(subj, body="body\r\n"):
    return ("From: Bob <bob@example.org>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@t>\r\n\r\n%s" % (A, subj, subj.replace(" ", "."), body)).encode()

m = imap()
typ, data = m.list()
t(typ == "OK", "LIST")
delim = re.search(rb'\("?([^" ]*)"?\)', data[0]) and data[0].split(b'"')[1].decode() or "."
r1, r2 = m.create("Work"), m.create("Work%sSub" % delim)
t(r1[0] == "OK" and r2[0] == "OK", "CREATE nested folders", (r1, r2, delim))
r = m.create('"Kw %s"' % C)
t(r[0] == "OK", "CREATE a folder with a canary name", r)
m1 = msg("hello " + C, "canary body " + C + "\r\n")
r = m.append("INBOX", r"(\Seen \Flagged)", imaplib.Time2Internaldate(1577872800), m1)
t(r[0] == "OK", "APPEND with flags and INTERNALDATE")
for i in range(5):
    m.append("INBOX", None, None, msg("bulk %d" % i))
typ, d = m.select("INBOX")
t(typ == "OK" and int(d[0]) == 6, "SELECT INBOX: 6 messages")
uidvalidity = m.response("UIDVALIDITY")[1][0]
typ, d = m.fetch("1", "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[])")
meta = d[0][0].decode()
body = [x for x in d if isinstance(x, tuple)]
t(b"hello " + C.encode() in body[0][1] and body[1][1] == m1, "FETCH headers and BODY[] byte for byte")
t("\\Seen" in meta and "\\Flagged" in meta, "FETCH FLAGS")
t("RFC822.SIZE %d" % len(m1) in meta, "FETCH RFC822.SIZE")
t('01-Jan-2020 10:00:00 +0000' in meta, "INTERNALDATE kept (%s)" % meta[:160])
t(m.store("1", "+FLAGS", r"(\Answered KwCanary" + C[-4:] + ")")[0] == "OK", "STORE flags and a keyword")
typ, d = m.fetch("1", "(FLAGS)")
t(b"\\Answered" in d[0] and b"KwCanary" in d[0], "flags and keyword read back")
t(m.copy("2", "Work")[0] == "OK", "COPY")
typ, d = m._simple_command("MOVE", "3", "Work%sSub" % delim)
t(typ == "OK", "MOVE", d)
m.select("INBOX")
m.store("2", "+FLAGS", r"(\Deleted)")
typ, d = m.expunge()
t(typ == "OK", "EXPUNGE")
typ, d = m.search(None, "SUBJECT", "hello")
t(typ == "OK" and d[0].split() == [b"1"], "SEARCH SUBJECT")
typ, d = m.search(None, "BODY", "canary")
t(typ == "OK" and d[0].split() == [b"1"], "SEARCH BODY")
m.select("Work")
typ, d = m.search(None, "ALL")
t(len(d[0].split()) == 1, "the copy is in Work")
m.select("Work%sSub" % delim)
typ, d = m.search(None, "ALL")
t(len(d[0].split()) == 1, "the moved message is in Work.Sub")
m.select("INBOX")
t(m.rename("Work", "Projects")[0] == "OK", "RENAME a folder with a child")
typ, d = m.list()
names = b" ".join(d).decode()
t("Projects" in names and ("Projects%sSub" % delim) in names and "Work" not in names, "children renamed too")
m.create("Trash%sOld" % delim)
t(m.delete("Trash%sOld" % delim)[0] == "OK", "DELETE a nested folder")
t(m.delete("Projects%sSub" % delim)[0] == "OK" and m.delete("Projects")[0] == "OK", "DELETE a folder with messages")
typ, d = m.list()
t(b"Projects" not in b" ".join(d), "deleted folders are gone")
m.select("INBOX")
typ, d = m.fetch("1:*", "(UID FLAGS)")
state = {"uidvalidity": uidvalidity.decode(), "view": [x.decode() for x in d]}
m.logout()
m = imap()
typ, d = m.select("INBOX")
uv2 = m.response("UIDVALIDITY")[1][0]
typ, d = m.fetch("1:*", "(UID FLAGS)")
t(uv2.decode() == state["uidvalidity"] and [x.decode() for x in d] == state["view"], "after logout/login: same UIDVALIDITY, UIDs and flags")
m.logout()
json.dump(state, open(sys.argv[1], "w"))
print("# imap done", n)
open(sys.argv[1] + ".n", "w").write(str(n))
PY
T_N=$((T_N0 + $(grep -c "^\(not \)\?ok" "$T_TMP/imap.tap")))
T_FAILED=$((T_FAILED + $(grep -c "^not ok" "$T_TMP/imap.tap")))

# coffer ls agrees with the IMAP view
n_imap=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["view"]))' "$T_TMP/state.json" 2>/dev/null)
n_ls=$("$COFFER_BIN" ls "$A" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ -n "$n_imap" ] && [ "$n_imap" = "$n_ls" ]; ok $? "coffer ls and IMAP agree on INBOX ($n_imap / $n_ls)"

# POP3
python3 - <<'PY' >"$T_TMP/pop.out"
import poplib, os
A, P = os.environ["A"], os.environ["PASS"]
def pop():
    p = poplib.POP3("127.0.0.1", int(os.environ["DV_POP3"]))
    p.user(A); p.pass_(P)
    return p
p = pop()
cnt, size = p.stat()
lst = p.list()[1]
u1 = p.uidl()[1]
body = b"\n".join(p.retr(1)[1])
print("stat", cnt, size, len(lst) == cnt)
print("retr", b"Subject:" in body)
p.dele(cnt)
p.quit()
p = pop()
u2 = p.uidl()[1]
print("uidl", u2 == u1[:-1], len(u2) == cnt - 1)
p.quit()
PY
grep -q "^stat [1-9][0-9]* [1-9][0-9]* True" "$T_TMP/pop.out"; ok $? "POP3 STAT and LIST"
grep -q "^retr True" "$T_TMP/pop.out"; ok $? "POP3 RETR"
grep -q "^uidl True True" "$T_TMP/pop.out"; ok $? "POP3 DELE; UIDLs stable across sessions"

# LMTP delivery into the mount
python3 - <<'PY'
import smtplib, os
s = smtplib.LMTP("127.0.0.1", int(os.environ["DV_LMTP"]))
s.sendmail("bob@example.org", [os.environ["A"]], b"From: bob@example.org\r\nTo: alice@example.org\r\nSubject: via lmtp\r\n\r\nhi\r\n")
s.quit()
PY
ok $? "LMTP accepts a message"
"$COFFER_BIN" ls "$A" | grep -q "via lmtp"; ok $? "the LMTP message is in the store"

# qmail-style writer; Dovecot sees the message
M=$MNT/$A
setpriv --reuid="$VM" --regid="$(id -g $VM)" --clear-groups sh -c "printf 'From: q@x\nSubject: via qmail\n\nq\n' >'$M/tmp/1700000099.Q9.host' && ln '$M/tmp/1700000099.Q9.host' '$M/new/1700000099.Q9.host' && rm '$M/tmp/1700000099.Q9.host'"
ok $? "qmail-style link+unlink as the mail user"
python3 - <<'PY'
import imaplib, os
m = imaplib.IMAP4("127.0.0.1", int(os.environ["DV_IMAP"])); m.login(os.environ["A"], os.environ["PASS"])
m.select("INBOX")
typ, d = m.search(None, "SUBJECT", '"via qmail"')
assert typ == "OK" and len(d[0].split()) == 1, d
typ, d = m.search(None, "SUBJECT", '"via lmtp"')
assert typ == "OK" and len(d[0].split()) == 1, d
m.logout()
PY
ok $? "IMAP sees the qmail and LMTP deliveries"
"$COFFER_BIN" deliver "$A" <<<"$(printf 'From: c@x\nSubject: via coffer deliver\n\nx')"
python3 - <<'PY'
import imaplib, os
m = imaplib.IMAP4("127.0.0.1", int(os.environ["DV_IMAP"])); m.login(os.environ["A"], os.environ["PASS"])
m.select("INBOX")
typ, d = m.search(None, "SUBJECT", '"via coffer deliver"')
assert typ == "OK" and len(d[0].split()) == 1, d
m.logout()
PY
ok $? "IMAP sees a message delivered by coffer deliver while mounted"

# kill -9 the mount daemon during an APPEND storm: every OK'd APPEND survives
python3 - "$T_TMP/acked" <<'PY' &
import imaplib, os, sys, time
out = open(sys.argv[1], "w")
try:
    m = imaplib.IMAP4("127.0.0.1", int(os.environ["DV_IMAP"])); m.login(os.environ["A"], os.environ["PASS"])
    for i in range(2000):
        r = m.append("INBOX", None, None, ("From: s@x\r\nSubject: storm %d\r\nMessage-ID: <storm%d@t>\r\n\r\nx\r\n" % (i, i)).encode())
        if r[0] != "OK":
            break
        out.write("storm %d\n" % i); out.flush()
except Exception:
    pass
PY
storm=$!
sleep 2
mnt_kill9
wait $storm
acked=$(wc -l <"$T_TMP/acked")
[ "$acked" -gt 0 ]; ok $? "APPENDs acknowledged before kill -9: $acked"
# ... and then the system went down: a new boot id (COFFER_BOOT_ID, a testing
# aid) makes the first opener roll the index back to the daemon's last sync
# point (engine/rollback.h). Dovecot fsyncs the directory before it answers
# an APPEND, so every OK'd one is in it.
[ -s "$S/index/rollback" ]; ok $? "the killed daemon left its rollback point"
COFFER_BOOT_ID="after-a-power-loss" "$COFFER_BIN" ls "$A" >"$T_TMP/ls.after"
ok $? "the first command after the simulated reboot opens the store"
[ ! -e "$S/index/rollback" ]; ok $? "and has rolled the index back to the point"
diag "messages after the rollback: $(grep -c . "$T_TMP/ls.after")"
"$COFFER_BIN" verify >"$T_TMP/verify.rb" 2>&1; ok $? "coffer verify passes on the rolled-back index"
mnt_start --allow-user "$VM"; ok $? "remount after kill -9 and the reboot"
missing=0
while read -r line; do grep -qF "$line	" "$T_TMP/ls.after" || grep -qF "$line"$'\t' "$T_TMP/ls.after" || { grep -qF "$line" "$T_TMP/ls.after" || missing=$((missing + 1)); }; done <"$T_TMP/acked"
[ "$missing" = 0 ]; ok $? "every acknowledged APPEND is still there (missing: $missing)"
python3 - <<'PY'
import imaplib, os
m = imaplib.IMAP4("127.0.0.1", int(os.environ["DV_IMAP"])); m.login(os.environ["A"], os.environ["PASS"])
typ, d = m.select("INBOX")
assert typ == "OK", d
typ, d = m.search(None, "SUBJECT", "hello")
assert len(d[0].split()) == 1, d
m.logout()
PY
ok $? "Dovecot works on the remounted store"

# no plaintext on disk, Dovecot's index and cache included
canary_free "$S" "$CANARY" "KwCanary" "via lmtp" "dovecot-uidlist" "storm 1"; ok $? "no canary (body, folder, keyword, subject) in plaintext under the store"

# Access: a user other than the mail user gets EACCES
mnt_user coffer-mnt-b
out=$(setpriv --reuid="$(id -u coffer-mnt-b)" --regid="$(id -g coffer-mnt-b)" --clear-groups ls "$M" 2>&1)
echo "$out" | grep -q "Permission denied"; ok $? "another local user gets EACCES ($out)"
mnt_dovecot_log_check; ok $? "no panic or fatal in Dovecot's log"
mnt_dovecot_stop
mnt_stop; ok $? "umount"
done_testing
