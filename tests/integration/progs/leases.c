/* leases - file leases (F_SETLEASE) are taken again.
 *
 * Before READY: "r" opened read-only with a read lease, "w" opened
 * write-only with a write lease, "f" opened read-only without a lease.
 * After restore: F_GETLEASE gives F_RDLCK, F_WRLCK and F_UNLCK.
 */
#include <fcntl.h>

#include "testlib.h"

static int open_new(const char *name, int flags)
{
    int fd = open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    check(fd >= 0, "create %s: %s", name, strerror(errno));
    close(fd);
    fd = open(name, flags);
    check(fd >= 0, "open %s: %s", name, strerror(errno));
    return fd;
}

static void expect(int fd, int want, const char *what)
{
    int l = fcntl(fd, F_GETLEASE);
    check(l == want, "%s: lease %d, expected %d", what, l, want);
}

int main(void)
{
    int r = open_new("r", O_RDONLY);
    int w = open_new("w", O_WRONLY);
    int f = open_new("f", O_RDONLY);
    check(fcntl(r, F_SETLEASE, F_RDLCK) == 0, "read lease: %s", strerror(errno));
    check(fcntl(w, F_SETLEASE, F_WRLCK) == 0, "write lease: %s", strerror(errno));

    test_ready();
    test_wait_go();

    expect(r, F_RDLCK, "r");
    expect(w, F_WRLCK, "w");
    expect(f, F_UNLCK, "f");
    pass();
}
