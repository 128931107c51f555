/* wrappers.c - libc functions the shim interposes.
 *
 * - Signals: the checkpoint signal stays ours. A program that installs a
 *   handler for it gets a shadow disposition (reported back faithfully,
 *   saved in the image, never installed); masks it blocks or waits for
 *   have it removed.
 * - Ids: getpid/gettid return what the program saw before a restore, and
 *   kill/tgkill translate those ids back to the real ones.
 * - Sleeps: a sleep interrupted only by the checkpoint signal goes on for
 *   the time that was left, so the checkpoint (or a restore in between)
 *   does not cut it short.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rawsys.h"
#include "shim.h"

int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static int (*real_sigprocmask)(int, const sigset_t *, sigset_t *);
static int (*real_pthread_sigmask)(int, const sigset_t *, sigset_t *);
static int (*real_nanosleep)(const struct timespec *, struct timespec *);
static int (*real_clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
static int (*real_sigsuspend)(const sigset_t *);
static int (*real_sigwait)(const sigset_t *, int *);
static int (*real_sigwaitinfo)(const sigset_t *, siginfo_t *);
static int (*real_sigtimedwait)(const sigset_t *, siginfo_t *, const struct timespec *);

static void chld_info(siginfo_t *si);
static int chld_sigaction(const struct sigaction *act, struct sigaction *old);

/* The program's own disposition for the checkpoint signal (kernel layout). */
struct ck_sigaction shim_app_ckpt_action;

int wrappers_init(void)
{
    SHIM_RESOLVE(real_sigaction, "sigaction");
    SHIM_RESOLVE(real_sigprocmask, "sigprocmask");
    SHIM_RESOLVE(real_pthread_sigmask, "pthread_sigmask");
    SHIM_RESOLVE(real_nanosleep, "nanosleep");
    SHIM_RESOLVE(real_clock_nanosleep, "clock_nanosleep");
    SHIM_RESOLVE(real_sigsuspend, "sigsuspend");
    SHIM_RESOLVE(real_sigwait, "sigwait");
    SHIM_RESOLVE(real_sigwaitinfo, "sigwaitinfo");
    SHIM_RESOLVE(real_sigtimedwait, "sigtimedwait");
    return real_sigaction && real_sigprocmask && real_pthread_sigmask ? 0 : -ENOSYS;
}

static int ours(int sig)
{
    return g_shim.initialized && sig == g_shim.ckpt_signal;
}

/* A copy of set without the checkpoint signal (and without SIGSYS while
 * the seccomp filter is on: a trap while SIGSYS is blocked kills the
 * process); returns set itself when there is nothing to remove. */
static const sigset_t *strip(const sigset_t *set, sigset_t *tmp)
{
    int sys = seccomp_shim_active() && set && sigismember(set, SIGSYS);
    if (!set || !g_shim.initialized || (!sigismember(set, g_shim.ckpt_signal) && !sys))
        return set;
    *tmp = *set;
    sigdelset(tmp, g_shim.ckpt_signal);
    if (sys)
        sigdelset(tmp, SIGSYS);
    return tmp;
}

const sigset_t *shim_strip_mask(const sigset_t *set, sigset_t *tmp)
{
    return strip(set, tmp);
}

/* sigaction on a signal the shim keeps for itself: read and write the
 * program's shadow disposition instead of the kernel's. */
static int shadow_sigaction(struct ck_sigaction *s, const struct sigaction *act,
                            struct sigaction *old)
{
    struct ck_sigaction prev = *s;
    if (act) {
        s->handler = (uint64_t)act->sa_handler;
        s->flags = (uint64_t)(unsigned)act->sa_flags;
        memcpy(&s->mask, &act->sa_mask, sizeof s->mask);
    }
    if (old) {
        memset(old, 0, sizeof *old);
        old->sa_handler = (void (*)(int))prev.handler;
        old->sa_flags = (int)prev.flags;
        memcpy(&old->sa_mask, &prev.mask, sizeof prev.mask);
    }
    return 0;
}

SHIM_API int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    SHIM_RESOLVE(real_sigaction, "sigaction");
    if (g_shim.initialized && seed_is_trigger(sig) && seed_is_live(sig))
        return real_sigaction(sig, act, old);
    if (g_shim.initialized && seed_is_trigger(sig)) {
        /* a trigger of the dump-on-signal workflow: a shadow too */
        struct ck_sigaction *s = seed_shadow(sig);
        if (old) {
            memset(old, 0, sizeof *old);
            old->sa_handler = (void (*)(int))s->handler;
            old->sa_flags = (int)s->flags;
            memcpy(&old->sa_mask, &s->mask, sizeof s->mask);
        }
        if (act) {
            s->handler = (uint64_t)act->sa_handler;
            s->flags = (uint64_t)(unsigned)act->sa_flags;
            memcpy(&s->mask, &act->sa_mask, sizeof s->mask);
        }
        return 0;
    }
    if (g_shim.initialized && sig == SIGSYS && seccomp_shim_active())
        return shadow_sigaction(&shim_app_sigsys_action, act, old); /* seccomp.c's traps */
    if (!ours(sig)) {
        /* A handler that blocks everything must not hold off a checkpoint. */
        struct sigaction tmp;
        sigset_t m;
        if (act && strip(&act->sa_mask, &m) != &act->sa_mask) {
            tmp = *act;
            tmp.sa_mask = m;
            act = &tmp;
        }
        if (sig == SIGCHLD && g_shim.initialized)
            return chld_sigaction(act, old);
        return real_sigaction(sig, act, old);
    }
    if (old) {
        memset(old, 0, sizeof *old);
        old->sa_handler = (void (*)(int))shim_app_ckpt_action.handler;
        old->sa_flags = (int)shim_app_ckpt_action.flags;
        memcpy(&old->sa_mask, &shim_app_ckpt_action.mask, sizeof shim_app_ckpt_action.mask);
    }
    if (act) {
        shim_app_ckpt_action.handler = (uint64_t)act->sa_handler;
        shim_app_ckpt_action.flags = (uint64_t)(unsigned)act->sa_flags;
        memcpy(&shim_app_ckpt_action.mask, &act->sa_mask, sizeof shim_app_ckpt_action.mask);
    }
    return 0;
}

SHIM_API sighandler_t signal(int sig, sighandler_t handler)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, sig);
    if (sigaction(sig, &sa, &old) < 0)
        return SIG_ERR;
    return old.sa_handler;
}

SHIM_API int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    SHIM_RESOLVE(real_sigprocmask, "sigprocmask");
    sigset_t tmp;
    return real_sigprocmask(how, how == SIG_UNBLOCK ? set : strip(set, &tmp), old);
}

SHIM_API int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    SHIM_RESOLVE(real_pthread_sigmask, "pthread_sigmask");
    sigset_t tmp;
    return real_pthread_sigmask(how, how == SIG_UNBLOCK ? set : strip(set, &tmp), old);
}

SHIM_API int sigsuspend(const sigset_t *mask)
{
    SHIM_RESOLVE(real_sigsuspend, "sigsuspend");
    sigset_t tmp;
    for (;;) {
        uint32_t seq = shim_tls.ckpt_seq;
        int r = real_sigsuspend(strip(mask, &tmp));
        if (!(r < 0 && errno == EINTR && shim_tls.ckpt_seq != seq))
            return r;
    }
}

SHIM_API int sigwait(const sigset_t *set, int *sig)
{
    SHIM_RESOLVE(real_sigwait, "sigwait");
    sigset_t tmp;
    return real_sigwait(strip(set, &tmp), sig);
}

SHIM_API int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
    SHIM_RESOLVE(real_sigwaitinfo, "sigwaitinfo");
    sigset_t tmp;
    for (;;) {
        uint32_t seq = shim_tls.ckpt_seq;
        int r = real_sigwaitinfo(strip(set, &tmp), info);
        if (r == SIGCHLD)
            chld_info(info);
        if (!(r < 0 && errno == EINTR && shim_tls.ckpt_seq != seq))
            return r;
    }
}

SHIM_API int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *ts)
{
    SHIM_RESOLVE(real_sigtimedwait, "sigtimedwait");
    sigset_t tmp;
    int r = waits_sigtimedwait(real_sigtimedwait, strip(set, &tmp), info, ts);
    if (r == SIGCHLD)
        chld_info(info);
    return r;
}

SHIM_API pid_t getpid(void)
{
    return g_shim.vpid ? g_shim.vpid : shim_real_getpid();
}

/* A restored process tree (docs/DESIGN.md, "Process trees"): its
 * processes know each other by the pids they had; the map is shared by
 * the whole tree (restore.c: restore_tree_map). */
pid_t shim_tree_real(pid_t vpid)
{
    for (uint32_t i = 0; vpid > 0 && i < g_shim.ntree; i++)
        if (g_shim.tree[i].vpid == vpid)
            return g_shim.tree[i].real;
    /* a child forked by a restored process knows its parent by the pid
     * the parent sees itself as (its own new pid comes first) */
    if (vpid > 0 && vpid == g_shim.parent_vpid && vpid != shim_real_getpid())
        return g_shim.parent_real;
    return vpid;
}

pid_t shim_tree_virt(pid_t real)
{
    for (uint32_t i = 0; real > 0 && i < g_shim.ntree; i++)
        if (g_shim.tree[i].real == real)
            return g_shim.tree[i].vpid;
    if (real > 0 && g_shim.parent_vpid && real == g_shim.parent_real)
        return g_shim.parent_vpid;
    return real;
}

/* A pid the program knows, as the kernel knows it now (its own too). */
static pid_t pid_real(pid_t v)
{
    if (g_shim.vpid && v == g_shim.vpid)
        return shim_real_getpid();
    return v > 0 ? shim_tree_real(v) : v;
}

pid_t shim_pid_real(pid_t v)
{
    return pid_real(v);
}

pid_t shim_pid_virt(pid_t real)
{
    if (real > 0 && real == shim_real_getpid())
        return getpid();
    return shim_tree_virt(real);
}

/* siginfo of SIGCHLD names the child by the pid the program knows
 * (docs/DESIGN.md, "SIGCHLD and its siginfo in a tree"). */
static void chld_info(siginfo_t *si)
{
    if (si && si->si_signo == SIGCHLD && si->si_pid > 0)
        si->si_pid = shim_pid_virt(si->si_pid);
}

/* The program's SA_SIGINFO handler for SIGCHLD runs behind ours, which
 * puts the old pid in si_pid first. The kernel's disposition names ours
 * (so it is what a checkpoint saves and a restore puts back: this
 * memory comes back with it); sigaction reports the program's. */
static struct sigaction app_chld;

static void chld_trampoline(int sig, siginfo_t *si, void *uc)
{
    chld_info(si);
    void (*fn)(int, siginfo_t *, void *) = app_chld.sa_sigaction;
    if (fn && (void *)fn != (void *)SIG_DFL && (void *)fn != (void *)SIG_IGN)
        fn(sig, si, uc);
}

static int chld_sigaction(const struct sigaction *act, struct sigaction *old)
{
    struct sigaction tmp, prev;
    const struct sigaction *use = act;
    if (act && (act->sa_flags & SA_SIGINFO) && (void *)act->sa_sigaction != (void *)SIG_DFL &&
        (void *)act->sa_sigaction != (void *)SIG_IGN) {
        tmp = *act;
        tmp.sa_sigaction = chld_trampoline;
        use = &tmp;
    }
    struct sigaction keep = app_chld;
    if (act)
        app_chld = *act;
    int r = real_sigaction(SIGCHLD, use, &prev);
    if (r < 0) {
        app_chld = keep;
        return r;
    }
    if (old) {
        *old = prev;
        if (prev.sa_sigaction == chld_trampoline)
            old->sa_sigaction = keep.sa_sigaction;
    }
    return 0;
}

/* Process group and session ids are pids too: a group or session led by
 * a process of the tree is known by its leader's pid; one whose leader is
 * gone or outside (the root's, a pipeline's whose first command ended)
 * has its own pair, written at restore (restore.c: restore_tree_map). */
static pid_t ids_real(const struct shim_treepid *m, uint32_t n, pid_t v)
{
    for (uint32_t i = 0; v > 0 && i < n; i++)
        if (m[i].vpid == v && m[i].real > 0)
            return m[i].real;
    return pid_real(v);
}

static pid_t ids_virt(const struct shim_treepid *m, uint32_t n, pid_t r)
{
    for (uint32_t i = 0; r > 0 && i < n; i++)
        if (m[i].real == r)
            return m[i].vpid;
    if (r > 0 && r == shim_real_getpid())
        return getpid();
    return shim_tree_virt(r);
}

pid_t shim_pgrp_virt(pid_t real)
{
    return ids_virt(g_shim.pgrps, g_shim.npgrps, real);
}

pid_t shim_sid_virt(pid_t real)
{
    return ids_virt(g_shim.sids, g_shim.nsids, real);
}

static pid_t pgrp_real(pid_t v)
{
    return ids_real(g_shim.pgrps, g_shim.npgrps, v);
}

pid_t shim_pgrp_real(pid_t v)
{
    return pgrp_real(v);
}

SHIM_API pid_t getpgid(pid_t pid)
{
    long r = syscall(SYS_getpgid, pid_real(pid));
    return r > 0 ? shim_pgrp_virt((pid_t)r) : (pid_t)r;
}

SHIM_API pid_t __getpgid(pid_t pid)
{
    return getpgid(pid);
}

SHIM_API pid_t getpgrp(void)
{
    return getpgid(0);
}

SHIM_API pid_t getsid(pid_t pid)
{
    long r = syscall(SYS_getsid, pid_real(pid));
    return r > 0 ? shim_sid_virt((pid_t)r) : (pid_t)r;
}

SHIM_API int setpgid(pid_t pid, pid_t pgid)
{
    return (int)syscall(SYS_setpgid, pid_real(pid), pgid > 0 ? pgrp_real(pgid) : pgid);
}

SHIM_API int __setpgid(pid_t pid, pid_t pgid)
{
    return setpgid(pid, pgid);
}

SHIM_API int setpgrp(void)
{
    return setpgid(0, 0);
}

SHIM_API pid_t setsid(void)
{
    long r = syscall(SYS_setsid);
    return r > 0 ? shim_sid_virt((pid_t)r) : (pid_t)r;
}

SHIM_API pid_t tcgetpgrp(int fd)
{
    pid_t pg;
    if (syscall(SYS_ioctl, fd, TIOCGPGRP, &pg) < 0)
        return -1;
    return shim_pgrp_virt(pg);
}

SHIM_API int tcsetpgrp(int fd, pid_t pgrp)
{
    pid_t pg = pgrp > 0 ? pgrp_real(pgrp) : pgrp;
    return (int)syscall(SYS_ioctl, fd, TIOCSPGRP, &pg);
}

SHIM_API pid_t tcgetsid(int fd)
{
    pid_t s;
    if (syscall(SYS_ioctl, fd, TIOCGSID, &s) < 0)
        return -1;
    return shim_sid_virt(s);
}

/* ioctl: the terminal requests that take or give a process group or a
 * session (what tcgetpgrp, tcsetpgrp and tcgetsid do, asked directly)
 * use the ids the program knows; every other request goes through as it
 * is. */
SHIM_API int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    socktrack_ioctl(fd, req);
    if (req == TIOCSPGRP && arg) {
        pid_t pg = *(const pid_t *)arg;
        pg = pg > 0 ? pgrp_real(pg) : pg;
        return (int)syscall(SYS_ioctl, fd, req, &pg);
    }
    long r = syscall(SYS_ioctl, fd, req, arg);
    if (r == 0 && arg && req == TIOCGPGRP)
        *(pid_t *)arg = shim_pgrp_virt(*(pid_t *)arg);
    else if (r == 0 && arg && req == TIOCGSID)
        *(pid_t *)arg = shim_sid_virt(*(pid_t *)arg);
    return (int)r;
}

SHIM_API pid_t getppid(void)
{
    return shim_tree_virt((pid_t)syscall(SYS_getppid));
}

/* Waits name children by the pids the program knows, and report them so.
 * A wait that began before a restore is restarted by the kernel with the
 * pid as it was then, which names no child now (ECHILD): the wrapper asks
 * again with the pid of now. */
static pid_t wait_id(pid_t pid)
{
    if (pid < -1)
        return -pgrp_real(-pid); /* a process group */
    return pid > 0 ? shim_tree_real(pid) : pid;
}

SHIM_API pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
    for (;;) {
        uint32_t gen = g_shim.generation;
        int st = 0;
        long r = syscall(SYS_wait4, wait_id(pid), &st, options, ru);
        if (r > 0 && status)
            *status = st;
        if (r > 0 && (WIFEXITED(st) || WIFSIGNALED(st)))
            shim_sharer_reaped((pid_t)r);
        if (r > 0)
            return shim_tree_virt((pid_t)r);
        if (!(r < 0 && errno == ECHILD && gen != g_shim.generation))
            return (pid_t)r;
    }
}

SHIM_API pid_t waitpid(pid_t pid, int *status, int options)
{
    return wait4(pid, status, options, NULL);
}

SHIM_API pid_t wait(int *status)
{
    return wait4(-1, status, 0, NULL);
}

SHIM_API pid_t wait3(int *status, int options, struct rusage *ru)
{
    return wait4(-1, status, options, ru);
}

/* waitid, with the rusage the system call (not libc's name) takes */
static int waitid_ru(idtype_t type, id_t id, siginfo_t *info, int options, struct rusage *ru)
{
    for (;;) {
        uint32_t gen = g_shim.generation;
        id_t rid = type == P_PID    ? (id_t)wait_id((pid_t)id)
                   : type == P_PGID ? (id_t)pgrp_real((pid_t)id)
                                    : id;
        long r = syscall(SYS_waitid, type, rid, info, options, ru);
        if (r == 0 && info && info->si_pid > 0 && !(options & WNOWAIT) &&
            (info->si_code == CLD_EXITED || info->si_code == CLD_KILLED ||
             info->si_code == CLD_DUMPED))
            shim_sharer_reaped(info->si_pid);
        if (r == 0 && info && info->si_pid > 0)
            info->si_pid = shim_tree_virt(info->si_pid);
        if (!(r < 0 && errno == ECHILD && gen != g_shim.generation))
            return (int)r;
    }
}

SHIM_API int waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
    return waitid_ru(type, id, info, options, NULL);
}

SHIM_API pid_t gettid(void)
{
    return shim_tls.vtid > 0 ? shim_tls.vtid : shim_real_gettid();
}

/* Real tid for a tid the program knows (after a restore they differ). */
static pid_t real_tid(pid_t vtid)
{
    if (!g_shim.generation || !g_shim.slots)
        return vtid;
    if (vtid == g_shim.vpid)
        return shim_real_getpid();
    for (int i = 0; i < g_shim.nslots && i < CK_MAX_THREADS; i++)
        if (g_shim.slots[i].vtid == vtid)
            return g_shim.slots[i].tid;
    return vtid;
}

SHIM_API int kill(pid_t pid, int sig)
{
    if (g_shim.vpid && pid == g_shim.vpid)
        pid = shim_real_getpid();
    else
        pid = wait_id(pid);
    return (int)syscall(SYS_kill, pid, sig);
}

/* glibc's sigqueue makes its rt_sigqueueinfo itself, with the kernel's
 * pid as the sender: the target by the pid the kernel knows now, the
 * sender by the one the program knows (a restored tree's old pids). */
SHIM_API int sigqueue(pid_t pid, int sig, const union sigval value)
{
    siginfo_t si;
    ck_siginfo_queued(&si, sig, getpid(), getuid(), value);
    if (g_shim.vpid && pid == g_shim.vpid)
        pid = shim_real_getpid();
    else
        pid = wait_id(pid);
    return (int)syscall(SYS_rt_sigqueueinfo, pid, sig, &si);
}

SHIM_API int killpg(pid_t pgrp, int sig)
{
    if (pgrp < 0) {
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_kill, pgrp ? -pgrp_real(pgrp) : 0, sig);
}

SHIM_API int tgkill(pid_t tgid, pid_t tid, int sig)
{
    if (g_shim.vpid && tgid == g_shim.vpid)
        tgid = shim_real_getpid();
    return (int)syscall(SYS_tgkill, tgid, real_tid(tid), sig);
}

/* The id the program knows for a real pid or tid of its own. */
static pid_t virt_id(pid_t real)
{
    if (!g_shim.generation || !g_shim.slots || real <= 0)
        return real;
    if (real == shim_real_getpid())
        return g_shim.vpid ? g_shim.vpid : real;
    for (int i = 0; i < g_shim.nslots && i < CK_MAX_THREADS; i++)
        if (g_shim.slots[i].tid == real)
            return g_shim.slots[i].vtid;
    return real;
}

/* fcntl's owner commands carry pids: after a restore the program's ids
 * are not the kernel's (F_SETOWN with getpid() would name the pid the
 * process had before, or another process). Process groups are the ids
 * of the tree's groups (pgrp_real, shim_pgrp_virt). */
static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);

/* An id of this process or its threads, else of another process of its
 * tree (each map only when the first does not: a new pid of ours may be
 * an old one of another process); 0 and below stay as they are. */
static pid_t owner_real(pid_t v)
{
    if (v <= 0)
        return v; /* 0: the caller itself (sched_*, prlimit, ...), never a slot's */
    pid_t r = real_tid(v);
    return r != v ? r : shim_tree_real(v);
}

pid_t shim_id_virt(pid_t r)
{
    pid_t v = virt_id(r);
    return v != r ? v : shim_tree_virt(r);
}

/* The program's syscall() with a call that gives or takes pids or tids
 * (syscall.S sends them here; the shim's own go straight to the kernel):
 * after a restore the program knows the ids it had, which the libc names
 * the shim wraps already answer and take; a raw syscall(SYS_gettid) or
 * kcmp() must agree with them (zdtm clone_fs). Before any restore the
 * kernel's ids are the program's: straight through. */
long shim_syscall_ids(long nr, long a, long b, long c, long d, long e)
{
    if (!shim_ids_moved())
        return shim_set_errno(ck_sys6(nr, a, b, c, d, e, 0));
    switch (nr) {
    case SYS_getpid:
        return getpid();
    case SYS_gettid:
        return gettid();
    case SYS_getppid:
        return getppid();
    case SYS_getpgrp:
        return getpgrp();
    case SYS_getpgid:
        return getpgid((pid_t)a);
    case SYS_getsid:
        return getsid((pid_t)a);
    case SYS_setpgid:
        return setpgid((pid_t)a, (pid_t)b);
    case SYS_setsid:
        return setsid();
    case SYS_kill:
        return kill((pid_t)a, (int)b);
    case SYS_tgkill:
        return tgkill((pid_t)a, (pid_t)b, (int)c);
    case SYS_wait4:
        return wait4((pid_t)a, (int *)b, (int)c, (struct rusage *)d);
    case SYS_waitid:
        return waitid_ru((idtype_t)a, (id_t)b, (siginfo_t *)c, (int)d, (struct rusage *)e);
    case SYS_kcmp:
        b = owner_real((pid_t)b);
        /* fallthrough */
    case SYS_tkill:
    case SYS_pidfd_open:
    case SYS_rt_sigqueueinfo:
    case SYS_get_robust_list:
    case SYS_sched_setaffinity:
    case SYS_sched_getaffinity:
    case SYS_sched_setparam:
    case SYS_sched_getparam:
    case SYS_sched_setscheduler:
    case SYS_sched_getscheduler:
    case SYS_sched_rr_get_interval:
    case SYS_sched_setattr:
    case SYS_sched_getattr:
    case SYS_prlimit64:
    case SYS_process_vm_readv:
    case SYS_process_vm_writev:
    case SYS_migrate_pages:
    case SYS_move_pages:
        a = owner_real((pid_t)a); /* 0 (this process or thread) stays 0 */
        break;
    case SYS_getpriority:
    case SYS_setpriority:
        if (a == PRIO_PROCESS)
            b = owner_real((pid_t)b);
        break;
    case SYS_ioprio_get:
    case SYS_ioprio_set:
        if (a == 1) /* IOPRIO_WHO_PROCESS: a thread */
            b = owner_real((pid_t)b);
        break;
    case SYS_rt_tgsigqueueinfo:
        a = owner_real((pid_t)a);
        b = owner_real((pid_t)b);
        break;
    }
    return shim_set_errno(ck_sys6(nr, a, b, c, d, e, 0));
}

/* libc functions that take a pid or tid, which a restored program knows
 * by its old number (0, "this one", stays 0). */
SHIM_API int sched_setaffinity(pid_t pid, size_t len, const cpu_set_t *set)
{
    return (int)shim_set_errno(ck_sys6(SYS_sched_setaffinity, owner_real(pid), (long)len,
                                       (long)set, 0, 0, 0));
}

SHIM_API int sched_getaffinity(pid_t pid, size_t len, cpu_set_t *set)
{
    /* the kernel answers the bytes it wrote; glibc answers 0 and clears
     * the rest of the set */
    long r = ck_sys6(SYS_sched_getaffinity, owner_real(pid), (long)len, (long)set, 0, 0, 0);
    if (r < 0)
        return (int)shim_set_errno(r);
    if ((size_t)r < len)
        memset((char *)set + r, 0, len - (size_t)r);
    return 0;
}

/* prlimit and prlimit64 are one function on 64-bit (the headers rename
 * prlimit to prlimit64 here): both names, by their symbols. */
static long prlimit_ids(pid_t pid, int res, const void *nw, void *old)
{
    return shim_set_errno(ck_sys6(SYS_prlimit64, owner_real(pid), res, (long)nw, (long)old, 0, 0));
}

SHIM_API int shim_prlimit(pid_t pid, int res, const void *nw, void *old) __asm__("prlimit");
SHIM_API int shim_prlimit(pid_t pid, int res, const void *nw, void *old)
{
    return (int)prlimit_ids(pid, res, nw, old);
}

SHIM_API int shim_prlimit64(pid_t pid, int res, const void *nw, void *old) __asm__("prlimit64");
SHIM_API int shim_prlimit64(pid_t pid, int res, const void *nw, void *old)
{
    return (int)prlimit_ids(pid, res, nw, old);
}

SHIM_API int getpriority(__priority_which_t which, id_t who)
{
    if (which == PRIO_PROCESS)
        who = (id_t)owner_real((pid_t)who);
    /* the kernel answers 20 - nice (never negative) */
    long r = ck_sys6(SYS_getpriority, which, who, 0, 0, 0, 0);
    return r < 0 ? (int)shim_set_errno(r) : 20 - (int)r;
}

SHIM_API int setpriority(__priority_which_t which, id_t who, int prio)
{
    if (which == PRIO_PROCESS)
        who = (id_t)owner_real((pid_t)who);
    return (int)shim_set_errno(ck_sys6(SYS_setpriority, which, who, prio, 0, 0, 0));
}

/* The kernel's O_LARGEFILE (glibc's is 0 on 64-bit): every open() sets
 * it, pipe() never. A restore opens each end of a pipe again through
 * /proc/self/fd (one description per end the program had), so the
 * program's pipes would show it in F_GETFL after a restore (zdtm
 * file_fown compares the flags); a pipe the program makes never has it,
 * so F_GETFL of an anonymous pipe (on pipefs, not a FIFO) leaves it out
 * once the process was restored or is a child of a restored one. */
#define KERNEL_O_LARGEFILE 0100000

static int anon_pipe(int fd)
{
    static dev_t pipefs;
    static int known;
    struct stat st;
    if (!known) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return 0;
        if (fstat(p[0], &st) == 0) {
            pipefs = st.st_dev;
            known = 1;
        }
        close(p[0]);
        close(p[1]);
    }
    return known && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_dev == pipefs;
}

static int owner_fcntl(int (*fn)(int, int, ...), int fd, int cmd, va_list ap)
{
    unsigned long arg = va_arg(ap, unsigned long);
    struct f_owner_ex ex, *uex = (struct f_owner_ex *)arg;
    socktrack_fcntl(fd, cmd);
    if ((cmd == F_GETLK || cmd == F_OFD_GETLK) && shim_ids_moved()) {
        /* the holder of a conflicting POSIX lock, by the pid the program
         * knows it by (this one, a process of the tree, the parent of a
         * child forked after a restore); an OFD lock's holder is -1 */
        struct flock *fl = (struct flock *)arg;
        int r = fn(fd, cmd, arg);
        if (r == 0 && fl && fl->l_type != F_UNLCK && fl->l_pid > 0)
            fl->l_pid = shim_id_virt(fl->l_pid);
        return r;
    }
    if (cmd == F_GETFL && shim_ids_moved()) {
        int r = fn(fd, cmd, arg);
        return r >= 0 && (r & KERNEL_O_LARGEFILE) && anon_pipe(fd) ? r & ~KERNEL_O_LARGEFILE : r;
    }
    if (!g_shim.generation || (cmd != F_SETOWN && cmd != F_GETOWN && cmd != F_SETOWN_EX &&
                               cmd != F_GETOWN_EX))
        return fn(fd, cmd, arg);
    /* the ids of this process and its threads, then of the other
     * processes of its tree; a group's by the tree's groups */
    if (cmd == F_SETOWN && (int)arg > 0)
        arg = (unsigned long)owner_real((pid_t)arg);
    else if (cmd == F_SETOWN && (int)arg < 0)
        arg = (unsigned long)(long)-pgrp_real(-(pid_t)arg);
    if (cmd == F_SETOWN_EX && uex) {
        ex = *uex;
        ex.pid = ex.type == F_OWNER_PGRP ? pgrp_real(ex.pid) : owner_real(ex.pid);
        arg = (unsigned long)&ex;
    }
    int r = fn(fd, cmd, arg);
    if (cmd == F_GETOWN && r > 0)
        r = shim_id_virt(r);
    else if (cmd == F_GETOWN && r < -1)
        r = -shim_pgrp_virt(-r);
    if (cmd == F_GETOWN_EX && r == 0 && uex)
        uex->pid = uex->type == F_OWNER_PGRP ? shim_pgrp_virt(uex->pid) : shim_id_virt(uex->pid);
    return r;
}

/* Both names glibc exports (with _FILE_OFFSET_BITS=64 its header calls
 * fcntl fcntl64, hence the explicit symbol names). */
SHIM_API int pw_fcntl(int fd, int cmd, ...) __asm__("fcntl");
SHIM_API int pw_fcntl(int fd, int cmd, ...)
{
    SHIM_RESOLVE(real_fcntl, "fcntl");
    va_list ap;
    va_start(ap, cmd);
    int r = owner_fcntl(real_fcntl, fd, cmd, ap);
    va_end(ap);
    return r;
}

/* libc's other name for fcntl */
SHIM_API int pw___fcntl(int fd, int cmd, ...) __asm__("__fcntl");
SHIM_API int pw___fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    return pw_fcntl(fd, cmd, arg);
}

SHIM_API int pw_fcntl64(int fd, int cmd, ...) __asm__("fcntl64");
SHIM_API int pw_fcntl64(int fd, int cmd, ...)
{
    SHIM_RESOLVE(real_fcntl64, "fcntl64");
    SHIM_RESOLVE(real_fcntl, "fcntl");
    va_list ap;
    va_start(ap, cmd);
    int r = owner_fcntl(real_fcntl64 ? real_fcntl64 : real_fcntl, fd, cmd, ap);
    va_end(ap);
    return r;
}

SHIM_API int nanosleep(const struct timespec *req, struct timespec *rem)
{
    SHIM_RESOLVE(real_nanosleep, "nanosleep");
    struct timespec left, want = *req;
    for (;;) {
        uint32_t seq = shim_tls.ckpt_seq;
        int r = real_nanosleep(&want, &left);
        if (r == 0)
            return 0;
        if (errno != EINTR || shim_tls.ckpt_seq == seq) {
            if (rem)
                *rem = left;
            return r;
        }
        want = left;
    }
}

SHIM_API int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                             struct timespec *rem)
{
    SHIM_RESOLVE(real_clock_nanosleep, "clock_nanosleep");
    struct timespec left, want = *req;
    int64_t off;
    clk = cputime_clock(clk, &off);     /* CPU clocks continue across restores */
    if ((flags & TIMER_ABSTIME) && off) {
        int64_t ns = (int64_t)want.tv_sec * 1000000000LL + want.tv_nsec - off;
        if (ns < 0)
            ns = 0;
        want.tv_sec = ns / 1000000000LL;
        want.tv_nsec = ns % 1000000000LL;
    }
    for (;;) {
        uint32_t seq = shim_tls.ckpt_seq;
        int r = real_clock_nanosleep(clk, flags, &want, &left);
        if (r != EINTR || shim_tls.ckpt_seq == seq) {
            if (r == EINTR && rem && !(flags & TIMER_ABSTIME))
                *rem = left;
            return r;
        }
        if (!(flags & TIMER_ABSTIME))
            want = left;
    }
}

SHIM_API unsigned int sleep(unsigned int s)
{
    struct timespec ts = {.tv_sec = s, .tv_nsec = 0}, rem;
    if (nanosleep(&ts, &rem) == 0)
        return 0;
    return (unsigned)rem.tv_sec + (rem.tv_nsec > 0);
}

SHIM_API int usleep(useconds_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    return nanosleep(&ts, NULL);
}
