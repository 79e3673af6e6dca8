#!/usr/bin/env bash
# Delivery benchmark: `coffer deliver` against a plain Maildir delivery of the
# same shape (bench/plain-deliver.c: one process per message, write tmp/,
# fsync, rename to new/), over the SpamAssassin corpus (6,046 messages), on the
# same disk. The two loops take turns every BLOCK messages (default 250),
# ROUNDS rounds (default 3); the median of the rounds' ratios is reported.
# Also: store size against the plain Maildir (du), and the peak RSS of
# delivering and reading a 5 MiB and a 50 MiB message.
# Prints a markdown table.
#
#   bash bench/deliver.sh
#
# Environment: COFFER_BIN (default: a release build in ./build-bench),
# BENCH_DIR (scratch space, default ./var/bench; removed afterwards unless
# BENCH_KEEP=1), ROUNDS (default 3), BLOCK (default 250).
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
ROUNDS=${ROUNDS:-3}
BENCH_DIR=${BENCH_DIR:-$ROOT/var/bench}

need_coffer_bin
need "apt-get install time" /usr/bin/time
CORPUS=$(corpus_dir)
bench_dir_fresh
cc -O2 -o "$BENCH_DIR/plain-deliver" bench/plain-deliver.c
cut -f1 "$CORPUS/index.tsv" | sed "s#^#$CORPUS/#" >"$BENCH_DIR/list"
N=$(wc -l <"$BENCH_DIR/list")

# Side by side: within a round the list is cut into blocks of BLOCK messages
# (default 250), and the two loops take turns block by block (which goes
# first alternates), so that both see the same moments of this shared disk;
# rounds an hour's drift apart would compare the disk, not the code (a plain
# round alone ranged 7 to 12 s within one run). A round's times are the sums
# of its blocks; the ratio is the median of the rounds' ratios.
#
# Each round writes into its own directory, and nothing is removed until all
# rounds are done: on ext4 without a journal (this machine's disk), inodes
# freed in the last minutes are skipped, one by one, by every new inode in
# their block group (ext4's recently_deleted()), so removing a round's 6,046
# files slows the file creations of the next rounds, the more so the more
# block groups a tree spans (the store's 256 blob directories against the
# Maildir's one): the rounds then rise, 10.8, 12.8, 14.3 s.
BLOCK=${BLOCK:-250}
split -l "$BLOCK" -d -a 4 "$BENCH_DIR/list" "$BENCH_DIR/block."

plain_block() { # MAILDIR LIST
	local f t0 t1
	t0=$(now)
	while IFS= read -r f; do
		"$BENCH_DIR/plain-deliver" "$1" <"$f" || { log "plain-deliver failed on $f"; exit 1; }
	done <"$2"
	t1=$(now)
	elapsed "$t0" "$t1"
}

coffer_block() { # STORE KEY LIST
	local f t0 t1
	t0=$(now)
	while IFS= read -r f; do
		"$COFFER_BIN" --store "$1" --key-file "$2" deliver bench@example.org <"$f" ||
			{ log "coffer deliver failed on $f"; exit 1; }
	done <"$3"
	t1=$(now)
	elapsed "$t0" "$t1"
}

round() { # ROUND: prints "plain-seconds coffer-seconds"
	local md=$BENCH_DIR/maildir.$1 st=$BENCH_DIR/store.$1 key=$BENCH_DIR/coffer.key.$1
	local b i=0 p c tp=0 tc=0
	mkdir -p "$md/tmp" "$md/new" "$md/cur"
	new_store "$st" "$key" bench@example.org
	sync
	for b in "$BENCH_DIR"/block.*; do
		if [ $((i % 2)) = 0 ]; then
			p=$(plain_block "$md" "$b")
			c=$(coffer_block "$st" "$key" "$b")
		else
			c=$(coffer_block "$st" "$key" "$b")
			p=$(plain_block "$md" "$b")
		fi
		tp=$(awk -v a="$tp" -v b="$p" 'BEGIN { printf "%.3f", a + b }')
		tc=$(awk -v a="$tc" -v b="$c" 'BEGIN { printf "%.3f", a + b }')
		i=$((i + 1))
	done
	echo "$tp $tc"
}

: >"$BENCH_DIR/plain.times"
: >"$BENCH_DIR/coffer.times"
: >"$BENCH_DIR/ratios"
for r in $(seq 1 "$ROUNDS"); do
	read -r p c < <(round "$r")
	echo "$p" >>"$BENCH_DIR/plain.times"
	echo "$c" >>"$BENCH_DIR/coffer.times"
	awk -v a="$p" -v b="$c" 'BEGIN { printf "%.3f\n", a / b }' >>"$BENCH_DIR/ratios"
	log "round $r: plain Maildir $p s, coffer deliver $c s"
done
# the last round's are measured below
mv "$BENCH_DIR/maildir.$ROUNDS" "$BENCH_DIR/maildir"
mv "$BENCH_DIR/store.$ROUNDS" "$BENCH_DIR/store"
mv "$BENCH_DIR/coffer.key.$ROUNDS" "$BENCH_DIR/coffer.key"
rm -rf "$BENCH_DIR"/maildir.* "$BENCH_DIR"/store.* "$BENCH_DIR"/coffer.key.* "$BENCH_DIR"/block.*
tp=$(median <"$BENCH_DIR/plain.times")
tc=$(median <"$BENCH_DIR/coffer.times")
rp=$(awk -v n="$N" -v t="$tp" 'BEGIN { printf "%.1f", n / t }')
rc=$(awk -v n="$N" -v t="$tc" 'BEGIN { printf "%.1f", n / t }')
ratio=$(median <"$BENCH_DIR/ratios" | awk '{ printf "%.2f", $1 }')

# Sizes: apparent bytes (du -sb) and allocated bytes (du -s --block-size=1).
sp=$(du -sb "$BENCH_DIR/maildir" | cut -f1)
sc=$(du -sb "$BENCH_DIR/store" | cut -f1)
ap=$(du -s --block-size=1 "$BENCH_DIR/maildir" | cut -f1)
ac=$(du -s --block-size=1 "$BENCH_DIR/store" | cut -f1)
# The store's space reserve (engine/reserve.h) is a fixed 4 MiB whatever the
# mail: reported apart, so the ratio measures what the mail costs.
rs=0 ra=0
if [ -f "$BENCH_DIR/store/reserve" ]; then
	rs=$(du -sb "$BENCH_DIR/store/reserve" | cut -f1)
	ra=$(du -s --block-size=1 "$BENCH_DIR/store/reserve" | cut -f1)
fi
sc=$((sc - rs)) ac=$((ac - ra))
sratio=$(awk -v a="$sc" -v b="$sp" 'BEGIN { printf "%.2f", a / b }')
aratio=$(awk -v a="$ac" -v b="$ap" 'BEGIN { printf "%.2f", a / b }')

# Peak RSS for one big message (random base64 body: barely compressible).
st=$BENCH_DIR/store key=$BENCH_DIR/coffer.key
rss_rows=()
for mib in 5 50; do
	m=$BENCH_DIR/big$mib.eml
	{ printf 'From: a@example.org\nSubject: %s MiB\n\n' "$mib"; head -c $((mib * 800 * 1024)) /dev/urandom | base64; } >"$m"
	truncate -s $((mib * 1024 * 1024)) "$m"
	/usr/bin/time -f %M -o "$BENCH_DIR/rss" "$COFFER_BIN" --store "$st" --key-file "$key" \
		deliver bench@example.org --folder Big <"$m"
	rd=$(tail -1 "$BENCH_DIR/rss")
	/usr/bin/time -f %M -o "$BENCH_DIR/rss" "$BENCH_DIR/plain-deliver" "$BENCH_DIR/maildir" <"$m"
	rp_=$(tail -1 "$BENCH_DIR/rss")
	uid=$("$COFFER_BIN" --store "$st" --key-file "$key" ls bench@example.org Big --json | jq 'max_by(.uid) | .uid')
	/usr/bin/time -f %M -o "$BENCH_DIR/rss" "$COFFER_BIN" --store "$st" --key-file "$key" \
		cat bench@example.org Big "$uid" >"$BENCH_DIR/out"
	rcat=$(tail -1 "$BENCH_DIR/rss")
	cmp -s "$BENCH_DIR/out" "$m" || { log "cat of the $mib MiB message differs"; exit 1; }
	rss_rows+=("| peak RSS, $mib MiB message | ${rp_} KiB (plain-deliver) | deliver ${rd} KiB, cat ${rcat} KiB | |")
	rm -f "$m" "$BENCH_DIR/out"
done

cat <<EOF

Delivery of the SpamAssassin corpus ($N messages), one process per message, $ROUNDS rounds, the two loops taking turns every $BLOCK messages.
Rounds (s): plain $(tr '\n' ' ' <"$BENCH_DIR/plain.times")/ coffer $(tr '\n' ' ' <"$BENCH_DIR/coffer.times")/ ratio $(tr '\n' ' ' <"$BENCH_DIR/ratios")

| measure | plain Maildir (write tmp, fsync, rename) | coffer deliver | coffer / plain (target) |
|---|---|---|---|
| time to deliver all | $(printf %.2f "$tp") s | $(printf %.2f "$tc") s | |
| messages/s (median round) | $(printf %.0f "$rp") | $(printf %.0f "$rc") | ${ratio}x, median of the rounds' ratios (>= 0.7x) |
| size, du -sb (apparent), without the $rs B space reserve | $sp B | $sc B | ${sratio}x (<= 0.6x) |
| size, du -s (allocated), without the $ra B space reserve | $ap B | $ac B | ${aratio}x |
$(printf '%s\n' "${rss_rows[@]}")
EOF

bench_dir_remove
