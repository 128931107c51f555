/* signals - dispositions, masks and alternate stacks survive a checkpoint.
 *
 * Before READY: SIGUSR1 has an SA_SIGINFO|SA_RESTART|SA_ONSTACK handler
 * with SIGHUP in sa_mask; SIGUSR2 an SA_SIGINFO|SA_NODEFER handler with
 * SIGINT and SIGQUIT in sa_mask; SIGHUP a plain handler with SA_RESETHAND;
 * SIGPIPE is ignored; SIGTERM and SIGCHLD are default. The main thread
 * blocks SIGQUIT; thread A blocks SIGUSR2 and SIGRTMIN+3 and runs on a
 * 256 KiB sigaltstack. After restore: sigaction(), pthread_sigmask() and
 * sigaltstack() report exactly that; raise(SIGUSR1) runs the handler (on
 * thread A's alternate stack when raised there, on the normal stack in
 * main); a blocked SIGUSR2 stays pending until unblocked; SA_RESETHAND
 * resets SIGHUP after one delivery; writing to a broken pipe gives EPIPE.
 */
#include <signal.h>

#include "testlib.h"

#define ALTSZ (256 * 1024)

struct hit {
    volatile int count, signo, code;
    volatile pid_t tid;
    void *volatile where;
};
static struct hit hits[65];

static void on_info(int sig, siginfo_t *si, void *uc)
{
    volatile char here;
    struct hit *h = &hits[sig];
    h->signo = si->si_signo;
    h->code = si->si_code;
    h->tid = gettid();
    h->where = (void *)&here;
    h->count++;
}

static void on_plain(int sig)
{
    volatile char here;
    hits[sig].where = (void *)&here;
    hits[sig].count++;
}

static void *altstack;
static volatile int go;
static pthread_t thread_a;
static sigset_t mask_main, mask_a;

static void set_action(int sig, void *fn, int flags, int m1, int m2)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    if (m1)
        sigaddset(&sa.sa_mask, m1);
    if (m2)
        sigaddset(&sa.sa_mask, m2);
    sa.sa_flags = flags;
    if (flags & SA_SIGINFO)
        sa.sa_sigaction = fn;
    else
        sa.sa_handler = fn;
    check_sys(sigaction(sig, &sa, NULL));
}

/* The disposition of sig must have this handler, these flags (among the
 * ones a program sets) and exactly this sa_mask (among signals 1..31). */
static void check_action(int sig, void *fn, int flags, int m1, int m2)
{
    struct sigaction sa;
    const int known = SA_SIGINFO | SA_RESTART | SA_ONSTACK | SA_NODEFER |
                      SA_RESETHAND | SA_NOCLDSTOP | SA_NOCLDWAIT;
    check_sys(sigaction(sig, NULL, &sa));
    void *h = (sa.sa_flags & SA_SIGINFO) ? (void *)sa.sa_sigaction : (void *)sa.sa_handler;
    check(h == fn, "signal %d (%s): handler %p, expected %p", sig, strsignal(sig), h, fn);
    check((sa.sa_flags & known) == flags, "signal %d (%s): flags %#x, expected %#x",
          sig, strsignal(sig), sa.sa_flags & known, flags);
    for (int s = 1; s < 32; s++) {
        int want = (s == m1 || s == m2);
        check(sigismember(&sa.sa_mask, s) == want,
              "signal %d (%s): sa_mask %s signal %d", sig, strsignal(sig),
              want ? "lacks" : "has extra", s);
    }
}

/* The calling thread's mask must equal want for every signal. */
static void check_mask(const sigset_t *want, const char *who)
{
    sigset_t cur;
    check(pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0, "pthread_sigmask");
    for (int s = 1; s <= SIGRTMAX; s++)
        check(sigismember(&cur, s) == sigismember(want, s),
              "%s: signal %d is %s", who, s,
              sigismember(&cur, s) ? "blocked but should not be" : "not blocked");
}

static int on_altstack(void *p)
{
    return (char *)p >= (char *)altstack && (char *)p < (char *)altstack + ALTSZ;
}

static void *thread_a_main(void *arg)
{
    stack_t ss = { .ss_sp = altstack, .ss_size = ALTSZ, .ss_flags = 0 };
    pid_t tid = gettid();

    check_sys(sigaltstack(&ss, NULL));
    check(pthread_sigmask(SIG_BLOCK, &mask_a, NULL) == 0, "pthread_sigmask");
    /* sanity before the checkpoint */
    raise(SIGUSR1);
    check(hits[SIGUSR1].count == 1 && on_altstack(hits[SIGUSR1].where),
          "SIGUSR1 before checkpoint not handled on the alternate stack");

    while (!go)
        usleep(10000);

    tid = gettid(); /* as the program sees it, before and after restore */
    check_mask(&mask_a, "thread A");
    check_sys(sigaltstack(NULL, &ss));
    check(ss.ss_sp == altstack && ss.ss_size == ALTSZ && ss.ss_flags == 0,
          "thread A sigaltstack is sp=%p size=%zu flags=%d, expected sp=%p size=%d flags=0",
          ss.ss_sp, ss.ss_size, ss.ss_flags, altstack, ALTSZ);

    int before = hits[SIGUSR1].count;
    check(raise(SIGUSR1) == 0, "raise(SIGUSR1) in thread A");
    check(hits[SIGUSR1].count == before + 1, "SIGUSR1 handler did not run in thread A");
    check(hits[SIGUSR1].signo == SIGUSR1 && hits[SIGUSR1].code == SI_TKILL,
          "SIGUSR1 siginfo: signo %d code %d", hits[SIGUSR1].signo, hits[SIGUSR1].code);
    check(hits[SIGUSR1].tid == tid, "SIGUSR1 handled by tid %d, not thread A (%d)",
          hits[SIGUSR1].tid, tid);
    check(on_altstack(hits[SIGUSR1].where),
          "SIGUSR1 handler ran at %p, not on thread A's alternate stack %p",
          hits[SIGUSR1].where, altstack);

    /* blocked SIGUSR2 stays pending until unblocked */
    before = hits[SIGUSR2].count;
    check(raise(SIGUSR2) == 0, "raise(SIGUSR2)");
    check(hits[SIGUSR2].count == before, "blocked SIGUSR2 was delivered");
    sigset_t pend, u2;
    check_sys(sigpending(&pend));
    check(sigismember(&pend, SIGUSR2) == 1, "SIGUSR2 not pending while blocked");
    sigemptyset(&u2);
    sigaddset(&u2, SIGUSR2);
    check(pthread_sigmask(SIG_UNBLOCK, &u2, NULL) == 0, "unblock SIGUSR2");
    check(hits[SIGUSR2].count == before + 1, "SIGUSR2 not delivered once unblocked");
    check(!on_altstack(hits[SIGUSR2].where), "SIGUSR2 (no SA_ONSTACK) ran on the altstack");
    return (void *)1;
}

int main(void)
{
    altstack = malloc(ALTSZ);
    check(altstack, "malloc");

    set_action(SIGUSR1, on_info, SA_SIGINFO | SA_RESTART | SA_ONSTACK, SIGHUP, 0);
    set_action(SIGUSR2, on_info, SA_SIGINFO | SA_NODEFER, SIGINT, SIGQUIT);
    set_action(SIGHUP, on_plain, SA_RESETHAND, 0, 0);
    set_action(SIGPIPE, SIG_IGN, 0, 0, 0);

    sigemptyset(&mask_main);
    sigaddset(&mask_main, SIGQUIT);
    check(pthread_sigmask(SIG_SETMASK, &mask_main, NULL) == 0, "pthread_sigmask");
    mask_a = mask_main; /* inherited, plus its own */
    sigaddset(&mask_a, SIGUSR2);
    sigaddset(&mask_a, SIGRTMIN + 3);

    check(pthread_create(&thread_a, NULL, thread_a_main, NULL) == 0, "pthread_create");
    while (hits[SIGUSR1].count == 0)
        usleep(1000);

    test_ready();
    test_wait_go();

    check_action(SIGUSR1, on_info, SA_SIGINFO | SA_RESTART | SA_ONSTACK, SIGHUP, 0);
    check_action(SIGUSR2, on_info, SA_SIGINFO | SA_NODEFER, SIGINT, SIGQUIT);
    check_action(SIGHUP, on_plain, SA_RESETHAND, 0, 0);
    check_action(SIGPIPE, SIG_IGN, 0, 0, 0);
    check_action(SIGTERM, SIG_DFL, 0, 0, 0);
    check_action(SIGCHLD, SIG_DFL, 0, 0, 0);
    check_action(SIGINT, SIG_DFL, 0, 0, 0);
    check_mask(&mask_main, "main thread");

    stack_t ss;
    check_sys(sigaltstack(NULL, &ss));
    check(ss.ss_flags & SS_DISABLE, "main thread has an alternate stack (flags %d)",
          ss.ss_flags);

    /* let thread A check its own state first */
    go = 1;
    void *ret;
    check(pthread_join(thread_a, &ret) == 0 && ret == (void *)1, "join thread A");

    /* in main, SIGUSR1 runs on the normal stack */
    int before = hits[SIGUSR1].count;
    check(raise(SIGUSR1) == 0, "raise(SIGUSR1) in main");
    check(hits[SIGUSR1].count == before + 1, "SIGUSR1 handler did not run in main");
    check(!on_altstack(hits[SIGUSR1].where), "SIGUSR1 in main ran on thread A's altstack");
    check(hits[SIGUSR1].tid == getpid(), "SIGUSR1 in main: handler tid %d, pid %d",
          hits[SIGUSR1].tid, getpid());

    /* SA_RESETHAND: one delivery, then default */
    check(raise(SIGHUP) == 0 && hits[SIGHUP].count == 1, "SIGHUP handler did not run");
    struct sigaction hup;
    check_sys(sigaction(SIGHUP, NULL, &hup));
    check(hup.sa_handler == SIG_DFL, "SA_RESETHAND did not reset SIGHUP");

    /* SIGPIPE ignored: EPIPE instead of death */
    int p[2];
    check_sys(pipe(p));
    close(p[0]);
    errno = 0;
    check(write(p[1], "x", 1) == -1 && errno == EPIPE,
          "write to a broken pipe: %s", strerror(errno));
    close(p[1]);
    pass();
}
