#!/bin/bash
# test_refusals.sh - what ckshim must refuse, and how.
#
#   bash tests/integration/test_refusals.sh BUILD_DIR
#
# Checkpoint refusals: a process holding something ckshim cannot restore
# (a netlink socket, an io_uring instance) is not checkpointed; the message names the
# fd and its kind; the process goes on untouched; an existing good image at
# the output path is left as it was.
# Restore refusals: a missing file, an empty file, a foreign file, a
# truncated image, a flipped byte in the header, in a metadata record and in
# page data, an image whose mapped program file changed since: each fails
# with a clear message and exit 1, and no process is left behind.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-refusals.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# wait_ready LOG: wait (10 s) for READY in LOG.
wait_ready() {
    for _ in $(seq 100); do
        grep -q READY "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# start NAME CMD...: run CMD under the shim in $T, log in $T/NAME.log,
# set $pid.
start() {
    local name=$1
    shift
    (cd "$T" && exec env LD_PRELOAD="$SHIM" "$@" >"$T/$name.log" 2>&1) &
    pid=$!
    disown "$pid" 2>/dev/null
    PIDS+=("$pid")
    wait_ready "$T/$name.log" || echo "    (no READY from $name)"
}


# ---- checkpoint refusals -------------------------------------------------

cat >"$T/sock.py" <<'EOF'
import socket, time, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
print("READY fd", s.fileno(), flush=True)
n = 0
while True:
    n += 1
    time.sleep(0.05)
    if n % 10 == 0:
        print("tick", n, flush=True)
EOF
start sock python3 "$T/sock.py"
fd=$(awk '/READY fd/ {print $3; exit}' "$T/sock.log")
printf 'GOOD-IMAGE-PLACEHOLDER' >"$T/existing.img"
before=$(md5sum <"$T/existing.img")
"$C" checkpoint "$pid" -o "$T/existing.img" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "fd $fd" "$T/err" && grep -qi socket "$T/err"; then
    pass checkpoint_refuses_socket
else
    fail checkpoint_refuses_socket "rc=$rc, expected 1 and a message naming fd $fd as a socket"
fi
[ "$(md5sum <"$T/existing.img")" = "$before" ] && pass existing_image_untouched ||
    fail existing_image_untouched "the old file at the output path changed"
ls "$T"/.existing.img.tmp.* >/dev/null 2>&1 && fail no_temp_left "temporary image left behind" ||
    pass no_temp_left
t1=$(grep -c tick "$T/sock.log")
sleep 1.2
t2=$(grep -c tick "$T/sock.log")
if alive "$pid" && [ "$t2" -gt "$t1" ]; then
    pass refused_process_keeps_running
else
    fail refused_process_keeps_running "process stopped making progress ($t1 -> $t2 ticks)"
fi
kill "$pid" 2>/dev/null

cat >"$T/epoll.py" <<'EOF'
import ctypes, time
params = ctypes.create_string_buffer(120)
fd = ctypes.CDLL(None, use_errno=True).syscall(425, 4, params)  # io_uring_setup
print("READY fd", fd, flush=True)
while True:
    time.sleep(0.05)
EOF
start epoll python3 "$T/epoll.py"
fd=$(awk '/READY fd/ {print $3; exit}' "$T/epoll.log")
"$C" checkpoint "$pid" -o "$T/epoll.img" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "fd $fd" "$T/err" && grep -qi io_uring "$T/err" && alive "$pid"; then
    pass checkpoint_refuses_io_uring
else
    fail checkpoint_refuses_io_uring "rc=$rc: $(cat "$T/err")"
fi
[ -e "$T/epoll.img" ] && fail no_image_on_refusal "an image was written" || pass no_image_on_refusal
kill "$pid" 2>/dev/null

# A thread that blocks the checkpoint signal with a raw syscall (as Go's
# runtime does) cannot be parked: the checkpoint fails naming it, fast (the
# shim sees the signal pending and blocked in /proc, well before the 5 s
# quiesce timeout, which stays for threads stuck in the kernel), and the
# process goes on.
cat >"$T/rawmask.py" <<'EOF2'
import ctypes, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def blocker():
    libc.prctl(15, b"rawblocker", 0, 0, 0)   # PR_SET_NAME
    mask = ctypes.c_uint64(0xFFFFFFFFFFFFFFFF)
    libc.syscall(14, 0, ctypes.byref(mask), None, 8)  # rt_sigprocmask(SIG_BLOCK)
    while True:
        time.sleep(0.05)
threading.Thread(target=blocker, daemon=True).start()
time.sleep(0.3)
print("READY", flush=True)
n = 0
while True:
    n += 1
    time.sleep(0.05)
    if n % 10 == 0:
        print("tick", n, flush=True)
EOF2
start rawmask python3 "$T/rawmask.py"
t0=$(date +%s%N)
timeout 30 "$C" checkpoint "$pid" -o "$T/rawmask.img" >"$T/out" 2>"$T/err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
t1=$(grep -c tick "$T/rawmask.log")
sleep 1.2
t2=$(grep -c tick "$T/rawmask.log")
if [ $rc -eq 1 ] && grep -q "rawblocker" "$T/err" && grep -qi "did not stop" "$T/err" &&
    [ "$t2" -gt "$t1" ] && [ ! -e "$T/rawmask.img" ] && [ "$ms" -lt 3000 ]; then
    pass checkpoint_refuses_unstoppable_thread
else
    fail checkpoint_refuses_unstoppable_thread "rc=$rc ticks $t1 -> $t2, refused after $ms ms (under 3000 expected): $(head -c 300 "$T/err")"
fi
kill "$pid" 2>/dev/null

# TCP bytes ckshim cannot read without changing the program: a client of
# the program waiting in its listener's accept queue that was sent bytes
# (only accept() could read them), and bytes still in a sender's queue
# because the receiving end of an in-process connection is full.
cat >"$T/tcpq.py" <<EOF
import socket, sys, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(4)
c = socket.create_connection(l.getsockname())
if sys.argv[1] == "pending":
    c.send(b"x" * 100)
else:
    s, _ = l.accept()
    c.setblocking(False)
    try:
        while True:
            c.send(b"y" * 65536)
    except BlockingIOError:
        pass
$PY_TICKS
EOF
for kind in pending full; do
    (cd "$T" && exec env LD_PRELOAD="$SHIM" python3 "$T/tcpq.py" $kind >"$T/tcp$kind.log" 2>&1) &
    pid=$!
    disown "$pid" 2>/dev/null
    PIDS+=("$pid")
    wait_ready "$T/tcp$kind.log"
    case $kind in
        pending) pat="fd [0-9]+: the TCP connection 127.0.0.1:[0-9]+ -> 127.0.0.1:[0-9]+ waits in the accept queue of fd [0-9]+ and was sent 100 bytes" ;;
        full) pat="fd [0-9]+: [0-9]+ bytes written to the TCP connection .* have not reached fd [0-9]+ [(]its receive buffer is full[)]" ;;
    esac
    refused_alive "checkpoint_refuses_tcp_$kind" "tcp$kind" "$pat"
    kill "$pid" 2>/dev/null
done

# Other protocols of IPv4/IPv6 are refused by name: MPTCP (an ordinary
# user may make one; raw and ICMP sockets need privileges here).
cat >"$T/mptcp.py" <<EOF
import socket, time
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)  # IPPROTO_MPTCP
except OSError:
    s = None
    print("NO_MPTCP", flush=True)
$PY_TICKS
EOF
(cd "$T" && exec env LD_PRELOAD="$SHIM" python3 "$T/mptcp.py" >"$T/mptcp.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
wait_ready "$T/mptcp.log"
if grep -q NO_MPTCP "$T/mptcp.log"; then
    echo "SKIP checkpoint_refuses_mptcp: this kernel has no MPTCP"
else
    refused_alive checkpoint_refuses_mptcp mptcp \
        "fd [0-9]+ is an inet socket \(stream, protocol 262; socket:\[[0-9]+\]\), which ckshim cannot restore"
fi
kill "$pid" 2>/dev/null

# A listener's port that another socket holds at restore (here: the
# program itself, still running after a checkpoint without --kill): the
# restore is refused before anything changes.
cat >"$T/tcpl.py" <<EOF
import socket, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(4)
$PY_TICKS
EOF
(cd "$T" && exec env LD_PRELOAD="$SHIM" python3 "$T/tcpl.py" >"$T/tcpl.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
wait_ready "$T/tcpl.log"
if "$C" checkpoint "$pid" -o "$T/tcpl.img" >"$T/out" 2>"$T/err"; then
    restore_refused restore_refuses_taken_listener_port "$T/tcpl.img" \
        "fd [0-9]+: the program listened on TCP 127.0.0.1:[0-9]+, which another socket has now"
else
    fail restore_refuses_taken_listener_port "the checkpoint failed"
fi
kill "$pid" 2>/dev/null

# ---- an image over the program's own output ------------------------------
# -o naming the file the program writes its output to (or -o - into it):
# the image would replace it (and the image could not be restored, its
# stdout gone). Refused with --kill too; the program and its file stay.
cat >"$T/outp.py" <<'EOF'
import time
print("READY", flush=True)
while True:
    print("tick", flush=True)
    time.sleep(0.1)
EOF
start outp python3 "$T/outp.py"
"$C" checkpoint "$pid" -o "$T/outp.log" --kill >"$T/out" 2>"$T/err"
rc1=$?
grep -q "is open in process $pid (fd 1): the image would replace a file of the program" "$T/err"
m1=$?
"$C" checkpoint "$pid" -o - --kill >>"$T/outp.log" 2>"$T/err"
rc2=$?
if [ $rc1 -eq 1 ] && [ $m1 -eq 0 ] && [ $rc2 -eq 1 ] &&
    grep -q "standard output is open in process $pid (fd 1): the image would be written into" "$T/err" &&
    alive "$pid" && [ "$(head -n 1 "$T/outp.log")" = READY ] && ! grep -qa CKSH "$T/outp.log"; then
    pass checkpoint_refuses_image_over_program_output
else
    fail checkpoint_refuses_image_over_program_output "rc $rc1 $rc2, $(head -c 60 "$T/outp.log")"
fi
kill -9 "$pid" 2>/dev/null

# ---- a good image to damage ----------------------------------------------

cat >"$T/count.py" <<'EOF'
import time
n = 0
print("READY", flush=True)
while True:
    n += 1
    print("n", n, flush=True)
    time.sleep(0.1)
EOF
start count python3 "$T/count.py"
if ! "$C" checkpoint "$pid" -o "$T/good.img" --kill >"$T/out" 2>"$T/err"; then
    fail good_image "checkpoint failed"
fi
size=$(stat -c %s "$T/good.img" 2>/dev/null || echo 0)

# restore_must_fail NAME FILE PATTERN: coord restore FILE exits 1 with a
# message matching PATTERN, and starts no process; the program's output
# file (its stdout and stderr, put back before its memory) is left as it
# is (a user appended a line: the restorer's message went there once).
restore_must_fail() {
    local name=$1 file=$2 pat=$3
    local before after sum
    echo "a line of the user's" >>"$T/count.log"
    sum=$(md5sum <"$T/count.log")
    before=$(pgrep -u "$(id -u)" -fc "count.py" || true)
    timeout 30 "$C" restore --detach "$file" >"$T/out" 2>"$T/err"
    local rc=$?
    sleep 0.2
    after=$(pgrep -u "$(id -u)" -fc "count.py" || true)
    if [ $rc -ne 1 ]; then
        fail "$name" "exit code $rc, expected 1"
    elif ! grep -Eqi -- "$pat" "$T/err"; then
        fail "$name" "message does not match /$pat/"
    elif [ "$after" != "$before" ]; then
        fail "$name" "a process was left running"
    elif [ -s "$T/out" ]; then
        fail "$name" "printed a pid"
    elif [ "$(md5sum <"$T/count.log")" != "$sum" ]; then
        fail "$name" "the program's output file changed: $(tail -n 1 "$T/count.log")"
    else
        pass "$name"
    fi
}

restore_must_fail restore_missing_file "$T/nope.img" "no such file"
: >"$T/empty.img"
restore_must_fail restore_empty_file "$T/empty.img" "truncat|empty|not a ckshim image"
restore_must_fail restore_foreign_file /bin/sh "not a ckshim image"
head -c $((size / 2)) "$T/good.img" >"$T/trunc.img"
restore_must_fail restore_truncated "$T/trunc.img" "truncat"
head -c 600 "$T/good.img" >"$T/trunc2.img"
restore_must_fail restore_truncated_early "$T/trunc2.img" "truncat"

flip 100 "$T/good.img" "$T/hdr.img"
restore_must_fail restore_flipped_header "$T/hdr.img" "corrupt|checksum"
flip 700 "$T/good.img" "$T/meta.img"
restore_must_fail restore_flipped_metadata "$T/meta.img" "corrupt|checksum"
flip $((size - 5000)) "$T/good.img" "$T/page.img"
restore_must_fail restore_flipped_pages "$T/page.img" "corrupt|checksum"
flip $((size / 2)) "$T/good.img" "$T/mid.img"
restore_must_fail restore_flipped_middle "$T/mid.img" "corrupt|checksum"

# The good image still restores after all that.
npid=$(timeout 30 "$C" restore --detach "$T/good.img" 2>"$T/err")
if [ -n "$npid" ] && alive "$npid"; then
    PIDS+=("$npid")
    pass restore_good_image
    kill -9 "$npid"
else
    fail restore_good_image "rc=$?"
fi

# ---- a mapped file that changed since the checkpoint ---------------------

cp "$B/tests/progs/clock" "$T/myprog"
(cd "$T" && exec env LD_PRELOAD="$SHIM" CK_GO="$T/go.never" "$T/myprog" >"$T/myprog.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
wait_ready "$T/myprog.log"
"$C" checkpoint "$pid" -o "$T/prog.img" --kill >"$T/out" 2>"$T/err" || fail prog_image "checkpoint failed"
sleep 0.2
echo >>"$T/myprog"
timeout 30 "$C" restore --detach "$T/prog.img" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "myprog" "$T/err" && grep -qi "changed" "$T/err" &&
    ! pgrep -f "$T/myprog" >/dev/null; then
    pass restore_refuses_changed_program
else
    fail restore_refuses_changed_program "rc=$rc"
fi

# ---- /proc of a thread gone ---------------------------------------------

# A /proc file of a process that has exited comes back as the same file of
# another process that has exited (progs/proc_dead), but one of a thread
# of such a process cannot: refused, naming it, and the program goes on.
cat >"$T/deadproc.py" <<'EOF'
import os, signal, threading, time
r, w = os.pipe()
c = os.fork()
if c == 0:
    t = threading.Thread(target=lambda: time.sleep(600), daemon=True)
    t.start()
    os.write(w, b"%d" % t.native_id)
    while True:
        time.sleep(1)
tid = int(os.read(r, 32))
fd = os.open("/proc/%d/task/%d/status" % (c, tid), os.O_RDONLY)
os.kill(c, signal.SIGKILL)
os.waitpid(c, 0)
print("READY", fd, flush=True)
time.sleep(600)
EOF
start deadproc python3 "$T/deadproc.py"
fd=$(awk '/READY/ {print $2; exit}' "$T/deadproc.log")
"$C" checkpoint "$pid" -o "$T/dead.img" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && kill -0 "$pid" && [ ! -e "$T/dead.img" ] &&
    grep -q "fd $fd is /proc/.*/task/.*/status, a /proc file of a thread or process that has exited" "$T/err"; then
    pass checkpoint_refuses_dead_thread_proc_file
else
    fail checkpoint_refuses_dead_thread_proc_file "rc=$rc: $(cat "$T/err")"
fi

# A session leader's controlling terminal that is a pseudo-terminal it
# opened is given back only in a session of its own (--detach).
start ctty env CK_GO="$T/go.never" "$B/tests/progs/pty_ctty"
"$C" checkpoint "$pid" -o "$T/ctty.img" --kill >"$T/out" 2>"$T/err" || fail ctty_image "checkpoint failed"
sleep 0.2
timeout 30 "$C" restore "$T/ctty.img" </dev/null >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "only a restore with --detach" "$T/err" &&
    ! pgrep -f "$B/tests/progs/pty_ctty" >/dev/null; then
    pass restore_ctty_needs_detach
else
    fail restore_ctty_needs_detach "rc=$rc: $(cat "$T/err")"
fi

# ---- seccomp filters -----------------------------------------------------

# A seccomp filter the program installed itself cannot be read back and
# installed again: refused, naming it. One the program inherited (its
# environment's) is not its own: the checkpoint goes on.
cat >"$T/seccomp_lib.py" <<'EOF'
import ctypes
class Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]
def allow_all():
    libc = ctypes.CDLL(None, use_errno=True)
    f = (Filter * 1)(Filter(0x06, 0, 0, 0x7fff0000))  # BPF_RET|BPF_K, SECCOMP_RET_ALLOW
    prog = Prog(1, f)
    assert libc.prctl(38, 1, 0, 0, 0) == 0                    # PR_SET_NO_NEW_PRIVS
    assert libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0   # PR_SET_SECCOMP, FILTER
EOF
cat >"$T/seccomp_own.py" <<EOF
import sys, time
sys.path.insert(0, "$T")
import seccomp_lib
seccomp_lib.allow_all()
$PY_TICKS
EOF
start_py_app seccomp_own "$T/seccomp_own.py"
refused_alive checkpoint_refuses_own_seccomp seccomp_own \
    "the program installed a seccomp filter \(Seccomp_filters: 1 in /proc/self/status\), which ckshim cannot restore"
kill "$pid" 2>/dev/null

# An O_PATH descriptor of a socket file is no socket: named as what it is
# (it was called "a socket of address family -1").
cat >"$T/opath_sock.py" <<EOF
import os, socket, time
s = socket.socket(socket.AF_UNIX)
s.bind("$T/opath.sock")
s.close()
fd = os.open("$T/opath.sock", os.O_PATH)
$PY_TICKS
EOF
start_py_app opath_sock "$T/opath_sock.py"
refused_alive checkpoint_refuses_opath_socket_file opath_sock \
    "fd [0-9]+ is an O_PATH descriptor of the socket file $T/opath.sock \(not a socket\)"
kill "$pid" 2>/dev/null
cat >"$T/seccomp_env.py" <<EOF
import os, sys
sys.path.insert(0, "$T")
import seccomp_lib
seccomp_lib.allow_all()
os.environ["LD_PRELOAD"] = "$SHIM"
os.execv(sys.executable, [sys.executable, "$T/stopped.py"])
EOF
cat >"$T/stopped.py" <<EOF
import time
$PY_TICKS
EOF
(cd "$T" && exec env CKSHIM_APP_ID=seccomp_env python3 "$T/seccomp_env.py" \
    >"$T/seccomp_env.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
wait_for 10 grep -q READY "$T/seccomp_env.log"
if "$C" checkpoint "$pid" -o "$T/seccomp_env.img" --kill >"$T/out" 2>"$T/err"; then
    restore_ok checkpoint_keeps_inherited_seccomp "$T/seccomp_env.img"
else
    fail checkpoint_keeps_inherited_seccomp "checkpoint refused"
fi

# ---- a stopped process ---------------------------------------------------

# A stopped process cannot answer coord list (its shim's manager is
# stopped too): list does not wait on it but lists it as stopped, with
# what /proc says, and the program goes on once continued. (A checkpoint
# of it: test_stopped.sh.)
start_py_app stopped "$T/stopped.py"
kill -STOP "$pid"
wait_for 5 grep -q '^State:.*T' "/proc/$pid/status"
t0=$(date +%s%N)
timeout 20 "$C" list >"$T/out" 2>"$T/err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ $rc -eq 0 ] && [ "$ms" -lt 3000 ] &&
    grep -Eq "^$pid +- +1 +- +- +\(stopped\) +.*python3" "$T/out" &&
    timeout 20 "$C" list --json | python3 -c '
import json, sys
p = [x for x in json.load(sys.stdin)["processes"] if x["pid"] == int(sys.argv[1])]
sys.exit(0 if p and p[0]["stopped"] and "app_id" not in p[0] else 1)' "$pid"; then
    pass list_shows_stopped
else
    fail list_shows_stopped "rc=$rc after $ms ms: $(cat "$T/out")"
fi
kill -CONT "$pid"
t1=$(grep -c tick "$T/stopped.log")
sleep 1
t2=$(grep -c tick "$T/stopped.log")
[ "$t2" -gt "$t1" ] && pass stopped_goes_on_after_cont || fail stopped_goes_on_after_cont "ticks $t1 -> $t2"
kill "$pid" 2>/dev/null

# ---- limits the restore would run into ----------------------------------

# A descriptor so high that a restore would need a descriptor limit above
# the hard RLIMIT_NOFILE (ck_nofile_need): refused at checkpoint, naming the
# fd and the limit; the program goes on.
cat >"$T/hifd.py" <<EOF
import os, resource, time
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
os.dup2(1, 254)
$PY_TICKS
EOF
start_py_app hifd "$T/hifd.py"
refused_alive checkpoint_refuses_fd_near_hard_nofile hifd \
    "fd 254: .*descriptor limit of at least [0-9]+.*hard RLIMIT_NOFILE 256"
kill "$pid" 2>/dev/null


# RLIMIT_NPROC: the restorer creates the threads after the counter gate, so
# a limit too low for them is refused before anything changes, and the
# image still restores afterwards. (Root is exempt from the limit.)
if [ "$(id -u)" != 0 ]; then
    cat >"$T/threads.py" <<EOF
import threading, time
for i in range(40):
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
$PY_TICKS
EOF
    start_py_app nproc "$T/threads.py"
    "$C" checkpoint "$pid" -o "$T/nproc.img" --kill >"$T/out" 2>"$T/err" ||
        fail nproc_image "checkpoint failed"
    sleep 0.3
    k=$(ps -L -u "$(id -u)" --no-headers | wc -l)
    (ulimit -u $((k + 15)) && restore_refused restore_refuses_low_nproc "$T/nproc.img" \
        "RLIMIT_NPROC \(ulimit -u\) is [0-9]+; the program needs 4[0-9] threads")
    restore_ok restore_after_nproc_refusal "$T/nproc.img"
fi

# ---- not under the shim, usage ------------------------------------------

sleep 30 &
PIDS+=($!)
disown $! 2>/dev/null
"$C" checkpoint $! -o "$T/x.img" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && grep -qi "not running under the shim" "$T/err" && pass checkpoint_not_under_shim ||
    fail checkpoint_not_under_shim "rc=$rc"
[ -e "$T/x.img" ] && fail no_image_not_under_shim "an image appeared" || pass no_image_not_under_shim
