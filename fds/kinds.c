/* kinds.c - the table of descriptor kinds that live in fds/.
 *
 * Capture asks each kind in this order whether a descriptor is its own,
 * so a kind that recognises its descriptors by a narrower test comes
 * before a broader one. Restore finds the kind by its number. */
#include <stddef.h>

#include "fdkind.h"

extern const struct ck_fdkind ck_fdkind_eventfd;
extern const struct ck_fdkind ck_fdkind_pipe;
extern const struct ck_fdkind ck_fdkind_epoll;
extern const struct ck_fdkind ck_fdkind_pidfd;
extern const struct ck_fdkind ck_fdkind_tty;
extern const struct ck_fdkind ck_fdkind_pty;

const struct ck_fdkind *const ck_fdkinds[] = {
    &ck_fdkind_eventfd,
    &ck_fdkind_pipe,
    &ck_fdkind_epoll,
    &ck_fdkind_pidfd,
    &ck_fdkind_tty,
    &ck_fdkind_pty,
    NULL,
};

const struct ck_fdkind *ck_fdkind_of(uint32_t kind)
{
    for (const struct ck_fdkind *const *k = ck_fdkinds; *k; k++)
        if ((*k)->kind == kind)
            return *k;
    return NULL;
}
