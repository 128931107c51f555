/* symlink.c - symbolic links held with O_PATH | O_NOFOLLOW.
 *
 * Capture: the link itself; its target is saved by the shim's image
 * writer (preload/dump.c, dump_link_target: one FILEDATA record under the
 * fd). One removed (or replaced) since it was opened is CK_FDF_DELETED.
 *
 * Restore: one that was removed is made again (ck_remake_removed, and
 * removed again at once); one at its path must still be the link that
 * was checked and still point where it pointed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdkind.h"

static int symlink_capture(struct ck_fdcap *c)
{
    if (!S_ISLNK(c->st->st_mode))
        return 0;
    /* only O_PATH | O_NOFOLLOW opens one: the link itself, its target
     * saved by the writer; one removed (or replaced) since is made again
     * at restore */
    struct ck_fd *f = c->f;
    char *target = c->target;
    size_t tl = strlen(target);
    int deleted = tl > 10 && !strcmp(target + tl - 10, " (deleted)");
    struct stat ls;
    f->kind = CK_FD_SYMLINK;
    if (deleted)
        target[tl - 10] = 0;
    if (deleted || lstat(target, &ls) < 0 || ls.st_ino != c->st->st_ino ||
        ls.st_dev != c->st->st_dev)
        f->flags |= CK_FDF_DELETED;
    return 1;
}

static int symlink_check(struct ck_fdrest *r)
{
    if (r->f->flags & CK_FDF_DELETED)
        return ck_remake_check(r, "symbolic link");
    return r->check_path(r);
}

/* A symbolic link held with O_PATH: its target is in the image. */
static int open_symlink(struct ck_fdrest *r)
{
    const struct ck_fd *f = r->f;
    const char *path = r->path;
    uint8_t *data = NULL;
    size_t n = 0;
    if (r->bytes(r, f->fd, &data, &n) < 0 || !n || n >= PATH_MAX) {
        snprintf(r->err, r->errlen,
                 "fd %d: the image has no readable target for the symbolic link %s", f->fd,
                 path);
        free(data);
        return -1;
    }
    char t[PATH_MAX];
    memcpy(t, data, n);
    t[n] = 0;
    free(data);
    int fd;
    if (f->flags & CK_FDF_DELETED) {
        fd = ck_remake_removed(path, S_IFLNK, 0, t, O_PATH);
        if (fd < 0)
            snprintf(r->err, r->errlen, "fd %d: cannot make the removed symbolic link %s again: %s",
                     f->fd, path, strerror(errno));
    } else {
        char now[PATH_MAX];
        fd = r->reopen(r, r->i, O_PATH);
        ssize_t l = fd >= 0 ? readlinkat(fd, "", now, sizeof now) : -1;
        if (fd >= 0 && (l != (ssize_t)n || memcmp(now, t, n))) {
            snprintf(r->err, r->errlen, "fd %d: the symbolic link %s points to %.*s now, not to %s",
                     f->fd, path, l > 0 ? (int)l : 0, now, t);
            close(fd);
            fd = -1;
        }
    }
    return fd;
}

const struct ck_fdkind ck_fdkind_symlink = {
    .kind = CK_FD_SYMLINK,
    .name = "symlink",
    .capture = symlink_capture,
    .check = symlink_check,
    .restore = open_symlink,
};
