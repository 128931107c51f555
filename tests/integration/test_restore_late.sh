#!/bin/bash
# test_restore_late.sh - the first promise for a single process: a restore
# that fails late (after every page is in place) leaves nothing running
# and the image restorable; the counter moves only once the process is
# whole.
#
#   bash tests/integration/test_restore_late.sh BUILD_DIR
#
# A threaded Python program, once the go file exists, leaves a marker
# file: program code ran. Its image is restored with a failure injected
# late: CKSHIM_TEST_HOOK=restore-die-late:PID (the restorer ends once the
# threads are made) and restore-die-finish:PID (the shim's restore_finish
# fails, the threads back at their park points), in the foreground and
# with --detach. Each must exit 1 with a message naming what failed and
# saying the image is kept, with no marker and no process left; then the
# same image restores (the counter did not move), once. A coord at nice 10
# restoring threads saved at nice 0 fails the same way (RLIMIT_NICE).
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-rlate.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

cat >"$T/mark.py" <<'EOF'
import os, threading, time
def spin():
    while True:
        time.sleep(0.05)
for _ in range(3):
    threading.Thread(target=spin, daemon=True).start()
print("READY", flush=True)
while True:
    if os.path.exists("go"):
        open("ran", "w").close()
    time.sleep(0.02)
EOF

ran() { [ -e "$T/ran" ]; }
no_procs() { ! pgrep -u "$(id -u)" -f "$T/mark.py" >/dev/null; }
end_procs() {
    local p
    for p in $(pgrep -u "$(id -u)" -f "$T/mark.py"); do kill -9 "$p"; done
    wait_for 5 no_procs
}

# late_fails NAME HOOK MSG [--detach]: restore $T/mark.img with the hook
# for the image's process; exit 1, a message matching MSG and "image is
# kept", nothing printed on stdout, no marker, no process left.
late_fails() {
    local name=$1 hook=$2 msg=$3
    shift 3
    local out rc
    rm -f "$T/ran"
    out=$(cd / && CKSHIM_TEST_HOOK="$hook:$opid" timeout 30 "$C" restore "$@" \
        "$T/mark.img" 2>"$T/err" </dev/null)
    rc=$?
    sleep 0.5
    if [ $rc -eq 1 ] && ! grep -q READY <<<"$out" && ! grep -Eq '^[0-9]+$' <<<"$out" &&
        ! ran && wait_for 5 no_procs && grep -Eq "$msg" "$T/err" &&
        grep -q "image is kept" "$T/err"; then
        pass "$name"
    else
        fail "$name" "rc=$rc out='$out', ran=$(ran && echo yes || echo no): $(tr '\n' ' ' <"$T/err")"
        end_procs
    fi
}

rm -f "$T/go" "$T/ran"
if start_py_app late "$T/mark.py"; then
    opid=$pid
    if "$C" checkpoint "$pid" -o "$T/mark.img" --kill >"$T/out" 2>"$T/err" &&
        wait_for 10 gone "$pid"; then
        pass late_checkpoint
    else
        fail late_checkpoint "checkpoint failed"
    fi
    : >"$T/go"
    late_fails late_restorer_fails_foreground restore-die-late "threads made"
    late_fails late_restorer_fails_detach restore-die-late "threads made" --detach
    late_fails late_shim_fails_foreground restore-die-finish "restore_finish fails"
    late_fails late_shim_fails_detach restore-die-finish "restore_finish fails" --detach
    # A nice value the restoring process may not take back (threads saved
    # at nice 0, a coord at nice 10: RLIMIT_NICE 0 keeps an ordinary user
    # from lowering it) fails the restore the same way, naming it.
    if [ "$(id -u)" != 0 ] && [ "$(ulimit -e)" = 0 ]; then
        rm -f "$T/ran"
        out=$(cd / && timeout 30 nice -n 10 "$C" restore --detach "$T/mark.img" 2>"$T/err")
        rc=$?
        sleep 0.5
        if [ $rc -eq 1 ] && [ -z "$out" ] && ! ran && wait_for 5 no_procs &&
            grep -q "nice value 0" "$T/err" && grep -q "image is kept" "$T/err"; then
            pass late_nice_value_not_lowered
        else
            fail late_nice_value_not_lowered "rc=$rc out='$out': $(tr '\n' ' ' <"$T/err")"
            end_procs
        fi
    else
        echo "SKIP late_nice_value_not_lowered: root or RLIMIT_NICE lets this user lower it"
    fi
    # The image is still good: the counter did not move.
    np=$(cd / && timeout 30 "$C" restore --detach "$T/mark.img" 2>"$T/err")
    [ -n "$np" ] && PIDS+=("$np")
    if [ -n "$np" ] && wait_for 10 ran && [ "$(ls /proc/"$np"/task | wc -l)" -ge 4 ]; then
        pass late_failure_then_restore
    else
        fail late_failure_then_restore "restore gave '$np', ran=$(ran && echo yes || echo no)"
    fi
    end_procs
    # ... once: the restore that ran moved the counter.
    restore_refused late_restored_image_used_up "$T/mark.img" "stale"
fi

# The foreground restore after a late failure: coord becomes the program.
rm -f "$T/ran"
if start_py_app late2 "$T/mark.py"; then
    opid=$pid
    rm -f "$T/go"
    "$C" checkpoint "$pid" -o "$T/mark.img" --kill >"$T/out" 2>"$T/err" &&
        wait_for 10 gone "$pid"
    : >"$T/go"
    late_fails late_restorer_fails_foreground_again restore-die-late "threads made"
    (cd / && exec "$C" restore "$T/mark.img" >"$T/fg.out" 2>"$T/fg.err" </dev/null) &
    fg=$!
    disown "$fg" 2>/dev/null
    PIDS+=("$fg")
    if wait_for 10 ran && alive "$fg"; then
        pass late_failure_then_foreground_restore
    else
        fail late_failure_then_foreground_restore "$(cat "$T/fg.err")"
    fi
    end_procs
fi
