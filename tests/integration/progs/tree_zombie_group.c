/* tree_zombie_group - zombies keep their process group across a restore.
 *
 * The root forks A, which makes a group of its own (setpgid(0, 0)) and
 * waits; B, which joins A's group and exits at once; C, which makes a
 * group of its own and stays; D, which joins C's group and exits. Then A
 * ends and is reaped: B is a zombie alone in the group of a leader that
 * is gone, D a zombie in the group of the living C. READY.
 * After the go file: getpgid() of B names A's group and of D names C's
 * (the restore makes B's group again in the zombie), waitid(WNOWAIT)
 * sees both, waitpid gives their exit statuses (3 and 4), and C, told
 * with SIGTERM, ends with 0 after checking its own group.
 */
#include <signal.h>
#include <sys/wait.h>

#include "testlib.h"

static pid_t fork_in(pid_t group, int code)
{
    pid_t p = fork();
    check_sys(p);
    if (p == 0) {
        if (setpgid(0, group) < 0)
            _exit(10);
        if (code >= 0)
            _exit(code);
        pid_t mine = getpgrp();
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGTERM);
        sigprocmask(SIG_BLOCK, &s, NULL);
        int sig;
        sigwait(&s, &sig);
        _exit(getpgrp() == mine && mine == getpid() ? 0 : 11);
    }
    setpgid(p, group ? group : p); /* whichever runs first */
    return p;
}

/* Wait until pid is a zombie (its exit seen, not reaped). */
static void until_zombie(pid_t pid)
{
    for (int i = 0; i < 2000; i++) {
        siginfo_t si = {0};
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            return;
        test_sleep_ms(5);
    }
    fail("process %d did not exit", pid);
}

int main(void)
{
    /* A and C are born with SIGTERM blocked: the SIGTERM sent to A below
     * may come before A has run a line of its own (a slow fork, load) */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    check_sys(sigprocmask(SIG_BLOCK, &term, &old));
    pid_t a = fork_in(0, -1);
    pid_t b = fork_in(a, 3);
    pid_t c = fork_in(0, -1);
    pid_t d = fork_in(c, 4);
    check_sys(sigprocmask(SIG_SETMASK, &old, NULL));
    until_zombie(b);
    until_zombie(d);
    check_sys(kill(a, SIGTERM));
    int st;
    check_sys(waitpid(a, &st, 0));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "A ended with status %#x", st);
    check(getpgid(b) == a && getpgid(d) == c, "before: B in group %d (A %d), D in %d (C %d)",
          getpgid(b), a, getpgid(d), c);
    test_ready();
    test_wait_go();

    check(getpgid(b) == a, "zombie B is in group %d, it was in A's (%d)", getpgid(b), a);
    check(getpgid(d) == c, "zombie D is in group %d, it was in C's (%d)", getpgid(d), c);
    check(getpgid(c) == c, "C is in group %d, it led its own (%d)", getpgid(c), c);
    siginfo_t si = {0};
    check_sys(waitid(P_PID, (id_t)b, &si, WEXITED | WNOWAIT));
    check(si.si_pid == b, "waitid(WNOWAIT) of B names %d", si.si_pid);
    check(waitpid(b, &st, 0) == b && WIFEXITED(st) && WEXITSTATUS(st) == 3,
          "B: status %#x, expected exit 3", st);
    check(waitpid(d, &st, 0) == d && WIFEXITED(st) && WEXITSTATUS(st) == 4,
          "D: status %#x, expected exit 4", st);
    check_sys(kill(c, SIGTERM));
    check(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "C: status %#x, expected 0", st);
    pass();
}
