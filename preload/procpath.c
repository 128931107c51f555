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
 * The text of /proc/.../fdinfo/N (a pidfd's Pid: and NSpid:, the owners
 * of file locks) and of /proc/locks, opened for reading with open, openat
 * or fopen, comes from a memfd with those pids as the program knows them.
 * Nothing changes before the first restore (nor in a child forked before
 * it). Not covered: raw system calls, paths relative to a descriptor of a
 * /proc directory, the links themselves when listed (readdir of
 * /proc/self/task), and pids in other /proc text (status, stat).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

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
    if (g_shim.vpid && v == g_shim.vpid)
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
    if (!path || !shim_ids_moved() || strncmp(path, "/proc/", 6))
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

/* libshim.so's own code (between these two, hidden so that they are
 * ours, not the program's): its callers want the kernel's text. */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));
extern const char _etext[] __attribute__((visibility("hidden")));

static int from_shim(const void *ra)
{
    return (const char *)ra >= __ehdr_start && (const char *)ra < _etext;
}

/* A /proc file whose text names processes by pid (a pidfd's Pid: and
 * NSpid:, lock owners in fdinfo, /proc/locks), opened for reading by the
 * program while its ids are not the kernel's. */
static int pid_text(const char *path, int flags, const void *ra)
{
    if (!shim_ids_moved() || from_shim(ra) || (flags & O_ACCMODE) != O_RDONLY ||
        (flags & (O_PATH | O_DIRECTORY)) || strncmp(path, "/proc/", 6))
        return 0;
    if (!strcmp(path, "/proc/locks"))
        return 1;
    const char *f = strstr(path + 6, "/fdinfo/"), *end;
    return f && num_comp(f + 8, &end) >= 0 && !*end;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static const char *skip_tok(const char *p)
{
    while (*p && *p != ' ' && *p != '\t' && *p != '\n')
        p++;
    return skip_ws(p);
}

/* Where the pid is in a line of fdinfo or /proc/locks, or NULL:
 * "Pid:\tN", "NSpid:\tN...", and lock lines "[lock:\t]1: [->] KIND ADV TYPE N ...". */
static const char *pid_field(const char *l)
{
    if (!strncmp(l, "Pid:", 4))
        return skip_ws(l + 4);
    if (!strncmp(l, "NSpid:", 6))
        return skip_ws(l + 6);
    if (!strncmp(l, "lock:", 5))
        l = skip_ws(l + 5);
    else if (*l < '0' || *l > '9')
        return NULL;
    const char *p = skip_tok(l); /* "1:" */
    if (!strncmp(p, "->", 2))
        p = skip_tok(p);
    for (int i = 0; i < 3 && *p; i++)
        p = skip_tok(p);
    return *p ? p : NULL;
}

/* One line (len bytes, its '\n' included) with its pid as the program
 * knows it, written to out; 1 if it changed. */
static int map_line(const char *l, size_t len, int out)
{
    char line[4200], num[16];
    size_t n = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, l, n);
    line[n] = 0;
    const char *p = n == len ? pid_field(line) : NULL;
    char *e;
    long pid = p ? strtol(p, &e, 10) : 0;
    pid_t v = pid > 0 && pid <= INT_MAX ? shim_id_virt((pid_t)pid) : (pid_t)pid;
    if (!p || e == p || v == pid)
        return write(out, l, len) == (ssize_t)len ? 0 : -1;
    int k = snprintf(num, sizeof num, "%d", (int)v);
    size_t head = (size_t)(p - line), tail = n - (size_t)(e - line);
    if (write(out, l, head) != (ssize_t)head || write(out, num, (size_t)k) != k ||
        write(out, l + (e - line), tail) != (ssize_t)tail)
        return -1;
    return 1;
}

/* fd (such a /proc file just opened), or a memfd holding its text with
 * the pids the program knows (docs/DESIGN.md, "Pids in /proc text"). */
static int pid_text_fd(int fd, int flags)
{
    int out = memfd_create("ckshim-proc-text", MFD_CLOEXEC);
    if (out < 0)
        return fd;
    char buf[8192];
    size_t have = 0;
    int changed = 0, bad = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            bad = 1;
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t at = 0;
        for (;;) {
            char *nl = memchr(buf + at, '\n', have - at);
            /* a line longer than the buffer goes as it is */
            size_t len = nl ? (size_t)(nl - (buf + at)) + 1 : at ? 0 : have == sizeof buf ? have : 0;
            if (!len)
                break;
            int m = map_line(buf + at, len, out);
            changed |= m > 0;
            bad |= m < 0;
            at += len;
        }
        memmove(buf, buf + at, have - at);
        have -= at;
    }
    if (have && map_line(buf, have, out) != 0)
        changed = 1;
    if (bad || !changed || lseek(fd, 0, SEEK_SET) < 0) {
        /* nothing to change (or it could not be): the kernel's text */
        close(out);
        if (lseek(fd, 0, SEEK_SET) == 0)
            return fd;
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    /* read-only, as the program asked (the memfd is read-write) */
    char self[40];
    snprintf(self, sizeof self, "/proc/self/fd/%d", out);
    int ro = (int)syscall(SYS_openat, AT_FDCWD, self, O_RDONLY | (flags & O_CLOEXEC));
    close(out);
    return ro;
}

/* A wrapper that rewrites its path argument, then calls libc's. */
#define PATH_WRAP(ret, fail, sym, params, args)                                                    \
    SHIM_API ret pw_##sym params __asm__(#sym);                                                    \
    SHIM_API ret pw_##sym params                                                                   \
    {                                                                                              \
        static ret(*next) params;                                                                  \
        char buf[PATH_MAX];                                                                        \
        SHIM_RESOLVE(next, #sym);                                                                       \
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
        SHIM_RESOLVE(next, #sym);                                                                       \
        const char *f = fix(path, buf);                                                            \
        int fd = next(f, flags, mode);                                                             \
        return fd >= 0 && pid_text(f, flags, __builtin_return_address(0))                          \
                   ? pid_text_fd(fd, flags)                                                        \
                   : fd;                                                                           \
    }
#define OPENAT_WRAP(sym)                                                                           \
    SHIM_API int pw_##sym(int dfd, const char *path, int flags, ...) __asm__(#sym);                \
    SHIM_API int pw_##sym(int dfd, const char *path, int flags, ...)                               \
    {                                                                                              \
        static int (*next)(int, const char *, int, ...);                                           \
        char buf[PATH_MAX];                                                                        \
        MODE_OF(flags);                                                                            \
        SHIM_RESOLVE(next, #sym);                                                                       \
        const char *f = fix(path, buf);                                                            \
        int fd = next(dfd, f, flags, mode);                                                        \
        return fd >= 0 && pid_text(f, flags, __builtin_return_address(0))                          \
                   ? pid_text_fd(fd, flags)                                                        \
                   : fd;                                                                           \
    }

OPEN_WRAP(open)
OPEN_WRAP(open64)
OPENAT_WRAP(openat)
OPENAT_WRAP(openat64)
PATH_WRAP(int, -1, __open_2, (const char *path, int flags), (path, flags))
PATH_WRAP(int, -1, __open64_2, (const char *path, int flags), (path, flags))
PATH_WRAP(int, -1, __openat_2, (int dfd, const char *path, int flags), (dfd, path, flags))
PATH_WRAP(int, -1, __openat64_2, (int dfd, const char *path, int flags), (dfd, path, flags))

/* fopen for reading of a /proc file with pids in its text: libc's fopen
 * opens without our open, so the translated descriptor is made here. */
#define FOPEN_WRAP(sym)                                                                            \
    SHIM_API FILE *pw_##sym(const char *path, const char *mode) __asm__(#sym);                     \
    SHIM_API FILE *pw_##sym(const char *path, const char *mode)                                    \
    {                                                                                              \
        static FILE *(*next)(const char *, const char *);                                          \
        char buf[PATH_MAX];                                                                        \
        SHIM_RESOLVE(next, #sym);                                                                       \
        const char *f = fix(path, buf);                                                            \
        int cloexec = mode && strchr(mode, 'e') ? O_CLOEXEC : 0;                                   \
        if (!mode || mode[0] != 'r' || strchr(mode, '+') ||                                        \
            !pid_text(f, O_RDONLY, __builtin_return_address(0)))                                   \
            return next(f, mode);                                                                  \
        int fd = (int)syscall(SYS_openat, AT_FDCWD, f, O_RDONLY | cloexec);                       \
        if (fd < 0 || (fd = pid_text_fd(fd, cloexec)) < 0)                                         \
            return NULL;                                                                           \
        FILE *fp = fdopen(fd, mode);                                                               \
        if (!fp)                                                                                   \
            close(fd);                                                                             \
        return fp;                                                                                 \
    }
FOPEN_WRAP(fopen)
FOPEN_WRAP(fopen64)
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
    SHIM_RESOLVE(next, "readlink");
    return n >= 0 ? n : next(f, out, len);
}

SHIM_API ssize_t readlinkat(int dfd, const char *path, char *out, size_t len)
{
    static ssize_t (*next)(int, const char *, char *, size_t);
    char buf[PATH_MAX];
    const char *f = fix(path, buf);
    ssize_t n = exe_link(f, out, len);
    SHIM_RESOLVE(next, "readlinkat");
    return n >= 0 ? n : next(dfd, f, out, len);
}

SHIM_API char *realpath(const char *path, char *out)
{
    static char *(*next)(const char *, char *);
    char buf[PATH_MAX];
    SHIM_RESOLVE(next, "realpath");
    return next(fix(path, buf), out);
}
