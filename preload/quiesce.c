/* quiesce.c - park every thread of the program at a known point.
 *
 * The manager sends the checkpoint signal to each thread (tgkill). The
 * handler records what only that thread can see (its tid, FS base,
 * sigaltstack, name), saves its park point with shim_ctx_save() and waits
 * on a futex. The kernel's signal frame below the handler already holds
 * the thread's full user context (all registers, FPU/AVX state, signal
 * mask): returning from the handler restores it, both after a plain
 * checkpoint and after a restore.
 *
 * After restore, the restorer starts each thread at its park point, so
 * shim_ctx_save() returns 1: the thread repairs what the kernel does not
 * know about it (glibc's cached tid, robust list, rseq, sigaltstack, name),
 * reports "landed" and waits until the manager has finished the process.
 */
#include <asm/prctl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define RSEQ_SIGNATURE 0x53053053

static pid_t signaled[CK_MAX_THREADS];
static int nsignaled;

static void ckpt_handler(int sig, siginfo_t *si, void *ucv)
{
    int saved_errno = errno;
    (void)sig;
    if (!__atomic_load_n(&g_shim.ckpt_active, __ATOMIC_SEQ_CST) || si->si_code != SI_TKILL ||
        si->si_pid != shim_real_getpid()) {
        errno = saved_errno;
        return;
    }
    int idx = __atomic_fetch_add(&g_shim.nslots, 1, __ATOMIC_SEQ_CST);
    if (idx >= CK_MAX_THREADS) {
        errno = saved_errno;
        return;
    }
    struct shim_slot *s = &g_shim.slots[idx];
    s->tid = shim_real_gettid();
    if (shim_tls.vtid == 0)
        shim_tls.vtid = s->tid;
    s->vtid = shim_tls.vtid;
    s->uc = ucv;
    s->pd = (uint64_t)pthread_self();
    syscall(SYS_arch_prctl, ARCH_GET_FS, &s->fsbase);
    sigaltstack(NULL, &s->ss);
    prctl(PR_GET_NAME, s->comm, 0, 0, 0);
    shim_tls.ckpt_seq++;
    shim_tls.park_mono_ns = shim_now_ns(CLOCK_MONOTONIC);

    if (shim_ctx_save(&s->ctx) == 0) {
        __atomic_store_n(&s->state, SLOT_PARKED, __ATOMIC_SEQ_CST);
        int gen = __atomic_load_n(&g_shim.release_gen, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&g_shim.nparked, 1, __ATOMIC_SEQ_CST);
        shim_futex_wake(&g_shim.nparked);
        while (__atomic_load_n(&g_shim.ckpt_active, __ATOMIC_SEQ_CST) &&
               __atomic_load_n(&g_shim.release_gen, __ATOMIC_SEQ_CST) == gen)
            shim_futex_wait(&g_shim.release_gen, gen, -1);
    } else {
        /* Restored: a new kernel thread, started here by the restorer. */
        int rg = __atomic_load_n(&g_shim.resume_gen, __ATOMIC_SEQ_CST);
        quiesce_fixup_thread(s);
        __atomic_store_n(&s->state, SLOT_LANDED, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&g_shim.nlanded, 1, __ATOMIC_SEQ_CST);
        shim_futex_wake(&g_shim.nlanded);
        while (__atomic_load_n(&g_shim.resume_gen, __ATOMIC_SEQ_CST) == rg)
            shim_futex_wait(&g_shim.resume_gen, rg, -1);
    }
    errno = saved_errno;
}

/* Install the handler and allocate the slots. Returns 0 or -errno. */
int quiesce_init(void)
{
    g_shim.slots = mmap(NULL, sizeof(struct shim_slot) * CK_MAX_THREADS, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (g_shim.slots == MAP_FAILED)
        return -ENOMEM;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = ckpt_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK; /* Go: goroutine stacks are small */
    sigfillset(&sa.sa_mask);
    if (real_sigaction(g_shim.ckpt_signal, &sa, NULL) < 0)
        return -errno;
    /* Make sure the checkpoint signal is not blocked in this thread. */
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, g_shim.ckpt_signal);
    syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &one, NULL, 8);
    return 0;
}

/* Re-install the handler (after restore the exec'd restorer reset it). */
int quiesce_install_handler(void);
int quiesce_install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = ckpt_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK; /* Go: goroutine stacks are small */
    sigfillset(&sa.sa_mask);
    return real_sigaction(g_shim.ckpt_signal, &sa, NULL) < 0 ? -errno : 0;
}

static int was_signaled(pid_t tid)
{
    for (int i = 0; i < nsignaled; i++)
        if (signaled[i] == tid)
            return 1;
    return 0;
}

/* Signal every thread not yet signaled. Returns how many were new, or
 * -errno. Uses getdents64 on /proc/self/task: no malloc. */
static int signal_new_threads(char *err, size_t errlen)
{
    int dfd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errlen, "cannot open /proc/self/task: %s", strerror(errno));
        return -errno;
    }
    pid_t pid = shim_real_getpid(), me = shim_real_gettid();
    char buf[8192];
    int fresh = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] < '0' || d->d_name[0] > '9')
                continue;
            pid_t tid = (pid_t)strtol(d->d_name, NULL, 10);
            if (tid == me || was_signaled(tid))
                continue;
            if (nsignaled >= CK_MAX_THREADS) {
                close(dfd);
                snprintf(err, errlen, "more than %d threads", CK_MAX_THREADS);
                return -E2BIG;
            }
            if (syscall(SYS_tgkill, pid, tid, g_shim.ckpt_signal) == 0) {
                signaled[nsignaled++] = tid;
                fresh++;
            }
        }
    }
    close(dfd);
    return fresh;
}

static void thread_name(pid_t tid, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    if (shim_read_file(path, out, len) <= 0)
        snprintf(out, len, "?");
    out[strcspn(out, "\n")] = 0;
}

/* Park every thread but the caller. On failure every thread is released
 * and err says which thread did not stop. Returns 0 or -errno. */
int quiesce_stop_threads(char *err, size_t errlen)
{
    const char *t = getenv("CKSHIM_QUIESCE_TIMEOUT_MS");
    int64_t timeout = (t ? atoll(t) : 5000) * 1000000LL;
    nsignaled = 0;
    __atomic_store_n(&g_shim.nslots, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_shim.nparked, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_shim.ckpt_active, 1, __ATOMIC_SEQ_CST);
    int64_t deadline = shim_now_ns(CLOCK_MONOTONIC) + timeout;
    for (;;) {
        int r = signal_new_threads(err, errlen);
        if (r < 0) {
            quiesce_release();
            return r;
        }
        if (r == 0 && __atomic_load_n(&g_shim.nparked, __ATOMIC_SEQ_CST) >= nsignaled)
            break;
        /* Wait for the signaled ones, then look again for threads they
         * may have created before they stopped. */
        for (;;) {
            int np = __atomic_load_n(&g_shim.nparked, __ATOMIC_SEQ_CST);
            if (np >= nsignaled)
                break;
            int64_t left = deadline - shim_now_ns(CLOCK_MONOTONIC);
            if (left <= 0) {
                /* Name the first thread that did not park. Threads that
                 * exited meanwhile are not a problem. */
                for (int i = 0; i < nsignaled; i++) {
                    int found = 0;
                    for (int k = 0; k < g_shim.nslots && k < CK_MAX_THREADS; k++)
                        if (g_shim.slots[k].tid == signaled[i])
                            found = 1;
                    char p[64];
                    snprintf(p, sizeof p, "/proc/self/task/%d", signaled[i]);
                    if (!found && access(p, F_OK) == 0) {
                        char name[32];
                        thread_name(signaled[i], name, sizeof name);
                        snprintf(err, errlen,
                                 "thread %d (%s) did not stop within %lld ms: it blocks "
                                 "signal %d with a raw syscall or is stuck in the kernel",
                                 signaled[i], name, (long long)(timeout / 1000000),
                                 g_shim.ckpt_signal);
                        quiesce_release();
                        return -ETIMEDOUT;
                    }
                    if (!found && access(p, F_OK) != 0) {
                        /* gone: stop waiting for it */
                        signaled[i] = -1;
                    }
                }
                /* Every missing thread has exited: recount. */
                int live = 0;
                for (int i = 0; i < nsignaled; i++)
                    live += signaled[i] != -1;
                if (__atomic_load_n(&g_shim.nparked, __ATOMIC_SEQ_CST) >= live) {
                    int w = 0;
                    for (int i = 0; i < nsignaled; i++)
                        if (signaled[i] != -1)
                            signaled[w++] = signaled[i];
                    nsignaled = w;
                    break;
                }
                snprintf(err, errlen, "threads did not stop within %lld ms",
                         (long long)(timeout / 1000000));
                quiesce_release();
                return -ETIMEDOUT;
            }
            shim_futex_wait(&g_shim.nparked, np, left < 20000000 ? left : 20000000);
            /* A thread may exit after being signaled without parking. */
            for (int i = 0; i < nsignaled; i++) {
                char p[64];
                snprintf(p, sizeof p, "/proc/self/task/%d", signaled[i]);
                if (signaled[i] > 0 && access(p, F_OK) != 0) {
                    int found = 0;
                    for (int k = 0; k < g_shim.nslots && k < CK_MAX_THREADS; k++)
                        if (g_shim.slots[k].tid == signaled[i])
                            found = 1;
                    if (!found) {
                        signaled[i] = signaled[--nsignaled];
                        i--;
                    }
                }
            }
        }
    }
    return 0;
}

/* Let parked threads return to the program. */
void quiesce_release(void)
{
    __atomic_store_n(&g_shim.ckpt_active, 0, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&g_shim.release_gen, 1, __ATOMIC_SEQ_CST);
    shim_futex_wake(&g_shim.release_gen);
}

/* After restore: wait until every parked thread has landed. */
int quiesce_wait_landed(int64_t timeout_ns)
{
    int64_t deadline = shim_now_ns(CLOCK_MONOTONIC) + timeout_ns;
    for (;;) {
        int n = __atomic_load_n(&g_shim.nlanded, __ATOMIC_SEQ_CST);
        if (n >= g_shim.nslots)
            return 0;
        int64_t left = deadline - shim_now_ns(CLOCK_MONOTONIC);
        if (left <= 0)
            return -ETIMEDOUT;
        shim_futex_wait(&g_shim.nlanded, n, left);
    }
}

/* After restore: let every landed thread return into the program. */
void quiesce_resume_restored(void)
{
    __atomic_store_n(&g_shim.ckpt_active, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_shim.nlanded, 0, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&g_shim.resume_gen, 1, __ATOMIC_SEQ_CST);
    shim_futex_wake(&g_shim.resume_gen);
}

/* Robust mutexes the thread holds carry its old tid in their futex word;
 * the kernel only marks them OWNER_DIED at exit if the word holds the
 * current tid, so rewrite the owner of every entry on the robust list. */
static void fix_robust_owners(char *head_addr, pid_t old_tid, pid_t new_tid)
{
    struct rhead {
        void *next;
        long futex_offset;
        void *pending;
    } *head = (struct rhead *)head_addr;
    void *e = head->next;
    for (int n = 0; e && e != (void *)head && n < 4096; n++) {
        volatile uint32_t *w = (volatile uint32_t *)((char *)e + head->futex_offset);
        uint32_t v = *w;
        if ((v & 0x3fffffffu) == (uint32_t)old_tid)
            __atomic_compare_exchange_n(w, &v, (v & 0xc0000000u) | (uint32_t)new_tid, 0,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        e = *(void **)e;
    }
}

/* Repair what the kernel forgot about the calling thread, which was just
 * recreated by the restorer (see the file comment). */
void quiesce_fixup_thread(struct shim_slot *s)
{
    pid_t tid = shim_real_gettid();
    char *pd = (char *)s->pd;
    if (g_shim.tid_off > 0) {
        *(volatile int *)(pd + g_shim.tid_off) = tid;
        syscall(SYS_set_tid_address, pd + g_shim.tid_off);
    }
    if (g_shim.robust_off > 0) {
        fix_robust_owners(pd + g_shim.robust_off, s->tid, tid);
        syscall(SYS_set_robust_list, pd + g_shim.robust_off, 3 * sizeof(long));
    }
    if (g_shim.rseq_size) {
        struct rseq *rs = (struct rseq *)(s->fsbase + (uint64_t)g_shim.rseq_off);
        rs->rseq_cs = 0;
        syscall(SYS_rseq, rs, 32, 0, RSEQ_SIGNATURE);
    }
    if (!(s->ss.ss_flags & SS_DISABLE) && s->ss.ss_sp)
        sigaltstack(&s->ss, NULL);
    prctl(PR_SET_NAME, s->comm, 0, 0, 0);
    s->tid = tid;
}
