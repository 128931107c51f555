# forge_tree.py IN OUT OP... - a test helper of test_tree_barrier.sh.
#
# Copies the process tree image IN to OUT with its tree header changed
# and the header's checksum made right again, so that only what coord
# makes of the entries can refuse it: what someone who can write an
# image file (without a key) could hand to `coord restore`. Each OP is
#   I.FIELD=VALUE   set FIELD (vpid, real_pid, parent, flags, offset,
#                   length, pgid, sid) of entry I; VALUE an integer, or "I2.FIELD"
#                   for that field of entry I2
#   nprocs=N        the number of entries (the checksum goes after N)
#   truncate=N      cut the file to N bytes (after the header is written)
#   splice=I:PATH   put the stream of entry I of the tree image PATH in
#                   place of entry I's stream (the header unchanged: it
#                   must fit in entry I's length; zeros after it)
#   version=1       write it as a version 1 image (taken before process
#                   groups and the share table: 32-byte entries, no pgid
#                   and sid, no share table), the streams where they are
# Layout (common/image.h): a 128-byte struct ck_tree_hdr (version at 8,
# nprocs at 12), 48-byte entries {i32 vpid, real_pid, parent; u32 flags;
# u64 offset, length; i32 pgid, sid, ctty, fg_pgid} (version 2: 40 bytes,
# without ctty and fg_pgid; version 1: 32 bytes, without pgid and sid),
# from version 2 on the share table (u64 nshares, u64 flags, 16-byte
# shares: kept as it was, after the entries), then the XXH64 (seed 0) of
# all that.
import os, struct, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ckxxh64 import xxh64  # noqa: E402

HDR = 128
FIELDS = {"vpid": (0, "<i"), "real_pid": (4, "<i"), "parent": (8, "<i"),
          "flags": (12, "<I"), "offset": (16, "<Q"), "length": (24, "<Q"),
          "pgid": (32, "<i"), "sid": (36, "<i"), "ctty": (40, "<i"), "fg_pgid": (44, "<i")}

data = bytearray(open(sys.argv[1], "rb").read())
cut = None
table = b""
VERSION = struct.unpack_from("<I", data, 8)[0]
ENT = 48 if VERSION >= 3 else 40 if VERSION == 2 else 32
if ENT >= 40:
    at = HDR + struct.unpack_from("<I", data, 12)[0] * ENT
    nsh = struct.unpack_from("<Q", data, at)[0]
    table = bytes(data[at:at + 16 + 16 * nsh])
for op in sys.argv[3:]:
    key, val = op.split("=", 1)
    if key == "version" and val == "1" and ENT >= 40:
        n = struct.unpack_from("<I", data, 12)[0]
        ents = [bytes(data[HDR + i * ENT:HDR + i * ENT + 32]) for i in range(n)]
        struct.pack_into("<I", data, 8, 1)
        data[HDR:HDR + n * 32] = b"".join(ents)  # (same length: the streams stay)
        ENT, table = 32, b""
        continue
    if key == "nprocs":
        struct.pack_into("<I", data, 12, int(val))
        continue
    if key == "truncate":
        cut = int(val)
        continue
    if key == "splice":
        i, path = val.split(":", 1)
        other = open(path, "rb").read()
        eo = HDR + int(i) * ENT
        o1, l1 = struct.unpack_from("<QQ", other, eo + 16)
        o0, l0 = struct.unpack_from("<QQ", data, eo + 16)
        assert l1 <= l0, "the other stream is longer"
        data[o0:o0 + l0] = other[o1:o1 + l1] + b"\0" * (l0 - l1)
        continue
    i, field = key.split(".")
    if "." in val:
        j, f2 = val.split(".")
        o2, fmt2 = FIELDS[f2]
        val = struct.unpack_from(fmt2, data, HDR + int(j) * ENT + o2)[0]
    o, fmt = FIELDS[field]
    struct.pack_into(fmt, data, HDR + int(i) * ENT + o, int(val))
n = struct.unpack_from("<I", data, 12)[0]
end = HDR + n * ENT
if end + len(table) > len(data):
    data.extend(b"\0" * (end + len(table) - len(data)))
data[end:end + len(table)] = table
end += len(table)
if end + 8 > len(data):
    data.extend(b"\0" * (end + 8 - len(data)))
struct.pack_into("<Q", data, end, xxh64(bytes(data[:end])))
if cut is not None:
    del data[cut:]
open(sys.argv[2], "wb").write(data)
