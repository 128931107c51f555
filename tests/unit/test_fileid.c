/* test_fileid.c - file identity hashes, temporary directories and
 * non-blocking opens (common/fileid.c). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileid.h"

static char dir[] = "/tmp/ckshim-fileid.XXXXXX";

static int write_file(const char *name, uint64_t size, uint8_t fill, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static uint8_t block[1 << 16];
    memset(block, fill, sizeof block);
    for (uint64_t off = 0; off < size; off += sizeof block) {
        size_t n = size - off < sizeof block ? (size_t)(size - off) : sizeof block;
        assert_int_equal(pwrite(fd, block, n, (off_t)off), (ssize_t)n);
    }
    return fd;
}

/* Whole-file hashes see any byte; the size is part of the hash. */
static void test_whole_hash(void **state)
{
    (void)state;
    char p[256];
    uint32_t k1, k2;
    int fd = write_file("a", 100000, 'x', p, sizeof p);
    uint64_t h1 = ck_file_hash(fd, 100000, &k1);
    assert_int_equal(k1, CK_HASH_WHOLE);
    assert_int_equal(pwrite(fd, "y", 1, 99999), 1);
    uint64_t h2 = ck_file_hash(fd, 100000, &k2);
    assert_int_equal(k2, CK_HASH_WHOLE);
    assert_true(h1 != h2);
    assert_int_equal(pwrite(fd, "x", 1, 99999), 1);
    assert_int_equal(ck_file_hash(fd, 100000, &k2), h1);
    /* claimed size beyond the end: cannot be read whole */
    ck_file_hash(fd, 200000, &k2);
    assert_int_equal(k2, CK_HASH_NONE);
    uint32_t k0;
    int e = write_file("empty", 0, 0, p, sizeof p);
    ck_file_hash(e, 0, &k0);
    assert_int_equal(k0, CK_HASH_WHOLE);
    close(e);
    close(fd);
}

/* Above CK_HASH_WHOLE_MAX, blocks are sampled: the first one counts. */
static void test_sampled_hash(void **state)
{
    (void)state;
    char p[256];
    uint32_t k;
    uint64_t size = CK_HASH_WHOLE_MAX + 4096;
    int fd = write_file("big", 0, 0, p, sizeof p);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    uint64_t h1 = ck_file_hash(fd, size, &k);
    assert_int_equal(k, CK_HASH_SAMPLED);
    assert_int_equal(pwrite(fd, "z", 1, 10), 1);
    assert_true(ck_file_hash(fd, size, &k) != h1);
    close(fd);
    unlink(p);
}

static void test_temp_dirs(void **state)
{
    (void)state;
    assert_true(ck_in_temp_dir("/tmp/hsperfdata_u/123", NULL));
    assert_true(ck_in_temp_dir("/dev/shm/x", NULL));
    assert_true(ck_in_temp_dir("/var/tmp/x", NULL));
    assert_true(ck_in_temp_dir("/home/u/tmp/x", "/home/u/tmp/"));
    assert_false(ck_in_temp_dir("/tmpfoo/x", NULL));
    assert_false(ck_in_temp_dir("/tmp", NULL));
    assert_false(ck_in_temp_dir("/tmp/../etc/passwd", NULL));
    assert_false(ck_in_temp_dir("/home/u/x", "relative"));
    assert_false(ck_in_temp_dir("/home/u/x", "/"));
}

/* A FIFO (no writer) and a directory are refused at once, not waited on. */
static void test_open_regular(void **state)
{
    (void)state;
    char p[256], err[256];
    snprintf(p, sizeof p, "%s/fifo", dir);
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_int_equal(ck_open_regular(p, O_RDONLY, err, sizeof err), -1);
    assert_non_null(strstr(err, "is a FIFO"));
    assert_int_equal(ck_open_regular(dir, O_RDONLY, err, sizeof err), -1);
    assert_int_equal(errno, EISDIR);
    snprintf(p, sizeof p, "%s/nope", dir);
    assert_int_equal(ck_open_regular(p, O_RDONLY, err, sizeof err), -1);
    assert_int_equal(errno, ENOENT);
    int fd = write_file("reg", 10, 'r', p, sizeof p);
    close(fd);
    fd = ck_open_regular(p, O_RDONLY, err, sizeof err);
    assert_true(fd >= 0);
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_hash),
        cmocka_unit_test(test_sampled_hash),
        cmocka_unit_test(test_temp_dirs),
        cmocka_unit_test(test_open_regular),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        r = 1;
    return r;
}
