#!/usr/bin/env bash
# tests/run.sh - run ckshim's tests: unit tests, then integration tests.
#
#   bash tests/run.sh [--unit|--integration]       (make test / unit / integration)
#
# Unit tests: every build/tests/unit/test_* binary (cmocka); each binary
# counts as one test, passing when it exits 0; its output is shown.
#
# Integration tests: every tests/integration/test_*.sh, run as
# `bash SCRIPT BUILD_DIR`; their "PASS ..." and "FAIL ..." lines are
# counted (test_progs.sh is one of them: the C programs in
# tests/integration/progs, checkpointed and restored). They must run as an
# ordinary user, like ckshim's users: when this script runs as root it
# creates the user $CKSHIM_TEST_USER (default ckshimtest) if missing, copies
# build/, tests/ and examples/ to a fresh directory under /tmp and runs the
# integration part there as that user (setpriv, clean environment). Set
# CKSHIM_TEST_AS_ROOT=1 to run them as root in place instead. Scripts
# marked "# ckshim-test: as-root" (test_slurm.sh: Slurm's daemons need
# root) run as root, in place, before the switch.
#
# Every test has a time limit (a time-out counts as a failure), leftover
# test processes are killed at the end, and the last line of output is
# "N passed, N failed". Exit status: 0 when nothing failed, 1 otherwise,
# 2 for usage errors.
#
# Environment: CKSHIM_BUILD (build directory, default ./build),
# CKSHIM_UNIT_TIMEOUT (s, default 120), CKSHIM_SCRIPT_TIMEOUT (s per
# integration script, default 1200), CKSHIM_TEST_USER, CKSHIM_TEST_AS_ROOT,
# CKSHIM_KEEP=1 (keep the temporary directories).

set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${CKSHIM_BUILD:-$ROOT/build}
case $B in /*) ;; *) B="$PWD/$B" ;; esac
UNIT_TIMEOUT=${CKSHIM_UNIT_TIMEOUT:-120}
SCRIPT_TIMEOUT=${CKSHIM_SCRIPT_TIMEOUT:-1200}
TEST_USER=${CKSHIM_TEST_USER:-ckshimtest}

usage() {
    echo "usage: bash tests/run.sh [--unit|--integration]" >&2
    exit 2
}

MODE=all
case ${1:-} in
    "") ;;
    --unit) MODE=unit ;;
    --integration) MODE=integration ;;
    -h | --help)
        sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) usage ;;
esac
[ $# -le 1 ] || usage

passed=0
failed=0
skipped=0
TMPFILES=""
# shellcheck disable=SC2086
trap 'rm -f $TMPFILES' EXIT

say() { printf '%s\n' "$*"; }

# ---------------------------------------------------------------- unit tests

run_unit() {
    local t name rc found=0
    say "=== unit tests ($B/tests/unit)"
    for t in "$B"/tests/unit/test_*; do
        [ -f "$t" ] && [ -x "$t" ] || continue
        found=1
        name=unit/${t##*/}
        timeout -k 5 "$UNIT_TIMEOUT" "$t" </dev/null 2>&1
        rc=$?
        if [ $rc -eq 0 ]; then
            say "PASS $name"
            passed=$((passed + 1))
        elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            say "FAIL $name: timed out after ${UNIT_TIMEOUT}s"
            failed=$((failed + 1))
        else
            say "FAIL $name: exit status $rc"
            failed=$((failed + 1))
        fi
    done
    [ $found -eq 1 ] || say "(no unit test binaries in $B/tests/unit: nothing to run)"
}

# ---------------------------------------------------------------- integration

# proc_starttime PID: start time of PID in clock ticks since boot.
proc_starttime() {
    local st
    read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }
    set -- $st
    echo "${20}"
}

# is_alive PID: the process exists and is not a zombie.
is_alive() {
    local st
    read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

# has_env PID VAR=VALUE: the process's environment holds exactly that entry.
has_env() {
    local -a env
    local e
    mapfile -t -d '' env 2>/dev/null <"/proc/$1/environ" || return 1
    for e in "${env[@]}"; do
        [ "$e" = "$2" ] && return 0
    done
    return 1
}

# Kill what the integration tests left running: pids they recorded in
# $PIDFILE (if started after this run began) and any process of ours whose
# environment carries this run's token (restored processes keep the
# environment they were started with).
kill_leftovers() {
    local pid st d n=0 names=""
    if [ -s "${PIDFILE:-}" ]; then
        while read -r pid; do
            [[ $pid =~ ^[0-9]+$ ]] || continue
            st=$(proc_starttime "$pid") || continue
            [ "$st" -ge "$RUN_START" ] && is_alive "$pid" || continue
            names="$names $(cat "/proc/$pid/comm" 2>/dev/null)($pid)"
            kill -KILL "$pid" 2>/dev/null && n=$((n + 1))
        done <"$PIDFILE"
    fi
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ -O "$d" ] && [ "$pid" != $$ ] && [ "$pid" != "$BASHPID" ] || continue
        is_alive "$pid" && has_env "$pid" "CKSHIM_TEST_RUN=$RUN_TOKEN" || continue
        names="$names $(cat "$d/comm" 2>/dev/null)($pid)"
        kill -KILL "$pid" 2>/dev/null && n=$((n + 1))
    done
    [ $n -eq 0 ] || say "(killed $n leftover test processes:$names)"
}

# Scripts marked "# ckshim-test: as-root" start system services (a
# Slurm cluster: slurmctld and slurmd need root) and run their programs as
# $CKSHIM_TEST_USER themselves: as root, run_integration_unprivileged runs
# them first, in place, before it switches users; the unprivileged run
# then leaves them out (CKSHIM_ROOT_TESTS_DONE=1). Run by an ordinary user
# directly, they say SKIP.
is_root_test() { grep -q '^# ckshim-test: as-root' "$1"; }

# run_script SCRIPT OUT: run one integration script and count its lines.
run_script() {
    local s=$1 out=$2 name rc np nf ns
    name=${s##*/}
    name=${name%.sh}
    say "--- $name"
    timeout -k 10 "$SCRIPT_TIMEOUT" bash "$s" "$B" </dev/null 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    np=$(grep -c '^PASS ' "$out")
    nf=$(grep -c '^FAIL ' "$out")
    ns=$(grep -c '^SKIP ' "$out")
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        say "FAIL $name: timed out after ${SCRIPT_TIMEOUT}s"
        nf=$((nf + 1))
    elif [ "$rc" -ne 0 ] && [ "$nf" -eq 0 ]; then
        say "FAIL $name: exit status $rc without a FAIL line"
        nf=$((nf + 1))
    elif [ "$np" -eq 0 ] && [ "$nf" -eq 0 ] && [ "$ns" -eq 0 ]; then
        say "PASS $name"
        np=1
    fi
    passed=$((passed + np))
    failed=$((failed + nf))
    skipped=$((skipped + ns))
}

# Run every tests/integration/test_*.sh from this tree, as the current user
# (with "root": only the scripts marked as-root).
run_integration_here() {
    local s out found=0 only_root=${1:-}
    say "=== integration tests (as $(id -un 2>/dev/null || id -u), in $ROOT)"
    RUN_TOKEN="$$.$(date +%s%N)"
    RUN_START=$(proc_starttime $$)
    PIDFILE=$(mktemp "${TMPDIR:-/tmp}/ckshim-pids.XXXXXX") || return 1
    out=$(mktemp "${TMPDIR:-/tmp}/ckshim-out.XXXXXX") || return 1
    TMPFILES="$PIDFILE $out"
    export CKSHIM_TEST_RUN=$RUN_TOKEN CKSHIM_TEST_PIDFILE=$PIDFILE
    for s in "$ROOT"/tests/integration/test_*.sh; do
        [ -f "$s" ] || continue
        found=1
        if is_root_test "$s"; then
            [ "${CKSHIM_ROOT_TESTS_DONE:-0}" = 1 ] && continue
        else
            [ "$only_root" = root ] && continue
        fi
        run_script "$s" "$out"
    done
    [ $found -eq 1 ] || say "(no tests/integration/test_*.sh: nothing to run)"
    unset CKSHIM_TEST_RUN CKSHIM_TEST_PIDFILE
    kill_leftovers
    rm -f "$PIDFILE" "$out"
}

# As root: the same, as the unprivileged $TEST_USER in a copy under /tmp.
run_integration_unprivileged() {
    local uid gid dir out rc line np nf n names
    if ! id -u "$TEST_USER" >/dev/null 2>&1; then
        if ! useradd --system --no-create-home --home-dir /nonexistent \
            --shell /bin/bash "$TEST_USER" 2>/dev/null && ! id -u "$TEST_USER" >/dev/null 2>&1; then
            say "FAIL integration: cannot create the test user $TEST_USER (useradd failed)"
            failed=$((failed + 1))
            return
        fi
    fi
    uid=$(id -u "$TEST_USER")
    gid=$(id -g "$TEST_USER")
    if [ "$uid" -eq 0 ]; then
        say "FAIL integration: test user $TEST_USER has uid 0"
        failed=$((failed + 1))
        return
    fi
    if ! command -v setpriv >/dev/null; then
        say "FAIL integration: setpriv not found (install util-linux)"
        failed=$((failed + 1))
        return
    fi

    dir=$(mktemp -d /tmp/ckshim-itest.XXXXXX) || return
    chmod 755 "$dir"
    mkdir -p "$dir/build"
    # the binaries and test programs, not object files or fuzzing corpora
    # (tar's status 1 only says a file changed while it was read)
    (cd "$B" && tar cf - --warning=no-file-changed --exclude=./obj --exclude=./pic \
        --exclude=./free --exclude=./fuzz --exclude=./deb . ; [ $? -le 1 ]) |
        (cd "$dir/build" && tar xf -) &&
        cp -a "$ROOT/tests" "$ROOT/examples" "$dir/" &&
        chown -R "$uid:$gid" "$dir" || {
        say "FAIL integration: cannot copy the tree to $dir"
        failed=$((failed + 1))
        rm -rf "$dir"
        return
    }

    # the scripts that need root, in place, before the switch
    CKSHIM_TEST_USER=$TEST_USER run_integration_here root

    say "=== integration tests as user $TEST_USER (uid $uid) in $dir"
    out="$dir/.run-output"
    touch "$out" && chown "$uid:$gid" "$out"
    # shellcheck disable=SC2016
    timeout -k 10 $((SCRIPT_TIMEOUT * 4)) \
        setpriv --reuid="$uid" --regid="$gid" --init-groups \
        env -i HOME="$dir" USER="$TEST_USER" LOGNAME="$TEST_USER" SHELL=/bin/bash \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 TMPDIR=/tmp ${CI:+CI="$CI"} \
        CKSHIM_UNIT_TIMEOUT="$UNIT_TIMEOUT" CKSHIM_SCRIPT_TIMEOUT="$SCRIPT_TIMEOUT" \
        ${CKSHIM_KEEP:+CKSHIM_KEEP="$CKSHIM_KEEP"} ${CKSHIM_PROGS:+CKSHIM_PROGS="$CKSHIM_PROGS"} \
        CKSHIM_ROOT_TESTS_DONE=1 \
        bash -c 'cd "$1" && exec bash tests/run.sh --integration' _ "$dir" \
        </dev/null 2>&1 | tee "$out" | grep --line-buffered -Ev '^[0-9]+ passed, [0-9]+ failed$'
    rc=${PIPESTATUS[0]}

    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    if [ -n "$line" ]; then
        np=${line%% passed*}
        nf=${line#*, }
        nf=${nf%% failed*}
        passed=$((passed + np))
        failed=$((failed + nf))
        n=$(grep -c '^SKIP ' "$out")
        skipped=$((skipped + n))
        say "(integration as $TEST_USER: $np passed, $nf failed)"
    else
        say "FAIL integration: the run as $TEST_USER ended without a summary (exit status $rc)"
        failed=$((failed + 1))
    fi

    # anything the test user still runs belongs to these tests
    n=0
    names=""
    for d in /proc/[0-9]*; do
        [ "$(stat -c %u "$d" 2>/dev/null)" = "$uid" ] && is_alive "${d#/proc/}" || continue
        names="$names $(cat "$d/comm" 2>/dev/null)(${d#/proc/})"
        kill -KILL "${d#/proc/}" 2>/dev/null && n=$((n + 1))
    done
    [ $n -eq 0 ] || say "(killed $n leftover processes of $TEST_USER:$names)"

    if [ -z "${CKSHIM_KEEP:-}" ] && [ -n "$line" ] && [ "${nf:-1}" -eq 0 ]; then
        rm -rf "$dir"
    else
        find "$dir" -name '*.ckpt' -delete 2>/dev/null
        say "(integration logs kept in $dir)"
    fi
}

run_integration() {
    if [ "$(id -u)" -eq 0 ] && [ "${CKSHIM_TEST_AS_ROOT:-0}" != 1 ]; then
        run_integration_unprivileged
    else
        run_integration_here
    fi
}

case $MODE in
    all) run_unit; run_integration ;;
    unit) run_unit ;;
    integration) run_integration ;;
esac

[ $skipped -eq 0 ] || say "($skipped skipped)"
say "$passed passed, $failed failed"
[ $failed -eq 0 ]
