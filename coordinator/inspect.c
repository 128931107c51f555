/* inspect.c - "coord inspect": describe an image file (text or JSON). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

#include "auth.h"
#include "chunk.h"
#include "coord.h"
#include "tree.h"
#include "counter.h"
#include "fileid.h"
#include "fdkind.h"
#include "imgio.h"
#include "xxh64.h"

#define RLIM_INF (~(uint64_t)0)
#define FIX(a) (int)strnlen((a), sizeof(a)), (a) /* for "%.*s" on fixed arrays */

static const char *const rlimit_names[CK_NRLIMIT] = {
    "CPU",  "FSIZE", "DATA",       "STACK",    "CORE", "RSS",    "NPROC",  "NOFILE",
    "MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
};

static const char *const itimer_names[3] = {"ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF"};

/* Per-region totals computed from the PAGES records. */
struct region_stat {
    uint64_t pages;
    uint64_t stored;
};

struct view {
    const char *file;
    struct ck_image *img;
    struct region_stat *rs;             /* nregions */
    uint64_t page_pages;                /* pages in PAGES records */
    uint64_t page_stored;               /* their payload bytes */
    uint64_t orphan_pages;              /* pages outside every region */
    uint64_t mapped;                    /* bytes of all regions */
    uint64_t filedata_bytes;
    int verified;
    int auth_checked;                   /* --key given and the MAC verified */
    int counter_ok;                     /* counter_value is valid */
    uint64_t counter_value;             /* the counter's current value */
    char counter_where[300];            /* which counter, or why not */
};

/* ---- names ---- */

static void sig_name(char *buf, size_t len, int sig)
{
    const char *a = sig < SIGRTMIN ? sigabbrev_np(sig) : NULL;
    if (a)
        snprintf(buf, len, "SIG%s", a);
    else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(buf, len, sig == SIGRTMIN ? "SIGRTMIN" : "SIGRTMIN+%d", sig - SIGRTMIN);
    else
        snprintf(buf, len, "SIG%d", sig);
}

static void sa_flag_names(char *buf, size_t len, uint64_t flags)
{
    static const struct {
        uint64_t bit;
        const char *name;
    } names[] = {
        {0x1, "NOCLDSTOP"},         {0x2, "NOCLDWAIT"},        {0x4, "SIGINFO"},
        {0x08000000, "ONSTACK"},    {0x10000000, "RESTART"},   {0x40000000, "NODEFER"},
        {0x80000000, "RESETHAND"},
    };
    buf[0] = '\0';
    size_t o = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(flags & names[i].bit))
            continue;
        int l = snprintf(buf + o, len - o, "%s%s", o ? "|" : "", names[i].name);
        if (l < 0 || (size_t)l >= len - o)
            break;
        o += (size_t)l;
    }
}

static const char *clock_name(int id)
{
    static const char *const names[] = {
        "REALTIME",   "MONOTONIC",       "PROCESS_CPUTIME_ID", "THREAD_CPUTIME_ID",
        "MONOTONIC_RAW", "REALTIME_COARSE", "MONOTONIC_COARSE", "BOOTTIME",
        "REALTIME_ALARM", "BOOTTIME_ALARM", "SGI_CYCLE",        "TAI",
    };
    if (id >= 0 && (size_t)id < sizeof(names) / sizeof(names[0]))
        return names[id];
    return "?";
}

static const char *notify_name(int n)
{
    switch (n) {
    case 0:
        return "signal";
    case 1:
        return "none";
    case 2:
        return "thread";
    case 4:
        return "thread-id";
    default:
        return "?";
    }
}

static const char *region_kind(uint32_t f)
{
    if (f & CK_REG_SPECIAL)
        return "special";
    if (f & CK_REG_HEAP)
        return "heap";
    if (f & CK_REG_STACK)
        return "stack";
    if (f & CK_REG_SYSV)
        return "sysv";
    if (f & CK_REG_DELETED)
        return "deleted";
    if (f & CK_REG_SHARED)
        return "shared";
    if (f & CK_REG_FILE)
        return "file";
    return "anon";
}

/* The madvise, mlock and mmap flags a region is restored with, e.g.
 * "dontfork,dontdump". */
static void advice(char *buf, size_t len, uint32_t f, const char *sep)
{
    static const struct {
        uint32_t flag;
        const char *name;
    } names[] = {{CK_REG_DONTFORK, "dontfork"},     {CK_REG_WIPEONFORK, "wipeonfork"},
                 {CK_REG_DONTDUMP, "dontdump"},     {CK_REG_HUGEPAGE, "hugepage"},
                 {CK_REG_NOHUGEPAGE, "nohugepage"}, {CK_REG_MERGEABLE, "mergeable"},
                 {CK_REG_SEQUENTIAL, "sequential"}, {CK_REG_RANDOM, "random"},
                 {CK_REG_LOCKED, "locked"},         {CK_REG_NORESERVE, "noreserve"},
                 {CK_REG_DROPPABLE, "droppable"},   {CK_REG_GUARDS, "guards"},
                 {CK_REG_HUGETLB, "hugetlb"}};
    size_t n = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]) && n < len; i++)
        if (f & names[i].flag)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? sep : "", names[i].name);
}

static void perms(char *buf, uint32_t prot, uint32_t flags)
{
    buf[0] = (prot & PROT_READ) ? 'r' : '-';
    buf[1] = (prot & PROT_WRITE) ? 'w' : '-';
    buf[2] = (prot & PROT_EXEC) ? 'x' : '-';
    buf[3] = (flags & CK_REG_SHARED) ? 's' : 'p';
    buf[4] = '\0';
}

static const char *fd_kind(uint32_t k)
{
    const struct ck_fdkind *kind = ck_fdkind_of(k);
    if (kind)
        return kind->name;
    return k == CK_FD_UNSUPPORTED ? "unsupported" : "?";
}

static void fd_flags(char *buf, size_t len, const struct ck_fd *f)
{
    const char *acc;
    switch (f->oflags & O_ACCMODE) {
    case O_RDONLY:
        acc = "r";
        break;
    case O_WRONLY:
        acc = "w";
        break;
    default:
        acc = "rw";
        break;
    }
    snprintf(buf, len, "%s%s%s%s%s", acc, (f->oflags & O_APPEND) ? ",append" : "",
             (f->oflags & O_NONBLOCK) ? ",nonblock" : "", (f->oflags & O_DIRECT) ? ",direct" : "",
             (f->fdflags & FD_CLOEXEC) ? ",cloexec" : "");
}

/* ISO-8601 local time with the UTC offset, e.g. 2024-05-01T12:34:56+02:00. */
static void iso_time(char *buf, size_t len, uint64_t ns)
{
    time_t t = (time_t)(ns / 1000000000ULL);
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        snprintf(buf, len, "?");
        return;
    }
    char base[40], off[8];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(off, sizeof(off), "%z", &tm); /* +0200 */
    if (strlen(off) == 5)
        snprintf(buf, len, "%s%.3s:%.2s", base, off, off + 3);
    else
        snprintf(buf, len, "%s", base);
}

/* The region holding addr, or -1. */
static int region_of(const struct ck_image *img, uint64_t addr)
{
    for (uint32_t i = 0; i < img->nregions; i++)
        if (addr >= img->regions[i].start && addr < img->regions[i].end)
            return (int)i;
    return -1;
}

/* " (path+0xoff)" for an address inside a file mapping, else "". */
static void addr_where(char *buf, size_t len, const struct ck_image *img, uint64_t addr)
{
    buf[0] = '\0';
    int r = region_of(img, addr);
    if (r < 0)
        return;
    const struct ck_region *g = &img->regions[r];
    const char *path = img->region_paths ? img->region_paths[r] : "";
    if (!path || !*path)
        return;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (g->flags & CK_REG_FILE)
        snprintf(buf, len, " (%s+0x%llx)", base,
                 (unsigned long long)(addr - g->start + g->offset));
    else
        snprintf(buf, len, " (%s)", path);
}

/* ---- text-mode safety: strings from an image must not drive the terminal ---- */

static void clean(char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            s[i] = '?';
}
#define CLEAN(a) clean((a), sizeof(a))

static void clean_image(struct ck_image *img)
{
    CLEAN(img->hdr.app_id);
    CLEAN(img->hdr.kernel);
    CLEAN(img->hdr.machine);
    CLEAN(img->hdr.glibc);
    CLEAN(img->hdr.hostname);
    CLEAN(img->hdr.exe);
    CLEAN(img->proc.comm);
    CLEAN(img->proc.cwd);
    CLEAN(img->proc.exe);
    for (uint32_t i = 0; i < img->nthreads; i++) {
        CLEAN(img->threads[i].comm);
        for (int f = 0; f < CK_MAX_FRAMES; f++)
            CLEAN(img->threads[i].frames[f].name);
    }
    for (uint32_t i = 0; img->region_paths && i < img->nregions; i++)
        if (img->region_paths[i])
            clean(img->region_paths[i], (size_t)-1);
    for (uint32_t i = 0; img->fd_paths && i < img->nfds; i++)
        if (img->fd_paths[i] && img->fds[i].kind != CK_FD_EPOLL) /* see epoll_watches */
            clean(img->fd_paths[i], (size_t)-1);
}

/* An epoll fd's "path" is its watch list, one "TFD EVENTS DATA[ HOLDER]"
 * line per watch (fds/epoll.c): shown as "watches fd 4 (in), fd 6 (in
 * out et)". Only numbers are taken from it, so nothing in it can drive
 * the terminal. */
static void epoll_watches(const char *list, char *out, size_t len)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } evs[] = {{0x001, "in"},     {0x002, "pri"},      {0x004, "out"},   {0x008, "err"},
               {0x010, "hup"},    {0x2000, "rdhup"},   {1u << 28, "exclusive"},
               {1u << 29, "wakeup"}, {1u << 30, "oneshot"}, {1u << 31, "et"}};
    size_t o = (size_t)snprintf(out, len, "watches");
    int n = 0;
    for (const char *p = list; p && *p && o < len; n++) {
        long tfd, holder;
        unsigned long long events, data;
        int used = 0;
        if (sscanf(p, "%ld %llx %llx%n", &tfd, &events, &data, &used) != 3)
            break;
        p += used;
        holder = tfd;
        if (*p == ' ')
            holder = strtol(p, (char **)&p, 10);
        o += (size_t)snprintf(out + o, len - o, "%s fd %ld (", n ? "," : "", tfd);
        int any = 0;
        for (size_t k = 0; k < sizeof evs / sizeof evs[0] && o < len; k++)
            if (events & evs[k].bit)
                o += (size_t)snprintf(out + o, len - o, "%s%s", any++ ? " " : "", evs[k].name);
        if (holder != tfd && o < len)
            o += (size_t)snprintf(out + o, len - o, "; the file fd %ld holds", holder);
        if (o < len)
            o += (size_t)snprintf(out + o, len - o, ")");
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (n == 0)
        snprintf(out, len, "watches nothing");
}

/* ---- statistics ---- */

static int cmp_u32_by_start(const void *a, const void *b, void *arg)
{
    const struct ck_region *r = arg;
    uint64_t x = r[*(const uint32_t *)a].start, y = r[*(const uint32_t *)b].start;
    return (x > y) - (x < y);
}

static int compute(struct view *v)
{
    struct ck_image *img = v->img;
    v->rs = calloc(img->nregions ? img->nregions : 1, sizeof(*v->rs));
    uint32_t *order = calloc(img->nregions ? img->nregions : 1, sizeof(*order));
    if (!v->rs || !order) {
        free(order);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < img->nregions; i++) {
        order[i] = i;
        v->mapped += img->regions[i].end - img->regions[i].start;
    }
    qsort_r(order, img->nregions, sizeof(*order), cmp_u32_by_start, img->regions);
    for (uint64_t p = 0; p < img->npagerecs; p++) {
        const struct ck_rec *rec = &img->pages[p].rec;
        uint64_t np = rec->raw_len / CK_PAGE_SIZE;
        v->page_pages += np;
        v->page_stored += rec->len;
        /* binary search: last region starting at or below the address */
        size_t lo = 0, hi = img->nregions;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (img->regions[order[mid]].start <= rec->arg)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0 && rec->arg < img->regions[order[lo - 1]].end) {
            v->rs[order[lo - 1]].pages += np;
            v->rs[order[lo - 1]].stored += rec->len;
        } else {
            v->orphan_pages += np;
        }
    }
    for (uint32_t i = 0; i < img->nfiledata; i++)
        v->filedata_bytes += img->filedata[i].rec.raw_len;
    free(order);
    return 0;
}

static double ratio(uint64_t raw, uint64_t stored)
{
    return stored ? (double)raw / (double)stored : 0.0;
}

/* ---- text ---- */

/* What the counter's value means for this image (restore's rule). */
static const char *stamp_verdict(uint64_t stamp, uint64_t cur)
{
    switch (ck_stamp_state(stamp, cur)) {
    case CK_STAMP_CURRENT:
        return " (this image is the newest: it restores)";
    case CK_STAMP_PENDING:
        return " (this image is the newest; its checkpoint ended before advancing the counter: "
               "it restores)";
    case CK_STAMP_STALE:
        return " (stale: restore would be refused)";
    default:
        return " (ahead of the counter: another counter? restore would be refused)";
    }
}

static void text_header(const struct view *v)
{
    const struct ck_header *h = &v->img->hdr;
    char sz[32], when[64];
    printf("image %s: ckshim image format %u.%u, %s\n", v->file, h->version_major,
           h->version_minor, ck_fmt_bytes(sz, sizeof(sz), v->img->file_size));
    printf("  app id        %.*s\n", FIX(h->app_id));
    if (h->counter_stamp)
        printf("  stamp         %llu\n", (unsigned long long)h->counter_stamp);
    else
        printf("  stamp         none%s\n", (h->flags & CK_HF_COUNTER_NONE) ? " (--counter none)" : "");
    if (v->counter_ok)
        printf("  counter       %llu at %s%s\n", (unsigned long long)v->counter_value,
               v->counter_where,
               !h->counter_stamp ? "" : stamp_verdict(h->counter_stamp, v->counter_value));
    else if (v->counter_where[0])
        printf("  counter       unavailable: %s\n", v->counter_where);
    if (h->flags & CK_HF_MAC)
        printf("  security      authenticated (key id %02x%02x%02x%02x)%s%s\n", h->key_id[0],
               h->key_id[1], h->key_id[2], h->key_id[3],
               (h->flags & CK_HF_ENCRYPTED) ? ", page data encrypted" : "",
               v->auth_checked ? ": signature verified with the given key" : "");
    else
        printf("  security      checksums only (no key)\n");
    iso_time(when, sizeof(when), h->created_ns);
    printf("  created       %s\n", when);
    printf("  orig pid      %u%s\n", h->orig_pid,
           (h->flags & CK_HF_PIDNS) ? " (in a pid namespace of its own: restored in a new one "
                                      "with this pid)" : "");
    printf("  uid/gid       %u/%u\n", h->uid, h->gid);
    printf("  kernel        %.*s %.*s\n", FIX(h->kernel), FIX(h->machine));
    printf("  glibc         %.*s\n", FIX(h->glibc));
    printf("  hostname      %.*s\n", FIX(h->hostname));
    printf("  exe           %.*s\n", FIX(h->exe));
    printf("  threads       %u\n", h->nthreads);
    if (h->flags & CK_HF_STOPPED)
        printf("  stopped       by %s when taken (restored stopped)\n",
               strsignal((int)h->stop_sig));
}

static void text_process(const struct view *v)
{
    const struct ck_image *img = v->img;
    const struct ck_proc *p = &img->proc;
    char buf[400], where[256];
    printf("\nprocess\n");
    printf("  comm          %.*s\n", FIX(p->comm));
    printf("  pid/ppid      %u/%u (pgid %u, sid %u)\n", p->pid, p->ppid, p->pgid, p->sid);
    printf("  cwd           %.*s\n", FIX(p->cwd));
    printf("  umask         %04o\n", p->umask);
    const struct ck_pattr *a = &p->attr;
    printf("  attributes    oom_score_adj %d, dumpable %d%s%s, timer slack %llu ns",
           a->oom_score_adj, a->dumpable, a->flags & CK_PA_SUBREAPER ? ", child subreaper" : "",
           a->flags & CK_PA_NO_NEW_PRIVS ? ", no_new_privs" : "",
           (unsigned long long)a->timerslack_ns);
    if (a->pdeathsig)
        printf(", parent-death signal %d", a->pdeathsig);
    if (a->thp_disable)
        printf(", THP disabled (%d)", a->thp_disable);
    if (a->membarrier)
        printf(", membarrier registrations %#x", a->membarrier);
    for (uint32_t i = 0; i < a->naio && i < CK_MAX_AIO; i++)
        printf(", AIO context %#llx (%u events, head %u, tail %u)",
               (unsigned long long)a->aio[i].addr, a->aio[i].nr, a->aio[i].head, a->aio[i].tail);
    printf("\n");
    printf("  brk           0x%llx-0x%llx (%s)\n", (unsigned long long)p->mm.start_brk,
           (unsigned long long)p->mm.brk,
           ck_fmt_bytes(buf, sizeof(buf),
                        p->mm.brk > p->mm.start_brk ? p->mm.brk - p->mm.start_brk : 0));
    for (int i = 0; i < CK_NRLIMIT; i++) {
        const struct ck_rlimit *r = &p->rlim[i];
        if (r->cur == RLIM_INF && r->max == RLIM_INF)
            continue;
        char cur[32], max[32];
        if (r->cur == RLIM_INF)
            snprintf(cur, sizeof(cur), "unlimited");
        else
            snprintf(cur, sizeof(cur), "%llu", (unsigned long long)r->cur);
        if (r->max == RLIM_INF)
            snprintf(max, sizeof(max), "unlimited");
        else
            snprintf(max, sizeof(max), "%llu", (unsigned long long)r->max);
        printf("  rlimit %-10s soft %s, hard %s\n", rlimit_names[i], cur, max);
    }
    int nsig = 0;
    for (int s = 1; s < CK_NSIG; s++) {
        const struct ck_sigaction *sa = &p->sigact[s];
        if (sa->handler == 0 && (int)s != (int)p->ckpt_signal)
            continue;
        if (nsig++ == 0)
            printf("  signals:\n");
        char name[32], fl[128];
        sig_name(name, sizeof(name), s);
        sa_flag_names(fl, sizeof(fl), sa->flags);
        if (sa->handler == 0)
            snprintf(buf, sizeof(buf), "default");
        else if (sa->handler == 1)
            snprintf(buf, sizeof(buf), "ignored");
        else {
            addr_where(where, sizeof(where), img, sa->handler);
            snprintf(buf, sizeof(buf), "handler 0x%llx%s", (unsigned long long)sa->handler, where);
        }
        printf("    %-13s %s", name, buf);
        if (sa->handler > 1) {
            printf(", flags %s", fl[0] ? fl : "0");
            if (sa->mask)
                printf(", mask 0x%llx", (unsigned long long)sa->mask);
        }
        if ((uint32_t)s == p->ckpt_signal)
            printf("  [ckshim checkpoint signal]");
        printf("\n");
    }
    for (int i = 0; i < 3; i++) {
        const struct ck_itimer *t = &p->itimer[i];
        if (!t->value_sec && !t->value_usec && !t->interval_sec && !t->interval_usec)
            continue;
        printf("  %-14s next in %lld.%06lld s, interval %lld.%06lld s\n", itimer_names[i],
               (long long)t->value_sec, (long long)t->value_usec, (long long)t->interval_sec,
               (long long)t->interval_usec);
    }
    uint32_t nt = p->ntimers < CK_MAX_TIMERS ? p->ntimers : CK_MAX_TIMERS;
    for (uint32_t i = 0; i < nt; i++) {
        const struct ck_ptimer *t = &p->timers[i];
        char sn[32] = "";
        if (t->notify != 1)
            sig_name(sn, sizeof(sn), t->signo);
        printf("  timer %-3d     CLOCK_%s, notify %s%s%s", t->id, clock_name(t->clockid),
               notify_name(t->notify), sn[0] ? " " : "", sn);
        if (t->notify == 4)
            printf(" to tid %d", t->target_tid);
        printf(", next in %.6f s, interval %.6f s\n", (double)t->value_ns / 1e9,
               (double)t->interval_ns / 1e9);
    }
}

static void text_memory(const struct view *v)
{
    const struct ck_image *img = v->img;
    char sz[32], sz2[32];
    printf("\nmemory: %u regions, %s mapped\n", img->nregions,
           ck_fmt_bytes(sz, sizeof(sz), v->mapped));
    printf("  %-33s %-5s %-8s %8s %10s  %s\n", "START-END", "PERMS", "KIND", "PAGES", "STORED",
           "PATH");
    for (uint32_t i = 0; i < img->nregions; i++) {
        const struct ck_region *g = &img->regions[i];
        char pm[8];
        perms(pm, g->prot, g->flags);
        const char *path = img->region_paths ? img->region_paths[i] : "";
        char adv[192];
        advice(adv, sizeof(adv), g->flags, " ");
        printf("  %016llx-%016llx %-5s %-8s %8llu %10s  %s%s%s%s%s%s%s\n",
               (unsigned long long)g->start, (unsigned long long)g->end, pm,
               region_kind(g->flags), (unsigned long long)v->rs[i].pages,
               ck_fmt_bytes(sz, sizeof(sz), v->rs[i].stored), path ? path : "",
               (g->flags & CK_REG_SHIM) ? " [shim]" : "",
               (g->flags & CK_REG_DELETED) ? " (deleted)" : "",
               (g->flags & CK_REG_SAVED) ? " [file saved]" : "", adv[0] ? " [" : "", adv,
               adv[0] ? "]" : "");
    }
    uint64_t raw = v->page_pages * CK_PAGE_SIZE;
    printf("  total: %llu pages (%s) stored in %s, compression ratio %.2f\n",
           (unsigned long long)v->page_pages, ck_fmt_bytes(sz, sizeof(sz), raw),
           ck_fmt_bytes(sz2, sizeof(sz2), v->page_stored), ratio(raw, v->page_stored));
    if (v->orphan_pages)
        printf("  warning: %llu pages lie outside every region\n",
               (unsigned long long)v->orphan_pages);
}

static void text_threads(const struct view *v)
{
    const struct ck_image *img = v->img;
    char where[256];
    printf("\nthreads: %u\n", img->nthreads);
    for (uint32_t i = 0; i < img->nthreads; i++) {
        const struct ck_thread *t = &img->threads[i];
        const char *role = (t->flags & CK_TF_MAIN)      ? "main"
                           : (t->flags & CK_TF_MANAGER) ? "manager"
                                                        : "thread";
        printf("  tid %u (%s) \"%.*s\"  ip 0x%llx  sp 0x%llx  sigmask 0x%llx\n", t->tid, role,
               FIX(t->comm), (unsigned long long)t->user_ip, (unsigned long long)t->user_sp,
               (unsigned long long)t->sigmask);
        uint32_t nf = t->nframes < CK_MAX_FRAMES ? t->nframes : CK_MAX_FRAMES;
        for (uint32_t f = 0; f < nf; f++) {
            const struct ck_frame *fr = &t->frames[f];
            if (fr->name[0]) {
                int r = region_of(img, fr->ip);
                const char *lib = r >= 0 && img->region_paths ? img->region_paths[r] : NULL;
                const char *base = lib ? strrchr(lib, '/') : NULL;
                base = base ? base + 1 : lib;
                printf("    #%-2u 0x%016llx %.*s+0x%llx%s%s%s\n", f, (unsigned long long)fr->ip,
                       FIX(fr->name), (unsigned long long)fr->off, base && *base ? " (" : "",
                       base && *base ? base : "", base && *base ? ")" : "");
            } else {
                addr_where(where, sizeof(where), img, fr->ip);
                printf("    #%-2u 0x%016llx ??%s\n", f, (unsigned long long)fr->ip, where);
            }
        }
    }
}

const char *ck_lock_describe(char *buf, size_t len, const struct ck_lock *k)
{
    static const char *const kinds[] = {"?", "flock", "POSIX", "OFD", "lease", "lease"};
    const char *kind = kinds[k->kind <= CK_LOCK_LEASE_BREAKING ? k->kind : 0];
    const char *type = k->write ? "write" : "read";
    if (k->kind == CK_LOCK_LEASE)
        snprintf(buf, len, "%s lease", type);
    else if (k->kind == CK_LOCK_LEASE_BREAKING)
        snprintf(buf, len, "%s lease being broken (to %s)", type, k->start ? "read" : "none");
    else if (k->kind == CK_LOCK_FLOCK)
        snprintf(buf, len, "%s %s lock on the whole file", kind, type);
    else if (k->len == 0)
        snprintf(buf, len, "%s %s lock on bytes %lld to the end", kind, type,
                 (long long)k->start);
    else
        snprintf(buf, len, "%s %s lock on bytes %lld-%lld", kind, type, (long long)k->start,
                 (long long)(k->start + k->len - 1));
    return buf;
}

/* Terminal modes in a few words: "raw", "no echo", ... */
static const char *tty_modes(char *buf, size_t len, const struct ck_tty *y)
{
    snprintf(buf, len, "%s%s%s", (y->lflag & ICANON) ? "line mode" : "raw (no line editing)",
             (y->lflag & ECHO) ? ", echo" : ", no echo",
             (y->lflag & ISIG) ? "" : ", no signal keys");
    return buf;
}

static void text_fds(const struct view *v)
{
    const struct ck_image *img = v->img;
    printf("\nfds: %u\n", img->nfds);
    if (img->nfds)
        printf("  %4s %-11s %-22s %10s  %s\n", "FD", "KIND", "FLAGS", "POS", "PATH");
    for (uint32_t i = 0; i < img->nfds; i++) {
        const struct ck_fd *f = &img->fds[i];
        char fl[64], extra[128] = "";
        fd_flags(fl, sizeof(fl), f);
        size_t o = 0;
        if (f->share_with >= 0)
            o += (size_t)snprintf(extra + o, sizeof(extra) - o, " [shares fd %d]", f->share_with);
        if ((f->flags & CK_FDF_EXTERNAL) && o < sizeof(extra))
            o += (size_t)snprintf(extra + o, sizeof(extra) - o, " [external]");
        if ((f->flags & CK_FDF_STD_REDIRECT) && o < sizeof(extra))
            o += (size_t)snprintf(extra + o, sizeof(extra) - o, " [coord's own]");
        if ((f->flags & CK_FDF_DELETED) && o < sizeof(extra))
            o += (size_t)snprintf(extra + o, sizeof(extra) - o, " [deleted]");
        if ((f->flags & CK_FDF_WRITER_GONE) && o < sizeof(extra))
            o += (size_t)snprintf(extra + o, sizeof(extra) - o, " [writers gone: end of file "
                                  "after its bytes]");
        /* written files at their checkpoint version (fds/file.c) */
        if (f->kind == CK_FD_FILE && f->hash_kind == CK_HASH_VER_LENGTH && o < sizeof(extra))
            o += (size_t)snprintf(extra + o, sizeof(extra) - o, " [version: length %llu]",
                                  (unsigned long long)f->size);
        if (f->kind == CK_FD_FILE && f->hash_kind == CK_HASH_VER_CONTENT && o < sizeof(extra))
            o += (size_t)snprintf(extra + o, sizeof(extra) - o, " [version: %llu bytes saved]",
                                  (unsigned long long)f->size);
        if (f->kind == CK_FD_FILE && f->hash_kind == CK_HASH_VER_TOOBIG && o < sizeof(extra))
            o += (size_t)snprintf(extra + o, sizeof(extra) - o, " [too big for a version]");
        const char *path = img->fd_paths ? img->fd_paths[i] : "";
        char watches[512];
        if (f->kind == CK_FD_EPOLL && f->share_with < 0) {
            epoll_watches(path, watches, sizeof watches);
            path = watches;
        }
        printf("  %4d %-11s %-22s %10lld  %s%s\n", f->fd, fd_kind(f->kind), fl, (long long)f->pos,
               path ? path : "", extra);
        const struct ck_fdkind *kind = ck_fdkind_of(f->kind);
        if (kind && kind->describe && f->share_with < 0) {
            char line[512];
            const struct ck_fdstate_ref *st = img->fdstate ? &img->fdstate[i] : NULL;
            kind->describe(f, st ? st->data : NULL, st ? st->len : 0, line, sizeof line);
            printf("  %4s %s\n", "", line);
        }
        char d[128];
        for (uint32_t k = 0; k < img->nlocks; k++)
            if (img->locks[k].fd == f->fd)
                printf("  %4s holds a %s\n", "", ck_lock_describe(d, sizeof d, &img->locks[k]));
        for (uint32_t k = 0; k < img->nttys; k++) {
            const struct ck_tty *y = &img->ttys[k];
            if (y->fd == f->fd)
                printf("  %4s terminal: %s, %ux%u\n", "", tty_modes(d, sizeof d, y), y->ws_col,
                       y->ws_row);
        }
    }
    if (img->nfiledata) {
        char sz[32];
        printf("  saved file contents: %u records, %s\n", img->nfiledata,
               ck_fmt_bytes(sz, sizeof(sz), v->filedata_bytes));
    }
}

static void print_text(const struct view *v)
{
    text_header(v);
    text_process(v);
    text_memory(v);
    text_threads(v);
    text_fds(v);
    const struct ck_end *e = &v->img->end;
    char a[32], b[32];
    printf("\nrecords: %llu (+ END), %s decoded, %s stored, ratio %.2f\n",
           (unsigned long long)e->nrecords, ck_fmt_bytes(a, sizeof(a), e->raw_bytes),
           ck_fmt_bytes(b, sizeof(b), e->stored_bytes), ratio(e->raw_bytes, e->stored_bytes));
}

/* ---- JSON ---- */

static void json_limit(struct ck_json *j, const char *key, uint64_t v)
{
    if (v == RLIM_INF)
        ck_json_kstr(j, key, "unlimited");
    else
        ck_json_ku64(j, key, v);
}

static void print_json(const struct view *v)
{
    const struct ck_image *img = v->img;
    const struct ck_header *h = &img->hdr;
    const struct ck_proc *p = &img->proc;
    struct ck_json j;
    char buf[256];
    ck_json_init(&j, stdout);
    ck_json_open(&j, NULL, '{');
    ck_json_kstr(&j, "file", v->file);
    ck_json_ku64(&j, "file_size", img->file_size);

    ck_json_open(&j, "header", '{');
    snprintf(buf, sizeof(buf), "%u.%u", h->version_major, h->version_minor);
    ck_json_kstr(&j, "format_version", buf);
    ck_json_kstrn(&j, "app_id", h->app_id, sizeof(h->app_id));
    ck_json_ku64(&j, "stamp", h->counter_stamp);
    if (v->counter_ok) {
        ck_json_ku64(&j, "counter_value", v->counter_value);
        ck_json_kstr(&j, "counter", v->counter_where);
    } else if (v->counter_where[0]) {
        ck_json_knull(&j, "counter_value");
        ck_json_kstr(&j, "counter_error", v->counter_where);
    }
    ck_json_ku64(&j, "flags", h->flags);
    ck_json_kbool(&j, "authenticated", (h->flags & CK_HF_MAC) != 0);
    ck_json_kbool(&j, "encrypted", (h->flags & CK_HF_ENCRYPTED) != 0);
    ck_json_kbool(&j, "signature_verified", v->auth_checked);
    ck_json_ku64(&j, "created_ns", h->created_ns);
    iso_time(buf, sizeof(buf), h->created_ns);
    ck_json_kstr(&j, "created", buf);
    ck_json_ku64(&j, "orig_pid", h->orig_pid);
    ck_json_kbool(&j, "pid_namespace", (h->flags & CK_HF_PIDNS) != 0);
    ck_json_ku64(&j, "stop_signal", (h->flags & CK_HF_STOPPED) ? h->stop_sig : 0);
    ck_json_ku64(&j, "uid", h->uid);
    ck_json_ku64(&j, "gid", h->gid);
    ck_json_kstrn(&j, "kernel", h->kernel, sizeof(h->kernel));
    ck_json_kstrn(&j, "machine", h->machine, sizeof(h->machine));
    ck_json_kstrn(&j, "glibc", h->glibc, sizeof(h->glibc));
    ck_json_kstrn(&j, "hostname", h->hostname, sizeof(h->hostname));
    ck_json_kstrn(&j, "exe", h->exe, sizeof(h->exe));
    ck_json_ku64(&j, "threads", h->nthreads);
    ck_json_close(&j, '}');

    ck_json_open(&j, "process", '{');
    ck_json_kstrn(&j, "comm", p->comm, sizeof(p->comm));
    ck_json_ku64(&j, "pid", p->pid);
    ck_json_ku64(&j, "ppid", p->ppid);
    ck_json_ku64(&j, "pgid", p->pgid);
    ck_json_ku64(&j, "sid", p->sid);
    ck_json_ku64(&j, "uid", p->uid);
    ck_json_ku64(&j, "gid", p->gid);
    ck_json_kstrn(&j, "cwd", p->cwd, sizeof(p->cwd));
    ck_json_kstrn(&j, "exe", p->exe, sizeof(p->exe));
    snprintf(buf, sizeof(buf), "%04o", p->umask);
    ck_json_kstr(&j, "umask", buf);
    ck_json_khex(&j, "start_brk", p->mm.start_brk);
    ck_json_khex(&j, "brk", p->mm.brk);
    ck_json_open(&j, "rlimits", '[');
    for (int i = 0; i < CK_NRLIMIT; i++) {
        const struct ck_rlimit *r = &p->rlim[i];
        if (r->cur == RLIM_INF && r->max == RLIM_INF)
            continue;
        ck_json_open(&j, NULL, '{');
        ck_json_kstr(&j, "name", rlimit_names[i]);
        json_limit(&j, "soft", r->cur);
        json_limit(&j, "hard", r->max);
        ck_json_close(&j, '}');
    }
    ck_json_close(&j, ']');
    ck_json_open(&j, "signals", '[');
    for (int s = 1; s < CK_NSIG; s++) {
        const struct ck_sigaction *sa = &p->sigact[s];
        if (sa->handler == 0)
            continue;
        ck_json_open(&j, NULL, '{');
        ck_json_ku64(&j, "signo", (uint64_t)s);
        sig_name(buf, sizeof(buf), s);
        ck_json_kstr(&j, "name", buf);
        if (sa->handler == 1) {
            ck_json_kstr(&j, "disposition", "ignore");
        } else {
            ck_json_kstr(&j, "disposition", "handler");
            ck_json_khex(&j, "handler", sa->handler);
        }
        ck_json_khex(&j, "flags", sa->flags);
        sa_flag_names(buf, sizeof(buf), sa->flags);
        ck_json_kstr(&j, "flag_names", buf);
        ck_json_khex(&j, "mask", sa->mask);
        ck_json_kbool(&j, "ckshim", (uint32_t)s == p->ckpt_signal);
        ck_json_close(&j, '}');
    }
    ck_json_close(&j, ']');
    ck_json_ku64(&j, "ckpt_signal", p->ckpt_signal);
    ck_json_open(&j, "itimers", '[');
    for (int i = 0; i < 3; i++) {
        const struct ck_itimer *t = &p->itimer[i];
        if (!t->value_sec && !t->value_usec && !t->interval_sec && !t->interval_usec)
            continue;
        ck_json_open(&j, NULL, '{');
        ck_json_kstr(&j, "which", itimer_names[i]);
        ck_json_ki64(&j, "value_us", t->value_sec * 1000000 + t->value_usec);
        ck_json_ki64(&j, "interval_us", t->interval_sec * 1000000 + t->interval_usec);
        ck_json_close(&j, '}');
    }
    ck_json_close(&j, ']');
    ck_json_open(&j, "timers", '[');
    uint32_t nt = p->ntimers < CK_MAX_TIMERS ? p->ntimers : CK_MAX_TIMERS;
    for (uint32_t i = 0; i < nt; i++) {
        const struct ck_ptimer *t = &p->timers[i];
        ck_json_open(&j, NULL, '{');
        ck_json_ki64(&j, "id", t->id);
        snprintf(buf, sizeof(buf), "CLOCK_%s", clock_name(t->clockid));
        ck_json_kstr(&j, "clock", buf);
        ck_json_kstr(&j, "notify", notify_name(t->notify));
        ck_json_ki64(&j, "signo", t->signo);
        ck_json_ki64(&j, "target_tid", t->target_tid);
        ck_json_ki64(&j, "value_ns", t->value_ns);
        ck_json_ki64(&j, "interval_ns", t->interval_ns);
        ck_json_close(&j, '}');
    }
    ck_json_close(&j, ']');
    ck_json_close(&j, '}');

    ck_json_open(&j, "regions", '[');
    for (uint32_t i = 0; i < img->nregions; i++) {
        const struct ck_region *g = &img->regions[i];
        char pm[8];
        perms(pm, g->prot, g->flags);
        ck_json_open(&j, NULL, '{');
        ck_json_khex(&j, "start", g->start);
        ck_json_khex(&j, "end", g->end);
        ck_json_kstr(&j, "perms", pm);
        ck_json_kstr(&j, "kind", region_kind(g->flags));
        ck_json_khex(&j, "flags", g->flags);
        ck_json_kbool(&j, "shim", (g->flags & CK_REG_SHIM) != 0);
        char adv[192];
        advice(adv, sizeof(adv), g->flags, ",");
        ck_json_kstr(&j, "advice", adv);
        ck_json_kbool(&j, "file_saved", (g->flags & CK_REG_SAVED) != 0);
        ck_json_ku64(&j, "offset", g->offset);
        ck_json_ku64(&j, "pages", v->rs[i].pages);
        ck_json_ku64(&j, "stored_bytes", v->rs[i].stored);
        ck_json_kstr(&j, "path", img->region_paths ? img->region_paths[i] : "");
        ck_json_close(&j, '}');
    }
    ck_json_close(&j, ']');
    ck_json_open(&j, "memory", '{');
    ck_json_ku64(&j, "regions", img->nregions);
    ck_json_ku64(&j, "mapped_bytes", v->mapped);
    ck_json_ku64(&j, "pages", v->page_pages);
    ck_json_ku64(&j, "page_bytes", v->page_pages * CK_PAGE_SIZE);
    ck_json_ku64(&j, "stored_bytes", v->page_stored);
    ck_json_kdouble(&j, "ratio", ratio(v->page_pages * CK_PAGE_SIZE, v->page_stored));
    ck_json_ku64(&j, "page_records", img->npagerecs);
    ck_json_close(&j, '}');

    ck_json_open(&j, "threads", '[');
    for (uint32_t i = 0; i < img->nthreads; i++) {
        const struct ck_thread *t = &img->threads[i];
        ck_json_open(&j, NULL, '{');
        ck_json_ku64(&j, "tid", t->tid);
        ck_json_kbool(&j, "main", (t->flags & CK_TF_MAIN) != 0);
        ck_json_kbool(&j, "manager", (t->flags & CK_TF_MANAGER) != 0);
        ck_json_kstrn(&j, "comm", t->comm, sizeof(t->comm));
        ck_json_khex(&j, "ip", t->user_ip);
        ck_json_khex(&j, "sp", t->user_sp);
        ck_json_khex(&j, "sigmask", t->sigmask);
        ck_json_open(&j, "frames", '[');
        uint32_t nf = t->nframes < CK_MAX_FRAMES ? t->nframes : CK_MAX_FRAMES;
        for (uint32_t f = 0; f < nf; f++) {
            const struct ck_frame *fr = &t->frames[f];
            ck_json_open(&j, NULL, '{');
            ck_json_khex(&j, "ip", fr->ip);
            ck_json_kstrn(&j, "name", fr->name, sizeof(fr->name));
            ck_json_ku64(&j, "off", fr->off);
            ck_json_close(&j, '}');
        }
        ck_json_close(&j, ']');
        ck_json_close(&j, '}');
    }
    ck_json_close(&j, ']');

    ck_json_open(&j, "fds", '[');
    for (uint32_t i = 0; i < img->nfds; i++) {
        const struct ck_fd *f = &img->fds[i];
        char fl[64];
        fd_flags(fl, sizeof(fl), f);
        ck_json_open(&j, NULL, '{');
        ck_json_ki64(&j, "fd", f->fd);
        ck_json_kstr(&j, "kind", fd_kind(f->kind));
        ck_json_kstr(&j, "flags", fl);
        ck_json_ku64(&j, "oflags", f->oflags);
        ck_json_ki64(&j, "pos", f->pos);
        ck_json_ki64(&j, "share_with", f->share_with);
        ck_json_kbool(&j, "external", (f->flags & CK_FDF_EXTERNAL) != 0);
        ck_json_kbool(&j, "std_redirect", (f->flags & CK_FDF_STD_REDIRECT) != 0);
        ck_json_kbool(&j, "deleted", (f->flags & CK_FDF_DELETED) != 0);
        ck_json_kbool(&j, "writers_gone", (f->flags & CK_FDF_WRITER_GONE) != 0);
        snprintf(buf, sizeof(buf), "%o", f->mode);
        ck_json_kstr(&j, "mode", buf);
        ck_json_ku64(&j, "size", f->size);
        ck_json_ku64(&j, "aux", f->aux);
        ck_json_kstr(&j, "path", img->fd_paths ? img->fd_paths[i] : "");
        ck_json_open(&j, "locks", '[');
        for (uint32_t k = 0; k < img->nlocks; k++) {
            const struct ck_lock *l = &img->locks[k];
            static const char *const kinds[] = {"?", "flock", "posix", "ofd", "lease",
                                                "lease-breaking"};
            if (l->fd != f->fd)
                continue;
            ck_json_open(&j, NULL, '{');
            ck_json_kstr(&j, "kind", kinds[l->kind <= CK_LOCK_LEASE_BREAKING ? l->kind : 0]);
            ck_json_kstr(&j, "type", l->write ? "write" : "read");
            ck_json_ki64(&j, "start", l->start);
            ck_json_ki64(&j, "len", l->len);
            ck_json_close(&j, '}');
        }
        ck_json_close(&j, ']');
        for (uint32_t k = 0; k < img->nttys; k++) {
            const struct ck_tty *y = &img->ttys[k];
            if (y->fd != f->fd)
                continue;
            ck_json_open(&j, "terminal", '{');
            ck_json_khex(&j, "iflag", y->iflag);
            ck_json_khex(&j, "oflag", y->oflag);
            ck_json_khex(&j, "cflag", y->cflag);
            ck_json_khex(&j, "lflag", y->lflag);
            ck_json_ku64(&j, "rows", y->ws_row);
            ck_json_ku64(&j, "cols", y->ws_col);
            ck_json_close(&j, '}');
        }
        ck_json_close(&j, '}');
    }
    ck_json_close(&j, ']');
    ck_json_open(&j, "filedata", '{');
    ck_json_ku64(&j, "records", img->nfiledata);
    ck_json_ku64(&j, "bytes", v->filedata_bytes);
    ck_json_close(&j, '}');

    ck_json_open(&j, "end", '{');
    ck_json_ku64(&j, "records", img->end.nrecords);
    ck_json_ku64(&j, "pages", img->end.npages);
    ck_json_ku64(&j, "raw_bytes", img->end.raw_bytes);
    ck_json_ku64(&j, "stored_bytes", img->end.stored_bytes);
    ck_json_close(&j, '}');
    ck_json_kbool(&j, "verified", v->verified);
    if (v->verified)
        ck_json_ku64(&j, "records_verified", img->end.nrecords + 1);
    ck_json_close(&j, '}');
    ck_json_end(&j);
}

/* --verify: decode the pages of every region marked MADV_DONTFORK or
 * MADV_WIPEONFORK and compare them with the witness the program took of
 * them while it was parked (struct ck_memcheck): same number of non-zero
 * pages, same sum of their hashes. ck_image_read already checked the
 * page counts; this catches pages that are there but hold the wrong
 * bytes. key: to decrypt an encrypted image (NULL: the check is skipped,
 * *skipped set). Returns 0, or -1 with the reason in err. */
static int verify_memcheck(int fd, const struct ck_image *img, const struct ck_key *key,
                           int *skipped, char *err, size_t errlen)
{
    *skipped = 0;
    if (!img->nmemcheck)
        return 0;
    if ((img->hdr.flags & CK_HF_ENCRYPTED) && !key) {
        *skipped = 1;
        return 0;
    }
    struct ck_recbuf rb = {0};
    const struct ck_key *dkey = (img->hdr.flags & CK_HF_ENCRYPTED) ? key : NULL;
    int rc = 0;
    for (uint32_t m = 0; rc == 0 && m < img->nmemcheck; m++) {
        const struct ck_memcheck *w = &img->memcheck[m];
        const struct ck_region *g = &img->regions[w->region];
        uint64_t nonzero = 0, sum = 0;
        for (uint64_t i = 0; rc == 0 && i < img->npagerecs; i++) {
            const struct ck_rec_loc *loc = &img->pages[i];
            const struct ck_rec *rec = &loc->rec;
            if (rec->arg < g->start || rec->arg >= g->end)
                continue;
            if (ck_rec_load(fd, loc, dkey, &img->hdr, 0, &rb) < 0) {
                snprintf(err, errlen, "cannot read or decode the PAGES record at %#llx",
                         (unsigned long long)rec->arg);
                rc = -1;
                break;
            }
            const uint8_t *out = rb.out;
            for (uint64_t off = 0; off < rec->raw_len; off += CK_PAGE_SIZE) {
                const uint8_t *pg = out + off;
                uint8_t any = 0;
                for (size_t b = 0; b < CK_PAGE_SIZE; b++)
                    any |= pg[b];
                if (!any)
                    continue;
                nonzero++;
                sum += ck_xxh64(pg, CK_PAGE_SIZE, rec->arg + off);
            }
        }
        if (rc == 0 && (nonzero != w->nonzero_pages || sum != w->hash_sum)) {
            snprintf(err, errlen, "memory region %#llx-%#llx (%s): %llu non-zero pages at "
                     "checkpoint, %llu in the image%s: its contents were not saved as they were",
                     (unsigned long long)g->start, (unsigned long long)g->end,
                     (w->flags & CK_REG_DONTFORK) ? "MADV_DONTFORK" : "MADV_WIPEONFORK",
                     (unsigned long long)w->nonzero_pages, (unsigned long long)nonzero,
                     nonzero == w->nonzero_pages ? " with other contents" : "");
            rc = -1;
        }
    }
    ck_recbuf_free(&rb);
    return rc;
}

/* Inspect the image stream at fd's position (a single-process image, or
 * process ti of a tree image th with entries te, checked against its
 * entry). Returns an exit code. */
static int inspect_one(int fd, const char *file, int json, int verify, const char *key_file,
                       const char *counter_url, const struct ck_tree_hdr *th,
                       const struct ck_tree_entry *te, uint32_t ti)
{
    char err[512] = "";
    struct ck_image img;
    memset(&img, 0, sizeof(img));
    int r = ck_image_read(fd, &img, verify ? CK_READ_VERIFY_PAGES : 0, err, sizeof(err));
    if (r < 0) {
        ck_msg("inspect %s: %s", file, err[0] ? err : strerror(-r));
        return CK_EXIT_FAIL;
    }
    if (th && ck_tree_check_stream(th, te, ti, &img.hdr, img.file_size, err, sizeof err) < 0) {
        ck_msg("inspect %s: %s", file, err);
        ck_image_free(&img);
        return CK_EXIT_FAIL;
    }
    int auth_checked = 0, mc_skipped = 0;
    struct ck_key key;
    memset(&key, 0, sizeof(key));
    if (key_file) {
        if (ck_auth_init() < 0 || ck_key_load(key_file, &key, err, sizeof(err)) < 0 ||
            ck_image_authenticate_at(fd, th ? te[ti].offset : 0, &key, NULL, err,
                                     sizeof(err)) < 0) {
                ck_key_wipe(&key);
            ck_msg("inspect %s: %s", file, err);
            ck_image_free(&img);
            return CK_EXIT_FAIL;
        }
        auth_checked = 1;
    }
    if (verify && verify_memcheck(fd, &img, key_file ? &key : NULL, &mc_skipped, err,
                                  sizeof(err)) < 0) {
        ck_key_wipe(&key);
        ck_msg("inspect %s: %s", file, err);
        ck_image_free(&img);
        return CK_EXIT_FAIL;
    }
    ck_key_wipe(&key);
    struct view v;
    memset(&v, 0, sizeof(v));
    v.file = file;
    v.img = &img;
    v.verified = verify;
    v.auth_checked = auth_checked;
    struct ck_counter counter;
    char cerr[300];
    if (ck_counter_parse(counter_url, &counter, cerr, sizeof cerr) < 0) {
        snprintf(v.counter_where, sizeof v.counter_where, "%s", cerr);
    } else if (counter.kind != CK_COUNTER_NONE) {
        /* (a process of a tree: the tree's counter, which its stamp is
         * of, not one under the process's own app id) */
        char id[sizeof img.hdr.app_id + 1];
        memcpy(id, th ? th->app_id : img.hdr.app_id, sizeof img.hdr.app_id);
        id[sizeof img.hdr.app_id] = 0;
        if (ck_counter_get(&counter, id, &v.counter_value, cerr, sizeof cerr) == 0) {
            v.counter_ok = 1;
            ck_counter_describe(&counter, v.counter_where, sizeof v.counter_where);
        } else {
            snprintf(v.counter_where, sizeof v.counter_where, "%s", cerr);
        }
    }
    if (compute(&v) < 0) {
        ck_msg("inspect %s: out of memory", file);
        ck_image_free(&img);
        return CK_EXIT_FAIL;
    }
    if (json)
        print_json(&v);
    else {
        clean_image(&img);
        print_text(&v);
    }
    if (verify) {
        FILE *out = json ? stderr : stdout;
        fflush(stdout);
        fprintf(out, "image OK: %llu records verified\n",
                (unsigned long long)img.end.nrecords + 1);
        if (img.nmemcheck)
            fprintf(out, "%u region%s marked MADV_DONTFORK/WIPEONFORK %s\n", img.nmemcheck,
                    img.nmemcheck == 1 ? "" : "s",
                    mc_skipped ? "not compared with the program's witness (encrypted: give --key)"
                               : "match what the program held");
    }
    free(v.rs);
    ck_image_free(&img);
    return CK_EXIT_OK;
}
int cmd_inspect(int argc, char **argv)
{
    const char *file = NULL;
    int json = 0, verify = 0, opts_done = 0;
    const char *counter_url = getenv("CKSHIM_COUNTER");
    const char *key_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1] != '\0') {
            int r = ck_opt_value("inspect", argc, argv, &i, "--counter", NULL, &counter_url);
            if (r == 0)
                r = ck_opt_value("inspect", argc, argv, &i, "--key", NULL, &key_file);
            if (r < 0)
                return CK_EXIT_USAGE;
            if (r > 0) {
                i--; /* the loop moves on */
                continue;
            }
            if (strcmp(a, "--json") == 0)
                json = 1;
            else if (strcmp(a, "--verify") == 0)
                verify = 1;
            else if (strcmp(a, "--") == 0)
                opts_done = 1;
            else
                return ck_usage_error("inspect", "unknown option '%s'", a);
            continue;
        }
        if (file)
            return ck_usage_error("inspect", "unexpected argument '%s'", a);
        file = a;
    }
    if (!file)
        return ck_usage_error("inspect", "missing FILE");

    char err[512] = "";
    int fd = ck_open_regular(file, O_RDONLY, err, sizeof err);
    if (fd < 0) {
        ck_msg("inspect %s: %s", file, err);
        return CK_EXIT_FAIL;
    }
    struct ck_tree_hdr th;
    struct ck_tree_entry *te = NULL;
    struct ck_tree_sharetab tst;
    int tr = ck_tree_read_hdr(fd, &th, &te, &tst, err, sizeof err);
    const struct ck_tree_share *ts = tst.s;
    if (tr < 0) {
        close(fd);
        ck_msg("inspect %s: %s", file, err);
        return CK_EXIT_FAIL;
    }
    if (tr == 0) {
        int rc = inspect_one(fd, file, json, verify, key_file, counter_url, NULL, NULL, 0);
        close(fd);
        return rc;
    }
    /* An authenticated tree: its MAC first (over the header and every
     * stream's MAC; inspect_one checks each stream's again as it goes). */
    if (key_file) {
        struct ck_key key;
        uint8_t *macs = calloc(th.nprocs, CK_DIGEST_BYTES);
        int kr = !macs || ck_auth_init() < 0 || ck_key_load(key_file, &key, err, sizeof err) < 0;
        for (uint32_t i = 0; !kr && i < th.nprocs; i++)
            kr = !(te[i].flags & CK_TREE_ZOMBIE) &&
                 ck_image_authenticate_at(fd, te[i].offset, &key, macs + i * CK_DIGEST_BYTES,
                                          err, sizeof err) < 0;
        kr = kr || ck_tree_check_mac(&th, te, &tst, macs, &key, err, sizeof err) < 0;
        ck_key_wipe(&key);
        free(macs);
        if (kr) {
            ck_msg("inspect %s: %s", file, err);
            free(te);
            close(fd);
            return CK_EXIT_FAIL;
        }
    }
    if (ck_tree_check_shares(&th, &tst, err, sizeof err) < 0) {
        ck_msg("inspect %s: %s", file, err);
        free(te);
        free(tst.s);
        close(fd);
        return CK_EXIT_FAIL;
    }
    /* A process tree: the tree, then each process's image as for one. */
    if (json) {
        printf("{\"tree\": {\"processes\": %u, \"app_id\": ", th.nprocs);
        ck_json_strn(stdout, th.app_id, sizeof th.app_id);
        printf(", \"counter_stamp\": %llu}, \"images\": [\n",
               (unsigned long long)th.counter_stamp);
    } else {
        printf("process tree: %u processes, app id %.*s, stamp %llu\n", th.nprocs,
               (int)sizeof th.app_id, th.app_id, (unsigned long long)th.counter_stamp);
        for (uint32_t i = 0; i < th.nprocs; i++) {
            if (te[i].flags & CK_TREE_ZOMBIE)
                printf("  pid %d (pid %d at checkpoint), child of %d: exited (wait status "
                       "%#llx), not yet waited for\n", te[i].vpid, te[i].real_pid,
                       te[te[i].parent].vpid, (unsigned long long)te[i].length);
            else if (te[i].parent < 0)
                printf("  pid %d (pid %d at checkpoint), the root%s%s\n", te[i].vpid,
                       te[i].real_pid, (te[i].flags & CK_TREE_STOPPED) ? ", stopped by " : "",
                       (te[i].flags & CK_TREE_STOPPED)
                           ? strsignal((int)(te[i].flags >> 8 & 0xff))
                           : "");
            else {
                printf("  pid %d (pid %d at checkpoint), %s %d%s%s", te[i].vpid,
                       te[i].real_pid,
                       (te[i].flags & CK_TREE_ORPHAN)
                           ? "orphan (adopted outside the tree when its parent exited), made "
                             "again by"
                           : "child of",
                       te[te[i].parent].vpid,
                       (te[i].flags & CK_TREE_STOPPED) ? ", stopped by " : "",
                       (te[i].flags & CK_TREE_STOPPED) ? strsignal((int)(te[i].flags >> 8 & 0xff))
                                                       : "");
                if (te[i].ctty > 0)
                    printf(", leads the session of pseudo-terminal /dev/pts/%d (foreground "
                           "group %d)", te[i].ctty - 1, te[i].fg_pgid);
                if (te[i].flags & CK_TREE_FILES)
                    printf(", shares its parent's descriptor table (CLONE_FILES)");
                printf("\n");
            }
        }
        /* one line per open file description several processes hold */
        for (uint64_t k = 0; k < tst.n; k++) {
            int first = 1;
            for (uint64_t j = 0; j < k && first; j++)
                first = ts[j].group != ts[k].group;
            if (!first)
                continue;
            printf("  shared:");
            for (uint64_t j = k; j < tst.n; j++)
                if (ts[j].group == ts[k].group)
                    printf(" pid %d fd %d", te[ts[j].proc].vpid, ts[j].fd);
            printf(" (one open file description)\n");
        }
    }
    free(tst.s);
    int rc = CK_EXIT_OK;
    for (uint32_t i = 0; i < th.nprocs && rc == CK_EXIT_OK; i++) {
        if (te[i].flags & CK_TREE_ZOMBIE)
            continue;
        fflush(stdout);
        if (!json)
            printf("\n== process %d ==\n", te[i].vpid);
        else if (i)
            printf(",\n");
        fflush(stdout);
        if (lseek(fd, (off_t)te[i].offset, SEEK_SET) < 0) {
            ck_msg("inspect %s: %s", file, strerror(errno));
            rc = CK_EXIT_FAIL;
            break;
        }
        rc = inspect_one(fd, file, json, verify, key_file, counter_url, &th, te, i);
    }
    if (json)
        printf("]}\n");
    free(te);
    close(fd);
    return rc;
}
