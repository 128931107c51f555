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
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "rawsys.h"
#include "shim.h"

static pid_t signaled[CK_MAX_THREADS];
static uint8_t strikes[CK_MAX_THREADS];  /* checks in a row it was seen blocking us */
static int nsignaled;
static volatile int park_target;          /* wake the manager when this many parked */

static uint64_t status_mask(const char *buf, const char *key);

struct shim_sigkeep shim_sigkeep[SHIM_MAX_SIGKEEP];
volatile int shim_nsigkeep;
/* The leader has parked (the process's signals are kept at capture). */
volatile int shim_leader_seen;

/* Keep the siginfo of the signals in MASK pending for the process (slot
 * -1, the leader does it) or for the calling thread (its slot): a POSIX
 * timer's SI_TIMER with its value and timer id, a sigqueue'd value, every
 * queued instance. Reading one means taking it (rt_sigtimedwait; nothing
 * waits here: every signal is blocked in the handler); it is queued again
 * at once, with the same siginfo, which the kernel accepts for any si_code
 * only from the leader to the process or from a thread to itself. The
 * restore queues them again the same way (restore.c). MASK leaves out
 * signals pending both for the thread and the process: the wait takes the
 * thread's first and the two could not be told apart. */
static void requeue_self(pid_t pid, pid_t tid, int slot, const siginfo_t *si)
{
    long r = slot < 0 ? syscall(SYS_rt_sigqueueinfo, pid, si->si_signo, si)
                      : syscall(SYS_rt_tgsigqueueinfo, pid, tid, si->si_signo, si);
    if (r < 0)
        syscall(slot < 0 ? SYS_kill : SYS_tgkill, pid, slot < 0 ? si->si_signo : tid,
                si->si_signo);
}

static void keep_siginfo(uint64_t mask, int slot)
{
    pid_t pid = shim_real_getpid(), tid = shim_real_gettid();
    struct timespec zero = {0, 0};
    for (int s = 1; s <= 64 && mask; s++) {
        uint64_t one = 1ULL << (s - 1);
        if (!(mask & one))
            continue;
        /* take every instance first, then queue them again in order */
        short taken[SHIM_MAX_SIGKEEP];
        int n = 0, extra = 0;
        siginfo_t si;
        while (syscall(SYS_rt_sigtimedwait, &one, &si, &zero, 8) == s) {
            int k = __atomic_fetch_add(&shim_nsigkeep, 1, __ATOMIC_SEQ_CST);
            if (k >= SHIM_MAX_SIGKEEP) {
                extra = 1; /* no room: the rest stays queued */
                break;
            }
            shim_sigkeep[k].slot = slot;
            shim_sigkeep[k].deferred = 0;
            shim_sigkeep[k].si = si;
            taken[n++] = (short)k;
        }
        for (int i = 0; i < n; i++) {
            requeue_self(pid, tid, slot, &shim_sigkeep[taken[i]].si);
            /* the image keeps the sender or child as the program knows it */
            siginfo_t *ks = &shim_sigkeep[taken[i]].si;
            if (shim_si_has_pid(ks))
                ks->si_pid = shim_pid_virt(ks->si_pid);
        }
        if (extra)
            requeue_self(pid, tid, slot, &si);
    }
}

/* The signals pending for the process, kept at capture by the manager
 * (every thread of the program is parked; the manager's own queue holds
 * nothing of the program's): every queued instance, in the kernel's
 * order, with its siginfo, as keep_siginfo does for a thread. Not at the
 * leader's park: in a tree, a process parks before its children, which
 * may still send it signals (a sigqueue or kill to their parent, a
 * SIGCHLD) until they park themselves; their images say those were sent,
 * so the parent's must hold them (progs/tree_late_signals). Queued again
 * at once where the kernel lets the manager (a negative si_code:
 * sigqueue's, a timer's, a message queue's, an AIO's); the kernel's
 * codes (kill's SI_USER, SIGCHLD's CLD_*, SI_KERNEL) only the leader may
 * queue for the process, so a signal with one of those is queued again,
 * all its instances in order, by the leader as it is released
 * (quiesce_requeue_owed), before it returns to the program. Left out:
 * SIGCONT (coord's, continuing a stopped process for the checkpoint) and
 * signals pending in the manager's own queue too (they cannot be told
 * apart). Without a parked leader (its main thread has exited) nothing
 * is taken: a pending SIGCHLD is raised again with kill at restore.
 * Returns the set of signals pending for the process in the image. */
static siginfo_t owed[SHIM_MAX_SIGKEEP];
static volatile int nowed;

uint64_t quiesce_keep_shared(void)
{
    char buf[4096];
    if (shim_read_file("/proc/thread-self/status", buf, sizeof buf) <= 0)
        return 0;
    uint64_t ours = 1ULL << (g_shim.ckpt_signal - 1);
    uint64_t shared = status_mask(buf, "ShdPnd:") & ~ours;
    if (!shim_leader_seen)
        return shared & (1ULL << (SIGCHLD - 1));
    uint64_t set = shared & ~status_mask(buf, "SigPnd:") & ~(1ULL << (SIGCONT - 1));
    pid_t pid = shim_real_getpid();
    struct timespec zero = {0, 0};
    uint64_t kept = 0;
    for (int s = 1; s <= 64 && set; s++) {
        uint64_t one = 1ULL << (s - 1);
        if (!(set & one))
            continue;
        siginfo_t got[SHIM_MAX_SIGKEEP];
        int n = 0, leader_only = 0;
        while (n < SHIM_MAX_SIGKEEP && syscall(SYS_rt_sigtimedwait, &one, &got[n], &zero, 8) == s) {
            leader_only |= got[n].si_code >= 0 || got[n].si_code == SI_TKILL;
            n++;
        }
        for (int i = 0; i < n; i++) {
            siginfo_t *si = &got[i];
            if (!leader_only)
                requeue_self(pid, pid, -1, si); /* (rt_sigqueueinfo: allowed) */
            else if (nowed < SHIM_MAX_SIGKEEP)
                owed[nowed++] = *si;
            else
                syscall(SYS_kill, pid, s); /* no room: raised again, without siginfo */
            int k = __atomic_fetch_add(&shim_nsigkeep, 1, __ATOMIC_SEQ_CST);
            if (k >= SHIM_MAX_SIGKEEP)
                continue; /* the image has the signal, raised with kill at restore */
            shim_sigkeep[k].slot = -1;
            shim_sigkeep[k].deferred = 0;
            shim_sigkeep[k].si = *si;
            if (shim_si_has_pid(si))
                shim_sigkeep[k].si.si_pid = shim_pid_virt(si->si_pid);
        }
        if (n)
            kept |= one;
    }
    return kept;
}

/* The leader, released: queue again the process's signals the manager
 * took that only the leader may queue (above). */
static void quiesce_requeue_owed(void)
{
    pid_t pid = shim_real_getpid();
    int n = nowed;
    for (int i = 0; i < n; i++)
        requeue_self(pid, pid, -1, &owed[i]);
    nowed = 0;
}

/* Signals pending for the calling thread alone, without ours. Every signal
 * is blocked in the handler, so rt_sigpending shows everything pending
 * (the thread's and the process's); only when that is not empty is
 * /proc asked which are the thread's own (reading it for each of 500
 * threads while the program is paused cost 15 ms). */
static uint64_t own_pending(int slot)
{
    uint64_t set = 0, ours = 1ULL << (g_shim.ckpt_signal - 1);
    int leader = shim_real_gettid() == shim_real_getpid();
    if (leader)
        shim_leader_seen = 1;
    if (syscall(SYS_rt_sigpending, &set, 8) < 0 || !(set & ~ours))
        return 0;
    char buf[4096];
    if (shim_read_file("/proc/thread-self/status", buf, sizeof buf) <= 0)
        return 0;
    uint64_t mine = status_mask(buf, "SigPnd:") & ~ours;
    uint64_t shared = status_mask(buf, "ShdPnd:") & ~ours;
    keep_siginfo(mine & ~shared, slot);
    if (leader)
        shim_leader_seen = 1; /* the process's own: at capture (quiesce_keep_shared) */
    return mine;
}

/* coord's hold of a stopped process it continued (ckpt_handler): until
 * the checkpoint parks the thread, coord's request ends without a park
 * (quiesce_end_request), or 5 s passed without a request. Then coord is
 * gone (killed between its SIGCONT and its request) or far too slow: the
 * process was stopped when it came, so the first thread whose hold runs
 * out stops it again (SIGSTOP: the signal it was stopped by is coord's to
 * know) before any thread leaves, and the threads go on once something
 * continues it. In the handler
 * (IN_HANDLER, every signal blocked) the park is the manager's signal,
 * pending here: the hold ends only once it is, so the thread parks as
 * the handler returns (ckpt_active alone would let it run the program
 * until the signal comes). Outside it (a child stopped before its
 * manager ran) the signal is taken during the wait: the hold ends once
 * the park is over. */
void quiesce_hold(int in_handler)
{
    int64_t end = shim_now_ns(CLOCK_MONOTONIC) + 5000000000LL;
    int gen = __atomic_load_n(&g_shim.hold_gen, __ATOMIC_SEQ_CST);
    int rel = __atomic_load_n(&g_shim.release_gen, __ATOMIC_SEQ_CST);
    int res = __atomic_load_n(&g_shim.resume_gen, __ATOMIC_SEQ_CST);
    uint64_t park = 1ULL << (g_shim.ckpt_signal - 1);
    /* a stop signal (blocked here) ends it too: coord stopped the process
     * again without asking its shim (the tree changed first), and the
     * signal is taken as the handler returns, before the program runs */
    uint64_t stops = 1ULL << (SIGTSTP - 1) | 1ULL << (SIGTTIN - 1) | 1ULL << (SIGTTOU - 1);
    struct timespec ms = {0, 1000000};
    /* A SIGCONT that comes during the hold (blocked here, so it waits)
     * says the process was stopped and continued since: coord gave up and
     * stopped it (SIGSTOP, which no mask holds back), then its parent or
     * the user continued it, or coord continued it again for its next
     * try, whose own signal waits behind this handler. The hold is over
     * then, without a stop of its own. Coord's first SIGCONT, if it is
     * still pending, is taken now (not the program's to see). */
    uint64_t cont = 1ULL << (SIGCONT - 1);
    if (in_handler) {
        sigset_t c;
        sigemptyset(&c);
        sigaddset(&c, SIGCONT);
        struct timespec zero = {0, 0};
        while (syscall(SYS_rt_sigtimedwait, &c, NULL, &zero, 8) == SIGCONT)
            ;
    }
    /* (a thread inside fork lets go of the lock its manager needs to
     * take coord's request while it is held here) */
    int dropped = shim_fork_lock_drop();
    /* (the 5 s count only while no request of coord's is served: once
     * one came for this stopped process, the hold lasts until its end,
     * however long the tree's preparations take) */
    int timed_out = 0;
    while (__atomic_load_n(&g_shim.hold_gen, __ATOMIC_SEQ_CST) == gen) {
        /* parked here (outside the handler) and restored: over */
        if (__atomic_load_n(&g_shim.resume_gen, __ATOMIC_SEQ_CST) != res)
            break;
        if (shim_now_ns(CLOCK_MONOTONIC) >= end &&
            !__atomic_load_n(&g_shim.release_stop, __ATOMIC_SEQ_CST)) {
            timed_out = 1;
            break;
        }
        uint64_t set = 0;
        if (in_handler && syscall(SYS_rt_sigpending, &set, 8) == 0 && (set & (stops | cont))) {
            /* for every held thread (the first to go takes the signal,
             * the others would not see it pending) */
            __atomic_compare_exchange_n(&g_shim.hold_gen, &gen, gen + 1, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST);
            break;
        }
        if (in_handler && __atomic_load_n(&g_shim.ckpt_active, __ATOMIC_SEQ_CST) &&
            (set & park))
            break;
        if (!in_handler && __atomic_load_n(&g_shim.release_gen, __ATOMIC_SEQ_CST) != rel)
            break;
        syscall(SYS_nanosleep, &ms, NULL);
    }
    if (timed_out) {
        /* no request: the one thread that ends this hold (hold_gen) stops
         * the process; the count keeps every other thread here until
         * that stop has come and gone (the stop lands as kill returns) */
        __atomic_fetch_add(&g_shim.hold_stopping, 1, __ATOMIC_SEQ_CST);
        if (__atomic_compare_exchange_n(&g_shim.hold_gen, &gen, gen + 1, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            syscall(SYS_kill, shim_real_getpid(), SIGSTOP);
        __atomic_fetch_sub(&g_shim.hold_stopping, 1, __ATOMIC_SEQ_CST);
    }
    while (__atomic_load_n(&g_shim.hold_stopping, __ATOMIC_SEQ_CST) > 0)
        syscall(SYS_nanosleep, &ms, NULL);
    if (dropped)
        shim_fork_lock_take();
}

/* Copy LEN bytes of our own memory at ADDR to BUF without faulting
 * (process_vm_readv of ourselves: an unmapped or unreadable address
 * fails instead). Raw system calls only, for foreign_tls. Returns 1 if
 * all of it was read. */
__attribute__((no_stack_protector)) static int read_own(void *buf, const void *addr,
                                                        size_t len)
{
    struct iovec lv = {buf, len}, rv = {(void *)addr, len};
    long pid = ck_sys6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    return addr && ck_sys6(SYS_process_vm_readv, pid, (long)&lv, 1, (long)&rv, 1, 0) == (long)len;
}

/* Does the calling thread run on TLS that is not a glibc thread's? A raw
 * clone that set its own FS base (Go's runtime in a program linked
 * without runtime/cgo makes every thread so): there errno, the shim's TLS
 * and pthread_self() name memory of the program's, which a read may fault
 * on and a write would corrupt. glibc's thread control block points to
 * itself (tcb and self, at 0 and 16). Raw system calls only (no errno);
 * the words are read without faulting. No stack protector: its canary
 * is read through FS too. */
__attribute__((no_stack_protector)) static int foreign_tls(void)
{
    uint64_t fs = 0, w[3] = {0, 0, 0};
    if (ck_sys6(SYS_arch_prctl, ARCH_GET_FS, (long)&fs, 0, 0, 0, 0) < 0 || !fs)
        return 1;
    if (!read_own(w, (void *)fs, sizeof w))
        return 1;
    return w[0] != fs || w[2] != fs;
}

/* Is the interrupted thread at the first instruction of a handler of the
 * program's, whose frame the kernel made just before ours (two signals
 * delivered as one call returned)? Then the word at its stack pointer is
 * the restorer address, as at the top of our own frame (ret). Read
 * without faulting. */
static int app_handler_below(void *ucv, void *ret)
{
    const ucontext_t *uc = ucv;
    uint64_t top = 0;
    return read_own(&top, (void *)(uintptr_t)uc->uc_mcontext.gregs[REG_RSP], sizeof top) &&
           top == (uint64_t)(uintptr_t)ret;
}

/* Will a signal with a handler of the program's be delivered as ours
 * returns (pending, and not blocked in the mask sigreturn puts back)? */
static int app_signal_due(void *ucv)
{
    const ucontext_t *uc = ucv;
    uint64_t pend = 0, mask;
    memcpy(&mask, &uc->uc_sigmask, sizeof mask);
    if (syscall(SYS_rt_sigpending, &pend, 8) < 0)
        return 0;
    pend &= ~mask & ~(1ULL << (g_shim.ckpt_signal - 1));
    for (int sig = 1; sig <= 64 && pend; sig++) {
        struct sigaction a;
        if (!(pend & (1ULL << (sig - 1))) || real_sigaction(sig, NULL, &a) < 0)
            continue;
        if (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN)
            return 1;
    }
    return 0;
}

__attribute__((no_stack_protector)) static void ckpt_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    if (foreign_tls()) {
        /* Such a thread cannot park (nor be held): it is named to the
         * manager, which refuses the checkpoint (wait_parked), and goes on. */
        if (__atomic_load_n(&g_shim.ckpt_active, __ATOMIC_SEQ_CST) && si->si_code == SI_TKILL &&
            si->si_pid == (pid_t)ck_sys6(SYS_getpid, 0, 0, 0, 0, 0, 0)) {
            int zero = 0;
            __atomic_compare_exchange_n(&g_shim.foreign_tid, &zero,
                                        (int)ck_sys6(SYS_gettid, 0, 0, 0, 0, 0, 0), 0,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
            ck_sys6(SYS_futex, (long)&g_shim.nparked, FUTEX_WAKE, 1, 0, 0, 0);
        }
        return;
    }
    int saved_errno = errno;
    if (si->si_code == SI_QUEUE && g_shim.call_mode && shim_real_gettid() == g_shim.manager_tid) {
        /* coord's call (common/ctlproto.h, CK_CALL_COMM): queued; the
         * manager connects to each when its wait ends (shim.c). One
         * that finds the queue full is not answered (its coord gives up
         * after its time-out). */
        uint32_t h = __atomic_load_n(&g_shim.call_head, __ATOMIC_SEQ_CST);
        if (h - __atomic_load_n(&g_shim.call_tail, __ATOMIC_SEQ_CST) < CK_CALL_QUEUE) {
            g_shim.call_token[h % CK_CALL_QUEUE] = (uint32_t)si->si_value.sival_int;
            __atomic_store_n(&g_shim.call_head, h + 1, __ATOMIC_SEQ_CST);
        }
        errno = saved_errno;
        return;
    }
    if (!__atomic_load_n(&g_shim.ckpt_active, __ATOMIC_SEQ_CST) && si->si_code == SI_TKILL &&
        si->si_pid != shim_real_getpid() && shim_real_gettid() != g_shim.manager_tid) {
        /* coord continues a stopped process of a tree for a checkpoint
         * (coordinator/checkpoint.c): it sent this to every thread first,
         * so that none runs the program before the manager parks it.
         * Held until the checkpoint starts (then the manager's signal,
         * blocked here, is taken as this returns), at most 5 s. Only
         * once its manager runs: a child stopped before it started it
         * must go on to start it. */
        if (g_shim.manager_pid == shim_real_getpid())
            quiesce_hold(1);
        else
            g_shim.hold_requested = 1;
        errno = saved_errno;
        return;
    }
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
    /* the address the kernel clears when the thread exits: glibc's tid
     * field for its threads, the word a raw clone(CLONE_CHILD_CLEARTID)
     * gave (such a thread may share the main thread's TLS, and pd) */
    unsigned long ct = 0;
    s->ctid_known = prctl(PR_GET_TID_ADDRESS, &ct, 0, 0, 0) == 0;
    s->ctid = ct;
    /* read without faulting: the word may be anywhere the thread said */
    s->ctid_read = read_own(&s->ctid_val, (void *)ct, sizeof(int));
    syscall(SYS_arch_prctl, ARCH_GET_FS, &s->fsbase);
    sigaltstack(NULL, &s->ss);
    prctl(PR_GET_NAME, s->comm, 0, 0, 0);
    pattr_park(s);
    netrec_park(ucv);
    s->sigpending = own_pending(idx);
    /* A call cut short by the checkpoint alone is made again (waits.c);
     * one cut short by a signal of the program's too must end with EINTR,
     * as it would have (make waits in pselect for SIGCHLD: a child that
     * ended in the same moment as a checkpoint left it waiting forever). */
    int app_sig = app_handler_below(ucv, __builtin_return_address(0));
    if (!app_sig)
        shim_tls.ckpt_seq++;
    shim_tls.park_mono_ns = shim_now_ns(CLOCK_MONOTONIC);

    if (shim_ctx_save(&s->ctx) == 0) {
        __atomic_store_n(&s->state, SLOT_PARKED, __ATOMIC_SEQ_CST);
        int gen = __atomic_load_n(&g_shim.release_gen, __ATOMIC_SEQ_CST);
        if (__atomic_add_fetch(&g_shim.nparked, 1, __ATOMIC_SEQ_CST) >=
            __atomic_load_n(&park_target, __ATOMIC_SEQ_CST))
            shim_futex_wake(&g_shim.nparked);
        while (__atomic_load_n(&g_shim.ckpt_active, __ATOMIC_SEQ_CST) &&
               __atomic_load_n(&g_shim.release_gen, __ATOMIC_SEQ_CST) == gen)
            shim_futex_wait(&g_shim.release_gen, gen, -1);
        if (s->tid == shim_real_getpid() && nowed)
            quiesce_requeue_owed();
    } else {
        /* Restored: a new kernel thread, started here by the restorer. */
        int rg = __atomic_load_n(&g_shim.resume_gen, __ATOMIC_SEQ_CST);
        nowed = 0; /* the old life's: queued again from the image (restore.c) */
        quiesce_fixup_thread(s);
        __atomic_store_n(&s->state, SLOT_LANDED, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&g_shim.nlanded, 1, __ATOMIC_SEQ_CST);
        shim_futex_wake(&g_shim.nlanded);
        while (__atomic_load_n(&g_shim.resume_gen, __ATOMIC_SEQ_CST) == rg)
            shim_futex_wait(&g_shim.resume_gen, rg, -1);
        quiesce_requeue_deferred((int)(s - g_shim.slots));
    }
    if (!app_sig && app_signal_due(ucv))
        shim_tls.ckpt_seq--;
    errno = saved_errno;
}

/* Kept signals only their own thread may queue again with their siginfo
 * (a kernel-made si_code such as SIGCHLD's, SI_USER, SI_TKILL: the kernel
 * takes those from a thread to itself, or from the leader to its
 * process), queued by the thread of SLOT once restored (restore.c:
 * requeue_signal left them). */
void quiesce_requeue_deferred(int slot)
{
    pid_t pid = shim_real_getpid(), tid = shim_real_gettid();
    for (int i = 0; i < shim_nsigkeep && i < SHIM_MAX_SIGKEEP; i++) {
        struct shim_sigkeep *k = &shim_sigkeep[i];
        if (!k->deferred || !(k->slot == slot || (k->slot < 0 && tid == pid)))
            continue;
        k->deferred = 0;
        siginfo_t si = k->si;
        if (si.si_signo == SIGCHLD && si.si_code > 0 && si.si_pid > 0)
            si.si_pid = shim_pid_real(si.si_pid); /* the trampoline shows the old one */
        requeue_self(pid, tid, k->slot, &si);
    }
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
                strikes[nsignaled] = 0;
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

/* The hexadecimal signal mask after KEY in a /proc status text, or 0. */
static uint64_t status_mask(const char *buf, const char *key)
{
    const char *p = strstr(buf, key);
    return p ? strtoull(p + strlen(key), NULL, 16) : 0;
}

/* What /proc/self/task/TID/status says about a thread that has not parked:
 * 0 gone (or exiting), 1 it may still park, 2 it holds the checkpoint
 * signal pending and blocked while it sleeps. */
enum { T_GONE, T_WAIT, T_BLOCKS };
static int missing_state(pid_t tid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    if (shim_read_file(path, buf, sizeof buf) <= 0)
        return T_GONE;
    const char *st = strstr(buf, "State:");
    char state = st ? st[6 + strspn(st + 6, " \t")] : '?';
    if (state == 'Z' || state == 'X')
        return T_GONE;
    /* Our signal is still pending, so the thread is not in our handler
     * (which also runs with every signal blocked): it blocks the signal. */
    uint64_t bit = 1ULL << (g_shim.ckpt_signal - 1);
    if ((status_mask(buf, "SigBlk:") & bit) && (status_mask(buf, "SigPnd:") & bit) &&
        (state == 'S' || state == 'D'))
        return T_BLOCKS;
    return T_WAIT;
}

static int is_parked(pid_t tid)
{
    int n = __atomic_load_n(&g_shim.nslots, __ATOMIC_SEQ_CST);
    for (int k = 0; k < n && k < CK_MAX_THREADS; k++)
        if (g_shim.slots[k].tid == tid)
            return 1;
    return 0;
}

/* Look at the signaled threads that have not parked: forget those that
 * exited; fail at once for one that has blocked our signal and slept with
 * it pending for STRIKES checks in a row (a raw rt_sigprocmask, out of the
 * wrappers' reach: it can never park; a short-lived block, as in
 * pthread_create, clears between checks); at the deadline fail for any. */
#define STRIKES 3
#define CHECK_NS 50000000LL
static int check_missing(int final, int64_t timeout, char *err, size_t errlen)
{
    for (int i = 0; i < nsignaled; i++) {
        if (is_parked(signaled[i]))
            continue;
        int st = missing_state(signaled[i]);
        if (st == T_GONE && !is_parked(signaled[i])) {
            signaled[i] = signaled[--nsignaled];
            strikes[i] = strikes[nsignaled];
            i--;
            continue;
        }
        /* (a thread in an exec blocks it on purpose, execguard.c: it is
         * gone with its process in a moment, or parks if the exec fails) */
        if (st == T_BLOCKS && signaled[i] == __atomic_load_n(&g_shim.exec_tid, __ATOMIC_SEQ_CST))
            st = T_WAIT;
        strikes[i] = st == T_BLOCKS ? strikes[i] + 1 : 0;
        if (strikes[i] >= STRIKES || final) {
            char name[32];
            thread_name(signaled[i], name, sizeof name);
            if (strikes[i] >= STRIKES)
                snprintf(err, errlen,
                         "thread %d (%s) did not stop: it blocks signal %d, the checkpoint "
                         "signal, with a raw system call (out of the shim's reach) and sleeps",
                         signaled[i], name, g_shim.ckpt_signal);
            else
                snprintf(err, errlen,
                         "thread %d (%s) did not stop within %lld ms: it blocks signal %d "
                         "with a raw syscall or is stuck in the kernel",
                         signaled[i], name, (long long)(timeout / 1000000), g_shim.ckpt_signal);
            return -ETIMEDOUT;
        }
    }
    return 0;
}

/* Wait until every signaled thread has parked. The handler wakes us only
 * when the last one parks (park_target), so 500 threads cost one wake-up,
 * not 500; the threads still missing are examined every CHECK_NS. */
static int wait_parked(int64_t deadline, int64_t timeout, char *err, size_t errlen)
{
    int64_t next_check = shim_now_ns(CLOCK_MONOTONIC) + CHECK_NS;
    __atomic_store_n(&park_target, nsignaled, __ATOMIC_SEQ_CST);
    for (;;) {
        int np = __atomic_load_n(&g_shim.nparked, __ATOMIC_SEQ_CST);
        pid_t ft = __atomic_load_n(&g_shim.foreign_tid, __ATOMIC_SEQ_CST);
        if (ft) {
            char name[32];
            thread_name(ft, name, sizeof name);
            snprintf(err, errlen,
                     "thread %d (%s) runs on thread-local storage of its own, not the C "
                     "library's (a raw clone: a Go program linked without runtime/cgo makes "
                     "every thread so); ckshim can only stop threads made by pthread_create "
                     "(a Go program: add import _ \"runtime/cgo\" and build with CGO_ENABLED=1)",
                     (int)ft, name);
            return -ENOTSUP;
        }
        if (np >= nsignaled)
            return 0;
        int64_t now = shim_now_ns(CLOCK_MONOTONIC);
        if (now >= next_check || now >= deadline) {
            int r = check_missing(now >= deadline, timeout, err, errlen);
            if (r < 0)
                return r;
            __atomic_store_n(&park_target, nsignaled, __ATOMIC_SEQ_CST);
            next_check = now + CHECK_NS;
            continue;
        }
        int64_t until = next_check < deadline ? next_check : deadline;
        shim_futex_wait(&g_shim.nparked, np, until - now);
    }
}

/* Park every thread but the caller: signal them all at once, wait, then
 * look again for threads they may have created before they stopped. On
 * failure every thread is released and err says which thread did not
 * stop. Returns 0 or -errno. */
int quiesce_stop_threads(char *err, size_t errlen)
{
    const char *t = shim_env("CKSHIM_QUIESCE_TIMEOUT_MS");
    int64_t timeout = (t ? atoll(t) : 5000) * 1000000LL;
    nsignaled = 0;
    shim_nsigkeep = 0;
    shim_leader_seen = 0;
    __atomic_store_n(&park_target, INT_MAX, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_shim.nslots, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_shim.nparked, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_shim.foreign_tid, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_shim.ckpt_active, 1, __ATOMIC_SEQ_CST);
    int64_t deadline = shim_now_ns(CLOCK_MONOTONIC) + timeout;
    for (;;) {
        int r = signal_new_threads(err, errlen);
        if (r == 0 && __atomic_load_n(&g_shim.nparked, __ATOMIC_SEQ_CST) >= nsignaled)
            return 0;
        if (r >= 0)
            r = wait_parked(deadline, timeout, err, errlen);
        if (r < 0) {
            quiesce_release();
            return r;
        }
    }
}

/* Let parked threads return to the program. */
void quiesce_release(void)
{
    if (g_shim.release_stop) {
        g_shim.release_deferred = 1; /* quiesce_end_request: after the stop */
        return;
    }
    pattr_unpark();
    __atomic_store_n(&g_shim.ckpt_active, 0, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&g_shim.release_gen, 1, __ATOMIC_SEQ_CST);
    shim_futex_wake(&g_shim.release_gen);
}

static volatile sig_atomic_t continued;

static void on_cont(int sig)
{
    (void)sig;
    continued = 1;
}

/* Stop the process with SIG, from the manager, while every thread of the
 * program is parked or held with all signals blocked (so the manager
 * takes it); returns once it is continued. SIGTSTP, SIGTTIN and SIGTTOU
 * are discarded by the kernel in an orphaned process group (a restored
 * root's, once --detach's coord is gone): a SIGCONT handler of ours tells
 * whether it stopped, else SIGSTOP does. A handler of the program for
 * SIGCONT gets its SIGCONT once its threads run (queued again here). */
void quiesce_stop_self(int sig)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cont;
    sigfillset(&sa.sa_mask);
    real_sigaction(SIGCONT, &sa, &old);
    /* A SIGCONT still pending (coord's, which continued the process for
     * this checkpoint, held back by every thread's mask while the
     * program's handler was set) is taken here, not by that handler on
     * this thread, and is not the continue waited for below. */
    sigset_t one, prev;
    sigemptyset(&one);
    sigaddset(&one, SIGCONT);
    struct timespec zero = {0, 0};
    int had = 0;
    while (syscall(SYS_rt_sigtimedwait, &one, NULL, &zero, 8) == SIGCONT)
        had = 1;
    sigaddset(&one, sig);
    continued = 0;
    /* (raw: the shim's pthread_sigmask would unblock the checkpoint
     * signal in the manager, which takes it only in its wait) */
    syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &one, &prev, 8);
    /* to this thread: a stop sent to the process is taken by whichever
     * thread the kernel wakes for it (most often the main one, parked),
     * and this one would go on (to the release of the parked threads)
     * until that one had stopped the group; taken here, the group stops
     * before this call returns to us (helper-56) */
    pid_t me = shim_real_getpid(), self = shim_real_gettid();
    syscall(SYS_tgkill, me, self, sig);
    if (!continued && sig != SIGSTOP)
        syscall(SYS_tgkill, me, self, SIGSTOP);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &prev, NULL, 8);
    real_sigaction(SIGCONT, &old, NULL);
    if ((continued || had) && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)
        syscall(SYS_kill, shim_real_getpid(), SIGCONT);
}

/* A request of coord's is over (ENDED: the program ends now, --kill). A
 * stopped process of a tree is stopped again first (the request's
 * stop_sig), then the threads a release left parked go, and threads that
 * coord's hold keeps (a checkpoint that never parked) are let go. */
void quiesce_end_request(int ended)
{
    int sig = g_shim.release_stop;
    if (sig > 0 && !ended)
        quiesce_stop_self(sig);
    /* Holds end before the parked threads go: the SIGCONT that ended the
     * stop may be coord's for the next checkpoint, whose hold a thread
     * leaving the park enters at once, and must keep. (The stop kept
     * held threads held; the hold ends before release_stop is cleared,
     * so that none finds its 5 s gone by and no request served, and
     * stops the process that was just continued.) */
    __atomic_fetch_add(&g_shim.hold_gen, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_shim.release_stop, 0, __ATOMIC_SEQ_CST);
    if (g_shim.release_deferred) {
        g_shim.release_deferred = 0;
        if (!ended)
            quiesce_release();
    }
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

/* The dynamic loader takes its own recursive mutexes (dlopen, dlclose,
 * dl_iterate_phdr, dlsym) with calls the shim cannot wrap (mutexfix.c):
 * one a thread held at the checkpoint (parked inside dlopen) names its
 * old tid as owner, so its unlock failed and every later dlopen of the
 * program waited for ever. Recursive mutexes in _rtld_global owned by
 * the old tid get the new one. */
static void fix_loader_locks(pid_t old_tid, pid_t new_tid)
{
    char *g = g_shim.rtld_global;
    for (size_t off = 0; g && off + sizeof(pthread_mutex_t) <= g_shim.rtld_global_size;
         off += 8) {
        pthread_mutex_t *m = (pthread_mutex_t *)(g + off);
        int owner = old_tid;
        if (m->__data.__owner == old_tid && (m->__data.__kind & 0x7f) == 1 &&
            m->__data.__lock != 0 && m->__data.__count >= 1)
            __atomic_compare_exchange_n(&m->__data.__owner, &owner, new_tid, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST);
    }
}

/* Repair what the kernel forgot about the calling thread, which was just
 * recreated by the restorer (see the file comment). */
void quiesce_fixup_thread(struct shim_slot *s)
{
    pid_t tid = shim_real_gettid();
    char *pd = (char *)s->pd;
    /* A thread of glibc's owns pd; a raw clone thread may be using another
     * thread's TLS: its own clear-tid word gets back the value it had (the
     * restorer's CLONE_PARENT_SETTID wrote the new tid there), and pd is
     * left alone. */
    int own_pd = !s->ctid_known || (g_shim.tid_off > 0 && s->ctid == s->pd + g_shim.tid_off);
    if (!own_pd && s->ctid) {
        if (s->ctid_read)
            *(volatile int *)s->ctid = s->ctid_val;
        syscall(SYS_set_tid_address, s->ctid);
    }
    if (g_shim.tid_off > 0 && own_pd) {
        *(volatile int *)(pd + g_shim.tid_off) = tid;
        syscall(SYS_set_tid_address, pd + g_shim.tid_off);
    }
    if (s->tid != tid)
        fix_loader_locks(s->tid, tid);
    if (g_shim.robust_off > 0 && own_pd) {
        fix_robust_owners(pd + g_shim.robust_off, s->tid, tid);
        syscall(SYS_set_robust_list, pd + g_shim.robust_off, 3 * sizeof(long));
    }
    pattr_rseq_restore(s->fsbase);
    if (!(s->ss.ss_flags & SS_DISABLE) && s->ss.ss_sp)
        sigaltstack(&s->ss, NULL);
    prctl(PR_SET_NAME, s->comm, 0, 0, 0);
    pattr_thread_restore(s);
    shim_mutex_remember_tid(s->tid, tid);
    s->tid = tid;
    /* Restored in a pid namespace of its own (coord restore, pidns): the
     * restorer ran with the namespace's capabilities to give threads
     * their tids; the program had none (it was exec'd by an ordinary uid
     * there), and credentials are per thread. */
    if (g_shim.rinfo.drop_caps && s >= g_shim.slots && s < g_shim.slots + CK_MAX_THREADS)
        ck_caps(-1); /* the manager's own (not a slot) drops them in restore_finish */
}
