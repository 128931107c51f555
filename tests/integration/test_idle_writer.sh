#!/bin/bash
# test_idle_writer.sh - the image writer at idle priority (coord checkpoint
# --priority idle, coord run's periodic checkpoints) and periods skipped,
# never piled up, when a checkpoint outlasts --every.
#
#   bash tests/integration/test_idle_writer.sh BUILD_DIR
#
# bench_compute (a compute loop over 64 MiB) is checkpointed to a pipe the
# test does not read yet, so the forked writer waits in the middle of its
# work: its threads' scheduling policies (/proc/PID/task/*/stat) and I/O
# class (ionice) are read from outside: the compression team at SCHED_IDLE
# and idle I/O with --priority idle, nothing idle without. Pinned to one
# CPU with the loop, an idle writer gets no CPU at all and goes on at
# normal priority after --idle-limit. Under `coord run --every`, the
# writer of each periodic image says it ran at idle priority (normal with
# --priority normal); a checkpoint that takes longer than the period
# (CKSHIM_TEST_HOOK=slow-commit) makes the supervisor skip periods, say so
# in supervise.state, on stderr and in `coord list`, with never two
# checkpoints at once.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
C="$B/coord"
P="$B/tests/progs/bench_compute"
T=$(mktemp -d /tmp/ckshim-idlew.XXXXXX)
chmod 755 "$T"
. "$HERE/lib.sh"
trap sv_cleanup EXIT

# start_compute NAME [PREFIX...]: bench_compute under coord run (64 MiB,
# for up to 5 minutes); its pid in $prog once READY (if not: the check
# $check fails).
start_compute() {
    local name=$1
    shift
    "$@" "$C" run -- "$P" --size 64 --hot 1 --seconds 300 >"$T/$name.out" 2>&1 &
    prog=$!
    PIDS+=("$prog")
    wait_for 30 grep -q READY "$T/$name.out" && return
    fail "$check" "bench_compute did not start: $(cat "$T/$name.out")"
    return 1
}
end_compute() { { kill -9 "$prog"; wait "$prog"; } 2>/dev/null; }

# the writer: the program's child while a checkpoint runs
writer_of() { ps -o pid= --ppid "$1" | awk 'NR == 1 { print $1 }'; }
has_writer() { [ -n "$(writer_of "$1")" ]; }
# the scheduling policies of its threads (field 41 of stat: after the
# ")" that ends the name, field 39), sorted, one line
policies() {
    local t
    for t in /proc/"$1"/task/*/stat; do
        sed 's/.*) //' "$t" 2>/dev/null | awk '{ print $39 }'
    done | sort -n | tr '\n' ' '
}

# checkpoint_held NAME ARGS...: coord checkpoint $prog -o - ARGS into a
# pipe read only after the writer's policies and I/O class are noted in
# $T/NAME.pol and $T/NAME.io; coord's stderr in $T/NAME.err.
checkpoint_held() {
    local name=$1
    shift
    "$C" checkpoint "$prog" -o - "$@" 2>"$T/$name.err" | {
        if wait_for 20 has_writer "$prog"; then
            w=$(writer_of "$prog")
            sleep 0.5 # its team started
            policies "$w" >"$T/$name.pol"
            ionice -p "$w" >"$T/$name.io" 2>&1
        fi
        cat >/dev/null
    }
}

# ---- coord checkpoint --priority idle: seen from outside ----
check=idle_writer_policy
if start_compute a; then
    checkpoint_held idle --priority idle
    pol=$(cat "$T/idle.pol" 2>/dev/null)
    # SCHED_IDLE is 5; the writer's own thread (it takes over at the
    # limit) stays at SCHED_OTHER (0)
    if [[ " $pol" == *" 5 "* ]] && [[ " $pol" == *" 0 "* ]] && grep -q '^idle' "$T/idle.io" &&
        grep -q 'writer [0-9.]* s of CPU at idle priority' "$T/idle.err"; then
        pass idle_writer_policy
    else
        fail idle_writer_policy "policies '$pol', ionice '$(cat "$T/idle.io" 2>/dev/null)', $(tail -n 1 "$T/idle.err")"
    fi
    checkpoint_held normal
    pol=$(cat "$T/normal.pol" 2>/dev/null)
    if [ -n "$pol" ] && [[ " $pol" != *" 5 "* ]] && ! grep -q '^idle' "$T/normal.io" &&
        grep -q 'writer [0-9.]* s of CPU at normal priority' "$T/normal.err"; then
        pass default_writer_normal
    else
        fail default_writer_normal "policies '$pol', ionice '$(cat "$T/normal.io" 2>/dev/null)', $(tail -n 1 "$T/normal.err")"
    fi
    # the program went on and still runs
    if alive "$prog"; then
        pass idle_writer_program_runs
    else
        fail idle_writer_program_runs "$(cat "$T/a.out")"
    fi
    end_compute
fi

# ---- on a CPU the program keeps busy: normal priority after the limit ----
check=idle_writer_limit
if start_compute b taskset -c 0; then
    t0=$(date +%s%N)
    "$C" checkpoint "$prog" -o "$T/b.img" --priority idle --idle-limit 1s --json \
        >"$T/b.json" 2>"$T/b.err"
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    after=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('writer_normal_after_ms', -1))" "$T/b.json" 2>/dev/null)
    if [ $rc -eq 0 ] && grep -q 'at idle priority, normal after 1\.[0-9] s' "$T/b.err" &&
        awk -v a="${after:--1}" 'BEGIN { exit !(a >= 1000 && a < 3000) }' && [ $ms -lt 60000 ]; then
        pass idle_writer_limit
    else
        fail idle_writer_limit "rc=$rc after ${ms} ms, writer_normal_after_ms ${after:-?}: $(tail -n 1 "$T/b.err")"
    fi
    end_compute
fi

# ---- bad values ----
"$C" checkpoint 1 -o "$T/x.img" --priority low 2>"$T/err"
r1=$?
"$C" checkpoint 1 -o "$T/x.img" --idle-limit 1s 2>"$T/err2"
r2=$?
"$C" checkpoint 1 -o "$T/x.img" --priority idle --no-fork 2>"$T/err3"
r3=$?
"$C" run --every 1s --images "$T/bad" --priority fast -- true 2>"$T/err4"
r4=$?
# coord waits 10 minutes for the shim: the limit leaves the writer time
"$C" checkpoint 1 -o "$T/x.img" --priority idle --idle-limit 6m 2>"$T/err5"
r5=$?
if [ $r1 -eq 2 ] && grep -q "'low' is not idle or normal" "$T/err" && [ $r2 -eq 2 ] &&
    grep -q 'goes with --priority idle' "$T/err2" && [ $r3 -eq 2 ] && [ $r4 -eq 2 ] &&
    [ ! -e "$T/bad" ] && [ $r5 -eq 2 ] && grep -q 'at most 5 minutes' "$T/err5"; then
    pass priority_bad_values
else
    fail priority_bad_values "exit $r1 $r2 $r3 $r4 $r5: $(cat "$T/err" "$T/err2" "$T/err3" "$T/err4" "$T/err5")"
fi
rm -f "$T/err"

# ---- coord run --every: periodic writers at idle priority ----
D="$T/sv"
(cd "$T" && exec "$C" run --every 500ms --images "$D" -- "$P" --size 32 --hot 1 --seconds 300 \
    >"$T/sv.out" 2>"$T/sv.err") &
sup=$!
PIDS+=("$sup")
two_idle() { [ "$(grep -c 'writer [0-9.]* s of CPU at idle priority' "$T/sv.err")" -ge 2 ]; }
if wait_for 30 two_idle; then
    pass supervisor_writer_idle
else
    fail supervisor_writer_idle "$(grep -- '->' "$T/sv.err" | tail -n 2)"
fi
stop_supervisor "$sup"

D="$T/svn"
(cd "$T" && exec "$C" run --every 500ms --images "$D" --priority normal -- "$P" --size 32 \
    --hot 1 --seconds 300 >"$T/svn.out" 2>"$T/svn.err") &
sup=$!
PIDS+=("$sup")
one_normal() { grep -q 'writer [0-9.]* s of CPU at normal priority' "$T/svn.err"; }
if wait_for 30 one_normal && ! grep -q 'at idle priority' "$T/svn.err"; then
    pass supervisor_writer_normal
else
    fail supervisor_writer_normal "$(grep -- '->' "$T/svn.err" | tail -n 2)"
fi
stop_supervisor "$sup"

# ---- a checkpoint longer than --every: periods skipped, no pile-up ----
D="$T/slow"
t0=$(date +%s)
(cd "$T" && CKSHIM_TEST_HOOK=slow-commit:3 exec "$C" run --every 1s --images "$D" -- \
    "$P" --size 8 --hot 1 --seconds 300 >"$T/slow.out" 2>"$T/slow.err") &
sup=$!
PIDS+=("$sup")
# the supervisor's children: the program and at most one checkpoint helper
most=0
for _ in $(seq 100); do
    n=$(ps -o pid= --ppid "$sup" | wc -l)
    [ "$n" -gt "$most" ] && most=$n
    sleep 0.1
done
skipped=$(awk '$1 == "skipped" { print $2 }' "$D/supervise.state" 2>/dev/null)
seq=$(awk '$1 == "seq" { print $2 }' "$D/supervise.state" 2>/dev/null)
# each checkpoint takes over 3 s, one after the other: at most one per 3 s
most_seq=$((($(date +%s) - t0) / 3 + 1))
"$C" list >"$T/slow.list" 2>&1
if [ "${skipped:-0}" -ge 2 ] && [ "$most" -le 2 ] && [ "${seq:-0}" -ge 1 ] &&
    [ "${seq:-99}" -le $most_seq ] && grep -q 'periods\? skipped (' "$T/slow.err" &&
    grep -q 'skipped: a checkpoint was still being written' "$T/slow.list"; then
    pass supervisor_skips_periods
else
    fail supervisor_skips_periods "skipped ${skipped:-none}, seq ${seq:-?} (at most $most_seq), at most $most children; $(grep skipped "$T/slow.err" | tail -n 1)"
fi
stop_supervisor "$sup"
