#!/usr/bin/env bash
# What a FUSE round trip costs on this machine, and why (docs/benchmarks.md,
# "What a FUSE request costs here"). bench/fuse-roundtrip.c serves one file
# with no caching; a Python loop stat()s it (a LOOKUP and a GETATTR each),
# ROUNDS x N times, in four set-ups:
#   sleep        the daemon sleeps in read() between requests (libfuse's loop)
#   sleep-pinned the same, daemon and client pinned to one CPU (no wake-up
#                crosses CPUs)
#   spin         the daemon keeps reading for SPIN_US microseconds before it
#                sleeps (no wake-up of the daemon at all)
#   bindfs       Debian's bindfs (a real passthrough) with its caches off,
#                when installed
# It also prints the guest's halt-polling setting: with guest_halt_poll_ns=0
# an idle virtual CPU halts at once, and waking it costs a trip through the
# host.
#
#   bash bench/fuse-roundtrip.sh
#
# Environment: N (default 4000), ROUNDS (default 3), SPIN_US (default 200),
# BENCH_DIR (default ./var/bench-fuse; removed afterwards unless BENCH_KEEP=1).
# Needs root (or fusermount3) and libfuse3-dev. Prints one line per set-up:
# "<set-up> us/stat <round> <round> ...".
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
N=${N:-4000}
ROUNDS=${ROUNDS:-3}
SPIN_US=${SPIN_US:-200}
BENCH_DIR=${BENCH_DIR:-$ROOT/var/bench-fuse}
need "apt-get install libfuse3-dev pkg-config" pkg-config fusermount3 python3
bench_dir_fresh
bench_dir_remove_on_exit
# shellcheck disable=SC2046
cc -O2 -o "$BENCH_DIR/fuse-roundtrip" bench/fuse-roundtrip.c $(pkg-config --cflags --libs fuse3)
mkdir -p "$BENCH_DIR/m" "$BENCH_DIR/src"
: >"$BENCH_DIR/src/f"

p=/sys/module/haltpoll/parameters/guest_halt_poll_ns
echo "# cpuidle: $(cat /sys/devices/system/cpu/cpuidle/current_governor 2>/dev/null || echo none);" \
	"guest_halt_poll_ns: $(cat "$p" 2>/dev/null || echo n/a); $(nproc) CPUs" >&2

stats() { # NAME [taskset prefix...]
	local name=$1
	shift
	printf '%s us/stat' "$name"
	"$@" python3 - "$BENCH_DIR/m/f" "$N" "$ROUNDS" <<'PY'
import os, sys, time
p, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(rounds):
    t = time.perf_counter()
    for _ in range(n):
        os.stat(p)
    print(" %.1f" % ((time.perf_counter() - t) / n * 1e6), end="")
print()
PY
}

mounted() { # waits for the mount to answer
	local _
	for _ in $(seq 50); do
		[ -e "$BENCH_DIR/m/f" ] && return 0
		sleep 0.1
	done
	log "the mount did not come up"
	exit 1
}

run() { # NAME SPIN [pin]
	local pin=()
	[ "${3:-}" = pin ] && pin=(taskset -c 0)
	"${pin[@]}" "$BENCH_DIR/fuse-roundtrip" "$BENCH_DIR/m" "$2" &
	mounted
	stats "$1" "${pin[@]}"
	fusermount3 -u "$BENCH_DIR/m"
	wait
}

run sleep -1
run sleep-pinned -1 pin
run spin "$SPIN_US"
if command -v bindfs >/dev/null; then
	bindfs -o attr_timeout=0,entry_timeout=0 "$BENCH_DIR/src" "$BENCH_DIR/m"
	stats bindfs
	fusermount3 -u "$BENCH_DIR/m"
fi
