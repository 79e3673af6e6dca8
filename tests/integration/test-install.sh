#!/bin/bash
# test-install.sh: `meson install --destdir D` from the build directory, then
# every installed artifact checked where the build's options put it:
#   - the coffer command (and --version = the meson project version);
#   - libcoffer.so with its soname links, exporting exactly the coffer_*
#     functions of the installed headers (the version script);
#   - the headers under include/coffer/ and the pkg-config file: a small C
#     program compiles with `pkg-config --cflags --libs coffer` (-Werror),
#     links, and runs against the installed library (coffer_strerror, and a
#     store made through the library that the command then opens);
#   - a man page per subcommand of `coffer --help` and coffer.1, each
#     rendering without warnings (man --warnings, groff -ww, lexgrog for
#     the NAME line), naming every option of the subcommand's --help, and
#     coffer.1 listing exactly docs/exit-codes.md's exit codes;
#   - the systemd units, with ExecStart pointing at the installed command;
#   - the example coffer.conf: it names every key engine/config.c knows, and
#     a store using it as its coffer.conf runs with the defaults;
#   - the documentation.
# Needs: meson, python3, pkg-config, cc, man-db, groff-base (Debian).
. "$(dirname "$0")/lib.sh"

BUILD=${COFFER_BUILD_ROOT:-}
if [ -z "$BUILD" ] || [ ! -f "$BUILD/build.ninja" ]; then
	echo "1..0 # SKIP COFFER_BUILD_ROOT (a configured meson build directory) is not set"
	exit 77
fi
for tool in meson python3 pkg-config cc man groff lexgrog nm readelf; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..0 # SKIP $tool is not installed (Debian: man-db groff-base pkgconf binutils)"
		exit 77
	fi
done
SRC=$COFFER_SOURCE_ROOT
D=$T_TMP/destdir

# ---- install ----
# --no-rebuild: the build is complete before tests run (scripts/test.sh builds
# every target first), and a test must not start ninja in a shared build dir.
meson install -C "$BUILD" --no-rebuild --quiet --destdir "$D" >"$T_TMP/install.log" 2>&1
st=$?
ok $st "meson install --destdir succeeds"
[ $st = 0 ] || { diag "$(tail -20 "$T_TMP/install.log")"; done_testing; }

# The install locations, from the build's own options.
eval "$(meson introspect "$BUILD" --buildoptions --projectinfo 2>/dev/null | python3 -c '
import json, sys, shlex
j = json.load(sys.stdin)
o = {x["name"]: x["value"] for x in j["buildoptions"]}
for k in ("prefix", "bindir", "libdir", "libexecdir", "includedir", "mandir", "datadir"):
    print("OPT_%s=%s" % (k, shlex.quote(str(o[k]))))
print("OPT_unitdir=%s" % shlex.quote(str(o.get("systemdsystemunitdir", ""))))
print("OPT_sanitize=%s" % shlex.quote(str(o.get("b_sanitize", "none"))))
print("PROJECT_VERSION=%s" % shlex.quote(j["projectinfo"]["version"]))
')"
if [ -z "${OPT_prefix:-}" ] || [ -z "${PROJECT_VERSION:-}" ]; then
	fail "meson introspect gives the install options and the project version"
	done_testing
fi
under() { # under DIR: DIR relative to the prefix unless absolute
	case $1 in /*) echo "$1" ;; *) echo "$OPT_prefix/$1" ;; esac
}
BIN=$D$(under "$OPT_bindir")
LIB=$D$(under "$OPT_libdir")
INC=$D$(under "$OPT_includedir")
MAN1=$D$(under "$OPT_mandir")/man1
DOC=$D$(under "$OPT_datadir")/doc/coffer
if [ -n "$OPT_unitdir" ]; then
	UNITS=$D$OPT_unitdir
elif pkg-config --exists systemd; then
	UNITS=$D$(pkg-config --variable systemdsystemunitdir systemd)
else
	UNITS=$D$OPT_prefix/lib/systemd/system
fi

# ---- the command ----
[ -x "$BIN/coffer" ]; ok $? "coffer installed in $(under "$OPT_bindir")"
# bin/coffer runs deliver itself and execs libexec/coffer/coffer-full for the
# rest, by its installed path, which under --destdir does not exist yet; so
# --version is asked of the installed coffer-full, and the front end must
# name that installed path.
FULL=$(under "$OPT_libexecdir")/coffer/coffer-full
[ -x "$D$FULL" ]; ok $? "coffer-full installed in $(dirname "$FULL")"
out=$("$D$FULL" --version 2>&1)
[ "$out" = "coffer $PROJECT_VERSION" ]
ok $? "installed coffer-full --version prints the project version ($PROJECT_VERSION)" ||
	diag "got: $out"
out=$(cd / && "$BIN/coffer" --version 2>&1)
[ "$out" = "coffer $PROJECT_VERSION" ] || grep -qF "$FULL" <<<"$out"
ok $? "the installed front end runs $FULL" || diag "got: $out"
out=$("$COFFER_BIN" --version 2>&1)
[ "$out" = "coffer $PROJECT_VERSION" ]
ok $? "built coffer --version prints the project version" || diag "got: $out"

# ---- the library ----
SOVER=${PROJECT_VERSION%%.*}
[ -f "$LIB/libcoffer.so.$PROJECT_VERSION" ] && [ -L "$LIB/libcoffer.so.$SOVER" ] &&
	[ -L "$LIB/libcoffer.so" ]
ok $? "libcoffer.so.$PROJECT_VERSION with its .so.$SOVER and .so links"
readelf -d "$LIB/libcoffer.so.$PROJECT_VERSION" | grep -q "SONAME.*\[libcoffer.so.$SOVER\]"
ok $? "soname is libcoffer.so.$SOVER"

nm -D --defined-only "$LIB/libcoffer.so.$PROJECT_VERSION" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' |
	sed 's/@.*//' | sort -u >"$T_TMP/exported"
python3 - "$INC/coffer" >"$T_TMP/declared" <<'EOF'
import os, re, sys
names = set()
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        text = open(os.path.join(root, f), encoding='utf-8').read()
        text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
        names.update(re.findall(r'\b(coffer_[A-Za-z0-9_]+)\s*\(', text))
print('\n'.join(sorted(names)))
EOF
stray=$(grep -v '^coffer_' "$T_TMP/exported")
[ -z "$stray" ]; ok $? "libcoffer exports nothing but coffer_* symbols" || diag "$stray"
missing=$(comm -23 "$T_TMP/declared" "$T_TMP/exported")
[ -s "$T_TMP/declared" ] && [ -z "$missing" ]
ok $? "every function of the installed headers is exported ($(wc -l <"$T_TMP/declared"))" ||
	diag "not exported: $missing"
extra=$(comm -13 "$T_TMP/declared" "$T_TMP/exported")
[ -z "$extra" ]; ok $? "nothing beyond the installed headers is exported" || diag "extra: $extra"
# internal functions exist in the build, but stay hidden
hidden=0
for sym in coffer_mount_run coffer_worker_run coffer_shred_account coffer_snapshot_create; do
	grep -qx "$sym" "$T_TMP/exported" && { hidden=1; diag "$sym is exported"; }
done
ok $hidden "internal functions (mount, worker, shred, snapshot) are not exported"

# ---- headers and pkg-config ----
hdrs_ok=0
for h in coffer.h engine/errors.h engine/buf.h engine/clock.h engine/crypto.h engine/store.h \
	engine/account.h engine/folder.h engine/message.h; do
	[ -f "$INC/coffer/$h" ] || { hdrs_ok=1; diag "missing include/coffer/$h"; }
done
ok $hdrs_ok "public headers installed under include/coffer/ (engine/ kept)"

export PKG_CONFIG_PATH=$LIB/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$D
[ -f "$LIB/pkgconfig/coffer.pc" ]; ok $? "coffer.pc installed in the libdir's pkgconfig/"
[ "$(pkg-config --modversion coffer 2>&1)" = "$PROJECT_VERSION" ]
ok $? "pkg-config --modversion coffer = $PROJECT_VERSION"
flags=$(pkg-config --cflags --libs coffer 2>&1)
ok $? "pkg-config --cflags --libs coffer: $flags"

cat >"$T_TMP/prog.c" <<'EOF'
/* a user of the installed libcoffer */
#include <coffer.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct coffer_store *st = NULL;
	const char *s = coffer_strerror(COFFER_ENOTFOUND);
	int rc;

	if (argc != 3 || s == NULL || *s == '\0')
		return 2;
	printf("strerror: %s\n", s);
	if (coffer_crypto_init() < 0)
		return 3;
	rc = coffer_store_open(argv[1], argv[2], &st);
	printf("open missing: %d %s\n", rc, coffer_strerror(rc));
	if (rc != COFFER_ENOTFOUND)
		return 4;
	rc = coffer_store_init(argv[1], argv[2], &st);
	if (rc < 0) {
		printf("init: %s\n", coffer_errmsg());
		return 5;
	}
	coffer_store_close(&st);
	rc = coffer_store_open(argv[1], argv[2], &st);
	if (rc < 0 || strcmp(coffer_store_path(st), argv[1]) != 0)
		return 6;
	coffer_store_close(&st);
	puts("store made");
	return 0;
}
EOF
# A library built with sanitizers needs their runtimes first in the program
# (as any user of such a build would have to do).
san=
[ "$OPT_sanitize" != none ] && san=-fsanitize=$OPT_sanitize
# shellcheck disable=SC2086
cc -std=c99 -Wall -Wextra -Werror -Wstrict-prototypes $san "$T_TMP/prog.c" $flags -o "$T_TMP/prog" \
	>"$T_TMP/cc.log" 2>&1
st=$?
ok $st "a C program compiles (-std=c99 -Werror) and links with pkg-config's flags" ||
	diag "$(cat "$T_TMP/cc.log")"
if [ $st = 0 ]; then
	readelf -d "$T_TMP/prog" | grep -q "NEEDED.*\[libcoffer.so.$SOVER\]"
	ok $? "the program needs libcoffer.so.$SOVER"
	out=$(LD_LIBRARY_PATH=$LIB "$T_TMP/prog" "$T_TMP/libstore" "$T_TMP/lib.key" 2>&1)
	st=$?
	[ $st = 0 ] && grep -q "^strerror: ." <<<"$out" && grep -q "^store made$" <<<"$out"
	ok $? "it runs against the installed library: coffer_strerror, store init and open" ||
		diag "exit $st: $out"
	run --store "$T_TMP/libstore" --key-file "$T_TMP/lib.key" account add a@example.org
	expect_rc 0; ok $? "the command uses the store the library made"
fi
if command -v c++ >/dev/null; then
	c++ -x c++ -Wall -Werror -c "$T_TMP/prog.c" $(pkg-config --cflags coffer) \
		-o "$T_TMP/prog-cxx.o" >"$T_TMP/cxx.log" 2>&1
	ok $? "coffer.h compiles as C++" || diag "$(cat "$T_TMP/cxx.log")"
fi

# ---- man pages ----
"$COFFER_BIN" --help | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' | sort >"$T_TMP/subs"
(cd "$MAN1" 2>/dev/null && ls coffer-*.1) | sed 's/^coffer-//; s/\.1$//' | sort >"$T_TMP/pages"
[ -s "$T_TMP/subs" ] && diff "$T_TMP/subs" "$T_TMP/pages" >"$T_TMP/pages.diff"
ok $? "one man page per subcommand of coffer --help ($(wc -l <"$T_TMP/subs")), no others" ||
	diag "$(cat "$T_TMP/pages.diff")"
[ -f "$MAN1/coffer.1" ]; ok $? "coffer.1 installed"

render_bad=0 lint_bad=0 opts_bad=0
for page in "$MAN1"/coffer.1 "$MAN1"/coffer-*.1; do
	[ -f "$page" ] || continue
	name=$(basename "$page" .1)
	w=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >"$T_TMP/$name.txt")
	if [ -n "$w" ] || [ ! -s "$T_TMP/$name.txt" ]; then
		render_bad=1
		diag "$name: man -l warns or renders nothing: $w"
	fi
	w=$(groff -man -ww -z -Tutf8 "$page" 2>&1)
	[ -z "$w" ] || { render_bad=1; diag "$name: groff -ww: $w"; }
	w=$(lexgrog "$page" 2>&1)
	# lexgrog exits 0 and prints FILE: "name - summary" when it can parse NAME
	if [ $? != 0 ] || ! grep -qF ": \"$name - " <<<"$w"; then
		lint_bad=1
		diag "$name: lexgrog: $w"
	fi
	# every option of the subcommand's --help appears in its page (one source)
	if [ "$name" != coffer ]; then
		MANWIDTH=250 man -E UTF-8 -l "$page" 2>/dev/null >"$T_TMP/$name.wide"
		for opt in $("$COFFER_BIN" "${name#coffer-}" --help | grep -o -- '--[a-z][a-z-]*' |
			sort -u); do
			grep -qF -- "$opt" "$T_TMP/$name.wide" ||
				{ opts_bad=1; diag "$name: $opt of --help is not in the page"; }
		done
		grep -qF "coffer ${name#coffer-}" "$T_TMP/$name.wide" ||
			{ opts_bad=1; diag "$name: no synopsis"; }
	fi
done
ok $render_bad "every page renders with man -l and groff -ww without warnings"
ok $lint_bad "every page has a NAME line that lexgrog (mandb's whatis parser) accepts"
ok $opts_bad "every subcommand page names each option its --help names"

# EXIT STATUS of coffer.1 = the first table of docs/exit-codes.md
sed -n '/^| code | name | meaning |/,/^$/p' "$SRC/docs/exit-codes.md" |
	sed -n 's/^| \([0-9][0-9]*\) |.*/\1/p' | sort -n >"$T_TMP/codes.doc"
MANWIDTH=200 man -E UTF-8 -l "$MAN1/coffer.1" 2>/dev/null |
	sed -n '/^EXIT STATUS/,/^ENVIRONMENT/p' |
	sed -n 's/^ \{7\}\([0-9][0-9]*\)\( (EX_[A-Z]*)\)\{0,1\} .*/\1/p; s/^ \{7\}\([0-9][0-9]*\)\( (EX_[A-Z]*)\)\{0,1\}$/\1/p' |
	sort -n >"$T_TMP/codes.man"
[ -s "$T_TMP/codes.doc" ] && diff "$T_TMP/codes.doc" "$T_TMP/codes.man" >"$T_TMP/codes.diff"
ok $? "coffer.1's EXIT STATUS lists exactly docs/exit-codes.md's codes ($(tr '\n' ' ' <"$T_TMP/codes.doc"))" ||
	diag "$(cat "$T_TMP/codes.diff")"
env_bad=0
for v in COFFER_STORE COFFER_KEY_FILE COFFER_NOW COFFER_LOG_LEVEL; do
	sed -n '/^ENVIRONMENT/,/^FILES/p' "$T_TMP/coffer.txt" | grep -q "^ *$v\$" ||
		{ env_bad=1; diag "coffer.1 ENVIRONMENT lacks $v"; }
done
ok $env_bad "coffer.1 documents COFFER_STORE, COFFER_KEY_FILE, COFFER_NOW, COFFER_LOG_LEVEL"
"$COFFER_BIN" --man nosuch >/dev/null 2>&1
[ $? = 64 ]; ok $? "coffer --man with an unknown subcommand exits 64"

# ---- systemd units ----
units_bad=0 nunits=0
for u in "$SRC"/systemd/*.service "$SRC"/systemd/*.timer; do
	[ -f "$u" ] || continue
	nunits=$((nunits + 1))
	b=$(basename "$u")
	if [ ! -f "$UNITS/$b" ]; then
		units_bad=1
		diag "$b not installed in $UNITS"
		continue
	fi
	while read -r exe; do
		[ "$exe" = "$(under "$OPT_bindir")/coffer" ] ||
			{ units_bad=1; diag "$b runs $exe, not the installed coffer"; }
	done < <(sed -n 's/^Exec[A-Za-z]*=-\{0,1\}\([^ ]*coffer\)\( .*\)\{0,1\}$/\1/p' "$UNITS/$b")
done
[ $nunits -gt 0 ] && [ $units_bad = 0 ]
ok $? "the $nunits systemd units are installed in ${UNITS#"$D"}, running the installed coffer"

# ---- example config ----
EX=$DOC/coffer.conf.example
[ -f "$EX" ]; ok $? "coffer.conf.example installed in ${DOC#"$D"}"
keys_bad=0
for k in $(sed -n '/key_names\[K_COUNT\]/,/^};/p' "$SRC/engine/config.c" |
	sed -n 's/.*= "\([a-z_]*\)",/\1/p'); do
	grep -Eq "^#? ?$k = " "$EX" || { keys_bad=1; diag "the example does not set or show $k"; }
done
[ "$(sed -n '/key_names\[K_COUNT\]/,/^};/p' "$SRC/engine/config.c" | grep -c '= "')" -ge 8 ] &&
	[ $keys_bad = 0 ]
ok $? "the example names every key of engine/config.c"
S=$T_TMP/store K=$T_TMP/coffer.key
run --store "$S" --key-file "$K" init
expect_rc 0 || fail "init"
run --store "$S" --key-file "$K" policy show --json
cp "$R_OUT" "$T_TMP/policy.init"
cp "$EX" "$S/coffer.conf"
run --store "$S" --key-file "$K" policy show --json
expect_rc 0 && cmp -s "$R_OUT" "$T_TMP/policy.init"
ok $? "a store running on the example config has the defaults of coffer init" ||
	diag "$(cat "$R_OUT" "$T_TMP/policy.init")"
sed -e "s|^# key_file = .*|key_file = \"$K\"|" \
	-e "s|^# snapshot_target = .*|snapshot_target = \"$T_TMP/snapshots\"|" "$EX" >"$S/coffer.conf"
run --store "$S" policy show
expect_rc 0 && grep -q "^snapshot_target = $T_TMP/snapshots\$" "$R_OUT"
ok $? "its commented key_file and snapshot_target lines, uncommented, are accepted"
run --store "$S" snapshot create
expect_rc 0; ok $? "and a snapshot is taken into that target"

# ---- documentation ----
docs_bad=0
for f in operations.md dovecot.md security.md exit-codes.md design.md; do
	cmp -s "$SRC/docs/$f" "$DOC/$f" || { docs_bad=1; diag "$f not installed in ${DOC#"$D"}"; }
done
ok $docs_bad "documentation installed in ${DOC#"$D"}"

done_testing
