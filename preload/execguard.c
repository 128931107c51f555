/* execguard.c - the exec family with the checkpoint signal blocked.
 *
 * A checkpoint parks every thread with the checkpoint signal (tgkill from
 * the manager). A thread that is inside execve as the signal comes keeps
 * it pending across the exec, where the handler is gone (exec resets it
 * to the default action, which for a real-time signal is to end the
 * process): the new program died of signal 62 before its first
 * instruction. A shell's `x=$(cmd)` lost cmd's output so, now and then,
 * when a tree checkpoint met a subshell in its exec (test_bash_trees
 * forkloop, 1 in 24 under load).
 *
 * So each of these calls blocks the checkpoint signal for the calling
 * thread first (a raw rt_sigprocmask: the shim's own pthread_sigmask
 * would leave it out) and says so (g_shim.exec_tid: the manager then
 * waits for the thread instead of taking the block for a raw one,
 * quiesce.c). If the exec fails, the mask is put back and a signal that
 * came meanwhile parks the thread as usual. If it succeeds, the new
 * program starts with the signal blocked and perhaps pending: its shim
 * installs its handler and unblocks it (quiesce_init), and a leftover
 * signal finds no checkpoint and is ignored. A program started without
 * the shim keeps the signal blocked (it is the shim's, SIGRTMAX-2).
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rawsys.h"
#include "shim.h"

static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_execv)(const char *, char *const[]);
static int (*real_execvp)(const char *, char *const[]);
static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_fexecve)(int, char *const[], char *const[]);
static int (*real_execveat)(int, const char *, char *const[], char *const[], int);

static void guard_begin(uint64_t *old)
{
    /* (a process sharing its parent's table: its socket out of it) */
    shim_sharer_exec();
    uint64_t one = g_shim.ckpt_signal > 0 ? 1ULL << (g_shim.ckpt_signal - 1) : 0;
    *old = 0;
    if (!one)
        return;
    __atomic_store_n(&g_shim.exec_tid, (int)ck_sys6(SYS_gettid, 0, 0, 0, 0, 0, 0),
                     __ATOMIC_SEQ_CST);
    ck_sys6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&one, (long)old, 8, 0, 0);
    /* CKSHIM_TEST_HOOK=slow-exec: 300 ms here, the signal blocked, as if
     * the exec took that long, after saying so on stderr (test_bash_trees:
     * a checkpoint meets it) */
    const char *hook = getenv("CKSHIM_TEST_HOOK");
    if (hook && !strcmp(hook, "slow-exec")) {
        struct timespec t = {0, 300000000};
        (void)!write(2, "ckshim: execing\n", 16);
        nanosleep(&t, NULL);
    }
}

static int guard_end(const uint64_t *old, int r)
{
    int e = errno;
    if (g_shim.ckpt_signal > 0) {
        ck_sys6(SYS_rt_sigprocmask, SIG_SETMASK, (long)old, 0, 8, 0, 0);
        __atomic_store_n(&g_shim.exec_tid, 0, __ATOMIC_SEQ_CST);
    }
    errno = e;
    return r;
}

static int no_function(void)
{
    errno = ENOSYS;
    return -1;
}

SHIM_API int execve(const char *path, char *const argv[], char *const envp[])
{
    SHIM_RESOLVE(real_execve, "execve");
    if (!real_execve)
        return no_function();
    uint64_t old;
    guard_begin(&old);
    return guard_end(&old, real_execve(path, argv, envp));
}

SHIM_API int execv(const char *path, char *const argv[])
{
    SHIM_RESOLVE(real_execv, "execv");
    if (!real_execv)
        return no_function();
    uint64_t old;
    guard_begin(&old);
    return guard_end(&old, real_execv(path, argv));
}

SHIM_API int execvp(const char *file, char *const argv[])
{
    SHIM_RESOLVE(real_execvp, "execvp");
    if (!real_execvp)
        return no_function();
    uint64_t old;
    guard_begin(&old);
    return guard_end(&old, real_execvp(file, argv));
}

SHIM_API int execvpe(const char *file, char *const argv[], char *const envp[])
{
    SHIM_RESOLVE(real_execvpe, "execvpe");
    if (!real_execvpe)
        return no_function();
    uint64_t old;
    guard_begin(&old);
    return guard_end(&old, real_execvpe(file, argv, envp));
}

SHIM_API int fexecve(int fd, char *const argv[], char *const envp[])
{
    SHIM_RESOLVE(real_fexecve, "fexecve");
    if (!real_fexecve)
        return no_function();
    uint64_t old;
    guard_begin(&old);
    return guard_end(&old, real_fexecve(fd, argv, envp));
}

SHIM_API int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                      int flags)
{
    SHIM_RESOLVE(real_execveat, "execveat");
    if (!real_execveat)
        return no_function();
    uint64_t old;
    guard_begin(&old);
    return guard_end(&old, real_execveat(dirfd, path, argv, envp, flags));
}

/* The list forms, as libc's: the arguments into an array sized to them
 * (a clone child may run on a 4 KiB stack), then the vector form above
 * (libc's own would call its execve directly, past the guard). */
#define LIST_TO_ARGV(arg0, last, argv, extra)                                                      \
    va_list ap, cp;                                                                                \
    va_start(ap, last);                                                                            \
    va_copy(cp, ap);                                                                               \
    size_t n = 1;                                                                                  \
    while (va_arg(cp, char *))                                                                     \
        n++;                                                                                       \
    va_end(cp);                                                                                    \
    char *argv[n + 1];                                                                             \
    argv[0] = (char *)(arg0);                                                                      \
    for (size_t i = 1; i <= n; i++)                                                                \
        argv[i] = va_arg(ap, char *);                                                              \
    extra;                                                                                         \
    va_end(ap)

SHIM_API int execl(const char *path, const char *arg, ...)
{
    LIST_TO_ARGV(arg, arg, argv, (void)0);
    return execv(path, argv);
}

SHIM_API int execlp(const char *file, const char *arg, ...)
{
    LIST_TO_ARGV(arg, arg, argv, (void)0);
    return execvp(file, argv);
}

SHIM_API int execle(const char *path, const char *arg, ...)
{
    char *const *envp;
    LIST_TO_ARGV(arg, arg, argv, envp = va_arg(ap, char *const *));
    return execve(path, argv, envp);
}
