#!/bin/bash
# An open file keeps its identity on `coffer mount` while names move around
# it, and an unlinked one stays unlinked, as on a local file system; no
# Dovecot needed, only FUSE. Control files at a mailbox's level:
#   - once: link, unlink while open, link onto that name, unlink again
#     before the flusher writes the copy out; the name must be free after;
#   - for RACE_SECONDS (default 20), rename over: one process renames new
#     files of distinct sizes over one name; three others open the name and
#     check, several times per file, that fstat() and pread() answer for
#     the file they opened (its size, its content);
#   - for RACE_SECONDS, Dovecot's log rotation: one process appends records
#     to a log through an open descriptor and rotates it now and then (a
#     new log whose header records the old one's final size, unlink and
#     link(log, log.2), rename over log); three others follow it as
#     Dovecot's processes do: once a newer log names the old one's final
#     size, fstat() and read of their old descriptor, and the log.2 link of
#     that log, must give that size.
# Both failed before 2026-11-30 (docs/reliability.md): the daemon built a
# request's path and resolved it later, and a rename in between made an
# fstat() of the old log answer with the new log's size (Dovecot then found
# "Invalid transaction log size" and rebuilt its list index); and the
# unlinked .log.2 came back from the index, so the next link failed with
# EEXIST. Not a timed test: the duration only bounds how long the races are
# tried.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount-lib.sh"
mnt_require

A=race@example.org
SECS=${RACE_SECONDS:-20}
mnt_account "$A"
mnt_start; ok $? "coffer mount returns once mounted"

# An unlinked control file stays unlinked: a link onto the name of a file
# unlinked while open (a tombstone, whose index entry the next write-out
# deletes), unlinked in turn before its own write-out, once let the old
# index entry bring the first file back (link then failed with EEXIST).
python3 - "$MNT/$A" <<'PY'
import os, sys, time
d = sys.argv[1]
log, two = os.path.join(d, "dovecot.t.log"), os.path.join(d, "dovecot.t.log.2")
with open(log, "wb") as f:
    f.write(b"first log\n")
os.link(log, two)
time.sleep(1.5)                      # the flusher writes log.2 out
held = os.open(two, os.O_RDONLY)     # open: unlinked, it lives on hidden
os.unlink(two)
os.link(log, two)                    # onto the tombstone's name
held2 = os.open(two, os.O_RDONLY)
os.unlink(two)                       # before the copy's own write-out
gone = not os.path.exists(two)
os.link(log, two)
ok = gone and open(two, "rb").read() == b"first log\n"
os.close(held)
os.close(held2)
sys.exit(0 if ok else 1)
PY
ok $? "a control file unlinked after a link onto a tombstone stays unlinked"

python3 - "$MNT/$A" "$SECS" "$T_TMP/race" <<'PY'
import multiprocessing as mp
import os
import sys
import time

D, SECS, OUT = sys.argv[1], float(sys.argv[2]), sys.argv[3]
NAME = os.path.join(D, "dovecot.race")
LOG = os.path.join(D, "dovecot.rot.log")


def content(i):
    size = 64 + (i * 37) % 3000
    head = ("gen %08d size %06d\n" % (i, size)).encode()
    return head + bytes([65 + i % 26]) * (size - len(head))


def renamer(stop, count):
    i = 0
    while not stop.is_set():
        i += 1
        fd = os.open(NAME + ".new", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        os.write(fd, content(i))
        os.close(fd)
        os.rename(NAME + ".new", NAME)
    count.value = i


def holder(stop, bad, count):
    n = 0
    while not stop.is_set():
        try:
            fd = os.open(NAME, os.O_RDONLY)
        except FileNotFoundError:
            continue
        head = os.pread(fd, 25, 0)
        i, size = int(head[4:12]), int(head[18:24])
        want = content(i)
        for _ in range(20):
            st = os.fstat(fd)
            data = os.pread(fd, 4096, 0)
            if st.st_size != size or data != want:
                with bad.get_lock():
                    bad.value += 1
                    if bad.value <= 3:
                        print("# file %d: fstat %d bytes, read %d, opened %d" %
                              (i, st.st_size, len(data), size), flush=True)
                break
        os.close(fd)
        n += 1
    with count.get_lock():
        count.value += n


def header(seq, prev):
    return ("seq %08d prev %08d\n" % (seq, prev)).encode()


def rotator(stop, count):
    seq = 1
    fd = os.open(LOG + ".newlock", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    os.write(fd, header(seq, 0))
    os.close(fd)
    os.rename(LOG + ".newlock", LOG)
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND)
    k = 0
    while not stop.is_set():
        k += 1
        os.write(fd, ("record %d of log %d\n" % (k, seq)).encode() * (1 + k % 7))
        if k % 25 == 0:
            size = os.fstat(fd).st_size
            seq += 1
            nfd = os.open(LOG + ".newlock", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
            os.write(nfd, header(seq, size))
            os.close(nfd)
            try:
                os.unlink(LOG + ".2")
            except FileNotFoundError:
                pass
            os.link(LOG, LOG + ".2")
            os.rename(LOG + ".newlock", LOG)
            os.close(fd)
            fd = os.open(LOG, os.O_WRONLY | os.O_APPEND)
    os.close(fd)
    count.value = seq


def follower(stop, bad, count):
    def check(what, got, want):
        if got != want:
            with bad.get_lock():
                bad.value += 1
                if bad.value <= 3:
                    print("# %s: %d bytes, the newer log says %d" % (what, got, want), flush=True)
            return False
        return True

    n = 0
    while not stop.is_set():
        try:
            fd = os.open(LOG, os.O_RDONLY)
        except FileNotFoundError:
            continue
        seq = int(os.pread(fd, 30, 0)[4:12])
        while not stop.is_set():
            nfd = os.open(LOG, os.O_RDONLY)
            h = os.pread(nfd, 30, 0)
            os.close(nfd)
            nseq, prev = int(h[4:12]), int(h[18:26])
            if nseq == seq:
                os.fstat(fd)
                os.pread(fd, 65536, 0)
                continue
            if nseq == seq + 1:
                ok = check("fstat of the old log", os.fstat(fd).st_size, prev)
                ok = ok and check("read of the old log", len(os.pread(fd, 1 << 20, 0)), prev)
                try:
                    l2 = os.open(LOG + ".2", os.O_RDONLY)
                except FileNotFoundError:
                    l2 = -1
                if ok and l2 >= 0:
                    if int(os.pread(l2, 30, 0)[4:12]) == seq:
                        check("the old log's link log.2", os.fstat(l2).st_size, prev)
                    os.close(l2)
                n += 1
            break
        os.close(fd)
    with count.get_lock():
        count.value += n


if __name__ == "__main__":
    with open(OUT, "w") as out:
        for name, writer, reader in (("rename over", renamer, holder),
                                     ("log rotation", rotator, follower)):
            stop, bad = mp.Event(), mp.Value("i", 0)
            wrote, checked = mp.Value("i", 0), mp.Value("i", 0)
            ps = [mp.Process(target=writer, args=(stop, wrote))]
            ps += [mp.Process(target=reader, args=(stop, bad, checked)) for _ in range(3)]
            for p in ps:
                p.start()
            time.sleep(SECS)
            stop.set()
            for p in ps:
                p.join()
            failed = bad.value or any(p.exitcode for p in ps) or not wrote.value or not checked.value
            out.write("%d %s: %d written, %d checked, %d answered for another file\n" %
                      (1 if failed else 0, name, wrote.value, checked.value, bad.value))
PY
[ "$(wc -l <"$T_TMP/race" 2>/dev/null)" = 2 ]; ok $? "both races ran"
while read -r st what; do
	ok "$st" "$what"
done <"$T_TMP/race"

mnt_stop; ok $? "coffer umount"
done_testing
