/* call_hook_fork - a program whose shim is called (it closed every
 * descriptor above 2 with closefrom: common/ctlproto.h, CK_CALL_COMM)
 * and whose after-checkpoint hook forks a child. The hook runs on the
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

static int hook(int event, void *arg)
{
    (void)arg;
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
        test_msg("child %d checked", sh->child);
    }
    pass();
}
