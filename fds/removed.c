/* removed.c - files the program held but had removed from their
 * directory: FIFOs (pipe.c), directories (file.c), symbolic links
 * (symlink.c), and coord's removed working directory. Restore makes such
 * a file again and removes it at once, so that it is as unreachable by
 * name as it was. Restore side only (coord). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdkind.h"

/* The directory part of path, in dir ("/" for a file at the root). */
static const char *dir_of(const char *path, char *dir, size_t len)
{
    snprintf(dir, len, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = 0;
    else
        snprintf(dir, len, "/");
    return dir;
}

/* The directory a removed FIFO, symbolic link or directory at path is
 * made again in: its own if it still exists, else the nearest of its
 * parents that does (a removed directory inside a removed directory). */
const char *ck_remake_dir(const char *path, char *dir, size_t len)
{
    struct stat st;
    dir_of(path, dir, len);
    while (strcmp(dir, "/") && (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))) {
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
            snprintf(dir, len, "/");
        else
            *slash = 0;
    }
    return dir;
}

/* Make a FIFO, symbolic link (to link) or directory that the program
 * held but had removed, open it with oflags and remove it again at once,
 * so that it is as unreachable by name as it was: at its old path if that
 * is free (the program may print where its descriptors or working
 * directory are), else under a name of ckshim's in ck_remake_dir(path).
 * Returns the descriptor, or -1 with errno set. */
int ck_remake_removed(const char *path, mode_t type, int mode, const char *link, int oflags)
{
    char dir[PATH_MAX], own[PATH_MAX], tmp[PATH_MAX + 64];
    ck_remake_dir(path, dir, sizeof dir);
    int same_dir = !strcmp(dir_of(path, own, sizeof own), dir);
    for (int tries = same_dir ? -1 : 0; tries < 100; tries++) {
        if (tries < 0)
            snprintf(tmp, sizeof tmp, "%s", path);
        else
            snprintf(tmp, sizeof tmp, "%s/.ckshim-removed-%d-%d", strcmp(dir, "/") ? dir : "",
                     (int)getpid(), tries);
        int r = type == S_IFIFO  ? mkfifo(tmp, (mode_t)mode)
                : type == S_IFDIR ? mkdir(tmp, 0700)
                                  : symlink(link, tmp);
        if (r < 0 && errno == EEXIST)
            continue;
        if (r < 0)
            return -1;
        int fd = open(tmp, oflags | O_NOFOLLOW);
        int e = errno;
        struct stat st;
        if (fd >= 0 && (fstat(fd, &st) < 0 || (st.st_mode & S_IFMT) != type)) {
            close(fd);
            fd = -1;
            e = EEXIST;
        }
        if (type == S_IFDIR) {
            if (fd >= 0 && mode != 0700)
                fchmod(fd, (mode_t)mode);
            rmdir(tmp);
        } else {
            unlink(tmp);
        }
        errno = e;
        return fd;
    }
    errno = EEXIST;
    return -1;
}

/* Check for a removed FIFO, directory or symbolic link of the image
 * (CK_FDF_DELETED): can it be made again where ck_remake_removed would?
 * 0, or -1 with the message in r->err. */
int ck_remake_check(struct ck_fdrest *r, const char *what)
{
    char dir[PATH_MAX] = "";
    errno = EINVAL;
    if (r->path[0] != '/' || access(ck_remake_dir(r->path, dir, sizeof dir), W_OK | X_OK) < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot make the removed %s %s again in %s: %s",
                 r->f->fd, what, r->path, dir, strerror(errno));
        return -1;
    }
    return 0;
}
