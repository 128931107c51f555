/* files - open files, offsets, fd numbers and per-process fs state survive.
 *
 * Before READY (all relative to the test's temporary cwd):
 *   fd A: a.dat, O_RDWR, 4 KiB pattern, offset 1234; fd C = dup(A) shares it
 *   fd B: b.log, O_WRONLY|O_APPEND, holding "line1\n"
 *   fd 1000: c.dat, O_RDONLY, FD_CLOEXEC, moved there with dup3, offset 100
 *   fd D: d.tmp, O_RDWR, 100 KiB pattern, offset 5000, then unlinked
 *   a pipe (both ends open) holding 3000 unread bytes
 *   cwd changed to sub/deeper, umask 027, RLIMIT_NOFILE soft 1777 (kept
 *   above fd 1000), RLIMIT_CORE soft 0.
 * After restore: flags, offsets and contents are as they were; a write on A
 * moves C's offset too; O_APPEND still appends; D still reads its pattern,
 * is writable, and d.tmp did not reappear; the pipe gives back exactly its
 * 3000 bytes; cwd, umask and rlimits are unchanged.
 */
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "testlib.h"

#define DSIZE (100 * 1024)

static int fa, fb, fc, fd_d, pfd[2];
static char cwd0[4096];
static struct rlimit nofile0, core0;

static int make_file(const char *name, int flags, size_t len, uint64_t seed)
{
    static unsigned char buf[DSIZE];
    int fd = open(name, flags | O_CREAT | O_TRUNC, 0644);
    check(fd >= 0, "open %s: %s", name, strerror(errno));
    test_fill(buf, len, seed);
    check(write(fd, buf, len) == (ssize_t)len, "write %s", name);
    return fd;
}

static void check_offset(int fd, off_t want, const char *what)
{
    off_t pos = lseek(fd, 0, SEEK_CUR);
    check(pos == want, "%s: offset %lld, expected %lld", what, (long long)pos,
          (long long)want);
}

static void check_accmode(int fd, int want, const char *what)
{
    int fl = fcntl(fd, F_GETFL);
    check(fl != -1, "%s: fcntl(F_GETFL): %s", what, strerror(errno));
    check((fl & O_ACCMODE) == want, "%s: access mode %d, expected %d", what,
          fl & O_ACCMODE, want);
}

static void build(void)
{
    fa = make_file("a.dat", O_RDWR, 4096, 1);
    check_sys(lseek(fa, 1234, SEEK_SET));
    check_sys(fc = dup(fa));

    fb = make_file("b.log", O_WRONLY | O_APPEND, 0, 0);
    check(write(fb, "line1\n", 6) == 6, "write b.log");

    int t = make_file("c.dat", O_WRONLY, 8192, 3);
    close(t);
    t = open("c.dat", O_RDONLY);
    check_sys(t);
    check_sys(dup3(t, 1000, O_CLOEXEC));
    close(t);
    check_sys(lseek(1000, 100, SEEK_SET));

    fd_d = make_file("d.tmp", O_RDWR, DSIZE, 4);
    check_sys(lseek(fd_d, 5000, SEEK_SET));
    check_sys(unlink("d.tmp"));

    unsigned char buf[3000];
    check_sys(pipe(pfd));
    test_fill(buf, sizeof(buf), 5);
    check(write(pfd[1], buf, sizeof(buf)) == sizeof(buf), "write pipe");

    check_sys(mkdir("sub", 0755));
    check_sys(mkdir("sub/deeper", 0755));
    check_sys(chdir("sub/deeper"));
    t = open("marker", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    check(t >= 0 && write(t, "here\n", 5) == 5, "write marker");
    close(t);
    check(getcwd(cwd0, sizeof(cwd0)), "getcwd: %s", strerror(errno));

    umask(027);
    check_sys(getrlimit(RLIMIT_NOFILE, &nofile0));
    nofile0.rlim_cur = nofile0.rlim_max >= 1777 ? 1777 : nofile0.rlim_max;
    check_sys(setrlimit(RLIMIT_NOFILE, &nofile0));
    check_sys(getrlimit(RLIMIT_CORE, &core0));
    core0.rlim_cur = 0;
    check_sys(setrlimit(RLIMIT_CORE, &core0));
}

static void verify(void)
{
    unsigned char buf[DSIZE], want[DSIZE];
    char cwd[4096];
    struct stat st;

    /* A and its dup C: one open file description */
    check_accmode(fa, O_RDWR, "fd A");
    check_offset(fa, 1234, "fd A");
    check_offset(fc, 1234, "fd C (dup of A)");
    check(write(fa, "0123456789", 10) == 10, "write on fd A: %s", strerror(errno));
    check_offset(fc, 1244, "fd C after writing 10 bytes on A");
    check(pread(fc, buf, 4096, 0) == 4096, "pread fd C");
    test_fill(want, 4096, 1);
    memcpy(want + 1234, "0123456789", 10);
    check(memcmp(buf, want, 4096) == 0, "a.dat content wrong after restore");
    int t = open("../../a.dat", O_RDONLY);
    check(t >= 0 && read(t, buf, 4096) == 4096 && memcmp(buf, want, 4096) == 0,
          "fd A is not a.dat any more (the file does not have the write)");
    close(t);

    /* B: O_APPEND */
    check_accmode(fb, O_WRONLY, "fd B");
    check(fcntl(fb, F_GETFL) & O_APPEND, "fd B lost O_APPEND");
    check_sys(lseek(fb, 0, SEEK_SET));
    check(write(fb, "line2\n", 6) == 6, "write on fd B: %s", strerror(errno));
    t = open("../../b.log", O_RDONLY);
    ssize_t n = t >= 0 ? read(t, buf, sizeof(buf)) : -1;
    check(n == 12 && memcmp(buf, "line1\nline2\n", 12) == 0,
          "b.log holds %zd bytes, expected \"line1\\nline2\\n\"", n);
    close(t);

    /* fd 1000 */
    int fdfl = fcntl(1000, F_GETFD);
    check(fdfl != -1, "fd 1000 is gone: %s", strerror(errno));
    check(fdfl & FD_CLOEXEC, "fd 1000 lost FD_CLOEXEC");
    check_accmode(1000, O_RDONLY, "fd 1000");
    check_offset(1000, 100, "fd 1000");
    test_fill(want, 8192, 3);
    check(read(1000, buf, 100) == 100 && memcmp(buf, want + 100, 100) == 0,
          "fd 1000 reads wrong data");

    /* D: deleted while open */
    check_accmode(fd_d, O_RDWR, "deleted fd");
    check_offset(fd_d, 5000, "deleted fd");
    check_sys(fstat(fd_d, &st));
    check(st.st_size == DSIZE, "deleted file has size %lld", (long long)st.st_size);
    check(pread(fd_d, buf, DSIZE, 0) == DSIZE, "pread deleted fd: %s", strerror(errno));
    long bad = test_check_fill(buf, DSIZE, 4);
    check(bad < 0, "deleted file differs at byte %ld", bad);
    check(access("../../d.tmp", F_OK) == -1, "d.tmp reappeared in the directory");
    check(pwrite(fd_d, "abcd", 4, 0) == 4 && pread(fd_d, buf, 4, 0) == 4 &&
              memcmp(buf, "abcd", 4) == 0,
          "deleted fd not writable");

    /* pipe with unread data */
    check_sys(fcntl(pfd[0], F_SETFL, O_NONBLOCK));
    n = read(pfd[0], buf, sizeof(buf));
    check(n == 3000, "pipe gave %zd bytes, expected 3000", n);
    bad = test_check_fill(buf, 3000, 5);
    check(bad < 0, "pipe data differs at byte %ld", bad);
    errno = 0;
    check(read(pfd[0], buf, 1) == -1 && errno == EAGAIN, "pipe has extra data");
    check(write(pfd[1], "ping", 4) == 4 && read(pfd[0], buf, 4) == 4 &&
              memcmp(buf, "ping", 4) == 0,
          "pipe does not work after restore");

    /* cwd, umask, rlimits */
    check(getcwd(cwd, sizeof(cwd)), "getcwd: %s", strerror(errno));
    check(strcmp(cwd, cwd0) == 0, "cwd is %s, expected %s", cwd, cwd0);
    t = open("marker", O_RDONLY);
    check(t >= 0 && read(t, buf, 5) == 5 && memcmp(buf, "here\n", 5) == 0,
          "relative open of marker in cwd failed");
    close(t);
    mode_t old = umask(0);
    umask(old);
    check(old == 027, "umask is %03o, expected 027", (unsigned)old);
    t = open("newfile", O_WRONLY | O_CREAT | O_EXCL, 0666);
    check(t >= 0, "create newfile: %s", strerror(errno));
    check_sys(fstat(t, &st));
    check((st.st_mode & 0777) == 0640, "new file mode %03o, expected 640",
          (unsigned)(st.st_mode & 0777));
    close(t);

    struct rlimit rl;
    check_sys(getrlimit(RLIMIT_NOFILE, &rl));
    check(rl.rlim_cur == nofile0.rlim_cur && rl.rlim_max == nofile0.rlim_max,
          "RLIMIT_NOFILE is %llu/%llu, expected %llu/%llu",
          (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
          (unsigned long long)nofile0.rlim_cur, (unsigned long long)nofile0.rlim_max);
    check_sys(getrlimit(RLIMIT_CORE, &rl));
    check(rl.rlim_cur == 0 && rl.rlim_max == core0.rlim_max,
          "RLIMIT_CORE is %llu/%llu, expected 0/%llu", (unsigned long long)rl.rlim_cur,
          (unsigned long long)rl.rlim_max, (unsigned long long)core0.rlim_max);
}

int main(void)
{
    build();
    test_ready();
    while (!test_go_reached()) {
        char b[16];
        check(pread(fa, b, sizeof(b), 0) == sizeof(b), "pread while waiting");
        usleep(20000);
    }
    verify();
    pass();
}
