#!/usr/bin/env bash
# Build Coffer with -Werror under AddressSanitizer + UndefinedBehaviorSanitizer
# and run every test suite (unit, integration, and fuzz when the build has the
# 'fuzz' option). Ends with exactly one line `N passed, N failed` summed over
# all suites (", N skipped" is added outside CI). Exits non-zero if anything
# failed.
#
#   bash scripts/test.sh
#
# Environment:
#   CI=true                  a skipped test (exit 77) counts as failed: CI must
#                            provide every facility
#   COFFER_CORPUS_CACHE      where the test corpus is cached
#                            (default ~/.cache/coffer/corpus)
#   COFFER_SKIP_DEPS=1       do not run scripts/install-deps.sh
#   COFFER_BUILD_DIR         sanitizer build directory (default ./build-san)
#   COFFER_TEST_ARGS         extra arguments for `meson test` (e.g. --suite unit)
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${COFFER_BUILD_DIR:-$ROOT/build-san}
FUZZ_BUILD=${COFFER_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
CI=${CI:-false}

step() { echo; echo "== $* =="; }

passed=0 failed=0 skipped=0

# count_log BUILD_DIR: add the results of BUILD_DIR/meson-logs/testlog.json.
count_log() {
	local log=$1/meson-logs/testlog.json
	if [ ! -s "$log" ]; then
		echo "test.sh: no test log in $1 (tests did not run)"
		failed=$((failed + 1))
		return
	fi
	local p f s
	read -r p f s < <(python3 - "$log" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1], encoding='utf-8'):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line).get('result', '')
    if r in ('OK', 'EXPECTEDFAIL'):
        p += 1
    elif r == 'SKIP':
        s += 1
    else:
        f += 1
print(p, f, s)
PY
	)
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$CI" = true ]; then
		failed=$((failed + s))
		[ "$s" != 0 ] && echo "test.sh: $s skipped test(s) in $1 count as failed under CI"
	else
		skipped=$((skipped + s))
	fi
	return 0
}

# build_and_test DIR SETUP-ARGS... -- TEST-ARGS...
build_and_test() {
	local dir=$1
	shift
	local setup=() tests=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do setup+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	tests=("$@")
	if [ -f "$dir/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$dir" "${setup[@]}" >/dev/null ||
			{ rm -rf "$dir" && meson setup "$dir" "${setup[@]}" >/dev/null; }
	else
		rm -rf "$dir"
		meson setup "$dir" "${setup[@]}" >/dev/null
	fi || { echo "test.sh: meson setup of $dir failed"; failed=$((failed + 1)); return; }
	# Keep going past a broken target: the build failure counts as one failed
	# unit, and every test whose program did build still runs (a test whose
	# program is missing fails).
	if ! ninja -C "$dir" -k 0; then
		echo "test.sh: build in $dir failed (counted as 1 failed); running the tests that built"
		failed=$((failed + 1))
	fi
	rm -f "$dir/meson-logs/testlog.json"
	# meson refuses to run anything while one test program is missing: run the
	# tests whose programs exist, and count the others as failed.
	local runnable=() missing=0 line
	while IFS= read -r line; do
		case $line in
		run\ *) runnable+=("${line#run }") ;;
		missing\ *) echo "test.sh: ${line#missing } was not built (counted as failed)"; missing=$((missing + 1)) ;;
		esac
	done < <(python3 - "$dir/meson-info/intro-tests.json" "${tests[@]}" <<'PY'
import json, os, sys
tests = json.load(open(sys.argv[1]))
suite = None
args = sys.argv[2:]
if '--suite' in args:
    suite = args[args.index('--suite') + 1]
# `meson test NAME` selects every test of that name, so a name is runnable
# only if all of its tests' programs exist.
names = {}
for t in tests:
    if suite and not any(s == suite or s.endswith(':' + suite) for s in t['suite']):
        continue
    prog = t['cmd'][0] if t['cmd'] else ''
    names.setdefault(t['name'], []).append(os.path.exists(prog))
for name, exist in names.items():
    if all(exist):
        print('run ' + name)
    else:
        for _ in exist:
            print('missing ' + name)
PY
	)
	failed=$((failed + missing))
	if [ "${#runnable[@]}" = 0 ]; then
		echo "test.sh: no runnable test in $dir"
		return
	fi
	# shellcheck disable=SC2086
	meson test -C "$dir" --no-rebuild --print-errorlogs "${runnable[@]}" ${COFFER_TEST_ARGS:-}
	count_log "$dir"
}

if [ "${COFFER_SKIP_DEPS:-0}" != 1 ]; then
	step "dependencies"
	bash scripts/install-deps.sh || { echo "test.sh: installing dependencies failed"; echo "0 passed, 1 failed"; exit 1; }
fi

step "corpus"
if corpus=$(bash tests/integration/corpus.sh); then
	echo "corpus at $corpus"
else
	echo "test.sh: fetching the corpus failed (tests that need it will fail)"
fi

# The mount serves FUSE requests through io_uring where the kernel offers it
# (Linux 6.14+ built with it, fuse module parameter enable_uring, off by
# default; docs/operations.md): turned on for the run when this kernel has
# it, so that the mount's tests cover that transport (their *-devfuse twins
# cover /dev/fuse), and put back afterwards.
URING_PARAM=/sys/module/fuse/parameters/enable_uring
if [ -w "$URING_PARAM" ]; then
	uring_was=$(cat "$URING_PARAM")
	trap 'echo "$uring_was" >"$URING_PARAM" 2>/dev/null' EXIT
	echo Y >"$URING_PARAM" && echo "FUSE over io_uring: on for this run (was $uring_was)"
else
	echo "FUSE over io_uring: not offered by this kernel; the mount's tests use /dev/fuse"
fi

step "sanitizer build (-Werror, ASan+UBSan) and tests: $BUILD"
build_and_test "$BUILD" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false

if [ -f meson_options.txt ] && grep -Eq "option\(\s*['\"]fuzz['\"]" meson_options.txt; then
	step "fuzz build (clang, -Dfuzz=true) and fuzz suite: $FUZZ_BUILD"
	CC=clang build_and_test "$FUZZ_BUILD" -Dfuzz=true -Dwerror=true \
		-Db_sanitize=address,undefined -Db_lundef=false -- --suite fuzz
fi

echo
if [ "$CI" = true ]; then
	echo "$passed passed, $failed failed"
else
	if [ "$skipped" != 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
fi
[ "$failed" = 0 ]
