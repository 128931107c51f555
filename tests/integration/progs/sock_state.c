/* sock_state - what a socket's capture reads without /proc comes back:
 * its file status and descriptor flags, a file lock held through it, its
 * signal owner, and its peek offset with the bytes waiting.
 *
 * The shim reads a TCP or UDP socket's flags with fcntl instead of its
 * fdinfo, and reads fdinfo only for sockets /proc/locks names (a socket
 * can hold flock and fcntl locks); peeks that find the program's peek
 * offset at -1 do not touch it.
 *
 * Before READY:
 *   fd L: a TCP socket, flock LOCK_EX, O_NONBLOCK, close-on-exec
 *   fd U: a UDP socket bound to loopback, O_NONBLOCK off, no
 *         close-on-exec, F_SETOWN to the process, a datagram waiting
 *   fd P, Q: a connected TCP pair over loopback; P has SO_PEEK_OFF 2 and
 *         "hello world" waiting, Q has "abc" waiting and no peek offset
 *   fd S: a unix stream pair's end with SO_PEEK_OFF 3 and "0123456789"
 * After restore: the flags, the owner and the peek offsets are the same;
 * a child (its own open file description of nothing: it asks through
 * /proc/PID/fdinfo) sees the lock line of fd L; every queue holds its
 * bytes from the start, and a peek continues at the program's offset.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>

#include "testlib.h"

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

static int peekoff(int fd)
{
    int v = -2;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &v, &l) < 0)
        return -3;
    return v;
}

static void set_peekoff(int fd, int v)
{
    check_sys(setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof v));
}

/* peek at fd (its offset moves), then read everything: want */
static void check_queue(const char *name, int fd, const char *peeked, const char *want)
{
    char buf[64];
    ssize_t n;
    if (peeked) {
        n = recv(fd, buf, strlen(peeked), MSG_PEEK | MSG_DONTWAIT);
        if (n != (ssize_t)strlen(peeked) || memcmp(buf, peeked, (size_t)n))
            fail("%s: a peek gave %zd bytes '%.*s', not '%s'", name, n, n > 0 ? (int)n : 0,
                 buf, peeked);
    }
    n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n))
        fail("%s: read %zd bytes '%.*s', not '%s'", name, n, n > 0 ? (int)n : 0, buf, want);
}

int main(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;

    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    check_sys(l);
    check_sys(flock(l, LOCK_EX));

    int u = socket(AF_INET, SOCK_DGRAM, 0);
    check_sys(u);
    check_sys(bind(u, (struct sockaddr *)&a, sizeof a));
    check_sys(getsockname(u, (struct sockaddr *)&a, &al));
    check_sys(fcntl(u, F_SETOWN, getpid()));
    if (sendto(u, "dgram", 5, 0, (struct sockaddr *)&a, al) != 5)
        fail("sendto: %s", strerror(errno));

    struct sockaddr_in b = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t bl = sizeof b;
    int lsn = socket(AF_INET, SOCK_STREAM, 0);
    check_sys(lsn);
    check_sys(bind(lsn, (struct sockaddr *)&b, sizeof b));
    check_sys(listen(lsn, 1));
    check_sys(getsockname(lsn, (struct sockaddr *)&b, &bl));
    int q = socket(AF_INET, SOCK_STREAM, 0);
    check_sys(q);
    check_sys(connect(q, (struct sockaddr *)&b, bl));
    int p = accept(lsn, NULL, NULL);
    check_sys(p);
    close(lsn);
    if (write(q, "hello world", 11) != 11 || write(p, "abc", 3) != 3)
        fail("write: %s", strerror(errno));
    set_peekoff(p, 2);

    int sp[2];
    check_sys(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    if (write(sp[1], "0123456789", 10) != 10)
        fail("write: %s", strerror(errno));
    set_peekoff(sp[0], 3);
    test_sleep_ms(100); /* the loopback bytes arrive */

    test_ready();
    test_wait_go();

    if (!(fcntl(l, F_GETFL) & O_NONBLOCK) || !(fcntl(l, F_GETFD) & FD_CLOEXEC))
        fail("TCP socket: flags %#x, fd flags %#x (want O_NONBLOCK and FD_CLOEXEC)",
             fcntl(l, F_GETFL), fcntl(l, F_GETFD));
    if ((fcntl(u, F_GETFL) & O_NONBLOCK) || (fcntl(u, F_GETFD) & FD_CLOEXEC))
        fail("UDP socket: flags %#x, fd flags %#x (want neither O_NONBLOCK nor FD_CLOEXEC)",
             fcntl(u, F_GETFL), fcntl(u, F_GETFD));
    if (fcntl(u, F_GETOWN) != getpid())
        fail("UDP socket: owner %d, not the process %d", fcntl(u, F_GETOWN), getpid());
    if (!test_fdinfo_lock(l, "FLOCK"))
        fail("TCP socket fd %d: its flock is gone", l);
    if (peekoff(p) != 2 || peekoff(q) != -1 || peekoff(sp[0]) != 3)
        fail("peek offsets %d %d %d, not 2 -1 3", peekoff(p), peekoff(q), peekoff(sp[0]));
    char d[16];
    ssize_t n = recv(u, d, sizeof d, MSG_DONTWAIT);
    if (n != 5 || memcmp(d, "dgram", 5))
        fail("UDP socket: read %zd bytes, not the datagram", n);
    check_queue("TCP end with peek offset 2", p, "llo", "hello world");
    check_queue("TCP end without peek offset", q, "ab", "abc");
    check_queue("unix end with peek offset 3", sp[0], "345", "0123456789");
    pass();
}
