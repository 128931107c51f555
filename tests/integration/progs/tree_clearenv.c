/* tree_clearenv - a child that replaces its environment.
 *
 * The parent forks a child that clears its environment and sets one of
 * its own, as nginx's workers do (CKSHIM_DIR and XDG_RUNTIME_DIR gone,
 * CKSHIM_DIR pointing elsewhere). The shim's control socket stays in the
 * directory the shim first used, after each restore too, so that the
 * restored tree can be checkpointed again (test_progs restores it twice:
 * the child was left out of the second checkpoint before). After the go
 * file the child checks its environment is still the one it made and
 * exits 0; the parent checks the child's status.
 */
#include <sys/wait.h>

#include "testlib.h"

int main(void)
{
    test_go_setup();
    pid_t c = fork();
    check(c >= 0, "fork");
    if (c == 0) {
        clearenv();
        setenv("TZ", "UTC", 1);
        setenv("CKSHIM_DIR", "/nonexistent/ckshim-elsewhere", 1);
        test_wait_go();
        const char *tz = getenv("TZ");
        _exit(tz && !strcmp(tz, "UTC") && !getenv("HOME") ? 0 : 7);
    }
    test_ready();
    test_wait_go();
    int st;
    if (waitpid(c, &st, 0) != c)
        fail("waitpid %d: %s", (int)c, strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fail("the child ended with status 0x%x (7: its environment changed)", st);
    pass();
}
