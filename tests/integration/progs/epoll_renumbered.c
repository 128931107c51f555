/* epoll_renumbered - epoll watches whose descriptor number no longer is
 * their file (dup'd elsewhere and closed, or moved): the kernel keeps them
 * under the old number while the file is open; so must restore.
 *
 * Before READY, E watches (EPOLLIN):
 *   pipe A's read end, added as fd 50, data 1; fd 50 then closed (A is
 *   still open at its first fd);
 *   pipe B's read end, added as fd 50 too, data 2, then closed the same
 *   way (number 50 is watched twice, for two files);
 *   pipe C's read end, added as fd 51, data 3, then moved to fd 61;
 *   pipe D's read end, put at fd 51 (the number C's watch still has),
 *   added, data 4.
 * After restore: writing a byte into each pipe in turn makes E report
 * exactly one event with that pipe's data; then deleting the watch of fd
 * 51 (D now) works, and writing into D reports nothing.
 */
#include <fcntl.h>
#include <sys/epoll.h>

#include "testlib.h"

static int e;

static void add(int fd, uint64_t data)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = data};
    check(epoll_ctl(e, EPOLL_CTL_ADD, fd, &ev) == 0, "add fd %d: %s", fd, strerror(errno));
}

static void fire(int rfd, int wfd, uint64_t want, const char *what)
{
    struct epoll_event ev[4];
    check(epoll_wait(e, ev, 4, 0) == 0, "%s: an event before anything was written", what);
    check(write(wfd, "x", 1) == 1, "%s: write: %s", what, strerror(errno));
    int n = epoll_wait(e, ev, 4, 1000);
    check(n == 1 && ev[0].data.u64 == want, "%s: %d events (first data %llu), expected one "
          "with data %llu", what, n, n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL,
          (unsigned long long)want);
    char c;
    check(read(rfd, &c, 1) == 1, "%s: read: %s", what, strerror(errno));
}

int main(void)
{
    int a[2], b[2], c[2], d[2];
    check_sys(pipe(a));
    check_sys(pipe(b));
    check_sys(pipe(c));
    check_sys(pipe(d));
    e = epoll_create1(0);
    check_sys(e);

    check_sys(dup2(a[0], 50));
    add(50, 1);
    close(50);
    check_sys(dup2(b[0], 50));
    add(50, 2);
    close(50);
    check_sys(dup2(c[0], 51));
    close(c[0]);
    add(51, 3);
    check_sys(dup2(51, 61));
    c[0] = 61;
    check_sys(dup2(d[0], 51));
    close(d[0]);
    d[0] = 51;
    add(51, 4);

    test_ready();
    test_wait_go();

    fire(a[0], a[1], 1, "A");
    fire(b[0], b[1], 2, "B");
    fire(c[0], c[1], 3, "C");
    fire(d[0], d[1], 4, "D");
    check(epoll_ctl(e, EPOLL_CTL_DEL, 51, NULL) == 0, "delete fd 51: %s", strerror(errno));
    struct epoll_event ev;
    check(write(d[1], "x", 1) == 1, "write D");
    check(epoll_wait(e, &ev, 1, 0) == 0, "D still reported after its watch was deleted");
    pass();
}
