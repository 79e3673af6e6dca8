#!/usr/bin/env bash
# The crash matrix (tests/crash/crash-matrix.py) in its short CI form:
# kill -9 of deliver, import, the mount under a Dovecot APPEND storm,
# snapshot create, prune, purge and worker, CRASH_KILLS (default 3) kills
# each, with verify, snapshot verify --read-data=10, acknowledged-message
# and partial-message checks after every kill. The long run (200 kills per
# writer) is recorded in docs/reliability.md:
#   CRASH_KILLS=200 COFFER_BIN=build/tools/coffer tests/crash/crash-matrix.py --json out.json
# The mount writer is skipped (with its reason) where FUSE, Dovecot or root
# is missing; the other writers always run. Prints TAP.
. "$(dirname "$0")/lib.sh"
trap - EXIT
rm -rf "$T_TMP"
if ! command -v python3 >/dev/null 2>&1; then
	echo "1..0 # SKIP python3 missing"
	exit 77
fi
exec python3 "$T_HERE/../crash/crash-matrix.py" --coffer "$COFFER_BIN" \
	--kills "${CRASH_KILLS:-3}" ${CRASH_SEED:+--seed "$CRASH_SEED"}
