#!/bin/bash
# test_closed_fds.sh - a daemon that closes every descriptor it has.
#
#   bash tests/integration/test_closed_fds.sh BUILD_DIR
#
# A Python daemon forks twice, starts a session, closes every descriptor
# (os.closerange: close_range through libc), opens /dev/null on 0-2 and a
# log on 3, forks a worker, and both count. The shim's control socket went with the rest, and
# ckshim puts none back: coord calls the process (common/ctlproto.h,
# CK_CALL_COMM). Checked: `coord list` finds it; its table holds only its
# own four descriptors before the checkpoint and after each restore; it
# goes on counting from where it was, restored twice; stopped, it is
# checkpointed (continued under the shim's hold to answer, stopped
# again) and comes back stopped.
# (The raw close_range and a child that closes its table one by one:
# test_progs.sh close_all and tree_closed_table.) Prints one
# "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-closed.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

cat >"$T/daemon.py" <<'EOF'
import os, sys, time
log_path, pid_path = sys.argv[1], sys.argv[2]
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
os.closerange(0, 65536)
os.open("/dev/null", os.O_RDWR)
os.dup2(0, 1)
os.dup2(0, 2)
log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
if os.fork() == 0:
    # a worker, called too (its table is a copy of one without ours)
    m = 0
    while True:
        m += 1
        time.sleep(0.02)
        if m % 5 == 0:
            os.write(log, b"work %d\n" % m)
with open(pid_path + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(pid_path + ".tmp", pid_path)
n = 0
while True:
    n += 1
    time.sleep(0.02)
    if n % 5 == 0:
        os.write(log, b"tick %d\n" % n)
EOF

# fds PID: "fd:target" of each of PID's descriptors, one line
fds() {
    local f out=""
    for f in /proc/"$1"/fd/*; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        out+="${f##*/}:$(readlink "$f") "
    done
    echo "$out"
}
last_tick() { grep '^tick' "$T/daemon.log" 2>/dev/null | tail -n 1 | awk '{print $2}'; }
last_work() { grep '^work' "$T/daemon.log" 2>/dev/null | tail -n 1 | awk '{print $2}'; }
worker() { children "$1" | awk '{print $1}'; }
has_worker() { [ -n "$(worker "$1")" ]; }
WANT="0:/dev/null 1:/dev/null 2:/dev/null 3:$T/daemon.log "

(cd "$T" && exec env LD_PRELOAD="$SHIM" CKSHIM_APP_ID=daemon python3 "$T/daemon.py" \
    "$T/daemon.log" "$T/daemon.pid" </dev/null >/dev/null 2>&1)
wait_for 10 test -s "$T/daemon.pid"
pid=$(cat "$T/daemon.pid" 2>/dev/null)
PIDS+=("$pid")
wait_for 5 has_worker "$pid"
PIDS+=("$(worker "$pid")")
wait_for 5 test -s "$T/daemon.log"

# (the table sorted by number: the glob sorts 10 before 2, not here)
got=$(fds "$pid")
[ "$got" = "$WANT" ] && pass daemon_table_before || fail daemon_table_before "'$got'"
"$C" list >"$T/out" 2>"$T/err"
grep -Eq "^$pid +$pid .* daemon " "$T/out" && pass daemon_listed ||
    fail daemon_listed "$(cat "$T/out")"

# calls that come at once (the shim queues them): eight coord list
for i in 1 2 3 4 5 6 7 8; do
    ("$C" list >"$T/par$i.out" 2>"$T/par$i.err") &
done
wait
nok=0
for i in 1 2 3 4 5 6 7 8; do
    grep -Eq "^$pid +$pid .* daemon " "$T/par$i.out" && [ ! -s "$T/par$i.err" ] && nok=$((nok + 1))
done
[ $nok = 8 ] && pass daemon_eight_lists_at_once ||
    fail daemon_eight_lists_at_once "$nok of 8: $(cat "$T"/par*.err | head -3)"

# round NAME: checkpoint $pid --kill, restore it, check its table and that
# it counts on from its last tick; sets pid to the restored process.
round() {
    local before after np
    if ! "$C" checkpoint "$pid" -o "$T/$1.img" --kill >"$T/out" 2>"$T/err"; then
        fail "$1_checkpoint"
        return 1
    fi
    wait_for 5 gone "$pid"
    before=$(last_tick)
    pass "$1_checkpoint"
    np=$(cd / && timeout 30 "$C" restore --detach "$T/$1.img" 2>"$T/err")
    if [ -z "$np" ] || ! alive "$np"; then
        fail "$1_restored" "restore failed"
        return 1
    fi
    PIDS+=("$np")
    pid=$np
    got=$(fds "$pid")
    local w wgot wbefore
    w=$(worker "$pid")
    PIDS+=("$w")
    wgot=$(fds "$w")
    [ "$got" = "$WANT" ] && [ -n "$w" ] && [ "$wgot" = "$WANT" ] &&
        pass "$1_table_after_restore" ||
        fail "$1_table_after_restore" "'$got', worker $w '$wgot'"
    wbefore=$(last_work)
    sleep 0.5
    after=$(last_tick)
    [ "$(last_work)" -gt "${wbefore:-0}" ] && pass "$1_worker_goes_on" ||
        fail "$1_worker_goes_on" "work $wbefore -> $(last_work)"
    # the next tick after restore is the next one it would have written
    if grep -q "^tick $((before + 5))\$" "$T/daemon.log" && [ "${after:-0}" -gt "$before" ] &&
        [ "$(grep -c "^tick $before\$" "$T/daemon.log")" = 1 ]; then
        pass "$1_counts_on"
    else
        fail "$1_counts_on" "last tick $before before, $after after"
    fi
    "$C" list >"$T/out" 2>"$T/err"
    grep -Eq "^$pid +[0-9]+ .* daemon " "$T/out" && pass "$1_listed" ||
        fail "$1_listed" "$(cat "$T/out")"
}
round daemon_first && round daemon_second

# stopped: its shim cannot answer a call while stopped; coord continues
# it under the shim's hold (no line of the program runs), calls it, and
# it is stopped again; the image comes back stopped, its table clean
w=$(worker "$pid")
kill -STOP "$pid" "$w"
wait_for 5 grep -q '^State:.*T' "/proc/$pid/status"
wait_for 5 grep -q '^State:.*T' "/proc/$w/status"
"$C" list >"$T/out" 2>"$T/err"
grep -Eq "^$pid .*\(stopped\)" "$T/out" && pass daemon_stopped_listed ||
    fail daemon_stopped_listed "$(cat "$T/out")"
t0=$(last_tick)
timeout 30 "$C" checkpoint "$pid" -o "$T/stopped.img" >"$T/out" 2>"$T/err"
rc=$?
sleep 0.3
if [ $rc -eq 0 ] && [ -s "$T/stopped.img" ] && grep -q '^State:.*T' "/proc/$pid/status" &&
    grep -q '^State:.*T' "/proc/$w/status" && [ "$(last_tick)" = "$t0" ] &&
    grep -q "process tree of 2 processes" "$T/err"; then
    pass daemon_stopped_checkpoint
else
    fail daemon_stopped_checkpoint "rc=$rc, tick $t0 -> $(last_tick), $(grep State "/proc/$pid/status")"
fi
kill -CONT "$pid" "$w"
sleep 0.5
[ "$(last_tick)" -gt "$t0" ] && [ "$(fds "$pid")" = "$WANT" ] && pass daemon_goes_on_after_cont ||
    fail daemon_goes_on_after_cont "tick $t0 -> $(last_tick), table '$(fds "$pid")'"
kill -9 "$pid" "$w" 2>/dev/null
wait_for 5 gone "$pid"
np=$(cd / && timeout 30 "$C" restore --detach "$T/stopped.img" 2>"$T/err")
if [ -n "$np" ] && alive "$np"; then
    PIDS+=("$np")
    sleep 0.3
    t1=$(last_tick)
    w=$(worker "$np")
    PIDS+=("$w")
    if grep -q '^State:.*T' "/proc/$np/status" && [ "$(fds "$np")" = "$WANT" ] &&
        grep -q '^State:.*T' "/proc/$w/status"; then
        pass daemon_stopped_restored_stopped
    else
        fail daemon_stopped_restored_stopped "$(grep State "/proc/$np/status"), '$(fds "$np")'"
    fi
    kill -CONT "$np" "$w"
    sleep 0.5
    [ "$(last_tick)" -gt "$t1" ] && pass daemon_stopped_restored_goes_on ||
        fail daemon_stopped_restored_goes_on "tick $t1 -> $(last_tick)"
    kill "$np" "$w" 2>/dev/null
else
    fail daemon_stopped_restored_stopped "restore failed"
fi
