#!/usr/bin/env bash
# demo.sh - ckshim in one minute: run the Python Person example under the
# shim, checkpoint it to a file, kill it, restore it, watch it go on.
#
#   bash examples/demo.sh          (or: make demo)
#
# Installs missing Debian/Ubuntu packages first (scripts/install-deps.sh,
# needs root or sudo for that), then builds ckshim with make. Everything
# it creates goes to a temporary directory under /tmp, removed at the end
# (set CKSHIM_KEEP=1 to keep it).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
B="$ROOT/build"
COORD="$B/coord"
T=60 # time limit for any one coord command, seconds

if [ -t 1 ]; then
    step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
    step() { printf '\n==> %s\n' "$*"; }
fi
say() { printf '    %s\n' "$*"; }
show_cmd() { printf '    $ %s\n' "$*"; }
die() {
    printf '\ndemo: %s\n' "$*" >&2
    exit 1
}

# alive PID: running and not a zombie.
alive() {
    local st
    read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

# wait_gone PID SECONDS
wait_gone() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        alive "$1" || return 0
        sleep 0.1
    done
    return 1
}

# show_log FROM_LINE: the log's lines from FROM_LINE on, indented.
show_log() {
    tail -n +"$1" "$LOG" | sed 's/^/    | /'
}

# The age in the last "NAME is AGE years old" line of the log.
last_age() {
    grep -Eo 'is [0-9]+ years old' "$LOG" | tail -n 1 | grep -Eo '[0-9]+' || true
}

PID=""
NPID=""
WORK=""
cleanup() {
    local p
    for p in $PID $NPID; do
        alive "$p" && kill -KILL "$p" 2>/dev/null
    done
    if [ -n "$WORK" ]; then
        if [ -n "${CKSHIM_KEEP:-}" ]; then
            echo "demo: files kept in $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "1/7 Installing missing packages (scripts/install-deps.sh)"
bash scripts/install-deps.sh || die "could not install the packages ckshim needs"
say "all build and run dependencies are present"

step "2/7 Building ckshim (make)"
make -s -j"$(nproc 2>/dev/null || echo 2)" all || die "the build failed"
say "built: build/libshim.so (the shim), build/coord (the CLI), build/ckshim-restore"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || die "python3 not found"
WORK=$(mktemp -d /tmp/ckshim-demo.XXXXXX)
LOG="$WORK/person.log"
IMG="$WORK/person.ckpt"

step "3/7 Starting the Python example under ckshim"
say "examples/python/person.py has no checkpoint code: it just prints a"
say "person's age and adds a year every second. Its output goes to $LOG."
show_cmd "build/coord run -- python3 examples/python/person.py --name Ada --age 35 > $LOG &"
"$COORD" run -- "$PY" examples/python/person.py --name Ada --age 35 >"$LOG" 2>&1 </dev/null &
PID=$!
disown "$PID" 2>/dev/null || true
for ((i = 0; i < 50; i++)); do
    [ -s "$LOG" ] && break
    alive "$PID" || break
    sleep 0.1
done
alive "$PID" || { show_log 1; die "the program did not start (output above)"; }
say "running as pid $PID; letting it age for 3 seconds:"
sleep 3.2
show_log 1

step "4/7 Checkpointing pid $PID to $IMG, then killing it"
show_cmd "build/coord checkpoint $PID -o $IMG --kill"
timeout "$T" "$COORD" checkpoint "$PID" -o "$IMG" --kill 2>&1 | sed 's/^/    /' ||
    die "coord checkpoint failed"
wait_gone "$PID" 10 || die "pid $PID is still running after checkpoint --kill"
BEFORE=$(last_age)
NLINES=$(wc -l <"$LOG")
say "pid $PID is gone; the last age it printed was $BEFORE."
say "Waiting 2 seconds to show that nothing runs any more:"
sleep 2
if [ "$(wc -l <"$LOG")" -eq "$NLINES" ]; then
    say "no new output, as expected."
else
    say "unexpected: the log grew while the process was supposed to be dead"
fi

step "5/7 What is in the image"
show_cmd "build/coord inspect $IMG | head -n 11"
timeout "$T" "$COORD" inspect "$IMG" 2>&1 | head -n 11 | sed 's/^/    /' || true

step "6/7 Restoring it"
show_cmd "build/coord restore $IMG --detach"
# stdout to a file, not $(...): only the restored pid is printed there
if ! timeout "$T" "$COORD" restore "$IMG" --detach >"$WORK/restore.out" 2>"$WORK/restore.err"; then
    sed 's/^/    /' "$WORK/restore.err"
    die "coord restore failed (see above)"
fi
NPID=$(head -n 1 "$WORK/restore.out")
[[ $NPID =~ ^[0-9]+$ ]] || die "coord restore printed '$NPID' instead of a pid"
say "restored: the kernel's pid is now $NPID; the program still sees pid $PID (getpid)."
show_cmd "build/coord list"
timeout "$T" "$COORD" list 2>&1 | sed 's/^/    /' || true
say "It keeps appending to the same log. 3 seconds later:"
sleep 3.2
show_log $((NLINES + 1))
AFTER=$(tail -n +$((NLINES + 1)) "$LOG" | grep -Eo 'is [0-9]+ years old' | head -n 1 |
    grep -Eo '[0-9]+' || true)
if [ -n "$AFTER" ] && [ -n "$BEFORE" ] && [ "$AFTER" -eq $((BEFORE + 1)) ]; then
    say "OK: the age went on from $BEFORE to $AFTER, as if nothing had happened."
else
    say "unexpected: last age before the checkpoint ${BEFORE:-?}, first after restore ${AFTER:-none}"
    alive "$NPID" || die "the restored process is not running"
fi

step "7/7 Stopping the restored process"
show_cmd "kill $NPID"
kill -TERM "$NPID" 2>/dev/null || true
wait_gone "$NPID" 5 || kill -KILL "$NPID" 2>/dev/null || true
say "done."
echo
echo "Try it by hand: build/coord run -- PROG ARGS..., then build/coord checkpoint PID -o FILE"
echo "--kill, then build/coord restore FILE. See README.md and docs/USER_GUIDE.md."
