/* tree_clone_files - processes sharing one descriptor table (clone with
 * CLONE_FILES), as zdtm's fdt_shared: after restore the table is one
 * again (a descriptor one closes or opens is gone or there for the
 * other), offsets are shared, and a child cloned without CLONE_FILES has
 * its own copy.
 *
 *   main (fd 100 "a", 102 "c")
 *    `- sharer (CLONE_FILES; opened fd 101 "b", wrote 5 bytes to it)
 *        |- sharer2 (CLONE_FILES)
 *        `- copier (own table: a copy of main's and sharer's)
 *
 * After go: main closes 102 and tells sharer, which finds it closed,
 * opens 103 and tells main and sharer2, which find it open; copier finds
 * 100, 101 and 102 still open in its own table and closes 100, which main
 * still reads.
 *
 * With CK_SHARER_GROUP=1 the sharer makes a process group of its own,
 * which a restore cannot give such a child; with 2 the copier clones a
 * sibling of its own (CLONE_PARENT) that shares the copier's table, not
 * its parent's; with 3 the sharer has a child that ended and is not
 * waited for (a zombie, which only coord makes again, while the sharer's
 * children must be made by its restorer): test_trees.sh expects each
 * checkpoint refused by name, every process running on.
 */
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

static int p1[2], p2[2], p3[2], p4[2], p5[2];

static void put(int fd, int at, const char *name, const char *data)
{
    int f = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    check_sys(f);
    check(dup2(f, at) == at, "dup2 %d: %s", at, strerror(errno));
    close(f);
    if (data)
        check(write(at, data, strlen(data)) == (ssize_t)strlen(data), "write %d", at);
    (void)fd;
}

/* under --pidns (pidns_clone_files.c): every pid is exactly the old one */
static int raw_pid_ok(const char *who)
{
#ifdef PIDNS_CHECK
    long raw = syscall(SYS_getpid);
    if (raw != getpid()) {
        test_msg("%s: raw getpid %ld, getpid %d", who, raw, (int)getpid());
        return 0;
    }
#endif
    (void)who;
    return 1;
}

static int is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void token(int fd, char c)
{
    check(write(fd, &c, 1) == 1, "write token: %s", strerror(errno));
}

static char take(int fd)
{
    char c = 0;
    ssize_t r;
    while ((r = read(fd, &c, 1)) < 0 && errno == EINTR)
        ;
    check(r == 1, "read token: %s", r < 0 ? strerror(errno) : "EOF");
    return c;
}

static int sharer2(void *arg)
{
    (void)arg;
    test_wait_go();
    if (!raw_pid_ok("sharer2"))
        return 6;
    take(p3[0]);
    if (!is_open(103) || is_open(102)) {
        test_msg("sharer2: 103 %s, 102 %s after its sharer's changes",
                 is_open(103) ? "open" : "closed", is_open(102) ? "open" : "closed");
        return 2;
    }
    return 0;
}

static int idle(void *arg)
{
    (void)arg;
    test_wait_go();
    return 0;
}

static pid_t start(int (*fn)(void *), int flags);

static int copier(void *arg)
{
    (void)arg;
    const char *g = getenv("CK_SHARER_GROUP");
    if (g && *g == '2')
        start(idle, CLONE_FILES | CLONE_PARENT);
    token(p5[1], 'r');
    test_wait_go();
    take(p4[0]); /* main closed 102 by now */
    if (!is_open(100) || !is_open(101) || !is_open(102)) {
        test_msg("copier: its own table lost 100 %d 101 %d 102 %d", is_open(100),
                 is_open(101), is_open(102));
        return 3;
    }
    close(100);
    token(p2[1], 'k');
    return 0;
}

static pid_t start(int (*fn)(void *), int flags)
{
    size_t sz = 256 * 1024;
    char *stack = malloc(sz);
    check(stack != NULL, "malloc");
    pid_t pid = clone(fn, stack + sz, flags | SIGCHLD, NULL);
    check_sys(pid);
    return pid;
}

static int sharer(void *arg)
{
    (void)arg;
    const char *g = getenv("CK_SHARER_GROUP");
    if (g && *g == '1')
        check_sys(setpgid(0, 0));
    if (g && *g == '3') {
        pid_t z = fork();
        check_sys(z);
        if (z == 0)
            _exit(0);
        siginfo_t si;
        check_sys(waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT));
    }
    put(-1, 101, "b", "hello");
    pid_t s2 = start(sharer2, CLONE_FILES);
    pid_t cp = start(copier, 0);
    take(p5[0]);
    token(p2[1], 'r'); /* ready */
    test_wait_go();
    if (!raw_pid_ok("sharer"))
        return 6;
    take(p1[0]); /* main closed 102 */
    if (is_open(102)) {
        test_msg("sharer: 102, closed by main, is open here: the table is not shared");
        return 4;
    }
    put(-1, 103, "d", NULL);
    token(p2[1], 'o');
    token(p3[1], 'o');
    int ws, bad = 0;
    check(waitpid(s2, &ws, 0) == s2, "waitpid sharer2: %s", strerror(errno));
    bad |= !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    check(waitpid(cp, &ws, 0) == cp, "waitpid copier: %s", strerror(errno));
    bad |= !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    return bad ? 5 : 0;
}

int main(void)
{
    test_go_setup();
    check_sys(pipe(p1));
    check_sys(pipe(p2));
    check_sys(pipe(p3));
    check_sys(pipe(p4));
    check_sys(pipe(p5));
    put(-1, 100, "a", "0123456789");
    check(lseek(100, 2, SEEK_SET) == 2, "lseek");
    put(-1, 102, "c", NULL);
    pid_t sh = start(sharer, CLONE_FILES);
    check(take(p2[0]) == 'r', "sharer not ready");
    check(is_open(101), "101, opened by the sharer, is not open here");
    test_ready();
    test_wait_go();
    check(raw_pid_ok("main"), "main's pid changed");
    /* the sharer's offset on 101 and ours on 100 */
    check(lseek(101, 0, SEEK_CUR) == 5, "101's offset is %ld, not 5",
          (long)lseek(101, 0, SEEK_CUR));
    char b[4] = "";
    check(read(100, b, 3) == 3 && !memcmp(b, "234", 3), "100 reads '%.3s', not 234", b);
    close(102);
    token(p1[1], 'c');
    token(p4[1], 'c');
    int seen = 0;
    for (int k = 0; k < 2; k++) {
        char c = take(p2[0]);
        seen |= c == 'o' ? 1 : c == 'k' ? 2 : 0;
    }
    check(seen == 3, "tokens %d", seen);
    check(is_open(103), "103, opened by the sharer after restore, is not open here");
    check(is_open(100), "100 was closed here by the copier, which has a table of its own");
    int ws;
    check(waitpid(sh, &ws, 0) == sh, "waitpid: %s", strerror(errno));
    check(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "sharer: status 0x%x", ws);
    pass();
    return 0;
}
