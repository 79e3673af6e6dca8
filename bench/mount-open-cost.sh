#!/bin/bash
# bench/mount-open-cost.sh: warm read-all of the corpus, on plain ext4 and on
# `coffer mount` built from two commits, interleaved five times, to price one
# change to the mount against another on a noisy machine (first used for the
# open round trip that mount-hidden.c needs: the mount answers open(), so
# every open(2) reaches the daemon).
#
# Usage: OLD=BIN NEW=BIN bench/mount-open-cost.sh   (root: FUSE)
#   OLD, NEW: two coffer binaries (e.g. BUILD/tools/coffer of each commit).
# The corpus is imported once into a store per binary (coffer import), each
# store is mounted, every cur/ and new/ file is read twice to warm the
# caches, then each of ext4/old/new is read five times in turn. Prints
# "<setup> <seconds>" per pass.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
: "${OLD:?OLD=coffer binary}" "${NEW:?NEW=coffer binary}"
W=$(mktemp -d /var/tmp/coffer-bench.XXXXXX)
chmod 0755 "$W"
cleanup() {
	for v in old new; do fusermount3 -uz "$W/$v/mnt" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT
corpus_maildir "$(corpus_dir)" "$W/md" 1 1 1 0
readall() {
	find "$1" -type f \( -path '*/cur/*' -o -path '*/new/*' \) -print0 | xargs -0 cat >/dev/null
}
for v in old new; do
	b=$OLD
	[ "$v" = new ] && b=$NEW
	mkdir -p "$W/$v/mnt"
	export COFFER_STORE=$W/$v/store COFFER_KEY_FILE=$W/$v/key
	"$b" init >/dev/null
	"$b" account add bench@example.org >/dev/null
	"$b" import bench@example.org "$W/md" >/dev/null
	"$b" mount "$W/$v/mnt"
	readall "$W/$v/mnt"
	readall "$W/$v/mnt"
done
readall "$W/md"
for _ in 1 2 3 4 5; do
	for v in ext4 old new; do
		d=$W/$v/mnt
		[ "$v" = ext4 ] && d=$W/md
		t0=$(now)
		readall "$d"
		echo "$v $(elapsed "$t0" "$(now)")"
	done
done
