/* tree_dead_pidfd - two processes of a tree hold pidfds of one process
 * that has exited: they still name one process after a restore.
 *
 * The root forks C, which forks G and tells the root G's pid; the root
 * opens a pidfd of G (PIDFD_NONBLOCK), C one (blocking), the root kills
 * G with SIGKILL through its pidfd and C reaps G. READY.
 * After the go file (the root sends C SIGUSR1): C sends the inode of its
 * pidfd through a pipe; the root's has the same inode (one process, as
 * before), both fail signal 0 with ESRCH, the root's is still
 * O_NONBLOCK and C's is not; C ends with 0.
 */
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
    (void)sig;
    go = 1;
}

static int pidfd_open(pid_t pid, unsigned flags)
{
    return (int)syscall(SYS_pidfd_open, pid, flags);
}

static int dead(int pfd)
{
    return syscall(SYS_pidfd_send_signal, pfd, 0, NULL, 0) < 0 && errno == ESRCH;
}

int main(void)
{
    int up[2], down[2];
    check_sys(pipe(up));
    check_sys(pipe(down));
    signal(SIGUSR1, on_usr1);
    pid_t c = fork();
    check_sys(c);
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            for (;;)
                pause();
        }
        int pfd = g > 0 ? pidfd_open(g, 0) : -1;
        if (pfd < 0 || write(up[1], &g, sizeof g) != sizeof g)
            _exit(2);
        int st;
        if (waitpid(g, &st, 0) != g || !WIFSIGNALED(st))
            _exit(3);
        char ok = 1;
        if (write(up[1], &ok, 1) != 1)
            _exit(4);
        while (!go)
            test_sleep_ms(10);
        struct stat s;
        if (fstat(pfd, &s) < 0 || write(up[1], &s.st_ino, sizeof s.st_ino) != sizeof s.st_ino)
            _exit(5);
        _exit(dead(pfd) && !(fcntl(pfd, F_GETFL) & O_NONBLOCK) ? 0 : 6);
    }
    pid_t g;
    check(read(up[0], &g, sizeof g) == sizeof g, "no pid from C");
    int pfd = pidfd_open(g, PIDFD_NONBLOCK);
    check_sys(pfd);
    check_sys(syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0));
    char ok;
    check(read(up[0], &ok, 1) == 1, "C did not reap G");
    check(dead(pfd), "G is still alive");
    test_ready();
    test_wait_go();

    check_sys(kill(c, SIGUSR1));
    ino_t theirs;
    check(read(up[0], &theirs, sizeof theirs) == sizeof theirs, "no inode from C");
    struct stat s;
    check_sys(fstat(pfd, &s));
    check(s.st_ino == theirs, "the root's pidfd of G is inode %lu, C's %lu: not one process",
          (unsigned long)s.st_ino, (unsigned long)theirs);
    check(dead(pfd), "the root's pidfd of G names a living process");
    check(fcntl(pfd, F_GETFL) & O_NONBLOCK, "the root's pidfd lost PIDFD_NONBLOCK");
    int st;
    check(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "C: status %#x, expected 0", st);
    pass();
}
