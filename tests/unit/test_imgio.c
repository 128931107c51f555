/* test_imgio.c - write an image with ck_write_rec, read it back with
 * ck_image_read, then corrupt it in many ways: each corruption must be
 * reported (non-zero return, non-empty message), never crash. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "chunk.h"
#include "image.h"
#include "imgio.h"

#define PAGE 4096

/* How to build the test image. */
struct build_opts {
    int end_nrecords_delta;             /* wrong END totals */
    int end_npages_delta;
    int bad_path_off;                   /* REGIONS path outside the table */
    int unknown_rec;                    /* an unknown record after FDS */
    int skip_threads;                   /* no THREADS record */
    int dup_proc;                       /* PROC twice */
    int filedata;                       /* one FILEDATA record */
    uint16_t major;                     /* version_major to write (0: current) */
    uint32_t nthreads;                  /* header nthreads (0: 1) */
    int regions_count_delta;            /* REGIONS arg off by this */
    int memcheck;                       /* a MEMCHECK record after FDS */
    uint64_t memcheck_pages;            /* its count of non-zero heap pages */
    uint32_t memcheck_region;           /* the region it names (1: the heap) */
    int fd_extras;                      /* LOCKS/TTYS: 1 valid, 2 LOCKS twice,
                                           3 LOCKS after FILEDATA, 4 bad count */
    int guards;                         /* a GUARDS record: 1 good, 2 out of order */
    int shm;                            /* a SHM record: 1 good, 2 size 0 */
    int fdstate;                        /* a FDSTATE record: 1 good, 2 names an fd
                                           not in FDS, 3 runs past its payload,
                                           4 kind differs from the fd's */
    uint32_t st_kind;                   /* nonzero: fd 1 is of this kind, and the FDSTATE
                                           record holds st_len bytes of st_data for it */
    const void *st_data;
    uint32_t st_len;
};

/* Offsets of interesting places in the built image. */
struct layout {
    uint64_t proc_hdr, threads_hdr, regions_hdr, fds_hdr, pages_hdr[2], end_hdr, size;
    uint64_t pages_payload[2];
};

static uint8_t page_data[3 * PAGE];     /* 2 pages LZ4 + 1 page raw */

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int new_memfd(void)
{
    int fd = memfd_create("ckimg", MFD_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

static uint64_t pos(int fd)
{
    off_t o = lseek(fd, 0, SEEK_CUR);
    assert_true(o >= 0);
    return (uint64_t)o;
}

/* Writes the test image to fd. Returns its layout. */
static void build_image(int fd, const struct build_opts *o, struct layout *L)
{
    struct ck_header h;
    struct ck_proc *proc = calloc(1, sizeof(*proc));
    struct ck_thread th;
    uint64_t nrec = 0, npages = 0, raw = 0, stored = 0;

    memset(L, 0, sizeof(*L));
    memset(&h, 0, sizeof(h));
    h.orig_pid = 4242;
    h.uid = 1000;
    h.nthreads = o->nthreads ? o->nthreads : 1;
    h.counter_stamp = 7;
    snprintf(h.app_id, sizeof(h.app_id), "test-app");
    snprintf(h.exe, sizeof(h.exe), "/usr/bin/python3");
    ck_header_seal(&h);
    if (o->major) {
        h.version_major = o->major;
        h.checksum = XXH64(&h, offsetof(struct ck_header, checksum), 0);
    }
    assert_int_equal(ck_write_all(fd, &h, sizeof(h)), 0);

    /* PROC */
    proc->pid = 4242;
    proc->nthreads = 1;
    proc->mm.start_brk = 0x555555560000ULL;
    snprintf(proc->comm, sizeof(proc->comm), "python3");
    snprintf(proc->cwd, sizeof(proc->cwd), "/home/user/dir with spaces");
    L->proc_hdr = pos(fd);
    assert_int_equal(ck_write_rec(fd, CK_REC_PROC, 0, proc, sizeof(*proc), sizeof(*proc), 0, 0), 0);
    nrec++;
    raw += sizeof(*proc);
    stored += sizeof(*proc);
    if (o->dup_proc) {
        assert_int_equal(
            ck_write_rec(fd, CK_REC_PROC, 0, proc, sizeof(*proc), sizeof(*proc), 0, 0), 0);
        nrec++;
        raw += sizeof(*proc);
        stored += sizeof(*proc);
    }

    /* THREADS */
    memset(&th, 0, sizeof(th));
    th.tid = 4242;
    th.flags = CK_TF_MAIN;
    th.ctx.rip = 0x401000;
    th.nframes = 1;
    snprintf(th.frames[0].name, sizeof(th.frames[0].name), "main");
    L->threads_hdr = pos(fd);
    if (!o->skip_threads) {
        assert_int_equal(ck_write_rec(fd, CK_REC_THREADS, 0, &th, sizeof(th), sizeof(th), 0, 0), 0);
        nrec++;
        raw += sizeof(th);
        stored += sizeof(th);
    }

    /* REGIONS: 2 entries + string table */
    {
        static const char strings[] = "/usr/lib/my lib.so\0[heap]";
        uint8_t buf[2 * sizeof(struct ck_region) + sizeof(strings)];
        struct ck_region r[2];
        memset(r, 0, sizeof(r));
        r[0].start = 0x7f0000000000ULL;
        r[0].end = 0x7f0000002000ULL;
        r[0].prot = 5;
        r[0].flags = CK_REG_FILE;
        r[0].path_off = 0;
        r[0].path_len = 18;
        r[1].start = 0x555555560000ULL;
        r[1].end = 0x555555563000ULL;
        r[1].prot = 3;
        r[1].flags = CK_REG_HEAP | CK_REG_ANON | CK_REG_ALLPAGES;
        r[1].npages = 3;
        r[1].path_off = 19;
        r[1].path_len = 6;
        if (o->bad_path_off)
            r[1].path_off = 22;         /* 22 + 6 > 26-byte table */
        memcpy(buf, r, sizeof(r));
        memcpy(buf + sizeof(r), strings, sizeof(strings));
        L->regions_hdr = pos(fd);
        assert_int_equal(ck_write_rec(fd, CK_REC_REGIONS, 0, buf, sizeof(buf), sizeof(buf),
                                      (uint64_t)(2 + o->regions_count_delta), 0),
                         0);
        nrec++;
        raw += sizeof(buf);
        stored += sizeof(buf);
    }

    /* FDS: 2 entries, one without a path */
    {
        static const char strings[] = "/dev/null";
        uint8_t buf[2 * sizeof(struct ck_fd) + sizeof(strings) - 1];
        struct ck_fd f[2];
        memset(f, 0, sizeof(f));
        f[0].fd = 0;
        f[0].kind = CK_FD_CHR;
        f[0].share_with = -1;
        f[0].path_off = 0;
        f[0].path_len = 9;
        f[1].fd = 1;
        f[1].kind = o->st_kind ? o->st_kind : CK_FD_PIPE;
        f[1].share_with = -1;
        memcpy(buf, f, sizeof(f));
        memcpy(buf + sizeof(f), strings, sizeof(strings) - 1);
        L->fds_hdr = pos(fd);
        assert_int_equal(ck_write_rec(fd, CK_REC_FDS, 0, buf, sizeof(buf), sizeof(buf), 2, 0), 0);
        nrec++;
        raw += sizeof(buf);
        stored += sizeof(buf);
    }

    if (o->memcheck) {
        struct ck_memcheck m;
        memset(&m, 0, sizeof(m));
        m.region = o->memcheck_region;
        m.flags = CK_REG_HEAP | CK_REG_ANON | CK_REG_DONTFORK;
        m.nonzero_pages = o->memcheck_pages;
        assert_int_equal(ck_write_rec(fd, CK_REC_MEMCHECK, 0, &m, sizeof(m), sizeof(m), 1, 0), 0);
        nrec++;
        raw += sizeof(m);
        stored += sizeof(m);
    }

    struct ck_lock locks[2] = {{.fd = 0, .kind = CK_LOCK_POSIX, .write = 1, .start = 10, .len = 5},
                               {.fd = 1, .kind = CK_LOCK_FLOCK}};
#define PUT_LOCKS(n)                                                                              \
    do {                                                                                          \
        assert_int_equal(ck_write_rec(fd, CK_REC_LOCKS, 0, locks, sizeof(locks), sizeof(locks),   \
                                      (n), 0),                                                    \
                         0);                                                                      \
        nrec++;                                                                                   \
        raw += sizeof(locks);                                                                     \
        stored += sizeof(locks);                                                                  \
    } while (0)
    if (o->fd_extras == 1 || o->fd_extras == 2)
        PUT_LOCKS(2);
    if (o->fd_extras == 2)
        PUT_LOCKS(2);
    if (o->fd_extras == 4)
        PUT_LOCKS(3);
    if (o->fd_extras == 1) {
        struct ck_tty y = {.fd = 0, .lflag = 0x30, .ws_row = 24, .ws_col = 80};
        assert_int_equal(ck_write_rec(fd, CK_REC_TTYS, 0, &y, sizeof(y), sizeof(y), 1, 0), 0);
        nrec++;
        raw += sizeof(y);
        stored += sizeof(y);
    }
    if (o->guards) {
        struct ck_guard g[2] = {{0x11000, 0x12000}, {0x14000, 0x16000}};
        if (o->guards == 2)
            g[1].start = 0x10000;
        assert_int_equal(ck_write_rec(fd, CK_REC_GUARDS, 0, g, sizeof(g), sizeof(g), 2, 0), 0);
        nrec++;
        raw += sizeof(g);
        stored += sizeof(g);
    }
    if (o->shm) {
        struct ck_shm m = {.shmid = 7, .key = 0x1234, .size = o->shm == 2 ? 0 : 10000,
                           .mode = 0600, .flags = CK_SHMF_DEST};
        assert_int_equal(ck_write_rec(fd, CK_REC_SHM, 0, &m, sizeof(m), sizeof(m), 1, 0), 0);
        nrec++;
        raw += sizeof(m);
        stored += sizeof(m);
    }

    if (o->st_kind) {
        /* one entry: fd 1 with the caller's state, padded to 8 */
        size_t n = sizeof(struct ck_fdstate) + ((o->st_len + 7) & ~7u);
        uint8_t *buf = calloc(1, n);
        assert_non_null(buf);
        struct ck_fdstate e = {.fd = 1, .kind = o->st_kind, .len = o->st_len};
        memcpy(buf, &e, sizeof(e));
        memcpy(buf + sizeof(e), o->st_data, o->st_len);
        assert_int_equal(ck_write_rec(fd, CK_REC_FDSTATE, 0, buf, n, n, 1, 0), 0);
        free(buf);
        nrec++;
        raw += n;
        stored += n;
    } else if (o->fdstate) {
        /* one entry: fd 1 (a pipe in FDS) with 5 bytes of state, padded to 8 */
        uint8_t buf[sizeof(struct ck_fdstate) + 8];
        struct ck_fdstate e = {.fd = o->fdstate == 2 ? 7 : 1,
                               .kind = o->fdstate == 4 ? CK_FD_FILE : CK_FD_PIPE,
                               .len = o->fdstate == 3 ? 9 : 5};
        memset(buf, 0, sizeof(buf));
        memcpy(buf, &e, sizeof(e));
        memcpy(buf + sizeof(e), "state", 5);
        assert_int_equal(ck_write_rec(fd, CK_REC_FDSTATE, 0, buf, sizeof(buf), sizeof(buf), 1, 0),
                         0);
        nrec++;
        raw += sizeof(buf);
        stored += sizeof(buf);
    }

    if (o->unknown_rec) {
        static const char blob[] = "from a newer minor version";
        assert_int_equal(ck_write_rec(fd, 0x1234, 0, blob, sizeof(blob), 99, 0, 0), 0);
        nrec++;
        raw += 99;
        stored += sizeof(blob);
    }

    if (o->filedata) {
        static const char content[] = "contents of a deleted file\n";
        assert_int_equal(ck_write_rec(fd, CK_REC_FILEDATA, CK_RF_RAW, content,
                                      sizeof(content), sizeof(content), 3, 0),
                         0);
        nrec++;
        raw += sizeof(content);
        stored += sizeof(content);
    }
    if (o->fd_extras == 3)
        PUT_LOCKS(2);

    /* PAGES: 2 compressible pages, then 1 random page (stored raw) */
    {
        void *st = aligned_alloc(64, (ck_chunk_state_size() + 63) & ~(size_t)63);
        uint8_t *enc = malloc(ck_chunk_bound(2 * PAGE));
        uint32_t flags;
        size_t len;
        for (size_t i = 0; i < 2 * PAGE; i++)
            page_data[i] = (uint8_t)(i % 97 == 0 ? i : 0);
        for (size_t i = 2 * PAGE; i < 3 * PAGE; i++)
            page_data[i] = (uint8_t)rng();

        assert_int_equal(ck_chunk_encode(st, page_data, 2 * PAGE, enc,
                                         ck_chunk_bound(2 * PAGE), &flags, &len),
                         0);
        assert_int_equal(flags, CK_RF_LZ4);
        L->pages_hdr[0] = pos(fd);
        L->pages_payload[0] = L->pages_hdr[0] + sizeof(struct ck_rec);
        assert_int_equal(ck_write_rec(fd, CK_REC_PAGES, flags, enc, len, 2 * PAGE,
                                      0x555555560000ULL, 0),
                         0);
        nrec++;
        npages += 2;
        raw += 2 * PAGE;
        stored += len;

        assert_int_equal(ck_chunk_encode(st, page_data + 2 * PAGE, PAGE, enc,
                                         ck_chunk_bound(PAGE), &flags, &len),
                         0);
        assert_int_equal(flags, CK_RF_RAW);
        L->pages_hdr[1] = pos(fd);
        L->pages_payload[1] = L->pages_hdr[1] + sizeof(struct ck_rec);
        assert_int_equal(ck_write_rec(fd, CK_REC_PAGES, flags, enc, len, PAGE,
                                      0x555555562000ULL, 0),
                         0);
        nrec++;
        npages += 1;
        raw += PAGE;
        stored += len;
        free(enc);
        free(st);
    }

    /* END */
    {
        struct ck_end e;
        e.nrecords = nrec + (uint64_t)o->end_nrecords_delta;
        e.npages = npages + (uint64_t)o->end_npages_delta;
        e.raw_bytes = raw;
        e.stored_bytes = stored;
        L->end_hdr = pos(fd);
        assert_int_equal(ck_write_rec(fd, CK_REC_END, 0, &e, sizeof(e), sizeof(e), 0, 0), 0);
    }
    L->size = pos(fd);
    free(proc);
}

/* Builds an image and returns its bytes (malloc'd). */
static uint8_t *build_bytes(const struct build_opts *o, struct layout *L)
{
    int fd = new_memfd();
    build_image(fd, o, L);
    uint8_t *b = malloc(L->size);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, L->size, 0), (ssize_t)L->size);
    close(fd);
    return b;
}

/* Reads n bytes of b as an image through a memfd. */
static int read_bytes(const uint8_t *b, size_t n, uint32_t flags, struct ck_image *img,
                      char *err, size_t errlen)
{
    int fd = new_memfd();
    if (n > 0)
        assert_int_equal(write(fd, b, n), (ssize_t)n);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    int rc = ck_image_read(fd, img, flags, err, errlen);
    close(fd);
    return rc;
}

/* Builds an image and reads it back (every page verified), which must
 * succeed. Returns its bytes (malloc'd). */
static uint8_t *build_read_ok(const struct build_opts *o, struct layout *L, struct ck_image *img)
{
    char err[256];
    uint8_t *b = build_bytes(o, L);
    int rc = read_bytes(b, L->size, CK_READ_VERIFY_PAGES, img, err, sizeof(err));
    if (rc != 0)
        fail_msg("ck_image_read: %d %s", rc, err);
    return b;
}

/* Expects the image in b to be rejected; returns the message. */
static const char *expect_fail(const uint8_t *b, size_t n, uint32_t flags)
{
    static char err[512];
    struct ck_image img;
    memset(err, 0, sizeof(err));
    int rc = read_bytes(b, n, flags, &img, err, sizeof(err));
    if (rc == 0)
        fail_msg("image of %zu bytes accepted", n);
    assert_true(rc < 0);
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
    /* img is zeroed on failure */
    assert_null(img.threads);
    assert_null(img.regions);
    assert_null(img.pages);
    assert_int_equal(img.nregions, 0);
    return err;
}

static void check_image(const struct ck_image *img, const struct layout *L, int fd)
{
    assert_int_equal(img->hdr.orig_pid, 4242);
    assert_string_equal(img->hdr.app_id, "test-app");
    assert_int_equal(img->proc.pid, 4242);
    assert_string_equal(img->proc.cwd, "/home/user/dir with spaces");
    assert_int_equal(img->nthreads, 1);
    assert_int_equal(img->threads[0].tid, 4242);
    assert_int_equal(img->threads[0].ctx.rip, 0x401000);
    assert_string_equal(img->threads[0].frames[0].name, "main");
    assert_int_equal(img->nregions, 2);
    assert_int_equal(img->regions[1].npages, 3);
    assert_string_equal(img->region_paths[0], "/usr/lib/my lib.so");
    assert_string_equal(img->region_paths[1], "[heap]");
    assert_int_equal(img->nfds, 2);
    assert_string_equal(img->fd_paths[0], "/dev/null");
    assert_string_equal(img->fd_paths[1], "");
    assert_int_equal(img->fds[1].kind, CK_FD_PIPE);
    assert_int_equal(img->npagerecs, 2);
    assert_int_equal(img->pages[0].rec.arg, 0x555555560000ULL);
    assert_int_equal(img->pages[0].rec.raw_len, 2 * PAGE);
    assert_int_equal(img->pages[0].offset, L->pages_payload[0]);
    assert_int_equal(img->pages[1].rec.flags, CK_RF_RAW);
    assert_int_equal(img->pages[1].offset, L->pages_payload[1]);
    assert_int_equal(img->pages_offset, L->pages_hdr[0]);
    assert_int_equal(img->end.npages, 3);
    assert_int_equal(img->file_size, L->size);

    if (fd >= 0) {
        /* decode the pages from where the reader says they are */
        uint8_t out[3 * PAGE];
        for (int i = 0; i < 2; i++) {
            const struct ck_rec_loc *p = &img->pages[i];
            uint8_t *buf = malloc(p->rec.len);
            assert_int_equal(pread(fd, buf, p->rec.len, (off_t)p->offset), (ssize_t)p->rec.len);
            assert_int_equal(ck_rec_checksum(&p->rec, buf), p->rec.checksum);
            assert_int_equal(ck_chunk_decode(p->rec.flags, buf, p->rec.len,
                                             out + (p->rec.arg - 0x555555560000ULL),
                                             p->rec.raw_len),
                             0);
            free(buf);
        }
        assert_memory_equal(out, page_data, sizeof(out));
    }
}

static void test_roundtrip(void **state)
{
    struct build_opts o;
    struct layout L;
    struct ck_image img;
    char err[256];
    (void)state;

    memset(&o, 0, sizeof(o));
    int fd = new_memfd();
    build_image(fd, &o, &L);
    for (int verify = 0; verify < 2; verify++) {
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        err[0] = 'x';
        int rc = ck_image_read(fd, &img, verify ? CK_READ_VERIFY_PAGES : 0, err, sizeof(err));
        if (rc != 0)
            fail_msg("ck_image_read: %d %s", rc, err);
        assert_string_equal(err, "");
        assert_int_equal(pos(fd), L.size);      /* left after END */
        check_image(&img, &L, fd);
        ck_image_free(&img);
        assert_null(img.threads);
        ck_image_free(&img);                    /* twice is fine */
    }

    /* header only */
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(ck_image_read(fd, &img, CK_READ_HEADER_ONLY, err, sizeof(err)), 0);
    assert_int_equal(img.hdr.nthreads, 1);
    assert_null(img.threads);
    ck_image_free(&img);

    /* trailing bytes after END are not read */
    assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)L.size);
    assert_int_equal(write(fd, "garbage", 7), 7);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(ck_image_read(fd, &img, CK_READ_VERIFY_PAGES, err, sizeof(err)), 0);
    assert_int_equal(img.file_size, L.size);
    ck_image_free(&img);
    close(fd);
}

/* The same image through a pipe: no lseek, pages skipped by reading. */
static void test_pipe(void **state)
{
    struct build_opts o;
    struct layout L;
    struct ck_image img;
    char err[256];
    int p[2];
    (void)state;

    memset(&o, 0, sizeof(o));
    uint8_t *b = build_bytes(&o, &L);
    for (int verify = 0; verify < 2; verify++) {
        assert_int_equal(pipe(p), 0);
        assert_true(fcntl(p[1], F_SETPIPE_SZ, 1 << 20) >= (int)L.size);
        assert_int_equal(write(p[1], b, L.size), (ssize_t)L.size);
        close(p[1]);
        int rc = ck_image_read(p[0], &img, verify ? CK_READ_VERIFY_PAGES : 0, err, sizeof(err));
        if (rc != 0)
            fail_msg("ck_image_read: %d %s", rc, err);
        check_image(&img, &L, -1);
        ck_image_free(&img);
        close(p[0]);
    }
    /* truncated pipe */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], b, L.pages_payload[1] + 100), (ssize_t)(L.pages_payload[1] + 100));
    close(p[1]);
    assert_true(ck_image_read(p[0], &img, 0, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "truncated"));
    close(p[0]);
    free(b);
}

static void test_extra_records(void **state)
{
    struct build_opts o;
    struct layout L;
    struct ck_image img;
    (void)state;

    memset(&o, 0, sizeof(o));
    o.unknown_rec = 1;
    o.filedata = 1;
    o.fd_extras = 1;
    uint8_t *b = build_read_ok(&o, &L, &img);
    assert_int_equal(img.nfiledata, 1);
    assert_int_equal(img.filedata[0].rec.arg, 3);
    assert_int_equal(img.npagerecs, 2);
    assert_int_equal(img.end.nrecords, 10);
    assert_int_equal(img.nlocks, 2);
    assert_int_equal(img.locks[0].kind, CK_LOCK_POSIX);
    assert_int_equal(img.locks[0].len, 5);
    assert_int_equal(img.locks[1].fd, 1);
    assert_int_equal(img.nttys, 1);
    assert_int_equal(img.ttys[0].ws_col, 80);
    ck_image_free(&img);
    free(b);
}

/* A MEMCHECK record: an image that holds fewer pages of a MADV_DONTFORK
 * region than were not zero at checkpoint is refused (the writer lost
 * them); one that names a region that does not exist too. */
static void test_memcheck(void **state)
{
    struct build_opts o;
    struct layout L;
    struct ck_image img;
    (void)state;

    memset(&o, 0, sizeof(o));
    o.memcheck = 1;
    o.memcheck_region = 1;
    o.memcheck_pages = 3;               /* the heap's 3 pages are all there */
    uint8_t *b = build_read_ok(&o, &L, &img);
    assert_int_equal(img.nmemcheck, 1);
    assert_int_equal(img.memcheck[0].nonzero_pages, 3);
    assert_int_equal(ck_image_region_pages(&img, 1), 3);
    ck_image_free(&img);
    free(b);

    o.memcheck_pages = 4;
    b = build_bytes(&o, &L);
    const char *why = expect_fail(b, L.size, 0);
    assert_non_null(strstr(why, "contents were lost"));
    assert_non_null(strstr(why, "MADV_DONTFORK"));
    free(b);

    o.memcheck_pages = 1;
    o.memcheck_region = 2;
    b = build_bytes(&o, &L);
    why = expect_fail(b, L.size, 0);
    assert_non_null(strstr(why, "MEMCHECK"));
    free(b);
}

/* The optional LOCKS and TTYS records (read in test_extra_records) are
 * refused twice, after FILEDATA, or with a count that does not match. */
static void test_fd_extras(void **state)
{
    struct build_opts o;
    struct layout L;
    (void)state;

    static const struct {
        int extras;
        const char *why;
    } bad[] = {
        {2, "a second LOCKS record"},
        {3, "unexpected record here"},
        {4, "for 3 entries"},
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&o, 0, sizeof(o));
        o.fd_extras = bad[i].extras;
        o.filedata = 1;
        uint8_t *b = build_bytes(&o, &L);
        const char *msg = expect_fail(b, L.size, 0);
        if (!strstr(msg, bad[i].why))
            fail_msg("case %d: '%s' does not say '%s'", bad[i].extras, msg, bad[i].why);
        free(b);
    }
}

/* GUARDS and SHM records: read into the image; malformed entries (runs
 * out of order, a segment of size 0) refuse it. */
static void test_guards_shm(void **state)
{
    struct build_opts o;
    struct layout L;
    struct ck_image img;
    (void)state;

    memset(&o, 0, sizeof(o));
    o.guards = 1;
    o.shm = 1;
    uint8_t *b = build_read_ok(&o, &L, &img);
    assert_int_equal(img.nguards, 2);
    assert_int_equal(img.guards[1].start, 0x14000);
    assert_int_equal(img.nshms, 1);
    assert_int_equal(img.shms[0].size, 10000);
    assert_int_equal(img.shms[0].flags, CK_SHMF_DEST);
    ck_image_free(&img);
    free(b);

    o.guards = 2;
    b = build_bytes(&o, &L);
    assert_non_null(strstr(expect_fail(b, L.size, 0), "GUARDS"));
    free(b);

    o.guards = 1;
    o.shm = 2;
    b = build_bytes(&o, &L);
    assert_non_null(strstr(expect_fail(b, L.size, 0), "SHM"));
    free(b);
}

/* FDSTATE: an entry reaches the descriptor it names (fds/fdkind.h); one
 * naming no descriptor of FDS, of another kind, or running past the
 * payload refuses the image. */
static void test_fdstate(void **state)
{
    struct build_opts o;
    struct layout L;
    struct ck_image img;
    (void)state;

    memset(&o, 0, sizeof(o));
    o.fdstate = 1;
    uint8_t *b = build_read_ok(&o, &L, &img);
    assert_non_null(img.fdstate);
    assert_null(img.fdstate[0].data);
    assert_int_equal(img.fdstate[1].len, 5);
    assert_memory_equal(img.fdstate[1].data, "state", 5);
    ck_image_free(&img);
    free(b);

    static const struct {
        int kind;
        const char *why;
    } bad[] = {
        {2, "names fd 7"},
        {3, "past the payload"},
        {4, "of kind 1"},
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.fdstate = bad[i].kind;
        b = build_bytes(&o, &L);
        const char *msg = expect_fail(b, L.size, 0);
        if (!strstr(msg, "FDSTATE") || !strstr(msg, bad[i].why))
            fail_msg("case %d: '%s' does not say FDSTATE and '%s'", bad[i].kind, msg, bad[i].why);
        free(b);
    }
}

/* The state of each kind of fds/ is checked against its own bytes by
 * the reader: a count, length or offset that reaches past them (a forged
 * image) refuses the image, so no kind reads past it or gives the kernel
 * a forged address length. */
static void test_fdstate_kinds(void **state)
{
    struct build_opts o;
    struct layout L;
    struct ck_image img;
    (void)state;
    union {
        struct ck_unix u;
        struct ck_inet in;
        struct ck_timerfd t;
        struct ck_signalfd s;
        uint8_t raw[1024];
    } st;
    struct ck_inotify ih = {.nwatch = 1, .next_wd = 2};
    struct ck_inotify_watch iw = {.wd = 1, .mask = 2, .path_off = 0};
#define RESET() (memset(&o, 0, sizeof(o)), memset(&st, 0, sizeof(st)), o.st_data = &st)
#define INOTIFY(path, plen)                                                                       \
    (memcpy(st.raw, &ih, sizeof(ih)), memcpy(st.raw + sizeof(ih), &iw, sizeof(iw)),               \
     memcpy(st.raw + sizeof(ih) + sizeof(iw), path, plen),                                        \
     o.st_len = (uint32_t)(sizeof(ih) + sizeof(iw) + plen))
#define BAD(why)                                                                                  \
    do {                                                                                          \
        uint8_t *b_ = build_bytes(&o, &L);                                                        \
        const char *m_ = expect_fail(b_, L.size, 0);                                              \
        if (!strstr(m_, "FDSTATE") || !strstr(m_, "damaged") || !strstr(m_, why))                 \
            fail_msg("line %d: '%s' does not say FDSTATE, damaged and '%s'", __LINE__, m_, why);  \
        free(b_);                                                                                 \
    } while (0)
#define GOOD()                                                                                    \
    do {                                                                                          \
        uint8_t *b_ = build_read_ok(&o, &L, &img);                                                \
        assert_int_equal(img.fdstate[1].len, o.st_len);                                           \
        ck_image_free(&img);                                                                      \
        free(b_);                                                                                 \
    } while (0)

    /* unix */
    RESET();
    o.st_kind = CK_FD_UNIX;
    st.u.so.family = AF_UNIX;
    st.u.so.type = SOCK_STREAM;
    st.u.namelen = 108;
    memset(st.u.name, 'a', 108);        /* sun_path may have no NUL */
    o.st_len = sizeof(st.u);
    GOOD();
    st.u.namelen = 109;
    BAD("longer than sun_path");
    st.u.namelen = 5;
    st.u.peerlen = 200;
    BAD("longer than sun_path");
    st.u.peerlen = 0;
    st.u.nicons = 2;
    o.st_len = sizeof(st.u) + 8;        /* room for one */
    BAD("waiting clients");
    o.st_len = sizeof(st.u) + 16;
    GOOD();
    st.u.so.family = AF_INET;
    BAD("another family");
    st.u.so.family = AF_UNIX;
    o.st_len = sizeof(st.u) - 1;
    BAD("too short for its kind");

    /* inet */
    RESET();
    o.st_kind = CK_FD_INET;
    st.in.so.family = AF_INET6;
    st.in.so.type = SOCK_STREAM;
    st.in.role = CK_INET_PAIR;
    o.st_len = sizeof(st.in);
    GOOD();
    st.in.role = 77;
    BAD("role");
    st.in.role = CK_INET_LISTEN;
    st.in.so.type = SOCK_RAW;
    BAD("type");
    o.st_len = 8;
    BAD("too short for its kind");

    /* inotify: the watch's path must end inside the entry */
    RESET();
    o.st_kind = CK_FD_INOTIFY;
    INOTIFY("/tmp", 5);
    GOOD();
    INOTIFY("/tmpX", 5);                /* no NUL */
    BAD("path");
    iw.path_off = 5;
    INOTIFY("/tmp", 5);
    BAD("path");
    iw.path_off = 0;
    ih.nwatch = 1000;
    INOTIFY("/tmp", 5);
    BAD("more inotify watches");
    ih.nwatch = 1;

    /* timerfd, signalfd */
    RESET();
    o.st_kind = CK_FD_TIMERFD;
    o.st_len = sizeof(st.t);
    st.t.interval_ns = 1000;
    GOOD();
    st.t.deadline_ns = INT64_MIN;
    BAD("negative");
    o.st_len = 4;
    BAD("too short for its kind");
    RESET();
    o.st_kind = CK_FD_SIGNALFD;
    o.st_len = sizeof(st.s);
    GOOD();
    o.st_len = 8;
    BAD("too short for its kind");
#undef RESET
#undef INOTIFY
#undef BAD
#undef GOOD
}

static void test_truncated(void **state)
{
    struct build_opts o;
    struct layout L;
    (void)state;

    memset(&o, 0, sizeof(o));
    uint8_t *b = build_bytes(&o, &L);
    for (uint32_t flags = 0; flags <= CK_READ_VERIFY_PAGES; flags++) {
        for (size_t n = 0; n < L.size; n += (n < 700 || n > L.size - 300) ? 1 : 13) {
            const char *err = expect_fail(b, n, flags);
            if (!strstr(err, "truncated"))
                fail_msg("cut at %zu: %s", n, err);
        }
    }
    /* the message names the byte */
    const char *err = expect_fail(b, L.pages_payload[0] + 5, 0);
    char want[64];
    snprintf(want, sizeof(want), "at byte %llu", (unsigned long long)(L.pages_payload[0] + 5));
    assert_non_null(strstr(err, want));
    free(b);
}

static void test_bad_header(void **state)
{
    struct build_opts o;
    struct layout L;
    const char *err;
    (void)state;

    memset(&o, 0, sizeof(o));
    uint8_t *b = build_bytes(&o, &L);
    uint8_t *c = malloc(L.size);

    memcpy(c, b, L.size);
    c[0] = 'X';
    err = expect_fail(c, L.size, 0);
    assert_non_null(strstr(err, "bad magic"));
    err = expect_fail((const uint8_t *)"#!/bin/sh\necho hi\n", 18, 0);
    assert_non_null(strstr(err, "bad magic"));

    memcpy(c, b, L.size);
    c[100] ^= 0x40;
    err = expect_fail(c, L.size, 0);
    assert_non_null(strstr(err, "checksum"));

    memcpy(c, b, L.size);
    c[offsetof(struct ck_header, checksum)] ^= 1;
    err = expect_fail(c, L.size, 0);
    assert_non_null(strstr(err, "checksum"));

    /* newer major version (with a valid checksum) */
    free(b);
    o.major = 3;
    b = build_bytes(&o, &L);
    struct ck_image img;
    char msg[256];
    assert_int_equal(read_bytes(b, L.size, 0, &img, msg, sizeof(msg)), -EPROTONOSUPPORT);
    assert_non_null(strstr(msg, "image format 3.x is newer than this ckshim (2.x)"));

    /* ck_header_check directly */
    struct ck_header h;
    const char *why = NULL;
    memset(&h, 0, sizeof(h));
    ck_header_seal(&h);
    assert_int_equal(ck_header_check(&h, &why), 0);
    h.version_minor = 7;                /* newer minor: fine once resealed */
    h.checksum = XXH64(&h, offsetof(struct ck_header, checksum), 0);
    assert_int_equal(ck_header_check(&h, &why), 0);
    h.version_major = 300;
    assert_int_equal(ck_header_check(&h, &why), -EPROTONOSUPPORT);
    assert_true(strlen(why) > 0);
    h.version_major = 1;                /* older major: named, not "corrupted" */
    assert_int_equal(ck_header_check(&h, &why), -EPROTONOSUPPORT);
    assert_non_null(strstr(why, "older ckshim"));
    h.version_major = 0;
    assert_int_equal(ck_header_check(&h, &why), -EINVAL);
    ck_header_seal(&h);
    h.header_size = 100;
    assert_int_equal(ck_header_check(&h, &why), -EINVAL);

    free(c);
    free(b);
}

static void test_bad_records(void **state)
{
    struct build_opts o;
    struct layout L;
    const char *err;
    (void)state;

    memset(&o, 0, sizeof(o));
    uint8_t *b = build_bytes(&o, &L);
    uint8_t *c = malloc(L.size);

    /* a byte of a record header: type, flags, len, raw_len, arg, checksum */
    static const size_t fields[] = {0, 4, 8, 12, 16, 24, 32, 40, 47};
    const uint64_t hdrs[] = {L.proc_hdr, L.threads_hdr, L.regions_hdr, L.fds_hdr,
                             L.pages_hdr[0], L.pages_hdr[1], L.end_hdr};
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
            memcpy(c, b, L.size);
            c[hdrs[i] + fields[f]] ^= 0x08;
            expect_fail(c, L.size, CK_READ_VERIFY_PAGES);
            memcpy(c, b, L.size);
            if (c[hdrs[i] + fields[f]] == 0xff)
                continue;               /* no change */
            c[hdrs[i] + fields[f]] = 0xff;
            expect_fail(c, L.size, CK_READ_VERIFY_PAGES);
        }
    }

    /* a PAGES payload byte: only seen with CK_READ_VERIFY_PAGES */
    memcpy(c, b, L.size);
    c[L.pages_payload[0] + 3] ^= 0x10;
    err = expect_fail(c, L.size, CK_READ_VERIFY_PAGES);
    assert_non_null(strstr(err, "checksum"));
    {
        struct ck_image img;
        char msg[256];
        assert_int_equal(read_bytes(c, L.size, 0, &img, msg, sizeof(msg)), 0);
        ck_image_free(&img);
    }

    /* metadata payload bytes are always verified */
    memcpy(c, b, L.size);
    c[L.regions_hdr + sizeof(struct ck_rec) + 3] ^= 0x10;
    err = expect_fail(c, L.size, 0);
    assert_non_null(strstr(err, "checksum"));

    /* every single-byte change anywhere is caught with VERIFY_PAGES */
    for (size_t i = 0; i < L.size; i += 1 + (rng() % 5)) {
        memcpy(c, b, L.size);
        c[i] ^= (uint8_t)(1 + rng() % 255);
        expect_fail(c, L.size, CK_READ_VERIFY_PAGES);
    }
    /* random multi-byte garbage in random places */
    for (int k = 0; k < 2000; k++) {
        memcpy(c, b, L.size);
        int n = 1 + (int)(rng() % 8);
        for (int j = 0; j < n; j++)
            c[rng() % L.size] = (uint8_t)rng();
        struct ck_image img;
        char msg[256];
        if (read_bytes(c, L.size, CK_READ_VERIFY_PAGES, &img, msg, sizeof(msg)) == 0)
            ck_image_free(&img);        /* all changes may have been no-ops */
    }
    free(c);
    free(b);
}

/* Images that are well checksummed but wrong. */
static void test_semantic_errors(void **state)
{
    struct build_opts o;
    struct layout L;
    uint8_t *b;
    const char *err;
    (void)state;

    memset(&o, 0, sizeof(o));
    o.end_nrecords_delta = 1;
    b = build_bytes(&o, &L);
    err = expect_fail(b, L.size, 0);
    assert_non_null(strstr(err, "END"));
    assert_non_null(strstr(err, "totals"));
    free(b);

    memset(&o, 0, sizeof(o));
    o.end_npages_delta = -1;
    b = build_bytes(&o, &L);
    expect_fail(b, L.size, CK_READ_VERIFY_PAGES);
    free(b);

    memset(&o, 0, sizeof(o));
    o.bad_path_off = 1;
    b = build_bytes(&o, &L);
    err = expect_fail(b, L.size, 0);
    assert_non_null(strstr(err, "outside"));
    free(b);

    memset(&o, 0, sizeof(o));
    o.skip_threads = 1;
    b = build_bytes(&o, &L);
    err = expect_fail(b, L.size, 0);
    assert_non_null(strstr(err, "expected THREADS"));
    free(b);

    memset(&o, 0, sizeof(o));
    o.dup_proc = 1;
    b = build_bytes(&o, &L);
    expect_fail(b, L.size, 0);
    free(b);

    memset(&o, 0, sizeof(o));
    o.nthreads = 2;                     /* header says 2, THREADS holds 1 */
    b = build_bytes(&o, &L);
    expect_fail(b, L.size, 0);
    free(b);

    memset(&o, 0, sizeof(o));
    o.regions_count_delta = 1000;       /* more regions than bytes */
    b = build_bytes(&o, &L);
    expect_fail(b, L.size, 0);
    free(b);

    memset(&o, 0, sizeof(o));
    o.regions_count_delta = 1;          /* 3 regions: third reads the table as an entry */
    b = build_bytes(&o, &L);
    expect_fail(b, L.size, 0);
    free(b);
}

/* Records written by hand with bad PAGES headers (valid checksums). */
static void test_bad_pages(void **state)
{
    struct build_opts o;
    struct layout L;
    uint8_t *b;
    uint8_t page[PAGE];
    (void)state;

    memset(&o, 0, sizeof(o));
    b = build_bytes(&o, &L);
    memset(page, 0x5a, sizeof(page));
    struct {
        uint32_t flags;
        uint64_t len, raw_len, arg;
    } cases[] = {
        {CK_RF_RAW, PAGE, PAGE, 0x1001},                        /* unaligned address */
        {CK_RF_RAW, 100, 100, 0x1000},                          /* not whole pages */
        {CK_RF_RAW, PAGE - 1, PAGE, 0x1000},                    /* RAW len != raw_len */
        {0, PAGE, PAGE, 0x1000},                                /* no flags */
        {CK_RF_RAW | CK_RF_LZ4, PAGE, PAGE, 0x1000},            /* both flags */
        {CK_RF_LZ4, PAGE, 1024ULL * PAGE, 0x1000},              /* too many pages */
        {CK_RF_RAW, 0, 0, 0x1000},                              /* empty */
        {CK_RF_RAW, PAGE, PAGE, 0xfffffffffffff000ULL},         /* wraps */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = new_memfd();
        assert_int_equal(write(fd, b, L.pages_hdr[0]), (ssize_t)L.pages_hdr[0]);
        assert_int_equal(ck_write_rec(fd, CK_REC_PAGES, cases[i].flags, page, cases[i].len,
                                      cases[i].raw_len, cases[i].arg, 0),
                         0);
        struct ck_end e = {5, cases[i].raw_len / PAGE, 0, 0};
        assert_int_equal(ck_write_rec(fd, CK_REC_END, 0, &e, sizeof(e), sizeof(e), 0, 0), 0);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct ck_image img;
        char err[256] = "";
        int rc = ck_image_read(fd, &img, 0, err, sizeof(err));
        if (rc == 0)
            fail_msg("bad PAGES case %zu accepted", i);
        assert_true(strlen(err) > 0);
        close(fd);
    }
    free(b);
}

static void test_checksum_and_writer(void **state)
{
    struct ck_rec r;
    static const char payload[] = "hello, image";
    (void)state;

    memset(&r, 0, sizeof(r));
    r.type = CK_REC_PAGES;
    r.len = sizeof(payload);
    r.checksum = 0x1234;                /* ignored */
    struct ck_rec z = r;
    z.checksum = 0;
    uint64_t seed = XXH64(&z, sizeof(z), 0);
    assert_int_equal(ck_rec_checksum(&r, payload), XXH64(payload, sizeof(payload), seed));

    /* ck_write_rec writes header + payload */
    int fd = new_memfd();
    assert_int_equal(ck_write_rec(fd, 77, CK_RF_RAW, payload, sizeof(payload),
                                  sizeof(payload), 1, 2),
                     0);
    assert_int_equal(pos(fd), sizeof(struct ck_rec) + sizeof(payload));
    struct ck_rec back;
    assert_int_equal(pread(fd, &back, sizeof(back), 0), (ssize_t)sizeof(back));
    assert_int_equal(back.type, 77);
    assert_int_equal(back.arg2, 2);
    assert_int_equal(back.checksum, ck_rec_checksum(&back, payload));
    close(fd);

    /* errors come back as -errno */
    assert_int_equal(ck_write_all(-1, "x", 1), -EBADF);
    assert_int_equal(ck_write_rec(-1, 1, 0, "x", 1, 1, 0, 0), -EBADF);

    /* ck_image_read on a bad fd reports, does not crash */
    struct ck_image img;
    char err[128];
    assert_true(ck_image_read(-1, &img, 0, err, sizeof(err)) < 0);
    assert_true(strlen(err) > 0);
    /* a NULL error buffer is fine */
    assert_true(ck_image_read(-1, &img, 0, NULL, 0) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_pipe),
        cmocka_unit_test(test_extra_records),
        cmocka_unit_test(test_memcheck),
        cmocka_unit_test(test_fd_extras),
        cmocka_unit_test(test_guards_shm),
        cmocka_unit_test(test_fdstate),
        cmocka_unit_test(test_fdstate_kinds),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_semantic_errors),
        cmocka_unit_test(test_bad_pages),
        cmocka_unit_test(test_checksum_and_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
