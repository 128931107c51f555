/* unreadable_map - a private mapping of a file the program may no longer
 * read (mode 0111, as an executable run only by exec) comes back.
 *
 * A 2-page file is mapped MAP_PRIVATE read-only, then chmod'ed to 0111.
 * Restore cannot open it any more (unless run as root): its pages are
 * saved whole at checkpoint and come back with their contents.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "testlib.h"

#define SZ (2 * 4096)

int main(void)
{
    static unsigned char buf[SZ];
    int fd = open("exec-only.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    check_sys(fd);
    test_fill(buf, SZ, 5);
    check(write(fd, buf, SZ) == SZ, "write");
    unsigned char *p = mmap(NULL, SZ, PROT_READ, MAP_PRIVATE, fd, 0);
    check(p != MAP_FAILED, "mmap");
    close(fd);
    check_sys(chmod("exec-only.dat", 0111));
    test_ready();
    test_wait_go();

    check(test_check_fill(p, SZ, 5) < 0, "the mapping lost its contents");
    pass();
    return 0;
}
