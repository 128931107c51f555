/* unix_outside - Unix sockets whose other end is outside the program come
 * back as dead connections that behave like ones (never hang); a datagram
 * socket connected to an outside name is connected to it again.
 *
 * Before READY: a helper process (double-forked, so not a child of the
 * program) listens on an abstract name, accepts one connection and sends
 * "hello" on it, holds the other end of a socket pair, and receives
 * datagrams at $PWD/out.sock, writing each into the file "got".
 *   X: stream client of the helper's listener, "hello" waiting;
 *   Y: stream socket-pair end whose other end only the helper holds;
 *   Z: stream socket-pair end whose other end the program closed after
 *      sending "bye";
 *   K: datagram socket connected to $PWD/out.sock;
 *   E: epoll watching X, Y (EPOLLIN | EPOLLRDHUP).
 * After restore: X reads "hello" then end of file, a write fails with
 * EPIPE; Y reads end of file, a write fails with EPIPE; Z reads "bye"
 * then end of file; epoll reports EPOLLHUP on X and Y at once; K's
 * datagram reaches the helper (still running). Not restored (--plain):
 * the connections are alive.
 */
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "testlib.h"
#include "unixtest.h"

/* The helper: runs until killed (or 10 minutes). */
static void helper(int lfd, int pairfd, int dfd, int ready)
{
    int c = accept(lfd, NULL, NULL);
    if (c < 0 || send(c, "hello", 5, 0) != 5)
        _exit(1);
    pid_t me = getpid();
    (void)!write(ready, &me, sizeof me);
    close(ready);
    alarm(600);
    for (;;) {
        char buf[64];
        ssize_t n = recv(dfd, buf, sizeof buf, 0);
        if (n > 0) {
            int f = open("got", O_WRONLY | O_CREAT | O_TRUNC, 0644);
            (void)!write(f, buf, (size_t)n);
            close(f);
        }
    }
    (void)pairfd;
}

static void expect_dead(int fd, const char *pending, const char *what)
{
    char buf[16];
    size_t pl = pending ? strlen(pending) : 0;
    if (pl) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        check(n == (ssize_t)pl && !memcmp(buf, pending, pl), "%s: got %zd bytes, expected '%s'",
              what, n, pending);
    }
    ssize_t n = recv(fd, buf, sizeof buf, 0); /* blocking: must not hang */
    check(n == 0 || (n < 0 && errno == ECONNRESET), "%s: read gave %zd (%s), expected end of "
          "file", what, n, n < 0 ? strerror(errno) : "data");
    errno = 0;
    n = send(fd, "x", 1, 0);
    check(n < 0 && errno == EPIPE, "%s: write gave %zd (%s), expected EPIPE", what, n,
          strerror(errno));
}

int main(void)
{
    struct sockaddr_un sa;
    char lname[64], dpath[4200], cwd[4096];
    signal(SIGPIPE, SIG_IGN);
    check(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    snprintf(lname, sizeof lname, "ckshim-test-out-%d", getpid());
    snprintf(dpath, sizeof dpath, "%s/out.sock", cwd);

    int lfd = socket(AF_UNIX, SOCK_STREAM, 0), dfd = socket(AF_UNIX, SOCK_DGRAM, 0), y[2], z[2];
    check_sys(lfd);
    check_sys(dfd);
    check_sys(bind(lfd, (struct sockaddr *)&sa, unix_addr(&sa, lname, 1)));
    check_sys(listen(lfd, 1));
    check_sys(bind(dfd, (struct sockaddr *)&sa, unix_addr(&sa, dpath, 0)));
    check_sys(socketpair(AF_UNIX, SOCK_STREAM, 0, y));
    int rp[2];
    check_sys(pipe(rp));
    pid_t c = fork();
    check_sys(c);
    if (c == 0) {
        if (fork() == 0) {
            close(rp[0]);
            close(y[0]);
            helper(lfd, y[1], dfd, rp[1]);
        }
        _exit(0);
    }
    check_sys(waitpid(c, NULL, 0));
    close(rp[1]);
    close(lfd);
    close(dfd);
    close(y[1]);

    int x = socket(AF_UNIX, SOCK_STREAM, 0);
    check_sys(connect(x, (struct sockaddr *)&sa, unix_addr(&sa, lname, 1)));
    pid_t hpid;
    check(read(rp[0], &hpid, sizeof hpid) == sizeof hpid, "the helper did not start");
    close(rp[0]);
    check_sys(socketpair(AF_UNIX, SOCK_STREAM, 0, z));
    check(send(z[1], "bye", 3, 0) == 3, "send bye");
    close(z[1]);
    int k = socket(AF_UNIX, SOCK_DGRAM, 0);
    check_sys(connect(k, (struct sockaddr *)&sa, unix_addr(&sa, dpath, 0)));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = 1};
    check_sys(epoll_ctl(ep, EPOLL_CTL_ADD, x, &ev));
    ev.data.u64 = 2;
    check_sys(epoll_ctl(ep, EPOLL_CTL_ADD, y[0], &ev));
    /* wait for "hello" to be there */
    for (int i = 0; i < 200; i++) {
        char b[8];
        if (recv(x, b, sizeof b, MSG_PEEK | MSG_DONTWAIT) == 5)
            break;
        test_sleep_ms(10);
    }

    test_ready();
    test_wait_go();

    if (test_kernel_pid() == getpid()) {
        /* not restored (--plain, --shim): the connections are alive */
        check(send(x, "x", 1, 0) == 1 && send(y[0], "y", 1, 0) == 1, "send: %s",
              strerror(errno));
        kill(hpid, SIGKILL);
        pass();
    }

    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, 1000), hx = 0, hy = 0;
    for (int i = 0; i < n; i++) {
        hx |= evs[i].data.u64 == 1 && (evs[i].events & EPOLLHUP);
        hy |= evs[i].data.u64 == 2 && (evs[i].events & EPOLLHUP);
    }
    check(hx && hy, "epoll: %d events, no EPOLLHUP for %s", n, !hx ? "X" : "Y");
    expect_dead(x, "hello", "X");
    expect_dead(y[0], NULL, "Y");
    expect_dead(z[0], "bye", "Z");

    check(send(k, "dgram", 5, 0) == 5, "K send after restore: %s", strerror(errno));
    char got[16] = "";
    for (int i = 0; i < 300 && strcmp(got, "dgram"); i++) {
        int f = open("got", O_RDONLY);
        if (f >= 0) {
            ssize_t g = read(f, got, sizeof got - 1);
            got[g > 0 ? g : 0] = 0;
            close(f);
        }
        test_sleep_ms(10);
    }
    check(!strcmp(got, "dgram"), "the helper did not receive K's datagram ('%s')", got);
    kill(hpid, SIGKILL);
    pass();
}
