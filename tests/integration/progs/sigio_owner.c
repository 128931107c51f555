/* sigio_owner - signal-driven I/O: owners, signals and O_ASYNC survive.
 *
 * Before READY: pipe A's read end has O_ASYNC, its owner is the process
 * (F_SETOWN getpid()) and its signal SIGRTMIN+2; pipe B's read end has
 * O_ASYNC, its owner is a helper thread (F_SETOWN_EX F_OWNER_TID with the
 * thread's gettid()) and its signal SIGUSR2. One byte through each shows
 * the signal arrives (si_fd, and on the helper thread for B).
 *
 * After restore: F_GETSIG, F_GETOWN and F_GETOWN_EX give the program's
 * values (its own pid and its helper's tid as it knows them, not the
 * kernel's new ones); a byte written into A raises SIGRTMIN+2 with si_fd
 * A, one into B raises SIGUSR2 on the helper thread; F_SETOWN(getpid())
 * works again and reads back.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>

#include "testlib.h"

static int a[2], b[2];
static volatile int got_a, got_b, a_fd = -1, b_on_helper = -1;
static pthread_t helper;
static volatile pid_t helper_tid;

static void on_a(int sig, siginfo_t *si, void *ctx)
{
    a_fd = si->si_fd;
    got_a++;
}

static void on_b(int sig, siginfo_t *si, void *ctx)
{
    b_on_helper = pthread_equal(pthread_self(), helper);
    got_b++;
}

static void *helper_main(void *arg)
{
    helper_tid = gettid();
    for (;;)
        pause();
    return NULL;
}

static void drain(int fd)
{
    char c[16];
    while (read(fd, c, sizeof c) > 0)
        ;
}

/* one byte into pipe p; wait up to 2 s for the counter to move */
static void poke(int *p, volatile int *counter, const char *what)
{
    int before = *counter;
    check(write(p[1], "x", 1) == 1, "%s: write: %s", what, strerror(errno));
    for (int i = 0; i < 200 && *counter == before; i++)
        test_sleep_ms(10);
    check(*counter > before, "%s: no signal after a byte arrived", what);
    drain(p[0]);
}

static void check_owners(const char *when)
{
    check(fcntl(a[0], F_GETSIG) == SIGRTMIN + 2, "%s: A's signal is %d, not %d", when,
          fcntl(a[0], F_GETSIG), SIGRTMIN + 2);
    check(fcntl(b[0], F_GETSIG) == SIGUSR2, "%s: B's signal is %d", when, fcntl(b[0], F_GETSIG));
    check(fcntl(a[0], F_GETOWN) == getpid(), "%s: A's owner is %d, not the process %d", when,
          fcntl(a[0], F_GETOWN), getpid());
    struct f_owner_ex o;
    check_sys(fcntl(b[0], F_GETOWN_EX, &o));
    check(o.type == F_OWNER_TID && o.pid == helper_tid,
          "%s: B's owner is type %d id %d, not the helper thread %d", when, o.type, o.pid,
          helper_tid);
    check((fcntl(a[0], F_GETFL) & O_ASYNC) && (fcntl(b[0], F_GETFL) & O_ASYNC),
          "%s: O_ASYNC is gone", when);
}

int main(void)
{
    struct sigaction sa = {.sa_flags = SA_SIGINFO | SA_RESTART};
    sa.sa_sigaction = on_a;
    check_sys(sigaction(SIGRTMIN + 2, &sa, NULL));
    sa.sa_sigaction = on_b;
    check_sys(sigaction(SIGUSR2, &sa, NULL));
    check_sys(pipe2(a, O_NONBLOCK));
    check_sys(pipe2(b, O_NONBLOCK));
    check(pthread_create(&helper, NULL, helper_main, NULL) == 0, "pthread_create");
    while (!helper_tid)
        test_sleep_ms(1);
    /* B's signal only on the helper: the main thread blocks it */
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    check(pthread_sigmask(SIG_BLOCK, &m, NULL) == 0, "pthread_sigmask");

    check_sys(fcntl(a[0], F_SETOWN, getpid()));
    check_sys(fcntl(a[0], F_SETSIG, SIGRTMIN + 2));
    check_sys(fcntl(a[0], F_SETFL, fcntl(a[0], F_GETFL) | O_ASYNC));
    struct f_owner_ex o = {.type = F_OWNER_TID, .pid = helper_tid};
    check_sys(fcntl(b[0], F_SETOWN_EX, &o));
    check_sys(fcntl(b[0], F_SETSIG, SIGUSR2));
    check_sys(fcntl(b[0], F_SETFL, fcntl(b[0], F_GETFL) | O_ASYNC));
    check_owners("before");
    poke(a, &got_a, "A before");
    check(a_fd == a[0], "A before: si_fd %d, not %d", a_fd, a[0]);
    poke(b, &got_b, "B before");
    check(b_on_helper == 1, "B before: the signal ran on another thread");

    test_ready();
    test_wait_go();

    check_owners("after restore");
    a_fd = -1;
    b_on_helper = -1;
    poke(a, &got_a, "A after restore");
    check(a_fd == a[0], "A after restore: si_fd %d, not %d", a_fd, a[0]);
    poke(b, &got_b, "B after restore");
    check(b_on_helper == 1, "B after restore: the signal ran on another thread");
    check_sys(fcntl(a[0], F_SETOWN, getpid()));
    check(fcntl(a[0], F_GETOWN) == getpid(), "F_SETOWN(getpid()) reads back %d, not %d",
          fcntl(a[0], F_GETOWN), getpid());
    poke(a, &got_a, "A after F_SETOWN(getpid())");
    pass();
}
