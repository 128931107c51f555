#!/bin/bash
# test_fd_limits.sh - descriptors above the restoring shell's limit.
#
#   bash tests/integration/test_fd_limits.sh BUILD_DIR
#
# The test program `fd_high` raises its RLIMIT_NOFILE and holds fds 5000,
# 5500 and 5501 (test_progs.sh restores it from a coord whose soft limit
# is 1024). Here: a coord whose hard limit is 1024 cannot raise it, so the
# restore is refused with a message naming the fd and the limit, nothing
# runs, and the image is not used up: the same image then restores from a
# coord with a soft limit of 1024 and the program passes its checks.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-fdlim.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

start_test_prog fd_high || exit 0
if ! "$C" checkpoint "$pid" -o "$T/img.ckpt" --kill >"$T/err" 2>&1 || ! wait_for 10 gone "$pid"; then
    fail fd_high_checkpoint "checkpoint --kill failed"
    exit 0
fi

out=$(cd / && ulimit -n 1024 && exec timeout 30 "$C" restore --detach "$T/img.ckpt" 2>"$T/err")
rc=$?
if [ $rc -eq 1 ] && [ -z "$out" ] &&
    grep -q "holds fd 5501, which needs a descriptor limit of at least .* hard RLIMIT_NOFILE here is 1024" "$T/err"; then
    pass restore_refused_below_hard_limit
else
    fail restore_refused_below_hard_limit "rc=$rc out='$out'"
    [ -n "$out" ] && kill -9 "$out" 2>/dev/null
fi

restore_to_pass restore_raises_soft_limit "$T/img.ckpt" fd_high 1024
