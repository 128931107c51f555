/* proc_self - descriptors on the process's own /proc files and
 * namespaces name the restored process.
 *
 * Before READY: A = /proc/self/stat, B = /proc/self/ns/uts (a namespace
 * descriptor), C = the directory /proc/self, each opened.
 * After restore: A reads the stat line of the running process (its pid
 * field is the one /proc/self names now), B is the namespace
 * /proc/self/ns/uts names now, C is the /proc directory of the running
 * process.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "testlib.h"

static void fdlink(int fd, char *buf, size_t len)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, buf, len - 1);
    check(n > 0, "readlink %s: %s", p, strerror(errno));
    buf[n] = 0;
}

int main(void)
{
    int a = open("/proc/self/stat", O_RDONLY);
    check_sys(a);
    int b = open("/proc/self/ns/uts", O_RDONLY);
    check_sys(b);
    int c = open("/proc/self", O_RDONLY | O_DIRECTORY);
    check_sys(c);

    test_ready();
    test_wait_go();

    char self[64], buf[512], want[256], got[256];
    ssize_t n = readlink("/proc/self", self, sizeof self - 1);
    check(n > 0, "readlink /proc/self: %s", strerror(errno));
    self[n] = 0;

    n = pread(a, buf, sizeof buf - 1, 0);
    check(n > 0, "A: read: %s", strerror(errno));
    buf[n] = 0;
    check(atoi(buf) == atoi(self), "A: stat of pid %d, the process is %s", atoi(buf), self);

    fdlink(b, got, sizeof got);
    n = readlink("/proc/self/ns/uts", want, sizeof want - 1);
    check(n > 0, "readlink ns/uts: %s", strerror(errno));
    want[n] = 0;
    check(!strcmp(got, want), "B: %s, the process's namespace is %s", got, want);

    fdlink(c, got, sizeof got);
    snprintf(want, sizeof want, "/proc/%s", self);
    check(!strcmp(got, want), "C: %s, expected %s", got, want);
    pass();
}
