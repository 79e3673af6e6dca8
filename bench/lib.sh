# shellcheck shell=bash
# bench/lib.sh: the prologue and helpers the benchmark scripts share. Sourced
# (not run) by every bench/*.sh, right after `set -euo pipefail`:
#
#   . "$(dirname "$0")/lib.sh"
#
# Sourcing sets ROOT (the checkout, an absolute path) and defines functions
# only; it does not cd (scripts that work from the checkout `cd "$ROOT"`).
#
#   log MSG...             "bench: MSG..." on stderr
#   need HINT CMD...       exit 1 with "CMD missing (HINT)" unless each CMD runs
#   build_release DIR      a release build of the checkout in DIR (meson setup
#                          the first time, then ninja)
#   need_coffer_bin        keep COFFER_BIN, or build ./build-bench and point
#                          COFFER_BIN at its tools/coffer
#   corpus_dir             print the SpamAssassin corpus directory (6,046
#                          messages; fetched once by tests/integration/corpus.sh)
#   corpus_maildir ...     lay the corpus out as a Maildir (see below)
#   bench_dir_fresh        empty BENCH_DIR (removed and made again)
#   bench_dir_remove_on_exit, bench_dir_remove
#                          remove BENCH_DIR when the script exits / now,
#                          unless BENCH_KEEP=1
#   new_store STORE KEY ACCOUNT
#                          a fresh store (and key file) with one account
#   now                    wall clock in seconds (date +%s.%N)
#   elapsed T0 T1          T1 - T0 in seconds, "%.3f"
#   median                 median of the numbers on stdin (mean of the two
#                          middle ones for an even count)
#
# Environment honoured: COFFER_BIN (need_coffer_bin, new_store), BENCH_DIR
# (the bench_dir_* functions; each script sets its own default),
# BENCH_KEEP=1 (keep BENCH_DIR), COFFER_CORPUS_CACHE (corpus_dir, through
# tests/integration/corpus.sh).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { echo "bench: $*" >&2; }

need() { # HINT CMD...
	local hint=$1 p
	shift
	for p in "$@"; do
		command -v "$p" >/dev/null || { log "$p missing ($hint)"; exit 1; }
	done
}

build_release() { # DIR (relative to the checkout, or absolute)
	log "building a release build in $1"
	(
		cd "$ROOT" || exit
		[ -f "$1/meson-private/coredata.dat" ] || meson setup "$1" --buildtype=release >/dev/null
		ninja -C "$1" >/dev/null
	)
}

need_coffer_bin() {
	if [ -z "${COFFER_BIN:-}" ]; then
		build_release build-bench
		COFFER_BIN=$ROOT/build-bench/tools/coffer
	fi
}

corpus_dir() { bash "$ROOT/tests/integration/corpus.sh"; }

# corpus_maildir CORPUS MD COPIES NAME_STEP MTIME_STEP NEW_EVERY: the corpus
# as a Maildir MD: INBOX holds easy-ham-1, every other group a folder
# (.easy_ham_2, ...); each message COPIES times (with COPIES > 1 each copy
# starts with an "X-Bench-Copy: k" line), flags cycling '', S, RS, FS, S, ''.
# Message n is named (1000000000 + n * NAME_STEP).M<n>P1.bench, has mtime
# 1000000000 + n * MTIME_STEP, and lies in new/ when NEW_EVERY > 0 and n is
# a multiple of it, else in cur/ with ":2,FLAGS".
corpus_maildir() {
	python3 - "$@" <<'PY'
import os, sys
corpus, md = sys.argv[1], sys.argv[2]
copies, name_step, mtime_step, new_every = (int(a) for a in sys.argv[3:7])
flags = ['', 'S', 'RS', 'FS', 'S', '']
mk = lambda b: [os.makedirs(os.path.join(b, d), exist_ok=True) for d in ('cur', 'new', 'tmp')]
mk(md)
n = 0
for line in open(os.path.join(corpus, 'index.tsv')):
    rel = line.split('\t')[0]
    group = rel.split('/')[0]
    box = md if group == 'easy-ham-1' else os.path.join(md, '.' + group.replace('-', '_'))
    if not os.path.isdir(os.path.join(box, 'cur')):
        mk(box)
        open(os.path.join(box, 'maildirfolder'), 'w').close()
    data = open(os.path.join(corpus, rel), 'rb').read()
    for k in range(copies):
        name = '%d.M%dP1.bench' % (1000000000 + n * name_step, n)
        if new_every and n % new_every == 0:
            p = os.path.join(box, 'new', name)
        else:
            p = os.path.join(box, 'cur', name + ':2,' + flags[n % len(flags)])
        with open(p, 'wb') as o:
            if copies > 1:
                o.write(b'X-Bench-Copy: %d\n' % k)
            o.write(data)
        t = 1000000000 + n * mtime_step
        os.utime(p, (t, t))
        n += 1
PY
}

bench_dir_fresh() {
	rm -rf "$BENCH_DIR"
	mkdir -p "$BENCH_DIR"
}
bench_dir_remove_on_exit() {
	[ "${BENCH_KEEP:-0}" = 1 ] || trap 'rm -rf "$BENCH_DIR"' EXIT
}
bench_dir_remove() {
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$BENCH_DIR"
}

new_store() { # STORE KEY ACCOUNT
	rm -rf "$1" "$2"
	"$COFFER_BIN" --store "$1" --key-file "$2" init >/dev/null
	"$COFFER_BIN" --store "$1" --key-file "$2" account add "$3" >/dev/null
}

now() { date +%s.%N; }
elapsed() { awk -v a="$2" -v b="$1" 'BEGIN { printf "%.3f\n", a - b }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
