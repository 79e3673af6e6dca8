#!/usr/bin/env bash
# Regenerates the golden store, key file and snapshot target that
# tests/integration/test-golden.sh reads (format version 1). Run ONLY when the
# formats change on purpose and the change keeps reading old data: the point
# of these files is that a later version must still read them unchanged.
#
#   COFFER_BIN=build/tools/coffer bash tests/golden/store-v1/make.sh
#
# The key file is a TEST-ONLY key, committed on purpose: it protects nothing.
set -euo pipefail
cd "$(dirname "$0")"
C=${COFFER_BIN:?COFFER_BIN must name the coffer binary}
rm -rf store target test-only.key expected
mkdir expected
export COFFER_NOW=2026-01-15T02:00:00Z
"$C" --store "$PWD/store" --key-file "$PWD/test-only.key" init >/dev/null
k() { "$C" --store "$PWD/store" --key-file "$PWD/test-only.key" "$@"; }
k account add golden@example.org >/dev/null
k account add other@example.net >/dev/null
printf 'From: A <a@example.org>\r\nSubject: =?UTF-8?B?R29sZGVuIOKckw==?=\r\n\r\nfirst message, CRLF\r\n' |
	k deliver golden@example.org
printf 'From b@example.org\nFrom: B <b@example.org>\nSubject: second\n\nsecond, with an mbox From line\n' |
	k deliver golden@example.org --folder Lists/debian
head -c 150000 /dev/zero | tr '\0' 'x' | sed 's/^/Subject: big\n\n/' | k deliver golden@example.org --folder Lists/debian
printf 'Subject: other\n\nanother account\n' | k deliver other@example.net
echo "snapshot_target = $PWD/target" >>store/coffer.conf
k snapshot create >/dev/null
export COFFER_NOW=2026-01-16T02:00:00Z
printf 'Subject: day two\n\nafter the first snapshot\n' | k deliver golden@example.org
k snapshot create >/dev/null
# the expected listings and contents
k folders golden@example.org --json >expected/folders.json
for f in INBOX Lists/debian; do
	k ls golden@example.org "$f" --json >"expected/ls-$(echo "$f" | tr / _).json"
done
k cat golden@example.org INBOX 1 >expected/inbox-1.eml
k cat golden@example.org Lists/debian 2 >expected/debian-2.eml
# coffer.conf names absolute paths of this machine: the test rewrites them
sed -i "s#$PWD#@GOLDEN@#g" store/coffer.conf
rm -f store/index/lock.mdb
echo "regenerated; check 'git status' and commit only on purpose"
