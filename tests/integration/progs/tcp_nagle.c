/* tcp_nagle - a parent serving its child over a TCP connection on
 * loopback with two small writes per answer (a header, then the body: as
 * an HTTP/1.1 server does), without TCP_NODELAY.
 *
 * The second write waits in the sender (Nagle's algorithm) until the
 * first is acknowledged, which the receiver delays up to 40 ms: a
 * checkpoint often finds bytes neither in the peer's queue nor readable
 * back. The shim sends them once the threads are parked (TCP_NODELAY for
 * a moment); before, the checkpoint was refused ("its receive buffer is
 * full"). After the go file the child checks that every answer matched
 * its question, across the restores, and the parent that the child ended
 * well.
 */
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "testlib.h"

static int read_line(int fd, char *buf, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0)
            return -1;
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = 0;
    return (int)n;
}

static int read_full(int fd, char *buf, size_t len)
{
    size_t n = 0;
    while (n < len) {
        ssize_t r = read(fd, buf + n, len - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
    }
    return 0;
}

int main(void)
{
    test_go_setup();
    int l = socket(AF_INET, SOCK_STREAM, 0);
    check_sys(l);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    check_sys(bind(l, (struct sockaddr *)&a, sizeof a));
    check_sys(listen(l, 1));
    check_sys(getsockname(l, (struct sockaddr *)&a, &al));
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        close(l);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0)
            _exit(2);
        char q[64], h[64], body[64];
        for (long i = 1;; i++) {
            int end = test_go_reached();
            int ql = snprintf(q, sizeof q, "%s %ld\n", end ? "END" : "GET", i);
            if (write(c, q, (size_t)ql) != ql || read_line(c, h, sizeof h) < 0)
                _exit(3);
            int blen = atoi(h);
            if (blen <= 0 || blen >= (int)sizeof body || read_full(c, body, (size_t)blen) < 0)
                _exit(4);
            body[blen] = 0;
            if (atol(body) != i) {
                test_msg("child: answer %s to question %ld", body, i);
                _exit(5);
            }
            if (end)
                _exit(0);
        }
    }
    int s = accept(l, NULL, NULL);
    check_sys(s);
    test_ready();
    char q[64], h[32], body[32];
    for (;;) {
        check(read_line(s, q, sizeof q) > 0, "parent: the child's question is lost");
        int bl = snprintf(body, sizeof body, "%ld", atol(q + 4));
        int hl = snprintf(h, sizeof h, "%d\n", bl);
        check(write(s, h, (size_t)hl) == hl && write(s, body, (size_t)bl) == bl,
              "parent: write: %s", strerror(errno));
        if (!strncmp(q, "END", 3))
            break;
    }
    int ws;
    check(waitpid(k, &ws, 0) == k, "waitpid: %s", strerror(errno));
    check(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child: status 0x%x", ws);
    pass();
    return 0;
}
