#!/bin/bash
# test_hooks.sh - programs that help: checkpoint hooks (ckshim.h) and
# action scripts (coord checkpoint/restore --action-script).
#
#   bash tests/integration/test_hooks.sh BUILD_DIR
#
# Hooks, with the test program `hooks` (three hooks a, b, c that print
# "hook EVENT NAME"; see progs/hooks.c): before-hooks in registration
# order and after-checkpoint hooks in reverse order; a refusing hook named
# in coord's message, with the program, the image path and the counter
# untouched and the after-hooks of the hooks that ran; after-checkpoint
# hooks after a checkpoint that failed after every before-hook ran; none
# with --kill; after-restore hooks once per restore, also after a second
# restore; dump on a signal (one the program handles, one that ends it);
# the 64-hook limit; the program without the shim; a hook of a Python
# program through ctypes. The example
# examples/c/hook_client keeps echoing with an outside echo server across
# checkpoints and a restore. Action scripts: every stage with its
# environment (also with the image on standard output), a failing and a
# killed pre-checkpoint script, post-checkpoint
# after a failed checkpoint, post-restore in the foreground and detached, a
# failing post-restore script, bad paths.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-hooks.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# hooks_log: the hook lines of $T/hooks.log, joined with commas.
hooks_log() { grep '^hook ' "$T/hooks.log" | tr '\n' ',' | sed 's/,$//'; }

hooks_are() { [ "$(hooks_log)" = "$1" ]; }

# expect_hooks NAME EXPECTED: the hook lines become EXPECTED (joined;
# after-checkpoint hooks run once coord is done).
expect_hooks() {
    if wait_for 5 hooks_are "$2"; then
        pass "$1"
    else
        fail "$1" "hooks: $(hooks_log); expected $2"
    fi
}

counter_sum() { cat "$T/counters" 2>/dev/null | cksum; }

BEFORE="hook 0 a,hook 0 b,hook 0 c"
AFTER1="hook 1 c,hook 1 b,hook 1 a"
AFTER2="hook 2 c,hook 2 b,hook 2 a"

# ---- order, refusal, failure, --kill, restore twice
export HOOKS_REFUSE="$T/refuse" HOOKS_CHILD="$T/child"
start_test_prog hooks || exit 0
hpid=$pid
if "$C" checkpoint "$hpid" -o "$T/h1.img" >"$T/out" 2>"$T/err"; then
    expect_hooks hooks_order_before_and_after_checkpoint "$BEFORE,$AFTER1"
else
    fail hooks_order_before_and_after_checkpoint "checkpoint failed"
fi

seen="$(hooks_log)"
cp "$T/h1.img" "$T/h1.copy"
sum=$(counter_sum)
touch "$T/refuse"
"$C" checkpoint "$hpid" -o "$T/h1.img" >"$T/out" 2>"$T/err"
rc=$?
rm -f "$T/refuse"
if [ $rc -eq 1 ] && grep -q "before-checkpoint hook hook_b (hook 2 of 3) returned 7" "$T/err" &&
    cmp -s "$T/h1.img" "$T/h1.copy" && [ "$(counter_sum)" = "$sum" ] && alive "$hpid" &&
    ! ls -a "$T" | grep -q '\.tmp\.'; then
    pass hook_refusal_names_hook_changes_nothing
else
    fail hook_refusal_names_hook_changes_nothing "rc=$rc"
fi
expect_hooks hook_refusal_runs_after_hooks_of_those_that_ran "$seen,hook 0 a,hook 0 b refused,hook 1 a"

# A hook without a symbol (the program stripped): named by its address and
# the file and offset it is at.
strip -o "$T/hooks-stripped" "$B/tests/progs/hooks"
(cd "$T" && exec env LD_PRELOAD="$SHIM" CK_GO="$T/nogo" HOOKS_REFUSE="$T/hooks-stripped" "$T/hooks-stripped" \
    >"$T/stripped.log" 2>&1) &
spid=$!
disown "$spid" 2>/dev/null
PIDS+=("$spid")
if wait_for 10 grep -q READY "$T/stripped.log"; then
    "$C" checkpoint "$spid" -o "$T/stripped.img" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -eq 1 ] &&
        grep -Eq "hook 0x[0-9a-f]+ \($T/hooks-stripped\+0x[0-9a-f]+\) \(hook 2 of 3\) returned 7" "$T/err"; then
        pass hook_refusal_names_address_when_stripped
    else
        fail hook_refusal_names_address_when_stripped "rc=$rc"
    fi
else
    fail hook_refusal_names_address_when_stripped "the stripped program did not start"
fi
kill -9 "$spid"

# A child process, started by hook c, makes the checkpoint of the process
# alone fail after every before-hook returned 0 (--no-fork: coord does not
# take it again as a tree): all three after-hooks run (c ends the child).
seen="$(hooks_log)"
touch "$T/child"
"$C" checkpoint "$hpid" --no-fork -o "$T/h2.img" >"$T/out" 2>"$T/err"
rc=$?
rm -f "$T/child"
if [ $rc -eq 1 ] && grep -q "child process" "$T/err" && [ ! -e "$T/h2.img" ]; then
    expect_hooks hook_failed_checkpoint_runs_after_hooks "$seen,$BEFORE,$AFTER1"
else
    fail hook_failed_checkpoint_runs_after_hooks "rc=$rc"
fi

# --kill: no after-checkpoint hooks; each restore runs the after-restore
# hooks once; restore, run, checkpoint, restore again.
seen="$(hooks_log)"
if "$C" checkpoint "$hpid" -o "$T/h3.img" --kill >"$T/out" 2>"$T/err" && wait_for 10 gone "$hpid" &&
    np=$(cd / && timeout 30 "$C" restore --detach "$T/h3.img" 2>"$T/err") && [ -n "$np" ]; then
    PIDS+=("$np")
    expect_hooks hook_after_restore_once "$seen,$BEFORE,$AFTER2"
    seen="$(hooks_log)"
    sleep 0.3
    if "$C" checkpoint "$np" -o "$T/h4.img" --kill >"$T/out" 2>"$T/err" && wait_for 10 gone "$np" &&
        np2=$(cd / && timeout 30 "$C" restore --detach "$T/h4.img" 2>"$T/err") && [ -n "$np2" ]; then
        PIDS+=("$np2")
        expect_hooks hook_after_second_restore "$seen,$BEFORE,$AFTER2"
        date +%s >"$T/go"
        wait_for 20 gone "$np2"
        if [ "$(tail -n 1 "$T/hooks.log")" = PASS ]; then
            pass hooks_program_verdict
        else
            fail hooks_program_verdict "$(tail -n 2 "$T/hooks.log")"
        fi
    else
        fail hook_after_second_restore "second checkpoint or restore failed"
    fi
else
    fail hook_after_restore_once "checkpoint --kill or restore failed"
fi
unset HOOKS_REFUSE HOOKS_CHILD
rm -f "$T/go"

# ---- dump on a signal: one the program handles (it goes on: after-
# checkpoint hooks), one whose default action ends it (no after-hooks).
mv "$T/hooks.log" "$T/hooks.1.log"
export CKSHIM_DUMP_ON=USR1 CKSHIM_DUMP_FILE="$T/usr1.img"
start_test_prog hooks || exit 0
kill -USR1 "$pid"
if wait_for 10 grep -q usr1 "$T/hooks.log" && [ -s "$T/usr1.img" ]; then
    expect_hooks hook_dump_on_handled_signal "$BEFORE,$AFTER1"
else
    fail hook_dump_on_handled_signal "no dump or no usr1: $(hooks_log)"
fi
kill -9 "$pid"
mv "$T/hooks.log" "$T/hooks.2.log"
export CKSHIM_DUMP_ON=TERM CKSHIM_DUMP_FILE="$T/term.img"
start_test_prog hooks || exit 0
kill -TERM "$pid"
if wait_for 10 gone "$pid" && [ -s "$T/term.img" ]; then
    expect_hooks hook_dump_on_ending_signal "$BEFORE"
else
    fail hook_dump_on_ending_signal "no dump, or the program did not end"
fi
unset CKSHIM_DUMP_ON CKSHIM_DUMP_FILE

# ---- the table's limit; the program without the shim
mv "$T/hooks.log" "$T/hooks.3.log"
HOOKS_FILL=1 start_test_prog hooks || exit 0
if grep -q "registered 64 hooks, then ENOSPC" "$T/hooks.log"; then
    pass hook_table_full_enospc
else
    fail hook_table_full_enospc "$(grep info "$T/hooks.log")"
fi
kill -9 "$pid"
out=$(cd "$T" && env -u LD_PRELOAD timeout 10 "$B/tests/progs/hooks" 2>&1)
if echo "$out" | grep -q "no shim: ENOSYS" && echo "$out" | grep -q '^PASS'; then
    pass hooks_program_runs_without_shim
else
    fail hooks_program_runs_without_shim "$out"
fi

# ---- the example: hook_client and an outside echo server
cat >"$T/echo.py" <<'PY'
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
def serve(c):
    while True:
        d = c.recv(4096)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
python3 "$T/echo.py" "$T/port" 2>"$T/echo.err" &
epid=$!
disown "$epid" 2>/dev/null
PIDS+=("$epid")
# count PATTERN: lines of the client's log matching PATTERN (0 before it starts)
count() {
    local n
    n=$(grep -sc "$1" "$T/client.log")
    echo "${n:-0}"
}
echoes() { count '^echo '; }
connects() { count '^connected'; }
echoes_above() { [ "$(echoes)" -gt "$1" ]; }
if wait_for 10 test -s "$T/port"; then
    (cd "$T" && exec env LD_PRELOAD="$SHIM" "$B/examples/hook_client" 127.0.0.1 "$(cat "$T/port")" \
        >"$T/client.log" 2>&1) &
    cpid=$!
    disown "$cpid" 2>/dev/null
    PIDS+=("$cpid")
    if wait_for 10 echoes_above 1 &&
        "$C" checkpoint "$cpid" -o "$T/client.img" >"$T/out" 2>"$T/err" &&
        n=$(echoes) && wait_for 10 echoes_above "$n" && [ "$(connects)" -eq 2 ]; then
        pass hook_client_checkpoint_and_go_on
    else
        fail hook_client_checkpoint_and_go_on "$(tail -n 2 "$T/client.log")"
    fi
    if "$C" checkpoint "$cpid" -o "$T/client.img" --kill >"$T/out" 2>"$T/err" && wait_for 10 gone "$cpid" &&
        n=$(echoes) && np=$(cd / && timeout 30 "$C" restore --detach "$T/client.img" 2>"$T/err") &&
        [ -n "$np" ]; then
        PIDS+=("$np")
        if wait_for 10 echoes_above "$((n + 1))" && alive "$np" && [ "$(connects)" -eq 3 ] &&
            ! grep -q '^error' "$T/client.log"; then
            pass hook_client_keeps_echoing_after_restore
        else
            fail hook_client_keeps_echoing_after_restore "$(tail -n 2 "$T/client.log")"
        fi
        kill -9 "$np"
    else
        fail hook_client_keeps_echoing_after_restore "checkpoint --kill or restore failed"
    fi
else
    fail hook_client_checkpoint_and_go_on "the echo server did not start: $(cat "$T/echo.err")"
fi
kill -9 "$epid" 2>/dev/null

# ---- Python: a hook through ctypes (called on the shim's thread, which
# ctypes lets take the interpreter lock)
cat >"$T/pyhook.py" <<'PY'
import ctypes, time
HOOK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
def hook(event, arg):
    print("hook", event, flush=True)
    return 0
cb = HOOK(hook)  # kept: the shim calls it later
reg = getattr(ctypes.CDLL(None), "ckshim_register_hook", None)
print("register", reg(cb, None) if reg else "no shim", flush=True)
print("READY", flush=True)
while True:
    time.sleep(0.05)
PY
pyhooks() { grep '^hook' "$T/pyhook.log" | tr '\n' ',' | sed 's/,$//'; }
pyhooks_are() { [ "$(pyhooks)" = "$1" ]; }
if start_py_app pyhook pyhook.py && "$C" checkpoint "$pid" -o "$T/py.img" >"$T/out" 2>"$T/err" &&
    wait_for 5 pyhooks_are "hook 0,hook 1" &&
    "$C" checkpoint "$pid" -o "$T/py.img" --kill >"$T/out" 2>"$T/err" && wait_for 10 gone "$pid" &&
    np=$(cd / && timeout 30 "$C" restore --detach "$T/py.img" 2>"$T/err") && [ -n "$np" ]; then
    PIDS+=("$np")
    if wait_for 5 pyhooks_are "hook 0,hook 1,hook 0,hook 2"; then
        pass hook_from_python_ctypes
    else
        fail hook_from_python_ctypes "hooks: $(pyhooks)"
    fi
    kill -9 "$np"
else
    fail hook_from_python_ctypes "hooks: $(pyhooks); $(tail -n 1 "$T/pyhook.log")"
fi

# ---- action scripts
cat >"$T/act.sh" <<'SH'
#!/bin/sh
echo "$CKSHIM_ACTION pid=$CKSHIM_PID image=$CKSHIM_IMAGE result=${CKSHIM_RESULT-} path=$PATH ld=${LD_PRELOAD-} counter=${CKSHIM_COUNTER-}" >>"$(dirname "$0")/act.log"
echo "script output"
case "$CKSHIM_ACTION" in
pre-checkpoint) [ -e "$(dirname "$0")/act.fail" ] && exit 3 ;;
post-restore) [ -e "$(dirname "$0")/act.postfail" ] && exit 4 ;;
esac
exit 0
SH
cat >"$T/killed.sh" <<'SH'
#!/bin/sh
kill -9 $$
SH
chmod +x "$T/act.sh" "$T/killed.sh"
act() { cat "$T/act.log" 2>/dev/null; }

mv "$T/hooks.log" "$T/hooks.4.log"
start_test_prog hooks || exit 0
apid=$pid
"$C" checkpoint "$apid" -o "$T/a1.img" --action-script "$T/act.sh" >"$T/out" 2>"$T/err"
rc=$?
exp="pre-checkpoint pid=$apid image=$T/a1.img result= path=/usr/local/bin:/usr/bin:/bin ld= counter=
post-checkpoint pid=$apid image=$T/a1.img result=ok path=/usr/local/bin:/usr/bin:/bin ld= counter="
if [ $rc -eq 0 ] && [ "$(act)" = "$exp" ] && grep -q "script output" "$T/err" && [ ! -s "$T/out" ]; then
    pass action_script_checkpoint_stages
else
    fail action_script_checkpoint_stages "rc=$rc, script saw: $(act)"
fi

rm -f "$T/act.log"
touch "$T/act.fail"
sum=$(counter_sum)
"$C" checkpoint "$apid" -o "$T/a2.img" --action-script "$T/act.sh" >"$T/out" 2>"$T/err"
rc=$?
rm -f "$T/act.fail"
if [ $rc -eq 1 ] && grep -q "pre-checkpoint action script $T/act.sh refused the checkpoint (exit status 3)" "$T/err" &&
    [ ! -e "$T/a2.img" ] && [ "$(counter_sum)" = "$sum" ] && alive "$apid" &&
    [ "$(act | cut -d' ' -f1)" = pre-checkpoint ] && [ "$(hooks_log)" = "$BEFORE,$AFTER1" ]; then
    pass action_script_failing_pre_refuses
else
    fail action_script_failing_pre_refuses "rc=$rc, script saw: $(act), hooks: $(hooks_log)"
fi

"$C" checkpoint "$apid" -o "$T/a2.img" --action-script "$T/killed.sh" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "killed.sh refused the checkpoint (killed by signal 9" "$T/err" &&
    [ ! -e "$T/a2.img" ] && alive "$apid"; then
    pass action_script_killed_pre_refuses
else
    fail action_script_killed_pre_refuses "rc=$rc"
fi

# -o -: the image on standard output, the script's output on standard error
# (--counter none: a1.img stays the newest image, restored below).
rm -f "$T/act.log"
"$C" checkpoint "$apid" -o - --counter none --action-script "$T/act.sh" >"$T/a0.img" 2>"$T/err"
rc=$?
if [ $rc -eq 0 ] && "$C" inspect "$T/a0.img" --verify --counter none >/dev/null 2>&1 && grep -q "script output" "$T/err" &&
    [ "$(act | cut -d' ' -f1,3 | tr '\n' ,)" = "pre-checkpoint image=-,post-checkpoint image=-," ]; then
    pass action_script_image_to_stdout
else
    fail action_script_image_to_stdout "rc=$rc, script saw: $(act)"
fi

# A checkpoint that fails after the pre-checkpoint script ran (a hook
# refuses): post-checkpoint runs with CKSHIM_RESULT=failed.
rm -f "$T/act.log"
kill -9 "$apid"
mv "$T/hooks.log" "$T/hooks.5.log"
HOOKS_REFUSE="$T/refuse" start_test_prog hooks || exit 0
apid=$pid
touch "$T/refuse"
"$C" checkpoint "$apid" -o "$T/a3.img" --action-script "$T/act.sh" >"$T/out" 2>"$T/err"
rc=$?
rm -f "$T/refuse"
if [ $rc -eq 1 ] && [ "$(act | cut -d' ' -f1,4)" = "pre-checkpoint result=
post-checkpoint result=failed" ]; then
    pass action_script_post_after_failed_checkpoint
else
    fail action_script_post_after_failed_checkpoint "rc=$rc, script saw: $(act)"
fi

# post-restore: detached, then in the foreground (coord becomes the program).
rm -f "$T/act.log"
if "$C" checkpoint "$apid" -o "$T/a4.img" --kill >"$T/out" 2>"$T/err" && wait_for 10 gone "$apid" &&
    np=$(cd / && timeout 30 "$C" restore --detach "$T/a4.img" --action-script "$T/act.sh" 2>"$T/err") &&
    [ -n "$np" ]; then
    PIDS+=("$np")
    if [ "$(act)" = "post-restore pid=$np image=$T/a4.img result= path=/usr/local/bin:/usr/bin:/bin ld= counter=" ] &&
        grep -q "script output" "$T/err"; then
        pass action_script_post_restore_detached
    else
        fail action_script_post_restore_detached "script saw: $(act)"
    fi
    rm -f "$T/act.log"
    touch "$T/act.postfail"
    if "$C" checkpoint "$np" -o "$T/a5.img" --kill >"$T/out" 2>"$T/err" && wait_for 10 gone "$np"; then
        (cd / && exec "$C" restore "$T/a5.img" --action-script "$T/act.sh" >"$T/fg.out" 2>"$T/fg.err") &
        fpid=$!
        disown "$fpid" 2>/dev/null
        PIDS+=("$fpid")
        if wait_for 10 grep -q "post-restore action script $T/act.sh failed (exit status 4); the restored program goes on" "$T/fg.err" &&
            [ "$(act | cut -d' ' -f1,2)" = "post-restore pid=$fpid" ] && alive "$fpid" &&
            wait_for 5 grep -q '^hook 2 a' "$T/hooks.log" && [ "$(grep -c '^hook 2 a' "$T/hooks.log")" -eq 2 ]; then
            pass action_script_post_restore_foreground_failing
        else
            fail action_script_post_restore_foreground_failing "script saw: $(act); $(tail -n 1 "$T/fg.err")"
        fi
        kill -9 "$fpid"
    else
        fail action_script_post_restore_foreground_failing "checkpoint --kill failed"
    fi
    rm -f "$T/act.postfail"
else
    fail action_script_post_restore_detached "checkpoint --kill or restore failed"
fi

# Bad paths: a usage error (exit 2) before anything is done.
mv "$T/hooks.log" "$T/hooks.6.log"
start_test_prog hooks || exit 0
rm -f "$T/act.log"
chmod -x "$T/killed.sh"
bad=0
for p in "$T/missing.sh" "$T" "$T/killed.sh" ""; do
    "$C" checkpoint "$pid" -o "$T/a6.img" --action-script "$p" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -ne 2 ] || ! grep -q -- "--action-script" "$T/err" || [ -e "$T/a6.img" ]; then
        bad=1
        echo "    | checkpoint --action-script '$p': rc=$rc $(head -n 1 "$T/err")"
    fi
done
"$C" restore "$T/a1.img" --action-script "$T/missing.sh" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 2 ] && grep -q "missing.sh: No such file" "$T/err" || {
    bad=1
    echo "    | restore --action-script missing: rc=$rc $(head -n 1 "$T/err")"
}
if [ $bad -eq 0 ] && [ -z "$(hooks_log)" ] && alive "$pid" && [ ! -e "$T/act.log" ]; then
    pass action_script_bad_path_usage_error
else
    fail action_script_bad_path_usage_error "hooks: $(hooks_log)"
fi
# the image a1.img was not used up by the refused restore (its log file
# has been moved since: allowed)
restore_ok action_script_bad_path_restore_keeps_image "$T/a1.img" --allow-changed all
