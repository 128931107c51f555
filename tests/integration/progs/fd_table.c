/* fd_table - the descriptor table is exactly the program's after restore.
 *
 * Before READY: the list of open descriptors (/proc/self/fd, number and
 * link target) is taken. After restore (and, for the driver's live
 * checkpoint, after a checkpoint the program went on from): the list is
 * the same, nothing added by the shim (libunwind's address-testing pipe
 * stayed open among the program's descriptors at 880/881 after a
 * checkpoint; a program that lists its descriptors - zdtm's fd test, a
 * daemon closing everything above 2 - found it).
 */
#include <dirent.h>
#include <stdlib.h>

#include "testlib.h"

#define MAXFD 64

struct ent {
    int fd;
    char target[256];
};

static int list_fds(struct ent *e, int max)
{
    DIR *d = opendir("/proc/self/fd");
    check_sys(d ? 0 : -1);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        int fd = atoi(de->d_name);
        if (fd == dirfd(d))
            continue;
        check(n < max, "more than %d descriptors", max);
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t l = readlink(path, e[n].target, sizeof e[n].target - 1);
        e[n].target[l > 0 ? l : 0] = 0;
        e[n++].fd = fd;
    }
    closedir(d);
    return n;
}

static int find(const struct ent *e, int n, int fd)
{
    for (int i = 0; i < n; i++)
        if (e[i].fd == fd)
            return i;
    return -1;
}

int main(void)
{
    static struct ent before[MAXFD], after[MAXFD];
    int p[2];
    check_sys(pipe(p));                 /* one descriptor of the program's own */
    int nb = list_fds(before, MAXFD);
    test_ready();
    test_wait_go();
    int na = list_fds(after, MAXFD);
    for (int i = 0; i < na; i++)
        check(find(before, nb, after[i].fd) >= 0, "fd %d (%s) appeared", after[i].fd,
              after[i].target);
    for (int i = 0; i < nb; i++)
        check(find(after, na, before[i].fd) >= 0, "fd %d (%s) is gone", before[i].fd,
              before[i].target);
    check(write(p[1], "y", 1) == 1, "write to the program's pipe");
    char c = 0;
    check(read(p[0], &c, 1) == 1 && c == 'y', "read back from the program's pipe");
    pass();
}
