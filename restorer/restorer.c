/* restorer.c - ckshim-restore: rebuild a process's address space and
 * threads from a plan (common/plan.h) and the image's page records, then
 * jump back into the program. Freestanding: no libc, raw syscalls only.
 *
 * coord has checked everything it can before exec'ing us. From the first
 * munmap on there is no way back: any failure prints a message and ends
 * the process with exit_group(1), so no half-restored program ever runs.
 *
 *   1. switch to our own stack (start.S), block every signal
 *   2. map the plan into the window
 *   2b. fork the processes of a tree the plan names (ck_plan_child): each
 *      takes its descriptor table from a preparer in coord (adopt) and
 *      goes on from step 2 with its own plan
 *   3. unmap everything that is not ours, the vdso or vvar
 *   4. move vvar/vvar_vclock/vdso to where the image had them
 *   5. map every region (MAP_FIXED_NOREPLACE), fill pages, set rlimits,
 *      pass coord's gate, set protections
 *   6. PR_SET_MM_MAP: brk, stack, argv/env, auxv as they were
 *   7. tell the shim where we are (ck_restore_info), close our fds
 *   8. clone every other thread onto its park point; become the main one
 */
#include "image.h"
#include "lz4dec.h"
#include "plan.h"
#include "procparse.h"
#include "sys.h"
#include "xxh64.h"

#define STACK_SIZE (1 << 20)
#define MAPS_SIZE (2 << 20)
#define BUF_SIZE (2 << 20)

__attribute__((aligned(64))) static char restorer_stack[STACK_SIZE];
__attribute__((used)) char *const restorer_stack_top = restorer_stack + STACK_SIZE;
static char maps_buf[MAPS_SIZE];
static int status_fd = -1;
static int err_fd = 2;                  /* where die() writes */
static const struct ck_plan *plan;
static struct ck_plan_progress *progress; /* plan->progress_fd's entry, or NULL */
/* A child forked after its parent's fill (CK_CHILD_SHARED): the parent's
 * plan, until the regions they share are known; then which of its own
 * regions it kept from the parent (1), and of those which are compared
 * page by page as they are filled (2: anonymous memory). */
static const struct ck_plan *parent_plan;
#define MAX_KEPT 65536
static uint8_t kept[MAX_KEPT];
static uint32_t nkept;
/* The address ranges kept from the parent, in address order: a whole
 * region, or where a private anonymous region of the child overlaps one
 * of the parent's (a heap grown differently, mappings merged otherwise) */
static struct {
    uint64_t start, end;
} keep_r[MAX_KEPT];
static uint32_t nkeep_r;

extern char __executable_start[], _end[];

void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
void *memmove(void *d, const void *s, size_t n);

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;
    while (n >= 8) {
        uint64_t v;
        __builtin_memcpy(&v, sp, 8);
        __builtin_memcpy(dp, &v, 8);
        dp += 8;
        sp += 8;
        n -= 8;
    }
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;
    if (dp <= sp || dp >= sp + n)
        return memcpy(d, s, n);
    while (n--)
        dp[n] = sp[n];
    return d;
}

void *memset(void *d, int c, size_t n)
{
    uint8_t *dp = d;
    while (n--)
        *dp++ = (uint8_t)c;
    return d;
}

static size_t slen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static void puts_fd(int fd, const char *s)
{
    if (fd >= 0)
        sys_write(fd, s, slen(s));
}

static char *fmt_hex(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    *p++ = '0';
    *p++ = 'x';
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *fmt_dec(char *p, long v)
{
    char tmp[24];
    int n = 0;
    unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
    if (v < 0)
        *p++ = '-';
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Past the gate's first step with a second to come: a failure from here
 * on leaves the counter where it was (coord's gate keeper moves it only
 * once the shim reports the process whole); die() says so. */
static int before_commit;
/* A child of the restorer taking its table, before its plan is mapped:
 * its pid in the image, for die()'s message (on its parent's err_fd) */
static long adopt_vpid;

/* Print "ckshim-restore: what at ADDR: error N" and end the process. */
__attribute__((noreturn)) static void die(const char *what, uint64_t addr, long err)
{
    char buf[640], *p = buf;
    const char *pre = "ckshim-restore: restore failed: ";
    for (const char *s = pre; *s; s++)
        *p++ = *s;
    for (const char *s = what; *s && p < buf + 300; s++)
        *p++ = *s;
    if (addr) {
        *p++ = ' ';
        *p++ = 'a';
        *p++ = 't';
        *p++ = ' ';
        p = fmt_hex(p, addr);
    }
    if (err) {
        const char *e = " (error ";
        for (const char *s = e; *s; s++)
            *p++ = *s;
        p = fmt_dec(p, err < 0 ? -err : err);
        /* the one cause a user can act on without the errno table */
        if (err == -12 || err == 12)
            for (const char *s = ": out of memory"; *s; s++)
                *p++ = *s;
        *p++ = ')';
    }
    if (adopt_vpid) {
        for (const char *s = " (process "; *s; s++)
            *p++ = *s;
        p = fmt_dec(p, adopt_vpid);
        for (const char *s = " of the tree, before its memory work)"; *s; s++)
            *p++ = *s;
    }
    char *what_end = p;
    if (before_commit)
        for (const char *s = "; nothing ran, the image is kept (the counter did not move)"; *s;
             s++)
            *p++ = *s;
    *p++ = '\n';
    *p = 0;
    if (err_fd >= 0) {
        if (progress)
            puts_fd(err_fd, "\r\033[K"); /* the progress line coord's keeper draws, if any */
        puts_fd(err_fd, buf);
    }
    if (status_fd >= 0) {
        puts_fd(status_fd, "error: ");
        puts_fd(status_fd, buf + 16);
    } else if (plan && plan->tree_gate && plan->ready_fd >= 0) {
        /* A process of a tree with no status pipe of its own (its stderr
         * may be nowhere: --detach): the gate keeper, which reads a byte
         * from every process, gets "E" and why instead, and names it in
         * the tree's message. */
        *what_end = '\n';
        sys_write(plan->ready_fd, "E", 1);
        sys_write(plan->ready_fd, buf + 32, (unsigned long)(what_end + 1 - (buf + 32)));
    }
    sys_exit_group(1);
    for (;;)
        ;
}

static long parse_num(const char *s)
{
    long v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    return v;
}

static int in_window(uint64_t a)
{
    return a >= CK_WINDOW_START && a < CK_WINDOW_END;
}

static const struct ck_plan_region *regions(void)
{
    return (const struct ck_plan_region *)((const char *)plan + plan->regions_off);
}

static const struct ck_plan_thread *threads(void)
{
    return (const struct ck_plan_thread *)((const char *)plan + plan->threads_off);
}

/* Unmap [start, end) but the regions this process keeps from its parent
 * (none unless it shares with it). */
/* The first range kept from the parent that ends after a. */
static uint32_t first_kept_after(uint64_t a)
{
    uint32_t lo = 0, hi = nkeep_r;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (keep_r[mid].end <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void unmap_but_kept(uint64_t start, uint64_t end)
{
    uint64_t at = start;
    for (uint32_t i = first_kept_after(start); i < nkeep_r && keep_r[i].start < end; i++) {
        if (keep_r[i].start > at) {
            long r = sys_munmap(at, keep_r[i].start - at);
            if (r < 0)
                die("cannot unmap", at, r);
        }
        if (keep_r[i].end > at)
            at = keep_r[i].end;
    }
    if (at < end) {
        long r = sys_munmap(at, end - at);
        if (r < 0)
            die("cannot unmap", at, r);
    }
}

/* Step 3 and 4: clear the address space and move the vdso. */
static void clear_address_space(void)
{
    long fd = sys_open("/proc/self/maps", R_O_RDONLY | R_O_CLOEXEC, 0);
    if (fd < 0)
        die("cannot open /proc/self/maps", 0, fd);
    size_t n = 0;
    for (;;) {
        long r = sys_read(fd, maps_buf + n, MAPS_SIZE - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    sys_close(fd);
    maps_buf[n] = 0;

    struct {
        uint64_t start, end, target_start, target_end;
    } special[3];
    const char *names[3] = {"[vvar]", "[vvar_vclock]", "[vdso]"};
    uint64_t targets[3][2] = {{plan->vvar_start, plan->vvar_end},
                              {plan->vclock_start, plan->vclock_end},
                              {plan->vdso_start, plan->vdso_end}};
    memset(special, 0, sizeof special);

    char *line = maps_buf;
    while (*line) {
        char *nl = line;
        while (*nl && *nl != '\n')
            nl++;
        int last = *nl == 0;
        *nl = 0;
        struct ck_maps_entry e;
        if (ck_parse_maps_line(line, &e) == 0) {
            int sp = -1;
            for (int i = 0; i < 3; i++) {
                const char *a = e.path, *b = names[i];
                while (*a && *a == *b) {
                    a++;
                    b++;
                }
                if (*a == 0 && *b == 0)
                    sp = i;
            }
            if (sp >= 0) {
                special[sp].start = e.start;
                special[sp].end = e.end;
            } else if (!in_window(e.start) && e.start < 0xffffffffff600000ULL) {
                unmap_but_kept(e.start, e.end);
            }
        }
        if (last)
            break;
        line = nl + 1;
    }
    /* Park every special mapping in the window, then move each where the
     * image wants it; they keep their relative distances. */
    for (int i = 0; i < 3; i++) {
        if (!special[i].start)
            continue;
        uint64_t len = special[i].end - special[i].start;
        uint64_t tmp = CK_VDSO_TMP + (uint64_t)i * 0x1000000ULL;
        long r = sys_mremap(special[i].start, len, len, R_MREMAP_MAYMOVE | R_MREMAP_FIXED, tmp);
        if (r < 0)
            die("cannot move the vdso/vvar", special[i].start, r);
        special[i].start = tmp;
        special[i].end = tmp + len;
    }
    for (int i = 0; i < 3; i++) {
        if (!special[i].start)
            continue;
        uint64_t len = special[i].end - special[i].start;
        if (!targets[i][0]) {
            sys_munmap(special[i].start, len);
            continue;
        }
        if (targets[i][1] - targets[i][0] != len)
            die("the vdso differs in size from the image's", targets[i][0], 0);
        long r = sys_mremap(special[i].start, len, len, R_MREMAP_MAYMOVE | R_MREMAP_FIXED,
                            targets[i][0]);
        if (r < 0)
            die("cannot move the vdso/vvar", targets[i][0], r);
    }
}

/* The parts of a private anonymous region kept in part from the parent
 * that it does not cover: mapped fresh (zero until filled). */
static void map_around_kept(const struct ck_plan_region *r)
{
    uint64_t at = r->start;
    int fl = R_MAP_PRIVATE | R_MAP_ANONYMOUS | R_MAP_FIXED_NOREPLACE |
             ((r->flags & CK_REG_NORESERVE) ? R_MAP_NORESERVE : 0);
    for (uint32_t i = first_kept_after(r->start); i <= nkeep_r && at < r->end; i++) {
        uint64_t ks = i < nkeep_r ? keep_r[i].start : r->end;
        uint64_t ke = i < nkeep_r ? keep_r[i].end : r->end;
        if (ke <= at)
            continue;
        if (ks > r->end)
            ks = r->end;
        if (ks > at) {
            long a = sys_mmap(at, ks - at, (int)r->prot | R_PROT_WRITE | R_PROT_READ, fl, -1, 0);
            if (a < 0 || (uint64_t)a != at)
                die("cannot map memory region", at, a < 0 ? a : 0);
        }
        at = ke;
    }
}

static void map_regions(void)
{
    const struct ck_plan_region *rg = regions();
    const char *strings = (const char *)plan + plan->strings_off;
    long fd = -1;
    uint32_t fd_path = 0;
    int32_t fd_flags = 0;
    for (uint32_t i = 0; i < plan->nregions; i++) {
        const struct ck_plan_region *r = &rg[i];
        if (r->flags & CK_REG_SPECIAL)
            continue;
        if (i < MAX_KEPT && kept[i]) {
            map_around_kept(r);
            continue;
        }
        uint64_t len = r->end - r->start;
        int shared = (r->flags & CK_REG_SHARED) != 0;
        int extra = (r->flags & CK_REG_NORESERVE) ? R_MAP_NORESERVE : 0;
        long addr;
        if (r->flags & CK_REG_SYSV) {
            /* SysV shared memory: attach the segment coord chose (the
             * program's own, or one made anew and filled below) where it
             * was; the attach covers the regions that continue it */
            if (!(r->shm_flags & CK_PLAN_SHM_ATTACH))
                continue;
            long fl = ((r->shm_flags & CK_PLAN_SHM_EXEC) ? 0100000 /* SHM_EXEC */ : 0) |
                      ((r->shm_flags & (CK_PLAN_SHM_RDONLY | CK_PLAN_SHM_FILL)) ==
                               CK_PLAN_SHM_RDONLY
                           ? 010000 /* SHM_RDONLY */
                           : 0);
            addr = sys3(NR_shmat, r->shmid, r->start, fl);
            if (addr >= 0 && (r->shm_flags & CK_PLAN_SHM_RMID))
                sys3(NR_shmctl, r->shmid, 0 /* IPC_RMID */, 0);
        } else if (r->from_fd >= 0) {
            /* mapping of a deleted file or memfd the program also holds
             * open: map the recreated file so both stay one (a private
             * one gets its changed pages written over it below) */
            addr = sys_mmap(r->start, len, (int)r->prot | (shared ? 0 : R_PROT_WRITE),
                            (shared ? R_MAP_SHARED : R_MAP_PRIVATE) | R_MAP_FIXED_NOREPLACE | extra,
                            r->from_fd, r->offset);
        } else if ((r->flags & CK_REG_FILE) && !(r->flags & CK_REG_ALLPAGES)) {
            /* one open for a run of regions of one file (the plan stores
             * a repeated path once): maps06 maps one file 10240 times */
            if (fd < 0 || r->path_off != fd_path || r->open_flags != fd_flags) {
                if (fd >= 0)
                    sys_close(fd);
                fd = sys_open(strings + r->path_off,
                              r->open_flags | R_O_CLOEXEC | R_O_NOFOLLOW | R_O_NONBLOCK, 0);
                if (fd < 0)
                    die("cannot open a mapped file", r->start, fd);
                fd_path = r->path_off;
                fd_flags = r->open_flags;
            }
            /* the file coord checked, not one put there since */
            struct r_stat st;
            long e = sys_fstat(fd, &st);
            if (e < 0 || st.st_dev != r->dev || st.st_ino != r->ino)
                die("a mapped file was replaced during the restore", r->start, e);
            int prot = (int)r->prot | (shared ? 0 : R_PROT_WRITE);
            addr = sys_mmap(r->start, len, prot,
                            (shared ? R_MAP_SHARED : R_MAP_PRIVATE) | R_MAP_FIXED_NOREPLACE | extra,
                            fd, r->offset);
        } else {
            int fl = (shared                               ? R_MAP_SHARED
                      : (r->flags & CK_REG_DROPPABLE) ? R_MAP_DROPPABLE
                                                      : R_MAP_PRIVATE) |
                     R_MAP_ANONYMOUS | R_MAP_FIXED_NOREPLACE | extra;
            if (r->flags & CK_REG_STACK)
                fl |= R_MAP_GROWSDOWN;
            if (r->flags & CK_REG_HUGETLB) {
                /* coord checked there are enough free huge pages */
                fl |= R_MAP_HUGETLB;
                if (r->hugepage_size)
                    fl |= (63 - __builtin_clzll(r->hugepage_size)) << R_MAP_HUGE_SHIFT;
            }
            addr = sys_mmap(r->start, len, (int)r->prot | R_PROT_WRITE | R_PROT_READ, fl, -1, 0);
        }
        if (addr < 0)
            die("cannot map memory region", r->start, addr);
        if ((uint64_t)addr != r->start)
            die("memory region landed elsewhere", r->start, 0);
    }
    if (fd >= 0)
        sys_close(fd);
}

/* The region that holds [a, a+len), writable by us, or die. Regions are
 * in address order (coord checks): a binary search, as there may be 65530
 * of them and as many page records. */
static const struct ck_plan_region *check_target(uint64_t a, uint64_t len)
{
    const struct ck_plan_region *rg = regions();
    uint32_t lo = 0, hi = plan->nregions;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (rg[mid].end <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < plan->nregions) {
        const struct ck_plan_region *r = &rg[lo];
        if (a >= r->start && a + len <= r->end && a + len > a) {
            if (!(r->flags & CK_REG_SPECIAL) &&
                !((r->flags & CK_REG_FILE) && (r->flags & CK_REG_SHARED) &&
                  !(r->flags & CK_REG_ALLPAGES)))
                return r;
        }
    }
    die("image has pages outside any writable region", a, 0);
}

static uint64_t rec_checksum(const struct ck_rec *rec, const void *payload)
{
    struct ck_rec tmp = *rec;
    tmp.checksum = 0;
    uint64_t seed = ck_xxh64(&tmp, sizeof tmp, 0);
    return ck_xxh64(payload, rec->len, seed);
}

/* Step 5b: fill memory from the PAGES records, with one thread per CPU.
 * Each takes the next record, preads it (raw pages straight into place),
 * checks its checksum and decodes it into place. Memory is populated in
 * one madvise per record: cheaper than a page fault per page. */
#define MAX_FILLERS 8
#define MADV_POPULATE_WRITE_ 23
static uint8_t fill_buf[MAX_FILLERS][BUF_SIZE];
__attribute__((aligned(16))) static char fill_stack[MAX_FILLERS][65536];
static volatile int fill_tid[MAX_FILLERS];
static volatile long fill_next;
static volatile long fill_pages_done;

static int same_page(const uint8_t *a, const uint8_t *b)
{
    const uint64_t *x = (const uint64_t *)a, *y = (const uint64_t *)b;
    for (unsigned i = 0; i < CK_PAGE_SIZE / 8; i++)
        if (x[i] != y[i])
            return 0;
    return 1;
}

/* Put one PAGES record in place: read it (raw pages straight into
 * place), check its checksum, decode it in place. */
static void fill_one(const struct ck_plan_pagerec *pr, uint8_t *buf)
{
    const struct ck_rec *rec = &pr->rec;
    if (rec->type != CK_REC_PAGES || (rec->arg & (CK_PAGE_SIZE - 1)) ||
        (rec->raw_len & (CK_PAGE_SIZE - 1)) || rec->raw_len == 0 ||
        rec->raw_len > CK_CHUNK_PAGES * CK_PAGE_SIZE || rec->len > BUF_SIZE)
        die("malformed PAGES record", rec->arg, 0);
    const struct ck_plan_region *tr = check_target(rec->arg, rec->raw_len);
    if ((tr->from_fd >= 0 && (tr->flags & CK_REG_SHARED)) ||
        ((tr->flags & CK_REG_SYSV) && !(tr->shm_flags & CK_PLAN_SHM_FILL))) {
        /* already in the recreated file, or the live SysV segment */
        __atomic_fetch_add(&fill_pages_done, (long)(rec->raw_len / CK_PAGE_SIZE),
                           __ATOMIC_RELAXED);
        if (progress)
            __atomic_fetch_add(&progress->done, rec->raw_len, __ATOMIC_RELAXED);
        return;
    }
    uint8_t *dst = (uint8_t *)rec->arg;
    /* memory kept from the parent: its pages are compared, and written
     * only where they differ (each write takes a copy-on-write fault) */
    long ti = tr - regions();
    uint8_t *cmp = ti < MAX_KEPT && kept[ti] == 2 && rec->len <= BUF_SIZE / 2 &&
                           rec->raw_len <= BUF_SIZE / 2
                       ? buf + BUF_SIZE / 2
                       : 0;
    if (!cmp)
        sys_madvise(rec->arg, rec->raw_len, MADV_POPULATE_WRITE_);
    if (rec->flags == CK_RF_RAW && rec->len != rec->raw_len)
        die("malformed PAGES record", rec->arg, 0);
    if (rec->flags != CK_RF_RAW && rec->flags != CK_RF_LZ4)
        die("unknown page encoding", rec->arg, 0);
    uint8_t *out = cmp ? cmp : dst;
    uint8_t *src = rec->flags == CK_RF_RAW ? out : buf;
    uint64_t done = 0;
    while (done < rec->len) {
        long r = sys_pread(plan->image_fd, src + done, rec->len - done, pr->offset + done);
        if (r == -4)
            continue;
        if (r <= 0)
            die(r == 0 ? "image is truncated" : "cannot read the image", rec->arg, r);
        done += (uint64_t)r;
    }
    if (plan->verify && rec_checksum(rec, src) != rec->checksum)
        die("checksum mismatch in pages", rec->arg, 0);
    if (rec->flags == CK_RF_LZ4) {
        long n = ck_lz4_decode(src, rec->len, out, rec->raw_len);
        if (n != (long)rec->raw_len)
            die("corrupted compressed pages", rec->arg, 0);
    }
    for (uint64_t o = 0; cmp && o < rec->raw_len; o += CK_PAGE_SIZE)
        if (!same_page(dst + o, cmp + o))
            memcpy(dst + o, cmp + o, CK_PAGE_SIZE);
    __atomic_fetch_add(&fill_pages_done, (long)(rec->raw_len / CK_PAGE_SIZE), __ATOMIC_RELAXED);
    if (plan->test_slow_fill_ms) { /* CKSHIM_TEST_HOOK=restore-slow-fill:MS (coord) */
        struct {
            long s, ns;
        } ts = {plan->test_slow_fill_ms / 1000, (long)(plan->test_slow_fill_ms % 1000) * 1000000};
        sys4(35 /* nanosleep */, &ts, 0, 0, 0);
    }
    if (progress)
        __atomic_fetch_add(&progress->done, rec->raw_len, __ATOMIC_RELAXED);
}

static void fill_worker(void *arg)
{
    uint8_t *buf = fill_buf[(long)arg];
    const struct ck_plan_pagerec *pr =
        (const struct ck_plan_pagerec *)((const char *)plan + plan->pagerecs_off);
    for (;;) {
        long i = __atomic_fetch_add(&fill_next, 1, __ATOMIC_SEQ_CST);
        if (i >= (long)plan->npagerecs)
            return;
        fill_one(&pr[i], buf);
    }
}

static void fill_pages(void)
{
    uint32_t nw = plan->nworkers;
    if (nw < 1)
        nw = 1;
    if (nw > MAX_FILLERS)
        nw = MAX_FILLERS;
    uint32_t started = 0;
    for (uint32_t i = 1; i < nw; i++) {
        fill_tid[i] = 1;
        if (restorer_spawn(fill_worker, (void *)(long)i, fill_stack[i] + sizeof fill_stack[i],
                           &fill_tid[i]) < 0) {
            fill_tid[i] = 0;
            break;
        }
        started++;
    }
    fill_worker((void *)0);
    for (uint32_t i = 1; i <= started; i++) {
        int t;
        while ((t = fill_tid[i]) != 0)
            sys4(202 /* futex */, &fill_tid[i], 0 /* WAIT */, t, 0);
    }
    if (plan->npages && (uint64_t)fill_pages_done != plan->npages)
        die("image holds fewer pages than its index says", 0, fill_pages_done);
}

/* Step 5c: every page is in place and checked; wait for coord's gate
 * keeper to advance the counter (restore.c) before anything runs. */
static void pass_gate(void)
{
    static char msg[400];
    long n = 0, r;
    do
        r = sys_write(plan->ready_fd, "R", 1);
    while (r == -4);
    if (r != 1)
        die("the counter gate keeper went away", 0, r);
    while (n < (long)sizeof msg - 1) {
        r = sys_read(plan->gate_fd, msg + n, sizeof msg - 1 - n);
        if (r == -4)
            continue;
        if (r <= 0)
            break;
        n += r;
        if (msg[n - 1] == '\n')
            break;
    }
    msg[n] = 0;
    if (n >= 3 && msg[0] == 'o' && msg[1] == 'k' && msg[2] == '\n') {
        if (!plan->tree_gate) {
            sys_close(plan->gate_fd);
            sys_close(plan->ready_fd);
        } else {
            before_commit = 1;
        }
        return;
    }
    if (n == 5 && msg[0] == 's' && msg[1] == 't' && msg[2] == 'o' && msg[3] == 'p')
        sys_exit_group(1); /* another process of the tree failed: the root says why */
    if (n > 0 && msg[n - 1] == '\n')
        msg[n - 1] = 0;
    const char *m = msg;
    if (n > 7 && msg[0] == 'e' && msg[5] == ':' && msg[6] == ' ')
        m = msg + 7;
    die(n > 0 ? m : "the counter gate keeper went away", 0, 0);
}

/* Guard pages (MADV_GUARD_INSTALL) back where they were, once memory is
 * filled (installing one drops what is mapped there; none of them has
 * pages in the image), before protections are set (PROT_NONE regions may
 * hold guards too). */
#define MADV_GUARD_INSTALL_ 102
static void install_guards(void)
{
    const struct ck_guard *g = (const struct ck_guard *)((const char *)plan + plan->guards_off);
    for (uint64_t i = 0; i < plan->nguards; i++) {
        long e = sys_madvise(g[i].start, g[i].end - g[i].start, MADV_GUARD_INSTALL_);
        if (e < 0)
            die("cannot install guard pages (MADV_GUARD_INSTALL)", g[i].start, e);
    }
}

static void protect_regions(void)
{
    const struct ck_plan_region *rg = regions();
    for (uint32_t i = 0; i < plan->nregions; i++) {
        const struct ck_plan_region *r = &rg[i];
        if ((r->flags & CK_REG_SPECIAL) || (r->from_fd >= 0 && (r->flags & CK_REG_SHARED)))
            continue;
        long e = sys_mprotect(r->start, r->end - r->start, r->prot);
        if (e < 0)
            die("cannot set protection", r->start, e);
    }
}

static void set_mm(void)
{
    struct ck_prctl_mm_map m;
    ck_mm_map_fill(&m, &plan->mm, plan->auxv, plan->auxv_bytes, -1);
    long r = sys_prctl(R_PR_SET_MM, R_PR_SET_MM_MAP, (long)&m, sizeof m, 0);
    if (r < 0)
        die("prctl(PR_SET_MM_MAP) refused the saved address-space layout", 0, r);
}

/* Rlimits last (after the forks and once descriptors are in place: a
 * hard limit lowered here could not be raised again for a child, nor a
 * descriptor placed above a lowered NOFILE); a hard limit above ours is
 * cut to ours, as coord did before the exec. */
static void set_rlimits(void)
{
    for (uint32_t i = 0; i < plan->nrlimits && i < CK_NRLIMIT; i++) {
        const struct ck_plan_rlimit *l = &plan->rlim[i];
        uint64_t want[2] = {l->cur, l->max}, now[2];
        if (sys4(NR_prlimit64, 0, l->resource, want, 0) >= 0 ||
            sys4(NR_prlimit64, 0, l->resource, 0, now) < 0)
            continue;
        if (want[1] > now[1])
            want[1] = now[1];
        if (want[0] > want[1])
            want[0] = want[1];
        sys4(NR_prlimit64, 0, l->resource, want, 0);
    }
}

/* "WHAT VPID": a message naming a process of the tree. */
static const char *about(const char *what, long vpid)
{
    static char msg[160];
    char *p = msg;
    for (const char *s = what; *s && p < msg + 120; s++)
        *p++ = *s;
    *p++ = ' ';
    p = fmt_dec(p, vpid);
    *p = 0;
    return msg;
}

/* The preparer's header (struct ck_adopt_hdr) on sock. */
static void adopt_header(int sock, struct ck_adopt_hdr *h)
{
    struct r_iovec iov = {h, sizeof *h};
    struct r_msghdr m;
    memset(&m, 0, sizeof m);
    m.iov = &iov;
    m.iovlen = 1;
    long r;
    while ((r = sys3(NR_recvmsg, sock, &m, 0)) == -4)
        ;
    if (r != (long)sizeof *h || h->magic != CK_ADOPT_MAGIC || h->hi < 2 || !h->count)
        die("its preparer in coord sent no descriptors (it failed, see above)", 0, r);
}

/* The next batch of descriptors (at most left) on sock: their target
 * numbers in target[], the descriptors returned; *n how many. */
static const int *adopt_batch(int sock, int32_t *target, uint32_t left, uint32_t *n)
{
    static uint64_t cbuf[(sizeof(struct r_cmsghdr) + CK_ADOPT_BATCH * 4) / 8 + 1];
    struct r_iovec iov = {target, CK_ADOPT_BATCH * 4};
    struct r_msghdr m;
    long r;
    do {
        memset(&m, 0, sizeof m);
        m.iov = &iov;
        m.iovlen = 1;
        m.control = cbuf;
        m.controllen = sizeof cbuf;
        r = sys3(NR_recvmsg, sock, &m, 0x40000000 /* MSG_CMSG_CLOEXEC */);
    } while (r == -4);
    const struct r_cmsghdr *cm = (const struct r_cmsghdr *)cbuf;
    *n = r > 0 ? (uint32_t)r / 4 : 0;
    if (r <= 0 || (r & 3) || (m.flags & (R_MSG_TRUNC | R_MSG_CTRUNC)) ||
        m.controllen < sizeof *cm || cm->level != R_SOL_SOCKET || cm->type != R_SCM_RIGHTS ||
        cm->len != sizeof *cm + *n * 4 || *n > left)
        die("cannot take the descriptors its preparer in coord made", 0, r);
    return (const int *)(cm + 1);
}

/* One byte back for a batch taken. */
static void adopt_ack(int sock)
{
    struct r_iovec a = {"a", 1};
    struct r_msghdr m;
    memset(&m, 0, sizeof m);
    m.iov = &a;
    m.iovlen = 1;
    sys3(NR_sendmsg, sock, &m, R_MSG_NOSIGNAL);
}

/* In a child of the restorer: take the descriptor table its preparer
 * made (struct ck_adopt_hdr), as an exec would have left it, and return
 * the number of its plan. Everything of the parent's table goes first. */
static int adopt(int sock)
{
    static int32_t target[CK_ADOPT_BATCH], high[CK_ADOPT_BATCH];
    /* all but the socket and the parent's channel for messages (err_fd,
     * coord's stderr: kept above every number until its own plan names
     * its own) */
    int lo = err_fd >= 0 && err_fd < sock ? err_fd : sock;
    int hi2 = err_fd > sock ? err_fd : sock;
    if (lo > 0)
        sys3(NR_close_range, 0, lo - 1, 0);
    if (hi2 > lo + 1)
        sys3(NR_close_range, lo + 1, hi2 - 1, 0);
    sys3(NR_close_range, hi2 + 1, ~0U, 0);
    struct ck_adopt_hdr h;
    adopt_header(sock, &h);
    if (err_fd >= 0) {
        long e = sys3(NR_fcntl, err_fd, R_F_DUPFD, h.hi + 1);
        sys_close(err_fd);
        err_fd = e >= 0 ? (int)e : -1;
    }
    /* room above the highest number for the socket and a batch (the limit
     * is the parent's for now; its own is set at the end: set_rlimits) */
    uint64_t lim[2], need = (uint64_t)h.hi + 2 + CK_ADOPT_BATCH + 8;
    if (sys4(NR_prlimit64, 0, 7 /* RLIMIT_NOFILE */, 0, lim) == 0 && lim[0] < need) {
        if (lim[1] < need)
            die("the hard descriptor limit (RLIMIT_NOFILE) is below what its descriptors "
                "need", 0, 0);
        lim[0] = need;
        sys4(NR_prlimit64, 0, 7, lim, 0);
    }
    long r = sys3(NR_fcntl, sock, R_F_DUPFD, h.hi + 1);
    if (r < 0)
        die("cannot move the preparer's socket", 0, r);
    sys_close(sock);
    sock = (int)r;
    for (uint32_t got = 0, n; got < h.count; got += n) {
        const int *fds = adopt_batch(sock, target, h.count - got, &n);
        /* above every target first: one of this batch may sit on another's */
        for (uint32_t k = 0; k < n; k++) {
            r = sys3(NR_fcntl, fds[k], R_F_DUPFD, sock + 1);
            if (r < 0)
                die("cannot move a descriptor from its preparer", 0, r);
            sys_close(fds[k]);
            high[k] = (int32_t)r;
        }
        for (uint32_t k = 0; k < n; k++) {
            if (target[k] == -1)
                r = sys1(NR_fchdir, high[k]);
            else if (target[k] < 0 || target[k] > h.hi)
                r = -22;
            else
                r = sys3(NR_dup3, high[k], target[k], 0);
            if (r < 0)
                die(target[k] == -1 ? "cannot enter its working directory"
                                    : "cannot put a descriptor in place",
                    0, r);
            sys_close(high[k]);
        }
        adopt_ack(sock);
    }
    sys_close(sock);
    if (err_fd >= 0)
        sys_close(err_fd);
    err_fd = -1;
    sys1(NR_umask, h.umask & 0777);
    return h.plan_fd;
}

/* A child sharing its parent's descriptor table (CK_CHILD_FILES): the
 * descriptors its preparer sent stay where they land (every lower number
 * is the program's or its parent's), so the plan's numbers (the
 * preparer's) are changed to where they are: from[k] -> to[k]. */
#define MAX_RENUMBER 4096
static int32_t renum_from[MAX_RENUMBER], renum_to[MAX_RENUMBER];
static uint32_t nrenum;

static int32_t renumbered(int32_t fd)
{
    for (uint32_t k = 0; fd >= 0 && k < nrenum; k++)
        if (renum_from[k] == fd)
            return renum_to[k];
    return fd;
}

/* adopt's counterpart for such a child: nothing of the table is closed;
 * each descriptor is kept where it landed, the working directory
 * entered. Returns the number of its plan. */
static int adopt_shared(int sock)
{
    static int32_t target[CK_ADOPT_BATCH];
    struct ck_adopt_hdr h;
    adopt_header(sock, &h);
    if (h.count > MAX_RENUMBER)
        die("its preparer in coord sent too many descriptors", 0, h.count);
    nrenum = 0;
    for (uint32_t got = 0, n; got < h.count; got += n) {
        const int *fds = adopt_batch(sock, target, h.count - got, &n);
        for (uint32_t k = 0; k < n; k++) {
            if (target[k] == -1) {
                long r = sys1(NR_fchdir, fds[k]);
                sys_close(fds[k]);
                if (r < 0)
                    die("cannot enter its working directory", 0, r);
                continue;
            }
            renum_from[nrenum] = target[k];
            renum_to[nrenum++] = fds[k];
        }
        adopt_ack(sock);
    }
    sys_close(sock);
    sys1(NR_umask, h.umask & 0777);
    return renumbered(h.plan_fd);
}

/* The plan's descriptors as they are in a shared table (adopt_shared). */
static void renumber_plan(struct ck_plan *p)
{
    p->image_fd = renumbered(p->image_fd);
    p->status_fd = renumbered(p->status_fd);
    p->gate_fd = renumbered(p->gate_fd);
    p->ready_fd = renumbered(p->ready_fd);
    p->err_fd = renumbered(p->err_fd);
    p->progress_fd = renumbered(p->progress_fd);
    p->map_fd = renumbered(p->map_fd);
    struct ck_plan_child *ch = (struct ck_plan_child *)((char *)p + p->children_off);
    for (uint32_t k = 0; k < p->nchildren; k++)
        ch[k].sock = renumbered(ch[k].sock);
    struct ck_plan_region *rg = (struct ck_plan_region *)((char *)p + p->regions_off);
    for (uint32_t k = 0; k < p->nregions; k++)
        rg[k].from_fd = renumbered(rg[k].from_fd);
}

__attribute__((noreturn)) static void run(int plan_fd, int shared);

/* Whether region c of this process and p of its parent are one mapping
 * at fork (what the parent's fork made and neither remapped since): same
 * addresses, both private, both anonymous or the same file at the same
 * offset; nothing the kernel or coord maps apart (shared, SysV, huge
 * pages, droppable, a recreated file). */
static int same_mapping(const struct ck_plan_region *c, const struct ck_plan_region *p)
{
    const uint32_t apart = CK_REG_SHARED | CK_REG_SPECIAL | CK_REG_SYSV | CK_REG_HUGETLB |
                           CK_REG_DROPPABLE;
    const uint32_t same = CK_REG_ANON | CK_REG_FILE | CK_REG_STACK | CK_REG_HEAP |
                          CK_REG_ALLPAGES | CK_REG_DELETED | CK_REG_NORESERVE;
    if (c->start != p->start || c->end != p->end || ((c->flags | p->flags) & apart) ||
        c->from_fd >= 0 || p->from_fd >= 0 || ((c->flags ^ p->flags) & same))
        return 0;
    if ((c->flags & CK_REG_FILE) && !(c->flags & CK_REG_ALLPAGES))
        return c->dev == p->dev && c->ino == p->ino && c->offset == p->offset &&
               c->open_flags == p->open_flags;
    return 1;
}

/* In a child forked after its parent's fill: which of its regions it
 * keeps (kept[]: 2 anonymous, compared as filled; 1 a private file
 * mapping, whose image pages are written), and in those, every range no
 * page record of its own covers goes back to what the mapping holds
 * without them (zero, or the file's page): what the parent had there is
 * not the child's. */
/* 0, or -1 when the list is full: that range is not kept (mapped and
 * filled afresh), which only costs the sharing. */
static int keep_range(uint64_t start, uint64_t end)
{
    if (nkeep_r >= MAX_KEPT)
        return -1;
    keep_r[nkeep_r].start = start;
    keep_r[nkeep_r++].end = end;
    return 0;
}

/* In [lo, hi), kept from the parent: what no page record of this process
 * covers goes back to what the mapping holds without them (zero, or the
 * file's page). */
static void drop_uncovered(uint64_t lo, uint64_t hi)
{
    const struct ck_plan_pagerec *pr =
        (const struct ck_plan_pagerec *)((const char *)plan + plan->pagerecs_off);
    uint64_t a = 0, b = plan->npagerecs;
    while (a < b) { /* the first record that ends after lo */
        uint64_t mid = a + (b - a) / 2;
        if (pr[mid].rec.arg + pr[mid].rec.raw_len <= lo)
            a = mid + 1;
        else
            b = mid;
    }
    uint64_t at = lo;
    for (; a < plan->npagerecs && pr[a].rec.arg < hi; a++) {
        if (pr[a].rec.arg > at)
            sys_madvise(at, pr[a].rec.arg - at, 4 /* MADV_DONTNEED */);
        if (pr[a].rec.arg + pr[a].rec.raw_len > at)
            at = pr[a].rec.arg + pr[a].rec.raw_len;
    }
    if (at < hi)
        sys_madvise(at, hi - at, 4 /* MADV_DONTNEED */);
}

/* Private anonymous memory, which may be kept in part (partial overlaps). */
static int plain_anon(const struct ck_plan_region *r)
{
    return (r->flags & CK_REG_ANON) && r->from_fd < 0 &&
           !(r->flags & (CK_REG_FILE | CK_REG_ALLPAGES | CK_REG_STACK | CK_REG_SHARED |
                         CK_REG_SPECIAL | CK_REG_SYSV | CK_REG_HUGETLB | CK_REG_DROPPABLE));
}

static void reconcile(void)
{
    const struct ck_plan_region *rg = regions();
    const struct ck_plan_region *pg =
        (const struct ck_plan_region *)((const char *)parent_plan + parent_plan->regions_off);
    uint32_t j = 0;
    nkeep_r = 0;
    for (uint32_t i = 0; i < plan->nregions && i < MAX_KEPT; i++) {
        const struct ck_plan_region *c = &rg[i];
        kept[i] = 0;
        while (j < parent_plan->nregions && pg[j].end <= c->start)
            j++;
        if (j < parent_plan->nregions && same_mapping(c, &pg[j])) {
            if (keep_range(c->start, c->end) < 0)
                continue;
            kept[i] = ((c->flags & CK_REG_FILE) && !(c->flags & CK_REG_ALLPAGES)) ? 1 : 2;
            drop_uncovered(c->start, c->end);
        } else if (plain_anon(c)) {
            for (uint32_t k = j; k < parent_plan->nregions && pg[k].start < c->end; k++) {
                if (!plain_anon(&pg[k]) ||
                    ((pg[k].flags ^ c->flags) & (CK_REG_NORESERVE | CK_REG_HEAP)))
                    continue;
                uint64_t s0 = pg[k].start > c->start ? pg[k].start : c->start;
                uint64_t e0 = pg[k].end < c->end ? pg[k].end : c->end;
                if (keep_range(s0, e0) < 0)
                    break;
                drop_uncovered(s0, e0);
                kept[i] = 2;
            }
        }
        nkept += kept[i] != 0;
    }
}

/* The processes of the tree this one forks before its own memory work
 * (struct ck_plan_child): each takes its table from its preparer and
 * runs its own plan; its pid of now goes into the tree's map. */
static void make_children(uint32_t shared)
{
    const struct ck_plan_child *ch =
        (const struct ck_plan_child *)((const char *)plan + plan->children_off);
    for (uint32_t k = 0; k < plan->nchildren; k++) {
        struct ck_plan_child c = ch[k];
        if ((c.flags & CK_CHILD_SHARED) != shared)
            continue;
        long pid;
        uint64_t files = c.flags & CK_CHILD_FILES ? CLONE_FILES : 0;
        if (c.set_tid > 0) {
            int32_t want = c.set_tid;
            uint64_t a[11] = {files, 0, 0, 0, 17 /* SIGCHLD */, 0, 0, 0, (uint64_t)&want, 1, 0};
            pid = sys2(NR_clone3, a, sizeof a);
        } else {
            pid = sys5(NR_clone, files | 17 /* SIGCHLD */, 0, 0, 0, 0);
        }
        if (pid == 0) {
            /* the parent's plan (kept a while by a child that shares its
             * memory), progress page and messages are not ours */
            parent_plan = shared ? plan : 0;
            plan = 0;
            progress = 0;
            status_fd = -1;
            /* err_fd: its parent's, until its own plan is mapped (adopt;
             * in a shared table its parent's stays its parent's) */
            if (c.flags & CK_CHILD_FILES)
                err_fd = -1;
            adopt_vpid = c.vpid;
            fill_next = 0;
            fill_pages_done = 0;
            if (!shared) {
                /* (its grandparent's plan too, if its parent still had
                 * it: forked before its own reconcile) */
                sys_munmap(CK_PLAN_ADDR, CK_PLAN_MAX);
                sys_munmap(CK_PLAN_ADDR2, CK_PLAN_MAX);
                memset(kept, 0, sizeof kept);
                nkept = 0;
                nkeep_r = 0;
            }
            sys_munmap(CK_PROGRESS_ADDR, 4096);
            nrenum = 0;
            if (files)
                run(adopt_shared(c.sock), (int)(shared | CK_CHILD_FILES));
            run(adopt(c.sock), (int)shared);
        }
        if (pid == -11)
            die(about("cannot fork (the user's process limit, ulimit -u, or the system's): "
                      "process", c.vpid), 0, pid);
        if (pid < 0)
            die(about(c.set_tid > 0 ? "cannot fork with its pid: process" : "cannot fork process",
                      c.vpid), 0, pid);
        int32_t now = (int32_t)pid;
        long w = sys4(NR_pwrite64, plan->map_fd, &now, sizeof now, (2 * (uint64_t)c.slot + 1) * 4);
        if (w != (long)sizeof now)
            die("cannot write the tree's pid map", 0, w);
        if (!files) /* (in a shared table the child closes it) */
            sys_close(c.sock);
    }
}

__attribute__((noreturn)) void restorer_main(uint64_t *sp);

__attribute__((noreturn)) void restorer_main(uint64_t *sp)
{
    long argc = (long)sp[0];
    char **argv = (char **)(sp + 1);
    uint64_t all = ~0ULL;
    sys4(NR_rt_sigprocmask, 0 /* SIG_BLOCK */, &all, 0, 8);
    if (argc < 2)
        die("usage: ckshim-restore PLANFD (run by coord restore)", 0, 0);
    run((int)parse_num(argv[1]), 0);
}

__attribute__((noreturn)) static void run(int plan_fd, int shared)
{
    struct ck_plan head;
    long r = sys_pread(plan_fd, &head, sizeof head, 0);
    if (r != (long)sizeof head || head.magic != CK_PLAN_MAGIC || head.size < sizeof head ||
        head.size > CK_PLAN_MAX)
        die("bad plan", 0, r < 0 ? r : 0);
    /* a child that shares its parent's memory: the slot its parent's plan
     * is not in (the depth's parity) */
    int follower = (shared & CK_CHILD_FILES) != 0;
    shared &= CK_CHILD_SHARED;
    uint64_t at = shared && (uint64_t)parent_plan == CK_PLAN_ADDR ? CK_PLAN_ADDR2 : CK_PLAN_ADDR;
    r = sys_mmap(at, head.size, R_PROT_READ | (follower ? R_PROT_WRITE : 0),
                 R_MAP_PRIVATE | R_MAP_FIXED, plan_fd, 0);
    if (r < 0)
        die("cannot map the plan", 0, r);
    if (follower) {
        renumber_plan((struct ck_plan *)at);
        sys_mprotect(at, head.size, R_PROT_READ);
    }
    plan = (const struct ck_plan *)at;
    adopt_vpid = 0;
    status_fd = plan->status_fd;
    /* fd 2 is the program's by now (a log file it appends to): a message
     * goes to coord's stderr, or else only through the status pipe */
    err_fd = plan->err_fd >= 0 ? plan->err_fd : status_fd >= 0 ? -1 : 2;
    /* The progress page lives in the window (the shim unmaps it with the
     * rest); its descriptor must not reach the program. No page: no
     * progress line, the restore goes on. */
    if (plan->progress_fd >= 0 && plan->progress_slot < CK_PROGRESS_SLOTS) {
        r = sys_mmap(CK_PROGRESS_ADDR, 4096, R_PROT_READ | R_PROT_WRITE,
                     R_MAP_SHARED | R_MAP_FIXED, plan->progress_fd, 0);
        if (r >= 0)
            progress = (struct ck_plan_progress *)CK_PROGRESS_ADDR + plan->progress_slot;
    }
    if (plan->progress_fd >= 0)
        sys_close(plan->progress_fd);

    if (plan->test_die_late == 3) /* CKSHIM_TEST_HOOK=restore-die-before-fork:VPID */
        die("test hook: this process ends before it forks its children", 0, 0);
    if (plan->test_die_late == 4) /* CKSHIM_TEST_HOOK=restore-kill-early:VPID */
        sys2(62 /* kill */, sys_getpid(), 9);
    make_children(0);
    /* No way back from here. */
    if (parent_plan) {
        reconcile();
        sys_munmap((uint64_t)parent_plan, CK_PLAN_MAX);
        parent_plan = 0;
    }
    clear_address_space();
    map_regions();
    fill_pages();
    make_children(CK_CHILD_SHARED);
    install_guards();
    set_rlimits();
    if (plan->gate_fd >= 0)
        pass_gate();
    protect_regions();
    set_mm();

    struct ck_restore_info *ri = (struct ck_restore_info *)plan->shim_info_addr;
    if (plan->tree_gate && !plan->shim_info_addr)
        die("the image names no shim to report the process whole", 0, 0);
    if (plan->shim_info_addr) {
        check_target(plan->shim_info_addr, sizeof *ri);
        ri->magic = CK_RESTORE_MAGIC;
        ri->restorer_start = CK_WINDOW_START;
        ri->restorer_end = CK_WINDOW_END;
        ri->status_fd = status_fd;
        ri->new_pid = (int32_t)sys_getpid();
        ri->generation++;
        /* a tree's second barrier: the shim reports once it is whole */
        ri->gate_fd = plan->tree_gate ? plan->gate_fd : -1;
        ri->ready_fd = plan->tree_gate ? plan->ready_fd : -1;
        ri->test_fail_finish = plan->test_die_late == 2;
        ri->err_fd = plan->tree_gate && err_fd != 2 ? err_fd : -1;
        ri->drop_caps = plan->pidns;
        ri->stop_sig = plan->stop_sig;
        ri->map_fd = plan->map_fd;
        ri->fdt_follower = (uint32_t)follower;
    }
    sys_close(plan->image_fd);
    sys_close(plan_fd);

    const struct ck_plan_thread *th = threads();
    const struct ck_plan_thread *main_thread = 0;
    unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                          CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
                          CLONE_CHILD_CLEARTID;
    for (uint32_t i = 0; i < plan->nthreads; i++) {
        if (th[i].flags & CK_TF_MAIN) {
            main_thread = &th[i];
            continue;
        }
        /* The child never uses this stack: it jumps to its park point. */
        uint64_t stack = (th[i].ctx.rsp - 4096) & ~15ULL;
        int *tidp = (int *)th[i].clear_tid_addr;
        unsigned long f = flags & (tidp ? ~0UL : ~(unsigned long)(CLONE_PARENT_SETTID |
                                                                 CLONE_CHILD_CLEARTID));
        long t = -1;
        if (th[i].tid > 0) {
            /* in a pid namespace of its own: the tid it had (coord gave
             * us the capability); any tid if the kernel says no */
            int32_t want = th[i].tid;
            uint64_t a[11] = {f, 0, (uint64_t)tidp, (uint64_t)tidp, 0, stack - 64, 64,
                              th[i].fsbase, (uint64_t)&want, 1, 0};
            t = restorer_clone3(a, sizeof a, &th[i].ctx);
        }
        if (t < 0)
            t = restorer_clone(f, (void *)stack, tidp, tidp, th[i].fsbase, &th[i].ctx);
        if (t == -11) /* EAGAIN: RLIMIT_NPROC (ulimit -u) or the system's thread limit */
            die("cannot create a thread: the user's process/thread limit (ulimit -u, "
                "RLIMIT_NPROC) or the system's (threads-max, pid_max) is reached", 0, t);
        if (t < 0)
            die("cannot create a thread", 0, t);
    }
    if (!main_thread)
        die("image has no main thread", 0, 0);
    if (plan->test_die_late == 1) /* CKSHIM_TEST_HOOK=restore-die-late:VPID (coord) */
        die("test hook: this process ends late in its restore, its threads made", 0, 0);
    if (err_fd >= 0 && err_fd != 2 && !plan->tree_gate)
        sys_close(err_fd); /* else the shim's, until the gate's second step */
    sys_arch_prctl(R_ARCH_SET_FS, main_thread->fsbase);
    restorer_jump(&main_thread->ctx);
}
