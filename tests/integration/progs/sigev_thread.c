/* sigev_thread - SIGEV_THREAD timers keep calling their function.
 *
 * Two timer_create(SIGEV_THREAD) timers (glibc runs such timers from a
 * helper thread that blocks every signal, vim has one): A every 20 ms with
 * sival_ptr = &a_state, B every 50 ms with sival_int 4242 and thread
 * attributes (256 KiB stacks). Every 4th call of A sleeps 30 ms, so
 * callback threads are often running at the checkpoint. Each call checks
 * its value and that it runs in a thread of its own. After restore:
 * timer_gettime on A's id reports its 20 ms interval, both keep firing with
 * the right values, timer_getoverrun works, timer_settime makes B faster, a
 * new one-shot SIGEV_THREAD timer fires exactly once with its value, and
 * after timer_delete A stops firing.
 */
#include <signal.h>

#include "testlib.h"

struct state {
    int magic;
    volatile int calls;
};

static struct state a_state = {0xA11CE, 0};
static volatile int b_calls, c_calls, bad, in_main;
static pid_t main_tid;

static void on_a(union sigval v)
{
    struct state *s = v.sival_ptr;
    if (s != &a_state || s->magic != 0xA11CE || gettid() == main_tid)
        bad++;
    int n = __atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);
    if (n % 4 == 0)
        test_sleep_ms(30);
}

static void on_b(union sigval v)
{
    if (v.sival_int != 4242 || gettid() == main_tid)
        bad++;
    __atomic_add_fetch(&b_calls, 1, __ATOMIC_SEQ_CST);
}

static void on_c(union sigval v)
{
    if (v.sival_int != 99)
        bad++;
    __atomic_add_fetch(&c_calls, 1, __ATOMIC_SEQ_CST);
}

static timer_t make(void (*fn)(union sigval), union sigval v, pthread_attr_t *attr, long ms,
                    long interval_ms)
{
    struct sigevent sev;
    timer_t id;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = fn;
    sev.sigev_notify_attributes = attr;
    sev.sigev_value = v;
    check_sys(timer_create(CLOCK_MONOTONIC, &sev, &id));
    struct itimerspec its = {{interval_ms / 1000, (interval_ms % 1000) * 1000000},
                             {ms / 1000, (ms % 1000) * 1000000}};
    check_sys(timer_settime(id, 0, &its, NULL));
    return id;
}

int main(void)
{
    union sigval va = {.sival_ptr = &a_state}, vb = {.sival_int = 4242}, vc = {.sival_int = 99};
    pthread_attr_t attr;

    main_tid = gettid();
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    timer_t a = make(on_a, va, NULL, 20, 20);
    timer_t b = make(on_b, vb, &attr, 50, 50);
    pthread_attr_destroy(&attr);
    while (a_state.calls < 5 || b_calls < 2)
        test_sleep_ms(10);
    test_msg("timer ids %ld %ld", (long)(intptr_t)a, (long)(intptr_t)b);

    test_ready();
    test_wait_go();

    struct itimerspec cur;
    check(timer_gettime(a, &cur) == 0, "timer_gettime on A: %s", strerror(errno));
    check(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 20000000,
          "A's interval is %ld.%09ld s, expected 0.02", (long)cur.it_interval.tv_sec,
          cur.it_interval.tv_nsec);
    check(timer_getoverrun(a) >= 0, "timer_getoverrun on A: %s", strerror(errno));

    int a0 = a_state.calls, b0 = b_calls;
    test_sleep_ms(600);
    int na = a_state.calls - a0, nb = b_calls - b0;
    check(na >= 10, "A fired %d times in 600 ms after restore (every 20 ms)", na);
    check(nb >= 4, "B fired %d times in 600 ms after restore (every 50 ms)", nb);
    check(!bad, "%d calls had a wrong value or ran in the main thread", (int)bad);

    struct itimerspec fast = {{0, 10000000}, {0, 10000000}};
    check_sys(timer_settime(b, 0, &fast, NULL));
    b0 = b_calls;
    test_sleep_ms(400);
    nb = b_calls - b0;
    check(nb >= 15, "B fired %d times in 400 ms at 10 ms", nb);

    timer_t c = make(on_c, vc, NULL, 30, 0);
    check(c != a && c != b, "a new timer got the id of an old one");
    test_sleep_ms(300);
    check(c_calls == 1, "one-shot timer C fired %d times, expected once", (int)c_calls);

    check_sys(timer_delete(a));
    test_sleep_ms(100); /* a call already started may still finish */
    a0 = a_state.calls;
    test_sleep_ms(200);
    check(a_state.calls == a0, "A fired %d times after timer_delete", a_state.calls - a0);
    check_sys(timer_delete(b));
    check_sys(timer_delete(c));
    check(!bad, "%d calls had a wrong value or ran in the main thread", (int)bad);
    pass();
}
