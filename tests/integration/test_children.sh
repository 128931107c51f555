#!/bin/bash
# test_children.sh - a process with child processes: a tree, or refused.
#
#   bash tests/integration/test_children.sh BUILD_DIR
#
# A process with a live child under the shim is checkpointed with it as a
# process tree, also once the child has exited and is not yet waited for
# (a zombie: its exit status is in the image). Once the child is reaped the same program is
# checkpointed (--kill) and restored. A child the program forked and
# reaped before (tests/integration/progs/fork_child) is no obstacle.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-children.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# The program: a worker child (sleep), ticks in its log; the file "kill"
# makes it kill the child without waiting for it, "reap" makes it wait.
cat >"$T/parent.py" <<'EOF'
import os, signal, subprocess, time
child = subprocess.Popen(["sleep", "1000"])
print("READY child", child.pid, flush=True)
n = 0
while True:
    n += 1
    time.sleep(0.05)
    if n % 10 == 0:
        print("tick", n, flush=True)
    if child and os.path.exists("kill"):
        os.kill(child.pid, signal.SIGKILL)
        os.unlink("kill")
        print("killed", flush=True)
    if child and os.path.exists("reap"):
        child.wait()
        child = None
        print("reaped", flush=True)
EOF

# ticking LOG: the program printed a new tick within 1.5 s.
ticking() {
    local t1 t2
    t1=$(grep -c tick "$1")
    sleep 1.5
    t2=$(grep -c tick "$1")
    [ "$t2" -gt "$t1" ]
}

start_py_app parent "$T/parent.py" || fail parent_ready "no READY"
cpid=$(awk '/READY child/ {print $3; exit}' "$T/parent.log")

# A live child under the shim: the two are taken as a process tree
# (test_trees.sh restores trees), and both go on.
"$C" checkpoint "$pid" -o "$T/live.img" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 0 ] && grep -q "process tree of 2 processes" "$T/err" && [ -s "$T/live.img" ]; then
    pass checkpoint_takes_live_child_as_tree
else
    fail checkpoint_takes_live_child_as_tree "rc=$rc, expected a tree image of 2 processes"
fi
alive "$pid" && alive "$cpid" && ticking "$T/parent.log" && pass tree_parent_keeps_running ||
    fail tree_parent_keeps_running "the program or its child stopped"

# A zombie: taken with its exit status (test_trees.sh restores it).
: >"$T/kill"
wait_for 5 grep -q killed "$T/parent.log"
wait_for 5 grep -q '^State:.*Z' "/proc/$cpid/status"
"$C" checkpoint "$pid" -o "$T/zombie.img" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 0 ] && grep -q "process tree of 2 processes" "$T/err" &&
    "$C" inspect "$T/zombie.img" | grep -q "pid $cpid .*exited (wait status 0x9), not yet waited"; then
    pass checkpoint_takes_zombie_child
else
    fail checkpoint_takes_zombie_child "rc=$rc, expected a tree image with the zombie $cpid"
fi

# Reaped: now it is checkpointed, and comes back.
: >"$T/reap"
wait_for 5 grep -q reaped "$T/parent.log"
if "$C" checkpoint "$pid" -o "$T/alone.img" --kill >"$T/out" 2>"$T/err" &&
    wait_for 10 gone "$pid"; then
    pass checkpoint_after_child_reaped
    np=$(cd / && timeout 30 "$C" restore --detach "$T/alone.img" 2>"$T/err")
    if [ -n "$np" ] && alive "$np"; then
        PIDS+=("$np")
        ticking "$T/parent.log" && pass restore_after_child_reaped ||
            fail restore_after_child_reaped "the restored program does not tick"
    else
        fail restore_after_child_reaped "restore failed"
    fi
else
    fail checkpoint_after_child_reaped "checkpoint failed"
fi

# Children that end with _exit (os._exit: every multiprocessing worker)
# run no destructor; their socket files used to stay in the directory.
D="$T/socks"
mkdir -m 700 "$D"
CKSHIM_DIR="$D" "$C" run -- python3 -c '
import os, time
kids = []
for i in range(10):
    p = os.fork()
    if p == 0:
        time.sleep(0.2)
        os._exit(0)
    kids.append(p)
for p in kids:
    os.waitpid(p, 0)
' >"$T/exit.out" 2>&1
left=$(ls "$D" | grep -c '\.sock$')
[ "$left" = 0 ] && pass children_exit_remove_their_sockets ||
    fail children_exit_remove_their_sockets "$left socket files left: $(ls "$D" | head -3)"
