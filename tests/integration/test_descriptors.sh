#!/bin/bash
# test_descriptors.sh - descriptor state beyond the test programs: bash's
# read-write pipe, descriptors above the restoring shell's limit.
#
#   bash tests/integration/test_descriptors.sh BUILD_DIR
#
# bash under the shim holds a pipe through one read-write descriptor
# (`exec 9<> <(:)`) with a line waiting in it; after checkpoint --kill and
# restore the line is still there, then a read times out (the pipe is
# open and empty; it came back at end of file), and the pipe still works.
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
T=$(mktemp -d /tmp/ckshim-fds.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# ---- bash: exec 9<> <(:)
cat >"$T/rw.sh" <<'SH'
exec 9<> <(:)
echo waiting >&9
echo READY
while [ ! -e "$1" ]; do read -r -t 0.05 -u 7 _ 7</dev/null; done
read -r -t 1 -u 9 first
read -r -t 0.3 -u 9 second
rc=$?
echo hi >&9
read -r -t 1 -u 9 third
echo "first=$first rc=$rc third=$third"
SH
(cd "$T" && exec env LD_PRELOAD="$SHIM" bash "$T/rw.sh" "$T/bash.go" >"$T/bash.log" 2>&1) &
bpid=$!
disown "$bpid" 2>/dev/null
PIDS+=("$bpid")
if wait_for 10 grep -q READY "$T/bash.log" &&
    "$C" checkpoint "$bpid" -o "$T/bash.ckpt" --kill >"$T/err" 2>&1 && wait_for 10 gone "$bpid" &&
    np=$(cd / && timeout 30 "$C" restore --detach "$T/bash.ckpt" 2>"$T/err") && [ -n "$np" ]; then
    PIDS+=("$np")
    touch "$T/bash.go"
    wait_for 10 gone "$np"
    if grep -q "first=waiting rc=14[0-9] third=hi" "$T/bash.log"; then
        pass bash_rdwr_pipe_stays_open
    else
        fail bash_rdwr_pipe_stays_open "bash says: $(tail -n 1 "$T/bash.log")"
    fi
else
    fail bash_rdwr_pipe_stays_open "could not checkpoint and restore bash: $(tail -n 2 "$T/bash.log")"
fi

# ---- fd 5000 and RLIMIT_NOFILE
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
