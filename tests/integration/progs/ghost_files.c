/* ghost_files - deleted files come back as the files they were: mode,
 * holes, size, and the links they still had.
 *
 * Before READY (in the working directory):
 *   A: "a" created 0600, 5000 bytes written, its modification time set
 *      to 123456 s, removed, then fchmod 0645;
 *   B: "b" removed, 64 MiB long with data only in [0, 4K) and
 *      [32M, 32M+4K): a sparse file;
 *   C: "c" opened, linked as "c2", "c2" opened too (two open file
 *      descriptions of one file), both names removed, then 1000 bytes
 *      written through the first;
 *   D: "d" opened, linked as "d.link", "d" removed, 3000 bytes written
 *      (the file still has a name: "d.link");
 *   E: "e" opened twice (read-write, then read-only), removed, then
 *      fchmod 0200 (its owner may no longer open it for reading).
 * After restore: A has mode 0645, its modification time, size and bytes; B has its size, its
 * bytes, holes where it had them and no more than a few blocks; C's two
 * descriptors are one file (same device and inode, a write through one
 * is read through the other); D is the file named "d.link" again; E's two
 * descriptors are one file with mode 0200.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "testlib.h"

#define MIB (1024L * 1024)
#define B_SIZE (64 * MIB)

static int create(const char *name)
{
    int fd = open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    check(fd >= 0, "create %s: %s", name, strerror(errno));
    return fd;
}

static void put(int fd, off_t off, size_t len, uint64_t seed)
{
    static char buf[8192];
    test_fill(buf, len, seed);
    check(pwrite(fd, buf, len, off) == (ssize_t)len, "pwrite: %s", strerror(errno));
}

static void expect(int fd, off_t off, size_t len, uint64_t seed, const char *what)
{
    static char buf[8192];
    check(pread(fd, buf, len, off) == (ssize_t)len, "%s: pread: %s", what, strerror(errno));
    check(test_check_fill(buf, len, seed) < 0, "%s: bytes at %lld differ", what,
          (long long)off);
}

int main(void)
{
    int a = create("a");
    put(a, 0, 5000, 1);
    struct timespec mt[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = 123456}};
    check_sys(futimens(a, mt));
    check_sys(unlink("a"));
    check_sys(fchmod(a, 0645));

    int b = create("b");
    check_sys(unlink("b"));
    put(b, 0, 4096, 2);
    put(b, 32 * MIB, 4096, 3);
    check_sys(ftruncate(b, B_SIZE));
    int holes = lseek(b, 0, SEEK_HOLE) == 4096;

    int c1 = create("c");
    check_sys(link("c", "c2"));
    int c2 = open("c2", O_RDONLY);
    check_sys(c2);
    check_sys(unlink("c"));
    check_sys(unlink("c2"));
    put(c1, 0, 1000, 4);

    int d = create("d");
    check_sys(link("d", "d.link"));
    check_sys(unlink("d"));
    put(d, 0, 3000, 5);

    int e1 = create("e");
    int e2 = open("e", O_RDONLY);
    check_sys(e2);
    check_sys(unlink("e"));
    put(e1, 0, 100, 7);
    check_sys(fchmod(e1, 0200));

    test_ready();
    test_wait_go();

    struct stat st, st2;
    check_sys(fstat(a, &st));
    check((st.st_mode & 07777) == 0645, "A: mode %o, expected 645", (unsigned)st.st_mode & 07777);
    check(st.st_size == 5000, "A: size %lld", (long long)st.st_size);
    check(st.st_mtim.tv_sec == 123456, "A: modification time %lld, expected 123456",
          (long long)st.st_mtim.tv_sec);
    expect(a, 0, 5000, 1, "A");

    check_sys(fstat(b, &st));
    check(st.st_size == B_SIZE, "B: size %lld", (long long)st.st_size);
    expect(b, 0, 4096, 2, "B");
    expect(b, 32 * MIB, 4096, 3, "B");
    check(st.st_blocks * 512 < 4 * MIB, "B: %lld bytes allocated, the holes were filled",
          (long long)st.st_blocks * 512);
    if (holes) {
        check(lseek(b, 0, SEEK_HOLE) == 4096, "B: no hole after the first 4K");
        check(lseek(b, 4096, SEEK_DATA) == 32 * MIB, "B: no data at 32M");
        check(lseek(b, 32 * MIB, SEEK_HOLE) == 32 * MIB + 4096, "B: no tail hole");
    }

    check_sys(fstat(c1, &st));
    check_sys(fstat(c2, &st2));
    check(st.st_dev == st2.st_dev && st.st_ino == st2.st_ino,
          "C: the two descriptors are different files now");
    expect(c2, 0, 1000, 4, "C");
    put(c1, 1000, 100, 6);
    expect(c2, 1000, 100, 6, "C after a write");

    check_sys(fstat(d, &st));
    check(stat("d.link", &st2) == 0, "D: d.link: %s", strerror(errno));
    check(st.st_dev == st2.st_dev && st.st_ino == st2.st_ino,
          "D: the descriptor is no longer the file d.link");
    expect(d, 0, 3000, 5, "D");

    check_sys(fstat(e1, &st));
    check_sys(fstat(e2, &st2));
    check(st.st_dev == st2.st_dev && st.st_ino == st2.st_ino, "E: two files now");
    check((st.st_mode & 07777) == 0200, "E: mode %o", (unsigned)st.st_mode & 07777);
    expect(e2, 0, 100, 7, "E");
    pass();
}
