/* pending_info - signals pending for the process keep their siginfo.
 *
 * SIGRTMIN..SIGRTMIN+2 are blocked in every thread. Two sigqueue()d
 * SIGRTMIN wait with the values 777 and 778, a one-shot POSIX timer
 * (SIGEV_SIGNAL, SIGRTMIN+1, sival 4242) has expired into a pending
 * signal, and SIGRTMIN+2 with the value 55 waits for thread B alone
 * (pthread_sigqueue). After restore sigtimedwait takes, in order:
 * SIGRTMIN with SI_QUEUE and 777, SIGRTMIN with SI_QUEUE and 778,
 * SIGRTMIN+1 with SI_TIMER, the timer's id and 4242; nothing more is
 * pending; thread B takes SIGRTMIN+2 with SI_QUEUE and 55. (A restore used
 * to raise each with a bare kill() or tgkill(): no value, one instance.)
 */
#include <signal.h>

#include "testlib.h"

static int take(const sigset_t *set, siginfo_t *si)
{
    struct timespec ts = {1, 0};
    return sigtimedwait(set, si, &ts);
}

static volatile int b_go, b_done;

static void *thread_b(void *arg)
{
    while (!b_go)
        test_sleep_ms(5);
    sigset_t only;
    siginfo_t si;
    sigemptyset(&only);
    sigaddset(&only, SIGRTMIN + 2);
    check(take(&only, &si) == SIGRTMIN + 2, "SIGRTMIN+2 is no longer pending for thread B");
    check(si.si_code == SI_QUEUE && si.si_value.sival_int == 55,
          "thread B's SIGRTMIN+2 came back with si_code %d and value %d, expected SI_QUEUE "
          "and 55", si.si_code, si.si_value.sival_int);
    b_done = 1;
    return NULL;
}

int main(void)
{
    int q = SIGRTMIN, t = SIGRTMIN + 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, q);
    sigaddset(&set, t);
    sigaddset(&set, SIGRTMIN + 2);
    check_sys(sigprocmask(SIG_BLOCK, &set, NULL));
    sigdelset(&set, SIGRTMIN + 2);
    pthread_t b;
    check(pthread_create(&b, NULL, thread_b, NULL) == 0, "pthread_create");
    union sigval vb = {.sival_int = 55};
    check(pthread_sigqueue(b, SIGRTMIN + 2, vb) == 0, "pthread_sigqueue");

    union sigval v = {.sival_int = 777};
    check_sys(sigqueue(getpid(), q, v));
    v.sival_int = 778;
    check_sys(sigqueue(getpid(), q, v));

    struct sigevent sev;
    timer_t tid;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = t;
    sev.sigev_value.sival_int = 4242;
    check_sys(timer_create(CLOCK_MONOTONIC, &sev, &tid));
    struct itimerspec its = {{0, 0}, {0, 10000000}};
    check_sys(timer_settime(tid, 0, &its, NULL));
    for (int i = 0; i < 100; i++) {
        sigset_t p;
        check_sys(sigpending(&p));
        if (sigismember(&p, t))
            break;
        test_sleep_ms(10);
    }

    test_ready();
    test_wait_go();

    siginfo_t si;
    sigset_t only_q;
    sigemptyset(&only_q);
    sigaddset(&only_q, q);
    for (int want = 777; want <= 778; want++) {
        check(take(&only_q, &si) == q, "SIGRTMIN (value %d) is no longer pending", want);
        check(si.si_code == SI_QUEUE && si.si_value.sival_int == want,
              "SIGRTMIN came back with si_code %d and value %d, expected SI_QUEUE and %d",
              si.si_code, si.si_value.sival_int, want);
    }
    check(take(&set, &si) == t, "the timer's SIGRTMIN+1 is no longer pending");
    check(si.si_code == SI_TIMER && si.si_value.sival_int == 4242 &&
              si.si_timerid == (int)(intptr_t)tid,
          "the timer's signal came back with si_code %d, value %d, timer %d; expected "
          "SI_TIMER, 4242, %d", si.si_code, si.si_value.sival_int, si.si_timerid,
          (int)(intptr_t)tid);
    struct timespec none = {0, 0};
    check(sigtimedwait(&set, &si, &none) < 0, "signal %d (si_code %d) pending too many times",
          si.si_signo, si.si_code);
    b_go = 1;
    check(pthread_join(b, NULL) == 0 && b_done, "thread B did not finish");
    pass();
}
