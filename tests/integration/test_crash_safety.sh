#!/bin/bash
# test_crash_safety.sh - the first promise: at every moment the user has the
# running program or a good image of it.
#
#   bash tests/integration/test_crash_safety.sh BUILD_DIR
#
# coord is stopped at points of its commit (CKSHIM_TEST_HOOK, a test-only
# hook: before-commit, after-rename) and killed there, interrupted, or has
# its target changed under it: with --kill the program goes on running
# unless the image was committed, no temporary file stays behind, the
# counter moves only for a committed image (the previous image keeps
# restoring), and an image committed by a coord that died before it
# advanced the counter restores. Also: stale temporary files of dead coords
# are removed; each run of a program has its own application id (two
# python3 programs do not make each other's images stale) that it keeps
# across restores; restore --detach reports a program that dies at once;
# the dump-on-signal file is created exclusively, and a dump that cannot
# be written leaves the program running; -o - into a pipe is not taken as
# committed (no --kill, counter not advanced); an unsafe socket
# directory is refused loudly with a fallback; messages (bad --id, an
# option without its value, sockets named by kind, the program's exe and
# thread count in images of restored processes).
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-crash.XXXXXX)
chmod 755 "$T"
. "$HERE/lib.sh"
SOCKDIR=/tmp/ckshim-$(id -u)
cleanup() {
    # the socket directory check moves the real one aside: put it back
    if [ -e "$T/sockdir.saved" ] || [ -L "$SOCKDIR" ]; then
        rm -f "$SOCKDIR" 2>/dev/null
        [ -e "$T/sockdir.saved" ] && mv "$T/sockdir.saved" "$SOCKDIR"
    fi
    ck_cleanup
}
trap cleanup EXIT
unset CKSHIM_DIR XDG_RUNTIME_DIR
export CKSHIM_COUNTER="file:$T/counters"
export CKSHIM_DETACH_WATCH_MS=500

cat >"$T/count.py" <<'EOF'
import os, signal, time
n = 0
print("READY", flush=True)
while True:
    n += 1
    print("n", n, flush=True)
    if os.path.exists("boom"):
        os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(0.02)
EOF

start() { start_py_app "$1" "$T/count.py"; }

# stopped PID: the process is stopped (SIGSTOP).
stopped() {
    local st
    read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }
    [ "${st%% *}" = T ]
}

# lines ID: how many lines the program's log has.
lines() { wc -l <"$T/$1.log"; }

# grew ID N: the program's log has more than N lines.
grew() { [ "$(lines "$1")" -gt "$2" ]; }

# still_counting NAME ID PID: the program runs and goes on printing.
still_counting() {
    local a
    a=$(lines "$2")
    if alive "$3" && wait_for 5 grew "$2" "$a"; then
        pass "$1"
    else
        fail "$1" "the program is not running any more"
    fi
}

# no_tmp NAME IMG: no temporary file of IMG is left in its directory.
no_tmp() {
    local left
    if wait_for 5 sh -c "! ls -a '$T' | grep -q '^\\.${2##*/}\\.tmp\\.'"; then
        pass "$1"
    else
        left=$(ls -a "$T" | grep "^\.${2##*/}\.tmp\." | head -3)
        fail "$1" "left behind: $left"
    fi
}

# verdict IMG: coord inspect's line about the counter.
verdict() { "$C" inspect "$1" 2>&1 | grep -E '^ +counter '; }

# hooked_checkpoint HOOK PID IMG [ARGS]: coord checkpoint, stopped at HOOK;
# sets $cpid (coord's pid). 1 if it did not stop there.
hooked_checkpoint() {
    local hook=$1 p=$2 img=$3
    shift 3
    CKSHIM_TEST_HOOK=$hook "$C" checkpoint "$p" -o "$img" "$@" >"$T/hook.out" 2>"$T/hook.err" &
    cpid=$!
    PIDS+=("$cpid")
    wait_for 20 stopped "$cpid"
}

# ---- --kill: coord killed before the image is committed -------------------
id=crash-$$
start "$id"
"$C" checkpoint "$pid" -o "$T/a.img" >/dev/null 2>"$T/err" || fail first_checkpoint "$(cat "$T/err")"
if hooked_checkpoint before-commit "$pid" "$T/a.img" --kill; then
    kill -9 "$cpid"
    wait "$cpid" 2>/dev/null
    still_counting kill9_before_commit_program_survives "$id" "$pid"
    no_tmp kill9_before_commit_no_tmp "$T/a.img"
    verdict "$T/a.img" | grep -q "it restores" && pass kill9_before_commit_old_image_current ||
        fail kill9_before_commit_old_image_current "$(verdict "$T/a.img")"
else
    fail kill9_before_commit "coord did not stop at the hook: $(cat "$T/hook.err")"
fi

# ---- Ctrl-C before the commit ---------------------------------------------
if hooked_checkpoint before-commit "$pid" "$T/a.img" --kill; then
    kill -INT "$cpid"
    kill -CONT "$cpid"
    wait "$cpid" 2>/dev/null
    still_counting ctrl_c_program_survives "$id" "$pid"
    no_tmp ctrl_c_no_tmp "$T/a.img"
    verdict "$T/a.img" | grep -q "it restores" && pass ctrl_c_old_image_current ||
        fail ctrl_c_old_image_current "$(verdict "$T/a.img")"
else
    fail ctrl_c "coord did not stop at the hook"
fi

# ---- the rename fails (the target became a directory meanwhile) -----------
if hooked_checkpoint before-commit "$pid" "$T/b.img" --kill; then
    mkdir "$T/b.img" && touch "$T/b.img/x"
    kill -CONT "$cpid"
    wait "$cpid"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "not replaced" "$T/hook.err"; then
        pass rename_fails_reported
    else
        fail rename_fails_reported "rc=$rc: $(cat "$T/hook.err")"
    fi
    still_counting rename_fails_program_survives "$id" "$pid"
    no_tmp rename_fails_no_tmp "$T/b.img"
    verdict "$T/a.img" | grep -q "it restores" && pass rename_fails_counter_unchanged ||
        fail rename_fails_counter_unchanged "$(verdict "$T/a.img")"
else
    fail rename_fails "coord did not stop at the hook"
fi

# ---- coord killed after the rename, before advancing the counter ----------
if hooked_checkpoint after-rename "$pid" "$T/c.img" --kill; then
    kill -9 "$cpid"
    wait "$cpid" 2>/dev/null
    still_counting kill9_after_rename_program_survives "$id" "$pid"
    verdict "$T/c.img" | grep -q "it restores" && pass pending_image_is_newest ||
        fail pending_image_is_newest "$(verdict "$T/c.img")"
    kill -9 "$pid"
    wait_for 5 gone "$pid"
    restore_ok pending_image_restores "$T/c.img"
    restore_refused pending_image_once "$T/c.img" "stale"
    restore_refused older_image_stale_after_pending "$T/a.img" "stale"
else
    fail kill9_after_rename "coord did not stop at the hook"
fi

# ---- a committed --kill checkpoint ends the program ------------------------
start "$id-b"
"$C" checkpoint "$pid" -o "$T/d.img" --kill >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && wait_for 10 gone "$pid"; then
    pass kill_after_commit_ends_program
else
    fail kill_after_commit_ends_program "$(cat "$T/err")"
fi
restore_ok kill_after_commit_restores "$T/d.img"

# ---- stale temporary files of dead coords ---------------------------------
start "$id-c"
dead=$(sh -c 'echo $$')
touch "$T/.e.img.tmp.$dead.AbCdEf" "$T/.e.img.tmp.$$.GhIjKl"
"$C" checkpoint "$pid" -o "$T/e.img" >/dev/null 2>"$T/err"
if [ ! -e "$T/.e.img.tmp.$dead.AbCdEf" ] && grep -q "interrupted checkpoint" "$T/err" &&
    [ -e "$T/.e.img.tmp.$$.GhIjKl" ]; then
    pass stale_tmp_of_dead_coord_removed
else
    fail stale_tmp_of_dead_coord_removed "$(ls -a "$T" | grep tmp) / $(cat "$T/err")"
fi
rm -f "$T/.e.img.tmp.$$.GhIjKl"

# ---- messages ---------------------------------------------------------------
"$C" checkpoint "$pid" -o "$T/f.img" --id 'bad id' >/dev/null 2>"$T/err"
rc=$?
[ $rc -eq 2 ] && grep -q "invalid app id" "$T/err" && pass bad_id_is_usage_error ||
    fail bad_id_is_usage_error "rc=$rc $(cat "$T/err")"
"$C" restore "$T/e.img" --counter >/dev/null 2>"$T/err"
rc=$?
[ $rc -eq 2 ] && grep -q "needs an argument" "$T/err" && pass restore_counter_needs_value ||
    fail restore_counter_needs_value "rc=$rc $(cat "$T/err")"
"$C" inspect "$T/e.img" --key >/dev/null 2>"$T/err"
rc=$?
[ $rc -eq 2 ] && grep -q "needs an argument" "$T/err" && pass inspect_key_needs_value ||
    fail inspect_key_needs_value "rc=$rc $(cat "$T/err")"
kill -9 "$pid"

# ---- each run has its own application id ------------------------------------
for k in 1 2; do
    (cd "$T" && exec env LD_PRELOAD="$SHIM" python3 "$T/count.py" >"$T/own$k.log" 2>&1) &
    eval "own$k=$!"
    PIDS+=("$!")
done
wait_for 10 grep -q READY "$T/own1.log" && wait_for 10 grep -q READY "$T/own2.log"
"$C" checkpoint "$own1" -o "$T/own1.img" --kill >/dev/null 2>&1
"$C" checkpoint "$own2" -o "$T/own2.img" --kill >"$T/out" 2>"$T/err"
id1=$("$C" inspect --json "$T/own1.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["app_id"])')
id2=$("$C" inspect --json "$T/own2.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["app_id"])')
if [ -n "$id1" ] && [ "$id1" != "$id2" ] && [[ $id1 == python3* ]] &&
    verdict "$T/own1.img" | grep -q "it restores" && verdict "$T/own2.img" | grep -q "it restores"; then
    pass default_ids_per_run "$id1 $id2"
else
    fail default_ids_per_run "'$id1' '$id2' $(verdict "$T/own1.img")"
fi
# the id stays with the program across a restore and a new checkpoint
np=$(cd "$T" && "$C" restore --detach "$T/own1.img" 2>"$T/err")
if [ -n "$np" ]; then
    PIDS+=("$np")
    "$C" checkpoint "$np" -o "$T/own1b.img" >/dev/null 2>"$T/err"
    id1b=$("$C" inspect --json "$T/own1b.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["app_id"])')
    [ "$id1b" = "$id1" ] && verdict "$T/own1b.img" | grep -q "it restores" &&
        pass default_id_kept_across_restore || fail default_id_kept_across_restore "'$id1b' '$id1'"
    # an image of a restored process names the program, not the restorer
    "$C" inspect "$T/own1b.img" >"$T/insp" 2>&1
    if grep -qi "python" "$T/insp" && ! grep -q "ckshim-restore" "$T/insp"; then
        pass restored_image_names_program
    else
        fail restored_image_names_program "$(grep -i exe "$T/insp")"
    fi
    # list and checkpoint agree on the thread count
    lt=$("$C" list --json | python3 -c "import json,sys
for p in json.load(sys.stdin)['processes']:
    if p['pid'] == $np: print(p['threads'])" 2>/dev/null)
    ct=$("$C" checkpoint "$np" -o "$T/own1c.img" 2>&1 | sed -n 's/.* \([0-9]*\) threads\{0,1\},.*/\1/p')
    [ -n "$lt" ] && [ "$lt" = "$ct" ] && pass list_checkpoint_thread_counts_agree ||
        fail list_checkpoint_thread_counts_agree "list '$lt' checkpoint '$ct'"
    kill -9 "$np"
else
    fail default_id_kept_across_restore "restore failed: $(cat "$T/err")"
fi

# ---- restore --detach reports a program that dies at once ------------------
start "$id-boom"
"$C" checkpoint "$pid" -o "$T/boom.img" --kill >/dev/null 2>"$T/err"
wait_for 10 gone "$pid"
touch "$T/boom"
out=$(cd "$T" && "$C" restore --detach "$T/boom.img" 2>"$T/err")
rc=$?
if [ $rc -eq 1 ] && [ -z "$out" ] && grep -q "signal 11" "$T/err"; then
    pass detach_reports_death
else
    fail detach_reports_death "rc=$rc out='$out' $(cat "$T/err")"
    [ -n "$out" ] && kill -9 "$out" 2>/dev/null
fi
rm -f "$T/boom"

# ---- sockets are named by what they are -----------------------------------
cat >"$T/sock.py" <<'EOF'
import socket, sys, time
keep = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
print("READY", flush=True)
time.sleep(60)
EOF
for kind in netlink; do
    (cd "$T" && exec env LD_PRELOAD="$SHIM" python3 "$T/sock.py" $kind >"$T/s$kind.log" 2>&1) &
    sp=$!
    PIDS+=("$sp")
    wait_for 10 grep -q READY "$T/s$kind.log"
    "$C" checkpoint "$sp" -o "$T/s.img" >/dev/null 2>"$T/err"
    case $kind in
        netlink) pat="fd [0-9]+ is a netlink socket \(raw, address family 16" ;;
    esac
    grep -Eq "$pat" "$T/err" && alive "$sp" && pass "socket_${kind}_named" ||
        fail "socket_${kind}_named" "$(cat "$T/err")"
    kill -9 "$sp"
done

# ---- the dump-on-signal file is created exclusively -------------------------
: >"$T/victim"
(cd "$T" && exec env LD_PRELOAD="$SHIM" CKSHIM_APP_ID="$id-dump" CKSHIM_DUMP_ON=TERM \
    CKSHIM_DUMP_FILE="$T/dump.img" python3 "$T/count.py" >"$T/dump.log" 2>&1) &
dp=$!
PIDS+=("$dp")
wait_for 10 grep -q READY "$T/dump.log"
# the names a dump could have used before: planted symlinks to a victim
ln -s "$T/victim" "$T/dump.img.tmp.$dp"
kill -TERM "$dp"
wait_for 10 gone "$dp"
if [ ! -s "$T/victim" ] && [ "$(stat -c %a "$T/dump.img" 2>/dev/null)" = 600 ] &&
    "$C" inspect "$T/dump.img" >/dev/null 2>&1 && ! ls -a "$T" | grep -q '^\.dump\.img\.tmp\.'; then
    pass dump_file_exclusive
else
    fail dump_file_exclusive "victim $(stat -c %s "$T/victim") bytes, dump $(stat -c %a "$T/dump.img" 2>&1)"
fi

# ---- a dump that cannot be written leaves the program running ----------------
# (its directory does not exist yet: no image can be written, root or not)
(cd "$T" && exec env LD_PRELOAD="$SHIM" CKSHIM_APP_ID="$id-dumpfail" CKSHIM_DUMP_ON=TERM \
    CKSHIM_DUMP_FILE="$T/ro/dump.img" python3 "$T/count.py" >"$T/dumpfail.log" 2>&1) &
dp=$!
PIDS+=("$dp")
wait_for 10 grep -q READY "$T/dumpfail.log"
kill -TERM "$dp"
if wait_for 10 grep -q "keeps running" "$T/dumpfail.log"; then
    still_counting dump_failure_program_survives dumpfail "$dp"
else
    fail dump_failure_program_survives "$(tail -3 "$T/dumpfail.log")"
fi
# once the dump can be written, the signal dumps and ends the program
mkdir "$T/ro"
kill -TERM "$dp"
if wait_for 10 gone "$dp" && "$C" inspect "$T/ro/dump.img" >/dev/null 2>&1; then
    pass dump_then_signal_once_writable
else
    fail dump_then_signal_once_writable "$(tail -3 "$T/dumpfail.log")"
fi

# ---- -o - into a pipe: not known to be kept ---------------------------------
start "$id-pipe"
"$C" checkpoint "$pid" -o "$T/p1.img" >/dev/null 2>"$T/err"
"$C" checkpoint "$pid" -o - --kill 2>"$T/err" | cat >"$T/p2.img"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 2 ] && grep -q "cannot know" "$T/err" && alive "$pid"; then
    pass stdout_pipe_kill_refused
else
    fail stdout_pipe_kill_refused "rc=$rc $(cat "$T/err")"
fi
"$C" checkpoint "$pid" -o - 2>"$T/err" | cat >"$T/p2.img"
if grep -q "not advanced" "$T/err" && verdict "$T/p2.img" | grep -q "it restores" &&
    verdict "$T/p1.img" | grep -q "it restores"; then
    pass stdout_pipe_counter_pending
else
    fail stdout_pipe_counter_pending "$(cat "$T/err") / $(verdict "$T/p2.img")"
fi
kill -9 "$pid"
wait_for 5 gone "$pid"
restore_ok stdout_pipe_image_restores "$T/p2.img"
restore_refused stdout_pipe_previous_stale_after "$T/p1.img" "stale"
# into a regular file, -o - --kill is committed like -o FILE
start "$id-file"
"$C" checkpoint "$pid" -o - --kill >"$T/f1.img" 2>"$T/err"
if [ $? -eq 0 ] && wait_for 10 gone "$pid" && verdict "$T/f1.img" | grep -q "newest: it restores"; then
    pass stdout_file_kill_commits
else
    fail stdout_file_kill_commits "$(cat "$T/err")"
fi

# ---- a process stopped during its checkpoint: coord gives up at once ---------
# (the write is made slow on purpose, 20 ms per MiB: a disk that takes
# 400 MiB in 0.2 s ended the checkpoint before the stop came)
cat >"$T/big.py" <<'EOF'
import os, time
big = os.urandom(100 << 20)     # incompressible
n = 0
print("READY", flush=True)
while True:
    n += 1
    print("n", n, flush=True)
    time.sleep(0.02)
EOF
CKSHIM_TEST_WRITE_DELAY_MS=20 start_py_app "$id-big" "$T/big.py"
"$C" checkpoint "$pid" -o "$T/big.img" --kill --no-fork >/dev/null 2>"$T/err" &
cpid=$!
sleep 0.3
kill -STOP "$pid"
t0=$(date +%s)
wait "$cpid"
rc=$?
t1=$(date +%s)
kill -CONT "$pid"
if [ $rc -eq 1 ] && grep -q "was stopped" "$T/err" && [ $((t1 - t0)) -le 5 ]; then
    pass stopped_during_checkpoint_gives_up
else
    fail stopped_during_checkpoint_gives_up "rc=$rc after $((t1 - t0)) s: $(cat "$T/err")"
fi
still_counting stopped_during_checkpoint_program_survives "$id-big" "$pid"
no_tmp stopped_during_checkpoint_no_tmp "$T/big.img"
kill -9 "$pid"

# ---- pipes to a process outside are named at checkpoint ----------------------
(cd "$T" && sleep 60 | exec env LD_PRELOAD="$SHIM" CKSHIM_APP_ID="$id-outpipe" \
    python3 "$T/count.py" >"$T/outpipe.log" 2>&1) &
PIDS+=("$!")
wait_for 10 grep -q READY "$T/outpipe.log"
# (the pipeline's subshell is not the program: find it by its id)
op=
for p in $(pgrep -u "$(id -u)" python3); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "CKSHIM_APP_ID=$id-outpipe" && op=$p
done
PIDS+=("$op")
"$C" checkpoint "$op" -o "$T/op.img" >/dev/null 2>"$T/err"
grep -q "note: fd 0.*: a pipe to or from outside the program" "$T/err" &&
    pass outside_pipe_named || fail outside_pipe_named "$(cat "$T/err")"
kill -9 "$op" 2>/dev/null

# ---- an unsafe socket directory: refused loudly, private fallback -----------
# (as an ordinary user only: the check moves the user's socket directory
# aside for a moment, which would disturb root's other programs)
if [ "$(id -u)" -eq 0 ]; then
    echo "SKIP unsafe_sockdir: runs as an ordinary user only"
elif [ -e "$SOCKDIR" ] && ! mv "$SOCKDIR" "$T/sockdir.saved"; then
    fail unsafe_sockdir "cannot move $SOCKDIR aside"
else
    mkdir "$T/planted"
    ln -s "$T/planted" "$SOCKDIR"
    (cd "$T" && exec env LD_PRELOAD="$SHIM" CKSHIM_APP_ID="$id-sd" python3 "$T/count.py" \
        >"$T/sd.log" 2>&1) &
    sp=$!
    PIDS+=("$sp")
    wait_for 10 grep -q READY "$T/sd.log"
    if grep -q "not safe for control sockets (it is a symbolic link); using $HOME/.ckshim" "$T/sd.log" &&
        [ -z "$(ls -A "$T/planted")" ]; then
        pass unsafe_sockdir_program_warns
    else
        fail unsafe_sockdir_program_warns "$(head -3 "$T/sd.log") / $(ls -A "$T/planted")"
    fi
    "$C" checkpoint "$sp" -o "$T/sd.img" >/dev/null 2>"$T/err"
    rc=$?
    [ $rc -eq 0 ] && grep -q "warning: .*not safe" "$T/err" && pass unsafe_sockdir_fallback_works ||
        fail unsafe_sockdir_fallback_works "rc=$rc $(cat "$T/err")"
    kill -9 "$sp"
    rm -f "$SOCKDIR"
    [ -e "$T/sockdir.saved" ] && mv "$T/sockdir.saved" "$SOCKDIR"
fi
exit 0
