/* inotify_note.c - the shim's inotify_add_watch: the kernel does not tell
 * which path a watch was added by (fdinfo shows only the inode), and an
 * ordinary user cannot open an inode by its handle. So every successful
 * add is noted (fds/inotify.c keeps the table, in the shim's memory) for
 * the capture of inotify instances. Raw inotify_add_watch syscalls are
 * not seen: their watches are looked for by inode at capture. */
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
