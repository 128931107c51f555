/* xxh64.c - XXH64, written from the published algorithm description
 * (xxHash specification, "XXH64 algorithm description").
 *
 * Freestanding: no libc, no calls. Unaligned input is read through a
 * one-byte-aligned alias type, which gcc turns into plain loads on x86_64.
 */
#include "xxh64.h"

#define P64_1 0x9E3779B185EBCA87ULL
#define P64_2 0xC2B2AE3D27D4EB4FULL
#define P64_3 0x165667B19E3779F9ULL
#define P64_4 0x85EBCA77C2B2AE63ULL
#define P64_5 0x27D4EB2F165667C5ULL

typedef uint64_t __attribute__((aligned(1), may_alias)) ck_u64_unaligned;
typedef uint32_t __attribute__((aligned(1), may_alias)) ck_u32_unaligned;

/* Little-endian loads (x86_64 is little endian, so no byte swap). */
static inline uint64_t xxh_read64(const uint8_t *p)
{
    return *(const ck_u64_unaligned *)p;
}

static inline uint32_t xxh_read32(const uint8_t *p)
{
    return *(const ck_u32_unaligned *)p;
}

static inline uint64_t xxh_rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

/* One lane step: mix an 8-byte input word into an accumulator. */
static inline uint64_t xxh_round(uint64_t acc, uint64_t input)
{
    acc += input * P64_2;
    acc = xxh_rotl64(acc, 31);
    acc *= P64_1;
    return acc;
}

/* Fold one lane accumulator into the converged hash. */
static inline uint64_t xxh_merge_round(uint64_t acc, uint64_t val)
{
    val = xxh_round(0, val);
    acc ^= val;
    acc = acc * P64_1 + P64_4;
    return acc;
}

uint64_t ck_xxh64(const void *input, size_t len, uint64_t seed)
{
    const uint8_t *p = (const uint8_t *)input;
    size_t rem = len;                   /* no end pointer: p may be NULL when len is 0 */
    uint64_t h;

    if (rem >= 32) {
        uint64_t v1 = seed + P64_1 + P64_2;
        uint64_t v2 = seed + P64_2;
        uint64_t v3 = seed;
        uint64_t v4 = seed - P64_1;

        do {
            v1 = xxh_round(v1, xxh_read64(p));
            v2 = xxh_round(v2, xxh_read64(p + 8));
            v3 = xxh_round(v3, xxh_read64(p + 16));
            v4 = xxh_round(v4, xxh_read64(p + 24));
            p += 32;
            rem -= 32;
        } while (rem >= 32);

        h = xxh_rotl64(v1, 1) + xxh_rotl64(v2, 7) + xxh_rotl64(v3, 12) + xxh_rotl64(v4, 18);
        h = xxh_merge_round(h, v1);
        h = xxh_merge_round(h, v2);
        h = xxh_merge_round(h, v3);
        h = xxh_merge_round(h, v4);
    } else {
        h = seed + P64_5;
    }

    h += (uint64_t)len;

    while (rem >= 8) {
        h ^= xxh_round(0, xxh_read64(p));
        h = xxh_rotl64(h, 27) * P64_1 + P64_4;
        p += 8;
        rem -= 8;
    }
    if (rem >= 4) {
        h ^= (uint64_t)xxh_read32(p) * P64_1;
        h = xxh_rotl64(h, 23) * P64_2 + P64_3;
        p += 4;
        rem -= 4;
    }
    while (rem > 0) {
        h ^= (uint64_t)(*p) * P64_5;
        h = xxh_rotl64(h, 11) * P64_1;
        p++;
        rem--;
    }

    /* Avalanche. */
    h ^= h >> 33;
    h *= P64_2;
    h ^= h >> 29;
    h *= P64_3;
    h ^= h >> 32;
    return h;
}
