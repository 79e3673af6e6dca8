#!/usr/bin/env bash
# Snapshot benchmark: coffer snapshot vs restic 0.14 (--compression auto) and
# borg 1.2 (-C zstd,3) over the equivalent plain Maildir, side by side on the
# same disk. Sizes: the SpamAssassin corpus (6,046 messages) and x10 (60,460:
# every corpus message 10 times, each copy with an "X-Bench-Copy: k" first
# line so the copies are distinct messages, as real mail is; identical copies
# would let restic and borg deduplicate 90% away).
#
# Measured (ROUNDS rounds, median; peak RSS by /usr/bin/time -f %M):
#   full        first snapshot of the store / Maildir
#   daily       one simulated day: 1% new mail, 5% flag changes, 1% moves,
#               1% expunges, applied to the store through the library and to
#               the Maildir as Dovecot would (rename for flags and moves,
#               unlink for expunges, new files in new/)
#   nochange    a snapshot with nothing changed
#   restore1    one message (expunged since) as of the day before:
#               coffer restore --uid --into vs restic restore --include vs
#               borg extract of one path
#   prune1      prune of one expired day (coffer prune; restic forget
#               --keep-daily 30 --prune; borg prune --keep-daily 30 + compact)
#   size30      target / repository size after 30 simulated days (6k only)
#
#   bash bench/snapshot.sh             # both sizes
#   SIZES=1 bash bench/snapshot.sh     # 6k only
#
# Environment: COFFER_BUILD (a release build dir, default ./build-bench),
# BENCH_DIR (scratch, default ./var/bench-snapshot, removed unless
# BENCH_KEEP=1), ROUNDS (default 3), SIZES ("1 10"), DAYS30 (default 30).
# The day's changes in the store are made by a helper compiled from this
# script against libcoffer (the CLI has no flag/move/expunge commands; the
# mount does the same through the same library calls).
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
ROUNDS=${ROUNDS:-3}
SIZES=${SIZES:-"1 10"}
DAYS30=${DAYS30:-30}
BENCH_DIR=${BENCH_DIR:-$ROOT/var/bench-snapshot}
BUILD=${COFFER_BUILD:-$ROOT/build-bench}

[ -x "$BUILD/tools/coffer" ] || build_release "$BUILD"
COFFER=$BUILD/tools/coffer
need "apt-get install restic borgbackup time" restic borg /usr/bin/time python3
CORPUS=$(corpus_dir)
bench_dir_fresh
bench_dir_remove_on_exit

# ---- the day helper: applies one day's changes to the store, prints them ----
cat >"$BENCH_DIR/snapday.c" <<'EOF'
/* snapday STORE KEY ACCOUNT SEED NEWLIST FLAG_PCT MOVE_PCT EXPUNGE_PCT
 * Delivers the files listed in NEWLIST to INBOX and changes a share of the
 * messages; prints one line per change for the plain Maildir:
 *   flag FOLDER UNIQUE FLAGS | move FOLDER UNIQUE DSTFOLDER | expunge FOLDER UNIQUE UID
 *   new FILE UNIQUE */
#include "engine/account.h"
#include "engine/clock.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/mailops.h"
#include "engine/message.h"
#include "engine/store.h"
#include "maildir/deliver.h"
#include "maildir/name.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct m { uint32_t fid, uid; char *folder, *unique; struct coffer_message_rec rec; };
static struct m *v; static size_t n, cap;
static struct coffer_store *st; static struct coffer_mailbox *mb;
static char *cur_folder; static uint32_t cur_fid;
static char *folders[256]; static uint32_t fids[256]; static size_t nf;

static int msg_fn(const struct coffer_message *m, void *arg)
{
	if (n == cap) { cap = cap ? 2 * cap : 4096; v = realloc(v, cap * sizeof *v); }
	v[n].fid = cur_fid; v[n].uid = m->uid; v[n].folder = cur_folder;
	v[n].unique = strdup(m->unique); v[n].rec = m->rec; n++;
	return 0;
}
static int folder_fn(const struct coffer_folder_info *fi, void *arg)
{
	if (strncmp(fi->name, "Restored", 8) == 0 || nf == 256) return 0;
	folders[nf] = strdup(fi->name); fids[nf++] = fi->id;
	return 0;
}
static const unsigned char *acct_id; static const struct coffer_acct_secret *sec;
struct op { struct m *m; int kind; uint8_t flags; uint32_t dst; int64_t now; };
static int op_txn(struct coffer_txn *t, void *arg)
{
	struct op *o = arg; struct coffer_message_rec rec; int rc;
	rc = coffer_message_get_txn(t, acct_id, o->m->fid, o->m->uid, &rec);
	if (rc < 0) return rc;
	if (o->kind == 0) { rec.flags = o->flags; rec.is_new = 0;
		return coffer_message_update_txn(t, acct_id, o->m->fid, o->m->uid, &rec); }
	if (o->kind == 2)
		return coffer_message_expunge_txn(t, st, acct_id, o->m->fid, o->m->uid, o->m->unique,
		                                  strlen(o->m->unique), o->now);
	struct coffer_mailops_place p; uint32_t uid;
	memset(&p, 0, sizeof p);
	p.src_fid = o->m->fid; p.uid = o->m->uid; p.dst_fid = o->dst;
	p.old_unique = p.unique = o->m->unique; p.old_n = p.unique_n = strlen(o->m->unique);
	p.flags = rec.flags; p.is_new = rec.is_new; p.keywords = 0; p.now = o->now;
	return coffer_mailops_message_place_txn(t, st, acct_id, &p, sec, &uid);
}
static const char *flagstr(uint8_t f, char *b)
{
	static const char l[] = "DFPRST"; int k = 0;
	for (int i = 0; i < 6; i++) if (f & (1 << i)) b[k++] = l[i];
	b[k] = 0; return b;
}
int main(int argc, char **argv)
{
	char line[4096], fb[8]; FILE *nl; int rc; int64_t now;
	if (argc != 9) return 64;
	if ((rc = coffer_store_open(argv[1], argv[2], &st)) < 0 ||
	    (rc = coffer_mailbox_open(st, argv[3], strlen(argv[3]), &mb)) < 0) {
		fprintf(stderr, "snapday: %s\n", coffer_errmsg()); return 1; }
	acct_id = coffer_mailbox_id(mb); sec = coffer_mailbox_secret(mb);
	srand((unsigned)atoi(argv[4]));
	coffer_clock_now(&now);
	coffer_folder_list(mb, folder_fn, NULL);
	for (size_t i = 0; i < nf; i++) { cur_folder = folders[i]; cur_fid = fids[i];
		coffer_message_list(mb, fids[i], msg_fn, NULL); }
	double pf = atof(argv[6]) / 100, pm = atof(argv[7]) / 100, px = atof(argv[8]) / 100;
	for (size_t i = 0; i < n; i++) {
		double r = rand() / (RAND_MAX + 1.0);
		struct op o = { &v[i], -1, 0, 0, now };
		if (r < px) o.kind = 2;
		else if (r < px + pm && nf > 1) o.kind = 1;
		else if (r < px + pm + pf) o.kind = 0;
		else continue;
		if (o.kind == 0) o.flags = v[i].rec.flags ^ (rand() % 2 ? COFFER_FLAG_FLAGGED : COFFER_FLAG_SEEN);
		size_t d = 0;
		if (o.kind == 1) { do d = (size_t)rand() % nf; while (fids[d] == v[i].fid); o.dst = fids[d]; }
		if ((rc = coffer_index_update(coffer_store_index(st), op_txn, &o)) < 0) {
			fprintf(stderr, "snapday: %s\n", coffer_errmsg()); return 1; }
		if (o.kind == 0) printf("flag\t%s\t%s\t%s\n", v[i].folder, v[i].unique, flagstr(o.flags, fb));
		if (o.kind == 1) printf("move\t%s\t%s\t%s\n", v[i].folder, v[i].unique, folders[d]);
		if (o.kind == 2) printf("expunge\t%s\t%s\t%u\n", v[i].folder, v[i].unique, v[i].uid);
	}
	nl = fopen(argv[5], "r");
	while (nl && fgets(line, sizeof line, nl)) {
		struct coffer_deliver_result res; int fd;
		line[strcspn(line, "\n")] = 0;
		if ((fd = open(line, O_RDONLY)) < 0) continue;
		rc = coffer_deliver(st, argv[3], "INBOX", fd, &res); close(fd);
		if (rc < 0) { fprintf(stderr, "snapday: %s\n", coffer_errmsg()); return 1; }
		printf("new\t%s\n", line);
	}
	coffer_mailbox_close(&mb); coffer_store_close(&st);
	return 0;
}
EOF
cc -O2 -std=gnu11 -D_GNU_SOURCE -I"$ROOT" -I"$BUILD" "$BENCH_DIR/snapday.c" "$BUILD"/libcoffer-static.a \
	$(pkg-config --cflags --libs libsodium libzstd lmdb libarchive) -o "$BENCH_DIR/snapday"

# ---- helpers ----
# timed OUT CMD...: runs CMD, appends "seconds rss_kb" to OUT
timed() {
	local out=$1
	shift
	/usr/bin/time -f '%e %M' -o "$BENCH_DIR/.time" "$@" >/dev/null 2>"$BENCH_DIR/.err" ||
		{ log "failed: $* ($(tail -3 "$BENCH_DIR/.err"))"; return 1; }
	cat "$BENCH_DIR/.time" >>"$out"
}
median_col() { # median of column $2 of file $1 (lower middle for an even count)
	sort -n -k"$2" "$1" | awk -v c="$2" '{a[NR]=$c} END {print a[int((NR+1)/2)]}'
}

# apply_to_maildir MD CHANGES: mirror the helper's changes on the plain Maildir
apply_to_maildir() {
	python3 - "$1" "$2" <<'PY'
import os, shutil, sys, time
md, changes = sys.argv[1], sys.argv[2]
def box(folder):
    return md if folder == 'INBOX' else os.path.join(md, '.' + folder.replace('/', '.'))
index = {}
def find(folder, unique):
    b = box(folder)
    if b not in index:
        index[b] = {}
        for sub in ('cur', 'new'):
            for f in os.listdir(os.path.join(b, sub)):
                index[b][f.split(':')[0]] = os.path.join(b, sub, f)
    return index[b].get(unique)
seq = 0
for line in open(changes):
    f = line.rstrip('\n').split('\t')
    if f[0] == 'flag':
        p = find(f[1], f[2])
        if p:
            q = os.path.join(box(f[1]), 'cur', f[2] + ':2,' + f[3])
            os.rename(p, q); index[box(f[1])][f[2]] = q
    elif f[0] == 'move':
        p = find(f[1], f[2])
        if p:
            find(f[3], f[2])
            q = os.path.join(box(f[3]), 'cur', os.path.basename(p))
            os.rename(p, q); del index[box(f[1])][f[2]]; index[box(f[3])][f[2]] = q
    elif f[0] == 'expunge':
        p = find(f[1], f[2])
        if p:
            os.unlink(p); del index[box(f[1])][f[2]]
    elif f[0] == 'new':
        seq += 1
        name = '%d.M%dP2.benchnew' % (int(time.time()), seq) + str(os.getpid())
        shutil.copy(f[1], os.path.join(md, 'new', name))
PY
}

RESULTS=$BENCH_DIR/results.md
echo "| size | measure | coffer | restic | borg | coffer RSS KB | restic RSS KB | borg RSS KB |" >"$RESULTS"
echo "|---|---|---|---|---|---|---|---|" >>"$RESULTS"
row() { # size measure files...
	local size=$1 what=$2
	shift 2
	local t=() m=() f
	for f in "$@"; do
		if [ -s "$f" ]; then t+=("$(median_col "$f" 1)"); m+=("$(median_col "$f" 2)"); else t+=("-"); m+=("-"); fi
	done
	echo "| $size | $what | ${t[0]} | ${t[1]} | ${t[2]} | ${m[0]} | ${m[1]} | ${m[2]} |" >>"$RESULTS"
}

export RESTIC_PASSWORD=bench BORG_PASSPHRASE=bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
A=bench@example.org

for SIZE in $SIZES; do
	log "size x$SIZE: building the Maildir"
	W=$BENCH_DIR/x$SIZE
	mkdir -p "$W"
	# the corpus as a Maildir (INBOX + one folder per group), each message
	# SIZE times, all in cur/
	corpus_maildir "$CORPUS" "$W/md0" "$SIZE" 1 60 0
	NMSG=$(find "$W/md0" -type f -path '*/cur/*' | wc -l)
	for r in $(seq 1 "$ROUNDS"); do
		log "size x$SIZE round $r"
		R=$W/r$r
		rm -rf "$R"
		mkdir -p "$R"
		cp -a "$W/md0" "$R/md"
		export COFFER_NOW=2026-01-01T02:00:00Z
		"$COFFER" --store "$R/store" --key-file "$R/key" init >/dev/null
		"$COFFER" --store "$R/store" --key-file "$R/key" account add "$A" >/dev/null
		"$COFFER" --store "$R/store" --key-file "$R/key" import "$A" "$R/md" >/dev/null
		restic init -r "$R/restic" >/dev/null
		borg init -e repokey "$R/borg" >/dev/null 2>&1
		sync
		C="$COFFER --store $R/store --key-file $R/key"
		# full
		timed "$W/full.coffer" $C snapshot create --target "$R/target"
		timed "$W/full.restic" restic -r "$R/restic" backup --compression auto "$R/md"
		timed "$W/full.borg" borg create -C zstd,3 "$R/borg::d0" "$R/md"
		# nochange
		export COFFER_NOW=2026-01-01T03:00:00Z
		timed "$W/nochange.coffer" $C snapshot create --target "$R/target"
		timed "$W/nochange.restic" restic -r "$R/restic" backup --compression auto "$R/md"
		timed "$W/nochange.borg" borg create -C zstd,3 "$R/borg::d0b" "$R/md"
		# daily: 1% new, 5% flags, 1% moves, 1% expunges
		days=1
		[ "$SIZE" = 1 ] && [ "$r" = 1 ] && days=$DAYS30
		for d in $(seq 1 "$days"); do
			export COFFER_NOW=$(date -u -d "2026-01-01 +$d days +2 hours" +%Y-%m-%dT%H:%M:%SZ)
			find "$CORPUS" -name '*.eml' | shuf -n $((NMSG / 100)) --random-source=<(yes "$d") \
				>"$R/new.list"
			export COFFER_NOW=$(date -u -d "2026-01-01 +$d days +1 hours" +%Y-%m-%dT%H:%M:%SZ)
			"$BENCH_DIR/snapday" "$R/store" "$R/key" "$A" "$((d * 7 + r))" "$R/new.list" 5 1 1 \
				>"$R/changes.$d"
			apply_to_maildir "$R/md" "$R/changes.$d"
			sync
			export COFFER_NOW=$(date -u -d "2026-01-01 +$d days +2 hours" +%Y-%m-%dT%H:%M:%SZ)
			if [ "$d" = 1 ]; then
				timed "$W/daily.coffer" $C snapshot create --target "$R/target"
				timed "$W/daily.restic" restic -r "$R/restic" backup --compression auto "$R/md"
				timed "$W/daily.borg" borg create -C zstd,3 "$R/borg::d$d" "$R/md"
			else
				$C snapshot create --target "$R/target" >/dev/null
				restic -r "$R/restic" backup --compression auto "$R/md" >/dev/null
				borg create -C zstd,3 "$R/borg::d$d" "$R/md" >/dev/null 2>&1
			fi
		done
		if [ "$days" -gt 1 ]; then
			du -sb "$R/target" | cut -f1 >"$W/size30.coffer"
			du -sb "$R/restic" | cut -f1 >"$W/size30.restic"
			du -sb "$R/borg" | cut -f1 >"$W/size30.borg"
			du -sb "$R/md" | cut -f1 >"$W/size30.maildir"
		fi
		# restore one message, expunged on day 1, as of the day before (day 0)
		x=$(grep -m1 '^expunge' "$R/changes.1" | cut -f2-)
		xf=$(cut -f1 <<<"$x") xu=$(cut -f2 <<<"$x") xuid=$(cut -f3 <<<"$x")
		xbox=$R/md
		[ "$xf" = INBOX ] || xbox=$R/md/.${xf//\//.}
		export COFFER_NOW=$(date -u -d "2026-01-01 +$days days +5 hours" +%Y-%m-%dT%H:%M:%SZ)
		timed "$W/restore1.coffer" $C restore "$A" --as-of 2026-01-01T02:30:00Z --folder "$xf" \
			--uid "$xuid" --target "$R/target" --into "Bench/$r"
		snapid=$(restic -r "$R/restic" snapshots --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["short_id"])')
		timed "$W/restore1.restic" restic -r "$R/restic" restore "$snapid" --target "$R/rr" \
			--include "$xbox/cur/$xu*"
		(cd "$R/rb" 2>/dev/null || mkdir -p "$R/rb"; cd "$R/rb" &&
			timed "$W/restore1.borg" borg extract "$R/borg::d0" --pattern="+fm:${xbox#/}/cur/$xu*" \
				--pattern='-fm:*')
		# prune of one expired day: move the clock so exactly the first day expires
		export COFFER_NOW=$(date -u -d "2026-01-01 +30 days +2 hours +30 minutes" +%Y-%m-%dT%H:%M:%SZ)
		timed "$W/prune1.coffer" $C snapshot prune --target "$R/target"
		timed "$W/prune1.restic" restic -r "$R/restic" forget --keep-last $(( $(restic -r "$R/restic" snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') - 1 )) --prune
		timed "$W/prune1.borg" sh -c "borg delete '$R/borg::d0' && borg compact '$R/borg'"
		[ "$r" = "$ROUNDS" ] || rm -rf "$R"
	done
	for what in full daily nochange restore1 prune1; do
		row "$NMSG" "$what (s)" "$W/$what.coffer" "$W/$what.restic" "$W/$what.borg"
	done
	if [ -s "$W/size30.coffer" ]; then
		echo "| $NMSG | size after $DAYS30 days (bytes; Maildir $(cat "$W/size30.maildir")) | $(cat "$W/size30.coffer") | $(cat "$W/size30.restic") | $(cat "$W/size30.borg") | | | |" >>"$RESULTS"
	fi
done
cat "$RESULTS"
