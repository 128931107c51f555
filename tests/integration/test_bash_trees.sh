#!/bin/bash
# test_bash_trees.sh - real shell process trees, each checkpointed with
# --kill and restored (--detach) twice, its work checked after each round:
# - bash with a coprocess that doubles numbers, and a command (sleep,
#   date) forked at every step;
# - a pipeline `producer | filter | consumer` started by bash -c (sed in
#   the middle), the consumer checking every number arrives once, in order;
# - bash with job control (set -m): a background pipeline job in a process
#   group of its own, which the shell then kills as a job (kill %1: a
#   signal to the group by the number the shell knows) and waits for;
# - pipes whose writer (seq) has exited with bytes still in them: a slow
#   reader and xargs -P2 get every byte after restore, then end of file;
# - trees that fork all the time: a loop of $(expr ...), make -j3 of 1200
#   tiny recipes (every target made once, right);
# - `coord run -- script | cat` with the script's child holding the pipe
#   too: restored in the foreground, the rest goes to coord's stdout.
# Every script writes its progress into a log file and "BAD ..." if
# anything is wrong. Prints one "PASS name" / "FAIL name: why" per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-bash.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# A restored tree (--detach) is a session of its own: end all of it, the
# shells' children included, then what lib.sh knows.
cleanup() {
    local p
    for p in "${PIDS[@]}"; do pkill -9 -s "$p" 2>/dev/null; done
    ck_cleanup
}
trap cleanup EXIT

# start NAME SCRIPT: bash SCRIPT under the shim in $T, log $T/NAME.log,
# until it says READY; sets $pid.
start() {
    (cd "$T" && exec env LD_PRELOAD="$SHIM" bash "$2" >"$T/$1.log" 2>&1) &
    pid=$!
    disown "$pid" 2>/dev/null
    PIDS+=("$pid")
    wait_for 10 grep -q READY "$T/$1.log"
}

# count NAME: lines "ok N" so far; grown NAME N: more than N of them.
count() { grep -c '^ok ' "$T/$1.log"; }
grown() { [ "$(count "$1")" -gt "$2" ]; }

# rounds NAME CHECK: checkpoint --kill and restore --detach twice; after
# each, the log must grow and stay free of BAD, and CHECK (a function
# taking the new pid) must succeed.
rounds() {
    local name=$1 check=$2 round rc np n1 n2
    for round in 1 2; do
        "$C" checkpoint "$pid" -o "$T/$name.img" --kill >"$T/out" 2>"$T/err"
        rc=$?
        wait_for 10 gone "$pid"
        n1=$(count "$name")
        np=$(cd / && timeout 30 "$C" restore --detach "$T/$name.img" 2>>"$T/err")
        if [ $rc -ne 0 ] || [ -z "$np" ] || ! alive "$np"; then
            fail "${name}_round_$round" "rc=$rc, restore gave '$np'"
            return
        fi
        PIDS+=("$np")
        pid=$np
        wait_for 10 grown "$name" "$((n1 + 3))"
        n2=$(count "$name")
        if [ "$n2" -gt "$((n1 + 3))" ] && ! grep -q "^BAD" "$T/$name.log" && $check "$np"; then
            pass "${name}_round_$round"
        else
            fail "${name}_round_$round" "$n1 -> $n2 lines: $(grep -m1 "^BAD" "$T/$name.log"; tail -n 1 "$T/$name.log")"
        fi
    done
}

# ---- a coprocess, and a command forked at every step ----------------------
cat >"$T/coproc.sh" <<'EOF'
coproc W { while read -r x; do echo $((x * 2)); done; }
i=0
echo READY
while :; do
    i=$((i + 1))
    echo "$i" >&"${W[1]}"
    read -r y <&"${W[0]}" || { echo "BAD: the coprocess is gone at $i"; exit 1; }
    [ "$y" = $((i * 2)) ] || echo "BAD: $i doubled is $y"
    d=$(date +%s) || echo "BAD: date"
    sleep 0.1
    echo "ok $i $d"
done
EOF
coproc_alive() { [ -n "$(cat /proc/$1/task/*/children 2>/dev/null)" ]; }
if start coproc "$T/coproc.sh"; then
    rounds coproc coproc_alive
else
    fail coproc_ready "no READY"
fi

# ---- a pipe whose writer has ended: its bytes, then end of file -------------
# seq fits in the pipe and exits at once; the reader (bash reads a pipe a
# byte at a time) is slowed by a timed read on a pipe no one writes.
cat >"$T/reader.sh" <<'EOF'
exec 9<> <(:)
n=0
while read -r v; do n=$((n + 1))
    [ "$v" = "$n" ] || echo "BAD: got $v, expected $n"
    echo "ok $n"; [ $n = 30 ] && echo READY; read -t 0.003 -u 9 z
done
echo "END $n"
EOF
echo 'seq 1 1500 | bash reader.sh' >"$T/drain.sh"
# drained NAME: two rounds, then every number once and in order, then END
drained() {
    rounds "$1" true
    if wait_for 30 grep -q "^END" "$T/$1.log" && grep -q "^END 1500$" "$T/$1.log" &&
        ! grep -q "^BAD" "$T/$1.log"; then
        pass "$1_writer_gone_every_byte"
    else
        fail "$1_writer_gone_every_byte" "$(grep -m1 "^BAD" "$T/$1.log"; tail -n 1 "$T/$1.log")"
    fi
}
# a tree (bash, the reader's bash), and the reader alone under the shim
# with seq outside (a single-process checkpoint)
if start drain "$T/drain.sh"; then
    drained drain
else
    fail drain_ready "no READY"
fi
(cd "$T" && seq 1 1500 | env LD_PRELOAD="$SHIM" bash "$T/reader.sh" >"$T/alone.log" 2>&1) \
    2>/dev/null &
disown $! 2>/dev/null
if wait_for 10 grep -q READY "$T/alone.log"; then
    pid=$(pgrep -f "^bash $T/reader.sh")
    PIDS+=("$pid")
    drained alone
else
    fail alone_ready "no READY"
fi

# xargs reading what an ended seq left in the pipe, two workers at a time
cat >"$T/xargs.sh" <<'EOF'
echo READY
seq 1 6000 | xargs -P2 -n 100 sh -c 'sleep 0.2; echo "ok $# $1"' sh
echo "END $?"
EOF
if start xargs "$T/xargs.sh"; then
    rounds xargs true
    wait_for 30 grep -q "^END" "$T/xargs.log"
    sum=$(awk '/^ok /{s += $2} END {print s}' "$T/xargs.log")
    firsts=$(awk '/^ok /{print $3}' "$T/xargs.log" | sort -u | wc -l)
    if grep -q "^END 0$" "$T/xargs.log" && [ "$sum" = 6000 ] && [ "$firsts" = 60 ]; then
        pass xargs_writer_gone_every_argument
    else
        fail xargs_writer_gone_every_argument "$sum arguments in $firsts batches (6000 in 60)" \
            "$(tail -n 1 "$T/xargs.log")"
    fi
else
    fail xargs_ready "no READY"
fi

# ---- a pipe to outside the tree that several of its processes hold ----------
# `coord run -- script | cat`: the script and its child both write the
# pipe to cat. After restore it is the restoring coord's standard output,
# as for a single process (not a new pipe between them that no one reads).
cat >"$T/outpipe.sh" <<'EOF'
sleep 60 &
for i in $(seq 1 40); do echo "$i"; sleep 0.1; done
kill $!
echo done
EOF
(cd "$T" && exec bash -c "'$C' run -- bash outpipe.sh | cat >outpipe.first") 2>/dev/null &
wait_for 10 grep -q '^5$' "$T/outpipe.first"
op=$(pgrep -f "^bash outpipe.sh$" | head -1)
if [ -n "$op" ] && "$C" checkpoint "$op" -o "$T/outpipe.img" --kill >"$T/out" 2>"$T/err" &&
    grep -q "fd 1.*outside the program" "$T/err"; then
    (cd / && timeout 30 "$C" restore "$T/outpipe.img" >"$T/outpipe.rest" 2>"$T/outpipe.err")
    rc=$?
    if [ $rc = 0 ] && [ "$(cat "$T/outpipe.first" "$T/outpipe.rest" | tr '\n' ' ')" = \
        "$(seq 1 40 | tr '\n' ' ')done " ]; then
        pass outside_pipe_shared_in_tree
    else
        fail outside_pipe_shared_in_tree "restore rc=$rc, $(wc -l <"$T/outpipe.first") + \
$(wc -l <"$T/outpipe.rest") lines" "$(head -2 "$T/outpipe.err")"
    fi
else
    fail outside_pipe_shared_in_tree "checkpoint: $(head -2 "$T/err")"
fi

# ---- trees that fork all the time ---------------------------------------------
# A loop forking a subshell and a command every few milliseconds, and make
# -j3 of many tiny recipes: the tree changes between being listed and
# parked; what changed is listed again and parked with it (tree_grow).
cat >"$T/forkloop.sh" <<'EOF'
echo READY
s=0
for i in $(seq 1 2500); do
    x=$(expr "$i" + 0)
    s=$((s + x))
    echo "ok $i"
done
echo "END $s"
EOF
if start forkloop "$T/forkloop.sh"; then
    rounds forkloop true
    if wait_for 60 grep -q "^END" "$T/forkloop.log" && grep -q "^END 3126250$" "$T/forkloop.log"
    then
        pass forkloop_sum
    else
        fail forkloop_sum "$(tail -n 1 "$T/forkloop.log") (expected END 3126250)"
    fi
else
    fail forkloop_ready "no READY"
fi

# An exec made slow (300 ms inside the shim's exec wrapper, the checkpoint
# signal blocked, said on stderr: CKSHIM_TEST_HOOK=slow-exec), and a
# checkpoint started as soon as a subshell is in it. A signal pending
# across an exec killed the new program (signal 62, the command's output
# lost: forkloop failed 1 in 24 under load); now it waits blocked, coord
# takes the tree again once the exec is done, and the new program's shim
# lets the signal go by. Each step then idles a second (read -t), so the
# tree holds still for the second try.
mkfifo "$T/idle.fifo"
cat >"$T/slowexec.sh" <<EOF
exec 5<>"$T/idle.fifo"
echo READY
s=0
for i in \$(seq 1 12); do
    x=\$(expr "\$i" + 0)
    st=\$?
    [ "\$x" = "\$i" ] || echo "BAD: expr \$i gave '\$x' (status \$st)"
    s=\$((s + x))
    echo "ok \$i"
    read -t 1 -u 5
done
echo "END \$s"
EOF
execing() { [ "$(grep -c "ckshim: execing" "$T/slowexec.log")" -gt "$1" ]; }
export CKSHIM_TEST_HOOK=slow-exec
start slowexec "$T/slowexec.sh"
started=$?
unset CKSHIM_TEST_HOOK
ok=$started
for round in 1 2; do
    [ "$ok" = 0 ] || break
    n=$(grep -c "ckshim: execing" "$T/slowexec.log")
    wait_for 10 execing "$n" || { ok=1; break; }
    "$C" checkpoint "$pid" -o "$T/slowexec.img" --kill >"$T/out" 2>"$T/err" || { ok=2; break; }
    wait_for 10 gone "$pid"
    pid=$(cd / && timeout 30 "$C" restore --detach "$T/slowexec.img" 2>>"$T/err")
    [ -n "$pid" ] && PIDS+=("$pid") || { ok=3; break; }
done
if [ "$ok" = 0 ] && wait_for 60 grep -q "^END" "$T/slowexec.log" &&
    grep -q "^END 78$" "$T/slowexec.log" && ! grep -q "^BAD" "$T/slowexec.log"; then
    pass slow_exec_checkpointed
else
    fail slow_exec_checkpointed "step $ok: $(grep -m1 "^BAD" "$T/slowexec.log"; tail -n 1 "$T/slowexec.log"; head -2 "$T/err")"
fi
if command -v make >/dev/null; then
    mkdir -p "$T/mk"
    { echo 'OBJS := $(addsuffix .o,$(shell seq 1 1200))'
      echo 'all: $(OBJS)'
      printf '\t@echo END built\n'
      echo '%.o:'
      printf '\t@echo $* > $@; head -c 2000 /dev/urandom | md5sum >/dev/null; echo ok $*\n'
    } >"$T/mk/Makefile"
    echo 'echo READY; exec make -s -C mk -j3' >"$T/make.sh"
    if start make "$T/make.sh"; then
        rounds make true
        wait_for 60 grep -q "^END" "$T/make.log"
        bad=0
        for i in $(seq 1 1200); do
            [ "$(cat "$T/mk/$i.o" 2>/dev/null)" = "$i" ] || bad=$((bad + 1))
        done
        if grep -q "^END built" "$T/make.log" && [ $bad = 0 ]; then
            pass make_j3_every_target
        else
            fail make_j3_every_target "$bad targets missing or wrong" "$(tail -n 1 "$T/make.log")"
        fi
    else
        fail make_ready "no READY"
    fi
fi

# ---- producer | filter | consumer, started by bash -c ---------------------
cat >"$T/pipeline.sh" <<'EOF'
echo READY
bash -c 'i=0; while :; do i=$((i + 1)); echo "$i"; sleep 0.05; done |
         sed -u "s/\$/0/" |
         { n=0; while read -r v; do n=$((n + 1));
               [ "$v" = $((n * 10)) ] || echo "BAD: got $v, expected $((n * 10))";
               echo "ok $n"; done; }'
EOF
# three processes below the pipeline's bash: producer, sed, consumer
three_stages() {
    local c
    c=$(cat /proc/$1/task/*/children 2>/dev/null | awk '{print $1}')
    [ -n "$c" ] && [ "$(cat /proc/$c/task/*/children 2>/dev/null | wc -w)" -ge 3 ]
}
if start pipeline "$T/pipeline.sh"; then
    rounds pipeline three_stages
else
    fail pipeline_ready "no READY"
fi

# ---- job control: a background job in a process group of its own ---------
cat >"$T/jobs.sh" <<'EOF'
set -m
{ i=0; while :; do i=$((i + 1)); echo "$i"; sleep 0.05; done; } |
    { n=0; while read -r v; do n=$((n + 1)); [ "$v" = "$n" ] || echo "BAD: $v != $n";
          echo "ok $n"; done; } &
echo READY
# the shell waits until told (a file), then ends the job as a job
while [ ! -e stop ]; do sleep 0.1; done
[ "$(jobs -p | wc -l)" = 1 ] || echo "BAD: jobs -p: $(jobs -p)"
kill %1 || echo "BAD: kill %1"
wait
echo "DONE $?"
EOF
# the job's processes are in a group of their own, led by one of them
own_group() {
    local sh_pg c pg
    sh_pg=$(awk '{print $5}' "/proc/$1/stat")
    c=$(cat /proc/$1/task/*/children 2>/dev/null | awk '{print $1}')
    [ -n "$c" ] || return 1
    pg=$(awk '{print $5}' "/proc/$c/stat")
    [ "$pg" != "$sh_pg" ]
}
if start jobs "$T/jobs.sh"; then
    rounds jobs own_group
    touch "$T/stop"
    if wait_for 10 grep -q DONE "$T/jobs.log" && ! grep -q "^BAD" "$T/jobs.log"; then
        pass jobs_killed_as_a_group
    else
        fail jobs_killed_as_a_group "$(grep -m1 "^BAD" "$T/jobs.log"; tail -n 1 "$T/jobs.log")"
    fi
else
    fail jobs_ready "no READY"
fi
