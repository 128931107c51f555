/* tree_pidfd - pidfds and signal owners naming other processes of a tree.
 *
 * The parent holds a pidfd of its child (pidfd_open). The child holds the
 * read end of a pipe with O_ASYNC whose signals (F_SETOWN, F_SETSIG
 * SIGUSR2) go to the parent. After the go file: the child's F_GETOWN
 * still names the parent; the parent writes into the pipe and gets
 * SIGUSR2 (the restored owner is the restored parent); the parent sends
 * SIGUSR1 through the pidfd (pidfd_send_signal), the child exits 4, the
 * pidfd becomes readable and waitid(P_PIDFD) reports the child's pid.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static volatile sig_atomic_t got_usr2, got_usr1;

static void on_usr2(int sig)
{
    (void)sig;
    got_usr2++;
}

static void on_usr1(int sig)
{
    (void)sig;
    got_usr1 = 1;
}

int main(void)
{
    int p[2], rep[2];
    check_sys(pipe(p));
    check_sys(pipe(rep));
    signal(SIGUSR2, on_usr2);
    pid_t parent = getpid();
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        close(p[1]);
        signal(SIGUSR1, on_usr1);
        int ok = fcntl(p[0], F_SETOWN, parent) == 0 && fcntl(p[0], F_SETSIG, SIGUSR2) == 0 &&
                 fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC | O_NONBLOCK) == 0;
        char c = ok ? 'r' : 'e';
        if (write(rep[1], &c, 1) != 1)
            _exit(2);
        while (!got_usr1)
            test_sleep_ms(5);
        /* the owner as the program knows it */
        _exit(fcntl(p[0], F_GETOWN) == parent ? 4 : 5);
    }
    close(p[0]);
    int pfd = (int)syscall(SYS_pidfd_open, k, 0);
    check_sys(pfd);
    char c;
    check(read(rep[0], &c, 1) == 1 && c == 'r', "the child could not set its owner");
    test_ready();
    test_wait_go();

    check(write(p[1], "x", 1) == 1, "write: %s", strerror(errno));
    for (int i = 0; i < 500 && !got_usr2; i++)
        test_sleep_ms(5);
    check(got_usr2, "no SIGUSR2 from the child's O_ASYNC pipe (its owner is not the parent)");
    check_sys((int)syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, NULL, 0));
    struct pollfd pf = {.fd = pfd, .events = POLLIN};
    check(poll(&pf, 1, 5000) == 1, "the pidfd does not become readable when the child exits");
    siginfo_t si;
    memset(&si, 0, sizeof si);
    check(waitid((idtype_t)P_PIDFD, (id_t)pfd, &si, WEXITED) == 0, "waitid(P_PIDFD): %s",
          strerror(errno));
    check(si.si_pid == k, "waitid(P_PIDFD) names %d, not the child %d", si.si_pid, k);
    check(si.si_code == CLD_EXITED && si.si_status == 4,
          "the child ended with code %d status %d (5: F_GETOWN did not name the parent)",
          si.si_code, si.si_status);
    pass();
    return 0;
}
