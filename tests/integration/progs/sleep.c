/* sleep - sleeping and blocked threads are not disturbed by a checkpoint.
 *
 * Thread S calls sleep(3) just before READY, so the checkpoint lands in
 * the middle of it: it must return 0 (not the seconds left, as after
 * EINTR) and not before 3 s have passed on CLOCK_MONOTONIC. Thread N
 * loops on nanosleep(200 ms) until go: every call must return 0, never
 * EINTR, and take at least 200 ms. Thread R is blocked in read() on a pipe
 * whose both ends the process holds; after restore main writes a message
 * and R must receive exactly it.
 */
#include "testlib.h"

static volatile int go;
static int pfd[2];
static const char msg[] = "written after restore";

static int sleep_ret = -1;
static int64_t sleep_ns;

static void *sleeper(void *arg)
{
    int64_t t0 = test_now_ns();
    sleep_ret = sleep(3);
    sleep_ns = test_now_ns() - t0;
    return NULL;
}

static void *napper(void *arg)
{
    long n = 0;
    while (!go) {
        struct timespec ts = { 0, 200000000 };
        int64_t t0 = test_now_ns();
        int r = nanosleep(&ts, &ts);
        int64_t dt = test_now_ns() - t0;
        check(r == 0, "nanosleep #%ld returned %d (%s), %ld ms left", n, r,
              strerror(errno), ts.tv_nsec / 1000000);
        check(dt >= 199000000, "nanosleep #%ld took only %ld ms", n, (long)(dt / 1000000));
        n++;
    }
    return (void *)n;
}

static void *reader(void *arg)
{
    char buf[128];
    ssize_t n = read(pfd[0], buf, sizeof(buf));
    check(n == (ssize_t)sizeof(msg), "read on the pipe returned %zd (%s)", n,
          n < 0 ? strerror(errno) : "short");
    check(memcmp(buf, msg, sizeof(msg)) == 0, "read wrong data from the pipe");
    return (void *)1;
}

int main(void)
{
    pthread_t s, nap, rd;
    void *ret;

    check_sys(pipe(pfd));
    check(pthread_create(&rd, NULL, reader, NULL) == 0, "pthread_create");
    check(pthread_create(&nap, NULL, napper, NULL) == 0, "pthread_create");
    check(pthread_create(&s, NULL, sleeper, NULL) == 0, "pthread_create");
    test_sleep_ms(50);

    test_ready();
    test_wait_go();
    go = 1;

    check(pthread_join(s, NULL) == 0, "join sleeper");
    check(sleep_ret == 0, "sleep(3) returned %d", sleep_ret);
    check(sleep_ns >= 2990000000LL, "sleep(3) took only %lld ms",
          (long long)(sleep_ns / 1000000));
    check(pthread_join(nap, &ret) == 0, "join napper");
    check((long)ret >= 1, "nanosleep loop ran %ld times", (long)ret);

    check(write(pfd[1], msg, sizeof(msg)) == (ssize_t)sizeof(msg), "write to pipe");
    check(pthread_join(rd, &ret) == 0 && ret == (void *)1, "join reader");
    pass();
}
