#!/bin/bash
# test_tree_barrier.sh - the first promise for process trees: at every
# moment the user has the running tree or a good image of it, and never a
# partly restored tree; and images of trees that are forged or damaged.
#
#   bash tests/integration/test_tree_barrier.sh BUILD_DIR
#
# A tree restores as a whole or not at all: a process that fails late in
# its restore (CKSHIM_TEST_HOOK=restore-die-late:VPID, after its pages
# are in place and its threads are made) ends every process before any
# of them runs program code, and the image still restores afterwards.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-tbar.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# A parent and two children; each, once the go file exists, leaves a
# marker file "ran.INDEX": program code ran. The marker holds what the
# three share in MAP_SHARED anonymous memory (made before the forks).
cat >"$T/marks.py" <<'EOF'
import mmap, os, sys, time
mm = mmap.mmap(-1, 4096)
mm[0:12] = b"shared-hello"
idx = 0
kids = []
for i in (1, 2):
    k = os.fork()
    if k == 0:
        idx = i
        kids = []
        break
    kids.append(k)
if idx == 0:
    time.sleep(0.3)
    print("READY", *kids, flush=True)
while True:
    if os.path.exists("go"):
        with open("ran.%d" % idx, "wb") as f:
            f.write(mm[0:12])
    time.sleep(0.02)
EOF

# markers: how many ran.* files there are
markers() { ls "$T"/ran.* 2>/dev/null | wc -l; }
# no_tree_procs: no process of marks.py left (this script's own: $T is ours)
no_tree_procs() { ! pgrep -u "$(id -u)" -f "$T/marks.py" >/dev/null; }
# end_tree: kill, by pid, the processes of marks.py still there
end_tree() {
    local p
    for p in $(pgrep -u "$(id -u)" -f "$T/marks.py"); do kill -9 "$p"; done
    wait_for 5 no_tree_procs
}

rm -f "$T/go" "$T"/ran.*
if start_py_app marks "$T/marks.py"; then
    read -r _ k1 k2 < <(grep READY "$T/marks.log")
    PIDS+=("$k1" "$k2")
    if "$C" checkpoint "$pid" -o "$T/marks.img" --kill >"$T/out" 2>"$T/err" &&
        wait_for 10 gone "$pid" && wait_for 10 gone "$k2" && cp "$T/marks.img" "$T/marks.copy"; then
        pass tree_barrier_checkpoint
    else
        fail tree_barrier_checkpoint "checkpoint failed"
    fi
    : >"$T/go"
    # The last child fails late: nothing of the tree may have run.
    out=$(cd / && CKSHIM_TEST_HOOK="restore-die-late:$k2" timeout 30 "$C" restore --detach \
        "$T/marks.img" 2>"$T/err")
    rc=$?
    [ -n "$out" ] && PIDS+=("$out")
    sleep 1
    if [ $rc -eq 1 ] && [ -z "$out" ] && [ "$(markers)" = 0 ] && wait_for 5 no_tree_procs; then
        pass tree_restore_late_failure_nothing_runs
    else
        fail tree_restore_late_failure_nothing_runs "rc=$rc out='$out', $(markers) processes ran"
        end_tree
    fi
    if grep -q "process $k2 of the tree" "$T/err"; then
        pass tree_restore_late_failure_names_process
    else
        fail tree_restore_late_failure_names_process "$k2 not named"
    fi
    # A process killed before its memory is in place (as the kernel's
    # out-of-memory killer does): the message says how it ended.
    out=$(cd / && CKSHIM_TEST_HOOK="restore-kill-early:$k2" timeout 30 "$C" restore --detach \
        "$T/marks.img" 2>"$T/err")
    rc=$?
    [ -n "$out" ] && PIDS+=("$out")
    if [ $rc -eq 1 ] && [ "$(markers)" = 0 ] &&
        grep -q "process $k2 of the tree ended before its memory was in place (killed by signal 9" \
            "$T/err"; then
        pass tree_restore_killed_early_says_how
    else
        fail tree_restore_killed_early_says_how "rc=$rc, $(markers) ran: $(cat "$T/err")"
        end_tree
    fi
    rm -f "$T"/ran.*
    # The image is still good: the counter did not move.
    np=$(cd / && timeout 30 "$C" restore --detach "$T/marks.img" 2>"$T/err")
    [ -n "$np" ] && PIDS+=("$np")
    three() { [ "$(markers)" = 3 ]; }
    if [ -n "$np" ] && wait_for 10 three; then
        pass tree_restore_after_late_failure
    else
        fail tree_restore_after_late_failure "restore gave '$np', $(markers) processes ran"
    fi
    # coord list shows the tree: its root and the members it takes along.
    "$C" list >"$T/list" 2>&1
    kids=$(cat /proc/"$np"/task/*/children 2>/dev/null)
    nin=0
    for k in $kids; do grep -Eq "^$k .* in $np " "$T/list" && nin=$((nin + 1)); done
    if [ -n "$np" ] && grep -Eq "^$np .* root\(3\) " "$T/list" && [ "$nin" = 2 ]; then
        pass tree_list_shows_tree
    else
        fail tree_list_shows_tree "root $np, members '$kids': $(cat "$T/list")"
    fi
    "$C" list --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
root = int(sys.argv[1])
m = [p for p in d["processes"] if p["tree_root"] == root]
assert len(m) == 3 and [p["tree_members"] for p in m if p["pid"] == root] == [3]' "${np:-0}" &&
        pass tree_list_json || fail tree_list_json "no tree of 3 under $np"
    end_tree
fi

# A tree restore that runs out of memory (an address-space limit the
# child's 256 MiB do not fit in): the message says so, nothing runs.
cat >"$T/big.py" <<'EOF'
import os, time
k = os.fork()
if k == 0:
    big = bytearray(256 << 20)
    while True:
        time.sleep(1)
EOF
echo "$PY_TICKS" >>"$T/big.py"
if start_py_app big "$T/big.py" && "$C" checkpoint "$pid" -o "$T/big.img" --kill >"$T/out" 2>"$T/err" &&
    wait_for 10 gone "$pid"; then
    out=$(cd / && ulimit -v 200000 && timeout 30 "$C" restore --detach "$T/big.img" 2>"$T/err")
    rc=$?
    [ -n "$out" ] && PIDS+=("$out")
    if [ $rc -eq 1 ] && [ -z "$out" ] && grep -q "out of memory" "$T/err" &&
        grep -q "ended before its memory was in place" "$T/err"; then
        pass tree_restore_out_of_memory_said
    else
        fail tree_restore_out_of_memory_said "rc=$rc out='$out': $(cat "$T/err")"
    fi
else
    fail tree_restore_out_of_memory_said "checkpoint failed: $(cat "$T/err")"
fi

# Forged and damaged tree headers (forge_tree.py keeps the header's
# checksum right): restore and inspect exit 1 with a message naming what
# is wrong, never crash, start nothing.
forged() {
    local name=$1 pat=$2
    shift 2
    python3 "$(dirname "${BASH_SOURCE[0]}")/forge_tree.py" "$T/marks.copy" "$T/forged.img" "$@" ||
        { fail "$name" "forge_tree.py failed"; return; }
    local out rc rci
    out=$(cd / && timeout 30 "$C" restore --detach "$T/forged.img" 2>"$T/err")
    rc=$?
    [ -n "$out" ] && PIDS+=("$out")
    timeout 30 "$C" inspect --verify "$T/forged.img" >/dev/null 2>"$T/ierr"
    rci=$?
    if [ $rc -eq 1 ] && [ -z "$out" ] && grep -Eq -- "$pat" "$T/err" && [ $rci -eq 1 ] &&
        grep -Eq -- "$pat" "$T/ierr" && no_tree_procs; then
        pass "$name"
    else
        fail "$name" "restore rc=$rc out='$out', inspect rc=$rci, expected /$pat/"
        end_tree
    fi
}
if [ -s "$T/marks.copy" ]; then
    forged forged_tree_pid_zero "entry 1 has pid 0" 1.vpid=0
    forged forged_tree_pid_negative "entry 2 has pid -5" 2.vpid=-5
    forged forged_tree_pid_twice "entry 2 has pid [0-9]+, as entry 1 has" 2.vpid=1.vpid
    forged forged_tree_pid_not_stream "entry 1 says pid 4242, its stream pid" 1.vpid=4242
    forged forged_tree_parent_outside "entry 1 has parent 7" 1.parent=7
    forged forged_tree_parent_after "entry 1 has parent 2" 1.parent=2
    forged forged_tree_root_parent "entry 0 is the root but has a parent" 0.parent=0
    forged forged_tree_zombie_parent "entry 2 is a child of entry 1, which exited" \
        1.flags=1 1.offset=0 1.length=0 2.parent=1
    forged forged_tree_zombie_status "entry 1 is a zombie with wait status" \
        1.flags=1 1.offset=0 1.length=99999999
    forged forged_tree_flags "entry 1 has unknown flags" 1.flags=16
    forged forged_tree_files_root "entry 0 has flags 0x8 \\(a process sharing its parent's descriptor table is neither the root" \
        0.flags=8
    forged forged_tree_orphan_root "entry 0 has flags 0x4 \\(an orphan is neither the root" \
        0.flags=4
    forged forged_tree_orphan_zombie "entry 1 has flags 0x5 \\(an orphan is neither" \
        1.flags=5 1.offset=0 1.length=0
    # SIGKILL as a stop signal (only SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU are)
    forged forged_tree_stop_signal "entry 1 has flags 0x902 \\(a stopped process's signal" \
        1.flags=2306
    forged forged_tree_offset_outside "entry 2 has its stream at .*outside the file" \
        2.offset=1099511627776
    forged forged_tree_length_outside "entry 2 has its stream at .*outside the file" \
        2.length=18446744073709547520
    forged forged_tree_overlap "entry 2 has its stream at .*before the end of the one before" \
        2.offset=1.offset
    forged forged_tree_stream_short "stream of process [0-9]+ runs past its 4096 bytes" \
        1.length=4096
    forged forged_tree_nprocs_huge "5000 processes" nprocs=5000
    forged forged_tree_nprocs_more "entry 3 has" nprocs=4
    size=$(stat -c %s "$T/marks.copy")
    forged forged_tree_truncated "entry 2 has its stream at .*outside the file" \
        truncate=$((size - 8192))
    # the good image (not restorable any more: the counter moved) is
    # still read whole by inspect
    "$C" inspect --verify "$T/marks.copy" >/dev/null 2>"$T/err" && pass tree_inspect_good_copy ||
        fail tree_inspect_good_copy "inspect refused the good image"
fi

# Authenticated and encrypted trees (--key, --encrypt): every stream has
# its MAC, the tree header its own; restore decrypts every process's
# pages (also the shared memory the tree maps, made once by coord), and
# refuses the image without the key, with another key, or with a tree
# header changed after the checkpoint.
"$C" keygen "$T/key" >/dev/null 2>&1
"$C" keygen "$T/key2" >/dev/null 2>&1
rm -f "$T/go" "$T"/ran.*
if start_py_app keyed "$T/marks.py"; then
    read -r _ k1 k2 < <(grep READY "$T/keyed.log")
    PIDS+=("$k1" "$k2")
    if "$C" checkpoint "$pid" -o "$T/keyed.img" --kill --key "$T/key" --encrypt >"$T/out" \
        2>"$T/err" && wait_for 10 gone "$pid" && wait_for 10 gone "$k2"; then
        pass tree_key_checkpoint
    else
        fail tree_key_checkpoint "checkpoint with --key --encrypt failed"
    fi
    : >"$T/go"
    if ! grep -aq shared-hello "$T/keyed.img"; then
        pass tree_key_encrypted
    else
        fail tree_key_encrypted "the shared memory's bytes are in the image in clear"
    fi
    restore_refused tree_key_needed "$T/keyed.img" "encrypted; give its key"
    restore_refused tree_key_other_key "$T/keyed.img" "authenticated with another key" \
        --key "$T/key2"
    # one process left out of the tree (its stream still authenticated)
    python3 "$(dirname "${BASH_SOURCE[0]}")/forge_tree.py" "$T/keyed.img" "$T/keyed.forged" \
        nprocs=2
    restore_refused tree_key_forged_header "$T/keyed.forged" "do not match its MAC" \
        --key "$T/key"
    "$C" inspect --verify --key "$T/key" "$T/keyed.img" >"$T/out" 2>"$T/err" &&
        [ "$(grep -c 'image OK' "$T/out")" = 3 ] && pass tree_key_inspect ||
        fail tree_key_inspect "inspect --key --verify failed"
    [ "$(markers)" = 0 ] && pass tree_key_refusals_run_nothing ||
        fail tree_key_refusals_run_nothing "$(markers) processes ran"
    np=$(cd / && timeout 30 "$C" restore --detach --key "$T/key" "$T/keyed.img" 2>"$T/err")
    [ -n "$np" ] && PIDS+=("$np")
    three_shared() {
        [ "$(cat "$T"/ran.* 2>/dev/null)" = "shared-helloshared-helloshared-hello" ]
    }
    if [ -n "$np" ] && wait_for 10 three_shared; then
        pass tree_key_restore
    else
        fail tree_key_restore "restore gave '$np', $(markers) ran: $(cat "$T"/ran.* 2>/dev/null)"
    fi
    end_tree
fi
# Two checkpoints of one tree without counter stamps (--counter none: the
# streams' stamps cannot tell them apart): a stream of one put in place
# of the same process's stream in the other is refused, the tree's MAC
# covers every stream's.
rm -f "$T/go"
if start_py_app mix "$T/marks.py"; then
    ok=1
    "$C" checkpoint "$pid" -o "$T/mix1.img" --kill --key "$T/key" --counter none \
        >/dev/null 2>"$T/err" && wait_for 10 gone "$pid" || ok=0
    np=$(cd / && timeout 30 "$C" restore --detach --key "$T/key" --counter none "$T/mix1.img" \
        2>"$T/err")
    [ -n "$np" ] && PIDS+=("$np") || ok=0
    sleep 0.5
    "$C" checkpoint "${np:-0}" -o "$T/mix2.img" --kill --key "$T/key" --counter none \
        >/dev/null 2>"$T/err" && wait_for 10 gone "$np" || ok=0
    F="$(dirname "${BASH_SOURCE[0]}")/forge_tree.py"
    python3 "$F" "$T/mix2.img" "$T/mix.img" splice=2:"$T/mix1.img" 2>/dev/null ||
        python3 "$F" "$T/mix1.img" "$T/mix.img" splice=2:"$T/mix2.img" || ok=0
    if [ $ok = 1 ]; then
        restore_refused tree_key_stream_of_other_checkpoint "$T/mix.img" "do not match its MAC" \
            --key "$T/key" --counter none
        restore_ok tree_key_counter_none_restores "$T/mix2.img" --key "$T/key" --counter none
    else
        fail tree_key_stream_of_other_checkpoint "could not make the two images"
    fi
    end_tree
fi

# A version 1 tree image (taken before process groups and the share
# table: 32-byte entries) is still read: inspected and restored, every
# process in the root's process group and session as then.
rm -f "$T/go" "$T"/ran.*
if start_py_app v1 "$T/marks.py"; then
    ok=1
    "$C" checkpoint "$pid" -o "$T/v2.img" --kill --counter none >/dev/null 2>"$T/err" &&
        wait_for 10 gone "$pid" || ok=0
    python3 "$(dirname "${BASH_SOURCE[0]}")/forge_tree.py" "$T/v2.img" "$T/v1.img" version=1 ||
        ok=0
    if [ $ok = 1 ] && "$C" inspect --verify "$T/v1.img" >"$T/out" 2>"$T/err" &&
        [ "$(grep -c 'image OK' "$T/out")" = 3 ]; then
        pass tree_v1_image_inspect
    else
        fail tree_v1_image_inspect "inspect --verify of the version 1 image failed: $(cat "$T/err")"
    fi
    : >"$T/go"
    np=$(cd / && timeout 30 "$C" restore --detach --counter none "$T/v1.img" 2>"$T/err")
    [ -n "$np" ] && PIDS+=("$np")
    three_shared() {
        [ "$(cat "$T"/ran.* 2>/dev/null)" = "shared-helloshared-helloshared-hello" ]
    }
    same_group() {
        local k
        for k in $(cat /proc/"$np"/task/*/children 2>/dev/null); do
            [ "$(ps -o pgid=,sid= -p "$k")" = "$(ps -o pgid=,sid= -p "$np")" ] || return 1
        done
    }
    if [ $ok = 1 ] && [ -n "$np" ] && wait_for 10 three_shared && same_group; then
        pass tree_v1_image_restores
    else
        fail tree_v1_image_restores "restore gave '$np': $(cat "$T/err"), $(markers) ran"
    fi
    end_tree
fi

# Long checkpoints: coord says "still at work" every second while it
# works, so a slow counter or a slow disk does not make the parked
# processes give up (they wait 30 s for a word, CKSHIM_COORD_SILENCE_MS);
# a coord that is stuck (stopped) does: every process goes on and coord,
# once it runs again, writes no image.
# start_marks ID [ENV...]: marks.py as application ID under the shim
start_marks() {
    local id=$1
    shift
    (cd "$T" && exec env LD_PRELOAD="$SHIM" CKSHIM_APP_ID="$id" "$@" python3 "$T/marks.py" \
        >"$T/$id.log" 2>&1) &
    pid=$!
    disown "$pid" 2>/dev/null
    PIDS+=("$pid")
    wait_for 10 grep -q READY "$T/$id.log"
}
rm -f "$T/go" "$T"/ran.*
if start_marks slow; then
    out=$(CKSHIM_TEST_HOOK=slow-stamp:12 "$C" checkpoint "$pid" -o "$T/slow.img" --kill 2>"$T/err")
    rc=$?
    if [ $rc -eq 0 ] && wait_for 10 no_tree_procs && [ -s "$T/slow.img" ]; then
        pass tree_slow_counter_12s
    else
        fail tree_slow_counter_12s "rc=$rc"
        end_tree
    fi
fi
rm -f "$T/go" "$T"/ran.*
if start_marks slowc CKSHIM_COORD_SILENCE_MS=2000; then
    p0=$pid
    CKSHIM_TEST_HOOK=slow-commit:5 "$C" checkpoint "$pid" -o "$T/slowc.img" --kill \
        >/dev/null 2>"$T/err" &
    cp=$!
    sleep 3.5
    # parked, not ended, while the image is not committed
    if alive "$p0" && [ ! -e "$T/slowc.img" ] && wait "$cp" && wait_for 10 no_tree_procs &&
        [ -s "$T/slowc.img" ]; then
        pass tree_slow_commit_kept_parked
    else
        fail tree_slow_commit_kept_parked "image or processes wrong"
        end_tree
    fi
fi
: >"$T/go"
if start_marks stuck CKSHIM_COORD_SILENCE_MS=2000; then
    CKSHIM_TEST_HOOK=before-commit "$C" checkpoint "$pid" -o "$T/stuck.img" --kill \
        >/dev/null 2>"$T/err" &
    cp=$!
    stopped() { grep -q '^State:.*T' /proc/$cp/status 2>/dev/null; }
    if wait_for 20 stopped; then
        rm -f "$T"/ran.*
        three() { [ "$(markers)" = 3 ]; }
        if wait_for 8 three; then
            pass tree_stuck_coord_releases
        else
            fail tree_stuck_coord_releases "$(markers) processes run again"
        fi
        kill -CONT "$cp"
        wait "$cp"
        rc=$?
        if [ $rc -eq 1 ] && [ ! -e "$T/stuck.img" ] && grep -q "stopped waiting for coord" "$T/err" &&
            ! no_tree_procs && alive "$pid"; then
            pass tree_stuck_coord_commits_nothing
        else
            fail tree_stuck_coord_commits_nothing "rc=$rc"
        fi
    else
        fail tree_stuck_coord_releases "coord did not stop at before-commit"
        kill -9 "$cp"
    fi
    end_tree
fi

# RLIMIT_NPROC counts every thread of every process of the user: a tree
# whose processes each fit under the limit but not all together is
# refused before anything starts, naming the limit and what the tree
# needs, and the image restores afterwards. (Root is exempt.)
if [ "$(id -u)" != 0 ]; then
    cat >"$T/nthreads.py" <<EOF
import os, threading, time
for _ in range(3):
    if os.fork() == 0:
        break
for i in range(12):
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
$PY_TICKS
EOF
    start_py_app nthreads "$T/nthreads.py"
    tp=$pid
    sleep 0.5
    if "$C" checkpoint "$tp" -o "$T/nthreads.img" --kill >"$T/out" 2>"$T/err" &&
        grep -q "process tree of" "$T/err"; then
        wait_for 10 gone "$tp"
        sleep 0.3
        k=$(ps -L -u "$(id -u)" --no-headers | wc -l)
        (ulimit -u $((k + 25)) && restore_refused tree_restore_refuses_low_nproc \
            "$T/nthreads.img" "RLIMIT_NPROC \(ulimit -u\) is [0-9]+; the tree of [0-9]+ processes needs [0-9]+ threads")
        restore_ok tree_restore_after_nproc_refusal "$T/nthreads.img"
        for p in $(pgrep -u "$(id -u)" -f "$T/nthreads.py"); do kill -9 "$p"; done
    else
        fail tree_restore_refuses_low_nproc "checkpoint failed"
    fi
fi
