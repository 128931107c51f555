# redis_helper.sh - a private redis-server for integration tests (sourced).
#
#   . "$(dirname "${BASH_SOURCE[0]}")/redis_helper.sh"
#   redis_start || { [ $? -eq 2 ] && echo "SKIP redis: redis-server not installed"; ...; }
#   trap redis_stop EXIT      # or call redis_stop from your own cleanup
#   ... --counter "redis://127.0.0.1:$CKTEST_REDIS_PORT" ...
#   redis_stop
#
# redis_start starts redis-server as the current (unprivileged) user, bound to
# 127.0.0.1 on a free port picked at random in 20000-49999, with no
# persistence (--save "" --appendonly no), its working directory and log in
# a fresh temporary directory. It waits (up to 10 s) until
# `redis-cli -p PORT ping` answers PONG (a bash /dev/tcp PING when redis-cli
# is missing), then exports:
#   CKTEST_REDIS_PORT   the port
#   CKTEST_REDIS_PID    the server's pid
#   CKTEST_REDIS_URL    redis://127.0.0.1:PORT
#   CKTEST_REDIS_DIR    its directory (redis.log is there)
# and appends the pid to $CKSHIM_TEST_PIDFILE when tests/run.sh set it, so a
# forgotten server is killed at the end of the run. Returns 0 when the
# server answers, 2 when redis-server is not installed (callers may SKIP), 1
# when it could not be started (the end of its log is printed on stderr).
# Call it directly, not in $(...): the server must be a child of the test's
# shell. Only one server per shell at a time.
#
# redis_stop stops it (SIGTERM, SIGKILL after 5 s), removes its directory
# (kept when CKSHIM_KEEP is set) and unsets the variables. It does nothing
# when no server is running, so it is safe in EXIT traps.

# The redis-server binary, or nothing.
redis__bin() {
    local d
    if command -v redis-server >/dev/null 2>&1; then
        command -v redis-server
        return 0
    fi
    for d in /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do
        if [ -x "$d/redis-server" ]; then
            echo "$d/redis-server"
            return 0
        fi
    done
    return 1
}

# redis__ping PORT: 0 when the server on PORT answers PONG.
redis__ping() {
    local port=$1 reply=""
    if command -v redis-cli >/dev/null 2>&1; then
        reply=$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)
    else
        # shellcheck disable=SC2016
        reply=$(timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
            printf "PING\r\n" >&3
            IFS= read -r line <&3
            printf "%s" "${line#+}"' _ "$port" 2>/dev/null)
    fi
    [ "${reply%$'\r'}" = PONG ]
}

# redis__alive PID: running (a dead child stays a zombie until waited for).
redis__alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ] && [ "${st%% *}" != X ]
}

redis_start() {
    local bin dir port pid
    if [ -n "${CKTEST_REDIS_PID:-}" ] && kill -0 "$CKTEST_REDIS_PID" 2>/dev/null; then
        echo "redis_start: a server is already running (pid $CKTEST_REDIS_PID)" >&2
        return 1
    fi
    bin=$(redis__bin) || return 2
    dir=$(mktemp -d "${TMPDIR:-/tmp}/ckshim-redis.XXXXXX") || return 1
    chmod 700 "$dir"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
        "$bin" --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
            --daemonize no --protected-mode yes --dir "$dir" \
            --logfile "$dir/redis.log" </dev/null >>"$dir/redis.out" 2>&1 &
        pid=$!
        [ -n "${CKSHIM_TEST_PIDFILE:-}" ] && echo "$pid" >>"$CKSHIM_TEST_PIDFILE" 2>/dev/null
        for _ in $(seq 100); do
            if ! redis__alive "$pid"; then
                wait "$pid" 2>/dev/null
                pid=""
                break # died, most likely the port was taken: another port
            fi
            if redis__ping "$port"; then
                export CKTEST_REDIS_PORT=$port CKTEST_REDIS_PID=$pid
                export CKTEST_REDIS_URL="redis://127.0.0.1:$port" CKTEST_REDIS_DIR=$dir
                return 0
            fi
            sleep 0.1
        done
        if [ -n "$pid" ]; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            break # alive but not answering: retrying will not help
        fi
    done
    echo "redis_start: could not start $bin (log $dir/redis.log):" >&2
    tail -n 5 "$dir/redis.log" "$dir/redis.out" 2>/dev/null | sed 's/^/    | /' >&2
    [ -n "${CKSHIM_KEEP:-}" ] || rm -rf "$dir"
    return 1
}

redis_stop() {
    local pid=${CKTEST_REDIS_PID:-}
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do
            redis__alive "$pid" || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    if [ -n "${CKTEST_REDIS_DIR:-}" ] && [ -z "${CKSHIM_KEEP:-}" ]; then
        rm -rf "$CKTEST_REDIS_DIR"
    fi
    unset CKTEST_REDIS_PORT CKTEST_REDIS_PID CKTEST_REDIS_URL CKTEST_REDIS_DIR
    return 0
}
