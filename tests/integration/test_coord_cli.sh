#!/bin/bash
# test_coord_cli.sh - coord's command line: help, usage errors and the error
# paths of run, checkpoint, list and inspect (no shim needed except for the
# run_preload checks, which are skipped when libshim.so is not built).
#
# usage: tests/integration/test_coord_cli.sh [BUILD_DIR]   (default: build)
# Prints one "PASS name" / "FAIL name" (or "SKIP name") line per check.

B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
COORD="$B/coord"

T=$(mktemp -d /tmp/ckshim-cli-test.XXXXXX)
chmod 755 "$T"
SLEEP_PID=
cleanup() {
    [ -n "$SLEEP_PID" ] && kill "$SLEEP_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

# Keep the tests away from real control sockets.
export CKSHIM_DIR="$T/sock"
mkdir -m 700 "$CKSHIM_DIR"

pass() { echo "PASS $1"; }
fail() {
    echo "FAIL $1${2:+: $2}"
    if [ -s "$T/err" ]; then sed 's/^/    stderr: /' "$T/err" | head -5; fi
}
skip() { echo "SKIP $1${2:+: $2}"; }

# run_coord ARGS...: runs coord, stdout in $T/out, stderr in $T/err, $rc.
run_coord() {
    "$COORD" "$@" >"$T/out" 2>"$T/err"
    rc=$?
}

# expect NAME RC PATTERN [FILE]: rc must be RC and FILE (default the
# stderr) must contain the extended regex PATTERN.
expect() {
    local name=$1 want=$2 pat=$3 file=${4:-$T/err}
    if [ "$rc" != "$want" ]; then
        fail "$name" "exit code $rc, expected $want"
    elif [ -n "$pat" ] && ! grep -Eq -- "$pat" "$file"; then
        fail "$name" "output does not match /$pat/"
    else
        pass "$name"
    fi
}

if [ ! -x "$COORD" ]; then
    echo "FAIL coord_built: $COORD missing (run make)"
    exit 1
fi

# ---- help, version, usage ----
run_coord --help
expect help 0 'coord restore FILE' "$T/out"
run_coord help
expect help_cmd 0 'coord inspect FILE' "$T/out"
run_coord help checkpoint
expect help_checkpoint 0 'coord checkpoint PID -o FILE' "$T/out"
run_coord inspect --help
expect subcmd_help 0 'usage: coord inspect' "$T/out"
run_coord --version
expect version 0 '0\.1\.0' "$T/out"
run_coord
expect no_args 2 'usage:'
run_coord frobnicate
expect unknown_command 2 "unknown command"
run_coord list --bogus
expect unknown_option 2 "unknown option"

# ---- run ----
run_coord run
expect run_missing_prog 2 "missing program"
run_coord run -- ckshim-no-such-program-xyz
expect run_not_found 1 "not found"
run_coord run -- "$T/nope"
expect run_missing_file 1 "no such file"
printf 'hello\n' >"$T/data.txt"
run_coord run -- "$T/data.txt"
expect run_not_executable 1 "not executable"
run_coord run -- "$T"
expect run_directory 1 "is a directory"
printf '\177ELF-not-really\n' >"$T/weird"
chmod +x "$T/weird"
run_coord run -- "$T/weird"
expect run_not_elf 1 "neither an ELF|not an x86_64"

printf 'int main(void) { return 0; }\n' >"$T/s.c"
if cc -static -o "$T/static" "$T/s.c" 2>/dev/null; then
    run_coord run -- "$T/static"
    expect run_static 1 "is statically linked; the shim \(LD_PRELOAD\) cannot apply to it"
    printf '#!%s\n' "$T/static" >"$T/static.sh"
    chmod +x "$T/static.sh"
    run_coord run -- "$T/static.sh"
    expect run_static_interpreter 1 "interpreter .*static is statically linked"
else
    skip run_static "cc -static does not work here"
    skip run_static_interpreter "cc -static does not work here"
fi
printf '#!/usr/bin/env ckshim-no-such-interp-xyz\n' >"$T/badenv.sh"
chmod +x "$T/badenv.sh"
run_coord run -- "$T/badenv.sh"
expect run_env_interpreter_missing 1 "ckshim-no-such-interp-xyz"

if [ -f "$B/libshim.so" ]; then
    SHIM=$(readlink -f "$B/libshim.so")
    run_coord run --id cli-test -- sh -c 'printf "%s|%s\n" "$LD_PRELOAD" "$CKSHIM_APP_ID"'
    expect run_preload 0 "^$SHIM\|cli-test\$" "$T/out"
    printf '#!/usr/bin/env sh\nprintf "%%s\\n" "$LD_PRELOAD"\n' >"$T/env.sh"
    chmod +x "$T/env.sh"
    LD_PRELOAD= run_coord run -- "$T/env.sh"
    expect run_env_script 0 "^$SHIM\$" "$T/out"
else
    skip run_preload "no $B/libshim.so"
    skip run_env_script "no $B/libshim.so"
fi

# ---- checkpoint ----
run_coord checkpoint abc -o "$T/x.ckpt"
expect ckpt_bad_pid 2 "'abc' is not a process id"
run_coord checkpoint -o "$T/x.ckpt"
expect ckpt_missing_pid 2 "missing PID"
run_coord checkpoint 1
expect ckpt_missing_output 2 "missing -o"
run_coord checkpoint 2147483647 -o "$T/x.ckpt"
expect ckpt_no_such_process 1 "no such process"

# Another user's process: pid 1 belongs to root.
if [ "$(id -u)" = 0 ]; then
    if command -v setpriv >/dev/null; then
        setpriv --reuid=65534 --regid=65534 --clear-groups \
            "$COORD" checkpoint 1 -o "$T/x.ckpt" >"$T/out" 2>"$T/err"
        rc=$?
        expect ckpt_not_ours 1 "PID 1 belongs to user [^ ]+; ckshim only checkpoints your own processes"
    else
        skip ckpt_not_ours "no setpriv"
    fi
elif [ "$(stat -c %u /proc/1)" != "$(id -u)" ]; then
    run_coord checkpoint 1 -o "$T/x.ckpt"
    expect ckpt_not_ours 1 "belongs to user"
else
    skip ckpt_not_ours "pid 1 is ours"
fi

# A process that is not under the shim; the existing output is kept.
sleep 60 &
SLEEP_PID=$!
mkdir "$T/outdir"
echo "precious" >"$T/outdir/keep.ckpt"
run_coord checkpoint "$SLEEP_PID" -o "$T/outdir/keep.ckpt"
expect ckpt_not_under_shim 1 "PID $SLEEP_PID is not running under the shim \(no control socket at .*\); start it with .coord run -- PROG."
if [ "$(cat "$T/outdir/keep.ckpt")" = precious ] && [ "$(ls -A "$T/outdir")" = keep.ckpt ]; then
    pass ckpt_output_untouched
else
    fail ckpt_output_untouched "$(ls -A "$T/outdir")"
fi
run_coord checkpoint -o "$T/outdir/keep.ckpt" --no-fork "$SLEEP_PID"
expect ckpt_options_first 1 "not running under the shim"
kill "$SLEEP_PID" 2>/dev/null
wait "$SLEEP_PID" 2>/dev/null
SLEEP_PID=
# A shell not under the shim with a child that is: the root itself is
# named, not only its descendants.
bash -c 'sleep 60 & LD_PRELOAD="$1" sleep 61 & wait' _ "$B/libshim.so" &
SH_PID=$!
sleep 0.5
run_coord checkpoint "$SH_PID" -o "$T/outdir/keep.ckpt"
expect ckpt_root_not_under_shim 1 "PID $SH_PID is not running under the shim \(no control socket\); start it"
pkill -P "$SH_PID" 2>/dev/null
kill "$SH_PID" 2>/dev/null
wait "$SH_PID" 2>/dev/null

# ---- list ----
run_coord list
expect list_empty 0 "^no processes run under the shim \(start one with: coord run -- PROG ARGS\)$" "$T/out"
grep -q "PID-SEEN" "$T/out" && fail list_empty_no_header "a table header with no process" ||
    pass list_empty_no_header
CKSHIM_DIR="$T/no-such-dir" run_coord list
expect list_missing_dir 0 "no processes run under the shim" "$T/out"
CKSHIM_DIR="$T/no-such-dir" run_coord list --json
expect list_json_empty 0 '"processes": \[\]' "$T/out"

# A stale socket of a process that is gone is removed.
true &
DEAD=$!
wait $DEAD
if [ ! -e "/proc/$DEAD" ] && command -v python3 >/dev/null; then
    python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()" \
        "$CKSHIM_DIR/$DEAD.sock"
    run_coord list
    if [ "$rc" = 0 ] && [ ! -e "$CKSHIM_DIR/$DEAD.sock" ]; then
        pass list_removes_stale
    else
        fail list_removes_stale "rc=$rc, socket still there: $(ls "$CKSHIM_DIR")"
    fi
else
    skip list_removes_stale "no python3"
fi

# ---- inspect ----
# an epoll instance's watch list, readable (no "?" for its line breaks)
if command -v python3 >/dev/null; then
    "$COORD" run -- python3 -c '
import select, os, time, socket
e = select.epoll(); r, w = os.pipe(); a, b = socket.socketpair()
e.register(r, select.EPOLLIN); e.register(a.fileno(), select.EPOLLIN | select.EPOLLOUT | select.EPOLLET)
print("READY", r, a.fileno(), flush=True)
time.sleep(60)' >"$T/ep.out" 2>&1 &
    EP=$!
    for _ in $(seq 100); do grep -q READY "$T/ep.out" && break; sleep 0.1; done
    read -r _ R A <"$T/ep.out"
    "$COORD" checkpoint "$EP" -o "$T/ep.ckpt" --json >"$T/ep.json" 2>"$T/ep.err"
    kill "$EP" 2>/dev/null
    wait "$EP" 2>/dev/null
    # --json: one object on stdout, the prose on stderr
    if python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
assert d["pid"] == int(sys.argv[2]) and d["image"].endswith("ep.ckpt") and d["processes"] == 1
assert d["image_bytes"] > 0 and d["pause_ms"] > 0 and d["stamp"] >= 1 and d["killed"] is False' \
        "$T/ep.json" "$EP" 2>"$T/err" && grep -q "app paused" "$T/ep.err"; then
        pass checkpoint_json
    else
        fail checkpoint_json "$(head -c 300 "$T/ep.json")"
    fi
    NP=$(cd / && "$COORD" restore "$T/ep.ckpt" --detach --json 2>"$T/err" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["pidns"] is False and d["processes"] == 1; print(d["pid"])')
    if [ -n "$NP" ] && kill -0 "$NP" 2>/dev/null; then
        pass restore_detach_json
        kill -9 "$NP"
    else
        fail restore_detach_json "no pid"
    fi
    run_coord restore "$T/ep.ckpt" --json
    expect restore_json_needs_detach 2 "--json needs --detach"
    run_coord checkpoint 1 -o - --json
    expect checkpoint_json_not_to_stdout 2 "standard output is the image"
    run_coord inspect "$T/ep.ckpt"
    line=$(grep " epoll " "$T/out")
    if grep -q "fd $A (in out err hup et)" <<<"$line" && grep -q "fd $R (in err hup)" <<<"$line" &&
        grep -q " watches fd" <<<"$line" && ! grep -q '?' <<<"$line"; then
        pass inspect_epoll_watches_readable
    else
        fail inspect_epoll_watches_readable "line: $line"
    fi
else
    skip inspect_epoll_watches_readable "no python3"
fi
run_coord inspect
expect inspect_missing_arg 2 "missing FILE"
run_coord inspect "$T/no-such.ckpt"
expect inspect_missing_file 1 "coord: inspect .*no-such\.ckpt: No such file or directory"
head -c 4096 /dev/urandom >"$T/garbage.ckpt"
run_coord inspect "$T/garbage.ckpt"
expect inspect_garbage 1 "coord: inspect .*garbage\.ckpt: ."
: >"$T/empty.ckpt"
run_coord inspect --verify "$T/empty.ckpt"
expect inspect_empty 1 "coord: inspect .*empty\.ckpt: ."
run_coord inspect --json "$T/garbage.ckpt"
if [ "$rc" = 1 ] && [ ! -s "$T/out" ]; then pass inspect_json_error; else fail inspect_json_error "rc=$rc"; fi

exit 0
