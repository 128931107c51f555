/* fd_high - a descriptor far above the default limit survives.
 *
 * Before READY: RLIMIT_NOFILE soft raised to 6000 (hard limit allowing),
 * f.dat opened at fd 5000 (dup2) at offset 77, and a pipe moved to fds
 * 5500/5501 holding "x". The restoring coord starts with its own (lower)
 * soft limit, so it must raise it to put fd 5000 back (it failed with
 * "cannot move descriptors"), and the program must get its own limits back.
 * After restore: fd 5000 is f.dat at offset 77, the pipe gives "x", and
 * RLIMIT_NOFILE is exactly what it was.
 */
#include <fcntl.h>
#include <sys/resource.h>

#include "testlib.h"

#define HIGH 5000

int main(void)
{
    struct rlimit rl, now;
    check_sys(getrlimit(RLIMIT_NOFILE, &rl));
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 6000)
        fail("the hard RLIMIT_NOFILE (%llu) is below 6000; cannot test",
             (unsigned long long)rl.rlim_max);
    rl.rlim_cur = 6000;
    check_sys(setrlimit(RLIMIT_NOFILE, &rl));
    int fd = open("f.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    check_sys(fd);
    static const char data[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                               "0123456789abcdefghijklmnopqrstuvwxyz0123456789";
    check(write(fd, data, 82) == 82, "write f.dat");
    check_sys(lseek(fd, 77, SEEK_SET));
    check_sys(dup2(fd, HIGH));
    close(fd);
    int p[2];
    check_sys(pipe(p));
    check_sys(dup2(p[0], 5500));
    check_sys(dup2(p[1], 5501));
    close(p[0]);
    close(p[1]);
    check(write(5501, "x", 1) == 1, "write pipe");
    test_ready();
    test_wait_go();

    off_t pos = lseek(HIGH, 0, SEEK_CUR);
    check(pos == 77, "fd %d: offset %lld, expected 77", HIGH, (long long)pos);
    char c[4] = "";
    check(read(HIGH, c, 2) == 2 && c[0] == '5' && c[1] == '6', "fd %d: read '%.2s'", HIGH, c);
    check(read(5500, c, 1) == 1 && c[0] == 'x', "pipe at 5500/5501 lost its byte");
    check_sys(getrlimit(RLIMIT_NOFILE, &now));
    check(now.rlim_cur == rl.rlim_cur && now.rlim_max == rl.rlim_max,
          "RLIMIT_NOFILE %llu/%llu, expected %llu/%llu", (unsigned long long)now.rlim_cur,
          (unsigned long long)now.rlim_max, (unsigned long long)rl.rlim_cur,
          (unsigned long long)rl.rlim_max);
    pass();
}
