/* cputime - CPU-time clocks never go backwards across a restore.
 *
 * Before READY the main thread and a worker thread burn CPU (0.3 s and
 * 0.2 s) and a child burns 0.1 s and is reaped, so every clock is well
 * above what a fresh process shows. Then, while waiting for the go file
 * and for a while after it, both threads keep sampling and check that no
 * sample is below the one before (the checkpoint and restore happen in
 * between): clock(), CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID,
 * the worker's clock from pthread_getcpuclockid and the process's from
 * clock_getcpuclockid(getpid()) (both obtained before the checkpoint),
 * getrusage RUSAGE_SELF, RUSAGE_THREAD and RUSAGE_CHILDREN (user and
 * system time separately) and times(). After the go file the clocks must
 * still advance: 50 ms of work adds at least 40 ms; and a
 * clock_nanosleep until 20 ms of process CPU time from now (absolute)
 * returns within 2 s (the worker keeps using some CPU).
 */
#include <sys/resource.h>
#include <sys/times.h>
#include <sys/wait.h>

#include "testlib.h"

static volatile int stop_worker;
static volatile uint64_t sink;

static int64_t ns_of(clockid_t c)
{
    struct timespec ts;
    check(clock_gettime(c, &ts) == 0, "clock_gettime(%d): %s", (int)c, strerror(errno));
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t us_of(const struct timeval *tv)
{
    return tv->tv_sec * 1000000LL + tv->tv_usec;
}

static void burn_ms(int ms)
{
    int64_t end = ns_of(CLOCK_THREAD_CPUTIME_ID) + ms * 1000000LL;
    while (ns_of(CLOCK_THREAD_CPUTIME_ID) < end)
        for (int i = 0; i < 10000; i++)
            sink += (uint64_t)i * 2654435761u;
}

enum { C_CLOCK, C_PROC, C_THREAD, C_WORKER, C_PIDCLK, C_SELF_U, C_SELF_S, C_KIDS_U, C_KIDS_S,
       C_TIMES_U, C_TIMES_S, C_TIMES_CU, C_TIMES_CS, NC };
static const char *const names[NC] = {
    "clock()", "CLOCK_PROCESS_CPUTIME_ID", "CLOCK_THREAD_CPUTIME_ID (main)",
    "pthread_getcpuclockid(worker)", "clock_getcpuclockid(getpid())", "RUSAGE_SELF utime",
    "RUSAGE_SELF stime", "RUSAGE_CHILDREN utime", "RUSAGE_CHILDREN stime", "times() tms_utime",
    "times() tms_stime", "times() tms_cutime", "times() tms_cstime",
};
static clockid_t worker_clk, pid_clk;

static void sample(int64_t *v)
{
    struct rusage ru;
    struct tms t;
    v[C_CLOCK] = (int64_t)clock();
    v[C_PROC] = ns_of(CLOCK_PROCESS_CPUTIME_ID);
    v[C_THREAD] = ns_of(CLOCK_THREAD_CPUTIME_ID);
    v[C_WORKER] = ns_of(worker_clk);
    v[C_PIDCLK] = ns_of(pid_clk);
    check_sys(getrusage(RUSAGE_SELF, &ru));
    v[C_SELF_U] = us_of(&ru.ru_utime);
    v[C_SELF_S] = us_of(&ru.ru_stime);
    check_sys(getrusage(RUSAGE_CHILDREN, &ru));
    v[C_KIDS_U] = us_of(&ru.ru_utime);
    v[C_KIDS_S] = us_of(&ru.ru_stime);
    check(times(&t) != (clock_t)-1, "times: %s", strerror(errno));
    v[C_TIMES_U] = t.tms_utime;
    v[C_TIMES_S] = t.tms_stime;
    v[C_TIMES_CU] = t.tms_cutime;
    v[C_TIMES_CS] = t.tms_cstime;
}

static void compare(const int64_t *prev, const int64_t *now, const char *who)
{
    for (int i = 0; i < NC; i++)
        check(now[i] >= prev[i], "%s: %s went back from %lld to %lld", who, names[i],
              (long long)prev[i], (long long)now[i]);
}

static void *worker(void *arg)
{
    (void)arg;
    burn_ms(200);
    int64_t prev[3] = {0, 0, 0};
    while (!stop_worker) {
        struct rusage ru;
        check_sys(getrusage(RUSAGE_THREAD, &ru));
        int64_t now[3] = {ns_of(CLOCK_THREAD_CPUTIME_ID), us_of(&ru.ru_utime),
                          us_of(&ru.ru_stime)};
        static const char *const wn[3] = {"CLOCK_THREAD_CPUTIME_ID", "RUSAGE_THREAD utime",
                                          "RUSAGE_THREAD stime"};
        for (int i = 0; i < 3; i++)
            check(now[i] >= prev[i], "worker: %s went back from %lld to %lld", wn[i],
                  (long long)prev[i], (long long)now[i]);
        check(now[0] >= 150000000LL, "worker: its CPU clock reads %lld ms after 200 ms of work",
              (long long)(now[0] / 1000000));
        memcpy(prev, now, sizeof(prev));
        burn_ms(1);
        usleep(5000);
    }
    return NULL;
}

int main(void)
{
    pid_t kid = fork();
    check(kid >= 0, "fork: %s", strerror(errno));
    if (kid == 0) {
        burn_ms(100);
        _exit(0);
    }
    int st;
    check(waitpid(kid, &st, 0) == kid && WIFEXITED(st), "the burning child did not exit");

    pthread_t th;
    check(pthread_create(&th, NULL, worker, NULL) == 0, "pthread_create failed");
    burn_ms(300);
    check(pthread_getcpuclockid(th, &worker_clk) == 0, "pthread_getcpuclockid failed");
    check(clock_getcpuclockid(getpid(), &pid_clk) == 0, "clock_getcpuclockid failed");
    usleep(250000);                     /* the worker is done burning */

    int64_t prev[NC], now[NC];
    sample(prev);
    check(prev[C_PROC] >= 400000000LL, "process CPU clock %lld ms after 500 ms of work",
          (long long)(prev[C_PROC] / 1000000));
    check(prev[C_KIDS_U] + prev[C_KIDS_S] >= 50000, "children's time %lld us after 100 ms",
          (long long)(prev[C_KIDS_U] + prev[C_KIDS_S]));
    test_ready();
    int after = 0;
    while (after < 20) {
        if (test_go_reached())
            after++;
        sample(now);
        compare(prev, now, after ? "after the go file" : "while waiting");
        memcpy(prev, now, sizeof(prev));
        burn_ms(1);
        usleep(10000);
    }
    int64_t p0 = ns_of(CLOCK_PROCESS_CPUTIME_ID), t0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
    burn_ms(50);
    int64_t p1 = ns_of(CLOCK_PROCESS_CPUTIME_ID), t1 = ns_of(CLOCK_THREAD_CPUTIME_ID);
    check(t1 - t0 >= 40000000LL && p1 - p0 >= 40000000LL,
          "50 ms of work advanced the thread clock by %lld ms, the process clock by %lld ms",
          (long long)((t1 - t0) / 1000000), (long long)((p1 - p0) / 1000000));
    struct timespec until;
    check(clock_gettime(pid_clk, &until) == 0, "clock_gettime: %s", strerror(errno));
    until.tv_nsec += 20000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    int64_t w0 = test_now_ns();
    int r = clock_nanosleep(pid_clk, TIMER_ABSTIME, &until, NULL);
    check(r == 0, "clock_nanosleep on the process CPU clock: %s", strerror(r));
    check(ns_of(pid_clk) >= until.tv_sec * 1000000000LL + until.tv_nsec,
          "clock_nanosleep returned before its absolute CPU time");
    check(test_now_ns() - w0 < 2000000000LL, "clock_nanosleep until +20 ms of CPU time took "
          "%lld ms", (long long)((test_now_ns() - w0) / 1000000));
    stop_worker = 1;
    pthread_join(th, NULL);
    pass();
}
