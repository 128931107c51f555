/* sigmask_thread - per-thread signal masks survive threads parked in
 * different blocking calls.
 *
 * Before READY the main thread blocks SIGQUIT; four threads each block
 * their own set (pthread_sigmask) on top of it and then park:
 *   S: blocks SIGUSR2, SIGRTMIN+1; waits in sigsuspend() with everything
 *      but SIGUSR1 blocked (so its mask is changed while it waits);
 *   C: blocks SIGINT, SIGTERM, SIGRTMIN+2; waits in pthread_cond_wait();
 *   R: blocks SIGHUP, SIGUSR1, SIGRTMIN+5, has a 64 KiB sigaltstack;
 *      waits in read() on a pipe;
 *   B: blocks SIGALRM, SIGCHLD, SIGRTMIN+7; busy-loops without syscalls.
 * Every signal used has a counting handler. After restore: main wakes S
 * with pthread_kill(SIGUSR1) (sigsuspend returns EINTR, the handler ran in
 * S), signals C's condvar, writes "wake!" to R's pipe (read returns those 5
 * bytes) and stops B, which must have kept counting. Each thread then
 * checks its own mask is exactly as set (signals 1..64 apart from glibc's
 * internal 32 and 33 and the shim's checkpoint signal), R its sigaltstack,
 * and that the kernel honours the mask: a blocked signal sent to itself
 * stays pending (and is then taken with sigtimedwait), an unblocked one
 * runs its handler at once.
 */
#include <signal.h>

#include "testlib.h"

#define ALTSZ (64 * 1024)

enum { TS, TC, TR, TB, NT };
static const char *const tname[NT] = { "S (sigsuspend)", "C (cond_wait)", "R (read)",
                                       "B (busy)" };
static sigset_t main_mask, want_mask[NT];
static int blocked_sig[NT], free_sig[NT]; /* one blocked, one unblocked per thread */
static volatile int hits[65];
static volatile pid_t hit_tid[65];
static volatile int parked[NT];
static volatile int b_stop;
static volatile unsigned long b_count;
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cc = PTHREAD_COND_INITIALIZER;
static int c_woken;
static int pfd[2];
static void *altstack;

static void on_sig(int sig)
{
    hit_tid[sig] = gettid();
    hits[sig]++;
}

/* The shim's checkpoint signal (SIGRTMAX-2 by default) stays unblocked. */
static int skip_sig(int s)
{
    const char *e = getenv("CKSHIM_SIGNAL");
    int ck = e ? atoi(e) : SIGRTMAX - 2;
    return s == 32 || s == 33 || s == ck;
}

static void check_mask(int t)
{
    sigset_t cur;
    check(pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0, "pthread_sigmask");
    for (int s = 1; s <= 64; s++)
        if (!skip_sig(s))
            check(sigismember(&cur, s) == sigismember(&want_mask[t], s),
                  "thread %s: signal %d (%s) is %s", tname[t], s, strsignal(s),
                  sigismember(&cur, s) ? "blocked but should not be" : "not blocked");
}

/* The kernel honours the mask: blocked stays pending, unblocked runs. */
static void check_delivery(int t)
{
    int bs = blocked_sig[t], fs = free_sig[t];
    int before = hits[bs];
    check(pthread_kill(pthread_self(), bs) == 0, "pthread_kill %d", bs);
    check(hits[bs] == before, "thread %s: blocked signal %d ran its handler", tname[t], bs);
    sigset_t pend, one;
    check_sys(sigpending(&pend));
    check(sigismember(&pend, bs), "thread %s: blocked signal %d is not pending", tname[t], bs);
    sigemptyset(&one);
    sigaddset(&one, bs);
    struct timespec zero = { 0, 0 };
    check(sigtimedwait(&one, NULL, &zero) == bs, "thread %s: sigtimedwait(%d): %s", tname[t],
          bs, strerror(errno));
    before = hits[fs];
    check(pthread_kill(pthread_self(), fs) == 0, "pthread_kill %d", fs);
    check(hits[fs] == before + 1 && hit_tid[fs] == gettid(),
          "thread %s: unblocked signal %d did not run its handler here", tname[t], fs);
    check_mask(t); /* and nothing changed it */
}

static void block_own(int t)
{
    check(pthread_sigmask(SIG_SETMASK, &want_mask[t], NULL) == 0, "pthread_sigmask");
    check_mask(t);
}

static void *s_main(void *arg)
{
    block_own(TS);
    sigset_t wait_mask;
    sigfillset(&wait_mask);
    sigdelset(&wait_mask, SIGUSR1);
    int before = hits[SIGUSR1];
    parked[TS] = 1;
    int r = sigsuspend(&wait_mask);
    check(r == -1 && errno == EINTR, "thread S: sigsuspend returned %d (%s)", r,
          strerror(errno));
    check(hits[SIGUSR1] == before + 1 && hit_tid[SIGUSR1] == gettid(),
          "thread S: SIGUSR1 handler did not run in S");
    check_mask(TS);
    check_delivery(TS);
    return (void *)1;
}

static void *c_main(void *arg)
{
    block_own(TC);
    pthread_mutex_lock(&cm);
    parked[TC] = 1;
    while (!c_woken)
        pthread_cond_wait(&cc, &cm);
    pthread_mutex_unlock(&cm);
    check_mask(TC);
    check_delivery(TC);
    return (void *)2;
}

static void *r_main(void *arg)
{
    stack_t ss = { .ss_sp = altstack, .ss_size = ALTSZ, .ss_flags = 0 };
    check_sys(sigaltstack(&ss, NULL));
    block_own(TR);
    char buf[16];
    parked[TR] = 1;
    ssize_t n = read(pfd[0], buf, sizeof(buf));
    check(n == 5 && memcmp(buf, "wake!", 5) == 0, "thread R: read gave %zd: %s", n,
          n < 0 ? strerror(errno) : "wrong bytes");
    check_mask(TR);
    check_sys(sigaltstack(NULL, &ss));
    check(ss.ss_sp == altstack && ss.ss_size == ALTSZ && ss.ss_flags == 0,
          "thread R: sigaltstack sp=%p size=%zu flags=%d, expected sp=%p size=%d flags=0",
          ss.ss_sp, ss.ss_size, ss.ss_flags, altstack, ALTSZ);
    check_delivery(TR);
    return (void *)3;
}

static void *b_main(void *arg)
{
    block_own(TB);
    parked[TB] = 1;
    while (!b_stop)
        b_count++;
    check_mask(TB);
    check_delivery(TB);
    return (void *)4;
}

static void set_mask(int t, int a, int b, int c)
{
    want_mask[t] = main_mask;
    sigaddset(&want_mask[t], a);
    sigaddset(&want_mask[t], b);
    if (c)
        sigaddset(&want_mask[t], c);
    blocked_sig[t] = a;
}

int main(void)
{
    static void *(*const fn[NT])(void *) = { s_main, c_main, r_main, b_main };
    pthread_t thr[NT];
    const int used[] = { SIGUSR1, SIGUSR2, SIGINT, SIGTERM, SIGHUP, SIGALRM, SIGCHLD,
                         SIGQUIT, SIGWINCH, SIGRTMIN + 1, SIGRTMIN + 2, SIGRTMIN + 5,
                         SIGRTMIN + 7 };

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sig;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(used) / sizeof(used[0]); i++)
        check_sys(sigaction(used[i], &sa, NULL));

    sigemptyset(&main_mask);
    sigaddset(&main_mask, SIGQUIT);
    check(pthread_sigmask(SIG_SETMASK, &main_mask, NULL) == 0, "pthread_sigmask");
    set_mask(TS, SIGUSR2, SIGRTMIN + 1, 0);
    set_mask(TC, SIGTERM, SIGINT, SIGRTMIN + 2);
    set_mask(TR, SIGHUP, SIGUSR1, SIGRTMIN + 5);
    set_mask(TB, SIGALRM, SIGCHLD, SIGRTMIN + 7);
    free_sig[TS] = SIGWINCH;
    free_sig[TC] = SIGUSR1;
    free_sig[TR] = SIGUSR2;
    free_sig[TB] = SIGRTMIN + 1;

    altstack = malloc(ALTSZ);
    check(altstack, "malloc");
    check_sys(pipe(pfd));
    for (int t = 0; t < NT; t++)
        check(pthread_create(&thr[t], NULL, fn[t], NULL) == 0, "pthread_create %s", tname[t]);
    for (int t = 0; t < NT; t++)
        while (!parked[t])
            usleep(1000);
    usleep(20000); /* S, C and R are inside their calls by now */

    test_ready();
    test_wait_go();

    unsigned long b0 = b_count;
    usleep(20000);
    check(b_count > b0, "thread B is not running after restore");

    sigset_t cur;
    check(pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0, "pthread_sigmask");
    for (int s = 1; s <= 64; s++)
        if (!skip_sig(s))
            check(sigismember(&cur, s) == sigismember(&main_mask, s),
                  "main thread: signal %d is %s", s,
                  sigismember(&cur, s) ? "blocked but should not be" : "not blocked");

    void *ret;
    check(pthread_kill(thr[TS], SIGUSR1) == 0, "pthread_kill S");
    check(pthread_join(thr[TS], &ret) == 0 && ret == (void *)1, "join S");

    pthread_mutex_lock(&cm);
    c_woken = 1;
    pthread_cond_signal(&cc);
    pthread_mutex_unlock(&cm);
    check(pthread_join(thr[TC], &ret) == 0 && ret == (void *)2, "join C");

    check(write(pfd[1], "wake!", 5) == 5, "write to R's pipe");
    check(pthread_join(thr[TR], &ret) == 0 && ret == (void *)3, "join R");

    b_stop = 1;
    check(pthread_join(thr[TB], &ret) == 0 && ret == (void *)4, "join B");
    pass();
}
