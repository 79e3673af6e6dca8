#!/usr/bin/env bash
# Deliver the whole SpamAssassin corpus (6,046 real messages) with
# `coffer deliver`, one process per message, into one account (each corpus
# group into its own folder), then `cat` every message back and compare byte
# for byte; check `ls --json` counts and sizes. Groups are delivered by
# $JOBS parallel workers (default 2), so deliveries also run concurrently.
# Prints TAP.
. "$(dirname "$0")/lib.sh"

CORPUS=$(bash "$T_HERE/corpus.sh") || { echo "Bail out! corpus fetch failed"; exit 1; }
INDEX=$CORPUS/index.tsv
[ "$(wc -l <"$INDEX")" = 6046 ]
ok $? "corpus index lists 6046 messages"

A=corpus@example.org
new_store corpus || { fail "init"; done_testing; }
c account add "$A"
expect_success && pass "account add" || fail "account add"

# group -> folder as given to --folder ('.' and '/' both used) and its canonical name
GROUPS_=(easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2)
declare -A FOLDER_ARG=([easy-ham-1]=INBOX [easy-ham-2]=Archive/easy-ham-2 [hard-ham-1]=Archive.hard-ham-1
	[spam-1]=Junk [spam-2]=Junk/2002)
declare -A FOLDER=([easy-ham-1]=INBOX [easy-ham-2]=Archive/easy-ham-2 [hard-ham-1]=Archive/hard-ham-1
	[spam-1]=Junk [spam-2]=Junk/2002)

W=$T_TMP/work
mkdir -p "$W"
# The worker: deliver (or read back) one group, in index order.
cat >"$W/worker.sh" <<'EOF'
set -u
mode=$1 corpus=$2 w=$3 group=$4 folder=$5
fails=$w/$group.$mode.fail
: >"$fails"
if [ "$mode" = deliver ]; then
	grep "^$group/" "$corpus/index.tsv" | cut -f1 | while IFS= read -r rel; do
		"$COFFER_BIN" --store "$S" --key-file "$K" deliver "$A" --folder "$folder" \
			<"$corpus/$rel" >/dev/null 2>"$w/$group.err"
		rc=$?
		[ "$rc" = 0 ] || echo "$rel exit $rc: $(head -c 300 "$w/$group.err")" >>"$fails"
	done
else
	# lines: uid TAB corpus-relative path
	while IFS=$'\t' read -r uid rel; do
		if ! "$COFFER_BIN" --store "$S" --key-file "$K" cat "$A" "$folder" "$uid" \
			>"$w/$group.out" 2>"$w/$group.err"; then
			echo "$rel uid $uid: cat failed: $(head -c 300 "$w/$group.err")" >>"$fails"
		elif ! cmp -s "$w/$group.out" "$corpus/$rel"; then
			echo "$rel uid $uid: differs ($(cmp "$w/$group.out" "$corpus/$rel" 2>&1 | head -1))" >>"$fails"
		fi
	done <"$w/$group.map"
fi
EOF
export S K A

# run_workers MODE: run the worker over every group, $JOBS at a time.
run_workers() {
	local g
	for g in "${GROUPS_[@]}"; do
		printf '%s\0%s\0' "$g" "${FOLDER_ARG[$g]}"
	done | xargs -0 -n 2 -P "${JOBS:-2}" bash "$W/worker.sh" "$1" "$CORPUS" "$W"
}
# report MODE: print the first failures of MODE as diagnostics; 0 if none.
report() {
	local n
	n=$(cat "$W"/*."$1".fail 2>/dev/null | wc -l)
	if [ "$n" != 0 ]; then
		diag "$n failures, first ones:"
		diag "$(cat "$W"/*."$1".fail | head -10)"
		return 1
	fi
	return 0
}

start=$(date +%s)
run_workers deliver
secs=$(($(date +%s) - start))
report deliver
ok $? "delivered all 6046 messages with coffer deliver (${secs}s)"

total=0
for g in "${GROUPS_[@]}"; do
	f=${FOLDER[$g]}
	grep "^$g/" "$INDEX" | cut -f1,2 >"$W/$g.want"
	want=$(wc -l <"$W/$g.want")
	c ls "$A" "$f" --json
	cp "$R_OUT" "$W/$g.json"
	got=$(jq length "$W/$g.json" 2>/dev/null)
	total=$((total + ${got:-0}))
	expect_success && [ "$got" = "$want" ]
	ok $? "ls --json $f: $want messages (got ${got:-none})"
	# Within a group delivery was sequential, so uid order is index order.
	jq -r 'sort_by(.uid) | .[] | "\(.uid)\t\(.size)"' "$W/$g.json" >"$W/$g.got" 2>/dev/null
	paste <(cut -f2 "$W/$g.want") <(cut -f2 "$W/$g.got") | awk -F'\t' '$1 != $2 { bad++ } END { exit bad > 0 }' &&
		[ "$(wc -l <"$W/$g.got")" = "$want" ]
	ok $? "ls --json $f: every size equals the delivered byte count"
	paste <(cut -f1 "$W/$g.got") <(cut -f1 "$W/$g.want") >"$W/$g.map"
done
[ "$total" = 6046 ]
ok $? "6046 messages across all folders"
c folders "$A"
expect_success && [ "$(sort "$R_OUT" | tr '\n' ' ')" = "Archive/easy-ham-2 Archive/hard-ham-1 INBOX Junk Junk/2002 " ] ||
	[ "$(sort "$R_OUT" | tr '\n' ' ')" = "Archive Archive/easy-ham-2 Archive/hard-ham-1 INBOX Junk Junk/2002 " ]
ok $? "folders: INBOX, Archive/easy-ham-2, Archive/hard-ham-1, Junk, Junk/2002 (got: $(tr '\n' ' ' <"$R_OUT"))"

start=$(date +%s)
run_workers cat
secs=$(($(date +%s) - start))
report cat
ok $? "cat of every message is byte-identical to the corpus file (${secs}s)"

done_testing
