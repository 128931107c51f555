#!/bin/bash
# test_auth.sh - authenticated and encrypted images.
#
#   bash tests/integration/test_auth.sh BUILD_DIR
#
# coord keygen makes keys (never overwriting one). An image taken with
# --key restores only with that key: without a key, with another key, after
# records were reordered, or after its header was changed (stamp bumped, or
# the authentication flag stripped, checksums recomputed so only the MAC
# can tell) it is refused before anything is touched. With --encrypt the
# program's memory is not readable in the file, and the image still
# restores with the key. A key given for an unauthenticated image is refused.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-auth.XXXXXX)
chmod 755 "$T"
export CKSHIM_COUNTER="file:$T/counters"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

cat >"$T/secret.py" <<'EOF'
import random, time
secret = bytearray(random.Random(1234).randbytes(1 << 16))  # incompressible: stored raw
n = 0
print("READY", flush=True)
while True:
    n += 1
    time.sleep(0.05)
EOF

# start NAME: the program under the shim; sets $pid.
start() { start_py_app "$1" "$T/secret.py"; }



"$C" keygen "$T/k1" 2>"$T/err" && "$C" keygen "$T/k2" 2>>"$T/err" &&
    [ "$(stat -c %a "$T/k1")" = 600 ] && [ "$(stat -c %s "$T/k1")" = 32 ] &&
    pass keygen || fail keygen
cp "$T/k1" "$T/k1.copy"
"$C" keygen "$T/k1" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && cmp -s "$T/k1" "$T/k1.copy" && pass keygen_never_overwrites ||
    fail keygen_never_overwrites "rc=$rc"

# ---- authenticated -------------------------------------------------------
start auth
"$C" checkpoint "$pid" -o "$T/a.img" --key "$T/k1" --kill >/dev/null 2>"$T/err" ||
    fail auth_checkpoint "$(cat "$T/err")"
[ "$(stat -c %a "$T/a.img")" = 600 ] && pass image_mode_0600 || fail image_mode_0600 "$(stat -c %a "$T/a.img")"
"$C" inspect "$T/a.img" --key "$T/k1" >"$T/insp" 2>"$T/err"
grep -q "authenticated.*verified" "$T/insp" && pass inspect_verifies_signature ||
    fail inspect_verifies_signature "$(grep security "$T/insp")"
restore_refused auth_without_key "$T/a.img" "authenticated; give its key"
restore_refused auth_wrong_key "$T/a.img" "another key" --key "$T/k2"

# Tampering that keeps every checksum right: only the MAC can tell.
python3 - "$T/a.img" "$T" "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" <<'EOF'
import struct, sys
sys.path.insert(0, sys.argv[3])
from ckxxh64 import xxh64
img, out = open(sys.argv[1], "rb").read(), sys.argv[2]
hdr = bytearray(img[:512])
assert xxh64(bytes(hdr[:504])) == struct.unpack_from("<Q", hdr, 504)[0], "xxh64 port is wrong"
def reseal(h):
    struct.pack_into("<Q", h, 504, xxh64(bytes(h[:504])))
    return bytes(h)
# 1. bump the stamp (a replay attempt), header checksum recomputed
h = bytearray(hdr); stamp = struct.unpack_from("<Q", h, 40)[0]
struct.pack_into("<Q", h, 40, stamp + 5)
open(out + "/stamp.img", "wb").write(reseal(h) + img[512:])
# 2. strip the authentication flag
h = bytearray(hdr); flags = struct.unpack_from("<I", h, 16)[0]
struct.pack_into("<I", h, 16, flags & ~0x6)
open(out + "/strip.img", "wb").write(reseal(h) + img[512:])
# 3. a newer format version (the header checksum recomputed)
h = bytearray(hdr)
struct.pack_into("<H", h, 8, 3)
open(out + "/v3.img", "wb").write(reseal(h) + img[512:])
# 4. swap two PAGES records (each stays intact, order changes)
recs, off = [], 512
while off < len(img):
    t, f, ln = struct.unpack_from("<IIQ", img, off)
    recs.append((t, img[off:off + 48 + ln]))
    off += 48 + ln
pages = [i for i, r in enumerate(recs) if r[0] == 6]
a, b = pages[0], pages[-1]
recs[a], recs[b] = recs[b], recs[a]
open(out + "/swap.img", "wb").write(img[:512] + b"".join(r[1] for r in recs))
EOF
restore_refused auth_stamp_changed "$T/stamp.img" "modified|authentication" --key "$T/k1"
restore_refused auth_flag_stripped "$T/strip.img" "not authenticated" --key "$T/k1"
restore_refused auth_records_swapped "$T/swap.img" "modified|authentication" --key "$T/k1"
restore_refused unknown_format_version "$T/v3.img" "newer"
restore_ok auth_restores_with_key "$T/a.img" --key "$T/k1"

# ---- encrypted -----------------------------------------------------------
start plain
"$C" checkpoint "$pid" -o "$T/p.img" --kill --counter none >/dev/null 2>"$T/err" || fail plain_checkpoint
has_secret() { # IMG: does the file contain a piece of the program's secret bytes?
    python3 -c 'import random, sys
m = random.Random(1234).randbytes(1 << 16)[30000:30064]
sys.exit(0 if m in open(sys.argv[1], "rb").read() else 1)' "$1"
}
has_secret "$T/p.img" && pass plain_image_shows_memory ||
    fail plain_image_shows_memory "marker not found in an unencrypted image"
restore_refused key_for_plain_image "$T/p.img" "not authenticated" --key "$T/k1" --counter none
start enc
"$C" checkpoint "$pid" -o "$T/e.img" --key "$T/k1" --encrypt --kill >/dev/null 2>"$T/err" ||
    fail enc_checkpoint "$(cat "$T/err")"
has_secret "$T/e.img" && fail encrypted_hides_memory "marker readable" ||
    pass encrypted_hides_memory
"$C" inspect "$T/e.img" >"$T/insp" 2>&1 && grep -q "encrypted" "$T/insp" &&
    pass inspect_encrypted_without_key || fail inspect_encrypted_without_key
restore_refused enc_without_key "$T/e.img" "encrypted"
np=$(cd / && timeout 30 "$C" restore --detach "$T/e.img" --key "$T/k1" 2>"$T/err")
if [ -n "$np" ] && kill -0 "$np" 2>/dev/null; then
    PIDS+=("$np")
    sleep 0.3
    kill -0 "$np" 2>/dev/null && pass encrypted_restores_with_key || fail encrypted_restores_with_key "died"
    kill -9 "$np"
else
    fail encrypted_restores_with_key "restore failed"
fi

# ---- the seed workflow with a key ----------------------------------------
(cd "$T" && exec env LD_PRELOAD="$SHIM" CKSHIM_APP_ID=seedkey CKSHIM_DUMP_ON=TERM \
    CKSHIM_DUMP_FILE=seed.img CKSHIM_KEY_FILE="$T/k1" CKSHIM_ENCRYPT=1 python3 "$T/secret.py" \
    >"$T/seedkey.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
wait_for 10 grep -q READY "$T/seedkey.log"
kill -TERM "$pid"
wait_for 10 test -s "$T/seed.img"
"$C" inspect "$T/seed.img" --key "$T/k1" >"$T/insp" 2>"$T/err"
if grep -q "encrypted: signature verified" "$T/insp" && ! has_secret "$T/seed.img"; then
    pass seed_dump_encrypted_with_key_file
else
    fail seed_dump_encrypted_with_key_file "$(grep security "$T/insp")"
fi
(cd "$T" && exec env LD_PRELOAD="$SHIM" RESTORE_FROM_FILE=seed.img CKSHIM_KEY_FILE="$T/k1" \
    python3 "$T/secret.py" >"$T/seedkey2.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
sleep 1
if kill -0 "$pid" 2>/dev/null && ! grep -q READY "$T/seedkey2.log"; then
    pass seed_restore_from_file_with_key
else
    fail seed_restore_from_file_with_key "$(tail -2 "$T/seedkey2.log")"
fi
kill -9 "$pid" 2>/dev/null
