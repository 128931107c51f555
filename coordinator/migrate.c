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
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
    char dir[PATH_MAX], image[PATH_MAX];
};

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
 * m->ssh_argv, then the host and "--" (the host can never be taken as an
 * option). Returns 0 or -1. */
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

/* The parent's side of a child c writing to pipe p: its output in out
 * (NUL-terminated, the rest dropped), then its wait status (or -1). */
static int collect(int p[2], pid_t c, char *out, size_t outlen)
{
    close(p[1]);
    size_t n = 0;
    for (;;) {
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
    while (waitpid(c, &ws, 0) < 0)
        if (errno != EINTR)
            return -1;
    return ws;
}

/* Run ssh HOST REMOTE_CMD with stdin from in_fd (or /dev/null), its
 * standard output collected in out (NUL-terminated), stderr passed on.
 * Returns ssh's wait status, or -1 if it could not be started. */
static int run_ssh(struct mig *m, const char *remote_cmd, int in_fd, char *out, size_t outlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    char *argv[MAX_SSH_ARGS + 4];
    memcpy(argv, m->ssh_argv, sizeof(char *) * (size_t)m->ssh_argc);
    argv[m->ssh_argc] = (char *)remote_cmd;
    argv[m->ssh_argc + 1] = NULL;
    fflush(NULL);
    pid_t c = fork();
    if (c < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (c == 0) {
        int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(p[1], STDOUT_FILENO) < 0)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        ck_msg("migrate: cannot run %s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    return collect(p, c, out, outlen);
}

/* Run cmd_X(argv) in a child with its standard output collected in out.
 * Returns its exit code (-1: could not run or died of a signal). */
static int run_coord(int (*fn)(int, char **), char **argv, char *out, size_t outlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    int argc = 0;
    while (argv[argc])
        argc++;
    fflush(NULL);
    pid_t c = fork();
    if (c < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (c == 0) {
        close(p[0]);
        if (dup2(p[1], STDOUT_FILENO) < 0)
            _exit(CK_EXIT_FAIL);
        int rc = fn(argc, argv);
        fflush(NULL);
        _exit(rc);
    }
    int ws = collect(p, c, out, outlen);
    return ws >= 0 && WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* The first line of s as a pid, or -1. */
static int first_pid(const char *s)
{
    char line[32];
    size_t n = strcspn(s, "\n");
    if (n == 0 || n >= sizeof line)
        return -1;
    memcpy(line, s, n);
    line[n] = 0;
    return ck_parse_pid(line);
}

static void cleanup(struct mig *m)
{
    if (m->keep || !m->dir[0])
        return;
    unlink(m->image);
    rmdir(m->dir);
}

/* Step 1: can we run the remote coord, and can it restore from stdin? */
static int preflight(struct mig *m)
{
    char cmd[PATH_MAX + 64] = "", out[8192];
    sh_quote(cmd, sizeof cmd, m->remote_coord);
    strncat(cmd, " restore --help", sizeof cmd - strlen(cmd) - 1);
    int ws = run_ssh(m, cmd, -1, out, sizeof out);
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
    return 0;
}

/* argv[n...]: the local --counter and --key, then NULL (room for 5). */
static void local_options(const struct mig *m, char **argv, int n)
{
    if (m->counter_url) {
        argv[n++] = "--counter";
        argv[n++] = (char *)m->counter_url;
    }
    if (m->key) {
        argv[n++] = "--key";
        argv[n++] = (char *)m->key;
    }
    argv[n] = NULL;
}

/* Step 2: a committed local image; the program ends once it is safe. */
static int checkpoint_here(struct mig *m)
{
    if (m->keep) {
        snprintf(m->image, sizeof m->image, "%s", m->keep);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(m->dir, sizeof m->dir, "%s/ckshim-migrate-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(m->dir)) {
            ck_msg("migrate %d: cannot create a directory for the image in %s: %s", m->pid,
                   tmp && *tmp ? tmp : "/tmp", strerror(errno));
            m->dir[0] = 0;
            return -1;
        }
        snprintf(m->image, sizeof m->image, "%s/image", m->dir);
    }
    char pidstr[16], out[256];
    snprintf(pidstr, sizeof pidstr, "%d", m->pid);
    char *argv[12] = {"checkpoint", pidstr, "-o", m->image, "--kill"};
    local_options(m, argv, 5);
    int rc = run_coord(cmd_checkpoint, argv, out, sizeof out);
    if (rc != 0) {
        ck_msg("migrate %d: the checkpoint failed (above); the program still runs here", m->pid);
        cleanup(m);
        return -1;
    }
    return 0;
}

/* Step 4, failure: bring the program back here from the local image. */
static int restore_here(struct mig *m, const char *why)
{
    char out[256];
    char *argv[10] = {"restore", m->image, "--detach"};
    local_options(m, argv, 3);
    int rc = run_coord(cmd_restore, argv, out, sizeof out);
    int pid = rc == 0 ? first_pid(out) : -1;
    if (pid < 0) {
        ck_msg("migrate %d: %s, and restoring it here failed too (above); the image is kept "
               "at %s", m->pid, why, m->image);
        return CK_EXIT_FAIL;
    }
    ck_msg("migrate %d: %s; the program runs here again as pid %d (its image is kept at %s)",
           m->pid, why, pid, m->image);
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
    struct mig m = {0};
    const char *pidarg = NULL;
    m.ssh = getenv("CKSHIM_SSH");
    m.remote_coord = "coord";
    m.counter_url = getenv("CKSHIM_COUNTER");
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r = 0;
        if (argv[i][0] == '-' && argv[i][1]) {
            static const char *const opts[] = {"--ssh",     "--remote-coord",   "--keep",
                                               "--counter", "--remote-counter", "--key",
                                               "--remote-key"};
            const char **dst[] = {&m.ssh,         &m.remote_coord,   &m.keep,
                                  &m.counter_url, &m.remote_counter, &m.key,
                                  &m.remote_key};
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
    char sshbuf[1024];
    snprintf(sshbuf, sizeof sshbuf, "%s", m.ssh && *m.ssh ? m.ssh : "ssh -o BatchMode=yes");
    if (split_ssh(&m, sshbuf) < 0)
        return ck_usage_error("migrate", "--ssh: no command, or too many words");
    if (!ck_proc_alive(m.pid)) {
        ck_msg("migrate %d: no such process", m.pid);
        return CK_EXIT_FAIL;
    }

    if (preflight(&m) < 0 || checkpoint_here(&m) < 0)
        return CK_EXIT_FAIL;

    char cmd[3 * PATH_MAX] = "", out[256];
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
    int in = open(m.image, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0) {
        ck_msg("migrate %d: cannot read back the image %s: %s", m.pid, m.image, strerror(errno));
        return restore_here(&m, "the image could not be sent");
    }
    int ws = run_ssh(&m, cmd, in, out, sizeof out);
    close(in);
    int newpid = ws >= 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? first_pid(out) : -1;
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
    /* ssh broke (exit 255, a signal) or the answer was not a pid: the
     * program may or may not run there. Never risk running it twice. */
    ck_msg("migrate %d: the connection to %s failed while the image was sent or restored; the "
           "program may be running there (check with: ssh %s %s list) and does not run here. Its "
           "image is kept at %s: `coord restore %s` runs it here if it does not run there",
           m.pid, m.host, m.host, m.remote_coord, m.image, m.image);
    return CK_EXIT_FAIL;
}
