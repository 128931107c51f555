/* pid - the program keeps seeing its old process and thread ids.
 *
 * Records getpid(), gettid() of the main thread and gettid() and
 * pthread_self() of a second thread, and prints them. After restore (where
 * the kernel's pid has changed) getpid() and gettid() in both threads
 * return the recorded values; kill(getpid(), 0), kill(getpid(), SIGUSR1)
 * and pthread_kill() on the second thread still reach this process and
 * that thread.
 */
#include <signal.h>

#include "testlib.h"

static pid_t pid0, tid_main0, tid_thr0;
static volatile pid_t handler_tid;
static volatile int hits, go;
static pthread_t thr;

static void on_usr1(int sig)
{
    handler_tid = gettid();
    hits++;
}

static void *thread_main(void *arg)
{
    tid_thr0 = gettid();
    while (!go)
        usleep(10000);
    check(gettid() == tid_thr0, "thread: gettid() is %d, was %d", gettid(), tid_thr0);
    check(getpid() == pid0, "thread: getpid() is %d, was %d", getpid(), pid0);
    check(pthread_equal(pthread_self(), thr), "thread: pthread_self() changed");
    while (go < 2) /* wait for main's pthread_kill */
        usleep(1000);
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    check_sys(sigaction(SIGUSR1, &sa, NULL));

    pid0 = getpid();
    tid_main0 = gettid();
    check(pid0 == tid_main0, "main thread: pid %d != tid %d", pid0, tid_main0);
    check(pthread_create(&thr, NULL, thread_main, NULL) == 0, "pthread_create");
    while (!tid_thr0)
        usleep(1000);
    test_msg("pid=%d tid_main=%d tid_thread=%d", pid0, tid_main0, tid_thr0);

    test_ready();
    test_wait_go();

    check(getpid() == pid0, "getpid() is %d, was %d", getpid(), pid0);
    check(gettid() == tid_main0, "gettid() in main is %d, was %d", gettid(), tid_main0);
    check(kill(getpid(), 0) == 0, "kill(getpid(), 0): %s", strerror(errno));
    check(kill(getpid(), SIGUSR1) == 0, "kill(getpid(), SIGUSR1): %s", strerror(errno));
    for (int i = 0; i < 100 && hits < 1; i++)
        usleep(1000);
    check(hits == 1, "SIGUSR1 sent with kill(getpid()) did not arrive");

    go = 1;
    usleep(50000);
    check(pthread_kill(thr, SIGUSR1) == 0, "pthread_kill: failed");
    for (int i = 0; i < 100 && hits < 2; i++)
        usleep(1000);
    check(hits == 2, "SIGUSR1 sent with pthread_kill did not arrive");
    check(handler_tid == tid_thr0, "pthread_kill reached tid %d, not the thread (%d)",
          handler_tid, tid_thr0);
    go = 2;
    check(pthread_join(thr, NULL) == 0, "pthread_join");
    test_msg("after restore: pid=%d tid_main=%d tid_thread=%d", getpid(), gettid(),
             tid_thr0);
    pass();
}
