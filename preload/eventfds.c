/* eventfds.c - the shim's wrappers for event descriptors (fds/timerfd.c,
 * fds/signalfd.c, fds/inotify.c keep their capture and restore).
 *
 * - inotify_add_watch: the kernel does not tell which path a watch was
 *   added by (fdinfo shows only the inode), and an ordinary user cannot
 *   open an inode by its handle. So every successful add is noted
 *   (fds/inotify.c keeps the table, in the shim's memory) for the capture
 *   of inotify instances. Raw inotify_add_watch syscalls are not seen:
 *   their watches are looked for by inode at capture.
 * - signalfd: the mask loses the checkpoint signal, like every mask the
 *   program sets. A thread waiting in read() on a signalfd for every
 *   signal would otherwise take the checkpoint signal as data (the kernel
 *   dequeues whatever pending signal the signalfd's mask names, blocked
 *   or not) and never park.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

void ck_inotify_note(int fd, int wd, const char *path, uint32_t mask);

SHIM_API int inotify_add_watch(int fd, const char *path, uint32_t mask)
{
    int wd = (int)syscall(SYS_inotify_add_watch, fd, path, mask);
    if (wd >= 0 && path)
        ck_inotify_note(fd, wd, path, mask);
    return wd;
}

SHIM_API int signalfd(int fd, const sigset_t *mask, int flags)
{
    sigset_t tmp;
    return (int)syscall(SYS_signalfd4, fd, shim_strip_mask(mask, &tmp), (size_t)(_NSIG / 8),
                        flags);
}
