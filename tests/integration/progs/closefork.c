/* closefork - a parent forking children that close every descriptor and
 * exec, as Java's process launcher does.
 *
 * Each child closes descriptors 3 and up (the shim's control socket with
 * them: its manager then waits for calls, ctlproto.h) and execs
 * /bin/true; the parent waits for it and goes on, until the go file.
 * A tree checkpoint that called such a child just before its exec waited
 * for an answer the exec'd program never gave: the whole tree paused 10 s
 * (test_trees.sh checkpoints it many times, each in well under that).
 * After the go file: PASS if every child ended with status 0.
 */
#include <sys/wait.h>

#include "testlib.h"

int main(void)
{
    test_ready();
    long n = 0;
    while (!test_go_reached()) {
        pid_t c = fork();
        check(c >= 0, "fork");
        if (c == 0) {
            closefrom(3);
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        int st;
        if (waitpid(c, &st, 0) != c)
            fail("waitpid %d: %s", (int)c, strerror(errno));
        if (!WIFEXITED(st) || WEXITSTATUS(st))
            fail("child %ld ended with status 0x%x", n, st);
        n++;
    }
    pass();
}
