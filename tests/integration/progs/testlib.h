/* testlib.h - helpers for ckshim's checkpoint/restore test programs.
 *
 * Each test program (zdtm style) builds one kind of state, calls
 * test_ready() ("READY" on stdout), keeps running until the file named by
 * $CK_GO exists (test_wait_go() or test_go_reached() in its own loop), then
 * checks its state and ends with pass() ("PASS", exit 0) or fail()
 * ("FAIL: reason", exit 1). The driver, tests/integration/test_progs.sh,
 * checkpoints and restores the program between READY and the go file.
 *
 * Without $CK_GO the program goes on at once (handy for a quick run by hand).
 * A program never waits for the go file longer than $CK_MAX_WAIT seconds
 * (default 300): it fails instead, so a lost program does not live forever.
 *
 * Output goes through write(2) on fd 1, never through a stdio buffer, so
 * nothing sits in memory across the checkpoint and nothing is lost or
 * printed twice.
 */
#ifndef CKSHIM_TESTLIB_H
#define CKSHIM_TESTLIB_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *test_go_path;
static time_t test_go_deadline;
static pthread_mutex_t test_out_lock = PTHREAD_MUTEX_INITIALIZER;

/* Write a whole formatted line to fd 1 (a single write() when it fits). */
static void test_vmsg(const char *prefix, const char *fmt, va_list ap)
{
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s", prefix);

    n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
    if (n > (int)sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(1, buf + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += w;
    }
}

/* An informational line ("info: ...") in the log. */
__attribute__((format(printf, 1, 2), unused))
static void test_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    test_vmsg("info: ", fmt, ap);
    va_end(ap);
}

/* "PASS" and exit 0. Safe to call from any thread. */
__attribute__((noreturn, unused))
static void pass(void)
{
    pthread_mutex_lock(&test_out_lock);
    (void)!write(1, "PASS\n", 5);
    _exit(0);
}

/* "FAIL: reason" and exit 1. Safe to call from any thread; the first
 * caller wins, the others block until the process is gone. */
__attribute__((format(printf, 1, 2), noreturn, unused))
static void fail(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&test_out_lock);
    va_start(ap, fmt);
    test_vmsg("FAIL: ", fmt, ap);
    va_end(ap);
    _exit(1);
}

/* fail() unless cond holds. */
#define check(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond))                                                           \
            fail(__VA_ARGS__);                                                 \
    } while (0)

/* fail() with strerror(errno) when a call returned -1. */
#define check_sys(expr)                                                        \
    do {                                                                       \
        if ((expr) == -1)                                                      \
            fail("%s:%d: %s: %s", __FILE__, __LINE__, #expr,                   \
                 strerror(errno));                                             \
    } while (0)

/* Watch the go file (test_ready does it): a child forked before
 * test_ready calls it first, or test_go_reached is true at once. */
__attribute__((unused))
static void test_go_setup(void)
{
    const char *w = getenv("CK_MAX_WAIT");
    long max = w ? atol(w) : 300;

    test_go_path = getenv("CK_GO");
    test_go_deadline = time(NULL) + (max > 0 ? max : 300);
}

/* Print READY: the state is built and the driver may checkpoint. */
__attribute__((unused))
static void test_ready(void)
{
    test_go_setup();
    (void)!write(1, "READY\n", 6);
}

/* Non-blocking: has the go file appeared? Fails the test once the
 * deadline has passed. */
__attribute__((unused))
static int test_go_reached(void)
{
    if (!test_go_path || access(test_go_path, F_OK) == 0)
        return 1;
    if (time(NULL) > test_go_deadline)
        fail("no go file %s after waiting too long", test_go_path);
    return 0;
}

/* Sleep ms milliseconds, resuming after signals. */
__attribute__((unused))
static void test_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Block until the go file appears, polling every 20 ms. */
__attribute__((unused))
static void test_wait_go(void)
{
    while (!test_go_reached())
        usleep(20000);
}

/* Contents of the go file as a number (the driver writes `date +%s`),
 * or -1 when it is empty or missing. */
__attribute__((unused))
static long long test_go_value(void)
{
    char buf[64] = "";
    FILE *f = test_go_path ? fopen(test_go_path, "r") : NULL;
    long long v = -1;

    if (f) {
        if (fgets(buf, sizeof(buf), f) && buf[0] >= '0' && buf[0] <= '9')
            v = atoll(buf);
        fclose(f);
    }
    return v;
}

/* Deterministic pseudo-random stream (xorshift64*), for fill patterns. */
static inline uint64_t test_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* Fill buf with the pattern for seed. */
__attribute__((unused))
static void test_fill(void *buf, size_t len, uint64_t seed)
{
    unsigned char *p = buf;
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t v = test_rand(&s);
        memcpy(p + i, &v, 8);
    }
    if (i < len) {
        uint64_t v = test_rand(&s);
        memcpy(p + i, &v, len - i);
    }
}

/* Offset of the first byte that differs from the pattern for seed, or -1. */
__attribute__((unused))
static long test_check_fill(const void *buf, size_t len, uint64_t seed)
{
    const unsigned char *p = buf;
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;

    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = test_rand(&s);
        size_t n = len - i < 8 ? len - i : 8;
        if (memcmp(p + i, &v, n) != 0) {
            for (size_t j = 0; j < n; j++)
                if (p[i + j] != ((const unsigned char *)&v)[j])
                    return (long)(i + j);
        }
    }
    return -1;
}

/* Offset of the first non-zero byte, or -1. */
__attribute__((unused))
static long test_check_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return (long)i;
    return -1;
}

/* Whether fd's /proc/self/fdinfo has a file lock line ("lock:") that
 * mentions kind ("FLOCK", "POSIX", ...; "lock" for any). */
__attribute__((unused))
static int test_fdinfo_lock(int fd, const char *kind)
{
    char p[64], buf[4096];
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
    int f = open(p, O_RDONLY);
    if (f < 0)
        return 0;
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    return strstr(buf, "lock:") && strstr(buf, kind);
}

/* The pid the kernel knows this process by now (the /proc/self link):
 * after a restore it differs from getpid() and from syscall(SYS_getpid),
 * which give the pid the program had; -1 if unreadable. */
__attribute__((unused))
static int test_kernel_pid(void)
{
    char buf[32];
    ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    return atoi(buf);
}

/* CLOCK_MONOTONIC in nanoseconds. */
__attribute__((unused))
static int64_t test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* fail() unless fd is a descriptor whose /proc/self/fd link reads target,
 * with O_NONBLOCK and FD_CLOEXEC set as given. */
__attribute__((unused))
static void test_check_fd(int fd, const char *what, const char *target, int nonblock,
                          int cloexec)
{
    char path[64], link[256];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    check(n > 0, "%s: readlink(%s): %s", what, path, strerror(errno));
    link[n] = 0;
    check(strcmp(link, target) == 0, "%s: fd %d is '%s', not %s", what, fd, link, target);
    int fl = fcntl(fd, F_GETFL);
    check(fl != -1 && !!(fl & O_NONBLOCK) == nonblock, "%s: O_NONBLOCK %s", what,
          nonblock ? "lost" : "set");
    int fdf = fcntl(fd, F_GETFD);
    check(fdf != -1 && !!(fdf & FD_CLOEXEC) == cloexec, "%s: FD_CLOEXEC %s", what,
          cloexec ? "lost" : "set");
}

/* Failures noted one after the other ("a; b; ..."), so that every case
 * is tried and all are named by one fail() at the end:
 * note_fail(...); ... if (test_failures()[0]) fail("%s", test_failures()); */
static inline char *test_failures(void)
{
    static char buf[2048];
    return buf;
}

__attribute__((format(printf, 1, 2))) static inline void note_fail(const char *fmt, ...)
{
    char *f = test_failures();
    size_t n = strlen(f), cap = 2048;
    va_list ap;
    if (n && n < cap - 3) {
        strcpy(f + n, "; ");
        n += 2;
    }
    va_start(ap, fmt);
    vsnprintf(f + n, cap - n, fmt, ap);
    va_end(ap);
}

#endif
