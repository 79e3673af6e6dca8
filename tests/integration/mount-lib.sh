# Helpers for the tests of `coffer mount`: source after lib.sh.
#
#   mnt_require          skip (77) unless /dev/fuse and fusermount3 work here
#   mnt_store NAME       a store with S, K set, exported as COFFER_STORE/KEY_FILE
#   mnt_start [ARGS]     coffer mount $MNT ARGS (daemon; log in $MNT_LOG)
#   mnt_stop             coffer umount $MNT (waits for the daemon to flush and exit)
#   mnt_kill9            kill -9 the daemon, then clear the dead mount
#   mnt_pid              the daemon's pid (from STORE/locks/mount.lock)
# Every mount is cleared on exit, whatever happened.

mnt_require() {
	if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
		echo "1..0 # SKIP /dev/fuse or fusermount3 missing (Debian: fuse3)"
		exit 77
	fi
	if ! command -v python3 >/dev/null 2>&1; then
		echo "1..0 # SKIP python3 missing"
		exit 77
	fi
}

MNT=$T_TMP/mnt
MNT_LOG=$T_TMP/mount.log
mkdir -p "$MNT"

mnt_cleanup() {
	if mountpoint -q "$MNT" 2>/dev/null || ! stat "$MNT" >/dev/null 2>&1; then
		umount -l "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
	fi
	local p
	p=$(mnt_pid)
	[ -n "$p" ] && kill -9 "$p" 2>/dev/null
	if [ -s "$MNT_LOG" ]; then
		diag "mount log: $(tail -n 20 "$MNT_LOG")"
	fi
	t_cleanup
}
trap mnt_cleanup EXIT

mnt_store() {
	new_store "$1" || return 1
	export COFFER_STORE=$S COFFER_KEY_FILE=$K
}

mnt_pid() {
	[ -n "${S:-}" ] && [ -f "$S/locks/mount.lock" ] || return 0
	local p
	p=$(awk '{print $1; exit}' "$S/locks/mount.lock" 2>/dev/null)
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
	return 0
}

mnt_start() {
	"$COFFER_BIN" --store "$S" --key-file "$K" mount "$MNT" "$@" 2>>"$MNT_LOG"
}

mnt_stop() {
	"$COFFER_BIN" --store "$S" --key-file "$K" umount "$MNT" 2>>"$MNT_LOG"
}

mnt_kill9() {
	local p
	p=$(mnt_pid)
	[ -n "$p" ] && kill -9 "$p"
	sleep 0.2
	umount -l "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
	return 0
}

# canary_free DIR WORD...: no file under DIR holds any WORD in plaintext.
canary_free() {
	local dir=$1 w
	shift
	for w in "$@"; do
		if grep -rqaF -- "$w" "$dir"; then
			diag "canary '$w' found in plaintext under $dir: $(grep -rlaF -- "$w" "$dir" | head -3)"
			return 1
		fi
	done
	return 0
}
