/* eventfd.c - eventfd descriptors.
 *
 * Capture: the counter and EFD_SEMAPHORE from fdinfo (eventfd-count,
 * eventfd-semaphore). Restore: a new eventfd with that count and flags;
 * O_NONBLOCK as it was (close-on-exec is set by the shim after restore,
 * like for every descriptor). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fdkind.h"

static int eventfd_capture(struct ck_fdcap *c)
{
    if (strcmp(c->target, "anon_inode:[eventfd]") || !c->fi->has_eventfd)
        return 0;
    c->f->kind = CK_FD_EVENTFD;
    c->f->aux = c->fi->eventfd_count;
    const char *sem = c->infolen > 0 ? strstr(c->info, "eventfd-semaphore:") : NULL;
    if (sem && strtol(sem + 18, NULL, 10) == 1)
        c->f->flags |= CK_FDF_EFD_SEMAPHORE;
    return 1;
}

static int eventfd_restore(struct ck_fdrest *r)
{
    const struct ck_fd *f = r->f;
    /* eventfd()'s initial value has 32 bits; a larger count is written */
    int big = f->aux > UINT_MAX;
    int fd = eventfd(big ? 0 : (unsigned)f->aux,
                     ((f->oflags & O_NONBLOCK) ? EFD_NONBLOCK : 0) |
                         ((f->flags & CK_FDF_EFD_SEMAPHORE) ? EFD_SEMAPHORE : 0));
    if (fd < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot make an eventfd: %m", f->fd);
    } else if (big && write(fd, &f->aux, sizeof f->aux) != (ssize_t)sizeof f->aux) {
        snprintf(r->err, r->errlen, "fd %d: cannot give the eventfd its count %llu: %m", f->fd,
                 (unsigned long long)f->aux);
        close(fd);
        fd = -1;
    }
    return fd;
}

static void eventfd_describe(const struct ck_fd *f, const void *state, size_t len, char *out,
                             size_t outlen)
{
    snprintf(out, outlen, "eventfd count %llu%s", (unsigned long long)f->aux,
             (f->flags & CK_FDF_EFD_SEMAPHORE) ? " semaphore" : "");
}

const struct ck_fdkind ck_fdkind_eventfd = {
    .kind = CK_FD_EVENTFD,
    .name = "eventfd",
    .capture = eventfd_capture,
    .restore = eventfd_restore,
    .describe = eventfd_describe,
};
