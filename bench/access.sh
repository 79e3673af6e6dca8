#!/usr/bin/env bash
# Access benchmark (issue 7):
#   1. checkpassword latency at the bcrypt cost in force (12): median of
#      RUNS logins through `coffer checkpassword` (fd 3 input, exec of
#      /bin/true), main password and application password;
#   2. `coffer logins --limit 20` for an account with EVENTS (default
#      1,000,000) events: median of RUNS runs (target <= 50 ms);
#   3. `coffer security --all` over ACCOUNTS (default 10,000) accounts with
#      PER (default 5) login events each.
# Prints a markdown table.
#
#   bash bench/access.sh
#
# Environment: COFFER_BIN (default: a release build in ./build-bench),
# BENCH_DIR (scratch, default ./var/bench-access; removed afterwards unless
# BENCH_KEEP=1), RUNS (default 9), EVENTS, ACCOUNTS, PER.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
RUNS=${RUNS:-9}
EVENTS=${EVENTS:-1000000}
ACCOUNTS=${ACCOUNTS:-10000}
PER=${PER:-5}
BENCH_DIR=${BENCH_DIR:-$ROOT/var/bench-access}

need_coffer_bin
BUILD=$(cd "$(dirname "$COFFER_BIN")/.." && pwd)
bench_dir_fresh
bench_dir_remove_on_exit
cc -O2 -D_GNU_SOURCE -I"$ROOT" -o "$BENCH_DIR/access-gen" bench/access-gen.c \
	"$BUILD/libcoffer-static.a" $(pkg-config --libs libsodium libzstd lmdb libarchive openssl libcrypt fuse3 libqrencode) -lpthread

S=$BENCH_DIR/store K=$BENCH_DIR/coffer.key
C() { "$COFFER_BIN" --store "$S" --key-file "$K" "$@"; }
C init >/dev/null
C account add bench@example.org >/dev/null
printf 'bench-password\n' | C passwd bench@example.org
APP=$(C apppass add bench@example.org mua)
for l in a b c d; do C apppass add bench@example.org "$l" >/dev/null; done

# median of the numbers on stdin; the lower middle one for an even count
# (lib.sh's median averages the two)
median_low() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
time_ms() { # time_ms CMD...: wall time of one run in ms
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null
	t1=$(date +%s%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", (b - a) / 1e6}'
}
cp_login() { # cp_login PASSWORD
	printf 'bench@example.org\0%s\0' "$1" >"$BENCH_DIR/in"
	SERVICE=imap TCPREMOTEIP=192.0.2.1 C checkpassword /bin/true 3<"$BENCH_DIR/in" 2>/dev/null
}

log "checkpassword latency ($RUNS runs each)"
CP_PW=$(for i in $(seq "$RUNS"); do time_ms cp_login bench-password; done | median_low)
CP_APP=$(for i in $(seq "$RUNS"); do time_ms cp_login "$APP"; done | median_low)
CP_BAD=$(for i in $(seq "$RUNS"); do time_ms cp_login wrong-password || true; done | median_low)

log "generating $EVENTS events"
t0=$(date +%s)
"$BENCH_DIR/access-gen" "$S" "$K" events bench@example.org "$EVENTS"
GEN_S=$(( $(date +%s) - t0 ))
N=$(C logins bench@example.org --limit 20 | wc -l)
[ "$N" = 20 ] || { log "logins --limit 20 printed $N lines"; exit 1; }
LOGINS=$(for i in $(seq "$RUNS"); do time_ms C logins bench@example.org --limit 20; done | median_low)
LOGINS_J=$(for i in $(seq "$RUNS"); do time_ms C logins bench@example.org --limit 20 --json; done | median_low)

log "generating $ACCOUNTS accounts with $PER events each (in a second store)"
S=$BENCH_DIR/store2 K=$BENCH_DIR/coffer2.key
C init >/dev/null
t0=$(date +%s)
"$BENCH_DIR/access-gen" "$S" "$K" accounts u "$ACCOUNTS" "$PER"
GEN2_S=$(( $(date +%s) - t0 ))
SEC_ALL=$(time_ms C security --all)
SEC_ALL2=$(time_ms C security --all)
SEC_ONE=$(time_ms C security u7@bench.example)
FINDINGS=$(C security --all --json | grep -c '"kind"' || true)

cat <<TABLE
| measure | result |
|---|---|
| checkpassword, main password (bcrypt \$2b\$ cost 12), median of $RUNS | ${CP_PW} ms |
| checkpassword, application password (5 live; keyed BLAKE2b), median of $RUNS | ${CP_APP} ms |
| checkpassword, wrong password, median of $RUNS | ${CP_BAD} ms |
| \`coffer logins --limit 20\`, $EVENTS events (text / --json), median of $RUNS | ${LOGINS} ms / ${LOGINS_J} ms |
| \`coffer security --all\`, $ACCOUNTS accounts × $PER events (two runs) | ${SEC_ALL} ms / ${SEC_ALL2} ms ($FINDINGS findings) |
| \`coffer security NAME\` on the same store | ${SEC_ONE} ms |
| (setup: $EVENTS events generated in ${GEN_S} s; $ACCOUNTS accounts in ${GEN2_S} s) | |
TABLE
