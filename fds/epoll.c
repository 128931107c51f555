/* epoll.c - epoll instances and their watch lists.
 *
 * Capture: /proc/self/fdinfo/EPFD has one line per watched descriptor:
 *
 *   tfd:        4 events:       19 data:           585870  pos:0 ino:16a31 sdev:f
 *
 * (tfd is the fd number the watch was added with, events includes the
 * EPOLLET/EPOLLONESHOT flag bits, data is the user's 64-bit cookie). The
 * image keeps them as text in the fd's path string, one "TFD EVENTS DATA"
 * line each (decimal, hex, hex). kcmp(KCMP_EPOLL_TFD) tells whether fd
 * TFD still is the file the watch was added with. If it is not (the fd
 * was dup'd elsewhere and closed, or renumbered: the kernel keeps such a
 * watch, under the old number, as long as the file is open), the fd that
 * holds the file now is found among those on the same inode (fdinfo's
 * "ino:") with the same kcmp, and the line gets it as a fourth field,
 * "TFD EVENTS DATA HOLDER": restore adds the watch through TFD pointing at
 * that file for a moment. A watch whose file no descriptor holds cannot
 * be restored and is refused; in one process of a tree its line says
 * HOLDER -1 and coord refuses it unless another process of the tree,
 * which makes the instance at restore, shares the instance (redis's
 * BGSAVE child: its parent holds the listener it closed).
 *
 * Restore: the epoll fd comes back empty (epoll_create1); once every
 * descriptor of the image is at its number and every kind's `after` has
 * run (after_all), each watch of the saved list is added again with its
 * events and data. A line with HOLDER is added through TFD made HOLDER's
 * file for a moment, then TFD is given back what it was (a later close of
 * TFD by the program leaves such watches alone, as it did before the
 * checkpoint: epoll keys them by file and number). Descriptor flags are
 * set by the shim after restore.
 *
 * Ready lists are not saved: re-adding a watch re-evaluates readiness, so
 * a descriptor that is ready after restore reports it again (a level
 * event, or one edge for EPOLLET), which epoll users must tolerate anyway.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdkind.h"
#include "fileid.h"
#include "imgio.h"
#include "procparse.h"

#define EPOLL_INFO_MAX (256u << 10)
#define EPOLL_MAX_INOS 4096             /* the shim's SHIM_MAX_FDS */

/* Capture runs on the shim's manager thread only: static buffers, no
 * malloc. */
static char info[EPOLL_INFO_MAX];
static int seen[4096];
static char list[64u << 10];

/* Inode of every open descriptor, for the holders of renumbered watches;
 * filled on first need per epoll_capture call. */
static struct {
    uint64_t ino;
    int fd;
} inos[EPOLL_MAX_INOS];
static int ninos = -1;

static void inos_fill(void)
{
    ninos = 0;
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char dbuf[8192];
    long n;
    while (dfd >= 0 && (n = syscall(SYS_getdents64, dfd, dbuf, sizeof dbuf)) > 0) {
        for (long off = 0; off < n && ninos < EPOLL_MAX_INOS;) {
            struct dirent64 *d = (struct dirent64 *)(dbuf + off);
            off += d->d_reclen;
            struct stat st;
            int fd = atoi(d->d_name);
            if (d->d_name[0] < '0' || d->d_name[0] > '9' || fd == dfd || fstat(fd, &st) < 0)
                continue;
            inos[ninos].ino = st.st_ino;
            inos[ninos++].fd = fd;
        }
    }
    if (dfd >= 0)
        close(dfd);
}

/* The descriptor that holds the file of the watch at slot now (on inode
 * ino), or -1. */
static int watch_holder(pid_t pid, struct kcmp_epoll_slot *slot, uint64_t ino)
{
    if (syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, (int)slot->tfd, slot) == 0)
        return (int)slot->tfd;
    if (ninos < 0)
        inos_fill();
    for (int i = 0; i < ninos; i++)
        if (inos[i].ino == ino && inos[i].fd != (int)slot->efd &&
            syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, inos[i].fd, slot) == 0)
            return inos[i].fd;
    return -1;
}

/* The watch list of epoll fd epfd as text: *ret_list points to a static
 * buffer valid until the next call. Returns 0, or -errno with a message in
 * err (a watch that cannot be restored, an unreadable fdinfo). */
static int epoll_capture(int epfd, const char **ret_list, int tree, char *err, size_t errlen)
{
    char *out = list;
    size_t cap = sizeof list;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
    int n = ck_read_file(path, info, sizeof info);
    if (n < 0) {
        snprintf(err, errlen, "fd %d: cannot read %s: %s", epfd, path, strerror(-n));
        return n;
    }
    if ((size_t)n >= sizeof info - 1) {
        snprintf(err, errlen, "fd %d: epoll instance watches too many descriptors", epfd);
        return -E2BIG;
    }
    pid_t pid = (pid_t)syscall(SYS_getpid); /* the real one: getpid is the shim's */
    size_t used = 0;
    int nseen = 0;
    ninos = -1;
    out[0] = 0;
    for (const char *p = info; (p = strstr(p, "tfd:")) != NULL;) {
        uint64_t tfd, events, data;
        p += 4;
        while (*p == ' ' || *p == '\t')
            p++;
        if (ck_parse_dec(&p, &tfd) < 0)
            break;
        const char *e = strstr(p, "events:");
        const char *d = e ? strstr(e, "data:") : NULL;
        if (!e || !d)
            break;
        e += 7;
        d += 5;
        while (*e == ' ' || *e == '\t')
            e++;
        while (*d == ' ' || *d == '\t')
            d++;
        if (ck_parse_hex(&e, &events) < 0 || ck_parse_hex(&d, &data) < 0)
            break;
        p = d;
        const char *nl = strchr(p, '\n'), *in = strstr(p, "ino:");
        uint64_t ino = 0;
        if (in && (!nl || in < nl)) {
            in += 4;
            ck_parse_hex(&in, &ino);
        }
        /* A number watched more than once (the first file was dup'd,
         * closed, and the number reused): the kernel tells the watches
         * apart by their order among those of the number (toff). */
        uint32_t toff = 0;
        for (int i = 0; i < nseen; i++)
            toff += seen[i] == (int)tfd;
        if (nseen < (int)(sizeof seen / sizeof seen[0]))
            seen[nseen++] = (int)tfd;
        struct kcmp_epoll_slot slot = {(uint32_t)epfd, (uint32_t)tfd, toff};
        int holder = watch_holder(pid, &slot, ino);
        /* One process of a tree: another process may hold the file and
         * share this very instance (redis's BGSAVE child closed the
         * listener its parent keeps): coord decides (ck_epoll_unheld),
         * the line says holder -1. */
        if (holder < 0 && !tree) {
            snprintf(err, errlen,
                     "fd %d: epoll instance watches a file that is no longer fd %d and that no "
                     "descriptor holds, which ckshim cannot restore",
                     epfd, (int)tfd);
            return -ENOTSUP;
        }
        char hs[16] = "";
        if (holder != (int)tfd)
            snprintf(hs, sizeof hs, " %d", holder);
        int w = snprintf(out + used, cap - used, "%d %llx %llx%s\n", (int)tfd,
                         (unsigned long long)events, (unsigned long long)data, hs);
        if (w < 0 || (size_t)w >= cap - used) {
            snprintf(err, errlen, "fd %d: epoll watch list too long", epfd);
            return -E2BIG;
        }
        used += (size_t)w;
    }
    *ret_list = out;
    return 0;
}

static int epoll_capture_fd(struct ck_fdcap *c)
{
    if (strcmp(c->target, "anon_inode:[eventpoll]"))
        return 0;
    /* path: the watch list */
    c->f->kind = CK_FD_EPOLL;
    int r = epoll_capture(c->fd, &c->path, c->tree, c->err, c->errlen);
    return r < 0 ? r : 1;
}

static int epoll_restore(struct ck_fdrest *r)
{
    int fd = epoll_create1(0); /* watches: after_all, once every fd is back */
    if (fd < 0)
        snprintf(r->err, r->errlen, "fd %d: cannot recreate %s: %s", r->f->fd, r->path,
                 strerror(errno));
    return fd;
}

/* Watch the file now at fd holder under the number tfd: tfd's own file
 * (if any) is kept aside above every descriptor and put back. Returns 0
 * or -1 (errno). */
static int add_renumbered(int epfd, int tfd, int holder, struct epoll_event *ev)
{
    int used = fcntl(tfd, F_GETFD) >= 0;
    int aside = used ? fcntl(tfd, F_DUPFD_CLOEXEC, tfd + 1) : -1;
    if ((used && aside < 0) || dup2(holder, tfd) < 0)
        return -1;
    int r = epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, ev);
    int e = errno;
    if (aside >= 0) {
        dup2(aside, tfd);
        close(aside);
    } else {
        close(tfd);
    }
    errno = e;
    return r;
}

/* One line of a watch list ("TFD EVENTS DATA[ HOLDER]\n") at *p, which
 * moves past it. 1, or 0 at its end. */
static int next_watch(const char **p, long *tfd, struct epoll_event *ev, long *holder)
{
    char *end;
    if (!*p || !**p)
        return 0;
    *tfd = strtol(*p, &end, 10);
    if (end == *p)
        return 0;
    unsigned long long events = strtoull(end, &end, 16);
    unsigned long long data = strtoull(end, &end, 16);
    *holder = *tfd;
    if (*end == ' ')
        *holder = strtol(end, &end, 10);
    *p = strchr(end, '\n');
    if (*p)
        (*p)++;
    *ev = (struct epoll_event){.events = (uint32_t)events, .data.u64 = data};
    return 1;
}

int ck_epoll_unheld(const char *watches)
{
    long tfd, holder;
    struct epoll_event ev;
    while (next_watch(&watches, &tfd, &ev, &holder))
        if (holder < 0)
            return (int)tfd;
    return -1;
}

static int image_has_fd(const struct ck_image *im, long fd)
{
    for (uint32_t k = 0; k < im->nfds; k++)
        if (im->fds[k].fd == fd)
            return 1;
    return 0;
}

/* Before anything changes: every watch's file is held by a descriptor of
 * the image (after_all dup2s from the holder's number onto the watched
 * one, which the program may have closed since: that one may be any). */
static int epoll_check(struct ck_fdrest *r)
{
    const char *p = r->path;
    long tfd, holder;
    struct epoll_event ev;
    while (next_watch(&p, &tfd, &ev, &holder))
        if (holder < 0 && r->tree_pipe) {
            continue; /* made by another process of the tree (coord checked) */
        } else if (holder < 0) {
            snprintf(r->err, r->errlen, "fd %d: the epoll instance watches a file that is no "
                     "longer fd %ld and that no descriptor of this process holds (another "
                     "process of its tree made it, which is not so here)", r->f->fd, tfd);
            return -1;
        } else if (!image_has_fd(r->im, holder) || tfd < 0 || tfd > INT_MAX) {
            snprintf(r->err, r->errlen, "fd %d: the image is damaged: the epoll instance "
                     "watches fd %ld through fd %ld, which is not a descriptor of the image",
                     r->f->fd, tfd, holder);
            return -1;
        }
    return 0;
}

/* Re-add every watch of this epoll fd. A watch on a descriptor that was
 * redirected to coord's own or /dev/null (a terminal or outside pipe on
 * fd 0-2) may not be pollable: it is dropped. Returns 0, or -errno with a
 * message in err. */
static int epoll_restore_watches(struct ck_fdrest *r)
{
    const struct ck_image *im = r->im;
    const struct ck_fd *f = r->f;
    const char *p = r->path;
    long tfd, holder;
    struct epoll_event ev;
    while (next_watch(&p, &tfd, &ev, &holder)) {
        if (holder < 0) {
            snprintf(r->err, r->errlen, "fd %d: the epoll instance watches a file that is no "
                     "longer fd %ld and that no descriptor of this process holds", f->fd, tfd);
            return -EINVAL;
        }
        int ret = holder == tfd ? epoll_ctl(f->fd, EPOLL_CTL_ADD, (int)tfd, &ev)
                                : add_renumbered(f->fd, (int)tfd, (int)holder, &ev);
        if (ret == 0)
            continue;
        int e = errno;
        int redirected = 0;
        for (uint32_t k = 0; k < im->nfds; k++)
            if (im->fds[k].fd == tfd && (im->fds[k].flags & CK_FDF_STD_REDIRECT))
                redirected = 1;
        if (redirected && e == EPERM)
            continue;
        snprintf(r->err, r->errlen, "fd %d: cannot watch fd %ld again with epoll: %s", f->fd,
                 tfd, strerror(e));
        return -e;
    }
    return 0;
}

/* After restore, fd holds another file than the one its watches were
 * added on (the shim replaced a stand-in with the real one: pidfd.c), and
 * the kernel dropped those watches with the stand-in: every epoll
 * instance of the set that watched through fd watches the new file again,
 * with the saved events and data. 0, or -1 with the set's err. */
int ck_epoll_rewatch(struct ck_fdcap_set *s, int fd)
{
    for (uint32_t i = 0; i < s->n; i++) {
        const struct ck_fd *e = &s->fds[i];
        if (e->kind != CK_FD_EPOLL || e->share_with >= 0)
            continue;
        const char *p = s->path(s, i);
        long tfd, holder;
        struct epoll_event ev;
        while (next_watch(&p, &tfd, &ev, &holder)) {
            if (holder != fd)
                continue;
            int r = holder == tfd ? epoll_ctl(e->fd, EPOLL_CTL_ADD, fd, &ev)
                                  : add_renumbered(e->fd, (int)tfd, fd, &ev);
            if (r < 0 && errno != EEXIST) {
                snprintf(s->err, s->errlen, "fd %d: cannot watch fd %ld again with epoll: %s",
                         e->fd, tfd, strerror(errno));
                return -1;
            }
        }
    }
    return 0;
}

const struct ck_fdkind ck_fdkind_epoll = {
    .kind = CK_FD_EPOLL,
    .name = "epoll",
    .capture = epoll_capture_fd,
    .check = epoll_check,
    .restore = epoll_restore,
    .after_all = epoll_restore_watches,
};
