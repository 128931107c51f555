# ckxxh64.py - XXH64 in Python, for tests that edit images (test_auth.sh,
# forge_xxh64.py): written from the published algorithm, as common/xxh64.c.
import struct

M = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M


def rnd(acc, v):
    """One lane round: mix the 8-byte word v into acc."""
    return (rotl((acc + v * P2) & M, 31) * P1) & M


def lanes(seed):
    """The four lane accumulators before the first stripe."""
    return [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M]


def stripe(v, data, off):
    """The lanes after the 32-byte stripe at data[off:]."""
    return [rnd(v[i], struct.unpack_from("<Q", data, off + 8 * i)[0]) for i in range(4)]


def xxh64(data, seed=0):
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
    h ^= h >> 33
    h = h * P2 & M
    h ^= h >> 29
    h = h * P3 & M
    h ^= h >> 32
    return h
