#!/usr/bin/env bash
# A store owned by the mail user, written by root processes (the mount daemon,
# the worker, an administrator) and by the mail user's own `coffer deliver`:
# whatever root creates inside the store is handed to the store's owner, so the
# mail user's deliveries keep working (engine/store.h coffer_store_adopt).
# Needs root (to switch users); exits 77 otherwise.
set -u
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root"
	exit 77
fi
if ! id coffertest >/dev/null 2>&1; then
	useradd --system --no-create-home --shell /usr/sbin/nologin coffertest 2>/dev/null ||
		{ echo "1..0 # SKIP cannot create a test user"; exit 77; }
fi
as_user() { setpriv --reuid=coffertest --regid="$(id -g coffertest)" --clear-groups "$@"; }

W=$(mktemp -d /tmp/coffer-own-XXXXXX)
trap 'rm -rf "$W"' EXIT
chmod 755 "$W"
S=$W/store K=$W/keys/coffer.key
mkdir -p "$W/keys" && chmod 700 "$W/keys"
msg() { printf 'From: a@example.org\nSubject: %s\n\nbody %s\n' "$1" "$1"; }

# init as root, then the store is given to the mail user (as docs/operations.md says)
"$COFFER_BIN" --store "$S" --key-file "$K" init >/dev/null
"$COFFER_BIN" --store "$S" --key-file "$K" account add alice@example.org >/dev/null
"$COFFER_BIN" --store "$S" --key-file "$K" account add bob@example.org >/dev/null
chown -R coffertest: "$S"
ok_if() { if "$@"; then pass "$DESC"; else fail "$DESC"; fi; }

# root delivers first into fresh accounts: it creates blobs/<acct>/<xx>/
msg root1 | "$COFFER_BIN" --store "$S" deliver alice@example.org
DESC="root delivers into a store owned by the mail user"; ok_if [ $? = 0 ]
bad=$(find "$S" ! -user coffertest | head -1)
DESC="everything root created belongs to the store's owner ${bad:+(not: $bad)}"; ok_if [ -z "$bad" ]

# now the mail user delivers many messages: some land in directories root made
fails=0
for i in $(seq 1 40); do
	msg "user$i" | as_user "$COFFER_BIN" --store "$S" deliver alice@example.org 2>>"$W/err" || fails=$((fails + 1))
done
DESC="the mail user delivers 40 messages after root ($fails failed)"; ok_if [ "$fails" = 0 ]
[ -s "$W/err" ] && diag "$(head -3 "$W/err")"

# root again (snapshot, worker-like writers: locks, audit log)
echo "snapshot_target = $W/target" >>"$S/coffer.conf"
"$COFFER_BIN" --store "$S" --key-file "$K" snapshot create >/dev/null
DESC="root takes a snapshot"; ok_if [ $? = 0 ]
bad=$(find "$S" ! -user coffertest | head -1)
DESC="locks and logs root made belong to the store's owner ${bad:+(not: $bad)}"; ok_if [ -z "$bad" ]
msg after | as_user "$COFFER_BIN" --store "$S" deliver bob@example.org
DESC="the mail user still delivers after root's snapshot"; ok_if [ $? = 0 ]
n=$("$COFFER_BIN" --store "$S" --key-file "$K" ls alice@example.org --json | jq length)
DESC="alice has all 41 messages (got $n)"; ok_if [ "$n" = 41 ]
done_testing
