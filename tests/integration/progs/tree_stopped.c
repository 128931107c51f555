/* tree_stopped - stopped children in a process tree.
 *
 * The parent forks two children that each write their index into a pipe
 * every 5 ms; the first ends (status 9) as soon as it reads a byte the
 * parent writes for it once it is stopped, so it must never run while
 * stopped (a checkpoint continues it, but holds its threads). It stops the first with SIGSTOP and looks at the stop with
 * waitid(WSTOPPED | WNOWAIT) (the report stays), and the second with
 * SIGTSTP without waiting (after a restore in an orphaned process group
 * it is stopped by SIGSTOP: the kernel drops SIGTSTP there). After the go file: both are still stopped (no
 * byte from them for 200 ms), waitpid(WUNTRACED) reports each stopped by
 * its signal, SIGCONT makes each write again, and SIGTERM ends each,
 * which waitpid reports.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "testlib.h"

static int drain(int fd, int counts[2])
{
    char buf[256];
    ssize_t r;
    int total = 0;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] == 0 || buf[i] == 1)
                counts[(int)buf[i]]++;
            total++;
        }
    return total;
}

static void wait_stopped(pid_t k)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    for (int i = 0; i < 500; i++) {
        check_sys(waitid(P_PID, (id_t)k, &si, WSTOPPED | WNOWAIT | WNOHANG));
        if (si.si_pid == k)
            return;
        test_sleep_ms(5);
    }
    fail("child %d did not stop", k);
}

int main(void)
{
    int p[2], ctl[2];
    check_sys(pipe2(p, O_NONBLOCK));
    check_sys(pipe2(ctl, O_NONBLOCK));
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        check_sys(kids[i]);
        if (kids[i] == 0) {
            close(p[0]);
            char c = (char)i, x;
            for (;;) {
                /* the first ends (9) once it can read its byte: it must
                 * not run between stop and SIGCONT, checkpoints included */
                if (i == 0 && read(ctl[0], &x, 1) == 1)
                    _exit(9);
                if (write(p[1], &c, 1) < 0 && errno != EAGAIN)
                    _exit(3);
                test_sleep_ms(5);
            }
        }
    }
    close(p[1]);
    check_sys(kill(kids[0], SIGSTOP));
    wait_stopped(kids[0]);
    check(write(ctl[1], "x", 1) == 1, "write: %s", strerror(errno));
    check_sys(kill(kids[1], SIGTSTP));
    wait_stopped(kids[1]);
    test_ready();
    int counts[2] = {0, 0};
    while (!test_go_reached()) {
        drain(p[0], counts);
        test_sleep_ms(20);
    }

    drain(p[0], counts);
    counts[0] = counts[1] = 0;
    test_sleep_ms(200);
    drain(p[0], counts);
    check(counts[0] == 0 && counts[1] == 0, "stopped children wrote %d and %d bytes", counts[0],
          counts[1]);
    int sigs[2] = {SIGSTOP, SIGTSTP};
    for (int i = 0; i < 2; i++) {
        int st;
        pid_t r = waitpid(kids[i], &st, WUNTRACED | WNOHANG);
        check(r == kids[i], "waitpid(%d, WUNTRACED) = %d: %s", kids[i], r, strerror(errno));
        /* (a restored group that is orphaned, as the root's is after
         * restore --detach, cannot be stopped by SIGTSTP: SIGSTOP then) */
        check(WIFSTOPPED(st) && (WSTOPSIG(st) == sigs[i] || WSTOPSIG(st) == SIGSTOP),
              "child %d: status %#x, not stopped by %d", kids[i], st, sigs[i]);
        check_sys(kill(kids[i], SIGCONT));
        int64_t end = test_now_ns() + 5000000000LL;
        while (i == 1 && counts[i] == 0 && test_now_ns() < end) {
            test_sleep_ms(10);
            drain(p[0], counts);
        }
        if (i == 1) {
            check(counts[i] > 0, "child %d does not run after SIGCONT", kids[i]);
            check_sys(kill(kids[i], SIGTERM));
        }
        r = waitpid(kids[i], &st, 0);
        while (r == kids[i] && WIFCONTINUED(st))
            r = waitpid(kids[i], &st, 0);
        check(r == kids[i], "waitpid(%d) = %d: %s", kids[i], r, strerror(errno));
        if (i == 0)
            check(WIFEXITED(st) && WEXITSTATUS(st) == 9, "child %d: status %#x (not the exit "
                  "after reading its byte)", kids[i], st);
        else
            check(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "child %d: status %#x", kids[i],
                  st);
    }
    pass();
    return 0;
}
