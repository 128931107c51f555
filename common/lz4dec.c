/* lz4dec.c - LZ4 block decoder and ck_chunk_decode(), freestanding.
 *
 * Written from the LZ4 block format description: a block is a series of
 * sequences; each starts with a token byte whose high nibble is the literal
 * length and low nibble the match length minus 4 (the value 15 in either
 * nibble means "more length bytes follow, each added, until one is not
 * 255"). The literals follow, then a 2-byte little-endian offset back into
 * the output and the match-length extension bytes. The last sequence of a
 * block has literals only and ends the input.
 *
 * Every length is checked against what is left of the input and the output
 * before it is used. When both are far from their ends the decoder copies
 * 8 or 16 bytes at a time and may write past the current sequence (never
 * past dst + dstcap): bytes of dst beyond the returned length may change.
 * src and dst must not overlap.
 */
#include "lz4dec.h"

#include "chunk.h"
#include "image.h"

#define CK_LZ4_EINVAL 22                /* EINVAL on Linux; no errno.h here */
#define CK_LZ4_MINMATCH 4
#define CK_LZ4_MARGIN 16                /* slack needed for the wide copies */

typedef uint64_t __attribute__((aligned(1), may_alias)) ck_lz4_u64;

static inline void lz4_copy8(uint8_t *d, const uint8_t *s)
{
    *(ck_lz4_u64 *)d = *(const ck_lz4_u64 *)s;
}

static inline void lz4_copy16(uint8_t *d, const uint8_t *s)
{
    uint64_t a = *(const ck_lz4_u64 *)s;
    uint64_t b = *(const ck_lz4_u64 *)(s + 8);
    *(ck_lz4_u64 *)d = a;
    *(ck_lz4_u64 *)(d + 8) = b;
}

/* Reads a length extension: bytes are added to *len until one is not 255.
 * Returns 0, or -1 if the input ends first. */
static inline int lz4_read_ext(const uint8_t **ipp, const uint8_t *iend, size_t *len)
{
    const uint8_t *ip = *ipp;
    size_t l = *len;
    unsigned b;

    do {
        if (ip >= iend)
            return -1;
        b = *ip++;
        l += b;
    } while (b == 255);
    *ipp = ip;
    *len = l;
    return 0;
}

long ck_lz4_decode(const uint8_t *src, size_t srclen, uint8_t *dst, size_t dstcap)
{
    if (srclen == 0 || src == 0)
        return -1;
    if (dstcap == 0 || dst == 0) {
        /* Only an empty literal run fits: one token with no literals. */
        return (srclen == 1 && (src[0] >> 4) == 0) ? 0 : -1;
    }

    const uint8_t *ip = src;
    const uint8_t *const iend = src + srclen;
    uint8_t *op = dst;
    uint8_t *const oend = dst + dstcap;

    for (;;) {
        size_t in_left, out_left;

        if (ip >= iend)
            return -1;                  /* a match must be followed by a token */
        unsigned token = *ip++;

        /* Fast path, the common case: short literals, a short match at
         * offset >= 8, and plenty of room on both sides, so fixed-size
         * copies need no further checks. */
        if ((token >> 4) < 15 && (token & 15) < 15 && (size_t)(iend - ip) >= 32 &&
            (size_t)(oend - op) >= 64) {
            size_t l = token >> 4;
            lz4_copy16(op, ip);
            ip += l;
            op += l;
            size_t o = (size_t)ip[0] | ((size_t)ip[1] << 8);
            if (o >= 8 && o <= (size_t)(op - dst)) {
                const uint8_t *m = op - o;
                ip += 2;
                lz4_copy8(op, m);
                lz4_copy8(op + 8, m + 8);
                lz4_copy8(op + 16, m + 16);
                op += (token & 15) + CK_LZ4_MINMATCH;
                continue;
            }
            /* Literals are done; the match takes the general path. */
            token &= 15;
        }

        /* Literals. */
        size_t lit = token >> 4;
        if (lit == 15 && lz4_read_ext(&ip, iend, &lit) < 0)
            return -1;
        in_left = (size_t)(iend - ip);
        out_left = (size_t)(oend - op);
        if (lit > in_left || lit > out_left)
            return -1;
        {
            /* 16 bytes at a time while both sides have 16 bytes of room,
             * then one by one. */
            uint8_t *d = op;
            const uint8_t *s = ip;
            uint8_t *const e = op + lit;
            size_t room = in_left < out_left ? in_left : out_left;
            if (room >= CK_LZ4_MARGIN) {
                uint8_t *stop = op + (room - CK_LZ4_MARGIN) + 1;
                if (stop > e)
                    stop = e;
                while (d < stop) {
                    lz4_copy16(d, s);
                    d += 16;
                    s += 16;
                }
            }
            while (d < e)
                *d++ = *s++;
        }
        ip += lit;
        op += lit;

        if (ip == iend)
            return (long)(op - dst);    /* the last sequence: literals only */

        /* Match. */
        if ((size_t)(iend - ip) < 2)
            return -1;
        size_t off = (size_t)ip[0] | ((size_t)ip[1] << 8);
        ip += 2;
        if (off == 0 || off > (size_t)(op - dst))
            return -1;

        size_t mlen = token & 15;
        if (mlen == 15 && lz4_read_ext(&ip, iend, &mlen) < 0)
            return -1;
        mlen += CK_LZ4_MINMATCH;
        out_left = (size_t)(oend - op);
        if (mlen > out_left)
            return -1;

        /* Whole words while they fit in dst (they may run past the end
         * of the match), then one by one. The source of each word lies
         * entirely before its destination, so earlier words are final. */
        uint8_t *const e = op + mlen;
        if (off >= 8 && out_left >= 16) {
            uint8_t *stop = oend - 16 + 1;
            if (stop > e)
                stop = e;
            if (off >= 16) {
                while (op < stop) {
                    lz4_copy16(op, op - off);
                    op += 16;
                }
            } else {
                while (op < stop) {
                    lz4_copy8(op, op - off);
                    op += 8;
                }
            }
        } else if (off < 8 && out_left >= 8) {
            /* Overlapping: the output repeats with period off < 8.
             * Build the next 8 output bytes in a register from the off
             * bytes before op, then store word after word; each next word
             * is the last one advanced by 8 bytes of the period, i.e.
             * shifted by d = 8 % off bytes with the wrapped-around bytes
             * ORed in (they agree where the two shifts overlap because the
             * data is periodic). */
            const uint8_t *m = op - off;
            uint8_t *stop = oend - 8 + 1;
            uint64_t w = 0;
            unsigned d = 8 % (unsigned)off;
            if (stop > e)
                stop = e;
            for (unsigned j = 0; j < 8; j++)
                w |= (uint64_t)m[j % off] << (8 * j);
            while (op < stop) {
                *(ck_lz4_u64 *)op = w;
                op += 8;
                w = (w >> (8 * d)) | (w << (8 * (off - d)));
            }
        }
        if (op >= e) {
            op = e;
        } else {
            while (op < e) {
                *op = *(op - off);
                op++;
            }
        }
    }
}

/* Plain forward copy for raw payloads (src and dst do not overlap). */
static void lz4_copy_raw(uint8_t *d, const uint8_t *s, size_t n)
{
    while (n >= 16) {
        lz4_copy16(d, s);
        d += 16;
        s += 16;
        n -= 16;
    }
    while (n > 0) {
        *d++ = *s++;
        n--;
    }
}

int ck_chunk_decode(uint32_t flags, const void *src, size_t len, void *dst, size_t raw_len)
{
    if (flags == CK_RF_RAW) {
        if (len != raw_len)
            return -CK_LZ4_EINVAL;
        if (len > 0)
            lz4_copy_raw((uint8_t *)dst, (const uint8_t *)src, len);
        return 0;
    }
    if (flags == CK_RF_LZ4) {
        long n = ck_lz4_decode((const uint8_t *)src, len, (uint8_t *)dst, raw_len);
        if (n < 0 || (size_t)n != raw_len)
            return -CK_LZ4_EINVAL;
        return 0;
    }
    return -CK_LZ4_EINVAL;
}
