/* treeshare.h - the sockets of a process tree put together (treeshare.c). */
#ifndef CKSHIM_TREESHARE_H
#define CKSHIM_TREESHARE_H

#include <stdint.h>

#include "image.h"
#include "imgio.h"

/* Every socket of the tree's processes, one entry per open file
 * description: im holds fds (numbered by the caller's number()), their
 * paths and editable states; per entry the process it came from, its
 * index and number there, and its share group (-1 if none). */
struct ck_tree_socks {
    struct ck_image im;
    int *proc;
    uint32_t *idx;
    int *orig_fd;
    int *group;
    uint8_t **state;
    uint32_t *state_len;
};

/* The share group of process p's descriptor fd in the table, or -1. */
int ck_tree_share_group(const struct ck_tree_share *sh, uint64_t nsh, int p, int fd);

/* Put the sockets of imgs[p] (live[p] != 0; pids[p]: how messages name
 * it) together and pair them again across processes. 0: no process
 * shares a socket or is connected to another (each makes its own; t
 * holds the set all the same, for its numbers); 1: t holds the set; -1:
 * refused or failed, err says why (t freed). ck_tree_socks_free frees t. */
int ck_tree_socks_merge(const struct ck_image *imgs, const int *live, const int *pids, int n,
                        const struct ck_tree_share *sh, uint64_t nsh, int (*number)(void *arg),
                        void *arg, struct ck_tree_socks *t, char *err, size_t errlen);

/* The entry of process p's descriptor fd (or of its share group), or -1. */
int ck_tree_socks_find(const struct ck_tree_socks *t, int p, int fd, const struct ck_tree_share *sh,
                       uint64_t nsh);

void ck_tree_socks_free(struct ck_tree_socks *t);

#endif
