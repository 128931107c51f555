#!/bin/bash
# test_tree_barrier.sh - the first promise for process trees: at every
# moment the user has the running tree or a good image of it, and never a
# partly restored tree; and images of trees that are forged or damaged.
#
#   bash tests/integration/test_tree_barrier.sh BUILD_DIR
#
# A tree restores as a whole or not at all: a process that fails late in
# its restore (CKSHIM_TEST_HOOK=restore-die-late:VPID, after its pages
# are in place and its threads are made) ends every process before any
# of them runs program code, and the image still restores afterwards.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-tbar.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# A parent and two children; each, once the go file exists, leaves a
# marker file "ran.INDEX": program code ran.
cat >"$T/marks.py" <<'EOF'
import os, sys, time
idx = 0
kids = []
for i in (1, 2):
    k = os.fork()
    if k == 0:
        idx = i
        kids = []
        break
    kids.append(k)
if idx == 0:
    time.sleep(0.3)
    print("READY", *kids, flush=True)
while True:
    if os.path.exists("go"):
        open("ran.%d" % idx, "w").close()
    time.sleep(0.02)
EOF

# markers: how many ran.* files there are
markers() { ls "$T"/ran.* 2>/dev/null | wc -l; }
# no_tree_procs: no process of marks.py left (this script's own: $T is ours)
no_tree_procs() { ! pgrep -u "$(id -u)" -f "$T/marks.py" >/dev/null; }
# end_tree: kill, by pid, the processes of marks.py still there
end_tree() {
    local p
    for p in $(pgrep -u "$(id -u)" -f "$T/marks.py"); do kill -9 "$p"; done
    wait_for 5 no_tree_procs
}

rm -f "$T/go" "$T"/ran.*
if start_py_app marks "$T/marks.py"; then
    read -r _ k1 k2 < <(grep READY "$T/marks.log")
    PIDS+=("$k1" "$k2")
    if "$C" checkpoint "$pid" -o "$T/marks.img" --kill >"$T/out" 2>"$T/err" &&
        wait_for 10 gone "$pid" && wait_for 10 gone "$k2"; then
        pass tree_barrier_checkpoint
    else
        fail tree_barrier_checkpoint "checkpoint failed"
    fi
    : >"$T/go"
    # The last child fails late: nothing of the tree may have run.
    out=$(cd / && CKSHIM_TEST_HOOK="restore-die-late:$k2" timeout 30 "$C" restore --detach \
        "$T/marks.img" 2>"$T/err")
    rc=$?
    [ -n "$out" ] && PIDS+=("$out")
    sleep 1
    if [ $rc -eq 1 ] && [ -z "$out" ] && [ "$(markers)" = 0 ] && wait_for 5 no_tree_procs; then
        pass tree_restore_late_failure_nothing_runs
    else
        fail tree_restore_late_failure_nothing_runs "rc=$rc out='$out', $(markers) processes ran"
        end_tree
    fi
    if grep -q "process $k2 of the tree" "$T/err"; then
        pass tree_restore_late_failure_names_process
    else
        fail tree_restore_late_failure_names_process "$k2 not named"
    fi
    rm -f "$T"/ran.*
    # The image is still good: the counter did not move.
    np=$(cd / && timeout 30 "$C" restore --detach "$T/marks.img" 2>"$T/err")
    [ -n "$np" ] && PIDS+=("$np")
    three() { [ "$(markers)" = 3 ]; }
    if [ -n "$np" ] && wait_for 10 three; then
        pass tree_restore_after_late_failure
    else
        fail tree_restore_after_late_failure "restore gave '$np', $(markers) processes ran"
    fi
    end_tree
fi
