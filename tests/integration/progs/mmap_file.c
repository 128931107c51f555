/* mmap_file - shared and private file mappings survive a checkpoint.
 *
 * shared.dat (64 KiB pattern) is mapped MAP_SHARED read-write and some
 * bytes are changed through the mapping before READY. private.dat (16
 * pages) is mapped MAP_PRIVATE read-write and pages 2, 5 and 9 are
 * overwritten in memory (copy-on-write), then its fd is closed. ro.dat is
 * mapped MAP_PRIVATE read-only, like a library. After restore: the shared
 * mapping shows the file, a write through it reaches the file (msync +
 * pread) and a pwrite to the file shows in the mapping; the private
 * mapping keeps its modified pages while the others still match the file,
 * which itself is unchanged; the read-only one still matches its file.
 */
#include <fcntl.h>
#include <sys/mman.h>

#include "testlib.h"

#define PG 4096
#define SHSIZE (16 * PG)
#define PRSIZE (16 * PG)

static int is_modified(int page)
{
    return page == 2 || page == 5 || page == 9;
}

static int make_file(const char *name, size_t len, uint64_t seed)
{
    static unsigned char buf[SHSIZE];
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    check(fd >= 0, "open %s: %s", name, strerror(errno));
    test_fill(buf, len, seed);
    check(write(fd, buf, len) == (ssize_t)len, "write %s", name);
    return fd;
}

int main(void)
{
    static unsigned char want[SHSIZE], buf[SHSIZE];

    int fs = make_file("shared.dat", SHSIZE, 1);
    unsigned char *sh = mmap(NULL, SHSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fs, 0);
    check(sh != MAP_FAILED, "mmap shared: %s", strerror(errno));
    memcpy(sh + 100, "before checkpoint", 17);
    check_sys(msync(sh, SHSIZE, MS_SYNC));

    int fp = make_file("private.dat", PRSIZE, 2);
    unsigned char *pr = mmap(NULL, PRSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fp, 0);
    check(pr != MAP_FAILED, "mmap private: %s", strerror(errno));
    close(fp);
    for (int pg = 0; pg < PRSIZE / PG; pg++) {
        if (is_modified(pg))
            test_fill(pr + pg * PG, PG, 1000 + pg);
        else
            (void)*(volatile unsigned char *)(pr + pg * PG); /* read only */
    }

    int fr = make_file("ro.dat", 4 * PG, 3);
    unsigned char *ro = mmap(NULL, 4 * PG, PROT_READ, MAP_PRIVATE, fr, 0);
    check(ro != MAP_FAILED, "mmap read-only: %s", strerror(errno));
    close(fr);

    test_ready();
    test_wait_go();

    /* shared: same contents, writes go both ways */
    test_fill(want, SHSIZE, 1);
    memcpy(want + 100, "before checkpoint", 17);
    check(memcmp(sh, want, SHSIZE) == 0, "shared mapping differs from what was written");
    memcpy(sh + 30000, "after restore", 13);
    check_sys(msync(sh, SHSIZE, MS_SYNC));
    memcpy(want + 30000, "after restore", 13);
    int t = open("shared.dat", O_RDONLY);
    check(t >= 0 && pread(t, buf, SHSIZE, 0) == SHSIZE, "read shared.dat");
    check(memcmp(buf, want, SHSIZE) == 0,
          "a write through the shared mapping did not reach the file");
    close(t);
    check(pwrite(fs, "via pwrite", 10, 50000) == 10, "pwrite shared.dat");
    check(memcmp(sh + 50000, "via pwrite", 10) == 0,
          "a pwrite to the file does not show in the shared mapping (not shared?)");

    /* private: modified pages kept, others still the file's */
    test_fill(want, PRSIZE, 2);
    for (int pg = 0; pg < PRSIZE / PG; pg++) {
        long bad = is_modified(pg) ? test_check_fill(pr + pg * PG, PG, 1000 + pg)
                                   : (memcmp(pr + pg * PG, want + pg * PG, PG) ? 0 : -1);
        check(bad < 0, "private mapping page %d (%s) is wrong", pg,
              is_modified(pg) ? "modified" : "untouched");
    }
    t = open("private.dat", O_RDONLY);
    check(t >= 0 && pread(t, buf, PRSIZE, 0) == PRSIZE, "read private.dat");
    check(memcmp(buf, want, PRSIZE) == 0, "private.dat changed on disk");
    close(t);
    pr[3 * PG] = 0x42; /* still writable, still private */
    t = open("private.dat", O_RDONLY);
    check(t >= 0 && pread(t, buf, 1, 3 * PG) == 1 && buf[0] == want[3 * PG],
          "a write to the private mapping reached the file");
    close(t);

    test_fill(want, 4 * PG, 3);
    check(memcmp(ro, want, 4 * PG) == 0, "read-only file mapping is wrong");
    pass();
}
