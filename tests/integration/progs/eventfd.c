/* eventfd - eventfd counters and flags survive.
 *
 * Before READY: A = eventfd(5, 0) (blocking, counter 5); B =
 * eventfd(0, EFD_NONBLOCK) (counter 0); C = eventfd(3, EFD_SEMAPHORE |
 * EFD_NONBLOCK | EFD_CLOEXEC). After restore: all three are eventfds at the
 * same numbers; A polls readable and reads 5, then writes and reads work
 * (7, then 2+3 summed to 5); B has O_NONBLOCK, reads EAGAIN, and a write of
 * 9 reads back 9; C has FD_CLOEXEC and O_NONBLOCK and, as a semaphore,
 * reads 1 three times and then EAGAIN. B then takes the largest counter
 * (UINT64_MAX-1) and refuses one more with EAGAIN. D = eventfd(0,
 * EFD_NONBLOCK) with 5000000000 written (above 32 bits, what eventfd()'s
 * initial value can say) reads 5000000000.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>

#include "testlib.h"

static int fa, fb, fc, fd4;

static void check_is_eventfd(int fd, const char *what)
{
    char path[64], target[128];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    check(n > 0, "%s: readlink(%s): %s", what, path, strerror(errno));
    target[n] = 0;
    check(strcmp(target, "anon_inode:[eventfd]") == 0, "%s: fd %d is '%s', not an eventfd",
          what, fd, target);
}

static uint64_t must_read(int fd, const char *what)
{
    uint64_t v = 0;
    ssize_t n = read(fd, &v, sizeof(v));
    check(n == 8, "%s: read: %s", what, n < 0 ? strerror(errno) : "short read");
    return v;
}

static void must_write(int fd, uint64_t v, const char *what)
{
    ssize_t n = write(fd, &v, sizeof(v));
    check(n == 8, "%s: write %llu: %s", what, (unsigned long long)v,
          n < 0 ? strerror(errno) : "short write");
}

static void must_eagain(int fd, const char *what)
{
    uint64_t v;
    errno = 0;
    ssize_t n = read(fd, &v, sizeof(v));
    check(n == -1 && errno == EAGAIN, "%s: read gave %zd (%llu) %s, expected EAGAIN", what,
          n, n == 8 ? (unsigned long long)v : 0ULL, strerror(errno));
}

int main(void)
{
    check_sys(fa = eventfd(5, 0));
    check_sys(fb = eventfd(0, EFD_NONBLOCK));
    check_sys(fc = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC));
    check_sys(fd4 = eventfd(0, EFD_NONBLOCK));
    must_write(fd4, 5000000000ULL, "D");
    test_msg("A=%d B=%d C=%d D=%d", fa, fb, fc, fd4);

    test_ready();
    test_wait_go();

    check_is_eventfd(fa, "A");
    check_is_eventfd(fb, "B");
    check_is_eventfd(fc, "C");
    uint64_t d = must_read(fd4, "D");
    check(d == 5000000000ULL, "D: counter is %llu, expected 5000000000", (unsigned long long)d);
    must_write(fd4, 5000000000ULL, "D"); /* as it was, for a second checkpoint */

    /* A: blocking, counter 5 */
    int fl = fcntl(fa, F_GETFL);
    check(fl != -1 && !(fl & O_NONBLOCK), "A: flags %#x (O_NONBLOCK should be clear)", fl);
    struct pollfd pf = { .fd = fa, .events = POLLIN };
    check(poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN), "A: not readable (revents %#x)",
          pf.revents);
    uint64_t v = must_read(fa, "A");
    check(v == 5, "A: counter is %llu, expected 5", (unsigned long long)v);
    pf.revents = 0;
    check(poll(&pf, 1, 0) == 0, "A: still readable after reading its counter");
    must_write(fa, 7, "A");
    check((v = must_read(fa, "A")) == 7, "A: read %llu after writing 7", (unsigned long long)v);
    must_write(fa, 2, "A");
    must_write(fa, 3, "A");
    check((v = must_read(fa, "A")) == 5, "A: read %llu after writing 2 and 3",
          (unsigned long long)v);

    /* B: non-blocking, counter 0 */
    fl = fcntl(fb, F_GETFL);
    check(fl != -1 && (fl & O_NONBLOCK), "B: flags %#x (O_NONBLOCK lost)", fl);
    must_eagain(fb, "B");
    must_write(fb, 9, "B");
    check((v = must_read(fb, "B")) == 9, "B: read %llu after writing 9", (unsigned long long)v);
    must_eagain(fb, "B (again)");
    must_write(fb, UINT64_MAX - 1, "B"); /* the largest counter */
    errno = 0;
    v = 1;
    check(write(fb, &v, 8) == -1 && errno == EAGAIN,
          "B: write past the maximum counter: %s, expected EAGAIN", strerror(errno));
    check((v = must_read(fb, "B")) == UINT64_MAX - 1, "B: read %llu, expected max",
          (unsigned long long)v);

    /* C: semaphore, counter 3, close-on-exec, non-blocking */
    fl = fcntl(fc, F_GETFD);
    check(fl != -1 && (fl & FD_CLOEXEC), "C: FD_CLOEXEC lost (F_GETFD %#x)", fl);
    fl = fcntl(fc, F_GETFL);
    check(fl != -1 && (fl & O_NONBLOCK), "C: flags %#x (O_NONBLOCK lost)", fl);
    for (int i = 0; i < 3; i++) {
        v = must_read(fc, "C");
        check(v == 1, "C: semaphore read #%d gave %llu (EFD_SEMAPHORE lost?)", i + 1,
              (unsigned long long)v);
    }
    must_eagain(fc, "C after three reads");
    must_write(fc, 2, "C");
    check(must_read(fc, "C") == 1 && must_read(fc, "C") == 1, "C: semaphore reads after write");
    must_eagain(fc, "C (again)");

    check_sys(close(fa));
    check_sys(close(fb));
    check_sys(close(fc));
    pass();
}
