# lib.sh - helpers shared by the integration test scripts (sourced, not run).
#
# The sourcing script sets $T (its temporary directory), $C (coord) and
# keeps the pids it starts in the array PIDS. Every check prints one line,
# "PASS name" or "FAIL name: why" (tests/run.sh counts them).

PIDS=()

pass() { echo "PASS $1"; }

# fail NAME [WHY]: also shows the first lines of $T/err, if any.
fail() {
    echo "FAIL $1${2:+: $2}"
    [ -s "$T/err" ] && sed 's/^/    | /' "$T/err" | head -4
    return 0
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds; 1 on time-out.
wait_for() {
    local n=$(($1 * 10))
    shift
    for _ in $(seq "$n"); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

gone() { ! kill -0 "$1" 2>/dev/null; }
# children PID: the pids of PID's children.
children() { cat /proc/"$1"/task/*/children 2>/dev/null; }
alive() { kill -0 "$1" 2>/dev/null; }

# ck_descendants PID: every descendant of PID, deepest first.
ck_descendants() {
    local c
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        ck_descendants "$c"
        echo "$c"
    done
}

# ck_cleanup: kill what the script started (and what those started: the
# workers of a restored tree are nobody's in PIDS), remove $T (unless
# CKSHIM_KEEP).
ck_cleanup() {
    local p d
    for p in "${PIDS[@]}"; do
        for d in $(ck_descendants "$p"); do
            [ -O "/proc/$d" ] && kill -9 "$d" 2>/dev/null
        done
        kill -9 "$p" 2>/dev/null
    done
    [ -n "${CKSHIM_KEEP:-}" ] || rm -rf "$T"
}

# sv_cleanup: ck_cleanup, and first the programs of the supervisors whose
# --images directories are $T/*/ (kill -9 of a supervisor leaves its program).
sv_cleanup() {
    local f p
    for f in "$T"/*/supervise.state; do
        [ -f "$f" ] || continue
        p=$(awk '$1=="program"{print $2}' "$f")
        [ -n "$p" ] && [ "$p" != 0 ] && PIDS+=("$p")
    done
    ck_cleanup
}

# stop_supervisor PID: SIGTERM (a last image), then end_supervisor: a test
# never hangs on a supervisor.
stop_supervisor() {
    kill -TERM "$1" 2>/dev/null
    end_supervisor "$1"
}

# end_supervisor PID: wait for it to end (at most 60 s, then SIGKILL to its
# children and to it); its exit status is the function's.
end_supervisor() {
    local c
    if ! wait_for 60 gone "$1"; then
        for c in $(ps -o pid= --ppid "$1"); do kill -9 "$c" 2>/dev/null; done
        kill -9 "$1" 2>/dev/null
    fi
    wait "$1" 2>/dev/null
}

# restore_ok NAME IMG [ARGS]: restore --detach must start a process (which
# is then killed).
restore_ok() {
    local name=$1 img=$2
    shift 2
    local np
    np=$(cd / && timeout 30 "$C" restore --detach "$img" "$@" 2>"$T/err")
    if [ -n "$np" ] && kill -0 "$np" 2>/dev/null; then
        PIDS+=("$np")
        kill -9 "$np"
        wait_for 5 gone "$np"
        pass "$name"
    else
        fail "$name" "restore failed"
    fi
}

# restore_refused NAME IMG PATTERN [ARGS]: restore --detach must exit 1
# with a message matching PATTERN and start nothing.
restore_refused() {
    local name=$1 img=$2 pat=$3
    shift 3
    local out rc
    out=$(cd / && timeout 30 "$C" restore --detach "$img" "$@" 2>"$T/err")
    rc=$?
    if [ $rc -eq 1 ] && [ -z "$out" ] && grep -Eqi -- "$pat" "$T/err"; then
        pass "$name"
    else
        fail "$name" "rc=$rc out='$out', expected exit 1 matching /$pat/"
        [ -n "$out" ] && kill -9 "$out" 2>/dev/null
    fi
}

# flip OFFSET IN OUT: copy IN to OUT with the byte at OFFSET inverted.
flip() {
    cp "$2" "$3"
    local b
    b=$(od -An -tu1 -j "$1" -N1 "$2" | tr -d ' ')
    printf "$(printf '\\%03o' $((255 - b)))" | dd of="$3" bs=1 seek="$1" conv=notrunc status=none
}

# start_py_app ID SCRIPT: python3 SCRIPT under $SHIM with application id
# ID, in $T, output in $T/ID.log, until it prints READY; sets $pid.
start_py_app() {
    (cd "$T" && exec env LD_PRELOAD="$SHIM" CKSHIM_APP_ID="$1" python3 "$2" \
        >"$T/$1.log" 2>&1) &
    pid=$!
    disown "$pid" 2>/dev/null
    PIDS+=("$pid")
    wait_for 10 grep -q READY "$T/$1.log"
}

# start_py_pidns NAME SCRIPT: python3 SCRIPT under `coord run --pidns`
# with application id pidns-NAME, in $T, output in $T/NAME.log, until it
# prints READY; sets $cpid (coord outside the namespace) and $prog (the
# program: the child of the namespace's init).
start_py_pidns() {
    (cd "$T" && exec env CKSHIM_APP_ID="pidns-$1" "$C" run --pidns -- python3 "$2" \
        >"$T/$1.log" 2>&1) &
    cpid=$!
    disown "$cpid" 2>/dev/null
    PIDS+=("$cpid")
    wait_for 10 grep -q READY "$T/$1.log"
    prog=$(children "$(children "$cpid" | tr -d ' ')" | awk '{print $1}')
}

# start_test_prog PROG: the C test program PROG (tests/progs) under $SHIM
# in $T/cwd with CK_GO=$T/go, output in $T/PROG.log, until it prints
# READY; sets $pid. Returns 1 (after a FAIL line) if it does not start.
start_test_prog() {
    mkdir -p "$T/cwd"
    (cd "$T/cwd" && exec env CK_GO="$T/go" LD_PRELOAD="$SHIM" "$B/tests/progs/$1" \
        >"$T/$1.log" 2>&1) &
    pid=$!
    disown "$pid" 2>/dev/null
    PIDS+=("$pid")
    wait_for 10 grep -q READY "$T/$1.log" && return 0
    fail "$1_starts" "$(head -3 "$T/$1.log")"
    return 1
}

# restore_to_pass NAME IMG PROG [NOFILE]: restore --detach IMG (from a
# coord whose soft descriptor limit is NOFILE, if given), write the go
# file, and expect PROG's verdict PASS in $T/PROG.log.
restore_to_pass() {
    local np
    np=$(cd / && { [ -z "${4:-}" ] || ulimit -Sn "$4"; } &&
        exec timeout 30 "$C" restore --detach "$2" 2>"$T/err")
    if [ -z "$np" ] || ! alive "$np"; then
        fail "$1" "restore failed"
        return
    fi
    PIDS+=("$np")
    date +%s >"$T/go"
    wait_for 20 gone "$np"
    if [ "$(grep -E '^(PASS|FAIL)' "$T/$3.log" | tail -n 1)" = PASS ]; then
        pass "$1"
    else
        fail "$1" "program says: $(tail -n 2 "$T/$3.log")"
    fi
}

# PY_TICKS: the tail of a Python test program (which imports time): print
# READY, then "tick N" twice a second, forever.
PY_TICKS='print("READY", flush=True)
n = 0
while True:
    n += 1
    time.sleep(0.05)
    if n % 10 == 0:
        print("tick", n, flush=True)'

# refused_alive NAME ID PATTERN: `coord checkpoint $pid` (a start_py_app
# program with id ID and $PY_TICKS) must exit 1 with a message matching
# PATTERN and write no image, and the program must go on ticking.
refused_alive() {
    "$C" checkpoint "$pid" -o "$T/$2.img" >"$T/out" 2>"$T/err"
    local rc=$? t1 t2
    t1=$(grep -c tick "$T/$2.log")
    sleep 1
    t2=$(grep -c tick "$T/$2.log")
    if [ $rc -eq 1 ] && grep -Eq -- "$3" "$T/err" && alive "$pid" && [ "$t2" -gt "$t1" ] &&
        [ ! -e "$T/$2.img" ]; then
        pass "$1"
    else
        fail "$1" "rc=$rc, ticks $t1 -> $t2"
    fi
}
