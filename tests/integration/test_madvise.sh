#!/bin/bash
# test_madvise.sh - an image whose MADV_DONTFORK memory was lost is refused.
#
#   bash tests/integration/test_madvise.sh BUILD_DIR
#
# A Python program keeps 4 MiB of patterned memory marked MADV_DONTFORK
# (as node's V8 heap is). Its image holds a MEMCHECK record: the count and
# hash of that region's non-zero pages, taken by the program while it was
# paused. `inspect --verify` compares them with the pages in the image and
# says they match. Then the image is edited the way a writer that lost the
# region would have made it look, with every checksum made right again:
#   - the witness counts more pages than the image holds: every reader
#     refuses it (inspect, restore: "contents were lost");
#   - the hash differs (the pages hold other bytes): `inspect` still shows
#     the image, `inspect --verify` fails naming the region.
# A program with a guard page (MADV_GUARD_INSTALL, Linux 6.13+: reading it
# faults) is checkpointed, with and without --no-fork, and keeps running
# (reading it used to kill the writer, or with --no-fork the program
# itself); where /proc/self/smaps does not mark such regions ("gu", Linux
# 6.18) it is refused instead, naming the address. (progs/guards checks
# the restored guards.)
# (tests/integration/progs/madv_fork checks the restored memory itself.)
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-madvise.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

cat >"$T/heap.py" <<'EOF'
import mmap, os, time
m = mmap.mmap(-1, 4 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, len(m), 4096):
    m[i:i + 16] = os.urandom(16)
m.madvise(mmap.MADV_DONTFORK)
print("READY", flush=True)
while True:
    time.sleep(0.05)
EOF

# patch IMG OUT FIELD DELTA: copy IMG to OUT with FIELD (nonzero_pages or
# hash_sum) of the first MEMCHECK entry increased by DELTA, and the
# record's checksum computed again (XXH64 from libxxhash).
patch() {
    python3 - "$@" <<'EOF'
import ctypes, struct, sys
src, dst, field, delta = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
x = ctypes.CDLL("libxxhash.so.0")
x.XXH64.restype = ctypes.c_uint64
x.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
b = bytearray(open(src, "rb").read())
off = 512
while off + 48 <= len(b):
    typ, flags, ln = struct.unpack_from("<IIQ", b, off)
    if typ == 0x20:
        p = off + 48 + 8 + (0 if field == "nonzero_pages" else 8)
        struct.pack_into("<Q", b, p, (struct.unpack_from("<Q", b, p)[0] + delta) % 2**64)
        hdr = bytearray(b[off:off + 48])
        struct.pack_into("<Q", hdr, 40, 0)
        seed = x.XXH64(bytes(hdr), 48, 0)
        sum_ = x.XXH64(bytes(b[off + 48:off + 48 + ln]), ln, seed)
        struct.pack_into("<Q", b, off + 40, sum_)
        open(dst, "wb").write(b)
        sys.exit(0)
    off += 48 + ln
sys.exit("no MEMCHECK record in " + src)
EOF
}

start_py_app heap "$T/heap.py" || fail heap_ready "no READY"
if "$C" checkpoint "$pid" -o "$T/good.img" >"$T/out" 2>"$T/err" &&
    "$C" inspect --verify "$T/good.img" >"$T/inspect" 2>"$T/err" &&
    grep -q "1 region marked MADV_DONTFORK/WIPEONFORK match what the program held" "$T/inspect" &&
    grep -q "dontfork" "$T/inspect"; then
    pass verify_dontfork_witness
else
    fail verify_dontfork_witness "checkpoint or inspect --verify failed, or no witness shown"
fi

if patch "$T/good.img" "$T/lost.img" nonzero_pages 100 2>"$T/err"; then
    "$C" inspect "$T/lost.img" >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc -eq 1 ] && grep -q "contents were lost" "$T/err" && grep -q MADV_DONTFORK "$T/err" &&
        pass inspect_refuses_lost_region || fail inspect_refuses_lost_region "rc=$rc"
    restore_refused restore_refuses_lost_region "$T/lost.img" "contents were lost"
else
    fail inspect_refuses_lost_region "cannot patch the image"
fi

if patch "$T/good.img" "$T/other.img" hash_sum 1 2>"$T/err"; then
    "$C" inspect "$T/other.img" >"$T/out" 2>"$T/err"
    rc1=$?
    "$C" inspect --verify "$T/other.img" >"$T/out" 2>"$T/err"
    rc2=$?
    if [ $rc1 -eq 0 ] && [ $rc2 -eq 1 ] && grep -q "not saved as they were" "$T/err"; then
        pass verify_refuses_changed_region
    else
        fail verify_refuses_changed_region "inspect rc=$rc1 (want 0), --verify rc=$rc2 (want 1)"
    fi
else
    fail verify_refuses_changed_region "cannot patch the image"
fi
kill "$pid" 2>/dev/null

cat >"$T/guard.py" <<'EOF'
import mmap, time
m = mmap.mmap(-1, 64 << 10, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m[0:4] = b"abcd"
try:
    m.madvise(102, 16 << 10, 4096)   # MADV_GUARD_INSTALL
except OSError:
    print("NOGUARD", flush=True)
print("READY", flush=True)
n = 0
while True:
    n += 1
    time.sleep(0.05)
    if n % 10 == 0:
        print("tick", n, flush=True)
EOF
start_py_app guard "$T/guard.py" || fail guard_ready "no READY"
if grep -q NOGUARD "$T/guard.log"; then
    pass "refuses_guard_pages (skipped: this kernel has no MADV_GUARD_INSTALL)"
else
    ok=1
    name=refuses_guard_pages
    grep -q "^VmFlags:.* gu" "/proc/$pid/smaps" && name=saves_guard_pages
    for mode in "" --no-fork; do
        rm -f "$T/guard.img"
        "$C" checkpoint "$pid" -o "$T/guard.img" $mode >"$T/out" 2>"$T/err"
        rc=$?
        t1=$(grep -c tick "$T/guard.log")
        sleep 1
        t2=$(grep -c tick "$T/guard.log")
        if [ $name = saves_guard_pages ]; then
            good=$([ $rc -eq 0 ] && [ -s "$T/guard.img" ] && echo 1)
        else
            good=$([ $rc -eq 1 ] && grep -q "guard page" "$T/err" && [ ! -e "$T/guard.img" ] && echo 1)
        fi
        if ! { [ "$good" = 1 ] && alive "$pid" && [ "$t2" -gt "$t1" ]; }; then
            fail $name "checkpoint ${mode:-(fork)}: rc=$rc, ticks $t1 -> $t2: $(cat "$T/err")"
            ok=0
            break
        fi
    done
    [ $ok -eq 1 ] && pass $name
fi
kill "$pid" 2>/dev/null
