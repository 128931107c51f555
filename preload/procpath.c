/* procpath.c - /proc paths with the ids the program knows.
 *
 * After a restore the program still sees its old pid and tids (getpid,
 * gettid: wrappers.c), but /proc knows the new ones: /proc/<old pid>/...
 * is missing, or worse another process. The libc entry points programs
 * use to name files (open, openat, fopen, opendir, stat and friends,
 * statx, access, readlink, realpath; with their 64-bit, fortified and old
 * __xstat names) rewrite
 *   /proc/<vpid>[/...]                  -> /proc/<pid>[/...]
 *   /proc/<vtid>[/...]                  -> /proc/<tid>[/...]
 *   /proc/{self,<vpid>}/task/<vtid>/... -> .../task/<tid>/...
 * and /proc/{self,thread-self,<vpid>}/exe, which names the restorer in a
 * restored process (prctl(PR_SET_MM_EXE_FILE) needs CAP_SYS_RESOURCE, or
 * CAP_CHECKPOINT_RESTORE in the process's user namespace), to the
 * program's own path: readlink answers it, open and stat use it.
 * Nothing changes before the first restore. Not covered: raw system
 * calls, paths relative to a descriptor of a /proc directory, and the
 * links themselves when listed (readdir of /proc/self/task).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

#define RESOLVE(var, name)                                                                         \
    do {                                                                                           \
        if (!(var))                                                                                \
            *(void **)&(var) = dlsym(RTLD_NEXT, name);                                             \
    } while (0)

/* Parse "<digits>" followed by '/' or the end; the number, or -1. */
static long num_comp(const char *p, const char **end)
{
    long v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((v = v * 10 + (*p - '0')) > INT_MAX)
            return -1;
    if (*p && *p != '/')
        return -1;
    *end = p;
    return v;
}

/* Real tid (or pid) for an id the program knows; 0 if it names none of
 * ours. */
static pid_t real_id(long v)
{
    if (v == g_shim.vpid)
        return shim_real_getpid();
    for (int i = 0; g_shim.slots && i < g_shim.nslots && i < CK_MAX_THREADS; i++)
        if (g_shim.slots[i].vtid == v)
            return g_shim.slots[i].tid;
    /* another process of a restored tree, by the pid the tree knows */
    pid_t t = shim_tree_real((pid_t)v);
    return t != (pid_t)v ? t : 0;
}

/* path, or its rewrite in buf (PATH_MAX bytes). */
static const char *fix(const char *path, char *buf)
{
    if (!path || !g_shim.generation || strncmp(path, "/proc/", 6))
        return path;
    const char *p = path + 6, *rest;
    int self = 0;
    long id = num_comp(p, &rest);
    pid_t real = 0;
    if (id >= 0) {
        real = real_id(id);
        self = real == shim_real_getpid();
        if (!real)
            return path;
    } else if (!strncmp(p, "self", 4) && (p[4] == '/' || !p[4])) {
        self = 1;
        rest = p + 4;
    } else if (!strncmp(p, "thread-self", 11) && (p[11] == '/' || !p[11])) {
        rest = p + 11;
    } else {
        return path;
    }
    if (!strcmp(rest, "/exe") && g_shim.exe[0] && (self || id < 0 || real == shim_real_getpid()))
        return g_shim.exe;
    long tid = -1;
    const char *after = rest;
    if (self && !strncmp(rest, "/task/", 6) && (tid = num_comp(rest + 6, &after)) >= 0) {
        pid_t rt = real_id(tid);
        if (rt)
            tid = rt;
    }
    char head[32];
    if (id >= 0)
        snprintf(head, sizeof head, "/proc/%d", (int)real);
    else
        snprintf(head, sizeof head, "%.*s", (int)(rest - path), path);
    int n;
    if (tid >= 0)
        n = snprintf(buf, PATH_MAX, "%s/task/%ld%s", head, tid, after);
    else
        n = snprintf(buf, PATH_MAX, "%s%s", head, rest);
    return n > 0 && n < PATH_MAX ? buf : path;
}

/* A wrapper that rewrites its path argument, then calls libc's. */
#define PATH_WRAP(ret, fail, sym, params, args)                                                    \
    SHIM_API ret pw_##sym params __asm__(#sym);                                                    \
    SHIM_API ret pw_##sym params                                                                   \
    {                                                                                              \
        static ret(*next) params;                                                                  \
        char buf[PATH_MAX];                                                                        \
        RESOLVE(next, #sym);                                                                       \
        if (!next) {                                                                               \
            errno = ENOSYS;                                                                        \
            return fail;                                                                           \
        }                                                                                          \
        path = fix(path, buf);                                                                     \
        return next args;                                                                          \
    }

/* open with a mode only when the flags ask for one */
#define MODE_OF(flags)                                                                             \
    mode_t mode = 0;                                                                               \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                                                         \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode = va_arg(ap, mode_t);                                                                 \
        va_end(ap);                                                                                \
    }
#define OPEN_WRAP(sym)                                                                             \
    SHIM_API int pw_##sym(const char *path, int flags, ...) __asm__(#sym);                         \
    SHIM_API int pw_##sym(const char *path, int flags, ...)                                        \
    {                                                                                              \
        static int (*next)(const char *, int, ...);                                                \
        char buf[PATH_MAX];                                                                        \
        MODE_OF(flags);                                                                            \
        RESOLVE(next, #sym);                                                                       \
        return next(fix(path, buf), flags, mode);                                                  \
    }
#define OPENAT_WRAP(sym)                                                                           \
    SHIM_API int pw_##sym(int dfd, const char *path, int flags, ...) __asm__(#sym);                \
    SHIM_API int pw_##sym(int dfd, const char *path, int flags, ...)                               \
    {                                                                                              \
        static int (*next)(int, const char *, int, ...);                                           \
        char buf[PATH_MAX];                                                                        \
        MODE_OF(flags);                                                                            \
        RESOLVE(next, #sym);                                                                       \
        return next(dfd, fix(path, buf), flags, mode);                                             \
    }

OPEN_WRAP(open)
OPEN_WRAP(open64)
OPENAT_WRAP(openat)
OPENAT_WRAP(openat64)
PATH_WRAP(int, -1, __open_2, (const char *path, int flags), (path, flags))
PATH_WRAP(int, -1, __open64_2, (const char *path, int flags), (path, flags))
PATH_WRAP(int, -1, __openat_2, (int dfd, const char *path, int flags), (dfd, path, flags))
PATH_WRAP(int, -1, __openat64_2, (int dfd, const char *path, int flags), (dfd, path, flags))
PATH_WRAP(void *, NULL, fopen, (const char *path, const char *mode), (path, mode))
PATH_WRAP(void *, NULL, fopen64, (const char *path, const char *mode), (path, mode))
PATH_WRAP(void *, NULL, opendir, (const char *path), (path))
PATH_WRAP(int, -1, stat, (const char *path, void *st), (path, st))
PATH_WRAP(int, -1, stat64, (const char *path, void *st), (path, st))
PATH_WRAP(int, -1, lstat, (const char *path, void *st), (path, st))
PATH_WRAP(int, -1, lstat64, (const char *path, void *st), (path, st))
PATH_WRAP(int, -1, fstatat, (int dfd, const char *path, void *st, int fl), (dfd, path, st, fl))
PATH_WRAP(int, -1, fstatat64, (int dfd, const char *path, void *st, int fl), (dfd, path, st, fl))
PATH_WRAP(int, -1, __xstat, (int ver, const char *path, void *st), (ver, path, st))
PATH_WRAP(int, -1, __xstat64, (int ver, const char *path, void *st), (ver, path, st))
PATH_WRAP(int, -1, __lxstat, (int ver, const char *path, void *st), (ver, path, st))
PATH_WRAP(int, -1, __lxstat64, (int ver, const char *path, void *st), (ver, path, st))
PATH_WRAP(int, -1, __fxstatat, (int ver, int dfd, const char *path, void *st, int fl),
          (ver, dfd, path, st, fl))
PATH_WRAP(int, -1, __fxstatat64, (int ver, int dfd, const char *path, void *st, int fl),
          (ver, dfd, path, st, fl))
PATH_WRAP(int, -1, statx, (int dfd, const char *path, int fl, unsigned mask, void *stx),
          (dfd, path, fl, mask, stx))
PATH_WRAP(int, -1, access, (const char *path, int mode), (path, mode))
PATH_WRAP(int, -1, faccessat, (int dfd, const char *path, int mode, int fl), (dfd, path, mode, fl))
PATH_WRAP(int, -1, euidaccess, (const char *path, int mode), (path, mode))

/* The link behind /proc/.../exe is the program's path, not the restorer. */
static ssize_t exe_link(const char *fixed, char *out, size_t len)
{
    if (fixed != g_shim.exe)
        return -1;
    size_t n = strlen(g_shim.exe);
    if (n > len)
        n = len;
    memcpy(out, g_shim.exe, n);
    return (ssize_t)n;
}

SHIM_API ssize_t readlink(const char *path, char *out, size_t len)
{
    static ssize_t (*next)(const char *, char *, size_t);
    char buf[PATH_MAX];
    const char *f = fix(path, buf);
    ssize_t n = exe_link(f, out, len);
    RESOLVE(next, "readlink");
    return n >= 0 ? n : next(f, out, len);
}

SHIM_API ssize_t readlinkat(int dfd, const char *path, char *out, size_t len)
{
    static ssize_t (*next)(int, const char *, char *, size_t);
    char buf[PATH_MAX];
    const char *f = fix(path, buf);
    ssize_t n = exe_link(f, out, len);
    RESOLVE(next, "readlinkat");
    return n >= 0 ? n : next(dfd, f, out, len);
}

SHIM_API char *realpath(const char *path, char *out)
{
    static char *(*next)(const char *, char *);
    char buf[PATH_MAX];
    RESOLVE(next, "realpath");
    return next(fix(path, buf), out);
}
