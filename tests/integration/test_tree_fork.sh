#!/bin/bash
# test_tree_fork.sh - tree members forked by their parent's restorer
# (docs/DESIGN.md, "Tree members forked by the restorer"): the restorer
# forks the child once its own memory is in place, so that they share
# what they mapped alike (copy-on-write), or before (CKSHIM_TREE_FORK=
# fresh); the child takes the descriptor table a preparer in coord made.
# CKSHIM_TREE_FORK=restorer (the default) is set so that coord says how
# it makes each process.
#
#   bash tests/integration/test_tree_fork.sh BUILD_DIR
#
# A Python parent with two children joined by a pipe: restored so, the
# children are forked by the parent's restorer, are the parent's
# children, and go on with their pipe; restored twice. A preparer that
# fails, or a parent's restorer that ends before it forks, leaves nothing
# running, names the process, and the image restores afterwards.
# progs/tree_cow: memory shared since the fork is shared again. Then the
# tree test programs (tests/progs, each restored twice) in both modes.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-tfork.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT
export CKSHIM_TREE_FORK=restorer

# Parent and two children. Child 1 writes a count into a pipe every 20
# ms; child 2 reads it and, once the go file exists, writes the last
# count it read into "ran.2"; child 1 writes its own into "ran.1", and the
# parent the pids its children have for it (getppid, which the shim maps)
# into "ran.0".
cat >"$T/kids.py" <<'EOF'
import os, time
r, w = os.pipe()
kids = []
for idx in (1, 2):
    k = os.fork()
    if k == 0:
        break
    kids.append(k)
    idx = 0
if idx == 0:
    os.close(r)
    os.close(w)
    print("READY", *kids, flush=True)
    while not os.path.exists("go"):
        time.sleep(0.02)
    st = [os.waitpid(k, 0)[1] for k in kids]
    with open("ran.0", "w") as f:
        f.write("%s %s\n" % (" ".join(map(str, kids)), " ".join(map(str, st))))
    raise SystemExit(0)
parent = os.getppid()
if idx == 1:
    os.close(r)
    n = 0
    while not os.path.exists("go"):
        n += 1
        os.write(w, b"%d\n" % n)
        time.sleep(0.02)
    os.close(w)
    with open("ran.1", "w") as f:
        f.write("%d %d\n" % (n, os.getppid() == parent))
else:
    os.close(w)
    last, buf = 0, b""
    while True:
        d = os.read(r, 4096)
        if not d:
            break
        buf += d
        lines = buf.split(b"\n")
        buf = lines.pop()
        for l in lines:
            if int(l) != last + 1:
                raise SystemExit("child 2: %d after %d" % (int(l), last))
            last = int(l)
    with open("ran.2", "w") as f:
        f.write("%d %d\n" % (last, os.getppid() == parent))
EOF

markers() { ls "$T"/ran.* 2>/dev/null | wc -l; }
no_procs() { ! pgrep -u "$(id -u)" -f "$T/kids.py" >/dev/null; }
end_procs() {
    local p
    for p in $(pgrep -u "$(id -u)" -f "$T/kids.py"); do kill -9 "$p"; done
    wait_for 5 no_procs
}
three() { [ "$(markers)" = 3 ]; }

# checkpoint_kill PID IMG: the tree of PID to IMG, and every process gone
checkpoint_kill() {
    local k
    "$C" checkpoint "$1" -o "$2" --kill >"$T/out" 2>"$T/err" || return 1
    for k in "$1" $(pgrep -u "$(id -u)" -f "$T/kids.py"); do wait_for 10 gone "$k" || return 1; done
}

rm -f "$T/go" "$T"/ran.*
if start_py_app kids "$T/kids.py" && read -r _ k1 k2 < <(grep READY "$T/kids.log") &&
    PIDS+=("$k1" "$k2") && checkpoint_kill "$pid" "$T/kids.img"; then
    pass tree_fork_checkpoint
    # The preparer of child 2 fails: nothing runs, the process is named.
    out=$(cd / && CKSHIM_TEST_HOOK="restore-prep-fail:$k2" timeout 30 "$C" restore --detach \
        "$T/kids.img" 2>"$T/err")
    rc=$?
    [ -n "$out" ] && PIDS+=("$out")
    sleep 0.5
    if [ $rc -eq 1 ] && [ -z "$out" ] && wait_for 5 no_procs &&
        grep -q "process $k2 of the tree: test hook: its preparer fails" "$T/err"; then
        pass tree_fork_preparer_fails_nothing_runs
    else
        fail tree_fork_preparer_fails_nothing_runs "rc=$rc out='$out': $(cat "$T/err")"
        end_procs
    fi
    # The parent's restorer (the root's: its message is the restore's)
    # ends before it forks: the same.
    out=$(cd / && CKSHIM_TEST_HOOK="restore-die-before-fork:$pid" timeout 30 "$C" restore \
        --detach "$T/kids.img" 2>"$T/err")
    rc=$?
    [ -n "$out" ] && PIDS+=("$out")
    sleep 0.5
    if [ $rc -eq 1 ] && [ -z "$out" ] && wait_for 5 no_procs &&
        grep -q "restore failed: test hook: this process ends before it forks its children" \
            "$T/err"; then
        pass tree_fork_parent_dies_before_fork_nothing_runs
    else
        fail tree_fork_parent_dies_before_fork_nothing_runs "rc=$rc out='$out': $(cat "$T/err")"
        end_procs
    fi
    # Then restored, twice: the children are the parent's, the pipe flows
    # (its bytes in flight kept).
    ok=1
    for round in 1 2; do
        np=$(cd / && timeout 30 "$C" restore --detach "$T/kids.img" 2>"$T/err")
        [ -n "$np" ] && PIDS+=("$np")
        kids=$(children "$np")
        if [ -z "$np" ] || [ "$(echo $kids | wc -w)" != 2 ] ||
            [ "$(grep -c "forked by its parent's restorer" "$T/err")" != 2 ]; then
            fail tree_fork_restored_$round "restore gave '$np' with children '$kids': $(cat "$T/err")"
            ok=0
            break
        fi
        sleep 0.3
        if [ $round = 1 ]; then
            checkpoint_kill "$np" "$T/kids.img" ||
                { fail tree_fork_restored_1 "checkpoint again: $(cat "$T/err")"; ok=0; break; }
        fi
    done
    if [ $ok = 1 ]; then
        : >"$T/go"
        if wait_for 10 three && read -r n1 p1 <"$T/ran.1" && read -r n2 p2 <"$T/ran.2" &&
            [ "$n1" = "$n2" ] && [ "$n1" -gt 10 ] && [ "$p1$p2" = 11 ] &&
            grep -q "^$k1 $k2 0 0$" "$T/ran.0"; then
            pass tree_fork_restored_twice
        else
            fail tree_fork_restored_twice "$(cat "$T"/ran.* 2>/dev/null | tr '\n' ' ')"
        fi
    fi
    end_procs
else
    fail tree_fork_checkpoint "$(cat "$T/err" 2>/dev/null)"
    end_procs
fi

# Memory shared since the fork is shared again (progs/tree_cow: 60 MiB
# in the parent, 1% changed by each of 4 children and a grandchild, which
# its parent's restorer forks in turn): the tree's
# proportional set size stays within 30% of the original's, restored
# twice (each process copying its memory would make it about 4 times).
pss_sum() {
    local p t=0 v
    for p in "$1" $(children "$1") $(for c in $(children "$1"); do children "$c"; done); do
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
rm -f "$T/go"
if start_test_prog tree_cow; then
    orig=$(pss_sum "$pid")
    cur=$pid
    sizes=""
    ok=1
    for round in 1 2; do
        if ! "$C" checkpoint "$cur" -o "$T/cow.img" --kill >"$T/out" 2>"$T/err" ||
            ! wait_for 10 gone "$cur"; then
            fail tree_fork_cow_shared "checkpoint $round: $(cat "$T/err")"
            ok=0
            break
        fi
        cur=$(cd / && timeout 60 "$C" restore --detach "$T/cow.img" 2>"$T/err")
        [ -n "$cur" ] && PIDS+=("$cur") && PIDS+=($(children "$cur"))
        if [ -z "$cur" ] || [ "$(grep -c "once its memory is in place" "$T/err")" != 5 ]; then
            fail tree_fork_cow_shared "restore $round gave '$cur': $(cat "$T/err")"
            ok=0
            break
        fi
        sleep 0.5
        sizes="$sizes $(pss_sum "$cur")"
    done
    if [ $ok = 1 ]; then
        big=0
        for s in $sizes; do [ "$s" -gt $((orig * 13 / 10)) ] && big=1; done
        date +%s >"$T/go"
        if [ $big = 0 ] && wait_for 20 grep -q "^PASS" "$T/tree_cow.log"; then
            pass tree_fork_cow_shared
        else
            fail tree_fork_cow_shared "Pss $orig KiB at first, then$sizes KiB; $(tail -3 "$T/tree_cow.log")"
        fi
    fi
fi

# The tree test programs, in this mode (those of their processes the
# restorer cannot fork yet are forked by coord, as ever).
progs=$(cd "$B/tests/progs" && ls tree_* pidns_tree 2>/dev/null | grep -v '\.')
# shellcheck disable=SC2086
timeout 900 bash "$(dirname "${BASH_SOURCE[0]}")/test_progs.sh" "$B" $progs 2>&1 |
    sed -n 's/^\(PASS\|FAIL\) /\1 forked_by_restorer_/p'
# shellcheck disable=SC2086
CKSHIM_TREE_FORK=fresh timeout 900 bash "$(dirname "${BASH_SOURCE[0]}")/test_progs.sh" "$B" \
    $progs 2>&1 | sed -n 's/^\(PASS\|FAIL\) /\1 forked_fresh_/p'
