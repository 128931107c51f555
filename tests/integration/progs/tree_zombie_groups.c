/* tree_zombie_groups - children not yet waited for keep their process
 * group across a restore.
 *
 * The root forks:
 *   Z  leads a group of its own (setpgid(0, 0)) and exits 3;
 *   L  leads a group of its own and lives (waits for SIGUSR1);
 *   W  joins L's group and exits 4;
 *   A  leads a group of its own, makes B a child of the root
 *      (clone CLONE_PARENT) in A's group, and exits; the root reaps A:
 *      B exits 5 and is alone in the group of A, whose leader is gone
 *      (zdtm zombie01);
 *   E  exits 6 in the root's group.
 * Before READY the root waits (WNOWAIT) until Z, W, B and E have exited.
 * After restore: getpgid() of each zombie is what it was, waitid with
 * P_PGID finds Z in Z's group and B in A's, and every status is right.
 */
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
    (void)sig;
    got_usr1 = 1;
}

static pid_t child(pid_t group, int code)
{
    pid_t k = fork();
    check_sys(k);
    if (k) {
        if (group >= 0)
            setpgid(k, group);          /* as a shell does, from both sides */
        return k;
    }
    if (group >= 0 && setpgid(0, group) < 0)
        _exit(90);
    if (code >= 0)
        _exit(code);
    while (!got_usr1)
        test_sleep_ms(10);
    _exit(0);
}

static void exited(pid_t k)
{
    siginfo_t si;
    for (int i = 0; i < 1000; i++) {
        memset(&si, 0, sizeof si);
        check_sys(waitid(P_PID, (id_t)k, &si, WEXITED | WNOWAIT | WNOHANG));
        if (si.si_pid == k)
            return;
        test_sleep_ms(10);
    }
    fail("child %d did not exit", k);
}

static void reap(idtype_t t, id_t id, pid_t want, int code)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    check_sys(waitid(t, id, &si, WEXITED));
    check(si.si_pid == want && si.si_code == CLD_EXITED && si.si_status == code,
          "waitid(%d, %d): pid %d code %d status %d, expected %d exited %d", (int)t, (int)id,
          si.si_pid, si.si_code, si.si_status, want, code);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    check_sys(sigaction(SIGUSR1, &sa, NULL));

    pid_t z = child(0, 3);
    pid_t l = child(0, -1);
    pid_t w = child(l, 4);
    int bp[2], gp[2];                   /* B's pid to the root; the root to B */
    check_sys(pipe(bp));
    check_sys(pipe(gp));
    pid_t a = fork();
    check_sys(a);
    if (a == 0) {
        if (setpgid(0, 0) < 0)
            _exit(91);
        long b = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
        if (b == 0) {
            char c;
            (void)!read(gp[0], &c, 1); /* until A has been reaped */
            _exit(5);
        }
        pid_t bb = (pid_t)b;
        _exit(write(bp[1], &bb, sizeof bb) == sizeof bb ? 0 : 92);
    }
    pid_t b = 0;
    check(read(bp[0], &b, sizeof b) == sizeof b, "B's pid");
    reap(P_PID, (id_t)a, a, 0);
    check(write(gp[1], "x", 1) == 1, "let B end");
    /* (a group whose leader is outside our pid namespace reads as 0: E
     * then simply stays in it) */
    pid_t e = child(getpgrp() > 0 ? getpgrp() : -1, 6);
    exited(z);
    exited(w);
    exited(b);
    exited(e);
    check(getpgid(b) == a, "B is in group %d, expected %d", getpgid(b), a);

    test_ready();
    test_wait_go();

    check(getpgid(z) == z, "zombie Z: group %d, expected %d", getpgid(z), z);
    check(getpgid(w) == l, "zombie W: group %d, expected L's %d", getpgid(w), l);
    check(getpgid(l) == l, "L: group %d, expected %d", getpgid(l), l);
    check(getpgid(b) == a, "zombie B: group %d, expected the gone A's %d", getpgid(b), a);
    check(getpgid(e) == getpgrp(), "zombie E: group %d, expected the root's %d", getpgid(e),
          getpgrp());
    reap(P_PGID, (id_t)z, z, 3);
    reap(P_PGID, (id_t)a, b, 5);
    reap(P_PID, (id_t)w, w, 4);
    reap(P_PID, (id_t)e, e, 6);
    check_sys(kill(l, SIGUSR1));
    reap(P_PGID, (id_t)l, l, 0);
    pass();
}
