/* many_threads - 64 running threads all come back.
 *
 * 64 threads each increment their own counter (one cache line each, and a
 * __thread copy kept in lockstep), sleeping 1 ms between increments. After
 * restore: every counter still increases (all 64 threads run); after the
 * stop flag every thread returns, pthread_join collects each one's value
 * (its final count, which matches the shared counter), each checks its TLS
 * and its pthread_self(), and the thread ids they saw are distinct and
 * unchanged.
 */
#include "testlib.h"

#define NTHREADS 64

struct slot {
    volatile unsigned long count;
    volatile pid_t tid;
    char pad[64 - sizeof(unsigned long) - sizeof(pid_t)];
} __attribute__((aligned(64)));

static struct slot slots[NTHREADS];
static pthread_t thr[NTHREADS];
static volatile int stop;
static __thread unsigned long tls_count;
static __thread int tls_idx = -1;

static void *worker(void *arg)
{
    int idx = (int)(intptr_t)arg;
    tls_idx = idx;
    slots[idx].tid = gettid();
    while (!stop) {
        tls_count++;
        slots[idx].count = tls_count;
        usleep(1000);
    }
    check(tls_idx == idx, "thread %d: TLS index is %d", idx, tls_idx);
    check(slots[idx].tid == gettid(), "thread %d: gettid() is %d, was %d", idx, gettid(),
          slots[idx].tid);
    check(pthread_equal(pthread_self(), thr[idx]), "thread %d: pthread_self changed", idx);
    return (void *)(uintptr_t)tls_count;
}

int main(void)
{
    unsigned long snap[NTHREADS];

    for (int i = 0; i < NTHREADS; i++)
        check(pthread_create(&thr[i], NULL, worker, (void *)(intptr_t)i) == 0,
              "pthread_create %d", i);
    for (int i = 0; i < NTHREADS; i++)
        while (slots[i].count == 0)
            usleep(1000);
    for (int i = 0; i < NTHREADS; i++)
        for (int j = 0; j < i; j++)
            check(slots[i].tid != slots[j].tid, "threads %d and %d share tid %d", i, j,
                  slots[i].tid);

    test_ready();
    test_wait_go();

    for (int i = 0; i < NTHREADS; i++)
        snap[i] = slots[i].count;
    /* every thread must move on within 2 s */
    for (int round = 0; round < 200; round++) {
        int still = 0;
        usleep(10000);
        for (int i = 0; i < NTHREADS; i++)
            still += slots[i].count <= snap[i];
        if (!still)
            break;
    }
    for (int i = 0; i < NTHREADS; i++)
        check(slots[i].count > snap[i], "thread %d (tid %d) is not running after restore "
              "(count stays %lu)", i, slots[i].tid, slots[i].count);

    stop = 1;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        int r = pthread_join(thr[i], &ret);
        check(r == 0, "pthread_join thread %d: %s", i, strerror(r));
        check((uintptr_t)ret == slots[i].count && slots[i].count > snap[i],
              "thread %d returned %lu, its counter is %lu", i, (unsigned long)(uintptr_t)ret,
              slots[i].count);
    }
    pass();
}
