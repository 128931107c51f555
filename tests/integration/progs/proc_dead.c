/* proc_dead - /proc entries of processes that have exited (zdtm's
 * remap_dead_pid, remap_dead_pid_root, unhashed_proc).
 *
 * Before READY: two children; /proc/C1/mountinfo and /proc/C1 held open,
 * the working directory /proc/C2; both children killed and reaped.
 * After restore: both descriptors are still there (F_GETFD), each still
 * names an entry of a process that has exited (the directory's link ends
 * with " (deleted)", the same for both descriptors' process), getcwd()
 * fails with ENOENT and /proc/self/cwd ends with " (deleted)"; the
 * program has no child (the processes restore used are gone and reaped).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "testlib.h"

static pid_t child(void)
{
    pid_t p = fork();
    check(p >= 0, "fork: %s", strerror(errno));
    if (p == 0) {
        for (;;)
            pause();
    }
    return p;
}

static void link_of(const char *path, char *out, size_t len)
{
    ssize_t n = readlink(path, out, len - 1);
    check(n > 0, "readlink %s: %s", path, strerror(errno));
    out[n] = 0;
}

static int deleted(const char *s)
{
    size_t l = strlen(s);
    return l > 10 && !strcmp(s + l - 10, " (deleted)");
}

int main(void)
{
    char path[64], buf[256], lnk[64];
    pid_t c1 = child(), c2 = child();
    snprintf(path, sizeof path, "/proc/%d/mountinfo", (int)c1);
    int info = open(path, O_RDONLY);
    check(info >= 0, "open %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "/proc/%d", (int)c1);
    int dir = open(path, O_RDONLY | O_DIRECTORY);
    check(dir >= 0, "open %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "/proc/%d", (int)c2);
    check(chdir(path) == 0, "chdir %s: %s", path, strerror(errno));
    kill(c1, SIGKILL);
    kill(c2, SIGKILL);
    check(waitpid(c1, NULL, 0) == c1 && waitpid(c2, NULL, 0) == c2, "waitpid: %s",
          strerror(errno));
    check(!getcwd(buf, sizeof buf) && errno == ENOENT, "getcwd before: %s", strerror(errno));

    test_ready();
    test_wait_go();

    check(fcntl(info, F_GETFD) >= 0 && fcntl(dir, F_GETFD) >= 0, "a descriptor is gone: %s",
          strerror(errno));
    snprintf(lnk, sizeof lnk, "/proc/self/fd/%d", dir);
    link_of(lnk, buf, sizeof buf);
    check(deleted(buf), "the /proc directory descriptor is %s, not an exited process's", buf);
    char dirpid[64];
    snprintf(dirpid, sizeof dirpid, "%.*s", (int)strlen(buf) - 10, buf);
    snprintf(lnk, sizeof lnk, "/proc/self/fd/%d", info);
    link_of(lnk, buf, sizeof buf);
    check(!strncmp(buf, dirpid, strlen(dirpid)) && !strcmp(buf + strlen(dirpid), "/mountinfo"),
          "the mountinfo descriptor is %s, not of %s", buf, dirpid);
    check(!getcwd(buf, sizeof buf) && errno == ENOENT, "getcwd after: %s",
          errno ? strerror(errno) : buf);
    link_of("/proc/self/cwd", buf, sizeof buf);
    check(deleted(buf) && !strncmp(buf, "/proc/", 6), "the working directory is %s", buf);
    errno = 0;
    check(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "the program has a child");
    pass();
}
