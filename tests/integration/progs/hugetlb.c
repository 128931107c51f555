/* hugetlb - anonymous MAP_HUGETLB memory stays huge-page memory.
 *
 * A private and a shared 4 MiB MAP_HUGETLB mapping, a pattern in the
 * first and the last page of each. After restore the patterns are there
 * and both are still hugetlb memory (smaps: VmFlags "ht", the same
 * KernelPageSize), the shared one still shared. And a 2 MiB MFD_HUGETLB
 * memfd mapped shared and private (memfd02-hugetlb): after restore both
 * show its contents, a write through the shared mapping reaches the memfd
 * and shows in the private one (never written), a private write stays
 * private. Without free huge pages
 * (vm.nr_hugepages is 0 on most machines) there is nothing to test: the
 * program says so and passes.
 */
#include <sys/mman.h>

#include "testlib.h"

#define SZ (4UL << 20)
#define PG 4096

/* "ht" in the VmFlags and the KernelPageSize (kB) of the entry at a. */
static void huge_info(const char *a, int *ht, long *kps)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    check(f != NULL, "smaps");
    char line[512];
    int in = 0;
    *ht = 0;
    *kps = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = s == (unsigned long)a;
            continue;
        }
        if (in && !strncmp(line, "KernelPageSize:", 15))
            *kps = atol(line + 15);
        if (in && !strncmp(line, "VmFlags:", 8)) {
            *ht = strstr(line, " ht") != NULL;
            break;
        }
    }
    fclose(f);
}

int main(void)
{
    char *p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
                   -1, 0);
    char *s = p == MAP_FAILED ? MAP_FAILED
                              : mmap(NULL, SZ, PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (p == MAP_FAILED || s == MAP_FAILED) {
        test_msg("no free huge pages here (%s): nothing to test", strerror(errno));
        test_ready();
        test_wait_go();
        pass();
    }
    char *m[2] = {p, s};
    long kps[2];
    for (int i = 0; i < 2; i++) {
        test_fill(m[i], PG, 20 + i);
        test_fill(m[i] + SZ - PG, PG, 30 + i);
        int ht;
        huge_info(m[i], &ht, &kps[i]);
        check(ht && kps[i] > 4, "mapping %d: not hugetlb in smaps", i);
    }
    int mfd = memfd_create("ckshim-huge", MFD_HUGETLB);
    check_sys(mfd);
    check_sys(ftruncate(mfd, 2 << 20));
    char *ms = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    char *mp = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
    check(ms != MAP_FAILED && mp != MAP_FAILED, "mmap the hugetlb memfd: %s", strerror(errno));
    strcpy(ms, "write1");
    test_ready();
    test_wait_go();

    check(!strcmp(ms, "write1") && !strcmp(mp, "write1"), "memfd contents: %.6s %.6s", ms, mp);
    strcpy(ms, "write2");
    char b[8] = "";
    check(pread(mfd, b, 6, 0) == 6 && !strcmp(b, "write2"),
          "a write to the shared mapping did not reach the memfd");
    check(!strcmp(mp, "write2"), "the private mapping does not follow the memfd: %.6s", mp);
    strcpy(mp, "write3");
    check(!strcmp(ms, "write2"), "a private write reached the memfd");
    for (int i = 0; i < 2; i++) {
        check(test_check_fill(m[i], PG, 20 + i) < 0, "mapping %d: first page changed", i);
        check(test_check_fill(m[i] + SZ - PG, PG, 30 + i) < 0, "mapping %d: last page changed", i);
        int ht;
        long k;
        huge_info(m[i], &ht, &k);
        check(ht && k == kps[i], "mapping %d: hugetlb %d, %ld kB pages (%ld before)", i, ht, k,
              kps[i]);
    }
    pass();
    return 0;
}
