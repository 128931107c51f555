/* inet_pair - TCP connections whose both ends are in the process come back
 * with the same addresses and ports and the bytes that were in flight in
 * each direction: IPv4 through the program's own listener, IPv6 whose
 * listener was closed, IPv4 into a dual-stack IPv6 listener, a half-closed
 * pair (one end shut down for writing), a pair shut down both ways (both
 * ends read end of file and cannot write) and a non-blocking end. */
#include <signal.h>

#include "inetlib.h"

struct pair {
    const char *name;
    int c, s;                   /* client and server ends */
    size_t c2s, s2c;            /* bytes in flight: client -> server, server -> client */
    char ca[80], cp[80], sa[80], sp[80];
};

static void make(struct pair *p, int cfamily, const char *reach, int lsk, size_t c2s, size_t s2c,
                 uint64_t seed)
{
    p->c = tcp_connect_to(cfamily, reach, lsk);
    p->s = accept(lsk, NULL, NULL);
    check_sys(p->s);
    p->c2s = c2s;
    p->s2c = s2c;
    char *b = malloc(c2s + s2c + 1);
    test_fill(b, c2s, seed);
    write_all(p->c, b, c2s);
    test_fill(b, s2c, seed + 1);
    write_all(p->s, b, s2c);
    free(b);
    sockaddr_text(p->c, 0, p->ca, sizeof p->ca);
    sockaddr_text(p->c, 1, p->cp, sizeof p->cp);
    sockaddr_text(p->s, 0, p->sa, sizeof p->sa);
    sockaddr_text(p->s, 1, p->sp, sizeof p->sp);
}

static void expect(int fd, size_t len, uint64_t seed, const char *what)
{
    char *b = malloc(len + 1);
    read_exact(fd, b, len);
    long off = test_check_fill(b, len, seed);
    check(off < 0, "%s: byte %ld of the %zu in flight differs", what, off, len);
    free(b);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    int l4 = tcp_listener(AF_INET, "127.0.0.1", 16, 0);
    int l6 = tcp_listener(AF_INET6, "::1", 16, 1);
    int ld = tcp_listener(AF_INET6, "::", 16, 0);
    struct pair ps[5] = {{.name = "v4"}, {.name = "v6, listener closed"},
                         {.name = "v4 into dual-stack v6"}, {.name = "half-closed"},
                         {.name = "non-blocking"}};
    make(&ps[0], AF_INET, "127.0.0.1", l4, 60000, 3000, 1);
    make(&ps[1], AF_INET6, "::1", l6, 4000, 50000, 3);
    close(l6);
    make(&ps[2], AF_INET, "127.0.0.1", ld, 1, 12345, 5);
    make(&ps[3], AF_INET, "127.0.0.1", l4, 500, 700, 7);
    check_sys(shutdown(ps[3].c, SHUT_WR));
    make(&ps[4], AF_INET, "127.0.0.1", l4, 0, 100, 9);
    check_sys(fcntl(ps[4].s, F_SETFL, O_NONBLOCK));
    int dupc = dup(ps[0].c); /* one socket, two descriptors */
    check_sys(dupc);
    struct pair closed = {.name = "closed both ways"};
    make(&closed, AF_INET, "127.0.0.1", l4, 10, 20, 11);
    char tmp[40];
    read_exact(closed.s, tmp, 10);
    read_exact(closed.c, tmp, 20);
    check_sys(shutdown(closed.c, SHUT_WR));
    test_sleep_ms(20);
    check_sys(shutdown(closed.s, SHUT_WR));
    test_sleep_ms(50);
    test_ready();
    test_wait_go();

    for (int i = 0; i < 5; i++) {
        struct pair *p = &ps[i];
        check_addr(p->c, 0, p->ca);
        check_addr(p->c, 1, p->cp);
        check_addr(p->s, 0, p->sa);
        check_addr(p->s, 1, p->sp);
        char what[120];
        snprintf(what, sizeof what, "%s: client -> server", p->name);
        expect(p->s, p->c2s, (uint64_t)(2 * i + 1), what);
        snprintf(what, sizeof what, "%s: server -> client", p->name);
        expect(p->c, p->s2c, (uint64_t)(2 * i + 2), what);
    }
    /* the half-closed pair: end of file at the server, which can still send */
    char b;
    check(read(ps[3].s, &b, 1) == 0, "half-closed: the server end reads more than end of file");
    roundtrip(ps[3].s, ps[3].c, 2000, 77);
    check(write(ps[3].c, "x", 1) < 0 && errno == EPIPE,
          "half-closed: the client end can write again (%s)", strerror(errno));
    /* closed both ways: end of file and EPIPE at both ends (the client end
     * may have a new port: the kernel keeps the old one in TIME_WAIT) */
    check(read(closed.c, &b, 1) == 0 && read(closed.s, &b, 1) == 0,
          "closed both ways: a read does not see end of file");
    check(write(closed.c, "x", 1) < 0 && errno == EPIPE && write(closed.s, "x", 1) < 0 &&
              errno == EPIPE,
          "closed both ways: a write does not fail with EPIPE");
    /* the dup is the same socket: flags set through one show on the other */
    check_sys(fcntl(dupc, F_SETFL, O_NONBLOCK));
    check(fcntl(ps[0].c, F_GETFL) & O_NONBLOCK, "a dup of a connection is another socket now");
    check_sys(fcntl(dupc, F_SETFL, 0));
    /* the non-blocking end */
    check(fcntl(ps[4].s, F_GETFL) & O_NONBLOCK, "non-blocking: O_NONBLOCK is gone");
    check(read(ps[4].s, &b, 1) < 0 && errno == EAGAIN, "non-blocking: read does not say EAGAIN");
    check(!(fcntl(ps[4].c, F_GETFL) & O_NONBLOCK), "non-blocking: the other end became so");
    for (int i = 0; i < 5; i++) {
        if (i == 3)
            continue;
        roundtrip(ps[i].c, ps[i].s, 100000, 50 + (uint64_t)i);
        roundtrip(ps[i].s, ps[i].c, 3000, 60 + (uint64_t)i);
    }
    /* the listeners still accept */
    int c = tcp_connect_to(AF_INET, "127.0.0.1", l4);
    int a = accept(l4, NULL, NULL);
    check_sys(a);
    roundtrip(c, a, 10, 1);
    pass();
}
