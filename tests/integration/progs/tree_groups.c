/* tree_groups - process groups and sessions inside a process tree.
 *
 * The root forks:
 *   A  a session leader (setsid) that forked A1 before its setsid (A1
 *      stays in the root's session) and A2 after (in A's session), then
 *      A3 which leads a group of its own in A's session and A4 which
 *      joins A3's group (a shell's pipeline);
 *   B  a group leader (setpgid(0, 0)) in the root's session, with a child
 *      B1 in B's group;
 *   P1 and P2: a pipeline whose first command (P1, the group's leader)
 *      has ended and was reaped: P2 is alone in group P1.
 * Every process reports its pid, parent, group and session to the root
 * before READY. After the go file the root checks getpgid()/getsid() of
 * every one, signals each group with killpg() (and the processes in its
 * own group with kill()); each process checks its own getpgrp(),
 * getsid(0) and getppid() against what it had, waits for its children
 * and exits 0. The root waits for P2 with waitpid(-group of P1), for B
 * with waitid(P_PGID), for A by pid: every exit status must be 0.
 */
#include <signal.h>
#include <sys/wait.h>

#include "testlib.h"

struct ids {
    int32_t pid, ppid, pgid, sid;
};

static int report_fd = -1;
static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
    (void)sig;
    got_usr1 = 1;
}

static struct ids mine(void)
{
    struct ids i = {getpid(), getppid(), getpgrp(), getsid(0)};
    return i;
}

/* Tell the root who we are, wait for SIGUSR1, check nothing changed,
 * wait for our children, exit. */
static void live(void)
{
    struct ids me = mine();
    if (write(report_fd, &me, sizeof me) != sizeof me)
        _exit(20);
    while (!got_usr1)
        test_sleep_ms(10);
    struct ids now = mine();
    int bad = now.pid != me.pid ? 11 : now.ppid != me.ppid ? 12 : now.pgid != me.pgid ? 13
            : now.sid != me.sid ? 14 : 0;
    if (bad)
        fprintf(stderr, "process %d: was %d/%d/%d/%d, now %d/%d/%d/%d\n", me.pid, me.pid,
                me.ppid, me.pgid, me.sid, now.pid, now.ppid, now.pgid, now.sid);
    int st;
    pid_t k;
    while ((k = wait(&st)) > 0)
        if (!WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "process %d: child %d ended with status %#x\n", me.pid, k, st);
            bad = 15;
        }
    _exit(bad);
}

static pid_t spawn(int how, pid_t group)
{
    pid_t k = fork();
    check_sys(k);
    if (k) {
        /* as a shell does, from both sides: whichever comes first */
        if (how == 2)
            check(setpgid(k, group ? group : k) == 0 || errno == EACCES,
                  "setpgid(%d, %d): %s", k, group, strerror(errno));
        return k;
    }
    if (how == 1)
        check_sys(setsid());
    else if (how == 2)
        setpgid(0, group);
    return 0;
}

int main(void)
{
    int rp[2];
    check_sys(pipe(rp));
    report_fd = rp[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    check_sys(sigaction(SIGUSR1, &sa, NULL));

    pid_t a = fork();
    check_sys(a);
    if (a == 0) {
        if (spawn(0, 0) == 0)
            live(); /* A1: forked before A's setsid */
        check_sys(setsid());
        if (spawn(0, 0) == 0)
            live(); /* A2 */
        pid_t a3 = spawn(2, 0);
        if (a3 == 0)
            live(); /* A3: a group of its own */
        if (spawn(2, a3) == 0)
            live(); /* A4: in A3's group */
        live();
    }
    pid_t b = spawn(2, 0);
    if (b == 0) {
        if (spawn(0, 0) == 0)
            live(); /* B1 */
        live();
    }
    pid_t p1 = spawn(2, 0);
    if (p1 == 0)
        _exit(0); /* P1: leads its group, ends */
    pid_t p2 = spawn(2, p1);
    if (p2 == 0)
        live();
    int st;
    check(waitpid(p1, &st, 0) == p1, "waitpid P1: %s", strerror(errno));
    close(rp[1]);

    struct ids all[16], self = mine();
    int n = 0;
    while (n < 8) {
        ssize_t r = read(rp[0], &all[n], sizeof all[n]);
        check(r == sizeof all[n], "reading the reports: %zd (%s)", r, strerror(errno));
        n++;
    }
    for (int i = 0; i < n; i++)
        test_msg("process %d: parent %d group %d session %d", all[i].pid, all[i].ppid,
                 all[i].pgid, all[i].sid);
    test_ready();
    test_wait_go();

    struct ids now = mine();
    check(now.pgid == self.pgid && now.sid == self.sid,
          "root: group %d session %d, was %d %d", now.pgid, now.sid, self.pgid, self.sid);
    for (int i = 0; i < n; i++) {
        check(getpgid(all[i].pid) == all[i].pgid, "getpgid(%d) = %d, was %d", all[i].pid,
              getpgid(all[i].pid), all[i].pgid);
        check(getsid(all[i].pid) == all[i].sid, "getsid(%d) = %d, was %d", all[i].pid,
              getsid(all[i].pid), all[i].sid);
    }
    /* every group but ours by killpg, ours by pid */
    for (int i = 0; i < n; i++) {
        if (all[i].pgid == self.pgid) {
            check_sys(kill(all[i].pid, SIGUSR1));
            continue;
        }
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= all[j].pgid == all[i].pgid;
        if (!seen)
            check(killpg(all[i].pgid, SIGUSR1) == 0, "killpg(%d): %s", all[i].pgid,
                  strerror(errno));
    }
    check(waitpid(-p1, &st, 0) == p2, "waitpid(-%d) (the group of P1): %s", p1,
          strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "P2 ended with status %#x", st);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    check(waitid(P_PGID, (id_t)b, &si, WEXITED) == 0, "waitid(P_PGID, %d): %s", b,
          strerror(errno));
    check(si.si_pid == b && si.si_code == CLD_EXITED && si.si_status == 0,
          "B: waitid says pid %d code %d status %d", si.si_pid, si.si_code, si.si_status);
    check(waitpid(a, &st, 0) == a, "waitpid A: %s", strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "A ended with status %#x", st);
    pass();
    return 0;
}
