/* pty_ctty - a session leader whose controlling terminal is a
 * pseudo-terminal it opened itself, holding only the master (zdtm's
 * pty03 does this).
 *
 * Before READY: setsid(), posix_openpt, its slave opened once without
 * O_NOCTTY (it becomes the controlling terminal) and closed again.
 * After restore (the driver restores with --detach, a session of its
 * own): /dev/tty opens, and is the slave of the master the program holds;
 * a line written to the master is read from /dev/tty. A /dev/tty
 * descriptor held across the checkpoint, at a number below the master's
 * (so restore reaches it before the pair exists), reads the next line.
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

#include "testlib.h"

int main(void)
{
    check(setsid() > 0, "setsid: %s", strerror(errno));
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    check_sys(m);
    check_sys(grantpt(m));
    check_sys(unlockpt(m));
    int s = open(ptsname(m), O_RDWR);
    check_sys(s);
    close(s);
    int t = open("/dev/tty", O_RDWR);
    check(t >= 0, "no controlling terminal before the checkpoint: %s", strerror(errno));
    close(t);
    check(dup2(m, 20) == 20, "dup2: %s", strerror(errno));
    close(m);
    m = 20;
    int held = open("/dev/tty", O_RDWR | O_NONBLOCK);
    check(held >= 0 && held < m, "held /dev/tty: fd %d: %s", held, strerror(errno));

    test_ready();
    test_wait_go();

    t = open("/dev/tty", O_RDWR | O_NONBLOCK);
    check(t >= 0, "/dev/tty: %s", strerror(errno));
    unsigned ptn;
    unsigned long long nr = 0;
    char stat[1024];
    int sf = open("/proc/self/stat", O_RDONLY);
    check_sys(sf);
    ssize_t sl = read(sf, stat, sizeof stat - 1);
    close(sf);
    check(sl > 0, "read /proc/self/stat");
    stat[sl] = 0;
    sscanf(strrchr(stat, ')') + 1, " %*c %*d %*d %*d %llu", &nr);
    check(ioctl(m, TIOCGPTN, &ptn) == 0, "not a master: %s", strerror(errno));
    check(major(nr) >= 136 && major(nr) <= 143 && minor(nr) + 256 * (major(nr) - 136) == ptn,
          "the controlling terminal (%u:%u) is not the slave of the program's master (%u)",
          major(nr), minor(nr), ptn);
    check(write(m, "hi\n", 3) == 3, "write master: %s", strerror(errno));
    char buf[8] = "";
    ssize_t n = -1;
    for (int i = 0; i < 1000 && n < 0; i++) {
        n = read(t, buf, sizeof buf);
        if (n < 0)
            test_sleep_ms(1);
    }
    check(n == 3 && !memcmp(buf, "hi\n", 3), "read %zd bytes from /dev/tty", n);
    check(write(m, "yo\n", 3) == 3, "write master: %s", strerror(errno));
    n = -1;
    for (int i = 0; i < 1000 && n < 0; i++) {
        n = read(held, buf, sizeof buf);
        if (n < 0)
            test_sleep_ms(1);
    }
    check(n == 3 && !memcmp(buf, "yo\n", 3), "read %zd bytes (%s) from the held /dev/tty fd",
          n, n < 0 ? strerror(errno) : "");
    pass();
}
