/* tree_pidfd_epoll - pidfds watched by epoll (asyncio's pidfd child
 * watcher): a child's pidfd, a dup of it in a second epoll instance
 * (edge-triggered), and a pidfd of one of the process's own threads
 * (PIDFD_THREAD).
 *
 * The shim puts the real pidfds of the restored child and thread in place
 * of coord's stand-ins after the restore; the watches epoll had were on
 * the stand-ins and must be on the new files. After the go file the child
 * and the thread end; each epoll instance must report its pidfd readable
 * with the data it was given, within 5 s, and waitid through the pidfd
 * must give the child's status.
 */
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

static pid_t thread_tid;

static void *worker(void *arg)
{
    (void)arg;
    __atomic_store_n(&thread_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
    test_wait_go();
    test_sleep_ms(200);
    return NULL;
}

/* the data epfd reports within 5 s, or 0 */
static uint64_t ready(int epfd)
{
    struct epoll_event ev;
    int n = epoll_wait(epfd, &ev, 1, 5000);
    return n == 1 ? ev.data.u64 : 0;
}

int main(void)
{
    test_go_setup(); /* (the child waits for the go file too) */
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        test_wait_go();
        test_sleep_ms(200);
        _exit(7);
    }
    pthread_t t;
    check(pthread_create(&t, NULL, worker, NULL) == 0, "pthread_create");
    while (!__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST))
        test_sleep_ms(1);
    int pfd = (int)syscall(SYS_pidfd_open, k, 0);
    check_sys(pfd);
    int pdup = dup(pfd);
    check_sys(pdup);
    int tfd = (int)syscall(SYS_pidfd_open, thread_tid, PIDFD_THREAD);
    int have_thread = tfd >= 0; /* PIDFD_THREAD: Linux 6.9 */
    int ep1 = epoll_create1(0), ep2 = epoll_create1(0), ep3 = epoll_create1(0);
    check(ep1 >= 0 && ep2 >= 0 && ep3 >= 0, "epoll_create1: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1111};
    check_sys(epoll_ctl(ep1, EPOLL_CTL_ADD, pfd, &ev));
    ev = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.u64 = 0x2222};
    check_sys(epoll_ctl(ep2, EPOLL_CTL_ADD, pdup, &ev));
    ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = 0x3333};
    if (have_thread)
        check_sys(epoll_ctl(ep3, EPOLL_CTL_ADD, tfd, &ev));
    test_ready();
    test_wait_go();
    uint64_t a = ready(ep1), b = ready(ep2), c = have_thread ? ready(ep3) : 0x3333;
    check(a == 0x1111, "the child's pidfd: epoll reported %#llx", (unsigned long long)a);
    check(b == 0x2222, "its dup (edge-triggered): epoll reported %#llx", (unsigned long long)b);
    check(c == 0x3333, "the thread's pidfd: epoll reported %#llx", (unsigned long long)c);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    check(waitid(P_PIDFD, (id_t)pfd, &si, WEXITED) == 0, "waitid: %s", strerror(errno));
    check(si.si_code == CLD_EXITED && si.si_status == 7, "child: code %d status %d", si.si_code,
          si.si_status);
    pthread_join(t, NULL);
    pass();
    return 0;
}
