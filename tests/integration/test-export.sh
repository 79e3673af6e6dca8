#!/usr/bin/env bash
# `coffer export`: deliver corpus messages (and a few odd ones) into several
# folders, export with --to, --tar, --tar x.zst and --tar -, and compare:
# every exported file byte for byte with `coffer cat`, its mtime with the
# `ls` date, its flags with the name, the folder layout; Python's
# mailbox.Maildir must read every folder and message, GNU tar every archive.
# When `coffer import` works, a Maildir with flags, keywords and mtimes is
# imported and exported back and must come out the same. Bad targets are
# refused with exit 73 and leave nothing behind. Prints TAP.
. "$(dirname "$0")/lib.sh"

PER_GROUP=${EXPORT_PER_GROUP:-40}
A=exp@example.org
new_store exp || { fail "init"; done_testing; }
c account add "$A"
expect_success && pass "account add" || fail "account add"

W=$T_TMP/w
mkdir -p "$W/msgs"
# messages: corpus groups when the corpus is at hand, generated ones otherwise
declare -A FOLDER_OF=([easy-ham-1]=INBOX [easy-ham-2]=Lists/debian [hard-ham-1]=Archive/2002/hard
	[spam-1]=Junk [spam-2]=Entwürfe)
if CORPUS=$(bash "$T_HERE/corpus.sh" 2>"$W/corpus.err"); then
	for g in "${!FOLDER_OF[@]}"; do
		grep "^$g/" "$CORPUS/index.tsv" | head -n "$PER_GROUP" | cut -f1 | while IFS= read -r rel; do
			printf '%s\t%s\n' "${FOLDER_OF[$g]}" "$CORPUS/$rel"
		done
	done >"$W/plan"
else
	diag "corpus unavailable ($(tail -1 "$W/corpus.err")); using generated messages"
	i=0
	for f in INBOX Lists/debian Archive/2002/hard Junk Entwürfe; do
		for n in $(seq 1 10); do
			i=$((i + 1))
			msg "$W/msgs/g$i.eml" "generated $i in $f"
			printf '%s\t%s\n' "$f" "$W/msgs/g$i.eml"
		done
	done >"$W/plan"
fi
# odd ones: CRLF, a NUL byte, no body, a 3 MiB message
printf 'From: a@example.org\r\nSubject: crlf\r\n\r\nbody\r\n' >"$W/msgs/crlf.eml"
printf 'From: a@example.org\nSubject: nul\n\nA\0B\n' >"$W/msgs/nul.eml"
printf 'From: a@example.org\nSubject: no body\n' >"$W/msgs/nobody.eml"
{ printf 'From: a@example.org\nSubject: big\n\n'; head -c 2400000 /dev/urandom | base64; } >"$W/msgs/big.eml"
for m in crlf nul nobody big; do printf 'INBOX\t%s\n' "$W/msgs/$m.eml"; done >>"$W/plan"
printf 'Lists/debian\t%s\n' "$W/msgs/crlf.eml" >>"$W/plan"

fails=0
while IFS=$'\t' read -r folder file; do
	"$COFFER_BIN" --store "$S" --key-file "$K" deliver "$A" --folder "$folder" <"$file" \
		>/dev/null 2>"$W/deliver.err" || { fails=$((fails + 1)); diag "$(cat "$W/deliver.err")"; }
done <"$W/plan"
TOTAL=$(wc -l <"$W/plan")
[ "$fails" = 0 ]
ok $? "delivered $TOTAL messages into 5 folders"

FOLDERS=(INBOX Lists/debian Archive/2002/hard Junk Entwürfe)
declare -A DIR_OF=([INBOX]=. [Lists/debian]=.Lists.debian [Archive/2002/hard]=.Archive.2002.hard
	[Junk]=.Junk [Entwürfe]=.Entw\&APw-rfe)
for f in "${FOLDERS[@]}"; do
	ls_json "$A" "$f" >"$W/ls.$(echo "$f" | tr / _).json"
done

# check_tree DIR LABEL: every message of every folder, against cat and ls
check_tree() {
	local d=$1 label=$2 f uid name flags date want_flags file n=0 bad=0 got
	for f in "${FOLDERS[@]}"; do
		# \x1f: a separator that `read` does not merge (empty flags)
		while IFS=$'\x1f' read -r uid name flags date; do
			n=$((n + 1))
			if [ -n "$flags" ]; then
				file=$(ls -1 "$d/${DIR_OF[$f]}"/cur/"$name:2,$flags" "$d/${DIR_OF[$f]}"/new/"$name:2,$flags" 2>/dev/null | head -1)
			else
				file=$(ls -1 "$d/${DIR_OF[$f]}"/new/"$name" 2>/dev/null | head -1)
			fi
			if [ -z "$file" ]; then
				bad=$((bad + 1)); diag "$label: $f uid $uid: no file for $name (flags '$flags')"; continue
			fi
			"$COFFER_BIN" --store "$S" --key-file "$K" cat "$A" "$f" "$uid" >"$W/cat.out"
			if ! cmp -s "$W/cat.out" "$file"; then
				bad=$((bad + 1)); diag "$label: $file differs from coffer cat"; continue
			fi
			got=$(date -u -d "@$(stat -c %Y "$file")" +%Y-%m-%dT%H:%M:%SZ)
			if [ "$got" != "$date" ]; then
				bad=$((bad + 1)); diag "$label: $file mtime $got, ls date $date"
			fi
			[ "$(stat -c %a "$file")" = 600 ] || { bad=$((bad + 1)); diag "$label: $file mode"; }
		done < <(jq -r '.[] | [(.uid | tostring), .name, .flags, .date] | join("\u001f")' \
			"$W/ls.$(echo "$f" | tr / _).json")
	done
	local files
	files=$(find "$d" -path '*/cur/*' -o -path '*/new/*' | wc -l)
	[ "$bad" = 0 ] && [ "$n" = "$TOTAL" ] && [ "$files" = "$TOTAL" ] ||
		{ diag "$label: $bad bad, $n listed, $files files, $TOTAL delivered"; return 1; }
}

# python's mailbox.Maildir must read every folder and message
py_check() {
	python3 - "$1" "$TOTAL" <<'PY'
import mailbox, sys
root, want = sys.argv[1], int(sys.argv[2])
md = mailbox.Maildir(root, factory=None, create=False)
names = sorted(md.list_folders())
expect = sorted(['Lists.debian', 'Archive.2002.hard', 'Junk', 'Entw&APw-rfe'])
# Archive has no messages of its own: Maildir++ has no directory for it
if names != expect:
    sys.exit('folders %r, want %r' % (names, expect))
n = 0
for box in [md] + [md.get_folder(f) for f in names]:
    for key, msg in box.items():
        if not msg.get_payload() and 'no body' not in (msg['Subject'] or ''):
            pass
        if msg['From'] is None and msg.get_unixfrom() is None:
            sys.exit('message %s has no From' % key)
        if msg.get_subdir() not in ('new', 'cur'):
            sys.exit('bad subdir %s' % key)
        n += 1
if n != want:
    sys.exit('read %d messages, want %d' % (n, want))
subs = open(root + '/subscriptions').read().split('\n')
if sorted(s for s in subs if s) != sorted(['INBOX'] + expect):
    sys.exit('subscriptions %r' % subs)
PY
}

# ---- --to DIR
D=$T_TMP/out
c export "$A" --to "$D"
expect_success && grep -q "exported $TOTAL messages" "$R_OUT"
ok $? "export --to: exit 0, summary"
[ "$(stat -c %a "$D")" = 700 ]
ok $? "export --to: directory created 0700"
for d in cur new tmp .Lists.debian/cur .Lists.debian/new .Lists.debian/tmp .Entw\&APw-rfe/new; do
	[ -d "$D/$d" ] || { diag "missing $d"; false; }
done && [ -f "$D/.Lists.debian/maildirfolder" ] && [ ! -e "$D/maildirfolder" ]
ok $? "export --to: Maildir++ layout (cur/new/tmp, dot-folders, maildirfolder)"
check_tree "$D" dir
ok $? "export --to: every message byte-identical with coffer cat, mtime = ls date, 0600"
py_check "$D" 2>"$W/py.err"
ok $? "python mailbox.Maildir reads every folder and message $(head -c 300 "$W/py.err")"

# ---- --tar FILE, --tar FILE.zst, --tar -
c export "$A" --tar "$T_TMP/x.tar"
expect_success
ok $? "export --tar x.tar"
tar -tvf "$T_TMP/x.tar" >/dev/null 2>"$W/tar.err"
ok $? "tar -tvf lists it $(head -c 200 "$W/tar.err")"
mkdir "$T_TMP/xt" && tar -xf "$T_TMP/x.tar" -C "$T_TMP/xt" && diff -r "$D" "$T_TMP/xt" >"$W/diff" 2>&1
ok $? "tar -xf gives the same tree as --to $(head -c 300 "$W/diff")"
msg_mtimes() { (cd "$1" && find . \( -path '*/cur/*' -o -path '*/new/*' \) -printf '%p %T@\n' | sort); }
[ "$(msg_mtimes "$D")" = "$(msg_mtimes "$T_TMP/xt")" ]
ok $? "tar: message mtimes equal to the nanosecond"
check_tree "$T_TMP/xt" tar
ok $? "tar: every message byte-identical with coffer cat"

c export "$A" --tar "$T_TMP/x.tar.zst"
expect_success
ok $? "export --tar x.tar.zst"
[ "$(head -c 4 "$T_TMP/x.tar.zst" | od -An -tx1 | tr -d ' ')" = 28b52ffd ] && zstd -tq "$T_TMP/x.tar.zst"
ok $? "x.tar.zst is a zstd stream with no trailing garbage"
mkdir "$T_TMP/xz" && tar --zstd -xf "$T_TMP/x.tar.zst" -C "$T_TMP/xz" && diff -r "$D" "$T_TMP/xz" >"$W/diff" 2>&1 &&
	[ "$(msg_mtimes "$D")" = "$(msg_mtimes "$T_TMP/xz")" ]
ok $? "tar --zstd -xf gives the same tree and mtimes $(head -c 300 "$W/diff")"

"$COFFER_BIN" --store "$S" --key-file "$K" export "$A" --tar - 2>"$W/pipe.err" | tar -t >"$W/pipe.list"
st=("${PIPESTATUS[@]}")
[ "${st[0]}" = 0 ] && [ "${st[1]}" = 0 ] && [ ! -s "$W/pipe.err" ] &&
	diff <(sort "$W/pipe.list") <(tar -tf "$T_TMP/x.tar" | sort) >/dev/null
ok $? "export --tar - | tar -t: same entries, nothing on stderr (exit ${st[*]})"

# ---- bad targets: exit 73, one error line, nothing left
c export "$A" --to "$D"
expect_error 73 "$D" "not empty"
ok $? "--to a non-empty directory: 73"
c export "$A" --to "$D/subscriptions"
expect_error 73 "not a directory"
ok $? "--to an existing file: 73"
c export "$A" --to "$T_TMP/no/such/dir"
expect_error 73 "$T_TMP/no/such/dir"
ok $? "--to under a missing parent: 73"
echo keep >"$T_TMP/exists.tar"
c export "$A" --tar "$T_TMP/exists.tar"
expect_error 73 "exists.tar" && [ "$(cat "$T_TMP/exists.tar")" = keep ]
ok $? "--tar an existing file: 73, file untouched"
c export "$A" --tar "$T_TMP/no/such/x.tar"
expect_error 73 "x.tar"
ok $? "--tar into a missing directory: 73"
mkdir "$T_TMP/ro"
if chattr +i "$T_TMP/ro" 2>/dev/null; then
	c export "$A" --tar "$T_TMP/ro/x.tar"
	expect_error 73 "x.tar"
	ok $? "--tar into an unwritable directory: 73"
	c export "$A" --to "$T_TMP/ro/d"
	expect_error 73 "ro/d"
	ok $? "--to into an unwritable directory: 73"
	chattr -i "$T_TMP/ro"
	[ -z "$(ls -A "$T_TMP/ro")" ]
	ok $? "nothing left in the unwritable directory"
else
	pass "# SKIP chattr +i unsupported here (unwritable directory cases)"
fi
# a target that fills up midway: exit 75, nothing left
mkdir "$T_TMP/small"
if mount -t tmpfs -o size=1m tmpfs "$T_TMP/small" 2>/dev/null; then
	c export "$A" --to "$T_TMP/small/d"
	expect_error 75 "No space" "removed"
	ok $? "--to a full disk: 75, the partial tree removed"
	c export "$A" --tar "$T_TMP/small/x.tar"
	expect_error 75 "x.tar"
	ok $? "--tar a full disk: 75"
	[ -z "$(ls -A "$T_TMP/small")" ]
	ok $? "nothing left on the full disk"
	umount "$T_TMP/small"
else
	pass "# SKIP cannot mount a small tmpfs (full-disk cases)"
fi

# ---- usage and accounts
c export "$A"
expect_error 64 "--to"
ok $? "neither --to nor --tar: 64"
c export "$A" --to "$T_TMP/a" --tar "$T_TMP/b.tar"
expect_error 64
ok $? "both --to and --tar: 64"
c export nobody@example.org --to "$T_TMP/n"
expect_rc 67 && [ ! -e "$T_TMP/n" ]
ok $? "unknown account: 67, nothing created"
c account add other@example.org
c account terminate other@example.org
c export other@example.org --to "$T_TMP/t"
expect_rc 67 && [ ! -e "$T_TMP/t" ]
ok $? "terminated account: 67, nothing created"
run --store "$S" --key-file "$T_TMP/missing.key" export "$A" --to "$T_TMP/k"
expect_rc "66 77" && [ ! -e "$T_TMP/k" ]
ok $? "no key file: refused ($R_RC), nothing created"

# ---- round trip through import, when import is available
M=$T_TMP/src
mkdir -p "$M"/{cur,new,tmp} "$M/.Work.Projects"/{cur,new,tmp}
touch "$M/.Work.Projects/maildirfolder"
printf '0 $Label1\n1 Urgent\n' >"$M/dovecot-keywords"
printf '0 Later\n' >"$M/.Work.Projects/dovecot-keywords"
msg "$M/cur/1700000001.M1P1.host:2,FRSab" "flags and keywords"
msg "$M/cur/1700000002.M2P1.host:2," "cur without flags"
msg "$M/new/1700000003.M3P1.host" "new"
msg "$M/.Work.Projects/cur/1700000004.M4P1.host:2,DPSTa" "in a folder"
touch -d @1600000001 "$M/cur/1700000001.M1P1.host:2,FRSab"
touch -d '2001-02-03 04:05:06.123456789' "$M/cur/1700000002.M2P1.host:2,"
touch -d @1500000000 "$M/new/1700000003.M3P1.host"
touch -d @1400000000 "$M/.Work.Projects/cur/1700000004.M4P1.host:2,DPSTa"
c account add round@example.org
c import round@example.org "$M"
if [ "$R_RC" = 0 ]; then
	c export round@example.org --to "$T_TMP/rt"
	expect_success
	ok $? "round trip: export of an imported Maildir"
	rt_list() { (cd "$1" && find . \( -path '*/cur/*' -o -path '*/new/*' \) -type f -printf '%p %T@ %s\n' | sort); }
	diff <(rt_list "$M") <(rt_list "$T_TMP/rt") >"$W/rt.diff"
	ok $? "round trip: same names (flags, keyword letters, new/cur), ns mtimes, sizes $(head -c 400 "$W/rt.diff")"
	bad=0
	while IFS= read -r f; do cmp -s "$M/$f" "$T_TMP/rt/$f" || bad=1; done < <(cd "$M" && find . -path '*/cur/*' -o -path '*/new/*' -type f)
	[ "$bad" = 0 ]
	ok $? "round trip: contents byte-identical"
	# keyword letters must mean the same names on both sides
	kw() { sed 's/^\([0-9]*\) /\1\t/' "$1" | sort; }
	[ "$(kw "$M/dovecot-keywords")" = "$(kw "$T_TMP/rt/dovecot-keywords")" ] &&
		[ "$(kw "$M/.Work.Projects/dovecot-keywords")" = "$(kw "$T_TMP/rt/.Work.Projects/dovecot-keywords")" ]
	ok $? "round trip: dovecot-keywords equal"
else
	pass "# SKIP coffer import is not available ($(head -c 200 "$R_ERR"))"
fi

done_testing
