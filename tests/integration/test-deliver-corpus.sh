#!/usr/bin/env bash
# Deliver the whole SpamAssassin corpus (6,046 real messages) with
# `coffer deliver`, one process per message, into one account (each corpus
# group into its own folder), then `cat` every message back and compare byte
# for byte (cmp); check `ls --json` counts and sizes. The work runs in $JOBS
# parallel workers (default 4), so deliveries also run concurrently. Prints TAP.
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
mkdir -p "$W/chunks"
JOBS=${JOBS:-4}
# Work is cut into chunks of 100 messages run by $JOBS parallel workers, so
# deliveries to one account and folder also run concurrently. Delivery order
# is therefore free; reading back matches each message to its corpus file by
# SHA-256 and then compares the two files byte for byte with cmp.
for g in "${GROUPS_[@]}"; do
	grep "^$g/" "$INDEX" | cut -f1 | split -l 100 - "$W/chunks/deliver.$g."
	grep "^$g/" "$INDEX" | awk -F'\t' '{ print $3, $1 }' | sort >"$W/$g.hashes"
	echo "$g ${FOLDER_ARG[$g]}"
done >"$W/folders"
cat >"$W/worker.sh" <<'WORKER'
set -u
mode=$1 corpus=$2 w=$3 chunk=$4
fails=$chunk.fail
: >"$fails"
if [ "$mode" = deliver ]; then
	# chunk file name: deliver.<group>.<suffix>; lines: corpus-relative paths
	group=${chunk##*/deliver.}
	group=${group%.*}
	folder=$(grep "^$group " "$w/folders" | cut -d' ' -f2)
	while IFS= read -r rel; do
		"$COFFER_BIN" --store "$S" --key-file "$K" deliver "$A" --folder "$folder" \
			<"$corpus/$rel" >/dev/null 2>"$chunk.err"
		rc=$?
		[ "$rc" = 0 ] || echo "$rel exit $rc: $(head -c 300 "$chunk.err")" >>"$fails"
	done <"$chunk"
else
	# lines: group folder uid
	: >"$chunk.seen"
	while IFS=' ' read -r group folder uid; do
		if ! "$COFFER_BIN" --store "$S" --key-file "$K" cat "$A" "$folder" "$uid" \
			>"$chunk.out" 2>"$chunk.err"; then
			echo "$folder uid $uid: cat failed: $(head -c 300 "$chunk.err")" >>"$fails"
			continue
		fi
		h=$(sha256sum <"$chunk.out" | cut -d' ' -f1)
		rel=$(grep -m1 "^$h " "$w/$group.hashes" | cut -d' ' -f2)
		if [ -z "$rel" ]; then
			echo "$folder uid $uid: matches no message of $group" >>"$fails"
		elif ! cmp -s "$chunk.out" "$corpus/$rel"; then
			echo "$folder uid $uid: differs from $rel" >>"$fails"
		else
			echo "$group $h" >>"$chunk.seen"
		fi
	done <"$chunk"
fi
rm -f "$chunk.out" "$chunk.err"
WORKER
export S K A

# run_workers MODE: run the worker over every chunk of MODE, $JOBS at a time.
run_workers() {
	find "$W/chunks" -name "$1.*" ! -name '*.fail' ! -name '*.seen' ! -name '*.err' ! -name '*.out' \
		-print0 >"$W/$1.jobs"
	xargs -0 -n 1 -P "$JOBS" bash "$W/worker.sh" "$1" "$CORPUS" "$W" <"$W/$1.jobs"
}
# report MODE: print the first failures of MODE as diagnostics; 0 if none.
report() {
	local n
	n=$(cat "$W"/chunks/"$1".*.fail 2>/dev/null | wc -l)
	if [ "$n" != 0 ]; then
		diag "$n failures, first ones:"
		diag "$(cat "$W"/chunks/"$1".*.fail | head -10)"
		return 1
	fi
	return 0
}

start=$(date +%s)
run_workers deliver
secs=$(($(date +%s) - start))
report deliver
ok $? "delivered all 6046 messages with coffer deliver, $JOBS at a time (${secs}s)"

total=0
: >"$W/cat.list"
for g in "${GROUPS_[@]}"; do
	f=${FOLDER[$g]}
	want=$(grep -c "^$g/" "$INDEX")
	c ls "$A" "$f" --json
	cp "$R_OUT" "$W/$g.json"
	got=$(jq length "$W/$g.json" 2>/dev/null)
	total=$((total + ${got:-0}))
	expect_success && [ "$got" = "$want" ]
	ok $? "ls --json $f: $want messages (got ${got:-none})"
	[ "$(jq -r '.[].size' "$W/$g.json" 2>/dev/null | sort -n | tr '\n' ' ')" = \
		"$(grep "^$g/" "$INDEX" | cut -f2 | sort -n | tr '\n' ' ')" ]
	ok $? "ls --json $f: the sizes are those of the delivered messages"
	[ "$(jq -r '.[].uid' "$W/$g.json" 2>/dev/null | sort -u | wc -l)" = "$want" ]
	ok $? "ls --json $f: uids are unique"
	jq -r --arg g "$g" --arg f "$f" '.[] | "\($g) \($f) \(.uid)"' "$W/$g.json" >>"$W/cat.list" 2>/dev/null
done
[ "$total" = 6046 ]
ok $? "6046 messages across all folders"
c folders "$A"
expect_success && [ "$(sort "$R_OUT" | tr '\n' ' ')" = "Archive/easy-ham-2 Archive/hard-ham-1 INBOX Junk Junk/2002 " ] ||
	[ "$(sort "$R_OUT" | tr '\n' ' ')" = "Archive Archive/easy-ham-2 Archive/hard-ham-1 INBOX Junk Junk/2002 " ]
ok $? "folders: INBOX, Archive/easy-ham-2, Archive/hard-ham-1, Junk, Junk/2002 (got: $(tr '\n' ' ' <"$R_OUT"))"

split -l 100 "$W/cat.list" "$W/chunks/cat."
start=$(date +%s)
run_workers cat
secs=$(($(date +%s) - start))
report cat
ok $? "cat of every message is byte-identical (cmp) to its corpus file (${secs}s)"
for g in "${GROUPS_[@]}"; do
	cat "$W"/chunks/cat.*.seen 2>/dev/null | awk -v g="$g" '$1 == g { print $2 }' | sort >"$W/$g.seen"
	cut -d' ' -f1 "$W/$g.hashes" | diff -q - "$W/$g.seen" >/dev/null
	ok $? "every message of $g read back exactly once from ${FOLDER[$g]}"
done

done_testing
