/* timers.c - SIGEV_THREAD timers, run by the shim instead of glibc.
 *
 * glibc serves SIGEV_THREAD timers (timer_create with SIGEV_THREAD: vim
 * has one) with a helper thread that blocks every signal through a raw
 * rt_sigprocmask the wrappers never see, so the checkpoint signal could
 * never park it, and runs each callback in a thread that blocks them too.
 * The shim serves them itself, the same way but within reach:
 *
 * - a kernel POSIX timer per SIGEV_THREAD timer, notifying the shim's own
 *   helper thread ("ckshim-timer") with SHIM_TIMER_SIG by SIGEV_THREAD_ID,
 *   sival = its entry here;
 * - the helper blocks every signal but the checkpoint signal and glibc's
 *   SIGSETXID (setuid() needs every thread), waits with rt_sigtimedwait
 *   and starts a detached thread per expiry that calls the function with
 *   its sigev_value (the attributes the program gave, if any; the signal
 *   mask glibc gives callbacks, all blocked, minus the checkpoint signal);
 * - the timer id the program gets is the kernel's, so timer_settime,
 *   timer_gettime and timer_getoverrun reach the kernel timer directly.
 *
 * For checkpoint and restore these are ordinary: the kernel timers are
 * captured from /proc/self/timers and recreated with the same ids,
 * pointed at the helper's new tid (restore.c); the helper and any callback
 * running are ordinary threads, parked and brought back with the others;
 * the entries live in the program's memory.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define SHIM_TIMER_SIG 32               /* glibc's own SIGTIMER, hidden from programs */
#define SHIM_SETXID_SIG 33              /* glibc's SIGSETXID */
#define MAX_STIMERS 64

struct stimer {
    int used;
    int kid;                            /* kernel timer id */
    void (*fn)(union sigval);
    union sigval value;
    pthread_attr_t attr;                /* for the callback threads */
};

static struct stimer stimers[MAX_STIMERS];
static pthread_mutex_t stimer_lock = PTHREAD_MUTEX_INITIALIZER;
static int helper_started;
static pthread_t helper;
static pid_t helper_first_tid;

static int (*real_timer_create)(clockid_t, struct sigevent *, timer_t *);
static int (*real_timer_delete)(timer_t);
static int (*real_timer_settime)(timer_t, int, const struct itimerspec *, struct itimerspec *);
static int (*real_timer_gettime)(timer_t, struct itimerspec *);
static int (*real_timer_getoverrun)(timer_t);

/* Every signal but the ones a shim-made thread must never block. */
static void open_mask(sigset_t *m)
{
    sigfillset(m);
    sigdelset(m, g_shim.ckpt_signal);
    if (seccomp_shim_active())
        sigdelset(m, SIGSYS);
}

struct cb_start {
    void (*fn)(union sigval);
    union sigval value;
};

static void *callback_thread(void *arg)
{
    struct cb_start cs = *(struct cb_start *)arg;
    free(arg);
    cs.fn(cs.value);
    return NULL;
}

/* The helper's tid now: glibc's copy in struct pthread, which the shim
 * repairs after a restore before any thread runs. */
static pid_t helper_tid(void)
{
    if (g_shim.tid_off > 0)
        return *(volatile pid_t *)((char *)helper + g_shim.tid_off);
    return helper_first_tid;
}

static void fire(const siginfo_t *si)
{
    struct stimer *e = si->si_value.sival_ptr;
    pthread_mutex_lock(&stimer_lock);
    /* A signal queued before timer_delete may name a freed entry. */
    if (e >= stimers && e < stimers + MAX_STIMERS && e->used && e->kid == si->si_timerid) {
        struct cb_start *cs = malloc(sizeof *cs);
        if (cs) {
            cs->fn = e->fn;
            cs->value = e->value;
            pthread_t th;
            if (pthread_create(&th, &e->attr, callback_thread, cs) != 0)
                free(cs);
        }
    }
    pthread_mutex_unlock(&stimer_lock);
}

static void *helper_main(void *arg)
{
    (void)arg;
    helper_first_tid = shim_real_gettid();
    prctl(PR_SET_NAME, "ckshim-timer", 0, 0, 0);
    /* pthread_attr_setsigmask_np leaves glibc's internal signals out of
     * the mask, and sigaddset refuses them; ours is one of them. */
    uint64_t m = 1ULL << (SHIM_TIMER_SIG - 1);
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &m, NULL, 8);
    for (;;) {
        siginfo_t si;
        /* EINTR after every checkpoint, and after a restore (a timer
         * signal pending then comes back with its siginfo: quiesce.c). */
        if (syscall(SYS_rt_sigtimedwait, &m, &si, NULL, 8) == SHIM_TIMER_SIG &&
            si.si_code == SI_TIMER)
            fire(&si);
    }
    return NULL;
}

/* A forked child has no helper and no timers (POSIX: not inherited). */
static void after_fork_child(void)
{
    pthread_mutex_init(&stimer_lock, NULL);
    helper_started = 0;
    helper_first_tid = 0;
    memset(stimers, 0, sizeof stimers);
}

int timers_helper_running(void)
{
    return helper_started;
}

/* A clone() child (socktrack.c): as after a fork. */
void timers_after_fork(void)
{
    after_fork_child();
}

static int start_helper(void)
{
    if (helper_started)
        return 0;
    pthread_attr_t a;
    sigset_t m;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 128 * 1024);
    open_mask(&m);
    sigdelset(&m, SHIM_SETXID_SIG);
    pthread_attr_setsigmask_np(&a, &m);
    helper_first_tid = 0;
    int r = pthread_create(&helper, &a, helper_main, NULL);
    pthread_attr_destroy(&a);
    if (r != 0)
        return r;
    while (!__atomic_load_n(&helper_first_tid, __ATOMIC_SEQ_CST))
        sched_yield();
    static int atfork_done;
    if (!atfork_done++)
        pthread_atfork(NULL, NULL, after_fork_child);
    helper_started = 1;
    return 0;
}

/* The attributes of the callback threads: what the program asked for
 * (stack and guard size, scheduling, scope, signal mask without ours),
 * detached; without a mask, glibc's: every signal blocked, ours open. */
static void callback_attr(pthread_attr_t *a, const pthread_attr_t *ua)
{
    pthread_attr_init(a);
    sigset_t m;
    open_mask(&m);
    if (ua) {
        size_t sz;
        int v;
        struct sched_param sp;
        if (pthread_attr_getstacksize(ua, &sz) == 0)
            pthread_attr_setstacksize(a, sz);
        if (pthread_attr_getguardsize(ua, &sz) == 0)
            pthread_attr_setguardsize(a, sz);
        if (pthread_attr_getinheritsched(ua, &v) == 0)
            pthread_attr_setinheritsched(a, v);
        if (pthread_attr_getschedpolicy(ua, &v) == 0)
            pthread_attr_setschedpolicy(a, v);
        if (pthread_attr_getschedparam(ua, &sp) == 0)
            pthread_attr_setschedparam(a, &sp);
        if (pthread_attr_getscope(ua, &v) == 0)
            pthread_attr_setscope(a, v);
        sigset_t um;
        if (pthread_attr_getsigmask_np(ua, &um) == 0) {
            m = um;
            sigdelset(&m, g_shim.ckpt_signal);
        }
    }
    pthread_attr_setsigmask_np(a, &m);
    pthread_attr_setdetachstate(a, PTHREAD_CREATE_DETACHED);
}

/* The entry of a timer id the shim made, or NULL. */
static struct stimer *find(timer_t id)
{
    for (int i = 0; i < MAX_STIMERS; i++)
        if (stimers[i].used && (intptr_t)id == stimers[i].kid)
            return &stimers[i];
    return NULL;
}

SHIM_API int timer_create(clockid_t clk, struct sigevent *sev, timer_t *id)
{
    SHIM_RESOLVE(real_timer_create, "timer_create");
    if (!sev || sev->sigev_notify != SIGEV_THREAD || !g_shim.initialized)
        return real_timer_create(clk, sev, id);
    if (!sev->sigev_notify_function) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&stimer_lock);
    int r = start_helper();
    struct stimer *e = NULL;
    for (int i = 0; i < MAX_STIMERS && !r && !e; i++)
        if (!stimers[i].used)
            e = &stimers[i];
    if (r || !e) {
        pthread_mutex_unlock(&stimer_lock);
        errno = r ? r : EAGAIN;
        return -1;
    }
    struct sigevent k;
    memset(&k, 0, sizeof k);
    k.sigev_notify = SIGEV_THREAD_ID;
    k.sigev_signo = SHIM_TIMER_SIG;
    k.sigev_value.sival_ptr = e;
    k._sigev_un._tid = helper_tid();
    int kid = -1;
    if (syscall(SYS_timer_create, clk, &k, &kid) < 0) {
        int err = errno;
        pthread_mutex_unlock(&stimer_lock);
        errno = err;
        return -1;
    }
    e->kid = kid;
    e->fn = sev->sigev_notify_function;
    e->value = sev->sigev_value;
    callback_attr(&e->attr, (const pthread_attr_t *)sev->sigev_notify_attributes);
    e->used = 1;
    pthread_mutex_unlock(&stimer_lock);
    *id = (timer_t)(intptr_t)kid;
    return 0;
}

SHIM_API int timer_delete(timer_t id)
{
    SHIM_RESOLVE(real_timer_delete, "timer_delete");
    pthread_mutex_lock(&stimer_lock);
    struct stimer *e = find(id);
    if (!e) {
        pthread_mutex_unlock(&stimer_lock);
        return real_timer_delete(id);
    }
    long r = syscall(SYS_timer_delete, e->kid);
    int err = errno;
    e->used = 0;
    pthread_attr_destroy(&e->attr);
    pthread_mutex_unlock(&stimer_lock);
    errno = err;
    return r < 0 ? -1 : 0;
}

SHIM_API int timer_settime(timer_t id, int flags, const struct itimerspec *its,
                           struct itimerspec *old)
{
    SHIM_RESOLVE(real_timer_settime, "timer_settime");
    struct stimer *e = find(id);
    if (!e)
        return real_timer_settime(id, flags, its, old);
    return syscall(SYS_timer_settime, e->kid, flags, its, old) < 0 ? -1 : 0;
}

SHIM_API int timer_gettime(timer_t id, struct itimerspec *cur)
{
    SHIM_RESOLVE(real_timer_gettime, "timer_gettime");
    struct stimer *e = find(id);
    if (!e)
        return real_timer_gettime(id, cur);
    return syscall(SYS_timer_gettime, e->kid, cur) < 0 ? -1 : 0;
}

SHIM_API int timer_getoverrun(timer_t id)
{
    SHIM_RESOLVE(real_timer_getoverrun, "timer_getoverrun");
    struct stimer *e = find(id);
    if (!e)
        return real_timer_getoverrun(id);
    return (int)syscall(SYS_timer_getoverrun, e->kid);
}
