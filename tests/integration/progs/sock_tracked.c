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
 *   ROUTE_GETFD    pidfd_getfd of its own descriptor, SO_KEEPALIVE set
 *                  through the copy, the copy closed
 * This program (ROUTE 0) tries the others, each on a socket of its own:
 *   dup       setsockopt on a dup: SO_KEEPALIVE, the dup closed
 *   dupfd     the same through fcntl(F_DUPFD_CLOEXEC): TCP_NODELAY
 *   rights    sent to itself with SCM_RIGHTS, the copy received gets
 *             SO_OOBINLINE, the copy closed
 *   plain     a TCP socket and a UDP socket (one datagram waiting),
 *             never touched: default options
 *   direct    setsockopt SO_RCVLOWAT 7
 *   owner     ioctl FIOSETOWN of the process, and fcntl F_SETSIG SIGUSR2
 *   owner2    __fcntl (libc's other name) F_SETOWN of the process
 *   flocked   flock LOCK_EX
 *   lockf     lockf F_LOCK (a POSIX lock)
 *   acc       accepted from an untouched listener: defaults
 *   accnd     accepted from a listener with TCP_NODELAY: inherits it
 *   unix      a socketpair, one end with SO_PASSCRED
 *   flags     O_NONBLOCK and FD_CLOEXEC: from SOCK_NONBLOCK|SOCK_CLOEXEC,
 *             accept4's flags, F_SETFL/F_SETFD, FIONBIO/FIOCLEX/FIONCLEX;
 *             every socket's F_GETFL and F_GETFD compared after restore
 *   one       one socket per option the shim groups (preload/socktrack.c
 *             asks a socket only the groups of options it set): TCP, UDP
 *             and TCP over IPv6, each with one option set; every option
 *             of its kind read before the checkpoint and after restore
 *             must be the same (a group that missed an option the kernel
 *             ties to another would show here)
 * After restore (twice): every value as set, every untouched one still the
 * kernel's default (compared with a new socket), the datagram there. */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "testlib.h"

#define ROUTE_FORK 1
#define ROUTE_SPAWN 2
#define ROUTE_VFORK 3
#define ROUTE_SYSCALL 4
#define ROUTE_GETFD 5
#ifndef ROUTE
#define ROUTE 0
#endif

extern char **environ;
extern int __fcntl(int fd, int cmd, ...);

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
static int plain_t, plain_u, direct_s, owner_s, owner2_s, flock_s, lockf_s, acc_s, accnd_s, ux[2];
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
static int accepted(int nodelay, int flags)
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
    int s = accept4(l, NULL, NULL, flags);
    check(s >= 0, "accept4: %s", strerror(errno));
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

/* ---- one option per socket ---- */

struct one {
    const char *what;
    int family, type, level, opt, val; /* val -1: struct linger / timeval */
    int fd;
    char before[1024];
};

static struct one ones[] = {
    {"SO_KEEPALIVE", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_KEEPALIVE, 1},
    {"TCP_KEEPIDLE", AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_KEEPIDLE, 77},
    {"TCP_KEEPCNT", AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_KEEPCNT, 4},
    {"TCP_NODELAY", AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_NODELAY, 1},
    {"TCP_CORK", AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_CORK, 1},
    {"SO_REUSEADDR", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR, 1},
    {"SO_REUSEPORT", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_REUSEPORT, 1},
    {"SO_OOBINLINE", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_OOBINLINE, 1},
    {"SO_DONTROUTE", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_DONTROUTE, 1},
    {"SO_TIMESTAMP", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_TIMESTAMP, 1},
    {"SO_RCVLOWAT", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_RCVLOWAT, 5},
    {"SO_PRIORITY", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_PRIORITY, 3},
    {"IP_TOS", AF_INET, SOCK_STREAM, IPPROTO_IP, IP_TOS, 0x10},
    {"SO_SNDBUF", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_SNDBUF, 65536},
    {"SO_RCVBUF", AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_RCVBUF, 32768},
    {"SO_LINGER", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_LINGER, -1},
    {"SO_RCVTIMEO", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_RCVTIMEO, -1},
    {"SO_SNDTIMEO", AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_SNDTIMEO, -1},
    {"TCP_USER_TIMEOUT", AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_USER_TIMEOUT, 1234},
    {"TCP_NOTSENT_LOWAT", AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 4096},
    {"IP_TTL", AF_INET, SOCK_STREAM, IPPROTO_IP, IP_TTL, 33},
    {"IP_RECVERR", AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_RECVERR, 1},
    {"IP_FREEBIND", AF_INET, SOCK_STREAM, IPPROTO_IP, IP_FREEBIND, 1},
    {"SO_BROADCAST", AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_BROADCAST, 1},
    {"IP_PKTINFO", AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_PKTINFO, 1},
    {"IP_MULTICAST_TTL", AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_MULTICAST_TTL, 5},
    {"IP_MULTICAST_LOOP", AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_MULTICAST_LOOP, 0},
    {"SO_PEEK_OFF", AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_PEEK_OFF, 0},
    {"IPV6_V6ONLY", AF_INET6, SOCK_STREAM, IPPROTO_IPV6, IPV6_V6ONLY, 1},
    {"IPV6_UNICAST_HOPS", AF_INET6, SOCK_STREAM, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9},
    {"IPV6_TCLASS", AF_INET6, SOCK_STREAM, IPPROTO_IPV6, IPV6_TCLASS, 0x20},
    {"IPV6_RECVERR", AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RECVERR, 1},
    {"IPV6_RECVPKTINFO", AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1},
    {"IPV6_FREEBIND", AF_INET6, SOCK_STREAM, IPPROTO_IPV6, IPV6_FREEBIND, 1},
    {"IP_FREEBIND on IPv6", AF_INET6, SOCK_STREAM, IPPROTO_IP, IP_FREEBIND, 1},
    {"IP_RECVERR on IPv6", AF_INET6, SOCK_DGRAM, IPPROTO_IP, IP_RECVERR, 1},
    {"IP_TOS on IPv6", AF_INET6, SOCK_STREAM, IPPROTO_IP, IP_TOS, 0x10},
};
#define NONES (int)(sizeof ones / sizeof ones[0])

/* every option ckshim saves for o's kind, as text ("x": not there) */
static void dump_one(const struct one *o, char *out, size_t len)
{
    static const struct {
        int level, opt;
    } all[] = {
        {SOL_SOCKET, SO_KEEPALIVE},       {SOL_SOCKET, SO_REUSEADDR},
        {SOL_SOCKET, SO_REUSEPORT},       {SOL_SOCKET, SO_BROADCAST},
        {SOL_SOCKET, SO_OOBINLINE},       {SOL_SOCKET, SO_DONTROUTE},
        {SOL_SOCKET, SO_TIMESTAMP},       {SOL_SOCKET, SO_BUF_LOCK},
        {SOL_SOCKET, SO_RCVLOWAT},        {SOL_SOCKET, SO_PRIORITY},
        {SOL_SOCKET, SO_PEEK_OFF},        {SOL_SOCKET, SO_BINDTOIFINDEX},
        {IPPROTO_TCP, TCP_NODELAY},       {IPPROTO_TCP, TCP_CORK},
        {IPPROTO_TCP, TCP_KEEPIDLE},      {IPPROTO_TCP, TCP_KEEPINTVL},
        {IPPROTO_TCP, TCP_KEEPCNT},       {IPPROTO_TCP, TCP_USER_TIMEOUT},
        {IPPROTO_TCP, TCP_NOTSENT_LOWAT}, {IPPROTO_IP, IP_TOS},
        {IPPROTO_IP, IP_TTL},             {IPPROTO_IP, IP_RECVERR},
        {IPPROTO_IP, IP_FREEBIND},        {IPPROTO_IP, IP_PKTINFO},
        {IPPROTO_IP, IP_MULTICAST_TTL},   {IPPROTO_IP, IP_MULTICAST_LOOP},
        {IPPROTO_IPV6, IPV6_V6ONLY},      {IPPROTO_IPV6, IPV6_UNICAST_HOPS},
        {IPPROTO_IPV6, IPV6_TCLASS},      {IPPROTO_IPV6, IPV6_RECVERR},
        {IPPROTO_IPV6, IPV6_RECVPKTINFO}, {IPPROTO_IPV6, IPV6_FREEBIND},
    };
    size_t n = 0;
    out[0] = 0;
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        int v = 0;
        socklen_t l = sizeof v;
        if ((all[k].level == IPPROTO_TCP && o->type != SOCK_STREAM) ||
            (all[k].level == IPPROTO_IP && o->family != AF_INET) ||
            (all[k].level == IPPROTO_IPV6 && o->family != AF_INET6))
            continue;
        if (getsockopt(o->fd, all[k].level, all[k].opt, &v, &l) == 0)
            n += (size_t)snprintf(out + n, len - n, "%d.%d=%d ", all[k].level, all[k].opt, v);
        else
            n += (size_t)snprintf(out + n, len - n, "%d.%d=x ", all[k].level, all[k].opt);
    }
    struct linger lg = {0, 0};
    struct timeval rt = {0, 0}, st = {0, 0};
    socklen_t l = sizeof lg;
    getsockopt(o->fd, SOL_SOCKET, SO_LINGER, &lg, &l);
    l = sizeof rt;
    getsockopt(o->fd, SOL_SOCKET, SO_RCVTIMEO, &rt, &l);
    l = sizeof st;
    getsockopt(o->fd, SOL_SOCKET, SO_SNDTIMEO, &st, &l);
    int sb = 0;
    l = sizeof sb;
    getsockopt(o->fd, SOL_SOCKET, o->opt == SO_RCVBUF ? SO_RCVBUF : SO_SNDBUF, &sb, &l);
    snprintf(out + n, len - n, "linger %d/%d rcvtimeo %ld.%06ld sndtimeo %ld.%06ld buf %d",
             lg.l_onoff, lg.l_linger, (long)rt.tv_sec, (long)rt.tv_usec, (long)st.tv_sec,
             (long)st.tv_usec, o->opt == SO_SNDBUF || o->opt == SO_RCVBUF ? sb : 0);
}

static void make_ones(void)
{
    for (int i = 0; i < NONES; i++) {
        struct one *o = &ones[i];
        o->fd = socket(o->family, o->type, 0);
        check(o->fd >= 0, "%s: socket: %s", o->what, strerror(errno));
        if (o->val >= 0) {
            seti(o->fd, o->level, o->opt, o->val);
        } else if (o->opt == SO_LINGER) {
            struct linger lg = {1, 3};
            check_sys(setsockopt(o->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
        } else {
            struct timeval tv = {2, 500000};
            check_sys(setsockopt(o->fd, SOL_SOCKET, o->opt, &tv, sizeof tv));
        }
        dump_one(o, o->before, sizeof o->before);
    }
}

static void check_ones(const char *when)
{
    for (int i = 0; i < NONES; i++) {
        char now[1024];
        dump_one(&ones[i], now, sizeof now);
        check(!strcmp(now, ones[i].before), "%s: the socket with %s: options \"%s\", before \"%s\"",
              when, ones[i].what, now, ones[i].before);
    }
}

/* every socket's file status flags and descriptor flags (the shim
 * knows a socket's flags as it was made until fcntl or ioctl changes
 * them: accept4's flags, SOCK_NONBLOCK, F_SETFL, FIONBIO, FIOCLEX) */
#define MAXFD 512
static int flags_at[MAXFD], fdflags_at[MAXFD], is_sock[MAXFD];

static void snap_flags(void)
{
    for (int fd = 3; fd < MAXFD; fd++) {
        struct stat st;
        is_sock[fd] = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
        if (is_sock[fd]) {
            flags_at[fd] = fcntl(fd, F_GETFL);
            fdflags_at[fd] = fcntl(fd, F_GETFD);
        }
    }
}

static void check_flags(const char *when)
{
    for (int fd = 3; fd < MAXFD; fd++)
        if (is_sock[fd])
            check(fcntl(fd, F_GETFL) == flags_at[fd] && fcntl(fd, F_GETFD) == fdflags_at[fd],
                  "%s: socket fd %d: F_GETFL %#x F_GETFD %d, before %#x %d", when, fd,
                  fcntl(fd, F_GETFL), fcntl(fd, F_GETFD), flags_at[fd], fdflags_at[fd]);
}

static void check_route(const char *when)
{
    switch (ROUTE) {
    case ROUTE_FORK:
    case ROUTE_SYSCALL:
    case ROUTE_GETFD:
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
    check(fcntl(owner2_s, F_GETOWN) == getpid(), "%s: owner2: F_GETOWN %d, not %d", when,
          fcntl(owner2_s, F_GETOWN), getpid());
    check(fcntl(plain_t, F_GETOWN) == 0 && fcntl(plain_t, F_GETSIG) == 0,
          "%s: the untouched TCP socket has an owner or a signal", when);
    check(test_fdinfo_lock(flock_s, "FLOCK"), "%s: flocked: its flock is gone", when);
    check(test_fdinfo_lock(lockf_s, "POSIX"), "%s: lockf: its POSIX lock is gone", when);
    check(!test_fdinfo_lock(plain_t, "lock"), "%s: the untouched socket holds a lock", when);
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
    case ROUTE_GETFD: {
        int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
        check_sys(pfd);
        int copy = pidfd_getfd(pfd, route_s, 0);
        check(copy >= 0, "pidfd_getfd: %s", strerror(errno));
        seti(copy, SOL_SOCKET, SO_KEEPALIVE, 1);
        close(copy);
        close(pfd);
        break;
    }
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
    owner2_s = tcp();
    check_sys(__fcntl(owner2_s, F_SETOWN, me));
    flock_s = tcp();
    check_sys(flock(flock_s, LOCK_EX));
    lockf_s = tcp();
    check_sys(lockf(lockf_s, F_LOCK, 0));
    acc_s = accepted(0, 0);
    accnd_s = accepted(1, 0);
    accepted(0, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    check_sys(nb);
    int fl = tcp();
    check_sys(fcntl(fl, F_SETFL, O_NONBLOCK));
    check_sys(fcntl(fl, F_SETFD, FD_CLOEXEC));
    int io = tcp();
    int one = 1;
    check_sys(ioctl(io, FIONBIO, &one));
    check_sys(ioctl(io, FIOCLEX));
    int un = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    check_sys(un);
    check_sys(ioctl(un, FIONBIO, &(int){0}));
    check_sys(ioctl(un, FIONCLEX));
    check_sys(socketpair(AF_UNIX, SOCK_STREAM, 0, ux));
    seti(ux[0], SOL_SOCKET, SO_PASSCRED, 1);
    make_ones();

    ref_t = tcp();
    ref_u = socket(AF_INET, SOCK_DGRAM, 0);
    check_all("before");
    close(ref_t);
    close(ref_u);
    snap_flags();

    test_ready();
    test_wait_go();

    ref_t = tcp();
    ref_u = socket(AF_INET, SOCK_DGRAM, 0);
    check_all("after restore");
    check_ones("after restore");
    check_flags("after restore");
    pass();
}
