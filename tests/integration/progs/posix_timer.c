/* posix_timer - a periodic POSIX timer keeps its id, signal and value.
 *
 * timer_create(CLOCK_MONOTONIC, SIGEV_SIGNAL with SIGRTMIN and sival 4242)
 * armed periodic at 50 ms; the SA_SIGINFO handler counts expirations whose
 * siginfo says SI_TIMER, sival 4242. After restore: timer_gettime() on the
 * same timer_t works and reports the 50 ms interval, the counter keeps
 * going up with correct siginfo, timer_getoverrun() works, timer_settime()
 * can change the period (20 ms: faster counting), a new timer can be
 * created next to it, and timer_delete() works.
 */
#include <signal.h>

#include "testlib.h"

static volatile sig_atomic_t fired, bad_info;

static void on_timer(int sig, siginfo_t *si, void *uc)
{
    if (si->si_code != SI_TIMER || si->si_value.sival_int != 4242)
        bad_info++;
    fired++;
}

static int count_during(int ms)
{
    int t0 = fired;
    test_sleep_ms(ms);
    return fired - t0;
}

int main(void)
{
    struct sigaction sa;
    struct sigevent sev;
    timer_t tid;
    struct itimerspec its = { { 0, 50000000 }, { 0, 50000000 } };

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_timer;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    check_sys(sigaction(SIGRTMIN, &sa, NULL));

    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN;
    sev.sigev_value.sival_int = 4242;
    check_sys(timer_create(CLOCK_MONOTONIC, &sev, &tid));
    check_sys(timer_settime(tid, 0, &its, NULL));
    while (fired < 3)
        test_sleep_ms(10);
    test_msg("timer id %ld", (long)(intptr_t)tid);

    test_ready();
    test_wait_go();

    struct itimerspec cur;
    check(timer_gettime(tid, &cur) == 0, "timer_gettime on the old timer id: %s",
          strerror(errno));
    check(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 50000000,
          "interval is %ld.%09ld s, expected 0.05", (long)cur.it_interval.tv_sec,
          cur.it_interval.tv_nsec);
    check(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 &&
              cur.it_value.tv_nsec <= 50000000,
          "remaining time %ld.%09ld s", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);
    check(timer_getoverrun(tid) >= 0, "timer_getoverrun: %s", strerror(errno));

    int n = count_during(600);
    check(n >= 5, "only %d expirations in 600 ms after restore", n);
    check(!bad_info, "%d expirations had wrong siginfo", (int)bad_info);

    struct itimerspec fast = { { 0, 20000000 }, { 0, 20000000 } };
    check_sys(timer_settime(tid, 0, &fast, NULL));
    n = count_during(600);
    check(n >= 15, "only %d expirations in 600 ms at 20 ms", n);

    timer_t t2;
    sev.sigev_value.sival_int = 4242;
    check_sys(timer_create(CLOCK_MONOTONIC, &sev, &t2));
    check(t2 != tid, "new timer got the same id as the restored one");
    check_sys(timer_settime(t2, 0, &its, NULL));
    check_sys(timer_delete(tid));
    n = count_during(300);
    check(n >= 2 && n <= 10, "%d expirations in 300 ms from the new 50 ms timer", n);
    check_sys(timer_delete(t2));
    check(!bad_info, "%d expirations had wrong siginfo", (int)bad_info);
    pass();
}
