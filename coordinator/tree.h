/* tree.h - the process tree below a checkpointed process (tree.c). */
#ifndef CKSHIM_TREE_H
#define CKSHIM_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

#define CK_TREE_MAX 1024

struct ck_tree_member {
    int pid;                            /* real (kernel) pid */
    int parent;                         /* index of its parent in the tree, -1 for the root */
    int zombie;                         /* exited, not yet waited for by its parent */
    int status;                         /* a zombie's wait status (/proc/PID/stat exit_code) */
    int stopsig;                        /* stopped (state T): the signal that stopped it */
    int held;                           /* stopped, and continued by coord under its
                                           shim's hold already (checkpoint.c) */
    int orphan;                         /* adopted outside the tree when its parent exited
                                           (treegroups.c: ck_tree_adopt); parent is then the
                                           process whose restore makes it again */
};

/* 1 if member i (not the root, an orphan or a zombie) shares its
 * descriptor table with its parent (clone with CLONE_FILES; kcmp). */
struct ck_tree;
int ck_tree_shares_table(const struct ck_tree *t, int i);

/* The root first, then its descendants breadth first (a parent always
 * before its children). */
struct ck_tree {
    struct ck_tree_member m[CK_TREE_MAX];
    int n;
};

/* What coord reads of /proc/PID/stat (fields 3-8, 22 and 52). */
struct ck_pstat {
    char state;                         /* 'R', 'S', 'T', 'Z', ... */
    long ppid, pgrp, sid;
    long tty;                           /* tty_nr (0: no controlling terminal) */
    long tpgid;                         /* that terminal's foreground group */
    long threads;                       /* num_threads */
    unsigned long long start;           /* clock ticks after boot */
    int exit_code;                      /* field 52 (-1: not shown) */
};

/* Read /proc/PID/stat. Returns 0, or -1 (no such process). */
int ck_pstat_read(int pid, struct ck_pstat *ps);

/* Field 52 of /proc/PID/stat (exit_code) when the process's state is
 * one of states: a zombie's wait status, or the signal that stopped a
 * stopped process. -1 otherwise. */
int ck_stat_exit_code(int pid, const char *states);

/* Collect pid and every descendant (/proc/PID/task/TID/children of every
 * thread, recursively). Returns 0, or -E2BIG (more than CK_TREE_MAX), or
 * another -errno. */
int ck_tree_discover(int pid, struct ck_tree *t);

/* Processes orphaned inside the tree (their parent in it exited; the
 * kernel gave them to init or a subreaper outside) that still belong to
 * it: in a session or process group of the tree other than the root's,
 * or mapping its shared anonymous memory. Appended to t (orphan set,
 * parent: the process of the tree that makes them again at restore: the
 * leader of their session, else the root), without their descendants.
 * Returns how many, or -E2BIG. */
int ck_tree_adopt(struct ck_tree *t);

/* Whether the root of t runs the shim (or is about to, or is stopped:
 * asked later). Its descendants' refusals would otherwise be all a user
 * is told about a root started without it. */
int ck_tree_root_under_shim(const struct ck_tree *t);

/* Check every descendant can be part of a tree image: ours, running, not
 * a zombie, under the shim (it serves its own control socket). Returns
 * how many cannot, naming each with its command line and why in err. */
int ck_tree_check(const struct ck_tree *t, char *err, size_t errlen);

/* Process groups and sessions of the tree (treegroups.c): what a restore
 * cannot make again, named in err (appended, "; " between). Returns how
 * many problems. */
int ck_tree_groups_check(const struct ck_tree *t, char *err, size_t errlen);

/* Shared anonymous memory of the tree that a process outside it maps
 * too (treegroups.c): named in err (appended). Returns how many. */
int ck_tree_shm_check(const struct ck_tree *t, char *err, size_t errlen);

/* The order of the forks that makes the sessions of a tree again: phase[i]
 * 1 when process i is forked before its parent calls setsid, 2 after (see
 * treegroups.c). pid/sid/parent per process, skip: zombies. helper: as
 * ck_tree_helpers made it; the plan sets 2 for each process a helper of
 * its parent makes in a session whose leader is gone (clone with
 * CLONE_PARENT). 0 or -1 with err set. */
int ck_tree_session_plan(int n, const int *parent, const int *pid, const int *sid,
                         const char *skip, char *helper, int root_sid, char *phase, char *err,
                         size_t errlen);

/* helper[i] = 1 for each orphan of t (ck_tree_adopt) whose session is not
 * the one its maker (parent) is in once it made its own: a short-lived
 * helper makes it (setsid) at restore, or the zombie that led it does.
 * pid, sid: per process; root_sid: the root's session. */
void ck_tree_helpers(int n, const int *parent, const char *orphan, const int *pid,
                     const int *sid, int root_sid, char *helper);

/* Pidfds and descriptor owners naming other processes or groups of the
 * tree must name ones in it (treegroups.c). 0, or -1 with err set. */
struct ck_image;
int ck_tree_names_check(int n, const struct ck_tree_entry *e, const struct ck_image *imgs,
                        char *err, size_t errlen);

/* Process group and session of pid (/proc/PID/stat): 0, or -1. */
int ck_tree_ids(int pid, long *pgrp, long *sid);

/* Whether a descriptor of process pid links to want (/proc/PID/fd). */
int ck_pid_holds(int pid, const char *want);

/* A session leader's pseudo-terminal that a process of the tree holds
 * the master of (treegroups.c): its number + 1 into *ctty, its
 * foreground process group into *fg (0 and 0: none of the kind). */
void ck_tree_ctty(const struct ck_tree *t, int pid, int32_t *ctty, int32_t *fg);

/* late[i] = 1 for the processes of the tree that hold the master of a
 * pseudo-terminal whose slave another process of it holds open. Returns
 * whether there is one. */
int ck_tree_pty_late(const struct ck_tree *t, char *late);

/* "PID (command line)", or "PID (name)" for a zombie. */
void ck_tree_describe(int pid, char *out, size_t len);

/* ---- the tree image header (common/image.h: struct ck_tree_hdr) ---- */

/* The share table of a tree image (version 2): n entries in s, grouped;
 * flags CK_TREE_HDR_SHARES when it is complete. */
struct ck_tree_sharetab {
    uint64_t n;
    uint64_t flags;
    struct ck_tree_share *s;
};

/* Where the first process's stream starts in a tree image of n processes
 * and nshares shares (version 2). */
uint64_t ck_tree_first_offset(uint32_t n, uint64_t nshares);

/* Write the header, its n entries (h->nprocs) and the share table st with
 * their checksum at offset 0 of fd; with a key k, their MAC in h->mac
 * too. 0 or -errno. */
struct ck_key;
int ck_tree_write_hdr(int fd, const struct ck_tree_hdr *h, const struct ck_tree_entry *e,
                      const struct ck_tree_sharetab *st, const struct ck_key *k,
                      const uint8_t *macs);

/* An authenticated tree image: the MAC, with key k, of its header, its
 * entries (which the streams' own MACs do not cover: which processes,
 * their parents, the zombies' statuses, where each stream is), its share
 * table and the MAC of every process's stream (macs: CK_DIGEST_BYTES per
 * entry, zero for a zombie; ck_image_authenticate_at gives them), so no
 * stream of another checkpoint can stand in for one. 0, or -1 with a
 * message in err. */
int ck_tree_check_mac(const struct ck_tree_hdr *h, const struct ck_tree_entry *e,
                      const struct ck_tree_sharetab *st, const uint8_t *macs,
                      const struct ck_key *k, char *err, size_t errlen);

/* Read a tree header from offset 0 of fd: 0 when the file is not a tree
 * image (a single process's, or not an image), 1 with the entries in
 * *ret (malloc'd) and the share table in *st (if not NULL; its s
 * malloc'd, NULL when none; empty in a version 1 image), or -errno with a
 * message in err. */
int ck_tree_read_hdr(int fd, struct ck_tree_hdr *h, struct ck_tree_entry **ret,
                     struct ck_tree_sharetab *st, char *err, size_t errlen);

/* Every share of st names a process of the tree (after the MAC check,
 * which says more of a forged header). 0, or -1 with a message in err. */
int ck_tree_check_shares(const struct ck_tree_hdr *h, const struct ck_tree_sharetab *st,
                         char *err, size_t errlen);

/* Which descriptors of different processes of t are one open file
 * description (kcmp, while every process is parked): *out (malloc'd, *n
 * entries), grouped. 0, or -1 with err set (kcmp not allowed: the
 * processes must be ptrace-able by coord's user). */
int ck_tree_shares(const struct ck_tree *t, struct ck_tree_share **out, uint64_t *n, char *err,
                   size_t errlen);

/* A process's stream against its entry i: the pid the stream was taken
 * of (sh: its header, as read), the tree's counter stamp, and end (the
 * offset just past its END record) inside the entry's length. 0, or -1
 * with a message in err. */
int ck_tree_check_stream(const struct ck_tree_hdr *h, const struct ck_tree_entry *e,
                         uint32_t i, const struct ck_header *sh, uint64_t end, char *err,
                         size_t errlen);

/* A process about to serve the shim's socket (just forked, or exec'd
 * with the shim in LD_PRELOAD: a shell's `exec make`), waited for up to
 * ms: 1 once it does, -1 if it ended, 0 if not. */
int ck_shim_coming(int pid, int ms);

#endif
