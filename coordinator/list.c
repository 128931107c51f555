/* list.c - "coord list": the processes running under the shim. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "coord.h"
#include "fileid.h"
#include "tree.h"

#define INFO_TIMEOUT_MS 5000

struct entry {
    int pid;
    int ppid;                           /* its parent (/proc/PID/stat) */
    int root;                           /* its tree's root: the oldest listed ancestor */
    int members;                        /* a root: processes in its tree, itself included */
    int stopped;                        /* stopped: not asked (rep from /proc only) */
    struct ck_ctl_rep rep;
};

/* Whether pid holds the socket listening at its control socket's path
 * (/proc/net/unix names the listener's inode, /proc/PID/fd its holder),
 * asked without connecting: a stopped shim cannot take a connection, and
 * each one asked of it would fill its listening queue, which its
 * checkpoint needs. A socket left by a process that is gone, whose pid an
 * unrelated stopped process has now, is not. */
static unsigned long listener_ino(const char *path);

static int listens_here(int pid)
{
    char path[PATH_MAX];
    if (ck_sock_path(path, sizeof path, pid) < 0)
        return 0;
    unsigned long ino = listener_ino(path);
    if (!ino)
        return 0;
    char want[48];
    snprintf(want, sizeof want, "socket:[%lu]", ino);
    return ck_pid_holds(pid, want);
}

/* The inode of the socket listening at path (/proc/net/unix), or 0. */
static unsigned long listener_ino(const char *path)
{
    char line[PATH_MAX + 128];
    FILE *f = fopen("/proc/net/unix", "re");
    unsigned long ino = 0;
    while (f && !ino && fgets(line, sizeof line, f)) {
        unsigned long flags, i;
        int st, off = 0;
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (sscanf(line, "%*s %*s %*s %lx %*x %x %lu %n", &flags, &st, &i, &off) >= 3 && off > 0 &&
            (flags & 0x10000) && !strcmp(line + off, path))
            ino = i;
    }
    if (f)
        fclose(f);
    return ino;
}

/* What /proc tells of a stopped process, whose shim cannot answer (its
 * manager is stopped too): its threads (the manager's left out) and its
 * program (as its shim says it: the command line's first word); the
 * rest stays 0 ("-"). */
static void stopped_rep(int pid, struct ck_ctl_rep *rep)
{
    char path[64];
    struct ck_pstat ps;
    memset(rep, 0, sizeof *rep);
    rep->nthreads = ck_pstat_read(pid, &ps) == 0 && ps.threads > 1 ? (uint32_t)(ps.threads - 1) : 0;
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    if (ck_read_file(path, rep->exe, sizeof rep->exe) < 0)
        rep->exe[0] = 0;
}

static int cmp_entry(const void *a, const void *b);

static int parent_of(int pid)
{
    struct ck_pstat ps;
    return ck_pstat_read(pid, &ps) < 0 ? 0 : (int)ps.ppid;
}

static struct entry *find_entry(struct entry *ents, size_t n, int pid)
{
    struct entry key = {.pid = pid};
    return pid > 0 ? bsearch(&key, ents, n, sizeof *ents, cmp_entry) : NULL;
}

/* Trees: a process whose parent is listed too belongs to its parent's
 * tree (coord checkpoint of the root takes it along). ents sorted. */
static void find_trees(struct entry *ents, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ents[i].ppid = parent_of(ents[i].pid);
        ents[i].members = 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct entry *e = &ents[i], *up;
        int hops = 0;
        while ((up = find_entry(ents, n, e->ppid)) != NULL && hops++ < (int)n)
            e = up;
        ents[i].root = e->pid;
        e->members++;
    }
}

/* "-" for a process alone, "root(N)" for the root of a tree of N, or
 * "in PID" for a member of the tree whose root is PID. */
static void tree_label(struct entry *ents, size_t n, size_t i, char *out, size_t len)
{
    const struct entry *r = find_entry(ents, n, ents[i].root);
    if (ents[i].root != ents[i].pid)
        snprintf(out, len, "in %d", ents[i].root);
    else if (r && r->members > 1)
        snprintf(out, len, "root(%d)", r->members);
    else
        snprintf(out, len, "-");
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* "<digits>.sock" -> pid, else -1. "ns<INODE>-<digits>.sock", a process
 * in a pid namespace of its own (ctlproto.h): the pid seen from here of
 * the process with that pid in that namespace, -1 if there is none (*ns
 * set: a socket left behind). */
static int sock_name_pid(const char *name, uint64_t *ns)
{
    const char *dot = strrchr(name, '.');
    *ns = 0;
    if (!strncmp(name, "ns", 2) && dot && !strcmp(dot, ".sock")) {
        char *end;
        unsigned long long ino = strtoull(name + 2, &end, 10);
        if (end == name + 2 || *end != '-' || end + 1 >= dot || dot - end > 11)
            return -1;
        char num[16];
        memcpy(num, end + 1, (size_t)(dot - end - 1));
        num[dot - end - 1] = '\0';
        int inner = ck_parse_pid(num);
        if (inner < 0)
            return -1;
        *ns = ino;
        return ck_pidns_find(ino, inner);
    }
    if (!dot || strcmp(dot, ".sock") != 0 || dot == name || dot - name > 10)
        return -1;
    char num[16];
    memcpy(num, name, (size_t)(dot - name));
    num[dot - name] = '\0';
    return ck_parse_pid(num);
}

/* Remove the socket dir/name when a connection to it is refused (nobody
 * listens on it any more). */
static void remove_if_refused(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (fd >= 0 && strlen(path) < sizeof sa.sun_path) {
        strcpy(sa.sun_path, path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno == ECONNREFUSED)
            unlink(path);
    }
    if (fd >= 0)
        close(fd);
}

/* Ask pid's shim for CK_OP_INFO. 0, or -errno with *why set. */
static int query(int pid, struct ck_ctl_rep *rep, const char **why)
{
    char path[PATH_MAX];
    int fd = ck_ctl_connect(pid, path, sizeof(path), INFO_TIMEOUT_MS);
    if (fd < 0) {
        *why = strerror(-fd);
        return fd;
    }
    int peer = ck_ctl_peer_pid(fd);
    if (peer != pid) {
        close(fd);
        *why = "socket served by another process";
        return -ESRCH;
    }
    struct ck_ctl_req req;
    memset(&req, 0, sizeof(req));
    req.magic = CK_CTL_MAGIC;
    req.op = CK_OP_INFO;
    int r = ck_ctl_send(fd, &req, -1);
    if (r == 0)
        r = ck_ctl_recv(fd, rep, INFO_TIMEOUT_MS);
    close(fd);
    if (r == -EPIPE || r == -ECONNRESET)
        *why = "connection closed without an answer";
    else if (r == -EPROTO)
        *why = "malformed answer (different ckshim versions?)";
    else if (r == -ETIMEDOUT)
        *why = "no answer";
    else if (r < 0)
        *why = strerror(-r);
    else if (rep->status != 0) {
        *why = rep->msg[0] ? rep->msg : "error";
        r = -EIO;
    }
    return r;
}

int cmd_list(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] == '-')
            return ck_usage_error("list", "unknown option '%s'", argv[i]);
        else
            return ck_usage_error("list", "unexpected argument '%s'", argv[i]);
    }
    char dir[PATH_MAX];
    int dr = ck_sock_dir(dir, sizeof(dir));
    ck_sock_dir_warn();
    if (dr < 0) {
        ck_msg("list: %s", dr == -EPERM ? "no safe directory for control sockets (see above)"
                                       : "socket directory name too long");
        return CK_EXIT_FAIL;
    }

    struct entry *ents = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(dir);
    if (!d && errno != ENOENT) {
        ck_msg("list: %s: %s", dir, strerror(errno));
        return CK_EXIT_FAIL;
    }
    uid_t me = getuid();
    for (struct dirent *de; d && (de = readdir(d));) {
        uint64_t ns;
        if (de->d_name[0] == 'c' && strlen(de->d_name) == 9 &&
            strspn(de->d_name + 1, "0123456789abcdef") == 8) {
            /* a call's path (ck_call_path) that a coord killed while it
             * waited left behind: removed once nobody listens on it and
             * it is older than any call's wait (never connected to: a
             * call's coord would take that for the shim) */
            char path[PATH_MAX];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
                st.st_mtime + 60 < time(NULL) && !listener_ino(path))
                unlink(path);
            continue;
        }
        int pid = sock_name_pid(de->d_name, &ns);
        if (pid < 0 && ns) {
            /* its namespace or process is gone: remove the socket if
             * nobody listens on it any more */
            remove_if_refused(dir, de->d_name);
            continue;
        }
        if (pid < 0)
            continue;
        struct ck_procinfo pi;
        int pr = ck_proc_info(pid, &pi);
        if (pr == -ENOENT || (pr == 0 && pi.state == 'Z')) {
            /* Gone: remove its socket if nobody listens on it any more. */
            char path[PATH_MAX];
            int fd = ck_ctl_connect(pid, path, sizeof(path), 1000);
            if (fd >= 0) {
                close(fd);
            } else if ((fd == -ECONNREFUSED || fd == -ENOTSOCK) && !ck_proc_alive(pid)) {
                if (unlink(path) < 0 && errno != ENOENT)
                    ck_msg("list: removing stale %s: %s", path, strerror(errno));
            }
            continue;
        }
        if (pr < 0)
            continue;
        if (me != 0 && pi.ruid != me)
            continue;
        struct ck_ctl_rep rep;
        const char *why = NULL;
        /* a stopped one's shim cannot answer: asking would only wait for
         * the time-out (listed with what /proc says) */
        int stopped = pi.state == 'T' || pi.state == 't';
        int qr = 0;
        int called_tid;
        if (stopped && !listens_here(pid) && ck_call_threads(pid, &called_tid, 1) == 0)
            continue; /* not a process under the shim: a socket left behind */
        if (stopped)
            stopped_rep(pid, &rep);
        else
            qr = query(pid, &rep, &why);
        if (qr == -EPIPE || qr == -ECONNRESET) {
            /* it closed its socket as it was asked: it exec'd (a shell's
             * child becoming its command, whose shim makes a socket of its
             * own a moment later) or it is ending: ask once more */
            usleep(20000);
            qr = query(pid, &rep, &why);
        }
        if (qr < 0) {
            /* ENOENT: it just went away; ECONNREFUSED: a leftover socket
             * whose pid was reused by an unrelated process. One that
             * ended while it was asked (a forking loop's short-lived
             * child closes its socket as it exits) is not listed either. */
            int ended = ck_proc_info(pid, &pi) < 0 || pi.state == 'Z' || pi.state == 'X';
            if (qr != -ENOENT && qr != -ECONNREFUSED && qr != -ENOTSOCK && !ended)
                ck_msg("list: pid %d: %s", pid, why ? why : "no answer");
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct entry *ne = realloc(ents, cap * sizeof(*ents));
            if (!ne) {
                ck_msg("list: out of memory");
                free(ents);
                closedir(d);
                return CK_EXIT_FAIL;
            }
            ents = ne;
        }
        ents[n].pid = pid;
        ents[n].rep = rep;
        ents[n].stopped = stopped;
        n++;
    }
    if (d)
        closedir(d);
    if (n > 1)
        qsort(ents, n, sizeof(*ents), cmp_entry);
    find_trees(ents, n);

    if (json) {
        struct ck_json j;
        ck_json_init(&j, stdout);
        ck_json_open(&j, NULL, '{');
        ck_json_kstr(&j, "socket_dir", dir);
        ck_json_open(&j, "processes", '[');
        for (size_t i = 0; i < n; i++) {
            const struct ck_ctl_rep *r = &ents[i].rep;
            ck_json_open(&j, NULL, '{');
            ck_json_ku64(&j, "pid", (uint64_t)ents[i].pid);
            ck_json_kbool(&j, "stopped", ents[i].stopped);
            if (!ents[i].stopped) {
                /* (a stopped one's shim was not asked) */
                ck_json_ku64(&j, "pid_seen", r->orig_pid);
                ck_json_ku64(&j, "generation", r->generation);
                ck_json_kstrn(&j, "app_id", r->app_id, sizeof(r->app_id));
                ck_json_ku64(&j, "started_ns", r->started_ns);
            }
            ck_json_ku64(&j, "threads", r->nthreads);
            ck_json_kstrn(&j, "exe", r->exe, sizeof(r->exe));
            ck_json_ku64(&j, "parent", (uint64_t)ents[i].ppid);
            ck_json_ku64(&j, "tree_root", (uint64_t)ents[i].root);
            if (ents[i].root == ents[i].pid)
                ck_json_ku64(&j, "tree_members", (uint64_t)ents[i].members);
            ck_json_close(&j, '}');
        }
        ck_json_close(&j, ']');
        ck_supervise_list(stdout, &j, dir);
        ck_json_close(&j, '}');
        ck_json_end(&j);
    } else if (n == 0) {
        printf("no processes run under the shim (start one with: coord run -- PROG ARGS)\n");
        ck_supervise_list(stdout, NULL, dir);
    } else {
        printf("%-8s %-8s %7s %4s  %-10s %-24s %s\n", "PID", "PID-SEEN", "THREADS", "GEN",
               "TREE", "APP-ID", "EXE");
        for (size_t i = 0; i < n; i++) {
            const struct ck_ctl_rep *r = &ents[i].rep;
            char tree[32];
            tree_label(ents, n, i, tree, sizeof tree);
            if (ents[i].stopped) {
                printf("%-8d %-8s %7u %4s  %-10s %-24s %s\n", ents[i].pid, "-", r->nthreads,
                       "-", tree, "(stopped)", r->exe[0] ? r->exe : "-");
                continue;
            }
            printf("%-8d %-8u %7u %4u  %-10s %-24s %s\n", ents[i].pid, r->orig_pid,
                   r->nthreads, r->generation, tree, r->app_id[0] ? r->app_id : "-",
                   r->exe[0] ? r->exe : "-");
        }
        ck_supervise_list(stdout, NULL, dir);
    }
    free(ents);
    return CK_EXIT_OK;
}
