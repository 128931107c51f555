/* test_lz4.c - ck_lz4_decode against liblz4, robustness against corrupted
 * blocks, and ck_chunk_encode/ck_chunk_decode round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lz4.h>
#include <lz4hc.h>

#include "chunk.h"
#include "image.h"
#include "lz4dec.h"
#include "lz4_ref.h"

#define GUARD 64
#define GUARD_BYTE 0xA5

static uint64_t rng_state = 0x243F6A8885A308D3ULL;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng();
}

static void fill_text(uint8_t *p, size_t n)
{
    static const char *words[] = {"checkpoint ", "restore ", "the ", "process ", "memory ",
                                  "page ", "of ", "a ", "thread ", "signal ", "\n", "shim "};
    size_t i = 0;
    while (i < n) {
        const char *w = words[rng() % (sizeof(words) / sizeof(words[0]))];
        for (; *w && i < n; w++)
            p[i++] = (uint8_t)*w;
    }
}

/* Mostly compressible: runs of short-period patterns and random bytes. */
static void fill_mixed(uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t run = 1 + rng() % 300;
        if (run > n - i)
            run = n - i;
        switch (rng() % 4) {
        case 0:
            fill_random(p + i, run);
            break;
        case 1: {
            size_t period = 1 + rng() % 20;
            for (size_t k = 0; k < run; k++)
                p[i + k] = (uint8_t)('a' + (k % period));
            break;
        }
        case 2:
            memset(p + i, (int)(rng() & 0xff), run);
            break;
        default:
            if (i >= run) {
                size_t from = rng() % (i - run + 1);
                memmove(p + i, p + from, run);
            } else {
                memset(p + i, 0, run);
            }
        }
        i += run;
    }
}

/* dst with guard bytes on both sides; returns the usable start. */
static uint8_t *guarded(size_t cap)
{
    uint8_t *b = malloc(cap + 2 * GUARD);
    assert_non_null(b);
    memset(b, GUARD_BYTE, cap + 2 * GUARD);
    return b + GUARD;
}

static void check_guards(uint8_t *d, size_t cap)
{
    for (size_t i = 0; i < GUARD; i++) {
        assert_int_equal(d[-1 - (long)i], GUARD_BYTE);
        assert_int_equal(d[cap + i], GUARD_BYTE);
    }
}

static void unguard(uint8_t *d)
{
    free(d - GUARD);
}

/* Compress with liblz4 (fast and HC) and decode with ours: exact size,
 * bigger buffer, one byte short. */
static void roundtrip(const uint8_t *src, size_t n)
{
    int bound = LZ4_compressBound((int)n);
    char *comp = malloc((size_t)bound + 1);
    assert_non_null(comp);

    for (int mode = 0; mode < 3; mode++) {
        int clen;
        if (mode == 0)
            clen = LZ4_compress_default((const char *)src, comp, (int)n, bound);
        else if (mode == 1)
            clen = LZ4_compress_fast((const char *)src, comp, (int)n, bound, 8);
        else
            clen = LZ4_compress_HC((const char *)src, comp, (int)n, bound, LZ4HC_CLEVEL_MAX);
        assert_true(clen > 0);

        uint8_t *d = guarded(n);
        long r = ck_lz4_decode((const uint8_t *)comp, (size_t)clen, d, n);
        assert_int_equal(r, (long)n);
        assert_memory_equal(d, src, n);
        check_guards(d, n);
        unguard(d);

        d = guarded(n + 100);
        r = ck_lz4_decode((const uint8_t *)comp, (size_t)clen, d, n + 100);
        assert_int_equal(r, (long)n);
        assert_memory_equal(d, src, n);
        check_guards(d, n + 100);
        unguard(d);

        if (n > 0) {
            d = guarded(n - 1);
            r = ck_lz4_decode((const uint8_t *)comp, (size_t)clen, d, n - 1);
            assert_int_equal(r, -1);
            check_guards(d, n - 1);
            unguard(d);
        }
    }
    free(comp);
}

static void test_tiny(void **state)
{
    uint8_t b[128];
    (void)state;
    for (size_t n = 0; n <= 100; n++) {
        memset(b, 0, n);
        roundtrip(b, n);
        fill_random(b, n);
        roundtrip(b, n);
        fill_text(b, n);
        roundtrip(b, n);
        fill_mixed(b, n);
        roundtrip(b, n);
    }
}

static void test_zeros(void **state)
{
    static const size_t sizes[] = {4096, 4097, 65535, 65536, 70000, 1 << 20};
    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *b = calloc(1, sizes[i]);
        roundtrip(b, sizes[i]);
        free(b);
    }
}

static void test_random_text_mixed(void **state)
{
    static const size_t sizes[] = {200, 1000, 4096, 12345, 65536, 100000, 1 << 20};
    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        uint8_t *b = malloc(n);
        fill_random(b, n);
        roundtrip(b, n);
        fill_text(b, n);
        roundtrip(b, n);
        fill_mixed(b, n);
        roundtrip(b, n);
        free(b);
    }
}

/* Every short period (offsets 1..32, the overlapping-copy paths). */
static void test_periods(void **state)
{
    (void)state;
    for (size_t period = 1; period <= 32; period++) {
        for (size_t n = 16; n <= 3000; n = n * 3 + 7) {
            uint8_t *b = malloc(n);
            for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t)(i % period * 37 + 1);
            roundtrip(b, n);
            free(b);
        }
    }
}

/* Hand-made blocks. */
static void test_handmade(void **state)
{
    uint8_t out[64];
    (void)state;
    /* token 0: no literals, end */
    assert_int_equal(ck_lz4_decode((const uint8_t *)"\x00", 1, out, sizeof(out)), 0);
    assert_int_equal(ck_lz4_decode((const uint8_t *)"\x00", 1, NULL, 0), 0);
    assert_int_equal(ck_lz4_decode((const uint8_t *)"", 0, out, sizeof(out)), -1);
    assert_int_equal(ck_lz4_decode(NULL, 0, out, sizeof(out)), -1);
    /* "a" then match offset 1 length 4+0, then empty last literals: "aaaaa" */
    {
        const uint8_t blk[] = {0x10, 'a', 0x01, 0x00, 0x00};
        assert_int_equal(ck_lz4_decode(blk, sizeof(blk), out, sizeof(out)), 5);
        assert_memory_equal(out, "aaaaa", 5);
        assert_int_equal(ck_lz4_decode(blk, sizeof(blk), out, 4), -1);
        /* ends right after the match: no final token */
        assert_int_equal(ck_lz4_decode(blk, 4, out, sizeof(out)), -1);
        /* offset reaching before the start */
        const uint8_t bad[] = {0x10, 'a', 0x02, 0x00, 0x00};
        assert_int_equal(ck_lz4_decode(bad, sizeof(bad), out, sizeof(out)), -1);
        const uint8_t zero_off[] = {0x10, 'a', 0x00, 0x00, 0x00};
        assert_int_equal(ck_lz4_decode(zero_off, sizeof(zero_off), out, sizeof(out)), -1);
    }
    /* literal length 15 + extension that runs off the end */
    {
        const uint8_t blk[] = {0xF0, 0xFF, 0xFF};
        assert_int_equal(ck_lz4_decode(blk, sizeof(blk), out, sizeof(out)), -1);
    }
    /* literal length longer than the input */
    {
        const uint8_t blk[] = {0x50, 'a', 'b'};
        assert_int_equal(ck_lz4_decode(blk, sizeof(blk), out, sizeof(out)), -1);
    }
}

/* Decode a mutated block into a guarded buffer; it must agree with the
 * reference decoder, and with liblz4 whenever liblz4 accepts the block
 * (except for zero offsets, which the LZ4 spec calls invalid but liblz4
 * does not always reject). */
static void decode_mutant(const uint8_t *m, size_t mlen, size_t cap)
{
    uint8_t *d = guarded(cap);
    uint8_t *ref = malloc(cap + 1);
    int why;
    long r = ck_lz4_decode(m, mlen, d, cap);
    assert_true(r >= -1 && r <= (long)cap);
    check_guards(d, cap);
    long r2 = ref_decode(m, mlen, ref, cap, &why);
    assert_int_equal(r, r2);
    if (r >= 0)
        assert_memory_equal(d, ref, (size_t)r);
    int rr = LZ4_decompress_safe((const char *)m, (char *)ref, (int)mlen, (int)cap);
    if (rr >= 0 && !why) {
        /* liblz4 accepts it: ours must too, with the same bytes. */
        assert_int_equal(r, rr);
        assert_memory_equal(d, ref, (size_t)rr);
    }
    free(ref);
    unguard(d);
}

static void test_mutations(void **state)
{
    (void)state;
    for (int iter = 0; iter < 4000; iter++) {
        size_t n = 1 + rng() % 5000;
        uint8_t *src = malloc(n);
        switch (iter % 3) {
        case 0:
            fill_mixed(src, n);
            break;
        case 1:
            fill_text(src, n);
            break;
        default:
            memset(src, 0, n);
            fill_random(src, n / 10);
        }
        int bound = LZ4_compressBound((int)n);
        uint8_t *comp = malloc((size_t)bound);
        int clen = LZ4_compress_default((const char *)src, (char *)comp, (int)n, bound);
        assert_true(clen > 0);

        /* truncated */
        size_t cut = rng() % (size_t)clen;
        uint8_t *m = malloc((size_t)clen + 16);
        memcpy(m, comp, cut);
        decode_mutant(m, cut, n);

        /* bit flips / byte changes */
        memcpy(m, comp, (size_t)clen);
        int nflips = 1 + (int)(rng() % 4);
        for (int k = 0; k < nflips; k++) {
            size_t pos = rng() % (size_t)clen;
            if (rng() & 1)
                m[pos] ^= (uint8_t)(1u << (rng() % 8));
            else
                m[pos] = (uint8_t)rng();
        }
        decode_mutant(m, (size_t)clen, n);
        decode_mutant(m, (size_t)clen, n + (rng() % 64));
        decode_mutant(m, (size_t)clen, rng() % (n + 1));

        free(m);
        free(comp);
        free(src);
    }
    /* pure garbage */
    for (int iter = 0; iter < 2000; iter++) {
        uint8_t g[256];
        size_t len = rng() % sizeof(g);
        fill_random(g, len);
        decode_mutant(g, len, rng() % 2000);
    }
}

static void *new_state(void)
{
    void *st = aligned_alloc(64, (ck_chunk_state_size() + 63) & ~(size_t)63);
    assert_non_null(st);
    return st;
}

static void chunk_roundtrip(void *st, const uint8_t *src, size_t n, uint32_t want_flags)
{
    size_t cap = ck_chunk_bound(n);
    uint8_t *enc = malloc(cap ? cap : 1);
    uint8_t *dec = malloc(n ? n : 1);
    uint32_t flags = 0;
    size_t len = 0;

    assert_true(cap >= n);
    assert_int_equal(ck_chunk_encode(st, src, n, enc, cap, &flags, &len), 0);
    if (want_flags)
        assert_int_equal(flags, want_flags);
    assert_true(flags == CK_RF_LZ4 || flags == CK_RF_RAW);
    if (flags == CK_RF_RAW) {
        assert_int_equal(len, n);
    } else {
        assert_true(len < n);
    }
    assert_int_equal(ck_chunk_decode(flags, enc, len, dec, n), 0);
    assert_memory_equal(dec, src, n);
    /* wrong raw_len */
    if (n > 0)
        assert_int_equal(ck_chunk_decode(flags, enc, len, dec, n - 1), -22);
    /* wrong flags */
    assert_int_equal(ck_chunk_decode(0, enc, len, dec, n), -22);
    assert_int_equal(ck_chunk_decode(CK_RF_LZ4 | CK_RF_RAW, enc, len, dec, n), -22);
    free(enc);
    free(dec);
}

static void test_chunk(void **state)
{
    (void)state;
    void *st = new_state();
    size_t n = CK_CHUNK_PAGES * CK_PAGE_SIZE;
    uint8_t *b = calloc(1, n);

    chunk_roundtrip(st, b, n, CK_RF_LZ4);           /* zeros */
    chunk_roundtrip(st, b, 4096, CK_RF_LZ4);
    fill_random(b, n);
    chunk_roundtrip(st, b, n, CK_RF_RAW);           /* incompressible */
    chunk_roundtrip(st, b, 4096, CK_RF_RAW);
    fill_text(b, n);
    chunk_roundtrip(st, b, n, CK_RF_LZ4);
    fill_mixed(b, n);
    chunk_roundtrip(st, b, n, 0);
    for (size_t k = 0; k <= 40; k++) {
        fill_random(b, k);
        chunk_roundtrip(st, b, k, CK_RF_RAW);
        memset(b, 'x', k);
        chunk_roundtrip(st, b, k, 0);
    }
    /* a few bytes (a socket's queue) are stored raw without trying */
    memset(b, 'x', 64);
    chunk_roundtrip(st, b, 63, CK_RF_RAW);
    chunk_roundtrip(st, b, 64, CK_RF_LZ4);

    /* argument checks */
    uint32_t flags;
    size_t len;
    uint8_t out[100];
    assert_int_equal(ck_chunk_encode(st, b, 100, out, 99, &flags, &len), -22);
    assert_int_equal(ck_chunk_encode((char *)st + 1, b, 100, out, 100, &flags, &len), -22);
    assert_int_equal(ck_chunk_encode(NULL, b, 100, out, 100, &flags, &len), -22);
    /* cap exactly n is enough (raw fallback) */
    fill_random(b, 100);
    assert_int_equal(ck_chunk_encode(st, b, 100, out, 100, &flags, &len), 0);
    assert_int_equal(flags, CK_RF_RAW);
    assert_int_equal(len, 100);
    /* RAW with a wrong length */
    assert_int_equal(ck_chunk_decode(CK_RF_RAW, b, 99, out, 100), -22);

    free(b);
    free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_zeros),
        cmocka_unit_test(test_random_text_mixed),
        cmocka_unit_test(test_periods),
        cmocka_unit_test(test_handmade),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
