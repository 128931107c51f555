/* restore.c - coord restore FILE [--detach]
 *
 * Everything that can be checked is checked before anything is changed:
 * the image's structure (header, every record header, every metadata
 * checksum, the totals in END), that this kernel's vdso is the image's,
 * that every mapped file is still the same file, that no region collides
 * with the restorer's window, that the counter stamp is current. Then
 * coord recreates the descriptors at their numbers, the working directory,
 * the umask and the resource limits, writes a plan (common/plan.h) for the
 * restorer and execs it: the restored program runs as this very process
 * (in the foreground), or as a detached child with --detach.
 *
 * Page payloads are checksummed by the restorer as it reads them, instead
 * of in a pass of their own before: the image is read once, in parallel,
 * which matters most when it is not in the page cache (checkpoints write
 * with O_DIRECT). Nothing runs before every page is checked: the restorer
 * stops at a gate after filling memory, and a helper process (orphaned,
 * so the restored program never sees it as a child) opens the gate only
 * then; it advances the counter at the gate's second step, once the shim
 * reports the process whole (threads made, restore_finish done), just
 * before any program code runs. A damaged image, or a restore that fails
 * late, therefore ends with nothing running and the counter untouched.
 * Authenticated and encrypted images are still read whole first (the MAC
 * must be checked before anything in the image is believed).
 *
 * Descriptor rule: stdin/stdout/stderr that pointed at a terminal or at a
 * pipe whose other end is gone are connected to coord's own (to /dev/null
 * with --detach). Other pipes to processes that are gone come back as
 * pipes without a peer (reads see end of file, writes EPIPE).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chunk.h"
#include "auth.h"
#include "coord.h"
#include "counter.h"
#include "fileid.h"
#include "fdkind.h"
#include "fileident.h"
#include "imgio.h"
#include "plan.h"
#include "procparse.h"
#include "rawsys.h"
#include "tree.h"
#include "treeshare.h"
#include "xxh64.h"

struct rctx {
    const char *file;
    struct ck_image img;
    int img_fd;
    int detach;
    int status_fd;                      /* write end, child side (-1 if none) */
    int saved_std[3];                   /* coord's own stdin/out/err */
    struct ck_key key;
    int have_key, encrypted;
    int pages_plain;                    /* PAGES decrypted in place in img_fd (decrypt_pages) */
    int pages_fd;                       /* decrypted page payloads (memfd), or -1 */
    int in_memory;                      /* img_fd is a memfd copy (from stdin) */
    int err_fd;                         /* where messages go once fds move */
    int commit;                         /* counter advanced at the restorer's gate */
    struct ck_counter counter;
    char err[1024];
    char **allow;                       /* --allow-changed PATH (or "all") */
    int nallow;
    int same_host;                      /* this machine took the image */
    struct seen {                       /* the file each region/fd was checked against */
        uint64_t dev, ino;
    } *rseen, *fseen;
    uint8_t *remake;                    /* regions whose saved file is to be recreated */
    int32_t *shm_ids;                   /* per SHM entry: the segment to attach */
    uint8_t *shm_new;                   /* per SHM entry: 1 = to be made anew */
    char script[PATH_MAX];              /* --action-script (absolute), or "" */
    char script_image[PATH_MAX + 1];    /* the image, absolute, for the script */
    int tree_idx;                       /* index in a restored tree (g_tree), or -1 */
    int no_versions;                    /* --no-file-versions */
    char **shared;                      /* --shared-file PATH (as the image names it) */
    int nshared;
    struct version {                    /* a written file to put back (plan_versions) */
        uint32_t i;                     /* its descriptor in the image */
        int fd;                         /* opened for writing, checked to be the file */
        int cut;                        /* 1: cut back to len; 0: rewrite with data */
        uint64_t len;
        uint8_t *data;
    } *vers;
    int nvers;
};

/* A process tree being restored (restore_tree). */
struct tree_pipe {
    uint64_t dev, ino;
    int fd;                             /* O_RDWR description, filled; close-on-exec */
};
static struct {
    int n;
    struct rctx *m;                     /* per process, in the image's order */
    struct ck_tree_entry *e;
    int *gate_rd, *ready_wr;            /* per process: its ends of the tree gate */
    struct tree_pipe *pipes;
    int npipes;
    int map_fd;                         /* memfd "ckshim-tree": {vpid, pid now}[n] */
    uint8_t *macs;                      /* with a key: each stream's MAC (ck_tree_check_mac) */
    int32_t *map;
    struct tree_shm {                   /* shared memory the tree shares (tree_shm_region) */
        uint64_t dev, ino;              /* its inode at checkpoint (ck_region.dev, ino) */
        int fd;                         /* memfd "ckshim-tree-shm" holding its pages */
    } *shms;
    int nshms;
    struct tree_file {                  /* a file open for writing that processes share */
        uint64_t dev, ino;
        int64_t pos;
        uint32_t oflags;
        int fd;                         /* the one open file description; close-on-exec */
    } *files;
    int nfiles;
    /* Process groups and sessions (docs/DESIGN.md, "Process groups and
     * sessions in a tree"): per process, where its group's and session's
     * ids of now go in the map, whether it makes its group (setpgid(0, 0))
     * or session (setsid), and the round its parent forks it in. */
    int32_t **pg_now, **sid_now;
    char *makes_pg, *makes_sid, *phase;
    /* per process: an orphan (CK_TREE_ORPHAN) whose session its helper
     * makes (setsid) before it forks it; helper: one whose session is not
     * its maker's (ck_tree_helpers) */
    char *helper_sid, *helper;
    struct ck_tree_share *shares;       /* the share table (tree header), or NULL */
    uint64_t nshares;
    int shares_known;                   /* CK_TREE_HDR_SHARES */
    struct ck_tree_socks socks;         /* every socket, when processes share or
                                           connect them (make_tree_socks) */
    struct tree_desc {                  /* a descriptor the tree made for a process */
        int proc, fd;                   /* process index, its descriptor */
        int made;                       /* the description, close-on-exec */
        int skip_after;                 /* its kind's after/after_all ran elsewhere */
    } *descs;
    int ndescs;
    struct tree_pty {                   /* a pseudo-terminal whose master one process
                                           holds and whose slave others (or a session's
                                           controlling terminal) */
        uint64_t ptn;                   /* its number at checkpoint */
        int master;                     /* the new pair's master (one of the descs') */
    } *ptys;
    int nptys;
    struct tree_inode {                 /* a deleted file or memfd several processes hold */
        uint32_t kind;
        uint64_t dev, ino;
        int fd;                         /* one of the descs' (made): reopened through it */
    } *inodes;
    int ninodes;
    /* Processes forked by their parent's restorer (tree_fork_kind): per
     * process 'L' (once the parent's memory is in place), 'F' (before) or
     * 0 (by coord), and in its parent's coord process (or preparer) the
     * socket to its preparer (close-on-exec until handed on), or -1. */
    char *late;
    int *prep_near;
    int hi;                             /* coord's own descriptors of the tree go from here */
} g_tree;

/* In a preparer (start_preparer): the tree index of the process whose
 * table it makes, and its end of the socket to that process, else -1. */
static int g_prep_idx = -1, g_prep_sock = -1;

/* The description the tree made for process proc's descriptor fd, or -1. */
static int tree_desc_of(int proc, int fd, int *skip_after)
{
    for (int k = 0; proc >= 0 && k < g_tree.ndescs; k++)
        if (g_tree.descs[k].proc == proc && g_tree.descs[k].fd == fd) {
            if (skip_after)
                *skip_after = g_tree.descs[k].skip_after;
            return g_tree.descs[k].made;
        }
    return -1;
}

/* Restoring in a pid namespace of the program's own (an image taken in
 * one, or --pidns): every process is made with its pid (clone3 set_tid),
 * every thread with its tid where it can (docs/DESIGN.md, "PID
 * namespaces"). */
static int g_pidns;

/* The pid a restored process is made with: its own in a pid namespace
 * (ck_pidns_fork_as), any otherwise. */
static pid_t tree_fork(int vpid)
{
    return g_pidns ? ck_pidns_fork_as(vpid) : fork();
}

/* One open file description processes of the tree share (inherited
 * across fork): a regular file open for writing at the same offset with
 * the same flags in two or more of them (a log on stdout). */
static int tree_file_match(const struct ck_fd *a, const struct ck_fd *b)
{
    return a->kind == CK_FD_FILE && b->kind == CK_FD_FILE && a->share_with < 0 &&
           b->share_with < 0 && (a->oflags & O_ACCMODE) != O_RDONLY && a->dev == b->dev &&
           a->ino == b->ino && a->pos == b->pos && a->oflags == b->oflags;
}

static int tree_file_fd(const struct ck_fd *f)
{
    for (int k = 0; k < g_tree.nfiles; k++) {
        const struct tree_file *t = &g_tree.files[k];
        if (t->dev == f->dev && t->ino == f->ino && t->pos == f->pos && t->oflags == f->oflags &&
            f->kind == CK_FD_FILE && f->share_with < 0)
            return t->fd;
    }
    return -1;
}

/* Is region r of im shared memory that processes of a tree share by
 * mapping the same object, and that restore makes once for all of them
 * (make_tree_shm)? MAP_SHARED anonymous memory inherited across fork,
 * and the shared mappings of a deleted file or memfd no descriptor of the
 * process holds (a named semaphore removed at once, a memfd closed after
 * mmap): their inode tells them apart. */
static int tree_shm_region(const struct ck_image *im, const struct ck_region *r)
{
    if (!(r->flags & CK_REG_SHARED) || (r->flags & CK_REG_SYSV) || !r->ino)
        return 0;
    if (r->flags & CK_REG_ANON)
        return 1;
    if (!(r->flags & CK_REG_DELETED) || (r->flags & CK_REG_FROMFD))
        return 0;
    for (uint32_t k = 0; k < im->nfds; k++)
        if ((im->fds[k].kind == CK_FD_MEMFD || im->fds[k].kind == CK_FD_DELETED) &&
            im->fds[k].ino == r->ino && im->fds[k].dev == r->dev)
            return 0; /* mapped from that descriptor, shared with it */
    return 1;
}

/* The memfd of the tree's shared memory region r of im maps, or -1. */
static int tree_shm_fd(const struct ck_image *im, const struct ck_region *r)
{
    if (!tree_shm_region(im, r))
        return -1;
    for (int k = 0; k < g_tree.nshms; k++)
        if (g_tree.shms[k].ino == r->ino && g_tree.shms[k].dev == r->dev)
            return g_tree.shms[k].fd;
    return -1;
}

static void fail_msg(struct rctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_msg(struct rctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

/* The directory coord lives in, to find ckshim-restore next to it or in
 * ../lib/ckshim. */
static int find_restorer(char *out, size_t len)
{
    const char *env = getenv("CKSHIM_RESTORER");
    if (env && access(env, X_OK) == 0) {
        snprintf(out, len, "%s", env);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        return -errno;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    snprintf(out, len, "%s/ckshim-restore", self);
    if (access(out, X_OK) == 0)
        return 0;
    snprintf(out, len, "%s/../lib/ckshim/ckshim-restore", self);
    if (access(out, X_OK) == 0)
        return 0;
    return -ENOENT;
}

/* Compare this kernel's vdso and vvar with the image's. */
static int check_vdso(struct rctx *c)
{
    const struct ck_proc *p = &c->img.proc;
    char *maps = NULL;
    size_t cap = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) {
        fail_msg(c, "cannot read /proc/self/maps");
        return -1;
    }
    uint64_t have[3][2] = {{0, 0}, {0, 0}, {0, 0}};
    const char *names[3] = {"[vvar]", "[vvar_vclock]", "[vdso]"};
    while (getline(&maps, &cap, f) > 0) {
        struct ck_maps_entry e;
        if (ck_parse_maps_line(maps, &e) < 0)
            continue;
        for (int i = 0; i < 3; i++)
            if (!strcmp(e.path, names[i])) {
                have[i][0] = e.start;
                have[i][1] = e.end;
            }
    }
    free(maps);
    fclose(f);
    uint64_t want[3][2] = {{p->vvar_start, p->vvar_end},
                           {p->vclock_start, p->vclock_end},
                           {p->vdso_start, p->vdso_end}};
    for (int i = 0; i < 3; i++) {
        if ((have[i][1] - have[i][0]) != (want[i][1] - want[i][0]) ||
            (!have[i][0] != !want[i][0])) {
            fail_msg(c, "the image was taken under kernel %s; this kernel's %s differs in size, "
                     "so the program's cached vdso entry points would not work",
                     c->img.hdr.kernel, names[i]);
            return -1;
        }
    }
    uint64_t h = ck_xxh64((const void *)have[2][0], have[2][1] - have[2][0], 0);
    if (h != p->vdso_hash) {
        fail_msg(c, "the image was taken under kernel %s; this kernel's vdso is different, so "
                 "the program's cached vdso entry points would not work",
                 c->img.hdr.kernel);
        return -1;
    }
    return 0;
}

/* Descriptors are recreated at their numbers and coord's own are moved
 * above the highest of them, so coord's soft RLIMIT_NOFILE must exceed
 * that number plus a few (a program that raised its limit and holds fd
 * 5000 is restored by a coord with the usual 1024). Raised here, before
 * anything changes; restore_env puts the program's own limits back once
 * every descriptor is in place. */
static int raise_nofile(struct rctx *c)
{
    int maxfd = 2;
    for (uint32_t i = 0; i < c->img.nfds; i++)
        if (c->img.fds[i].fd > maxfd)
            maxfd = c->img.fds[i].fd;
    rlim_t need = ck_nofile_need(maxfd, c->img.nfds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fail_msg(c, "the program holds fd %d, which needs a descriptor limit of at least %llu, "
                 "but the hard RLIMIT_NOFILE here is %llu (raise it: ulimit -Hn)", maxfd,
                 (unsigned long long)need, (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fail_msg(c, "cannot raise RLIMIT_NOFILE to %llu for fd %d: %s", (unsigned long long)need,
                 maxfd, strerror(errno));
        return -1;
    }
    return 0;
}

/* Whether this process is exempt from RLIMIT_NPROC: the kernel lets root,
 * CAP_SYS_RESOURCE and CAP_SYS_ADMIN go past it. */
static int nproc_exempt(void)
{
    if (getuid() == 0 || geteuid() == 0)
        return 1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long eff = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "CapEff: %llx", &eff) == 1)
            break;
    fclose(f);
    return !!(eff & ((1ULL << 24) | (1ULL << 21))); /* CAP_SYS_RESOURCE, CAP_SYS_ADMIN */
}

/* Threads (tasks) the user already runs: num_threads of every process
 * /proc shows as theirs. Cheap (one small read per own process); a process
 * made non-dumpable shows as root's and is missed, so this can only
 * undercount. */
static long user_tasks(uid_t uid)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        struct stat st;
        struct ck_pstat ps;
        char path[64];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        if (stat(path, &st) < 0 || st.st_uid != uid || ck_pstat_read(atoi(e->d_name), &ps) < 0)
            continue;
        if (ps.threads > 0)
            n += ps.threads;
    }
    closedir(d);
    return n;
}

/* The restorer creates the program's threads after the counter gate: a
 * clone refused there by RLIMIT_NPROC would leave the image used up. So
 * check the limit against the image's threads and the user's running
 * tasks before anything changes. A process of a tree is not checked on
 * its own: check_tree_nproc counts the whole tree once. */
static int nproc_fits(struct rctx *c, long need, const char *what)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NPROC, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || nproc_exempt())
        return 0;
    long have = user_tasks(getuid());
    if ((unsigned long long)(have + need) > (unsigned long long)rl.rlim_cur) {
        fail_msg(c, "RLIMIT_NPROC (ulimit -u) is %llu; the %s %ld threads and you "
                 "already run %ld (raise it: ulimit -u, or stop other processes)",
                 (unsigned long long)rl.rlim_cur, what, need, have);
        return -1;
    }
    return 0;
}

static int check_nproc(struct rctx *c)
{
    if (c->tree_idx >= 0)
        return 0;
    return nproc_fits(c, (long)c->img.nthreads, "program needs");
}

static int change_allowed(const struct rctx *c, const char *path)
{
    for (int i = 0; i < c->nallow; i++)
        if (!strcmp(c->allow[i], "all") || !strcmp(c->allow[i], path))
            return 1;
    return 0;
}

/* Bytes of the saved copy of region i's file (CK_REG_SAVED) in the image,
 * or -1 if none: the copy is written by the first region of the file. */
static int64_t saved_bytes(const struct rctx *c, uint32_t i, uint32_t *owner)
{
    const struct ck_image *im = &c->img;
    const struct ck_region *r = &im->regions[i];
    uint32_t k;
    for (k = 0; k <= i; k++)
        if ((im->regions[k].flags & CK_REG_SAVED) && im->regions[k].dev == r->dev &&
            im->regions[k].ino == r->ino)
            break;
    if (k > i)
        return -1;
    *owner = k;
    uint64_t n = 0;
    for (uint32_t f = 0; f < im->nfiledata; f++)
        if (im->filedata[f].rec.arg == (CK_FILEDATA_REGION | k))
            n += im->filedata[f].rec.raw_len;
    return n == r->fsize ? (int64_t)n : -1;
}

/* The program's working directory had been removed (the kernel's name
 * for it ends in " (deleted)"): 1, with its old path in dir. */
static int cwd_removed(const struct ck_image *im, char *dir, size_t len)
{
    size_t n = strnlen(im->proc.cwd, sizeof im->proc.cwd);
    if (n <= 10 || n >= len || strcmp(im->proc.cwd + n - 10, " (deleted)"))
        return 0;
    snprintf(dir, len, "%.*s", (int)(n - 10), im->proc.cwd);
    return 1;
}

/* The descriptor the program also holds on its removed working
 * directory, or -1. */
static int cwd_fd(const struct ck_image *im)
{
    for (uint32_t i = 0; i < im->nfds; i++)
        if (im->fds[i].kind == CK_FD_DIR && (im->fds[i].flags & CK_FDF_CWD))
            return im->fds[i].fd;
    return -1;
}

/* Whether msg is said for the first time by this coord (the last 64
 * remembered, by hash). */
static int said_first_time(const char *msg)
{
    static uint64_t said[64];
    static unsigned nsaid;
    uint64_t h = ck_xxh64(msg, strlen(msg), 0) | 1;
    for (unsigned k = 0; k < nsaid && k < 64; k++)
        if (said[k] == h)
            return 0;
    said[nsaid++ % 64] = h;
    return 1;
}

/* Is path still the file id describes? 0 yes (st filled), 1 it is gone
 * but comes back from the image (region >= 0 only), -1 refused (c->err).
 * A changed file passes with --allow-changed PATH, with a warning; a file
 * of another type (a FIFO, a directory, a link) never does. */
static int check_file(struct rctx *c, const char *path, struct ck_ident *id, const char *role,
                      struct stat *st, int region)
{
    char what[256];
    id->same_host = c->same_host;
    int k = ck_ident_check(path, id, st, what, sizeof what);
    if (k < 0) {
        uint32_t owner;
        if (errno == ENOENT && region >= 0 &&
            (c->img.regions[region].flags & CK_REG_SAVED) &&
            saved_bytes(c, (uint32_t)region, &owner) >= 0) {
            c->remake[region] = 1;
            return 1;
        }
        fail_msg(c, "%s %s is gone: %s", role, path, strerror(errno));
        return -1;
    }
    if (k == CK_ID_TYPE) {
        fail_msg(c, "%s %s %s; refusing to use it", role, path, what);
        return -1;
    }
    if (k == CK_ID_CHANGED && !change_allowed(c, path)) {
        fail_msg(c, "%s %s has changed since the checkpoint (%s); to restore with the file as "
                 "it is now, add --allow-changed %s", role, path, what, path);
        return -1;
    }
    /* (said once: every process of a tree holds the same stdout) */
    char msg[PATH_MAX + 512];
    if (k == CK_ID_CHANGED)
        snprintf(msg, sizeof msg, "restore %s: warning: %s %s has changed since the checkpoint "
                 "(%s); --allow-changed: using it as it is", c->file, role, path, what);
    else if (what[0])
        snprintf(msg, sizeof msg, "restore %s: note: %s %s: %s", c->file, role, path, what);
    if ((k == CK_ID_CHANGED || what[0]) && said_first_time(msg))
        ck_msg("%s", msg);
    return 0;
}

static int each_filedata(struct rctx *c, uint64_t arg,
                         int (*fn)(void *ctx, uint64_t off, const uint8_t *data, size_t len),
                         void *ctx);
static int write_at(void *ctx, uint64_t off, const uint8_t *data, size_t len);

/* Put back the saved files that are gone (see check_file): created
 * exclusively at their path (never through a symbolic link) with their
 * mode, filled from the image. */
static int remake_saved_files(struct rctx *c)
{
    struct ck_image *im = &c->img;
    for (uint32_t i = 0; i < im->nregions; i++) {
        if (!c->remake[i])
            continue;
        const struct ck_region *r = &im->regions[i];
        const char *path = im->region_paths[i];
        uint32_t owner = i;
        saved_bytes(c, i, &owner);
        if (owner < i && c->rseen[owner].ino) {
            c->rseen[i] = c->rseen[owner];
            continue;
        }
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, r->mode & 07777);
        if (fd < 0) {
            fail_msg(c, "cannot recreate the mapped file %s from the image: %s", path,
                     strerror(errno));
            return -1;
        }
        fchmod(fd, r->mode & 07777);
        int ok = each_filedata(c, CK_FILEDATA_REGION | owner, write_at, &fd) == 0;
        struct stat st;
        if (!ok || ftruncate(fd, (off_t)r->fsize) < 0 || fstat(fd, &st) < 0) {
            fail_msg(c, "cannot write the saved contents of %s", path);
            unlink(path);
            close(fd);
            return -1;
        }
        close(fd);
        c->rseen[i].dev = st.st_dev;
        c->rseen[i].ino = st.st_ino;
        if (owner != i) {
            c->rseen[owner] = c->rseen[i];
        }
        ck_msg("restore %s: note: %s was gone; recreated it from the image (%llu bytes)", c->file,
               path, (unsigned long long)r->fsize);
    }
    return 0;
}

/* The last region before i with a path, if it has the same path as
 * region i (maps06 maps one file 10240 times, anonymous regions between):
 * its index + 1, or 0. The plan stores such a path once, and the file is
 * checked once. */
static uint32_t same_path_as_before(const struct ck_image *im, uint32_t i)
{
    if (!im->region_paths[i][0])
        return 0;
    uint32_t k = i;
    while (k > 0 && !im->region_paths[k - 1][0])
        k--;
    return k > 0 && !strcmp(im->region_paths[i], im->region_paths[k - 1]) ? k : 0;
}

static int check_shm(struct rctx *c);
static int check_hugetlb(struct rctx *c);
static int read_fd_bytes(struct rctx *c, int fd, uint8_t **data, size_t *len);

/* coord's services to the kinds of fds/ (fds/fdkind.h) */
static int rest_bytes(struct ck_fdrest *r, int fd, uint8_t **data, size_t *len)
{
    return read_fd_bytes(r->priv, fd, data, len); /* its message in c->err = r->err */
}

static const void *rest_state_of(struct ck_fdrest *r, uint32_t i, size_t *len)
{
    const struct ck_image *im = r->im;
    if (!im->fdstate || i >= im->nfds || !im->fdstate[i].data)
        return NULL;
    if (len)
        *len = im->fdstate[i].len;
    return im->fdstate[i].data;
}

static int reopen_checked(struct rctx *c, const struct ck_fd *f, const char *path, int oflags,
                          const struct seen *seen);
static int open_null(int oflags);

/* Is image descriptor i a written file saved at its checkpoint version
 * that this restore puts back (not --no-file-versions, not a
 * --shared-file)? Its CK_HASH_VER_* kind, or 0. */
static int version_of(const struct rctx *c, uint32_t i)
{
    const struct ck_fd *f = &c->img.fds[i];
    if (c->no_versions || f->kind != CK_FD_FILE || f->share_with >= 0 ||
        (f->hash_kind != CK_HASH_VER_LENGTH && f->hash_kind != CK_HASH_VER_CONTENT))
        return 0;
    for (int k = 0; k < c->nshared; k++)
        if (!strcmp(c->shared[k], c->img.fd_paths[i]))
            return 0;
    return (int)f->hash_kind;
}

/* The version kind of the file (dev, ino) had at checkpoint, if a
 * descriptor of the image puts it back (a mapping of it may then be
 * shorter now too). */
static int file_version_of(const struct rctx *c, uint64_t dev, uint64_t ino)
{
    for (uint32_t i = 0; i < c->img.nfds; i++)
        if (c->img.fds[i].dev == dev && c->img.fds[i].ino == ino && version_of(c, i))
            return version_of(c, i);
    return 0;
}

static int rest_check_path(struct ck_fdrest *r)
{
    struct rctx *c = r->priv;
    char role[64];
    snprintf(role, sizeof role, "fd %d: file", r->f->fd);
    struct ck_ident id;
    ck_ident_of_fd(r->f, &id);
    id.version = version_of(c, r->i);
    struct stat st;
    if (check_file(c, r->path, &id, role, &st, -1) < 0)
        return -1;
    c->fseen[r->i].dev = st.st_dev;
    c->fseen[r->i].ino = st.st_ino;
    return 0;
}

static int rest_reopen(struct ck_fdrest *r, uint32_t i, int oflags)
{
    struct rctx *c = r->priv;
    return reopen_checked(c, &c->img.fds[i], c->img.fd_paths[i], oflags, &c->fseen[i]);
}

static int rest_chunks(struct ck_fdrest *r, int fd,
                       int (*fn)(void *arg, uint64_t off, const uint8_t *data, size_t len),
                       void *arg)
{
    struct rctx *c = r->priv;
    if (each_filedata(c, (uint64_t)fd, fn, arg) == 0)
        return 0;
    fail_msg(c, "fd %d: cannot read its saved bytes from the image", fd);
    return -1;
}

static int rest_std(struct ck_fdrest *r)
{
    struct rctx *c = r->priv;
    return c->detach ? open_null(r->oflags) : dup(c->saved_std[r->f->fd]);
}

static int rest_tree_file(struct ck_fdrest *r, const struct ck_fd *f)
{
    for (int k = 0; k < g_tree.ninodes; k++)
        if (g_tree.inodes[k].kind == f->kind && g_tree.inodes[k].dev == f->dev &&
            g_tree.inodes[k].ino == f->ino)
            return g_tree.inodes[k].fd;
    return -1;
}

/* The new master of the tree's pseudo-terminal ptn (make_tree_ptys), or -1. */
static int tree_pty_master(uint64_t ptn)
{
    for (int k = 0; k < g_tree.nptys; k++)
        if (g_tree.ptys[k].ptn == ptn)
            return g_tree.ptys[k].master;
    return -1;
}

static int rest_tree_pty(struct ck_fdrest *r, uint64_t ptn)
{
    (void)r;
    return tree_pty_master(ptn);
}

static int rest_tree_pipe(struct ck_fdrest *r, uint64_t dev, uint64_t ino)
{
    for (int k = 0; k < g_tree.npipes; k++)
        if (g_tree.pipes[k].dev == dev && g_tree.pipes[k].ino == ino)
            return g_tree.pipes[k].fd;
    return -1;
}

/* The context of image im's fd i (c's own image, or a tree's merged set
 * of sockets) for a kind of fds/. */
static void rest_ctx_of(struct rctx *c, const struct ck_image *im, uint32_t i,
                        struct ck_fdrest *r, int *stash, int maxfd)
{
    memset(r, 0, sizeof *r);
    r->im = im;
    r->i = i;
    r->f = &im->fds[i];
    r->path = im->fd_paths[i];
    r->stash = stash;
    r->maxfd = maxfd;
    r->detach = c->detach;
    r->oflags = (int)(r->f->oflags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC));
    r->err = c->err;
    r->errlen = sizeof c->err;
    r->bytes = rest_bytes;
    r->state_of = rest_state_of;
    r->check_path = rest_check_path;
    r->reopen = rest_reopen;
    r->std = rest_std;
    r->chunks = rest_chunks;
    if (c->tree_idx >= 0) {
        r->tree_pipe = rest_tree_pipe;
        r->tree_file = rest_tree_file;
        r->tree_pty = rest_tree_pty;
        /* a process of the tree that led a session leads a new one */
        r->detach |= c->tree_idx > 0 && g_tree.e[c->tree_idx].sid == g_tree.e[c->tree_idx].real_pid;
    }
    r->priv = c;
    r->state = rest_state_of(r, i, &r->state_len);
}

/* Files at their checkpoint version (fds/file.c; docs/DESIGN.md): after
 * every other check, what is to be put back is found, read from the
 * image, compared with the file and the file opened for writing, all
 * without changing anything; apply_versions changes the files only once
 * the restore is committed (the counter advanced at the gate), just
 * before the program runs. A journal cut back or a file rewritten for a
 * restore that then failed would cost the user the newer data for
 * nothing. */
/* A process other than coord holding the file path (dev, ino) open for
 * writing now (the checkpointed program, still running, or another
 * writer): its pid (its name in comm), or 0. Only processes whose
 * descriptors we may read are looked at: the user's own. */
static int file_writer(const char *path, dev_t dev, ino_t ino, char *comm, size_t commlen)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0, me = getpid();
    while (d && !found && (e = readdir(d)) != NULL) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == me)
            continue;
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
        DIR *fds = opendir(dir);
        struct dirent *f;
        while (fds && !found && (f = readdir(fds)) != NULL) {
            char lp[96], target[PATH_MAX], info[160];
            struct stat st;
            if (f->d_name[0] < '0' || f->d_name[0] > '9')
                continue;
            snprintf(lp, sizeof lp, "%s/%s", dir, f->d_name);
            ssize_t l = readlink(lp, target, sizeof target - 1);
            if (l <= 0 || (target[l] = 0, strcmp(target, path)) || stat(lp, &st) < 0 ||
                st.st_dev != dev || st.st_ino != ino)
                continue;
            snprintf(lp, sizeof lp, "/proc/%d/fdinfo/%s", pid, f->d_name);
            unsigned flags = 0;
            const char *fl = ck_read_file(lp, info, sizeof info) > 0 ? strstr(info, "flags:") : NULL;
            if (fl && sscanf(fl, "flags: %o", &flags) == 1 && (flags & O_ACCMODE) != O_RDONLY)
                found = pid;
        }
        if (fds)
            closedir(fds);
    }
    if (d)
        closedir(d);
    if (found) {
        char cp[64];
        snprintf(cp, sizeof cp, "/proc/%d/comm", found);
        if (ck_read_file(cp, comm, commlen) <= 0)
            snprintf(comm, commlen, "?");
        comm[strcspn(comm, "\n")] = 0;
        for (char *k = comm; *k; k++)
            if ((unsigned char)*k < 0x20 || (unsigned char)*k >= 0x7f)
                *k = '?'; /* (the process names itself: no escapes to the terminal) */
    }
    return found;
}

/* Does the image map file (dev, ino) shared and writable? Writes through
 * such a mapping need not change the file's mtime (the kernel updates it
 * at the first write fault of a clean page only): a WAL index (SQLite's
 * -shm) rewritten through its mapping since the checkpoint kept the times
 * the image recorded. */
static int mapped_shared_writable(const struct ck_image *im, uint64_t dev, uint64_t ino)
{
    for (uint32_t r = 0; r < im->nregions; r++)
        if (ck_region_writes_file(&im->regions[r]) && im->regions[r].dev == dev &&
            im->regions[r].ino == ino)
            return 1;
    return 0;
}

static int plan_versions(struct rctx *c)
{
    const struct ck_image *im = &c->img;
    for (uint32_t i = 0; i < im->nfds; i++) {
        int kind = version_of(c, i);
        if (!kind)
            continue;
        const struct ck_fd *f = &im->fds[i];
        const char *path = im->fd_paths[i];
        if (!c->fseen[i].ino || (c->same_host && (c->fseen[i].dev != f->dev ||
                                                 c->fseen[i].ino != f->ino)))
            continue; /* another file, accepted with --allow-changed: used as it is */
        struct stat ls;
        if (!(kind == CK_HASH_VER_CONTENT && mapped_shared_writable(im, f->dev, f->ino)) &&
            lstat(path, &ls) == 0 && ls.st_dev == f->dev && ls.st_ino == f->ino &&
            (uint64_t)ls.st_size == f->size &&
            ls.st_mtim.tv_sec * 1000000000LL + ls.st_mtim.tv_nsec == f->mtime_ns &&
            ls.st_ctim.tv_sec * 1000000000LL + ls.st_ctim.tv_nsec == f->ctime_ns)
            continue; /* not written since (ctime cannot be set back): nothing to do */
        int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            st.st_dev != c->fseen[i].dev || st.st_ino != c->fseen[i].ino) {
            fail_msg(c, "fd %d: cannot open %s to put it back at its checkpoint version: %s",
                     f->fd, path, fd < 0 ? strerror(errno) : "another file is at the path now");
            if (fd >= 0)
                close(fd);
            return -1;
        }
        uint64_t size = (uint64_t)st.st_size;
        uint8_t *data = NULL, *now = NULL;
        size_t len = 0;
        int same = 0;
        if (kind == CK_HASH_VER_LENGTH) {
            /* only appended to since: the bytes before its old end are
             * those it had (their tail is compared) */
            uint64_t t = f->size < CK_VER_TAIL ? f->size : CK_VER_TAIL;
            now = malloc(t + 1);
            int ok = now && size >= f->size &&
                     pread(fd, now, t, (off_t)(f->size - t)) == (ssize_t)t &&
                     ck_xxh64(now, t, f->size) == f->hash;
            free(now);
            if (!ok && change_allowed(c, path)) {
                ck_msg("restore %s: warning: fd %d: %s was changed before its checkpoint "
                       "length (%llu bytes), not only appended to; --allow-changed: using it "
                       "as it is", c->file, f->fd, path, (unsigned long long)f->size);
                close(fd);
                continue;
            }
            if (!ok) {
                fail_msg(c, "fd %d: %s was changed before the length it had at the checkpoint "
                         "(%llu bytes, %llu now), not only appended to: it cannot be put back "
                         "at its checkpoint version; to restore with the file as it is now, add "
                         "--allow-changed %s (or --shared-file %s)", f->fd, path,
                         (unsigned long long)f->size, (unsigned long long)size, path, path);
                close(fd);
                return -1;
            }
            same = size == f->size;
        } else {
            if (read_fd_bytes(c, f->fd, &data, &len) < 0) {
                close(fd);
                return -1;
            }
            if (len != f->size) {
                fail_msg(c, "the image is damaged: fd %d: %zu bytes saved of %s, which had "
                         "%llu", f->fd, len, path, (unsigned long long)f->size);
                free(data);
                close(fd);
                return -1;
            }
            if (size == len && (now = malloc(len + 1)) &&
                pread(fd, now, len, 0) == (ssize_t)len)
                same = !memcmp(now, data, len);
            free(now);
        }
        if (same) {
            free(data);
            close(fd);
            continue;
        }
        char comm[32];
        int w = file_writer(path, st.st_dev, st.st_ino, comm, sizeof comm);
        if (w > 0) {
            fail_msg(c, "fd %d: %s is open for writing by process %d (%s) now: putting it back "
                     "at its checkpoint version would lose what that process wrote since (does "
                     "the checkpointed program still run?); stop it first, or restore with "
                     "--shared-file %s to use the file as it is", f->fd, path, w, comm, path);
            free(data);
            close(fd);
            return -1;
        }
        struct version *v = realloc(c->vers, (size_t)(c->nvers + 1) * sizeof *v);
        if (!v) {
            fail_msg(c, "out of memory");
            free(data);
            close(fd);
            return -1;
        }
        c->vers = v;
        c->vers[c->nvers++] = (struct version){.i = i, .fd = fd, .cut = kind == CK_HASH_VER_LENGTH,
                                               .len = f->size, .data = data};
        ck_msg("restore %s: note: fd %d: %s %s to its checkpoint version (%llu bytes, %llu "
               "now)", c->file, f->fd, path, kind == CK_HASH_VER_LENGTH ? "cut back" : "put back",
               (unsigned long long)f->size, (unsigned long long)size);
    }
    return 0;
}

/* Put the files back (see plan_versions), once the restore is committed.
 * Nothing here can need room that the file did not have, except a
 * rewritten file that had grown shorter; a failure stops the program
 * from running (it would see newer files than its memory). */
static int apply_versions(struct rctx *c)
{
    for (int k = 0; k < c->nvers; k++) {
        const struct version *v = &c->vers[k];
        const char *path = c->img.fd_paths[v->i];
        int ok = 1;
        for (uint64_t off = 0; !v->cut && ok && off < v->len;) {
            ssize_t n = pwrite(v->fd, v->data + off, (size_t)(v->len - off), (off_t)off);
            ok = n > 0;
            off += ok ? (uint64_t)n : 0;
        }
        if (!ok || ftruncate(v->fd, (off_t)v->len) < 0) {
            fail_msg(c, "the restore was committed, but %s could not be put back at its "
                     "checkpoint version: %s; the program was not started (fix that, then "
                     "restore the image again with --force)", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* The gate keeper closes what it does not need: the files to put back
 * stay, above fd 4 (fds 0-4 become its own). */
static void keep_version_fds(struct rctx *c)
{
    for (int k = 0; k < c->nvers; k++)
        if (c->vers[k].fd < 5) {
            int n = fcntl(c->vers[k].fd, F_DUPFD_CLOEXEC, 5);
            close(c->vers[k].fd);
            c->vers[k].fd = n;
        }
}

static void close_from_but_versions(struct rctx *c, int lo)
{
    int from = lo;
    for (;;) {
        int next = -1;
        for (int k = 0; k < c->nvers; k++)
            if (c->vers[k].fd >= from && (next < 0 || c->vers[k].fd < next))
                next = c->vers[k].fd;
        if (next < 0)
            break;
        if (next > from)
            close_range((unsigned)from, (unsigned)next - 1, 0);
        from = next + 1;
    }
    close_range((unsigned)from, ~0U, 0);
}

static void rest_ctx(struct rctx *c, uint32_t i, struct ck_fdrest *r, int *stash, int maxfd)
{
    rest_ctx_of(c, &c->img, i, r, stash, maxfd);
}

/* A descriptor of a kind of fds/: may it be made again here? Runs
 * before anything is changed, in the order of the image's descriptors.
 * 1 checked (or nothing to check), 0 not a kind of fds/, -1 refused. */
static int check_fd_kind(struct rctx *c, uint32_t i)
{
    const struct ck_fdkind *k = ck_fdkind_of(c->img.fds[i].kind);
    struct ck_fdrest r;
    if (!k)
        return 0;
    if (!k->check)
        return 1;
    rest_ctx(c, i, &r, NULL, -1);
    return k->check(&r) < 0 ? -1 : 1; /* message in c->err */
}

/* Once every descriptor is in place: what kinds do last (connections
 * between descriptors, ...), then what needs the finished descriptors
 * (epoll watches). */
static int after_fd_kinds(struct rctx *c, int maxfd)
{
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < c->img.nfds; i++) {
            const struct ck_fdkind *k = ck_fdkind_of(c->img.fds[i].kind);
            int (*fn)(struct ck_fdrest *) = !k ? NULL : pass ? k->after_all : k->after;
            struct ck_fdrest r;
            int skip = 0;
            if (!fn || c->img.fds[i].share_with >= 0 ||
                (tree_desc_of(c->tree_idx, c->img.fds[i].fd, &skip) >= 0 && skip))
                continue;
            rest_ctx(c, i, &r, NULL, maxfd);
            if (fn(&r) < 0)
                return -1; /* message in c->err */
        }
    return 0;
}

static int check_image(struct rctx *c)
{
    struct ck_image *im = &c->img;
    struct utsname_machine {
        char m[16];
    };
    if (strcmp(im->hdr.machine, "x86_64") != 0) {
        fail_msg(c, "the image is for %s; this is x86_64", im->hdr.machine);
        return -1;
    }
    int mains = 0, managers = 0;
    for (uint32_t i = 0; i < im->nthreads; i++) {
        mains += !!(im->threads[i].flags & CK_TF_MAIN);
        managers += !!(im->threads[i].flags & CK_TF_MANAGER);
    }
    if (mains != 1 || managers != 1) {
        fail_msg(c, "the image's thread list is inconsistent (%d main, %d manager threads)", mains,
                 managers);
        return -1;
    }
    /* root restoring another user's program would run it as root: it
     * must be restored by that user (an ordinary user's restore runs it
     * as that user, with no more than the user's own rights) */
    if (getuid() == 0 && im->proc.uid != 0) {
        char user[64];
        ck_user_name(user, sizeof user, im->proc.uid);
        fail_msg(c, "process %u of the image ran as user %s (uid %u); restoring it as root "
                 "would run it as root: restore it as that user", (unsigned)im->proc.pid, user,
                 (unsigned)im->proc.uid);
        return -1;
    }
    /* (what an image says of itself is the writer's to say: root takes
     * only images of its own, or ones its key authenticates) */
    struct stat ist;
    if (getuid() == 0 && !c->have_key && c->img_fd >= 0 && fstat(c->img_fd, &ist) == 0 &&
        S_ISREG(ist.st_mode) && ist.st_uid != 0) {
        char user[64];
        ck_user_name(user, sizeof user, ist.st_uid);
        fail_msg(c, "the image file belongs to user %s: root restores only its own images (or "
                 "ones authenticated with --key), as another user's would run as root; restore "
                 "it as that user", user);
        return -1;
    }
    uint32_t ss = im->hdr.stop_sig;
    if (!!(im->hdr.flags & CK_HF_STOPPED) != (ss != 0) || (ss && !ck_stop_signal(ss))) {
        fail_msg(c, "the image's header says stopped by signal %u (flags %#x): damaged", ss,
                 im->hdr.flags);
        return -1;
    }
    if (check_vdso(c) < 0)
        return -1;
    for (uint32_t i = 0; i < im->nregions; i++) {
        const struct ck_region *r = &im->regions[i];
        const char *path = im->region_paths[i];
        if (r->start >= r->end || (r->start & 4095) || (r->end & 4095)) {
            fail_msg(c, "the image has a malformed memory region %#llx-%#llx",
                     (unsigned long long)r->start, (unsigned long long)r->end);
            return -1;
        }
        if (i && r->start < im->regions[i - 1].end) {
            /* the restorer looks regions up by address */
            fail_msg(c, "the image's memory regions are out of order or overlap at %#llx",
                     (unsigned long long)r->start);
            return -1;
        }
        if (r->flags & CK_REG_SPECIAL)
            continue;
        if (r->start < CK_WINDOW_END && r->end > CK_WINDOW_START) {
            fail_msg(c, "memory region %#llx-%#llx overlaps the restorer's window",
                     (unsigned long long)r->start, (unsigned long long)r->end);
            return -1;
        }
        if (r->end > 0x800000000000ULL) {
            fail_msg(c, "memory region %#llx-%#llx is outside user space",
                     (unsigned long long)r->start, (unsigned long long)r->end);
            return -1;
        }
        if (!(r->flags & CK_REG_FILE) || (r->flags & CK_REG_ALLPAGES))
            continue;
        uint32_t prev = same_path_as_before(im, i);
        const struct ck_region *pr = prev ? &im->regions[prev - 1] : NULL;
        const uint32_t kind = CK_REG_FILE | CK_REG_ALLPAGES | CK_REG_SHARED | CK_REG_MAYWRITE;
        if (pr && (pr->flags & kind) == (r->flags & kind) &&
            (pr->prot & PROT_WRITE) == (r->prot & PROT_WRITE) && pr->fsize == r->fsize &&
            pr->mtime_ns == r->mtime_ns && pr->dev == r->dev && pr->ino == r->ino &&
            !c->remake[prev - 1] && !(pr->flags & CK_REG_SAVED)) {
            c->rseen[i] = c->rseen[prev - 1]; /* checked just before */
            continue;
        }
        struct ck_ident id;
        ck_ident_of_region(r, &id);
        if (ck_hash_written(r->hash_kind))
            id.version = file_version_of(c, r->dev, r->ino);
        struct stat st;
        int k = check_file(c, path, &id, "mapped file", &st, (int)i);
        if (k < 0)
            return -1;
        if (k == 1)
            continue; /* gone, recreated from the image before the restorer runs */
        c->rseen[i].dev = st.st_dev;
        c->rseen[i].ino = st.st_ino;
        if ((r->flags & CK_REG_SHARED) &&
            ((r->prot & PROT_WRITE) || (r->flags & CK_REG_MAYWRITE)) && access(path, R_OK | W_OK)) {
            fail_msg(c, "cannot open %s for writing (shared writable mapping)", path);
            return -1;
        }
        if (access(path, R_OK)) {
            fail_msg(c, "cannot read %s (mapped by the program)", path);
            return -1;
        }
    }
    /* What restore_fds and restore_env will need, checked now: once the
     * counter has been advanced a failure would use the image up. */
    for (uint32_t i = 0; i < im->nfds; i++) {
        const struct ck_fd *f = &im->fds[i];
        if (f->fd < 0 || f->fd > 1 << 20) {
            fail_msg(c, "the image has a malformed descriptor number %d", f->fd);
            return -1;
        }
        if (f->share_with >= 0) {
            /* dup2'd from: only ever an earlier descriptor of the image,
             * never one of coord's own */
            uint32_t k = 0;
            while (k < i && im->fds[k].fd != f->share_with)
                k++;
            if (k == i) {
                fail_msg(c, "the image is damaged: fd %d shares fd %d, which is not an "
                         "earlier descriptor of the image", f->fd, f->share_with);
                return -1;
            }
            continue;
        }
        if (!ck_fdkind_of(f->kind)) {
            fail_msg(c, "fd %d: unknown descriptor kind %u in the image", f->fd, f->kind);
            return -1;
        }
        if (check_fd_kind(c, i) < 0)
            return -1;
    }
    for (uint32_t i = 0; i < im->nlocks; i++) {
        const struct ck_lock *k = &im->locks[i];
        uint32_t f = 0;
        while (f < im->nfds && im->fds[f].fd != k->fd)
            f++;
        if (f == im->nfds || k->kind < CK_LOCK_FLOCK || k->kind > CK_LOCK_LEASE_BREAKING || k->start < 0 ||
            k->len < 0) {
            fail_msg(c, "the image has a malformed file lock (fd %d, kind %u)", k->fd, k->kind);
            return -1;
        }
    }
    if (check_shm(c) < 0 || check_hugetlb(c) < 0 ||
        raise_nofile(c) < 0 || check_nproc(c) < 0)
        return -1;
    struct stat cst;
    char cdir[PATH_MAX], in[PATH_MAX] = "";
    const char *rest;
    if (cwd_removed(im, cdir, sizeof cdir) && ck_procdead_split(cdir, &rest) > 0) {
        /* a /proc directory of a process that has exited: made at restore */
    } else if (cwd_removed(im, cdir, sizeof cdir)) {
        errno = EINVAL;
        if (cdir[0] != '/' || (cwd_fd(im) < 0 &&
                               access(ck_remake_dir(cdir, in, sizeof in), W_OK | X_OK) < 0)) {
            fail_msg(c, "the program's removed working directory %s cannot be made again in "
                     "%s: %s", cdir, in, strerror(errno));
            return -1;
        }
    } else if (stat(im->proc.cwd, &cst) < 0 || !S_ISDIR(cst.st_mode)) {
        fail_msg(c, "the program's working directory %s is gone", im->proc.cwd);
        return -1;
    }
    return 0;
}

/* SysV shared memory (SHM record): a segment that still exists with the
 * same id, key and size is attached again as it is (its contents are the
 * live ones). One that was marked for removal is made anew at restore
 * (build_plan) from the image's pages: nobody could find it by key or id
 * any more. Any other that is gone refuses the restore: the program knows
 * its id, and the kernel would give a new one another. */
static int check_shm(struct rctx *c)
{
    struct ck_image *im = &c->img;
    if (!im->nshms)
        return 0;
    c->shm_ids = calloc(im->nshms, sizeof *c->shm_ids);
    c->shm_new = calloc(im->nshms, 1);
    if (!c->shm_ids || !c->shm_new) {
        fail_msg(c, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < im->nshms; i++) {
        const struct ck_shm *s = &im->shms[i];
        struct shmid_ds ds;
        c->shm_ids[i] = s->shmid;
        if (shmctl(s->shmid, IPC_STAT, &ds) == 0 && ds.shm_perm.__key == s->key &&
            ds.shm_segsz == s->size) {
            /* the restorer's shmat must not fail half-way: try it now */
            int fl = SHM_RDONLY;
            for (uint32_t k = 0; k < im->nregions; k++)
                if ((im->regions[k].flags & CK_REG_SYSV) &&
                    im->regions[k].ino == (uint64_t)s->shmid) {
                    if (im->regions[k].prot & PROT_WRITE)
                        fl &= ~SHM_RDONLY;
                    if (im->regions[k].prot & PROT_EXEC)
                        fl |= SHM_EXEC;
                }
            void *a = shmat(s->shmid, NULL, fl);
            if (a == (void *)-1) {
                fail_msg(c, "cannot attach the program's SysV shared memory segment %d (key "
                         "%#x) again: %s", s->shmid, (unsigned)s->key, strerror(errno));
                return -1;
            }
            shmdt(a);
            continue;
        }
        if (s->flags & CK_SHMF_DEST) {
            c->shm_new[i] = 1;
            continue;
        }
        fail_msg(c, "the program's SysV shared memory segment %d (key %#x, %llu bytes) is gone "
                 "or was replaced; it cannot be made again with the id the program knows",
                 s->shmid, (unsigned)s->key, (unsigned long long)s->size);
        return -1;
    }
    for (uint32_t i = 0; i < im->nregions; i++) {
        const struct ck_region *r = &im->regions[i];
        uint32_t k = 0;
        while ((r->flags & CK_REG_SYSV) && k < im->nshms && (uint64_t)im->shms[k].shmid != r->ino)
            k++;
        if ((r->flags & CK_REG_SYSV) && k == im->nshms) {
            fail_msg(c, "memory region %#llx-%#llx is SysV shared memory the image does not "
                     "describe", (unsigned long long)r->start, (unsigned long long)r->end);
            return -1;
        }
    }
    return 0;
}

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* MAP_HUGETLB memory needs free huge pages of its size, which the restorer
 * cannot do without once it has begun: checked now, per page size. */
static int check_hugetlb(struct rctx *c)
{
    struct ck_image *im = &c->img;
    uint64_t sizes[4] = {0}, need[4] = {0}, deflt = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Hugepagesize:", 13))
            deflt = strtoull(line + 13, NULL, 10) << 10;
    if (f)
        fclose(f);
    for (uint32_t i = 0; i < im->nregions; i++) {
        const struct ck_region *r = &im->regions[i];
        if (!(r->flags & CK_REG_HUGETLB))
            continue;
        uint64_t sz = r->fsize ? r->fsize : deflt;
        if (!sz || (sz & (sz - 1)) || ((r->start | r->end) & (sz - 1))) {
            fail_msg(c, "memory region %#llx-%#llx is hugetlb memory in %llu kB pages, which "
                     "this machine does not have", (unsigned long long)r->start,
                     (unsigned long long)r->end, (unsigned long long)(sz >> 10));
            return -1;
        }
        int k = 0;
        while (k < 4 && sizes[k] && sizes[k] != sz)
            k++;
        if (k == 4) {
            fail_msg(c, "the image has hugetlb memory of more than 4 page sizes");
            return -1;
        }
        sizes[k] = sz;
        need[k] += (r->end - r->start) / sz;
    }
    for (int k = 0; k < 4 && sizes[k]; k++) {
        char p[128];
        snprintf(p, sizeof p, "/sys/kernel/mm/hugepages/hugepages-%llukB/free_hugepages",
                 (unsigned long long)(sizes[k] >> 10));
        long free_ = read_long(p);
        snprintf(p, sizeof p, "/sys/kernel/mm/hugepages/hugepages-%llukB/resv_hugepages",
                 (unsigned long long)(sizes[k] >> 10));
        long resv = read_long(p);
        long avail = free_ < 0 ? 0 : free_ - (resv > 0 ? resv : 0);
        if (avail < (long)need[k]) {
            fail_msg(c, "the program had %llu huge pages of %llu kB (MAP_HUGETLB); this machine "
                     "has %ld free: reserve more (sysctl vm.nr_hugepages, as root)",
                     (unsigned long long)need[k], (unsigned long long)(sizes[k] >> 10),
                     avail < 0 ? 0 : avail);
            return -1;
        }
    }
    return 0;
}

/* The plan's SysV fields for region i: the segment to attach, and how. */
static void plan_shm(struct rctx *c, uint32_t i, struct ck_plan_region *pr)
{
    const struct ck_image *im = &c->img;
    const struct ck_region *r = &im->regions[i];
    uint32_t k = 0;
    while ((uint64_t)im->shms[k].shmid != r->ino)
        k++;
    pr->shmid = c->shm_ids[k];
    pr->shm_flags = c->shm_new[k] ? CK_PLAN_SHM_FILL | CK_PLAN_SHM_RMID : 0;
    if (r->offset != 0)
        return;
    /* the attach: this region and those continuing it (capture checked) */
    int writable = 0, exec = 0;
    for (uint32_t j = i; j < im->nregions && (im->regions[j].flags & CK_REG_SYSV) &&
                         im->regions[j].ino == r->ino && (j == i || im->regions[j].offset);
         j++) {
        writable |= (im->regions[j].prot & PROT_WRITE) != 0;
        exec |= (im->regions[j].prot & PROT_EXEC) != 0;
    }
    pr->shm_flags |= CK_PLAN_SHM_ATTACH | (writable ? 0 : CK_PLAN_SHM_RDONLY) |
                     (exec ? CK_PLAN_SHM_EXEC : 0);
}

/* Make segment i (marked for removal: check_shm) anew. 0 or -1. */
static int make_one_shm(struct rctx *c, uint32_t i)
{
    const struct ck_shm *s = &c->img.shms[i];
    int id = shmget(IPC_PRIVATE, s->size, IPC_CREAT | 0600 | (int)(s->mode & 0777));
    if (id < 0) {
        fail_msg(c, "cannot make SysV shared memory of %llu bytes again: %s",
                 (unsigned long long)s->size, strerror(errno));
        return -1;
    }
    c->shm_ids[i] = id;
    return 0;
}

/* Make the segments marked for removal anew (check_shm): not those made
 * for the whole tree (shm_new 2: make_tree_sysv). */
static int make_shm(struct rctx *c)
{
    for (uint32_t i = 0; i < c->img.nshms; i++)
        if (c->shm_new[i] == 1 && make_one_shm(c, i) < 0)
            return -1;
    return 0;
}

/* A descriptor of the program, on the file a shared mapping r maps, that
 * the restorer can map it through, when the program holds POSIX locks on
 * that file (sqlite's WAL index is mapped and locked): the restorer would
 * otherwise open the file and close it again, and any close drops the
 * process's POSIX locks on the file, which coord has just taken back.
 * -1 if there is none (the shim then takes such locks again after
 * restore). */
static int locked_fd_for(const struct ck_image *im, const struct ck_region *r)
{
    if (!(r->flags & CK_REG_FILE) || (r->flags & CK_REG_ALLPAGES))
        return -1;
    int locked = 0;
    for (uint32_t k = 0; k < im->nlocks; k++)
        locked |= im->locks[k].kind == CK_LOCK_POSIX && im->locks[k].dev == r->dev &&
                  im->locks[k].ino == r->ino;
    for (uint32_t k = 0; locked && k < im->nfds; k++) {
        const struct ck_fd *f = &im->fds[k];
        int acc = (int)(f->oflags & O_ACCMODE);
        if (f->kind == CK_FD_FILE && f->dev == r->dev && f->ino == r->ino &&
            (acc == O_RDWR || (acc == O_RDONLY && !(r->prot & PROT_WRITE))) &&
            !((f->oflags & O_APPEND) && (r->prot & PROT_WRITE)))
            return f->fd;
    }
    return -1;
}

/* A thread's tid, given back in a pid namespace of the program's own
 * unless a process of the restore has it as its pid, or a thread of
 * another process as its tid (only in an image taken outside a pid
 * namespace, restored with --pidns: the ids the program knew were never
 * all the kernel's at once). 0: any tid (the shim maps it). */
static int32_t plan_tid(const struct rctx *c, uint32_t tid)
{
    if (tid <= 1 || tid > INT32_MAX)
        return 0;
    if (!g_tree.n)
        return tid == c->img.proc.pid ? 0 : (int32_t)tid;
    for (int j = 0; j < g_tree.n; j++) {
        const struct rctx *m = &g_tree.m[j];
        if (g_tree.e[j].vpid == (int32_t)tid)
            return 0;
        if (m == c || (g_tree.e[j].flags & CK_TREE_ZOMBIE))
            continue;
        for (uint32_t k = 0; k < m->img.nthreads; k++)
            if (m->img.threads[k].tid == tid)
                return 0;
    }
    return (int32_t)tid;
}

/* Build the plan in a memfd. Returns its fd or -1. */
static int build_plan(struct rctx *c, int image_fd, int status_fd)
{
    struct ck_image *im = &c->img;
    if (make_shm(c) < 0)
        return -1;
    size_t strings = 0;
    for (uint32_t i = 0; i < im->nregions; i++)
        if (!same_path_as_before(im, i))
            strings += strlen(im->region_paths[i]) + 1;
    size_t roff = (sizeof(struct ck_plan) + 63) & ~63UL;
    size_t toff = roff + im->nregions * sizeof(struct ck_plan_region);
    toff = (toff + 63) & ~63UL;
    size_t poff = toff + im->nthreads * sizeof(struct ck_plan_thread);
    poff = (poff + 63) & ~63UL;
    size_t goff = poff + im->npagerecs * sizeof(struct ck_plan_pagerec);
    size_t coff = goff + im->nguards * sizeof(struct ck_guard);
    coff = (coff + 7) & ~7UL;
    uint32_t nchildren = 0;
    for (int j = 0; c->tree_idx >= 0 && g_tree.late && j < g_tree.n; j++)
        nchildren += g_tree.late[j] && g_tree.e[j].parent == c->tree_idx;
    size_t soff = coff + nchildren * sizeof(struct ck_plan_child);
    size_t size = soff + strings + 1;
    if (size > CK_PLAN_MAX) {
        fail_msg(c, "the image describes too many regions");
        return -1;
    }
    char *buf = calloc(1, size);
    if (!buf) {
        fail_msg(c, "out of memory");
        return -1;
    }
    struct ck_plan *p = (struct ck_plan *)buf;
    p->magic = CK_PLAN_MAGIC;
    p->size = size;
    p->nregions = im->nregions;
    p->nthreads = im->nthreads;
    p->regions_off = roff;
    p->threads_off = toff;
    p->strings_off = soff;
    p->image_fd = image_fd;
    p->status_fd = status_fd;
    /* Decrypted payloads no longer match the checksums (taken over the
     * ciphertext); coord has authenticated every byte already. */
    p->verify = (getenv("CKSHIM_NO_VERIFY") || c->encrypted) ? 0 : 1;
    p->npages = im->end.npages;
    p->mm = im->proc.mm;
    memcpy(p->auxv, im->proc.auxv, sizeof p->auxv);
    p->auxv_bytes = im->proc.auxv_bytes;
    p->vvar_start = im->proc.vvar_start;
    p->vvar_end = im->proc.vvar_end;
    p->vclock_start = im->proc.vclock_start;
    p->vclock_end = im->proc.vclock_end;
    p->vdso_start = im->proc.vdso_start;
    p->vdso_end = im->proc.vdso_end;
    p->shim_info_addr = im->proc.shim_info_addr;
    p->npagerecs = im->npagerecs;
    p->pagerecs_off = poff;
    p->nguards = im->nguards;
    p->guards_off = goff;
    if (im->nguards)
        memcpy(buf + goff, im->guards, im->nguards * sizeof(struct ck_guard));
    p->map_fd = c->tree_idx >= 0 ? g_tree.map_fd : -1;
    p->nchildren = nchildren;
    p->children_off = coff;
    struct ck_plan_child *pc = (struct ck_plan_child *)(buf + coff);
    for (int j = 0, k = 0; nchildren && j < g_tree.n; j++)
        if (g_tree.late[j] && g_tree.e[j].parent == c->tree_idx) {
            pc[k].vpid = g_tree.e[j].vpid;
            pc[k].set_tid = g_pidns ? g_tree.e[j].vpid : 0;
            pc[k].sock = g_tree.prep_near[j];
            pc[k].flags = (g_tree.late[j] == 'L' ? CK_CHILD_SHARED : 0) |
                          (g_tree.e[j].flags & CK_TREE_FILES ? CK_CHILD_FILES : 0);
            pc[k++].slot = (uint32_t)j;
        }
    for (int i = 0; i < CK_NRLIMIT && i < RLIM_NLIMITS; i++) {
        const struct ck_rlimit *l = &im->proc.rlim[i];
        if (l->cur == 0 && l->max == 0 && i != RLIMIT_CORE)
            continue;
        p->rlim[p->nrlimits].resource = (uint32_t)i;
        p->rlim[p->nrlimits].cur = l->cur;
        p->rlim[p->nrlimits++].max = l->max;
    }
    cpu_set_t cpus;
    int ncpu = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
    const char *wenv = getenv("CKSHIM_RESTORE_THREADS");
    if (wenv && atoi(wenv) > 0)
        ncpu = atoi(wenv);
    p->nworkers = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (uint32_t)ncpu;
    p->gate_fd = -1;
    p->ready_fd = -1;
    p->err_fd = -1;
    struct ck_plan_pagerec *pp = (struct ck_plan_pagerec *)(buf + poff);
    for (uint64_t i = 0; i < im->npagerecs; i++) {
        pp[i].rec = im->pages[i].rec;
        pp[i].offset = im->pages[i].offset;
    }
    struct ck_plan_region *pr = (struct ck_plan_region *)(buf + roff);
    size_t so = 0;
    for (uint32_t i = 0; i < im->nregions; i++) {
        const struct ck_region *r = &im->regions[i];
        pr[i].start = r->start;
        pr[i].end = r->end;
        pr[i].prot = r->prot;
        pr[i].flags = r->flags;
        pr[i].offset = r->offset;
        /* a file the program had open for writing is opened so again,
         * so that a later mprotect(PROT_WRITE) still works */
        pr[i].open_flags = ((r->flags & CK_REG_SHARED) &&
                            ((r->prot & PROT_WRITE) || (r->flags & CK_REG_MAYWRITE)))
                               ? O_RDWR
                               : O_RDONLY;
        pr[i].from_fd = -1;
        pr[i].dev = c->rseen[i].dev;
        pr[i].ino = c->rseen[i].ino;
        /* CK_REG_FROMFD: the program holds the file open (any size: a
         * mapping may reach past its end, as it did); older images only
         * name shared mappings that fit in the file */
        int fromfd = (r->flags & CK_REG_FROMFD) != 0;
        if ((r->flags & CK_REG_DELETED) && ((r->flags & CK_REG_SHARED) || fromfd))
            for (uint32_t k = 0; k < im->nfds; k++) {
                const struct ck_fd *f = &im->fds[k];
                if (fromfd ? ck_fd_maps_region(f, r)
                           : (f->kind == CK_FD_MEMFD || f->kind == CK_FD_DELETED) &&
                                 f->ino == r->ino && f->dev == r->dev &&
                                 r->offset + (r->end - r->start) <= f->size) {
                    pr[i].from_fd = f->fd;
                    break;
                }
            }
        if (fromfd && pr[i].from_fd < 0) {
            fail_msg(c, "memory region %#llx-%#llx maps a deleted file the image has no "
                     "descriptor of", (unsigned long long)r->start, (unsigned long long)r->end);
            free(buf);
            return -1;
        }
        if (pr[i].from_fd < 0 && (r->flags & CK_REG_SHARED))
            pr[i].from_fd = locked_fd_for(im, r);
        if (c->tree_idx >= 0 && tree_shm_fd(im, r) >= 0)
            pr[i].from_fd = tree_shm_fd(im, r); /* shared with other processes of the tree */
        pr[i].shmid = -1;
        pr[i].hugepage_size = (r->flags & CK_REG_HUGETLB) ? r->fsize : 0;
        if (r->flags & CK_REG_SYSV)
            plan_shm(c, i, &pr[i]);
        uint32_t prev = same_path_as_before(im, i);
        if (prev) {
            pr[i].path_off = pr[prev - 1].path_off;
            continue;
        }
        pr[i].path_off = (uint32_t)so;
        size_t l = strlen(im->region_paths[i]);
        memcpy(buf + soff + so, im->region_paths[i], l + 1);
        so += l + 1;
    }
    struct ck_plan_thread *pt = (struct ck_plan_thread *)(buf + toff);
    p->pidns = (uint32_t)g_pidns;
    /* stopped when taken: stopped again before it runs (a tree's
     * processes by their entries: restore_tree's map) */
    p->stop_sig = c->tree_idx < 0 ? im->hdr.stop_sig : 0;
    for (uint32_t i = 0; i < im->nthreads; i++) {
        pt[i].flags = im->threads[i].flags;
        if (g_pidns && !(im->threads[i].flags & CK_TF_MAIN))
            pt[i].tid = plan_tid(c, im->threads[i].tid);
        pt[i].fsbase = im->threads[i].fsbase;
        pt[i].clear_tid_addr = im->threads[i].clear_tid_addr;
        pt[i].ctx = im->threads[i].ctx;
    }
    int fd = memfd_create("ckshim-plan", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0 || pwrite(fd, buf, size, 0) != (ssize_t)size) {
        fail_msg(c, "cannot write the restore plan: %s", strerror(errno));
        free(buf);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    free(buf);
    return fd;
}

/* An image with a key is copied whole into a memfd before anything in it
 * is read: the MAC is checked over that copy, and everything after it
 * (the metadata, the restorer's pages, saved file contents) comes from
 * the same bytes, sealed against writes. Whoever can write the image file
 * cannot change what is restored once it has been authenticated. */
/* Every record coord reads from an image goes through here (common/auth.c
 * ck_rec_load): checksum, decryption with the image's key, decoding. The
 * PAGES of an encrypted image are decrypted in place in coord's sealed
 * copy once (decrypt_pages): later reads of them take them as they are. */
static int load_rec(struct rctx *c, const struct ck_rec_loc *l, unsigned flags,
                    struct ck_recbuf *b)
{
    if (c->pages_plain && l->rec.type == CK_REC_PAGES)
        flags |= CK_LOAD_PLAIN;
    return ck_rec_load(c->img_fd, l, c->encrypted ? &c->key : NULL, &c->img.hdr, flags, b);
}

static int copy_to_memfd(struct rctx *c)
{
    struct stat st;
    int fd = memfd_create("ckshim-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || fstat(c->img_fd, &st) < 0) {
        fail_msg(c, "cannot hold the image in memory: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    off_t off = 0;
    while (off < st.st_size) {
        /* in pieces of 64 MiB, for the progress line of a large image */
        size_t left = (size_t)(st.st_size - off);
        ssize_t n = sendfile(fd, c->img_fd, &off, left < (64u << 20) ? left : (64u << 20));
        ck_progress_update((uint64_t)off, (uint64_t)st.st_size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fail_msg(c, "cannot hold the image in memory: %s",
                     n < 0 ? strerror(errno) : "it shrank while being read");
            close(fd);
            return -1;
        }
    }
    close(c->img_fd);
    c->img_fd = fd;
    lseek(fd, 0, SEEK_SET);
    return 0;
}

/* MemAvailable of /proc/meminfo in bytes, 0 if unknown. */
static uint64_t avail_memory(void)
{
    char buf[4096];
    if (ck_read_file("/proc/meminfo", buf, sizeof buf) < 0)
        return 0;
    const char *p = strstr(buf, "MemAvailable:");
    return p ? strtoull(p + 13, NULL, 10) * 1024 : 0;
}

/* coord restore -: the image arrives on standard input (a pipe from ssh
 * or from coord checkpoint -o -). The restorer and the tree restore read
 * records by offset, so the stream is kept whole in a memfd (memory, never
 * a file on disk) and everything after this reads that copy, exactly as
 * an image file. Standard input is then /dev/null: the consumed stream is
 * not something the restored program should inherit. */
static int stdin_to_memfd(struct rctx *c)
{
    int fd = memfd_create("ckshim-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        fail_msg(c, "cannot hold the image in memory: %s", strerror(errno));
        return -1;
    }
    /* Not an image at all (text, zeros): said at once, not after reading
     * an endless stream into memory; and never more than the memory there
     * is (the restored program would need at least as much). */
    char head[CK_MAGIC_LEN];
    size_t got = 0;
    while (got < sizeof head) {
        ssize_t n = read(STDIN_FILENO, head + got, sizeof head - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == 0) {
        fail_msg(c, "standard input held no image (nothing was read)");
        close(fd);
        return -1;
    }
    if (got < sizeof head || (memcmp(head, CK_MAGIC, CK_MAGIC_LEN) &&
                              memcmp(head, CK_TREE_MAGIC, CK_MAGIC_LEN))) {
        fail_msg(c, "standard input is not a ckshim image (it does not start like one)");
        close(fd);
        return -1;
    }
    if (write(fd, head, got) != (ssize_t)got) {
        fail_msg(c, "cannot hold the image in memory: %s", strerror(errno));
        close(fd);
        return -1;
    }
    uint64_t limit = avail_memory(), total = got;
    char *buf = NULL;
    for (;;) {
        if (limit && total > limit) {
            char lim[32];
            fail_msg(c, "the image on standard input is larger than the memory available "
                     "(%s); save it to a file and restore that", ck_fmt_bytes(lim, sizeof lim,
                                                                           limit));
            free(buf);
            close(fd);
            return -1;
        }
        ssize_t n = splice(STDIN_FILENO, NULL, fd, NULL, 1 << 20, SPLICE_F_MOVE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EINVAL && !buf) /* not a pipe: plain reads */
            buf = malloc(1 << 20);
        if (n < 0 && buf) {
            n = read(STDIN_FILENO, buf, 1 << 20);
            if (n < 0 && errno == EINTR)
                continue;
            if (n > 0 && write(fd, buf, (size_t)n) != n) {
                n = -1;
                errno = errno ? errno : ENOSPC;
            }
        }
        if (n == 0)
            break;
        if (n > 0)
            total += (uint64_t)n;
        ck_progress_update(total, 0); /* its size is not known before its end */
        if (n < 0) {
            fail_msg(c, "cannot read the image from standard input: %s", strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
    }
    free(buf);
    ck_progress_clear();
    lseek(fd, 0, SEEK_SET);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        close(null);
    }
    c->img_fd = fd;
    c->in_memory = 1;
    return 0;
}

/* No more writes to the image copy (see copy_to_memfd). */
static int seal_image(struct rctx *c)
{
    if (fcntl(c->img_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) <
        0) {
        fail_msg(c, "cannot seal the image copy: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* An encrypted image: decrypt every PAGES payload in place in the image's
 * memfd copy (copy_to_memfd), for the restorer (which has no
 * cryptography). */
static int decrypt_pages(struct rctx *c)
{
    struct ck_recbuf b = {0};
    int ret = 0;
    for (uint64_t i = 0; !ret && i < c->img.npagerecs; i++) {
        const struct ck_rec_loc *l = &c->img.pages[i];
        if (load_rec(c, l, CK_LOAD_RAW, &b) < 0) {
            fail_msg(c, "cannot read pages at byte %llu", (unsigned long long)l->offset);
            ret = -1;
        } else if (pwrite(c->img_fd, b.in, l->rec.len, (off_t)l->offset) != (ssize_t)l->rec.len) {
            fail_msg(c, "cannot hold the decrypted pages in memory: %s", strerror(errno));
            ret = -1;
        }
    }
    ck_recbuf_free(&b);
    c->pages_plain = ret == 0;
    return ret;
}

/* Move fd to exactly target (which must be free). Returns 0 or -1. */
static int place_fd(int fd, int target)
{
    if (fd == target) /* it must outlive the exec of the restorer (a pidfd is made
                         close-on-exec); the shim sets the program's flags */
        return fcntl(fd, F_SETFD, 0);
    if (dup2(fd, target) < 0)
        return -1;
    close(fd);
    return 0;
}

/* Each FILEDATA record whose arg is `arg`, in image order, read, checked,
 * decrypted and decoded, given to fn with its arg2 (where the bytes go).
 * 0; -1 if a record cannot be read (no message); fn's negative return. */
static int each_filedata(struct rctx *c, uint64_t arg,
                         int (*fn)(void *ctx, uint64_t off, const uint8_t *data, size_t len),
                         void *ctx)
{
    struct ck_recbuf b = {0};
    int ret = 0;
    for (uint32_t i = 0; !ret && i < c->img.nfiledata; i++) {
        const struct ck_rec_loc *l = &c->img.filedata[i];
        if (l->rec.arg != arg)
            continue;
        if (load_rec(c, l, 0, &b) < 0)
            ret = -1;
        else
            ret = fn(ctx, l->rec.arg2, b.out, l->rec.raw_len);
    }
    ck_recbuf_free(&b);
    return ret;
}

/* each_filedata's fn for a file being recreated: ctx is its fd. */
static int write_at(void *ctx, uint64_t off, const uint8_t *data, size_t len)
{
    return pwrite(*(int *)ctx, data, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

struct fd_bytes {
    uint8_t *buf;
    size_t at;
};

static int append_bytes(void *ctx, uint64_t off, const uint8_t *data, size_t len)
{
    struct fd_bytes *b = ctx;
    if (off != b->at)
        return -1;
    memcpy(b->buf + b->at, data, len);
    b->at += len;
    return 0;
}

/* Every byte saved for image fd `fd` (FILEDATA records with arg = fd: the
 * bytes waiting in a pipe or socket), decoded into one malloc'd buffer. */
static int read_fd_bytes(struct rctx *c, int fd, uint8_t **data, size_t *len)
{
    size_t total = 0;
    *data = NULL;
    *len = 0;
    for (uint32_t i = 0; i < c->img.nfiledata; i++)
        if (c->img.filedata[i].rec.arg == (uint64_t)fd)
            total += c->img.filedata[i].rec.raw_len;
    if (!total)
        return 0;
    struct fd_bytes b = {malloc(total), 0};
    if (!b.buf || each_filedata(c, (uint64_t)fd, append_bytes, &b) < 0) {
        free(b.buf);
        snprintf(c->err, sizeof c->err, "fd %d: cannot read its %zu saved bytes from the image",
                 fd, total);
        return -1;
    }
    *data = b.buf;
    *len = total;
    return 0;
}

/* Descriptors kept above every fd number still to come while the others
 * are put in place, per image descriptor (-1: none): a pipe's first
 * descriptor holds its pipe; a later pidfd of a process that has exited,
 * the one made for it with the first. */
static int *new_stash(uint32_t n)
{
    int *s = malloc((n ? n : 1) * sizeof(int));
    for (uint32_t k = 0; s && k < n; k++)
        s[k] = -1;
    return s;
}

/* Reopen a file, directory, device or FIFO by path as check_image saw it
 * (seen): without blocking (O_NONBLOCK, cleared again unless the program
 * had it), never through a symbolic link (the recorded path is the
 * kernel's, so its last component never was one), and only if it is
 * still the very file that was checked. */
static int reopen_checked(struct rctx *c, const struct ck_fd *f, const char *path, int oflags,
                          const struct seen *seen)
{
    int fd = open(path, oflags | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) {
        fail_msg(c, "fd %d: cannot reopen %s: %s", f->fd, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_dev != seen->dev || st.st_ino != seen->ino) {
        fail_msg(c, "fd %d: %s was replaced while being restored", f->fd, path);
        close(fd);
        return -1;
    }
    if (!(oflags & O_NONBLOCK))
        fcntl(fd, F_SETFL, oflags & ~O_NONBLOCK);
    return fd;
}

static int open_null(int oflags)
{
    return open("/dev/null", oflags & O_ACCMODE);
}

/* The process holding the OFD lock of a /proc/locks line ("N: OFDLCK
 * ADVISORY WRITE -1 MAJ:MIN:INO START END"): /proc/locks has no owner
 * for OFD locks, but the fdinfo of the descriptor holding one lists the
 * same lock, so look through the fdinfo of the processes we can see.
 * Returns the pid (and its fd in *fd) or -1. Only on the error path. */
static int ofd_lock_owner(const char *line, int *fd)
{
    const char *kind = strstr(line, "OFDLCK");
    char want[160];
    if (!kind)
        return -1;
    snprintf(want, sizeof want, "%s", kind);
    want[strcspn(want, "\n")] = 0;
    DIR *pd = opendir("/proc");
    int found = -1;
    struct dirent *p;
    while (pd && found < 0 && (p = readdir(pd))) {
        if (p->d_name[0] < '1' || p->d_name[0] > '9' || atoi(p->d_name) == getpid())
            continue;
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%s/fdinfo", p->d_name);
        DIR *fdd = opendir(dir);
        struct dirent *e;
        while (fdd && found < 0 && (e = readdir(fdd))) {
            char path[96], buf[4096];
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            int f = open(path, O_RDONLY | O_CLOEXEC);
            ssize_t n = f >= 0 ? read(f, buf, sizeof buf - 1) : -1;
            if (f >= 0)
                close(f);
            if (n <= 0)
                continue;
            buf[n] = 0;
            if (strstr(buf, want)) {
                found = atoi(p->d_name);
                *fd = atoi(e->d_name);
            }
        }
        if (fdd)
            closedir(fdd);
    }
    if (pd)
        closedir(pd);
    return found;
}

/* Who holds a lock that conflicts with k on the file open at k->fd, from
 * /proc/locks: "pid N (comm)", or what is known. */
static void lock_holder(const struct ck_lock *k, char *out, size_t len)
{
    struct stat st;
    snprintf(out, len, "someone else");
    FILE *f = fstat(k->fd, &st) == 0 ? fopen("/proc/locks", "r") : NULL;
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char kind[16], type[16], end[32];
        int pid;
        unsigned ma, mi;
        unsigned long long ino;
        long long start;
        if (strstr(line, "->") ||
            sscanf(line, "%*d: %15s %*s %15s %d %x:%x:%llu %lld %31s", kind, type, &pid, &ma, &mi,
                   &ino, &start, end) != 8 ||
            ma != major(st.st_dev) || mi != minor(st.st_dev) || ino != st.st_ino)
            continue;
        if ((k->kind == CK_LOCK_FLOCK) != !strcmp(kind, "FLOCK") ||
            (!k->write && !strcmp(type, "READ")))
            continue;
        if (k->kind != CK_LOCK_FLOCK) {
            long long e = strcmp(end, "EOF") ? atoll(end) : LLONG_MAX;
            long long ke = k->len ? k->start + k->len - 1 : LLONG_MAX;
            if (e < k->start || start > ke)
                continue;
        }
        if (pid > 0 && pid == getpid())
            continue;
        int fd = -1;
        if (pid <= 0)
            pid = ofd_lock_owner(line, &fd); /* the kernel shows no pid for OFD locks */
        if (pid <= 0) {
            snprintf(out, len, "an OFD lock of another open file description (of a process "
                     "this user cannot see)");
        } else {
            char cp[64], comm[64] = "?", fds[32] = "";
            snprintf(cp, sizeof cp, "/proc/%d/comm", pid);
            FILE *cf = fopen(cp, "r");
            if (cf) {
                if (fgets(comm, sizeof comm, cf))
                    comm[strcspn(comm, "\n")] = 0;
                fclose(cf);
            }
            if (fd >= 0)
                snprintf(fds, sizeof fds, ", its fd %d", fd);
            snprintf(out, len, "pid %d (%s)%s", pid, comm, fds);
        }
        break;
    }
    fclose(f);
}

/* Take back every file lock the program held, through the descriptors now
 * at their numbers (after all of them: closing any descriptor of a file
 * drops the process's POSIX locks on it). A lock someone else took
 * meanwhile refuses the restore, before the program runs: it must never
 * run believing it holds a lock it does not. */
/* A lease that was being broken at checkpoint: start the break again, as
 * an open that conflicts with it does, without waiting for it (O_NONBLOCK:
 * the open fails with EWOULDBLOCK and the break begins). The kernel tells
 * the lease's owner - coord, now - with SIGIO, which must not reach the
 * program (it had its notice before the checkpoint): blocked and taken
 * here. The break runs its course again (lease-break-time from now). */
static int break_lease_again(struct rctx *c, const struct ck_lock *k)
{
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", k->fd);
    sigset_t io, old;
    sigemptyset(&io);
    sigaddset(&io, SIGIO);
    sigprocmask(SIG_BLOCK, &io, &old);
    int fd = open(self, (k->start ? O_RDONLY : O_WRONLY) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    int e = errno;
    struct timespec zero = {0, 0};
    while (sigtimedwait(&io, NULL, &zero) == SIGIO)
        ;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (fd >= 0) {
        close(fd);
        errno = EINVAL; /* nothing broke it: the lease was not there */
        return -1;
    }
    errno = e;
    return e == EWOULDBLOCK ? 0 : -1;
}

static int restore_locks(struct rctx *c)
{
    struct ck_image *im = &c->img;
    for (uint32_t i = 0; i < im->nlocks; i++) {
        const struct ck_lock *k = &im->locks[i];
        struct flock fl = {.l_type = k->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
                           .l_start = k->start, .l_len = k->len};
        int r;
        if (k->kind == CK_LOCK_FLOCK)
            r = flock(k->fd, (k->write ? LOCK_EX : LOCK_SH) | LOCK_NB);
        else if (k->kind == CK_LOCK_LEASE || k->kind == CK_LOCK_LEASE_BREAKING)
            r = fcntl(k->fd, F_SETLEASE, k->write ? F_WRLCK : F_RDLCK);
        else
            r = fcntl(k->fd, k->kind == CK_LOCK_OFD ? F_OFD_SETLK : F_SETLK, &fl);
        if (r == 0 && k->kind == CK_LOCK_LEASE_BREAKING)
            r = break_lease_again(c, k);
        if (r == 0)
            continue;
        int e = errno;
        if (k->kind == CK_LOCK_LEASE || k->kind == CK_LOCK_LEASE_BREAKING) {
            /* the kernel gives a lease only to the file's owner, and only
             * while no one else has the file open for writing (for a
             * write lease: open at all) */
            fail_msg(c, "fd %d: cannot take back the program's %s lease: %s%s", k->fd,
                     k->write ? "write" : "read", strerror(e),
                     e == EAGAIN ? " (someone else has the file open)"
                     : e == EACCES ? " (the file is not the restoring user's)" : "");
            return -1;
        }
        const char *path = "?";
        for (uint32_t f = 0; f < im->nfds; f++)
            if (im->fds[f].fd == k->fd)
                path = im->fd_paths[f];
        char what[96], who[128] = "";
        if (e == EAGAIN || e == EACCES || e == EWOULDBLOCK)
            lock_holder(k, who, sizeof who);
        fail_msg(c, "fd %d: cannot take back the program's %s of %s: %s%s; not restoring a "
                 "program that would run without its lock",
                 k->fd, ck_lock_describe(what, sizeof what, k), path,
                 who[0] ? "it is held by " : strerror(e), who);
        return -1;
    }
    return 0;
}

/* Recreate every descriptor of the image at its number. Runs after all
 * checks; on failure the process exits without exec'ing the restorer. */
static int restore_fds(struct rctx *c, int keep[], int nkeep)
{
    struct ck_image *im = &c->img;
    /* Close everything that is not ours to keep. */
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int dfd = dirfd(d);
        int list[4096], n = 0;
        struct dirent *e;
        while ((e = readdir(d)) && n < 4096) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            int fd = atoi(e->d_name);
            int k = fd == dfd;
            for (int i = 0; i < nkeep; i++)
                k |= keep[i] == fd;
            if (!k)
                list[n++] = fd;
        }
        closedir(d);
        for (int i = 0; i < n; i++)
            close(list[i]);
    }
    int *stash_fds = new_stash(im->nfds);
    if (!stash_fds) {
        fail_msg(c, "out of memory");
        return -1;
    }
    int maxfd = 2;
    for (uint32_t i = 0; i < im->nfds; i++)
        if (im->fds[i].fd > maxfd)
            maxfd = im->fds[i].fd;
    for (int i = 0; i < nkeep; i++)
        if (keep[i] > maxfd)
            maxfd = keep[i];
    for (uint32_t i = 0; i < im->nfds; i++) {
        const struct ck_fd *f = &im->fds[i];
        int fd = -1;
        if (f->share_with >= 0 && !(f->flags & CK_FDF_STD_REDIRECT)) {
            if (fcntl(f->share_with, F_GETFD) < 0 || dup2(f->share_with, f->fd) < 0) {
                fail_msg(c, "fd %d: cannot share fd %d: %s", f->fd, f->share_with,
                         strerror(errno));
                return -1;
            }
            continue;
        }
        const struct ck_fdkind *kind = ck_fdkind_of(f->kind);
        int shared = c->tree_idx >= 0 ? tree_desc_of(c->tree_idx, f->fd, NULL) : -1;
        if (shared < 0 && c->tree_idx >= 0)
            shared = tree_file_fd(f);
        if (shared >= 0) {
            /* the description the processes of the tree share */
            if ((fd = fcntl(shared, F_DUPFD_CLOEXEC, 0)) < 0) {
                fail_msg(c, "fd %d: %s", f->fd, strerror(errno));
                return -1;
            }
        } else if (kind) {
            struct ck_fdrest r;
            rest_ctx(c, i, &r, stash_fds, maxfd);
            c->err[0] = 0;
            if ((fd = kind->restore(&r)) < 0) {
                if (!c->err[0])
                    fail_msg(c, "fd %d: cannot make the %s again", f->fd, kind->name);
                return -1;
            }
        } else {
            fail_msg(c, "fd %d: unknown descriptor kind %u in the image", f->fd, f->kind);
            return -1;
        }
        if (place_fd(fd, f->fd) < 0) {
            fail_msg(c, "fd %d: cannot move descriptor into place: %s", f->fd, strerror(errno));
            return -1;
        }
    }
    for (uint32_t k = 0; stash_fds && k < im->nfds; k++)
        if (stash_fds[k] >= 0)
            close(stash_fds[k]);
    free(stash_fds);
    if (after_fd_kinds(c, maxfd) < 0)
        return -1;
    /* the copies of descriptors in flight are back in their queues: the
     * program never had them (before the locks: a close drops POSIX locks) */
    for (uint32_t i = 0; i < im->nfds; i++)
        if (im->fds[i].flags & CK_FDF_IN_FLIGHT)
            close(im->fds[i].fd);
    /* what the tree made is in place, and this process's children have
     * their own copies: let go of them now, not at the exec, which would
     * drop the POSIX locks taken below on their files */
    for (int k = 0; c->tree_idx >= 0 && k < g_tree.ndescs; k++)
        close(g_tree.descs[k].made);
    return restore_locks(c);
}

static int restore_env(struct rctx *c)
{
    const struct ck_proc *p = &c->img.proc;
    char cdir[PATH_MAX];
    const char *rest;
    if (cwd_removed(&c->img, cdir, sizeof cdir) && ck_procdead_split(cdir, &rest) > 0) {
        /* a /proc directory of a process that has exited */
        char dir[PATH_MAX];
        int release, ok = 0;
        pid_t child = ck_procdead_child(&release);
        if (child > 0) {
            ok = ck_procdead_path(dir, sizeof dir, child, rest) == 0 && chdir(dir) == 0;
            ck_procdead_release(child, release);
        }
        if (!ok) {
            fail_msg(c, "cannot enter a /proc directory of a process that has exited, as the "
                     "program's working directory %s was: %s", cdir, strerror(errno));
            return -1;
        }
    } else if (cwd_removed(&c->img, cdir, sizeof cdir)) {
        /* the same directory as a descriptor of the program, or one made
         * again and removed */
        int fd = cwd_fd(&c->img);
        int own = fd < 0;
        if (own)
            fd = ck_remake_removed(cdir, S_IFDIR, 0700, NULL, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fchdir(fd) < 0) {
            fail_msg(c, "cannot make the program's removed working directory %s again: %s",
                     cdir, strerror(errno));
            return -1;
        }
        if (own)
            close(fd);
    } else if (chdir(p->cwd) < 0) {
        fail_msg(c, "cannot change to the program's working directory %s: %s", p->cwd,
                 strerror(errno));
        return -1;
    }
    /* rlimits: the restorer sets them last (build_plan) */
    umask(p->umask & 0777);
    return 0;
}

static int commit_counter(struct rctx *c);

static void tree_gate_keeper(struct rctx *root, int *ready_rd, int *gate_wr, int n);

/* The progress line (coord.h; --quiet turns it off): a page of counters
 * (struct ck_plan_progress, one per process) in a memfd, which each
 * restorer maps and adds the memory it put in place to, and from which
 * the gate keeper draws the line until every restorer has filled its
 * memory. The keeper erases it before it opens the gate, so the line is
 * gone before the program can write anything. */
static int quiet;
static int g_progress_fd = -1;
static struct ck_plan_progress *g_progress;

/* Make the page if the line is wanted (a terminal, no --quiet), with
 * npages pages to restore for a single process. Returns whether there is
 * one. */
static int progress_page(uint64_t npages)
{
    if (!g_progress && ck_progress_on()) {
        int fd = memfd_create("ckshim-progress", MFD_CLOEXEC);
        void *p = fd >= 0 && ftruncate(fd, 4096) == 0
                      ? mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                      : MAP_FAILED;
        if (p == MAP_FAILED) {
            if (fd >= 0)
                close(fd);
            return 0;
        }
        g_progress = p;
        g_progress_fd = fd;
        g_progress[0].total = npages * CK_PAGE_SIZE;
    }
    return g_progress != NULL;
}

/* The keeper's wait for the restorers' first report (their memory in
 * place, a byte on each ready pipe, left there for tree_barrier_step),
 * drawing the progress line meanwhile. A restorer that ends (its pipe
 * closed) counts as done: tree_barrier_step tells. */
static void keeper_progress(const int *ready_rd, int n)
{
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    int open = 0;
    for (int i = 0; pf && i < n; i++) {
        pf[i].fd = ready_rd[i];
        pf[i].events = POLLIN;
        open += ready_rd[i] >= 0;
    }
    while (pf && open > 0) {
        int pr = poll(pf, (nfds_t)n, 200);
        if (pr < 0 && errno != EINTR)
            break;
        for (int i = 0; pr > 0 && i < n; i++)
            if (pf[i].fd >= 0 && pf[i].revents) {
                pf[i].fd = -1;
                open--;
            }
        uint64_t done = 0, total = 0;
        for (int i = 0; i < n && i < (int)CK_PROGRESS_SLOTS; i++) {
            done += __atomic_load_n(&g_progress[i].done, __ATOMIC_RELAXED);
            total += g_progress[i].total;
        }
        ck_progress_update(done, total);
    }
    free(pf);
}

/* Fork a helper that the restored program never sees as its child: a
 * grandchild, orphaned at once. Returns 0 in the helper, 1 in coord, -1
 * when it could not be started. */
static int fork_orphan(void)
{
    fflush(NULL);
    pid_t k = fork();
    if (k == 0) {
        pid_t g = fork();
        if (g == 0)
            return 0;
        _exit(g < 0);
    }
    int ws = 0;
    if (k > 0)
        while (waitpid(k, &ws, 0) < 0 && errno == EINTR)
            ;
    if (k < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        if (k > 0)
            errno = EAGAIN;
        return -1;
    }
    return 1;
}

/* Start the gate keeper of a single process (see the top of this file):
 * the tree's keeper with a tree of one, so that one process, like a
 * tree, moves the counter only once it is whole (docs/DESIGN.md, "The
 * first promise"). Returns 0 with the restorer's ends of the two pipes in
 * *gate_rd and *ready_wr (>= base, close-on-exec), or -1. */
static int start_gate(struct rctx *c, int base, int *gate_rd, int *ready_wr)
{
    int rp[2], gp[2];
    if (pipe2(rp, O_CLOEXEC) < 0)
        goto fail;
    if (pipe2(gp, O_CLOEXEC) < 0) {
        close(rp[0]);
        close(rp[1]);
        goto fail;
    }
    int o = fork_orphan();
    if (o == 0) {
        /* nothing else of coord's but the files to put back: a copy of
         * its stdout would keep a $(coord restore --detach) waiting, a
         * restored pipe's end a reader */
        int rd = 3, wr = 4;
        keep_version_fds(c);
        int r2 = fcntl(rp[0], F_DUPFD, 5), g2 = fcntl(gp[1], F_DUPFD, 5);
        if (r2 < 0 || g2 < 0 || dup2(r2, rd) < 0 || dup2(g2, wr) < 0)
            _exit(1);
        close_from_but_versions(c, 5);
        tree_gate_keeper(c, &rd, &wr, 1);
    }
    close(rp[0]);
    close(gp[1]);
    if (o < 0) {
        close(rp[1]);
        close(gp[0]);
        goto fail;
    }
    *gate_rd = fcntl(gp[0], F_DUPFD_CLOEXEC, base);
    *ready_wr = fcntl(rp[1], F_DUPFD_CLOEXEC, base);
    close(gp[0]);
    close(rp[1]);
    if (*gate_rd < 0 || *ready_wr < 0)
        goto fail;
    return 0;
fail:
    fail_msg(c, "cannot start the counter gate: %s", strerror(errno));
    return -1;
}

/* The post-restore action script, once the restored program runs. */
static void post_restore(struct rctx *c, int pid)
{
    char why[256];
    if (ck_action_run(c->script, "post-restore", pid, c->script_image, NULL, why, sizeof why) < 0)
        ck_msg("restore %s: warning: the post-restore action script %s failed (%s); the "
               "restored program goes on",
               c->file, c->script, why);
}

/* --action-script in the foreground, where coord becomes the program: an
 * orphaned helper holds the read end of the restore's status pipe, where
 * the restored shim reports "ok PID" just before the program's threads
 * run again (see preload/restore.c), and runs the script then. Nothing
 * (the pipe closed, or an error): the restore failed, no script. */
static void post_restore_watcher(struct rctx *c, int rd)
{
    if (c->have_key)
        ck_key_wipe(&c->key); /* not needed here, and this process lives on */
    int null = open("/dev/null", O_RDWR);
    if (dup2(rd, 3) < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
        _exit(1);
    close_range(4, ~0U, 0); /* not the status pipe's write end: its end is the answer */
    char buf[1100];
    size_t n = 0;
    while (n < sizeof buf - 1 && !memchr(buf, '\n', n)) {
        ssize_t r = read(3, buf + n, sizeof buf - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    if (!strncmp(buf, "ok ", 3))
        post_restore(c, atoi(buf + 3));
    else if (!strncmp(buf, "error: ", 7))
        ck_msg("restore %s: %s (the post-restore action script was not run)", c->file, buf + 7);
    _exit(0);
}

/* Start post_restore_watcher; c->status_fd becomes the write end. */
static int start_watcher(struct rctx *c)
{
    int sp[2];
    if (pipe2(sp, O_CLOEXEC) < 0) {
        fail_msg(c, "cannot start the post-restore watcher: %s", strerror(errno));
        return -1;
    }
    int o = fork_orphan();
    if (o == 0) {
        close(sp[1]);
        post_restore_watcher(c, sp[0]);
    }
    close(sp[0]);
    if (o < 0) {
        close(sp[1]);
        fail_msg(c, "cannot start the post-restore watcher: %s", strerror(errno));
        return -1;
    }
    c->status_fd = sp[1];
    return 0;
}

/* In a pid namespace of the program's own we hold every capability of
 * its user namespace, which an exec as an ordinary uid drops: keep
 * CAP_CHECKPOINT_RESTORE through the restorer's exec (ambient), for its
 * clone3 set_tid of the threads. Every thread drops it again before the
 * program runs (preload/quiesce.c). Best effort: without it threads get
 * any tid, which the shim maps as in the default mode. */
static void keep_restore_cap(void)
{
    if (ck_caps(40 /* CAP_CHECKPOINT_RESTORE */) == 0)
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, 40, 0, 0);
}

/* In a preparer (start_preparer), where become would exec: send the
 * table an exec would leave (every descriptor without close-on-exec) and
 * the working directory to the process it was made for, which its
 * parent's restorer forked (restorer.c, adopt), and end. A send that
 * finds the process or its parent gone ends it too: the gate keeper sees
 * that process end and stops the tree. Returns only with c->err set. */
/* A preparer's last step: send its descriptor table to the child its
 * parent's restorer forks (struct ck_adopt_hdr, then batches). Only the
 * descriptors from lowest up: a child sharing its parent's table gets
 * its own (plan, image, gate) and nothing of the program's. Never
 * returns but with c->err set. */
static void hand_over(struct rctx *c, int plan_fd, int lowest)
{
    int sock = g_prep_sock, n = 1, cap = 256;
    int *fds = malloc((size_t)cap * sizeof *fds), *target = malloc((size_t)cap * sizeof *target);
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    DIR *d = opendir("/proc/self/fd");
    if (!fds || !target || cwd < 0 || !d) {
        fail_msg(c, "cannot hand its descriptors over: %s", strerror(errno));
        return;
    }
    fds[0] = cwd;
    target[0] = -1;
    int hi = 2;
    struct dirent *de;
    while ((de = readdir(d))) {
        int fd = atoi(de->d_name), fl;
        if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == dirfd(d) || fd == sock ||
            fd == cwd || fd < lowest || (fl = fcntl(fd, F_GETFD)) < 0 || (fl & FD_CLOEXEC))
            continue;
        if (n == cap) {
            cap *= 2;
            int *f2 = realloc(fds, (size_t)cap * sizeof *fds);
            int *t2 = f2 ? realloc(target, (size_t)cap * sizeof *target) : NULL;
            if (f2)
                fds = f2;
            if (!t2) {
                fail_msg(c, "out of memory");
                return;
            }
            target = t2;
        }
        fds[n] = target[n] = fd;
        if (fd > hi)
            hi = fd;
        n++;
    }
    closedir(d);
    struct ck_adopt_hdr h = {.magic = CK_ADOPT_MAGIC, .count = (uint32_t)n, .hi = hi,
                             .umask = c->img.proc.umask & 0777, .plan_fd = plan_fd};
    if (send(sock, &h, sizeof h, MSG_NOSIGNAL) != (ssize_t)sizeof h)
        _exit(1);
    for (int off = 0; off < n;) {
        int k = n - off < CK_ADOPT_BATCH ? n - off : CK_ADOPT_BATCH;
        union {
            char buf[CMSG_SPACE(CK_ADOPT_BATCH * sizeof(int))];
            struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = target + off, .iov_len = (size_t)k * sizeof(int)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                            .msg_controllen = CMSG_SPACE((size_t)k * sizeof(int))};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN((size_t)k * sizeof(int));
        memcpy(CMSG_DATA(cm), fds + off, (size_t)k * sizeof(int));
        ssize_t w;
        /* ETOOMANYREFS: the user's descriptors in flight exceed its
         * descriptor limit (many preparers at once): they drain as the
         * children take theirs */
        for (int tries = 0; (w = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 &&
                            (errno == EINTR || (errno == ETOOMANYREFS && tries < 5000));
             tries++)
            if (errno == ETOOMANYREFS)
                usleep(2000);
        if (w < 0 && errno != EPIPE && errno != ECONNRESET) {
            fail_msg(c, "cannot hand its descriptors over: %s", strerror(errno));
            return;
        }
        char ack;
        if (w < 0 || recv(sock, &ack, 1, 0) != 1)
            _exit(1);
        off += k;
    }
    _exit(0);
}

/* The process that becomes the program: set up fds and exec. Only
 * returns on failure, with c->err set. */
static void become(struct rctx *c, const char *restorer)
{
    int plan_fd = build_plan(c, -1, -1);
    if (plan_fd < 0)
        return;
    if (c->script[0] && !c->detach && start_watcher(c) < 0)
        return;
    /* Move coord's own descriptors above every number the program uses. */
    int maxfd = 2;
    for (uint32_t i = 0; i < c->img.nfds; i++)
        if (c->img.fds[i].fd > maxfd)
            maxfd = c->img.fds[i].fd;
    int base = maxfd + 1 < 16 ? 16 : maxfd + 1;
    int keep[16 + (c->tree_idx >= 0 ? g_tree.npipes + g_tree.nshms + g_tree.nfiles + 1 +
                                          g_tree.ndescs + g_tree.n + 1 : 0)],
        nkeep = 0;
    if (c->tree_idx >= 0) {
        /* descriptors the tree made (sockets, shared descriptions) */
        for (int k = 0; k < g_tree.ndescs; k++)
            keep[nkeep++] = g_tree.descs[k].made;
        for (int k = 0; k < g_tree.nfiles; k++)
            keep[nkeep++] = g_tree.files[k].fd;
        /* the shared memory stays open through the exec: the restorer
         * maps it, the shim closes it */
        for (int k = 0; k < g_tree.nshms; k++) {
            keep[nkeep++] = g_tree.shms[k].fd;
            fcntl(g_tree.shms[k].fd, F_SETFD, 0);
        }
        /* what the tree shares stays open until the restorer runs (all
         * close-on-exec) and the pid map for the shim (kept open) */
        for (int k = 0; k < g_tree.npipes; k++)
            keep[nkeep++] = g_tree.pipes[k].fd;
        keep[nkeep++] = g_tree.map_fd;
        fcntl(g_tree.map_fd, F_SETFD, 0);
        /* the sockets to the preparers of the children its restorer forks */
        for (int j = 0; j < g_tree.n; j++)
            if (g_tree.prep_near[j] >= 0 && g_tree.e[j].parent == c->tree_idx)
                keep[nkeep++] = g_tree.prep_near[j];
        if (g_prep_sock >= 0)
            keep[nkeep++] = g_prep_sock;
    }
    for (int i = 0; i < 3; i++) {
        c->saved_std[i] = fcntl(i, F_DUPFD_CLOEXEC, base);
        if (c->saved_std[i] < 0)
            c->saved_std[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
        keep[nkeep++] = c->saved_std[i];
    }
    c->err_fd = c->saved_std[2];
    int img = fcntl(c->pages_fd >= 0 ? c->pages_fd : c->img_fd, F_DUPFD, base);
    /* The image itself stays open (close-on-exec) for FILEDATA. */
    int orig = fcntl(c->img_fd, F_DUPFD_CLOEXEC, base);
    int plan = fcntl(plan_fd, F_DUPFD, base);
    int st = c->status_fd >= 0 ? fcntl(c->status_fd, F_DUPFD, base) : -1;
    if (img < 0 || plan < 0 || (c->status_fd >= 0 && st < 0)) {
        fail_msg(c, "cannot move descriptors: %s", strerror(errno));
        return;
    }
    close(c->img_fd);
    if (c->pages_fd >= 0)
        close(c->pages_fd);
    close(plan_fd);
    if (c->status_fd >= 0)
        close(c->status_fd);
    c->img_fd = orig;
    c->status_fd = st;
    keep[nkeep++] = img;
    keep[nkeep++] = orig;
    keep[nkeep++] = plan;
    if (st >= 0)
        keep[nkeep++] = st;
    int gate_rd = -1, ready_wr = -1;
    int progress = c->tree_idx < 0 && progress_page(c->img.end.npages);
    if (c->tree_idx >= 0) {
        /* the tree's one gate (start_tree_gate) */
        gate_rd = fcntl(g_tree.gate_rd[c->tree_idx], F_DUPFD_CLOEXEC, base);
        ready_wr = fcntl(g_tree.ready_wr[c->tree_idx], F_DUPFD_CLOEXEC, base);
        if (gate_rd < 0 || ready_wr < 0) {
            fail_msg(c, "cannot move the gate's pipes: %s", strerror(errno));
            return;
        }
        c->commit = 1;
        keep[nkeep++] = gate_rd;
        keep[nkeep++] = ready_wr;
    } else if (c->commit || c->nvers || progress) {
        /* a gate also when only files are to be put back (no counter to
         * advance: --counter none, --force past a stale stamp): they
         * change only once every page is in place; and for the progress
         * line, which its keeper erases before the program can write */
        if (start_gate(c, base, &gate_rd, &ready_wr) < 0)
            return;
        keep[nkeep++] = gate_rd;
        keep[nkeep++] = ready_wr;
    }
    /* The plan must name the final fd numbers: rewrite its header. */
    struct ck_plan head;
    if (pread(plan, &head, sizeof head, 0) != (ssize_t)sizeof head) {
        fail_msg(c, "cannot read back the plan");
        return;
    }
    head.image_fd = img;
    head.status_fd = st;
    head.gate_fd = gate_rd;
    head.ready_fd = ready_wr;
    /* In the foreground, the restorer's own failures go to coord's stderr
     * (fd 2 is the program's by then); --detach reports through st (in
     * the foreground st is the post-restore watcher's, if any). */
    head.err_fd = c->detach && c->tree_idx <= 0 ? -1 : c->saved_std[2];
    /* Test hooks (test_tree_barrier.sh, test_restore_late.sh): the
     * process known as VPID (of a tree, or a single image's) ends once its
     * threads are made, after it passed the first gate (die-late), or in
     * the shim's restore_finish (die-finish). */
    const char *hook = getenv("CKSHIM_TEST_HOOK");
    int vpid = c->tree_idx >= 0 ? g_tree.e[c->tree_idx].vpid : (int)c->img.proc.pid;
    /* the shim's second step of the gate (restore_finish), for a tree as
     * for a single process whose counter moves at the gate */
    head.tree_gate = gate_rd >= 0;
    head.test_die_late = 0;
    head.progress_fd = -1;
    head.progress_slot = c->tree_idx >= 0 ? (uint32_t)c->tree_idx : 0;
    if (g_progress && gate_rd >= 0) {
        head.progress_fd = fcntl(g_progress_fd, F_DUPFD, base);
        if (head.progress_fd >= 0)
            keep[nkeep++] = head.progress_fd;
    }
    if (hook && !strncmp(hook, "restore-die-late:", 17) && atoi(hook + 17) == vpid)
        head.test_die_late = 1;
    if (hook && !strncmp(hook, "restore-die-finish:", 19) && atoi(hook + 19) == vpid)
        head.test_die_late = 2;
    /* test_tree_fork.sh: the restorer ends before it forks its children */
    if (hook && !strncmp(hook, "restore-die-before-fork:", 24) && atoi(hook + 24) == vpid)
        head.test_die_late = 3;
    /* test_tree_barrier.sh: the process is killed (as the out-of-memory
     * killer would) in its restorer, before its memory is in place */
    if (hook && !strncmp(hook, "restore-kill-early:", 19) && atoi(hook + 19) == vpid)
        head.test_die_late = 4;
    /* test_progress.sh: a restore slow enough for its progress line */
    head.test_slow_fill_ms = 0;
    if (hook && !strncmp(hook, "restore-slow-fill:", 18) && atoi(hook + 18) > 0)
        head.test_slow_fill_ms = (uint32_t)atoi(hook + 18);
    if (pwrite(plan, &head, sizeof head, 0) != (ssize_t)sizeof head) {
        fail_msg(c, "cannot update the plan");
        return;
    }
    /* one sharing its parent's table (clone with CLONE_FILES) finds the
     * program's descriptors there: its preparer makes only its own */
    int follower = g_prep_sock >= 0 && c->tree_idx > 0 &&
                   (g_tree.e[c->tree_idx].flags & CK_TREE_FILES);
    /* (hand_over sends such a child only what lies from base up: all it
     * keeps must be there, or it would use the program's number) */
    for (int k = 0; follower && k < nkeep; k++)
        if (keep[k] >= 0 && keep[k] < base) {
            fail_msg(c, "descriptor %d of the restore lies among the program's (below %d)",
                     keep[k], base);
            return;
        }
    if ((!follower && restore_fds(c, keep, nkeep) < 0) || restore_env(c) < 0)
        return;
    if (lseek(img, (off_t)c->img.pages_offset, SEEK_SET) < 0) {
        fail_msg(c, "cannot seek in the image: %s", strerror(errno));
        return;
    }
    fcntl(img, F_SETFD, 0);
    fcntl(plan, F_SETFD, 0);
    if (st >= 0)
        fcntl(st, F_SETFD, 0);
    if (!c->detach)
        fcntl(c->saved_std[2], F_SETFD, 0);
    if (gate_rd >= 0) {
        fcntl(gate_rd, F_SETFD, 0);
        fcntl(ready_wr, F_SETFD, 0);
    }
    for (int j = 0; c->tree_idx >= 0 && j < g_tree.n; j++)
        if (g_tree.prep_near[j] >= 0 && g_tree.e[j].parent == c->tree_idx)
            fcntl(g_tree.prep_near[j], F_SETFD, 0);
    if (g_prep_sock >= 0) {
        /* test_tree_fork.sh: the preparer of process VPID fails */
        if (hook && !strncmp(hook, "restore-prep-fail:", 18) && atoi(hook + 18) == vpid)
            fail_msg(c, "test hook: its preparer fails");
        else
            hand_over(c, plan, follower ? base : 0);
        return;
    }
    if (g_pidns)
        keep_restore_cap();
    char planarg[16];
    snprintf(planarg, sizeof planarg, "%d", plan);
    char *argv[] = {"ckshim-restore", planarg, NULL};
    char *envp[] = {NULL};
    /* Signals the restored program expects to find at their defaults. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(restorer, argv, envp);
    fail_msg(c, "cannot run the restorer %s: %s", restorer, strerror(errno));
}

/* A checkpoint without --kill leaves the program running: restored here,
 * its copy runs beside it (allowed: nothing of it conflicts, or the
 * restore would have been refused). Said, for the process the image was
 * taken from (pid real, if it still runs here with the same name and
 * started before the image was made). */
static void note_original(const struct rctx *c, const char *file, int real)
{
    const struct ck_image *im = &c->img;
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", real);
    struct ck_pstat ps;
    long hz = sysconf(_SC_CLK_TCK);
    if (!c->same_host || real <= 0 || hz <= 0 || ck_read_file(path, comm, sizeof comm) <= 0)
        return;
    comm[strcspn(comm, "\n")] = 0;
    if (strncmp(comm, im->proc.comm, sizeof im->proc.comm) != 0 || ck_pstat_read(real, &ps) < 0 ||
        ps.state == 'Z')
        return;
    struct timespec rt, bt;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_BOOTTIME, &bt);
    int64_t boot_ns = ((int64_t)rt.tv_sec - bt.tv_sec) * 1000000000LL + rt.tv_nsec - bt.tv_nsec;
    int64_t started = boot_ns + (int64_t)(ps.start * (1000000000ULL / (uint64_t)hz));
    if (started > (int64_t)im->hdr.created_ns)
        return; /* a later process with that number */
    ck_msg("restore %s: note: process %d (%s), which the image was taken from, still runs: the "
           "restored program runs beside it (`checkpoint --kill` moves a program instead)",
           file, real, comm);
}

static int stamp_mismatch(struct rctx *c, uint64_t cur)
{
    const struct ck_header *h = &c->img.hdr;
    char where[300];
    int state = ck_stamp_state(h->counter_stamp, cur);
    if (state == CK_STAMP_CURRENT || state == CK_STAMP_PENDING)
        return 0;
    ck_counter_describe(&c->counter, where, sizeof where);
    if (state == CK_STAMP_STALE)
        fail_msg(c, "counter stamp %llu is stale: the counter of app id '%s' is %llu at %s (a "
                 "newer checkpoint or a restore of this program, or of another one given the "
                 "same --id); refusing rollback (use --force)",
                 (unsigned long long)h->counter_stamp, h->app_id, (unsigned long long)cur, where);
    else
        fail_msg(c, "counter stamp %llu is ahead of the counter for '%s' (%llu at %s): "
                 "wrong counter service?; refusing (use --force)",
                 (unsigned long long)h->counter_stamp, h->app_id, (unsigned long long)cur, where);
    return -1;
}

static int counter_down(struct rctx *c, const char *err)
{
    fail_msg(c, "%s; not restoring without the rollback check (use --force to override)", err);
    return -1;
}

/* Advance the counter if it still holds the image's stamp. */
static int commit_counter(struct rctx *c)
{
    const struct ck_header *h = &c->img.hdr;
    char err[512];
    uint64_t cur = 0;
    if (ck_counter_fetch_incr_if(&c->counter, h->app_id, h->counter_stamp, &cur, err,
                                 sizeof err) < 0)
        return counter_down(c, err);
    if (ck_stamp_state(h->counter_stamp, cur) == CK_STAMP_PENDING) {
        /* The image was committed by a checkpoint that ended before it
         * advanced the counter: finish that step, then this one. */
        if (ck_counter_fetch_incr_if(&c->counter, h->app_id, cur, &cur, err, sizeof err) < 0 ||
            ck_counter_fetch_incr_if(&c->counter, h->app_id, h->counter_stamp, &cur, err,
                                     sizeof err) < 0)
            return counter_down(c, err);
    }
    return stamp_mismatch(c, cur);
}

/* Rollback protection: the image's stamp must be the counter's current
 * value; it is then advanced, so the image restores only once. */
/* --json (with --detach): the restored program's pid and more as one
 * JSON object instead of the bare pid. */
static int json_out;

/* --adopt-stamp (coord migrate): the counter on this host has never seen
 * the program; start it at the image's stamp, then check as usual. */
static int adopt_stamp;

static int check_counter(struct rctx *c, const char *url, int force)
{
    const struct ck_header *h = &c->img.hdr;
    struct ck_counter counter;
    char err[512];
    if (ck_counter_parse(url, &counter, err, sizeof err) < 0) {
        fail_msg(c, "--counter: %s", err);
        return -1;
    }
    if (force && ck_restore_extra.again)
        return 0; /* the supervisor checked the counter (see coord.h) */
    if (force) {
        fprintf(stderr,
                "coord: WARNING: restore %s: --force: skipping the rollback check; this image "
                "(stamp %llu) may be stale or already restored\n",
                c->file, (unsigned long long)h->counter_stamp);
        return 0;
    }
    if ((h->flags & CK_HF_COUNTER_NONE) || h->counter_stamp == 0) {
        if (counter.kind == CK_COUNTER_NONE)
            return 0;
        fail_msg(c, "the image carries no counter stamp (taken with --counter none); restore it "
                 "with --counter none or --force");
        return -1;
    }
    if (counter.kind == CK_COUNTER_NONE) {
        fprintf(stderr, "coord: warning: restore %s: --counter none: not checking stamp %llu\n",
                c->file, (unsigned long long)h->counter_stamp);
        return 0;
    }
    c->counter = counter;
    if (adopt_stamp) {
        uint64_t now = 0;
        if (ck_counter_adopt(&counter, h->app_id, h->counter_stamp, &now, err, sizeof err) < 0)
            return counter_down(c, err);
    }
    /* Compare now (a stale image is refused before anything starts);
     * compare-and-increment at the gate, once every page is checked
     * and the process is whole (threads made, the shim's
     * restore_finish done): a restore that fails before leaves the
     * image restorable. Authenticated and encrypted images too: their
     * pages are checked before, but a thread or a descriptor can
     * still fail late. */
    uint64_t cur = 0;
    if (ck_counter_get(&counter, h->app_id, &cur, err, sizeof err) < 0)
        return counter_down(c, err);
    if (stamp_mismatch(c, cur) < 0)
        return -1;
    c->commit = 1;
    return 0;
}

struct ck_restore_extra ck_restore_extra = {.status_fd = -1};

static void print_err(struct rctx *c)
{
    ck_progress_clear();
    dprintf(c->err_fd, "coord: restore %s: %s\n", c->file, c->err);
}

/* --detach: the restored program runs. Watch it for a moment
 * ($CKSHIM_DETACH_WATCH_MS, default 200) so that one that dies at once
 * (a crash right after its threads resume) is reported with its signal or
 * exit status instead of a pid that is already gone. */
static int watch_detached(struct rctx *c, pid_t pid)
{
    const char *e = getenv("CKSHIM_DETACH_WATCH_MS");
    long ms = e && *e ? atol(e) : 200;
    for (long waited = 0;; waited += 10) {
        int ws;
        pid_t w = waitpid(pid, &ws, WNOHANG);
        if (w == pid && WIFSIGNALED(ws)) {
            ck_msg("restore %s: the restored program (pid %d) was killed by signal %d (%s) "
                   "right after restore%s",
                   c->file, (int)pid, WTERMSIG(ws), strsignal(WTERMSIG(ws)),
                   WCOREDUMP(ws) ? " (core dumped)" : "");
            return CK_EXIT_FAIL;
        }
        if (w == pid && WIFEXITED(ws)) {
            ck_msg("restore %s: the restored program (pid %d) exited with status %d right "
                   "after restore",
                   c->file, (int)pid, WEXITSTATUS(ws));
            return WEXITSTATUS(ws) ? CK_EXIT_FAIL : CK_EXIT_OK;
        }
        if (w < 0 || waited >= ms)
            return CK_EXIT_OK;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- process trees (docs/DESIGN.md, "Process trees") ---- */

/* Tell the root msg ("ok\n" or "error: ...\n") and every other process
 * of the tree the same, or "stop\n" (end quietly: the root says why) if
 * msg is an error. A process that is gone is skipped (SIGPIPE ignored). */
static void tree_gates_say(int *gate_wr, int n, const char *msg)
{
    int ok = !strcmp(msg, "ok\n");
    for (int i = 0; i < n; i++) {
        const char *m = ok || i == 0 ? msg : "stop\n";
        if (gate_wr[i] >= 0 && write(gate_wr[i], m, strlen(m)) < 0)
            continue; /* gone: its parent's wait, or the second step, sees it */
    }
}

/* How the keeper's messages name process i, and what did not run: a
 * process of a tree, or the one process of a single image. */
static void keeper_who(int i, char *who, size_t len, const char **none)
{
    if (g_tree.n)
        snprintf(who, len, "process %d of the tree", g_tree.e[i].vpid);
    else
        snprintf(who, len, "the restored process");
    *none = g_tree.n ? "no process of the tree ran" : "no program code ran";
}

/* The kernel's count of processes its out-of-memory killer ended
 * (/proc/vmstat oom_kill), 0 if unknown. */
static uint64_t oom_kills(void)
{
    char vm[16384];
    if (ck_read_file("/proc/vmstat", vm, sizeof vm) < 0)
        return 0;
    const char *p = strstr(vm, "\noom_kill ");
    return p ? strtoull(p + 10, NULL, 10) : 0;
}

/* How process i of the tree ended, for the keeper's message (what its
 * restorer could not say itself: a signal; out of memory, the kernel's
 * killer sends SIGKILL), into how ("" if unknown: not a zombie yet, its
 * pid not in the map). oom0: oom_kills() when the keeper started. */
static void keeper_how(int i, uint64_t oom0, char *how, size_t len)
{
    how[0] = 0;
    int pid = g_tree.n && g_tree.map ? g_tree.map[2 * i + 1] : 0, ws = -1;
    /* the ready pipe closes as it exits, a moment before it is a zombie */
    for (int w = 0; pid > 0 && w < 50 && (ws = ck_stat_exit_code(pid, "ZX")) < 0; w++)
        usleep(2000);
    if (ws < 0)
        return;
    int sig = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
    if (sig && oom_kills() > oom0)
        snprintf(how, len, " (killed by signal %d, %s: out of memory, the kernel's "
                 "out-of-memory killer ended a process meanwhile)", sig, strsignal(sig));
    else if (sig)
        snprintf(how, len, " (killed by signal %d, %s%s)", sig, strsignal(sig),
                 sig == SIGKILL ? ": from outside, or by the kernel when memory ran out" : "");
    else
        snprintf(how, len, " (exit status %d)", WEXITSTATUS(ws));
}

/* One step of the tree's barrier: a byte from every process of the tree
 * through its ready pipe. Returns -1 (after the root was told why and
 * every other process to stop) if one of them ended first. */
static int tree_barrier_step(int *ready_rd, int *gate_wr, int n, const char *what,
                             uint64_t oom0)
{
    for (int i = 0; i < n; i++) {
        char b;
        ssize_t k;
        if (ready_rd[i] < 0)
            continue; /* a zombie: no restorer */
        do
            k = read(ready_rd[i], &b, 1);
        while (k < 0 && errno == EINTR);
        char msg[1400], who[64], how[700];
        if (k == 1 && b == 'E') {
            /* its restorer's own words (restorer.c: die), up to the newline */
            size_t got = 2;
            snprintf(how, sizeof how, ": ");
            while (got < sizeof how - 1 && read(ready_rd[i], how + got, 1) == 1 &&
                   how[got] != '\n')
                got++;
            how[got] = 0;
        } else if (k == 1) {
            continue;
        } else {
            keeper_how(i, oom0, how, sizeof how);
        }
        const char *none;
        keeper_who(i, who, sizeof who, &none);
        snprintf(msg, sizeof msg, "error: %s ended %s%s; %s, the image is kept (the counter "
                 "did not move)\n", who, what, how, none);
        tree_gates_say(gate_wr, n, msg);
        return -1;
    }
    return 0;
}

/* The tree's gate keeper: a barrier in two steps, so that the tree is
 * released whole or not at all (docs/DESIGN.md, "Process trees").
 * 1. Every restorer reports its pages in place and checked; every gate
 *    opens for the restorers to make their threads.
 * 2. Every shim reports its process whole (threads back at their park
 *    points, descriptors, locks, timers in place: restore_finish); only
 *    then is the counter advanced, once, and every process released
 *    together.
 * If any process ends before its report, the others are told to stop
 * (the root is told why), no program code has run and the counter is
 * untouched: the image restores again. A single process is a tree of one
 * here (start_gate; g_tree.n is 0). SIGPIPE is ignored: a process that
 * ended must not end the keeper half-way through opening the gates. */
static void tree_gate_keeper(struct rctx *root, int *ready_rd, int *gate_wr, int n)
{
    int null = open("/dev/null", O_RDWR);
    int tty = g_progress ? dup(2) : -1; /* coord's stderr, for the progress line */
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    signal(SIGPIPE, SIG_IGN);
    uint64_t oom0 = oom_kills();
    if (tty >= 0) {
        ck_progress_to(tty);
        keeper_progress(ready_rd, n);
        ck_progress_end();
        close(tty);
    }
    if (tree_barrier_step(ready_rd, gate_wr, n, "before its memory was in place", oom0) < 0)
        _exit(0);
    tree_gates_say(gate_wr, n, "ok\n");
    if (tree_barrier_step(ready_rd, gate_wr, n, "late in its restore", oom0) < 0)
        _exit(0);
    /* a process that ended after its report (killed from outside) */
    for (int i = 0; i < n; i++) {
        struct pollfd pf = {.fd = gate_wr[i], .events = 0};
        if (gate_wr[i] >= 0 && poll(&pf, 1, 0) == 1 && (pf.revents & POLLERR)) {
            char msg[300], who[64];
            const char *none;
            keeper_who(i, who, sizeof who, &none);
            snprintf(msg, sizeof msg, "error: %s ended before it was released; %s, the image "
                     "is kept\n", who, none);
            tree_gates_say(gate_wr, n, msg);
            _exit(0);
        }
    }
    char msg[1100];
    if (root->commit && commit_counter(root) < 0)
        snprintf(msg, sizeof msg, "error: %s\n", root->err);
    else
        snprintf(msg, sizeof msg, "ok\n");
    for (int i = 0; i < n && !strcmp(msg, "ok\n"); i++) {
        struct rctx *m = g_tree.n ? &g_tree.m[i] : root; /* a single process: root */
        if (apply_versions(m) < 0)
            snprintf(msg, sizeof msg, "error: %s\n", m->err);
    }
    tree_gates_say(gate_wr, n, msg);
    _exit(0);
}

static int start_tree_gate(struct rctx *root)
{
    int n = g_tree.n;
    int *ready_rd = calloc((size_t)n, sizeof(int)), *gate_wr = calloc((size_t)n, sizeof(int));
    g_tree.gate_rd = calloc((size_t)n, sizeof(int));
    g_tree.ready_wr = calloc((size_t)n, sizeof(int));
    if (!ready_rd || !gate_wr || !g_tree.gate_rd || !g_tree.ready_wr) {
        fail_msg(root, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int rp[2], gp[2];
        if (g_tree.e[i].flags & CK_TREE_ZOMBIE) {
            ready_rd[i] = gate_wr[i] = g_tree.ready_wr[i] = g_tree.gate_rd[i] = -1;
            continue;
        }
        if (pipe2(rp, O_CLOEXEC) < 0 || pipe2(gp, O_CLOEXEC) < 0) {
            int e = errno;
            struct rlimit nf = {0, 0};
            getrlimit(RLIMIT_NOFILE, &nf);
            if (e == EMFILE)
                fail_msg(root, "cannot make the tree's gate: %s (coord needs four descriptors "
                         "per process of the tree; its hard descriptor limit, RLIMIT_NOFILE, "
                         "is %llu: raise it)", strerror(e), (unsigned long long)nf.rlim_max);
            else
                fail_msg(root, "cannot make the tree's gate: %s", strerror(e));
            return -1;
        }
        ready_rd[i] = rp[0];
        g_tree.ready_wr[i] = rp[1];
        g_tree.gate_rd[i] = gp[0];
        gate_wr[i] = gp[1];
    }
    if (n <= (int)CK_PROGRESS_SLOTS && progress_page(0))
        for (int i = 0; i < n; i++)
            if (!(g_tree.e[i].flags & CK_TREE_ZOMBIE))
                g_progress[i].total = g_tree.m[i].img.end.npages * CK_PAGE_SIZE;
    int o = fork_orphan();
    if (o == 0) {
        for (int i = 0; i < n; i++) {
            if (g_tree.ready_wr[i] >= 0)
                close(g_tree.ready_wr[i]);
            if (g_tree.gate_rd[i] >= 0)
                close(g_tree.gate_rd[i]);
        }
        tree_gate_keeper(root, ready_rd, gate_wr, n);
    }
    for (int i = 0; i < n; i++) {
        if (ready_rd[i] >= 0)
            close(ready_rd[i]);
        if (gate_wr[i] >= 0)
            close(gate_wr[i]);
    }
    free(ready_rd);
    free(gate_wr);
    if (o < 0) {
        fail_msg(root, "cannot start the tree's gate keeper: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static const struct ck_image *tree_img(int j, void *ctx)
{
    (void)ctx;
    return &g_tree.m[j].img;
}

/* Pipes between processes of the tree (the same pipe inode in the
 * descriptors of two or more of them, which hold both its ends:
 * ck_pipe_tree_joined) are made once, before the forks
 * that split the tree, filled with the bytes one of their readers saved;
 * each process opens its ends from it. Their descriptors lose the
 * "other end outside" marks the shim gave them. */
static int make_tree_pipes(struct rctx *root, int hi)
{
    for (int i = 0; i < g_tree.n; i++) {
        struct ck_image *im = &g_tree.m[i].img;
        for (uint32_t k = 0; k < im->nfds; k++) {
            struct ck_fd *f = &im->fds[k];
            if (f->kind != CK_FD_PIPE || im->fd_paths[k][0] == '/')
                continue;
            if (!ck_pipe_tree_joined(g_tree.n, i, f, tree_img, NULL))
                continue;
            f->flags &= ~(uint32_t)(CK_FDF_EXTERNAL | CK_FDF_STD_REDIRECT);
            if (rest_tree_pipe(NULL, f->dev, f->ino) >= 0)
                continue;
            struct tree_pipe *tp = realloc(g_tree.pipes, (size_t)(g_tree.npipes + 1) *
                                                             sizeof *tp);
            if (!tp) {
                fail_msg(root, "out of memory");
                return -1;
            }
            g_tree.pipes = tp;
            tp = &g_tree.pipes[g_tree.npipes];
            int pp[2];
            char lp[64];
            if (pipe2(pp, O_CLOEXEC) < 0) {
                fail_msg(root, "cannot create a pipe: %s", strerror(errno));
                return -1;
            }
            snprintf(lp, sizeof lp, "/proc/self/fd/%d", pp[0]);
            int s = open(lp, O_RDWR | O_NONBLOCK | O_CLOEXEC);
            close(pp[0]);
            close(pp[1]);
            tp->fd = s < 0 ? -1 : fcntl(s, F_DUPFD_CLOEXEC, hi);
            if (s >= 0)
                close(s);
            if (tp->fd < 0) {
                fail_msg(root, "cannot make a pipe of the tree: %s", strerror(errno));
                return -1;
            }
            tp->dev = f->dev;
            tp->ino = f->ino;
            g_tree.npipes++;
            /* its size: the largest any process saw; its bytes: saved by
             * every reader at the same moment, taken from the first */
            uint64_t size = 0;
            int filled = 0;
            for (int j = 0; j < g_tree.n; j++) {
                struct rctx *mj = &g_tree.m[j];
                for (uint32_t l = 0; l < mj->img.nfds; l++) {
                    const struct ck_fd *o = &mj->img.fds[l];
                    if (o->kind != CK_FD_PIPE || o->dev != f->dev || o->ino != f->ino)
                        continue;
                    if (o->size > size && o->size <= INT_MAX)
                        size = o->size;
                    if (filled)
                        continue;
                    uint8_t *data;
                    size_t len;
                    if (read_fd_bytes(mj, o->fd, &data, &len) < 0) {
                        fail_msg(root, "process %d: %s", g_tree.e[j].vpid, mj->err);
                        return -1;
                    }
                    if (len) {
                        if (size && fcntl(tp->fd, F_GETPIPE_SZ) < (int)size)
                            fcntl(tp->fd, F_SETPIPE_SZ, (int)size);
                        ssize_t w = write(tp->fd, data, len);
                        free(data);
                        if (w != (ssize_t)len) {
                            fail_msg(root, "cannot refill a pipe of the tree with its %zu "
                                     "waiting bytes", len);
                            return -1;
                        }
                        filled = 1;
                    }
                }
            }
            if (size && fcntl(tp->fd, F_GETPIPE_SZ) < (int)size)
                fcntl(tp->fd, F_SETPIPE_SZ, (int)size);
        }
    }
    return 0;
}

/* MAP_SHARED anonymous memory inherited across fork (the same shmem
 * inode in two or more processes) is made once as a memfd, filled with
 * the pages the first of them saved (checked, decoded), and mapped by
 * every restorer from it (the plan's from_fd), so it is shared again. */
static int make_tree_shm(struct rctx *root, int hi)
{
    for (int i = 0; i < g_tree.n; i++) {
        struct rctx *m = &g_tree.m[i];
        for (uint32_t x = 0; x < m->img.nregions; x++) {
            const struct ck_region *r = &m->img.regions[x];
            if (!tree_shm_region(&m->img, r) || tree_shm_fd(&m->img, r) >= 0)
                continue;
            int others = 0;
            uint64_t size = 0;
            for (int j = 0; j < g_tree.n; j++)
                for (uint32_t y = 0; y < g_tree.m[j].img.nregions; y++) {
                    const struct ck_region *q = &g_tree.m[j].img.regions[y];
                    if (!tree_shm_region(&g_tree.m[j].img, q) || q->ino != r->ino ||
                        q->dev != r->dev)
                        continue;
                    others += j != i;
                    if (q->offset + (q->end - q->start) > size)
                        size = q->offset + (q->end - q->start);
                }
            if (!others)
                continue;
            struct tree_shm *ts = realloc(g_tree.shms, (size_t)(g_tree.nshms + 1) * sizeof *ts);
            if (!ts) {
                fail_msg(root, "out of memory");
                return -1;
            }
            g_tree.shms = ts;
            ts = &g_tree.shms[g_tree.nshms];
            int fd = memfd_create("ckshim-tree-shm", MFD_CLOEXEC);
            ts->fd = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, hi);
            if (fd >= 0)
                close(fd);
            if (ts->fd < 0 || ftruncate(ts->fd, (off_t)size) < 0) {
                fail_msg(root, "cannot make the tree's shared memory: %s", strerror(errno));
                return -1;
            }
            ts->ino = r->ino;
            ts->dev = r->dev;
            g_tree.nshms++;
            /* its pages, as process i saved them in its regions of it */
            for (uint32_t y = 0; y < m->img.nregions; y++) {
                const struct ck_region *q = &m->img.regions[y];
                if (q->ino != r->ino || q->dev != r->dev || !tree_shm_region(&m->img, q))
                    continue;
                struct ck_recbuf b = {0};
                for (uint64_t k = 0; k < m->img.npagerecs; k++) {
                    const struct ck_rec *rec = &m->img.pages[k].rec;
                    if (rec->arg < q->start || rec->arg + rec->raw_len > q->end)
                        continue;
                    if (load_rec(m, &m->img.pages[k], 0, &b) < 0 ||
                        pwrite(ts->fd, b.out, rec->raw_len,
                               (off_t)(rec->arg - q->start + q->offset)) !=
                            (ssize_t)rec->raw_len) {
                        ck_recbuf_free(&b);
                        fail_msg(root, "process %d: the saved pages of shared memory at %#llx "
                                 "are damaged or cannot be read", g_tree.e[i].vpid,
                                 (unsigned long long)rec->arg);
                        return -1;
                    }
                }
                ck_recbuf_free(&b);
            }
        }
    }
    return 0;
}

/* Make process p's descriptor x in coord (before the forks), by its
 * kind, at a number from hi up, close-on-exec: what several processes of
 * the tree share. The fd, or -1 (root's err says why). */
static int make_for_tree(struct rctx *root, int p, uint32_t x, int hi)
{
    struct rctx *m = &g_tree.m[p];
    const struct ck_fd *f = &m->img.fds[x];
    int *stash = new_stash(m->img.nfds);
    if (!stash) {
        fail_msg(root, "out of memory");
        return -1;
    }
    struct ck_fdrest r;
    rest_ctx(m, x, &r, stash, hi);
    r.for_tree = 1;
    m->err[0] = 0;
    int fd = ck_fdkind_of(f->kind)->restore(&r);
    for (uint32_t k = 0; k < m->img.nfds; k++)
        if (stash[k] >= 0)
            close(stash[k]);
    free(stash);
    int made = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, hi);
    if (fd >= 0)
        close(fd);
    if (made < 0)
        fail_msg(root, "process %d fd %d: %s", g_tree.e[p].vpid, f->fd,
                 m->err[0] ? m->err : strerror(errno));
    return made;
}

/* SysV segments that processes of the tree attach and that were removed
 * (marked IPC_RMID, gone with the processes): made once, before the forks,
 * and attached by every one of them (each fills it with the same pages,
 * saved at the same moment, and marks it removed again). */
static int make_tree_sysv(struct rctx *root)
{
    for (int i = 0; i < g_tree.n; i++) {
        struct rctx *m = &g_tree.m[i];
        for (uint32_t k = 0; m->shm_new && k < m->img.nshms; k++) {
            int others = 0;
            for (int j = i + 1; j < g_tree.n; j++)
                for (uint32_t y = 0; g_tree.m[j].shm_new && y < g_tree.m[j].img.nshms; y++)
                    others |= g_tree.m[j].shm_new[y] == 1 &&
                              g_tree.m[j].img.shms[y].shmid == m->img.shms[k].shmid;
            if (m->shm_new[k] != 1 || !others)
                continue;
            if (make_one_shm(m, k) < 0) {
                fail_msg(root, "process %d: %s", g_tree.e[i].vpid, m->err);
                return -1;
            }
            for (int j = i; j < g_tree.n; j++) {
                struct rctx *o = &g_tree.m[j];
                for (uint32_t y = 0; o->shm_new && y < o->img.nshms; y++)
                    if (o->shm_new[y] == 1 && o->img.shms[y].shmid == m->img.shms[k].shmid &&
                        (j != i || y == k)) {
                        o->shm_ids[y] = m->shm_ids[k];
                        o->shm_new[y] = 2;
                    }
            }
        }
    }
    return 0;
}

/* Files open for writing that processes of the tree share (tree_file_match)
 * are opened once, by the first process's rules (identity checked), and
 * every process gets that one description: the offset stays shared. */
static int make_tree_files(struct rctx *root, int hi)
{
    for (int i = 0; i < g_tree.n; i++) {
        struct rctx *m = &g_tree.m[i];
        for (uint32_t x = 0; x < m->img.nfds; x++) {
            const struct ck_fd *f = &m->img.fds[x];
            if (f->kind != CK_FD_FILE || f->share_with >= 0 || tree_file_fd(f) >= 0)
                continue;
            int others = 0;
            for (int j = i + 1; j < g_tree.n && !others; j++)
                for (uint32_t y = 0; y < g_tree.m[j].img.nfds; y++)
                    others |= tree_file_match(f, &g_tree.m[j].img.fds[y]);
            if (!others)
                continue;
            struct tree_file *tf = realloc(g_tree.files, (size_t)(g_tree.nfiles + 1) *
                                                             sizeof *tf);
            if (!tf) {
                fail_msg(root, "out of memory");
                return -1;
            }
            g_tree.files = tf;
            int hfd = make_for_tree(root, i, x, hi);
            if (hfd < 0)
                return -1;
            tf = &g_tree.files[g_tree.nfiles++];
            tf->dev = f->dev;
            tf->ino = f->ino;
            tf->pos = f->pos;
            tf->oflags = f->oflags;
            tf->fd = hfd;
        }
    }
    return 0;
}

/* Process groups and sessions of the tree: the distinct groups[] and
 * sessions[] (the ids the tree knows), which process makes each, and the
 * order of the forks (ck_tree_session_plan). g_tree.pg_now/sid_now point
 * into groups/sess for now (restore_tree moves them into the map). */
static int tree_groups_plan(struct rctx *root, int32_t *groups, int *ngroups, int32_t *sess,
                            int *nsess)
{
    int n = g_tree.n;
    int *parent = calloc((size_t)n, sizeof *parent), *pid = calloc((size_t)n, sizeof *pid);
    int *sid = calloc((size_t)n, sizeof *sid);
    char *skip = calloc((size_t)n, 1);
    g_tree.pg_now = calloc((size_t)n, sizeof *g_tree.pg_now);
    g_tree.sid_now = calloc((size_t)n, sizeof *g_tree.sid_now);
    g_tree.makes_pg = calloc((size_t)n, 1);
    g_tree.makes_sid = calloc((size_t)n, 1);
    g_tree.phase = calloc((size_t)n, 1);
    g_tree.helper_sid = calloc((size_t)n, 1);
    g_tree.helper = calloc((size_t)n, 1);
    char *orphan = calloc((size_t)n, 1);
    int ret = -1;
    if (!parent || !pid || !sid || !skip || !g_tree.pg_now || !g_tree.sid_now ||
        !g_tree.makes_pg || !g_tree.makes_sid || !g_tree.phase || !g_tree.helper_sid ||
        !g_tree.helper || !orphan)
        goto out;
    /* The structure from the kernel's numbers at checkpoint (every
     * process agrees on those; a process exec'd after a restore knows
     * only them), the numbers the program knows from the process that
     * makes each group or session (the root first: it has the tree's; a
     * restored maker of a group whose leader exited knows its number). */
    for (int i = 0; i < n; i++) {
        parent[i] = g_tree.e[i].parent;
        pid[i] = g_tree.e[i].real_pid;
        skip[i] = (g_tree.e[i].flags & CK_TREE_ZOMBIE) != 0;
        sid[i] = skip[i] ? 0 : g_tree.e[i].sid;
        orphan[i] = (g_tree.e[i].flags & CK_TREE_ORPHAN) != 0;
    }
    ck_tree_helpers(n, parent, orphan, pid, sid, sid[0], g_tree.helper);
    char err[256];
    if (ck_tree_session_plan(n, parent, pid, sid, skip, g_tree.helper, sid[0], g_tree.phase,
                             err, sizeof err) < 0) {
        fail_msg(root, "the sessions of the tree cannot be made again: %s", err);
        goto out;
    }
    int32_t *rgroups = calloc((size_t)n, sizeof *rgroups), *rsess = calloc((size_t)n, sizeof *rsess);
    if (!rgroups || !rsess) {
        free(rgroups);
        free(rsess);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int32_t pg = g_tree.e[i].pgid, sd = sid[i];
        int k;
        /* a zombie is in a group too (zdtm zombie01: the only member of
         * a group whose leader was reaped), never a session maker */
        if (skip[i] && !pg)
            continue;
        for (k = 0; k < *ngroups && rgroups[k] != pg; k++)
            ;
        if (k == *ngroups) {
            /* the first process of a group makes it: the root finds its
             * own, a living leader makes its own, else the first living
             * member (the leader exited), else a zombie */
            int maker = -1;
            for (int j = 0; j < n && maker < 0; j++)
                if (!skip[j] && g_tree.e[j].pgid == pg)
                    maker = j;
            for (int j = 0; j < n; j++)
                if (!skip[j] && pid[j] == pg && g_tree.e[j].pgid == pg)
                    maker = j;
            if (g_tree.e[0].pgid == pg)
                maker = 0;
            g_tree.makes_pg[maker < 0 ? i : maker] = 1;
            rgroups[k] = pg;
            /* the number the program knows it by: its maker's; a group
             * of zombies only keeps the kernel's number at checkpoint */
            groups[(*ngroups)++] = maker < 0 ? pg : (int32_t)g_tree.m[maker].img.proc.pgid;
        }
        g_tree.pg_now[i] = &groups[k];
        if (skip[i])
            continue;
        for (k = 0; k < *nsess && rsess[k] != sd; k++)
            ;
        if (k == *nsess) {
            /* the root finds its own; any other is made by its leader,
             * or one that led it and is a zombie now (it makes it before
             * it ends, and forks the orphans in it), or else by the helper
             * of the first orphan in it */
            int maker = sd == sid[0] ? 0 : -1, zleader = -1, first = -1;
            for (int j = 1; j < n && maker < 0; j++)
                if (!skip[j] && pid[j] == sd && sid[j] == sd)
                    maker = j;
            for (int j = 1; j < n && maker < 0 && zleader < 0; j++)
                if (skip[j] && pid[j] == sd)
                    zleader = j;
            for (int j = 1; j < n && maker < 0 && zleader < 0 && first < 0; j++)
                if (!skip[j] && g_tree.helper[j] && sid[j] == sd)
                    first = j;
            if (maker < 0 && zleader < 0 && first < 0) {
                fail_msg(root, "process %d of the tree is in session %d, which none of the tree "
                         "leads", g_tree.e[i].vpid, sd);
                free(rgroups);
                free(rsess);
                goto out;
            }
            if (maker >= 0)
                g_tree.makes_sid[maker] = 1;
            else if (zleader >= 0)
                g_tree.makes_sid[zleader] = 1;
            else
                g_tree.helper_sid[first] = 1;
            rsess[k] = sd;
            /* the number the program knows it by (a zombie's or a gone
             * leader's: as its members know it) */
            sess[(*nsess)++] = (int32_t)g_tree.m[maker >= 0 ? maker : i].img.proc.sid;
            if (zleader >= 0)
                g_tree.sid_now[zleader] = &sess[*nsess - 1];
        }
        g_tree.sid_now[i] = &sess[k];
    }
    free(rgroups);
    free(rsess);
    ret = 0;
out:
    free(parent);
    free(pid);
    free(sid);
    free(skip);
    free(orphan);
    return ret;
}

static int add_desc(int proc, int fd, int made, int skip_after)
{
    struct tree_desc *d = realloc(g_tree.descs, (size_t)(g_tree.ndescs + 1) * sizeof *d);
    if (!d)
        return -1;
    g_tree.descs = d;
    d[g_tree.ndescs++] = (struct tree_desc){proc, fd, made, skip_after};
    return 0;
}

/* The index of process p's descriptor fd in its image, or -1 (one of the
 * shim's own: not the program's). */
static int fd_index(const struct ck_image *im, int fd)
{
    for (uint32_t x = 0; x < im->nfds; x++)
        if (im->fds[x].fd == fd)
            return (int)x;
    return -1;
}

static int sock_number(void *arg)
{
    return fcntl(*(int *)arg, F_DUPFD_CLOEXEC, *((int *)arg + 1));
}

static int socks_bytes(struct ck_fdrest *r, int fd, uint8_t **data, size_t *len)
{
    const struct ck_tree_socks *t = &g_tree.socks;
    for (uint32_t k = 0; k < t->im.nfds; k++)
        if (t->im.fds[k].fd == fd) {
            struct rctx *m = &g_tree.m[t->proc[k]];
            int rc = read_fd_bytes(m, t->orig_fd[k], data, len);
            if (rc < 0)
                snprintf(r->err, r->errlen, "process %d: %s", g_tree.e[t->proc[k]].vpid,
                         m->err);
            return rc;
        }
    *data = NULL;
    *len = 0;
    return 0;
}

static void socks_ctx(struct rctx *root, uint32_t k, struct ck_fdrest *r, int *stash, int maxfd)
{
    rest_ctx_of(root, &g_tree.socks.im, k, r, stash, maxfd);
    r->bytes = socks_bytes; /* each from its own process's stream */
    r->tree_pipe = NULL;
    r->tree_file = NULL;
}

/* Sockets processes of the tree share (inherited across fork: a
 * pre-forking server's listener) or that connect two of them (a socket
 * pair split by fork, a TCP connection between them): every socket of
 * every process is made at once, as the sockets of one process are,
 * from the merged set (treeshare.c), at numbers above every process's,
 * before the forks; each process takes its descriptors from there. */
static int make_tree_socks(struct rctx *root, int hi)
{
    int n = g_tree.n;
    struct ck_image *imgs = calloc((size_t)n, sizeof *imgs);
    int *live = calloc((size_t)n, sizeof *live), *pids = calloc((size_t)n, sizeof *pids);
    int arg[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC), hi};
    if (!imgs || !live || !pids || arg[0] < 0) {
        free(imgs);
        free(live);
        free(pids);
        if (arg[0] >= 0)
            close(arg[0]);
        fail_msg(root, "cannot make the sockets of the tree: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        imgs[i] = g_tree.m[i].img;
        live[i] = !(g_tree.e[i].flags & CK_TREE_ZOMBIE);
        pids[i] = g_tree.e[i].vpid;
    }
    char err[768];
    struct ck_tree_socks *t = &g_tree.socks;
    int mr = ck_tree_socks_merge(imgs, live, pids, n, g_tree.shares, g_tree.nshares, sock_number,
                                 arg, t, err, sizeof err);
    free(imgs);
    free(live);
    free(pids);
    close(arg[0]);
    if (mr < 0) {
        fail_msg(root, "sockets between processes of the tree: %s", err);
        return -1;
    }
    if (mr == 0) {
        /* each process makes its own: the numbers reserved go */
        for (uint32_t k = 0; k < t->im.nfds; k++)
            close(t->im.fds[k].fd);
        ck_tree_socks_free(t);
        return 0;
    }
    int maxfd = hi;
    for (uint32_t k = 0; k < t->im.nfds; k++)
        if (t->im.fds[k].fd > maxfd)
            maxfd = t->im.fds[k].fd;
    int *stash = new_stash(t->im.nfds);
    if (!stash) {
        fail_msg(root, "out of memory");
        return -1;
    }
    int ret = -1;
    for (uint32_t k = 0; k < t->im.nfds; k++) {
        const struct ck_fd *f = &t->im.fds[k];
        if (f->flags & CK_FDF_STD_REDIRECT)
            continue; /* the restoring coord's own: each process's */
        const struct ck_fdkind *kind = ck_fdkind_of(f->kind);
        struct ck_fdrest r;
        socks_ctx(root, k, &r, stash, maxfd);
        root->err[0] = 0;
        int fd = kind->restore(&r);
        if (fd < 0) {
            if (!root->err[0])
                fail_msg(root, "process %d fd %d: cannot make the %s again",
                         g_tree.e[t->proc[k]].vpid, t->orig_fd[k], kind->name);
            goto out;
        }
        if (dup3(fd, f->fd, O_CLOEXEC) < 0) {
            fail_msg(root, "cannot place a socket of the tree: %s", strerror(errno));
            close(fd);
            goto out;
        }
        close(fd);
    }
    for (uint32_t k = 0; k < t->im.nfds; k++) {
        const struct ck_fd *f = &t->im.fds[k];
        const struct ck_fdkind *kind = ck_fdkind_of(f->kind);
        struct ck_fdrest r;
        if ((f->flags & CK_FDF_STD_REDIRECT) || !kind->after)
            continue;
        socks_ctx(root, k, &r, stash, maxfd);
        if (kind->after(&r) < 0)
            goto out;
    }
    /* every process's descriptors of these sockets */
    for (int p = 0; p < n; p++) {
        const struct ck_image *im = &g_tree.m[p].img;
        for (uint32_t x = 0; x < im->nfds; x++) {
            const struct ck_fd *f = &im->fds[x];
            if ((f->kind != CK_FD_UNIX && f->kind != CK_FD_INET) || f->share_with >= 0 ||
                (f->flags & CK_FDF_IN_FLIGHT))
                continue;
            int k = ck_tree_socks_find(t, p, f->fd, g_tree.shares, g_tree.nshares);
            if (k < 0 || (t->im.fds[k].flags & CK_FDF_STD_REDIRECT))
                continue;
            if (add_desc(p, f->fd, t->im.fds[k].fd, 1) < 0) {
                fail_msg(root, "out of memory");
                goto out;
            }
        }
    }
    ret = 0;
out:
    for (uint32_t k = 0; k < t->im.nfds; k++)
        if (stash[k] >= 0)
            close(stash[k]);
    free(stash);
    return ret;
}

/* A deleted file or memfd made for the tree (fd): later descriptions of
 * it, in any process, are opened through it (rest_tree_file). */
static int add_inode(const struct ck_fd *f, int fd)
{
    struct tree_inode *t = realloc(g_tree.inodes, (size_t)(g_tree.ninodes + 1) * sizeof *t);
    if (!t)
        return -1;
    g_tree.inodes = t;
    t[g_tree.ninodes++] = (struct tree_inode){f->kind, f->dev, f->ino, fd};
    return 0;
}

/* Does a process after p hold a descriptor of f's kind on f's inode (of
 * a pidfd: one of a process that had exited, too)? */
static int held_after(int p, const struct ck_fd *f)
{
    for (int q = p + 1; q < g_tree.n; q++) {
        const struct ck_image *im = &g_tree.m[q].img;
        for (uint32_t y = 0; y < im->nfds; y++) {
            const struct ck_fd *g = &im->fds[y];
            if (g->kind == f->kind && g->dev == f->dev && g->ino == f->ino &&
                (g->kind != CK_FD_PIDFD || (g->flags & CK_FDF_PIDFD_DEAD)))
                return 1;
        }
    }
    return 0;
}

/* A deleted file or memfd that several processes hold through different
 * open file descriptions (one opened it again through /proc/PID/fd, or
 * closed the one inherited): made once, by the first holder, before the
 * forks; every other description is opened through it (fds/deleted.c). */
static int make_tree_inodes(struct rctx *root, int hi)
{
    for (int p = 0; p < g_tree.n; p++) {
        const struct ck_image *im = &g_tree.m[p].img;
        for (uint32_t x = 0; x < im->nfds; x++) {
            const struct ck_fd *f = &im->fds[x];
            if ((f->kind != CK_FD_DELETED && f->kind != CK_FD_MEMFD) || f->share_with >= 0 ||
                (f->flags & CK_FDF_IN_FLIGHT) || rest_tree_file(NULL, f) >= 0)
                continue;
            if (!held_after(p, f))
                continue;
            int made = make_for_tree(root, p, x, hi);
            if (made < 0 || add_desc(p, f->fd, made, 0) < 0 || add_inode(f, made) < 0) {
                if (made >= 0)
                    fail_msg(root, "out of memory");
                return -1;
            }
        }
    }
    return 0;
}

/* Pidfds in several processes of one process that had exited (zdtm
 * pidfd_diffdead: a parent and its child both held one of the
 * grandchild): one child made to exit at once for all of them, before
 * the forks, each description opened on it while it is a zombie (the
 * same pidfs inode for all, as before), then reaped. */
static int make_tree_dead_pidfds(struct rctx *root, int hi)
{
    for (int p = 0; p < g_tree.n; p++) {
        const struct ck_image *im = &g_tree.m[p].img;
        for (uint32_t x = 0; x < im->nfds; x++) {
            const struct ck_fd *f = &im->fds[x];
            if (f->kind != CK_FD_PIDFD || !(f->flags & CK_FDF_PIDFD_DEAD) ||
                f->share_with >= 0 || tree_desc_of(p, f->fd, NULL) >= 0)
                continue;
            if (!held_after(p, f))
                continue;
            pid_t child = fork();
            if (child == 0)
                _exit(0);
            int bad = child < 0;
            for (int q = p; q < g_tree.n && !bad; q++) {
                const struct ck_image *qi = &g_tree.m[q].img;
                for (uint32_t y = 0; !(g_tree.e[q].flags & CK_TREE_ZOMBIE) && y < qi->nfds &&
                                     !bad; y++) {
                    const struct ck_fd *g = &qi->fds[y];
                    if (g->kind != CK_FD_PIDFD || !(g->flags & CK_FDF_PIDFD_DEAD) ||
                        g->share_with >= 0 || g->dev != f->dev || g->ino != f->ino)
                        continue;
                    int pfd = (int)syscall(SYS_pidfd_open, child, g->oflags & O_NONBLOCK);
                    int made = pfd < 0 ? -1 : fcntl(pfd, F_DUPFD_CLOEXEC, hi);
                    if (pfd >= 0)
                        close(pfd);
                    bad = made < 0 || add_desc(q, g->fd, made, 0) < 0;
                }
            }
            if (child > 0)
                waitpid(child, NULL, 0);
            if (bad) {
                fail_msg(root, "process %d fd %d: cannot make the pidfd of a process that has "
                         "exited for the processes that hold it: %s", g_tree.e[p].vpid, f->fd,
                         strerror(errno));
                return -1;
            }
        }
    }
    return 0;
}

/* Kinds whose open file description processes may share and that are
 * made once for all of them (make_tree_descs). */
static int tree_shareable(uint32_t kind)
{
    switch (kind) {
    case CK_FD_FILE: case CK_FD_DIR: case CK_FD_CHR: case CK_FD_DELETED: case CK_FD_MEMFD:
    case CK_FD_EVENTFD: case CK_FD_EPOLL: case CK_FD_TIMERFD: case CK_FD_SIGNALFD:
    case CK_FD_INOTIFY: case CK_FD_SYMLINK: case CK_FD_PIPE:
        return 1;
    default:
        return 0;
    }
}

/* Descriptors that are one open file description in several processes
 * (the share table): made once, by the first process that holds it (its
 * identity checks, its saved contents), and given to every holder: one
 * offset, one set of flags, one eventfd counter, one epoll (whose
 * watches the first holder adds again, with its descriptors). */
static int make_tree_descs(struct rctx *root, int hi)
{
    for (uint64_t a = 0; a < g_tree.nshares; a++) {
        const struct ck_tree_share *sa = &g_tree.shares[a];
        int first = 1;
        for (uint64_t b = 0; b < a && first; b++)
            first = g_tree.shares[b].group != sa->group;
        if (!first)
            continue;
        /* the holder of the lowest index makes it */
        int made = -1, maker = -1;
        for (int p = 0; p < g_tree.n && maker < 0; p++) {
            struct rctx *m = &g_tree.m[p];
            for (uint64_t b = a; b < g_tree.nshares && maker < 0; b++) {
                const struct ck_tree_share *sb = &g_tree.shares[b];
                int x = sb->group == sa->group && sb->proc == p ? fd_index(&m->img, sb->fd) : -1;
                if (x >= 0 && m->img.fds[x].share_with >= 0)
                    x = fd_index(&m->img, m->img.fds[x].share_with);
                if (x < 0)
                    continue;
                const struct ck_fd *f = &m->img.fds[x];
                if (!tree_shareable(f->kind) || (f->flags & (CK_FDF_STD_REDIRECT |
                                                             CK_FDF_IN_FLIGHT)))
                    break;
                if ((made = make_for_tree(root, p, (uint32_t)x, hi)) < 0 ||
                    ((f->kind == CK_FD_DELETED || f->kind == CK_FD_MEMFD) &&
                     add_inode(f, made) < 0))
                    return -1;
                maker = p;
            }
        }
        if (maker < 0)
            continue; /* not a kind made once for all (sockets: make_tree_socks) */
        for (uint64_t b = a; b < g_tree.nshares; b++) {
            const struct ck_tree_share *sb = &g_tree.shares[b];
            if (sb->group != sa->group)
                continue;
            const struct ck_image *im = &g_tree.m[sb->proc].img;
            int x = fd_index(im, sb->fd);
            if (x < 0 || im->fds[x].share_with >= 0 ||
                (im->fds[x].flags & (CK_FDF_STD_REDIRECT | CK_FDF_IN_FLIGHT)) ||
                tree_desc_of(sb->proc, sb->fd, NULL) >= 0)
                continue;
            if (add_desc(sb->proc, sb->fd, made, sb->proc != maker) < 0) {
                fail_msg(root, "out of memory");
                return -1;
            }
        }
    }
    return 0;
}

/* Whether descriptor y of im is a slave of pseudo-terminal ptn that the
 * process did not open the master of (a terminal by path). */
static int pty_slave_of(const struct ck_image *im, uint32_t y, uint64_t ptn)
{
    char want[32];
    snprintf(want, sizeof want, "/dev/pts/%llu", (unsigned long long)ptn);
    return im->fds[y].kind == CK_FD_TTY && !strcmp(im->fd_paths[y], want);
}

/* Pseudo-terminals whose master one process of the tree holds and whose
 * slave other processes hold, or are the controlling terminal of a
 * session of (a terminal multiplexer, pty.fork, expect): the pair is made
 * once, before the forks, by the master's holder (its modes, its window
 * size, the bytes waiting in it), and each slave descriptor of the
 * others is opened from it (TIOCGPTPEER: never someone else's terminal).
 * The session's leader takes it as its controlling terminal
 * (tree_become). */
static int make_tree_ptys(struct rctx *root, int hi)
{
    int n = g_tree.n;
    for (int p = 0; p < n; p++) {
        const struct ck_image *im = &g_tree.m[p].img;
        for (uint32_t x = 0; !(g_tree.e[p].flags & CK_TREE_ZOMBIE) && x < im->nfds; x++) {
            const struct ck_fd *f = &im->fds[x];
            if (f->kind != CK_FD_PTY || !(f->flags & CK_FDF_PTY_MASTER) || f->share_with >= 0 ||
                tree_desc_of(p, f->fd, NULL) >= 0 || tree_pty_master(f->aux) >= 0)
                continue;
            int used = 0;
            for (int q = 0; q < n && !used; q++) {
                const struct ck_image *qi = &g_tree.m[q].img;
                if (q == p || (g_tree.e[q].flags & CK_TREE_ZOMBIE))
                    continue;
                used = (uint64_t)g_tree.e[q].ctty == f->aux + 1;
                for (uint32_t y = 0; y < qi->nfds && !used; y++)
                    used = pty_slave_of(qi, y, f->aux) ||
                           (qi->fds[y].kind == CK_FD_PTY && qi->fds[y].aux == f->aux);
            }
            if (!used)
                continue; /* its holder's alone: made in it */
            int made = make_for_tree(root, p, x, hi);
            if (made < 0)
                return -1;
            struct tree_pty *tp = realloc(g_tree.ptys, (size_t)(g_tree.nptys + 1) * sizeof *tp);
            if (!tp || add_desc(p, f->fd, made, 0) < 0) {
                if (tp)
                    g_tree.ptys = tp;
                close(made);
                fail_msg(root, "out of memory");
                return -1;
            }
            g_tree.ptys = tp;
            g_tree.ptys[g_tree.nptys++] = (struct tree_pty){f->aux, made};
            for (int q = 0; q < n; q++) {
                const struct ck_image *qi = &g_tree.m[q].img;
                for (uint32_t y = 0; q != p && !(g_tree.e[q].flags & CK_TREE_ZOMBIE) &&
                                     y < qi->nfds; y++) {
                    const struct ck_fd *g = &qi->fds[y];
                    if (!pty_slave_of(qi, y, f->aux) || tree_desc_of(q, g->fd, NULL) >= 0 ||
                        (g->share_with >= 0 && !(g->flags & CK_FDF_STD_REDIRECT)))
                        continue;
                    /* descriptors of one description share one slave */
                    int with = g->share_with >= 0 ? tree_desc_of(q, g->share_with, NULL) : -1;
                    int sl = with >= 0 ? fcntl(with, F_DUPFD_CLOEXEC, hi)
                                       : ioctl(made, TIOCGPTPEER, (int)(g->oflags & (O_ACCMODE |
                                                                                     O_NONBLOCK)) |
                                                                      O_NOCTTY | O_CLOEXEC);
                    int up = sl >= 0 && sl < hi ? fcntl(sl, F_DUPFD_CLOEXEC, hi) : sl;
                    if (up != sl && sl >= 0)
                        close(sl);
                    if (up < 0 || add_desc(q, g->fd, up, 1) < 0) {
                        fail_msg(root, "process %d fd %d: cannot open the new pseudo-terminal's "
                                 "slave: %s", g_tree.e[q].vpid, g->fd, strerror(errno));
                        if (up >= 0)
                            close(up);
                        return -1;
                    }
                }
            }
        }
    }
    return 0;
}

/* Read and check every process of a tree image; make what they share.
 * root is cmd_restore's context (options, the image fd); on failure its
 * err says why. */
/* How process j is made again (docs/DESIGN.md, "Tree members forked by
 * the restorer"): by its parent's restorer, with the table a preparer
 * made, once the parent's memory is in place ('L': they share what they
 * map alike, copy-on-write) or before ('F': CKSHIM_TREE_FORK=fresh, or
 * nothing mapped alike); or 0, forked by its parent's coord process
 * (CKSHIM_TREE_FORK=coord, and where something of j's making needs its
 * own process before its restorer runs), with why set to what keeps it
 * so. */
/* Bytes of private memory processes i and j (a parent and its child)
 * have mapped alike: the same mapping (the same addresses; both anonymous
 * or the same file), or where private anonymous memory of both overlaps.
 * What a child forked after its parent's fill keeps (restorer.c,
 * reconcile, which decides region by region). */
static uint64_t tree_cow_bytes(int i, int j)
{
    const struct ck_image *a = &g_tree.m[i].img, *b = &g_tree.m[j].img;
    const uint32_t apart = CK_REG_SHARED | CK_REG_SPECIAL | CK_REG_SYSV | CK_REG_HUGETLB |
                           CK_REG_DROPPABLE;
    const uint32_t not_plain = apart | CK_REG_FILE | CK_REG_ALLPAGES | CK_REG_STACK;
    uint64_t bytes = 0;
    for (uint32_t x = 0, y = 0; x < a->nregions && y < b->nregions;) {
        const struct ck_region *ra = &a->regions[x], *rb = &b->regions[y];
        uint64_t s0 = ra->start > rb->start ? ra->start : rb->start;
        uint64_t e0 = ra->end < rb->end ? ra->end : rb->end;
        if (ra->start == rb->start && ra->end == rb->end && !((ra->flags | rb->flags) & apart) &&
            ((ra->flags ^ rb->flags) & (CK_REG_ANON | CK_REG_FILE)) == 0 &&
            (!(ra->flags & CK_REG_FILE) || (ra->dev == rb->dev && ra->ino == rb->ino)))
            bytes += ra->end - ra->start;
        else if (s0 < e0 && (ra->flags & rb->flags & CK_REG_ANON) &&
                 !((ra->flags | rb->flags) & not_plain))
            bytes += e0 - s0;
        if (ra->end <= rb->end)
            x++;
        else
            y++;
    }
    return bytes;
}

static char tree_fork_kind(int j, const char **why)
{
    const struct ck_tree_entry *e = &g_tree.e[j];
    const char *mode = getenv("CKSHIM_TREE_FORK");
    *why = NULL;
    if (!mode || !*mode)
        mode = "restorer";
    if (strcmp(mode, "restorer") != 0 && strcmp(mode, "fresh") != 0) {
        *why = !strcmp(mode, "coord") ? "CKSHIM_TREE_FORK=coord"
                                      : "CKSHIM_TREE_FORK is none of restorer, fresh, coord";
        return 0;
    }
    if (j == 0)
        *why = "the root";
    else if ((e->flags & (CK_TREE_ZOMBIE | CK_TREE_ORPHAN)) || g_tree.helper[j])
        *why = "a zombie, an orphan, or made by a helper";
    else if (g_tree.makes_sid[j] || g_tree.makes_pg[j] || e->pgid != g_tree.e[e->parent].pgid ||
             e->sid != g_tree.e[e->parent].sid)
        *why = "its process group or session is not its parent's";
    /* its children are made by its restorer too, or it is made by coord
     * (decided children first: restore_tree asks from the last) */
    for (int k = 1; k < g_tree.n && !*why; k++)
        if (g_tree.e[k].parent == j && (k < j || !g_tree.late[k]))
            *why = "it has a child that coord must make";
    const struct ck_image *im = &g_tree.m[j].img;
    /* One sharing its parent's table (CLONE_FILES) finds its descriptors
     * there: what its parent's maker made, not its preparer */
    int shares = (e->flags & CK_TREE_FILES) != 0;
    /* (flock and OFD locks too: its preparer would take them, and
     * /proc/locks would name the preparer's pid: zdtm file_locks02-04) */
    if (shares)
        ;
    else if (im->nlocks && !*why)
        *why = "it holds file locks (taken by its own process at restore)";
    for (uint32_t k = 0; k < im->nfds && !*why && !shares; k++)
        if (im->fds[k].kind == CK_FD_PIDFD)
            *why = "it holds a pidfd";
        else if (im->fd_paths && im->fd_paths[k] && !strncmp(im->fd_paths[k], "/proc/", 6))
            *why = "it holds a descriptor of a /proc file (opened by its own process at restore)";
        else if (im->fds[k].kind == CK_FD_UNIX && tree_desc_of(j, im->fds[k].fd, NULL) < 0)
            *why = "it holds a unix socket of its own (its credentials name the process that "
                   "makes it)";
    if (!*why && !strncmp(im->proc.cwd, "/proc/", 6))
        *why = "its working directory is in /proc";
    if (*why)
        return 0;
    /* after its parent's fill when they map memory alike (the same
     * program, forked without an exec) */
    if (!strcmp(mode, "restorer") &&
        !strcmp(im->proc.exe, g_tree.m[e->parent].img.proc.exe) &&
        tree_cow_bytes(e->parent, j) > 0)
        return 'L';
    return 'F';
}

static int restore_tree(struct rctx *root, const struct ck_tree_hdr *h,
                        struct ck_tree_entry *e, const struct ck_tree_sharetab *st,
                        const char *counter_url, int force)
{
    int n = (int)h->nprocs;
    g_tree.shares = st->s;
    g_tree.nshares = st->n;
    g_tree.shares_known = !!(st->flags & CK_TREE_HDR_SHARES);
    g_tree.n = n;
    g_tree.e = e;
    g_tree.map_fd = -1;
    g_tree.m = calloc((size_t)n, sizeof *g_tree.m);
    g_tree.macs = calloc((size_t)n, CK_DIGEST_BYTES);
    g_tree.late = calloc((size_t)n, 1);
    g_tree.prep_near = malloc((size_t)n * sizeof *g_tree.prep_near);
    for (int i = 0; g_tree.prep_near && i < n; i++)
        g_tree.prep_near[i] = -1;
    if (!g_tree.m || !g_tree.macs || !g_tree.late || !g_tree.prep_near) {
        fail_msg(root, "out of memory");
        return -1;
    }
    int no_verify = getenv("CKSHIM_NO_VERIFY") != NULL;
    char host[sizeof root->img.hdr.hostname + 1] = "";
    gethostname(host, sizeof host - 1);
    int hi = 64;
    for (int i = 0; i < n; i++) {
        struct rctx *m = &g_tree.m[i];
        *m = *root;
        m->tree_idx = i;
        if (e[i].flags & CK_TREE_ZOMBIE) {
            /* nothing to read: tree_become makes it exit again */
            memset(&m->img, 0, sizeof m->img);
            m->img_fd = -1;
            continue;
        }
        m->status_fd = -1;
        if (i > 0)
            m->script[0] = 0; /* the action script runs for the tree, once */
        m->pages_fd = -1;
        char lp[64], err[512];
        /* its own open file description: its own offset */
        snprintf(lp, sizeof lp, "/proc/self/fd/%d", root->img_fd);
        /* with a key: the sealed copy, whose pages decrypt_pages decrypts */
        m->img_fd = open(lp, (root->have_key ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (m->img_fd < 0 || lseek(m->img_fd, (off_t)e[i].offset, SEEK_SET) < 0) {
            fail_msg(root, "cannot open the image again: %s", strerror(errno));
            return -1;
        }
        if (ck_image_read(m->img_fd, &m->img, no_verify ? CK_READ_VERIFY_PAGES : 0, err,
                          sizeof err) < 0) {
            fail_msg(root, "process %d of the tree: %s", e[i].vpid, err);
            return -1;
        }
        if (ck_tree_check_stream(h, e, (uint32_t)i, &m->img.hdr, m->img.file_size, err,
                                 sizeof err) < 0) {
            fail_msg(root, "%s", err);
            return -1;
        }
        /* Authenticity before anything in the stream is believed, as for
         * one process (cmd_restore); the tree header's MAC was checked. */
        if (root->have_key) {
            if (ck_image_authenticate_at(m->img_fd, e[i].offset, &root->key,
                                         g_tree.macs + (size_t)i * CK_DIGEST_BYTES, err,
                                         sizeof err) < 0) {
                fail_msg(root, "process %d of the tree: %s", e[i].vpid, err);
                return -1;
            }
            m->encrypted = (m->img.hdr.flags & CK_HF_ENCRYPTED) != 0;
            if (m->encrypted && decrypt_pages(m) < 0) {
                fail_msg(root, "process %d of the tree: %s", e[i].vpid, m->err);
                return -1;
            }
        } else if (m->img.hdr.flags & (CK_HF_MAC | CK_HF_ENCRYPTED)) {
            fail_msg(root, "the image is %s; give its key with --key FILE (or CKSHIM_KEY_FILE)",
                     (m->img.hdr.flags & CK_HF_ENCRYPTED) ? "encrypted" : "authenticated");
            return -1;
        }
        m->same_host = !strncmp(host, m->img.hdr.hostname, sizeof m->img.hdr.hostname);
        m->rseen = calloc(m->img.nregions + 1, sizeof *m->rseen);
        m->fseen = calloc(m->img.nfds + 1, sizeof *m->fseen);
        m->remake = calloc(m->img.nregions + 1, 1);
        if (!m->rseen || !m->fseen || !m->remake) {
            fail_msg(root, "out of memory");
            return -1;
        }
        for (uint32_t k = 0; k < m->img.nfds; k++)
            if (m->img.fds[k].fd + 64 > hi)
                hi = m->img.fds[k].fd + 64;
    }
    /* the tree header (parents, zombies, which processes) and the streams
     * together, before anything of it is used */
    char merr[512];
    if ((root->have_key && ck_tree_check_mac(h, e, st, g_tree.macs, &root->key, merr,
                                             sizeof merr) < 0) ||
        ck_tree_check_shares(h, st, merr, sizeof merr) < 0) {
        fail_msg(root, "%s", merr);
        return -1;
    }
    if (root->have_key && seal_image(root) < 0)
        return -1;
    /* RLIMIT_NPROC counts every task of the user: every thread of every
     * process of the tree, each zombie until it is waited for, and the
     * tree's gate keeper; checked once for all before anything starts
     * (one process at a time would pass a tree that does not fit). */
    long tasks = 1;
    for (int i = 0; i < n; i++)
        tasks += (e[i].flags & CK_TREE_ZOMBIE) ? 1 : (long)g_tree.m[i].img.nthreads;
    char what[96];
    snprintf(what, sizeof what, "tree of %d processes needs", n);
    if (nproc_fits(root, tasks, what) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        struct rctx *m = &g_tree.m[i];
        if (e[i].flags & CK_TREE_ZOMBIE)
            continue;
        if (check_image(m) < 0 || plan_versions(m) < 0 ||
            (i == 0 && check_counter(m, counter_url, force) < 0) || remake_saved_files(m) < 0) {
            fail_msg(root, "process %d of the tree: %s", e[i].vpid, m->err);
            return -1;
        }
    }
    /* with the share table, the files processes share are known exactly;
     * an image without it has them guessed (make_tree_files) */
    if (make_tree_pipes(root, hi) < 0 || make_tree_shm(root, hi) < 0 ||
        make_tree_socks(root, hi) < 0 || make_tree_descs(root, hi) < 0 ||
        make_tree_ptys(root, hi) < 0 ||
        make_tree_inodes(root, hi) < 0 || make_tree_dead_pidfds(root, hi) < 0 ||
        make_tree_sysv(root) < 0 ||
        (!g_tree.shares_known && make_tree_files(root, hi) < 0))
        return -1;
    /* The map: {vpid, pid now} of every process, {0, 0}, {group, id now}
     * of every process group, {0, 0}, the same for sessions, {0, 0},
     * {vpid, signal} of every process stopped at the checkpoint. */
    int ngroups = 0, nsess = 0;
    int32_t *groups = calloc((size_t)n, sizeof *groups), *sess = calloc((size_t)n, sizeof *sess);
    int nstopped = 0;
    if (!groups || !sess || tree_groups_plan(root, groups, &ngroups, sess, &nsess) < 0) {
        free(groups);
        free(sess);
        if (!root->err[0])
            fail_msg(root, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++)
        nstopped += (e[i].flags & CK_TREE_STOPPED) != 0;
    /* who forks whom; a preparer and its short-lived parent per process a
     * restorer forks */
    g_tree.hi = hi;
    long nlate = 0;
    const char **whys = calloc((size_t)n, sizeof *whys);
    for (int i = n - 1; whys && i >= 0; i--) {
        g_tree.late[i] = tree_fork_kind(i, &whys[i]);
        nlate += g_tree.late[i] != 0;
    }
    for (int i = 0; whys && i < n; i++) {
        const char *why = whys[i];
        if (!getenv("CKSHIM_TREE_FORK"))
            continue;
        if (g_tree.late[i] == 'L')
            dprintf(2, "coord: restore: process %d: forked by its parent's restorer once "
                    "its memory is in place (%llu KiB mapped alike)\n", e[i].vpid,
                    (unsigned long long)tree_cow_bytes(e[i].parent, i) >> 10);
        else
            dprintf(2, "coord: restore: process %d: %s%s\n", e[i].vpid,
                    g_tree.late[i] ? "forked by its parent's restorer" : "forked by coord: ",
                    g_tree.late[i] ? "" : why);
    }
    free(whys);
    /* a socket to each preparer stays open in its parent's coord process
     * (above every program descriptor) until that one execs: room for
     * them, or every process is made by coord */
    struct rlimit nf;
    rlim_t want = (rlim_t)hi + 64 + 2 * (rlim_t)nlate +
                  (rlim_t)(g_tree.npipes + g_tree.nshms + g_tree.nfiles + g_tree.ndescs);
    /* and the gate's two pipes per process (start_tree_gate), with room */
    rlim_t want_all = want + 6 * (rlim_t)n;
    if (getrlimit(RLIMIT_NOFILE, &nf) == 0 && nf.rlim_cur != RLIM_INFINITY &&
        nf.rlim_cur < want_all) {
        nf.rlim_cur = nf.rlim_max != RLIM_INFINITY && nf.rlim_max < want_all ? nf.rlim_max
                                                                             : want_all;
        setrlimit(RLIMIT_NOFILE, &nf);
        if (nlate && nf.rlim_cur < want) {
            memset(g_tree.late, 0, (size_t)n);
            nlate = 0;
            if (getenv("CKSHIM_TREE_FORK"))
                dprintf(2, "coord: restore: every process forked by coord: the hard descriptor "
                        "limit leaves no room for the preparers' sockets\n");
        }
    }
    /* a process sharing its parent's descriptor table can only be made
     * by its parent's restorer (clone with CLONE_FILES) */
    for (int i = 1; i < n; i++)
        if ((e[i].flags & CK_TREE_FILES) && !g_tree.late[i]) {
            const char *why = NULL;
            tree_fork_kind(i, &why);
            fail_msg(root, "process %d shares its parent's descriptor table (clone with "
                     "CLONE_FILES), which only its parent's restorer can make again, but it "
                     "cannot be made so (%s)", e[i].vpid,
                     why ? why : "no room for the preparers' sockets under the hard "
                                 "descriptor limit");
            free(groups);
            free(sess);
            return -1;
        }
    if (nlate && nproc_fits(root, tasks + 2 * nlate, what) < 0) {
        free(groups);
        free(sess);
        return -1;
    }
    g_tree.map_fd = memfd_create("ckshim-tree", MFD_CLOEXEC);
    size_t maplen = (size_t)(n + 1 + ngroups + 1 + nsess + 1 + nstopped) * 2 * sizeof(int32_t);
    int mfd = g_tree.map_fd < 0 ? -1 : fcntl(g_tree.map_fd, F_DUPFD_CLOEXEC, hi);
    if (g_tree.map_fd >= 0)
        close(g_tree.map_fd);
    g_tree.map_fd = mfd;
    if (mfd < 0 || ftruncate(mfd, (off_t)maplen) < 0 ||
        (g_tree.map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0)) ==
            MAP_FAILED) {
        fail_msg(root, "cannot make the tree's pid map: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++)
        g_tree.map[2 * i] = e[i].vpid;
    int32_t *at = g_tree.map + 2 * (n + 1);
    for (int k = 0; k < ngroups; k++, at += 2) {
        at[0] = groups[k];
        for (int i = 0; i < n; i++)
            if (g_tree.pg_now[i] == &groups[k])
                g_tree.pg_now[i] = &at[1];
    }
    at += 2;
    for (int k = 0; k < nsess; k++, at += 2) {
        at[0] = sess[k];
        for (int i = 0; i < n; i++)
            if (g_tree.sid_now[i] == &sess[k])
                g_tree.sid_now[i] = &at[1];
    }
    at += 2;
    for (int i = 0; i < n; i++)
        if (e[i].flags & CK_TREE_STOPPED) {
            at[0] = e[i].vpid;
            at[1] = (int32_t)((e[i].flags >> 8) & 0xff);
            at += 2;
        }
    free(groups);
    free(sess);
    if (start_tree_gate(&g_tree.m[0]) < 0) {
        fail_msg(root, "%s", g_tree.m[0].err);
        return -1;
    }
    return 0;
}

/* The --detach parent, which only waits for the root's word, lets go of
 * what the tree shares: a pipe end or a ready pipe it kept open would
 * keep a reader from seeing end of file, or the gate keeper from seeing a
 * restorer die. */
static void tree_close_all(void)
{
    for (int i = 0; g_tree.n && i < g_tree.n; i++) {
        if (g_tree.ready_wr[i] >= 0)
            close(g_tree.ready_wr[i]);
        if (g_tree.gate_rd[i] >= 0)
            close(g_tree.gate_rd[i]);
    }
    for (int k = 0; k < g_tree.npipes; k++)
        close(g_tree.pipes[k].fd);
    for (int k = 0; k < g_tree.nshms; k++)
        close(g_tree.shms[k].fd);
    for (int k = 0; k < g_tree.nfiles; k++)
        close(g_tree.files[k].fd);
    for (int k = 0; k < g_tree.ndescs; k++)
        close(g_tree.descs[k].made); /* a description held by several: EBADF after the first */
    if (g_tree.map_fd >= 0)
        close(g_tree.map_fd);
}

/* Become process i of the tree: first fork its children (each becomes
 * its own process of the tree, and so on down), so that the restored
 * processes are parents and children of each other again; the pids of
 * now go into the map the shims read once the gate opens. Returns only
 * on failure (err of process i set). */
static void tree_become(int i, const char *restorer);
static int tree_make_orphans(int i, const char *restorer, int helper);

/* In a child just forked: become process j of the tree, or say why not
 * (file: the image) and end. */
__attribute__((noreturn)) static void tree_child(int j, const char *file, const char *restorer)
{
    tree_become(j, restorer);
    dprintf(g_tree.m[j].saved_std[2] > 0 ? g_tree.m[j].saved_std[2] : 2,
            "coord: restore %s: process %d of the tree: %s\n", file, g_tree.e[j].vpid,
            g_tree.m[j].err);
    _exit(1);
}

/* In the child that ends as zombie j: into its process group first
 * (made here when no living process of the tree is in it), so that
 * getpgid() of the zombie names the group it was in. */
static void tree_publish(int32_t *slot, pid_t now);

static void tree_zombie_group(int j)
{
    if (g_tree.makes_pg[j]) {
        if (setpgid(0, 0) == 0)
            tree_publish(g_tree.pg_now[j], getpid());
        return;
    }
    int32_t pg = 0;
    for (int waited = 0; g_tree.pg_now[j] && waited < 20000 &&
                         !(pg = __atomic_load_n(g_tree.pg_now[j], __ATOMIC_SEQ_CST));
         waited++)
        usleep(500);
    if (pg > 0 && getpgrp() != pg)
        setpgid(0, pg);
}

/* Start the preparer of process j, which process i's restorer forks
 * (tree_fork_kind): a helper, never the program's child, that makes j's
 * descriptors, working directory and plan as tree_become would before an
 * exec, and hands them over (hand_over) through a socket whose other end
 * i's restorer gives the child. 0, or -1 with i's err set. */
static int start_preparer(int i, int j, const char *restorer)
{
    struct rctx *m = &g_tree.m[i];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        fail_msg(m, "cannot make the socket to the preparer of process %d: %s",
                 g_tree.e[j].vpid, strerror(errno));
        return -1;
    }
    int near = fcntl(sv[0], F_DUPFD_CLOEXEC, g_tree.hi);
    int far = fcntl(sv[1], F_DUPFD_CLOEXEC, g_tree.hi);
    close(sv[0]);
    close(sv[1]);
    int o = near < 0 || far < 0 ? -1 : fork_orphan();
    if (o == 0) {
        close(near);
        g_prep_idx = j;
        g_prep_sock = far;
        tree_child(j, m->file, restorer);
    }
    if (far >= 0)
        close(far);
    if (o < 0) {
        fail_msg(m, "cannot start the preparer of process %d of the tree: %s",
                 g_tree.e[j].vpid, strerror(errno));
        if (near >= 0)
            close(near);
        return -1;
    }
    g_tree.prep_near[j] = near;
    return 0;
}

/* Fork the children of process i that go in this round (1: before it
 * calls setsid, in the session it came from; 2: after), each becoming its
 * process of the tree. 0, or -1 with its err set. */
static int tree_fork_round(int i, int round, const char *restorer)
{
    struct rctx *m = &g_tree.m[i];
    for (int j = i + 1; j < g_tree.n; j++) {
        if (g_tree.e[j].parent != i || g_tree.phase[j] != round ||
            (g_tree.e[j].flags & CK_TREE_ORPHAN) || g_tree.helper[j] == 2)
            continue;
        fflush(NULL);
        if (g_tree.e[j].flags & CK_TREE_ZOMBIE) {
            /* a child that had exited and was not yet waited for: one that
             * ends again the same way (the exit code or the signal, never
             * a core file), for the program to wait for */
            pid_t z = tree_fork(g_tree.e[j].vpid);
            if (z == 0) {
                if (g_tree.makes_sid[j]) {
                    /* it led a session that orphans of the tree are in:
                     * it makes it, forks them, and ends (they are
                     * adopted, as they were) */
                    if (setsid() < 0) {
                        dprintf(2, "coord: restore %s: zombie %d of the tree: setsid: %s\n",
                                m->file, g_tree.e[j].vpid, strerror(errno));
                        _exit(127);
                    }
                    tree_publish(g_tree.sid_now[j], getpid());
                    tree_publish(g_tree.pg_now[j], getpid());
                    if (tree_make_orphans(j, restorer, 0) < 0)
                        _exit(127);
                } else {
                    tree_zombie_group(j);
                }
                int st = (int)g_tree.e[j].length;
                int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
                /* only a signal whose default action ends the process (an
                 * image's stop or ignored signal would leave a stopped or
                 * living child) */
                if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU ||
                    sig == SIGCONT || sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH ||
                    sig > 64 || sig < 0)
                    _exit(1);
                if (WIFSIGNALED(st)) {
                    struct rlimit no = {0, 0};
                    setrlimit(RLIMIT_CORE, &no);
                    signal(WTERMSIG(st), SIG_DFL);
                    sigset_t one;
                    sigemptyset(&one);
                    sigaddset(&one, WTERMSIG(st));
                    sigprocmask(SIG_UNBLOCK, &one, NULL);
                    kill(getpid(), WTERMSIG(st));
                }
                _exit(WEXITSTATUS(st));
            }
            if (z < 0) {
                fail_msg(m, "cannot fork process %d of the tree: %s", g_tree.e[j].vpid,
                         strerror(errno));
                return -1;
            }
            g_tree.map[2 * j + 1] = (int32_t)z;
            continue;
        }
        if (g_tree.late[j]) {
            if (start_preparer(i, j, restorer) < 0)
                return -1;
            continue;
        }
        pid_t p = tree_fork(g_tree.e[j].vpid);
        if (p < 0) {
            fail_msg(m, "cannot fork process %d of the tree: %s", g_tree.e[j].vpid,
                     strerror(errno));
            return -1;
        }
        if (p == 0) {
            tree_child(j, m->file, restorer);
        }
        g_tree.map[2 * j + 1] = (int32_t)p;
    }
    return 0;
}

/* Whether process j is made by process i in tree_make_orphans: an orphan
 * of i's, or one made in a session whose leader is gone with
 * clone(CLONE_PARENT) as i's child (helper 2, ck_tree_session_plan): by
 * a helper of i's (helper set), or by i as the zombie that led that
 * session (helper 0: i's parent is j's). */
static int tree_made_by(int j, int i, int helper)
{
    if (g_tree.e[j].flags & CK_TREE_ZOMBIE)
        return 0;
    if (g_tree.e[j].flags & CK_TREE_ORPHAN)
        return g_tree.e[j].parent == i;
    if (g_tree.helper[j] != 2)
        return 0;
    int z = -1;
    for (int k = 1; k < g_tree.n && z < 0; k++)
        if ((g_tree.e[k].flags & CK_TREE_ZOMBIE) && g_tree.e[k].real_pid == g_tree.e[j].sid)
            z = k;
    return helper ? z < 0 && g_tree.e[j].parent == i : z == i;
}

/* Make the processes process i makes again once it is in its session and
 * group (tree_made_by): each orphan forked by a helper (when helper is
 * set) that makes its session first if it must (helper_sid), and ends at
 * once, so that the orphan is adopted by init or a subreaper as it was;
 * i reaps the helper. The processes of a session whose leader is gone are
 * made by that session's one helper, after its setsid: its orphans
 * forked, i's children made with clone(CLONE_PARENT). A zombie to be
 * (helper 0) does it all itself and ends. 0, or -1 with i's err set. */
static int tree_make_orphans(int i, const char *restorer, int helper)
{
    struct rctx *m = &g_tree.m[i];
    /* (from 1: a zombie's siblings it makes may come before it, listed
     * through another thread of their parent) */
    for (int j = 1; j < g_tree.n; j++) {
        if (!tree_made_by(j, i, helper))
            continue;
        /* the processes of a session a helper makes are made by that one
         * helper, after its setsid (the first one's) */
        int mate = 0;
        for (int k = 1; helper && k < g_tree.n && !mate; k++)
            mate = k != j && g_tree.helper_sid[k] && !g_tree.helper_sid[j] &&
                   g_tree.helper[j] && tree_made_by(k, i, helper) &&
                   g_tree.e[k].sid == g_tree.e[j].sid;
        if (mate)
            continue;
        fflush(NULL);
        /* in a pid namespace of the program's own, the helper that makes
         * a session has the number the session had, if it is free: raw
         * ids agree then too (the leader's pid was the session's) */
        pid_t h = helper && g_pidns && g_tree.helper_sid[j] && g_tree.sid_now[j]
                      ? ck_pidns_fork_as(g_tree.sid_now[j][-1])
                      : -1;
        if (h < 0)
            h = helper ? fork() : 0;
        if (h < 0) {
            fail_msg(m, "cannot fork the helper of process %d of the tree: %s",
                     g_tree.e[j].vpid, strerror(errno));
            return -1;
        }
        if (h > 0) {
            int st = 0;
            while (waitpid(h, &st, 0) < 0 && errno == EINTR)
                ;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fail_msg(m, "cannot make process %d of the tree again (its helper: status "
                         "%#x)", g_tree.e[j].vpid, st);
                return -1;
            }
            continue;
        }
        /* the helper (or the zombie to be) */
        if (helper && g_tree.helper_sid[j]) {
            if (setsid() < 0) {
                dprintf(2, "coord: restore %s: the helper of process %d: setsid: %s\n",
                        m->file, g_tree.e[j].vpid, strerror(errno));
                _exit(1);
            }
            tree_publish(g_tree.sid_now[j], getpid());
        }
        for (int k = j; k < g_tree.n; k++) {
            if (k != j && !(helper && g_tree.helper_sid[j] && tree_made_by(k, i, helper) &&
                            !g_tree.helper_sid[k] && g_tree.helper[k] &&
                            g_tree.e[k].sid == g_tree.e[j].sid))
                continue;
            int sib = !(g_tree.e[k].flags & CK_TREE_ORPHAN);
            pid_t p = sib ? ck_pidns_clone_parent_as(g_pidns ? g_tree.e[k].vpid : 0)
                          : tree_fork(g_tree.e[k].vpid);
            if (p == 0)
                tree_child(k, m->file, restorer);
            if (p < 0) {
                dprintf(2, "coord: restore %s: cannot make process %d of the tree: %s\n",
                        m->file, g_tree.e[k].vpid, strerror(errno));
                if (helper)
                    _exit(1);
                return -1;
            }
            g_tree.map[2 * k + 1] = (int32_t)p;
            if (!helper)
                break;
        }
        if (helper)
            _exit(0);
    }
    return 0;
}

/* Publish the id a group or session has now for the others to join. */
static void tree_publish(int32_t *slot, pid_t now)
{
    if (slot)
        __atomic_store_n(slot, (int32_t)now, __ATOMIC_SEQ_CST);
}

/* Process i, the leader of a new session, takes as its controlling
 * terminal the pseudo-terminal the tree made for its session's (one its
 * own process made is taken in its restore: fds/tty.c). Returns a slave
 * of it (to give the foreground later), -1 (none), or -2 (err set). */
static int tree_take_ctty(int i)
{
    struct rctx *m = &g_tree.m[i];
    int master = g_tree.e[i].ctty > 0 ? tree_pty_master((uint64_t)g_tree.e[i].ctty - 1) : -1;
    if (master < 0)
        return -1;
    if (getsid(0) != getpid()) {
        fail_msg(m, "its session's controlling terminal was a pseudo-terminal of the tree; "
                 "only a restore with --detach (a session of its own) can give it back");
        return -2;
    }
    int sl = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sl < 0 || ioctl(sl, TIOCSCTTY, 0) < 0) {
        fail_msg(m, "cannot make the new pseudo-terminal its controlling terminal: %s",
                 strerror(errno));
        if (sl >= 0)
            close(sl);
        return -2;
    }
    return sl;
}

/* Become process i of the tree: first fork its children (each becomes
 * its own process of the tree, and so on down), so that the restored
 * processes are parents and children of each other again; the pids of
 * now go into the map the shims read once the gate opens. Its session and
 * process group are made again on the way (a session leader forks the
 * children that stayed in the session it came from before its setsid).
 * Returns only on failure (err of process i set). */
static void tree_become(int i, const char *restorer)
{
    struct rctx *m = &g_tree.m[i];
    int prep = g_prep_idx == i; /* a preparer: its restorer's child will be i */
    if (!prep)
        g_tree.map[2 * i + 1] = (int32_t)getpid();
    /* children must stay for their parent to wait for: coord may have been
     * started with SIGCHLD ignored (then they would vanish at exit); the
     * program's own disposition is put back by the shim after restore */
    signal(SIGCHLD, SIG_DFL);
    if (i == 0) {
        /* the root keeps the group and session restore gave it (-1: one
         * outside its pid namespace, getpgrp 0, inherited by its members) */
        tree_publish(g_tree.pg_now[0], getpgrp() > 0 ? getpgrp() : -1);
        tree_publish(g_tree.sid_now[0], getsid(0));
    }
    if (tree_fork_round(i, 1, restorer) < 0)
        return;
    int ctty = -1;
    if (i == 0 && (ctty = tree_take_ctty(i)) < -1)
        return;
    if (i > 0 && g_tree.makes_sid[i]) {
        if (setsid() < 0) {
            fail_msg(m, "setsid: %s", strerror(errno));
            return;
        }
        tree_publish(g_tree.sid_now[i], getpid());
        tree_publish(g_tree.pg_now[i], getpid());
        if ((ctty = tree_take_ctty(i)) < -1)
            return;
    } else if (i > 0 && g_tree.makes_pg[i] && g_tree.helper[i] &&
               g_tree.e[i].pgid == g_tree.e[i].sid) {
        /* an orphan in the group of its session's leader, who is gone (or
         * a zombie): the group of the helper or zombie that made the
         * session again */
        tree_publish(g_tree.pg_now[i], getpgrp() > 0 ? getpgrp() : -1);
    } else if (i > 0 && g_tree.makes_pg[i]) {
        if (setpgid(0, 0) < 0) {
            fail_msg(m, "setpgid: %s", strerror(errno));
            return;
        }
        tree_publish(g_tree.pg_now[i], getpid());
    }
    if (tree_fork_round(i, 2, restorer) < 0)
        return;
    if (ctty >= 0) {
        /* the terminal's foreground group, once its maker made it */
        int32_t fg = g_tree.e[i].fg_pgid, *slot = NULL, pg = 0;
        for (int j = 0; j < g_tree.n && !slot && fg > 0 && fg != g_tree.e[i].pgid; j++)
            if (g_tree.e[j].pgid == fg)
                slot = g_tree.pg_now[j];
        for (int waited = 0; slot && waited < 20000 &&
                             !(pg = __atomic_load_n(slot, __ATOMIC_SEQ_CST));
             waited++)
            usleep(500);
        if (pg > 0 && tcsetpgrp(ctty, pg) < 0) {
            fail_msg(m, "cannot give its terminal's foreground to process group %d: %s", fg,
                     strerror(errno));
            return;
        }
        close(ctty);
    }
    if (i > 0 && !prep && !g_tree.makes_sid[i] && !g_tree.makes_pg[i] && g_tree.pg_now[i]) {
        /* join its group once the process that makes it did (every one
         * makes its own before it waits for any: nothing waits in a
         * circle) */
        int32_t pg = 0;
        for (int waited = 0; waited < 20000 &&
                             !(pg = __atomic_load_n(g_tree.pg_now[i], __ATOMIC_SEQ_CST));
             waited++)
            usleep(500);
        if (!pg) {
            fail_msg(m, "its process group was not made again within 10 s");
            return;
        }
        if (pg < 0 && getpgrp() != 0) {
            fail_msg(m, "its process group is outside the pid namespace, and it is not in it");
            return;
        }
        if (pg > 0 && getpgrp() != pg && setpgid(0, pg) < 0) {
            fail_msg(m, "setpgid to process group %d: %s", (int)pg, strerror(errno));
            return;
        }
    }
    /* the orphans it makes again, in its session and group of now */
    if (tree_make_orphans(i, restorer, 1) < 0)
        return;
    /* Its zombie children have ended again (in their groups, which they
     * publish for the map) before the gate: the program finds them so,
     * and its shim reads their groups' numbers of now. */
    for (int j = i + 1; j < g_tree.n; j++) {
        siginfo_t si;
        if (g_tree.e[j].parent == i && (g_tree.e[j].flags & CK_TREE_ZOMBIE) &&
            waitid(P_PID, (id_t)g_tree.map[2 * j + 1], &si, WEXITED | WNOWAIT) < 0 &&
            errno != ECHILD) {
            fail_msg(m, "waiting for its child %d to end again: %s", g_tree.e[j].vpid,
                     strerror(errno));
            return;
        }
    }
    become(m, restorer);
}

/* --allow-changed PATH|all, --shared-file PATH (as "--opt PATH" or
 * "--opt=PATH"), added to a list; the image has absolute paths without
 * links: compared with that. 0, or -1 (said why). */
static int path_list_option(int argc, char **argv, int *i, const char *opt, char ***list,
                            int *n)
{
    size_t ol = strlen(opt);
    const char *v = argv[*i][ol] == '=' ? argv[*i] + ol + 1 : *i + 1 < argc ? argv[++*i] : NULL;
    if (!v || !*v) {
        ck_usage_error("restore", "%s needs a PATH", opt);
        return -1;
    }
    char **l = realloc(*list, (size_t)(*n + 1) * sizeof **list);
    if (!l)
        return -1;
    *list = l;
    char *abs = strcmp(v, "all") ? realpath(v, NULL) : NULL;
    l[(*n)++] = abs ? abs : (char *)v;
    return 0;
}

/* ---- a pid namespace of the program's own (docs/DESIGN.md, "PID
 * namespaces") ---- */

/* The pids the restore gives back must be free in a new namespace and
 * fit in it: not 1 (coord's init), each once, below pid_max. Returns the
 * highest pid or tid of the image (ordinary forks in the namespace get
 * pids above it), or -1 with c->err set. */
/* The pid_max of a new pid namespace, read in one made for the question:
 * since Linux 6.14 each has its own (4194304 here, while the machine's
 * may be 32768, which a program in such a namespace outgrows); before,
 * the machine's applies. */
static long new_ns_pid_max(void)
{
    long host = read_long("/proc/sys/kernel/pid_max"), v = 0;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return host;
    fflush(NULL);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        if (unshare(CLONE_NEWUSER | CLONE_NEWPID) == 0) {
            pid_t g = fork();
            if (g == 0) {
                v = read_long("/proc/sys/kernel/pid_max");
                _exit(write(p[1], &v, sizeof v) == (ssize_t)sizeof v ? 0 : 1);
            }
            if (g > 0)
                waitpid(g, NULL, 0);
        }
        _exit(0);
    }
    close(p[1]);
    if (c > 0) {
        if (read(p[0], &v, sizeof v) != (ssize_t)sizeof v)
            v = 0;
        waitpid(c, NULL, 0);
    }
    close(p[0]);
    return v > 0 ? v : host;
}

static int pidns_check(struct rctx *c)
{
    long pid_max = new_ns_pid_max();
    int n = g_tree.n ? g_tree.n : 1, top = 1;
    for (int i = 0; i < n; i++) {
        int pid = g_tree.n ? g_tree.e[i].vpid : (int)c->img.proc.pid;
        const char *why = NULL;
        if (pid <= 1)
            why = "pid 1 of the new namespace is coord's init";
        else if (pid_max > 0 && pid >= pid_max)
            why = "it is not below a new pid namespace's pid_max";
        for (int j = 0; j < i && !why; j++)
            if (g_tree.e[j].vpid == pid)
                why = "two processes of the image have it";
        if (why) {
            fail_msg(c, "cannot restore in a pid namespace: process %d cannot have its pid "
                     "again (%s)", pid, why);
            return -1;
        }
        if (pid > top)
            top = pid;
        const struct ck_image *im = g_tree.n ? &g_tree.m[i].img : &c->img;
        if (g_tree.n && (g_tree.e[i].flags & CK_TREE_ZOMBIE))
            continue;
        for (uint32_t k = 0; k < im->nthreads; k++)
            if ((int)im->threads[k].tid > top && (pid_max <= 0 || im->threads[k].tid < pid_max))
                top = (int)im->threads[k].tid;
    }
    return top;
}

/* In the new namespace's init (ck_pidns_start): make the root with its
 * pid, which goes on as the foreground or --detach restore does, then be
 * init. Never returns. */
static void pidns_root(struct rctx *c, const char *restorer, int top, int report_fd)
{
    int r = ck_pidns_set_last(top);
    int root = g_tree.n ? g_tree.e[0].vpid : (int)c->img.proc.pid;
    pid_t p = r < 0 ? -1 : ck_pidns_fork_as(root);
    if (p == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (c->detach)
            setsid();
        if (g_tree.n) {
            g_tree.m[0].status_fd = c->status_fd;
            tree_become(0, restorer);
            snprintf(c->err, sizeof c->err, "%s", g_tree.m[0].err);
            c->status_fd = g_tree.m[0].status_fd;
        } else {
            become(c, restorer);
        }
        if (c->detach)
            dprintf(c->status_fd >= 0 ? c->status_fd : report_fd, "error: %s\n", c->err);
        else
            print_err(c);
        _exit(1);
    }
    if (p < 0) {
        if (r < 0)
            fail_msg(c, "cannot set the next pid of the new pid namespace: %s", strerror(-r));
        else
            fail_msg(c, "cannot make process %d with its pid in the new pid namespace: %s",
                     root, strerror(errno));
        if (c->detach)
            dprintf(report_fd, "error: %s\n", c->err);
        else
            print_err(c);
        _exit(1);
    }
    ck_pidns_init(p);
}

int cmd_restore(int argc, char **argv)
{
    struct rctx c;
    memset(&c, 0, sizeof c);
    c.status_fd = -1;
    c.err_fd = 2;
    c.tree_idx = -1;
    const char *counter_url = getenv("CKSHIM_COUNTER");
    const char *key_file = getenv("CKSHIM_KEY_FILE"), *action = NULL;
    int force = 0;
    c.pages_fd = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json_out = 1;
        else if (!strcmp(argv[i], "--detach") || !strcmp(argv[i], "-d"))
            c.detach = 1;
        else if (!strcmp(argv[i], "--pidns"))
            g_pidns = 1;
        else if (!strcmp(argv[i], "--force"))
            force = 1;
        else if (!strcmp(argv[i], "--adopt-stamp"))
            adopt_stamp = 1;
        else if (!strcmp(argv[i], "--no-file-versions"))
            c.no_versions = 1;
        else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
            quiet = 1;
        else if (!strcmp(argv[i], "--shared-file") || !strncmp(argv[i], "--shared-file=", 14)) {
            if (path_list_option(argc, argv, &i, "--shared-file", &c.shared, &c.nshared) < 0)
                return CK_EXIT_USAGE;
        } else if (!strcmp(argv[i], "--allow-changed") ||
                   !strncmp(argv[i], "--allow-changed=", 16)) {
            if (path_list_option(argc, argv, &i, "--allow-changed", &c.allow, &c.nallow) < 0)
                return CK_EXIT_USAGE;
        } else if (!strcmp(argv[i], "--counter") || !strncmp(argv[i], "--counter=", 10) ||
                 !strcmp(argv[i], "--key") || !strncmp(argv[i], "--key=", 6) ||
                 !strcmp(argv[i], "--action-script") ||
                 !strncmp(argv[i], "--action-script=", 16)) {
            int r = ck_opt_value("restore", argc, argv, &i, "--counter", NULL, &counter_url);
            if (r == 0)
                r = ck_opt_value("restore", argc, argv, &i, "--key", NULL, &key_file);
            if (r == 0)
                r = ck_opt_value("restore", argc, argv, &i, "--action-script", NULL, &action);
            if (r < 0)
                return CK_EXIT_USAGE;
            i--; /* ck_opt_value moved past the option */
        } else if (!strcmp(argv[i], "--"))
            continue;
        else if (argv[i][0] == '-' && argv[i][1])
            return ck_usage_error("restore", "unknown option %s", argv[i]);
        else if (c.file)
            return ck_usage_error("restore", "more than one image given");
        else
            c.file = argv[i];
    }
    if (!c.file)
        return ck_usage_error("restore", "no image file given");
    if (json_out && !c.detach)
        return ck_usage_error("restore", "--json needs --detach (in the foreground coord "
                              "becomes the program)");
    ck_progress_start("restore", quiet);
    if (action) {
        if (ck_action_check("restore", action, c.script, sizeof c.script) != 0)
            return CK_EXIT_USAGE;
        char cwd[PATH_MAX];
        if (c.file[0] == '/' || !getcwd(cwd, sizeof cwd))
            snprintf(c.script_image, sizeof c.script_image, "%s", c.file);
        else
            snprintf(c.script_image, sizeof c.script_image, "%s/%s", cwd, c.file);
    }
    char restorer[PATH_MAX];
    if (find_restorer(restorer, sizeof restorer) < 0) {
        ck_msg("restore: cannot find ckshim-restore next to coord or in ../lib/ckshim "
               "(set CKSHIM_RESTORER)");
        return CK_EXIT_FAIL;
    }
    char err[512];
    if (!strcmp(c.file, "-")) {
        if (isatty(STDIN_FILENO)) {
            ck_msg("restore -: standard input is a terminal; pipe an image into coord restore -");
            return CK_EXIT_USAGE;
        }
        c.file = "(standard input)";
        if (stdin_to_memfd(&c) < 0) {
            print_err(&c);
            return CK_EXIT_FAIL;
        }
    } else {
        c.img_fd = ck_open_regular(c.file, O_RDONLY, err, sizeof err);
        if (c.img_fd < 0) {
            ck_msg("restore %s: %s", c.file, err);
            return CK_EXIT_FAIL;
        }
    }
    /* With a key, everything is read from a copy in memory (see
     * copy_to_memfd), a tree's header too. */
    if (key_file && *key_file) {
        if (ck_auth_init() < 0 || ck_key_load(key_file, &c.key, err, sizeof err) < 0) {
            ck_msg("restore %s: %s", c.file, err);
            return CK_EXIT_FAIL;
        }
        c.have_key = 1;
        if (!c.in_memory && copy_to_memfd(&c) < 0) {
            print_err(&c);
            return CK_EXIT_FAIL;
        }
    }
    /* A process tree image: restore_tree reads every process's stream. */
    struct ck_tree_hdr th;
    struct ck_tree_entry *te = NULL;
    struct ck_tree_sharetab tshares;
    int tr = ck_tree_read_hdr(c.img_fd, &th, &te, &tshares, err, sizeof err);
    if (tr < 0) {
        ck_msg("restore %s: %s", c.file, err);
        return CK_EXIT_FAIL;
    }
    if (tr > 0) {
        if (restore_tree(&c, &th, te, &tshares, counter_url, force) < 0) {
            print_err(&c);
            return CK_EXIT_FAIL;
        }
        goto run;
    }
    /* Page checksums: by the restorer as it reads (see the top), unless
     * it is told not to check them. */
    int no_verify = getenv("CKSHIM_NO_VERIFY") != NULL;
    int r = ck_image_read(c.img_fd, &c.img, no_verify ? CK_READ_VERIFY_PAGES : 0, err, sizeof err);
    if (r < 0) {
        ck_msg("restore %s: %s", c.file, err);
        return CK_EXIT_FAIL;
    }
    /* Authenticity before anything else is believed (the stamp included). */
    if (c.have_key) {
        if (ck_image_authenticate(c.img_fd, &c.key, err, sizeof err) < 0) {
            ck_msg("restore %s: %s", c.file, err);
            return CK_EXIT_FAIL;
        }
        /* Test hook (tests/integration/test_files.sh): a shell command run
         * once the image is authenticated, before anything else reads it. */
        const char *hook = getenv("CKSHIM_TEST_HOOK_AUTHENTICATED");
        if (hook && *hook && system(hook) != 0)
            ck_msg("restore %s: test hook failed", c.file);
    } else if (c.img.hdr.flags & (CK_HF_MAC | CK_HF_ENCRYPTED)) {
        ck_msg("restore %s: the image is %s; give its key with --key FILE (or CKSHIM_KEY_FILE)",
               c.file, (c.img.hdr.flags & CK_HF_ENCRYPTED) ? "encrypted" : "authenticated");
        return CK_EXIT_FAIL;
    }
    char host[sizeof c.img.hdr.hostname + 1] = "";
    gethostname(host, sizeof host - 1);
    c.same_host = !strncmp(host, c.img.hdr.hostname, sizeof c.img.hdr.hostname);
    c.rseen = calloc(c.img.nregions + 1, sizeof *c.rseen);
    c.fseen = calloc(c.img.nfds + 1, sizeof *c.fseen);
    c.remake = calloc(c.img.nregions + 1, 1);
    if (!c.rseen || !c.fseen || !c.remake) {
        ck_msg("restore %s: out of memory", c.file);
        return CK_EXIT_FAIL;
    }
    c.encrypted = (c.img.hdr.flags & CK_HF_ENCRYPTED) != 0;
    if ((c.encrypted && decrypt_pages(&c) < 0) || (c.have_key && seal_image(&c) < 0)) {
        print_err(&c);
        return CK_EXIT_FAIL;
    }
    if (check_image(&c) < 0 || plan_versions(&c) < 0 ||
        check_counter(&c, counter_url, force) < 0 || remake_saved_files(&c) < 0) {
        print_err(&c);
        return CK_EXIT_FAIL;
    }
run:
    if ((g_tree.n ? g_tree.m[0].img.hdr.flags : c.img.hdr.flags) & CK_HF_PIDNS)
        g_pidns = 1;
    /* (its pid in the kernel: a tree's entry has it; a single image the
     * pid it knows, the same unless it was restored before) */
    if (!g_pidns)
        note_original(g_tree.n ? &g_tree.m[0] : &c, c.file,
                      g_tree.n ? g_tree.e[0].real_pid : (int)c.img.hdr.orig_pid);
    int root_stop = g_tree.n ? (g_tree.e[0].flags & CK_TREE_STOPPED ? (int)(g_tree.e[0].flags >> 8 &
                                                                         0xff) : 0)
                             : (int)c.img.hdr.stop_sig;
    if (root_stop > 0)
        ck_msg("restore %s: the program was stopped (%s) when it was checkpointed: it comes back "
               "stopped; continue it with kill -CONT (or fg in its shell)", c.file,
               strsignal(root_stop));
    int top = 0;
    if (g_pidns && (top = pidns_check(&c)) < 0) {
        print_err(&c);
        return CK_EXIT_FAIL;
    }
    fflush(NULL);
    if (!c.detach && g_pidns) {
        /* coord stays outside and ends as the program does */
        if (ck_restore_extra.status_fd >= 0)
            c.status_fd = ck_restore_extra.status_fd;
        int status_rd = -1;
        pid_t init = ck_pidns_start("restore", 0, &status_rd);
        if (init == 0)
            pidns_root(&c, restorer, top, -1);
        if (init < 0)
            return CK_EXIT_FAIL;
        tree_close_all();
        if (c.status_fd >= 0)
            close(c.status_fd);
        return ck_pidns_wait(init, status_rd);
    }
    if (!c.detach) {
        if (ck_restore_extra.status_fd >= 0)
            c.status_fd = ck_restore_extra.status_fd;
        if (g_tree.n) {
            g_tree.m[0].status_fd = c.status_fd;
            tree_become(0, restorer);
            snprintf(c.err, sizeof c.err, "%s", g_tree.m[0].err);
        } else {
            become(&c, restorer);
        }
        print_err(&c);
        return CK_EXIT_FAIL;
    }
    /* --detach: a child becomes the program in its own session and
     * reports through a pipe once it runs. */
    int sp[2];
    if (pipe2(sp, O_CLOEXEC) < 0) {
        ck_msg("restore %s: pipe: %s", c.file, strerror(errno));
        return CK_EXIT_FAIL;
    }
    pid_t pid;
    if (g_pidns) {
        /* init (pid) outlives us; the program is its child */
        int status_rd = -1;
        pid = ck_pidns_start("restore", 1, &status_rd);
        if (pid == 0) {
            close(sp[0]);
            c.status_fd = sp[1];
            pidns_root(&c, restorer, top, sp[1]);
        }
        if (pid < 0)
            return CK_EXIT_FAIL;
        close(status_rd);
    } else {
        pid = fork();
    }
    if (pid < 0) {
        ck_msg("restore %s: fork: %s", c.file, strerror(errno));
        return CK_EXIT_FAIL;
    }
    if (pid == 0) {
        close(sp[0]);
        setsid();
        c.status_fd = sp[1];
        if (g_tree.n) {
            g_tree.m[0].status_fd = sp[1];
            tree_become(0, restorer);
            snprintf(c.err, sizeof c.err, "%s", g_tree.m[0].err);
            c.status_fd = g_tree.m[0].status_fd;
        } else {
            become(&c, restorer);
        }
        dprintf(c.status_fd >= 0 ? c.status_fd : sp[1], "error: %s\n", c.err);
        _exit(1);
    }
    close(sp[1]);
    tree_close_all();
    char buf[1024];
    size_t n = 0;
    for (;;) {
        struct pollfd pf = {.fd = sp[0], .events = POLLIN};
        int pr = poll(&pf, 1, 120000);
        if (pr <= 0) {
            ck_msg("restore %s: the restored process did not report within 120 s", c.file);
            kill(pid, SIGKILL);
            return CK_EXIT_FAIL;
        }
        ssize_t got = read(sp[0], buf + n, sizeof buf - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
        if (memchr(buf, '\n', n) || n >= sizeof buf - 1)
            break;
    }
    buf[n] = 0;
    close(sp[0]);
    if (!strncmp(buf, "ok ", 3)) {
        /* in a pid namespace the shim gives its pid there: ours is the
         * one to print (pid is the namespace's init, which ends with it) */
        int shown = atoi(buf + 3);
        if (g_pidns)
            shown = ck_pidns_find(ck_pidns_of(pid), shown);
        int rc = watch_detached(&c, pid);
        if (rc == CK_EXIT_OK && shown <= 0) {
            ck_msg("restore %s: the restored program ended right after restore", c.file);
            rc = CK_EXIT_FAIL;
        }
        if (rc == CK_EXIT_OK && json_out) {
            struct ck_json j;
            ck_json_init(&j, stdout);
            ck_json_open(&j, NULL, '{');
            ck_json_ku64(&j, "pid", (uint64_t)shown);
            ck_json_kstr(&j, "image", c.file);
            ck_json_ku64(&j, "processes", g_tree.n ? (uint64_t)g_tree.n : 1);
            ck_json_kbool(&j, "pidns", g_pidns);
            ck_json_close(&j, '}');
            ck_json_end(&j);
            fflush(stdout);
            if (c.script[0])
                post_restore(&c, shown);
        } else if (rc == CK_EXIT_OK) {
            printf("%d\n", shown);
            fflush(stdout);
            if (c.script[0])
                post_restore(&c, shown);
        }
        ck_image_free(&c.img);
        return rc;
    }
    int ws;
    waitpid(pid, &ws, WNOHANG);
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    ck_msg("restore %s: %s", c.file,
           n ? (strncmp(buf, "error: ", 7) ? buf : buf + 7) : "the restorer died without a word");
    return CK_EXIT_FAIL;
}
