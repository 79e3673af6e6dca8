# Shared helpers for the integration tests of the `coffer` command.
# Source it from a test script: `. "$(dirname "$0")/lib.sh"`.
#
# Provides TAP output (ok/not ok, a trailing plan), a per-test temporary
# directory cleaned up on exit, and `run`, which runs coffer capturing its exit
# status, stdout and stderr so checks can look at all three.
#
# Environment: COFFER_BIN (the built command; the meson runner sets it),
# COFFER_SOURCE_ROOT (the checkout), KEEP_TMP=1 keeps the temp dir for debugging.
# A test that runs thousands of fsyncing commands and checks policy, not
# durability, sets T_SHM=1 before sourcing: its temp dir is then in /dev/shm
# (when TMPDIR is unset and /dev/shm is writable).

set -uo pipefail

if [ "${T_SHM:-0}" = 1 ] && [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	export TMPDIR=/dev/shm
fi

T_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COFFER_SOURCE_ROOT=${COFFER_SOURCE_ROOT:-$(cd "$T_HERE/../.." && pwd)}
if [ -z "${COFFER_BIN:-}" ]; then
	for b in "$COFFER_SOURCE_ROOT"/build/tools/coffer "$COFFER_SOURCE_ROOT"/build-san/tools/coffer; do
		if [ -x "$b" ]; then COFFER_BIN=$b; break; fi
	done
fi
if [ -z "${COFFER_BIN:-}" ] || [ ! -x "$COFFER_BIN" ]; then
	echo "1..0 # SKIP coffer binary not found (set COFFER_BIN)"
	exit 77
fi
export COFFER_BIN

# Never let the caller's environment choose a store or key file for us.
unset COFFER_STORE COFFER_KEY_FILE COFFER_NOW

T_N=0
T_FAILED=0
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/coffer-it.XXXXXX")
# Traversable by other users: some cases run coffer as `nobody`.
chmod 0755 "$T_TMP"

t_cleanup() {
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "# kept $T_TMP"
	else
		rm -rf "$T_TMP"
	fi
}
trap t_cleanup EXIT

# ok COND-STATUS DESCRIPTION: record a result. Usage: ok $? "desc" or
# check ... && pass "desc" || fail "desc".
pass() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $*"
}
fail() {
	T_N=$((T_N + 1))
	T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_N - $*"
}
# kill_after MS CMD...: runs CMD and kills it with SIGKILL after MS
# milliseconds unless it ended first; its status (137 when killed). Through
# timeout(1), which signals its own unreaped child: `CMD & sleep; kill -9 $!`
# could kill another process that took the pid of a CMD already ended and
# reaped (pid_max is 32768 here, and the suite spawns thousands).
kill_after() {
	local ms=$(($1 > 0 ? $1 : 1))
	shift
	timeout -s KILL "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))" "$@"
}
ok() {
	local st=$1
	shift
	if [ "$st" = 0 ]; then pass "$@"; else fail "$@"; fi
}
diag() {
	local line
	while IFS= read -r line; do
		echo "# $line" >&2
	done <<<"$*"
}
# Show the last captured run (for a failed check).
diag_run() {
	diag "command: ${R_CMD}"
	diag "exit: $R_RC"
	diag "stderr: $(head -c 2000 "$R_ERR")"
	diag "stdout: $(head -c 1000 "$R_OUT" | tr -d '\0')"
}

done_testing() {
	echo "1..$T_N"
	if [ "$T_FAILED" != 0 ]; then
		echo "# $T_FAILED of $T_N failed"
		exit 1
	fi
	exit 0
}

# run [coffer args...]: run the command (stdin inherited), capturing
# R_RC, and files $R_OUT / $R_ERR. Never fails by itself.
R_OUT=$T_TMP/.out
R_ERR=$T_TMP/.err
R_RC=0
R_CMD=
run() {
	R_CMD="coffer $(printf '%q ' "$@")"
	"$COFFER_BIN" "$@" >"$R_OUT" 2>"$R_ERR"
	R_RC=$?
	return 0
}
# run_as USER [coffer args...]: same, as another user (setpriv).
run_as() {
	local user=$1
	shift
	local uid gid
	uid=$(id -u "$user") gid=$(id -g "$user")
	R_CMD="($user) coffer $(printf '%q ' "$@")"
	setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$COFFER_BIN" "$@" >"$R_OUT" 2>"$R_ERR"
	R_RC=$?
	return 0
}

# Checks on the last run; each returns 0/1 and prints diagnostics on failure.
# expect_rc CODE: exit status is CODE (several codes: expect_rc "74 75").
expect_rc() {
	local c
	for c in $1; do
		[ "$R_RC" = "$c" ] && return 0
	done
	diag "expected exit $1"
	diag_run
	return 1
}
# expect_error CODE [WORD...]: exit CODE, stdout empty, exactly one non-empty
# line on stderr, which contains every WORD (fixed strings).
expect_error() {
	local codes=$1
	shift
	expect_rc "$codes" || return 1
	local lines
	lines=$(wc -l <"$R_ERR")
	if [ "$lines" != 1 ] || [ ! -s "$R_ERR" ] || [ "$(wc -c <"$R_ERR")" -le 1 ]; then
		diag "expected exactly one error line on stderr, got $lines"
		diag_run
		return 1
	fi
	if [ -s "$R_OUT" ]; then
		diag "expected no output on stdout"
		diag_run
		return 1
	fi
	local w
	for w in "$@"; do
		if ! grep -qF -- "$w" "$R_ERR"; then
			diag "error line does not name '$w'"
			diag_run
			return 1
		fi
	done
	return 0
}
# expect_success: exit 0 and nothing on stderr.
expect_success() {
	expect_rc 0 || return 1
	if [ -s "$R_ERR" ]; then
		diag "unexpected stderr"
		diag_run
		return 1
	fi
	return 0
}
# not_crashed: exit status below 128 (no signal, no sanitizer abort).
not_crashed() {
	if [ "$R_RC" -ge 128 ]; then
		diag "crashed"
		diag_run
		return 1
	fi
	return 0
}

# require_jq: skip the test (77) unless jq is installed.
require_jq() {
	command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit 77; }
}
# require_shred_helper: jq, and the build's tests/test-shred helper (what the
# command line cannot do: expunge, ...) as HELPER; skip the test (77) otherwise.
require_shred_helper() {
	require_jq
	HELPER=${COFFER_BUILD_ROOT:-$COFFER_SOURCE_ROOT/build}/tests/test-shred
	[ -x "$HELPER" ] || { echo "1..0 # SKIP tests/test-shred helper not built"; exit 77; }
}
# day_iso DAY [SECONDS]: the time BASE (epoch seconds, set by the test) + DAY
# days + SECONDS, in the ISO 8601 UTC form COFFER_NOW takes.
day_iso() { date -u -d "@$((BASE + $1 * 86400 + ${2:-0}))" +%Y-%m-%dT%H:%M:%SZ; }

# free_port: a free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait_port PORT [TRIES]: wait until something accepts connections on
# 127.0.0.1:PORT, trying every 0.1 s, TRIES times (default 50); 1 if nothing does.
wait_port() {
	local port=$1 tries=${2:-50} i
	for i in $(seq "$tries"); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$port)).close()" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# new_store NAME: init a store at $T_TMP/NAME/store with key $T_TMP/NAME/coffer.key,
# and set S (store) and K (key file). Returns non-zero if init failed.
new_store() {
	local d=$T_TMP/$1
	mkdir -p "$d"
	S=$d/store
	K=$d/coffer.key
	run --store "$S" --key-file "$K" init
	expect_success
}
# c ARGS: coffer on the current store ($S, $K).
c() {
	run --store "$S" --key-file "$K" "$@"
}

# msg FILE SUBJECT [BODY]: write a small RFC 5322 message (CRLF-free).
msg() {
	local f=$1 subj=$2 body=${3:-Hello from the Coffer tests.}
	printf 'From: Alice Example <alice@example.org>\nTo: bob@example.org\nSubject: %s\nDate: Mon, 04 Mar 2024 10:00:00 +0000\nMessage-ID: <%s@example.org>\n\n%s\n' \
		"$subj" "$RANDOM$RANDOM$RANDOM" "$body" >"$f"
}

# ls_json ACCOUNT [FOLDER]: print `coffer ls --json` of the current store.
ls_json() {
	"$COFFER_BIN" --store "$S" --key-file "$K" ls "$@" --json
}

# all_blobs: list every blob file under the store, sorted. The blob pool's
# files (engine/pool.h: empty files made ahead for writers) are no blobs yet.
all_blobs() {
	find "$S/blobs" -type f -size +0 2>/dev/null | sort
}
