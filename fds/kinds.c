/* kinds.c - the table of descriptor kinds that live in fds/.
 *
 * Capture asks each kind in this order whether a descriptor is its own,
 * so a kind that recognises its descriptors by a narrower test comes
 * before a broader one. Restore finds the kind by its number. */
#include <stddef.h>

#include "fdkind.h"

extern const struct ck_fdkind ck_fdkind_eventfd;
extern const struct ck_fdkind ck_fdkind_unix;
extern const struct ck_fdkind ck_fdkind_socket_other;

const struct ck_fdkind *const ck_fdkinds[] = {
    &ck_fdkind_eventfd,
    &ck_fdkind_unix,
    &ck_fdkind_socket_other,   /* after every socket kind: refuses the rest by name */
    NULL,
};

const struct ck_fdkind *ck_fdkind_of(uint32_t kind)
{
    for (const struct ck_fdkind *const *k = ck_fdkinds; *k; k++)
        if ((*k)->kind == kind)
            return *k;
    return NULL;
}
