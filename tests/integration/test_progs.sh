#!/usr/bin/env bash
# test_progs.sh - checkpoint, kill and restore each C test program.
#
#   bash tests/integration/test_progs.sh BUILD_DIR [--plain|--shim] [PROG...]
#
# For every program in BUILD_DIR/tests/progs (except bench_*), or only the
# PROGs named (also $CKSHIM_PROGS, space separated):
#   1. start it under LD_PRELOAD=BUILD_DIR/libshim.so in a fresh temporary
#      directory (its cwd), stdout+stderr to a log file, $CK_GO naming a
#      go file that does not exist yet; wait for "READY" in the log (10 s);
#   2. coord checkpoint PID -o IMG --kill; wait until PID is gone (10 s);
#   3. coord restore IMG --detach: its only stdout line is the new PID;
#   4. for programs in TWICE: after 0.3 s checkpoint and restore once more;
#   5. write the go file (it holds `date +%s`) and wait for the process to
#      exit (20 s). The restored process is not our child: poll /proc and
#      take the verdict ("PASS" or "FAIL: why") from the log, which it keeps
#      appending to through its restored stdout.
# Prints "PASS NAME" or "FAIL NAME: reason" (plus the log's last lines) per
# program. --plain runs the programs without the shim and without any
# checkpoint (checks the programs themselves); --shim runs them under the
# shim without checkpoint (checks that the shim is transparent).
# Every wait is bounded; every process started is killed at the end.
# Exit status: 0 if all passed, 1 otherwise, 2 for usage errors.

set -u

usage() {
    echo "usage: $0 BUILD_DIR [--plain|--shim] [PROG...]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
case $1 in -*) usage ;; esac
B=$(cd "$1" 2>/dev/null && pwd) || { echo "test_progs: no build directory '$1'" >&2; exit 2; }
shift

MODE=ckpt
PROGS=()
while [ $# -gt 0 ]; do
    case $1 in
        --plain) MODE=plain ;;
        --shim) MODE=shim ;;
        -h | --help) usage ;;
        -*) usage ;;
        *) PROGS+=("$1") ;;
    esac
    shift
done
if [ ${#PROGS[@]} -eq 0 ] && [ -n "${CKSHIM_PROGS:-}" ]; then
    read -r -a PROGS <<<"$CKSHIM_PROGS"
fi
if [ ${#PROGS[@]} -eq 0 ]; then
    for f in "$B"/tests/progs/*; do
        n=${f##*/}
        [ -f "$f" ] && [ -x "$f" ] || continue
        case $n in bench_* | *.*) continue ;; esac
        PROGS+=("$n")
    done
fi
if [ ${#PROGS[@]} -eq 0 ]; then
    echo "FAIL progs: no test programs in $B/tests/progs (run make tests-build)"
    exit 1
fi

# Restored, checkpointed again and restored again.
TWICE=" heap threads signals files posix_timer "
TWICE+=" rseq dlopen cmdline_env brk eventfd robust_mutex sigmask_thread many_threads mprotect "
TWICE+=" madv_fork "
TWICE+=" fd_high pipes locks sock_tracked sock_tracked_fork sock_tracked_spawn "
TWICE+=" sock_tracked_vfork sock_tracked_syscall sock_tracked_getfd "
# Restored by a coord whose soft descriptor limit is the usual 1024 (below
# the fds these programs hold).
LOW_NOFILE=" fd_high tree_many_fds tree_high_fd "
TWICE+=" sigev_thread "
TWICE+=" raw_clone_exit "
TWICE+=" cputime stop_ticker close_all "
TWICE+=" pending_info owned_mutex tree_sigqueue "
TWICE+=" tmp_mapped "
TWICE+=" blocking pattrs rseq_own procself aio "
TWICE+=" many_regions vmflags guards memfd_state unlink_map sysv_shm hugetlb "
TWICE+=" fifos ghost_files removed_paths removed_cwd proc_self epoll_renumbered pidfds leases ptys "
TWICE+=" sigio_owner lease_breaking pty_queued proc_dead "
TWICE+=" raw_thread pty_ctty "
TWICE+=" unreadable_map "
# Checkpointed once without --kill first (see checkpoint_restore).
LIVE=" pty_queued "
LIVE+=" unix_scm "
TWICE+=" timerfd signalfd inotify "
TWICE+=" unix_pairs unix_listen unix_outside unix_removed "
TWICE+=" hooks "
TWICE+=" inet_listen inet_pair inet_udp inet_opts inet_outside "
TWICE+=" tree_pipes tree_shm "
TWICE+=" unix_scm "
TWICE+=" sock_state "
LIVE+=" sock_state "
# Started with coord run --pidns (a pid namespace of their own, under
# coord's init): checkpointed by the program's pid as seen here.
PIDNS=" pidns_tree pidns_orphans pidns_subreaper_session pidns_high pidns_clone_files "
TWICE+=" pidns_tree pidns_orphans pidns_subreaper_session pidns_high "
TWICE+=" tree_groups tree_stopped tree_sigchld tree_pidfd "
TWICE+=" tree_sockets tree_descs tree_inet tree_shm_kinds tree_locks tree_unix_named tree_fown "
TWICE+=" fd_table tree_zombie_groups sched_attrs cpu_affinity "
LIVE+=" fd_table "
TWICE+=" raw_ids proc_pid_text pipe_flags pipe_packets tree_zombie_group tree_dead_pidfd tree_pty_session "
TWICE+=" tree_peek_shared inet_proofs tree_fork_held tree_orphans tree_stopped_many "
TWICE+=" tree_clone tree_closed_table call_hook_fork tree_subreaper_session tree_vfork "
LIVE+=" tree_vfork "
TWICE+=" vfork_nomem tree_late_signals many_ptys tree_clearenv pty_packet "
TWICE+=" tree_many_fds tree_cow dlopen_busy tree_pidfd_epoll tcp_nagle tree_flock_owner tree_high_fd tree_clone_files pidns_clone_files clone_files_churn "
LIVE+=" pty_packet "
LIVE+=" tree_late_signals "
LIVE+=" tree_stopped tree_stopped_many tree_clone tree_closed_table call_hook_fork "
READY_TIMEOUT=${CKSHIM_READY_TIMEOUT:-10}
# Programs that take a while to build their state (pidns_high makes 32000
# processes first): READY within 60 s.
SLOW_READY=" pidns_high "
GONE_TIMEOUT=10
EXIT_TIMEOUT=${CKSHIM_EXIT_TIMEOUT:-20}
CMD_TIMEOUT=${CKSHIM_CMD_TIMEOUT:-60}
PIDFILE=${CKSHIM_TEST_PIDFILE:-}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ckshim-progs.XXXXXX") || exit 1
# Each run keeps its own counters: parallel runs of one program (same app
# id) must not make each other's images stale.
export CKSHIM_COUNTER="file:$WORK/counters"
chmod 700 "$WORK"
STARTED=()
npass=0
nfail=0

# alive PID: the process exists and is not a zombie.
alive() {
    local st
    [ -n "$1" ] && read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

# wait_gone PID SECONDS: 0 once PID is gone, 1 on timeout.
wait_gone() {
    local i n=$(($2 * 20))
    for ((i = 0; i < n; i++)); do
        alive "$1" || return 0
        sleep 0.05
    done
    ! alive "$1"
}

track() {
    STARTED+=("$1")
    [ -n "$PIDFILE" ] && echo "$1" >>"$PIDFILE"
    return 0
}

# has_env PID VAR=VALUE: the process's environment holds exactly that entry.
has_env() {
    local -a env
    mapfile -t -d '' env 2>/dev/null <"/proc/$1/environ" || return 1
    local e
    for e in "${env[@]}"; do
        [ "$e" = "$2" ] && return 0
    done
    return 1
}

# kill_all [MARKER]: kill the processes we started or restored, and any
# process of ours whose environment holds MARKER (CK_GO=... is unique per
# program and survives restore, so this finds restored processes even when
# coord printed some other pid).
kill_all() {
    local p d
    for p in "${STARTED[@]}"; do
        alive "$p" && kill -KILL "$p" 2>/dev/null
    done
    STARTED=()
    [ -n "${1:-}" ] || return 0
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        [ -O "$d" ] && [ "$p" != $$ ] && [ "$p" != "$BASHPID" ] || continue
        if has_env "$p" "$1" && alive "$p"; then
            echo "    note: killed pid $p, a process of this test coord did not report"
            kill -KILL "$p" 2>/dev/null
        fi
    done
}

cleanup() {
    kill_all
    find "$WORK" -name '*.ckpt' -delete 2>/dev/null
    if [ "$nfail" -eq 0 ] && [ -z "${CKSHIM_KEEP:-}" ]; then
        rm -rf "$WORK"
    else
        echo "test_progs: logs kept in $WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# last_lines FILE [N]: the file's last lines, indented (never at column 0,
# so the runner does not count them as PASS/FAIL lines).
last_lines() {
    [ -s "$1" ] && tail -n "${2:-8}" "$1" | sed 's/^/    | /'
}

# one_line FILE: the last 3 lines of FILE joined.
one_line() {
    tail -n 3 "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//'
}

# checkpoint_restore PID K: checkpoint PID with --kill into img K, restore
# it detached. Sets NPID, or WHY on failure.
checkpoint_restore() {
    local pid=$1 k=$2 img="$D/img$2.ckpt" rc out
    if [[ $LIVE == *" $NAME "* ]] && [ "$k" = 1 ]; then
        # first a checkpoint the program survives: what capture takes out
        # and puts back must be as it was for the checkpoint that follows
        if ! timeout -k 5 "$CMD_TIMEOUT" "$B/coord" checkpoint "$pid" -o "$D/live.ckpt" \
            >"$D/checkpoint-live.out" 2>&1 </dev/null; then
            WHY="coord checkpoint (live) failed: $(one_line "$D/checkpoint-live.out")"
            return 1
        fi
        alive "$pid" || { WHY="pid $pid died after a checkpoint without --kill"; return 1; }
    fi
    timeout -k 5 "$CMD_TIMEOUT" "$B/coord" checkpoint "$pid" -o "$img" --kill \
        >"$D/checkpoint$k.out" 2>&1 </dev/null
    rc=$?
    if [ $rc -eq 124 ]; then
        WHY="coord checkpoint #$k timed out after ${CMD_TIMEOUT}s"
        return 1
    elif [ $rc -ne 0 ]; then
        WHY="coord checkpoint #$k failed (exit $rc): $(one_line "$D/checkpoint$k.out")"
        return 1
    fi
    if ! wait_gone "$pid" "$GONE_TIMEOUT"; then
        WHY="pid $pid still running ${GONE_TIMEOUT}s after checkpoint #$k --kill"
        return 1
    fi
    if [ ! -s "$img" ]; then
        WHY="coord checkpoint #$k succeeded but wrote no image"
        return 1
    fi
    # stdout to a file, not $(...): a restored process that wrongly kept
    # coord's stdout would make a command substitution hang.
    (
        [[ $LOW_NOFILE == *" $NAME "* ]] && ulimit -Sn 1024
        exec timeout -k 5 "$CMD_TIMEOUT" "$B/coord" restore "$img" --detach
    ) >"$D/restore$k.out" 2>"$D/restore$k.err" </dev/null
    rc=$?
    out=$(head -c 200 "$D/restore$k.out")
    NPID=${out%%$'\n'*}
    if [[ $NPID =~ ^[0-9]+$ ]]; then
        track "$NPID"
    fi
    if [ $rc -eq 124 ]; then
        WHY="coord restore #$k --detach timed out after ${CMD_TIMEOUT}s"
        return 1
    elif [ $rc -ne 0 ]; then
        WHY="coord restore #$k failed (exit $rc): $(one_line "$D/restore$k.err")"
        return 1
    fi
    if ! [[ $NPID =~ ^[0-9]+$ ]] || [ "$(wc -l <"$D/restore$k.out")" -ne 1 ]; then
        WHY="coord restore --detach printed '$(echo "$out" | tr '\n' ' ')', not one PID line"
        return 1
    fi
    if ! alive "$NPID"; then
        WHY="restored process $NPID is not running after restore #$k"
        return 1
    fi
    return 0
}

# run_one NAME: one program, start to verdict. Prints its PASS/FAIL line.
run_one() {
    local name=$1 bin="$B/tests/progs/$1" log go cur i verdict note=""
    D="$WORK/$name"
    NAME=$name
    WHY=""
    rm -rf "$D"
    mkdir -p "$D/cwd"
    log="$D/log"
    go="$D/go"

    if [ ! -x "$bin" ]; then
        WHY="no program $bin"
    elif [ "$MODE" != plain ] && [ ! -f "$B/libshim.so" ]; then
        WHY="$B/libshim.so is not built"
    elif [ "$MODE" = ckpt ] && [ ! -x "$B/coord" ]; then
        WHY="$B/coord is not built"
    fi
    if [ -n "$WHY" ]; then
        echo "FAIL $name: $WHY"
        nfail=$((nfail + 1))
        return
    fi

    local preload=""
    [ "$MODE" != plain ] && preload="$B/libshim.so"
    (
        cd "$D/cwd" || exit 1
        if [ "$MODE" = ckpt ] && [[ $PIDNS == *" $name "* ]]; then
            exec env CK_GO="$go" CK_HOST_PID_MAX="$(cat /proc/sys/kernel/pid_max)" "$B/coord" run --pidns -- "$bin"
        elif [ -n "$preload" ]; then
            exec env CK_GO="$go" LD_PRELOAD="$preload" "$bin"
        else
            exec env CK_GO="$go" "$bin"
        fi
    ) >"$log" 2>&1 </dev/null &
    CHILD=$!
    # not a job of ours any more: no "Killed" notices; the verdict comes
    # from the log in every mode, as it must for restored processes
    disown "$CHILD" 2>/dev/null
    cur=$CHILD
    track "$cur"

    rt=$READY_TIMEOUT
    case "$SLOW_READY" in *" $name "*) rt=$((READY_TIMEOUT > 60 ? READY_TIMEOUT : 60)) ;; esac
    for ((i = 0; i < rt * 20; i++)); do
        grep -q '^READY' "$log" 2>/dev/null && break
        alive "$cur" || break
        sleep 0.05
    done
    if ! grep -q '^READY' "$log" 2>/dev/null; then
        if alive "$cur"; then
            WHY="no READY within ${rt}s"
        else
            WHY="exited before READY"
        fi
    fi

    if [ -z "$WHY" ] && [ "$MODE" = ckpt ] && [[ $PIDNS == *" $name "* ]]; then
        # coord outside, its init (pid 1 inside), the program
        cur=$(cat "/proc/$CHILD/task/$CHILD/children" 2>/dev/null | tr -d ' ')
        cur=$(cat "/proc/$cur/task/$cur/children" 2>/dev/null | awk '{print $1}')
        [ -n "$cur" ] || WHY="no program under coord run --pidns (pid $CHILD)"
        track "$cur"
    fi
    if [ -z "$WHY" ] && [ "$MODE" = ckpt ]; then
        if checkpoint_restore "$cur" 1; then
            [ "$NPID" != "$CHILD" ] || note=" (same real pid $NPID)"
            cur=$NPID
            if [[ $TWICE == *" $name "* ]]; then
                sleep 0.3
                if alive "$cur"; then
                    checkpoint_restore "$cur" 2 && cur=$NPID && note="$note (restored twice)"
                else
                    WHY="restored process $cur died within 0.3 s"
                fi
            fi
        fi
    fi

    if [ -z "$WHY" ]; then
        date +%s >"$go.tmp" && mv -f "$go.tmp" "$go"
        if ! wait_gone "$cur" "$EXIT_TIMEOUT"; then
            WHY="still running ${EXIT_TIMEOUT}s after the go file"
            kill -KILL "$cur" 2>/dev/null
        fi
        # pass() and fail() print their line and _exit at once, so the last
        # verdict line is the program's result
        verdict=$(grep -E '^(PASS|FAIL)' "$log" 2>/dev/null | tail -n 1)
        if [ -n "$WHY" ] || [ "$verdict" = PASS ]; then
            :
        elif [ -n "$verdict" ]; then
            WHY="program says: $verdict"
        else
            WHY="exited without a verdict (crashed or killed?)"
        fi
    fi

    kill_all "CK_GO=$go" >"$D/killed"
    if [ -z "$WHY" ]; then
        echo "PASS $name$note"
        npass=$((npass + 1))
    else
        echo "FAIL $name: $WHY"
        last_lines "$log"
        for f in "$D"/checkpoint*.out "$D"/restore*.err; do
            [ -s "$f" ] && echo "    ${f##*/}:" && last_lines "$f" 4
        done
        nfail=$((nfail + 1))
    fi
    cat "$D/killed"
    find "$D" -name '*.ckpt' -delete 2>/dev/null
}

echo "test_progs: ${#PROGS[@]} programs, mode $MODE, build $B"
for p in "${PROGS[@]}"; do
    run_one "$p"
done
echo "test_progs: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
