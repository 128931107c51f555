#!/bin/bash
# test_netrec.sh - coord run --record-net: what a supervised server
# received since its last checkpoint is replayed after an automatic
# restore.
#
#   bash tests/integration/test_netrec.sh BUILD_DIR
#
# A small key-value server (python3, "SET k v" / "GET k", one request per
# line, one reply per line) runs under `coord run --every 2s --auto-restore
# --record-net`. A client sets keys, some after the last checkpoint (it
# waits for an image, then sets them, on several connections in
# interleaved order and on a connection opened before the image), the
# server is killed with -9, the supervisor restores it, and GET of every
# key gives its value. A second crash after more sets, whose replay makes
# the restored server crash once more (the replay is kept and done again),
# loses nothing either. Old journals are removed as images are committed;
# --record-net-max bounds a journal (with a warning); --resume replays
# too; IPv6 and Unix stream connections are replayed; a stream read across
# five kill -9 and restores sees every byte once; without --record-net
# nothing is journaled and nothing replayed.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
C="$B/coord"
T=$(mktemp -d /tmp/ckshim-netrec.XXXXXX)
chmod 755 "$T"
. "$HERE/lib.sh"
trap sv_cleanup EXIT

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

# kv.py ADDR READY: the server on ADDR (HOST:PORT, [::1]:PORT or
# unix:PATH). "BOOM" ends it (exit 3) when $T/arm exists
# (removing it first: one crash), else answers OK.
cat >"$T/kv.py" <<EOF
import os, socket, socketserver, sys, threading
store = {}
lock = threading.Lock()
class H(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            p = line.decode().split()
            if len(p) == 3 and p[0] == "SET":
                with lock:
                    store[p[1]] = p[2]
                out = "OK"
            elif len(p) == 2 and p[0] == "GET":
                with lock:
                    out = store.get(p[1], "NONE")
            elif p == ["BOOM"]:
                if os.path.exists("$T/arm"):
                    os.unlink("$T/arm")
                    os._exit(3)
                out = "OK"
            else:
                out = "ERR"
            self.wfile.write((out + "\n").encode())
a = sys.argv[1]
if a.startswith("unix:"):
    class U(socketserver.ThreadingUnixStreamServer):
        daemon_threads = True
        def handle_error(self, request, client_address):
            pass
    s = U(a[5:], H)
else:
    class S(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        def handle_error(self, request, client_address):
            pass
        address_family = socket.AF_INET6 if a.startswith("[") else socket.AF_INET
    host, _, port = a.rpartition(":")
    s = S((host.strip("[]"), int(port)), H)
open(sys.argv[2], "w").close()
s.serve_forever()
EOF

# kvc.py ADDR STEP...: a client. STEP is N:CMD:ARGS (CMD on connection N,
# opened on first use, kept open; the reply is printed), WAIT:FILE (until
# FILE exists) or TOUCH:FILE.
cat >"$T/kvc.py" <<'EOF'
import os, socket, sys, time
a = sys.argv[1]
def connect():
    if a.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(a[5:])
        return s
    host, _, port = a.rpartition(":")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=20)
conns = {}
for step in sys.argv[2:]:
    kind, _, rest = step.partition(":")
    if kind == "WAIT":
        while not os.path.exists(rest):
            time.sleep(0.02)
        continue
    if kind == "TOUCH":
        open(rest, "w").close()
        continue
    if kind not in conns:
        s = connect()
        conns[kind] = (s, s.makefile("rwb"))
    s, f = conns[kind]
    f.write((rest.replace(":", " ") + "\n").encode())
    f.flush()
    print(f.readline().decode().strip(), flush=True)
EOF

state() { awk -v k="$2" '$1==k{print $2}' "$1/supervise.state" 2>/dev/null; }
state_is() { [ "$(state "$1" "$2")" = "$3" ]; }
seq_above() { [ "$(state "$1" seq)" -gt "$2" ]; }
restored_running() { state_is "$1" restores "$2" && state_is "$1" status running &&
    [ "$(state "$1" program)" != "$3" ] && alive "$(state "$1" program)"; }

PORT=$((20000 + RANDOM % 10000))
ADDR="127.0.0.1:$PORT"

# start_kv DIR NAME [OPTIONS...]: the server under a supervisor (pid in SUP)
start_kv() {
    local d=$1 name=$2
    shift 2
    rm -f "$T/ready"
    (cd "$T" && exec "$C" run --every 2s --images "$d" "$@" \
        -- "$PY" "$T/kv.py" "$ADDR" "$T/ready" >"$T/$name.out" 2>"$T/$name.err") &
    SUP=$!
    PIDS+=("$SUP")
    wait_for 20 test -e "$T/ready"
}

# get_all: GET of each key named in EXPECT (k=v ...) on one connection;
# prints the mismatches.
get_all() {
    local kv args=() want=() got i=0
    for kv in $EXPECT; do
        args+=("0:GET:${kv%%=*}")
        want+=("${kv#*=}")
    done
    while read -r got; do
        [ "$got" = "${want[$i]}" ] || echo "${args[$i]#0:GET:}=$got (want ${want[$i]})"
        i=$((i + 1))
    done < <(timeout 30 "$PY" "$T/kvc.py" "$ADDR" "${args[@]}" 2>&1)
    [ $i -eq ${#want[@]} ] || echo "only $i replies"
}

# ---- sets after the last checkpoint survive kill -9 ----
D="$T/img"
start_kv "$D" sup1 --auto-restore --record-net
wait_for 20 seq_above "$D" 0
s0=$(state "$D" seq)
# before the image: k1..k3 and l1 on a connection (5) that stays open;
# after it: l2 on that connection, and interleaved sets on 0, 1, 2
"$PY" "$T/kvc.py" "$ADDR" 0:SET:k1:v1 0:SET:k2:v2 0:SET:x:early 5:SET:l1:one \
    TOUCH:"$T/before" WAIT:"$T/go1" \
    5:SET:l2:two 0:SET:k4:v4 1:SET:k5:v5 0:SET:x:A 1:SET:x:B 2:SET:x:C 0:SET:k6:v6 \
    2:SET:k7:v7 1:SET:x:D 0:SET:x:E 2:SET:x:F TOUCH:"$T/done1" >"$T/c1.out" 2>&1 &
PIDS+=($!)
wait_for 10 test -e "$T/before"
wait_for 10 seq_above "$D" "$s0"
s1=$(state "$D" seq)
touch "$T/go1"
wait_for 10 test -e "$T/done1"
prog=$(state "$D" program)
s1b=$(state "$D" seq)
kill -9 "$prog"
if wait_for 30 restored_running "$D" 1 "$prog"; then
    EXPECT="k1=v1 k2=v2 l1=one l2=two k4=v4 k5=v5 k6=v6 k7=v7"
    bad=$(get_all)
    if [ -z "$bad" ] && grep -q 'record-net: replayed' "$T/sup1.err"; then
        pass netrec_replay_after_restore
    elif [ "$s1b" != "$s1" ]; then
        fail netrec_replay_after_restore "a checkpoint came between the sets and the kill (machine too slow?): $bad"
    else
        fail netrec_replay_after_restore "$bad; $(grep -v 'checkpoint [0-9]* ->\|note:' "$T/sup1.err" | tail -3)"
    fi
    EXPECT="x=F"
    bad=$(get_all)
    if [ -z "$bad" ]; then
        pass netrec_interleaved_connections
    else
        fail netrec_interleaved_connections "$bad"
    fi
else
    fail netrec_replay_after_restore "not restored: $(grep -v 'checkpoint [0-9]* ->\|note:' "$T/sup1.err" | tail -3)"
fi

# ---- a second crash; its replay makes the server crash once more ----
s2=$(state "$D" seq)
wait_for 10 seq_above "$D" "$s2"
prog=$(state "$D" program)
s2=$(state "$D" seq)
"$PY" "$T/kvc.py" "$ADDR" 0:SET:k8:v8 0:BOOM 1:SET:k9:v9 0:SET:x:G >"$T/c2.out" 2>&1
touch "$T/arm"
s2b=$(state "$D" seq)
kill -9 "$prog"
if wait_for 40 restored_running "$D" 3 "$prog"; then
    EXPECT="k1=v1 k2=v2 l1=one l2=two k4=v4 k5=v5 k6=v6 k7=v7 k8=v8 k9=v9 x=G"
    bad=$(get_all)
    # the program ended during the replay, or once it was over but before
    # the checkpoint after it (a multi-threaded program's exit status may
    # come late): either way the journals are kept and replayed again
    if [ -z "$bad" ] && [ ! -e "$T/arm" ] &&
        grep -q 'ended during the replay\|checkpoint after the replay failed' "$T/sup1.err"; then
        pass netrec_second_crash_replay_kept
    elif [ "$s2b" != "$s2" ]; then
        fail netrec_second_crash_replay_kept "a checkpoint came between the sets and the kill"
    else
        fail netrec_second_crash_replay_kept "$bad; $(grep -v 'checkpoint [0-9]* ->\|note:' "$T/sup1.err" | tail -4)"
    fi
else
    fail netrec_second_crash_replay_kept "restores=$(state "$D" restores): $(grep -v 'checkpoint [0-9]* ->\|note:' "$T/sup1.err" | tail -4)"
fi

# ---- old journals go as images are committed ----
s3=$(state "$D" seq)
wait_for 10 seq_above "$D" $((s3 + 1))
nj=$(ls "$D" | grep -c '^net-.*\.journal$')
nr=$(ls "$D" | grep -c '^replay-')
if [ "$nj" -le 2 ] && [ "$nr" -eq 0 ] && [ ! -e "$D/net.replay" ]; then
    pass netrec_journals_pruned
else
    fail netrec_journals_pruned "$(ls "$D" | tr '\n' ' ')"
fi
stop_supervisor "$SUP"

# ---- --record-net-max bounds a journal ----
D2="$T/img2"
PORT=$((PORT + 1))
ADDR="127.0.0.1:$PORT"
if start_kv "$D2" sup2 --auto-restore --record-net --record-net-max 4K; then
    wait_for 20 seq_above "$D2" 0
    s=$(state "$D2" seq)
    wait_for 10 seq_above "$D2" "$s"
    steps=()
    for i in $(seq 1 200); do steps+=("0:SET:big$i:$(printf '%040d' "$i")"); done
    "$PY" "$T/kvc.py" "$ADDR" "${steps[@]}" >/dev/null 2>&1
    biggest=$(stat -c %s "$D2"/net-*.journal 2>/dev/null | sort -n | tail -1)
    prog=$(state "$D2" program)
    kill -9 "$prog"
    wait_for 30 restored_running "$D2" 1 "$prog"
    if [ -n "$biggest" ] && [ "$biggest" -le 4096 ] &&
        grep -q 'record-net: the journal of checkpoint .* reached 4096 bytes' "$T/sup2.err" &&
        grep -q 'was full' "$T/sup2.err"; then
        pass netrec_journal_bounded
    else
        fail netrec_journal_bounded "biggest journal ${biggest:-none}: $(grep -i 'full\|reached' "$T/sup2.err" | head -2)"
    fi
    stop_supervisor "$SUP"
else
    fail netrec_journal_bounded "the server did not start"
fi

# ---- --resume replays too (the supervisor and the server were both
# killed: a rebooted machine, a requeued job) ----
D8="$T/img8"
PORT=$((PORT + 1))
ADDR="127.0.0.1:$PORT"
if start_kv "$D8" sup8 --auto-restore --record-net; then
    wait_for 20 seq_above "$D8" 0
    s=$(state "$D8" seq)
    wait_for 10 seq_above "$D8" "$s"
    "$PY" "$T/kvc.py" "$ADDR" 0:SET:r1:v1 0:SET:r2:v2 >/dev/null 2>&1
    prog=$(state "$D8" program)
    kill -9 "$SUP"
    kill -9 "$prog"
    wait "$SUP" 2>/dev/null
    wait_for 10 gone "$prog"
    (cd "$T" && exec "$C" run --every 2s --images "$D8" --resume --record-net \
        -- "$PY" "$T/kv.py" "$ADDR" "$T/ready" >"$T/sup8b.out" 2>"$T/sup8b.err") &
    SUP=$!
    PIDS+=("$SUP")
    wait_for 30 grep -q 'record-net: replayed' "$T/sup8b.err"
    EXPECT="r1=v1 r2=v2"
    bad=$(get_all)
    if [ -z "$bad" ] && grep -q 'resuming from' "$T/sup8b.err" &&
        grep -q 'record-net: replayed' "$T/sup8b.err"; then
        pass netrec_resume
    else
        fail netrec_resume "$bad; $(grep -v 'checkpoint [0-9]* ->\|note:' "$T/sup8b.err" | tail -3)"
    fi
    stop_supervisor "$SUP"
else
    fail netrec_resume "the server did not start"
fi

# ---- without --record-net: nothing journaled, nothing replayed ----
D3="$T/img3"
PORT=$((PORT + 1))
ADDR="127.0.0.1:$PORT"
export CKSHIM_RECORD_NET="$D3" # even when set outside: only --record-net turns it on
if start_kv "$D3" sup3 --auto-restore; then
    wait_for 20 seq_above "$D3" 0
    s=$(state "$D3" seq)
    "$PY" "$T/kvc.py" "$ADDR" 0:SET:m1:v1 >/dev/null 2>&1
    wait_for 10 seq_above "$D3" "$s"
    "$PY" "$T/kvc.py" "$ADDR" 0:SET:m2:v2 >/dev/null 2>&1
    prog=$(state "$D3" program)
    kill -9 "$prog"
    wait_for 30 restored_running "$D3" 1 "$prog"
    EXPECT="m1=v1 m2=NONE"
    bad=$(get_all)
    if [ -z "$bad" ] && ! ls "$D3" | grep -q '^net-\|^replay-' &&
        ! grep -q 'record-net' "$T/sup3.err"; then
        pass netrec_off_nothing_journaled
    else
        fail netrec_off_nothing_journaled "$bad; $(ls "$D3" | tr '\n' ' ')"
    fi
    stop_supervisor "$SUP"
else
    fail netrec_off_nothing_journaled "the server did not start"
fi
unset CKSHIM_RECORD_NET

# ---- IPv6 and Unix stream connections ----
PORT=$((PORT + 1))
n=0
for ADDR in "[::1]:$PORT" "unix:$T/kv.sock"; do
    n=$((n + 1))
    name=netrec_ipv6
    case $ADDR in unix:*) name=netrec_unix ;; esac
    if [ $name = netrec_ipv6 ] && ! "$PY" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
        echo "SKIP $name: no IPv6 loopback here"
        continue
    fi
    Dn="$T/img6$n"
    if start_kv "$Dn" sup6$n --auto-restore --record-net; then
        wait_for 20 seq_above "$Dn" 0
        s=$(state "$Dn" seq)
        "$PY" "$T/kvc.py" "$ADDR" 0:SET:u1:v1 >/dev/null 2>&1
        wait_for 10 seq_above "$Dn" "$s"
        "$PY" "$T/kvc.py" "$ADDR" 0:SET:u2:v2 1:SET:u3:v3 0:SET:u4:v4 >/dev/null 2>&1
        prog=$(state "$Dn" program)
        kill -9 "$prog"
        wait_for 30 restored_running "$Dn" 1 "$prog"
        EXPECT="u1=v1 u2=v2 u3=v3 u4=v4"
        bad=$(get_all)
        if [ -z "$bad" ] && grep -q 'record-net: replayed' "$T/sup6$n.err"; then
            pass $name
        else
            fail $name "$bad; $(grep -v 'checkpoint [0-9]* ->\|note:' "$T/sup6$n.err" | tail -3)"
        fi
        stop_supervisor "$SUP"
    else
        fail $name "the server did not start: $(tail -3 "$T/sup6$n.err")"
    fi
done

# ---- a stream read while checkpoints come and go: every byte once ----
# stream.py ADDR READY: appends what every connection sends to one global
# stream, which must be "%08d" % 0, 1, 2... in order; a connection that
# starts with Q gets "POS BAD" (bytes so far, mismatches). The client
# sends that stream without pause on one connection. Each kill -9 restores
# an image taken while the server was reading (and maybe holding unread
# bytes in its queue): what it had read comes from the image, what it had
# not from the replay (or its restored queue), and the stream must go on
# without a byte twice or missing.
cat >"$T/stream.py" <<'EOF'
import socketserver, sys, threading
lock = threading.Lock()
st = [0, 0]
def expect(p, n):
    k = p // 8
    s = "".join("%08d" % i for i in range(k, (p + n) // 8 + 1))
    return s[p % 8:p % 8 + n]
class H(socketserver.BaseRequestHandler):
    def handle(self):
        c = self.request
        first = True
        while True:
            d = c.recv(65536)
            if not d:
                return
            if first and d[:1] == b"Q":
                with lock:
                    c.sendall(("%d %d\n" % (st[0], st[1])).encode())
                return
            first = False
            with lock:
                if d.decode() != expect(st[0], len(d)):
                    st[1] += 1
                st[0] += len(d)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    def handle_error(self, request, client_address):
        pass # a connection reset by a kill -9 of the client, or by a restore
host, _, port = sys.argv[1].rpartition(":")
s = S((host, int(port)), H)
open(sys.argv[2], "w").close()
s.serve_forever()
EOF
cat >"$T/streamc.py" <<'EOF'
import socket, sys, time
host, _, port = sys.argv[1].rpartition(":")
def query():
    q = socket.create_connection((host, int(port)), timeout=20)
    q.sendall(b"Q")
    r = q.makefile().readline().split()
    q.close()
    return int(r[0]), int(r[1])
if sys.argv[2] == "query":
    print("%d %d" % query())
    sys.exit(0)
p, _ = query()
s = socket.create_connection((host, int(port)), timeout=20)
k = p // 8
skip = p % 8
try:
    while True:
        chunk = "".join("%08d" % i for i in range(k, k + 512))[skip:].encode()
        skip = 0
        k += 512
        s.sendall(chunk)
        time.sleep(0.0002)
except OSError:
    pass
EOF
D7="$T/img7"
PORT=$((PORT + 1))
ADDR="127.0.0.1:$PORT"
rm -f "$T/ready"
(cd "$T" && exec "$C" run --every 300ms --images "$D7" --auto-restore --record-net \
    --max-restores 20 --window 120s -- "$PY" "$T/stream.py" "$ADDR" "$T/ready" \
    >"$T/sup7.out" 2>"$T/sup7.err") &
SUP=$!
PIDS+=("$SUP")
if wait_for 20 test -e "$T/ready"; then
    why=""
    for i in 1 2 3 4 5; do
        "$PY" "$T/streamc.py" "$ADDR" send >/dev/null 2>&1 &
        cpid=$!
        PIDS+=("$cpid")
        sleep 1.$((RANDOM % 10))
        prog=$(state "$D7" program)
        kill -9 "$prog"
        if ! wait_for 30 restored_running "$D7" "$i" "$prog"; then
            why="restore $i: $(grep -v 'checkpoint [0-9]* ->\|note:' "$T/sup7.err" | tail -3)"
            break
        fi
        wait "$cpid" 2>/dev/null
    done
    res=$("$PY" "$T/streamc.py" "$ADDR" query 2>&1)
    nrep=$(grep -c 'record-net: replayed' "$T/sup7.err")
    if [ -z "$why" ] && [ "${res#* }" = 0 ] && [ "${res%% *}" -gt 100000 ] && [ "$nrep" -ge 3 ]; then
        pass netrec_stream_exact
    else
        fail netrec_stream_exact "${why:-position and mismatches: $res, $nrep replays}"
    fi
    stop_supervisor "$SUP"
else
    fail netrec_stream_exact "the server did not start"
fi

# ---- the mark follows dup(), and a descriptor closed by fclose() (inside
# libc) is forgotten: a file opened later under its number is not
# journaled ----
cat >"$T/fdsrv.py" <<'EOF'
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fdopen.restype = ctypes.c_void_p
libc.fclose.argtypes = [ctypes.c_void_p]
host, _, port = sys.argv[1].rpartition(":")
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((host, int(port)))
ls.listen(4)
open(sys.argv[2], "w").close()
c, _ = ls.accept()
d = libc.dup(c.fileno())
got = os.read(d, 100)                 # through the copy: journaled
c.close()
libc.fclose(libc.fdopen(d, b"r"))     # closes d inside libc
fds = [os.open(sys.argv[3], os.O_RDONLY) for _ in range(4)]
secret = b"".join(os.read(f, 100) for f in fds)   # one of them has d's number
open(sys.argv[4], "w").write("%d %s %s\n" % (d, got.decode().strip(), d in fds))
EOF
echo TOPSECRET >"$T/secret.txt"
D12="$T/img12"
PORT=$((PORT + 1))
rm -f "$T/ready" "$T/fdres"
(cd "$T" && exec "$C" run --every 1h --images "$D12" --auto-restore --record-net \
    -- "$PY" "$T/fdsrv.py" "127.0.0.1:$PORT" "$T/ready" "$T/secret.txt" "$T/fdres" \
    >"$T/sup12.out" 2>"$T/sup12.err") &
SUP=$!
PIDS+=("$SUP")
if wait_for 20 test -e "$T/ready"; then
    "$PY" -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$PORT)); s.sendall(b'VIA-DUP\n'); s.recv(1)" 2>/dev/null
    wait_for 20 test -s "$T/fdres"
    wait_for 20 gone "$SUP"
    res=$(cat "$T/fdres" 2>/dev/null)
    if [ "${res#* }" = "VIA-DUP True" ] && grep -aq VIA-DUP "$D12"/net-*.journal &&
        ! grep -aq TOPSECRET "$D12"/net-*.journal; then
        pass netrec_dup_fclose
    else
        fail netrec_dup_fclose "result '$res'; journal: $(cat "$D12"/net-*.journal 2>/dev/null | tr -c '[:print:]' . | head -c 200)"
    fi
else
    fail netrec_dup_fclose "the server did not start"
fi
kill "$SUP" 2>/dev/null
wait "$SUP" 2>/dev/null

# ---- usage ----
"$C" run --every 1s --images "$T/img4" --record-net -- true 2>"$T/err"
rc1=$?
"$C" run --every 1s --images "$T/img4" --auto-restore --record-net --counter none -- true \
    2>>"$T/err"
rc2=$?
if [ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && grep -q 'needs --auto-restore' "$T/err" &&
    grep -q 'counter none' "$T/err"; then
    pass netrec_usage
else
    fail netrec_usage "rc=$rc1,$rc2"
fi
