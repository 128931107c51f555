/* inet_proofs - what the capture no longer asks one by one comes back
 * exactly: the buffer sizes (read together with SO_MEMINFO), a socket
 * filter (not asked when SO_MEMINFO shows no option memory: one attached
 * and locked, one attached and detached again, none), the type of a TCP
 * socket (told by TCP_INFO) and of a UDP one (by SO_PEEK_OFF), the family
 * and address (from getsockname), and UDP
 * queues read two datagrams a call (recvmmsg): one, two, three and five
 * (one of them empty), with their boundaries and senders.
 */
#include <linux/filter.h>

#include "inetlib.h"

static int geti(int fd, int level, int opt)
{
    int v = -12345;
    socklen_t l = sizeof v;
    check(getsockopt(fd, level, opt, &v, &l) == 0, "getsockopt %d/%d on fd %d: %s", level, opt,
          fd, strerror(errno));
    return v;
}

static void seti(int fd, int level, int opt, int v)
{
    check(setsockopt(fd, level, opt, &v, sizeof v) == 0, "setsockopt %d/%d on fd %d: %s", level,
          opt, fd, strerror(errno));
}

/* the filter's instruction count (SO_GET_FILTER), 0 for none */
static int filter_len(int fd)
{
    socklen_t l = 0;
    check(getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &l) == 0, "SO_GET_FILTER: %s",
          strerror(errno));
    return (int)l;
}

static int udp_bound(int family, const char *ip)
{
    int u = socket(family, SOCK_DGRAM, 0);
    check_sys(u);
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, family, ip, 0);
    check_sys(quiet_bind(u, &ss, sl));
    return u;
}

/* n datagrams "FAMILY-k" (k = 0..n-1; an empty one where k == empty) from
 * `from` to `to` */
static void send_dgrams(int from, int to, int n, int empty)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    check_sys(getsockname(to, (struct sockaddr *)&ss, &sl));
    for (int k = 0; k < n; k++) {
        char m[32];
        int len = k == empty ? 0 : snprintf(m, sizeof m, "dgram-%d-%d", to, k);
        check(sendto(from, m, (size_t)len, 0, (struct sockaddr *)&ss, sl) == len, "sendto: %s",
              strerror(errno));
    }
}

static void expect_dgrams(int from, int to, int n, int empty)
{
    struct sockaddr_storage want, got;
    socklen_t wl = sizeof want;
    check_sys(getsockname(from, (struct sockaddr *)&want, &wl));
    for (int k = 0; k < n; k++) {
        char m[32], b[64];
        int len = k == empty ? 0 : snprintf(m, sizeof m, "dgram-%d-%d", to, k);
        socklen_t gl = sizeof got;
        ssize_t r = recvfrom(to, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&got, &gl);
        check(r == len && !memcmp(b, m, (size_t)len), "fd %d datagram %d: %zd bytes %.*s, want "
              "%d", to, k, r, r > 0 ? (int)r : 0, b, len);
        check(port_of(&got) == port_of(&want), "fd %d datagram %d from port %d, not %d", to, k,
              port_of(&got), port_of(&want));
    }
    char b[8];
    check(recv(to, b, sizeof b, MSG_DONTWAIT) < 0 && errno == EAGAIN, "fd %d: more datagrams "
          "than %d", to, n);
}

int main(void)
{
    /* TCP over IPv6 and IPv4: buffer sizes of their own, a filter on one */
    int l6 = tcp_listener(AF_INET6, "::1", 4, 0);
    int c6 = tcp_connect_to(AF_INET6, "::1", l6);
    int s6 = accept(l6, NULL, NULL);
    check_sys(s6);
    seti(c6, SOL_SOCKET, SO_SNDBUF, 40000);
    seti(c6, SOL_SOCKET, SO_RCVBUF, 45000);
    seti(s6, SOL_SOCKET, SO_RCVBUF, 50000);
    write_all(c6, "v6 bytes", 8);

    int l4 = tcp_listener(AF_INET, "127.0.0.1", 4, 0);
    seti(l4, SOL_SOCKET, SO_SNDBUF, 30000);
    int c4 = tcp_connect_to(AF_INET, "127.0.0.1", l4);
    int s4 = accept(l4, NULL, NULL);
    check_sys(s4);

    /* UDP: queues of 1, 2, 3 datagrams (one empty) from another socket */
    int src = udp_bound(AF_INET, "127.0.0.1");
    int u0 = udp_bound(AF_INET, "127.0.0.1"); /* a filter, nothing waiting */
    int u1 = udp_bound(AF_INET, "127.0.0.1"), u2 = udp_bound(AF_INET, "127.0.0.1"),
        u3 = udp_bound(AF_INET, "127.0.0.1"), u6 = udp_bound(AF_INET6, "::1");
    int src6 = udp_bound(AF_INET6, "::1");
    /* filters (an unprivileged user may not attach one to a TCP socket
     * here): one locked, one attached and detached again (its option
     * memory is given back: none is asked), one that cuts datagrams to 3
     * bytes */
    int uf = udp_bound(AF_INET6, "::1"), ud = udp_bound(AF_INET, "127.0.0.1");
    struct sock_filter all[] = {BPF_STMT(BPF_RET | BPF_K, 0xffff)};
    struct sock_fprog prog = {.len = 1, .filter = all};
    check_sys(setsockopt(uf, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog));
    seti(uf, SOL_SOCKET, SO_LOCK_FILTER, 1);
    struct sock_filter keep3[] = {BPF_STMT(BPF_RET | BPF_K, 8 + 3)};
    struct sock_fprog p3 = {.len = 1, .filter = keep3};
    check_sys(setsockopt(ud, SOL_SOCKET, SO_ATTACH_FILTER, &p3, sizeof p3));
    int zero = 0;
    check_sys(setsockopt(ud, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof zero));
    seti(u3, SOL_SOCKET, SO_SNDBUF, 20000);
    check_sys(setsockopt(u0, SOL_SOCKET, SO_ATTACH_FILTER, &p3, sizeof p3));
    send_dgrams(src, u1, 1, -1);
    send_dgrams(src, u2, 2, -1);
    send_dgrams(src, u3, 3, 1);
    send_dgrams(src6, u6, 5, 4);

    int fds[] = {l6, c6, s6, l4, c4, s4, src, u1, u0, u3, u6, src6, u2, uf, ud};
    enum { NF = sizeof fds / sizeof fds[0] };
    const int nf = NF;
    int type[NF], snd[NF], rcv[NF], filt[NF], lock[NF], fam[NF];
    struct sockaddr_storage name[NF];
    socklen_t namelen[NF];
    for (int i = 0; i < nf; i++) {
        type[i] = geti(fds[i], SOL_SOCKET, SO_TYPE);
        fam[i] = geti(fds[i], SOL_SOCKET, SO_DOMAIN);
        snd[i] = geti(fds[i], SOL_SOCKET, SO_SNDBUF);
        rcv[i] = geti(fds[i], SOL_SOCKET, SO_RCVBUF);
        filt[i] = filter_len(fds[i]);
        lock[i] = geti(fds[i], SOL_SOCKET, SO_LOCK_FILTER);
        namelen[i] = sizeof name[i];
        check_sys(getsockname(fds[i], (struct sockaddr *)&name[i], &namelen[i]));
    }
    check(filt[13] == 1 && lock[13] == 1 && filt[14] == 0 && filt[8] == 1 && filt[7] == 0,
          "filters before the checkpoint: %d %d %d %d %d", filt[13], lock[13], filt[14], filt[8],
          filt[7]);
    test_ready();
    test_wait_go();

    for (int i = 0; i < nf; i++) {
        int fd = fds[i];
        check(geti(fd, SOL_SOCKET, SO_TYPE) == type[i], "fd %d: type %d, was %d", fd,
              geti(fd, SOL_SOCKET, SO_TYPE), type[i]);
        check(geti(fd, SOL_SOCKET, SO_DOMAIN) == fam[i], "fd %d: family %d, was %d", fd,
              geti(fd, SOL_SOCKET, SO_DOMAIN), fam[i]);
        /* sizes the kernel tunes (not set) may differ; set ones are locked */
        int bl = geti(fd, SOL_SOCKET, SO_BUF_LOCK);
        if (bl & 1)
            check(geti(fd, SOL_SOCKET, SO_SNDBUF) == snd[i], "fd %d: SO_SNDBUF %d, was %d", fd,
                  geti(fd, SOL_SOCKET, SO_SNDBUF), snd[i]);
        if (bl & 2)
            check(geti(fd, SOL_SOCKET, SO_RCVBUF) == rcv[i], "fd %d: SO_RCVBUF %d, was %d", fd,
                  geti(fd, SOL_SOCKET, SO_RCVBUF), rcv[i]);
        check(filter_len(fd) == filt[i], "fd %d: a filter of %d instructions, was %d", fd,
              filter_len(fd), filt[i]);
        check(geti(fd, SOL_SOCKET, SO_LOCK_FILTER) == lock[i], "fd %d: SO_LOCK_FILTER %d, "
              "was %d", fd, geti(fd, SOL_SOCKET, SO_LOCK_FILTER), lock[i]);
        struct sockaddr_storage now;
        socklen_t nl = sizeof now;
        check_sys(getsockname(fd, (struct sockaddr *)&now, &nl));
        check(nl == namelen[i] && port_of(&now) == port_of(&name[i]), "fd %d: bound to port %d, "
              "was %d", fd, port_of(&now), port_of(&name[i]));
    }
    check(geti(c6, SOL_SOCKET, SO_BUF_LOCK) == 3 && geti(s6, SOL_SOCKET, SO_BUF_LOCK) == 2 &&
          geti(l4, SOL_SOCKET, SO_BUF_LOCK) == 1 && geti(u3, SOL_SOCKET, SO_BUF_LOCK) == 1,
          "SO_BUF_LOCK: %d %d %d %d", geti(c6, SOL_SOCKET, SO_BUF_LOCK),
          geti(s6, SOL_SOCKET, SO_BUF_LOCK), geti(l4, SOL_SOCKET, SO_BUF_LOCK),
          geti(u3, SOL_SOCKET, SO_BUF_LOCK));
    char b[16];
    ssize_t r = recv(s6, b, sizeof b, MSG_DONTWAIT);
    check(r == 8 && !memcmp(b, "v6 bytes", 8), "v6 server: %zd bytes", r);
    expect_dgrams(src, u1, 1, -1);
    expect_dgrams(src, u2, 2, -1);
    expect_dgrams(src, u3, 3, 1);
    expect_dgrams(src6, u6, 5, 4);
    /* the filters work: u0 cuts to 3 bytes, ud's is gone */
    send_dgrams(src, u0, 1, -1);
    r = recv(u0, b, sizeof b, MSG_DONTWAIT);
    check(r == 3, "u0: the socket filter is gone (%zd bytes)", r);
    send_dgrams(src, ud, 1, -1);
    r = recv(ud, b, sizeof b, MSG_DONTWAIT);
    check(r > 3, "ud: %zd bytes, a detached filter came back", r);
    write_all(s4, "0123456789", 10);
    test_sleep_ms(50);
    r = recv(c4, b, sizeof b, MSG_DONTWAIT);
    check(r == 10, "c4: %zd bytes", r);
    pass();
}
