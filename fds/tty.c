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
 * (the TTYS record, kept by the shim's tty service). What that cannot give
 * back is refused at checkpoint: bytes waiting in either direction, and a
 * pair that is the controlling terminal of a session the program does not
 * lead.
 */
#include <errno.h>
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
            if (getsid(0) != (pid_t)syscall(SYS_getpid)) {
                snprintf(s->err, s->errlen, "fd %d: the pseudo-terminal the program opened "
                         "(/dev/pts/%llu) is the controlling terminal of a session it does not "
                         "lead, which ckshim cannot restore", f->fd, (unsigned long long)f->aux);
                return -ENOTSUP;
            }
            f->flags |= CK_FDF_PTY_CTTY;
        }
        if (f->kind == CK_FD_PTY && ioctl(f->fd, FIONREAD, &n) == 0 && n > 0) {
            snprintf(s->err, s->errlen, "fd %d: %d bytes wait in the pseudo-terminal the program "
                     "opened (/dev/pts/%llu), which ckshim cannot restore yet; read them first",
                     f->fd, n, (unsigned long long)f->aux);
            return -ENOTSUP;
        }
    }
    return 0;
}

static int tty_restore(struct ck_fdrest *r)
{
    int fd;
    if (r->f->flags & CK_FDF_STD_REDIRECT) {
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

/* A pseudo-terminal the program opened both ends of (CK_FD_PTY): a new
 * pair, made for whichever of its descriptors comes first (the master
 * waits in stash until its number comes if a slave came first), its
 * slaves opened from the master (TIOCGPTPEER: no path, never someone
 * else's terminal). Bytes waiting in it are not kept, and it is no one's
 * controlling terminal. */
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
    if (master < 0) {
        int p = new_pty(r, m);
        if (p < 0)
            return -1;
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
    if (m == i && (f->flags & CK_FDF_PTY_CTTY)) {
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
    .restore = tty_restore,
};

const struct ck_fdkind ck_fdkind_pty = {
    .kind = CK_FD_PTY,
    .name = "pty",
    /* captured by tty_capture (masters) and capture_pty_slaves (slaves) */
    .finish = capture_pty_slaves,
    .check = pty_check,
    .restore = open_pty,
};
