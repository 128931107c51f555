/* fuzz_image.c - libFuzzer target for the image reader.
 *
 * The input is written to a memfd and read with ck_image_read(...,
 * CK_READ_VERIFY_PAGES); if it is accepted, every PAGES and FILEDATA
 * payload is decoded with ck_chunk_decode into an exactly sized buffer,
 * and (with -DCK_FUZZ_KINDS, linked with fds/) every descriptor's kind
 * describes its FDSTATE entry as `coord inspect` does. The seed has an
 * entry of each kind that has one (timerfd, signalfd, inotify, unix and
 * inet sockets), so that mutations reach each kind's checks.
 * Built with -DCK_FUZZ_SEED_MAIN it is instead a program that writes a
 * small valid image to argv[1], a seed for the corpus.
 * Build and run: bash tests/fuzz.sh SECONDS */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chunk.h"
#include "fuzzlib.h"
#include "image.h"
#include "imgio.h"
#include "xxh64.h"
#ifdef CK_FUZZ_KINDS
#include "fdkind.h"
int ck_unix_outside(const struct ck_image *im, char *out, size_t outlen);
#endif

static void decode_locs(int fd, const struct ck_rec_loc *locs, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        const struct ck_rec *rec = &locs[i].rec;
        uint8_t *buf = malloc(rec->len ? rec->len : 1);
        uint8_t *out = malloc(rec->raw_len ? rec->raw_len : 1);
        if (!buf || !out)
            abort();
        if (pread(fd, buf, rec->len, (off_t)locs[i].offset) != (ssize_t)rec->len)
            abort();                    /* the reader said it was there */
        if (ck_rec_checksum(rec, buf) != rec->checksum)
            abort();                    /* and verified it */
        (void)ck_chunk_decode(rec->flags, buf, rec->len, out, rec->raw_len);
        free(buf);
        free(out);
    }
}

#ifndef CK_FUZZ_SEED_MAIN

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Recompute the header and record checksums of the image in b so that
 * mutations of fields get past the checksums to the checks behind them. */
static void fix_checksums(uint8_t *b, size_t size)
{
    struct ck_header h;
    struct ck_rec rec;
    size_t off;

    if (size < sizeof(h))
        return;
    memcpy(&h, b, sizeof(h));
    h.checksum = ck_xxh64(&h, offsetof(struct ck_header, checksum), 0);
    memcpy(b, &h, sizeof(h));
    for (off = sizeof(h); size - off >= sizeof(rec);) {
        memcpy(&rec, b + off, sizeof(rec));
        if (rec.len > size - off - sizeof(rec))
            break;
        rec.checksum = ck_rec_checksum(&rec, b + off + sizeof(rec));
        memcpy(b + off, &rec, sizeof(rec));
        off += sizeof(rec) + rec.len;
        if (rec.type == CK_REC_END)
            break;
    }
}

static void read_one(const uint8_t *data, size_t size)
{
    struct ck_image img;
    char err[512];
    int fd = fuzz_load("fuzz-image", data, size);

    err[0] = '\0';
    int rc = ck_image_read(fd, &img, CK_READ_VERIFY_PAGES, err, sizeof(err));
    if (rc < 0) {
        if (err[0] == '\0' || strchr(err, '\n'))
            abort();                    /* every failure explains itself in one line */
        if (img.threads || img.regions || img.pages || img.nregions)
            abort();                    /* and leaves a zeroed image */
        return;
    }
    if (rc != 0 || img.file_size > size || img.nthreads < 1)
        abort();
    for (uint32_t i = 0; i < img.nregions; i++)
        (void)strlen(img.region_paths[i]);
    for (uint32_t i = 0; i < img.nfds; i++)
        (void)strlen(img.fd_paths[i]);
    decode_locs(fd, img.pages, img.npagerecs);
    decode_locs(fd, img.filedata, img.nfiledata);
#ifdef CK_FUZZ_KINDS
    /* what coord inspect and checkpoint's notes make of each entry */
    for (uint32_t i = 0; i < img.nfds; i++) {
        const struct ck_fdkind *k = ck_fdkind_of(img.fds[i].kind);
        char line[512];
        if (k && k->describe)
            k->describe(&img.fds[i], img.fdstate ? img.fdstate[i].data : NULL,
                        img.fdstate ? img.fdstate[i].len : 0, line, sizeof(line));
    }
    char notes[1024];
    (void)ck_unix_outside(&img, notes, sizeof(notes));
#endif
    ck_image_free(&img);
#ifdef CK_FUZZ_AUTH
    /* The authentication pass parses the same untrusted bytes. */
    err[0] = '\0';
    if (ck_image_authenticate(fd, fuzz_key(), err, sizeof(err)) < 0 && err[0] == '\0')
        abort();
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* As is, then with valid checksums. */
    read_one(data, size);
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        abort();
    memcpy(b, data, size);
    fix_checksums(b, size);
    read_one(b, size);
    free(b);
    return 0;
}

#else

#include <fcntl.h>

/* Writes a small valid image: header, PROC, THREADS, REGIONS, FDS,
 * FILEDATA, two PAGES (LZ4 and RAW), END. */
int main(int argc, char **argv)
{
    static struct ck_proc proc;
    static struct ck_thread th;
    static uint8_t pages[2 * 4096], enc[2 * 4096 + 64];
    struct ck_header h;
    uint64_t nrec = 0, npages = 0, raw = 0, stored = 0;
    int fd;

    if (argc != 2 || (fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
        fprintf(stderr, "usage: %s OUTPUT\n", argv[0]);
        return 2;
    }
#define REC(type, flags, p, len, rawlen, arg, arg2)                                          \
    do {                                                                                    \
        if (ck_write_rec(fd, type, flags, p, len, rawlen, arg, arg2) < 0)                   \
            return 1;                                                                       \
        nrec++;                                                                             \
        raw += (rawlen);                                                                    \
        stored += (len);                                                                    \
    } while (0)

    memset(&h, 0, sizeof(h));
    h.nthreads = 1;
    ck_header_seal(&h);
    if (ck_write_all(fd, &h, sizeof(h)) < 0)
        return 1;
    REC(CK_REC_PROC, 0, &proc, sizeof(proc), sizeof(proc), 0, 0);
    th.tid = 1;
    REC(CK_REC_THREADS, 0, &th, sizeof(th), sizeof(th), 0, 0);
    {
        struct ck_region r[2];
        uint8_t buf[sizeof(r) + 12];
        memset(r, 0, sizeof(r));
        r[0].end = 4096;
        r[0].path_len = 6;
        r[1].path_off = 7;
        r[1].path_len = 4;
        memcpy(buf, r, sizeof(r));
        memcpy(buf + sizeof(r), "[heap]\0/a b", 12);
        REC(CK_REC_REGIONS, 0, buf, sizeof(buf), sizeof(buf), 2, 0);
    }
    /* fd 0: /dev/null; fds 3-7: a descriptor of each kind with state */
    static const uint32_t kinds[] = {CK_FD_TIMERFD, CK_FD_SIGNALFD, CK_FD_INOTIFY, CK_FD_UNIX,
                                     CK_FD_INET};
    enum { NK = sizeof(kinds) / sizeof(kinds[0]) };
    {
        struct ck_fd f[1 + NK];
        uint8_t buf[sizeof(f) + 15];
        memset(f, 0, sizeof(f));
        f[0].path_len = 9;
        for (int k = 0; k < NK; k++) {
            f[1 + k].fd = 3 + k;
            f[1 + k].kind = kinds[k];
            f[1 + k].share_with = -1;
        }
        f[1 + 3].path_off = 9;          /* the unix socket's bound path */
        f[1 + 3].path_len = 6;
        memcpy(buf, f, sizeof(f));
        memcpy(buf + sizeof(f), "/dev/null/tmp/s", 15);
        REC(CK_REC_FDS, 0, buf, sizeof(buf), sizeof(buf), 1 + NK, 0);
    }
    {
        struct ck_lock l[2] = {{.kind = CK_LOCK_POSIX, .write = 1, .start = 10, .len = 5},
                               {.kind = CK_LOCK_FLOCK}};
        struct ck_tty y = {.fd = 0, .lflag = 0x8a3b, .ws_row = 24, .ws_col = 80};
        REC(CK_REC_LOCKS, 0, l, sizeof(l), sizeof(l), 2, 0);
        REC(CK_REC_TTYS, 0, &y, sizeof(y), sizeof(y), 1, 0);
        struct ck_guard g[2] = {{0x11000, 0x12000}, {0x14000, 0x16000}};
        REC(CK_REC_GUARDS, 0, g, sizeof(g), sizeof(g), 2, 0);
        struct ck_shm sh = {.shmid = 5, .key = 0x1234, .size = 40960, .mode = 0600};
        REC(CK_REC_SHM, 0, &sh, sizeof(sh), sizeof(sh), 1, 0);
        /* FDSTATE: fd 0 (3 bytes), then a valid state of each kind */
        static uint8_t fs[4096];
        size_t o = 0;
        struct ck_fdstate fh = {.fd = 0, .kind = 0, .len = 3};
        memcpy(fs, &fh, sizeof(fh));
        memcpy(fs + sizeof(fh), "abc", 3);
        o = sizeof(fh) + 8;
        static struct ck_timerfd t = {.clockid = 1, .ticks = 2, .value_ns = 1000000,
                                      .interval_ns = 500000, .deadline_ns = 7000000};
        static struct ck_signalfd sg = {.sigmask = 0x4002};
        static struct {
            struct ck_inotify h;
            struct ck_inotify_watch w[2];
            char paths[24];
        } in = {{.nwatch = 2, .next_wd = 3, .queued = 32},
                {{.wd = 1, .mask = 0x100, .path_off = 0},
                 {.wd = 2, .mask = 0x200, .flags = CK_INW_FD, .path_off = 5}},
                "/tmp\0/proc/self/fd/3"};
        static struct {
            struct ck_unix u;
            uint64_t icons[1];
        } un = {{.so = {.family = 1, .type = 1}, .ino = 77, .state = 10, .flags = 0x21,
                 .backlog = 5, .nicons = 1, .namelen = 1, .peerlen = 4, .name = "s",
                 .peer = "\0abc"},
                {78}};
        static struct ck_inet ie = {.so = {.family = 10, .type = 1, .protocol = 6},
                                    .role = 2, .peer_fd = 7, .listener_fd = -1,
                                    .local = {.family = 10, .port = 80, .addr = {[15] = 1}},
                                    .peer = {.family = 2, .port = 9, .addr = {127, 0, 0, 1}}};
        const void *st[NK] = {&t, &sg, &in, &un, &ie};
        size_t sl[NK] = {sizeof(t), sizeof(sg), sizeof(in), sizeof(un), sizeof(ie)};
        for (int k = 0; k < NK; k++) {
            struct ck_fdstate e = {.fd = 3 + k, .kind = kinds[k], .len = (uint32_t)sl[k]};
            memcpy(fs + o, &e, sizeof(e));
            memcpy(fs + o + sizeof(e), st[k], sl[k]);
            o += sizeof(e) + ((sl[k] + 7) & ~(size_t)7);
        }
        REC(CK_REC_FDSTATE, 0, fs, o, o, 1 + NK, 0);
    }
    REC(CK_REC_FILEDATA, CK_RF_RAW, "hello", 5, 5, 3, 0);
    {
        void *st = aligned_alloc(64, (ck_chunk_state_size() + 63) & ~(size_t)63);
        uint32_t flags;
        size_t len;
        for (size_t i = 0; i < sizeof(pages); i++)
            pages[i] = (uint8_t)(i % 13 == 0 ? i * 7 : i / 512);
        if (ck_chunk_encode(st, pages, 4096, enc, sizeof(enc), &flags, &len) < 0)
            return 1;
        REC(CK_REC_PAGES, flags, enc, len, 4096, 0x10000, 0);
        REC(CK_REC_PAGES, CK_RF_RAW, pages + 4096, 4096, 4096, 0x20000, 0);
        npages = 2;
        free(st);
    }
    {
        struct ck_end e = {nrec, npages, raw, stored};
        if (ck_write_rec(fd, CK_REC_END, 0, &e, sizeof(e), sizeof(e), 0, 0) < 0)
            return 1;
    }
    return close(fd) < 0;
}

#endif
