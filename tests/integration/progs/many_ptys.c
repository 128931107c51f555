/* many_ptys - more pseudo-terminal pairs than a terminal multiplexer's
 * first few windows (a tmux server with 4 windows was refused: the image
 * check took at most 3 terminals).
 *
 * Before READY: 6 pairs, each master with its slave open, the terminal
 * of pair i with a window of (20 + i) rows and (80 + i) columns, pairs
 * with an odd i put in raw mode (no ECHO, no ICANON).
 * After restore: each window size and mode is as set, and bytes written
 * to each master are read from its slave.
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "testlib.h"

#define PAIRS 6

int main(void)
{
    int m[PAIRS], s[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        m[i] = posix_openpt(O_RDWR | O_NOCTTY);
        check_sys(m[i]);
        check_sys(grantpt(m[i]));
        check_sys(unlockpt(m[i]));
        const char *name = ptsname(m[i]);
        check(name != NULL, "ptsname");
        s[i] = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK);
        check_sys(s[i]);
        struct winsize ws = {.ws_row = (unsigned short)(20 + i), .ws_col = (unsigned short)(80 + i)};
        check_sys(ioctl(m[i], TIOCSWINSZ, &ws));
        if (i % 2) {
            struct termios t;
            check_sys(tcgetattr(s[i], &t));
            cfmakeraw(&t);
            check_sys(tcsetattr(s[i], TCSANOW, &t));
        }
    }
    test_ready();
    test_wait_go();
    for (int i = 0; i < PAIRS; i++) {
        struct winsize ws;
        check_sys(ioctl(s[i], TIOCGWINSZ, &ws));
        if (ws.ws_row != 20 + i || ws.ws_col != 80 + i)
            fail("pair %d: window %ux%u, expected %dx%d", i, ws.ws_row, ws.ws_col, 20 + i, 80 + i);
        struct termios t;
        check_sys(tcgetattr(s[i], &t));
        int raw = !(t.c_lflag & (ECHO | ICANON));
        if (raw != (i % 2))
            fail("pair %d: %s mode, expected %s", i, raw ? "raw" : "cooked",
                 i % 2 ? "raw" : "cooked");
        char msg[8], buf[8] = "";
        int n = snprintf(msg, sizeof msg, "p%d\n", i);
        check(write(m[i], msg, (size_t)n) == n, "pair %d: write", i);
        int got = 0;
        for (int k = 0; k < 1000 && got < n; k++) {
            ssize_t r = read(s[i], buf + got, (size_t)(n - got));
            if (r > 0)
                got += (int)r;
            else
                test_sleep_ms(1);
        }
        if (got != n || memcmp(buf, msg, (size_t)n))
            fail("pair %d: the slave read '%.*s', expected '%.*s'", i, got, buf, n - 1, msg);
    }
    pass();
}
