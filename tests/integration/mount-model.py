#!/usr/bin/env python3
"""Model test of `coffer mount` (tests/integration/test-mount-model.sh).

One random sequence of file operations on control files at a mailbox's
level (Dovecot's index, log and lock files live there) runs on the mount
and, as the oracle, in a directory of a local file system; every answer
must agree: success or errno, written counts, fstat sizes, contents,
listings, and after an umount and a mount the names and contents. The
operations: create (O_EXCL), open (read, read-write, append), close,
pwrite, append, ftruncate, fstat, pread, fsync, rename, link, unlink, stat,
readdir, and now and then a pause that lets the daemon's flusher write
files out. Each sequence runs in a new folder. What is not compared, because
the mount does not promise it (docs/design.md, the mount): st_nlink, st_ino
and times. The mount makes a link(2) a copy that follows its source's
writes, and the kernel sees two files: so a copy is never written through
nor linked again, and one name of a file is never renamed onto another of
its names (a no-op in POSIX; through the mount the source name goes).
A sequence that differs is shrunk to a minimal one and printed.

usage: mount-model.py MOUNT_DIR LOCAL_DIR SEQUENCES OPS REMOUNT_COMMAND
(MODEL_SEED0: the first seed, default 0)
"""
import errno, os, random, subprocess, sys, time

M, L, SEEDS, OPS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
REMOUNT = sys.argv[5] if len(sys.argv) > 5 else None
NAMES = ["dovecot.a", "dovecot.b", "dovecot.c", "dovecot.a.2", "dovecot.x.lock"]
KINDS = ["create", "create", "open", "open", "close", "write", "write", "append", "truncate",
         "fstat", "pread", "pread", "rename", "rename", "link", "unlink", "unlink", "stat",
         "list", "fsync", "fsync", "sleep"]
RUN = [0]


class Mismatch(Exception):
    pass


def gen(seed, n):
    r = random.Random(seed)
    ops = []
    for _ in range(n):
        k = r.choice(KINDS)
        if k == "sleep" and r.random() > 0.1:
            k = "fsync"
        ops.append((k, r.choice(NAMES), r.choice(NAMES), r.random(), r.randrange(3),
                    r.choice([1, 7, 100, 3000]), r.choice([0, 3, 200, 5000]),
                    r.choice([0, 5, 50, 4000]), r.randrange(97, 123)))
    return ops


def e2s(fn):
    try:
        return ("ok", fn())
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, e.errno))


def same_inode(p, q):
    try:
        return os.stat(p).st_ino == os.stat(q).st_ino
    except OSError:
        return False


def execute(ops, remount=False):
    RUN[0] += 1
    sub = ".m%d_%d" % (os.getpid(), RUN[0])
    dm, dl = os.path.join(M, sub), os.path.join(L, sub)
    os.mkdir(dm)
    os.mkdir(dl)
    fds, role, linked = [], {}, set()  # fds: [mount fd, local fd, role, writable, append]

    def both(fn):
        """fn(dir) on the mount and locally: the two answers."""
        return e2s(lambda: fn(dm)), e2s(lambda: fn(dl))

    def check(what, a, b):
        if a != b:
            raise Mismatch("%s: mount %r, local %r" % (what, a, b))

    def opened(what, a, b, r, writable, append):
        """Keeps the pair of descriptors both opened, or closes the one."""
        if a[0] == "ok" and b[0] == "ok":
            fds.append([a[1], b[1], r, writable, append])
        else:
            for x in (a, b):
                if x[0] == "ok":
                    os.close(x[1])
        check(what, a if a[0] == "err" else "ok", b if b[0] == "err" else "ok")

    def close(f):
        os.close(f[0])
        os.close(f[1])
        fds.remove(f)

    try:
        for (k, n, n2, sel, mode, dlen, off, size, ch) in ops:
            f = fds[int(sel * len(fds))] if fds else None
            if k == "create":
                a, b = both(lambda d: os.open(os.path.join(d, n),
                                              os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
                opened("create " + n, a, b, "orig", True, False)
                if a[0] == "ok" and b[0] == "ok":
                    role[n] = "orig"
            elif k == "open":
                fl = [os.O_RDONLY, os.O_RDWR, os.O_RDWR | os.O_APPEND][mode]
                a, b = both(lambda d: os.open(os.path.join(d, n), fl))
                opened("open " + n, a, b, role.get(n, "orig"), fl != os.O_RDONLY,
                       bool(fl & os.O_APPEND))
            elif k == "sleep":
                time.sleep(1.3)  # the flusher writes control files out each second
            elif f is None and k in ("close", "write", "append", "truncate", "fstat", "pread",
                                     "fsync"):
                continue
            elif k == "close":
                close(f)
            elif k in ("write", "append", "truncate"):
                if not f[3] or f[2] == "copy":
                    continue
                data = bytes([ch]) * dlen
                if k == "truncate":
                    call = lambda fd: os.ftruncate(fd, size)
                elif k == "append" or f[4]:
                    call = lambda fd: os.write(fd, data)
                else:
                    call = lambda fd: os.pwrite(fd, data, off)
                check(k, e2s(lambda: call(f[0])), e2s(lambda: call(f[1])))
            elif k == "fstat":
                check("fstat size", os.fstat(f[0]).st_size, os.fstat(f[1]).st_size)
            elif k == "pread":
                check("pread", os.pread(f[0], 1 << 20, 0), os.pread(f[1], 1 << 20, 0))
            elif k == "fsync":
                os.fsync(f[0])
            elif k == "rename":
                if n != n2 and same_inode(os.path.join(dl, n), os.path.join(dl, n2)):
                    continue  # a no-op in POSIX; the kernel sees two files on the mount
                a, b = both(lambda d: os.rename(os.path.join(d, n), os.path.join(d, n2)))
                check("rename %s %s" % (n, n2), a, b)
                if a[0] == "ok" and n != n2:
                    role[n2] = role.pop(n, "orig")
            elif k == "link":
                try:
                    i = os.stat(os.path.join(dl, n)).st_ino
                except OSError:
                    continue
                if i in linked or role.get(n) == "copy" or os.path.exists(os.path.join(dl, n2)):
                    continue
                a, b = both(lambda d: os.link(os.path.join(d, n), os.path.join(d, n2)))
                check("link %s %s" % (n, n2), a, b)
                if a[0] == "ok":
                    linked.add(i)
                    role[n2] = "copy"
            elif k == "unlink":
                check("unlink " + n, *both(lambda d: os.unlink(os.path.join(d, n))))
                role.pop(n, None)
            elif k == "stat":
                check("stat " + n, *both(lambda d: os.stat(os.path.join(d, n)).st_size))
            elif k == "list":
                check("list", *both(lambda d: sorted(x for x in os.listdir(d) if x in NAMES)))
    finally:
        while fds:
            close(fds[0])
    if remount and REMOUNT:
        subprocess.run(REMOUNT, shell=True, check=True)
    names = sorted(x for x in os.listdir(dl) if x in NAMES)
    check("list at the end", sorted(x for x in os.listdir(dm) if x in NAMES), names)
    for n in names:
        check("content of %s at the end" % n,
              *both(lambda d: open(os.path.join(d, n), "rb").read()))


def fails(ops):
    try:
        execute(ops)
        return None
    except Mismatch as e:
        return str(e)


def shrink(ops, what, budget=300):
    """Delta debugging: drops chunks of ops while the same check still fails."""
    key = what.split(":")[0].split(" ")[0]
    n = 2
    while len(ops) >= 2 and budget > 0:
        chunk = max(1, len(ops) // n)
        for i in range(0, len(ops), chunk):
            budget -= 1
            cand = ops[:i] + ops[i + chunk:]
            w = fails(cand)
            if w and w.split(":")[0].split(" ")[0] == key:
                ops, n = cand, max(n - 1, 2)
                break
        else:
            if chunk == 1:
                break
            n = min(len(ops), n * 2)
    return ops


failed = 0
SEED0 = int(os.environ.get("MODEL_SEED0", "0"))
for seed in range(SEED0, SEED0 + SEEDS):
    ops = gen(seed, OPS)
    print("# seed %d" % seed, flush=True)
    try:
        execute(ops, remount=True)
        continue
    except Mismatch as e:
        what = str(e)
    failed += 1
    print("# seed %d: %s" % (seed, what), flush=True)
    small = shrink(ops, what)
    print("#   shrunk to %d ops: %s" % (len(small), fails(small)), flush=True)
    for o in small:
        print("#     %s %s %s sel=%.2f mode=%d len=%d off=%d size=%d" % o[:8], flush=True)
print("%d of %d sequences differed" % (failed, SEEDS))
sys.exit(1 if failed else 0)
