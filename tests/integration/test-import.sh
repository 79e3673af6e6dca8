#!/usr/bin/env bash
# Integration test of `coffer import` on the whole SpamAssassin corpus (6,046
# messages) laid out as a Maildir++ tree: nested folders (one with a non-ASCII,
# modified UTF-7 name), mixed flags, keywords named in dovecot-keywords,
# mtimes spread over years (with nanoseconds), new/ and cur/, plus Dovecot's
# control files and tmp/ that must be left out.
#
# Checks: every message byte-identical (`coffer cat`), in the same folder with
# the same flags, size, internal date and Maildir name (`coffer ls --json`);
# keywords and the full round trip through `coffer export` when that command
# exists; a second run imports nothing; >= 20 runs killed with SIGKILL at
# random points, then one to completion, give the same store as one
# uninterrupted run (and `coffer verify` passes, when it exists); no orphan
# blob survives; progress only on a TTY; --folder-prefix; bad input (missing,
# not a Maildir, bad names, symlinks out of the tree, unreadable files).
#
# Environment: KILLS (default 24), as well as lib.sh's.
. "$(dirname "$0")/lib.sh"

KILLS=${KILLS:-24}
ACCT=alice@example.org
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 missing"; exit 77; }
command -v jq >/dev/null || { echo "1..0 # SKIP jq missing"; exit 77; }
CORPUS=$(bash "$T_HERE/corpus.sh" 2>"$T_TMP/corpus.err") || {
	echo "1..0 # SKIP corpus unavailable: $(tail -1 "$T_TMP/corpus.err")"
	exit 77
}

# Does a subcommand exist yet (other engineers write export and verify)?
have_cmd() {
	"$COFFER_BIN" "$1" --help 2>&1 | grep -q -- "$1 NAME\|$1 \[NAME\]"
}

# ---- the tree ----
MD=$T_TMP/maildir
MANIFEST=$T_TMP/manifest.json
python3 - "$CORPUS" "$MD" "$MANIFEST" <<'PY'
import hashlib, json, os, random, sys

corpus, md, manifest = sys.argv[1:4]
rnd = random.Random(20240304)
# Coffer folder name -> Maildir++ directory ('' = INBOX)
folders = [
    ('INBOX', ''),
    ('Lists/debian', '.Lists.debian'),
    ('Lists/debian/security', '.Lists.debian.security'),
    ('Spam', '.Spam'),
    ('\u00c9t\u00e9 2002', '.&AMk-t&AOk- 2002'),
    ('Archive/2002/Q3', '.Archive.2002.Q3'),
]
keywords = {  # per folder: dovecot-keywords (index -> name)
    '.Lists.debian': ['$Junk', 'work', '$Label1', 'later'],
    '.Spam': ['$Junk', '$NonJunk'],
    '': ['$Forwarded', 'important'],
}
for _, d in folders:
    for sub in ('cur', 'new', 'tmp'):
        os.makedirs(os.path.join(md, d, sub), exist_ok=True)
    if d:
        open(os.path.join(md, d, 'maildirfolder'), 'w').close()
    kws = keywords.get(d)
    if kws:
        with open(os.path.join(md, d, 'dovecot-keywords'), 'w') as f:
            f.writelines('%d %s\n' % (i, k) for i, k in enumerate(kws))
# Dovecot's files, which must not be imported
open(os.path.join(md, 'dovecot-uidlist'), 'w').write('3 V1234 N1 G0\n')
open(os.path.join(md, 'dovecot.index.log'), 'wb').write(b'\x01\x02binary')
open(os.path.join(md, 'subscriptions'), 'w').write('V\t2\n\nLists/debian\n')
open(os.path.join(md, 'tmp', '1.M1P1.half-written'), 'w').write('From: x\n\npartial')

rows = [l.rstrip('\n').split('\t') for l in open(os.path.join(corpus, 'index.tsv'))]
out = []
for i, (rel, size, sha) in enumerate(rows):
    name, d = folders[rnd.randrange(len(folders))]
    data = open(os.path.join(corpus, rel), 'rb').read()
    mtime = rnd.randrange(946684800, 1700000000) * 10**9 + rnd.randrange(10**9)
    is_new = rnd.random() < 0.15
    unique = '%d.M%dP%d.corpus.example,S=%d' % (mtime // 10**9, i, 4242, len(data))
    flags = ''
    kw = []
    if not is_new:
        flags = ''.join(c for c in 'DFPRST' if rnd.random() < 0.3)
        kws = keywords.get(d, [])
        kw = sorted(set(rnd.randrange(len(kws)) for _ in range(rnd.randrange(3)))) if kws else []
        fname = unique + ':2,' + flags + ''.join(chr(97 + k) for k in kw)
    else:
        fname = unique
    path = os.path.join(md, d, 'new' if is_new else 'cur', fname)
    with open(path, 'wb') as f:
        f.write(data)
    os.utime(path, ns=(mtime, mtime))
    out.append({'folder': name, 'name': unique, 'flags': flags,
                'keywords': sorted(keywords[d][k] for k in kw) if kw else [],
                'mtime': mtime // 10**9, 'size': len(data), 'new': is_new,
                'sha256': hashlib.sha256(data).hexdigest()})
json.dump(out, open(manifest, 'w'))
PY
ok $? "lay out the corpus as a Maildir++ tree"
NMSG=$(jq length "$MANIFEST")
[ "$NMSG" = 6046 ]
ok $? "6046 messages in the tree ($NMSG)"

# ---- import ----
new_store a || { done_testing; }
c account add "$ACCT"
expect_success
ok $? "account"
t0=$(date +%s.%N)
c import "$ACCT" "$MD" --json
t1=$(date +%s.%N)
expect_success
ok $? "import exits 0 silently on stderr (not a TTY)"
IMPORT_SECS=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
diag "import took $IMPORT_SECS s"
cp "$R_OUT" "$T_TMP/summary.json"
[ "$(jq .messages "$T_TMP/summary.json")" = 6046 ] && [ "$(jq .folders "$T_TMP/summary.json")" = 6 ] &&
	[ "$(jq .folders_created "$T_TMP/summary.json")" = 5 ] && [ "$(jq .skipped_total "$T_TMP/summary.json")" = 0 ]
ok $? "summary: 6046 messages, 6 folders (5 created), nothing skipped: $(cat "$T_TMP/summary.json")"
[ "$(jq .bytes "$T_TMP/summary.json")" = "$(jq '[.[].size] | add' "$MANIFEST")" ]
ok $? "summary bytes are the corpus bytes"

# ls --json of every folder into one file: {folder, uid, name, flags, size, date}
dump_store() {
	local out=$1 f
	: >"$out"
	jq -r '[.[].folder] | unique | .[]' "$MANIFEST" | while IFS= read -r f; do
		"$COFFER_BIN" --store "$S" --key-file "$K" ls "$ACCT" "$f" --json |
			jq -c --arg f "$f" '.[] | {folder: $f, uid, name, flags, size, date}' >>"$out"
	done
}
dump_store "$T_TMP/a.jsonl"

python3 - "$MANIFEST" "$T_TMP/a.jsonl" <<'PY'
import json, sys, time
man = json.load(open(sys.argv[1]))
got = [json.loads(l) for l in open(sys.argv[2])]
want = {(m['folder'], m['name']): m for m in man}
have = {(g['folder'], g['name']): g for g in got}
bad = []
if len(got) != len(man):
    bad.append('count %d != %d' % (len(got), len(man)))
for k, m in want.items():
    g = have.get(k)
    if g is None:
        bad.append('missing %s' % (k,)); continue
    date = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(m['mtime']))
    # ls prints flags in DFPRST order, as Maildir names hold them
    if g['flags'] != m['flags'] or g['size'] != m['size'] or g['date'] != date:
        bad.append('%s: got %s want flags=%s size=%d date=%s' % (k, g, m['flags'], m['size'], date))
for b in bad[:10]:
    print('#', b)
sys.exit(1 if bad else 0)
PY
ok $? "every message in its folder with its name, flags, size and internal date"

# Byte identity: cat every message and compare hashes (two at a time).
jq -r '.[] | [.folder, .name, .sha256] | @tsv' "$MANIFEST" | sort >"$T_TMP/want.tsv"
jq -r '[.folder, (.uid | tostring), .name] | @tsv' "$T_TMP/a.jsonl" >"$T_TMP/uids.tsv"
export COFFER_BIN S K ACCT
tr '\n' '\0' <"$T_TMP/uids.tsv" | xargs -0 -P 2 -n 64 bash -c '
	for row in "$@"; do
		IFS=$'"'"'\t'"'"' read -r f u n <<<"$row"
		h=$("$COFFER_BIN" --store "$S" --key-file "$K" cat "$ACCT" "$f" "$u" | sha256sum | cut -d" " -f1)
		printf "%s\t%s\t%s\n" "$f" "$n" "$h"
	done' _ | sort >"$T_TMP/have.tsv"
cmp -s "$T_TMP/want.tsv" "$T_TMP/have.tsv"
ok $? "every message byte-identical ($(wc -l <"$T_TMP/have.tsv") compared)" ||
	diag "$(diff "$T_TMP/want.tsv" "$T_TMP/have.tsv" | head -5)"

# Keywords and the full round trip, through export (when it exists).
if have_cmd export; then
	c export "$ACCT" --to "$T_TMP/export"
	expect_rc 0
	ok $? "export"
	python3 - "$MANIFEST" "$T_TMP/export" "$MD" <<'PY'
import hashlib, json, os, sys
man, exp, md = sys.argv[1:4]
man = json.load(open(man))
dirs = {'INBOX': '', 'Lists/debian': '.Lists.debian', 'Lists/debian/security': '.Lists.debian.security',
        'Spam': '.Spam', '\u00c9t\u00e9 2002': '.&AMk-t&AOk- 2002', 'Archive/2002/Q3': '.Archive.2002.Q3'}
bad = []
found = {}
for folder, d in dirs.items():
    kwmap = {}
    kf = os.path.join(exp, d, 'dovecot-keywords')
    if os.path.exists(kf):
        for line in open(kf):
            i, n = line.rstrip('\n').split(' ', 1)
            kwmap[chr(97 + int(i))] = n
    for sub in ('cur', 'new'):
        p = os.path.join(exp, d, sub)
        if not os.path.isdir(p):
            continue
        for fn in os.listdir(p):
            unique, _, info = fn.partition(':2,')
            flags = ''.join(c for c in info if c.isupper())
            kws = sorted(kwmap.get(c, '?' + c) for c in info if c.islower())
            st = os.stat(os.path.join(p, fn))
            data = open(os.path.join(p, fn), 'rb').read()
            found[(folder, unique)] = (flags, kws, st.st_mtime_ns, sub == 'new',
                                       hashlib.sha256(data).hexdigest())
for m in man:
    k = (m['folder'], m['name'])
    src = os.path.join(md, dirs[m['folder']], 'new' if m['new'] else 'cur')
    g = found.get(k)
    if g is None:
        bad.append('missing in export: %s' % (k,)); continue
    # the source mtime to the nanosecond
    fn = [f for f in os.listdir(src) if f.split(':2,')[0] == m['name']][0]
    mt = os.stat(os.path.join(src, fn)).st_mtime_ns
    if g[0] != m['flags'] or g[1] != m['keywords'] or g[2] // 10**9 != mt // 10**9 or g[3] != m['new'] or g[4] != m['sha256']:
        bad.append('%s: export %s, source flags=%s kw=%s mtime=%d new=%s' % (k, g, m['flags'], m['keywords'], mt, m['new']))
if len(found) != len(man):
    bad.append('export has %d messages, source %d' % (len(found), len(man)))
for b in bad[:10]:
    print('#', b)
sys.exit(1 if bad else 0)
PY
	ok $? "round trip through export: folders, flags, keywords, new/cur, mtimes, bytes"
else
	pass "# SKIP round trip: coffer export not available yet"
fi

# ---- resume: a second run imports nothing ----
c import "$ACCT" "$MD" --json
expect_success && [ "$(jq .messages "$R_OUT")" = 0 ] && [ "$(jq .already "$R_OUT")" = 6046 ]
ok $? "second run: 0 imported, 6046 already there"
dump_store "$T_TMP/a2.jsonl"
cmp -s "$T_TMP/a.jsonl" "$T_TMP/a2.jsonl"
ok $? "second run changed nothing"

# ---- kill -9 at random points, then finish ----
SA=$S KA=$K
new_store b
c account add "$ACCT"
expect_success
ok $? "second store"
# Kill points: sleep a random time up to 1/16 of a whole import, with
# random batch sizes, so kills land in the walk, in blob writing, in syncfs
# and in commits. Runs that finished before the kill do not count.
span_ms=$(awk -v s="$IMPORT_SECS" 'BEGIN { v = int(s * 1000 / 16); print (v < 40 ? 40 : v) }')
killed=0 finished=0 attempts=0
while [ "$killed" -lt "$KILLS" ] && [ "$attempts" -lt $((KILLS * 3)) ]; do
	attempts=$((attempts + 1))
	batch=$(shuf -n1 -e 8 32 256)
	ms=$((RANDOM % span_ms + 5))
	kill_after "$ms" "$COFFER_BIN" --store "$S" --key-file "$K" import "$ACCT" "$MD" \
		--batch "$batch" >/dev/null 2>"$T_TMP/kill.err"
	st=$?
	case $st in
	137) killed=$((killed + 1)) ;;
	0) finished=$((finished + 1)) ;;
	*) diag "run $attempts exited $st: $(cat "$T_TMP/kill.err")" ;;
	esac
done
[ "$killed" -ge 20 ]
ok $? "$killed runs killed with SIGKILL ($finished finished before the kill)"
c import "$ACCT" "$MD" --json
expect_success
ok $? "the run after the kills completes"
imported_after=$(jq .messages "$R_OUT")
diag "last run: $(cat "$R_OUT")"
dump_store "$T_TMP/b.jsonl"
# same messages, names, flags, sizes, dates (uids may differ: compare without them)
cmp -s <(jq -c 'del(.uid)' "$T_TMP/a.jsonl" | sort) <(jq -c 'del(.uid)' "$T_TMP/b.jsonl" | sort)
ok $? "interrupted store equals the uninterrupted one ($(wc -l <"$T_TMP/b.jsonl") messages; $imported_after in the last run)"
nb=$(all_blobs | wc -l)
[ "$nb" = 6046 ]
ok $? "no orphan blob left: $nb blob files for 6046 messages"
jq -r '[.folder, (.uid | tostring), .name] | @tsv' "$T_TMP/b.jsonl" | shuf -n 300 --random-source=<(yes) |
	while IFS=$'\t' read -r f u n; do
		printf '%s\t%s\t%s\n' "$f" "$n" "$("$COFFER_BIN" --store "$S" --key-file "$K" cat "$ACCT" "$f" "$u" | sha256sum | cut -d' ' -f1)"
	done | sort >"$T_TMP/have-b.tsv"
join -t $'\t' <(awk -F'\t' '{ print $1 "/" $2 "\t" $3 }' "$T_TMP/have-b.tsv" | sort) \
	<(awk -F'\t' '{ print $1 "/" $2 "\t" $3 }' "$T_TMP/want.tsv" | sort) |
	awk -F'\t' '$2 != $3 { bad++ } END { exit bad > 0 || NR != 300 }'
ok $? "300 random messages of the interrupted store are byte-identical"
if have_cmd verify; then
	c verify "$ACCT"
	expect_rc 0
	ok $? "coffer verify passes on the interrupted store"
	S=$SA K=$KA c verify "$ACCT"
	expect_rc 0
	ok $? "coffer verify passes on the uninterrupted store"
else
	pass "# SKIP coffer verify not available yet"
fi
S=$SA K=$KA

# ---- progress: on a TTY only ----
mkdir -p "$T_TMP/small/cur"
msg "$T_TMP/small/cur/1.M1.x:2,S" "small"
new_store c
c account add "$ACCT"
script -qec "$COFFER_BIN --store $S --key-file $K import $ACCT $MD" /dev/null >"$T_TMP/tty.out" 2>&1
st=$?
[ "$st" = 0 ] && grep -q "MB/s" "$T_TMP/tty.out" && grep -q "files" "$T_TMP/tty.out" &&
	grep -q "messages imported: 6046" "$T_TMP/tty.out"
ok $? "on a TTY: progress with count and MB/s, then the summary" ||
	diag "$(tr '\r' '\n' <"$T_TMP/tty.out" | head -5)"
grep -q "ETA" "$T_TMP/tty.out"
ok $? "on a TTY: an ETA"

# ---- --folder-prefix ----
mkdir -p "$T_TMP/pre/cur" "$T_TMP/pre/.Sent/cur" "$T_TMP/pre/.Sent.Old/new"
msg "$T_TMP/pre/cur/1.M1.x:2,S" "p1"
msg "$T_TMP/pre/.Sent/cur/2.M2.x:2,RS" "p2"
msg "$T_TMP/pre/.Sent.Old/new/3.M3.x" "p3"
c import "$ACCT" "$T_TMP/pre" --folder-prefix "Old mail"
expect_success
c folders "$ACCT"
grep -qx "Old mail" "$R_OUT" && grep -qx "Old mail/Sent" "$R_OUT" && grep -qx "Old mail/Sent/Old" "$R_OUT"
ok $? "--folder-prefix: INBOX to P, .Sent to P/Sent, .Sent.Old to P/Sent/Old" || diag_run
c ls "$ACCT" "Old mail/Sent" --json
[ "$(jq -r '.[0].flags + " " + .[0].subject' "$R_OUT")" = "RS p2" ]
ok $? "--folder-prefix keeps flags"
c import "$ACCT" "$T_TMP/pre" --folder-prefix "a..b"
expect_error 64 "folder-prefix"
ok $? "an invalid --folder-prefix is a usage error"

# ---- bad input ----
c import "$ACCT" "$T_TMP/does-not-exist"
expect_error 66 "does-not-exist" "does not exist"
ok $? "missing MAILDIR: exit 66, one line"
mkdir -p "$T_TMP/notmd/sub" "$T_TMP/notmd/.hidden"
echo x >"$T_TMP/notmd/file"
c import "$ACCT" "$T_TMP/notmd"
expect_error 65 "not a Maildir"
ok $? "a directory that is not a Maildir: exit 65, one line"
c import "$ACCT" "$T_TMP/notmd/file"
expect_error 65 "not a directory"
ok $? "a file as MAILDIR: exit 65"
c import nobody@example.org "$T_TMP/pre"
expect_error 67 "nobody@example.org"
ok $? "unknown account: exit 67"
c import "$ACCT"
expect_rc 64
ok $? "missing argument: exit 64"

BAD=$T_TMP/bad
mkdir -p "$BAD/cur" "$BAD/new" "$BAD/.Evil/cur" "$T_TMP/outside/cur"
msg "$BAD/cur/1.M1.x:2,S" "good one"
msg "$T_TMP/outside/secret" "outside the tree"
msg "$T_TMP/outside/cur/9.M9.x:2,S" "outside folder"
ln -s "$T_TMP/outside/secret" "$BAD/cur/2.M2.x:2,S"
ln -s "../cur/1.M1.x:2,S" "$BAD/new/3.M3.x"
ln -s "$T_TMP/outside" "$BAD/.Linked"
ln -s "$T_TMP/outside/cur" "$BAD/.Evil/new"
msg "$BAD/cur/bad name:2,Q" "bad flag letter"
printf 'just some text, not a header\n' >"$BAD/cur/4.M4.x:2,S"
: >"$BAD/cur/5.M5.x:2,S"
mkdir "$BAD/cur/6.M6.x:2,S"
printf 'From: a\n\nb\n' >"$BAD/cur/$(printf '7.M7\001x:2,S')"
echo "stray" >"$BAD/README"
c import "$ACCT" "$BAD" --json
expect_success
ok $? "a tree with bad entries imports what it can"
j=$R_OUT
[ "$(jq .messages "$j")" = 1 ] && [ "$(jq '.skipped.symlink.count' "$j")" = 4 ] &&
	[ "$(jq '.skipped["bad-name"].count' "$j")" = 2 ] && [ "$(jq '.skipped["not-message"].count' "$j")" = 1 ] &&
	[ "$(jq '.skipped.empty.count' "$j")" = 1 ] && [ "$(jq '.skipped["not-file"].count' "$j")" = 1 ] &&
	[ "$(jq '.skipped["unknown-entry"].count' "$j")" = 1 ]
ok $? "each bad entry skipped with its reason" || diag "$(cat "$j")"
jq -r '.skipped.symlink.examples[]' "$j" | sort | tr '\n' ' ' | grep -qF '.Evil/new .Linked cur/2.M2.x:2,S new/3.M3.x'
ok $? "symlinks named in the summary: $(jq -c '.skipped.symlink.examples' "$j")"
jq -r '.skipped["bad-name"].examples[]' "$j" | grep -qF 'cur/7.M7\x01x:2,S'
ok $? "control characters in reported names are escaped"
c folders "$ACCT"
! grep -q "Linked\|Evil" "$R_OUT"
ok $? "no folder made from a symlinked or empty folder" || diag "$(cat "$R_OUT")"
c ls "$ACCT" "INBOX" --json
! grep -q "outside" "$R_OUT"
ok $? "nothing from outside the tree was read"
c import "$ACCT" "$BAD" --json
[ "$(jq .messages "$R_OUT")" = 0 ] && [ "$(jq .already "$R_OUT")" = 1 ]
ok $? "the bad tree again: nothing new"

# Unreadable files: only meaningful for a user without CAP_DAC_OVERRIDE.
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
	NB=$T_TMP/nb
	mkdir -p "$NB/md/cur"
	msg "$NB/md/cur/1.M1.x:2,S" "readable"
	msg "$NB/md/cur/2.M2.x:2,S" "unreadable"
	mkdir -p "$NB/md/.Locked/cur"
	msg "$NB/md/.Locked/cur/3.M3.x:2,S" "in an unreadable dir"
	chown -R nobody "$NB"
	chmod 000 "$NB/md/cur/2.M2.x:2,S" "$NB/md/.Locked/cur"
	run_as nobody --store "$NB/store" --key-file "$NB/coffer.key" init
	run_as nobody --store "$NB/store" --key-file "$NB/coffer.key" account add "$ACCT"
	run_as nobody --store "$NB/store" --key-file "$NB/coffer.key" import "$ACCT" "$NB/md" --json
	expect_success && [ "$(jq .messages "$R_OUT")" = 1 ] && [ "$(jq '.skipped.unreadable.count' "$R_OUT")" = 2 ]
	ok $? "unreadable file and directory skipped with a reason, not fatal" || diag "$(cat "$R_OUT")"
else
	pass "# SKIP no user nobody or no setpriv"
fi

done_testing
