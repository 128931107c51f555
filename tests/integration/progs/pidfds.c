/* pidfds - pidfds of the process itself, of one of its threads and of
 * processes that have exited.
 *
 * Before READY: S = pidfd_open(getpid()); T = pidfd_open(a worker thread,
 * PIDFD_THREAD); D1 and D2 = two pidfds of one child, D3 one of another
 * child, both children exited and reaped.
 * After restore: S signals the process (signal 0 works) and its fdinfo
 * names the running process (by getpid()); a SIGUSR1 sent through T with
 * PIDFD_SIGNAL_THREAD reaches the worker thread; D1 and D2 are one process
 * (same inode), D3 another; signalling them fails with ESRCH and their
 * fdinfo says Pid: -1.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef PIDFD_SIGNAL_THREAD
#define PIDFD_SIGNAL_THREAD 1
#endif

static pthread_t worker;
static volatile int worker_got, other_got, tid_known;
static volatile pid_t worker_tid;

static void on_usr1(int sig)
{
    (void)sig;
    if (pthread_equal(pthread_self(), worker))
        worker_got = 1;
    else
        other_got = 1;
}

static void *work(void *arg)
{
    (void)arg;
    worker_tid = (pid_t)syscall(SYS_gettid);
    tid_known = 1;
    for (;;)
        pause();
    return NULL;
}

static int pidfd_open(pid_t pid, unsigned flags)
{
    return (int)syscall(SYS_pidfd_open, pid, flags);
}

static int send_sig(int pfd, int sig, unsigned flags)
{
    return (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, flags);
}

/* The "Pid:" of a pidfd's fdinfo. */
static int fdinfo_pid(int fd)
{
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
    int f = open(p, O_RDONLY);
    check_sys(f);
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    check(n > 0, "read %s", p);
    buf[n] = 0;
    char *pid = strstr(buf, "\nPid:");
    check(pid != NULL, "no Pid: in %s", p);
    return atoi(pid + 5);
}

static pid_t dead_child(void)
{
    pid_t c = fork();
    check_sys(c);
    if (c == 0)
        _exit(0);
    return c;
}

int main(void)
{
    signal(SIGUSR1, on_usr1);
    check(pthread_create(&worker, NULL, work, NULL) == 0, "pthread_create");
    while (!tid_known)
        test_sleep_ms(1);
    int s = pidfd_open(getpid(), 0);
    check_sys(s);
    int t = pidfd_open(worker_tid, PIDFD_THREAD);
    check_sys(t);
    pid_t c1 = dead_child(), c2 = dead_child();
    int d1 = pidfd_open(c1, 0), d2 = pidfd_open(c1, 0), d3 = pidfd_open(c2, 0);
    check(d1 >= 0 && d2 >= 0 && d3 >= 0, "pidfd_open of a child: %s", strerror(errno));
    check_sys(waitpid(c1, NULL, 0));
    check_sys(waitpid(c2, NULL, 0));

    test_ready();
    test_wait_go();

    check(send_sig(s, 0, 0) == 0, "S: signal 0: %s", strerror(errno));
    /* the shim shows fdinfo's pids as the program knows them */
    check(fdinfo_pid(s) == getpid(), "S: pidfd of %d, the process is %d", fdinfo_pid(s), getpid());

    check(send_sig(t, SIGUSR1, PIDFD_SIGNAL_THREAD) == 0, "T: signal: %s", strerror(errno));
    for (int i = 0; i < 2000 && !worker_got && !other_got; i++)
        test_sleep_ms(1);
    check(worker_got && !other_got, "T: SIGUSR1 reached %s", other_got ? "another thread" : "no one");

    struct stat a, b, c;
    check_sys(fstat(d1, &a));
    check_sys(fstat(d2, &b));
    check_sys(fstat(d3, &c));
    check(a.st_ino == b.st_ino, "D1 and D2 are not one process");
    check(a.st_ino != c.st_ino, "D1 and D3 are one process");
    check(send_sig(d1, 0, 0) < 0 && errno == ESRCH, "D1: signal 0 did not fail with ESRCH");
    check(fdinfo_pid(d1) == -1 && fdinfo_pid(d3) == -1, "D: fdinfo Pid %d %d, expected -1",
          fdinfo_pid(d1), fdinfo_pid(d3));
    pass();
}
