/* ctlproto.c - where the control sockets live. */
#include "ctlproto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static char dir_note[512];

const char *ck_sock_dir_note(void)
{
    return dir_note[0] ? dir_note : NULL;
}

/* Why an existing dir cannot hold our control sockets (a symlink, not a
 * directory, someone else's, writable by others), or NULL when it can or
 * does not exist yet. lstat: a symlink is never followed. */
static const char *unsafe_dir(const char *dir, char *why, size_t len)
{
    struct stat st;
    if (lstat(dir, &st) < 0)
        return errno == ENOENT ? NULL : strerror(errno);
    if (S_ISLNK(st.st_mode))
        return "it is a symbolic link";
    if (!S_ISDIR(st.st_mode))
        return "it is not a directory";
    if (st.st_uid != getuid()) {
        snprintf(why, len, "it belongs to uid %u", (unsigned)st.st_uid);
        return why;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return "others can write to it";
    return NULL;
}

static int tidy(char *buf, size_t len, int n)
{
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    /* "dir/" and "dir" are the same directory; keep paths tidy. */
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    return 0;
}

int ck_sock_dir(char *buf, size_t len)
{
    const char *env;

    if (!buf || len == 0)
        return -ENAMETOOLONG;
    dir_note[0] = '\0';
    env = getenv("CKSHIM_DIR");
    if (env && *env)
        return tidy(buf, len, snprintf(buf, len, "%s", env));
    env = getenv("XDG_RUNTIME_DIR");
    if (env && *env)
        return tidy(buf, len, snprintf(buf, len, "%s/ckshim", env));
    int r = tidy(buf, len, snprintf(buf, len, "/tmp/ckshim-%u", (unsigned)getuid()));
    if (r < 0)
        return r;
    /* /tmp is everyone's: another user may have taken our name first.
     * Then never use it (a planted directory or symlink would hand our
     * sockets to them, or silently disable the shim): fall back to a
     * directory in our home, and say so. */
    char why[64];
    const char *bad = unsafe_dir(buf, why, sizeof why);
    if (!bad)
        return 0;
    env = getenv("HOME");
    char fallback[256];
    int n = snprintf(fallback, sizeof fallback, "%s/.ckshim", env && *env ? env : "");
    if (!env || !*env || n < 0 || (size_t)n >= sizeof fallback || (size_t)n >= len) {
        snprintf(dir_note, sizeof dir_note,
                 "%s cannot be used for control sockets (%s) and $HOME is not usable; set "
                 "CKSHIM_DIR to a private directory",
                 buf, bad);
        buf[0] = '\0';
        return -EPERM;
    }
    snprintf(dir_note, sizeof dir_note,
             "%s is not safe for control sockets (%s); using %s instead", buf, bad, fallback);
    return tidy(buf, len, snprintf(buf, len, "%s", fallback));
}

/* mkdir -p with mode 0700 for the missing components. */
static int sock_mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);

    if (n == 0)
        return -EINVAL;
    if (n >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -errno;
        path[i] = c;
    }
    return 0;
}

/* Create the directory if missing, then insist that it is a directory,
 * owned by us and not writable by group or others: anyone who can write
 * there could plant a socket and impersonate a process. */
int ck_sock_dir_prepare(const char *dir)
{
    struct stat st;
    int r;

    if (!dir || !*dir)
        return -EINVAL;
    if (mkdir(dir, 0700) < 0) {
        if (errno == ENOENT) {
            r = sock_mkdir_p(dir);
            if (r < 0)
                return r;
        } else if (errno != EEXIST) {
            return -errno;
        }
    }
    if (lstat(dir, &st) < 0)
        return -errno;
    if (S_ISLNK(st.st_mode))
        return -ELOOP;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (st.st_uid != getuid())
        return -EPERM;
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return -EPERM;
    return 0;
}

/* The initial pid namespace's inode number (PROC_PID_INIT_INO): fixed. */
#define CK_PIDNS_INIT_INO 0xEFFFFFFCULL

static int nspid(int pid, int *inner);

uint64_t ck_pidns_of(int pid)
{
    char path[64];
    struct stat st;
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%d/ns/pid", pid);
    else
        snprintf(path, sizeof path, "/proc/self/ns/pid");
    if (stat(path, &st) < 0) {
        /* A process that made itself not dumpable (PR_SET_DUMPABLE 0)
         * hides its namespaces from its own user. With one pid in its
         * NSpid line it is in the namespace of our /proc: ours (a
         * container's, where the name of its socket has the namespace). */
        int inner;
        if (pid > 0 && (errno == EACCES || errno == EPERM) && nspid(pid, &inner) == 1)
            return ck_pidns_of(0);
        return 0;
    }
    if ((uint64_t)st.st_ino == CK_PIDNS_INIT_INO)
        return 0;
    return (uint64_t)st.st_ino;
}

/* The NSpid line of /proc/PID/status: the pids from the namespace of this
 * /proc down to the process's own. Returns how many (0: unknown), the last
 * (the one in its own namespace; pid when unknown) in *inner. */
static int nspid(int pid, int *inner)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    int n = 0;
    *inner = pid;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "NSpid:", 6))
            continue;
        char *p = line + 6, *end;
        for (long v; (v = strtol(p, &end, 10)), end != p; p = end, n++)
            *inner = (int)v;
        break;
    }
    fclose(f);
    return n;
}

int ck_pidns_inner(int pid)
{
    int inner;
    nspid(pid, &inner);
    return inner;
}

static int sock_path_ns(char *buf, size_t len, const char *dir, uint64_t ns, int pid)
{
    size_t dl;
    int r, n;

    if (dir)
        r = tidy(buf, len, snprintf(buf, len, "%s", dir));
    else
        r = ck_sock_dir(buf, len);
    if (r < 0)
        return r;
    dl = strlen(buf);
    if (ns)
        n = snprintf(buf + dl, len - dl, "/ns%llu-%d.sock", (unsigned long long)ns, pid);
    else
        n = snprintf(buf + dl, len - dl, "/%d.sock", pid);
    if (n < 0 || (size_t)n >= len - dl) {
        buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}

int ck_sock_path(char *buf, size_t len, int pid)
{
    uint64_t ns = ck_pidns_of(pid);
    return sock_path_ns(buf, len, NULL, ns, ns ? ck_pidns_inner(pid) : pid);
}

int ck_sock_path_self(char *buf, size_t len, const char *dir, int rawpid)
{
    return sock_path_ns(buf, len, dir, ck_pidns_of(0), rawpid);
}

int ck_call_path(char *buf, size_t len, const char *sock, uint32_t token)
{
    const char *slash = strrchr(sock, '/');
    if (!slash)
        return -ENAMETOOLONG;
    int k = snprintf(buf, len, "%.*s/c%08x", (int)(slash - sock), sock, token);
    /* (and it must fit a unix socket's address) */
    return k < 0 || (size_t)k >= len || k >= 108 ? -ENAMETOOLONG : 0;
}
