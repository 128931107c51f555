/* rseq - restartable-sequence registration and sched_getcpu() survive.
 *
 * glibc (2.35+) registers a struct rseq for every thread at
 * __builtin_thread_pointer() + __rseq_offset, and sched_getcpu() reads its
 * cpu_id. Before READY, the main thread and a second thread (sleeping in a
 * loop across the checkpoint) each record sched_getcpu() and the rseq
 * area's cpu_id (both >= 0), and find the length glibc registered with: the
 * rseq syscall with the same area, length and signature answers EBUSY when
 * that exact registration is in place. After restore, in both threads:
 * sched_getcpu() >= 0; cpu_id and cpu_id_start >= 0; the same rseq call
 * still answers EBUSY (the kernel knows the area; 0 would mean it was not
 * registered and a restored cpu_id is only a stale copy); and pinned to
 * each CPU it may run on in turn (sched_setaffinity), the thread sees that
 * CPU in cpu_id and from sched_getcpu(), so the kernel really updates the
 * area. When glibc did not register rseq (__rseq_size == 0, e.g. the
 * glibc.pthread.rseq=0 tunable) only sched_getcpu() is checked.
 */
#include <sched.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

#include "testlib.h"

static volatile int go;
static unsigned int reg_len; /* length of glibc's registration, 0 = none */

static struct rseq *rseq_area(void)
{
    return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/* The rseq syscall with glibc's area: -errno, or 0 when it registered. */
static long rseq_probe(unsigned int len)
{
    long r = syscall(SYS_rseq, rseq_area(), len, 0, RSEQ_SIG);
    return r == -1 ? -errno : r;
}

/* Before the checkpoint: which length gives EBUSY (the registration). */
static void find_registration(const char *who)
{
    const unsigned int cand[] = { __rseq_size, 32, sizeof(struct rseq) };
    long r = 0;

    for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
        r = rseq_probe(cand[i]);
        if (r == -EBUSY) {
            if (!reg_len)
                reg_len = cand[i];
            check(reg_len == cand[i], "%s: registered with length %u, main thread %u", who,
                  cand[i], reg_len);
            return;
        }
        check(r != 0, "%s: rseq(len %u) registered a new area: glibc had not", who,
              cand[i]);
    }
    fail("%s: rseq area is not registered before the checkpoint (last probe: %s)", who,
         strerror((int)-r));
}

static void check_before(const char *who)
{
    int cpu = sched_getcpu();
    check(cpu >= 0, "%s: sched_getcpu() before checkpoint: %s", who, strerror(errno));
    if (__rseq_size == 0)
        return;
    int id = (int)rseq_area()->cpu_id;
    check(id >= 0, "%s: rseq cpu_id is %d before checkpoint", who, id);
    find_registration(who);
    test_msg("%s: cpu %d, rseq cpu_id %d, registered length %u", who, cpu, id, reg_len);
}

static void check_after(const char *who)
{
    int cpu = sched_getcpu();
    check(cpu >= 0, "%s: sched_getcpu() after restore: %s", who, strerror(errno));
    if (__rseq_size == 0)
        return;

    struct rseq *rs = rseq_area();
    int id = (int)rs->cpu_id, start = (int)rs->cpu_id_start;
    check(id >= 0, "%s: rseq cpu_id is %d after restore", who, id);
    check(start >= 0, "%s: rseq cpu_id_start is %d after restore", who, start);

    long r = rseq_probe(reg_len);
    check(r != 0, "%s: rseq area at %p was not registered after restore (rseq() "
          "registered it anew)", who, (void *)rs);
    check(r == -EBUSY, "%s: rseq(area %p, len %u) after restore: %s (expected EBUSY: "
          "registered elsewhere or with another length/signature)", who, (void *)rs,
          reg_len, strerror((int)-r));

    /* The kernel must keep the area current: pin to each CPU in turn. */
    cpu_set_t orig, one;
    check_sys(sched_getaffinity(0, sizeof(orig), &orig));
    int ncpu = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &orig))
            continue;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        if (sched_setaffinity(0, sizeof(one), &one) == -1)
            continue; /* offline or not allowed here */
        sched_yield();
        ncpu++;
        check((int)rs->cpu_id == c, "%s: pinned to CPU %d, rseq cpu_id says %d", who, c,
              (int)rs->cpu_id);
        check(sched_getcpu() == c, "%s: pinned to CPU %d, sched_getcpu() says %d", who, c,
              sched_getcpu());
    }
    check_sys(sched_setaffinity(0, sizeof(orig), &orig));
    check(ncpu > 0, "%s: could not pin to any CPU", who);
    test_msg("%s: after restore cpu %d, rseq cpu_id %d, followed %d CPUs", who, cpu, id,
             ncpu);
}

static void *thread_main(void *arg)
{
    check_before("thread");
    go = 1;
    while (go < 2)
        usleep(5000);
    check_after("thread");
    return (void *)7;
}

int main(void)
{
    pthread_t thr;
    void *ret;

    if (__rseq_size == 0)
        test_msg("glibc did not register rseq (__rseq_size 0): sched_getcpu() only");
    check_before("main");
    check(pthread_create(&thr, NULL, thread_main, NULL) == 0, "pthread_create");
    while (!go)
        usleep(1000);

    test_ready();
    test_wait_go();

    check_after("main");
    go = 2;
    check(pthread_join(thr, &ret) == 0 && ret == (void *)7, "join thread");
    pass();
}
