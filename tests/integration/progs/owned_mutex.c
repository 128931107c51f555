/* owned_mutex - recursive and error-checking mutexes held across restore.
 *
 * glibc names the owner of such a mutex by the owning thread's tid, which
 * a restore changes (without --pidns). Before READY: the main thread
 * locks recursive mutex R twice and error-checking mutex E; thread T
 * locks recursive mutex TR; the main thread also write-locks rwlock W;
 * all are held across the checkpoint. After restore (and after a second
 * checkpoint and restore, as test_progs does): the main thread locks R
 * once more (a relock by its owner: no wait), unlocks it three times,
 * unlocks E (no EPERM), and both can then be locked by another thread;
 * W write-locked again by its writer says EDEADLK, unlocks as a writer's
 * and another thread can then write-lock it;
 * T, which held TR across the checkpoint (waiting in a sleep loop), waits
 * on a condition with it (glibc's cond_wait unlocks it: no EPERM, and
 * ETIMEDOUT after 100 ms), unlocks it, and TR is free. Every lock is timed (3 s): a wrong owner reports, never
 * hangs.
 */
#include "testlib.h"

static pthread_mutex_t r, e, tr;
static pthread_rwlock_t w = PTHREAD_RWLOCK_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static volatile int t_up, t_wake, t_done;
static void init_kind(pthread_mutex_t *m, int kind)
{
    pthread_mutexattr_t a;
    check(pthread_mutexattr_init(&a) == 0, "mutexattr_init");
    check(pthread_mutexattr_settype(&a, kind) == 0, "settype");
    check(pthread_mutex_init(m, &a) == 0, "mutex_init");
    pthread_mutexattr_destroy(&a);
}

static int timed_lock(pthread_mutex_t *m)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 3;
    return pthread_mutex_timedlock(m, &t);
}

static void *t_main(void *arg)
{
    (void)arg;
    check(pthread_mutex_lock(&tr) == 0, "T: lock TR");
    t_up = 1;
    while (!t_wake)
        usleep(1000);
    /* a timed wait on the condition gives TR up and takes it back */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    int rc = pthread_cond_timedwait(&cv, &tr, &ts);
    if (rc != ETIMEDOUT)
        note_fail("T: cond_timedwait with TR gave %s, not ETIMEDOUT", strerror(rc));
    if ((rc = pthread_mutex_unlock(&tr)) != 0)
        note_fail("T: unlock TR after restore: %s", strerror(rc));
    t_done = 1;
    return NULL;
}

/* Another thread can take W for writing now. */
static void *w_taker(void *arg)
{
    (void)arg;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 3;
    int rc = pthread_rwlock_timedwrlock(&w, &t);
    if (rc == 0)
        pthread_rwlock_unlock(&w);
    return (void *)(intptr_t)rc;
}

/* Another thread can take M now (its owner let go of it). */
static void *taker(void *arg)
{
    pthread_mutex_t *m = arg;
    int rc = timed_lock(m);
    if (rc == 0)
        pthread_mutex_unlock(m);
    return (void *)(intptr_t)rc;
}

static void free_now(pthread_mutex_t *m, const char *name)
{
    pthread_t t;
    void *ret;
    if (pthread_create(&t, NULL, taker, m) != 0 || pthread_join(t, &ret) != 0) {
        note_fail("%s: cannot start a taker thread", name);
        return;
    }
    if (ret)
        note_fail("%s: another thread cannot lock it: %s", name, strerror((int)(intptr_t)ret));
}

int main(void)
{
    pthread_t t;
    init_kind(&r, PTHREAD_MUTEX_RECURSIVE);
    init_kind(&e, PTHREAD_MUTEX_ERRORCHECK);
    init_kind(&tr, PTHREAD_MUTEX_RECURSIVE);
    check(pthread_mutex_lock(&r) == 0 && pthread_mutex_lock(&r) == 0, "lock R twice");
    check(pthread_mutex_lock(&e) == 0, "lock E");
    check(pthread_rwlock_wrlock(&w) == 0, "write-lock W");
    check(pthread_create(&t, NULL, t_main, NULL) == 0, "pthread_create");
    while (!t_up)
        usleep(1000);
    test_ready();
    test_wait_go();

    int rc = timed_lock(&r);
    if (rc)
        note_fail("R: relock by its owner: %s", strerror(rc));
    for (int i = 0; i < (rc ? 2 : 3); i++)
        if ((rc = pthread_mutex_unlock(&r)) != 0)
            note_fail("R: unlock %d: %s", i + 1, strerror(rc));
    if ((rc = pthread_mutex_lock(&e)) != EDEADLK)
        note_fail("E: relock by its owner gave %s, not EDEADLK", strerror(rc));
    if ((rc = pthread_mutex_unlock(&e)) != 0)
        note_fail("E: unlock: %s", strerror(rc));
    if ((rc = pthread_rwlock_wrlock(&w)) != EDEADLK)
        note_fail("W: write-lock again by its writer gave %s, not EDEADLK", strerror(rc));
    if ((rc = pthread_rwlock_unlock(&w)) != 0)
        note_fail("W: unlock: %s", strerror(rc));
    pthread_t wt;
    void *wret = NULL;
    if (pthread_create(&wt, NULL, w_taker, NULL) == 0 && pthread_join(wt, &wret) == 0 && wret)
        note_fail("W: another thread cannot write-lock it: %s", strerror((int)(intptr_t)wret));
    free_now(&r, "R");
    free_now(&e, "E");
    t_wake = 1;
    pthread_join(t, NULL);
    if (!t_done)
        note_fail("T did not finish");
    free_now(&tr, "TR");
    if (test_failures()[0])
        fail("%s", test_failures());
    pass();
}
