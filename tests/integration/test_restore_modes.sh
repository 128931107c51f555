#!/bin/bash
# test_restore_modes.sh - foreground and detached restore, the stdio rule.
#
#   bash tests/integration/test_restore_modes.sh BUILD_DIR
#
# 1. A program whose stdout is a pipe to another process is checkpointed
#    and killed, the reader goes away, and `coord restore IMG` runs in the
#    foreground with its own stdout on a file: the program's output
#    continues in that file (stdout that pointed at a pipe whose other end
#    is gone is connected to coord's own), and coord's exit status is the
#    program's.
# 2. The same image with --detach: coord prints the pid and returns; the
#    program runs with stdout on /dev/null and still exits 0 when told.
# 3. `coord run` starts a program under the shim; `coord list` shows it.
# 4. A program on a terminal comes back with coord's terminal.
# 5. Images written to standard output (a file, a pipe) and to tmpfs.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
T=$(mktemp -d /tmp/ckshim-modes.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

export CK_GO="$T/go"
# The program's stdout goes through a pipe to cat, which appends to out1.
(cd "$T" && "$C" run -- "$B/tests/progs/pid" 2>"$T/err1" | cat >"$T/out1") &
disown $! 2>/dev/null
wait_for 10 grep -qs READY "$T/out1" || fail setup "no READY"
pid=$(pgrep -u "$(id -u)" -f "$B/tests/progs/pid" | head -1)
PIDS+=("$pid")

"$C" list >"$T/list" 2>&1
grep -q "^$pid " "$T/list" && pass list_shows_process || fail list_shows_process "$(cat "$T/list")"

"$C" checkpoint "$pid" -o "$T/img" --kill >/dev/null 2>"$T/err" || fail checkpoint "$(cat "$T/err")"
wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"
cp "$T/img" "$T/img2"

# Foreground restore: coord becomes the program, stdout is out2.
(
    cd /
    "$C" restore "$T/img" >"$T/out2" 2>"$T/err2"
    echo "rc=$?" >"$T/rc2"
) &
disown $! 2>/dev/null
sleep 0.5
touch "$CK_GO"
if wait_for 20 test -s "$T/rc2"; then
    if grep -q "^PASS" "$T/out2" && grep -q "rc=0" "$T/rc2"; then
        pass foreground_restore_stdout_to_coord
    else
        fail foreground_restore_stdout_to_coord "out2: $(tail -2 "$T/out2"), $(cat "$T/rc2"), $(tail -2 "$T/err2")"
    fi
else
    fail foreground_restore_stdout_to_coord "restored program did not finish"
fi
grep -q "^PASS" "$T/out1" && fail old_pipe_unused "output went to the old pipe" || pass old_pipe_unused

# Detached restore of the same image: stdout becomes /dev/null.
rm -f "$CK_GO"
npid=$(cd / && "$C" restore --detach --force "$T/img2" 2>"$T/err3")
rc=$?
if [ $rc -eq 0 ] && [ -n "$npid" ] && kill -0 "$npid" 2>/dev/null; then
    PIDS+=("$npid")
    fd1=$(readlink "/proc/$npid/fd/1")
    [ "$fd1" = /dev/null ] && pass detach_stdout_devnull || fail detach_stdout_devnull "fd 1 -> $fd1"
    touch "$CK_GO"
    if wait_for 20 bash -c "! kill -0 $npid 2>/dev/null"; then
        pass detach_restore_runs_to_end
    else
        fail detach_restore_runs_to_end "still running"
    fi
else
    fail detach_restore "rc=$rc pid='$npid' $(cat "$T/err3")"
fi

# 4. A program on a terminal (script(1) gives it a pty that goes away with
#    it): restored in the foreground, its stdin/stdout/stderr become coord's.
if command -v script >/dev/null; then
    rm -f "$CK_GO"
    (script -qfec "CK_GO=$CK_GO $C run -- $B/tests/progs/clock" "$T/tty.typescript" \
        </dev/null >/dev/null 2>&1 &)
    wait_for 10 pgrep -u "$(id -u)" -f "^$B/tests/progs/clock" >/dev/null
    sleep 0.3
    tpid=$(pgrep -u "$(id -u)" -f "^$B/tests/progs/clock" | head -1)
    PIDS+=("$tpid")
    fd0=$(readlink "/proc/$tpid/fd/0")
    "$C" checkpoint "$tpid" -o "$T/tty.img" --kill >/dev/null 2>"$T/err" ||
        fail tty_checkpoint "$(cat "$T/err")"
    (
        cd /
        "$C" restore "$T/tty.img" >"$T/tty.out" 2>&1 </dev/null
        echo "rc=$?" >"$T/tty.rc"
    ) &
    disown $! 2>/dev/null
    sleep 0.5
    touch "$CK_GO"
    if wait_for 20 test -s "$T/tty.rc" && grep -q "^PASS" "$T/tty.out" && grep -q rc=0 "$T/tty.rc"; then
        pass "tty_stdio_to_coord ($fd0)"
    else
        fail tty_stdio_to_coord "$(cat "$T/tty.out" "$T/tty.rc" 2>/dev/null | tail -3)"
    fi
fi

# 5. Where an image goes: standard output into a file the shell goes on
#    writing to (the image is written with O_DIRECT where the file system
#    allows; the descriptor's flags must be as they were afterwards), a
#    pipe, and a file on tmpfs. Each image restores.
rm -f "$CK_GO"
(cd "$T" && exec "$C" run -- "$B/tests/progs/clock" >"$T/out5" 2>&1 </dev/null) &
p5=$!
disown "$p5" 2>/dev/null
PIDS+=("$p5")
wait_for 10 grep -qs READY "$T/out5" || fail dest_setup "no READY"
{ "$C" checkpoint "$p5" -o - --counter none 2>"$T/err5"; printf x; } >"$T/stdout.img"
if [ "$(tail -c 1 "$T/stdout.img")" = x ]; then
    pass stdout_image_leaves_fd_flags
else
    fail stdout_image_leaves_fd_flags "the shell's write after the image failed: $(cat "$T/err5")"
fi
head -c -1 "$T/stdout.img" >"$T/stdout2.img"
restore_ok stdout_image_restores "$T/stdout2.img" --counter none
"$C" checkpoint "$p5" -o - --counter none 2>"$T/err5" | cat >"$T/pipe.img"
restore_ok pipe_image_restores "$T/pipe.img" --counter none
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    shm=$(mktemp /dev/shm/ckshim-test.XXXXXX)
    if "$C" checkpoint "$p5" -o "$shm" --counter none >/dev/null 2>"$T/err5"; then
        restore_ok tmpfs_image_restores "$shm" --counter none
    else
        fail tmpfs_image_restores "checkpoint: $(cat "$T/err5")"
    fi
    rm -f "$shm"
fi
kill -9 "$p5" 2>/dev/null
