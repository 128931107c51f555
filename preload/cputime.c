/* cputime.c - CPU-time clocks that do not start again from zero.
 *
 * A restored process is a new kernel process: its CPU-time clocks
 * (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID, the clocks of
 * clock_getcpuclockid and pthread_getcpuclockid, getrusage, times, clock)
 * count from the restore, and even include the time coord and the
 * restorer spent before the program runs. The program must never see
 * them go backwards, so:
 *   - at checkpoint (every thread parked) the manager records the values
 *     the program sees: the process's, and every thread's (its CPU clock
 *     exactly, by its clock id; its user and system time from
 *     /proc/self/task/TID/stat, rounded up to the next tick);
 *   - after restore it sets offsets = recorded - now, per process and per
 *     thread (in the thread's own TLS, found from its FS base, plus a
 *     table for clocks of other threads);
 *   - the wrappers below add them.
 * glibc's clock() calls clock_gettime internally (not through the PLT), so
 * it is wrapped too. What bypasses the wrappers sees the kernel's values:
 * raw syscalls (Go's runtime, syscall(SYS_clock_gettime)), /proc/PID/stat
 * and /proc/PID/schedstat, the rusage of wait4/waitid, and a program that
 * execs after a restore (the shim of the new program starts without the
 * offsets). A forked child starts from zero, as it should.
 *
 * The recorded values and the tables live in the shim's memory, so they
 * travel in the image like everything else; nothing in the image format
 * changes.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

/* Kernel encoding of CPU clock ids (include/linux/posix-timers.h). */
#define CPUCLOCK_PROF 0
#define CPUCLOCK_VIRT 1
#define CPUCLOCK_SCHED 2
#define CPUCLOCK_PERTHREAD 4
#define CPUCLOCK_WHICH(c) ((c) & 3)
#define CPUCLOCK_PID(c) ((pid_t) ~((c) >> 3))
#define MAKE_CPUCLOCK(pid, flags) ((clockid_t)((~(unsigned)(pid) << 3) | (flags)))

/* rusage counters that only grow, offset like the times. */
static const size_t ru_counters[] = {
    offsetof(struct rusage, ru_minflt),  offsetof(struct rusage, ru_majflt),
    offsetof(struct rusage, ru_nswap),   offsetof(struct rusage, ru_inblock),
    offsetof(struct rusage, ru_oublock), offsetof(struct rusage, ru_msgsnd),
    offsetof(struct rusage, ru_msgrcv),  offsetof(struct rusage, ru_nsignals),
    offsetof(struct rusage, ru_nvcsw),   offsetof(struct rusage, ru_nivcsw),
};
#define NCOUNT (sizeof(ru_counters) / sizeof(ru_counters[0]))

/* What a program sees of one rusage, or what to add to the kernel's. */
struct ru_val {
    int64_t utime_us, stime_us;
    long maxrss;                        /* recorded maximum (not an offset) */
    long cnt[NCOUNT];
};

struct proc_cpu {
    int64_t cpu_ns;                     /* CLOCK_PROCESS_CPUTIME_ID */
    struct ru_val self, children;
};

/* Another thread's offset, for clocks of other threads (after restore). */
struct thr_ent {
    pid_t vtid, tid;
    struct shim_cpu off;
};

static struct proc_cpu proc_saved, proc_off;
static struct shim_cpu thr_saved[CK_MAX_THREADS];  /* per slot, at checkpoint */
static struct thr_ent thr_tab[CK_MAX_THREADS];
static int thr_n;

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static int (*real_clock_getres)(clockid_t, struct timespec *);
static int (*real_getrusage)(int, struct rusage *);
static clock_t (*real_times)(struct tms *);
static int (*real_pthread_getcpuclockid)(pthread_t, clockid_t *);

/* v (>= 0) in units of 1/per second, as whole seconds and the rest. */
static void split(int64_t v, int64_t per, long *sec, long *rest)
{
    if (v < 0)
        v = 0;
    *sec = (long)(v / per);
    *rest = (long)(v % per);
}

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static int64_t tv_us(const struct timeval *tv)
{
    return (int64_t)tv->tv_sec * 1000000LL + tv->tv_usec;
}

/* The shim's TLS block of the thread whose FS base is fsbase: initial-exec
 * TLS sits at the same offset from every thread's thread pointer. A thread
 * without one (FS base 0: a raw clone) gets a scratch block. */
static struct shim_tls *tls_of(uint64_t fsbase)
{
    static struct shim_tls none;
    if (!fsbase) {
        memset(&none, 0, sizeof none);
        return &none;
    }
    return (struct shim_tls *)((char *)&shim_tls - (uint64_t)pthread_self() + fsbase);
}

static int64_t raw_clock_ns(clockid_t c)
{
    struct timespec ts;
    SHIM_RESOLVE(real_clock_gettime, "clock_gettime");
    if (real_clock_gettime(c, &ts) < 0)
        return 0;
    return ts_ns(&ts);
}

static void ru_get(int who, struct ru_val *v)
{
    struct rusage ru;
    SHIM_RESOLVE(real_getrusage, "getrusage");
    memset(v, 0, sizeof *v);
    if (real_getrusage(who, &ru) < 0)
        return;
    v->utime_us = tv_us(&ru.ru_utime);
    v->stime_us = tv_us(&ru.ru_stime);
    v->maxrss = ru.ru_maxrss;
    for (size_t i = 0; i < NCOUNT; i++)
        v->cnt[i] = *(const long *)((const char *)&ru + ru_counters[i]);
}

/* a = b + c (c an offset: maxrss is the recorded maximum, kept). */
static void ru_add(struct ru_val *a, const struct ru_val *b, const struct ru_val *c)
{
    a->utime_us = b->utime_us + c->utime_us;
    a->stime_us = b->stime_us + c->stime_us;
    a->maxrss = b->maxrss > c->maxrss ? b->maxrss : c->maxrss;
    for (size_t i = 0; i < NCOUNT; i++)
        a->cnt[i] = b->cnt[i] + c->cnt[i];
}

/* off = saved - now (maxrss: the saved maximum). */
static void ru_off(struct ru_val *off, const struct ru_val *saved, const struct ru_val *now)
{
    off->utime_us = saved->utime_us - now->utime_us;
    off->stime_us = saved->stime_us - now->stime_us;
    off->maxrss = saved->maxrss;
    for (size_t i = 0; i < NCOUNT; i++)
        off->cnt[i] = saved->cnt[i] - now->cnt[i];
}

/* A thread's user and system time from /proc (whole ticks, rounded down;
 * up = 1: rounded up). */
static void thread_times(pid_t tid, int up, int64_t *utime_us, int64_t *stime_us)
{
    char path[64], buf[1024];
    *utime_us = *stime_us = 0;
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    if (shim_read_file(path, buf, sizeof buf) <= 0)
        return;
    const char *p = strrchr(buf, ')');
    for (int field = 2; p && field < 14; field++)
        p = strchr(p + 1, ' ');
    if (!p)
        return;
    char *end;
    long long ut = strtoll(p + 1, &end, 10), st = strtoll(end, NULL, 10);
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    *utime_us = (ut + up) * 1000000LL / hz;
    *stime_us = (st + up) * 1000000LL / hz;
}

/* At checkpoint, every thread parked: what the program sees now. */
void cputime_capture(void)
{
    proc_saved.cpu_ns = raw_clock_ns(CLOCK_PROCESS_CPUTIME_ID) + proc_off.cpu_ns;
    struct ru_val now;
    ru_get(RUSAGE_SELF, &now);
    ru_add(&proc_saved.self, &now, &proc_off.self);
    ru_get(RUSAGE_CHILDREN, &now);
    ru_add(&proc_saved.children, &now, &proc_off.children);
    for (int i = 0; i < g_shim.nslots && i < CK_MAX_THREADS; i++) {
        const struct shim_slot *s = &g_shim.slots[i];
        const struct shim_cpu *off = &tls_of(s->fsbase)->cpu_off;
        struct shim_cpu *v = &thr_saved[i];
        v->cpu_ns = raw_clock_ns(MAKE_CPUCLOCK(s->tid, CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED)) +
                    off->cpu_ns;
        thread_times(s->tid, 1, &v->utime_us, &v->stime_us);
        v->utime_us += off->utime_us;
        v->stime_us += off->stime_us;
    }
}

/* After restore, every thread landed (slots hold the new tids): the
 * offsets that continue the clocks from what was recorded. */
void cputime_restore(void)
{
    proc_off.cpu_ns = proc_saved.cpu_ns - raw_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    struct ru_val now;
    ru_get(RUSAGE_SELF, &now);
    ru_off(&proc_off.self, &proc_saved.self, &now);
    ru_get(RUSAGE_CHILDREN, &now);
    ru_off(&proc_off.children, &proc_saved.children, &now);
    thr_n = 0;
    for (int i = 0; i < g_shim.nslots && i < CK_MAX_THREADS; i++) {
        const struct shim_slot *s = &g_shim.slots[i];
        struct shim_cpu *off = &tls_of(s->fsbase)->cpu_off;
        int64_t ut, st;
        thread_times(s->tid, 0, &ut, &st);
        off->cpu_ns = thr_saved[i].cpu_ns -
                      raw_clock_ns(MAKE_CPUCLOCK(s->tid, CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED));
        off->utime_us = thr_saved[i].utime_us - ut;
        off->stime_us = thr_saved[i].stime_us - st;
        thr_tab[thr_n].vtid = s->vtid;
        thr_tab[thr_n].tid = s->tid;
        thr_tab[thr_n].off = *off;
        thr_n++;
    }
}

/* In a forked child: its clocks start from zero, like any new process. */
void cputime_forget(void)
{
    memset(&proc_off, 0, sizeof proc_off);
    memset(&shim_tls.cpu_off, 0, sizeof shim_tls.cpu_off);
    thr_n = 0;
}

/* The offset (ns) of clock which (CPUCLOCK_*) for off. */
static int64_t which_off(const struct shim_cpu *off, int which)
{
    if (which == CPUCLOCK_SCHED)
        return off->cpu_ns;
    if (which == CPUCLOCK_VIRT)
        return off->utime_us * 1000;
    return (off->utime_us + off->stime_us) * 1000;
}

/* For a clock id the program holds: the id to give the kernel (ids it
 * knows from before a restore translated) and the offset to add, in ns. */
static clockid_t translate(clockid_t c, int64_t *off)
{
    *off = 0;
    if (c == CLOCK_PROCESS_CPUTIME_ID) {
        *off = proc_off.cpu_ns;
        return c;
    }
    if (c == CLOCK_THREAD_CPUTIME_ID) {
        *off = shim_tls.cpu_off.cpu_ns;
        return c;
    }
    if (c >= 0 || CPUCLOCK_WHICH(c) == 3)
        return c;                       /* not a CPU clock (3: a clock fd) */
    pid_t id = CPUCLOCK_PID(c);
    int which = CPUCLOCK_WHICH(c);
    if (!(c & CPUCLOCK_PERTHREAD)) {
        pid_t me = shim_real_getpid();
        if (id != 0 && id != me && !(g_shim.vpid && id == g_shim.vpid))
            return c;                   /* another process */
        struct shim_cpu p = {proc_off.cpu_ns, proc_off.self.utime_us, proc_off.self.stime_us};
        *off = which_off(&p, which);
        return id ? MAKE_CPUCLOCK(me, which) : c;
    }
    if (id == 0 || id == shim_real_gettid() || (shim_tls.vtid > 0 && id == shim_tls.vtid)) {
        *off = which_off(&shim_tls.cpu_off, which);
        return id ? MAKE_CPUCLOCK(shim_real_gettid(), CPUCLOCK_PERTHREAD | which) : c;
    }
    for (int i = 0; i < thr_n; i++)
        if (thr_tab[i].vtid == id || thr_tab[i].tid == id) {
            *off = which_off(&thr_tab[i].off, which);
            return MAKE_CPUCLOCK(thr_tab[i].tid, CPUCLOCK_PERTHREAD | which);
        }
    return c;
}

clockid_t cputime_clock(clockid_t c, int64_t *off_ns)
{
    if (c >= 0 && c != CLOCK_PROCESS_CPUTIME_ID && c != CLOCK_THREAD_CPUTIME_ID) {
        *off_ns = 0;
        return c;
    }
    return translate(c, off_ns);
}

SHIM_API int clock_gettime(clockid_t c, struct timespec *ts)
{
    SHIM_RESOLVE(real_clock_gettime, "clock_gettime");
    if (c >= 0 && c != CLOCK_PROCESS_CPUTIME_ID && c != CLOCK_THREAD_CPUTIME_ID)
        return real_clock_gettime(c, ts);
    int64_t off;
    int r = real_clock_gettime(translate(c, &off), ts);
    if (r == 0 && off)
        split(ts_ns(ts) + off, 1000000000LL, &ts->tv_sec, &ts->tv_nsec);
    return r;
}

SHIM_API int clock_getres(clockid_t c, struct timespec *ts)
{
    SHIM_RESOLVE(real_clock_getres, "clock_getres");
    int64_t off;
    return real_clock_getres(c >= 0 ? c : translate(c, &off), ts);
}

SHIM_API clock_t clock(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
        return (clock_t)-1;
    return (clock_t)(ts.tv_sec * CLOCKS_PER_SEC + ts.tv_nsec / (1000000000 / CLOCKS_PER_SEC));
}

SHIM_API int getrusage(int who, struct rusage *ru)
{
    SHIM_RESOLVE(real_getrusage, "getrusage");
    int r = real_getrusage(who, ru);
    if (r < 0)
        return r;
    struct ru_val thr = {0}, *off;
    if (who == RUSAGE_SELF)
        off = &proc_off.self;
    else if (who == RUSAGE_CHILDREN)
        off = &proc_off.children;
    else if (who == RUSAGE_THREAD) {
        thr.utime_us = shim_tls.cpu_off.utime_us;
        thr.stime_us = shim_tls.cpu_off.stime_us;
        off = &thr;
    } else
        return r;
    split(tv_us(&ru->ru_utime) + off->utime_us, 1000000, &ru->ru_utime.tv_sec,
          &ru->ru_utime.tv_usec);
    split(tv_us(&ru->ru_stime) + off->stime_us, 1000000, &ru->ru_stime.tv_sec,
          &ru->ru_stime.tv_usec);
    if (off->maxrss > ru->ru_maxrss)
        ru->ru_maxrss = off->maxrss;
    for (size_t i = 0; i < NCOUNT; i++)
        *(long *)((char *)ru + ru_counters[i]) += off->cnt[i];
    return r;
}

SHIM_API clock_t times(struct tms *t)
{
    SHIM_RESOLVE(real_times, "times");
    clock_t r = real_times(t);
    if (r == (clock_t)-1 || !t)
        return r;
    long hz = sysconf(_SC_CLK_TCK);
    struct rusage self, kids;
    if (hz <= 0 || getrusage(RUSAGE_SELF, &self) < 0 || getrusage(RUSAGE_CHILDREN, &kids) < 0)
        return r;
    /* From the same (offset) times getrusage reports, in ticks. */
    t->tms_utime = (clock_t)(tv_us(&self.ru_utime) * hz / 1000000);
    t->tms_stime = (clock_t)(tv_us(&self.ru_stime) * hz / 1000000);
    t->tms_cutime = (clock_t)(tv_us(&kids.ru_utime) * hz / 1000000);
    t->tms_cstime = (clock_t)(tv_us(&kids.ru_stime) * hz / 1000000);
    return r;
}

/* Ids the program keeps across restores: the pid and tid it sees. */
SHIM_API int clock_getcpuclockid(pid_t pid, clockid_t *c)
{
    clockid_t id = MAKE_CPUCLOCK(pid, CPUCLOCK_SCHED), real;
    int64_t off;
    struct timespec ts;
    real = translate(id, &off);
    SHIM_RESOLVE(real_clock_getres, "clock_getres");
    if (real_clock_getres(real, &ts) < 0)
        return errno == EINVAL ? EPERM : errno;
    *c = id;
    return 0;
}

SHIM_API int pthread_getcpuclockid(pthread_t th, clockid_t *c)
{
    SHIM_RESOLVE(real_pthread_getcpuclockid, "pthread_getcpuclockid");
    int r = real_pthread_getcpuclockid(th, c);
    pid_t vtid = tls_of((uint64_t)th)->vtid;
    if (r == 0 && vtid > 0)
        *c = MAKE_CPUCLOCK(vtid, CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED);
    return r;
}
