#!/usr/bin/env bash
# Nothing readable leaks to disk: deliver messages whose account, folder,
# addresses, subject and body carry unique random canaries, then search every
# file under the store (contents, `strings`, and file names) for each canary,
# case-insensitively. Prints TAP.
. "$(dirname "$0")/lib.sh"

canary() { echo "cnry$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
C_ACCT=$(canary) C_DOMAIN=$(canary) C_FOLDER=$(canary) C_SUB=$(canary) C_FOLDER2=$(canary)
C_SUBJ=$(canary) C_BODY=$(canary) C_FROM=$(canary) C_MSGID=$(canary) C_ENC=$(canary)
C_ACCT2=$(canary)
CANARIES=("$C_ACCT" "$C_DOMAIN" "$C_FOLDER" "$C_SUB" "$C_FOLDER2" "$C_SUBJ" "$C_BODY" "$C_FROM"
	"$C_MSGID" "$C_ENC" "$C_ACCT2")

ACCT="$C_ACCT@$C_DOMAIN.example"
ACCT2="$C_ACCT2@example.org"
FOLDER="Lists/$C_FOLDER/$C_SUB"
FOLDER2="$C_FOLDER2"
new_store canary || { fail "init"; done_testing; }
c account add "$ACCT"
expect_success && pass "account add (canary name)" || fail "account add (canary name)"
c account add "$ACCT2"
expect_success && pass "second account add (canary name)" || fail "second account add (canary name)"

# Messages: canaries in From, Subject (plain and RFC 2047), Message-ID and body.
mk() {
	local f=$1 n=$2
	{
		printf 'From: %s <%s@example.org>\n' "$C_FROM" "$C_FROM"
		printf 'To: %s\n' "$ACCT"
		printf 'Subject: Secret %s number %s\n' "$C_SUBJ" "$n"
		printf 'X-Encoded: =?UTF-8?Q?%s?=\n' "$C_ENC"
		printf 'Message-ID: <%s.%s@example.org>\n' "$C_MSGID" "$n"
		printf 'Date: Wed, 06 Mar 2024 12:00:00 +0000\n\n'
		local i
		for i in $(seq 1 "$n"); do
			printf 'Line %d of the body mentions %s and again %s.\n' "$i" "$C_BODY" "$C_BODY"
		done
	} >"$f"
}
i=0
for spec in "INBOX:3" "$FOLDER:50" "$FOLDER2:2000" "INBOX:1"; do
	i=$((i + 1))
	folder=${spec%:*} n=${spec##*:}
	mk "$T_TMP/m$i.eml" "$n"
	c deliver "$ACCT" --folder "$folder" <"$T_TMP/m$i.eml"
	expect_success && pass "deliver message $i to $folder" || fail "deliver message $i to $folder"
done
mk "$T_TMP/m5.eml" 7
c deliver "$ACCT2" --folder "$FOLDER" <"$T_TMP/m5.eml"
expect_success && pass "deliver to the second account" || fail "deliver to the second account"
# A keyless delivery (as the mail user would do it) must not leak either.
chmod 000 "$K"
mk "$T_TMP/m6.eml" 4
c deliver "$ACCT" --folder "$FOLDER2" <"$T_TMP/m6.eml"
expect_success && pass "deliver with the key file unreadable (mode 000)" ||
	fail "deliver with the key file unreadable (mode 000)"
chmod 600 "$K"

# Deliveries into existing folders are spooled (engine/spool.h): until a
# reader indexes them, each carries a note in an extended attribute. The
# notes exist, and no canary is in any attribute of any file.
python3 - "$S" "${CANARIES[@]}" >"$T_TMP/xattr.out" <<'PY'
import os, sys
store, canaries = sys.argv[1], [c.lower().encode() for c in sys.argv[2:]]
notes = leaks = 0
for d, _, files in os.walk(store):
    for f in files:
        p = os.path.join(d, f)
        for name in os.listxattr(p, follow_symlinks=False):
            v = os.getxattr(p, name, follow_symlinks=False)
            notes += name == "user.coffer.spool"
            blob = (name.encode() + b"\0" + v).lower()
            leaks += sum(c in blob for c in canaries)
print(notes, leaks)
PY
read -r notes leaks <"$T_TMP/xattr.out"
[ "${notes:-0}" -ge 3 ] && [ "${leaks:-1}" = 0 ]
ok $? "spooled deliveries' notes ($notes) hold no canary ($leaks found)"
c account terminate "$ACCT2"
c account reactivate "$ACCT2"

# The canaries really are stored, and readable through coffer.
c folders "$ACCT"
expect_success && grep -qxF "$FOLDER" "$R_OUT" && grep -qxF "$FOLDER2" "$R_OUT"
ok $? "folders shows the canary folder names"
c ls "$ACCT" "$FOLDER2" --json
expect_success && jq -e --arg s "$C_SUBJ" 'length == 2 and all(.[]; .subject | contains($s))' "$R_OUT" >/dev/null
ok $? "ls shows the canary subjects"
c cat "$ACCT" "$FOLDER2" "$(jq -r 'sort_by(.uid) | .[0].uid' "$R_OUT")"
expect_rc 0 && cmp -s "$R_OUT" "$T_TMP/m3.eml"
ok $? "cat gives back the canary message"
c account list
expect_success && grep -qF "$ACCT" "$R_OUT" && grep -qF "$ACCT2" "$R_OUT"
ok $? "account list shows the canary accounts"

# Now look for them on disk.
nfiles=$(find "$S" -type f | wc -l)
[ "$nfiles" -ge 8 ]
ok $? "the store holds files to search ($nfiles)"
for cn in "${CANARIES[@]}"; do
	hits=$(grep -r -l -i -a -F -- "$cn" "$S" 2>/dev/null)
	[ -z "$hits" ]
	ok $? "canary $cn not in any file's bytes${hits:+ (found in: $(echo $hits))}"
done
find "$S" -type f -print0 | xargs -0 -r strings -a -n 4 >"$T_TMP/strings.txt"
[ -s "$T_TMP/strings.txt" ]
ok $? "strings ran over every file under the store"
for cn in "${CANARIES[@]}"; do
	! grep -q -i -F -- "$cn" "$T_TMP/strings.txt"
	ok $? "canary $cn not in strings(1) output"
done
find "$S" -type f -print0 | xargs -0 -r strings -a -e l -n 4 >"$T_TMP/strings16.txt"
leak=0
for cn in "${CANARIES[@]}"; do
	grep -q -i -F -- "$cn" "$T_TMP/strings16.txt" && leak=1
done
[ "$leak" = 0 ]
ok $? "no canary in UTF-16 strings either"
names=$(find "$S" -print | grep -i -F -e cnry)
[ -z "$names" ]
ok $? "no file or directory name under the store contains a canary"
# Also the fragments that a store could plausibly leak as plain words.
! grep -r -q -i -a -F -e "Lists/$C_FOLDER" -e "Lists.$C_FOLDER" -e "Secret $C_SUBJ" "$S"
ok $? "no folder path or subject fragment on disk"
# The LMDB dump (keys and values as the library sees them) holds none either.
if command -v mdb_dump >/dev/null && [ -f "$S/index/data.mdb" ]; then
	mdb_dump -p -a "$S/index" >"$T_TMP/dump.txt" 2>/dev/null
	leak=0
	for cn in "${CANARIES[@]}"; do
		grep -q -i -F -- "$cn" "$T_TMP/dump.txt" && leak=1
	done
	[ -s "$T_TMP/dump.txt" ] && [ "$leak" = 0 ]
	ok $? "mdb_dump -p of every sub-database shows no canary"
else
	fail "mdb_dump of STORE/index (lmdb-utils installed, index/data.mdb present)"
fi

done_testing
