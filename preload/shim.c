/* shim.c - libshim.so entry: constructor, manager thread, control socket,
 * and the checkpoint sequence (quiesce, capture, fork, write, release).
 *
 * The manager thread is created by the constructor with every signal
 * blocked. It serves one request at a time on <dir>/<pid>.sock. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctlproto.h"
#include "fileid.h"
#include "imgio.h"
#include "inet.h"
#include "rawsys.h"
#include "shim.h"

/* How long the shim waits for coord to commit an image (coord fsyncs it
 * and reads it back first). */
/* How long a parked process waits for coord's next word (a request, or
 * CK_OP_KEEPALIVE, which coord sends every second while it works: a
 * slow counter, the other processes of a tree, writing and reading back
 * a large image on a slow disk). Silence this long means coord is gone
 * or stuck: the program is released. CKSHIM_COORD_SILENCE_MS changes it. */
#define COORD_SILENCE_MS 30000

struct shim_state g_shim = {.listen_fd = -1};
SHIM_TLS struct shim_tls shim_tls;

int64_t shim_now_ns(int clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

pid_t shim_real_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

pid_t shim_real_getpid(void)
{
    return (pid_t)syscall(SYS_getpid);
}

/* Wait while *addr == val, at most timeout_ns (< 0: forever).
 * Returns 0 when woken or the value changed, -ETIMEDOUT on timeout. */
int shim_futex_wait(volatile int *addr, int val, int64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        tsp = &ts;
    }
    long r = syscall(SYS_futex, addr, FUTEX_WAIT, val, tsp, NULL, 0);
    if (r < 0 && errno == ETIMEDOUT)
        return -ETIMEDOUT;
    return 0;
}

void shim_futex_wake(volatile int *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

/* Read a small file into buf (NUL-terminated). Returns bytes or -errno.
 * Uses only open/read/close: safe while other threads are parked. */
int shim_read_file(const char *path, char *buf, size_t cap)
{
    return ck_read_file(path, buf, cap);
}

int shim_nopeek(int fd)
{
    uint64_t bit = (uint64_t)fd - g_shim.nopeek_base;
    return g_shim.nopeek_on && fd >= 0 && bit < CK_NOPEEK_BITS &&
           (g_shim.nopeek[bit / 64] >> (bit % 64) & 1);
}

/* Diagnostics to stderr when CKSHIM_DEBUG is set. */
void shim_log(const char *fmt, ...)
{
    static int debug = -1;
    if (debug < 0)
        debug = getenv("CKSHIM_DEBUG") != NULL;
    if (!debug)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(buf, sizeof buf, "ckshim[%d]: ", (int)shim_real_getpid());
    vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = strlen(buf);
    if (len + 1 < sizeof buf)
        buf[len++] = '\n';
    ssize_t w = write(2, buf, len);
    (void)w;
}

/* Find where glibc caches the tid in struct pthread: the first 4-byte
 * aligned int equal to gettid() in the first 2 KiB of pthread_self(). The
 * manager thread checks the same offset holds its own tid. */
static long find_tid_offset(void)
{
    const int *p = (const int *)pthread_self();
    int tid = shim_real_gettid();
    for (long i = 0; i < 512; i++)
        if (p[i] == tid)
            return i * 4;
    return -1;
}

void shim_fill_header(struct ck_header *h, const struct ck_ctl_req *req)
{
    memset(h, 0, sizeof *h);
    struct utsname u;
    uname(&u);
    h->orig_pid = (uint32_t)(g_shim.vpid ? g_shim.vpid : shim_real_getpid());
    h->uid = getuid();
    h->gid = getgid();
    h->counter_stamp = req ? req->counter_stamp : 0;
    if (req && (req->flags & CK_CKPT_PIDNS))
        h->flags |= CK_HF_PIDNS;
    if (req && ck_stop_signal(req->stop_sig)) {
        h->flags |= CK_HF_STOPPED;
        h->stop_sig = req->stop_sig;
    }
    h->created_ns = (uint64_t)shim_now_ns(CLOCK_REALTIME);
    h->nthreads = g_shim.nthreads;
    const char *id = (req && req->app_id[0]) ? req->app_id : g_shim.app_id;
    snprintf(h->app_id, sizeof h->app_id, "%s", id);
    snprintf(h->kernel, sizeof h->kernel, "%s", u.release);
    snprintf(h->machine, sizeof h->machine, "%s", u.machine);
    snprintf(h->glibc, sizeof h->glibc, "%s", gnu_get_libc_version());
    snprintf(h->hostname, sizeof h->hostname, "%s", u.nodename);
    snprintf(h->exe, sizeof h->exe, "%s", g_shim.proc.exe);
}

/* The control socket's path, <dir>/<realpid>.sock (ns<INODE>-<realpid>.sock
 * in a pid namespace: ctlproto.h), into g_shim.sock_path, its directory
 * made if missing. Returns 0 or -errno. */
int shim_sock_path_make(void)
{
    char dir[200];
    int r;
    /* the directory the shim first used, as long as it is still safe:
     * a worker that replaced its environment (nginx's, clearenv) would
     * otherwise make its socket after a restore where coord, run with
     * the program's $CKSHIM_DIR, never looks */
    if (g_shim.sock_dir[0] && ck_sock_dir_prepare(g_shim.sock_dir) == 0) {
        snprintf(dir, sizeof dir, "%s", g_shim.sock_dir);
        r = 0;
        goto have_dir;
    }
    r = ck_sock_dir(dir, sizeof dir);
    if (r == 0) {
        r = ck_sock_dir_prepare(dir);
        /* Taken by someone else between the look and the mkdir: look
         * again (ck_sock_dir falls back to a private directory). */
        if (r == -EPERM || r == -ENOTDIR || r == -ELOOP) {
            r = ck_sock_dir(dir, sizeof dir);
            if (r == 0)
                r = ck_sock_dir_prepare(dir);
        }
    }
    const char *note = ck_sock_dir_note();
    if (note) {
        static char said[512];
        if (strcmp(said, note) != 0) {
            snprintf(said, sizeof said, "%s", note);
            fprintf(stderr, "ckshim[%d]: warning: %s\n", (int)shim_real_getpid(), note);
        }
    }
    if (r < 0)
        return r;
    snprintf(g_shim.sock_dir, sizeof g_shim.sock_dir, "%s", dir);
have_dir:
    r = ck_sock_path_self(g_shim.sock_path, sizeof g_shim.sock_path, dir, shim_real_getpid());
    if (r == 0)
        g_shim.sock_owner = shim_real_getpid();
    return r;
}

/* A unix stream socket (extra socket() flags in flags) bound at the
 * control socket's path (shim_sock_path_make), whatever was there
 * removed. The file is 0600 from the start: bind gives it the socket's
 * own mode, set first (no umask changed under the program's threads).
 * Returns the descriptor or -errno. */
static int bind_sock_path(int flags)
{
    int r = shim_sock_path_make();
    if (r < 0)
        return r;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(g_shim.sock_path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, g_shim.sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    if (fd < 0)
        return -errno;
    fchmod(fd, 0600);
    unlink(g_shim.sock_path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

/* Bind and listen on the control socket's path. Returns 0 or -errno. */
int shim_listen(void)
{
    int fd = bind_sock_path(SOCK_NONBLOCK);
    if (fd < 0)
        return fd;
    if (listen(fd, 8) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    /* Keep the socket out of the way of the program's own fd numbers. */
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, 900);
    if (hi >= 0) {
        close(fd);
        fd = hi;
    }
    struct stat st;
    g_shim.listen_ino = fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
    g_shim.listen_fd = fd;
    return 0;
}

/* From now on coord calls this process (ctlproto.h, CK_CALL_COMM): its
 * manager thread is named so, before the socket goes (a connection
 * refused on its path, which stays, sends coord to look for that name;
 * `coord list` finds the process by the path). */
void shim_call_mode_enter(void)
{
    if (__atomic_exchange_n(&g_shim.call_mode, 1, __ATOMIC_SEQ_CST))
        return;
    /* the number is the program's from now on: never skipped by the
     * capture, never shut down or polled by us */
    g_shim.listen_fd = -1;
    pid_t tid = __atomic_load_n(&g_shim.manager_tid, __ATOMIC_SEQ_CST);
    if (g_shim.manager_pid == shim_real_getpid() && tid > 0) {
        /* (raw calls: the number is the program's a moment only) */
        char p[64];
        snprintf(p, sizeof p, "/proc/self/task/%d/comm", (int)tid);
        int fd = (int)syscall(SYS_openat, AT_FDCWD, p, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (syscall(SYS_write, fd, CK_CALL_COMM, strlen(CK_CALL_COMM)) < 0)
                shim_log("cannot name the manager thread: %s", strerror(errno));
            syscall(SYS_close, fd);
        }
    }
}

/* A process called by coord that has no path yet (restored, or the child
 * of one called): the control socket's path made, bound by a socket that
 * is closed at once (connections to it are refused: coord calls). Returns
 * 0 or -errno. */
int shim_call_path(void)
{
    int fd = bind_sock_path(0);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

/* The program closes descriptors first..last (close, close_range, dup2
 * or dup3 onto one: netrec.c asks before the call). When our listening
 * socket is among them, the program wants a table without it (a daemon
 * closing everything, a test that counts its descriptors): it is not
 * made again; coord calls instead. */
void shim_listen_closing(unsigned first, unsigned last)
{
    int fd = g_shim.listen_fd;
    if (fd < 0 || (unsigned)fd < first || (unsigned)fd > last || !g_shim.initialized ||
        g_shim.sock_owner != shim_real_getpid())
        return;
    /* (the number is ours only while it holds our socket: after a raw
     * close the program may have a socket of its own there) */
    struct stat st;
    int ours = fstat(fd, &st) == 0 && (uint64_t)st.st_ino == g_shim.listen_ino;
    shim_call_mode_enter();
    /* Connections are refused from now on, not left waiting in a socket
     * that lives on in the manager's poll until it wakes (this wakes it) */
    if (ours)
        shutdown(fd, SHUT_RDWR);
}

/* Answer coord's call (token from its signal, quiesce.c): connect to its
 * socket (ck_call_path) and return the connection, on a number out of the
 * program's way, or -1. */
static int call_coord(uint32_t token)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (ck_call_path(sa.sun_path, sizeof sa.sun_path, g_shim.sock_path, token) < 0)
        return -1;
    /* (non-blocking: made under held_lock, which fork waits for) */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, 900);
    if (hi >= 0) {
        close(fd);
        fd = hi;
    }
    struct ucred cr;
    socklen_t cl = sizeof cr;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 ||
        (cr.uid != getuid() && cr.uid != 0)) {
        shim_log("coord's call on %s: %s", sa.sun_path, strerror(errno));
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, 0);
    return fd;
}

/* Who the process is, in a reply. */
static void rep_identity(struct ck_ctl_rep *rep)
{
    rep->magic = CK_CTL_MAGIC;
    rep->orig_pid = (uint32_t)(g_shim.vpid ? g_shim.vpid : shim_real_getpid());
    rep->real_pid = (uint32_t)shim_real_getpid();
    rep->generation = g_shim.generation;
    rep->started_ns = g_shim.started_ns;
    snprintf(rep->app_id, sizeof rep->app_id, "%s", g_shim.app_id);
    if (!rep->exe[0])
        shim_read_file("/proc/self/cmdline", rep->exe, sizeof rep->exe);
}

static void reply(int conn, struct ck_ctl_rep *rep)
{
    rep_identity(rep);
    send(conn, rep, sizeof *rep, MSG_NOSIGNAL);
}

/* Shared page between the manager and its writer child (fork mode). */
struct child_result {
    int status;
    struct dump_stats st;
    char msg[512];
    /* A tree's writer sends the final reply itself (the program, released
     * meanwhile, may exec, which ends the manager): made ready by the
     * manager, who the process is and its pause (before the writer's
     * turn comes: CK_STATUS_FORKED), sent by the writer. */
    struct ck_ctl_rep rep;
    volatile int replied;
};

/* The final reply of a tree's process went out from its writer
 * (child_result): serve() sends none. */
static int writer_replied;

/* The checkpoint itself. Returns 0 after a checkpoint (rep filled), or 1
 * in the restored process (the connection is gone: do not reply). */
static void forget_key(void)
{
    if (g_shim.dump_key) {
        explicit_bzero(g_shim.dump_key, sizeof *g_shim.dump_key);
        munmap(g_shim.dump_key, 4096);
        g_shim.dump_key = NULL;
    }
}

/* Random bytes from the kernel (getrandom), for nonces. */
void shim_random(void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        long r = syscall(SYS_getrandom, (char *)buf + done, len - done, 0);
        if (r <= 0)
            continue;
        done += (size_t)r;
    }
}

static int coord_silence_ms(void)
{
    const char *e = getenv("CKSHIM_COORD_SILENCE_MS");
    long v = e && *e ? atol(e) : 0;
    return v > 0 && v < 24L * 3600 * 1000 ? (int)v : COORD_SILENCE_MS;
}

/* coord's next request on conn, skipping its keep-alives. 0, or -1 when
 * it said nothing for coord_silence_ms() or went away (*silent set for
 * the former). */
static int coord_next(int conn, struct ck_ctl_req *r, int *silent)
{
    int limit = coord_silence_ms();
    *silent = 0;
    for (;;) {
        struct pollfd pf = {.fd = conn, .events = POLLIN};
        int pr = poll(&pf, 1, limit);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            *silent = 1;
        if (pr <= 0 || recv(conn, r, sizeof *r, MSG_WAITALL) != (ssize_t)sizeof *r ||
            r->magic != CK_CTL_MAGIC)
            return -1;
        if (r->op != CK_OP_KEEPALIVE)
            return 0;
    }
}

/* Tell coord where the checkpoint stands (status) and wait for its next
 * request (coord_next), which must be op. Returns 0 with it in *r2, or -1 (err
 * set, what names the awaited request) when coord aborted or went away. */
static int ask_coord(int conn, int status, const char *app_id, uint32_t op,
                     struct ck_ctl_req *r2, const char *what, char *err, size_t errlen)
{
    struct ck_ctl_rep rep;
    memset(&rep, 0, sizeof rep);
    rep.magic = CK_CTL_MAGIC;
    rep.status = status;
    snprintf(rep.app_id, sizeof rep.app_id, "%s", app_id);
    /* The tree's pids this process knows by another pid than the kernel's
     * ("tree R:V ..."): coord names a zombie child by the pid the program
     * knows, and its shim cannot say so any more. */
    size_t used = 0;
    for (uint32_t i = 0; i < g_shim.ntree && used + 24 < sizeof rep.msg; i++)
        if (g_shim.tree[i].real != g_shim.tree[i].vpid)
            used += (size_t)snprintf(rep.msg + used, sizeof rep.msg - used, "%s%d:%d",
                                     used ? " " : "tree ", (int)g_shim.tree[i].real,
                                     (int)g_shim.tree[i].vpid);
    /* and the groups ("pgrp R:V ..."): a zombie alone in a group whose
     * leader is gone keeps the number the program knows */
    for (uint32_t i = 0, first = 1; i < g_shim.npgrps && used + 30 < sizeof rep.msg; i++)
        if (g_shim.pgrps[i].real > 0 && g_shim.pgrps[i].real != g_shim.pgrps[i].vpid) {
            used += (size_t)snprintf(rep.msg + used, sizeof rep.msg - used, "%s%d:%d",
                                     first ? (used ? " pgrp " : "pgrp ") : " ",
                                     (int)g_shim.pgrps[i].real, (int)g_shim.pgrps[i].vpid);
            first = 0;
        }
    if (send(conn, &rep, sizeof rep, MSG_NOSIGNAL) != (ssize_t)sizeof rep) {
        snprintf(err, errlen, "coord went away");
        return -1;
    }
    int silent;
    memset(r2, 0, sizeof *r2);
    if (coord_next(conn, r2, &silent) < 0 && silent) {
        snprintf(err, errlen, "no %s from coord within %d s (not even that it is still at "
                 "work)", what, coord_silence_ms() / 1000);
        return -1;
    }
    if (r2->magic != CK_CTL_MAGIC || r2->op != op) {
        snprintf(err, errlen, "checkpoint aborted by coord");
        return -1;
    }
    return 0;
}

/* Phase two of a CK_CKPT_STAMP checkpoint: tell coord we are ready and
 * wait for the stamp. Returns 0 (stamp in *stamp, flags in *hflags) or -1
 * when coord aborted or went away. */
static int get_stamp(int conn, const char *app_id, uint64_t *stamp, uint32_t *hflags,
                     char *err, size_t errlen)
{
    struct ck_ctl_req r2;
    if (ask_coord(conn, CK_STATUS_NEED_STAMP, app_id, CK_OP_STAMP, &r2, "counter stamp", err,
                  errlen) < 0)
        return -1;
    *stamp = r2.counter_stamp;
    *hflags = (r2.flags & CK_CKPT_COUNTER_NONE) ? CK_HF_COUNTER_NONE : 0;
    return 0;
}

/* One process of a tree checkpoint: wait for coord's CK_OP_WRITE (the
 * writer's turn; outfd's offset is where this stream goes in the tree
 * image, common/ctlproto.h). The writer child reads the connection
 * meanwhile (the manager only waits for it). Returns 0, or -ECANCELED
 * (msg set) when coord aborted or went away first. */
static int wait_op(int conn, uint32_t op, char *msg, size_t msglen)
{
    struct ck_ctl_req go;
    int silent;
    int r;
    /* (CK_OP_PREPARE comes first: a writer that cannot use it waits on) */
    while ((r = coord_next(conn, &go, &silent)) == 0 && go.op == CK_OP_PREPARE &&
           op == CK_OP_WRITE)
        ;
    if (r < 0 || go.op != op) {
        snprintf(msg, msglen, "%s", silent ? "no turn to write from coord" :
                                           "checkpoint aborted by coord");
        return -ECANCELED;
    }
    return 0;
}

static int wait_turn(int conn, char *msg, size_t msglen)
{
    return wait_op(conn, CK_OP_WRITE, msg, msglen);
}

/* One process of a tree checkpoint: tell coord the writer is forked (and
 * the program released, unless --kill), so that it can give the writers
 * their turns (CK_STATUS_FORKED). A failure shows in the writer's wait. */
static void tell_forked(int conn, int64_t t0)
{
    struct ck_ctl_rep rep;
    memset(&rep, 0, sizeof rep);
    rep.magic = CK_CTL_MAGIC;
    rep.status = CK_STATUS_FORKED;
    rep.pause_ns = (uint64_t)(shim_now_ns(CLOCK_MONOTONIC) - t0);
    (void)!send(conn, &rep, sizeof rep, MSG_NOSIGNAL);
}

/* The descriptors the manager holds for coord: the connection (0) and
 * the image it sent (1). They are close-on-exec, but a child forked
 * without exec (a shell's subshell) would hold them too, and be taken
 * into a tree checkpoint with coord's temporary image as one of its
 * files. So each is made and stored, and closed and forgotten, under
 * held_lock, which fork's prepare handler takes: a child has either none
 * of them or knows their numbers, and closes them (held_child). Never
 * held across a blocking call, nor while the program's threads are
 * parked (one may be parked in fork, holding it). */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static int held_fds[3] = {-1, -1, -1}; /* [2]: shim_held_open's */

int shim_checkpoint(const struct ck_ctl_req *req, int conn, int outfd, struct ck_ctl_rep *rep)
{
    int64_t tp = shim_now_ns(CLOCK_MONOTONIC);
    char err[512] = "";
    volatile int kill_after = (req->flags & CK_CKPT_KILL) != 0;
    volatile int nofork = (req->flags & CK_CKPT_NOFORK) || getenv("CKSHIM_NOFORK");
    volatile int writer_failed = 0; /* its writer could not be cloned: written here */
    int tree = (req->flags & CK_CKPT_TREE) && conn >= 0;
    struct ck_header hdr;

    /* The program's own hooks, while its threads run (hooks.c). The
     * caller runs the after-checkpoint hooks once it knows whether the
     * program goes on (hooks_after_checkpoint), also after a refusal. */
    int r = hooks_before_checkpoint(err, sizeof err);
    if (r < 0) {
        rep->status = r;
        snprintf(rep->msg, sizeof rep->msg, "%s", err);
        return 0;
    }
    /* The program runs during the prescan (hundreds of ms with 60000
     * regions): the pause starts after it. */
    capture_vmflags_prescan();
    /* CKSHIM_TEST_HOOK=slow-park:MS: the program runs that much longer
     * before its threads park (test_trees.sh: an exec meanwhile) */
    const char *hook = getenv("CKSHIM_TEST_HOOK");
    if (hook && !strncmp(hook, "slow-park:", 10))
        usleep((useconds_t)atoi(hook + 10) * 1000);
    if ((req->flags & CK_CKPT_TREE) && (req->flags & CK_CKPT_READY) && conn >= 0) {
        /* park together with the others (CK_STATUS_READY) */
        struct ck_ctl_req park;
        if (ask_coord(conn, CK_STATUS_READY, g_shim.app_id, CK_OP_PARK, &park,
                      "go-ahead to park", err, sizeof err) < 0) {
            rep->status = -ECANCELED;
            snprintf(rep->msg, sizeof rep->msg, "%s", err);
            return 0;
        }
    }
    int64_t t0 = shim_now_ns(CLOCK_MONOTONIC);
    r = quiesce_stop_threads(err, sizeof err);
    if (r < 0) {
        rep->status = r;
        snprintf(rep->msg, sizeof rep->msg, "%s", err);
        return 0;
    }
    capture_flush_unsent();
    /* One process of a tree: capture only once every process is parked,
     * so the tree is taken at one moment (no byte between two of them is
     * seen twice or lost). */
    g_shim.tree_ckpt = (req->flags & CK_CKPT_TREE) != 0;
    if (g_shim.tree_ckpt) {
        struct ck_ctl_req go;
        if (conn < 0 || ask_coord(conn, CK_STATUS_PARKED, g_shim.app_id, CK_OP_CAPTURE, &go,
                                  "go-ahead to capture", err, sizeof err) < 0) {
            g_shim.tree_ckpt = 0;
            quiesce_release();
            rep->status = -ECANCELED;
            snprintf(rep->msg, sizeof rep->msg, "%s", err);
            return 0;
        }
        g_shim.nopeek_on = (go.flags & CK_CAPTURE_NOPEEK) != 0;
        g_shim.nopeek_base = go.counter_stamp;
        memcpy(g_shim.nopeek, go.shared, sizeof g_shim.nopeek);
    }
    g_shim.ckpt_noversions = (req->flags & CK_CKPT_NO_VERSIONS) != 0;
    g_shim.ckpt_nshared = req->nshared < CK_MAX_SHARED ? req->nshared : CK_MAX_SHARED;
    memcpy(g_shim.ckpt_shared, req->shared, sizeof g_shim.ckpt_shared);
    r = capture_all(err, sizeof err);
    g_shim.tree_ckpt = 0;
    g_shim.nopeek_on = 0;
    g_shim.ckpt_noversions = 0;
    g_shim.ckpt_nshared = 0;
    if (r < 0) {
        capture_forget(1);
        quiesce_release();
        rep->status = r;
        snprintf(rep->msg, sizeof rep->msg, "%s", err);
        return 0;
    }
    if (req->app_id[0]) /* --id: the program keeps it for later checkpoints */
        snprintf(g_shim.app_id, sizeof g_shim.app_id, "%s", req->app_id);
    shim_fill_header(&hdr, req);
    g_shim.dump_key = NULL;
    if (req->flags & CK_CKPT_MAC) {
        /* The key goes into a mapping the image does not contain, and is
         * wiped from the request (on our stack, which the image does). */
        struct ck_key *k = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                -1, 0);
        if (k == MAP_FAILED) {
            capture_forget(1);
            quiesce_release();
            rep->status = -ENOMEM;
            snprintf(rep->msg, sizeof rep->msg, "out of memory");
            return 0;
        }
        struct ck_ctl_req *rw = (struct ck_ctl_req *)req;
        memcpy(k->mac, rw->key_mac, sizeof k->mac);
        memcpy(k->enc, rw->key_enc, sizeof k->enc);
        memcpy(k->id, rw->key_id, sizeof k->id);
        explicit_bzero(rw->key_mac, sizeof rw->key_mac);
        explicit_bzero(rw->key_enc, sizeof rw->key_enc);
        g_shim.dump_key = k;
        hdr.flags |= CK_HF_MAC;
        if (req->flags & CK_CKPT_ENCRYPT)
            hdr.flags |= CK_HF_ENCRYPTED;
        memcpy(hdr.key_id, k->id, sizeof hdr.key_id);
        shim_random(hdr.nonce, sizeof hdr.nonce);
    }
    if (req->flags & CK_CKPT_COUNTER_NONE)
        hdr.flags |= CK_HF_COUNTER_NONE;
    if ((req->flags & CK_CKPT_STAMP) && conn >= 0) {
        uint32_t hflags = 0;
        if (get_stamp(conn, hdr.app_id, &hdr.counter_stamp, &hflags, err, sizeof err) < 0) {
            forget_key();
            capture_forget(1);
            quiesce_release();
            rep->status = -ECANCELED;
            snprintf(rep->msg, sizeof rep->msg, "%s", err);
            return 0;
        }
        hdr.flags |= hflags;
        /* threads parked: what they read from here on is after this image */
        netrec_new_epoch(hdr.counter_stamp);
    }

    /* The manager's own park point: the restorer resumes it here. */
    if (shim_ctx_save(&g_shim.manager_ctx)) {
        g_shim.progress = 0; /* (the image's writer had it on, for that coord) */
        /* the old life's connection and image: not ours here (threads
         * still parked: none forks before this) */
        held_fds[0] = held_fds[1] = held_fds[2] = -1;
        /* (a stopped process's stop at release was the old life's: the
         * restore stops it again by the tree's entry, restore_stop) */
        g_shim.release_stop = g_shim.release_deferred = 0;
        restore_finish();
        return 1;
    }

    struct child_result *cr = mmap(NULL, sizeof *cr, PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (cr == MAP_FAILED) {
        quiesce_release();
        rep->status = -ENOMEM;
        snprintf(rep->msg, sizeof rep->msg, "out of memory");
        return 0;
    }
    memset(cr, 0, sizeof *cr);
    writer_replied = 0;
    if (tree) {
        rep_identity(&cr->rep);
        cr->rep.nthreads = g_shim.nthreads ? g_shim.nthreads - 1 : 0;
    }
    int64_t pause_end = 0;
    g_shim.progress = (req->flags & CK_CKPT_PROGRESS) && conn >= 0;
    g_shim.progress_conn = conn;
    long long writer_cpu_ns = -1;
    if (nofork) {
        if (tree)
            tell_forked(conn, t0);
        cr->status = tree ? wait_turn(conn, cr->msg, sizeof cr->msg) : 0;
        if (cr->status == 0)
            cr->status = dump_image(outfd, &hdr, &cr->st, cr->msg, sizeof cr->msg, 0, -1, 0);
    } else {
        /* A raw clone without an exit signal: no atfork handlers run (a
         * parked thread may hold malloc's locks), and the program's own
         * wait(-1) never sees this child. */
        capture_fork_flags(1);
        g_shim.ckpt_idle = (req->flags & CK_CKPT_IDLE) != 0;
        g_shim.ckpt_idle_ms = req->idle_ms;
        long child = syscall(SYS_clone, 0L, NULL, NULL, NULL, 0L);
        if (child == 0) {
            /* The writer ends with the manager thread (the program killed:
             * no use going on), except a tree's: the program, released
             * while its writer waits for its turn, may exec (which ends
             * the manager), and the stream is still good; the writer then
             * ends when coord does (the connection closes). */
            if (!tree)
                syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
            /* (a tree's writer checks its snapshot once coord says every
             * process forked: reading smaps walks its page tables, which
             * would take the cores from the other processes' forks, their
             * pause; then it compresses ahead, and writes in its turn) */
            int s = tree ? wait_op(conn, CK_OP_PREPARE, cr->msg, sizeof cr->msg) : 0;
            if (s == 0)
                s = capture_check_fork_child(cr->msg, sizeof cr->msg);
            if (s == 0)
                s = dump_image(outfd, &hdr, &cr->st, cr->msg, sizeof cr->msg, 1,
                               tree ? conn : -1, coord_silence_ms());
            cr->status = s;
            if (tree) {
                struct ck_ctl_rep *fin = &cr->rep;
                int64_t now = shim_now_ns(CLOCK_MONOTONIC);
                fin->status = s;
                fin->bytes = cr->st.bytes;
                fin->pages = cr->st.pages;
                fin->raw_bytes = cr->st.raw_bytes;
                fin->total_ns = (uint64_t)(now - tp);
                if (kill_after)
                    fin->pause_ns = (uint64_t)(now - t0); /* parked until now */
                if (s < 0)
                    snprintf(fin->msg, sizeof fin->msg, "%s", cr->msg);
                cr->replied = send(conn, fin, sizeof *fin, MSG_NOSIGNAL) == (ssize_t)sizeof *fin;
            }
            syscall(SYS_exit_group, s ? 1 : 0);
        }
        capture_fork_flags(0);
        g_shim.ckpt_idle = 0; /* not for a writer that is the program itself */
        g_shim.writer_pid = child > 0 ? (pid_t)child : 0;
        writer_failed = child < 0;
        if (child < 0) {
            if (tree)
                tell_forked(conn, t0);
            cr->status = tree ? wait_turn(conn, cr->msg, sizeof cr->msg) : 0;
            if (cr->status == 0)
                cr->status = dump_image(outfd, &hdr, &cr->st, cr->msg, sizeof cr->msg, 0, -1, 0);
        } else {
            /* (told before the release: a program that then ends at once
             * takes its manager with it, and coord would wait for the
             * word the whole reply time) */
            if (tree)
                tell_forked(conn, t0);
            if (!kill_after) {
                pause_end = shim_now_ns(CLOCK_MONOTONIC);
                quiesce_release();
                cr->rep.pause_ns = (uint64_t)(pause_end - t0);
            }
            int ws = 0;
            struct rusage ru;
            memset(&ru, 0, sizeof ru);
            /* raw: the waitpid wrapper would read child as a pid the tree knew */
            while (syscall(SYS_wait4, (pid_t)child, &ws, __WCLONE, &ru) < 0 && errno == EINTR)
                ;
            writer_cpu_ns = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
                            (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
            g_shim.writer_pid = 0;
            if (cr->status == 0 && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0)) {
                cr->status = -EIO;
                snprintf(cr->msg, sizeof cr->msg, "the image writer died (%s)",
                         WIFSIGNALED(ws) ? strsignal(WTERMSIG(ws)) : "exit status");
            }
        }
    }
    /* (a tree's image is synced once, by coord) */
    if (cr->status == 0 && !tree && fsync(outfd) < 0 && errno != EINVAL && errno != EROFS) {
        cr->status = -errno;
        snprintf(cr->msg, sizeof cr->msg, "fsync of the image failed: %s", strerror(errno));
    }
    g_shim.progress = 0;
    int64_t t1 = shim_now_ns(CLOCK_MONOTONIC);
    if (!pause_end)
        pause_end = t1;
    rep->status = cr->status;
    rep->bytes = cr->st.bytes;
    rep->pages = cr->st.pages;
    rep->raw_bytes = cr->st.raw_bytes;
    rep->total_ns = (uint64_t)(t1 - tp);
    /* The pause counts from the first thread stopped (t0: just before
     * the signals go out) to the release. */
    rep->pause_ns = (uint64_t)(pause_end - t0);
    rep->nthreads = g_shim.nthreads ? g_shim.nthreads - 1 : 0; /* as list: not the manager */
    if (cr->status < 0)
        snprintf(rep->msg, sizeof rep->msg, "%s", cr->msg);
    else if (writer_cpu_ns >= 0)
        snprintf(rep->msg, sizeof rep->msg, CK_WRITER_NOTE "%lld %s %lld", writer_cpu_ns,
                 cr->st.idle ? "idle" : "normal", (long long)cr->st.normal_after_ns);
    writer_replied = cr->replied;
    munmap(cr, sizeof *cr);
    capture_forget(1);
    forget_key();
    if (kill_after && rep->status == 0)
        return 2;
    /* (written here, without a writer: nofork, or its clone failed) */
    if (kill_after || nofork || writer_failed)
        quiesce_release();
    return 0;
}

/* The lock and the mark that this thread holds it change together:
 * coord's hold (the checkpoint signal, blocked meanwhile) sees both or
 * neither. */
static void held_lock_mark(int take)
{
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, g_shim.ckpt_signal);
    /* (the system call: the shim's own pthread_sigmask would let the
     * checkpoint signal through) */
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &one, &old, 8);
    if (take) {
        pthread_mutex_lock(&held_lock);
        shim_tls.fork_lock = 1;
    } else {
        shim_tls.fork_lock = 0;
        pthread_mutex_unlock(&held_lock);
    }
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, 8);
}

static void held_prepare(void)
{
    held_lock_mark(1);
    /* CKSHIM_TEST_HOOK=slow-fork: the fork waits 300 ms here, holding
     * the lock, after saying so on stderr (test_stopped.sh: a process
     * stopped inside fork is checkpointed) */
    const char *hook = getenv("CKSHIM_TEST_HOOK");
    if (hook && !strcmp(hook, "slow-fork")) {
        struct timespec t = {0, 300000000};
        (void)!write(2, "ckshim: forking\n", 16);
        nanosleep(&t, NULL);
    }
}

static void held_parent(void)
{
    held_lock_mark(0);
}

/* coord's hold of a thread (quiesce_hold) that is inside fork, holding
 * held_lock since the prepare handler: the manager needs the lock to take
 * coord's connection, which the hold waits for. The thread does nothing
 * while held (no fork system call): the lock is let go for the hold and
 * taken again after (before the thread parks or goes on). 1 if dropped. */
int shim_fork_lock_drop(void)
{
    if (!shim_tls.fork_lock)
        return 0;
    pthread_mutex_unlock(&held_lock);
    return 1;
}

void shim_fork_lock_take(void)
{
    pthread_mutex_lock(&held_lock);
}

/* A child made by clone(CLONE_FILES) shares its parent's descriptor
 * table: the parent's descriptors (its control socket, coord's
 * connection) are forgotten there, never closed (the close would be the
 * parent's too). Set while the child's handlers run. */
static int child_shares_table;

static void held_child(void)
{
    /* CKSHIM_TEST_HOOK=keep-held: the child keeps them (test_trees.sh:
     * capture's second line, coords_own, must leave them out) */
    const char *hook = getenv("CKSHIM_TEST_HOOK");
    for (int i = 0; i < 3 && !(hook && !strcmp(hook, "keep-held")); i++)
        if (held_fds[i] >= 0) {
            if (!child_shares_table)
                close(held_fds[i]);
            held_fds[i] = -1;
        }
    held_lock_mark(0);
}

/* A file the manager reads while the program's threads run (the prescan
 * of /proc/self/smaps: tens of ms): opened and recorded, and closed and
 * forgotten, under held_lock like coord's descriptors, so that a child
 * forked meanwhile closes it (held_child) and never takes the parent's
 * /proc file into an image, where restore could not find it again. One
 * at a time. Returns the fd or -errno. */
int shim_held_open(const char *path)
{
    pthread_mutex_lock(&held_lock);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int e = errno;
    held_fds[2] = fd;
    pthread_mutex_unlock(&held_lock);
    return fd < 0 ? -e : fd;
}

void shim_held_release(void)
{
    pthread_mutex_lock(&held_lock);
    if (held_fds[2] >= 0)
        close(held_fds[2]);
    held_fds[2] = -1;
    pthread_mutex_unlock(&held_lock);
}

/* Close held descriptor *fd (one of held_fds) and forget it. Only with
 * the program's threads running; parked (--kill), none can fork: close. */
static void held_close(int *fd, int parked)
{
    if (*fd < 0)
        return;
    if (!parked)
        pthread_mutex_lock(&held_lock);
    close(*fd);
    *fd = -1;
    if (!parked)
        pthread_mutex_unlock(&held_lock);
}

/* Receive one request and an optional fd (held_fds[1]), waiting up to
 * coord_silence_ms() for it. Returns 0 or -errno. */
static int recv_req(int conn, struct ck_ctl_req *req)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = req, .iov_len = sizeof *req};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    ssize_t n;
    for (;;) {
        /* waited for outside the lock: forks go on meanwhile */
        struct pollfd pf = {.fd = conn, .events = POLLIN};
        int pr = poll(&pf, 1, coord_silence_ms());
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -ETIMEDOUT;
        pthread_mutex_lock(&held_lock);
        n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        int e = errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n >= 0 && c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                int fd;
                memcpy(&fd, CMSG_DATA(c), sizeof fd);
                if (held_fds[1] >= 0)
                    close(held_fds[1]);
                held_fds[1] = fd;
            }
        pthread_mutex_unlock(&held_lock);
        if (n >= 0 || (e != EINTR && e != EAGAIN))
            break;
    }
    if (n != (ssize_t)sizeof *req || req->magic != CK_CTL_MAGIC)
        return -EPROTO;
    return 0;
}

/* coord has closed its end of the connection (it died or gave up). */
static int peer_gone(int conn)
{
    struct pollfd pf = {.fd = conn, .events = POLLIN | POLLRDHUP};
    if (poll(&pf, 1, 0) <= 0)
        return 0;
    char b;
    return (pf.revents & (POLLHUP | POLLRDHUP | POLLERR)) ||
           recv(conn, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Wait for coord's verdict on the image just written (CK_CKPT_COMMIT).
 * Returns 1 for CK_OP_COMMIT; 0 for CK_OP_ABORT, or when coord went away
 * or said nothing within the time limit (*gone set then). */
static int wait_commit(int conn, int *gone)
{
    struct ck_ctl_req r;
    int silent;
    if (coord_next(conn, &r, &silent) < 0) {
        *gone = 1;
        if (silent)
            shim_log("no word from coord for %d s during the commit: the program goes on, "
                     "the image is not committed", coord_silence_ms() / 1000);
        return 0;
    }
    return r.op == CK_OP_COMMIT;
}

/* coord went away before committing the image it asked for: remove its
 * temporary file (".NAME.tmp.*", still at the path the descriptor was
 * opened with, the same inode), so an interrupted checkpoint leaves no
 * hidden multi-gigabyte file behind. */
static void remove_uncommitted(int fd)
{
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0 || path[0] != '/')
        return;
    path[n] = 0;
    const char *base = strrchr(path, '/') + 1;
    if (base[0] != '.' || !strstr(base, ".tmp."))
        return;
    struct stat a, b;
    if (fstat(fd, &a) < 0 || lstat(path, &b) < 0 || !S_ISREG(b.st_mode) ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return;
    if (unlink(path) == 0)
        shim_log("coord went away: removed its unfinished image %s", path);
}

/* The process's threads (Threads: of /proc/self/status), or -1. */
static int thread_count(void)
{
    char st[4096];
    const char *p = shim_read_file("/proc/self/status", st, sizeof st) > 0
                        ? strstr(st, "\nThreads:")
                        : NULL;
    return p ? atoi(p + 9) : -1;
}

/* What serve() did, for the manager's loop. */
enum { SERVE_DONE, SERVE_CHECKPOINTED, SERVE_RESTORED };

/* Serve coord's connection, held_fds[0]; the descriptor a request brings
 * is held_fds[1] (closed here, or left to the old life: SERVE_RESTORED). */
static int serve(void)
{
    int conn = held_fds[0];
    struct ucred cr;
    socklen_t cl = sizeof cr;
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 ||
        (cr.uid != getuid() && cr.uid != 0))
        return SERVE_DONE;
    struct ck_ctl_req req;
    struct ck_ctl_rep rep;
    memset(&rep, 0, sizeof rep);
    int rr = recv_req(conn, &req), fd = held_fds[1];
    if (rr < 0) {
        held_close(&held_fds[1], 0);
        if (rr == -ETIMEDOUT)
            return SERVE_DONE;
        rep.status = -EPROTO;
        snprintf(rep.msg, sizeof rep.msg, "malformed request");
        reply(conn, &rep);
        return SERVE_DONE;
    }
    if (req.op == CK_OP_INFO) {
        int n = thread_count();
        if (n > 0)
            rep.nthreads = (uint32_t)n - 1; /* not the manager */
        reply(conn, &rep);
    } else if (req.op == CK_OP_CHECKPOINT) {
        /* a stopped process (coord continued it for this): stopped
         * again before its threads go (quiesce_end_request), whatever
         * the outcome */
        g_shim.release_stop = ck_stop_signal(req.stop_sig) ? (int)req.stop_sig : 0;
        if ((req.flags & CK_CKPT_MAC) && ck_auth_init() < 0) {
            rep.status = -ENOSYS;
            snprintf(rep.msg, sizeof rep.msg, "libsodium could not be initialised");
            reply(conn, &rep);
            held_close(&held_fds[1], 0);
            quiesce_end_request(0);
            return SERVE_DONE;
        }
        if (fd < 0) {
            rep.status = -EBADF;
            snprintf(rep.msg, sizeof rep.msg, "no output file descriptor was passed");
            reply(conn, &rep);
            quiesce_end_request(0);
            return SERVE_DONE;
        }
        shim_skip_fds[0] = conn;
        shim_skip_fds[1] = fd;
        int r = shim_checkpoint(&req, conn, fd, &rep);
        shim_skip_fds[0] = shim_skip_fds[1] = -1;
        if (r == 1)
            return SERVE_RESTORED; /* conn and fd belong to the old life */
        if (!writer_replied)
            reply(conn, &rep);
        writer_replied = 0;
        int end = r == 2, gone = 0;
        if (rep.status == 0 && (req.flags & CK_CKPT_COMMIT)) {
            /* The image is written but not yet the user's: with --kill
             * the program ends only once coord has committed it. */
            if (!wait_commit(conn, &gone) && end) {
                quiesce_release();
                end = 0;
            }
        } else {
            gone = peer_gone(conn);
        }
        if (gone && (req.flags & CK_CKPT_TMPFILE))
            remove_uncommitted(fd);
        /* (with --kill and the image committed, threads stay parked; a
         * stopped process's threads go only after its stop, and one may
         * have parked inside fork, holding the lock held_close takes:
         * the request ends first) */
        quiesce_end_request(end);
        held_close(&held_fds[1], end);
        if (end) {
            /* --kill: the image is committed; end without running further
             * (no after-checkpoint hooks: the program does not go on). */
            ck_inet_reset_pairs();
            held_close(&held_fds[0], 1);
            unlink(g_shim.sock_path);
            syscall(SYS_kill, shim_real_getpid(), SIGKILL);
        }
        /* The checkpoint is over (committed, failed or refused) and the
         * program goes on. */
        return SERVE_CHECKPOINTED;
    } else {
        rep.status = -EOPNOTSUPP;
        snprintf(rep.msg, sizeof rep.msg, "unknown request %u", req.op);
        reply(conn, &rep);
    }
    held_close(&held_fds[1], 0);
    return SERVE_DONE;
}

static void *manager_main(void *arg)
{
    (void)arg;
    /* (before call_mode is read: shim_call_mode_enter sets that, then
     * reads this; one of the two names the thread) */
    __atomic_store_n(&g_shim.manager_tid, shim_real_gettid(), __ATOMIC_SEQ_CST);
    shim_tls.vtid = -1; /* never virtualized: internal thread */
    /* Born with every signal blocked. The checkpoint signal (coord's
     * calls; its holds, which the handler lets be for this thread) is
     * taken only in the wait below, never in serve(), whose calls it
     * would interrupt; taken there, it does not pile up. (Hooks run as
     * the program's code, with no signal blocked: hooks.c.) */
    long off = find_tid_offset();
    if (off != g_shim.tid_off)
        shim_log("tid offset mismatch: main %ld manager %ld", g_shim.tid_off, off);
    if (g_shim.call_mode)
        prctl(PR_SET_NAME, CK_CALL_COMM, 0, 0, 0);
    for (;;) {
        int call = __atomic_load_n(&g_shim.call_mode, __ATOMIC_SEQ_CST);
        struct pollfd pf[2] = {{.fd = call ? -1 : g_shim.listen_fd, .events = POLLIN},
                               {.fd = seed_trigger_fd(), .events = POLLIN}};
        /* coord's call is a signal (quiesce.c): taken only inside the
         * wait, so that one that comes before it is not slept through */
        /* (every signal blocked outside it, set here whatever a hook or
         * a wrapper left: the shim's pthread_sigmask lets the checkpoint
         * signal through) */
        sigset_t all, wait;
        sigfillset(&all);
        syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
        wait = all;
        sigdelset(&wait, g_shim.ckpt_signal);
        int ms = netrec_poll_ms();
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        if (g_shim.call_head == g_shim.call_tail &&
            syscall(SYS_ppoll, pf, 2, ms >= 0 ? &ts : NULL, &wait, 8) < 0 && errno != EINTR)
            usleep(10000);
        netrec_sync();
        /* A restored program's after-restore hooks run here, once its
         * threads run again (restore_finish released them). */
        if (pf[1].fd >= 0 && (pf[1].revents & POLLIN)) {
            if (seed_dump() == 1)
                hooks_after_restore();
            continue;
        }
        int conn;
        if (call) {
            uint32_t t = __atomic_load_n(&g_shim.call_tail, __ATOMIC_SEQ_CST);
            if (t == __atomic_load_n(&g_shim.call_head, __ATOMIC_SEQ_CST))
                continue;
            uint32_t token = g_shim.call_token[t % CK_CALL_QUEUE];
            __atomic_store_n(&g_shim.call_tail, t + 1, __ATOMIC_SEQ_CST);
            pthread_mutex_lock(&held_lock);
            conn = held_fds[0] = call_coord(token);
            pthread_mutex_unlock(&held_lock);
            if (conn < 0)
                continue;
        } else {
            if (!(pf[0].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)))
                continue;
            /* the program closed every descriptor (ours too, past the
             * shim's close: a raw system call) and may have been given
             * our number since: a socket of its own, never ours to
             * accept on; coord calls from now on */
            struct stat lst;
            if (fstat(g_shim.listen_fd, &lst) < 0 ||
                (uint64_t)lst.st_ino != g_shim.listen_ino) {
                shim_call_mode_enter();
                continue;
            }
            /* (the listening socket is non-blocking: not a blocking call) */
            pthread_mutex_lock(&held_lock);
            conn = held_fds[0] = accept4(g_shim.listen_fd, NULL, NULL,
                                         SOCK_CLOEXEC | SOCK_NONBLOCK);
            pthread_mutex_unlock(&held_lock);
            if (conn < 0) {
                if (errno == EINTR || errno == ECONNABORTED)
                    continue;
                if (errno == EBADF || errno == EINVAL || errno == ENOTSOCK)
                    shim_call_mode_enter(); /* closed by the program */
                else
                    usleep(10000);
                continue;
            }
            fcntl(conn, F_SETFL, 0);
        }
        int sr = serve();
        if (sr == SERVE_RESTORED) {
            /* Not closed: that number is no longer ours (a hook may be
             * given it for its new connection). */
            hooks_after_restore();
            continue;
        }
        held_close(&held_fds[0], 0);
        /* After coord is done with the connection: it does not wait. */
        if (sr == SERVE_CHECKPOINTED)
            hooks_after_checkpoint();
    }
    return NULL;
}

static int start_manager(void)
{
    /* Every signal blocked, the checkpoint signal too (the system call:
     * the shim's pthread_sigmask lets it through), until the manager
     * knows its tid: coord's hold of a stopped process signals every
     * thread, and a manager that took it before it knew itself would
     * hold itself (a process exec'd just before its stop: its
     * checkpoint waited for the hold to run out). */
    sigset_t all, old;
    sigfillset(&all);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 1 << 20);
    int r = pthread_create(&g_shim.manager, &a, manager_main, NULL);
    pthread_attr_destroy(&a);
    if (r == 0)
        g_shim.manager_pid = shim_real_getpid();
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, 8);
    return -r;
}

/* The application id of a program run without CKSHIM_APP_ID / --id: its
 * name and a random part, so every run has its own counter (two python3
 * programs never make each other's images stale). It lives in g_shim, so
 * it stays the same across the program's restores and checkpoints. */
static void default_app_id(void)
{
    char exe[512], name[40];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    const char *b = strrchr(exe, '/');
    b = b ? b + 1 : exe;
    size_t k = 0;
    for (; b[k] && k < sizeof name - 1; k++) {
        unsigned char ch = (unsigned char)b[k];
        name[k] = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                          ch == '.' || ch == '_' || ch == '+' || ch == '-'
                      ? (char)ch
                      : '_';
    }
    name[k] = 0;
    uint8_t rnd[6];
    shim_random(rnd, sizeof rnd);
    snprintf(g_shim.app_id, sizeof g_shim.app_id, "%s-%02x%02x%02x%02x%02x%02x",
             k ? name : "prog", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
}

static void atfork_child(void)
{
    /* The child is a new process with one thread: forget the parent's
     * virtual ids and give it its own manager and socket. */
    if (!g_shim.initialized)
        return;
    /* Forked by a hook on the manager thread (shim_tls.vtid -1, the
     * manager's mark): the child's thread is the program's, not one
     * with every signal blocked as the manager has them (a SIGTERM
     * would never end it) */
    if (shim_tls.vtid == -1) {
        sigset_t none;
        sigemptyset(&none);
        syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
    }
    /* The parent may see itself under its old pid: so must we. */
    g_shim.manager_pid = 0; /* the parent's */
    g_shim.parent_vpid = g_shim.vpid;
    g_shim.parent_real = (pid_t)syscall(SYS_getppid);
    g_shim.vpid = 0;
    shim_tls.vtid = 0;
    g_shim.generation = 0;
    cputime_forget();
    g_shim.started_ns = (uint64_t)shim_now_ns(CLOCK_REALTIME);
    /* A child is a program of its own: its own counter, unless the id was
     * chosen on purpose. */
    const char *id = getenv("CKSHIM_APP_ID");
    if (!id || !*id)
        default_app_id();
    int lfd = g_shim.listen_fd;
    g_shim.listen_fd = -1; /* (first: our close is the program's too) */
    if (lfd >= 0 && !child_shares_table)
        close(lfd);
    /* The child of a program that wants none of our descriptors is
     * called too (the table it inherited has none). */
    /* (called without a path too: coord calls on a missing one) */
    if (g_shim.call_mode) {
        shim_call_path();
        start_manager();
        /* forked by a hook on the manager thread: not its name */
        char comm[16] = "";
        prctl(PR_GET_NAME, comm, 0, 0, 0);
        if (!strcmp(comm, CK_CALL_COMM)) {
            const char *b = strrchr(g_shim.exe, '/');
            prctl(PR_SET_NAME, b ? b + 1 : g_shim.exe, 0, 0, 0);
        }
    } else if (shim_listen() == 0) {
        start_manager();
    }
    /* stopped before its manager ran, and continued by coord for a
     * checkpoint (quiesce.c: ckpt_handler): held now that it runs */
    if (g_shim.hold_requested) {
        g_shim.hold_requested = 0;
        quiesce_hold(0);
    }
}

void shim_clone_prepare(void)
{
    held_prepare();
}

void shim_clone_parent(void)
{
    held_parent();
}

/* The children of ours that share our descriptor table (clone with
 * CLONE_FILES), by the pids the program knows (the same after a
 * restore): each made its control socket in our table, which outlives
 * it. When one is waited for, that socket (bound at its path) is closed
 * and the path removed; without this a program making such children
 * one after another filled its table (helper-55: 1100 children, EMFILE). */
#define MAX_SHARERS 256
static pid_t sharers[MAX_SHARERS];
static pthread_mutex_t sharers_lock = PTHREAD_MUTEX_INITIALIZER;

void shim_sharer_born(pid_t pid)
{
    pid_t v = shim_tree_virt(pid);
    pthread_mutex_lock(&sharers_lock);
    for (int i = 0; i < MAX_SHARERS; i++)
        if (!sharers[i]) {
            sharers[i] = v;
            break;
        }
    pthread_mutex_unlock(&sharers_lock);
}

void shim_sharer_reaped(pid_t pid)
{
    pid_t v = shim_tree_virt(pid);
    int found = 0;
    pthread_mutex_lock(&sharers_lock);
    for (int i = 0; i < MAX_SHARERS && !found; i++)
        if (sharers[i] == v) {
            sharers[i] = 0;
            found = 1;
        }
    pthread_mutex_unlock(&sharers_lock);
    char path[sizeof g_shim.sock_path];
    if (!found || !g_shim.sock_dir[0] ||
        ck_sock_path_self(path, sizeof path, g_shim.sock_dir, pid) < 0)
        return;
    /* its listening socket, at the lowest free number from 900 on */
    int dfd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY |
                           O_CLOEXEC);
    if (dfd < 0)
        return;
    char buf[4096];
    struct fdlist dl = {.dfd = dfd, .buf = buf, .cap = sizeof buf};
    for (int fd; (fd = fdlist_next(&dl)) >= 0;) {
        struct sockaddr_un sa;
        socklen_t len = sizeof sa;
        if (fd < 900 || fd == dfd || fd == g_shim.listen_fd ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || sa.sun_family != AF_UNIX ||
            len <= offsetof(struct sockaddr_un, sun_path) ||
            strncmp(sa.sun_path, path, sizeof sa.sun_path) != 0)
            continue;
        close(fd);
        unlink(path);
    }
    syscall(SYS_close, dfd);
}

/* This process shares its parent's table and execs: the exec gives it a
 * table of its own, and its socket would stay in the old one. Given up
 * now (coord calls it if the exec fails). */
void shim_sharer_exec(void)
{
    int fd = g_shim.listen_fd;
    if (!g_shim.shares_table || fd < 0 || !g_shim.initialized ||
        g_shim.sock_owner != shim_real_getpid())
        return;
    struct stat st;
    int ours = fstat(fd, &st) == 0 && (uint64_t)st.st_ino == g_shim.listen_ino;
    shim_call_mode_enter();
    if (ours) {
        shutdown(fd, SHUT_RDWR);
        close(fd);
        unlink(g_shim.sock_path);
    }
}

int shim_threads_own(void)
{
    int n = thread_count();
    if (n <= 0)
        return -1;
    n -= 1 + (g_shim.manager_pid == shim_real_getpid()) + timers_helper_running();
    return n < 0 ? 0 : n;
}

void shim_clone_child(int flags)
{
    pid_t pv = g_shim.parent_vpid, pr = g_shim.parent_real;
    /* What glibc's fork does for the child's thread and clone does not:
     * its cached tid, the word the kernel clears when it ends (unless
     * the program chose one), its robust futex list (restore.c and
     * quiesce_fixup_thread rely on both, as for a forked child). */
    char *pd = (char *)pthread_self();
    if (g_shim.tid_off > 0) {
        *(volatile pid_t *)(pd + g_shim.tid_off) = shim_real_gettid();
        if (!(flags & CLONE_CHILD_CLEARTID))
            syscall(SYS_set_tid_address, pd + g_shim.tid_off);
    }
    if (g_shim.robust_off > 0)
        syscall(SYS_set_robust_list, pd + g_shim.robust_off, 3 * sizeof(long));
    child_shares_table = (flags & CLONE_FILES) != 0;
    held_child();
    atfork_child();
    child_shares_table = 0;
    g_shim.shares_table = (flags & CLONE_FILES) != 0;
    timers_after_fork();
    if (flags & CLONE_PARENT) {
        g_shim.parent_vpid = pv;
        g_shim.parent_real = pr;
    }
}

/* Settings the shim reads at a checkpoint, as the environment had them
 * when the shim started: a program may replace its environment meanwhile
 * (nginx's workers, clearenv), and `coord run --shared-file` (which sets
 * CKSHIM_SHARED_FILES) must hold for its forked children and after a
 * restore too. One that was not set at the start is looked up now. */
static const char *const start_env_names[] = {"CKSHIM_SHARED_FILES", "CKSHIM_FILE_VERSIONS",
                                              "CKSHIM_FILE_VERSION_MAX", "CKSHIM_WRITERS",
                                              "CKSHIM_QUIESCE_TIMEOUT_MS"};
#define N_START_ENV (sizeof start_env_names / sizeof start_env_names[0])
static char *start_env[N_START_ENV];

static void start_env_keep(void)
{
    for (size_t i = 0; i < N_START_ENV; i++) {
        const char *e = getenv(start_env_names[i]);
        start_env[i] = e ? strdup(e) : NULL;
    }
}

const char *shim_env(const char *name)
{
    for (size_t i = 0; i < N_START_ENV; i++)
        if (!strcmp(name, start_env_names[i]) && start_env[i])
            return start_env[i];
    return getenv(name);
}

extern struct shim_resolve __start_ckshim_resolve[] __attribute__((visibility("hidden")));
extern struct shim_resolve __stop_ckshim_resolve[] __attribute__((visibility("hidden")));

void shim_resolve_all(void)
{
    for (struct shim_resolve *r = __start_ckshim_resolve; r < __stop_ckshim_resolve; r++)
        if (!*r->var)
            *r->var = dlsym(RTLD_NEXT, r->name);
}

__attribute__((constructor)) static void shim_init(void)
{
    if (g_shim.initialized || getenv("CKSHIM_DISABLE"))
        return;
    shim_resolve_all();
    start_env_keep();
    seed_restore_from_file();
    const char *s = getenv("CKSHIM_SIGNAL");
    g_shim.ckpt_signal = s ? atoi(s) : SIGRTMAX - 2;
    if (g_shim.ckpt_signal < 1 || g_shim.ckpt_signal >= NSIG || g_shim.ckpt_signal == SIGKILL ||
        g_shim.ckpt_signal == SIGSTOP)
        g_shim.ckpt_signal = SIGRTMAX - 2;
    g_shim.started_ns = (uint64_t)shim_now_ns(CLOCK_REALTIME);
    const char *id = getenv("CKSHIM_APP_ID");
    if (id && *id)
        snprintf(g_shim.app_id, sizeof g_shim.app_id, "%s", id);
    else
        default_app_id();
    g_shim.tid_off = find_tid_offset();
    void *head = NULL;
    size_t hlen = 0;
    if (syscall(SYS_get_robust_list, 0, &head, &hlen) == 0 && head)
        g_shim.robust_off = (long)((char *)head - (char *)pthread_self());
    g_shim.rseq_off = (long)__rseq_offset;
    g_shim.rseq_size = __rseq_size;
    /* found now: a lookup at restore could wait for the very lock it is
     * about to mend */
    void *rg = dlsym(RTLD_DEFAULT, "_rtld_global");
    Dl_info di;
    const ElfW(Sym) *sym = NULL;
    if (rg && dladdr1(rg, &di, (void **)&sym, RTLD_DL_SYMENT) && sym && sym->st_size) {
        g_shim.rtld_global = rg;
        g_shim.rtld_global_size = sym->st_size;
    }

    socktrack_init();
    if (wrappers_init() < 0 || quiesce_init() < 0 || netrec_init() < 0) {
        shim_log("initialisation failed; checkpointing disabled");
        return;
    }
    int r = shim_listen();
    if (r < 0) {
        /* Loud: the user expects to be able to checkpoint this program. */
        char dir[200] = "";
        ck_sock_dir(dir, sizeof dir);
        fprintf(stderr, "ckshim[%d]: cannot create the control socket in %s (%s%s): "
                "checkpointing is disabled for this program\n",
                (int)shim_real_getpid(), dir[0] ? dir : "?", strerror(-r),
                r == -EPERM || r == -ELOOP || r == -ENOTDIR
                    ? ": it must be a directory of yours that others cannot write to"
                    : "");
        return;
    }
    pthread_atfork(held_prepare, held_parent, held_child);
    pthread_atfork(NULL, NULL, atfork_child);
    r = seccomp_shim_init();
    if (r < 0)
        shim_log("cannot install the seccomp filter: %s", strerror(-r));
    pattr_seccomp_baseline();
    g_shim.initialized = 1;
    if (seed_init() < 0)
        shim_log("CKSHIM_DUMP_ON could not be set up");
    if (start_manager() < 0)
        shim_log("cannot start the manager thread");
}

__attribute__((destructor)) static void shim_fini(void)
{
    /* Only the process that bound the socket removes it: a child made
     * with a raw clone() (no atfork handlers, so the parent's path) or a
     * vfork child (its parent's memory) that exits must not take its
     * parent's socket away. */
    if (g_shim.initialized && g_shim.sock_path[0] && g_shim.sock_owner == shim_real_getpid())
        unlink(g_shim.sock_path);
}

/* _exit and _Exit run no destructor: a child that ends with them (every
 * worker of a Python multiprocessing pool: os._exit) left its socket
 * file behind, hundreds of them in the directory until `coord list`
 * cleared them. Removed here, then the process ends as libc's would. */
SHIM_API __attribute__((noreturn)) void _exit(int status)
{
    shim_fini();
    for (;;) {
        ck_sys6(SYS_exit_group, status, 0, 0, 0, 0, 0);
        ck_sys6(SYS_exit, status, 0, 0, 0, 0, 0);
    }
}

SHIM_API __attribute__((noreturn)) void _Exit(int status)
{
    _exit(status);
}
