/* tree_clone - processes made by clone(), not fork, on 4 KiB stacks.
 *
 * The parent makes child A with glibc's clone() (SIGCHLD, no CLONE_VM)
 * on a 4 KiB stack; A makes B with clone(CLONE_PARENT), so B is the
 * parent's child too, on a 4 KiB stack of its own mapping with a guard
 * page below it (the checkpoint's signal must not run on it). No fork
 * handler runs in
 * them (zdtm session02/03 make their trees so). Each answers the parent
 * over pipes: its pid and parent as it sees them (getpid, getppid), and a
 * count it keeps. After the go file: both still answer with the same
 * pids, their parent is the parent's pid, their counts went on, and each
 * ends by returning from its function (7 and 8), which waitpid reports.
 */
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "testlib.h"

struct kid {
    int cmd[2], rep[2];
    int count;
};

static struct kid kids[2];
static char *b_stack_top;

/* 'p': pid, parent and count; 'x': end with code. */
static int serve(struct kid *k, int code)
{
    for (;;) {
        char c;
        ssize_t r = read(k->cmd[0], &c, 1);
        if (r == 0)
            return 3;
        if (r < 0)
            continue;
        if (c == 'x')
            return code;
        int v[3] = {getpid(), getppid(), ++k->count};
        if (write(k->rep[1], v, sizeof v) != (ssize_t)sizeof v)
            return 4;
    }
}

static int run_b(void *arg)
{
    (void)arg;
    return serve(&kids[1], 8);
}

static int run_a(void *arg)
{
    (void)arg;
    int b = clone(run_b, b_stack_top, CLONE_PARENT | SIGCHLD, NULL);
    if (write(kids[0].rep[1], &b, sizeof b) != (ssize_t)sizeof b)
        return 5;
    return serve(&kids[0], 7);
}

static void ask(int i, int v[3])
{
    check(write(kids[i].cmd[1], "p", 1) == 1, "write: %s", strerror(errno));
    size_t got = 0;
    while (got < 3 * sizeof(int)) {
        ssize_t r = read(kids[i].rep[0], (char *)v + got, 3 * sizeof(int) - got);
        check(r > 0, "child %c does not answer: %s", 'A' + i, r ? strerror(errno) : "EOF");
        got += (size_t)r;
    }
}

int main(void)
{
    /* the stacks: 4 KiB each, A's in this frame (as zdtm's are), B's
     * above a guard page */
    char a_stack[4096] __attribute__((aligned(16)));
    char *b_map = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    check(b_map != MAP_FAILED, "mmap: %s", strerror(errno));
    check_sys(mprotect(b_map, 4096, PROT_NONE));
    b_stack_top = b_map + 2 * 4096;
    for (int i = 0; i < 2; i++) {
        check_sys(pipe(kids[i].cmd));
        check_sys(pipe(kids[i].rep));
    }
    pid_t me = getpid(), pid[2];
    pid[0] = clone(run_a, a_stack + sizeof a_stack, SIGCHLD, NULL);
    check_sys(pid[0]);
    check(read(kids[0].rep[0], &pid[1], sizeof pid[1]) == (ssize_t)sizeof pid[1],
          "no word from A: %s", strerror(errno));
    check(pid[1] > 0, "A's clone(CLONE_PARENT) failed");
    int v[3], last[2];
    for (int i = 0; i < 2; i++) {
        ask(i, v);
        check(v[0] == pid[i] && v[1] == me, "child %c: pid %d parent %d, not %d and %d",
              'A' + i, v[0], v[1], pid[i], me);
        last[i] = v[2];
    }
    test_ready();
    test_wait_go();

    for (int i = 0; i < 2; i++) {
        ask(i, v);
        check(v[0] == pid[i] && v[1] == me, "child %c after restore: pid %d parent %d, not %d "
              "and %d", 'A' + i, v[0], v[1], pid[i], me);
        check(v[2] == last[i] + 1, "child %c: count %d, not %d", 'A' + i, v[2], last[i] + 1);
    }
    for (int i = 0; i < 2; i++) {
        int st = 0;
        check(write(kids[i].cmd[1], "x", 1) == 1, "write: %s", strerror(errno));
        check(waitpid(pid[i], &st, 0) == pid[i], "waitpid(%d): %s", pid[i], strerror(errno));
        check(WIFEXITED(st) && WEXITSTATUS(st) == 7 + i, "child %c: status %#x, not exit %d",
              'A' + i, st, 7 + i);
    }
    check(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "another child is left");
    pass();
    return 0;
}
