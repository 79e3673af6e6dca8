#!/usr/bin/env bash
# Export benchmark: `coffer export --to` of the SpamAssassin corpus store
# (6,046 messages) against `cp -a` of the equivalent plain Maildir, on the
# same disk, warm page cache, ROUNDS alternating rounds (default 3), median.
# `cp -a` is timed alone and followed by `sync -f` (export --to ends with a
# syncfs, so "cp -a + sync" is the like-for-like durability). Also: --tar and
# --tar .zst times, peak RSS of each export, and the peak RSS of exporting an
# account holding one 50 MiB message. Prints a markdown table.
#
#   bash bench/export.sh
#
# The store is built by laying the corpus out as a Maildir (INBOX plus one
# dot-folder per corpus group, mixed flags) and importing it with
# `coffer import`; the same Maildir is what `cp -a` copies.
#
# Environment: COFFER_BIN (default: a release build in ./build-bench),
# BENCH_DIR (scratch space, default ./var/bench-export; removed afterwards
# unless BENCH_KEEP=1), ROUNDS (default 3).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
BENCH_DIR=${BENCH_DIR:-$ROOT/var/bench-export}

log() { echo "bench: $*" >&2; }

if [ -z "${COFFER_BIN:-}" ]; then
	log "building a release build in build-bench"
	[ -f build-bench/meson-private/coredata.dat ] || meson setup build-bench --buildtype=release >/dev/null
	ninja -C build-bench >/dev/null
	COFFER_BIN=$ROOT/build-bench/tools/coffer
fi
[ -x /usr/bin/time ] || { log "/usr/bin/time missing (apt-get install time)"; exit 1; }

CORPUS=$(bash tests/integration/corpus.sh)
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
MD=$BENCH_DIR/maildir
ST=$BENCH_DIR/store
KEY=$BENCH_DIR/coffer.key
A=bench@example.org

log "laying out the corpus as a Maildir"
python3 - "$CORPUS" "$MD" <<'PY'
import os, shutil, sys
corpus, md = sys.argv[1], sys.argv[2]
flags = ['', 'S', 'RS', 'FS', 'S', '']
for d in ['cur', 'new', 'tmp']:
    os.makedirs(os.path.join(md, d))
n = 0
for line in open(os.path.join(corpus, 'index.tsv')):
    rel = line.split('\t')[0]
    group = rel.split('/')[0]
    box = md if group == 'easy-ham-1' else os.path.join(md, '.' + group.replace('-', '_'))
    if not os.path.isdir(os.path.join(box, 'cur')):
        for d in ['cur', 'new', 'tmp']:
            os.makedirs(os.path.join(box, d))
        open(os.path.join(box, 'maildirfolder'), 'w').close()
    f = flags[n % len(flags)]
    name = '%d.M%dP1.bench' % (1000000000 + n * 3600, n)
    dst = os.path.join(box, 'new', name) if n % 7 == 0 else os.path.join(box, 'cur', name + ':2,' + f)
    shutil.copyfile(os.path.join(corpus, rel), dst)
    t = 1000000000 + n * 3600
    os.utime(dst, (t, t))
    n += 1
PY
N=$(find "$MD" -path '*/cur/*' -o -path '*/new/*' -type f | wc -l)
"$COFFER_BIN" --store "$ST" --key-file "$KEY" init >/dev/null
"$COFFER_BIN" --store "$ST" --key-file "$KEY" account add "$A" >/dev/null
log "importing $N messages"
"$COFFER_BIN" --store "$ST" --key-file "$KEY" import "$A" "$MD" >/dev/null
BYTES=$(du -sb "$MD" | cut -f1)

now() { date +%s.%N; }
elapsed() { awk -v a="$2" -v b="$1" 'BEGIN { printf "%.3f\n", a - b }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# warm the page cache for both sides
cat "$(find "$MD" -type f | head -1)" >/dev/null
find "$MD" -type f -exec cat {} + >/dev/null
find "$ST" -type f -exec cat {} + >/dev/null

for k in cp cpsync export tar zst; do : >"$BENCH_DIR/$k.times"; done
for r in $(seq 1 "$ROUNDS"); do
	rm -rf "$BENCH_DIR/cp" "$BENCH_DIR/out" "$BENCH_DIR/x.tar" "$BENCH_DIR/x.tar.zst"
	sync
	t0=$(now)
	cp -a "$MD" "$BENCH_DIR/cp"
	t1=$(now)
	sync -f "$BENCH_DIR/cp"
	t2=$(now)
	elapsed "$t0" "$t1" >>"$BENCH_DIR/cp.times"
	elapsed "$t0" "$t2" >>"$BENCH_DIR/cpsync.times"
	sync
	t0=$(now)
	/usr/bin/time -f %M -o "$BENCH_DIR/rss.export" \
		"$COFFER_BIN" --store "$ST" --key-file "$KEY" export "$A" --to "$BENCH_DIR/out" >/dev/null
	t1=$(now)
	elapsed "$t0" "$t1" >>"$BENCH_DIR/export.times"
	t0=$(now)
	/usr/bin/time -f %M -o "$BENCH_DIR/rss.tar" \
		"$COFFER_BIN" --store "$ST" --key-file "$KEY" export "$A" --tar "$BENCH_DIR/x.tar" >/dev/null
	t1=$(now)
	elapsed "$t0" "$t1" >>"$BENCH_DIR/tar.times"
	t0=$(now)
	/usr/bin/time -f %M -o "$BENCH_DIR/rss.zst" \
		"$COFFER_BIN" --store "$ST" --key-file "$KEY" export "$A" --tar "$BENCH_DIR/x.tar.zst" >/dev/null
	t1=$(now)
	elapsed "$t0" "$t1" >>"$BENCH_DIR/zst.times"
	log "round $r: cp -a $(tail -1 "$BENCH_DIR/cp.times") s (+sync $(tail -1 "$BENCH_DIR/cpsync.times") s)," \
		"export --to $(tail -1 "$BENCH_DIR/export.times") s, --tar $(tail -1 "$BENCH_DIR/tar.times") s," \
		"--tar .zst $(tail -1 "$BENCH_DIR/zst.times") s"
done
# the export must equal the source (names, contents)
diff -r "$MD" "$BENCH_DIR/out" -x subscriptions -x dovecot-keywords >/dev/null ||
	{ log "export differs from the source Maildir"; exit 1; }

t_cp=$(median <"$BENCH_DIR/cp.times")
t_cps=$(median <"$BENCH_DIR/cpsync.times")
t_ex=$(median <"$BENCH_DIR/export.times")
t_tar=$(median <"$BENCH_DIR/tar.times")
t_zst=$(median <"$BENCH_DIR/zst.times")
rate() { awk -v n="$N" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# one 50 MiB message: memory must not follow the message size
"$COFFER_BIN" --store "$ST" --key-file "$KEY" account add big@example.org >/dev/null
{ printf 'From: a@example.org\nSubject: 50 MiB\n\n'; head -c $((50 * 800 * 1024)) /dev/urandom | base64; } |
	head -c $((50 * 1024 * 1024)) >"$BENCH_DIR/big.eml" || true # base64 gets SIGPIPE
[ "$(stat -c %s "$BENCH_DIR/big.eml")" = $((50 * 1024 * 1024)) ] || { log "could not make the 50 MiB message"; exit 1; }
"$COFFER_BIN" --store "$ST" --key-file "$KEY" deliver big@example.org <"$BENCH_DIR/big.eml"
/usr/bin/time -f %M -o "$BENCH_DIR/rss.big" \
	"$COFFER_BIN" --store "$ST" --key-file "$KEY" export big@example.org --to "$BENCH_DIR/big" >/dev/null
/usr/bin/time -f %M -o "$BENCH_DIR/rss.bigzst" \
	"$COFFER_BIN" --store "$ST" --key-file "$KEY" export big@example.org --tar "$BENCH_DIR/big.tar.zst" >/dev/null
cmp -s "$BENCH_DIR/big.eml" "$(find "$BENCH_DIR/big/new" -type f)" || { log "50 MiB export differs"; exit 1; }

cat <<EOF

Export of the SpamAssassin corpus ($N messages, $BYTES bytes as a plain Maildir), warm cache,
median of $ROUNDS alternating rounds, same disk.
Rounds (s): cp -a $(tr '\n' ' ' <"$BENCH_DIR/cp.times")/ cp -a + sync $(tr '\n' ' ' <"$BENCH_DIR/cpsync.times")/ export --to $(tr '\n' ' ' <"$BENCH_DIR/export.times")

| measure | plain Maildir | coffer export | coffer / plain (target) |
|---|---|---|---|
| time, --to vs cp -a | $(printf %.2f "$t_cp") s | $(printf %.2f "$t_ex") s | $(ratio "$t_cp" "$t_ex")x speed |
| time, --to (syncfs) vs cp -a + sync -f | $(printf %.2f "$t_cps") s | $(printf %.2f "$t_ex") s | $(ratio "$t_cps" "$t_ex")x speed (>= 0.5x) |
| messages/s | $(rate "$t_cp") (cp -a) | $(rate "$t_ex") | |
| --tar FILE | | $(printf %.2f "$t_tar") s ($(rate "$t_tar") msg/s) | |
| --tar FILE.zst | | $(printf %.2f "$t_zst") s ($(rate "$t_zst") msg/s) | |
| peak RSS, $N messages | | --to $(cat "$BENCH_DIR/rss.export") KiB, --tar $(cat "$BENCH_DIR/rss.tar") KiB, .zst $(cat "$BENCH_DIR/rss.zst") KiB | |
| peak RSS, one 50 MiB message | | --to $(cat "$BENCH_DIR/rss.big") KiB, .zst $(cat "$BENCH_DIR/rss.bigzst") KiB | |
EOF

if [ "${BENCH_KEEP:-0}" != 1 ]; then
	rm -rf "$BENCH_DIR"
fi
