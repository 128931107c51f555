/* test_xxh64.c - ck_xxh64 against libxxhash's XXH64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>

#include "xxh64.h"

static uint8_t buf[4096 + 64];

static void fill_random(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* Known answers from the xxHash reference (empty input). */
static void test_known_values(void **state)
{
    (void)state;
    assert_int_equal(ck_xxh64("", 0, 0), 0xEF46DB3751D8E999ULL);
    assert_int_equal(ck_xxh64(NULL, 0, 0), 0xEF46DB3751D8E999ULL);
    assert_int_equal(ck_xxh64("a", 1, 0), XXH64("a", 1, 0));
    assert_int_equal(ck_xxh64("abc", 3, 0), 0x44BC2CF5AD770999ULL);
}

static void test_lengths_and_seeds(void **state)
{
    static const uint64_t seeds[] = {0, 1, 0x9E3779B185EBCA87ULL, 0xFFFFFFFFFFFFFFFFULL,
                                     0x123456789ULL, 42};
    (void)state;
    fill_random(buf, sizeof(buf), 7);
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++)
        for (size_t len = 0; len <= 300; len++)
            assert_int_equal(ck_xxh64(buf, len, seeds[s]), XXH64(buf, len, seeds[s]));
}

static void test_unaligned(void **state)
{
    (void)state;
    fill_random(buf, sizeof(buf), 99);
    for (size_t align = 0; align < 16; align++)
        for (size_t len = 0; len <= 300; len += 1)
            assert_int_equal(ck_xxh64(buf + align, len, align), XXH64(buf + align, len, align));
}

static void test_large_and_patterns(void **state)
{
    (void)state;
    memset(buf, 0, sizeof(buf));
    assert_int_equal(ck_xxh64(buf, 4096, 0), XXH64(buf, 4096, 0));
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(ck_xxh64(buf, 4096, 5), XXH64(buf, 4096, 5));
    for (uint32_t i = 0; i < 200; i++) {
        size_t len = (size_t)(rand() % 4096);
        size_t off = (size_t)(rand() % 64);
        uint64_t seed = ((uint64_t)rand() << 32) | (uint64_t)rand();
        fill_random(buf, sizeof(buf), i + 1000);
        assert_int_equal(ck_xxh64(buf + off, len, seed), XXH64(buf + off, len, seed));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_lengths_and_seeds),
        cmocka_unit_test(test_unaligned),
        cmocka_unit_test(test_large_and_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
