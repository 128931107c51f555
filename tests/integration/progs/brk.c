/* brk - the program break and the heap it delimits survive.
 *
 * Before READY the program grows the break with sbrk() in two uneven steps
 * (6 MiB and a few bytes in all, nothing else allocates meanwhile) and
 * fills the new memory with a pattern. It records the break both as glibc
 * caches it (sbrk(0)) and as the kernel has it (raw brk(0)), and
 * start_brk from /proc/self/stat. After restore: the pattern is intact;
 * sbrk(0), the kernel's break and start_brk are what they were;
 * /proc/self/maps has a [heap] line covering the grown range up to the
 * page-rounded break; sbrk() grows the break by 8 MiB more (all of it
 * writable and zero-filled, [heap] follows), shrinks it back (and [heap]
 * with it), shrinks below the recorded break to the start of our range and
 * grows it again; malloc() still works afterwards. Throughout, [heap] is a
 * single line of /proc/self/maps, as brk() growth keeps it without restore.
 */
#include <sys/syscall.h>

#include "testlib.h"

#define STEP1 (3 * 1024 * 1024 + 123)
#define STEP2 (3 * 1024 * 1024 + 4001)
#define GROW (8 * 1024 * 1024)

static char *base, *brk0;
static unsigned long long start_brk0;
static long page;

static char *kernel_brk(void)
{
    return (char *)syscall(SYS_brk, 0);
}

/* Field 47 of /proc/self/stat. */
static unsigned long long read_start_brk(void)
{
    char buf[4096];
    FILE *f = fopen("/proc/self/stat", "r");
    check(f, "open /proc/self/stat");
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    check(p, "bad /proc/self/stat");
    p++;
    for (int field = 3; field < 47; field++) {
        p = strchr(p + 1, ' ');
        check(p, "/proc/self/stat has only %d fields", field);
    }
    return strtoull(p, NULL, 10);
}

/* The [heap] lines of /proc/self/maps: how many, and the range of the
 * first run of adjacent ones. */
static int heap_lines(uintptr_t *lo, uintptr_t *hi)
{
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0;
    check(f, "open /proc/self/maps");
    while (fgets(line, sizeof(line), f)) {
        uintptr_t a, b;
        if (!strstr(line, "[heap]"))
            continue;
        check(sscanf(line, "%lx-%lx", &a, &b) == 2, "bad maps line %s", line);
        if (n == 0)
            *lo = a, *hi = b;
        else if (a == *hi)
            *hi = b;
        n++;
    }
    fclose(f);
    return n;
}

static uintptr_t page_up(const char *p)
{
    return ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
}

static const char *split_when; /* first time [heap] was more than one line */
static int split_lines;

/* [heap] must cover [from, to) and end at the page-rounded break. */
static void check_heap(const char *from, const char *to, const char *when)
{
    uintptr_t lo = 0, hi = 0;
    int n = heap_lines(&lo, &hi);
    check(n > 0, "%s: no [heap] line in /proc/self/maps", when);
    check(lo <= (uintptr_t)from && hi >= (uintptr_t)to,
          "%s: [heap] is %#lx-%#lx, does not cover %p-%p", when, (unsigned long)lo,
          (unsigned long)hi, (void *)from, (void *)to);
    check(hi == page_up(to), "%s: [heap] ends at %#lx, break %p rounds to %#lx", when,
          (unsigned long)hi, (void *)to, (unsigned long)page_up(to));
    if (n > 1 && !split_when) {
        split_when = when;
        split_lines = n;
        test_msg("%s: [heap] %#lx-%#lx is %d lines in /proc/self/maps", when,
                 (unsigned long)lo, (unsigned long)hi, n);
    }
}

int main(void)
{
    page = sysconf(_SC_PAGESIZE);
    /* fopen etc. allocate: do it now, so nothing moves the break later */
    start_brk0 = read_start_brk();
    uintptr_t lo, hi;
    heap_lines(&lo, &hi);

    base = sbrk(0);
    check(sbrk(STEP1) == base, "sbrk(STEP1) did not return the old break");
    check(sbrk(STEP2) == base + STEP1, "sbrk(STEP2) did not return the old break");
    brk0 = sbrk(0);
    check(brk0 == base + STEP1 + STEP2, "break is %p, expected %p", (void *)brk0,
          (void *)(base + STEP1 + STEP2));
    check(kernel_brk() == brk0, "kernel break %p, sbrk(0) %p", (void *)kernel_brk(),
          (void *)brk0);
    test_fill(base, STEP1 + STEP2, 77);
    check_heap(base, brk0, "before checkpoint");
    check(read_start_brk() == start_brk0, "start_brk changed before the checkpoint");
    test_msg("start_brk %#llx, our range %p-%p", start_brk0, (void *)base, (void *)brk0);

    test_ready();
    test_wait_go();

    check(sbrk(0) == brk0, "sbrk(0) after restore is %p, was %p", sbrk(0), (void *)brk0);
    check(kernel_brk() == brk0, "kernel break after restore is %p, was %p",
          (void *)kernel_brk(), (void *)brk0);
    long bad = test_check_fill(base, STEP1 + STEP2, 77);
    check(bad < 0, "heap pattern differs at offset %ld (%p)", bad, (void *)(base + bad));
    check_heap(base, brk0, "after restore");
    unsigned long long sb = read_start_brk();
    check(sb == start_brk0, "start_brk after restore is %#llx, was %#llx", sb, start_brk0);

    /* grow by 8 MiB, use all of it */
    char *old = sbrk(GROW);
    check(old != (char *)-1, "sbrk(+8 MiB) after restore: %s", strerror(errno));
    check(old == brk0, "sbrk(+8 MiB) returned %p, expected %p", (void *)old, (void *)brk0);
    check(kernel_brk() == brk0 + GROW, "kernel break after growing is %p, expected %p",
          (void *)kernel_brk(), (void *)(brk0 + GROW));
    /* the part of the last old page beyond brk0 is old memory; the rest is new */
    char *fresh = (char *)page_up(brk0);
    bad = test_check_zero(fresh, brk0 + GROW - fresh);
    check(bad < 0, "new heap memory is not zero at %p", (void *)(fresh + bad));
    test_fill(brk0, GROW, 78);
    bad = test_check_fill(brk0, GROW, 78);
    check(bad < 0, "grown heap pattern differs at offset %ld", bad);
    bad = test_check_fill(base, STEP1 + STEP2, 77);
    check(bad < 0, "old heap pattern differs at offset %ld after growing", bad);
    check_heap(base, brk0 + GROW, "after growing");

    /* shrink back */
    check(sbrk(-GROW) != (void *)-1, "sbrk(-8 MiB): %s", strerror(errno));
    check(sbrk(0) == brk0 && kernel_brk() == brk0, "after shrinking: sbrk(0) %p, kernel %p,"
          " expected %p", sbrk(0), (void *)kernel_brk(), (void *)brk0);
    check_heap(base, brk0, "after shrinking");
    bad = test_check_fill(base, STEP1 + STEP2, 77);
    check(bad < 0, "heap pattern differs at offset %ld after shrinking", bad);

    /* below the checkpointed break, and up again */
    check(brk(base + 4096) == 0, "brk(%p): %s", (void *)(base + 4096), strerror(errno));
    check(kernel_brk() == base + 4096, "kernel break is %p after brk(%p)",
          (void *)kernel_brk(), (void *)(base + 4096));
    bad = test_check_fill(base, 4096, 77);
    check(bad < 0, "heap pattern differs at offset %ld after shrinking to 4 KiB", bad);
    check(sbrk(1024 * 1024) == base + 4096, "sbrk(+1 MiB) after shrinking: %s",
          strerror(errno));
    memset(base + 4096, 0x5a, 1024 * 1024);

    /* malloc still works (small from the main arena, large by mmap) */
    for (int i = 0; i < 100; i++) {
        char *p = malloc(1000 + i * 100);
        check(p, "malloc after restore");
        memset(p, i, 1000 + i * 100);
        free(p);
    }
    char *big = malloc(4 * 1024 * 1024);
    check(big, "malloc(4 MiB) after restore");
    memset(big, 1, 4 * 1024 * 1024);
    free(big);

    /* brk growth extends the heap's one mapping, as it does without a
     * restore (a split means the restored heap mapping differs from what
     * brk() makes: other flags, e.g. VM_NORESERVE vs VM_ACCOUNT) */
    check(!split_when, "%s: [heap] is split into %d lines in /proc/self/maps (the grown "
          "part did not merge with the restored heap mapping)", split_when, split_lines);
    pass();
}
