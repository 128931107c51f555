#!/usr/bin/env bash
# test_go.sh - Go programs (cgo, dynamically linked) under ckshim.
#
#   bash tests/integration/test_go.sh BUILD_DIR
#
# Builds examples/go/person.go and tests/integration/go/notify.go into a
# temporary directory (cgo + external linking, so LD_PRELOAD applies), then:
#   person: runs under the shim, checkpoint --kill, restore --detach, twice;
#     the age goes on from the one printed last, by one a second, with no
#     gap and no repeat (ticker, channels and goroutines all work);
#   notify: os/signal + os/exec. os/signal makes Go block every signal on
#     one thread with a raw rt_sigprocmask, which the seccomp filter
#     (preload/seccomp.c) turns into a mask without the checkpoint signal.
#     Checkpoint --kill, restore --detach: the ticker goes on, SIGUSR1 still
#     reaches signal.Notify and fork/exec works, the filter is back on;
#   notify with CKSHIM_NO_SECCOMP=1: the checkpoint fails naming the thread
#     that blocks the signal, and the program goes on;
#   exectree (os/exec, a child over pipes): refused without --pidns (Go
#     waits for its child by raw syscalls), and under --pidns checkpointed
#     and restored twice with every answer once and cmd.Wait clean; built
#     without runtime/cgo (raw clone threads on Go's own TLS) it is refused
#     naming such a thread, goes on, and still dies of SIGTERM as SIGTERM.
# Prints "PASS name" / "FAIL name: why" per check; "SKIP go: why" and exit
# 0 when go (or a C compiler for cgo) is not installed. Exit status: 0 if
# nothing failed, 1 otherwise.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
C="$B/coord"
PIDFILE=${CKSHIM_TEST_PIDFILE:-}

if ! command -v go >/dev/null 2>&1; then
    echo "SKIP go: go is not installed (Debian: apt-get install golang-go)"
    exit 0
fi
if ! command -v gcc >/dev/null 2>&1; then
    echo "SKIP go: gcc is not installed (cgo needs it)"
    exit 0
fi

T=$(mktemp -d /tmp/ckshim-go.XXXXXX) || exit 1
chmod 755 "$T"
PIDS=()
nfail=0
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "${CKSHIM_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
export CKSHIM_COUNTER="file:$T/counters"

pass() { echo "PASS $1"; }
fail() {
    echo "FAIL $1${2:+: $2}"
    nfail=$((nfail + 1))
    for f in "${@:3}"; do
        [ -s "$f" ] && sed 's/^/    | /' "$f" | tail -n 8
    done
}
track() {
    PIDS+=("$1")
    [ -n "$PIDFILE" ] && echo "$1" >>"$PIDFILE"
}
alive() {
    local st
    read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}
# wait_gone PID SECONDS
wait_gone() {
    for _ in $(seq $(($2 * 10))); do
        alive "$1" || return 0
        sleep 0.1
    done
    return 1
}
# wait_lines FILE REGEX COUNT SECONDS: until FILE has COUNT lines matching.
wait_lines() {
    for _ in $(seq $(($4 * 10))); do
        [ "$(grep -cE "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
        sleep 0.1
    done
    return 1
}
# start LOG CMD...: run CMD under coord run in $T, output to LOG; sets $pid.
start() {
    local log=$1
    shift
    (cd "$T" && exec "$C" run -- "$@" >"$log" 2>&1 </dev/null) &
    pid=$!
    disown "$pid" 2>/dev/null
    track "$pid"
}
# ckpt_restore NAME PID LOG: checkpoint --kill then restore --detach; sets
# $pid to the restored process. Returns 1 (after a FAIL line) on failure.
ckpt_restore() {
    local name=$1 p=$2 img="$T/$1.ckpt"
    if ! timeout 60 "$C" checkpoint "$p" -o "$img" --kill >"$T/$name.ck" 2>&1; then
        fail "$name" "checkpoint failed" "$T/$name.ck" "$3"
        return 1
    fi
    if ! wait_gone "$p" 10; then
        fail "$name" "process $p still alive after checkpoint --kill"
        return 1
    fi
    pid=$(cd "$T" && timeout 60 "$C" restore "$img" --detach 2>"$T/$name.rs")
    if [ -z "$pid" ] || ! alive "$pid"; then
        fail "$name" "restore failed" "$T/$name.rs"
        return 1
    fi
    track "$pid"
    return 0
}

# ---- build ----------------------------------------------------------------

export GOCACHE="$T/gocache" GOPATH="$T/gopath" GOFLAGS=
build() {
    (cd "$(dirname "$1")" &&
        CGO_ENABLED=1 go build -ldflags=-linkmode=external -o "$2" "$(basename "$1")") \
        >"$T/build.log" 2>&1
}
if build "$ROOT/examples/go/person.go" "$T/person" &&
    build "$ROOT/tests/integration/go/notify.go" "$T/notify"; then
    pass go_build
else
    fail go_build "go build failed" "$T/build.log"
    exit 1
fi
if readelf -lW "$T/person" 2>/dev/null | grep -q INTERP; then
    pass go_dynamic
else
    fail go_dynamic "the Go binary is not dynamically linked: LD_PRELOAD cannot reach it"
fi

# ---- person: ages, goroutines, ticker, two restores -------------------------

LOG="$T/person.log"
start "$LOG" "$T/person" -name Ada -age 30
if wait_lines "$LOG" '^Ada is [0-9]+ years old$' 3 15; then
    pass person_runs
else
    fail person_runs "fewer than 3 lines in 15 s" "$LOG"
fi

# ages_ok FROM: every line after line FROM is the previous age plus one,
# and there are at least 2 of them.
ages_ok() {
    awk -v from="$1" '
        /^Ada is [0-9]+ years old$/ { n++; a = $3 + 0
            if (n > from - 1 && n > 1 && a != prev + 1) bad = 1
            if (n > from) more++
            prev = a }
        END { exit (bad || more < 2) }' "$LOG"
}

ok=1
for round in 1 2; do
    before=$(grep -c 'years old' "$LOG")
    last=$(grep -Eo '[0-9]+ years old' "$LOG" | tail -n 1 | grep -Eo '^[0-9]+')
    ckpt_restore "person_restore$round" "$pid" "$LOG" || { ok=0; break; }
    if ! wait_lines "$LOG" 'years old' $((before + 2)) 10; then
        fail "person_restore$round" "restored process printed nothing new in 10 s" "$LOG" \
            "$T/person_restore$round.rs"
        ok=0
        break
    fi
    first_new=$(grep -Eo '[0-9]+ years old' "$LOG" | sed -n "$((before + 1))p" | grep -Eo '^[0-9]+')
    if [ "$first_new" != $((last + 1)) ]; then
        fail "person_restore$round" "age was $last at the checkpoint, restored process says $first_new" "$LOG"
        ok=0
        break
    fi
    if ! ages_ok 1; then
        fail "person_restore$round" "ages do not go up by one per line" "$LOG"
        ok=0
        break
    fi
    pass "person_restore$round"
done
[ $ok -eq 1 ] && kill "$pid" 2>/dev/null

# ---- notify: os/signal masks, signals and exec after restore ----------------

LOG="$T/notify.log"
start "$LOG" "$T/notify"
if wait_lines "$LOG" '^tick ' 2 15; then
    kill -USR1 "$pid"
    if wait_lines "$LOG" '^usr1 1 exec ok$' 1 10; then
        pass notify_runs
    else
        fail notify_runs "no 'usr1 1 exec ok' after SIGUSR1" "$LOG"
    fi
else
    fail notify_runs "no ticks in 15 s" "$LOG"
fi
if grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid/status" 2>/dev/null; then
    pass notify_filter_on
else
    fail notify_filter_on "no seccomp filter in the Go program (/proc/$pid/status)"
fi
if ckpt_restore notify_restore "$pid" "$LOG"; then
    ticks=$(grep -c '^tick ' "$LOG")
    if wait_lines "$LOG" '^tick ' $((ticks + 3)) 10; then
        pass notify_restore_ticks
    else
        fail notify_restore_ticks "the ticker did not go on after restore" "$LOG"
    fi
    kill -USR1 "$pid"
    if wait_lines "$LOG" '^usr1 2 exec ok$' 1 10; then
        pass notify_restore_signal_exec
    else
        fail notify_restore_signal_exec "no 'usr1 2 exec ok' after SIGUSR1 to the restored process" "$LOG"
    fi
    if grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid/status" 2>/dev/null; then
        pass notify_restore_filter_back
    else
        fail notify_restore_filter_back "the restored process has no seccomp filter"
    fi
    kill "$pid" 2>/dev/null
fi

# ---- the seed workflow: dump on SIGTERM, RESTORE_FROM_FILE ---------------

LOG="$T/seed.log"
(cd "$T" && exec env LD_PRELOAD="$B/libshim.so" CKSHIM_DUMP_ON=TERM,INT CKSHIM_DUMP_FILE=seed.img \
    CKSHIM_COUNTER="file:$T/counters" "$T/person" -name Ada -age 50 >"$LOG" 2>&1 </dev/null) &
pid=$!
disown "$pid" 2>/dev/null
track "$pid"
wait_lines "$LOG" 'years old' 2 15
kill -TERM "$pid"
if wait_gone "$pid" 10 && [ -s "$T/seed.img" ]; then
    pass go_seed_sigterm_dumps_and_ends
else
    fail go_seed_sigterm_dumps_and_ends "no dump, or the program did not end on SIGTERM" "$LOG"
fi
last=$(grep -o '[0-9]* years' "$LOG" | tail -1 | cut -d' ' -f1)
n=$(grep -c 'years old' "$LOG")
(cd "$T" && exec env LD_PRELOAD="$B/libshim.so" RESTORE_FROM_FILE=seed.img \
    CKSHIM_COUNTER="file:$T/counters" "$T/person" >"$T/seed2.log" 2>&1 </dev/null) &
pid=$!
disown "$pid" 2>/dev/null
track "$pid"
wait_lines "$LOG" 'years old' $((n + 2)) 15
first=$(tail -n +$((n + 1)) "$LOG" | grep -o '[0-9]* years' | head -1 | cut -d' ' -f1)
if [ -n "$first" ] && [ "$first" -eq $((last + 1)) ] && alive "$pid"; then
    pass "go_seed_restore_from_file ($last -> $first)"
else
    fail go_seed_restore_from_file "age $last, then '$first'" "$LOG" "$T/seed2.log"
fi
kill -9 "$pid" 2>/dev/null

# ---- without the filter the os/signal thread cannot be parked ---------------

LOG="$T/nofilter.log"
(cd "$T" && exec env CKSHIM_NO_SECCOMP=1 CKSHIM_QUIESCE_TIMEOUT_MS=1000 "$C" run -- "$T/notify" \
    >"$LOG" 2>&1 </dev/null) &
pid=$!
disown "$pid" 2>/dev/null
track "$pid"
wait_lines "$LOG" '^tick ' 1 15
timeout 60 "$C" checkpoint "$pid" -o "$T/nofilter.ckpt" >"$T/nofilter.ck" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "did not stop" "$T/nofilter.ck" && alive "$pid" &&
    [ ! -e "$T/nofilter.ckpt" ]; then
    pass nofilter_refused
else
    fail nofilter_refused "rc=$rc (expected a clean refusal)" "$T/nofilter.ck"
fi
kill "$pid" 2>/dev/null

# ---- os/exec: a Go parent and its child -------------------------------------

# exectree.go twice: with runtime/cgo (threads by pthread_create), and
# without (CGO_ENABLED=0 but linked externally, so LD_PRELOAD applies, yet
# every thread is a raw clone on TLS of Go's own: the shim cannot park
# those, and says so).
mkdir -p "$T/etc"
cp "$ROOT/tests/integration/go/exectree.go" "$T/etc/"
printf 'package main\n\nimport _ "runtime/cgo"\n' >"$T/etc/cgo.go"
if (cd "$T/etc" && CGO_ENABLED=1 go build -ldflags=-linkmode=external -o "$T/exectree" \
    exectree.go cgo.go) >"$T/build2.log" 2>&1; then
    # no pidns: Go's raw waitid would see the child's new pid: refused
    start "$T/et1.log" "$T/exectree" 600
    wait_lines "$T/et1.log" '^got ' 3 15
    timeout 60 "$C" checkpoint "$pid" -o "$T/et1.ckpt" >"$T/et1.ck" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && grep -q "is a Go program with 1 child process" "$T/et1.ck" &&
        grep -q -- "--pidns" "$T/et1.ck" && alive "$pid" && [ ! -e "$T/et1.ckpt" ]; then
        pass go_exec_tree_refused_without_pidns
    else
        fail go_exec_tree_refused_without_pidns "rc=$rc" "$T/et1.ck"
    fi
    kill "$pid" 2>/dev/null
    # --pidns: checkpoint, restore, twice; the child's answers go on and
    # cmd.Wait finds it
    LOG="$T/et2.log"
    (cd "$T" && exec "$C" run --pidns -- "$T/exectree" 60 >"$LOG" 2>&1 </dev/null) &
    cpid=$!
    disown "$cpid" 2>/dev/null
    track "$cpid"
    wait_lines "$LOG" '^got ' 5 15
    pid=$(cat "/proc/$(tr -d ' ' <"/proc/$cpid/task/$cpid/children")/task/"*/children \
        2>/dev/null | awk '{print $1}')
    ok=1
    for round in 1 2; do
        have=$(grep -c '^got ' "$LOG")
        if [ -z "$pid" ] || ! ckpt_restore "et2_$round" "$pid" "$LOG"; then
            ok=0
            break
        fi
        if ! wait_lines "$LOG" '^got ' $((have + 5)) 15; then
            fail go_exec_tree_pidns "round $round: no answers after restore" "$LOG"
            ok=0
            break
        fi
    done
    if [ $ok = 1 ]; then
        wait_lines "$LOG" '^DONE' 1 20
        got=$(grep '^got ' "$LOG" | awk '{print $2}' | sort -n | uniq | wc -l)
        if grep -q '^DONE wait=<nil> sum=1830$' "$LOG" && [ "$got" = 60 ] &&
            [ "$(grep -c '^got ' "$LOG")" = 60 ]; then
            pass go_exec_tree_pidns
        else
            fail go_exec_tree_pidns "$got distinct answers of 60, or no clean DONE" "$LOG"
        fi
    fi
else
    fail go_exec_tree_build "go build failed" "$T/build2.log"
fi

if (cd "$T/etc" && CGO_ENABLED=0 go build -ldflags=-linkmode=external -o "$T/exectree_nocgo" \
    exectree.go) >"$T/build3.log" 2>&1 &&
    ! nm -D "$T/exectree_nocgo" 2>/dev/null | grep -q pthread_create; then
    LOG="$T/nocgo.log"
    (cd "$T" && env LD_PRELOAD="$B/libshim.so" "$T/exectree_nocgo" 600 alone >"$LOG" 2>&1 </dev/null
        echo "exit $?" >"$T/nocgo.rc") 2>/dev/null &
    disown $! 2>/dev/null
    wait_lines "$LOG" '^got ' 3 15
    pid=$(pgrep -f "^$T/exectree_nocgo 600 alone")
    [ -n "$pid" ] && track "$pid"
    timeout 60 "$C" checkpoint "$pid" -o "$T/nocgo.ckpt" >"$T/nocgo.ck" 2>&1
    rc=$?
    have=$(grep -c '^got ' "$LOG")
    if [ $rc -eq 1 ] && grep -q "thread-local storage of its own" "$T/nocgo.ck" &&
        wait_lines "$LOG" '^got ' $((have + 3)) 10 && [ ! -e "$T/nocgo.ckpt" ]; then
        pass go_nocgo_refused_goes_on
    else
        fail go_nocgo_refused_goes_on "rc=$rc" "$T/nocgo.ck" "$LOG"
    fi
    # its own signal handlers ask for every signal blocked: SIGTERM still
    # ends it as SIGTERM (a trapped call in them must not meet SIGSYS blocked)
    kill -TERM "$pid" 2>/dev/null
    wait_lines "$T/nocgo.rc" '^exit' 1 10
    if grep -q '^exit 143$' "$T/nocgo.rc" 2>/dev/null; then
        pass go_nocgo_sigterm
    else
        fail go_nocgo_sigterm "$(cat "$T/nocgo.rc" 2>/dev/null) (expected exit 143)"
    fi
else
    echo "SKIP go_nocgo: this Go links runtime/cgo into every externally linked program"
fi

[ $nfail -eq 0 ]
