#!/usr/bin/env bash
# Delivery latency while a full snapshot runs (issue 5: "no delivery waits
# more than 100 ms on it"), beside the same deliveries with no snapshot
# running, on the same disk at the same time of day, so that what the
# snapshot adds is told apart from the disk's own fsync latency.
#
# For each size (the corpus, 6,046 messages, times SIZE): import it into one
# account, deliver IDLE messages one `coffer deliver` at a time (the idle
# row), then start the store's first, full snapshot and deliver one message
# after another until it ends; then the same during a full snapshot into a
# new target (--new-target: every blob is marked unsnapped first, in
# batches, then copied). A delivery's time is the
# wall time of the whole command, as an MTA sees it (exec, open, fsyncs,
# commit). Prints a Markdown table:
#   | messages | phase | deliveries | p50 ms | p99 ms | max ms | snapshot s |
#
#   COFFER_BUILD=build-bench SIZES="1 10" bash bench/snapshot-latency.sh
#
# Environment: COFFER_BUILD (a release build dir, default ./build-bench),
# BENCH_DIR (scratch, default ./var/bench-snaplat, removed unless
# BENCH_KEEP=1), SIZES (default "1 10"), IDLE (default 200).
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
SIZES=${SIZES:-"1 10"}
IDLE=${IDLE:-200}
BENCH_DIR=${BENCH_DIR:-$ROOT/var/bench-snaplat}
BUILD=${COFFER_BUILD:-$ROOT/build-bench}

[ -x "$BUILD/tools/coffer" ] || build_release "$BUILD"
COFFER_BIN=$BUILD/tools/coffer
CORPUS=$(corpus_dir)
bench_dir_fresh
bench_dir_remove_on_exit

A=bench@example.org
L=latency@example.org
# percentiles FILE: "n p50 p99 max" of the integers in FILE (nearest rank)
percentiles() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		p50 = int(NR * 0.50 + 0.999); p99 = int(NR * 0.99 + 0.999)
		print NR, v[p50 < 1 ? 1 : p50], v[p99 < 1 ? 1 : p99], v[NR] }'
}
# deliver_timed STORE KEY OUT N: one message to $L, its ms appended to OUT
deliver_timed() {
	local t0 t1
	t0=$(date +%s%N)
	printf 'From: a@example.org\nTo: %s\nSubject: latency %s\n\nbody %s\n' "$L" "$4" "$4" |
		"$COFFER_BIN" --store "$1" --key-file "$2" deliver "$L" >/dev/null
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000)) >>"$3"
}

RESULTS=$BENCH_DIR/results.md
echo "| messages | phase | deliveries | p50 ms | p99 ms | max ms | snapshot s |" >"$RESULTS"
echo "|---:|---|---:|---:|---:|---:|---:|" >>"$RESULTS"
# deliveries_during TAG SNAPSHOT-ARGS...: one delivery after another into
# $W/TAG (deliver_timed) while `snapshot create SNAPSHOT-ARGS` runs; prints
# the snapshot's seconds.
deliveries_during() {
	local tag=$1 t0 cpid n=0
	shift
	t0=$(now)
	"$COFFER_BIN" --store "$W/store" --key-file "$W/key" snapshot create "$@" >/dev/null &
	cpid=$!
	while kill -0 "$cpid" 2>/dev/null; do
		n=$((n + 1))
		deliver_timed "$W/store" "$W/key" "$W/$tag" "$tag $n"
	done
	wait "$cpid"
	elapsed "$t0" "$(now)"
}

for SIZE in $SIZES; do
	W=$BENCH_DIR/x$SIZE
	mkdir -p "$W"
	log "size x$SIZE: building the store"
	corpus_maildir "$CORPUS" "$W/md" "$SIZE" 1 60 0
	NMSG=$(find "$W/md" -type f -path '*/cur/*' | wc -l)
	new_store "$W/store" "$W/key" "$A"
	"$COFFER_BIN" --store "$W/store" --key-file "$W/key" account add "$L" >/dev/null
	"$COFFER_BIN" --store "$W/store" --key-file "$W/key" import "$A" "$W/md" >/dev/null
	rm -rf "$W/md"
	sync
	log "size x$SIZE: $IDLE deliveries with no snapshot"
	for n in $(seq 1 "$IDLE"); do deliver_timed "$W/store" "$W/key" "$W/idle" "idle $n"; done
	log "size x$SIZE: deliveries during the full snapshot"
	secs=$(deliveries_during during --target "$W/target")
	log "size x$SIZE: deliveries during a full snapshot into a new target"
	secs2=$(deliveries_during during2 --target "$W/target2" --new-target)
	read -r c50 c99 cmax < <(percentiles "$W/idle" | cut -d' ' -f2-)
	echo "| $NMSG | no snapshot | $(wc -l <"$W/idle") | $c50 | $c99 | $cmax | |" >>"$RESULTS"
	read -r dn d50 d99 dmax < <(percentiles "$W/during")
	echo "| $NMSG | during the first, full snapshot | $dn | $d50 | $d99 | $dmax | $secs |" >>"$RESULTS"
	read -r dn d50 d99 dmax < <(percentiles "$W/during2")
	echo "| $NMSG | during a full snapshot into a new target | $dn | $d50 | $d99 | $dmax | $secs2 |" >>"$RESULTS"
	rm -rf "$W"
done
cat "$RESULTS"
