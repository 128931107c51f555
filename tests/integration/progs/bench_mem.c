/* bench_mem - the memory workload of tests/bench.sh (not a correctness test;
 * test_progs.sh skips bench_* programs).
 *
 *   bench_mem [--size MIB] [--procs N] [--write FILE]
 *
 * Maps SIZE MiB (default 1024) of private anonymous memory in one region:
 * the first third is never touched (zero pages), the second third holds
 * pseudo-random bytes (xorshift64*, incompressible), the last third
 * text-like data (words from a small dictionary, compressible about like
 * real program data). Then prints "READY" and sleeps until killed. With
 * --write FILE it writes the same SIZE bytes to FILE instead and exits,
 * so lz4 can be timed on exactly the bytes a checkpoint has to save.
 * With --procs N the SIZE is split between N processes (the first forks
 * N-1 children, each fills SIZE/N MiB of its own the same way, with its
 * own random bytes); READY once all are filled (the process tree part of
 * tests/bench.sh).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was",
    "with", "be", "by", "on", "not", "he", "this", "are", "or", "his", "from",
    "at", "which", "but", "have", "an", "had", "they", "you", "were", "their",
    "one", "all", "we", "can", "her", "has", "there", "been", "if", "more",
    "when", "will", "would", "who", "so", "no", "process", "memory", "page",
    "checkpoint", "restore", "thread", "signal", "kernel", "file", "socket",
    "counter", "image", "value", "error", "return", "struct", "buffer",
    "{", "}", "(", ")", ";", "=", "0", "1", "42", "NULL", "int", "char",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static uint64_t rng = 0x853c49e6748fea9bULL;

static inline uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

static void fill_random(unsigned char *p, size_t len)
{
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t v = next();
        memcpy(p + i, &v, 8);
    }
}

static void fill_text(unsigned char *p, size_t len)
{
    size_t i = 0, col = 0;
    while (i < len) {
        uint64_t r = next();
        const char *w = words[r % NWORDS];
        size_t n = strlen(w);
        if (i + n + 1 > len)
            break;
        memcpy(p + i, w, n);
        i += n;
        col += n + 1;
        p[i++] = (col > 72 || (r >> 32) % 17 == 0) ? '\n' : ' ';
        if (p[i - 1] == '\n')
            col = 0;
    }
    while (i < len)
        p[i++] = '\n';
}

int main(int argc, char **argv)
{
    size_t mib = 1024, procs = 1;
    const char *out = NULL;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc)
            mib = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--procs") && i + 1 < argc)
            procs = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--write") && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--size MIB] [--procs N] [--write FILE]\n", argv[0]);
            return 2;
        }
    }
    if (mib < 3) {
        fprintf(stderr, "bench_mem: --size must be at least 3 MiB\n");
        return 2;
    }

    if (procs < 1 || procs > 64 || (out && procs != 1) || mib / procs < 3) {
        fprintf(stderr, "bench_mem: --procs must be 1..64, at least 3 MiB each, not with --write\n");
        return 2;
    }
    /* the children: each its share, filled before the parent says READY */
    int ready[2] = {-1, -1};
    if (procs > 1 && pipe(ready) < 0) {
        perror("bench_mem: pipe");
        return 1;
    }
    size_t me = 0;
    for (size_t k = 1; k < procs && me == 0; k++) {
        pid_t c = fork();
        if (c < 0) {
            perror("bench_mem: fork");
            return 1;
        }
        if (c == 0)
            me = k;
    }
    rng += me * 0x9e3779b97f4a7c15ULL;
    size_t len = (mib / procs) << 20, third = (len / 3) & ~4095UL;
    unsigned char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("bench_mem: mmap");
        return 1;
    }
    /* [0, third): untouched; [third, 2*third): random; rest: text */
    fill_random(mem + third, third);
    fill_text(mem + 2 * third, len - 2 * third);

    if (out) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            perror(out);
            return 1;
        }
        for (size_t off = 0; off < len;) {
            ssize_t w = write(fd, mem + off, len - off > (64 << 20) ? (64 << 20) : len - off);
            if (w <= 0) {
                perror("bench_mem: write");
                return 1;
            }
            off += w;
        }
        if (close(fd) < 0) {
            perror("bench_mem: close");
            return 1;
        }
        return 0;
    }

    if (procs > 1 && me > 0) { /* a child: tell the parent, then wait */
        close(ready[0]);
        if (write(ready[1], "x", 1) != 1)
            return 1;
        close(ready[1]);
        for (;;)
            pause();
    }
    if (procs > 1) {
        close(ready[1]);
        char b;
        for (size_t k = 1; k < procs; k++)
            if (read(ready[0], &b, 1) != 1) {
                fprintf(stderr, "bench_mem: a child did not get ready\n");
                return 1;
            }
        close(ready[0]);
    }
    printf("READY\n");
    fflush(stdout);
    for (;;)
        pause();
}
