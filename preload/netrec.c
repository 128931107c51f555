/* netrec.c - the shim's half of `coord run --record-net`: a journal of
 * the bytes a server receives on the connections it accepted.
 *
 * Only when the supervisor sets CKSHIM_RECORD_NET=DIR. Otherwise each
 * wrapper below costs one predictable branch before the real call.
 *
 * accept/accept4 mark an accepted stream socket (TCP over IPv4/IPv6, Unix
 * stream) with a connection id and journal an OPEN record with its local
 * address (where the replay connects to). read/readv/recv/recvfrom/
 * recvmsg on a marked descriptor journal the bytes they return (DATA),
 * end of file journals CLOSE; close/dup2/dup3 over a marked descriptor
 * forget it. Each record is one writev() to an O_APPEND file, so records
 * of several threads and processes never interleave.
 *
 * The journal is per epoch: DIR/net-<stamp>.journal, stamp being the
 * counter stamp of the last checkpoint this process took. The switch to a
 * new file happens while the program's threads are parked for that
 * checkpoint (netrec_new_epoch), so a byte read before the checkpoint is
 * in the image and one read after it is in the new journal. Which side of
 * the checkpoint a read is on is decided by when its system call
 * returned: a recorded connection's reads are made by netrec_sys.S, which
 * loads the epoch right after the call; a thread the checkpoint signal
 * parks between the two (the signal is delivered as the call returns)
 * has the old epoch pinned by the handler (netrec_park), so its record
 * carries the epoch of the image that holds its bytes. The switch
 * writes an OPEN record for each connection still open (its bytes after
 * the checkpoint are replayed on a new connection) and notes how many
 * bytes wait in its queue (restoring that very image puts them back, so
 * they are marked CK_NETREC_QUEUED). The supervisor removes the journals
 * older than each committed image, and replays those at least as new as
 * the image it restores (coordinator/replay.c).
 *
 * The journal descriptor is the shim's own: never in an image (capture
 * skips it), opened again after a restore. The manager thread fdatasyncs
 * it every 100 ms while it has unsynced records. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <ucontext.h>
#include <netinet/in.h>
#include <unistd.h>

#include "netrec.h"
#include "shim.h"

#define NR_MAX_FD 65536      /* descriptors above are not recorded */
#define NR_MAX_ADDRS 64      /* distinct local addresses (listeners) */
#define NR_MAX_IOV 64
#define NR_SYNC_NS (100 * 1000000LL)

struct nr_conn {
    uint64_t id;             /* 0: not an accepted connection */
    uint32_t queued;         /* bytes waiting at the last epoch switch, not yet read */
    uint16_t addr;           /* index + 1 in nr_addrs */
};

static struct {
    int on;                  /* CKSHIM_RECORD_NET was set at start */
    int fd;                  /* the journal; the shim's own */
    int full;                /* this epoch's journal reached max */
    volatile int dirty;      /* records since the last fdatasync */
    uint64_t size, max;
    int64_t synced_ns;
    uint32_t next;           /* connection numbers */
    int maxfd;               /* highest descriptor ever marked */
    volatile uint32_t naddrs;
    volatile int addr_lock;
    char dir[CK_PATH_MAX];
} nr = {.fd = -1};

/* The epoch (read by netrec_sys.S right after each recorded call). */
__attribute__((visibility("hidden"))) uint64_t netrec_epoch_now;

/* netrec_sys.S */
struct nr_call {
    long nr, a[6];
    uint64_t epoch;
};
long netrec_syscall(struct nr_call *c);
extern const char netrec_sys_ret[];

/* A thread parked as its recorded call returned: the epoch its bytes
 * belong to (netrec_park). */
static SHIM_TLS struct {
    int pinned;
    uint64_t epoch;
} nr_tls;

static struct nr_conn nr_tab[NR_MAX_FD];
static struct {
    uint32_t len;
    struct sockaddr_storage sa;
} nr_addrs[NR_MAX_ADDRS];

static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_fclose)(FILE *);
static int (*real_close_range)(unsigned, unsigned, int);
static void (*real_closefrom)(int);
static int (*real_dup3)(int, int, int);

static void nr_path(char *out, size_t len, uint64_t epoch)
{
    snprintf(out, len, "%s/net-%020llu.journal", nr.dir, (unsigned long long)epoch);
}

/* Open this epoch's journal at nr.fd's number (or a high one). */
static void nr_open_journal(void)
{
    char p[CK_PATH_MAX + 64];
    nr_path(p, sizeof p, netrec_epoch_now);
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        char m[CK_PATH_MAX + 160];
        int n = snprintf(m, sizeof m, "ckshim[%d]: --record-net: cannot open %s: %s; the bytes "
                         "received are not recorded\n", (int)shim_real_getpid(), p,
                         strerror(errno));
        ssize_t w = write(2, m, (size_t)n < sizeof m ? (size_t)n : sizeof m - 1);
        (void)w;
        if (nr.fd >= 0) {
            real_close(nr.fd);
            nr.fd = -1;
        }
        return;
    }
    struct stat st;
    nr.size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (nr.fd >= 0) {
        /* the same number: a thread never writes to a closed descriptor */
        dup3(fd, nr.fd, O_CLOEXEC);
        real_close(fd);
    } else {
        int hi = fcntl(fd, F_DUPFD_CLOEXEC, 910);
        if (hi >= 0) {
            real_close(fd);
            fd = hi;
        }
        nr.fd = fd;
    }
}

int netrec_init(void)
{
    /* all at once, now: not later in a signal handler's first read */
    SHIM_RESOLVE(real_read, "read");
    SHIM_RESOLVE(real_readv, "readv");
    SHIM_RESOLVE(real_recv, "recv");
    SHIM_RESOLVE(real_recvfrom, "recvfrom");
    SHIM_RESOLVE(real_recvmsg, "recvmsg");
    SHIM_RESOLVE(real_accept, "accept");
    SHIM_RESOLVE(real_accept4, "accept4");
    SHIM_RESOLVE(real_close, "close");
    SHIM_RESOLVE(real_dup, "dup");
    SHIM_RESOLVE(real_dup2, "dup2");
    SHIM_RESOLVE(real_dup3, "dup3");
    SHIM_RESOLVE(real_fclose, "fclose");
    SHIM_RESOLVE(real_close_range, "close_range");
    const char *d = getenv(CK_NETREC_DIR_ENV);
    if (!d || !*d || strlen(d) >= sizeof nr.dir - 64)
        return 0;
    snprintf(nr.dir, sizeof nr.dir, "%s", d);
    const char *m = getenv(CK_NETREC_MAX_ENV);
    nr.max = m && *m ? strtoull(m, NULL, 10) : 0;
    if (!nr.max)
        nr.max = CK_NETREC_MAX_DEFAULT;
    if (nr.max < 4 * sizeof(struct ck_netrec_hdr))
        nr.max = 4 * sizeof(struct ck_netrec_hdr);
    netrec_epoch_now = 0;
    nr_open_journal();
    nr.on = 1;
    return 0;
}

int netrec_fd(void)
{
    return nr.fd;
}

/* One record: header and payload in one writev (O_APPEND). */
static void nr_emit(uint16_t kind, uint16_t flags, uint64_t conn, uint64_t epoch,
                    const struct iovec *iov, int iovcnt, size_t len)
{
    if (nr.fd < 0 || __atomic_load_n(&nr.full, __ATOMIC_RELAXED))
        return;
    struct ck_netrec_hdr h = {.magic = CK_NETREC_MAGIC, .kind = kind, .flags = flags,
                              .len = (uint32_t)len, .conn = conn, .epoch = epoch};
    uint64_t total = sizeof h + len;
    /* room is kept for the FULL record: the file never exceeds max */
    if (__atomic_add_fetch(&nr.size, total, __ATOMIC_RELAXED) + sizeof h > nr.max) {
        if (__atomic_exchange_n(&nr.full, 1, __ATOMIC_RELAXED))
            return;
        /* said once per epoch: in the journal (the supervisor reports it
         * when it replays) and on the program's stderr */
        struct ck_netrec_hdr f = {.magic = CK_NETREC_MAGIC, .kind = CK_NETREC_FULL,
                                  .epoch = netrec_epoch_now};
        ssize_t w = write(nr.fd, &f, sizeof f);
        char m[256];
        int n = snprintf(m, sizeof m, "ckshim[%d]: --record-net: the journal of checkpoint %llu "
                         "reached %llu bytes; what is received until the next checkpoint is "
                         "not recorded\n", (int)shim_real_getpid(),
                         (unsigned long long)netrec_epoch_now, (unsigned long long)nr.max);
        w = write(2, m, (size_t)n < sizeof m ? (size_t)n : sizeof m - 1);
        (void)w;
        return;
    }
    struct iovec v[NR_MAX_IOV + 1];
    v[0].iov_base = &h;
    v[0].iov_len = sizeof h;
    for (int i = 0; i < iovcnt; i++)
        v[i + 1] = iov[i];
    ssize_t w = writev(nr.fd, v, iovcnt + 1);
    (void)w;
    nr.dirty = 1;
}

/* Bytes fd returned into iov (r of them): DATA records, the part that was
 * waiting at the epoch switch flagged, at most NR_MAX_IOV pieces each. */
static void nr_data(struct nr_conn *c, uint64_t epoch, const struct iovec *iov, int iovcnt,
                    size_t r)
{
    struct iovec v[NR_MAX_IOV];
    int n = 0;
    size_t len = 0;
    /* a read pinned to the epoch before the switch took nothing of what
     * was waiting at the switch: that is still to come */
    uint32_t dummy = 0, *q = epoch == netrec_epoch_now ? &c->queued : &dummy;
    size_t cut = *q && *q < r ? *q : r; /* the first record ends at the queued part */
    size_t off = 0;                     /* within iov[i] */
    for (int i = 0; i < iovcnt && r > 0;) {
        size_t take = iov[i].iov_len - off;
        if (take > cut - len)
            take = cut - len;
        if (take) {
            v[n].iov_base = (char *)iov[i].iov_base + off;
            v[n++].iov_len = take;
            len += take;
            off += take;
        }
        if (off == iov[i].iov_len) {
            i++;
            off = 0;
        }
        if (len == cut || n == NR_MAX_IOV) {
            uint16_t fl = 0;
            if (*q) {
                fl = CK_NETREC_QUEUED;
                *q -= (uint32_t)(len < *q ? len : *q);
            }
            nr_emit(CK_NETREC_DATA, fl, c->id, epoch, v, n, len);
            r -= len;
            cut = *q && *q < r ? *q : r;
            n = 0;
            len = 0;
        }
    }
}

/* Is fd a recorded connection (and this a thread of the program)? */
static inline int nr_marked(int fd)
{
    return (unsigned)fd < NR_MAX_FD && nr_tab[fd].id && shim_tls.vtid != -1;
}

/* The call of a read on a recorded connection, made here (netrec_sys.S)
 * so that its bytes get the epoch of the moment it returned. */
static long nr_sys(long no, long a0, long a1, long a2, long a3, long a4, long a5,
                   uint64_t *epoch)
{
    struct nr_call c = {.nr = no, .a = {a0, a1, a2, a3, a4, a5}};
    nr_tls.pinned = 0;
    long r = netrec_syscall(&c);
    *epoch = nr_tls.pinned ? nr_tls.epoch : c.epoch;
    nr_tls.pinned = 0;
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* The checkpoint signal's handler, before the thread parks. */
void netrec_park(void *ucv)
{
    const ucontext_t *uc = ucv;
    if (nr.on && uc && (uintptr_t)uc->uc_mcontext.gregs[REG_RIP] == (uintptr_t)netrec_sys_ret) {
        nr_tls.epoch = netrec_epoch_now;
        nr_tls.pinned = 1;
    }
}

/* After a read of r bytes (want: what was asked) on fd. */
static void nr_after(int fd, ssize_t r, uint64_t epoch, size_t want, const struct iovec *iov,
                     int iovcnt)
{
    int e = errno;
    struct nr_conn *c = &nr_tab[fd];
    if (r > 0) {
        nr_data(c, epoch, iov, iovcnt, (size_t)r);
    } else if (r == 0 && want > 0) {
        nr_emit(CK_NETREC_CLOSE, 0, c->id, epoch, NULL, 0, 0);
        c->id = 0; /* end of file: nothing more comes */
    }
    errno = e;
}

/* A replay connection of the supervisor (DIR/net.replay lists its source
 * ports, and its pid for Unix sockets): not recorded again. */
static int nr_is_replay(int c, int family)
{
    char p[CK_PATH_MAX + 32], buf[4096];
    snprintf(p, sizeof p, "%s/%s", nr.dir, CK_NETREC_REPLAY_MARK);
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    real_close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char want[48];
    if (family == AF_UNIX) {
        struct ucred cr;
        socklen_t l = sizeof cr;
        if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0)
            return 0;
        snprintf(want, sizeof want, "pid %d\n", (int)cr.pid);
    } else {
        struct sockaddr_storage ss;
        socklen_t l = sizeof ss;
        if (getpeername(c, (struct sockaddr *)&ss, &l) < 0)
            return 0;
        unsigned port = family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                          : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(want, sizeof want, "port %u\n", port);
    }
    for (const char *s = buf; (s = strstr(s, want)); s++)
        if (s == buf || s[-1] == '\n')
            return 1;
    return 0;
}

/* The index + 1 of this local address in nr_addrs (added if new), 0 if
 * the table is full. */
static uint16_t nr_addr_index(const struct sockaddr_storage *ss, socklen_t len)
{
    for (;;) {
        uint32_t n = __atomic_load_n(&nr.naddrs, __ATOMIC_ACQUIRE);
        for (uint32_t i = 0; i < n; i++)
            if (nr_addrs[i].len == len && !memcmp(&nr_addrs[i].sa, ss, len))
                return (uint16_t)(i + 1);
        if (n >= NR_MAX_ADDRS)
            return 0;
        if (__atomic_exchange_n(&nr.addr_lock, 1, __ATOMIC_ACQUIRE))
            continue; /* another thread adds one: look again */
        if (__atomic_load_n(&nr.naddrs, __ATOMIC_RELAXED) == n) {
            nr_addrs[n].len = len;
            memcpy(&nr_addrs[n].sa, ss, len);
            __atomic_store_n(&nr.naddrs, n + 1, __ATOMIC_RELEASE);
        }
        __atomic_store_n(&nr.addr_lock, 0, __ATOMIC_RELEASE);
    }
}

static void nr_emit_open(const struct nr_conn *c)
{
    if (!c->addr)
        return;
    struct iovec v = {&nr_addrs[c->addr - 1].sa, nr_addrs[c->addr - 1].len};
    nr_emit(CK_NETREC_OPEN, 0, c->id, netrec_epoch_now, &v, 1, v.iov_len);
}

static void nr_accepted(int c)
{
    if ((unsigned)c >= NR_MAX_FD || shim_tls.vtid == -1)
        return;
    int e = errno;
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    int type = 0;
    socklen_t tl = sizeof type;
    memset(&ss, 0, sizeof ss);
    if (getsockname(c, (struct sockaddr *)&ss, &l) < 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6 && ss.ss_family != AF_UNIX) ||
        (ss.ss_family == AF_UNIX &&
         (getsockopt(c, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM)) ||
        nr_is_replay(c, ss.ss_family)) {
        nr_tab[c].id = 0;
        errno = e;
        return;
    }
    struct nr_conn *t = &nr_tab[c];
    t->queued = 0;
    t->addr = nr_addr_index(&ss, l);
    t->id = ((uint64_t)(uint32_t)shim_real_getpid() << 32) |
            __atomic_add_fetch(&nr.next, 1, __ATOMIC_RELAXED);
    if (c > __atomic_load_n(&nr.maxfd, __ATOMIC_RELAXED))
        __atomic_store_n(&nr.maxfd, c, __ATOMIC_RELAXED);
    nr_emit_open(t);
    errno = e;
}

/* The manager, while every thread is parked for the checkpoint with this
 * stamp: a new journal from here on. */
void netrec_new_epoch(uint64_t stamp)
{
    if (!nr.on || !stamp || stamp == netrec_epoch_now)
        return;
    netrec_epoch_now = stamp;
    nr.full = 0;
    nr_open_journal();
    for (int fd = 0; fd <= nr.maxfd && fd < NR_MAX_FD; fd++) {
        struct nr_conn *c = &nr_tab[fd];
        if (!c->id)
            continue;
        /* what capture saved of its queue, which the restore of this
         * image puts back; not FIONREAD now: bytes keep arriving while the
         * threads are parked, and those are not in the image */
        uint64_t q = 0;
        for (uint32_t i = 0; i < shim_nfdbytes; i++)
            if (shim_fdbytes[i].fd == fd)
                q += shim_fdbytes[i].len;
        c->queued = q < UINT32_MAX ? (uint32_t)q : UINT32_MAX;
        nr_emit_open(c);
    }
}

/* After a restore (the program's threads still parked): the journal of
 * the image's epoch, opened again (the supervisor moved the old one). */
void netrec_after_restore(void)
{
    if (!nr.on)
        return;
    nr.fd = -1; /* that number came from the old life */
    nr.full = 0;
    nr.dirty = 0;
    nr_open_journal();
}

/* The manager's poll timeout: 100 ms while records wait for a sync. */
int netrec_poll_ms(void)
{
    return nr.on && nr.dirty ? 100 : -1;
}

void netrec_sync(void)
{
    if (!nr.on || !nr.dirty || nr.fd < 0)
        return;
    int64_t now = shim_now_ns(CLOCK_MONOTONIC);
    if (now - nr.synced_ns < NR_SYNC_NS)
        return;
    nr.dirty = 0;
    nr.synced_ns = now;
    fdatasync(nr.fd);
}

/* ---- the interposed calls ---- */

SHIM_API ssize_t read(int fd, void *buf, size_t n)
{
    SHIM_RESOLVE(real_read, "read");
    if (__builtin_expect(!nr.on, 1) || !nr_marked(fd))
        return real_read(fd, buf, n);
    uint64_t ep;
    ssize_t r = nr_sys(SYS_read, fd, (long)buf, (long)n, 0, 0, 0, &ep);
    struct iovec v = {buf, n};
    nr_after(fd, r, ep, n, &v, 1);
    return r;
}

SHIM_API ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    SHIM_RESOLVE(real_readv, "readv");
    if (__builtin_expect(!nr.on, 1) || !nr_marked(fd))
        return real_readv(fd, iov, cnt);
    uint64_t ep;
    ssize_t r = nr_sys(SYS_readv, fd, (long)iov, cnt, 0, 0, 0, &ep);
    size_t want = 0;
    for (int i = 0; i < cnt; i++)
        want += iov[i].iov_len;
    nr_after(fd, r, ep, want, iov, cnt);
    return r;
}

SHIM_API ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    SHIM_RESOLVE(real_recv, "recv");
    if (__builtin_expect(!nr.on, 1) || (flags & MSG_PEEK) || !nr_marked(fd))
        return real_recv(fd, buf, n, flags);
    uint64_t ep;
    ssize_t r = nr_sys(SYS_recvfrom, fd, (long)buf, (long)n, flags, 0, 0, &ep);
    struct iovec v = {buf, n};
    nr_after(fd, r, ep, n, &v, 1);
    return r;
}

SHIM_API ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a,
                          socklen_t *al)
{
    SHIM_RESOLVE(real_recvfrom, "recvfrom");
    if (__builtin_expect(!nr.on, 1) || (flags & MSG_PEEK) || !nr_marked(fd))
        return real_recvfrom(fd, buf, n, flags, a, al);
    uint64_t ep;
    ssize_t r = nr_sys(SYS_recvfrom, fd, (long)buf, (long)n, flags, (long)a, (long)al, &ep);
    struct iovec v = {buf, n};
    nr_after(fd, r, ep, n, &v, 1);
    return r;
}

SHIM_API ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
    SHIM_RESOLVE(real_recvmsg, "recvmsg");
    if (__builtin_expect(!nr.on, 1) || (flags & MSG_PEEK) || !nr_marked(fd))
        return real_recvmsg(fd, m, flags);
    uint64_t ep;
    ssize_t r = nr_sys(SYS_recvmsg, fd, (long)m, flags, 0, 0, 0, &ep);
    size_t want = 0;
    for (size_t i = 0; i < m->msg_iovlen; i++)
        want += m->msg_iov[i].iov_len;
    nr_after(fd, r, ep, want, m->msg_iov, (int)m->msg_iovlen);
    return r;
}

SHIM_API int accept(int fd, struct sockaddr *a, socklen_t *l)
{
    SHIM_RESOLVE(real_accept, "accept");
    uint32_t gen = socktrack_gen();
    int c = real_accept(fd, a, l);
    if (c >= 0)
        socktrack_accepted(fd, c, 0, gen);
    if (__builtin_expect(nr.on, 0) && c >= 0)
        nr_accepted(c);
    return c;
}

SHIM_API int accept4(int fd, struct sockaddr *a, socklen_t *l, int flags)
{
    SHIM_RESOLVE(real_accept4, "accept4");
    uint32_t gen = socktrack_gen();
    int c = real_accept4(fd, a, l, flags);
    if (c >= 0)
        socktrack_accepted(fd, c, flags, gen);
    if (__builtin_expect(nr.on, 0) && c >= 0)
        nr_accepted(c);
    return c;
}

/* A descriptor number that stops being the connection: forgotten before
 * the call, so a connection accepted meanwhile under the number keeps its
 * mark. */
static void nr_forget(int fd)
{
    if ((unsigned)fd < NR_MAX_FD && fd != nr.fd)
        nr_tab[fd].id = 0;
}

SHIM_API int close(int fd)
{
    SHIM_RESOLVE(real_close, "close");
    shim_listen_closing((unsigned)fd, (unsigned)fd);
    socktrack_closed(fd);
    if (__builtin_expect(nr.on, 0))
        nr_forget(fd);
    return real_close(fd);
}

/* The mark follows a copy: reads through either are the connection's. */
static void nr_copy(int old, int new)
{
    if ((unsigned)old < NR_MAX_FD && (unsigned)new < NR_MAX_FD && nr_tab[old].id) {
        nr_tab[new] = nr_tab[old];
        if (new > nr.maxfd)
            nr.maxfd = new;
    }
}

SHIM_API int dup(int old)
{
    SHIM_RESOLVE(real_dup, "dup");
    socktrack_copied(old);
    int r = real_dup(old);
    if (__builtin_expect(nr.on, 0) && r >= 0)
        nr_copy(old, r);
    return r;
}

/* fclose closes its descriptor inside libc, past close() */
SHIM_API int fclose(FILE *f)
{
    SHIM_RESOLVE(real_fclose, "fclose");
    if (f)
        socktrack_closed(fileno(f));
    if (__builtin_expect(nr.on, 0) && f)
        nr_forget(fileno(f));
    return real_fclose(f);
}

SHIM_API int close_range(unsigned first, unsigned last, int flags)
{
    SHIM_RESOLVE(real_close_range, "close_range");
    if (!real_close_range) {
        errno = ENOSYS;
        return -1;
    }
    /* (only a call that will close: our socket is shut down first) */
    if (!(flags & ~(unsigned)(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) && first <= last &&
        !(flags & CLOSE_RANGE_CLOEXEC))
        shim_listen_closing(first, last);
    if (__builtin_expect(nr.on, 0) && !(flags & CLOSE_RANGE_CLOEXEC))
        for (unsigned fd = first; fd <= last && fd < NR_MAX_FD && (int)fd <= nr.maxfd; fd++)
            nr_forget((int)fd);
    return real_close_range(first, last, flags);
}

/* closefrom closes inside libc, past close_range() */
SHIM_API void closefrom(int low)
{
    SHIM_RESOLVE(real_closefrom, "closefrom");
    unsigned first = low > 0 ? (unsigned)low : 0;
    shim_listen_closing(first, ~0U);
    if (__builtin_expect(nr.on, 0))
        for (unsigned fd = first; fd < NR_MAX_FD && (int)fd <= nr.maxfd; fd++)
            nr_forget((int)fd);
    if (real_closefrom)
        real_closefrom(low);
    else
        syscall(SYS_close_range, first, ~0U, 0);
}

SHIM_API int dup2(int old, int new)
{
    SHIM_RESOLVE(real_dup2, "dup2");
    if (old != new) {
        /* (a dup2 that will close it: from a valid descriptor) */
        if (new == g_shim.listen_fd && fcntl(old, F_GETFD) >= 0)
            shim_listen_closing((unsigned)new, (unsigned)new);
        socktrack_copied(old);
        socktrack_closed(new);
    }
    if (__builtin_expect(nr.on, 0) && old != new)
        nr_forget(new);
    int r = real_dup2(old, new);
    if (__builtin_expect(nr.on, 0) && r >= 0 && old != new)
        nr_copy(old, new);
    return r;
}

/* libc's other name for dup2 */
SHIM_API int nr___dup2(int old, int new) __asm__("__dup2");
SHIM_API int nr___dup2(int old, int new)
{
    return dup2(old, new);
}

SHIM_API int dup3(int old, int new, int flags)
{
    SHIM_RESOLVE(real_dup3, "dup3");
    if (old != new) {
        if (new == g_shim.listen_fd && !(flags & ~O_CLOEXEC) && fcntl(old, F_GETFD) >= 0)
            shim_listen_closing((unsigned)new, (unsigned)new);
        socktrack_copied(old);
        socktrack_closed(new);
    }
    if (__builtin_expect(nr.on, 0) && old != new)
        nr_forget(new);
    int r = real_dup3(old, new, flags);
    if (__builtin_expect(nr.on, 0) && r >= 0)
        nr_copy(old, new);
    return r;
}
