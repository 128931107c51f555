/* tree.c - the process tree below a checkpointed process.
 *
 * coord checkpoint PID looks at every descendant of PID before it asks
 * any shim for anything: a descendant that is not running under the shim
 * (it exec'd a static binary, or dropped LD_PRELOAD), belongs to another
 * user, or has exited without being waited for, could not be part of one
 * consistent image, so the checkpoint is refused naming each of them and
 * every process goes on untouched (docs/DESIGN.md, "Process trees"). */
#include <dirent.h>
#include <errno.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "coord.h"
#include "fileid.h"
#include "tree.h"
#include "xxh64.h"

/* Append the children of every thread of pid (/proc/PID/task/TID/children)
 * to t, each with parent = index of pid. */
static int add_children(struct ck_tree *t, int parent)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", t->m[parent].pid);
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char cp[96], list[8192];
        snprintf(cp, sizeof cp, "/proc/%d/task/%s/children", t->m[parent].pid, e->d_name);
        FILE *f = fopen(cp, "re");
        if (!f)
            continue;
        size_t n = fread(list, 1, sizeof list - 1, f);
        fclose(f);
        list[n] = 0;
        for (char *p = list, *end; *p; p = end) {
            long c = strtol(p, &end, 10);
            if (end == p)
                break;
            if (c <= 0)
                continue;
            if (t->n >= CK_TREE_MAX) {
                closedir(d);
                return -E2BIG;
            }
            t->m[t->n].pid = (int)c;
            t->m[t->n].parent = parent;
            t->n++;
        }
    }
    closedir(d);
    return 0;
}

/* /proc/PID/stat into st (NUL-terminated, empty if unreadable). */
static void proc_stat(int pid, char *st, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (ck_read_file(path, st, cap) < 0)
        st[0] = 0;
}

/* A zombie's wait status: field 52 of /proc/PID/stat (exit_code), or -1. */
static int zombie_status(int pid)
{
    char st[2048];
    proc_stat(pid, st, sizeof st);
    char *p = strrchr(st, ')');
    if (!p || p[1] != ' ' || p[2] != 'Z')
        return -1;
    /* fields 3.. follow ") "; exit_code is field 52 */
    p += 2;
    for (int field = 3; field < 52 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p && *p ? atoi(p) : -1;
}

int ck_tree_discover(int pid, struct ck_tree *t)
{
    memset(t, 0, sizeof *t);
    t->m[0].pid = pid;
    t->m[0].parent = -1;
    t->n = 1;
    /* Breadth first: parents always come before their children. */
    for (int i = 0; i < t->n; i++) {
        int r = add_children(t, i);
        if (r < 0)
            return r;
        if (i > 0 && (t->m[i].status = zombie_status(t->m[i].pid)) >= 0)
            t->m[i].zombie = 1;
    }
    return 0;
}

void ck_tree_describe(int pid, char *out, size_t len)
{
    char path[64], cmd[96];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *f = fopen(path, "re");
    size_t n = f ? fread(cmd, 1, sizeof cmd - 1, f) : 0;
    if (f)
        fclose(f);
    cmd[n] = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (!cmd[i])
            cmd[i] = ' ';
    if (n >= sizeof cmd - 1)
        snprintf(cmd + sizeof cmd - 5, 5, "...");
    if (n == 0) {
        /* Zombies have no command line: the name from stat. */
        char st[512];
        proc_stat(pid, st, sizeof st);
        char *lp = strchr(st, '('), *rp = strrchr(st, ')');
        if (lp && rp && rp > lp)
            snprintf(cmd, sizeof cmd, "%.*s", (int)(rp - lp - 1), lp + 1);
        else
            snprintf(cmd, sizeof cmd, "?");
    }
    snprintf(out, len, "%d (%s)", pid, cmd);
}

/* Does pid serve a control socket of its own (the shim runs in it)? */
static int under_shim(int pid)
{
    char sock[4096];
    int fd = ck_ctl_connect(pid, sock, sizeof sock, 2000);
    if (fd < 0)
        return 0;
    int peer = ck_ctl_peer_pid(fd);
    close(fd);
    return peer == pid;
}

/* Process group and session of pid (/proc/PID/stat), 0 if unknown. */
static void pgrp_sid(int pid, long *pgrp, long *sid)
{
    char st[1024];
    *pgrp = *sid = 0;
    proc_stat(pid, st, sizeof st);
    char *rp = strrchr(st, ')');
    if (rp)
        sscanf(rp + 1, " %*c %*d %ld %ld", pgrp, sid);
}

int ck_tree_check(const struct ck_tree *t, char *err, size_t errlen)
{
    long root_pgrp, root_sid;
    pgrp_sid(t->m[0].pid, &root_pgrp, &root_sid);
    size_t used = 0;
    int bad = 0;
    uid_t me = getuid();
    err[0] = 0;
    for (int i = 1; i < t->n; i++) {
        const struct ck_tree_member *m = &t->m[i];
        struct ck_procinfo pi;
        if (ck_proc_info(m->pid, &pi) < 0)
            continue; /* gone meanwhile: not part of the tree any more */
        char who[160], why[200];
        long pg, sid;
        ck_tree_describe(m->pid, who, sizeof who);
        int ppid = t->m[m->parent].pid;
        if (m->zombie) {
            continue; /* its exit status is carried over (restore_tree) */
        } else if (pi.state == 'Z' || pi.state == 'X') {
            snprintf(why, sizeof why, "a child of %d that exited but was not yet waited for "
                     "(its exit status cannot be carried over yet: wait for it first)", ppid);
        } else if (me != 0 && (pi.ruid != me || pi.euid != me)) {
            char user[64];
            ck_user_name(user, sizeof user, pi.ruid != me ? pi.ruid : pi.euid);
            snprintf(why, sizeof why, "a child of %d, belongs to user %s", ppid, user);
        } else if (pi.state == 'T' || pi.state == 't') {
            snprintf(why, sizeof why, "a child of %d, is stopped (continue it: kill -CONT %d)",
                     ppid, m->pid);
        } else if ((pgrp_sid(m->pid, &pg, &sid), pg != root_pgrp || sid != root_sid)) {
            snprintf(why, sizeof why, "a child of %d, is in %s %ld, not %d's %ld (process "
                     "groups and sessions of a tree are not restored yet)", ppid,
                     sid != root_sid ? "session" : "process group", sid != root_sid ? sid : pg,
                     t->m[0].pid, sid != root_sid ? root_sid : root_pgrp);
        } else if (syscall(SYS_kcmp, m->pid, ppid, KCMP_FILES, 0, 0) == 0) {
            /* clone(CLONE_FILES): one descriptor table for two processes,
             * which restore cannot make (and no fork handler ran) */
            snprintf(why, sizeof why, "a child of %d, shares its descriptor table with it "
                     "(clone with CLONE_FILES), which ckshim cannot restore", ppid);
        } else if (!under_shim(m->pid)) {
            snprintf(why, sizeof why, "a child of %d, is not running under the shim (no "
                     "control socket: it runs a static binary or without LD_PRELOAD)", ppid);
        } else {
            continue;
        }
        if (used < errlen)
            used += (size_t)snprintf(err + used, errlen - used, "%s%s, %s", bad ? "; " : "",
                                     who, why);
        bad++;
    }
    return bad;
}

/* Bytes of the tree header with n entries, ns shares and its checksum. */
static size_t hdr_bytes(uint32_t n, uint64_t ns)
{
    return sizeof(struct ck_tree_hdr) + n * sizeof(struct ck_tree_entry) +
           ns * sizeof(struct ck_tree_share) + sizeof(uint64_t);
}

uint64_t ck_tree_first_offset(uint32_t n, uint64_t nshares)
{
    return (hdr_bytes(n, nshares) + 4095) & ~(uint64_t)4095;
}

int ck_tree_write_hdr(int fd, const struct ck_tree_hdr *h, const struct ck_tree_entry *e,
                      const struct ck_tree_share *sh)
{
    size_t len = hdr_bytes(h->nprocs, h->nshares);
    uint8_t *buf = calloc(1, len);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, h, sizeof *h);
    memcpy(buf + sizeof *h, e, h->nprocs * sizeof *e);
    if (h->nshares)
        memcpy(buf + sizeof *h + h->nprocs * sizeof *e, sh, h->nshares * sizeof *sh);
    uint64_t sum = ck_xxh64(buf, len - sizeof sum, 0);
    memcpy(buf + len - sizeof sum, &sum, sizeof sum);
    ssize_t w = pwrite(fd, buf, len, 0);
    int err = errno;
    free(buf);
    if (w != (ssize_t)len)
        return w < 0 ? -err : -EIO;
    return 0;
}

int ck_tree_read_hdr(int fd, struct ck_tree_hdr *h, struct ck_tree_entry **ret,
                     struct ck_tree_share **shares, char *err, size_t errlen)
{
    *ret = NULL;
    if (shares)
        *shares = NULL;
    ssize_t n = pread(fd, h, sizeof *h, 0);
    if (n != (ssize_t)sizeof *h || memcmp(h->magic, CK_TREE_MAGIC, CK_MAGIC_LEN) != 0)
        return 0; /* not a tree image */
    if (h->version != CK_TREE_VERSION && h->version != 1) {
        snprintf(err, errlen, "process tree image version %u; this coord reads versions 1 "
                 "and %u", h->version, CK_TREE_VERSION);
        return -EPROTONOSUPPORT;
    }
    if (h->version == 1)
        h->nshares = h->flags = 0; /* reserved then */
    if (h->nprocs < 1 || h->nprocs > CK_TREE_MAXPROCS || h->nshares > CK_TREE_MAXSHARES) {
        snprintf(err, errlen, "process tree image: %u processes, %llu shared descriptors "
                 "(corrupted header)", h->nprocs, (unsigned long long)h->nshares);
        return -EINVAL;
    }
    size_t len = hdr_bytes(h->nprocs, h->nshares);
    uint8_t *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    uint64_t sum;
    if (pread(fd, buf, len, 0) != (ssize_t)len ||
        (memcpy(&sum, buf + len - sizeof sum, sizeof sum), sum != ck_xxh64(buf, len - sizeof sum, 0))) {
        free(buf);
        snprintf(err, errlen, "process tree image: the header is truncated or corrupted "
                 "(checksum mismatch)");
        return -EINVAL;
    }
    struct ck_tree_share *sh = NULL;
    if (h->nshares) {
        sh = malloc(h->nshares * sizeof *sh);
        if (!sh) {
            free(buf);
            return -ENOMEM;
        }
        memcpy(sh, buf + sizeof *h + h->nprocs * sizeof(struct ck_tree_entry),
               h->nshares * sizeof *sh);
        for (uint64_t k = 0; k < h->nshares; k++)
            if (sh[k].proc < 0 || sh[k].proc >= (int32_t)h->nprocs || sh[k].fd < 0) {
                free(sh);
                free(buf);
                snprintf(err, errlen, "process tree image: shared descriptor %llu is "
                         "inconsistent", (unsigned long long)k);
                return -EINVAL;
            }
    }
    struct ck_tree_entry *e = malloc(h->nprocs * sizeof *e);
    if (!e) {
        free(buf);
        return -ENOMEM;
    }
    memcpy(e, buf + sizeof *h, h->nprocs * sizeof *e);
    free(buf);
    for (uint32_t i = 0; i < h->nprocs; i++)
        if ((i == 0) != (e[i].parent < 0) || e[i].parent >= (int32_t)i ||
            (i == 0 && (e[i].flags & CK_TREE_ZOMBIE)) ||
            (!(e[i].flags & CK_TREE_ZOMBIE) &&
             (e[i].offset < ck_tree_first_offset(h->nprocs, h->nshares) ||
              (e[i].offset & 4095)))) {
            free(e);
            free(sh);
            snprintf(err, errlen, "process tree image: entry %u is inconsistent", i);
            return -EINVAL;
        }
    *ret = e;
    if (shares)
        *shares = sh;
    else
        free(sh);
    return 1;
}

/* ---- descriptors processes share (one open file description) ---- */

struct fdlink {
    int proc, fd;
    char link[80];
    int group;                          /* index of the first member, or -1 */
};

static int link_cmp(const void *a, const void *b)
{
    const struct fdlink *x = a, *y = b;
    int c = strcmp(x->link, y->link);
    return c ? c : x->proc != y->proc ? x->proc - y->proc : x->fd - y->fd;
}

/* The descriptors of process i of t, with their link text, appended to
 * *v (the shim's own among them: restore looks up only the program's). */
static int list_fds(const struct ck_tree *t, int i, struct fdlink **v, size_t *n, size_t *cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", t->m[i].pid);
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 256;
            struct fdlink *nv = realloc(*v, nc * sizeof *nv);
            if (!nv) {
                closedir(d);
                return -ENOMEM;
            }
            *v = nv;
            *cap = nc;
        }
        struct fdlink *l = &(*v)[*n];
        char lp[96];
        snprintf(lp, sizeof lp, "/proc/%d/fd/%s", t->m[i].pid, e->d_name);
        ssize_t k = readlink(lp, l->link, sizeof l->link - 1);
        if (k < 0)
            continue;
        l->link[k] = 0;
        /* terminals become the restoring coord's */
        if (!strncmp(l->link, "/dev/pts/", 9) || !strncmp(l->link, "/dev/tty", 8))
            continue;
        l->proc = i;
        l->fd = atoi(e->d_name);
        l->group = -1;
        (*n)++;
    }
    closedir(d);
    return 0;
}

int ck_tree_shares(const struct ck_tree *t, struct ck_tree_share **out, uint64_t *nout,
                   char *err, size_t errlen)
{
    struct fdlink *v = NULL;
    size_t n = 0, cap = 0;
    *out = NULL;
    *nout = 0;
    for (int i = 0; i < t->n; i++) {
        if (t->m[i].zombie)
            continue;
        int r = list_fds(t, i, &v, &n, &cap);
        if (r < 0) {
            snprintf(err, errlen, "cannot list the descriptors of process %d: %s", t->m[i].pid,
                     strerror(-r));
            free(v);
            return -1;
        }
    }
    if (n)
        qsort(v, n, sizeof *v, link_cmp);
    /* Within a run of the same link text: each descriptor joins the group
     * of the first earlier one kcmp calls the same description. */
    size_t nsh = 0;
    int denied = 0;
    for (size_t a = 0; a < n; a++) {
        for (size_t b = a; b-- > 0 && !strcmp(v[b].link, v[a].link);) {
            long r = syscall(SYS_kcmp, t->m[v[a].proc].pid, t->m[v[b].proc].pid, KCMP_FILE,
                             v[a].fd, v[b].fd);
            if (r < 0 && (errno == EPERM || errno == EACCES || errno == ENOSYS))
                denied = errno;
            if (r == 0) {
                v[a].group = v[b].group >= 0 ? v[b].group : (int)b;
                v[b].group = v[a].group;
                break;
            }
        }
    }
    if (denied && n) {
        snprintf(err, errlen, "cannot tell which descriptors the processes share (kcmp: %s)",
                 strerror(denied));
        free(v);
        return -1;
    }
    /* keep the groups that span two processes */
    for (size_t a = 0; a < n; a++) {
        int g = v[a].group, multi = 0;
        for (size_t b = 0; g >= 0 && b < n && !multi; b++)
            multi = v[b].group == g && v[b].proc != v[a].proc;
        if (!multi)
            v[a].group = -1;
        else
            nsh++;
    }
    if (nsh) {
        struct ck_tree_share *sh = calloc(nsh, sizeof *sh);
        if (!sh) {
            free(v);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        size_t k = 0;
        for (size_t a = 0; a < n; a++)
            if (v[a].group >= 0)
                sh[k++] = (struct ck_tree_share){.proc = v[a].proc, .fd = v[a].fd,
                                                 .group = (uint32_t)v[a].group};
        *out = sh;
        *nout = nsh;
    }
    free(v);
    return 0;
}
