#!/usr/bin/env bash
# fuzz.sh - build and run the libFuzzer targets for the image reader and
# the LZ4 decoder, each for SECONDS seconds (default 60). Needs clang with
# libFuzzer; without it, prints why and exits 0 (a skip, not a failure).
#
#   bash tests/fuzz.sh [SECONDS]
#
# Builds into build/fuzz/, keeps corpora in build/fuzz/corpus-*/ (so later
# runs continue where earlier ones stopped) and crash inputs in
# build/fuzz/artifacts/. Exit status: 0 if no target crashed.
set -u

SECS=${1:-60}
case $SECS in
    '' | *[!0-9]*)
        echo "usage: bash tests/fuzz.sh [SECONDS]" >&2
        exit 2
        ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build/fuzz
CC=${FUZZ_CC:-clang}

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: SKIP: $CC is not installed (apt-get install clang)"
    exit 0
fi
mkdir -p "$OUT/artifacts" || exit 1
probe=$OUT/probe.c
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe"
if ! "$CC" -fsanitize=fuzzer,address,undefined -o "$OUT/probe" "$probe" >/dev/null 2>&1; then
    echo "fuzz: SKIP: $CC cannot build libFuzzer targets (-fsanitize=fuzzer missing)"
    exit 0
fi
rm -f "$probe" "$OUT/probe"

LZ4_LIBS=$(pkg-config --libs liblz4 2>/dev/null || echo -llz4)
CFLAGS=(-std=gnu11 -O1 -g -D_GNU_SOURCE -I"$ROOT/common" -I"$ROOT/tests/unit"
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
COMMON=("$ROOT/common/imgio.c" "$ROOT/common/xxh64.c" "$ROOT/common/lz4dec.c"
    "$ROOT/common/chunk.c")

echo "fuzz: building with $CC"
# The image target also runs each kind's describe (fds/) on what it read.
"$CC" "${CFLAGS[@]}" -I"$ROOT/fds" -DCK_FUZZ_AUTH -DCK_FUZZ_KINDS -o "$OUT/fuzz_image" \
    "$ROOT/tests/unit/fuzz_image.c" "${COMMON[@]}" "$ROOT/common/auth.c" "$ROOT/common/fileid.c" \
    "$ROOT/common/procparse.c" "$ROOT"/fds/*.c $LZ4_LIBS -lsodium || exit 1
"$CC" "${CFLAGS[@]}" -o "$OUT/fuzz_lz4" "$ROOT/tests/unit/fuzz_lz4.c" "$ROOT/common/lz4dec.c" \
    $LZ4_LIBS || exit 1
# A valid image as the first seed of the image corpus.
"$CC" -std=gnu11 -O1 -g -D_GNU_SOURCE -DCK_FUZZ_SEED_MAIN -I"$ROOT/common" \
    -o "$OUT/fuzz_image_seed" "$ROOT/tests/unit/fuzz_image.c" "${COMMON[@]}" $LZ4_LIBS || exit 1
# The tree header target (coordinator/tree.c, with stubs for what it
# uses to discover live processes) and its seed: a tree image around the
# image seed.
TREE_SRC=("$ROOT/tests/unit/fuzz_tree.c" "$ROOT/coordinator/tree.c"
    "$ROOT/coordinator/treegroups.c" "${COMMON[@]}" "$ROOT/common/auth.c" "$ROOT/common/fileid.c")
"$CC" "${CFLAGS[@]}" -I"$ROOT/coordinator" -I"$ROOT/fds" -o "$OUT/fuzz_tree" "${TREE_SRC[@]}" \
    $LZ4_LIBS -lsodium || exit 1
"$CC" -std=gnu11 -O1 -g -D_GNU_SOURCE -DCK_FUZZ_SEED_MAIN -I"$ROOT/common" -I"$ROOT/coordinator" \
    -I"$ROOT/fds" -o "$OUT/fuzz_tree_seed" "${TREE_SRC[@]}" $LZ4_LIBS -lsodium || exit 1
mkdir -p "$OUT/corpus-image" "$OUT/corpus-lz4" "$OUT/corpus-tree"
"$OUT/fuzz_image_seed" "$OUT/corpus-image/seed-valid.img" || exit 1
"$OUT/fuzz_tree_seed" "$OUT/corpus-image/seed-valid.img" "$OUT/corpus-tree/seed-tree.img" \
    "$OUT/corpus-tree/seed-tree-v1.img" || exit 1
# Seeds for the LZ4 target: 2 bytes of output size, then a real block.
printf '\x00\x10\x1f\x61\x01\x00\x50\x61\x61\x61\x61\x61' >"$OUT/corpus-lz4/seed-aaaa"

status=0
for t in image lz4 tree; do
    echo "fuzz: running fuzz_$t for ${SECS}s"
    "$OUT/fuzz_$t" -max_total_time="$SECS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t-" "$OUT/corpus-$t" \
        >"$OUT/fuzz_$t.log" 2>&1
    rc=$?
    tail -n 15 "$OUT/fuzz_$t.log" | grep -E 'stat::number_of_executed_units|Done|ERROR|SUMMARY' || true
    if [ $rc -ne 0 ]; then
        echo "fuzz: FAIL: fuzz_$t exited with $rc (log: $OUT/fuzz_$t.log)"
        status=1
    else
        echo "fuzz: ok: fuzz_$t"
    fi
done
exit $status
