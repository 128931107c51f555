/* ptys - a pseudo-terminal pair the program opened itself.
 *
 * Before READY: master M (posix_openpt) at fd 40, its slave S opened at
 * fd 30 (below the master) and again at fd 31; the terminal put in raw
 * mode with a 33x111 window.
 * After restore: M is a pseudo-terminal master and S and S2 are its
 * slaves (same index), the terminal is still raw with its window size,
 * bytes written to M are read from S and bytes written to S are read
 * from M.
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>

#include "testlib.h"

static void move(int *fd, int to)
{
    check_sys(dup2(*fd, to));
    close(*fd);
    *fd = to;
}

static unsigned pts_index(int fd, const char *what)
{
    struct stat st;
    check_sys(fstat(fd, &st));
    check(S_ISCHR(st.st_mode) && major(st.st_rdev) >= 136 && major(st.st_rdev) <= 143,
          "%s: not a pseudo-terminal slave", what);
    return minor(st.st_rdev) + 256 * (major(st.st_rdev) - 136);
}

static void pass_bytes(int from, int to, const char *msg, const char *what)
{
    char buf[16] = "";
    size_t n = strlen(msg);
    check(write(from, msg, n) == (ssize_t)n, "%s: write: %s", what, strerror(errno));
    size_t got = 0;
    for (int i = 0; i < 1000 && got < n; i++) {
        ssize_t r = read(to, buf + got, n - got);
        if (r > 0)
            got += (size_t)r;
        else
            test_sleep_ms(1);
    }
    check(got == n && !memcmp(buf, msg, n), "%s: read '%.*s', expected '%s'", what, (int)got,
          buf, msg);
}

int main(void)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    check_sys(m);
    check_sys(grantpt(m));
    check_sys(unlockpt(m));
    const char *name = ptsname(m);
    check(name != NULL, "ptsname");
    int s = open(name, O_RDWR | O_NOCTTY);
    check_sys(s);
    int s2 = open(name, O_RDWR | O_NOCTTY);
    check_sys(s2);
    move(&m, 40);
    move(&s, 30);
    move(&s2, 31);
    struct termios t;
    check_sys(tcgetattr(s, &t));
    cfmakeraw(&t);
    check_sys(tcsetattr(s, TCSANOW, &t));
    struct winsize ws = {.ws_row = 33, .ws_col = 111};
    check_sys(ioctl(s, TIOCSWINSZ, &ws));

    test_ready();
    test_wait_go();

    unsigned ptn;
    check(ioctl(m, TIOCGPTN, &ptn) == 0, "M: not a pseudo-terminal master: %s", strerror(errno));
    check(pts_index(s, "S") == ptn && pts_index(s2, "S2") == ptn,
          "S and S2 are not slaves of M (index %u)", ptn);
    check_sys(tcgetattr(s, &t));
    check(!(t.c_lflag & (ECHO | ICANON)) && !(t.c_oflag & OPOST), "the terminal is no longer raw");
    memset(&ws, 0, sizeof ws);
    check_sys(ioctl(s, TIOCGWINSZ, &ws));
    check(ws.ws_row == 33 && ws.ws_col == 111, "window %ux%u, expected 33x111", ws.ws_row,
          ws.ws_col);
    fcntl(s, F_SETFL, O_NONBLOCK);
    fcntl(m, F_SETFL, O_NONBLOCK);
    pass_bytes(m, s, "abc", "M to S");
    pass_bytes(s, m, "xyz", "S to M");
    pass_bytes(m, s2, "def", "M to S2");
    pass();
}
