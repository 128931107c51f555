/* stop_ticker.c - a process whose every moment of running shows: its main
 * thread and a worker each count a tick every millisecond and write both
 * counts, and how many SIGCONTs its handler saw, to the file "ticks" in
 * its working directory (one fixed-width line, rewritten in place).
 *
 * test_stopped.sh stops it (SIGSTOP, SIGTSTP), checkpoints it, restores
 * it, and reads "ticks" to tell whether it ran while it should have been
 * stopped, and whether its SIGCONT handler ran once it was continued. Run
 * by test_progs.sh it is an ordinary program: checkpointed and restored
 * while it runs, it must go on with both threads counting.
 */
#include <signal.h>

#include "testlib.h"

static volatile long ticks[2];
static volatile sig_atomic_t conts;
static int tfd;

static void on_cont(int sig)
{
    (void)sig;
    conts++;
}

static void note(void)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%12ld %12ld %6d\n", ticks[0], ticks[1], (int)conts);
    if (pwrite(tfd, line, (size_t)n, 0) != n)
        fail("pwrite ticks: %s", strerror(errno));
}

static void tick(int who)
{
    struct timespec ms = {0, 1000000};
    ticks[who]++;
    note();
    nanosleep(&ms, NULL);
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;)
        tick(1);
    return NULL;
}

int main(void)
{
    tfd = open("ticks", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (tfd < 0)
        fail("open ticks: %s", strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cont;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCONT, &sa, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        fail("pthread_create");
    while (ticks[1] == 0)
        tick(0);
    test_ready();
    long w0 = ticks[1];
    while (!test_go_reached())
        tick(0);
    /* both threads still count */
    long w1 = ticks[1];
    for (int i = 0; i < 200 && ticks[1] == w1; i++)
        tick(0);
    if (ticks[1] == w1 || w1 < w0)
        fail("the worker stopped counting (%ld, %ld)", w0, w1);
    pass();
}
