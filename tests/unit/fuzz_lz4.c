/* fuzz_lz4.c - libFuzzer target for ck_lz4_decode.
 *
 * The input is used twice: as a (mostly corrupt) LZ4 block, decoded into
 * an exactly sized heap buffer so that ASan sees any stray byte, and
 * compared with the reference decoder; and as plain data, compressed with
 * liblz4 and decoded back, which must give the input again.
 * Build and run: bash tests/fuzz.sh SECONDS */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "lz4_ref.h"
#include "lz4dec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;

    /* 1. The input as a block: the first two bytes choose the output size. */
    size_t cap = ((size_t)data[0] | ((size_t)data[1] << 8)) % 20000;
    const uint8_t *blk = data + 2;
    size_t blen = size - 2;
    uint8_t *src = malloc(blen ? blen : 1);
    uint8_t *dst = malloc(cap ? cap : 1);
    uint8_t *ref = malloc(cap ? cap : 1);
    int why;
    if (!src || !dst || !ref)
        abort();
    memcpy(src, blk, blen);
    long r = ck_lz4_decode(src, blen, cap ? dst : NULL, cap);
    long rr = ref_decode(src, blen, ref, cap, &why);
    if (r != rr || r < -1 || r > (long)cap)
        abort();
    if (r > 0 && memcmp(dst, ref, (size_t)r) != 0)
        abort();
    free(src);
    free(dst);
    free(ref);

    /* 2. The input as data: compress with liblz4, decode with ours. */
    int bound = LZ4_compressBound((int)size);
    char *comp = malloc((size_t)bound);
    uint8_t *out = malloc(size);
    if (!comp || !out)
        abort();
    int clen = LZ4_compress_fast((const char *)data, comp, (int)size, bound, 1 + data[0] % 4);
    if (clen <= 0)
        abort();
    uint8_t *exact = malloc((size_t)clen);
    if (!exact)
        abort();
    memcpy(exact, comp, (size_t)clen);
    if (ck_lz4_decode(exact, (size_t)clen, out, size) != (long)size)
        abort();
    if (memcmp(out, data, size) != 0)
        abort();
    /* one byte short must fail cleanly */
    if (ck_lz4_decode(exact, (size_t)clen, out, size - 1) != -1)
        abort();
    free(exact);
    free(comp);
    free(out);
    return 0;
}
