/* raw_ids - ids through libc's syscall() agree with the program's after a
 * restore (the default mode, no pid namespace).
 *
 * A thread records its tid (syscall(SYS_gettid), as zdtm clone_fs does).
 * After the go file: syscall(SYS_getpid/gettid/getppid) give what getpid,
 * gettid and getppid give, and the thread's tid again; kcmp with the
 * saved tid works (same fs and vm: clone_fs), and so do tgkill, tkill,
 * kill, rt_sigqueueinfo and pidfd_open through syscall() with the ids
 * the program knows. The shim answers and translates these calls; the
 * kernel's ids changed with the restore. So do the other calls that take
 * a pid or tid, through syscall() and through libc (zdtm futex-rl:
 * get_robust_list of syscall(SYS_gettid)): get_robust_list,
 * sched_getaffinity/setaffinity, sched_getscheduler, prlimit,
 * getpriority/setpriority (of the main thread and of the other).
 */
#include <linux/futex.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "testlib.h"

static volatile int thread_tid, thread_again, asked;

static void *thread_main(void *arg)
{
    thread_tid = (int)syscall(SYS_gettid);
    for (;;) {
        if (asked && !thread_again)
            thread_again = (int)syscall(SYS_gettid);
        usleep(10000);
    }
    return arg;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0)
        fail("pthread_create");
    while (!thread_tid)
        usleep(1000);
    int tid0 = thread_tid;
    test_ready();
    test_wait_go();

    long pid = syscall(SYS_getpid), me = syscall(SYS_gettid), pp = syscall(SYS_getppid);
    if (pid != getpid() || me != gettid() || pp != getppid())
        fail("syscall() gives pid %ld tid %ld ppid %ld; getpid %d gettid %d getppid %d", pid, me,
             pp, getpid(), gettid(), getppid());
    asked = 1;
    for (int i = 0; i < 500 && !thread_again; i++)
        usleep(10000);
    if (thread_again != tid0)
        fail("the thread's syscall(SYS_gettid) is %d, it was %d", thread_again, tid0);
    if (syscall(SYS_kcmp, me, tid0, KCMP_FS, 0, 0) != 0)
        fail("kcmp(KCMP_FS, %ld, %d): %s", me, tid0, strerror(errno));
    if (syscall(SYS_kcmp, pid, tid0, KCMP_VM, 0, 0) != 0)
        fail("kcmp(KCMP_VM, %ld, %d): %s", pid, tid0, strerror(errno));
    if (syscall(SYS_tgkill, pid, tid0, 0) != 0)
        fail("tgkill(%ld, %d, 0): %s", pid, tid0, strerror(errno));
    if (syscall(SYS_tkill, tid0, 0) != 0)
        fail("tkill(%d, 0): %s", tid0, strerror(errno));
    if (syscall(SYS_kill, pid, 0) != 0)
        fail("kill(%ld, 0): %s", pid, strerror(errno));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_code = SI_QUEUE;
    si.si_pid = (pid_t)pid;
    si.si_uid = getuid();
    if (syscall(SYS_rt_sigqueueinfo, pid, 0, &si) != 0)
        fail("rt_sigqueueinfo(%ld, 0): %s", pid, strerror(errno));
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        fail("pidfd_open(%ld): %s", pid, strerror(errno));
    if (syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) != 0)
        fail("pidfd_send_signal: %s", strerror(errno));

    struct robust_list_head *head = NULL;
    size_t hlen = 0;
    if (syscall(SYS_get_robust_list, me, &head, &hlen) != 0 || !head)
        fail("get_robust_list(%ld): %s", me, strerror(errno));
    if (syscall(SYS_get_robust_list, tid0, &head, &hlen) != 0)
        fail("get_robust_list(%d), the thread: %s", tid0, strerror(errno));
    cpu_set_t set;
    if (sched_getaffinity((pid_t)pid, sizeof set, &set) != 0 || CPU_COUNT(&set) < 1)
        fail("sched_getaffinity(%ld): %s", pid, strerror(errno));
    if (sched_setaffinity((pid_t)tid0, sizeof set, &set) != 0)
        fail("sched_setaffinity(%d): %s", tid0, strerror(errno));
    if (syscall(SYS_sched_getaffinity, tid0, sizeof set, &set) <= 0)
        fail("syscall(sched_getaffinity, %d): %s", tid0, strerror(errno));
    if (syscall(SYS_sched_getscheduler, me) != SCHED_OTHER)
        fail("sched_getscheduler(%ld): %s", me, strerror(errno));
    struct rlimit rl;
    if (prlimit((pid_t)pid, RLIMIT_NOFILE, NULL, &rl) != 0 || rl.rlim_cur == 0)
        fail("prlimit(%ld): %s", pid, strerror(errno));
    errno = 0;
    int nice0 = getpriority(PRIO_PROCESS, 0);
    int nice = getpriority(PRIO_PROCESS, (id_t)me);
    if (errno || nice != nice0)
        fail("getpriority(PRIO_PROCESS, %ld) = %d (%s), of 0: %d", me, nice, strerror(errno),
             nice0);
    if (setpriority(PRIO_PROCESS, (id_t)tid0, nice0 + 1) != 0)
        fail("setpriority(PRIO_PROCESS, %d): %s", tid0, strerror(errno));
    errno = 0;
    nice = getpriority(PRIO_PROCESS, (id_t)tid0);
    if (errno || nice != nice0 + 1 || getpriority(PRIO_PROCESS, 0) != nice0)
        fail("getpriority(PRIO_PROCESS, %d) = %d (%s), expected %d (main thread's: %d)", tid0,
             nice, strerror(errno), nice0 + 1, getpriority(PRIO_PROCESS, 0));
    pass();
}
