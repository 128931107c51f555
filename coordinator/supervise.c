/* supervise.c - "coord run --every DURATION --images DIR -- PROG ARGS":
 * coord run as a supervisor.
 *
 * The supervisor starts PROG under the shim as its child (in a session of
 * its own, so a terminal's Ctrl-C reaches only the supervisor), takes a
 * checkpoint every DURATION into DIR/ckpt-SEQ.img and keeps the N newest.
 * Each checkpoint and each restore runs the ordinary command's code
 * (cmd_checkpoint, cmd_restore) in a forked child: no exec, but the
 * signal handlers and static state of those commands stay out of the
 * supervisor, and a checkpoint can be abandoned at any moment with a
 * signal, which the first promise (DESIGN.md) makes safe. A restored
 * program is that child itself (a foreground restore: it keeps the
 * supervisor's standard descriptors), so the supervisor stays its parent.
 *
 * DIR/supervise.state (written atomically) says what runs and which image
 * is the newest; <socket dir>/<supervisor pid>.super names DIR for
 * `coord list`. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coord.h"
#include "counter.h"
#include "fileid.h"
#include "imgio.h"
#include "netrec.h"
#include "replay.h"
#include "tree.h"

#define STATE_NAME "supervise.state"
#define MAX_RESTORES_DEFAULT 5
#define WINDOW_MS_DEFAULT 60000LL
#define RESTORE_REPORT_MS 120000
#define IDLE_LIMIT_MAX_MS 300000 /* coord checkpoint --idle-limit's bound */

struct sv {
    /* options */
    long long every_ms, window_ms;
    int keep, auto_restore, resume, max_restores, ckpt_exit; /* ckpt_exit -1: 0 */
    int pidns;                   /* --pidns: the program under coord's init */
    int normal_writer;           /* --priority normal: periodic writers not at idle */
    const char *counter_url, *app_id;
    int record_net;              /* --record-net (replay.c) */
    unsigned long long record_max; /* --record-net-max, 0: the shim's default */
    char dir[PATH_MAX];
    char **argv; /* PROG ARGS */
    /* the program */
    pid_t prog;
    int prog_status, prog_done;
    uint64_t prog_end_ns;        /* CLOCK_BOOTTIME when it was reaped */
    /* the checkpoint or restore helper (its stderr: helper_log if >= 0) */
    pid_t helper;
    int helper_log;
    int helper_status, helper_done;
    /* SIGTERM/SIGINT received, and the last one */
    int nsig, lastsig;
    /* images */
    unsigned long long seq;      /* the newest committed image, 0: none */
    unsigned long long restored; /* the seq restored last (for "again"), 0: none */
    int nrestores;               /* in restore_at */
    int total_restores;
    /* periodic checkpoints that failed since the last committed one, and
     * why the last one did (the helper's last message) */
    int ckpt_failures;
    char last_failure[400];
    /* periods skipped because a checkpoint was still being written when
     * the next one was due (an idle writer on a busy machine), and how
     * long the last such checkpoint took */
    long long skipped, overrun_ms;
    long long restore_at[64];    /* when the recent restores happened (ms) */
    char super_file[PATH_MAX];
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "10s", "500ms", "2m", "1h", "30" (seconds): milliseconds, or -1. */
static long long parse_duration(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0)
        return -1;
    double mul = 1000;
    if (!strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "m") || !strcmp(end, "min"))
        mul = 60000;
    else if (!strcmp(end, "h"))
        mul = 3600000;
    else if (*end && strcmp(end, "s"))
        return -1;
    double ms = v * mul;
    if (ms < 1 || ms > 1e12)
        return -1;
    return (long long)ms;
}

/* "4096", "64K", "64M", "1G": bytes, or 0. */
static unsigned long long parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return 0;
    unsigned long long mul = !*end ? 1 : !strcmp(end, "K") ? 1ull << 10
                                     : !strcmp(end, "M")   ? 1ull << 20
                                     : !strcmp(end, "G")   ? 1ull << 30
                                                           : 0;
    if (!mul || v > ~0ull / mul)
        return 0;
    return v * mul;
}

static int parse_count(const char *s, int min, int max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    return (int)v;
}

static void image_path(const struct sv *s, unsigned long long seq, char *out, size_t len)
{
    snprintf(out, len, "%s/ckpt-%06llu.img", s->dir, seq);
}

/* "ckpt-<digits>.img" -> its number, else 0. */
static unsigned long long image_seq(const char *name)
{
    if (strncmp(name, "ckpt-", 5) || !isdigit((unsigned char)name[5]))
        return 0;
    char *end;
    unsigned long long v = strtoull(name + 5, &end, 10);
    return strcmp(end, ".img") ? 0 : v;
}

/* The newest image's number in DIR (0: none). */
static unsigned long long newest_image(const struct sv *s)
{
    unsigned long long best = 0;
    DIR *d = opendir(s->dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        unsigned long long v = image_seq(e->d_name);
        if (v > best)
            best = v;
    }
    if (d)
        closedir(d);
    return best;
}

/* Remove the images older than the keep newest (only ever after a newer
 * one was committed), and temporary files of checkpoints whose coord is
 * gone (a crash of the machine mid-checkpoint). */
static void prune(const struct sv *s)
{
    DIR *d = opendir(s->dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        unsigned long long v = image_seq(e->d_name);
        if (v && v + (unsigned long long)s->keep <= s->seq) {
            if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT)
                ck_msg("run: cannot remove %s/%s: %s", s->dir, e->d_name, strerror(errno));
            continue;
        }
        /* ".ckpt-N.img.tmp.PID.XXXXXX" */
        const char *t = strstr(e->d_name, ".img.tmp.");
        if (strncmp(e->d_name, ".ckpt-", 6) || !t)
            continue;
        long owner = strtol(t + 9, NULL, 10);
        if (owner > 0 && owner <= INT_MAX && kill((pid_t)owner, 0) < 0 && errno == ESRCH)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    if (d)
        closedir(d);
}

int ck_image_stamp(const char *path, struct ck_header *h)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    struct ck_tree_hdr th;
    struct ck_tree_entry *te = NULL;
    char err[256];
    int tr = ck_tree_read_hdr(fd, &th, &te, NULL, err, sizeof err);
    free(te);
    ssize_t n = tr == 0 ? pread(fd, h, sizeof *h, 0) : 0;
    close(fd);
    if (tr > 0) {
        memset(h, 0, sizeof *h);
        h->counter_stamp = th.counter_stamp;
        memcpy(h->app_id, th.app_id, sizeof h->app_id);
    } else {
        const char *why;
        if (tr < 0 || n != (ssize_t)sizeof *h || ck_header_check(h, &why) < 0)
            return -1;
    }
    h->app_id[sizeof h->app_id - 1] = 0;
    return 0;
}

/* Write s as one line, '%', '\n' and '\\' escaped as %XX. */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '%' || *s == '\n' || *s == '\\')
            fprintf(f, "%%%02X", (unsigned char)*s);
        else
            fputc(*s, f);
    }
}

static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        unsigned v;
        if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1 && s[1] && s[2]) {
            *o++ = (char)v;
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

/* DIR/supervise.state, replaced atomically (temporary file, fsync,
 * rename, fsync of DIR): `coord list` and --resume read it. */
static void write_state(const struct sv *s, const char *status)
{
    char tmp[PATH_MAX + 32], path[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%d", s->dir, STATE_NAME, (int)getpid());
    snprintf(path, sizeof path, "%s/%s", s->dir, STATE_NAME);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        ck_msg("run: cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    char img[PATH_MAX + 32] = "";
    struct ck_header h;
    memset(&h, 0, sizeof h);
    if (s->seq) {
        image_path(s, s->seq, img, sizeof img);
        ck_image_stamp(img, &h);
    }
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    fprintf(f, "ckshim-supervise 1\nstatus %s\nsupervisor %d\nprogram %d\nimage %s\n"
               "seq %llu\nstamp %llu\napp_id %s\ntime %lld\nrestores %d\nevery_ms %lld\n",
            status, (int)getpid(), (int)s->prog, img, s->seq,
            (unsigned long long)h.counter_stamp, h.app_id[0] ? h.app_id : "-",
            (long long)rt.tv_sec, s->total_restores, s->every_ms);
    if (s->skipped)
        fprintf(f, "skipped %lld\nlast_overrun_ms %lld\n", s->skipped, s->overrun_ms);
    if (s->ckpt_failures) {
        fprintf(f, "ckpt_failures %d\nlast_failure ", s->ckpt_failures);
        put_escaped(f, s->last_failure);
        fputc('\n', f);
    }
    for (char **a = s->argv; *a; a++) {
        fputs("arg ", f);
        put_escaped(f, *a);
        fputc('\n', f);
    }
    int bad = fflush(f) != 0 || fsync(fd) < 0;
    if (fclose(f) != 0 || bad || rename(tmp, path) < 0) {
        ck_msg("run: cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return;
    }
    ck_fsync_dir(s->dir);
}

/* One value of DIR/supervise.state ("" if none), and the command in it
 * (args joined by NUL, length in *cmdlen). */
struct state {
    char status[32], app_id[65], image[PATH_MAX];
    int supervisor, program, restores, ckpt_failures;
    char last_failure[400];
    long long time, skipped, overrun_ms, every_ms;
    char cmd[4096];
    size_t cmdlen;
};

static int read_state(const char *dir, struct state *st)
{
    memset(st, 0, sizeof *st);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, STATE_NAME);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char line[PATH_MAX + 64];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *v = strchr(line, ' ');
        if (!v)
            continue;
        *v++ = 0;
        if (!strcmp(line, "status"))
            snprintf(st->status, sizeof st->status, "%s", v);
        else if (!strcmp(line, "app_id"))
            snprintf(st->app_id, sizeof st->app_id, "%s", v);
        else if (!strcmp(line, "image"))
            snprintf(st->image, sizeof st->image, "%s", v);
        else if (!strcmp(line, "supervisor"))
            st->supervisor = atoi(v);
        else if (!strcmp(line, "program"))
            st->program = atoi(v);
        else if (!strcmp(line, "restores"))
            st->restores = atoi(v);
        else if (!strcmp(line, "ckpt_failures"))
            st->ckpt_failures = atoi(v);
        else if (!strcmp(line, "last_failure")) {
            unescape(v);
            snprintf(st->last_failure, sizeof st->last_failure, "%s", v);
        }
        else if (!strcmp(line, "time"))
            st->time = atoll(v);
        else if (!strcmp(line, "skipped"))
            st->skipped = atoll(v);
        else if (!strcmp(line, "last_overrun_ms"))
            st->overrun_ms = atoll(v);
        else if (!strcmp(line, "every_ms"))
            st->every_ms = atoll(v);
        else if (!strcmp(line, "arg")) {
            unescape(v);
            size_t l = strlen(v) + 1;
            if (st->cmdlen + l <= sizeof st->cmd) {
                memcpy(st->cmd + st->cmdlen, v, l);
                st->cmdlen += l;
            }
        }
    }
    fclose(f);
    return 0;
}

/* Is the command in st the one given (argv)? */
static int same_command(const struct state *st, char **argv)
{
    size_t off = 0;
    for (char **a = argv; *a; a++) {
        size_t l = strlen(*a) + 1;
        if (off + l > st->cmdlen || memcmp(st->cmd + off, *a, l))
            return 0;
        off += l;
    }
    return off == st->cmdlen;
}

/* DIR: created 0700 if missing; else it must be a directory (not a
 * symbolic link) of the user's. Its absolute path goes to s->dir.
 * Returns 0 or CK_EXIT_USAGE (said why). */
static int check_dir(struct sv *s, const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) < 0) {
        if (errno != ENOENT || mkdir(dir, 0700) < 0) {
            ck_msg("run: --images %s: %s", dir, strerror(errno));
            return CK_EXIT_USAGE;
        }
        if (lstat(dir, &st) < 0) {
            ck_msg("run: --images %s: %s", dir, strerror(errno));
            return CK_EXIT_USAGE;
        }
    }
    if (S_ISLNK(st.st_mode)) {
        ck_msg("run: --images %s is a symbolic link; give the directory itself (a link can be "
               "changed to point elsewhere between checkpoints)", dir);
        return CK_EXIT_USAGE;
    }
    if (!S_ISDIR(st.st_mode)) {
        ck_msg("run: --images %s exists and is not a directory", dir);
        return CK_EXIT_USAGE;
    }
    if (st.st_uid != getuid()) {
        char user[64];
        ck_msg("run: --images %s belongs to user %s; the images must be in a directory of "
               "your own", dir, ck_user_name(user, sizeof user, st.st_uid));
        return CK_EXIT_USAGE;
    }
    if (st.st_mode & S_IWOTH) {
        ck_msg("run: --images %s is writable by every user; use a directory only you can "
               "write (chmod 700)", dir);
        return CK_EXIT_USAGE;
    }
    if (!realpath(dir, s->dir)) {
        ck_msg("run: --images %s: %s", dir, strerror(errno));
        return CK_EXIT_USAGE;
    }
    return 0;
}

/* A child for cmd_checkpoint or cmd_restore: signals as a new program
 * expects them. */
static void child_signals(void)
{
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/* Reap every child that ended; note the program's and the helper's
 * status. Others (none expected) are only reaped. */
static void reap(struct sv *s)
{
    int ws;
    pid_t p;
    while ((p = waitpid(-1, &ws, WNOHANG)) > 0) {
        if (p == s->prog) {
            s->prog_status = ws;
            s->prog_done = 1;
            s->prog_end_ns = clock_ns(CLOCK_BOOTTIME);
        } else if (p == s->helper) {
            s->helper_status = ws;
            s->helper_done = 1;
        }
    }
}

/* Wait for SIGCHLD, SIGTERM or SIGINT (blocked, taken here) until
 * deadline_ms (monotonic; < 0: no limit); then reap. */
static void wait_event(struct sv *s, long long deadline_ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig;
    if (deadline_ms < 0) {
        sig = sigwaitinfo(&set, NULL);
    } else {
        long long left = deadline_ms - now_ms();
        if (left < 0)
            left = 0;
        struct timespec ts = {left / 1000, (left % 1000) * 1000000L};
        sig = sigtimedwait(&set, NULL, &ts);
    }
    if (sig == SIGTERM || sig == SIGINT) {
        s->nsig++;
        s->lastsig = sig;
    }
    reap(s);
}

/* fork() for the supervisor's children: the program (in a session of its
 * own) or a helper (in its own process group). Either way a terminal's
 * Ctrl-C is the supervisor's to handle. Returns as fork() does. */
static pid_t fork_child(int new_session)
{
    fflush(NULL);
    pid_t p = fork();
    if (p < 0)
        ck_msg("run: fork: %s", strerror(errno));
    if (p == 0) {
        if (new_session)
            setsid();
        else
            setpgid(0, 0);
        child_signals();
    }
    return p;
}

/* The program is its process group (it leads a session of its own, and a
 * tree checkpoint takes only processes of the root's group): SIGKILL to
 * all of it, not only to its root, so no worker of a tree outlives it. */
static void kill_program(pid_t prog)
{
    if (prog > 0 && kill(-prog, SIGKILL) < 0)
        kill(prog, SIGKILL);
}

/* The sessions and process groups of the newest image's processes (a
 * tree's; none for one process), besides the program's own (its session
 * and group are prog): a shell's jobs under `set -m`, a child started in
 * a session of its own. */
static int image_groups(const struct sv *s, pid_t prog, long *ids, int max,
                        uint64_t *created_ns)
{
    int n = 0;
    *created_ns = 0;
    if (!s->seq)
        return 0;
    char img[PATH_MAX + 32], err[256];
    image_path(s, s->seq, img, sizeof img);
    int fd = open(img, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct ck_tree_hdr th;
    struct ck_tree_entry *te = NULL;
    if (fd >= 0 && ck_tree_read_hdr(fd, &th, &te, NULL, err, sizeof err) > 0) {
        *created_ns = th.created_ns;
        for (uint32_t i = 0; i < th.nprocs && n + 2 <= max; i++) {
            if (te[i].sid > 1 && te[i].sid != prog && te[i].sid != getsid(0))
                ids[n++] = te[i].sid;
            if (te[i].pgid > 1 && te[i].pgid != prog && te[i].pgid != getpgrp())
                ids[n++] = -te[i].pgid;
        }
    }
    free(te);
    if (fd >= 0)
        close(fd);
    return n;
}

/* When a process started (/proc/PID/stat's start: clock ticks since
 * boot, the kernel's boot-time clock), as CLOCK_BOOTTIME ns. */
static uint64_t started_ns(unsigned long long start_ticks)
{
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? start_ticks * (1000000000ULL / (uint64_t)hz) : 0;
}

/* SIGKILL to every process of ours left of the old program: its group
 * (kill_program), its session (fork_child made it a session leader: jobs
 * of a shell under `set -m` are in other groups of it), and the sessions
 * and groups of the newest image's processes, ids (image_groups: a
 * child in a session of its own), for processes started before that
 * image was made, created (so a number reused since by a stranger is
 * left alone). Such a process that outlived the
 * root would run beside its restored copy (a job twice, or a file it
 * holds open refusing the restore). The program is reaped: its number
 * may name a stranger's session or group once its own are empty (pid_max
 * is 32768 on many machines), so only processes started before it ended
 * (ended) are taken for its own: a stranger's process got that number
 * after. Zombies are left (an orphan's zombie that an init never reaps
 * would be waited for in vain). Returns how many were left. */
static int kill_leftovers(pid_t prog, uint64_t ended, const long *ids, int nids,
                          uint64_t created)
{
    int left = 0;
    uid_t me = getuid();
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        int p = atoi(e->d_name);
        struct ck_pstat ps;
        struct ck_procinfo pi;
        if (p <= 1 || p == getpid() || ck_pstat_read(p, &ps) < 0 || ps.state == 'Z' ||
            ps.state == 'X' || ck_proc_info(p, &pi) < 0 || pi.ruid != me)
            continue;
        uint64_t st = started_ns(ps.start);
        int hit = (ps.sid == prog || ps.pgrp == prog) && st && st < ended;
        for (int k = 0; k < nids && !hit && st && st < created; k++)
            hit = ids[k] == ps.sid || ids[k] == -ps.pgrp;
        if (hit && kill(p, SIGKILL) == 0)
            left++;
    }
    if (d)
        closedir(d);
    return left;
}

/* Before a restore: wait (up to 10 s) until no process of the old
 * program is left (kill_leftovers), reaping what ends, so a tree's
 * workers never run twice. */
static int group_gone(struct sv *s, pid_t prog)
{
    long ids[128];
    uint64_t created = 0;
    int nids = image_groups(s, prog, ids, 128, &created);
    /* (the image's time, CLOCK_REALTIME, on the boot-time clock) */
    uint64_t rt = clock_ns(CLOCK_REALTIME), bt = clock_ns(CLOCK_BOOTTIME);
    created = created > rt - bt ? created - (rt - bt) : 0;
    for (int i = 0; i < 1000; i++) {
        reap(s);
        /* (not reaped yet: none can have its number) */
        uint64_t ended = s->prog_end_ns ? s->prog_end_ns : clock_ns(CLOCK_BOOTTIME);
        if (!kill_leftovers(prog, ended, ids, nids, created))
            return 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Run fn(argc, argv) in a helper child. Returns 0 or -1. */
static int fork_helper(struct sv *s, int (*fn)(int, char **), int argc, char **argv)
{
    pid_t p = fork_child(0);
    if (p < 0)
        return -1;
    if (p == 0) {
        if (s->helper_log >= 0)
            dup2(s->helper_log, 2);
        _exit(fn(argc, argv));
    }
    s->helper = p;
    s->helper_done = 0;
    return 0;
}

/* The helper ended (or did with signal 0...). Exit status, -1: signal. */
static int helper_exit(const struct sv *s)
{
    return WIFEXITED(s->helper_status) ? WEXITSTATUS(s->helper_status) : -1;
}

/* The helper's stderr: DIR/.checkpoint.log (-1: ours, if it cannot be
 * made). */
static int open_helper_log(const struct sv *s)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/.checkpoint.log", s->dir);
    return open(p, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* Pass the helper's messages on to our stderr; the last one (without
 * "coord: ") into why, if asked. */
static void close_helper_log(struct sv *s, char *why, size_t len)
{
    if (why)
        why[0] = 0;
    if (s->helper_log < 0)
        return;
    char buf[8192];
    ssize_t got;
    off_t off = 0;
    while ((got = pread(s->helper_log, buf, sizeof buf - 1, off)) > 0) {
        ssize_t w = write(2, buf, (size_t)got);
        (void)w;
        off += got;
        buf[got] = 0;
        if (!why)
            continue;
        /* the last complete line of this piece */
        char *end = buf + got;
        while (end > buf && end[-1] == '\n')
            *--end = 0;
        char *line = strrchr(buf, '\n');
        line = line ? line + 1 : buf;
        if (!strncmp(line, "coord: ", 7))
            line += 7;
        if (*line)
            snprintf(why, len, "%s", line);
    }
    close(s->helper_log);
    s->helper_log = -1;
}

/* After a committed checkpoint: did coord say the counter moved during it
 * (the image may be refused as stale)? Then the older images must stay:
 * one of them may be the only one that restores. */
static int commit_maybe_stale(const struct sv *s, const char *img)
{
    struct ck_header h;
    struct ck_counter c;
    char err[512];
    uint64_t cur = 0;
    if (ck_image_stamp(img, &h) < 0 || h.counter_stamp == 0 ||
        ck_counter_parse(s->counter_url ? s->counter_url : getenv("CKSHIM_COUNTER"), &c, err,
                         sizeof err) < 0 ||
        c.kind == CK_COUNTER_NONE || ck_counter_get(&c, h.app_id, &cur, err, sizeof err) < 0)
        return 0;
    return cur > h.counter_stamp;
}

/* Take a checkpoint into the next image (final: with --kill, the last one
 * before the supervisor ends). Returns 0 when committed, -1 if not, -2
 * when a signal came during the final one (or a second one during a
 * periodic one) and the checkpoint was abandoned (the program still
 * runs). */
static int take_checkpoint(struct sv *s, int final)
{
    char img[PATH_MAX + 32], pid[16];
    unsigned long long next = s->seq + 1;
    image_path(s, next, img, sizeof img);
    /* --pidns: s->prog is the coord outside the namespace (ours, or a
     * restore's); the program is its init's child */
    int prog = ck_pidns_program(s->prog);
    snprintf(pid, sizeof pid, "%d", prog > 0 ? prog : (int)s->prog);
    char *argv[16], limit[32];
    int n = 0;
    argv[n++] = "checkpoint";
    argv[n++] = pid;
    argv[n++] = "-o";
    argv[n++] = img;
    if (final)
        argv[n++] = "--kill";
    argv[n++] = "--quiet"; /* never a progress line from the supervisor */
    /* the program runs on while a periodic image is written: its writer
     * takes only CPU nobody else wants. The last one (--kill) is waited
     * for, by the program and by whoever sent the signal: full speed. */
    if (!final && !s->normal_writer) {
        argv[n++] = "--priority";
        argv[n++] = "idle";
        /* half a period (at most 5 minutes) without idle CPU: the writer
         * goes on at normal priority, so that a busy machine still gets
         * its images (late: a period may be skipped, see next_period) */
        long long half = s->every_ms / 2 > 0 ? s->every_ms / 2 : 1;
        snprintf(limit, sizeof limit, "%lldms", half < IDLE_LIMIT_MAX_MS ? half : IDLE_LIMIT_MAX_MS);
        argv[n++] = "--idle-limit";
        argv[n++] = limit;
    }
    if (s->counter_url) {
        argv[n++] = "--counter";
        argv[n++] = (char *)s->counter_url;
    }
    argv[n] = NULL;
    int nsig0 = s->nsig, committed = 0;
    /* the helper's messages go through a file, passed on to our stderr
     * when it ends: its last one says why a checkpoint failed */
    s->helper_log = open_helper_log(s);
    if (fork_helper(s, cmd_checkpoint, n, argv) < 0) {
        close_helper_log(s, NULL, 0);
        return -1;
    }
    while (!s->helper_done) {
        wait_event(s, -1);
        /* a signal during the final checkpoint (or a second one during a
         * periodic checkpoint): abandon it. Its coord removes its
         * temporary file and the shim lets the program run on. */
        if (!s->helper_done && s->nsig > nsig0 && (final || s->nsig > 1)) {
            kill(s->helper, SIGTERM);
            kill(s->helper, SIGCONT); /* a stopped helper must get it too */
            while (!s->helper_done)
                wait_event(s, -1);
            if (helper_exit(s) == 0)
                break; /* it was already committing (signals blocked): done */
            /* Its signals are blocked from the rename to telling the
             * shim, and our SIGTERM ends it only after that: an image in
             * place was committed (the rename is the commit). */
            struct ck_header h;
            if (ck_image_stamp(img, &h) == 0) {
                committed = 1;
                break;
            }
            close_helper_log(s, NULL, 0);
            s->helper = 0;
            return -2;
        }
    }
    s->helper = 0;
    char why[sizeof s->last_failure];
    close_helper_log(s, why, sizeof why);
    if (helper_exit(s) != 0 && !committed) {
        if (!final) {
            /* the program runs on; said on stderr, in the state file and
             * by coord list until a checkpoint is committed again */
            s->ckpt_failures++;
            snprintf(s->last_failure, sizeof s->last_failure, "%s",
                     why[0] ? why : "the checkpoint failed (no message)");
            char cur[PATH_MAX + 32] = "none";
            if (s->seq)
                image_path(s, s->seq, cur, sizeof cur);
            ck_msg("run: the checkpoint into %s failed (%d in a row): %s; the program runs on, "
                   "the newest image is still %s",
                   img, s->ckpt_failures, s->last_failure, cur);
            write_state(s, "running");
        }
        return -1;
    }
    s->ckpt_failures = 0;
    s->last_failure[0] = 0;
    s->seq = next;
    if (commit_maybe_stale(s, img))
        ck_msg("run: %s may be refused as stale (its counter moved during the checkpoint); "
               "the older images are kept", img);
    else
        prune(s);
    if (s->record_net) {
        /* what the program read before this image is in it */
        struct ck_header h;
        if (ck_image_stamp(img, &h) == 0 && h.counter_stamp)
            ck_netrec_committed(s->dir, h.counter_stamp);
    }
    write_state(s, final ? "stopped" : "running");
    return 0;
}

/* Start the program fresh. */
static int start_program(struct sv *s, const char *path, const char *preload)
{
    pid_t p = fork_child(1);
    if (p < 0)
        return -1;
    if (p == 0) {
        /* the shim journals what the program receives only when told */
        char max[32];
        snprintf(max, sizeof max, "%llu", s->record_max);
        if (s->record_net)
            setenv(CK_NETREC_DIR_ENV, s->dir, 1);
        else
            unsetenv(CK_NETREC_DIR_ENV);
        if (s->record_net && s->record_max)
            setenv(CK_NETREC_MAX_ENV, max, 1);
        else
            unsetenv(CK_NETREC_MAX_ENV);
        if (s->pidns)
            _exit(ck_run_pidns(path, preload, s->app_id, s->argv));
        _exit(ck_run_exec(path, preload, s->app_id, s->argv) == 0 ? 0 : 127);
    }
    s->prog = p;
    s->prog_done = 0;
    s->prog_end_ns = 0;
    return 0;
}

/* After a restore of the image with this stamp: what the program
 * received since that image, fed to it again (replay.c), then a
 * checkpoint at once, whose commit ends the need for the set-aside. A
 * crash meanwhile keeps it for the next restore of the same image. */
static void replay_received(struct sv *s, uint64_t stamp)
{
    struct ck_netrec_stats st;
    int r = ck_netrec_replay(s->dir, stamp, &st);
    reap(s);
    if (st.records || st.lost || r < 0)
        ck_msg("run: --record-net: replayed %llu bytes in %llu reads on %llu connections to "
               "the restored program%s%s",
               st.bytes, st.records, st.conns, st.lost ? " (some could not be made)" : "",
               st.torn ? " (a journal ended in a record cut short by the crash)" : "");
    /* The program closed a connection after a replayed request: it may be
     * ending (its connections close before its exit status is there). A
     * moment for it, rather than a checkpoint of a dying program. */
    long long until = now_ms() + 500;
    while (st.ended && !s->prog_done && now_ms() < until)
        wait_event(s, until);
    if (!s->prog_done && st.records && take_checkpoint(s, 0) < 0 && !s->prog_done)
        ck_msg("run: --record-net: the checkpoint after the replay failed; what the program "
               "received is kept until a checkpoint is committed");
    if (s->prog_done)
        ck_msg("run: --record-net: the program ended during the replay; what it received is "
               "kept for the next restore");
}

/* Restore image number seq as the supervisor's child (a foreground
 * restore in a forked child that becomes the program). again: the image
 * restored last, once more (see coord.h). 0 or -1 (said why). */
static int restore_program(struct sv *s, unsigned long long seq, int again)
{
    char img[PATH_MAX + 32];
    image_path(s, seq, img, sizeof img);
    struct ck_header ih;
    uint64_t stamp = s->record_net && ck_image_stamp(img, &ih) == 0 ? ih.counter_stamp : 0;
    /* the bytes received since this image, set aside before its restore
     * (the restored program starts a new journal) */
    if (stamp && ck_netrec_prepare(s->dir, stamp) < 0)
        ck_msg("run: --record-net: some of what the program received since %s may not be "
               "replayed (see above)", img);
    int sp[2];
    if (pipe2(sp, O_CLOEXEC) < 0) {
        ck_msg("run: pipe: %s", strerror(errno));
        return -1;
    }
    char *argv[8];
    int n = 0;
    argv[n++] = "restore";
    argv[n++] = img;
    if (s->counter_url) {
        argv[n++] = "--counter";
        argv[n++] = (char *)s->counter_url;
    }
    if (again)
        argv[n++] = "--force";
    argv[n++] = "--quiet"; /* it goes on as the program, on our terminal */
    argv[n] = NULL;
    pid_t p = fork_child(1);
    if (p < 0) {
        close(sp[0]);
        close(sp[1]);
        return -1;
    }
    if (p == 0) {
        close(sp[0]);
        ck_restore_extra.status_fd = sp[1];
        ck_restore_extra.again = again;
        _exit(cmd_restore(n, argv));
    }
    close(sp[1]);
    s->prog = p;
    s->prog_done = 0;
    s->prog_end_ns = 0;
    char buf[1100];
    size_t got = 0;
    while (got < sizeof buf - 1 && !memchr(buf, '\n', got)) {
        struct pollfd pf = {.fd = sp[0], .events = POLLIN};
        if (poll(&pf, 1, RESTORE_REPORT_MS) <= 0) {
            ck_msg("run: the restore of %s did not report within %d s", img,
                   RESTORE_REPORT_MS / 1000);
            kill_program(p);
            break;
        }
        ssize_t r = read(sp[0], buf + got, sizeof buf - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(sp[0]);
    buf[got] = 0;
    buf[strcspn(buf, "\n")] = 0;
    if (!strncmp(buf, "ok ", 3)) {
        s->restored = seq;
        if (stamp)
            replay_received(s, stamp);
        return 0;
    }
    if (!strncmp(buf, "error: ", 7))
        ck_msg("run: restore %s: %s", img, buf + 7);
    /* cmd_restore said why on stderr otherwise; collect the child */
    while (!s->prog_done && waitpid(p, &s->prog_status, 0) < 0 && errno == EINTR)
        ;
    s->prog = 0;
    return -1;
}

/* After a crash: may the newest image be restored again (once more than
 * the counter allows)? Only the image this supervisor restored last, and
 * only while the counter is still where that restore left it. */
static int may_restore_again(const struct sv *s)
{
    if (s->restored != s->seq)
        return 0;
    char img[PATH_MAX + 32], err[512];
    image_path(s, s->seq, img, sizeof img);
    struct ck_header h;
    struct ck_counter c;
    uint64_t cur = 0;
    if (ck_image_stamp(img, &h) < 0 || h.counter_stamp == 0 ||
        ck_counter_parse(s->counter_url ? s->counter_url : getenv("CKSHIM_COUNTER"), &c, err,
                         sizeof err) < 0 ||
        ck_counter_get(&c, h.app_id, &cur, err, sizeof err) < 0)
        return 0;
    return cur == h.counter_stamp + 1;
}

static void describe_status(int ws, char *buf, size_t len)
{
    if (WIFSIGNALED(ws))
        snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    else
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(ws));
}

static int exit_code_of(int ws)
{
    return WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws);
}

/* Register DIR for `coord list`: <socket dir>/<pid>.super holds its path. */
static void register_list(struct sv *s)
{
    char sd[PATH_MAX];
    if (ck_sock_dir(sd, sizeof sd) < 0 || ck_sock_dir_prepare(sd) < 0)
        return;
    char tmp[PATH_MAX + 64];
    snprintf(s->super_file, sizeof s->super_file, "%s/%d.super", sd, (int)getpid());
    snprintf(tmp, sizeof tmp, "%s.tmp", s->super_file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || dprintf(fd, "%s\n", s->dir) < 0 || close(fd) < 0 ||
        rename(tmp, s->super_file) < 0) {
        unlink(tmp);
        s->super_file[0] = 0;
    }
}

/* The end: the state file says how, the list entry goes. */
static int finish(struct sv *s, const char *status, int code)
{
    write_state(s, status);
    if (s->super_file[0])
        unlink(s->super_file);
    return code;
}

/* The directory a <socket dir>/PID.super file names. 0 or -1. */
static int read_super(const char *path, char *dir, size_t len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, dir, len - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (got <= 0)
        return -1;
    dir[got] = 0;
    dir[strcspn(dir, "\n")] = 0;
    return 0;
}

/* The pid of another supervisor that still runs in s->dir (its state says
 * running and its <socket dir>/PID.super names that directory), else 0. */
static int supervisor_running(const struct sv *s)
{
    struct state st;
    char sd[PATH_MAX], p[PATH_MAX + 32], dir[PATH_MAX];
    if (read_state(s->dir, &st) < 0 || st.supervisor <= 0 || st.supervisor == getpid() ||
        strcmp(st.status, "running") || kill(st.supervisor, 0) < 0 ||
        ck_sock_dir(sd, sizeof sd) < 0)
        return 0;
    snprintf(p, sizeof p, "%s/%d.super", sd, st.supervisor);
    if (read_super(p, dir, sizeof dir) < 0)
        return 0;
    return strcmp(dir, s->dir) ? 0 : st.supervisor;
}

/* SIGTERM/SIGINT: a last checkpoint (--kill), then exit 0 (or
 * --exit-code-on-checkpoint). A second signal meanwhile ends everything. */
static int stop_with_checkpoint(struct sv *s)
{
    int sig = s->lastsig;
    ck_msg("run: %s: taking a last checkpoint, then ending the program (a second signal ends "
           "it at once)", strsignal(sig));
    /* two signals already (the second during a periodic checkpoint): no
     * last checkpoint */
    int r = s->nsig > 1 ? -2 : s->prog_done ? -1 : take_checkpoint(s, 1);
    if (r == 0) {
        /* the shim ends the program once the image is committed */
        long long until = now_ms() + 10000;
        while (!s->prog_done && now_ms() < until)
            wait_event(s, until);
        if (!s->prog_done) {
            kill_program(s->prog);
            while (!s->prog_done)
                wait_event(s, -1);
        }
        char img[PATH_MAX + 32];
        image_path(s, s->seq, img, sizeof img);
        ck_msg("run: stopped; the program is saved in %s (go on with --resume)", img);
        return finish(s, "stopped", s->ckpt_exit >= 0 ? s->ckpt_exit : 0);
    }
    if (!s->prog_done) {
        kill_program(s->prog);
        while (!s->prog_done)
            wait_event(s, -1);
    }
    char img[PATH_MAX + 32] = "none";
    if (s->seq)
        image_path(s, s->seq, img, sizeof img);
    if (r == -2)
        ck_msg("run: a second signal: the last checkpoint was abandoned and the program "
               "ended; the newest image is %s", img);
    else
        ck_msg("run: the last checkpoint failed; the program was ended; the newest image is %s",
               img);
    return finish(s, "interrupted", 128 + sig);
}

/* Too many restores in the window? Records this one if not. */
static int restore_allowed(struct sv *s)
{
    long long t = now_ms();
    int recent = 0, n = 0;
    for (int i = 0; i < s->nrestores && i < 64; i++)
        if (t - s->restore_at[i] < s->window_ms)
            s->restore_at[n++] = s->restore_at[i], recent++;
    if (recent >= s->max_restores)
        return 0;
    if (n < 64)
        s->restore_at[n++] = t;
    s->nrestores = n;
    s->total_restores++;
    return 1;
}

/* After a periodic checkpoint that was due at due and started at start:
 * when the next one is due. Checkpoints keep to their period (due +
 * every), but one still being written when the next was due (an idle
 * writer that a busy machine holds back, a slow disk) never has another
 * started behind it at once, nor do they pile up: the periods that passed
 * are skipped, counted in the state file (coord list shows them) and
 * said on stderr, and the next checkpoint is at the next period after
 * now. */
static long long next_period(struct sv *s, long long due, long long start)
{
    long long t = now_ms(), next = due + s->every_ms;
    if (t < next)
        return next;
    long long missed = (t - next) / s->every_ms + 1;
    next += missed * s->every_ms;
    s->skipped += missed;
    s->overrun_ms = t - start;
    ck_msg("run: the checkpoint took %.1f s, longer than --every %.1f s: %lld period%s "
           "skipped (%lld so far), the next checkpoint is in %.1f s",
           (t - start) / 1000.0, s->every_ms / 1000.0, missed, missed == 1 ? "" : "s",
           s->skipped, (next - t) / 1000.0);
    if (!s->prog_done && !s->nsig)
        write_state(s, "running");
    return next;
}

static int usage(const char *fmt, const char *arg)
{
    return ck_usage_error("run", fmt, arg);
}

int ck_supervise(int argc, char **argv)
{
    struct sv s;
    memset(&s, 0, sizeof s);
    s.keep = 3;
    s.max_restores = MAX_RESTORES_DEFAULT;
    s.window_ms = WINDOW_MS_DEFAULT;
    s.ckpt_exit = -1;
    s.every_ms = -1;
    s.helper_log = -1;
    const char *every = NULL, *dir = NULL, *keep = NULL, *maxr = NULL, *window = NULL,
               *code = NULL, *recmax = NULL, *prio = NULL;
    int i = 1;
    while (i < argc) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-')
            break;
        if (!strcmp(a, "--auto-restore")) {
            s.auto_restore = 1;
            i++;
            continue;
        }
        if (!strcmp(a, "--resume")) {
            s.resume = 1;
            i++;
            continue;
        }
        if (!strcmp(a, "--record-net")) {
            s.record_net = 1;
            i++;
            continue;
        }
        if (!strcmp(a, "--pidns")) {
            s.pidns = 1;
            i++;
            continue;
        }
        int r = ck_opt_value("run", argc, argv, &i, "--every", NULL, &every);
        if (!r)
            r = ck_opt_value("run", argc, argv, &i, "--priority", NULL, &prio);
        if (!r)
            r = ck_opt_value("run", argc, argv, &i, "--images", NULL, &dir);
        if (!r)
            r = ck_opt_value("run", argc, argv, &i, "--keep", NULL, &keep);
        if (!r)
            r = ck_opt_value("run", argc, argv, &i, "--max-restores", NULL, &maxr);
        if (!r)
            r = ck_opt_value("run", argc, argv, &i, "--window", NULL, &window);
        if (!r)
            r = ck_opt_value("run", argc, argv, &i, "--exit-code-on-checkpoint", NULL, &code);
        if (!r)
            r = ck_opt_value("run", argc, argv, &i, "--counter", NULL, &s.counter_url);
        if (!r)
            r = ck_opt_value("run", argc, argv, &i, "--id", NULL, &s.app_id);
        if (!r)
            r = ck_opt_value("run", argc, argv, &i, "--record-net-max", NULL, &recmax);
        if (!r)
            r = ck_run_version_option("run", argc, argv, &i);
        if (r < 0)
            return CK_EXIT_USAGE;
        if (r > 0)
            continue;
        return usage("unknown option '%s'", a);
    }
    if (i >= argc)
        return usage("%s", "missing program to run");
    if (!dir)
        return usage("%s", "--images DIR is needed with --every, --keep, --auto-restore, "
                           "--resume and the other supervisor options");
    if (!every)
        return usage("%s", "--every DURATION is needed with --images");
    if ((s.every_ms = parse_duration(every)) < 0)
        return usage("--every: '%s' is not a duration (10s, 500ms, 2m, 1h)", every);
    if (prio && strcmp(prio, "idle") && strcmp(prio, "normal"))
        return usage("--priority: '%s' is not idle or normal", prio);
    s.normal_writer = prio && !strcmp(prio, "normal");
    if (keep && (s.keep = parse_count(keep, 1, 1000000)) < 0)
        return usage("--keep: '%s' is not a number from 1", keep);
    if (maxr && (s.max_restores = parse_count(maxr, 0, 64)) < 0)
        return usage("--max-restores: '%s' is not a number from 0 to 64", maxr);
    if (window && (s.window_ms = parse_duration(window)) < 0)
        return usage("--window: '%s' is not a duration (60s, 10m)", window);
    if (code && (s.ckpt_exit = parse_count(code, 0, 255)) < 0)
        return usage("--exit-code-on-checkpoint: '%s' is not an exit code (0-255)", code);
    if (recmax && (s.record_max = parse_size(recmax)) == 0)
        return usage("--record-net-max: '%s' is not a size (4096, 64K, 64M, 1G)", recmax);
    if (recmax && !s.record_net)
        return usage("%s", "--record-net-max goes with --record-net");
    if (s.record_net && !s.auto_restore && !s.resume)
        return usage("%s", "--record-net needs --auto-restore or --resume (the journal is "
                           "replayed after a restore)");
    char err[512];
    struct ck_counter counter;
    if (ck_counter_parse(s.counter_url ? s.counter_url : getenv("CKSHIM_COUNTER"), &counter, err,
                         sizeof err) < 0)
        return usage("--counter: %s", err);
    if (s.app_id && ck_check_app_id(s.app_id, err, sizeof err) < 0)
        return usage("--id: %s", err);
    if (s.record_net && counter.kind == CK_COUNTER_NONE)
        return usage("%s", "--record-net needs counter stamps (the journals are kept per "
                           "checkpoint stamp): not with --counter none");
    s.argv = argv + i;
    int r = check_dir(&s, dir);
    if (r)
        return r;
    char path[PATH_MAX], *preload = NULL;
    if (ck_run_prepare(s.argv[0], path, sizeof path, &preload) != 0)
        return CK_EXIT_FAIL;

    /* Signals are taken with sigwaitinfo; children get them back. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);

    /* --resume: the newest image of this program, if DIR has one. */
    /* Two supervisors in one DIR would remove each other's images. */
    int busy = supervisor_running(&s);
    if (busy > 0) {
        ck_msg("run: --images %s is in use by the supervisor %d, which still runs", s.dir, busy);
        return CK_EXIT_FAIL;
    }
    unsigned long long newest = newest_image(&s);
    if (s.resume && newest) {
        struct state st;
        struct ck_header h;
        char img[PATH_MAX + 32];
        image_path(&s, newest, img, sizeof img);
        int have_state = read_state(s.dir, &st) == 0;
        int hok = ck_image_stamp(img, &h) == 0;
        if (!hok) {
            ck_msg("run: --resume: %s is not a readable image", img);
            return CK_EXIT_FAIL;
        }
        int ours = (s.app_id && !strcmp(s.app_id, h.app_id)) ||
                   (have_state && same_command(&st, s.argv));
        if (!ours) {
            ck_msg("run: --resume: %s holds images of another program (app id '%s'%s); give "
                   "the same command or --id, or another --images directory",
                   s.dir, h.app_id, have_state ? ", another command" : "");
            return CK_EXIT_FAIL;
        }
        if (have_state && !strcmp(st.status, "exited")) {
            /* a requeued job that had finished: running it again from its
             * last image would repeat its end */
            ck_msg("run: --resume: the program already finished in the run that wrote %s "
                   "(exit status 0); nothing to resume (remove the directory to start over)",
                   s.dir);
            return CK_EXIT_OK;
        }
        s.seq = newest;
        register_list(&s);
        ck_msg("run: resuming from %s", img);
        if (restore_program(&s, newest, 0) < 0) {
            ck_msg("run: --resume: cannot restore the newest image %s (see above); an older "
                   "image is never tried: a stale image must not run", img);
            return finish(&s, "failed", CK_EXIT_FAIL);
        }
    } else {
        if (newest)
            ck_msg("run: note: %s holds images of an earlier run (the newest %06llu); starting "
                   "fresh (--resume goes on from them); the older ones are removed as new "
                   "images come", s.dir, newest);
        s.seq = newest;
        register_list(&s);
        if (s.record_net) /* journals of an earlier run: not this program's */
            ck_netrec_committed(s.dir, UINT64_MAX);
        if (start_program(&s, path, preload) < 0)
            return finish(&s, "failed", CK_EXIT_FAIL);
    }
    free(preload);
    write_state(&s, "running");

    long long next = now_ms() + s.every_ms;
    for (;;) {
        if (s.nsig)
            return stop_with_checkpoint(&s);
        if (s.prog_done) {
            int ws = s.prog_status;
            char how[128];
            describe_status(ws, how, sizeof how);
            if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
                ck_msg("run: the program exited with status 0; supervision ends");
                return finish(&s, "exited", 0);
            }
            if (!s.auto_restore)
                return finish(&s, "ended", exit_code_of(ws));
            if (!s.seq) {
                ck_msg("run: the program %s before its first checkpoint; nothing to restore",
                       how);
                return finish(&s, "ended", exit_code_of(ws));
            }
            if (!restore_allowed(&s)) {
                ck_msg("run: the program %s again: %d restores in %lld s already "
                       "(--max-restores %d --window %llds); giving up, the newest image is "
                       "ckpt-%06llu.img in %s",
                       how, s.max_restores, s.window_ms / 1000, s.max_restores,
                       s.window_ms / 1000, s.seq, s.dir);
                return finish(&s, "gave up", CK_EXIT_FAIL);
            }
            if (!group_gone(&s, s.prog)) {
                ck_msg("run: processes of the program (its session %d, or a session or group "
                       "of its newest image) are still there 10 s after it ended; not "
                       "restoring a second copy beside them", (int)s.prog);
                return finish(&s, "failed", CK_EXIT_FAIL);
            }
            int again = may_restore_again(&s);
            ck_msg("run: the program %s; restoring it from ckpt-%06llu.img (restore %d of at "
                   "most %d in %lld s)",
                   how, s.seq, s.nrestores, s.max_restores, s.window_ms / 1000);
            if (restore_program(&s, s.seq, again) < 0) {
                ck_msg("run: the automatic restore failed (see above); giving up");
                return finish(&s, "failed", CK_EXIT_FAIL);
            }
            write_state(&s, "running");
            next = now_ms() + s.every_ms;
            continue;
        }
        if (now_ms() >= next) {
            long long start = now_ms();
            take_checkpoint(&s, 0);
            next = next_period(&s, next, start);
            continue;
        }
        wait_event(&s, next);
    }
}

/* coord list: the supervisors of this user (<socket dir>/PID.super) and
 * what their state files say; j NULL: a table on f. */
void ck_supervise_list(FILE *f, struct ck_json *j, const char *sock_dir)
{
    DIR *d = opendir(sock_dir);
    int n = 0;
    if (j)
        ck_json_open(j, "supervised", '[');
    for (struct dirent *e; d && (e = readdir(d));) {
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || strcmp(dot, ".super"))
            continue;
        char num[16];
        size_t l = (size_t)(dot - e->d_name);
        if (l == 0 || l >= sizeof num)
            continue;
        memcpy(num, e->d_name, l);
        num[l] = 0;
        int pid = ck_parse_pid(num);
        char p[PATH_MAX + 300], dir[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", sock_dir, e->d_name);
        if (pid < 0)
            continue;
        if (!ck_proc_alive(pid)) {
            unlink(p); /* a supervisor that was killed */
            continue;
        }
        struct state st;
        if (read_super(p, dir, sizeof dir) < 0)
            continue;
        if (read_state(dir, &st) < 0 || st.supervisor != pid)
            continue;
        char cmd[256] = "";
        for (size_t o = 0, c = 0; o + 1 < st.cmdlen && c + 2 < sizeof cmd; o++) {
            cmd[c++] = st.cmd[o] ? st.cmd[o] : ' ';
            cmd[c] = 0;
        }
        if (j) {
            ck_json_open(j, NULL, '{');
            ck_json_ku64(j, "supervisor", (uint64_t)pid);
            ck_json_ku64(j, "program", (uint64_t)st.program);
            ck_json_kstr(j, "images", dir);
            ck_json_kstr(j, "newest_image", st.image);
            ck_json_ku64(j, "restores", (uint64_t)st.restores);
            ck_json_kstr(j, "status", st.status);
            ck_json_kstr(j, "command", cmd);
            ck_json_ku64(j, "checkpoint_failures", (uint64_t)st.ckpt_failures);
            ck_json_ku64(j, "skipped_periods", (uint64_t)st.skipped);
            if (st.ckpt_failures)
                ck_json_kstr(j, "last_failure", st.last_failure);
            ck_json_close(j, '}');
        } else {
            if (!n)
                fprintf(f, "\n%-10s %-8s %8s  %-8s %s\n", "SUPERVISOR", "PROGRAM", "RESTORES",
                        "STATUS", "NEWEST-IMAGE  COMMAND");
            fprintf(f, "%-10d %-8d %8d  %-8s %s  %s\n", pid, st.program, st.restores, st.status,
                    st.image[0] ? st.image : "(none yet)", cmd);
            if (st.ckpt_failures)
                fprintf(f, "%-10s %d checkpoint%s failed since the newest image: %s\n", "",
                        st.ckpt_failures, st.ckpt_failures == 1 ? "" : "s", st.last_failure);
            if (st.skipped)
                fprintf(f, "%-10s %lld period%s skipped: a checkpoint was still being written "
                        "when the next was due (the last such took %.1f s, --every %.1f s)\n",
                        "", st.skipped, st.skipped == 1 ? "" : "s", st.overrun_ms / 1000.0,
                        st.every_ms / 1000.0);
        }
        n++;
    }
    if (d)
        closedir(d);
    if (j)
        ck_json_close(j, ']');
}

long long ck_parse_duration(const char *s)
{
    return parse_duration(s);
}
