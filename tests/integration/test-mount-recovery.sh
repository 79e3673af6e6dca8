#!/bin/bash
# Disaster recovery with Dovecot (issue 5): Dovecot serves an account on
# `coffer mount` (APPEND, flags, keywords, folders, subscriptions, an
# expunge); its UIDs, UIDVALIDITY and UIDNEXT are recorded over IMAP; then
# umount, `coffer snapshot create --target T`, the store directory is
# deleted, `coffer restore --all --from T` rebuilds a new store with only the
# target and the key file, and the new store is mounted. Over IMAP everything
# is there with the same UIDs and UIDVALIDITY, and Dovecot did not need to
# re-assign UIDs: its dovecot-uidlist came back byte for byte, and the next
# APPEND gets the old UIDNEXT.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount-lib.sh"
mnt_require dovecot

VM=coffer-mnt-a
A=dave@example.org
PASS=dr-pw
mnt_account "$A"
"$COFFER_BIN" deliver "$A" <<<"$(printf 'From: x@example.org\nSubject: delivered-before\n\nbody\n')"
ok $? "a delivery before the mount"
mnt_dovecot_mount "$VM" "$A" "$PASS"
export A PASS

# state.py record|check FILE: the account as IMAP shows it
cat >"$T_TMP/state.py" <<'PY'
import imaplib, json, os, re, sys
mode, path = sys.argv[1], sys.argv[2]
m = imaplib.IMAP4("127.0.0.1", int(os.environ["DV_IMAP"]))
m.login(os.environ["A"], os.environ["PASS"])
def msg(subj):
    return ("From: Bob <bob@example.org>\r\nTo: dave@example.org\r\nSubject: %s\r\n"
            "Message-ID: <%s@t>\r\n\r\nbody of %s\r\n" % (subj, subj, subj)).encode()
if mode == "record":
    delim = m.list()[1][0].split(b'"')[1].decode()
    for f in ["Projects", "Projects%s2024" % delim, "Archive"]:
        assert m.create(f)[0] == "OK", f
    assert m.subscribe("Projects")[0] == "OK"
    for i in range(8):
        flags = [None, r"(\Seen)", r"(\Seen \Flagged)", r"(\Answered)"][i % 4]
        assert m.append("INBOX", flags, imaplib.Time2Internaldate(1600000000 + i * 3600), msg("inbox-%d" % i))[0] == "OK"
    for i in range(3):
        assert m.append("Projects%s2024" % delim, r"(\Seen)", None, msg("proj-%d" % i))[0] == "OK"
    m.select("INBOX")
    assert m.store("2", "+FLAGS", "(Important $Label1)")[0] == "OK"
    assert m.store("3", "+FLAGS", r"(\Deleted)")[0] == "OK"
    assert m.expunge()[0] == "OK"
    assert m.copy("4:5", "Archive")[0] == "OK"
state = {}
typ, d = m.lsub()
state["lsub"] = sorted(x.decode() for x in d if x)
typ, d = m.list()
for line in d:
    name = line.decode().rsplit(" ", 1)[1].strip('"')
    typ, x = m.select('"%s"' % name)
    assert typ == "OK", (name, x)
    uv = m.response("UIDVALIDITY")[1][0].decode()
    un = m.response("UIDNEXT")[1][0].decode()
    rows = []
    if int(x[0]) > 0:
        typ, f = m.fetch("1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        for it in f:
            if isinstance(it, tuple):
                meta = re.sub(rb"BODY\[.*", b"", it[0]).decode()
                meta = re.sub(r"^\d+ ", "", meta)
                fl = re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()
                fl = " ".join(sorted(f for f in fl if f != r"\Recent"))
                meta = re.sub(r"FLAGS \([^)]*\)", lambda _: "FLAGS (%s)" % fl, meta).strip()
                rows.append([meta, it[1].decode().strip()])
    state[name] = {"uidvalidity": uv, "uidnext": un, "messages": rows}
m.logout()
if mode == "record":
    json.dump(state, open(path, "w"), indent=1, sort_keys=True)
    print("# recorded %d folders, %d messages" % (len(state) - 1, sum(len(v["messages"]) for k, v in state.items() if k != "lsub")))
else:
    old = json.load(open(path))
    bad = [k for k in old if old[k] != state.get(k)] + [k for k in state if k not in old]
    for k in bad[:3]:
        print("# differs:", k, json.dumps(old.get(k))[:400], "->", json.dumps(state.get(k))[:400])
    sys.exit(1 if bad else 0)
PY
python3 "$T_TMP/state.py" record "$T_TMP/state.json"; ok $? "Dovecot served the account: folders, APPEND, flags, keywords, expunge, COPY, subscriptions"
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert len(s["INBOX"]["messages"]) == 8 and "Important" in json.dumps(s["INBOX"]) and len(s["Archive"]["messages"]) == 2, s
' "$T_TMP/state.json"; ok $? "the recorded state has what was made"
M=$MNT/$A
cp "$M/dovecot-uidlist" "$T_TMP/uidlist.before" && cp "$M/.Projects.2024/dovecot-uidlist" "$T_TMP/uidlist2.before"
ok $? "Dovecot's uidlists are on the mount"
mnt_dovecot_stop
mnt_stop; ok $? "umount"
for i in $(seq 50); do [ -z "$(mnt_pid)" ] && break; sleep 0.1; done

T=$T_TMP/target
"$COFFER_BIN" --store "$S" --key-file "$K" snapshot create --target "$T" >"$T_TMP/snap.out" 2>&1; ok $? "snapshot create --target"
OLD=$S
rm -rf "$OLD"; [ ! -e "$OLD" ]; ok $? "the store directory is deleted"
NEW=$T_TMP/new/store
"$COFFER_BIN" --store "$NEW" --key-file "$K" restore --all --from "$T" >"$T_TMP/restore.out" 2>&1; rrc=$?
[ $rrc = 0 ]; ok $? "restore --all --from the target into a new store (rc $rrc)"
[ $rrc = 0 ] || diag "$(tail -n 5 "$T_TMP/restore.out")"
S=$NEW
export COFFER_STORE=$NEW
mnt_start --allow-user "$VM"; ok $? "mount the new store"
cmp -s "$M/dovecot-uidlist" "$T_TMP/uidlist.before" && cmp -s "$M/.Projects.2024/dovecot-uidlist" "$T_TMP/uidlist2.before"
ok $? "dovecot-uidlist (INBOX and a folder) came back byte for byte"
mnt_dovecot_run; ok $? "dovecot starts on the restored mount"
python3 "$T_TMP/state.py" check "$T_TMP/state.json"; ok $? "over IMAP: same folders, subscriptions, UIDVALIDITY, UIDNEXT, UIDs, flags, keywords, dates, sizes"
cmp -s "$M/dovecot-uidlist" "$T_TMP/uidlist.before"; ok $? "Dovecot did not rewrite dovecot-uidlist (no UID re-assignment)"
uidnext=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["INBOX"]["uidnext"])' "$T_TMP/state.json")
python3 - "$uidnext" <<'PY'
import imaplib, os, sys
m = imaplib.IMAP4("127.0.0.1", int(os.environ["DV_IMAP"]))
m.login(os.environ["A"], os.environ["PASS"])
typ, d = m.append("INBOX", None, None, b"From: z@example.org\r\nSubject: after-restore\r\n\r\nx\r\n")
uid = d[0].decode().split("APPENDUID")[1].split()[1].rstrip("]")
m.logout()
sys.exit(0 if uid == sys.argv[1] else 1)
PY
ok $? "the next APPEND gets the old UIDNEXT ($uidnext)"
! grep -qi "uidvalidity changed\|uidlist.*corrupt\|Expunged message reappeared\|duplicate uid" "$DV/dovecot.log"
ok $? "Dovecot logged no UIDVALIDITY change or uidlist rebuild"
mnt_dovecot_log_check; ok $? "no panic or fatal in Dovecot's log"
"$COFFER_BIN" --store "$NEW" --key-file "$K" verify >"$T_TMP/verify.out" 2>&1; vrc=$?
[ $vrc = 0 ]; ok $? "coffer verify passes on the restored store (mounted)"
[ $vrc = 0 ] || diag "$(head -n 20 "$T_TMP/verify.out")"
mnt_dovecot_stop
mnt_stop; ok $? "umount"
done_testing
