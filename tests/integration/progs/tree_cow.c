/* tree_cow - children that share most of their memory with their parent
 * (copy-on-write since the fork) find exactly their own memory after a
 * restore; test_tree_fork.sh also checks that they share it again.
 *
 * The parent maps 32 MiB of random data (anonymous, kept from merging
 * with its neighbours: the same mapping in every process), 16 MiB more
 * that is one mapping with the 4 MiB region its children replace (their
 * mapping of it is smaller: shared where the two overlap), an 8 MiB private
 * mapping of a file it wrote (some pages changed before the fork) and a
 * 4 MiB region its children replace, then forks 4 children. Child i
 * changes 1% of the anonymous pages (every 100th, from page i), drops a
 * 1 MiB range with MADV_DONTNEED (zero since), changes a page of the file
 * mapping, unmaps the 4 MiB region and maps 1 MiB of its own elsewhere,
 * filled; the first child forks a grandchild that changes other pages
 * (every 60th). The parent then changes other pages (every 97th). Each notes a
 * hash of its memory before READY and checks it after the go file; the
 * children exit with the verdict, which the parent waits for.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "testlib.h"

#define ANON (32UL << 20)
#define FILESZ (8UL << 20)
#define GONE (4UL << 20)
#define OWN (1UL << 20)
#define MERGED (16UL << 20)
#define PG 4096UL
#define KIDS 4

static uint64_t hash(const void *p, size_t len)
{
    const uint64_t *w = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len / 8; i++)
        h = (h ^ w[i]) * 0x100000001b3ULL;
    return h;
}

static uint8_t *anon, *file, *gone, *own, *merged;

static uint64_t state(void)
{
    uint64_t h = hash(anon, ANON) ^ (hash(file, FILESZ) * 3) ^ (hash(merged, MERGED) * 11);
    if (gone)
        h ^= hash(gone, GONE) * 5;
    if (own)
        h ^= hash(own, OWN) * 7;
    return h;
}

int main(void)
{
    test_go_setup(); /* (the children wait for the go file too) */
    /* an inaccessible page on each side of the anonymous region keeps the
     * kernel from merging it with its neighbours (the children's own
     * region, or the one they unmap), so that it is one mapping, the same
     * in every process */
    uint8_t *r = mmap(NULL, PG + ANON + PG + MERGED + GONE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(r != MAP_FAILED, "mmap: %s", strerror(errno));
    check_sys(mprotect(r, PG, PROT_NONE));
    check_sys(mprotect(r + PG + ANON, PG, PROT_NONE));
    anon = r + PG;
    /* one mapping with the region the children unmap in the parent, one
     * of its own in the children: kept where they overlap */
    merged = r + PG + ANON + PG;
    gone = merged + MERGED;
    test_fill(merged, MERGED, 4);
    test_fill(anon, ANON, 1);
    test_fill(gone, GONE, 2);
    int fd = open("cow.data", O_RDWR | O_CREAT | O_TRUNC, 0600);
    check_sys(fd);
    uint8_t *tmp = malloc(FILESZ);
    check(tmp != NULL, "malloc");
    test_fill(tmp, FILESZ, 3);
    check(write(fd, tmp, FILESZ) == (ssize_t)FILESZ, "write: %s", strerror(errno));
    free(tmp);
    file = mmap(NULL, FILESZ, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    check(file != MAP_FAILED, "mmap file: %s", strerror(errno));
    close(fd);
    for (size_t p = 0; p < FILESZ / PG; p += 16)
        file[p * PG + 7] ^= 0x5a;
    pid_t kids[KIDS];
    for (int i = 0; i < KIDS; i++) {
        kids[i] = fork();
        check_sys(kids[i]);
        if (kids[i] == 0) {
            for (size_t p = (size_t)i; p < ANON / PG; p += 100)
                anon[p * PG + 100] ^= (uint8_t)(0x11 * (i + 1));
            for (size_t p = (size_t)i; p < MERGED / PG; p += 50)
                merged[p * PG + 300] ^= (uint8_t)(0x22 * (i + 1));
            check_sys(madvise(anon + (size_t)(i + 1) * OWN, OWN, MADV_DONTNEED));
            file[(size_t)(i + 3) * PG] ^= 0xff;
            check_sys(munmap(gone, GONE));
            gone = NULL;
            own = mmap(NULL, OWN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            check(own != MAP_FAILED, "mmap own: %s", strerror(errno));
            test_fill(own, OWN, 10 + (uint64_t)i);
            /* the first child forks a grandchild, which changes other
             * pages (made by its parent's restorer in turn) */
            pid_t g = i == 0 ? fork() : -1;
            if (g == 0) {
                for (size_t p = 7; p < ANON / PG; p += 60)
                    anon[p * PG + 400] ^= 0x3c;
                uint64_t hg = state();
                test_wait_go();
                _exit(state() == hg ? 0 : 6);
            }
            uint64_t h = state();
            test_wait_go();
            if (state() != h) {
                test_msg("child %d: its memory changed", i);
                _exit(3);
            }
            int gs;
            if (g > 0 && (waitpid(g, &gs, 0) != g || !WIFEXITED(gs) || WEXITSTATUS(gs) != 0)) {
                test_msg("child %d: its child ended with status 0x%x", i, gs);
                _exit(7);
            }
            for (size_t b = 0; b < OWN; b++)
                if (anon[(size_t)(i + 1) * OWN + b]) {
                    test_msg("child %d: a dropped page is not zero", i);
                    _exit(4);
                }
            _exit(0);
        }
    }
    for (size_t p = 0; p < ANON / PG; p += 97)
        anon[p * PG + 200] ^= 0x77;
    uint64_t h = state();
    test_ready();
    test_wait_go();
    check(state() == h, "parent: its memory changed");
    for (int i = 0; i < KIDS; i++) {
        int ws;
        check(waitpid(kids[i], &ws, 0) == kids[i], "waitpid: %s", strerror(errno));
        check(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child %d: status 0x%x", i, ws);
    }
    pass();
    return 0;
}
