/* sched_attrs - each thread's nice value and scheduling policy survive.
 *
 * Before READY: the main thread sets its nice value to 5; thread I runs
 * at SCHED_IDLE, thread B at SCHED_BATCH with nice 7, thread R at
 * SCHED_BATCH with SCHED_RESET_ON_FORK and nice 2; I's I/O priority is
 * the idle class, B's best effort level 6 (all allowed to an ordinary
 * user: higher nice values, non-real-time policies and I/O classes).
 * The restored threads start with the restoring process's (nice 0,
 * SCHED_OTHER) unless the shim sets them again. After the go file every
 * thread checks its own (SCHED_RESET_ON_FORK shows in R's policy).
 */
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "testlib.h"

struct want {
    int policy, nice, ioprio;
    volatile int ok, done;
    char why[128];
};

static int nice_now(void)
{
    errno = 0;
    return getpriority(PRIO_PROCESS, 0);
}

static void check_self(struct want *w)
{
    int pol = sched_getscheduler(0), n = nice_now();
    long io = syscall(SYS_ioprio_get, 1, 0);
    if (pol != w->policy || n != w->nice || (w->ioprio && io != w->ioprio))
        snprintf(w->why, sizeof w->why, "policy %#x nice %d ioprio %#lx, expected %#x nice %d "
                 "ioprio %#x", pol, n, io, w->policy, w->nice, w->ioprio);
    else
        w->ok = 1;
}

static void *thread_main(void *arg)
{
    struct want *w = arg;
    struct sched_param sp = {0};
    if (sched_setscheduler(0, w->policy, &sp) != 0 ||
        (w->nice && setpriority(PRIO_PROCESS, 0, w->nice) != 0) ||
        (w->ioprio && syscall(SYS_ioprio_set, 1, 0, w->ioprio) != 0)) {
        snprintf(w->why, sizeof w->why, "setting up: %s", strerror(errno));
        w->done = -1;
        return NULL;
    }
    w->done = 1;
    while (!test_go_reached())
        test_sleep_ms(20);
    check_self(w);
    w->done = 2;
    return NULL;
}

int main(void)
{
    static struct want ws[] = {
        {SCHED_IDLE, 0, 3 << 13, 0, 0, ""},         /* I/O: the idle class */
        {SCHED_BATCH, 7, 2 << 13 | 6, 0, 0, ""},    /* best effort, level 6 */
        {SCHED_BATCH | SCHED_RESET_ON_FORK, 2, 0, 0, 0, ""},
    };
    enum { N = sizeof ws / sizeof ws[0] };
    struct want main_w = {SCHED_OTHER, 5, 0, 0, 0, ""};
    test_go_setup();
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        check(pthread_create(&t[i], NULL, thread_main, &ws[i]) == 0, "pthread_create");
    for (int i = 0; i < N; i++) {
        while (!ws[i].done)
            test_sleep_ms(5);
        check(ws[i].done == 1, "thread %d: %s", i, ws[i].why);
    }
    check_sys(setpriority(PRIO_PROCESS, 0, 5)); /* this thread's only */
    test_ready();
    test_wait_go();
    check_self(&main_w);
    check(main_w.ok, "main thread: %s", main_w.why);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        check(ws[i].ok, "thread %d: %s", i, ws[i].why);
    }
    pass();
}
