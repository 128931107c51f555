#!/bin/bash
# test_trees.sh - process trees: a checkpointed process and its descendants.
#
#   bash tests/integration/test_trees.sh BUILD_DIR
#
# coord checkpoint PID looks at every descendant of PID first. One that
# cannot be part of the image - not running under the shim (LD_PRELOAD
# dropped), at any depth - is named in a refusal (pid, command line, whose
# child it is, why); nothing is written and every process goes on.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-trees.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# A parent under the shim with a child that dropped LD_PRELOAD, and a
# child under the shim (sh) whose own child dropped it: a grandchild.
cat >"$T/outside.py" <<'EOF'
import os, subprocess, time
env = dict(os.environ)
env.pop("LD_PRELOAD", None)
a = subprocess.Popen(["sleep", "1000"], env=env)
b = subprocess.Popen(["sh", "-c", "env -u LD_PRELOAD sleep 1001 & wait"])
time.sleep(0.5)
print("CHILDREN", a.pid, b.pid, flush=True)
EOF
echo "$PY_TICKS" >>"$T/outside.py"

start_py_app outside "$T/outside.py" || fail outside_ready "no READY"
read -r _ apid bpid < <(grep CHILDREN "$T/outside.log")
gpid=$(cat "/proc/$bpid/task/$bpid/children" 2>/dev/null | tr -d ' ')
PIDS+=("$apid" "$bpid" "$gpid")
refused_alive tree_refuses_child_outside_shim outside \
    "$apid \(sleep 1000\), a child of $pid, is not running under the shim"
if grep -Eq "$gpid \(sleep 1001\), a child of $bpid, is not running under the shim" "$T/err" &&
    grep -q "2 descendants" "$T/err"; then
    pass tree_refuses_grandchild_outside_shim
else
    fail tree_refuses_grandchild_outside_shim "grandchild $gpid (of $bpid) not named"
fi
alive "$apid" && alive "$bpid" && alive "$gpid" && pass tree_refused_children_keep_running ||
    fail tree_refused_children_keep_running "a child stopped"
