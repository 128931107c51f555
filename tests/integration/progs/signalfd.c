/* signalfd - signalfd masks and flags survive, and the signals pending
 * for them are still there to read.
 *
 * Before READY, with SIGUSR1, SIGUSR2 and SIGRTMIN+1 blocked:
 *   S1 = signalfd({SIGUSR1, SIGRTMIN+1}, SFD_NONBLOCK);
 *   S2 = signalfd({SIGUSR2}, SFD_CLOEXEC), blocking;
 *   P: an epoll instance watching S1 (data 1) and S2 (data 2);
 *   pending: SIGUSR1 from kill(getpid()), SIGRTMIN+1 queued twice with
 *   sigqueue (values 1234 and 5678), SIGUSR2 queued to the thread itself
 *   with pthread_sigqueue (value 77).
 *   A thread blocks every signal and waits in read() on S3, a signalfd
 *   for every signal but SIGUSR1 and SIGRTMIN+1 (the checkpoint signal
 *   included: the checkpoint must still park it).
 * After restore: S1 and S2 are signalfds with their masks (fdinfo
 * `sigmask:`) and flags; P reports both ready; S1 reads SIGUSR1 (SI_USER),
 * then SIGRTMIN+1 with SI_QUEUE, our pid and 1234, then 5678, then EAGAIN;
 * S2 reads SIGUSR2 with SI_QUEUE and 77; a new raise(SIGUSR2) reads from
 * S2 again; nothing is left pending. The thread, sent SIGWINCH, reads
 * exactly that from S3 (it never saw the checkpoint signal).
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include "testlib.h"

static void check_kind(int fd, const char *what, uint64_t mask, int nonblock, int cloexec)
{
    char path[64], buf[1024];
    test_check_fd(fd, what, "anon_inode:[signalfd]", nonblock, cloexec);
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(path, "r");
    check(f != NULL, "open %s: %s", path, strerror(errno));
    ssize_t n = (ssize_t)fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strstr(buf, "sigmask:");
    check(p != NULL, "%s: no sigmask in fdinfo", what);
    uint64_t m = strtoull(p + 8, NULL, 16);
    check(m == mask, "%s: sigmask %016llx, expected %016llx", what, (unsigned long long)m,
          (unsigned long long)mask);
}

static void must_read(int fd, const char *what, int signo, int code, int value)
{
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof si);
    check(n == sizeof si, "%s: read: %s", what, n < 0 ? strerror(errno) : "short read");
    check((int)si.ssi_signo == signo, "%s: signal %u, expected %d", what, si.ssi_signo, signo);
    check(si.ssi_code == code, "%s: code %d, expected %d", what, si.ssi_code, code);
    if (code == SI_QUEUE) {
        check(si.ssi_int == value, "%s: value %d, expected %d", what, si.ssi_int, value);
        check((pid_t)si.ssi_pid == getpid(), "%s: sender %u, expected our pid %d", what,
              si.ssi_pid, getpid());
    }
}

static void must_eagain(int fd, const char *what)
{
    struct signalfd_siginfo si;
    errno = 0;
    ssize_t n = read(fd, &si, sizeof si);
    check(n == -1 && errno == EAGAIN, "%s: read gave %zd (signal %u), expected EAGAIN", what,
          n, n > 0 ? si.ssi_signo : 0);
}

static volatile int s3_got, s3_other;

static void *waiter(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    /* every signal but those the process has pending for S1 (a reader
     * takes the process's pending signals too) */
    sigdelset(&all, SIGUSR1);
    sigdelset(&all, SIGRTMIN + 1);
    int s3 = signalfd(-1, &all, 0);
    if (s3 < 0)
        fail("signalfd for every signal: %s", strerror(errno));
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(s3, &si, sizeof si);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != sizeof si)
            fail("S3: read: %s", n < 0 ? strerror(errno) : "short read");
        if (si.ssi_signo == SIGWINCH)
            break;
        s3_other = (int)si.ssi_signo;
    }
    s3_got = SIGWINCH;
    return NULL;
}

static uint64_t bit(int sig)
{
    return 1ULL << (sig - 1);
}

int main(void)
{
    const int rt = SIGRTMIN + 1;
    sigset_t block, m1, m2;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, rt);
    check_sys(sigprocmask(SIG_BLOCK, &block, NULL));
    sigemptyset(&m1);
    sigaddset(&m1, SIGUSR1);
    sigaddset(&m1, rt);
    sigemptyset(&m2);
    sigaddset(&m2, SIGUSR2);
    int s1, s2, p;
    check_sys(s1 = signalfd(-1, &m1, SFD_NONBLOCK));
    check_sys(s2 = signalfd(-1, &m2, SFD_CLOEXEC));
    check_sys(p = epoll_create1(0));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
    check_sys(epoll_ctl(p, EPOLL_CTL_ADD, s1, &ev));
    ev.data.u64 = 2;
    check_sys(epoll_ctl(p, EPOLL_CTL_ADD, s2, &ev));

    check_sys(kill(getpid(), SIGUSR1));
    check_sys(sigqueue(getpid(), rt, (union sigval){.sival_int = 1234}));
    check_sys(sigqueue(getpid(), rt, (union sigval){.sival_int = 5678}));
    int r = pthread_sigqueue(pthread_self(), SIGUSR2, (union sigval){.sival_int = 77});
    check(r == 0, "pthread_sigqueue: %s", strerror(r));
    pthread_t th;
    check(pthread_create(&th, NULL, waiter, NULL) == 0, "pthread_create");
    test_sleep_ms(50); /* it waits in read() */
    test_msg("S1=%d S2=%d P=%d", s1, s2, p);

    test_ready();
    test_wait_go();

    check_kind(s1, "S1", bit(SIGUSR1) | bit(rt), 1, 0);
    check_kind(s2, "S2", bit(SIGUSR2), 0, 1);
    struct epoll_event out[4];
    int n = epoll_wait(p, out, 4, 0);
    check(n == 2, "P: %d events, expected both signalfds ready", n);

    must_read(s1, "S1 #1", SIGUSR1, SI_USER, 0);
    must_read(s1, "S1 #2", rt, SI_QUEUE, 1234);
    must_read(s1, "S1 #3", rt, SI_QUEUE, 5678);
    must_eagain(s1, "S1");
    struct pollfd pf = {.fd = s2, .events = POLLIN};
    check(poll(&pf, 1, 0) == 1, "S2: not readable");
    must_read(s2, "S2 #1", SIGUSR2, SI_QUEUE, 77);
    check(poll(&pf, 1, 0) == 0, "S2: still readable after its one signal");
    check_sys(raise(SIGUSR2));
    must_read(s2, "S2 #2", SIGUSR2, SI_TKILL, 0);
    sigset_t pend;
    check_sys(sigpending(&pend));
    check(!sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGUSR2) &&
              !sigismember(&pend, rt),
          "signals still pending after the reads");
    check(epoll_wait(p, out, 4, 0) == 0, "P: still reports events");
    check(pthread_kill(th, SIGWINCH) == 0, "pthread_kill");
    check(pthread_join(th, NULL) == 0, "pthread_join");
    check(s3_got == SIGWINCH && !s3_other, "S3: read signal %d before SIGWINCH", s3_other);
    pass();
}
