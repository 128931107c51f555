/* restore.c - the shim's half of a restore, run by the manager thread.
 *
 * The restorer has rebuilt memory and threads and jumped back to every
 * park point. Every thread repairs itself (quiesce_fixup_thread); the
 * manager then waits for all of them, puts back the process-wide state
 * the kernel lost in the exec of the restorer (signal dispositions,
 * interval and POSIX timers, close-on-exec flags), removes the restorer,
 * opens a new control socket, reports success to coord, and lets every
 * thread return into the program.
 */
#include <asm/prctl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "plan.h"
#include "rawsys.h"
#include "shim.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#endif

int quiesce_install_handler(void);

static pid_t real_tid_of(pid_t vtid)
{
    for (int i = 0; i < g_shim.nslots && i < CK_MAX_THREADS; i++)
        if (g_shim.slots[i].vtid == vtid)
            return g_shim.slots[i].tid;
    return shim_real_gettid();
}

static void restore_timers(void)
{
    struct ck_proc *p = &g_shim.proc;
    if (!p->ntimers)
        return;
    int ids = prctl(PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0) == 0;
    for (uint32_t i = 0; i < p->ntimers; i++) {
        struct ck_ptimer *t = &p->timers[i];
        struct sigevent sev;
        memset(&sev, 0, sizeof sev);
        sev.sigev_notify = t->notify;
        sev.sigev_signo = t->signo;
        sev.sigev_value.sival_ptr = (void *)t->sival;
        if (t->notify == SIGEV_THREAD_ID)
            sev._sigev_un._tid = real_tid_of(t->target_tid);
        int kid = t->id;
        if (syscall(SYS_timer_create, t->clockid, &sev, &kid) < 0) {
            shim_log("cannot recreate timer %d: %s", t->id, strerror(errno));
            continue;
        }
        if (kid != t->id)
            shim_log("timer %d came back as %d", t->id, kid);
        struct itimerspec its;
        its.it_value.tv_sec = t->value_ns / 1000000000LL;
        its.it_value.tv_nsec = t->value_ns % 1000000000LL;
        its.it_interval.tv_sec = t->interval_ns / 1000000000LL;
        its.it_interval.tv_nsec = t->interval_ns % 1000000000LL;
        if (t->value_ns > 0 || t->interval_ns > 0) {
            if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
                its.it_value.tv_nsec = 1;
            syscall(SYS_timer_settime, kid, 0, &its, NULL);
        }
    }
    if (ids)
        prctl(PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0);
}

/* A signal pending at the checkpoint for the process (slot -1) or for the
 * thread in SLOT: queued again with the siginfo kept in the handler
 * (quiesce.c) when the kernel lets this thread send it (timer and sigqueue
 * codes: the value comes back), else raised with kill()/tgkill(). */
static void requeue_signal(pid_t pid, int slot, int s)
{
    pid_t tid = slot < 0 ? 0 : g_shim.slots[slot].tid;
    int sent = 0;
    for (int i = 0; i < shim_nsigkeep && i < SHIM_MAX_SIGKEEP; i++) {
        siginfo_t *si = &shim_sigkeep[i].si;
        if (shim_sigkeep[i].slot != slot || si->si_signo != s)
            continue;
        if (si->si_code >= 0 || si->si_code == SI_TKILL) {
            /* only the thread itself (the leader for the process) may
             * send this one: it does once it runs (quiesce.c) */
            shim_sigkeep[i].deferred = 1;
            sent = 1;
            continue;
        }
        if (slot < 0 ? syscall(SYS_rt_sigqueueinfo, pid, s, si) == 0
                     : syscall(SYS_rt_tgsigqueueinfo, pid, tid, s, si) == 0)
            sent = 1;
    }
    if (!sent && slot < 0)
        syscall(SYS_kill, pid, s);
    else if (!sent)
        syscall(SYS_tgkill, pid, tid, s);
}

/* Signal dispositions, itimers, POSIX timers, fd flags. */
int restore_process_state(void)
{
    struct ck_proc *p = &g_shim.proc;
    for (int s = 1; s < CK_NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP || s == g_shim.ckpt_signal)
            continue;
        syscall(SYS_rt_sigaction, s, &p->sigact[s], NULL, 8);
    }
    quiesce_install_handler();
    for (int w = 0; w < 3; w++) {
        struct itimerval it;
        it.it_interval.tv_sec = p->itimer[w].interval_sec;
        it.it_interval.tv_usec = p->itimer[w].interval_usec;
        it.it_value.tv_sec = p->itimer[w].value_sec;
        it.it_value.tv_usec = p->itimer[w].value_usec;
        if (it.it_value.tv_sec || it.it_value.tv_usec)
            setitimer(w, &it, NULL);
    }
    restore_timers();
    /* Signals that were pending: raised again (their siginfo is not kept,
     * and several queued instances of a real-time signal become one). */
    pid_t pid = shim_real_getpid();
    for (int s = 1; s <= 64; s++) { /* 64 (SIGRTMAX) is bit 63 */
        if (p->sigpending & (1ULL << (s - 1)))
            requeue_signal(pid, -1, s);
        for (int i = 0; i < g_shim.nslots && i < CK_MAX_THREADS; i++)
            if (g_shim.threads[i].sigpending & (1ULL << (s - 1)))
                requeue_signal(pid, i, s);
    }
    for (uint32_t i = 0; i < g_shim.nfds; i++)
        if (g_shim.fds[i].fdflags & FD_CLOEXEC)
            fcntl(g_shim.fds[i].fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

static void report(int fd, const char *msg)
{
    if (fd < 0)
        return;
    ssize_t w = write(fd, msg, strlen(msg));
    (void)w;
    close(fd);
}

/* /proc/self/exe names the restorer, which the kernel will not replace
 * while it is mapped and only with CAP_CHECKPOINT_RESTORE (PR_SET_MM_MAP
 * with an exe_fd): after a restore in a pid namespace of the program's
 * own, point it at the program again, with the layout the restorer set
 * (the program has not run since). Best effort: procpath.c answers the
 * program's own readlink anyway. */
static void restore_exe_link(void)
{
    int fd = g_shim.exe[0] ? open(g_shim.exe, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return;
    struct ck_prctl_mm_map m;
    ck_mm_map_fill(&m, &g_shim.proc.mm, g_shim.proc.auxv, g_shim.proc.auxv_bytes, fd);
    prctl(PR_SET_MM, PR_SET_MM_MAP, &m, sizeof m, 0);
    close(fd);
}

/* The restore fails before the program ran: say why (to coord's --detach
 * pipe, or to coord's stderr in the foreground, which the restorer left
 * open while the gate has a second step; else fd 2) and end. With the
 * gate's second step still to come, the counter has not moved. */
__attribute__((noreturn)) static void restore_fail(struct ck_restore_info *ri, const char *why)
{
    char lmsg[1300];
    const char *kept = ri->magic == CK_RESTORE_MAGIC && ri->gate_fd >= 0
                           ? "; nothing ran, the image is kept (the counter did not move)"
                           : "";
    if (ri->status_fd >= 0) {
        snprintf(lmsg, sizeof lmsg, "error: %s%s\n", why, kept);
        report(ri->status_fd, lmsg);
    } else {
        snprintf(lmsg, sizeof lmsg, "ckshim: restore: %s%s\n", why, kept);
        int efd = ri->magic == CK_RESTORE_MAGIC && ri->err_fd >= 0 ? ri->err_fd : 2;
        ssize_t w = write(efd, lmsg, strlen(lmsg));
        (void)w;
    }
    syscall(SYS_exit_group, 1);
    __builtin_unreachable();
}

/* The second step of a restored tree's barrier (coord's tree gate
 * keeper; a single process is a tree of one there): this process is
 * whole; wait until every process of the tree is, and the counter has
 * moved, before any of them runs program code.
 * Returns only on "ok"; on anything else the process ends here, having
 * run nothing (the root reports coord's message). */
static void tree_barrier(struct ck_restore_info *ri)
{
    /* the manager thread blocks every signal: a keeper that is gone gives
     * EPIPE here, not SIGPIPE to the program */
    char msg[1100];
    size_t n = 0;
    ssize_t w;
    do
        w = write(ri->ready_fd, "F", 1);
    while (w < 0 && errno == EINTR);
    while (w == 1 && n < sizeof msg - 1 && !memchr(msg, '\n', n)) {
        ssize_t r = read(ri->gate_fd, msg + n, sizeof msg - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    msg[n] = 0;
    close(ri->gate_fd);
    close(ri->ready_fd);
    ri->gate_fd = ri->ready_fd = -1;
    if (!strcmp(msg, "ok\n")) {
        if (ri->err_fd >= 0)
            close(ri->err_fd);
        ri->err_fd = -1;
        return;
    }
    if (!strcmp(msg, "stop\n"))
        syscall(SYS_exit_group, 1);
    if (!n)
        restore_fail(ri, "the counter gate keeper went away");
    if (msg[n - 1] == '\n')
        msg[n - 1] = 0;
    restore_fail(ri, msg + (strncmp(msg, "error: ", 7) ? 0 : 7));
}

void restore_finish(void)
{
    struct ck_restore_info *ri = &g_shim.rinfo;
    struct shim_slot me;
    memset(&me, 0, sizeof me);
    me.pd = (uint64_t)pthread_self();
    syscall(SYS_arch_prctl, ARCH_GET_FS, &me.fsbase);
    me.ss.ss_flags = SS_DISABLE;
    snprintf(me.comm, sizeof me.comm, "%s", g_shim.proc.comm);
    quiesce_fixup_thread(&me);
    g_shim.manager_tid = me.tid;
    g_shim.manager_pid = shim_real_getpid();

    if (quiesce_wait_landed(10000000000LL) < 0)
        restore_fail(ri, "threads did not come back after restore");
    capture_forget(0);
    /* one sharing its parent's descriptor table leaves the table's work
     * to its parent (which has the same descriptor records) */
    int follower = ri->magic == CK_RESTORE_MAGIC && ri->fdt_follower;
    restore_tree_map(ri->magic == CK_RESTORE_MAGIC ? ri->map_fd : -1, follower);
    /* a single process stopped when it was taken (a tree's come from
     * its map above) */
    if (ri->magic == CK_RESTORE_MAGIC && !g_shim.restore_stop && ri->stop_sig)
        g_shim.restore_stop = (int)ri->stop_sig;
    g_shim.dump_key = NULL; /* its mapping was not in the image */
    if (!g_shim.vpid)
        g_shim.vpid = (pid_t)g_shim.proc.pid;
    /* the parent a forked child knew is not its parent now (in a tree
     * the map above knows the new one) */
    g_shim.parent_vpid = g_shim.parent_real = 0;
    if (ri->magic == CK_RESTORE_MAGIC && ri->restorer_end > ri->restorer_start)
        munmap((void *)ri->restorer_start, ri->restorer_end - ri->restorer_start);
    if (ri->drop_caps) {
        /* in a pid namespace of its own: this thread still has the
         * namespace's CAP_CHECKPOINT_RESTORE (quiesce_fixup_thread left
         * it), which /proc/self/exe needs, now that the restorer is gone */
        restore_exe_link();
        ck_caps(-1);
    }
    restore_process_state();
    capture_restore_vmflags();
    char lerr[400];
    if (pattr_restore(lerr, sizeof lerr) < 0 ||
        (!follower && (capture_relock_after_restore(lerr, sizeof lerr) < 0 ||
                       fdcap_resumed(lerr, sizeof lerr) < 0 ||
                       fown_restore(lerr, sizeof lerr) < 0)))
        restore_fail(ri, lerr); /* not run yet: end it rather than run it unlocked */
    /* CKSHIM_TEST_HOOK=restore-die-finish:VPID (coord; test_restore_late.sh) */
    if (ri->magic == CK_RESTORE_MAGIC && ri->test_fail_finish)
        restore_fail(ri, "test hook: the shim's restore_finish fails, the threads back");
    /* what follows cannot fail, and changes what others see (the
     * terminal, the control socket): only once the whole tree is back */
    if (ri->magic == CK_RESTORE_MAGIC && ri->gate_fd >= 0)
        tree_barrier(ri);
    capture_tty_after_restore();
    cputime_restore();
    int sr = seccomp_shim_after_restore();
    if (sr < 0)
        shim_log("cannot reinstall the seccomp filter after restore: %s", strerror(-sr));
    pattr_seccomp_baseline(); /* the restoring environment's filters, ours */
    g_shim.generation++;
    seed_reinstall();
    g_shim.listen_fd = -1;
    netrec_after_restore();
    socktrack_after_restore();
    /* (a program that had closed our socket gets none: coord calls it,
     * through this thread, named so) */
    int r = g_shim.call_mode ? shim_call_path() : shim_listen();
    if (g_shim.call_mode)
        prctl(PR_SET_NAME, CK_CALL_COMM, 0, 0, 0);
    if (r < 0)
        shim_log("cannot create the control socket after restore: %s", strerror(-r));
    char msg[64];
    snprintf(msg, sizeof msg, "ok %d\n", (int)shim_real_getpid());
    report(ri->status_fd, msg);
    ri->status_fd = -1;
    /* A process that was stopped at the checkpoint stops again, before
     * any thread of the program runs: its parent sees it stopped (waitpid
     * with WUNTRACED, SIGCHLD; a shell's job: Stopped) and continues it
     * when it wants. */
    if (g_shim.restore_stop > 0 && g_shim.restore_stop < 32)
        quiesce_stop_self(g_shim.restore_stop);
    g_shim.restore_stop = 0;
    quiesce_resume_restored();
}

/* The descriptor coord left open for a process of a restored tree: a
 * memfd named "ckshim-tree" holding {pid the tree knows, pid now} for
 * every process of it (coord's parents wrote their children's new pids
 * into it before the gate opened, so it is complete now): map_fd, which
 * the restorer names, or found by a raw scan of /proc/self/fd (no malloc:
 * the program's threads are parked), which also closes the tree's shared
 * memory descriptors, unless follower (that scan is its parent's: the
 * table is theirs). */
void restore_tree_map(int map_fd, int follower)
{
    int found = -1;
    if (follower)
        goto read_map;
    int dfd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY |
                           O_CLOEXEC);
    if (dfd < 0)
        goto read_map;
    char buf[4096];
    struct fdlist dl = {.dfd = dfd, .buf = buf, .cap = sizeof buf};
    for (int fd; (fd = fdlist_next(&dl)) >= 0;) {
        char lp[64], target[64];
        snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
        long l = syscall(SYS_readlink, lp, target, sizeof target - 1);
        if (l <= 0)
            continue;
        target[l] = 0;
        if (!strncmp(target, "/memfd:ckshim-tree-shm", 22))
            syscall(SYS_close, fd); /* the tree's shared memory: mapped by now */
        else if (found < 0 && map_fd < 0 && !strncmp(target, "/memfd:ckshim-tree", 18))
            found = fd;
    }
    syscall(SYS_close, dfd);
read_map:
    if (map_fd >= 0)
        found = map_fd;
    if (found < 0)
        return;
    /* {vpid, real} of every process, then after a {0, 0} the process
     * groups, then the sessions, then {vpid, signal} of the processes
     * that were stopped (coordinator/restore.c: restore_tree). */
    g_shim.ntree = g_shim.npgrps = g_shim.nsids = 0;
    g_shim.restore_stop = 0;
    int section = 0;
    for (uint32_t i = 0; i < 4096; i++) {
        struct shim_treepid e;
        if (pread(found, &e, sizeof e, (off_t)(i * sizeof e)) != (ssize_t)sizeof e)
            break;
        if (!e.vpid && !e.real) {
            section++;
            continue;
        }
        if (section == 0 && g_shim.ntree < sizeof g_shim.tree / sizeof g_shim.tree[0])
            g_shim.tree[g_shim.ntree++] = e;
        else if (section == 1 && g_shim.npgrps < sizeof g_shim.pgrps / sizeof g_shim.pgrps[0])
            g_shim.pgrps[g_shim.npgrps++] = e;
        else if (section == 2 && g_shim.nsids < sizeof g_shim.sids / sizeof g_shim.sids[0])
            g_shim.sids[g_shim.nsids++] = e;
        else if (section == 3 && e.vpid == (int32_t)g_shim.proc.pid)
            g_shim.restore_stop = e.real;
    }
    syscall(SYS_close, found);
}

SHIM_API unsigned ckshim_generation(void)
{
    return g_shim.generation;
}
