/* raw_clone_exit - a child made with a raw clone() that exits normally
 * (running the destructors it inherited) must not remove its parent's
 * control socket.
 *
 * The child is created with syscall(SYS_clone) (no atfork handlers run,
 * so the child's copy of the shim still names the parent's socket) and
 * calls exit(0). The parent reaps it and only then says READY: if the
 * child's destructor had removed the parent's socket, the checkpoint the
 * driver takes next could not find the program. After restore the program
 * does it again, and checks the child's exit status both times.
 */
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

static void clone_and_reap(void)
{
    long child = syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
    check_sys(child);
    if (child == 0)
        exit(7); /* exit(), not _exit(): destructors run */
    int st = 0;
    check_sys(waitpid((pid_t)child, &st, 0));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 7, "child status %#x", st);
}

int main(void)
{
    clone_and_reap();
    test_ready();
    test_wait_go();
    clone_and_reap();
    pass();
}
