/* rseq_own - an rseq area the program registered itself survives.
 *
 * The main thread and a second thread each drop glibc's rseq
 * registration (when there is one) and register an area of their own
 * (a __thread struct rseq) through syscall(SYS_rseq). After restore, in
 * both threads: the same call answers EBUSY (the kernel knows exactly
 * that area: EINVAL would mean another area, 0 none), and the kernel keeps
 * the area's cpu_id current: pinned to a CPU it may run on, the thread
 * reads that CPU there.
 */
#include <sched.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

#include "testlib.h"

static __thread struct rseq own __attribute__((aligned(32)));
static volatile int go;

static long sys_rseq(void *area, unsigned len, int flags)
{
    long r = syscall(SYS_rseq, area, len, flags, RSEQ_SIG);
    return r == -1 ? -errno : r;
}

static void register_own(const char *who)
{
    if (__rseq_size) {
        /* glibc's registration length is not __rseq_size in every
         * version, and a thread created once the main thread dropped its
         * registration may have none: registering our own area below
         * fails if one is left */
        void *g = (char *)__builtin_thread_pointer() + __rseq_offset;
        const unsigned lens[] = { __rseq_size, 32, sizeof(struct rseq), 64, 128 };
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
            if (sys_rseq(g, lens[i], RSEQ_FLAG_UNREGISTER) == 0)
                break;
    }
    own.cpu_id = RSEQ_CPU_ID_UNINITIALIZED;
    long r = sys_rseq(&own, sizeof own, 0);
    check(r == 0, "%s: register own rseq: %s", who, strerror((int)-r));
    check((int)own.cpu_id >= 0, "%s: cpu_id %d after registering", who, (int)own.cpu_id);
}

static void check_own(const char *who)
{
    long r = sys_rseq(&own, sizeof own, 0);
    cpu_set_t all, one;

    check(r == -EBUSY, "%s: rseq with the program's area answers %ld (%s), not EBUSY", who, r,
          strerror((int)-r));
    check(sched_getaffinity(0, sizeof all, &all) == 0, "sched_getaffinity");
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &all))
            continue;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        check(sched_setaffinity(0, sizeof one, &one) == 0, "sched_setaffinity %d", cpu);
        sched_yield();
        check((int)own.cpu_id == cpu, "%s: pinned to CPU %d, the area says %d", who, cpu,
              (int)own.cpu_id);
    }
    check(sched_setaffinity(0, sizeof all, &all) == 0, "sched_setaffinity");
}

static void *other(void *arg)
{
    register_own("thread");
    *(volatile int *)arg = 1;
    while (!go)
        test_sleep_ms(20);
    check_own("thread");
    return NULL;
}

int main(void)
{
    pthread_t t;
    volatile int ready = 0;

    register_own("main");
    check(pthread_create(&t, NULL, other, (void *)&ready) == 0, "pthread_create");
    while (!ready)
        test_sleep_ms(5);
    test_ready();
    test_wait_go();
    go = 1;
    check_own("main");
    check(pthread_join(t, NULL) == 0, "join");
    pass();
}
