/* coord.c - entry point of the coord tool: dispatch, help, shared helpers. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "coord.h"
#include "fileid.h"

struct subcmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    int opts_stop_at_arg; /* options end at the first non-option (run) */
    const char *usage;
    const char *help;
};

static const struct subcmd subcmds[] = {
    {"run", cmd_run, 1,
     "coord run [--id NAME] [--pidns] [--every DURATION --images DIR [--keep N] [--auto-restore] "
     "[--resume] ...] [--shared-file PATH]... [--no-file-versions] -- PROG [ARGS...]",
     "Start PROG with libshim.so preloaded, so that it can be checkpointed.\n"
     "PROG is looked up in PATH; it must be a dynamically linked program or a\n"
     "#! script whose interpreter is one.\n"
     "\n"
     "  --id NAME   application id, stored in images (CKSHIM_APP_ID)\n"
     "  --shared-file PATH  a file PROG writes that others write too (a shared log):\n"
     "                      not put back at its checkpoint version on restore;\n"
     "                      repeatable (CKSHIM_SHARED_FILES)\n"
     "  --no-file-versions  put no written file back at its checkpoint version\n"
     "                      (CKSHIM_FILE_VERSIONS=0)\n"
     "  --pidns     run PROG in a user and pid namespace of its own (pid 2, under\n"
     "              coord's init): restored, its processes get their pids back\n"
     "\n"
     "As a supervisor (--every and --images): coord stays PROG's parent,\n"
     "checkpoints it every DURATION into DIR and exits with its exit status\n"
     "(128+N if killed by signal N). SIGTERM or SIGINT to coord takes a last\n"
     "checkpoint, ends PROG and exits 0; a second one ends everything at once.\n"
     "\n"
     "  --every DURATION    time between checkpoints: 500ms, 10s, 2m, 1h\n"
     "  --images DIR        where the images go (ckpt-NNNNNN.img, supervise.state);\n"
     "                      created 0700; must be your own directory, not a link\n"
     "  --keep N            keep the N newest images (default 3)\n"
     "  --auto-restore      when PROG dies of a signal or exits non-zero, restore it\n"
     "                      from the newest image and go on\n"
     "  --max-restores N    give up after N automatic restores within --window\n"
     "                      (default 5; 0: never restore)\n"
     "  --window DURATION   (default 60s)\n"
     "  --resume            if DIR holds images of this command (or --id), restore the\n"
     "                      newest instead of starting PROG fresh\n"
     "  --exit-code-on-checkpoint N\n"
     "                      exit N instead of 0 after the last checkpoint on SIGTERM or\n"
     "                      SIGINT (HTCondor: \"checkpointed, run me again\")\n"
     "  --counter URL       counter service for the images ($CKSHIM_COUNTER)\n"
     "  --record-net        journal what PROG receives on the connections it accepts\n"
     "                      (DIR/net-*.journal) and replay it after a restore on new\n"
     "                      connections (its replies dropped): requests since the last\n"
     "                      checkpoint are not lost. Needs --auto-restore or --resume\n"
     "  --record-net-max SIZE\n"
     "                      bound of one journal (default 64M; 4096, 64K, 1G)\n"
     "  --priority idle|normal\n"
     "                      the priority of the writer of a periodic image, which\n"
     "                      compresses and writes it while PROG runs on (default idle:\n"
     "                      only CPU and disk time nothing else wants; normal priority\n"
     "                      after half a period, at most 5m, without). A checkpoint\n"
     "                      still being written when the next is due makes that period\n"
     "                      skipped (said on stderr, in supervise.state, coord list).\n"
     "                      The last checkpoint (SIGTERM) is always at normal priority\n"},
    {"checkpoint", cmd_checkpoint, 0,
     "coord checkpoint PID -o FILE [--kill] [--no-fork] [--id NAME] [--counter URL] [--key FILE "
     "[--encrypt]] [--action-script PATH] [--json] [--quiet] [--shared-file PATH]... "
     "[--no-file-versions] [--priority idle|normal [--idle-limit DURATION]]",
     "Write an image of process PID (started with `coord run`) to FILE.\n"
     "FILE is replaced atomically: a failed checkpoint leaves it untouched.\n"
     "\n"
     "  -o, --output FILE   where to write the image (\"-\": standard output)\n"
     "  --kill              end the process after a good image is written\n"
     "  --no-fork           write the image from the paused process itself\n"
     "                      (slower to resume, needs no extra memory)\n"
     "  --priority idle|normal\n"
     "                      the priority of the writer that compresses and writes the\n"
     "                      image once the process runs on (default normal); idle:\n"
     "                      only CPU and disk time nothing else wants (SCHED_IDLE)\n"
     "  --idle-limit DURATION\n"
     "                      with --priority idle: after this long the writer goes on\n"
     "                      at normal priority (default 30s, at most 5m), so a busy\n"
     "                      machine still gets its image\n"
     "  --shared-file PATH  do not save PATH at its checkpoint version (repeatable)\n"
     "  --no-file-versions  save no written file at its checkpoint version\n"
     "  --id NAME           application id to stamp into the image\n"
     "  --counter URL       counter service: file:PATH (default), redis://HOST:PORT[/PREFIX]\n"
     "                      or none ($CKSHIM_COUNTER)\n"
     "  --key FILE          authenticate the image with this key ($CKSHIM_KEY_FILE)\n"
     "  --encrypt           also encrypt the page data (needs --key)\n"
     "  --action-script PATH\n"
     "                      run PATH before the checkpoint (CKSHIM_ACTION=pre-checkpoint;\n"
     "                      a non-zero exit refuses it) and after it (post-checkpoint,\n"
     "                      CKSHIM_RESULT=ok|failed), with CKSHIM_PID and CKSHIM_IMAGE\n"
     "  --json              also print what was written as one JSON object on standard\n"
     "                      output (pid, image, processes, threads, sizes, pause, stamp)\n"
     "  -q, --quiet         no progress line (one is shown on a terminal when the\n"
     "                      checkpoint takes more than a second)\n"},
    {"restore", cmd_restore, 0,
     "coord restore FILE|- [--detach] [--pidns] [--counter URL] [--key FILE] [--force] "
     "[--adopt-stamp] [--allow-changed PATH|all]... [--action-script PATH] [--json] [--quiet] "
     "[--shared-file PATH]... [--no-file-versions]",
     "Bring back the process saved in FILE (\"-\": read the image from standard\n"
     "input, e.g. from ssh; it is held in memory, never written to disk).\n"
     "\n"
     "  --detach        do not wait for the restored process: print its pid and return\n"
     "  --json          with --detach: print the pid (and image, processes, pidns) as\n"
     "                  one JSON object\n"
     "  --pidns         restore in a new pid namespace with the pids the program knew\n"
     "                  (images taken under coord run --pidns always are)\n"
     "  --counter URL   counter service holding the stamps ($CKSHIM_COUNTER)\n"
     "  --key FILE      the key the image was authenticated with ($CKSHIM_KEY_FILE)\n"
     "  --force         restore even if the stamp is stale or the counter is unreachable\n"
     "  --adopt-stamp   the image was stamped by another host's counter (coord migrate\n"
     "                  passes it): raise this counter to the image's stamp if it is\n"
     "                  lower (never lower it), then check as usual\n"
     "  --shared-file PATH\n"
     "                  leave PATH as it is instead of putting it back at its checkpoint\n"
     "                  version (repeatable)\n"
     "  --no-file-versions\n"
     "                  put no file back at its checkpoint version\n"
     "  --allow-changed PATH\n"
     "                  use PATH (a file the program had open or mapped) even though it\n"
     "                  changed since the checkpoint (size, mtime or content); \"all\" for\n"
     "                  every file; repeatable. A path that is no longer a regular file\n"
     "                  (a FIFO, a directory, a symbolic link) is always refused\n"
     "  --action-script PATH\n"
     "                  run PATH once the restored program runs (CKSHIM_ACTION=\n"
     "                  post-restore, CKSHIM_PID, CKSHIM_IMAGE)\n"
     "  -q, --quiet     no progress line (one is shown on a terminal when the\n"
     "                  restore takes more than a second)\n"},
    {"migrate", cmd_migrate, 0,
     "coord migrate PID [USER@]HOST [--ssh CMD] [--remote-coord PATH] [--keep FILE] "
     "[--counter URL] [--remote-counter URL] [--key FILE] [--remote-key FILE] "
     "[--timeout DURATION] [--quiet] [--shared-file PATH]... [--no-file-versions]",
     "Move process PID (and its children) to HOST over ssh: checkpoint it with\n"
     "--kill into a local image, send that to `coord restore - --detach` on HOST,\n"
     "print the new pid there. If the restore there fails, the program is\n"
     "restored here again; if ssh breaks midway, the local image is kept and\n"
     "nothing is restored twice. HOST must accept ssh without a password prompt.\n"
     "\n"
     "  --ssh CMD             the ssh command, split on blanks ($CKSHIM_SSH; default\n"
     "                        ssh with BatchMode, ConnectTimeout and ServerAlive set)\n"
     "  --remote-coord PATH   coord on HOST (default: coord in its PATH)\n"
     "  --keep FILE           write the local image to FILE and keep it\n"
     "  --counter URL         the local counter ($CKSHIM_COUNTER); advanced past the\n"
     "                        image once it runs on HOST\n"
     "  --remote-counter URL  the counter on HOST (default: its default); a shared\n"
     "                        redis:// counter keeps rollback protection across hosts\n"
     "  --key FILE            authenticate the image; --remote-key FILE: its path on HOST\n"
     "  --timeout DURATION    give up on the transfer and the restore there after\n"
     "                        DURATION (default 10m; the image is then kept here)\n"
     "  -q, --quiet           no progress lines for the checkpoint and the transfer\n"
     "  --shared-file PATH    a file others write too: not saved at its checkpoint\n"
     "                        version here, left as it is by the restore on HOST\n"
     "                        (and here, if the program comes back); repeatable\n"
     "  --no-file-versions    the same for every file the program writes\n"},
    {"keygen", cmd_keygen, 0, "coord keygen FILE",
     "Create a new random key file (0600) for --key. An existing file is never\n"
     "overwritten.\n"},
    {"list", cmd_list, 0, "coord list [--json]",
     "List your processes that run under the shim.\n"
     "\n"
     "  --json   print one JSON object instead of a table\n"},
    {"inspect", cmd_inspect, 0,
     "coord inspect FILE [--json] [--verify] [--counter URL] [--key FILE]",
     "Describe the image FILE: header, process state, memory, threads, fds.\n"
     "\n"
     "  --json     print one JSON object instead of text\n"
     "  --verify   also read and checksum every page record\n"
     "  --counter URL   where to read the counter's current value ($CKSHIM_COUNTER)\n"
     "  --key FILE      check the image's authenticity with this key\n"},
};
#define NSUBCMDS (sizeof(subcmds) / sizeof(subcmds[0]))

static const struct subcmd *find_subcmd(const char *name)
{
    for (size_t i = 0; i < NSUBCMDS; i++)
        if (strcmp(subcmds[i].name, name) == 0)
            return &subcmds[i];
    return NULL;
}

const char *ck_cmd_usage(const char *cmd)
{
    const struct subcmd *s = find_subcmd(cmd);
    return s ? s->usage : NULL;
}

static void print_main_usage(FILE *f)
{
    fprintf(f, "usage: coord COMMAND [ARGS...]\n"
               "\n"
               "Transparent checkpoint/restore of unprivileged Linux processes.\n"
               "\n"
               "commands:\n");
    for (size_t i = 0; i < NSUBCMDS; i++)
        fprintf(f, "  %s\n", subcmds[i].usage);
    fprintf(f, "  coord help [COMMAND]\n"
               "  coord --version\n"
               "\n"
               "Run `coord COMMAND --help` for details on one command.\n");
}

static void print_cmd_help(FILE *f, const struct subcmd *s)
{
    fprintf(f, "usage: %s\n\n%s", s->usage, s->help);
}

void ck_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ck_progress_clear();
    fputs("coord: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int ck_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ck_progress_clear();
    fprintf(stderr, "coord: %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    const char *u = ck_cmd_usage(cmd);
    if (u)
        fprintf(stderr, "usage: %s\nTry `coord %s --help`.\n", u, cmd);
    return CK_EXIT_USAGE;
}

int ck_opt_value(const char *cmd, int argc, char **argv, int *i, const char *longopt,
                 const char *shortopt, const char **val)
{
    const char *a = argv[*i];
    size_t ll = strlen(longopt);
    int match = 0;
    if (strcmp(a, longopt) == 0 || (shortopt && strcmp(a, shortopt) == 0)) {
        match = 1;
    } else if (strncmp(a, longopt, ll) == 0 && a[ll] == '=') {
        *val = a + ll + 1;
        (*i)++;
        return 1;
    } else if (shortopt && strncmp(a, shortopt, strlen(shortopt)) == 0 &&
               a[strlen(shortopt)] != '\0' && shortopt[1] != '-') {
        *val = a + strlen(shortopt);
        (*i)++;
        return 1;
    }
    if (!match)
        return 0;
    if (*i + 1 >= argc) {
        ck_usage_error(cmd, "option %s needs an argument", a);
        return -1;
    }
    *val = argv[*i + 1];
    *i += 2;
    return 1;
}

const char *ck_fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

int ck_parse_pid(const char *s)
{
    if (!s || !*s)
        return -1;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > INT_MAX)
            return -1;
    }
    return v > 0 ? (int)v : -1;
}

const char *ck_user_name(char *buf, size_t len, uid_t uid)
{
    struct passwd *pw = getpwuid(uid);
    if (pw && pw->pw_name)
        snprintf(buf, len, "%s", pw->pw_name);
    else
        snprintf(buf, len, "%u", (unsigned)uid);
    return buf;
}

int ck_proc_info(int pid, struct ck_procinfo *pi)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
    memset(pi, 0, sizeof(*pi));
    pi->tgid = -1;
    int have_uid = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned r, e;
        int t;
        char st;
        if (sscanf(line, "Uid: %u %u", &r, &e) == 2) {
            pi->ruid = r;
            pi->euid = e;
            have_uid = 1;
        } else if (sscanf(line, "Tgid: %d", &t) == 1) {
            pi->tgid = t;
        } else if (sscanf(line, "TracerPid: %d", &t) == 1) {
            pi->tracer = t;
        } else if (sscanf(line, "State: %c", &st) == 1) {
            pi->state = st;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err)
        return -ENOENT; /* vanished while we read it */
    return have_uid ? 0 : -EIO;
}

/* The credential lines of /proc/PID/status (ck_cred_differs), each
 * "Name:\tvalues" without its newline, in want's order; 0 or -1. */
static const char *const cred_lines[] = {"Uid:", "Gid:", "CapInh:", "CapPrm:", "CapEff:",
                                         "CapBnd:", "CapAmb:", "Groups:"};
/* (Groups: read, not compared: ck_cred_differs) */
enum { NCRED = sizeof cred_lines / sizeof cred_lines[0] };

static int read_creds(const char *path, char got[NCRED][160])
{
    char line[512];
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    for (int k = 0; k < NCRED; k++)
        got[k][0] = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        for (int k = 0; k < NCRED; k++)
            if (!strncmp(line, cred_lines[k], strlen(cred_lines[k]))) {
                const char *v = line + strlen(cred_lines[k]);
                v += strspn(v, " \t");
                snprintf(got[k], sizeof got[k], "%s", v);
                for (char *c = got[k]; *c; c++)
                    if (*c == '\t')
                        *c = ' ';
            }
    }
    int err = ferror(f);
    fclose(f);
    return err ? -1 : 0;
}

/* Whether every line of a uid_map or gid_map maps an id to itself (the
 * ids a process sees inside are those seen here: coord run --pidns's
 * namespace). 1, 0, or 1 when it cannot be read (gone). */
static int map_is_identity(const char *path)
{
    char buf[1024];
    if (ck_read_file(path, buf, sizeof buf) <= 0)
        return 1;
    for (char *l = buf; *l;) {
        unsigned long in, out, count;
        if (sscanf(l, "%lu %lu %lu", &in, &out, &count) == 3 && in != out)
            return 0;
        char *nl = strchr(l, '\n');
        if (!nl)
            break;
        l = nl + 1;
    }
    return 1;
}

/* fn(status path, tid, arg) for each thread of pid until one answers
 * non-zero: that answer, or 0. A process whose task list cannot be read
 * gets its own status file (tid pid). */
static int each_thread(int pid, int (*fn)(const char *status, int tid, void *arg), void *arg)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    struct dirent *e;
    int r = 0;
    if (!d) {
        snprintf(path, sizeof path, "/proc/%d/status", pid);
        return fn(path, pid, arg);
    }
    while (!r && (e = readdir(d)) != NULL) {
        int tid = atoi(e->d_name);
        if (tid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, tid);
        r = fn(path, tid, arg);
    }
    closedir(d);
    return r;
}

/* One thread's status file against coord's own (struct cred_cmp). */
struct cred_cmp {
    char (*mine)[160];
    int n, pid;
    char *why;
    size_t whylen;
};

static int creds_differ_in(const char *status, int tid, void *arg)
{
    struct cred_cmp *c = arg;
    char its[NCRED][160];
    if (read_creds(status, its) < 0)
        return 0;
    for (int k = 0; k < c->n; k++) {
        if (!strcmp(c->mine[k], its[k]))
            continue;
        const char *what = k == 0 ? "user ids" : k == 1 ? "group ids" : "capabilities";
        char th[32] = "";
        if (tid != c->pid)
            snprintf(th, sizeof th, " (its thread %d)", tid);
        snprintf(c->why, c->whylen, "runs%s with other %s than coord (%s %s, coord's %s): a "
                 "restore gives every process the credentials of the user who restores it, so "
                 "ckshim cannot give these back%s", th, what, cred_lines[k],
                 its[k][0] ? its[k] : "none", c->mine[k][0] ? c->mine[k] : "none",
                 k == 0 && tid == c->pid ? "; checkpoint it as that user" : "");
        return 1;
    }
    return 0;
}

int ck_cred_differs(int pid, char *why, size_t whylen)
{
    char mine[NCRED][160], path[96];
    if (read_creds("/proc/self/status", mine) < 0)
        return 0;
    /* Supplementary groups are not compared: an ordinary user's
     * processes cannot change theirs, and root's differ from root's
     * without a difference of rights (a service started with none, a
     * login shell with group 0; root's rights are its capabilities).
     * In another user namespace, capabilities are that namespace's: only
     * the ids, as this namespace sees them, are compared, and the
     * namespace must map every id to itself (coord run --pidns's does;
     * `unshare -r`'s makes the user root inside, which a restore, made
     * in a namespace of coord's, would not give back). */
    int n = NCRED - 1;
    struct stat a, b;
    snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
    if (stat("/proc/self/ns/user", &a) == 0 && stat(path, &b) == 0 && a.st_ino != b.st_ino) {
        n = 2;
        char um[64], gm[64];
        snprintf(um, sizeof um, "/proc/%d/uid_map", pid);
        snprintf(gm, sizeof gm, "/proc/%d/gid_map", pid);
        if (!map_is_identity(um) || !map_is_identity(gm)) {
            snprintf(why, whylen, "runs in a user namespace that maps its ids to others (as "
                     "unshare -r does: its user is root inside), which ckshim cannot make again; "
                     "run it with coord run --pidns instead");
            return 1;
        }
    }
    /* every thread: a thread may have credentials of its own (a raw
     * setresuid, as Samba's threads do) */
    struct cred_cmp c = {mine, n, pid, why, whylen};
    return each_thread(pid, creds_differ_in, &c);
}

static int tracer_of(const char *status, int tid, void *arg)
{
    char buf[4096];
    int tracer = 0;
    const char *l = ck_read_file(status, buf, sizeof buf) > 0 ? strstr(buf, "TracerPid:") : NULL;
    if (!l || sscanf(l, "TracerPid: %d", &tracer) != 1 || tracer <= 0)
        return 0;
    *(int *)arg = tid;
    return tracer;
}

int ck_thread_tracer(int pid, int *tid)
{
    return each_thread(pid, tracer_of, tid);
}

int ck_pid_holds_file(int pid, dev_t dev, ino_t ino)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = -1;
    while (d && found < 0 && (e = readdir(d)) != NULL) {
        char lp[96];
        struct stat st;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(lp, sizeof lp, "%s/%s", dir, e->d_name);
        if (stat(lp, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
            found = atoi(e->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

int ck_proc_alive(int pid)
{
    struct ck_procinfo pi;
    if (ck_proc_info(pid, &pi) < 0)
        return 0;
    return pi.state != 'Z' && pi.state != 'X';
}

void ck_sock_dir_warn(void)
{
    static int said;
    const char *note = ck_sock_dir_note();
    if (note && !said) {
        said = 1;
        fprintf(stderr, "coord: warning: %s\n", note);
    }
}

int ck_shim_signal(int pid)
{
    /* as the shim chooses it (preload/shim.c): the first CKSHIM_SIGNAL
     * of its environment (getenv), unless it is no signal to use */
    char path[64], env[65536];
    int sig = SIGRTMAX - 2;
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    int len = ck_read_file(path, env, sizeof env);
    for (int o = 0; len > 0 && o < len; o += (int)strlen(env + o) + 1)
        if (!strncmp(env + o, "CKSHIM_SIGNAL=", 14)) {
            int v = atoi(env + o + 14);
            if (v >= 1 && v < NSIG && v != SIGKILL && v != SIGSTOP)
                sig = v;
            break;
        }
    /* never one the process does not catch (its default action would
     * end or stop it): its environment may say something else than the
     * shim read (rewritten since, cut at 64 KiB) */
    /* (line by line: a long Groups line may come before) */
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    unsigned long long cgt = 0;
    while (f && getline(&line, &cap, f) > 0)
        if (!strncmp(line, "SigCgt:", 7)) {
            cgt = strtoull(line + 7, NULL, 16);
            break;
        }
    free(line);
    if (f)
        fclose(f);
    return sig < 65 && (cgt >> (sig - 1) & 1) ? sig : 0;
}

int ck_call_threads(int pid, int *tids, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    while (d && n < max && (e = readdir(d)) != NULL) {
        char p[96], comm[32];
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(p, sizeof p, "/proc/%d/task/%s/comm", pid, e->d_name);
        int k = ck_read_file(p, comm, sizeof comm);
        if (k > 0 && comm[k - 1] == '\n')
            comm[k - 1] = 0;
        if (k > 0 && !strcmp(comm, CK_CALL_COMM))
            tids[n++] = atoi(e->d_name);
    }
    if (d)
        closedir(d);
    return n;
}

/* Call pid's shim, whose program closed the control socket (ctlproto.h,
 * CK_CALL_COMM): listen on the call path beside sock, queue the signal
 * with the token to its manager thread, take its connection. Returns the
 * connection, or -errno: -ENOENT when no thread of pid waits for calls,
 * -EBUSY when pid is stopped (its manager cannot answer). */
static int ctl_call(int pid, const char *sock, int timeout_ms)
{
    /* (every thread a hook started on the manager has its name too) */
    int tids[256];
    int ntids = ck_call_threads(pid, tids, 256);
    if (ntids <= 0)
        return -ENOENT;
    int sig = ck_shim_signal(pid);
    if (sig <= 0)
        return -ENOENT;
    struct ck_procinfo pi;
    if (ck_proc_info(pid, &pi) == 0 && (pi.state == 'T' || pi.state == 't'))
        return -EBUSY;
    uint32_t token = 0;
    if (getrandom(&token, sizeof token, 0) != (ssize_t)sizeof token)
        return -EIO;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (ck_call_path(sa.sun_path, sizeof sa.sun_path, sock, token) < 0)
        return -ENAMETOOLONG;
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0)
        return -errno;
    /* (a new name in the private socket directory: bind never follows a
     * link nor takes a name that exists; 0600 from the start, the
     * socket's own mode, which bind gives the file) */
    fchmod(l, 0600);
    int r = bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : 0;
    if (r == 0 && listen(l, CK_CALL_QUEUE) < 0) {
        r = -errno;
        unlink(sa.sun_path);
    }
    if (r < 0) {
        close(l);
        return r;
    }
    siginfo_t si;
    ck_siginfo_queued(&si, sig, getpid(), getuid(), (union sigval){.sival_int = (int)token});
    int conn = -ETIMEDOUT, sent = 0;
    /* To the thread itself: after an exec, which ends it, nothing is
     * signalled. To each of that name: a thread a hook made on the
     * manager has its name too (the shim takes the call only on the
     * manager). */
    for (int i = 0; i < ntids; i++)
        if (syscall(SYS_rt_tgsigqueueinfo, pid, tids[i], sig, &si) == 0)
            sent++;
    if (!sent) {
        conn = -ENOENT;
    } else {
        /* in short steps: a called thread that is gone (its process
         * exec'd or ended: a child that closed every descriptor, then
         * exec'd, as Java's launcher does) will never answer, and the
         * whole time-out would be spent with a tree parked */
        struct pollfd pf = {.fd = l, .events = POLLIN};
        int left = timeout_ms > 0 ? timeout_ms : 5000, pr = 0;
        while (left > 0) {
            int step = left < 50 ? left : 50;
            pr = poll(&pf, 1, step);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr != 0)
                break;
            left -= step;
            int live[256], nlive = ck_call_threads(pid, live, 256), still = 0;
            for (int i = 0; i < ntids && !still; i++)
                for (int k = 0; k < nlive && !still; k++)
                    still = tids[i] == live[k];
            if (!still) {
                conn = -ENOENT;
                break;
            }
        }
        if (pr > 0) {
            conn = accept4(l, NULL, NULL, SOCK_CLOEXEC);
            if (conn < 0)
                conn = -errno;
        }
    }
    unlink(sa.sun_path);
    close(l);
    if (conn >= 0 && timeout_ms > 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return conn;
}

int ck_ctl_connect(int pid, char *path, size_t pathlen, int timeout_ms)
{
    struct sockaddr_un sa;
    int r = ck_sock_path(path, pathlen, pid);
    ck_sock_dir_warn();
    if (r == -EPERM)
        return -EPERM;
    if (r < 0)
        return -ENAMETOOLONG;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        int c = e == ENOENT ? ctl_call(pid, path, timeout_ms) : -ENOENT;
        return c == -ENOENT ? -e : c;
    }
    if (!S_ISSOCK(st.st_mode))
        return -ENOTSOCK;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (timeout_ms > 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        if (e == EAGAIN || e == EINPROGRESS)
            e = ETIMEDOUT;
        /* (a socket its program closed with a raw system call: the shim
         * calls from now on, and removes the path once it knows) */
        int c = e == ECONNREFUSED ? ctl_call(pid, path, timeout_ms) : -ENOENT;
        return c == -ENOENT ? -e : c;
    }
    return fd;
}

int ck_ctl_peer_pid(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return -errno;
    return cred.pid;
}

int ck_ctl_send(int fd, const struct ck_ctl_req *req, int pass_fd)
{
    struct iovec iov = {(void *)req, sizeof(*req)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    memset(&ctl, 0, sizeof(ctl));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (pass_fd >= 0) {
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN ? -ETIMEDOUT : -errno;
    if ((size_t)n == sizeof(*req))
        return 0;
    /* The ancillary data went with the first byte; send the rest plainly. */
    const char *p = (const char *)req + n;
    size_t left = sizeof(*req) - (size_t)n;
    while (left > 0) {
        n = send(fd, p, left, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        }
        p += n;
        left -= (size_t)n;
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ck_ctl_recv(int fd, struct ck_ctl_rep *rep, int timeout_ms)
{
    char *p = (char *)rep;
    size_t got = 0;
    int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
    memset(rep, 0, sizeof(*rep));
    while (got < sizeof(*rep)) {
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            wait = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, wait);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -ETIMEDOUT;
        ssize_t n = recv(fd, p + got, sizeof(*rep) - got, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            /* (reset before a byte came: the connection was never
             * taken, its listener closed under it: said apart) */
            if (errno == ECONNRESET)
                return got ? -EPROTO : -ECONNRESET;
            return -errno;
        }
        if (n == 0)
            return got ? -EPROTO : -EPIPE;
        got += (size_t)n;
    }
    if (rep->magic != CK_CTL_MAGIC)
        return -EPROTO;
    /* The strings come from another process: make sure they end. */
    rep->app_id[sizeof(rep->app_id) - 1] = '\0';
    rep->exe[sizeof(rep->exe) - 1] = '\0';
    rep->msg[sizeof(rep->msg) - 1] = '\0';
    return 0;
}

/* ---- JSON ---- */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        min = 0x80;
        c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        min = 0x800;
        c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    return len;
}

void ck_json_strn(FILE *f, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strnlen(s, n);
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned c = u[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            i++;
        } else if (c == '\n') {
            fputs("\\n", f);
            i++;
        } else if (c == '\t') {
            fputs("\\t", f);
            i++;
        } else if (c == '\r') {
            fputs("\\r", f);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            fputc((int)c, f);
            i++;
        } else {
            size_t l = utf8_len(u + i, len - i);
            if (l == 0) {
                fprintf(f, "\\u%04x", c); /* not UTF-8: keep the byte as Latin-1 */
                i++;
            } else {
                fwrite(u + i, 1, l, f);
                i += l;
            }
        }
    }
    fputc('"', f);
}

void ck_json_str(FILE *f, const char *s)
{
    ck_json_strn(f, s ? s : "", (size_t)-1);
}

void ck_json_init(struct ck_json *j, FILE *f)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
}

static void json_member(struct ck_json *j, const char *key)
{
    if (j->depth > 0) {
        if (j->count[j->depth - 1]++)
            fputc(',', j->f);
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->f);
    }
    if (key) {
        ck_json_str(j->f, key);
        fputs(": ", j->f);
    }
}

void ck_json_open(struct ck_json *j, const char *key, char bracket)
{
    json_member(j, key);
    fputc(bracket, j->f);
    if (j->depth < CK_JSON_MAXDEPTH)
        j->count[j->depth] = 0;
    j->depth++;
}

void ck_json_close(struct ck_json *j, char bracket)
{
    j->depth--;
    if (j->depth < CK_JSON_MAXDEPTH && j->count[j->depth]) {
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->f);
    }
    fputc(bracket, j->f);
}

void ck_json_kstr(struct ck_json *j, const char *key, const char *s)
{
    json_member(j, key);
    ck_json_str(j->f, s);
}

void ck_json_kstrn(struct ck_json *j, const char *key, const char *s, size_t n)
{
    json_member(j, key);
    ck_json_strn(j->f, s, n);
}

void ck_json_ku64(struct ck_json *j, const char *key, uint64_t v)
{
    json_member(j, key);
    fprintf(j->f, "%llu", (unsigned long long)v);
}

void ck_json_ki64(struct ck_json *j, const char *key, int64_t v)
{
    json_member(j, key);
    fprintf(j->f, "%lld", (long long)v);
}

void ck_json_khex(struct ck_json *j, const char *key, uint64_t v)
{
    json_member(j, key);
    fprintf(j->f, "\"0x%llx\"", (unsigned long long)v);
}

void ck_json_kbool(struct ck_json *j, const char *key, int v)
{
    json_member(j, key);
    fputs(v ? "true" : "false", j->f);
}

void ck_json_kdouble(struct ck_json *j, const char *key, double v)
{
    json_member(j, key);
    if (v != v || v > 1e300 || v < -1e300)
        fputs("null", j->f);
    else
        fprintf(j->f, "%.6g", v);
}

void ck_json_knull(struct ck_json *j, const char *key)
{
    json_member(j, key);
    fputs("null", j->f);
}

void ck_json_end(struct ck_json *j)
{
    fputc('\n', j->f);
}

/* ---- main ---- */

static int is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* Does the subcommand's argument list ask for help? */
static int wants_help(const struct subcmd *s, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (is_help(argv[i]))
            return 1;
        if (s->opts_stop_at_arg) {
            if (argv[i][0] != '-')
                return 0;
            if (strcmp(argv[i], "--id") == 0)
                i++; /* skip its value */
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_main_usage(stderr);
        return CK_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (is_help(cmd)) {
        print_main_usage(stdout);
        return CK_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 || strcmp(cmd, "version") == 0) {
        printf("coord (ckshim) %s\n", COORD_VERSION);
        return CK_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc < 3) {
            print_main_usage(stdout);
            return CK_EXIT_OK;
        }
        const struct subcmd *s = find_subcmd(argv[2]);
        if (!s) {
            fprintf(stderr, "coord: help: unknown command '%s'\n", argv[2]);
            print_main_usage(stderr);
            return CK_EXIT_USAGE;
        }
        print_cmd_help(stdout, s);
        return CK_EXIT_OK;
    }
    const struct subcmd *s = find_subcmd(cmd);
    if (!s) {
        if (cmd[0] == '-')
            fprintf(stderr, "coord: unknown option '%s'\n", cmd);
        else
            fprintf(stderr, "coord: unknown command '%s'\n", cmd);
        print_main_usage(stderr);
        return CK_EXIT_USAGE;
    }
    if (wants_help(s, argc - 1, argv + 1)) {
        print_cmd_help(stdout, s);
        return CK_EXIT_OK;
    }
    int rc = s->fn(argc - 1, argv + 1);
    if (fflush(stdout) != 0 && rc == CK_EXIT_OK) {
        ck_msg("%s: writing to standard output: %s", cmd, strerror(errno));
        rc = CK_EXIT_FAIL;
    }
    return rc;
}
