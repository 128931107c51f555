/* proc_pid_text - pids in the /proc text the program reads are the ones
 * it knows (getpid(), getppid()) after a restore.
 *
 * Before READY: S = pidfd_open(getpid()); fd F: f.lck, flock LOCK_EX;
 * fd P: p.lck, a POSIX write lock on 0-9; fd O: o.lck, an OFD read lock
 * on 0-9. The checks below hold before the checkpoint too.
 * After the go file: the fdinfo of S read with fopen and with open says
 * Pid: and NSpid: getpid(); the "lock:" lines of F's and P's fdinfo name
 * getpid() as the owner, O's -1 (an OFD lock has no process); /proc/locks
 * names getpid() for the locks on f.lck and p.lck; a child forked now
 * reads its parent's fdinfo (by /proc/<getppid()>) and finds getppid()
 * as P's lock owner. The kernel writes the pids it has now; the shim
 * shows them as the program knows them.
 */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

static int fd_s, fd_f, fd_p, fd_o;

/* The number after key (at a line's start) in text, or -2 if none. */
static int field(const char *text, const char *key)
{
    size_t k = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, key, k))
            return atoi(l + k);
    return -2;
}

static void slurp_fopen(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    check(f != NULL, "fopen %s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

static void slurp_open(const char *path, char *buf, size_t cap)
{
    int f = open(path, O_RDONLY | O_CLOEXEC);
    check(f >= 0, "open %s: %s", path, strerror(errno));
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(f, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(f);
}

/* The owner of the lock: line of fdinfo text whose kind is kind, or -2. */
static int lock_owner(const char *text, const char *kind)
{
    for (const char *l = strstr(text, "lock:\t"); l; l = strstr(l + 1, "lock:\t")) {
        char k[16], adv[16], type[16];
        int owner;
        if (sscanf(l, "lock:\t%*d: %15s %15s %15s %d", k, adv, type, &owner) == 4 &&
            !strcmp(k, kind))
            return owner;
    }
    return -2;
}

/* The owner /proc/locks names for the lock of kind on fd's inode, or -2. */
static int proc_locks_owner(int fd, const char *kind)
{
    static char text[65536];
    struct stat st;
    check_sys(fstat(fd, &st));
    slurp_open("/proc/locks", text, sizeof text);
    for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        char k[16];
        int owner;
        unsigned long ino;
        if (sscanf(l, "%*d: %15s %*s %*s %d %*x:%*x:%lu", k, &owner, &ino) == 3 &&
            !strcmp(k, kind) && ino == st.st_ino)
            return owner;
    }
    return -2;
}

static void checks(void)
{
    char path[64], text[4096];
    int me = getpid();
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd_s);
    slurp_fopen(path, text, sizeof text);
    check(field(text, "Pid:\t") == me && field(text, "NSpid:\t") == me,
          "pidfd of ourselves (fopen): Pid %d NSpid %d, getpid() %d", field(text, "Pid:\t"),
          field(text, "NSpid:\t"), me);
    slurp_open(path, text, sizeof text);
    check(field(text, "Pid:\t") == me, "pidfd of ourselves (open): Pid %d, getpid() %d",
          field(text, "Pid:\t"), me);

    snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", me, fd_f);
    slurp_fopen(path, text, sizeof text);
    check(lock_owner(text, "FLOCK") == me, "flock owner in fdinfo %d, getpid() %d",
          lock_owner(text, "FLOCK"), me);
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd_p);
    slurp_open(path, text, sizeof text);
    check(lock_owner(text, "POSIX") == me, "POSIX lock owner in fdinfo %d, getpid() %d",
          lock_owner(text, "POSIX"), me);
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd_o);
    slurp_fopen(path, text, sizeof text);
    check(lock_owner(text, "OFDLCK") == -1, "OFD lock owner in fdinfo %d, expected -1",
          lock_owner(text, "OFDLCK"));

    check(proc_locks_owner(fd_f, "FLOCK") == me && proc_locks_owner(fd_p, "POSIX") == me,
          "/proc/locks: flock owner %d, POSIX owner %d, getpid() %d",
          proc_locks_owner(fd_f, "FLOCK"), proc_locks_owner(fd_p, "POSIX"), me);

    pid_t c = fork();
    check_sys(c);
    if (c == 0) {
        snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", getppid(), fd_p);
        slurp_open(path, text, sizeof text);
        if (lock_owner(text, "POSIX") != getppid()) {
            test_msg("child: POSIX lock owner in %s is %d, getppid() %d", path,
                     lock_owner(text, "POSIX"), getppid());
            _exit(1);
        }
        _exit(0);
    }
    int st;
    check_sys(waitpid(c, &st, 0));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's check failed (status %#x)", st);
}

static int openf(const char *name)
{
    int fd = open(name, O_RDWR | O_CREAT, 0644);
    check_sys(fd);
    check_sys(ftruncate(fd, 100));
    return fd;
}

int main(void)
{
    fd_s = (int)syscall(SYS_pidfd_open, getpid(), 0);
    check_sys(fd_s);
    fd_f = openf("f.lck");
    check_sys(flock(fd_f, LOCK_EX));
    fd_p = openf("p.lck");
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    check_sys(fcntl(fd_p, F_SETLK, &fl));
    fd_o = openf("o.lck");
    fl.l_type = F_RDLCK;
    check_sys(fcntl(fd_o, F_OFD_SETLK, &fl));
    checks();
    test_ready();
    test_wait_go();
    checks();
    pass();
}
