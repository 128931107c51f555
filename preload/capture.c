/* capture.c - record the process state while its threads are parked.
 *
 * /proc is the truth: memory regions from /proc/self/maps, descriptors
 * from /proc/self/fd and fdinfo, timers from /proc/self/timers. The shim's
 * own bookkeeping adds what /proc cannot tell (the program's handler for
 * the checkpoint signal, the ids the program saw before a restore).
 *
 * Runs with every other thread parked at an arbitrary point, possibly
 * inside malloc: nothing here may allocate from the heap or take a libc
 * lock. Buffers are mmap'd once.
 */
#include <asm/prctl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <asm/termbits.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <signal.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fdkind.h"
#include "fileid.h"
#include "procparse.h"
#include "rawsys.h"
#include "shim.h"
#include "socket.h"
#include "unix.h"
#include "xxh64.h"

#define MAPS_BUF (4u << 20)

static char *maps_buf;

int shim_skip_fds[4] = {-1, -1, -1, -1};
/* Copies of descriptors in flight kept while a checkpoint captures them */
static int shim_inflight[SHIM_MAX_FDS];
static int shim_ninflight;

static int alloc_buffers(void)
{
    if (g_shim.threads)
        return 0;
    size_t tsz = sizeof(struct ck_thread) * CK_MAX_THREADS;
    size_t rsz = sizeof(struct ck_region) * SHIM_MAX_REGIONS;
    size_t fsz = sizeof(struct ck_fd) * SHIM_MAX_FDS;
    size_t msz = sizeof(struct ck_memcheck) * SHIM_MAX_REGIONS;
    size_t total = tsz + rsz + fsz + SHIM_STRTAB + MAPS_BUF + msz;
    char *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    g_shim.threads = (struct ck_thread *)p;
    g_shim.regions = (struct ck_region *)(p + tsz);
    g_shim.fds = (struct ck_fd *)(p + tsz + rsz);
    g_shim.strtab = p + tsz + rsz + fsz;
    maps_buf = p + tsz + rsz + fsz + SHIM_STRTAB;
    g_shim.memcheck = (struct ck_memcheck *)(maps_buf + MAPS_BUF);
    return 0;
}

static uint32_t strtab_add(const char *s, uint32_t *ret_len)
{
    size_t n = strlen(s);
    if (g_shim.strtab_len + n + 1 > SHIM_STRTAB)
        n = 0;
    uint32_t off = g_shim.strtab_len;
    memcpy(g_shim.strtab + off, s, n);
    g_shim.strtab[off + n] = 0;
    g_shim.strtab_len += (uint32_t)n + 1;
    *ret_len = (uint32_t)n;
    return off;
}

static void ts_to_ns(const struct timespec *ts, int64_t *ns)
{
    *ns = (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

/* POSIX timers from /proc/self/timers ("ID:", "signal:", "notify:",
 * "ClockID:" lines), with their current settings from timer_gettime. */
static void capture_timers(struct ck_proc *p)
{
    char buf[16384];
    p->ntimers = 0;
    if (shim_read_file("/proc/self/timers", buf, sizeof buf) <= 0)
        return;
    struct ck_ptimer *t = NULL;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (!strncmp(line, "ID: ", 4)) {
            if (p->ntimers >= CK_MAX_TIMERS)
                break;
            t = &p->timers[p->ntimers++];
            memset(t, 0, sizeof *t);
            t->id = atoi(line + 4);
            t->notify = SIGEV_SIGNAL;
        } else if (t && !strncmp(line, "signal: ", 8)) {
            char *slash;
            t->signo = (int)strtol(line + 8, &slash, 10);
            if (*slash == '/')
                t->sival = strtoull(slash + 1, NULL, 16);
        } else if (t && !strncmp(line, "notify: ", 8)) {
            /* "signal/pid.N", "none/pid.N", or ".../tid.N" for
             * SIGEV_THREAD_ID (a thread-directed timer: the shim's
             * SIGEV_THREAD timers, timers.c) */
            const char *n = line + 8;
            t->notify = !strncmp(n, "none", 4) ? SIGEV_NONE : SIGEV_SIGNAL;
            if (strstr(n, "/tid."))
                t->notify = SIGEV_THREAD_ID;
            const char *dot = strchr(n, '.');
            if (dot)
                t->target_tid = atoi(dot + 1);
        } else if (t && !strncmp(line, "ClockID: ", 9)) {
            t->clockid = atoi(line + 9);
        }
        line = nl ? nl + 1 : NULL;
    }
    for (uint32_t i = 0; i < p->ntimers; i++) {
        struct itimerspec its;
        if (syscall(SYS_timer_gettime, p->timers[i].id, &its) == 0) {
            ts_to_ns(&its.it_value, &p->timers[i].value_ns);
            ts_to_ns(&its.it_interval, &p->timers[i].interval_ns);
        }
        /* Targets are real tids now; the image keeps what the program saw. */
        for (int k = 0; k < g_shim.nslots; k++)
            if (g_shim.slots[k].tid == p->timers[i].target_tid)
                p->timers[i].target_tid = g_shim.slots[k].vtid;
    }
}

extern struct ck_sigaction shim_app_ckpt_action;

static int capture_proc(char *err, size_t errlen)
{
    struct ck_proc *p = &g_shim.proc;
    char buf[8192];
    memset(p, 0, sizeof *p);
    p->pid = (uint32_t)(g_shim.vpid ? g_shim.vpid : shim_real_getpid());
    p->ppid = (uint32_t)getppid();
    /* as the tree knows them (a restored tree's groups have new ids) */
    p->pgid = (uint32_t)shim_pgrp_virt((pid_t)syscall(SYS_getpgid, 0));
    p->sid = (uint32_t)shim_sid_virt((pid_t)syscall(SYS_getsid, 0));
    p->uid = getuid();
    p->gid = getgid();
    mode_t m = umask(0);
    umask(m);
    p->umask = m;
    p->ckpt_signal = (uint32_t)g_shim.ckpt_signal;
    p->shim_info_addr = (uint64_t)&g_shim.rinfo;

    int n = shim_read_file("/proc/self/stat", buf, sizeof buf);
    if (n <= 0 || ck_parse_stat_mm(buf, (size_t)n, &p->mm) < 0) {
        snprintf(err, errlen, "cannot parse /proc/self/stat");
        return -EIO;
    }
    p->mm.brk = (uint64_t)syscall(SYS_brk, 0);
    int fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r = read(fd, p->auxv, sizeof p->auxv);
        p->auxv_bytes = r > 0 ? (uint32_t)r : 0;
        close(fd);
    }
    for (int i = 0; i < CK_NRLIMIT; i++) {
        struct rlimit rl;
        if (getrlimit((__rlimit_resource_t)i, &rl) == 0) {
            p->rlim[i].cur = rl.rlim_cur;
            p->rlim[i].max = rl.rlim_max;
        }
    }
    for (int s = 1; s < CK_NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP)
            continue;
        if (s == g_shim.ckpt_signal) {
            p->sigact[s] = shim_app_ckpt_action;
            continue;
        }
        syscall(SYS_rt_sigaction, s, NULL, &p->sigact[s], 8);
    }
    for (int w = 0; w < 3; w++) {
        struct itimerval it;
        if (getitimer(w, &it) == 0) {
            p->itimer[w].interval_sec = it.it_interval.tv_sec;
            p->itimer[w].interval_usec = it.it_interval.tv_usec;
            p->itimer[w].value_sec = it.it_value.tv_sec;
            p->itimer[w].value_usec = it.it_value.tv_usec;
        }
    }
    capture_timers(p);
    ssize_t l = readlink("/proc/self/cwd", p->cwd, sizeof p->cwd - 1);
    p->cwd[l > 0 ? l : 0] = 0;
    l = readlink("/proc/self/exe", p->exe, sizeof p->exe - 1);
    p->exe[l > 0 ? l : 0] = 0;
    /* A restored process's /proc/self/exe names the restorer: keep the
     * program's own. */
    if (g_shim.exe[0])
        snprintf(p->exe, sizeof p->exe, "%s", g_shim.exe);
    else
        snprintf(g_shim.exe, sizeof g_shim.exe, "%s", p->exe);
    shim_read_file("/proc/self/comm", p->comm, sizeof p->comm);
    p->comm[strcspn(p->comm, "\n")] = 0;
    return pattr_capture(p, err, errlen);
}

/* Lines of a /proc file read in pieces into buf (no allocation): maps
 * fits in one read, smaps of a large process does not. A line is valid
 * until the next call. */
struct lines {
    int fd;
    char *buf;
    size_t cap, len, pos;
};

static int lines_open(struct lines *l, const char *path, char *buf, size_t cap)
{
    l->fd = open(path, O_RDONLY | O_CLOEXEC);
    l->buf = buf;
    l->cap = cap;
    l->len = l->pos = 0;
    return l->fd < 0 ? -errno : 0;
}

static char *lines_next(struct lines *l)
{
    for (;;) {
        char *s = l->buf + l->pos, *nl = memchr(s, '\n', l->len - l->pos);
        if (nl) {
            *nl = 0;
            l->pos = (size_t)(nl + 1 - l->buf);
            return s;
        }
        memmove(l->buf, s, l->len - l->pos);
        l->len -= l->pos;
        l->pos = 0;
        ssize_t r = l->len + 1 < l->cap ? read(l->fd, l->buf + l->len, l->cap - 1 - l->len) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (!l->len)
                return NULL;
            l->buf[l->len] = 0;         /* last line without '\n', or too long */
            l->pos = l->len;
            return l->buf;
        }
        l->len += (size_t)r;
    }
}

#define VMF_IO 0x80000000u              /* VM_IO or VM_PFNMAP: not readable memory */

/* The VmFlags of an smaps entry that matter here, as CK_REG_* bits. */
static uint32_t vmflags_parse(const char *s)
{
    static const struct {
        char name[3];
        uint32_t flag;
    } names[] = {
        {"dc", CK_REG_DONTFORK},   {"wf", CK_REG_WIPEONFORK},  {"dd", CK_REG_DONTDUMP},
        {"hg", CK_REG_HUGEPAGE},   {"nh", CK_REG_NOHUGEPAGE},  {"mg", CK_REG_MERGEABLE},
        {"sr", CK_REG_SEQUENTIAL}, {"rr", CK_REG_RANDOM},      {"lo", CK_REG_LOCKED},
        {"nr", CK_REG_NORESERVE},  {"dp", CK_REG_DROPPABLE},   {"mw", CK_REG_MAYWRITE},
        {"gu", CK_REG_GUARDS},     {"io", VMF_IO},             {"pf", VMF_IO},
        {"ht", CK_REG_HUGETLB},
    };
    uint32_t f = 0;
    for (s += 8; *s; s++) {
        if (s[0] == ' ' || !s[1])
            continue;
        for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
            if (s[0] == names[i].name[0] && s[1] == names[i].name[1])
                f |= names[i].flag;
        s++;
    }
    return f;
}

/* Flags that alone do not make the pause read smaps (they are kept when
 * it is read anyway): MAP_NORESERVE is on every glibc malloc arena and
 * only matters for strict overcommit accounting; MADV_NOHUGEPAGE is on
 * every thread stack glibc 2.36 makes (the shim's manager thread too), and
 * is a hint; "mw" is on every region mapped from a file open for writing
 * and matters only where mprotect could add PROT_WRITE (see the prescan). */
#define VMF_CHEAP (CK_REG_NORESERVE | CK_REG_NOHUGEPAGE | CK_REG_MAYWRITE)

static int is_kernel_special(const char *path)
{
    return !strcmp(path, "[vdso]") || !strcmp(path, "[vvar]") ||
           !strcmp(path, "[vvar_vclock]") || !strcmp(path, "[vsyscall]");
}

/* Before the threads are parked (the program still runs): does any region
 * carry a VmFlag that capture must see? Only then is smaps, which costs
 * about 13 ms per GiB of resident memory, read again while the program is
 * parked; /proc/self/maps does not show these flags. A flag set between
 * this scan and the pause is caught by the writer (capture_check_fork_child)
 * and fails the checkpoint loudly. Once seen, smaps is always read. */
void capture_vmflags_prescan(void)
{
    if (alloc_buffers() < 0) {
        g_shim.vmflags_seen = 1;
        return;
    }
    /* (the program runs and may fork: a held descriptor, shim.c) */
    struct lines l = {.fd = shim_held_open("/proc/self/smaps"), .buf = maps_buf,
                      .cap = MAPS_BUF};
    if (l.fd < 0) {
        g_shim.vmflags_seen = 1;
        return;
    }
    int special = 0, shared_ro_file = 0;
    for (char *line; (line = lines_next(&l));) {
        if (!strncmp(line, "VmFlags:", 8)) {
            /* the kernel's own mappings are not saved: their flags ([vvar]
             * is "pf io dd") do not count */
            uint32_t f = special ? 0 : vmflags_parse(line);
            if ((f & ~VMF_CHEAP) || (shared_ro_file && (f & CK_REG_MAYWRITE)))
                g_shim.vmflags_seen = 1;
        } else if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
            const char *sp = strrchr(line, ' ');
            special = sp && is_kernel_special(sp + 1);
            /* "start-end r--s offset dev inode /path": a shared file
             * mapping without PROT_WRITE (maps_file_prot) */
            const char *perm = strchr(line, ' ');
            shared_ro_file = perm && perm[2] == '-' && perm[4] == 's' && strchr(line, '/');
        }
    }
    shim_held_release();
}

/* A file mapped shared whose name maps shows as deleted may still be
 * linked under another name in the same directory: glibc's sem_open makes
 * /dev/shm/sem.XXXXXX, maps it and links it as the semaphore's name
 * before it removes the first (Python multiprocessing's locks with the
 * spawn and forkserver methods, whose children open the name). Its other
 * name, in out (a static buffer: the capture runs on one thread and must
 * not allocate), or NULL. At most 4096 entries are looked at. */
/* (one file mapped many times over is looked up once per capture: the
 * last answer, found or not, for its inode and the path maps shows;
 * parse_regions forgets it) */
static uint64_t other_last_ino;

static const char *other_name(const struct ck_maps_entry *e)
{
    static char out[4096];
    static uint64_t last_dev;
    static char last_path[4096];
    static int last_found;
    uint64_t *last_ino = &other_last_ino;
    uint64_t dev = makedev(e->dev_major, e->dev_minor);
    if (*last_ino == e->ino && last_dev == dev && !strcmp(last_path, e->path))
        return last_found ? out : NULL;
    *last_ino = e->ino;
    last_dev = dev;
    snprintf(last_path, sizeof last_path, "%s", e->path);
    last_found = 0;
    const char *slash = strrchr(e->path, '/');
    if (!slash || slash == e->path || (size_t)(slash - e->path) >= sizeof out - 256)
        return NULL;
    size_t dl = (size_t)(slash - e->path);
    memcpy(out, e->path, dl);
    out[dl] = 0;
    int d = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return NULL;
    char buf[8192];
    const char *found = NULL;
    long n;
    int seen = 0;
    while (!found && seen < 4096 && (n = syscall(SYS_getdents64, d, buf, sizeof buf)) > 0)
        for (long off = 0; off < n && !found; seen++) {
            struct dirent64 *de = (struct dirent64 *)(buf + off);
            off += de->d_reclen;
            struct stat st;
            if (de->d_ino != e->ino || strlen(de->d_name) + dl + 2 > sizeof out ||
                fstatat(d, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
                st.st_ino != e->ino || major(st.st_dev) != e->dev_major ||
                minor(st.st_dev) != e->dev_minor)
                continue;
            out[dl] = '/';
            strcpy(out + dl + 1, de->d_name);
            found = out;
        }
    close(d);
    last_found = found != NULL;
    return found;
}

/* A region backed by the file e->path: its identity, or its bytes when
 * the file is gone. A file mapped many times over (maps06: 10240 mappings
 * of one file) is looked up once and its path stored once: *last is the
 * previous file region. */
static int file_region(struct ck_region *r, const struct ck_maps_entry *e,
                       const struct ck_region **last, char *err, size_t errlen)
{
    const char *path = e->path;
    const struct ck_region *l = *last;
    r->flags |= CK_REG_FILE;
    *last = r;
    if (l && l->ino == e->ino && l->dev == makedev(e->dev_major, e->dev_minor) &&
        !(l->flags & CK_REG_DELETED) == !e->deleted && !strcmp(path, g_shim.strtab + l->path_off)) {
        r->flags |= l->flags & (CK_REG_DELETED | CK_REG_ALLPAGES);
        r->dev = l->dev;
        r->ino = l->ino;
        r->fsize = l->fsize;
        r->mtime_ns = l->mtime_ns;
        r->mode = l->mode;
        r->ctime_ns = l->ctime_ns;
        r->flags |= l->flags & CK_REG_SAVED;
        r->path_off = l->path_off;
        r->path_len = l->path_len;
        return 0;
    }
    struct stat st;
    const char *alive = e->deleted && e->shared ? other_name(e) : NULL;
    if (alive)
        path = alive; /* mapped again by that name: still shared with who opens it */
    int same = (!e->deleted || alive) && stat(path, &st) == 0 && st.st_ino == e->ino &&
               major(st.st_dev) == e->dev_major && minor(st.st_dev) == e->dev_minor;
    if (same && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "memory region %#llx-%#llx maps device %s, which cannot "
                 "be restored", (unsigned long long)e->start, (unsigned long long)e->end, path);
        return -ENOTSUP;
    }
    /* A file we may not read (an executable mode 0111, run by exec) cannot
     * be mapped again: a private mapping of it is kept whole, like a
     * deleted file's; a shared one is refused */
    int unreadable = same && (st.st_mode & 0444) != 0444 && access(path, R_OK) < 0;
    if (unreadable && (r->flags & CK_REG_SHARED)) {
        snprintf(err, errlen, "memory region %#llx-%#llx is a shared mapping of %s, which "
                 "cannot be opened for reading any more", (unsigned long long)e->start,
                 (unsigned long long)e->end, path);
        return -ENOTSUP;
    }
    if (same && !unreadable) {
        r->dev = st.st_dev;
        r->ino = st.st_ino;
        r->fsize = (uint64_t)st.st_size;
        r->mode = st.st_mode;
        ts_to_ns(&st.st_mtim, &r->mtime_ns);
        ts_to_ns(&st.st_ctim, &r->ctime_ns);
        /* content hash: by the writer (dump.c), not while paused */
        if ((uint64_t)st.st_size <= CK_SAVE_MAX && st.st_uid == getuid() &&
            ck_in_temp_dir(path, getenv("TMPDIR")))
            r->flags |= CK_REG_SAVED;
    } else {
        /* Deleted or replaced since it was mapped (or unreadable): keep
         * its bytes. dev/ino from maps let restore find an fd of the same
         * file. */
        r->flags |= CK_REG_DELETED | CK_REG_ALLPAGES;
        r->dev = makedev(e->dev_major, e->dev_minor);
        r->ino = e->ino;
    }
    r->path_off = strtab_add(path, &r->path_len);
    if (r->path_len != strlen(path)) {
        snprintf(err, errlen, "the paths of the memory regions exceed %u bytes", SHIM_STRTAB);
        return -ENOTSUP;
    }
    return 0;
}

/* The region lines of maps or smaps; VmFlags lines (smaps) add flags to
 * the region before them. */
static int parse_regions(struct lines *l, char *err, size_t errlen)
{
    struct ck_proc *p = &g_shim.proc;
    const struct ck_region *last_file = NULL;
    other_last_ino = 0;
    g_shim.nregions = 0;
    for (char *line; (line = lines_next(l));) {
        if (!strncmp(line, "VmFlags:", 8)) {
            struct ck_region *r = g_shim.nregions ? &g_shim.regions[g_shim.nregions - 1] : NULL;
            uint32_t f = vmflags_parse(line);
            if (!r || (r->flags & CK_REG_SPECIAL))
                continue;
            if (f & VMF_IO) {
                snprintf(err, errlen, "memory region %#llx-%#llx (%s) is an I/O or PFN "
                         "mapping (VmFlags io/pf) whose contents cannot be read or restored",
                         (unsigned long long)r->start, (unsigned long long)r->end,
                         r->path_len ? g_shim.strtab + r->path_off : "anonymous");
                return -ENOTSUP;
            }
            /* "mw" matters on shared file mappings only (restore opens
             * the file for writing) */
            if ((r->flags & (CK_REG_FILE | CK_REG_SHARED)) != (CK_REG_FILE | CK_REG_SHARED))
                f &= ~CK_REG_MAYWRITE;
            /* MAP_DROPPABLE memory is wiped on fork and left out of core
             * dumps by its nature (VmFlags "dp wf dd"): the kernel may drop
             * its pages at any time, so the writer may see them zero, and
             * mmap(MAP_DROPPABLE) sets both flags again */
            if (f & CK_REG_DROPPABLE)
                f &= ~(CK_REG_WIPEONFORK | CK_REG_DONTDUMP);
            r->flags |= f;              /* CK_REG_HUGETLB: see hugetlb_files() */
            continue;
        }
        if (!strncmp(line, "KernelPageSize:", 15) && g_shim.nregions) {
            /* the huge page size of MAP_HUGETLB memory (2 MiB, 1 GiB) */
            struct ck_region *r = &g_shim.regions[g_shim.nregions - 1];
            if (r->flags & CK_REG_HUGETLB)
                r->fsize = strtoull(line + 15, NULL, 10) << 10;
            continue;
        }
        if (!((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) ||
            !strchr(line, '-'))
            continue;                   /* another smaps field */
        struct ck_maps_entry e;
        if (ck_parse_maps_line(line, &e) < 0) {
            snprintf(err, errlen, "cannot parse /proc/self/maps line");
            return -EIO;
        }
        if (g_shim.nregions >= SHIM_MAX_REGIONS) {
            snprintf(err, errlen, "more than %d memory regions", SHIM_MAX_REGIONS);
            return -E2BIG;
        }
        struct ck_region *r = &g_shim.regions[g_shim.nregions];
        memset(r, 0, sizeof *r);
        r->start = e.start;
        r->end = e.end;
        r->prot = e.prot;
        r->offset = e.offset;
        r->flags = e.shared ? CK_REG_SHARED : 0;
        const char *path = e.path;
        if (!strcmp(path, "[vdso]")) {
            p->vdso_start = e.start;
            p->vdso_end = e.end;
            p->vdso_hash = ck_xxh64((const void *)e.start, e.end - e.start, 0);
            r->flags |= CK_REG_SPECIAL;
        } else if (!strcmp(path, "[vvar]")) {
            p->vvar_start = e.start;
            p->vvar_end = e.end;
            r->flags |= CK_REG_SPECIAL;
        } else if (!strcmp(path, "[vvar_vclock]")) {
            p->vclock_start = e.start;
            p->vclock_end = e.end;
            r->flags |= CK_REG_SPECIAL;
        } else if (!strcmp(path, "[vsyscall]")) {
            r->flags |= CK_REG_SPECIAL;
        } else if (!strcmp(path, "[heap]")) {
            r->flags |= CK_REG_HEAP | CK_REG_ANON;
        } else if (!strcmp(path, "[stack]")) {
            r->flags |= CK_REG_STACK | CK_REG_ANON;
        } else if (path[0] == 0 || !strncmp(path, "[anon", 5)) {
            r->flags |= CK_REG_ANON;
        } else if (path[0] != '/') {
            /* "[uprobes]", "anon_inode:[perf_event]", "anon_inode:[io_uring]"...:
             * kernel objects, not files (stat would fail and their pages
             * would be saved as those of a deleted file, wrongly) */
            snprintf(err, errlen, "memory region %#llx-%#llx is a kernel mapping %s that cannot "
                     "be restored", (unsigned long long)e.start, (unsigned long long)e.end, path);
            return -ENOTSUP;
        } else if (!strcmp(path, "/anon_hugepage") && e.deleted) {
            r->flags |= CK_REG_ANON | CK_REG_HUGETLB; /* mmap(MAP_HUGETLB) */
        } else if (!strncmp(path, "/SYSV", 5)) {
            r->flags |= CK_REG_ANON | CK_REG_SYSV;
            r->ino = e.ino;             /* the shmid */
        } else if (!strcmp(path, "/dev/zero") ||
                   (e.shared && e.deleted && !strcmp(path, "/memfd:ckshim-tree-shm"))) {
            /* (a tree restore maps MAP_SHARED anonymous memory the tree
             * shares from such a memfd: it is still that) */
            r->flags |= CK_REG_ANON;
            /* MAP_SHARED: its shmem object, so that coord can tell memory
             * two processes of a tree share (dev stays 0: never a file) */
            if (r->flags & CK_REG_SHARED)
                r->ino = e.ino;
        } else if (file_region(r, &e, &last_file, err, errlen) < 0) {
            return -ENOTSUP;
        }
        if (r->start < 0x100040000000ULL && r->end > 0x100000000000ULL) {
            snprintf(err, errlen, "memory region %#llx-%#llx overlaps the restorer's reserved "
                     "window 0x100000000000-0x100040000000", (unsigned long long)r->start,
                     (unsigned long long)r->end);
            return -ENOTSUP;
        }
        g_shim.nregions++;
    }
    g_shim.regions_strtab_len = g_shim.strtab_len;
    p->stack_reserve = 0;
    return 0;
}

/* Classify /proc/self/maps (or smaps, with VmFlags) into ck_region entries. */
static int capture_regions(char *err, size_t errlen)
{
    int smaps = g_shim.vmflags_seen;
    struct lines l;
    if (lines_open(&l, smaps ? "/proc/self/smaps" : "/proc/self/maps", maps_buf, MAPS_BUF) < 0) {
        snprintf(err, errlen, "cannot read /proc/self/%s", smaps ? "smaps" : "maps");
        return -EIO;
    }
    int r = parse_regions(&l, err, errlen);
    close(l.fd);
    return r;
}

static int fd_is_skipped(int fd)
{
    if (fd == g_shim.listen_fd || fd == netrec_fd())
        return 1;
    for (unsigned i = 0; i < sizeof shim_skip_fds / sizeof shim_skip_fds[0]; i++)
        if (shim_skip_fds[i] == fd)
            return 1;
    return 0;
}

static const char *anon_kind(const char *target)
{
    static const char *const names[][2] = {
        {"anon_inode:[eventpoll]", "an epoll instance"},
        {"anon_inode:[timerfd]", "a timerfd"},
        {"anon_inode:[signalfd]", "a signalfd"},
        {"anon_inode:inotify", "an inotify instance"},
        {"anon_inode:[fanotify]", "a fanotify instance"},
        {"anon_inode:[io_uring]", "an io_uring instance"},
        {"anon_inode:[userfaultfd]", "a userfaultfd"},
        {"anon_inode:[perf_event]", "a perf event"},
        {"anon_inode:[pidfd]", "a pidfd"},
        {"anon_inode:bpf", "a BPF object"},
    };
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strncmp(target, names[i][0], strlen(names[i][0])))
            return names[i][1];
    return NULL;
}

/* Drop the saved bytes and descriptor state after a checkpoint (unmap
 * them), or after a restore (they were never part of the image: just
 * forget them). */
void capture_forget(int unmap)
{
    fdcap_forget(unmap);
    /* the copies of descriptors in flight are closed once the checkpoint
     * is over, failed or not (after a restore, coord closed them) */
    for (int k = 0; unmap && k < shim_ninflight; k++)
        close(shim_inflight[k]);
    shim_ninflight = 0;
}

struct ck_lock shim_locks[SHIM_MAX_LOCKS];
uint32_t shim_nlocks;
struct ck_tty shim_ttys[SHIM_MAX_TTYS];
uint32_t shim_nttys;
static uint32_t shim_ttys_over; /* terminals past SHIM_MAX_TTYS */

/* File locks held through fd, from the "lock:" lines of its fdinfo (only
 * locks taken through this open file description, and for POSIX locks by
 * this process, are listed there), e.g.
 *   lock:   1: POSIX  ADVISORY  WRITE 12897 fe:00:10953654 10 14
 *   lock:   2: FLOCK  ADVISORY  READ 12897 fe:00:10953653 0 EOF
 *   lock:   3: OFDLCK ADVISORY  WRITE -1 fe:00:10953655 0 EOF
 *   lock:   4: LEASE  ACTIVE    READ 12897 fe:00:10953656 0 EOF
 * An active lease is taken again at restore; one being broken (BREAKING)
 * is taken and broken again the same way. */
static int capture_locks(const struct ck_fd *f, const char *info, const char *path, char *err,
                         size_t errlen)
{
    for (const char *l = strstr(info, "\nlock:"); l; l = strstr(l + 1, "\nlock:")) {
        char kind[16] = "", adv[16] = "", type[16] = "", end[32] = "";
        int pid = 0;
        long long start = 0;
        if (sscanf(l + 6, " %*d: %15s %15s %15s %d %*x:%*x:%*u %lld %31s", kind, adv, type,
                   &pid, &start, end) < 6) {
            snprintf(err, errlen, "fd %d (%s): cannot parse its lock line in fdinfo", f->fd,
                     path);
            return -EINVAL;
        }
        struct ck_lock k = {.fd = f->fd, .pid = pid, .dev = f->dev, .ino = f->ino};
        if (!strcmp(kind, "FLOCK"))
            k.kind = CK_LOCK_FLOCK;
        else if (!strcmp(kind, "POSIX"))
            k.kind = CK_LOCK_POSIX;
        else if (!strcmp(kind, "OFDLCK"))
            k.kind = CK_LOCK_OFD;
        else if (!strcmp(kind, "LEASE") && !strcmp(adv, "ACTIVE"))
            k.kind = CK_LOCK_LEASE;
        else if (!strcmp(kind, "LEASE") && !strcmp(adv, "BREAKING") &&
                 (!strcmp(type, "UNLCK") || !strcmp(type, "READ"))) {
            /* the kernel shows where the lease goes, not what it was: a
             * downgrade to read was a write lease; one to none is taken
             * to be of the kind the descriptor's access mode allows */
            k.kind = CK_LOCK_LEASE_BREAKING;
            k.start = !strcmp(type, "READ");
            k.write = k.start || (f->oflags & O_ACCMODE) != O_RDONLY;
            goto add;
        }
        if (!strcmp(kind, "LEASE") && k.kind != CK_LOCK_LEASE) {
            snprintf(err, errlen, "fd %d (%s) holds a lease in a state ckshim cannot restore "
                     "(%s %s)", f->fd, path, adv, type);
            return -ENOTSUP;
        }
        if (!k.kind || (strcmp(adv, "ADVISORY") && k.kind != CK_LOCK_LEASE) ||
            (strcmp(type, "READ") && strcmp(type, "WRITE"))) {
            snprintf(err, errlen, "fd %d (%s) holds a %s %s %s lock (a lease?), which ckshim "
                     "cannot restore", f->fd, path, kind, adv, type);
            return -ENOTSUP;
        }
        /* a POSIX lock through a description shared with another process
         * (inherited across fork) that the other process took: its own,
         * shown here because it was taken through this file */
        if (k.kind == CK_LOCK_POSIX && pid != (int)syscall(SYS_getpid))
            continue;
        k.write = !strcmp(type, "WRITE");
        if (k.kind != CK_LOCK_FLOCK && k.kind != CK_LOCK_LEASE) {
            k.start = start;
            k.len = strcmp(end, "EOF") ? strtoll(end, NULL, 10) - start + 1 : 0;
        }
    add:
        if (shim_nlocks >= SHIM_MAX_LOCKS) {
            snprintf(err, errlen, "more than %d file locks", SHIM_MAX_LOCKS);
            return -E2BIG;
        }
        shim_locks[shim_nlocks++] = k;
    }
    return 0;
}

/* Modes and window size of a standard descriptor on a terminal (restore
 * puts them on the terminal it runs in), or of a pseudo-terminal master
 * (restore puts them on the new pair). */
void capture_tty(int fd, const struct stat *st)
{
    struct termios t;
    if (ioctl(fd, TCGETS, &t) < 0)
        return;
    if (shim_nttys >= SHIM_MAX_TTYS) {
        shim_ttys_over++; /* capture_all refuses the checkpoint */
        return;
    }
    struct ck_tty *y = &shim_ttys[shim_nttys++];
    memset(y, 0, sizeof *y);
    y->fd = fd;
    y->iflag = t.c_iflag;
    y->oflag = t.c_oflag;
    y->cflag = t.c_cflag;
    y->lflag = t.c_lflag;
    y->line = t.c_line;
    memcpy(y->cc, t.c_cc, sizeof y->cc < sizeof t.c_cc ? sizeof y->cc : sizeof t.c_cc);
    y->dev = st->st_dev;
    y->rdev = st->st_rdev;
    int pkt = 0; /* (a master's; a slave or terminal says ENOTTY) */
    if (ioctl(fd, TIOCGPKT, &pkt) == 0 && pkt)
        y->flags |= CK_TTYF_PACKET;
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0) {
        y->flags |= CK_TTYF_WINSIZE;
        y->ws_row = ws.ws_row;
        y->ws_col = ws.ws_col;
        y->ws_xpixel = ws.ws_xpixel;
        y->ws_ypixel = ws.ws_ypixel;
    }
}

/* After restore: coord took every lock back before the restorer ran, but
 * the restorer's close of a mapped file it had opened drops the process's
 * POSIX locks on that file (POSIX locks go with any close of the file):
 * take them again, before the program runs. */
int capture_relock_after_restore(char *err, size_t errlen)
{
    for (uint32_t i = 0; i < shim_nlocks; i++) {
        const struct ck_lock *k = &shim_locks[i];
        if (k->kind != CK_LOCK_POSIX)
            continue;
        struct flock fl = {.l_type = k->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
                           .l_start = k->start, .l_len = k->len};
        if (fcntl(k->fd, F_SETLK, &fl) < 0) {
            snprintf(err, errlen, "fd %d: cannot take back the POSIX %s lock on bytes %lld+%lld "
                     "after restore: %s", k->fd, k->write ? "write" : "read",
                     (long long)k->start, (long long)k->len, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* After a successful restore, before the program runs again: its
 * standard descriptors on a terminal are now on the terminal coord
 * restore ran in (a foreground restore), which has that terminal's
 * modes, not the ones the program had set (a REPL in raw mode would find
 * the terminal echoing and editing lines again). Put the program's modes
 * on it, keeping the new terminal's line speed. Only in the foreground:
 * a background process group changing the terminal would be stopped
 * (SIGTTOU) and would pull the modes from under the shell. Done here, not
 * by coord, so that a restore that fails leaves the terminal as it was.
 * The window size is the new terminal's (its window is what it is): if
 * it differs from the one the program saw, the program gets SIGWINCH, as
 * when a terminal is resized, and asks again. */
void capture_tty_after_restore(void)
{
    int winch = 0;
    for (uint32_t i = 0; i < shim_nttys; i++) {
        const struct ck_tty *y = &shim_ttys[i];
        struct termios t;
        struct winsize ws;
        int pg = -1;
        if (ioctl(y->fd, TCGETS, &t) < 0)
            continue; /* not a terminal now (--detach: /dev/null) */
        if (syscall(SYS_ioctl, y->fd, TIOCGPGRP, &pg) == 0 && pg != (int)syscall(SYS_getpgid, 0))
            continue;
        t.c_iflag = y->iflag;
        t.c_oflag = y->oflag;
        t.c_cflag = (y->cflag & ~(tcflag_t)(CBAUD | CIBAUD)) | (t.c_cflag & (CBAUD | CIBAUD));
        t.c_lflag = y->lflag;
        memcpy(t.c_cc, y->cc, sizeof y->cc < sizeof t.c_cc ? sizeof y->cc : sizeof t.c_cc);
        ioctl(y->fd, TCSETS, &t);
        if ((y->flags & CK_TTYF_WINSIZE) && ioctl(y->fd, TIOCGWINSZ, &ws) == 0 &&
            (ws.ws_row != y->ws_row || ws.ws_col != y->ws_col))
            winch = 1;
    }
    if (winch)
        syscall(SYS_kill, shim_real_getpid(), SIGWINCH);
}

/* Record every descriptor the program has open. A kind ckshim cannot
 * restore makes the checkpoint fail with a message naming the fd. */
/* A restore needs a descriptor limit above the highest fd (ck_nofile_need);
 * if that is above the hard RLIMIT_NOFILE, this user could never restore
 * the image: refused now, while the program runs on. */
static int check_nofile(char *err, size_t errlen)
{
    int maxfd = 2;
    for (uint32_t i = 0; i < g_shim.nfds; i++)
        if (g_shim.fds[i].fd > maxfd)
            maxfd = g_shim.fds[i].fd;
    uint64_t need = ck_nofile_need(maxfd, g_shim.nfds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY || need <= rl.rlim_max)
        return 0;
    snprintf(err, errlen, "fd %d: a restore of it needs a descriptor limit of at least %llu "
             "(fd + 64 + 2 per descriptor), above the hard RLIMIT_NOFILE %llu, so ckshim could "
             "not restore the program; close the descriptor (or use a lower one) or raise the "
             "hard limit (ulimit -Hn)", maxfd, (unsigned long long)need,
             (unsigned long long)rl.rlim_max);
    return -EMFILE;
}

/* The next descriptor number listed, or -1 at the end (shim.h). */
int fdlist_next(struct fdlist *l)
{
    for (;;) {
        if (l->off >= l->n) {
            l->n = syscall(SYS_getdents64, l->dfd, l->buf, l->cap);
            l->off = 0;
            if (l->n <= 0)
                return -1;
        }
        struct dirent64 *d = (struct dirent64 *)(l->buf + l->off);
        l->off += d->d_reclen;
        if (d->d_name[0] >= '0' && d->d_name[0] <= '9')
            return atoi(d->d_name);
    }
}

/* Bytes a TCP socket holds back (Nagle's algorithm: a small write while
 * an earlier segment is not acknowledged, for up to the peer's delayed
 * acknowledgement, 40 ms) are neither in the peer's queue nor readable
 * back from the sender: a checkpoint then would refuse the connection
 * between two processes of a tree (or two sockets of one process). Once
 * the threads are parked, and before any process of a tree captures, such
 * a socket gets TCP_NODELAY for a moment, which sends them (a corked
 * socket, TCP_CORK, is left as it is). Then wait at most 50 ms for them
 * to leave. Manager only: raw calls, no heap. */
void capture_flush_unsent(void)
{
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    char dbuf[8192];
    struct fdlist dl = {.dfd = dfd, .buf = dbuf, .cap = sizeof dbuf};
    static int flushed[64];
    int nflushed = 0;
    for (int fd; (fd = fdlist_next(&dl)) >= 0;) {
        struct tcp_info ti;
        socklen_t l = sizeof ti;
        int on = 0, cork = 0;
        socklen_t ol = sizeof on;
        if (fd == dfd || fd_is_skipped(fd) ||
            ck_sys6(SYS_getsockopt, fd, IPPROTO_TCP, TCP_INFO, (long)&ti, (long)&l, 0) < 0 ||
            l < offsetof(struct tcp_info, tcpi_notsent_bytes) + 4 || !ti.tcpi_notsent_bytes ||
            ck_sys6(SYS_getsockopt, fd, IPPROTO_TCP, TCP_CORK, (long)&cork, (long)&ol, 0) < 0 ||
            cork ||
            ck_sys6(SYS_getsockopt, fd, IPPROTO_TCP, TCP_NODELAY, (long)&on, (long)&ol, 0) < 0 ||
            on)
            continue;
        int one = 1, zero = 0;
        if (ck_sys6(SYS_setsockopt, fd, IPPROTO_TCP, TCP_NODELAY, (long)&one, sizeof one, 0) == 0)
            ck_sys6(SYS_setsockopt, fd, IPPROTO_TCP, TCP_NODELAY, (long)&zero, sizeof zero, 0);
        if (nflushed < 64)
            flushed[nflushed++] = fd;
    }
    close(dfd);
    for (int w = 0, left = nflushed; left && w < 50; w++) {
        left = 0;
        for (int i = 0; i < nflushed; i++) {
            struct tcp_info ti;
            socklen_t l = sizeof ti;
            if (ck_sys6(SYS_getsockopt, flushed[i], IPPROTO_TCP, TCP_INFO, (long)&ti, (long)&l,
                        0) == 0 &&
                ti.tcpi_notsent_bytes)
                left = 1;
        }
        if (left)
            usleep(1000);
    }
}

/* Sockets can hold file locks (flock and fcntl both work on them), which
 * only fdinfo shows: the sockets /proc/locks names (once per capture) are
 * read the slow way. Reading /proc/locks takes the kernel's file-lock
 * rwsem for writing, which waits for an RCU grace period (8-30 ms on
 * this VM): it is read only for sockets the shim did not see made
 * (socktrack.c), and only when there are many of them. Its lines: "N:
 * FLOCK ADVISORY WRITE PID MAJ:MIN:INO START END" (major and minor in
 * hex), "N: -> ..." for a waiter. */
#define MAX_LOCKED 512
static struct {
    unsigned maj, min;
    uint64_t ino;
} locked[MAX_LOCKED];
static int nlocked = -1;                /* -1: not read this capture; -2: unknown */

static int hexdig(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void read_locks(void)
{
    static char buf[65536];
    nlocked = 0;
    int n = shim_read_file("/proc/locks", buf, sizeof buf);
    if (n < 0 || n >= (int)sizeof buf - 1) {
        nlocked = -2;
        return;
    }
    for (char *t = buf; *t;) {
        while (*t == ' ' || *t == '\n')
            t++;
        char *e = t, *c1, *c2;
        unsigned long ma, mi;
        unsigned long long ino;
        if (hexdig(*t) && (ma = strtoul(t, &c1, 16), *c1 == ':') && hexdig(c1[1]) &&
            (mi = strtoul(c1 + 1, &c2, 16), *c2 == ':') && c2[1] >= '0' && c2[1] <= '9' &&
            (ino = strtoull(c2 + 1, &e, 10), *e == ' ' || *e == '\n' || !*e)) {
            if (nlocked >= MAX_LOCKED) {
                nlocked = -2;
                return;
            }
            locked[nlocked].maj = (unsigned)ma;
            locked[nlocked].min = (unsigned)mi;
            locked[nlocked++].ino = ino;
        }
        while (*e && *e != ' ' && *e != '\n')
            e++;
        t = e;
    }
}

static int sock_locked(const struct stat *st)
{
    if (nlocked == -1)
        read_locks();
    if (nlocked < 0)
        return 1;
    for (int k = 0; k < nlocked; k++)
        if (locked[k].ino == st->st_ino && locked[k].maj == major(st->st_dev) &&
            locked[k].min == minor(st->st_dev))
            return 1;
    return 0;
}

/* fd's fdinfo into buf: a /proc seq_file gives all of it in one read when
 * the buffer is large enough, so a short read is the end (no second read
 * for the 0). Returns its length, or -errno. */
static int read_fdinfo(int fd, char *buf, size_t cap)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
    int f = open(p, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return -errno;
    size_t n = 0;
    while (n + 1 < cap) {
        size_t want = cap - 1 - n;
        ssize_t r = read(f, buf + n, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if ((size_t)r < want)
            break;
    }
    buf[n] = 0;
    close(f);
    return (int)n;
}

/* The first descriptor of each open file description captured so far,
 * by file (open addressing on dev and inode; fds[] index + 1, 0 free):
 * finding the descriptors that share one costs a kcmp per descriptor of
 * the same file, not a pass over all of them. */
static uint32_t ofd_tab[SHIM_MAX_FDS * 2];
#define OFD_MASK (SHIM_MAX_FDS * 2 - 1)
_Static_assert((SHIM_MAX_FDS & (SHIM_MAX_FDS - 1)) == 0, "SHIM_MAX_FDS: a power of 2");

static uint32_t *ofd_slot(uint64_t dev, uint64_t ino)
{
    return &ofd_tab[((ino ^ dev << 20) * 0x9e3779b97f4a7c15ULL) >> 40 & OFD_MASK];
}

/* the next slot to look at (a slot of another file is passed over by the
 * caller's own comparison) */
static uint32_t *ofd_next(uint32_t *slot)
{
    return &ofd_tab[(size_t)(slot - ofd_tab + 1) & OFD_MASK];
}

/* A descriptor of ckshim's that a forked child inherited from its
 * parent's manager (shim.c closes them in the child, held_fds; this is
 * the second line): the image being written (the same file as our own
 * image descriptor) or a connection to a control socket of ours (a bound
 * name in the socket directory: the program's own unix sockets are never
 * there). Not the program's: left out of the image. */
static int coords_own(const struct stat *st, int family, const struct sockaddr_storage *name,
                      socklen_t namelen, const struct stat *img)
{
    if (S_ISREG(st->st_mode))
        return img && st->st_dev == img->st_dev && st->st_ino == img->st_ino;
    const struct sockaddr_un *un = (const struct sockaddr_un *)name;
    if (family != AF_UNIX || namelen <= offsetof(struct sockaddr_un, sun_path) + 1 ||
        !un->sun_path[0])
        return 0;
    /* (the directory of our own control socket: the environment the
     * program runs with now may name another) */
    const char *slash = strrchr(g_shim.sock_path, '/');
    size_t dl = slash ? (size_t)(slash - g_shim.sock_path) : 0;
    return dl > 0 && !strncmp(un->sun_path, g_shim.sock_path, dl) && un->sun_path[dl] == '/';
}

static uint32_t cap_known_socks; /* sockets socktrack.c followed (CKSHIM_DEBUG) */
#define FDINFO_SOCKS 256

static int capture_fds(char *err, size_t errlen)
{
    uint32_t unknown_socks = 0;
    cap_known_socks = 0;
    socktrack_capture_begin();
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errlen, "cannot open /proc/self/fd: %s", strerror(errno));
        return -errno;
    }
    char dbuf[8192];
    pid_t pid = shim_real_getpid();
    struct stat img;
    int have_img = shim_skip_fds[1] >= 0 && fstat(shim_skip_fds[1], &img) == 0;
    static char info[65536]; /* fdinfo: one line per lock (manager only) */
    g_shim.nfds = 0;
    shim_nlocks = 0;
    shim_nttys = 0;
    shim_ttys_over = 0;
    fdcap_reset();
    g_shim.strtab_len = g_shim.regions_strtab_len;
    int ret = 0;
    /* A removed working directory is made again at restore; one in /proc
     * (of a process that has exited) is the same directory of another
     * process that exits (fds/procdead.c), but not of a thread. */
    size_t cl = strlen(g_shim.proc.cwd);
    const char *rest;
    char cwd[sizeof g_shim.proc.cwd];
    snprintf(cwd, sizeof cwd, "%.*s", (int)(cl > 10 ? cl - 10 : cl), g_shim.proc.cwd);
    if (!strncmp(g_shim.proc.cwd, "/proc/", 6) && cl > 10 &&
        !strcmp(g_shim.proc.cwd + cl - 10, " (deleted)") && ck_procdead_split(cwd, &rest) < 0) {
        snprintf(err, errlen, "the working directory is %s, the /proc directory of a thread "
                 "that has exited, which ckshim cannot restore", g_shim.proc.cwd);
        ret = -ENOTSUP;
        goto out;
    }
    /* The program's descriptors, then the copies of descriptors in flight
     * in its unix sockets' queues that it does not hold itself, appended as
     * the sockets are read (fds/unix.c; CK_FDF_IN_FLIGHT) */
    static int prog[SHIM_MAX_FDS];
    int nprog = 0;
    struct fdlist dl = {.dfd = dfd, .buf = dbuf, .cap = sizeof dbuf};
    for (int fd; (fd = fdlist_next(&dl)) >= 0;) {
        if (fd == dfd || fd_is_skipped(fd))
            continue;
        if (nprog >= SHIM_MAX_FDS) {
            snprintf(err, errlen, "more than %d open descriptors", SHIM_MAX_FDS);
            ret = -E2BIG;
            goto out;
        }
        prog[nprog++] = fd;
    }
    nlocked = -1;
    memset(ofd_tab, 0, sizeof ofd_tab);
    fdcap_list(prog, &nprog);
    for (int at = 0; at < nprog + shim_ninflight; at++) {
        int fd = at < nprog ? prog[at] : shim_inflight[at - nprog];
        int hidden = at >= nprog;
        if (g_shim.nfds >= SHIM_MAX_FDS) {
            snprintf(err, errlen, "more than %d open descriptors", SHIM_MAX_FDS);
            ret = -E2BIG;
            goto out;
        }
        struct ck_fd *f = &g_shim.fds[g_shim.nfds];
        memset(f, 0, sizeof *f);
        f->fd = fd;
        f->share_with = -1;
        char target[CK_PATH_MAX];
        struct stat st;
        if (fstat(fd, &st) < 0)
            continue;
        /* a socket's link says socket:[ino]; an O_PATH descriptor of a
         * socket file is no socket (family -1) and links to the file */
        struct sockaddr_storage name;
        socklen_t namelen = 0;
        int family = S_ISSOCK(st.st_mode) ? ck_sock_family_named(fd, &name, &namelen) : -1;
        if (!hidden && coords_own(&st, family, &name, namelen, have_img ? &img : NULL)) {
            shim_log("fd %d is ckshim's own (coord's image or connection, inherited from "
                     "the parent's manager): left out", fd);
            continue;
        }
        struct ck_fdinfo fi;
        memset(&fi, 0, sizeof fi);
        fi.scm_fds = -1;
        int il = 0;
        info[0] = 0;
        if (family >= 0) {
            snprintf(target, sizeof target, "socket:[%llu]", (unsigned long long)st.st_ino);
        } else {
            char lp[64];
            snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
            ssize_t l = readlink(lp, target, sizeof target - 1);
            if (l < 0)
                continue; /* closed meanwhile */
            target[l] = 0;
        }
        /* a socket the shim followed since the program made it
         * (socktrack.c): what it never changed need not be asked */
        struct socktrack_info known;
        int tracked = family >= 0 && socktrack_get(fd, st.st_ino, &known);
        cap_known_socks += tracked;
        /* a socket not known that way: its fdinfo tells its locks (14 us),
         * up to FDINFO_SOCKS of them; past that /proc/locks, once (an RCU
         * grace period, 8-30 ms here: see sock_locked) */
        int fdf = -1, quick = family >= 0 && tracked && !(known.flags & ST_LOCK);
        if (family >= 0 && !quick)
            quick = ++unknown_socks > FDINFO_SOCKS && !sock_locked(&st);
        if (quick && family == AF_UNIX) {
            /* fdinfo's scm_fds (descriptors in flight) can only be more
             * than 0 where something waits to be read: a unix socket
             * with nothing readable (an empty queue, no connection
             * waiting on a listener, not shut down) has none */
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            quick = syscall(SYS_poll, &pf, 1, 0) == 0;
            if (quick)
                fi.scm_fds = 0;
        }
        if (quick && tracked && !(known.flags & ST_FLAGS)) {
            /* its flags as it was made (socket, socketpair, accept4):
             * a socket's file is O_RDWR */
            fdf = known.fl & STF_CLOEXEC ? FD_CLOEXEC : 0;
            fi.flags = O_RDWR | (known.fl & STF_NONBLOCK ? O_NONBLOCK : 0) |
                       (fdf ? O_CLOEXEC : 0);
            fi.ino = st.st_ino;
        } else if (quick) {
            /* what fdinfo would say of it: flags (with O_CLOEXEC), pos 0 */
            int fl = fcntl(fd, F_GETFL);
            fdf = fcntl(fd, F_GETFD);
            if (fl < 0 || fdf < 0)
                continue;
            fi.flags = (uint32_t)fl | (fdf & FD_CLOEXEC ? O_CLOEXEC : 0);
            fi.ino = st.st_ino;
        } else {
            il = read_fdinfo(fd, info, sizeof info);
            if (il > 0 && ck_parse_fdinfo(info, (size_t)il, &fi) == 0)
                fdf = fi.flags & O_CLOEXEC ? FD_CLOEXEC : 0;
            else
                fdf = fcntl(fd, F_GETFD);
        }
        f->oflags = fi.flags;
        f->pos = fi.pos;
        f->fdflags = fdf > 0 ? (uint32_t)fdf : 0;
        f->mode = st.st_mode;
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        f->size = (uint64_t)st.st_size;
        f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        ts_to_ns(&st.st_ctim, &f->ctime_ns);
        /* descriptors in flight in its queue: copies kept to be taken too */
        if (family == AF_UNIX && fi.scm_fds != 0 && !shim_nopeek(fd) &&
            ck_unix_inflight(fd, prog, nprog, shim_inflight, &shim_ninflight,
                             SHIM_MAX_FDS - nprog, err, errlen) < 0) {
            ret = -ENOTSUP;
            goto out;
        }
        const char *path = target;
        int mine = fdcap_try(g_shim.nfds, &st, target, &path, info, il, &fi, family, &name,
                             namelen, tracked ? &known : NULL, err, errlen);
        if (mine == 0) {
            const char *k = anon_kind(target);
            snprintf(err, errlen, "fd %d is %s (%s), which ckshim cannot restore", fd,
                     k ? k : "an unsupported kind of file", target);
            mine = -ENOTSUP;
        }
        if (mine < 0) {
            if (hidden) {
                /* not the program's number: say where it is */
                char why[400];
                snprintf(why, sizeof why, "%s", err);
                snprintf(err, errlen, "a descriptor in flight (SCM_RIGHTS) in a unix "
                         "socket's queue, kept as fd %d to capture it: %s", fd, why);
            }
            ret = mine;
            goto out;
        }
        if (hidden)
            f->flags |= CK_FDF_IN_FLIGHT;
        f->path_off = strtab_add(path, &f->path_len) - g_shim.regions_strtab_len;
        /* Descriptors sharing one open file description (dup, fork): the
         * first descriptor of each description is kept by its file */
        uint32_t *slot = ofd_slot(f->dev, f->ino);
        for (; *slot; slot = ofd_next(slot)) {
            struct ck_fd *o = &g_shim.fds[*slot - 1];
            if (o->ino == f->ino && o->dev == f->dev &&
                syscall(SYS_kcmp, pid, pid, KCMP_FILE, o->fd, fd) == 0) {
                f->share_with = o->fd;
                break;
            }
        }
        if (f->share_with < 0)
            *slot = g_shim.nfds + 1;
        if (f->share_with < 0 && il > 0 && !hidden &&
            (ret = capture_locks(f, info, target, err, errlen)) < 0)
            goto out;
        if (tracked && !hidden)
            socktrack_saved(fd, &known);
        if (f->share_with < 0 && tracked && !(known.flags & ST_OWNER))
            f->owner = CK_OWN_NONE; /* never given an owner or a signal */
        else if (f->share_with < 0 && (ret = fown_capture(f, err, errlen)) < 0)
            goto out;
        g_shim.nfds++;
    }
    if ((ret = check_nofile(err, errlen)) < 0)
        goto out;
    ret = fdcap_finish(err, errlen);
out:
    close(dfd);
    return ret;
}

static void capture_threads(void)
{
    pid_t pid = shim_real_getpid();
    uint32_t n = 0;
    for (int i = 0; i < g_shim.nslots && i < CK_MAX_THREADS; i++) {
        struct shim_slot *s = &g_shim.slots[i];
        struct ck_thread *t = &g_shim.threads[n++];
        memset(t, 0, sizeof *t);
        t->tid = (uint32_t)s->vtid;
        t->flags = s->tid == pid ? CK_TF_MAIN : 0;
        t->fsbase = s->fsbase;
        t->ctx = s->ctx;
        t->clear_tid_addr = s->ctid_known ? s->ctid
                            : g_shim.tid_off > 0 ? s->pd + (uint64_t)g_shim.tid_off : 0;
        memcpy(&t->sigmask, &s->uc->uc_sigmask, sizeof t->sigmask);
        t->ss_sp = (uint64_t)s->ss.ss_sp;
        t->ss_size = s->ss.ss_size;
        t->ss_flags = s->ss.ss_flags;
        t->sigpending = s->sigpending; /* read by the thread as it parked */
        t->user_ip = (uint64_t)s->uc->uc_mcontext.gregs[REG_RIP];
        t->user_sp = (uint64_t)s->uc->uc_mcontext.gregs[REG_RSP];
        memcpy(t->comm, s->comm, sizeof t->comm);
        unwind_thread(t, s->uc);
    }
    unwind_pipe_close();
    /* The manager itself: its context is filled in by dump_image. */
    struct ck_thread *m = &g_shim.threads[n++];
    memset(m, 0, sizeof *m);
    m->tid = (uint32_t)shim_real_gettid();
    m->flags = CK_TF_MANAGER;
    syscall(SYS_arch_prctl, ARCH_GET_FS, &m->fsbase);
    uint64_t pd = (uint64_t)pthread_self();
    m->clear_tid_addr = g_shim.tid_off > 0 ? pd + (uint64_t)g_shim.tid_off : 0;
    snprintf(m->comm, sizeof m->comm, "ckshim-manager");
    g_shim.nthreads = n;
    g_shim.proc.nthreads = n;
    /* With their siginfo, as they are now that every process of a tree
     * has parked (quiesce_keep_shared): a child that ended while its
     * parent was parked is a zombie of the image, its SIGCHLD pending
     * (make waits for it in pselect); a child's sigqueue to its parent
     * before it parked itself. */
    g_shim.proc.sigpending = quiesce_keep_shared();
}

/* "PID (COMMAND)" of a child for the refusal message: its command line
 * (shortened), or its name; zombies say so. */
static void describe_child(pid_t pid, char *out, size_t len)
{
    char path[64], cmd[96], st[512];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    int n = shim_read_file(path, cmd, sizeof cmd);
    for (int i = 0; i < n - 1; i++)
        if (!cmd[i])
            cmd[i] = ' ';
    if (n > 0 && n >= (int)sizeof cmd - 1)
        snprintf(cmd + sizeof cmd - 5, 5, "...");
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int sn = shim_read_file(path, st, sizeof st);
    const char *rp = sn > 0 ? strrchr(st, ')') : NULL;
    int zombie = rp && rp[1] == ' ' && rp[2] == 'Z';
    if (n <= 0 && rp) {                 /* zombies have no command line: the name */
        const char *lp = strchr(st, '(');
        snprintf(cmd, sizeof cmd, "%.*s", (int)(rp - lp - 1), lp + 1);
    } else if (n <= 0) {
        snprintf(cmd, sizeof cmd, "?");
    }
    snprintf(out, len, "%d (%s%s)", pid, cmd, zombie ? ", exited but not yet waited for" : "");
}

/* A checkpoint of this process alone (coord found no children) must not
 * leave out a child made since: after restore the parent would wait for
 * workers that do not exist, or lose their results. Refuse with -ECHILD,
 * naming every child (zombies too: their exit status), while nothing has
 * changed yet; coord then takes the tree. The shim's own image writer (a
 * raw clone child during a checkpoint) does not count. */
static int capture_children(char *err, size_t errlen)
{
    char kids[4096];
    size_t used = 0;
    int nkids = 0;
    kids[0] = 0;
    /* A child belongs to the thread that made it: ask every parked thread
     * and the manager (index nslots). */
    for (int i = 0; i <= g_shim.nslots && i <= CK_MAX_THREADS; i++) {
        pid_t tid = i < g_shim.nslots && i < CK_MAX_THREADS ? g_shim.slots[i].tid
                                                            : shim_real_gettid();
        char path[64], list[4096];
        snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)tid);
        if (shim_read_file(path, list, sizeof list) <= 0)
            continue;
        for (char *p = list, *end; *p; p = end) {
            long pid = strtol(p, &end, 10);
            if (end == p)
                break;
            if (pid <= 0 || pid == g_shim.writer_pid)
                continue;
            char one[160];
            describe_child((pid_t)pid, one, sizeof one);
            /* In a tree checkpoint coord checked the children and parks
             * them (and carries a zombie's exit status; one that exited
             * since coord looked makes coord take the tree again). */
            if (g_shim.tree_ckpt)
                continue;
            if (used < sizeof kids)
                used += (size_t)snprintf(kids + used, sizeof kids - used, "%s%s",
                                         nkids ? ", " : "", one);
            nkids++;
        }
    }
    if (!nkids)
        return 0;
    snprintf(err, errlen, "process %d made %d child process%s since coord looked: %s; it "
             "was asked to checkpoint itself alone, not its tree",
             (int)shim_real_getpid(), nkids, nkids == 1 ? "" : "es", kids);
    return -ECHILD;
}

/* Hugetlb memory comes back when it is anonymous (MAP_HUGETLB) or a
 * memfd the program holds open (MFD_HUGETLB: coord makes it again); a
 * hugetlbfs file or SHM_HUGETLB segment is refused. */
static int hugetlb_files(char *err, size_t errlen)
{
    for (uint32_t i = 0; i < g_shim.nregions; i++) {
        const struct ck_region *r = &g_shim.regions[i];
        uint32_t f = r->flags;
        if (!(f & CK_REG_HUGETLB) || ((f & CK_REG_ANON) && !(f & CK_REG_SYSV)) ||
            (f & CK_REG_FROMFD))
            continue;
        snprintf(err, errlen, "memory region %#llx-%#llx (%s) is hugetlb memory of a file "
                 "(hugetlbfs, SHM_HUGETLB, or an MFD_HUGETLB memfd no longer open), which ckshim "
                 "cannot restore", (unsigned long long)r->start, (unsigned long long)r->end,
                 r->path_len ? g_shim.strtab + r->path_off : "SysV");
        return -ENOTSUP;
    }
    return 0;
}

struct ck_shm shim_shms[SHIM_MAX_SHMS];
uint32_t shim_nshms;

/* SysV shared memory the program has attached (CK_REG_SYSV regions): each
 * attach must be mapped whole (shmat maps the whole segment; restore does
 * the same), each segment is described by IPC_STAT. */
static int capture_shm(char *err, size_t errlen)
{
    shim_nshms = 0;
    for (uint32_t i = 0; i < g_shim.nregions; i++) {
        const struct ck_region *r = &g_shim.regions[i];
        if (!(r->flags & CK_REG_SYSV))
            continue;
        struct shmid_ds ds;
        if (shmctl((int)r->ino, IPC_STAT, &ds) < 0) {
            snprintf(err, errlen, "cannot read SysV shared memory segment %llu (attached at "
                     "%#llx): %s", (unsigned long long)r->ino, (unsigned long long)r->start,
                     strerror(errno));
            return -ENOTSUP;
        }
        /* the attach: this region and the ones that continue it */
        uint64_t want = (ds.shm_segsz + CK_PAGE_SIZE - 1) & ~(CK_PAGE_SIZE - 1), len = 0;
        uint32_t k = i;
        while (k < g_shim.nregions && (g_shim.regions[k].flags & CK_REG_SYSV) &&
               g_shim.regions[k].ino == r->ino && g_shim.regions[k].offset == len &&
               g_shim.regions[k].start == r->start + len) {
            len += g_shim.regions[k].end - g_shim.regions[k].start;
            k++;
        }
        if (r->offset != 0 || len != want) {
            snprintf(err, errlen, "SysV shared memory segment %llu is only partly mapped at "
                     "%#llx (%llu of %llu bytes from offset %llu), which ckshim cannot restore",
                     (unsigned long long)r->ino, (unsigned long long)r->start,
                     (unsigned long long)len, (unsigned long long)want,
                     (unsigned long long)r->offset);
            return -ENOTSUP;
        }
        i = k - 1;
        uint32_t n = 0;
        while (n < shim_nshms && shim_shms[n].shmid != (int32_t)r->ino)
            n++;
        if (n < shim_nshms)
            continue;                   /* attached twice */
        if (n >= SHIM_MAX_SHMS) {
            snprintf(err, errlen, "more than %d SysV shared memory segments", SHIM_MAX_SHMS);
            return -E2BIG;
        }
        struct ck_shm *s = &shim_shms[shim_nshms++];
        memset(s, 0, sizeof *s);
        s->shmid = (int32_t)r->ino;
        s->key = (int32_t)ds.shm_perm.__key;
        s->size = ds.shm_segsz;
        s->mode = ds.shm_perm.mode & 0777;
        s->flags = (ds.shm_perm.mode & SHM_DEST) ? CK_SHMF_DEST : 0;
    }
    return 0;
}

/* Regions of a deleted file or memfd that the program also holds open:
 * restore maps them from the file it recreates from that descriptor, so
 * that they stay one with it (a write through the descriptor shows in a
 * page never written in a private mapping: unlink_mmap02, memfd02). */
static int mark_fromfd(char *err, size_t errlen)
{
    for (uint32_t i = 0; i < g_shim.nregions; i++) {
        struct ck_region *r = &g_shim.regions[i];
        if (!(r->flags & CK_REG_DELETED))
            continue;
        for (uint32_t k = 0; k < g_shim.nfds; k++) {
            const struct ck_fd *f = &g_shim.fds[k];
            if (!ck_fd_maps_region(f, r))
                continue;
            /* seals go back on before the restorer maps the memfd: a
             * writable shared mapping that F_SEAL_FUTURE_WRITE let stay
             * could not be made again */
            if (f->kind == CK_FD_MEMFD && (f->aux & F_SEAL_FUTURE_WRITE) &&
                (r->flags & CK_REG_SHARED) && (r->prot & PROT_WRITE)) {
                snprintf(err, errlen, "memory region %#llx-%#llx is a writable shared mapping "
                         "of memfd fd %d sealed with F_SEAL_FUTURE_WRITE, which ckshim cannot "
                         "restore", (unsigned long long)r->start, (unsigned long long)r->end,
                         f->fd);
                return -ENOTSUP;
            }
            r->flags |= CK_REG_FROMFD;
            break;
        }
    }
    return 0;
}

/* Capture everything but memory contents. Returns 0 or -errno with a
 * message in err. */
int capture_all(char *err, size_t errlen)
{
    int r = alloc_buffers();
    if (r < 0) {
        snprintf(err, errlen, "out of memory");
        return r;
    }
    g_shim.strtab_len = 0;
    if ((r = capture_children(err, errlen)) < 0)
        return r;
    if ((r = capture_proc(err, errlen)) < 0)
        return r;
    /* Threads (and their backtraces) before the memory map: libunwind may
     * mmap memory for its caches, which must be in the image too. Nothing
     * may map memory the program keeps pointers to after this point. */
    capture_threads();
    cputime_capture();
    if ((r = capture_regions(err, errlen)) < 0 || (r = pattr_capture_aio(err, errlen)) < 0)
        return r;
    unwind_names();
    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    socktrack_quiet(1); /* the kinds' own calls on the program's sockets */
    r = capture_fds(err, errlen);
    socktrack_quiet(0);
    if (r < 0)
        return r;
    if (shim_ttys_over) {
        snprintf(err, errlen, "%u terminals (pseudo-terminal masters and standard descriptors "
                 "on a terminal): ckshim keeps the modes of at most %d", shim_nttys +
                 shim_ttys_over, SHIM_MAX_TTYS);
        return -EMFILE;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    /* CKSHIM_DEBUG: the descriptors' share of the pause (docs/PERFORMANCE.md) */
    shim_log("captured %u descriptors (%u sockets the shim followed) in %lld us (%lld us of "
             "CPU)", g_shim.nfds, cap_known_socks,
             (long long)((t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000),
             (long long)((c1.tv_sec - c0.tv_sec) * 1000000LL + (c1.tv_nsec - c0.tv_nsec) / 1000));
    if ((r = mark_fromfd(err, errlen)) < 0 || (r = hugetlb_files(err, errlen)) < 0 ||
        (r = capture_shm(err, errlen)) < 0)
        return r;
    /* Witnesses of the memory a fork would hide, taken now, from the
     * program itself: they let a reader tell whether the writer saw it. */
    if ((r = dump_witnesses(err, errlen)) < 0)
        return r;
    return 0;
}

/* MADV_DONTFORK and MADV_WIPEONFORK regions would be missing, or zero, in
 * the forked writer: lift the flags just around the fork (for_fork 1),
 * then put them back in the program at once (0). The program is parked
 * all the while. */
void capture_fork_flags(int for_fork)
{
    for (uint32_t i = 0; i < g_shim.nregions; i++) {
        const struct ck_region *r = &g_shim.regions[i];
        void *a = (void *)r->start;
        size_t len = r->end - r->start;
        if ((r->flags & CK_REG_DONTFORK) &&
            madvise(a, len, for_fork ? MADV_DOFORK : MADV_DONTFORK) < 0)
            shim_log("madvise(%p, DONTFORK %d): %s", a, !for_fork, strerror(errno));
        if ((r->flags & CK_REG_WIPEONFORK) &&
            madvise(a, len, for_fork ? MADV_KEEPONFORK : MADV_WIPEONFORK) < 0)
            shim_log("madvise(%p, WIPEONFORK %d): %s", a, !for_fork, strerror(errno));
    }
}

/* After restore: the regions get their flags back, so that a fork of the
 * restored program behaves as before, and a core dump leaves out what it
 * left out. */
void capture_restore_vmflags(void)
{
    static const struct {
        uint32_t flag;
        int advice;
    } advs[] = {
        {CK_REG_DONTDUMP, MADV_DONTDUMP},   {CK_REG_HUGEPAGE, MADV_HUGEPAGE},
        {CK_REG_NOHUGEPAGE, MADV_NOHUGEPAGE}, {CK_REG_MERGEABLE, MADV_MERGEABLE},
        {CK_REG_SEQUENTIAL, MADV_SEQUENTIAL}, {CK_REG_RANDOM, MADV_RANDOM},
    };
    capture_fork_flags(0);
    for (uint32_t i = 0; i < g_shim.nregions; i++) {
        const struct ck_region *r = &g_shim.regions[i];
        void *a = (void *)r->start;
        size_t len = r->end - r->start;
        for (unsigned k = 0; k < sizeof advs / sizeof advs[0]; k++)
            if ((r->flags & advs[k].flag) && madvise(a, len, advs[k].advice) < 0)
                shim_log("madvise(%p, %d): %s", a, advs[k].advice, strerror(errno));
        /* every page of a locked region is resident again (the restorer
         * filled it, or mlock faults it in) */
        if ((r->flags & CK_REG_LOCKED) && mlock(a, len) < 0)
            shim_log("mlock(%p, %zu): %s", a, len, strerror(errno));
    }
}

/* In the forked writer, before it writes anything: every captured region
 * must be here and none may be wiped on fork. Either happens only when the
 * program set MADV_DONTFORK or MADV_WIPEONFORK after the prescan and the
 * pause read /proc/self/maps rather than smaps: the checkpoint fails (the
 * program goes on) instead of saving zeros. Returns 0 or -errno. */
/* Next captured region at or after *pos that the writer needs, skipping
 * the kernel's own; *ri == n when there is none. */
static void next_needed(uint32_t *ri, uint64_t *pos)
{
    const struct ck_region *reg = g_shim.regions;
    while (*ri < g_shim.nregions && ((reg[*ri].flags & CK_REG_SPECIAL) || *pos >= reg[*ri].end))
        if (++*ri < g_shim.nregions)
            *pos = reg[*ri].start;
}

int capture_check_fork_child(char *err, size_t errlen)
{
    struct lines l;
    if (lines_open(&l, "/proc/self/smaps", maps_buf, MAPS_BUF) < 0) {
        snprintf(err, errlen, "the image writer cannot read /proc/self/smaps");
        return -EIO;
    }
    const struct ck_region *reg = g_shim.regions;
    uint32_t ri = 0, n = g_shim.nregions;
    uint64_t pos = n ? reg[0].start : 0, vs = 0, ve = 0;
    int r = 0, missing = 0;
    for (char *line; !r && !missing && (line = lines_next(&l));) {
        if (!strncmp(line, "VmFlags:", 8)) {
            uint32_t f = vmflags_parse(line);
            if ((f & CK_REG_WIPEONFORK) && !(f & CK_REG_DROPPABLE)) {
                snprintf(err, errlen, "memory region %#llx-%#llx was marked MADV_WIPEONFORK "
                         "during the checkpoint; try again", (unsigned long long)vs,
                         (unsigned long long)ve);
                r = -EAGAIN;
            }
            continue;
        }
        struct ck_maps_entry e;
        if (!((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) ||
            !strchr(line, '-') || ck_parse_maps_line(line, &e) < 0)
            continue;
        vs = e.start;
        ve = e.end;
        for (;;) {
            next_needed(&ri, &pos);
            if (ri >= n || pos >= ve)
                break;
            if (pos < vs) {
                missing = 1;
                break;
            }
            pos = ve < reg[ri].end ? ve : reg[ri].end;
        }
    }
    close(l.fd);
    if (!r && !missing) {
        next_needed(&ri, &pos);
        missing = ri < n;
    }
    if (missing) {
        snprintf(err, errlen, "memory at %#llx (region %#llx-%#llx) is missing in the image "
                 "writer: it was marked MADV_DONTFORK during the checkpoint; try again",
                 (unsigned long long)pos, (unsigned long long)reg[ri].start,
                 (unsigned long long)reg[ri].end);
        r = -EAGAIN;
    }
    return r;
}
