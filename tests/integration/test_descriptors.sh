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
# bench_sockets's sockets are followed by the shim (socktrack.c) at a
# first checkpoint and after a restore, and not with CKSHIM_NO_SOCKTRACK=1.
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

# ---- the sockets the shim follows (preload/socktrack.c): bench_sockets 40
# (a listener, TCP connections and UDP sockets, none changed) under
# CKSHIM_DEBUG=1, which prints at each checkpoint how many sockets the
# shim followed: all of them at the first checkpoint and again after a
# restore (its sockets are followed again, their options asked); none
# with CKSHIM_NO_SOCKTRACK=1. The count keeps the fast path from going
# unnoticed; test_progs's sock_tracked programs check what it saves.
# the count of the last checkpoint (the restored program writes over the
# log's tail: its descriptor comes back at its checkpoint offset)
followed() { grep -o '([0-9]* sockets the shim followed)' "$1" | tail -n 1 | tr -dc 0-9; }
socktrack_case() { # NAME EXPECTED-AFTER-RESTORE ENV...
    local name=$1 want=$2 n np
    shift 2
    : >"$T/st.log"
    (cd "$T" && exec env CKSHIM_DEBUG=1 "$@" LD_PRELOAD="$SHIM" "$B/tests/progs/bench_sockets" 40 \
        >"$T/st.log" 2>&1) &
    local sp=$!
    disown "$sp" 2>/dev/null
    PIDS+=("$sp")
    if ! wait_for 10 grep -q '^READY' "$T/st.log"; then
        fail "$name" "bench_sockets did not start: $(tail -n 2 "$T/st.log")"
        return
    fi
    n=$(sed -n 's/^READY \([0-9]*\) sockets/\1/p' "$T/st.log")
    [ "$want" = all ] && want=$n
    local a b
    if "$C" checkpoint "$sp" -o "$T/st.ckpt" --kill >"$T/err" 2>&1 && wait_for 10 gone "$sp" &&
        a=$(followed "$T/st.log") &&
        np=$(cd / && timeout 30 "$C" restore --detach "$T/st.ckpt" 2>"$T/err") && [ -n "$np" ] &&
        PIDS+=("$np") && "$C" checkpoint "$np" -o "$T/st2.ckpt" >"$T/err" 2>&1; then
        b=$(followed "$T/st.log")
        if [ "$a" = "$want" ] && [ "$b" = "$want" ] && [ -n "$n" ]; then
            pass "$name"
        else
            fail "$name" "$n sockets: followed $a at the first checkpoint and $b after restore, want $want"
        fi
        kill -9 "$np" 2>/dev/null
    else
        fail "$name" "checkpoint or restore failed: $(tail -n 2 "$T/err")"
    fi
}
socktrack_case sockets_followed all
socktrack_case sockets_not_followed_when_told 0 CKSHIM_NO_SOCKTRACK=1

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
