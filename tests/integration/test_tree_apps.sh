#!/bin/bash
# test_tree_apps.sh - real programs made of several processes that share
# descriptors and memory, checkpointed and restored twice.
#
#   bash tests/integration/test_tree_apps.sh BUILD_DIR
#
# A Python multiprocessing.Pool (pipes, a named semaphore removed at once,
# three forked workers) computing across two checkpoints: the result is
# right, and a counter the workers share under a lock lost no increment.
# A Queue and a worker with the spawn and forkserver methods (named
# semaphores still linked in /dev/shm), answering after each restore. A pre-forking TCP server (the parent listens, three forked
# children accept on the same listener): a client outside the tree gets
# answers after each restore, from the workers. tmux with a shell and a
# foreground job in its pane (a terminal session inside the tree). tini
# (a container's init, a subreaper) with a daemon it adopted, in a
# session whose leader is gone.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-treeapps.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# checkpoint_restore NAME ID: checkpoint $pid (--kill) into $T/ID.img and
# restore it --detach; $pid becomes the restored root.
checkpoint_restore() {
    if ! "$C" checkpoint "$pid" -o "$T/$2.img" --kill >"$T/out" 2>"$T/err"; then
        fail "$1" "checkpoint failed"
        return 1
    fi
    cp "$T/err" "$T/$2.ckpt"
    wait_for 10 gone "$pid"
    local np
    np=$(cd / && timeout 30 "$C" restore --detach "$T/$2.img" 2>"$T/err")
    if [ -z "$np" ] || ! alive "$np"; then
        fail "$1" "restore failed"
        return 1
    fi
    PIDS+=("$np")
    pid=$np
    pass "$1"
}

# ---- multiprocessing.Pool --------------------------------------------------
cat >"$T/pool.py" <<'EOF'
import multiprocessing as mp, time

def init(c):
    global counter
    counter = c

def work(x):
    time.sleep(0.01)
    # a shared counter under its lock (a named semaphore removed at once):
    # if the workers' locks were not one, increments would get lost
    for _ in range(100):
        with counter.get_lock():
            counter.value += 1
    return x * x

if __name__ == "__main__":
    mp.set_start_method("fork")
    counter = mp.Value("l", 0)
    with mp.Pool(3, init, (counter,)) as pool:
        print("READY", flush=True)
        total = n = 0
        for r in pool.imap(work, range(600)):
            total += r
            n += 1
            if n % 50 == 0:
                print("done", n, flush=True)
        print("RESULT", total, total == sum(x * x for x in range(600)), counter.value,
              flush=True)
EOF
if start_py_app pool "$T/pool.py"; then
    wait_for 10 grep -q "done 50" "$T/pool.log"
    if checkpoint_restore tree_pool_restored_1 pool1; then
        grep -q "process tree of 4 processes" "$T/pool1.ckpt" && pass tree_pool_is_4_processes ||
            fail tree_pool_is_4_processes "$(cat "$T/pool1.ckpt")"
        sleep 0.5
        if checkpoint_restore tree_pool_restored_2 pool2; then
            if wait_for 30 grep -q "^RESULT" "$T/pool.log" &&
                grep -q "^RESULT 71820100 True 60000$" "$T/pool.log"; then
                pass tree_pool_result
            else
                fail tree_pool_result "$(tail -n 3 "$T/pool.log" | tr '\n' ' ')"
            fi
        fi
    fi
else
    fail tree_pool_starts "$(head -3 "$T/pool.log")"
fi

# ---- multiprocessing with the spawn and forkserver start methods --------------
# Their locks are named POSIX semaphores: glibc's sem_open maps a file it
# then links in /dev/shm under the lock's name and unlinks its own, so
# the parent's mapping shows as deleted while the spawned child maps the
# name. Saved as a deleted file, the parent came back with a copy of its
# own and the child died on its first release ("semaphore or lock
# released too many times"). A worker doubles what a Queue brings it,
# restored twice; the answers go on in order.
cat >"$T/mpq.py" <<'EOF'
import multiprocessing as mp, sys, time
def worker(q, out):
    while True:
        x = q.get()
        out.put(x * 2)
if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    q, out = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=worker, args=(q, out))
    p.start()
    i = 0
    while True:
        i += 1
        q.put(i)
        got = out.get(timeout=20)
        print("got", got, got == 2 * i, flush=True)
        if i == 3:
            print("READY", flush=True)
        time.sleep(0.1)
EOF
# answers_above LOG N: more than N "got" lines in LOG.
answers_above() { [ "$(grep -c "^got" "$1")" -gt "$2" ]; }
for method in spawn forkserver; do
    (cd "$T" && exec env LD_PRELOAD="$SHIM" CKSHIM_APP_ID="mp-$method" python3 "$T/mpq.py" \
        "$method" >"$T/mp-$method.log" 2>&1) &
    pid=$!
    disown "$pid" 2>/dev/null
    PIDS+=("$pid")
    if ! wait_for 20 grep -q READY "$T/mp-$method.log"; then
        fail "mp_${method}_starts" "$(tail -n 3 "$T/mp-$method.log")"
        continue
    fi
    ok=1
    for round in 1 2; do
        checkpoint_restore "mp_${method}_restored_$round" "mp-$method$round" || { ok=0; break; }
        n=$(grep -c "^got" "$T/mp-$method.log")
        if wait_for 10 answers_above "$T/mp-$method.log" $((n + 3)) &&
            ! grep -q "False\|Error" "$T/mp-$method.log"; then
            pass "mp_${method}_queue_goes_on_$round"
        else
            ok=0
            fail "mp_${method}_queue_goes_on_$round" "$(tail -n 3 "$T/mp-$method.log" | tr '\n' ' ')"
            break
        fi
    done
    kill -9 "$pid" $(ck_descendants "$pid") 2>/dev/null
done

# ---- a pre-forking server -----------------------------------------------------
PORT=$((21000 + RANDOM % 9000))
cat >"$T/server.py" <<EOF
import os, socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", $PORT))
s.listen(16)
for i in range(3):
    if os.fork() == 0:
        while True:
            c, _ = s.accept()
            q = c.recv(100)
            c.sendall(b"worker %d: %s" % (i, q))
            c.close()
print("READY", flush=True)
while True:
    time.sleep(0.1)
EOF
cat >"$T/client.py" <<EOF
import socket, sys
got = set()
for q in range(6):
    c = socket.create_connection(("127.0.0.1", $PORT), timeout=5)
    c.sendall(b"q%d" % q)
    a = c.recv(100).decode()
    assert a.endswith(": q%d" % q), a
    got.add(a.split(":")[0])
print(" ".join(sorted(got)))
EOF
# ask NAME: six questions, answered by the workers
ask() {
    local a
    if a=$(timeout 20 python3 "$T/client.py" 2>&1) && [[ $a == worker* ]]; then
        pass "$1"
    else
        fail "$1" "$a"
    fi
}
if start_py_app server "$T/server.py"; then
    ask tree_server_answers
    if checkpoint_restore tree_server_restored_1 server1; then
        ask tree_server_answers_after_restore_1
        if checkpoint_restore tree_server_restored_2 server2; then
            ask tree_server_answers_after_restore_2
        fi
    fi
else
    fail tree_server_starts "$(head -3 "$T/server.log")"
fi

# ---- tmux: a terminal multiplexer, a shell in it, a foreground job -------
# The server (the tree's root, a daemon) holds the pane's pseudo-terminal
# master; bash leads the pane's session with the slave as its controlling
# terminal and runs `cat` in a job of its own, in the foreground. After
# each restore a new tmux client talks to the restored server: the pane
# shows what it showed, `cat` echoes a line typed now, ^C ends it (the
# terminal's foreground group), and bash still has its variable.
if command -v tmux >/dev/null; then
    TS="$T/tmux.sock"
    tm() { timeout 10 env TERM=xterm tmux -S "$TS" "$@"; }
    pane_has() { tm capture-pane -p | grep -q -- "$1"; }
    # pane_waits TEXT: until the pane shows TEXT (5 s)
    pane_waits() { wait_for 5 pane_has "$1"; }
    LD_PRELOAD="$SHIM" TERM=xterm timeout 10 tmux -S "$TS" -f /dev/null new-session -d -x 80 \
        -y 24 "env PS1='ck> ' bash --norc --noprofile -i" 2>"$T/err"
    if wait_for 5 tm has-session && pane_waits '^ck>' && tm send-keys 'X=42; cat' Enter &&
        sleep 0.3 && tm send-keys 'line-before' Enter && pane_waits 'line-before'; then
        pid=$(tm display -p '#{pid}')
        PIDS+=("$pid")
        for round in 1 2; do
            checkpoint_restore "tmux_restored_$round" "tmux$round" || break
            if pane_has 'line-before' && tm send-keys "line-after-$round" Enter &&
                pane_waits "^line-after-$round" && [ "$(tm capture-pane -p |
                    grep -c "^line-after-$round")" = 2 ]; then
                pass "tmux_pane_and_job_after_restore_$round"
            else
                fail "tmux_pane_and_job_after_restore_$round" "$(tm capture-pane -p | tr '\n' '|')"
            fi
            if [ "$round" = 2 ] && tm send-keys C-c && sleep 0.3 &&
                tm send-keys 'echo X=$((X+1))' Enter && pane_waits '^X=43'; then
                pass tmux_job_interrupted_shell_kept_its_variable
            elif [ "$round" = 2 ]; then
                fail tmux_job_interrupted_shell_kept_its_variable "$(tm capture-pane -p | tr '\n' '|')"
            fi
        done
        tm kill-server 2>/dev/null
    else
        fail tmux_starts "$(cat "$T/err") $(tm capture-pane -p 2>&1 | tr '\n' '|')"
    fi
else
    echo "SKIP tmux: not installed (bash scripts/install-deps.sh)"
fi

# ---- tini: a container's init (a subreaper) and a daemon -------------------
# tini -s starts a Python program that daemonizes the classic way: a child
# calls setsid(), forks the daemon and exits, so the daemon is adopted by
# tini, in a session and group whose leader is gone. The restore makes
# that session again with a helper (setsid, then clone with CLONE_PARENT):
# the daemon is tini's child again, its session the one it knows, and it
# goes on counting. Checkpointed and restored twice.
if command -v tini >/dev/null; then
    cat >"$T/tinid.py" <<'PYEOF'
import os, sys, time
out = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while os.getppid() == os.getpgrp():  # until tini adopts it
            time.sleep(0.01)
        n = 0
        while True:
            n += 1
            with open(out + ".tmp", "w") as f:
                f.write("%d %d %d %d\n" % (n, os.getsid(0), os.getpgrp(), os.getppid()))
            os.rename(out + ".tmp", out)
            time.sleep(0.05)
    os._exit(0)
os.wait()
time.sleep(0.3)
print("READY", flush=True)
while True:
    time.sleep(1)
PYEOF
    (cd "$T" && exec env LD_PRELOAD="$SHIM" CKSHIM_APP_ID=tini tini -s -- python3 "$T/tinid.py" \
        "$T/tini.count" >"$T/tini.log" 2>&1) &
    pid=$!
    disown "$pid" 2>/dev/null
    PIDS+=("$pid")
    if wait_for 10 grep -q READY "$T/tini.log" && [ -s "$T/tini.count" ]; then
        tpid=$pid
        read -r _ sid0 pg0 pp0 <"$T/tini.count"
        ok=1
        [ "$pp0" = "$tpid" ] && [ "$sid0" = "$pg0" ] && [ "$sid0" != "$(cut -d' ' -f6 /proc/$tpid/stat)" ] ||
            { ok=0; fail tini_daemon_adopted "daemon: sid $sid0 pgrp $pg0 parent $pp0, tini $tpid"; }
        for round in 1 2; do
            [ $ok = 1 ] || break
            checkpoint_restore "tini_restored_$round" "tini$round" || { ok=0; break; }
            read -r n1 _ <"$T/tini.count"
            sleep 0.5
            read -r n2 sid pg pp <"$T/tini.count"
            if [ "$n2" -gt "$n1" ] && [ "$sid" = "$sid0" ] && [ "$pg" = "$pg0" ] && [ "$pp" = "$pp0" ] &&
                grep -q "process tree of 3 processes" "$T/tini$round.ckpt"; then
                pass "tini_daemon_goes_on_$round"
            else
                ok=0
                fail "tini_daemon_goes_on_$round" "count $n1 -> $n2, ids $sid $pg $pp (were $sid0 $pg0 $pp0): $(cat "$T/tini$round.ckpt")"
            fi
        done
        # the daemon is tini's child in the restored tree too
        d=$(children "$pid" | tr ' ' '\n' | while read -r c; do
            [ -n "$c" ] && [ "$(cut -d' ' -f6 /proc/$c/stat 2>/dev/null)" != "$(cut -d' ' -f6 /proc/$pid/stat)" ] && echo "$c"
        done)
        [ $ok = 1 ] && { [ -n "$d" ] && pass tini_daemon_child_of_tini || fail tini_daemon_child_of_tini "children of $pid: $(children "$pid")"; }
    else
        fail tini_starts "$(head -3 "$T/tini.log")"
    fi
else
    echo "SKIP tini: not installed (bash scripts/install-deps.sh)"
fi
