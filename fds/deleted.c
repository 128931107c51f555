/* deleted.c - deleted files and memfds (CK_FD_DELETED, CK_FD_MEMFD).
 *
 * Capture: file.c's capture recognises them among regular files
 * (ck_deleted_capture): a memfd by its name, a deleted file by the
 * kernel's " (deleted)" or by its path naming another file now. A file
 * removed under one name that still has another link (link(2), then
 * unlink of the first name) is an ordinary file under that other name.
 * Their contents are saved by the shim's image writer (preload/dump.c:
 * FILEDATA records under the fd, data extents only, so holes stay holes),
 * with a memfd's seals (aux) and whether it is hugetlb.
 *
 * Restore: a copy made again from those records, unlinked (O_TMPFILE in
 * its old directory, else /tmp) or a new memfd, with its size, mode,
 * modification time and seals; a descriptor of a file an earlier
 * descriptor already made is reopened through that one, so that they stay
 * one file (in a tree, also one another process holds: coord made it
 * before the forks, tree_file).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdkind.h"
#include "fileid.h"
#include "imgio.h"

/* A file opened under a name since removed (or replaced) that still has
 * links: the one it is open as is looked for beside the old name (link(2)
 * then unlink of the first name is the usual way to get there), so that
 * restore opens that very file instead of a copy. On success path holds
 * the other name and 1 is returned. Reads the directory with getdents64
 * (no allocation: the program is parked). */
static int other_link(char *path, const struct stat *st)
{
    char *slash = strrchr(path, '/');
    if (!slash || path[0] != '/')
        return 0;
    *slash = 0;
    int dfd = open(slash == path ? "/" : path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *slash = '/';
    if (dfd < 0)
        return 0;
    char dbuf[4096];
    int found = 0;
    long n;
    while (!found && (n = syscall(SYS_getdents64, dfd, dbuf, sizeof dbuf)) > 0) {
        for (long off = 0; off < n && !found;) {
            struct dirent64 *d = (struct dirent64 *)(dbuf + off);
            off += d->d_reclen;
            struct stat ls;
            if (d->d_ino != st->st_ino ||
                fstatat(dfd, d->d_name, &ls, AT_SYMLINK_NOFOLLOW) < 0 || ls.st_ino != st->st_ino ||
                ls.st_dev != st->st_dev || (size_t)(slash + 1 - path) + strlen(d->d_name) >= CK_PATH_MAX)
                continue;
            strcpy(slash + 1, d->d_name);
            found = 1;
        }
    }
    close(dfd);
    return found;
}

/* A regular file (not in /proc) being captured: a memfd or a deleted file
 * (1, kind set, the path without " (deleted)"), or an ordinary file (0;
 * its path may now be its other link's). `deleted`: the kernel's name ends
 * in " (deleted)". */
int ck_deleted_capture(struct ck_fdcap *c, int deleted)
{
    struct ck_fd *f = c->f;
    const struct stat *st = c->st;
    char *target = c->target;
    if (!strncmp(target, "/memfd:", 7)) {
        f->kind = CK_FD_MEMFD;
        int seals = fcntl(c->fd, F_GET_SEALS);
        f->aux = seals > 0 ? (uint64_t)seals : 0;
        if (st->st_blksize > 4096) /* hugetlbfs: the huge page size */
            f->flags |= CK_FDF_HUGETLB;
        return 1;
    }
    if (deleted) {
        target[strlen(target) - 10] = 0;
    } else {
        struct stat ps;
        if (stat(target, &ps) == 0 && ps.st_ino == st->st_ino && ps.st_dev == st->st_dev)
            return 0;
    }
    if (st->st_nlink > 0 && other_link(target, st))
        return 0;
    f->kind = CK_FD_DELETED;
    return 1;
}

/* Where make_deleted_copy writes the saved contents. */
struct copy_to {
    int fd;
    uint8_t *huge; /* a hugetlb memfd's mapping (no write() there), or NULL */
    uint64_t size;
};

static int copy_chunk(void *arg, uint64_t off, const uint8_t *data, size_t len)
{
    struct copy_to *t = arg;
    if (t->huge) {
        if (off + len > t->size)
            return -1;
        memcpy(t->huge + off, data, len);
        return 0;
    }
    return pwrite(t->fd, data, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

/* Create an unlinked file with the contents of a deleted file (or memfd). */
static int make_deleted_copy(struct ck_fdrest *r)
{
    const struct ck_fd *f = r->f;
    const char *path = r->path;
    int fd = -1;
    if (f->kind == CK_FD_MEMFD) {
        char name[250] = "ckshim";
        const char *n = strncmp(path, "/memfd:", 7) == 0 ? path + 7 : path;
        snprintf(name, sizeof name, "%s", n);
        char *d = strstr(name, " (deleted)");
        if (d)
            *d = 0;
        /* sealing allowed: the seals are added back below */
        fd = memfd_create(name, MFD_ALLOW_SEALING |
                                    ((f->flags & CK_FDF_HUGETLB) ? MFD_HUGETLB : 0));
    } else {
        char dir[PATH_MAX];
        ck_dir_of(path, dir, sizeof dir);
        fd = open(dir, O_TMPFILE | O_RDWR, 0600);
        if (fd < 0)
            fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    }
    if (fd < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot recreate the deleted file %s: %s", f->fd,
                 path, strerror(errno));
        return -1;
    }
    struct copy_to to = {.fd = fd, .size = f->size};
    if (f->kind == CK_FD_MEMFD && (f->flags & CK_FDF_HUGETLB) && f->size) {
        /* hugetlbfs has no write(): sized first (whole huge pages, as it
         * was), then filled through a mapping */
        to.huge = ftruncate(fd, (off_t)f->size) < 0
                      ? MAP_FAILED
                      : mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (to.huge == MAP_FAILED) {
            snprintf(r->err, r->errlen,
                     "fd %d: cannot make the hugetlb memfd %s again (%llu bytes): %s", f->fd,
                     path, (unsigned long long)f->size, strerror(errno));
            close(fd);
            return -1;
        }
    }
    int ok = r->chunks(r, f->fd, copy_chunk, &to) == 0;
    if (to.huge)
        munmap(to.huge, f->size);
    if (!ok) {
        snprintf(r->err, r->errlen, "fd %d: cannot restore the contents of the deleted file %s",
                 f->fd, path);
        close(fd);
        return -1;
    }
    if (ftruncate(fd, (off_t)f->size) < 0) {
        /* keep what we wrote */
    }
    if (f->kind == CK_FD_MEMFD) {
        /* its mode (memfd_create makes 0777), then its seals (a memfd
         * made without MFD_ALLOW_SEALING has F_SEAL_SEAL) */
        if (fchmod(fd, f->mode & 07777) < 0 ||
            (f->aux && fcntl(fd, F_ADD_SEALS, (int)f->aux) < 0)) {
            snprintf(r->err, r->errlen,
                     "fd %d: cannot set the mode %o or the seals %#llx of memfd %s: %s", f->fd,
                     f->mode & 07777, (unsigned long long)f->aux, path, strerror(errno));
            close(fd);
            return -1;
        }
        /* memfd_create's descriptor is already read-write, and one opened
         * through /proc for writing would make an execveat of the memfd
         * fail with ETXTBSY (memfd04) */
        if ((f->oflags & O_ACCMODE) == O_RDWR) {
            fcntl(fd, F_SETFL, (int)(f->oflags & (O_APPEND | O_NONBLOCK)));
            return fd;
        }
    }
    /* Reopen with the program's access mode and flags. */
    char lp[64];
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
    int fd2 = open(lp, (int)(f->oflags & (O_ACCMODE | O_APPEND | O_NONBLOCK)));
    if (fd2 >= 0) {
        close(fd);
        fd = fd2;
    }
    return fd;
}

/* A deleted file or memfd that an earlier descriptor of another open
 * file description has (opened twice, or under two names since removed):
 * one file again, reopened through that descriptor, now in place, with
 * this one's access mode. Returns the fd, -1 on error, -2 if there is no
 * such descriptor. */
static int reopen_via(struct ck_fdrest *r, int ofd, uint32_t omode)
{
    const struct ck_fd *f = r->f;
    char lp[64];
    int fl = (int)(f->oflags & (O_ACCMODE | O_APPEND | O_NONBLOCK));
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", ofd);
    int fd = open(lp, fl);
    if (fd < 0 && errno == EACCES && f->kind == CK_FD_DELETED && fchmod(ofd, 0600) == 0) {
        /* the first one has its mode already (0200, say): ours, for a moment */
        fd = open(lp, fl);
        fchmod(ofd, omode & 07777);
    }
    if (fd < 0)
        snprintf(r->err, r->errlen, "fd %d: cannot reopen the deleted file or memfd: %s",
                 f->fd, strerror(errno));
    return fd;
}

static int reopen_same_file(struct ck_fdrest *r)
{
    const struct ck_image *im = r->im;
    const struct ck_fd *f = r->f;
    for (uint32_t k = 0; k < r->i; k++) {
        const struct ck_fd *o = &im->fds[k];
        if (o->kind != f->kind || o->share_with >= 0 || o->dev != f->dev || o->ino != f->ino)
            continue;
        return reopen_via(r, o->fd, o->mode);
    }
    /* made by coord for the whole tree (another process holds it too) */
    int t = r->tree_file ? r->tree_file(r, f) : -1;
    if (t >= 0)
        return reopen_via(r, t, f->mode);
    return -2;
}

static int deleted_restore(struct ck_fdrest *r)
{
    const struct ck_fd *f = r->f;
    int fd = reopen_same_file(r);
    if (fd == -2)
        fd = make_deleted_copy(r);
    if (fd < 0)
        return -1;
    /* its mode, changed after it was opened maybe (the copy is made
     * 0600), and its modification time (the copy was just written); the
     * owner is the restoring user */
    if (f->kind == CK_FD_DELETED) {
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                                 {.tv_sec = f->mtime_ns / 1000000000LL,
                                  .tv_nsec = f->mtime_ns % 1000000000LL}};
        if ((f->mode & 07777) != 0600)
            fchmod(fd, f->mode & 07777);
        if (f->mtime_ns >= 0)
            futimens(fd, ts);
    }
    lseek(fd, f->pos, SEEK_SET);
    return fd;
}

/* Both are captured by file.c's capture (ck_deleted_capture). */
const struct ck_fdkind ck_fdkind_deleted = {
    .kind = CK_FD_DELETED,
    .name = "deleted",
    .restore = deleted_restore,
};

const struct ck_fdkind ck_fdkind_memfd = {
    .kind = CK_FD_MEMFD,
    .name = "memfd",
    .restore = deleted_restore,
};
