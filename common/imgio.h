/* imgio.h - write and read image records (header, checksummed records).
 *
 * The writer side is used by the shim while the program's threads are
 * parked, so it must not allocate from the heap or take libc locks: it only
 * calls write(2). The reader side (coord) may use malloc. */
#ifndef CKSHIM_IMGIO_H
#define CKSHIM_IMGIO_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* ---- shared, freestanding ---- */

/* Checksum of a record: XXH64(payload, len, seed = XXH64(rec with its
 * checksum field zeroed, sizeof(struct ck_rec), 0)). */
uint64_t ck_rec_checksum(const struct ck_rec *rec, const void *payload);

/* Fill magic, version, header_size and checksum (call last). */
void ck_header_seal(struct ck_header *h);

/* Check magic, version, size and checksum. Returns 0, or a negative errno
 * (-EINVAL: not an image / corrupted, -EPROTONOSUPPORT: newer major
 * version) and points *ret_why at a static English explanation. */
int ck_header_check(const struct ck_header *h, const char **ret_why);

/* ---- writer (async-signal-safe: write(2) only) ---- */

/* Write all len bytes, retrying on EINTR and short writes. 0 or -errno. */
int ck_write_all(int fd, const void *buf, size_t len);

/* Fill a record header (checksum zero). */
void ck_rec_init(struct ck_rec *rec, uint32_t type, uint32_t flags, uint64_t len,
                 uint64_t raw_len, uint64_t arg, uint64_t arg2);

/* Write a record whose header fields are set: computes rec->checksum over
 * header and payload, then writes both. Returns 0 or -errno. */
int ck_write_rec_hdr(int fd, struct ck_rec *rec, const void *payload);

/* Write one record: header (checksum computed here) then payload.
 * Returns 0 or -errno. */
int ck_write_rec(int fd, uint32_t type, uint32_t flags, const void *payload, uint64_t len,
                 uint64_t raw_len, uint64_t arg, uint64_t arg2);

/* ---- reader (coord; uses malloc) ---- */

/* Where one record sits in the file (payload not kept in memory). */
struct ck_rec_loc {
    struct ck_rec rec;
    uint64_t offset;                    /* file offset of the payload */
};

/* An image read and verified. Strings of regions and fds are in their
 * record's string table: ck_region_path() and ck_fd_path() return them
 * NUL-terminated (the reader copies them out). */
struct ck_image {
    struct ck_header hdr;
    struct ck_proc proc;
    struct ck_thread *threads;
    uint32_t nthreads;
    struct ck_region *regions;
    char **region_paths;                /* nregions entries, "" if none */
    uint32_t nregions;
    struct ck_fd *fds;
    char **fd_paths;                    /* nfds entries */
    uint32_t nfds;
    struct ck_lock *locks;              /* LOCKS record, or NULL */
    uint32_t nlocks;
    struct ck_tty *ttys;                /* TTYS record, or NULL */
    uint32_t nttys;
    struct ck_rec_loc *filedata;        /* FILEDATA records, in file order */
    uint32_t nfiledata;
    struct ck_rec_loc *pages;           /* PAGES records, in file order */
    uint64_t npagerecs;
    uint64_t pages_offset;              /* file offset of the first PAGES record
                                           header (or of END if none) */
    struct ck_end end;
    uint64_t file_size;                 /* bytes read up to and with END */
    struct ck_memcheck *memcheck;       /* MEMCHECK entries (regions marked
                                           MADV_DONTFORK/WIPEONFORK), or NULL */
    uint32_t nmemcheck;
    struct ck_guard *guards;            /* GUARDS record, or NULL */
    uint32_t nguards;
    struct ck_shm *shms;                /* SHM record, or NULL */
    uint32_t nshms;
    struct ck_fdstate_ref {             /* per fds[i]: its FDSTATE entry's state */
        const void *data;               /* NULL if none */
        uint32_t len;
    } *fdstate;                         /* NULL if no FDSTATE record */
    uint8_t *fdstate_buf;               /* the FDSTATE payload */
};

#define CK_READ_VERIFY_PAGES 0x1        /* read and checksum every PAGES payload */
#define CK_READ_HEADER_ONLY 0x2         /* stop after the header */

/* Read an image from fd (a regular file: offsets are absolute; the fd is
 * left positioned after END). Verifies the header and every record's
 * checksum (PAGES payloads only with CK_READ_VERIFY_PAGES, otherwise they
 * are skipped with lseek), the record order, the sizes of fixed structs,
 * string table bounds and the END totals. On failure returns a negative
 * errno and writes a one-line English explanation (with the byte offset
 * where it went wrong) to err; img is then freed and zeroed. */
int ck_image_read(int fd, struct ck_image *img, uint32_t flags, char *err, size_t errlen);

/* Pages the image holds inside region `region` (from the PAGES records'
 * addresses; nothing is read). */
uint64_t ck_image_region_pages(const struct ck_image *img, uint32_t region);

/* Free everything ck_image_read allocated. Safe on a zeroed image. */
void ck_image_free(struct ck_image *img);

#endif
