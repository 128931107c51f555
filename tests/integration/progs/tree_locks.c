/* tree_locks - file locks held by a parent and its child come back with
 * their owners after a checkpoint of the tree.
 *
 * One file. The parent takes an flock through fd A and an OFD write lock
 * on bytes 10-19 through fd B, then forks: the child shares both
 * descriptions (and so both locks). The parent takes a POSIX read lock on
 * bytes 0-4 through A (its own: the child's view of A lists it, but it is
 * not the child's); the child opens the file again and takes a POSIX
 * write lock on bytes 50-59. After the go file, through a new descriptor,
 * the parent finds the child's lock (F_GETLK names the child by its pid),
 * the flock and the OFD lock held; then the child finds the parent's
 * read lock (F_GETLK names the parent) and that it can take the range
 * the parent's lock does not cover.
 */
#include <sys/file.h>
#include <sys/wait.h>

#include "testlib.h"

static int getlk(int fd, int cmd, short type, off_t start, off_t len, struct flock *out)
{
    memset(out, 0, sizeof *out);
    out->l_type = type;
    out->l_whence = SEEK_SET;
    out->l_start = start;
    out->l_len = len;
    return fcntl(fd, cmd, out);
}

static void lock(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    check(fcntl(fd, cmd, &fl) == 0, "lock %lld+%lld: %s", (long long)start, (long long)len,
          strerror(errno));
}

int main(void)
{
    test_go_setup(); /* the child waits for the go file too */
    char path[64];
    snprintf(path, sizeof path, "tree_locks.%d", (int)getpid());
    int a = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    check_sys(a);
    char zero[100] = {0};
    check(write(a, zero, sizeof zero) == (ssize_t)sizeof zero, "write: %s", strerror(errno));
    int b = open(path, O_RDWR);
    check_sys(b);
    check_sys(flock(a, LOCK_EX));
    lock(b, F_OFD_SETLK, F_WRLCK, 10, 10);
    int c2p[2], p2c[2];
    check_sys(pipe(c2p));
    check_sys(pipe(p2c));
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        int c = open(path, O_RDWR);
        check_sys(c);
        lock(c, F_SETLK, F_WRLCK, 50, 10);
        check(write(c2p[1], "r", 1) == 1, "child: write: %s", strerror(errno));
        while (!test_go_reached())
            test_sleep_ms(10);
        char ch;
        check(read(p2c[0], &ch, 1) == 1, "child: the parent did not finish");
        struct flock fl;
        check_sys(getlk(c, F_GETLK, F_WRLCK, 0, 5, &fl));
        check(fl.l_type == F_RDLCK && fl.l_pid == getppid(), "child: the parent's read lock: "
              "type %d pid %d (parent %d)", fl.l_type, (int)fl.l_pid, (int)getppid());
        check_sys(getlk(c, F_GETLK, F_WRLCK, 5, 5, &fl));
        check(fl.l_type == F_UNLCK, "child: bytes 5-9 locked by %d", (int)fl.l_pid);
        _exit(0);
    }
    lock(a, F_SETLK, F_RDLCK, 0, 5);
    char ch;
    check(read(c2p[0], &ch, 1) == 1, "the child did not start");
    test_ready();
    while (!test_go_reached())
        test_sleep_ms(10);
    int d = open(path, O_RDWR); /* kept open: a close would drop the read lock */
    check_sys(d);
    struct flock fl;
    check_sys(getlk(d, F_GETLK, F_WRLCK, 50, 10, &fl));
    check(fl.l_type == F_WRLCK && fl.l_pid == k, "the child's POSIX lock: type %d pid %d "
          "(child %d)", fl.l_type, (int)fl.l_pid, (int)k);
    check(flock(d, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK,
          "the flock is not held: %s", strerror(errno));
    check_sys(getlk(d, F_OFD_GETLK, F_WRLCK, 10, 10, &fl));
    check(fl.l_type == F_WRLCK, "the OFD lock is not held (type %d)", fl.l_type);
    check(write(p2c[1], "c", 1) == 1, "write: %s", strerror(errno));
    int st = 0;
    check(waitpid(k, &st, 0) == k, "waitpid(%d): %s", (int)k, strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
    unlink(path);
    pass();
}
