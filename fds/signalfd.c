/* signalfd.c - signalfd descriptors (CK_FD_SIGNALFD).
 *
 * A signalfd holds only its mask (fdinfo `sigmask:`); the signals it
 * reads are the pending signals of the thread that reads and of its
 * process, which the shim saves and queues again after every restore
 * (with their siginfo where the kernel lets it, see docs/DESIGN.md).
 * Restore makes a new signalfd with the mask and O_NONBLOCK; a read then
 * sees those signals as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "fdkind.h"

static int signalfd_capture(struct ck_fdcap *c)
{
    if (strcmp(c->target, "anon_inode:[signalfd]"))
        return 0;
    const char *p = c->infolen > 0 ? strstr(c->info, "sigmask:") : NULL;
    if (!p) {
        snprintf(c->err, c->errlen, "fd %d is a signalfd whose fdinfo shows no sigmask", c->fd);
        return -1;
    }
    struct ck_signalfd s = {.sigmask = strtoull(p + 8, NULL, 16)};
    c->f->kind = CK_FD_SIGNALFD;
    c->f->aux = s.sigmask;
    return c->state(c, &s, sizeof s) < 0 ? -1 : 1;
}

static int signalfd_restore(struct ck_fdrest *r)
{
    const struct ck_signalfd *s = r->state;
    if (!s || r->state_len < sizeof *s) {
        snprintf(r->err, r->errlen, "fd %d: signalfd without its state in the image", r->f->fd);
        return -1;
    }
    sigset_t mask;
    sigemptyset(&mask);
    for (int sig = 1; sig <= 64; sig++)
        if (s->sigmask & (1ULL << (sig - 1)))
            sigaddset(&mask, sig);
    /* no SFD_CLOEXEC: the shim sets the descriptor flags after restore */
    int fd = signalfd(-1, &mask, (r->f->oflags & O_NONBLOCK) ? SFD_NONBLOCK : 0);
    if (fd < 0)
        snprintf(r->err, r->errlen, "fd %d: cannot create a signalfd for mask %016llx: %s",
                 r->f->fd, (unsigned long long)s->sigmask, strerror(errno));
    return fd;
}

static void signalfd_describe(const struct ck_fd *f, const void *state, size_t len, char *out,
                              size_t outlen)
{
    (void)f;
    const struct ck_signalfd *s = state;
    if (!s || len < sizeof *s) {
        snprintf(out, outlen, "signalfd (no state)");
        return;
    }
    int n = snprintf(out, outlen, "signalfd for");
    for (int sig = 1; sig <= 64 && n > 0 && (size_t)n < outlen; sig++)
        if (s->sigmask & (1ULL << (sig - 1)))
            n += snprintf(out + n, outlen - (size_t)n, " %d", sig);
}

const struct ck_fdkind ck_fdkind_signalfd = {
    .kind = CK_FD_SIGNALFD,
    .name = "signalfd",
    .capture = signalfd_capture,
    .restore = signalfd_restore,
    .describe = signalfd_describe,
};
