/* ctlproto.c - where the control sockets live. */
#include "ctlproto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

int ck_sock_dir(char *buf, size_t len)
{
    const char *env;
    int n;

    if (!buf || len == 0)
        return -ENAMETOOLONG;
    env = getenv("CKSHIM_DIR");
    if (env && *env) {
        n = snprintf(buf, len, "%s", env);
    } else {
        env = getenv("XDG_RUNTIME_DIR");
        if (env && *env)
            n = snprintf(buf, len, "%s/ckshim", env);
        else
            n = snprintf(buf, len, "/tmp/ckshim-%u", (unsigned)getuid());
    }
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    /* "dir/" and "dir" are the same directory; keep paths tidy. */
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    return 0;
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
    if (stat(dir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (st.st_uid != getuid())
        return -EPERM;
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return -EPERM;
    return 0;
}

int ck_sock_path(char *buf, size_t len, int pid)
{
    size_t dl;
    int r, n;

    r = ck_sock_dir(buf, len);
    if (r < 0)
        return r;
    dl = strlen(buf);
    n = snprintf(buf + dl, len - dl, "/%d.sock", pid);
    if (n < 0 || (size_t)n >= len - dl) {
        buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}
