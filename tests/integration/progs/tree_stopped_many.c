/* tree_stopped_many - many stopped children that must not run.
 *
 * The parent forks 24 children. Each says it runs (a byte into a pipe),
 * then blocks reading a second pipe, and ends (status 9) with the first
 * byte it reads. The parent stops every child (SIGSTOP, seen with waitid
 * WNOWAIT), then writes 24 bytes into that pipe: a child that runs for a
 * moment while it should be stopped (during or after a checkpoint, with
 * or without --kill, or after a restore) takes one and ends. After the go
 * file: all 24 bytes are still there, no child has ended, each is stopped
 * by SIGSTOP; SIGCONT lets every child take its byte and end with 9.
 * Each child has a SIGCONT handler, which must run on its own thread
 * (never on a thread of the shim's while the program's are parked):
 * elsewhere it ends the child with 6.
 */
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "testlib.h"

#define KIDS 24

static void on_cont(int sig)
{
    (void)sig;
    if (gettid() != getpid())
        _exit(6);
}

static int waiting_bytes(int fd)
{
    int n = -1;
    check_sys(ioctl(fd, FIONREAD, &n));
    return n;
}

int main(void)
{
    int up[2], go[2];
    check_sys(pipe(up));
    check_sys(pipe(go));
    pid_t kids[KIDS];
    for (int i = 0; i < KIDS; i++) {
        kids[i] = fork();
        check_sys(kids[i]);
        if (kids[i] == 0) {
            char x = 'u';
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_cont;
            sigaction(SIGCONT, &sa, NULL);
            close(up[0]);
            close(go[1]);
            if (write(up[1], &x, 1) != 1)
                _exit(3);
            for (;;) {
                ssize_t r = read(go[0], &x, 1);
                if (r == 1)
                    _exit(9);
                if (r == 0 || errno != EINTR)
                    _exit(4);
            }
        }
    }
    close(up[1]);
    for (int got = 0; got < KIDS;) {
        char b[KIDS];
        ssize_t r = read(up[0], b, sizeof b);
        check(r > 0, "the children do not start: %s", strerror(errno));
        got += (int)r;
    }
    for (int i = 0; i < KIDS; i++) {
        check_sys(kill(kids[i], SIGSTOP));
        siginfo_t si;
        memset(&si, 0, sizeof si);
        check_sys(waitid(P_PID, (id_t)kids[i], &si, WSTOPPED | WNOWAIT));
        check(si.si_pid == kids[i] && si.si_code == CLD_STOPPED, "child %d did not stop",
              kids[i]);
    }
    char bytes[KIDS];
    memset(bytes, 'g', sizeof bytes);
    check(write(go[1], bytes, sizeof bytes) == KIDS, "write: %s", strerror(errno));
    test_ready();
    test_wait_go();

    test_sleep_ms(100);
    int left = waiting_bytes(go[0]);
    check(left == KIDS, "%d stopped children ran and read their byte", KIDS - left);
    for (int i = 0; i < KIDS; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        check_sys(waitid(P_PID, (id_t)kids[i], &si, WEXITED | WNOHANG | WNOWAIT));
        check(si.si_pid == 0, "child %d ended (code %d, status %d) while stopped", kids[i],
              si.si_code, si.si_status);
        int st = 0;
        pid_t r = waitpid(kids[i], &st, WUNTRACED | WNOHANG);
        check(r == kids[i] && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP,
              "waitpid(%d, WUNTRACED) = %d, status %#x: not stopped by SIGSTOP", kids[i], r, st);
    }
    for (int i = 0; i < KIDS; i++)
        check_sys(kill(kids[i], SIGCONT));
    for (int i = 0; i < KIDS; i++) {
        int st = 0;
        pid_t r;
        do
            r = waitpid(kids[i], &st, 0);
        while (r == kids[i] && !WIFEXITED(st) && !WIFSIGNALED(st));
        check(r == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 9,
              "child %d: waitpid = %d, status %#x (not the exit after reading its byte)",
              kids[i], r, st);
    }
    check(waiting_bytes(go[0]) == 0, "bytes left after every child read one");
    pass();
    return 0;
}
