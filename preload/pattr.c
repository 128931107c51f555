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
 *   slack, no_new_privs.
 * Thread names are restored by quiesce.c, glibc's rseq areas too; an rseq
 * area the program registered itself through syscall() (syscall.S) is
 * recorded per thread and registered again by the restored thread.
 * What the kernel refuses to an unprivileged process fails loudly: a
 * dumpable value of 2 (suid_dumpable) is refused at checkpoint; an
 * oom_score_adj below what the restoring process may set (it cannot go
 * under the minimum it inherited without CAP_SYS_RESOURCE) or a loginuid
 * the restoring session cannot take fails the restore before the program
 * runs again. The parent-death signal then belongs to the restored
 * process's parent (the shell that ran coord restore; with --detach the
 * process that adopted it).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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
}

/* By the manager while the threads are parked. */
int pattr_capture(struct ck_pattr *a, char *err, size_t errlen)
{
    int v = 0;
    memset(a, 0, sizeof *a);
    a->oom_score_adj = (int32_t)read_long("/proc/self/oom_score_adj", 0);
    if (prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0) == 0 && v)
        a->flags |= CK_PA_SUBREAPER;
    a->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
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
    if (s->timerslack_ns && (uint64_t)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != s->timerslack_ns &&
        prctl(PR_SET_TIMERSLACK, s->timerslack_ns, 0, 0, 0) < 0)
        thread_fail("cannot set the timer slack again", errno);
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
    for (uint32_t bit = 1; bit && bit <= a->membarrier; bit <<= 1) {
        if ((a->membarrier & bit) && syscall(SYS_membarrier, bit, 0, 0) < 0) {
            snprintf(err, errlen, "cannot register membarrier command %#x again: %s", bit,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* syscall.S: libc's syscall(), found on first use. */
long (*shim_next_syscall)(long, ...);

static long set_errno(long r)
{
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

long shim_syscall_first(long nr, long a, long b, long c, long d, long e, long f)
{
    if (!shim_next_syscall)
        *(void **)&shim_next_syscall = dlsym(RTLD_NEXT, "syscall");
    if (!shim_next_syscall)
        return set_errno(ck_sys6(nr, a, b, c, d, e, f));
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
    return set_errno(r);
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
