#!/bin/bash
# test_unix_sockets.sh - Unix sockets in real programs, and what is refused.
#
#   bash tests/integration/test_unix_sockets.sh BUILD_DIR
#
# - a python3 asyncio program (its event loop holds a socket pair as a
#   self-pipe) with call_later and sleep loops: checkpoint --kill, restore,
#   the loops keep running;
# - an asyncio Unix-socket server and client in one process exchanging
#   messages: they go on exchanging after the restore;
# - a message in flight with descriptors in it (SCM_RIGHTS): a checkpoint
#   without --kill leaves the program with no descriptor more than before;
#   one that cannot be put back (sent to a named datagram socket by a
#   socket that is not its peer) is refused naming the fd, the program
#   goes on, with no descriptor more either;
# - a netlink socket: refused, named;
# - the checkpoint names connections to outside the program (unix_outside);
# - a program whose stdout and stderr are a Unix socket to a process
#   outside (as a service's are to the journal) writes to the restoring
#   coord's own after restore, not into a dead connection;
# - restore refuses, before changing anything, when a socket's path is
#   taken by a file that is not a socket, by a symbolic link (left alone,
#   not followed) or by a socket someone listens on.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-unix.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# ckpt_restore NAME ID: checkpoint $pid --kill into $T/ID.img and restore
# it detached; sets $np (the restored pid) or fails NAME.
ckpt_restore() {
    np=
    if ! "$C" checkpoint "$pid" -o "$T/$2.img" --kill >"$T/out" 2>"$T/err"; then
        fail "$1" "checkpoint failed"
        return 1
    fi
    wait_for 10 gone "$pid"
    np=$(cd "$T" && timeout 30 "$C" restore --detach "$T/$2.img" 2>"$T/err")
    if [ -z "$np" ] || ! alive "$np"; then
        fail "$1" "restore failed"
        return 1
    fi
    PIDS+=("$np")
}

# more_lines NAME PATTERN...: after 1.5 s, $T/NAME.log has more than 2
# more lines matching each PATTERN (and no FAIL) while $np runs.
more_lines() {
    local log="$T/$1.log" p before=() i=0 why=
    shift
    for p in "$@"; do before+=("$(grep -c "$p" "$log")"); done
    sleep 1.5
    for p in "$@"; do
        local now
        now=$(grep -c "$p" "$log")
        [ "$now" -gt $((before[i] + 2)) ] || why+="'$p' lines ${before[i]} -> $now; "
        i=$((i + 1))
    done
    grep -q FAIL "$log" && why+="$(grep FAIL "$log" | head -1)"
    alive "$np" || why+="not running"
    [ -z "$why" ] || { echo "$why"; return 1; }
}

# survives NAME ID PATTERN...: start $T/ID.py, checkpoint --kill and
# restore it; it must go on printing lines matching each PATTERN.
survives() {
    local name=$1 id=$2 why
    shift 2
    start_py_app "$id" "$T/$id.py"
    sleep 0.5
    ckpt_restore "$name" "$id" || return
    why=$(more_lines "$id" "$@") && pass "$name" || fail "$name" "$why"
    kill -9 "$np" 2>/dev/null
}

# ---- asyncio: the loop's self-pipe, timers and sleeps ---------------------
cat >"$T/aloop.py" <<'EOF'
import asyncio
async def sleeper():
    n = 0
    while True:
        n += 1
        await asyncio.sleep(0.05)
        if n % 4 == 0:
            print("sleep", n, flush=True)
def later(loop, n):
    if n % 4 == 0:
        print("later", n, flush=True)
    loop.call_later(0.05, later, loop, n + 1)
async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, later, loop, 1)
    asyncio.create_task(sleeper())
    print("READY", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
EOF
survives asyncio_loop aloop '^sleep' '^later'

# ---- asyncio: a Unix server and its client in one process -----------------
cat >"$T/aserve.py" <<'EOF'
import asyncio, os
async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(b"echo " + line)
        await writer.drain()
async def main():
    path = os.path.join(os.getcwd(), "aserve.sock")
    if os.path.exists(path):
        os.unlink(path)
    server = await asyncio.start_unix_server(handle, path)
    reader, writer = await asyncio.open_unix_connection(path)
    print("READY", flush=True)
    n = 0
    while True:
        n += 1
        writer.write(b"%d\n" % n)
        await writer.drain()
        line = await reader.readline()
        if line != b"echo %d\n" % n:
            print("FAIL: got", line, "for", n, flush=True)
            return
        print("echo", n, flush=True)
        await asyncio.sleep(0.05)
asyncio.run(main())
EOF
survives asyncio_unix_server aserve '^echo'

# ---- descriptors in flight: kept, nothing leaked; refused when they -------
# ---- cannot be put back, nothing leaked either ----------------------------
cat >"$T/rights.py" <<'EOF'
import socket, time, os
a, b = socket.socketpair()
f = os.open("/dev/null", os.O_RDONLY)
socket.send_fds(a, [b"x"], [f])
os.close(f)
EOF
printf '%s\n' "print('READY fd', b.fileno(), flush=True)" "$PY_TICKS" >>"$T/rights.py"
start_py_app rights "$T/rights.py"
# (the shim keeps a pipe of its own from the first checkpoint on: count
# from there)
"$C" checkpoint "$pid" -o "$T/rights0.img" >/dev/null 2>&1
n1=$(ls /proc/"$pid"/fd | wc -l)
"$C" checkpoint "$pid" -o "$T/rights.img" >"$T/err" 2>&1
rc=$?
n2=$(ls /proc/"$pid"/fd | wc -l)
if [ $rc -eq 0 ] && [ "$n1" = "$n2" ] && alive "$pid"; then
    pass scm_rights_no_leak
else
    fail scm_rights_no_leak "rc=$rc, fds $n1 -> $n2: $(tail -n 1 "$T/err")"
fi
kill -9 "$pid"

# a datagram socket that anyone may send to: its messages cannot be sent
# again by the same sender
cat >"$T/rights2.py" <<'EOF'
import socket, time, os, tempfile, array
d = tempfile.mkdtemp()
b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
b.bind(d + "/s")
a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
f = os.open("/dev/null", os.O_RDONLY)
a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [f]))], 0,
          d + "/s")
os.close(f)
EOF
printf '%s\n' "print('READY fd', b.fileno(), flush=True)" "$PY_TICKS" >>"$T/rights2.py"
start_py_app rights2 "$T/rights2.py"
fd=$(awk '/READY fd/ {print $3; exit}' "$T/rights2.log")
"$C" checkpoint "$pid" -o "$T/rights2-0.img" >/dev/null 2>&1
n1=$(ls /proc/"$pid"/fd | wc -l)
refused_alive scm_rights_refused rights2 \
    "fd $fd: .*descriptors in flight \(SCM_RIGHTS\).*not its connected peer"
n2=$(ls /proc/"$pid"/fd | wc -l)
[ "$n1" = "$n2" ] && pass scm_rights_refused_no_leak ||
    fail scm_rights_refused_no_leak "fds $n1 -> $n2"
kill -9 "$pid"

# ---- a netlink socket: refused by name --------------------------------------
printf '%s\n' "import socket, time" \
    "s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)" "$PY_TICKS" >"$T/nl.py"
start_py_app nl "$T/nl.py"
refused_alive netlink_refused nl "fd [0-9]+ is a netlink socket .*which ckshim cannot restore"
kill -9 "$pid"

# ---- connections to outside are named at checkpoint ----------------------------
if start_test_prog unix_outside; then
    "$C" checkpoint "$pid" -o "$T/out.img" >"$T/out" 2>"$T/err"
    if grep -Eq "note: fd [0-9]+ \(unix stream connection to @ckshim-test-out-[0-9]+\).*after restore" "$T/err"; then
        pass outside_connection_named
    else
        fail outside_connection_named "$(cat "$T/err")"
    fi
    # let it end by itself: it stops its helper process
    date +%s >"$T/go"
    wait_for 10 gone "$pid" || kill -9 "$pid"
fi

# ---- stdout and stderr a socket to outside --------------------------------------
cat >"$T/launch.py" <<'EOF'
import socket, subprocess, sys, time
a, b = socket.socketpair()
p = subprocess.Popen(sys.argv[1:], stdout=b, stderr=b)
b.close()
with open(sys.argv[0] + ".got", "wb") as f:
    while True:
        d = a.recv(4096)
        if not d:
            break
        f.write(d)
        f.flush()
EOF
printf '%s\n' "import time" "$PY_TICKS" >"$T/ticks.py"
(cd "$T" && exec env LD_PRELOAD="$SHIM" python3 "$T/launch.py" python3 "$T/ticks.py" \
    </dev/null >/dev/null 2>&1) &
launcher=$!
disown "$launcher" 2>/dev/null
PIDS+=("$launcher")
if wait_for 10 grep -qs READY "$T/launch.py.got"; then
    pid=$(pgrep -P "$launcher" -f ticks.py)
    "$C" checkpoint "$pid" -o "$T/std.img" --kill >"$T/out" 2>"$T/err"
    grep -q "fd 1 (unix stream connection to .*a standard descriptor" "$T/err" &&
        pass std_socket_named || fail std_socket_named
    wait_for 10 gone "$pid"
    (cd "$T" && exec timeout 60 "$C" restore "$T/std.img" >"$T/std.out" 2>&1 </dev/null) &
    np=$!
    PIDS+=("$np")
    if wait_for 10 grep -q tick "$T/std.out" && sleep 0.5 && alive "$np"; then
        pass std_socket_becomes_coords
    else
        fail std_socket_becomes_coords "$(tail -n 3 "$T/std.out")"
    fi
    kill -9 "$np" 2>/dev/null
else
    fail std_socket_named "the program did not start"
fi
kill -9 "$launcher" 2>/dev/null

# ---- restore refuses a socket path that is taken ------------------------------
cat >"$T/bound.py" <<'EOF'
import socket, time, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(os.path.join(os.getcwd(), "bound.sock"))
s.listen(4)
EOF
printf '%s\n' "$PY_TICKS" >>"$T/bound.py"
start_py_app bound "$T/bound.py"
"$C" checkpoint "$pid" -o "$T/bound.img" --kill >"$T/out" 2>"$T/err"
wait_for 10 gone "$pid"
rm -f "$T/bound.sock"
echo keep >"$T/bound.sock"
restore_refused path_taken_by_file "$T/bound.img" "bound.sock again: something that is not a socket is there"
[ "$(cat "$T/bound.sock")" = keep ] && pass path_file_untouched || fail path_file_untouched
rm -f "$T/bound.sock"
echo target >"$T/target"
ln -s "$T/target" "$T/bound.sock"
restore_refused path_taken_by_symlink "$T/bound.img" "bound.sock again: something that is not a socket is there"
[ -L "$T/bound.sock" ] && [ "$(cat "$T/target")" = target ] && pass symlink_untouched ||
    fail symlink_untouched
rm -f "$T/bound.sock"
python3 -c "import socket,time,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); print('up', flush=True); time.sleep(60)" \
    "$T/bound.sock" >"$T/other.log" 2>&1 &
other=$!
disown "$other" 2>/dev/null
PIDS+=("$other")
wait_for 10 grep -q up "$T/other.log"
restore_refused path_in_use "$T/bound.img" "bound.sock again: a socket is bound there"
kill -9 "$other"
wait_for 5 gone "$other"
# now a stale socket file of ours: removed and bound again
restore_ok stale_path_reused "$T/bound.img"
