#!/bin/bash
# Concurrency on the mount (issue 4): 8 IMAP clients (Python imaplib, one
# process each) on one account APPEND, STORE flags and EXPUNGE at the same
# time, while `coffer deliver` delivers into the same INBOX in a loop, all
# through Dovecot on `coffer mount`. Afterwards:
#   - no message is lost or duplicated: INBOX holds exactly every APPEND that
#     got OK and every delivery that exited 0, minus the expunges made;
#   - the IMAP view and `coffer ls --json` agree (messages and flags);
#   - `coffer verify` passes.
# COFFER_CONCURRENCY_SECONDS sets the duration (default 60; CI may use 20),
# COFFER_CONCURRENCY_CLIENTS the number of clients (default and minimum 8).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount-lib.sh"
mnt_require dovecot

SECS=${COFFER_CONCURRENCY_SECONDS:-60}
CLIENTS=${COFFER_CONCURRENCY_CLIENTS:-8}
[ "$CLIENTS" -ge 8 ] || CLIENTS=8
VM=coffer-mnt-a
A=carol@example.org
PASS=conc-pw
mnt_account "$A"
mnt_dovecot_mount "$VM" "$A" "$PASS"

export A PASS SECS CLIENTS
W=$T_TMP/work
mkdir -p "$W"

# coffer deliver in a loop for the whole run; each delivery that exits 0 is
# recorded (its subject is unique)
(
	end=$(($(date +%s) + SECS))
	i=0
	while [ "$(date +%s)" -lt "$end" ]; do
		i=$((i + 1))
		if printf 'From: d@example.org\nTo: %s\nSubject: deliver-%d\nMessage-ID: <deliver-%d@t>\n\nbody %d\n' \
			"$A" "$i" "$i" "$i" | "$COFFER_BIN" deliver "$A" 2>>"$W/deliver.err"; then
			echo "deliver-$i" >>"$W/delivered"
		fi
		sleep 0.05
	done
) &
dloop=$!

python3 - "$W" <<'PY'
import imaplib, multiprocessing, os, random, sys, time
W = sys.argv[1]
A, P = os.environ["A"], os.environ["PASS"]
SECS, N = int(os.environ["SECS"]), int(os.environ["CLIENTS"])
PORT = int(os.environ["DV_IMAP"])
FLAGS = [r"\Seen", r"\Flagged", r"\Answered", r"\Draft"]

def client(k):
    random.seed(k)
    appended = open("%s/appended.%d" % (W, k), "w")
    expunged = open("%s/expunged.%d" % (W, k), "w")
    errors = open("%s/errors.%d" % (W, k), "w")
    mine = []
    end = time.time() + SECS
    i = 0
    m = imaplib.IMAP4("127.0.0.1", PORT)
    m.login(A, P)
    m.select("INBOX")
    while time.time() < end:
        i += 1
        subj = "append-%d-%d" % (k, i)
        body = ("From: c%d@example.org\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@t>\r\n\r\n%s\r\n"
                % (k, A, subj, subj, "x" * random.randint(10, 3000))).encode()
        flags = "(%s)" % " ".join(random.sample(FLAGS, random.randint(0, 2)))
        try:
            typ, _ = m.append("INBOX", flags, None, body)
        except Exception as e:
            errors.write("append %s: %r\n" % (subj, e)); errors.flush()
            typ = "NO"
        if typ == "OK":
            appended.write(subj + "\n"); appended.flush()
            mine.append(subj)
        r = random.random()
        try:
            if mine and r < 0.5:
                # STORE: set random flags on one of this client's messages
                s = random.choice(mine)
                typ, d = m.uid("SEARCH", None, "HEADER", "Subject", s)
                uids = d[0].split() if typ == "OK" and d[0] else []
                if len(uids) == 1:
                    op = random.choice(["+FLAGS", "-FLAGS", "FLAGS"])
                    m.uid("STORE", uids[0], op, "(%s)" % random.choice(FLAGS))
            elif mine and r < 0.75:
                # EXPUNGE one of this client's messages (UID EXPUNGE: only it)
                s = mine.pop(random.randrange(len(mine)))
                typ, d = m.uid("SEARCH", None, "HEADER", "Subject", s)
                uids = d[0].split() if typ == "OK" and d[0] else []
                if len(uids) == 1:
                    m.uid("STORE", uids[0], "+FLAGS", r"(\Deleted)")
                    typ, d = m.uid("EXPUNGE", uids[0])
                    if typ == "OK":
                        expunged.write(s + "\n"); expunged.flush()
                    else:
                        errors.write("expunge %s: %r\n" % (s, d)); errors.flush()
                else:
                    errors.write("search %s: %r\n" % (s, d)); errors.flush()
            elif r < 0.85:
                m.noop()
        except Exception as e:
            errors.write("op: %r\n" % (e,)); errors.flush()
            try:
                m.logout()
            except Exception:
                pass
            m = imaplib.IMAP4("127.0.0.1", PORT)
            m.login(A, P)
            m.select("INBOX")
    m.logout()

ps = [multiprocessing.Process(target=client, args=(k,)) for k in range(N)]
for p in ps:
    p.start()
for p in ps:
    p.join()
PY
ok $? "$CLIENTS IMAP clients ran for $SECS s"
wait $dloop
cat "$W"/appended.* >"$W/appended" 2>/dev/null
cat "$W"/expunged.* >"$W/expunged" 2>/dev/null
cat "$W"/errors.* >"$W/errors" 2>/dev/null
touch "$W/delivered"
na=$(wc -l <"$W/appended") nd=$(wc -l <"$W/delivered") nx=$(wc -l <"$W/expunged")
diag "appended $na, delivered $nd, expunged $nx, client errors $(wc -l <"$W/errors")"
[ -s "$W/errors" ] && diag "client errors: $(head -n 5 "$W/errors")"
[ "$na" -ge $((CLIENTS * 5)) ] && [ "$nd" -ge 5 ] && [ "$nx" -ge "$CLIENTS" ]
ok $? "work was done: $na APPENDs, $nd deliveries, $nx expunges"

# the IMAP view: subject and flags of every message in INBOX
python3 - "$W/imap.view" <<'PY'
import imaplib, os, re, sys
m = imaplib.IMAP4("127.0.0.1", int(os.environ["DV_IMAP"]))
m.login(os.environ["A"], os.environ["PASS"])
typ, d = m.select("INBOX")
out = open(sys.argv[1], "w")
if int(d[0]) > 0:
    typ, d = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    letters = {"\\Seen": "S", "\\Flagged": "F", "\\Answered": "R", "\\Draft": "D", "\\Deleted": "T"}
    for item in d:
        if not isinstance(item, tuple):
            continue
        flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()
        subj = re.search(rb"Subject: *(\S+)", item[1]).group(1).decode()
        out.write("%s %s\n" % (subj, "".join(sorted(letters[f] for f in flags if f in letters))))
m.logout()
PY
ok $? "IMAP FETCH of the whole INBOX"
cut -d' ' -f1 "$W/imap.view" | sort >"$W/imap.subjects"
sort "$W/appended" "$W/delivered" | comm -23 - <(sort "$W/expunged") >"$W/expected"
dups=$(uniq -d "$W/imap.subjects" | wc -l)
[ "$dups" = 0 ]; ok $? "no message is duplicated ($dups duplicates)"
lost=$(comm -23 "$W/expected" "$W/imap.subjects" | wc -l)
extra=$(comm -13 "$W/expected" "$W/imap.subjects" | wc -l)
[ "$lost" = 0 ]; ok $? "no acknowledged message is lost ($lost lost of $(wc -l <"$W/expected"))"
[ "$lost" = 0 ] || diag "lost: $(comm -23 "$W/expected" "$W/imap.subjects" | head -n 5)"
[ "$extra" = 0 ]; ok $? "no expunged or unacknowledged message is left ($extra extra)"
[ "$extra" = 0 ] || diag "extra: $(comm -13 "$W/expected" "$W/imap.subjects" | head -n 5)"

# coffer ls agrees with IMAP, flags included
ls_json "$A" >"$W/ls.json"
python3 - "$W/ls.json" "$W/imap.view" <<'PY'
import json, sys
ls = sorted("%s %s" % (r["subject"], "".join(sorted(r["flags"]))) for r in json.load(open(sys.argv[1])))
imap = sorted(l.rstrip("\n") for l in open(sys.argv[2]))
if ls != imap:
    a, b = set(ls), set(imap)
    print("# only in ls:", sorted(a - b)[:5], "only in IMAP:", sorted(b - a)[:5], len(ls), len(imap))
    sys.exit(1)
PY
ok $? "coffer ls --json and the IMAP view agree (messages and flags)"

"$COFFER_BIN" verify >"$W/verify.out" 2>&1; vrc=$?
[ $vrc = 0 ]; ok $? "coffer verify passes (rc $vrc)"
[ $vrc = 0 ] || diag "$(head -n 20 "$W/verify.out")"
mnt_dovecot_log_check; ok $? "no panic or fatal in Dovecot's log"
mnt_dovecot_stop
mnt_stop; ok $? "umount"
"$COFFER_BIN" verify >"$W/verify2.out" 2>&1; ok $? "coffer verify passes after umount"
done_testing
