/* tree_vfork - a child made by vfork that has not exec'd yet.
 *
 * The parent forks A; A makes B with vfork. B writes one byte to a pipe
 * the parent reads (a system call: nothing written to A's memory), waits
 * for the go file, checks its parent is A, then execs "sh -c 'exit 7'"
 * (exit 9 if its parent is wrong). A waits for B and exits 0 if B's
 * status is 7. Under the shim vfork is a fork (preload/syscall.S), so A
 * runs on while B waits and the tree is checkpointed with both; without
 * the shim A stays inside vfork until B execs, and the test passes all
 * the same (so `--plain` checks the program).
 */
#include <sys/wait.h>

#include "testlib.h"

int main(void)
{
    int p[2];
    check(pipe(p) == 0, "pipe");
    test_go_setup();
    pid_t a = fork();
    check(a >= 0, "fork");
    if (a == 0) {
        pid_t me = getpid();
        pid_t b = vfork();
        if (b < 0)
            _exit(20);
        if (b == 0) {
            if (write(p[1], "b", 1) != 1)
                _exit(21);
            test_wait_go();
            if (getppid() != me)
                _exit(9);
            execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL);
            _exit(22);
        }
        int st;
        if (waitpid(b, &st, 0) != b)
            _exit(23);
        _exit(WIFEXITED(st) && WEXITSTATUS(st) == 7 ? 0 : 24);
    }
    char c;
    check(read(p[0], &c, 1) == 1 && c == 'b', "read the vfork child's byte");
    test_ready();
    test_wait_go();
    int st;
    if (waitpid(a, &st, 0) != a)
        fail("waitpid %d: %s", (int)a, strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fail("A ended with status 0x%x (24: B's status was not 7; B exits 9 if its parent "
             "was not A)", st);
    pass();
}
