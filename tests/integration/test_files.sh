#!/bin/bash
# test_files.sh - files and paths an attacker or an accident controls.
#
#   bash tests/integration/test_files.sh BUILD_DIR
#
# - A FIFO given as the image (restore, inspect), as the key file or as the
#   counter file is refused at once (exit 1, naming it a FIFO), never hangs.
# - A file the program had open is checked at restore: now a FIFO (refused,
#   no hang), edited with its mtime put back (refused: content changed),
#   grown (refused: size), only touched (restores, with a note),
#   --allow-changed PATH (restores with a warning).
# - The same for the program's own executable: touched restores (even
#   though its mtime changed), edited with the mtime put back is refused.
# - A small mapped file under /tmp that was deleted comes back from the
#   image, with its mode; the program's later writes reach it
#   (progs/tmp_mapped); a symbolic link put at its path is not followed.
# - An authenticated image modified after coord checked its MAC (test hook
#   CKSHIM_TEST_HOOK_AUTHENTICATED) still restores the memory it
#   authenticated: the restorer never reads the file again. Both a crude
#   change (pages zeroed) and a forgery that keeps every XXH64 checksum
#   (forge_xxh64.py) are tried.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-files.XXXXXX)
chmod 755 "$T"
export CKSHIM_COUNTER="file:$T/counters"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

# start_bin NAME BIN [VAR=VALUE...]: BIN under the shim in $T with $CK_GO
# $T/NAME.go, output in $T/NAME.log, until READY; sets $pid.
start_bin() {
    local name=$1 bin=$2
    shift 2
    (cd "$T" && exec env LD_PRELOAD="$SHIM" CK_GO="$T/$name.go" "$@" "$bin" \
        >"$T/$name.log" 2>&1) &
    pid=$!
    disown "$pid" 2>/dev/null
    PIDS+=("$pid")
    wait_for 10 grep -q READY "$T/$name.log" || echo "    (no READY from $name)"
}

# ckpt_kill NAME [ARGS...]: checkpoint $pid to $T/NAME.img with --kill.
ckpt_kill() {
    local name=$1
    shift
    "$C" checkpoint "$pid" -o "$T/$name.img" --kill "$@" >/dev/null 2>"$T/err" ||
        fail "${name}_image" "checkpoint failed"
    wait_for 5 gone "$pid"
}

# restore_verdict NAME CHECK [VAR=VALUE...] -- [ARGS...]: restore
# $T/NAME.img --detach (with the variables set), run CHECK (a command, or
# :) while it runs, write its go file, and expect PASS in $T/NAME.log.
restore_verdict() {
    local name=$1 check=$2 np
    shift 2
    local vars=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
    shift
    np=$(cd / && env "${vars[@]}" timeout 30 "$C" restore --detach "$T/$name.img" "$@" 2>"$T/err")
    if [ -z "$np" ] || ! alive "$np"; then
        fail "$check" "restore failed"
        return
    fi
    PIDS+=("$np")
    $check
    touch "$T/$name.go"
    wait_for 20 gone "$np"
    grep -q '^PASS' "$T/$name.log" && pass "${name}_restored_program_passes" ||
        fail "${name}_restored_program_passes" "$(tail -1 "$T/$name.log")"
}

# quick_refusal NAME PATTERN CMD...: CMD exits 1 within 10 s with a message
# matching PATTERN.
quick_refusal() {
    local name=$1 pat=$2
    shift 2
    timeout 10 "$@" >"$T/out" 2>"$T/err" </dev/null
    local rc=$?
    if [ $rc -eq 124 ]; then
        fail "$name" "hung (killed after 10 s)"
    elif [ $rc -eq 1 ] && grep -Eqi -- "$pat" "$T/err"; then
        pass "$name"
    else
        fail "$name" "rc=$rc, expected 1 and /$pat/"
    fi
}

# ---- FIFOs given as coord's inputs -----------------------------------------

mkfifo "$T/fifo"
cat >"$T/idle.py" <<'EOF2'
import time
print("READY", flush=True)
while True:
    time.sleep(0.1)
EOF2
start_py_app idle "$T/idle.py"
ckpt_kill idle
"$C" keygen "$T/key" >/dev/null 2>&1

quick_refusal restore_fifo_image "fifo: is a FIFO" "$C" restore "$T/fifo"
quick_refusal inspect_fifo_image "fifo: is a FIFO" "$C" inspect "$T/fifo"
quick_refusal restore_fifo_key "fifo: is a FIFO" "$C" restore "$T/idle.img" --key "$T/fifo"
quick_refusal inspect_fifo_key "fifo: is a FIFO" "$C" inspect "$T/idle.img" --key "$T/fifo"
quick_refusal restore_fifo_counter "fifo: is a FIFO" "$C" restore "$T/idle.img" \
    --counter "file:$T/fifo"

# ---- a file the program has open -------------------------------------------

printf 'hello, this is the data file\n' >"$T/data.txt"
cat >"$T/reader.py" <<'EOF2'
import time
f = open("data.txt")
print("READY", flush=True)
while True:
    time.sleep(0.1)
EOF2
start_py_app reader "$T/reader.py"
ckpt_kill reader
touch -r "$T/data.txt" "$T/data.ref"
cp -p "$T/data.txt" "$T/data.orig"

mv "$T/data.txt" "$T/data.moved"
mkfifo "$T/data.txt"
# output to files, not $(...): a restore stuck opening the FIFO must not
# hang the test (timeout kills coord, the FIFO is then opened to free it)
timeout -k 2 10 "$C" restore --detach "$T/reader.img" >"$T/out" 2>"$T/err" </dev/null &
rpid=$!
if wait_for 10 gone "$rpid"; then
    wait "$rpid"
    rc=$?
else
    rc=124
fi
if [ $rc -eq 1 ] && grep -q "data.txt is now a FIFO" "$T/err" && [ ! -s "$T/out" ]; then
    pass fd_file_now_fifo
else
    fail fd_file_now_fifo "rc=$rc (124: hung), expected 1 naming the FIFO"
    timeout 2 cat "$T/data.txt" >/dev/null 2>&1 &
    np=$(head -1 "$T/out" 2>/dev/null)
    [ -n "$np" ] && kill -9 "$np" 2>/dev/null
fi
rm -f "$T/data.txt"
mv "$T/data.moved" "$T/data.txt"

printf 'J' | dd of="$T/data.txt" bs=1 seek=0 conv=notrunc status=none
touch -r "$T/data.ref" "$T/data.txt"
restore_refused fd_file_edited_mtime_kept "$T/reader.img" "data.txt has changed.*content changed"
restore_ok fd_file_allow_changed "$T/reader.img" --force --allow-changed "$T/data.txt"
grep -q "warning.*data.txt" "$T/err" && pass fd_file_allow_changed_warns ||
    fail fd_file_allow_changed_warns "no warning naming the file"

cp "$T/data.orig" "$T/data.txt"   # same content, new mtime and ctime
restore_ok fd_file_touched "$T/reader.img" --force
grep -q "note.*data.txt.*content the same" "$T/err" && pass fd_file_touched_note ||
    fail fd_file_touched_note "no note"

echo more >>"$T/data.txt"
restore_refused fd_file_grown "$T/reader.img" "data.txt has changed.*size 29 -> 34"
cp -p "$T/data.orig" "$T/data.txt"

# ---- the program's executable ----------------------------------------------

cp "$B/tests/progs/clock" "$T/myprog"
start_bin myprog "$T/myprog"
ckpt_kill myprog
touch -r "$T/myprog" "$T/myprog.ref"
sleep 0.05
touch "$T/myprog"
restore_ok exe_touched_restores "$T/myprog.img" --force
size=$(stat -c %s "$T/myprog")
printf 'Z' | dd of="$T/myprog" bs=1 seek=$((size - 10)) conv=notrunc status=none
touch -r "$T/myprog.ref" "$T/myprog"
restore_refused exe_edited_mtime_kept_refused "$T/myprog.img" "myprog has changed.*content changed" \
    --force

# ---- a small temporary file the program maps (tmp_mapped) ------------------

start_bin tmpmap "$B/tests/progs/tmp_mapped" CK_TMPMAP_DIR="$T"
mapped=$(awk '/info: file/ {print $3; exit}' "$T/tmpmap.log")
ckpt_kill tmpmap
if [ -n "$mapped" ] && [ -f "$mapped" ]; then
    mv "$mapped" "$T/tmpmap.saved"
    ln -s "$T/victim" "$mapped"
    printf 'victim' >"$T/victim"
    restore_refused tmpmap_symlink_refused "$T/tmpmap.img" "is now a symbolic link"
    [ "$(cat "$T/victim")" = victim ] && pass tmpmap_symlink_not_followed ||
        fail tmpmap_symlink_not_followed "the link's target was written"
    rm -f "$mapped" "$T/tmpmap.saved"
    tmpmap_recreated() {
        [ "$(stat -c %a "$mapped" 2>/dev/null)" = 640 ] && pass tmpmap_recreated ||
            fail tmpmap_recreated "no $mapped with mode 640 after restore"
    }
    restore_verdict tmpmap tmpmap_recreated --
else
    fail tmpmap_recreated "tmp_mapped printed no file"
fi

# ---- an authenticated image changed after its MAC was checked --------------

start_bin auth_mac "$B/tests/progs/heap"
ckpt_kill auth_mac --key "$T/key"
size=$(stat -c %s "$T/auth_mac.img")
cp "$T/auth_mac.img" "$T/auth_mac.orig"
# Everything after the first 64 KiB (the pages) becomes zeros, in place:
# before the restorer read it from the file again, trusting XXH64 only.
hook="truncate -s 65536 '$T/auth_mac.img' && truncate -s $size '$T/auth_mac.img'"
restore_verdict auth_mac : CKSHIM_TEST_HOOK_AUTHENTICATED="$hook" -- --key "$T/key"
cmp -s "$T/auth_mac.img" "$T/auth_mac.orig" && fail auth_hook_ran "the hook did not change the image" ||
    pass auth_hook_ran

# The same with a forgery that keeps every checksum: bytes of a random
# buffer the program holds are replaced in the image's RAW page record,
# the next 32 bytes chosen so that the record's XXH64 does not change
# (forge_xxh64.py). Before, the restored program saw the forged bytes.
cat >"$T/secret.py" <<'EOF2'
import os, random, sys, time
secret = bytearray(random.Random(4321).randbytes(4 << 20))  # incompressible: stored raw
print("READY", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
if secret == random.Random(4321).randbytes(4 << 20):
    print("PASS", flush=True)
else:
    at = secret.find(b"FORGED")
    print("FAIL: memory changed:", bytes(secret[at:at + 32]), flush=True)
EOF2
(cd "$T" && exec env LD_PRELOAD="$SHIM" python3 "$T/secret.py" "$T/forged.go" >"$T/forged.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
wait_for 10 grep -q READY "$T/forged.log"
ckpt_kill forged --key "$T/key"
cp "$T/forged.img" "$T/forged.orig"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
hook="python3 '$here/forge_xxh64.py' '$T/forged.img' 4321 1048576"
restore_verdict forged : CKSHIM_TEST_HOOK_AUTHENTICATED="$hook" -- --key "$T/key"
cmp -s "$T/forged.img" "$T/forged.orig" && fail forge_hook_ran "the image was not forged" ||
    pass forge_hook_ran
