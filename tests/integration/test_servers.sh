#!/usr/bin/env bash
# test_servers.sh - real servers over TCP on loopback, checkpointed with
# --kill and restored, with clients outside the process.
#
#   bash tests/integration/test_servers.sh BUILD_DIR
#
# Each server is started here (never mocked) on a port the kernel picks or
# a free random one, with a client connected over a kept-alive connection:
#   redis:  redis-server keeps its keys; a client whose connection was cut
#           by the checkpoint reconnects and reads them; the restored server
#           drops the dead connection it held (CLIENT LIST) and serves new
#           clients; checkpointed and restored a second time. During a
#           BGSAVE (a tree: its save child shares the epoll instance
#           that watches the listener it closed), twice: the dump is
#           finished afterwards, whole.
#   http:   python3 -m http.server (HTTP/1.1 keep-alive): the client's
#           connection is dead after restore, it reconnects and its
#           requests are answered, over one connection again.
#   go:     a Go net/http server (tests/integration/go/httpserver.go) keeps
#           its request counter; keep-alive client as above.
#   node:   node with setInterval and an http server: the interval goes on,
#           the server answers after restore.
# A server whose program is not installed is SKIPped. Prints "PASS name" /
# "FAIL name: why" per check. Exit status: 0 if nothing failed.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-servers.XXXXXX) || exit 1
chmod 755 "$T"
export CKSHIM_COUNTER="file:$T/counters"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT
nfail=0
fail_() {
    fail "$@"
    nfail=$((nfail + 1))
}

track() {
    PIDS+=("$1")
    [ -n "${CKSHIM_TEST_PIDFILE:-}" ] && echo "$1" >>"$CKSHIM_TEST_PIDFILE"
    return 0
}

# start NAME CMD...: CMD under the shim in $T, output in $T/NAME.log; $pid.
start() {
    local name=$1
    shift
    (cd "$T" && exec env LD_PRELOAD="$SHIM" "$@" >"$T/$name.log" 2>&1 </dev/null) &
    pid=$!
    disown "$pid" 2>/dev/null
    track "$pid"
}

# cycle NAME: checkpoint $pid --kill, restore --detach; $pid becomes the
# restored process. 1 (after a FAIL line) on failure.
cycle() {
    local name=$1 img="$T/$1.ckpt"
    if ! timeout 60 "$C" checkpoint "$pid" -o "$img" --kill >"$T/$name.ck" 2>&1; then
        fail_ "$name" "checkpoint failed: $(tail -n 2 "$T/$name.ck" | tr '\n' ' ')"
        return 1
    fi
    wait_for 10 gone "$pid"
    local np
    np=$(cd "$T" && timeout 60 "$C" restore "$img" --detach 2>"$T/$name.rs" </dev/null)
    if [ -z "$np" ] || ! alive "$np"; then
        fail_ "$name" "restore failed: $(tail -n 2 "$T/$name.rs" | tr '\n' ' ')"
        return 1
    fi
    track "$np"
    pid=$np
    return 0
}

# The client: a Python program that keeps one connection and answers
# commands on stdin, one line each: "get PATH" (HTTP GET over the kept
# connection; on a dead connection it says "dead", reconnects and asks
# again), "redis CMD..." (one redis command, same rules). Prints one line
# per command: "ok REPLY" or "reconnected REPLY".
cat >"$T/client.py" <<'EOF'
import http.client, socket, sys
kind, port = sys.argv[1], int(sys.argv[2])
conn = None
def connect():
    if kind == "http":
        return http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s.makefile("rwb")
def ask(c, line):
    if kind == "http":
        c.request("GET", line)
        r = c.getresponse()
        body = r.read().decode().strip()
        if r.getheader("Connection", "").lower() == "close" or r.version == 10:
            raise RuntimeError("the server does not keep connections")
        return body.replace("\n", " ")
    args = line.split()
    c.write(("*%d\r\n" % len(args)).encode() + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
    c.flush()
    return reply(c)
def reply(c):
    first = c.readline()
    if not first:
        raise ConnectionError("end of file")
    if first[:1] == b"$":
        n = int(first[1:])
        return "(nil)" if n < 0 else c.read(n + 2)[:-2].decode().replace("\n", " ")
    if first[:1] == b"*":
        return " ".join(reply(c) for _ in range(int(first[1:])))
    return first.decode().strip()
conn = connect()
for line in sys.stdin:
    line = line.split(None, 1)[1].strip()  # "get PATH" / "redis CMD..."
    try:
        out = "ok " + ask(conn, line)
    except (ConnectionError, http.client.HTTPException, OSError) as e:
        conn = connect()
        out = "reconnected " + ask(conn, line)
    print(out, flush=True)
EOF

# client_start KIND PORT: the client, reading from the FIFO $T/cin.
client_start() {
    rm -f "$T/cin" "$T/cout"
    mkfifo "$T/cin"
    (exec python3 "$T/client.py" "$1" "$2" <"$T/cin" >"$T/cout" 2>"$T/cerr") &
    cpid=$!
    track "$cpid"
    exec 7>"$T/cin"
}
answers_beyond() { [ "$(wc -l <"$T/cout")" -gt "$1" ]; }
# ask LINE: send LINE to the client, print its answer (5 s at most).
ask() {
    local n
    n=$(wc -l <"$T/cout")
    echo "$1" >&7
    wait_for 5 answers_beyond "$n"
    sed -n "$((n + 1))p" "$T/cout"
}
client_stop() {
    exec 7>&-
    wait_for 5 gone "$cpid"
}

# ---- redis -------------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
    echo "SKIP redis: redis-server is not installed"
else
    port=$((20000 + RANDOM % 30000))
    start redis redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no
    if ! wait_for 30 grep -q "Ready to accept" "$T/redis.log"; then
        fail_ redis_starts "$(tail -n 3 "$T/redis.log")"
    else
        client_start redis "$port"
        a=$(ask "redis SET greeting hello")
        b=$(ask "redis RPUSH list a b c")
        if cycle redis_restore; then
            c=$(ask "redis GET greeting")
            d=$(ask "redis LRANGE list 0 -1")
            e=$(ask "redis SET after restored")
            if [ "$a" = "ok +OK" ] && [ "$b" = "ok :3" ] && [ "$c" = "reconnected hello" ] &&
                [ "$d" = "ok a b c" ] && [ "$e" = "ok +OK" ]; then
                pass redis_keeps_data_client_reconnects
            else
                fail_ redis_keeps_data_client_reconnects "answers: '$a' '$b' '$c' '$d' '$e'"
            fi
            # the connection of the old client was dead: redis dropped it
            n=$(ask "redis CLIENT LIST" | grep -o 'id=' | wc -l)
            [ "$n" = 1 ] && pass redis_drops_dead_connection ||
                fail_ redis_drops_dead_connection "CLIENT LIST shows $n clients"
            if cycle redis_restore_twice; then
                f=$(ask "redis GET after")
                g=$(ask "redis INCR counter")
                [ "$f" = "reconnected restored" ] && [ "$g" = "ok :1" ] &&
                    pass redis_restored_twice || fail_ redis_restored_twice "answers '$f' '$g'"
            fi
        fi
        client_stop
        kill -9 "$pid" 2>/dev/null
    fi
fi

# ---- redis during a BGSAVE ------------------------------------------------------
# The save child closed the listener its parent keeps; their shared epoll
# instance still watches it. Checkpointed twice while the child writes
# (rdb-key-save-delay slows it): the child finishes the dump after the
# restores, the parent reaps it (saved with success) and the dump holds
# every key.
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    port=$((20000 + RANDOM % 10000))
    mkdir -p "$T/rdb"
    start rdb redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$T/rdb"
    rc() { timeout 10 redis-cli -p "$port" "$@" 2>&1; }
    saved() { rc info persistence | grep -q "rdb_bgsave_in_progress:0"; }
    if wait_for 30 grep -q "Ready to accept" "$T/rdb.log"; then
        for i in $(seq 300); do echo "SET k$i v$i"; done | rc >/dev/null
        rc config set rdb-key-save-delay 20000 >/dev/null
        rc bgsave >/dev/null
        sleep 0.5
        if [ -n "$(children "$pid")" ] && cycle redis_bgsave_restore_1 &&
            [ -n "$(children "$pid")" ] && cycle redis_bgsave_restore_2; then
            pass redis_restored_during_bgsave
            if wait_for 30 saved && rc info persistence | grep -q "rdb_last_bgsave_status:ok" &&
                grep -q "Background saving terminated with success" "$T/rdb.log" &&
                [ "$(rc dbsize)" = 300 ] && [ "$(rc get k123)" = v123 ] && [ -s "$T/rdb/dump.rdb" ] &&
                { ! command -v redis-check-rdb >/dev/null ||
                    redis-check-rdb "$T/rdb/dump.rdb" >/dev/null 2>&1; }; then
                pass redis_bgsave_completes_after_restore
            else
                fail_ redis_bgsave_completes_after_restore "$(rc info persistence | grep bgsave | tr '\n' ' ') $(tail -n 2 "$T/rdb.log")"
            fi
        else
            fail_ redis_restored_during_bgsave "no save child, or a cycle failed"
        fi
        rc shutdown nosave >/dev/null
        kill -9 "$pid" 2>/dev/null
    else
        fail_ redis_bgsave_starts "$(tail -n 3 "$T/rdb.log")"
    fi
fi

# ---- python3 -m http.server, keep-alive client ---------------------------------
mkdir -p "$T/www"
echo "page one" >"$T/www/one.txt"
start http env PYTHONUNBUFFERED=1 python3 -m http.server --bind 127.0.0.1 --protocol HTTP/1.1 \
    --directory "$T/www" 0
if ! wait_for 30 grep -q "Serving HTTP" "$T/http.log"; then
    fail_ http_starts "$(tail -n 3 "$T/http.log")"
else
    port=$(grep -o 'port [0-9]*' "$T/http.log" | head -1 | awk '{print $2}')
    client_start http "$port"
    a=$(ask "get /one.txt")
    b=$(ask "get /one.txt")
    if cycle http_restore; then
        echo "page two" >"$T/www/two.txt"
        c=$(ask "get /two.txt")
        d=$(ask "get /one.txt")
        if [ "$a" = "ok page one" ] && [ "$b" = "ok page one" ] && [ "$c" = "reconnected page two" ] &&
            [ "$d" = "ok page one" ]; then
            pass http_server_keepalive_client_reconnects
        else
            fail_ http_server_keepalive_client_reconnects "answers: '$a' '$b' '$c' '$d' $(cat "$T/cerr")"
        fi
    fi
    client_stop
    kill -9 "$pid" 2>/dev/null
fi

# ---- a Go HTTP server -----------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
    echo "SKIP go_http: go is not installed"
else
    export GOCACHE="$T/gocache" GOPATH="$T/gopath" GOFLAGS=
    if ! (cd "$ROOT/tests/integration/go" &&
        CGO_ENABLED=1 go build -ldflags=-linkmode=external -o "$T/httpserver" httpserver.go) \
        >"$T/gobuild.log" 2>&1; then
        fail_ go_http_build "$(tail -n 3 "$T/gobuild.log")"
    else
        start gohttp "$T/httpserver"
        if ! wait_for 30 grep -q listening "$T/gohttp.log"; then
            fail_ go_http_starts "$(tail -n 3 "$T/gohttp.log")"
        else
            port=$(awk '/listening/ {print $2; exit}' "$T/gohttp.log")
            client_start http "$port"
            a=$(ask "get /count")
            b=$(ask "get /count")
            if cycle go_http_restore; then
                c=$(ask "get /count")
                d=$(ask "get /count")
                if [ "$a" = "ok count 1" ] && [ "$b" = "ok count 2" ] &&
                    [ "$c" = "reconnected count 3" ] && [ "$d" = "ok count 4" ]; then
                    pass go_http_server_keeps_count
                else
                    fail_ go_http_server_keeps_count "answers: '$a' '$b' '$c' '$d'"
                fi
            fi
            client_stop
        fi
        kill -9 "$pid" 2>/dev/null
    fi
fi

# ---- node: setInterval and an http server ----------------------------------------
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP node: node is not installed (Debian: apt-get install nodejs)"
else
    cat >"$T/server.js" <<'EOF'
const http = require('http');
let ticks = 0, hits = 0;
setInterval(() => { ticks++; }, 20);
const s = http.createServer((req, res) => { hits++; res.end(`hits ${hits} ticks ${ticks}\n`); });
s.listen(0, '127.0.0.1', () => console.log('listening', s.address().port));
EOF
    start node node "$T/server.js"
    if ! wait_for 15 grep -q listening "$T/node.log"; then
        fail_ node_starts "$(tail -n 3 "$T/node.log")"
    else
        port=$(awk '/listening/ {print $2; exit}' "$T/node.log")
        client_start http "$port"
        a=$(ask "get /")
        if cycle node_restore; then
            sleep 0.3
            b=$(ask "get /")
            t1=$(echo "$a" | awk '{print $NF}')
            t2=$(echo "$b" | awk '{print $NF}')
            if [[ $a == "ok hits 1 ticks "* ]] && [[ $b == "reconnected hits 2 ticks "* ]] &&
                [ "$t2" -gt "$t1" ]; then
                pass node_interval_and_http_server
            else
                fail_ node_interval_and_http_server "answers: '$a' '$b'"
            fi
        fi
        client_stop
    fi
    kill -9 "$pid" 2>/dev/null
fi

[ $nfail -eq 0 ]
