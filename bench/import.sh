#!/usr/bin/env bash
# Import benchmark: `coffer import` of the SpamAssassin corpus laid out as a
# Maildir (6,046 messages; with SCALE=10 also 60,460), against a plain Maildir
# copy that makes each file durable the usual way (write tmp/, fsync, rename
# into cur/, as bench/plain-copy.py does), and, when Dovecot is installed,
# against `doveadm import` into a Dovecot Maildir with mail_crypt + zstd
# (docs: /work/shared/anchors.md; Dovecot runs as the unprivileged user
# coffer-bench, made when missing, so the script needs root). Same disk for
# all; the three run alternately, ROUNDS times. Reports wall time and the
# ratios, plus coffer's peak RSS for each size, split into anonymous memory,
# LMDB's map and the binary, as a markdown table on stdout.
#
#   bash bench/import.sh
#
# Environment: COFFER_BIN (default: a release build in ./build-bench),
# BENCH_DIR (scratch, default ./var/bench-import; removed unless BENCH_KEEP=1),
# ROUNDS (default 3; the median is reported), SCALES (default "1 10"; Dovecot
# runs at scale 1 only), SKIP_DOVECOT=1 (leave Dovecot out),
# DOVECOT_MAIL_FSYNC (default optimized, Dovecot's default; "never" gives
# Dovecot no disk waits at all, a stricter baseline than coffer's durable
# import), RSS_SERIES=FILE (see rss-sampler.py below).
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
ROUNDS=${ROUNDS:-3}
SCALES=${SCALES:-1 10}
BENCH_DIR=${BENCH_DIR:-$ROOT/var/bench-import}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

need_coffer_bin
need "apt-get install time" /usr/bin/time
CORPUS=$(corpus_dir)
bench_dir_fresh
bench_dir_remove_on_exit

# The plain baseline: copy every message of SRC's cur/ into DST/cur, each
# through tmp/ with fsync, then rename (the Maildir delivery protocol), and
# fsync cur/ at the end.
cat >"$BENCH_DIR/plain-copy.py" <<'PY'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
for d in ('tmp', 'new', 'cur'):
    os.makedirs(os.path.join(dst, d), exist_ok=True)
for name in os.listdir(os.path.join(src, 'cur')):
    with open(os.path.join(src, 'cur', name), 'rb') as f:
        data = f.read()
    tmp = os.path.join(dst, 'tmp', name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, os.path.join(dst, 'cur', name))
dfd = os.open(os.path.join(dst, 'cur'), os.O_RDONLY)
os.fsync(dfd)
os.close(dfd)
PY

# The split of coffer's peak RSS: /usr/bin/time's %M counts every resident
# page, including the clean pages of LMDB's read-only map of data.mdb (page
# cache the kernel may drop at will) and of the binary and its libraries.
# rss-sampler.py TIME_PID follows the child of /usr/bin/time and reads its
# /proc/PID/smaps every 10 ms: it prints the peak anonymous RSS (heap, stack,
# LMDB's dirty-page buffers: the memory the import really owns), the peak
# RSS of the data.mdb map, and of the other files (binary, libraries), in KiB.
# With RSS_SERIES=FILE it also appends "seconds anon lmdb files" to FILE about
# once a second (whether the anonymous part levels off as the import goes on).
cat >"$BENCH_DIR/rss-sampler.py" <<'PY'
import os, sys, time
tpid = sys.argv[1]
series = open(os.environ['RSS_SERIES'], 'a') if os.environ.get('RSS_SERIES') else None
t0 = time.monotonic()
last = -1.0
pid = None
while pid is None:
    try:
        kids = open('/proc/%s/task/%s/children' % (tpid, tpid)).read().split()
    except OSError:
        break
    if kids:
        pid = kids[0]
    else:
        time.sleep(0.001)
peak = {'anon': 0, 'lmdb': 0, 'files': 0}
while pid:
    try:
        text = open('/proc/%s/smaps' % pid).read()
    except OSError:
        break
    now = {'anon': 0, 'lmdb': 0, 'files': 0}
    kind = 'anon'
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if '-' in f[0] and not f[0].endswith(':'):
            path = f[5] if len(f) > 5 else ''
            kind = 'lmdb' if path.endswith('/data.mdb') else 'files' if path.startswith('/') else 'anon'
        elif f[0] == 'Rss:':
            now[kind] += int(f[1])
    if now['anon'] + now['lmdb'] + now['files'] == 0:
        break  # a zombie
    for k in peak:
        peak[k] = max(peak[k], now[k])
    if series and time.monotonic() - last >= 1.0:
        last = time.monotonic()
        series.write('%.1f %d %d %d\n' % (last - t0, now['anon'], now['lmdb'], now['files']))
        series.flush()
    time.sleep(0.01)
print(peak['anon'], peak['lmdb'], peak['files'])
PY

# layout SCALE: the corpus SCALE times into BENCH_DIR/md-SCALE/cur (flags S).
layout() {
	local scale=$1 md=$BENCH_DIR/md-$1 r rel size i=0
	mkdir -p "$md/cur" "$md/new" "$md/tmp"
	for r in $(seq 1 "$scale"); do
		while IFS=$'\t' read -r rel size _; do
			i=$((i + 1))
			cp "$CORPUS/$rel" "$md/cur/$((1000000000 + i)).M${i}R$r.bench,S=$size:2,S"
		done <"$CORPUS/index.tsv"
	done
	echo "$md"
}

coffer_round() { # MD -> "seconds peak_kib anon_kib lmdb_kib files_kib"
	local md=$1 st=$BENCH_DIR/store key=$BENCH_DIR/coffer.key tpid split
	new_store "$st" "$key" bench@example.org
	sync
	/usr/bin/time -f "%e %M" -o "$BENCH_DIR/time.out" \
		"$COFFER_BIN" --store "$st" --key-file "$key" import bench@example.org "$md" >/dev/null &
	tpid=$!
	split=$(python3 "$BENCH_DIR/rss-sampler.py" "$tpid")
	wait "$tpid"
	echo "$(cat "$BENCH_DIR/time.out") $split"
}

plain_round() {
	local md=$1 dst=$BENCH_DIR/plain t0 t1
	rm -rf "$dst"
	sync
	t0=$(now)
	python3 "$BENCH_DIR/plain-copy.py" "$md" "$dst"
	t1=$(now)
	elapsed "$t0" "$t1"
}

# Dovecot with mail_crypt (global EC P-256 keys) + zlib/zstd, doveadm import.
# Dovecot refuses to deliver as root (uid 0 is below first_valid_uid), so the
# mail belongs to an unprivileged system user ($VM, made when missing, as
# bench/mount.sh does): the source Maildir and the keys are handed to it and
# the target lies in a directory it owns. Dovecot 2.3 (Debian 12) names the
# compression plugin `zlib` (`zlib_save = zstd`); 2.4 renamed it
# mail_compress.
VM=coffer-bench
dovecot_setup() { # once: the user and the key pair
	local k=$BENCH_DIR/dovecot-keys
	id "$VM" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "$VM"
	mkdir -p "$k"
	# as Dovecot's mail_crypt documentation makes them (PKCS#8 private key)
	openssl ecparam -name prime256v1 -genkey 2>/dev/null | openssl pkey -out "$k/ec.key"
	openssl pkey -in "$k/ec.key" -pubout -out "$k/ec.pub"
	chown -R "$VM" "$k"
	chmod 0600 "$k/ec.key"
	chmod 0755 "$BENCH_DIR"
}

dovecot_round() { # MD -> seconds, or n/a
	local md=$1 d=$BENCH_DIR/dovecot k=$BENCH_DIR/dovecot-keys t0 t1
	rm -rf "$d"
	mkdir -p "$d/run" "$d/home" "$d/mail"
	chown "$VM" "$d/home" "$d/mail"
	chown -R "$VM" "$md" # doveadm reads the source as the mail user
	cat >"$d/dovecot.conf" <<EOF
protocols =
base_dir = $d/run
state_dir = $d/run
log_path = $d/log
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
mail_location = maildir:$d/mail/bench
mail_fsync = ${DOVECOT_MAIL_FSYNC:-optimized}
namespace inbox {
  inbox = yes
}
mail_plugins = \$mail_plugins zlib mail_crypt
plugin {
  zlib_save = zstd
  mail_crypt_global_private_key = <$k/ec.key
  mail_crypt_global_public_key = <$k/ec.pub
  mail_crypt_save_version = 2
}
EOF
	dovecot -c "$d/dovecot.conf" # for the auth service doveadm asks
	sync
	t0=$(now)
	doveadm -c "$d/dovecot.conf" import -u bench@example.org "maildir:$md" "" all >/dev/null 2>"$d/err" || {
		log "doveadm import failed: $(head -3 "$d/err")"
		dovecot -c "$d/dovecot.conf" stop >/dev/null 2>&1 || true
		echo "n/a"
		return
	}
	t1=$(now)
	dovecot -c "$d/dovecot.conf" stop >/dev/null 2>&1 || true
	dovecot_check "$md" "$d/mail/bench" || { echo "n/a"; return; }
	elapsed "$t0" "$t1"
}

# dovecot_check SRC DST: the import holds every message and stored them
# encrypted (mail_crypt files begin "CRYPTED"), so the figure is the one the
# issue asks about.
dovecot_check() {
	local n_src n_dst magic
	n_src=$(find "$1/cur" "$1/new" -type f | wc -l)
	n_dst=$(find "$2/cur" "$2/new" -type f | wc -l)
	[ "$n_src" = "$n_dst" ] || { log "doveadm import stored $n_dst of $n_src messages"; return 1; }
	magic=$(head -c 7 "$(find "$2/cur" "$2/new" -type f | head -1)")
	[ "$magic" = CRYPTED ] || { log "doveadm import did not encrypt (mail_crypt not loaded?)"; return 1; }
}

have_dovecot=0
if [ "${SKIP_DOVECOT:-0}" != 1 ] && command -v doveadm >/dev/null && [ -f /usr/lib/dovecot/modules/lib10_mail_crypt_plugin.so ] &&
	[ -f /usr/lib/dovecot/modules/lib20_zlib_plugin.so ]; then
	have_dovecot=1
	dovecot_setup
fi

echo "| messages | coffer import (s) | plain Maildir copy, fsync each (s) | coffer / plain throughput | doveadm import, mail_crypt+zstd (s) | coffer speed-up vs Dovecot | coffer peak RSS | of which anonymous (heap) / data.mdb map / binary+libs |"
echo "|---|---|---|---|---|---|---|---|"
for scale in $SCALES; do
	md=$(layout "$scale")
	n=$(find "$md/cur" -type f | wc -l)
	: >"$BENCH_DIR/c" ; : >"$BENCH_DIR/p" ; : >"$BENCH_DIR/d" ; : >"$BENCH_DIR/rss"
	: >"$BENCH_DIR/anon" ; : >"$BENCH_DIR/lmdb" ; : >"$BENCH_DIR/files"
	for r in $(seq 1 "$ROUNDS"); do
		read -r secs kib anon lmdb files < <(coffer_round "$md")
		echo "$secs" >>"$BENCH_DIR/c"
		echo "$kib" >>"$BENCH_DIR/rss"
		echo "$anon" >>"$BENCH_DIR/anon"
		echo "$lmdb" >>"$BENCH_DIR/lmdb"
		echo "$files" >>"$BENCH_DIR/files"
		p=$(plain_round "$md")
		echo "$p" >>"$BENCH_DIR/p"
		dv=n/a
		if [ "$have_dovecot" = 1 ] && [ "$scale" = 1 ]; then
			dv=$(dovecot_round "$md")
			[ "$dv" = n/a ] || echo "$dv" >>"$BENCH_DIR/d"
		fi
		log "$n messages, round $r: coffer $secs s (peak $kib KiB: anon $anon, data.mdb $lmdb, binary+libs $files), plain $p s, dovecot $dv s"
	done
	c=$(median <"$BENCH_DIR/c")
	p=$(median <"$BENCH_DIR/p")
	rss=$(sort -n "$BENCH_DIR/rss" | tail -1)
	anon=$(sort -n "$BENCH_DIR/anon" | tail -1)
	lmdb=$(sort -n "$BENCH_DIR/lmdb" | tail -1)
	files=$(sort -n "$BENCH_DIR/files" | tail -1)
	if [ -s "$BENCH_DIR/d" ]; then
		dv=$(median <"$BENCH_DIR/d")
		sp=$(awk -v a="$dv" -v b="$c" 'BEGIN { printf "%.1f×", a / b }')
	else
		dv=n/a sp=n/a
	fi
	ratio=$(awk -v a="$p" -v b="$c" 'BEGIN { printf "%.2f×", a / b }')
	echo "| $n | $c | $p | $ratio | $dv | $sp | $(mib "$rss") MiB | $(mib "$anon") / $(mib "$lmdb") / $(mib "$files") MiB |"
	rm -rf "$md"
done
