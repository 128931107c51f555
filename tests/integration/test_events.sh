#!/bin/bash
# test_events.sh - timerfd and inotify beyond the test programs: time that
# passes while the image waits, watched paths that are gone.
#
#   bash tests/integration/test_events.sh BUILD_DIR
#
# - timerfd_relative_keeps_time_left: the test program `timerfd` with
#   TIMERFD_GAP set arms a relative and an absolute CLOCK_MONOTONIC timer,
#   both due 2 s later; the image waits 4 s before it is restored: the
#   relative one has not fired (what was left is kept), the absolute one
#   has (its deadline is a moment).
# - inotify_checkpoint_notes_lost_events: checkpointing the test program
#   `inotify`, whose second instance has an event waiting, says that
#   those bytes of events are lost.
# - inotify_restore_refuses_gone_path: the test program `inotify` is
#   checkpointed, its watched directory moved away: restore is refused
#   naming the path, nothing runs and the image is not used up; moved
#   back, the same image restores and the program passes.
# - inotify_checkpoint_refuses_unfound_watch: a Python program watching a
#   file it then moved into another directory: the checkpoint is refused
#   naming the watch, and the program goes on.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-events.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# ---- a relative timer keeps what it had left while the image waits
export TIMERFD_GAP=4
if start_test_prog timerfd; then
    if "$C" checkpoint "$pid" -o "$T/tfd.ckpt" --kill >"$T/err" 2>&1 && wait_for 10 gone "$pid"; then
        sleep 4
        restore_to_pass timerfd_relative_keeps_time_left "$T/tfd.ckpt" timerfd
    else
        fail timerfd_relative_keeps_time_left "checkpoint failed"
    fi
fi
unset TIMERFD_GAP

# ---- a watched path that is gone refuses the restore, before anything runs
rm -f "$T/go"
if start_test_prog inotify; then
    if "$C" checkpoint "$pid" -o "$T/ino.ckpt" --kill >"$T/err" 2>&1 && wait_for 10 gone "$pid"; then
        # the program's second instance (I2) has one event waiting
        if grep -Eq "note: fd [0-9]+: 32 bytes of inotify events were waiting" "$T/err"; then
            pass inotify_checkpoint_notes_lost_events
        else
            fail inotify_checkpoint_notes_lost_events "no note in: $(tail -n 2 "$T/err")"
        fi
        mv "$T/cwd/watched" "$T/cwd/away"
        restore_refused inotify_restore_refuses_gone_path "$T/ino.ckpt" \
            "inotify watch 1 on $T/cwd/watched"
        mv "$T/cwd/away" "$T/cwd/watched"
        restore_to_pass inotify_restore_after_path_back "$T/ino.ckpt" inotify
    else
        fail inotify_restore_refuses_gone_path "checkpoint failed"
    fi
fi

# ---- a watch whose path cannot be found refuses the checkpoint
cat >"$T/gone.py" <<PY
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
os.makedirs("a/b")
open("a/f", "w").close()
wd = libc.inotify_add_watch(fd, b"a/f", 0x4)
assert wd == 1, wd
os.rename("a/f", "a/b/f")
$PY_TICKS
PY
if start_py_app gone "$T/gone.py"; then
    refused_alive inotify_checkpoint_refuses_unfound_watch gone \
        "inotify instance whose watch 1 .*has no path"
else
    fail inotify_checkpoint_refuses_unfound_watch "python program did not start"
fi
