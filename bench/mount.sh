#!/bin/bash
# bench/mount.sh: the mount's benchmarks from issue 4, side by side in one run,
# on the same corpus, on plain ext4, on gocryptfs and on `coffer mount`:
#   1. deliver: for every message, write tmp/, fsync, rename to new/
#   2. read every message (cat), cache cold (caches dropped; the mount is
#      remounted so that its own decrypted-content cache is empty too) and
#      warm (the second pass)
#   3. Dovecot: `doveadm import` of the corpus Maildir into INBOX, then
#      `doveadm fetch text all`, on ext4, gocryptfs, the mount, and on ext4
#      with mail_crypt (EC P-256 global keys made by openssl) + zlib (zstd);
#      on every setup Dovecot's lock files are in a local VOLATILEDIR and
#      mmap_disable = yes, as docs/dovecot.md configures it for the mount;
#      and on bindfs (a FUSE passthrough to ext4 that does no work of its
#      own: the floor any FUSE filesystem sets), when installed
#
# Usage: bench/mount.sh [CORPUS_DIR]
#   CORPUS_DIR: a directory of message files (searched recursively); default:
#   the SpamAssassin corpus of tests/integration/corpus.sh (6,046 messages).
#   COFFER_BIN: the coffer binary (default: coffer in PATH).
#   MOUNT_OPTS: extra arguments for `coffer mount` (e.g. "-o max_read=131072").
#   COFFER_MOUNT_URING=0: the mount serves through /dev/fuse even where the
#   kernel offers FUSE over io_uring (the line "# transport: ..." says which
#   one served; docs/operations.md, "FUSE on virtual machines").
#   SKIP_DOVECOT=1: measures 1 and 2 only. PERF=1: `perf record -g` of the
#   mount daemon during the cold read and the deliver (reports in the work
#   dir, kept with KEEP=1).
# Needs root (drop_caches, FUSE, Dovecot's mail user). Prints one line per
# measure: "<setup> <measure> <seconds>".
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
COFFER=${COFFER_BIN:-coffer}
W=$(mktemp -d /var/tmp/coffer-bench.XXXXXX)
chmod 0755 "$W"
VM=coffer-bench
id "$VM" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "$VM"
cleanup() {
	for d in "$W/mnt" "$W/gc" "$W/bmnt"; do
		mountpoint -q "$d" 2>/dev/null && { fusermount3 -u "$d" 2>/dev/null || umount -l "$d"; }
	done
	[ "${KEEP:-0}" = 1 ] && echo "# kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT
CORPUS=${1:-$(corpus_dir)}
find "$CORPUS" -type f ! -name index.tsv ! -name '.*' | sort >"$W/files"
echo "# corpus: $(wc -l <"$W/files") messages, $(du -sh "$CORPUS" | cut -f1) in $CORPUS" >&2

deliver() { # MAILDIR
	python3 - "$1" "$W/files" <<'PY'
import os, sys, time
d, files = sys.argv[1], [l.rstrip("\n") for l in open(sys.argv[2])]
data = [open(f, "rb").read() for f in files]
t = time.time()
for i, body in enumerate(data):
    base = "%d.M%dP1.bench" % (1700000000 + i, i)
    tmp = "%s/tmp/%s" % (d, base)
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.write(fd, body); os.fsync(fd); os.close(fd)
    os.rename(tmp, "%s/new/%s" % (d, base))
print("%.3f" % (time.time() - t))
PY
}
readall() { # MAILDIR
	local t0 t1
	t0=$(now)
	find "$1/new" -type f -exec cat {} + >/dev/null
	t1=$(now)
	echo "$t1 - $t0" | bc
}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
since() { echo "$(now) - $1" | bc; }

COFFER_MNT_PID=
cmount() {
	COFFER_STORE=$W/store COFFER_KEY_FILE=$W/key "$COFFER" mount "$W/mnt" --allow-user "$VM" \
		${MOUNT_OPTS:-} 2>>"$W/mount.log"
	COFFER_MNT_PID=$(awk '{print $1; exit}' "$W/store/locks/mount.lock")
}
cumount() { COFFER_STORE=$W/store COFFER_KEY_FILE=$W/key "$COFFER" umount "$W/mnt"; }
perf_on() { # NAME
	[ "${PERF:-0}" = 1 ] || return 0
	perf record -g -F 999 -p "$COFFER_MNT_PID" -o "$W/perf.$1.data" >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 0.5
}
perf_off() { # NAME
	[ "${PERF:-0}" = 1 ] || return 0
	kill -INT "$PERF_PID"
	wait "$PERF_PID" 2>/dev/null || true
	perf report -i "$W/perf.$1.data" --no-children --percent-limit 1.5 --stdio 2>/dev/null |
		grep -v '^$' | head -n 60 >"$W/perf.$1.txt" || true
	echo "# perf report of the mount daemon ($1): $W/perf.$1.txt" >&2
	[ "${KEEP:-0}" = 1 ] || sed 's/^/#   /' "$W/perf.$1.txt" | grep '%' | head -n 25 >&2
}

# ---- 1 and 2: deliver and read ----
mkdir -p "$W/plain/tmp" "$W/plain/new" "$W/plain/cur"
echo "ext4 deliver $(deliver "$W/plain")"
drop; echo "ext4 read-cold $(readall "$W/plain")"
echo "ext4 read-warm $(readall "$W/plain")"

if command -v gocryptfs >/dev/null; then
	mkdir -p "$W/gcc" "$W/gc"
	echo pw >"$W/pw"
	gocryptfs -q -init -passfile "$W/pw" "$W/gcc" >/dev/null 2>&1
	gocryptfs -q -allow_other -passfile "$W/pw" "$W/gcc" "$W/gc"
	mkdir -p "$W/gc/m/tmp" "$W/gc/m/new" "$W/gc/m/cur"
	echo "gocryptfs deliver $(deliver "$W/gc/m")"
	fusermount3 -u "$W/gc"
	gocryptfs -q -allow_other -passfile "$W/pw" "$W/gcc" "$W/gc"
	drop; echo "gocryptfs read-cold $(readall "$W/gc/m")"
	echo "gocryptfs read-warm $(readall "$W/gc/m")"
else
	echo "# gocryptfs missing (Debian: gocryptfs)" >&2
fi

COFFER_STORE=$W/store COFFER_KEY_FILE=$W/key "$COFFER" init >/dev/null
COFFER_STORE=$W/store COFFER_KEY_FILE=$W/key "$COFFER" account add bench@example.org >/dev/null
mkdir -p "$W/mnt"
cmount
perf_on deliver
echo "coffer deliver $(deliver "$W/mnt/bench@example.org")"
perf_off deliver
cumount
if grep -q "serving FUSE requests through io_uring" "$W/mount.log"; then
	echo "# transport: io_uring" >&2
else
	echo "# transport: /dev/fuse" >&2
fi
cmount
drop
perf_on read-cold
echo "coffer read-cold $(readall "$W/mnt/bench@example.org")"
perf_off read-cold
echo "coffer read-warm $(readall "$W/mnt/bench@example.org")"
echo "coffer read-warm2 $(readall "$W/mnt/bench@example.org")"
# the decryption share of a cold read: decrypting every blob without FUSE
drop
t=$(now)
COFFER_STORE=$W/store COFFER_KEY_FILE=$W/key "$COFFER" verify bench@example.org >/dev/null
echo "coffer verify-decrypt-all $(since "$t")"
cumount

[ "${SKIP_DOVECOT:-0}" = 1 ] && exit 0
if ! command -v doveadm >/dev/null; then
	echo "# dovecot missing (Debian: dovecot-imapd)" >&2
	exit 0
fi

# ---- 3: Dovecot import and fetch ----
SRC=$W/plain # the corpus as a Maildir (delivered above)
chown -R "$VM" "$SRC"
# as Dovecot's mail_crypt documentation makes them (PKCS#8 private key)
openssl ecparam -name prime256v1 -genkey 2>/dev/null | openssl pkey -out "$W/ec.key"
openssl pkey -in "$W/ec.key" -pubout -out "$W/ec.pub"
chmod 0644 "$W/ec.key" "$W/ec.pub"
dconf() { # NAME MAIL_LOCATION [crypt]
	local d=$W/dv-$1
	mkdir -p "$d/run" "$d/home" "$d/volatile"
	chown "$VM" "$d/home" "$d/volatile"
	cat >"$d/dovecot.conf" <<CONF
protocols =
base_dir = $d/run
state_dir = $d/run
log_path = $d/dovecot.log
ssl = no
first_valid_uid = 1
userdb {
  driver = static
  args = uid=$VM gid=$(id -gn "$VM") home=$d/home
}
passdb {
  driver = static
  args = nopassword=y
}
mail_location = $2:VOLATILEDIR=$d/volatile
mmap_disable = yes
namespace inbox {
  inbox = yes
}
CONF
	if [ "${3:-}" = crypt ]; then
		cat >>"$d/dovecot.conf" <<CONF
mail_plugins = \$mail_plugins zlib mail_crypt
plugin {
  zlib_save = zstd
  mail_crypt_global_private_key = <$W/ec.key
  mail_crypt_global_public_key = <$W/ec.pub
  mail_crypt_save_version = 2
}
CONF
	fi
	echo "$d/dovecot.conf"
}
dove() { # NAME MAIL_LOCATION [crypt]
	local conf t
	conf=$(dconf "$@")
	dovecot -c "$conf" # for doveadm's userdb lookups
	t=$(now)
	doveadm -c "$conf" import -u bench@example.org "maildir:$SRC" "" all
	echo "dovecot-$1 import $(since "$t")"
	drop
	t=$(now)
	doveadm -c "$conf" fetch -u bench@example.org text all >"$W/fetch.$1"
	echo "dovecot-$1 fetch-cold $(since "$t")"
	t=$(now)
	doveadm -c "$conf" fetch -u bench@example.org text all >"$W/fetch.$1"
	echo "dovecot-$1 fetch-warm $(since "$t")"
	echo "dovecot-$1 fetched-bytes $(wc -c <"$W/fetch.$1")"
	rm -f "$W/fetch.$1"
	dovecot -c "$conf" stop
}
mkdir -p "$W/dext4" && chown "$VM" "$W/dext4"
dove ext4 "maildir:$W/dext4/bench"
mkdir -p "$W/dcrypt" && chown "$VM" "$W/dcrypt"
dove ext4-mailcrypt-zstd "maildir:$W/dcrypt/bench" crypt
echo "dovecot-ext4-mailcrypt-zstd size-kb $(du -sk "$W/dcrypt" | cut -f1)"
if command -v gocryptfs >/dev/null; then
	mkdir -p "$W/gc/d" && chown "$VM" "$W/gc/d"
	dove gocryptfs "maildir:$W/gc/d/bench"
	fusermount3 -u "$W/gc"
fi
# the floor a FUSE filesystem sets: bindfs, a passthrough to ext4 that does
# no work of its own (libfuse's high-level API, its default options)
if command -v bindfs >/dev/null; then
	mkdir -p "$W/bsrc" "$W/bmnt" && chown "$VM" "$W/bsrc"
	bindfs "$W/bsrc" "$W/bmnt"
	dove bindfs "maildir:$W/bmnt/bench"
	fusermount3 -u "$W/bmnt"
else
	echo "# bindfs missing (Debian: bindfs): no FUSE floor for the import" >&2
fi
COFFER_STORE=$W/store COFFER_KEY_FILE=$W/key "$COFFER" account add dove@example.org >/dev/null
cmount
perf_on dovecot
dove coffer "maildir:$W/mnt/dove@example.org"
perf_off dovecot
cumount
