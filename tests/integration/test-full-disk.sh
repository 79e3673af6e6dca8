#!/usr/bin/env bash
# A full disk: the store, and separately the snapshot target, on small
# filesystems (ext4 on a loop device, 48 MiB; tmpfs with size= where loop
# devices are not available), filled up:
#   - `coffer deliver` exits 75 (EX_TEMPFAIL, one error line) once the disk
#     is full, and leaves nothing behind (verify clean, no orphan);
#   - LMDB map growth (index_map_size = 1M, so the map must grow) on a full
#     disk is reported as a temporary failure, not fatal: the next command
#     works once there is space;
#   - the mount returns ENOSPC to Dovecot, which answers NO to the APPEND,
#     and keeps serving what is stored: SELECT, FETCH and LOGOUT work (the
#     control files Dovecot rewrites get the store's space reserve, which
#     the mount releases and later refills); skipped, with a note, when FUSE
#     or Dovecot is missing;
#   - `snapshot create` into a full target fails cleanly (one error line,
#     no new snapshot listed, the target still verifies);
#   - once space is freed: deliver, APPEND and snapshot create work again,
#     every acknowledged message is there, verify and snapshot verify pass.
# Needs root (mount). Prints TAP.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount-lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root (mounts small filesystems)"
	exit 77
fi

FS_MOUNTS=()
LOOPS=()
fd_cleanup() {
	[ -n "${DC_CONF:-}" ] && dc_stop
	if mountpoint -q "$MNT" 2>/dev/null || ! stat "$MNT" >/dev/null 2>&1; then
		umount -l "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
	fi
	local m l p
	p=$(mnt_pid)
	[ -n "$p" ] && kill -9 "$p" 2>/dev/null
	for m in "${FS_MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
	mnt_cleanup
}
trap fd_cleanup EXIT

# small_fs DIR MIB: a filesystem of MIB MiB mounted on DIR (ext4 on a loop
# device, else tmpfs). Sets FS_KIND.
small_fs() {
	local dir=$1 mib=$2 img=$1.img
	mkdir -p "$dir"
	if command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null &&
		truncate -s "${mib}M" "$img" && mkfs.ext4 -q -F -m 0 -N 4096 "$img" >/dev/null 2>&1; then
		local dev
		if dev=$(losetup -f --show "$img" 2>/dev/null) && mount -t ext4 "$dev" "$dir" 2>/dev/null; then
			LOOPS+=("$dev")
			FS_MOUNTS+=("$dir")
			FS_KIND="ext4 on $dev"
			chmod 0755 "$dir"
			return 0
		fi
		[ -n "${dev:-}" ] && losetup -d "$dev" 2>/dev/null
	fi
	mount -t tmpfs -o "size=${mib}m,mode=0755" tmpfs "$dir" || return 1
	FS_MOUNTS+=("$dir")
	FS_KIND="tmpfs"
}

# rnd_msg FILE SUBJECT KIB: a message with KIB KiB of incompressible body.
rnd_msg() {
	{
		printf 'From: full@example.org\nTo: disk@example.org\nSubject: %s\nMessage-ID: <%s@full>\n\n' "$2" "$2"
		head -c "$(($3 * 1024))" /dev/urandom | base64 -w 76
	} >"$1"
}

A=disk@example.org
FS1=$T_TMP/fs1
small_fs "$FS1" 64 || { fail "a small filesystem for the store"; done_testing; }
pass "store filesystem: 64 MiB $FS_KIND"
S=$FS1/store
K=$T_TMP/coffer.key
run --store "$S" --key-file "$K" init
expect_success && pass "init on the small filesystem" || fail "init"
sed -i 's/^index_map_size = .*/index_map_size = 1M/' "$S/coffer.conf"
c account add "$A"; expect_success && pass "account" || fail "account"
# 512 KiB kept aside, freed later for the index-growth round; 12 MiB freed
# at the end ("free space": no stored byte is touched)
head -c 512K /dev/zero >"$FS1/filler"
head -c 12M /dev/zero >"$FS1/filler2"

# ---- fill it with deliveries ----
W=$T_TMP/w
mkdir -p "$W"
: >"$W/acked"
full_rc=
n=0
while [ "$n" -lt 400 ]; do
	n=$((n + 1))
	rnd_msg "$W/m" "fill-$n" 512
	c deliver "$A" <"$W/m"
	if [ "$R_RC" = 0 ]; then
		echo "fill-$n" >>"$W/acked"
		[ "$n" = 1 ] && cp "$W/m" "$W/fill-1.eml"
	else
		full_rc=$R_RC
		break
	fi
done
acked=$(wc -l <"$W/acked")
[ "$full_rc" = 75 ]; ok $? "deliver exits 75 when the disk is full (after $acked deliveries of ~700 KiB; exit ${full_rc:-none})"
expect_error 75 && pass "one error line: $(head -c 200 "$R_ERR")" || fail "error line"
grep -qiE "space|full" "$R_ERR"; ok $? "the error says the disk is full"
# a few more attempts, small and large: all 75, none crashes
bad=0
for kib in 1 64 900; do
	rnd_msg "$W/m" "more-$kib" "$kib"
	c deliver "$A" <"$W/m"
	if [ "$R_RC" = 0 ]; then
		echo "more-$kib" >>"$W/acked"
	elif [ "$R_RC" != 75 ]; then
		bad=$((bad + 1))
		diag_run
	fi
done
[ "$bad" = 0 ]; ok $? "further deliveries on the full disk exit 75 or succeed (never crash)"
c --version >/dev/null 2>&1
c verify
expect_rc 0 && pass "verify on the full disk: clean (no partial blob left)" || fail "verify on the full disk"

# ---- LMDB map growth on a full disk: many small deliveries ----
# 512 KiB freed: small deliveries fill it again, while the index (a 1 MiB
# map at init) has to grow: whichever runs out first, the blob or the
# index's pages, it must be a temporary failure.
map_before=$(stat -c %s "$S/index/data.mdb")
rm -f "$FS1/filler"
i=0
grow_rc=
grow_err=
small_ok=0
while [ "$i" -lt 3000 ]; do
	i=$((i + 1))
	printf 'From: s@example.org\nSubject: small-%d\n\n%s\n' "$i" "$(head -c 300 /dev/urandom | base64 -w0)" >"$W/m"
	c deliver "$A" <"$W/m"
	if [ "$R_RC" = 0 ]; then
		echo "small-$i" >>"$W/acked"
		small_ok=$((small_ok + 1))
	else
		grow_rc=$R_RC
		grow_err=$(head -c 400 "$R_ERR")
		break
	fi
done
map_after=$(stat -c %s "$S/index/data.mdb")
diag "small deliveries before the index could not grow: $small_ok; data.mdb $map_before -> $map_after bytes"
[ "$grow_rc" = 75 ]; ok $? "index growth on the full disk is a temporary failure (exit ${grow_rc:-none}: ${grow_err:-})"
not_crashed; ok $? "not fatal: no crash"
c ls "$A" --json
expect_rc 0 && pass "reading works on the full disk (ls)" || fail "ls on the full disk"

# ---- the mount: ENOSPC to Dovecot, APPEND refused ----
MOUNT_OK=0
if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null && command -v dovecot >/dev/null &&
	[ -x /usr/lib/dovecot/imap ] && command -v python3 >/dev/null; then
	. "$(dirname "$0")/dovecot-lib.sh"
	trap fd_cleanup EXIT
	VM=coffer-full-vm
	id "$VM" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "$VM"
	mnt_start --allow-user "$VM"; ok $? "mount the full store"
	loc=$(mnt_dovecot_location "$MNT" "$T_TMP/volatile" "$VM")
	if DC_EXTRA_CONF=$MNT_DOVECOT_CONF dc_start "$T_TMP/dc" "$loc" "$VM" "$A=pw"; then
		MOUNT_OK=1
	else
		fail "dovecot starts"
	fi
else
	pass "mount: # SKIP FUSE (fuse3) or Dovecot (dovecot-imapd) missing"
fi
imap_append() { # imap_append SUBJECT KIB: prints OK or NO ...
	python3 - "$1" "$2" <<'PY'
import imaplib, os, sys
m = imaplib.IMAP4("127.0.0.1", int(os.environ["DC_IMAP_PORT"]))
m.login(os.environ["A"], "pw")
body = ("From: imap@example.org\r\nSubject: %s\r\n\r\n" % sys.argv[1]).encode() + os.urandom(int(sys.argv[2]) * 1024).hex().encode()
try:
    typ, d = m.append("INBOX", None, None, body)
    print(typ, d)
    m.logout()
except imaplib.IMAP4.abort as e:
    print("ABORT (connection lost)", e)
except imaplib.IMAP4.error as e:
    print("NO", e)
PY
}
# imap_read FILE: SELECT INBOX, FETCH the message whose Message-ID is
# FILE's (BODY.PEEK[], compared with FILE), LOGOUT; one line per step.
imap_read() {
	python3 - "$1" <<'PY'
import imaplib, os, re, sys
want = open(sys.argv[1], "rb").read()
msgid = re.search(rb"^Message-ID: (<[^>]*>)", want, re.M).group(1).decode()
m = imaplib.IMAP4("127.0.0.1", int(os.environ["DC_IMAP_PORT"]))
m.login(os.environ["A"], "pw")
try:
    typ, d = m.select("INBOX")
    print("SELECT", typ, d[0].decode(errors="replace"))
    if typ != "OK":
        sys.exit(0)
    typ, d = m.search(None, "HEADER", "Message-ID", msgid)
    seq = d[0].split()[:1] if typ == "OK" and d[0] else []
    if not seq:
        print("FETCH NO (SEARCH %s: %s %s)" % (msgid, typ, d))
    else:
        typ, d = m.fetch(seq[0], "(BODY.PEEK[])")
        got = d[0][1].replace(b"\r\n", b"\n") if typ == "OK" and isinstance(d[0], tuple) else None
        print("FETCH", "OK" if got == want else "NO", "(%s, %d bytes, %s)" % (typ, len(got or b""), "the same" if got == want else "differ"))
    typ, d = m.logout()
    print("LOGOUT", typ)
except imaplib.IMAP4.abort as e:
    print("ABORT (connection lost)", e)
except imaplib.IMAP4.error as e:
    print("NO", e)
PY
}
export A
if [ "$MOUNT_OK" = 1 ]; then
	export DC_IMAP_PORT
	out=$(imap_append "imap-full-1" 2048)
	diag "APPEND on the full disk: $out"
	# tmp/ writes get ENOSPC when the file, a margin and what the space
	# reserve lacks do not fit (maildir/mount-ops.c, room checks)
	case "$out" in NO*) pass "Dovecot refuses the APPEND on the full disk (NO)" ;; *) fail "APPEND on the full disk answered NO: got $out" ;; esac
	grep -qiE "space|quota|full" <<<"$out$(tail -n 5 "$DC_LOG")"; ok $? "the refusal (or Dovecot's log) names the lack of space"
	# Reading needs no room for mail, but Dovecot must still rewrite
	# dovecot-uidlist and its indexes to SELECT (these ~450 messages are new
	# to it): the mount gives control files the store's space reserve.
	out=$(imap_read "$W/fill-1.eml")
	diag "IMAP on the full disk: $(tr '\n' ';' <<<"$out")"
	grep -q "^SELECT OK" <<<"$out"; ok $? "IMAP SELECT on the full disk: OK"
	grep -q "^FETCH OK" <<<"$out"; ok $? "FETCH on the full disk returns the stored message's bytes"
	grep -q "^LOGOUT BYE" <<<"$out"; ok $? "LOGOUT on the full disk"
	grep -q "released the space reserve" "$MNT_LOG"; ok $? "the mount logs that it released the space reserve"
	out=$(imap_append "imap-full-2" 64)
	case "$out" in NO*) pass "APPEND is still refused once the reserve is released (NO)" ;; *) fail "APPEND after the reserve was released answered NO: got $out" ;; esac
	c deliver "$A" <"$W/fill-1.eml"
	[ "$R_RC" = 75 ]; ok $? "deliver still exits 75 once the reserve is released (exit $R_RC: $(head -c 200 "$R_ERR"))"
fi

# ---- free space: everything works again, nothing lost ----
c ls "$A" --json
python3 -c 'import json,sys; [print(m["subject"]) for m in json.load(open(sys.argv[1]))]' "$R_OUT" | sort >"$W/present.full"
n_full=$(wc -l <"$W/present.full")
rm -f "$FS1/filler2"
ok $? "freed 12 MiB on the store filesystem"
rnd_msg "$W/m" "after-free" 512
c deliver "$A" <"$W/m"
expect_success && echo after-free >>"$W/acked" && pass "deliver works again" || fail "deliver after freeing space"
if [ "$MOUNT_OK" = 1 ]; then
	out=$(imap_append "imap-after-free" 64)
	case "$out" in OK*) pass "APPEND works again" && echo imap-after-free >>"$W/acked" ;; *) fail "APPEND after freeing space: $out" ;; esac
	for _ in $(seq 1 50); do
		[ $(($(stat -c %b "$S/reserve") * 512)) -ge $((4 << 20)) ] && break
		sleep 0.1
	done
	[ $(($(stat -c %b "$S/reserve") * 512)) -ge $((4 << 20)) ]
	ok $? "the mount refills the space reserve once there is room ($(stat -c %b "$S/reserve") blocks)"
fi
c ls "$A" --json
python3 -c 'import json,sys; [print(m["subject"]) for m in json.load(open(sys.argv[1]))]' "$R_OUT" | sort >"$W/present"
missing=$(sort "$W/acked" | comm -23 - "$W/present" | wc -l)
[ "$missing" = 0 ]; ok $? "every acknowledged message is present ($(wc -l <"$W/acked") acknowledged, $missing missing)"
c verify
expect_rc 0 && pass "verify clean after the full disk" || fail "verify after the full disk"
if [ "$MOUNT_OK" = 1 ]; then
	dc_stop
	mnt_stop; ok $? "umount"
fi

# ---- the snapshot target on a small filesystem ----
FS2=$T_TMP/fs2
small_fs "$FS2" 96 || { fail "a small filesystem for the target"; done_testing; }
head -c 80M /dev/zero >"$FS2/filler"
pass "target filesystem: 96 MiB $FS_KIND, 80 MiB of it taken by a filler file"
TGT=$FS2/target
# the store holds ~55 MiB of incompressible mail, more than the 16 MiB left
c snapshot create --target "$TGT"
expect_rc 75 74 && pass "snapshot create into the small target fails" || fail "snapshot create into a full target"
expect_error "74 75" && pass "one error line: $(head -c 200 "$R_ERR")" || fail "snapshot error line"
not_crashed; ok $? "no crash"
c snapshot list --target "$TGT" --json
n_snap=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$R_OUT" 2>/dev/null || echo 0)
[ "$n_snap" = 0 ]; ok $? "no snapshot listed after the failure ($n_snap)"
c verify
expect_rc 0 && pass "the store is untouched (verify clean)" || fail "store verify after the failed snapshot"
# free space on the target; the next snapshot recovers the pending one
rm -f "$FS2/filler"
ok $? "freed 80 MiB on the target filesystem"
c snapshot create --target "$TGT"
expect_rc 0 && pass "snapshot create works once there is space" || fail "snapshot create after freeing space"
c snapshot verify --target "$TGT" --read-data=100
expect_rc 0 && pass "snapshot verify --read-data=100 passes" || fail "snapshot verify after the full target"
done_testing
