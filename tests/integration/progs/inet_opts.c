/* inet_opts - socket options, O_NONBLOCK and epoll registrations of TCP
 * listeners, connections and UDP sockets (IPv4 and IPv6) are the same
 * after restore. */
#include <linux/filter.h>
#include <net/if.h>
#include <sys/epoll.h>

#include "inetlib.h"

struct opt {
    const char *name;
    int *fd, level, opt, val;
    int before;
};

static int getopt_int(int fd, int level, int opt)
{
    int v = -12345;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, opt, &v, &l) < 0)
        fail("getsockopt on fd %d: %s", fd, strerror(errno));
    return v;
}

static void set(int fd, int level, int opt, int v)
{
    check(setsockopt(fd, level, opt, &v, sizeof v) == 0, "setsockopt %d/%d on fd %d: %s", level,
          opt, fd, strerror(errno));
}

/* epoll_wait's answer as text, sorted by data (one line per fd) */
static void ready_text(int ep, char *out, size_t len)
{
    struct epoll_event ev[16];
    int n = epoll_wait(ep, ev, 16, 0);
    check_sys(n);
    uint64_t seen[16];
    for (int i = 0; i < n; i++)
        seen[i] = ev[i].data.u64 << 32 | ev[i].events;
    for (int i = 0; i < n; i++)
        for (int k = i + 1; k < n; k++)
            if (seen[k] < seen[i]) {
                uint64_t t = seen[i];
                seen[i] = seen[k];
                seen[k] = t;
            }
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < n && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "[%llu: %#llx] ", (unsigned long long)(seen[i] >> 32),
                              (unsigned long long)(seen[i] & 0xffffffff));
}

int main(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    check_sys(l);
    set(l, SOL_SOCKET, SO_REUSEADDR, 1);
    set(l, SOL_SOCKET, SO_REUSEPORT, 1);
    set(l, SOL_SOCKET, SO_RCVBUF, 65536);
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, AF_INET, "127.0.0.1", 0);
    check_sys(quiet_bind(l, &ss, sl));
    check_sys(listen(l, 8));
    int c = tcp_connect_to(AF_INET, "127.0.0.1", l);
    int s = accept(l, NULL, NULL);
    check_sys(s);
    int pending = tcp_connect_to(AF_INET, "127.0.0.1", l);
    (void)pending;
    set(c, IPPROTO_TCP, TCP_NODELAY, 1);
    set(c, SOL_SOCKET, SO_KEEPALIVE, 1);
    set(c, IPPROTO_TCP, TCP_KEEPIDLE, 77);
    set(c, IPPROTO_TCP, TCP_KEEPINTVL, 13);
    set(c, IPPROTO_TCP, TCP_KEEPCNT, 4);
    set(c, SOL_SOCKET, SO_SNDBUF, 50000);
    set(c, IPPROTO_TCP, TCP_USER_TIMEOUT, 12345);
    set(c, IPPROTO_IP, IP_TOS, 0x10);
    struct timeval rt = {1, 500000}, st = {2, 250000};
    check_sys(setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof rt));
    check_sys(setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &st, sizeof st));
    socklen_t tl = sizeof rt; /* the kernel keeps them in ticks: what it says now */
    check_sys(getsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &rt, &tl));
    tl = sizeof st;
    check_sys(getsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &st, &tl));
    struct linger lg = {1, 7};
    check_sys(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    set(s, IPPROTO_TCP, TCP_CORK, 1);
    set(s, SOL_SOCKET, SO_RCVBUF, 70000);
    check_sys(fcntl(s, F_SETFL, O_NONBLOCK));
    write_all(c, "abc", 3);

    int u = socket(AF_INET, SOCK_DGRAM, 0);
    check_sys(u);
    set(u, SOL_SOCKET, SO_BROADCAST, 1);
    set(u, IPPROTO_IP, IP_PKTINFO, 1);
    set(u, SOL_SOCKET, SO_RCVBUF, 30000);
    sl = mkaddr(&ss, AF_INET, "127.0.0.1", 0);
    check_sys(quiet_bind(u, &ss, sl));
    check_sys(fcntl(u, F_SETFL, O_NONBLOCK));
    sl = sizeof ss;
    check_sys(getsockname(u, (struct sockaddr *)&ss, &sl));
    check_sys(sendto(u, "d", 1, 0, (struct sockaddr *)&ss, sl));

    /* a socket filter that keeps the first 3 bytes of every datagram */
    struct sock_filter keep3[] = {BPF_STMT(BPF_RET | BPF_K, 8 + 3)}; /* UDP header + 3 */
    struct sock_fprog prog = {.len = 1, .filter = keep3};
    check_sys(setsockopt(u, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog));

    int u6 = socket(AF_INET6, SOCK_DGRAM, 0);
    check_sys(u6);
    set(u6, SOL_SOCKET, SO_BINDTOIFINDEX, (int)if_nametoindex("lo"));
    set(u6, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    set(u6, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    set(u6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9);
    sl = mkaddr(&ss, AF_INET6, "::", 0);
    check_sys(quiet_bind(u6, &ss, sl));

    struct opt opts[] = {
        {"listener SO_REUSEADDR", &l, SOL_SOCKET, SO_REUSEADDR, 1, 0},
        {"listener SO_REUSEPORT", &l, SOL_SOCKET, SO_REUSEPORT, 1, 0},
        {"listener SO_RCVBUF", &l, SOL_SOCKET, SO_RCVBUF, 131072, 0},
        {"client TCP_NODELAY", &c, IPPROTO_TCP, TCP_NODELAY, 1, 0},
        {"client SO_KEEPALIVE", &c, SOL_SOCKET, SO_KEEPALIVE, 1, 0},
        {"client TCP_KEEPIDLE", &c, IPPROTO_TCP, TCP_KEEPIDLE, 77, 0},
        {"client TCP_KEEPINTVL", &c, IPPROTO_TCP, TCP_KEEPINTVL, 13, 0},
        {"client TCP_KEEPCNT", &c, IPPROTO_TCP, TCP_KEEPCNT, 4, 0},
        {"client SO_SNDBUF", &c, SOL_SOCKET, SO_SNDBUF, 100000, 0},
        {"client TCP_USER_TIMEOUT", &c, IPPROTO_TCP, TCP_USER_TIMEOUT, 12345, 0},
        {"client IP_TOS", &c, IPPROTO_IP, IP_TOS, 0x10, 0},
        {"client SO_REUSEADDR", &c, SOL_SOCKET, SO_REUSEADDR, 0, 0},
        {"server TCP_CORK", &s, IPPROTO_TCP, TCP_CORK, 1, 0},
        {"server SO_RCVBUF", &s, SOL_SOCKET, SO_RCVBUF, 140000, 0},
        {"server SO_REUSEADDR", &s, SOL_SOCKET, SO_REUSEADDR, 1, 0},
        {"udp SO_BROADCAST", &u, SOL_SOCKET, SO_BROADCAST, 1, 0},
        {"udp IP_PKTINFO", &u, IPPROTO_IP, IP_PKTINFO, 1, 0},
        {"udp SO_RCVBUF", &u, SOL_SOCKET, SO_RCVBUF, 60000, 0},
        {"udp6 IPV6_V6ONLY", &u6, IPPROTO_IPV6, IPV6_V6ONLY, 1, 0},
        {"udp6 IPV6_RECVPKTINFO", &u6, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, 0},
        {"udp6 IPV6_UNICAST_HOPS", &u6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9, 0},
        {"udp6 SO_BINDTOIFINDEX", &u6, SOL_SOCKET, SO_BINDTOIFINDEX, -1, 0},
        {"client SO_BUF_LOCK (SO_SNDBUF set)", &c, SOL_SOCKET, SO_BUF_LOCK, 1, 0},
        {"server SO_BUF_LOCK (SO_RCVBUF set)", &s, SOL_SOCKET, SO_BUF_LOCK, 2, 0},
        {"udp6 SO_BUF_LOCK (none set)", &u6, SOL_SOCKET, SO_BUF_LOCK, 0, 0},
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    for (int i = 0; i < n; i++) {
        opts[i].before = getopt_int(*opts[i].fd, opts[i].level, opts[i].opt);
        if (opts[i].val >= 0)
            check(opts[i].before == opts[i].val, "%s is %d before the checkpoint, not %d",
                  opts[i].name, opts[i].before, opts[i].val);
    }

    int ep = epoll_create1(0);
    check_sys(ep);
    int watched[] = {l, c, s, u, u6};
    uint32_t evs[] = {EPOLLIN, EPOLLIN | EPOLLOUT | EPOLLRDHUP, EPOLLIN | EPOLLPRI, EPOLLIN, EPOLLIN};
    for (int i = 0; i < 5; i++) {
        struct epoll_event ev = {.events = evs[i], .data.u64 = (uint64_t)i + 100};
        check_sys(epoll_ctl(ep, EPOLL_CTL_ADD, watched[i], &ev));
    }
    test_sleep_ms(20);
    char before[400], after[400];
    ready_text(ep, before, sizeof before);
    test_msg("ready before: %s", before);
    test_ready();
    test_wait_go();

    for (int i = 0; i < n; i++) {
        int v = getopt_int(*opts[i].fd, opts[i].level, opts[i].opt);
        check(v == opts[i].before, "%s is %d after restore, was %d", opts[i].name, v,
              opts[i].before);
    }
    struct timeval tv;
    tl = sizeof tv;
    check_sys(getsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl));
    check(tv.tv_sec == rt.tv_sec && tv.tv_usec == rt.tv_usec, "client SO_RCVTIMEO %ld.%06ld, was "
          "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec, (long)rt.tv_sec, (long)rt.tv_usec);
    tl = sizeof tv;
    check_sys(getsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, &tl));
    check(tv.tv_sec == st.tv_sec && tv.tv_usec == st.tv_usec, "client SO_SNDTIMEO %ld.%06ld, was "
          "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec, (long)st.tv_sec, (long)st.tv_usec);
    tl = sizeof lg;
    check_sys(getsockopt(c, SOL_SOCKET, SO_LINGER, &lg, &tl));
    check(lg.l_onoff == 1 && lg.l_linger == 7, "client SO_LINGER %d %d", lg.l_onoff, lg.l_linger);
    check(fcntl(s, F_GETFL) & O_NONBLOCK, "server lost O_NONBLOCK");
    check(fcntl(u, F_GETFL) & O_NONBLOCK, "udp lost O_NONBLOCK");
    check(!(fcntl(c, F_GETFL) & O_NONBLOCK), "client became non-blocking");
    ready_text(ep, after, sizeof after);
    check(!strcmp(before, after), "epoll reports %s after restore, %s before", after, before);
    /* and the watches follow new events */
    char b[8];
    check(read(s, b, sizeof b) == 3 && !memcmp(b, "abc", 3), "server: the 3 bytes are not there");
    check(read(u, b, sizeof b) == 1, "udp: the datagram is not there");
    /* the filter is back: a datagram is cut to 3 bytes */
    sl = sizeof ss;
    check_sys(getsockname(u, (struct sockaddr *)&ss, &sl));
    check_sys(sendto(u, "0123456789", 10, 0, (struct sockaddr *)&ss, sl));
    check(read(u, b, sizeof b) == 3, "udp: the socket filter is gone (a datagram of 10 bytes is "
          "not cut to 3)");
    int a = accept(l, NULL, NULL);
    check_sys(a);
    struct epoll_event ev[8];
    int k = epoll_wait(ep, ev, 8, 0);
    for (int i = 0; i < k; i++)
        check(ev[i].data.u64 != 100 && ev[i].data.u64 != 103,
              "epoll still reports fd %d ready after it was drained", (int)ev[i].data.u64 - 100);
    write_all(c, "xyz", 3);
    k = epoll_wait(ep, ev, 8, 1000);
    int got = 0;
    for (int i = 0; i < k; i++)
        got |= ev[i].data.u64 == 102 && (ev[i].events & EPOLLIN);
    check(got, "epoll does not report new bytes for the server end");
    pass();
}
