/* procdead.c - /proc entries of processes that have exited.
 *
 * A program may hold a descriptor on /proc/PID or /proc/PID/FILE, or have
 * /proc/PID as its working directory, of a process that has exited since:
 * the entry is "unhashed" (readlink says " (deleted)"), reads of it fail
 * or see nothing. Nothing can open that process's entries again, but the
 * same state is easy to make: a child that waits, its entry opened (or
 * entered), then the child ends and is reaped before the program runs
 * again, so it never sees a child. The pid in the entry's name is the new
 * child's, not the old one's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdkind.h"

int ck_path_climbs(const char *path)
{
    for (const char *p = path; (p = strstr(p, "..")); p += 2)
        if ((p == path || p[-1] == '/') && (!p[2] || p[2] == '/'))
            return 1;
    return 0;
}

long ck_procdead_split(const char *path, const char **rest)
{
    char *end;
    if (strncmp(path, "/proc/", 6) || path[6] < '1' || path[6] > '9' || ck_path_climbs(path))
        return -1;
    long pid = strtol(path + 6, &end, 10);
    if (pid <= 0 || pid > INT_MAX || (*end && *end != '/') || !strncmp(end, "/task/", 6))
        return -1;
    *rest = end;
    return pid;
}

pid_t ck_procdead_child(int *release)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t child = fork();
    if (child == 0) {
        char c;
        close(p[1]);
        while (read(p[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(p[0]);
    if (child < 0) {
        close(p[1]);
        return -1;
    }
    *release = p[1];
    return child;
}

void ck_procdead_release(pid_t child, int release)
{
    close(release);
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
        ;
}

int ck_procdead_path(char *out, size_t len, pid_t child, const char *rest)
{
    return snprintf(out, len, "/proc/%d%s", (int)child, rest) < (int)len ? 0 : -1;
}
