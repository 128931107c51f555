/* pipes - pipes held in less usual ways come back open, with their data,
 * flags and buffer size.
 *
 * Before READY:
 *   fd R1: an anonymous pipe held only through one O_RDWR descriptor, as
 *          bash's `exec 9<> <(:)` makes it (reopened via /proc/self/fd,
 *          both original ends closed), empty;
 *   fd R2: the same, holding "hello", buffer size 256 KiB;
 *   fds N0/N1: a pipe whose both ends are held, read end O_NONBLOCK, write
 *          end blocking, buffer size 128 KiB, holding 100000 bytes (more
 *          than the default 64 KiB buffer);
 *   fd W:  a pipe whose write end comes first in fd order (dup2'ed below
 *          its read end), holding "low";
 *   fd F:  a FIFO (named pipe) opened O_RDWR, holding "fifo".
 * After restore: R1 is open and empty (a read gives EAGAIN, not end of
 * file, and a write can be read back), R2 gives "hello" then EAGAIN and
 * keeps its size; N0/N1 keep their flags, size and 100000 bytes; W's read
 * end gives "low"; F gives "fifo" then EAGAIN and works.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>

#include "testlib.h"

static int r1, r2, n0, n1, wl, wh, ff;
#define BIG 100000

/* A pipe held only through one O_RDWR descriptor. */
static int rdwr_pipe(void)
{
    int p[2];
    char path[64];
    check_sys(pipe(p));
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    int fd = open(path, O_RDWR);
    check_sys(fd);
    close(p[0]);
    close(p[1]);
    return fd;
}

static void expect_empty(int fd, const char *what)
{
    char c;
    int fl = fcntl(fd, F_GETFL);
    check_sys(fcntl(fd, F_SETFL, fl | O_NONBLOCK));
    errno = 0;
    ssize_t n = read(fd, &c, 1);
    check(n == -1 && errno == EAGAIN, "%s: read gave %zd (%s), expected EAGAIN (open, empty)",
          what, n, n == 0 ? "end of file" : strerror(errno));
    check_sys(fcntl(fd, F_SETFL, fl));
}

static void expect_data(int fd, const char *want, const char *what)
{
    char buf[64] = "";
    size_t len = strlen(want);
    int fl = fcntl(fd, F_GETFL);
    check_sys(fcntl(fd, F_SETFL, fl | O_NONBLOCK));
    ssize_t n = read(fd, buf, len);
    check(n == (ssize_t)len && !memcmp(buf, want, len), "%s: read %zd bytes '%.*s', expected '%s'",
          what, n, n > 0 ? (int)n : 0, buf, want);
    check_sys(fcntl(fd, F_SETFL, fl));
    expect_empty(fd, what);
}

static void expect_works(int fd, const char *what)
{
    check(write(fd, "ping", 4) == 4, "%s: write: %s", what, strerror(errno));
    expect_data(fd, "ping", what);
}

int main(void)
{
    r1 = rdwr_pipe();
    r2 = rdwr_pipe();
    check(fcntl(r2, F_SETPIPE_SZ, 256 << 10) >= 256 << 10, "F_SETPIPE_SZ 256K: %s",
          strerror(errno));
    check(write(r2, "hello", 5) == 5, "write r2");

    int p[2];
    check_sys(pipe(p));
    n0 = p[0];
    n1 = p[1];
    check(fcntl(n1, F_SETPIPE_SZ, 128 << 10) >= 128 << 10, "F_SETPIPE_SZ 128K");
    static unsigned char big[BIG], got[BIG];
    test_fill(big, BIG, 9);
    check(write(n1, big, BIG) == BIG, "write 100000 bytes");
    check_sys(fcntl(n0, F_SETFL, O_NONBLOCK));

    /* write end below the read end */
    check_sys(pipe(p));
    wl = 40;
    wh = 41;
    check_sys(dup2(p[1], wl));
    check_sys(dup2(p[0], wh));
    close(p[0]);
    close(p[1]);
    check(write(wl, "low", 3) == 3, "write wl");

    check_sys(mkfifo("fifo", 0600));
    ff = open("fifo", O_RDWR);
    check_sys(ff);
    check(write(ff, "fifo", 4) == 4, "write fifo");

    test_ready();
    test_wait_go();

    expect_empty(r1, "O_RDWR pipe (empty)");
    struct pollfd pf = {.fd = r1, .events = POLLIN};
    check(poll(&pf, 1, 0) == 0, "O_RDWR pipe polls %#x, expected nothing", pf.revents);
    expect_works(r1, "O_RDWR pipe (empty)");
    check(fcntl(r1, F_GETFL) >= 0 && (fcntl(r1, F_GETFL) & O_ACCMODE) == O_RDWR,
          "O_RDWR pipe is not O_RDWR any more");

    expect_data(r2, "hello", "O_RDWR pipe with data");
    int sz = fcntl(r2, F_GETPIPE_SZ);
    check(sz == 256 << 10, "O_RDWR pipe buffer is %d bytes, expected %d", sz, 256 << 10);

    check(fcntl(n0, F_GETFL) & O_NONBLOCK, "read end lost O_NONBLOCK");
    check(!(fcntl(n1, F_GETFL) & O_NONBLOCK), "write end became O_NONBLOCK");
    sz = fcntl(n1, F_GETPIPE_SZ);
    check(sz == 128 << 10, "pipe buffer is %d bytes, expected %d", sz, 128 << 10);
    size_t have = 0;
    while (have < BIG) {
        ssize_t n = read(n0, got + have, BIG - have);
        check(n > 0, "pipe gave %zu of %d bytes (%s)", have, BIG, n < 0 ? strerror(errno) : "EOF");
        have += (size_t)n;
    }
    long bad = test_check_fill(got, BIG, 9);
    check(bad < 0, "pipe data differs at byte %ld", bad);
    expect_empty(n0, "pipe read end");
    check(write(n1, "ping", 4) == 4, "write end: %s", strerror(errno));
    expect_data(n0, "ping", "pipe after restore");

    expect_data(wh, "low", "pipe whose write end comes first");

    expect_data(ff, "fifo", "FIFO opened O_RDWR");
    expect_works(ff, "FIFO opened O_RDWR");
    pass();
}
