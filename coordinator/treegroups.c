/* treegroups.c - process groups and sessions inside a process tree.
 *
 * Processes of a tree may have their own process groups and sessions (a
 * shell with job control puts every pipeline in a group of its own, a
 * daemon-style child calls setsid). A restore makes them again with the
 * calls a program would use: setsid() and setpgid() in the coord process
 * that becomes each process, before it execs its restorer
 * (docs/DESIGN.md, "Process groups and sessions in a tree"). What a
 * session is cannot be chosen, only inherited at fork or made by setsid,
 * so the order of the forks matters: ck_tree_session_plan works it out,
 * at checkpoint (refusing what cannot be made again, before anything
 * changes) and at restore (the same rules on the pids the tree knows). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "coord.h"
#include "fileid.h"
#include "imgio.h"
#include "tree.h"

/* A session no living process of the tree leads (its leader exited, is a
 * zombie, or is outside: ck_tree_groups_check refuses the last). */
static int session_gone(int n, const int *pid, const int *sid, const char *skip, int root_sid,
                        int s)
{
    if (s == root_sid)
        return 0;
    for (int j = 1; j < n; j++)
        if (!skip[j] && pid[j] == s && sid[j] == s)
            return 0;
    return 1;
}

/* Session leaders other than the root: they call setsid(). A leader may
 * have children it forked before its setsid (still in the session it
 * came from) and after (in its own): such children are forked in two
 * rounds, phase[i] 1 (before its parent's setsid) or 2 (after). need[i]
 * is the session a leader must be forked in for its first-round children
 * (ANY: none).
 *
 * A session whose leader is gone (it exited, or is a zombie of the tree)
 * can hold processes whose parent is in another session: a daemon's
 * grandchild adopted by a subreaper of the tree (tini, dumb-init) after
 * its parent, the session's leader, exited; or a child the leader made
 * with clone(CLONE_PARENT). Such a process (helper[i] 2) is made by a
 * short-lived helper its parent forks: the helper calls setsid and makes
 * it with clone(CLONE_PARENT), so that it is the parent's child in the
 * new session; a zombie that led the session does the same before it
 * ends. The session is made once: every such process of it must have the
 * same parent (the zombie leader's parent), and its orphans (made by the
 * same helper, ck_tree_helpers) need that parent to be the root. A plan
 * without such helpers is tried first (gone_ok 0): a child in such a
 * session may also be forked by a parent born in it, itself made there
 * by an orphan's helper. Returns 0, or -1 with the reason in err. */
static int plan_pass(int n, const int *parent, const int *pid, const int *sid, const char *skip,
                     char *helper, int root_sid, char *phase, char *err, size_t errlen,
                     int gone_ok)
{
    int *need = calloc((size_t)n + 1, sizeof *need);
    int *before = calloc((size_t)n + 1, sizeof *before);
    int *after = calloc((size_t)n + 1, sizeof *after);
    int ret = -1;
    if (!need || !before || !after) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
#define LEADER(i) ((i) > 0 && sid[i] == pid[i])
#define GONE(s) (gone_ok && session_gone(n, pid, sid, skip, root_sid, (s)))
    /* 0 is a session too: one whose leader is outside our pid namespace
     * (a container's, or the login session seen from a namespace) */
    enum { ANY = -1 };
    for (int i = 0; i <= n; i++)
        need[i] = ANY;
    /* Bottom up (children come after their parents): what each leader's
     * children need of the session it is forked in. */
    for (int c = n - 1; c > 0; c--) {
        /* (an orphan made in a session of its helper's: none of its
         * maker's business) */
        if (skip[c] || helper[c])
            continue;
        int p = parent[c];
        if (!LEADER(p))
            continue;
        int want = LEADER(c) ? need[c] : sid[c];
        if (want == ANY || want == pid[p])
            continue; /* forked after its parent's setsid, or anywhere */
        if (!LEADER(c) && GONE(want))
            continue; /* made by its parent's helper */
        if (need[p] != ANY && need[p] != want) {
            snprintf(err, errlen, "process %d has children in two sessions other than its "
                     "own (%d and %d)", pid[p], need[p], want);
            goto out;
        }
        need[p] = want;
    }
    /* Top down: which round forks each process. */
    before[0] = after[0] = root_sid;
    phase[0] = 2;
    for (int i = 1; i < n; i++) {
        int p = parent[i];
        phase[i] = 2;
        if (skip[i])
            continue;
        if (helper[i]) {
            before[i] = sid[i];
            after[i] = LEADER(i) ? pid[i] : sid[i];
            continue;
        }
        int want = LEADER(i) ? need[i] : sid[i];
        if (want != ANY && want != after[p] && want != before[p] && !LEADER(i) && GONE(want)) {
            helper[i] = 2;
            before[i] = after[i] = want;
            continue;
        }
        if (want != ANY && want != after[p]) {
            if (want != before[p]) {
                snprintf(err, errlen, "process %d is in session %d, which it cannot be put in "
                         "again (neither its parent's %d nor the one its parent came from)",
                         pid[i], sid[i], after[p]);
                goto out;
            }
            phase[i] = 1;
        }
        before[i] = phase[i] == 1 ? before[p] : after[p];
        after[i] = LEADER(i) ? pid[i] : before[i];
    }
    /* One maker per such session (above). */
    for (int i = 1; i < n; i++) {
        if (helper[i] != 2)
            continue;
        int z = -1, maker = parent[i];
        for (int j = 1; j < n && z < 0; j++)
            if (skip[j] && pid[j] == sid[i])
                z = j;
        if (z >= 0)
            maker = parent[z];
        for (int j = 1; j < n; j++) {
            if (!helper[j] || skip[j] || sid[j] != sid[i] || j == i)
                continue;
            if (helper[j] == 2 && parent[j] != parent[i]) {
                snprintf(err, errlen, "processes %d and %d are in session %d, whose leader is "
                         "gone, and have different parents (%d and %d): ckshim makes such a "
                         "session again from one parent only", pid[i], pid[j], sid[i],
                         pid[parent[i]], pid[parent[j]]);
                goto out;
            }
            if (helper[j] == 1 && z < 0 && parent[i] != 0) {
                snprintf(err, errlen, "process %d (a child of %d) and the orphan %d are in "
                         "session %d, whose leader is gone: ckshim makes such a session again "
                         "with its orphans only from the root", pid[i], pid[parent[i]], pid[j],
                         sid[i]);
                goto out;
            }
        }
        if (z >= 0 && parent[i] != maker) {
            snprintf(err, errlen, "process %d (a child of %d) is in session %d, whose leader %d "
                     "is a zombie with another parent (%d): ckshim cannot make it there "
                     "again", pid[i], pid[parent[i]], sid[i], pid[z], pid[maker]);
            goto out;
        }
    }
#undef GONE
#undef LEADER
    ret = 0;
out:
    free(need);
    free(before);
    free(after);
    return ret;
}

int ck_tree_session_plan(int n, const int *parent, const int *pid, const int *sid,
                         const char *skip, char *helper, int root_sid, char *phase, char *err,
                         size_t errlen)
{
    if (plan_pass(n, parent, pid, sid, skip, helper, root_sid, phase, err, errlen, 0) == 0)
        return 0;
    for (int i = 0; i < n; i++)
        phase[i] = 0;
    return plan_pass(n, parent, pid, sid, skip, helper, root_sid, phase, err, errlen, 1);
}

static int in_tree(const struct ck_tree *t, int pid)
{
    for (int i = 0; i < t->n; i++)
        if (t->m[i].pid == pid)
            return i;
    return -1;
}

void ck_tree_helpers(int n, const int *parent, const char *orphan, const int *pid,
                     const int *sid, int root_sid, char *helper)
{
    for (int i = 0; i < n; i++) {
        int via = parent[i];
        helper[i] = orphan[i] && sid[i] != pid[i] &&
                    sid[i] != (via == 0 ? root_sid : sid[via] == pid[via] ? pid[via] : -1);
    }
}

/* The group and session of pid from /proc/PID/stat: 0, or -1. */
int ck_tree_ids(int pid, long *pgrp, long *sid)
{
    struct ck_pstat ps;
    if (ck_pstat_read(pid, &ps) < 0)
        return -1;
    *pgrp = ps.pgrp;
    *sid = ps.sid;
    return 0;
}

/* The pseudo-terminal number of a tty_nr of /proc/PID/stat, or -1. */
static long pts_number(long tty)
{
    long ma = (tty >> 8) & 0xfff, mi = (tty & 0xff) | ((tty >> 12) & 0xfff00);
    return ma >= 136 && ma <= 143 ? mi + 256 * (ma - 136) : -1;
}

/* The pseudo-terminal number of descriptor fd (a name in /proc/PID/fd)
 * of pid if it is a master (/dev/ptmx: fdinfo's tty-index), or -1. */
static long master_index(int pid, const char *fd)
{
    char path[128], link[64], info[512];
    snprintf(path, sizeof path, "/proc/%d/fd/%s", pid, fd);
    ssize_t l = readlink(path, link, sizeof link - 1);
    if (l <= 0)
        return -1;
    link[l] = 0;
    if (strcmp(link, "/dev/ptmx") && strcmp(link, "/dev/pts/ptmx"))
        return -1;
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%s", pid, fd);
    const char *ti = ck_read_file(path, info, sizeof info) < 0 ? NULL : strstr(info, "tty-index:");
    return ti ? strtol(ti + 10, NULL, 10) : -1;
}

int ck_pid_holds(int pid, const char *want)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d)) != NULL) {
        char path[128], link[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t l = readlink(path, link, sizeof link - 1);
        found = l > 0 && (link[l] = 0, !strcmp(link, want));
    }
    if (d)
        closedir(d);
    return found;
}

/* Whether process pid has /dev/pts/ptn open (slave), or holds
 * its master (!slave). */
static int holds_pty(int pid, long ptn, int slave)
{
    if (slave) {
        char want[32];
        snprintf(want, sizeof want, "/dev/pts/%ld", ptn);
        return ck_pid_holds(pid, want);
    }
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d)) != NULL)
        found = e->d_name[0] != '.' && master_index(pid, e->d_name) == ptn;
    if (d)
        closedir(d);
    return found;
}

/* Whether a process of the tree holds the master of pseudo-terminal ptn. */
static int pty_master_in_tree(const struct ck_tree *t, long ptn)
{
    for (int i = 0; i < t->n; i++)
        if (!t->m[i].zombie && holds_pty(t->m[i].pid, ptn, 0))
            return 1;
    return 0;
}

int ck_tree_pty_late(const struct ck_tree *t, char *late)
{
    int any = 0;
    for (int i = 0; i < t->n; i++) {
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%d/fd", t->m[i].pid);
        DIR *d = t->m[i].zombie ? NULL : opendir(dir);
        struct dirent *e;
        while (d && !late[i] && (e = readdir(d)) != NULL) {
            long ptn = e->d_name[0] != '.' ? master_index(t->m[i].pid, e->d_name) : -1;
            for (int j = 0; ptn >= 0 && j < t->n && !late[i]; j++)
                late[i] = j != i && !t->m[j].zombie && holds_pty(t->m[j].pid, ptn, 1);
        }
        if (d)
            closedir(d);
        any |= late[i];
    }
    return any;
}

void ck_tree_ctty(const struct ck_tree *t, int pid, int32_t *ctty, int32_t *fg)
{
    struct ck_pstat ps;
    *ctty = *fg = 0;
    if (ck_pstat_read(pid, &ps) < 0 || ps.sid != pid)
        return;
    long ptn = pts_number(ps.tty);
    if (ptn < 0 || ptn >= INT32_MAX || !pty_master_in_tree(t, ptn))
        return;
    *ctty = (int32_t)(ptn + 1);
    *fg = ps.tpgid > 0 ? (int32_t)ps.tpgid : 0;
}

#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (used < errlen)                                                                         \
            used += (size_t)snprintf(err + used, errlen - used, "%s", used ? "; " : "");            \
        if (used < errlen)                                                                         \
            used += (size_t)snprintf(err + used, errlen - used, __VA_ARGS__);                      \
        bad++;                                                                                     \
    } while (0)

int ck_tree_groups_check(const struct ck_tree *t, char *err, size_t errlen)
{
    int n = t->n, bad = 0;
    size_t used = strlen(err);
    long rpg, rsid;
    if (ck_tree_ids(t->m[0].pid, &rpg, &rsid) < 0)
        return 0; /* the root is gone: the checkpoint fails anyway */
    int *parent = calloc((size_t)n, sizeof *parent), *pid = calloc((size_t)n, sizeof *pid);
    int *sid = calloc((size_t)n, sizeof *sid), *pg = calloc((size_t)n, sizeof *pg);
    long *tty = calloc((size_t)n, sizeof *tty);
    char *skip = calloc((size_t)n, 1), *phase = calloc((size_t)n, 1);
    char *orphan = calloc((size_t)n, 1), *helper = calloc((size_t)n, 1);
    if (!parent || !pid || !sid || !pg || !tty || !skip || !phase || !orphan || !helper) {
        ADD("out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        struct ck_pstat ps;
        parent[i] = t->m[i].parent;
        pid[i] = t->m[i].pid;
        /* (one that ends meanwhile: the tree is taken again) */
        skip[i] = t->m[i].zombie || ck_pstat_read(pid[i], &ps) < 0 || ps.state == 'Z' ||
                  ps.state == 'X' || ps.sid < 0;
        pg[i] = skip[i] ? 0 : (int)ps.pgrp;
        sid[i] = skip[i] ? 0 : (int)ps.sid;
        tty[i] = skip[i] ? 0 : ps.tty;
        orphan[i] = (char)t->m[i].orphan;
    }
    pg[0] = (int)rpg;
    sid[0] = (int)rsid;
    ck_tree_helpers(n, parent, orphan, pid, sid, (int)rsid, helper);
    /* (first: it marks the processes a helper of their parent makes) */
    char perr[256];
    int planned = ck_tree_session_plan(n, parent, pid, sid, skip, helper, (int)rsid, phase, perr,
                                       sizeof perr);
    int others = 0;
    for (int i = 1; i < n; i++) {
        if (skip[i])
            continue;
        char who[160];
        ck_tree_describe(pid[i], who, sizeof who);
        /* (a terminal whose master a process of the tree holds is made
         * again with it, and given to the session's leader) */
        if (sid[i] != rsid && tty[i] != 0 &&
            (pts_number(tty[i]) < 0 || !pty_master_in_tree(t, pts_number(tty[i])))) {
            ADD("%s leads or is in session %d, whose controlling terminal (device %ld:%ld) is "
                "not a pseudo-terminal whose master a process of the tree holds: ckshim cannot "
                "give it back in a process tree", who, sid[i],
                (tty[i] >> 8) & 0xfff, (tty[i] & 0xff) | ((tty[i] >> 12) & 0xfff00));
            continue;
        }
        int l = sid[i] == rsid ? 0 : in_tree(t, sid[i]);
        /* a session an orphan's helper makes again (its leader is gone,
         * or a zombie of the tree, which makes it then) */
        int made = 0;
        char lp[32];
        snprintf(lp, sizeof lp, "/proc/%d", sid[i]);
        int gone = l < 0 ? access(lp, F_OK) != 0 : l > 0 && skip[l];
        for (int j = 1; j < n && !made && gone; j++)
            made = helper[j] && sid[j] == sid[i];
        if (!made && gone && planned < 0)
            continue; /* (the plan says why, below) */
        if (!made && (l < 0 || (l > 0 && (skip[l] || sid[l] != pid[l])))) {
            ADD("%s is in session %d, whose leader is not a process of the tree (it exited "
                "or is outside): ckshim cannot make that session again", who, sid[i]);
            continue;
        }
        int g = pg[i] == rpg ? 0 : in_tree(t, pg[i]);
        if (g == 0 && pg[i] != rpg && pg[i] == pid[0]) {
            ADD("%s is in the process group of %d, which has left it: ckshim cannot make that "
                "group again", who, pid[0]);
            continue;
        }
        if (pg[i] != rpg || sid[i] != rsid)
            others = 1;
    }
    if (rpg != pid[0] && in_tree(t, (int)rpg) > 0)
        ADD("%d is in the process group of its descendant %ld: ckshim cannot make that again",
            pid[0], rpg);
    if (planned < 0)
        ADD("%s", perr);
    if (bad)
        goto out;
    if (!others)
        goto out;
    /* A group or session of the tree (not the root's) must not have
     * members outside it: they would stay in the old one, the restored
     * processes in a new one (a process reparented when its parent in
     * the tree exited). */
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        struct ck_pstat ps;
        int p = atoi(e->d_name);
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || ck_pstat_read(p, &ps) < 0)
            continue;
        long a = ps.pgrp, b = ps.sid, pp = ps.ppid;
        /* (a child forked since the tree was listed: the tree changed,
         * and is taken again once every process is parked) */
        if (in_tree(t, p) >= 0 || (pp > 0 && in_tree(t, (int)pp) >= 0))
            continue;
        /* a zombie outside holds nothing to take or leave behind: an
         * orphan its adopter has not waited for yet (a container's init
         * may never: a short command's image writer, still writing when
         * its process exited, stays a zombie of init's in the tree's
         * session for good) */
        if (ps.state == 'Z' || ps.state == 'X')
            continue;
        int grp = 0, ses = 0;
        for (int i = 1; i < n && !grp && !ses; i++) {
            if (skip[i])
                continue;
            grp = pg[i] != rpg && pg[i] == a;
            ses = sid[i] != rsid && sid[i] == b;
        }
        if (!grp && !ses)
            continue;
        char who[160];
        ck_tree_describe(p, who, sizeof who);
        ADD("%s is in %s %ld of the tree but not one of its processes (was its parent in the "
            "tree? it was moved to another when that one exited)", who,
            ses ? "session" : "process group", ses ? b : a);
    }
    if (d)
        closedir(d);
out:
    free(parent);
    free(pid);
    free(sid);
    free(pg);
    free(tty);
    free(skip);
    free(phase);
    free(orphan);
    free(helper);
    return bad;
}

static void shm_inodes(int pid, unsigned long *ino, int max, int *n, const unsigned long *want,
                       int nwant, const char **kind);

int ck_tree_adopt(struct ck_tree *t)
{
    enum { MAXI = 256, MAXA = 64 };
    struct ck_pstat root, ps;
    if (ck_pstat_read(t->m[0].pid, &root) < 0)
        return 0;
    long rpg = root.pgrp, rsid = root.sid, a, b;
    /* the tree's sessions and groups other than the root's, and its
     * shared anonymous memory */
    long *ids = calloc((size_t)t->n * 2, sizeof *ids);
    unsigned long ino[MAXI];
    int nids = 0, nino = 0, added = 0;
    if (!ids)
        return 0;
    for (int i = 0; i < t->n; i++) {
        if (ck_pstat_read(t->m[i].pid, &ps) < 0)
            continue;
        if (ps.sid != rsid)
            ids[nids++] = ps.sid;
        if (ps.pgrp != rpg)
            ids[nids++] = -ps.pgrp; /* groups negative */
        if (!t->m[i].zombie)
            shm_inodes(t->m[i].pid, ino, MAXI, &nino, NULL, 0, NULL);
    }
    /* (the root's ancestors share its memory and sessions: never ours) */
    long anc[MAXA];
    int nanc = 0;
    long rparent = root.ppid;
    for (long pp = rparent; pp > 1 && nanc < MAXA;
         pp = ck_pstat_read((int)pp, &ps) < 0 ? 0 : ps.ppid)
        anc[nanc++] = pp;
    struct ck_procinfo me;
    DIR *d = (nids || nino) && ck_proc_info(t->m[0].pid, &me) == 0 ? opendir("/proc") : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        int p = atoi(e->d_name), k = 0, hit = 0;
        if (p == getpid() || p == 1 || in_tree(t, p) >= 0 || ck_pstat_read(p, &ps) < 0)
            continue;
        long pp = ps.ppid;
        a = ps.pgrp;
        b = ps.sid;
        /* (a child forked since the tree was listed is a change of the
         * tree, found as such) */
        if (in_tree(t, (int)pp) >= 0 || ps.state == 'Z' || ps.state == 'X')
            continue;
        for (k = 0; k < nanc && anc[k] != p; k++)
            ;
        if (k < nanc)
            continue;
        int init = pp == 1 || ck_pidns_inner((int)pp) == 1, above = 0;
        for (k = 0; k < nanc && !init && !above; k++)
            above = anc[k] == pp && pp != rparent;
        if ((!init && !above) || ps.start < root.start)
            continue;
        for (k = 0; k < nids && !hit; k++)
            hit = ids[k] == b || ids[k] == -a;
        /* (adopted by an ancestor: only with a session or group of the
         * tree's, which its siblings' children never are) */
        if (!hit && nino && init) {
            unsigned long one;
            int m = 0;
            shm_inodes(p, &one, 1, &m, ino, nino, NULL);
            hit = m > 0;
        }
        struct ck_procinfo pi;
        if (!hit || ck_proc_info(p, &pi) < 0 || pi.ruid != me.ruid || pi.euid != me.euid)
            continue; /* (never another user's: coord may run as root) */
        /* made again by the leader of its session if the tree has it (a
         * zombie one too), else by the root (with a helper that makes
         * the session if it is not the root's); one whose session's
         * leader lives outside is left (it may be adopted as the loop
         * goes on, else ck_tree_groups_check names it) */
        int via = b == rsid || b == p ? 0 : in_tree(t, (int)b);
        if (via < 0) {
            char lp[32];
            snprintf(lp, sizeof lp, "/proc/%ld", b);
            if (access(lp, F_OK) == 0)
                continue;
            via = 0;
        }
        if (t->n >= CK_TREE_MAX) {
            added = -E2BIG;
            break;
        }
        t->m[t->n] = (struct ck_tree_member){.pid = p, .parent = via, .orphan = 1};
        t->n++;
        added++;
    }
    if (d)
        closedir(d);
    free(ids);
    return added;
}

/* Add to ino[] (at most max, *n so far) the keys of pid's shared
 * mappings that a restore makes anew: anonymous ones (MAP_SHARED |
 * MAP_ANONYMOUS, inherited across fork: "/dev/zero (deleted)"; a restored
 * tree's: its memfd), memfds and deleted files (Python's multiprocessing
 * Value and Array: an unlinked file in /dev/shm); the key is the inode
 * with the device in the high bits. With want, only those in
 * want[0..nwant) and the first one found; kind (if given) gets what it is. */
static void shm_inodes(int pid, unsigned long *ino, int max, int *n, const unsigned long *want,
                       int nwant, const char **kind)
{
    char path[64], line[4200];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    while (f && *n < max && fgets(line, sizeof line, f)) {
        char perms[8];
        unsigned long i;
        unsigned maj, min;
        int name = 0;
        if (sscanf(line, "%*x-%*x %7s %*x %x:%x %lu %n", perms, &maj, &min, &i, &name) < 4 ||
            !name || perms[3] != 's')
            continue;
        const char *nm = line + name;
        size_t nl = strcspn(nm, "\n");
        const char *what = !strncmp(nm, "/dev/zero (deleted)", 19) ||
                                   !strncmp(nm, "/memfd:ckshim-tree-shm (deleted)", 32)
                               ? "anonymous"
                           : !strncmp(nm, "/memfd:", 7) ? "a memfd"
                           : nl > 10 && !strncmp(nm + nl - 10, " (deleted)", 10) ? "a deleted file"
                                                                                : NULL;
        if (!what)
            continue;
        i ^= (unsigned long)makedev(maj, min) << 40;
        int k = 0;
        for (; k < *n && ino[k] != i; k++)
            ;
        if (k < *n)
            continue;
        int w = !want;
        for (int j = 0; j < nwant && !w; j++)
            w = want[j] == i;
        if (w) {
            ino[(*n)++] = i;
            if (kind)
                *kind = what;
        }
        if (w && want)
            break;
    }
    if (f)
        fclose(f);
}

int ck_tree_shm_check(const struct ck_tree *t, char *err, size_t errlen)
{
    enum { MAXI = 256 };
    unsigned long ino[MAXI];
    int n = 0, bad = 0;
    size_t used = strlen(err);
    for (int i = 0; i < t->n; i++)
        if (!t->m[i].zombie)
            shm_inodes(t->m[i].pid, ino, MAXI, &n, NULL, 0, NULL);
    if (!n)
        return 0;
    /* a process outside the tree that maps one of them: the tree would
     * come back with its own copy, and the two would no longer see each
     * other's writes (zdtm session01: processes orphaned when their
     * parent in the tree exited, adopted by init) */
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        int p = atoi(e->d_name), m = 0;
        unsigned long hit;
        const char *kind = "anonymous";
        if (p == getpid() || in_tree(t, p) >= 0)
            continue;
        shm_inodes(p, &hit, 1, &m, ino, n, &kind);
        hit &= (1UL << 40) - 1;
        if (!m)
            continue;
        /* a descendant forked since the tree was listed (a server's new
         * worker): the tree is taken as it is when parked, with it */
        struct ck_pstat ps;
        long up = ck_pstat_read(p, &ps) == 0 ? ps.ppid : 0;
        int newcomer = 0;
        for (int k = 0; k < 64 && up > 1 && !newcomer; k++) {
            newcomer = in_tree(t, (int)up) >= 0;
            up = ck_pstat_read((int)up, &ps) == 0 ? ps.ppid : 0;
        }
        if (newcomer)
            continue;
        char who[160];
        ck_tree_describe(p, who, sizeof who);
        /* one of the root's ancestors, or a child of one (the root's
         * sibling: a worker of a pre-forking server checkpointed alone),
         * or another (an orphan adopted outside when its parent in the
         * tree exited) */
        int anc = 0, sib = 0;
        up = ck_pstat_read(t->m[0].pid, &ps) == 0 ? ps.ppid : 0;
        for (int k = 0; k < 64 && up > 1 && !anc; k++) {
            anc = up == p;
            sib = sib ? sib : (ck_pstat_read(p, &ps) == 0 && ps.ppid == up ? (int)up : 0);
            up = ck_pstat_read((int)up, &ps) == 0 ? ps.ppid : 0;
        }
        if (anc)
            ADD("%s, an ancestor of %d, shares memory (MAP_SHARED, %s, inode %lu) with "
                "it: ckshim cannot restore memory shared with a process outside the tree "
                "(checkpoint the tree from %d instead)", who, t->m[0].pid, kind, hit, p);
        else if (sib)
            ADD("%s, a child of %d as %d is, shares memory (MAP_SHARED, %s, inode %lu) "
                "with it: ckshim cannot restore memory shared with a process outside the tree "
                "(checkpoint the tree from %d instead)", who, sib, t->m[0].pid, kind, hit, sib);
        else
            ADD("%s shares memory (MAP_SHARED, %s, inode %lu) with the tree but is not "
                "one of its processes (was its parent in the tree? it was adopted by another "
                "when that one exited): ckshim cannot restore memory shared with a process "
                "outside", who, kind, hit);
    }
    if (d)
        closedir(d);
    return bad;
}

/* What processes of the tree name each other by: pidfds (CK_FDF_PIDFD_TREE)
 * and the owners of descriptors' signals (CK_OWN_TREE, CK_OWN_TREE_PGRP)
 * must name a process or group of the tree (the shim recorded them so in
 * a tree checkpoint, without knowing the tree). 0, or -1 with err. */
int ck_tree_names_check(int n, const struct ck_tree_entry *e, const struct ck_image *imgs,
                        char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (e[i].flags & CK_TREE_ZOMBIE)
            continue;
        const struct ck_image *im = &imgs[i];
        for (uint32_t x = 0; x < im->nfds; x++) {
            const struct ck_fd *f = &im->fds[x];
            int pidfd = f->kind == CK_FD_PIDFD && (f->flags & CK_FDF_PIDFD_TREE);
            uint32_t own = CK_OWN_KIND(f->owner);
            if (!pidfd && own != CK_OWN_TREE && own != CK_OWN_TREE_PGRP)
                continue;
            int32_t id = pidfd ? (int32_t)f->aux : (int32_t)CK_OWN_ID(f->owner);
            int found = 0;
            for (int j = 0; j < n && !found; j++)
                found = own == CK_OWN_TREE_PGRP && !pidfd
                            ? !(e[j].flags & CK_TREE_ZOMBIE) && (int32_t)imgs[j].proc.pgid == id
                            : e[j].vpid == id;
            if (!found) {
                snprintf(err, errlen, "process %d: fd %d %s %s %d, which is not part of the "
                         "tree; ckshim cannot restore it", e[i].vpid, f->fd,
                         pidfd ? "is a pidfd of" : "sends its signals (F_SETOWN) to",
                         own == CK_OWN_TREE_PGRP && !pidfd ? "process group" : "process", id);
                return -1;
            }
        }
    }
    return 0;
}
