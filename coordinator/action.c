/* action.c - --action-script PATH of coord checkpoint and coord restore:
 * a program of the user's run at fixed stages, for programs that cannot
 * register hooks themselves (CRIU's --action-script).
 *
 * The script is executed directly (execve of the path, never through a
 * shell command line) with a small fixed environment, so that nothing of
 * coord's own environment (a key file's name, LD_PRELOAD) leaks into it
 * and the same script behaves the same from a terminal and from cron:
 *   PATH=/usr/local/bin:/usr/bin:/bin, HOME and USER (when coord has them),
 *   CKSHIM_ACTION   pre-checkpoint | post-checkpoint | post-restore
 *   CKSHIM_PID      the process (after a restore: its pid now)
 *   CKSHIM_IMAGE    the image file (absolute; "-" for standard output)
 *   CKSHIM_RESULT   post-checkpoint only: ok | failed
 * Its standard input is /dev/null, its standard output goes to coord's
 * standard error (standard output may be the image), and it inherits no
 * other descriptor of coord's. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coord.h"

int ck_action_check(const char *cmd, const char *path, char *abs, size_t len)
{
    struct stat st;
    if (!*path)
        return ck_usage_error(cmd, "--action-script: empty path");
    if (stat(path, &st) < 0)
        return ck_usage_error(cmd, "--action-script %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ck_usage_error(cmd, "--action-script %s: not a regular file", path);
    if (access(path, X_OK) < 0)
        return ck_usage_error(cmd, "--action-script %s: not executable (%s)", path,
                              strerror(errno));
    char *r = realpath(path, NULL);
    if (!r || strlen(r) >= len) {
        free(r);
        return ck_usage_error(cmd, "--action-script %s: cannot resolve the path", path);
    }
    strcpy(abs, r);
    free(r);
    return 0;
}

/* The child: stdio, descriptors, signals, then execve. */
static void exec_script(const char *script, char **envp)
{
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(2, 1) < 0)
        _exit(127);
    close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    char *argv[] = {(char *)script, NULL};
    execve(script, argv, envp);
    dprintf(2, "coord: --action-script %s: cannot run it: %s\n", script, strerror(errno));
    _exit(127);
}

int ck_action_run(const char *script, const char *stage, int pid, const char *image,
                  const char *result, char *why, size_t wlen)
{
    char e_path[] = "PATH=/usr/local/bin:/usr/bin:/bin";
    char e_home[PATH_MAX + 8], e_user[300], e_action[64], e_pid[32], e_image[PATH_MAX + 16];
    char e_result[32];
    char *envp[8];
    int n = 0;
    envp[n++] = e_path;
    const char *home = getenv("HOME"), *user = getenv("USER");
    if (home && strlen(home) < PATH_MAX) {
        snprintf(e_home, sizeof e_home, "HOME=%s", home);
        envp[n++] = e_home;
    }
    if (user && strlen(user) < 256) {
        snprintf(e_user, sizeof e_user, "USER=%s", user);
        envp[n++] = e_user;
    }
    snprintf(e_action, sizeof e_action, "CKSHIM_ACTION=%s", stage);
    envp[n++] = e_action;
    snprintf(e_pid, sizeof e_pid, "CKSHIM_PID=%d", pid);
    envp[n++] = e_pid;
    snprintf(e_image, sizeof e_image, "CKSHIM_IMAGE=%s", image);
    envp[n++] = e_image;
    if (result) {
        snprintf(e_result, sizeof e_result, "CKSHIM_RESULT=%s", result);
        envp[n++] = e_result;
    }
    envp[n] = NULL;

    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        snprintf(why, wlen, "cannot start it: %s", strerror(errno));
        return -1;
    }
    if (child == 0)
        exec_script(script, envp);
    int ws;
    while (waitpid(child, &ws, 0) < 0)
        if (errno != EINTR) {
            snprintf(why, wlen, "cannot wait for it: %s", strerror(errno));
            return -1;
        }
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
        return 0;
    if (WIFEXITED(ws))
        snprintf(why, wlen, "exit status %d", WEXITSTATUS(ws));
    else
        snprintf(why, wlen, "killed by signal %d (%s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    return -1;
}
