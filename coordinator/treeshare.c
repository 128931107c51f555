/* treeshare.c - the sockets of a process tree put together.
 *
 * Each process of a tree captures its own sockets and sees the other end
 * of a connection to another process of the tree, or the listener a
 * client of another process waits on, as outside. Checkpoint (to refuse
 * early) and restore (to make them) put every socket of every process in
 * one merged set, one entry per open file description (the share table of
 * the tree header: a socket inherited across fork is one socket), with
 * numbers unique in the set, and let the kinds pair them again
 * (ck_unix_relink, ck_inet_relink). Restore then makes the whole set at
 * once, before the forks that split the tree, exactly as it makes the
 * sockets of one process, and every process takes its descriptors from
 * it (docs/DESIGN.md, "Process trees"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fdkind.h"
#include "imgio.h"
#include "inet.h"
#include "treeshare.h"
#include "unix.h"

/* The share group of process p's descriptor fd, or -1. */
int ck_tree_share_group(const struct ck_tree_share *sh, uint64_t nsh, int p, int fd)
{
    for (uint64_t k = 0; k < nsh; k++)
        if (sh[k].proc == p && sh[k].fd == fd)
            return (int)sh[k].group;
    return -1;
}

static void *set_state(struct ck_fdcap_set *s, uint32_t i, size_t *len)
{
    struct ck_tree_socks *t = s->priv;
    *len = t->state_len[i];
    return t->state[i];
}

void ck_tree_socks_free(struct ck_tree_socks *t)
{
    for (uint32_t k = 0; k < t->im.nfds; k++)
        free(t->state ? t->state[k] : NULL);
    free(t->state);
    free(t->state_len);
    free(t->im.fds);
    free(t->im.fd_paths);
    free(t->im.fdstate);
    free(t->proc);
    free(t->idx);
    free(t->orig_fd);
    free(t->group);
    memset(t, 0, sizeof *t);
}

int ck_tree_socks_find(const struct ck_tree_socks *t, int p, int fd, const struct ck_tree_share *sh,
                       uint64_t nsh)
{
    int g = ck_tree_share_group(sh, nsh, p, fd);
    for (uint32_t k = 0; k < t->im.nfds; k++)
        if ((t->proc[k] == p && t->orig_fd[k] == fd) || (g >= 0 && t->group[k] == g))
            return (int)k;
    return -1;
}

/* Does entry k have its other end (a peer, a listener holding it) in
 * another process? */
static int crosses(const struct ck_tree_socks *t, uint32_t k)
{
    const struct ck_fd *f = &t->im.fds[k];
    for (uint32_t j = 0; j < t->im.nfds; j++) {
        if (t->proc[j] == t->proc[k])
            continue;
        if (f->kind == CK_FD_UNIX && t->state_len[k] >= sizeof(struct ck_unix)) {
            const struct ck_unix *u = (const void *)t->state[k];
            if ((u->flags & (CK_UNIXF_PEER_IN | CK_UNIXF_QUEUED)) && u->peer_ino &&
                u->peer_ino == t->im.fds[j].ino && t->im.fds[j].kind == CK_FD_UNIX)
                return 1;
        }
        if (f->kind == CK_FD_INET && t->state_len[k] >= sizeof(struct ck_inet)) {
            const struct ck_inet *s = (const void *)t->state[k];
            int other = s->role == CK_INET_PAIR      ? s->peer_fd
                        : s->role == CK_INET_PENDING ? s->listener_fd
                                                     : -1;
            if (other >= 0 && other == t->im.fds[j].fd)
                return 1;
        }
    }
    return 0;
}

/* The kinds' messages name descriptors by their numbers in the set:
 * "fd N" becomes "process PID fd M", as the program knows them. */
static void name_fds(const struct ck_tree_socks *t, const int *pids, char *err, size_t errlen)
{
    char out[1024];
    size_t o = 0;
    for (const char *p = err; *p && o + 1 < sizeof out;) {
        int num, len = 0;
        if (!strncmp(p, "fd ", 3) && sscanf(p + 3, "%d%n", &num, &len) == 1) {
            int k = -1;
            for (uint32_t j = 0; j < t->im.nfds && k < 0; j++)
                if (t->im.fds[j].fd == num)
                    k = (int)j;
            if (k >= 0) {
                int w = snprintf(out + o, sizeof out - o, "process %d fd %d", pids[t->proc[k]],
                                 t->orig_fd[k]);
                o = w < 0 ? o : o + (size_t)w < sizeof out ? o + (size_t)w : sizeof out - 1;
                p += 3 + len;
                continue;
            }
        }
        out[o++] = *p++;
    }
    out[o] = 0;
    snprintf(err, errlen, "%s", out);
}

int ck_tree_socks_merge(const struct ck_image *imgs, const int *live, const int *pids, int n,
                        const struct ck_tree_share *sh, uint64_t nsh, int (*number)(void *arg),
                        void *arg, struct ck_tree_socks *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    uint32_t cap = 0;
    for (int p = 0; p < n; p++)
        if (live[p])
            cap += imgs[p].nfds;
    if (!cap)
        return 0;
    t->im.fds = calloc(cap, sizeof *t->im.fds);
    t->im.fd_paths = calloc(cap, sizeof *t->im.fd_paths);
    t->im.fdstate = calloc(cap, sizeof *t->im.fdstate);
    t->state = calloc(cap, sizeof *t->state);
    t->state_len = calloc(cap, sizeof *t->state_len);
    t->proc = calloc(cap, sizeof *t->proc);
    t->idx = calloc(cap, sizeof *t->idx);
    t->orig_fd = calloc(cap, sizeof *t->orig_fd);
    t->group = calloc(cap, sizeof *t->group);
    if (!t->im.fds || !t->im.fd_paths || !t->im.fdstate || !t->state || !t->state_len ||
        !t->proc || !t->idx || !t->orig_fd || !t->group) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int shared = 0, inflight = 0, scm = 0;
    for (int p = 0; p < n; p++) {
        const struct ck_image *im = &imgs[p];
        for (uint32_t x = 0; live[p] && x < im->nfds; x++) {
            const struct ck_fd *f = &im->fds[x];
            inflight |= !!(f->flags & CK_FDF_IN_FLIGHT);
            if ((f->kind != CK_FD_UNIX && f->kind != CK_FD_INET) || f->share_with >= 0 ||
                (f->flags & CK_FDF_IN_FLIGHT) || !im->fdstate || !im->fdstate[x].data ||
                (f->kind == CK_FD_INET && (f->flags & CK_FDF_STD_REDIRECT)))
                continue;
            int g = ck_tree_share_group(sh, nsh, p, f->fd);
            int dup = 0;
            for (uint32_t k = 0; g >= 0 && k < t->im.nfds && !dup; k++)
                dup = t->group[k] == g;
            if (dup) {
                shared = 1; /* the same socket, inherited across fork */
                continue;
            }
            uint32_t k = t->im.nfds++;
            t->im.fds[k] = *f;
            t->im.fds[k].fd = number(arg);
            if (t->im.fds[k].fd < 0) {
                snprintf(err, errlen, "cannot number the sockets of the tree: %s",
                         strerror(errno));
                goto fail;
            }
            t->im.fd_paths[k] = im->fd_paths[x];
            t->state_len[k] = im->fdstate[x].len;
            t->state[k] = malloc(im->fdstate[x].len ? im->fdstate[x].len : 1);
            if (!t->state[k]) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            memcpy(t->state[k], im->fdstate[x].data, im->fdstate[x].len);
            t->im.fdstate[k].data = t->state[k];
            t->im.fdstate[k].len = im->fdstate[x].len;
            t->proc[k] = p;
            t->idx[k] = x;
            t->orig_fd[k] = f->fd;
            t->group[k] = g;
            if (f->kind == CK_FD_UNIX && t->state_len[k] >= sizeof(struct ck_unix))
                scm |= !!(((const struct ck_unix *)(const void *)t->state[k])->flags &
                          CK_UNIXF_SCM);
        }
    }
    /* the peers' and listeners' numbers in the set, for inet */
    for (uint32_t k = 0; k < t->im.nfds; k++) {
        if (t->im.fds[k].kind != CK_FD_INET || t->state_len[k] < sizeof(struct ck_inet))
            continue;
        struct ck_inet *s = (void *)t->state[k];
        int32_t *ref = s->role == CK_INET_PAIR      ? &s->peer_fd
                       : s->role == CK_INET_PENDING ? &s->listener_fd
                                                    : NULL;
        if (!ref)
            continue;
        int to = -1;
        for (uint32_t j = 0; j < t->im.nfds && to < 0; j++)
            if (t->proc[j] == t->proc[k] && t->orig_fd[j] == *ref)
                to = t->im.fds[j].fd;
        for (uint32_t j = 0; to < 0 && j < imgs[t->proc[k]].nfds; j++) {
            /* a dup of a socket the set holds under another process's entry */
            const struct ck_fd *o = &imgs[t->proc[k]].fds[j];
            int g = o->fd == *ref ? ck_tree_share_group(sh, nsh, t->proc[k], o->fd) : -1;
            for (uint32_t q = 0; g >= 0 && q < t->im.nfds && to < 0; q++)
                if (t->group[q] == g)
                    to = t->im.fds[q].fd;
        }
        *ref = to;
    }
    struct ck_fdcap_set set = {.fds = t->im.fds, .n = t->im.nfds, .err = err, .errlen = errlen,
                               .state = set_state, .priv = t};
    if (ck_unix_relink(&set) < 0 || ck_inet_relink(&set) < 0) {
        name_fds(t, pids, err, errlen);
        goto fail;
    }
    int cross = shared;
    for (uint32_t k = 0; k < t->im.nfds && !cross; k++)
        cross = crosses(t, k);
    if (!cross)
        return 0; /* each process makes its own, as before (the caller frees t) */
    if (scm || inflight) {
        snprintf(err, errlen, "processes of the tree share sockets or are connected to each "
                 "other, and descriptors are in flight (SCM_RIGHTS) in a unix socket's queue; "
                 "ckshim cannot restore both together yet (let the program receive them "
                 "first)");
        goto fail;
    }
    return 1;
fail:
    ck_tree_socks_free(t);
    return -1;
}
