/* lz4_ref.h - a plain reference LZ4 block decoder for the tests and the
 * fuzzer to compare ck_lz4_decode against. Deliberately simple: one byte
 * at a time, every check spelled out. */
#ifndef CKSHIM_TESTS_LZ4_REF_H
#define CKSHIM_TESTS_LZ4_REF_H

#include <stddef.h>
#include <stdint.h>

/* A simple byte-at-a-time reference decoder with the same rules as
 * ck_lz4_decode. *why is set to 1 if it failed on a zero offset. */
static inline long ref_decode(const uint8_t *src, size_t srclen, uint8_t *dst, size_t cap, int *why)
{
    size_t ip = 0, op = 0;
    *why = 0;
    if (srclen == 0)
        return -1;
    for (;;) {
        if (ip >= srclen)
            return -1;
        unsigned t = src[ip++];
        size_t lit = t >> 4;
        if (lit == 15) {
            unsigned b;
            do {
                if (ip >= srclen)
                    return -1;
                b = src[ip++];
                lit += b;
            } while (b == 255);
        }
        if (lit > srclen - ip || lit > cap - op)
            return -1;
        for (size_t i = 0; i < lit; i++)
            dst[op++] = src[ip++];
        if (ip == srclen)
            return (long)op;
        if (srclen - ip < 2)
            return -1;
        size_t off = src[ip] | (src[ip + 1] << 8);
        ip += 2;
        if (off == 0) {
            *why = 1;
            return -1;
        }
        if (off > op)
            return -1;
        size_t ml = t & 15;
        if (ml == 15) {
            unsigned b;
            do {
                if (ip >= srclen)
                    return -1;
                b = src[ip++];
                ml += b;
            } while (b == 255);
        }
        ml += 4;
        if (ml > cap - op)
            return -1;
        for (size_t i = 0; i < ml; i++, op++)
            dst[op] = dst[op - off];
    }
}

#endif
