/* fuzz_tree.c - libFuzzer target for the process tree image header
 * (coordinator/tree.c: ck_tree_read_hdr and the checks restore and
 * inspect make of each process's stream).
 *
 * The input is written to a memfd and read as a tree image; if the
 * header is accepted, every process's stream is read at its offset
 * (ck_image_read) and checked against its entry (ck_tree_check_stream),
 * and the header's MAC is checked with a fixed key. Each input is tried
 * as is and then with the header's checksum made right (when nprocs is
 * in range), so that mutations reach the entry checks.
 * Built with -DCK_FUZZ_SEED_MAIN it is instead a program that wraps the
 * single-process seed image argv[1] into a tree image argv[2] (the root
 * and a zombie child, with a share table), and with argv[3] the same as
 * a version 1 tree image (no pgid and sid, no share table): seeds for the
 * corpus.
 * Build and run: bash tests/fuzz.sh SECONDS */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "fuzzlib.h"
#include "image.h"
#include "imgio.h"
#include "tree.h"
#include "xxh64.h"

/* What tree.c uses for discovery (never reached from the header reader). */
#include "coord.h"
const char *ck_user_name(char *buf, size_t len, uid_t uid)
{
    snprintf(buf, len, "%u", (unsigned)uid);
    return buf;
}
int ck_proc_info(int pid, struct ck_procinfo *pi)
{
    (void)pid;
    (void)pi;
    return -1;
}
int ck_ctl_connect(int pid, char *path, size_t pathlen, int timeout_ms)
{
    (void)pid;
    (void)path;
    (void)pathlen;
    (void)timeout_ms;
    return -1;
}
int ck_sock_dir(char *buf, size_t len)
{
    snprintf(buf, len, "/nonexistent");
    return 0;
}
int ck_ctl_peer_pid(int fd)
{
    (void)fd;
    return -1;
}
int ck_pidns_inner(int pid)
{
    (void)pid;
    return -1;
}
int ck_call_threads(int pid, int *tids, int max)
{
    (void)pid;
    (void)tids;
    (void)max;
    return 0;
}
int ck_shim_signal(int pid)
{
    (void)pid;
    return 0;
}
int ck_thread_tracer(int pid, int *tid)
{
    (void)pid;
    (void)tid;
    return 0;
}
int ck_cred_differs(int pid, char *why, size_t whylen)
{
    (void)pid;
    (void)why;
    (void)whylen;
    return 0;
}

#ifndef CK_FUZZ_SEED_MAIN

static void read_one(const uint8_t *data, size_t size)
{
    const struct ck_key *key = fuzz_key();
    int fd = fuzz_load("fuzz-tree", data, size);
    struct ck_tree_hdr h;
    struct ck_tree_entry *e = NULL;
    struct ck_tree_sharetab st;
    char err[512] = "";
    int r = ck_tree_read_hdr(fd, &h, &e, &st, err, sizeof err);
    if (r < 0 && !err[0])
        abort(); /* every refusal says why */
    if (r <= 0)
        return;
    static uint8_t macs[CK_TREE_MAXPROCS * CK_DIGEST_BYTES];
    for (uint32_t i = 0; i < h.nprocs; i++)
        if (!(e[i].flags & CK_TREE_ZOMBIE))
            (void)ck_image_authenticate_at(fd, e[i].offset, key, macs + i * CK_DIGEST_BYTES,
                                           err, sizeof err);
    (void)ck_tree_check_mac(&h, e, &st, macs, key, err, sizeof err);
    if (ck_tree_check_shares(&h, &st, err, sizeof err) == 0)
        for (uint64_t k = 0; k < st.n; k++)
            if (st.s[k].proc < 0 || st.s[k].proc >= (int32_t)h.nprocs || st.s[k].fd < 0)
                abort(); /* a share of no process got through */
    free(st.s);
    for (uint32_t i = 0; i < h.nprocs; i++) {
        if (e[i].flags & CK_TREE_ZOMBIE) {
            if (e[e[i].parent < 0 ? 0 : e[i].parent].flags & CK_TREE_ZOMBIE)
                abort(); /* a zombie's child got through */
            continue;
        }
        struct ck_image img;
        if (lseek(fd, (off_t)e[i].offset, SEEK_SET) < 0)
            abort();
        if (ck_image_read(fd, &img, CK_READ_VERIFY_PAGES, err, sizeof err) < 0)
            continue;
        (void)ck_tree_check_stream(&h, e, i, &img.hdr, img.file_size, err, sizeof err);
        ck_image_free(&img);
    }
    free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_one(data, size);
    /* with the header's checksum right */
    uint32_t n;
    if (size < sizeof(struct ck_tree_hdr))
        return 0;
    uint32_t version;
    memcpy(&n, data + offsetof(struct ck_tree_hdr, nprocs), sizeof n);
    memcpy(&version, data + offsetof(struct ck_tree_hdr, version), sizeof version);
    size_t end = sizeof(struct ck_tree_hdr) +
                 (size_t)n * (version >= 2 ? sizeof(struct ck_tree_entry) : CK_TREE_ENTRY_V1);
    if (n < 1 || n > CK_TREE_MAXPROCS || end + 8 > size)
        return 0;
    if (version >= 2 && end + sizeof(struct ck_tree_sharehdr) + 8 <= size) {
        /* (the share table is under the checksum too) */
        uint64_t ns;
        memcpy(&ns, data + end, sizeof ns);
        if (ns <= CK_TREE_MAXSHARES &&
            end + sizeof(struct ck_tree_sharehdr) + ns * sizeof(struct ck_tree_share) + 8 <= size)
            end += sizeof(struct ck_tree_sharehdr) + ns * sizeof(struct ck_tree_share);
    }
    uint8_t *b = malloc(size);
    if (!b)
        abort();
    memcpy(b, data, size);
    uint64_t sum = ck_xxh64(b, end, 0);
    memcpy(b + end, &sum, sizeof sum);
    read_one(b, size);
    free(b);
    return 0;
}

#else

#include <fcntl.h>

/* A tree image of version: the root (the single-process seed, its pid
 * set to 100) and a zombie child 101 that exited with status 3, in the
 * root's group and session. */
static int write_tree(const char *out, uint32_t version, const uint8_t *img, size_t len,
                      const struct ck_header *sh)
{
    struct ck_tree_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CK_TREE_MAGIC, CK_MAGIC_LEN);
    h.version = version;
    h.nprocs = 2;
    h.counter_stamp = sh->counter_stamp;
    struct ck_tree_entry e[2] = {
        {.vpid = 100, .real_pid = 100, .parent = -1, .offset = ck_tree_first_offset(2, 2),
         .length = len, .pgid = 100, .sid = 100},
        {.vpid = 101, .real_pid = 101, .parent = 0, .flags = CK_TREE_ZOMBIE, .length = 3 << 8,
         .pgid = 100, .sid = 100}};
    int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0644);
    struct ck_tree_share sh2[2] = {{.proc = 0, .fd = 3, .group = 0},
                                   {.proc = 0, .fd = 4, .group = 0}};
    struct ck_tree_sharetab st = {.n = 2, .flags = CK_TREE_HDR_SHARES, .s = sh2};
    if (fd < 0 || ck_tree_write_hdr(fd, &h, e, &st, NULL, NULL) < 0 ||
        pwrite(fd, img, len, (off_t)e[0].offset) != (ssize_t)len)
        return -1;
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s SEED.img OUTPUT [OUTPUT-V1]\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    static uint8_t img[1 << 20];
    size_t len = f ? fread(img, 1, sizeof img, f) : 0;
    if (f)
        fclose(f);
    if (len < sizeof(struct ck_header))
        return 1;
    struct ck_header sh;
    memcpy(&sh, img, sizeof sh);
    sh.orig_pid = 100;
    ck_header_seal(&sh);
    memcpy(img, &sh, sizeof sh);
    if (write_tree(argv[2], CK_TREE_VERSION, img, len, &sh) < 0 ||
        (argc == 4 && write_tree(argv[3], 1, img, len, &sh) < 0))
        return 1;
    return 0;
}

#endif
