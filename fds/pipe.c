/* pipe.c - pipes and FIFOs.
 *
 * Capture: a pipe is known by its inode (aux), with its buffer size
 * (size: a pipe has no file size). Once every descriptor is known
 * (finish), a pipe none of whose descriptors reads, or none writes, has
 * its other end outside the program (CK_FDF_EXTERNAL; on fd 0-2 it becomes
 * coord's own at restore, CK_FDF_STD_REDIRECT), unless it is read here and
 * its writers are all gone (CK_FDF_WRITER_GONE: `seq 1 9999 | xargs ...`
 * once seq has exited; restored with the bytes, then end of file, as it
 * would have read them); then the bytes waiting in
 * the pipes the program holds both ways are copied with tee(2), which
 * leaves them in the pipe (with their boundaries, for a pipe in packet
 * mode: pipe2's O_DIRECT on the write end, CK_FDF_PACKETS). A named FIFO
 * removed from its directory is made again beside where it was (and
 * removed again).
 *
 * Restore: one O_RDWR description per pipe, made for its first descriptor
 * (a new pipe, or the FIFO reopened by path) with its size and bytes, kept
 * above every fd number still to come (the stash); each descriptor of the
 * pipe is opened from it with its own access mode. coord closes the
 * stashes once every descriptor is in place: a pipe the program held both
 * ways stays open, one whose other end was outside loses its reader or
 * writer (end of file, EPIPE).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdkind.h"
#include "imgio.h"

static int pipe_capture(struct ck_fdcap *c)
{
    if (!S_ISFIFO(c->st->st_mode))
        return 0;
    struct ck_fd *f = c->f;
    char *target = c->target;
    size_t tl = strlen(target);
    f->kind = CK_FD_PIPE;
    f->aux = c->st->st_ino;
    /* A named FIFO removed from its directory: restore makes a new one
     * beside where it was (and removes it again). */
    if (tl > 10 && !strcmp(target + tl - 10, " (deleted)") && target[0] == '/') {
        target[tl - 10] = 0;
        f->flags |= CK_FDF_DELETED;
    }
    /* buffer size, recreated on restore (size: a pipe has none) */
    int cap = fcntl(c->fd, F_GETPIPE_SZ);
    f->size = cap > 0 ? (uint64_t)cap : 65536;
    return 1;
}

static int same_pipe(const struct ck_fd *a, const struct ck_fd *b)
{
    return a->kind == CK_FD_PIPE && b->kind == CK_FD_PIPE && a->ino == b->ino && a->dev == b->dev;
}

/* Bytes waiting in pipes and FIFOs the program holds both ways (a read
 * and a write end, or one O_RDWR descriptor), and in named FIFOs it only
 * reads (their writers may be gone: the bytes die with the last
 * descriptor, so restore puts them back into an empty FIFO): copied with
 * tee(2), which leaves them in the pipe, into the shim's buffer the writer
 * saves as FILEDATA records. One copy per pipe, under the fd of its first
 * descriptor (arg of the records), which is where restore creates the
 * pipe. */
static int capture_pipe_data(struct ck_fdcap_set *s)
{
    static char chunk[64u << 10]; /* the manager thread's only: no malloc here */
    for (uint32_t i = 0; i < s->n; i++) {
        struct ck_fd *f = &s->fds[i];
        int named = s->path(s, i)[0] == '/';
        /* In a tree the writer may be another process of it (restore
         * then makes the pipe once for both): the reader saves the bytes. */
        if (f->kind != CK_FD_PIPE || f->share_with >= 0 ||
            (!s->tree && ((f->flags & CK_FDF_STD_REDIRECT) ||
                          ((f->flags & CK_FDF_EXTERNAL) && !named))))
            continue;
        int first = 1, from = -1, writer = 0, packets = 0;
        for (uint32_t k = 0; k < s->n; k++) {
            const struct ck_fd *o = &s->fds[k];
            if (!same_pipe(o, f))
                continue;
            first &= k >= i;
            int acc = (int)(o->oflags & O_ACCMODE);
            if (acc != O_WRONLY && from < 0)
                from = o->fd;
            writer |= acc != O_RDONLY;
            packets |= acc != O_RDONLY && (o->oflags & O_DIRECT);
        }
        if (!first || from < 0 ||
            (!writer && !named && !s->tree && !(f->flags & CK_FDF_WRITER_GONE)))
            continue;
        int tp[2];
        if (pipe2(tp, O_NONBLOCK | O_CLOEXEC) < 0) {
            snprintf(s->err, s->errlen, "cannot create a pipe: %s", strerror(errno));
            return -errno;
        }
        fcntl(tp[1], F_SETPIPE_SZ, (int)f->size);
        ssize_t n = tee(from, tp[1], f->size, SPLICE_F_NONBLOCK);
        size_t got = 0;
        int ret = 0;
        /* A packet (written in packet mode, perhaps by a writer outside
         * the process) comes out of the copy one per read, a read that
         * stops short with more to come: then every read is kept with its
         * length, to be written again one by one. */
        while (n > 0 && got < (size_t)n) {
            size_t want = (size_t)n - got < sizeof chunk ? (size_t)n - got : sizeof chunk;
            ssize_t r = read(tp[0], chunk, want);
            if (r <= 0)
                break;
            if (!got && (size_t)r < want)
                packets = 1;
            uint32_t len = (uint32_t)r;
            if ((packets && (ret = s->bytes(s, i, &len, sizeof len)) < 0) ||
                (ret = s->bytes(s, i, chunk, (size_t)r)) < 0)
                break;
            got += (size_t)r;
        }
        if (packets)
            f->flags |= CK_FDF_PACKETS;
        close(tp[0]);
        close(tp[1]);
        if (ret < 0)
            return ret;
        int avail = 0;
        if (ioctl(from, FIONREAD, &avail) == 0 && (size_t)avail > got) {
            snprintf(s->err, s->errlen,
                     "fd %d: cannot copy the %d bytes waiting in the pipe (got %zu)", from, avail,
                     got);
            return -EIO;
        }
    }
    return 0;
}

/* Has every write end of f's pipe been closed, everywhere? The kernel
 * says so to poll on a read end (POLLHUP: no writers), whatever is still
 * waiting in it. No one can become a writer again but through
 * /proc/PID/fd of a reader. */
static int writers_gone(const struct ck_fdcap_set *s, const struct ck_fd *f)
{
    for (uint32_t k = 0; k < s->n; k++) {
        const struct ck_fd *o = &s->fds[k];
        if (!same_pipe(o, f) || (o->oflags & O_ACCMODE) != O_RDONLY)
            continue;
        struct pollfd p = {.fd = o->fd, .events = POLLIN};
        return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
    }
    return 0;
}

/* Pipes whose other end is not in this process: no descriptor of the
 * pipe reads, or none writes. An O_RDWR descriptor (bash's
 * `exec 9<> <(:)`) is both ends at once. Then the waiting bytes. */
static int pipe_finish(struct ck_fdcap_set *s)
{
    for (uint32_t i = 0; i < s->n; i++) {
        struct ck_fd *f = &s->fds[i];
        if (f->kind != CK_FD_PIPE || s->path(s, i)[0] == '/')
            continue;
        int reader = 0, writer = 0;
        for (uint32_t k = 0; k < s->n; k++) {
            const struct ck_fd *o = &s->fds[k];
            if (same_pipe(o, f)) {
                reader |= (o->oflags & O_ACCMODE) != O_WRONLY;
                writer |= (o->oflags & O_ACCMODE) != O_RDONLY;
            }
        }
        if (reader && !writer && writers_gone(s, f)) {
            /* what it holds is all it will ever read: kept whole */
            f->flags |= CK_FDF_WRITER_GONE;
        } else if (!reader || !writer) {
            f->flags |= CK_FDF_EXTERNAL;
            if (f->fd <= 2)
                f->flags |= CK_FDF_STD_REDIRECT;
        }
    }
    return capture_pipe_data(s);
}

int ck_pipe_tree_joined(int n, int i, const struct ck_fd *f,
                        const struct ck_image *(*get)(int j, void *ctx), void *ctx)
{
    int other = 0, reader = 0, writer = 0, gone = 0;
    for (int j = 0; j < n; j++) {
        const struct ck_image *im = get(j, ctx);
        for (uint32_t l = 0; im && l < im->nfds; l++) {
            const struct ck_fd *o = &im->fds[l];
            if (o->kind != CK_FD_PIPE || o->dev != f->dev || o->ino != f->ino)
                continue;
            other |= j != i;
            reader |= (o->oflags & O_ACCMODE) != O_WRONLY;
            writer |= (o->oflags & O_ACCMODE) != O_RDONLY;
            gone |= (o->flags & CK_FDF_WRITER_GONE) != 0;
        }
    }
    return other && ((reader && writer) || gone);
}

/* A removed FIFO must be makeable again; a named one must still be the
 * FIFO it was. A pipe on fd 0-2 whose other end is gone becomes coord's
 * own: nothing to check. */
static int pipe_check(struct ck_fdrest *r)
{
    const struct ck_fd *f = r->f;
    if (f->flags & CK_FDF_STD_REDIRECT)
        return 0;
    if (f->flags & CK_FDF_DELETED)
        return ck_remake_check(r, "FIFO");
    if (r->path[0] == '/')
        return r->check_path(r);
    return 0;
}

/* Put back the bytes that were waiting in a pipe (FILEDATA records whose
 * arg is fd f) through wfd, which is non-blocking: a pipe that cannot take
 * them (its buffer could not be made as large as it was) fails, never
 * hangs. */
static int fill_pipe(struct ck_fdrest *r, const struct ck_fd *f, int wfd)
{
    uint8_t *data;
    size_t len;
    if (r->bytes(r, f->fd, &data, &len) < 0)
        return -1; /* message in r->err */
    ssize_t w = -1;
    int fl;
    if (!(f->flags & CK_FDF_PACKETS)) {
        w = len ? write(wfd, data, len) : 0;
    } else if ((fl = fcntl(wfd, F_GETFL)) >= 0 && fcntl(wfd, F_SETFL, fl | O_DIRECT) == 0) {
        /* one write per packet, in packet mode (then wfd as it was) */
        size_t at = 0;
        while (at < len) {
            uint32_t n;
            if (len - at < sizeof n)
                break;
            memcpy(&n, data + at, sizeof n);
            at += sizeof n;
            if (n > len - at || write(wfd, data + at, n) != (ssize_t)n)
                break;
            at += n;
        }
        w = at == len ? (ssize_t)len : -1;
        fcntl(wfd, F_SETFL, fl);
    }
    free(data);
    if (w != (ssize_t)len) {
        snprintf(r->err, r->errlen, "fd %d: cannot refill the pipe with its %zu waiting bytes",
                 f->fd, len);
        return -1;
    }
    return 0;
}

static int same_pipe_rest(const struct ck_fd *a, const struct ck_fd *b)
{
    return same_pipe(a, b) && !(a->flags & CK_FDF_STD_REDIRECT) &&
           !(b->flags & CK_FDF_STD_REDIRECT);
}

/* One O_RDWR description of the pipe of fds[lead] (the first descriptor
 * of it), with its buffer size and waiting bytes: a new pipe, or the FIFO
 * reopened by path (refilled only if it is empty: someone else may have
 * kept it, and its bytes, alive). Returns the fd or -1. */
static int pipe_stash(struct ck_fdrest *r, uint32_t lead)
{
    const struct ck_image *im = r->im;
    const struct ck_fd *f = &im->fds[lead];
    const char *path = im->fd_paths[lead];
    int s, shared = r->tree_pipe && path[0] != '/' ? r->tree_pipe(r, f->dev, f->ino) : -1;
    if (shared >= 0) {
        /* between processes of a tree: made (and filled) once for all */
        s = fcntl(shared, F_DUPFD_CLOEXEC, 0);
        if (s < 0)
            snprintf(r->err, r->errlen, "fd %d: cannot use the pipe shared in the tree: %s",
                     f->fd, strerror(errno));
        return s;
    }
    if (f->flags & CK_FDF_DELETED) {
        s = ck_remake_removed(path, S_IFIFO, (int)(f->mode & 07777), NULL,
                              O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (s < 0) {
            snprintf(r->err, r->errlen, "fd %d: cannot make the deleted FIFO %s again: %s",
                     f->fd, path, strerror(errno));
            return -1;
        }
    } else if (path[0] == '/') {
        /* never through a link, and only the FIFO check_path saw */
        s = r->reopen(r, lead, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (s < 0)
            return -1;
    } else {
        int pp[2];
        char lp[64];
        if (pipe2(pp, O_CLOEXEC) < 0) {
            snprintf(r->err, r->errlen, "fd %d: cannot create a pipe: %s", f->fd,
                     strerror(errno));
            return -1;
        }
        snprintf(lp, sizeof lp, "/proc/self/fd/%d", pp[0]);
        s = open(lp, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        close(pp[0]);
        close(pp[1]);
        if (s < 0) {
            snprintf(r->err, r->errlen, "fd %d: cannot reopen a new pipe read-write: %s", f->fd,
                     strerror(errno));
            return -1;
        }
    }
    /* the largest size given for its descriptors (older images have it
     * only for the read end) */
    uint64_t size = 0;
    for (uint32_t k = lead; k < im->nfds; k++)
        if (same_pipe_rest(&im->fds[k], f) && im->fds[k].size > size &&
            im->fds[k].size <= INT_MAX)
            size = im->fds[k].size;
    if (size && fcntl(s, F_GETPIPE_SZ) < (int)size)
        fcntl(s, F_SETPIPE_SZ, (int)size);
    int waiting = 0;
    if (ioctl(s, FIONREAD, &waiting) == 0 && waiting == 0)
        for (uint32_t k = lead; k < im->nfds; k++)
            if (same_pipe_rest(&im->fds[k], f) && fill_pipe(r, &im->fds[k], s) < 0) {
                close(s);
                return -1;
            }
    return s;
}

/* A pipe or FIFO descriptor, as its own open file description with its
 * access mode and O_NONBLOCK, opened through the pipe's stash (made for
 * its first descriptor, kept above every fd number still to come). */
static int open_pipe_fd(struct ck_fdrest *r)
{
    const struct ck_image *im = r->im;
    const struct ck_fd *f = r->f;
    uint32_t lead = r->i;
    for (uint32_t k = 0; k < r->i; k++)
        if (same_pipe_rest(&im->fds[k], f)) {
            lead = k;
            break;
        }
    if (r->stash[lead] < 0) {
        int s = pipe_stash(r, lead);
        if (s < 0)
            return -1;
        r->stash[lead] = fcntl(s, F_DUPFD_CLOEXEC, r->maxfd + 1);
        close(s);
        if (r->stash[lead] < 0) {
            snprintf(r->err, r->errlen, "fd %d: cannot move a pipe out of the way: %s", f->fd,
                     strerror(errno));
            return -1;
        }
    }
    char lp[64];
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", r->stash[lead]);
    int fd = open(lp, (int)(f->oflags & O_ACCMODE) | O_NONBLOCK);
    if (fd < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot open %s %s: %s", f->fd,
                 r->path[0] == '/' ? "FIFO" : "pipe", r->path, strerror(errno));
        return -1;
    }
    fcntl(fd, F_SETFL, (int)(f->oflags & (O_NONBLOCK | O_DIRECT)));
    return fd;
}

static int pipe_restore(struct ck_fdrest *r)
{
    if (r->f->flags & CK_FDF_STD_REDIRECT) {
        int fd = r->std(r);
        if (fd < 0)
            snprintf(r->err, r->errlen, "fd %d: cannot recreate %s: %s", r->f->fd, r->path,
                     strerror(errno));
        return fd;
    }
    return open_pipe_fd(r);
}

const struct ck_fdkind ck_fdkind_pipe = {
    .kind = CK_FD_PIPE,
    .name = "pipe",
    .capture = pipe_capture,
    .finish = pipe_finish,
    .check = pipe_check,
    .restore = pipe_restore,
};
