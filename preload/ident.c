/* ident.c - content hashes of the files the program has open or mapped
 * (see common/fileid.h), computed by the image writer just before it
 * writes the region and descriptor records: in the forked writer, so the
 * program is not paused while files are read (with --no-fork it is).
 *
 * Only files the program cannot change itself are hashed: a file it maps
 * shared and writable, or has open for writing, is its own to change
 * (CK_HASH_WRITTEN: restore accepts it grown or rewritten, not shorter
 * or replaced).
 *
 * No heap, no stdio: as the rest of the writer.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileid.h"
#include "xxh64.h"
#include "shim.h"

/* Does the program map (dev, ino) shared and writable, or hold it open
 * for writing? */
static int program_writes(uint64_t dev, uint64_t ino)
{
    for (uint32_t i = 0; i < g_shim.nregions; i++) {
        const struct ck_region *r = &g_shim.regions[i];
        if (r->dev == dev && r->ino == ino && (r->flags & CK_REG_SHARED) &&
            (r->prot & PROT_WRITE))
            return 1;
    }
    for (uint32_t i = 0; i < g_shim.nfds; i++) {
        const struct ck_fd *f = &g_shim.fds[i];
        if (f->dev == dev && f->ino == ino && f->kind == CK_FD_FILE &&
            (f->oflags & O_ACCMODE) != O_RDONLY)
            return 1;
    }
    return 0;
}

/* Hash the file open at fd if it is still (dev, ino) of size bytes. */
static uint64_t hash_fd(int fd, uint64_t dev, uint64_t ino, uint64_t size, uint32_t *kind)
{
    struct stat st;
    *kind = CK_HASH_NONE;
    if (fd < 0)
        return 0;
    uint64_t h = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_dev == dev && st.st_ino == ino &&
        (uint64_t)st.st_size == size)
        h = ck_file_hash(fd, size, kind);
    close(fd);
    return h;
}

/* A write-only file's version (fds/file.c, CK_FDF_VER_LATER), in the
 * writer: an appended file's tail hash now; a rewritten one is read by
 * dump.c. Not in the program itself (--no-fork): its open and close
 * would drop the program's POSIX locks on the file; there, and when the
 * file is no longer readable as it was, it is not versioned. */
static void version_later(struct ck_fd *f, int forked)
{
    static unsigned char tail[CK_VER_TAIL];
    char lp[64];
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", f->fd);
    int fd = forked ? open(lp, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) : -1;
    struct stat st;
    int ok = fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size >= f->size;
    if (ok && f->hash_kind == CK_HASH_VER_LENGTH) {
        uint64_t t = f->size < CK_VER_TAIL ? f->size : CK_VER_TAIL;
        ok = pread(fd, tail, t, (off_t)(f->size - t)) == (ssize_t)t;
        if (ok)
            f->hash = ck_xxh64(tail, t, f->size);
        f->flags &= ~(uint32_t)CK_FDF_VER_LATER;
    }
    if (fd >= 0)
        close(fd);
    if (!ok) {
        f->hash_kind = CK_HASH_WRITTEN;
        f->flags &= ~(uint32_t)CK_FDF_VER_LATER;
    }
}

void ident_hash_files(int forked)
{
    for (uint32_t i = 0; i < g_shim.nregions; i++) {
        struct ck_region *r = &g_shim.regions[i];
        if (!(r->flags & CK_REG_FILE) || (r->flags & CK_REG_ALLPAGES))
            continue;
        if (program_writes(r->dev, r->ino)) {
            r->hash_kind = CK_HASH_WRITTEN;
            continue;
        }
        uint32_t k;
        for (k = 0; k < i; k++)
            if (g_shim.regions[k].dev == r->dev && g_shim.regions[k].ino == r->ino &&
                g_shim.regions[k].hash_kind)
                break;
        if (k < i) {
            r->hash = g_shim.regions[k].hash;
            r->hash_kind = g_shim.regions[k].hash_kind;
            continue;
        }
        const char *path = g_shim.strtab + r->path_off;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        r->hash = hash_fd(fd, r->dev, r->ino, r->fsize, &r->hash_kind);
    }
    for (uint32_t i = 0; i < g_shim.nfds; i++) {
        struct ck_fd *f = &g_shim.fds[i];
        if (f->kind == CK_FD_FILE && (f->flags & CK_FDF_VER_LATER))
            version_later(f, forked);
        if (f->kind != CK_FD_FILE || f->share_with >= 0 || f->hash_kind >= CK_HASH_VER_LENGTH)
            continue; /* (a version: fds/file.c, kept while the program was parked) */
        if (program_writes(f->dev, f->ino)) {
            f->hash_kind = CK_HASH_WRITTEN;
            continue;
        }
        char lp[64];
        snprintf(lp, sizeof lp, "/proc/self/fd/%d", f->fd);
        int fd = open(lp, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        f->hash = hash_fd(fd, f->dev, f->ino, f->size, &f->hash_kind);
    }
}
