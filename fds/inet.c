/* inet.c - TCP and UDP sockets over IPv4 and IPv6 (CK_FD_INET).
 *
 * Capture (in the program, threads parked): family, type, addresses, the
 * TCP state (TCP_INFO), listen backlog, the options of the table below,
 * and the bytes waiting in the receive queue, read with MSG_PEEK and
 * SO_PEEK_OFF so the program's queue is left as it was (UDP: datagram by
 * datagram, with its source address). finish() pairs connections whose
 * both ends the process holds (local address of one = peer address of the
 * other) and decides how each comes back (ck_inet.role).
 *
 * Restore (in coord): the first inet descriptor restored makes all of
 * them, in an order that lets every bind succeed: connected pairs through
 * a temporary listener on the server end's address (the client end bound
 * to its old port first), then listeners, then clients waiting in an
 * accept queue (connected again to the new listener, so the program
 * accepts them), then connections to peers outside the process, which
 * come back reset: a socket connected to a temporary listener over
 * loopback whose other end writes the bytes the program had not read yet
 * and closes with SO_LINGER {1, 0}, so the next read after those bytes
 * fails with ECONNRESET, writes with EPIPE, and epoll reports
 * EPOLLERR | EPOLLHUP: the program's own reconnect logic runs. Bytes are
 * written back into each end from the other one. Everything is kept
 * above the image's descriptors until coord places it. Datagrams are
 * sent again in after(), once every socket is at its number, from the
 * socket of the process bound to their source address when there is one.
 * No kernel help (TCP_REPAIR) and no privilege are needed: TCP sequence
 * numbers are new, which only the two ends inside the process could see.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fdkind.h"
#include "image.h"
#include "imgio.h"
#include "inet.h"
#include "socket.h"

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11
#endif

/* TCP states (include/net/tcp_states.h) */
enum {
    ST_ESTABLISHED = 1, ST_SYN_SENT, ST_SYN_RECV, ST_FIN_WAIT1, ST_FIN_WAIT2, ST_TIME_WAIT,
    ST_CLOSE, ST_CLOSE_WAIT, ST_LAST_ACK, ST_LISTEN, ST_CLOSING,
};

/* The IP, IPv6 and TCP integer options saved (SOL_SOCKET ones are in
 * struct ck_sock, fds/socket.c), index = ck_inet.opt index (image format:
 * only ever append). fam: 0 any, else only for that family; tcp: 1 only
 * for TCP, 2 only for UDP (and UDP-Lite), 3 only for UDP-Lite, 4 only for
 * TCP listeners (capture reads fewer options per socket). late: set once the bytes are back (TCP_CORK
 * would hold them). */
static const struct inet_opt {
    int level, name, fam, tcp, late;
    const char *text;
} inet_opts[] = {
    {IPPROTO_TCP, TCP_NODELAY, 0, 1, 0, "TCP_NODELAY"},
    {IPPROTO_TCP, TCP_CORK, 0, 1, 1, "TCP_CORK"},
    {IPPROTO_TCP, TCP_KEEPIDLE, 0, 1, 0, "TCP_KEEPIDLE"},
    {IPPROTO_TCP, TCP_KEEPINTVL, 0, 1, 0, "TCP_KEEPINTVL"},
    {IPPROTO_TCP, TCP_KEEPCNT, 0, 1, 0, "TCP_KEEPCNT"},
    {IPPROTO_TCP, TCP_USER_TIMEOUT, 0, 1, 0, "TCP_USER_TIMEOUT"},
    {IPPROTO_TCP, TCP_DEFER_ACCEPT, 0, 4, 0, "TCP_DEFER_ACCEPT"},
    {IPPROTO_TCP, TCP_NOTSENT_LOWAT, 0, 1, 0, "TCP_NOTSENT_LOWAT"},
    {IPPROTO_TCP, TCP_FASTOPEN, 0, 4, 0, "TCP_FASTOPEN"},
    {IPPROTO_IP, IP_TOS, AF_INET, 0, 0, "IP_TOS"},
    {IPPROTO_IP, IP_TTL, AF_INET, 0, 0, "IP_TTL"},
    {IPPROTO_IP, IP_PKTINFO, AF_INET, 2, 0, "IP_PKTINFO"},
    {IPPROTO_IP, IP_RECVERR, AF_INET, 0, 0, "IP_RECVERR"},
    {IPPROTO_IP, IP_MULTICAST_TTL, AF_INET, 2, 0, "IP_MULTICAST_TTL"},
    {IPPROTO_IP, IP_MULTICAST_LOOP, AF_INET, 2, 0, "IP_MULTICAST_LOOP"},
    {IPPROTO_IP, IP_FREEBIND, AF_INET, 0, 0, "IP_FREEBIND"},
    {IPPROTO_IPV6, IPV6_V6ONLY, AF_INET6, 0, 0, "IPV6_V6ONLY"},
    {IPPROTO_IPV6, IPV6_UNICAST_HOPS, AF_INET6, 0, 0, "IPV6_UNICAST_HOPS"},
    {IPPROTO_IPV6, IPV6_TCLASS, AF_INET6, 0, 0, "IPV6_TCLASS"},
    {IPPROTO_IPV6, IPV6_RECVPKTINFO, AF_INET6, 2, 0, "IPV6_RECVPKTINFO"},
    {IPPROTO_IPV6, IPV6_RECVERR, AF_INET6, 0, 0, "IPV6_RECVERR"},
    {IPPROTO_IPV6, IPV6_FREEBIND, AF_INET6, 0, 0, "IPV6_FREEBIND"},
    {SOL_SOCKET, SO_BINDTOIFINDEX, 0, 0, 0, "SO_BINDTOIFINDEX"},
    {IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, 0, 3, 0, "UDPLITE_SEND_CSCOV"},
    {IPPROTO_UDPLITE, UDPLITE_RECV_CSCOV, 0, 3, 0, "UDPLITE_RECV_CSCOV"},
};
#define NOPTS ((int)(sizeof inet_opts / sizeof inet_opts[0]))
_Static_assert(NOPTS <= CK_INET_NOPT, "ck_inet.opt is too small");
enum { OPT_V6ONLY = 16 };

static int opt_applies(const struct inet_opt *o, const struct ck_inet *s)
{
    int tcp = s->so.type == SOCK_STREAM;
    if (o->tcp == 3)
        return s->so.protocol == IPPROTO_UDPLITE;
    if (o->tcp == 4)
        return tcp && (s->so.opts & CK_SOCKO_LISTENING);
    return (!o->fam || o->fam == (int)s->so.family) && (!o->tcp || (o->tcp == 1) == tcp);
}

/* ---- addresses ---- */

static void to_inaddr(const struct sockaddr_storage *ss, struct ck_inaddr *a)
{
    memset(a, 0, sizeof *a);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        a->family = AF_INET;
        a->port = ntohs(in->sin_port);
        memcpy(a->addr, &in->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)ss;
        a->family = AF_INET6;
        a->port = ntohs(in->sin6_port);
        a->scope_id = in->sin6_scope_id;
        a->flowinfo = in->sin6_flowinfo;
        memcpy(a->addr, &in->sin6_addr, 16);
    }
}

static socklen_t from_inaddr(const struct ck_inaddr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (a->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->addr, 4);
        return sizeof *in;
    }
    struct sockaddr_in6 *in = (struct sockaddr_in6 *)ss;
    in->sin6_family = AF_INET6;
    in->sin6_port = htons(a->port);
    in->sin6_scope_id = a->scope_id;
    memcpy(&in->sin6_addr, a->addr, 16);
    return sizeof *in;
}

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* The address as IPv4 if it is one or is IPv4-mapped (4 bytes in out,
 * returns 4), else the 16 IPv6 bytes (returns 16). */
static int norm_addr(const struct ck_inaddr *a, uint8_t out[16])
{
    if (a->family == AF_INET) {
        memcpy(out, a->addr, 4);
        return 4;
    }
    if (!memcmp(a->addr, v4mapped_prefix, 12)) {
        memcpy(out, a->addr + 12, 4);
        return 4;
    }
    memcpy(out, a->addr, 16);
    return 16;
}

static int same_addr(const struct ck_inaddr *a, const struct ck_inaddr *b)
{
    uint8_t x[16], y[16];
    int n = norm_addr(a, x);
    return a->port == b->port && n == norm_addr(b, y) && !memcmp(x, y, (size_t)n);
}

static int is_wildcard(const struct ck_inaddr *a)
{
    static const uint8_t zero[16];
    return !memcmp(a->addr, zero, a->family == AF_INET ? 4 : 16);
}

/* Would a listener bound to l accept a connection to address a? */
static int listener_takes(const struct ck_inet *l, const struct ck_inaddr *a)
{
    if (l->local.port != a->port)
        return 0;
    if (!is_wildcard(&l->local))
        return same_addr(&l->local, a);
    uint8_t x[16];
    int n = norm_addr(a, x);
    if (l->so.family == AF_INET)
        return n == 4;
    /* IPv6 wildcard: IPv4 too unless IPV6_V6ONLY */
    return n == 16 || !l->opt[OPT_V6ONLY];
}

static void addr_text(const struct ck_inaddr *a, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->family == AF_INET) {
        inet_ntop(AF_INET, a->addr, ip, sizeof ip);
        snprintf(out, len, "%s:%u", ip, a->port);
    } else if (a->family == AF_INET6) {
        inet_ntop(AF_INET6, a->addr, ip, sizeof ip);
        snprintf(out, len, "[%s]:%u", ip, a->port);
    } else {
        snprintf(out, len, "nothing");
    }
}

static const char *proto_name(const struct ck_inet *s)
{
    return s->so.type == SOCK_STREAM ? "TCP" : "UDP";
}

/* ---- capture ---- */

/* Calls fn(fd, arg) for every descriptor of the program (the capture's
 * list). */
static void each_fd(const struct ck_fdcap *c, void (*fn)(int fd, void *arg), void *arg)
{
    for (int k = 0; k < *c->nall; k++)
        fn(c->all[k], arg);
}

#define MAX_BUSY 64
struct busy {
    int n, fd[MAX_BUSY];
    struct ck_inaddr peer[MAX_BUSY];
    int inside[MAX_BUSY];               /* the peer is a socket of the process */
};

/* fd holds bytes the kernel has not sent yet: remember it and its peer */
static void note_busy(int fd, void *arg)
{
    struct busy *b = arg;
    int unsent = 0;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (b->n < MAX_BUSY && ioctl(fd, SIOCOUTQNSD, &unsent) == 0 && unsent > 0 &&
        getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        b->fd[b->n] = fd;
        b->inside[b->n] = 0;
        to_inaddr(&ss, &b->peer[b->n++]);
    }
}

/* is fd's address the peer of a busy socket? */
static void find_peer(int fd, void *arg)
{
    struct busy *b = arg;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    struct ck_inaddr a;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return;
    to_inaddr(&ss, &a);
    for (int i = 0; i < b->n; i++)
        if (same_addr(&a, &b->peer[i]))
            b->inside[i] = 1;
}

/* Before the first bytes are peeked, every TCP connection inside the
 * process must have handed what it wrote to the kernel's loopback path
 * (Nagle, TCP_CORK and delayed ACKs hold small writes for up to 200 ms):
 * wait up to 300 ms until none has unsent bytes. Bytes that still cannot
 * go (the receiver's buffer is full) are refused in finish(). Connections
 * to peers outside are not waited for: what they could not send is lost
 * with them anyway. The common case (nothing unsent) costs one ioctl per
 * descriptor. */
static void settle_writes(const struct ck_fdcap *c)
{
    struct busy b = {.n = 0};
    each_fd(c, note_busy, &b);
    if (!b.n)
        return;
    each_fd(c, find_peer, &b);
    for (int round = 0; round < 30; round++) {
        int waiting = 0;
        for (int i = 0; i < b.n; i++) {
            int unsent = 0;
            if (b.inside[i] && ioctl(b.fd[i], SIOCOUTQNSD, &unsent) == 0 && unsent > 0)
                waiting = 1;
        }
        if (!waiting)
            break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
}

static uint32_t settled_gen; /* the capture whose writes were settled */

/* The bytes in fd's receive queue, peeked in chunks from SO_PEEK_OFF 0 up
 * to inq bytes (never further: a read on an empty queue would take a
 * pending socket error, which belongs to the program). */
static int peek_stream(struct ck_fdcap *c, int fd, int old, uint64_t inq, uint64_t *saved)
{
    static char chunk[65536];
    *saved = 0;
    if (old < 0 && inq <= sizeof chunk) {
        /* no peek offset: a peek starts at the queue's head, and one that
         * gets every byte (none held back at an urgent mark) is all */
        ssize_t n = recv(fd, chunk, (size_t)inq, MSG_PEEK | MSG_DONTWAIT);
        if (n == (ssize_t)inq) {
            *saved = inq;
            if (c->bytes(c, chunk, (size_t)n) < 0) {
                snprintf(c->err, c->errlen, "fd %d: cannot save the bytes of a TCP connection",
                         fd);
                return -ENOMEM;
            }
            return 0;
        }
    }
    if (ck_sock_peek_begin(fd, old) < 0) {
        snprintf(c->err, c->errlen, "fd %d: cannot peek at the bytes waiting in a TCP "
                 "connection (SO_PEEK_OFF: %s; Linux 6.10 or later is needed)", fd,
                 strerror(errno));
        return -ENOTSUP;
    }
    uint64_t got = 0;
    int ret = 0;
    while (got < inq) {
        size_t want = inq - got < sizeof chunk ? (size_t)(inq - got) : sizeof chunk;
        ssize_t n = recv(fd, chunk, want, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if ((ret = c->bytes(c, chunk, (size_t)n)) < 0) {
            snprintf(c->err, c->errlen, "fd %d: cannot save the bytes of a TCP connection", fd);
            break;
        }
        got += (uint64_t)n;
    }
    ck_sock_peek_end(fd, old);
    *saved = got;
    return ret;
}

/* Every datagram waiting in a UDP socket, with its source. */
static int peek_dgrams(struct ck_fdcap *c, int fd, struct ck_inet *s)
{
    /* two datagrams a call: a socket with one waiting (the usual case)
     * is read with one call, which also tells that no other follows */
    enum { PER_CALL = 2 };
    static char dg[PER_CALL][65536 + 8];
    int old = s->so.peek_off;
    int avail = 0;
    if (ioctl(fd, FIONREAD, &avail) < 0 || avail == 0) {
        /* FIONREAD is the first datagram's size: 0 may still be an empty
         * datagram; a peek tells, but only where it cannot take an error */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) != 1 || (p.revents & POLLERR) || !(p.revents & POLLIN))
            return 0;
    }
    if (ck_sock_peek_begin(fd, old) < 0) {
        snprintf(c->err, c->errlen, "fd %d: cannot peek at the datagrams waiting in a UDP "
                 "socket (SO_PEEK_OFF: %s)", fd, strerror(errno));
        return -ENOTSUP;
    }
    int ret = 0, got = PER_CALL;
    while (got == PER_CALL && ret == 0 && s->ndgrams < 100000) {
        struct sockaddr_storage src[PER_CALL];
        struct iovec iov[PER_CALL];
        struct mmsghdr mm[PER_CALL];
        memset(mm, 0, sizeof mm);
        for (int j = 0; j < PER_CALL; j++) {
            iov[j] = (struct iovec){dg[j], 65536};
            mm[j].msg_hdr = (struct msghdr){.msg_name = &src[j], .msg_namelen = sizeof src[j],
                                            .msg_iov = &iov[j], .msg_iovlen = 1};
        }
        /* (an error after the first datagram is kept for the program:
         * recvmmsg puts it back) */
        got = recvmmsg(fd, mm, PER_CALL, MSG_PEEK | MSG_DONTWAIT, NULL);
        if (got < 0 && errno == EINTR) {
            got = PER_CALL;
            continue;
        }
        for (int j = 0; j < got; j++) {
            struct ck_inet_dgram h;
            size_t n = mm[j].msg_len;
            memset(&h, 0, sizeof h);
            h.len = (uint32_t)n;
            to_inaddr(&src[j], &h.src);
            size_t pad = (8 - (n & 7)) & 7;
            memset(dg[j] + n, 0, pad);
            if ((ret = c->bytes(c, &h, sizeof h)) < 0 || (ret = c->bytes(c, dg[j], n + pad)) < 0) {
                snprintf(c->err, c->errlen, "fd %d: cannot save the datagrams of a UDP socket",
                         fd);
                break;
            }
            s->ndgrams++;
            s->rcvq += sizeof h + (uint64_t)n + pad;
        }
    }
    ck_sock_peek_end(fd, old);
    return ret;
}

/* shutdown() of a UDP socket, which only sock_diag tells: SHUT_RD 1,
 * SHUT_WR 2 (the kernel's RCV_SHUTDOWN, SEND_SHUTDOWN), or 0. One
 * exact lookup (SOCK_DIAG_BY_FAMILY without NLM_F_DUMP): for UDP the
 * "source" is the peer the socket would receive from, the "destination"
 * the socket itself; the answer must be the same inode. */
static uint32_t udp_shutdown(const struct ck_inet *s, uint64_t ino)
{
    struct {
        struct nlmsghdr h;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    req.r.sdiag_family = (uint8_t)s->so.family;
    req.r.sdiag_protocol = (uint8_t)s->so.protocol;
    req.r.idiag_states = ~0u;
    req.r.id.idiag_sport = htons(s->peer.port);
    req.r.id.idiag_dport = htons(s->local.port);
    size_t alen = s->so.family == AF_INET ? 4 : 16;
    memcpy(req.r.id.idiag_src, s->peer.addr, alen);
    memcpy(req.r.id.idiag_dst, s->local.addr, alen);
    req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return 0;
    uint32_t shut = 0;
    static char buf[8192];
    ssize_t n = send(nl, &req, sizeof req, 0) == sizeof req ? recv(nl, buf, sizeof buf, 0) : -1;
    close(nl);
    const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
    if (n < (ssize_t)sizeof *h || !NLMSG_OK(h, (size_t)n) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
        return 0;
    const struct inet_diag_msg *m = NLMSG_DATA(h);
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof *m) || m->idiag_inode != (uint32_t)ino)
        return 0;
    const struct rtattr *a = (const struct rtattr *)(m + 1);
    size_t left = h->nlmsg_len - NLMSG_LENGTH(sizeof *m);
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left))
        if (a->rta_type == INET_DIAG_SHUTDOWN && RTA_PAYLOAD(a) >= 1)
            shut = *(const uint8_t *)RTA_DATA(a) & (CK_SOCK_SHUT_RD | CK_SOCK_SHUT_WR);
    return shut;
}

/* s's IP, IPv6 and TCP options (those of inet_opts[] its kind has),
 * asked of fd, or taken from d (a new socket of its kind) where c says the
 * program never set them; c NULL: all asked */
static void read_opts(const struct ck_fdcap *c, int fd, struct ck_inet *s,
                      const struct ck_inet *d)
{
    for (int i = 0; i < NOPTS; i++) {
        int v = 0;
        socklen_t l = sizeof v;
        if (!opt_applies(&inet_opts[i], s))
            continue;
        if (d && !ck_sockopt_asked(c, inet_opts[i].level, inet_opts[i].name)) {
            if (d->optmask & 1u << i) { /* never set: the kernel's default */
                s->opt[i] = d->opt[i];
                s->optmask |= 1u << i;
            }
        } else if (getsockopt(fd, inet_opts[i].level, inet_opts[i].name, &v, &l) == 0) {
            s->opt[i] = v;
            s->optmask |= 1u << i;
        }
    }
}

/* The IP, IPv6 and TCP options of a new socket of s's family and
 * protocol (a listener's too): what a socket the program never set an
 * option on has. Once per kind and capture; NULL if none can be made. */
static const struct ck_inet *inet_defaults(const struct ck_fdcap *c, const struct ck_inet *s)
{
    static struct ck_inet defs[6];
    static int ndefs;
    static uint32_t gen;
    if (c->gen != gen) {
        gen = c->gen;
        ndefs = 0;
    }
    for (int k = 0; k < ndefs; k++)
        if (defs[k].so.family == s->so.family && defs[k].so.protocol == s->so.protocol)
            return &defs[k];
    if (ndefs >= (int)(sizeof defs / sizeof defs[0]))
        return NULL;
    int fd = socket(s->so.family, (int)s->so.type | SOCK_CLOEXEC, (int)s->so.protocol);
    if (fd < 0)
        return NULL;
    struct ck_inet *d = &defs[ndefs++];
    memset(d, 0, sizeof *d);
    d->so = s->so;
    d->so.opts = CK_SOCKO_LISTENING; /* a listener's options too */
    read_opts(NULL, fd, d, NULL);
    close(fd);
    return d;
}

static int inet_capture(struct ck_fdcap *c)
{
    if (!S_ISSOCK(c->st->st_mode) || (c->family != AF_INET && c->family != AF_INET6))
        return 0; /* AF_UNIX: fds/unix.c; the rest: refused by fds/socket.c */
    int fd = c->fd, domain = c->family;
    struct ck_inet s;
    memset(&s, 0, sizeof s);
    /* TCP_INFO first: only a TCP socket answers it (a raw socket of
     * protocol 6 does not), so it proves the type; a listener
     * (SO_ACCEPTCONN) has options of its own. Likewise SO_PEEK_OFF for
     * UDP: a raw socket has no peek offset (EOPNOTSUPP). */
    struct ck_sock_known k = {.type = -1, .sndbuf = -1, .rcvbuf = -1, .protocol = -1,
                              .optmem = -1};
    struct tcp_info ti;
    memset(&ti, 0, sizeof ti);
    socklen_t til = sizeof ti, sl, l;
    int proto;
    l = sizeof proto;
    if (c->sock_type > 0) /* the shim saw it made: TCP, UDP or UDP-Lite */
        k.protocol = c->sock_protocol;
    else if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) == 0)
        k.protocol = proto;
    if (k.protocol == IPPROTO_TCP && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &til) == 0)
        k.type = SOCK_STREAM;
    l = sizeof k.peek_off;
    if (k.protocol == IPPROTO_UDP || k.protocol == IPPROTO_UDPLITE) {
        if (!ck_sockopt_asked(c, SOL_SOCKET, SO_PEEK_OFF)) {
            k.peek_off = -1; /* a UDP socket the shim saw made, never set: off */
            k.peek_known = 1;
        } else if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &k.peek_off, &l) == 0) {
            k.peek_known = 1;
        }
        if (k.peek_known)
            k.type = SOCK_DGRAM;
    }
    ck_sock_capture(c, &k, &s.so);
    int tcp = s.so.type == SOCK_STREAM && s.so.protocol == IPPROTO_TCP;
    int udp = s.so.type == SOCK_DGRAM &&
              (s.so.protocol == IPPROTO_UDP || s.so.protocol == IPPROTO_UDPLITE);
    if (!tcp && !udp) {
        snprintf(c->err, c->errlen, "fd %d is an %s socket (%s, protocol %u; %s), which ckshim "
                 "cannot restore: only TCP, UDP and UDP-Lite over IPv4 and IPv6 are supported", fd,
                 ck_sock_family_name(domain), ck_sock_type_name((int)s.so.type), s.so.protocol,
                 c->target);
        return -ENOTSUP;
    }
    if (c->gen != settled_gen)
        settle_writes(c);
    settled_gen = c->gen;

    s.peer_fd = s.listener_fd = -1;
    struct sockaddr_storage ss;
    sl = sizeof ss;
    if (c->namelen) /* capture_fds asked it for the family */
        to_inaddr(c->name, &s.local);
    else if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        to_inaddr(&ss, &s.local);
    sl = sizeof ss;
    int connected = getpeername(fd, (struct sockaddr *)&ss, &sl) == 0;
    /* SO_PEERNAME wants exactly the address's size */
    sl = domain == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (connected || (tcp && getsockopt(fd, SOL_SOCKET, SO_PEERNAME, &ss, &sl) == 0))
        to_inaddr(&ss, &s.peer); /* SO_PEERNAME: also of a connection closed both ways */
    /* a classic BPF socket filter (SO_ATTACH_FILTER): its instructions
     * follow the struct (SO_GET_FILTER counts and copies instructions);
     * none when the socket holds no option memory */
    static char sbuf[sizeof(struct ck_inet) + 8 * BPF_MAXINSNS];
    l = 0;
    if (ck_sockopt_asked(c, SOL_SOCKET, SO_ATTACH_FILTER) && k.optmem != 0 &&
        getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &l) == 0 && l > 0 &&
        l <= BPF_MAXINSNS) {
        socklen_t n = l;
        if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, sbuf + sizeof s, &n) == 0 && n == l)
            s.nfilter = l;
    }
    int lockf = 0;
    l = sizeof lockf;
    if (s.nfilter && getsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &lockf, &l) == 0 && lockf)
        s.flags |= CK_INETF_FILTER_LOCKED;
    if (s.local.port)
        s.flags |= CK_INETF_BOUND;
    if (s.so.family == AF_INET6 && !memcmp(s.local.addr, v4mapped_prefix, 12))
        s.flags |= CK_INETF_V4MAPPED;
    if (tcp && ti.tcpi_state == ST_LISTEN)
        s.so.opts |= CK_SOCKO_LISTENING;
    /* a socket the shim followed: the options of groups the program
     * never set are the kernel's defaults */
    const struct ck_inet *d =
        c->sock_type > 0 && c->sock_set != ~(uint64_t)0 ? inet_defaults(c, &s) : NULL;
    read_opts(c, fd, &s, d);

    int ret = 0;
    if (udp) {
        if (connected)
            s.flags |= CK_INETF_CONNECTED;
        s.role = CK_INET_PLAIN;
        if (connected) /* shutdown() is for connected sockets (others get ENOTCONN) */
            s.so.shutdown = udp_shutdown(&s, c->st->st_ino);
        if (!c->nopeek) /* else another process of the tree saves them */
            ret = peek_dgrams(c, fd, &s);
    } else {
        s.tcp_state = ti.tcpi_state;
        s.bytes_acked = ti.tcpi_bytes_acked;
        s.bytes_received = ti.tcpi_bytes_received;
        switch (ti.tcpi_state) {
        case ST_LISTEN:
            s.role = CK_INET_LISTEN;
            s.backlog = (int32_t)ti.tcpi_sacked; /* a listener's sk_max_ack_backlog */
            break;
        case ST_SYN_SENT:
            s.role = CK_INET_CONNECTING;
            break;
        case ST_SYN_RECV:
            snprintf(c->err, c->errlen, "fd %d is a TCP Fast Open connection still in "
                     "SYN_RECV, which ckshim cannot restore; try again", fd);
            return -EAGAIN;
        case ST_CLOSE: {
            /* never connected (a fresh socket has sent no segment), reset
             * with the error not read yet (poll says POLLERR without
             * taking it), or closed both ways: bytes left, then end of file */
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (!ti.tcpi_segs_out && !ti.tcpi_segs_in)
                s.role = CK_INET_PLAIN;
            else if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR))
                s.role = CK_INET_DEAD;
            else
                s.role = CK_INET_CLOSED;
            if (s.role != CK_INET_PLAIN) /* tcp_done: shut both ways */
                s.so.shutdown |= CK_SOCK_SHUT_RD | CK_SOCK_SHUT_WR;
            break;
        }
        default:
            s.role = CK_INET_DEAD; /* finish() finds the in-process peers */
            break;
        }
        if (ti.tcpi_state == ST_FIN_WAIT1 || ti.tcpi_state == ST_FIN_WAIT2 ||
            ti.tcpi_state == ST_CLOSING || ti.tcpi_state == ST_LAST_ACK ||
            ti.tcpi_state == ST_TIME_WAIT)
            s.so.shutdown |= CK_SOCK_SHUT_WR;
        if (s.role != CK_INET_LISTEN && s.role != CK_INET_PLAIN &&
            s.role != CK_INET_CONNECTING) {
            int outq = 0, unsent = 0, inq = 0;
            /* the bytes not sent yet (SIOCOUTQNSD) are in TCP_INFO since
             * Linux 4.19; with nothing in flight (no segment unacked) they
             * are all that is queued (SIOCOUTQ) */
            if (til >= offsetof(struct tcp_info, tcpi_notsent_bytes) + 4) {
                unsent = (int)ti.tcpi_notsent_bytes;
                if (!ti.tcpi_unacked || ioctl(fd, SIOCOUTQ, &outq) < 0)
                    outq = unsent;
            } else {
                ioctl(fd, SIOCOUTQ, &outq);
                ioctl(fd, SIOCOUTQNSD, &unsent);
            }
            s.outq = (uint32_t)outq;
            s.outq_unsent = (uint32_t)unsent;
            ioctl(fd, SIOCINQ, &inq);
            if (inq > 0) {
                if (!c->nopeek) /* else another process of the tree saves them */
                    ret = peek_stream(c, fd, s.so.peek_off, (uint64_t)inq, &s.rcvq);
            } else if (ti.tcpi_state == ST_ESTABLISHED || ti.tcpi_state == ST_FIN_WAIT2) {
                /* shutdown(SHUT_RD): an empty queue reads as end of file */
                char b;
                if (recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
                    s.so.shutdown |= CK_SOCK_SHUT_RD;
            }
        }
    }
    if (ret < 0)
        return ret;
    c->f->kind = CK_FD_INET;
    memcpy(sbuf, &s, sizeof s);
    if ((ret = c->state(c, sbuf, sizeof s + 8 * (size_t)s.nfilter)) < 0) {
        snprintf(c->err, c->errlen, "fd %d: cannot save the state of a %s socket", fd,
                 proto_name(&s));
        return ret;
    }
    return 1;
}

/* The in-process ends of connections, reset by ck_inet_reset_pairs() when
 * --kill ends the program (manager memory, filled by finish()). */
#define MAX_RESET 4096
static int reset_fds[MAX_RESET];
static int nreset;

static struct ck_inet *state_at(struct ck_fdcap_set *s, uint32_t i)
{
    size_t len = 0;
    if (s->fds[i].kind != CK_FD_INET || s->fds[i].share_with >= 0)
        return NULL;
    struct ck_inet *st = s->state(s, i, &len);
    return st && len >= sizeof *st ? st : NULL;
}

/* The ends of TCP connections (not listeners) by their ports, so that
 * finish() finds the other end of each connection without comparing
 * every pair (1,000 sockets: 3 ms): fds index + 1, open addressing, 0
 * free; and the listeners, in order. */
#define PAIR_SLOTS 8192
static uint32_t pair_tab[PAIR_SLOTS];
static uint32_t listeners[PAIR_SLOTS];
static uint32_t nlisteners;

static uint32_t *pair_slot(uint16_t local, uint16_t peer)
{
    return &pair_tab[((uint32_t)local * 40503u ^ (uint32_t)peer * 2654435761u) >> 7 &
                     (PAIR_SLOTS - 1)];
}

static uint32_t *pair_next(uint32_t *slot)
{
    return &pair_tab[(size_t)(slot - pair_tab + 1) & (PAIR_SLOTS - 1)];
}

/* Fill the tables; 0, or -1 if there are more sockets than they hold. */
static int pair_index(struct ck_fdcap_set *set)
{
    memset(pair_tab, 0, sizeof pair_tab);
    nlisteners = 0;
    uint32_t used = 0;
    for (uint32_t k = 0; k < set->n; k++) {
        struct ck_inet *b = state_at(set, k);
        if (!b || b->so.type != SOCK_STREAM)
            continue;
        if (b->role == CK_INET_LISTEN) {
            if (nlisteners >= PAIR_SLOTS)
                return -1;
            listeners[nlisteners++] = k;
            continue;
        }
        if (++used > PAIR_SLOTS / 2)
            return -1;
        uint32_t *slot = pair_slot(b->local.port, b->peer.port);
        while (*slot)
            slot = pair_next(slot);
        *slot = k + 1;
    }
    return 0;
}

/* The first socket (by index) other than i that is a's other end, or -1. */
static int64_t other_end(struct ck_fdcap_set *set, uint32_t i, const struct ck_inet *a,
                         int indexed)
{
    int64_t best = -1;
    if (!indexed) {
        for (uint32_t k = 0; k < set->n && best < 0; k++) {
            const struct ck_inet *b = k == i ? NULL : state_at(set, k);
            if (b && b->so.type == SOCK_STREAM && b->role != CK_INET_LISTEN &&
                same_addr(&a->local, &b->peer) && same_addr(&a->peer, &b->local))
                best = k;
        }
        return best;
    }
    for (uint32_t *slot = pair_slot(a->peer.port, a->local.port); *slot; slot = pair_next(slot)) {
        uint32_t k = *slot - 1;
        const struct ck_inet *b = k == i ? NULL : state_at(set, k);
        if (b && same_addr(&a->local, &b->peer) && same_addr(&a->peer, &b->local) &&
            (best < 0 || k < best))
            best = k;
    }
    return best;
}

static int inet_finish(struct ck_fdcap_set *set)
{
    nreset = 0;
    int indexed = pair_index(set) == 0;
    for (uint32_t i = 0; i < set->n; i++) {
        struct ck_inet *a = state_at(set, i);
        if (!a || a->so.type != SOCK_STREAM || !a->peer.family ||
            (a->role != CK_INET_DEAD && a->role != CK_INET_CLOSED))
            continue;
        uint32_t was = a->role;
        a->role = CK_INET_DEAD;
        /* the other end in the process? */
        int64_t k = other_end(set, i, a, indexed);
        if (k >= 0) {
            a->role = CK_INET_PAIR;
            a->peer_fd = set->fds[k].fd;
        }
        if (a->role == CK_INET_DEAD && a->tcp_state == ST_CLOSE)
            a->role = was; /* closed both ways (or reset): no accept queue holds it */
        /* a client whose server end is still in a listener's accept queue */
        for (uint32_t j = 0; a->role == CK_INET_DEAD && a->tcp_state == ST_ESTABLISHED &&
                             j < (indexed ? nlisteners : set->n); j++) {
            uint32_t l = indexed ? listeners[j] : j;
            struct ck_inet *b = state_at(set, l);
            if (b && b->role == CK_INET_LISTEN && listener_takes(b, &a->peer)) {
                a->role = CK_INET_PENDING;
                a->listener_fd = set->fds[l].fd;
            }
        }
        if (a->role == CK_INET_DEAD && (a->tcp_state == ST_CLOSE_WAIT ||
                                        a->tcp_state == ST_LAST_ACK ||
                                        a->tcp_state == ST_CLOSING))
            a->role = CK_INET_CLOSED; /* the peer had closed: end of file */
        char la[80], pa[80];
        if ((a->role == CK_INET_PAIR && a->outq_unsent) ||
            (a->role == CK_INET_PENDING && a->bytes_acked > 1)) {
            addr_text(&a->local, la, sizeof la);
            addr_text(&a->peer, pa, sizeof pa);
        }
        if (a->role == CK_INET_PAIR && a->outq_unsent) {
            snprintf(set->err, set->errlen, "fd %d: %u bytes written to the TCP connection "
                     "%s -> %s (fd %d at the other end) have not reached fd %d (its receive "
                     "buffer is full), and ckshim cannot read them back from the sender; "
                     "checkpoint once the program has read some of them", set->fds[i].fd,
                     a->outq_unsent, la, pa, a->peer_fd, a->peer_fd);
            return -EAGAIN;
        }
        /* in a tree, another process may have accepted it: coord decides
         * once it sees every process (ck_inet_relink) */
        if (a->role == CK_INET_PENDING && a->bytes_acked > 1 && !set->tree) {
            snprintf(set->err, set->errlen, "fd %d: the TCP connection %s -> %s waits in the "
                     "accept queue of fd %d and was sent %llu bytes, which only an accept() "
                     "could read; checkpoint once the program has accepted it",
                     set->fds[i].fd, la, pa, a->listener_fd,
                     (unsigned long long)a->bytes_acked - 1);
            return -EAGAIN;
        }
        if ((a->role == CK_INET_PAIR || a->role == CK_INET_PENDING) && nreset < MAX_RESET)
            reset_fds[nreset++] = set->fds[i].fd;
        /* in a tree, a connection over loopback most likely has its other
         * end in another process of it (coord knows: ck_inet_relink);
         * reset too, so that a restore finds its listener's port free
         * (a TIME_WAIT of a listener without SO_REUSEADDR keeps it) */
        uint8_t x[16];
        int n = norm_addr(&a->peer, x);
        if (set->tree && a->role == CK_INET_DEAD && nreset < MAX_RESET &&
            ((n == 4 && x[0] == 127) || (n == 16 && !memcmp(x, &in6addr_loopback, 16))))
            reset_fds[nreset++] = set->fds[i].fd;
    }
    return 0;
}

int ck_inet_relink(struct ck_fdcap_set *set)
{
    /* how finish() decided them, but with every process's sockets */
    for (uint32_t i = 0; i < set->n; i++) {
        struct ck_inet *a = state_at(set, i);
        if (a && (a->role == CK_INET_PAIR || a->role == CK_INET_PENDING))
            a->role = CK_INET_DEAD;
    }
    int r = inet_finish(set);
    nreset = 0;
    return r;
}

/* --kill: the program ends now. Its connections to itself (and, in a
 * tree, its connections over loopback) are closed with a reset instead of
 * a FIN, so that no TIME_WAIT is left on their ports and a restore right
 * away can bind them again. */
void ck_inet_reset_pairs(void)
{
    struct linger lg = {1, 0};
    for (int i = 0; i < nreset; i++)
        setsockopt(reset_fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/* ---- restore ---- */

struct built {
    const struct ck_image *im;
    const struct ck_image *sent;        /* the datagrams of im were sent again */
    int done;
    int failed;
};
static struct built g_built;

static const struct ck_inet *state_of(struct ck_fdrest *r, uint32_t i)
{
    size_t len = 0;
    if (r->im->fds[i].kind != CK_FD_INET || r->im->fds[i].share_with >= 0)
        return NULL;
    const struct ck_inet *st = r->state_of(r, i, &len);
    return st && len >= sizeof *st && len >= sizeof *st + 8 * (size_t)st->nfilter ? st : NULL;
}

static int index_of_fd(struct ck_fdrest *r, int fd)
{
    for (uint32_t i = 0; i < r->im->nfds; i++)
        if (r->im->fds[i].fd == fd && r->im->fds[i].share_with < 0)
            return (int)i;
    return -1;
}

#define rfail(r, ...) ((void)snprintf((r)->err, (r)->errlen, __VA_ARGS__), -1)

static long read_sysctl(const char *path)
{
    char b[64] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    return n > 0 ? atol(b) : -1;
}

/* The socket filter (SO_ATTACH_FILTER) back, locked if it was. It comes
 * once the bytes are back: they passed it once already. */
static int attach_filter(struct ck_fdrest *r, int sk, const struct ck_inet *s, int fd)
{
    int one = 1;
    if (s->nfilter) {
        struct sock_fprog prog = {.len = (unsigned short)s->nfilter,
                                  .filter = (struct sock_filter *)(s + 1)};
        if (setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
            return rfail(r, "fd %d: cannot attach its socket filter (%u instructions) again: %s",
                         fd, s->nfilter, strerror(errno));
    }
    if ((s->flags & CK_INETF_FILTER_LOCKED) &&
        setsockopt(sk, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof one) < 0)
        return rfail(r, "fd %d: cannot lock its socket filter: %s", fd, strerror(errno));
    return 0;
}

/* Set the saved options that differ from what the new socket has:
 * SOL_SOCKET ones (fds/socket.c) and the IP/TCP ones of the table. Early
 * (late = 0), before any bind: SO_REUSEADDR stays on for the binds to
 * come, the socket stays blocking; late, once the bytes are back: all of
 * them as the program had them (TCP_CORK would have held the bytes).
 * A TCP connection's buffers grew by themselves (autotuning) unless the
 * program set them: sizes above what a program may set are left to
 * autotuning, not locked there. */
static int apply_opts(struct ck_fdrest *r, int sk, const struct ck_inet *s, int fd, int late)
{
    int idx = index_of_fd(r, fd);
    uint32_t oflags = late && idx >= 0 ? r->im->fds[idx].oflags : 0;
    struct ck_sock so = s->so;
    int conn = s->so.type == SOCK_STREAM && s->role != CK_INET_LISTEN &&
               s->role != CK_INET_PLAIN;
    if (conn) {
        long wmax = read_sysctl("/proc/sys/net/core/wmem_max");
        long rmax = read_sysctl("/proc/sys/net/core/rmem_max");
        int cur = 0;
        socklen_t l = sizeof cur;
        if (wmax > 0 && so.sndbuf > 2 * wmax && getsockopt(sk, SOL_SOCKET, SO_SNDBUF, &cur, &l) == 0)
            so.sndbuf = cur;
        l = sizeof cur;
        if (rmax > 0 && so.rcvbuf > 2 * rmax && getsockopt(sk, SOL_SOCKET, SO_RCVBUF, &cur, &l) == 0)
            so.rcvbuf = cur;
    }
    if (!late) {
        so.opts |= CK_SOCKO_REUSEADDR;
        so.peek_off = -1;
        /* listeners sharing a port (SO_REUSEPORT, which the program may
         * have cleared on one since: the group stays) bind with it */
        for (uint32_t k = 0; s->role == CK_INET_LISTEN && k < r->im->nfds; k++) {
            const struct ck_inet *o = state_of(r, k);
            if (o && o != s && o->role == CK_INET_LISTEN && same_addr(&o->local, &s->local))
                so.opts |= CK_SOCKO_REUSEPORT;
        }
    }
    /* UDP: after its datagrams are sent again (inet_after), which the
     * filter had let through once already */
    if (late && s->so.type == SOCK_STREAM && attach_filter(r, sk, s, fd) < 0)
        return -1;
    char msg[160];
    if (ck_sock_apply(sk, &so, oflags, msg, sizeof msg) < 0)
        return rfail(r, "fd %d: %s socket: %s", fd, proto_name(s), msg);
    int accepted = 0;
    if (conn) { /* an accepted end: IPV6_V6ONLY no longer matters (and cannot change) */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        accepted = getpeername(sk, (struct sockaddr *)&ss, &sl) == 0;
    }
    for (int i = 0; i < NOPTS; i++) {
        const struct inet_opt *o = &inet_opts[i];
        if (!(s->optmask & (1u << i)) || o->late != late || !opt_applies(o, s) ||
            (accepted && i == OPT_V6ONLY))
            continue;
        int cur = 0, v = s->opt[i];
        socklen_t l = sizeof cur;
        if (getsockopt(sk, o->level, o->name, &cur, &l) == 0 && cur == v)
            continue;
        if (setsockopt(sk, o->level, o->name, &v, sizeof v) < 0)
            return rfail(r, "fd %d: cannot set %s to %d on the %s socket: %s", fd, o->text, v,
                         proto_name(s), strerror(errno));
    }
    return 0;
}

/* A new socket like s, options set, SO_REUSEADDR on for the binds to come. */
static int new_socket(struct ck_fdrest *r, const struct ck_inet *s, int fd)
{
    int sk = ck_sock_new(&s->so);
    if (sk < 0)
        return rfail(r, "fd %d: cannot make a %s socket: %s", fd, proto_name(s),
                     strerror(errno));
    if (apply_opts(r, sk, s, fd, 0) < 0) {
        close(sk);
        return -1;
    }
    return sk;
}

static int bind_to(int sk, const struct ck_inaddr *a)
{
    struct sockaddr_storage ss;
    socklen_t l = from_inaddr(a, &ss);
    if (bind(sk, (struct sockaddr *)&ss, l) == 0)
        return 0;
    if (errno != EADDRNOTAVAIL)
        return -1;
    /* an address this host does not have (now): the program bound it with
     * IP_FREEBIND, which it may have cleared since */
    int old = 0, one = 1, rc, e;
    socklen_t ol = sizeof old;
    getsockopt(sk, IPPROTO_IP, IP_FREEBIND, &old, &ol);
    setsockopt(sk, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
    rc = bind(sk, (struct sockaddr *)&ss, l);
    e = errno;
    setsockopt(sk, IPPROTO_IP, IP_FREEBIND, &old, sizeof old);
    errno = e;
    return rc;
}

static int connect_to(int sk, const struct ck_inaddr *a)
{
    struct sockaddr_storage ss;
    socklen_t l = from_inaddr(a, &ss);
    int rc;
    while ((rc = connect(sk, (struct sockaddr *)&ss, l)) < 0 && errno == EINTR)
        ;
    return rc;
}

/* Is a (a specific address) one of this host's addresses now? */
static int address_here(const struct ck_inaddr *a)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) < 0)
        return 1; /* cannot tell: bind as saved */
    uint8_t want[16], have[16];
    int n = norm_addr(a, want), found = 0;
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        struct ck_inaddr x = {.family = i->ifa_addr->sa_family};
        if (x.family == AF_INET)
            memcpy(x.addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
        else
            memcpy(x.addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
        found = norm_addr(&x, have) == n && !memcmp(want, have, (size_t)n);
    }
    freeifaddrs(ifs);
    return found;
}

/* Where a listening or bound socket binds at restore: its own address,
 * unless that is an address this host does not have (the image came from
 * another host: coord migrate): then the same port on the wildcard of its
 * family, said in a note (unless the program asked for IP_FREEBIND, to
 * bind addresses it does not have on purpose). */
static struct ck_inaddr local_here(const struct ck_inet *s, int fd, int say)
{
    struct ck_inaddr t = s->local;
    uint8_t x[16];
    int n = norm_addr(&s->local, x);
    int freebind = ((s->optmask >> 15) & 1 && s->opt[15]) || ((s->optmask >> 21) & 1 && s->opt[21]);
    if (is_wildcard(&t) || (n == 4 && x[0] == 127) || (n == 16 && !memcmp(x, &in6addr_loopback, 16)) ||
        freebind || address_here(&t))
        return t;
    memset(t.addr, 0, sizeof t.addr);
    if (say) {
        char was[80], now[80];
        addr_text(&s->local, was, sizeof was);
        addr_text(&t, now, sizeof now);
        fprintf(stderr, "coord: restore: note: fd %d: the program listened on %s, an address "
                "this host does not have: it listens on %s (every address, the same port) "
                "instead\n", fd, was, now);
    }
    return t;
}

/* Where to connect to reach a listener bound to a (its wildcard: the
 * loopback address of the connecting socket's family). */
static struct ck_inaddr reach(const struct ck_inaddr *a, uint32_t family)
{
    struct ck_inaddr t = *a;
    if (!is_wildcard(a))
        return t;
    memset(t.addr, 0, sizeof t.addr);
    if (family == AF_INET) {
        t.family = AF_INET;
        t.addr[0] = 127, t.addr[3] = 1;
    } else {
        t.family = AF_INET6;
        t.addr[15] = 1;
    }
    return t;
}

/* The client end: bound to its old address (a new port if that one is
 * taken, e.g. by a TIME_WAIT left by a program that was not ended by
 * checkpoint --kill), connected to `to`. */
static int connect_client(struct ck_fdrest *r, const struct ck_inet *s, int fd,
                          const struct ck_inaddr *to)
{
    int sk = new_socket(r, s, fd);
    if (sk < 0)
        return -1;
    if (bind_to(sk, &s->local) < 0) {
        struct ck_inaddr any = s->local;
        any.port = 0;
        if (bind_to(sk, &any) < 0) {
            char la[80];
            addr_text(&s->local, la, sizeof la);
            close(sk);
            return rfail(r, "fd %d: cannot bind a TCP socket to %s again: %s", fd, la,
                         strerror(errno));
        }
    }
    struct ck_inaddr dst = *to;
    if (s->so.family == AF_INET6 && dst.family == AF_INET) {
        /* an IPv6 socket talking IPv4 (mapped addresses) */
        uint8_t v4[4];
        memcpy(v4, dst.addr, 4);
        memset(dst.addr, 0, 16);
        memcpy(dst.addr, v4mapped_prefix, 12);
        memcpy(dst.addr + 12, v4, 4);
        dst.family = AF_INET6;
    } else if (s->so.family == AF_INET && dst.family == AF_INET6) {
        memmove(dst.addr, dst.addr + 12, 4);
        dst.family = AF_INET;
    }
    if (connect_to(sk, &dst) < 0) {
        char pa[80];
        addr_text(&dst, pa, sizeof pa);
        close(sk);
        return rfail(r, "fd %d: cannot connect a TCP socket to %s again: %s", fd, pa,
                     strerror(errno));
    }
    return sk;
}

/* A listener on a (temporary: SO_REUSEADDR, small backlog). */
static int temp_listener(const struct ck_inaddr *a, uint32_t family)
{
    int sk = socket((int)family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (sk < 0)
        return -1;
    setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind_to(sk, a) < 0 || listen(sk, 64) < 0) {
        int e = errno;
        close(sk);
        errno = e;
        return -1;
    }
    return sk;
}

static int accept_one(int lsk)
{
    struct pollfd p = {.fd = lsk, .events = POLLIN};
    if (poll(&p, 1, 2000) != 1)
        return -1;
    return accept4(lsk, NULL, NULL, SOCK_CLOEXEC);
}

/* Write the saved bytes of image fd `owner` into sk (the other end of the
 * connection that receives them), without blocking for more than 2 s. */
static int put_bytes(struct ck_fdrest *r, int sk, int owner)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (r->bytes(r, owner, &data, &len) < 0)
        return rfail(r, "fd %d: cannot read its saved bytes from the image", owner);
    size_t off = 0;
    int64_t waited = 0;
    while (off < len) {
        ssize_t n = send(sk, data + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && waited < 2000) {
            struct pollfd p = {.fd = sk, .events = POLLOUT};
            poll(&p, 1, 50);
            waited += 50;
            continue;
        }
        free(data);
        return rfail(r, "fd %d: could put back only %zu of the %zu bytes it had waiting: %s",
                     owner, off, len, n < 0 ? strerror(errno) : "no room");
    }
    free(data);
    return 0;
}

static int stash(struct ck_fdrest *r, int i, int sk)
{
    int nfd = fcntl(sk, F_DUPFD_CLOEXEC, r->maxfd + 1);
    close(sk);
    if (nfd < 0)
        return rfail(r, "fd %d: cannot keep a socket aside: %s", r->im->fds[i].fd,
                     strerror(errno));
    r->stash[i] = nfd;
    return 0;
}

static int make_pair(struct ck_fdrest *r, int ia, int ib)
{
    const struct ck_inet *a = state_of(r, (uint32_t)ia), *b = state_of(r, (uint32_t)ib);
    int fa = r->im->fds[ia].fd, fb = r->im->fds[ib].fd;
    /* the server end: the one on a port a listener of the program has, or
     * else the one with the lower port */
    int b_server = b->local.port < a->local.port;
    for (uint32_t k = 0; k < r->im->nfds; k++) {
        const struct ck_inet *l = state_of(r, k);
        if (l && l->role == CK_INET_LISTEN) {
            if (listener_takes(l, &b->local))
                b_server = 1;
            else if (listener_takes(l, &a->local))
                b_server = 0;
        }
    }
    if (b_server) {
        const struct ck_inet *t = a;
        a = b, b = t;
        int ti = ia;
        ia = ib, ib = ti;
        ti = fa;
        fa = fb, fb = ti;
    }
    /* a: the server end, b: the client end */
    int lsk = temp_listener(&a->local, a->so.family);
    if (lsk < 0) {
        char la[80];
        addr_text(&a->local, la, sizeof la);
        return rfail(r, "fd %d: cannot listen on %s for a moment to connect fd %d to it "
                     "again: %s", fa, la, fb, strerror(errno));
    }
    int one = 1;
    int csk = connect_client(r, b, fb, &a->local);
    int ssk = csk < 0 ? -1 : accept_one(lsk);
    close(lsk);
    if (csk < 0)
        return -1;
    if (ssk < 0) {
        close(csk);
        return rfail(r, "fd %d: the connection from fd %d was not accepted: %s", fa, fb,
                     strerror(errno));
    }
    setsockopt(ssk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (apply_opts(r, ssk, a, fa, 0) < 0 || put_bytes(r, ssk, fb) < 0 ||
        put_bytes(r, csk, fa) < 0) {
        close(csk);
        close(ssk);
        return -1;
    }
    if (stash(r, ia, ssk) < 0 || stash(r, ib, csk) < 0)
        return -1;
    return 0;
}

/* A connection that comes back dead (reset after its bytes) or closed by
 * its peer (its bytes, then end of file), through a temporary listener on
 * loopback. */
static int make_dead(struct ck_fdrest *r, int i)
{
    const struct ck_inet *s = state_of(r, (uint32_t)i);
    int fd = r->im->fds[i].fd;
    struct ck_inaddr lo;
    memset(&lo, 0, sizeof lo);
    lo.family = s->so.family;
    if (s->so.family == AF_INET)
        lo.addr[0] = 127, lo.addr[3] = 1;
    else
        lo.addr[15] = 1;
    int lsk = temp_listener(&lo, s->so.family);
    if (lsk < 0 && s->so.family == AF_INET6) {
        /* no IPv6 loopback: an IPv4-mapped one */
        memcpy(lo.addr, v4mapped_prefix, 12);
        lo.addr[12] = 127, lo.addr[15] = 1;
        lsk = temp_listener(&lo, AF_INET6);
    }
    if (lsk < 0)
        return rfail(r, "fd %d: cannot listen on loopback for a moment: %s", fd,
                     strerror(errno));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(lsk, (struct sockaddr *)&ss, &sl);
    to_inaddr(&ss, &lo);
    int sk = new_socket(r, s, fd);
    if (sk >= 0 && connect_to(sk, &lo) < 0) {
        (void)rfail(r, "fd %d: cannot connect over loopback: %s", fd, strerror(errno));
        close(sk);
        sk = -1;
    }
    int other = sk < 0 ? -1 : accept_one(lsk);
    close(lsk);
    if (sk < 0)
        return -1;
    if (other < 0) {
        close(sk);
        return rfail(r, "fd %d: cannot accept a connection over loopback", fd);
    }
    if (put_bytes(r, other, fd) < 0) {
        close(sk);
        close(other);
        return -1;
    }
    int unsent = 0;
    for (int t = 0; t < 100 && ioctl(other, SIOCOUTQNSD, &unsent) == 0 && unsent > 0; t++)
        usleep(10000);
    if (s->role == CK_INET_DEAD && unsent == 0) {
        /* a reset after the bytes (bytes that did not fit in the receive
         * window yet: a FIN instead, which keeps them) */
        struct linger lg = {1, 0};
        setsockopt(other, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(other);
    if (s->so.shutdown & CK_SOCK_SHUT_WR)
        shutdown(sk, SHUT_WR);
    return stash(r, i, sk);
}

static int make_plain(struct ck_fdrest *r, int i)
{
    const struct ck_inet *s = state_of(r, (uint32_t)i);
    int fd = r->im->fds[i].fd;
    int sk = new_socket(r, s, fd);
    if (sk < 0)
        return -1;
    char la[80];
    addr_text(&s->local, la, sizeof la);
    struct ck_inaddr here = local_here(s, fd, 0);
    if (((s->flags & CK_INETF_BOUND) && bind_to(sk, &here) < 0) ||
        (s->role == CK_INET_LISTEN && listen(sk, s->backlog) < 0)) {
        int e = errno;
        close(sk);
        return rfail(r, "fd %d: cannot %s a %s socket %s %s again: %s%s", fd,
                     s->role == CK_INET_LISTEN ? "listen with" : "bind", proto_name(s),
                     s->role == CK_INET_LISTEN ? "on" : "to", la, strerror(e),
                     e == EADDRINUSE ? " (another socket has that address now)" : "");
    }
    if (s->role == CK_INET_CONNECTING) {
        int fl = fcntl(sk, F_GETFL);
        fcntl(sk, F_SETFL, fl | O_NONBLOCK);
        if (connect_to(sk, &s->peer) < 0 && errno != EINPROGRESS) {
            /* it fails as the program's own connect would have */
        }
        fcntl(sk, F_SETFL, fl);
    } else if ((s->flags & CK_INETF_CONNECTED) && connect_to(sk, &s->peer) < 0) {
        char pa[80];
        addr_text(&s->peer, pa, sizeof pa);
        close(sk);
        return rfail(r, "fd %d: cannot connect a UDP socket to %s again: %s", fd, pa,
                     strerror(errno));
    }
    return stash(r, i, sk);
}

/* What is left once every socket is made: the final SO_REUSEADDR and the
 * options set late, O_NONBLOCK, shutdown. */
static int finish_socket(struct ck_fdrest *r, int i)
{
    const struct ck_inet *s = state_of(r, (uint32_t)i);
    const struct ck_fd *f = &r->im->fds[i];
    int sk = r->stash[i];
    if (apply_opts(r, sk, s, f->fd, 1) < 0)
        return -1;
    if (s->role == CK_INET_PAIR) {
        ck_sock_shutdown(sk, s->so.shutdown);
    }
    return 0;
}

static int build_all(struct ck_fdrest *r)
{
    const struct ck_image *im = r->im;
    /* 1. connections with both ends here, 2. listeners, 3. clients waiting
     * in their accept queues, 4. connections to peers outside, 5. the rest */
    for (int pass = 1; pass <= 5; pass++) {
        for (uint32_t i = 0; i < im->nfds; i++) {
            const struct ck_inet *s = state_of(r, i);
            if (!s || r->stash[i] >= 0)
                continue;
            int rc = 0;
            switch (pass) {
            case 1:
                if (s->role == CK_INET_PAIR) {
                    int k = index_of_fd(r, s->peer_fd);
                    if (k < 0 || !state_of(r, (uint32_t)k))
                        return rfail(r, "fd %d: its peer fd %d is not in the image", im->fds[i].fd,
                                     s->peer_fd);
                    rc = make_pair(r, (int)i, k);
                }
                break;
            case 2:
                if (s->role == CK_INET_LISTEN)
                    rc = make_plain(r, (int)i);
                break;
            case 3:
                if (s->role == CK_INET_PENDING) {
                    int k = index_of_fd(r, s->listener_fd);
                    const struct ck_inet *l = k < 0 ? NULL : state_of(r, (uint32_t)k);
                    if (!l)
                        return rfail(r, "fd %d: its listener fd %d is not in the image",
                                     im->fds[i].fd, s->listener_fd);
                    struct ck_inaddr to = s->peer;
                    int sk = connect_client(r, s, im->fds[i].fd, &to);
                    if (sk < 0 || stash(r, (int)i, sk) < 0)
                        return -1;
                }
                break;
            case 4:
                if (s->role == CK_INET_DEAD || s->role == CK_INET_CLOSED)
                    rc = make_dead(r, (int)i);
                break;
            default:
                rc = make_plain(r, (int)i);
                break;
            }
            if (rc < 0)
                return -1;
        }
    }
    for (uint32_t i = 0; i < im->nfds; i++)
        if (state_of(r, i) && finish_socket(r, (int)i) < 0)
            return -1;
    return 0;
}

static int inet_restore(struct ck_fdrest *r)
{
    if (g_built.im != r->im) {
        g_built.im = r->im;
        g_built.failed = build_all(r) < 0;
        if (g_built.failed) {
            for (uint32_t i = 0; i < r->im->nfds; i++)
                if (state_of(r, i) && r->stash[i] >= 0) {
                    close(r->stash[i]);
                    r->stash[i] = -1;
                }
            return -1;
        }
    }
    if (g_built.failed)
        return rfail(r, "fd %d: the sockets could not be made again", r->f->fd);
    int sk = r->stash[r->i];
    if (sk < 0 || !state_of(r, r->i))
        return rfail(r, "fd %d: no saved state for this socket", r->f->fd);
    r->stash[r->i] = -1;
    return sk;
}

/* Before anything changes: can every listener have its port again? */
static int inet_check(struct ck_fdrest *r)
{
    const struct ck_inet *s = state_of(r, r->i);
    if (!s)
        return r->f->share_with >= 0 ? 0 : rfail(r, "fd %d: no saved state for this socket",
                                                 r->f->fd);
    /* the descriptors a connection is made with must be what the image
     * says they are: another end that names this one, a listener */
    if (s->role == CK_INET_PAIR || s->role == CK_INET_PENDING) {
        int pair = s->role == CK_INET_PAIR;
        int other = pair ? s->peer_fd : s->listener_fd;
        int k = other == r->f->fd ? -1 : index_of_fd(r, other);
        const struct ck_inet *o = k < 0 ? NULL : state_of(r, (uint32_t)k);
        if (!o || o->so.type != SOCK_STREAM || s->so.type != SOCK_STREAM ||
            (pair ? o->role != CK_INET_PAIR || o->peer_fd != r->f->fd
                  : o->role != CK_INET_LISTEN))
            return rfail(r, "fd %d: the image is damaged: its %s fd %d is not a TCP %s of the "
                         "image", r->f->fd, pair ? "peer" : "listener", other,
                         pair ? "connection naming it" : "listener");
    }
    if (s->role != CK_INET_LISTEN)
        return 0;
    int sk = ck_sock_new(&s->so);
    if (sk < 0)
        return 0;
    int one = 1;
    setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s->so.opts & CK_SOCKO_REUSEPORT)
        setsockopt(sk, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (s->so.family == AF_INET6)
        setsockopt(sk, IPPROTO_IPV6, IPV6_V6ONLY, &s->opt[OPT_V6ONLY], sizeof s->opt[OPT_V6ONLY]);
    struct ck_inaddr here = local_here(s, r->f->fd, 1);
    int rc = bind_to(sk, &here) < 0 ? -errno : 0;
    if (rc == 0 && listen(sk, 1) < 0)
        rc = -errno;
    close(sk);
    if (rc == -EADDRINUSE) {
        char la[80];
        addr_text(&s->local, la, sizeof la);
        return rfail(r, "fd %d: the program listened on TCP %s, which another socket has "
                     "now (is the program still running?)", r->f->fd, la);
    }
    return 0;
}

/* The datagrams that waited in UDP socket i are sent again, each from
 * the program's socket bound to its source address if there is one, else
 * from a socket bound there for the moment (if that address is free),
 * else from any port. */
static int resend_dgrams(struct ck_fdrest *r, uint32_t i)
{
    const struct ck_inet *s = state_of(r, i);
    int fd = r->im->fds[i].fd;
    uint8_t *data = NULL;
    size_t len = 0;
    if (r->bytes(r, fd, &data, &len) < 0)
        return rfail(r, "fd %d: cannot read its saved datagrams", fd);
    size_t off = 0;
    while (off + sizeof(struct ck_inet_dgram) <= len) {
        struct ck_inet_dgram h;
        memcpy(&h, data + off, sizeof h);
        off += sizeof h;
        if (off + h.len > len)
            break;
        const uint8_t *payload = data + off;
        off += h.len + ((8 - (h.len & 7)) & 7);
        /* who sends: a socket of the program bound to the source? */
        int from = -1, tmp = -1;
        for (uint32_t k = 0; k < r->im->nfds && from < 0; k++) {
            const struct ck_inet *o = state_of(r, k);
            if (o && o->so.type == SOCK_DGRAM && same_addr(&o->local, &h.src) &&
                (o->so.family == s->so.family || !(s->flags & CK_INETF_V4MAPPED)))
                from = r->im->fds[k].fd;
        }
        uint8_t v4[16];
        int src4 = norm_addr(&h.src, v4) == 4;
        struct ck_inaddr src = h.src, dst = reach(&s->local, s->so.family);
        if (s->so.family == AF_INET6 && src4 && from < 0) {
            /* a v4 datagram into an IPv6 socket: send it over IPv4 */
            src.family = AF_INET;
            memcpy(src.addr, v4, 4);
            uint8_t d4[16];
            if (is_wildcard(&s->local)) {
                dst.family = AF_INET;
                memset(dst.addr, 0, 16);
                dst.addr[0] = 127, dst.addr[3] = 1;
            } else if (norm_addr(&s->local, d4) == 4) {
                dst.family = AF_INET;
                memcpy(dst.addr, d4, 4);
            }
        }
        if (from < 0) {
            tmp = socket(src.family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            int one = 1;
            setsockopt(tmp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (bind_to(tmp, &src) < 0) {
                /* the source address is taken: from another port */
                close(tmp);
                tmp = socket(src.family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            }
            from = tmp;
        }
        struct sockaddr_storage ss;
        socklen_t sl = from_inaddr(&dst, &ss);
        if (sendto(from, payload, h.len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&ss,
                   sl) < 0) {
            int e = errno;
            if (tmp >= 0)
                close(tmp);
            free(data);
            return rfail(r, "fd %d: cannot send a saved datagram of %u bytes again: %s", fd,
                         h.len, strerror(e));
        }
        if (tmp >= 0)
            close(tmp);
    }
    free(data);
    return 0;
}

/* Once every descriptor is at its number: the datagrams, then each UDP
 * socket's shutdown state and socket filter. */
static int inet_after(struct ck_fdrest *r)
{
    const struct ck_inet *s = state_of(r, r->i);
    if (!s || s->so.type != SOCK_DGRAM)
        return 0;
    /* every datagram first (a source may be another socket of the
     * program, which is then shut down or filtered like this one) */
    if (g_built.sent != r->im) {
        g_built.sent = r->im;
        for (uint32_t k = 0; k < r->im->nfds; k++) {
            const struct ck_inet *o = state_of(r, k);
            if (o && o->so.type == SOCK_DGRAM && o->ndgrams && resend_dgrams(r, k) < 0)
                return -1;
        }
    }
    /* an unconnected UDP socket is shut down all the same, with ENOTCONN */
    for (int how = 0; how < 2; how++)
        if ((s->so.shutdown & (how ? CK_SOCK_SHUT_WR : CK_SOCK_SHUT_RD)) &&
            shutdown(r->f->fd, how ? SHUT_WR : SHUT_RD) < 0 && errno != ENOTCONN)
            return rfail(r, "fd %d: cannot shut the UDP socket down again: %s", r->f->fd,
                         strerror(errno));
    return attach_filter(r, r->f->fd, s, r->f->fd);
}

static const char *role_name(uint32_t role)
{
    static const char *const n[] = {"", "listening", "connected in the process",
                                    "waiting in an accept queue", "to a peer outside (comes "
                                    "back reset)", "closed by its peer", "connecting"};
    return role < sizeof n / sizeof n[0] ? n[role] : "?";
}

static void inet_describe(const struct ck_fd *f, const void *state, size_t len, char *out,
                          size_t outlen)
{
    const struct ck_inet *s = state;
    if (!s || len < sizeof *s) {
        snprintf(out, outlen, "inet socket (no state)");
        return;
    }
    char la[80], pa[80];
    addr_text(&s->local, la, sizeof la);
    addr_text(&s->peer, pa, sizeof pa);
    int n = snprintf(out, outlen, "%s%s %s", proto_name(s), s->so.family == AF_INET6 ? "v6" : "",
                     la);
    if (n < 0 || (size_t)n >= outlen)
        return;
    if (s->role == CK_INET_LISTEN)
        snprintf(out + n, outlen - (size_t)n, " listening (backlog %d)", s->backlog);
    else if (s->so.type == SOCK_DGRAM)
        snprintf(out + n, outlen - (size_t)n, "%s%s, %u datagrams waiting",
                 s->peer.family ? " connected to " : "", s->peer.family ? pa : "", s->ndgrams);
    else if (s->peer.family)
        snprintf(out + n, outlen - (size_t)n, " -> %s %s, %llu bytes waiting", pa,
                 role_name(s->role), (unsigned long long)s->rcvq);
}

const struct ck_fdkind ck_fdkind_inet = {
    .kind = CK_FD_INET,
    .name = "inet socket",
    .capture = inet_capture,
    .finish = inet_finish,
    .check = inet_check,
    .restore = inet_restore,
    .after = inet_after,
    .describe = inet_describe,
};
