/* unix_pairs - AF_UNIX socket pairs come back connected, with the bytes
 * waiting in each direction, message boundaries, options and state.
 *
 * Before READY:
 *   S0/S1: stream pair; 60000 bytes waiting for S1 (written by S0 in
 *          pieces), "back" waiting for S0; S0 O_NONBLOCK, SO_PASSCRED on
 *          S1, SO_RCVTIMEO 7.5 s on S0, SO_SNDBUF 64 KiB on S1;
 *   D0/D1: datagram pair; for D1 the messages "one", "" (empty), "three"
 *          and a 70000-byte one (larger than the peek buffer), none for D0;
 *   Q0/Q1: seqpacket pair; "alpha", "beta" waiting for Q0, "gamma" for Q1;
 *   H0/H1: stream pair, H0 shut down for writing after sending "last";
 *   R0/R1: stream pair, R0 shut down for reading; SO_PEEK_OFF 5 on R1,
 *          SO_PASSSEC and SO_KEEPALIVE on R0;
 *   T0/T1: seqpacket pair, "m" waiting for T0, then T1 shut down for
 *          writing (T0 sees end of file after "m");
 *   U:     a seqpacket socket never connected;
 *   E:     epoll watching S1 (EPOLLIN, data 11) and H1 (EPOLLIN|EPOLLRDHUP,
 *          data 12).
 *   A dup of S1 (shares the socket).
 * After restore: every queue reads back exactly (boundaries kept, the
 * empty datagram included), then EAGAIN; options and flags as set; H1
 * reads "last" then end of file, H0 cannot send (EPIPE); R0 reads end of
 * file, R1's send fails with EPIPE; T0 reads "m" then end of file; U is
 * a seqpacket socket; epoll reports S1 and H1 ready with
 * their data; every pair still carries new bytes both ways.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "testlib.h"

#define BIG 60000
#define HUGE 70000

static int pair(int type, int sv[2])
{
    return socketpair(AF_UNIX, type, 0, sv);
}

static int geti(int fd, int opt)
{
    int v = -1;
    socklen_t l = sizeof v;
    check_sys(getsockopt(fd, SOL_SOCKET, opt, &v, &l));
    return v;
}

static void expect_msg(int fd, const void *want, size_t len, const char *what)
{
    static char buf[HUGE + 16];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    check(n == (ssize_t)len && !memcmp(buf, want, len), "%s: got %zd bytes, expected %zu", what,
          n, len);
}

static void expect_empty(int fd, const char *what)
{
    char c;
    errno = 0;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    check(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
          "%s: expected nothing waiting, got %zd (%s)", what, n, strerror(errno));
}

static void expect_works(int a, int b, const char *what)
{
    char buf[8];
    check(send(a, "ping", 4, 0) == 4, "%s: send: %s", what, strerror(errno));
    check(recv(b, buf, sizeof buf, MSG_DONTWAIT) == 4 && !memcmp(buf, "ping", 4),
          "%s: ping did not arrive", what);
    check(send(b, "pong", 4, 0) == 4, "%s: send back: %s", what, strerror(errno));
    check(recv(a, buf, sizeof buf, MSG_DONTWAIT) == 4 && !memcmp(buf, "pong", 4),
          "%s: pong did not arrive", what);
}

int main(void)
{
    int s[2], d[2], q[2], h[2], r[2], t[2];
    static char big[BIG], huge[HUGE];
    signal(SIGPIPE, SIG_IGN);
    check_sys(pair(SOCK_STREAM, s));
    check_sys(pair(SOCK_DGRAM, d));
    check_sys(pair(SOCK_SEQPACKET, q));
    check_sys(pair(SOCK_STREAM, h));
    check_sys(pair(SOCK_STREAM, r));
    check_sys(pair(SOCK_SEQPACKET, t));
    int u = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    check_sys(u);

    test_fill(big, BIG, 1);
    test_fill(huge, HUGE, 2);
    for (int off = 0; off < BIG; off += 1000)
        check(send(s[0], big + off, 1000, 0) == 1000, "send big: %s", strerror(errno));
    check(send(s[1], "back", 4, 0) == 4, "send back");
    check_sys(fcntl(s[0], F_SETFL, O_NONBLOCK | O_RDWR));
    int one = 1;
    check_sys(setsockopt(s[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one));
    struct timeval tv = {7, 500000};
    check_sys(setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    int sz = 65536;
    check_sys(setsockopt(s[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz));
    int sndbuf = geti(s[1], SO_SNDBUF);

    int dsz = HUGE * 4;
    setsockopt(d[0], SOL_SOCKET, SO_SNDBUF, &dsz, sizeof dsz);
    check(send(d[0], "one", 3, 0) == 3, "send one");
    check(send(d[0], "", 0, 0) == 0, "send empty");
    check(send(d[0], "three", 5, 0) == 5, "send three");
    check(send(d[0], huge, HUGE, 0) == HUGE, "send huge: %s", strerror(errno));

    check(send(q[1], "alpha", 5, 0) == 5 && send(q[1], "beta", 4, 0) == 4, "send seq");
    check(send(q[0], "gamma", 5, 0) == 5, "send gamma");

    check(send(h[0], "last", 4, 0) == 4, "send last");
    check_sys(shutdown(h[0], SHUT_WR));
    check_sys(shutdown(r[0], SHUT_RD));
    int five = 5;
    check_sys(setsockopt(r[1], SOL_SOCKET, SO_PEEK_OFF, &five, sizeof five));
    check_sys(setsockopt(r[0], SOL_SOCKET, SO_PASSSEC, &one, sizeof one));
    check_sys(setsockopt(r[0], SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one));
    check(send(t[1], "m", 1, 0) == 1, "send m");
    check_sys(shutdown(t[1], SHUT_WR));

    int ep = epoll_create1(0);
    check_sys(ep);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 11};
    check_sys(epoll_ctl(ep, EPOLL_CTL_ADD, s[1], &ev));
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = 12;
    check_sys(epoll_ctl(ep, EPOLL_CTL_ADD, h[1], &ev));
    int dup1 = dup(s[1]);
    check_sys(dup1);

    test_ready();
    test_wait_go();

    /* S: bytes, options, flags */
    static char got[BIG + 16];
    size_t n = 0;
    while (n < BIG) {
        ssize_t k = recv(dup1, got + n, BIG - n, MSG_DONTWAIT);
        check(k > 0, "S1: read %zu of %d bytes, then %zd (%s)", n, BIG, k, strerror(errno));
        n += (size_t)k;
    }
    check(test_check_fill(got, BIG, 1) < 0, "S1: bytes differ at %ld", test_check_fill(got, BIG, 1));
    expect_empty(s[1], "S1");
    expect_msg(s[0], "back", 4, "S0");
    expect_empty(s[0], "S0");
    check(fcntl(s[0], F_GETFL) & O_NONBLOCK, "S0 lost O_NONBLOCK");
    check(!(fcntl(s[1], F_GETFL) & O_NONBLOCK), "S1 became O_NONBLOCK");
    check(geti(s[1], SO_PASSCRED) == 1, "S1 lost SO_PASSCRED");
    check(geti(s[0], SO_PASSCRED) == 0, "S0 got SO_PASSCRED");
    check(geti(s[1], SO_SNDBUF) == sndbuf, "S1 SO_SNDBUF %d, was %d", geti(s[1], SO_SNDBUF),
          sndbuf);
    struct timeval tv2;
    socklen_t tl = sizeof tv2;
    check_sys(getsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv2, &tl));
    check(tv2.tv_sec == 7 && tv2.tv_usec == 500000, "S0 SO_RCVTIMEO %ld.%06ld",
          (long)tv2.tv_sec, (long)tv2.tv_usec);
    check(geti(s[0], SO_TYPE) == SOCK_STREAM && geti(d[0], SO_TYPE) == SOCK_DGRAM &&
          geti(q[0], SO_TYPE) == SOCK_SEQPACKET, "socket types changed");

    /* D: boundaries, the empty datagram, a big one */
    expect_msg(d[1], "one", 3, "D1 first");
    expect_msg(d[1], "", 0, "D1 empty");
    expect_msg(d[1], "three", 5, "D1 third");
    expect_msg(d[1], huge, HUGE, "D1 huge");
    expect_empty(d[1], "D1");
    expect_empty(d[0], "D0");

    /* Q */
    expect_msg(q[0], "alpha", 5, "Q0 first");
    expect_msg(q[0], "beta", 4, "Q0 second");
    expect_empty(q[0], "Q0");
    expect_msg(q[1], "gamma", 5, "Q1");

    /* epoll: S1 was readable before we drained it? check the H watch and
     * that S1's watch is there (write to it again) */
    check(send(s[0], "x", 1, 0) == 1, "S0 send");
    struct epoll_event evs[4];
    int ne = epoll_wait(ep, evs, 4, 1000);
    int seen_s = 0, seen_h = 0;
    for (int i = 0; i < ne; i++) {
        seen_s |= evs[i].data.u64 == 11 && (evs[i].events & EPOLLIN);
        seen_h |= evs[i].data.u64 == 12 && (evs[i].events & EPOLLRDHUP);
    }
    check(seen_s && seen_h, "epoll: %d events, S1 %s, H1 %s", ne, seen_s ? "seen" : "missing",
          seen_h ? "seen" : "missing");
    expect_msg(s[1], "x", 1, "S1 x");

    /* H: half closed */
    expect_msg(h[1], "last", 4, "H1");
    char c;
    check(recv(h[1], &c, 1, MSG_DONTWAIT) == 0, "H1: no end of file after H0's SHUT_WR");
    errno = 0;
    check(send(h[0], "z", 1, 0) < 0 && errno == EPIPE, "H0 could send after SHUT_WR (%s)",
          strerror(errno));
    check(send(h[1], "y", 1, 0) == 1, "H1 -> H0 no longer works");
    expect_msg(h[0], "y", 1, "H0");

    /* R: options, R0 shut for reading */
    check(geti(r[1], SO_PEEK_OFF) == 5, "R1 SO_PEEK_OFF %d, expected 5", geti(r[1], SO_PEEK_OFF));
    check(geti(s[0], SO_PEEK_OFF) == -1, "S0 SO_PEEK_OFF %d, expected -1 (off)",
          geti(s[0], SO_PEEK_OFF));
    check(geti(r[0], SO_PASSSEC) == 1 && geti(r[1], SO_PASSSEC) == 0, "SO_PASSSEC lost or spread");
    check(geti(r[0], SO_KEEPALIVE) == 1, "R0 lost SO_KEEPALIVE");
    check(recv(r[0], &c, 1, MSG_DONTWAIT) == 0, "R0: no end of file after SHUT_RD");
    errno = 0;
    check(send(r[1], "z", 1, 0) < 0 && errno == EPIPE, "R1 could send to R0 (%s)",
          strerror(errno));

    /* T: messages, then end of file */
    expect_msg(t[0], "m", 1, "T0");
    check(recv(t[0], &c, 1, MSG_DONTWAIT) == 0, "T0: no end of file after T1's SHUT_WR");
    check(geti(u, SO_TYPE) == SOCK_SEQPACKET, "U is not a seqpacket socket");

    expect_works(s[0], s[1], "S");
    expect_works(d[0], d[1], "D");
    expect_works(q[0], q[1], "Q");
    pass();
}
