/* clock - clocks and the vdso work after restore.
 *
 * Keeps calling clock_gettime() (through the vdso) while waiting, so the
 * checkpoint usually lands among those calls. After restore:
 * CLOCK_MONOTONIC never goes backwards over 100,000 calls and has not gone
 * back since before the checkpoint (same boot); the vdso and the raw
 * syscall agree on CLOCK_MONOTONIC and CLOCK_REALTIME (a vdso/vvar mix-up
 * gives garbage there); gettimeofday() and time() agree with
 * CLOCK_REALTIME; CLOCK_REALTIME is within 10 s of the time the driver
 * wrote into the go file (`date +%s`); BOOTTIME, the coarse clocks and the
 * CPU-time clocks answer; a 20 ms nanosleep advances MONOTONIC by >= 20 ms.
 */
#include <sys/syscall.h>
#include <sys/time.h>

#include "testlib.h"

static int64_t ns(const struct timespec *ts)
{
    return ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static int64_t vdso_ns(clockid_t c)
{
    struct timespec ts;
    check(clock_gettime(c, &ts) == 0, "clock_gettime(%d): %s", (int)c, strerror(errno));
    return ns(&ts);
}

static int64_t sys_ns(clockid_t c)
{
    struct timespec ts;
    check(syscall(SYS_clock_gettime, c, &ts) == 0, "syscall clock_gettime(%d): %s",
          (int)c, strerror(errno));
    return ns(&ts);
}

static int64_t absdiff(int64_t a, int64_t b)
{
    return a > b ? a - b : b - a;
}

int main(void)
{
    int64_t mono_before = 0;

    test_ready();
    while (!test_go_reached()) {
        for (int i = 0; i < 1000; i++) {
            int64_t m = vdso_ns(CLOCK_MONOTONIC);
            check(m >= mono_before, "CLOCK_MONOTONIC went back before the checkpoint");
            mono_before = m;
        }
        usleep(10000);
    }

    int64_t m0 = vdso_ns(CLOCK_MONOTONIC);
    check(m0 >= mono_before, "CLOCK_MONOTONIC went back by %lld ms across the checkpoint",
          (long long)((mono_before - m0) / 1000000));
    int64_t prev = m0;
    for (int i = 0; i < 100000; i++) {
        int64_t m = vdso_ns(CLOCK_MONOTONIC);
        check(m >= prev, "CLOCK_MONOTONIC went back after restore (call %d)", i);
        prev = m;
    }

    const clockid_t both[] = { CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME };
    for (unsigned i = 0; i < sizeof(both) / sizeof(both[0]); i++) {
        int64_t v = vdso_ns(both[i]), s = sys_ns(both[i]), v2 = vdso_ns(both[i]);
        check(v <= s + 1000000 && s <= v2 + 1000000,
              "clock %d: vdso %lld and syscall %lld disagree", (int)both[i],
              (long long)v, (long long)s);
    }

    struct timeval tv;
    check_sys(gettimeofday(&tv, NULL));
    int64_t rt = vdso_ns(CLOCK_REALTIME);
    check(absdiff(tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL, rt) < 100000000LL,
          "gettimeofday and CLOCK_REALTIME disagree");
    check(absdiff(time(NULL), rt / 1000000000LL) <= 1, "time() and CLOCK_REALTIME disagree");
    long long wall = test_go_value();
    if (wall > 0)
        check(absdiff(wall, rt / 1000000000LL) <= 10,
              "CLOCK_REALTIME %lld s is far from the driver's date %lld s",
              (long long)(rt / 1000000000LL), wall);

    const clockid_t others[] = { CLOCK_MONOTONIC_COARSE, CLOCK_REALTIME_COARSE,
                                 CLOCK_MONOTONIC_RAW, CLOCK_PROCESS_CPUTIME_ID,
                                 CLOCK_THREAD_CPUTIME_ID };
    for (unsigned i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        check(vdso_ns(others[i]) > 0, "clock %d reads zero", (int)others[i]);

    int64_t a = vdso_ns(CLOCK_MONOTONIC);
    test_sleep_ms(20);
    int64_t b = vdso_ns(CLOCK_MONOTONIC);
    check(b - a >= 20000000, "20 ms sleep advanced CLOCK_MONOTONIC by %lld us",
          (long long)((b - a) / 1000));
    pass();
}
