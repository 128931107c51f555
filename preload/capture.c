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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fileid.h"
#include "procparse.h"
#include "shim.h"
#include "xxh64.h"

#define MAPS_BUF (4u << 20)

static char *maps_buf;

int shim_skip_fds[4] = {-1, -1, -1, -1};

static int alloc_buffers(void)
{
    if (g_shim.threads)
        return 0;
    size_t tsz = sizeof(struct ck_thread) * CK_MAX_THREADS;
    size_t rsz = sizeof(struct ck_region) * SHIM_MAX_REGIONS;
    size_t fsz = sizeof(struct ck_fd) * SHIM_MAX_FDS;
    size_t total = tsz + rsz + fsz + SHIM_STRTAB + MAPS_BUF;
    char *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    g_shim.threads = (struct ck_thread *)p;
    g_shim.regions = (struct ck_region *)(p + tsz);
    g_shim.fds = (struct ck_fd *)(p + tsz + rsz);
    g_shim.strtab = p + tsz + rsz + fsz;
    maps_buf = p + tsz + rsz + fsz + SHIM_STRTAB;
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
            const char *n = line + 8;
            if (!strncmp(n, "none", 4))
                t->notify = SIGEV_NONE;
            else if (!strncmp(n, "thread", 6))
                t->notify = SIGEV_THREAD_ID;
            else
                t->notify = SIGEV_SIGNAL;
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
    p->pgid = (uint32_t)getpgid(0);
    p->sid = (uint32_t)getsid(0);
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
    shim_read_file("/proc/self/comm", p->comm, sizeof p->comm);
    p->comm[strcspn(p->comm, "\n")] = 0;
    return 0;
}

/* Classify /proc/self/maps into ck_region entries. */
static int capture_regions(char *err, size_t errlen)
{
    int n = shim_read_file("/proc/self/maps", maps_buf, MAPS_BUF);
    if (n <= 0) {
        snprintf(err, errlen, "cannot read /proc/self/maps");
        return -EIO;
    }
    struct ck_proc *p = &g_shim.proc;
    g_shim.nregions = 0;
    for (char *line = maps_buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        struct ck_maps_entry e;
        if (ck_parse_maps_line(line, &e) < 0) {
            snprintf(err, errlen, "cannot parse /proc/self/maps line");
            return -EIO;
        }
        line = nl ? nl + 1 : NULL;
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
        } else if (path[0] == '[') {
            snprintf(err, errlen, "memory region %#llx-%#llx is a kernel mapping %s that cannot "
                     "be restored", (unsigned long long)e.start, (unsigned long long)e.end, path);
            return -ENOTSUP;
        } else if (!strcmp(path, "/dev/zero") || !strncmp(path, "/SYSV", 5)) {
            r->flags |= CK_REG_ANON;
        } else {
            struct stat st;
            r->flags |= CK_REG_FILE;
            int same = !e.deleted && stat(path, &st) == 0 && st.st_ino == e.ino &&
                       major(st.st_dev) == e.dev_major && minor(st.st_dev) == e.dev_minor;
            if (same && !S_ISREG(st.st_mode)) {
                snprintf(err, errlen, "memory region %#llx-%#llx maps device %s, which cannot "
                         "be restored", (unsigned long long)e.start, (unsigned long long)e.end,
                         path);
                return -ENOTSUP;
            }
            if (same) {
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
                /* Deleted or replaced since it was mapped: keep its bytes.
                 * dev/ino from maps let restore find an fd of the same file. */
                r->flags |= CK_REG_DELETED | CK_REG_ALLPAGES;
                r->dev = makedev(e.dev_major, e.dev_minor);
                r->ino = e.ino;
            }
            r->path_off = strtab_add(path, &r->path_len);
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

static int fd_is_skipped(int fd)
{
    if (fd == g_shim.listen_fd)
        return 1;
    for (unsigned i = 0; i < sizeof shim_skip_fds / sizeof shim_skip_fds[0]; i++)
        if (shim_skip_fds[i] == fd)
            return 1;
    return 0;
}

static int is_tty_dev(dev_t rdev)
{
    unsigned ma = major(rdev);
    return ma == 4 || (ma >= 136 && ma <= 143) || (ma == 5 && minor(rdev) <= 2);
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

struct shim_pipedata shim_pipes[SHIM_MAX_PIPES];
uint32_t shim_npipes;
static char *pipe_buf;
static size_t pipe_buf_cap;

/* Bytes waiting in pipes whose both ends the program holds: copied with
 * tee(2), which leaves them in the pipe, into a buffer the writer saves
 * as FILEDATA records (arg = the read end's fd). */
static int capture_pipe_data(char *err, size_t errlen)
{
    shim_npipes = 0;
    size_t used = 0;
    for (uint32_t i = 0; i < g_shim.nfds; i++) {
        struct ck_fd *f = &g_shim.fds[i];
        if (f->kind != CK_FD_PIPE || (f->flags & CK_FDF_EXTERNAL) || f->share_with >= 0 ||
            (f->oflags & O_ACCMODE) != O_RDONLY ||
            g_shim.strtab[g_shim.regions_strtab_len + f->path_off] == '/')
            continue;
        int cap = fcntl(f->fd, F_GETPIPE_SZ);
        f->size = cap > 0 ? (uint64_t)cap : 65536;
        if (shim_npipes >= SHIM_MAX_PIPES) {
            snprintf(err, errlen, "more than %d pipes", SHIM_MAX_PIPES);
            return -E2BIG;
        }
        if (!pipe_buf || used + f->size > pipe_buf_cap) {
            size_t want = pipe_buf_cap ? pipe_buf_cap * 2 : (4u << 20);
            while (want < used + f->size)
                want *= 2;
            char *nb = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (nb == MAP_FAILED) {
                snprintf(err, errlen, "out of memory for pipe contents");
                return -ENOMEM;
            }
            if (pipe_buf) {
                memcpy(nb, pipe_buf, used);
                munmap(pipe_buf, pipe_buf_cap);
            }
            pipe_buf = nb;
            pipe_buf_cap = want;
        }
        int tp[2];
        if (pipe2(tp, O_NONBLOCK | O_CLOEXEC) < 0) {
            snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
            return -errno;
        }
        fcntl(tp[1], F_SETPIPE_SZ, (int)f->size);
        ssize_t n = tee(f->fd, tp[1], f->size, SPLICE_F_NONBLOCK);
        size_t got = 0;
        if (n > 0) {
            while (got < (size_t)n) {
                ssize_t r = read(tp[0], pipe_buf + used + got, (size_t)n - got);
                if (r <= 0)
                    break;
                got += (size_t)r;
            }
        }
        close(tp[0]);
        close(tp[1]);
        struct shim_pipedata *pd = &shim_pipes[shim_npipes++];
        pd->fd = f->fd;
        pd->data = pipe_buf + used;
        pd->len = got;
        used += got;
    }
    return 0;
}

/* Drop the pipe contents buffer after a checkpoint (unmap it), or after a
 * restore (it was never part of the image: just forget it). */
void capture_forget(int unmap)
{
    if (pipe_buf && unmap)
        munmap(pipe_buf, pipe_buf_cap);
    pipe_buf = NULL;
    pipe_buf_cap = 0;
    shim_npipes = 0;
}

/* Record every descriptor the program has open. A kind ckshim cannot
 * restore makes the checkpoint fail with a message naming the fd. */
static int capture_fds(char *err, size_t errlen)
{
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errlen, "cannot open /proc/self/fd: %s", strerror(errno));
        return -errno;
    }
    char dbuf[8192];
    pid_t pid = shim_real_getpid();
    g_shim.nfds = 0;
    g_shim.strtab_len = g_shim.regions_strtab_len;
    int ret = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, dbuf, sizeof dbuf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(dbuf + off);
            off += d->d_reclen;
            if (d->d_name[0] < '0' || d->d_name[0] > '9')
                continue;
            int fd = atoi(d->d_name);
            if (fd == dfd || fd_is_skipped(fd))
                continue;
            if (g_shim.nfds >= SHIM_MAX_FDS) {
                snprintf(err, errlen, "more than %d open descriptors", SHIM_MAX_FDS);
                ret = -E2BIG;
                goto out;
            }
            struct ck_fd *f = &g_shim.fds[g_shim.nfds];
            memset(f, 0, sizeof *f);
            f->fd = fd;
            f->share_with = -1;
            char lp[64], target[CK_PATH_MAX], info[1024];
            snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
            ssize_t l = readlink(lp, target, sizeof target - 1);
            if (l < 0)
                continue; /* closed meanwhile */
            target[l] = 0;
            struct stat st;
            if (fstat(fd, &st) < 0)
                continue;
            snprintf(lp, sizeof lp, "/proc/self/fdinfo/%d", fd);
            int il = shim_read_file(lp, info, sizeof info);
            struct ck_fdinfo fi;
            memset(&fi, 0, sizeof fi);
            if (il > 0)
                ck_parse_fdinfo(info, (size_t)il, &fi);
            f->oflags = fi.flags;
            f->pos = fi.pos;
            int fl = fcntl(fd, F_GETFD);
            f->fdflags = fl > 0 ? (uint32_t)fl : 0;
            f->mode = st.st_mode;
            f->dev = st.st_dev;
            f->ino = st.st_ino;
            f->size = (uint64_t)st.st_size;
            f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
            ts_to_ns(&st.st_ctim, &f->ctime_ns);
            const char *path = target;
            size_t tl = strlen(target);
            int deleted = tl > 10 && !strcmp(target + tl - 10, " (deleted)");
            if (S_ISREG(st.st_mode)) {
                if (!strncmp(target, "/memfd:", 7)) {
                    f->kind = CK_FD_MEMFD;
                } else if (deleted) {
                    f->kind = CK_FD_DELETED;
                    target[tl - 10] = 0;
                } else {
                    struct stat ps;
                    if (stat(target, &ps) == 0 && ps.st_ino == st.st_ino && ps.st_dev == st.st_dev)
                        f->kind = CK_FD_FILE;
                    else
                        f->kind = CK_FD_DELETED;
                }
            } else if (S_ISDIR(st.st_mode)) {
                f->kind = deleted ? CK_FD_UNSUPPORTED : CK_FD_DIR;
                if (deleted) {
                    snprintf(err, errlen, "fd %d is a deleted directory (%s)", fd, target);
                    ret = -ENOTSUP;
                    goto out;
                }
            } else if (S_ISCHR(st.st_mode)) {
                if (is_tty_dev(st.st_rdev)) {
                    f->kind = CK_FD_TTY;
                    if (fd <= 2)
                        f->flags |= CK_FDF_STD_REDIRECT;
                } else if (!strcmp(target, "/dev/null") || !strcmp(target, "/dev/zero") ||
                           !strcmp(target, "/dev/full") || !strcmp(target, "/dev/random") ||
                           !strcmp(target, "/dev/urandom")) {
                    f->kind = CK_FD_CHR;
                } else {
                    snprintf(err, errlen, "fd %d is the device %s, which ckshim cannot restore",
                             fd, target);
                    ret = -ENOTSUP;
                    goto out;
                }
            } else if (S_ISFIFO(st.st_mode)) {
                f->kind = CK_FD_PIPE;
                f->aux = st.st_ino;
            } else if (S_ISSOCK(st.st_mode)) {
                snprintf(err, errlen, "fd %d is a socket (%s); sockets are not supported yet",
                         fd, target);
                ret = -ENOTSUP;
                goto out;
            } else if (!strcmp(target, "anon_inode:[eventfd]") && fi.has_eventfd) {
                f->kind = CK_FD_EVENTFD;
                f->aux = fi.eventfd_count;
                const char *sem = il > 0 ? strstr(info, "eventfd-semaphore:") : NULL;
                if (sem && strtol(sem + 18, NULL, 10) == 1)
                    f->flags |= CK_FDF_EFD_SEMAPHORE;
            } else if (!strcmp(target, "anon_inode:[eventpoll]")) {
                /* path: the watch list (epoll.c) */
                f->kind = CK_FD_EPOLL;
                if ((ret = epoll_capture(fd, &path, err, errlen)) < 0)
                    goto out;
            } else {
                const char *k = anon_kind(target);
                snprintf(err, errlen, "fd %d is %s (%s), which ckshim cannot restore", fd,
                         k ? k : "an unsupported kind of file", target);
                ret = -ENOTSUP;
                goto out;
            }
            f->path_off = strtab_add(path, &f->path_len) - g_shim.regions_strtab_len;
            /* Descriptors sharing one open file description (dup, fork). */
            for (uint32_t k = 0; k < g_shim.nfds; k++) {
                struct ck_fd *o = &g_shim.fds[k];
                if (o->ino == f->ino && o->dev == f->dev && o->share_with < 0 &&
                    syscall(SYS_kcmp, pid, pid, KCMP_FILE, o->fd, fd) == 0) {
                    f->share_with = o->fd;
                    break;
                }
            }
            g_shim.nfds++;
        }
    }
    /* Pipes whose other end is not in this process. */
    for (uint32_t i = 0; i < g_shim.nfds; i++) {
        struct ck_fd *f = &g_shim.fds[i];
        if (f->kind != CK_FD_PIPE ||
            g_shim.strtab[g_shim.regions_strtab_len + f->path_off] == '/')
            continue;
        int acc = (int)(f->oflags & O_ACCMODE), peer = 0;
        for (uint32_t k = 0; k < g_shim.nfds; k++) {
            struct ck_fd *o = &g_shim.fds[k];
            if (o->kind == CK_FD_PIPE && o->ino == f->ino && (int)(o->oflags & O_ACCMODE) != acc)
                peer = 1;
        }
        if (!peer) {
            f->flags |= CK_FDF_EXTERNAL;
            if (f->fd <= 2)
                f->flags |= CK_FDF_STD_REDIRECT;
        }
    }
    ret = capture_pipe_data(err, errlen);
out:
    close(dfd);
    return ret;
}

/* A pending-signal mask ("SigPnd:" for the thread, "ShdPnd:" for the
 * process) from /proc/self/task/TID/status, without the checkpoint signal. */
static uint64_t pending_mask(pid_t tid, const char *key)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    if (shim_read_file(path, buf, sizeof buf) <= 0)
        return 0;
    const char *p = strstr(buf, key);
    if (!p)
        return 0;
    uint64_t m = strtoull(p + strlen(key), NULL, 16);
    return m & ~(1ULL << (g_shim.ckpt_signal - 1));
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
        t->clear_tid_addr = g_shim.tid_off > 0 ? s->pd + (uint64_t)g_shim.tid_off : 0;
        memcpy(&t->sigmask, &s->uc->uc_sigmask, sizeof t->sigmask);
        t->ss_sp = (uint64_t)s->ss.ss_sp;
        t->ss_size = s->ss.ss_size;
        t->ss_flags = s->ss.ss_flags;
        t->sigpending = pending_mask(s->tid, "SigPnd:");
        t->user_ip = (uint64_t)s->uc->uc_mcontext.gregs[REG_RIP];
        t->user_sp = (uint64_t)s->uc->uc_mcontext.gregs[REG_RSP];
        memcpy(t->comm, s->comm, sizeof t->comm);
        unwind_thread(t, s->uc);
    }
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
    g_shim.proc.sigpending = pending_mask(shim_real_gettid(), "ShdPnd:");
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
    if ((r = capture_proc(err, errlen)) < 0)
        return r;
    /* Threads (and their backtraces) before the memory map: libunwind may
     * mmap memory for its caches, which must be in the image too. Nothing
     * may map memory the program keeps pointers to after this point. */
    capture_threads();
    if ((r = capture_regions(err, errlen)) < 0)
        return r;
    if ((r = capture_fds(err, errlen)) < 0)
        return r;
    return 0;
}
