/* tree_sigchld - SIGCHLD's siginfo in a process tree names children by
 * the pids the program knows.
 *
 * The parent handles SIGCHLD with an SA_SIGINFO handler and blocks it.
 * Child A exits with status 5 before READY: its SIGCHLD stays pending
 * (blocked), A a zombie. Children B and D wait. After the go file:
 * - SIGCHLD unblocked: the handler sees the pending one with si_pid A,
 *   CLD_EXITED, status 5 (kept across the checkpoint, zdtm sigpending);
 * - B is killed (SIGTERM): the handler sees si_pid B, CLD_KILLED;
 * - SIGCHLD blocked again, D told to exit 3: sigtimedwait returns its
 *   SIGCHLD with si_pid D; waitid and waitpid give A, B and D;
 * - sigaction reports the program's own handler.
 */
#include <signal.h>
#include <sys/wait.h>

#include "testlib.h"

static volatile sig_atomic_t nseen;
static volatile pid_t seen_pid[8];
static volatile int seen_code[8], seen_status[8];

static void on_chld(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    if (nseen < 8) {
        seen_pid[nseen] = si->si_pid;
        seen_code[nseen] = si->si_code;
        seen_status[nseen] = si->si_status;
        nseen++;
    }
}

static void on_usr1(int sig)
{
    (void)sig;
    _exit(3);
}

static pid_t waiter(void)
{
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        signal(SIGUSR1, on_usr1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (;;)
            pause();
    }
    return k;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    check_sys(sigaction(SIGCHLD, &sa, NULL));
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    check_sys(sigprocmask(SIG_BLOCK, &chld, NULL));

    pid_t a = fork();
    check_sys(a);
    if (a == 0)
        _exit(5);
    pid_t b = waiter(), d = waiter();
    /* A's SIGCHLD is pending once A has exited */
    for (int i = 0; i < 1000; i++) {
        sigset_t p;
        sigpending(&p);
        if (sigismember(&p, SIGCHLD))
            break;
        test_sleep_ms(2);
    }
    test_ready();
    test_wait_go();

    struct sigaction cur;
    check_sys(sigaction(SIGCHLD, NULL, &cur));
    check(cur.sa_sigaction == on_chld, "sigaction reports %p, not the program's handler %p",
          (void *)cur.sa_sigaction, (void *)on_chld);
    check_sys(sigprocmask(SIG_UNBLOCK, &chld, NULL));
    for (int i = 0; i < 500 && nseen < 1; i++)
        test_sleep_ms(2);
    check(nseen == 1, "%d SIGCHLDs after unblocking, expected 1 (A's)", (int)nseen);
    check(seen_pid[0] == a && seen_code[0] == CLD_EXITED && seen_status[0] == 5,
          "A's SIGCHLD: pid %d code %d status %d, expected pid %d, CLD_EXITED, 5",
          (int)seen_pid[0], seen_code[0], seen_status[0], a);

    check_sys(kill(b, SIGTERM));
    for (int i = 0; i < 1000 && nseen < 2; i++)
        test_sleep_ms(2);
    check(nseen == 2, "no SIGCHLD for B");
    check(seen_pid[1] == b && seen_code[1] == CLD_KILLED && seen_status[1] == SIGTERM,
          "B's SIGCHLD: pid %d code %d status %d, expected pid %d, CLD_KILLED, %d",
          (int)seen_pid[1], seen_code[1], seen_status[1], b, SIGTERM);

    check_sys(sigprocmask(SIG_BLOCK, &chld, NULL));
    check_sys(kill(d, SIGUSR1));
    siginfo_t si;
    struct timespec ts = {5, 0};
    int r = sigtimedwait(&chld, &si, &ts);
    check(r == SIGCHLD, "sigtimedwait: %d (%s)", r, strerror(errno));
    check(si.si_pid == d && si.si_code == CLD_EXITED && si.si_status == 3,
          "D's SIGCHLD by sigtimedwait: pid %d code %d status %d, expected pid %d", si.si_pid,
          si.si_code, si.si_status, d);

    memset(&si, 0, sizeof si);
    check(waitid(P_PID, (id_t)a, &si, WEXITED) == 0 && si.si_pid == a && si.si_status == 5,
          "waitid(A): pid %d status %d: %s", si.si_pid, si.si_status, strerror(errno));
    int st;
    check(waitpid(b, &st, 0) == b && WIFSIGNALED(st), "waitpid(B): %s", strerror(errno));
    check(waitpid(d, &st, 0) == d && WIFEXITED(st) && WEXITSTATUS(st) == 3,
          "waitpid(D): %s", strerror(errno));
    pass();
    return 0;
}
