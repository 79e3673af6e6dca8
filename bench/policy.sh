#!/usr/bin/env bash
# bench/policy.sh: retention policy costs on a store with many accounts
# (issue 6). Measures:
#   1. `coffer purge NAME --now --yes --terminate` with little and with much
#      mail held by the other accounts (it must not grow with that mail:
#      a purge re-wraps one key per account and deletes the purged account's
#      own records, blobs and snapshot objects);
#   2. `coffer worker --once` with nothing due;
#   3. metadata expiry of EVENTS events (a worker run at a time past them);
#   4. `coffer report --format json` and `--format html`.
# Usage: bench/policy.sh [BUILD_DIR]   (default: build)
# Environment: ACCOUNTS (10000), EVENTS (10000000), EVENT_ACCOUNTS (64),
# MAIL_ACCOUNTS (200: the
# accounts that get mail in the "much mail" run), MAIL_PER_ACCOUNT (50),
# BENCH_DIR (a scratch directory on the disk to measure; default mktemp).
# Accounts and events are written through the library by tests/test-shred's
# helper modes (`accounts`, `events`), which is much faster than the CLI.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=${1:-$ROOT/build}
COFFER=$BUILD/tools/coffer
HELPER=$BUILD/tests/test-shred
ACCOUNTS=${ACCOUNTS:-10000}
EVENTS=${EVENTS:-10000000}
MAIL_ACCOUNTS=${MAIL_ACCOUNTS:-200}
MAIL_PER_ACCOUNT=${MAIL_PER_ACCOUNT:-50}
[ -x "$COFFER" ] && [ -x "$HELPER" ] || { echo "build first: ninja -C $BUILD" >&2; exit 1; }
W=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/var/tmp}/coffer-bench-policy.XXXXXX")}
mkdir -p "$W"
trap '[ -z "${BENCH_DIR:-}" ] && rm -rf "$W"' EXIT
unset COFFER_STORE COFFER_KEY_FILE
export COFFER_NOW=2026-03-01T06:00:00Z
T0=$(date -u -d 2026-03-01T06:00:00Z +%s)

secs() { # CMD...: prints wall seconds of one run
	local s e
	s=$(now)
	"$@" >/dev/null 2>"$W/last.err" || { cat "$W/last.err" >&2; return 1; }
	e=$(now)
	elapsed "$s" "$e"
}

mkstore() { # NAME: a store with $ACCOUNTS accounts and a snapshot target
	S=$W/$1/store K=$W/$1/coffer.key
	mkdir -p "$W/$1"
	"$COFFER" --store "$S" --key-file "$K" init >/dev/null
	echo "snapshot_target = \"$W/$1/target\"" >>"$S/coffer.conf"
	local t
	t=$(secs "$HELPER" accounts "$S" "$K" u "$ACCOUNTS")
	echo "  $1: $ACCOUNTS accounts created in ${t}s (library)"
}
c() { "$COFFER" --store "$S" --key-file "$K" "$@"; }
mail() { # N accounts x M messages of ~20 KB
	local a m body
	body=$(head -c 15000 /dev/urandom | base64 -w 76)
	for ((a = 0; a < $1; a++)); do
		for ((m = 0; m < $2; m++)); do
			printf 'Subject: bench %d\n\n%s\n' $m "$body" | c deliver "u$a@bench.test"
		done
	done
}

echo "== purge --now: little vs much mail in the other accounts"
for variant in little much; do
	mkstore "purge-$variant"
	if [ $variant = much ]; then
		t=$(secs mail "$MAIL_ACCOUNTS" "$MAIL_PER_ACCOUNT")
		echo "  delivered $((MAIL_ACCOUNTS * MAIL_PER_ACCOUNT)) messages in ${t}s"
	else
		mail 1 2
	fi
	printf 'Subject: victim\n\nvictim\n' | c deliver "u$((ACCOUNTS - 1))@bench.test"
	c worker --once 2>/dev/null # a snapshot, so the purge re-keys the target too
	echo "  store $(du -sh "$S" | cut -f1), target $(du -sh "$W/purge-$variant/target" | cut -f1)"
	for i in 1 2 3; do
		t=$(secs c purge "u$((ACCOUNTS - i))@bench.test" --now --yes --terminate)
		echo "  purge #$i ($variant mail elsewhere): ${t}s"
	done
done

echo "== worker --once with nothing due ($ACCOUNTS accounts)"
S=$W/purge-much/store K=$W/purge-much/coffer.key
c worker --once 2>/dev/null
for i in 1 2 3; do
	echo "  run #$i: $(secs c worker --once)s"
done

echo "== report ($ACCOUNTS accounts)"
echo "  --format json: $(secs c report --format json --output "$W/r.json")s ($(du -h "$W/r.json" | cut -f1))"
echo "  --format html: $(secs c report --format html --output "$W/r.html")s ($(du -h "$W/r.html" | cut -f1))"
echo "  --format text: $(secs c report --output "$W/r.txt")s"

echo "== metadata expiry of $EVENTS events"
# spread over the first EVENT_ACCOUNTS accounts (64: login events in
# secretboxes, fast to write; expiry costs the same however the events are
# spread, it walks the events sub-database in key order)
EVENT_ACCOUNTS=${EVENT_ACCOUNTS:-64}
t=$(secs "$HELPER" events "$S" "$K" u "$EVENT_ACCOUNTS" "$EVENTS" "$T0" 0.1)
echo "  wrote $EVENTS events over $EVENT_ACCOUNTS accounts in ${t}s (library, 50,000 per transaction)"
echo "  index: $(du -sh "$S/index" | cut -f1)"
# every event is older than 180 days at this time; snapshots are due too, so
# take those first with a separate run at an earlier time
export COFFER_NOW=$(date -u -d "@$((T0 + 100 * 86400))" +%Y-%m-%dT%H:%M:%SZ)
c worker --once 2>/dev/null
export COFFER_NOW=$(date -u -d "@$((T0 + 100 * 86400 + 3600))" +%Y-%m-%dT%H:%M:%SZ)
c worker --once 2>/dev/null
export COFFER_NOW=$(date -u -d "@$((T0 + 200 * 86400 + 3600))" +%Y-%m-%dT%H:%M:%SZ)
t=$(secs c worker --once)
echo "  worker --once expiring them: ${t}s ($(grep -o 'events=[0-9]*' "$W/last.err" | head -1))"
c report --format json --output "$W/r2.json"
echo "  events left: $(jq '[.accounts[].metadata.events] | add' "$W/r2.json" 2>/dev/null || echo '?')"
