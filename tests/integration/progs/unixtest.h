/* unixtest.h - helpers for the AF_UNIX test programs (unix_*.c). */
#ifndef CKSHIM_UNIXTEST_H
#define CKSHIM_UNIXTEST_H

#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Fill sa with the path name, or with the abstract name (a leading 0
 * byte, then name) if abstract; returns the address length. */
static inline socklen_t unix_addr(struct sockaddr_un *sa, const char *name, int abstract)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(sa->sun_path + (abstract ? 1 : 0), name, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (abstract ? 1 : 0));
}

#endif
