/* hooks - the program's checkpoint hooks (ckshim_register_hook).
 *
 * Registers three hooks, hook_a, hook_b and hook_c, through
 * ckshim_try_register_hook (dlsym: without the shim it must answer -1 and
 * ENOSYS, and the program runs on). Every call is printed ("hook EVENT
 * NAME") and recorded in memory, which travels with the image. At the go
 * file the record must be a sequence of checkpoints: before-hooks a, b, c
 * in order (or a, b if b refused), then the after-hooks of those that
 * returned 0 in reverse order, as event 1 (the program went on) or 2 (it
 * was restored: as many such blocks as ckshim_generation()). A worker
 * thread counts all along: every hook checks it still counts while the
 * hook runs (hooks run while the other threads run).
 *
 * For tests/integration/test_hooks.sh (all optional):
 *   HOOKS_REFUSE=FILE  hook_b refuses (returns 7) while FILE exists
 *   HOOKS_CHILD=FILE   hook_c starts a child process while FILE exists (a
 *                      checkpoint with a child is refused after every
 *                      before-hook ran); its after-hook ends the child
 *   HOOKS_FILL=1       register no-op hooks until it fails (print how many)
 *   SIGUSR1 has a handler that prints "usr1" (for CKSHIM_DUMP_ON=USR1).
 */
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "testlib.h"
#include "../../../preload/ckshim.h"

#define MAXREC 256
static struct {
    int event, hook, refused;
} rec[MAXREC];
static atomic_int nrec;
static atomic_long worker_count;
static volatile int threads_stopped;   /* a hook saw the worker stand still */
static const char *refuse_file, *child_file;
static pid_t child;

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        atomic_fetch_add(&worker_count, 1);
        test_sleep_ms(1);
    }
    return NULL;
}

static void usr1(int sig)
{
    (void)sig;
    (void)!write(1, "usr1\n", 5);
}

/* The worker counts while a hook runs. */
static void check_running(int hook, int event)
{
    long before = atomic_load(&worker_count);
    for (int i = 0; i < 200 && atomic_load(&worker_count) == before; i++)
        test_sleep_ms(1);
    if (atomic_load(&worker_count) == before) {
        threads_stopped = 1;
        test_msg("hook %c event %d: the worker thread does not run", 'a' + hook, event);
    }
}

static int hook(int which, int event)
{
    int refused = 0;
    check_running(which, event);
    if (which == 1 && event == CKSHIM_EVENT_BEFORE_CHECKPOINT && refuse_file &&
        access(refuse_file, F_OK) == 0)
        refused = 1;
    if (which == 2 && child_file) {
        if (event == CKSHIM_EVENT_BEFORE_CHECKPOINT && access(child_file, F_OK) == 0) {
            child = fork();
            if (child == 0) {
                pause();
                _exit(0);
            }
        } else if (event != CKSHIM_EVENT_BEFORE_CHECKPOINT && child > 0) {
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
            child = 0;
        }
    }
    int n = atomic_fetch_add(&nrec, 1);
    if (n < MAXREC) {
        rec[n].event = event;
        rec[n].hook = which;
        rec[n].refused = refused;
    }
    char line[64];
    int l = snprintf(line, sizeof line, "hook %d %c%s\n", event, 'a' + which,
                     refused ? " refused" : "");
    (void)!write(1, line, (size_t)l);
    return refused ? 7 : 0;
}

static int hook_a(int event, void *arg)
{
    (void)arg;
    return hook(0, event);
}

static int hook_b(int event, void *arg)
{
    (void)arg;
    return hook(1, event);
}

static int hook_c(int event, void *arg)
{
    (void)arg;
    return hook(2, event);
}

static int noop(int event, void *arg)
{
    (void)event;
    (void)arg;
    return 0;
}

/* The record is a sequence of checkpoints (see the top). */
static void verify(unsigned generation)
{
    int n = atomic_load(&nrec), i = 0;
    unsigned restores = 0;
    check(n <= MAXREC, "too many hook calls (%d)", n);
    while (i < n) {
        int k = 0; /* before-hooks that returned 0 */
        for (; k < 3 && i < n && rec[i].event == CKSHIM_EVENT_BEFORE_CHECKPOINT; k++, i++) {
            check(rec[i].hook == k, "call %d: before-hook %c, expected %c", i, 'a' + rec[i].hook,
                  'a' + k);
            if (rec[i].refused) {
                i++;
                break;
            }
        }
        check(k > 0, "call %d: event %d of hook %c without a before-hook", i, rec[i].event,
              'a' + rec[i].hook);
        if (i == n)
            break; /* checkpointed with --kill and not restored yet: cannot be */
        int ev = rec[i].event;
        check(ev != CKSHIM_EVENT_AFTER_RESTORE || k == 3,
              "call %d: after-restore hooks after a refused checkpoint", i);
        for (int h = k - 1; h >= 0; h--, i++) {
            check(i < n && rec[i].event == ev && rec[i].hook == h,
                  "call %d: expected event %d of hook %c, got %d of %c", i, ev, 'a' + h,
                  i < n ? rec[i].event : -1, i < n ? 'a' + rec[i].hook : '-');
        }
        if (ev == CKSHIM_EVENT_AFTER_RESTORE)
            restores++;
    }
    check(restores == generation, "%u after-restore blocks, generation %u", restores, generation);
}

int main(void)
{
    refuse_file = getenv("HOOKS_REFUSE");
    child_file = getenv("HOOKS_CHILD");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = usr1;
    check_sys(sigaction(SIGUSR1, &sa, NULL));
    pthread_t t;
    check(pthread_create(&t, NULL, worker, NULL) == 0, "pthread_create");

    int r = ckshim_try_register_hook(hook_a, NULL);
    int shim = r == 0;
    if (!shim) {
        check(errno == ENOSYS, "without the shim: errno %d, expected ENOSYS", errno);
        test_msg("no shim: ENOSYS");
    } else {
        check(ckshim_try_register_hook(hook_b, NULL) == 0, "register hook_b: %s", strerror(errno));
        check(ckshim_try_register_hook(hook_c, NULL) == 0, "register hook_c: %s", strerror(errno));
        check(ckshim_try_register_hook(NULL, NULL) == -1 && errno == EINVAL,
              "a NULL hook was accepted");
        const char *fill = getenv("HOOKS_FILL");
        if (fill && *fill == '1') {
            int k = 3;
            while (ckshim_try_register_hook(noop, NULL) == 0)
                k++;
            test_msg("registered %d hooks, then %s", k, errno == ENOSPC ? "ENOSPC" : strerror(errno));
        }
    }
    test_ready();
    test_wait_go();
    unsigned (*gen)(void);
    *(void **)&gen = dlsym(RTLD_DEFAULT, "ckshim_generation");
    verify(gen ? gen() : 0);
    check(!threads_stopped, "a hook ran while the other threads were stopped");
    if (!shim)
        check(atomic_load(&nrec) == 0, "hooks ran without the shim");
    pass();
}
