/* tree_closed_table - a child that closes every descriptor it has, one by
 * one through close() as it reads /proc/self/fd (a daemon's start, zdtm's
 * fd test), and then lives with an empty table. The shim's own control
 * socket goes too: coord calls the child instead (common/ctlproto.h,
 * CK_CALL_COMM), and nothing of ckshim's may show in its table, before
 * the checkpoint, after the restore, or after the next one.
 *
 * The parent sees the child's table through /proc/<child>/fd (the pid it
 * knows); the child checks its own (its /proc/self/fd descriptor aside)
 * and says how it went in the shared page, having no stdout.
 */
#include <dirent.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "testlib.h"

struct shared {
    volatile int closed;    /* the child emptied its table */
    volatile int check;     /* the parent asks the child to look */
    volatile int seen;      /* descriptors the child found (-1: cannot read) */
    volatile int first;     /* the first of them */
};

/* Descriptors in /proc/PATH/fd, the DIR's own (skip) aside; the first in
 * *first. -1 when it cannot be read. */
static int count_fds(const char *path, int skip_own, int *first)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (skip_own && fd == dirfd(d))
            continue;
        if (n++ == 0)
            *first = fd;
    }
    closedir(d);
    return n;
}

int main(void)
{
    struct shared *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                             -1, 0);
    if (sh == MAP_FAILED)
        fail("mmap: %s", strerror(errno));
    test_go_setup();
    pid_t c = fork();
    if (c < 0)
        fail("fork: %s", strerror(errno));
    if (c == 0) {
        DIR *d = opendir("/proc/self/fd");
        if (!d)
            _exit(2);
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
                close(atoi(e->d_name));
        closedir(d);
        sh->closed = 1;
        while (!sh->check)
            usleep(20000);
        int first = -1;
        sh->seen = count_fds("/proc/self/fd", 1, &first);
        sh->first = first;
        sh->check = 0;
        /* and again once more is asked (the next round) */
        for (;;)
            pause();
    }
    while (!sh->closed)
        usleep(10000);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)c);
    int first = -1;
    int n = count_fds(path, 0, &first);
    if (n != 0)
        fail("before the checkpoint the child has %d descriptors (fd %d first)", n, first);
    test_ready();
    test_wait_go();

    n = count_fds(path, 0, &first);
    if (n != 0) {
        char link[96], target[256] = "";
        snprintf(link, sizeof link, "%s/%d", path, first);
        ssize_t k = readlink(link, target, sizeof target - 1);
        target[k > 0 ? k : 0] = 0;
        fail("after restore the child has %d descriptors: fd %d -> %s", n, first, target);
    }
    sh->seen = -2;
    sh->check = 1;
    for (int i = 0; i < 500 && sh->check; i++)
        usleep(10000);
    if (sh->check || sh->seen != 0)
        fail("the child sees %d descriptors of its own (fd %d first)", sh->seen, sh->first);
    kill(c, SIGTERM);
    int st;
    if (waitpid(c, &st, 0) != c || !WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM)
        fail("the child: waitpid %s, status %#x", strerror(errno), st);
    pass();
}
