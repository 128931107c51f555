/* pending - signals that are pending (blocked) at the checkpoint are
 * still pending after restore.
 *
 * Every thread blocks SIGUSR1 and SIGUSR2. A process-directed SIGUSR1
 * (kill) and a SIGUSR2 directed at thread B (pthread_kill) wait. After
 * restore sigpending() in thread B shows both; when B unblocks them both
 * handlers run, in B. The main thread, which never unblocks, sees no
 * handler run before that. The same for SIGRTMAX (signal 64, the last bit
 * of the pending mask), process-directed.
 */
#include <signal.h>

#include "testlib.h"

static volatile int hit1, hit2, hitmax;
static volatile pid_t where1, where2;
static volatile int go;

static void on_sig(int sig)
{
    if (sig == SIGRTMAX) {
        hitmax++;
    } else if (sig == SIGUSR1) {
        hit1++;
        where1 = gettid();
    } else {
        hit2++;
        where2 = gettid();
    }
}

static void *thread_b(void *arg)
{
    while (!go)
        usleep(5000);
    sigset_t pend;
    check_sys(sigpending(&pend));
    check(sigismember(&pend, SIGUSR1) == 1, "process-directed SIGUSR1 no longer pending");
    check(sigismember(&pend, SIGUSR2) == 1, "thread-directed SIGUSR2 no longer pending");
    check(sigismember(&pend, SIGRTMAX) == 1, "SIGRTMAX no longer pending");
    check(hit1 == 0 && hit2 == 0 && hitmax == 0, "a blocked signal was delivered");
    sigset_t u;
    sigemptyset(&u);
    sigaddset(&u, SIGUSR1);
    sigaddset(&u, SIGUSR2);
    sigaddset(&u, SIGRTMAX);
    check(pthread_sigmask(SIG_UNBLOCK, &u, NULL) == 0, "unblock");
    check(hit1 == 1 && hit2 == 1 && hitmax == 1,
          "handlers ran %d/%d/%d times, expected once each", hit1, hit2, hitmax);
    check(where2 == gettid(), "SIGUSR2 ran in another thread");
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    check_sys(sigaction(SIGUSR1, &sa, NULL));
    check_sys(sigaction(SIGUSR2, &sa, NULL));
    check_sys(sigaction(SIGRTMAX, &sa, NULL));
    sigset_t b;
    sigemptyset(&b);
    sigaddset(&b, SIGUSR1);
    sigaddset(&b, SIGUSR2);
    sigaddset(&b, SIGRTMAX);
    check(pthread_sigmask(SIG_BLOCK, &b, NULL) == 0, "block");
    pthread_t t;
    check(pthread_create(&t, NULL, thread_b, NULL) == 0, "pthread_create");
    check_sys(kill(getpid(), SIGUSR1));
    check_sys(kill(getpid(), SIGRTMAX));
    check(pthread_kill(t, SIGUSR2) == 0, "pthread_kill");
    test_ready();
    test_wait_go();
    go = 1;
    pthread_join(t, NULL);
    pass();
    return 0;
}
