/* epoll.c - put back the watches of restored epoll instances.
 *
 * An epoll fd comes back empty (epoll_create1, in restore_fds); once every
 * descriptor of the image is at its number, each watch of the saved list
 * (the fd's path string, written by preload/epoll.c: "TFD EVENTS DATA"
 * lines, decimal, hex, hex) is added again with its events and data.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "coord.h"
#include "image.h"
#include "imgio.h"

/* Re-add every watch of every epoll fd in im. A watch on a descriptor that
 * was redirected to coord's own or /dev/null (a terminal or outside pipe
 * on fd 0-2) may not be pollable: it is dropped. Returns 0, or -errno with
 * a message in err. */
int epoll_restore_watches(const struct ck_image *im, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < im->nfds; i++) {
        const struct ck_fd *f = &im->fds[i];
        if (f->kind != CK_FD_EPOLL || f->share_with >= 0)
            continue;
        const char *p = im->fd_paths[i];
        while (p && *p) {
            char *end;
            long tfd = strtol(p, &end, 10);
            if (end == p)
                break;
            unsigned long long events = strtoull(end, &end, 16);
            unsigned long long data = strtoull(end, &end, 16);
            p = strchr(end, '\n');
            if (p)
                p++;
            struct epoll_event ev = {.events = (uint32_t)events, .data.u64 = data};
            if (epoll_ctl(f->fd, EPOLL_CTL_ADD, (int)tfd, &ev) == 0)
                continue;
            int e = errno;
            int redirected = 0;
            for (uint32_t k = 0; k < im->nfds; k++)
                if (im->fds[k].fd == tfd && (im->fds[k].flags & CK_FDF_STD_REDIRECT))
                    redirected = 1;
            if (redirected && e == EPERM)
                continue;
            snprintf(err, errlen, "fd %d: cannot watch fd %ld again with epoll: %s", f->fd, tfd,
                     strerror(e));
            return -e;
        }
    }
    return 0;
}
