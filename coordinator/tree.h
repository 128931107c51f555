/* tree.h - the process tree below a checkpointed process (tree.c). */
#ifndef CKSHIM_TREE_H
#define CKSHIM_TREE_H

#include <stddef.h>

#define CK_TREE_MAX 1024

struct ck_tree_member {
    int pid;                            /* real (kernel) pid */
    int parent;                         /* index of its parent in the tree, -1 for the root */
};

/* The root first, then its descendants breadth first (a parent always
 * before its children). */
struct ck_tree {
    struct ck_tree_member m[CK_TREE_MAX];
    int n;
};

/* Collect pid and every descendant (/proc/PID/task/TID/children of every
 * thread, recursively). Returns 0, or -E2BIG (more than CK_TREE_MAX), or
 * another -errno. */
int ck_tree_discover(int pid, struct ck_tree *t);

/* Check every descendant can be part of a tree image: ours, running, not
 * a zombie, under the shim (it serves its own control socket). Returns
 * how many cannot, naming each with its command line and why in err. */
int ck_tree_check(const struct ck_tree *t, char *err, size_t errlen);

/* "PID (command line)", or "PID (name)" for a zombie. */
void ck_tree_describe(int pid, char *out, size_t len);

#endif
