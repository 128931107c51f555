/* tree_closed_table - children that close every descriptor they have and
 * then live with an empty table: one closes them one by one through
 * close() as it reads /proc/self/fd (a daemon's start, zdtm's fd test),
 * the other with closefrom(0) (which closes them inside libc). The shim's own control
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
    char pad[64 - 4 * sizeof(int)];
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

/* The child: empty its table (way 0: one by one, 1: closefrom), then
 * count what it has whenever the parent asks. */
static void child(struct shared *sh, int way)
{
    if (way == 0) {
        DIR *d = opendir("/proc/self/fd");
        if (!d)
            _exit(2);
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
                close(atoi(e->d_name));
        closedir(d);
    } else {
        closefrom(0);
    }
    sh->closed = 1;
    for (;;) {
        while (!sh->check)
            usleep(20000);
        int first = -1;
        sh->seen = count_fds("/proc/self/fd", 1, &first);
        sh->first = first;
        sh->check = 0;
    }
}

/* The parent's view of child c's table, through /proc/<c>/fd, and the
 * child's own; fails the test unless both are empty. */
static void check_empty(struct shared *sh, pid_t c, const char *when)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)c);
    int first = -1;
    int n = count_fds(path, 0, &first);
    if (n != 0) {
        char link[96], target[256] = "";
        snprintf(link, sizeof link, "%s/%d", path, first);
        ssize_t k = readlink(link, target, sizeof target - 1);
        target[k > 0 ? k : 0] = 0;
        fail("%s child %d has %d descriptors: fd %d -> %s", when, (int)c, n, first, target);
    }
    sh->seen = -2;
    sh->check = 1;
    for (int i = 0; i < 500 && sh->check; i++)
        usleep(10000);
    if (sh->check || sh->seen != 0)
        fail("%s child %d sees %d descriptors of its own (fd %d first)", when, (int)c, sh->seen,
             sh->first);
}

int main(void)
{
    struct shared *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                             -1, 0);
    if (sh == MAP_FAILED)
        fail("mmap: %s", strerror(errno));
    test_go_setup();
    pid_t c[2];
    for (int i = 0; i < 2; i++) {
        c[i] = fork();
        if (c[i] < 0)
            fail("fork: %s", strerror(errno));
        if (c[i] == 0)
            child(&sh[i], i);
        while (!sh[i].closed)
            usleep(10000);
    }
    for (int i = 0; i < 2; i++)
        check_empty(&sh[i], c[i], "before the checkpoint");
    test_ready();
    test_wait_go();
    for (int i = 0; i < 2; i++)
        check_empty(&sh[i], c[i], "after restore");
    for (int i = 0; i < 2; i++) {
        kill(c[i], SIGTERM);
        int st;
        if (waitpid(c[i], &st, 0) != c[i] || !WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM)
            fail("child %d: waitpid %s, status %#x", (int)c[i], strerror(errno), st);
    }
    pass();
}
