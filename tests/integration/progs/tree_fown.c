/* tree_fown - a descriptor whose signals (F_SETOWN) go to another process
 * of the tree keeps sending them there after a checkpoint of the tree.
 *
 * The child holds the read end of a pipe with O_ASYNC, owned by its
 * parent (F_SETOWN getppid()), with SIGUSR1 as its signal (F_SETSIG).
 * After the go file the parent writes into the pipe and must get SIGUSR1;
 * the child checks F_GETOWN still names its parent, then reads the byte.
 */
#include <signal.h>
#include <sys/wait.h>

#include "testlib.h"

static volatile sig_atomic_t got;

static void on_usr1(int s)
{
    (void)s;
    got++;
}

int main(void)
{
    test_go_setup(); /* the child waits for the go file too */
    signal(SIGUSR1, on_usr1);
    int p[2], c2p[2];
    check_sys(pipe(p));
    check_sys(pipe(c2p));
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        close(p[1]);
        check_sys(fcntl(p[0], F_SETOWN, getppid()));
        check_sys(fcntl(p[0], F_SETSIG, SIGUSR1));
        check_sys(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC));
        check(write(c2p[1], "r", 1) == 1, "child: write: %s", strerror(errno));
        while (!test_go_reached())
            test_sleep_ms(10);
        check(fcntl(p[0], F_GETOWN) == getppid(), "child: the owner is %d, not the parent %d",
              fcntl(p[0], F_GETOWN), (int)getppid());
        char b;
        check(read(p[0], &b, 1) == 1 && b == 'x', "child: read: %s", strerror(errno));
        _exit(0);
    }
    close(p[0]);
    char ch;
    check(read(c2p[0], &ch, 1) == 1, "the child did not start");
    test_ready();
    while (!test_go_reached())
        test_sleep_ms(10);
    check(write(p[1], "x", 1) == 1, "write: %s", strerror(errno));
    for (int i = 0; i < 200 && !got; i++)
        test_sleep_ms(5);
    check(got, "no SIGUSR1 from the child's pipe: its owner is not this process");
    int st = 0;
    check(waitpid(k, &st, 0) == k, "waitpid(%d): %s", (int)k, strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
    pass();
}
