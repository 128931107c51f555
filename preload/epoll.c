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
 * is back (coordinator/restore.c). A watch is only restorable if fd TFD
 * still is the file it was added with: checked with kcmp(KCMP_EPOLL_TFD).
 *
 * Ready lists are not saved: re-adding a watch re-evaluates readiness, so
 * a descriptor that is ready after restore reports it again (a level
 * event, or one edge for EPOLLET), which epoll users must tolerate anyway.
 */
#include <errno.h>
#include <linux/kcmp.h>
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
        /* A number watched twice (the first file was dup'd, closed, and
         * the number reused) has a stale watch: kcmp refuses one of them. */
        uint32_t toff = 0;
        for (int i = 0; i < nseen; i++)
            toff += seen[i] == (int)tfd;
        if (nseen < (int)(sizeof seen / sizeof seen[0]))
            seen[nseen++] = (int)tfd;
        struct kcmp_epoll_slot slot = {(uint32_t)epfd, (uint32_t)tfd, toff};
        if (toff || syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, (int)tfd, &slot) != 0) {
            snprintf(err, errlen,
                     "fd %d: epoll instance watches a file that is no longer fd %d (closed or "
                     "renumbered), which ckshim cannot restore",
                     epfd, (int)tfd);
            return -ENOTSUP;
        }
        int w = snprintf(out + used, cap - used, "%d %llx %llx\n", (int)tfd,
                         (unsigned long long)events, (unsigned long long)data);
        if (w < 0 || (size_t)w >= cap - used) {
            snprintf(err, errlen, "fd %d: epoll watch list too long", epfd);
            return -E2BIG;
        }
        used += (size_t)w;
    }
    *ret_list = out;
    return 0;
}
