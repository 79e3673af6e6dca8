#!/usr/bin/env bash
# Soak: everything at once on one store, for SOAK_SECONDS (default 600, the
# 10 minutes CI runs; the long run in docs/reliability.md uses 3600):
#   - 8 IMAP clients (Dovecot on `coffer mount`), each in its own folder:
#     APPEND, SELECT, FETCH, STORE flags, SEARCH, COPY, EXPUNGE, logout/login;
#   - continuous `coffer deliver` into INBOX;
#   - a snapshot every SOAK_SNAP_EVERY seconds (60) and a prune;
#   - `coffer worker --once` every 30 s;
#   - the LMDB reader table under pressure: every 20 s, SOAK_READERS (200)
#     parallel `coffer ls`;
#   - the mount daemon's memory (VmRSS, split into its heap, RssAnon, and its
#     mapped files, RssFile: mostly the index's data.mdb) and open fds
#     sampled every 10 s.
# At the end: no client or command error, no Error, Fatal or Panic line in
# Dovecot's log, every acknowledged message (deliver exit 0, APPEND OK and
# not expunged by its client) present, verify clean, snapshot verify
# --read-data=10 clean, the heap bounded and stable, no fd growth (last
# sample <= first + 4). The heap holds the decrypted-message cache, an LRU
# (docs/design.md, the mount) that fills first: the soak sets its bound,
# mount_cache_size, to SOAK_CACHE_MB (8) so that it is full early in the
# run. The bound checked is a heap of at most the cache + 64 MiB (+ 128 MiB
# for AddressSanitizer's own memory when the daemon runs under it); and in
# runs of 10 minutes or more, the plateau: the mean of the last third of the
# samples within 10% + 8 MiB of the middle third's. The mapped index grows
# with the store, by design, and is reported, not bounded. Prints TAP; the
# figures go to diagnostics and to $SOAK_REPORT when set. Without
# FUSE/Dovecot/root the IMAP part is
# skipped with a note and the rest runs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount-lib.sh"

SECS=${SOAK_SECONDS:-600}
# Under AddressSanitizer (the CI build) every process keeps up to 256 MiB of
# freed memory in quarantine: 200 parallel readers would then need more memory
# than the machine has, and the daemon's RSS would measure ASan, not Coffer.
# A small quarantine keeps both meaningful; other builds ignore the variable.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
SNAP_EVERY=${SOAK_SNAP_EVERY:-60}
READERS=${SOAK_READERS:-200}
CACHE_MB=${SOAK_CACHE_MB:-8}
CLIENTS=${SOAK_CLIENTS:-8}
A=soak@example.org
W=$T_TMP/w
mkdir -p "$W"

IMAP=1
why=
if [ "$(id -u)" != 0 ]; then why="needs root"; fi
if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then why="fuse3 missing"; fi
if ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/imap ]; then why="Dovecot (dovecot-imapd) missing"; fi
if ! command -v python3 >/dev/null; then
	echo "1..0 # SKIP python3 missing"
	exit 77
fi
[ -n "$why" ] && IMAP=0

BG=()
soak_cleanup() {
	local p
	for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "${DC_CONF:-}" ] && dc_stop
	mnt_cleanup
}
trap soak_cleanup EXIT

mnt_store s || { fail "store"; done_testing; }
TGT=$T_TMP/target
sed -i "s|^# snapshot_target = .*|snapshot_target = \"$TGT\"|" "$S/coffer.conf"
sed -i "s|^mount_cache_size = .*|mount_cache_size = ${CACHE_MB}M|" "$S/coffer.conf"
grep -q "^mount_cache_size = ${CACHE_MB}M\$" "$S/coffer.conf"; ok $? "the mount's cache bound set to $CACHE_MB MiB"
c account add "$A"; expect_success && pass "account" || fail "account"
if [ "$IMAP" = 1 ]; then
	. "$(dirname "$0")/dovecot-lib.sh"
	trap soak_cleanup EXIT
	VM=coffer-soak-vm
	id "$VM" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "$VM"
	mnt_start --allow-user "$VM"; ok $? "mount"
	loc=$(mnt_dovecot_location "$MNT" "$T_TMP/volatile" "$VM")
	DC_EXTRA_CONF=$MNT_DOVECOT_CONF dc_start "$T_TMP/dc" "$loc" "$VM" "$A=pw"; ok $? "dovecot on the mount"
	export DC_IMAP_PORT
else
	pass "IMAP clients: # SKIP $why"
fi
END=$(($(date +%s) + SECS))
export END A W

# ---- the IMAP clients ----
if [ "$IMAP" = 1 ]; then
	for i in $(seq 1 "$CLIENTS"); do
		python3 - "$i" <<'PY' &
import imaplib, os, random, sys, time
i = int(sys.argv[1]); end = int(os.environ["END"]); W = os.environ["W"]
port = int(os.environ["DC_IMAP_PORT"]); A = os.environ["A"]
folder = "Client%d" % i
acked = open("%s/imap-acked-%d" % (W, i), "w")
gone = open("%s/imap-expunged-%d" % (W, i), "w")
errs = open("%s/imap-errors-%d" % (W, i), "w")
ops = 0
rnd = random.Random(i)
def check(what, r):
    if r[0] != "OK":
        errs.write("%s: %r\n" % (what, r)); errs.flush()
    return r[0] == "OK"
n = 0
while time.time() < end:
    try:
        m = imaplib.IMAP4("127.0.0.1", port)
        m.login(A, "pw")
        m.create(folder)
        for _ in range(rnd.randint(5, 25)):
            if time.time() >= end:
                break
            n += 1
            subj = "imap-%d-%d" % (i, n)
            body = ("From: c%d@example.org\r\nSubject: %s\r\n\r\n" % (i, subj) + "x" * rnd.randint(10, 20000) + "\r\n").encode()
            if check("APPEND", m.append(folder, rnd.choice([None, r"(\Seen)", r"(\Flagged $Work)"]), None, body)):
                acked.write(subj + "\n"); acked.flush()
            check("SELECT", m.select(folder))
            typ, d = m.search(None, "ALL")
            check("SEARCH", (typ, d))
            ids = d[0].split()
            if ids:
                one = rnd.choice(ids)
                check("FETCH", m.fetch(one, "(FLAGS RFC822.SIZE BODY.PEEK[])"))
                check("STORE", m.store(one, "+FLAGS", r"(\Answered)"))
                check("COPY", m.copy(one, "INBOX"))
            if len(ids) > 30 and rnd.random() < 0.3:
                victim = ids[0]
                typ, d = m.fetch(victim, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                subj_v = d[0][1].decode().split(":", 1)[1].strip()
                check("STORE Deleted", m.store(victim, "+FLAGS", r"(\Deleted)"))
                if check("EXPUNGE", m.expunge()):
                    gone.write(subj_v + "\n"); gone.flush()
            ops += 1
        m.logout()
    except Exception as e:
        errs.write("exception: %r\n" % (e,)); errs.flush()
        time.sleep(0.5)
print("# client %d: %d messages appended" % (i, n))
PY
		BG+=($!)
	done
fi

# ---- continuous delivery ----
(
	n=0
	: >"$W/deliver-acked"
	: >"$W/deliver-errors"
	while [ "$(date +%s)" -lt "$END" ]; do
		n=$((n + 1))
		printf 'From: d@example.org\nSubject: deliver-%d\n\n%s\n' "$n" "$(head -c $((RANDOM % 30000 + 100)) /dev/urandom | base64 -w 76)" >"$W/d.eml"
		if "$COFFER_BIN" --store "$S" --key-file "$K" deliver "$A" <"$W/d.eml" 2>>"$W/deliver-errors"; then
			echo "deliver-$n" >>"$W/deliver-acked"
		fi
	done
) &
BG+=($!)

# ---- snapshots and prune, worker ----
(
	: >"$W/snap-errors"
	while [ "$(date +%s)" -lt "$END" ]; do
		for cmd in "snapshot create" "snapshot prune"; do
			# shellcheck disable=SC2086
			out=$("$COFFER_BIN" --store "$S" --key-file "$K" $cmd 2>&1)
			rc=$?
			# 75: the snapshot lock is held by the worker: try again later
			if [ "$rc" != 0 ] && [ "$rc" != 75 ]; then echo "$cmd: $rc $out" >>"$W/snap-errors"; fi
			echo "$cmd $rc" >>"$W/snap-log"
		done
		sleep "$SNAP_EVERY"
	done
) &
BG+=($!)
(
	: >"$W/worker-errors"
	while [ "$(date +%s)" -lt "$END" ]; do
		out=$("$COFFER_BIN" --store "$S" --key-file "$K" worker --once 2>&1)
		rc=$?
		if [ "$rc" != 0 ] && [ "$rc" != 75 ]; then echo "worker: $rc $out" >>"$W/worker-errors"; fi
		sleep 30
	done
) &
BG+=($!)

# ---- reader pressure ----
(
	: >"$W/reader-errors"
	rounds=0
	while [ "$(date +%s)" -lt "$END" ]; do
		rounds=$((rounds + 1))
		pids=()
		for r in $(seq 1 "$READERS"); do
			"$COFFER_BIN" --store "$S" --key-file "$K" ls "$A" >/dev/null 2>>"$W/reader-err-raw" &
			pids+=($!)
		done
		fails=0
		for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
		[ "$fails" = 0 ] || echo "round $rounds: $fails of $READERS ls failed" >>"$W/reader-errors"
		echo "$rounds" >"$W/reader-rounds"
		sleep 20
	done
) &
BG+=($!)

# ---- sampling the mount daemon ----
: >"$W/samples"
if [ "$IMAP" = 1 ]; then
	while [ "$(date +%s)" -lt "$END" ]; do
		p=$(mnt_pid)
		if [ -n "$p" ]; then
			# VmRSS = RssAnon (heap, the cache) + RssFile (mapped files:
			# the index's data.mdb, which grows with the store) + RssShmem
			read -r rss anon file < <(awk '/^VmRSS/ {r = $2} /^RssAnon/ {a = $2}
				/^RssFile/ {f = $2} END {print r, a, f}' "/proc/$p/status")
			fds=$(ls "/proc/$p/fd" | wc -l)
			echo "$(date +%s) $rss $fds $anon $file" >>"$W/samples"
			grep -q libasan "/proc/$p/maps" 2>/dev/null && : >"$W/asan"
		fi
		sleep 10
	done
else
	sleep "$SECS"
fi
for p in "${BG[@]}"; do wait "$p"; done
BG=()

# ---- results ----
nerr() { cat "$@" 2>/dev/null | wc -l; }
imap_errs=$(nerr "$W"/imap-errors-*)
[ "$imap_errs" = 0 ]; ok $? "IMAP clients: no error ($imap_errs)"
[ "$imap_errs" = 0 ] || diag "$(cat "$W"/imap-errors-* | sort | uniq -c | sort -rn | head -10)"
if [ "$imap_errs" != 0 ] && [ -n "${DC_LOG:-}" ]; then
	diag "Dovecot's errors: $(grep -E 'Error|Fatal|Panic|killed|signal' "$DC_LOG" | tail -20)"
fi
if [ -n "${DC_LOG:-}" ]; then
	dv_errs=$(grep -cE ': (Error|Fatal|Panic): ' "$DC_LOG")
	[ "$dv_errs" = 0 ]; ok $? "Dovecot logged no error, fatal or panic ($dv_errs)"
	[ "$dv_errs" = 0 ] || diag "$(grep -E ': (Error|Fatal|Panic): ' "$DC_LOG" |
		sed -E 's/^.*: (Error|Fatal|Panic): /\1: /; s/[0-9]{3,}/N/g; s/coffer-it\.[A-Za-z0-9]+/T/g' |
		sort | uniq -c | sort -rn | head -10)"
fi
[ -s "$W/deliver-errors" ] && diag "deliver errors: $(sort "$W/deliver-errors" | uniq -c | head -5)"
[ ! -s "$W/deliver-errors" ]; ok $? "deliver: no error ($(wc -l <"$W/deliver-acked") delivered)"
[ ! -s "$W/snap-errors" ]; ok $? "snapshot create/prune: no error ($(grep -c "create 0" "$W/snap-log") snapshots, $(grep -c " 75$" "$W/snap-log") deferred for the lock)"
[ -s "$W/snap-errors" ] && diag "$(head -5 "$W/snap-errors")"
[ ! -s "$W/worker-errors" ]; ok $? "worker --once: no error"
[ -s "$W/worker-errors" ] && diag "$(head -5 "$W/worker-errors")"
[ ! -s "$W/reader-errors" ]; ok $? "reader pressure: $(cat "$W/reader-rounds" 2>/dev/null) rounds of $READERS parallel ls, none failed"
[ -s "$W/reader-errors" ] && diag "$(head -5 "$W/reader-errors"); $(sort "$W/reader-err-raw" | uniq -c | head -3)"

if [ "$IMAP" = 1 ]; then
	dc_stop
	mnt_stop; ok $? "umount"
fi

# every acknowledged message is there
: >"$W/present"
for f in INBOX $(seq -f "Client%g" 1 "$CLIENTS"); do
	"$COFFER_BIN" --store "$S" --key-file "$K" ls "$A" "$f" --json 2>/dev/null |
		python3 -c 'import json,sys; [print(m["subject"]) for m in json.load(sys.stdin)]' >>"$W/present" 2>/dev/null
done
sort -u "$W/present" -o "$W/present"
cat "$W/deliver-acked" >"$W/acked"
for i in $(seq 1 "$CLIENTS"); do
	[ -f "$W/imap-acked-$i" ] && sort "$W/imap-acked-$i" | comm -23 - <(sort "$W/imap-expunged-$i") >>"$W/acked"
done
sort -u "$W/acked" -o "$W/acked"
missing=$(comm -23 "$W/acked" "$W/present" | wc -l)
[ "$missing" = 0 ]; ok $? "every acknowledged message is present ($(wc -l <"$W/acked") acknowledged, $missing missing)"
[ "$missing" = 0 ] || diag "missing: $(comm -23 "$W/acked" "$W/present" | head -5)"
c verify
expect_rc 0 && pass "verify clean" || fail "verify"
c snapshot verify --read-data=10
expect_rc 0 && pass "snapshot verify --read-data=10 clean" || fail "snapshot verify"

if [ "$IMAP" = 1 ]; then
	nsamples=$(wc -l <"$W/samples")
	# the checks are on the heap (RssAnon); VmRSS and the mapped index are
	# reported beside it
	read -r rss_first rss_mid rss_last fd_first fd_last fd_max rss_min rss_max < <(awk '
		{ rss[NR] = $4; fd[NR] = $3 }
		END {
			t = int(NR / 3); if (t < 1) t = 1
			for (i = 1; i <= t; i++) a += rss[i]
			for (i = t + 1; i <= 2 * t; i++) m += rss[i]
			for (i = NR - t + 1; i <= NR; i++) b += rss[i]
			mx = 0; mn = rss[1]; fmx = 0
			for (i = 1; i <= NR; i++) { if (rss[i] > mx) mx = rss[i]; if (rss[i] < mn) mn = rss[i]; if (fd[i] > fmx) fmx = fd[i] }
			printf "%d %d %d %d %d %d %d %d\n", a / t, m / t, b / t, fd[1], fd[NR], fmx, mn, mx
		}' "$W/samples")
	vm=$(awk '{ if ($2 > m) m = $2; f = $5 } END { printf "VmRSS max %d KiB, of which mapped files (the index) %d KiB at the end", m, f }' "$W/samples")
	summary="mount daemon over $nsamples samples (10 s): heap (RssAnon) means by thirds ${rss_first} / ${rss_mid} / ${rss_last} KiB (min $rss_min, max $rss_max); $vm; fds first $fd_first, last $fd_last, max $fd_max"
	diag "$summary"
	[ -n "${SOAK_REPORT:-}" ] && { echo "$summary"; cat "$W/samples"; } >"$SOAK_REPORT"
	extra=0 extra_why=
	[ -e "$W/asan" ] && extra=128 extra_why=" + 128 MiB for ASan"
	[ "$nsamples" -ge 3 ] && [ "$rss_max" -le $(((CACHE_MB + 64 + extra) * 1024)) ]
	ok $? "heap bounded: max $rss_max KiB (cache bound $CACHE_MB MiB + 64 MiB$extra_why)"
	if [ "$SECS" -ge 600 ]; then
		[ "$rss_last" -le $((rss_mid * 110 / 100 + 8192)) ]
		ok $? "heap stable: middle third $rss_mid KiB, last third $rss_last KiB"
	fi
	[ "$nsamples" -ge 3 ] && [ "$fd_last" -le $((fd_first + 4)) ]
	ok $? "no fd growth: $fd_first -> $fd_last"
fi
done_testing
