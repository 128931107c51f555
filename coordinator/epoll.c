/* epoll.c - put back the watches of restored epoll instances.
 *
 * An epoll fd comes back empty (epoll_create1, in restore_fds); once every
 * descriptor of the image is at its number, each watch of the saved list
 * (the fd's path string, written by preload/epoll.c: "TFD EVENTS DATA"
 * lines, decimal, hex, hex) is added again with its events and data.
 * A line with a fourth field, HOLDER, is a watch kept under a number TFD
 * that no longer is its file (the file is at fd HOLDER now): it is added
 * through TFD made HOLDER's file for a moment, then TFD is given back
 * what it was (a later close of TFD by the program leaves such watches
 * alone, as it did before the checkpoint: epoll keys them by file and
 * number). Descriptor flags are set by the shim after restore.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "coord.h"
#include "image.h"
#include "imgio.h"

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
            long holder = tfd;
            if (*end == ' ')
                holder = strtol(end, &end, 10);
            p = strchr(end, '\n');
            if (p)
                p++;
            struct epoll_event ev = {.events = (uint32_t)events, .data.u64 = data};
            int r = holder == tfd ? epoll_ctl(f->fd, EPOLL_CTL_ADD, (int)tfd, &ev)
                                  : add_renumbered(f->fd, (int)tfd, (int)holder, &ev);
            if (r == 0)
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
