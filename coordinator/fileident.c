/* fileident.c - compare a file with the identity the image recorded. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fileid.h"
#include "fileident.h"

static void fill(struct ck_ident *id, uint32_t mode, uint64_t dev, uint64_t ino, uint64_t size,
                 int64_t mtime_ns, int64_t ctime_ns, uint64_t hash, uint32_t hash_kind)
{
    *id = (struct ck_ident){.mode = mode, .dev = dev, .ino = ino, .size = size,
                            .mtime_ns = mtime_ns, .ctime_ns = ctime_ns, .hash = hash,
                            .hash_kind = hash_kind, .content = S_ISREG(mode)};
}

void ck_ident_of_region(const struct ck_region *r, struct ck_ident *id)
{
    /* images from before the mode was recorded: a mapped file is regular */
    fill(id, r->mode ? r->mode : S_IFREG, r->dev, r->ino, r->fsize, r->mtime_ns, r->ctime_ns,
         r->hash, r->hash_kind);
}

void ck_ident_of_fd(const struct ck_fd *f, struct ck_ident *id)
{
    fill(id, f->mode, f->dev, f->ino, f->size, f->mtime_ns, f->ctime_ns, f->hash, f->hash_kind);
}

static void add(char *what, size_t len, const char *s)
{
    size_t n = strlen(what);
    snprintf(what + n, len - n, "%s%s", n ? ", " : "", s);
}

int ck_ident_check(const char *path, const struct ck_ident *id, struct stat *st, char *what,
                   size_t len)
{
    what[0] = 0;
    /* O_PATH never opens the file itself (a FIFO cannot block, a device
     * is not touched); with O_NOFOLLOW a symbolic link is seen as one. */
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if ((st->st_mode & S_IFMT) != (id->mode & S_IFMT)) {
        snprintf(what, len, "is now %s (was %s)", ck_file_type_name(st->st_mode),
                 ck_file_type_name(id->mode));
        close(fd);
        return CK_ID_TYPE;
    }
    if (!id->content) {
        close(fd);
        return CK_ID_SAME;
    }
    int64_t mt = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    int64_t ct = (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
    uint64_t size = (uint64_t)st->st_size;
    /* Same machine, same inode, ctime not moved: not written since. */
    if (st->st_dev == id->dev && st->st_ino == id->ino && ct == id->ctime_ns &&
        size == id->size && mt == id->mtime_ns) {
        close(fd);
        return CK_ID_SAME;
    }
    int changed = 0;
    char buf[128];
    int replaced = id->same_host && st->st_dev == id->dev && st->st_ino != id->ino;
    if (ck_hash_written(id->hash_kind)) {
        /* The program writes this file itself (open for writing, or mapped
         * shared and writable): later changes are its own, it may have
         * gone on after the checkpoint (a log it writes to). Refused:
         * another file put at the path (as far as this machine can tell),
         * or one shorter than it was (a shared mapping would fault past
         * its end, a log was cut). */
        if (replaced) {
            add(what, len, "replaced by another file (new inode)");
            changed = 1;
        }
        if (size != id->size) {
            snprintf(buf, sizeof buf, "size %llu -> %llu", (unsigned long long)id->size,
                     (unsigned long long)size);
            add(what, len, buf);
            changed |= size < id->size && id->version != CK_HASH_VER_CONTENT;
        }
        if (mt != id->mtime_ns)
            add(what, len, "mtime changed");
        if (!changed && id->version)
            what[0] = 0; /* restore says what it puts back (plan_versions) */
        else if (!changed && what[0])
            add(what, len, "the program writes to it: used as it is");
        close(fd);
        return changed ? CK_ID_CHANGED : CK_ID_SAME;
    }
    if (size != id->size) {
        snprintf(buf, sizeof buf, "size %llu -> %llu", (unsigned long long)id->size,
                 (unsigned long long)size);
        add(what, len, buf);
        changed = 1;
    }
    if (mt != id->mtime_ns)
        add(what, len, "mtime changed");
    if (!changed && id->hash_kind != CK_HASH_NONE) {
        char lp[64];
        snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
        int rfd = open(lp, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        uint32_t kind = CK_HASH_NONE;
        uint64_t h = rfd >= 0 ? ck_file_hash(rfd, size, &kind) : 0;
        if (rfd >= 0)
            close(rfd);
        if (kind == CK_HASH_NONE) {
            add(what, len, "cannot be read to compare its content");
            changed = 1;
        } else if (kind != id->hash_kind || h != id->hash) {
            add(what, len, "content changed");
            changed = 1;
        } else if (mt != id->mtime_ns) {
            add(what, len, kind == CK_HASH_WHOLE ? "content the same"
                                                 : "content the same where sampled");
        }
    } else if (mt != id->mtime_ns) {
        changed = 1;
    } else if (!changed && replaced) {
        add(what, len, "replaced by another file (new inode)");
        changed = 1;
    }
    close(fd);
    return changed ? CK_ID_CHANGED : CK_ID_SAME;
}
