/* memfd - a memfd held open and mapped MAP_SHARED stays one object.
 *
 * Creates a 1 MiB memfd, writes a pattern through a MAP_SHARED mapping of
 * it and some bytes through the fd. After restore the contents are intact,
 * and the mapping and the descriptor are still the same file: a write
 * through one is seen through the other, and the size is unchanged.
 * Also a MAP_PRIVATE mapping of the same memfd keeps its private changes.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "testlib.h"

#define SZ (1 << 20)

int main(void)
{
    int fd = memfd_create("ckshim-test", 0);
    check_sys(fd);
    check_sys(ftruncate(fd, SZ));
    unsigned char *p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check(p != MAP_FAILED, "mmap shared");
    test_fill(p, SZ / 2, 11);
    check(pwrite(fd, "through-the-fd", 14, SZ - 100) == 14, "pwrite");
    unsigned char *q = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    check(q != MAP_FAILED, "mmap private");
    memcpy(q, "private", 7);
    test_ready();
    test_wait_go();

    check(test_check_fill(p, SZ / 2, 11) < 0, "shared mapping lost its contents");
    check(memcmp(p + SZ - 100, "through-the-fd", 14) == 0, "fd write not visible in mapping");
    check(memcmp(q, "private", 7) == 0, "private mapping lost its change");
    unsigned char b[16];
    check(pread(fd, b, 7, 0) == 7 && memcmp(b, "private", 7) != 0,
          "private change leaked into the file");
    memcpy(p + 4096, "map->fd", 7);
    check(pread(fd, b, 7, 4096) == 7 && memcmp(b, "map->fd", 7) == 0,
          "mapping and fd are no longer the same file (map write)");
    check(pwrite(fd, "fd->map", 7, 8192) == 7, "pwrite after restore");
    check(memcmp(p + 8192, "fd->map", 7) == 0,
          "mapping and fd are no longer the same file (fd write)");
    struct stat st;
    check_sys(fstat(fd, &st));
    check(st.st_size == SZ, "size is %lld", (long long)st.st_size);
    pass();
    return 0;
}
