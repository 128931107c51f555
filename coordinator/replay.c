/* replay.c - the supervisor's half of `coord run --record-net`: the
 * journals the shim writes (preload/netrec.c, common/netrec.h) are kept,
 * set aside before a restore and fed again to the restored server.
 *
 * In DIR (the images' directory):
 *   net-<E>.journal     what the program read after its checkpoint with
 *                       stamp E (E = 0: before its first), one per epoch
 *   replay-<S>/NNNNNN   the journals set aside for a restore of the image
 *                       with stamp S, in their order; kept until a
 *                       checkpoint after the replay is committed, so a
 *                       crash during the replay neither loses them nor
 *                       replays them twice (the next restore is of the
 *                       same image and replays them all again)
 *   net.replay          while a replay runs: its connections' source ports
 *                       and the supervisor's pid, so the shim does not
 *                       record them again
 *
 * Every step is a rename or an unlink: at any moment a journal is either
 * still a journal or a segment of the replay, never both. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "coord.h"
#include "fileid.h"
#include "netrec.h"
#include "replay.h"

#define REPLY_FIRST_MS 1000   /* wait for a reply's first byte */
#define REPLY_IDLE_MS 30      /* then until the server is quiet that long */
#define CONNECT_MS 5000
#define QUEUE_WAIT_MS 2000    /* for a restored queue to be read */

/* "net-<digits>.journal" -> 1 and its epoch. */
static int journal_epoch(const char *name, uint64_t *e)
{
    if (strncmp(name, "net-", 4) || !isdigit((unsigned char)name[4]))
        return 0;
    char *end;
    unsigned long long v = strtoull(name + 4, &end, 10);
    if (strcmp(end, ".journal"))
        return 0;
    *e = v;
    return 1;
}

/* "replay-<digits>" -> 1 and its stamp. */
static int replay_stamp(const char *name, uint64_t *s)
{
    if (strncmp(name, "replay-", 7) || !isdigit((unsigned char)name[7]))
        return 0;
    char *end;
    unsigned long long v = strtoull(name + 7, &end, 10);
    if (*end)
        return 0;
    *s = v;
    return 1;
}

static void replay_dir(const char *dir, uint64_t stamp, char *out, size_t len)
{
    snprintf(out, len, "%s/replay-%020llu", dir, (unsigned long long)stamp);
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    if (d)
        closedir(d);
    rmdir(path);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The journals in dir (epochs, sorted), malloc'ed; count in *n. */
static uint64_t *journals(const char *dir, size_t *n)
{
    *n = 0;
    size_t cap = 0;
    uint64_t *v = NULL, e;
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        if (!journal_epoch(de->d_name, &e))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        v[(*n)++] = e;
    }
    if (d)
        closedir(d);
    if (*n)
        qsort(v, *n, sizeof *v, cmp_u64);
    return v;
}

void ck_netrec_committed(const char *dir, uint64_t stamp)
{
    char p[PATH_MAX + 64];
    size_t n;
    uint64_t *v = journals(dir, &n);
    for (size_t i = 0; i < n; i++)
        if (v[i] < stamp) {
            snprintf(p, sizeof p, "%s/net-%020llu.journal", dir, (unsigned long long)v[i]);
            unlink(p);
        }
    free(v);
    DIR *d = opendir(dir);
    uint64_t s;
    for (struct dirent *e; d && (e = readdir(d));)
        if (replay_stamp(e->d_name, &s)) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            remove_tree(p);
        }
    if (d)
        closedir(d);
}

int ck_netrec_prepare(const char *dir, uint64_t stamp)
{
    char rd[PATH_MAX + 64], p[PATH_MAX + 64], q[PATH_MAX + 96];
    /* set-asides for another image are of an older life (a checkpoint
     * after them was committed, or a run that was given up) */
    DIR *d = opendir(dir);
    uint64_t s;
    for (struct dirent *e; d && (e = readdir(d));)
        if (replay_stamp(e->d_name, &s) && s != stamp) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            remove_tree(p);
        }
    if (d)
        closedir(d);
    replay_dir(dir, stamp, rd, sizeof rd);
    if (mkdir(rd, 0700) < 0 && errno != EEXIST) {
        ck_msg("run: --record-net: cannot create %s: %s", rd, strerror(errno));
        return -1;
    }
    /* the next segment's number: after those of an interrupted replay */
    unsigned next = 1;
    d = opendir(rd);
    for (struct dirent *e; d && (e = readdir(d));) {
        unsigned v = (unsigned)strtoul(e->d_name, NULL, 10);
        if (v >= next)
            next = v + 1;
    }
    if (d)
        closedir(d);
    size_t n;
    uint64_t *v = journals(dir, &n);
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/net-%020llu.journal", dir, (unsigned long long)v[i]);
        if (v[i] < stamp) {
            unlink(p); /* read before the image was taken: in it */
            continue;
        }
        snprintf(q, sizeof q, "%s/%06u", rd, next++);
        if (rename(p, q) < 0) {
            ck_msg("run: --record-net: cannot move %s to %s: %s", p, q, strerror(errno));
            ret = -1;
        }
    }
    free(v);
    ck_fsync_dir(rd);
    ck_fsync_dir(dir);
    return ret;
}

/* ---- the replay ---- */

struct rconn {
    uint64_t id;
    int fd;                         /* -1: not connected yet (or gone) */
    int failed;                     /* could not connect: its records are skipped */
    uint64_t skipped;               /* bytes skipped: in its queue at the checkpoint */
    int waited;                     /* for the program to read them (wait_queue) */
    socklen_t alen;
    struct sockaddr_storage addr;   /* the server's side of the recorded connection */
};

struct replay {
    const char *dir;
    uint64_t stamp;
    int mark;                       /* DIR/net.replay */
    struct rconn *c;
    size_t n, cap;
    struct ck_netrec_stats *st;
    int dead;                       /* the server stopped answering: stop */
};

static struct rconn *find(struct replay *r, uint64_t id, int add)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->c[i].id == id)
            return &r->c[i];
    if (!add)
        return NULL;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct rconn *nc = realloc(r->c, cap * sizeof *nc);
        if (!nc)
            return NULL;
        r->c = nc;
        r->cap = cap;
    }
    struct rconn *c = &r->c[r->n++];
    memset(c, 0, sizeof *c);
    c->id = id;
    c->fd = -1;
    return c;
}

static void describe_addr(const struct rconn *c, char *out, size_t len)
{
    const struct sockaddr_storage *a = &c->addr;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const void *)a;
        const unsigned char *b = (const unsigned char *)&v4->sin_addr;
        snprintf(out, len, "%u.%u.%u.%u:%u", b[0], b[1], b[2], b[3], ntohs(v4->sin_port));
    } else if (a->ss_family == AF_INET6) {
        snprintf(out, len, "[IPv6]:%u", ntohs(((const struct sockaddr_in6 *)a)->sin6_port));
    } else if (a->ss_family == AF_UNIX) {
        const struct sockaddr_un *u = (const void *)a;
        snprintf(out, len, "unix:%s%.*s", u->sun_path[0] ? "" : "@",
                 (int)sizeof u->sun_path - 1, u->sun_path + !u->sun_path[0]);
    } else {
        snprintf(out, len, "family %d", a->ss_family);
    }
}

/* Read and drop what the server sent: wait up to first_ms for something,
 * then until it is quiet for REPLY_IDLE_MS. Returns -1 at end of file or
 * an error (the connection is over). */
static int drain(int fd, int first_ms)
{
    char buf[65536];
    int wait = first_ms;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, wait);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return 0;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return -1;
        wait = REPLY_IDLE_MS;
    }
}

static void end_conn(struct rconn *c)
{
    if (c->fd < 0)
        return;
    shutdown(c->fd, SHUT_WR);
    drain(c->fd, 500);
    close(c->fd);
    c->fd = -1;
}

/* A new connection to where the recorded one was accepted; its source
 * port (or our pid, for Unix sockets) goes into net.replay first. */
static int connect_conn(struct replay *r, struct rconn *c)
{
    char where[160];
    describe_addr(c, where, sizeof where);
    int fam = c->addr.ss_family;
    int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (fam != AF_UNIX) {
        struct sockaddr_storage any;
        memset(&any, 0, sizeof any);
        any.ss_family = (sa_family_t)fam;
        socklen_t l = fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        if (bind(fd, (struct sockaddr *)&any, l) < 0 ||
            getsockname(fd, (struct sockaddr *)&any, &l) < 0)
            goto fail;
        unsigned port = fam == AF_INET ? ntohs(((struct sockaddr_in *)&any)->sin_port)
                                       : ntohs(((struct sockaddr_in6 *)&any)->sin6_port);
        if (dprintf(r->mark, "port %u\n", port) < 0)
            goto fail;
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (connect(fd, (struct sockaddr *)&c->addr, c->alen) < 0) {
        if (errno != EINPROGRESS)
            goto fail;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t el = sizeof err;
        if (poll(&pf, 1, CONNECT_MS) <= 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
            errno = err ? err : errno;
            goto fail;
        }
    }
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    c->fd = fd;
    r->st->conns++;
    return 0;
fail:
    ck_msg("run: --record-net: cannot connect to %s to replay what it received: %s; its "
           "bytes are not replayed", where, strerror(errno));
    if (fd >= 0)
        close(fd);
    c->failed = 1;
    r->st->lost++;
    return -1;
}

static int send_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Bytes of connection id the restored program has read from the queue
 * its restore put back: its journal's QUEUED records of this epoch. */
static uint64_t queue_read(const struct replay *r, uint64_t id)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/net-%020llu.journal", r->dir, (unsigned long long)r->stamp);
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    uint64_t sum = 0;
    struct ck_netrec_hdr h;
    off_t off = 0;
    while (pread(fd, &h, sizeof h, off) == (ssize_t)sizeof h && h.magic == CK_NETREC_MAGIC) {
        if (h.kind == CK_NETREC_DATA && h.conn == id && (h.flags & CK_NETREC_QUEUED) &&
            h.epoch == r->stamp)
            sum += h.len;
        off += (off_t)(sizeof h + h.len);
    }
    close(fd);
    return sum;
}

/* A connection that was open at the checkpoint had bytes in its queue:
 * the restore put them back in the restored connection, so the bytes
 * after them (on a new connection) wait until the program has read them
 * (at most QUEUE_WAIT_MS), or it would see them in the wrong order. */
static void wait_queue(struct replay *r, struct rconn *c)
{
    c->waited = 1;
    for (int i = 0; i < QUEUE_WAIT_MS / 10 && queue_read(r, c->id) < c->skipped; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* One record (its payload p) of the replay; next: the record after it, if
 * any, to know whether the reply must be waited for now. */
static void one(struct replay *r, const struct ck_netrec_hdr *h, const char *p,
                const struct ck_netrec_hdr *next, uint64_t stamp)
{
    if (h->epoch < stamp)
        return; /* read before the image was taken */
    struct rconn *c;
    switch (h->kind) {
    case CK_NETREC_OPEN:
        if (h->len < sizeof(sa_family_t) || h->len > sizeof c->addr || !(c = find(r, h->conn, 1)))
            return;
        memset(&c->addr, 0, sizeof c->addr);
        memcpy(&c->addr, p, h->len);
        c->alen = h->len;
        return;
    case CK_NETREC_DATA:
        /* waiting in the queue at this very image's checkpoint: the
         * restore put those bytes back already */
        c = find(r, h->conn, 0);
        if ((h->flags & CK_NETREC_QUEUED) && h->epoch == stamp) {
            if (c)
                c->skipped += h->len;
            return;
        }
        if (!c || !c->alen || c->failed)
            return;
        if (c->skipped && !c->waited)
            wait_queue(r, c);
        if (c->fd < 0 && connect_conn(r, c) < 0)
            return;
        if (send_all(c->fd, p, h->len) < 0) {
            ck_msg("run: --record-net: the program closed a replayed connection (%s); "
                   "stopping the replay", strerror(errno));
            r->dead = 1;
            return;
        }
        r->st->bytes += h->len;
        r->st->records++;
        /* the reply before anything on another connection: a
         * request/response protocol sees the requests in their order */
        if (!next || next->conn != h->conn || next->kind != CK_NETREC_DATA) {
            if (drain(c->fd, REPLY_FIRST_MS) < 0) {
                r->st->ended++;
                close(c->fd);
                c->fd = -1;
                c->failed = 1;
            }
        }
        return;
    case CK_NETREC_CLOSE:
        if ((c = find(r, h->conn, 0)))
            end_conn(c);
        return;
    case CK_NETREC_FULL:
        r->st->full++;
        ck_msg("run: --record-net: the journal after checkpoint stamp %llu was full "
               "(--record-net-max): what the program received after that until its next "
               "checkpoint was not recorded and is not replayed",
               (unsigned long long)h->epoch);
        return;
    }
}

/* The record header at off, if a whole record is there (1). A record cut
 * short (a crash while it was written) ends the journal. */
static int read_hdr(struct replay *r, const char *m, size_t size, size_t off,
                    struct ck_netrec_hdr *h)
{
    if (off >= size)
        return 0;
    if (size - off < sizeof *h) {
        r->st->torn++;
        return 0;
    }
    memcpy(h, m + off, sizeof *h);
    if (h->magic != CK_NETREC_MAGIC || h->len > size - off - sizeof *h) {
        r->st->torn++;
        return 0;
    }
    return 1;
}

/* Replay one segment file. */
static void segment(struct replay *r, const char *path, uint64_t stamp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    size_t size = (size_t)st.st_size;
    const char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return;
    struct ck_netrec_hdr h, nx;
    size_t off = 0;
    int have = read_hdr(r, m, size, off, &h);
    while (have && !r->dead) {
        size_t noff = off + sizeof h + h.len;
        int nhave = read_hdr(r, m, size, noff, &nx);
        one(r, &h, m + off + sizeof h, nhave ? &nx : NULL, stamp);
        off = noff;
        h = nx;
        have = nhave;
    }
    munmap((void *)m, size);
}

int ck_netrec_replay(const char *dir, uint64_t stamp, struct ck_netrec_stats *st)
{
    memset(st, 0, sizeof *st);
    char rd[PATH_MAX + 64], p[PATH_MAX + 96], mk[PATH_MAX + 32];
    replay_dir(dir, stamp, rd, sizeof rd);
    DIR *d = opendir(rd);
    if (!d)
        return 0;
    unsigned *segs = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            unsigned *ns = realloc(segs, cap * sizeof *ns);
            if (!ns)
                break;
            segs = ns;
        }
        segs[n++] = (unsigned)strtoul(e->d_name, NULL, 10);
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) /* few: insertion sort */
        for (size_t j = i; j > 0 && segs[j - 1] > segs[j]; j--) {
            unsigned t = segs[j];
            segs[j] = segs[j - 1];
            segs[j - 1] = t;
        }
    struct replay r = {.dir = dir, .stamp = stamp, .st = st};
    snprintf(mk, sizeof mk, "%s/%s", dir, CK_NETREC_REPLAY_MARK);
    r.mark = open(mk, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (r.mark < 0) {
        ck_msg("run: --record-net: cannot create %s: %s", mk, strerror(errno));
        free(segs);
        return -1;
    }
    dprintf(r.mark, "pid %d\n", (int)getpid());
    for (size_t i = 0; i < n && !r.dead; i++) {
        snprintf(p, sizeof p, "%s/%06u", rd, segs[i]);
        segment(&r, p, stamp);
    }
    for (size_t i = 0; i < r.n; i++)
        end_conn(&r.c[i]);
    free(r.c);
    free(segs);
    close(r.mark);
    unlink(mk);
    return r.dead ? -1 : 0;
}
