# forge_tree.py IN OUT OP... - a test helper of test_tree_barrier.sh.
#
# Copies the process tree image IN to OUT with its tree header changed
# and the header's checksum made right again, so that only what coord
# makes of the entries can refuse it: what someone who can write an
# image file (without a key) could hand to `coord restore`. Each OP is
#   I.FIELD=VALUE   set FIELD (vpid, real_pid, parent, flags, offset,
#                   length) of entry I; VALUE an integer, or "I2.FIELD"
#                   for that field of entry I2
#   nprocs=N        the number of entries (the checksum goes after N)
#   truncate=N      cut the file to N bytes (after the header is written)
#   splice=I:PATH   put the stream of entry I of the tree image PATH in
#                   place of entry I's stream (the header unchanged: it
#                   must fit in entry I's length; zeros after it)
# Layout (common/image.h): a 128-byte struct ck_tree_hdr (nprocs at 12),
# 40-byte entries {i32 vpid, real_pid, parent; u32 flags; u64 offset,
# length; i32 pgid, sid} (tree image version 2), then the XXH64 (seed 0)
# of header and entries.
import os, struct, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ckxxh64 import xxh64  # noqa: E402

HDR, ENT = 128, 40
FIELDS = {"vpid": (0, "<i"), "real_pid": (4, "<i"), "parent": (8, "<i"),
          "flags": (12, "<I"), "offset": (16, "<Q"), "length": (24, "<Q"),
          "pgid": (32, "<i"), "sid": (36, "<i")}

data = bytearray(open(sys.argv[1], "rb").read())
cut = None
for op in sys.argv[3:]:
    key, val = op.split("=", 1)
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
if end + 8 > len(data):
    data.extend(b"\0" * (end + 8 - len(data)))
struct.pack_into("<Q", data, end, xxh64(bytes(data[:end])))
if cut is not None:
    del data[cut:]
open(sys.argv[2], "wb").write(data)
