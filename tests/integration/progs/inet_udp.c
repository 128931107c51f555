/* inet_udp - UDP sockets over IPv4 and IPv6, bound and connected, keep
 * their addresses and the datagrams waiting in them, each with its
 * boundaries and its source address: from another socket of the process,
 * from one that was closed since (its address is free again) and an empty
 * datagram; a connected pair shut down for writing at one end and for
 * reading at the other stays so. */
#include <signal.h>

#include "inetlib.h"

static int udp(int family, const char *ip)
{
    struct sockaddr_storage ss;
    socklen_t l = mkaddr(&ss, family, ip, 0);
    int s = socket(family, SOCK_DGRAM, 0);
    check_sys(s);
    check_sys(quiet_bind(s, &ss, l));
    return s;
}

static void send_to(int from, int to, size_t len, uint64_t seed)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    char b[2000];
    check_sys(getsockname(to, (struct sockaddr *)&ss, &l));
    test_fill(b, len, seed);
    check(sendto(from, b, len, 0, (struct sockaddr *)&ss, l) == (ssize_t)len, "sendto: %s",
          strerror(errno));
}

static void expect(int fd, size_t len, uint64_t seed, const char *src)
{
    char b[2100], ip[INET6_ADDRSTRLEN] = "?", from[100];
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    check(poll(&p, 1, 3000) == 1, "fd %d: no datagram (expected %zu bytes from %s)", fd, len, src);
    ssize_t n = recvfrom(fd, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&ss, &l);
    check_sys(n);
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
    snprintf(from, sizeof from, "%s:%d", ip, port_of(&ss));
    check((size_t)n == len, "fd %d: a datagram of %zd bytes, expected %zu", fd, n, len);
    check(test_check_fill(b, len, seed) < 0, "fd %d: datagram of %zu bytes differs", fd, len);
    check(!strcmp(from, src), "fd %d: datagram from %s, expected from %s", fd, from, src);
}

int main(void)
{
    int u1 = udp(AF_INET, "127.0.0.1");
    int u2 = udp(AF_INET, "127.0.0.1");
    int u6 = udp(AF_INET6, "::1");
    int u7 = udp(AF_INET6, "::1");
    int tmp = udp(AF_INET, "127.0.0.1");
    int fresh = socket(AF_INET, SOCK_DGRAM, 0);
    check_sys(fresh);
    char a1[80], a2[80], a6[80], a7[80], at[80];
    sockaddr_text(u1, 0, a1, sizeof a1);
    sockaddr_text(u2, 0, a2, sizeof a2);
    sockaddr_text(u6, 0, a6, sizeof a6);
    sockaddr_text(u7, 0, a7, sizeof a7);
    sockaddr_text(tmp, 0, at, sizeof at);
    /* u2 connected to u1 */
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    check_sys(getsockname(u1, (struct sockaddr *)&ss, &l));
    check_sys(connect(u2, (struct sockaddr *)&ss, l));
    send_to(u2, u1, 100, 1);
    send_to(tmp, u1, 1500, 2);
    send_to(u2, u1, 0, 3);
    send_to(u2, u1, 7, 4);
    send_to(u1, u2, 33, 5);
    send_to(u1, u2, 34, 6);
    send_to(u7, u6, 1200, 7);
    send_to(u7, u6, 1, 8);
    close(tmp);
    int w = udp(AF_INET, "127.0.0.1"), rd = udp(AF_INET, "127.0.0.1");
    l = sizeof ss;
    check_sys(getsockname(rd, (struct sockaddr *)&ss, &l));
    check_sys(connect(w, (struct sockaddr *)&ss, l));
    l = sizeof ss;
    check_sys(getsockname(w, (struct sockaddr *)&ss, &l));
    check_sys(connect(rd, (struct sockaddr *)&ss, l));
    check_sys(shutdown(w, SHUT_WR));
    check_sys(shutdown(rd, SHUT_RD));
    test_ready();
    test_wait_go();

    check_addr(u1, 0, a1);
    check_addr(u2, 0, a2);
    check_addr(u2, 1, a1);
    check_addr(u6, 0, a6);
    check_addr(u7, 0, a7);
    expect(u1, 100, 1, a2);
    expect(u1, 1500, 2, at);
    expect(u1, 0, 3, a2);
    expect(u1, 7, 4, a2);
    expect(u2, 33, 5, a1);
    expect(u2, 34, 6, a1);
    expect(u6, 1200, 7, a7);
    expect(u6, 1, 8, a7);
    char b;
    check(recv(u1, &b, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "u1: more datagrams than sent");
    check(recv(u6, &b, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "u6: more datagrams than sent");
    /* shut down as before: no more sending from w; rd polls as shut down */
    signal(SIGPIPE, SIG_IGN);
    check(send(w, "x", 1, 0) < 0 && errno == EPIPE, "a UDP socket shut down for writing sends");
    struct pollfd pr = {.fd = rd, .events = POLLIN | POLLRDHUP};
    check(poll(&pr, 1, 0) == 1 && (pr.revents & POLLRDHUP), "a UDP socket shut down for "
          "reading does not poll as such (revents %#x)", pr.revents);
    check(send(rd, "y", 1, 0) == 1, "the other end of it cannot send: %s", strerror(errno));
    /* still working */
    check(send(u2, "hello", 5, 0) == 5, "connected send: %s", strerror(errno));
    char r[8];
    check(recv(u1, r, sizeof r, 0) == 5 && !memcmp(r, "hello", 5), "u1: no datagram from u2");
    /* the socket that was never bound still works (and gets a port now) */
    send_to(fresh, u1, 10, 11);
    check_sys(getsockname(fresh, (struct sockaddr *)&ss, &l));
    snprintf(at, sizeof at, "127.0.0.1:%d", port_of(&ss));
    expect(u1, 10, 11, at);
    pass();
}
