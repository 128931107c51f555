/* raw_thread - a thread made with a raw clone(CLONE_THREAD |
 * CLONE_CHILD_CLEARTID) on a word of its own, without a TLS of its own
 * (it shares the main thread's, as zdtm's pidfd_of_thread does).
 *
 * Before READY: the thread spins, waiting for a flag; the kernel is to
 * clear (and wake) the word "ctid" when it exits.
 * After restore: the flag is set, the thread exits, the word is cleared
 * and the futex waiter woken (the restored thread must keep the address
 * it was given, not glibc's tid field of the main thread); the main
 * thread's own glibc tid is intact (pthread_kill on itself works).
 */
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>

#include "testlib.h"

static volatile int ctid = 1, go_exit;
static char stack[64 << 10] __attribute__((aligned(16)));

static int thread_fn(void *arg)
{
    (void)arg;
    while (!go_exit)
        ;
    syscall(SYS_exit, 0);
    return 0;
}

int main(void)
{
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                CLONE_SYSVSEM | CLONE_CHILD_CLEARTID;
    int tid = clone(thread_fn, stack + sizeof stack, flags, NULL, NULL, NULL, (int *)&ctid);
    check_sys(tid);

    test_ready();
    test_wait_go();

    go_exit = 1;
    struct timespec ts = {.tv_sec = 5};
    while (ctid != 0) {
        long r = syscall(SYS_futex, &ctid, FUTEX_WAIT, 1, &ts, NULL, 0);
        check(r == 0 || errno == EAGAIN || errno == EINTR, "the thread's exit did not clear "
              "its word within 5 s (%s)", strerror(errno));
    }
    check(pthread_kill(pthread_self(), 0) == 0, "pthread_kill on the main thread fails: its "
          "glibc tid was overwritten");
    pass();
}
