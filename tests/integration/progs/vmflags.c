/* vmflags - what madvise, mlock and mmap flags set on a region survives.
 *
 * One anonymous region each with MADV_HUGEPAGE, MADV_NOHUGEPAGE,
 * MADV_MERGEABLE, MADV_SEQUENTIAL, MADV_RANDOM, MADV_DONTDUMP, mlock,
 * MAP_NORESERVE and MAP_DROPPABLE (those the kernel refuses here are left
 * out), each with its contents (but the droppable one, which the kernel
 * may drop at any time). Their VmFlags in /proc/self/smaps ("hg",
 * "nh", ...) are the same after restore. And a shared mapping of a file
 * opened read-write, mapped read-only, its descriptor closed: after
 * restore mprotect(PROT_WRITE) still works and a write reaches the file
 * (the restorer reopened the file for writing, not read-only).
 */
#include <fcntl.h>
#include <sys/mman.h>

#include "testlib.h"

#define PG 4096
#define NPG 4

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif

struct reg {
    const char *tok;                    /* VmFlags token */
    int advice;                         /* madvise, or -1 */
    int mflags;                         /* extra mmap flags */
    int lock;
    char *p;
    int ok;
};

static struct reg regs[] = {
    {"hg", MADV_HUGEPAGE, 0, 0, 0, 0},   {"nh", MADV_NOHUGEPAGE, 0, 0, 0, 0},
    {"mg", MADV_MERGEABLE, 0, 0, 0, 0},  {"sr", MADV_SEQUENTIAL, 0, 0, 0, 0},
    {"rr", MADV_RANDOM, 0, 0, 0, 0},     {"dd", MADV_DONTDUMP, 0, 0, 0, 0},
    {"lo", -1, 0, 1, 0, 0},              {"nr", -1, MAP_NORESERVE, 0, 0, 0},
    {"dp", -1, MAP_DROPPABLE, 0, 0, 0},
};
#define NREG (int)(sizeof regs / sizeof regs[0])

/* Does the smaps entry starting at a carry VmFlags token tok? */
static int has_flag(const char *a, const char *tok)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    check(f != NULL, "open smaps");
    char line[512];
    int in = 0, found = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = s == (unsigned long)a;
            continue;
        }
        if (in && !strncmp(line, "VmFlags:", 8)) {
            found = 0;
            for (char *t = strtok(line + 8, " \n"); t; t = strtok(NULL, " \n"))
                found |= !strcmp(t, tok);
            break;
        }
    }
    fclose(f);
    check(found >= 0, "no smaps entry at %p", (void *)a);
    return found;
}

int main(void)
{
    /* a gap page between regions, so that none merges with another */
    char *base = mmap(NULL, (size_t)NREG * (NPG + 1) * PG, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(base != MAP_FAILED, "reserve");
    for (int i = 0; i < NREG; i++) {
        struct reg *r = &regs[i];
        char *a = base + (size_t)i * (NPG + 1) * PG;
        int type = r->mflags == MAP_DROPPABLE ? MAP_DROPPABLE : MAP_PRIVATE | r->mflags;
        r->p = mmap(a, NPG * PG, PROT_READ | PROT_WRITE, type | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (r->p == MAP_FAILED) {
            test_msg("mmap for %s: %s: left out", r->tok, strerror(errno));
            continue;
        }
        if ((r->advice >= 0 && madvise(r->p, NPG * PG, r->advice) < 0) ||
            (r->lock && mlock(r->p, NPG * PG) < 0)) {
            test_msg("%s: %s: left out", r->tok, strerror(errno));
            continue;
        }
        test_fill(r->p, NPG * PG, 100 + i);
        r->ok = has_flag(r->p, r->tok);
        if (!r->ok)
            test_msg("%s not shown in smaps: left out", r->tok);
    }

    int fd = open("prot.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    check_sys(fd);
    check_sys(ftruncate(fd, PG));
    char *sh = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
    check(sh != MAP_FAILED, "mmap shared read-only");
    close(fd);

    test_ready();
    test_wait_go();

    for (int i = 0; i < NREG; i++) {
        struct reg *r = &regs[i];
        if (!r->ok)
            continue;
        /* the kernel may drop MAP_DROPPABLE pages at any time */
        check(r->mflags == MAP_DROPPABLE || test_check_fill(r->p, NPG * PG, 100 + i) < 0,
              "%s: contents changed", r->tok);
        check(has_flag(r->p, r->tok), "%s is gone from the region's VmFlags", r->tok);
    }
    check(mprotect(sh, PG, PROT_READ | PROT_WRITE) == 0,
          "mprotect(PROT_WRITE) of the shared file mapping: %s", strerror(errno));
    memcpy(sh, "written", 7);
    check_sys(msync(sh, PG, MS_SYNC));
    fd = open("prot.dat", O_RDONLY);
    char b[8] = "";
    check(fd >= 0 && pread(fd, b, 7, 0) == 7 && !memcmp(b, "written", 7),
          "the write did not reach the file");
    pass();
    return 0;
}
