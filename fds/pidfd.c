/* pidfd.c - pidfds (pidfd_open, clone's CLONE_PIDFD).
 *
 * Capture: fdinfo's "Pid:" (-1 once the process has exited and been
 * reaped) says whose: the process itself (restore opens one of the
 * restored process), one of its threads (aux: its tid as the program saw
 * it; the shim opens one of the restored thread, `resumed`), or a process
 * that has exited (restore makes one of a process that exits at once).
 * In a tree checkpoint, another process of the tree (aux: the pid the
 * tree knows it by; coord checks it is one; the shim opens one of the
 * restored process, `resumed`, once every process exists). Another live
 * process is not in the image: refused.
 *
 * Restore: see open_pidfd. PIDFD_NONBLOCK and PIDFD_THREAD are kept (as
 * O_NONBLOCK and O_EXCL in oflags).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdkind.h"
#include "imgio.h"

static int pidfd_capture(struct ck_fdcap *c)
{
    if (strcmp(c->target, "anon_inode:[pidfd]") || c->infolen <= 0)
        return 0;
    struct ck_fd *f = c->f;
    f->kind = CK_FD_PIDFD;
    const char *p = strstr(c->info, "\nPid:");
    int pid = p ? atoi(p + 5) : 0;
    if (pid == -1) {
        f->flags |= CK_FDF_PIDFD_DEAD;
        return 1;
    }
    if (pid == (int)syscall(SYS_getpid)) /* the real one: getpid is the shim's */
        return 1;
    int vtid = pid > 0 ? c->vtid_of(c, pid) : 0;
    if (vtid > 0) {
        f->flags |= CK_FDF_PIDFD_THREAD;
        f->aux = (uint64_t)vtid;
        return 1;
    }
    if (c->tree && pid > 0) {
        /* another process of the tree (coord checks it is one) */
        f->flags |= CK_FDF_PIDFD_TREE;
        f->aux = (uint64_t)c->vpid_of(c, pid);
        return 1;
    }
    snprintf(c->err, c->errlen, "fd %d is a pidfd of process %d, which is not part of the "
             "checkpoint; ckshim cannot restore it", f->fd, pid);
    return -ENOTSUP;
}

/* A pidfd. Of the process itself: opened on this very process (coord
 * becomes the program). Of one of its threads: a stand-in on the process
 * that the shim replaces once the threads are back (pidfd_resumed). Of a
 * process that has exited: every pidfd of one such process (one inode) is
 * opened on a child made to exit at once, before it is reaped, so that
 * they are one process again; the later ones wait in the stash. */
static int open_pidfd(struct ck_fdrest *r)
{
    const struct ck_image *im = r->im;
    const struct ck_fd *f = r->f;
    uint32_t i = r->i;
    int *stash = r->stash;
    unsigned flags = f->oflags & (O_NONBLOCK | O_EXCL); /* PIDFD_NONBLOCK, PIDFD_THREAD */
    if (!(f->flags & CK_FDF_PIDFD_DEAD)) {
        int fd = (int)syscall(SYS_pidfd_open, getpid(),
                              (f->flags & (CK_FDF_PIDFD_THREAD | CK_FDF_PIDFD_TREE)) ? 0 : flags);
        if (fd < 0)
            snprintf(r->err, r->errlen, "fd %d: cannot open a pidfd of the restored process: %s",
                     f->fd, strerror(errno));
        return fd;
    }
    if (stash[i] >= 0) {
        int fd = stash[i];
        stash[i] = -1;
        return fd;
    }
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    int fd = -1;
    for (uint32_t k = i; child > 0 && k < im->nfds; k++) {
        const struct ck_fd *o = &im->fds[k];
        if (o->kind != CK_FD_PIDFD || !(o->flags & CK_FDF_PIDFD_DEAD) || o->share_with >= 0 ||
            o->ino != f->ino)
            continue;
        int p = (int)syscall(SYS_pidfd_open, child, o->oflags & O_NONBLOCK);
        if (p >= 0 && k != i) {
            stash[k] = fcntl(p, F_DUPFD_CLOEXEC, r->maxfd + 1);
            close(p);
            p = stash[k];
        }
        if (p < 0) {
            snprintf(r->err, r->errlen,
                     "fd %d: cannot make a pidfd of a process that has exited: %s", o->fd,
                     strerror(errno));
            if (fd >= 0)
                close(fd);
            fd = -1;
            break;
        }
        if (k == i)
            fd = p;
    }
    if (child < 0)
        snprintf(r->err, r->errlen, "fd %d: cannot make a process for a pidfd: %s", f->fd,
                 strerror(errno));
    else
        waitpid(child, NULL, 0);
    return fd;
}

/* After restore, once the threads are back: the pidfds of threads are
 * stand-ins (coord could not know the new tids), replaced by pidfds of the
 * restored threads. */
static int pidfd_resumed(struct ck_fdcap_set *s)
{
    for (uint32_t i = 0; i < s->n; i++) {
        const struct ck_fd *f = &s->fds[i];
        if (f->kind != CK_FD_PIDFD || !(f->flags & (CK_FDF_PIDFD_THREAD | CK_FDF_PIDFD_TREE)) ||
            f->share_with >= 0)
            continue;
        pid_t tid = (f->flags & CK_FDF_PIDFD_TREE) ? s->pid_of(s, (int)f->aux)
                                                   : s->tid_of(s, (int)f->aux);
        int p = tid > 0 ? (int)syscall(SYS_pidfd_open, tid, f->oflags & (O_NONBLOCK | O_EXCL))
                        : -1;
        if (p < 0 || dup3(p, f->fd, (f->fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
            snprintf(s->err, s->errlen, "fd %d: cannot open a pidfd of the restored %s %d: %s",
                     f->fd, (f->flags & CK_FDF_PIDFD_TREE) ? "process" : "thread", (int)f->aux,
                     tid > 0 ? strerror(errno) : "no such thread");
            if (p >= 0)
                close(p);
            return -1;
        }
        close(p);
        /* descriptors that shared it (dup) share the new one; the watches
         * epoll had on the stand-in went with it (asyncio's pidfd child
         * watcher) */
        if (ck_epoll_rewatch(s, f->fd) < 0)
            return -1;
        for (uint32_t k = i + 1; k < s->n; k++)
            if (s->fds[k].share_with == f->fd &&
                (dup3(f->fd, s->fds[k].fd, (s->fds[k].fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0 ||
                 ck_epoll_rewatch(s, s->fds[k].fd) < 0))
                return -1;
    }
    return 0;
}

const struct ck_fdkind ck_fdkind_pidfd = {
    .kind = CK_FD_PIDFD,
    .name = "pidfd",
    .capture = pidfd_capture,
    .restore = open_pidfd,
    .resumed = pidfd_resumed,
};
