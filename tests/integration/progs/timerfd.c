/* timerfd - timerfd clocks, flags, times and pending expirations survive.
 *
 * Before READY:
 *   A: CLOCK_MONOTONIC, blocking, relative one-shot of 60 s;
 *   B: CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC, relative, first expiry
 *      after 1 ms then every 10 s: one expiration pending (not read);
 *   C: CLOCK_MONOTONIC, TFD_TIMER_ABSTIME, first expiry 10.5 s in the past,
 *      every second: its expirations are pending, more come every second;
 *   D: CLOCK_REALTIME, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, at
 *      (wall clock now + 100 s);
 *   E: CLOCK_REALTIME, TFD_NONBLOCK, never armed;
 *   P: an epoll instance watching A (data 0xa) and B (data 0xb).
 * After restore: each is a timerfd on its clock with its flags (fdinfo
 * `clockid:` and `settime flags:`, F_GETFL, F_GETFD); P reports B ready
 * and not A; B reads exactly 1, then EAGAIN, has 10 s interval and at
 * most 10 s left; C reads the number of expirations its absolute grid
 * has had by now (counted from CLOCK_MONOTONIC before and after the read)
 * and its next expiry is still on that grid; A has at most 60 s left and
 * has not fired; D has (its wall clock deadline - now) left; E is
 * disarmed and reads EAGAIN.
 *
 * With $TIMERFD_GAP set (test_events.sh: the image waits that many
 * seconds, at least 3, before it is restored) two more timers, G
 * relative and H absolute, both CLOCK_MONOTONIC one-shots due 2 s after
 * READY: after restore G has not fired (a relative timer keeps what it
 * had left: the time the program was saved does not count) and H has
 * (an absolute deadline is a moment in time).
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "testlib.h"

static int64_t ns_of(const struct timespec *t)
{
    return t->tv_sec * 1000000000LL + t->tv_nsec;
}

static struct timespec ts_of(int64_t ns)
{
    return (struct timespec){ns / 1000000000LL, ns % 1000000000LL};
}

static int64_t now_ns(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return ns_of(&t);
}

/* A field of /proc/self/fdinfo/FD ("clockid", "settime flags"), or -1. */
static long fdinfo_field(int fd, const char *key)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(path, "r");
    check(f != NULL, "open %s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strstr(buf, key);
    if (!p)
        return -1;
    p += strlen(key);
    while (*p == ':' || *p == ' ' || *p == '\t')
        p++;
    return strtol(p, NULL, !strcmp(key, "settime flags") ? 8 : 10);
}

static void check_kind(int fd, const char *what, int clock, int settime, int nonblock,
                       int cloexec)
{
    test_check_fd(fd, what, "anon_inode:[timerfd]", nonblock, cloexec);
    long c = fdinfo_field(fd, "clockid");
    check(c == clock, "%s: clockid %ld, expected %d", what, c, clock);
    long s = fdinfo_field(fd, "settime flags");
    check(s == settime, "%s: settime flags %lo, expected %o", what, s, settime);
}

static uint64_t ticks_of(int fd, const char *what)
{
    uint64_t v = 0;
    ssize_t n = read(fd, &v, sizeof v);
    check(n == 8, "%s: read: %s", what, n < 0 ? strerror(errno) : "short read");
    return v;
}

static void must_eagain(int fd, const char *what)
{
    uint64_t v;
    errno = 0;
    ssize_t n = read(fd, &v, sizeof v);
    check(n == -1 && errno == EAGAIN, "%s: read gave %zd (%llu) %s, expected EAGAIN", what, n,
          n == 8 ? (unsigned long long)v : 0ULL, strerror(errno));
}

static int64_t left_ns(int fd, int64_t *interval)
{
    struct itimerspec cur;
    check_sys(timerfd_gettime(fd, &cur));
    if (interval)
        *interval = ns_of(&cur.it_interval);
    return ns_of(&cur.it_value);
}

static int arm(int fd, int flags, int64_t value, int64_t interval)
{
    struct itimerspec its = {.it_interval = ts_of(interval), .it_value = ts_of(value)};
    return timerfd_settime(fd, flags, &its, NULL);
}

int main(void)
{
    const int64_t S = 1000000000LL;
    int a, b, c, d, e, p, g = -1, h = -1;
    const char *gap = getenv("TIMERFD_GAP");

    check_sys(a = timerfd_create(CLOCK_MONOTONIC, 0));
    check_sys(arm(a, 0, 60 * S, 0));
    check_sys(b = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC));
    check_sys(arm(b, 0, 1000000, 10 * S));
    /* C's grid: base + k seconds, k >= 0; base is 10.5 s ago */
    int64_t c_base = now_ns(CLOCK_MONOTONIC) - 10 * S - S / 2;
    check_sys(c = timerfd_create(CLOCK_MONOTONIC, 0));
    check_sys(arm(c, TFD_TIMER_ABSTIME, c_base, S));
    int64_t d_deadline = now_ns(CLOCK_REALTIME) + 100 * S;
    check_sys(d = timerfd_create(CLOCK_REALTIME, 0));
    check_sys(arm(d, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, d_deadline, 0));
    check_sys(e = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK));
    check_sys(p = epoll_create1(0));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0xa};
    check_sys(epoll_ctl(p, EPOLL_CTL_ADD, a, &ev));
    ev.data.u64 = 0xb;
    check_sys(epoll_ctl(p, EPOLL_CTL_ADD, b, &ev));
    if (gap) {
        int64_t due = now_ns(CLOCK_MONOTONIC) + 2 * S;
        check_sys(g = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
        check_sys(arm(g, 0, 2 * S, 0));
        check_sys(h = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
        check_sys(arm(h, TFD_TIMER_ABSTIME, due, 0));
    }
    test_sleep_ms(20); /* B's first expiry is pending */
    test_msg("A=%d B=%d C=%d D=%d E=%d P=%d G=%d H=%d", a, b, c, d, e, p, g, h);

    test_ready();
    test_wait_go();

    if (gap) {
        /* first, before the time left runs out */
        int64_t gl = left_ns(g, NULL);
        check(gl > 0, "G: a relative timer fired: the time the image waited counted");
        must_eagain(g, "G");
        check(ticks_of(h, "H") == 1, "H: the absolute timer did not fire");
        test_msg("G has %lld ms left", (long long)(gl / 1000000));
    }

    check_kind(a, "A", CLOCK_MONOTONIC, 0, 0, 0);
    check_kind(b, "B", CLOCK_BOOTTIME, 0, 1, 1);
    check_kind(c, "C", CLOCK_MONOTONIC, TFD_TIMER_ABSTIME, 0, 0);
    check_kind(d, "D", CLOCK_REALTIME, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, 0, 0);
    check_kind(e, "E", CLOCK_REALTIME, 0, 1, 0);

    /* P: B is ready, A is not */
    struct epoll_event out[4];
    int n = epoll_wait(p, out, 4, 0);
    check(n == 1 && out[0].data.u64 == 0xb, "P: %d events (first data %#llx), expected B only",
          n, n > 0 ? (unsigned long long)out[0].data.u64 : 0ULL);

    /* B: exactly the one pending expiration */
    uint64_t v = ticks_of(b, "B");
    check(v == 1, "B: %llu expirations pending, expected 1", (unsigned long long)v);
    must_eagain(b, "B");
    int64_t iv;
    int64_t bl = left_ns(b, &iv);
    check(iv == 10 * S, "B: interval %lld ns, expected 10 s", (long long)iv);
    check(bl > 0 && bl <= 10 * S, "B: %lld ns left, expected (0, 10 s]", (long long)bl);

    /* C: every expiration of its grid so far, none lost, none extra */
    int64_t t1 = now_ns(CLOCK_MONOTONIC);
    v = ticks_of(c, "C");
    int64_t t2 = now_ns(CLOCK_MONOTONIC);
    uint64_t lo = (uint64_t)((t1 - c_base) / S) + 1, hi = (uint64_t)((t2 - c_base) / S) + 1;
    check(v >= lo && v <= hi, "C: %llu expirations, expected %llu..%llu", (unsigned long long)v,
          (unsigned long long)lo, (unsigned long long)hi);
    int64_t cl = left_ns(c, &iv);
    int64_t next = now_ns(CLOCK_MONOTONIC) + cl;
    int64_t off = (next - c_base) % S;
    check(iv == S, "C: interval %lld ns, expected 1 s", (long long)iv);
    check(off < 5000000 || off > S - 5000000, "C: next expiry %lld ns off its grid",
          (long long)off);

    /* A: not fired, no more than 60 s left */
    int64_t al = left_ns(a, &iv);
    check(al > 0 && al <= 60 * S && iv == 0, "A: %lld ns left, interval %lld", (long long)al,
          (long long)iv);
    struct pollfd pf = {.fd = a, .events = POLLIN};
    check(poll(&pf, 1, 0) == 0, "A: readable, it should not have fired");

    /* D: its wall clock deadline */
    int64_t dl = left_ns(d, &iv);
    int64_t want = d_deadline - now_ns(CLOCK_REALTIME);
    check(dl - want < 50000000 && want - dl < 50000000,
          "D: %lld ns left, its deadline is %lld ns away", (long long)dl, (long long)want);

    /* E: disarmed */
    check(left_ns(e, &iv) == 0 && iv == 0, "E: armed after restore");
    must_eagain(e, "E");

    /* and they still work */
    check_sys(arm(e, 0, 1000000, 0));
    test_sleep_ms(10);
    check(ticks_of(e, "E") == 1, "E: armed after restore, did not fire");
    check_sys(arm(a, 0, 1000000, 0));
    check(epoll_wait(p, out, 4, 1000) == 1 && out[0].data.u64 == 0xa,
          "P: A rearmed to 1 ms, epoll did not report it");
    check(ticks_of(a, "A") == 1, "A: rearmed, did not read 1");
    pass();
}
