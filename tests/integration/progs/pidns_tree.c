/* pidns_tree - a process tree whose every process checks its ids with raw
 * system calls and /proc, for coord run --pidns (test_pidns.sh).
 *
 * The root forks two children, the first of which forks a grandchild;
 * each process starts one more thread. Each records in shared memory its
 * pid, its parent's and its thread's tid, taken with raw syscall(SYS_...)
 * (never the shim's wrappers), and what readlink("/proc/self") says; then
 * READY. After the go file (past a checkpoint and one or more restores)
 * each process checks, with raw system calls again: its pid, its parent's
 * pid, its thread's tid, /proc/self, /proc/self/task/<tid>, and for every
 * process of the tree /proc/<pid>/stat (the pid, the parent, the name).
 * The children end with 0 (all good) or 1 (having said why); the root
 * waits for them by their pids (raw wait4) and says PASS or FAIL. Only
 * a restore that gives every process and thread its old ids (pid
 * namespace) passes: in the default mode /proc/self and /proc/<pid>/stat
 * show the new ones (libc's syscall() gives the old, as getpid does).
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

#define NPROC 4 /* root, child A, child B, grandchild G (A's) */

struct rec {
    int pid, ppid, tid, self, ready, checked;
    char comm[16];
};
static struct rec *tab;
static int me;

static int raw_pid(void)
{
    return (int)syscall(SYS_getpid);
}

static void *thread_main(void *arg)
{
    tab[me].tid = (int)syscall(SYS_gettid);
    for (;;)
        sleep(1);
    return arg;
}

/* Record this process (index i, named name), start its thread. */
static void setup(int i, const char *name)
{
    me = i;
    tab[i].pid = raw_pid();
    tab[i].ppid = (int)syscall(SYS_getppid);
    tab[i].self = test_kernel_pid();
    snprintf(tab[i].comm, sizeof tab[i].comm, "%s", name);
    pthread_setname_np(pthread_self(), name);
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0)
        fail("pthread_create");
    while (!__atomic_load_n(&tab[i].tid, __ATOMIC_SEQ_CST))
        usleep(1000);
    __atomic_store_n(&tab[i].ready, 1, __ATOMIC_SEQ_CST);
}

/* Check everything from process me; "" if good, else why. */
static const char *check_ids(char *why, size_t len)
{
    struct rec *r = &tab[me];
    char path[96], buf[512];
    if (raw_pid() != r->pid)
        snprintf(why, len, "%s: raw getpid %d, was %d", r->comm, raw_pid(), r->pid);
    else if ((int)syscall(SYS_getppid) != r->ppid)
        snprintf(why, len, "%s: raw getppid %d, was %d", r->comm, (int)syscall(SYS_getppid),
                 r->ppid);
    else if (test_kernel_pid() != r->pid)
        snprintf(why, len, "%s: /proc/self is %d, pid %d", r->comm, test_kernel_pid(), r->pid);
    else if (snprintf(path, sizeof path, "/proc/self/task/%d/comm", r->tid),
             access(path, F_OK) != 0)
        snprintf(why, len, "%s: no %s (thread's tid %d)", r->comm, path, r->tid);
    else if (snprintf(path, sizeof path, "/proc/%d/task/%d", r->pid, r->tid),
             access(path, F_OK) != 0)
        snprintf(why, len, "%s: no %s", r->comm, path);
    else
        why[0] = 0;
    for (int i = 0; i < NPROC && !why[0]; i++) {
        snprintf(path, sizeof path, "/proc/%d/stat", tab[i].pid);
        int fd = open(path, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (n <= 0) {
            snprintf(why, len, "%s: cannot read %s", r->comm, path);
            break;
        }
        buf[n] = 0;
        int pid = atoi(buf), ppid = -1;
        char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
        if (rp)
            sscanf(rp + 2, "%*c %d", &ppid);
        if (!lp || !rp || pid != tab[i].pid || ppid != tab[i].ppid ||
            (size_t)(rp - lp - 1) != strlen(tab[i].comm) ||
            strncmp(lp + 1, tab[i].comm, (size_t)(rp - lp - 1)))
            snprintf(why, len, "%s: %s says pid %d ppid %d name %.*s, expected %d %d %s", r->comm,
                     path, pid, ppid, lp && rp ? (int)(rp - lp - 1) : 1, lp && rp ? lp + 1 : "?",
                     tab[i].pid, tab[i].ppid, tab[i].comm);
    }
    return why;
}

/* Every process has looked at every other's /proc entries (none may end
 * before: its entry would be gone). */
static void all_checked(void)
{
    __atomic_store_n(&tab[me].checked, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < NPROC; i++)
        for (int k = 0; k < 5000 && !__atomic_load_n(&tab[i].checked, __ATOMIC_SEQ_CST); k++)
            usleep(1000);
}

/* A child's life after setup: wait for go, check, end 0 or 1. */
static void child_after(int kid)
{
    test_wait_go();
    char why[400];
    check_ids(why, sizeof why);
    all_checked();
    if (why[0]) {
        test_msg("%s", why);
        _exit(1);
    }
    if (kid > 0) {
        int st;
        long w = syscall(SYS_wait4, kid, &st, 0, NULL);
        if (w != kid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            test_msg("%s: raw wait4(%d) gave %ld, status %#x", tab[me].comm, kid, w, st);
            _exit(1);
        }
    }
    _exit(0);
}

int main(void)
{
    /* the children wait for the go file too */
    test_go_path = getenv("CK_GO");
    test_go_deadline = time(NULL) + 300;
    tab = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (tab == MAP_FAILED)
        fail("mmap");
    memset(tab, 0, 4096);
    pid_t a = fork();
    if (a == 0) {
        pid_t g = fork();
        if (g == 0) {
            setup(3, "pt-grandchild");
            child_after(0);
        }
        setup(1, "pt-child-a");
        child_after(g);
    }
    pid_t b = fork();
    if (b == 0) {
        setup(2, "pt-child-b");
        child_after(0);
    }
    setup(0, "pt-root");
    for (int i = 0; i < NPROC; i++)
        while (!__atomic_load_n(&tab[i].ready, __ATOMIC_SEQ_CST))
            usleep(1000);
    for (int i = 0; i < NPROC; i++)
        test_msg("%s pid %d ppid %d tid %d /proc/self %d", tab[i].comm, tab[i].pid, tab[i].ppid,
                 tab[i].tid, tab[i].self);
    for (int i = 0; i < NPROC; i++)
        if (tab[i].self != tab[i].pid)
            fail("%s: /proc/self %d, pid %d before any checkpoint (run it with --pidns)",
                 tab[i].comm, tab[i].self, tab[i].pid);
    test_ready();
    test_wait_go();
    char why[400];
    check_ids(why, sizeof why);
    all_checked();
    if (why[0])
        fail("%s", why);
    pid_t kids[2] = {tab[1].pid, tab[2].pid};
    for (int k = 0; k < 2; k++) {
        int st;
        long w = syscall(SYS_wait4, kids[k], &st, 0, NULL);
        if (w != kids[k])
            fail("raw wait4(%d) gave %ld (%s)", kids[k], w, strerror(errno));
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail("child %d ended with status %#x (see above)", kids[k], st);
    }
    (void)a;
    (void)b;
    pass();
}
