/* tree_sigqueue - sigqueue between processes of a tree after restore.
 *
 * The parent forks a child before READY and handles SIGUSR1 with an
 * SA_SIGINFO handler. After the go file the child sends the parent
 * sigqueue(getppid(), SIGUSR1, 77) and the parent sends the child
 * sigqueue(child, SIGUSR2, 88); each must arrive (no ESRCH: glibc makes
 * rt_sigqueueinfo itself, with the pid the program knows), with its value
 * and si_code SI_QUEUE, and the parent's with si_pid the child's pid as
 * fork returned it. The child exits 0 if its signal came right.
 */
#include <signal.h>
#include <sys/wait.h>

#include "testlib.h"

static volatile sig_atomic_t got;
static volatile int got_value, got_code;
static volatile pid_t got_pid;

static void on_sig(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    got_value = si->si_value.sival_int;
    got_code = si->si_code;
    got_pid = si->si_pid;
    got = 1;
}

static int wait_got(void)
{
    for (int i = 0; i < 3000 && !got; i++)
        usleep(1000);
    return got;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    check(sigaction(SIGUSR1, &sa, NULL) == 0 && sigaction(SIGUSR2, &sa, NULL) == 0,
          "sigaction");
    pid_t c = fork();
    check(c >= 0, "fork");
    if (c == 0) {
        test_wait_go();
        union sigval v = {.sival_int = 77};
        if (sigqueue(getppid(), SIGUSR1, v) < 0)
            _exit(10);
        if (!wait_got())
            _exit(11);
        _exit(got_value == 88 && got_code == SI_QUEUE ? 0 : 12);
    }
    test_ready();
    test_wait_go();
    if (!wait_got())
        fail("no SIGUSR1 from the child");
    if (got_value != 77 || got_code != SI_QUEUE || got_pid != c)
        fail("SIGUSR1: value %d, code %d, si_pid %d (expected 77, SI_QUEUE, %d)", got_value,
             got_code, (int)got_pid, (int)c);
    union sigval v = {.sival_int = 88};
    if (sigqueue(c, SIGUSR2, v) < 0)
        fail("sigqueue to the child %d: %s", (int)c, strerror(errno));
    int st;
    if (waitpid(c, &st, 0) != c)
        fail("waitpid %d: %s", (int)c, strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fail("the child ended with status 0x%x (10: its sigqueue failed, 11: no SIGUSR2, "
             "12: wrong value)", st);
    pass();
}
