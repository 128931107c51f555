/* inotify.c - inotify instances (CK_FD_INOTIFY).
 *
 * fdinfo lists each watch as `inotify wd:W ino:I sdev:D mask:M ...` (hex):
 * its number, the watched inode and the mask; not the path. CRIU opens
 * the inode by its file handle (open_by_handle_at), which needs
 * CAP_DAC_READ_SEARCH. We cannot, so the shim remembers the paths: its
 * wrapper of inotify_add_watch (preload/eventfds.c) calls
 * ck_inotify_note() with the path the program gave (made absolute with
 * the working directory of that moment) and the inode it names. The
 * table lives in the shim's memory, which every image carries, so it is
 * still there after a restore. At capture each watch's path is the
 * noted path that still names the watched inode; a file or directory
 * renamed since is looked for in the directory the program named it in
 * (and in the working directory), by inode. A watch whose path cannot be
 * found refuses the checkpoint, naming it.
 *
 * Restore (coord): inotify_init1, then for each watch in wd order
 * INOTIFY_IOC_SETNEXTWD to its number (gaps stay gaps) and
 * inotify_add_watch with its path and mask; at last the next free number
 * the program would have got. A watched path that is gone refuses the
 * restore before anything is changed (check). Events queued at the
 * checkpoint cannot be read without taking them from the program: they
 * are lost (their size is in the image, `coord inspect` shows it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fdkind.h"

#ifndef INOTIFY_IOC_SETNEXTWD
#define INOTIFY_IOC_SETNEXTWD _IOW('I', 0, int32_t)
#endif

/* ---- the shim's table of watched paths ---- */

struct note {
    uint64_t dev, ino;
    uint32_t flags;                     /* CK_INW_* */
    uint32_t len;                       /* of path, with its NUL */
    char path[];
};

#define NOTE_CHUNK (64 * 1024)
struct chunk {
    struct chunk *next;
    uint32_t used;                      /* published with release order */
    uint32_t pad;
    char data[];
};

static struct chunk *notes_first, *notes_last;
static int notes_lock;
#define NOTE_FDS 1024
static int notes_last_wd[NOTE_FDS];     /* the last wd inotify_add_watch gave, per fd */

static size_t note_size(uint32_t len)
{
    return (sizeof(struct note) + len + 7) & ~(size_t)7;
}

/* Is inode (dev, ino) the file st? fdinfo names the device of the file
 * system's super block; stat may name another anonymous device for the
 * same file (a btrfs subvolume): two anonymous devices (major 0) are
 * taken as the same when the inode numbers agree. */
static int same_inode(uint64_t dev1, uint64_t ino1, uint64_t dev, uint64_t ino)
{
    return ino1 == ino && (dev1 == dev || (major(dev1) == 0 && major(dev) == 0));
}

static int same_file(const struct stat *st, uint64_t dev, uint64_t ino)
{
    return same_inode(st->st_dev, st->st_ino, dev, ino);
}

static int verify(const char *path, uint32_t flags, uint64_t dev, uint64_t ino)
{
    struct stat st;
    int r = (flags & CK_INW_DONT_FOLLOW) ? lstat(path, &st) : stat(path, &st);
    return r == 0 && same_file(&st, dev, ino);
}

/* Called by the shim's inotify_add_watch wrapper after the kernel gave
 * wd: remember which path named which inode. One entry per (inode, path):
 * a program that adds and removes the same watches does not grow it. */
void ck_inotify_note(int fd, int wd, const char *path, uint32_t mask)
{
    char abs[CK_PATH_MAX];
    size_t pl = strlen(path);
    if (path[0] == '/') {
        if (pl >= sizeof abs)
            return;
        memcpy(abs, path, pl + 1);
    } else {
        while (path[0] == '.' && path[1] == '/') { /* "./x": x */
            path += 2;
            pl -= 2;
        }
        if (!getcwd(abs, sizeof abs))
            return;
        size_t cl = strlen(abs);
        if (!strcmp(path, ".")) /* the working directory itself */
            pl = 0;
        if (cl + 1 + pl >= sizeof abs)
            return;
        if (pl) {
            abs[cl] = cl > 1 ? '/' : 0;
            memcpy(abs + cl + (cl > 1), path, pl + 1);
        }
    }
    uint32_t flags = ((mask & IN_DONT_FOLLOW) ? CK_INW_DONT_FOLLOW : 0) |
                     ((mask & IN_ONLYDIR) ? CK_INW_ONLYDIR : 0);
    struct stat st;
    if (((flags & CK_INW_DONT_FOLLOW) ? lstat(abs, &st) : stat(abs, &st)) < 0)
        return;
    uint32_t len = (uint32_t)strlen(abs) + 1;
    size_t need = note_size(len);
    while (__atomic_exchange_n(&notes_lock, 1, __ATOMIC_ACQUIRE))
        ;
    if (fd >= 0 && fd < NOTE_FDS)
        notes_last_wd[fd] = wd;
    for (struct chunk *c = notes_first; c; c = c->next)
        for (uint32_t off = 0; off < c->used;) {
            struct note *n = (struct note *)(c->data + off);
            if (n->ino == st.st_ino && n->dev == st.st_dev && n->len == len &&
                !memcmp(n->path, abs, len)) {
                n->flags = flags;
                __atomic_store_n(&notes_lock, 0, __ATOMIC_RELEASE);
                return;
            }
            off += (uint32_t)note_size(n->len);
        }
    struct chunk *c = notes_last;
    if (!c || c->used + need > NOTE_CHUNK - sizeof *c) {
        c = mmap(NULL, NOTE_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (c == MAP_FAILED) {
            __atomic_store_n(&notes_lock, 0, __ATOMIC_RELEASE);
            return;
        }
        if (notes_last)
            __atomic_store_n(&notes_last->next, c, __ATOMIC_RELEASE);
        else
            __atomic_store_n(&notes_first, c, __ATOMIC_RELEASE);
        notes_last = c;
    }
    struct note *n = (struct note *)(c->data + c->used);
    n->dev = st.st_dev;
    n->ino = st.st_ino;
    n->flags = flags;
    n->len = len;
    memcpy(n->path, abs, len);
    __atomic_store_n(&c->used, c->used + (uint32_t)need, __ATOMIC_RELEASE);
    __atomic_store_n(&notes_lock, 0, __ATOMIC_RELEASE);
}

/* Look for inode (dev, ino) among the entries of directory dir; the path
 * found goes to out. 1 found, 0 not. No allocation (the program is
 * parked): getdents64 into a stack buffer. */
static int search_dir(const char *dir, uint64_t dev, uint64_t ino, uint32_t *flags, char *out,
                      size_t outlen)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    char buf[4096] __attribute__((aligned(8)));
    long n;
    int found = 0;
    while (!found && (n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n && !found;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            if (d->d_ino != ino || !strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
                continue;
            if ((size_t)snprintf(out, outlen, "%s/%s", dir, d->d_name) >= outlen)
                continue;
            /* d_ino is the entry's own inode: a symbolic link is the watch
             * on the link itself */
            struct stat st;
            if (lstat(out, &st) == 0 && same_file(&st, dev, ino)) {
                if (S_ISLNK(st.st_mode))
                    *flags |= CK_INW_DONT_FOLLOW;
                found = 1;
            }
        }
    }
    close(dfd);
    return found;
}

static void *map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* The notes by inode number while an instance is captured: open
 * addressing in a temporary mapping (no malloc while the program is
 * parked), so thousands of watches cost thousands of probes, not
 * millions of comparisons. Without it (no memory) the list is walked. */
static const struct note **note_idx;
static size_t note_idx_cap;             /* a power of 2 */

static size_t ino_slot(uint64_t ino)
{
    return (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 17) & (note_idx_cap - 1);
}

static void index_notes(void)
{
    size_t n = 0, cap = 64;
    struct chunk *first = __atomic_load_n(&notes_first, __ATOMIC_ACQUIRE);
    for (int fill = 0; fill < 2; fill++)
        for (struct chunk *c = first; c; c = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE)) {
            uint32_t used = __atomic_load_n(&c->used, __ATOMIC_ACQUIRE);
            for (uint32_t off = 0; off < used;) {
                const struct note *x = (const struct note *)(c->data + off);
                off += (uint32_t)note_size(x->len);
                if (!fill) {
                    n++;
                    continue;
                }
                size_t h = ino_slot(x->ino);
                while (note_idx[h])
                    h = (h + 1) & (note_idx_cap - 1);
                note_idx[h] = x;
            }
            if (!fill && !c->next) {
                while (cap < 2 * n)
                    cap <<= 1;
                if (!(note_idx = map(cap * sizeof *note_idx)))
                    return;
                note_idx_cap = cap;
            }
        }
}

static void index_drop(void)
{
    if (note_idx)
        munmap(note_idx, note_idx_cap * sizeof *note_idx);
    note_idx = NULL;
    note_idx_cap = 0;
}

/* The next note on inode number ino (*it starts at 0), or NULL. */
struct note_iter {
    int started;
    size_t h;
    struct chunk *c;
    uint32_t off;
};

static const struct note *next_note(struct note_iter *it, uint64_t ino)
{
    if (!it->started) {
        it->started = 1;
        it->c = __atomic_load_n(&notes_first, __ATOMIC_ACQUIRE);
        if (note_idx)
            it->h = ino_slot(ino);
    }
    if (note_idx) {
        while (note_idx[it->h]) {
            const struct note *x = note_idx[it->h];
            it->h = (it->h + 1) & (note_idx_cap - 1);
            if (x->ino == ino)
                return x;
        }
        return NULL;
    }
    for (; it->c; it->c = __atomic_load_n(&it->c->next, __ATOMIC_ACQUIRE), it->off = 0) {
        uint32_t used = __atomic_load_n(&it->c->used, __ATOMIC_ACQUIRE);
        while (it->off < used) {
            const struct note *x = (const struct note *)(it->c->data + it->off);
            it->off += (uint32_t)note_size(x->len);
            if (x->ino == ino)
                return x;
        }
    }
    return NULL;
}

/* A descriptor of the program's on inode (dev, ino) (a removed file it
 * still holds open): out = "/proc/self/fd/N", which inotify_add_watch
 * follows to the file behind it. 1 found, 0 not. */
static int held_fd(uint64_t dev, uint64_t ino, uint32_t *flags, char *out, size_t outlen)
{
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    char buf[4096] __attribute__((aligned(8)));
    long n;
    int found = 0;
    while (!found && (n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0)
        for (long off = 0; off < n && !found;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            struct stat st;
            if (d->d_name[0] < '0' || d->d_name[0] > '9' ||
                (size_t)snprintf(out, outlen, "/proc/self/fd/%s", d->d_name) >= outlen)
                continue;
            found = stat(out, &st) == 0 && same_file(&st, dev, ino);
        }
    close(dfd);
    if (found)
        *flags = CK_INW_FD;
    return found;
}

/* The path of the watched inode (dev, ino): out, flags. 1 found, 0 not. */
static int find_path(uint64_t dev, uint64_t ino, uint32_t *flags, char *out, size_t outlen)
{
    for (int pass = 0; pass < 2; pass++) {
        struct note_iter it = {0};
        const struct note *n;
        while ((n = next_note(&it, ino))) {
            if (!same_inode(n->dev, n->ino, dev, ino) || n->len > outlen)
                continue;
            *flags = n->flags;
            if (pass == 0 && verify(n->path, n->flags, dev, ino)) {
                memcpy(out, n->path, n->len);
                return 1;
            }
            /* renamed since: in the directory the program named it in */
            char dir[CK_PATH_MAX];
            memcpy(dir, n->path, n->len);
            char *slash = strrchr(dir, '/');
            if (pass == 1 && slash) {
                *slash = 0;
                if (search_dir(dir[0] ? dir : "/", dev, ino, flags, out, outlen))
                    return 1;
            }
        }
    }
    char cwd[CK_PATH_MAX];
    *flags = 0;
    if (getcwd(cwd, sizeof cwd) && search_dir(cwd, dev, ino, flags, out, outlen))
        return 1;
    return held_fd(dev, ino, flags, out, outlen);
}

/* ---- capture ---- */

/* The whole of /proc/self/fdinfo/FD in a mapping (*len bytes, NUL after). */
static char *read_fdinfo(int fd, size_t *len, size_t *cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int ifd = open(path, O_RDONLY | O_CLOEXEC);
    if (ifd < 0)
        return NULL;
    size_t size = 1 << 20, got = 0;
    char *buf = map(size);
    while (buf) {
        ssize_t n = read(ifd, buf + got, size - got - 1);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got + 1 >= size) {
            char *bigger = mremap(buf, size, size * 2, MREMAP_MAYMOVE);
            if (bigger == MAP_FAILED) {
                munmap(buf, size);
                buf = NULL;
                break;
            }
            buf = bigger;
            size *= 2;
        }
    }
    close(ifd);
    if (buf)
        buf[got] = 0;
    *len = got;
    *cap = size;
    return buf;
}

static uint64_t hexfield(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    return p ? strtoull(p + strlen(key), NULL, 16) : 0;
}

static int inotify_capture(struct ck_fdcap *c)
{
    if (strcmp(c->target, "anon_inode:inotify"))
        return 0;
    size_t ilen, icap;
    char *info = read_fdinfo(c->fd, &ilen, &icap);
    if (!info) {
        snprintf(c->err, c->errlen, "fd %d is an inotify instance whose fdinfo cannot be read: "
                 "%s", c->fd, strerror(errno));
        return -1;
    }
    uint32_t n = 0;
    for (const char *p = info; (p = strstr(p, "inotify wd:")); p++)
        n++;
    index_notes();
    size_t cap = sizeof(struct ck_inotify) + n * sizeof(struct ck_inotify_watch) +
                 (size_t)n * CK_PATH_MAX;
    char *buf = map(cap);
    int ret = -1;
    if (!buf) {
        snprintf(c->err, c->errlen, "fd %d: inotify: out of memory", c->fd);
        goto out;
    }
    struct ck_inotify *h = (struct ck_inotify *)buf;
    struct ck_inotify_watch *w = (struct ck_inotify_watch *)(h + 1);
    char *paths = (char *)(w + n);
    size_t plen = 0;
    int maxwd = 0;
    uint32_t k = 0;
    /* the kernel lists the newest watch first: fill from the back, so
     * the insertion sort below has little to do */
    for (const char *p = info; k < n && (p = strstr(p, "inotify wd:")); p++, k++) {
        const char *eol = strchr(p, '\n');
        char line[512];
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll >= sizeof line)
            ll = sizeof line - 1;
        memcpy(line, p, ll);
        line[ll] = 0;
        struct ck_inotify_watch *x = &w[n - 1 - k];
        uint64_t sdev = hexfield(line, " sdev:");
        x->wd = (int32_t)hexfield(line, "wd:");
        x->ino = hexfield(line, " ino:");
        x->mask = (uint32_t)hexfield(line, " mask:");
        x->dev = makedev((unsigned)(sdev >> 20), (unsigned)(sdev & 0xfffff)); /* kernel dev_t */
        x->flags = 0;
        if (!find_path(x->dev, x->ino, &x->flags, paths + plen, CK_PATH_MAX)) {
            snprintf(c->err, c->errlen, "fd %d is an inotify instance whose watch %d (inode %llu "
                     "on device %u:%u) has no path ckshim can find (removed, or moved out of "
                     "the directory it was watched in); ckshim cannot restore it", c->fd, x->wd,
                     (unsigned long long)x->ino, major(x->dev), minor(x->dev));
            goto out;
        }
        x->path_off = (uint32_t)plen;
        plen += strlen(paths + plen) + 1;
        if (x->wd > maxwd)
            maxwd = x->wd;
    }
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && w[j - 1].wd > w[j].wd; j--) {
            struct ck_inotify_watch t = w[j];
            w[j] = w[j - 1];
            w[j - 1] = t;
        }
    /* the paths follow the entries: close the gap the sort left unused */
    h->nwatch = n;
    h->next_wd = maxwd + 1;
    if (c->fd >= 0 && c->fd < NOTE_FDS && notes_last_wd[c->fd] > maxwd)
        h->next_wd = notes_last_wd[c->fd] + 1;
    int q = 0;
    h->queued = ioctl(c->fd, FIONREAD, &q) == 0 && q > 0 ? (uint32_t)q : 0;
    c->f->kind = CK_FD_INOTIFY;
    c->f->aux = n;
    ret = c->state(c, buf, (size_t)(paths - buf) + plen) < 0 ? -1 : 1;
out:
    index_drop();
    if (buf)
        munmap(buf, cap);
    munmap(info, icap);
    return ret;
}

/* ---- restore ---- */

struct watchlist {
    const struct ck_inotify *h;
    const struct ck_inotify_watch *w;
    const char *paths;
};

/* The watches of a state blob, checked: -1 (err set) if malformed. */
static int watches(struct ck_fdrest *r, struct watchlist *x)
{
    const struct ck_inotify *h = r->state;
    if (!h || r->state_len < sizeof *h ||
        (r->state_len - sizeof *h) / sizeof *x->w < h->nwatch) {
        snprintf(r->err, r->errlen, "fd %d: inotify instance without its watches in the image",
                 r->f->fd);
        return -1;
    }
    x->h = h;
    x->w = (const struct ck_inotify_watch *)(h + 1);
    x->paths = (const char *)(x->w + h->nwatch);
    size_t plen = r->state_len - sizeof *h - h->nwatch * sizeof *x->w;
    for (uint32_t i = 0; i < h->nwatch; i++)
        if (x->w[i].path_off >= plen ||
            !memchr(x->paths + x->w[i].path_off, 0, plen - x->w[i].path_off)) {
            snprintf(r->err, r->errlen, "fd %d: inotify watch %d has a bad path in the image",
                     r->f->fd, x->w[i].wd);
            return -1;
        }
    return 0;
}

static int inotify_check(struct ck_fdrest *r)
{
    struct watchlist x;
    if (watches(r, &x) < 0)
        return -1;
    const struct ck_inotify_watch *w = x.w;
    for (uint32_t i = 0; i < x.h->nwatch; i++) {
        const char *p = x.paths + w[i].path_off;
        struct stat st;
        if (w[i].flags & CK_INW_FD)
            continue; /* the descriptor's own restore makes its file */
        if (((w[i].flags & CK_INW_DONT_FOLLOW) ? lstat(p, &st) : stat(p, &st)) < 0) {
            snprintf(r->err, r->errlen, "fd %d: the inotify watch %d on %s cannot be made again: "
                     "%s", r->f->fd, w[i].wd, p, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Add to instance fd the watches of x that are (fdwatches) or are not
 * made through a descriptor, each with its number, then give the
 * instance its next number. 0, or -1 with err set. */
static int add_watches(struct ck_fdrest *r, int fd, const struct watchlist *x, int fdwatches)
{
    const struct ck_inotify_watch *w = x->w;
    for (uint32_t i = 0; i < x->h->nwatch; i++) {
        if (!(w[i].flags & CK_INW_FD) != !fdwatches)
            continue;
        const char *p = x->paths + w[i].path_off;
        uint32_t mask = w[i].mask | ((w[i].flags & CK_INW_DONT_FOLLOW) ? IN_DONT_FOLLOW : 0) |
                        ((w[i].flags & CK_INW_ONLYDIR) ? IN_ONLYDIR : 0);
        if (ioctl(fd, INOTIFY_IOC_SETNEXTWD, (long)w[i].wd) < 0) {
            snprintf(r->err, r->errlen, "fd %d: cannot give the inotify watch on %s its number "
                     "%d (INOTIFY_IOC_SETNEXTWD): %s", r->f->fd, p, w[i].wd, strerror(errno));
            return -1;
        }
        int wd = inotify_add_watch(fd, p, mask);
        if (wd != w[i].wd) {
            snprintf(r->err, r->errlen, "fd %d: the inotify watch %d on %s came back as %d: %s",
                     r->f->fd, w[i].wd, p, wd, wd < 0 ? strerror(errno)
                                                      : "another watch has its file now");
            return -1;
        }
    }
    if (x->h->next_wd > 0)
        ioctl(fd, INOTIFY_IOC_SETNEXTWD, (long)x->h->next_wd);
    return 0;
}

static int inotify_restore(struct ck_fdrest *r)
{
    struct watchlist x;
    if (watches(r, &x) < 0)
        return -1;
    /* no IN_CLOEXEC: the shim sets the descriptor flags after restore */
    int fd = inotify_init1((r->f->oflags & O_NONBLOCK) ? IN_NONBLOCK : 0);
    if (fd < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot create an inotify instance: %s", r->f->fd,
                 strerror(errno));
        return -1;
    }
    if (add_watches(r, fd, &x, 0) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Watches of removed files the program holds open: through those
 * descriptors, now that every one is at its number. */
static int inotify_after(struct ck_fdrest *r)
{
    struct watchlist x;
    if (watches(r, &x) < 0)
        return -1;
    return add_watches(r, r->f->fd, &x, 1);
}

static void inotify_describe(const struct ck_fd *f, const void *state, size_t len, char *out,
                             size_t outlen)
{
    (void)f;
    const struct ck_inotify *h = state;
    if (!h || len < sizeof *h) {
        snprintf(out, outlen, "inotify (no state)");
        return;
    }
    const struct ck_inotify_watch *w = (const struct ck_inotify_watch *)(h + 1);
    size_t nw = (len - sizeof *h) / sizeof *w < h->nwatch ? 0 : h->nwatch;
    const char *paths = (const char *)(w + nw);
    size_t plen = len - sizeof *h - nw * sizeof *w; /* path_off counts from paths */
    int n = snprintf(out, outlen, "inotify, %u watches", h->nwatch);
    if (h->queued && n > 0 && (size_t)n < outlen)
        n += snprintf(out + n, outlen - (size_t)n, " (%u bytes of queued events lost)",
                      h->queued);
    for (uint32_t i = 0; i < nw && n > 0 && (size_t)n < outlen; i++)
        if (w[i].path_off < plen && memchr(paths + w[i].path_off, 0, plen - w[i].path_off))
            n += snprintf(out + n, outlen - (size_t)n, "%s %d:%s mask %#x", i ? "," : ":",
                          w[i].wd, paths + w[i].path_off, w[i].mask);
}

const struct ck_fdkind ck_fdkind_inotify = {
    .kind = CK_FD_INOTIFY,
    .name = "inotify",
    .capture = inotify_capture,
    .check = inotify_check,
    .restore = inotify_restore,
    .after = inotify_after,
    .describe = inotify_describe,
};
