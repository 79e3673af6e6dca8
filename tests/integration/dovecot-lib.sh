# Start and stop a private, throw-away Dovecot (Debian's dovecot-imapd) on
# loopback for integration tests. Source it after lib.sh:
#
#   . "$(dirname "$0")/dovecot-lib.sh"
#   dc_require || exit 77                 # prints a SKIP plan when Dovecot is missing
#   dc_start "$T_TMP/dc" "maildir:$T_TMP/mail/%u" nobody alice=secret bob=hunter2
#   ... IMAP on 127.0.0.1:$DC_IMAP_PORT, users alice and bob ...
#   dc_doveadm mailbox list -u alice      # doveadm against this instance
#   dc_stop
#
# dc_start DIR MAIL_LOCATION MAIL_USER USER=PASSWORD...
#   DIR            private directory for the config, base_dir, state and log
#                  (created; anything in it is replaced)
#   MAIL_LOCATION  Dovecot's mail_location, e.g. "maildir:/x/%u" or
#                  "maildir:~/Maildir" (home is DIR/home/<user>)
#   MAIL_USER      the system user mail processes run as (Dovecot refuses
#                  root): every test user maps to it; the mail directories must
#                  be writable by it
#   USER=PASSWORD  test users with static plain-text passwords
# Extra configuration lines can be passed in DC_EXTRA_CONF (appended as is,
# e.g. "mail_plugins = \$mail_plugins zlib"). Sets DC_DIR, DC_CONF,
# DC_IMAP_PORT and DC_LOG. Works when run as root (the master starts as root
# and drops to dovenull/dovecot/MAIL_USER) and as an ordinary user (then every
# process runs as that user, and MAIL_USER must be that user).
# dc_stop stops it (also called from an EXIT trap chained to lib.sh's).

DC_DIR=
DC_CONF=
DC_IMAP_PORT=
DC_LOG=

dc_require() {
	if ! command -v dovecot >/dev/null 2>&1 || ! command -v doveadm >/dev/null 2>&1 ||
		[ ! -x /usr/lib/dovecot/imap ]; then
		echo "1..0 # SKIP Dovecot is not installed (Debian packages dovecot-core dovecot-imapd)"
		return 1
	fi
	return 0
}

# A free TCP port on 127.0.0.1 (lib.sh's free_port).
dc_free_port() {
	free_port
}

dc_start() {
	local dir=$1 location=$2 mail_user=$3
	shift 3
	local uid gid login_user internal_user up u p
	uid=$(id -u "$mail_user") || return 1
	gid=$(id -g "$mail_user") || return 1
	DC_DIR=$dir
	rm -rf "$DC_DIR"
	mkdir -p "$DC_DIR/run" "$DC_DIR/state" "$DC_DIR/home"
	chmod 0755 "$DC_DIR" "$DC_DIR/home"
	DC_CONF=$DC_DIR/dovecot.conf
	DC_LOG=$DC_DIR/dovecot.log
	DC_IMAP_PORT=$(dc_free_port)
	if [ "$(id -u)" = 0 ]; then
		login_user=dovenull internal_user=dovecot
	else
		login_user=$(id -un) internal_user=$(id -un)
	fi
	: >"$DC_DIR/users"
	for up in "$@"; do
		u=${up%%=*} p=${up#*=}
		echo "$u:{PLAIN}$p::::" >>"$DC_DIR/users"
		mkdir -p "$DC_DIR/home/$u"
		chown "$uid:$gid" "$DC_DIR/home/$u"
	done
	chmod 0644 "$DC_DIR/users"
	cat >"$DC_CONF" <<EOF
# private test instance (tests/integration/dovecot-lib.sh)
base_dir = $DC_DIR/run
state_dir = $DC_DIR/state
log_path = $DC_LOG
info_log_path = $DC_LOG
instance_name = coffer-test-$DC_IMAP_PORT
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = $login_user
default_internal_user = $internal_user
first_valid_uid = 1
last_valid_uid = 0
first_valid_gid = 1
mail_location = $location
mail_fsync = always
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC_DIR/users
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$DC_DIR/home/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DC_IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
${DC_EXTRA_CONF:-}
EOF
	if ! dovecot -c "$DC_CONF"; then
		echo "# dovecot failed to start; log:" >&2
		sed 's/^/# /' "$DC_LOG" >&2 2>/dev/null
		return 1
	fi
	wait_port "$DC_IMAP_PORT" 100 && return 0
	echo "# dovecot did not listen on port $DC_IMAP_PORT" >&2
	return 1
}

dc_doveadm() {
	doveadm -c "$DC_CONF" "$@"
}

dc_stop() {
	local pid i
	[ -n "$DC_CONF" ] && [ -f "$DC_DIR/run/master.pid" ] || return 0
	pid=$(cat "$DC_DIR/run/master.pid" 2>/dev/null)
	dovecot -c "$DC_CONF" stop >/dev/null 2>&1 || { [ -n "$pid" ] && kill "$pid" 2>/dev/null; }
	for i in $(seq 1 50); do
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	rm -f "$DC_DIR/run/master.pid"
	return 0
}

# Chain to lib.sh's cleanup so a failing test never leaves Dovecot running.
dc_cleanup() {
	dc_stop
	t_cleanup
}
trap dc_cleanup EXIT
