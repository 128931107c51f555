/* tree_inet - a pre-forking TCP server and a TCP connection between two
 * of its processes survive a checkpoint of the tree.
 *
 * The parent listens on 127.0.0.1 (one listener, inherited by every
 * child), connects to it and accepts: the accepted end goes to child 1,
 * the connecting end stays with the parent, and each writes a line the
 * other does not read before the go file (bytes in flight both ways).
 * Then two workers are forked that accept on the same listener and answer
 * "w<N>:" + the request; they wait in accept() across the checkpoint.
 * After the go file the parent asks four questions through new
 * connections and gets four answers, reads child 1's line and its "done",
 * and ends the workers with one "quit" each.
 */
#include <sys/wait.h>

#include "inetlib.h"

#define NW 2

static void worker(int l, int idx)
{
    for (;;) {
        int s = accept(l, NULL, NULL);
        if (s < 0 && errno == EINTR)
            continue;
        check(s >= 0, "worker %d: accept: %s", idx, strerror(errno));
        char req[64], rep[96];
        ssize_t r = read(s, req, sizeof req - 1);
        check(r > 0, "worker %d: read: %s", idx, r < 0 ? strerror(errno) : "end of file");
        req[r] = 0;
        if (!strcmp(req, "quit")) {
            close(s);
            _exit(0);
        }
        int n = snprintf(rep, sizeof rep, "w%d:%s", idx, req);
        check(write(s, rep, (size_t)n) == n, "worker %d: write: %s", idx, strerror(errno));
        close(s);
    }
}

static int dial(const struct sockaddr_storage *ss, socklen_t sl)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    check_sys(s);
    check(connect(s, (const struct sockaddr *)ss, sl) == 0, "connect: %s", strerror(errno));
    return s;
}

int main(void)
{
    test_go_setup(); /* the children wait for the go file too */
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, AF_INET, "127.0.0.1", 0);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    check_sys(l);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    check(quiet_bind(l, &ss, sl) == 0, "bind: %s", strerror(errno));
    check_sys(listen(l, 16));
    int c = dial(&ss, sl);
    int a = accept(l, NULL, NULL);
    check_sys(a);
    int sync[2];
    check_sys(pipe(sync));
    pid_t kids[NW + 1];
    kids[0] = fork();
    check_sys(kids[0]);
    if (kids[0] == 0) {
        close(c);
        close(l);
        check(write(a, "to-parent\n", 10) == 10, "child: write: %s", strerror(errno));
        check(write(sync[1], "r", 1) == 1, "child: write: %s", strerror(errno));
        while (!test_go_reached())
            test_sleep_ms(10);
        char b[16];
        read_exact(a, b, 9);
        check(!memcmp(b, "to-child\n", 9), "child got %.9s", b);
        check(write(a, "done", 4) == 4, "child: write: %s", strerror(errno));
        _exit(0);
    }
    close(a);
    check(write(c, "to-child\n", 9) == 9, "write: %s", strerror(errno));
    char ch;
    check(read(sync[0], &ch, 1) == 1, "child 1 did not start");
    for (int i = 1; i <= NW; i++) {
        kids[i] = fork();
        check_sys(kids[i]);
        if (kids[i] == 0) {
            close(c);
            worker(l, i);
        }
    }
    test_ready();
    while (!test_go_reached())
        test_sleep_ms(10);
    int seen[NW + 1] = {0};
    for (int q = 0; q < 4; q++) {
        int s = dial(&ss, sl);
        char req[16], rep[64];
        int n = snprintf(req, sizeof req, "q%d", q);
        check(write(s, req, (size_t)n) == n, "write: %s", strerror(errno));
        ssize_t r = read(s, rep, sizeof rep - 1);
        check(r > 0, "question %d: no answer: %s", q, r < 0 ? strerror(errno) : "end of file");
        rep[r] = 0;
        int w = rep[0] == 'w' ? rep[1] - '0' : -1;
        check(w >= 1 && w <= NW && !strcmp(rep + 3, req), "question %d: answer %s", q, rep);
        seen[w]++;
        close(s);
    }
    char b[16];
    read_exact(c, b, 14);
    check(!memcmp(b, "to-parent\ndone", 14), "parent got %.14s", b);
    for (int i = 1; i <= NW; i++) {
        int s = dial(&ss, sl);
        check(write(s, "quit", 4) == 4, "write: %s", strerror(errno));
        close(s);
    }
    for (int i = 0; i <= NW; i++) {
        int st = 0;
        check(waitpid(kids[i], &st, 0) == kids[i], "waitpid(%d): %s", (int)kids[i],
              strerror(errno));
        check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d status 0x%x", i, st);
    }
    test_msg("answers: worker 1 %d, worker 2 %d", seen[1], seen[2]);
    pass();
}
