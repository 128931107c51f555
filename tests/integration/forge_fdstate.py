# forge_fdstate.py IN OUT OP... - a test helper of test_fdstate.sh.
#
# Copies the image IN to OUT with descriptors' saved state changed, every
# record checksum made right again (the XXH64 of ck_rec_checksum), so that
# only what coord makes of the contents can refuse it: what someone who
# can write an image file (without a key) could hand to `coord restore`.
# Each OP is one of
#   state:SEL:OFF:HEX    write the bytes HEX at OFF into the FDSTATE entry
#                        of the descriptor SEL; HEX "self" is that
#                        descriptor's own number as an int32
#   fd:SEL:OFF:HEX       write the bytes HEX at OFF into the descriptor's
#                        struct ck_fd (FDS record)
#   pathraw:SEL:TEXT     replace the descriptor's path string by TEXT, of
#                        the same length (an epoll watch list)
#   path:SEL:PATH        replace the descriptor's path (FDS string table)
#                        by PATH, padded with '/' before its last
#                        component to the same length (never longer)
# SEL: a descriptor number, "kind=K" (the first with an FDSTATE entry of
# kind K), "path=SUFFIX" (the first whose path ends with SUFFIX) or
# "match=OFF=HEX" (the first whose FDSTATE entry has the bytes HEX at OFF).
import os, struct, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ckxxh64 import xxh64  # noqa: E402

REC_FDS, REC_FDSTATE, REC_END = 4, 12, 0x7fff
FD_SIZE, FD_PATH_OFF = 112, 80

data = bytearray(open(sys.argv[1], "rb").read())
recs, off = {}, 512
while off + 48 <= len(data):
    typ, flags, ln = struct.unpack_from("<IIQ", data, off)
    recs.setdefault(typ, off)
    if typ == REC_END:
        break
    off += 48 + ln


def payload(typ):
    o = recs[typ]
    flags, ln, _, arg = struct.unpack_from("<IQQQ", data, o + 4)
    assert flags == 0, "record %d is compressed or encrypted" % typ
    return o + 48, ln, arg


def fds():
    """[(fd, path, offset of the path bytes, offset of the ck_fd)] in FDS order."""
    p, ln, n = payload(REC_FDS)
    table = p + n * FD_SIZE
    out = []
    for i in range(n):
        e = p + i * FD_SIZE
        fd = struct.unpack_from("<i", data, e)[0]
        po, pl = struct.unpack_from("<II", data, e + FD_PATH_OFF)
        out.append((fd, bytes(data[table + po:table + po + pl]).decode(), table + po, e))
    return out


def states():
    """[(fd, kind, offset of the state bytes, len)]"""
    p, ln, n = payload(REC_FDSTATE)
    out, o = [], p
    for _ in range(n):
        fd, kind, sl = struct.unpack_from("<iII", data, o)
        out.append((fd, kind, o + 16, sl))
        o += 16 + (sl + 7) // 8 * 8
    return out


def select(sel):
    if sel.startswith("kind="):
        return next(s[0] for s in states() if s[1] == int(sel[5:]))
    if sel.startswith("match="):
        at, val = sel[6:].split("=")
        b = bytes.fromhex(val)
        return next(s[0] for s in states()
                    if bytes(data[s[2] + int(at):s[2] + int(at) + len(b)]) == b)
    if sel.startswith("path="):
        return next(f[0] for f in fds() if f[1].endswith(sel[5:]))
    return int(sel)


def reseal(typ):
    o = recs[typ]
    hdr = bytearray(data[o:o + 48])
    hdr[40:48] = bytes(8)
    ln = struct.unpack_from("<Q", hdr, 8)[0]
    struct.pack_into("<Q", data, o + 40, xxh64(bytes(data[o + 48:o + 48 + ln]), xxh64(bytes(hdr), 0)))


for op in sys.argv[3:]:
    what, sel, rest = op.split(":", 2)
    fd = select(sel)
    if what == "state":
        at, val = rest.split(":")
        st = next(s for s in states() if s[0] == fd)
        b = struct.pack("<i", fd) if val == "self" else bytes.fromhex(val)
        assert int(at) + len(b) <= st[3], "past the entry"
        data[st[2] + int(at):st[2] + int(at) + len(b)] = b
        reseal(REC_FDSTATE)
    elif what == "fd":
        at, val = rest.split(":")
        f = next(f for f in fds() if f[0] == fd)
        b = bytes.fromhex(val)
        assert int(at) + len(b) <= FD_SIZE, "past the entry"
        data[f[3] + int(at):f[3] + int(at) + len(b)] = b
        reseal(REC_FDS)
    elif what == "pathraw":
        f = next(f for f in fds() if f[0] == fd)
        assert len(rest) == len(f[1]), "%r is not as long as %r" % (rest, f[1])
        data[f[2]:f[2] + len(rest)] = rest.encode()
        reseal(REC_FDS)
    elif what == "path":
        f = next(f for f in fds() if f[0] == fd)
        new = rest
        assert len(new) <= len(f[1]), "%s is longer than %s" % (new, f[1])
        k = new.rindex("/")
        new = new[:k] + "/" * (len(f[1]) - len(new)) + new[k:]
        data[f[2]:f[2] + len(new)] = new.encode()
        reseal(REC_FDS)
    else:
        sys.exit("unknown op " + op)
    print("forged %s of fd %d" % (what, fd), file=sys.stderr)
open(sys.argv[2], "wb").write(data)
