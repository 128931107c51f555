/* kinds.c - the table of descriptor kinds that live in fds/.
 *
 * Capture asks each kind in this order whether a descriptor is its own,
 * so a kind that recognises its descriptors by a narrower test comes
 * before a broader one: file.c's capture, which takes every regular file,
 * directory and device that is left (and refuses unknown devices), stays
 * last, after tty.c's. Restore finds the kind by its number. */
#include <stddef.h>

#include "fdkind.h"

extern const struct ck_fdkind ck_fdkind_eventfd;
extern const struct ck_fdkind ck_fdkind_timerfd;
extern const struct ck_fdkind ck_fdkind_signalfd;
extern const struct ck_fdkind ck_fdkind_inotify;
extern const struct ck_fdkind ck_fdkind_unix;
extern const struct ck_fdkind ck_fdkind_inet;
extern const struct ck_fdkind ck_fdkind_socket_other;
extern const struct ck_fdkind ck_fdkind_pipe;
extern const struct ck_fdkind ck_fdkind_epoll;
extern const struct ck_fdkind ck_fdkind_pidfd;
extern const struct ck_fdkind ck_fdkind_tty;
extern const struct ck_fdkind ck_fdkind_pty;
extern const struct ck_fdkind ck_fdkind_symlink;
extern const struct ck_fdkind ck_fdkind_file;
extern const struct ck_fdkind ck_fdkind_dir;
extern const struct ck_fdkind ck_fdkind_chr;
extern const struct ck_fdkind ck_fdkind_deleted;
extern const struct ck_fdkind ck_fdkind_memfd;

const struct ck_fdkind *const ck_fdkinds[] = {
    &ck_fdkind_eventfd,
    &ck_fdkind_timerfd,
    &ck_fdkind_signalfd,
    &ck_fdkind_inotify,
    &ck_fdkind_unix,
    &ck_fdkind_inet,
    &ck_fdkind_socket_other,   /* after every socket kind: refuses the rest by name */
    &ck_fdkind_pipe,
    &ck_fdkind_epoll,
    &ck_fdkind_pidfd,
    &ck_fdkind_tty,
    &ck_fdkind_pty,
    &ck_fdkind_symlink,
    &ck_fdkind_file, /* last with a capture: see above */
    &ck_fdkind_dir,
    &ck_fdkind_chr,
    &ck_fdkind_deleted,
    &ck_fdkind_memfd,
    NULL,
};

const struct ck_fdkind *ck_fdkind_of(uint32_t kind)
{
    /* kind 0 is no kind: the entries without one (socket_other) only
     * refuse at capture; an image's fd of kind 0 is of no kind here */
    for (const struct ck_fdkind *const *k = ck_fdkinds; kind && *k; k++)
        if ((*k)->kind == kind)
            return *k;
    return NULL;
}
