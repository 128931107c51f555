#!/bin/bash
# test_locks.sh - a file lock that cannot be taken back refuses the restore.
#
#   bash tests/integration/test_locks.sh BUILD_DIR
#
# The test program `locks` (tests/integration/progs/locks.c: flock, POSIX
# and OFD locks, several ranges) runs under the shim. Checks:
#   - an image restored while the original still runs and holds its locks
#     is refused, naming the lock, the file and the holder (pid and name);
#   - after a checkpoint --kill, another process grabs a flock, a POSIX
#     and an OFD lock in turn: each restore (--detach and foreground) is
#     refused with the lock's kind, range, path and holder, exit 1, and
#     nothing runs;
#   - coord inspect lists the locks (text and JSON);
#   - once the grabber is gone the same image restores (the refusals did
#     not use up its counter stamp) and the program finds its locks held.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-locks.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# running_marker: is a process of ours with CK_GO=$T/go in its environment
# running (the program, restored or not)?
running_marker() {
    local d p
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        [ -O "$d" ] || continue
        tr '\0' '\n' 2>/dev/null <"$d/environ" | grep -qx "CK_GO=$T/go" && return 0
    done
    return 1
}

# grab KIND FILE: a python3 process takes a lock conflicting with the
# program's and keeps it; sets $gpid.
grab() {
    cat >"$T/grab.py" <<'PY'
import fcntl, os, struct, sys, time
kind, path = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
if kind == "flock":
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)        # program: LOCK_EX on a.lck
elif kind == "posix":
    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 12)  # program: write 10-14 on b.lck
else:
    fl = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 1500, 1, 0)
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, fl)                 # program: OFD read 1000-1999
print("LOCKED", flush=True)
time.sleep(300)
PY
    python3 "$T/grab.py" "$1" "$2" >"$T/grab.log" 2>&1 &
    gpid=$!
    PIDS+=("$gpid")
    wait_for 10 grep -q LOCKED "$T/grab.log" || echo "    (grabber $1 did not lock: $(cat "$T/grab.log"))"
}

ungrab() {
    kill -9 "$gpid" 2>/dev/null
    wait "$gpid" 2>/dev/null
}

# refused NAME IMG PATTERN: restore --detach refused (exit 1, message
# matching PATTERN), and nothing of the program runs.
refused() {
    restore_refused "$1" "$2" "$3"
    if running_marker; then
        fail "$1-nothing-runs" "a process of the program runs after the refused restore"
    else
        pass "$1-nothing-runs"
    fi
}

start_test_prog locks || exit 0

# 1. the original still holds its locks
if "$C" checkpoint "$pid" -o "$T/live.ckpt" >"$T/err" 2>&1; then
    restore_refused restore_while_original_holds_locks "$T/live.ckpt" \
        "flock write lock on the whole file of $T/cwd/a.lck: it is held by pid $pid \(locks\)"
else
    fail restore_while_original_holds_locks "checkpoint failed"
fi

# 2. someone else takes a lock between checkpoint and restore
if ! "$C" checkpoint "$pid" -o "$T/img.ckpt" --kill >"$T/err" 2>&1 || ! wait_for 10 gone "$pid"; then
    fail locks_checkpoint "checkpoint --kill failed"
    exit 0
fi
# inspect shows the locks
if "$C" inspect "$T/img.ckpt" >"$T/inspect.out" 2>"$T/err" &&
    grep -q "holds a POSIX write lock on bytes 10-14" "$T/inspect.out" &&
    grep -q "holds a OFD read lock on bytes 1000-1999" "$T/inspect.out" &&
    grep -q "holds a flock write lock on the whole file" "$T/inspect.out" &&
    "$C" inspect --json "$T/img.ckpt" | python3 -c '
import json, sys
fds = json.load(sys.stdin)["fds"]
locks = [l for f in fds for l in f["locks"]]
assert {"kind": "posix", "type": "read", "start": 100, "len": 0} in locks, locks
'; then
    pass inspect_shows_locks
else
    fail inspect_shows_locks "$(grep -i lock "$T/inspect.out" | head -5 | tr '\n' ' ')"
fi

grab flock "$T/cwd/a.lck"
refused flock_taken_meanwhile "$T/img.ckpt" \
    "fd [0-9]+: cannot take back the program's flock write lock on the whole file of $T/cwd/a.lck: it is held by pid $gpid \(python3\)"
ungrab
grab posix "$T/cwd/b.lck"
refused posix_taken_meanwhile "$T/img.ckpt" \
    "POSIX write lock on bytes 10-14 of $T/cwd/b.lck: it is held by pid $gpid \(python3\)"
# foreground: the message on coord's standard error, exit 1
out=$(cd / && timeout 30 "$C" restore "$T/img.ckpt" 2>"$T/err" </dev/null)
rc=$?
if [ $rc -eq 1 ] && grep -q "POSIX write lock on bytes 10-14 of $T/cwd/b.lck" "$T/err" && ! running_marker; then
    pass posix_taken_meanwhile_foreground
else
    fail posix_taken_meanwhile_foreground "rc=$rc out='$out'"
fi
ungrab
grab ofd "$T/cwd/c.lck"
refused ofd_taken_meanwhile "$T/img.ckpt" \
    "OFD read lock on bytes 1000-1999 of $T/cwd/c.lck: it is held by pid $gpid \(python3\), its fd [0-9]+"
ungrab

# 3. the lock is free again: the same image restores, with its locks
restore_to_pass restore_after_locks_freed "$T/img.ckpt" locks
