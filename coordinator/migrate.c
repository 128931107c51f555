/* migrate.c - coord migrate PID [USER@]HOST: move a running program to
 * another machine over ssh.
 *
 * The first promise holds at every step: the user has the running program
 * or a good image of it, never neither, and never the program twice.
 *
 *   1. Before anything changes, ssh runs the remote coord once (`restore
 *      --help`) to check that the host is reachable without a prompt and
 *      that its coord can restore from standard input; a failure here
 *      leaves the program running, untouched.
 *   2. A checkpoint with --kill writes a committed image to a local file
 *      (a private directory, or --keep FILE) and ends the program only
 *      once that image is safe.
 *   3. The image goes through ssh to `coord restore - --detach
 *      --adopt-stamp` on the host, which holds it in memory and restores
 *      it; its standard output is the new pid.
 *   4. Success: the local counter is advanced past the image's stamp (the
 *      local copy can no longer be restored by mistake: the program lives
 *      on the other host now) and the copy is removed unless --keep.
 *      The remote coord refused (it exits 1 or 2 with nothing running):
 *      the program is restored here from the local copy. ssh itself failed
 *      midway (exit 255): whether the program runs there is unknown, so
 *      nothing is restored here; the copy is kept and the message says how
 *      to check and how to run it here.
 *
 * The local copy lives in a directory coord made (0700) and holds open:
 * every later step reaches it through that descriptor (/proc/self/fd/N),
 * so whoever owns $TMPDIR cannot swap the image by renaming directories.
 * Children (the checkpoint, ssh) die with coord (PR_SET_PDEATHSIG);
 * SIGINT, SIGTERM and SIGHUP end the current step and say where things
 * stand; ssh steps have time limits (--timeout for the transfer).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coord.h"
#include "counter.h"
#include "image.h"

#define MAX_SSH_ARGS 64

struct mig {
    int pid;
    const char *host, *ssh, *remote_coord, *keep, *counter_url, *key, *remote_key,
        *remote_counter;
    char *ssh_argv[MAX_SSH_ARGS + 4];
    int ssh_argc;
    long long timeout_ms;               /* the transfer and remote restore */
    /* --shared-file PATH... and --no-file-versions: for the checkpoint
     * here and both restores (there, and here again if that fails) */
    const char *shared[CK_MAX_SHARED];
    int nshared, no_versions;
    int dirfd;                          /* our private directory, or -1 (--keep) */
    char image[PATH_MAX];               /* how children reach the image */
    int quiet;                          /* --quiet: no progress lines */
    int remote_quiet;                   /* and the coord on the host knows --quiet */
};

/* SIGINT, SIGTERM or SIGHUP came: the step in progress ends. */
static volatile sig_atomic_t g_sig;

static void on_signal(int sig)
{
    g_sig = sig;
}

static void catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* In a child: die with coord, and with default signal actions. */
static void child_setup(pid_t parent)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(CK_EXIT_FAIL);
}

/* Where the image is, for people: our directory's path now (whoever owns
 * its parent may have renamed it) or the --keep file. */
static const char *image_shown(const struct mig *m, char *buf, size_t len)
{
    if (m->dirfd < 0)
        return m->image;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", m->dirfd);
    ssize_t n = readlink(link, buf, len - 8);
    if (n <= 0)
        return m->image;
    snprintf(buf + n, len - (size_t)n, "/image");
    return buf;
}

/* Append s to out as one shell word ('...' with ' as '\''). */
static void sh_quote(char *out, size_t len, const char *s)
{
    size_t n = strlen(out);
    if (n + 1 < len)
        out[n++] = '\'';
    for (; *s && n + 5 < len; s++) {
        if (*s == '\'') {
            memcpy(out + n, "'\\''", 4);
            n += 4;
        } else {
            out[n++] = *s;
        }
    }
    if (n + 1 < len)
        out[n++] = '\'';
    out[n < len ? n : len - 1] = 0;
}

/* --ssh "ssh -p 2222 -i key": split on blanks (no quoting) into
 * m->ssh_argv, then the host (checked not to start with '-', so it can
 * never be taken as an option). Returns 0 or -1. */
static int split_ssh(struct mig *m, char *buf)
{
    m->ssh_argc = 0;
    for (char *save = NULL, *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (m->ssh_argc >= MAX_SSH_ARGS)
            return -1;
        m->ssh_argv[m->ssh_argc++] = w;
    }
    if (m->ssh_argc == 0)
        return -1;
    m->ssh_argv[m->ssh_argc++] = (char *)m->host;
    m->ssh_argv[m->ssh_argc] = NULL;
    return 0;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum { GOT_SIGNAL = -2, TIMED_OUT = -3 };

/* The progress line of the image going to ssh: ssh reads the image
 * through a copy of coord's descriptor sent_fd, so its offset is what was
 * sent. Once all of it is, the line goes (the far side's messages come). */
static void sent_progress(int sent_fd)
{
    struct stat st;
    off_t at = lseek(sent_fd, 0, SEEK_CUR);
    if (at < 0 || fstat(sent_fd, &st) < 0)
        return;
    if (at >= st.st_size)
        ck_progress_end();
    else
        ck_progress_update((uint64_t)at, (uint64_t)st.st_size);
}

/* The parent's side of a child c writing to pipe p: its output in out
 * (NUL-terminated, the rest dropped), then its wait status, or -1, or
 * GOT_SIGNAL / TIMED_OUT (limit_ms > 0) once the child was ended.
 * sent_fd >= 0: the child sends that file (sent_progress). */
static int collect(int p[2], pid_t c, char *out, size_t outlen, long long limit_ms, int sent_fd)
{
    close(p[1]);
    size_t n = 0;
    long long deadline = limit_ms > 0 ? mono_ms() + limit_ms : 0;
    int why = 0;
    for (;;) {
        if (g_sig || (deadline && mono_ms() > deadline)) {
            why = g_sig ? GOT_SIGNAL : TIMED_OUT;
            kill(c, SIGTERM);
            break;
        }
        if (sent_fd >= 0 && ck_progress_on())
            sent_progress(sent_fd);
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        if (poll(&pf, 1, sent_fd >= 0 ? 250 : 500) <= 0)
            continue;
        char tmp[4096];
        ssize_t r = read(p[0], tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t k = (size_t)r < outlen - 1 - n ? (size_t)r : outlen - 1 - n;
        memcpy(out + n, tmp, k);
        n += k;
    }
    out[n] = 0;
    close(p[0]);
    int ws;
    for (int waited = 0; waitpid(c, &ws, why ? WNOHANG : 0) <= 0; waited++) {
        if (!why && errno != EINTR)
            return -1;
        if (why) {
            if (waited == 50) /* 5 s after SIGTERM */
                kill(c, SIGKILL);
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
        }
    }
    return why ? why : ws;
}

/* A child whose standard output is the write end of a new pipe p (the
 * parent reads p[0] with collect): its pid in the parent, 0 in the child
 * (which dies with coord), -1 if it could not be made. */
static pid_t spawn(int p[2])
{
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    fflush(NULL);
    pid_t me = getpid(), c = fork();
    if (c < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (c == 0) {
        child_setup(me);
        close(p[0]);
        if (dup2(p[1], STDOUT_FILENO) < 0)
            _exit(127);
    }
    return c;
}

/* Run ssh HOST REMOTE_CMD with stdin from in_fd (or /dev/null), its
 * standard output collected in out (NUL-terminated), stderr passed on.
 * Returns ssh's wait status, or -1 if it could not be started. */
static int run_ssh(struct mig *m, const char *remote_cmd, int in_fd, char *out, size_t outlen,
                   long long limit_ms)
{
    char *argv[MAX_SSH_ARGS + 4];
    memcpy(argv, m->ssh_argv, sizeof(char *) * (size_t)m->ssh_argc);
    argv[m->ssh_argc] = (char *)remote_cmd;
    argv[m->ssh_argc + 1] = NULL;
    int p[2];
    pid_t c = spawn(p);
    if (c < 0)
        return -1;
    if (c == 0) {
        int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, STDIN_FILENO) < 0)
            _exit(127);
        execvp(argv[0], argv);
        ck_msg("migrate: cannot run %s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    return collect(p, c, out, outlen, limit_ms, in_fd);
}

/* Run cmd_X(argv) in a child with its standard output collected in out.
 * Returns its exit code (-1: could not run or died of a signal). */
static int run_coord(int (*fn)(int, char **), char **argv, char *out, size_t outlen)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    int p[2];
    pid_t c = spawn(p);
    if (c < 0)
        return -1;
    if (c == 0) {
        int rc = fn(argc, argv);
        fflush(NULL);
        _exit(rc);
    }
    int ws = collect(p, c, out, outlen, 0, -1);
    return ws == GOT_SIGNAL ? GOT_SIGNAL : ws >= 0 && WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* The last line of s that is a pid (a shell start-up file on the far
 * side may print lines of its own before coord's), or -1. */
static int last_pid(const char *s)
{
    int pid = -1;
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, "\n");
        char line[32];
        if (n > 0 && n < sizeof line) {
            memcpy(line, p, n);
            line[n] = 0;
            int v = ck_parse_pid(line);
            if (v > 0)
                pid = v;
        }
        p += n;
        if (*p)
            p++;
    }
    return pid;
}

/* Remove our copy of the image and its directory (not a --keep file). */
static void cleanup(struct mig *m)
{
    if (m->dirfd < 0)
        return;
    char dir[PATH_MAX + 8], link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", m->dirfd);
    ssize_t n = readlink(link, dir, sizeof dir - 1);
    unlinkat(m->dirfd, "image", 0);
    if (n > 0) {
        dir[n] = 0;
        rmdir(dir);
    }
    close(m->dirfd);
    m->dirfd = -1;
}

/* Step 1: can we run the remote coord, and can it restore from stdin? */
static int preflight(struct mig *m)
{
    char cmd[PATH_MAX + 64] = "", out[8192];
    sh_quote(cmd, sizeof cmd, m->remote_coord);
    strncat(cmd, " restore --help", sizeof cmd - strlen(cmd) - 1);
    int ws = run_ssh(m, cmd, -1, out, sizeof out, 60000);
    if (ws == GOT_SIGNAL || ws == TIMED_OUT) {
        ck_msg("migrate %d: %s while asking %s; nothing was changed: the program still runs "
               "here", m->pid, ws == GOT_SIGNAL ? "interrupted" : "no answer within 60 s",
               m->host);
        return -1;
    }
    if (ws < 0) {
        ck_msg("migrate %d: cannot run %s", m->pid, m->ssh_argv[0]);
        return -1;
    }
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        ck_msg("migrate %d: cannot run '%s' on %s (%s %d); nothing was changed: the program "
               "still runs here", m->pid, m->remote_coord, m->host,
               WIFEXITED(ws) ? "exit status" : "signal",
               WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
        return -1;
    }
    if (!strstr(out, "--adopt-stamp")) {
        ck_msg("migrate %d: the coord on %s cannot restore from standard input (an older "
               "version?); nothing was changed: the program still runs here", m->pid, m->host);
        return -1;
    }
    /* --quiet goes to a coord there that knows it (its stderr is ssh's,
     * a terminal only with ssh -t) */
    m->remote_quiet = m->quiet && strstr(out, "--quiet");
    return 0;
}

/* argv[n...]: the local --counter and --key, --quiet, the file version
 * options, then NULL (room for LOCAL_OPTS). */
#define LOCAL_OPTS (7 + 2 * CK_MAX_SHARED)
static void local_options(const struct mig *m, char **argv, int n)
{
    for (int k = 0; k < m->nshared; k++) {
        argv[n++] = "--shared-file";
        argv[n++] = (char *)m->shared[k];
    }
    if (m->no_versions)
        argv[n++] = "--no-file-versions";
    if (m->counter_url) {
        argv[n++] = "--counter";
        argv[n++] = (char *)m->counter_url;
    }
    if (m->key) {
        argv[n++] = "--key";
        argv[n++] = (char *)m->key;
    }
    if (m->quiet)
        argv[n++] = "--quiet";
    argv[n] = NULL;
}

/* Step 2: a committed local image; the program ends once it is safe. */
static int checkpoint_here(struct mig *m)
{
    if (m->keep) {
        snprintf(m->image, sizeof m->image, "%s", m->keep);
    } else {
        const char *tmp = getenv("TMPDIR");
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/ckshim-migrate-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        struct stat st;
        if (!mkdtemp(dir)) {
            ck_msg("migrate %d: cannot create a directory for the image in %s: %s", m->pid,
                   tmp && *tmp ? tmp : "/tmp", strerror(errno));
            return -1;
        }
        /* from now on only through this descriptor (see the top) */
        m->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (m->dirfd < 0 || fstat(m->dirfd, &st) < 0 || st.st_uid != getuid() ||
            (st.st_mode & 077)) {
            ck_msg("migrate %d: the directory %s coord made for the image was replaced (by "
                   "whoever owns %s?); nothing was changed: the program still runs here",
                   m->pid, dir, tmp && *tmp ? tmp : "/tmp");
            if (m->dirfd >= 0)
                close(m->dirfd);
            m->dirfd = -1;
            return -1;
        }
        snprintf(m->image, sizeof m->image, "/proc/self/fd/%d/image", m->dirfd);
    }
    char pidstr[16], out[256], shown[PATH_MAX + 8];
    snprintf(pidstr, sizeof pidstr, "%d", m->pid);
    char *argv[5 + LOCAL_OPTS] = {"checkpoint", pidstr, "-o", m->image, "--kill"};
    local_options(m, argv, 5);
    int rc = run_coord(cmd_checkpoint, argv, out, sizeof out);
    if (rc != 0) {
        struct stat st;
        int have = m->dirfd >= 0 ? fstatat(m->dirfd, "image", &st, AT_SYMLINK_NOFOLLOW) == 0
                                 : 0;
        if (g_sig && have)
            ck_msg("migrate %d: interrupted; the checkpoint may have ended the program: its "
                   "image is at %s (coord restore FILE runs it here)", m->pid,
                   image_shown(m, shown, sizeof shown));
        else
            ck_msg("migrate %d: %s; the program still runs here", m->pid,
                   g_sig ? "interrupted during the checkpoint" : "the checkpoint failed (above)");
        if (!have)
            cleanup(m);
        return -1;
    }
    return 0;
}

/* Step 4, failure: bring the program back here from the local image. */
static int restore_here(struct mig *m, const char *why)
{
    char out[256];
    char *argv[3 + LOCAL_OPTS] = {"restore", m->image, "--detach"}, shown[PATH_MAX + 8];
    local_options(m, argv, 3);
    int rc = run_coord(cmd_restore, argv, out, sizeof out);
    int pid = rc == 0 ? last_pid(out) : -1;
    if (pid < 0) {
        ck_msg("migrate %d: %s, and restoring it here failed too (above); the image is kept "
               "at %s", m->pid, why, image_shown(m, shown, sizeof shown));
        return CK_EXIT_FAIL;
    }
    ck_msg("migrate %d: %s; the program runs here again as pid %d", m->pid, why, pid);
    cleanup(m); /* restored: that image is used up (--keep: left to you) */
    printf("%d\n", pid);
    return CK_EXIT_FAIL;
}

/* Step 4, success: the local image must not be restored as the program
 * any more (it runs on the other host); move the local counter past it. */
static void retire_local_image(struct mig *m)
{
    struct ck_header h;
    struct ck_counter c;
    char err[512];
    uint64_t cur = 0;
    if (ck_image_stamp(m->image, &h) < 0 || h.counter_stamp == 0 ||
        ck_counter_parse(m->counter_url, &c, err, sizeof err) < 0 || c.kind == CK_COUNTER_NONE)
        return;
    if (ck_counter_fetch_incr_if(&c, h.app_id, h.counter_stamp, &cur, err, sizeof err) < 0)
        ck_msg("migrate %d: note: could not advance the local counter (%s): the local image "
               "would still restore here", m->pid, err);
}

int cmd_migrate(int argc, char **argv)
{
    struct mig m = {.dirfd = -1, .timeout_ms = 600000};
    const char *pidarg = NULL, *timeout = NULL;
    m.ssh = getenv("CKSHIM_SSH");
    m.remote_coord = "coord";
    m.counter_url = getenv("CKSHIM_COUNTER");
    int opts_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r = 0;
        if (!opts_done && !strcmp(argv[i], "--")) {
            opts_done = 1;
        } else if (!opts_done && (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))) {
            m.quiet = 1;
        } else if (!opts_done && !strcmp(argv[i], "--no-file-versions")) {
            m.no_versions = 1;
        } else if (!opts_done && (r = ck_opt_value("migrate", argc, argv, &i, "--shared-file",
                                                   NULL, &v)) != 0) {
            if (r < 0)
                return CK_EXIT_USAGE;
            if (m.nshared == CK_MAX_SHARED)
                return ck_usage_error("migrate", "--shared-file: at most %d files",
                                      CK_MAX_SHARED);
            m.shared[m.nshared++] = v;
            r = 0;
            i--; /* ck_opt_value moved past the value */
        } else if (!opts_done && argv[i][0] == '-' && argv[i][1]) {
            static const char *const opts[] = {"--ssh",     "--remote-coord",   "--keep",
                                               "--counter", "--remote-counter", "--key",
                                               "--remote-key", "--timeout"};
            const char **dst[] = {&m.ssh,         &m.remote_coord,   &m.keep,
                                  &m.counter_url, &m.remote_counter, &m.key,
                                  &m.remote_key,  &timeout};
            for (size_t k = 0; k < sizeof opts / sizeof opts[0] && r == 0; k++) {
                r = ck_opt_value("migrate", argc, argv, &i, opts[k], NULL, &v);
                if (r > 0)
                    *dst[k] = v;
            }
            if (r < 0)
                return CK_EXIT_USAGE;
            if (r == 0)
                return ck_usage_error("migrate", "unknown option %s", argv[i]);
            i--; /* ck_opt_value moved past the value */
        } else if (!pidarg) {
            pidarg = argv[i];
        } else if (!m.host) {
            m.host = argv[i];
        } else {
            return ck_usage_error("migrate", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!pidarg || !m.host)
        return ck_usage_error("migrate", "give a PID and a [USER@]HOST");
    m.pid = ck_parse_pid(pidarg);
    if (m.pid < 0)
        return ck_usage_error("migrate", "'%s' is not a process id", pidarg);
    if (!*m.host || m.host[0] == '-' || strpbrk(m.host, " \t\n'\"\\;|&$`"))
        return ck_usage_error("migrate", "'%s' is not a host name", m.host);
    if (!*m.remote_coord)
        return ck_usage_error("migrate", "--remote-coord: empty path");
    if (m.keep && !*m.keep)
        return ck_usage_error("migrate", "--keep: empty file name");
    if (m.ssh && !*m.ssh)
        return ck_usage_error("migrate", "--ssh: empty command");
    if (timeout && (m.timeout_ms = ck_parse_duration(timeout)) < 0)
        return ck_usage_error("migrate", "--timeout: '%s' is not a duration (10s, 5m)", timeout);
    /* ssh that never prompts and notices a dead connection */
    const char *ssh_cmd = m.ssh ? m.ssh
                                : "ssh -o BatchMode=yes -o ConnectTimeout=20 "
                                  "-o ServerAliveInterval=10 -o ServerAliveCountMax=3";
    char sshbuf[1024];
    snprintf(sshbuf, sizeof sshbuf, "%s", ssh_cmd);
    if (split_ssh(&m, sshbuf) < 0)
        return ck_usage_error("migrate", "--ssh: no command, or too many words");
    if (!ck_proc_alive(m.pid)) {
        ck_msg("migrate %d: no such process", m.pid);
        return CK_EXIT_FAIL;
    }
    catch_signals();

    if (preflight(&m) < 0 || checkpoint_here(&m) < 0)
        return CK_EXIT_FAIL;

    char cmd[3 * PATH_MAX] = "", out[4096], shown[PATH_MAX + 8];
    sh_quote(cmd, sizeof cmd, m.remote_coord);
    strncat(cmd, " restore - --detach --adopt-stamp", sizeof cmd - strlen(cmd) - 1);
    const char *rkey = m.remote_key ? m.remote_key : m.key;
    if (m.remote_counter) {
        strncat(cmd, " --counter ", sizeof cmd - strlen(cmd) - 1);
        sh_quote(cmd, sizeof cmd, m.remote_counter);
    }
    if (rkey) {
        strncat(cmd, " --key ", sizeof cmd - strlen(cmd) - 1);
        sh_quote(cmd, sizeof cmd, rkey);
    }
    if (m.remote_quiet)
        strncat(cmd, " --quiet", sizeof cmd - strlen(cmd) - 1);
    for (int k = 0; k < m.nshared; k++) {
        strncat(cmd, " --shared-file ", sizeof cmd - strlen(cmd) - 1);
        sh_quote(cmd, sizeof cmd, m.shared[k]);
    }
    if (m.no_versions)
        strncat(cmd, " --no-file-versions", sizeof cmd - strlen(cmd) - 1);
    int in = m.dirfd >= 0 ? openat(m.dirfd, "image", O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                          : open(m.image, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0) {
        ck_msg("migrate %d: cannot read back the image %s: %s", m.pid,
               image_shown(&m, shown, sizeof shown), strerror(errno));
        return restore_here(&m, "the image could not be sent");
    }
    ck_progress_start("migrate", m.quiet);
    int ws = run_ssh(&m, cmd, in, out, sizeof out, m.timeout_ms);
    ck_progress_end();
    close(in);
    int newpid = ws >= 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? last_pid(out) : -1;
    if (newpid > 0) {
        retire_local_image(&m);
        cleanup(&m);
        ck_msg("migrate %d: the program runs on %s as pid %d", m.pid, m.host, newpid);
        printf("%d\n", newpid);
        return CK_EXIT_OK;
    }
    if (ws >= 0 && WIFEXITED(ws) && (WEXITSTATUS(ws) == CK_EXIT_FAIL ||
                                     WEXITSTATUS(ws) == CK_EXIT_USAGE)) {
        char why[300];
        snprintf(why, sizeof why, "the restore on %s failed (above)", m.host);
        return restore_here(&m, why);
    }
    /* ssh broke (exit 255, a signal), took too long, was interrupted, or
     * the answer was not a pid: the program may or may not run there.
     * Never risk running it twice. */
    const char *what = ws == GOT_SIGNAL  ? "interrupted while the image was sent or restored"
                       : ws == TIMED_OUT ? "no answer within --timeout while the image was "
                                           "sent or restored"
                                         : "the connection failed while the image was sent or "
                                           "restored";
    ck_msg("migrate %d: %s on %s: the program may be running there (check with: %s %s %s "
           "list) and does not run here. Its image is kept at %s: `coord restore FILE` runs it "
           "here if it does not run there",
           m.pid, what, m.host, ssh_cmd, m.host, m.remote_coord,
           image_shown(&m, shown, sizeof shown));
    return CK_EXIT_FAIL;
}
