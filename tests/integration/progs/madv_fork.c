/* madv_fork - memory marked MADV_DONTFORK / MADV_WIPEONFORK survives.
 *
 * V8 (every node program) marks its heap MADV_DONTFORK; the forked image
 * writer once saw such memory as absent (DONTFORK) or zero (WIPEONFORK)
 * and wrote it as zeros. Regions, each filled with its own pattern:
 *   A  8 MiB private anonymous, MADV_DONTFORK, a few pages left untouched
 *   B  1 MiB private anonymous, MADV_WIPEONFORK
 *   C  256 KiB shared anonymous, MADV_DONTFORK
 *   D  256 KiB private anonymous, MADV_DONTDUMP (no effect on fork)
 *   E  64 KiB private anonymous, MADV_DONTFORK, then PROT_NONE
 * After restore every pattern is intact (untouched pages still zero), the
 * flags are still set (/proc/self/smaps VmFlags "dc" / "wf", "dd"), and
 * a fork behaves as before: in the child A, C and E are not mapped, B
 * reads zero, D has its pattern. The fork check also runs before READY.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "testlib.h"

#define KB 1024UL
#define MB (1024UL * 1024UL)

struct reg {
    const char *name;
    size_t len;
    int shared, advice;
    const char *vmflag;                 /* expected in smaps VmFlags */
    char *p;
};

static struct reg regs[] = {
    {"A", 8 * MB, 0, MADV_DONTFORK, "dc", NULL},
    {"B", 1 * MB, 0, MADV_WIPEONFORK, "wf", NULL},
    {"C", 256 * KB, 1, MADV_DONTFORK, "dc", NULL},
    {"D", 256 * KB, 0, MADV_DONTDUMP, "dd", NULL},
    {"E", 64 * KB, 0, MADV_DONTFORK, "dc", NULL},
};
#define NREGS (sizeof(regs) / sizeof(regs[0]))
#define HOLE(i) ((i) % 97 == 5)         /* A's pages left untouched */

static void fill(struct reg *r, int idx)
{
    for (size_t off = 0; off < r->len; off += 4096) {
        if (idx == 0 && HOLE(off / 4096))
            continue;
        test_fill(r->p + off, 4096, (uint64_t)idx * 100000 + off / 4096 + 1);
    }
}

static void verify(struct reg *r, int idx, const char *when)
{
    for (size_t off = 0; off < r->len; off += 4096) {
        long bad;
        if (idx == 0 && HOLE(off / 4096))
            bad = test_check_zero(r->p + off, 4096);
        else
            bad = test_check_fill(r->p + off, 4096, (uint64_t)idx * 100000 + off / 4096 + 1);
        check(bad < 0, "%s: region %s (%zu KiB) differs at offset %zu%s", when, r->name,
              r->len / KB, off + (size_t)bad,
              test_check_zero(r->p + off, 4096) < 0 ? " (the page is all zero)" : "");
    }
}

/* The VmFlags line of the smaps entry starting at p. */
static int has_vmflag(const char *p, const char *flag)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512], want[32];
    int in = 0, found = -1;
    check(f != NULL, "open /proc/self/smaps: %s", strerror(errno));
    snprintf(want, sizeof(want), "%lx-", (unsigned long)p);
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, want, strlen(want)))
            in = 1;
        else if (in && !strncmp(line, "VmFlags:", 8)) {
            char pat[8];
            snprintf(pat, sizeof(pat), " %s", flag);
            found = strstr(line, pat) != NULL;
            break;
        }
    }
    fclose(f);
    check(found >= 0, "no smaps entry starting at %p", (void *)p);
    return found;
}

static int mapped(const void *p, size_t len)
{
    unsigned char v[64];
    return mincore((void *)p, len < 64 * 4096 ? len : 64 * 4096, v) == 0;
}

/* Fork: in the child A, C, E are gone, B is zero, D has its pattern. */
static void fork_check(const char *when)
{
    pid_t pid = fork();
    check(pid >= 0, "%s: fork: %s", when, strerror(errno));
    if (pid == 0) {
        if (mapped(regs[0].p, regs[0].len))
            _exit(10);
        if (!mapped(regs[1].p, regs[1].len) || test_check_zero(regs[1].p, regs[1].len) >= 0)
            _exit(11);
        if (mapped(regs[2].p, regs[2].len))
            _exit(12);
        if (test_check_fill(regs[3].p, 4096, 3 * 100000 + 1) >= 0)
            _exit(13);
        if (mapped(regs[4].p, regs[4].len))
            _exit(14);
        _exit(0);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    static const char *const why[] = {
        "region A (MADV_DONTFORK) is mapped in the child",
        "region B (MADV_WIPEONFORK) is not zero in the child",
        "region C (shared, MADV_DONTFORK) is mapped in the child",
        "region D (MADV_DONTDUMP) lost its contents in the child",
        "region E (PROT_NONE, MADV_DONTFORK) is mapped in the child",
    };
    check(WIFEXITED(st), "%s: fork child died (status %#x)", when, st);
    int code = WEXITSTATUS(st);
    check(code == 0, "%s: %s", when, code >= 10 && code <= 14 ? why[code - 10] : "child failed");
}

int main(void)
{
    for (unsigned i = 0; i < NREGS; i++) {
        struct reg *r = &regs[i];
        r->p = mmap(NULL, r->len, PROT_READ | PROT_WRITE,
                    (r->shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
        check(r->p != MAP_FAILED, "mmap %s: %s", r->name, strerror(errno));
        fill(r, (int)i);
        check_sys(madvise(r->p, r->len, r->advice));
    }
    check_sys(mprotect(regs[4].p, regs[4].len, PROT_NONE));
    fork_check("before checkpoint");

    test_ready();
    test_wait_go();

    check_sys(mprotect(regs[4].p, regs[4].len, PROT_READ | PROT_WRITE));
    for (unsigned i = 0; i < NREGS; i++)
        verify(&regs[i], (int)i, "after restore");
    check_sys(mprotect(regs[4].p, regs[4].len, PROT_NONE));
    for (unsigned i = 0; i < NREGS; i++)
        check(has_vmflag(regs[i].p, regs[i].vmflag), "after restore: region %s lost its %s flag",
              regs[i].name, regs[i].vmflag);
    fork_check("after restore");
    pass();
}
