/* close_all.c - a program that closes every descriptor but its standard
 * ones once it runs (a daemon's start, closefrom(3)), with the raw system
 * call no wrapper sees: the shim's control socket goes too, while its
 * manager waits on it. The checkpoint must still reach the process (coord
 * calls it: common/ctlproto.h, CK_CALL_COMM), and the restored program
 * must have none of the descriptors it closed back, nor any of ckshim's.
 */
#include <sys/syscall.h>

#include "testlib.h"

int main(void)
{
    int p[2];
    if (pipe(p) < 0 || open("/dev/null", O_RDONLY) < 0 || open(".", O_RDONLY) < 0)
        fail("setup: %s", strerror(errno));
    /* every descriptor above 2, once the shim's manager waits on its
     * socket (its poll keeps the socket listening: a connection coord
     * makes then is lost when the manager finds the number closed): the
     * raw system call (no wrapper sees it) and, for an old kernel, one
     * close() each */
    usleep(200000);
    if (syscall(SYS_close_range, 3U, ~0U, 0) < 0)
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    test_ready();
    test_wait_go();
    /* what it closed stays closed, and nothing of ckshim's is there */
    for (int fd = 3; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            fail("fd %d is open after restore", fd);
    if (write(1, "", 0) < 0)
        fail("stdout: %s", strerror(errno));
    pass();
}
