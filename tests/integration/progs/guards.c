/* guards - guard pages (MADV_GUARD_INSTALL, Linux 6.13+) stay guards.
 *
 * Guard pages in a private anonymous region (two runs, one at its end), in
 * a private and a shared mapping of a file, in a shared anonymous region
 * and in a region marked MADV_WIPEONFORK; every other page holds its own
 * pattern. After restore each guard page is a guard again (pagemap bit 58,
 * and reading it raises SIGSEGV), every other page holds its pattern, and
 * MADV_GUARD_REMOVE turns a guard back into a zero page.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include "testlib.h"

#define PG 4096
#define NPG 8
#define GUARD_INSTALL 102
#define GUARD_REMOVE 103
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

struct reg {
    const char *name;
    unsigned guards;                    /* bit i: page i is a guard */
    char *p;
};

static struct reg regs[] = {
    {"private anonymous", 0x86, 0}, {"private file", 0x10, 0}, {"shared file", 0x21, 0},
    {"shared anonymous", 0x08, 0},  {"wipeonfork", 0x40, 0},
};
#define NREG (int)(sizeof regs / sizeof regs[0])

static sigjmp_buf jb;

static void on_segv(int sig)
{
    (void)sig;
    siglongjmp(jb, 1);
}

static int faults(volatile char *p)
{
    if (sigsetjmp(jb, 1))
        return 1;
    (void)*p;
    return 0;
}

static int is_guard(int pmfd, const char *p)
{
    uint64_t e = 0;
    check(pread(pmfd, &e, 8, (off_t)((uintptr_t)p / PG * 8)) == 8, "pagemap");
    return (e >> 58) & 1;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    check_sys(sigaction(SIGSEGV, &sa, NULL));
    int fd = open("guarded.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    check_sys(fd);
    check_sys(ftruncate(fd, 2 * NPG * PG));
    for (int i = 0; i < NREG; i++) {
        struct reg *r = &regs[i];
        int file = i == 1 || i == 2, shared = i == 2 || i == 3;
        r->p = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE,
                    (shared ? MAP_SHARED : MAP_PRIVATE) | (file ? 0 : MAP_ANONYMOUS),
                    file ? fd : -1, file ? (i - 1) * NPG * PG : 0);
        check(r->p != MAP_FAILED, "mmap %s", r->name);
        if (i == 4)
            check_sys(madvise(r->p, NPG * PG, MADV_WIPEONFORK));
        test_fill(r->p, NPG * PG, 10 + i);
        for (int pg = 0; pg < NPG; pg++)
            if ((r->guards >> pg) & 1) {
                if (madvise(r->p + pg * PG, PG, GUARD_INSTALL) < 0) {
                    check(errno == EINVAL, "MADV_GUARD_INSTALL %s: %s", r->name, strerror(errno));
                    test_msg("no MADV_GUARD_INSTALL here");
                    test_ready();
                    test_wait_go();
                    pass();
                }
            }
    }
    test_ready();
    test_wait_go();

    int pm = open("/proc/self/pagemap", O_RDONLY);
    check_sys(pm);
    static unsigned char want[NPG * PG];
    for (int i = 0; i < NREG; i++) {
        struct reg *r = &regs[i];
        test_fill(want, NPG * PG, 10 + i);
        for (int pg = 0; pg < NPG; pg++) {
            char *a = r->p + pg * PG;
            if ((r->guards >> pg) & 1) {
                check(is_guard(pm, a), "%s page %d is no longer a guard page", r->name, pg);
                check(faults(a), "%s page %d can be read", r->name, pg);
            } else {
                check(!faults(a), "%s page %d faults", r->name, pg);
                check(memcmp(a, want + pg * PG, PG) == 0, "%s page %d changed", r->name, pg);
            }
        }
    }
    char *g = regs[0].p + PG;
    check_sys(madvise(g, PG, GUARD_REMOVE));
    check(!faults(g) && g[0] == 0, "a removed guard is not a zero page");
    pass();
    return 0;
}
