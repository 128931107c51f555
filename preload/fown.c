/* fown.c - who gets a descriptor's SIGIO, and with which signal.
 *
 * Signal-driven I/O (O_ASYNC) and leases tell the owner of an open file
 * description (F_SETOWN / F_SETOWN_EX) with its signal (F_SETSIG, SIGIO
 * if none). None of it is in /proc, and a descriptor opened again at
 * restore has no owner and no O_ASYNC (open(2) ignores the flag). So the
 * shim asks at checkpoint, for every open file description, and puts it
 * back after restore, once the threads have their new ids: the owner is
 * the process itself, its process group or one of its threads (recorded
 * by the tid the program saw), or in a tree checkpoint another process or
 * process group of the tree (by the id the tree knows it by; coord checks
 * it is one); an
 * owner outside the program could not be given back and refuses the
 * checkpoint by name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

/* The raw call: the shim's own fcntl wrapper translates owner pids to
 * the program's view, and these are the kernel's. */
#define rawfcntl(fd, cmd, arg) ((int)syscall(SYS_fcntl, (fd), (cmd), (arg)))

int fown_capture(struct ck_fd *f, char *err, size_t errlen)
{
    struct f_owner_ex o = {0};
    f->owner = CK_OWN_NONE;
    f->sig = 0;
    int sig = rawfcntl(f->fd, F_GETSIG, 0);
    if (sig > 0)
        f->sig = (uint32_t)sig;
    if (rawfcntl(f->fd, F_GETOWN_EX, &o) < 0 || o.pid <= 0)
        return 0; /* no owner, or one that has exited */
    if (o.type == F_OWNER_PID && o.pid == shim_real_getpid()) {
        f->owner = CK_OWN_PROCESS << 24;
        return 0;
    }
    if (o.type == F_OWNER_PGRP && o.pid == (pid_t)syscall(SYS_getpgid, 0)) {
        f->owner = CK_OWN_PGRP << 24;
        return 0;
    }
    for (int k = 0; k < g_shim.nslots; k++) {
        const struct shim_slot *s = &g_shim.slots[k];
        if (s->tid == o.pid && s->vtid > 0 && s->vtid <= (pid_t)CK_OWN_ID(~0u)) {
            f->owner = CK_OWN_THREAD << 24 | (uint32_t)s->vtid;
            return 0;
        }
    }
    if (g_shim.tree_ckpt && o.type != F_OWNER_TID) {
        /* another process or process group of the tree being
         * checkpointed (coord checks it is one): by the id the tree
         * knows it by */
        pid_t v = o.type == F_OWNER_PGRP ? shim_pgrp_virt(o.pid) : shim_pid_virt(o.pid);
        if (v > 0 && v <= (pid_t)CK_OWN_ID(~0u)) {
            f->owner = (o.type == F_OWNER_PGRP ? CK_OWN_TREE_PGRP : CK_OWN_TREE) << 24 |
                       (uint32_t)v;
            return 0;
        }
    }
    snprintf(err, errlen, "fd %d: its signals (F_SETOWN) go to %s %d, outside the program, "
             "which ckshim cannot give back after a restore", f->fd,
             o.type == F_OWNER_PGRP ? "process group" : o.type == F_OWNER_TID ? "thread" :
             "process", o.pid);
    return -ENOTSUP;
}

/* After restore, before the program runs: owners, signals and O_ASYNC. */
int fown_restore(char *err, size_t errlen)
{
    for (uint32_t i = 0; i < g_shim.nfds; i++) {
        const struct ck_fd *f = &g_shim.fds[i];
        if (f->share_with >= 0)
            continue;
        struct f_owner_ex o = {.type = F_OWNER_PID, .pid = 0};
        switch (CK_OWN_KIND(f->owner)) {
        case CK_OWN_PROCESS:
            o.pid = shim_real_getpid();
            break;
        case CK_OWN_PGRP:
            o.type = F_OWNER_PGRP;
            o.pid = (pid_t)syscall(SYS_getpgid, 0);
            break;
        case CK_OWN_THREAD:
            o.type = F_OWNER_TID;
            for (int k = 0; k < g_shim.nslots; k++)
                if (g_shim.slots[k].vtid == (pid_t)CK_OWN_ID(f->owner))
                    o.pid = g_shim.slots[k].tid;
            if (!o.pid) {
                snprintf(err, errlen, "fd %d: the thread %u that got its signals is gone",
                         f->fd, CK_OWN_ID(f->owner));
                return -1;
            }
            break;
        case CK_OWN_TREE:
            for (uint32_t k = 0; k < g_shim.ntree; k++)
                if (g_shim.tree[k].vpid == (pid_t)CK_OWN_ID(f->owner))
                    o.pid = g_shim.tree[k].real;
            if (!o.pid) {
                snprintf(err, errlen, "fd %d: the process %u of the tree that got its signals "
                         "is not in the tree's map", f->fd, CK_OWN_ID(f->owner));
                return -1;
            }
            break;
        case CK_OWN_TREE_PGRP:
            o.type = F_OWNER_PGRP;
            o.pid = shim_pgrp_real((pid_t)CK_OWN_ID(f->owner));
            break;
        default:
            break;
        }
        if ((o.pid && rawfcntl(f->fd, F_SETOWN_EX, &o) < 0) ||
            (f->sig && rawfcntl(f->fd, F_SETSIG, (int)f->sig) < 0)) {
            snprintf(err, errlen, "fd %d: cannot give back who gets its signals: %s", f->fd,
                     strerror(errno));
            return -1;
        }
        if (f->oflags & O_ASYNC) {
            /* the reopened file may carry the flag without the kernel
             * having armed it (open ignores it): off, then on */
            int fl = rawfcntl(f->fd, F_GETFL, 0);
            if (fl < 0 || rawfcntl(f->fd, F_SETFL, fl & ~O_ASYNC) < 0 ||
                rawfcntl(f->fd, F_SETFL, fl | O_ASYNC) < 0) {
                snprintf(err, errlen, "fd %d: cannot turn signal-driven I/O (O_ASYNC) back on: "
                         "%s", f->fd, strerror(errno));
                return -1;
            }
        }
    }
    return 0;
}
