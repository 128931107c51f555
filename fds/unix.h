/* unix.h - AF_UNIX sockets (fds/unix.c). */
#ifndef CKSHIM_FDS_UNIX_H
#define CKSHIM_FDS_UNIX_H

#include <stddef.h>
#include <stdint.h>

#include "fdkind.h"

extern const struct ck_fdkind ck_fdkind_unix;

/* One line about a CK_FD_UNIX descriptor (coord inspect). */
void ck_unix_describe(const struct ck_fd *f, const void *state, size_t len, char *out,
                      size_t outlen);

/* The image's unix sockets that cannot come back as they were: connections
 * to outside the program (dead after restore) and listeners whose waiting
 * clients closed or belong to other processes (accepted after restore as
 * closed connections), as "fd N (...), ..." in out.
 * Returns how many. */
struct ck_image;

/* Capture, for a unix socket fd whose queue holds descriptors in flight
 * (SCM_RIGHTS; its fdinfo "scm_fds:" is not 0): each of them that none of
 * prog[] (the program's fds) nor hidden[0..*nhidden) holds (the same open
 * file description) is kept as a copy appended to hidden[] (at most max
 * in all), at a number above all of prog[], so that the capture takes it
 * like the program's own (CK_FDF_IN_FLIGHT), walking its queue in turn if
 * it is a unix socket. The caller closes hidden[] once the checkpoint is
 * over. Returns 0, or -1 (err set). */
int ck_unix_inflight(int fd, const int *prog, int nprog, int *hidden, int *nhidden, int max,
                     char *err, size_t errlen);
/* coord, a tree's merged set of sockets: peers and listeners now in the
 * set are inside (CK_UNIXF_PEER_IN, CK_UNIXF_QUEUED). */
int ck_unix_relink(struct ck_fdcap_set *s);
int ck_unix_outside(const struct ck_image *im, char *out, size_t outlen);

#endif
