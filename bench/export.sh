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

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
ROUNDS=${ROUNDS:-3}
BENCH_DIR=${BENCH_DIR:-$ROOT/var/bench-export}

need_coffer_bin
need "apt-get install time" /usr/bin/time
CORPUS=$(corpus_dir)
bench_dir_fresh
MD=$BENCH_DIR/maildir
ST=$BENCH_DIR/store
KEY=$BENCH_DIR/coffer.key
A=bench@example.org

log "laying out the corpus as a Maildir"
# one copy each, an hour apart, every 7th message in new/
corpus_maildir "$CORPUS" "$MD" 1 3600 3600 7
N=$(find "$MD" -path '*/cur/*' -o -path '*/new/*' -type f | wc -l)
new_store "$ST" "$KEY" "$A"
log "importing $N messages"
"$COFFER_BIN" --store "$ST" --key-file "$KEY" import "$A" "$MD" >/dev/null
BYTES=$(du -sb "$MD" | cut -f1)

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

bench_dir_remove
