/* pty_packet - a pseudo-terminal master in packet mode (TIOCPKT), as GNU
 * screen keeps its windows' masters.
 *
 * Before READY: a pair, the master put in packet mode, and "hello" (raw
 * mode, so as written) written by the slave, left unread in the master.
 * After restore: the master is still in packet mode (TIOCGPKT), its
 * first read gives the data status byte (TIOCPKT_DATA, 0) and "hello",
 * and bytes the slave writes then come the same way. Restored without
 * the mode, screen's windows lost the first byte of every read.
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "testlib.h"

static void expect_packet(int m, const char *want, const char *when)
{
    char buf[64];
    size_t n = strlen(want);
    ssize_t r = -1;
    for (int i = 0; i < 1000; i++) {
        r = read(m, buf, sizeof buf);
        if (r > 0)
            break;
        test_sleep_ms(1);
    }
    if (r != (ssize_t)n + 1 || buf[0] != TIOCPKT_DATA || memcmp(buf + 1, want, n))
        fail("%s: read %zd bytes, first 0x%02x, expected the data byte and '%s'", when, r,
             r > 0 ? (unsigned char)buf[0] : 0, want);
}

int main(void)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
    check_sys(m);
    check_sys(grantpt(m));
    check_sys(unlockpt(m));
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    check_sys(s);
    struct termios t;
    check_sys(tcgetattr(s, &t));
    cfmakeraw(&t);
    check_sys(tcsetattr(s, TCSANOW, &t));
    int one = 1;
    check_sys(ioctl(m, TIOCPKT, &one));
    check(write(s, "hello", 5) == 5, "write");
    test_ready();
    test_wait_go();
    int pkt = 0;
    check_sys(ioctl(m, TIOCGPKT, &pkt));
    if (!pkt)
        fail("the master is not in packet mode");
    expect_packet(m, "hello", "the queued bytes");
    check(write(s, "again", 5) == 5, "write");
    expect_packet(m, "again", "new bytes");
    pass();
}
