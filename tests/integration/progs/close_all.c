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
    /* then a file of its own at 900, the number the shim's socket had,
     * put there with dup2 (the shim's wrapper: the number is not ours any
     * more, neither to shut down nor to leave out of the image) */
    int f = open("close_all.mark", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (f < 0 || write(f, "mark", 4) != 4 || dup2(f, 900) != 900 || close(f) < 0)
        fail("the file at 900: %s", strerror(errno));
    test_ready();
    test_wait_go();
    /* what it closed stays closed, and nothing of ckshim's is there */
    for (int fd = 3; fd < 4096; fd++)
        if (fd != 900 && fcntl(fd, F_GETFD) >= 0)
            fail("fd %d is open after restore", fd);
    char buf[8] = "";
    if (pread(900, buf, sizeof buf, 0) != 4 || memcmp(buf, "mark", 4))
        fail("fd 900 is not the program's file after restore: %s", strerror(errno));
    if (write(1, "", 0) < 0)
        fail("stdout: %s", strerror(errno));
    pass();
}
