/* call_hook_fork - a program whose shim is called (it closed every
 * descriptor above 2 with closefrom: common/ctlproto.h, CK_CALL_COMM)
 * whose before-checkpoint hook starts a thread and whose after-checkpoint
 * hook forks a child (hooks run on the manager, which blocks every
 * signal: what a hook starts must not inherit that, or the checkpoint
 * cannot park the thread, and SIGTERM never ends the child). The hook runs on the
 * shim's manager thread, named "ckshim-call": the child's only thread is
 * born with that name, and coord, looking for the thread to call, must
 * still reach the child's own manager (test_progs.sh takes a live
 * checkpoint first, then one with --kill: the second one is of a tree
 * with that child). The child must not keep the manager's name (it is a
 * thread of the program), and answers through the shared page after the
 * restore. Without the shim (or without the live checkpoint) there is no
 * child, and nothing to check of it.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "testlib.h"
#include "../../../preload/ckshim.h"

struct shared {
    volatile int child;     /* the child's pid, once forked */
    volatile int named;     /* 1: the child's thread has the manager's name */
    volatile int ask, said; /* the parent asks, the child answers (counts) */
};

static struct shared *sh;
static pid_t root;
static volatile long ticks; /* the hook's thread counts */

static void *ticker(void *arg)
{
    (void)arg;
    for (;;) {
        ticks++;
        usleep(5000);
    }
    return NULL;
}

static int hook(int event, void *arg)
{
    (void)arg;
    static int started;
    if (event == CKSHIM_EVENT_BEFORE_CHECKPOINT && getpid() == root && !started) {
        /* a thread the checkpoint that follows must park */
        pthread_t t;
        started = pthread_create(&t, NULL, ticker, NULL) == 0;
    }
    if (event != CKSHIM_EVENT_AFTER_CHECKPOINT || getpid() != root || sh->child)
        return 0;
    pid_t c = fork();
    if (c == 0) {
        char comm[17] = "";
        prctl(PR_GET_NAME, comm, 0, 0, 0);
        sh->named = !strcmp(comm, "ckshim-call");
        for (;;) {
            if (sh->ask != sh->said)
                sh->said = sh->ask;
            usleep(10000);
        }
    }
    if (c > 0)
        sh->child = c;
    return 0;
}

int main(void)
{
    sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        fail("mmap: %s", strerror(errno));
    root = getpid();
    closefrom(3);
    ckshim_try_register_hook(hook, NULL);
    test_ready();
    test_wait_go();
    if (sh->child) {
        if (sh->named)
            fail("the child forked by the hook has the manager's name");
        sh->ask = 7;
        for (int i = 0; i < 500 && sh->said != 7; i++)
            usleep(10000);
        if (sh->said != 7)
            fail("the child %d does not answer after restore", sh->child);
        kill(sh->child, SIGTERM);
        int st;
        if (waitpid(sh->child, &st, 0) != sh->child || !WIFSIGNALED(st))
            fail("the child: waitpid %s, status %#x", strerror(errno), st);
        long t0 = ticks;
        usleep(100000);
        if (ticks == t0)
            fail("the hook's thread does not run after restore");
        test_msg("child %d checked, the hook's thread at %ld", sh->child, ticks);
    }
    pass();
}
