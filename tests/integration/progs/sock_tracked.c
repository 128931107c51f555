/* sock_tracked - every way an option, owner or lock reaches a socket,
 * against the shim's shortcut for sockets it knows were never changed
 * (preload/socktrack.c: their options are taken as the kernel's
 * defaults, their owner as none, their locks as none).
 *
 * A new process (and a call through syscall()) makes the shim forget
 * every socket it knew, which would hide the ways tried before it, so
 * each of those is a program of its own, built from this file with ROUTE
 * set (sock_tracked_fork.c, ...): a TCP socket is made, then
 *   ROUTE_FORK     a forked child sets SO_KEEPALIVE on it and exits
 *   ROUTE_SPAWN    posix_spawn of this program with --set FD nodelay:
 *                  TCP_NODELAY
 *   ROUTE_VFORK    vfork + exec of the same: SO_REUSEADDR
 *   ROUTE_SYSCALL  syscall(SYS_setsockopt): SO_KEEPALIVE
 * This program (ROUTE 0) tries the others, each on a socket of its own:
 *   dup       setsockopt on a dup: SO_KEEPALIVE, the dup closed
 *   dupfd     the same through fcntl(F_DUPFD_CLOEXEC): TCP_NODELAY
 *   rights    sent to itself with SCM_RIGHTS, the copy received gets
 *             SO_OOBINLINE, the copy closed
 *   plain     a TCP socket and a UDP socket (one datagram waiting),
 *             never touched: default options
 *   direct    setsockopt SO_RCVLOWAT 7
 *   owner     ioctl FIOSETOWN of the process, and fcntl F_SETSIG SIGUSR2
 *   flocked   flock LOCK_EX
 *   lockf     lockf F_LOCK (a POSIX lock)
 *   acc       accepted from an untouched listener: defaults
 *   accnd     accepted from a listener with TCP_NODELAY: inherits it
 *   unix      a socketpair, one end with SO_PASSCRED
 * After restore (twice): every value as set, every untouched one still the
 * kernel's default (compared with a new socket), the datagram there. */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

#define ROUTE_FORK 1
#define ROUTE_SPAWN 2
#define ROUTE_VFORK 3
#define ROUTE_SYSCALL 4
#ifndef ROUTE
#define ROUTE 0
#endif

extern char **environ;

static int geti(int fd, int level, int opt)
{
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, opt, &v, &l) < 0)
        fail("getsockopt(%d, %d, %d): %s", fd, level, opt, strerror(errno));
    return v;
}

static void seti(int fd, int level, int opt, int v)
{
    check_sys(setsockopt(fd, level, opt, &v, sizeof v));
}

static int tcp(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    check(fd >= 0, "socket: %s", strerror(errno));
    return fd;
}

/* this program again, with --set FD OPTION */
static void run_setter(int fd, int use_vfork)
{
    char arg[16];
    snprintf(arg, sizeof arg, "%d", fd);
    char *argv[] = {"sock_tracked", "--set", arg, use_vfork ? "reuseaddr" : "nodelay", NULL};
    pid_t pid;
    if (use_vfork) {
        pid = vfork();
        if (pid == 0) {
            execve("/proc/self/exe", argv, environ);
            _exit(127);
        }
        check(pid > 0, "vfork: %s", strerror(errno));
    } else {
        int r = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ);
        check(r == 0, "posix_spawn: %s", strerror(r));
    }
    int st;
    check(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "the setter of fd %d failed (status %#x)", fd, st);
}

/* --set FD nodelay|reuseaddr */
static int setter(int fd, const char *what)
{
    int on = 1;
    if (!strcmp(what, "nodelay"))
        return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0 ? 0 : 1;
    return setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 ? 0 : 1;
}

static int route_s, dup_s, dupfd_s, rights_s;
static int plain_t, plain_u, direct_s, owner_s, flock_s, lockf_s, acc_s, accnd_s, ux[2];
static int ref_t, ref_u; /* new sockets after restore: the defaults */

static void send_self(int fd)
{
    int sp[2];
    check_sys(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp));
    char c = 'r';
    struct iovec iov = {&c, 1};
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    check(sendmsg(sp[0], &m, 0) == 1, "sendmsg: %s", strerror(errno));
    memset(cbuf, 0, sizeof cbuf);
    m.msg_controllen = sizeof cbuf;
    check(recvmsg(sp[1], &m, 0) == 1, "recvmsg: %s", strerror(errno));
    int got;
    memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof got);
    seti(got, SOL_SOCKET, SO_OOBINLINE, 1);
    close(got);
    close(sp[0]);
    close(sp[1]);
}

/* a listener on loopback (TCP_NODELAY on it if nodelay) and one accepted
 * connection; the client end stays open */
static int accepted(int nodelay)
{
    int l = tcp();
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (nodelay)
        seti(l, IPPROTO_TCP, TCP_NODELAY, 1);
    check_sys(bind(l, (struct sockaddr *)&a, sizeof a));
    check_sys(listen(l, 4));
    check_sys(getsockname(l, (struct sockaddr *)&a, &al));
    int c = tcp();
    check_sys(connect(c, (struct sockaddr *)&a, sizeof a));
    int s = accept(l, NULL, NULL);
    check(s >= 0, "accept: %s", strerror(errno));
    return s;
}

/* the SOL_SOCKET, IP and TCP options this test may touch, as one line */
static void opts_of(int fd, int is_tcp, char *out, size_t len)
{
    snprintf(out, len,
             "keepalive %d reuseaddr %d broadcast %d oobinline %d rcvlowat %d "
             "rcvbuf-locked %d ttl %d nodelay %d",
             geti(fd, SOL_SOCKET, SO_KEEPALIVE), geti(fd, SOL_SOCKET, SO_REUSEADDR),
             geti(fd, SOL_SOCKET, SO_BROADCAST), geti(fd, SOL_SOCKET, SO_OOBINLINE),
             geti(fd, SOL_SOCKET, SO_RCVLOWAT), geti(fd, SOL_SOCKET, SO_BUF_LOCK),
             geti(fd, IPPROTO_IP, IP_TTL), is_tcp ? geti(fd, IPPROTO_TCP, TCP_NODELAY) : -1);
}

static void same_as_new(int fd, int ref, int is_tcp, const char *what, const char *when)
{
    char a[256], b[256];
    opts_of(fd, is_tcp, a, sizeof a);
    opts_of(ref, is_tcp, b, sizeof b);
    check(!strcmp(a, b), "%s: %s socket's options are \"%s\", a new one's \"%s\"", when, what, a,
          b);
}

static void expect(int fd, int level, int opt, int want, const char *what, const char *when)
{
    int v = geti(fd, level, opt);
    check(v == want, "%s: %s: the option reads %d, not %d", when, what, v, want);
}

static int has_lock_line(int fd, const char *kind)
{
    char p[64], buf[4096];
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
    int f = open(p, O_RDONLY);
    if (f < 0)
        return 0;
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    buf[n > 0 ? n : 0] = 0;
    return strstr(buf, "lock:") && strstr(buf, kind);
}

static void check_route(const char *when)
{
    switch (ROUTE) {
    case ROUTE_FORK:
    case ROUTE_SYSCALL:
        expect(route_s, SOL_SOCKET, SO_KEEPALIVE, 1, "the route's socket", when);
        break;
    case ROUTE_SPAWN:
        expect(route_s, IPPROTO_TCP, TCP_NODELAY, 1, "the route's socket", when);
        break;
    case ROUTE_VFORK:
        expect(route_s, SOL_SOCKET, SO_REUSEADDR, 1, "the route's socket", when);
        break;
    }
}

static void check_all(const char *when)
{
    expect(dup_s, SOL_SOCKET, SO_KEEPALIVE, 1, "dup", when);
    expect(dupfd_s, IPPROTO_TCP, TCP_NODELAY, 1, "dupfd", when);
    expect(rights_s, SOL_SOCKET, SO_OOBINLINE, 1, "rights", when);
    expect(direct_s, SOL_SOCKET, SO_RCVLOWAT, 7, "direct", when);
    expect(accnd_s, IPPROTO_TCP, TCP_NODELAY, 1, "accnd", when);
    expect(ux[0], SOL_SOCKET, SO_PASSCRED, 1, "unix", when);
    expect(ux[1], SOL_SOCKET, SO_PASSCRED, 0, "unix other end", when);
    same_as_new(plain_t, ref_t, 1, "the untouched TCP", when);
    same_as_new(plain_u, ref_u, 0, "the untouched UDP", when);
    same_as_new(acc_s, ref_t, 1, "the accepted", when);
    check(fcntl(owner_s, F_GETOWN) == getpid(), "%s: owner: F_GETOWN %d, not %d", when,
          fcntl(owner_s, F_GETOWN), getpid());
    check(fcntl(owner_s, F_GETSIG) == SIGUSR2, "%s: owner: F_GETSIG %d", when,
          fcntl(owner_s, F_GETSIG));
    check(fcntl(plain_t, F_GETOWN) == 0 && fcntl(plain_t, F_GETSIG) == 0,
          "%s: the untouched TCP socket has an owner or a signal", when);
    check(has_lock_line(flock_s, "FLOCK"), "%s: flocked: its flock is gone", when);
    check(has_lock_line(lockf_s, "POSIX"), "%s: lockf: its POSIX lock is gone", when);
    check(!has_lock_line(plain_t, "lock"), "%s: the untouched socket holds a lock", when);
    char d[8];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    check(recvfrom(plain_u, d, sizeof d, MSG_PEEK | MSG_DONTWAIT, (struct sockaddr *)&from, &fl) ==
                  5 &&
              !memcmp(d, "hello", 5),
          "%s: the datagram waiting in the untouched UDP socket is gone", when);
}

/* the route through another process, or through syscall() */
static void take_route(void)
{
    route_s = tcp();
    int on = 1, st;
    pid_t pid;
    switch (ROUTE) {
    case ROUTE_FORK:
        pid = fork();
        check(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
            seti(route_s, SOL_SOCKET, SO_KEEPALIVE, 1);
            _exit(0);
        }
        check(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st), "the fork child");
        break;
    case ROUTE_SPAWN:
        run_setter(route_s, 0);
        break;
    case ROUTE_VFORK:
        run_setter(route_s, 1);
        break;
    case ROUTE_SYSCALL:
        check_sys((int)syscall(SYS_setsockopt, route_s, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on));
        break;
    }
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--set"))
        return setter(atoi(argv[2]), argv[3]);
    signal(SIGUSR2, SIG_IGN);

    if (ROUTE) {
        take_route();
        check_route("before");
        test_ready();
        test_wait_go();
        check_route("after restore");
        pass();
    }

    /* past the wrapper */
    dup_s = tcp();
    int d = dup(dup_s);
    check_sys(d);
    seti(d, SOL_SOCKET, SO_KEEPALIVE, 1);
    close(d);
    dupfd_s = tcp();
    d = fcntl(dupfd_s, F_DUPFD_CLOEXEC, 100);
    check_sys(d);
    seti(d, IPPROTO_TCP, TCP_NODELAY, 1);
    close(d);
    rights_s = tcp();
    send_self(rights_s);

    /* direct */
    plain_t = tcp();
    plain_u = socket(AF_INET, SOCK_DGRAM, 0);
    check(plain_u >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    check_sys(bind(plain_u, (struct sockaddr *)&a, sizeof a));
    check_sys(getsockname(plain_u, (struct sockaddr *)&a, &al));
    check(sendto(plain_u, "hello", 5, 0, (struct sockaddr *)&a, al) == 5, "sendto: %s",
          strerror(errno));
    direct_s = tcp();
    seti(direct_s, SOL_SOCKET, SO_RCVLOWAT, 7);
    owner_s = tcp();
    int me = getpid();
    check_sys(ioctl(owner_s, FIOSETOWN, &me));
    check_sys(fcntl(owner_s, F_SETSIG, SIGUSR2));
    flock_s = tcp();
    check_sys(flock(flock_s, LOCK_EX));
    lockf_s = tcp();
    check_sys(lockf(lockf_s, F_LOCK, 0));
    acc_s = accepted(0);
    accnd_s = accepted(1);
    check_sys(socketpair(AF_UNIX, SOCK_STREAM, 0, ux));
    seti(ux[0], SOL_SOCKET, SO_PASSCRED, 1);

    ref_t = tcp();
    ref_u = socket(AF_INET, SOCK_DGRAM, 0);
    check_all("before");
    close(ref_t);
    close(ref_u);

    test_ready();
    test_wait_go();

    ref_t = tcp();
    ref_u = socket(AF_INET, SOCK_DGRAM, 0);
    check_all("after restore");
    pass();
}
