/* pty_queued - bytes waiting in pseudo-terminal pairs survive.
 *
 * Before READY, pair A (line mode, echo, the default modes): three lines
 * and an unfinished one ("hello\n" x3, "partial") typed into the master
 * and not read by the slave, and "out1\n" written by the slave and not
 * read by the master (which also has the echo of what was typed). Pair B
 * (raw, no echo): "abc" typed into the master, "xyz" written by the slave,
 * neither read.
 *
 * After restore (or a checkpoint the program survives): A's slave reads
 * the three lines one read each, nothing more until the master finishes
 * the line, then "partial\n"; A's master reads exactly the echo and the
 * output "hello\r\n" x3 "partial" "out1\r\n"; B's slave reads "abc", its
 * master "xyz"; both pairs still work both ways.
 */
#include <fcntl.h>
#include <poll.h>
#include <termios.h>

#include "testlib.h"

static int pair(int *slave)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    check(m >= 0, "posix_openpt: %s", strerror(errno));
    check(grantpt(m) == 0 && unlockpt(m) == 0, "unlockpt: %s", strerror(errno));
    *slave = open(ptsname(m), O_RDWR | O_NOCTTY);
    check(*slave >= 0, "open %s: %s", ptsname(m), strerror(errno));
    return m;
}

static void put(int fd, const char *s)
{
    check(write(fd, s, strlen(s)) == (ssize_t)strlen(s), "write '%s': %s", s, strerror(errno));
}

static int readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* one read: exactly want */
static void expect_read(int fd, const char *want, const char *what)
{
    char buf[256];
    check(readable(fd, 2000), "%s: nothing to read (wanted '%s')", what, want);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    check(n >= 0, "%s: read: %s", what, strerror(errno));
    buf[n] = 0;
    check(!strcmp(buf, want), "%s: read '%s', wanted '%s'", what, buf, want);
}

/* everything that is there (several reads), compared */
static void expect_all(int fd, const char *want, const char *what)
{
    char buf[512];
    size_t got = 0;
    while (got < sizeof buf - 1 && readable(fd, got < strlen(want) ? 2000 : 100)) {
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = 0;
    check(!strcmp(buf, want), "%s: read '%s', wanted '%s'", what, buf, want);
}

int main(void)
{
    int as, bs;
    int am = pair(&as), bm = pair(&bs);
    struct termios t;
    check_sys(tcgetattr(bs, &t));
    cfmakeraw(&t);
    check_sys(tcsetattr(bs, TCSANOW, &t));
    /* one write: the line discipline takes it (and echoes it) in one go,
     * before the output below (poll on the slave waits for that) */
    put(am, "hello\nhello\nhello\npartial");
    readable(as, 1000);
    put(as, "out1\n");
    put(bm, "abc");
    put(bs, "xyz");
    test_msg("A master %d slave %d, B master %d slave %d", am, as, bm, bs);

    test_ready();
    test_wait_go();

    for (int i = 0; i < 3; i++)
        expect_read(as, "hello\n", "A slave, a whole line");
    check(!readable(as, 200), "A slave: the unfinished line is readable before it ends");
    put(am, "\n");
    expect_read(as, "partial\n", "A slave, the finished line");
    expect_all(am, "hello\r\nhello\r\nhello\r\npartialout1\r\n\r\n", "A master");
    expect_all(bs, "abc", "B slave");
    expect_all(bm, "xyz", "B master");
    put(bm, "more");
    expect_all(bs, "more", "B slave, new bytes");
    put(as, "back\n");
    expect_all(am, "back\r\n", "A master, new bytes");
    pass();
}
