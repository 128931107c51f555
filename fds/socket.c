/* socket.c - the part of socket checkpoint/restore that does not depend
 * on the address family (see socket.h): family and type names, the
 * generic SOL_SOCKET options, O_NONBLOCK, shutdown, dead connections, and
 * the refusal of families ckshim does not restore.
 *
 * Options are read with getsockopt at checkpoint and set at restore only
 * where the new socket differs, so what the program never touched stays
 * the kernel's default (setting SO_SNDBUF, for one, would also lock the
 * size against the kernel's tuning). SO_SNDBUF/SO_RCVBUF read back
 * doubled (the kernel's bookkeeping share); they are set with half the
 * value. A size above what an ordinary user may ask (net.core.wmem_max,
 * rmem_max; SO_*BUFFORCE needs CAP_NET_ADMIN) comes back capped there.
 * SO_PEERCRED is not an option to set: after restore it names the
 * restored process (both ends of a connection inside it were made by it). */
#include <errno.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "socket.h"

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#ifndef SOCK_SNDBUF_LOCK
#define SOCK_SNDBUF_LOCK 1
#define SOCK_RCVBUF_LOCK 2
#endif

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

/* Groups of options (ck_sockopt_group): one option alone, or options
 * the kernel ties together (a setsockopt of one changes what another
 * reads). */
enum {
    G_BUF,          /* SO_SNDBUF, SO_RCVBUF (and FORCE): also SO_BUF_LOCK */
    G_PRIO,         /* IP_TOS and IPV6_TCLASS set SO_PRIORITY too */
    G_KEEP,         /* SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT */
    G_NAGLE,        /* TCP_NODELAY, TCP_CORK: one field */
    G_TSTAMP,       /* SO_TIMESTAMP, _NS, _ING, old and new: shared flags */
    G_FILTER,       /* socket filters */
    G_BINDDEV,      /* SO_BINDTODEVICE, SO_BINDTOIFINDEX */
    G_RECVERR,      /* IP_RECVERR, IPV6_RECVERR */
    G_FREEBIND,     /* IP_FREEBIND, IPV6_FREEBIND: one flag */
    G_PASS,         /* SO_PASSCRED, SO_PASSSEC, SO_PASSPIDFD */
    G_REUSEADDR,
    G_REUSEPORT,
    G_BROADCAST,
    G_OOBINLINE,
    G_DONTROUTE,
    G_RCVLOWAT,
    G_LINGER,
    G_TIMEO,        /* SO_RCVTIMEO, SO_SNDTIMEO */
    G_PEEKOFF,
    G_USER_TIMEOUT,
    G_DEFER,
    G_NOTSENT,
    G_FASTOPEN,
    G_TTL,
    G_PKTINFO,
    G_MCAST,        /* IP_MULTICAST_TTL, IP_MULTICAST_LOOP */
    G_V6ONLY,
    G_HOPS,
    G_V6PKTINFO,
    G_CSCOV,        /* UDPLITE_SEND_CSCOV, UDPLITE_RECV_CSCOV */
};

int ck_sockopt_group(int level, int name)
{
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_SNDBUF:
        case SO_RCVBUF:
        case SO_SNDBUFFORCE:
        case SO_RCVBUFFORCE:
        case SO_BUF_LOCK:
            return G_BUF;
        case SO_PRIORITY:
            return G_PRIO;
        case SO_KEEPALIVE:
            return G_KEEP;
        case 29: /* SO_TIMESTAMP_OLD */
        case 35: /* SO_TIMESTAMPNS_OLD */
        case 37: /* SO_TIMESTAMPING_OLD */
        case 63: /* SO_TIMESTAMP_NEW */
        case 64: /* SO_TIMESTAMPNS_NEW */
        case 65: /* SO_TIMESTAMPING_NEW */
            return G_TSTAMP;
        case SO_ATTACH_FILTER:
        case SO_DETACH_FILTER:
        case SO_LOCK_FILTER:
        case SO_ATTACH_BPF:
        case SO_ATTACH_REUSEPORT_CBPF:
        case SO_ATTACH_REUSEPORT_EBPF:
        case 68: /* SO_DETACH_REUSEPORT_BPF */
            return G_FILTER;
        case SO_BINDTODEVICE:
        case SO_BINDTOIFINDEX:
            return G_BINDDEV;
        case SO_PASSCRED:
        case SO_PASSSEC:
        case SO_PASSPIDFD:
            return G_PASS;
        case SO_REUSEADDR:
            return G_REUSEADDR;
        case SO_REUSEPORT:
            return G_REUSEPORT;
        case SO_BROADCAST:
            return G_BROADCAST;
        case SO_OOBINLINE:
            return G_OOBINLINE;
        case SO_DONTROUTE:
            return G_DONTROUTE;
        case SO_RCVLOWAT:
            return G_RCVLOWAT;
        case SO_LINGER:
            return G_LINGER;
        case 20: /* SO_RCVTIMEO_OLD */
        case 21: /* SO_SNDTIMEO_OLD */
        case 66: /* SO_RCVTIMEO_NEW */
        case 67: /* SO_SNDTIMEO_NEW */
            return G_TIMEO;
        case SO_PEEK_OFF:
            return G_PEEKOFF;
        }
    } else if (level == IPPROTO_TCP) {
        switch (name) {
        case TCP_NODELAY:
        case TCP_CORK:
            return G_NAGLE;
        case TCP_KEEPIDLE:
        case TCP_KEEPINTVL:
        case TCP_KEEPCNT:
            return G_KEEP;
        case TCP_USER_TIMEOUT:
            return G_USER_TIMEOUT;
        case TCP_DEFER_ACCEPT:
            return G_DEFER;
        case TCP_NOTSENT_LOWAT:
            return G_NOTSENT;
        case TCP_FASTOPEN:
            return G_FASTOPEN;
        }
    } else if (level == IPPROTO_IP) {
        switch (name) {
        case IP_TOS:
            return G_PRIO;
        case IP_TTL:
            return G_TTL;
        case IP_PKTINFO:
            return G_PKTINFO;
        case IP_RECVERR:
            return G_RECVERR;
        case IP_MULTICAST_TTL:
        case IP_MULTICAST_LOOP:
            return G_MCAST;
        case IP_FREEBIND:
            return G_FREEBIND;
        }
    } else if (level == IPPROTO_IPV6) {
        switch (name) {
        case IPV6_V6ONLY:
            return G_V6ONLY;
        case IPV6_UNICAST_HOPS:
            return G_HOPS;
        case IPV6_TCLASS:
            return G_PRIO;
        case IPV6_RECVPKTINFO:
            return G_V6PKTINFO;
        case IPV6_RECVERR:
            return G_RECVERR;
        case IPV6_FREEBIND:
            return G_FREEBIND;
        }
    } else if (level == IPPROTO_UDPLITE && (name == 10 || name == 11)) {
        return G_CSCOV; /* UDPLITE_SEND_CSCOV, UDPLITE_RECV_CSCOV */
    }
    return -1;
}

int ck_sockopt_asked(const struct ck_fdcap *c, int level, int name)
{
    if (c->sock_type <= 0)
        return 1;
    int g = ck_sockopt_group(level, name);
    return g < 0 || (c->sock_set >> g & 1);
}

int ck_sock_family(int fd)
{
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) < 0)
        return -1;
    return v;
}

int ck_sock_family_named(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
    socklen_t l = sizeof *ss;
    if (getsockname(fd, (struct sockaddr *)ss, &l) == 0 && l >= sizeof ss->ss_family &&
        l <= sizeof *ss) {
        *len = l;
        return ss->ss_family;
    }
    *len = 0;
    if (errno == ENOTSOCK)
        return -1;
    return ck_sock_family(fd); /* a family without names */
}

const char *ck_sock_family_name(int family)
{
    switch (family) {
    case AF_UNIX:
        return "unix";
    case AF_INET:
        return "inet";
    case AF_INET6:
        return "inet6";
    case AF_NETLINK:
        return "netlink";
    case AF_PACKET:
        return "packet";
    case AF_VSOCK:
        return "vsock";
    case AF_BLUETOOTH:
        return "bluetooth";
    case AF_ALG:
        return "alg (kernel crypto)";
    case AF_XDP:
        return "xdp";
    case AF_CAN:
        return "can";
    case AF_TIPC:
        return "tipc";
    case AF_KEY:
        return "key";
    case AF_RDS:
        return "rds";
    default:
        return NULL;
    }
}

const char *ck_sock_type_name(int type)
{
    switch (type) {
    case SOCK_STREAM:
        return "stream";
    case SOCK_DGRAM:
        return "datagram";
    case SOCK_SEQPACKET:
        return "seqpacket";
    case SOCK_RAW:
        return "raw";
    default:
        return "other";
    }
}

/* Boolean SOL_SOCKET options and their CK_SOCKO_* bits. */
static const struct {
    int opt;
    uint32_t bit;
    const char *name;
} bool_opts[] = {
    {SO_PASSCRED, CK_SOCKO_PASSCRED, "SO_PASSCRED"},
    {SO_PASSSEC, CK_SOCKO_PASSSEC, "SO_PASSSEC"},
    {SO_KEEPALIVE, CK_SOCKO_KEEPALIVE, "SO_KEEPALIVE"},
    {SO_REUSEADDR, CK_SOCKO_REUSEADDR, "SO_REUSEADDR"},
    {SO_REUSEPORT, CK_SOCKO_REUSEPORT, "SO_REUSEPORT"},
    {SO_BROADCAST, CK_SOCKO_BROADCAST, "SO_BROADCAST"},
    {SO_OOBINLINE, CK_SOCKO_OOBINLINE, "SO_OOBINLINE"},
    {SO_DONTROUTE, CK_SOCKO_DONTROUTE, "SO_DONTROUTE"},
    {SO_TIMESTAMP, CK_SOCKO_TIMESTAMP, "SO_TIMESTAMP"},
    {SO_PASSPIDFD, CK_SOCKO_PASSPIDFD, "SO_PASSPIDFD"},
};

/* Integer SOL_SOCKET options kept in struct ck_sock. */
#define INT_OPTS(o)                                                                    \
    {SO_SNDBUF, &(o)->sndbuf, "SO_SNDBUF"}, {SO_RCVBUF, &(o)->rcvbuf, "SO_RCVBUF"},  \
        {SO_RCVLOWAT, &(o)->rcvlowat, "SO_RCVLOWAT"},                                 \
        {SO_PRIORITY, &(o)->priority, "SO_PRIORITY"},

struct int_opt {
    int opt;
    int32_t *val;
    const char *name;
};

static int get_int(int fd, int opt, int *v)
{
    socklen_t l = sizeof *v;
    return getsockopt(fd, SOL_SOCKET, opt, v, &l);
}

static int64_t get_timeo(int fd, int opt)
{
    struct timeval tv = {0, 0};
    socklen_t l = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, opt, &tv, &l) < 0)
        return 0;
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* Options a kind of socket does not have (SO_PASSCRED on TCP since Linux
 * 6.16, SO_PEEK_OFF where the protocol has no peek offset) fail the same
 * way on every socket of that family, type and protocol: after the first
 * failure they are not asked again in this capture (a restore may bring
 * the program to another kernel, so nothing is kept longer). One bit per
 * bool_opts[] entry, then the others (OPT_*). */
enum { OPT_BUF_LOCK = 16, OPT_PEEK_OFF, OPT_LINGER, OPT_INTS };
#define MAX_KINDS 8
static struct {
    int family, type, protocol;
    uint32_t missing;
} kinds[MAX_KINDS];
static int nkinds;
static uint32_t kinds_gen;

static uint32_t *missing_of(const struct ck_fdcap *c, const struct ck_sock *o)
{
    static uint32_t none;
    if (c->gen != kinds_gen) {
        kinds_gen = c->gen;
        nkinds = 0;
    }
    for (int k = 0; k < nkinds; k++)
        if (kinds[k].family == c->family && kinds[k].type == (int)o->type &&
            kinds[k].protocol == (int)o->protocol)
            return &kinds[k].missing;
    if (nkinds >= MAX_KINDS) {
        none = 0;
        return &none; /* many kinds: ask everything */
    }
    kinds[nkinds].family = c->family;
    kinds[nkinds].type = (int)o->type;
    kinds[nkinds].protocol = (int)o->protocol;
    kinds[nkinds].missing = 0;
    return &kinds[nkinds++].missing;
}

/* getsockopt of option number `bit` of *missing: 0, or -1 (not there,
 * remembered when the kernel does not know it for this kind of socket) */
static int get_opt(int fd, int opt, void *v, socklen_t len, uint32_t *missing, int bit)
{
    if (*missing & (1u << bit))
        return -1;
    socklen_t l = len;
    if (getsockopt(fd, SOL_SOCKET, opt, v, &l) == 0)
        return 0;
    if (errno == ENOPROTOOPT || errno == EOPNOTSUPP)
        *missing |= 1u << bit;
    return -1;
}

/* The options of a new socket of o's family, type and protocol: what a
 * socket the program never set an option of a group on has there
 * (c->sock_set). Read from a new socket once per kind and capture; NULL
 * if none can be made. */
#define MAX_DEFAULTS 8
static struct {
    int family, type, protocol;
    struct ck_sock so;
} defs[MAX_DEFAULTS];
static int ndefs;
static uint32_t defs_gen;

static const struct ck_sock *defaults_of(const struct ck_fdcap *c, const struct ck_sock *o)
{
    if (c->gen != defs_gen) {
        defs_gen = c->gen;
        ndefs = 0;
    }
    for (int k = 0; k < ndefs; k++)
        if (defs[k].family == c->family && defs[k].type == (int)o->type &&
            defs[k].protocol == (int)o->protocol)
            return &defs[k].so;
    if (ndefs >= MAX_DEFAULTS)
        return NULL;
    int fd = socket(c->family, (int)o->type | SOCK_CLOEXEC, (int)o->protocol);
    if (fd < 0)
        return NULL;
    struct ck_fdcap p = *c;
    p.fd = fd;
    p.sock_type = 0; /* asked everything */
    struct ck_sock_known k = {.type = (int)o->type, .sndbuf = -1, .rcvbuf = -1,
                              .protocol = (int)o->protocol, .optmem = -1};
    ck_sock_capture(&p, &k, &defs[ndefs].so);
    close(fd);
    defs[ndefs].family = c->family;
    defs[ndefs].type = (int)o->type;
    defs[ndefs].protocol = (int)o->protocol;
    return &defs[ndefs++].so;
}

void ck_sock_capture(const struct ck_fdcap *c, struct ck_sock_known *known, struct ck_sock *o)
{
    int v, fd = c->fd;
    struct ck_sock_known k = {.type = -1, .sndbuf = -1, .rcvbuf = -1, .protocol = -1,
                              .optmem = -1};
    if (known)
        k = *known;
    memset(o, 0, sizeof *o);
    o->family = (uint16_t)c->family;
    if (c->sock_type > 0) { /* the shim saw it made */
        k.type = c->sock_type;
        k.protocol = c->sock_protocol;
    }
    if (k.type >= 0 || get_int(fd, SO_TYPE, &k.type) == 0)
        o->type = (uint32_t)k.type;
    if (k.protocol >= 0 || get_int(fd, SO_PROTOCOL, &k.protocol) == 0)
        o->protocol = (uint32_t)k.protocol;
    /* both buffer sizes (and the option memory) in one call; not for a
     * socket the shim followed whose sizes and filters the program never
     * set: its sizes are the kernel's to tune, restore leaves them so,
     * and the image keeps its kind's defaults */
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t ml = sizeof mem;
    k.optmem = -1;
    if (k.sndbuf < 0 && k.rcvbuf < 0 &&
        (ck_sockopt_asked(c, SOL_SOCKET, SO_SNDBUF) ||
         ck_sockopt_asked(c, SOL_SOCKET, SO_ATTACH_FILTER)) &&
        getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &ml) == 0 &&
        ml >= (SK_MEMINFO_OPTMEM + 1) * sizeof mem[0]) {
        k.sndbuf = (int)mem[SK_MEMINFO_SNDBUF];
        k.rcvbuf = (int)mem[SK_MEMINFO_RCVBUF];
        k.optmem = (int)mem[SK_MEMINFO_OPTMEM];
    }
    if (known)
        known->optmem = k.optmem;
    /* a socket the shim followed: only the options of the groups the
     * program set are asked, the others are the kernel's defaults (the
     * sizes are the kernel's own, tuned: read above) */
    const struct ck_sock *d =
        c->sock_type > 0 && c->sock_set != ~(uint64_t)0 ? defaults_of(c, o) : NULL;
    uint32_t *miss = missing_of(c, o);
    _Static_assert(sizeof bool_opts / sizeof bool_opts[0] <= OPT_BUF_LOCK, "bits overlap");
    for (int i = 0; i < (int)(sizeof bool_opts / sizeof bool_opts[0]); i++)
        if (d && !ck_sockopt_asked(c, SOL_SOCKET, bool_opts[i].opt))
            o->opts |= d->opts & bool_opts[i].bit;
        else if (get_opt(fd, bool_opts[i].opt, &v, sizeof v, miss, i) == 0 && v)
            o->opts |= bool_opts[i].bit;
    /* which sizes the program set itself (the others the kernel may still
     * tune: TCP grows them with the connection's needs) */
    uint32_t lockbits = CK_SOCKO_BUF_LOCK_KNOWN | CK_SOCKO_SNDBUF_LOCK | CK_SOCKO_RCVBUF_LOCK;
    if (d && !ck_sockopt_asked(c, SOL_SOCKET, SO_BUF_LOCK))
        o->opts |= d->opts & lockbits;
    else if (get_opt(fd, SO_BUF_LOCK, &v, sizeof v, miss, OPT_BUF_LOCK) == 0)
        o->opts |= CK_SOCKO_BUF_LOCK_KNOWN | (v & SOCK_SNDBUF_LOCK ? CK_SOCKO_SNDBUF_LOCK : 0) |
                   (v & SOCK_RCVBUF_LOCK ? CK_SOCKO_RCVBUF_LOCK : 0);
    struct int_opt ints[] = {INT_OPTS(o)};
    struct ck_sock dv; /* a copy: INT_OPTS points into it */
    memset(&dv, 0, sizeof dv);
    if (d)
        dv = *d;
    struct int_opt dints[] = {INT_OPTS(&dv)};
    for (int i = 0; i < (int)(sizeof ints / sizeof ints[0]); i++) {
        int have = ints[i].opt == SO_SNDBUF ? k.sndbuf : ints[i].opt == SO_RCVBUF ? k.rcvbuf : -1;
        if (have >= 0)
            *ints[i].val = have;
        else if (d && !ck_sockopt_asked(c, SOL_SOCKET, ints[i].opt))
            *ints[i].val = *dints[i].val;
        else if (get_opt(fd, ints[i].opt, &v, sizeof v, miss, OPT_INTS + i) == 0)
            *ints[i].val = v;
    }
    o->peek_off = -1;
    if (k.peek_known)
        o->peek_off = k.peek_off;
    else if (d && !ck_sockopt_asked(c, SOL_SOCKET, SO_PEEK_OFF))
        o->peek_off = d->peek_off;
    else if (get_opt(fd, SO_PEEK_OFF, &v, sizeof v, miss, OPT_PEEK_OFF) == 0)
        o->peek_off = v;
    struct linger lg = {0, 0};
    if (d && !ck_sockopt_asked(c, SOL_SOCKET, SO_LINGER)) {
        o->opts |= d->opts & CK_SOCKO_LINGER;
        o->linger = d->linger;
    } else if (get_opt(fd, SO_LINGER, &lg, sizeof lg, miss, OPT_LINGER) == 0 && lg.l_onoff) {
        o->opts |= CK_SOCKO_LINGER;
        o->linger = lg.l_linger;
    }
    if (d && !ck_sockopt_asked(c, SOL_SOCKET, SO_RCVTIMEO)) {
        o->rcvtimeo_us = d->rcvtimeo_us;
        o->sndtimeo_us = d->sndtimeo_us;
    } else {
        o->rcvtimeo_us = get_timeo(fd, SO_RCVTIMEO);
        o->sndtimeo_us = get_timeo(fd, SO_SNDTIMEO);
    }
}

int ck_sock_peek_begin(int fd, int old)
{
    int zero = 0;
    return old == 0 ? 0 : setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero);
}

void ck_sock_peek_end(int fd, int old)
{
    setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof old);
}

int ck_sock_new(const struct ck_sock *o)
{
    return socket(o->family, (int)o->type | SOCK_CLOEXEC, (int)o->protocol);
}

static int set_timeo(int fd, int opt, int64_t us)
{
    if (get_timeo(fd, opt) == us)
        return 0;
    struct timeval tv = {.tv_sec = us / 1000000, .tv_usec = us % 1000000};
    return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

int ck_sock_apply(int fd, const struct ck_sock *o, uint32_t oflags, char *err, size_t errlen)
{
    int v;
    const char *what = NULL;
    for (size_t k = 0; !what && k < sizeof bool_opts / sizeof bool_opts[0]; k++) {
        int want = (o->opts & bool_opts[k].bit) != 0;
        if (get_int(fd, bool_opts[k].opt, &v) < 0 || !v == !want)
            continue; /* not known here (older kernel): it was not set either */
        if (setsockopt(fd, SOL_SOCKET, bool_opts[k].opt, &want, sizeof want) < 0)
            what = bool_opts[k].name;
    }
    struct ck_sock cur, saved = *o;
    struct int_opt want[] = {INT_OPTS(&saved)};
    struct int_opt have[] = {INT_OPTS(&cur)};
    int known = (o->opts & CK_SOCKO_BUF_LOCK_KNOWN) != 0;
    for (size_t k = 0; !what && k < sizeof want / sizeof want[0]; k++) {
        if (get_int(fd, want[k].opt, have[k].val) < 0 || *have[k].val == *want[k].val)
            continue;
        if (known && ((want[k].opt == SO_SNDBUF && !(o->opts & CK_SOCKO_SNDBUF_LOCK)) ||
                      (want[k].opt == SO_RCVBUF && !(o->opts & CK_SOCKO_RCVBUF_LOCK))))
            continue; /* the kernel's size, which it tunes: not locked at this value */
        /* buffer sizes read back doubled: set half, the kernel doubles it */
        int val = want[k].opt == SO_SNDBUF || want[k].opt == SO_RCVBUF ? *want[k].val / 2
                                                                       : *want[k].val;
        if (setsockopt(fd, SOL_SOCKET, want[k].opt, &val, sizeof val) < 0)
            what = want[k].name;
    }
    int lock = (o->opts & CK_SOCKO_SNDBUF_LOCK ? SOCK_SNDBUF_LOCK : 0) |
               (o->opts & CK_SOCKO_RCVBUF_LOCK ? SOCK_RCVBUF_LOCK : 0);
    if (!what && known && get_int(fd, SO_BUF_LOCK, &v) == 0 && v != lock &&
        setsockopt(fd, SOL_SOCKET, SO_BUF_LOCK, &lock, sizeof lock) < 0)
        what = "SO_BUF_LOCK";
    if (!what && (o->opts & CK_SOCKO_LINGER)) {
        struct linger lg = {1, o->linger};
        if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0)
            what = "SO_LINGER";
    }
    if (!what && set_timeo(fd, SO_RCVTIMEO, o->rcvtimeo_us) < 0)
        what = "SO_RCVTIMEO";
    if (!what && set_timeo(fd, SO_SNDTIMEO, o->sndtimeo_us) < 0)
        what = "SO_SNDTIMEO";
    /* SO_PEEK_OFF: only families that know it (unix, udp, tcp) */
    if (!what && get_int(fd, SO_PEEK_OFF, &v) == 0 && v != o->peek_off &&
        setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &o->peek_off, sizeof o->peek_off) < 0)
        what = "SO_PEEK_OFF";
    if (what) {
        snprintf(err, errlen, "cannot set %s: %s", what, strerror(errno));
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, (fl & ~O_NONBLOCK) | (int)(oflags & O_NONBLOCK)) < 0) {
        snprintf(err, errlen, "cannot set O_NONBLOCK: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int ck_sock_shutdown(int fd, uint32_t shut)
{
    if ((shut & CK_SOCK_SHUT_RD) && shutdown(fd, SHUT_RD) < 0)
        return -1;
    if ((shut & CK_SOCK_SHUT_WR) && shutdown(fd, SHUT_WR) < 0)
        return -1;
    return 0;
}

int ck_sock_dead(int type, const uint8_t *data, size_t len, const uint32_t *lens, uint32_t nlens,
                 char *err, size_t errlen)
{
    int sp[2];
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sp) < 0) {
        snprintf(err, errlen, "cannot make a socket pair: %s", strerror(errno));
        return -1;
    }
    /* room for what waits: the sender's buffer bounds an AF_UNIX queue */
    int big = (int)(len + 65536 * (nlens + 1));
    setsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    size_t off = 0;
    for (uint32_t k = 0; lens ? k < nlens : off < len; k++) {
        size_t n = lens ? lens[k] : len - off;
        ssize_t w = send(sp[1], data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 || (lens && (size_t)w != n)) {
            snprintf(err, errlen, "cannot put back %zu waiting bytes: %s", len - off,
                     w < 0 ? strerror(errno) : "short write");
            close(sp[0]);
            close(sp[1]);
            return -1;
        }
        off += (size_t)w;
    }
    /* the peer closes: our end sees SHUTDOWN_MASK (end of file, EPIPE,
     * EPOLLHUP) once the bytes are read */
    close(sp[1]);
    return sp[0];
}

/* Families nobody restores: refuse by name. */
static int other_capture(struct ck_fdcap *c)
{
    if (!S_ISSOCK(c->st->st_mode))
        return 0;
    int family = c->family;
    if (family == AF_UNIX || family == AF_INET || family == AF_INET6)
        return 0;
    if (family < 0) {
        /* not a socket: a descriptor opened with O_PATH on a socket file */
        snprintf(c->err, c->errlen, "fd %d is an O_PATH descriptor of the socket file %s (not "
                 "a socket), which ckshim cannot restore", c->fd, c->target);
        return -1;
    }
    const char *name = ck_sock_family_name(family);
    int type = -1;
    get_int(c->fd, SO_TYPE, &type);
    if (name)
        snprintf(c->err, c->errlen,
                 "fd %d is a %s socket (%s, address family %d, %s), which ckshim cannot restore",
                 c->fd, name, ck_sock_type_name(type), family, c->target);
    else
        snprintf(c->err, c->errlen,
                 "fd %d is a socket of address family %d (%s), which ckshim cannot restore",
                 c->fd, family, c->target);
    return -1;
}

const struct ck_fdkind ck_fdkind_socket_other = {
    .kind = 0,
    .name = "socket of another family",
    .capture = other_capture,
};
