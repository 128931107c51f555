/* tree_wide - a parent with many children (CK_KIDS, 150 by default), each
 * blocked reading a pipe. After go the parent closes its end: every child
 * reads end of file and ends with status 7, and the parent waits for each
 * by the pid it knows.
 *
 * test_trees.sh checkpoints it with coord's soft descriptor limit at 200:
 * coord holds three descriptors per process and must make room for them
 * under the hard limit (a tree of 260 idle children failed under the
 * default 1024, "kept changing while it was being parked").
 */
#include <sys/wait.h>

#include "testlib.h"

int main(void)
{
    const char *k = getenv("CK_KIDS");
    int n = k && atoi(k) > 0 ? atoi(k) : 150;
    pid_t *kids = calloc((size_t)n, sizeof *kids);
    check(kids != NULL, "calloc");
    int p[2];
    check_sys(pipe(p));
    test_go_setup(); /* (the children wait for the go file too) */
    for (int i = 0; i < n; i++) {
        kids[i] = fork();
        check_sys(kids[i]);
        if (kids[i] == 0) {
            close(p[1]);
            char c;
            ssize_t r;
            while ((r = read(p[0], &c, 1)) < 0 && errno == EINTR)
                ;
            _exit(r == 0 ? 7 : 3);
        }
    }
    close(p[0]);
    test_ready();
    test_wait_go();
    close(p[1]);
    for (int i = 0; i < n; i++) {
        int st = 0;
        check(waitpid(kids[i], &st, 0) == kids[i], "waitpid %d: %s", kids[i], strerror(errno));
        check(WIFEXITED(st) && WEXITSTATUS(st) == 7, "child %d: status %#x", kids[i], st);
    }
    pass();
    return 0;
}
