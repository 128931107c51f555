/* robust_mutex - robust mutexes and thread exit work after restore.
 *
 * Before READY: thread T1 locks robust mutex M1 and parks in
 * pthread_cond_wait (on another mutex) across the checkpoint; thread T2
 * (robust list registered by glibc, nothing locked) sleeps in a loop;
 * thread T4 is an ordinary thread sleeping in a loop.
 * After restore, each case on its own (all are tried, all failures named):
 *  a. T1 is woken and exits still holding M1: pthread_join returns its
 *     value and the main thread's lock of M1 returns EOWNERDEAD (the kernel
 *     walked T1's robust list at exit and matched the owner tid);
 *     pthread_mutex_consistent() then makes M1 usable again;
 *  b. T2 locks robust M2 only now and exits: lock gives EOWNERDEAD (a
 *     restored thread's robust list and tid are right for new locks);
 *  c. a thread created after restore locks robust M3 and exits: EOWNERDEAD;
 *  d. T4 exits normally: pthread_join returns its value.
 * Locks are timed (3 s): a missed owner death reports, never hangs.
 */
#include <sys/syscall.h>

#include "testlib.h"

static pthread_mutex_t m1, m2, m3;
static pthread_mutex_t wm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int t1_locked, t1_exit;
static volatile int t2_go, t4_go, t4_up;
static volatile pid_t t1_tid, t1_real_tid;

static void init_robust(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    check(pthread_mutexattr_init(&a) == 0, "mutexattr_init");
    check(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) == 0, "setrobust");
    check(pthread_mutex_init(m, &a) == 0, "mutex_init");
    pthread_mutexattr_destroy(&a);
}

static void *t1_main(void *arg)
{
    check(pthread_mutex_lock(&m1) == 0, "T1: lock M1");
    t1_tid = gettid();
    t1_real_tid = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(&wm);
    t1_locked = 1;
    pthread_cond_broadcast(&cv);
    while (!t1_exit)
        pthread_cond_wait(&cv, &wm);
    pthread_mutex_unlock(&wm);
    return (void *)11; /* still holding M1 */
}

static void *t2_main(void *arg)
{
    while (!t2_go)
        usleep(2000);
    int r = pthread_mutex_lock(&m2);
    if (r != 0)
        return (void *)(intptr_t)(1000 + r);
    return (void *)22; /* holding M2 */
}

static void *t3_main(void *arg)
{
    int r = pthread_mutex_lock(&m3);
    return r == 0 ? (void *)33 : (void *)(intptr_t)(1000 + r);
}

static void *t4_main(void *arg)
{
    t4_up = 1;
    while (!t4_go)
        usleep(3000);
    return (void *)44;
}

/* Join t expecting want; then lock m expecting EOWNERDEAD, make it
 * consistent and check it works as a normal mutex again. */
static void dead_owner_case(const char *name, pthread_t t, void *want, pthread_mutex_t *m)
{
    void *ret = NULL;
    int r = pthread_join(t, &ret);
    if (r != 0) {
        note_fail("%s: pthread_join: %s", name, strerror(r));
        return;
    }
    if (ret != want) {
        note_fail("%s: thread returned %p, expected %p", name, ret, want);
        return;
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 3;
    r = pthread_mutex_timedlock(m, &dl);
    if (r != EOWNERDEAD) {
        note_fail("%s: lock after the owner exited gave %s, expected EOWNERDEAD (futex "
                  "word %#x)", name, r ? strerror(r) : "0 (success)",
                  (unsigned)m->__data.__lock);
        if (r == 0)
            pthread_mutex_unlock(m);
        return;
    }
    r = pthread_mutex_consistent(m);
    if (r != 0) {
        note_fail("%s: pthread_mutex_consistent: %s", name, strerror(r));
        return;
    }
    if ((r = pthread_mutex_unlock(m)) != 0 || (r = pthread_mutex_lock(m)) != 0 ||
        (r = pthread_mutex_unlock(m)) != 0)
        note_fail("%s: lock/unlock after consistent: %s", name, strerror(r));
}

int main(void)
{
    pthread_t t1, t2, t3, t4;

    init_robust(&m1);
    init_robust(&m2);
    init_robust(&m3);
    check(pthread_create(&t1, NULL, t1_main, NULL) == 0, "create T1");
    check(pthread_create(&t2, NULL, t2_main, NULL) == 0, "create T2");
    check(pthread_create(&t4, NULL, t4_main, NULL) == 0, "create T4");
    pthread_mutex_lock(&wm);
    while (!t1_locked)
        pthread_cond_wait(&cv, &wm);
    pthread_mutex_unlock(&wm);
    while (!t4_up)
        usleep(1000);
    check(pthread_mutex_trylock(&m1) == EBUSY, "M1 is not locked by T1");
    test_msg("T1 tid %d (real %d) holds M1, futex word %#x", t1_tid, t1_real_tid,
             (unsigned)m1.__data.__lock);

    test_ready();
    test_wait_go();

    test_msg("after restore: M1 futex word %#x, T1 real tid before checkpoint %d",
             (unsigned)m1.__data.__lock, t1_real_tid);
    /* a: T1 exits holding M1, locked before the checkpoint */
    pthread_mutex_lock(&wm);
    t1_exit = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&wm);
    dead_owner_case("a (M1 locked before checkpoint, owner exits after)", t1, (void *)11,
                    &m1);

    /* b: a restored thread locks M2 now and exits */
    t2_go = 1;
    dead_owner_case("b (restored thread locks M2 after restore and exits)", t2, (void *)22,
                    &m2);

    /* c: a new thread locks M3 and exits */
    if (pthread_create(&t3, NULL, t3_main, NULL) != 0)
        note_fail("c: pthread_create after restore failed");
    else
        dead_owner_case("c (new thread locks M3 and exits)", t3, (void *)33, &m3);

    /* d: an ordinary restored thread exits and is joined */
    void *ret = NULL;
    t4_go = 1;
    int r = pthread_join(t4, &ret);
    if (r != 0 || ret != (void *)44)
        note_fail("d: pthread_join of a restored thread: %s, value %p (expected 0x2c)",
                  r ? strerror(r) : "ok", ret);

    if (test_failures()[0])
        fail("%s", test_failures());
    pass();
}
