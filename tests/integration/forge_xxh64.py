# forge_xxh64.py IMG SEED OFFSET - a test helper of test_files.sh.
#
# Finds the 256 bytes at OFFSET of random.Random(SEED).randbytes(...) in
# the RAW PAGES records of the image IMG and, in every record holding them,
# replaces 32 of those bytes with "FORGED BY ..." and the next 32 with
# bytes chosen so that the record's XXH64 checksum stays the same (a
# second preimage: each XXH64 lane round can be inverted). Written in
# place. Shows what someone who can write an image file could do to the
# restored memory if the restorer trusted the file after coord's MAC check.
import os, random, struct, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ckxxh64 import M, P1, P2, lanes, stripe, xxh64  # noqa: E402


def unround(acc, target):
    """The 8-byte input that takes lane acc to target."""
    x = (target * pow(P1, -1, 1 << 64)) & M
    x = ((x >> 31) | (x << 33)) & M
    return ((x - acc) * pow(P2, -1, 1 << 64)) & M

img, seed, at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
want = random.Random(seed).randbytes(at + 256)[at:at + 256]
data = bytearray(open(img, "rb").read())
off = 512
forged = 0
while off + 48 <= len(data):
    typ, flags, ln, raw, arg, arg2, ck = struct.unpack_from("<IIQQQQQ", data, off)
    p = off + 48
    payload = data[p:p + ln]
    i = payload.find(want) if typ == 6 and flags == 2 else -1
    if i >= 0:
        hdr = bytearray(data[off:off + 48]); hdr[40:48] = bytes(8)
        rseed = xxh64(bytes(hdr), 0)
        assert xxh64(bytes(payload), rseed) == ck, "XXH64 does not match the image"
        k = (i + 31) // 32 * 32                  # first whole stripe inside
        v = lanes(rseed)
        for s in range(0, k, 32):
            v = stripe(v, payload, s)
        target = stripe(stripe(v, payload, k), payload, k + 32)
        payload[k:k + 32] = b"FORGED BY WHOEVER CAN WRITE IT!!"
        v2 = stripe(v, payload, k)
        payload[k + 32:k + 64] = struct.pack("<4Q", *(unround(v2[j], target[j]) for j in range(4)))
        assert xxh64(bytes(payload), rseed) == ck
        with open(img, "r+b") as f:
            f.seek(p)
            f.write(payload)
        print("forged record at byte", off, file=sys.stderr)
        forged += 1
    if typ == 0x7fff:
        break
    off = p + ln
if not forged:
    sys.exit("no RAW PAGES record holds the marker")
