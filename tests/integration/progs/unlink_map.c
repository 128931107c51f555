/* unlink_map - private mappings of a deleted file the program holds open
 * stay mappings of that file.
 *
 * A 3-page file is opened read-write, mapped MAP_PRIVATE twice (page 0
 * read-only; pages 1-2 read-write, page 2 then changed in memory) and
 * deleted. After restore a pwrite to pages 0 and 1 shows through both
 * mappings (their pages were never written), the changed page keeps its
 * private contents and the file does not see them.
 */
#include <fcntl.h>
#include <sys/mman.h>

#include "testlib.h"

#define PG 4096

int main(void)
{
    int fd = open("gone.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    check_sys(fd);
    check_sys(ftruncate(fd, 3 * PG));
    char *ro = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);
    char *rw = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, PG);
    check(ro != MAP_FAILED && rw != MAP_FAILED, "mmap");
    memcpy(rw + PG, "private", 7);
    check_sys(unlink("gone.dat"));
    test_ready();
    test_wait_go();

    check(pwrite(fd, "a", 1, 0) == 1 && pwrite(fd, "b", 1, PG) == 1, "pwrite");
    check(ro[0] == 'a', "the read-only mapping no longer follows the file");
    check(rw[0] == 'b', "the read-write mapping no longer follows the file");
    check(!memcmp(rw + PG, "private", 7), "the changed page lost its contents");
    char b[8] = "";
    check(pread(fd, b, 7, 2 * PG) == 7 && b[0] == 0, "the private change reached the file");
    pass();
    return 0;
}
