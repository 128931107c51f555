/* epoll.c - capture an epoll instance's watch list.
 *
 * /proc/self/fdinfo/EPFD has one line per watched descriptor:
 *
 *   tfd:        4 events:       19 data:           585870  pos:0 ino:16a31 sdev:f
 *
 * (tfd is the fd number the watch was added with, events includes the
 * EPOLLET/EPOLLONESHOT flag bits, data is the user's 64-bit cookie). The
 * image keeps them as text in the fd's path string, one "TFD EVENTS DATA"
 * line each (decimal, hex, hex); coord re-adds them after every descriptor
 * is back (coordinator/restore.c). kcmp(KCMP_EPOLL_TFD) tells whether fd
 * TFD still is the file the watch was added with. If it is not (the fd
 * was dup'd elsewhere and closed, or renumbered: the kernel keeps such a
 * watch, under the old number, as long as the file is open), the fd that
 * holds the file now is found among those on the same inode (fdinfo's
 * "ino:") with the same kcmp, and the line gets it as a fourth field,
 * "TFD EVENTS DATA HOLDER": restore adds the watch through TFD pointing at
 * that file for a moment. A watch whose file no descriptor holds cannot
 * be restored and is refused.
 *
 * Ready lists are not saved: re-adding a watch re-evaluates readiness, so
 * a descriptor that is ready after restore reports it again (a level
 * event, or one edge for EPOLLET), which epoll users must tolerate anyway.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "procparse.h"
#include "shim.h"

#define EPOLL_INFO_MAX (256u << 10)

static char info[EPOLL_INFO_MAX];
static int seen[4096];
static char list[64u << 10];

/* Inode of every open descriptor, for the holders of renumbered watches;
 * filled on first need per epoll_capture call. */
static struct {
    uint64_t ino;
    int fd;
} inos[SHIM_MAX_FDS];
static int ninos = -1;

static void inos_fill(void)
{
    ninos = 0;
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char dbuf[8192];
    long n;
    while (dfd >= 0 && (n = syscall(SYS_getdents64, dfd, dbuf, sizeof dbuf)) > 0) {
        for (long off = 0; off < n && ninos < SHIM_MAX_FDS;) {
            struct dirent64 *d = (struct dirent64 *)(dbuf + off);
            off += d->d_reclen;
            struct stat st;
            int fd = atoi(d->d_name);
            if (d->d_name[0] < '0' || d->d_name[0] > '9' || fd == dfd || fstat(fd, &st) < 0)
                continue;
            inos[ninos].ino = st.st_ino;
            inos[ninos++].fd = fd;
        }
    }
    if (dfd >= 0)
        close(dfd);
}

/* The descriptor that holds the file of the watch at slot now (on inode
 * ino), or -1. */
static int watch_holder(pid_t pid, struct kcmp_epoll_slot *slot, uint64_t ino)
{
    if (syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, (int)slot->tfd, slot) == 0)
        return (int)slot->tfd;
    if (ninos < 0)
        inos_fill();
    for (int i = 0; i < ninos; i++)
        if (inos[i].ino == ino && inos[i].fd != (int)slot->efd &&
            syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, inos[i].fd, slot) == 0)
            return inos[i].fd;
    return -1;
}

/* The watch list of epoll fd epfd as text: *ret_list points to a static
 * buffer valid until the next call. Returns 0, or -errno with a message in
 * err (a watch that cannot be restored, an unreadable fdinfo). */
int epoll_capture(int epfd, const char **ret_list, char *err, size_t errlen)
{
    char *out = list;
    size_t cap = sizeof list;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
    int n = shim_read_file(path, info, sizeof info);
    if (n < 0) {
        snprintf(err, errlen, "fd %d: cannot read %s: %s", epfd, path, strerror(-n));
        return n;
    }
    if ((size_t)n >= sizeof info - 1) {
        snprintf(err, errlen, "fd %d: epoll instance watches too many descriptors", epfd);
        return -E2BIG;
    }
    pid_t pid = shim_real_getpid();
    size_t used = 0;
    int nseen = 0;
    ninos = -1;
    out[0] = 0;
    for (const char *p = info; (p = strstr(p, "tfd:")) != NULL;) {
        uint64_t tfd, events, data;
        p += 4;
        while (*p == ' ' || *p == '\t')
            p++;
        if (ck_parse_dec(&p, &tfd) < 0)
            break;
        const char *e = strstr(p, "events:");
        const char *d = e ? strstr(e, "data:") : NULL;
        if (!e || !d)
            break;
        e += 7;
        d += 5;
        while (*e == ' ' || *e == '\t')
            e++;
        while (*d == ' ' || *d == '\t')
            d++;
        if (ck_parse_hex(&e, &events) < 0 || ck_parse_hex(&d, &data) < 0)
            break;
        p = d;
        const char *nl = strchr(p, '\n'), *in = strstr(p, "ino:");
        uint64_t ino = 0;
        if (in && (!nl || in < nl)) {
            in += 4;
            ck_parse_hex(&in, &ino);
        }
        /* A number watched more than once (the first file was dup'd,
         * closed, and the number reused): the kernel tells the watches
         * apart by their order among those of the number (toff). */
        uint32_t toff = 0;
        for (int i = 0; i < nseen; i++)
            toff += seen[i] == (int)tfd;
        if (nseen < (int)(sizeof seen / sizeof seen[0]))
            seen[nseen++] = (int)tfd;
        struct kcmp_epoll_slot slot = {(uint32_t)epfd, (uint32_t)tfd, toff};
        int holder = watch_holder(pid, &slot, ino);
        if (holder < 0) {
            snprintf(err, errlen,
                     "fd %d: epoll instance watches a file that is no longer fd %d and that no "
                     "descriptor holds, which ckshim cannot restore",
                     epfd, (int)tfd);
            return -ENOTSUP;
        }
        char hs[16] = "";
        if (holder != (int)tfd)
            snprintf(hs, sizeof hs, " %d", holder);
        int w = snprintf(out + used, cap - used, "%d %llx %llx%s\n", (int)tfd,
                         (unsigned long long)events, (unsigned long long)data, hs);
        if (w < 0 || (size_t)w >= cap - used) {
            snprintf(err, errlen, "fd %d: epoll watch list too long", epfd);
            return -E2BIG;
        }
        used += (size_t)w;
    }
    *ret_list = out;
    return 0;
}
