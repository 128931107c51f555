/* epoll - epoll instances keep their watches (events, flags, data).
 *
 * Before READY: E1 = epoll_create1(EPOLL_CLOEXEC) watches
 *   the read end of pipe P   EPOLLIN                data 0x1111222233334444
 *   eventfd X                EPOLLIN | EPOLLET      data 42
 *   the write end of P       EPOLLOUT | EPOLLONESHOT data 7 (fired once:
 *                            disabled until re-armed)
 * and P holds 3 unread bytes. E2 watches E1 (nested, data 99). A thread
 * waits in epoll_wait on E3, which watches eventfd Y (data 77), looping on
 * EINTR (the checkpoint signal interrupts epoll_wait).
 * After restore: E1 has FD_CLOEXEC and reports exactly P's read end
 * (level-triggered, the bytes are still there) with its data; writing X
 * reports it once (edge-triggered); the disabled one-shot watch is still
 * registered (EPOLL_CTL_MOD re-arms it and it reports); E2 reports E1;
 * writing Y wakes the thread with data 77.
 */
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "testlib.h"

#define DATA_P 0x1111222233334444ULL

static int e3, y;
static volatile int woke;
static volatile uint64_t woke_data;

static void *waiter(void *arg)
{
    (void)arg;
    for (;;) {
        struct epoll_event ev;
        int n = epoll_wait(e3, &ev, 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 1) {
            woke_data = ev.data.u64;
            woke = 1;
        } else {
            woke = -1;
        }
        return NULL;
    }
}

static int wait_one(int ep, struct epoll_event *evs, int max)
{
    int n;
    do
        n = epoll_wait(ep, evs, max, 0);
    while (n < 0 && errno == EINTR);
    return n;
}

int main(void)
{
    int p[2], x, e1, e2;
    check_sys(pipe2(p, O_NONBLOCK));
    check_sys(x = eventfd(0, EFD_NONBLOCK));
    check_sys(y = eventfd(0, EFD_NONBLOCK));
    check_sys(e1 = epoll_create1(EPOLL_CLOEXEC));
    check_sys(e2 = epoll_create1(0));
    check_sys(e3 = epoll_create1(0));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = DATA_P};
    check_sys(epoll_ctl(e1, EPOLL_CTL_ADD, p[0], &ev));
    ev = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.u64 = 42};
    check_sys(epoll_ctl(e1, EPOLL_CTL_ADD, x, &ev));
    ev = (struct epoll_event){.events = EPOLLOUT | EPOLLONESHOT, .data.u64 = 7};
    check_sys(epoll_ctl(e1, EPOLL_CTL_ADD, p[1], &ev));
    struct epoll_event got[8];
    int n = wait_one(e1, got, 8);
    check(n == 1 && got[0].data.u64 == 7, "before: expected only the one-shot event, got %d", n);
    ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = 99};
    check_sys(epoll_ctl(e2, EPOLL_CTL_ADD, e1, &ev));
    ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = 77};
    check_sys(epoll_ctl(e3, EPOLL_CTL_ADD, y, &ev));
    check(write(p[1], "abc", 3) == 3, "write to the pipe");
    pthread_t t;
    check(pthread_create(&t, NULL, waiter, NULL) == 0, "pthread_create");
    test_msg("E1=%d E2=%d E3=%d P=%d,%d X=%d Y=%d", e1, e2, e3, p[0], p[1], x, y);

    test_ready();
    test_wait_go();

    char path[64], target[128];
    snprintf(path, sizeof path, "/proc/self/fd/%d", e1);
    ssize_t l = readlink(path, target, sizeof target - 1);
    check(l > 0, "readlink %s: %s", path, strerror(errno));
    target[l] = 0;
    check(!strcmp(target, "anon_inode:[eventpoll]"), "E1 is '%s', not an epoll fd", target);
    int fl = fcntl(e1, F_GETFD);
    check(fl >= 0 && (fl & FD_CLOEXEC), "E1 lost FD_CLOEXEC");
    check(woke == 0, "the waiter woke up by itself (%d)", woke);

    n = wait_one(e1, got, 8);
    check(n == 1, "E1 reports %d events, expected 1 (the pipe)", n);
    check(got[0].data.u64 == DATA_P && (got[0].events & EPOLLIN), "E1 event data %#llx events %#x",
          (unsigned long long)got[0].data.u64, got[0].events);
    n = wait_one(e2, got, 8);
    check(n == 1 && got[0].data.u64 == 99, "E2 (watching E1) reports %d events", n);

    uint64_t one = 1;
    check(write(x, &one, 8) == 8, "write X");
    n = wait_one(e1, got, 8);
    int seen_x = 0;
    for (int i = 0; i < n; i++)
        seen_x += got[i].data.u64 == 42;
    check(seen_x == 1, "X's edge-triggered event seen %d times (of %d events)", seen_x, n);
    n = wait_one(e1, got, 8);
    for (int i = 0; i < n; i++)
        check(got[i].data.u64 != 42, "X reported twice: EPOLLET lost");

    ev = (struct epoll_event){.events = EPOLLOUT | EPOLLONESHOT, .data.u64 = 8};
    check(epoll_ctl(e1, EPOLL_CTL_MOD, p[1], &ev) == 0, "re-arming the one-shot watch: %s",
          strerror(errno));
    n = wait_one(e1, got, 8);
    int seen_w = 0;
    for (int i = 0; i < n; i++)
        seen_w += got[i].data.u64 == 8;
    check(seen_w == 1, "re-armed one-shot watch reported %d times", seen_w);

    check(write(y, &one, 8) == 8, "write Y");
    for (int i = 0; i < 200 && !woke; i++)
        test_sleep_ms(10);
    check(woke == 1 && woke_data == 77, "waiter: woke %d data %llu", woke,
          (unsigned long long)woke_data);
    pthread_join(t, NULL);
    char buf[8];
    check(read(p[0], buf, sizeof buf) == 3, "the 3 bytes are still in the pipe");
    pass();
}
