/* hooks.c - the program's own checkpoint hooks (ckshim_register_hook,
 * preload/ckshim.h), as CRaC's beforeCheckpoint/afterRestore: a program
 * that holds something a checkpoint cannot carry (a connection to another
 * host) lets go of it before and takes it again after.
 *
 * Every hook runs on the manager thread, before the threads are parked
 * and after they run again: a parked thread may hold any lock (malloc's,
 * stdio's, the program's own), so a hook run while they are parked could
 * wait for ever. Before-hooks run in registration order, after-hooks in
 * reverse order. The table is in the shim's memory, so it travels in the
 * image: a restored program keeps its hooks. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

struct hook {
    int (*fn)(int event, void *arg);
    void *arg;
    volatile int ready;                 /* filled in: may be run */
};

static struct hook hooks[SHIM_MAX_HOOKS];
static volatile int nhooks;             /* entries claimed */
/* before-hooks that returned 0 in the checkpoint in progress: theirs are
 * the after-checkpoint hooks to run, also when the checkpoint fails */
static unsigned char ran[SHIM_MAX_HOOKS];

/* No lock and no allocation: a claim by compare-and-swap, then the entry
 * is published. Safe from any thread and from a signal handler. */
SHIM_API int ckshim_register_hook(int (*fn)(int event, void *arg), void *arg)
{
    if (!fn) {
        errno = EINVAL;
        return -1;
    }
    int n = __atomic_load_n(&nhooks, __ATOMIC_ACQUIRE);
    do {
        if (n >= SHIM_MAX_HOOKS) {
            errno = ENOSPC;
            return -1;
        }
    } while (!__atomic_compare_exchange_n(&nhooks, &n, n + 1, 0, __ATOMIC_ACQ_REL,
                                          __ATOMIC_ACQUIRE));
    hooks[n].fn = fn;
    hooks[n].arg = arg;
    __atomic_store_n(&hooks[n].ready, 1, __ATOMIC_RELEASE);
    return 0;
}

/* Run hook i for event on the manager thread as a thread of the program:
 * with no signal blocked (the manager blocks every one outside its wait),
 * so that what it starts (a thread, a child through fork, system, popen
 * or posix_spawn) does not inherit a mask that keeps the checkpoint
 * signal, or SIGTERM, out; the manager's mask is put back after. */
static int call_hook(int i, int event)
{
    sigset_t none, prev;
    sigemptyset(&none);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, &prev, 8);
    int r = hooks[i].fn(event, hooks[i].arg);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &prev, NULL, 8);
    return r;
}

/* A hook whose registration is still being written is not run this time
 * (nor its after-hook). */
static int usable(int i)
{
    return __atomic_load_n(&hooks[i].ready, __ATOMIC_ACQUIRE) != 0;
}

int hooks_before_checkpoint(char *err, size_t errlen)
{
    int n = __atomic_load_n(&nhooks, __ATOMIC_ACQUIRE);
    memset(ran, 0, sizeof ran);
    for (int i = 0; i < n; i++) {
        if (!usable(i))
            continue;
        int r = call_hook(i, CKSHIM_EVENT_BEFORE_CHECKPOINT);
        if (r == 0) {
            ran[i] = 1;
            continue;
        }
        char name[300];
        unwind_symbol_name((const void *)hooks[i].fn, name, sizeof name);
        snprintf(err, errlen, "the program refused the checkpoint: its before-checkpoint hook "
                 "%s (hook %d of %d) returned %d; nothing was written, the program goes on",
                 name, i + 1, n, r);
        return -ECANCELED;
    }
    return 0;
}

/* The after-hooks of the hooks told of the checkpoint, in reverse order. */
static void run_after(int event)
{
    for (int i = SHIM_MAX_HOOKS - 1; i >= 0; i--) {
        if (!ran[i])
            continue;
        ran[i] = 0;
        call_hook(i, event);
    }
}

void hooks_after_checkpoint(void)
{
    run_after(CKSHIM_EVENT_AFTER_CHECKPOINT);
}

/* The image was taken after every before-hook returned 0: ran[], in the
 * image, names the hooks that were told of the checkpoint (not one
 * registered while it ran). */
void hooks_after_restore(void)
{
    run_after(CKSHIM_EVENT_AFTER_RESTORE);
}
