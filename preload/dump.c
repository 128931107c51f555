/* dump.c - write the image: header, metadata records, file data, pages.
 *
 * Runs in the writer child (a copy-on-write snapshot of the program made
 * right after capture) or, with --no-fork, in the manager while the
 * program is parked. Either way: no heap, no stdio, no libc locks; scratch
 * buffers are mmap'd here.
 *
 * Which pages go into the image (pagemap bits: 63 present, 62 swapped,
 * 61 file page or shared anonymous):
 *   private anonymous     present or swapped, and not all zero
 *   private file mapping  present and not a file page (COW'd), or swapped
 *   shared anonymous      resident (mincore): the child's page tables of
 *                         shared mappings are empty after fork
 *   shared file mapping   none: the file holds them
 *   deleted/replaced file every page, read through /proc/self/mem so that
 *                         pages past the end of the file fail softly
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "chunk.h"
#include "imgio.h"
#include "shim.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define BATCH 512

struct writer {
    int fd;
    int pagemap_fd;
    int mem_fd;
    void *state;                        /* LZ4 state */
    uint8_t *out;                       /* compressed output */
    size_t out_cap;
    uint8_t *copy;                      /* pages read via /proc/self/mem */
    uint64_t *pm;                       /* pagemap batch */
    unsigned char *mc;                  /* mincore batch */
    struct ck_end end;
    char *err;
    size_t errlen;
};

static int put_rec(struct writer *w, uint32_t type, uint32_t flags, const void *payload,
                   uint64_t len, uint64_t raw_len, uint64_t arg, uint64_t arg2)
{
    int r = ck_write_rec(w->fd, type, flags, payload, len, raw_len, arg, arg2);
    if (r < 0) {
        snprintf(w->err, w->errlen, "cannot write the image: %s", strerror(-r));
        return r;
    }
    w->end.nrecords++;
    w->end.raw_bytes += raw_len;
    w->end.stored_bytes += len;
    return 0;
}

/* Two-part record payload (array + string table) without a copy. */
static int put_rec2(struct writer *w, uint32_t type, const void *a, size_t alen, const void *b,
                    size_t blen, uint64_t arg)
{
    struct ck_rec rec;
    memset(&rec, 0, sizeof rec);
    rec.type = type;
    rec.len = alen + blen;
    rec.raw_len = alen + blen;
    rec.arg = arg;
    /* The checksum covers the payload as one byte string: build it in the
     * scratch buffer when it fits, else fall back to two writes through a
     * temporary mapping. */
    size_t n = alen + blen;
    uint8_t *buf = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                        0);
    if (buf == MAP_FAILED) {
        snprintf(w->err, w->errlen, "out of memory while writing the image");
        return -ENOMEM;
    }
    memcpy(buf, a, alen);
    memcpy(buf + alen, b, blen);
    int r = put_rec(w, type, 0, buf, n, n, arg, 0);
    munmap(buf, n ? n : 1);
    return r;
}

static int is_zero_page(const void *p)
{
    const uint64_t *q = p;
    for (size_t i = 0; i < CK_PAGE_SIZE / 8; i += 8)
        if (q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] | q[i + 7])
            return 0;
    return 1;
}

/* Compress and write npages pages starting at addr, whose bytes are at src. */
static int put_pages(struct writer *w, uint64_t addr, const void *src, size_t npages)
{
    size_t raw = npages * CK_PAGE_SIZE;
    uint32_t flags;
    size_t len;
    int r = ck_chunk_encode(w->state, src, raw, w->out, w->out_cap, &flags, &len);
    if (r < 0) {
        snprintf(w->err, w->errlen, "compression failed at %#llx", (unsigned long long)addr);
        return r;
    }
    w->end.npages += npages;
    return put_rec(w, CK_REC_PAGES, flags, w->out, len, raw, addr, 0);
}

/* Pages read through /proc/self/mem (unreadable protections, deleted
 * files). A page that cannot be read ends the region. */
static int dump_region_via_mem(struct writer *w, const struct ck_region *r)
{
    for (uint64_t a = r->start; a < r->end;) {
        size_t want = (r->end - a) / CK_PAGE_SIZE;
        if (want > CK_CHUNK_PAGES)
            want = CK_CHUNK_PAGES;
        ssize_t got = pread(w->mem_fd, w->copy, want * CK_PAGE_SIZE, (off_t)a);
        if (got <= 0)
            return 0;
        size_t np = (size_t)got / CK_PAGE_SIZE;
        if (np == 0)
            return 0;
        int rr = put_pages(w, a, w->copy, np);
        if (rr < 0)
            return rr;
        a += np * CK_PAGE_SIZE;
        if (np < want)
            return 0;
    }
    return 0;
}

static int dump_region(struct writer *w, const struct ck_region *r)
{
    uint32_t f = r->flags;
    if (f & CK_REG_SPECIAL)
        return 0;
    if ((f & CK_REG_FILE) && (f & CK_REG_SHARED) && !(f & CK_REG_ALLPAGES))
        return 0;
    if ((f & CK_REG_ALLPAGES) && !(f & CK_REG_ANON))
        return dump_region_via_mem(w, r);
    int shared = (f & CK_REG_SHARED) != 0;
    int anon_private = (f & CK_REG_ANON) && !shared;
    int via_mem = !(r->prot & PROT_READ);
    uint64_t run_start = 0;
    size_t run_len = 0;
    for (uint64_t a = r->start; a < r->end;) {
        size_t n = (r->end - a) / CK_PAGE_SIZE;
        if (n > BATCH)
            n = BATCH;
        if (shared) {
            if (mincore((void *)a, n * CK_PAGE_SIZE, w->mc) < 0)
                memset(w->mc, 1, n);
        } else {
            ssize_t got = pread(w->pagemap_fd, w->pm, n * 8, (off_t)(a / CK_PAGE_SIZE * 8));
            if (got != (ssize_t)(n * 8)) {
                snprintf(w->err, w->errlen, "cannot read /proc/self/pagemap: %s",
                         strerror(errno));
                return -EIO;
            }
        }
        for (size_t i = 0; i <= n; i++) {
            int need = 0;
            uint64_t pa = a + i * CK_PAGE_SIZE;
            if (i < n) {
                if (shared) {
                    need = w->mc[i] & 1;
                } else {
                    uint64_t e = w->pm[i];
                    if (anon_private)
                        need = (e & (PM_PRESENT | PM_SWAP)) != 0;
                    else
                        need = ((e & PM_PRESENT) && !(e & PM_FILE)) || (e & PM_SWAP);
                    if (need && anon_private && !via_mem && is_zero_page((void *)pa))
                        need = 0;
                }
            }
            if (need && run_len && run_start + run_len * CK_PAGE_SIZE == pa &&
                run_len < CK_CHUNK_PAGES) {
                run_len++;
                continue;
            }
            if (run_len) {
                const void *src = (const void *)run_start;
                if (via_mem) {
                    ssize_t got = pread(w->mem_fd, w->copy, run_len * CK_PAGE_SIZE,
                                        (off_t)run_start);
                    if (got != (ssize_t)(run_len * CK_PAGE_SIZE)) {
                        snprintf(w->err, w->errlen, "cannot read memory at %#llx",
                                 (unsigned long long)run_start);
                        return -EIO;
                    }
                    src = w->copy;
                }
                int rr = put_pages(w, run_start, src, run_len);
                if (rr < 0)
                    return rr;
                run_len = 0;
            }
            if (need && i < n) {
                run_start = pa;
                run_len = 1;
            }
        }
        a += n * CK_PAGE_SIZE;
    }
    return 0;
}

/* Contents of a deleted file or memfd, read through a fresh descriptor so
 * the program's offset does not move. */
static int dump_filedata(struct writer *w, const struct ck_fd *f)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", f->fd);
    int rfd = open(p, O_RDONLY | O_CLOEXEC);
    if (rfd < 0) {
        snprintf(w->err, w->errlen, "cannot read deleted file behind fd %d: %s", f->fd,
                 strerror(errno));
        return -errno;
    }
    uint64_t off = 0;
    for (;;) {
        ssize_t got = pread(rfd, w->copy, CK_CHUNK_PAGES * CK_PAGE_SIZE, (off_t)off);
        if (got < 0) {
            snprintf(w->err, w->errlen, "cannot read deleted file behind fd %d: %s", f->fd,
                     strerror(errno));
            close(rfd);
            return -EIO;
        }
        if (got == 0)
            break;
        uint32_t flags;
        size_t len;
        ck_chunk_encode(w->state, w->copy, (size_t)got, w->out, w->out_cap, &flags, &len);
        int r = put_rec(w, CK_REC_FILEDATA, flags, w->out, len, (uint64_t)got,
                        (uint64_t)f->fd, off);
        if (r < 0) {
            close(rfd);
            return r;
        }
        off += (uint64_t)got;
    }
    close(rfd);
    return 0;
}

/* Write the whole image to fd. Returns 0 or -errno with err set. */
int dump_image(int fd, const struct ck_header *hdr_in, struct dump_stats *st, char *err,
               size_t errlen)
{
    struct writer w;
    memset(&w, 0, sizeof w);
    w.fd = fd;
    w.err = err;
    w.errlen = errlen;
    w.out_cap = ck_chunk_bound(CK_CHUNK_PAGES * CK_PAGE_SIZE);
    size_t ssz = (ck_chunk_state_size() + 4095) & ~4095UL;
    size_t csz = CK_CHUNK_PAGES * CK_PAGE_SIZE;
    size_t total = ssz + w.out_cap + csz + BATCH * 8 + BATCH + 8192;
    char *scratch = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (scratch == MAP_FAILED) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    w.state = scratch;
    w.out = (uint8_t *)scratch + ssz;
    w.copy = w.out + ((w.out_cap + 4095) & ~4095UL);
    w.pm = (uint64_t *)(w.copy + csz);
    w.mc = (unsigned char *)(w.pm + BATCH);
    int r = -EIO;
    w.pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    w.mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    if (w.pagemap_fd < 0 || w.mem_fd < 0) {
        snprintf(err, errlen, "cannot open /proc/self/pagemap or mem: %s", strerror(errno));
        goto out;
    }

    struct ck_header h = *hdr_in;
    ck_header_seal(&h);
    if ((r = ck_write_all(fd, &h, sizeof h)) < 0) {
        snprintf(err, errlen, "cannot write the image: %s", strerror(-r));
        goto out;
    }
    g_shim.threads[g_shim.nthreads - 1].ctx = g_shim.manager_ctx;
    if ((r = put_rec(&w, CK_REC_PROC, 0, &g_shim.proc, sizeof g_shim.proc, sizeof g_shim.proc, 0,
                     0)) < 0)
        goto out;
    size_t tl = sizeof(struct ck_thread) * g_shim.nthreads;
    if ((r = put_rec(&w, CK_REC_THREADS, 0, g_shim.threads, tl, tl, g_shim.nthreads, 0)) < 0)
        goto out;
    if ((r = put_rec2(&w, CK_REC_REGIONS, g_shim.regions,
                      sizeof(struct ck_region) * g_shim.nregions, g_shim.strtab,
                      g_shim.regions_strtab_len, g_shim.nregions)) < 0)
        goto out;
    if ((r = put_rec2(&w, CK_REC_FDS, g_shim.fds, sizeof(struct ck_fd) * g_shim.nfds,
                      g_shim.strtab + g_shim.regions_strtab_len,
                      g_shim.strtab_len - g_shim.regions_strtab_len, g_shim.nfds)) < 0)
        goto out;
    for (uint32_t i = 0; i < g_shim.nfds; i++) {
        const struct ck_fd *f = &g_shim.fds[i];
        if ((f->kind == CK_FD_DELETED || f->kind == CK_FD_MEMFD) && f->share_with < 0)
            if ((r = dump_filedata(&w, f)) < 0)
                goto out;
    }
    for (uint32_t i = 0; i < shim_npipes; i++) {
        const struct shim_pipedata *pd = &shim_pipes[i];
        for (size_t off = 0; off < pd->len;) {
            size_t n = pd->len - off;
            if (n > CK_CHUNK_PAGES * CK_PAGE_SIZE)
                n = CK_CHUNK_PAGES * CK_PAGE_SIZE;
            uint32_t fl;
            size_t len;
            ck_chunk_encode(w.state, pd->data + off, n, w.out, w.out_cap, &fl, &len);
            if ((r = put_rec(&w, CK_REC_FILEDATA, fl, w.out, len, n, (uint64_t)pd->fd, off)) < 0)
                goto out;
            off += n;
        }
    }
    for (uint32_t i = 0; i < g_shim.nregions; i++)
        if ((r = dump_region(&w, &g_shim.regions[i])) < 0)
            goto out;
    struct ck_end end = w.end;
    if ((r = put_rec(&w, CK_REC_END, 0, &end, sizeof end, sizeof end, 0, 0)) < 0)
        goto out;
    st->bytes = sizeof h + w.end.stored_bytes + w.end.nrecords * sizeof(struct ck_rec);
    st->pages = w.end.npages;
    st->raw_bytes = w.end.npages * CK_PAGE_SIZE;
    r = 0;
out:
    if (w.pagemap_fd > 0)
        close(w.pagemap_fd);
    if (w.mem_fd > 0)
        close(w.mem_fd);
    munmap(scratch, total);
    return r;
}
