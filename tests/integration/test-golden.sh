#!/usr/bin/env bash
# Golden store (tests/golden/store-v1): a store, its key file and a snapshot
# target written by format version 1 must be read by this version unchanged:
# listings and contents equal to the recorded ones, verify and snapshot verify
# clean, the audit chain intact, and a restore from the old target complete.
# (The blob format alone has its own golden vectors in tests/golden/envelope.)
set -u
. "$(dirname "$0")/lib.sh"

G=$COFFER_SOURCE_ROOT/tests/golden/store-v1
W=$(mktemp -d /tmp/coffer-golden-XXXXXX)
trap 'rm -rf "$W"' EXIT
cp -a "$G/store" "$G/target" "$G/test-only.key" "$W/"
sed -i "s#@GOLDEN@#$W#g" "$W/store/coffer.conf"
chmod 700 "$W/store" && chmod 600 "$W/test-only.key"
k() { "$COFFER_BIN" --store "$W/store" --key-file "$W/test-only.key" "$@"; }
same() { # name, expected file, actual command...
	local name=$1 want=$2
	shift 2
	if "$@" >"$W/out" 2>"$W/err" && cmp -s "$W/out" "$want"; then pass "$name"; else
		diag "$(head -3 "$W/err")"
		fail "$name"
	fi
}

same "folders as recorded" "$G/expected/folders.json" k folders golden@example.org --json
same "INBOX listing as recorded" "$G/expected/ls-INBOX.json" k ls golden@example.org INBOX --json
same "Lists/debian listing as recorded" "$G/expected/ls-Lists_debian.json" \
	k ls golden@example.org Lists/debian --json
same "a CRLF message reads back byte for byte" "$G/expected/inbox-1.eml" k cat golden@example.org INBOX 1
same "an mbox-From message reads back byte for byte" "$G/expected/debian-2.eml" \
	k cat golden@example.org Lists/debian 2
k verify >"$W/v" 2>&1 && pass "verify: the old store is sound" || { diag "$(cat "$W/v")"; fail "verify"; }
k audit verify >/dev/null 2>&1 && pass "the old audit chain verifies" || fail "audit verify"
k snapshot verify --read-data >"$W/sv" 2>&1 && pass "snapshot verify --read-data of the old target" ||
	{ diag "$(cat "$W/sv")"; fail "snapshot verify"; }
n=$(k snapshot list --json | jq length)
[ "$n" = 2 ] && pass "two snapshots listed" || fail "snapshot list: $n"

# a restore from the old target as of its first day: three messages then
k restore golden@example.org --as-of 2026-01-15 --to "$W/day1" >/dev/null 2>&1
n=$(find "$W/day1" -path '*/new/*' -type f | wc -l)
[ "$n" = 3 ] && pass "restore as of the first day: 3 messages" || fail "restore day 1: $n messages"
# disaster recovery from the old target into a new store
"$COFFER_BIN" --store "$W/new" --key-file "$W/test-only.key" restore --all --from "$W/target" >/dev/null 2>&1 &&
	pass "restore --all from the old target" || fail "restore --all"
same "the recovered store lists the same INBOX" "$G/expected/ls-INBOX.json" \
	"$COFFER_BIN" --store "$W/new" --key-file "$W/test-only.key" ls golden@example.org INBOX --json
# new writes on top of the old store keep working
printf 'Subject: new\n\nwritten by this version\n' | k deliver golden@example.org >/dev/null 2>&1 &&
	pass "this version delivers into the old store" || fail "deliver into the old store"
done_testing
