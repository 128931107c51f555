/* itimer - an interval ITIMER_REAL keeps firing after restore.
 *
 * setitimer(ITIMER_REAL) with a 50 ms interval and a SIGALRM handler that
 * counts. READY once it has fired 3 times. After restore: getitimer()
 * still reports the 50 ms interval and a remaining time within it, and the
 * counter goes up by at least 5 during the next 600 ms (about 12 expected).
 */
#include <signal.h>
#include <sys/time.h>

#include "testlib.h"

static volatile sig_atomic_t ticks;

static void on_alarm(int sig)
{
    ticks++;
}

int main(void)
{
    struct sigaction sa;
    struct itimerval it = { { 0, 50000 }, { 0, 50000 } };

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    check_sys(sigaction(SIGALRM, &sa, NULL));
    check_sys(setitimer(ITIMER_REAL, &it, NULL));
    while (ticks < 3)
        test_sleep_ms(10);

    test_ready();
    test_wait_go();

    struct itimerval cur;
    check_sys(getitimer(ITIMER_REAL, &cur));
    check(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_usec == 50000,
          "interval is %ld.%06ld s, expected 0.050000", (long)cur.it_interval.tv_sec,
          (long)cur.it_interval.tv_usec);
    check(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec > 0 &&
              cur.it_value.tv_usec <= 50000,
          "remaining time is %ld.%06ld s", (long)cur.it_value.tv_sec,
          (long)cur.it_value.tv_usec);

    int t0 = ticks;
    test_sleep_ms(600);
    int dt = ticks - t0;
    check(dt >= 5, "only %d SIGALRM in 600 ms after restore", dt);
    test_msg("%d ticks in 600 ms", dt);
    pass();
}
