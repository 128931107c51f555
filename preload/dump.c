/* dump.c - write the image: header, metadata records, file data, pages.
 *
 * Runs in the writer child (a copy-on-write snapshot of the program made
 * right after capture) or, with --no-fork, in the manager while the
 * program is parked. Either way: no heap, no stdio, no libc locks; scratch
 * buffers are mmap'd here.
 *
 * Pages are compressed by a team of raw threads (one per CPU): memory is
 * cut into jobs of up to CK_CHUNK_PAGES pages; a worker picks a job,
 * selects its pages, compresses each run of them straight from memory
 * into the job's output slot as finished records; the calling thread
 * writes the slots out strictly in job order, so the image does not
 * depend on timing. Workers share the caller's TLS, so they call nothing
 * that touches errno: raw syscalls only.
 *
 * Which pages go into the image (pagemap bits: 63 present, 62 swapped,
 * 61 file page or shared anonymous; 58 a guard page, never present, never
 * read (reading it would kill the reader): the GUARDS record lists them):
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
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "chunk.h"
#include "ctlproto.h"
#include "auth.h"
#include "fileid.h"
#include "imgio.h"
#include "rawsys.h"
#include "shim.h"
#include "xxh64.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define PM_GUARD (1ULL << 58)           /* MADV_GUARD_INSTALL (Linux 6.14+): reading faults */
#define SLOTS 16
#define PROBE_MIN 16                    /* pages: shorter runs are compressed, not probed */
#define MAX_WORKERS 16
#define JOB_PAGES CK_CHUNK_PAGES
#define SLOT_CAP (JOB_PAGES * CK_PAGE_SIZE + JOB_PAGES * 64 + 65536)
#define JOB_RECS 64                     /* records of a job whose start is noted */
#define NSTAGE 4                        /* O_DIRECT staging buffers */
#define STAGE_SIZE (4u << 20)
#define DIO_ALIGN 4096u
#define IO_STACK (64u << 10)
/* Set in a futex word (enq, submitted) to tell its waiters to stop: the
 * word itself changes, so a waiter that checked just before cannot sleep
 * through the wake-up. */
#define STOP_BIT 0x40000000

/* Raw syscalls for the workers (no errno). */
#define rsys ck_sys6

static void fwait(volatile int *addr, int val)
{
    rsys(SYS_futex, (long)addr, FUTEX_WAIT, val, 0, 0, 0);
}

/* fwait for at most ns nanoseconds (the caller only: errno is its own) */
static void fwait_ns(volatile int *addr, int val, int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    rsys(SYS_futex, (long)addr, FUTEX_WAIT, val, (long)&ts, 0, 0);
}

static void fwake(volatile int *addr)
{
    rsys(SYS_futex, (long)addr, FUTEX_WAKE, 0x7fffffff, 0, 0, 0);
}

/* preload/thread.S: start fn(arg) on a raw thread sharing everything. */
long shim_raw_thread(void (*fn)(void *), void *arg, void *stack_top, volatile int *ctid);

struct job {
    const struct ck_region *r;
    uint64_t addr;
    uint32_t npages;
    int seq;                            /* which job this slot holds */
    volatile int claimed;               /* someone runs it (a worker or the caller) */
    volatile int done;
    int err;                            /* -errno */
    uint64_t err_addr;
    size_t out_len;                     /* bytes of finished records in out */
    /* Raw payloads left where they are (job_emit): segment k's bytes
     * follow out[0, at) in the image, before out[at, ...). */
    uint32_t nseg;
    struct {
        size_t at, len;
        const uint8_t *p;
    } seg[CK_CHUNK_PAGES / PROBE_MIN];
    uint64_t nrec, npages_out, raw, stored;
    size_t seg_bytes;                   /* bytes of the segments so far */
    uint32_t rec_at[JOB_RECS];          /* where each record starts in the job's
                                           output (readahead_headers) */
    uint64_t seen;                      /* pages looked at that hold memory (progress) */
    uint8_t *out;
    uint8_t *digests;                   /* CK_DIGEST_BYTES per record, with MAC */
};

struct worker {
    struct writer *w;
    volatile int tid;                   /* cleared by the kernel at exit */
    void *state;                        /* LZ4 state */
    uint8_t *copy;                      /* pages read via /proc/self/mem */
    uint64_t *pm;
    unsigned char *mc;
};

struct writer {
    int fd;
    int pagemap_fd;
    int mem_fd;
    struct job jobs[SLOTS];
    volatile int enq;                   /* jobs handed out so far */
    volatile int taken;
    volatile int done_seq;
    struct worker workers[MAX_WORKERS];
    int nworkers;
    void *state;                        /* the caller's LZ4 state */
    uint8_t *out;                       /* the caller's output buffer */
    size_t out_cap;
    uint8_t *copy;
    struct ck_end end;
    const struct ck_header *hdr;        /* as written (nonce, key id) */
    const struct ck_key *key;           /* NULL: no MAC, no encryption */
    int encrypt;
    uint8_t *dig;                       /* digests of all records so far */
    uint64_t ndig, dig_cap;
    uint64_t *seeks;                    /* where coord's read-back seeks to (see
                                           readahead_headers) */
    uint64_t nseeks, seeks_cap;
    uint64_t written, synced;           /* file offsets, for writeback */
    int no_sync_range;
    int direct;                         /* writes go through the stages */
    int dio_off;                        /* O_DIRECT already cleared again */
    int saved_fl;                       /* fd's status flags before */
    uint8_t *stage_map;
    uint8_t *stage[NSTAGE];             /* STAGE_SIZE bytes each, aligned */
    size_t stage_len[NSTAGE];
    size_t staged;                      /* bytes in the current stage */
    volatile int submitted, completed;  /* stages handed to / written by I/O */
    volatile int io_err;                /* -errno from the I/O thread */
    volatile int io_tid;                /* cleared by the kernel at exit */
    int idle;                           /* the workers run at SCHED_IDLE */
    int64_t idle_until;                 /* CLOCK_MONOTONIC ns: then the caller, at
                                           normal priority, takes jobs too (0: never) */
    int64_t started;
    int64_t normal_after;               /* -1, or when the caller began to take jobs */
    volatile int takeover;              /* set then: the idle workers take no more */
    char *err;
    size_t errlen;
    /* CK_CKPT_PROGRESS: memory gone through, the estimate of all of it,
     * when coord was last told */
    uint64_t prog_done, prog_total;
    int64_t prog_last_ns;
    long test_delay_ns;                 /* CKSHIM_TEST_WRITE_DELAY_MS, per job */
    /* A tree's writer: nothing is written before coord's CK_OP_WRITE on
     * gate_fd (-1: no gate); read by whichever thread writes first */
    int gate_fd, gate_ms;
    volatile int gate_open, gate_failed;
};

/* Keep the digest of a record for the AUTH record (authenticated images). */
static int remember_digest(struct writer *w, const uint8_t *d)
{
    if (w->ndig == w->dig_cap) {
        uint64_t ncap = w->dig_cap ? w->dig_cap * 2 : 4096;
        void *nd = w->dig ? mremap(w->dig, w->dig_cap * CK_DIGEST_BYTES, ncap * CK_DIGEST_BYTES,
                                   MREMAP_MAYMOVE)
                          : mmap(NULL, ncap * CK_DIGEST_BYTES, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (nd == MAP_FAILED) {
            snprintf(w->err, w->errlen, "out of memory for record digests");
            return -ENOMEM;
        }
        w->dig = nd;
        w->dig_cap = ncap;
    }
    memcpy(w->dig + w->ndig * CK_DIGEST_BYTES, d, CK_DIGEST_BYTES);
    w->ndig++;
    return 0;
}

/* coord reads every record header back once the image is written (the
 * check that it is whole), seeking over the large payloads, 64 KiB at a
 * time (common/imgio.c). Written with O_DIRECT, none of it is in the page
 * cache, and each of those reads waited for the disk in turn (about 380
 * ms for 1 GiB, session 14). The writer knows where they will be: it
 * notes the offset after each large payload and, once everything is
 * written, asks the kernel to read all those windows in (readahead:
 * queued at once, not waited for), so coord finds them in the cache. */
#define READBACK_WINDOW 65536

static void remember_seek(struct writer *w, uint64_t off)
{
    if (w->nseeks == w->seeks_cap) {
        uint64_t ncap = w->seeks_cap ? w->seeks_cap * 2 : 4096;
        void *nd = w->seeks ? mremap(w->seeks, w->seeks_cap * 8, ncap * 8, MREMAP_MAYMOVE)
                            : mmap(NULL, ncap * 8, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (nd == MAP_FAILED)
            return; /* (only a hint) */
        w->seeks = nd;
        w->seeks_cap = ncap;
    }
    w->seeks[w->nseeks++] = off;
}

static void readahead_headers(struct writer *w)
{
    off_t end = lseek(w->fd, 0, SEEK_CUR);
    if (end < 0 || (uint64_t)end < w->written)
        return;
    uint64_t base = (uint64_t)end - w->written;
    readahead(w->fd, (off64_t)base, READBACK_WINDOW);
    for (uint64_t i = 0; i < w->nseeks; i++)
        readahead(w->fd, (off64_t)(base + w->seeks[i]), READBACK_WINDOW);
}

/* ---- output ----
 * A regular file is written with O_DIRECT: the image bypasses the page
 * cache, so writing it costs neither page-cache allocation (expensive in a
 * VM whose host reclaims freed guest memory) nor a copy into it. Bytes are
 * gathered in a ring of aligned staging buffers; an I/O thread writes each
 * full one while the caller fills the next, so the disk works while the
 * workers compress. The unaligned tail is written by the caller after
 * O_DIRECT is switched off again. A file that refuses O_DIRECT (EINVAL on
 * the first write) is written buffered by the same path; pipes and
 * sockets are written directly, and buffered files get sync_file_range
 * every 16 MiB so that the final fsync only waits for the tail. The flag
 * is set on the open file description coord passed us, so it is always
 * cleared before we return. */

/* Wait for the writer's turn (coord's CK_OP_WRITE, skipping its
 * keep-alives) before the first byte; raw syscalls (the I/O thread may
 * ask). Only one thread writes at a time, so only one asks. 0, or
 * -ECANCELED (coord aborted, went away or said nothing for gate_ms). */
static int gate_pass(struct writer *w)
{
    if (w->gate_fd < 0 || __atomic_load_n(&w->gate_open, __ATOMIC_SEQ_CST))
        return 0;
    if (w->gate_failed)
        return -ECANCELED;
    for (;;) {
        struct ck_ctl_req go;
        struct pollfd pf = {.fd = w->gate_fd, .events = POLLIN};
        long k = rsys(SYS_poll, (long)&pf, 1, w->gate_ms, 0, 0, 0);
        if (k == -EINTR)
            continue;
        size_t got = 0;
        while (k > 0 && got < sizeof go) {
            k = rsys(SYS_recvfrom, w->gate_fd, (long)((char *)&go + got),
                     (long)(sizeof go - got), MSG_WAITALL, 0, 0);
            if (k == -EINTR)
                k = 1;
            else if (k > 0)
                got += (size_t)k;
        }
        if (got < sizeof go || go.magic != CK_CTL_MAGIC ||
            (go.op != CK_OP_KEEPALIVE && go.op != CK_OP_WRITE)) {
            w->gate_failed = 1;
            return -ECANCELED;
        }
        if (go.op == CK_OP_WRITE)
            break;
    }
    __atomic_store_n(&w->gate_open, 1, __ATOMIC_SEQ_CST);
    return 0;
}

/* Write all of buf at the file's offset; raw syscalls (I/O thread).
 * Returns 0 or -errno. */
static long io_write(struct writer *w, const uint8_t *buf, size_t n)
{
    size_t done = 0;
    int g = gate_pass(w);
    if (g < 0)
        return g;
    while (done < n) {
        long k = rsys(SYS_write, w->fd, (long)(buf + done), (long)(n - done), 0, 0, 0);
        if (k == -EINTR)
            continue;
        if (k == -EINVAL && w->direct == 1 && !w->dio_off) {
            /* the file system refuses O_DIRECT after all */
            rsys(SYS_fcntl, w->fd, F_SETFL, w->saved_fl, 0, 0, 0);
            w->dio_off = 1;
            continue;
        }
        if (k < 0)
            return k;
        if (k == 0)
            return -EIO;
        done += (size_t)k;
        if ((done % DIO_ALIGN) && !w->dio_off) {
            /* a short write lost the alignment: go on buffered */
            rsys(SYS_fcntl, w->fd, F_SETFL, w->saved_fl, 0, 0, 0);
            w->dio_off = 1;
        }
    }
    return 0;
}

static void io_main(void *arg)
{
    struct writer *w = arg;
    for (;;) {
        int c = w->completed;
        int s;
        while (((s = __atomic_load_n(&w->submitted, __ATOMIC_SEQ_CST)) & ~STOP_BIT) == c) {
            if (s & STOP_BIT)
                return;
            fwait(&w->submitted, s);
        }
        int i = c % NSTAGE;
        if (!w->io_err) {
            long r = io_write(w, w->stage[i], w->stage_len[i]);
            if (r < 0)
                w->io_err = (int)r;
        }
        __atomic_store_n(&w->completed, c + 1, __ATOMIC_SEQ_CST);
        fwake(&w->completed);
    }
}

static void direct_begin(struct writer *w)
{
    struct stat st;
    off_t cur;
    int fl = fcntl(w->fd, F_GETFL);
    if (fl < 0 || (fl & (O_APPEND | O_DIRECT)) || fstat(w->fd, &st) < 0 ||
        !S_ISREG(st.st_mode) || (cur = lseek(w->fd, 0, SEEK_CUR)) < 0 || cur % DIO_ALIGN)
        return;
    size_t len = NSTAGE * (size_t)STAGE_SIZE + IO_STACK;
    uint8_t *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        return;
    if (fcntl(w->fd, F_SETFL, fl | O_DIRECT) < 0) {
        munmap(b, len);
        return;
    }
    w->saved_fl = fl;
    w->stage_map = b;
    for (int i = 0; i < NSTAGE; i++)
        w->stage[i] = b + (size_t)i * STAGE_SIZE;
    w->direct = 1;
    w->io_tid = 1;
    if (shim_raw_thread(io_main, w, b + len, &w->io_tid) < 0)
        w->io_tid = 0;                  /* write synchronously */
}

static int out_fail(struct writer *w, int r)
{
    if (w->gate_failed)
        snprintf(w->err, w->errlen, "checkpoint aborted by coord before this process's turn "
                 "to write");
    else
        snprintf(w->err, w->errlen, "cannot write the image: %s", strerror(-r));
    return r;
}

/* Hand the current stage (n bytes) to the I/O thread and take the next
 * free one. */
static int stage_submit(struct writer *w, size_t n)
{
    int i = w->submitted % NSTAGE;
    w->stage_len[i] = n;
    if (!w->io_tid) {
        long r = io_write(w, w->stage[i], n);
        w->submitted++;
        w->completed++;
        w->staged = 0;
        return r < 0 ? out_fail(w, (int)r) : 0;
    }
    __atomic_fetch_add(&w->submitted, 1, __ATOMIC_SEQ_CST);
    fwake(&w->submitted);
    w->staged = 0;
    int c;
    while (w->submitted - (c = __atomic_load_n(&w->completed, __ATOMIC_SEQ_CST)) >= NSTAGE)
        fwait(&w->completed, c);
    return w->io_err ? out_fail(w, w->io_err) : 0;
}

/* Wait until the I/O thread has written everything submitted. */
static int stage_drain(struct writer *w)
{
    int c;
    while ((c = __atomic_load_n(&w->completed, __ATOMIC_SEQ_CST)) != w->submitted)
        fwait(&w->completed, c);
    return w->io_err ? out_fail(w, w->io_err) : 0;
}

/* Sync whatever is written so far in the background (buffered mode). */
static void writeback(struct writer *w)
{
    if (w->no_sync_range || w->written - w->synced < (16u << 20))
        return;
    if (sync_file_range(w->fd, (off64_t)w->synced, (off64_t)(w->written - w->synced),
                        SYNC_FILE_RANGE_WRITE) < 0)
        w->no_sync_range = 1;
    w->synced = w->written;
}

static int out_bytes(struct writer *w, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    w->written += n;
    if (!w->direct) {
        int r = gate_pass(w);
        if (r == 0)
            r = ck_write_all(w->fd, p, n);
        if (r < 0)
            return out_fail(w, r);
        writeback(w);
        return 0;
    }
    while (n) {
        uint8_t *st = w->stage[w->submitted % NSTAGE];
        size_t k = STAGE_SIZE - w->staged;
        if (k > n)
            k = n;
        memcpy(st + w->staged, p, k);
        w->staged += k;
        p += k;
        n -= k;
        if (w->staged == STAGE_SIZE) {
            int r = stage_submit(w, STAGE_SIZE);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

/* Write what is staged: the aligned part through O_DIRECT, then the tail
 * with O_DIRECT off. */
static int out_finish(struct writer *w)
{
    if (!w->direct)
        return 0;
    uint8_t *st = w->stage[w->submitted % NSTAGE];
    size_t n = w->staged, al = n & ~(size_t)(DIO_ALIGN - 1);
    int r = al ? stage_submit(w, al) : 0;
    if (r == 0)
        r = stage_drain(w);
    if (!w->dio_off)
        fcntl(w->fd, F_SETFL, w->saved_fl);
    w->dio_off = 1;
    if (r == 0 && n > al &&
        ((r = gate_pass(w)) < 0 || (r = ck_write_all(w->fd, st + al, n - al)) < 0))
        out_fail(w, r);
    return r;
}

/* Stop the I/O thread, clear O_DIRECT, free the stages (every path). */
static void out_close(struct writer *w)
{
    if (!w->direct)
        return;
    if (w->io_tid) {
        stage_drain(w);
        __atomic_fetch_or(&w->submitted, STOP_BIT, __ATOMIC_SEQ_CST);
        fwake(&w->submitted);
        int t;
        while ((t = __atomic_load_n(&w->io_tid, __ATOMIC_SEQ_CST)) != 0)
            fwait(&w->io_tid, t);
    }
    if (!w->dio_off)
        fcntl(w->fd, F_SETFL, w->saved_fl);
    munmap(w->stage_map, NSTAGE * (size_t)STAGE_SIZE + IO_STACK);
    w->direct = 0;
}

/* Write one record. PAGES and FILEDATA payloads are encrypted in place
 * when the image is (payload must then be writable). */
static int put_rec(struct writer *w, uint32_t type, uint32_t flags, const void *payload,
                   uint64_t len, uint64_t raw_len, uint64_t arg, uint64_t arg2)
{
    struct ck_rec rec;
    ck_rec_init(&rec, type, flags, len, raw_len, arg, arg2);
    if (w->encrypt && (type == CK_REC_PAGES || type == CK_REC_FILEDATA))
        ck_crypt_payload(w->key, w->hdr, &rec, (void *)payload);
    rec.checksum = ck_rec_checksum(&rec, payload);
    int r = out_bytes(w, &rec, sizeof rec);
    if (r == 0 && len)
        r = out_bytes(w, payload, len);
    if (r < 0)
        return r;
    if (w->direct && len >= READBACK_WINDOW / 2)
        remember_seek(w, w->written);
    if (w->key && type != CK_REC_AUTH && type != CK_REC_END) {
        uint8_t d[CK_DIGEST_BYTES];
        ck_rec_digest(&rec, payload, d);
        if ((r = remember_digest(w, d)) < 0)
            return r;
    }
    w->end.nrecords++;
    w->end.raw_bytes += raw_len;
    w->end.stored_bytes += len;
    return 0;
}

/* Two-part record payload (array + string table). */
static int put_rec2(struct writer *w, uint32_t type, const void *a, size_t alen, const void *b,
                    size_t blen, uint64_t arg)
{
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

/* Do npages (at least PROBE_MIN) at src look incompressible: do 4 pages
 * spread over them all save less than 1/32 each under LZ4? Then the run
 * is stored as it is without compressing it whole: LZ4 gives up on
 * random bytes only near the end of its output, having read and written
 * it all (about 0.6 s of CPU per GiB, and memory bandwidth the program
 * wants meanwhile). dst: room for a page of scratch output. */
static int looks_incompressible(void *state, const uint8_t *src, size_t npages, uint8_t *dst,
                                size_t cap)
{
    if (npages < PROBE_MIN)
        return 0;
    for (size_t s = 0; s < 4; s++) {
        uint32_t fl;
        size_t len;
        ck_chunk_encode(state, src + npages * s / 4 * CK_PAGE_SIZE, CK_PAGE_SIZE, dst, cap, &fl,
                        &len);
        if (len < CK_PAGE_SIZE - CK_PAGE_SIZE / 32)
            return 0;
    }
    return 1;
}

/* Append one finished PAGES record for npages at addr (bytes at src) to
 * the job's output. stable: src stays as it is until the job is written
 * out (private memory of the writer's snapshot, not a worker's copy
 * buffer nor shared memory the program may change), so a raw payload
 * need not be copied into the slot: the writer thread takes it from
 * there (a copy of every incompressible byte the less). */
static void job_emit(struct worker *k, struct job *j, uint64_t addr, const void *src,
                     size_t npages, int stable)
{
    size_t raw = npages * CK_PAGE_SIZE;
    struct ck_rec *rec = (struct ck_rec *)(j->out + j->out_len);
    uint8_t *payload = (uint8_t *)(rec + 1);
    uint32_t flags;
    size_t len, cap = SLOT_CAP - j->out_len - sizeof *rec;
    struct writer *w = k->w;
    if (j->nrec < JOB_RECS)
        j->rec_at[j->nrec] = (uint32_t)(j->out_len + j->seg_bytes);
    if (looks_incompressible(k->state, src, npages, payload, cap)) {
        flags = CK_RF_RAW;
        len = raw;
        if (stable && !w->encrypt && j->nseg < sizeof j->seg / sizeof j->seg[0]) {
            ck_rec_init(rec, CK_REC_PAGES, flags, len, raw, addr, 0);
            rec->checksum = ck_rec_checksum(rec, src);
            if (w->key)
                ck_rec_digest(rec, src, j->digests + j->nrec * CK_DIGEST_BYTES);
            j->out_len += sizeof *rec;
            j->seg[j->nseg].at = j->out_len;
            j->seg[j->nseg].len = len;
            j->seg[j->nseg++].p = src;
            j->seg_bytes += len;
            goto done;
        }
        memcpy(payload, src, raw);
    } else {
        ck_chunk_encode(k->state, src, raw, payload, cap, &flags, &len);
    }
    ck_rec_init(rec, CK_REC_PAGES, flags, len, raw, addr, 0);
    if (w->encrypt)
        ck_crypt_payload(w->key, w->hdr, rec, payload);
    rec->checksum = ck_rec_checksum(rec, payload);
    if (w->key)
        ck_rec_digest(rec, payload, j->digests + j->nrec * CK_DIGEST_BYTES);
    j->out_len += sizeof *rec + len;
done:
    j->nrec++;
    j->npages_out += npages;
    j->raw += raw;
    j->stored += len;
}

/* Read n pages at addr through /proc/self/mem; returns pages read. */
static size_t mem_read(struct writer *w, struct worker *k, uint64_t addr, size_t n)
{
    long got = rsys(SYS_pread64, w->mem_fd, (long)k->copy, (long)(n * CK_PAGE_SIZE), (long)addr,
                    0, 0);
    if (got == (long)(n * CK_PAGE_SIZE))
        return n;
    /* Some page failed (past the end of a deleted file): take what reads. */
    size_t ok = 0;
    while (ok < n && rsys(SYS_pread64, w->mem_fd, (long)(k->copy + ok * CK_PAGE_SIZE),
                          CK_PAGE_SIZE, (long)(addr + ok * CK_PAGE_SIZE), 0, 0) == CK_PAGE_SIZE)
        ok++;
    return ok;
}

/* Every page of a deleted file's region is saved, but for a mapping of
 * one the program holds open: restore maps that from the recreated file,
 * so a shared one needs no pages and a private one only those changed in
 * memory, as for a mapping of a file that exists. */
static int saves_all(uint32_t f)
{
    return (f & CK_REG_ALLPAGES) && !(f & CK_REG_ANON) && !(f & CK_REG_FROMFD);
}

static void run_job(struct worker *k, struct job *j)
{
    struct writer *w = k->w;
    const struct ck_region *r = j->r;
    uint32_t f = r->flags;
    size_t n = j->npages;
    j->out_len = 0;
    j->nseg = 0;
    j->seg_bytes = 0;
    j->nrec = j->npages_out = j->raw = j->stored = j->seen = 0;
    j->err = 0;
    int all = saves_all(f);
    if (all && !(f & CK_REG_GUARDS)) {
        size_t got = mem_read(w, k, j->addr, n);
        j->seen = got;
        if (got)
            job_emit(k, j, j->addr, k->copy, got, 0);
        return;
    }
    int shared = (f & CK_REG_SHARED) != 0;
    int anon_private = (f & CK_REG_ANON) && !shared;
    int via_mem = all || !(r->prot & PROT_READ);
    /* shared hugetlb memory has no page tables in the forked writer (and
     * so nothing for mincore): every page is read, zero ones left out */
    int huge_shared = shared && (f & CK_REG_HUGETLB);
    if (all || huge_shared ||
        (shared && rsys(SYS_mincore, (long)j->addr, (long)(n * CK_PAGE_SIZE), (long)k->mc, 0, 0,
                        0) < 0))
        memset(k->mc, 1, n);
    if (!shared || (f & CK_REG_GUARDS)) {
        long got = rsys(SYS_pread64, w->pagemap_fd, (long)k->pm, (long)(n * 8),
                        (long)(j->addr / CK_PAGE_SIZE * 8), 0, 0);
        if (got != (long)(n * 8)) {
            j->err = got < 0 ? (int)got : -EIO;
            j->err_addr = j->addr;
            return;
        }
        /* guard pages (their pagemap entry looks swapped) are never read:
         * the GUARDS record lists them when smaps marked the region ("gu",
         * Linux 6.18); a kernel that does not mark them gets no image */
        for (size_t i = 0; i < n; i++) {
            if (!(k->pm[i] & PM_GUARD))
                continue;
            if (!(f & CK_REG_GUARDS)) {
                j->err = -ENOTSUP;
                j->err_addr = j->addr + i * CK_PAGE_SIZE;
                return;
            }
            k->mc[i] = 0;
        }
    }
    size_t run_start = 0, run_len = 0;
    for (size_t i = 0; i <= n; i++) {
        int need = 0;
        if (i < n) {
            if (shared) {
                j->seen += k->mc[i] & 1;
                need = (k->mc[i] & 1) &&
                       !(huge_shared && !via_mem &&
                         is_zero_page((const void *)(j->addr + i * CK_PAGE_SIZE)));
            } else {
                uint64_t e = k->pm[i];
                if (e & PM_GUARD)
                    need = 0;
                else if (all)
                    need = 1;           /* a deleted file's pages, guards aside */
                else if (anon_private)
                    need = (e & (PM_PRESENT | PM_SWAP)) != 0;
                else
                    need = ((e & PM_PRESENT) && !(e & PM_FILE)) || (e & PM_SWAP);
                j->seen += need != 0;
                if (need && anon_private && !via_mem &&
                    is_zero_page((const void *)(j->addr + i * CK_PAGE_SIZE)))
                    need = 0;
            }
        }
        if (need && run_len && run_start + run_len == i) {
            run_len++;
            continue;
        }
        if (run_len) {
            uint64_t a = j->addr + run_start * CK_PAGE_SIZE;
            if (via_mem) {
                size_t got = mem_read(w, k, a, run_len);
                if (got != run_len) {
                    j->err = -EIO;
                    j->err_addr = a;
                    return;
                }
                job_emit(k, j, a, k->copy, run_len, 0);
            } else {
                job_emit(k, j, a, (const void *)a, run_len, !shared);
            }
            run_len = 0;
        }
        if (need && i < n) {
            run_start = i;
            run_len = 1;
        }
    }
}

/* Take job j (the idx-th) to run, unless someone else has: the caller
 * takes jobs past an idle team's time limit, and a worker that claimed
 * an index then finds its slot holding that job already done and a
 * later one (seq differs) or the job running. */
static int claim_job(struct job *j, int idx)
{
    int zero = 0;
    return __atomic_load_n(&j->seq, __ATOMIC_ACQUIRE) == idx &&
           __atomic_compare_exchange_n(&j->claimed, &zero, 1, 0, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}

static void worker_main(void *arg)
{
    struct worker *k = arg;
    struct writer *w = k->w;
    if (w->idle) {
        /* CPU that nothing else wants, only (this thread: each worker
         * sets its own; the caller stays at normal priority to take over
         * at w->idle_until). Allowed unprivileged; failing, normal. */
        struct sched_param sp = {.sched_priority = 0};
        rsys(SYS_sched_setscheduler, 0, SCHED_IDLE, (long)&sp, 0, 0, 0);
    }
    for (;;) {
        int idx = __atomic_fetch_add(&w->taken, 1, __ATOMIC_SEQ_CST);
        for (;;) {
            int e = __atomic_load_n(&w->enq, __ATOMIC_SEQ_CST);
            if (idx < (e & ~STOP_BIT))
                break;
            if (e & STOP_BIT)
                return;
            fwait(&w->enq, e);
        }
        /* Past the idle limit the machine has no CPU to spare: a worker
         * that claimed a job now and got the CPU again only in a second
         * would hold back the writing in order, so the caller does the
         * rest alone. */
        if (__atomic_load_n(&w->takeover, __ATOMIC_SEQ_CST))
            return;
        struct job *j = &w->jobs[idx % SLOTS];
        if (!claim_job(j, idx))
            continue;
        run_job(k, j);
        __atomic_store_n(&j->done, 1, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&w->done_seq, 1, __ATOMIC_SEQ_CST);
        fwake(&w->done_seq);
    }
}

/* The witness of one region (see struct ck_memcheck): the pages run_job
 * would select, read by the program itself while it is parked. */
static int witness(const struct ck_region *r, struct ck_memcheck *m, int pmfd, int memfd,
                   char *err, size_t errlen)
{
    enum { N = 256 };
    uint64_t pm[N];
    unsigned char mc[N];
    static uint8_t copy[CK_PAGE_SIZE];
    uint32_t f = r->flags;
    int shared = (f & CK_REG_SHARED) != 0, anon_private = (f & CK_REG_ANON) && !shared;
    int all = saves_all(f);
    int via_mem = all || !(r->prot & PROT_READ);
    if ((f & CK_REG_FILE) && shared && !all)
        return 0;                       /* the file holds the pages */
    for (uint64_t a = r->start; a < r->end; a += N * CK_PAGE_SIZE) {
        size_t n = (r->end - a) / CK_PAGE_SIZE < N ? (r->end - a) / CK_PAGE_SIZE : N;
        if (pread(pmfd, pm, n * 8, (off_t)(a / CK_PAGE_SIZE * 8)) != (ssize_t)(n * 8)) {
            snprintf(err, errlen, "cannot read /proc/self/pagemap at %#llx",
                     (unsigned long long)a);
            return -EIO;
        }
        if (all) {
            memset(mc, 1, n);
        } else if (shared && mincore((void *)a, n * CK_PAGE_SIZE, mc) < 0) {
            memset(mc, 1, n);
        }
        for (size_t i = 0; i < n; i++) {
            if (!(pm[i] & PM_GUARD))
                continue;
            if (!(f & CK_REG_GUARDS)) {
                snprintf(err, errlen, "memory at %#llx is a guard page (MADV_GUARD_INSTALL) "
                         "that /proc/self/smaps does not show (Linux before 6.18)",
                         (unsigned long long)(a + i * CK_PAGE_SIZE));
                return -ENOTSUP;
            }
            pm[i] = 0;                  /* as run_job: never read */
            mc[i] = 0;                  /* (pm is not read for all/shared) */
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t pa = a + i * CK_PAGE_SIZE;
            int need;
            if (all || shared)
                need = mc[i] & 1;
            else if (anon_private)
                need = (pm[i] & (PM_PRESENT | PM_SWAP)) != 0;
            else
                need = ((pm[i] & PM_PRESENT) && !(pm[i] & PM_FILE)) || (pm[i] & PM_SWAP);
            if (!need)
                continue;
            const void *page = (const void *)pa;
            if (via_mem) {
                if (pread(memfd, copy, CK_PAGE_SIZE, (off_t)pa) != (ssize_t)CK_PAGE_SIZE)
                    continue;           /* past the end of a deleted file */
                page = copy;
            }
            if (is_zero_page(page))
                continue;
            m->nonzero_pages++;
            m->hash_sum += ck_xxh64(page, CK_PAGE_SIZE, pa);
        }
    }
    return 0;
}

/* Witnesses of every region marked MADV_DONTFORK or MADV_WIPEONFORK into
 * g_shim.memcheck. Returns 0 or -errno with err set. */
int dump_witnesses(char *err, size_t errlen)
{
    g_shim.nmemcheck = 0;
    int pmfd = -1, memfd = -1, r = 0;
    for (uint32_t i = 0; i < g_shim.nregions && r == 0; i++) {
        const struct ck_region *reg = &g_shim.regions[i];
        if (!(reg->flags & (CK_REG_DONTFORK | CK_REG_WIPEONFORK)) || (reg->flags & CK_REG_SPECIAL))
            continue;
        if (pmfd < 0 && ((pmfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0 ||
                         (memfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC)) < 0)) {
            snprintf(err, errlen, "cannot open /proc/self/pagemap or mem: %s", strerror(errno));
            r = -EIO;
            break;
        }
        struct ck_memcheck *m = &g_shim.memcheck[g_shim.nmemcheck];
        memset(m, 0, sizeof *m);
        m->region = i;
        m->flags = reg->flags;
        if ((r = witness(reg, m, pmfd, memfd, err, errlen)) == 0)
            g_shim.nmemcheck++;
    }
    if (pmfd >= 0)
        close(pmfd);
    if (memfd >= 0)
        close(memfd);
    return r;
}

static int wants_pages(const struct ck_region *r)
{
    if (r->flags & CK_REG_SPECIAL)
        return 0;
    if ((r->flags & CK_REG_FILE) && (r->flags & CK_REG_SHARED) && !saves_all(r->flags))
        return 0;
    return 1;
}

/* CK_CKPT_PROGRESS: how much memory the writer will go through, from
 * /proc/self/smaps_rollup (the pages a fork shares with the program
 * count here as they do in the program), read before the writer's own
 * buffers exist; regions saved whole add their size. An estimate: shared
 * memory is not in it (coord raises the total when it is passed). */
static uint64_t progress_total(void)
{
    char buf[4096];
    uint64_t kb = 0, all = 0;
    if (shim_read_file("/proc/self/smaps_rollup", buf, sizeof buf) > 0)
        for (const char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
            if (!strncmp(p, "Anonymous:", 10) || !strncmp(p, "Swap:", 5))
                kb += strtoull(strchr(p, ':') + 1, NULL, 10);
    for (uint32_t i = 0; i < g_shim.nregions; i++)
        if (wants_pages(&g_shim.regions[i]) && saves_all(g_shim.regions[i].flags))
            all += g_shim.regions[i].end - g_shim.regions[i].start;
    return kb * 1024 + all;
}

/* Tell coord how far the writer is (CK_STATUS_PROGRESS), at most four
 * times a second. Never blocks: a reply that does not fit in the socket
 * now (coord busy with another process of a tree) is left out; the reply
 * is one message of the stream, queued whole or not at all. */
static void progress_tick(struct writer *w, uint64_t pages)
{
    w->prog_done += pages * CK_PAGE_SIZE;
    if (w->test_delay_ns && pages) {
        struct timespec ts = {0, w->test_delay_ns};
        rsys(SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0);
    }
    if (!g_shim.progress)
        return;
    int64_t now = shim_now_ns(CLOCK_MONOTONIC);
    if (now - w->prog_last_ns < 250000000LL)
        return;
    w->prog_last_ns = now;
    struct ck_ctl_rep rep;
    memset(&rep, 0, sizeof rep);
    rep.magic = CK_CTL_MAGIC;
    rep.status = CK_STATUS_PROGRESS;
    rep.raw_bytes = w->prog_done;
    rep.bytes = w->prog_total;
    rsys(SYS_sendto, g_shim.progress_conn, (long)&rep, sizeof rep, MSG_NOSIGNAL | MSG_DONTWAIT,
         0, 0);
}

/* Should the caller run jobs itself: 0 yes (no workers, or an idle team
 * past its time limit), > 0 not for that many ns, < 0 never. Past the
 * limit the caller also asks for normal I/O priority again, for itself
 * and the I/O thread (raising an idle one back is allowed unprivileged,
 * unlike SCHED_IDLE). */
static int64_t caller_works(struct writer *w)
{
    if (w->nworkers == 0 || w->normal_after >= 0)
        return 0;
    if (!w->idle || !w->idle_until)
        return -1;
    int64_t t = shim_now_ns(CLOCK_MONOTONIC);
    if (t < w->idle_until)
        return w->idle_until - t;
    w->normal_after = t - w->started;
    __atomic_store_n(&w->takeover, 1, __ATOMIC_SEQ_CST);
    /* IOPRIO_WHO_PROCESS (a thread), IOPRIO_CLASS_BE (2) << 13, level 4 */
    rsys(SYS_ioprio_set, 1, 0, 2 << 13 | 4, 0, 0, 0);
    int io = w->io_tid;
    if (io > 0)
        rsys(SYS_ioprio_set, 1, io, 2 << 13 | 4, 0, 0, 0);
    return 0;
}

/* The caller runs the first job from next on that no one has taken.
 * Returns 1 if it ran one. */
static int run_one(struct writer *w, int next)
{
    int enq = __atomic_load_n(&w->enq, __ATOMIC_SEQ_CST) & ~STOP_BIT;
    for (int idx = next; idx < enq; idx++) {
        struct job *j = &w->jobs[idx % SLOTS];
        if (!claim_job(j, idx))
            continue;
        run_job(&w->workers[MAX_WORKERS - 1], j);
        __atomic_store_n(&j->done, 1, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&w->done_seq, 1, __ATOMIC_SEQ_CST);
        return 1;
    }
    return 0;
}

/* Feed every region to the workers and write their output in order. */
static int dump_pages(struct writer *w)
{
    uint32_t ri = 0;
    uint64_t addr = g_shim.nregions ? g_shim.regions[0].start : 0;
    int next = 0, total_known = 0, total = 0;
    for (;;) {
        /* Hand out jobs while slots are free. */
        while (!total_known && w->enq - next < SLOTS) {
            while (ri < g_shim.nregions &&
                   (!wants_pages(&g_shim.regions[ri]) || addr >= g_shim.regions[ri].end)) {
                ri++;
                if (ri < g_shim.nregions)
                    addr = g_shim.regions[ri].start;
            }
            if (ri >= g_shim.nregions) {
                total_known = 1;
                total = w->enq;
                break;
            }
            const struct ck_region *r = &g_shim.regions[ri];
            struct job *j = &w->jobs[w->enq % SLOTS];
            uint64_t left = (r->end - addr) / CK_PAGE_SIZE;
            j->r = r;
            j->addr = addr;
            j->npages = (uint32_t)(left > JOB_PAGES ? JOB_PAGES : left);
            j->done = 0;
            __atomic_store_n(&j->seq, w->enq, __ATOMIC_SEQ_CST);
            __atomic_store_n(&j->claimed, 0, __ATOMIC_SEQ_CST);
            addr += (uint64_t)j->npages * CK_PAGE_SIZE;
            __atomic_fetch_add(&w->enq, 1, __ATOMIC_SEQ_CST);
            fwake(&w->enq);
        }
        if (total_known && next >= total)
            return 0;
        struct job *j = &w->jobs[next % SLOTS];
        int seq = __atomic_load_n(&w->done_seq, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&j->done, __ATOMIC_SEQ_CST)) {
            int64_t left = caller_works(w);
            if (left == 0 && run_one(w, next))
                continue;
            /* a job done, or the idle limit, or (past it) a look again
             * soon for a job no worker has started */
            if (left < 0)
                fwait(&w->done_seq, seq);
            else
                fwait_ns(&w->done_seq, seq, left ? left : 2000000);
            continue;
        }
        if (j->err == -ENOTSUP) {
            snprintf(w->err, w->errlen, "memory at %#llx is a guard page (MADV_GUARD_INSTALL) "
                     "that /proc/self/smaps does not show (Linux before 6.18)",
                     (unsigned long long)j->err_addr);
            return j->err;
        }
        if (j->err) {
            snprintf(w->err, w->errlen, "cannot read memory at %#llx: %s",
                     (unsigned long long)j->err_addr, strerror(-j->err));
            return j->err;
        }
        /* (a job's first record follows the last one's payload) */
        if (w->direct)
            for (uint64_t d = 0; d < j->nrec && d < JOB_RECS; d++)
                remember_seek(w, w->written + j->rec_at[d]);
        size_t at = 0;
        for (uint32_t sg = 0; sg <= j->nseg; sg++) {
            size_t upto = sg < j->nseg ? j->seg[sg].at : j->out_len;
            int r = upto > at ? out_bytes(w, j->out + at, upto - at) : 0;
            if (r == 0 && sg < j->nseg)
                r = out_bytes(w, j->seg[sg].p, j->seg[sg].len);
            if (r < 0)
                return r;
            at = upto;
        }
        if (w->key)
            for (uint64_t d = 0; d < j->nrec; d++) {
                int r = remember_digest(w, j->digests + d * CK_DIGEST_BYTES);
                if (r < 0)
                    return r;
            }
        w->end.nrecords += j->nrec;
        w->end.npages += j->npages_out;
        w->end.raw_bytes += j->raw;
        w->end.stored_bytes += j->stored;
        progress_tick(w, j->seen);
        next++;
    }
}

/* The GUARDS record: the runs of guard pages in the regions smaps marked
 * "gu", from the pagemap (guard markers survive the fork). */
static int dump_guards(struct writer *w)
{
    enum { N = JOB_PAGES };
    uint64_t cap = 0;
    for (uint32_t i = 0; i < g_shim.nregions; i++) {
        const struct ck_region *r = &g_shim.regions[i];
        if ((r->flags & CK_REG_GUARDS) && !(r->flags & CK_REG_SPECIAL))
            cap += ((r->end - r->start) / CK_PAGE_SIZE + 1) / 2;
    }
    if (!cap)
        return 0;
    size_t bytes = cap * sizeof(struct ck_guard) + N * 8;
    uint8_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        snprintf(w->err, w->errlen, "out of memory");
        return -ENOMEM;
    }
    uint64_t *pm = (uint64_t *)buf;
    struct ck_guard *g = (struct ck_guard *)(buf + N * 8);
    uint64_t n = 0;
    int r = 0;
    for (uint32_t i = 0; i < g_shim.nregions && !r; i++) {
        const struct ck_region *reg = &g_shim.regions[i];
        if (!(reg->flags & CK_REG_GUARDS) || (reg->flags & CK_REG_SPECIAL))
            continue;
        for (uint64_t a = reg->start; a < reg->end && !r; a += N * CK_PAGE_SIZE) {
            size_t cnt = (reg->end - a) / CK_PAGE_SIZE < N ? (reg->end - a) / CK_PAGE_SIZE : N;
            if (pread(w->pagemap_fd, pm, cnt * 8, (off_t)(a / CK_PAGE_SIZE * 8)) !=
                (ssize_t)(cnt * 8)) {
                snprintf(w->err, w->errlen, "cannot read /proc/self/pagemap at %#llx",
                         (unsigned long long)a);
                r = -EIO;
                break;
            }
            for (size_t k = 0; k < cnt; k++) {
                if (!(pm[k] & PM_GUARD))
                    continue;
                uint64_t p = a + k * CK_PAGE_SIZE;
                if (n && g[n - 1].end == p)
                    g[n - 1].end = p + CK_PAGE_SIZE;
                else {
                    g[n].start = p;
                    g[n++].end = p + CK_PAGE_SIZE;
                }
            }
        }
    }
    if (!r && n > (1u << 20)) {
        snprintf(w->err, w->errlen, "more than %u runs of guard pages", 1u << 20);
        r = -E2BIG;
    }
    if (!r && n)
        r = put_rec(w, CK_REC_GUARDS, 0, g, n * sizeof *g, n * sizeof *g, n, 0);
    munmap(buf, bytes);
    return r;
}

/* Everything readable from rfd (closed here) as FILEDATA records with
 * this arg; what names the file in messages. */
static int dump_file_contents(struct writer *w, int rfd, uint64_t arg, const char *what)
{
    if (rfd < 0) {
        snprintf(w->err, w->errlen, "cannot read %s: %s", what, strerror(errno));
        return -errno;
    }
    /* A deleted file or memfd: only its data, extent by extent (SEEK_DATA,
     * SEEK_HOLE), so that its holes are holes again after restore, which
     * sets the size (a sparse 1 GiB file must not come back allocated).
     * The saved files of mapped regions are read whole (restore counts
     * their bytes). */
    int sparse = !(arg & CK_FILEDATA_REGION);
    uint64_t off = 0, data_end = 0;
    for (;;) {
        size_t want = JOB_PAGES * CK_PAGE_SIZE;
        if (sparse && off >= data_end) {
            off_t d = lseek(rfd, (off_t)off, SEEK_DATA), h;
            if (d < 0 && errno == ENXIO)
                break;                  /* nothing but a hole up to the end */
            if (d < 0 || (h = lseek(rfd, d, SEEK_HOLE)) <= d) {
                sparse = 0;             /* cannot tell: read it all */
            } else {
                off = (uint64_t)d;
                data_end = (uint64_t)h;
            }
        }
        if (sparse && data_end - off < want)
            want = (size_t)(data_end - off);
        ssize_t got = pread(rfd, w->copy, want, (off_t)off);
        if (got < 0) {
            snprintf(w->err, w->errlen, "cannot read %s: %s", what, strerror(errno));
            close(rfd);
            return -EIO;
        }
        if (got == 0)
            break;
        uint32_t flags;
        size_t len;
        ck_chunk_encode(w->state, w->copy, (size_t)got, w->out, w->out_cap, &flags, &len);
        int r = put_rec(w, CK_REC_FILEDATA, flags, w->out, len, (uint64_t)got, arg, off);
        if (r < 0) {
            close(rfd);
            return r;
        }
        off += (uint64_t)got;
    }
    close(rfd);
    return 0;
}

/* Another open file description of the same deleted file or memfd comes
 * earlier (opened twice, or under two names): restore reopens that one,
 * so its contents are saved once. */
static int same_file_before(uint32_t i)
{
    const struct ck_fd *f = &g_shim.fds[i];
    for (uint32_t k = 0; k < i; k++) {
        const struct ck_fd *o = &g_shim.fds[k];
        if (o->kind == f->kind && o->share_with < 0 && o->dev == f->dev && o->ino == f->ino)
            return 1;
    }
    return 0;
}

/* Contents of a deleted file or memfd, read through a fresh descriptor so
 * the program's offset does not move. */
static int dump_filedata(struct writer *w, const struct ck_fd *f)
{
    char p[64], what[80];
    snprintf(p, sizeof p, "/proc/self/fd/%d", f->fd);
    snprintf(what, sizeof what, "deleted file behind fd %d", f->fd);
    int rfd = open(p, O_RDONLY | O_CLOEXEC);
    if (rfd >= 0 || errno != EACCES)
        return dump_file_contents(w, rfd, (uint64_t)f->fd, what);
    /* A mode that no longer lets its owner read it (0200): through a
     * descriptor of the program's that reads it, whose offset (which
     * SEEK_DATA moves: the writer shares the program's descriptions) is
     * put back after. */
    for (uint32_t k = 0; k < g_shim.nfds; k++) {
        const struct ck_fd *o = &g_shim.fds[k];
        int acc = (int)(o->oflags & O_ACCMODE);
        if (o->dev != f->dev || o->ino != f->ino || (o->oflags & O_PATH) || acc == O_WRONLY)
            continue;
        off_t at = lseek(o->fd, 0, SEEK_CUR);
        int r = dump_file_contents(w, fcntl(o->fd, F_DUPFD_CLOEXEC, 0), (uint64_t)f->fd, what);
        lseek(o->fd, at, SEEK_SET);
        return r;
    }
    errno = EACCES;
    return dump_file_contents(w, -1, (uint64_t)f->fd, what);
}

/* The checkpoint version of a file the program could only write
 * (CK_FDF_VER_LATER, fds/file.c): its first f->size bytes, as FILEDATA of
 * its fd, through a descriptor of the writer's own. A file cut shorter
 * meanwhile fails the checkpoint (the program goes on; the next one is
 * tried later) rather than give an image that cannot put it back. */
static int dump_version(struct writer *w, const struct ck_fd *f)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", f->fd);
    int rfd = open(p, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    uint64_t off = 0;
    int r = 0;
    while (rfd >= 0 && r == 0 && off < f->size) {
        size_t want = JOB_PAGES * CK_PAGE_SIZE;
        if (f->size - off < want)
            want = (size_t)(f->size - off);
        ssize_t got = pread(rfd, w->copy, want, (off_t)off);
        if (got <= 0)
            break;
        uint32_t flags;
        size_t len;
        ck_chunk_encode(w->state, w->copy, (size_t)got, w->out, w->out_cap, &flags, &len);
        r = put_rec(w, CK_REC_FILEDATA, flags, w->out, len, (uint64_t)got, (uint64_t)f->fd, off);
        off += (uint64_t)got;
    }
    if (rfd >= 0)
        close(rfd);
    if (r == 0 && off < f->size) {
        snprintf(w->err, w->errlen, "cannot read fd %d (%llu bytes) for its checkpoint version: "
                 "%s", f->fd, (unsigned long long)f->size,
                 rfd < 0 ? strerror(errno) : "it became shorter meanwhile");
        r = -EIO;
    }
    return r;
}

/* The target of a symbolic link held with O_PATH, as FILEDATA of its fd:
 * restore makes the link again if it is gone, or checks that the one at
 * its path still points there. */
static int dump_link_target(struct writer *w, const struct ck_fd *f)
{
    char t[CK_PATH_MAX];
    ssize_t n = readlinkat(f->fd, "", t, sizeof t);
    if (n < 0 || n >= (ssize_t)sizeof t) {
        snprintf(w->err, w->errlen, "cannot read the symbolic link behind fd %d: %s", f->fd,
                 n < 0 ? strerror(errno) : "target too long");
        return -EIO;
    }
    uint32_t fl;
    size_t len;
    ck_chunk_encode(w->state, t, (size_t)n, w->out, w->out_cap, &fl, &len);
    return put_rec(w, CK_REC_FILEDATA, fl, w->out, len, (uint64_t)n, (uint64_t)f->fd, 0);
}

/* A small temporary file the program maps (CK_REG_SAVED), once per file:
 * restore recreates it if it is gone. Called twice: before REGIONS
 * (write 0) to drop the flag of a file that cannot be read as the same
 * file now, then after FDS to write the contents (restore checks that
 * they add up to the recorded size). */
static int dump_saved_files(struct writer *w, int write)
{
    for (uint32_t i = 0; i < g_shim.nregions; i++) {
        struct ck_region *r = &g_shim.regions[i];
        if (!(r->flags & CK_REG_SAVED))
            continue;
        uint32_t k;
        for (k = 0; k < i; k++)
            if ((g_shim.regions[k].flags & CK_REG_SAVED) && g_shim.regions[k].dev == r->dev &&
                g_shim.regions[k].ino == r->ino)
                break;
        if (k < i)
            continue;
        const char *path = g_shim.strtab + r->path_off;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != r->dev ||
            st.st_ino != r->ino || (uint64_t)st.st_size > CK_SAVE_MAX) {
            for (uint32_t j = i; j < g_shim.nregions; j++)
                if (g_shim.regions[j].dev == r->dev && g_shim.regions[j].ino == r->ino)
                    g_shim.regions[j].flags &= ~CK_REG_SAVED;
            if (fd >= 0)
                close(fd);
            continue;
        }
        if (!write) {
            close(fd);
            continue;
        }
        int e = dump_file_contents(w, fd, CK_FILEDATA_REGION | i, path);
        if (e < 0)
            return e;
    }
    return 0;
}

static int count_cpus(void)
{
    const char *e = shim_env("CKSHIM_WRITERS");
    int n = e ? atoi(e) : 0;
    if (n <= 0) {
        cpu_set_t set;
        n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    }
    if (n < 1)
        n = 1;
    if (n > MAX_WORKERS - 1)
        n = MAX_WORKERS - 1;
    return n;
}

/* Write the whole image to fd. Returns 0 or -errno with err set. */
int dump_image(int fd, const struct ck_header *hdr_in, struct dump_stats *st, char *err,
               size_t errlen, int forked, int gate_fd, int gate_ms)
{
    static struct writer w;
    memset(&w, 0, sizeof w);
    w.fd = fd;
    w.gate_fd = gate_fd;
    w.gate_ms = gate_ms;
    w.err = err;
    w.errlen = errlen;
    /* test_progress.sh: a checkpoint slow enough for its progress line
     * (each job of up to 1 MiB of memory takes this long, < 1 s) */
    const char *td = getenv("CKSHIM_TEST_WRITE_DELAY_MS");
    if (td && atol(td) > 0 && atol(td) < 1000)
        w.test_delay_ns = atol(td) * 1000000L;
    if (g_shim.progress) {
        w.prog_total = progress_total();
        w.prog_last_ns = shim_now_ns(CLOCK_MONOTONIC);
    }
    int nw = count_cpus();
    w.normal_after = -1;
    st->normal_after_ns = -1;
    w.started = shim_now_ns(CLOCK_MONOTONIC);
    if (forked && g_shim.ckpt_idle) {
        /* the program runs on meanwhile: the team takes only idle CPU
         * (worker_main), the writing only idle disk time until the limit */
        w.idle = 1;
        w.idle_until = g_shim.ckpt_idle_ms ? w.started + g_shim.ckpt_idle_ms * 1000000LL : 0;
        /* IOPRIO_WHO_PROCESS (this thread; inherited by those it makes),
         * IOPRIO_CLASS_IDLE (3) << 13 */
        syscall(SYS_ioprio_set, 1, 0, 3 << 13);
    }
    w.out_cap = ck_chunk_bound(JOB_PAGES * CK_PAGE_SIZE);
    size_t ssz = (ck_chunk_state_size() + 4095) & ~4095UL;
    size_t copy = JOB_PAGES * CK_PAGE_SIZE;
    size_t per_worker = ssz + copy + JOB_PAGES * 8 + 4096 + (64 << 10); /* + stack */
    size_t dsz = JOB_PAGES * CK_DIGEST_BYTES;
    size_t total = ssz + ((w.out_cap + 4095) & ~4095UL) + copy +
                   SLOTS * ((size_t)SLOT_CAP + dsz) + MAX_WORKERS * per_worker;
    char *scratch = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (scratch == MAP_FAILED) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char *p = scratch;
    w.state = p;
    p += ssz;
    w.out = (uint8_t *)p;
    p += (w.out_cap + 4095) & ~4095UL;
    w.copy = (uint8_t *)p;
    p += copy;
    for (int i = 0; i < SLOTS; i++) {
        w.jobs[i].out = (uint8_t *)p;
        p += SLOT_CAP;
        w.jobs[i].digests = (uint8_t *)p;
        p += dsz;
    }
    for (int i = 0; i < MAX_WORKERS; i++) {
        struct worker *k = &w.workers[i];
        k->w = &w;
        k->state = p;
        p += ssz;
        k->copy = (uint8_t *)p;
        p += copy;
        k->pm = (uint64_t *)p;
        p += JOB_PAGES * 8;
        k->mc = (unsigned char *)p;
        p += 4096;
        p += 64 << 10; /* this worker's stack, below p */
    }
    int r = -EIO;
    w.pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    w.mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    if (w.pagemap_fd < 0 || w.mem_fd < 0) {
        snprintf(err, errlen, "cannot open /proc/self/pagemap or mem: %s", strerror(errno));
        goto out;
    }

    struct ck_header h = *hdr_in;
    if (g_shim.dump_key) {
        w.key = g_shim.dump_key;
        w.encrypt = (h.flags & CK_HF_ENCRYPTED) != 0;
    }
    ck_header_seal(&h);
    w.hdr = &h;
    direct_begin(&w);
    if ((r = out_bytes(&w, &h, sizeof h)) < 0)
        goto out;
    g_shim.threads[g_shim.nthreads - 1].ctx = g_shim.manager_ctx;
    if ((r = put_rec(&w, CK_REC_PROC, 0, &g_shim.proc, sizeof g_shim.proc, sizeof g_shim.proc, 0,
                     0)) < 0)
        goto out;
    size_t tl = sizeof(struct ck_thread) * g_shim.nthreads;
    if ((r = put_rec(&w, CK_REC_THREADS, 0, g_shim.threads, tl, tl, g_shim.nthreads, 0)) < 0)
        goto out;
    ident_hash_files(forked);
    dump_saved_files(&w, 0);
    if ((r = put_rec2(&w, CK_REC_REGIONS, g_shim.regions,
                      sizeof(struct ck_region) * g_shim.nregions, g_shim.strtab,
                      g_shim.regions_strtab_len, g_shim.nregions)) < 0)
        goto out;
    if ((r = put_rec2(&w, CK_REC_FDS, g_shim.fds, sizeof(struct ck_fd) * g_shim.nfds,
                      g_shim.strtab + g_shim.regions_strtab_len,
                      g_shim.strtab_len - g_shim.regions_strtab_len, g_shim.nfds)) < 0)
        goto out;
    if (g_shim.nmemcheck) {
        size_t ml = sizeof(struct ck_memcheck) * g_shim.nmemcheck;
        if ((r = put_rec(&w, CK_REC_MEMCHECK, 0, g_shim.memcheck, ml, ml, g_shim.nmemcheck, 0)) <
            0)
            goto out;
    }
    /* Optional records (left out when empty: images stay as before). */
    if (shim_nlocks && (r = put_rec(&w, CK_REC_LOCKS, 0, shim_locks,
                                    sizeof(struct ck_lock) * shim_nlocks,
                                    sizeof(struct ck_lock) * shim_nlocks, shim_nlocks, 0)) < 0)
        goto out;
    if (shim_nttys && (r = put_rec(&w, CK_REC_TTYS, 0, shim_ttys,
                                   sizeof(struct ck_tty) * shim_nttys,
                                   sizeof(struct ck_tty) * shim_nttys, shim_nttys, 0)) < 0)
        goto out;
    if ((r = dump_guards(&w)) < 0)
        goto out;
    if (shim_nshms && (r = put_rec(&w, CK_REC_SHM, 0, shim_shms, sizeof(struct ck_shm) * shim_nshms,
                                   sizeof(struct ck_shm) * shim_nshms, shim_nshms, 0)) < 0)
        goto out;
    if (shim_nfdstate && (r = put_rec(&w, CK_REC_FDSTATE, 0, shim_fdstate, shim_fdstate_len,
                                      shim_fdstate_len, shim_nfdstate, 0)) < 0)
        goto out;
    for (uint32_t i = 0; i < g_shim.nfds; i++) {
        const struct ck_fd *f = &g_shim.fds[i];
        if ((f->kind == CK_FD_DELETED || f->kind == CK_FD_MEMFD) && f->share_with < 0 &&
            !same_file_before(i) && (r = dump_filedata(&w, f)) < 0)
            goto out;
    }
    for (uint32_t i = 0; i < g_shim.nfds; i++) {
        const struct ck_fd *f = &g_shim.fds[i];
        if (f->kind == CK_FD_SYMLINK && f->share_with < 0 && (r = dump_link_target(&w, f)) < 0)
            goto out;
    }
    for (uint32_t i = 0; i < g_shim.nfds; i++) {
        const struct ck_fd *f = &g_shim.fds[i];
        if (f->kind == CK_FD_FILE && (f->flags & CK_FDF_VER_LATER) &&
            f->hash_kind == CK_HASH_VER_CONTENT && (r = dump_version(&w, f)) < 0)
            goto out;
    }
    if ((r = dump_saved_files(&w, 1)) < 0)
        goto out;
    for (uint32_t i = 0; i < shim_nfdbytes; i++) {
        const struct shim_fdbytes *pd = &shim_fdbytes[i];
        const char *data = fdbytes_data(i);
        for (size_t off = 0; off < pd->len;) {
            size_t n = pd->len - off;
            if (n > JOB_PAGES * CK_PAGE_SIZE)
                n = JOB_PAGES * CK_PAGE_SIZE;
            uint32_t fl;
            size_t len;
            ck_chunk_encode(w.state, data + off, n, w.out, w.out_cap, &fl, &len);
            if ((r = put_rec(&w, CK_REC_FILEDATA, fl, w.out, len, n, (uint64_t)pd->fd, off)) < 0)
                goto out;
            off += n;
        }
    }

    /* The worker team; the last worker struct is the caller's own. */
    for (int i = 0; i < nw; i++) {
        struct worker *k = &w.workers[i];
        char *stack_top = (char *)k->mc + 4096 + (64 << 10);
        k->tid = 1;
        if (shim_raw_thread(worker_main, k, stack_top, &k->tid) < 0) {
            k->tid = 0;
            break;
        }
        w.nworkers++;
    }
    r = dump_pages(&w);
    __atomic_fetch_or(&w.enq, STOP_BIT, __ATOMIC_SEQ_CST);
    fwake(&w.enq);
    for (int i = 0; i < w.nworkers; i++) {
        int t;
        while ((t = __atomic_load_n(&w.workers[i].tid, __ATOMIC_SEQ_CST)) != 0)
            fwait(&w.workers[i].tid, t);
    }
    if (r < 0)
        goto out;
    if (w.key) {
        /* AUTH: every digest, then the MAC over header and digests. */
        uint64_t n = w.ndig;
        uint8_t mac[CK_DIGEST_BYTES];
        ck_auth_mac(w.key, &h, w.dig, n, mac);
        if ((r = remember_digest(&w, mac)) < 0)
            goto out;
        uint64_t alen = (n + 1) * CK_DIGEST_BYTES;
        if ((r = put_rec(&w, CK_REC_AUTH, 0, w.dig, alen, alen, n, 0)) < 0)
            goto out;
    }
    struct ck_end end = w.end;
    if ((r = put_rec(&w, CK_REC_END, 0, &end, sizeof end, sizeof end, 0, 0)) < 0)
        goto out;
    if ((r = out_finish(&w)) < 0)
        goto out;
    if (w.direct)
        readahead_headers(&w);
    st->bytes = sizeof h + w.end.stored_bytes + w.end.nrecords * sizeof(struct ck_rec);
    st->pages = w.end.npages;
    st->raw_bytes = w.end.npages * CK_PAGE_SIZE;
    st->idle = w.idle;
    st->normal_after_ns = w.normal_after;
    r = 0;
out:
    out_close(&w);
    if (w.dig)
        munmap(w.dig, w.dig_cap * CK_DIGEST_BYTES);
    if (w.seeks)
        munmap(w.seeks, w.seeks_cap * 8);
    if (w.pagemap_fd > 0)
        close(w.pagemap_fd);
    if (w.mem_fd > 0)
        close(w.mem_fd);
    munmap(scratch, total);
    return r;
}
