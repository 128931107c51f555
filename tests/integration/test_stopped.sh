#!/bin/bash
# test_stopped.sh - checkpoint a stopped program (SIGSTOP, Ctrl-Z's SIGTSTP,
# a suspended batch job's whole process group) and restore it stopped.
#
#   bash tests/integration/test_stopped.sh BUILD_DIR
#
# coord continues a stopped process for its checkpoint, but its shim holds
# every thread of the program until the request parks them, and stops the
# process again before any of them goes on (docs/DESIGN.md, "Stopped
# processes"). stop_ticker counts a tick per millisecond in two threads
# and writes the counts to a file: a count that moves while the process
# should be stopped is a moment the program ran. The image says the
# process was stopped; restore brings it back stopped, in the foreground
# (the shell's job is stopped, as it was) and with --detach, and it goes on
# when continued; Ctrl-Z in an interactive bash on a pseudo-terminal,
# restored in that shell as a stopped job and continued with fg. Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-stopped.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

TICKS="$T/cwd/ticks"
ticks() { head -c 40 "$TICKS" 2>/dev/null | tr -s ' ' | sed 's/^ //'; }
conts() { awk '{print $3}' "$TICKS" 2>/dev/null; }
state() { awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null; }
is_stopped() { [ "$(state "$1")" = T ]; }
no_fds() { [ -z "$(ls "/proc/$1/fd" 2>/dev/null)" ]; }

# still NAME PID: PID is stopped and its counts do not move for 0.3 s.
still() {
    local a b
    a=$(ticks)
    sleep 0.3
    b=$(ticks)
    if is_stopped "$2" && [ -n "$a" ] && [ "$a" = "$b" ]; then
        pass "$1"
    else
        fail "$1" "state $(state "$2"), ticks '$a' -> '$b'"
    fi
}

# runs NAME PID: PID's counts move (both threads).
runs() {
    local a b
    a=$(ticks)
    sleep 0.3
    b=$(ticks)
    if ! is_stopped "$2" && [ "${a%% *}" != "${b%% *}" ] &&
        [ "$(echo "$a" | cut -d' ' -f2)" != "$(echo "$b" | cut -d' ' -f2)" ]; then
        pass "$1"
    else
        fail "$1" "state $(state "$2"), ticks '$a' -> '$b'"
    fi
}

# again PID IMG: checkpoint PID --kill to IMG and restore it --detach;
# sets $nnp, the restored pid.
again() {
    nnp=
    "$C" checkpoint "$1" -o "$2" --kill >"$T/out" 2>"$T/err" &&
        nnp=$(cd / && timeout 30 "$C" restore --detach "$2" 2>"$T/err") && [ -n "$nnp" ] &&
        PIDS+=("$nnp")
}

# ---- a process stopped by SIGSTOP, checkpointed while it stays stopped ----

start_test_prog stop_ticker || exit 0
kill -STOP "$pid"
wait_for 5 is_stopped "$pid"
before=$(ticks)
ok=1
for i in 1 2 3 4 5; do
    if ! "$C" checkpoint "$pid" -o "$T/live.img" >"$T/out" 2>"$T/err"; then
        ok=0
        fail stopped_checkpoint_live "checkpoint $i failed"
        break
    fi
    is_stopped "$pid" || { ok=0; fail stopped_checkpoint_live "not stopped after checkpoint $i"; break; }
done
[ $ok = 1 ] && pass stopped_checkpoint_live
after=$(ticks)
sleep 0.3
if [ "$before" = "$after" ] && [ "$after" = "$(ticks)" ] && is_stopped "$pid"; then
    pass stopped_never_runs_across_checkpoints
else
    fail stopped_never_runs_across_checkpoints "ticks '$before' -> '$after' -> '$(ticks)'"
fi
if "$C" inspect "$T/live.img" 2>&1 | grep -q "stopped *by Stopped (signal) when taken"; then
    pass stopped_inspect_says_so
else
    fail stopped_inspect_says_so "$("$C" inspect "$T/live.img" 2>&1 | head -3)"
fi
c0=$(conts)
kill -CONT "$pid"
runs stopped_goes_on_when_continued "$pid"
[ "$(conts)" -gt "$c0" ] 2>/dev/null && pass stopped_sigcont_handler_runs ||
    fail stopped_sigcont_handler_runs "conts $c0 -> $(conts)"

# ---- coord gone between its SIGCONT and its request ---------------------

# What coord does to a stopped process before it asks (the checkpoint
# signal to every thread, then SIGCONT: coordinator/checkpoint.c,
# tree_continue), and then nothing, as if it were killed: the shim holds
# the program for 5 s, then stops the process again itself (SIGSTOP); it
# never runs until it is continued.
kill -STOP "$pid"
wait_for 5 is_stopped "$pid"
before=$(ticks)
python3 - "$pid" <<'EOF'
import ctypes, os, signal, sys
pid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
sig = signal.SIGRTMAX - 2
for tid in os.listdir("/proc/%d/task" % pid):
    libc.syscall(234, pid, int(tid), sig)  # tgkill
os.kill(pid, signal.SIGCONT)
EOF
sleep 1
mid=$(ticks)
wait_for 10 is_stopped "$pid"
sleep 0.5
if [ "$before" = "$mid" ] && [ "$before" = "$(ticks)" ] && is_stopped "$pid"; then
    pass stopped_again_when_coord_is_gone
else
    fail stopped_again_when_coord_is_gone "state $(state "$pid"), ticks '$before' -> '$mid' -> '$(ticks)'"
fi
kill -CONT "$pid"
runs stopped_again_goes_on_when_continued "$pid"

# coord gave up before it asked and stopped the process itself (SIGSTOP,
# which no mask holds back, reaches the held threads), then the user
# continues it: it runs (the SIGCONT ends the hold), and is not stopped
# again when the hold's 5 s would have run out.
kill -STOP "$pid"
wait_for 5 is_stopped "$pid"
python3 - "$pid" <<'EOF'
import ctypes, os, signal, sys, time
pid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
for tid in os.listdir("/proc/%d/task" % pid):
    libc.syscall(234, pid, int(tid), signal.SIGRTMAX - 2)  # tgkill
os.kill(pid, signal.SIGCONT)
time.sleep(0.5)
os.kill(pid, signal.SIGSTOP)
time.sleep(0.5)
os.kill(pid, signal.SIGCONT)
EOF
runs stopped_given_up_then_continued_runs "$pid"
sleep 5
runs stopped_given_up_not_stopped_later "$pid"

# ---- Ctrl-Z (SIGTSTP): --kill, restore --detach stopped, twice -----------

kill -TSTP "$pid"
# (SIGTSTP is dropped in an orphaned process group: run.sh's timeout
# gives this script a group whose parent is in its session)
wait_for 5 is_stopped "$pid" || fail stopped_by_sigtstp "state $(state "$pid")"
before=$(ticks)
if "$C" checkpoint "$pid" -o "$T/tstp.img" --kill >"$T/out" 2>"$T/err" && wait_for 10 gone "$pid"; then
    pass stopped_checkpoint_kill
else
    fail stopped_checkpoint_kill "rc=$?"
fi
np=$(cd / && timeout 30 "$C" restore --detach "$T/tstp.img" 2>"$T/err")
if [ -n "$np" ] && alive "$np"; then
    PIDS+=("$np")
    grep -q "comes back stopped" "$T/err" && pass stopped_restore_says_so ||
        fail stopped_restore_says_so
    still stopped_restored_stopped "$np"
    [ "$(ticks)" = "$before" ] && pass stopped_restored_counts_as_saved ||
        fail stopped_restored_counts_as_saved "'$before' -> '$(ticks)'"
    kill -CONT "$np"
    runs stopped_restored_goes_on "$np"
    # taken again while it runs: it comes back running; then stopped once
    # more, and restored stopped once more
    if again "$np" "$T/again.img"; then
        runs stopped_restored_twice_runs "$nnp"
        kill -STOP "$nnp"
        wait_for 5 is_stopped "$nnp"
        if again "$nnp" "$T/third.img"; then
            still stopped_restored_twice_stopped "$nnp"
            kill -CONT "$nnp"
            runs stopped_restored_twice_goes_on "$nnp"
            kill -9 "$nnp"
            # (its file closed before the next restore looks for writers:
            # SIGKILL ends it a moment later; as a zombie it holds none)
            wait_for 5 no_fds "$nnp"
        else
            fail stopped_restored_twice_stopped "checkpoint or restore failed"
        fi
    else
        fail stopped_restored_twice_runs "checkpoint or restore failed"
    fi
else
    fail stopped_restored_stopped "restore failed"
fi

# ---- in the foreground: coord becomes the program, which stops itself ----

# (the shell's job is stopped, as it was when Ctrl-Z stopped it)
(cd / && exec "$C" restore "$T/tstp.img" --force >/dev/null 2>"$T/fg.err") &
fg=$!
PIDS+=("$fg")
if wait_for 10 is_stopped "$fg"; then
    still stopped_foreground_restore_stopped "$fg"
    kill -CONT "$fg"
    runs stopped_foreground_goes_on "$fg"
else
    fail stopped_foreground_restore_stopped "state $(state "$fg"): $(head -3 "$T/fg.err")"
fi
kill -9 "$fg" 2>/dev/null
wait "$fg" 2>/dev/null

# ---- stopped inside fork -------------------------------------------------

# The shim's fork handler holds a lock its manager needs to take coord's
# request; a process stopped inside fork (test hook: the fork waits there
# 300 ms) is held there by coord's continue: the hold lets the lock go,
# so the checkpoint is served at once (it used to wait out the hold's
# 5 s, and now that a hold running out stops the process, it failed).
cat >"$T/forker.py" <<'EOF'
import os, sys, time
n = 0
print("READY", flush=True)
while True:
    time.sleep(0.4)
    p = os.fork()
    if p == 0:
        os._exit(0)
    os.waitpid(p, 0)
    n += 1
    with open(sys.argv[1], "w") as f:
        f.write(str(n))
EOF
# (the interpreter itself: a wrapper script's forks would wait too)
PY=$(python3 -c 'import sys; print(sys.executable)')
(cd "$T" && exec env CKSHIM_TEST_HOOK=slow-fork LD_PRELOAD="$SHIM" "$PY" "$T/forker.py" \
    "$T/forks" >"$T/forker.log" 2>&1) &
fpid=$!
PIDS+=("$fpid")
wait_for 10 grep -q READY "$T/forker.log"
forking() { [ "$(grep -c 'ckshim: forking' "$T/forker.log")" -ge 2 ]; }
for _ in $(seq 300); do forking && break; sleep 0.01; done
kill -STOP "$fpid"
wait_for 5 is_stopped "$fpid"
t0=$(date +%s%N)
if "$C" checkpoint "$fpid" -o "$T/fork.img" >"$T/out" 2>"$T/err" && is_stopped "$fpid" &&
    [ $((($(date +%s%N) - t0) / 1000000)) -lt 4000 ]; then
    pass stopped_inside_fork_checkpointed
else
    fail stopped_inside_fork_checkpointed "state $(state "$fpid") after $((($(date +%s%N) - t0) / 1000000)) ms"
fi
f0=$(cat "$T/forks" 2>/dev/null)
kill -CONT "$fpid"
sleep 1.5
f1=$(cat "$T/forks" 2>/dev/null)
[ "${f1:-0}" -gt "${f0:-0}" ] && pass stopped_inside_fork_goes_on ||
    fail stopped_inside_fork_goes_on "forks ${f0:-none} -> ${f1:-none}"
kill -9 "$fpid" 2>/dev/null

# ---- Ctrl-Z in an interactive shell, restored in the shell, fg ----------

# bash -i on a pseudo-terminal runs the program as a job; ^Z stops it
# (the shell takes the stop report: the signal is no longer known, so
# SIGSTOP stops it again); coord checkpoint --kill; `coord restore IMG`
# typed in the shell brings it back stopped, as a job the shell says is
# Stopped; `fg` continues it from where it was.
cat >"$T/count.py" <<'EOF'
import sys, time
n = 0
while True:
    n += 1
    with open(sys.argv[1], "w") as f:
        f.write(str(n))
    time.sleep(0.05)
EOF
python3 - "$C" "$SHIM" "$T" <<'EOF'
import os, pty, select, subprocess, sys, time
C, SHIM, T = sys.argv[1:4]
count = T + "/jc.count"
def check(name, ok, why=""):
    print("PASS " + name if ok else "FAIL %s: %s" % (name, why), flush=True)
pid, fd = pty.fork()
if pid == 0:
    os.environ["PS1"] = "$ "
    os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
out = b""
def pump(secs, want=None):
    global out
    end = time.time() + secs
    while time.time() < end and not (want and want in out):
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return
def state(p):
    for l in open("/proc/%s/status" % p):
        if l.startswith("State:"):
            return l.split()[1]
def prog():
    r = subprocess.run(["pgrep", "-f", T + "/count.py"], capture_output=True, text=True)
    return r.stdout.split()
def read_count():
    try:
        return open(count).read()
    except OSError:
        return ""
try:
    pump(1, b"$ ")
    os.write(fd, ("LD_PRELOAD=%s python3 %s/count.py %s\n" % (SHIM, T, count)).encode())
    for _ in range(50):
        if read_count() not in ("", "1", "2"):
            break
        time.sleep(0.1)
    os.write(fd, b"\x1a")
    pump(3, b"]+  Stopped")
    p = prog()
    check("jobctl_ctrl_z_stops", len(p) == 1 and state(p[0]) == "T", "processes %s" % p)
    c0 = read_count()
    r = subprocess.run([C, "checkpoint", p[0], "-o", T + "/jc.img", "--kill"],
                       capture_output=True, text=True)
    check("jobctl_checkpoint", r.returncode == 0, r.stderr[-300:])
    out = b""
    os.write(fd, ("%s restore %s/jc.img\n" % (C, T)).encode())
    pump(10, b"]+  Stopped")
    p = prog()
    time.sleep(0.3)
    check("jobctl_restored_stopped_job",
          b"]+  Stopped" in out and len(p) == 1 and state(p[0]) == "T" and read_count() == c0,
          "processes %s, count %s -> %s: %r" % (p, c0, read_count(), out[-300:]))
    os.write(fd, b"fg\n")
    time.sleep(1)
    c1 = read_count()
    check("jobctl_fg_goes_on", c1.isdigit() and c0.isdigit() and int(c1) > int(c0),
          "count %s -> %s" % (c0, c1))
    os.write(fd, b"\x03")
    pump(1)
    os.write(fd, b"exit\n")
    pump(1)
finally:
    for p in prog():
        os.kill(int(p), 9)
    try:
        os.kill(pid, 9)
    except OSError:
        pass
EOF

# ---- an image whose header names a signal that does not stop ------------

python3 - "$T/tstp.img" "$T/badsig.img" "$(dirname "${BASH_SOURCE[0]}")" <<'EOF'
import struct, sys
sys.path.insert(0, sys.argv[3])
from ckxxh64 import xxh64
d = bytearray(open(sys.argv[1], "rb").read())
# struct ck_header: flags at 16, stop_sig at 52, checksum at 504
struct.pack_into("<I", d, 52, 9)
struct.pack_into("<Q", d, 504, xxh64(bytes(d[:504])))
open(sys.argv[2], "wb").write(d)
EOF
restore_refused stopped_bad_signal_refused "$T/badsig.img" "stopped by signal 9.*damaged" --force

# ---- a whole process group stopped (a suspended batch job) --------------

# a shell pipeline in a session of its own, stopped as Slurm suspends a
# job (SIGSTOP to every process), checkpointed, restored stopped, continued
cat >"$T/job.sh" <<'EOF'
i=0
while :; do i=$((i + 1)); echo "$i"; sleep 0.05; done | cat >"$1"
EOF
(cd "$T" && exec setsid env LD_PRELOAD="$SHIM" bash "$T/job.sh" "$T/job.out" >/dev/null 2>&1) &
job=$!
PIDS+=("$job")
wait_for 10 test -s "$T/job.out"
lines() { wc -l <"$T/job.out"; }
# all_stopped PID: PID and its descendants are stopped (or zombies: a
# command that had ended, not yet waited for by its stopped shell)
all_stopped() {
    local p
    for p in "$1" $(ck_descendants "$1"); do
        case $(state "$p") in T | Z) ;; *) return 1 ;; esac
    done
}
kill -STOP -- "-$job"
wait_for 5 all_stopped "$job"
n0=$(lines)
if "$C" checkpoint "$job" -o "$T/job.img" --kill >"$T/out" 2>"$T/err" && wait_for 10 gone "$job"; then
    pass stopped_job_checkpoint
else
    fail stopped_job_checkpoint "$(cat "$T/err" | head -3)"
fi
np=$(cd / && timeout 30 "$C" restore --detach "$T/job.img" 2>"$T/err")
if [ -n "$np" ] && alive "$np"; then
    PIDS+=("$np")
    sleep 0.3
    if all_stopped "$np" && [ "$(lines)" = "$n0" ] && [ -n "$(ck_descendants "$np")" ]; then
        pass stopped_job_restored_stopped
    else
        fail stopped_job_restored_stopped "lines $n0 -> $(lines)"
    fi
    kill -CONT -- "-$np"
    sleep 0.5
    n1=$(lines)
    [ "$n1" -gt "$n0" ] && pass stopped_job_goes_on || fail stopped_job_goes_on "lines $n0 -> $n1"
    # again: stopped, taken, restored, continued
    kill -STOP -- "-$np"
    wait_for 5 all_stopped "$np"
    n2=$(lines)
    if "$C" checkpoint "$np" -o "$T/job2.img" --kill >"$T/out" 2>"$T/err" && wait_for 10 gone "$np" &&
        np2=$(cd / && timeout 30 "$C" restore --detach "$T/job2.img" 2>"$T/err") && [ -n "$np2" ]; then
        PIDS+=("$np2")
        sleep 0.3
        all_stopped "$np2" && [ "$(lines)" = "$n2" ] && pass stopped_job_twice_stopped ||
            fail stopped_job_twice_stopped "lines $n2 -> $(lines)"
        kill -CONT -- "-$np2"
        sleep 0.5
        [ "$(lines)" -gt "$n2" ] && pass stopped_job_twice_goes_on ||
            fail stopped_job_twice_goes_on "lines $n2 -> $(lines): $(ps -o pid,pgid,stat,cmd -p "$np2" $(ck_descendants "$np2") | tr '\n' ';')"
        kill -9 -- "-$np2" 2>/dev/null
    else
        fail stopped_job_twice_stopped "$(head -3 "$T/err")"
    fi
else
    fail stopped_job_restored_stopped "restore failed"
fi
