/* fileid.c - file identity hashes and non-blocking opens (see fileid.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileid.h"
#include "xxh64.h"

/* Hash [off, off+len) into *h, chained. 0, or -1 if it could not be read
 * whole. */
static int hash_range(int fd, uint8_t *buf, uint64_t off, uint64_t len, uint64_t *h)
{
    while (len) {
        size_t want = len < CK_HASH_BLOCK ? (size_t)len : CK_HASH_BLOCK;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        *h = ck_xxh64(buf, (size_t)got, *h);
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    return 0;
}

uint64_t ck_file_hash(int fd, uint64_t size, uint32_t *kind)
{
    *kind = CK_HASH_NONE;
    uint8_t *buf = mmap(NULL, CK_HASH_BLOCK, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        return 0;
    uint64_t h = size;
    int ok;
    if (size <= CK_HASH_WHOLE_MAX) {
        ok = hash_range(fd, buf, 0, size, &h) == 0;
        *kind = CK_HASH_WHOLE;
    } else {
        /* Blocks spread evenly, the first at 0 and the last at the end. */
        ok = 1;
        uint64_t span = size - CK_HASH_BLOCK;
        for (int i = 0; ok && i < CK_HASH_SAMPLES; i++)
            ok = hash_range(fd, buf, span / (CK_HASH_SAMPLES - 1) * (uint64_t)i, CK_HASH_BLOCK,
                            &h) == 0;
        *kind = CK_HASH_SAMPLED;
    }
    munmap(buf, CK_HASH_BLOCK);
    if (!ok)
        *kind = CK_HASH_NONE;
    return ok ? h : 0;
}

static int under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return n > 1 && !strncmp(path, dir, n) && path[n] == '/' && !strstr(path + n, "/../");
}

int ck_in_temp_dir(const char *path, const char *tmpdir)
{
    return under(path, "/tmp") || under(path, "/var/tmp") || under(path, "/dev/shm") ||
           (tmpdir && tmpdir[0] == '/' && under(path, tmpdir));
}

const char *ck_file_type_name(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
        return "a regular file";
    case S_IFDIR:
        return "a directory";
    case S_IFIFO:
        return "a FIFO";
    case S_IFSOCK:
        return "a socket";
    case S_IFCHR:
        return "a character device";
    case S_IFBLK:
        return "a block device";
    case S_IFLNK:
        return "a symbolic link";
    default:
        return "a file of unknown type";
    }
}

int ck_open_regular(const char *path, int flags, char *err, size_t errlen)
{
    int fd = open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "is %s, not a regular file", ck_file_type_name(st.st_mode));
        close(fd);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return -1;
    }
    if (!(flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, flags & ~(O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY));
    return fd;
}

int ck_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    close(fd);
    return (int)n;
}

void ck_dir_of(const char *path, char *dir, size_t len)
{
    const char *s = strrchr(path, '/');
    size_t n = s ? (size_t)(s - path) : 0;

    if (!s) {
        snprintf(dir, len, ".");
        return;
    }
    if (n == 0)
        n = 1;
    snprintf(dir, len, "%.*s", (int)n, path);
}

int ck_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0 && errno != EINVAL)
        r = -errno;
    close(fd);
    return r;
}
