/* file.c - regular files, directories and character devices opened by
 * path (CK_FD_FILE, CK_FD_DIR, CK_FD_CHR), among them the process's own
 * /proc/self files and namespaces.
 *
 * Capture: the path the kernel shows, with the file's identity (dev, ino,
 * size, times: ck_fd) and position. A regular file that is a memfd or was
 * deleted is deleted.c's (ck_deleted_capture). A /proc path of the process
 * itself (or one of its own namespaces) is rewritten to /proc/self
 * (CK_FDF_PROC_SELF): coord becomes the process it restores. A removed
 * directory is made again and removed at restore (CK_FDF_DELETED), the
 * same one as the working directory if it is that one (CK_FDF_CWD).
 * Devices: only /dev/null, zero, full, random and urandom (terminals are
 * tty.c's, which comes first); any other is refused.
 *
 * Restore: every file is checked before anything changes to be the very
 * file it was (coord's check_path: identity, --allow-changed), then
 * reopened by path without following a link (coord's reopen) and sought
 * to its position. File locks are taken back by coord once every
 * descriptor is in place (the LOCKS record).
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdkind.h"
#include "fileid.h"
#include "imgio.h"
#include "xxh64.h"

/* A /proc path of the process itself, /proc/PID[/...] (not of one of its
 * threads: their ids change), or one of its own namespaces ("net:[N]"),
 * rewritten in place to the /proc/self path that names the same thing in
 * the restored process: 1. A namespace of another process: -1. */
static int proc_self_path(char *target, const struct stat *st)
{
    char own[32], rest[CK_PATH_MAX];
    int n = snprintf(own, sizeof own, "/proc/%d", (int)syscall(SYS_getpid));
    if (!strncmp(target, own, (size_t)n) && (target[n] == '/' || !target[n]) &&
        strncmp(target + n, "/task/", 6) && !strstr(target, " (deleted)")) {
        snprintf(rest, sizeof rest, "%s", target + n);
        snprintf(target, CK_PATH_MAX, "/proc/self%s", rest[0] ? rest : "/.");
        return 1;
    }
    const char *br = strstr(target, ":[");
    size_t tl = strlen(target);
    if (target[0] == '/' || !br || br == target || br - target > 32 || target[tl - 1] != ']')
        return 0;
    struct stat ns;
    snprintf(rest, sizeof rest, "/proc/self/ns/%.*s", (int)(br - target), target);
    if (stat(rest, &ns) < 0)
        return 0;                       /* not a namespace: "anon_inode:[...]" */
    if (ns.st_ino != st->st_ino || ns.st_dev != st->st_dev)
        return -1;
    snprintf(target, CK_PATH_MAX, "%s", rest);
    return 1;
}

static int chr_capture(struct ck_fdcap *c)
{
    const char *target = c->target;
    if (!strcmp(target, "/dev/null") || !strcmp(target, "/dev/zero") ||
        !strcmp(target, "/dev/full") || !strcmp(target, "/dev/random") ||
        !strcmp(target, "/dev/urandom")) {
        c->f->kind = CK_FD_CHR;
        return 1;
    }
    snprintf(c->err, c->errlen, "fd %d is the device %s, which ckshim cannot restore", c->fd,
             target);
    return -ENOTSUP;
}

/* A /proc entry of a process that has exited (procdead.c). */
static int proc_dead(struct ck_fdcap *c, const char *what)
{
    char *target = c->target;
    size_t tl = strlen(target);
    const char *rest;
    if (tl > 10 && !strcmp(target + tl - 10, " (deleted)"))
        target[tl - 10] = 0;
    long pid = ck_procdead_split(target, &rest);
    if (pid < 0) {
        snprintf(c->err, c->errlen, "fd %d is %s, a /proc %s of a thread or process that has "
                 "exited, which ckshim cannot restore", c->fd, target, what);
        return -ENOTSUP;
    }
    c->f->kind = S_ISDIR(c->st->st_mode) ? CK_FD_DIR : CK_FD_FILE;
    c->f->flags |= CK_FDF_PROC_DEAD;
    c->f->aux = (uint64_t)pid;
    return 1;
}

static int dir_capture(struct ck_fdcap *c, int deleted)
{
    struct ck_fd *f = c->f;
    char *target = c->target;
    f->kind = CK_FD_DIR;
    if (!deleted && !strncmp(target, "/proc/", 6)) {
        struct stat ps2;
        deleted = stat(target, &ps2) < 0 || ps2.st_ino != c->st->st_ino;
    }
    if (deleted && !strncmp(target, "/proc/", 6))
        return proc_dead(c, "directory");
    /* removed: made again (and removed) at restore; the same directory as
     * the working directory if it is that one */
    struct stat cs;
    if (deleted) {
        target[strlen(target) - 10] = 0;
        f->flags |= CK_FDF_DELETED;
        if (stat("/proc/self/cwd", &cs) == 0 && cs.st_ino == c->st->st_ino &&
            cs.st_dev == c->st->st_dev)
            f->flags |= CK_FDF_CWD;
    }
    return 1;
}

static int file_capture(struct ck_fdcap *c)
{
    const struct stat *st = c->st;
    struct ck_fd *f = c->f;
    char *target = c->target;
    size_t tl = strlen(target);
    int deleted = tl > 10 && !strcmp(target + tl - 10, " (deleted)");
    if (S_ISCHR(st->st_mode))
        return chr_capture(c);
    /* anonymous inodes (S_IFREG on some kernels) are never files: a kind
     * of their own, or refused by the shim */
    if ((!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) || !strncmp(target, "anon_inode:", 11))
        return 0;
    int own = proc_self_path(target, st);
    if (own < 0) {
        snprintf(c->err, c->errlen, "fd %d is %s, a namespace of another process, which "
                 "ckshim cannot restore", c->fd, target);
        return -ENOTSUP;
    }
    if (own > 0) {
        f->kind = S_ISDIR(st->st_mode) ? CK_FD_DIR : CK_FD_FILE;
        f->flags |= CK_FDF_PROC_SELF;
        return 1;
    }
    if (S_ISDIR(st->st_mode))
        return dir_capture(c, deleted);
    if (!strncmp(target, "/proc/", 6)) {
        struct stat ps2;
        if (deleted || stat(target, &ps2) < 0 || ps2.st_ino != st->st_ino)
            return proc_dead(c, "file");
    }
    if (ck_deleted_capture(c, deleted))
        return 1;
    f->kind = CK_FD_FILE;
    return 1;
}

/* Before anything changes: a removed directory must be makeable again;
 * any other file must still be the one it was. */
static int file_check(struct ck_fdrest *r)
{
    const struct ck_fd *f = r->f;
    if (f->kind == CK_FD_DIR && (f->flags & CK_FDF_DELETED))
        return ck_remake_check(r, "directory");
    if (f->flags & (CK_FDF_PROC_SELF | CK_FDF_PROC_DEAD)) {
        /* the restored process's own, or made anew: nothing to compare;
         * but opened without a check, so only ever an entry of /proc */
        const char *rest;
        int self = (f->flags & CK_FDF_PROC_SELF) != 0;
        if (self ? strncmp(r->path, "/proc/self", 10) || (r->path[10] && r->path[10] != '/') ||
                       ck_path_climbs(r->path)
                 : ck_procdead_split(r->path, &rest) < 0) {
            snprintf(r->err, r->errlen, "fd %d: the image is damaged: %s is not a /proc entry "
                     "of %s", f->fd, r->path, self ? "the process itself" : "a process");
            return -1;
        }
        return 0;
    }
    return r->check_path(r);
}

/* Entries of a process that has exited: of one child made for the
 * purpose, all that named the same process at once (the later ones wait
 * in the stash), then the child exits and is reaped. */
static int open_proc_dead(struct ck_fdrest *r)
{
    const struct ck_image *im = r->im;
    const struct ck_fd *f = r->f;
    int *stash = r->stash, release, fd = -1;
    if (stash[r->i] >= 0) {
        fd = stash[r->i];
        stash[r->i] = -1;
        return fd;
    }
    pid_t child = ck_procdead_child(&release);
    if (child < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot make a process for %s: %s", f->fd, r->path,
                 strerror(errno));
        return -1;
    }
    for (uint32_t k = r->i; k < im->nfds; k++) {
        const struct ck_fd *o = &im->fds[k];
        const char *rest;
        char path[PATH_MAX];
        if ((o->kind != CK_FD_FILE && o->kind != CK_FD_DIR) || !(o->flags & CK_FDF_PROC_DEAD) ||
            o->share_with >= 0 || o->aux != f->aux)
            continue;
        int oflags = (int)(o->oflags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC));
        int p = -1;
        if (ck_procdead_split(im->fd_paths[k], &rest) < 0 ||
            ck_procdead_path(path, sizeof path, child, rest) < 0)
            errno = EINVAL;
        else
            p = open(path, oflags | O_NOCTTY | O_CLOEXEC);
        if (p >= 0 && k != r->i) {
            stash[k] = fcntl(p, F_DUPFD_CLOEXEC, r->maxfd + 1);
            close(p);
            p = stash[k];
        }
        if (p < 0) {
            snprintf(r->err, r->errlen, "fd %d: cannot open %s again for a process that has "
                     "exited: %s", o->fd, im->fd_paths[k], strerror(errno));
            if (fd >= 0)
                close(fd);
            fd = -1;
            break;
        }
        if (k == r->i)
            fd = p;
    }
    ck_procdead_release(child, release);
    return fd;
}

static int file_restore(struct ck_fdrest *r)
{
    const struct ck_fd *f = r->f;
    const char *path = r->path;
    int fd;
    if (f->kind == CK_FD_DIR && (f->flags & CK_FDF_DELETED)) {
        fd = ck_remake_removed(path, S_IFDIR, (int)(f->mode & 07777), NULL,
                               r->oflags | O_DIRECTORY);
        if (fd < 0)
            snprintf(r->err, r->errlen, "fd %d: cannot make the removed directory %s again: %s",
                     f->fd, path, strerror(errno));
        return fd;
    }
    if (f->flags & CK_FDF_PROC_DEAD)
        return open_proc_dead(r);
    if (f->flags & CK_FDF_PROC_SELF) {
        /* /proc/self/...: coord is the process it restores */
        fd = open(path, r->oflags | O_NOCTTY);
        if (fd < 0) {
            snprintf(r->err, r->errlen, "fd %d: cannot open %s: %s", f->fd, path,
                     strerror(errno));
            return -1;
        }
    } else {
        fd = r->reopen(r, r->i, r->oflags);
    }
    if (fd < 0)
        return -1;
    if (f->kind != CK_FD_CHR && lseek(fd, f->pos, SEEK_SET) < 0 && f->pos) {
        snprintf(r->err, r->errlen, "fd %d: cannot seek %s to %lld: %s", f->fd, path,
                 (long long)f->pos, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Files at their checkpoint version (docs/DESIGN.md). A regular file the
 * program holds open for writing may go on changing after the checkpoint
 * (the program runs on, or runs until it crashes); restoring the image
 * then pairs an old program with a newer file: a journal gets its last
 * records twice. So, while the program is parked, the file's version is
 * kept with the image, once per file (its first descriptor):
 *   - every descriptor writing it is O_APPEND: nothing before the end can
 *     change through them, so the length (f->size) is the version, with a
 *     hash of the CK_VER_TAIL bytes before it (CK_HASH_VER_LENGTH);
 *   - otherwise its contents, up to version_max bytes, as FILEDATA records
 *     of the descriptor (CK_HASH_VER_CONTENT); a larger file is marked
 *     CK_HASH_VER_TOOBIG and used as it is at restore (a note).
 * Standard descriptors (0-2: a redirection by whoever started the
 * program), files the user shares with other programs (s->shared) and
 * all files when versions are off keep hash_kind 0: ident.c marks them
 * CK_HASH_WRITTEN as before. Coord puts the versions back at restore,
 * once the restore is committed (coordinator/restore.c). */
static int version_candidate(const struct ck_fd *f)
{
    /* standard descriptors are not the program's own files: a shell's or a
     * scheduler's redirection (`> job.out`), shared with whoever started
     * it, the supervisor's messages among them */
    return f->kind == CK_FD_FILE && f->fd > 2 && f->share_with < 0 && S_ISREG(f->mode) &&
           !(f->flags & (CK_FDF_PROC_SELF | CK_FDF_PROC_DEAD | CK_FDF_IN_FLIGHT)) &&
           !(f->oflags & O_PATH) && (f->oflags & O_ACCMODE) != O_RDONLY;
}

static unsigned char ver_buf[CK_VER_TAIL];

/* A descriptor of the program that reads the file f (O_RDWR or
 * O_RDONLY), or -1. The version is read through it with pread (no offset
 * moves): opening the file anew and closing it in the program would drop
 * every POSIX lock the program holds on it. */
static int reader_of(const struct ck_fdcap_set *s, const struct ck_fd *f)
{
    for (uint32_t k = 0; k < s->n; k++) {
        const struct ck_fd *o = &s->fds[k];
        if (o->kind == CK_FD_FILE && o->dev == f->dev && o->ino == f->ino &&
            !(o->oflags & O_PATH) && (o->oflags & O_ACCMODE) != O_WRONLY)
            return o->fd;
    }
    return -1;
}

static int file_finish(struct ck_fdcap_set *s)
{
    for (uint32_t i = 0; i < s->n; i++) {
        struct ck_fd *f = &s->fds[i];
        if (!version_candidate(f) || !s->versions)
            continue;
        int first = 1, append = 1;
        for (uint32_t k = 0; k < s->n; k++) {
            const struct ck_fd *o = &s->fds[k];
            if (!version_candidate(o) || o->dev != f->dev || o->ino != f->ino)
                continue;
            first &= k >= i;
            append &= (o->oflags & O_APPEND) != 0;
        }
        int shared = 0;
        for (uint32_t k = 0; k < s->nshared; k++)
            shared |= s->shared[k][0] == f->dev && s->shared[k][1] == f->ino;
        if (!first || shared)
            continue;
        if (!append && f->size > s->version_max) {
            f->hash_kind = CK_HASH_VER_TOOBIG;
            continue;
        }
        int rfd = reader_of(s, f);
        f->hash = 0;
        f->hash_kind = append ? CK_HASH_VER_LENGTH : CK_HASH_VER_CONTENT;
        if (rfd < 0) {
            /* write-only: the image writer (another process: its open and
             * close drop no lock of the program's) reads it, once the
             * program is released; exact for an appended file and for a
             * file written front to back, and with --kill */
            f->flags |= CK_FDF_VER_LATER;
            continue;
        }
        if (append) {
            uint64_t t = f->size < CK_VER_TAIL ? f->size : CK_VER_TAIL;
            if (pread(rfd, ver_buf, t, (off_t)(f->size - t)) == (ssize_t)t)
                f->hash = ck_xxh64(ver_buf, t, f->size);
            else
                f->hash_kind = 0; /* unreadable: written, used as it is at restore */
            continue;
        }
        uint64_t off = 0;
        ssize_t got = 0;
        while (off < f->size &&
               (got = pread(rfd, ver_buf,
                            f->size - off < sizeof ver_buf ? f->size - off : sizeof ver_buf,
                            (off_t)off)) > 0) {
            if (s->bytes(s, i, ver_buf, (size_t)got) < 0)
                return -1; /* err set */
            off += (uint64_t)got;
        }
        /* what was read is the version (a file another process cut
         * meanwhile is shorter) */
        f->size = off;
        if (got < 0)
            f->hash_kind = 0;
    }
    return 0;
}

/* file_capture recognises all three (and deleted.c's kinds). */
const struct ck_fdkind ck_fdkind_file = {
    .kind = CK_FD_FILE,
    .name = "file",
    .capture = file_capture,
    .finish = file_finish,
    .check = file_check,
    .restore = file_restore,
};

const struct ck_fdkind ck_fdkind_dir = {
    .kind = CK_FD_DIR,
    .name = "dir",
    .check = file_check,
    .restore = file_restore,
};

const struct ck_fdkind ck_fdkind_chr = {
    .kind = CK_FD_CHR,
    .name = "chr",
    .check = file_check,
    .restore = file_restore,
};
