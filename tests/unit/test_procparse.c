/* test_procparse.c - /proc/PID/maps, fdinfo and stat parsers. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "image.h"
#include "procparse.h"

static int parse(const char *text, struct ck_maps_entry *e, char *buf, size_t len)
{
    snprintf(buf, len, "%s", text);
    return ck_parse_maps_line(buf, e);
}

static void test_maps_lines(void **state)
{
    struct ck_maps_entry e;
    char buf[512];
    (void)state;

    assert_int_equal(
        parse("55d4c6a00000-55d4c6a02000 r--p 00000000 08:01 1311133                    "
              "/usr/bin/cat\n",
              &e, buf, sizeof(buf)),
        0);
    assert_int_equal(e.start, 0x55d4c6a00000ULL);
    assert_int_equal(e.end, 0x55d4c6a02000ULL);
    assert_int_equal(e.prot, PROT_READ);
    assert_int_equal(e.shared, 0);
    assert_int_equal(e.offset, 0);
    assert_int_equal(e.dev_major, 8);
    assert_int_equal(e.dev_minor, 1);
    assert_int_equal(e.ino, 1311133);
    assert_string_equal(e.path, "/usr/bin/cat");
    assert_int_equal(e.deleted, 0);

    /* path with spaces, shared, exec, big offset and device numbers */
    assert_int_equal(parse("7f3a2c000000-7f3a2c021000 rwxs 1a2b3c000 fd:1f 18446744073709551615   "
                           "/home/u/my  file (copy).so",
                           &e, buf, sizeof(buf)),
                     0);
    assert_int_equal(e.prot, PROT_READ | PROT_WRITE | PROT_EXEC);
    assert_int_equal(e.shared, 1);
    assert_int_equal(e.offset, 0x1a2b3c000ULL);
    assert_int_equal(e.dev_major, 0xfd);
    assert_int_equal(e.dev_minor, 0x1f);
    assert_int_equal(e.ino, UINT64_MAX);
    assert_string_equal(e.path, "/home/u/my  file (copy).so");
    assert_int_equal(e.deleted, 0);

    /* deleted file, with spaces */
    assert_int_equal(
        parse("7f0000000000-7f0000001000 rw-s 00000000 00:01 2050                       "
              "/memfd:my shm (deleted)\n",
              &e, buf, sizeof(buf)),
        0);
    assert_string_equal(e.path, "/memfd:my shm");
    assert_int_equal(e.deleted, 1);

    /* just " (deleted)" is not stripped into an empty path */
    assert_int_equal(parse("1000-2000 ---p 00000000 00:00 0  (deleted)", &e, buf, sizeof(buf)),
                     0);
    assert_string_equal(e.path, "(deleted)");

    /* special names are kept */
    static const char *const special[] = {"[heap]", "[stack]", "[vdso]", "[vvar]",
                                          "[vvar_vclock]", "[anon:glibc malloc]"};
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
        char line[256];
        snprintf(line, sizeof(line), "7ffd1a5f1000-7ffd1a5f3000 r-xp 00000000 00:00 0"
                                     "                          %s\n",
                 special[i]);
        assert_int_equal(parse(line, &e, buf, sizeof(buf)), 0);
        assert_string_equal(e.path, special[i]);
        assert_int_equal(e.ino, 0);
    }
    assert_int_equal(
        parse("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  "
              "[vsyscall]\n",
              &e, buf, sizeof(buf)),
        0);
    assert_int_equal(e.start, 0xffffffffff600000ULL);
    assert_int_equal(e.prot, PROT_EXEC);
    assert_string_equal(e.path, "[vsyscall]");

    /* anonymous: with a trailing blank, without, with newline */
    assert_int_equal(
        parse("7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0 \n", &e, buf, sizeof(buf)), 0);
    assert_string_equal(e.path, "");
    assert_int_equal(e.prot, PROT_READ | PROT_WRITE);
    assert_int_equal(parse("7f1c2a000000-7f1c2a021000 ---p 00000000 00:00 0", &e, buf, sizeof(buf)),
                     0);
    assert_string_equal(e.path, "");
    assert_int_equal(e.prot, 0);
    assert_int_equal(
        parse("7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0\n", &e, buf, sizeof(buf)), 0);
    assert_string_equal(e.path, "");

    /* malformed */
    static const char *const bad[] = {
        "",
        "\n",
        "garbage",
        "7f1c2a000000 rw-p 00000000 00:00 0",
        "7f1c2a000000-7f1c2a021000",
        "7f1c2a000000-7f1c2a021000 ",
        "7f1c2a000000-7f1c2a021000 rw-",
        "7f1c2a000000-7f1c2a021000 rw-q 00000000 00:00 0",
        "7f1c2a000000-7f1c2a021000 rwzp 00000000 00:00 0",
        "7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00",
        "7f1c2a000000-7f1c2a021000 rw-p 00000000 0000 0",
        "7f1c2a000000-7f1c2a021000 rw-p zz 00:00 0",
        "7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 x",
        "7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 12x /a",
        "7f1c2a021000-7f1c2a000000 rw-p 00000000 00:00 0",   /* end < start */
        "11111111111111111-2 rw-p 00000000 00:00 0",         /* overflow */
        "1000-2000 rw-p 00000000 00:00 99999999999999999999", /* overflow */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &e, buf, sizeof(buf)) != -22)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

/* Every line of our own /proc/self/maps parses and is consistent. */
static void test_maps_self(void **state)
{
    char text[1 << 16];
    int heap = 0, stack = 0, vdso = 0, self_exe = 0, deleted = 0, spaced = 0;
    size_t n = 0;
    (void)state;

    /* a mapping of a deleted file with a space in its name */
    char tmpl[] = "/tmp/ck test XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 4096), 0);
    void *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    unlink(tmpl);
    close(fd);
    void *anon = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(anon != MAP_FAILED);

    fd = open("/proc/self/maps", O_RDONLY);
    assert_true(fd >= 0);
    for (;;) {
        ssize_t k = read(fd, text + n, sizeof(text) - 1 - n);
        assert_true(k >= 0);
        if (k == 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    text[n] = '\0';
    assert_true(n > 0 && n < sizeof(text) - 1);

    char *line = text;
    uint64_t prev_end = 0;
    int found_anon = 0;
    while (*line) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        char *next = nl + 1;
        *nl = '\0';
        struct ck_maps_entry e;
        if (ck_parse_maps_line(line, &e) != 0)
            fail_msg("cannot parse maps line: %s", line);
        assert_true(e.start < e.end);
        assert_true(e.start >= prev_end);
        assert_int_equal(e.start % 4096, 0);
        prev_end = e.end;
        heap += strcmp(e.path, "[heap]") == 0;
        stack += strcmp(e.path, "[stack]") == 0;
        vdso += strcmp(e.path, "[vdso]") == 0;
        self_exe += strstr(e.path, "test_procparse") != NULL;
        if ((uint64_t)(uintptr_t)map == e.start) {
            assert_string_equal(e.path, tmpl);
            assert_int_equal(e.deleted, 1);
            assert_int_equal(e.shared, 1);
            assert_int_equal(e.prot, PROT_READ);
            deleted++;
            spaced += strchr(e.path, ' ') != NULL;
        }
        if ((uint64_t)(uintptr_t)anon >= e.start && (uint64_t)(uintptr_t)anon < e.end &&
            e.path[0] == '\0')
            found_anon = 1;
        line = next;
    }
    assert_true(stack == 1);
    assert_true(vdso == 1);
    assert_true(self_exe >= 1);
    assert_int_equal(deleted, 1);
    assert_int_equal(spaced, 1);
    assert_true(found_anon);
    (void)heap;                         /* may be absent */
    munmap(map, 4096);
    munmap(anon, 3 * 4096);
}

static void test_fdinfo(void **state)
{
    struct ck_fdinfo fi;
    (void)state;

    static const char f1[] = "pos:\t1234\nflags:\t0100002\nmnt_id:\t29\nino:\t5512345\n";
    assert_int_equal(ck_parse_fdinfo(f1, strlen(f1), &fi), 0);
    assert_int_equal(fi.pos, 1234);
    assert_int_equal(fi.flags, 0100002);
    assert_int_equal(fi.mnt_id, 29);
    assert_int_equal(fi.ino, 5512345);
    assert_int_equal(fi.has_eventfd, 0);
    assert_int_equal(fi.scm_fds, -1);

    /* a unix socket: descriptors in flight in its queue */
    static const char f4[] = "pos:\t0\nflags:\t02\nmnt_id:\t9\nino:\t77\nscm_fds:\t3\n";
    assert_int_equal(ck_parse_fdinfo(f4, strlen(f4), &fi), 0);
    assert_int_equal(fi.scm_fds, 3);

    /* eventfd: hex count with padding, extra lines, no trailing newline */
    static const char f2[] = "pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\n"
                             "eventfd-count:               2a\neventfd-id: 3\ntfd:  1 events: 19";
    assert_int_equal(ck_parse_fdinfo(f2, strlen(f2), &fi), 0);
    assert_int_equal(fi.flags, 02004002);
    assert_int_equal(fi.has_eventfd, 1);
    assert_int_equal(fi.eventfd_count, 0x2a);

    /* not NUL-terminated: only len bytes count */
    char f3[64];
    memcpy(f3, "pos:\t77\nflags:\t01\n", 18);
    memset(f3 + 18, '9', sizeof(f3) - 18);
    assert_int_equal(ck_parse_fdinfo(f3, 18, &fi), 0);
    assert_int_equal(fi.pos, 77);
    assert_int_equal(ck_parse_fdinfo(f3, 6, &fi), -22);     /* "pos:\t7" only */

    /* missing fields / garbage */
    assert_int_equal(ck_parse_fdinfo("pos:\t0\n", 7, &fi), -22);
    assert_int_equal(ck_parse_fdinfo("flags:\t0\n", 9, &fi), -22);
    assert_int_equal(ck_parse_fdinfo("", 0, &fi), -22);
    assert_int_equal(ck_parse_fdinfo("pos:\tx\nflags:\t0\n", 16, &fi), -22);
    assert_int_equal(ck_parse_fdinfo("pos:\t1\nflags:\t9\n", 16, &fi), -22);
    /* "position:" is not "pos:" */
    assert_int_equal(ck_parse_fdinfo("position: 5\nflags: 0\n", 21, &fi), -22);

    /* our own fdinfo of an eventfd and a file */
    int efd = eventfd(5, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd >= 0);
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", efd);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t k = read(fd, text, sizeof(text));
    assert_true(k > 0);
    close(fd);
    assert_int_equal(ck_parse_fdinfo(text, (size_t)k, &fi), 0);
    assert_int_equal(fi.has_eventfd, 1);
    assert_int_equal(fi.eventfd_count, 5);
    assert_true(fi.flags & O_NONBLOCK);
    close(efd);

    fd = open("/proc/self/maps", O_RDONLY);
    char tmp[100];
    assert_true(read(fd, tmp, sizeof(tmp)) == sizeof(tmp));
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    int ifd = open(path, O_RDONLY);
    k = read(ifd, text, sizeof(text));
    assert_true(k > 0);
    close(ifd);
    assert_int_equal(ck_parse_fdinfo(text, (size_t)k, &fi), 0);
    assert_int_equal(fi.pos, 100);
    assert_int_equal(fi.has_eventfd, 0);
    close(fd);
}

static void test_stat(void **state)
{
    struct ck_mm mm;
    char text[1024];
    (void)state;

    /* comm with ") (" and spaces; numbers 26..28 and 45..51 distinct */
    int n = snprintf(text, sizeof(text),
                     "12345 (evil) (comm x) S 1 12345 12345 34816 12345 4194304 1 2 3 4 5 6 7 8 "
                     "20 0 1 0 100 200 300 18446744073709551615 "
                     "4194304 4196000 140737488346000 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0 "
                     "6299000 6299600 6303744 140737488347000 140737488347100 "
                     "140737488347200 140737488347900 0\n");
    memset(&mm, 0, sizeof(mm));
    mm.brk = 77;
    assert_int_equal(ck_parse_stat_mm(text, (size_t)n, &mm), 0);
    assert_int_equal(mm.start_code, 4194304);
    assert_int_equal(mm.end_code, 4196000);
    assert_int_equal(mm.start_stack, 140737488346000ULL);
    assert_int_equal(mm.start_data, 6299000);
    assert_int_equal(mm.end_data, 6299600);
    assert_int_equal(mm.start_brk, 6303744);
    assert_int_equal(mm.arg_start, 140737488347000ULL);
    assert_int_equal(mm.arg_end, 140737488347100ULL);
    assert_int_equal(mm.env_start, 140737488347200ULL);
    assert_int_equal(mm.env_end, 140737488347900ULL);
    assert_int_equal(mm.brk, 77);                   /* untouched */

    /* without the last field (exit_code) and without a newline */
    char *last = strrchr(text, ' ');
    assert_int_equal(ck_parse_stat_mm(text, (size_t)(last - text), &mm), 0);
    assert_int_equal(mm.env_end, 140737488347900ULL);

    /* too short, garbage */
    assert_int_equal(ck_parse_stat_mm(text, 60, &mm), -22);
    assert_int_equal(ck_parse_stat_mm("1 (x) S 1 2 3", 13, &mm), -22);
    assert_int_equal(ck_parse_stat_mm("no paren here", 13, &mm), -22);
    assert_int_equal(ck_parse_stat_mm("", 0, &mm), -22);

    /* our own stat */
    int fd = open("/proc/self/stat", O_RDONLY);
    assert_true(fd >= 0);
    ssize_t k = read(fd, text, sizeof(text));
    assert_true(k > 0);
    close(fd);
    memset(&mm, 0, sizeof(mm));
    assert_int_equal(ck_parse_stat_mm(text, (size_t)k, &mm), 0);
    assert_true(mm.start_code < mm.end_code);
    assert_true(mm.arg_start < mm.arg_end);
    assert_true(mm.env_start < mm.env_end);
    assert_true(mm.start_stack > mm.env_start - (1ULL << 30));
    uintptr_t code = (uintptr_t)&test_stat;
    assert_true(code >= mm.start_code && code < mm.end_code);
}

static void test_numbers(void **state)
{
    const char *p;
    uint64_t v;
    (void)state;

    p = "ffffffffffffffffz";
    assert_int_equal(ck_parse_hex(&p, &v), 0);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(*p, 'z');
    p = "1ffffffffffffffff";
    assert_int_equal(ck_parse_hex(&p, &v), -22);
    p = "g";
    assert_int_equal(ck_parse_hex(&p, &v), -22);
    assert_int_equal(*p, 'g');
    p = "DeadBeef ";
    assert_int_equal(ck_parse_hex(&p, &v), 0);
    assert_int_equal(v, 0xdeadbeef);

    p = "18446744073709551615:";
    assert_int_equal(ck_parse_dec(&p, &v), 0);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(*p, ':');
    p = "18446744073709551616";
    assert_int_equal(ck_parse_dec(&p, &v), -22);
    p = "";
    assert_int_equal(ck_parse_dec(&p, &v), -22);
    p = "0";
    assert_int_equal(ck_parse_dec(&p, &v), 0);
    assert_int_equal(v, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maps_lines),
        cmocka_unit_test(test_maps_self),
        cmocka_unit_test(test_fdinfo),
        cmocka_unit_test(test_stat),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
