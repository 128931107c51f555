/* bench_threads - the thread-count workload of tests/bench.sh (not a
 * correctness test; test_progs.sh skips bench_* programs).
 *
 *   bench_threads N
 *
 * Starts N threads that each sleep in a loop (nanosleep 100 ms, a few
 * function calls deep, so a backtrace has frames to walk), prints "READY"
 * once every thread has run, and sleeps until killed. The bench times the
 * pause a checkpoint reports as the thread count grows.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile int started;

__attribute__((noinline)) static void nap(int depth)
{
    if (depth > 0) {
        nap(depth - 1);
        __asm__ volatile("" ::: "memory");
        return;
    }
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
}

static void *worker(void *arg)
{
    (void)arg;
    __atomic_fetch_add(&started, 1, __ATOMIC_SEQ_CST);
    for (;;)
        nap(4);
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100;
    if (n < 0 || n > 4000) {
        fprintf(stderr, "usage: bench_threads N (0..4000)\n");
        return 2;
    }
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, &a, worker, NULL) != 0) {
            fprintf(stderr, "bench_threads: pthread_create %d failed\n", i);
            return 1;
        }
    }
    while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < n)
        usleep(1000);
    printf("READY %d threads\n", n);
    fflush(stdout);
    for (;;)
        pause();
}
