/* pattrs - process attributes set with prctl() and /proc survive.
 *
 * Before READY the program raises its oom_score_adj by 100 (an ordinary
 * user may raise it), becomes a child subreaper, sets no_new_privs, makes
 * itself non-dumpable, names its main thread, sets a parent-death signal
 * (SIGWINCH, ignored by default: the test's parent may be gone after a
 * restore) and a timer slack in the main thread and another slack in a
 * second thread, disables transparent huge pages, and registers the
 * membarrier commands the kernel offers (private expedited, global
 * expedited, sync-core, rseq). After restore each attribute must read
 * back the same, membarrier must list the same registrations, and the
 * private expedited barrier must work (EPERM without the registration).
 * The personality flag ADDR_NO_RANDOMIZE (settable unprivileged) must be
 * set again too.
 */
#include <fcntl.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "testlib.h"

#define MB_GET_REGISTRATIONS (1 << 9)

static volatile int go;
static long slack_thread = -1;

static long mb(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0);
}

static int read_oom(void)
{
    char buf[32] = "";
    int fd = open("/proc/self/oom_score_adj", O_RDONLY);
    check_sys(fd);
    check(read(fd, buf, sizeof buf - 1) > 0, "read oom_score_adj");
    close(fd);
    return atoi(buf);
}

static void write_oom(int v)
{
    char buf[32];
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    check_sys(fd);
    int n = snprintf(buf, sizeof buf, "%d", v);
    check(write(fd, buf, n) == n, "write oom_score_adj %d: %s", v, strerror(errno));
    close(fd);
}

static void *other(void *arg)
{
    check_sys(prctl(PR_SET_TIMERSLACK, 777000, 0, 0, 0));
    while (!go)
        test_sleep_ms(20);
    slack_thread = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    return NULL;
}

int main(void)
{
    pthread_t t;
    char name[16] = "";
    int v = 0;
    int oom = read_oom() + 100;

    if (oom > 1000)
        oom = 1000;
    write_oom(oom);
    check_sys(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
    check_sys(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    check_sys(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0));
    check_sys(prctl(PR_SET_NAME, "pattr-main", 0, 0, 0));
    check_sys(prctl(PR_SET_PDEATHSIG, SIGWINCH, 0, 0, 0));
    check_sys(prctl(PR_SET_TIMERSLACK, 123456, 0, 0, 0));
    check_sys(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0));
    int pers = personality(0xffffffff) | ADDR_NO_RANDOMIZE;
    check_sys(personality(pers));
    long cmds = mb(MEMBARRIER_CMD_QUERY);
    check(cmds >= 0, "membarrier query: %s", strerror(errno));
    const int regs[] = { MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                         MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
                         MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
                         MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ };
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++)
        if (cmds & regs[i])
            check(mb(regs[i]) == 0, "membarrier register %#x: %s", regs[i], strerror(errno));
    long mregs = mb(MB_GET_REGISTRATIONS);
    check(mregs > 0, "membarrier get registrations: %ld %s", mregs, strerror(errno));
    check(pthread_create(&t, NULL, other, NULL) == 0, "pthread_create");
    test_sleep_ms(50);

    test_ready();
    test_wait_go();
    go = 1;
    check(pthread_join(t, NULL) == 0, "join");

    check(read_oom() == oom, "oom_score_adj %d, was %d", read_oom(), oom);
    check(prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0) == 0 && v == 1, "not a subreaper");
    check(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs lost");
    check(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0, "dumpable again");
    check(prctl(PR_GET_NAME, name, 0, 0, 0) == 0 && !strcmp(name, "pattr-main"),
          "main thread named '%s'", name);
    v = 0;
    check(prctl(PR_GET_PDEATHSIG, &v, 0, 0, 0) == 0 && v == SIGWINCH, "pdeath signal %d", v);
    check(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == 123456, "main timer slack %d",
          prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
    check(slack_thread == 777000, "thread timer slack %ld", slack_thread);
    check(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP disable %d",
          prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
    check(personality(0xffffffff) == pers, "personality %#x, was %#x", personality(0xffffffff),
          pers);
    check(mb(MB_GET_REGISTRATIONS) == mregs, "membarrier registrations %#lx, were %#lx",
          mb(MB_GET_REGISTRATIONS), mregs);
    if (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)
        check(mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0, "private expedited barrier: %s",
              strerror(errno));
    pass();
}
