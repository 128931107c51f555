/* pidns.c - programs in a pid namespace of their own (coord run --pidns,
 * and the restore of an image taken in one).
 *
 * coord makes a user namespace (the user keeps their uid and gid inside:
 * one line in uid_map and gid_map, setgroups denied), and in it a pid
 * namespace, as an ordinary user. Its first process, pid 1, is coord's
 * own init: it makes a mount namespace with a /proc of the new pid
 * namespace (so /proc/self and /proc/<pid> agree with getpid), starts the
 * program (or, for a restore, the tree's root with its old pid), reaps
 * the orphans the namespace hands it, forwards the signals sent to it and
 * ends with the program's status, which it hands to the coord outside
 * through a pipe. Inside such a namespace (we hold every capability of the
 * user namespace until the program runs), clone3 with set_tid gives each
 * restored process the pid it had (docs/DESIGN.md, "PID namespaces"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coord.h"
#include "fileid.h"

#ifndef CLONE_NEWPID
#define CLONE_NEWPID 0x20000000
#endif

/* The kernel's struct clone_args (version 2, with set_tid). */
struct ck_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    uint64_t set_tid, set_tid_size, cgroup;
};

/* Where glibc keeps the calling thread's tid in its struct pthread: a raw
 * clone3 (which glibc does not know about) must have the kernel write the
 * child's tid there (CLONE_CHILD_SETTID), as glibc's fork does, or the
 * child's raise() and the like would name the parent's tid. Found by
 * looking for the tid in the first 2 KiB of pthread_self(), -1 if not. */
static long tid_offset(void)
{
    static long off = -2;
    if (off == -2) {
        const int *p = (const int *)pthread_self();
        int tid = (int)syscall(SYS_gettid);
        off = -1;
        for (long i = 0; i < 512 && off < 0; i++)
            if (p[i] == tid)
                off = i * 4;
    }
    return off;
}

/* fork, with flags (namespaces) and, if pid > 0, that pid in the caller's
 * pid namespace's children (set_tid). 0 in the child, its pid in the
 * parent, -1 with errno. */
static pid_t clone_fork(uint64_t flags, int pid)
{
    struct ck_clone_args a;
    memset(&a, 0, sizeof a);
    long off = tid_offset();
    a.flags = flags;
    if (off >= 0) {
        a.flags |= CLONE_CHILD_SETTID;
        a.child_tid = (uint64_t)(uintptr_t)((char *)pthread_self() + off);
    }
    /* (with CLONE_PARENT the kernel takes the caller's exit signal, and
     * clone3 wants none given) */
    a.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
    int32_t want = pid;
    if (pid > 0) {
        a.set_tid = (uint64_t)(uintptr_t)&want;
        a.set_tid_size = 1;
    }
    fflush(NULL);
    return (pid_t)syscall(SYS_clone3, &a, sizeof a);
}

pid_t ck_pidns_fork_as(int pid)
{
    return clone_fork(0, pid);
}

pid_t ck_pidns_clone_parent_as(int pid)
{
    pid_t p = pid > 0 ? clone_fork(CLONE_PARENT, pid) : -1;
    if (pid > 0 && !(p < 0 && errno == ENOSYS))
        return p;
    /* the clone system call when no pid is asked for, or where clone3 is
     * refused (a container's seccomp profile answers ENOSYS): the kernel
     * takes the caller's exit signal with CLONE_PARENT */
    long off = tid_offset();
    uint64_t flags = CLONE_PARENT;
    void *tid = NULL;
    if (off >= 0) {
        flags |= CLONE_CHILD_SETTID;
        tid = (char *)pthread_self() + off;
    }
    fflush(NULL);
    return (pid_t)syscall(SYS_clone, flags, NULL, NULL, tid, 0UL);
}

/* Write text to path (an existing file). 0 or -errno. */
static int write_path(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    return w == (ssize_t)strlen(text) ? 0 : w < 0 ? -e : -EIO;
}

/* The init's end of the status pipe (fd 3 once it runs its loop). */
static int status_wr = -1;
static pid_t g_init = -1;
static const char *g_cmd = "run";       /* the command, for messages */

pid_t ck_pidns_start(const char *cmd, int detach, int *status_rd)
{
    int sync[2], st[2];
    if (pipe2(sync, O_CLOEXEC) < 0 || pipe2(st, O_CLOEXEC) < 0) {
        ck_msg("%s: pipe: %s", cmd, strerror(errno));
        return -1;
    }
    uid_t uid = geteuid();
    gid_t gid = getegid();
    pid_t pid = clone_fork(CLONE_NEWUSER | CLONE_NEWPID, 0);
    if (pid < 0) {
        int e = errno;
        ck_msg("%s: --pidns: cannot create a user and pid namespace: %s%s", cmd, strerror(e),
               e == EPERM || e == ENOSPC || e == EUSERS || e == EINVAL
                   ? " (unprivileged user namespaces are disabled or used up here: see "
                     "/proc/sys/user/max_user_namespaces, kernel.unprivileged_userns_clone, "
                     "kernel.apparmor_restrict_unprivileged_userns, or a container's seccomp "
                     "profile); run without --pidns"
                   : "");
        close(sync[0]);
        close(sync[1]);
        close(st[0]);
        close(st[1]);
        return -1;
    }
    if (pid == 0) {
        /* init, pid 1 of the new namespace */
        close(sync[1]);
        close(st[0]);
        if (!detach)
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* coord outside gone: so is the namespace */
        char b;
        ssize_t n;
        do
            n = read(sync[0], &b, 1);
        while (n < 0 && errno == EINTR);
        close(sync[0]);
        if (n != 1)
            _exit(1); /* coord outside could not map our ids: it said why */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
            ck_msg("%s: --pidns: cannot make a mount namespace for /proc: %s", cmd,
                   strerror(errno));
            _exit(1);
        }
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
            ck_msg("%s: --pidns: cannot mount /proc for the new pid namespace: %s (/proc must "
                   "be mountable by an ordinary user in a user namespace: not in a container "
                   "that hides parts of it)",
                   cmd, strerror(errno));
            _exit(1);
        }
        prctl(PR_SET_NAME, "ckshim-init");
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        status_wr = st[1];
        if (detach)
            setsid();
        return 0;
    }
    close(sync[0]);
    close(st[1]);
    char map[64], path[64];
    snprintf(path, sizeof path, "/proc/%d/setgroups", (int)pid);
    int r = write_path(path, "deny\n");
    if (r == 0) {
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
        snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
        r = write_path(path, map);
    }
    if (r == 0) {
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
        snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
        r = write_path(path, map);
    }
    if (r < 0) {
        ck_msg("%s: --pidns: cannot map uid %u and gid %u into the new user namespace: %s", cmd,
               (unsigned)uid, (unsigned)gid, strerror(-r));
        close(sync[1]);
        close(st[0]);
        waitpid(pid, NULL, 0);
        return -1;
    }
    if (write(sync[1], "g", 1) != 1) {
        ck_msg("%s: --pidns: the namespace's init is gone: %s", cmd, strerror(errno));
        close(sync[1]);
        close(st[0]);
        waitpid(pid, NULL, 0);
        return -1;
    }
    close(sync[1]);
    *status_rd = st[0];
    g_init = pid;
    g_cmd = cmd;
    return pid;
}

int ck_pidns_set_last(int pid)
{
    char text[32];
    snprintf(text, sizeof text, "%d", pid);
    return write_path("/proc/sys/kernel/ns_last_pid", text);
}

/* Signals init passes on to the program when a process sent them (not
 * the terminal's, which reach the program too, being in its group). */
static int forwarded(int sig)
{
    return sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT || sig == SIGUSR1 ||
           sig == SIGUSR2;
}

void ck_pidns_init(pid_t main_pid)
{
    /* Nothing of coord's stays open here: a pipe end init kept would hide
     * an end of file from whoever reads the other end. */
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    if (dup2(status_wr, 3) < 0)
        _exit(1);
    close_range(4, ~0U, 0);
    sigset_t all;
    sigfillset(&all);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig < 0)
            continue;
        if (forwarded(sig) && si.si_code != SI_KERNEL) {
            kill(main_pid, sig);
            continue;
        }
        if (sig != SIGCHLD)
            continue;
        for (;;) {
            int ws;
            pid_t w = waitpid(-1, &ws, WNOHANG);
            if (w <= 0)
                break;
            if (w != main_pid)
                continue; /* an orphan the namespace handed us */
            if (write(3, &ws, sizeof ws) < 0)
                _exit(1);
            _exit(WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws));
        }
    }
}

static void forward(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (si->si_code != SI_KERNEL && g_init > 0)
        kill(g_init, sig);
}

int ck_pidns_wait(pid_t init, int status_rd)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = forward;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t k = 0; k < sizeof sigs / sizeof *sigs; k++)
        sigaction(sigs[k], &sa, NULL);
    g_init = init;
    int ws;
    while (waitpid(init, &ws, 0) < 0 && errno == EINTR)
        ;
    int st;
    ssize_t n;
    do
        n = read(status_rd, &st, sizeof st);
    while (n < 0 && errno == EINTR);
    close(status_rd);
    if (n != (ssize_t)sizeof st && WIFSIGNALED(ws)) {
        /* init itself was killed (from outside: it blocks every signal
         * it can): the kernel ended every process of the namespace */
        int sig = WTERMSIG(ws);
        ck_msg("%s: the pid namespace's init (pid %d) was killed by signal %d (%s): the "
               "program and every process of the namespace ended with it", g_cmd, (int)init,
               sig, strsignal(sig));
        return 128 + sig;
    }
    if (n != (ssize_t)sizeof st)
        return CK_EXIT_FAIL; /* init failed before the program ran: it said why */
    if (WIFSIGNALED(st)) {
        /* end as the program did, for the shell's $? */
        int sig = WTERMSIG(st);
        struct rlimit no = {0, 0};
        setrlimit(RLIMIT_CORE, &no);
        signal(sig, SIG_DFL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        sigprocmask(SIG_UNBLOCK, &one, NULL);
        kill(getpid(), sig);
        return 128 + sig;
    }
    return WEXITSTATUS(st);
}

int ck_pidns_find(uint64_t ns, int inner)
{
    DIR *d = opendir("/proc");
    if (!d || !ns) {
        if (d)
            closedir(d);
        return -1;
    }
    int found = -1;
    for (struct dirent *e; found < 0 && (e = readdir(d));) {
        int p = ck_parse_pid(e->d_name);
        if (p > 0 && ck_pidns_inner(p) == inner && ck_pidns_of(p) == ns)
            found = p;
    }
    closedir(d);
    return found;
}

/* The first child of pid, or -1. */
static int first_child(int pid)
{
    char path[96], list[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
    if (ck_read_file(path, list, sizeof list) < 0)
        return -1;
    return atoi(list) > 0 ? atoi(list) : -1;
}

/* 1 if /proc/PID/comm is name. */
static int comm_is(int pid, const char *name)
{
    char path[64], comm[64];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    if (ck_read_file(path, comm, sizeof comm) < 0)
        return 0;
    comm[strcspn(comm, "\n")] = 0;
    return !strcmp(comm, name);
}

int ck_pidns_program(int pid)
{
    if (!comm_is(pid, "ckshim-init")) {
        pid = first_child(pid);
        if (pid < 0 || !comm_is(pid, "ckshim-init"))
            return -1;
    }
    return first_child(pid);
}
