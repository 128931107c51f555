/* mmap_anon - private anonymous mappings keep contents, size and protection.
 *
 * Maps private anonymous regions of 1 page, 16 pages, 1 MiB and 3 MiB,
 * fully patterned; a 256 MiB region of which only every 7th page is written
 * (the others must still read as zero); a 3-page region whose middle page
 * is PROT_NONE (a guard page) and a patterned region made read-only. After
 * restore: contents are intact, /proc/self/maps shows the guard page as
 * ---p and the read-only region as r--p at the same addresses, and
 * mprotect/munmap/mmap on them still work.
 */
#include <sys/mman.h>

#include "testlib.h"

#define PG 4096UL

static const size_t sizes[] = { PG, 16 * PG, 1 << 20, 3 << 20 };
#define NSZ (sizeof(sizes) / sizeof(sizes[0]))
static unsigned char *full[NSZ];

#define BIG (256UL << 20)
static unsigned char *big;

static unsigned char *guard;  /* 3 pages: rw- / --- / rw- */
static unsigned char *ro;     /* 8 pages, r-- */

static void *map(size_t len, int prot)
{
    void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(p != MAP_FAILED, "mmap %zu: %s", len, strerror(errno));
    return p;
}

/* The permission string of the /proc/self/maps line covering [start,end),
 * which must be exactly one line. Returns 0 and perms in out[5], or -1. */
static int maps_perms(void *start, void *end, char out[5])
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = -1;

    check(f, "open /proc/self/maps: %s", strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        unsigned long s, e;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) != 3)
            continue;
        if (s <= (unsigned long)start && (unsigned long)end <= e) {
            memcpy(out, perms, 5);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

static void check_perms(void *start, size_t len, const char *want, const char *what)
{
    char perms[5] = "";
    check(maps_perms(start, (char *)start + len, perms) == 0,
          "%s %p: not in /proc/self/maps", what, start);
    check(strcmp(perms, want) == 0, "%s %p: perms %s, expected %s", what, start,
          perms, want);
}

static void build(void)
{
    for (size_t i = 0; i < NSZ; i++) {
        full[i] = map(sizes[i], PROT_READ | PROT_WRITE);
        test_fill(full[i], sizes[i], 100 + i);
    }

    big = map(BIG, PROT_READ | PROT_WRITE);
    for (size_t off = 0; off < BIG; off += 7 * PG)
        test_fill(big + off, PG, off);

    guard = map(3 * PG, PROT_READ | PROT_WRITE);
    test_fill(guard, PG, 7);
    test_fill(guard + 2 * PG, PG, 9);
    check_sys(mprotect(guard + PG, PG, PROT_NONE));

    ro = map(8 * PG, PROT_READ | PROT_WRITE);
    test_fill(ro, 8 * PG, 11);
    check_sys(mprotect(ro, 8 * PG, PROT_READ));
}

static void verify(void)
{
    for (size_t i = 0; i < NSZ; i++) {
        long bad = test_check_fill(full[i], sizes[i], 100 + i);
        check(bad < 0, "mapping of %zu bytes differs at %ld", sizes[i], bad);
        check_perms(full[i], sizes[i], "rw-p", "patterned mapping");
    }

    for (size_t off = 0; off < BIG; off += PG) {
        long bad;
        if ((off / PG) % 7 == 0)
            bad = test_check_fill(big + off, PG, off);
        else
            bad = test_check_zero(big + off, PG);
        check(bad < 0, "big mapping differs at %zu (%s page)", off + bad,
              (off / PG) % 7 == 0 ? "written" : "untouched");
    }
    check_perms(big, BIG, "rw-p", "big mapping");

    check(test_check_fill(guard, PG, 7) < 0, "page before the guard changed");
    check(test_check_fill(guard + 2 * PG, PG, 9) < 0, "page after the guard changed");
    check_perms(guard, PG, "rw-p", "page before guard");
    check_perms(guard + PG, PG, "---p", "guard page");
    check_perms(guard + 2 * PG, PG, "rw-p", "page after guard");

    check(test_check_fill(ro, 8 * PG, 11) < 0, "read-only mapping changed");
    check_perms(ro, 8 * PG, "r--p", "read-only mapping");

    /* the guard is still a real mapping: make it writable, it reads zero */
    check_sys(mprotect(guard + PG, PG, PROT_READ | PROT_WRITE));
    check(test_check_zero(guard + PG, PG) < 0, "guard page was not zero");
    guard[PG] = 1;

    /* the address space is still usable */
    check_sys(munmap(full[1], sizes[1]));
    unsigned char *n = map(64 << 20, PROT_READ | PROT_WRITE);
    memset(n, 0x5a, 64 << 20);
    check(n[(64 << 20) - 1] == 0x5a, "new mapping broken");
    check_sys(munmap(n, 64 << 20));
}

int main(void)
{
    build();
    test_ready();
    test_wait_go();
    verify();
    pass();
}
