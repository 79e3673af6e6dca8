#!/usr/bin/env bash
# valgrind memcheck over Coffer's unit tests, and a leak check of the FUSE
# mount daemon over a Dovecot session (docs/reliability.md).
#
#   tests/valgrind.sh BUILD_DIR [TEST...]
#
# TEST is a unit name, with or without "test-" (e.g. buf or test-buf).
# BUILD_DIR is a meson build WITHOUT sanitizers (valgrind and ASan do not
# mix), e.g. `meson setup build-vg && ninja -C build-vg`. Every unit test
# program BUILD_DIR/tests/test-* (or the TESTs named) runs under
#   valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect
#            --error-exitcode=99 --track-fds=no
# with libsodium's guarded allocations left as they are (they are mmap'd,
# not leaks). A test passes when valgrind reports no error (exit != 99) and
# the test itself passes (0 or 77). Logs: BUILD_DIR/valgrind/<test>.log.
#
# Then, unless VG_MOUNT=0, and when /dev/fuse, fusermount3, Dovecot and root
# are available: `coffer mount --foreground` runs under valgrind while an
# IMAP session (APPEND, SELECT, FETCH, STORE, COPY, EXPUNGE, folder CREATE /
# RENAME / DELETE) goes through Dovecot; then the mount is unmounted and
# valgrind must report no error and no definite or indirect leak.
#
# VG_TIMEOUT (seconds per test, default 1800) bounds each program; unit
# tests are run with COFFER_VALGRIND=1 in the environment (a test may use
# it to shorten loops; none must skip cases because of it).
# Exit 0 when all is clean, 1 otherwise. Prints TAP.
set -uo pipefail

BUILD=${1:?usage: tests/valgrind.sh BUILD_DIR [TEST...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
LOGS=$BUILD/valgrind
mkdir -p "$LOGS"
TIMEOUT=${VG_TIMEOUT:-1800}
N=0
FAILED=0
tap() {
	N=$((N + 1))
	if [ "$1" = 0 ]; then echo "ok $N - $2"; else echo "not ok $N - $2"; FAILED=$((FAILED + 1)); fi
}

if ! command -v valgrind >/dev/null; then
	echo "1..0 # SKIP valgrind missing (Debian: valgrind)"
	exit 77
fi
if grep -q "sanitize" "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null &&
	python3 -c 'import json,sys; o={x["name"]:x["value"] for x in json.load(open(sys.argv[1]))}; sys.exit(0 if o.get("b_sanitize","none") in ("none",[],"") else 1)' \
		"$BUILD/meson-info/intro-buildoptions.json"; then
	:
else
	echo "1..0 # SKIP $BUILD is built with sanitizers; use a plain build"
	exit 77
fi

VG=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30)

export COFFER_SOURCE_ROOT=$SRC COFFER_BUILD_ROOT=$BUILD COFFER_BIN=$BUILD/tools/coffer
export COFFER_VALGRIND=1

if [ $# -gt 0 ]; then
	tests=()
	for t in "$@"; do tests+=("$BUILD/tests/test-${t#test-}"); done
else
	mapfile -t tests < <(find "$BUILD/tests" -maxdepth 1 -type f -name 'test-*' -perm -u+x | sort)
fi
for exe in "${tests[@]}"; do
	name=$(basename "$exe")
	log=$LOGS/$name.log
	start=$(date +%s)
	(cd "$BUILD/tests" && timeout "$TIMEOUT" "${VG[@]}" --log-file="$log" "$exe" >"$LOGS/$name.out" 2>&1)
	rc=$?
	secs=$(($(date +%s) - start))
	summary=$(grep -E "ERROR SUMMARY" "$log" | tail -1 | sed 's/^==[0-9]*== //')
	leaks=$(grep -E "definitely lost:|indirectly lost:" "$log" | sed 's/^==[0-9]*== *//' | tr '\n' ' ')
	case $rc in
	0) tap 0 "$name: clean ($summary; ${secs}s)" ;;
	77) tap 0 "$name: # SKIP the test skipped itself ($summary)" ;;
	99) tap 1 "$name: valgrind errors: $summary $leaks (see $log)" ;;
	124) tap 1 "$name: timed out after ${TIMEOUT}s" ;;
	*) tap 1 "$name: the test failed under valgrind (exit $rc; $summary; $LOGS/$name.out)" ;;
	esac
done

# ---- the mount daemon over a Dovecot session ----
mount_check() {
	[ "${VG_MOUNT:-1}" = 0 ] && { echo "# mount: skipped (VG_MOUNT=0)"; return 0; }
	if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null ||
		! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/imap ]; then
		tap 0 "mount under valgrind: # SKIP needs root, /dev/fuse, fuse3 and dovecot-imapd"
		return 0
	fi
	local T S K MNT VM A=vg@example.org log=$LOGS/mount.log pid rc i
	T=$(mktemp -d /tmp/coffer-vg.XXXXXX)
	chmod 0755 "$T"
	S=$T/store K=$T/coffer.key MNT=$T/mnt VM=coffer-vg-vm
	mkdir -p "$MNT"
	id "$VM" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "$VM"
	"$COFFER_BIN" --store "$S" --key-file "$K" init >/dev/null &&
		"$COFFER_BIN" --store "$S" --key-file "$K" account add "$A" >/dev/null ||
		{ tap 1 "mount under valgrind: store setup"; return 1; }
	for i in 1 2 3; do
		printf 'From: a@example.org\nSubject: pre %d\n\nbody %d\n' "$i" "$i" |
			"$COFFER_BIN" --store "$S" --key-file "$K" deliver "$A"
	done
	# coffer-full itself: `coffer` is a front that execv()s coffer-full for
	# every subcommand but deliver (tools/front.c), and memcheck does not
	# follow an exec without --trace-children, so valgrind on `coffer`
	# would check only the front and log no ERROR SUMMARY for the daemon.
	"${VG[@]}" --log-file="$log" "$BUILD/tools/coffer-full" --store "$S" --key-file "$K" mount "$MNT" \
		--foreground --allow-user "$VM" >"$LOGS/mount.out" 2>&1 &
	pid=$!
	for i in $(seq 1 300); do mountpoint -q "$MNT" && break; sleep 0.1; done
	if ! mountpoint -q "$MNT"; then
		tap 1 "mount under valgrind: not mounted after 30 s ($(tail -3 "$LOGS/mount.out"))"
		kill "$pid" 2>/dev/null
		return 1
	fi
	# dovecot-lib.sh is sourced after lib.sh (its free_port, wait_port);
	# lib.sh's own temporary directory goes inside $T, removed below, and
	# the EXIT traps both set are dropped (this script cleans up itself).
	# shellcheck source=/dev/null
	TMPDIR=$T . "$HERE/integration/lib.sh"
	# shellcheck source=/dev/null
	. "$HERE/integration/dovecot-lib.sh"
	trap - EXIT
	mkdir -p "$T/volatile" && chown "$VM" "$T/volatile"
	if ! dc_start "$T/dc" "maildir:$MNT/%u:VOLATILEDIR=$T/volatile/%u" "$VM" "$A=pw"; then
		tap 1 "mount under valgrind: dovecot"
	else
		DC_IMAP_PORT=$DC_IMAP_PORT A=$A python3 - <<'PY'
import imaplib, os
m = imaplib.IMAP4("127.0.0.1", int(os.environ["DC_IMAP_PORT"]))
m.login(os.environ["A"], "pw")
def want(r, what):
    assert r[0] == "OK", (what, r)
for i in range(20):
    want(m.append("INBOX", r"(\Seen)" if i % 2 else None, None,
                  ("From: v@example.org\r\nSubject: vg %d\r\n\r\n%s\r\n" % (i, "y" * (i * 3000))).encode()), "APPEND")
want(m.select("INBOX"), "SELECT")
want(m.fetch("1:*", "(FLAGS RFC822.SIZE BODY.PEEK[])"), "FETCH")
want(m.store("1:5", "+FLAGS", r"(\Flagged $Label1)"), "STORE")
want(m.create("Archive"), "CREATE")
want(m.copy("1:3", "Archive"), "COPY")
want(m.store("2", "+FLAGS", r"(\Deleted)"), "STORE Deleted")
want(m.expunge(), "EXPUNGE")
want(m.rename("Archive", "Old"), "RENAME")
want(m.select("Old"), "SELECT Old")
want(m.search(None, "BODY", "yyy"), "SEARCH")
want(m.select("INBOX"), "SELECT INBOX")
want(m.delete("Old"), "DELETE")
m.logout()
PY
		tap $? "mount under valgrind: a Dovecot IMAP session (APPEND, FETCH, STORE, COPY, EXPUNGE, CREATE, RENAME, DELETE)"
		dc_stop
	fi
	"$COFFER_BIN" --store "$S" --key-file "$K" umount "$MNT" >/dev/null 2>&1 || fusermount3 -u "$MNT"
	for i in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	wait "$pid"
	rc=$?
	local summary leaks
	summary=$(grep -E "ERROR SUMMARY" "$log" | tail -1 | sed 's/^==[0-9]*== //')
	leaks=$(grep -E "definitely lost:|indirectly lost:|possibly lost:" "$log" | sed 's/^==[0-9]*== *//' | tr '\n' ' ')
	[ "$rc" != 99 ] && grep -q "ERROR SUMMARY: 0 errors" "$log"
	tap $? "mount daemon under valgrind after the session and umount: $summary; $leaks(exit $rc; $log)"
	rm -rf "$T"
}
mount_check

echo "1..$N"
[ "$FAILED" = 0 ] && exit 0
echo "# $FAILED of $N failed"
exit 1
