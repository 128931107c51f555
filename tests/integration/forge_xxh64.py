# forge_xxh64.py IMG SEED OFFSET - a test helper of test_files.sh.
#
# Finds the 256 bytes at OFFSET of random.Random(SEED).randbytes(...) in
# the RAW PAGES records of the image IMG and, in every record holding them,
# replaces 32 of those bytes with "FORGED BY ..." and the next 32 with
# bytes chosen so that the record's XXH64 checksum stays the same (a
# second preimage: each XXH64 lane round can be inverted). Written in
# place. Shows what someone who can write an image file could do to the
# restored memory if the restorer trusted the file after coord's MAC check.
import random, struct, sys

M = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)
rotl = lambda x, r: ((x << r) | (x >> (64 - r))) & M
rnd = lambda acc, v: (rotl((acc + v * P2) & M, 31) * P1) & M

def lanes(seed):
    return [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M]

def stripe(v, data, off):
    return [rnd(v[i], struct.unpack_from("<Q", data, off + 8 * i)[0]) for i in range(4)]

def xxh64(data, seed):
    n, off = len(data), 0
    if n >= 32:
        v = lanes(seed)
        while off + 32 <= n:
            v = stripe(v, data, off)
            off += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
        for x in v:
            h = ((h ^ rnd(0, x)) * P1 + P4) & M
    else:
        h = (seed + P5) & M
    h = (h + n) & M
    while off + 8 <= n:
        h = (rotl(h ^ rnd(0, struct.unpack_from("<Q", data, off)[0]), 27) * P1 + P4) & M
        off += 8
    if off + 4 <= n:
        h = (rotl(h ^ (struct.unpack_from("<I", data, off)[0] * P1 & M), 23) * P2 + P3) & M
        off += 4
    while off < n:
        h = (rotl(h ^ (data[off] * P5 & M), 11) * P1) & M
        off += 1
    h ^= h >> 33; h = h * P2 & M; h ^= h >> 29; h = h * P3 & M; h ^= h >> 32
    return h

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
