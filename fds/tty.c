/* tty.c - terminals and pseudo-terminals.
 *
 * CK_FD_TTY: a terminal the program did not open both ends of (its
 * controlling terminal, a /dev/pts/N of someone else). On fd 0-2 it
 * becomes coord's own at restore (CK_FDF_STD_REDIRECT: the terminal coord
 * restore runs in, or /dev/null with --detach), with the program's modes
 * put back by the shim (capture_tty_after_restore); elsewhere it is opened
 * again by path (/dev/null if that fails).
 *
 * CK_FD_PTY: a pseudo-terminal the program opened both ends of (its
 * master, and slaves found once every descriptor is known: finish). The
 * pair is made anew at restore with the master's modes and window size
 * (the TTYS record, kept by the shim's tty service) and the bytes that
 * waited in it in both directions (pty_save_queues). A pair that is the
 * controlling terminal of a session the program does not lead is refused
 * at checkpoint.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <asm/termbits.h> /* the kernel's struct termios, as in TTYS */
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fdkind.h"
#include "fileid.h"
#include "imgio.h"

static int is_tty_dev(dev_t rdev)
{
    unsigned ma = major(rdev);
    return ma == 4 || (ma >= 136 && ma <= 143) || (ma == 5 && minor(rdev) <= 2);
}

static int tty_capture(struct ck_fdcap *c)
{
    const struct stat *st = c->st;
    struct ck_fd *f = c->f;
    int ptn;
    if (!S_ISCHR(st->st_mode))
        return 0;
    if (major(st->st_rdev) == 5 && minor(st->st_rdev) == 2 && ioctl(c->fd, TIOCGPTN, &ptn) == 0) {
        /* a master the program opened: the pair is made anew (its slaves,
         * found by finish, with it) */
        f->kind = CK_FD_PTY;
        f->flags |= CK_FDF_PTY_MASTER;
        f->aux = (uint64_t)ptn;
        c->tty(c);
        return 1;
    }
    if (!is_tty_dev(st->st_rdev))
        return 0;
    f->kind = CK_FD_TTY;
    if (c->fd <= 2) {
        f->flags |= CK_FDF_STD_REDIRECT;
        c->tty(c);
    }
    return 1;
}

/* Bytes waiting in a pseudo-terminal pair: typed into the master, not yet
 * read by the slave (its line discipline's input, with a line not
 * finished yet), and written by the slave, not yet read by the master.
 * Neither can be peeked, so they are read out and written back, through
 * a slave of the pair opened for the moment (TIOCGPTPEER), with the
 * terminal set for the time so that nothing is translated, echoed or
 * turned into a signal: in raw mode to read (a line mode slave would not
 * give an unfinished line), in line mode with every editing character
 * disabled to write back, so that lines end where they ended. The
 * kernel moves bytes written to one side into the other's queue a moment
 * later (a work item); poll() on the receiving side waits for it. */
#define PTY_INQ_MAX 8192                /* the line discipline holds 4 KiB */
#define PTY_OUTQ_MAX (128u << 10)       /* the master's side: 64 KiB and some */
static char pty_inq[PTY_INQ_MAX], pty_outq[PTY_OUTQ_MAX]; /* capture has no malloc */

static void pty_passthrough(struct termios *t, const struct termios *orig, int lines)
{
    *t = *orig;
    t->c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF |
                    IUCLC);
    t->c_oflag &= ~OPOST;
    t->c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL | ISIG | IEXTEN | ICANON);
    if (lines) {
        t->c_lflag |= ICANON;
        static const int edit[] = {VINTR, VQUIT, VERASE, VKILL, VEOF, VSUSP, VREPRINT,
                                   VWERASE, VLNEXT, VDISCARD, VSTART, VSTOP};
        for (unsigned k = 0; k < sizeof edit / sizeof edit[0]; k++)
            t->c_cc[edit[k]] = 0; /* _POSIX_VDISABLE */
    } else {
        t->c_cc[VMIN] = 1;
        t->c_cc[VTIME] = 0;
    }
}

static int pty_settle(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0);
}

static int write_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Write the queues back (or into a new pair at restore): `in` for the
 * slave to read, `out` for the master to read; then the modes orig. */
static int pty_refill(int master, int slave, const struct termios *orig, const char *in,
                      size_t inlen, const char *out, size_t outlen)
{
    struct termios t;
    int rc = 0;
    pty_passthrough(&t, orig, (orig->c_lflag & ICANON) != 0);
    if (ioctl(slave, TCSETS, &t) < 0)
        return -1;
    if (inlen && (write_all(master, in, inlen) < 0 || pty_settle(slave) < 0))
        rc = -1;
    if (!rc && outlen && (write_all(slave, out, outlen) < 0 || pty_settle(master) < 0))
        rc = -1;
    if (ioctl(slave, TCSETS, orig) < 0)
        rc = -1;
    return rc;
}

/* Read what waits in fd without blocking (the program's master may be a
 * blocking descriptor: only as much as FIONREAD says is there). */
static ssize_t pty_drain(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    int n;
    while (ioctl(fd, FIONREAD, &n) == 0 && n > 0) {
        if (got + (size_t)n > cap)
            return -1;
        ssize_t r = read(fd, buf + got, (size_t)n);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Capture: the queues of the pair whose master is fds[i], saved as its
 * bytes (the slave's input first, f->size bytes of it, then the
 * master's), and put back at once: the program goes on as it was. */
static int pty_save_queues(struct ck_fdcap_set *s, uint32_t i)
{
    struct ck_fd *f = &s->fds[i];
    struct termios orig, raw;
    int master = f->fd;
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (slave < 0) {
        int n = 0;
        if (ioctl(master, FIONREAD, &n) == 0 && n > 0) {
            snprintf(s->err, s->errlen, "fd %d: %d bytes wait in the pseudo-terminal the "
                     "program opened (/dev/pts/%llu), and its slave cannot be opened to keep "
                     "them: %s", f->fd, n, (unsigned long long)f->aux, strerror(errno));
            return -ENOTSUP;
        }
        return 0; /* locked, never opened: nothing can wait in it */
    }
    int rc = -EIO;
    ssize_t in = -1, out = -1;
    /* a master in packet mode (screen) gives a status byte before each
     * read's data: off while its queue is read and put back */
    int pkt = 0, off = 0;
    if (ioctl(master, TIOCGPKT, &pkt) < 0)
        pkt = 0;
    if (pkt && ioctl(master, TIOCPKT, &off) < 0)
        goto out;
    if (ioctl(slave, TCGETS, &orig) < 0)
        goto out;
    pty_passthrough(&raw, &orig, 0);
    if (ioctl(slave, TCSETS, &raw) < 0)
        goto out;
    pty_settle(slave);
    in = pty_drain(slave, pty_inq, sizeof pty_inq);
    pty_settle(master); /* what the slave wrote a moment ago, too */
    out = pty_drain(master, pty_outq, sizeof pty_outq);
    if (in < 0 || out < 0) {
        snprintf(s->err, s->errlen, "fd %d: more bytes wait in the pseudo-terminal the program "
                 "opened (/dev/pts/%llu) than ckshim can keep", f->fd,
                 (unsigned long long)f->aux);
        rc = -E2BIG;
    }
    if (in < 0)
        in = 0;
    if (out < 0)
        out = 0;
    if (pty_refill(master, slave, &orig, pty_inq, (size_t)in, pty_outq, (size_t)out) < 0) {
        snprintf(s->err, s->errlen, "fd %d: cannot put back the bytes waiting in the "
                 "pseudo-terminal /dev/pts/%llu: %s", f->fd, (unsigned long long)f->aux,
                 strerror(errno));
        rc = -EIO;
        goto out;
    }
    if (rc == -E2BIG)
        goto out;
    f->size = (uint64_t)in;
    rc = 0;
    if (in && (rc = s->bytes(s, i, pty_inq, (size_t)in)) < 0)
        goto out;
    if (out)
        rc = s->bytes(s, i, pty_outq, (size_t)out);
out:
    if (rc == -EIO && !s->err[0])
        snprintf(s->err, s->errlen, "fd %d: cannot read the modes of the pseudo-terminal "
                 "/dev/pts/%llu: %s", f->fd, (unsigned long long)f->aux, strerror(errno));
    if (pkt)
        ioctl(master, TIOCPKT, &pkt);
    close(slave);
    return rc;
}

/* Slaves of pseudo-terminals whose master is here too: one pair, made
 * anew at restore. What that cannot give back is refused: bytes waiting
 * in either direction, and a pair that is the controlling terminal. */
static int capture_pty_slaves(struct ck_fdcap_set *s)
{
    char stat[1024];
    unsigned long long ctty = 0;
    const char *rp = ck_read_file("/proc/self/stat", stat, sizeof stat) > 0 ? strrchr(stat, ')')
                                                                             : NULL;
    if (rp)
        sscanf(rp + 1, " %*c %*d %*d %*d %llu", &ctty);
    for (uint32_t i = 0; i < s->n; i++) {
        struct ck_fd *f = &s->fds[i];
        struct stat st;
        if (f->kind != CK_FD_TTY || fstat(f->fd, &st) < 0 || major(st.st_rdev) < 136 ||
            major(st.st_rdev) > 143)
            continue;
        uint64_t ptn = minor(st.st_rdev) + 256ULL * (major(st.st_rdev) - 136);
        for (uint32_t k = 0; k < s->n; k++)
            if (s->fds[k].kind == CK_FD_PTY && s->fds[k].aux == ptn) {
                f->kind = CK_FD_PTY;
                f->aux = ptn;
                f->flags &= ~CK_FDF_STD_REDIRECT;
                break;
            }
    }
    for (uint32_t i = 0; i < s->n; i++) {
        struct ck_fd *f = &s->fds[i];
        int n = 0;
        if (f->kind == CK_FD_PTY && major(ctty) >= 136 && major(ctty) <= 143 &&
            minor(ctty) + 256ULL * (major(ctty) - 136) == f->aux) {
            /* the session leader's controlling terminal: made the new
             * pair's again by a restore in a session of its own */
            /* (in a tree, the session's leader gets it: coord checks that
             * one of the tree leads the session) */
            if ((pid_t)syscall(SYS_getsid, 0) == (pid_t)syscall(SYS_getpid)) {
                f->flags |= CK_FDF_PTY_CTTY;
            } else if (!s->tree) {
                snprintf(s->err, s->errlen, "fd %d: the pseudo-terminal the program opened "
                         "(/dev/pts/%llu) is the controlling terminal of a session it does not "
                         "lead, which ckshim cannot restore", f->fd, (unsigned long long)f->aux);
                return -ENOTSUP;
            }
        }
        if (f->kind == CK_FD_PTY && (f->flags & CK_FDF_PTY_MASTER) && f->share_with < 0 &&
            (n = pty_save_queues(s, i)) < 0)
            return n;
    }
    return 0;
}

/* /dev/tty, when the controlling terminal is a pair the program opened:
 * the pair becomes the controlling terminal only when it is made (at its
 * own number, maybe later), so /dev/tty is opened once every descriptor
 * is in place (tty_after), a placeholder until then. */
static int ctty_later(const struct ck_fdrest *r)
{
    if ((r->f->flags & CK_FDF_STD_REDIRECT) || strcmp(r->path, "/dev/tty"))
        return 0;
    for (uint32_t k = 0; k < r->im->nfds; k++)
        if (r->im->fds[k].kind == CK_FD_PTY && (r->im->fds[k].flags & CK_FDF_PTY_CTTY))
            return 1;
    return 0;
}

static int tty_after(struct ck_fdrest *r)
{
    if (!ctty_later(r))
        return 0;
    int fd = open("/dev/tty", r->oflags | O_NOCTTY);
    if (fd < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot open /dev/tty, the new controlling "
                 "terminal: %s", r->f->fd, strerror(errno));
        return -1;
    }
    int rc = dup2(fd, r->f->fd) < 0 ? -1 : 0;
    for (uint32_t k = 0; !rc && k < r->im->nfds; k++)
        if (r->im->fds[k].share_with == r->f->fd && dup2(fd, r->im->fds[k].fd) < 0)
            rc = -1;
    if (rc < 0)
        snprintf(r->err, r->errlen, "fd %d: cannot put /dev/tty in place: %s", r->f->fd,
                 strerror(errno));
    close(fd);
    return rc;
}

/* Before anything changes: a terminal reopened by its path must still be
 * a character device there (one that is gone comes back as /dev/null);
 * anything else, such as a FIFO whose open would block, is refused. */
static int tty_check(struct ck_fdrest *r)
{
    struct stat st;
    if ((r->f->flags & CK_FDF_STD_REDIRECT) || stat(r->path, &st) < 0 || S_ISCHR(st.st_mode))
        return 0;
    snprintf(r->err, r->errlen, "fd %d: %s is not a terminal, as the image says it is", r->f->fd,
             r->path);
    return -1;
}

static int tty_restore(struct ck_fdrest *r)
{
    int fd;
    if (ctty_later(r)) {
        fd = open("/dev/null", r->oflags & O_ACCMODE);
    } else if (r->f->flags & CK_FDF_STD_REDIRECT) {
        fd = r->std(r);
    } else {
        fd = open(r->path, r->oflags | O_NOCTTY);
        if (fd < 0)
            fd = open("/dev/null", r->oflags & O_ACCMODE);
    }
    if (fd < 0)
        snprintf(r->err, r->errlen, "fd %d: cannot recreate %s: %s", r->f->fd, r->path,
                 strerror(errno));
    return fd;
}

/* The program's own pseudo-terminal as its controlling terminal needs a
 * session of its own. */
static int pty_check(struct ck_fdrest *r)
{
    if ((r->f->flags & CK_FDF_PTY_CTTY) && !r->detach) {
        snprintf(r->err, r->errlen, "fd %d: the program's controlling terminal is a "
                 "pseudo-terminal it opened; only a restore with --detach (a session of its "
                 "own) can give it back", r->f->fd);
        return -1;
    }
    return 0;
}

/* A new pseudo-terminal for the pair whose master is fds[m], with the
 * modes and window size it had. Returns its master or -1. */
static int new_pty(struct ck_fdrest *r, uint32_t m)
{
    const struct ck_image *im = r->im;
    int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC), unlock = 0;
    if (fd < 0 || ioctl(fd, TIOCSPTLCK, &unlock) < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot make a new pseudo-terminal: %s",
                 im->fds[m].fd, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    for (uint32_t k = 0; k < im->nttys; k++) {
        const struct ck_tty *y = &im->ttys[k];
        if (y->fd != im->fds[m].fd)
            continue;
        struct termios t;
        if (ioctl(fd, TCGETS, &t) == 0) {
            t.c_iflag = y->iflag;
            t.c_oflag = y->oflag;
            t.c_cflag = y->cflag;
            t.c_lflag = y->lflag;
            t.c_line = y->line;
            memcpy(t.c_cc, y->cc, sizeof y->cc < sizeof t.c_cc ? sizeof y->cc : sizeof t.c_cc);
            ioctl(fd, TCSETS, &t);
        }
        struct winsize ws = {y->ws_row, y->ws_col, y->ws_xpixel, y->ws_ypixel};
        if (y->flags & CK_TTYF_WINSIZE)
            ioctl(fd, TIOCSWINSZ, &ws);
    }
    return fd;
}

/* The bytes that waited in the pair (pty_save_queues), into the new one. */
static int pty_restore_queues(struct ck_fdrest *r, uint32_t m, int master)
{
    const struct ck_fd *f = &r->im->fds[m];
    uint8_t *data;
    size_t len;
    if (r->bytes(r, f->fd, &data, &len) < 0)
        return -1;
    if (!len)
        return 0;
    struct termios orig;
    int rc = -1, slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (f->size > len)
        errno = EINVAL;
    else if (slave >= 0 && ioctl(slave, TCGETS, &orig) == 0)
        rc = pty_refill(master, slave, &orig, (const char *)data, (size_t)f->size,
                        (const char *)data + f->size, len - (size_t)f->size);
    if (rc < 0)
        snprintf(r->err, r->errlen, "fd %d: cannot put the %zu bytes that waited in the "
                 "pseudo-terminal into the new one: %s", f->fd, len, strerror(errno));
    if (slave >= 0)
        close(slave);
    free(data);
    return rc;
}

/* A pseudo-terminal the program opened both ends of (CK_FD_PTY): a new
 * pair, made for whichever of its descriptors comes first (the master
 * waits in stash until its number comes if a slave came first), its
 * slaves opened from the master (TIOCGPTPEER: no path, never someone
 * else's terminal), with the bytes that waited in it. */
static int open_pty(struct ck_fdrest *r)
{
    const struct ck_image *im = r->im;
    const struct ck_fd *f = r->f;
    uint32_t i = r->i;
    int *stash = r->stash;
    uint32_t m = 0;
    while (m < im->nfds && !(im->fds[m].kind == CK_FD_PTY &&
                             (im->fds[m].flags & CK_FDF_PTY_MASTER) &&
                             im->fds[m].share_with < 0 && im->fds[m].aux == f->aux))
        m++;
    if (m == im->nfds) {
        snprintf(r->err, r->errlen, "fd %d: the image has no master for pseudo-terminal %llu",
                 f->fd, (unsigned long long)f->aux);
        return -1;
    }
    int master = m < i && stash[m] < 0 ? im->fds[m].fd : stash[m];
    int made = master < 0 && r->tree_pty ? r->tree_pty(r, f->aux) : -1;
    if (made >= 0) {
        /* the pair the tree made for the processes that share it */
        master = stash[m] = fcntl(made, F_DUPFD_CLOEXEC, r->maxfd + 1);
        if (m == i)
            stash[m] = -1;
    } else if (master < 0) {
        int p = new_pty(r, m);
        if (p < 0 || pty_restore_queues(r, m, p) < 0) {
            if (p >= 0)
                close(p);
            return -1;
        }
        /* packet mode once the queues are back (it would put a status
         * byte before what pty_refill reads) */
        for (uint32_t k = 0; k < r->im->nttys; k++) {
            int one = 1;
            if (r->im->ttys[k].fd == r->im->fds[m].fd &&
                (r->im->ttys[k].flags & CK_TTYF_PACKET) && ioctl(p, TIOCPKT, &one) < 0) {
                snprintf(r->err, r->errlen, "fd %d: cannot put the new pseudo-terminal in "
                         "packet mode: %s", r->im->fds[m].fd, strerror(errno));
                close(p);
                return -1;
            }
        }
        if (m == i)
            master = p;
        else {
            master = stash[m] = fcntl(p, F_DUPFD_CLOEXEC, r->maxfd + 1);
            close(p);
        }
    } else if (m == i) {
        stash[m] = -1;
    }
    if (master < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot move a pseudo-terminal out of the way: %s",
                 f->fd, strerror(errno));
        return -1;
    }
    if (m == i && (f->flags & CK_FDF_PTY_CTTY) && !r->for_tree) {
        /* a new session's leader (--detach) takes it as its controlling
         * terminal, through a slave opened for the moment */
        int sl = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
        if (sl < 0 || ioctl(sl, TIOCSCTTY, 0) < 0) {
            snprintf(r->err, r->errlen, "fd %d: cannot make the new pseudo-terminal the "
                     "controlling terminal: %s", f->fd, strerror(errno));
            if (sl >= 0)
                close(sl);
            return -1;
        }
        close(sl);
    }
    int fl = (int)(f->oflags & (O_ACCMODE | O_NONBLOCK));
    if (m == i) {
        fcntl(master, F_SETFL, fl & O_NONBLOCK);
        return master;
    }
    int fd = ioctl(master, TIOCGPTPEER, fl | O_NOCTTY);
    if (fd < 0)
        snprintf(r->err, r->errlen, "fd %d: cannot open the new pseudo-terminal's slave: %s",
                 f->fd, strerror(errno));
    return fd;
}

const struct ck_fdkind ck_fdkind_tty = {
    .kind = CK_FD_TTY,
    .name = "tty",
    .capture = tty_capture,
    .check = tty_check,
    .restore = tty_restore,
    .after = tty_after,
};

const struct ck_fdkind ck_fdkind_pty = {
    .kind = CK_FD_PTY,
    .name = "pty",
    /* captured by tty_capture (masters) and capture_pty_slaves (slaves) */
    .finish = capture_pty_slaves,
    .check = pty_check,
    .restore = open_pty,
};
