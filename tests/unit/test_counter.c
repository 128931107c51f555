/* test_counter.c - the monotonic counter: URLs, the file backend (format,
 * corruption, permissions, concurrency) and, when redis-server is
 * installed, the redis backend against a private server on a loopback port
 * (CKSHIM_TEST_NO_REDIS=1 skips those).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "counter.h"

static char g_tmp[64];   /* private scratch directory */
static int g_redis_port; /* 0: no redis-server */
static pid_t g_redis_pid;
static char g_redis_dir[96];

/* ------------------------------------------------------------ helpers */

static void tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", g_tmp, name);
}

static void file_counter(struct ck_counter *c, const char *path)
{
    char url[4200], err[512];
    snprintf(url, sizeof url, "file:%s", path);
    assert_int_equal(ck_counter_parse(url, c, err, sizeof err), 0);
    assert_int_equal(c->kind, CK_COUNTER_FILE);
}

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static size_t read_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;
    assert_true(fd >= 0);
    n = read(fd, buf, len - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
    return (size_t)n;
}

static uint64_t incr(const struct ck_counter *c, const char *id)
{
    char err[512] = "";
    uint64_t v = 12345;
    int r = ck_counter_incr_fetch(c, id, &v, err, sizeof err);
    if (r != 0)
        print_error("incr_fetch(%s): %d %s\n", id, r, err);
    assert_int_equal(r, 0);
    return v;
}

static uint64_t get(const struct ck_counter *c, const char *id)
{
    char err[512] = "";
    uint64_t v = 12345;
    int r = ck_counter_get(c, id, &v, err, sizeof err);
    if (r != 0)
        print_error("get(%s): %d %s\n", id, r, err);
    assert_int_equal(r, 0);
    return v;
}

static uint64_t incr_if(const struct ck_counter *c, const char *id, uint64_t expect)
{
    char err[512] = "";
    uint64_t v = 12345;
    int r = ck_counter_fetch_incr_if(c, id, expect, &v, err, sizeof err);
    if (r != 0)
        print_error("fetch_incr_if(%s): %d %s\n", id, r, err);
    assert_int_equal(r, 0);
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ URLs */

static void test_parse_good(void **state)
{
    struct ck_counter c;
    char err[512], d[4300], cwd[4096], want[4300];
    (void)state;

    assert_int_equal(ck_counter_parse("none", &c, err, sizeof err), 0);
    assert_int_equal(c.kind, CK_COUNTER_NONE);
    ck_counter_describe(&c, d, sizeof d);
    assert_string_equal(d, "none");

    assert_int_equal(ck_counter_parse("file:/var/x/counters", &c, err, sizeof err), 0);
    assert_int_equal(c.kind, CK_COUNTER_FILE);
    assert_string_equal(c.path, "/var/x/counters");
    ck_counter_describe(&c, d, sizeof d);
    assert_string_equal(d, "file:/var/x/counters");

    assert_int_equal(ck_counter_parse("file:///abs/c", &c, err, sizeof err), 0);
    assert_string_equal(c.path, "/abs/c");

    /* Relative paths are made absolute at parse time. */
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(ck_counter_parse("file:sub/c", &c, err, sizeof err), 0);
    snprintf(want, sizeof want, "%s/sub/c", strcmp(cwd, "/") ? cwd : "");
    assert_string_equal(c.path, want);

    assert_int_equal(ck_counter_parse("redis://127.0.0.1:6390", &c, err, sizeof err), 0);
    assert_int_equal(c.kind, CK_COUNTER_REDIS);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 6390);
    assert_string_equal(c.prefix, "ckshim:counter");
    assert_int_equal(c.timeout_ms, 2000);
    ck_counter_describe(&c, d, sizeof d);
    assert_string_equal(d, "redis://127.0.0.1:6390");

    assert_int_equal(ck_counter_parse("redis://db.example.org", &c, err, sizeof err), 0);
    assert_string_equal(c.host, "db.example.org");
    assert_int_equal(c.port, 6379);
    assert_string_equal(c.prefix, "ckshim:counter");

    assert_int_equal(ck_counter_parse("redis://localhost:1/my:prefix", &c, err, sizeof err), 0);
    assert_string_equal(c.host, "localhost");
    assert_int_equal(c.port, 1);
    assert_string_equal(c.prefix, "my:prefix");
    ck_counter_describe(&c, d, sizeof d);
    assert_string_equal(d, "redis://localhost:1/my:prefix");

    assert_int_equal(ck_counter_parse("redis://h:65535/", &c, err, sizeof err), 0);
    assert_int_equal(c.port, 65535);
    assert_string_equal(c.prefix, "ckshim:counter");

    assert_int_equal(ck_counter_parse("redis://[::1]:7000/p", &c, err, sizeof err), 0);
    assert_string_equal(c.host, "::1");
    assert_int_equal(c.port, 7000);
    assert_string_equal(c.prefix, "p");
    ck_counter_describe(&c, d, sizeof d);
    assert_string_equal(d, "redis://[::1]:7000/p");

    assert_int_equal(ck_counter_parse("redis://[::1]", &c, err, sizeof err), 0);
    assert_int_equal(c.port, 6379);
}

static void test_parse_bad(void **state)
{
    static const char *bad[] = {
        "foo",           "file:",           "file:/tmp/dir/",
        "file://host/x", "redis://",        "redis://:6379",
        "redis://h:0",   "redis://h:65536", "redis://h:",
        "redis://h:abc", "redis://u@h:1",   "redis://[::1",
        "redis://[]:1",  "redis://h:1/a b", "redis://h x",
        "http://h:1",    "rediss://h:1",    "NONE",
        "file:/a\nb",    "redis://[::1]x",
    };
    struct ck_counter c;
    char err[512];
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int r = ck_counter_parse(bad[i], &c, err, sizeof err);
        if (r != -EINVAL)
            print_error("'%s' parsed: %d\n", bad[i], r);
        assert_int_equal(r, -EINVAL);
        assert_true(strlen(err) > 10);
        assert_null(strchr(err, '\n')); /* control characters are not echoed */
    }
    assert_int_equal(ck_counter_parse("foo", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "unknown counter URL 'foo'"));
    assert_int_equal(ck_counter_parse("redis://h:70000", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "port"));
    /* A tiny or missing error buffer is fine. */
    assert_int_equal(ck_counter_parse("foo", &c, err, 3), -EINVAL);
    assert_int_equal(ck_counter_parse("foo", &c, NULL, 0), -EINVAL);
}

static void test_default_url(void **state)
{
    struct ck_counter c;
    char buf[4200], err[512];
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    char *xdg = getenv("XDG_STATE_HOME") ? strdup(getenv("XDG_STATE_HOME")) : NULL;
    (void)state;

    setenv("XDG_STATE_HOME", "/xdg/state/", 1);
    assert_int_equal(ck_counter_default_url(buf, sizeof buf), 0);
    assert_string_equal(buf, "file:/xdg/state/ckshim/counters");
    assert_int_equal(ck_counter_parse(NULL, &c, err, sizeof err), 0);
    assert_int_equal(c.kind, CK_COUNTER_FILE);
    assert_string_equal(c.path, "/xdg/state/ckshim/counters");
    assert_int_equal(ck_counter_parse("", &c, err, sizeof err), 0);
    assert_string_equal(c.path, "/xdg/state/ckshim/counters");

    setenv("XDG_STATE_HOME", "relative", 1); /* ignored, as the spec says */
    setenv("HOME", "/home/u", 1);
    assert_int_equal(ck_counter_default_url(buf, sizeof buf), 0);
    assert_string_equal(buf, "file:/home/u/.local/state/ckshim/counters");

    unsetenv("XDG_STATE_HOME");
    unsetenv("HOME");
    assert_int_equal(ck_counter_default_url(buf, sizeof buf), 0);
    assert_int_equal(strncmp(buf, "file:/", 6), 0);
    assert_non_null(strstr(buf, "/.local/state/ckshim/counters"));

    assert_int_equal(ck_counter_default_url(buf, 8), -ENAMETOOLONG);

    if (home)
        setenv("HOME", home, 1);
    if (xdg)
        setenv("XDG_STATE_HOME", xdg, 1);
    free(home);
    free(xdg);
}

/* ------------------------------------------------------------ file backend */

static void test_file_basic(void **state)
{
    struct ck_counter c;
    char path[256], buf[4096];
    struct stat st;
    (void)state;

    tmp_path(path, sizeof path, "new/dirs/counters");
    file_counter(&c, path);

    /* get does not create anything */
    assert_int_equal(get(&c, "app"), 0);
    assert_int_equal(stat(path, &st), -1);

    assert_int_equal(incr(&c, "app"), 1);
    assert_int_equal(incr(&c, "app"), 2);
    assert_int_equal(incr(&c, "app"), 3);
    assert_int_equal(get(&c, "app"), 3);

    assert_int_equal(incr(&c, "other.app:1"), 1);
    assert_int_equal(incr(&c, "u@host+x-y_z"), 1);
    assert_int_equal(incr(&c, "other.app:1"), 2);
    assert_int_equal(incr(&c, "app"), 4);
    assert_int_equal(get(&c, "app"), 4);
    assert_int_equal(get(&c, "other.app:1"), 2);
    assert_int_equal(get(&c, "u@host+x-y_z"), 1);
    assert_int_equal(get(&c, "missing"), 0);

    read_file(path, buf, sizeof buf);
    assert_string_equal(buf, "# ckshim counters v1\napp 4\nother.app:1 2\nu@host+x-y_z 1\n");

    /* permissions: new directories 0700, the file 0600 */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    tmp_path(buf, sizeof buf, "new/dirs");
    assert_int_equal(stat(buf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    tmp_path(buf, sizeof buf, "new");
    assert_int_equal(stat(buf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* no temp file left behind */
    snprintf(buf, sizeof buf, "%s.tmp", path);
    assert_int_equal(stat(buf, &st), -1);

    /* a stale temp file from a crash is harmless */
    write_file(buf, "junk", 4);
    assert_int_equal(incr(&c, "app"), 5);
    assert_int_equal(get(&c, "app"), 5);
}

static void test_file_incr_if(void **state)
{
    struct ck_counter c;
    char path[256];
    (void)state;

    tmp_path(path, sizeof path, "incr_if");
    file_counter(&c, path);

    /* missing id counts as 0 */
    assert_int_equal(incr_if(&c, "a", 5), 0);
    assert_int_equal(get(&c, "a"), 0);
    assert_int_equal(incr_if(&c, "a", 0), 0);
    assert_int_equal(get(&c, "a"), 1);

    assert_int_equal(incr(&c, "a"), 2);
    assert_int_equal(incr(&c, "a"), 3);
    /* stale stamp: fetched, not changed */
    assert_int_equal(incr_if(&c, "a", 2), 3);
    assert_int_equal(get(&c, "a"), 3);
    /* stamp ahead: fetched, not changed */
    assert_int_equal(incr_if(&c, "a", 9), 3);
    assert_int_equal(get(&c, "a"), 3);
    /* matching: fetched, then advanced, so it matches only once */
    assert_int_equal(incr_if(&c, "a", 3), 3);
    assert_int_equal(get(&c, "a"), 4);
    assert_int_equal(incr_if(&c, "a", 3), 4);
    assert_int_equal(get(&c, "a"), 4);
    /* other ids untouched */
    assert_int_equal(incr(&c, "b"), 1);
    assert_int_equal(incr_if(&c, "b", 1), 1);
    assert_int_equal(get(&c, "a"), 4);
    assert_int_equal(get(&c, "b"), 2);
}

static uint64_t adopt(const struct ck_counter *c, const char *id, uint64_t v)
{
    uint64_t cur = 12345;
    char err[512];
    assert_int_equal(ck_counter_adopt(c, id, v, &cur, err, sizeof err), 0);
    return cur;
}

/* adopt: a counter takes a higher value (the program was stamped
 * elsewhere since: coord migrate), never a lower or equal one */
static void adopt_checks(const struct ck_counter *c)
{
    assert_int_equal(adopt(c, "m", 7), 7);
    assert_int_equal(get(c, "m"), 7);
    assert_int_equal(adopt(c, "m", 3), 7); /* never lowered */
    assert_int_equal(adopt(c, "m", 7), 7);
    assert_int_equal(incr_if(c, "m", 7), 7);
    assert_int_equal(get(c, "m"), 8);
    assert_int_equal(adopt(c, "m", 12), 12); /* raised: it came back from elsewhere */
    assert_int_equal(get(c, "m"), 12);
    assert_int_equal(adopt(c, "n", 1), 1);
}

static void test_file_adopt(void **state)
{
    struct ck_counter c;
    char path[256];
    (void)state;
    tmp_path(path, sizeof path, "adopt");
    file_counter(&c, path);
    adopt_checks(&c);
}

static void test_invalid_ids(void **state)
{
    static const char *bad[] = {"", "a b", "a/b", "a\nb", "caf\xc3\xa9", "tab\t", "x*", "a,b"};
    struct ck_counter c, n;
    char path[256], err[512], id[80];
    uint64_t v;
    (void)state;

    tmp_path(path, sizeof path, "ids");
    file_counter(&c, path);
    assert_int_equal(ck_counter_parse("none", &n, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(ck_counter_incr_fetch(&c, bad[i], &v, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "invalid app id"));
        assert_null(strchr(err, '\n'));
        assert_int_equal(ck_counter_fetch_incr_if(&c, bad[i], 0, &v, err, sizeof err), -EINVAL);
        assert_int_equal(ck_counter_get(&c, bad[i], &v, err, sizeof err), -EINVAL);
        assert_int_equal(ck_counter_incr_fetch(&n, bad[i], &v, err, sizeof err), -EINVAL);
    }
    assert_int_equal(ck_counter_incr_fetch(&c, NULL, &v, err, sizeof err), -EINVAL);

    memset(id, 'x', 64);
    id[64] = '\0';
    assert_int_equal(ck_counter_incr_fetch(&c, id, &v, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "longer than 63"));
    id[63] = '\0';
    assert_int_equal(incr(&c, id), 1);
    assert_int_equal(get(&c, id), 1);

    /* nothing invalid reached the file */
    char buf[4096];
    read_file(path, buf, sizeof buf);
    assert_string_equal(buf + strlen("# ckshim counters v1\n"),
                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx 1\n");
}

static void check_corrupt(const char *name, const char *content, size_t len)
{
    struct ck_counter c;
    char path[256], err[1024], buf[4096];
    uint64_t v;
    int r;

    tmp_path(path, sizeof path, name);
    write_file(path, content, len);
    file_counter(&c, path);

    err[0] = '\0';
    r = ck_counter_incr_fetch(&c, "app", &v, err, sizeof err);
    if (r != -EBADMSG)
        print_error("%s: incr gave %d (%s)\n", name, r, err);
    assert_int_equal(r, -EBADMSG);
    assert_non_null(strstr(err, "corrupted"));
    assert_non_null(strstr(err, path));
    assert_null(strchr(err, '\n'));
    assert_int_equal(ck_counter_fetch_incr_if(&c, "app", 0, &v, err, sizeof err), -EBADMSG);
    assert_int_equal(ck_counter_get(&c, "app", &v, err, sizeof err), -EBADMSG);

    /* left exactly as it was: never reset */
    assert_int_equal(read_file(path, buf, sizeof buf), len);
    assert_memory_equal(buf, content, len);
}

#define CORRUPT(name, lit) check_corrupt(name, lit, sizeof(lit) - 1)

static void test_file_corrupt(void **state)
{
    static const char garbage[] = "\x7f"
                                  "ELF\x01\x02 garbage \x00\xff lorem ipsum\n";
    (void)state;

    check_corrupt("c_garbage", garbage, sizeof garbage - 1);
    CORRUPT("c_empty", "");
    CORRUPT("c_noheader", "app 5\n");
    CORRUPT("c_torn", "# ckshim counters v1\napp 5\nother 1");
    CORRUPT("c_torn2", "# ckshim coun");
    CORRUPT("c_value", "# ckshim counters v1\napp five\n");
    CORRUPT("c_neg", "# ckshim counters v1\napp -5\n");
    CORRUPT("c_big", "# ckshim counters v1\napp 99999999999999999999\n");
    CORRUPT("c_dup", "# ckshim counters v1\napp 5\napp 6\n");
    CORRUPT("c_extra", "# ckshim counters v1\napp 5 6\n");
    CORRUPT("c_badid", "# ckshim counters v1\na/b 5\n");
    CORRUPT("c_blank", "# ckshim counters v1\n\napp 5\n");
    CORRUPT("c_nul", "# ckshim counters v1\napp 5\0\n");
}

static void test_file_overflow(void **state)
{
    static const char max[] = "# ckshim counters v1\napp 18446744073709551615\n";
    struct ck_counter c;
    char path[256], err[512], buf[256];
    uint64_t v;
    (void)state;

    tmp_path(path, sizeof path, "overflow");
    write_file(path, max, sizeof max - 1);
    file_counter(&c, path);
    assert_int_equal(get(&c, "app"), UINT64_MAX);
    assert_int_equal(ck_counter_incr_fetch(&c, "app", &v, err, sizeof err), -EOVERFLOW);
    assert_int_equal(incr_if(&c, "app", 3), UINT64_MAX);
    read_file(path, buf, sizeof buf);
    assert_string_equal(buf, max);
}

/* Runs in a child: an unprivileged user cannot create the counter. */
static int unwritable_child(const char *dir)
{
    struct ck_counter c;
    char url[300], err[512];
    uint64_t v;
    int r;

    if (geteuid() == 0) {
        if (setgid(65534) < 0 || setuid(65534) < 0)
            return 10;
    }
    snprintf(url, sizeof url, "file:%s/sub/counters", dir);
    if (ck_counter_parse(url, &c, err, sizeof err) < 0)
        return 11;
    r = ck_counter_incr_fetch(&c, "app", &v, err, sizeof err);
    if (r != -EACCES) {
        fprintf(stderr, "unwritable: %d %s\n", r, err);
        return 12;
    }
    if (!strstr(err, "Permission denied") || !strstr(err, dir)) {
        fprintf(stderr, "unwritable: message: %s\n", err);
        return 13;
    }
    /* the directory exists but is read-only */
    snprintf(url, sizeof url, "file:%s/counters", dir);
    if (ck_counter_parse(url, &c, err, sizeof err) < 0)
        return 14;
    r = ck_counter_incr_fetch(&c, "app", &v, err, sizeof err);
    if (r != -EACCES || !strstr(err, "Permission denied")) {
        fprintf(stderr, "unwritable 2: %d %s\n", r, err);
        return 15;
    }
    /* reading a missing counter still works */
    r = ck_counter_get(&c, "app", &v, err, sizeof err);
    if (r != 0 || v != 0) {
        fprintf(stderr, "unwritable get: %d %s\n", r, err);
        return 16;
    }
    return 0;
}

static void test_file_unwritable(void **state)
{
    struct ck_counter c;
    char dir[256], path[300], err[512];
    uint64_t v;
    int status;
    pid_t pid;
    (void)state;

    tmp_path(dir, sizeof dir, "ro");
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chmod(g_tmp, 0755), 0); /* let "nobody" reach it */
    assert_int_equal(chmod(dir, 0555), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(unwritable_child(dir));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(chmod(g_tmp, 0700), 0);

    /* the path is a directory: nothing is created next to it */
    tmp_path(path, sizeof path, "adir");
    assert_int_equal(mkdir(path, 0700), 0);
    file_counter(&c, path);
    assert_int_equal(ck_counter_incr_fetch(&c, "app", &v, err, sizeof err), -EISDIR);
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(ck_counter_get(&c, "app", &v, err, sizeof err), -EISDIR);
    tmp_path(path, sizeof path, "adir.lock");
    assert_int_equal(access(path, F_OK), -1);

    /* a regular file in the way of the directory */
    tmp_path(path, sizeof path, "plainfile");
    write_file(path, "x", 1);
    tmp_path(path, sizeof path, "plainfile/counters");
    file_counter(&c, path);
    assert_int_equal(ck_counter_incr_fetch(&c, "app", &v, err, sizeof err), -ENOTDIR);
    assert_non_null(strstr(err, "not a directory"));
}

/* Files in the way that another user (or an attacker's symlink) put
 * there: never followed, never trusted. */
static void test_file_hostile(void **state)
{
    struct ck_counter c;
    char path[256], side[300], victim[300], err[512];
    uint64_t v;
    struct stat st;
    (void)state;

    /* a symlink at the temporary name: the victim is left alone */
    tmp_path(path, sizeof path, "hostile/counters");
    file_counter(&c, path);
    assert_int_equal(incr(&c, "app"), 1);
    tmp_path(victim, sizeof victim, "victim");
    write_file(victim, "keep", 4);
    snprintf(side, sizeof side, "%s.tmp", path);
    assert_int_equal(symlink(victim, side), 0);
    assert_int_equal(incr(&c, "app"), 2);
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_size, 4);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));

    /* a symlink as the lock file is refused */
    tmp_path(path, sizeof path, "hostile2/counters");
    file_counter(&c, path);
    assert_int_equal(incr(&c, "app"), 1);
    snprintf(side, sizeof side, "%s.lock", path);
    assert_int_equal(unlink(side), 0);
    assert_int_equal(symlink(victim, side), 0);
    assert_true(ck_counter_incr_fetch(&c, "app", &v, err, sizeof err) < 0);

    /* a counter file (or lock file) that belongs to someone else */
    if (geteuid() == 0) {
        tmp_path(path, sizeof path, "hostile3/counters");
        file_counter(&c, path);
        assert_int_equal(incr(&c, "app"), 1);
        assert_int_equal(chown(path, 65534, 65534), 0);
        assert_int_equal(ck_counter_get(&c, "app", &v, err, sizeof err), -EPERM);
        assert_non_null(strstr(err, "belongs to uid 65534"));
        assert_int_equal(chown(path, 0, 0), 0);
        snprintf(side, sizeof side, "%s.lock", path);
        assert_int_equal(chown(side, 65534, 65534), 0);
        assert_int_equal(ck_counter_incr_fetch(&c, "app", &v, err, sizeof err), -EPERM);
        /* reading says so too, before a checkpoint pauses anything */
        assert_int_equal(ck_counter_get(&c, "app", &v, err, sizeof err), -EPERM);
        assert_non_null(strstr(err, "lock file"));
    }
}

#define NCHILD 8
#define NINCR 200

static void test_file_concurrent(void **state)
{
    struct ck_counter c;
    char path[256];
    int fds[2];
    pid_t pids[NCHILD];
    static uint64_t vals[NCHILD * NINCR + 16];
    static unsigned char seen[NCHILD * NINCR + 1];
    size_t got = 0;
    (void)state;

    tmp_path(path, sizeof path, "concurrent/counters");
    file_counter(&c, path);
    assert_int_equal(incr(&c, "bystander"), 1);
    assert_int_equal(pipe(fds), 0);
    for (int i = 0; i < NCHILD; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            char err[512];
            close(fds[0]);
            for (int k = 0; k < NINCR; k++) {
                uint64_t v = 0;
                int r = ck_counter_incr_fetch(&c, "shared", &v, err, sizeof err);
                if (r < 0) {
                    fprintf(stderr, "child %d: %s\n", i, err);
                    _exit(1);
                }
                if (write(fds[1], &v, sizeof v) != sizeof v)
                    _exit(2);
            }
            _exit(0);
        }
    }
    close(fds[1]);
    for (;;) {
        ssize_t n = read(fds[0], (char *)vals + got, sizeof vals - got);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    for (int i = 0; i < NCHILD; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(got, sizeof(uint64_t) * NCHILD * NINCR);
    for (size_t i = 0; i < NCHILD * NINCR; i++) {
        assert_true(vals[i] >= 1 && vals[i] <= NCHILD * NINCR);
        assert_int_equal(seen[vals[i]], 0); /* no duplicates */
        seen[vals[i]] = 1;
    }
    assert_int_equal(get(&c, "shared"), NCHILD * NINCR);
    assert_int_equal(get(&c, "bystander"), 1);
}

static void test_none(void **state)
{
    struct ck_counter c;
    char err[512];
    uint64_t v;
    (void)state;

    assert_int_equal(ck_counter_parse("none", &c, err, sizeof err), 0);
    v = 7;
    assert_int_equal(ck_counter_incr_fetch(&c, "app", &v, err, sizeof err), 0);
    assert_int_equal(v, 0);
    v = 7;
    assert_int_equal(ck_counter_fetch_incr_if(&c, "app", 5, &v, err, sizeof err), 0);
    assert_int_equal(v, 0);
    v = 7;
    assert_int_equal(ck_counter_fetch_incr_if(&c, "app", 0, &v, err, sizeof err), 0);
    assert_int_equal(v, 0);
    v = 7;
    assert_int_equal(ck_counter_get(&c, "app", &v, err, sizeof err), 0);
    assert_int_equal(v, 0);
}

/* ------------------------------------------------------------ redis */

static int find_redis_server(char *out, size_t len)
{
    const char *path = getenv("PATH");
    char dirs[4096];

    snprintf(dirs, sizeof dirs, "%s:/usr/bin:/usr/sbin:/usr/local/bin", path ? path : "");
    for (char *sp = NULL, *d = strtok_r(dirs, ":", &sp); d; d = strtok_r(NULL, ":", &sp)) {
        snprintf(out, len, "%s/redis-server", d);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* PING through hiredis; 1 when the server answers. */
static int redis_ping(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (rc && !rc->err) {
        redisReply *rep = redisCommand(rc, "PING");
        ok = rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
        if (rep)
            freeReplyObject(rep);
    }
    if (rc)
        redisFree(rc);
    return ok;
}

static void redis_start(void)
{
    char bin[4200], portbuf[16];

    if (getenv("CKSHIM_TEST_NO_REDIS") || find_redis_server(bin, sizeof bin) < 0) {
        fprintf(stderr, "test_counter: redis-server not found (or CKSHIM_TEST_NO_REDIS set): "
                        "skipping the redis tests\n");
        return;
    }
    snprintf(g_redis_dir, sizeof g_redis_dir, "%s/redis", g_tmp);
    mkdir(g_redis_dir, 0700);
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    for (int attempt = 0; attempt < 20; attempt++) {
        int port = 20000 + rand() % 30000;
        snprintf(portbuf, sizeof portbuf, "%d", port);
        pid_t pid = fork();
        if (pid < 0)
            return;
        if (pid == 0) {
            int nul = open("/dev/null", O_RDWR);
            if (nul >= 0) {
                dup2(nul, 0);
                dup2(nul, 1);
                dup2(nul, 2);
            }
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            /* "-::1": IPv6 loopback if there is one */
            execl(bin, "redis-server", "--bind", "127.0.0.1 -::1", "--port", portbuf, "--save", "",
                  "--appendonly", "no", "--daemonize", "no", "--dir", g_redis_dir, "--logfile", "",
                  (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 100; i++) { /* up to 5 s */
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid) {
                pid = 0; /* died: port taken? try another */
                break;
            }
            if (redis_ping(port)) {
                g_redis_port = port;
                g_redis_pid = pid;
                return;
            }
            usleep(50000);
        }
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    fprintf(stderr, "test_counter: could not start redis-server: redis tests will fail\n");
    g_redis_port = -1;
}

static void redis_stop(void)
{
    if (g_redis_pid > 0) {
        kill(g_redis_pid, SIGTERM);
        waitpid(g_redis_pid, NULL, 0);
        g_redis_pid = 0;
    }
}

#define NEED_REDIS()                                                                               \
    do {                                                                                           \
        if (g_redis_port == 0)                                                                     \
            skip();                                                                                \
        assert_true(g_redis_port > 0);                                                             \
    } while (0)

static void redis_counter(struct ck_counter *c, const char *prefix)
{
    char url[128], err[512];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d%s%s", g_redis_port, prefix ? "/" : "",
             prefix ? prefix : "");
    assert_int_equal(ck_counter_parse(url, c, err, sizeof err), 0);
    assert_int_equal(c->kind, CK_COUNTER_REDIS);
}

/* A raw command to the test server; returns the reply (free it). */
static redisReply *raw(const char *fmt, ...)
{
    struct timeval tv = {1, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", g_redis_port, tv);
    redisReply *rep;
    va_list ap;

    assert_non_null(rc);
    assert_int_equal(rc->err, 0);
    va_start(ap, fmt);
    rep = redisvCommand(rc, fmt, ap);
    va_end(ap);
    redisFree(rc);
    assert_non_null(rep);
    return rep;
}

static void test_redis_incr(void **state)
{
    struct ck_counter c;
    redisReply *rep;
    (void)state;
    NEED_REDIS();

    redis_counter(&c, NULL);
    assert_int_equal(get(&c, "r1"), 0);
    assert_int_equal(incr(&c, "r1"), 1);
    assert_int_equal(incr(&c, "r1"), 2);
    assert_int_equal(incr(&c, "r1"), 3);
    assert_int_equal(get(&c, "r1"), 3);
    assert_int_equal(incr(&c, "r2"), 1);
    assert_int_equal(get(&c, "r1"), 3);
    assert_int_equal(get(&c, "r2"), 1);

    rep = raw("GET %s", "ckshim:counter:r1");
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "3");
    freeReplyObject(rep);
}

static void test_redis_incr_if(void **state)
{
    struct ck_counter c;
    (void)state;
    NEED_REDIS();

    redis_counter(&c, NULL);
    assert_int_equal(incr_if(&c, "q", 4), 0); /* missing = 0, no match */
    assert_int_equal(get(&c, "q"), 0);
    assert_int_equal(incr_if(&c, "q", 0), 0); /* match */
    assert_int_equal(get(&c, "q"), 1);
    assert_int_equal(incr(&c, "q"), 2);
    assert_int_equal(incr(&c, "q"), 3);
    assert_int_equal(incr_if(&c, "q", 2), 3);
    assert_int_equal(get(&c, "q"), 3);
    assert_int_equal(incr_if(&c, "q", 30), 3);
    assert_int_equal(get(&c, "q"), 3);
    assert_int_equal(incr_if(&c, "q", 3), 3);
    assert_int_equal(get(&c, "q"), 4);
    assert_int_equal(incr_if(&c, "q", 3), 4);
    assert_int_equal(get(&c, "q"), 4);
}

static void test_redis_adopt(void **state)
{
    struct ck_counter c;
    (void)state;
    NEED_REDIS();
    redis_counter(&c, NULL);
    adopt_checks(&c);
}

static void test_redis_prefix(void **state)
{
    struct ck_counter a, b;
    redisReply *rep;
    (void)state;
    NEED_REDIS();

    redis_counter(&a, "tenant1");
    redis_counter(&b, "tenant2:ck");
    assert_int_equal(incr(&a, "app"), 1);
    assert_int_equal(incr(&a, "app"), 2);
    assert_int_equal(incr(&b, "app"), 1);
    assert_int_equal(get(&a, "app"), 2);
    assert_int_equal(get(&b, "app"), 1);
    assert_int_equal(incr_if(&b, "app", 1), 1);
    assert_int_equal(get(&b, "app"), 2);
    assert_int_equal(get(&a, "app"), 2);

    rep = raw("GET %s", "tenant1:app");
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "2");
    freeReplyObject(rep);
    rep = raw("GET %s", "tenant2:ck:app");
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "2");
    freeReplyObject(rep);
    rep = raw("EXISTS %s", "ckshim:counter:app");
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, 0);
    freeReplyObject(rep);
}

static void test_redis_bad_values(void **state)
{
    struct ck_counter c;
    char err[512];
    uint64_t v;
    (void)state;
    NEED_REDIS();

    redis_counter(&c, "bad");
    freeReplyObject(raw("SET %s %s", "bad:text", "hello"));
    assert_int_equal(ck_counter_get(&c, "text", &v, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "'hello'"));
    assert_non_null(strstr(err, "bad:text"));
    assert_int_equal(ck_counter_fetch_incr_if(&c, "text", 1, &v, err, sizeof err), -EBADMSG);
    assert_int_equal(ck_counter_incr_fetch(&c, "text", &v, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "server error"));

    freeReplyObject(raw("SET %s %s", "bad:neg", "-5"));
    assert_int_equal(ck_counter_get(&c, "neg", &v, err, sizeof err), -EBADMSG);
    assert_int_equal(ck_counter_incr_fetch(&c, "neg", &v, err, sizeof err), -EBADMSG);

    freeReplyObject(raw("RPUSH %s %s", "bad:list", "x"));
    assert_int_equal(ck_counter_get(&c, "list", &v, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "WRONGTYPE"));
    assert_int_equal(ck_counter_incr_fetch(&c, "list", &v, err, sizeof err), -EIO);
    assert_int_equal(ck_counter_fetch_incr_if(&c, "list", 0, &v, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "server error"));
}

static void test_redis_concurrent(void **state)
{
    struct ck_counter c;
    int fds[2];
    pid_t pids[4];
    static unsigned char seen[4 * 100 + 1];
    uint64_t v;
    size_t n = 0;
    (void)state;
    NEED_REDIS();

    redis_counter(&c, "conc");
    assert_int_equal(pipe(fds), 0);
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            char err[512];
            close(fds[0]);
            for (int k = 0; k < 100; k++) {
                if (ck_counter_incr_fetch(&c, "x", &v, err, sizeof err) < 0 ||
                    write(fds[1], &v, sizeof v) != sizeof v)
                    _exit(1);
            }
            _exit(0);
        }
    }
    close(fds[1]);
    while (read(fds[0], &v, sizeof v) == sizeof v) {
        assert_true(v >= 1 && v <= 400);
        assert_int_equal(seen[v], 0);
        seen[v] = 1;
        n++;
    }
    close(fds[0]);
    for (int i = 0; i < 4; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_int_equal(n, 400);
}

static void test_redis_ipv6(void **state)
{
    struct ck_counter c;
    struct sockaddr_in6 sa;
    char url[64], err[512];
    int s, ok;
    (void)state;
    NEED_REDIS();

    /* Is there an IPv6 loopback at all? */
    s = socket(AF_INET6, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    ok = s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (s >= 0)
        close(s);
    if (!ok) {
        fprintf(stderr, "test_counter: no IPv6 loopback: skipping the [::1] test\n");
        skip();
    }
    snprintf(url, sizeof url, "redis://[::1]:%d/v6", g_redis_port);
    assert_int_equal(ck_counter_parse(url, &c, err, sizeof err), 0);
    assert_int_equal(incr(&c, "app"), 1);
    assert_int_equal(incr(&c, "app"), 2);
    assert_int_equal(incr_if(&c, "app", 2), 2);
    assert_int_equal(get(&c, "app"), 3);
}

/* A server that accepts but never answers: the command times out. */
static void test_redis_timeout(void **state)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    struct ck_counter c;
    char url[64], err[512];
    uint64_t v;
    double t0;
    int s;
    (void)state;

    s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(s, 4), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(ck_counter_parse(url, &c, err, sizeof err), 0);
    c.timeout_ms = 300;
    t0 = now_s();
    assert_int_equal(ck_counter_incr_fetch(&c, "app", &v, err, sizeof err), -ETIMEDOUT);
    assert_true(now_s() - t0 < 2.0);
    assert_non_null(strstr(err, url));
    close(s);
}

/* Last: stops the server. */
static void test_redis_down(void **state)
{
    struct ck_counter c;
    char err[512], want[128];
    uint64_t v;
    double t0;
    int r;
    (void)state;
    NEED_REDIS();

    redis_counter(&c, NULL);
    assert_int_equal(incr(&c, "down"), 1);
    redis_stop();
    t0 = now_s();
    r = ck_counter_incr_fetch(&c, "down", &v, err, sizeof err);
    assert_true(now_s() - t0 < 1.0);
    assert_int_equal(r, -ECONNREFUSED);
    snprintf(want, sizeof want,
             "counter service redis://127.0.0.1:%d is unreachable: ", g_redis_port);
    if (!strstr(err, want))
        print_error("message: %s\n", err);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "Connection refused"));
    assert_int_equal(ck_counter_fetch_incr_if(&c, "down", 1, &v, err, sizeof err), -ECONNREFUSED);
    assert_int_equal(ck_counter_get(&c, "down", &v, err, sizeof err), -ECONNREFUSED);
}

/* ------------------------------------------------------------ main */

static void rm_rf(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_default_url),
        cmocka_unit_test(test_file_basic),
        cmocka_unit_test(test_file_incr_if),
        cmocka_unit_test(test_file_adopt),
        cmocka_unit_test(test_invalid_ids),
        cmocka_unit_test(test_file_corrupt),
        cmocka_unit_test(test_file_overflow),
        cmocka_unit_test(test_file_unwritable),
        cmocka_unit_test(test_file_concurrent),
        cmocka_unit_test(test_file_hostile),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_redis_incr),
        cmocka_unit_test(test_redis_incr_if),
        cmocka_unit_test(test_redis_adopt),
        cmocka_unit_test(test_redis_prefix),
        cmocka_unit_test(test_redis_bad_values),
        cmocka_unit_test(test_redis_concurrent),
        cmocka_unit_test(test_redis_ipv6),
        cmocka_unit_test(test_redis_timeout),
        cmocka_unit_test(test_redis_down),
    };
    int r;

    snprintf(g_tmp, sizeof g_tmp, "%s", "/tmp/ckcounter-XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    redis_start();
    r = cmocka_run_group_tests(tests, NULL, NULL);
    redis_stop();
    rm_rf(g_tmp);
    return r;
}
