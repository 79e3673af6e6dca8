#!/usr/bin/env python3
"""crash-matrix.py: kill -9 every Coffer writer at random points, then check.

Writers (one store and snapshot target each, so a failure names its writer):

  deliver   three concurrent `coffer deliver` of 1 KiB..1 MiB messages
  import    `coffer import` of a fresh 30-message Maildir++ tree (2 folders);
            after the checks the import is re-run to completion (resume)
  mount     the FUSE mount under a Dovecot IMAP APPEND storm (two clients);
            the daemon is killed, the dead mount cleared and remounted
  snapshot  `coffer snapshot create` after an import of new mail
  prune     `coffer snapshot prune` with the clock moved so snapshots expire
  purge     `coffer purge NAME --now --yes --terminate` of an account with
            mail and snapshots, while a keeper account holds acknowledged mail
  worker    `coffer worker --once` a day later each time (daily snapshot,
            prune, metadata expiry, auto-shred of terminated accounts, trash)

Each iteration starts the writer, kills it (SIGKILL) after a random delay in
[0, 1.2 x the duration of an uninterrupted run], and then, after EVERY kill:

  1. `coffer verify` passes; if not, `coffer verify --repair` must make it
     pass (counted as a repair) without losing acknowledged data;
  2. `coffer snapshot verify --read-data=10` passes (once a snapshot exists);
  3. every acknowledged message is present (deliver exit 0, import exit 0,
     IMAP APPEND OK), and every message once seen stays;
  4. no partial message is visible: every message the killed writer had in
     flight that is now listed is read back (`coffer cat`) and must equal
     what was sent, byte for byte; and `verify` decrypts every blob to its
     authenticated end and compares its size with the index.

At the end every account is exported (`coffer export --to`) and every file
compared with what was sent (by the token in its Subject): nothing partial,
nothing duplicated. A run that finished before its kill counts as completed
(not as a kill); iterations continue until --kills kills per writer.

Output: TAP (one line per check group per writer, and a final summary), and
with --json FILE the counts: kills, acknowledged, lost (must be 0), repairs.
Exit 0 if all passed, 1 otherwise, 77 (skip) only for the mount writer's
facilities when it is the only writer asked for.

Environment / options: --coffer BIN (default $COFFER_BIN), --work DIR
(scratch, default a temp dir), --kills N (default $CRASH_KILLS or 5),
--writers a,b,c (default all), --seed S.
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

COFFER = None
TAP_N = 0
TAP_FAILED = 0


def tap(cond, desc, info=None):
    global TAP_N, TAP_FAILED
    TAP_N += 1
    if not cond:
        TAP_FAILED += 1
    print(("ok" if cond else "not ok"), TAP_N, "-", desc, flush=True)
    if not cond and info:
        for line in str(info).splitlines()[:30]:
            print("#", line, flush=True)


def diag(msg):
    for line in str(msg).splitlines():
        print("#", line, flush=True)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def gen_message(token, size, rnd):
    """A message whose Subject carries token, size bytes (about)."""
    head = ("From: Crash Tester <crash@example.org>\nTo: keeper@example.org\n"
            "Subject: crash %s\nMessage-ID: <%s@crash.example.org>\n"
            "Date: Mon, 04 Mar 2024 10:00:00 +0000\n\n" % (token, token)).encode()
    # compressible and incompressible parts, so zstd and raw chunks both occur
    body = bytearray()
    while len(body) < max(0, size - len(head)):
        if rnd.random() < 0.5:
            body += (b"line %d of %s: the quick brown fox\n" % (len(body), token.encode()))
        else:
            body += os.urandom(57).hex().encode() + b"\n"
    return head + bytes(body[:max(0, size - len(head))])


class Store:
    """One store, its key file and its snapshot target."""

    def __init__(self, root, name, conf_extra=None):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.path = os.path.join(self.dir, "store")
        self.key = os.path.join(self.dir, "coffer.key")
        self.target = os.path.join(self.dir, "target")
        self.env = dict(os.environ)
        for k in ("COFFER_STORE", "COFFER_KEY_FILE", "COFFER_NOW"):
            self.env.pop(k, None)
        r = self.run("init")
        if r.returncode != 0:
            raise RuntimeError("init: " + r.stderr.decode(errors="replace"))
        conf = os.path.join(self.path, "coffer.conf")
        text = open(conf).read()
        text = text.replace('# snapshot_target = "/srv/coffer-snapshots"',
                            'snapshot_target = "%s"' % self.target)
        for k, v in (conf_extra or {}).items():
            lines = [l for l in text.splitlines() if not l.startswith(k + " =")]
            lines.append("%s = %s" % (k, v))
            text = "\n".join(lines) + "\n"
        with open(conf, "w") as f:
            f.write(text)
        # acknowledged: account -> {token: sha}; seen: once listed (may be unacked)
        self.acked = {}
        self.seen = {}
        self.sent = {}      # token -> sha of everything ever sent
        self.acked_snapshots = set()

    def argv(self, *args):
        return [COFFER, "--store", self.path, "--key-file", self.key] + list(args)

    def run(self, *args, stdin=None, now=None, timeout=600):
        env = self.env
        if now is not None:
            env = dict(env, COFFER_NOW=now)
        return subprocess.run(self.argv(*args), input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, timeout=timeout)

    def popen(self, *args, stdin=subprocess.DEVNULL, now=None):
        env = self.env
        if now is not None:
            env = dict(env, COFFER_NOW=now)
        return subprocess.Popen(self.argv(*args), stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)

    def ack(self, acct, token, digest):
        self.acked.setdefault(acct, {})[token] = digest

    def listing(self, acct, folders=("INBOX",)):
        """token -> [(folder, uid)] of the account's messages."""
        out = {}
        for folder in folders:
            r = self.run("ls", acct, folder, "--json")
            if r.returncode != 0:
                if b"no folder" in r.stderr.lower() or r.returncode == 66:
                    continue
                raise RuntimeError("ls %s %s: %s" % (acct, folder, r.stderr.decode(errors="replace")))
            for m in json.loads(r.stdout or b"[]"):
                subj = m.get("subject") or ""
                tok = subj[6:] if subj.startswith("crash ") else None
                if tok:
                    out.setdefault(tok, []).append((folder, m["uid"]))
        return out


class Stats:
    def __init__(self, writer):
        self.writer = writer
        self.kills = 0
        self.completed = 0
        self.acked = 0
        self.lost = 0
        self.partial = 0
        self.duplicates = 0
        self.repairs = 0
        self.verify_failures = 0
        self.snapverify_failures = 0
        self.other_failures = 0
        self.problems = []

    def fail(self, what):
        if len(self.problems) < 40:
            self.problems.append(what)

    def ok(self):
        return (self.lost == 0 and self.partial == 0 and self.duplicates == 0 and
                self.verify_failures == 0 and self.snapverify_failures == 0 and
                self.other_failures == 0)

    def as_dict(self):
        d = dict(self.__dict__)
        d["problems"] = self.problems[:10]
        return d


def kill_after(procs, delay):
    """Sleeps delay seconds, then SIGKILLs the processes still running.
    Returns (killed, finished) lists."""
    end = time.monotonic() + delay
    while time.monotonic() < end and any(p.poll() is None for p in procs):
        time.sleep(min(0.002, max(0, end - time.monotonic())))
    killed, finished = [], []
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed.append(p)
        else:
            finished.append(p)
    for p in procs:
        p.wait()
    return killed, finished


# ---- the checks run after every kill ----

def check_store(st, stats, folders_of, in_flight, where):
    """verify (+ repair), snapshot verify, acknowledged present, in-flight
    messages complete if visible."""
    # one instant for the three runs: a blob that crosses verify's grace
    # period (by mtime) between them must not read as one the repair missed
    now = st.env.get("COFFER_NOW") or str(int(time.time()))
    r = st.run("verify", "--json", now=now)
    if r.returncode != 0:
        rep = st.run("verify", "--repair", "--json", now=now)
        again = st.run("verify", "--json", now=now)
        if again.returncode == 0:
            stats.repairs += 1
            diag("%s: verify needed --repair: %s" % (where, r.stdout.decode(errors="replace")[:400]))
        else:
            stats.verify_failures += 1
            stats.fail("%s: verify fails even after --repair: %s %s" % (
                where, again.stdout.decode(errors="replace")[:600],
                again.stderr.decode(errors="replace")[:300]))
    snapdir = os.path.join(st.target, "snap")
    if os.path.isdir(snapdir) and os.listdir(snapdir):
        sv = st.run("snapshot", "verify", "--read-data=10")
        if sv.returncode != 0:
            stats.snapverify_failures += 1
            stats.fail("%s: snapshot verify --read-data=10 exit %d: %s %s" % (
                where, sv.returncode, sv.stdout.decode(errors="replace")[-600:],
                sv.stderr.decode(errors="replace")[-300:]))
    for acct, folders in folders_of.items():
        try:
            listing = st.listing(acct, folders)
        except RuntimeError as e:
            stats.other_failures += 1
            stats.fail("%s: %s" % (where, e))
            continue
        for tok in st.acked.get(acct, {}):
            if tok not in listing:
                stats.lost += 1
                stats.fail("%s: acknowledged message %s of %s is missing" % (where, tok, acct))
        for tok in st.seen.get(acct, {}):
            if tok not in listing and tok not in st.acked.get(acct, {}):
                stats.lost += 1
                stats.fail("%s: message %s of %s was visible before and vanished" % (where, tok, acct))
        for tok, places in listing.items():
            if len(places) > 1:
                stats.duplicates += 1
                stats.fail("%s: message %s of %s stored %d times" % (where, tok, acct, len(places)))
            if tok in in_flight:
                folder, uid = places[0]
                c = st.run("cat", acct, folder, str(uid))
                if c.returncode != 0 or sha(c.stdout) != in_flight[tok]:
                    stats.partial += 1
                    stats.fail("%s: in-flight message %s of %s is visible but not whole "
                               "(cat exit %d, %d bytes)" % (where, tok, acct, c.returncode,
                                                            len(c.stdout)))
            st.seen.setdefault(acct, {})[tok] = True


def final_check(st, stats, accounts):
    """Export every account and compare every message with what was sent."""
    for acct in accounts:
        out = os.path.join(st.dir, "final-export-" + acct)
        shutil.rmtree(out, ignore_errors=True)
        r = st.run("export", acct, "--to", out)
        if r.returncode != 0:
            stats.other_failures += 1
            stats.fail("final export of %s: exit %d %s" % (acct, r.returncode,
                                                          r.stderr.decode(errors="replace")))
            continue
        seen = {}
        for root, _dirs, files in os.walk(out):
            if os.path.basename(root) not in ("cur", "new"):
                continue
            for f in files:
                data = open(os.path.join(root, f), "rb").read()
                tok = None
                for line in data.split(b"\n", 8)[:8]:
                    if line.startswith(b"Subject: crash "):
                        tok = line[15:].decode(errors="replace").strip()
                if tok is None:
                    continue
                seen[tok] = seen.get(tok, 0) + 1
                if tok not in st.sent or st.sent[tok] != sha(data):
                    stats.partial += 1
                    stats.fail("final: message %s of %s differs from what was sent" % (tok, acct))
        for tok, n in seen.items():
            if n > 1:
                stats.duplicates += 1
                stats.fail("final: message %s of %s exported %d times" % (tok, acct, n))
        for tok in st.acked.get(acct, {}):
            if tok not in seen:
                stats.lost += 1
                stats.fail("final: acknowledged %s of %s not exported" % (tok, acct))
        shutil.rmtree(out, ignore_errors=True)


# ---- writers ----

class Writer:
    name = "?"
    folders = ("INBOX",)

    def __init__(self, root, rnd, kills):
        self.root = root
        self.rnd = rnd
        self.want_kills = kills
        self.stats = Stats(self.name)
        self.seq = 0
        self.duration = None

    def token(self):
        self.seq += 1
        return "%s-%06d-%08x" % (self.name, self.seq, self.rnd.getrandbits(32))

    def delay(self):
        d = self.duration or 0.2
        return self.rnd.uniform(0, d * 1.2)

    def measure(self, start):
        """Times one uninterrupted run of start() (which returns procs)."""
        t0 = time.monotonic()
        procs = start()
        for p in procs:
            p.wait()
        self.duration = max(0.005, time.monotonic() - t0)
        return procs

    def run(self):
        self.setup()
        attempts = 0
        t0 = time.monotonic()
        next_report = 25
        while self.stats.kills < self.want_kills and attempts < self.want_kills * 6 + 10:
            attempts += 1
            self.iteration()
            if self.stats.kills >= next_report:
                next_report += 25
                s = self.stats
                diag("progress %s: %d kills, %d completed, %d acknowledged, %d lost, %d partial, "
                     "%d repairs, %d verify / %d snapshot verify failures, %d other, %.0f s" % (
                         self.name, s.kills, s.completed, s.acked, s.lost, s.partial, s.repairs,
                         s.verify_failures, s.snapverify_failures, s.other_failures,
                         time.monotonic() - t0))
        self.finish()
        return self.stats


class DeliverWriter(Writer):
    name = "deliver"
    acct = "keeper@example.org"

    def setup(self):
        self.st = Store(self.root, self.name)
        self.st.run("account", "add", self.acct)
        msgs = [self.prepare() for _ in range(3)]
        procs = self.measure(lambda: self.start(msgs))
        self.collect(msgs, procs, [])
        self.check({}, "deliver setup")

    def prepare(self):
        tok = self.token()
        size = int(2 ** self.rnd.uniform(10, 20))  # 1 KiB .. 1 MiB
        data = gen_message(tok, size, self.rnd)
        self.st.sent[tok] = sha(data)
        return tok, data

    def start(self, msgs):
        procs = []
        for tok, data in msgs:
            p = self.st.popen("deliver", self.acct, stdin=subprocess.PIPE)
            procs.append(p)
        for (tok, data), p in zip(msgs, procs):
            try:
                p.stdin.write(data)
                p.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        return procs

    def collect(self, msgs, procs, killed):
        in_flight = {}
        for (tok, data), p in zip(msgs, procs):
            if p in killed:
                in_flight[tok] = sha(data)
            elif p.returncode == 0:
                self.st.ack(self.acct, tok, sha(data))
                self.stats.acked += 1
            else:
                in_flight[tok] = sha(data)
                self.stats.other_failures += 1
                self.stats.fail("deliver exit %d: %s" % (p.returncode, p.stderr.read()[:300]))
        return in_flight

    def check(self, in_flight, where):
        check_store(self.st, self.stats, {self.acct: self.folders}, in_flight, where)

    def iteration(self):
        msgs = [self.prepare() for _ in range(3)]
        # writing stdin happens before the kill window starts: the delay
        # then covers reading, encrypting, fsync and the commit
        procs = self.start(msgs)
        killed, _ = kill_after(procs, self.delay())
        self.stats.kills += len(killed)
        if not killed:
            self.stats.completed += 1
        in_flight = self.collect(msgs, procs, killed)
        self.check(in_flight, "deliver kill %d" % self.stats.kills)

    def finish(self):
        final_check(self.st, self.stats, [self.acct])


def make_maildir(d, tokens_data, rnd):
    shutil.rmtree(d, ignore_errors=True)
    for sub in ("", "/.Work"):
        for leaf in ("cur", "new", "tmp"):
            os.makedirs(d + sub + "/" + leaf)
    for i, (tok, data) in enumerate(tokens_data):
        sub = "" if i % 3 else "/.Work"
        leaf = "cur" if i % 2 else "new"
        # unique names must differ across batches: import skips a name it
        # already holds (resume)
        name = "%d.M%dP%d.%s%s" % (1700000000 + i, i, os.getpid(), tok.replace("-", "_"),
                                   ":2,S" if leaf == "cur" else "")
        with open(d + sub + "/" + leaf + "/" + name, "wb") as f:
            f.write(data)


class ImportWriter(DeliverWriter):
    name = "import"
    acct = "keeper@example.org"
    folders = ("INBOX", "Work")
    batch = 30

    def setup(self):
        self.st = Store(self.root, self.name)
        self.st.run("account", "add", self.acct)
        self.md = os.path.join(self.st.dir, "maildir")
        msgs = self.prepare_batch()
        procs = self.measure(lambda: [self.st.popen("import", self.acct, self.md)])
        self.ack_batch(msgs, procs[0])
        self.check({}, "import setup")

    def prepare_batch(self):
        msgs = []
        for _ in range(self.batch):
            tok = self.token()
            data = gen_message(tok, int(2 ** self.rnd.uniform(9, 17)), self.rnd)
            self.st.sent[tok] = sha(data)
            msgs.append((tok, data))
        make_maildir(self.md, msgs, self.rnd)
        return msgs

    def ack_batch(self, msgs, p):
        if p.returncode == 0:
            for tok, data in msgs:
                self.st.ack(self.acct, tok, sha(data))
            self.stats.acked += len(msgs)
        else:
            self.stats.other_failures += 1
            self.stats.fail("import exit %d: %s" % (p.returncode, p.stderr.read()[:300]))

    def iteration(self):
        msgs = self.prepare_batch()
        p = self.st.popen("import", self.acct, self.md)
        killed, _ = kill_after([p], self.delay())
        if killed:
            self.stats.kills += 1
            in_flight = {tok: sha(data) for tok, data in msgs}
            self.check(in_flight, "import kill %d" % self.stats.kills)
            # resume: the same import again, to completion
            p = self.st.popen("import", self.acct, self.md)
            p.wait()
        else:
            self.stats.completed += 1
        self.ack_batch(msgs, p)
        self.check({}, "import resume after kill %d" % self.stats.kills)


class SnapshotWriter(ImportWriter):
    name = "snapshot"
    batch = 40

    def setup(self):
        self.st = Store(self.root, self.name)
        self.st.run("account", "add", self.acct)
        self.md = os.path.join(self.st.dir, "maildir")
        msgs = self.prepare_batch()
        p = self.st.popen("import", self.acct, self.md)
        p.wait()
        self.ack_batch(msgs, p)
        self.st.run("snapshot", "create")
        msgs = self.prepare_batch()
        p = self.st.popen("import", self.acct, self.md)
        p.wait()
        self.ack_batch(msgs, p)
        self.measure(lambda: [self.st.popen("snapshot", "create")])
        self.check({}, "snapshot setup")

    def snapshot_ids(self):
        r = self.st.run("snapshot", "list", "--json")
        if r.returncode != 0:
            return None
        return [s["id"] for s in json.loads(r.stdout or b"[]")]

    def iteration(self):
        msgs = self.prepare_batch()
        p = self.st.popen("import", self.acct, self.md)
        p.wait()
        self.ack_batch(msgs, p)
        before = self.snapshot_ids() or []
        p = self.st.popen("snapshot", "create")
        killed, _ = kill_after([p], self.delay())
        if killed:
            self.stats.kills += 1
        else:
            self.stats.completed += 1
            if p.returncode != 0:
                self.stats.other_failures += 1
                self.stats.fail("snapshot create exit %d: %s" % (p.returncode, p.stderr.read()[:300]))
        after = self.snapshot_ids()
        if after is None or not set(before) <= set(after):
            self.stats.other_failures += 1
            self.stats.fail("snapshot kill %d: snapshots lost: before %s after %s" % (
                self.stats.kills, before, after))
        self.check({}, "snapshot kill %d" % self.stats.kills)


def day(n, hours=3):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1798761600 + n * 86400 + hours * 3600))


class PruneWriter(SnapshotWriter):
    name = "prune"
    batch = 25

    def setup(self):
        self.st = Store(self.root, self.name, {"data_retention_days": "3"})
        self.st.run("account", "add", self.acct)
        self.md = os.path.join(self.st.dir, "maildir")
        self.day = 0
        for _ in range(3):
            self.grow()
        self.day += 2
        self.measure(lambda: [self.st.popen("snapshot", "prune", now=day(self.day))])
        self.check({}, "prune setup")

    def grow(self):
        msgs = self.prepare_batch()
        p = self.st.popen("import", self.acct, self.md)
        p.wait()
        self.ack_batch(msgs, p)
        r = self.st.run("snapshot", "create", now=day(self.day))
        if r.returncode != 0:
            self.stats.other_failures += 1
            self.stats.fail("prune: snapshot create exit %d: %s" % (r.returncode, r.stderr[:300]))
        self.day += 1

    def listed(self):
        r = self.st.run("snapshot", "list", "--json")
        return json.loads(r.stdout or b"[]") if r.returncode == 0 else None

    def iteration(self):
        for _ in range(self.rnd.randint(1, 3)):
            self.grow()
        self.day += self.rnd.randint(0, 3)
        now = day(self.day)
        before = self.listed() or []
        p = self.st.popen("snapshot", "prune", now=now)
        killed, _ = kill_after([p], self.delay())
        if killed:
            self.stats.kills += 1
        else:
            self.stats.completed += 1
        after = self.listed()
        cutoff = self.day - 3
        keep = [s["id"] for s in before if s["time"] > day(cutoff)]
        if after is None or not set(keep) <= {s["id"] for s in after}:
            self.stats.other_failures += 1
            self.stats.fail("prune kill %d: unexpired snapshot lost: keep %s after %s" % (
                self.stats.kills, keep, after and [s["id"] for s in after]))
        self.check({}, "prune kill %d" % self.stats.kills)
        # the next prune completes and leaves the target sound
        r = self.st.run("snapshot", "prune", now=now)
        if r.returncode != 0:
            self.stats.other_failures += 1
            self.stats.fail("prune kill %d: the next prune: exit %d %s" % (
                self.stats.kills, r.returncode, r.stderr.decode(errors="replace")[:300]))
        self.check({}, "prune kill %d, after the next prune" % self.stats.kills)


class PurgeWriter(SnapshotWriter):
    name = "purge"
    batch = 15

    def setup(self):
        self.st = Store(self.root, self.name)
        self.st.run("account", "add", self.acct)
        self.md = os.path.join(self.st.dir, "maildir")
        self.victims = 0
        msgs = self.prepare_batch()
        p = self.st.popen("import", self.acct, self.md)
        p.wait()
        self.ack_batch(msgs, p)
        v = self.new_victim()
        self.measure(lambda: [self.st.popen("purge", v, "--now", "--yes", "--terminate")])
        self.check({}, "purge setup")

    def new_victim(self):
        self.victims += 1
        v = "victim%d@example.org" % self.victims
        self.st.run("account", "add", v)
        for i in range(8):
            tok = self.token()
            data = gen_message(tok, int(2 ** self.rnd.uniform(9, 16)), self.rnd)
            self.st.sent[tok] = sha(data)
            self.st.run("deliver", v, stdin=data)
        # the keeper gets new acknowledged mail too
        tok = self.token()
        data = gen_message(tok, 3000, self.rnd)
        self.st.sent[tok] = sha(data)
        if self.st.run("deliver", self.acct, stdin=data).returncode == 0:
            self.st.ack(self.acct, tok, sha(data))
            self.stats.acked += 1
        self.st.run("snapshot", "create")
        return v

    def iteration(self):
        v = self.new_victim()
        p = self.st.popen("purge", v, "--now", "--yes", "--terminate")
        killed, _ = kill_after([p], self.delay())
        if killed:
            self.stats.kills += 1
        else:
            self.stats.completed += 1
        self.check({}, "purge kill %d (before finishing)" % self.stats.kills)
        # finishing the purge: running it again completes (0) or finds it done (79)
        r = self.st.run("purge", v, "--now", "--yes", "--terminate")
        if r.returncode not in (0, 79):
            self.stats.other_failures += 1
            self.stats.fail("purge kill %d: re-running purge of %s: exit %d %s" % (
                self.stats.kills, v, r.returncode, r.stderr.decode(errors="replace")[:300]))
        sh = self.st.run("account", "show", v, "--json")
        if b"shredded" not in sh.stdout:
            self.stats.other_failures += 1
            self.stats.fail("purge kill %d: %s not shredded after the re-run: %s" % (
                self.stats.kills, v, sh.stdout[:300]))
        self.check({}, "purge kill %d (after finishing)" % self.stats.kills)


class WorkerWriter(SnapshotWriter):
    name = "worker"
    batch = 20

    def setup(self):
        self.st = Store(self.root, self.name, {"data_retention_days": "4",
                                               "termination_grace_days": "2",
                                               "metadata_retention_days": "3"})
        self.st.run("account", "add", self.acct)
        self.md = os.path.join(self.st.dir, "maildir")
        self.day = 0
        self.terms = 0
        self.feed()
        self.measure(lambda: [self.st.popen("worker", "--once", now=day(self.day))])
        self.check({}, "worker setup")

    def feed(self):
        self.day += 1
        msgs = self.prepare_batch()
        p = self.st.popen("import", self.acct, self.md)
        p.wait()
        self.ack_batch(msgs, p)
        if self.rnd.random() < 0.4:
            # an account to be auto-shredded after its grace
            self.terms += 1
            t = "leaver%d@example.org" % self.terms
            self.st.run("account", "add", t)
            tok = self.token()
            data = gen_message(tok, 5000, self.rnd)
            self.st.sent[tok] = sha(data)
            self.st.run("deliver", t, stdin=data)
            self.st.run("account", "terminate", t, now=day(self.day - 1))

    def iteration(self):
        self.feed()
        p = self.st.popen("worker", "--once", now=day(self.day))
        killed, _ = kill_after([p], self.delay())
        if killed:
            self.stats.kills += 1
        else:
            self.stats.completed += 1
            if p.returncode != 0:
                self.stats.other_failures += 1
                self.stats.fail("worker exit %d: %s" % (p.returncode, p.stderr.read()[:300]))
        self.check({}, "worker kill %d" % self.stats.kills)

    def finish(self):
        # a completed run after all the kills catches up and leaves things sound
        r = self.st.run("worker", "--once", now=day(self.day, 5))
        if r.returncode != 0:
            self.stats.other_failures += 1
            self.stats.fail("final worker run: exit %d %s" % (r.returncode, r.stderr[:300]))
        self.check({}, "worker final")
        final_check(self.st, self.stats, [self.acct])


# ---- the mount under a Dovecot APPEND storm ----

STORM = r'''
import imaplib, os, sys, time
port, user, pw, out, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
f = open(out, "a")
try:
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(user, pw)
    i = 0
    while True:
        tok = "%s-%05d" % (prefix, i)
        body = ("From: Storm <storm@example.org>\r\nSubject: crash %s\r\nMessage-ID: <%s@storm>\r\n\r\n" % (tok, tok)) + ("storm body %s\r\n" % tok) * (1 + i % 50)
        typ, _ = m.append("INBOX", None, None, body.encode())
        if typ != "OK":
            break
        f.write("%s %d\n" % (tok, len(body))); f.flush()
        i += 1
except Exception:
    pass
'''


def mount_usable():
    if os.geteuid() != 0:
        return "needs root (Dovecot switches to the mail user)"
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        return "/dev/fuse or fusermount3 missing (Debian: fuse3)"
    if not shutil.which("dovecot") or not os.path.exists("/usr/lib/dovecot/imap"):
        return "Dovecot missing (Debian: dovecot-imapd)"
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class MountWriter(DeliverWriter):
    name = "mount"
    acct = "storm@example.org"
    vm = "coffer-crash-vm"
    password = "storm-pw"

    def setup(self):
        self.st = Store(self.root, self.name)
        self.st.run("account", "add", self.acct)
        if subprocess.run(["id", self.vm], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", self.vm], check=True)
        self.mnt = os.path.join(self.st.dir, "mnt")
        os.makedirs(self.mnt, exist_ok=True)
        self.log = open(os.path.join(self.st.dir, "mount.log"), "ab")
        self.mount()
        d = self.dc = os.path.join(self.st.dir, "dovecot")
        for sub in ("run", "state", "home/" + self.acct, "volatile"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        subprocess.run(["chown", "-R", self.vm, os.path.join(d, "home"), os.path.join(d, "volatile")],
                       check=True)
        os.chmod(d, 0o755)
        self.port = free_port()
        with open(os.path.join(d, "passwd"), "w") as f:
            f.write("%s:{PLAIN}%s\n" % (self.acct, self.password))
        gid = subprocess.run(["id", "-gn", self.vm], stdout=subprocess.PIPE).stdout.decode().strip()
        with open(os.path.join(d, "dovecot.conf"), "w") as f:
            f.write("""protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_fsync = always
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={vm} gid={gid} home={d}/home/%u
}}
mail_location = maildir:{mnt}/%u:VOLATILEDIR={d}/volatile/%u
mmap_disable = yes
namespace inbox {{
  inbox = yes
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""".format(d=d, vm=self.vm, gid=gid, mnt=self.mnt, port=self.port))
        subprocess.run(["dovecot", "-c", os.path.join(d, "dovecot.conf")], check=True)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                time.sleep(0.1)
        self.acked_file = os.path.join(self.st.dir, "acked")
        open(self.acked_file, "w").close()
        self.acked_lines = 0
        self.duration = 2.0  # storms run 0.3 .. 2.7 s before the kill

    def mount(self):
        r = subprocess.run(self.st.argv("mount", self.mnt, "--allow-user", self.vm),
                           stdout=self.log, stderr=self.log, env=self.st.env)
        if r.returncode != 0:
            raise RuntimeError("coffer mount failed (exit %d)" % r.returncode)

    def daemon_pid(self):
        try:
            pid = int(open(os.path.join(self.st.path, "locks", "mount.lock")).read().split()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError):
            return None

    def clear_mount(self):
        subprocess.run(["umount", "-l", self.mnt], stderr=subprocess.DEVNULL)
        subprocess.run(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)

    def iteration(self):
        prefix = "mount-%04d-%06x" % (self.stats.kills, self.rnd.getrandbits(24))
        clients = [subprocess.Popen([sys.executable, "-c", STORM, str(self.port), self.acct,
                                     self.password, self.acked_file, "%s-%d" % (prefix, c)])
                   for c in range(2)]
        time.sleep(self.rnd.uniform(0.3, 2.7))
        pid = self.daemon_pid()
        if pid is None:
            self.stats.other_failures += 1
            self.stats.fail("mount daemon not running before kill %d" % self.stats.kills)
        else:
            os.kill(pid, signal.SIGKILL)
            self.stats.kills += 1
        for c in clients:
            try:
                c.wait(timeout=30)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
        self.clear_mount()
        # acknowledged: every APPEND that got OK
        lines = open(self.acked_file).read().splitlines()
        for line in lines[self.acked_lines:]:
            tok, _n = line.split()
            self.st.ack(self.acct, tok, None)
            self.stats.acked += 1
        self.acked_lines = len(lines)
        self.check({}, "mount kill %d" % self.stats.kills)
        try:
            self.mount()
        except RuntimeError as e:
            self.stats.other_failures += 1
            self.stats.fail("remount after kill %d: %s" % (self.stats.kills, e))

    def finish(self):
        # IMAP still sees every acknowledged APPEND after the last remount
        want = set(self.st.acked.get(self.acct, {}))
        got = set()
        try:
            import imaplib
            m = imaplib.IMAP4("127.0.0.1", self.port)
            m.login(self.acct, self.password)
            typ, d = m.select("INBOX")
            typ, d = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            for x in d:
                if isinstance(x, tuple):
                    for line in x[1].decode(errors="replace").splitlines():
                        if line.startswith("Subject: crash "):
                            got.add(line[15:].strip())
            m.logout()
        except Exception as e:  # noqa: BLE001
            self.stats.other_failures += 1
            self.stats.fail("final IMAP check: %r" % e)
        missing = want - got
        if missing:
            self.stats.lost += len(missing)
            self.stats.fail("final IMAP check: %d acknowledged APPENDs missing, e.g. %s" % (
                len(missing), sorted(missing)[:3]))
        subprocess.run(["dovecot", "-c", os.path.join(self.dc, "dovecot.conf"), "stop"],
                       stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        subprocess.run(self.st.argv("umount", self.mnt), stdout=self.log, stderr=self.log,
                       env=self.st.env)
        self.clear_mount()
        self.check({}, "mount final")

    def cleanup(self):
        if getattr(self, "dc", None):
            subprocess.run(["dovecot", "-c", os.path.join(self.dc, "dovecot.conf"), "stop"],
                           stderr=subprocess.DEVNULL)
        pid = self.daemon_pid() if getattr(self, "st", None) else None
        if pid:
            os.kill(pid, signal.SIGKILL)
        if getattr(self, "mnt", None):
            self.clear_mount()


WRITERS = {
    "deliver": DeliverWriter,
    "import": ImportWriter,
    "mount": MountWriter,
    "snapshot": SnapshotWriter,
    "prune": PruneWriter,
    "purge": PurgeWriter,
    "worker": WorkerWriter,
}


def main():
    global COFFER
    ap = argparse.ArgumentParser()
    ap.add_argument("--coffer", default=os.environ.get("COFFER_BIN"))
    ap.add_argument("--work")
    ap.add_argument("--kills", type=int, default=int(os.environ.get("CRASH_KILLS", "5")))
    ap.add_argument("--writers", default=os.environ.get("CRASH_WRITERS", ",".join(WRITERS)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CRASH_SEED", "0")) or None)
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not a.coffer or not os.access(a.coffer, os.X_OK):
        print("1..0 # SKIP coffer binary not found (set COFFER_BIN)")
        return 77
    COFFER = os.path.abspath(a.coffer)
    seed = a.seed or random.randrange(1, 2 ** 31)
    diag("seed %d (CRASH_SEED=%d reproduces the kill delays)" % (seed, seed))
    work = a.work or tempfile.mkdtemp(prefix="coffer-crash.")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    results = []
    names = [w for w in a.writers.split(",") if w]
    for wname in names:
        cls = WRITERS[wname]
        if wname == "mount":
            why = mount_usable()
            if why:
                print("ok %d - mount: # SKIP %s" % (TAP_N + 1, why), flush=True)
                globals()["TAP_N"] += 1
                results.append({"writer": "mount", "skipped": why})
                continue
        w = cls(work, random.Random(seed + len(results)), a.kills)
        t0 = time.monotonic()
        try:
            stats = w.run()
        except Exception as e:  # noqa: BLE001
            import traceback
            stats = w.stats
            stats.other_failures += 1
            stats.fail("harness error: %r\n%s" % (e, traceback.format_exc()[-1500:]))
        finally:
            if hasattr(w, "cleanup"):
                w.cleanup()
        secs = time.monotonic() - t0
        d = stats.as_dict()
        d["seconds"] = round(secs, 1)
        results.append(d)
        tap(stats.kills >= a.kills, "%s: %d kills (%d runs completed before the kill)" % (
            wname, stats.kills, stats.completed))
        tap(stats.verify_failures == 0, "%s: coffer verify passes after every kill (%d needed "
            "--repair)" % (wname, stats.repairs), "\n".join(stats.problems))
        tap(stats.snapverify_failures == 0, "%s: snapshot verify --read-data=10 passes after "
            "every kill" % wname, "\n".join(stats.problems))
        tap(stats.lost == 0, "%s: %d acknowledged messages, lost %d" % (
            wname, stats.acked, stats.lost), "\n".join(stats.problems))
        tap(stats.partial == 0 and stats.duplicates == 0, "%s: no partial or duplicated message "
            "visible (partial %d, duplicated %d)" % (wname, stats.partial, stats.duplicates),
            "\n".join(stats.problems))
        tap(stats.other_failures == 0, "%s: no other failure (%.0f s)" % (wname, secs),
            "\n".join(stats.problems))
    tot = {k: sum(r.get(k, 0) for r in results) for k in ("kills", "acked", "lost", "repairs")}
    diag("summary: %s" % json.dumps(tot))
    for r in results:
        diag("  %-9s %s" % (r.get("writer"), json.dumps({k: r.get(k) for k in (
            "kills", "completed", "acked", "lost", "partial", "repairs", "seconds", "skipped")
            if k in r})))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"seed": seed, "kills_per_writer": a.kills, "writers": results,
                       "total": tot}, f, indent=1)
    if not a.keep and not a.work:
        shutil.rmtree(work, ignore_errors=True)
    print("1..%d" % TAP_N)
    return 1 if TAP_FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
