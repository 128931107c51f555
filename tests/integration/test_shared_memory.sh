#!/bin/bash
# test_shared_memory.sh - shared memory that cannot come back is refused.
#
#   bash tests/integration/test_shared_memory.sh BUILD_DIR
#
# progs/sysv_shm (a keyed segment attached twice, a removed one attached
# once) is checkpointed with --kill. Its keyed segment outlives it (SysV
# segments do); restore attaches it again (progs/sysv_shm checks that
# through test_progs.sh). Here the segment is removed before the restore:
# the program knows its id, which a new segment would not get, so restore
# refuses, naming the segment, and starts nothing (refuses_gone_segment).
# And a segment attached only in part (a page of it unmapped) is refused at
# checkpoint, naming it, and the program keeps running
# (refuses_partial_attach). A memfd sealed with F_SEAL_FUTURE_WRITE while
# mapped shared and writable is refused at checkpoint too (the seal goes
# back on before the mapping could be made again), and the program keeps
# running (refuses_future_write_mapping).
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-shmem.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "$0")/lib.sh"
trap ck_cleanup EXIT

(cd "$T" && exec env LD_PRELOAD="$SHIM" CK_GO="$T/go" "$B/tests/progs/sysv_shm" >"$T/shm.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
if ! wait_for 10 grep -q READY "$T/shm.log"; then
    fail refuses_gone_segment "the program did not start"
else
    # the keyed segment: the one whose creator is this pid and whose key is
    # not 0 (the private one, marked for removal, ends with the program)
    id=$(awk -v p="$pid" '$2 ~ /^[0-9]+$/ && $1 != 0 && $5 == p { print $2 }' /proc/sysvipc/shm | head -1)
    if ! "$C" checkpoint "$pid" -o "$T/shm.img" --kill >"$T/out" 2>"$T/err"; then
        fail refuses_gone_segment "checkpoint failed"
    elif [ -z "$id" ] || ! ipcrm -m "$id" 2>"$T/err"; then
        fail refuses_gone_segment "cannot remove segment '$id'"
    else
        restore_refused refuses_gone_segment "$T/shm.img" "SysV shared memory segment $id .*gone"
    fi
fi
kill -9 "$pid" 2>/dev/null

cat >"$T/partial.py" <<EOF
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
sid = libc.shmget(0, 3 * 4096, 0o1600)          # IPC_PRIVATE, IPC_CREAT | 0600
addr = libc.shmat(sid, None, 0)
libc.shmctl(sid, 0, None)                      # IPC_RMID: gone with the program
libc.munmap(ctypes.c_void_p(addr + 4096), ctypes.c_size_t(4096))
$PY_TICKS
EOF
start_py_app partial "$T/partial.py" || fail partial_ready "no READY"
refused_alive refuses_partial_attach partial "SysV shared memory segment .* only partly mapped"
kill "$pid" 2>/dev/null

cat >"$T/sealed.py" <<EOF
import fcntl, mmap, os, time
fd = os.memfd_create("sealed", os.MFD_ALLOW_SEALING)
os.ftruncate(fd, 4096)
m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[0:5] = b"hello"
fcntl.fcntl(fd, 1033, 0x10)                    # F_ADD_SEALS, F_SEAL_FUTURE_WRITE
$PY_TICKS
EOF
start_py_app sealed "$T/sealed.py" || fail sealed_ready "no READY"
refused_alive refuses_future_write_mapping sealed "F_SEAL_FUTURE_WRITE"
kill "$pid" 2>/dev/null
