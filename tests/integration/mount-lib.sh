# Helpers for the tests of `coffer mount`: source after lib.sh.
#
#   mnt_require [dovecot]  skip (77) unless /dev/fuse and fusermount3 work here
#                        (and, with "dovecot", mnt_dovecot_require)
#   mnt_store NAME       a store with S, K set, exported as COFFER_STORE/KEY_FILE
#   mnt_account ACCOUNT  mnt_store s and ACCOUNT added to it (one TAP line)
#   mnt_user NAME        a system user NAME (no home, no shell), made if missing
#   mnt_start [ARGS]     coffer mount $MNT ARGS (daemon; log in $MNT_LOG)
#   mnt_stop             coffer umount $MNT (waits for the daemon to flush and exit)
#   mnt_kill9            kill -9 the daemon, then clear the dead mount
#   mnt_pid              the daemon's pid (from STORE/locks/mount.lock)
#   mnt_dovecot_require  skip (77) unless Dovecot is installed and we are root
#   mnt_dovecot USER [MAILDIRS]
#                        Dovecot (IMAP, POP3, LMTP on loopback, private base_dir
#                        under $T_TMP/dovecot = $DV) on the mount (or MAILDIRS)
#                        as mail user USER; passwords from mnt_dovecot_user;
#                        sets DV_IMAP DV_POP3 DV_LMTP (ports); stopped on exit.
#                        Skips (77) when Dovecot is missing or we are not root.
#                        DV_PROTOCOLS, DV_PASSDB, DV_EXTRA_CONF adapt it.
#   mnt_dovecot_run      (re)start that Dovecot; 0 once it listens
#   mnt_dovecot_stop     stop it
#   mnt_dovecot_user NAME PASS   adds a login (before or after mnt_dovecot)
#   mnt_dovecot_mount MAILUSER ACCOUNT PASS
#                        ACCOUNT's login, the mount for MAILUSER and Dovecot on
#                        it (two TAP lines)
#   mnt_dovecot_log_check  no panic or fatal in Dovecot's log
#   mnt_dovecot_location MAILDIRS VOLATILE USER
#                        prints the mail_location docs/dovecot.md gives Dovecot
#                        on the mount: MAILDIRS/%u, lock files in the local
#                        VOLATILE/%u (VOLATILE made here, owned by USER); the
#                        other settings it needs are in MNT_DOVECOT_CONF
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
	[ "${1:-}" != dovecot ] || mnt_dovecot_require
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

DV=$T_TMP/dovecot
mnt_dovecot_stop() {
	[ -f "$DV/dovecot.conf" ] && dovecot -c "$DV/dovecot.conf" stop 2>/dev/null
	sleep 0.5
	return 0
}

mnt_user() {
	id "$1" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "$1"
}

mnt_dovecot_user() {
	mkdir -p "$DV/home/$1"
	echo "$1:{PLAIN}$2" >>"$DV/passwd"
	[ -n "${DV_USER:-}" ] && chown -R "$DV_USER" "$DV/home"
	return 0
}

mnt_dovecot_require() {
	if ! command -v dovecot >/dev/null 2>&1; then
		echo "1..0 # SKIP dovecot missing (Debian: dovecot-imapd dovecot-pop3d dovecot-lmtpd)"
		exit 77
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "1..0 # SKIP needs root (Dovecot switches to the mail user)"
		exit 77
	fi
}

# What docs/dovecot.md gives Dovecot on the mount (it says why), for every
# test that runs Dovecot there.
MNT_DOVECOT_CONF="mmap_disable = yes"
mnt_dovecot_location() {
	mkdir -p "$2" && chown "$3" "$2" || return 1
	echo "maildir:$1/%u:VOLATILEDIR=$2/%u"
}

# The configuration of docs/dovecot.md: default Maildir settings and the two
# above.
# mnt_dovecot USER [MAILDIRS]: mail_location = maildir:MAILDIRS/%u (default
# the mount). Set before the call to adapt it:
#   DV_PROTOCOLS   the protocols, each with a loopback listener (default
#                  "imap pop3 lmtp")
#   DV_PASSDB      the passdb block's lines (default: passwd-file $DV/passwd,
#                  the logins of mnt_dovecot_user)
#   DV_EXTRA_CONF  lines appended to the configuration (a setting given again
#                  there replaces the one above)
mnt_dovecot() {
	DV_USER=$1
	local maildirs=${2:-$MNT} protocols=${DV_PROTOCOLS:-imap pop3 lmtp} location
	local passdb=${DV_PASSDB:-"driver = passwd-file
  args = scheme=PLAIN username_format=%u $DV/passwd"}
	mnt_dovecot_require
	mnt_user "$DV_USER"
	mkdir -p "$DV/run" "$DV/state" "$DV/home"
	touch "$DV/passwd"
	chown -R "$DV_USER" "$DV/home"
	location=$(mnt_dovecot_location "$maildirs" "$DV/volatile" "$DV_USER") || return 1
	chmod 0755 "$DV"
	DV_IMAP=$(free_port) DV_POP3=$(free_port) DV_LMTP=$(free_port)
	export DV_IMAP DV_POP3 DV_LMTP
	cat >"$DV/dovecot.conf" <<CONF
protocols = $protocols
listen = 127.0.0.1
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
passdb {
  $passdb
}
userdb {
  driver = static
  args = uid=$DV_USER gid=$(id -gn "$DV_USER") home=$DV/home/%u
}
mail_location = $location
$MNT_DOVECOT_CONF
namespace inbox {
  inbox = yes
}
service imap-login {
  inet_listener imap {
    port = $DV_IMAP
  }
  inet_listener imaps {
    port = 0
  }
}
CONF
	case " $protocols " in *" pop3 "*)
		cat >>"$DV/dovecot.conf" <<CONF
service pop3-login {
  inet_listener pop3 {
    port = $DV_POP3
  }
  inet_listener pop3s {
    port = 0
  }
}
CONF
	esac
	case " $protocols " in *" lmtp "*)
		cat >>"$DV/dovecot.conf" <<CONF
postmaster_address = postmaster@example.org
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DV_LMTP
  }
}
CONF
	esac
	printf '%s\n' "${DV_EXTRA_CONF:-}" >>"$DV/dovecot.conf"
	mnt_dovecot_run
}

mnt_dovecot_run() {
	dovecot -c "$DV/dovecot.conf" || return 1
	trap 'mnt_dovecot_stop; mnt_cleanup' EXIT
	wait_port "$DV_IMAP"
}

mnt_dovecot_mount() {
	mnt_dovecot_user "$2" "$3"
	mnt_user "$1"
	mnt_start --allow-user "$1"; ok $? "mount --allow-user $1"
	mnt_dovecot "$1"; ok $? "dovecot starts on the mount"
}

# mnt_dovecot_log_check: no panic or fatal in Dovecot's log (errors shown).
mnt_dovecot_log_check() {
	if grep -qi "error\|panic\|fatal" "$DV/dovecot.log" 2>/dev/null; then
		diag "dovecot log: $(grep -i 'error\|panic\|fatal' "$DV/dovecot.log" | tail -n 15)"
	fi
	! grep -qi "panic\|fatal" "$DV/dovecot.log" 2>/dev/null
}

mnt_store() {
	new_store "$1" || return 1
	export COFFER_STORE=$S COFFER_KEY_FILE=$K
}

mnt_account() {
	mnt_store s || { fail "store"; done_testing; }
	c account add "$1"; expect_success && pass "account" || fail "account"
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
