/* many_regions - far more than 8192 memory regions, as the kernel allows
 * (vm.max_map_count is 65530 by default).
 *
 * $CK_REGIONS (default 20000) regions in one reserved area: every other
 * page a private mapping of one file (the same path again and again), the
 * pages between them anonymous; each page holds its own number, written
 * in memory (the file pages are copied on write, the file stays zero).
 * After restore every page still holds its number, the file pages are
 * still mappings of the file (a pwrite shows through a page never written)
 * and the number of regions is as before.
 */
#include <fcntl.h>
#include <sys/mman.h>

#include "testlib.h"

#define PG 4096

static int count_regions(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    check(f != NULL, "open maps");
    int n = 0, c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

int main(void)
{
    const char *e = getenv("CK_REGIONS");
    int n = e ? atoi(e) : 20000;
    int fd = open("many.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    check_sys(fd);
    check_sys(ftruncate(fd, 2 * PG));
    /* n regions of one page, plus one untouched file page at the end */
    char *base = mmap(NULL, (size_t)(n + 1) * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(base != MAP_FAILED, "reserve: %s", strerror(errno));
    for (int i = 0; i <= n; i++) {
        char *a = base + (size_t)i * PG;
        int file = i % 2 == 0 || i == n;
        void *m = file ? mmap(a, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, i == n ? PG : 0)
                       : mmap(a, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                              -1, 0);
        check(m == a, "mmap %d: %s", i, strerror(errno));
        if (i < n)
            *(int *)a = i + 1;
    }
    int before = count_regions();
    check(before > n, "only %d regions", before);
    test_msg("%d regions", before);
    test_ready();
    test_wait_go();

    for (int i = 0; i < n; i++)
        check(*(int *)(base + (size_t)i * PG) == i + 1, "page %d holds %d", i,
              *(int *)(base + (size_t)i * PG));
    check(pwrite(fd, "X", 1, PG) == 1, "pwrite");
    check(base[(size_t)n * PG] == 'X', "the last page is no longer a mapping of the file");
    /* a few regions of the libraries and the shim come back merged with
     * their neighbours (the kernel joins adjacent anonymous mappings that
     * were made apart): the count may drop a little, never by thousands */
    int after = count_regions();
    check(after >= before - 16 && after <= before + 4, "%d regions, %d before", after, before);
    pass();
    return 0;
}
