/* fpu - SSE/AVX/AVX-512 registers, x87 state and MXCSR survive a checkpoint.
 *
 * Vector threads load all 16 xmm (SSE) or ymm (AVX) registers, or zmm16-31
 * (AVX-512), with known per-round values, spin ~50 ms inside one asm
 * statement (so the checkpoint nearly always lands while the values live
 * only in registers), store them back and compare. Another thread runs
 * with a non-default rounding mode (FE_UPWARD: x87 control word and MXCSR)
 * and checks it and a rounding-sensitive division each round. The main
 * thread sums a long double series on the x87 stack and compares each
 * round with the result computed before READY. Rounds go on until the go
 * file appears and at least one round has started after it; any difference
 * fails the test.
 */
#include <fenv.h>

#include "testlib.h"

static volatile int go;

/* Values for register r in round n of thread t. */
static void make_values(unsigned char *buf, size_t len, int t, unsigned long n)
{
    test_fill(buf, len, ((uint64_t)t << 40) ^ n);
}

/* pause instructions per asm statement: calibrated to about 50 ms */
static unsigned long spin_count = 1000000;

#define R16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) \
               X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define R16HI(X) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) \
                 X(24) X(25) X(26) X(27) X(28) X(29) X(30) X(31)

#define SSE_LD(n) "movdqu " #n "*16(%[s]), %%xmm" #n "\n\t"
#define SSE_ST(n) "movdqu %%xmm" #n ", " #n "*16(%[d])\n\t"
#define AVX_LD(n) "vmovdqu " #n "*32(%[s]), %%ymm" #n "\n\t"
#define AVX_ST(n) "vmovdqu %%ymm" #n ", " #n "*32(%[d])\n\t"
#define Z_LD(n) "vmovdqu64 (" #n "-16)*64(%[s]), %%zmm" #n "\n\t"
#define Z_ST(n) "vmovdqu64 %%zmm" #n ", (" #n "-16)*64(%[d])\n\t"
#define SPIN "1: pause\n\tdec %[c]\n\tjnz 1b\n\t"

static void hold_sse(const void *src, void *dst, unsigned long spins)
{
    __asm__ volatile(R16(SSE_LD) SPIN R16(SSE_ST)
                     : [c] "+r"(spins)
                     : [s] "r"(src), [d] "r"(dst)
                     : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
                       "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                       "xmm12", "xmm13", "xmm14", "xmm15");
}

__attribute__((target("avx")))
static void hold_avx(const void *src, void *dst, unsigned long spins)
{
    __asm__ volatile(R16(AVX_LD) SPIN R16(AVX_ST) "vzeroupper\n\t"
                     : [c] "+r"(spins)
                     : [s] "r"(src), [d] "r"(dst)
                     : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
                       "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                       "xmm12", "xmm13", "xmm14", "xmm15");
}

__attribute__((target("avx512f")))
static void hold_avx512(const void *src, void *dst, unsigned long spins)
{
    __asm__ volatile(R16HI(Z_LD) SPIN R16HI(Z_ST)
                     : [c] "+r"(spins)
                     : [s] "r"(src), [d] "r"(dst)
                     : "memory", "cc", "xmm16", "xmm17", "xmm18", "xmm19",
                       "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
                       "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");
}

enum { K_SSE, K_AVX, K_AVX512 };
static const char *kind_name[] = { "sse", "avx", "avx512" };

struct vec_thread {
    pthread_t th;
    int kind;
    unsigned long rounds, rounds_after_go;
};

static void *vec_main(void *arg)
{
    struct vec_thread *vt = arg;
    static const size_t len[] = { 16 * 16, 16 * 32, 16 * 64 };
    size_t n = len[vt->kind];
    unsigned char src[16 * 64] __attribute__((aligned(64)));
    unsigned char dst[16 * 64] __attribute__((aligned(64)));

    for (unsigned long round = 0;; round++) {
        int was_go = go;
        make_values(src, n, vt->kind, round);
        memset(dst, 0, n);
        if (vt->kind == K_SSE)
            hold_sse(src, dst, spin_count);
        else if (vt->kind == K_AVX)
            hold_avx(src, dst, spin_count);
        else
            hold_avx512(src, dst, spin_count);
        for (size_t i = 0; i < n; i++)
            check(src[i] == dst[i], "%s register %zu byte %zu corrupted in round %lu",
                  kind_name[vt->kind], i / (n / 16) + (vt->kind == K_AVX512 ? 16 : 0),
                  i % (n / 16), round);
        vt->rounds++;
        if (was_go) {
            vt->rounds_after_go++;
            return NULL;
        }
        usleep(1000);
    }
}

/* Non-default rounding mode kept in the x87 control word and MXCSR. */
static unsigned long round_rounds;
static void *rounding_main(void *arg)
{
    volatile double a = 1.0, b = 3.0;
    double ref;

    check(fesetround(FE_UPWARD) == 0, "fesetround(FE_UPWARD) failed");
    ref = a / b;
    check(fesetround(FE_TONEAREST) == 0 && a / b != ref && fesetround(FE_UPWARD) == 0,
          "rounding mode has no effect on 1/3");
    for (;;) {
        int was_go = go;
        check(fegetround() == FE_UPWARD, "rounding mode changed to %d", fegetround());
        for (int i = 0; i < 100000; i++)
            check(a / b == ref, "1/3 rounded differently in round %lu", round_rounds);
        round_rounds++;
        if (was_go)
            return NULL;
        usleep(1000);
    }
}

/* A long double series summed on the x87 stack. */
__attribute__((noinline)) static long double series(void)
{
    long double s = 0;
    for (long k = 1; k <= 300000; k++)
        s += 1.0L / ((long double)k * k);
    return s;
}

int main(void)
{
    struct vec_thread vt[3];
    int nvt = 0;
    pthread_t rt;

    __builtin_cpu_init();
    {
        unsigned char a[256], b[256];
        int64_t t0 = test_now_ns();
        memset(a, 1, sizeof(a));
        hold_sse(a, b, 200000);
        int64_t dt = test_now_ns() - t0;
        if (dt > 0)
            spin_count = (unsigned long)(200000.0 * 50e6 / dt);
        if (spin_count < 10000)
            spin_count = 10000;
    }
    vt[nvt++].kind = K_SSE;
    if (__builtin_cpu_supports("avx"))
        vt[nvt++].kind = K_AVX;
    if (__builtin_cpu_supports("avx512f"))
        vt[nvt++].kind = K_AVX512;
    for (int i = 0; i < nvt; i++) {
        vt[i].rounds = vt[i].rounds_after_go = 0;
        check(pthread_create(&vt[i].th, NULL, vec_main, &vt[i]) == 0, "pthread_create");
    }
    check(pthread_create(&rt, NULL, rounding_main, NULL) == 0, "pthread_create");

    long double ref = series();
    test_msg("vector threads: %d (%s%s%s)", nvt, kind_name[0],
             nvt > 1 ? ", avx" : "", nvt > 2 ? ", avx512" : "");
    test_ready();

    unsigned long rounds = 0;
    for (;;) {
        int was_go = test_go_reached();
        long double s = series();
        check(s == ref, "x87 series differs in round %lu", rounds);
        rounds++;
        if (was_go)
            break;
    }
    go = 1;
    for (int i = 0; i < nvt; i++) {
        check(pthread_join(vt[i].th, NULL) == 0, "pthread_join");
        check(vt[i].rounds >= 2 && vt[i].rounds_after_go == 1,
              "%s thread ran %lu rounds", kind_name[vt[i].kind], vt[i].rounds);
    }
    check(pthread_join(rt, NULL) == 0, "pthread_join");
    pass();
}
