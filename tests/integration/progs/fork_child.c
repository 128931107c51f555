/* fork_child - fork() works before a checkpoint and in a restored process.
 *
 * Before READY the program forks a child that reports its getpid() through
 * a pipe and exits at once with exit(3) (its atexit handlers and the
 * shim's destructors run in the child); the parent reaps it with waitpid
 * and sees status 3. The checkpoint that follows must not be disturbed by
 * it. After restore fork() works again: the child allocates, writes its
 * getpid() and getppid() to a pipe and calls exit(7); the parent reads the
 * pipe to EOF, reaps exactly that child with waitpid and sees status 7. The
 * child's getpid() equals what fork() returned and differs from the
 * parent's getpid(); its getppid() is the parent's getpid() (checked last).
 */
#include <sys/wait.h>

#include "testlib.h"

struct report {
    pid_t pid, ppid;
    unsigned long sum;
};

/* Fork a child that sends a report and exits with code; returns its pid
 * and what it reported. */
static pid_t run_child(int code, struct report *rep, const char *when)
{
    int p[2];
    check_sys(pipe(p));
    pid_t pid = fork();
    check(pid >= 0, "%s: fork: %s", when, strerror(errno));
    if (pid == 0) {
        close(p[0]);
        struct report r = { getpid(), getppid(), 0 };
        unsigned char *buf = malloc(1 << 20); /* the child's heap works */
        if (!buf)
            _exit(100);
        memset(buf, 3, 1 << 20);
        for (int i = 0; i < (1 << 20); i += 4096)
            r.sum += buf[i];
        free(buf);
        if (write(p[1], &r, sizeof(r)) != sizeof(r))
            _exit(101);
        exit(code);
    }
    close(p[1]);
    size_t got = 0;
    for (;;) {
        ssize_t n = read(p[0], (char *)rep + got, sizeof(*rep) - got);
        if (n < 0 && errno == EINTR)
            continue;
        check(n >= 0, "%s: read from the child's pipe: %s", when, strerror(errno));
        if (n == 0)
            break;
        got += n;
        if (got == sizeof(*rep)) {
            char extra;
            check(read(p[0], &extra, 1) == 0, "%s: the child wrote too much", when);
            break;
        }
    }
    close(p[0]);
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) == -1 && errno == EINTR)
        ;
    check(w == pid, "%s: waitpid(%d) returned %d: %s", when, pid, w, strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == code,
          "%s: child status %#x (exited %d, code %d, signal %d), expected exit %d", when, st,
          WIFEXITED(st), WEXITSTATUS(st), WIFSIGNALED(st) ? WTERMSIG(st) : 0, code);
    check(got == sizeof(*rep), "%s: child sent %zu of %zu bytes", when, got, sizeof(*rep));
    check(rep->sum == 3 * 256, "%s: child's heap gave sum %lu", when, rep->sum);
    check(rep->pid == pid, "%s: child's getpid() is %d, fork() returned %d", when, rep->pid,
          pid);
    check(rep->pid != getpid(), "%s: child's getpid() %d is the parent's", when, rep->pid);
    errno = 0;
    check(waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD,
          "%s: waitpid(-1) found another child (%s)", when, strerror(errno));
    return pid;
}

int main(void)
{
    struct report rep;
    pid_t me = getpid();

    pid_t c1 = run_child(3, &rep, "before checkpoint");
    check(rep.ppid == me, "before checkpoint: child's getppid() %d, parent's getpid() %d",
          rep.ppid, me);
    test_msg("first child %d reaped", c1);

    test_ready();
    test_wait_go();

    check(getpid() == me, "getpid() after restore is %d, was %d", getpid(), me);
    pid_t c2 = run_child(7, &rep, "after restore");
    check(c2 != c1, "second child got the first one's pid %d", c1);
    test_msg("after restore: child %d reaped with status 7", c2);
    check(rep.ppid == getpid(), "after restore: child's getppid() is %d, parent's getpid() is "
          "%d (the parent's real pid, ids are not translated in the child?)", rep.ppid,
          getpid());
    pass();
}
