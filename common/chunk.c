/* chunk.c - encode one record payload with liblz4 (ck_chunk_decode() is in
 * lz4dec.c). No heap: the caller provides the LZ4 state. */
#include "chunk.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <lz4.h>
#include <string.h>

#include "image.h"

size_t ck_chunk_bound(size_t n)
{
    /* LZ4's worst case (LZ4_COMPRESSBOUND): n + n/255 + 16. Also covers the
     * raw fallback. Saturates instead of wrapping for absurd n. */
    if (n > (SIZE_MAX - 16) / 2)
        return SIZE_MAX;
    return n + n / 255 + 16;
}

size_t ck_chunk_state_size(void)
{
    return (size_t)LZ4_sizeofState();
}

/* Compress with the output capped at n-1 bytes: if LZ4 cannot make the
 * data smaller it gives up early (returns 0) and the bytes are stored raw.
 * Needs cap >= n (ck_chunk_bound(n) is always enough). A payload under
 * CHUNK_MIN_LZ4 bytes is stored raw without trying: each call clears
 * LZ4's 16 KiB table first, which cost more than a few bytes could save
 * (a socket's waiting bytes are often a handful, one record per socket). */
#define CHUNK_MIN_LZ4 64
int ck_chunk_encode(void *state, const void *src, size_t n, void *dst, size_t cap,
                    uint32_t *ret_flags, size_t *ret_len)
{
    if (!state || ((uintptr_t)state & 7) != 0 || !dst || !ret_flags || !ret_len ||
        (n > 0 && !src) || cap < n)
        return -EINVAL;

    if (n >= CHUNK_MIN_LZ4 && n <= (size_t)LZ4_MAX_INPUT_SIZE) {
        size_t lim = n - 1 < cap ? n - 1 : cap;
        if (lim > (size_t)INT_MAX)
            lim = (size_t)INT_MAX;
        int r = LZ4_compress_fast_extState(state, (const char *)src, (char *)dst, (int)n,
                                           (int)lim, 1);
        if (r > 0 && (size_t)r < n) {
            *ret_flags = CK_RF_LZ4;
            *ret_len = (size_t)r;
            return 0;
        }
    }

    if (n > 0)
        memcpy(dst, src, n);
    *ret_flags = CK_RF_RAW;
    *ret_len = n;
    return 0;
}
