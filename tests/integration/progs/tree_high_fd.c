/* tree_high_fd - a child whose only descriptor above 2 is number 1000
 * (a shell's `exec 990>>log` in a subshell), restored by a coord whose
 * soft descriptor limit is 1024 (test_progs.sh LOW_NOFILE).
 *
 * A child forked by its parent's restorer takes its table above its
 * highest number first: its restorer must make room for that (the
 * numbers coord's own descriptors took above the program's go past the
 * limit coord set for the program's). After the go file the child writes
 * through fd 1000 and checks the file, and the parent waits for it.
 */
#include <sys/wait.h>

#include "testlib.h"

int main(void)
{
    test_go_setup(); /* (the child waits for the go file too) */
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        int fd = open("high.log", O_RDWR | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || dup2(fd, 1000) != 1000)
            _exit(2);
        close(fd);
        if (write(1000, "before\n", 7) != 7)
            _exit(2);
        test_wait_go();
        char buf[64] = "";
        if (write(1000, "after\n", 6) != 6 || pread(1000, buf, sizeof buf - 1, 0) != 13 ||
            strcmp(buf, "before\nafter\n") != 0) {
            test_msg("child: fd 1000 holds '%s'", buf);
            _exit(3);
        }
        _exit(0);
    }
    test_ready();
    test_wait_go();
    int ws;
    check(waitpid(k, &ws, 0) == k, "waitpid: %s", strerror(errno));
    check(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child: status 0x%x", ws);
    pass();
    return 0;
}
