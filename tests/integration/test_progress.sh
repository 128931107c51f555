#!/bin/bash
# test_progress.sh - the progress line of a long checkpoint, restore and
# migration (coordinator/progress.c): on a terminal (a pseudo-terminal made
# by script(1)) a checkpoint or restore that takes more than a second shows
# "checkpoint DONE / TOTAL  RATE/s  N s left", erased before coord's own
# messages; nothing with --quiet or when stderr is a file; the images
# written meanwhile restore.
#
#   bash tests/integration/test_progress.sh BUILD_DIR
#
# The work is made slow enough by test knobs: CKSHIM_TEST_WRITE_DELAY_MS
# (the program's environment: the image writer takes that long per MiB of
# memory) and CKSHIM_TEST_HOOK=restore-slow-fill:MS (coord's: the
# restorer takes that long per page record); a migration goes to this
# host through a stand-in for ssh that reads the image slowly. The
# program is bench_mem, 64 MiB of memory (half random, half text).
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
T=$(mktemp -d /tmp/ckshim-progress.XXXXXX)
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export CKSHIM_DIR=$T/ck CKSHIM_COUNTER="file:$T/counters"
trap ck_cleanup EXIT

if ! command -v script >/dev/null; then
    echo "SKIP progress: script(1) (util-linux) is not installed"
    exit 0
fi

# on_tty OUT CMD: run the shell command CMD with a pseudo-terminal as its
# stdin, stdout and stderr; what it wrote (both) in OUT
on_tty() {
    local out=$1
    shift
    timeout 120 script -qec "$*" /dev/null >"$out" 2>&1 </dev/null
}

# lines FILE: FILE's text split at carriage returns as well, without the
# erase-line sequence: one progress drawing a line
lines() { tr '\r' '\n' <"$1" | sed 's/\x1b\[K//g'; }

# start_prog NAME [ARGS]: bench_mem under the shim, slowed down for its
# checkpoints; its pid in $pid
start_prog() {
    local name=$1
    shift
    CKSHIM_TEST_WRITE_DELAY_MS=40 "$C" run -- "$B/tests/progs/bench_mem" --size 96 "$@" \
        >"$T/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    disown "$pid" # (no word from bash when it is killed)
    wait_for 60 grep -qs READY "$T/$name.log"
}

# restore_on_tty OUT CMD: on_tty with a slow restorer; the pid CMD printed
# last (a restore --detach or a migration) in $np, or ""
restore_on_tty() {
    local out=$1
    shift
    on_tty "$out" "export CKSHIM_TEST_HOOK=restore-slow-fill:100; $*"
    np=$(lines "$out" | grep -E '^[0-9]+$' | tail -1)
    [ -n "$np" ] && PIDS+=("$np")
}

# restored_with_line NAME OUT WHAT: $np runs and OUT shows WHAT's line
restored_with_line() {
    if [ -n "$np" ] && alive "$np" && lines "$2" | grep -Eq "$(line_re "$3")"; then
        pass "$1"
    else
        fail "$1" "$(lines "$2" | head -5 | tr '\n' '|')"
    fi
}

# take_again IMG: checkpoint the restored program $np into IMG, end it
take_again() {
    [ -n "$np" ] && "$C" checkpoint "$np" -o "$1" --kill --quiet 2>"$T/err" &&
        wait_for 10 gone "$np"
}

# A line such as "checkpoint 41.0 MiB / 64.2 MiB  20.1 MiB/s  1 s left".
line_re() { echo "^$1 [0-9.]+ (B|KiB|MiB) / [0-9.]+ (KiB|MiB)  [0-9.]+ (B|KiB|MiB)/s( |$)"; }

# ---- checkpoint on a terminal
start_prog one || fail progress_prog_ready "no READY"
on_tty "$T/c1.tty" "'$C' checkpoint $pid -o '$T/one.img'"
if lines "$T/c1.tty" | grep -Eq "$(line_re checkpoint)" &&
    lines "$T/c1.tty" | grep -Eq "s left" &&
    lines "$T/c1.tty" | grep -q "^coord: checkpoint $pid -> $T/one.img" &&
    grep -q $'\r\x1b\\[Kcoord: checkpoint' "$T/c1.tty"; then
    pass checkpoint_progress_line_on_terminal
else
    fail checkpoint_progress_line_on_terminal "$(lines "$T/c1.tty" | head -5 | tr '\n' '|')"
fi

# --quiet, and stderr to a file (still on a terminal for stdin/stdout)
on_tty "$T/c2.tty" "'$C' checkpoint $pid -o '$T/one.img' --quiet"
if ! grep -q 'B/s' "$T/c2.tty" && grep -q "coord: checkpoint $pid -> " "$T/c2.tty"; then
    pass checkpoint_quiet_no_progress
else
    fail checkpoint_quiet_no_progress "$(lines "$T/c2.tty" | head -3 | tr '\n' '|')"
fi
on_tty "$T/c3.tty" "'$C' checkpoint $pid -o '$T/one.img' 2>'$T/c3.err'"
if [ -s "$T/c3.err" ] && ! grep -q 'B/s' "$T/c3.err" && ! grep -q $'\r' "$T/c3.err" &&
    grep -q "coord: checkpoint $pid -> " "$T/c3.err"; then
    pass checkpoint_no_progress_when_stderr_is_a_file
else
    fail checkpoint_no_progress_when_stderr_is_a_file "$(head -3 "$T/c3.err" | tr '\n' '|')"
fi

# --json: the object alone on stdout, after the line is gone
on_tty "$T/c4.tty" "'$C' checkpoint $pid -o '$T/one.img' --json 2>/dev/null"
if grep -q '"pid": *[0-9]' "$T/c4.tty" && ! grep -q 'B/s' "$T/c4.tty"; then
    pass checkpoint_json_without_progress_on_stdout
else
    fail checkpoint_json_without_progress_on_stdout "$(head -c 300 "$T/c4.tty")"
fi

# ---- restore on a terminal (--detach: the pid comes after the line)
"$C" checkpoint "$pid" -o "$T/one.img" --kill 2>"$T/err" || fail progress_kill "checkpoint --kill failed"
wait_for 10 gone "$pid"
restore_on_tty "$T/r1.tty" "'$C' restore '$T/one.img' --detach"
if lines "$T/r1.tty" | grep -Eq "$(line_re restore)" && [ -n "$np" ] && alive "$np" &&
    grep -q $'\r\x1b\\[K'"$np" "$T/r1.tty"; then
    pass restore_progress_line_on_terminal
else
    fail restore_progress_line_on_terminal "$(lines "$T/r1.tty" | head -5 | tr '\n' '|')"
fi
# the restored program checkpoints again: its image was good
if take_again "$T/again.img" && "$C" inspect --verify "$T/again.img" >/dev/null 2>&1; then
    pass progress_image_restores
else
    fail progress_image_restores "the restored program did not checkpoint again"
fi

# --quiet, stderr to a file
restore_on_tty "$T/r2.tty" "'$C' restore '$T/again.img' --detach --quiet"
if [ -n "$np" ] && ! grep -q 'B/s' "$T/r2.tty"; then
    pass restore_quiet_no_progress
else
    fail restore_quiet_no_progress "$(lines "$T/r2.tty" | head -3 | tr '\n' '|')"
fi
take_again "$T/third.img"
restore_on_tty "$T/r3.tty" "'$C' restore '$T/third.img' --detach 2>'$T/r3.err'"
if [ -n "$np" ] && ! grep -q 'B/s' "$T/r3.err" && ! grep -q 'B/s' "$T/r3.tty"; then
    pass restore_no_progress_when_stderr_is_a_file
else
    fail restore_no_progress_when_stderr_is_a_file "$(head -3 "$T/r3.err" | tr '\n' '|')"
fi

# ---- coord restore - (from standard input): the line of the fill
take_again "$T/fourth.img"
restore_on_tty "$T/r4.tty" "cat '$T/fourth.img' | '$C' restore - --detach"
restored_with_line restore_stdin_progress_line "$T/r4.tty" restore
[ -n "$np" ] && kill -9 "$np"

# ---- a process tree: the line sums its processes, on both sides
start_prog tree --procs 2 || fail progress_tree_ready "no READY"
on_tty "$T/t1.tty" "'$C' checkpoint $pid -o '$T/tree.img' --kill"
if lines "$T/t1.tty" | grep -Eq "$(line_re checkpoint)" &&
    lines "$T/t1.tty" | grep -q "process tree of 2 processes"; then
    pass tree_checkpoint_progress_line
else
    fail tree_checkpoint_progress_line "$(lines "$T/t1.tty" | head -5 | tr '\n' '|')"
fi
wait_for 10 gone "$pid"
restore_on_tty "$T/t2.tty" "'$C' restore '$T/tree.img' --detach"
[ -n "$np" ] && PIDS+=($(children "$np"))
restored_with_line tree_restore_progress_line "$T/t2.tty" restore

# ---- coord migrate to "a host" that is this one (ssh replaced by sh):
# the checkpoint's line and the image sent's, none with --quiet
cat >"$T/fakessh" <<'EOF'
#!/bin/sh
# fakessh HOST COMMAND: run COMMAND here
exec sh -c "$2"
EOF
cat >"$T/slowssh" <<'EOF'
#!/bin/sh
# slowssh HOST COMMAND: fakessh, with the image it is sent read at 20 MiB/s
exec python3 -c '
import os, subprocess, sys, time
p = subprocess.Popen(["sh", "-c", sys.argv[1]], stdin=subprocess.PIPE)
while True:
    b = os.read(0, 1 << 20)
    if not b:
        break
    p.stdin.write(b)
    time.sleep(0.05)
p.stdin.close()
sys.exit(p.wait())' "$2"
EOF
chmod +x "$T/fakessh" "$T/slowssh"
start_prog mig || fail progress_migrate_ready "no READY"
restore_on_tty "$T/m1.tty" "'$C' migrate $pid here --ssh '$T/fakessh' --remote-coord '$C' --quiet"
if [ -n "$np" ] && alive "$np" && ! grep -q 'B/s' "$T/m1.tty"; then
    pass migrate_quiet_no_progress
else
    fail migrate_quiet_no_progress "$(lines "$T/m1.tty" | head -5 | tr '\n' '|')"
fi
if [ -n "$np" ]; then
    pid=$np
    restore_on_tty "$T/m2.tty" "'$C' migrate $pid here --ssh '$T/slowssh' --remote-coord '$C'"
    restored_with_line migrate_progress_line "$T/m2.tty" checkpoint
    restored_with_line migrate_sending_progress_line "$T/m2.tty" migrate
    [ -n "$np" ] && kill -9 "$np"
fi
