/* lease_breaking - leases being broken are broken again after restore.
 *
 * Before READY, each file with a lease the program then breaks itself by
 * an open with O_NONBLOCK (EWOULDBLOCK: the break starts, the lease's
 * owner gets SIGIO with si_fd):
 *   "r": read lease, broken by an open for writing (to none);
 *   "w": write lease, broken by an open for reading (down to read);
 *   "x": write lease, broken by an open for writing (to none).
 * After restore: F_GETLEASE gives what the break goes to (F_UNLCK, F_RDLCK,
 * F_UNLCK), no new SIGIO arrived (the program had its notice), the break
 * is still under way (an open for writing of "r" still fails with
 * EWOULDBLOCK), and releasing the lease (F_SETLEASE F_UNLCK) ends it: the
 * open then succeeds.
 */
#include <fcntl.h>
#include <signal.h>

#include "testlib.h"

static volatile int sigio_count, last_fd = -1;

static void on_sigio(int sig, siginfo_t *si, void *ctx)
{
    sigio_count++;
    last_fd = si->si_fd;
}

static int leased(const char *name, int mode, int lease, int breaker)
{
    int fd = open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    check(fd >= 0, "create %s: %s", name, strerror(errno));
    close(fd);
    fd = open(name, mode);
    check(fd >= 0, "open %s: %s", name, strerror(errno));
    check_sys(fcntl(fd, F_SETLEASE, lease));
    check_sys(fcntl(fd, F_SETSIG, SIGIO));
    int before = sigio_count;
    int b = open(name, breaker | O_NONBLOCK);
    check(b < 0 && errno == EWOULDBLOCK, "%s: the breaking open gave %d (%s)", name, b,
          strerror(errno));
    for (int i = 0; i < 100 && sigio_count == before; i++)
        test_sleep_ms(10);
    check(sigio_count == before + 1 && last_fd == fd, "%s: %d SIGIO (fd %d) for the break",
          name, sigio_count - before, last_fd);
    return fd;
}

static void expect(int fd, int want, const char *what)
{
    int l = fcntl(fd, F_GETLEASE);
    check(l == want, "%s: lease %d, expected %d", what, l, want);
}

int main(void)
{
    struct sigaction sa = {.sa_flags = SA_SIGINFO | SA_RESTART};
    sa.sa_sigaction = on_sigio;
    check_sys(sigaction(SIGIO, &sa, NULL));
    int r = leased("r", O_RDONLY, F_RDLCK, O_WRONLY);
    int w = leased("w", O_WRONLY, F_WRLCK, O_RDONLY);
    int x = leased("x", O_WRONLY, F_WRLCK, O_WRONLY);
    expect(r, F_UNLCK, "r before");
    expect(w, F_RDLCK, "w before");
    expect(x, F_UNLCK, "x before");
    int seen = sigio_count;

    test_ready();
    test_wait_go();

    expect(r, F_UNLCK, "r after restore");
    expect(w, F_RDLCK, "w after restore");
    expect(x, F_UNLCK, "x after restore");
    test_sleep_ms(100);
    check(sigio_count == seen, "%d SIGIO arrived after the restore", sigio_count - seen);
    int b = open("r", O_WRONLY | O_NONBLOCK);
    check(b < 0 && errno == EWOULDBLOCK, "r: an open for writing gave %d (%s): the break is "
          "not under way", b, strerror(errno));
    check_sys(fcntl(r, F_SETLEASE, F_UNLCK));
    b = open("r", O_WRONLY | O_NONBLOCK);
    check(b >= 0, "r: open for writing after the release: %s", strerror(errno));
    close(b);
    pass();
}
