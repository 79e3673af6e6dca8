#!/bin/bash
# POSIX semantics of `coffer mount` that Maildir writers and readers rely on,
# through a real FUSE mount, with plain shell and python tools: delivery by
# tmp+fsync+rename and by qmail's link+unlink, flag renames, moves, expunge,
# folders, times and sizes, control files (random-access rewrites, appends,
# O_EXCL, dotlocks by link, atomic rename over), coordination with the CLI,
# durability across umount and kill -9, no plaintext on disk, permissions.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount-lib.sh"
mnt_require

A=alice@example.org
CANARY=CanaryMountXyzzy4711
mnt_store s || { fail "store"; done_testing; }
c account add "$A"; expect_success && pass "account" || fail "account"
msg "$T_TMP/m1" "first $CANARY"
"$COFFER_BIN" deliver "$A" <"$T_TMP/m1"; ok $? "deliver before mount"

mnt_start; ok $? "coffer mount returns once mounted"
M=$MNT/$A
[ "$(ls "$MNT")" = "$A" ]; ok $? "the mount root lists the account"
[ ! -e "$MNT/nobody@example.org" ] && [ ! -e "$MNT/Alice@Example.org" ]; ok $? "unknown and non-canonical names are ENOENT"
[ -d "$M/cur" ] && [ -d "$M/new" ] && [ -d "$M/tmp" ]; ok $? "INBOX has cur/ new/ tmp/"
n=$(ls "$M/new" | wc -l); [ "$n" = 1 ]; ok $? "the delivered message is in new/"
f=$(ls "$M/new"); cmp -s "$M/new/$f" "$T_TMP/m1"; ok $? "its content reads back byte for byte"
[ "$(stat -c %s "$M/new/$f")" = "$(stat -c %s "$T_TMP/m1")" ]; ok $? "stat size is the plaintext size"
# the transport (maildir/mount-uring.c): io_uring when the kernel offers it
# and COFFER_MOUNT_URING does not turn it off, /dev/fuse otherwise
if [ "$(cat /sys/module/fuse/parameters/enable_uring 2>/dev/null)" = Y ] &&
	[ "${COFFER_MOUNT_URING:-1}" != 0 ]; then
	grep -q "serving FUSE requests through io_uring" "$MNT_LOG"
	ok $? "requests come through io_uring (the kernel offers it)"
else
	! grep -q "through io_uring" "$MNT_LOG"
	ok $? "requests come through /dev/fuse (io_uring not offered, or turned off)"
fi

# coffer deliver while mounted: visible at once
msg "$T_TMP/m2" "second $CANARY"
"$COFFER_BIN" deliver "$A" <"$T_TMP/m2"
[ "$(ls "$M/new" | wc -l)" = 2 ]; ok $? "a message delivered by coffer deliver shows up in new/ at once"

# the kernel caches attributes for 60 s, but a change made outside the mount
# invalidates the mailbox directories' within a second: new/'s mtime moves
# (Dovecot's sync looks at it)
m0=$(stat -c %Y.%y "$M/new"); sleep 1.2
msg "$T_TMP/m3" "third"
"$COFFER_BIN" deliver "$A" <"$T_TMP/m3"
sleep 2.5
m1=$(stat -c %Y.%y "$M/new")
[ "$m0" != "$m1" ] && [ "$(ls "$M/new" | wc -l)" = 3 ]; ok $? "an outside delivery moves new/'s mtime within seconds ($m0 -> $m1)"

# The check above skips the daemon's own commits (the kernel made those
# changes): a control file written and fsynced through the mount leaves new/'s
# mtime alone, but an outside delivery between two such commits is still seen.
ctl_write() { # FILE TEXT: write, fsync (one commit of the daemon's)
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, sys.argv[2].encode()); os.fsync(fd); os.close(fd)' "$1" "$2"
}
m0=$(stat -c %Y.%y "$M/new")
ctl_write "$M/subscriptions" "INBOX"
sleep 2.5
m1=$(stat -c %Y.%y "$M/new")
[ "$m0" = "$m1" ]; ok $? "a control file written through the mount leaves new/'s mtime alone ($m0 -> $m1)"
ctl_write "$M/subscriptions" "INBOX
a"
msg "$T_TMP/m4" "fourth"
"$COFFER_BIN" deliver "$A" <"$T_TMP/m4"
ctl_write "$M/subscriptions" "INBOX"
sleep 2.5
m2=$(stat -c %Y.%y "$M/new")
[ "$m1" != "$m2" ] && [ "$(ls "$M/new" | wc -l)" = 4 ]; ok $? "an outside delivery between two of the daemon's own commits is seen ($m1 -> $m2)"

# A delivery through the mount commits lazily (the index's meta page written,
# not synced), as a local file system's rename is durable once its directory
# is fsynced: after fsync of new/, neither of the index's two meta pages is
# dirty in the page cache (/proc/kpageflags, root only).
python3 - "$M" "$S" <<'PY'
import ctypes, os, struct, sys
M, S = sys.argv[1], sys.argv[2]
if not os.access("/proc/kpageflags", os.R_OK):
    print("# /proc/kpageflags unreadable: nothing to check")
    sys.exit(0)
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
fd = os.open(S + "/index/data.mdb", os.O_RDONLY)
addr = libc.mmap(None, 8192, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
assert addr not in (None, ctypes.c_void_p(-1).value), "mmap"
def dirty_metas():
    n = 0
    for i in (0, 1):
        ctypes.string_at(addr + i * 4096, 1)  # fault the page in
        with open("/proc/self/pagemap", "rb") as f:
            f.seek((addr // 4096 + i) * 8)
            e = struct.unpack("<Q", f.read(8))[0]
        assert e >> 63, "meta page %d not present" % i
        with open("/proc/kpageflags", "rb") as f:
            f.seek((e & ((1 << 55) - 1)) * 8)
            n += (struct.unpack("<Q", f.read(8))[0] >> 4) & 1  # KPF_DIRTY
    return n
tmp = M + "/tmp/1700000009.M9P9.lazy"
fd2 = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
os.write(fd2, b"From: a@b\nSubject: lazy\n\nbody\n")
os.fsync(fd2)
os.close(fd2)
os.rename(tmp, M + "/new/1700000009.M9P9.lazy")
print("# dirty meta pages right after the rename: %d" % dirty_metas())
dfd = os.open(M + "/new", os.O_RDONLY | os.O_DIRECTORY)
os.fsync(dfd)
os.close(dfd)
n = dirty_metas()
assert n == 0, "%d meta page(s) still dirty after fsync of new/" % n
PY
ok $? "fsync of new/ makes a delivery through the mount durable (no dirty meta page in the index)"

py() { python3 - "$M" "$@"; }

# tmp + write + fsync + utime + rename into cur/ with flags
py <<'PY'
import os, sys
M = sys.argv[1]
fd = os.open(M + "/tmp/1700000000.M1P1.host", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
os.write(fd, b"From: a@b\nSubject: appended\n\n" + b"line\n" * 1000)
os.fsync(fd)
os.close(fd)
os.utime(M + "/tmp/1700000000.M1P1.host", (1600000000, 1600000000))
os.rename(M + "/tmp/1700000000.M1P1.host", M + "/cur/1700000000.M1P1.host,S=5029:2,FS")
PY
ok $? "tmp, fsync, utime, rename into cur/ with flags"
st=$(stat -c '%s %Y' "$M/cur/1700000000.M1P1.host,S=5029:2,FS" 2>/dev/null)
[ "$st" = "5029 1600000000" ]; ok $? "size and mtime of the delivered file ($st)"
ls_json "$A" >"$T_TMP/ls.json"
python3 - "$T_TMP/ls.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
r = [x for x in rows if x["name"] == "1700000000.M1P1.host,S=5029"]
assert len(r) == 1, rows
assert r[0]["flags"] == "FS", r[0]
assert r[0]["date"] == "2020-09-13T12:26:40Z", r[0]
assert r[0]["size"] == 5029
PY
ok $? "coffer ls shows the name, flags and internal date"
[ -z "$(ls "$M/tmp")" ]; ok $? "tmp/ is empty after the rename"

# A tmp file's blob is made once it is fsynced, ahead of its rename
# (maildir/mount-seal.c): the rename delivers that blob; content changed
# after the fsync is what gets delivered; a tmp file dropped after its fsync
# leaves no blob behind.
blobs() { find "$S/blobs" -type f -size +0 | sort; }
blobs >"$T_TMP/b0"
py <<'PY'
import os, sys, time
M = sys.argv[1]
def tmp(name, body):
    fd = os.open(M + "/tmp/" + name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.write(fd, body)
    os.fsync(fd)
    return fd
os.close(tmp("1700000100.S1.host", b"Subject: sealed\n\n" + b"a" * 3000))
fd = tmp("1700000101.S2.host", b"Subject: changed\n\n" + b"b" * 3000)
fd2 = tmp("1700000102.S3.host", b"Subject: shorter\n\n" + b"c" * 3000)
os.close(tmp("1700000103.S4.host", b"Subject: dropped\n\n" + b"d" * 3000))
time.sleep(1)  # the sealer's turn
os.pwrite(fd, b"B", 100)
os.write(fd, b"appended after the fsync\n")
os.close(fd)
os.ftruncate(fd2, 1000)
os.close(fd2)
PY
blobs >"$T_TMP/b1"
[ "$(comm -13 "$T_TMP/b0" "$T_TMP/b1" | wc -l)" = 2 ]; ok $? "two tmp files fsynced and left alone have their blobs made before any rename"
rm "$M/tmp/1700000103.S4.host"
mv "$M/tmp/1700000100.S1.host" "$M/cur/1700000100.S1.host:2," &&
	mv "$M/tmp/1700000101.S2.host" "$M/cur/1700000101.S2.host:2," &&
	mv "$M/tmp/1700000102.S3.host" "$M/cur/1700000102.S3.host:2,"
ok $? "the tmp files are renamed into cur/"
blobs >"$T_TMP/b2"
[ "$(comm -13 "$T_TMP/b0" "$T_TMP/b2" | wc -l)" = 3 ]; ok $? "three messages, three new blobs: the dropped and the stale ones are gone"
comm -13 "$T_TMP/b1" "$T_TMP/b2" >"$T_TMP/bnew"
[ "$(wc -l <"$T_TMP/bnew")" = 2 ] && comm -23 "$T_TMP/b1" "$T_TMP/b2" | grep -q .
ok $? "the unchanged file's blob made ahead is the message's; the changed ones are made again"
python3 - "$M" <<'PY'
import sys
M = sys.argv[1]
assert open(M + "/cur/1700000100.S1.host:2,", "rb").read() == b"Subject: sealed\n\n" + b"a" * 3000
want = bytearray(b"Subject: changed\n\n" + b"b" * 3000)
want[100:101] = b"B"
want += b"appended after the fsync\n"
assert open(M + "/cur/1700000101.S2.host:2,", "rb").read() == bytes(want)
assert open(M + "/cur/1700000102.S3.host:2,", "rb").read() == (b"Subject: shorter\n\n" + b"c" * 3000)[:1000]
PY
ok $? "each delivered message reads back as last written"
rm "$M/cur/1700000100.S1.host:2," "$M/cur/1700000101.S2.host:2," "$M/cur/1700000102.S3.host:2,"

# O_EXCL in tmp
py <<'PY'
import os, sys, errno
M = sys.argv[1]
fd = os.open(M + "/tmp/x", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
os.close(fd)
try:
    os.open(M + "/tmp/x", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    sys.exit(1)
except FileExistsError:
    pass
os.unlink(M + "/tmp/x")
PY
ok $? "O_EXCL create of an existing tmp file fails with EEXIST"

# qmail-local: link + unlink
printf 'From: q@example.org\nSubject: qmail %s\n\nbody\n' "$CANARY" >"$M/tmp/1700000001.Q1.host" &&
	ln "$M/tmp/1700000001.Q1.host" "$M/new/1700000001.Q1.host" && rm "$M/tmp/1700000001.Q1.host"
ok $? "qmail-style link(tmp, new) + unlink(tmp)"
grep -q "qmail $CANARY" "$M/new/1700000001.Q1.host" && [ -z "$(ls "$M/tmp")" ]; ok $? "the linked message reads back, tmp/ is empty"

# flag changes by rename; visible to coffer ls at once
mv "$M/new/1700000001.Q1.host" "$M/cur/1700000001.Q1.host:2,S"; ok $? "new/ -> cur/ rename"
mv "$M/cur/1700000001.Q1.host:2,S" "$M/cur/1700000001.Q1.host:2,RS"; ok $? "flag rename in cur/"
ls_json "$A" | grep -q '"flags": *"RS".*"name": *"1700000001.Q1.host"'; ok $? "coffer ls sees the new flags at once"
[ ! -e "$M/cur/1700000001.Q1.host:2,S" ]; ok $? "the old name is gone (ENOENT)"
uid_before=$(ls_json "$A" | python3 -c 'import json,sys; print([r["uid"] for r in json.load(sys.stdin) if r["name"]=="1700000001.Q1.host"][0])')

# utimensat on a message changes the internal date persistently
touch -m -d @1500000000 "$M/cur/1700000001.Q1.host:2,RS"; ok $? "utimensat on a message"
ls_json "$A" | grep -q '"date": *"2017-07-14T02:40:00Z"'; ok $? "the internal date changed in the index"

# folders
mkdir "$M/.Lists" "$M/.Lists.debian" && mkdir "$M/.Sent"; ok $? "mkdir of folders"
"$COFFER_BIN" folders "$A" >"$T_TMP/f1"
grep -qx "Lists/debian" "$T_TMP/f1" && grep -qx Sent "$T_TMP/f1"; ok $? "coffer folders lists them"
[ ! -e "$M/.Lists.debian/cur" ] && mkdir "$M/.Lists.debian/cur" "$M/.Lists.debian/new" "$M/.Lists.debian/tmp" && [ -d "$M/.Lists.debian/tmp" ]
ok $? "a new folder's cur/ new/ tmp/ are made by mkdir (as Dovecot's CREATE expects)"
mkdir "$M/.Lists.debian/cur" 2>/dev/null; [ $? != 0 ]; ok $? "a second mkdir of cur/ fails (EEXIST)"
mkdir "$M"/.Lists/{cur,new,tmp} "$M"/.Sent/{cur,new,tmp}; ok $? "cur/ new/ tmp/ of the other new folders"
mkdir "$M/.Sent" 2>/dev/null; [ $? != 0 ]; ok $? "mkdir of an existing folder fails"
mv "$M/.Sent" "$M/.Sent Items"; ok $? "rename of a folder"
"$COFFER_BIN" folders "$A" | grep -qx "Sent Items"; ok $? "coffer folders sees the new name"

# move across folders keeps the uid space of the target
mv "$M/cur/1700000001.Q1.host:2,RS" "$M/.Lists.debian/cur/1700000001.Q1.host:2,RS"; ok $? "rename across folders (move)"
ls_json "$A" "Lists/debian" | grep -q 1700000001.Q1.host && ! ls_json "$A" | grep -q 1700000001.Q1.host
ok $? "the message moved in the index"
grep -q "qmail $CANARY" "$M/.Lists.debian/cur/1700000001.Q1.host:2,RS"; ok $? "moved message reads back"

# hard link across folders: a second message sharing the blob
ln "$M/.Lists.debian/cur/1700000001.Q1.host:2,RS" "$M/.Lists/cur/1700000001.Q1.host:2,RS"; ok $? "link across folders (copy)"
[ "$(find "$S/blobs" -type f | wc -l)" -ge 4 ]
cmp -s "$M/.Lists/cur/1700000001.Q1.host:2,RS" "$M/.Lists.debian/cur/1700000001.Q1.host:2,RS"; ok $? "both names read the same"

# expunge
rm "$M/.Lists/cur/1700000001.Q1.host:2,RS"; ok $? "unlink (expunge)"
! ls_json "$A" Lists | grep -q 1700000001; ok $? "expunged in the index"
grep -q "qmail $CANARY" "$M/.Lists.debian/cur/1700000001.Q1.host:2,RS"; ok $? "the other link still reads (blob kept)"

# rmdir of a non-empty and of an empty folder; Dovecot-style delete via rename
rmdir "$M/.Lists.debian" 2>/dev/null; [ $? != 0 ]; ok $? "rmdir of a non-empty folder fails"
rmdir "$M/.Lists"; ok $? "rmdir of an empty folder"
mv "$M/.Lists.debian" "$M/DOVECOT-TRASHED" && rm -rf "$M/DOVECOT-TRASHED"; ok $? "delete by rename to DOVECOT-TRASHED then rm -rf"
! "$COFFER_BIN" folders "$A" | grep -q Lists; ok $? "the folders are gone from the index"

# control files
py <<'PY'
import os, sys
M = sys.argv[1]
p = M + "/dovecot-uidlist"
with open(p, "w") as f:
    f.write("3 V1700000000 N1 G0123456789\n")
with open(p, "r+") as f:
    f.seek(2); f.write("X")
with open(p, "a") as f:
    f.write("1 :1700000000.M1P1.host\n")
assert open(p).read() == "3 X1700000000 N1 G0123456789\n1 :1700000000.M1P1.host\n"
try:
    os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY); sys.exit(2)
except FileExistsError:
    pass
# Dovecot's update: write a lock file (O_EXCL), fsync, rename over the file
fd = os.open(p + ".lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
os.write(fd, b"3 V1700000000 N2\n1 :a\n2 :b\n"); os.fsync(fd); os.close(fd)
os.rename(p + ".lock", p)
assert open(p).read() == "3 V1700000000 N2\n1 :a\n2 :b\n"
assert not os.path.exists(p + ".lock")
# dotlock by link(): the second link fails with EEXIST
with open(M + "/.temp.host.1.abc", "w") as f:
    f.write("1234\n")
os.link(M + "/.temp.host.1.abc", M + "/dovecot-keywords.lock")
try:
    os.link(M + "/.temp.host.1.abc", M + "/dovecot-keywords.lock"); sys.exit(3)
except FileExistsError:
    pass
os.unlink(M + "/.temp.host.1.abc")
os.unlink(M + "/dovecot-keywords.lock")
# a large control file with random-access rewrites (index-like)
data = bytearray(os.urandom(300000))
with open(M + "/dovecot.index.cache", "wb") as f:
    f.write(data)
with open(M + "/dovecot.index.cache", "r+b") as f:
    f.seek(123456); f.write(b"CanaryMountXyzzy4711 in the cache"); os.fsync(f.fileno())
data[123456:123456 + 33] = b"CanaryMountXyzzy4711 in the cache"
assert open(M + "/dovecot.index.cache", "rb").read() == bytes(data)
open("/tmp/.coffer-mount-cache-" + str(os.getpid()), "wb").write(bytes(data))
with open(M + "/subscriptions", "w") as f:
    f.write("V\t2\n\nSent Items\n")
os.truncate(M + "/subscriptions", 5)
assert open(M + "/subscriptions").read() == "V\t2\n\n"
PY
ok $? "control files: rewrites, appends, O_EXCL, rename over, dotlock by link, truncate"
mkdir "$M/.Work" && printf '' >"$M/.Work/maildirfolder" && printf 'x' >"$M/.Work/dovecot-uidlist"; ok $? "control files in a folder"

# a message bigger than the in-memory limit streams into a staging blob
python3 - "$M" <<'PY'
import os, sys, hashlib
M = sys.argv[1]
body = b"From: big@example.org\nSubject: big\n\n" + (b"0123456789abcdef" * 65536 * 10)
fd = os.open(M + "/tmp/big.1", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
for i in range(0, len(body), 131072):
    os.write(fd, body[i:i + 131072])
os.fsync(fd); os.close(fd)
os.rename(M + "/tmp/big.1", M + "/new/big.1")
assert os.stat(M + "/new/big.1").st_size == len(body)
assert hashlib.sha256(open(M + "/new/big.1", "rb").read()).digest() == hashlib.sha256(body).digest()
PY
ok $? "a 10 MiB message (over the memory limit) is delivered and reads back"

# delivery events: arrivals in new/ (rename or link out of tmp/) are logged in
# the message's own transaction, like coffer deliver's; cur/ (APPEND) is not
qsize=$(printf 'From: q@example.org\nSubject: qmail %s\n\nbody\n' "$CANARY" | wc -c)
"$COFFER_BIN" logins "$A" --deliveries --json >"$T_TMP/dl.json"
python3 - "$T_TMP/dl.json" "$qsize" $((36 + 16 * 65536 * 10)) <<'PY'
import json, sys
ev = [e for e in json.load(open(sys.argv[1])) if e["event"] == "delivery"]
sizes = sorted(e["size"] for e in ev)
assert len(ev) == 7, ev             # 4 by coffer deliver, the lazy check, qmail link, the big rename
assert all(e["folder"] == "INBOX" for e in ev), ev
assert int(sys.argv[2]) in sizes and int(sys.argv[3]) in sizes, (sizes, sys.argv[2:])
PY
ok $? "deliveries through new/ (link and rename) are recorded as delivery events; cur/ ones are not"

# refused operations
mknod "$M/fifo" p 2>/dev/null; [ $? != 0 ]; ok $? "mknod of a fifo is refused"
ln -s x "$M/link" 2>/dev/null; [ $? != 0 ]; ok $? "symlink is refused"
(echo x >"$M/cur/direct") 2>/dev/null; [ $? != 0 ]; ok $? "creating a file directly in cur/ is refused"
[ ! -e "$M/../../etc" ] || [ "$(cd "$MNT" && ls -d "$A/.." 2>/dev/null)" ]; ok $? "'..' does not leave the tree"

# fusermount3 -u / coffer umount, remount: nothing lost
snapshot() {
	(cd "$MNT/$A" && find . -type f | sort | while read -r f; do printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -c1-16)"; done)
}
snapshot >"$T_TMP/before"
mnt_stop; ok $? "coffer umount"
for i in $(seq 50); do [ -z "$(mnt_pid)" ] && break; sleep 0.1; done
! mountpoint -q "$MNT" && [ -z "$(mnt_pid)" ]; ok $? "unmounted, daemon gone"
mnt_start; ok $? "remount"
snapshot >"$T_TMP/after"
diff "$T_TMP/before" "$T_TMP/after" >&2; ok $? "every message and control file survived umount"

# fusermount3 -u too
printf 'pending' >"$M/dovecot-pending"
fusermount3 -u "$MNT"; ok $? "fusermount3 -u"
for i in $(seq 50); do [ -z "$(mnt_pid)" ] && break; sleep 0.1; done
mnt_start && [ "$(cat "$M/dovecot-pending")" = pending ]; ok $? "a control file written just before fusermount3 -u survives"

# kill -9 after acknowledged writes
python3 - "$M" <<'PY'
import os, sys
M = sys.argv[1]
fd = os.open(M + "/tmp/k9.1", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
os.write(fd, b"From: k@example.org\nSubject: killed\n\nbody\n"); os.fsync(fd); os.close(fd)
os.rename(M + "/tmp/k9.1", M + "/cur/k9.1:2,S")
os.rename(M + "/cur/1700000000.M1P1.host,S=5029:2,FS", M + "/cur/1700000000.M1P1.host,S=5029:2,FRS")
with open(M + "/dovecot-uidlist", "a") as f:
    f.write("9 :k9.1\n"); f.flush(); os.fsync(f.fileno())
PY
ok $? "acknowledged writes"
snapshot >"$T_TMP/before9"
mnt_kill9
mnt_start; ok $? "remount after kill -9"
snapshot >"$T_TMP/after9"
diff "$T_TMP/before9" "$T_TMP/after9" >&2; ok $? "everything acknowledged survived kill -9"

# coffer verify while mounted, with control files in INBOX and in a folder:
# their blobs are counted (no orphan, no refcount mismatch) and decrypted
"$COFFER_BIN" verify --json >"$T_TMP/verify.json"; vrc=$?
python3 - "$T_TMP/verify.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
assert v["ok"] and v["problems"] == [] and v["messages"] >= 5, v
PY
[ $? = 0 ] && [ $vrc = 0 ]; ok $? "coffer verify passes on the mounted store with control files (rc $vrc)"

# listings carry each entry's attributes (READDIRPLUS, mount-ll.c): the
# inode number and attributes a listing gives are those stat() gives, and a
# name renamed away between opendir() and the read of the listing is not
# bound to anything (its new name is)
py <<'PY'
import os, sys
M = sys.argv[1]
for d in (M + "/cur", M + "/new", M):
    for e in os.scandir(d):
        st = os.stat(e.path)
        assert e.inode() == st.st_ino, (e.path, e.inode(), st.st_ino)
        est = e.stat()
        assert (est.st_size, est.st_mtime_ns, est.st_mode) == (st.st_size, st.st_mtime_ns, st.st_mode), e.path
m = sorted(os.listdir(M + "/cur"))[0]
want = open(M + "/cur/" + m, "rb").read()
it = os.scandir(M + "/cur")  # opendir: the daemon lists the names now
os.rename(M + "/cur/" + m, M + "/cur/" + m.split(":")[0] + ":2,FS")
seen = {e.name: e for e in it}
it.close()
assert not os.path.exists(M + "/cur/" + m), "the old name is gone"
new = M + "/cur/" + m.split(":")[0] + ":2,FS"
assert open(new, "rb").read() == want and os.stat(new).st_size == len(want), "the new name reads"
os.rename(new, M + "/cur/" + m)
PY
ok $? "a listing's inode numbers and attributes are stat()'s; a name renamed during a listing is not bound"

# files unlinked or renamed over while open live on until their last close,
# as on a local file system (mount-hidden.c): fstat, read, mmap. The kernel
# keeps pages across opens, so each read first drops the file's cached pages
# (FADV_DONTNEED): it must reach the daemon's hidden copy
py <<'PY'
import mmap, os, sys, time
M = sys.argv[1]
def cold(fd):
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
c = M + "/dovecot.list.index.log"
with open(c, "wb") as f:
    f.write(b"old log " * 512)
fd = os.open(c, os.O_RDONLY)
mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
with open(M + "/log.tmp", "wb") as f:
    f.write(b"new log")
os.rename(M + "/log.tmp", c)
st = os.fstat(fd)
assert st.st_size == 4096 and st.st_nlink == 0, st
assert mm[:8] == b"old log ", "mmap of the replaced file"
mm.close(); cold(fd)
assert os.pread(fd, 8, 4088) == b"old log ", "read of the replaced file"
mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
assert mm[:8] == b"old log " and mm[4088:] == b"old log ", "mmap of the replaced file"
assert open(c, "rb").read() == b"new log", "the name has the new content"
mm.close(); os.close(fd)
lk = M + "/mailboxes.lock"
fd = os.open(lk, os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, b"pid")
os.unlink(lk)
assert os.fstat(fd).st_nlink == 0 and not os.path.exists(lk), "unlinked lock"
os.close(fd)
m = sorted(os.listdir(M + "/cur"))[0]
want = open(M + "/cur/" + m, "rb").read()
fd = os.open(M + "/cur/" + m, os.O_RDONLY)
os.unlink(M + "/cur/" + m)
assert m not in os.listdir(M + "/cur"), "expunged"
time.sleep(2.5)  # the trash collector's tick has unlinked the blob's file
cold(fd)
assert os.fstat(fd).st_size == len(want) and os.pread(fd, len(want) + 1, 0) == want, "expunged message still reads"
os.close(fd)
names = os.listdir(M) + os.listdir(M + "/cur") + os.listdir(M + "/tmp")
assert not [n for n in names if n.startswith(".fuse_hidden")], names
for bad in (M + "/.fuse_hidden0000000100000001", M + "/tmp/.fuse_hidden0000000100000002"):
    try:
        os.mkdir(bad) if bad.count("/") == M.count("/") + 1 else os.close(os.open(bad, os.O_CREAT | os.O_WRONLY))
        sys.exit("created " + bad)
    except PermissionError:
        pass
PY
ok $? "a file unlinked or replaced while open still fstat()s, reads and maps (old content, nlink 0), and vanishes at its last close"

# Dovecot's log rotation: link(log, log.2), rename a new log over the old
# one, while a process still appends to the old one; as with one inode, the
# appends reach log.2 (the kernel's caches of log.2 follow within a second)
py <<'PY'
import os, sys, time
M = sys.argv[1]
log = M + "/dovecot.index.log"
with open(log, "wb") as f:
    f.write(b"A" * 100)
fd = os.open(log, os.O_WRONLY | os.O_APPEND)
os.link(log, log + ".2")
assert open(log + ".2", "rb").read() == b"A" * 100
with open(log + ".newlock", "wb") as f:
    f.write(b"NEW")
os.rename(log + ".newlock", log)
os.write(fd, b"B" * 50)
os.close(fd)
time.sleep(1.5)
got = open(log + ".2", "rb").read()
assert got == b"A" * 100 + b"B" * 50, (len(got), got[-60:])
assert os.stat(log + ".2").st_size == 150
assert open(log, "rb").read() == b"NEW"
PY
ok $? "link(log, log.2), rename over the open log, append to it: the append reaches log.2"
sleep 1.5 # the flusher writes the tombstones out
c ls "$A" --json; expect_success || fail "ls"

# no plaintext on disk
canary_free "$S" "$CANARY" "dovecot-uidlist" "1700000000.M1P1.host" "Sent Items" "maildirfolder"
ok $? "no canary, file name or folder name in plaintext under the store"
if command -v strings >/dev/null; then
	! find "$S" -type f -exec strings -a {} + | grep -qF "$CANARY"; ok $? "strings finds no canary"
fi
rm -f /tmp/.coffer-mount-cache-*

# permissions: only the allowed user (and root) get in
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	mnt_stop
	id coffer-mnt-a >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin coffer-mnt-a
	id coffer-mnt-b >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin coffer-mnt-b
	mnt_start --allow-user coffer-mnt-a; ok $? "mount --allow-user"
	ua=$(id -u coffer-mnt-a) ub=$(id -u coffer-mnt-b)
	setpriv --reuid="$ua" --regid="$(id -g coffer-mnt-a)" --clear-groups ls "$M/cur" >/dev/null; ok $? "the allowed user lists cur/"
	setpriv --reuid="$ua" --regid="$(id -g coffer-mnt-a)" --clear-groups cat "$M/cur/k9.1:2,S" | grep -q killed; ok $? "the allowed user reads a message"
	out=$(setpriv --reuid="$ub" --regid="$(id -g coffer-mnt-b)" --clear-groups ls "$M" 2>&1)
	echo "$out" | grep -q "Permission denied"; ok $? "another user gets EACCES ($out)"
	[ "$(stat -c %U "$M/cur/k9.1:2,S")" = coffer-mnt-a ]; ok $? "files belong to the allowed user"
	mnt_stop
else
	pass "# SKIP permissions need root"
fi
done_testing
