/* fdcap.c - the shim's side of fds/: asks each kind of fds/ whether a
 * descriptor is its own, and keeps what kinds save (their FDSTATE entries,
 * the bytes waiting in pipes and sockets) until the writer has put them in
 * the image.
 *
 * Everything runs on the manager thread while the program is parked, so
 * memory comes from mmap, never malloc. Both buffers are forgotten after
 * the checkpoint (unmapped) and after a restore (they were in the image's
 * memory but mean nothing there).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fdkind.h"
#include "fileid.h"
#include "shim.h"

struct shim_fdbytes shim_fdbytes[SHIM_MAX_FDBYTES];
uint32_t shim_nfdbytes;
static char *bytes_buf;
static size_t bytes_cap, bytes_used;

char *shim_fdstate;
size_t shim_fdstate_len;
uint32_t shim_nfdstate;
static size_t fdstate_cap;
static uint32_t state_at[SHIM_MAX_FDS]; /* per fds[] index: entry offset + 1, 0 = none */

/* Make room for `more` bytes after `used` in an mmap'd buffer, keeping
 * what is there. The buffer moves: callers hold offsets, not pointers. */
static int grow(char **buf, size_t *cap, size_t used, size_t more)
{
    if (*buf && used + more <= *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : (4u << 20);
    while (want < used + more)
        want *= 2;
    char *nb = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (nb == MAP_FAILED)
        return -ENOMEM;
    if (*buf) {
        memcpy(nb, *buf, used);
        munmap(*buf, *cap);
    }
    *buf = nb;
    *cap = want;
    return 0;
}

static char *fdbytes_reserve(size_t len, char *err, size_t errlen)
{
    if (grow(&bytes_buf, &bytes_cap, bytes_used, len) < 0) {
        snprintf(err, errlen, "out of memory for %zu bytes waiting in descriptors",
                 bytes_used + len);
        return NULL;
    }
    return bytes_buf + bytes_used;
}

/* The len bytes written at fdbytes_reserve()'s pointer belong to fd:
 * appended to its saved bytes (a kind saves all of one fd's bytes before
 * the next fd's). Entries hold offsets until fdbytes_seal(). */
static int fdbytes_commit(int fd, size_t len, char *err, size_t errlen)
{
    struct shim_fdbytes *last = shim_nfdbytes ? &shim_fdbytes[shim_nfdbytes - 1] : NULL;
    if (last && last->fd == fd) {
        last->len += len;
    } else {
        if (shim_nfdbytes >= SHIM_MAX_FDBYTES) {
            snprintf(err, errlen, "more than %d descriptors with waiting bytes",
                     SHIM_MAX_FDBYTES);
            return -E2BIG;
        }
        last = &shim_fdbytes[shim_nfdbytes++];
        last->fd = fd;
        last->off = bytes_used;
        last->len = len;
    }
    bytes_used += len;
    return 0;
}

/* Where the saved bytes of entry i are now (the buffer may have moved
 * while it grew). */
const char *fdbytes_data(uint32_t i)
{
    return bytes_buf + shim_fdbytes[i].off;
}

static int add_bytes(int fd, const void *data, size_t len, char *err, size_t errlen)
{
    char *at = fdbytes_reserve(len, err, errlen);
    if (!at)
        return -ENOMEM;
    memcpy(at, data, len);
    return fdbytes_commit(fd, len, err, errlen);
}

static int cap_bytes(struct ck_fdcap *c, const void *data, size_t len)
{
    return add_bytes(c->fd, data, len, c->err, c->errlen);
}

static int cap_state(struct ck_fdcap *c, const void *data, size_t len)
{
    uint32_t idx = (uint32_t)(uintptr_t)c->priv;
    if (state_at[idx]) {
        snprintf(c->err, c->errlen, "fd %d: state saved twice", c->fd);
        return -EINVAL;
    }
    size_t padded = (len + 7) & ~(size_t)7;
    if (len > CK_FDSTATE_MAX ||
        grow(&shim_fdstate, &fdstate_cap, shim_fdstate_len, sizeof(struct ck_fdstate) + padded)) {
        snprintf(c->err, c->errlen, "fd %d: no room for its %zu bytes of state", c->fd, len);
        return -ENOMEM;
    }
    struct ck_fdstate h = {.fd = c->fd, .kind = c->f->kind, .len = (uint32_t)len};
    char *p = shim_fdstate + shim_fdstate_len;
    memcpy(p, &h, sizeof h);
    memcpy(p + sizeof h, data, len);
    memset(p + sizeof h + len, 0, padded - len);
    state_at[idx] = (uint32_t)shim_fdstate_len + 1;
    shim_fdstate_len += sizeof h + padded;
    shim_nfdstate++;
    return 0;
}

void fdcap_reset(void)
{
    shim_nfdbytes = 0;
    bytes_used = 0;
    shim_fdstate_len = 0;
    shim_nfdstate = 0;
    memset(state_at, 0, sizeof state_at);
}

void fdcap_forget(int unmap)
{
    if (unmap) {
        if (bytes_buf)
            munmap(bytes_buf, bytes_cap);
        if (shim_fdstate)
            munmap(shim_fdstate, fdstate_cap);
    }
    bytes_buf = shim_fdstate = NULL;
    bytes_cap = fdstate_cap = 0;
    fdcap_reset();
}

static int cap_vtid_of(struct ck_fdcap *c, int tid)
{
    for (int k = 0; k < g_shim.nslots; k++)
        if (g_shim.slots[k].tid == tid)
            return g_shim.slots[k].vtid;
    return 0;
}

static int cap_vpid_of(struct ck_fdcap *c, int pid)
{
    return shim_pid_virt(pid);
}

static int set_pid_of(struct ck_fdcap_set *s, int vpid)
{
    return shim_pid_real(vpid);
}

static void cap_tty(struct ck_fdcap *c)
{
    capture_tty(c->fd, c->st);
}

static uint32_t cap_gen;
static const int *cap_all, *cap_nall;

void fdcap_list(const int *all, const int *nall)
{
    cap_gen++;
    cap_all = all;
    cap_nall = nall;
}

/* Ask every kind of fds/ about fds[idx]. 1: one took it; 0: none did
 * (the caller's own kinds are next); negative: refused, err set. */
int fdcap_try(uint32_t idx, const struct stat *st, char *target, const char **path,
              const char *info, int infolen, const struct ck_fdinfo *fi, int family,
              const struct sockaddr_storage *name, unsigned int namelen,
              const struct socktrack_info *known, char *err, size_t errlen)
{
    struct ck_fd *f = &g_shim.fds[idx];
    struct ck_fdcap c = {
        .fd = f->fd, .f = f, .st = st, .target = target, .path = target,
        .info = info, .infolen = infolen, .fi = fi, .family = family, .gen = cap_gen,
        .name = name, .namelen = namelen,
        .all = cap_all, .nall = cap_nall, .err = err, .errlen = errlen,
        .state = cap_state, .bytes = cap_bytes, .vtid_of = cap_vtid_of, .tty = cap_tty,
        .vpid_of = cap_vpid_of, .tree = g_shim.tree_ckpt,
        .nopeek = shim_nopeek(f->fd),
        .priv = (void *)(uintptr_t)idx,
    };
    if (known && known->family == family) {
        c.sock_type = known->type;
        c.sock_protocol = known->protocol;
        c.sock_set = known->flags & ST_OPTS ? known->optset : 0;
    }
    for (const struct ck_fdkind *const *k = ck_fdkinds; *k; k++) {
        if (!(*k)->capture)
            continue; /* captured by another kind of its file (file.c) */
        int r = (*k)->capture(&c);
        if (r) {
            *path = c.path;
            if (r > 0 && !f->kind) {
                snprintf(err, errlen, "fd %d: %s capture set no kind", f->fd, (*k)->name);
                return -EINVAL;
            }
            return r;
        }
    }
    return 0;
}

static const char *set_path(struct ck_fdcap_set *s, uint32_t i)
{
    return g_shim.strtab + g_shim.regions_strtab_len + s->fds[i].path_off;
}

static void *set_state(struct ck_fdcap_set *s, uint32_t i, size_t *len)
{
    if (i >= s->n || !state_at[i])
        return NULL;
    char *p = shim_fdstate + state_at[i] - 1;
    struct ck_fdstate h;
    memcpy(&h, p, sizeof h);
    if (len)
        *len = h.len;
    return p + sizeof h;
}

static int set_bytes(struct ck_fdcap_set *s, uint32_t i, const void *data, size_t len)
{
    return add_bytes(s->fds[i].fd, data, len, s->err, s->errlen);
}

/* CKSHIM_FILE_VERSION_MAX: bytes, or with a K, M or G suffix. */
static uint64_t version_max(void)
{
    const char *e = shim_env("CKSHIM_FILE_VERSION_MAX");
    if (!e || !*e)
        return CK_VER_MAX_DEFAULT;
    char *end;
    unsigned long long v = strtoull(e, &end, 10);
    switch (*end) {
    case 'k': case 'K': v <<= 10; break;
    case 'm': case 'M': v <<= 20; break;
    case 'g': case 'G': v <<= 30; break;
    default: break;
    }
    return v;
}

/* The files not to save at their checkpoint version: the request's
 * (--shared-file, by (dev, ino)) and CKSHIM_SHARED_FILES (paths separated
 * by ':', looked at now, so a link or a relative name finds its file). */
static uint32_t shared_files(uint64_t (*out)[2], uint32_t cap)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < g_shim.ckpt_nshared && n < cap; k++, n++) {
        out[n][0] = g_shim.ckpt_shared[k][0];
        out[n][1] = g_shim.ckpt_shared[k][1];
    }
    const char *e = shim_env("CKSHIM_SHARED_FILES");
    while (e && *e && n < cap) {
        const char *c = strchr(e, ':');
        size_t l = c ? (size_t)(c - e) : strlen(e);
        char p[CK_PATH_MAX];
        struct stat st;
        if (l && l < sizeof p) {
            memcpy(p, e, l);
            p[l] = 0;
            if (stat(p, &st) == 0) {
                out[n][0] = st.st_dev;
                out[n][1] = st.st_ino;
                n++;
            }
        }
        e = c ? c + 1 : NULL;
    }
    return n;
}

/* Every descriptor is captured: kinds that pair descriptors look again. */
int fdcap_finish(char *err, size_t errlen)
{
    static uint64_t shared[64][2];
    const char *v = shim_env("CKSHIM_FILE_VERSIONS");
    struct ck_fdcap_set s = {
        .fds = g_shim.fds, .n = g_shim.nfds, .err = err, .errlen = errlen,
        .path = set_path, .state = set_state, .bytes = set_bytes, .tree = g_shim.tree_ckpt,
        .nopeek = shim_nopeek,
        .versions = !g_shim.ckpt_noversions &&
                    !(v && (!strcmp(v, "0") || !strcmp(v, "off") || !strcmp(v, "no"))),
        .shared = (const uint64_t (*)[2])shared, .version_max = version_max(),
    };
    s.nshared = shared_files(shared, 64);
    for (const struct ck_fdkind *const *k = ck_fdkinds; *k; k++) {
        if (!(*k)->finish)
            continue;
        int r = (*k)->finish(&s);
        if (r < 0)
            return r;
    }
    return 0;
}

static int set_tid_of(struct ck_fdcap_set *s, int vtid)
{
    for (int k = 0; k < g_shim.nslots; k++)
        if (g_shim.slots[k].vtid == vtid)
            return g_shim.slots[k].tid;
    return 0;
}

/* After a restore, once the threads are back and before the program
 * runs: what kinds finish in the program itself (pidfds of threads). */
int fdcap_resumed(char *err, size_t errlen)
{
    struct ck_fdcap_set s = {
        .fds = g_shim.fds, .n = g_shim.nfds, .err = err, .errlen = errlen,
        .path = set_path, .tid_of = set_tid_of, .pid_of = set_pid_of,
    };
    for (const struct ck_fdkind *const *k = ck_fdkinds; *k; k++) {
        if (!(*k)->resumed)
            continue;
        int r = (*k)->resumed(&s);
        if (r < 0)
            return r;
    }
    return 0;
}
