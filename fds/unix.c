/* unix.c - AF_UNIX sockets (CK_FD_UNIX): capture in the program, restore
 * in coord.
 *
 * What the kernel tells an ordinary user about its own sockets:
 * getsockname/getpeername/getsockopt on the descriptor, and sock_diag
 * (NETLINK_SOCK_DIAG, asked for one inode at a time): the state
 * (connected, listening), the peer's inode (UNIX_DIAG_PEER: pairs the two
 * ends of a connection inside the process), a listener's backlog and the
 * inodes of the clients waiting in its accept queue (UNIX_DIAG_RQLEN,
 * UNIX_DIAG_ICONS), the shutdown state and the inode of the bound file
 * (UNIX_DIAG_VFS: is the path still this socket's?).
 *
 * Waiting bytes are peeked (MSG_PEEK with SO_PEEK_OFF walking the queue,
 * so nothing is consumed and the program's own peek offset is put back),
 * after every descriptor is known (finish), once per socket: a stream's
 * bytes as they are, datagram and seqpacket messages one by one with
 * their length and sender (struct ck_unix_msg). Descriptors in flight
 * (SCM_RIGHTS): the peek receives copies of them; those the program does
 * not hold are kept, before the descriptors are listed, at numbers above
 * the program's (ck_unix_inflight) and captured like its own
 * (CK_FDF_IN_FLIGHT); each message saves the image fd numbers of its
 * descriptors, and is sent again with them by the peer once every fd is
 * made (unix_after).
 *
 * Restore makes every Unix socket of the image at the first one's turn
 * and keeps them aside (stash) until coord reaches their numbers, in
 * phases: create (socketpair for the two ends of a connection inside the
 * process that no listener of the process made); bind (a stale socket
 * file of the user's that nobody listens on is removed first; check()
 * refused anything else before the restore changed anything; a name whose
 * file was removed is bound again and what goes through it is done at
 * once, before its file goes again: bind_removed, serve); datagram
 * queues (sent again from the socket that sent them if it is in the
 * process, before anyone connects); what goes through a name (serve:
 * listen, connections through the process's own listeners by connect +
 * accept, then the clients that were waiting, in their order; datagram
 * connects); stream and seqpacket queues (written again by the peer);
 * then options, O_NONBLOCK and shutdown. A connection to a socket outside
 * the process cannot be carried over: it comes back as a connection whose
 * peer has closed (ck_sock_dead), or on fds 0-2 as coord's own; a datagram
 * socket connected outside is connected again to the same name.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/unix_diag.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "imgio.h"
#include "socket.h"
#include "unix.h"

#define MAX_ICONS 4096                  /* clients waiting on one listener */
#define MAX_MSGS (1u << 20)             /* messages waiting in one socket */
#define SUN_OFF offsetof(struct sockaddr_un, sun_path)

/* ---- sock_diag ---------------------------------------------------------- */

struct udiag {
    uint32_t ino, peer, state, type;
    uint32_t rqueue, wqueue;            /* listener: waiting clients, backlog */
    uint32_t shut;                      /* RCV_SHUTDOWN 1, SEND_SHUTDOWN 2 */
    uint32_t vfs_dev, vfs_ino;          /* bound file (kernel dev_t), 0 if none */
    int32_t sndbuf, rcvbuf;             /* UNIX_DIAG_MEMINFO, -1 if not told */
    int has_vfs;
    uint32_t namelen;
    char name[108];
    uint32_t nicons;
    const uint32_t *icons;              /* into the reply buffer */
};

/* Parse one unix_diag_msg with its attributes. */
static void udiag_parse(const struct nlmsghdr *h, struct udiag *d)
{
    const struct unix_diag_msg *m = NLMSG_DATA(h);
    memset(d, 0, sizeof *d);
    d->sndbuf = d->rcvbuf = -1;
    d->ino = m->udiag_ino;
    d->state = m->udiag_state;
    d->type = m->udiag_type;
    const struct rtattr *a = (const struct rtattr *)(m + 1);
    int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof *m);
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        size_t n = RTA_PAYLOAD(a);
        const void *p = RTA_DATA(a);
        switch (a->rta_type) {
        case UNIX_DIAG_NAME:
            d->namelen = n < sizeof d->name ? (uint32_t)n : sizeof d->name;
            memcpy(d->name, p, d->namelen);
            break;
        case UNIX_DIAG_PEER:
            if (n >= 4)
                memcpy(&d->peer, p, 4);
            break;
        case UNIX_DIAG_RQLEN:
            if (n >= sizeof(struct unix_diag_rqlen)) {
                const struct unix_diag_rqlen *q = p;
                d->rqueue = q->udiag_rqueue;
                d->wqueue = q->udiag_wqueue;
            }
            break;
        case UNIX_DIAG_ICONS:
            d->nicons = (uint32_t)(n / 4);
            d->icons = p;
            break;
        case UNIX_DIAG_SHUTDOWN:
            if (n >= 1)
                d->shut = *(const uint8_t *)p;
            break;
        case UNIX_DIAG_MEMINFO:
            if (n >= (SK_MEMINFO_SNDBUF + 1) * sizeof(uint32_t)) {
                uint32_t mem[SK_MEMINFO_SNDBUF + 1];
                memcpy(mem, p, sizeof mem);
                d->rcvbuf = (int32_t)mem[SK_MEMINFO_RCVBUF];
                d->sndbuf = (int32_t)mem[SK_MEMINFO_SNDBUF];
            }
            break;
        case UNIX_DIAG_VFS:
            if (n >= sizeof(struct unix_diag_vfs)) {
                const struct unix_diag_vfs *v = p;
                d->vfs_dev = v->udiag_vfs_dev;
                d->vfs_ino = v->udiag_vfs_ino;
                d->has_vfs = 1;
            }
            break;
        }
    }
}

static int udiag_socket(void)
{
    return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
}

/* Ask for one socket (ino) or, with ino 0, every Unix socket of the
 * network namespace. */
static int udiag_send(int nl, uint32_t ino)
{
    struct {
        struct nlmsghdr h;
        struct unix_diag_req r;
    } req;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST | (ino ? 0 : NLM_F_DUMP);
    req.r.sdiag_family = AF_UNIX;
    req.r.udiag_states = ~0u;
    req.r.udiag_ino = ino;
    req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN |
                       UDIAG_SHOW_VFS | UDIAG_SHOW_MEMINFO;
    req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u; /* INET_DIAG_NOCOOKIE */
    struct sockaddr_nl nla = {.nl_family = AF_NETLINK};
    return sendto(nl, &req, sizeof req, 0, (struct sockaddr *)&nla, sizeof nla) < 0 ? -1 : 0;
}

/* One socket's sock_diag record, into d (icons point into buf). No
 * allocation: safe while the program is parked. Returns 0 or -errno. */
static int udiag_get(uint32_t ino, struct udiag *d, char *buf, size_t buflen)
{
    int nl = udiag_socket();
    if (nl < 0)
        return -errno;
    int ret = -EIO;
    if (udiag_send(nl, ino) < 0) {
        ret = -errno;
        goto out;
    }
    ssize_t n = recv(nl, buf, buflen, 0);
    if (n < 0) {
        ret = -errno;
        goto out;
    }
    const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
    if (!NLMSG_OK(h, (size_t)n))
        goto out;
    if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(h);
        ret = e->error ? e->error : -EIO;
        goto out;
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
        goto out;
    udiag_parse(h, d);
    ret = d->ino == ino ? 0 : -EIO;
out:
    close(nl);
    return ret;
}

/* Every Unix socket of the network namespace: fn(arg, message) for each
 * record of one NLM_F_DUMP (stops early when fn returns non-zero).
 * Returns 0 once the dump is whole, -1 if it failed part way. No
 * allocation: buf is the caller's (a dump message is at most 32 KiB). */
static int udiag_dump(int (*fn)(void *arg, const struct nlmsghdr *h), void *arg, char *buf,
                      size_t buflen)
{
    int nl = udiag_socket();
    if (nl < 0)
        return -1;
    int ret = -1;
    if (udiag_send(nl, 0) < 0)
        goto out;
    for (;;) {
        ssize_t n = recv(nl, buf, buflen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                ret = 0;
                goto out;
            }
            if (h->nlmsg_type == NLMSG_ERROR)
                goto out;
            if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && fn(arg, h))
                goto out;
        }
    }
out:
    close(nl);
    return ret;
}

/* ---- capture ------------------------------------------------------------ */

static union {
    struct ck_unix u;
    char raw[sizeof(struct ck_unix) + 8 * MAX_ICONS];
} cap_state;
static char cap_diag[64 << 10];
static char cap_path[4096 + 110];

/* The records of every Unix socket of the namespace, read with one dump
 * when a capture meets its first Unix socket and kept by inode (open
 * addressing; icons in an arena of their own): an exact lookup per
 * socket walks every Unix socket of the namespace in the kernel, so a
 * program with many of them paid for that many times over, and for four
 * system calls each. mmap'd (the capture runs in a signal handler) and
 * dropped when the capture ends. A socket missing from it (made by
 * someone else meanwhile) is looked up alone. */
struct ucached {
    struct udiag d;                     /* d.ino 0: a free slot; d.icons unset */
    size_t icons_at;                    /* into uc_icons */
};
static struct ucached *uc_tab;
static size_t uc_cap, uc_n;             /* slots (a power of 2), used */
static uint32_t *uc_icons;
static size_t uc_icap, uc_in;           /* arena: room, used (entries) */
static uint32_t uc_gen;
static int uc_ok;

static void *remap(void *old, size_t oldlen, size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (old) {
        memcpy(p, old, oldlen);
        munmap(old, oldlen);
    }
    return p;
}

static void uc_drop(void)
{
    if (uc_tab)
        munmap(uc_tab, uc_cap * sizeof *uc_tab);
    if (uc_icons)
        munmap(uc_icons, uc_icap * sizeof *uc_icons);
    uc_tab = NULL;
    uc_icons = NULL;
    uc_cap = uc_n = uc_icap = uc_in = 0;
    uc_ok = 0;
}

static struct ucached *uc_slot(struct ucached *tab, size_t cap, uint32_t ino)
{
    size_t i = (ino * 2654435761u) & (cap - 1);
    while (tab[i].d.ino && tab[i].d.ino != ino)
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

/* one dump record into the cache; non-zero: out of memory (stop) */
static int uc_add(void *arg, const struct nlmsghdr *h)
{
    (void)arg;
    struct udiag d;
    udiag_parse(h, &d);
    if (!d.ino)
        return 0;
    if ((uc_n + 1) * 2 > uc_cap) {
        size_t cap = uc_cap ? uc_cap * 2 : 1024;
        struct ucached *t = remap(NULL, 0, cap * sizeof *t);
        if (!t)
            return -1;
        for (size_t k = 0; k < uc_cap; k++)
            if (uc_tab[k].d.ino)
                *uc_slot(t, cap, uc_tab[k].d.ino) = uc_tab[k];
        if (uc_tab)
            munmap(uc_tab, uc_cap * sizeof *uc_tab);
        uc_tab = t;
        uc_cap = cap;
    }
    if (uc_in + d.nicons > uc_icap) {
        size_t cap = uc_icap ? uc_icap * 2 : 4096;
        while (cap < uc_in + d.nicons)
            cap *= 2;
        uint32_t *a = remap(uc_icons, uc_in * sizeof *a, cap * sizeof *a);
        if (!a)
            return -1;
        uc_icons = a;
        uc_icap = cap;
    }
    struct ucached *e = uc_slot(uc_tab, uc_cap, d.ino);
    if (!e->d.ino)
        uc_n++;
    memcpy(uc_icons + uc_in, d.icons, d.nicons * sizeof *uc_icons);
    e->d = d;
    e->d.icons = NULL;
    e->icons_at = uc_in;
    uc_in += d.nicons;
    return 0;
}

/* Socket ino's record for capture c, from the dump: 0 (d's icons point
 * into the cache, valid until the capture ends), or -1 if it has none. */
static int uc_get(const struct ck_fdcap *c, uint32_t ino, struct udiag *d)
{
    if (c->gen != uc_gen) {
        uc_gen = c->gen;
        uc_drop();
        uc_ok = udiag_dump(uc_add, NULL, cap_diag, sizeof cap_diag) == 0;
    }
    if (!uc_ok || !uc_tab)
        return -1;
    const struct ucached *e = uc_slot(uc_tab, uc_cap, ino);
    if (!e->d.ino)
        return -1;
    *d = e->d;
    d->icons = uc_icons + e->icons_at;
    return 0;
}

/* The unix sockets of this capture whose fdinfo did not say "scm_fds:
 * 0" (descriptors in flight in the queue, or a kernel that does not tell),
 * by inode: finish() walks their queues for descriptors. */
#define MAX_SCM 256
static uint64_t scm_ino[MAX_SCM];
static int nscm, scm_many;
static uint32_t scm_gen;

static void note_scm(const struct ck_fdcap *c)
{
    if (c->gen != scm_gen) {
        scm_gen = c->gen;
        nscm = scm_many = 0;
    }
    if (c->fi->scm_fds == 0)
        return;
    if (nscm < MAX_SCM)
        scm_ino[nscm++] = c->st->st_ino;
    else
        scm_many = 1;
}

static int may_hold_rights(uint64_t ino)
{
    for (int k = 0; k < nscm; k++)
        if (scm_ino[k] == ino)
            return 1;
    return scm_many;
}

/* Is the kernel dev_t kdev (major << 20 | minor) the user-space dev? */
static int same_dev(uint32_t kdev, dev_t dev)
{
    return (kdev >> 20) == major(dev) && (kdev & 0xfffff) == minor(dev);
}

static int unix_capture(struct ck_fdcap *c)
{
    if (!S_ISSOCK(c->st->st_mode) || c->family != AF_UNIX)
        return 0;
    struct ck_unix *u = &cap_state.u;
    memset(u, 0, sizeof *u);
    note_scm(c);
    u->ino = c->st->st_ino;
    struct udiag d;
    memset(&d, 0, sizeof d);
    int r = 0;
    if (u->ino > UINT32_MAX || uc_get(c, (uint32_t)u->ino, &d) < 0)
        r = udiag_get((uint32_t)u->ino, &d, cap_diag, sizeof cap_diag);
    /* sock_diag tells the type and the buffer sizes (UNIX_DIAG_MEMINFO) */
    struct ck_sock_known known = {.type = (int)d.type, .sndbuf = d.sndbuf, .rcvbuf = d.rcvbuf,
                                  .protocol = -1, .optmem = -1};
    ck_sock_capture(c, r < 0 ? NULL : &known, &u->so);
    if (r < 0) {
        snprintf(c->err, c->errlen, "fd %d is a unix %s socket (%s) whose state sock_diag does "
                 "not tell (%s), so ckshim cannot restore it", c->fd,
                 ck_sock_type_name((int)u->so.type), c->target, strerror(-r));
        return -1;
    }
    u->state = d.state;
    u->peer_ino = d.peer;
    u->so.shutdown = d.shut & (CK_SOCK_SHUT_RD | CK_SOCK_SHUT_WR);
    if (d.state == 10 /* TCP_LISTEN */) {
        u->flags |= CK_UNIXF_LISTEN;
        u->so.opts |= CK_SOCKO_LISTENING;
        u->backlog = d.wqueue;
        if (d.nicons > MAX_ICONS) {
            snprintf(c->err, c->errlen, "fd %d is a unix socket listening with %u clients "
                     "waiting to be accepted, more than ckshim keeps (%d)", c->fd, d.nicons,
                     MAX_ICONS);
            return -1;
        }
        u->nicons = d.nicons;
        for (uint32_t k = 0; k < d.nicons; k++) {
            uint64_t v = d.icons[k];
            memcpy(cap_state.raw + sizeof *u + 8 * k, &v, 8);
        }
    } else if (d.state == 1 /* TCP_ESTABLISHED */) {
        /* a datagram socket is marked so also when another connected to
         * it; it has a peer only if getpeername says so (below) */
        if (u->so.type != SOCK_DGRAM)
            u->flags |= CK_UNIXF_CONNECTED;
    }
    /* the bound name: UNIX_DIAG_NAME holds what getsockname gives */
    u->namelen = (uint16_t)d.namelen;
    memcpy(u->name, d.name, d.namelen);
    struct sockaddr_un sa;
    socklen_t sl = sizeof sa;
    if (d.state == 1 && getpeername(c->fd, (struct sockaddr *)&sa, &sl) == 0) {
        u->flags |= CK_UNIXF_CONNECTED;
        if (sl > SUN_OFF) {
            u->peerlen = (uint16_t)(sl - SUN_OFF);
            memcpy(u->peer, sa.sun_path, u->peerlen);
        }
    }
    if (u->namelen && u->name[0]) {
        /* bound to a path: where the file is, and whether it still is
         * this socket's (a name may be relative to the directory the
         * program was in when it bound) */
        char name[sizeof u->name + 1];
        memcpy(name, u->name, u->namelen);
        name[u->namelen] = 0;
        name[strnlen(name, u->namelen)] = 0;
        if (name[0] == '/') {
            snprintf(cap_path, sizeof cap_path, "%s", name);
        } else {
            ssize_t l = readlink("/proc/self/cwd", cap_path, 4096);
            if (l < 0)
                l = 0;
            snprintf(cap_path + l, sizeof cap_path - (size_t)l, "/%s", name);
            u->flags |= CK_UNIXF_RELATIVE;
        }
        struct stat st;
        if (d.has_vfs && lstat(name, &st) == 0 && S_ISSOCK(st.st_mode) &&
            st.st_ino == d.vfs_ino && same_dev(d.vfs_dev, st.st_dev))
            u->file_mode = st.st_mode & 07777;
        else
            u->flags |= CK_UNIXF_REMOVED;
        c->path = cap_path;
    }
    c->f->kind = CK_FD_UNIX;
    if (c->state(c, cap_state.raw, sizeof *u + 8 * (size_t)u->nicons) < 0) {
        snprintf(c->err, c->errlen, "fd %d: no room to save the state of a unix socket", c->fd);
        return -1;
    }
    return 1;
}

static char peek_buf[64 << 10];
static char peek_ctl[CMSG_SPACE(253 * sizeof(int)) + CMSG_SPACE(64)];
#define MAX_RIGHTS 253                  /* SCM_MAX_FD: descriptors in one message */
static int peek_fds[MAX_RIGHTS];
static int peek_nfds;

/* Keep the descriptors a peek received in peek_fds (closed by the caller
 * with drop_rights). */
static void take_rights(struct msghdr *mh)
{
    peek_nfds = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t j = 0; j < k; j++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + j * sizeof(int), sizeof fd);
            if (peek_nfds < MAX_RIGHTS)
                peek_fds[peek_nfds++] = fd;
            else
                close(fd);
        }
    }
}

static void drop_rights(void)
{
    for (int k = 0; k < peek_nfds; k++)
        close(peek_fds[k]);
    peek_nfds = 0;
}

/* Peek once at the queue of fd from the current peek offset. Returns
 * recvmsg's result (MSG_TRUNC: the message's remaining length); the
 * descriptors in flight with it are in peek_fds (copies: drop_rights). */
static ssize_t peek_once(int fd, int trunc, struct sockaddr_un *from, socklen_t *fromlen)
{
    struct iovec iov = {peek_buf, sizeof peek_buf};
    struct msghdr mh = {.msg_name = from,
                        .msg_namelen = from ? sizeof *from : 0,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = peek_ctl,
                        .msg_controllen = sizeof peek_ctl};
    peek_nfds = 0;
    ssize_t n = recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | trunc);
    if (n >= 0)
        take_rights(&mh);
    if (fromlen)
        *fromlen = mh.msg_namelen;
    return n;
}

static int same_file(int a, int b)
{
    pid_t pid = (pid_t)syscall(SYS_getpid);
    return syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b) == 0;
}

/* Walk fd's whole receive queue from the start, giving every descriptor
 * in flight (a copy) to fn, which closes it; the program's peek offset
 * is put back. Returns how many there were, -1 if the queue cannot be
 * walked (errno). *empty: a datagram or seqpacket message of no bytes was
 * seen (a peek at an offset never shows it again: the walk that saves
 * the queue would miss it). */
static int walk_rights(int fd, int type, int old, void (*fn)(void *arg, int rfd), void *arg,
                       int *empty)
{
    int inq = 0, seen = 0;
    if (ck_sock_peek_begin(fd, old) < 0)
        return -1;
    ioctl(fd, SIOCINQ, &inq);
    size_t got = 0;
    *empty = 0;
    for (uint32_t msgs = 0; msgs < MAX_MSGS; msgs++) {
        ssize_t n = peek_once(fd, type == SOCK_STREAM ? 0 : MSG_TRUNC, NULL, NULL);
        if (n < 0)
            break;
        for (int k = 0; k < peek_nfds; k++)
            fn(arg, peek_fds[k]);
        seen += peek_nfds;
        peek_nfds = 0;
        got += (size_t)n;
        /* end of file (shut for reading, or the peer closed) gives 0
         * once the queue is walked, not EAGAIN */
        if (n == 0 && type != SOCK_DGRAM && got >= (size_t)inq)
            break;
        if (n == 0)
            *empty = 1;
    }
    ck_sock_peek_end(fd, old);
    return seen;
}

static int *inflight;                   /* ck_unix_inflight's */
static int ninflight, maxinflight, inflight_base;
static int inflight_err;
static const int *inflight_prog;
static int inflight_nprog;

static void keep_inflight(void *arg, int rfd)
{
    (void)arg;
    for (int k = 0; k < inflight_nprog; k++)
        if (same_file(rfd, inflight_prog[k]))
            goto drop;
    for (int k = 0; k < ninflight; k++)
        if (same_file(rfd, inflight[k]))
            goto drop;
    if (ninflight >= maxinflight) {
        inflight_err = E2BIG;
        goto drop;
    }
    int h = fcntl(rfd, F_DUPFD_CLOEXEC, inflight_base);
    if (h < 0)
        inflight_err = errno;
    else
        inflight[ninflight++] = h;
drop:
    close(rfd);
}

static int unix_type(int fd)
{
    int type = 0;
    socklen_t l = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0)
        return -1;
    return type;
}

int ck_unix_inflight(int fd, const int *prog, int nprog, int *hidden, int *nhidden, int max,
                     char *err, size_t errlen)
{
    int top = 2;
    for (int k = 0; k < nprog; k++)
        if (prog[k] > top)
            top = prog[k];
    inflight = hidden;
    ninflight = *nhidden;
    maxinflight = max;
    inflight_base = top + 1;
    inflight_err = 0;
    inflight_prog = prog;
    inflight_nprog = nprog;
    int type = unix_type(fd), empty = 0, w, old = -1;
    socklen_t l = sizeof old;
    if (type < 0)
        return 0;
    getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old, &l);
    w = walk_rights(fd, type, old, keep_inflight, NULL, &empty);
    *nhidden = ninflight;
    if (w < 0) {
        snprintf(err, errlen, "fd %d: cannot walk the unix socket's queue (SO_PEEK_OFF): %s",
                 fd, strerror(errno));
        return -1;
    }
    if (empty && w > 0) {
        snprintf(err, errlen, "fd %d: a unix %s socket with descriptors in flight "
                 "(SCM_RIGHTS) and a message of no bytes waiting in its receive queue; ckshim "
                 "cannot copy both (let the program receive them first)", fd,
                 ck_sock_type_name(type));
        return -1;
    }
    if (inflight_err) {
        snprintf(err, errlen, "fd %d: cannot keep a copy of the descriptors in flight in "
                 "its queue (SCM_RIGHTS): %s", fd, strerror(inflight_err));
        return -1;
    }
    return 0;
}

static void drop_one(void *arg, int rfd)
{
    (void)arg;
    close(rfd);
}

/* The image fd that is the open file description rfd, or -1. */
static int image_fd_of(struct ck_fdcap_set *s, int rfd)
{
    for (uint32_t k = 0; k < s->n; k++)
        if (same_file(rfd, s->fds[k].fd))
            return s->fds[k].fd;
    return -1;
}

/* Save fd's receive queue as the saved bytes of image fd i. Returns 0,
 * or -1 with a message in s->err. */
static int save_queue(struct ck_fdcap_set *s, uint32_t i, struct ck_unix *u, int peer_fd)
{
    int fd = s->fds[i].fd;
    int ret = 0;
    ssize_t n = 0;
    int rights = 0, empty = 0;
    if (u->so.type == SOCK_STREAM && may_hold_rights(u->ino)) /* bytes, or messages (CK_UNIXF_SCM) */
        rights = walk_rights(fd, SOCK_STREAM, u->so.peek_off, drop_one, NULL, &empty);
    if (rights < 0 || ck_sock_peek_begin(fd, u->so.peek_off) < 0) {
        snprintf(s->err, s->errlen, "fd %d: cannot walk the unix socket's queue (SO_PEEK_OFF): "
                 "%s", fd, strerror(errno));
        return -1;
    }
    if (rights > 0)
        u->flags |= CK_UNIXF_SCM;
    int missing = -1;
    if (u->so.type == SOCK_STREAM && !rights) {
        int inq = 0;
        ioctl(fd, SIOCINQ, &inq);
        size_t got = 0;
        while (got < (size_t)inq && (n = peek_once(fd, 0, NULL, NULL)) > 0) {
            size_t take = (size_t)n < sizeof peek_buf ? (size_t)n : sizeof peek_buf;
            drop_rights();
            if (s->bytes(s, i, peek_buf, take) < 0)
                break;
            got += take;
        }
        if (got < (size_t)inq)
            ret = -1;
    } else {
        struct sockaddr_un from;
        socklen_t fl;
        int inq = 0;
        size_t got = 0;
        int stream = u->so.type == SOCK_STREAM;
        ioctl(fd, SIOCINQ, &inq); /* seqpacket: every byte waiting */
        for (;;) {
            n = peek_once(fd, stream ? 0 : MSG_TRUNC, stream ? NULL : &from, &fl);
            if (n < 0)
                break;
            if (stream)
                fl = 0;
            /* a seqpacket socket shut for reading gives 0 (end of file)
             * once its queue is walked, not EAGAIN; a stream too */
            if (n == 0 && u->so.type != SOCK_DGRAM && got >= (size_t)inq &&
                (stream || (u->so.shutdown & CK_SOCK_SHUT_RD))) {
                drop_rights();
                errno = EAGAIN;
                break;
            }
            if (u->ndgrams >= MAX_MSGS) {
                drop_rights();
                errno = E2BIG;
                ret = -1;
                break;
            }
            got += (size_t)n;
            struct ck_unix_msg m = {.len = (uint32_t)n, .nfds = (uint16_t)peek_nfds};
            int32_t nums[MAX_RIGHTS];
            for (int k = 0; k < peek_nfds; k++)
                if ((nums[k] = image_fd_of(s, peek_fds[k])) < 0)
                    missing = peek_fds[k];
            drop_rights();
            if (missing >= 0) {
                ret = -2;
                break;
            }
            if (m.nfds)
                u->flags |= CK_UNIXF_SCM;
            m.addrlen = fl > SUN_OFF ? (uint16_t)(fl - SUN_OFF) : 0;
            size_t take = (size_t)n < sizeof peek_buf ? (size_t)n : sizeof peek_buf;
            if (s->bytes(s, i, &m, sizeof m) < 0 || s->bytes(s, i, from.sun_path, m.addrlen) < 0 ||
                s->bytes(s, i, peek_buf, take) < 0) {
                ret = -1;
                break;
            }
            /* a message longer than the buffer: the rest, piece by piece */
            for (size_t left = (size_t)n - take; left > 0 && ret == 0;) {
                ssize_t k = peek_once(fd, MSG_TRUNC, NULL, NULL);
                drop_rights();
                size_t t = k < 0 ? 0 : (size_t)k < sizeof peek_buf ? (size_t)k : sizeof peek_buf;
                if (k < 0 || t > left || s->bytes(s, i, peek_buf, t) < 0)
                    ret = -1;
                left -= t;
            }
            if (ret == 0 && m.nfds && s->bytes(s, i, nums, m.nfds * sizeof nums[0]) < 0)
                ret = -1;
            if (ret)
                break;
            u->ndgrams++;
        }
        if (ret == 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            ret = -1;
    }
    int e = errno;
    ck_sock_peek_end(fd, u->so.peek_off);
    /* refilled once every fd is made, by the peer (unix_after) */
    if (ret == 0 && (u->flags & CK_UNIXF_SCM) &&
        (!(u->flags & (CK_UNIXF_PEER_IN | CK_UNIXF_DEAD)) || s->fds[i].fd <= 2)) {
        snprintf(s->err, s->errlen, "fd %d: a unix %s socket with descriptors in flight "
                 "(SCM_RIGHTS) waiting in its receive queue, sent by a socket that is not its "
                 "connected peer (in the process, or closed); ckshim can only put such messages "
                 "back from the peer (let the program receive them first)", fd,
                 ck_sock_type_name((int)u->so.type));
        return -1;
    }
    char from[40] = "";
    if (peer_fd >= 0)
        snprintf(from, sizeof from, ", sent by fd %d,", peer_fd);
    if (ret == -2)
        snprintf(s->err, s->errlen, "fd %d: a unix %s socket with a descriptor in flight "
                 "(SCM_RIGHTS)%s waiting in its receive queue that ckshim could not capture "
                 "(let the program receive it first)", fd,
                 ck_sock_type_name((int)u->so.type), from);
    else if (ret)
        snprintf(s->err, s->errlen, "fd %d: cannot copy the bytes waiting in a unix %s socket: "
                 "%s", fd, ck_sock_type_name((int)u->so.type), strerror(e));
    return ret ? -1 : 0;
}

static struct ck_unix *state_at(struct ck_fdcap_set *s, uint32_t i)
{
    if (s->fds[i].kind != CK_FD_UNIX || s->fds[i].share_with >= 0)
        return NULL;
    size_t len = 0;
    struct ck_unix *u = s->state(s, i, &len);
    return u && len >= sizeof *u ? u : NULL;
}

/* The index of the socket with inode ino in s, or -1. */
static int64_t find_ino(struct ck_fdcap_set *s, uint64_t ino)
{
    for (uint32_t k = 0; ino && k < s->n; k++)
        if (s->fds[k].kind == CK_FD_UNIX && s->fds[k].share_with < 0 && s->fds[k].ino == ino)
            return k;
    return -1;
}

/* The listener in s whose accept queue holds client ino, or NULL. */
static struct ck_unix *queued_on(struct ck_fdcap_set *s, uint64_t ino)
{
    for (uint32_t k = 0; k < s->n; k++) {
        struct ck_unix *l = state_at(s, k);
        if (!l || !(l->flags & CK_UNIXF_LISTEN))
            continue;
        const uint64_t *ic = (const uint64_t *)(l + 1);
        for (uint32_t j = 0; j < l->nicons; j++)
            if (ic[j] == ino)
                return l;
    }
    return NULL;
}

/* Standard descriptors that share a socket marked CK_FDF_STD_REDIRECT
 * (2>&1) become coord's own too, each its own. */
static void std_shares(struct ck_fdcap_set *s)
{
    for (uint32_t k = 0; k < s->n; k++) {
        struct ck_fd *f = &s->fds[k];
        if (f->fd > 2 || f->share_with < 0 || f->kind != CK_FD_UNIX)
            continue;
        for (uint32_t j = 0; j < s->n; j++)
            if (s->fds[j].fd == f->share_with && (s->fds[j].flags & CK_FDF_STD_REDIRECT))
                f->flags |= CK_FDF_STD_REDIRECT;
    }
}

static int unix_finish(struct ck_fdcap_set *s)
{
    uc_drop(); /* capture is over: nothing of it belongs in the image */
    for (uint32_t i = 0; i < s->n; i++) {
        struct ck_unix *u = state_at(s, i);
        if (!u)
            continue;
        int fd = s->fds[i].fd;
        u->flags &= ~(CK_UNIXF_PEER_IN | CK_UNIXF_DEAD | CK_UNIXF_QUEUED | CK_UNIXF_OUTSIDE |
                      CK_UNIXF_SCM);
        u->ndgrams = 0;
        if (u->flags & CK_UNIXF_CONNECTED) {
            struct ck_unix *l;
            if (find_ino(s, u->peer_ino) >= 0) {
                u->flags |= CK_UNIXF_PEER_IN;
            } else if (!u->peer_ino && (l = queued_on(s, u->ino))) {
                /* waiting to be accepted: what it sent sits in a socket
                 * the program has no descriptor of yet */
                int outq = 0;
                if (ioctl(fd, SIOCOUTQ, &outq) == 0 && outq > 0) {
                    snprintf(s->err, s->errlen, "fd %d: a unix %s connection waiting to be "
                             "accepted by listening fd %d has sent data not yet read; ckshim "
                             "cannot copy it (accept the connection first)", fd,
                             ck_sock_type_name((int)u->so.type),
                             s->fds[find_ino(s, l->ino)].fd);
                    return -1;
                }
                u->flags |= CK_UNIXF_QUEUED;
                u->peer_ino = l->ino;
            } else if (u->so.type == SOCK_DGRAM && u->peerlen) {
                u->flags |= CK_UNIXF_OUTSIDE;
            } else {
                u->flags |= CK_UNIXF_DEAD;
                /* a standard descriptor connected outside (a service's
                 * stdout to the journal): the restoring coord's own, as
                 * for a terminal or an outside pipe */
                if (s->fds[i].fd <= 2)
                    s->fds[i].flags |= CK_FDF_STD_REDIRECT;
            }
        }
        /* a stream or seqpacket socket never connected has no queue */
        if ((u->flags & CK_UNIXF_LISTEN) ||
            (u->so.type != SOCK_DGRAM && !(u->flags & CK_UNIXF_CONNECTED)))
            continue;
        if (s->nopeek && s->nopeek(s->fds[i].fd))
            continue; /* another process of the tree saves it */
        int64_t p = (u->flags & CK_UNIXF_PEER_IN) ? find_ino(s, u->peer_ino) : -1;
        if (save_queue(s, i, u, p >= 0 ? s->fds[p].fd : -1) < 0)
            return -1;
    }
    std_shares(s);
    return 0;
}

/* The sockets of several processes of a tree put together (coord's
 * merged set, docs/DESIGN.md "Process trees"): each process saw a peer or
 * a listener in another process as outside; what is in the set now is
 * inside. Queues are as each process saved them. */
int ck_unix_relink(struct ck_fdcap_set *s)
{
    for (uint32_t i = 0; i < s->n; i++) {
        struct ck_unix *u = state_at(s, i);
        struct ck_unix *l;
        if (!u || !(u->flags & CK_UNIXF_CONNECTED) || (u->flags & CK_UNIXF_PEER_IN))
            continue;
        if (find_ino(s, u->peer_ino) >= 0) {
            u->flags &= ~(CK_UNIXF_DEAD | CK_UNIXF_OUTSIDE | CK_UNIXF_QUEUED);
            u->flags |= CK_UNIXF_PEER_IN;
        } else if (!(u->flags & CK_UNIXF_QUEUED) && (u->flags & CK_UNIXF_DEAD) &&
                   (l = queued_on(s, u->ino))) {
            u->flags &= ~CK_UNIXF_DEAD;
            u->flags |= CK_UNIXF_QUEUED;
            u->peer_ino = l->ino;
        } else {
            continue;
        }
        s->fds[i].flags &= ~(uint32_t)CK_FDF_STD_REDIRECT; /* its peer comes back */
    }
    return 0;
}

/* ---- restore ------------------------------------------------------------ */

/* One socket of the image while coord makes them all. */
struct usock {
    uint32_t idx;                       /* into im->fds */
    const struct ck_fd *f;
    const struct ck_unix *u;
    const uint64_t *icons;
    const char *path;                   /* bound file's absolute path, or NULL */
    int fd;
    int pair;                           /* made with socketpair along with this one */
    int accepted;                       /* made by accept (named by its listener) */
    uint8_t *data;                      /* saved receive queue */
    size_t len;
    /* a removed name kept reachable until its messages are back
     * (bind_removed): the path to send to and remove, what to put back */
    char *reach, *aside, *tmpdir, *made;
    int bound;                          /* reach is the file of its bind: removed */
    int served;                         /* listened/connected to through its name */
    int filled;                         /* its waiting messages are back */
};

struct ubuild {
    struct usock *s;
    uint32_t n;
    struct ck_fdrest *r;
};

static void rfail(struct ck_fdrest *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rfail(struct ck_fdrest *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
}

static socklen_t to_addr(const char *name, uint32_t len, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (len > sizeof sa->sun_path)
        len = sizeof sa->sun_path;
    memcpy(sa->sun_path, name, len);
    return (socklen_t)(SUN_OFF + len);
}

/* The address to reach socket s at: its absolute path when it was bound
 * to a relative one (coord is not in that directory), else its name. */
static socklen_t addr_of(const struct usock *s, struct sockaddr_un *sa)
{
    if (s->reach && strlen(s->reach) < sizeof sa->sun_path)
        return to_addr(s->reach, (uint32_t)strlen(s->reach), sa);
    size_t pl = s->path ? strlen(s->path) : 0;
    if (pl && pl < sizeof sa->sun_path)
        return to_addr(s->path, (uint32_t)pl, sa);
    return to_addr(s->u->name, s->u->namelen, sa);
}

static struct usock *by_ino(struct ubuild *b, uint64_t ino)
{
    for (uint32_t k = 0; ino && k < b->n; k++)
        if (b->s[k].u->ino == ino)
            return &b->s[k];
    return NULL;
}

/* The listener of the process with this name, or NULL. */
static struct usock *listener_named(struct ubuild *b, const char *name, uint32_t len)
{
    for (uint32_t k = 0; len && k < b->n; k++) {
        const struct ck_unix *u = b->s[k].u;
        if ((u->flags & CK_UNIXF_LISTEN) && u->namelen == len && !memcmp(u->name, name, len))
            return &b->s[k];
    }
    return NULL;
}

/* s is the accepted end of a connection whose client is in the process
 * and whose listener is too: made by connect + accept. */
static struct usock *accepted_from(struct ubuild *b, struct usock *s)
{
    const struct ck_unix *u = s->u;
    if (!(u->flags & CK_UNIXF_PEER_IN) || u->so.type == SOCK_DGRAM || !u->namelen)
        return NULL;
    struct usock *l = listener_named(b, u->name, u->namelen);
    struct usock *p = by_ino(b, u->peer_ino);
    /* the client's peer name is the listener's; the client's own name is not */
    if (!l || !p || l == s || (p->u->namelen == u->namelen && !memcmp(p->u->name, u->name,
                                                                      u->namelen)))
        return NULL;
    return l;
}

static int serve(struct ubuild *b, struct usock *s);

/* Make the missing directories above path (0700); *top: the highest one
 * made (malloc'd), left NULL if none was missing. Returns 0 or -1. */
static int make_parents(const char *path, char **top)
{
    char buf[4200];
    struct stat st;
    snprintf(buf, sizeof buf, "%s", path);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return 0;
    *slash = 0;
    if (stat(buf, &st) == 0)
        return 0;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = 0;
        if (mkdir(buf, 0700) == 0) {
            if (!*top)
                *top = strdup(buf);
        } else if (errno != EEXIST) {
            return -1;
        }
        *p = c;
        if (!c)
            return 0;
    }
}

/* Remove the directories above path up to top (made by make_parents). */
static void remove_parents(const char *path, const char *top)
{
    char buf[4200];
    size_t tl = strlen(top);
    snprintf(buf, sizeof buf, "%s", path);
    for (char *slash; (slash = strrchr(buf, '/')) && (size_t)(slash - buf) >= tl;) {
        *slash = 0;
        rmdir(buf);
    }
}

/* Remove the file of a removed name bound again, the directories made for
 * it, and put back what was moved aside for it (bind_removed). Returns 0
 * or -1 (err set). */
static int unreach(struct ck_fdrest *r, struct usock *s)
{
    int ret = 0;
    if (s->reach && s->bound)
        unlink(s->reach); /* only what its own bind made (a failed one made nothing) */
    if (s->reach && s->made)
        remove_parents(s->reach, s->made);
    if (s->aside && rename(s->aside, s->path) < 0) {
        rfail(r, "fd %d: cannot put %s back after binding the unix socket there: %s", s->f->fd,
              s->path, strerror(errno));
        ret = -1;
    }
    if (s->tmpdir)
        rmdir(s->tmpdir);
    free(s->reach);
    free(s->aside);
    free(s->tmpdir);
    free(s->made);
    s->reach = s->aside = s->tmpdir = s->made = NULL;
    s->bound = 0;
    return ret;
}

/* Bind s, whose file was removed, to its name again; its file goes again
 * at once (unreach), and so do directories made for it (removed ones). A
 * relative name is bound in a directory of the moment: the name is the
 * same, and the directory goes with the file. An absolute one is bound at
 * its path; what is there
 * now (a file of the user's, such as a FIFO the program made there since;
 * check() refused anything else) is moved aside meanwhile. What needs
 * the name is done before it goes (serve). */
static int bind_removed(struct ubuild *b, struct usock *s, const struct sockaddr_un *sa,
                        socklen_t sl)
{
    struct ck_fdrest *r = b->r;
    const struct ck_unix *u = s->u;
    int rc, e = 0;
    if (u->flags & CK_UNIXF_RELATIVE) {
        char tmp[] = "/tmp/.ckshim-sock-XXXXXX";
        int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cwd < 0 || !mkdtemp(tmp) || chdir(tmp) < 0 || !(s->tmpdir = strdup(tmp)) ||
            asprintf(&s->reach, "%s/%.*s", tmp, (int)strnlen(u->name, u->namelen), u->name) < 0 ||
            make_parents(s->reach, &s->made) < 0) {
            rfail(r, "fd %d: cannot make a directory to bind the unix socket %.*s in: %s",
                  s->f->fd, (int)u->namelen, u->name, strerror(errno));
            if (cwd >= 0 && fchdir(cwd) == 0)
                close(cwd);
            unreach(r, s);
            return -2;
        }
        rc = bind(s->fd, (const struct sockaddr *)sa, sl);
        e = errno;
        if (fchdir(cwd) < 0 && rc == 0) {
            e = errno;
            rc = -1;
        }
        close(cwd);
    } else {
        struct stat st;
        if (make_parents(s->path, &s->made) < 0)
            return -1;
        if (lstat(s->path, &st) == 0 && st.st_uid != getuid()) {
            errno = EEXIST; /* never another user's (check() said so already) */
            return -1;
        }
        if (lstat(s->path, &st) == 0 && !(S_ISSOCK(st.st_mode) && unlink(s->path) == 0)) {
            if (asprintf(&s->aside, "%s.ckshim-aside-%d", s->path, (int)getpid()) < 0)
                s->aside = NULL;
            /* never over a file that has that name already */
            if (!s->aside || renameat2(AT_FDCWD, s->path, AT_FDCWD, s->aside,
                                       RENAME_NOREPLACE) < 0) {
                free(s->aside);
                s->aside = NULL;
                return -1;
            }
        }
        s->reach = strdup(s->path);
        rc = bind(s->fd, (const struct sockaddr *)sa, sl);
        e = errno;
    }
    if (rc < 0) {
        unreach(r, s);
        errno = e;
        return -1;
    }
    s->bound = 1;
    if (serve(b, s) < 0 || unreach(r, s) < 0)
        return -2;
    return 0;
}

/* Bind s to its name. A path: the file left by the checkpointed process
 * (check() made sure it is a stale socket file of ours) goes first; a
 * relative name is bound from its directory; a removed file: see
 * bind_removed. */
static int bind_one(struct ubuild *b, struct usock *s)
{
    struct ck_fdrest *r = b->r;
    const struct ck_unix *u = s->u;
    struct sockaddr_un sa;
    socklen_t sl = to_addr(u->name, u->namelen, &sa);
    int cwd = -1, ret = -1, rc;
    if (s->path && (u->flags & CK_UNIXF_REMOVED)) {
        rc = bind_removed(b, s, &sa, sl);
        if (rc == -2)
            return -1;
        goto bound;
    }
    if (s->path) {
        struct stat st;
        if (lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == getuid())
            unlink(s->path);
        if (u->flags & CK_UNIXF_RELATIVE) {
            char dir[4096];
            size_t pl = strlen(s->path), nl = strnlen(u->name, u->namelen);
            if (pl <= nl + 1 || pl - nl - 1 >= sizeof dir) {
                rfail(r, "fd %d: bad bound path %s in the image", s->f->fd, s->path);
                return -1;
            }
            memcpy(dir, s->path, pl - nl - 1);
            dir[pl - nl - 1] = 0;
            cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (cwd < 0 || chdir(dir[0] ? dir : "/") < 0) {
                rfail(r, "fd %d: cannot enter %s to bind the unix socket %s: %s", s->f->fd, dir,
                      s->path, strerror(errno));
                goto out;
            }
        }
    }
    /* the file gets its mode as it is made (umask): a chmod of the path
     * afterwards would follow whatever is at that path by then */
    mode_t um = 0;
    int set_mode = s->path && u->file_mode;
    if (set_mode)
        um = umask(~u->file_mode & 0777);
    rc = bind(s->fd, (struct sockaddr *)&sa, sl);
    if (set_mode) {
        int e = errno;
        umask(um);
        errno = e;
    }
bound:
    if (rc < 0) {
        if (s->path)
            rfail(r, "fd %d: cannot bind the unix socket to %s again: %s", s->f->fd, s->path,
                  strerror(errno));
        else
            rfail(r, "fd %d: cannot bind the unix socket to the abstract name @%.*s again: %s",
                  s->f->fd, (int)u->namelen - 1, u->name + 1, strerror(errno));
        goto out;
    }
    ret = 0;
out:
    if (cwd >= 0) {
        if (fchdir(cwd) < 0 && ret == 0) {
            rfail(r, "cannot go back to the working directory: %s", strerror(errno));
            ret = -1;
        }
        close(cwd);
    }
    return ret;
}

/* Raise the send buffer of fd so that a queue of len bytes (n messages)
 * fits when written again (an AF_UNIX queue is charged to its sender);
 * ck_sock_apply sets the saved size afterwards. */
static void room_for(int fd, size_t len, uint32_t n)
{
    int big = (int)(len + 1024 * (size_t)(n + 1) + 65536);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
}

/* The next saved message of s at *off (a struct ck_unix_msg, the
 * sender's name, the data). Returns 1, 0 at the end, -1 if damaged. */
static int next_msg(const struct usock *s, size_t *off, struct ck_unix_msg *m, const char **addr,
                    const uint8_t **data, const uint8_t **fds)
{
    if (*off == s->len)
        return 0;
    if (*off + sizeof *m > s->len)
        return -1;
    memcpy(m, s->data + *off, sizeof *m);
    *off += sizeof *m;
    if (m->addrlen > 108 || *off + m->addrlen + m->len > s->len)
        return -1;
    *addr = (const char *)s->data + *off;
    *off += m->addrlen;
    *data = s->data + *off;
    *off += m->len;
    if (*off + m->nfds * sizeof(int32_t) > s->len)
        return -1;
    *fds = s->data + *off;
    *off += m->nfds * sizeof(int32_t);
    return 1;
}

/* A socket of the moment to send a message whose sender is no longer in
 * the process, bound to the sender's name when that is free (an abstract
 * name, or an absolute path that does not exist: its file is removed at
 * once), so that recvfrom still names it; else unnamed. */
static int sender_gone(uint32_t type, const char *addr, uint16_t addrlen)
{
    int fd = socket(AF_UNIX, (int)type | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa;
    socklen_t sl = to_addr(addr, addrlen, &sa);
    struct stat st;
    if (fd < 0 || !addrlen || addrlen >= sizeof sa.sun_path)
        return fd;
    if (!addr[0]) {
        bind(fd, (struct sockaddr *)&sa, sl);
    } else if (addr[0] == '/' && lstat(sa.sun_path, &st) < 0 && errno == ENOENT &&
               bind(fd, (struct sockaddr *)&sa, sl) == 0) {
        unlink(sa.sun_path);
    }
    return fd;
}

/* Send one saved message to s again: from its socket-pair peer, else
 * from the program's socket named as its sender, else from a socket of
 * the moment (sender_gone). */
static int send_dgram(struct ubuild *b, struct usock *s, const struct ck_unix_msg *m,
                      const char *addr, const uint8_t *data)
{
    const struct ck_unix *u = s->u;
    int from = -1, tmp = -1;
    struct sockaddr_un sa;
    socklen_t sl = 0;
    struct usock *p = (u->flags & CK_UNIXF_PEER_IN) ? by_ino(b, u->peer_ino) : NULL;
    if (p && p->pair == 1 + (int)(s - b->s)) {
        from = p->fd; /* a socket pair: only the other end can send */
    } else if (u->namelen) {
        sl = addr_of(s, &sa);
        for (uint32_t k = 0; m->addrlen && k < b->n; k++)
            if (b->s[k].u->namelen == m->addrlen && !memcmp(b->s[k].u->name, addr, m->addrlen) &&
                b->s[k].fd >= 0)
                from = b->s[k].fd;
        if (from < 0)
            from = tmp = sender_gone(u->so.type, addr, m->addrlen);
    }
    if (from < 0) {
        rfail(b->r, "fd %d: no way to put back the messages waiting in an unnamed unix %s "
              "socket that has no peer", s->f->fd, ck_sock_type_name((int)u->so.type));
        return -1;
    }
    room_for(from, s->len, u->ndgrams);
    ssize_t w = sl ? sendto(from, data, m->len, MSG_DONTWAIT | MSG_NOSIGNAL,
                            (struct sockaddr *)&sa, sl)
                   : send(from, data, m->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    int e = errno;
    if (tmp >= 0)
        close(tmp);
    if (w != (ssize_t)m->len) {
        rfail(b->r, "fd %d: cannot put back a %u-byte message waiting in a unix %s socket: %s",
              s->f->fd, m->len, ck_sock_type_name((int)u->so.type),
              w < 0 ? strerror(e) : "short write");
        return -1;
    }
    return 0;
}

/* Send every saved message of s again (datagram: send_dgram; seqpacket:
 * from its peer p). Returns 0 or -1 (message in r->err). */
static int refill_msgs(struct ubuild *b, struct usock *s, struct usock *p)
{
    size_t off = 0;
    struct ck_unix_msg m;
    const char *addr;
    const uint8_t *data, *fds;
    int k;
    while ((k = next_msg(s, &off, &m, &addr, &data, &fds)) > 0) {
        if (!p) {
            if (send_dgram(b, s, &m, addr, data) < 0)
                return -1;
            continue;
        }
        ssize_t w = send(p->fd, data, m.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w != (ssize_t)m.len) {
            rfail(b->r, "fd %d: cannot put back a %u-byte message waiting in a unix seqpacket "
                  "socket: %s", s->f->fd, m.len, w < 0 ? strerror(errno) : "short write");
            return -1;
        }
    }
    if (k < 0)
        rfail(b->r, "fd %d: the saved messages of a unix socket are damaged", s->f->fd);
    return k < 0 ? -1 : 0;
}

/* The other ends of dead connections whose queue carries descriptors in
 * flight, kept above maxfd until unix_after has sent the messages; by
 * image index. */
static struct late_sender {
    uint32_t idx;
    int fd;
} *late;
static uint32_t nlate;

/* A dead connection whose messages carry descriptors: a pair, the other
 * end kept (late) to send them once every fd is made, then closed. */
static int dead_scm(struct ubuild *b, struct usock *s)
{
    int sp[2];
    struct late_sender *nl = realloc(late, (nlate + 1) * sizeof *late);
    if (!nl || socketpair(AF_UNIX, (int)s->u->so.type | SOCK_CLOEXEC, 0, sp) < 0) {
        rfail(b->r, "fd %d: cannot make a unix socket pair: %s", s->f->fd,
              nl ? strerror(errno) : "out of memory");
        return -1;
    }
    late = nl;
    int fd = fcntl(sp[1], F_DUPFD_CLOEXEC, b->r->maxfd + 1);
    close(sp[1]);
    if (fd < 0) {
        close(sp[0]);
        rfail(b->r, "fd %d: cannot keep a unix socket aside: %s", s->f->fd, strerror(errno));
        return -1;
    }
    late[nlate].idx = s->idx;
    late[nlate++].fd = fd;
    s->fd = sp[0];
    return 0;
}

/* A connection whose peer is outside: the end of a pair whose other end
 * closed, with the waiting bytes. */
static int make_dead(struct ubuild *b, struct usock *s)
{
    const struct ck_unix *u = s->u;
    if (u->flags & CK_UNIXF_SCM)
        return dead_scm(b, s);
    uint32_t *lens = NULL, nlens = 0;
    uint8_t *data = s->data;
    size_t len = s->len;
    if (u->so.type != SOCK_STREAM) {
        /* the messages' data, one after another, and their lengths */
        lens = calloc((size_t)u->ndgrams + 1, sizeof *lens);
        data = malloc(s->len + 1);
        size_t off = 0;
        struct ck_unix_msg m;
        const char *addr;
        const uint8_t *d, *fds;
        int k = 0;
        len = 0;
        while (lens && data && nlens <= u->ndgrams &&
               (k = next_msg(s, &off, &m, &addr, &d, &fds)) > 0) {
            memcpy(data + len, d, m.len);
            len += m.len;
            lens[nlens++] = m.len;
        }
        if (!lens || !data || k != 0) {
            rfail(b->r, "fd %d: %s", s->f->fd, k ? "the saved messages of a unix socket are "
                  "damaged" : "out of memory");
            free(lens);
            free(data);
            return -1;
        }
    }
    char err[256];
    s->fd = ck_sock_dead((int)u->so.type, data, len, lens, nlens, err, sizeof err);
    if (s->fd < 0)
        rfail(b->r, "fd %d: a unix %s connection to outside the program: %s", s->f->fd,
              ck_sock_type_name((int)u->so.type), err);
    if (lens)
        free(data);
    free(lens);
    return s->fd < 0 ? -1 : 0;
}

/* Everything that reaches s through its name, while it has one: a
 * listener listens, its accepted connections are made again (connect,
 * accept), then its waiting clients connect in their queue order (one
 * that closed, or of another process, gets a stand-in that closes at
 * once: accept still gives that connection, at end of file). A datagram
 * socket gets its waiting messages, then the program's datagram
 * sockets connected to it connect. Returns 0 or -1 (err set). */
static int serve(struct ubuild *b, struct usock *s)
{
    struct ck_fdrest *r = b->r;
    const struct ck_unix *u = s->u;
    struct sockaddr_un sa;
    socklen_t sl = addr_of(s, &sa);
    if (s->served || s->fd < 0 || (u->flags & CK_UNIXF_DEAD))
        return 0;
    s->served = 1;
    if (u->flags & CK_UNIXF_LISTEN) {
        if (listen(s->fd, (int)u->backlog) < 0) {
            rfail(r, "fd %d: cannot listen on the unix socket %s again: %s", s->f->fd,
                  s->path ? s->path : "", strerror(errno));
            return -1;
        }
        for (uint32_t k = 0; k < b->n; k++) {
            struct usock *a = &b->s[k];
            if (accepted_from(b, a) != s)
                continue;
            struct usock *c = by_ino(b, a->u->peer_ino);
            int fl = fcntl(c->fd, F_GETFL);
            fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
            a->accepted = 1;
            if (connect(c->fd, (struct sockaddr *)&sa, sl) < 0 ||
                (a->fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
                rfail(r, "fd %d: cannot connect again to the unix socket listening on fd %d: %s",
                      c->f->fd, s->f->fd, strerror(errno));
                return -1;
            }
        }
        for (uint32_t j = 0; j < u->nicons; j++) {
            struct usock *c = by_ino(b, s->icons[j]);
            int fd = c && (c->u->flags & CK_UNIXF_QUEUED)
                         ? c->fd
                         : socket(AF_UNIX, (int)u->so.type | SOCK_CLOEXEC, 0);
            int fl = fcntl(fd, F_GETFL);
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
            int e = connect(fd, (struct sockaddr *)&sa, sl) < 0 ? errno : 0;
            if (fd != (c ? c->fd : -1))
                close(fd);
            if (e) {
                rfail(r, "fd %d: cannot queue a connection to the unix socket listening on fd %d "
                      "again: %s", c ? c->f->fd : s->f->fd, s->f->fd, strerror(e));
                return -1;
            }
        }
        return 0;
    }
    if (u->so.type != SOCK_DGRAM)
        return 0;
    if (s->len && !s->filled && refill_msgs(b, s, NULL) < 0)
        return -1;
    s->filled = 1;
    for (uint32_t k = 0; k < b->n; k++) {
        struct usock *c = &b->s[k];
        if (c->u->so.type != SOCK_DGRAM || c->pair || c->fd < 0 ||
            !(c->u->flags & CK_UNIXF_PEER_IN) || c->u->peer_ino != u->ino)
            continue;
        if (connect(c->fd, (struct sockaddr *)&sa, sl) < 0) {
            rfail(r, "fd %d: cannot connect the unix datagram socket to fd %d again: %s",
                  c->f->fd, s->f->fd, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int build_all(struct ck_fdrest *r)
{
    const struct ck_image *im = r->im;
    struct ubuild b = {.r = r};
    int ret = -1;
    b.s = calloc(im->nfds ? im->nfds : 1, sizeof *b.s);
    if (!b.s) {
        rfail(r, "out of memory");
        return -1;
    }
    for (uint32_t k = 0; k < im->nfds; k++) {
        const struct ck_fd *f = &im->fds[k];
        size_t sl = 0;
        const struct ck_unix *u = f->kind == CK_FD_UNIX && f->share_with < 0 &&
                                          !(f->flags & CK_FDF_STD_REDIRECT)
                                      ? r->state_of(r, k, &sl)
                                      : NULL;
        if (!u)
            continue;
        if (sl < sizeof *u || sl < sizeof *u + 8 * (size_t)u->nicons) {
            rfail(r, "fd %d: the saved state of a unix socket is damaged", f->fd);
            goto out;
        }
        struct usock *s = &b.s[b.n++];
        s->idx = k;
        s->f = f;
        s->u = u;
        s->icons = (const uint64_t *)(u + 1);
        s->path = u->namelen && u->name[0] && im->fd_paths[k][0] == '/' ? im->fd_paths[k] : NULL;
        s->fd = -1;
        if (r->bytes(r, f->fd, &s->data, &s->len) < 0) {
            rfail(r, "fd %d: cannot read the saved bytes of a unix socket", f->fd);
            goto out;
        }
    }
    /* 1. create: socket pairs, dead connections, the rest */
    for (uint32_t k = 0; k < b.n; k++) {
        struct usock *s = &b.s[k];
        const struct ck_unix *u = s->u;
        if (s->fd >= 0 || accepted_from(&b, s))
            continue;
        if (u->flags & CK_UNIXF_DEAD) {
            if (make_dead(&b, s) < 0)
                goto out;
            continue;
        }
        struct usock *p = (u->flags & CK_UNIXF_PEER_IN) ? by_ino(&b, u->peer_ino) : NULL;
        /* the two ends of one connection (a socket pair, or an accepted
         * connection whose listener is gone; datagram sockets connected
         * to each other with one unnamed) */
        if (p && p->fd < 0 && p->u->peer_ino == u->ino && !accepted_from(&b, p) &&
            (u->so.type != SOCK_DGRAM || !u->namelen || !p->u->namelen)) {
            int sp[2];
            if (socketpair(AF_UNIX, (int)u->so.type | SOCK_CLOEXEC, 0, sp) < 0) {
                rfail(r, "fd %d: cannot make a unix socket pair: %s", s->f->fd, strerror(errno));
                goto out;
            }
            s->fd = sp[0];
            p->fd = sp[1];
            s->pair = 1 + (int)(p - b.s);
            p->pair = 1 + (int)k;
            continue;
        }
        s->fd = ck_sock_new(&u->so);
        if (s->fd < 0) {
            rfail(r, "fd %d: cannot make a unix %s socket: %s", s->f->fd,
                  ck_sock_type_name((int)u->so.type), strerror(errno));
            goto out;
        }
    }
    /* 2. bind: removed paths first (a new socket may be at that path;
     * what needs their names is done while they have one: serve) */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t k = 0; k < b.n; k++) {
            struct usock *s = &b.s[k];
            const struct ck_unix *u = s->u;
            if (s->fd < 0 || s->accepted || !u->namelen || (u->flags & CK_UNIXF_DEAD) ||
                (pass == 0) != !!(u->flags & CK_UNIXF_REMOVED))
                continue;
            /* the ends of a stream or seqpacket socket pair come unnamed
             * (an accepted end's name was its listener's, gone) */
            if (s->pair && u->so.type != SOCK_DGRAM)
                continue;
            if (bind_one(&b, s) < 0)
                goto out;
        }
    /* 3. datagram queues, before anyone connects (a connected datagram
     * socket takes messages from its peer only) */
    for (uint32_t k = 0; k < b.n; k++) {
        struct usock *s = &b.s[k];
        if (s->u->so.type != SOCK_DGRAM || (s->u->flags & CK_UNIXF_DEAD) || s->filled)
            continue;
        /* with descriptors in flight: once they are made (unix_after) */
        if (s->len && !(s->u->flags & CK_UNIXF_SCM) && refill_msgs(&b, s, NULL) < 0)
            goto out;
        s->filled = 1;
    }
    /* 4. what goes through a name: listeners with their connections,
     * datagram sockets connected to one of the program's */
    for (uint32_t k = 0; k < b.n; k++)
        if (serve(&b, &b.s[k]) < 0)
            goto out;
    /* datagram sockets connected to a name outside (a datagram has no
     * connection to lose); nobody there: a dead end */
    for (uint32_t k = 0; k < b.n; k++) {
        struct usock *s = &b.s[k];
        const struct ck_unix *u = s->u;
        if (u->so.type != SOCK_DGRAM || !(u->flags & CK_UNIXF_OUTSIDE))
            continue;
        struct sockaddr_un sa;
        socklen_t sl = to_addr(u->peer, u->peerlen, &sa);
        if (!u->peerlen || connect(s->fd, (struct sockaddr *)&sa, sl) < 0)
            shutdown(s->fd, SHUT_RDWR);
    }
    /* 5. stream and seqpacket queues, written again by the peer */
    for (uint32_t k = 0; k < b.n; k++) {
        struct usock *s = &b.s[k];
        const struct ck_unix *u = s->u;
        struct usock *p = by_ino(&b, u->peer_ino);
        if (u->so.type == SOCK_DGRAM || !(u->flags & CK_UNIXF_PEER_IN) || !p || !s->len ||
            (u->flags & CK_UNIXF_SCM))
            continue;
        room_for(p->fd, s->len, u->ndgrams);
        if (u->so.type == SOCK_SEQPACKET) {
            if (refill_msgs(&b, s, p) < 0)
                goto out;
            continue;
        }
        for (size_t off = 0; off < s->len;) {
            ssize_t w = send(p->fd, s->data + off, s->len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w <= 0) {
                rfail(r, "fd %d: cannot put back %zu bytes waiting in a unix stream socket: %s",
                      s->f->fd, s->len - off, w < 0 ? strerror(errno) : "short write");
                goto out;
            }
            off += (size_t)w;
        }
    }
    /* 6. options, O_NONBLOCK, shutdown; then aside until coord places them */
    for (uint32_t k = 0; k < b.n; k++) {
        struct usock *s = &b.s[k];
        char err[200];
        if (ck_sock_apply(s->fd, &s->u->so, s->f->oflags, err, sizeof err) < 0) {
            rfail(r, "fd %d: unix socket: %s", s->f->fd, err);
            goto out;
        }
        if (!(s->u->flags & CK_UNIXF_DEAD) && ck_sock_shutdown(s->fd, s->u->so.shutdown) < 0 &&
            errno != ENOTCONN) {
            rfail(r, "fd %d: cannot shut the unix socket down again: %s", s->f->fd,
                  strerror(errno));
            goto out;
        }
    }
    for (uint32_t k = 0; k < b.n; k++) {
        struct usock *s = &b.s[k];
        r->stash[s->idx] = fcntl(s->fd, F_DUPFD_CLOEXEC, r->maxfd + 1);
        if (r->stash[s->idx] < 0) {
            rfail(r, "fd %d: cannot keep the unix socket aside: %s", s->f->fd, strerror(errno));
            goto out;
        }
    }
    ret = 0;
out:
    for (uint32_t k = 0; k < b.n; k++) {
        if (b.s[k].reach || b.s[k].aside || b.s[k].tmpdir || b.s[k].made)
            unreach(r, &b.s[k]);
        if (b.s[k].fd >= 0)
            close(b.s[k].fd);
        free(b.s[k].data);
    }
    free(b.s);
    return ret;
}

static int unix_restore(struct ck_fdrest *r)
{
    static const struct ck_image *built; /* the image whose sockets are made */
    if (r->f->flags & CK_FDF_STD_REDIRECT) {
        int fd = r->std(r);
        if (fd < 0)
            rfail(r, "fd %d: cannot put the restoring coord's own in place of a unix "
                  "connection to outside: %s", r->f->fd, strerror(errno));
        return fd;
    }
    if (built != r->im) {
        /* the first unix socket of the image: make them all */
        built = r->im;
        if (build_all(r) < 0)
            return -1;
    }
    int fd = r->stash[r->i];
    r->stash[r->i] = -1;
    if (fd < 0)
        rfail(r, "fd %d: the unix socket was not made", r->f->fd);
    return fd;
}

/* A queue with descriptors in flight (CK_UNIXF_SCM), once every fd of
 * the image is in place (those in flight too, CK_FDF_IN_FLIGHT): each
 * message sent again by the peer with its descriptors. */
static int unix_after(struct ck_fdrest *r)
{
    size_t sl = 0;
    const struct ck_unix *u = r->state_of(r, r->i, &sl);
    if (!u || sl < sizeof *u || !(u->flags & CK_UNIXF_SCM) || (r->f->flags & CK_FDF_STD_REDIRECT))
        return 0;
    int peer = -1, own = 0;
    for (uint32_t k = 0; k < nlate; k++)
        if (late[k].idx == r->i) {
            peer = late[k].fd; /* a dead connection's other end: closed when done */
            late[k].fd = -1;
            own = 1;
        }
    for (uint32_t k = 0; !own && k < r->im->nfds; k++) {
        const struct ck_fd *f = &r->im->fds[k];
        size_t pl = 0;
        const struct ck_unix *pu = f->kind == CK_FD_UNIX && f->share_with < 0
                                       ? r->state_of(r, k, &pl) : NULL;
        if (pu && pl >= sizeof *pu && pu->ino == u->peer_ino)
            peer = f->fd;
    }
    if (peer < 0) {
        rfail(r, "fd %d: the peer that sends the descriptors in flight in its queue is "
              "missing", r->f->fd);
        return -1;
    }
    struct usock s = {.f = r->f, .u = u};
    if (r->bytes(r, r->f->fd, &s.data, &s.len) < 0) {
        rfail(r, "fd %d: cannot read the saved bytes of a unix socket", r->f->fd);
        return -1;
    }
    room_for(peer, s.len, u->ndgrams);
    size_t off = 0;
    struct ck_unix_msg m;
    const char *addr;
    const uint8_t *data, *fds;
    int k, ret = 0;
    while (ret == 0 && (k = next_msg(&s, &off, &m, &addr, &data, &fds)) > 0) {
        char ctl[CMSG_SPACE(MAX_RIGHTS * sizeof(int))];
        struct iovec iov = {(void *)data, m.len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (m.nfds > MAX_RIGHTS) {
            k = -1;
            break;
        }
        if (m.nfds) {
            memset(ctl, 0, sizeof ctl);
            mh.msg_control = ctl;
            mh.msg_controllen = CMSG_SPACE(m.nfds * sizeof(int));
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(m.nfds * sizeof(int));
            memcpy(CMSG_DATA(cm), fds, m.nfds * sizeof(int));
        }
        ssize_t w = sendmsg(peer, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w != (ssize_t)m.len) {
            rfail(r, "fd %d: cannot put back a %u-byte message with %u descriptors in flight "
                  "waiting in a unix %s socket: %s", r->f->fd, m.len, m.nfds,
                  ck_sock_type_name((int)u->so.type), w < 0 ? strerror(errno) : "short write");
            ret = -1;
        }
    }
    if (ret == 0 && k < 0) {
        rfail(r, "fd %d: the saved messages of a unix socket are damaged", r->f->fd);
        ret = -1;
    }
    free(s.data);
    if (own)
        close(peer);
    return ret;
}

/* ---- check -------------------------------------------------------------- */

/* Names and bound files of every Unix socket of this network namespace,
 * read once per coord. */
static struct {
    int done;
    uint32_t n;
    struct udiag *d;
} live;

static int live_add(void *arg, const struct nlmsghdr *h)
{
    static uint32_t cap;
    (void)arg;
    if (live.n == cap) {
        uint32_t ncap = cap ? 2 * cap : 256;
        struct udiag *nd = realloc(live.d, ncap * sizeof *nd);
        if (!nd)
            return -1;
        live.d = nd;
        cap = ncap;
    }
    udiag_parse(h, &live.d[live.n]);
    live.d[live.n].icons = NULL;
    live.n++;
    return 0;
}

static void live_read(void)
{
    static char buf[1 << 16];
    if (live.done)
        return;
    live.done = 1;
    udiag_dump(live_add, NULL, buf, sizeof buf);
}

/* Is a socket of this namespace bound to the file st, or to the abstract
 * name? */
static int name_in_use(const struct stat *st, const char *name, uint32_t len)
{
    live_read();
    for (uint32_t k = 0; k < live.n; k++) {
        const struct udiag *d = &live.d[k];
        if (st && d->has_vfs && d->vfs_ino == st->st_ino && same_dev(d->vfs_dev, st->st_dev))
            return 1;
        if (!st && d->namelen == len && !memcmp(d->name, name, len))
            return 1;
    }
    return 0;
}

static int unix_check(struct ck_fdrest *r)
{
    const struct ck_unix *u = r->state;
    if (!u || r->state_len < sizeof *u) {
        rfail(r, "fd %d: a unix socket without its saved state", r->f->fd);
        return -1;
    }
    if (u->so.type != SOCK_STREAM && u->ndgrams && r->f->share_with < 0) {
        /* each message takes a struct ck_unix_msg of the saved bytes at
         * least (make_dead counts their lengths in an array that big) */
        uint8_t *d = NULL;
        size_t n = 0;
        if (r->bytes(r, r->f->fd, &d, &n) < 0)
            return -1;
        free(d);
        if (u->ndgrams > n / sizeof(struct ck_unix_msg)) {
            rfail(r, "fd %d: the saved state of a unix socket is damaged (%u messages in %zu "
                  "bytes)", r->f->fd, u->ndgrams, n);
            return -1;
        }
    }
    if (r->f->share_with >= 0 || !u->namelen || (u->flags & CK_UNIXF_DEAD))
        return 0;
    if (!u->name[0]) {
        if (name_in_use(NULL, u->name, u->namelen)) {
            rfail(r, "fd %d: the abstract unix socket name @%.*s is in use by another socket; "
                  "ckshim cannot bind the program's socket to it", r->f->fd,
                  (int)u->namelen - 1, u->name + 1);
            return -1;
        }
        return 0;
    }
    if (r->path[0] == '/') {
        /* restore unlinks, moves aside and binds at the path: it must be
         * the socket's own name (relative: that name in its directory) */
        size_t nl = strnlen(u->name, u->namelen), pl = strlen(r->path);
        int same = (u->flags & CK_UNIXF_RELATIVE)
                       ? u->name[0] != '/' && pl > nl + 1 && r->path[pl - nl - 1] == '/' &&
                             !memcmp(r->path + pl - nl, u->name, nl)
                       : pl == nl && !memcmp(r->path, u->name, nl);
        if (!same) {
            rfail(r, "fd %d: the image is damaged: the unix socket's path %s is not its name "
                  "%.*s", r->f->fd, r->path, (int)nl, u->name);
            return -1;
        }
    }
    if ((u->flags & CK_UNIXF_REMOVED) && (u->flags & CK_UNIXF_RELATIVE)) {
        /* bound in a directory of the moment (bind_removed), which a
         * name with ".." leaves: its file would be made, and removed,
         * wherever that leads */
        char name[sizeof u->name + 1];
        snprintf(name, sizeof name, "%.*s", (int)strnlen(u->name, u->namelen), u->name);
        if (ck_path_climbs(name)) {
            rfail(r, "fd %d: cannot bind the unix socket to its removed name %s again: the "
                  "name goes up a directory (\"..\"), out of the directory ckshim binds it in",
                  r->f->fd, name);
            return -1;
        }
        return 0;
    }
    if (r->path[0] != '/')
        return 0;
    struct stat st;
    if (lstat(r->path, &st) < 0) {
        if (errno == ENOENT)
            return 0; /* free (a missing directory fails the bind, named) */
        rfail(r, "fd %d: cannot look at %s, where the unix socket was bound: %s", r->f->fd,
              r->path, strerror(errno));
        return -1;
    }
    const char *why = NULL;
    if ((u->flags & CK_UNIXF_REMOVED) && st.st_uid == getuid() && !S_ISDIR(st.st_mode) &&
        (!S_ISSOCK(st.st_mode) || !name_in_use(&st, NULL, 0)))
        return 0; /* moved aside for the moment of the bind (bind_removed) */
    if (!S_ISSOCK(st.st_mode))
        why = "something that is not a socket is there";
    else if (st.st_uid != getuid())
        why = "a socket file of another user is there";
    else if (name_in_use(&st, NULL, 0))
        why = "a socket is bound there (another process listens on it)";
    if (why) {
        rfail(r, "fd %d: cannot bind the unix socket to %s again: %s; remove it or free the "
              "path", r->f->fd, r->path, why);
        return -1;
    }
    return 0;
}

/* ---- description -------------------------------------------------------- */

void ck_unix_describe(const struct ck_fd *f, const void *state, size_t len, char *out,
                      size_t outlen)
{
    const struct ck_unix *u = state;
    if (!u || len < sizeof *u) {
        snprintf(out, outlen, "unix socket");
        return;
    }
    char name[120] = "unnamed";
    if (u->namelen && u->name[0])
        snprintf(name, sizeof name, "%.*s", (int)strnlen(u->name, u->namelen), u->name);
    else if (u->namelen)
        snprintf(name, sizeof name, "@%.*s", (int)u->namelen - 1, u->name + 1);
    const char *what = (u->flags & CK_UNIXF_LISTEN)   ? "listening"
                       : (u->flags & CK_UNIXF_DEAD)   ? "connected outside (dead after restore)"
                       : (u->flags & CK_UNIXF_QUEUED) ? "waiting to be accepted"
                       : (u->flags & CK_UNIXF_OUTSIDE) ? "connected outside (by name)"
                       : (u->flags & CK_UNIXF_PEER_IN) ? "connected inside"
                                                      : "not connected";
    snprintf(out, outlen, "unix %s socket %s, %s%s", ck_sock_type_name((int)u->so.type), name,
             what, (u->flags & CK_UNIXF_REMOVED) ? ", file removed" : "");
}

/* Dead connections and lost waiting clients of an image, for the
 * checkpoint's notes: "fd 5 (...), fd 9 (...)". Returns how many. */
int ck_unix_outside(const struct ck_image *im, char *out, size_t outlen)
{
    int count = 0;
    size_t o = 0;
    out[0] = 0;
    for (uint32_t i = 0; im->fdstate && i < im->nfds; i++) {
        const struct ck_fd *f = &im->fds[i];
        const struct ck_unix *u = im->fdstate[i].data;
        size_t len = im->fdstate[i].len;
        if (f->kind != CK_FD_UNIX || f->share_with >= 0 || !u || len < sizeof *u)
            continue;
        char peer[130] = "a socket that is closed";
        if (u->peerlen && u->peer[0])
            snprintf(peer, sizeof peer, "%.*s", (int)strnlen(u->peer, u->peerlen), u->peer);
        else if (u->peerlen)
            snprintf(peer, sizeof peer, "@%.*s", (int)u->peerlen - 1, u->peer + 1);
        else if (u->peer_ino)
            snprintf(peer, sizeof peer, "an unnamed socket of another process");
        uint32_t lost = 0;
        if ((u->flags & CK_UNIXF_LISTEN) && len >= sizeof *u + 8 * (size_t)u->nicons) {
            const uint64_t *ic = (const uint64_t *)(u + 1);
            for (uint32_t j = 0; j < u->nicons; j++) {
                int in = 0;
                for (uint32_t k = 0; k < im->nfds && !in; k++)
                    in = im->fds[k].kind == CK_FD_UNIX && im->fds[k].ino == ic[j];
                lost += !in;
            }
        }
        if (!(u->flags & CK_UNIXF_DEAD) && !lost)
            continue;
        count++;
        if (o + 8 < outlen) {
            if (lost)
                snprintf(out + o, outlen - o, "%sfd %d (listening: %u waiting client(s) closed or "
                         "of other processes, accepted after restore as closed connections; "
                         "bytes they sent are lost)",
                         o ? ", " : "", f->fd, lost);
            else
                snprintf(out + o, outlen - o, "%sfd %d (unix %s connection to %s%s)",
                         o ? ", " : "", f->fd, ck_sock_type_name((int)u->so.type), peer,
                         (f->flags & CK_FDF_STD_REDIRECT)
                             ? "; a standard descriptor: the restoring coord's own after "
                               "restore, /dev/null with --detach"
                             : "");
            o += strlen(out + o);
        }
    }
    return count;
}

const struct ck_fdkind ck_fdkind_unix = {
    .kind = CK_FD_UNIX,
    .name = "unix socket",
    .capture = unix_capture,
    .finish = unix_finish,
    .check = unix_check,
    .restore = unix_restore,
    .after = unix_after,
    .describe = ck_unix_describe,
};
