/* clone_files_churn - children that share the parent's descriptor table
 * (clone with CLONE_FILES) come and go: 300 that end, one that execs
 * /bin/true. Each has a shim of its own, whose control socket lives in
 * the shared table: the table must not grow with them (it filled up:
 * EMFILE after about 1000). The same again after a restore.
 */
#include <dirent.h>
#include <sched.h>
#include <sys/wait.h>

#include "testlib.h"

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

static int quick(void *arg)
{
    (void)arg;
    return 0;
}

static int execs(void *arg)
{
    (void)arg;
    char *argv[] = {"true", NULL};
    execv("/bin/true", argv);
    return 9;
}

static char stack[256 * 1024];

static void churn(const char *when)
{
    int before = count_fds();
    for (int i = 0; i < 300; i++) {
        pid_t p = clone(quick, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL);
        check_sys(p);
        int st;
        check(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "%s: child %d: status %#x", when, i, st);
    }
    pid_t p = clone(execs, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL);
    check_sys(p);
    int st;
    check(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "%s: the child that execs: status %#x", when, st);
    int after = count_fds();
    check(after <= before, "%s: %d descriptors before 301 sharing children, %d after", when,
          before, after);
}

int main(void)
{
    churn("before the checkpoint");
    test_ready();
    test_wait_go();
    churn("after the restore");
    pass();
    return 0;
}
