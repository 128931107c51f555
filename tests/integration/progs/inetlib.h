/* inetlib.h - small TCP/UDP helpers for the inet_* test programs. */
#ifndef CKSHIM_INETLIB_H
#define CKSHIM_INETLIB_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "testlib.h"

/* An address: family AF_INET or AF_INET6, text ("127.0.0.1", "::1",
 * "0.0.0.0", "::"), port (0: any). */
static __attribute__((unused)) socklen_t mkaddr(struct sockaddr_storage *ss, int family,
                                                const char *ip, int port)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, ip, &a->sin_addr);
        return sizeof *a;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, ip, &a->sin6_addr);
    return sizeof *a;
}

static __attribute__((unused)) int port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* bind(), but a port 0 is a random port below the kernel's ephemeral
 * range (32768 and up): the ports a test's sockets get must be free again
 * at restore, and other programs on a busy machine take ephemeral ports
 * all the time. Falls back to port 0 if none of the tries is free. */
static __attribute__((unused)) int quiet_bind(int s, struct sockaddr_storage *ss, socklen_t l)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    uint16_t *port = ss->ss_family == AF_INET ? &a4->sin_port : &a6->sin6_port;
    static uint64_t r;
    if (!r)
        r = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)time(NULL);
    for (int i = 0; *port == 0 && i < 64; i++) {
        *port = htons((uint16_t)(12000 + (test_rand(&r) % 20000)));
        if (bind(s, (struct sockaddr *)ss, l) == 0)
            return 0;
        if (errno != EADDRINUSE)
            return -1;
        *port = 0;
    }
    return bind(s, (struct sockaddr *)ss, l);
}

/* "ip:port" of a socket's own (peer = 0) or peer's address */
static __attribute__((unused)) const char *sockaddr_text(int fd, int peer, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    memset(&ss, 0, sizeof ss);
    if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &l) : getsockname(fd, (struct sockaddr *)&ss, &l)) < 0) {
        snprintf(out, len, "(%s)", strerror(errno));
        return out;
    }
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
    snprintf(out, len, "%s:%d", ip, port_of(&ss));
    return out;
}

static __attribute__((unused)) int tcp_listener(int family, const char *ip, int backlog, int v6only)
{
    struct sockaddr_storage ss;
    socklen_t l = mkaddr(&ss, family, ip, 0);
    int s = socket(family, SOCK_STREAM, 0);
    check_sys(s);
    if (family == AF_INET6)
        check_sys(setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only));
    check_sys(quiet_bind(s, &ss, l));
    check_sys(listen(s, backlog));
    return s;
}

/* A new TCP socket of family connected to the listener lsk (its address;
 * a wildcard listener is reached through loopback ip). */
static __attribute__((unused)) int tcp_connect_to(int family, const char *ip, int lsk)
{
    struct sockaddr_storage ss, ls;
    socklen_t l = sizeof ls;
    check_sys(getsockname(lsk, (struct sockaddr *)&ls, &l));
    struct sockaddr_storage me;
    socklen_t ml = mkaddr(&me, family, ip, 0);
    l = mkaddr(&ss, family, ip, port_of(&ls));
    int s = socket(family, SOCK_STREAM, 0);
    check_sys(s);
    check_sys(quiet_bind(s, &me, ml));
    check_sys(connect(s, (struct sockaddr *)&ss, l));
    return s;
}

static __attribute__((unused)) void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail("write fd %d: %s", fd, n < 0 ? strerror(errno) : "0");
        p += n;
        len -= (size_t)n;
    }
}

/* Read exactly len bytes (fails on end of file or error, or after 5 s). */
static __attribute__((unused)) void read_exact(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 5000) == 0)
            fail("fd %d: nothing to read for 5 s (%zu bytes missing)", fd, len);
        ssize_t n = read(fd, p, len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            fail("read fd %d: %s (%zu bytes missing)", fd, n < 0 ? strerror(errno) : "end of file",
                 len);
        p += n;
        len -= (size_t)n;
    }
}

/* Send seed's pattern of len bytes to fd, read and check len bytes at the
 * other end rfd. */
static __attribute__((unused)) void roundtrip(int fd, int rfd, size_t len, uint64_t seed)
{
    char *a = malloc(len), *b = malloc(len);
    test_fill(a, len, seed);
    write_all(fd, a, len);
    read_exact(rfd, b, len);
    long off = test_check_fill(b, len, seed);
    if (off >= 0)
        fail("fd %d -> fd %d: byte %ld of %zu differs", fd, rfd, off, len);
    free(a);
    free(b);
}

/* The same address (own or peer) as text now as before. */
#define check_addr(fd, peer, before)                                                        \
    do {                                                                                    \
        char now_[80];                                                                      \
        sockaddr_text(fd, peer, now_, sizeof now_);                                         \
        check(!strcmp(now_, before), "fd %d: %s address %s, was %s", fd,                    \
              (peer) ? "peer" : "own", now_, before);                                       \
    } while (0)

#endif
