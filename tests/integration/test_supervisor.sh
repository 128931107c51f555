#!/bin/bash
# test_supervisor.sh - coord run as a supervisor (--every, --images, --keep,
# --auto-restore, --resume, SIGTERM/SIGINT).
#
#   bash tests/integration/test_supervisor.sh BUILD_DIR
#
# A python3 loop appends its count to a log (opening and closing it each
# time) under `coord run --every ... --images DIR`: periodic images appear
# and only --keep of them stay; `coord list` shows the supervisor and its
# newest image; kill -9 of the program brings it back from the newest
# image (the count goes on from there, not from 1); SIGTERM to the
# supervisor takes a last image and exits 0 (or --exit-code-on-checkpoint),
# and --resume goes on from it; a program that crashes after every restore
# makes the supervisor give up with a message; a bad --images (another
# user's directory, a symbolic link, a file) is refused with exit 2 and
# nothing started; an image older than the counter is refused on --resume;
# a supervised process tree comes back whole after kill -9 of its root.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
C="$B/coord"
T=$(mktemp -d /tmp/ckshim-super.XXXXXX)
chmod 755 "$T"
. "$HERE/lib.sh"
trap sv_cleanup EXIT

# loop.py LOG [CRASH_MARKER]: append 1, 2, 3... to LOG every 50 ms; exit 3
# when CRASH_MARKER exists; exit 0 when the file $T/finish exists.
cat >"$T/loop.py" <<EOF
import os, sys, time
log = sys.argv[1]
crash = sys.argv[2] if len(sys.argv) > 2 else None
n = 0
while True:
    n += 1
    with open(log, "a") as f:
        f.write("%d\n" % n)
    if crash and os.path.exists(crash):
        os._exit(3)
    if os.path.exists("$T/finish"):
        sys.exit(0)
    time.sleep(0.05)
EOF

# the real interpreter, not a wrapper script (pyenv) that would be the
# program with python as its child
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

state() { awk -v k="$2" '$1==k{print $2}' "$1/supervise.state" 2>/dev/null; }
nimages() { ls "$1" | grep -c '^ckpt-.*\.img$'; }
# wait_for evaluates its command each time: these read the values then
state_is() { [ "$(state "$1" "$2")" = "$3" ]; }
seq_above() { [ "$(state "$1" seq)" -gt "$2" ]; }
lines_above() { [ "$(wc -l <"$1")" -gt "$2" ]; }
last_line() { tail -n 1 "$1" 2>/dev/null; }
have_image() { [ -f "$1/ckpt-$(printf %06d "$2").img" ]; }
# said N: the last lines supervisor N wrote on stderr ($T/supN.err), but
# for its checkpoints' summaries
said() { grep -v 'checkpoint [0-9]* ->' "$T/sup$1.err" | tail -n 3; }

# ---- periodic images, --keep, coord list ----
D="$T/img"
(cd "$T" && exec "$C" run --every 300ms --images "$D" --keep 2 --auto-restore \
    -- "$PY" "$T/loop.py" "$T/a.log" >"$T/sup1.out" 2>"$T/sup1.err") &
sup=$!
PIDS+=("$sup")
two_images() { [ "$(nimages "$1")" -eq 2 ]; }
# (the state file says seq 5 once the older images are pruned)
if wait_for 20 have_image "$D" 5 && wait_for 5 seq_above "$D" 4; then
    wait_for 3 two_images "$D"
    n=$(nimages "$D")
    mode=$(stat -c %a "$D")
    if [ "$n" -eq 2 ] && [ "$mode" = 700 ] && ! have_image "$D" 1 && ! have_image "$D" 2; then
        pass supervisor_periodic_keep
    else
        fail supervisor_periodic_keep "$n images ($(ls "$D" | tr '\n' ' ')), dir mode $mode"
    fi
else
    fail supervisor_periodic_keep "no fifth image after 20 s: $(head -c 300 "$T/sup1.err")"
fi
prog=$(state "$D" program)
"$C" list >"$T/list.out" 2>&1
"$C" list --json >"$T/list.json" 2>&1
if grep -Eq "^$sup +$prog .*$D/ckpt-[0-9]+\.img +$PY" "$T/list.out" &&
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); s=d['supervised'][0]; \
sys.exit(not (s['supervisor']==$sup and s['program']==$prog and s['newest_image'].startswith('$D/')))" \
        "$T/list.json"; then
    pass supervisor_list
else
    fail supervisor_list "$(cat "$T/list.out")"
fi

# a second supervisor in the same directory is refused, nothing started
rm -f "$T/started"
"$C" run --every 1s --images "$D" -- sh -c "touch $T/started" 2>"$T/err"
rc=$?
sleep 0.2
if [ $rc -eq 1 ] && grep -q "in use by the supervisor $sup" "$T/err" && [ ! -e "$T/started" ]; then
    pass supervisor_dir_in_use
else
    fail supervisor_dir_in_use "rc=$rc"
fi

# ---- kill -9 of the program: restored from the newest image ----
if [ -n "$prog" ] && alive "$prog"; then
    kill -9 "$prog"
    at=$(wc -l <"$T/a.log")
    before=$(last_line "$T/a.log")
    if wait_for 20 state_is "$D" restores 1 &&
        wait_for 10 lines_above "$T/a.log" $((at + 10)); then
        first=$(sed -n "$((at + 1))p" "$T/a.log")
        prog2=$(state "$D" program)
        if [ "$first" -gt 5 ] && [ "$first" -le $((before + 1)) ] && [ "$prog2" != "$prog" ] &&
            alive "$prog2"; then
            pass supervisor_auto_restore
        else
            fail supervisor_auto_restore "count went $before -> $first after the restore"
        fi
    else
        fail supervisor_auto_restore "not restored: $(grep -v 'checkpoint [0-9]* ->' "$T/sup1.err" | head -3)"
    fi
    # the restored program is checkpointed again
    s0=$(state "$D" seq)
    if wait_for 10 seq_above "$D" $((s0 + 1)); then
        pass supervisor_restored_checkpointed
    else
        fail supervisor_restored_checkpointed "seq stays $s0"
    fi
else
    fail supervisor_auto_restore "no program pid in the state file"
fi

# ---- SIGTERM: a last image, exit 0; --resume goes on from it ----
prog=$(state "$D" program)
kill -TERM "$sup"
wait "$sup"
rc=$?
last=$(state "$D" seq)
before=$(last_line "$T/a.log")
if [ $rc -eq 0 ] && wait_for 5 gone "$prog" && [ "$(state "$D" status)" = stopped ] &&
    grep -q 'last checkpoint' "$T/sup1.err"; then
    pass supervisor_sigterm_checkpoint
else
    fail supervisor_sigterm_checkpoint "rc=$rc status=$(state "$D" status): $(tail -n 2 "$T/sup1.err")"
fi
at=$(wc -l <"$T/a.log")
(cd "$T" && exec "$C" run --every 300ms --images "$D" --keep 2 --resume \
    --exit-code-on-checkpoint 85 -- "$PY" "$T/loop.py" "$T/a.log" \
    >"$T/sup2.out" 2>"$T/sup2.err") &
sup=$!
PIDS+=("$sup")
if wait_for 10 lines_above "$T/a.log" $((at + 5)); then
    first=$(sed -n "$((at + 1))p" "$T/a.log")
    if [ "$first" = $((before + 1)) ]; then
        pass supervisor_resume
    else
        fail supervisor_resume "count was $before, went on with $first"
    fi
else
    fail supervisor_resume "nothing runs: $(head -c 300 "$T/sup2.err")"
fi
wait_for 10 seq_above "$D" $((last + 1))
kill -INT "$sup"
wait "$sup"
rc=$?
if [ $rc -eq 85 ] && [ "$(state "$D" status)" = stopped ]; then
    pass supervisor_exit_code_on_checkpoint
else
    fail supervisor_exit_code_on_checkpoint "rc=$rc: $(tail -n 2 "$T/sup2.err")"
fi

# ---- an image older than the counter is refused on --resume ----
newest=$(state "$D" seq)
rm -f "$D/ckpt-$(printf %06d "$newest").img"
at=$(wc -l <"$T/a.log")
timeout 30 "$C" run --every 300ms --images "$D" --keep 2 --resume \
    -- "$PY" "$T/loop.py" "$T/a.log" >"$T/sup3.out" 2>"$T/sup3.err"
rc=$?
sleep 0.3
if [ $rc -eq 1 ] && grep -q 'stale' "$T/sup3.err" && grep -q 'never tried' "$T/sup3.err" &&
    [ "$(wc -l <"$T/a.log")" -eq "$at" ]; then
    pass supervisor_resume_stale_refused
else
    fail supervisor_resume_stale_refused "rc=$rc: $(said 3)"
fi

# ---- a program that crashes after every restore ----
D2="$T/img2"
(cd "$T" && exec "$C" run --every 200ms --images "$D2" --auto-restore --max-restores 3 \
    --window 60s -- "$PY" "$T/loop.py" "$T/b.log" "$T/crash" \
    >"$T/sup4.out" 2>"$T/sup4.err") &
sup=$!
PIDS+=("$sup")
wait_for 20 have_image "$D2" 2
touch "$T/crash"
if wait_for 30 gone "$sup"; then
    wait "$sup"
    rc=$?
    if [ $rc -eq 1 ] && grep -q 'giving up' "$T/sup4.err" &&
        [ "$(grep -c 'restoring it from' "$T/sup4.err")" -eq 3 ]; then
        pass supervisor_crash_loop
    else
        fail supervisor_crash_loop "rc=$rc: $(said 4)"
    fi
else
    fail supervisor_crash_loop "the supervisor still runs after 30 s"
fi
rm -f "$T/crash"

# ---- a second signal during the last checkpoint ends everything at once,
# the earlier images intact and no temporary file left ----
sum_before=$(cd "$D2" && md5sum ckpt-*.img)
(cd "$T" && exec env CKSHIM_TEST_HOOK=before-commit "$C" run --every 1h --images "$D2" \
    -- "$PY" "$T/loop.py" "$T/c.log" >"$T/sup5.out" 2>"$T/sup5.err") &
sup=$!
PIDS+=("$sup")
wait_for 10 test -s "$T/c.log"
prog=$(state "$D2" program)
kill -TERM "$sup"
# the checkpoint stops itself (SIGSTOP) just before its commit
wait_for 10 grep -q 'last checkpoint' "$T/sup5.err"
sleep 1
kill -TERM "$sup"
wait_for 10 gone "$sup"
wait "$sup"
rc=$?
if [ $rc -ne 0 ] && [ -n "$prog" ] && wait_for 5 gone "$prog" &&
    [ "$(cd "$D2" && md5sum ckpt-*.img)" = "$sum_before" ] &&
    [ -z "$(ls -A "$D2" | grep tmp)" ] && grep -q 'second signal' "$T/sup5.err"; then
    pass supervisor_second_signal
else
    fail supervisor_second_signal "rc=$rc, $D2: $(ls -A "$D2" | tr '\n' ' '): $(tail -n 2 "$T/sup5.err")"
fi

# ---- exit 0 ends the supervision; --resume then runs nothing ----
D6="$T/img6"
rm -f "$T/finish"
(cd "$T" && exec "$C" run --every 200ms --images "$D6" --auto-restore \
    -- "$PY" "$T/loop.py" "$T/d.log" >"$T/sup6.out" 2>"$T/sup6.err") &
sup=$!
PIDS+=("$sup")
wait_for 20 have_image "$D6" 1
touch "$T/finish"
wait_for 10 gone "$sup"
wait "$sup"
rc=$?
n=$(wc -l <"$T/d.log")
"$C" run --every 200ms --images "$D6" --resume -- "$PY" "$T/loop.py" "$T/d.log" \
    >"$T/sup7.out" 2>"$T/sup7.err"
rc2=$?
sleep 0.3
if [ $rc -eq 0 ] && [ "$(state "$D6" status)" = exited ] && [ $rc2 -eq 0 ] &&
    grep -q 'already finished' "$T/sup7.err" && [ "$(wc -l <"$T/d.log")" -eq "$n" ]; then
    pass supervisor_exit0_ends
else
    fail supervisor_exit0_ends "rc=$rc rc2=$rc2 status=$(state "$D6" status): $(tail -n 1 "$T/sup7.err")"
fi
rm -f "$T/finish"

# ---- a process tree: kill -9 of its root restores the whole tree ----
cat >"$T/tree.py" <<EOF2
import os, sys, time
log = sys.argv[1]
parent = os.getpid()
if os.fork() == 0:
    n = 0
    while os.getppid() == parent:   # an orphan of the killed tree stops
        n += 1
        with open(log, "a") as f:
            f.write("%d\\n" % n)
        time.sleep(0.05)
    os._exit(0)
os.wait()
EOF2
D8="$T/img8"
(cd "$T" && exec "$C" run --every 300ms --images "$D8" --auto-restore \
    -- "$PY" "$T/tree.py" "$T/t.log" >"$T/sup8.out" 2>"$T/sup8.err") &
sup=$!
PIDS+=("$sup")
if wait_for 20 have_image "$D8" 3 && grep -q 'process tree of 2' "$T/sup8.err"; then
    prog=$(state "$D8" program)
    kill -9 "$prog"
    sleep 0.3
    at=$(wc -l <"$T/t.log")
    if wait_for 20 state_is "$D8" restores 1 && wait_for 10 lines_above "$T/t.log" $((at + 10)); then
        first=$(sed -n "$((at + 1))p" "$T/t.log")
        if [ "$first" -gt 5 ]; then
            pass supervisor_tree_restore
        else
            fail supervisor_tree_restore "the worker's count went on with $first"
        fi
    else
        fail supervisor_tree_restore "not restored: $(said 8)"
    fi
else
    fail supervisor_tree_restore "no tree images: $(said 8)"
fi
kill -TERM "$sup"
wait "$sup"

# ---- a tree whose children are in other groups and sessions ----
# A job of a shell under `set -m` (its own process group) and a child in a
# session of its own outlived a kill -9 of the root: only the root's group
# was killed, and the restore ran each of them a second time beside the
# old one. Every process of the old program goes before the restore.
cat >"$T/groups.sh" <<'EOF2'
set -m
w() { n=0; while :; do n=$((n + 1)); echo "$1 $$ $BASHPID $n" >>"$2"; sleep 0.1; done; }
w job "$1" &
setsid bash -c "$(declare -f w); w session '$1'" &
wait
EOF2
DG="$T/imggroups"
(cd "$T" && exec "$C" run --every 300ms --images "$DG" --auto-restore \
    -- bash "$T/groups.sh" "$T/g.log" >"$T/sup9g.out" 2>"$T/sup9g.err") &
sup=$!
PIDS+=("$sup")
# writers(KIND): 1 if KIND's last 20 counts go up by one each (one writer;
# a restored copy beside the old one writes the same pid, the one the
# program knows, but a count of its own)
writers() {
    awk -v k="$1" '$1 == k' "$T/g.log" | tail -n 20 |
        awk 'NR > 1 && $4 != last + 1 { bad = 1 } { last = $4 } END { print bad ? 2 : 1 }'
}
if wait_for 20 have_image "$DG" 3 && grep -q 'process tree of [3-9]' "$T/sup9g.err"; then
    prog=$(state "$DG" program)
    kill -9 "$prog"
    if wait_for 20 state_is "$DG" restores 1; then
        sleep 2.5
        if [ "$(writers job)" = 1 ] && [ "$(writers session)" = 1 ]; then
            pass supervisor_tree_groups_not_twice
        else
            fail supervisor_tree_groups_not_twice "writers: job $(writers job), session $(writers session)"
        fi
    else
        fail supervisor_tree_groups_not_twice "not restored: $(grep 'run:' "$T/sup9g.err" | tail -n 2)"
    fi
else
    fail supervisor_tree_groups_not_twice "no tree images: $(grep -v note "$T/sup9g.err" | tail -n 2)"
fi
kill -TERM "$sup"
wait "$sup"

# ---- exit statuses pass through ----
"$C" run --every 1s --images "$T/img3" -- sh -c 'exit 7' 2>"$T/err"
rc7=$?
"$C" run --every 1s --images "$T/img3" -- sh -c 'kill -9 $$' 2>"$T/err"
rc9=$?
if [ $rc7 -eq 7 ] && [ $rc9 -eq 137 ]; then
    pass supervisor_exit_status
else
    fail supervisor_exit_status "exit 7 -> $rc7, kill -9 -> $rc9"
fi

# ---- bad --images: nothing started, exit 2 ----
bad_dir() {
    local name=$1 dir=$2 pat=$3
    rm -f "$T/started"
    "$C" run --every 1s --images "$dir" -- sh -c "touch $T/started" 2>"$T/err"
    local rc=$?
    sleep 0.2
    if [ $rc -eq 2 ] && grep -Eq -- "$pat" "$T/err" && [ ! -e "$T/started" ]; then
        pass "$name"
    else
        fail "$name" "rc=$rc, started=$([ -e "$T/started" ] && echo yes || echo no)"
    fi
}
if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$T/other"
    chown nobody "$T/other"
    other="$T/other"
else
    other=/usr
fi
bad_dir supervisor_dir_other_user "$other" 'belongs to user'
mkdir -p "$T/real"
ln -s "$T/real" "$T/link"
bad_dir supervisor_dir_symlink "$T/link" 'symbolic link'
echo x >"$T/afile"
bad_dir supervisor_dir_file "$T/afile" 'not a directory'
"$C" run --every 0 --images "$T/img4" -- true 2>"$T/err"
rc=$?
if [ $rc -eq 2 ] && grep -q 'not a duration' "$T/err"; then
    pass supervisor_bad_every
else
    fail supervisor_bad_every "rc=$rc"
fi

# stopped_helper SUP: the pid of SUP's child that is stopped (a checkpoint
# helper at its CKSHIM_TEST_HOOK point), if any
stopped_helper() { ps -o pid=,stat= --ppid "$1" | awk '$2 ~ /^T/ {print $1; exit}'; }
has_stopped_helper() { [ -n "$(stopped_helper "$1")" ]; }

# ---- a second signal once the last image is renamed into place: the
# image is committed, so the run is "stopped" (exit 0), not abandoned ----
D9="$T/img9"
(cd "$T" && exec env CKSHIM_TEST_HOOK=after-rename "$C" run --every 1h --images "$D9" \
    -- "$PY" "$T/loop.py" "$T/e.log" >"$T/sup9.out" 2>"$T/sup9.err") &
sup=$!
PIDS+=("$sup")
wait_for 10 test -s "$T/e.log"
prog=$(state "$D9" program)
kill -TERM "$sup"
# the last checkpoint stops itself (SIGSTOP) after its rename
wait_for 20 has_stopped_helper "$sup"
kill -TERM "$sup"
end_supervisor "$sup"
rc=$?
if [ $rc -eq 0 ] && [ "$(state "$D9" status)" = stopped ] && have_image "$D9" 1 &&
    [ -n "$prog" ] && wait_for 5 gone "$prog" && grep -q 'the program is saved in' "$T/sup9.err" &&
    ! grep -q 'abandoned' "$T/sup9.err"; then
    pass supervisor_second_signal_after_commit
else
    fail supervisor_second_signal_after_commit "rc=$rc status=$(state "$D9" status): $(tail -n 2 "$T/sup9.err")"
fi

# ---- periodic checkpoints that fail are said on stderr, in the state
# file and by coord list, until one is committed again ----
# pgloop.py LOG REFUSE: loop.py's count; while the file REFUSE exists, a
# child shell started without the shim (refused by a tree checkpoint)
cat >"$T/pgloop.py" <<'EOF'
import os, subprocess, sys, time
log, refuse = sys.argv[1], sys.argv[2]
n = 0
child = None
env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
while True:
    n += 1
    with open(log, "a") as f:
        f.write("%d\n" % n)
    if os.path.exists(refuse) and not child:
        child = subprocess.Popen(["sh", "-c", 'while [ -e "$1" ]; do sleep 0.05; done', "sh",
                                  refuse], env=env)
    if child and child.poll() is not None:
        child = None
    time.sleep(0.05)
EOF
D10="$T/img10"
(cd "$T" && exec "$C" run --every 300ms --images "$D10" -- "$PY" "$T/pgloop.py" "$T/f.log" \
    "$T/refuse" >"$T/sup10.out" 2>"$T/sup10.err") &
sup=$!
PIDS+=("$sup")
failures_above() { [ "$(state "$1" ckpt_failures)" -gt "$2" ] 2>/dev/null; }
no_failures() { [ -z "$(state "$1" ckpt_failures)" ]; }
if wait_for 20 have_image "$D10" 1; then
    touch "$T/refuse"
    if wait_for 20 failures_above "$D10" 1; then
        s0=$(state "$D10" seq)
        "$C" list >"$T/list10.out" 2>&1
        "$C" list --json >"$T/list10.json" 2>&1
        rm -f "$T/refuse"
        if grep -q "run: the checkpoint into .* failed ([0-9]* in a row): .*not running under the shim" "$T/sup10.err" &&
            grep -q '^last_failure .*not running under the shim' "$D10/supervise.state" &&
            grep -q "checkpoints failed since the newest image: .*not running under the shim" "$T/list10.out" &&
            python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['supervised']; \
sys.exit(not [x for x in s if x['checkpoint_failures'] >= 2 and 'not running under the shim' in x['last_failure']])" \
                "$T/list10.json" &&
            wait_for 20 seq_above "$D10" "$s0" && no_failures "$D10"; then
            pass supervisor_checkpoint_failures_shown
        else
            fail supervisor_checkpoint_failures_shown "$(grep 'run:' "$T/sup10.err" | tail -n 2); $(tail -n 2 "$T/list10.out")"
        fi
    else
        fail supervisor_checkpoint_failures_shown "no failure counted: $(said 10)"
    fi
else
    fail supervisor_checkpoint_failures_shown "no image: $(said 10)"
fi
rm -f "$T/refuse"
stop_supervisor "$sup"

# ---- a commit during which the counter moved ("may be refused as
# stale") removes no older image ----
D11="$T/img11"
(cd "$T" && exec env CKSHIM_TEST_HOOK=after-rename "$C" run --every 300ms --images "$D11" \
    --keep 1 --counter "file:$T/ctr11" -- "$PY" "$T/loop.py" "$T/g.log" \
    >"$T/sup11.out" 2>"$T/sup11.err") &
sup=$!
PIDS+=("$sup")
ok=""
if wait_for 20 has_stopped_helper "$sup"; then
    h=$(stopped_helper "$sup")
    PIDS+=("$h")
    kill -CONT "$h"
    if wait_for 20 state_is "$D11" seq 1 && wait_for 20 has_stopped_helper "$sup"; then
        h=$(stopped_helper "$sup")
        PIDS+=("$h")
        app=$(state "$D11" app_id)
        # someone else moves the counter past the image being committed
        sed -i "s/^$app .*/$app 9/" "$T/ctr11"
        kill -CONT "$h"
        if wait_for 20 state_is "$D11" seq 2 && have_image "$D11" 1 && have_image "$D11" 2 &&
            grep -q 'may be refused as stale' "$T/sup11.err" &&
            grep -q 'the older images are kept' "$T/sup11.err"; then
            ok=1
        fi
    fi
fi
if [ -n "$ok" ]; then
    pass supervisor_stale_commit_keeps_images
else
    fail supervisor_stale_commit_keeps_images "$(ls "$D11" | tr '\n' ' '): $(said 11)"
fi
# the supervisor, its program and its helper (stopped or not) end here
prog=$(state "$D11" program)
for c in $(ps -o pid= --ppid "$sup"); do kill -9 "$c" 2>/dev/null; done
kill -9 "$sup" "$prog" 2>/dev/null
wait "$sup" 2>/dev/null || : # its SIGKILL is not the script's exit status
