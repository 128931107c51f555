#!/bin/bash
# ckshim-test: as-root
# test_credentials.sh - processes whose credentials a restore cannot give
# back, and traced processes, are refused before anything changes.
#
#   bash tests/integration/test_credentials.sh BUILD_DIR
#
# A restore gives every process the credentials of the user who restores
# it, so a checkpoint refuses, naming it, a process that runs with others
# than coord's (run as root here: a daemon that dropped to nobody, a
# master whose worker did, a thread that did, a process with a smaller
# capability bounding set; as nobody, a program under unshare -r), and
# root refuses to restore an image another user's program was taken in
# (it would run as root), or an image file it does not own. A process traced by a debugger (here a
# PTRACE_SEIZE that does not stop it) is refused too: the checkpoint
# signal would stop at its tracer. Each refused process goes on, and the
# tracer stays attached.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-creds.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP credentials: needs root (it drops privileges in its programs)"
    exit 0
fi

# A daemon that dropped to nobody.
cat >"$T/drop.py" <<'EOF'
import os, time
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
EOF
echo "$PY_TICKS" >>"$T/drop.py"
if start_py_app drop "$T/drop.py"; then
    refused_alive creds_refuses_dropped_daemon drop \
        "process $pid runs with other user ids than coord \\(Uid: 65534 65534 65534 65534, coord's 0 0 0 0\\)"
else
    fail creds_drop_ready "no READY"
fi

# A master (root) whose forked worker dropped to nobody (nginx's way).
cat >"$T/master.py" <<'EOF'
import os, time
k = os.fork()
if k == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    while True:
        time.sleep(1)
print("WORKER", k, flush=True)
EOF
echo "$PY_TICKS" >>"$T/master.py"
if start_py_app master "$T/master.py" && wait_for 5 grep -q WORKER "$T/master.log"; then
    read -r _ kid < <(grep WORKER "$T/master.log")
    PIDS+=("$kid")
    refused_alive creds_refuses_dropped_worker master \
        "$kid \\(.*master.py\\), a child of $pid, runs with other user ids than coord"
    alive "$kid" && pass creds_worker_goes_on || fail creds_worker_goes_on "worker $kid gone"
else
    fail creds_master_ready "no READY"
fi

# A thread with credentials of its own (a raw setresuid in one thread, as
# Samba's threads do): /proc/PID/status shows the main thread only.
cat >"$T/thr.py" <<'EOF'
import ctypes, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def worker():
    libc.syscall(117, 65534, 65534, 65534)  # SYS_setresuid, this thread only
    while True:
        time.sleep(1)
threading.Thread(target=worker, daemon=True).start()
time.sleep(0.3)
EOF
echo "$PY_TICKS" >>"$T/thr.py"
if start_py_app thr "$T/thr.py"; then
    refused_alive creds_refuses_thread_of_other_user thr \
        "process $pid runs \\(its thread [0-9]+\\) with other user ids than coord"
else
    fail creds_thr_ready "no READY"
fi

# Root with a smaller capability bounding set (a service's hardening).
echo "import time" >"$T/bnd.py"
echo "$PY_TICKS" >>"$T/bnd.py"
(cd "$T" && exec setpriv --bounding-set=-sys_admin env LD_PRELOAD="$SHIM" CKSHIM_APP_ID=bnd \
    python3 "$T/bnd.py" >"$T/bnd.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
if wait_for 10 grep -q READY "$T/bnd.log"; then
    refused_alive creds_refuses_smaller_capabilities bnd \
        "process $pid runs with other capabilities than coord \\(Cap"
else
    fail creds_bnd_ready "no READY: $(head -3 "$T/bnd.log")"
fi

# A traced process: PTRACE_SEIZE leaves it running; the checkpoint signal
# would stop at the tracer. Refused, naming the tracer, which stays.
cat >"$T/traced.py" <<'EOF'
import time
EOF
echo "$PY_TICKS" >>"$T/traced.py"
# untraced PID: its main thread has no tracer (any more).
untraced() { ! grep -q "^TracerPid:[[:space:]]*[1-9]" "/proc/$1/status"; }
# seize TID LOG: a tracer of thread TID (PTRACE_SEIZE: it does not stop
# it) that says SEIZED in LOG and stays 60 s; sets $tracer.
seize() {
    python3 -c '
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.ptrace(0x4206, int(sys.argv[1]), None, None) != 0:  # PTRACE_SEIZE
    sys.exit("seize: errno %d" % ctypes.get_errno())
print("SEIZED", flush=True)
time.sleep(60)
' "$1" >"$2" 2>&1 &
    tracer=$!
    disown "$tracer" 2>/dev/null
    PIDS+=("$tracer")
}
if start_py_app traced "$T/traced.py"; then
    seize "$pid" "$T/tracer.log"
    if wait_for 5 grep -q SEIZED "$T/tracer.log"; then
        refused_alive creds_refuses_traced traced "process $pid is traced by process $tracer"
        grep -q "^TracerPid:[[:space:]]*$tracer\$" "/proc/$pid/status" &&
            pass creds_tracer_stays || fail creds_tracer_stays "$(grep TracerPid "/proc/$pid/status")"
    else
        fail creds_traced_seized "$(cat "$T/tracer.log")"
    fi
    kill -9 "$tracer" 2>/dev/null
    # a tracer of one other thread only (strace -p TID): /proc/PID/status
    # shows the main thread's TracerPid only
    wait_for 5 untraced "$pid"
    tid=$(ls "/proc/$pid/task" | grep -vx "$pid" | head -1)
    seize "$tid" "$T/tracer2.log"
    if [ -n "$tid" ] && wait_for 5 grep -q SEIZED "$T/tracer2.log"; then
        refused_alive creds_refuses_traced_thread traced \
            "process $pid \\(its thread $tid\\) is traced by process $tracer"
    else
        fail creds_refuses_traced_thread "thread '$tid': $(cat "$T/tracer2.log")"
    fi
    kill -9 "$tracer" 2>/dev/null
else
    fail creds_traced_ready "no READY"
fi

# An image of nobody's program, restored by root: refused (it would run
# as root); the image stays. (nobody runs copies of coord, the restorer
# and the shim: the build directory may be private, as CI's clone is.)
mkdir -p "$T/bin"
cp "$B/coord" "$B/ckshim-restore" "$B/libshim.so" "$T/bin/"
chmod 755 "$T/bin" "$T/bin/"*
NC="$T/bin/coord"
mkdir -p "$T/nobody"
chown 65534:65534 "$T/nobody"
chmod 700 "$T/nobody"
echo "import time" >"$T/nobody.py"
echo "$PY_TICKS" >>"$T/nobody.py"
chmod 644 "$T/nobody.py"
(cd "$T/nobody" && exec setpriv --reuid=65534 --regid=65534 --clear-groups \
    env -i PATH="$PATH" HOME="$T/nobody" CKSHIM_DIR="$T/nobody/sock" LD_PRELOAD="$T/bin/libshim.so" \
    CKSHIM_COUNTER="file:$T/nobody/counters" python3 "$T/nobody.py" >"$T/nobody/p.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
if wait_for 10 grep -q READY "$T/nobody/p.log" &&
    setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH="$PATH" \
        CKSHIM_DIR="$T/nobody/sock" CKSHIM_COUNTER="file:$T/nobody/counters" \
        "$NC" checkpoint "$pid" -o "$T/nobody/img" --kill >"$T/out" 2>"$T/err"; then
    wait_for 10 gone "$pid"
    if ! (cd / && CKSHIM_COUNTER="file:$T/nobody/counters" timeout 30 "$NC" restore --detach \
        "$T/nobody/img" >"$T/out" 2>"$T/err") &&
        grep -q "ran as user nobody (uid 65534); restoring it as root would run it as root" "$T/err" &&
        [ -s "$T/nobody/img" ] && [ ! -s "$T/out" ]; then
        pass creds_root_refuses_other_users_image
    else
        fail creds_root_refuses_other_users_image "$(cat "$T/out")"
    fi
else
    fail creds_nobody_checkpoint "$(head -3 "$T/nobody/p.log") $(cat "$T/err")"
fi

# As nobody, a program in a user namespace where it is root (unshare -r):
# a restore, made in nobody's own namespace, would not make it root
# again: refused, naming the mapping.
mkdir -p "$T/userns"
chown 65534:65534 "$T/userns"
(cd "$T/userns" && exec setpriv --reuid=65534 --regid=65534 --clear-groups \
    env -i PATH="$PATH" HOME="$T/userns" CKSHIM_DIR="$T/userns/sock" \
    CKSHIM_COUNTER="file:$T/userns/counters" unshare -r env LD_PRELOAD="$T/bin/libshim.so" \
    python3 "$T/nobody.py" >"$T/userns/p.log" 2>&1) &
upid=$!
disown "$upid" 2>/dev/null
PIDS+=("$upid")
if wait_for 10 grep -q READY "$T/userns/p.log"; then
    upid=$(pgrep -u 65534 -f "python3 $T/nobody.py" | head -1)
    PIDS+=("$upid")
    if ! setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH="$PATH" \
        CKSHIM_DIR="$T/userns/sock" CKSHIM_COUNTER="file:$T/userns/counters" \
        "$NC" checkpoint "$upid" -o "$T/userns/img" >"$T/out" 2>"$T/err" &&
        grep -q "runs in a user namespace that maps its ids to others" "$T/err" &&
        [ ! -e "$T/userns/img" ] && alive "$upid"; then
        pass creds_refuses_mapped_user_namespace
    else
        fail creds_refuses_mapped_user_namespace "$(cat "$T/out")"
    fi
else
    echo "SKIP creds_refuses_mapped_user_namespace: unshare -r failed: $(head -2 "$T/userns/p.log")"
fi

# What an image says of its user is its writer's to say: root restores
# only image files it owns. A root program's image, given to nobody.
echo "import time" >"$T/own.py"
echo "$PY_TICKS" >>"$T/own.py"
if start_py_app own "$T/own.py" && "$C" checkpoint "$pid" -o "$T/own.img" --kill >"$T/out" 2>"$T/err"; then
    wait_for 10 gone "$pid"
    chown 65534 "$T/own.img"
    if ! (cd / && timeout 30 "$C" restore --detach "$T/own.img" >"$T/out" 2>"$T/err") &&
        grep -q "the image file belongs to user nobody: root restores only its own images" "$T/err" &&
        [ ! -s "$T/out" ]; then
        pass creds_root_restores_only_own_image_files
    else
        fail creds_root_restores_only_own_image_files "$(cat "$T/out")"
    fi
else
    fail creds_own_checkpoint "no READY or checkpoint failed"
fi
