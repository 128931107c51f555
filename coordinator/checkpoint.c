/* checkpoint.c - "coord checkpoint": ask a process's shim for an image.
 *
 * The image goes to a temporary file next to FILE, which replaces FILE
 * only once the shim reported success and the image reads back as
 * complete: a failed checkpoint never damages an existing FILE. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "coord.h"
#include "counter.h"
#include "elfnote.h"
#include "fileid.h"
#include "imgio.h"
#include "tree.h"
#include "treeshare.h"
#include "unix.h"

#define REPLY_TIMEOUT_MS (10 * 60 * 1000)
#define CONNECT_TIMEOUT_MS 10000
#define KILL_WAIT_MS 5000

/* The temporary file, for the signal handler. */
static char tmp_path[PATH_MAX + 64];
static uint64_t stamp_msg;
/* The counter: its value when the image was stamped (the stamp is one
 * more), and the app id. */
static uint64_t stamp_base;
static char stamp_id[65];
static volatile sig_atomic_t have_tmp;
/* --action-script: its absolute path, and the image as it is given to it */
static char script[PATH_MAX], script_image[PATH_MAX + 1];

static void on_signal(int sig)
{
    if (have_tmp)
        unlink(tmp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
}

static void drop_tmp(void)
{
    if (have_tmp) {
        unlink(tmp_path);
        have_tmp = 0;
    }
}

/* Create tmp_path, DIR/.BASE.tmp.COORDPID.XXXXXX, exclusively, 0600,
 * with every signal held off meanwhile (a Ctrl-C then finds have_tmp
 * set). Its descriptor, or -1 after a message. */
static int make_tmp(int pid, const char *dir, const char *base)
{
    int l = snprintf(tmp_path, sizeof(tmp_path), "%s/.%s.tmp.%d.XXXXXX", dir, base,
                     (int)getpid());
    if (l < 0 || (size_t)l >= sizeof(tmp_path)) {
        ck_msg("checkpoint %d: %s/%s: file name too long", pid, dir, base);
        return -1;
    }
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    int fd = mkostemp(tmp_path, O_CLOEXEC);
    if (fd >= 0)
        have_tmp = 1;
    int e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (fd < 0) {
        ck_msg("checkpoint %d: cannot create a file in %s: %s", pid, dir, strerror(e));
        return -1;
    }
    if (fchmod(fd, 0600) < 0) {
        ck_msg("checkpoint %d: chmod %s: %s", pid, tmp_path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Split file into its directory ("." if none) and its last component. */
static int split_path(const char *file, char *dir, size_t dirlen, const char **base)
{
    const char *slash = strrchr(file, '/');
    if (!slash) {
        snprintf(dir, dirlen, ".");
        *base = file;
        return 0;
    }
    size_t dl = (size_t)(slash - file);
    if (dl == 0)
        dl = 1; /* "/name" */
    if (dl >= dirlen)
        return -ENAMETOOLONG;
    memcpy(dir, file, dl);
    dir[dl] = '\0';
    *base = slash + 1;
    return 0;
}

static void sleep_ms(int ms);

/* For the crash-safety tests: CKSHIM_TEST_HOOK=POINT stops coord (SIGSTOP)
 * at that point of the commit, so a test can kill it there, or change
 * the target, and check that the program or a good image survives.
 * Points: before-commit (image written and verified, nothing renamed),
 * after-rename (image in place, counter not yet advanced). */
static void test_hook(const char *point)
{
    const char *h = getenv("CKSHIM_TEST_HOOK");
    size_t n = strlen(point);
    if (h && !strcmp(h, point))
        raise(SIGSTOP);
    /* POINT:SECONDS: coord is slow there (a slow counter service, a slow
     * disk), as long as that: points slow-stamp (every process captured,
     * before the counter is read) and slow-commit (before the rename) */
    else if (h && !strncmp(h, point, n) && h[n] == ':')
        sleep_ms(atoi(h + n + 1) * 1000);
}

/* ---- keep-alives: the parked processes wait for coord's next word at
 * most 30 s (preload/shim.c, coord_next), so while coord works (a slow
 * counter, the other processes of a tree, writing and reading back a
 * large image) a thread of its own says "still at work" on every
 * connection once a second. Every request coord sends on them takes the
 * same lock, so the two never interleave on a socket. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int running, stop;
    const int *conns;
    const char *asked; /* (a tree's: only those that got their request) */
    int n;
} hb = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *hb_main(void *arg)
{
    (void)arg;
    struct ck_ctl_req q;
    memset(&q, 0, sizeof q);
    q.magic = CK_CTL_MAGIC;
    q.op = CK_OP_KEEPALIVE;
    pthread_mutex_lock(&hb.mu);
    while (!hb.stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&hb.cv, &hb.mu, &ts);
        for (int i = 0; !hb.stop && i < hb.n; i++)
            if (hb.conns[i] >= 0 && (!hb.asked || hb.asked[i]))
                ck_ctl_send(hb.conns[i], &q, -1);
    }
    pthread_mutex_unlock(&hb.mu);
    return NULL;
}

/* Start saying "still at work" on the n connections conns (which stay
 * valid until hb_stop). */
static void hb_start(const int *conns, int n)
{
    if (hb.running)
        return;
    hb.conns = conns;
    hb.n = n;
    hb.stop = 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals stay the main thread's */
    hb.running = pthread_create(&hb.th, NULL, hb_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void hb_stop(void)
{
    if (!hb.running)
        return;
    pthread_mutex_lock(&hb.mu);
    hb.stop = 1;
    pthread_cond_signal(&hb.cv);
    pthread_mutex_unlock(&hb.mu);
    pthread_join(hb.th, NULL);
    hb.running = 0;
    hb.asked = NULL;
}

/* ck_ctl_send of a request without a descriptor, never interleaved with
 * a keep-alive. */
static int ctl_send(int fd, const struct ck_ctl_req *q)
{
    pthread_mutex_lock(&hb.mu);
    int r = ck_ctl_send(fd, q, -1);
    pthread_mutex_unlock(&hb.mu);
    return r;
}

/* Did the shim at the other end of conn give up waiting (it closed the
 * connection: no word from coord for its time limit) and release its
 * process? Then the image must not be committed. */
static int shim_gave_up(int conn)
{
    struct pollfd pf = {.fd = conn, .events = POLLRDHUP};
    return conn >= 0 && poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

/* A process by a descriptor that names it and no other (pidfd), opened
 * while coord knows it is the one it checkpoints: a pid reused after it
 * ended can never be signalled by mistake. -1 if the kernel has none. */
static int open_pidfd(int pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* --kill, once the image is committed and every process was told: wait
 * (KILL_WAIT_MS in all) until each process of pidfds ended; one still
 * running then (its shim stopped listening before the COMMIT came) is
 * killed through its pidfd, so no process goes on after a --kill that
 * succeeded. Returns how many had to be killed. */
static int end_processes(const int *pidfds, const int *pids, int n, int root)
{
    int killed = 0, waited = 0;
    for (int i = 0; i < n; i++) {
        if (pidfds[i] < 0)
            continue;
        struct pollfd pf = {.fd = pidfds[i], .events = POLLIN};
        int left = KILL_WAIT_MS - waited;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (poll(&pf, 1, left > 0 ? left : 0) == 1)
            continue;
        clock_gettime(CLOCK_MONOTONIC, &b);
        waited += (int)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000);
        if (syscall(SYS_pidfd_send_signal, pidfds[i], SIGKILL, NULL, 0) == 0) {
            ck_msg("checkpoint %d: process %d was still running %d s after its image was "
                   "committed: killed", root, pids[i], KILL_WAIT_MS / 1000);
            killed++;
        }
    }
    return killed;
}

/* Pipes whose other end is outside the program (another process, or
 * closed) cannot come back connected to it: say what they become. */
static void note_outside_pipes(int pid, const struct ck_image *img)
{
    char std[64] = "", other[128] = "";
    for (uint32_t i = 0; i < img->nfds; i++) {
        const struct ck_fd *f = &img->fds[i];
        if (f->kind != CK_FD_PIPE || !(f->flags & CK_FDF_EXTERNAL) || f->share_with >= 0)
            continue;
        char *b = (f->flags & CK_FDF_STD_REDIRECT) ? std : other;
        size_t cap = (f->flags & CK_FDF_STD_REDIRECT) ? sizeof std : sizeof other;
        size_t n = strlen(b);
        if (n + 16 < cap)
            snprintf(b + n, cap - n, "%s%d", n ? ", " : "", f->fd);
    }
    if (std[0])
        ck_msg("checkpoint %d: note: fd %s: a pipe to or from outside the program; after "
               "restore it is the restoring coord's own (/dev/null with --detach)",
               pid, std);
    if (other[0])
        ck_msg("checkpoint %d: note: fd %s: a pipe to or from outside the program; after "
               "restore it has no other end (reads see end of file, writes fail with EPIPE)",
               pid, other);
}

static const struct ck_image *img_at(int j, void *ctx)
{
    return &((const struct ck_image *)ctx)[j];
}

/* A process sharing its parent's descriptor table (CK_TREE_FILES) is made
 * again by its parent's restorer, and so must every process below it be
 * (restore.c, tree_fork_kind): refused now, naming the first process of
 * such a subtree that a restorer cannot make (a zombie, an orphan, one in
 * a group or session of its own, or, unless it shares a table too, one
 * holding file locks, a pidfd, a /proc file or a unix socket, or with its
 * working directory in /proc), rather than found out by every restore.
 * 0, or -1 with err. */
static int files_subtree_check(int n, const struct ck_tree_entry *e,
                               const struct ck_image *imgs, char *err, size_t errlen)
{
    char *under = calloc((size_t)n + 1, 1);
    int top = -1, bad = -1;
    const char *why = NULL;
    for (int i = 1; under && i < n && bad < 0; i++) {
        int p = e[i].parent;
        if (p < 0 || p >= i)
            continue;
        under[i] = (e[i].flags & CK_TREE_FILES) || under[p];
        if (!under[i])
            continue;
        const struct ck_image *im = &imgs[i];
        int shares = (e[i].flags & CK_TREE_FILES) != 0;
        if (e[i].flags & CK_TREE_ZOMBIE)
            why = "a zombie (not yet waited for)";
        else if (e[i].flags & CK_TREE_ORPHAN)
            why = "an orphan";
        else if (e[i].pgid != e[p].pgid || e[i].sid != e[p].sid)
            why = "in a process group or session other than its parent's";
        else if (!strncmp(im->proc.cwd, "/proc/", 6))
            why = "in a working directory in /proc";
        else if (!shares && im->nlocks)
            why = "holding file locks";
        for (uint32_t k = 0; !why && !shares && k < im->nfds; k++)
            why = im->fds[k].kind == CK_FD_PIDFD  ? "holding a pidfd"
                  : im->fds[k].kind == CK_FD_UNIX ? "holding a unix socket"
                  : im->fd_paths && im->fd_paths[k] && !strncmp(im->fd_paths[k], "/proc/", 6)
                      ? "holding a descriptor of a /proc file"
                      : NULL;
        if (why) {
            bad = i;
            for (top = i; top > 0 && !(e[top].flags & CK_TREE_FILES); top = e[top].parent)
                ;
        }
    }
    free(under);
    if (bad < 0)
        return 0;
    if (top == bad)
        snprintf(err, errlen, "process %d shares its parent's descriptor table (clone with "
                 "CLONE_FILES), so its parent's restorer must make it, but it is %s: ckshim "
                 "cannot restore that", e[bad].vpid, why);
    else
        snprintf(err, errlen, "process %d is below process %d, which shares its parent's "
                 "descriptor table (clone with CLONE_FILES): a restorer must make every process "
                 "below it, but process %d is %s, which ckshim cannot restore so",
                 e[bad].vpid, e[top].vpid, e[bad].vpid, why);
    return -1;
}

/* note_outside_pipes for process i of a tree: pipes whose other end is
 * another process of the tree are not outside (restore joins them), and
 * one an earlier process of the tree holds too (inherited: a harness's
 * output pipe) was named for that one already. */
static void note_tree_pipes(const struct ck_tree *t, struct ck_image *imgs, int i)
{
    struct ck_image *im = &imgs[i];
    uint32_t *saved = calloc(im->nfds + 1, sizeof *saved);
    if (!saved)
        return;
    for (uint32_t x = 0; x < im->nfds; x++) {
        struct ck_fd *f = &im->fds[x];
        saved[x] = f->flags;
        if (f->kind == CK_FD_PIPE && ck_pipe_tree_joined(t->n, i, f, img_at, imgs))
            f->flags &= ~(uint32_t)CK_FDF_EXTERNAL;
        for (int j = 0; j < i && f->kind == CK_FD_PIPE && (f->flags & CK_FDF_EXTERNAL); j++)
            for (uint32_t l = 0; l < imgs[j].nfds; l++)
                if (imgs[j].fds[l].kind == CK_FD_PIPE && imgs[j].fds[l].dev == f->dev &&
                    imgs[j].fds[l].ino == f->ino)
                    f->flags &= ~(uint32_t)CK_FDF_EXTERNAL;
    }
    note_outside_pipes(t->m[i].pid, im);
    for (uint32_t x = 0; x < im->nfds; x++)
        im->fds[x].flags = saved[x];
    free(saved);
}

/* Unix connections to outside the program cannot be carried over: name
 * them and what they become. */
static void note_outside_sockets(int pid, const struct ck_image *img)
{
    char list[1024];
    if (ck_unix_outside(img, list, sizeof list) > 0)
        ck_msg("checkpoint %d: note: %s: the other end is outside the program; after restore "
               "such a connection is closed by its peer (reads see the waiting bytes, then end "
               "of file; writes fail with EPIPE; epoll reports EPOLLHUP)", pid, list);
}

/* Events queued in an inotify instance cannot be saved (reading them
 * would take them from the program): say how many are lost. */
static void note_inotify_events(int pid, const struct ck_image *img)
{
    for (uint32_t i = 0; img->fdstate && i < img->nfds; i++) {
        const struct ck_inotify *h = (const void *)img->fdstate[i].data;
        if (img->fds[i].kind == CK_FD_INOTIFY && h && img->fdstate[i].len >= sizeof *h &&
            h->queued)
            ck_msg("checkpoint %d: note: fd %d: %u bytes of inotify events were waiting to be "
                   "read; they are not in the image (after restore only new events arrive)",
                   pid, img->fds[i].fd, h->queued);
    }
}

/* Written files too large to be saved at their checkpoint version
 * (fds/file.c): restore will use them as they are then. */
static void note_file_versions(int pid, const struct ck_image *img)
{
    for (uint32_t i = 0; i < img->nfds; i++)
        if (img->fds[i].kind == CK_FD_FILE && img->fds[i].hash_kind == CK_HASH_VER_TOOBIG)
            ck_msg("checkpoint %d: note: fd %d: %s (%llu bytes) is larger than the file version "
                   "limit (CKSHIM_FILE_VERSION_MAX), so it is not saved with the checkpoint: "
                   "after restore it is used as it is then", pid, img->fds[i].fd,
                   img->fd_paths[i], (unsigned long long)img->fds[i].size);
}

/* --no-file-versions and --shared-file PATH (by its file: the program
 * may name it otherwise), and --priority. */
static int no_versions;
static int idle_writer;               /* --priority idle */
static long long idle_limit_ms = 30000; /* --idle-limit */
static int idle_limit_given;
static uint32_t nshared;
static uint64_t shared[CK_MAX_SHARED][2];

static void request_opts(struct ck_ctl_req *req)
{
    if (idle_writer) {
        req->flags |= CK_CKPT_IDLE;
        req->idle_ms = (uint32_t)idle_limit_ms;
    }
    if (no_versions)
        req->flags |= CK_CKPT_NO_VERSIONS;
    req->nshared = nshared;
    memcpy(req->shared, shared, sizeof req->shared);
}

/* Make sure the image in the temporary file is complete and on disk
 * before it replaces anything. Returns 0 or -1 (said why). */
static int verify_tmp(int pid, int outfd)
{
    if (fsync(outfd) < 0) {
        ck_msg("checkpoint %d: fsync %s: %s", pid, tmp_path, strerror(errno));
        return -1;
    }
    char err[512];
    struct ck_image img;
    memset(&img, 0, sizeof(img));
    if (lseek(outfd, 0, SEEK_SET) < 0) {
        ck_msg("checkpoint %d: lseek %s: %s", pid, tmp_path, strerror(errno));
        return -1;
    }
    int r = ck_image_read(outfd, &img, 0, err, sizeof(err));
    if (r == 0) {
        note_outside_pipes(pid, &img);
        note_outside_sockets(pid, &img);
        note_inotify_events(pid, &img);
        note_file_versions(pid, &img);
    }
    ck_image_free(&img);
    if (r < 0) {
        ck_msg("checkpoint %d: the shim reported success but the image does not read back: %s",
               pid, err);
        return -1;
    }
    return 0;
}

/* Put the verified image in place (rename over out, fsync the directory;
 * out NULL: it went to standard output; to_pipe: to a pipe, where it is
 * not known to be kept) and only then advance the counter from
 * stamp_base to the image's stamp. Returns 1 when the image
 * is committed, 0 when it is in place but may not be the newest (the
 * counter moved meanwhile: the program must not be ended), -1 when
 * nothing was committed (the previous image is untouched). */
static int commit_image(int pid, const char *out, int to_pipe, const struct ck_counter *counter)
{
    char err[512];
    uint64_t cur = 0;
    int counted = counter->kind != CK_COUNTER_NONE;
    if (counted && to_pipe) {
        /* Not known to be kept (see cmd_checkpoint): the image carries
         * the next stamp, so restore takes it as the newest (a "pending"
         * stamp), and the previous image stays restorable until then. */
        ck_msg("checkpoint %d: note: the image went to a pipe, so the counter for '%s' was not "
               "advanced: this image (stamp %llu) restores as the newest, and so does the "
               "previous one until one of them is restored",
               pid, stamp_id, (unsigned long long)(stamp_base + 1));
        return 1;
    }
    if (counted && out && ck_counter_get(counter, stamp_id, &cur, err, sizeof err) == 0 &&
        cur != stamp_base) {
        ck_msg("checkpoint %d: the counter for '%s' moved from %llu to %llu during this "
               "checkpoint (another checkpoint or restore with the same --id?); %s not replaced",
               pid, stamp_id, (unsigned long long)stamp_base, (unsigned long long)cur, out);
        return -1;
    }
    if (out) {
        if (rename(tmp_path, out) < 0) {
            int e = errno;
            ck_msg("checkpoint %d: cannot rename %s to %s: %s%s; %s not replaced", pid, tmp_path,
                   out, strerror(e),
                   e == EPERM || e == EACCES ? " (is it another user's file in a shared "
                                               "directory such as /tmp?)"
                                             : "",
                   out);
            return -1;
        }
        have_tmp = 0;
        char dir[PATH_MAX];
        const char *base;
        split_path(out, dir, sizeof(dir), &base);
        test_hook("after-rename");
        int fr = ck_fsync_dir(dir);
        if (fr < 0)
            ck_msg("checkpoint %d: warning: cannot fsync the directory %s: %s", pid, dir,
                   strerror(-fr));
    }
    if (!counted)
        return 1;
    if (ck_counter_fetch_incr_if(counter, stamp_id, stamp_base, &cur, err, sizeof err) < 0) {
        ck_msg("checkpoint %d: warning: %s; the counter was not advanced: this image (stamp "
               "%llu) restores as the newest, and so does the previous one until then",
               pid, err, (unsigned long long)(stamp_base + 1));
        return 1;
    }
    if (cur != stamp_base) {
        ck_msg("checkpoint %d: warning: the counter for '%s' moved to %llu during this "
               "checkpoint (another checkpoint or restore with the same --id?); this image "
               "(stamp %llu) may be refused as stale",
               pid, stamp_id, (unsigned long long)cur, (unsigned long long)(stamp_base + 1));
        return 0;
    }
    return 1;
}

/* Temporary files ".BASE.tmp.PID.XXXXXX" in dir left by a coord (PID) that
 * no longer runs (killed with -9, machine crash): remove ours, and say so. */
static void remove_stale_tmp(int pid, const char *dir, const char *base)
{
    char prefix[NAME_MAX + 16];
    int pl = snprintf(prefix, sizeof prefix, ".%s.tmp.", base);
    if (pl < 0 || (size_t)pl >= sizeof prefix)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, (size_t)pl) != 0)
            continue;
        char *end;
        long owner = strtol(e->d_name + pl, &end, 10);
        if (end == e->d_name + pl || *end != '.' || strlen(end) != 7 || owner <= 0 ||
            owner > INT_MAX || owner == getpid())
            continue;
        if (kill((pid_t)owner, 0) == 0 || errno != ESRCH)
            continue; /* that checkpoint may still be running */
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            st.st_uid != getuid())
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            ck_msg("checkpoint %d: removed %s/%s, left by an interrupted checkpoint", pid, dir,
                   e->d_name);
    }
    closedir(d);
}

/* The progress line (--quiet turns it off): how far each process's
 * writer is (CK_STATUS_PROGRESS), by its place in the tree (0 for a
 * single process). */
static int quiet;
static uint64_t *prog_done, *prog_total;
static int prog_n;

static void progress_note(int slot, const struct ck_ctl_rep *rep)
{
    if (slot < 0 || slot >= prog_n)
        return;
    prog_done[slot] = rep->raw_bytes;
    prog_total[slot] = rep->bytes;
    uint64_t d = 0, t = 0;
    for (int i = 0; i < prog_n; i++) {
        d += prog_done[i];
        t += prog_total[i] > prog_done[i] ? prog_total[i] : prog_done[i];
    }
    ck_progress_update(d, t);
}

/* Room for n processes' progress; 0, or -1 (no progress line then). */
static int progress_slots(int n)
{
    free(prog_done);
    free(prog_total);
    prog_done = calloc((size_t)n, sizeof *prog_done);
    prog_total = calloc((size_t)n, sizeof *prog_total);
    prog_n = prog_done && prog_total ? n : 0;
    return prog_n ? 0 : -1;
}

/* ck_ctl_recv for a checkpoint's answers, which can take minutes (a
 * large image): the process is looked at every second meanwhile, so that
 * one stopped during the checkpoint (its shim cannot answer until it is
 * continued) ends the wait at once. -ESRCH then. Interim progress
 * replies go to the progress line as process slot's. */
static int recv_watching(int fd, struct ck_ctl_rep *rep, int pid, int slot)
{
    for (int waited = 0; waited < REPLY_TIMEOUT_MS; waited += 1000) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, 1000);
        if (pr < 0 && errno != EINTR)
            return -errno;
        if (pr > 0) {
            int r = ck_ctl_recv(fd, rep, REPLY_TIMEOUT_MS - waited);
            if (r == 0 && rep->status == CK_STATUS_PROGRESS) {
                progress_note(slot, rep);
                waited -= 1000; /* the writer is at work: no time spent waiting */
                continue;
            }
            return r;
        }
        struct ck_procinfo pi;
        if (ck_proc_info(pid, &pi) == 0 && (pi.state == 'T' || pi.state == 't'))
            return -ESRCH;
    }
    return -ETIMEDOUT;
}

/* The post-checkpoint script (when a pre-checkpoint one ran): its failure
 * is reported, it changes nothing (the image, if any, is in place). */
static void post_checkpoint(int pid, const char *result)
{
    char why[256];
    if (script[0] && script_image[0] &&
        ck_action_run(script, "post-checkpoint", pid, script_image, result, why, sizeof why) < 0)
        ck_msg("checkpoint %d: warning: the post-checkpoint action script %s failed (%s)", pid,
               script, why);
}

static double ns_to_s(uint64_t ns)
{
    return (double)ns / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Close every connection of a tree checkpoint: a shim still waiting for
 * coord (to capture, for its stamp or for the commit) sees it go away and
 * releases its process untouched. */
static void tree_close(int *conns, int *tmps, int n)
{
    for (int i = 0; i < n; i++) {
        if (conns[i] >= 0)
            close(conns[i]);
        if (tmps[i] >= 0)
            close(tmps[i]);
        conns[i] = tmps[i] = -1;
    }
}

/* Send op (with the stamp) to every process of the tree. */
static int tree_send(int *conns, int n, uint32_t op, uint32_t flags, uint64_t stamp)
{
    struct ck_ctl_req q;
    memset(&q, 0, sizeof q);
    q.magic = CK_CTL_MAGIC;
    q.op = op;
    q.flags = flags;
    q.counter_stamp = stamp;
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (conns[i] >= 0 && ctl_send(conns[i], &q) < 0)
            bad = -1;
    return bad;
}

/* The processes of a tree capture in parallel, and a socket inherited
 * across fork is one socket: two processes walking its queue at once
 * would move each other's SO_PEEK_OFF (a walk cut short, the program's
 * offset lost). So before the capture coord finds the descriptions the
 * processes share (kcmp, while all are parked) and leaves each queue to
 * the holder with the lowest index, the one whose entry the tree's merged
 * socket set keeps (ck_tree_socks_merge); the others are told the numbers
 * of their descriptors not to walk in the CK_OP_CAPTURE request
 * (CK_CAPTURE_NOPEEK: a bitmap of 2048 descriptors from nopeek_base).
 * Numbers that do not fit one bitmap make the processes capture one after
 * the other. The share table (which descriptors of different processes
 * are one open file description, by kcmp while every process is parked)
 * is left in *shares for the tree header; *known: it is complete.
 * Returns 0, TREE_CHANGED (the tree is not the one listed any more), or
 * -1 (told). */
static int tree_collect(const struct ck_tree *t, int *conns, struct ck_ctl_rep *reps, int want,
                        const char *phase, int quiet_if_changed);

/* tree_checkpoint's answer when the tree changed before every process was
 * parked (a child forked or ended): nothing was taken; try again. */
#define TREE_CHANGED 100
static int tree_same(const struct ck_tree *t);

static int tree_capture(const struct ck_tree *t, int *conns, struct ck_ctl_rep *reps,
                        struct ck_tree_share **shares, uint64_t *nshares, int *known)
{
    int n = t->n, serial = 0;
    struct ck_ctl_req *qs = n > 0 ? calloc((size_t)n, sizeof *qs) : NULL;
    if (!qs) {
        ck_msg("checkpoint %d: out of memory", t->m[0].pid);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        qs[i].magic = CK_CTL_MAGIC;
        qs[i].op = CK_OP_CAPTURE;
    }
    /* (the same table goes into the tree header: descriptors do not
     * change while every process is parked; without it, what they share
     * is refused after the capture: tree_unshared) */
    char kerr[256];
    *known = ck_tree_shares(t, shares, nshares, kerr, sizeof kerr) == 0;
    const struct ck_tree_share *sh = *shares;
    uint64_t nsh = *known ? *nshares : 0;
    for (uint64_t a = 0; a < nsh; a++) {
        int first = 1;
        for (uint64_t b = 0; b < nsh && first; b++)
            first = sh[b].group != sh[a].group || sh[b].proc >= sh[a].proc;
        if (first)
            continue; /* the saver */
        struct ck_ctl_req *q = &qs[sh[a].proc];
        int fd = sh[a].fd;
        if (!(q->flags & CK_CAPTURE_NOPEEK)) {
            int lo = fd;
            for (uint64_t b = 0; b < nsh; b++)
                if (sh[b].proc == sh[a].proc && sh[b].fd < lo)
                    lo = sh[b].fd;
            q->flags |= CK_CAPTURE_NOPEEK;
            q->counter_stamp = (uint64_t)lo; /* nopeek_base */
        }
        uint64_t bit = (uint64_t)fd - q->counter_stamp;
        if (bit >= CK_NOPEEK_BITS)
            serial = 1;
        else
            ((uint64_t *)q->shared)[bit / 64] |= 1ull << (bit % 64);
    }
    /* The holder of a pseudo-terminal's master whose slave other
     * processes hold reads the pair's queues with the slave's modes
     * changed for the moment (fds/tty.c): it captures last, after the
     * others took their terminal's modes, one process after the other. */
    char *late = calloc((size_t)n, 1);
    if (late && ck_tree_pty_late(t, late))
        serial = 1;
    /* Processes sharing one descriptor table (CLONE_FILES) each see the
     * others' transient descriptors of a capture (a /proc listing, a
     * backtrace's pipe): one after the other. */
    for (int i = 1; i < n && !serial; i++)
        serial = ck_tree_shares_table(t, i);
    int ret = 0;
    for (int k = 0; k < 2 * n && ret == 0; k++) {
        int i = k % n;
        if ((late && late[i]) != (k >= n))
            continue;
        if (conns[i] >= 0)
            ctl_send(conns[i], &qs[i]); /* a failure is named by the answer's */
        if (!serial || t->m[i].zombie)
            continue;
        /* one after the other: this one's capture is over before the next */
        int r = recv_watching(conns[i], &reps[i], t->m[i].pid, i);
        if (r < 0 || reps[i].status != CK_STATUS_NEED_STAMP) {
            char who[160];
            ck_tree_describe(t->m[i].pid, who, sizeof who);
            ck_msg("checkpoint %d: process %s: %s; no image written, every process goes on",
                   t->m[0].pid, who,
                   r < 0              ? strerror(-r)
                   : reps[i].msg[0]   ? reps[i].msg
                                      : strerror(reps[i].status < 0 ? -reps[i].status : EPROTO));
            ret = -1;
        }
    }
    free(qs);
    free(late);
    if (ret == 0 && !tree_same(t))
        return TREE_CHANGED;
    /* (a refusal now is reported even if the tree changed meanwhile: a
     * child that forked or ended was seen by tree_same above) */
    if (ret == 0 && !serial)
        ret = tree_collect(t, conns, reps, CK_STATUS_NEED_STAMP, "capturing its state", 2);
    return ret;
}

/* The memory the processes of t hold (resident, /proc/PID/statm), in
 * bytes; from TREE_READY_RSS on a tree prepares before it parks (the
 * CK_CKPT_READY round: tree_checkpoint). */
#define TREE_READY_RSS (64ULL << 20)
static uint64_t tree_rss(const struct ck_tree *t)
{
    uint64_t sum = 0;
    for (int i = 0; i < t->n; i++) {
        char path[64], st[256];
        unsigned long long size, rss;
        snprintf(path, sizeof path, "/proc/%d/statm", t->m[i].pid);
        if (!t->m[i].zombie && ck_read_file(path, st, sizeof st) > 0 &&
            sscanf(st, "%llu %llu", &size, &rss) == 2)
            sum += (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
    }
    return sum;
}


/* Is the tree below t's root still t (the same pids)? Once every process
 * is parked none can fork: a tree that is the same then is complete. */
static int tree_same(const struct ck_tree *t)
{
    static struct ck_tree now;
    if (ck_tree_discover(t->m[0].pid, &now) < 0 || now.n != t->n)
        return 0;
    for (int i = 0; i < now.n; i++) {
        int found = 0;
        for (int j = 0; j < t->n && !found; j++)
            found = now.m[i].pid == t->m[j].pid && now.m[i].zombie == t->m[j].zombie;
        if (!found)
            return 0;
    }
    return 1;
}

/* The pid the tree knows a zombie by: its pid, unless a process of the
 * tree says (its NEED_STAMP answer: "tree REAL:VPID ...") that it was
 * restored under another. */
static int zombie_vpid(const struct ck_tree *t, const struct ck_ctl_rep *reps, int real)
{
    for (int i = 0; i < t->n; i++) {
        if (t->m[i].zombie || strncmp(reps[i].msg, "tree ", 5))
            continue;
        for (const char *p = reps[i].msg + 5; *p;) {
            char *end;
            long r = strtol(p, &end, 10);
            if (end == p || *end != ':')
                break;
            long v = strtol(end + 1, &end, 10);
            if (r == real)
                return (int)v;
            p = *end ? end + 1 : end;
        }
    }
    return real;
}

/* The group number to save for a zombie in kernel group pg: the kernel's
 * when a living process of the tree is in that group (restore matches
 * the zombie with them by it); else, for a group of zombies only, the
 * number the program knows it by when a process of the tree says so
 * ("pgrp REAL:VPID ..." in its NEED_STAMP answer: the group was made
 * again by a restore), unless that number is some living group's now. */
static int zombie_pgid(const struct ck_tree *t, const struct ck_ctl_rep *reps,
                       const struct ck_tree_entry *ents, int pg)
{
    for (int i = 0; i < t->n; i++)
        if (!t->m[i].zombie && ents[i].pgid == pg)
            return pg;
    int known = pg;
    for (int i = 0; i < t->n && known == pg; i++) {
        const char *p = t->m[i].zombie ? NULL : strstr(reps[i].msg, "pgrp ");
        if (!p || (p != reps[i].msg && p[-1] != ' '))
            continue;
        for (p += 5; *p;) {
            char *end;
            long r = strtol(p, &end, 10);
            if (end == p || *end != ':')
                break;
            long v = strtol(end + 1, &end, 10);
            if (r == pg && v > 0)
                known = (int)v;
            p = *end ? end + 1 : end;
        }
    }
    for (int i = 0; i < t->n; i++)
        if (!t->m[i].zombie && ents[i].pgid == known)
            return pg;
    return known;
}

/* Collect one answer from every process of the tree; each must have the
 * status want. Returns 0, or -1 after a message naming the first process
 * that did not answer so (none if quiet_if_changed and the tree changed:
 * TREE_CHANGED then). */
/* Collect the answer of process i of the tree, which must have the status
 * want. Returns 0, or -1 after a message naming the process if it did not
 * answer so; none, and TREE_CHANGED, if quiet_if_changed and the process
 * exec'd, or (quiet_if_changed 1, while parking) the tree changed. */
static int tree_collect_one(const struct ck_tree *t, int *conns, struct ck_ctl_rep *reps, int i,
                            int want, const char *phase, int quiet_if_changed)
{
    int p = t->m[i].pid;
    if (t->m[i].zombie)
        return 0;
    int r = recv_watching(conns[i], &reps[i], p, i);
    if (r == 0 && reps[i].status == want)
        return 0;
    char who[160];
    if (quiet_if_changed == 1 && !tree_same(t))
        return TREE_CHANGED;
    /* The connection closed while the process lives on: it exec'd (which
     * ends the shim's manager with the old program) after its request
     * came; the new program's shim serves it again: take the tree again. */
    struct ck_procinfo pi;
    if (quiet_if_changed && (r == -EPIPE || r == -ECONNRESET) && ck_proc_info(p, &pi) == 0 &&
        pi.state != 'Z' && pi.state != 'X')
        return TREE_CHANGED;
    /* It ended after its request came, before it parked (a shell's short
     * command): take the tree again. */
    if (quiet_if_changed == 1 && r < 0 && !ck_proc_alive(p))
        return TREE_CHANGED;
    ck_tree_describe(p, who, sizeof who);
    if (r == -ESRCH)
        ck_msg("checkpoint %d: process %s was stopped during the checkpoint (%s); no image "
               "written, every process goes on", t->m[0].pid, who, phase);
    else if (r < 0)
        ck_msg("checkpoint %d: process %s did not answer (%s: %s); no image written, every "
               "other process goes on", t->m[0].pid, who, phase, strerror(-r));
    else
        ck_msg("checkpoint %d: process %s: %s; no image written, every process goes on",
               t->m[0].pid, who,
               reps[i].msg[0] ? reps[i].msg : strerror(reps[i].status < 0 ? -reps[i].status
                                                                          : EPROTO));
    return -1;
}

/* The same for every process of the tree (the first that fails). */
static int tree_collect(const struct ck_tree *t, int *conns, struct ck_ctl_rep *reps, int want,
                        const char *phase, int quiet_if_changed)
{
    for (int i = 0; i < t->n; i++) {
        int r = tree_collect_one(t, conns, reps, i, want, phase, quiet_if_changed);
        if (r != 0)
            return r;
    }
    return 0;
}

static int count_up(void *arg)
{
    return (*(int *)arg)++;
}

/* What processes of a tree share and a tree restore cannot make shared
 * again (docs/DESIGN.md, "Process trees"): descriptors the share table
 * (sh, from kcmp) does not know, sockets whose pairing across processes
 * fails.
 * Returns 0, or -1 with the first such thing named in err. */
static int tree_unshared(const struct ck_tree *t, struct ck_image *imgs,
                         const struct ck_tree_share *sh, uint64_t nsh, int known, char *err,
                         size_t errlen)
{
    /* An epoll instance watching a file its process no longer holds:
     * restorable only if the instance is shared and made (by the holder
     * of the lowest index: restore.c make_tree_descs) by another process,
     * whose own list is the one added again (redis's BGSAVE child) */
    for (int i = 0; i < t->n; i++)
        for (uint32_t x = 0; x < imgs[i].nfds; x++) {
            const struct ck_fd *f = &imgs[i].fds[x];
            int tfd = f->kind == CK_FD_EPOLL ? ck_epoll_unheld(imgs[i].fd_paths[x]) : -1;
            if (tfd < 0)
                continue;
            int g = ck_tree_share_group(sh, nsh, i, f->fd), maker = -1;
            for (uint64_t k = 0; g >= 0 && k < nsh; k++)
                if ((int)sh[k].group == g && (maker < 0 || (int)sh[k].proc < maker))
                    maker = (int)sh[k].proc;
            if (maker >= 0 && maker != i)
                continue;
            snprintf(err, errlen, "process %d fd %d: epoll instance watches a file that is no "
                     "longer fd %d and that no descriptor holds, which ckshim cannot restore",
                     t->m[i].pid, f->fd, tfd);
            return -1;
        }
    for (int i = 0; i < t->n; i++) {
        const struct ck_image *a = &imgs[i];
        for (int j = i + 1; j < t->n; j++) {
            const struct ck_image *b = &imgs[j];
            for (uint32_t x = 0; x < a->nfds; x++) {
                const struct ck_fd *f = &a->fds[x];
                int sock = f->kind == CK_FD_UNIX || f->kind == CK_FD_INET;
                int mem = f->kind == CK_FD_MEMFD || f->kind == CK_FD_DELETED;
                for (uint32_t y = 0; y < b->nfds; y++) {
                    const struct ck_fd *g = &b->fds[y];
                    const char *what = NULL;
                    int ga = ck_tree_share_group(sh, nsh, i, f->fd),
                        gb = ck_tree_share_group(sh, nsh, j, g->fd);
                    int same = ga >= 0 && ga == gb;
                    if (sock && g->kind == f->kind && g->dev == f->dev && g->ino == f->ino &&
                        !same)
                        what = "the same socket, which ckshim could not tell is one open "
                               "file description (kcmp not allowed)";
                    else if (mem && g->kind == f->kind && g->dev == f->dev && g->ino == f->ino &&
                             !same && !known)
                        what = "the same memfd or deleted file, which ckshim could not tell "
                               "is one open file description or two (kcmp not allowed)";
                    else if (same && (f->kind == CK_FD_PIDFD ||
                                      (f->kind == CK_FD_PTY && !(f->flags & CK_FDF_PTY_MASTER))))
                        what = "one pidfd or pseudo-terminal slave description";
                    if (what) {
                        snprintf(err, errlen, "process %d fd %d and process %d fd %d are %s: "
                                 "ckshim cannot restore that between processes of a tree yet",
                                 t->m[i].pid, f->fd, t->m[j].pid, g->fd, what);
                        return -1;
                    }
                }
            }
        }
    }
    /* Sockets: pair them across the tree as restore will. */
    size_t nn = t->n > 0 ? (size_t)t->n : 1; /* (never less: gcc cannot tell) */
    int *alive = calloc(nn, sizeof *alive), *pids = calloc(nn, sizeof *pids);
    if (!alive || !pids) {
        free(alive);
        free(pids);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < t->n; i++) {
        alive[i] = !t->m[i].zombie;
        pids[i] = t->m[i].pid;
    }
    struct ck_tree_socks ts;
    int num = 1 << 20, merr;
    char why[768];
    merr = ck_tree_socks_merge(imgs, alive, pids, t->n, sh, nsh, count_up, &num, &ts, why,
                               sizeof why);
    free(alive);
    free(pids);
    if (merr < 0) {
        snprintf(err, errlen, "sockets between processes of the tree: %s", why);
        return -1;
    }
    ck_tree_socks_free(&ts);
    return 0;
}

/* Continue a stopped process for its checkpoint without letting it run
 * the program: every thread first gets the shim's checkpoint signal from
 * coord, which holds it in the shim's handler until the checkpoint starts
 * (preload/quiesce.c), then SIGCONT. */
static void tree_continue(int pid)
{
    char path[64];
    int sig = ck_shim_signal(pid);
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = sig > 0 ? opendir(path) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9')
            syscall(SYS_tgkill, pid, atoi(e->d_name), sig);
    if (d)
        closedir(d);
    kill(pid, SIGCONT);
}

static void stop_again(int pid, int sig, int asked);

/* Connect to pid's shim again while the last try (fd) says its socket is
 * still coming up: -EBUSY (a stopped process's shim, continued, not yet
 * serving), and with NEW also -ENOENT and -ECONNREFUSED (just forked, or
 * between the halves of an exec: bound but not yet listening), at most
 * TRIES times MS ms apart, while pid lives. Returns the last result. */
static int connect_coming(int pid, char *sock, size_t len, int fd, int new, int tries, int ms)
{
    for (int w = 0; w < tries && ck_proc_alive(pid) &&
                    (fd == -EBUSY || (new && (fd == -ENOENT || fd == -ECONNREFUSED)));
         w++) {
        sleep_ms(ms);
        fd = ck_ctl_connect(pid, sock, len, CONNECT_TIMEOUT_MS);
    }
    return fd;
}

/* Connect to the shim of the tree's root, pid (ck_ctl_connect). A
 * stopped one whose shim is called (-EBUSY: common/ctlproto.h,
 * CK_CALL_COMM) can answer only once it runs: continued here under its
 * shim's hold, as the checkpoint would do next (t->m[0].held: not
 * again), and called. */
static int connect_root(int pid, char *sock, size_t len, struct ck_tree *t)
{
    int fd = ck_ctl_connect(pid, sock, len, CONNECT_TIMEOUT_MS);
    /* in the middle of an exec (a script's `exec make`): its new shim
     * makes the socket a moment later */
    if ((fd == -ENOENT || fd == -ECONNREFUSED) && ck_shim_coming(pid, 2000) == 1)
        fd = ck_ctl_connect(pid, sock, len, CONNECT_TIMEOUT_MS);
    if (fd != -EBUSY || t->m[0].stopsig <= 0 || t->m[0].held)
        return fd;
    tree_continue(pid);
    t->m[0].held = 1;
    fd = connect_coming(pid, sock, len, fd, 0, 100, 10);
    if (fd < 0) {
        /* not reached after all: stopped again, as it was */
        stop_again(pid, t->m[0].stopsig, 0);
        t->m[0].held = 0;
    }
    return fd;
}

/* A process that was stopped by SIG and that coord continued for its
 * checkpoint is stopped again; back in state T before this returns, so
 * that a checkpoint taken again finds it so. Its parent sees it
 * continued and stopped (SIGCHLD, waitpid with WCONTINUED; a shell may
 * say so). One whose shim got the request (ASKED) stops itself before
 * its threads leave the park (common/ctlproto.h, stop_sig): coord only
 * waits (up to 5 s) and never signals it (its parent may have continued
 * it already: a stop from here would be a second one). One that was not
 * asked is still held by its shim (preload/quiesce.c), whose hold ends
 * when the signal comes: stopped from here at once. */
static void stop_again(int pid, int sig, int asked)
{
    int wait_ms = asked ? 5000 : 1000;
    if (!ck_stop_signal((uint32_t)sig))
        return; /* (never a signal that would do anything else) */
    if (!asked)
        kill(pid, sig);
    for (int w = 0;; w += 5) {
        struct ck_pstat ps;
        if (ck_pstat_read(pid, &ps) < 0 || ps.state == 'T' || ps.state == 'Z' ||
            ps.state == 'X' || w >= wait_ms)
            break;
        sleep_ms(5);
    }
}

/* Every process of T that was stopped (tree_checkpoint continued it). */
static void tree_stop_again(const struct ck_tree *t, const char *asked)
{
    for (int i = 0; i < t->n; i++)
        if (!t->m[i].zombie && t->m[i].stopsig > 0)
            stop_again(t->m[i].pid, t->m[i].stopsig, asked && asked[i]);
}

/* --json: what was written, as one JSON object on standard output (the
 * prose summary still goes to standard error). */
static int json_out;

/* What the forked writers of an image cost (CK_WRITER_NOTE in the
 * shims' good replies; n 0: none said, e.g. --no-fork or an older shim). */
struct writer_cost {
    int n, nidle;
    double cpu_ns;
    long long normal_after_ns;          /* the latest an idle writer went normal, -1 */
};

static void writer_cost_add(struct writer_cost *wc, const struct ck_ctl_rep *rep)
{
    size_t l = strlen(CK_WRITER_NOTE);
    long long ns, after = -1;
    char pol[16];
    if (strncmp(rep->msg, CK_WRITER_NOTE, l) ||
        sscanf(rep->msg + l, "%lld %15s %lld", &ns, pol, &after) < 2)
        return;
    wc->n++;
    wc->nidle += !strcmp(pol, "idle");
    wc->cpu_ns += (double)ns;
    if (after > wc->normal_after_ns)
        wc->normal_after_ns = after;
}

/* ", writer 2.81 s of CPU at idle priority" for the checkpoint's line. */
static const char *writer_cost_text(const struct writer_cost *wc, char *buf, size_t len)
{
    if (!wc->n)
        snprintf(buf, len, "%s", "");
    else if (wc->normal_after_ns >= 0)
        snprintf(buf, len, ", writer %.2f s of CPU at idle priority, normal after %.1f s "
                 "(--idle-limit)", wc->cpu_ns / 1e9, wc->normal_after_ns / 1e9);
    else
        snprintf(buf, len, ", writer %.2f s of CPU at %s priority", wc->cpu_ns / 1e9,
                 wc->nidle == wc->n ? "idle" : wc->nidle ? "mixed" : "normal");
    return buf;
}

struct summary {
    int pid, nprocs, killed;
    const char *image;                  /* NULL: standard output */
    uint64_t image_bytes, pages, memory_bytes, stamp;
    unsigned threads;
    double total_ms, pause_ms;
    struct writer_cost wc;
};

static void print_json(const struct summary *m)
{
    if (!json_out)
        return;
    struct ck_json j;
    ck_json_init(&j, stdout);
    ck_json_open(&j, NULL, '{');
    ck_json_ku64(&j, "pid", (uint64_t)m->pid);
    if (m->image)
        ck_json_kstr(&j, "image", m->image);
    else
        ck_json_knull(&j, "image");
    ck_json_ku64(&j, "processes", (uint64_t)m->nprocs);
    ck_json_ku64(&j, "threads", m->threads);
    ck_json_ku64(&j, "image_bytes", m->image_bytes);
    ck_json_ku64(&j, "pages", m->pages);
    ck_json_ku64(&j, "memory_bytes", m->memory_bytes);
    if (m->total_ms >= 0)
        ck_json_kdouble(&j, "checkpoint_ms", m->total_ms);
    ck_json_kdouble(&j, "pause_ms", m->pause_ms);
    if (m->wc.n) {
        ck_json_kdouble(&j, "writer_cpu_ms", m->wc.cpu_ns / 1e6);
        ck_json_kstr(&j, "writer_priority", m->wc.nidle == m->wc.n ? "idle" : "normal");
        if (m->wc.normal_after_ns >= 0)
            ck_json_kdouble(&j, "writer_normal_after_ms", m->wc.normal_after_ns / 1e6);
    }
    if (m->stamp)
        ck_json_ku64(&j, "stamp", m->stamp);
    else
        ck_json_knull(&j, "stamp");
    ck_json_kbool(&j, "killed", m->killed);
    ck_json_close(&j, '}');
    ck_json_end(&j);
}

/* The process (the root) could not be reached again for another try:
 * say why in its words when it is gone. */
static void cannot_start_again(int pid, int err)
{
    if (!ck_proc_alive(pid))
        ck_msg("checkpoint %d: the process exited during the checkpoint; no image written",
               pid);
    else
        ck_msg("checkpoint %d: cannot start again: %s", pid, strerror(err));
}

/* Two tree checkpoints that met would each hold the shim of a process
 * the other waits for (a shim serves one request at a time: the two
 * coords' connections are taken in different orders), and wait for each
 * other until their time-outs, the whole tree parked meanwhile. So a
 * tree checkpoint lists and reaches its processes only under the user's
 * lock (tree.lock in the socket directory), held until it is over (its
 * writers, children of the tree's processes for a moment, gone too: a
 * second coord listing the tree then saw them as strangers sharing its
 * memory): the next waits its turn. A checkpoint of one process holds one shim and waits for no
 * other: it takes no lock. */
#define TREE_LOCK_WAIT_MS 60000
static int tree_lock_fd = -1;

static int tree_lock(int pid)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    if (tree_lock_fd >= 0 || ck_sock_dir(dir, sizeof dir) < 0)
        return 0;
    snprintf(path, sizeof path, "%s/tree.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        if (fd >= 0)
            close(fd);
        return 0; /* (no lock to take: as before) */
    }
    for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; waited += 10) {
        if (errno != EWOULDBLOCK || waited >= TREE_LOCK_WAIT_MS) {
            ck_msg("checkpoint %d: another coord has been checkpointing a process tree of "
                   "this user for more than %d s (%s is locked); nothing was done, every "
                   "process goes on", pid, TREE_LOCK_WAIT_MS / 1000, path);
            close(fd);
            return -1;
        }
        sleep_ms(10);
    }
    tree_lock_fd = fd;
    return 0;
}

static void tree_unlock(void)
{
    if (tree_lock_fd >= 0)
        close(tree_lock_fd);
    tree_lock_fd = -1;
}

/* Process i of the tree ended since it was found (a shell's short
 * command), before it was reached: a zombie of the tree now, or already
 * waited for by its parent, which has not parked yet. Then it is taken as
 * a zombie, and tree_grow lists the tree again once every process is
 * parked (dropping it if it was waited for). Returns 1 if so. */
static int tree_ended(struct ck_tree *t, int i)
{
    int st = ck_stat_exit_code(t->m[i].pid, "Z");
    if (st < 0 && (kill(t->m[i].pid, 0) == 0 || errno != ESRCH))
        return 0;
    t->m[i].zombie = 1;
    t->m[i].status = st < 0 ? 0 : st;
    return 1;
}

/* Reach process i of the tree: its control socket (conn, the root's, is
 * given), and an open file description of its own of the image (outfd),
 * its stream's way in (its offset is set before its turn: ctlproto.h,
 * CK_OP_WRITE). Returns 0, TREE_CHANGED, or -1 (told). */
static int tree_reach(struct ck_tree *t, int i, int conn, int outfd, int *conns, int *tmps)
{
    char who[160], sock[PATH_MAX];
    if (t->m[i].zombie)
        return 0; /* no shim: only its exit status goes into the image */
    ck_tree_describe(t->m[i].pid, who, sizeof who);
    conns[i] = conn;
    if (i > 0) {
        conns[i] = ck_ctl_connect(t->m[i].pid, sock, sizeof sock, CONNECT_TIMEOUT_MS);
        /* one stopped right after its fork, just forked, or between the
         * halves of an exec (a shell's command) makes its socket now */
        conns[i] = connect_coming(t->m[i].pid, sock, sizeof sock, conns[i], 1, 200,
                                  t->m[i].stopsig > 0 ? 10 : 2);
        if (conns[i] < 0 && tree_ended(t, i))
            return 0;
        if (conns[i] == -EMFILE || conns[i] == -ENFILE) {
            struct rlimit nf;
            getrlimit(RLIMIT_NOFILE, &nf);
            ck_msg("checkpoint %d: coord cannot hold a connection to each of the tree's %d "
                   "processes: %s (its descriptor limit, RLIMIT_NOFILE, is %llu; coord needs "
                   "three per process: raise the hard limit); nothing was done, every process "
                   "goes on", t->m[0].pid, t->n, strerror(-conns[i]),
                   (unsigned long long)nf.rlim_cur);
            conns[i] = -1;
            return -1;
        }
        if ((conns[i] < 0 || ck_ctl_peer_pid(conns[i]) != t->m[i].pid) &&
            (!tree_same(t) || conns[i] == -ENOENT || conns[i] == -ECONNREFUSED)) {
            /* it ended since it was found, or it is between the halves of
             * an exec (its socket closed, the new shim's not made yet: a
             * shell's command): take the tree again (ck_tree_check names
             * one that stays without a shim) */
            return TREE_CHANGED;
        }
        if (conns[i] < 0 || ck_ctl_peer_pid(conns[i]) != t->m[i].pid) {
            ck_msg("checkpoint %d: cannot reach the shim of process %s (%s); nothing was "
                   "done, every process goes on", t->m[0].pid, who,
                   conns[i] < 0 ? strerror(-conns[i]) : "another process serves its socket");
            return -1;
        }
    }
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", outfd);
    tmps[i] = open(self, O_RDWR | O_CLOEXEC);
    if (tmps[i] < 0) {
        ck_msg("checkpoint %d: cannot open %s again: %s", t->m[0].pid, tmp_path,
               strerror(errno));
        return -1;
    }
    return 0;
}

/* Send process i the checkpoint request. Returns 0, TREE_CHANGED, or -1
 * (told). */
static int tree_ask(struct ck_tree *t, int i, int *conns, const int *tmps,
                    struct ck_ctl_req *req, char *asked)
{
    if (t->m[i].zombie)
        return 0;
    req->stop_sig = t->m[i].stopsig > 0 ? (uint32_t)t->m[i].stopsig : 0;
    pthread_mutex_lock(&hb.mu); /* (never between the keep-alives' bytes) */
    int sr = ck_ctl_send(conns[i], req, tmps[i]);
    asked[i] = sr == 0;
    pthread_mutex_unlock(&hb.mu);
    req->stop_sig = 0;
    if (sr == 0)
        return 0;
    if (i > 0 && tree_ended(t, i)) {
        close(conns[i]);
        conns[i] = -1;
        return 0;
    }
    /* (one that exited is still listed until its parent waits; one that
     * exec'd since it was reached closed the connection) */
    int e = errno;
    if (!tree_same(t) || !ck_proc_alive(t->m[i].pid) || e == EPIPE || e == ECONNRESET)
        return TREE_CHANGED; /* it ended since it was found: take the tree again */
    ck_msg("checkpoint %d: cannot send the request to process %d: %s", t->m[0].pid,
           t->m[i].pid, strerror(e));
    return -1;
}

/* Every process listed is parked, and none of them can fork now; but a
 * child one forked after the tree was listed and before it parked (a
 * shell's $(...) or command, every few milliseconds in a loop) is in the
 * tree too, living or already a zombie, and a listed child that ended
 * before it was reached may have been waited for since. Rather than take
 * the whole tree again (which such a loop, or make -j, would make fail
 * every time), the tree is listed again and made what it is now: the
 * ended ones dropped, the newcomers added, checked, reached and parked,
 * until it stops changing. Returns 0, TREE_CHANGED (take it again: a
 * parked process is gone, a newcomer cannot be taken now, or it keeps
 * changing), or -1 (told). */
#define TREE_GROW_ROUNDS 8
struct tree_slots {
    int *conns, *tmps, *pidfds, *pids;
    struct ck_ctl_rep *reps;
    char *asked;
};

static int tree_relist(struct ck_tree *t, const struct ck_tree *now, struct tree_slots *sl,
                       int *added)
{
    static struct ck_tree was;
    static int conns[CK_TREE_MAX], tmps[CK_TREE_MAX], pidfds[CK_TREE_MAX], pids[CK_TREE_MAX];
    static char asked[CK_TREE_MAX], seen[CK_TREE_MAX];
    size_t n0 = (size_t)t->n;
    struct ck_ctl_rep *reps = malloc(sizeof *reps * n0);
    if (!reps)
        return TREE_CHANGED;
    was = *t;
    memcpy(reps, sl->reps, sizeof *reps * n0);
    memcpy(conns, sl->conns, sizeof *conns * n0);
    memcpy(tmps, sl->tmps, sizeof *tmps * n0);
    memcpy(pidfds, sl->pidfds, sizeof *pidfds * n0);
    memcpy(pids, sl->pids, sizeof *pids * n0);
    memcpy(asked, sl->asked, n0);
    memset(seen, 0, n0);
    int ret = 0;
    *added = 0;
    t->n = 0;
    for (int i = 0; i < now->n && !ret; i++) {
        int j = 0;
        while (j < was.n && was.m[j].pid != now->m[i].pid)
            j++;
        struct ck_tree_member *m = &t->m[t->n];
        *m = now->m[i];
        /* (its parent is listed before it, in t already) */
        m->parent = -1;
        for (int k = 0; k < t->n && now->m[i].parent >= 0 && m->parent < 0; k++)
            if (t->m[k].pid == now->m[now->m[i].parent].pid)
                m->parent = k;
        /* a parked process cannot end, a zombie cannot live again; a
         * stopped newcomer is not taken here */
        if ((i > 0 && m->parent < 0) || (j < was.n && was.m[j].zombie != m->zombie) ||
            (j == was.n && m->stopsig > 0 && !m->zombie) || t->n >= CK_TREE_MAX) {
            ret = TREE_CHANGED;
            break;
        }
        int x = t->n++;
        sl->pids[x] = m->pid;
        if (j < was.n) {
            /* as it was listed (stopped: coord continued it since) */
            seen[j] = 1;
            int par = m->parent;
            *m = was.m[j];
            m->parent = par;
            sl->conns[x] = conns[j];
            sl->tmps[x] = tmps[j];
            sl->pidfds[x] = pidfds[j];
            sl->asked[x] = asked[j];
            sl->reps[x] = reps[j];
            continue;
        }
        m->held = 0;
        sl->conns[x] = sl->tmps[x] = -1;
        sl->pidfds[x] = m->zombie ? -1 : open_pidfd(m->pid);
        sl->asked[x] = 0;
        memset(&sl->reps[x], 0, sizeof sl->reps[x]);
        ++*added;
    }
    /* a listed process not there any more: a zombie waited for (one
     * that ended before it was reached); a parked one cannot have gone */
    for (int j = 0; j < was.n && !ret; j++)
        if (!seen[j] && !was.m[j].zombie)
            ret = TREE_CHANGED;
    if (ret) {
        /* as it was (the caller takes the tree again from it) */
        for (int x = 0; x < t->n; x++) {
            int j = 0;
            while (j < was.n && was.m[j].pid != t->m[x].pid)
                j++;
            if (j == was.n && sl->pidfds[x] >= 0)
                close(sl->pidfds[x]);
        }
        *t = was;
        memcpy(sl->reps, reps, sizeof *reps * n0);
        memcpy(sl->conns, conns, sizeof *conns * n0);
        memcpy(sl->tmps, tmps, sizeof *tmps * n0);
        memcpy(sl->pidfds, pidfds, sizeof *pidfds * n0);
        memcpy(sl->pids, pids, sizeof *pids * n0);
        memcpy(sl->asked, asked, n0);
    } else {
        for (int j = 0; j < was.n; j++)
            if (!seen[j]) {
                if (conns[j] >= 0)
                    close(conns[j]);
                if (tmps[j] >= 0)
                    close(tmps[j]);
                if (pidfds[j] >= 0)
                    close(pidfds[j]);
            }
    }
    free(reps);
    return ret;
}

static int tree_grow(struct ck_tree *t, int outfd, struct tree_slots *sl,
                     const struct ck_ctl_req *req)
{
    static struct ck_tree now;
    for (int round = 0; round < TREE_GROW_ROUNDS; round++) {
        if (ck_tree_discover(t->m[0].pid, &now) < 0)
            return TREE_CHANGED;
        int added = 0;
        pthread_mutex_lock(&hb.mu); /* (its keep-alives use the slots) */
        int r = tree_relist(t, &now, sl, &added);
        hb.n = t->n;
        pthread_mutex_unlock(&hb.mu);
        if (r)
            return r;
        if (!added)
            return 0;
        char terr[256];
        if (ck_tree_check(t, terr, sizeof terr))
            return TREE_CHANGED; /* named when the tree is listed again */
        /* park at once, without the preparing round; one after the
         * other, and one that exec'd meanwhile (its connection closed,
         * its new program's shim comes up) is reached again */
        struct ck_ctl_req q = *req;
        q.flags &= ~(uint32_t)CK_CKPT_READY;
        for (int i = 0; i < t->n && r == 0; i++) {
            if (t->m[i].zombie || sl->conns[i] >= 0)
                continue;
            for (int tries = 0;; tries++) {
                r = tree_reach(t, i, -1, outfd, sl->conns, sl->tmps);
                if (r == 0)
                    r = tree_ask(t, i, sl->conns, sl->tmps, &q, sl->asked);
                if (r == 0)
                    r = tree_collect_one(t, sl->conns, sl->reps, i, CK_STATUS_PARKED,
                                         "parking its threads", 1);
                if (r != TREE_CHANGED || tries == 4 || !ck_proc_alive(t->m[i].pid))
                    break;
                tree_close(sl->conns + i, sl->tmps + i, 1);
                sl->asked[i] = 0;
            }
        }
        explicit_bzero(q.key_mac, sizeof q.key_mac);
        explicit_bzero(q.key_enc, sizeof q.key_enc);
        if (r != 0)
            return r;
    }
    return TREE_CHANGED;
}

/* A checkpoint of PID and its descendants into one tree image (docs/DESIGN.md,
 * "Process trees"): every process parks, then every process captures and
 * goes on, then their writers, one at a time, write the streams in place
 * behind the tree header in outfd (the temporary file); coord writes the
 * header, commits once and only then lets them go on (or, with --kill,
 * end). req is the
 * root's request (flags, --id). Returns an exit code. */
static int tree_checkpoint(struct ck_tree *t, int root_conn, int outfd, const char *out,
                           struct ck_ctl_req *req, const struct ck_counter *counter,
                           int kill_after)
{
    int pid = t->m[0].pid, n = t->n;
    /* (room for every process the tree may grow to: tree_grow) */
    size_t cap = CK_TREE_MAX;
    int *conns = calloc(cap, sizeof *conns), *tmps = calloc(cap, sizeof *tmps);
    struct ck_ctl_rep *reps = calloc(cap, sizeof *reps);
    struct ck_tree_entry *ents = calloc(cap, sizeof *ents);
    int *pidfds = calloc(cap, sizeof *pidfds), *pids = calloc(cap, sizeof *pids);
    char *asked = calloc(cap, 1); /* got the request (tree_stop_again) */
    struct ck_image *imgs = NULL;
    struct ck_tree_share *shares = NULL;
    uint64_t nshares = 0;
    int shares_known = 0;
    int ret = CK_EXIT_FAIL;
    if (!conns || !tmps || !reps || !ents || !pidfds || !pids || !asked) {
        ck_msg("checkpoint %d: out of memory", pid);
        free(asked);
        free(conns);
        free(tmps);
        free(reps);
        free(ents);
        free(pidfds);
        free(pids);
        close(root_conn);
        return CK_EXIT_FAIL;
    }
    for (int i = 0; i < n; i++) {
        conns[i] = tmps[i] = -1;
        pids[i] = t->m[i].pid;
        pidfds[i] = t->m[i].zombie ? -1 : open_pidfd(t->m[i].pid);
    }
    conns[0] = root_conn;
    /* A stopped process runs no shim: continued for the checkpoint and
     * stopped again with its signal after it (restore stops it again). */
    for (int i = 0; i < n; i++)
        if (!t->m[i].zombie && t->m[i].stopsig > 0 && !t->m[i].held)
            tree_continue(t->m[i].pid);
    for (int i = 0; i < n; i++) {
        int r = tree_reach(t, i, i == 0 ? root_conn : -1, outfd, conns, tmps);
        if (r == TREE_CHANGED)
            ret = TREE_CHANGED;
        if (r != 0)
            goto out;
    }
    /* 1. Park every process, in parallel. */
    /* (without CK_CKPT_TMPFILE: a shim that sees coord go away would
     * remove the temporary file, which coord uses again when the tree
     * changed and is taken again) */
    req->flags |= CK_CKPT_TREE;
    req->flags &= ~(uint32_t)(CK_CKPT_TMPFILE | CK_CKPT_READY);
    if (tree_rss(t) >= TREE_READY_RSS)
        req->flags |= CK_CKPT_READY;
    for (int i = 0; i < n; i++) {
        int r = tree_ask(t, i, conns, tmps, req, asked);
        if (r == TREE_CHANGED)
            ret = TREE_CHANGED;
        if (r != 0)
            goto out;
    }
    hb_start(conns, n);
    pthread_mutex_lock(&hb.mu);
    hb.asked = asked;
    pthread_mutex_unlock(&hb.mu);
    /* A tree holding much memory prepares first (its hooks, the prescan
     * of its mappings, which walks their page tables: milliseconds per
     * 100 MiB) while its programs run, and then parks at once, so that
     * the first process parked does not wait for the slowest one's
     * preparations. A small tree parks at once: the round trip would
     * only widen the moment in which a shell's fork makes the tree be
     * taken again. */
    int cr = 0;
    if (req->flags & CK_CKPT_READY) {
        cr = tree_collect(t, conns, reps, CK_STATUS_READY, "preparing its checkpoint", 1);
        if (cr == 0)
            tree_send(conns, n, CK_OP_PARK, 0, 0);
    }
    if (cr == 0)
        cr = tree_collect(t, conns, reps, CK_STATUS_PARKED, "parking its threads", 1);
    struct tree_slots slots = {conns, tmps, pidfds, pids, reps, asked};
    if (cr == 0)
        cr = tree_grow(t, outfd, &slots, req);
    n = t->n;
    if (cr == TREE_CHANGED)
        ret = TREE_CHANGED;
    if (cr != 0)
        goto out;
    /* 2. Every process is parked: all capture, each told which of its
     * sockets another process of the tree saves the queue of. Whether the
     * tree is still the one listed (a child forked before its parent
     * parked) is looked at meanwhile, not in the pause: if not, the
     * captures are dropped. */
    cr = tree_capture(t, conns, reps, &shares, &nshares, &shares_known);
    if (cr == TREE_CHANGED)
        ret = TREE_CHANGED;
    if (cr != 0)
        goto out;
    test_hook("slow-stamp");
    for (int i = 0; i < n; i++) {
        long pg = 0, sd = 0;
        ck_tree_ids(t->m[i].pid, &pg, &sd);
        ents[i].pgid = (int32_t)pg;
        ents[i].sid = (int32_t)sd;
        /* a leader's terminal made again with its master (the root's only
         * with a restore that gives it a session: --detach) */
        if (!t->m[i].zombie)
            ck_tree_ctty(t, t->m[i].pid, &ents[i].ctty, &ents[i].fg_pgid);
    }
    for (int i = 0; i < n; i++)
        if (t->m[i].zombie) {
            ents[i].vpid = (req->flags & CK_CKPT_PIDNS) ? ck_pidns_inner(t->m[i].pid)
                                                        : zombie_vpid(t, reps, t->m[i].pid);
            if (!(req->flags & CK_CKPT_PIDNS))
                ents[i].pgid = zombie_pgid(t, reps, ents, ents[i].pgid);
        }
    /* 3. One stamp for the tree: the root's counter. */
    uint64_t stamp = 0;
    uint32_t sflags = 0;
    char cerr[512];
    snprintf(stamp_id, sizeof stamp_id, "%s", reps[0].app_id);
    if (counter->kind == CK_COUNTER_NONE) {
        sflags = CK_CKPT_COUNTER_NONE;
    } else {
        if (ck_counter_get(counter, stamp_id, &stamp_base, cerr, sizeof cerr) < 0) {
            ck_msg("checkpoint %d: %s; no image written (use --counter none to checkpoint "
                   "without rollback protection)", pid, cerr);
            goto out;
        }
        stamp = stamp_base + 1;
    }
    tree_send(conns, n, CK_OP_STAMP, sflags, stamp);
    if (tree_collect(t, conns, reps, CK_STATUS_FORKED, "forking its writer", 0) < 0)
        goto out;
    /* the writers' progress (CK_STATUS_PROGRESS) comes while each writes:
     * tree_collect_one's recv_watching gives it to the process's slot */
    int progress = ck_progress_on() && progress_slots(n) == 0;
    /* Every process has forked its writer and goes on: the pause is over
     * (a writer at work earlier would take the cores the other forks
     * need). The writers take turns: each writes its stream in place,
     * right behind the previous one (4 KiB aligned, for O_DIRECT), so the
     * image is written once, and one writer at a time has every core. */
    uint64_t at = ck_tree_first_offset((uint32_t)n, nshares);
    struct ck_ctl_req turn, prep;
    memset(&turn, 0, sizeof turn);
    turn.magic = CK_CTL_MAGIC;
    turn.op = CK_OP_WRITE;
    prep = turn;
    prep.op = CK_OP_PREPARE;
    /* the writers get ready ahead of their turns, three at a time (the
     * one writing and the next two: each fills its buffers, tens of MiB,
     * then waits), so that a turn starts with bytes to write */
    int prepared = 0;
    for (int i = 0; i < n; i++) {
        if (t->m[i].zombie)
            continue;
        for (; prepared < n && prepared <= i + 2; prepared++)
            if (!t->m[prepared].zombie && ctl_send(conns[prepared], &prep) < 0) {
                ck_msg("checkpoint %d: cannot tell process %d to get its writer ready: %s",
                       pid, t->m[prepared].pid, strerror(errno));
                goto out;
            }
        if (lseek(tmps[i], (off_t)at, SEEK_SET) < 0 || ctl_send(conns[i], &turn) < 0) {
            ck_msg("checkpoint %d: cannot give process %d its turn to write: %s", pid,
                   t->m[i].pid, strerror(errno));
            goto out;
        }
        if (tree_collect_one(t, conns, reps, i, 0, "writing its image", 0) < 0)
            goto out;
        off_t end = lseek(tmps[i], 0, SEEK_CUR);
        if (end < 0 || (uint64_t)end != at + reps[i].bytes) {
            ck_msg("checkpoint %d: process %d says it wrote %llu bytes at %llu of %s, but "
                   "the file offset is %lld; no image written, every process goes on", pid,
                   t->m[i].pid, (unsigned long long)reps[i].bytes, (unsigned long long)at,
                   tmp_path, (long long)end);
            goto out;
        }
        ents[i].offset = at;
        ents[i].length = reps[i].bytes;
        at = (at + reps[i].bytes + 4095) & ~(uint64_t)4095;
    }
    if (progress)
        ck_progress_end();
    stamp_msg = stamp;
    /* 4. The tree image: header, then every stream at its offset. */
    struct ck_tree_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CK_TREE_MAGIC, CK_MAGIC_LEN);
    h.version = CK_TREE_VERSION;
    h.nprocs = (uint32_t)n;
    h.counter_stamp = stamp;
    snprintf(h.app_id, sizeof h.app_id, "%s", stamp_id);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    h.created_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
    uint64_t bytes = 0, pages = 0, raw = 0, pause = 0;
    struct writer_cost wc = {0, 0, 0, -1};
    uint32_t threads = 0;
    for (int i = 0; i < n; i++) {
        ents[i].real_pid = t->m[i].pid;
        ents[i].parent = t->m[i].parent;
        if (t->m[i].zombie) {
            /* exited, not yet waited for: its pid (as the tree knows it,
             * which a process of the tree may say) and wait status */
            ents[i].flags = CK_TREE_ZOMBIE;
            ents[i].length = (uint64_t)(uint32_t)t->m[i].status;
            continue;
        }
        if (t->m[i].stopsig > 0)
            ents[i].flags = CK_TREE_STOPPED | ((uint32_t)t->m[i].stopsig & 0xff) << 8;
        if (t->m[i].orphan)
            ents[i].flags |= CK_TREE_ORPHAN;
        if (ck_tree_shares_table(t, i))
            ents[i].flags |= CK_TREE_FILES;
        ents[i].vpid = (int32_t)reps[i].orig_pid;
        bytes += ents[i].length;
        pages += reps[i].pages;
        raw += reps[i].raw_bytes ? reps[i].raw_bytes : reps[i].pages * CK_PAGE_SIZE;
        threads += reps[i].nthreads;
        writer_cost_add(&wc, &reps[i]);
        if (reps[i].pause_ns > pause)
            pause = reps[i].pause_ns;
    }
    /* With a key, the tree header gets its own MAC (each stream has its
     * own already): who the processes are and where their streams are. */
    struct ck_key tkey;
    memset(&tkey, 0, sizeof tkey);
    memcpy(tkey.mac, req->key_mac, sizeof tkey.mac);
    memcpy(tkey.id, req->key_id, sizeof tkey.id);
    uint8_t *macs = calloc((size_t)n, CK_DIGEST_BYTES);
    int hr = macs ? 0 : -ENOMEM;
    /* each stream's own MAC (checked: a stream written with other keys
     * would not restore) goes into the tree's */
    for (int i = 0; !hr && (req->flags & CK_CKPT_MAC) && i < n; i++) {
        char aerr[512];
        if (!t->m[i].zombie &&
            ck_image_authenticate_at(outfd, ents[i].offset, &tkey, macs + (size_t)i * CK_DIGEST_BYTES,
                                     aerr, sizeof aerr) < 0) {
            ck_msg("checkpoint %d: the stream of process %d does not authenticate: %s", pid,
                   t->m[i].pid, aerr);
            hr = -EBADMSG;
        }
    }
    struct ck_tree_sharetab stab = {.n = nshares,
                                    .flags = shares_known ? CK_TREE_HDR_SHARES : 0,
                                    .s = shares};
    if (!hr)
        hr = ck_tree_write_hdr(outfd, &h, ents, &stab, (req->flags & CK_CKPT_MAC) ? &tkey : NULL,
                               macs);
    ck_key_wipe(&tkey);
    free(macs);
    if (hr < 0) {
        ck_msg("checkpoint %d: cannot write the tree header into %s: %s", pid, tmp_path,
               strerror(-hr));
        goto out;
    }
    /* 5. Durable, and every stream reads back. */
    if (fsync(outfd) < 0) {
        ck_msg("checkpoint %d: fsync %s: %s", pid, tmp_path, strerror(errno));
        goto out;
    }
    imgs = calloc((size_t)n, sizeof *imgs);
    if (!imgs) {
        ck_msg("checkpoint %d: out of memory", pid);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        char err[512];
        if (t->m[i].zombie)
            continue;
        if (lseek(outfd, (off_t)ents[i].offset, SEEK_SET) < 0 ||
            ck_image_read(outfd, &imgs[i], 0, err, sizeof err) < 0) {
            ck_msg("checkpoint %d: the stream of process %d does not read back: %s", pid,
                   t->m[i].pid, err);
            goto out;
        }
    }
    char uerr[1024];
    if (ck_tree_names_check(n, ents, imgs, uerr, sizeof uerr) < 0 ||
        files_subtree_check(n, ents, imgs, uerr, sizeof uerr) < 0 ||
        tree_unshared(t, imgs, shares, nshares, shares_known, uerr, sizeof uerr) < 0) {
        ck_msg("checkpoint %d: %s; no image written, every process goes on", pid, uerr);
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (!t->m[i].zombie) {
            note_tree_pipes(t, imgs, i);
            note_file_versions(t->m[i].pid, &imgs[i]);
        }
    /* 6. Commit once for the tree, then tell every process. */
    test_hook("before-commit");
    test_hook("slow-commit");
    /* (only --kill needs every shim still waiting: one that gave up
     * released its process, which must then not be committed as ended;
     * without it every process runs on anyway, and one that exec'd once
     * released closed its connection with its old program) */
    for (int i = 0; kill_after && i < n; i++)
        if (shim_gave_up(conns[i])) {
            ck_msg("checkpoint %d: process %d stopped waiting for coord (no word for too "
                   "long) and goes on: no image written, every process goes on", pid,
                   t->m[i].pid);
            goto out;
        }
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    int committed = commit_image(pid, out, 0, counter);
    hb_stop();
    tree_send(conns, n, committed > 0 ? CK_OP_COMMIT : CK_OP_ABORT, 0, 0);
    tree_close(conns, tmps, n);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (committed < 0)
        goto out;
    char img_sz[32], mem_sz[32], stamp_txt[64] = "unstamped (--counter none)";
    if (counter->kind != CK_COUNTER_NONE)
        snprintf(stamp_txt, sizeof stamp_txt, "stamp %llu", (unsigned long long)stamp);
    char wtxt[96];
    ck_msg("checkpoint %d -> %s: process tree of %d process%s, %s image, %llu pages (%s of "
           "memory), %u threads, tree paused %.1f ms, %s%s", pid, out, n, n == 1 ? "" : "es",
           ck_fmt_bytes(img_sz, sizeof img_sz, bytes), (unsigned long long)pages,
           ck_fmt_bytes(mem_sz, sizeof mem_sz, raw), threads, (double)pause / 1e6, stamp_txt,
           writer_cost_text(&wc, wtxt, sizeof wtxt));
    if (kill_after && committed > 0) {
        end_processes(pidfds, pids, n, pid);
        ck_msg("checkpoint %d: process tree exited", pid);
    }
    struct summary sm = {.pid = pid, .nprocs = n, .killed = kill_after && committed > 0,
                         .image = out, .image_bytes = bytes, .pages = pages,
                         .memory_bytes = raw, .threads = threads, .total_ms = -1,
                         .pause_ms = (double)pause / 1e6,
                         .stamp = counter->kind != CK_COUNTER_NONE ? stamp : 0, .wc = wc};
    print_json(&sm);
    ret = CK_EXIT_OK;
out:
    tree_unlock();
    hb_stop();
    tree_close(conns, tmps, n);
    if (ret != CK_EXIT_OK || !kill_after)
        tree_stop_again(t, asked);
    free(asked);
    for (int i = 0; i < n; i++)
        if (pidfds[i] >= 0)
            close(pidfds[i]);
    free(pidfds);
    free(pids);
    for (int i = 0; imgs && i < n; i++)
        ck_image_free(&imgs[i]);
    free(imgs);
    free(conns);
    free(tmps);
    free(reps);
    free(shares);
    free(ents);
    return ret;
}

/* The keys the shim authenticates (and encrypts) its stream with, into
 * the request; key is wiped (the caller wipes the request once sent). */
static void req_key(struct ck_ctl_req *req, struct ck_key *key, int encrypt)
{
    req->flags |= CK_CKPT_MAC | (encrypt ? CK_CKPT_ENCRYPT : 0);
    memcpy(req->key_mac, key->mac, sizeof req->key_mac);
    memcpy(req->key_enc, key->enc, sizeof req->key_enc);
    memcpy(req->key_id, key->id, sizeof req->key_id);
    ck_key_wipe(key);
}


/* A Go program waits for its
 * children (os/exec: waitid, wait4) and signals them with raw system
 * calls, which the shim cannot map to the PIDs it saw: restored outside a
 * PID namespace of its own, its children have new PIDs and Wait fails
 * ("no child processes"). In one (coord run --pidns) every process gets
 * its PID back. Returns 1 (err says) or 0. */
static int go_parent(const struct ck_tree *t, int pidns, char *err, size_t len)
{
    if (pidns)
        return 0;
    for (int i = 0; i < t->n; i++) {
        int kids = 0;
        for (int j = 1; j < t->n; j++)
            kids += t->m[j].parent == i && !t->m[j].orphan;
        char exe[64];
        snprintf(exe, sizeof exe, "/proc/%d/exe", t->m[i].pid);
        if (!kids || !ck_file_is_go(exe))
            continue;
        snprintf(err, len,
                 "process %d is a Go program with %d child process%s: Go waits for and "
                 "signals its children with raw system calls, which would see their new PIDs "
                 "after restore (\"waitid: no child processes\"); run it in a PID namespace "
                 "of its own (coord run --pidns -- PROG), where restore gives every process "
                 "its PID back",
                 t->m[i].pid, kids, kids == 1 ? "" : "es");
        return 1;
    }
    return 0;
}

static int tree_check(const struct ck_tree *t, int pidns, char *err, size_t len)
{
    int nbad = ck_tree_check(t, err, len);
    return nbad ? nbad : go_parent(t, pidns, err, len);
}

/* Whether path (NULL: standard output) starts as a ckshim image does. */
static int is_ckshim_image(const char *path)
{
    char m[CK_MAGIC_LEN];
    int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
    ssize_t n = pread(path ? fd : STDOUT_FILENO, m, sizeof m, 0);
    if (fd >= 0)
        close(fd);
    return n == (ssize_t)sizeof m && (!memcmp(m, CK_MAGIC, sizeof m) ||
                                      !memcmp(m, CK_TREE_MAGIC, sizeof m));
}

int cmd_checkpoint(int argc, char **argv)
{
    const char *pidarg = NULL, *out = NULL, *app_id = NULL, *counter_url = NULL;
    const char *key_file = getenv("CKSHIM_KEY_FILE"), *action = NULL;
    int encrypt = 0;
    int kill_after = 0, no_fork = 0, opts_done = 0;
    for (int i = 1; i < argc;) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--") == 0) {
                opts_done = 1;
                i++;
                continue;
            }
            if (strcmp(a, "--kill") == 0) {
                kill_after = 1;
                i++;
                continue;
            }
            if (strcmp(a, "--encrypt") == 0) {
                encrypt = 1;
                i++;
                continue;
            }
            if (strcmp(a, "--no-fork") == 0) {
                no_fork = 1;
                i++;
                continue;
            }
            if (strcmp(a, "--no-file-versions") == 0) {
                no_versions = 1;
                i++;
                continue;
            }
            const char *prio = NULL, *ilim = NULL;
            int rl = ck_opt_value("checkpoint", argc, argv, &i, "--idle-limit", NULL, &ilim);
            if (rl < 0)
                return CK_EXIT_USAGE;
            if (rl > 0) {
                idle_limit_ms = ck_parse_duration(ilim);
                idle_limit_given = 1;
                /* coord waits REPLY_TIMEOUT_MS for the shim's answer: the
                 * writer must have time left for its work after the limit */
                if (idle_limit_ms < 0 || idle_limit_ms > REPLY_TIMEOUT_MS / 2)
                    return ck_usage_error("checkpoint", "--idle-limit: '%s' is not a duration "
                                          "(10s, 500ms, 2m) of at most %d minutes", ilim,
                                          REPLY_TIMEOUT_MS / 120000);
                continue;
            }
            int rp = ck_opt_value("checkpoint", argc, argv, &i, "--priority", NULL, &prio);
            if (rp < 0)
                return CK_EXIT_USAGE;
            if (rp > 0) {
                if (strcmp(prio, "idle") && strcmp(prio, "normal"))
                    return ck_usage_error("checkpoint", "--priority: '%s' is not idle or normal",
                                          prio);
                idle_writer = !strcmp(prio, "idle");
                continue;
            }
            const char *sf = NULL;
            int r0 = ck_opt_value("checkpoint", argc, argv, &i, "--shared-file", NULL, &sf);
            if (r0 < 0)
                return CK_EXIT_USAGE;
            if (r0 > 0) {
                struct stat sst;
                if (nshared == CK_MAX_SHARED)
                    return ck_usage_error("checkpoint", "--shared-file: at most %d files",
                                          CK_MAX_SHARED);
                if (stat(sf, &sst) < 0)
                    return ck_usage_error("checkpoint", "--shared-file %s: %s", sf,
                                          strerror(errno));
                shared[nshared][0] = sst.st_dev;
                shared[nshared++][1] = sst.st_ino;
                continue;
            }
            if (strcmp(a, "--json") == 0) {
                json_out = 1;
                i++;
                continue;
            }
            if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
                quiet = 1;
                i++;
                continue;
            }
            int r = ck_opt_value("checkpoint", argc, argv, &i, "--output", "-o", &out);
            if (r == 0)
                r = ck_opt_value("checkpoint", argc, argv, &i, "--id", NULL, &app_id);
            if (r == 0)
                r = ck_opt_value("checkpoint", argc, argv, &i, "--counter", NULL, &counter_url);
            if (r == 0)
                r = ck_opt_value("checkpoint", argc, argv, &i, "--key", NULL, &key_file);
            if (r == 0)
                r = ck_opt_value("checkpoint", argc, argv, &i, "--action-script", NULL, &action);
            if (r < 0)
                return CK_EXIT_USAGE;
            if (r > 0)
                continue;
            return ck_usage_error("checkpoint", "unknown option '%s'", a);
        }
        if (pidarg)
            return ck_usage_error("checkpoint", "unexpected argument '%s'", a);
        pidarg = a;
        i++;
    }
    if (!pidarg)
        return ck_usage_error("checkpoint", "missing PID");
    if (idle_limit_given && !idle_writer)
        return ck_usage_error("checkpoint", "--idle-limit goes with --priority idle");
    if (idle_writer && no_fork)
        return ck_usage_error("checkpoint", "--priority idle lowers the forked image writer: "
                              "not with --no-fork (the paused program writes the image)");
    if (!out)
        return ck_usage_error("checkpoint", "missing -o FILE");
    if (!*out)
        return ck_usage_error("checkpoint", "-o: empty file name");
    if (json_out && !strcmp(out, "-"))
        return ck_usage_error("checkpoint", "--json with -o -: standard output is the image");
    /* Standard output that is not a regular file (a pipe to ssh or zstd):
     * coord cannot know whether the reader kept the image, so it never
     * counts as committed: no --kill, and the counter is not advanced. */
    struct stat ost;
    int to_pipe = strcmp(out, "-") == 0 &&
                  !(fstat(STDOUT_FILENO, &ost) == 0 && S_ISREG(ost.st_mode));
    if (to_pipe && kill_after)
        return ck_usage_error("checkpoint", "--kill with -o - to a pipe: coord cannot know "
                              "whether the reader kept the image, so it will not end the "
                              "program; write to a file (-o FILE, then copy it), or end the "
                              "program yourself once the image is safe");
    int pid = ck_parse_pid(pidarg);
    if (pid < 0)
        return ck_usage_error("checkpoint", "'%s' is not a process id", pidarg);
    ck_progress_start("checkpoint", quiet);
    if (action && ck_action_check("checkpoint", action, script, sizeof script) != 0)
        return CK_EXIT_USAGE;
    if (!counter_url)
        counter_url = getenv("CKSHIM_COUNTER");
    struct ck_counter counter;
    char cerr[512];
    if (ck_counter_parse(counter_url, &counter, cerr, sizeof cerr) < 0)
        return ck_usage_error("checkpoint", "--counter: %s", cerr);
    struct ck_key key;
    int have_key = key_file && *key_file;
    if (encrypt && !have_key)
        return ck_usage_error("checkpoint", "--encrypt needs a key (--key FILE or CKSHIM_KEY_FILE)");
    if (have_key) {
        if (ck_auth_init() < 0) {
            ck_msg("checkpoint %d: libsodium could not be initialised", pid);
            return CK_EXIT_FAIL;
        }
        if (ck_key_load(key_file, &key, cerr, sizeof cerr) < 0) {
            ck_msg("checkpoint %d: %s", pid, cerr);
            return CK_EXIT_FAIL;
        }
    }
    struct ck_ctl_req req;
    memset(&req, 0, sizeof(req));
    if (app_id && ck_check_app_id(app_id, cerr, sizeof cerr) < 0)
        return ck_usage_error("checkpoint", "--id: %s", cerr);

    /* The process: there, a process (not a thread), ours. */
    struct ck_procinfo pi;
    int r = ck_proc_info(pid, &pi);
    if (r == -ENOENT) {
        ck_msg("checkpoint %d: no such process", pid);
        return CK_EXIT_FAIL;
    }
    if (r < 0) {
        ck_msg("checkpoint %d: cannot read /proc/%d/status: %s", pid, pid, strerror(-r));
        return CK_EXIT_FAIL;
    }
    if (pi.tgid > 0 && pi.tgid != pid) {
        ck_msg("checkpoint %d: %d is a thread of process %d; give the process id", pid, pid,
               (int)pi.tgid);
        return CK_EXIT_FAIL;
    }
    uid_t me = getuid();
    if (me != 0 && (pi.ruid != me || pi.euid != me)) {
        char user[64];
        ck_user_name(user, sizeof(user), pi.ruid != me ? pi.ruid : pi.euid);
        ck_msg("checkpoint %d: PID %d belongs to user %s; ckshim only checkpoints your own "
               "processes",
               pid, pid, user);
        return CK_EXIT_FAIL;
    }
    if (pi.state == 'Z' || pi.state == 'X') {
        ck_msg("checkpoint %d: the process has exited (zombie)", pid);
        return CK_EXIT_FAIL;
    }
    /* A process stopped by a debugger is not the debugger's to give
     * away; one stopped by a signal is continued for the checkpoint and
     * stopped again (below: its stop signal, from ck_tree_discover). */
    int ttid = pid, tracer = pi.tracer > 0 ? (int)pi.tracer : ck_thread_tracer(pid, &ttid);
    if (pi.state == 't' || tracer > 0) {
        char th[32] = "";
        if (ttid != pid)
            snprintf(th, sizeof th, " (its thread %d)", ttid);
        ck_msg("checkpoint %d: process %d%s is traced by process %d (a debugger or strace: "
               "the checkpoint signal would stop at it); detach it first", pid, pid, th, tracer);
        return CK_EXIT_FAIL;
    }
    char cwhy[400];
    if (ck_cred_differs(pid, cwhy, sizeof cwhy)) {
        ck_msg("checkpoint %d: process %d %s", pid, pid, cwhy);
        return CK_EXIT_FAIL;
    }

    /* Its descendants: every one must be able to be part of the image
     * (docs/DESIGN.md, "Process trees"); name those that cannot before
     * any shim is asked anything. */
    int prog = ck_pidns_program(pid);
    if (prog > 0) {
        ck_msg("checkpoint %d: PID %d is coord's side of a program run with --pidns (coord "
               "outside, or the namespace's init); checkpoint the program itself: pid %d",
               pid, pid, prog);
        return CK_EXIT_FAIL;
    }
    static struct ck_tree tree;
    r = ck_tree_discover(pid, &tree);
    /* A tree is listed again under the lock, so that another coord's
     * checkpoint of it (its writers, children of its processes for a
     * moment) is over */
    if (r == 0 && tree.n > 1) {
        if (tree_lock(pid) < 0)
            return CK_EXIT_FAIL;
        r = ck_tree_discover(pid, &tree);
    }
    if (r < 0) {
        ck_msg("checkpoint %d: cannot list the process's descendants: %s", pid,
               r == -E2BIG ? "more than 1024 processes" : strerror(-r));
        return CK_EXIT_FAIL;
    }
    if (pi.state == 'T' && !ck_stop_signal((uint32_t)tree.m[0].stopsig)) {
        ck_msg("checkpoint %d: process %d is stopped by a signal ckshim cannot tell; continue "
               "it first (kill -CONT %d)", pid, pid, pid);
        return CK_EXIT_FAIL;
    }
    /* A process in a pid namespace other than ours (coord run --pidns):
     * the image says so, and it is restored in a new one with its pids. */
    uint32_t pidns = ck_pidns_of(pid) != ck_pidns_of(0) ? CK_CKPT_PIDNS : 0;
    char terr[4096];
    int nbad = ck_tree_check(&tree, terr, sizeof terr);
    if (nbad > 0 && !ck_tree_root_under_shim(&tree)) {
        /* (its descendants' refusals were all a user was told) */
        ck_msg("checkpoint %d: PID %d is not running under the shim (no control socket); start "
               "it with `coord run -- PROG`", pid, pid);
        return CK_EXIT_FAIL;
    }
    if (nbad > 0) {
        ck_msg("checkpoint %d: its process tree cannot be checkpointed (%d reason%s): %s; "
               "nothing was done, every process goes on", pid, nbad, nbad == 1 ? "" : "s", terr);
        return CK_EXIT_FAIL;
    }
    if (go_parent(&tree, pidns != 0, terr, sizeof terr)) {
        ck_msg("checkpoint %d: %s; nothing was done, every process goes on", pid, terr);
        return CK_EXIT_FAIL;
    }
    /* The image would replace FILE: never one the program has open (its
     * output redirected there; the image could not even be restored, its
     * stdout being gone) */
    struct stat tst;
    /* (lstat: a symbolic link is replaced, not what it names; an older
     * image there is the usual thing to replace, and a stopped process's
     * shim still holds the one it just wrote until it is continued) */
    if ((strcmp(out, "-") ? lstat(out, &tst) : fstat(STDOUT_FILENO, &tst)) == 0 &&
        S_ISREG(tst.st_mode) && !is_ckshim_image(strcmp(out, "-") ? out : NULL)) {
        for (int i = 0; i < tree.n; i++) {
            int hfd = ck_pid_holds_file(tree.m[i].pid, tst.st_dev, tst.st_ino);
            if (hfd < 0)
                continue;
            ck_msg("checkpoint %d: %s is open in process %d (fd %d): the image would %s a "
                   "file of the program; give another file; nothing was done, every process "
                   "goes on", pid, strcmp(out, "-") ? out : "standard output", tree.m[i].pid,
                   hfd, strcmp(out, "-") ? "replace" : "be written into");
            return CK_EXIT_FAIL;
        }
    }

    /* The pre-checkpoint script, before anything changes (and before the
     * shim is asked: it serves one request at a time). From here on every
     * end runs the post-checkpoint script. */
    int to_stdout = strcmp(out, "-") == 0;
    int outfd = -1, fd = -1, pidfd = -1;
    int stopped_sig = 0, stopped_asked = 0; /* a stopped process, continued for this */
    if (script[0]) {
        char cwd[PATH_MAX];
        if (to_stdout || out[0] == '/' || !getcwd(cwd, sizeof cwd))
            snprintf(script_image, sizeof script_image, "%s", out);
        else
            snprintf(script_image, sizeof script_image, "%s/%s", cwd, out);
        char why[256];
        if (ck_action_run(script, "pre-checkpoint", pid, script_image, NULL, why, sizeof why) < 0) {
            ck_msg("checkpoint %d: the pre-checkpoint action script %s refused the checkpoint "
                   "(%s); nothing was done, the process goes on",
                   pid, script, why);
            return CK_EXIT_FAIL;
        }
    }

    /* Its control socket. */
    char sock[PATH_MAX];
    if (tree.n > 1 && tree_lock(pid) < 0)
        goto fail;
    fd = connect_root(pid, sock, sizeof(sock), &tree);
    if (tree.m[0].held)
        stopped_sig = tree.m[0].stopsig; /* (stopped again whatever comes) */
    if (fd == -ENOENT || fd == -ECONNREFUSED || fd == -ENOTSOCK) {
        ck_msg("checkpoint %d: PID %d is not running under the shim (no control socket at %s); "
               "start it with `coord run -- PROG`",
               pid, pid, sock);
        goto fail;
    }
    if (fd == -EBUSY) {
        ck_msg("checkpoint %d: PID %d closed the shim's control socket (as a daemon closing "
               "every descriptor does) and stays stopped: coord reaches such a process only "
               "while it runs",
               pid, pid);
        goto fail;
    }
    if (fd < 0) {
        ck_msg("checkpoint %d: cannot connect to %s: %s", pid, sock, strerror(-fd));
        goto fail;
    }
    int peer = ck_ctl_peer_pid(fd);
    if (peer < 0) {
        ck_msg("checkpoint %d: SO_PEERCRED on %s: %s", pid, sock, strerror(-peer));
        goto fail;
    }
    if (peer != pid) {
        ck_msg("checkpoint %d: the control socket %s is served by pid %d, not %d (stale socket?)",
               pid, sock, peer, pid);
        goto fail;
    }

    /* The output. */
    if (to_stdout) {
        if (isatty(STDOUT_FILENO)) {
            ck_msg("checkpoint %d: refusing to write an image to a terminal; redirect standard "
                   "output or use -o FILE",
                   pid);
            goto fail;
        }
        outfd = STDOUT_FILENO;
    } else {
        char dir[PATH_MAX];
        const char *base;
        struct stat st;
        if (split_path(out, dir, sizeof(dir), &base) < 0 || !*base ||
            (stat(out, &st) == 0 && S_ISDIR(st.st_mode))) {
            ck_msg("checkpoint %d: %s: is a directory; -o needs a file name", pid, out);
            goto fail;
        }
        remove_stale_tmp(pid, dir, base);
        catch_signals();
        if ((outfd = make_tmp(pid, dir, base)) < 0)
            goto fail;
    }

    /* A process tree: see tree_checkpoint. (Taken again from here when
     * the process made a child while it was checkpointed alone.) */
    int alone_tries = 0, conn_tries = 0;
again:
    if (tree.n > 1) {
        if (to_stdout || no_fork) {
            ck_msg("checkpoint %d: a process tree (%d processes) is checkpointed to a file "
                   "(-o FILE), without --no-fork, for now", pid, tree.n);
            goto fail;
        }
        req.magic = CK_CTL_MAGIC;
        req.op = CK_OP_CHECKPOINT;
        req.flags = (kill_after ? CK_CKPT_KILL : 0) | CK_CKPT_STAMP | CK_CKPT_COMMIT | pidns |
                    (ck_progress_on() ? CK_CKPT_PROGRESS : 0);
        request_opts(&req);
        if (app_id)
            memcpy(req.app_id, app_id, strlen(app_id));
        if (have_key)
            req_key(&req, &key, encrypt);
        /* coord holds three descriptors per process (its connection, the
         * image file for its writer, a pidfd): room for the largest
         * tree, under the hard limit, for this checkpoint only (a
         * supervisor starts the program after it: not with ours) */
        struct rlimit nf0, nf;
        int nf_raised = 0;
        rlim_t nf_want = 3 * (rlim_t)CK_TREE_MAX + 256;
        if (getrlimit(RLIMIT_NOFILE, &nf0) == 0 && nf0.rlim_cur != RLIM_INFINITY &&
            nf0.rlim_cur < nf_want) {
            nf = nf0;
            nf.rlim_cur = nf0.rlim_max != RLIM_INFINITY && nf0.rlim_max < nf_want ? nf0.rlim_max
                                                                                  : nf_want;
            nf_raised = setrlimit(RLIMIT_NOFILE, &nf) == 0;
        }
        /* A tree that changes before all its processes are parked (a
         * shell forking a command every second) is taken again. */
        for (int attempt = 0;; attempt++) {
            struct ck_ctl_req q = req;
            r = tree_checkpoint(&tree, fd, outfd, out, &q, &counter, kill_after);
            explicit_bzero(q.key_mac, sizeof q.key_mac);
            explicit_bzero(q.key_enc, sizeof q.key_enc);
            fd = -1;
            if (r != TREE_CHANGED || attempt == 20)
                break;
            sleep_ms(10 + 10 * attempt);
            char terr2[4096] = "";
            if (ck_tree_discover(pid, &tree) < 0 ||
                tree_check(&tree, pidns != 0, terr2, sizeof terr2)) {
                ck_msg("checkpoint %d: the process tree changed during the checkpoint and "
                       "cannot be taken now: %s; every process goes on", pid, terr2);
                r = CK_EXIT_FAIL;
                break;
            }
            char sock2[PATH_MAX];
            if (tree_lock(pid) < 0) {
                r = CK_EXIT_FAIL;
                break;
            }
            fd = connect_root(pid, sock2, sizeof sock2, &tree);
            if (fd < 0 || ftruncate(outfd, 0) < 0) {
                tree_unlock();
                cannot_start_again(pid, fd < 0 ? -fd : errno);
                r = CK_EXIT_FAIL;
                break;
            }
        }
        explicit_bzero(req.key_mac, sizeof req.key_mac);
        explicit_bzero(req.key_enc, sizeof req.key_enc);
        tree_unlock();
        if (nf_raised)
            setrlimit(RLIMIT_NOFILE, &nf0);
        if (r == TREE_CHANGED) {
            ck_msg("checkpoint %d: the process tree kept changing (processes forking or "
                   "ending) while it was being parked; no image written, every process goes "
                   "on", pid);
            r = CK_EXIT_FAIL;
        }
        close(outfd);
        outfd = -1;
        if (r != CK_EXIT_OK) {
            drop_tmp();
            post_checkpoint(pid, "failed");
            return r;
        }
        post_checkpoint(pid, "ok");
        return CK_EXIT_OK;
    }

    /* Ask. */
    req.magic = CK_CTL_MAGIC;
    req.op = CK_OP_CHECKPOINT;
    req.flags = (kill_after ? CK_CKPT_KILL : 0) | (no_fork ? CK_CKPT_NOFORK : 0) | CK_CKPT_STAMP |
                pidns;
    if (app_id)
        memcpy(req.app_id, app_id, strlen(app_id));
    if (have_key)
        req_key(&req, &key, encrypt);
    req.flags |= CK_CKPT_COMMIT | (to_stdout ? 0 : CK_CKPT_TMPFILE);
    if (ck_progress_on() && progress_slots(1) == 0)
        req.flags |= CK_CKPT_PROGRESS;
    request_opts(&req);
    pidfd = open_pidfd(pid);
    if (tree.m[0].stopsig > 0 && !stopped_sig) {
        /* stopped: continued for the checkpoint, held by its shim until
         * the request parks it, stopped again at its end (stop_again);
         * once (asked again after a reset, it is held already) */
        tree_continue(pid);
        stopped_sig = tree.m[0].stopsig;
    }
    req.stop_sig = (uint32_t)stopped_sig;
    r = ck_ctl_send(fd, &req, outfd);
    stopped_asked = r == 0;
    if (r == -EPIPE || r == -ECONNRESET)
        goto reset;
    explicit_bzero(req.key_mac, sizeof req.key_mac);
    explicit_bzero(req.key_enc, sizeof req.key_enc);
    if (r < 0) {
        ck_msg("checkpoint %d: sending the request to %s: %s", pid, sock, strerror(-r));
        goto fail;
    }
    hb_start(&fd, 1);
    struct ck_ctl_rep rep;
    r = recv_watching(fd, &rep, pid, 0);
    if (r == 0 && rep.status == CK_STATUS_NEED_STAMP) {
        /* The process is parked and its state captured: only now advance
         * the counter, so a refused checkpoint never makes the last good
         * image stale. */
        test_hook("slow-stamp");
        struct ck_ctl_req r2;
        memset(&r2, 0, sizeof r2);
        r2.magic = CK_CTL_MAGIC;
        r2.op = CK_OP_STAMP;
        uint64_t stamp = 0;
        int cr = 0;
        snprintf(stamp_id, sizeof stamp_id, "%s", rep.app_id);
        if (counter.kind == CK_COUNTER_NONE) {
            r2.flags = CK_CKPT_COUNTER_NONE;
        } else {
            /* The image gets the next value; the counter itself moves only
             * once the image is committed (commit_image). */
            cr = ck_counter_get(&counter, stamp_id, &stamp_base, cerr, sizeof cerr);
            stamp = stamp_base + 1;
        }
        if (cr < 0) {
            r2.op = CK_OP_ABORT;
            ctl_send(fd, &r2);
            ck_msg("checkpoint %d: %s; no image written (use --counter none to checkpoint "
                   "without rollback protection)",
                   pid, cerr);
            goto fail;
        }
        r2.counter_stamp = stamp;
        r = ctl_send(fd, &r2);
        if (r == 0)
            r = recv_watching(fd, &rep, pid, 0);
        if (r == 0 && rep.status == 0)
            stamp_msg = stamp;
    }
    ck_progress_end();
    if (r == -ESRCH) {
        ck_msg("checkpoint %d: the process was stopped (SIGSTOP, Ctrl-Z or a debugger) during "
               "the checkpoint; giving up, no image written (it goes on once continued: "
               "kill -CONT %d)",
               pid, pid);
        goto fail;
    }
    if (r == -ECONNRESET) {
    reset:
        /* The listening socket coord reached was closed under it before
         * its shim took the connection (reset before any answer): the
         * program closed every descriptor (a daemon's start, closefrom)
         * with a raw system call, and the shim is called from the moment
         * it sees its socket gone (ck_ctl_connect: CK_CALL_COMM). The
         * request was never read: ask again. */
        hb_stop();
        explicit_bzero(req.key_mac, sizeof req.key_mac);
        explicit_bzero(req.key_enc, sizeof req.key_enc);
        stopped_asked = 0; /* (a stopped one is held, unasked) */
        if (conn_tries++ < 3 && ck_proc_alive(pid)) {
            close(fd);
            if (pidfd >= 0)
                close(pidfd);
            pidfd = -1;
            sleep_ms(20 << conn_tries);
            fd = ck_ctl_connect(pid, sock, sizeof sock, CONNECT_TIMEOUT_MS);
            if (fd < 0) {
                ck_msg("checkpoint %d: cannot connect to %s again: %s", pid, sock, strerror(-fd));
                goto fail;
            }
            if (ck_ctl_peer_pid(fd) != pid) {
                ck_msg("checkpoint %d: the control socket %s is served by another process now",
                       pid, sock);
                goto fail;
            }
            goto again;
        }
        r = -EPIPE;
    }
    if (r == -EPIPE) {
        if (!ck_proc_alive(pid))
            ck_msg("checkpoint %d: the process died during checkpoint", pid);
        else
            ck_msg("checkpoint %d: the shim closed the connection without an answer", pid);
        goto fail;
    }
    if (r == -ETIMEDOUT) {
        ck_msg("checkpoint %d: no answer from the shim after %d minutes; giving up", pid,
               REPLY_TIMEOUT_MS / 60000);
        goto fail;
    }
    if (r == -EPROTO) {
        ck_msg("checkpoint %d: malformed answer from the shim (coord and libshim.so from "
               "different versions?)",
               pid);
        goto fail;
    }
    if (r < 0) {
        ck_msg("checkpoint %d: reading the answer: %s", pid, strerror(-r));
        goto fail;
    }
    if (rep.status == -ECHILD && !to_stdout && !no_fork && alone_tries++ < 5) {
        /* It made a child since coord looked (and goes on): take it again,
         * with its children, as a tree. */
        hb_stop();
        close(fd);
        fd = -1;
        if (pidfd >= 0)
            close(pidfd);
        pidfd = -1;
        /* a stopped one stops itself again after the refusal: once it
         * has, it is taken again as it is (continued again below or by
         * the tree's checkpoint) */
        if (stopped_sig)
            stop_again(pid, stopped_sig, stopped_asked);
        stopped_sig = stopped_asked = 0;
        char terr2[4096] = "";
        if (ck_tree_discover(pid, &tree) < 0 ||
            tree_check(&tree, pidns != 0, terr2, sizeof terr2)) {
            ck_msg("checkpoint %d: it made a child process during the checkpoint, and the "
                   "tree cannot be taken now: %s; every process goes on", pid, terr2);
            goto fail;
        }
        if (tree_lock(pid) < 0)
            goto fail;
        fd = connect_root(pid, sock, sizeof sock, &tree);
        if (tree.m[0].held)
            stopped_sig = tree.m[0].stopsig; /* continued again, not asked yet */
        if (fd < 0) {
            tree_unlock();
            cannot_start_again(pid, -fd);
            goto fail;
        }
        /* A new temporary file: the shim, seeing coord go away from its
         * refusal, may remove the one it was sent (remove_uncommitted). */
        close(outfd);
        outfd = -1;
        drop_tmp();
        char tdir[PATH_MAX];
        const char *tbase;
        if (split_path(out, tdir, sizeof tdir, &tbase) < 0 ||
            (outfd = make_tmp(pid, tdir, tbase)) < 0)
            goto fail;
        goto again;
    }
    if (rep.status != 0) {
        ck_msg("checkpoint %d: %s", pid,
               rep.msg[0] ? rep.msg : strerror(rep.status < 0 ? -rep.status : rep.status));
        goto fail;
    }

    if (!to_stdout && verify_tmp(pid, outfd) < 0)
        goto fail;
    if (!to_stdout) {
        int e = close(outfd) < 0 ? errno : 0;
        outfd = -1;
        if (e) {
            ck_msg("checkpoint %d: close %s: %s", pid, tmp_path, strerror(e));
            goto fail;
        }
    }
    /* Commit: from here on a signal waits until the image is in place and
     * the shim has been told (a Ctrl-C now would only lose the program
     * with --kill, never the image). */
    test_hook("before-commit");
    test_hook("slow-commit");
    if (shim_gave_up(fd)) {
        ck_msg("checkpoint %d: the process stopped waiting for coord (no word for too long) "
               "and goes on: no image written", pid);
        goto fail;
    }
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    int committed = commit_image(pid, to_stdout ? NULL : out, to_pipe, &counter);
    hb_stop();
    struct ck_ctl_req r3;
    memset(&r3, 0, sizeof r3);
    r3.magic = CK_CTL_MAGIC;
    r3.op = committed > 0 ? CK_OP_COMMIT : CK_OP_ABORT;
    int told = ck_ctl_send(fd, &r3, -1) == 0;
    close(fd);
    fd = -1;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (committed < 0)
        goto fail;
    if (kill_after && !told && committed > 0)
        ck_msg("checkpoint %d: the process could not be told to end (its shim stopped "
               "waiting); it is ended all the same: its image is committed", pid);
    if (kill_after && !committed) {
        ck_msg("checkpoint %d: the process goes on running (not ended: see above)", pid);
        kill_after = 0;
    }

    char img_sz[32], mem_sz[32], took[32];
    if (rep.total_ns >= 100000000ULL)
        snprintf(took, sizeof(took), "%.2f s", ns_to_s(rep.total_ns));
    else
        snprintf(took, sizeof(took), "%.1f ms", (double)rep.total_ns / 1e6);
    uint64_t mem = rep.raw_bytes ? rep.raw_bytes : rep.pages * CK_PAGE_SIZE;
    char stamp_txt[64] = "unstamped (--counter none)";
    if (counter.kind != CK_COUNTER_NONE)
        snprintf(stamp_txt, sizeof stamp_txt, "stamp %llu", (unsigned long long)stamp_msg);
    struct writer_cost wc = {0, 0, 0, -1};
    char wtxt[96];
    writer_cost_add(&wc, &rep);
    ck_msg("checkpoint %d -> %s: %s image, %llu pages (%s of memory), %u thread%s, %s, "
           "app paused %.1f ms, %s%s",
           pid, to_stdout ? "(stdout)" : out, ck_fmt_bytes(img_sz, sizeof(img_sz), rep.bytes),
           (unsigned long long)rep.pages, ck_fmt_bytes(mem_sz, sizeof(mem_sz), mem),
           rep.nthreads, rep.nthreads == 1 ? "" : "s", took,
           (double)rep.pause_ns / 1e6, stamp_txt, writer_cost_text(&wc, wtxt, sizeof wtxt));

    if (kill_after) {
        end_processes(&pidfd, &pid, 1, pid);
        ck_msg("checkpoint %d: process exited", pid);
    }
    struct summary sm = {.pid = pid, .nprocs = 1, .killed = kill_after,
                         .image = to_stdout ? NULL : out, .image_bytes = rep.bytes,
                         .pages = rep.pages, .memory_bytes = mem, .threads = rep.nthreads,
                         .total_ms = (double)rep.total_ns / 1e6,
                         .pause_ms = (double)rep.pause_ns / 1e6,
                         .stamp = counter.kind != CK_COUNTER_NONE ? stamp_msg : 0, .wc = wc};
    print_json(&sm);
    if (pidfd >= 0)
        close(pidfd);
    if (stopped_sig && !kill_after)
        stop_again(pid, stopped_sig, stopped_asked);
    post_checkpoint(pid, "ok");
    return CK_EXIT_OK;

fail:
    tree_unlock();
    hb_stop();
    if (fd >= 0)
        close(fd);
    if (stopped_sig)
        stop_again(pid, stopped_sig, stopped_asked);
    if (pidfd >= 0)
        close(pidfd);
    if (!to_stdout && outfd >= 0)
        close(outfd);
    drop_tmp();
    post_checkpoint(pid, "failed");
    return CK_EXIT_FAIL;
}
