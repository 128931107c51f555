/* tree.c - the process tree below a checkpointed process.
 *
 * coord checkpoint PID looks at every descendant of PID before it asks
 * any shim for anything: a descendant that is not running under the shim
 * (it exec'd a static binary, or dropped LD_PRELOAD), belongs to another
 * user, or has exited without being waited for, could not be part of one
 * consistent image, so the checkpoint is refused naming each of them and
 * every process goes on untouched (docs/DESIGN.md, "Process trees"). */
#include <dirent.h>
#include <sodium.h>
#include <stddef.h>
#include <errno.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
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

/* (tree.h) */
int ck_pstat_read(int pid, struct ck_pstat *ps)
{
    char path[64], st[2048];
    memset(ps, 0, sizeof *ps);
    ps->exit_code = -1;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    /* (the name, field 2, may hold spaces and parentheses: the fields
     * start after its last ')') */
    char *p = ck_read_file(path, st, sizeof st) < 0 ? NULL : strrchr(st, ')');
    if (!p || p[1] != ' ' || !p[2])
        return -1;
    p += 2;
    ps->state = *p;
    for (int field = 3; p && *p; field++) {
        switch (field) {
        case 4: ps->ppid = strtol(p, NULL, 10); break;
        case 5: ps->pgrp = strtol(p, NULL, 10); break;
        case 6: ps->sid = strtol(p, NULL, 10); break;
        case 7: ps->tty = strtol(p, NULL, 10); break;
        case 8: ps->tpgid = strtol(p, NULL, 10); break;
        case 20: ps->threads = strtol(p, NULL, 10); break;
        case 22: ps->start = strtoull(p, NULL, 10); break;
        case 52: ps->exit_code = atoi(p); break;
        }
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return 0;
}

/* The parent of pid now, or 0. */
static int stat_ppid(int pid)
{
    struct ck_pstat ps;
    return ck_pstat_read(pid, &ps) < 0 ? 0 : (int)ps.ppid;
}

int ck_stat_exit_code(int pid, const char *states)
{
    struct ck_pstat ps;
    if (ck_pstat_read(pid, &ps) < 0 || !ps.state || !strchr(states, ps.state))
        return -1;
    return ps.exit_code;
}

/* The descendants of t's entries from index from on, breadth first
 * (parents always come before their children), with their state. */
static int expand(struct ck_tree *t, int from)
{
    for (int i = from; i < t->n; i++) {
        int r = add_children(t, i);
        if (r < 0)
            return r;
        struct ck_pstat ps;
        t->m[i].status = -1;
        t->m[i].stopsig = 0;
        if (ck_pstat_read(t->m[i].pid, &ps) < 0)
            continue;
        /* (field 52: a zombie's wait status, a stopped one's signal; the
         * root is never taken as a zombie: checkpoint.c refuses one) */
        if (ps.state == 'Z' && ps.exit_code >= 0 && i > 0) {
            t->m[i].status = ps.exit_code;
            t->m[i].zombie = 1;
        } else if (ps.state == 'T' && ps.exit_code >= 0) {
            /* 0: stopped, and its parent has had the report (waitpid
             * with WUNTRACED clears the code): which signal it was is
             * gone; stopped again with SIGSTOP (docs/DESIGN.md) */
            t->m[i].stopsig = ps.exit_code ? ps.exit_code : SIGSTOP;
        }
    }
    return 0;
}

int ck_tree_discover(int pid, struct ck_tree *t)
{
    memset(t, 0, sizeof *t);
    t->m[0].pid = pid;
    t->m[0].parent = -1;
    t->n = 1;
    int r = expand(t, 0);
    /* then those orphaned inside it, and theirs, until none is left */
    for (int from = t->n; r == 0; from = t->n) {
        r = ck_tree_adopt(t);
        if (r <= 0)
            break;
        r = expand(t, from);
    }
    return r < 0 ? r : 0;
}

void ck_tree_describe(int pid, char *out, size_t len)
{
    char path[64], cmd[96];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *f = fopen(path, "re");
    size_t n = f ? fread(cmd, 1, sizeof cmd - 1, f) : 0;
    if (f)
        fclose(f);
    int cut = n >= sizeof cmd - 1;
    /* arguments joined by one space: a title written over them (nginx,
     * postgres) is padded with NULs; control characters shown as '?' */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)cmd[i];
        if (!ch) {
            if (k && cmd[k - 1] != ' ')
                cmd[k++] = ' ';
            continue;
        }
        cmd[k++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    while (k && cmd[k - 1] == ' ')
        k--;
    cmd[k] = 0;
    n = k;
    if (cut)
        snprintf(cmd + (k > sizeof cmd - 5 ? sizeof cmd - 5 : k), 5, "...");
    if (n == 0) {
        /* Zombies have no command line: their name. */
        snprintf(path, sizeof path, "/proc/%d/comm", pid);
        int c = ck_read_file(path, cmd, sizeof cmd);
        if (c > 0 && cmd[c - 1] == '\n')
            cmd[--c] = 0;
        if (c <= 0)
            snprintf(cmd, sizeof cmd, "?");
    }
    snprintf(out, len, "%d (%s)", pid, cmd);
}

/* Does pid serve a control socket of its own (the shim runs in it)? A
 * shim that is called (common/ctlproto.h, CK_CALL_COMM) is told by its
 * thread and the signal it catches, without a call. */
static int under_shim(int pid)
{
    int tid;
    if (ck_call_threads(pid, &tid, 1) > 0 && ck_shim_signal(pid) > 0)
        return 1;
    char sock[4096];
    int fd = ck_ctl_connect(pid, sock, sizeof sock, 2000);
    if (fd < 0)
        return 0;
    int peer = ck_ctl_peer_pid(fd);
    close(fd);
    return peer == pid;
}

/* Is the shim loaded in pid (libshim in its maps), whatever its socket? */
static int shim_mapped(int pid)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, "/libshim") != NULL;
    if (f)
        fclose(f);
    return found;
}

/* A process that is about to run the shim: just forked (its atfork
 * handler makes its socket) or exec'd (the loader has not run the shim's
 * constructor yet), with the shim in LD_PRELOAD: given up to 2 s, all of
 * them together (hundreds of raw clones without a shim are refused in
 * 2 s, not 2 s each). 1 once
 * it serves its socket, -1 if it ended meanwhile (a shell's short
 * command: not part of the tree any more), 0 if it does not. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t starting_until; /* ck_tree_check's one budget for all of them */

static int shim_starting(int pid)
{
    char path[64], env[65536];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    int len = ck_read_file(path, env, sizeof env), preload = 0;
    for (int o = 0; len > 0 && o < len; o += (int)strlen(env + o) + 1)
        preload |= !strncmp(env + o, "LD_PRELOAD=", 11) && strstr(env + o, "libshim") != NULL;
    /* (no environment to read: between the two halves of an exec, or
     * ending: wait and see too) */
    preload |= len <= 0;
    for (int w = 0; w < 1 || (preload && now_ms() < starting_until); w++) {
        /* (one that is ending has closed its socket, and soon shows no
         * environment: it is gone a moment later) */
        struct ck_procinfo pi;
        if (ck_proc_info(pid, &pi) < 0 || pi.state == 'Z' || pi.state == 'X')
            return -1;
        if (under_shim(pid))
            return 1;
        usleep(10000);
    }
    return 0;
}

int ck_shim_coming(int pid, int ms)
{
    starting_until = now_ms() + ms;
    return shim_starting(pid);
}

/* Is pid waiting for a child it made with vfork (which runs in its
 * memory until it execs or exits)? */
static int vforked(int pid)
{
    char path[64], w[64];
    snprintf(path, sizeof path, "/proc/%d/wchan", pid);
    /* wait_for_vfork_done, inlined into kernel_clone on some kernels */
    return ck_read_file(path, w, sizeof w) > 0 &&
           (strstr(w, "vfork") != NULL || !strcmp(w, "kernel_clone"));
}

int ck_tree_root_under_shim(const struct ck_tree *t)
{
    int pid = t->m[0].pid;
    return t->m[0].stopsig || under_shim(pid) || shim_starting(pid) != 0;
}

/* Whether processes a and b have one descriptor table: kcmp says so of
 * two that have none too (ended, or ending: a process drops its table
 * early in its exit, before it is a zombie), so each must still hold a
 * descriptor after it (asked after: one ending meanwhile is not taken for
 * a sharer; the tree is listed again then). Every process under the shim
 * holds one (its control socket). make -j's children ending at once were
 * refused as sharing a table. */
static int has_table(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    struct dirent *e;
    int any = 0;
    while (d && !any && (e = readdir(d)) != NULL)
        any = e->d_name[0] >= '0' && e->d_name[0] <= '9';
    if (d)
        closedir(d);
    return any;
}

static int same_table(int a, int b)
{
    return syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0 && has_table(a) && has_table(b);
}

int ck_tree_shares_table(const struct ck_tree *t, int i)
{
    const struct ck_tree_member *m = &t->m[i];
    return i > 0 && !m->orphan && !m->zombie && same_table(m->pid, t->m[m->parent].pid);
}

/* Processes a and b are in one process group and session now. */
static int same_group(int a, int b)
{
    struct ck_pstat x, y;
    return ck_pstat_read(a, &x) == 0 && ck_pstat_read(b, &y) == 0 && x.pgrp == y.pgrp &&
           x.sid == y.sid;
}

/* Descriptor tables, ordered by kcmp (qsort's comparator takes no
 * context: the pids to compare are the tree's, by index). */
static const struct ck_tree *cmp_tree;

static int table_cmp(const void *a, const void *b)
{
    int x = cmp_tree->m[*(const int *)a].pid, y = cmp_tree->m[*(const int *)b].pid;
    long r = syscall(SYS_kcmp, x, y, KCMP_FILES, 0, 0);
    return r == 1 ? -1 : r == 2 ? 1 : r == 0 ? 0 : (x > y) - (x < y);
}

/* A restore makes a shared descriptor table again only between a parent
 * and its child (ck_tree_shares_table): refused when processes of the
 * tree share one otherwise (a clone with CLONE_FILES | CLONE_PARENT, a
 * sharer whose sharing parent exited), or the root shares its parent's,
 * outside the tree. Sorted by kcmp: n log n comparisons. Returns the
 * number of reasons added after the earlier ones (bad of them). */
static int tables_check(const struct ck_tree *t, char *err, size_t errlen, int bad)
{
    int added = 0;
    size_t used = 0;
    int ppid = stat_ppid(t->m[0].pid);
    if (ppid > 1 && same_table(t->m[0].pid, ppid)) {
        used += (size_t)snprintf(err, errlen, "%sthe root %d shares its descriptor table with "
                                 "its parent %d (clone with CLONE_FILES), outside the tree: "
                                 "checkpoint the tree from %d instead", bad ? "; " : "",
                                 t->m[0].pid, ppid, ppid);
        added++;
    }
    int *ix = malloc((size_t)t->n * sizeof *ix), k = 0;
    if (!ix)
        return added;
    for (int i = 0; i < t->n; i++)
        if (!t->m[i].zombie)
            ix[k++] = i;
    cmp_tree = t;
    qsort(ix, (size_t)k, sizeof *ix, table_cmp);
    /* each group of one table: every member but one (the lowest index,
     * its top) shares its parent's */
    for (int a = 0, b; a < k; a = b) {
        int top = ix[a];
        for (b = a + 1; b < k && table_cmp(&ix[a], &ix[b]) == 0; b++)
            if (ix[b] < top)
                top = ix[b];
        for (int c = a; b - a > 1 && c < b; c++) {
            int i = ix[c];
            if (i == top || ck_tree_shares_table(t, i) || !same_table(t->m[i].pid, t->m[top].pid))
                continue;
            if (used < errlen)
                used += (size_t)snprintf(err + used, errlen - used,
                                         "%sprocess %d shares its descriptor table (clone with "
                                         "CLONE_FILES) with process %d of the tree, which is not "
                                         "its parent: ckshim makes a shared table again only "
                                         "from a parent to its child", bad + added ? "; " : "",
                                         t->m[i].pid, t->m[top].pid);
            added++;
        }
    }
    free(ix);
    return added;
}

int ck_tree_check(const struct ck_tree *t, char *err, size_t errlen)
{
    starting_until = now_ms() + 2000;
    size_t used = 0;
    int bad = 0;
    uid_t me = getuid();
    err[0] = 0;
    for (int i = 1; i < t->n; i++) {
        const struct ck_tree_member *m = &t->m[i];
        struct ck_procinfo pi;
        if (ck_proc_info(m->pid, &pi) < 0)
            continue; /* gone meanwhile: not part of the tree any more */
        char who[160], why[520], cred[400];
        int ttid = 0;
        ck_tree_describe(m->pid, who, sizeof who);
        int ppid = t->m[m->parent].pid;
        if (m->orphan)
            ppid = stat_ppid(m->pid); /* its adopter now */
        if (m->zombie) {
            continue; /* its exit status is carried over (restore_tree) */
        } else if (pi.state == 'Z' || pi.state == 'X') {
            continue; /* exited since it was listed: the tree is taken again (checkpoint.c) */
        } else if (me != 0 && (pi.ruid != me || pi.euid != me)) {
            char user[64];
            ck_user_name(user, sizeof user, pi.ruid != me ? pi.ruid : pi.euid);
            snprintf(why, sizeof why, "a child of %d, belongs to user %s", ppid, user);
        } else if (pi.state == 't' || pi.tracer > 0 || ck_thread_tracer(m->pid, &ttid) > 0) {
            snprintf(why, sizeof why, "a child of %d, is traced by process %d (a debugger or "
                     "strace: the checkpoint signal would stop at it); detach it first", ppid,
                     pi.tracer > 0 ? (int)pi.tracer : ck_thread_tracer(m->pid, &ttid));
        } else if (ck_cred_differs(m->pid, cred, sizeof cred)) {
            snprintf(why, sizeof why, "a child of %d, %s", ppid, cred);
        } else if (pi.state == 'T' && !ck_stop_signal((uint32_t)m->stopsig)) {
            snprintf(why, sizeof why, "a child of %d, is stopped by a signal ckshim cannot tell "
                     "(continue it: kill -CONT %d)", ppid, m->pid);
        } else if (ck_tree_shares_table(t, i) &&
                   !(m->stopsig || under_shim(m->pid) || shim_starting(m->pid) != 0)) {
            /* clone(CLONE_FILES) by a raw system call: the shim's clone
             * never ran, so the child has no shim of its own */
            snprintf(why, sizeof why, "a child of %d, shares its descriptor table with it "
                     "(CLONE_FILES) and runs no shim of its own (made by a raw clone system "
                     "call, by clone sharing memory too (CLONE_VM), or by clone in a process "
                     "with threads of its own)", ppid);
        } else if (ck_tree_shares_table(t, i) && !same_group(m->pid, ppid)) {
            snprintf(why, sizeof why, "a child of %d, shares its descriptor table with it "
                     "(CLONE_FILES) but is in another process group or session, which ckshim "
                     "cannot make again for such a child", ppid);
        } else if (m->stopsig || under_shim(m->pid) || shim_starting(m->pid) != 0) {
            /* it runs the shim (asked once: one that execs or ends a
             * moment later is found by tree_checkpoint, which takes the
             * tree again), it runs it now or it ended (taken again); a
             * stopped one may have stopped before its shim made its
             * socket: tree_checkpoint continues it and asks then */
            continue;
        } else if (ck_proc_info(m->pid, &pi) < 0 || pi.state == 'Z' || pi.state == 'X') {
            continue; /* it ended as its wait ran out: taken again */
        } else if (vforked(ppid)) {
            snprintf(why, sizeof why, "a child of %d made by vfork that has not exec'd yet (it "
                     "runs in its parent's memory, which waits for it): ckshim cannot checkpoint "
                     "it", ppid);
        } else if (shim_mapped(m->pid)) {
            char dir[200] = "?";
            ck_sock_dir(dir, sizeof dir);
            snprintf(why, sizeof why, "a child of %d, runs the shim but serves no control "
                     "socket in %s (checkpointing disabled in it: see its standard error; or "
                     "its socket is in another directory)", ppid, dir);
        } else {
            snprintf(why, sizeof why, "a child of %d, is not running under the shim (no "
                     "control socket: it runs a static binary or without LD_PRELOAD)", ppid);
        }
        if (used < errlen)
            used += (size_t)snprintf(err + used, errlen - used, "%s%s, %s", bad ? "; " : "",
                                     who, why);
        bad++;
    }
    /* descriptor tables shared other than with a parent */
    bad += tables_check(t, err + strlen(err), errlen - strlen(err), bad);
    /* process groups and sessions of the tree (treegroups.c) */
    bad += ck_tree_groups_check(t, err, errlen);
    /* memory shared with a process outside (treegroups.c) */
    return bad + ck_tree_shm_check(t, err, errlen);
}

_Static_assert(sizeof(struct ck_tree_entry) == 48 &&
                   offsetof(struct ck_tree_entry, ctty) == CK_TREE_ENTRY_V2,
               "tree entries: version 3 adds ctty and fg_pgid to version 2's 40 bytes");

/* Bytes of the tree header of a version with n entries, ns shares and its
 * checksum. */
static size_t entry_bytes(uint32_t version)
{
    return version >= 3 ? sizeof(struct ck_tree_entry)
           : version == 2 ? CK_TREE_ENTRY_V2 : CK_TREE_ENTRY_V1;
}

static size_t hdr_bytes(uint32_t version, uint32_t n, uint64_t ns)
{
    return sizeof(struct ck_tree_hdr) + n * entry_bytes(version) +
           (version >= 2 ? sizeof(struct ck_tree_sharehdr) + ns * sizeof(struct ck_tree_share)
                         : 0) +
           sizeof(uint64_t);
}

static uint64_t first_offset(uint32_t version, uint32_t n, uint64_t ns)
{
    return (hdr_bytes(version, n, ns) + 4095) & ~(uint64_t)4095;
}

uint64_t ck_tree_first_offset(uint32_t n, uint64_t nshares)
{
    return first_offset(CK_TREE_VERSION, n, nshares);
}

/* The header, entries (version 1: without pgid and sid) and (version 2)
 * share table as they are on disk, without the checksum: malloc'd, *len
 * bytes. */
static uint8_t *hdr_image(const struct ck_tree_hdr *h, const struct ck_tree_entry *e,
                          const struct ck_tree_sharetab *st, size_t *len)
{
    uint64_t ns = h->version >= 2 && st ? st->n : 0;
    *len = hdr_bytes(h->version, h->nprocs, ns) - sizeof(uint64_t);
    uint8_t *buf = calloc(1, *len + sizeof(uint64_t));
    if (!buf)
        return NULL;
    memcpy(buf, h, sizeof *h);
    size_t eb = entry_bytes(h->version);
    for (uint32_t i = 0; i < h->nprocs; i++)
        memcpy(buf + sizeof *h + i * eb, &e[i], eb);
    if (h->version >= 2) {
        struct ck_tree_sharehdr sh = {.nshares = ns, .flags = st ? st->flags : 0};
        uint8_t *p = buf + sizeof *h + h->nprocs * eb;
        memcpy(p, &sh, sizeof sh);
        if (ns)
            memcpy(p + sizeof sh, st->s, ns * sizeof *st->s);
    }
    return buf;
}

/* The keyed MAC of a tree header (its MAC field zero), its entries, its
 * share table and its streams' MACs (CK_DIGEST_BYTES per entry). */
static void tree_mac(const struct ck_tree_hdr *h, const struct ck_tree_entry *e,
                     const struct ck_tree_sharetab *st, const uint8_t *macs,
                     const struct ck_key *k, uint8_t out[CK_DIGEST_BYTES])
{
    size_t len;
    uint8_t *img = hdr_image(h, e, st, &len);
    uint8_t *buf = img ? realloc(img, len + h->nprocs * CK_DIGEST_BYTES) : NULL;
    if (!buf) {
        free(img);
        memset(out, 0, CK_DIGEST_BYTES); /* matches no header: refused */
        return;
    }
    memset(buf + offsetof(struct ck_tree_hdr, mac), 0, sizeof h->mac);
    memcpy(buf + len, macs, h->nprocs * CK_DIGEST_BYTES);
    ck_auth_mac_bytes(k, buf, len + h->nprocs * CK_DIGEST_BYTES, out);
    free(buf);
}

int ck_tree_check_mac(const struct ck_tree_hdr *h, const struct ck_tree_entry *e,
                      const struct ck_tree_sharetab *st, const uint8_t *macs,
                      const struct ck_key *k, char *err, size_t errlen)
{
    static const uint8_t zero[sizeof h->mac];
    uint8_t mac[CK_DIGEST_BYTES];
    if (!memcmp(h->mac, zero, sizeof zero)) {
        snprintf(err, errlen, "the process tree image is not authenticated (taken without a "
                 "key), but a key was given: refusing it");
        return -1;
    }
    tree_mac(h, e, st, macs, k, mac);
    if (sodium_memcmp(mac, h->mac, sizeof mac) != 0) {
        snprintf(err, errlen, "the process tree image was modified or taken with another key "
                 "(its tree header and streams do not match its MAC)");
        return -1;
    }
    return 0;
}

int ck_tree_write_hdr(int fd, const struct ck_tree_hdr *h, const struct ck_tree_entry *e,
                      const struct ck_tree_sharetab *st, const struct ck_key *k,
                      const uint8_t *macs)
{
    size_t body;
    uint8_t *buf = hdr_image(h, e, st, &body);
    if (!buf)
        return -ENOMEM;
    if (k)
        tree_mac(h, e, st, macs, k, buf + offsetof(struct ck_tree_hdr, mac));
    uint64_t sum = ck_xxh64(buf, body, 0);
    memcpy(buf + body, &sum, sizeof sum);
    size_t len = body + sizeof sum;
    ssize_t w = pwrite(fd, buf, len, 0);
    int err = errno;
    free(buf);
    if (w != (ssize_t)len)
        return w < 0 ? -err : -EIO;
    return 0;
}

/* Every entry of a tree header against the rules the checkpoint writes
 * them by: returns the index of the first entry that breaks one (why
 * says which), or h->nprocs if all keep them. What restore and inspect
 * then believe (a parent's index, a stream's place, a pid) is safe to
 * use: no index outside the table, no stream outside the file. */
static uint32_t check_entries(const struct ck_tree_hdr *h, const struct ck_tree_entry *e,
                              uint64_t nshares, uint64_t file_size, char *why, size_t len)
{
    uint64_t next = first_offset(h->version, h->nprocs, nshares);
    for (uint32_t i = 0; i < h->nprocs; i++) {
        const struct ck_tree_entry *x = &e[i];
        int zombie = (x->flags & CK_TREE_ZOMBIE) != 0;
        uint32_t stopsig = (x->flags >> 8) & 0xff;
        int orphan = (x->flags & CK_TREE_ORPHAN) != 0;
        if (x->flags & ~(uint32_t)(CK_TREE_ZOMBIE | CK_TREE_STOPPED | CK_TREE_ORPHAN |
                                   CK_TREE_FILES | 0xff00))
            snprintf(why, len, "has unknown flags %#x", x->flags);
        else if ((x->flags & CK_TREE_FILES) && (zombie || orphan || i == 0))
            snprintf(why, len, "has flags %#x (a process sharing its parent's descriptor table "
                     "is neither the root, a zombie nor an orphan)", x->flags);
        else if (orphan && (zombie || i == 0))
            snprintf(why, len, "has flags %#x (an orphan is neither the root nor a zombie)",
                     x->flags);
        else if (!!(x->flags & CK_TREE_STOPPED) != (stopsig != 0) ||
                 (stopsig && (zombie || !ck_stop_signal(stopsig))))
            snprintf(why, len, "has flags %#x (a stopped process's signal)", x->flags);
        else if (x->ctty < 0 || x->fg_pgid < 0 || (x->ctty && zombie))
            snprintf(why, len, "has controlling terminal %d, foreground group %d%s", x->ctty,
                     x->fg_pgid, zombie ? " (a zombie)" : "");
        else if (x->vpid <= 0 || x->real_pid <= 0)
            snprintf(why, len, "has pid %d (pid %d at checkpoint)", x->vpid, x->real_pid);
        else if (i == 0 && (x->parent != -1 || zombie))
            snprintf(why, len, "is the root but %s", zombie ? "a zombie" : "has a parent");
        else if (i > 0 && (x->parent < 0 || x->parent >= (int32_t)i))
            snprintf(why, len, "has parent %d (a parent comes before its children)", x->parent);
        else if (i > 0 && orphan && (e[x->parent].flags & CK_TREE_ZOMBIE) &&
                 (h->version < 2 || x->sid != e[x->parent].real_pid))
            snprintf(why, len, "is an orphan made by entry %d, a zombie that did not lead "
                     "its session", x->parent);
        else if (i > 0 && !orphan && (e[x->parent].flags & CK_TREE_ZOMBIE))
            snprintf(why, len, "is a child of entry %d, which exited (a zombie has no "
                     "children)", x->parent);
        else if (zombie && (x->offset != 0 || x->length > 0xffff))
            snprintf(why, len, "is a zombie with wait status %#llx",
                     (unsigned long long)x->length);
        else if (!zombie && (x->offset < next || (x->offset & 4095) ||
                             x->length < sizeof(struct ck_header) || x->offset > file_size ||
                             x->length > file_size - x->offset))
            snprintf(why, len, "has its stream at %llu, %llu bytes: %s",
                     (unsigned long long)x->offset, (unsigned long long)x->length,
                     x->offset < next ? "before the end of the one before it"
                     : (x->offset & 4095) ? "not at a page boundary"
                     : x->length < sizeof(struct ck_header) ? "too short"
                     : "outside the file");
        else {
            uint32_t dup = 0;
            while (dup < i && e[dup].vpid != x->vpid)
                dup++;
            if (dup == i) {
                if (!zombie)
                    next = x->offset + x->length;
                continue;
            }
            snprintf(why, len, "has pid %d, as entry %u has", x->vpid, dup);
        }
        return i;
    }
    return h->nprocs;
}

int ck_tree_check_stream(const struct ck_tree_hdr *h, const struct ck_tree_entry *e,
                         uint32_t i, const struct ck_header *sh, uint64_t end, char *err,
                         size_t errlen)
{
    if (sh->orig_pid != (uint32_t)e[i].vpid)
        snprintf(err, errlen, "process tree image: entry %u says pid %d, its stream pid %u "
                 "(a damaged or forged header)", i, e[i].vpid, sh->orig_pid);
    else if (sh->counter_stamp != h->counter_stamp)
        snprintf(err, errlen, "process tree image: the stream of process %d has counter stamp "
                 "%llu, the tree %llu (streams of different checkpoints)", e[i].vpid,
                 (unsigned long long)sh->counter_stamp, (unsigned long long)h->counter_stamp);
    else if (end > e[i].offset + e[i].length)
        snprintf(err, errlen, "process tree image: the stream of process %d runs past its "
                 "%llu bytes (a damaged or forged header)", e[i].vpid,
                 (unsigned long long)e[i].length);
    else
        return 0;
    return -1;
}

int ck_tree_read_hdr(int fd, struct ck_tree_hdr *h, struct ck_tree_entry **ret,
                     struct ck_tree_sharetab *st, char *err, size_t errlen)
{
    *ret = NULL;
    if (st)
        memset(st, 0, sizeof *st);
    ssize_t n = pread(fd, h, sizeof *h, 0);
    if (n != (ssize_t)sizeof *h || memcmp(h->magic, CK_TREE_MAGIC, CK_MAGIC_LEN) != 0)
        return 0; /* not a tree image */
    if (h->version < 1 || h->version > CK_TREE_VERSION) {
        snprintf(err, errlen, "process tree image version %u; this coord reads versions 1 "
                 "to %u", h->version, CK_TREE_VERSION);
        return -EPROTONOSUPPORT;
    }
    if (h->nprocs < 1 || h->nprocs > CK_TREE_MAXPROCS) {
        snprintf(err, errlen, "process tree image: %u processes (corrupted header)", h->nprocs);
        return -EINVAL;
    }
    struct ck_tree_sharehdr sh = {0};
    size_t eb = entry_bytes(h->version);
    off_t sho = (off_t)(sizeof *h + h->nprocs * eb);
    if (h->version >= 2 &&
        (pread(fd, &sh, sizeof sh, sho) != (ssize_t)sizeof sh || sh.nshares > CK_TREE_MAXSHARES ||
         (sh.flags & ~(uint64_t)CK_TREE_HDR_SHARES))) {
        snprintf(err, errlen, "process tree image: the share table is truncated or corrupted");
        return -EINVAL;
    }
    size_t len = hdr_bytes(h->version, h->nprocs, sh.nshares);
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
    struct ck_tree_entry *e = malloc(h->nprocs * sizeof *e);
    struct ck_tree_share *s = sh.nshares ? malloc(sh.nshares * sizeof *s) : NULL;
    if (!e || (sh.nshares && !s)) {
        free(buf);
        free(e);
        free(s);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < h->nprocs; i++) {
        memset(&e[i], 0, sizeof e[i]);
        memcpy(&e[i], buf + sizeof *h + i * eb, eb);
    }
    if (h->version < 2) {
        /* (taken before process groups and sessions were restored: every
         * process is restored in the root's, as then; the numbers only
         * have to be one group and one session, the root's) */
        for (uint32_t i = 0; i < h->nprocs; i++)
            e[i].pgid = e[i].sid = e[0].real_pid;
    }
    if (sh.nshares)
        memcpy(s, buf + sho + sizeof sh, sh.nshares * sizeof *s);
    free(buf);
    struct stat fst;
    if (fstat(fd, &fst) < 0) {
        int er = errno;
        free(e);
        free(s);
        snprintf(err, errlen, "process tree image: %s", strerror(er));
        return -er;
    }
    char why[200];
    uint32_t bad = check_entries(h, e, sh.nshares, (uint64_t)fst.st_size, why, sizeof why);
    if (bad < h->nprocs) {
        free(e);
        free(s);
        snprintf(err, errlen, "process tree image: entry %u %s (a damaged or forged header)",
                 bad, why);
        return -EINVAL;
    }
    *ret = e;
    if (st) {
        st->n = sh.nshares;
        st->flags = sh.flags;
        st->s = s;
    } else {
        free(s);
    }
    return 1;
}

int ck_tree_check_shares(const struct ck_tree_hdr *h, const struct ck_tree_sharetab *st,
                         char *err, size_t errlen)
{
    for (uint64_t k = 0; k < st->n; k++)
        if (st->s[k].proc < 0 || st->s[k].proc >= (int32_t)h->nprocs || st->s[k].fd < 0) {
            snprintf(err, errlen, "process tree image: shared descriptor %llu is "
                     "inconsistent (a damaged or forged header)", (unsigned long long)k);
            return -1;
        }
    return 0;
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

/* kcmp(KCMP_FILE) of two listed descriptors: 0 one description, 1 or 2
 * their order, -1 (denied set when kcmp is not allowed) unknown. */
struct kcmp_ctx {
    const struct ck_tree *t;
    int denied;
};

static long kcmp_files(struct kcmp_ctx *c, const struct fdlink *x, const struct fdlink *y)
{
    long r = syscall(SYS_kcmp, c->t->m[x->proc].pid, c->t->m[y->proc].pid, KCMP_FILE, x->fd,
                     y->fd);
    if (r < 0 && (errno == EPERM || errno == EACCES || errno == ENOSYS))
        c->denied = errno;
    return r;
}

static int kcmp_order(const void *a, const void *b, void *arg)
{
    const struct fdlink *x = a, *y = b;
    long r = kcmp_files(arg, x, y);
    if (r == 0 || r == 1 || r == 2)
        return r == 0 ? 0 : r == 1 ? -1 : 1;
    /* not comparable (denied: the table is dropped; a descriptor gone) */
    return x->proc != y->proc ? x->proc - y->proc : x->fd - y->fd;
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
    /* Within a run of the same link text, kcmp orders the descriptions
     * (a total order of the kernel's file pointers): sorted by it, the
     * descriptors of one description are neighbours, and each joins the
     * group of the one before it if kcmp calls them the same. This runs
     * while the whole tree is parked: k descriptors of one name cost
     * O(k log k) calls, not one per pair. */
    size_t nsh = 0;
    struct kcmp_ctx kc = {.t = t, .denied = 0};
    for (size_t a = 0, end; a < n; a = end) {
        for (end = a + 1; end < n && !strcmp(v[end].link, v[a].link); end++)
            ;
        if (end - a > 1)
            qsort_r(v + a, end - a, sizeof *v, kcmp_order, &kc);
        for (size_t b = a + 1; b < end; b++)
            if (kcmp_files(&kc, &v[b - 1], &v[b]) == 0) {
                if (v[b - 1].group < 0)
                    v[b - 1].group = (int)(b - 1);
                v[b].group = v[b - 1].group;
            }
    }
    int denied = kc.denied;
    if (denied && n) {
        snprintf(err, errlen, "cannot tell which descriptors the processes share (kcmp: %s)",
                 strerror(denied));
        free(v);
        return -1;
    }
    /* keep the groups that span two processes (a group's members are
     * neighbours, from its first on) */
    for (size_t a = 0, end; a < n; a = end) {
        int g = v[a].group, multi = 0;
        for (end = a + 1; g >= 0 && end < n && v[end].group == g; end++)
            multi |= v[end].proc != v[a].proc;
        for (size_t b = a; b < end; b++)
            if (!multi)
                v[b].group = -1;
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
