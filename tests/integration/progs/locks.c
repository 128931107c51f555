/* locks - file locks held at checkpoint are held again after restore, by
 * the same descriptor (open file description) and with their type and
 * ranges.
 *
 * Before READY (files in the cwd):
 *   fd A: a.lck, flock LOCK_EX;          fd D: d.lck, flock LOCK_SH
 *   fd B: b.lck O_RDWR, POSIX locks: write 10-14, read 100 to the end,
 *         and lockf(F_TLOCK) on 50-59 (write)
 *   fd C: c.lck O_RDWR, OFD locks: write on byte 0, read 1000-1999
 *   fd E: e.shm O_RDWR, mapped MAP_SHARED (as sqlite's WAL index), POSIX
 *         write lock on 0-4095 (the restorer maps the file: closing a
 *         descriptor of it would drop the process's POSIX locks)
 * After restore a child process (its own descriptors, its own locks)
 * must be refused exactly what conflicts and granted the rest; F_GETLK
 * and F_OFD_GETLK name the restored process as the POSIX holder by the
 * pid the program knows (getppid() in the child, getpid() and
 * syscall(SYS_getpid) in the parent), an OFD lock's holder as -1; the
 * program's own descriptors still own their locks (unlock, relock).
 */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

static int fa, fb, fc, fd_d, fe;

static int openf(const char *name)
{
    int fd = open(name, O_RDWR | O_CREAT, 0644);
    check_sys(fd);
    check_sys(ftruncate(fd, 8192));
    return fd;
}

static int setlk(int fd, int cmd, int type, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

/* In the child: try a lock, expect granted (1) or refused (0). */
static void expect_lk(int fd, int cmd, int type, off_t start, off_t len, int granted,
                      const char *what)
{
    int r = setlk(fd, cmd, type, start, len);
    if (granted && r < 0)
        fail("child: %s: refused (%s), expected granted", what, strerror(errno));
    if (!granted && r == 0)
        fail("child: %s: granted, expected refused: the restored program lost its lock", what);
    if (!granted && errno != EAGAIN && errno != EACCES)
        fail("child: %s: %s", what, strerror(errno));
    if (r == 0)
        setlk(fd, cmd, F_UNLCK, start, len);
}

static void expect_flock(int fd, int op, int granted, const char *what)
{
    int r = flock(fd, op | LOCK_NB);
    if (granted && r < 0)
        fail("child: %s: refused (%s), expected granted", what, strerror(errno));
    if (!granted && r == 0)
        fail("child: %s: granted, expected refused: the restored program lost its lock", what);
    if (r == 0)
        flock(fd, LOCK_UN);
}

/* fail() unless a write lock at byte at of fd is refused by a lock whose
 * holder cmd (F_GETLK, F_OFD_GETLK) reports as pid. */
static void getlk_holder(int fd, int cmd, off_t at, pid_t pid, const char *what)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1};
    check_sys(fcntl(fd, cmd, &fl));
    check(fl.l_type != F_UNLCK && fl.l_pid == pid, "%s: type %d holder %d, expected holder %d",
          what, fl.l_type, fl.l_pid, pid);
}

static void child(pid_t parent)
{
    int a = open("a.lck", O_RDWR), b = open("b.lck", O_RDWR), c = open("c.lck", O_RDWR);
    int d = open("d.lck", O_RDWR), e = open("e.shm", O_RDWR);
    check(a >= 0 && b >= 0 && c >= 0 && d >= 0 && e >= 0, "child: open: %s", strerror(errno));
    expect_flock(a, LOCK_SH, 0, "flock LOCK_SH on a.lck (held LOCK_EX)");
    expect_flock(d, LOCK_SH, 1, "flock LOCK_SH on d.lck (held LOCK_SH)");
    expect_flock(d, LOCK_EX, 0, "flock LOCK_EX on d.lck (held LOCK_SH)");

    expect_lk(b, F_SETLK, F_RDLCK, 12, 1, 0, "POSIX read lock on b.lck byte 12 (write 10-14)");
    expect_lk(b, F_SETLK, F_WRLCK, 14, 1, 0, "POSIX write lock on b.lck byte 14");
    expect_lk(b, F_SETLK, F_WRLCK, 15, 35, 1, "POSIX write lock on b.lck 15-49 (free)");
    expect_lk(b, F_SETLK, F_WRLCK, 55, 1, 0, "POSIX write lock on b.lck 55 (lockf 50-59)");
    expect_lk(b, F_SETLK, F_RDLCK, 60, 40, 1, "POSIX read lock on b.lck 60-99 (free)");
    expect_lk(b, F_SETLK, F_RDLCK, 100, 0, 1, "POSIX read lock on b.lck 100-EOF (held read)");
    expect_lk(b, F_SETLK, F_WRLCK, 5000, 1, 0, "POSIX write lock on b.lck 5000 (held read)");
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 1};
    check_sys(fcntl(b, F_GETLK, &fl));
    check(fl.l_type == F_WRLCK && fl.l_pid == parent && fl.l_start == 10 && fl.l_len == 5,
          "child: F_GETLK on b.lck 10 says type %d pid %d range %lld+%lld, expected a write lock "
          "of pid %d on 10+5", fl.l_type, fl.l_pid, (long long)fl.l_start, (long long)fl.l_len,
          parent);
    check(parent == getppid(), "child: getppid() is %d, the parent's syscall(SYS_getpid) %d",
          getppid(), parent);
    getlk_holder(b, F_OFD_GETLK, 12, parent, "child: F_OFD_GETLK on b.lck 12");
    getlk_holder(c, F_GETLK, 0, -1, "child: F_GETLK on c.lck 0 (an OFD lock)");

    expect_lk(c, F_OFD_SETLK, F_RDLCK, 0, 1, 0, "OFD read lock on c.lck byte 0 (held write)");
    expect_lk(c, F_OFD_SETLK, F_WRLCK, 1, 999, 1, "OFD write lock on c.lck 1-999 (free)");
    expect_lk(c, F_OFD_SETLK, F_RDLCK, 1500, 1, 1, "OFD read lock on c.lck 1500 (held read)");
    expect_lk(c, F_OFD_SETLK, F_WRLCK, 1999, 1, 0, "OFD write lock on c.lck 1999 (held read)");
    expect_lk(c, F_OFD_SETLK, F_WRLCK, 2000, 1, 1, "OFD write lock on c.lck 2000 (free)");
    expect_lk(c, F_SETLK, F_WRLCK, 0, 1, 0, "POSIX write lock on c.lck byte 0 (held OFD)");

    expect_lk(e, F_SETLK, F_RDLCK, 4000, 1, 0, "POSIX read lock on e.shm 4000 (mapped, held)");
    _exit(0);
}

static void run_child(void)
{
    /* the pid the program knows (libc's syscall() answers as getpid()),
     * as the child's F_GETLK reports it */
    pid_t parent = (pid_t)syscall(SYS_getpid);
    check(parent == getpid(), "syscall(SYS_getpid) is %d, getpid() %d", parent, getpid());
    /* an OFD lock conflicts with the process's own POSIX locks */
    getlk_holder(fb, F_OFD_GETLK, 12, parent, "F_OFD_GETLK on b.lck 12 (our POSIX lock)");
    pid_t k = fork();
    check_sys(k);
    if (k == 0)
        child(parent);
    int st;
    check_sys(waitpid(k, &st, 0));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child check failed (status %#x)", st);
}

int main(void)
{
    fa = openf("a.lck");
    check_sys(flock(fa, LOCK_EX));
    fd_d = openf("d.lck");
    check_sys(flock(fd_d, LOCK_SH));
    fb = openf("b.lck");
    check_sys(setlk(fb, F_SETLK, F_WRLCK, 10, 5));
    check_sys(setlk(fb, F_SETLK, F_RDLCK, 100, 0));
    check_sys(lseek(fb, 50, SEEK_SET));
    check_sys(lockf(fb, F_TLOCK, 10));
    fc = openf("c.lck");
    check_sys(setlk(fc, F_OFD_SETLK, F_WRLCK, 0, 1));
    check_sys(setlk(fc, F_OFD_SETLK, F_RDLCK, 1000, 1000));
    fe = openf("e.shm");
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fe, 0);
    check(m != MAP_FAILED, "mmap e.shm: %s", strerror(errno));
    strcpy(m, "shared");
    check_sys(setlk(fe, F_SETLK, F_WRLCK, 0, 4096));
    run_child(); /* the checks hold before the checkpoint too */
    test_ready();
    test_wait_go();

    run_child();
    check(!strcmp(m, "shared"), "e.shm mapping lost its contents");
    /* the program's own descriptors still own their locks */
    check_sys(flock(fa, LOCK_UN));
    check_sys(flock(fa, LOCK_SH | LOCK_NB));
    check_sys(setlk(fb, F_SETLK, F_UNLCK, 10, 5));
    check_sys(setlk(fc, F_OFD_SETLK, F_UNLCK, 0, 1));
    pass();
}
