#!/bin/bash
# Model test of `coffer mount` against a local file system: MODEL_SEQUENCES
# (default 40) random sequences of MODEL_OPS (default 300) operations on
# control files, each run on the mount and in a local directory, every
# answer compared, then an umount and a mount and the names and contents
# compared again (tests/integration/mount-model.py says what is compared and
# what the mount does not promise). A sequence that differs is printed,
# shrunk to a minimal one, as a diagnostic.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount-lib.sh"
mnt_require

A=model@example.org
mnt_account "$A"
mnt_start; ok $? "coffer mount returns once mounted"
mkdir -p "$T_TMP/local"
# the mount daemon started by the command must not hold the test's output
REMOUNT="\"$COFFER_BIN\" --store \"$S\" --key-file \"$K\" umount \"$MNT\" &&
         \"$COFFER_BIN\" --store \"$S\" --key-file \"$K\" mount \"$MNT\" \
         </dev/null >/dev/null 2>>\"$MNT_LOG\""
python3 "$(dirname "$0")/mount-model.py" "$MNT/$A" "$T_TMP/local" \
	"${MODEL_SEQUENCES:-40}" "${MODEL_OPS:-300}" "$REMOUNT" >"$T_TMP/model.out" 2>&1
st=$?
diag "$(grep -v '^# seed [0-9]*$' "$T_TMP/model.out" | sed 's/^# //' | cut -c1-400)"
ok $st "the mount and the local file system agree on every answer"
mnt_stop; ok $? "coffer umount"
done_testing
