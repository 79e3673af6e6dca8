#!/bin/bash
# bench/mount.sh: the mount's benchmarks from issue 4, side by side with
# plain ext4 (and gocryptfs when installed):
#   1. deliver: write tmp/, fsync, rename to new/ for every corpus message
#   2. read every message, cache warm (second pass) and cold (fresh mount /
#      dropped caches)
# Usage: bench/mount.sh [CORPUS_DIR] (a directory of message files; default:
# a generated corpus of N=${N:-6000} messages). Needs root for drop_caches.
# Prints one line per measure: "<fs> <measure> <seconds>".
set -euo pipefail
COFFER=${COFFER_BIN:-coffer}
N=${N:-6000}
W=$(mktemp -d /var/tmp/coffer-bench.XXXXXX)
trap 'mountpoint -q "$W/mnt" && fusermount3 -u "$W/mnt"; mountpoint -q "$W/gc" && fusermount3 -u "$W/gc"; rm -rf "$W"' EXIT
CORPUS=${1:-}
if [ -z "$CORPUS" ]; then
	CORPUS=$W/corpus
	mkdir -p "$CORPUS"
	python3 - "$CORPUS" "$N" <<'PY'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
words = [w.strip() for w in "lorem ipsum dolor sit amet mail server storage quota debian list patch review thanks regards".split()]
for i in range(n):
    body = "\n".join(" ".join(random.choice(words) for _ in range(12)) for _ in range(random.randint(20, 200)))
    open(os.path.join(d, "%05d" % i), "w").write("From: a%d@example.org\nTo: b@example.org\nSubject: message %d\n\n%s\n" % (i, i, body))
PY
fi
deliver() { # DIR: tmp, fsync, rename to new
	python3 - "$1" "$CORPUS" <<'PY'
import os, sys, time
d, c = sys.argv[1], sys.argv[2]
files = sorted(os.listdir(c))
t = time.time()
for i, f in enumerate(files):
    data = open(os.path.join(c, f), "rb").read()
    tmp = "%s/tmp/%d.M%dP1.bench" % (d, 1700000000 + i, i)
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.write(fd, data); os.fsync(fd); os.close(fd)
    os.rename(tmp, "%s/new/%d.M%dP1.bench" % (d, 1700000000 + i, i))
print("%.3f" % (time.time() - t))
PY
}
readall() { # DIR
	local t0 t1
	t0=$(date +%s.%N)
	find "$1/new" -type f -exec cat {} + >/dev/null
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc
}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# ext4 (or whatever /var/tmp is)
mkdir -p "$W/plain/tmp" "$W/plain/new" "$W/plain/cur"
echo "ext4 deliver $(deliver "$W/plain")"
drop; echo "ext4 read-cold $(readall "$W/plain")"
echo "ext4 read-warm $(readall "$W/plain")"

# coffer mount
export COFFER_STORE=$W/store COFFER_KEY_FILE=$W/key
"$COFFER" init >/dev/null
"$COFFER" account add bench@example.org >/dev/null
mkdir -p "$W/mnt"
"$COFFER" mount "$W/mnt" ${MOUNT_OPTS:-} 2>>"$W/mount.log"
echo "coffer deliver $(deliver "$W/mnt/bench@example.org")"
"$COFFER" umount "$W/mnt"
"$COFFER" mount "$W/mnt" ${MOUNT_OPTS:-} 2>>"$W/mount.log"
drop; echo "coffer read-cold $(readall "$W/mnt/bench@example.org")"
echo "coffer read-warm $(readall "$W/mnt/bench@example.org")"
echo "coffer read-warm2 $(readall "$W/mnt/bench@example.org")"
"$COFFER" umount "$W/mnt"

# gocryptfs, when installed
if command -v gocryptfs >/dev/null; then
	mkdir -p "$W/gcc" "$W/gc"
	echo pw >"$W/pw"
	gocryptfs -q -init -passfile "$W/pw" "$W/gcc" >/dev/null
	gocryptfs -q -passfile "$W/pw" "$W/gcc" "$W/gc"
	mkdir -p "$W/gc/tmp" "$W/gc/new" "$W/gc/cur"
	echo "gocryptfs deliver $(deliver "$W/gc")"
	drop; echo "gocryptfs read-cold $(readall "$W/gc")"
	echo "gocryptfs read-warm $(readall "$W/gc")"
	fusermount3 -u "$W/gc"
fi
