/* imgio.c - image header and records: checksums, writer, reader.
 *
 * The writer half (ck_write_all, ck_write_rec) runs inside the program
 * while its other threads are parked: write(2) only, no heap, no stdio.
 * The reader (ck_image_read) is for coord and may allocate, but it treats
 * the file as hostile: every length is checked against sanity limits and
 * what is left of the file before it is used. */
#include "imgio.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunk.h"
#include "xxh64.h"

_Static_assert(sizeof(struct ck_header) == 512, "ck_header must be 512 bytes");
_Static_assert(sizeof(struct ck_rec) == 48, "ck_rec must be 48 bytes");
_Static_assert(sizeof(struct ck_end) == 32, "ck_end must be 32 bytes");

/* Sanity limits of the reader. */
#define IMG_MAX_META (64ULL << 20)      /* payload of PROC/THREADS/REGIONS/FDS/unknown */
#define IMG_MAX_LOCKS 65536             /* entries of a LOCKS record */
#define IMG_MAX_GUARDS (1u << 20)       /* entries of a GUARDS record */
#define IMG_MAX_SHMS 4096               /* entries of a SHM record */
#define IMG_MAX_FILEDATA (1ULL << 20)   /* raw bytes of one FILEDATA record */
#define IMG_MAX_PAGES_RAW ((uint64_t)CK_CHUNK_PAGES * CK_PAGE_SIZE)
#define IMG_MAX_STRINGS (64ULL << 20)   /* copied-out path bytes per record */

/* ---- shared ---- */

uint64_t ck_rec_checksum(const struct ck_rec *rec, const void *payload)
{
    struct ck_rec r = *rec;

    r.checksum = 0;
    uint64_t seed = ck_xxh64(&r, sizeof(r), 0);
    return ck_xxh64(payload, (size_t)rec->len, seed);
}

static uint64_t header_sum(const struct ck_header *h)
{
    return ck_xxh64(h, offsetof(struct ck_header, checksum), 0);
}

void ck_header_seal(struct ck_header *h)
{
    memcpy(h->magic, CK_MAGIC, CK_MAGIC_LEN);
    h->version_major = CK_VERSION_MAJOR;
    h->version_minor = CK_VERSION_MINOR;
    h->header_size = (uint32_t)sizeof(struct ck_header);
    h->checksum = header_sum(h);
}

/* The version is checked before the checksum: a newer major version may
 * lay its header out differently, and "newer format" is the useful answer
 * then, not "corrupted". */
int ck_header_check(const struct ck_header *h, const char **ret_why)
{
    static const char *const newer[] = {
        "image format 3.x is newer than this ckshim (2.x)",
        "image format 4.x is newer than this ckshim (2.x)",
        "image format 5.x is newer than this ckshim (2.x)",
        "image format 6.x is newer than this ckshim (2.x)",
        "image format 7.x is newer than this ckshim (2.x)",
        "image format 8.x is newer than this ckshim (2.x)",
        "image format 9.x is newer than this ckshim (2.x)",
    };
    const char *why_dummy;

    if (!ret_why)
        ret_why = &why_dummy;
    *ret_why = "";
    if (memcmp(h->magic, CK_MAGIC, CK_MAGIC_LEN) != 0) {
        *ret_why = "not a ckshim image (bad magic)";
        return -EINVAL;
    }
    if (h->version_major > CK_VERSION_MAJOR) {
        unsigned i = (unsigned)h->version_major - 3;
        *ret_why = i < sizeof(newer) / sizeof(newer[0])
                       ? newer[i]
                       : "image format is of a newer major version than this ckshim (2.x)";
        return -EPROTONOSUPPORT;
    }
    if (h->version_major == 1) {
        *ret_why = "image format 1.x was written by an older ckshim; restore it with that "
                   "version (this one reads 2.x)";
        return -EPROTONOSUPPORT;
    }
    if (h->version_major != CK_VERSION_MAJOR) {
        *ret_why = "image header is corrupted (invalid format version 0.x)";
        return -EINVAL;
    }
    if (h->header_size != sizeof(struct ck_header)) {
        *ret_why = "image header is corrupted (wrong header size)";
        return -EINVAL;
    }
    if (h->checksum != header_sum(h)) {
        *ret_why = "image header is corrupted (checksum mismatch)";
        return -EINVAL;
    }
    return 0;
}

/* ---- writer ---- */

int ck_write_all(int fd, const void *buf, size_t len)
{
    const char *p = (const char *)buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void ck_rec_init(struct ck_rec *rec, uint32_t type, uint32_t flags, uint64_t len,
                 uint64_t raw_len, uint64_t arg, uint64_t arg2)
{
    memset(rec, 0, sizeof(*rec));
    rec->type = type;
    rec->flags = flags;
    rec->len = len;
    rec->raw_len = raw_len;
    rec->arg = arg;
    rec->arg2 = arg2;
}

int ck_write_rec_hdr(int fd, struct ck_rec *rec, const void *payload)
{
    int r;

    if (rec->len > 0 && !payload)
        return -EINVAL;
    if (rec->len > SIZE_MAX)
        return -EFBIG;
    rec->checksum = ck_rec_checksum(rec, payload);
    r = ck_write_all(fd, rec, sizeof(*rec));
    if (r < 0 || rec->len == 0)
        return r;
    return ck_write_all(fd, payload, (size_t)rec->len);
}

int ck_write_rec(int fd, uint32_t type, uint32_t flags, const void *payload, uint64_t len,
                 uint64_t raw_len, uint64_t arg, uint64_t arg2)
{
    struct ck_rec rec;

    ck_rec_init(&rec, type, flags, len, raw_len, arg, arg2);
    return ck_write_rec_hdr(fd, &rec, payload);
}

/* ---- reader ---- */

struct img_rd {
    int fd;
    int seekable;                       /* regular file: size known, lseek works */
    uint64_t off;                       /* absolute offset of the next byte */
    uint64_t size;                      /* file size when seekable */
    char *err;
    size_t errlen;
    /* A regular file is read ahead into buf (an image of many descriptors
     * has thousands of small records: one read each cost more than the
     * rest of the check); bytes [bpos, blen) of buf come next, so the
     * file's offset is off + blen - bpos until rd_done puts it back. */
    char *buf;
    size_t bcap, bpos, blen;
};

/* The file offset where the reader stands, as if nothing were read ahead. */
static void rd_done(struct img_rd *r)
{
    if (r->blen > r->bpos)
        lseek(r->fd, -(off_t)(r->blen - r->bpos), SEEK_CUR);
    r->bpos = r->blen = 0;
}

static int __attribute__((format(printf, 3, 4))) rd_fail(struct img_rd *r, int code,
                                                         const char *fmt, ...)
{
    if (r->err && r->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int rd_truncated(struct img_rd *r, uint64_t at, const char *what, uint64_t want_end)
{
    return rd_fail(r, -EINVAL, "image is truncated at byte %llu (expected %s ending at byte %llu)",
                   (unsigned long long)at, what, (unsigned long long)want_end);
}

/* Read up to n bytes; *got receives how many arrived before end of file.
 * Returns 0 or -errno (message set). */
static int rd_read_some(struct img_rd *r, void *buf, size_t n, size_t *got)
{
    char *p = (char *)buf;
    size_t done = 0;

    while (done < n) {
        if (r->blen > r->bpos) {
            size_t take = r->blen - r->bpos < n - done ? r->blen - r->bpos : n - done;
            memcpy(p + done, r->buf + r->bpos, take);
            r->bpos += take;
            done += take;
            continue;
        }
        if (r->buf && n - done < r->bcap) {
            ssize_t k = read(r->fd, r->buf, r->bcap);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                int e = errno;
                return rd_fail(r, -e, "cannot read the image at byte %llu: %s",
                               (unsigned long long)(r->off + done), strerror(e));
            }
            if (k == 0)
                break;
            r->bpos = 0;
            r->blen = (size_t)k;
            continue;
        }
        ssize_t k = read(r->fd, p + done, n - done);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            return rd_fail(r, -e, "cannot read the image at byte %llu: %s",
                           (unsigned long long)(r->off + done), strerror(e));
        }
        if (k == 0)
            break;
        done += (size_t)k;
    }
    r->off += done;
    *got = done;
    return 0;
}

/* Read exactly n bytes, described as what in a truncation message. */
static int rd_read(struct img_rd *r, void *buf, size_t n, const char *what)
{
    uint64_t start = r->off;
    size_t got;
    int rc;

    if (r->seekable && (r->off > r->size || n > r->size - r->off))
        return rd_truncated(r, r->size > start ? r->size : start, what, start + n);
    rc = rd_read_some(r, buf, n, &got);
    if (rc < 0)
        return rc;
    if (got < n)
        return rd_truncated(r, r->off, what, start + n);
    return 0;
}

/* Skip n bytes: lseek on a regular file, read and discard on a pipe. */
static int rd_skip(struct img_rd *r, uint64_t n, const char *what)
{
    uint64_t start = r->off, end = r->off + n;

    if (r->seekable) {
        if (r->off > r->size || n > r->size - r->off)
            return rd_truncated(r, r->size > start ? r->size : start, what, end);
        uint64_t ahead = r->blen - r->bpos;
        if (n <= ahead) {
            r->bpos += (size_t)n;
            r->off += n;
            return 0;
        }
        r->bpos = r->blen = 0;
        if (n > 0 && lseek(r->fd, (off_t)(n - ahead), SEEK_CUR) < 0) {
            int e = errno;
            return rd_fail(r, -e, "cannot seek in the image at byte %llu: %s",
                           (unsigned long long)r->off, strerror(e));
        }
        r->off += n;
        return 0;
    }
    char buf[16384];
    while (n > 0) {
        size_t want = n < sizeof(buf) ? (size_t)n : sizeof(buf), got;
        int rc = rd_read_some(r, buf, want, &got);
        if (rc < 0)
            return rc;
        if (got < want)
            return rd_truncated(r, r->off, what, end);
        n -= got;
    }
    return 0;
}

static const char *rec_type_name(uint32_t type)
{
    switch (type) {
    case CK_REC_PROC:
        return "PROC";
    case CK_REC_THREADS:
        return "THREADS";
    case CK_REC_REGIONS:
        return "REGIONS";
    case CK_REC_FDS:
        return "FDS";
    case CK_REC_FILEDATA:
        return "FILEDATA";
    case CK_REC_LOCKS:
        return "LOCKS";
    case CK_REC_TTYS:
        return "TTYS";
    case CK_REC_GUARDS:
        return "GUARDS";
    case CK_REC_SHM:
        return "SHM";
    case CK_REC_FDSTATE:
        return "FDSTATE";
    case CK_REC_PAGES:
        return "PAGES";
    case CK_REC_END:
        return "END";
    case CK_REC_MEMCHECK:
        return "MEMCHECK";
    default:
        return NULL;
    }
}

/* Where the reader is in the mandatory record sequence. */
enum {
    ST_PROC,
    ST_THREADS,
    ST_REGIONS,
    ST_FDS,
    ST_FILEDATA,                        /* FILEDATA, PAGES or END may come */
    ST_PAGES,                           /* PAGES or END may come */
};

static const char *const stage_expect[] = {
    "PROC", "THREADS", "REGIONS", "FDS", "FILEDATA, PAGES or END", "PAGES or END",
};

/* State of one ck_image_read() call besides the image itself. */
struct img_ctx {
    struct img_rd rd;
    struct ck_image *img;
    uint32_t flags;
    int stage;
    uint64_t nrecords, npages, raw_bytes, stored_bytes;
    uint8_t *scratch;                   /* PAGES/FILEDATA payloads */
    size_t scratch_size;
    uint64_t filedata_cap, pages_cap;
    uint64_t h;                         /* offset of the current record */
    char tname[32];                     /* its type, for messages */
};

/* A problem with the current record: "record at byte N (TYPE): ...". */
static int __attribute__((format(printf, 2, 3))) rec_fail(struct img_ctx *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rd_fail(&c->rd, -EINVAL, "record at byte %llu (%s): %s", (unsigned long long)c->h,
                   c->tname, msg);
}

/* Copy the paths of count fixed-size entries out of the string table that
 * follows them in payload (len bytes). path_off/path_len are read at
 * byte offset poff of each entry. Returns the array of count strings, all
 * in one allocation (freed with free() on the array), or sets err. */
static int copy_paths(struct img_ctx *c, const uint8_t *payload, uint64_t len, uint64_t count,
                      size_t entsize, size_t poff, char ***ret)
{
    uint64_t table_off = count * entsize;
    uint64_t tsize = len - table_off;
    const uint8_t *table = payload + table_off;
    uint64_t total = 0;

    for (uint64_t i = 0; i < count; i++) {
        uint32_t po, pl;
        memcpy(&po, payload + i * entsize + poff, 4);
        memcpy(&pl, payload + i * entsize + poff + 4, 4);
        if (po > tsize || pl > tsize - po)
            return rec_fail(c, "entry %llu: path (offset %u, length %u) is outside the "
                               "%llu-byte string table", (unsigned long long)i, po, pl,
                            (unsigned long long)tsize);
        if (pl > CK_PATH_MAX)
            return rec_fail(c, "entry %llu: path length %u is longer than %u",
                            (unsigned long long)i, pl, (unsigned)CK_PATH_MAX);
        total += (uint64_t)pl + 1;
    }
    if (total > IMG_MAX_STRINGS)
        return rec_fail(c, "paths add up to %llu bytes, more than the limit of %llu",
                        (unsigned long long)total, (unsigned long long)IMG_MAX_STRINGS);

    size_t asize = (size_t)count * sizeof(char *) + (size_t)total;
    char **arr = malloc(asize ? asize : 1);
    if (!arr)
        return rd_fail(&c->rd, -ENOMEM, "out of memory reading %s record at byte %llu",
                       c->tname, (unsigned long long)c->h);
    char *s = (char *)(arr + count);
    for (uint64_t i = 0; i < count; i++) {
        uint32_t po, pl;
        memcpy(&po, payload + i * entsize + poff, 4);
        memcpy(&pl, payload + i * entsize + poff + 4, 4);
        arr[i] = s;
        memcpy(s, table + po, pl);
        s[pl] = '\0';
        s += pl + 1;
    }
    *ret = arr;
    return 0;
}

/* Append a record location to a growing array. */
static int push_loc(struct img_ctx *c, struct ck_rec_loc **arr, uint64_t *n, uint64_t *cap,
                    uint64_t limit, const struct ck_rec *rec, uint64_t payload_off)
{
    if (*n >= limit)
        return rec_fail(c, "too many records of this type");
    if (*n == *cap) {
        uint64_t ncap = *cap ? *cap * 2 : 64;
        struct ck_rec_loc *na = realloc(*arr, (size_t)ncap * sizeof(**arr));
        if (!na)
            return rd_fail(&c->rd, -ENOMEM, "out of memory at record %llu",
                           (unsigned long long)c->h);
        *arr = na;
        *cap = ncap;
    }
    (*arr)[*n].rec = *rec;
    (*arr)[*n].offset = payload_off;
    (*n)++;
    return 0;
}

/* Checks of a FILEDATA or PAGES header that need no payload. */
static int check_chunk_rec(struct img_ctx *c, const struct ck_rec *rec, uint64_t max_raw)
{
    if (rec->flags != CK_RF_LZ4 && rec->flags != CK_RF_RAW)
        return rec_fail(c, "flags 0x%x are neither LZ4 nor RAW", rec->flags);
    if (rec->raw_len > max_raw)
        return rec_fail(c, "decoded length %llu is more than %llu",
                        (unsigned long long)rec->raw_len, (unsigned long long)max_raw);
    if (rec->flags == CK_RF_RAW && rec->len != rec->raw_len)
        return rec_fail(c, "RAW payload of %llu bytes should hold %llu",
                        (unsigned long long)rec->len, (unsigned long long)rec->raw_len);
    if (rec->flags == CK_RF_LZ4 && (rec->len == 0 || rec->len > ck_chunk_bound(rec->raw_len)))
        return rec_fail(c, "LZ4 payload of %llu bytes is impossible for %llu decoded bytes",
                        (unsigned long long)rec->len, (unsigned long long)rec->raw_len);
    return 0;
}

/* Read the payload of the current record into buf and verify its
 * checksum. */
static int read_verify(struct img_ctx *c, const struct ck_rec *rec, void *buf)
{
    char what[64];
    int rc;

    snprintf(what, sizeof(what), "the payload of the %s record", c->tname);
    rc = rd_read(&c->rd, buf, (size_t)rec->len, what);
    if (rc < 0)
        return rc;
    if (ck_rec_checksum(rec, buf) != rec->checksum)
        return rec_fail(c, "record is corrupted (checksum mismatch)");
    return 0;
}

/* Read and verify a metadata payload into a fresh allocation. */
static int read_alloc(struct img_ctx *c, const struct ck_rec *rec, uint8_t **ret)
{
    uint8_t *buf = malloc(rec->len ? (size_t)rec->len : 1);
    int rc;

    if (!buf)
        return rd_fail(&c->rd, -ENOMEM, "out of memory reading %s record at byte %llu",
                       c->tname, (unsigned long long)c->h);
    rc = read_verify(c, rec, buf);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *ret = buf;
    return 0;
}

/* An optional record of fixed-size entries (LOCKS, TTYS, GUARDS, SHM): at
 * most one, 1..max entries of esz bytes, read into a new allocation. */
static int read_entries(struct img_ctx *c, const struct ck_rec *rec, size_t esz, uint64_t max,
                        int seen, uint8_t **buf)
{
    if (seen)
        return rec_fail(c, "a second %s record", c->tname);
    if (rec->arg < 1 || rec->arg > max || rec->len != rec->arg * esz)
        return rec_fail(c, "payload is %llu bytes for %llu entries of %zu bytes (1..%llu)",
                        (unsigned long long)rec->len, (unsigned long long)rec->arg, esz,
                        (unsigned long long)max);
    return read_alloc(c, rec, buf);
}

static int get_scratch(struct img_ctx *c)
{
    if (c->scratch)
        return 0;
    size_t a = ck_chunk_bound(IMG_MAX_PAGES_RAW), b = ck_chunk_bound(IMG_MAX_FILEDATA);
    c->scratch_size = a > b ? a : b;
    c->scratch = malloc(c->scratch_size);
    if (!c->scratch)
        return rd_fail(&c->rd, -ENOMEM, "out of memory at record %llu",
                       (unsigned long long)c->h);
    return 0;
}

/* FDSTATE: entries of descriptors of FDS, in FDS order, one at most each,
 * of the descriptor's kind; img->fdstate[i] points into the payload. */
/* What is wrong with the state of a descriptor of kind `kind`, or NULL.
 * Every count, length and offset a kind's restore, check or describe
 * (fds/) would use is checked here once, against the entry's own bytes,
 * so that none of them reads past it or hands the kernel a forged size. */
static const char *fdstate_bad(uint32_t kind, const uint8_t *d, uint32_t len)
{
    static const struct {
        uint32_t kind;
        uint32_t size;
    } least[] = {
        {CK_FD_TIMERFD, sizeof(struct ck_timerfd)}, {CK_FD_SIGNALFD, sizeof(struct ck_signalfd)},
        {CK_FD_INOTIFY, sizeof(struct ck_inotify)}, {CK_FD_UNIX, sizeof(struct ck_unix)},
        {CK_FD_INET, sizeof(struct ck_inet)},
    };
    for (size_t k = 0; k < sizeof least / sizeof least[0]; k++)
        if (least[k].kind == kind && len < least[k].size)
            return "a state too short for its kind";
    union {
        struct ck_timerfd t;
        struct ck_inotify i;
        struct ck_unix u;
        struct ck_inet n;
    } s;
    switch (kind) {
    case CK_FD_TIMERFD:
        memcpy(&s.t, d, sizeof s.t);
        if (s.t.value_ns < 0 || s.t.interval_ns < 0 || s.t.deadline_ns < 0)
            return "a timerfd with a negative time";
        break;
    case CK_FD_INOTIFY: {
        struct ck_inotify_watch w;
        memcpy(&s.i, d, sizeof s.i);
        if (s.i.nwatch > (len - sizeof s.i) / sizeof w)
            return "more inotify watches than its bytes hold";
        size_t table = sizeof s.i + (size_t)s.i.nwatch * sizeof w, plen = len - table;
        for (uint32_t k = 0; k < s.i.nwatch; k++) {
            memcpy(&w, d + sizeof s.i + (size_t)k * sizeof w, sizeof w);
            if (w.path_off >= plen || !memchr(d + table + w.path_off, 0, plen - w.path_off))
                return "an inotify watch whose path is not in its bytes";
        }
        break;
    }
    case CK_FD_UNIX:
        memcpy(&s.u, d, sizeof s.u);
        if (s.u.so.family != AF_UNIX || (s.u.so.type != SOCK_STREAM &&
                                         s.u.so.type != SOCK_DGRAM &&
                                         s.u.so.type != SOCK_SEQPACKET))
            return "a unix socket of another family or type";
        if (s.u.namelen > sizeof s.u.name || s.u.peerlen > sizeof s.u.peer)
            return "a unix socket address longer than sun_path";
        if (s.u.nicons > (len - sizeof s.u) / 8)
            return "more waiting clients than its bytes hold";
        break;
    case CK_FD_INET:
        memcpy(&s.n, d, sizeof s.n);
        if ((s.n.so.family != AF_INET && s.n.so.family != AF_INET6) ||
            (s.n.so.type != SOCK_STREAM && s.n.so.type != SOCK_DGRAM) ||
            s.n.role > CK_INET_CONNECTING)
            return "an inet socket of another family, type or role";
        break;
    }
    return NULL;
}

static int read_fdstate(struct img_ctx *c, const struct ck_rec *rec)
{
    struct ck_image *img = c->img;
    uint8_t *buf;
    if (img->fdstate_buf)
        return rec_fail(c, "a second %s record", c->tname);
    if (rec->arg < 1 || rec->arg > img->nfds || rec->len > IMG_MAX_META)
        return rec_fail(c, "%llu entries in %llu bytes (%u descriptors)",
                        (unsigned long long)rec->arg, (unsigned long long)rec->len, img->nfds);
    int rc = read_alloc(c, rec, &buf);
    if (rc < 0)
        return rc;
    img->fdstate_buf = buf;
    img->fdstate = calloc(img->nfds, sizeof *img->fdstate);
    if (!img->fdstate)
        return rd_fail(&c->rd, -ENOMEM, "out of memory reading the FDSTATE record");
    uint64_t off = 0;
    uint32_t next = 0;
    for (uint64_t e = 0; e < rec->arg; e++) {
        struct ck_fdstate h;
        if (rec->len - off < sizeof h)
            return rec_fail(c, "entry %llu runs past the payload", (unsigned long long)e);
        memcpy(&h, buf + off, sizeof h);
        off += sizeof h;
        uint64_t padded = ((uint64_t)h.len + 7) & ~7ULL;
        if (h.len > CK_FDSTATE_MAX || rec->len - off < padded)
            return rec_fail(c, "entry %llu (fd %d) has %u bytes, past the payload",
                            (unsigned long long)e, h.fd, h.len);
        while (next < img->nfds && img->fds[next].fd != h.fd)
            next++;
        if (next == img->nfds || img->fds[next].kind != h.kind)
            return rec_fail(c, "entry %llu names fd %d of kind %u: no such descriptor (or "
                            "out of order)", (unsigned long long)e, h.fd, h.kind);
        const char *bad = fdstate_bad(h.kind, buf + off, h.len);
        if (bad)
            return rec_fail(c, "entry %llu (fd %d) is damaged: %s", (unsigned long long)e, h.fd,
                            bad);
        img->fdstate[next].data = buf + off;
        img->fdstate[next].len = h.len;
        next++;
        off += padded;
    }
    if (off != rec->len)
        return rec_fail(c, "%llu bytes left over after %llu entries",
                        (unsigned long long)(rec->len - off), (unsigned long long)rec->arg);
    return 0;
}

/* REGIONS or FDS: count fixed entries then a string table. */
static int read_table_rec(struct img_ctx *c, const struct ck_rec *rec, size_t entsize,
                          size_t poff, uint8_t **ret_arr, char ***ret_paths, uint32_t *ret_n)
{
    uint8_t *buf;
    int rc;

    if (rec->arg > rec->len / entsize)
        return rec_fail(c, "%llu entries do not fit in %llu bytes", (unsigned long long)rec->arg,
                        (unsigned long long)rec->len);
    rc = read_alloc(c, rec, &buf);
    if (rc < 0)
        return rc;
    rc = copy_paths(c, buf, rec->len, rec->arg, entsize, poff, ret_paths);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *ret_arr = buf;                     /* the entries are at its start */
    *ret_n = (uint32_t)rec->arg;
    return 0;
}

/* One record (header already read at c->h). Returns 1 after END, 0 to go
 * on, or a negative errno. */
static int read_record(struct img_ctx *c, const struct ck_rec *rec)
{
    struct ck_image *img = c->img;
    uint64_t payload_off = c->rd.off;
    uint64_t maxlen;
    int rc, meta = 0;
    const char *name = rec_type_name(rec->type);

    if (name)
        snprintf(c->tname, sizeof(c->tname), "%s", name);
    else
        snprintf(c->tname, sizeof(c->tname), "unknown type %u", rec->type);

    /* Order. */
    switch (rec->type) {
    case CK_REC_PROC:
    case CK_REC_THREADS:
    case CK_REC_REGIONS:
    case CK_REC_FDS:
        if (c->stage != (int)rec->type - CK_REC_PROC + ST_PROC)
            goto bad_order;
        meta = 1;
        break;
    case CK_REC_FILEDATA:
        if (c->stage != ST_FILEDATA)
            goto bad_order;
        break;
    case CK_REC_MEMCHECK:
        if (c->stage != ST_FILEDATA || img->memcheck)
            goto bad_order;
        meta = 1;
        break;
    case CK_REC_LOCKS:
    case CK_REC_TTYS:
    case CK_REC_GUARDS:
    case CK_REC_SHM:
    case CK_REC_FDSTATE:
        /* optional, between FDS and the first FILEDATA or PAGES */
        if (c->stage != ST_FILEDATA || img->nfiledata)
            goto bad_order;
        meta = 1;
        break;
    case CK_REC_PAGES:
    case CK_REC_END:
        if (c->stage < ST_FILEDATA)
            goto bad_order;
        break;
    default:
        break;
    }

    /* Payload size limits, before anything is allocated or skipped. */
    switch (rec->type) {
    case CK_REC_PAGES:
        maxlen = ck_chunk_bound(IMG_MAX_PAGES_RAW);
        break;
    case CK_REC_FILEDATA:
        maxlen = ck_chunk_bound(IMG_MAX_FILEDATA);
        break;
    case CK_REC_END:
        maxlen = sizeof(struct ck_end);
        break;
    default:
        maxlen = IMG_MAX_META;
        break;
    }
    if (rec->len > maxlen)
        return rec_fail(c, "payload length %llu is implausible (at most %llu)",
                        (unsigned long long)rec->len, (unsigned long long)maxlen);
    if (c->rd.seekable && (c->rd.off > c->rd.size || rec->len > c->rd.size - c->rd.off)) {
        char what[64];
        snprintf(what, sizeof(what), "the payload of the %s record", c->tname);
        return rd_truncated(&c->rd, c->rd.size, what, payload_off + rec->len);
    }
    if (meta || rec->type == CK_REC_END) {
        if ((rec->flags & CK_RF_LZ4) || rec->raw_len != rec->len)
            return rec_fail(c, "metadata must be stored raw (flags 0x%x, %llu/%llu bytes)",
                            rec->flags, (unsigned long long)rec->len,
                            (unsigned long long)rec->raw_len);
    }

    switch (rec->type) {
    case CK_REC_PROC:
        if (rec->len != sizeof(struct ck_proc))
            return rec_fail(c, "payload is %llu bytes, expected %zu", (unsigned long long)rec->len,
                            sizeof(struct ck_proc));
        rc = read_verify(c, rec, &img->proc);
        if (rc < 0)
            return rc;
        c->stage = ST_THREADS;
        break;

    case CK_REC_THREADS: {
        uint32_t n = img->hdr.nthreads;
        uint8_t *buf;
        if (n < 1 || n > CK_MAX_THREADS)
            return rec_fail(c, "header says %u threads (must be 1..%u)", n,
                            (unsigned)CK_MAX_THREADS);
        if (rec->len != (uint64_t)n * sizeof(struct ck_thread))
            return rec_fail(c, "payload is %llu bytes, expected %u threads of %zu bytes",
                            (unsigned long long)rec->len, n, sizeof(struct ck_thread));
        rc = read_alloc(c, rec, &buf);
        if (rc < 0)
            return rc;
        img->threads = (struct ck_thread *)(void *)buf;
        img->nthreads = n;
        c->stage = ST_REGIONS;
        break;
    }

    case CK_REC_REGIONS: {
        uint8_t *arr;
        rc = read_table_rec(c, rec, sizeof(struct ck_region), offsetof(struct ck_region, path_off),
                            &arr, &img->region_paths, &img->nregions);
        if (rc < 0)
            return rc;
        img->regions = (struct ck_region *)(void *)arr;
        c->stage = ST_FDS;
        break;
    }

    case CK_REC_FDS: {
        uint8_t *arr;
        rc = read_table_rec(c, rec, sizeof(struct ck_fd), offsetof(struct ck_fd, path_off), &arr,
                            &img->fd_paths, &img->nfds);
        if (rc < 0)
            return rc;
        img->fds = (struct ck_fd *)(void *)arr;
        c->stage = ST_FILEDATA;
        break;
    }

    case CK_REC_MEMCHECK: {
        uint8_t *buf;
        if (rec->arg > img->nregions || rec->len != rec->arg * sizeof(struct ck_memcheck))
            return rec_fail(c, "%llu entries in %llu bytes (%u regions)",
                            (unsigned long long)rec->arg, (unsigned long long)rec->len,
                            img->nregions);
        rc = read_alloc(c, rec, &buf);
        if (rc < 0)
            return rc;
        img->memcheck = (struct ck_memcheck *)(void *)buf;
        img->nmemcheck = (uint32_t)rec->arg;
        for (uint32_t i = 0; i < img->nmemcheck; i++)
            if (img->memcheck[i].region >= img->nregions ||
                (i && img->memcheck[i].region <= img->memcheck[i - 1].region))
                return rec_fail(c, "entry %u names region %u (of %u, in order)", i,
                                img->memcheck[i].region, img->nregions);
        break;
    }

    case CK_REC_LOCKS:
    case CK_REC_TTYS: {
        int locks = rec->type == CK_REC_LOCKS;
        size_t esz = locks ? sizeof(struct ck_lock) : sizeof(struct ck_tty);
        uint64_t max = locks ? IMG_MAX_LOCKS : CK_MAX_TTYS;
        uint8_t *buf;
        rc = read_entries(c, rec, esz, max, (locks ? img->nlocks : img->nttys) != 0, &buf);
        if (rc < 0)
            return rc;
        if (locks) {
            img->locks = (struct ck_lock *)(void *)buf;
            img->nlocks = (uint32_t)rec->arg;
        } else {
            img->ttys = (struct ck_tty *)(void *)buf;
            img->nttys = (uint32_t)rec->arg;
        }
        break;
    }

    case CK_REC_GUARDS: {
        uint8_t *buf;
        rc = read_entries(c, rec, sizeof(struct ck_guard), IMG_MAX_GUARDS, img->guards != NULL,
                          &buf);
        if (rc < 0)
            return rc;
        img->guards = (struct ck_guard *)(void *)buf;
        img->nguards = (uint32_t)rec->arg;
        for (uint32_t i = 0; i < img->nguards; i++) {
            const struct ck_guard *g = &img->guards[i];
            if (g->start >= g->end || (g->start | g->end) % CK_PAGE_SIZE ||
                g->end > 0x800000000000ULL || (i && g->start < img->guards[i - 1].end))
                return rec_fail(c, "entry %u (%#llx-%#llx) is malformed or out of order", i,
                                (unsigned long long)g->start, (unsigned long long)g->end);
        }
        break;
    }

    case CK_REC_SHM: {
        uint8_t *buf;
        rc = read_entries(c, rec, sizeof(struct ck_shm), IMG_MAX_SHMS, img->shms != NULL, &buf);
        if (rc < 0)
            return rc;
        img->shms = (struct ck_shm *)(void *)buf;
        img->nshms = (uint32_t)rec->arg;
        for (uint32_t i = 0; i < img->nshms; i++)
            if (img->shms[i].shmid < 0 || img->shms[i].size == 0 ||
                img->shms[i].size > (1ULL << 47))
                return rec_fail(c, "entry %u (id %d, %llu bytes) is malformed", i,
                                img->shms[i].shmid, (unsigned long long)img->shms[i].size);
        break;
    }

    case CK_REC_FDSTATE:
        rc = read_fdstate(c, rec);
        if (rc < 0)
            return rc;
        break;

    case CK_REC_FILEDATA: {
        uint64_t n = img->nfiledata;
        rc = check_chunk_rec(c, rec, IMG_MAX_FILEDATA);
        if (rc < 0)
            return rc;
        if ((rec->arg & ~0xffffffffULL) == CK_FILEDATA_REGION) {
            if ((rec->arg & 0xffffffffULL) >= img->nregions)
                return rec_fail(c, "saved file of region %llu: no such region",
                                (unsigned long long)(rec->arg & 0xffffffffULL));
        } else if (rec->arg > 0x7fffffffULL)
            return rec_fail(c, "fd %llu is out of range",
                            (unsigned long long)rec->arg);
        if (rec->arg2 > (uint64_t)INT64_MAX - rec->raw_len)
            return rec_fail(c, "file offset %llu is out of range", (unsigned long long)rec->arg2);
        rc = get_scratch(c);
        if (rc < 0)
            return rc;
        rc = read_verify(c, rec, c->scratch);
        if (rc < 0)
            return rc;
        rc = push_loc(c, &img->filedata, &n, &c->filedata_cap, UINT32_MAX, rec, payload_off);
        if (rc < 0)
            return rc;
        img->nfiledata = (uint32_t)n;
        break;
    }

    case CK_REC_PAGES:
        rc = check_chunk_rec(c, rec, IMG_MAX_PAGES_RAW);
        if (rc < 0)
            return rc;
        if (rec->raw_len == 0 || rec->raw_len % CK_PAGE_SIZE != 0)
            return rec_fail(c, "decoded length %llu is not a positive multiple of %lu",
                            (unsigned long long)rec->raw_len, CK_PAGE_SIZE);
        if (rec->arg % CK_PAGE_SIZE != 0 || rec->arg > UINT64_MAX - rec->raw_len)
            return rec_fail(c, "address 0x%llx is not page aligned or out of range",
                            (unsigned long long)rec->arg);
        if (c->stage != ST_PAGES)
            img->pages_offset = c->h;
        c->stage = ST_PAGES;
        if (c->flags & CK_READ_VERIFY_PAGES) {
            rc = get_scratch(c);
            if (rc < 0)
                return rc;
            rc = read_verify(c, rec, c->scratch);
        } else {
            rc = rd_skip(&c->rd, rec->len, "the payload of the PAGES record");
        }
        if (rc < 0)
            return rc;
        rc = push_loc(c, &img->pages, &img->npagerecs, &c->pages_cap, UINT64_MAX / 2, rec,
                      payload_off);
        if (rc < 0)
            return rc;
        c->npages += rec->raw_len / CK_PAGE_SIZE;
        break;

    case CK_REC_END: {
        struct ck_end e;
        if (rec->len != sizeof(e))
            return rec_fail(c, "payload is %llu bytes, expected %zu", (unsigned long long)rec->len,
                            sizeof(e));
        rc = read_verify(c, rec, &e);
        if (rc < 0)
            return rc;
        if (c->stage != ST_PAGES)
            img->pages_offset = c->h;
        if (e.nrecords != c->nrecords || e.npages != c->npages || e.raw_bytes != c->raw_bytes ||
            e.stored_bytes != c->stored_bytes)
            return rec_fail(c,
                            "totals do not match the image (records %llu/%llu, pages "
                            "%llu/%llu, raw bytes %llu/%llu, stored bytes %llu/%llu; "
                            "END says/counted)", (unsigned long long)e.nrecords,
                            (unsigned long long)c->nrecords, (unsigned long long)e.npages,
                            (unsigned long long)c->npages, (unsigned long long)e.raw_bytes,
                            (unsigned long long)c->raw_bytes, (unsigned long long)e.stored_bytes,
                            (unsigned long long)c->stored_bytes);
        img->end = e;
        img->file_size = c->rd.off;
        /* Every page that was not zero in a region a fork would hide must
         * be here (the writer once wrote such regions as zeros). */
        for (uint32_t i = 0; i < img->nmemcheck; i++) {
            const struct ck_memcheck *m = &img->memcheck[i];
            const struct ck_region *g = &img->regions[m->region];
            uint64_t have = ck_image_region_pages(img, m->region);
            if (have < m->nonzero_pages)
                return rd_fail(&c->rd, -EINVAL,
                               "memory region %#llx-%#llx (%s) had %llu non-zero pages at "
                               "checkpoint, the image holds %llu: its contents were lost",
                               (unsigned long long)g->start, (unsigned long long)g->end,
                               (m->flags & CK_REG_DONTFORK) ? "MADV_DONTFORK" : "MADV_WIPEONFORK",
                               (unsigned long long)m->nonzero_pages, (unsigned long long)have);
        }
        return 1;
    }

    default: {
        /* Unknown type (a newer minor version): verify and skip. */
        uint8_t *buf;
        rc = read_alloc(c, rec, &buf);
        if (rc < 0)
            return rc;
        free(buf);
        break;
    }
    }

    c->nrecords++;
    c->raw_bytes += rec->raw_len;
    c->stored_bytes += rec->len;
    return 0;

bad_order:
    return rec_fail(c, "unexpected record here (expected %s)", stage_expect[c->stage]);
}

/* Read and check the header. */
static int read_header(struct img_ctx *c)
{
    struct ck_header *h = &c->img->hdr;
    uint64_t start = c->rd.off;
    const char *why;
    size_t got;
    int rc;

    rc = rd_read_some(&c->rd, h, sizeof(*h), &got);
    if (rc < 0)
        return rc;
    if (got < sizeof(*h)) {
        size_t m = got < CK_MAGIC_LEN ? got : CK_MAGIC_LEN;
        if (memcmp(h->magic, CK_MAGIC, m) != 0)
            return rd_fail(&c->rd, -EINVAL, "header at byte %llu: not a ckshim image (bad magic)",
                           (unsigned long long)start);
        return rd_truncated(&c->rd, c->rd.off, "the 512-byte header",
                            start + sizeof(struct ck_header));
    }
    rc = ck_header_check(h, &why);
    if (rc < 0)
        return rd_fail(&c->rd, rc, "header at byte %llu: %s", (unsigned long long)start, why);
    return 0;
}

int ck_image_read(int fd, struct ck_image *img, uint32_t flags, char *err, size_t errlen)
{
    struct img_ctx c;
    struct stat st;
    int rc;

    if (err && errlen > 0)
        err[0] = '\0';
    memset(&c, 0, sizeof(c));
    c.rd.fd = fd;
    c.rd.err = err;
    c.rd.errlen = errlen;
    if (!img)
        return rd_fail(&c.rd, -EINVAL, "no image to read into");
    memset(img, 0, sizeof(*img));
    c.img = img;
    c.flags = flags;
    c.stage = ST_PROC;

    if (fstat(fd, &st) < 0) {
        int e = errno;
        return rd_fail(&c.rd, -e, "cannot stat the image: %s", strerror(e));
    }
    char rdbuf[65536];
    if (S_ISREG(st.st_mode)) {
        off_t cur = lseek(fd, 0, SEEK_CUR);
        if (cur >= 0) {
            c.rd.seekable = 1;
            c.rd.off = (uint64_t)cur;
            c.rd.size = (uint64_t)st.st_size;
            c.rd.buf = rdbuf;
            c.rd.bcap = sizeof rdbuf;
        }
    }

    rc = read_header(&c);
    if (rc < 0)
        goto fail;
    if (flags & CK_READ_HEADER_ONLY) {
        rd_done(&c.rd);
        return 0;
    }

    for (;;) {
        struct ck_rec rec;
        c.h = c.rd.off;
        rc = rd_read(&c.rd, &rec, sizeof(rec), "a record header");
        if (rc < 0)
            goto fail;
        rc = read_record(&c, &rec);
        if (rc < 0)
            goto fail;
        if (rc == 1)
            break;
    }
    rd_done(&c.rd);
    free(c.scratch);
    return 0;

fail:
    rd_done(&c.rd);
    free(c.scratch);
    ck_image_free(img);
    if (c.rd.err && c.rd.errlen > 0 && c.rd.err[0] == '\0')
        rd_fail(&c.rd, rc, "cannot read the image: %s", strerror(-rc));
    return rc;
}

uint64_t ck_image_region_pages(const struct ck_image *img, uint32_t region)
{
    const struct ck_region *g = &img->regions[region];
    uint64_t n = 0;
    for (uint64_t i = 0; i < img->npagerecs; i++) {
        const struct ck_rec *r = &img->pages[i].rec;
        if (r->arg >= g->start && r->arg < g->end)
            n += r->raw_len / CK_PAGE_SIZE;
    }
    return n;
}

void ck_image_free(struct ck_image *img)
{
    if (!img)
        return;
    free(img->memcheck);
    free(img->threads);
    free(img->regions);
    free(img->region_paths);
    free(img->fds);
    free(img->fd_paths);
    free(img->locks);
    free(img->ttys);
    free(img->guards);
    free(img->shms);
    free(img->fdstate);
    free(img->fdstate_buf);
    free(img->filedata);
    free(img->pages);
    memset(img, 0, sizeof(*img));
}
