#!/usr/bin/env bash
# bench.sh - ckshim's checkpoint and restore speed against plain lz4.
#
#   bash tests/bench.sh [--size MIB] [--dir DIR] [--keep]      (make bench)
#   bash tests/bench.sh --threads-only        (only the thread-count part)
#   bash tests/bench.sh --sockets-only        (only the socket-count part)
#   bash tests/bench.sh --tree-only [--size MIB]   (only the process-tree part)
#   bash tests/bench.sh --supervise-only      (only the periodic-checkpoint part)
#
# Workload: build/tests/progs/bench_mem maps SIZE MiB (default 1024): a
# third never touched (zero pages), a third pseudo-random bytes, a third
# text-like data. Baseline: the same SIZE bytes written to a file (bench_mem
# --write), read once to warm the page cache, then timed (best of 3):
#   lz4 -1 -c FILE > /dev/null         compression time, and its output size
#   lz4 -d -c FILE.lz4 > /dev/null     decompression time
# ckshim: bench_mem under the shim, then
#   coord checkpoint PID -o IMG --kill wall time, and the pause it reports
#   image size
#   coord restore IMG --detach         wall time (returns once it runs: the
#                                      watch for an immediate death,
#                                      CKSHIM_DETACH_WATCH_MS, is set to 0), the
#                                      image read once before, as lz4 -d's
#                                      input is
#   the same with the image dropped    informational: the image comes from
#   from the page cache                disk (checkpoints write with O_DIRECT)
# Then the pause against the thread count: build/tests/progs/bench_threads N
# (N threads sleeping in a loop) for N = 10, 100, 500, checkpointed three
# times without --kill; the median of the pauses coord reports ("app
# paused", from the first thread stopped to the release), and the growth
# per 100 threads against 10 threads (target: a few ms).
# Then checkpoints against the socket count: build/tests/progs/bench_sockets
# N (N TCP and UDP sockets over loopback, half of them connections with
# both ends in the process, bytes waiting, half UDP sockets with a datagram
# waiting) for N = 0 and 1000, checkpointed three times without --kill;
# the median wall time of coord checkpoint and of the reported pause
# (target: 1000 sockets take at most twice the time of none).
# Then a process tree: bench_mem --procs 8 (SIZE split between 8
# processes) checkpointed with --kill, against one process holding SIZE
# (both measured back to back, the single one twice, best taken); the
# targets: the tree's checkpoint at most 1.2 x the single one's, its pause
# (the longest any process was parked) under 50 ms. The tree's restore
# time is shown for information.
# Then periodic checkpoints: build/tests/progs/bench_compute (a compute
# loop over a 64 MiB working set in SIZE MiB of data, rounds per second
# of wall time over 40 s, $BENCH_COMPUTE_SECONDS) under `coord run`, and under `coord run --every
# 10s --images DIR` (3 or 4 checkpoints of SIZE MiB during the run, their
# writers at idle priority), twice each, in the order A B B A, with the
# load average, the images, skipped periods and the writers' CPU time per
# image shown; target: the supervised rate at most 2% below.
# Prints a table with the ratios against the targets: checkpoint <= 0.6 x
# lz4 -1 time, restore <= 1.0 x lz4 -d time, image <= 1.05 x lz4 -1 size.
# Writes nothing outside its temporary directory (under DIR, default
# $TMPDIR or /tmp; needs about 2.5 x SIZE of free space), removed at the
# end unless --keep. Exit status: 0 when the benchmark ran (whether or not
# the targets were met), 1 when a step failed, 2 for usage errors.

set -euo pipefail
# restore --detach would watch the restored program for 200 ms before it
# returns (a death right after restore is reported): not restore time.
export CKSHIM_DETACH_WATCH_MS=0

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B="$ROOT/build"
SIZE=1024
DIR=${TMPDIR:-/tmp}
KEEP=0
THREADS_ONLY=0
SOCKETS_ONLY=0
TREE_ONLY=0
SUPERVISE_ONLY=0
T=600 # time limit for one step, seconds

usage() {
    echo "usage: bash tests/bench.sh [--size MIB] [--dir DIR] [--keep]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        --size) [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge 3 ] || usage; SIZE=$2; shift ;;
        --dir) [ $# -ge 2 ] || usage; DIR=$2; shift ;;
        --keep) KEEP=1 ;;
        --threads-only) THREADS_ONLY=1 ;;
        --sockets-only) SOCKETS_ONLY=1 ;;
        --tree-only) TREE_ONLY=1 ;;
        --supervise-only) SUPERVISE_ONLY=1 ;;
        -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) usage ;;
    esac
    shift
done

die() {
    echo "bench: $*" >&2
    exit 1
}
note() { echo "bench: $*"; }

command -v lz4 >/dev/null || die "lz4 not found (bash scripts/install-deps.sh)"
make -s -C "$ROOT" all build/tests/progs/bench_mem build/tests/progs/bench_threads \
    build/tests/progs/bench_sockets build/tests/progs/bench_compute || die "build failed"

avail_mb=$(df -Pm "$DIR" | awk 'NR == 2 { print $4 }')
need_mb=$((SIZE * 5 / 2 + 64))
[ "${avail_mb:-0}" -ge "$need_mb" ] ||
    die "$DIR has ${avail_mb:-?} MiB free, the benchmark needs about $need_mb MiB (use --dir or --size)"
mem_mb=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
[ "${mem_mb:-0}" -ge $((SIZE * 2 + 256)) ] ||
    note "warning: only ${mem_mb:-?} MiB of memory available for a $SIZE MiB workload"

W=$(mktemp -d "$DIR/ckshim-bench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
    done
    if [ $KEEP -eq 1 ]; then
        find "$W" -name mem.raw -delete 2>/dev/null || true
        echo "bench: files kept in $W"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }

# best_of3 CMD...: the best wall time of 3 runs, in ns (stdout of CMD to /dev/null).
best_of3() {
    local best="" t0 t1 i
    for i in 1 2 3; do
        t0=$(now_ns)
        "$@" >/dev/null
        t1=$(now_ns)
        if [ -z "$best" ] || [ $((t1 - t0)) -lt "$best" ]; then best=$((t1 - t0)); fi
    done
    echo "$best"
}

alive() {
    local st
    read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

fsize() { stat -c %s "$1"; }
ms() { awk -v n="$1" 'BEGIN { printf "%.1f ms", n / 1e6 }'; }
mib() { awk -v n="$1" 'BEGIN { printf "%.1f MiB", n / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
meets() { awk -v r="$1" -v t="$2" 'BEGIN { print (r != "n/a" && r <= t) ? "ok" : "MISSED" }'; }

# pause_for N: start bench_threads N under the shim, checkpoint it three
# times (the program keeps running), print the median reported pause in ms.
pause_for() {
    local n=$1 pid i p pauses=()
    "$B/coord" run -- "$B/tests/progs/bench_threads" "$n" >"$W/threads$n.log" 2>&1 </dev/null &
    pid=$!
    disown "$pid" 2>/dev/null || true
    PIDS+=("$pid")
    for ((i = 0; i < 300; i++)); do
        grep -q '^READY' "$W/threads$n.log" 2>/dev/null && break
        alive "$pid" || break
        sleep 0.1
    done
    grep -q '^READY' "$W/threads$n.log" || die "bench_threads $n did not get ready"
    for i in 1 2 3; do
        timeout "$T" "$B/coord" checkpoint "$pid" -o "$W/threads.ckpt" >"$W/threads.out" 2>&1 ||
            { cat "$W/threads.out" >&2; die "checkpoint of $n threads failed"; }
        p=$(grep -Eo 'app paused [0-9.]+ ms' "$W/threads.out" | grep -Eo '[0-9.]+') ||
            die "no pause in: $(cat "$W/threads.out")"
        pauses+=("$p")
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$W/threads.ckpt"
    printf '%s\n' "${pauses[@]}" | sort -n | sed -n 2p
}

thread_pauses() {
    local n p base=""
    note "pause against the thread count (bench_threads, median of 3 checkpoints)"
    printf '%-10s %14s %22s\n' threads "app pause" "growth per 100 threads"
    for n in 10 100 500; do
        p=$(pause_for "$n")
        if [ -z "$base" ]; then
            base=$p
            printf '%-10s %11s ms %22s\n' "$n" "$p" "-"
        else
            printf '%-10s %11s ms %19s ms\n' "$n" "$p" \
                "$(awk -v p="$p" -v b="$base" -v n="$n" 'BEGIN { printf "%.1f", (p - b) * 100 / (n - 10) }')"
        fi
    done
}

# socket_times N: start bench_sockets N under the shim, checkpoint it three
# times (the program keeps running); prints the median checkpoint wall time
# and the median reported pause, in ms.
socket_times() {
    local n=$1 pid i p t0 t1 walls=() pauses=()
    "$B/coord" run -- "$B/tests/progs/bench_sockets" "$n" >"$W/sockets$n.log" 2>&1 </dev/null &
    pid=$!
    disown "$pid" 2>/dev/null || true
    PIDS+=("$pid")
    for ((i = 0; i < 300; i++)); do
        grep -q '^READY' "$W/sockets$n.log" 2>/dev/null && break
        alive "$pid" || break
        sleep 0.1
    done
    grep -q '^READY' "$W/sockets$n.log" || die "bench_sockets $n did not get ready: $(cat "$W/sockets$n.log")"
    for i in 1 2 3; do
        t0=$(now_ns)
        timeout "$T" "$B/coord" checkpoint "$pid" -o "$W/sockets.ckpt" >"$W/sockets.out" 2>&1 ||
            { cat "$W/sockets.out" >&2; die "checkpoint of $n sockets failed"; }
        t1=$(now_ns)
        walls+=("$(awk -v n=$((t1 - t0)) 'BEGIN { printf "%.1f", n / 1e6 }')")
        p=$(grep -Eo 'app paused [0-9.]+ ms' "$W/sockets.out" | grep -Eo '[0-9.]+') ||
            die "no pause in: $(cat "$W/sockets.out")"
        pauses+=("$p")
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$W/sockets.ckpt"
    echo "$(printf '%s\n' "${walls[@]}" | sort -n | sed -n 2p) $(printf '%s\n' "${pauses[@]}" | sort -n | sed -n 2p)"
}

socket_checkpoints() {
    local z k
    note "checkpoint against the socket count (bench_sockets, median of 3 checkpoints)"
    z=$(socket_times 0)
    k=$(socket_times 1000)
    printf '%-10s %16s %12s\n' sockets "checkpoint" "app pause"
    printf '%-10s %13s ms %9s ms\n' 0 ${z% *} ${z#* }
    printf '%-10s %13s ms %9s ms\n' 1000 ${k% *} ${k#* }
    awk -v a="${k% *}" -v b="${z% *}" -v c="${k#* }" -v d="${z#* }" 'BEGIN {
        r = a / b; printf "1000 sockets / none: checkpoint %.2f x, pause %.2f x (target <= 2.00: %s)\n",
            r, c / d, r <= 2.0 ? "ok" : "MISSED" }'
}

# mem_checkpoint PROCS: bench_mem --size SIZE --procs PROCS under the shim,
# checkpointed once (the pause it reports), then with --kill (the wall
# time), restored (--detach) and killed; prints "checkpoint-ms pause-ms
# restore-ms".
mem_checkpoint() {
    local n=$1 pid i t0 t1 t2 p np
    "$B/coord" run -- "$B/tests/progs/bench_mem" --size "$SIZE" --procs "$n" >"$W/tree$n.log" 2>&1 </dev/null &
    pid=$!
    disown "$pid" 2>/dev/null || true
    PIDS+=("$pid")
    for ((i = 0; i < T * 10; i++)); do
        grep -q '^READY' "$W/tree$n.log" 2>/dev/null && break
        alive "$pid" || break
        sleep 0.1
    done
    grep -q '^READY' "$W/tree$n.log" || die "bench_mem --procs $n did not get ready: $(cat "$W/tree$n.log")"
    # the pause: a checkpoint the program survives (with --kill it is
    # parked until the image is written, since it never resumes)
    timeout "$T" "$B/coord" checkpoint "$pid" -o "$W/tree.ckpt" >"$W/tree.out" 2>&1 ||
        { cat "$W/tree.out" >&2; die "checkpoint of bench_mem --procs $n failed"; }
    p=$(grep -Eo 'paused [0-9.]+ ms' "$W/tree.out" | head -n 1 | grep -Eo '[0-9.]+') ||
        die "no pause in: $(cat "$W/tree.out")"
    t0=$(now_ns)
    timeout "$T" "$B/coord" checkpoint "$pid" -o "$W/tree.ckpt" --kill >"$W/tree.out" 2>&1 ||
        { cat "$W/tree.out" >&2; die "checkpoint of bench_mem --procs $n failed"; }
    t1=$(now_ns)
    for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
    cat "$W/tree.ckpt" >/dev/null
    t2=$(now_ns)
    np=$(timeout "$T" "$B/coord" restore "$W/tree.ckpt" --detach 2>"$W/tree.err") ||
        { cat "$W/tree.err" >&2; die "restore of bench_mem --procs $n failed"; }
    t0=$((t1 - t0)) t2=$(($(now_ns) - t2))
    [[ $np =~ ^[0-9]+$ ]] && { PIDS+=("$np"); pkill -KILL -P "$np" 2>/dev/null; kill -KILL "$np" 2>/dev/null; }
    rm -f "$W/tree.ckpt"
    awk -v c="$t0" -v p="$p" -v r="$t2" 'BEGIN { printf "%.1f %s %.1f\n", c / 1e6, p, r / 1e6 }'
}

tree_checkpoints() {
    local one a b tree
    note "a process tree: bench_mem --procs 8 against one process, $SIZE MiB in all (checkpoint --kill)"
    a=$(mem_checkpoint 1)
    b=$(mem_checkpoint 1)
    one=$(printf '%s\n%s\n' "$a" "$b" | sort -n | head -n 1)
    tree=$(mem_checkpoint 8)
    printf '%-12s %14s %12s %14s\n' processes checkpoint "app pause" "restore"
    set -- $one
    printf '%-12s %11s ms %9s ms %11s ms\n' 1 "$1" "$2" "$3"
    set -- $tree
    printf '%-12s %11s ms %9s ms %11s ms\n' 8 "$1" "$2" "$3"
    awk -v t="${tree%% *}" -v o="${one%% *}" -v p="$(echo "$tree" | cut -d' ' -f2)" 'BEGIN {
        r = t / o; printf "8 processes / 1: checkpoint %.2f x (target <= 1.20: %s), tree pause %.1f ms (target < 50: %s)\n",
            r, r <= 1.2 ? "ok" : "MISSED", p, p < 50 ? "ok" : "MISSED" }'
}

# compute_run [SUPERVISOR OPTIONS...]: bench_compute for 40 s under coord
# run (with the options). Prints: rounds per second of wall time, rounds
# per CPU second of the loop, the 1-minute load average before and after,
# images written, periods skipped, the writers' mean CPU seconds per
# image, the mean pause (ms), and how many writers went on at normal
# priority (their --idle-limit passed).
compute_run() {
    local log=$W/compute.log l0 l1 rate cpurate images=0 skipped=0
    rm -rf "$W/sv"
    [ $# -eq 0 ] || mkdir -m 700 "$W/sv"
    l0=$(cut -d' ' -f1 /proc/loadavg)
    timeout "$T" "$B/coord" run "$@" -- "$B/tests/progs/bench_compute" --size "$SIZE" --seconds "${BENCH_COMPUTE_SECONDS:-40}" \
        >"$log" 2>&1 </dev/null || { cat "$log" >&2; die "bench_compute failed"; }
    l1=$(cut -d' ' -f1 /proc/loadavg)
    rate=$(grep -Eo ' rate=[0-9.]+' "$log" | cut -d= -f2) || die "no rate in: $(cat "$log")"
    cpurate=$(grep -Eo 'cpurate=[0-9.]+' "$log" | cut -d= -f2) || cpurate=0
    if [ $# -gt 0 ]; then
        images=$(ls "$W/sv" | grep -c '\.img$') || true
        skipped=$(awk '$1 == "skipped" { print $2 }' "$W/sv/supervise.state")
    fi
    echo "$rate $cpurate $l0 $l1 $images ${skipped:-0}" \
        "$(grep -Eo 'writer [0-9.]+ s of CPU' "$log" | awk '{ s += $2; n++ } END { printf "%.2f", n ? s / n : 0 }')" \
        "$(grep -Eo 'app paused [0-9.]+ ms' "$log" | awk '{ s += $3; n++ } END { printf "%.1f", n ? s / n : 0 }')" \
        "$(grep -c 'normal after' "$log")"
}

# Alone (A) and under --every 10s (B) in the order A B B A, so that a load
# that rises or falls steadily during the four runs weighs the same on
# both; the load average is shown with each run. The loss is judged on
# the rate of wall time (pauses and a core taken by the writer count) and
# shown too per CPU second of the loop (copy-on-write faults and caches:
# what the machine's other load cannot change). A supervised run counts
# only with 3 or more images (its writers finished within the run).
supervised_rates() {
    local k r runs=() a=0 b=0 ac=0 bc=0 few=0
    note "periodic checkpoints: bench_compute ($SIZE MiB, ${BENCH_COMPUTE_SECONDS:-40} s), alone (A) and under --every 10s (B), A B B A"
    awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" 'BEGIN { if (l > n / 2)
        printf "bench: note: load average %s on %d cores: the other load moves these rates by more than 2%%; the writers get no idle CPU (see the normal column)\n", l, n }'
    printf '%-4s %12s %12s %11s %7s %8s %13s %9s %7s\n' run "rounds/s" "rounds/cpu-s" "load" images skipped "writer cpu/img" "pause" normal
    for k in A B B A; do
        if [ $k = A ]; then
            r=$(compute_run)
        else
            r=$(compute_run --every 10s --images "$W/sv" --keep 10)
        fi
        set -- $r
        printf '%-4s %12s %12s %5s-%-5s %7s %8s %11s s %6s ms %7s\n' "$k" "$1" "$2" "$3" "$4" \
            "$([ $k = B ] && echo "$5" || echo -)" "$([ $k = B ] && echo "$6" || echo -)" \
            "$([ $k = B ] && echo "$7" || echo -)" "$([ $k = B ] && echo "$8" || echo -)" \
            "$([ $k = B ] && echo "$9" || echo -)"
        if [ $k = A ]; then
            a=$(awk -v x="$a" -v y="$1" 'BEGIN { print x + y }')
            ac=$(awk -v x="$ac" -v y="$2" 'BEGIN { print x + y }')
        else
            b=$(awk -v x="$b" -v y="$1" 'BEGIN { print x + y }')
            bc=$(awk -v x="$bc" -v y="$2" 'BEGIN { print x + y }')
            [ "$5" -ge 3 ] || few=1
        fi
    done
    awk -v a="$a" -v b="$b" -v ac="$ac" -v bc="$bc" -v few="$few" 'BEGIN {
        l = 100 * (1 - b / a); lc = 100 * (1 - bc / ac);
        printf "throughput lost to checkpoints every 10 s: %.2f%% of wall-time rate (target < 2%%: %s), %.2f%% per CPU second\n",
            l, few ? "NOT MEASURED: a supervised run wrote fewer than 3 images" : l < 2 ? "ok" : "MISSED", lc }'
}

if [ $SUPERVISE_ONLY -eq 1 ]; then
    supervised_rates
    exit 0
fi
if [ $TREE_ONLY -eq 1 ]; then
    tree_checkpoints
    exit 0
fi
if [ $THREADS_ONLY -eq 1 ]; then
    thread_pauses
    exit 0
fi
if [ $SOCKETS_ONLY -eq 1 ]; then
    socket_checkpoints
    exit 0
fi

note "workload: $SIZE MiB (1/3 zero, 1/3 random, 1/3 text) in $W"

# ---- baseline: lz4 on the same bytes
note "writing the workload's bytes to a file"
timeout "$T" "$B/tests/progs/bench_mem" --size "$SIZE" --write "$W/mem.raw" || die "bench_mem --write failed"
cat "$W/mem.raw" >/dev/null
note "timing lz4 -1 (best of 3)"
LZ4C_NS=$(best_of3 lz4 -1 -q -c "$W/mem.raw")
lz4 -1 -q -c "$W/mem.raw" >"$W/mem.lz4"
LZ4_SIZE=$(fsize "$W/mem.lz4")
rm -f "$W/mem.raw"
cat "$W/mem.lz4" >/dev/null
note "timing lz4 -d (best of 3)"
LZ4D_NS=$(best_of3 lz4 -d -q -c "$W/mem.lz4")
rm -f "$W/mem.lz4"

# ---- ckshim
note "starting bench_mem under the shim"
"$B/coord" run -- "$B/tests/progs/bench_mem" --size "$SIZE" >"$W/bench_mem.log" 2>&1 </dev/null &
PID=$!
disown "$PID" 2>/dev/null || true
PIDS+=("$PID")
for ((i = 0; i < T * 10; i++)); do
    grep -q '^READY' "$W/bench_mem.log" 2>/dev/null && break
    alive "$PID" || break
    sleep 0.1
done
grep -q '^READY' "$W/bench_mem.log" || { cat "$W/bench_mem.log" >&2; die "bench_mem did not get ready"; }

note "checkpoint"
t0=$(now_ns)
if ! timeout "$T" "$B/coord" checkpoint "$PID" -o "$W/bench.ckpt" --kill >"$W/checkpoint.out" 2>&1; then
    cat "$W/checkpoint.out" >&2
    die "coord checkpoint failed"
fi
t1=$(now_ns)
CKPT_NS=$((t1 - t0))
sed 's/^/    /' "$W/checkpoint.out"
PAUSE=$(grep -Eo 'paused [0-9.]+ *(ns|us|ms|s)' "$W/checkpoint.out" | head -n 1 | sed 's/^paused *//' || true)
IMG_SIZE=$(fsize "$W/bench.ckpt")
for ((i = 0; i < 100; i++)); do alive "$PID" || break; sleep 0.1; done

# The image is read once first, as lz4 -d's input was (cat above): the
# restore target compares like with like. The checkpoint wrote the image
# with O_DIRECT, so without this it would come from disk; that case is
# measured next, for information.
note "restore (image in the page cache, like lz4 -d's input)"
cat "$W/bench.ckpt" >/dev/null
t0=$(now_ns)
if ! timeout "$T" "$B/coord" restore "$W/bench.ckpt" --detach >"$W/restore.out" 2>"$W/restore.err"; then
    cat "$W/restore.err" >&2
    die "coord restore failed"
fi
t1=$(now_ns)
RST_NS=$((t1 - t0))
NPID=$(head -n 1 "$W/restore.out")
[[ $NPID =~ ^[0-9]+$ ]] && PIDS+=("$NPID")
[[ $NPID =~ ^[0-9]+$ ]] && alive "$NPID" || die "restored process is not running (coord printed '$NPID')"

# ---- the same image from disk (informational; --force: its stamp is used)
note "restore (image dropped from the page cache: read from disk)"
kill -KILL "$NPID" 2>/dev/null || true
for ((i = 0; i < 100; i++)); do alive "$NPID" || break; sleep 0.1; done
dd if="$W/bench.ckpt" iflag=nocache count=0 status=none 2>/dev/null || true
t0=$(now_ns)
if timeout "$T" "$B/coord" restore "$W/bench.ckpt" --detach --force >"$W/restore2.out" 2>"$W/restore2.err"; then
    t1=$(now_ns)
    COLD_NS=$((t1 - t0))
    NPID2=$(head -n 1 "$W/restore2.out")
    [[ $NPID2 =~ ^[0-9]+$ ]] && PIDS+=("$NPID2")
else
    COLD_NS=""
    note "warning: the restore from disk failed: $(tail -n 1 "$W/restore2.err")"
fi

# ---- report
R1=$(ratio "$CKPT_NS" "$LZ4C_NS")
R2=$(ratio "$RST_NS" "$LZ4D_NS")
R3=$(ratio "$IMG_SIZE" "$LZ4_SIZE")
echo
printf 'ckshim vs lz4 on %s MiB (%s, %s cores)\n' "$SIZE" "$(uname -r)" "$(nproc)"
printf '%-22s %14s %16s %7s %8s  %s\n' metric ckshim "lz4 baseline" ratio target result
printf '%-22s %14s %16s %7s %8s  %s\n' "checkpoint time" "$(ms "$CKPT_NS")" "$(ms "$LZ4C_NS") (-1)" "$R1" "<= 0.60" "$(meets "$R1" 0.6)"
printf '%-22s %14s %16s %7s %8s  %s\n' "restore time" "$(ms "$RST_NS")" "$(ms "$LZ4D_NS") (-d)" "$R2" "<= 1.00" "$(meets "$R2" 1.0)"
printf '%-22s %14s %16s %7s %8s  %s\n' "image size" "$(mib "$IMG_SIZE")" "$(mib "$LZ4_SIZE") (-1)" "$R3" "<= 1.05" "$(meets "$R3" 1.05)"
if [ -n "$COLD_NS" ]; then
    R4=$(ratio "$COLD_NS" "$LZ4D_NS")
    printf '%-22s %14s %16s %7s   (informational)\n' "restore, from disk" "$(ms "$COLD_NS")" "$(ms "$LZ4D_NS") (-d)" "$R4"
fi
printf '%-22s %14s\n' "app pause (reported)" "${PAUSE:-n/a}"
awk -v s="$SIZE" -v c="$CKPT_NS" -v r="$RST_NS" 'BEGIN {
    printf "throughput: checkpoint %.2f GB/s, restore %.2f GB/s of process memory\n",
        s * 1048576 / c, s * 1048576 / r }'

echo
thread_pauses
echo
socket_checkpoints
echo
tree_checkpoints
echo
supervised_rates
