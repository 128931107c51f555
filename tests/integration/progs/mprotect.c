/* mprotect - protections changed after mapping, split mappings and
 * mremap'ed mappings survive.
 *
 * Before READY (anonymous private memory, each region with its own
 * pattern):
 *   A: 4 pages rw, then mprotect to r;
 *   B: 2 pages rw, then mprotect to none;
 *   C: 8 pages rw split by mprotect into r r | rw rw | none | r r r;
 *   D: 4 pages grown to 16 with mremap(MREMAP_MAYMOVE) while a guard page
 *      blocks growing in place (so it moves); the new 12 pages are filled;
 *   E: 8 pages moved with mremap(MREMAP_MAYMOVE|MREMAP_FIXED) onto a
 *      reserved address, then its last 2 pages made r;
 *   F: 8 pages shrunk to 3 with mremap.
 * No PROT_EXEC (not allowed everywhere). After restore: each page's
 * protection in /proc/self/maps is what it was before the checkpoint and
 * what was asked for; a read of a none page and a write to an r page
 * fault (SIGSEGV), rw pages take writes; every pattern is intact (none
 * pages are made readable to check them); the old places of D and E and
 * the cut tail of F (unmapped right after each mremap) hold no stale copy
 * of their old contents; D can be grown again, A made writable again.
 */
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include "testlib.h"

#define MAXPAGES 64

struct region {
    const char *name;
    char *addr;
    int npages;
    uint64_t seed;
    char perms[MAXPAGES][5]; /* wanted, as in /proc/self/maps: "r--p" */
};

enum { RA, RB, RC, RD, RE, RF, NREG };
static struct region reg[NREG];
static char before[NREG][MAXPAGES][5]; /* what maps said before the checkpoint */
static long page;
static char *d_old, *e_old, *f_tail;

static sigjmp_buf jb;
static volatile int faulted;

static void on_segv(int sig)
{
    faulted = 1;
    siglongjmp(jb, 1);
}

/* 1 when reading (write=0) or writing (write=1) at p faults. */
static int faults(char *p, int write)
{
    faulted = 0;
    if (sigsetjmp(jb, 1) == 0) {
        if (write)
            *(volatile char *)p = *(volatile char *)p;
        else
            (void)*(volatile char *)p;
    }
    return faulted;
}

static char *map_rw(int npages)
{
    char *p = mmap(NULL, npages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    check(p != MAP_FAILED, "mmap %d pages: %s", npages, strerror(errno));
    return p;
}

static void set_perm(struct region *r, int from, int to, int prot)
{
    if (prot != -1)
        check_sys(mprotect(r->addr + from * page, (to - from) * page, prot));
    for (int i = from; i < to; i++) {
        if (prot == -1)
            prot = PROT_READ | PROT_WRITE;
        snprintf(r->perms[i], 5, "%c%c-p", prot & PROT_READ ? 'r' : '-',
                 prot & PROT_WRITE ? 'w' : '-');
    }
}

/* The protection of the page at p in /proc/self/maps, "" when unmapped. */
static void perms_of(char *p, char out[5])
{
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    check(f, "open /proc/self/maps");
    out[0] = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3)
            continue;
        if ((uintptr_t)p >= lo && (uintptr_t)p < hi) {
            memcpy(out, perms, 5);
            break;
        }
    }
    fclose(f);
}

/* The old places of D and E and F's cut tail were unmapped right after
 * each mremap. Later mappings may take those addresses (the shim's own
 * memory, made at the first checkpoint, lands in such holes), but none may
 * hold the old contents: the restore must not bring a stale copy back. */
struct hole {
    const char *name;
    char **addr;
    int npages, region, first; /* pattern of region's page first.. */
};
static const struct hole holes[] = { { "D's old place", &d_old, 4, RD, 0 },
                                     { "E's old place", &e_old, 8, RE, 0 },
                                     { "F's cut tail", &f_tail, 5, RF, 3 } };
#define NHOLES (int)(sizeof(holes) / sizeof(holes[0]))

static void check_holes(void)
{
    static char pat[16 * 4096 * 4];
    for (int h = 0; h < NHOLES; h++) {
        const struct hole *o = &holes[h];
        size_t len = (o->first + o->npages) * page;
        check(len <= sizeof(pat), "pattern buffer too small");
        test_fill(pat, len, reg[o->region].seed);
        for (int i = 0; i < o->npages; i++) {
            char *p = *o->addr + i * page, perms[5];
            perms_of(p, perms);
            if (perms[0] == 0)
                continue;
            test_msg("%s: page %d at %p is mapped now (%s)", o->name, i, (void *)p, perms);
            if (perms[0] == 'r')
                check(memcmp(p, pat + (o->first + i) * page, page) != 0,
                      "%s: page %d at %p holds the old contents again", o->name, i,
                      (void *)p);
        }
    }
}

static void check_unmapped(char *p, int npages, const char *what)
{
    for (int i = 0; i < npages; i++) {
        char perms[5];
        perms_of(p + i * page, perms);
        check(perms[0] == 0, "%s: page %d at %p is mapped (%s)", what, i,
              (void *)(p + i * page), perms);
    }
}

/* Maps, faults and contents of every region agree with what was asked. */
static void check_all(const char *when, int compare_before)
{
    for (int k = 0; k < NREG; k++) {
        struct region *r = &reg[k];
        for (int i = 0; i < r->npages; i++) {
            char *p = r->addr + i * page, perms[5];
            perms_of(p, perms);
            check(strcmp(perms, r->perms[i]) == 0, "%s: %s page %d at %p is '%s' in maps, "
                  "expected '%s'", when, r->name, i, (void *)p, perms, r->perms[i]);
            if (compare_before)
                check(strcmp(perms, before[k][i]) == 0, "%s: %s page %d is '%s', was '%s' "
                      "before the checkpoint", when, r->name, i, perms, before[k][i]);
            else
                memcpy(before[k][i], perms, 5);
            int rd = perms[0] == 'r', wr = perms[1] == 'w';
            check(faults(p, 0) == !rd, "%s: %s page %d (%s): a read %s", when, r->name, i,
                  perms, rd ? "faulted" : "did not fault");
            if (rd)
                check(faults(p, 1) == !wr, "%s: %s page %d (%s): a write %s", when, r->name,
                      i, perms, wr ? "faulted" : "did not fault");
        }
    }
    /* contents: make none pages readable for a moment */
    for (int k = 0; k < NREG; k++) {
        struct region *r = &reg[k];
        for (int i = 0; i < r->npages; i++)
            if (r->perms[i][0] != 'r')
                check_sys(mprotect(r->addr + i * page, page, PROT_READ));
        long bad = test_check_fill(r->addr, r->npages * page, r->seed);
        check(bad < 0, "%s: %s content differs at offset %ld (page %ld)", when, r->name, bad,
              bad / page);
        for (int i = 0; i < r->npages; i++)
            if (r->perms[i][0] != 'r')
                check_sys(mprotect(r->addr + i * page, page, PROT_NONE));
    }
}

static void build(void)
{
    static const char *const names[NREG] = { "A", "B", "C", "D", "E", "F" };
    for (int k = 0; k < NREG; k++) {
        reg[k].name = names[k];
        reg[k].seed = 100 + k;
    }

    reg[RA].npages = 4;
    reg[RA].addr = map_rw(4);
    test_fill(reg[RA].addr, 4 * page, reg[RA].seed);
    set_perm(&reg[RA], 0, 4, PROT_READ);

    reg[RB].npages = 2;
    reg[RB].addr = map_rw(2);
    test_fill(reg[RB].addr, 2 * page, reg[RB].seed);
    set_perm(&reg[RB], 0, 2, PROT_NONE);

    reg[RC].npages = 8;
    reg[RC].addr = map_rw(8);
    test_fill(reg[RC].addr, 8 * page, reg[RC].seed);
    set_perm(&reg[RC], 0, 2, PROT_READ);
    set_perm(&reg[RC], 2, 4, -1);
    set_perm(&reg[RC], 4, 5, PROT_NONE);
    set_perm(&reg[RC], 5, 8, PROT_READ);

    /* D: 4 pages, a guard page right after them, grow to 16: it moves */
    char *d = map_rw(5);
    check_sys(munmap(d + 4 * page, page));
    char *guard = mmap(d + 4 * page, page, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    check(guard == d + 4 * page, "guard page: %s", strerror(errno));
    test_fill(d, 4 * page, reg[RD].seed);
    char *nd = mremap(d, 4 * page, 16 * page, MREMAP_MAYMOVE);
    check(nd != MAP_FAILED, "mremap D: %s", strerror(errno));
    check(nd != d, "mremap D did not move it");
    d_old = d;
    check_unmapped(d_old, 4, "D's old place right after mremap");
    check_sys(munmap(guard, page));
    reg[RD].addr = nd;
    reg[RD].npages = 16;
    long bad = test_check_fill(nd, 4 * page, reg[RD].seed);
    check(bad < 0, "D after mremap: content differs at %ld", bad);
    bad = test_check_zero(nd + 4 * page, 12 * page);
    check(bad < 0, "D's grown part is not zero at %ld", bad);
    test_fill(nd, 16 * page, reg[RD].seed); /* same first 4 pages, then the rest */
    set_perm(&reg[RD], 0, 16, -1);

    /* E: moved onto a reserved address */
    char *target = mmap(NULL, 8 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(target != MAP_FAILED, "reserve E: %s", strerror(errno));
    char *e = map_rw(8);
    test_fill(e, 8 * page, reg[RE].seed);
    char *ne = mremap(e, 8 * page, 8 * page, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    check(ne == target, "mremap E to %p gave %p: %s", (void *)target, (void *)ne,
          strerror(errno));
    e_old = e;
    check_unmapped(e_old, 8, "E's old place right after mremap");
    reg[RE].addr = ne;
    reg[RE].npages = 8;
    set_perm(&reg[RE], 0, 6, -1);
    set_perm(&reg[RE], 6, 8, PROT_READ);

    /* F: shrunk in place */
    char *f = map_rw(8);
    test_fill(f, 8 * page, reg[RF].seed);
    char *nf = mremap(f, 8 * page, 3 * page, 0);
    check(nf == f, "mremap F (shrink) gave %p: %s", (void *)nf, strerror(errno));
    f_tail = f + 3 * page;
    check_unmapped(f_tail, 5, "F's tail right after mremap");
    reg[RF].addr = f;
    reg[RF].npages = 3;
    set_perm(&reg[RF], 0, 3, -1);
}

int main(void)
{
    page = sysconf(_SC_PAGESIZE);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_segv;
    sigemptyset(&sa.sa_mask);
    check_sys(sigaction(SIGSEGV, &sa, NULL));

    build();
    check_all("before checkpoint", 0);
    test_msg("A %p B %p C %p D %p (was %p) E %p (was %p) F %p", (void *)reg[RA].addr,
             (void *)reg[RB].addr, (void *)reg[RC].addr, (void *)reg[RD].addr,
             (void *)d_old, (void *)reg[RE].addr, (void *)e_old, (void *)reg[RF].addr);

    test_ready();
    test_wait_go();

    check_all("after restore", 1);
    check_holes();

    /* D still grows (and may move) with its contents */
    char *nd = mremap(reg[RD].addr, 16 * page, 32 * page, MREMAP_MAYMOVE);
    check(nd != MAP_FAILED, "mremap D after restore: %s", strerror(errno));
    long bad = test_check_fill(nd, 16 * page, reg[RD].seed);
    check(bad < 0, "D after growing again: content differs at %ld", bad);
    bad = test_check_zero(nd + 16 * page, 16 * page);
    check(bad < 0, "D's new part is not zero at %ld", bad);
    memset(nd + 16 * page, 0x77, 16 * page);
    /* and protections can still change */
    check_sys(mprotect(reg[RA].addr, 4 * page, PROT_READ | PROT_WRITE));
    check(!faults(reg[RA].addr, 1), "A: write faults after mprotect rw");
    pass();
}
