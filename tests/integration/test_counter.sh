#!/bin/bash
# test_counter.sh - counter stamps, rollback protection, the seed workflow.
#
#   bash tests/integration/test_counter.sh BUILD_DIR
#
# With the file counter and with a real redis-server on a loopback port
# (started here): two checkpoints of one program give stamps n and n+1;
# the older image is refused as stale, the newer restores once and is then
# refused as replayed; --force restores anyway (with a warning); a counter
# service that is down makes checkpoint and restore fail without writing an
# image or starting a process; --counter none images restore only with
# --counter none. Then the seed applications' workflow: CKSHIM_DUMP_ON /
# CKSHIM_DUMP_FILE write an image when the program gets SIGTERM or SIGINT
# and then give the signal its normal effect; RESTORE_FROM_FILE resumes.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-counter.XXXXXX)
chmod 755 "$T"
. "$HERE/lib.sh"
cleanup() {
    type redis_stop >/dev/null 2>&1 && redis_stop
    ck_cleanup
}
trap cleanup EXIT

cat >"$T/count.py" <<'EOF'
import sys, time
n = 0
print("READY", flush=True)
while True:
    n += 1
    print("n", n, flush=True)
    time.sleep(0.05)
EOF

# start NAME: the counting program under the shim; sets $pid.
start() { start_py_app "$1" "$T/count.py"; }



# rollback_suite BACKEND: the stamp checks against one counter service.
rollback_suite() {
    local be=$1 id="app-$1-$$"
    start "$id"
    "$C" checkpoint "$pid" -o "$T/$be.1.img" >/dev/null 2>"$T/err" || fail "${be}_checkpoint1"
    "$C" checkpoint "$pid" -o "$T/$be.2.img" 2>"$T/err" >/dev/null || fail "${be}_checkpoint2"
    grep -q "stamp" "$T/err" || fail "${be}_checkpoint_reports_stamp"
    kill -9 "$pid"
    wait_for 5 gone "$pid"
    s1=$("$C" inspect --json "$T/$be.1.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["stamp"])' 2>/dev/null)
    s2=$("$C" inspect --json "$T/$be.2.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["stamp"])' 2>/dev/null)
    if [ -n "$s1" ] && [ -n "$s2" ] && [ "$s2" = $((s1 + 1)) ] && [ "$s1" -ge 1 ]; then
        pass "${be}_stamps_increase ($s1, $s2)"
    else
        fail "${be}_stamps_increase" "stamps '$s1' '$s2'"
    fi
    restore_refused "${be}_old_image_refused" "$T/$be.1.img" "stale"
    # A damaged copy of the newest image (a byte in its pages, which the
    # restorer checks as it fills memory) is refused, in the background and
    # in the foreground, without advancing the counter: the good copy
    # still restores.
    flip $(($(stat -c %s "$T/$be.2.img") / 2)) "$T/$be.2.img" "$T/$be.bad.img"
    restore_refused "${be}_damaged_newest_refused" "$T/$be.bad.img" "checksum|corrupt"
    (cd / && timeout 30 "$C" restore "$T/$be.bad.img" >"$T/out" 2>"$T/err" </dev/null)
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -Eqi "checksum|corrupt" "$T/err"; then
        pass "${be}_damaged_newest_refused_foreground"
    else
        fail "${be}_damaged_newest_refused_foreground" "rc=$rc: $(head -c 300 "$T/err")"
    fi
    restore_ok "${be}_newest_restores" "$T/$be.2.img"
    restore_refused "${be}_replay_refused" "$T/$be.2.img" "stale"
    "$C" inspect "$T/$be.2.img" >"$T/insp" 2>&1
    grep -Eq "counter +[0-9]+ at .*stale" "$T/insp" && pass "${be}_inspect_shows_counter" ||
        fail "${be}_inspect_shows_counter" "$(grep counter "$T/insp")"
    restore_ok "${be}_force_restores_stale" "$T/$be.1.img" --force
    grep -qi "warning" "$T/err" && pass "${be}_force_warns" || fail "${be}_force_warns"
}

# ---- file counter --------------------------------------------------------
export CKSHIM_COUNTER="file:$T/state/counters"
rollback_suite file
[ "$(stat -c %a "$T/state/counters" 2>/dev/null)" = 600 ] && pass file_counter_private ||
    fail file_counter_private "mode $(stat -c %a "$T/state/counters" 2>&1)"

# ---- --counter none ------------------------------------------------------
start "none-$$"
"$C" checkpoint "$pid" -o "$T/none.img" --counter none --kill >/dev/null 2>"$T/err" ||
    fail none_checkpoint
restore_refused none_image_needs_flag "$T/none.img" "no counter stamp"
restore_ok none_image_restores_with_none "$T/none.img" --counter none

# ---- redis ---------------------------------------------------------------
if command -v redis-server >/dev/null && [ -f "$HERE/redis_helper.sh" ]; then
    . "$HERE/redis_helper.sh"
    if redis_start; then
        export CKSHIM_COUNTER="redis://127.0.0.1:$CKTEST_REDIS_PORT/cktest"
        rollback_suite redis
        v=$(redis-cli -p "$CKTEST_REDIS_PORT" get "cktest:app-redis-$$")
        [ -n "$v" ] && pass "redis_key_holds_counter ($v)" || fail redis_key_holds_counter
        # The service goes down: nothing is written, nothing restored.
        start "down-$$"
        "$C" checkpoint "$pid" -o "$T/down.img" >/dev/null 2>"$T/good.err"
        redis_stop
        printf 'OLD' >"$T/down2.img"
        "$C" checkpoint "$pid" -o "$T/down2.img" >/dev/null 2>"$T/err"
        rc=$?
        if [ $rc -eq 1 ] && grep -qi "unreachable\|refused\|connect" "$T/err" &&
            [ "$(cat "$T/down2.img")" = OLD ] && kill -0 "$pid"; then
            pass redis_down_checkpoint_fails
        else
            fail redis_down_checkpoint_fails "rc=$rc"
        fi
        kill -9 "$pid"
        restore_refused redis_down_restore_fails "$T/down.img" "unreachable|refused|connect"
    else
        fail redis_start "could not start redis-server"
    fi
else
    echo "SKIP redis: redis-server or redis_helper.sh missing"
fi

# ---- the seed workflow ---------------------------------------------------
export CKSHIM_COUNTER="file:$T/state/counters"
PERSON="$HERE/../../examples/python/person.py"
[ -f "$PERSON" ] || PERSON="$(cd "$HERE/../.." && pwd)/examples/python/person.py"
(cd "$T" && exec env LD_PRELOAD="$SHIM" CKSHIM_DUMP_ON=TERM,INT CKSHIM_DUMP_FILE=dump.img \
    python3 -u "$PERSON" --name Ada --age 35 >"$T/seed1.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
wait_for 10 grep -q "36 years" "$T/seed1.log"
kill -TERM "$pid"
if wait_for 10 gone "$pid" && [ -s "$T/dump.img" ]; then
    pass seed_sigterm_dumps_and_ends
else
    fail seed_sigterm_dumps_and_ends "$(tail -2 "$T/seed1.log")"
fi
last=$(grep -o '[0-9]* years' "$T/seed1.log" | tail -1 | cut -d' ' -f1)
lines=$(wc -l <"$T/seed1.log")
# The restored program's stdout is the file it had (seed1.log), by path.
(cd "$T" && exec env LD_PRELOAD="$SHIM" RESTORE_FROM_FILE=dump.img CKSHIM_DUMP_ON=TERM,INT \
    CKSHIM_DUMP_FILE=dump.img python3 -u "$PERSON" --name Bob --age 1 >"$T/seed2.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
sleep 2.5
first=$(tail -n +$((lines + 1)) "$T/seed1.log" | grep -o '[0-9]* years' | head -1 | cut -d' ' -f1)
if tail -n +$((lines + 1)) "$T/seed1.log" | grep -q "Ada is" && ! grep -q "Bob" "$T/seed1.log" &&
    [ ! -s "$T/seed2.log" ] && [ -n "$first" ] &&
    [ "$first" -gt "${last:-0}" ] && [ "$first" -le $((${last:-0} + 2)) ]; then
    pass "seed_restore_from_file_resumes ($last -> $first)"
else
    fail seed_restore_from_file_resumes "last $last, then: $(tail -3 "$T/seed1.log" | tr '\n' '|') $(head -2 "$T/seed2.log")"
fi
# SIGINT: the program's own handler (Python's KeyboardInterrupt) runs after
# the dump, in the restored program too.
rm -f "$T/dump.img"
kill -INT "$pid"
if wait_for 10 gone "$pid" && [ -s "$T/dump.img" ]; then
    pass seed_sigint_dumps_restored_program
else
    fail seed_sigint_dumps_restored_program "$(tail -2 "$T/seed1.log")"
fi
cat >"$T/intapp.py" <<'EOF2'
import time
print("READY", flush=True)
try:
    while True:
        time.sleep(0.05)
except KeyboardInterrupt:
    print("program handler ran", flush=True)
EOF2
(cd "$T" && exec env LD_PRELOAD="$SHIM" CKSHIM_DUMP_ON=INT CKSHIM_DUMP_FILE=int.img \
    CKSHIM_COUNTER=none python3 "$T/intapp.py" >"$T/int.log" 2>&1) &
ipid=$!
disown "$ipid" 2>/dev/null
PIDS+=("$ipid")
wait_for 10 grep -q READY "$T/int.log"
kill -INT "$ipid"
if wait_for 10 gone "$ipid" && [ -s "$T/int.img" ] && grep -q "program handler ran" "$T/int.log"; then
    pass seed_sigint_dump_then_program_handler
else
    fail seed_sigint_dump_then_program_handler "$(tail -2 "$T/int.log")"
fi

# The image restores once more, and a replay of it is refused.
(cd "$T" && exec env LD_PRELOAD="$SHIM" RESTORE_FROM_FILE=dump.img python3 "$PERSON" \
    >"$T/seed3.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
sleep 1.5
alive3=0
kill -0 "$pid" 2>/dev/null && alive3=1
kill -9 "$pid" 2>/dev/null
(cd "$T" && exec env LD_PRELOAD="$SHIM" RESTORE_FROM_FILE=dump.img python3 "$PERSON" \
    >"$T/seed4.log" 2>&1)
rc=$?
if [ $alive3 = 1 ] && [ $rc -eq 1 ] && grep -qi stale "$T/seed4.log"; then
    pass seed_replay_refused
else
    fail seed_replay_refused "rc=$rc $(tail -1 "$T/seed4.log")"
fi
