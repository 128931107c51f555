/* vfork_nomem - vfork where fork fails for want of memory.
 *
 * The shim makes vfork a fork and takes the real vfork only where fork
 * fails with ENOMEM (preload/syscall.S: a large process under strict
 * overcommit). This program defines its own fork(), which the shim's
 * call resolves to (the executable comes first), failing with ENOMEM
 * while `refuse` is set and calling libc's otherwise (the shim's
 * checkpoint forks too). Before READY and again after the go file it
 * vforks a child that execs "sh -c 'exit 5'": vfork must succeed, the
 * status must be 5, and under the shim our fork must have been asked
 * first (once per vfork).
 */
#include <dlfcn.h>
#include <sys/wait.h>

#include "testlib.h"

static volatile int refuse, asked;

pid_t fork(void)
{
    static pid_t (*real)(void);
    if (refuse) {
        asked++;
        errno = ENOMEM;
        return -1;
    }
    if (!real)
        real = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
    return real();
}

static void one(const char *when)
{
    int before = asked;
    refuse = 1;
    pid_t c = vfork();
    if (c == 0) {
        execl("/bin/sh", "sh", "-c", "exit 5", (char *)NULL);
        _exit(99);
    }
    refuse = 0;
    if (c < 0)
        fail("%s: vfork: %s", when, strerror(errno));
    int st;
    if (waitpid(c, &st, 0) != c)
        fail("%s: waitpid: %s", when, strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 5)
        fail("%s: the child ended with status 0x%x, not 5", when, st);
    const char *pre = getenv("LD_PRELOAD");
    int shim = pre && strstr(pre, "libshim");
    if (shim && asked != before + 1)
        fail("%s: the shim's vfork asked fork %d times, not once", when, asked - before);
}

int main(void)
{
    one("before the checkpoint");
    test_ready();
    test_wait_go();
    one("after restore");
    pass();
}
