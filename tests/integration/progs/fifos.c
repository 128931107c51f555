/* fifos - named FIFOs held in ways whose bytes or name would be lost.
 *
 * Before READY (in the working directory):
 *   "ro":    a FIFO whose writer is closed, held only through a read end,
 *            with 20000 bytes waiting (the bytes die with the last
 *            descriptor: restore must put them back);
 *   "ghost": a FIFO held read-only (O_NONBLOCK), 300 bytes waiting, then
 *            removed from the directory and its writer closed;
 *   "wo":    a FIFO held through a write end and a non-blocking read end,
 *            removed, empty;
 *   "rw":    a FIFO held through one O_RDWR descriptor, "rw-data" waiting,
 *            removed.
 * After restore: each gives its bytes back ("ro" and "ghost" then end of
 * file: no writer is left; "rw" then EAGAIN), "wo" carries a byte from
 * its write end to its read end, "ro" is still a FIFO at its name, the
 * removed ones are still FIFOs but not in the directory, and restore left
 * nothing behind in it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "testlib.h"

#define RO_LEN 20000
#define GHOST_LEN 300

static int open_fifo(const char *name, int flags)
{
    int fd = open(name, flags);
    check(fd >= 0, "open %s: %s", name, strerror(errno));
    return fd;
}

static void make_fifo(const char *name)
{
    check(mkfifo(name, 0640) == 0, "mkfifo %s: %s", name, strerror(errno));
}

static void put(int fd, const void *buf, size_t len)
{
    check(write(fd, buf, len) == (ssize_t)len, "write %zu bytes: %s", len, strerror(errno));
}

/* Read exactly len bytes (non-blocking), then expect end of file (eof) or
 * EAGAIN. */
static void expect(int fd, const char *what, size_t len, uint64_t seed, const char *text, int eof)
{
    static char buf[RO_LEN + 16];
    check_sys(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK));
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        check(n > 0, "%s: read after %zu of %zu bytes gave %zd (%s)", what, got, len, n,
              n == 0 ? "end of file" : strerror(errno));
        got += (size_t)n;
    }
    if (text)
        check(!memcmp(buf, text, len), "%s: wrong bytes '%.*s'", what, (int)len, buf);
    else
        check(test_check_fill(buf, len, seed) < 0, "%s: bytes differ at %ld", what,
              test_check_fill(buf, len, seed));
    errno = 0;
    ssize_t n = read(fd, buf, 1);
    if (eof)
        check(n == 0, "%s: expected end of file, read gave %zd (%s)", what, n, strerror(errno));
    else
        check(n < 0 && errno == EAGAIN, "%s: expected EAGAIN, read gave %zd", what, n);
}

static void expect_fifo(int fd, const char *what)
{
    struct stat st;
    check_sys(fstat(fd, &st));
    check(S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0640, "%s: mode %o", what,
          (unsigned)st.st_mode);
}

int main(void)
{
    static char data[RO_LEN];
    make_fifo("ro");
    int w = open_fifo("ro", O_RDWR);
    int ro = open_fifo("ro", O_RDONLY);
    test_fill(data, RO_LEN, 1);
    put(w, data, RO_LEN);
    close(w);

    make_fifo("ghost");
    w = open_fifo("ghost", O_RDWR);
    int ghost = open_fifo("ghost", O_RDONLY | O_NONBLOCK);
    test_fill(data, GHOST_LEN, 2);
    put(w, data, GHOST_LEN);
    check_sys(unlink("ghost"));
    close(w);

    make_fifo("wo");
    int wo_r = open_fifo("wo", O_RDONLY | O_NONBLOCK);
    int wo_w = open_fifo("wo", O_WRONLY);
    check_sys(unlink("wo"));

    make_fifo("rw");
    int rw = open_fifo("rw", O_RDWR);
    put(rw, "rw-data", 7);
    check_sys(unlink("rw"));

    test_ready();
    test_wait_go();

    expect_fifo(ro, "ro");
    expect(ro, "ro", RO_LEN, 1, NULL, 1);
    expect_fifo(ghost, "ghost");
    expect(ghost, "ghost", GHOST_LEN, 2, NULL, 1);
    expect_fifo(wo_r, "wo");
    put(wo_w, "x", 1);
    expect(wo_r, "wo", 1, 0, "x", 0);
    expect_fifo(rw, "rw");
    expect(rw, "rw", 7, 0, "rw-data", 0);

    struct stat st;
    check(stat("ro", &st) == 0 && S_ISFIFO(st.st_mode), "ro is no longer a FIFO at its name");
    DIR *d = opendir(".");
    check(d != NULL, "opendir: %s", strerror(errno));
    for (struct dirent *e; (e = readdir(d));)
        check(strcmp(e->d_name, "ghost") && strcmp(e->d_name, "wo") && strcmp(e->d_name, "rw") &&
                  strncmp(e->d_name, ".ck", 3),
              "%s is in the directory after restore", e->d_name);
    closedir(d);
    pass();
}
