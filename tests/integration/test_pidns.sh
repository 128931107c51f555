#!/bin/bash
# test_pidns.sh - coord run --pidns: programs in a pid namespace of their own.
#
#   bash tests/integration/test_pidns.sh BUILD_DIR
#
# coord run --pidns starts the program as pid 2 of a new user+pid
# namespace under coord's init (pid 1), with a /proc of its own; its
# images restore in a new namespace with every pid as it was, so raw
# system calls and /proc agree with the program (a tree of processes that
# checks all of that is tests/integration/progs/pidns_tree, in
# test_progs.sh). Here: what the program sees at start, its exit status
# and signals passing through coord and init, an orphan reaped by init,
# a refusal when no namespace can be made, a checkpoint of coord's side
# pointed to the program, one process restored (--detach prints its pid
# here, coord list shows it, a signal from outside reaches it), in the
# foreground (coord ends as the program does), checkpointed and restored
# again, an image taken without a namespace restored into one with
# --pidns, the supervisor with --pidns, a zombie restored with its pid.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-pidns.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# (functions: wait_for runs its command again, a $(...) argument would not be)
more_now() { [ "$(grep -c NOW "$T/ids.log")" -gt "$1" ]; }
has_grandchild() { [ -n "$(children "$(children "$1")")" ]; }
trap ck_cleanup EXIT

# moved NAME GO WORD: checkpoint $prog (started by start_py_pidns NAME)
# with --kill into $T/NAME.img, restore that --detach, create $T/GO and
# wait for WORD in its log; sets $rc (the checkpoint's exit status), $np.
moved() {
    "$C" checkpoint "$prog" -o "$T/$1.img" --kill >"$T/out" 2>"$T/err"
    rc=$?
    wait_for 10 gone "$cpid"
    np=$(cd / && timeout 30 "$C" restore --detach "$T/$1.img" 2>>"$T/err")
    PIDS+=("$np")
    touch "$T/$2"
    wait_for 10 grep -q "$3" "$T/$1.log"
}

# moved_says TEST NAME LINE: after moved NAME, the program's log has LINE.
moved_says() {
    if [ $rc -eq 0 ] && [ -n "$np" ] && grep -q "$3" "$T/$2.log"; then
        pass "$1"
    else
        fail "$1" "rc=$rc np='$np': $(tail -n 2 "$T/$2.log" | tr '\n' ' ')"
    fi
}

# The program's view: its pid, its parent, /proc/self, its uid, the
# processes /proc shows.
out=$(cd "$T" && timeout 20 "$C" run --pidns -- sh -c \
    'echo "$$ $PPID $(cut -d" " -f1 /proc/$$/stat) $(id -u) $(ls /proc | grep -c "^[0-9]")"' 2>"$T/err")
read -r p pp self uid nproc <<<"$out"
if [ "$p" = 2 ] && [ "$pp" = 1 ] && [ "$self" = 2 ] && [ "$uid" = "$(id -u)" ] &&
    [ "${nproc:-99}" -le 10 ]; then
    pass pidns_run_sees_its_namespace
else
    fail pidns_run_sees_its_namespace "pid $p, parent $pp, /proc says $self, uid $uid, $nproc processes in /proc"
fi

(cd "$T" && timeout 20 "$C" run --pidns -- sh -c 'exit 7' 2>"$T/err")
rc=$?
[ $rc -eq 7 ] && pass pidns_run_exit_status || fail pidns_run_exit_status "exit $rc, not 7"

# A signal to coord passes through init to the program (SIGTERM: coord
# then ends by the same signal, 128+15 for the shell).
(cd "$T" && exec "$C" run --pidns -- sleep 100) 2>"$T/err" &
cpid=$!
PIDS+=("$cpid")
wait_for 5 has_grandchild "$cpid"
kill -TERM "$cpid"
timeout 10 tail --pid="$cpid" -f /dev/null
wait "$cpid"
rc=$?
[ $rc -eq 143 ] && pass pidns_run_forwards_sigterm || fail pidns_run_forwards_sigterm "exit $rc, not 143"

# init itself killed from outside (SIGKILL: the kernel ends every process
# of the namespace): coord says so and exits 128+9, not 1 in silence.
(cd "$T" && exec "$C" run --pidns -- sleep 100) 2>"$T/err" &
cpid=$!
PIDS+=("$cpid")
wait_for 5 has_grandchild "$cpid"
kill -KILL "$(children "$cpid")"
timeout 10 tail --pid="$cpid" -f /dev/null
wait "$cpid"
rc=$?
if [ $rc -eq 137 ] && grep -q "init (pid [0-9]*) was killed by signal 9" "$T/err"; then
    pass pidns_run_init_killed_said
else
    fail pidns_run_init_killed_said "exit $rc (not 137), said: $(cat "$T/err")"
fi

# init reaps an orphan: a grandchild whose parent ended is init's child
# (its parent pid is 1), and once it ends no zombie stays.
cat >"$T/orphan.sh" <<'EOF'
sh -c 'sh -c "sleep 0.3; echo orphan-ppid \$(cut -d\" \" -f4 /proc/\$\$/stat)" &'
sleep 1
echo zombies $(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l)
EOF
out=$(cd "$T" && timeout 20 "$C" run --pidns -- sh "$T/orphan.sh" 2>"$T/err")
if grep -q "orphan-ppid 1" <<<"$out" && grep -q "zombies 0" <<<"$out"; then
    pass pidns_init_reaps_orphans
else
    fail pidns_init_reaps_orphans "$(echo $out)"
fi

# No namespace can be made (max_user_namespaces 0 in a user namespace of
# ours): a clear message, exit 1, nothing runs.
if command -v unshare >/dev/null && unshare -U -r true 2>/dev/null; then
    out=$(unshare -U -r sh -c "echo 0 >/proc/sys/user/max_user_namespaces &&
        exec '$C' run --pidns -- sh -c 'echo RAN'" 2>"$T/err")
    rc=$?
    if [ $rc -eq 1 ] && [ -z "$out" ] &&
        grep -q "cannot create a user and pid namespace.*run without --pidns" "$T/err"; then
        pass pidns_refused_without_namespaces
    else
        fail pidns_refused_without_namespaces "rc=$rc out='$out'"
    fi
else
    pass pidns_refused_without_namespaces # (unshare -U not available: nothing to check)
fi

# One process, which reports its raw pid and /proc/self on request.
cat >"$T/ids.py" <<'EOF'
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def ids():
    return "%d %s %d" % (libc.syscall(39), os.readlink("/proc/self"), libc.syscall(110))
print("IDS", ids(), flush=True)
print("READY", flush=True)
while True:
    time.sleep(0.05)
    if os.path.exists("ask"):
        os.unlink("ask")
        print("NOW", ids(), flush=True)
    if os.path.exists("quit"):
        os.unlink("quit")
        sys.exit(5)
EOF
start_py_pidns ids "$T/ids.py"
init=$(children "$cpid" | tr -d ' ')
PIDS+=("$init" "$prog")
read -r _ rawpid self ppid < <(grep IDS "$T/ids.log")
[ "$rawpid" = 2 ] && [ "$self" = 2 ] && [ "$ppid" = 1 ] && pass pidns_python_ids ||
    fail pidns_python_ids "$(grep IDS "$T/ids.log")"

# coord's side (the coord outside, init) is not the program: named.
"$C" checkpoint "$cpid" -o "$T/no.img" 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "checkpoint the program itself: pid $prog" "$T/err" &&
    [ ! -e "$T/no.img" ] && alive "$prog"; then
    pass pidns_checkpoint_of_coord_names_program
else
    fail pidns_checkpoint_of_coord_names_program "rc=$rc"
fi

"$C" list >"$T/list" 2>&1
awk -v p="$prog" '$1 == p && $2 == 2' "$T/list" | grep -q . && pass pidns_list_shows_program ||
    fail pidns_list_shows_program "$(cat "$T/list")"

"$C" checkpoint "$prog" -o "$T/ids1.img" --kill >"$T/out" 2>"$T/err"
rc=$?
wait_for 10 gone "$cpid"
if [ $rc -eq 0 ] && "$C" inspect "$T/ids1.img" 2>&1 | grep -q "orig pid *2 (in a pid namespace"; then
    pass pidns_checkpoint_records_namespace
else
    fail pidns_checkpoint_records_namespace "rc=$rc"
fi

# --detach: the pid printed is the program's here; inside it is 2 again.
np=$(cd / && timeout 30 "$C" restore --detach "$T/ids1.img" 2>"$T/err")
PIDS+=("$np")
touch "$T/ask"
wait_for 10 grep -q NOW "$T/ids.log"
read -r _ rawpid self ppid < <(grep NOW "$T/ids.log" | tail -n 1)
nspid=$(awk '/^NSpid:/ {print $NF}' "/proc/$np/status" 2>/dev/null)
if [ -n "$np" ] && [ "$nspid" = 2 ] && [ "$rawpid" = 2 ] && [ "$self" = 2 ] && [ "$ppid" = 1 ]; then
    pass pidns_restore_detach_same_pid
else
    fail pidns_restore_detach_same_pid "printed '$np' (NSpid $nspid), program: $(grep NOW "$T/ids.log" | tail -n 1)"
fi

# /proc/PID/exe (what gdb -p reads) names the program again, not the
# restorer (the default mode cannot change it: see docs/DESIGN.md).
exe=$(readlink "/proc/$np/exe" 2>/dev/null)
[ -n "$exe" ] && [ "$exe" = "$(readlink -f "$(command -v python3)")" ] &&
    pass pidns_restore_exe_link || fail pidns_restore_exe_link "/proc/$np/exe is '$exe'"

# The restorer had the namespace's CAP_CHECKPOINT_RESTORE (for the
# threads' tids); no thread of the program keeps any capability.
caps=$(grep -h -E '^Cap(Inh|Prm|Eff|Amb):' /proc/"$np"/task/*/status 2>/dev/null | awk '{print $2}' | sort -u)
[ "$caps" = 0000000000000000 ] && pass pidns_restore_drops_capabilities ||
    fail pidns_restore_drops_capabilities "$(echo $caps)"

# Again: checkpoint the restored program, restore in the foreground; coord
# ends with the program's exit status.
"$C" checkpoint "$np" -o "$T/ids2.img" --kill >"$T/out" 2>"$T/err" || fail pidns_checkpoint_again "$(cat "$T/err")"
wait_for 10 gone "$np"
(cd / && exec timeout 60 "$C" restore "$T/ids2.img" </dev/null 2>"$T/err") &
cpid=$!
PIDS+=("$cpid")
wait_for 10 has_grandchild "$cpid"
n0=$(grep -c NOW "$T/ids.log")
touch "$T/ask"
wait_for 10 more_now "$n0"
read -r _ rawpid self ppid < <(grep NOW "$T/ids.log" | tail -n 1)
[ "$rawpid" = 2 ] && [ "$self" = 2 ] && [ "$ppid" = 1 ] && pass pidns_restored_twice_same_pid ||
    fail pidns_restored_twice_same_pid "$(grep NOW "$T/ids.log" | tail -n 1)"
touch "$T/quit"
wait "$cpid"
rc=$?
[ $rc -eq 5 ] && pass pidns_restore_foreground_exit_status ||
    fail pidns_restore_foreground_exit_status "exit $rc, not 5"

# A signal from outside to the restored program's pid here reaches it.
np=$(cd / && timeout 30 "$C" restore --detach "$T/ids2.img" --force 2>"$T/err")
PIDS+=("$np")
if [ -n "$np" ] && alive "$np"; then
    kill -TERM "$np"
    wait_for 10 gone "$np" && pass pidns_signal_from_outside || fail pidns_signal_from_outside "still running"
else
    fail pidns_signal_from_outside "restore failed"
fi

# An image taken without a namespace, restored into a new one with
# --pidns: raw getpid and /proc/self give the pid it had.
rm -f "$T/ask"
start_py_app plain "$T/ids.py" || fail pidns_plain_ready "no READY"
read -r _ rawpid _ < <(grep IDS "$T/plain.log")
"$C" checkpoint "$pid" -o "$T/plain.img" --kill >"$T/out" 2>"$T/err"
wait_for 10 gone "$pid"
np=$(cd / && timeout 30 "$C" restore --detach --pidns "$T/plain.img" 2>"$T/err")
PIDS+=("$np")
touch "$T/ask"
wait_for 10 grep -q NOW "$T/plain.log"
read -r _ raw2 self2 ppid2 < <(grep NOW "$T/plain.log" | tail -n 1)
if [ -n "$np" ] && [ "$raw2" = "$rawpid" ] && [ "$self2" = "$rawpid" ] && [ "$ppid2" = 1 ]; then
    pass pidns_restore_plain_image_into_namespace
else
    fail pidns_restore_plain_image_into_namespace "pid was $rawpid; now: $(grep NOW "$T/plain.log" | tail -n 1)"
fi
[ -n "$np" ] && kill -9 "$np" 2>/dev/null

# The supervisor with --pidns: checkpoints of the program in its
# namespace; killed, it is restored (--auto-restore) with its pid again.
rm -f "$T/ask" "$T/quit"
: >"$T/ids.log"
(cd "$T" && exec env CKSHIM_APP_ID=pidns-sv "$C" run --every 300ms --images "$T/sv" \
    --auto-restore --pidns -- python3 "$T/ids.py" >"$T/ids.log" 2>"$T/sv.err") &
spid=$!
disown "$spid" 2>/dev/null
PIDS+=("$spid")
wait_for 10 test -e "$T/sv/ckpt-000002.img"
# the supervisor's child is coord outside the namespace, then init, then the program
prog=$("$C" list 2>/dev/null | awk '$2 == 2 && /python3/ {print $1; exit}')
if [ -n "$prog" ]; then
    kill -KILL "$prog"
    wait_for 10 gone "$prog"
    wait_for 10 sh -c "'$C' list 2>/dev/null | awk '\$2 == 2 && /python3/ && \$1 != $prog' | grep -q ."
fi
n0=$(grep -c NOW "$T/ids.log")
touch "$T/ask"
wait_for 10 more_now "$n0"
read -r _ rawpid self ppid < <(grep NOW "$T/ids.log" | tail -n 1)
if [ -n "$prog" ] && grep -q "restor" "$T/sv.err" && [ "$rawpid" = 2 ] && [ "$self" = 2 ] &&
    [ "$ppid" = 1 ]; then
    pass pidns_supervisor_auto_restore
else
    fail pidns_supervisor_auto_restore "program '$prog', now: $(grep NOW "$T/ids.log" | tail -n 1); $(tail -n 2 "$T/sv.err")"
fi
kill -TERM "$spid"
wait_for 20 gone "$spid" || fail pidns_supervisor_stops "still running"

# A zombie (a child that exited, not yet waited for) comes back with its
# pid in the namespace: waitpid by that pid gets its status.
cat >"$T/zombie.py" <<'EOF2'
import os, time
k = os.fork()
if k == 0:
    os._exit(3)
time.sleep(0.3)
print("CHILD", k, flush=True)
print("READY", flush=True)
while not os.path.exists("reap"):
    time.sleep(0.05)
p, st = os.waitpid(k, 0)
print("REAPED", p, os.WEXITSTATUS(st), flush=True)
EOF2
start_py_pidns zombie "$T/zombie.py"
moved zombie reap REAPED
read -r _ kid < <(grep CHILD "$T/zombie.log")
moved_says pidns_zombie_reaped_by_pid zombie "REAPED $kid 3"

# File locks in a tree (refused in the default mode): an flock the parent
# took before the fork (held by both through one open file description)
# and a POSIX lock of the child; after restore F_GETLK names the child by
# its pid and the flock is still held.
cat >"$T/locks.py" <<'EOF2'
import fcntl, os, struct, time
fd = os.open("lockfile", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
k = os.fork()
if k == 0:
    f2 = os.open("lockfile", os.O_RDWR)
    fcntl.lockf(f2, fcntl.LOCK_EX, 1, 10)
    while True:
        time.sleep(0.1)
time.sleep(0.5)
print("READY", k, flush=True)
while not os.path.exists("golocks"):
    time.sleep(0.05)
r = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 10, 1, 0))
owner = struct.unpack("hhqqi", r)[4]
f3 = os.open("lockfile", os.O_RDWR)
try:
    fcntl.flock(f3, fcntl.LOCK_EX | fcntl.LOCK_NB)
    held = 0
except BlockingIOError:
    held = 1
print("LOCKS", owner, k, held, flush=True)
os.kill(k, 9)
os.waitpid(k, 0)
EOF2
start_py_pidns locks "$T/locks.py"
moved locks golocks LOCKS
read -r _ kid < <(grep READY "$T/locks.log")
moved_says pidns_tree_file_locks locks "LOCKS $kid $kid 1"
