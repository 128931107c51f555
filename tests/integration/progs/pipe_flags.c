/* pipe_flags - F_GETFL of pipes and FIFOs is what it was after a restore.
 *
 * Before READY: a pipe P (read end O_NONBLOCK, write end O_ASYNC with
 * this process as its owner), a second pipe Q made with pipe2(O_CLOEXEC),
 * and a FIFO F opened read-write by path. Their F_GETFL values are kept.
 * After the go file: each gives the same F_GETFL, in this process and in
 * a child forked now (a restore opens the ends again, which sets the
 * kernel's O_LARGEFILE on them; a pipe the program makes never has it,
 * an opened FIFO always does).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testlib.h"

#define N 5
static int fds[N], was[N];
static const char *names[N] = {"P read", "P write", "Q read", "Q write", "FIFO"};

static int mismatch(char *why, size_t len)
{
    for (int i = 0; i < N; i++) {
        int now = fcntl(fds[i], F_GETFL);
        if (now != was[i]) {
            snprintf(why, len, "%s (fd %d): F_GETFL %#o, was %#o", names[i], fds[i], now, was[i]);
            return 1;
        }
    }
    return 0;
}

int main(void)
{
    signal(SIGIO, SIG_IGN);
    int p[2], q[2];
    check_sys(pipe(p));
    check_sys(pipe2(q, O_CLOEXEC));
    check_sys(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK));
    check_sys(fcntl(p[1], F_SETOWN, getpid()));
    check_sys(fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_ASYNC));
    check_sys(mkfifo("f.fifo", 0600));
    int f = open("f.fifo", O_RDWR);
    check_sys(f);
    fds[0] = p[0], fds[1] = p[1], fds[2] = q[0], fds[3] = q[1], fds[4] = f;
    for (int i = 0; i < N; i++)
        was[i] = fcntl(fds[i], F_GETFL);
    test_ready();
    test_wait_go();

    char why[200];
    check(!mismatch(why, sizeof why), "%s", why);
    pid_t c = fork();
    check_sys(c);
    if (c == 0) {
        if (mismatch(why, sizeof why)) {
            test_msg("child: %s", why);
            _exit(1);
        }
        _exit(0);
    }
    int st;
    check_sys(waitpid(c, &st, 0));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's check failed (status %#x)", st);
    pass();
}
