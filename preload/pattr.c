/* pattr.c - process attributes a restore would otherwise lose.
 *
 * The restored process is a fresh exec (of the restorer), so everything
 * the kernel keeps outside memory and descriptors starts from its
 * defaults. What an unprivileged process may set again is captured and
 * put back:
 *   per process (ck_proc.attr, by the manager): oom_score_adj, child
 *   subreaper, the dumpable flag, THP disable (with its flags), membarrier
 *   registrations, loginuid;
 *   per thread (the thread's slot, in the checkpoint handler and again by
 *   every restored thread for itself): the parent-death signal, timer
 *   slack, no_new_privs, the personality flags (e.g. ADDR_NO_RANDOMIZE;
 *   the main thread's also in ck_proc.personality), the nice value and
 *   the scheduling policy (SCHED_OTHER, BATCH, IDLE; a real-time one
 *   needs privileges the restoring user may lack), the CPU affinity, the
 *   I/O priority.
 * A seccomp filter the program installed itself cannot be read back: the
 * checkpoint is refused.
 * AIO contexts (io_setup) come back with the same ids (aio.c part below).
 * Thread names are restored by quiesce.c, glibc's rseq areas too; an rseq
 * area the program registered itself through syscall() (syscall.S) is
 * recorded per thread and registered again by the restored thread.
 * What the kernel refuses to an unprivileged process fails loudly: a
 * dumpable value of 2 (suid_dumpable) is refused at checkpoint; an
 * oom_score_adj below what the restoring process may set (it cannot go
 * under the minimum it inherited without CAP_SYS_RESOURCE), a loginuid
 * the restoring session cannot take, or a nice value below what
 * RLIMIT_NICE lets the restoring process take (a program saved at nice 0
 * restored by a coord at nice 10) fails the restore before the program
 * runs again. The parent-death signal then belongs to the restored
 * process's parent (the shell that ran coord restore; with --detach the
 * process that adopted it).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rawsys.h"
#include "shim.h"

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif
/* MEMBARRIER_CMD_REGISTER_* commands: GET_REGISTRATIONS answers with them */
#define MEMBARRIER_REGISTER_MASK ((1u << 2) | (1u << 4) | (1u << 6) | (1u << 8))

static char thread_err[160]; /* the first failure of a restored thread */

static long read_long(const char *path, long dflt)
{
    char buf[32];
    int n = shim_read_file(path, buf, sizeof buf - 1);
    if (n <= 0)
        return dflt;
    buf[n] = 0;
    return strtol(buf, NULL, 10);
}

static int write_long(const char *path, long v)
{
    char buf[32];
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int n = snprintf(buf, sizeof buf, "%ld", v);
    int r = write(fd, buf, (size_t)n) == n ? 0 : -errno;
    close(fd);
    return r;
}

/* In the checkpoint handler: the calling thread's own attributes. */
void pattr_park(struct shim_slot *s)
{
    int sig = 0;
    prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
    s->pdeathsig = sig;
    s->timerslack_ns = (uint64_t)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
    s->personality = (uint32_t)personality(0xffffffff);
    /* the kernel answers 20 - nice; the policy with SCHED_RESET_ON_FORK */
    long pr = syscall(SYS_getpriority, PRIO_PROCESS, 0);
    struct sched_param sp = {0};
    int pol = sched_getscheduler(0);
    s->sched_known = pr >= 0 && pol >= 0 && sched_getparam(0, &sp) == 0;
    s->nice = (int32_t)(20 - pr);
    s->policy = pol;
    s->sched_prio = sp.sched_priority;
    s->affinity_known = sched_getaffinity(0, sizeof s->affinity, &s->affinity) == 0;
    /* IOPRIO_WHO_PROCESS (1) of 0: this thread; 0 means "from its nice" */
    long io = syscall(SYS_ioprio_get, 1, 0);
    s->ioprio = io >= 0 ? (int32_t)io : -1;
}

/* A non-dumpable process's /proc/self files belong to root: pagemap and
 * mem, which the capture and the writer read, cannot be opened by an
 * ordinary user. The flag is lifted while the program is parked (the
 * writer, forked meanwhile, keeps it lifted) and put back before any of
 * its threads runs again. */
static int dumpable_raised;

void pattr_unpark(void)
{
    if (dumpable_raised)
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    dumpable_raised = 0;
}

/* Seccomp filters: the kernel shows how many a task has but not what
 * they are, and an unprivileged process cannot read them back, so ckshim
 * cannot install them again. Those the program found at its start (its
 * environment's: a container's, systemd's) are the restoring
 * environment's business and are not counted, nor is the shim's own
 * filter for Go's raw sigprocmask calls (seccomp.c); one more is the
 * program's own and refuses the checkpoint. */
static int seccomp_inherited;

/* Seccomp_filters in /proc/self/status (before Linux 5.9: 1 for the
 * filter mode, which can only undercount). */
static int seccomp_filters(void)
{
    char buf[4096];
    int n = shim_read_file("/proc/self/status", buf, sizeof buf - 1);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *p = strstr(buf, "\nSeccomp_filters:");
    if (p)
        return atoi(p + 17);
    p = strstr(buf, "\nSeccomp:");
    return p && atoi(p + 9) != 0;
}

void pattr_seccomp_baseline(void)
{
    seccomp_inherited = seccomp_filters() - (seccomp_shim_active() ? 1 : 0);
}

/* By the manager while the threads are parked. */
int pattr_capture(struct ck_proc *p, char *err, size_t errlen)
{
    struct ck_pattr *a = &p->attr;
    int v = 0;
    memset(a, 0, sizeof *a);
    int filters = seccomp_filters();
    if (filters - (seccomp_shim_active() ? 1 : 0) > seccomp_inherited) {
        snprintf(err, errlen, "the program installed a seccomp filter (Seccomp_filters: %d in "
                 "/proc/self/status), which ckshim cannot restore", filters);
        return -ENOTSUP;
    }
    a->oom_score_adj = (int32_t)read_long("/proc/self/oom_score_adj", 0);
    if (prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0) == 0 && v)
        a->flags |= CK_PA_SUBREAPER;
    a->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    if (a->dumpable == 0 && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0)
        dumpable_raised = 1;
    if (a->dumpable != 0 && a->dumpable != 1) {
        snprintf(err, errlen,
                 "the process is dumpable only by root (PR_GET_DUMPABLE %d, "
                 "suid_dumpable): an unprivileged restore cannot set that",
                 a->dumpable);
        return -EPERM;
    }
    long thp = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
    a->thp_disable = thp > 0 ? (int32_t)thp : 0;
    long mb = syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0);
    a->membarrier = mb > 0 ? (uint32_t)mb & MEMBARRIER_REGISTER_MASK : 0;
    a->loginuid = (uint32_t)read_long("/proc/self/loginuid", -1);
    for (int i = 0; i < g_shim.nslots && i < CK_MAX_THREADS; i++) {
        struct shim_slot *s = &g_shim.slots[i];
        if (s->tid == shim_real_getpid()) {
            a->pdeathsig = s->pdeathsig;
            a->timerslack_ns = s->timerslack_ns;
            p->personality = s->personality;
            if (s->nnp)
                a->flags |= CK_PA_NO_NEW_PRIVS;
        }
    }
    return 0;
}

static void thread_fail(const char *what, int e)
{
    if (!thread_err[0])
        snprintf(thread_err, sizeof thread_err, "%s: %s", what, strerror(e));
}

/* A restored thread, for itself (from quiesce_fixup_thread). */
void pattr_thread_restore(const struct shim_slot *s)
{
    if (s->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        thread_fail("cannot set no_new_privs again", errno);
    if (s->pdeathsig && prctl(PR_SET_PDEATHSIG, s->pdeathsig, 0, 0, 0) < 0)
        thread_fail("cannot set the parent-death signal again", errno);
    /* ADDR_NO_RANDOMIZE and the like are per task: the restored thread
     * has the restoring process's */
    if ((uint32_t)personality(0xffffffff) != s->personality && personality(s->personality) < 0)
        thread_fail("cannot set the personality again", errno);
    if (s->timerslack_ns && (uint64_t)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != s->timerslack_ns &&
        prctl(PR_SET_TIMERSLACK, s->timerslack_ns, 0, 0, 0) < 0)
        thread_fail("cannot set the timer slack again", errno);
    if (s->sched_known) {
        struct sched_param sp = {.sched_priority = s->sched_prio};
        if (sched_getscheduler(0) != s->policy && sched_setscheduler(0, s->policy, &sp) < 0) {
            char what[96];
            snprintf(what, sizeof what, "cannot set scheduling policy %d again%s", s->policy,
                     (s->policy & ~SCHED_RESET_ON_FORK) == SCHED_FIFO ||
                             (s->policy & ~SCHED_RESET_ON_FORK) == SCHED_RR
                         ? " (a real-time policy)"
                         : "");
            thread_fail(what, errno);
        }
        if (20 - syscall(SYS_getpriority, PRIO_PROCESS, 0) != s->nice &&
            syscall(SYS_setpriority, PRIO_PROCESS, 0, s->nice) < 0) {
            char what[140];
            snprintf(what, sizeof what, "cannot set nice value %d again (RLIMIT_NICE: restore "
                     "with nice -n %d coord restore ...)", s->nice, s->nice);
            thread_fail(what, errno);
        }
    }
    /* its I/O priority (an unprivileged thread may take the best-effort
     * and idle classes, not the real-time one) */
    if (s->ioprio > 0 && syscall(SYS_ioprio_get, 1, 0) != s->ioprio &&
        syscall(SYS_ioprio_set, 1, 0, s->ioprio) < 0) {
        char what[96];
        snprintf(what, sizeof what, "cannot set I/O priority class %d level %d again",
                 s->ioprio >> 13, s->ioprio & 0x1fff);
        thread_fail(what, errno);
    }
    /* CPU affinity: the CPUs it had that exist here (the kernel keeps the
     * ones this machine and cgroup allow); none of them here (another
     * machine, a smaller cpuset: a requeued batch job): the restoring
     * process's, which the scheduler gave it */
    cpu_set_t cur;
    if (s->affinity_known && sched_getaffinity(0, sizeof cur, &cur) == 0 &&
        !CPU_EQUAL(&cur, &s->affinity))
        sched_setaffinity(0, sizeof s->affinity, &s->affinity);
    /* loginuid is per thread and only a thread may set its own */
    long want = (long)g_shim.proc.attr.loginuid;
    if (want != (long)(uint32_t)-1 && read_long("/proc/thread-self/loginuid", -1) != want) {
        int r = write_long("/proc/thread-self/loginuid", want);
        char what[96];
        snprintf(what, sizeof what,
                 "cannot set loginuid %ld again (the restoring session has "
                 "its own)",
                 want);
        if (r < 0)
            thread_fail(what, -r);
    }
}

static int aio_restore(char *err, size_t errlen);

/* By the manager after every thread came back, before the program runs.
 * Returns 0, or -1 with a message. */
int pattr_restore(char *err, size_t errlen)
{
    const struct ck_pattr *a = &g_shim.proc.attr;
    if (thread_err[0]) {
        snprintf(err, errlen, "%s", thread_err);
        return -1;
    }
    if (read_long("/proc/self/oom_score_adj", 0) != a->oom_score_adj) {
        int r = write_long("/proc/self/oom_score_adj", a->oom_score_adj);
        if (r < 0) {
            snprintf(err, errlen,
                     "cannot set oom_score_adj back to %d: %s (an unprivileged "
                     "process cannot go below the value its parents set)",
                     a->oom_score_adj, strerror(-r));
            return -1;
        }
    }
    if ((a->flags & CK_PA_SUBREAPER) && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "cannot become a child subreaper again: %s", strerror(errno));
        return -1;
    }
    if (a->dumpable == 0)
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (a->thp_disable && prctl(PR_SET_THP_DISABLE, 1, a->thp_disable & ~1, 0, 0) < 0) {
        snprintf(err, errlen, "cannot disable transparent huge pages again: %s", strerror(errno));
        return -1;
    }
    if (aio_restore(err, errlen) < 0)
        return -1;
    for (uint32_t bit = 1; bit && bit <= a->membarrier; bit <<= 1) {
        if ((a->membarrier & bit) && syscall(SYS_membarrier, bit, 0, 0) < 0) {
            snprintf(err, errlen, "cannot register membarrier command %#x again: %s", bit,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* syscall.S: libc's syscall(). */
long (*shim_next_syscall)(long, ...);

long shim_set_errno(long r)
{
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* Found before the program runs: the first call could come from a signal
 * handler (the checkpoint handler makes some), where dlsym is unsafe. */
__attribute__((constructor)) static void syscall_resolve(void)
{
    if (!shim_next_syscall)
        *(void **)&shim_next_syscall = dlsym(RTLD_NEXT, "syscall");
}

long shim_syscall_first(long nr, long a, long b, long c, long d, long e, long f)
{
    syscall_resolve();
    if (!shim_next_syscall)
        return shim_set_errno(ck_sys6(nr, a, b, c, d, e, f));
    return shim_next_syscall(nr, a, b, c, d, e, f);
}

/* syscall(SYS_rseq, area, len, flags, sig) by the program. */
long shim_syscall_rseq(long nr, long area, long len, long flags, long sig)
{
    long r = ck_sys6(nr, area, len, flags, sig, 0, 0);
    if (r == 0) {
        shim_tls.rseq_own = 1;
        shim_tls.rseq_area = flags & RSEQ_FLAG_UNREGISTER ? 0 : (uint64_t)area;
        shim_tls.rseq_len = (uint32_t)len;
        shim_tls.rseq_sig = (uint32_t)sig;
    }
    return shim_set_errno(r);
}

/* A restored thread: its rseq registration, the program's or glibc's. */
void pattr_rseq_restore(uint64_t fsbase)
{
    struct rseq *rs = NULL;
    uint32_t len = 32, sig = RSEQ_SIG;
    if (shim_tls.rseq_own) {
        rs = (struct rseq *)shim_tls.rseq_area;
        len = shim_tls.rseq_len;
        sig = shim_tls.rseq_sig;
    } else if (g_shim.rseq_size) {
        rs = (struct rseq *)(fsbase + (uint64_t)g_shim.rseq_off);
    }
    if (!rs)
        return;
    rs->rseq_cs = 0;
    if (ck_sys6(SYS_rseq, (long)rs, len, 0, sig, 0, 0) < 0 && shim_tls.rseq_own)
        thread_fail("cannot register the thread's rseq area again", EINVAL);
}

/* AIO contexts. A context's id is the address of its ring, a mapping
 * "/[aio] (deleted)" that the image holds like any deleted file's. The
 * restore makes a new context with a ring of the same size (the smallest
 * io_setup() argument that gives it), moves its ring over the old address (mremap: the kernel then
 * knows the context by that id), and brings the ring's head and tail to
 * where they were with no-op writes to /dev/null that complete at once:
 * reaped ones up to the old head, then one per event the program had not
 * reaped yet, whose slots get the old events back. Limits: requests still
 * in flight at the checkpoint cannot be seen (the kernel does not show
 * them) and never complete; the context may then accept more requests
 * than the program asked io_setup for. */
struct aio_ring_hdr {
    uint32_t id, nr, head, tail, magic, compat, incompat, header_length;
};
#define AIO_RING_MAGIC_V 0xa10a10a1u

int pattr_capture_aio(char *err, size_t errlen)
{
    struct ck_pattr *a = &g_shim.proc.attr;
    a->naio = 0;
    for (uint32_t i = 0; i < g_shim.nregions; i++) {
        const struct ck_region *r = &g_shim.regions[i];
        if (!r->path_len || strncmp(g_shim.strtab + r->path_off, "/[aio]", 6))
            continue;
        const struct aio_ring_hdr *h = (const struct aio_ring_hdr *)r->start;
        if (a->naio >= CK_MAX_AIO || h->magic != AIO_RING_MAGIC_V || !h->nr || h->head >= h->nr ||
            h->tail >= h->nr ||
            sizeof *h + (uint64_t)h->nr * sizeof(struct io_event) > r->end - r->start) {
            snprintf(err, errlen, "AIO context %#llx cannot be restored (%s)",
                     (unsigned long long)r->start,
                     a->naio >= CK_MAX_AIO ? "too many contexts" : "unknown ring layout");
            return -ENOTSUP;
        }
        struct ck_aio *c = &a->aio[a->naio++];
        c->addr = r->start;
        c->len = r->end - r->start;
        c->nr = h->nr;
        c->head = h->head;
        c->tail = h->tail;
    }
    return 0;
}

/* One no-op write through the context; reap it too if asked. */
static int aio_step(aio_context_t ctx, int devnull, int reap)
{
    static char byte;
    struct iocb cb, *cbp = &cb;
    struct io_event ev;
    memset(&cb, 0, sizeof cb);
    cb.aio_lio_opcode = IOCB_CMD_PWRITE;
    cb.aio_fildes = (uint32_t)devnull;
    cb.aio_buf = (uint64_t)&byte;
    cb.aio_nbytes = 1;
    long r = ck_sys6(SYS_io_submit, (long)ctx, 1, (long)&cbp, 0, 0, 0);
    if (r == 1 && reap)
        r = ck_sys6(SYS_io_getevents, (long)ctx, 1, 1, (long)&ev, 0, 0);
    if (r != 1)
        errno = r < 0 ? (int)-r : EIO;
    return r == 1 ? 0 : -1;
}

/* A new context whose ring holds exactly nr events: the smallest
 * io_setup() argument that gives it (the kernel raises small requests to
 * a per-CPU minimum, doubles them and rounds the ring up to whole pages,
 * so nr itself is not the answer). 0 if none does. */
static aio_context_t aio_setup_nr(uint32_t nr)
{
    uint32_t lo = 1, hi = nr;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        aio_context_t ctx = 0;
        long r = ck_sys6(SYS_io_setup, mid, (long)&ctx, 0, 0, 0, 0);
        if (r < 0) {
            errno = (int)-r;
            return 0;
        }
        uint32_t got = ((struct aio_ring_hdr *)ctx)->nr;
        ck_sys6(SYS_io_destroy, (long)ctx, 0, 0, 0, 0, 0);
        if (got < nr)
            lo = mid + 1;
        else
            hi = mid;
    }
    aio_context_t ctx = 0;
    long r = ck_sys6(SYS_io_setup, lo, (long)&ctx, 0, 0, 0, 0);
    if (r < 0) {
        errno = (int)-r;
        return 0;
    }
    if (((struct aio_ring_hdr *)ctx)->nr != nr) {
        ck_sys6(SYS_io_destroy, (long)ctx, 0, 0, 0, 0, 0);
        errno = ENOTSUP;
        return 0;
    }
    return ctx;
}

static int aio_restore_one(const struct ck_aio *c, int devnull)
{
    uint32_t pending = (c->tail + c->nr - c->head) % c->nr;
    size_t evlen = (size_t)c->nr * sizeof(struct io_event);
    /* the old events, from the copy of the ring the restorer mapped */
    void *save = mmap(NULL, evlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (save == MAP_FAILED)
        return -1;
    memcpy(save, (char *)c->addr + sizeof(struct aio_ring_hdr), evlen);
    munmap((void *)c->addr, c->len);
    aio_context_t ctx = aio_setup_nr(c->nr);
    int ok = ctx != 0;
    if (ok && ctx != c->addr &&
        mremap((void *)ctx, c->len, c->len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)c->addr) ==
            MAP_FAILED)
        ok = 0;
    for (uint32_t i = 0; ok && i < c->head; i++)
        ok = aio_step(c->addr, devnull, 1) == 0;
    for (uint32_t i = 0; ok && i < pending; i++)
        ok = aio_step(c->addr, devnull, 0) == 0;
    struct io_event *ev = (struct io_event *)((char *)c->addr + sizeof(struct aio_ring_hdr));
    for (uint32_t i = 0; ok && i < pending; i++) {
        uint32_t k = (c->head + i) % c->nr;
        ev[k] = ((struct io_event *)save)[k];
    }
    munmap(save, evlen);
    return ok ? 0 : -1;
}

static int aio_restore(char *err, size_t errlen)
{
    const struct ck_pattr *a = &g_shim.proc.attr;
    if (!a->naio)
        return 0;
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    for (uint32_t i = 0; i < a->naio; i++) {
        if (devnull < 0 || aio_restore_one(&a->aio[i], devnull) < 0) {
            snprintf(err, errlen, "cannot recreate AIO context %#llx (%u events): %s",
                     (unsigned long long)a->aio[i].addr, a->aio[i].nr, strerror(errno));
            if (devnull >= 0)
                close(devnull);
            return -1;
        }
    }
    close(devnull);
    return 0;
}
