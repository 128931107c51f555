/* tree_sockets - Unix socket pairs split between a parent and its child,
 * and one socket both of them hold, survive a checkpoint of the tree.
 *
 * Three socket pairs (stream, datagram, seqpacket): the parent keeps one
 * end, the child the other, and each sends two messages the other does
 * not read before the go file (bytes in flight both ways). A fourth pair
 * is kept whole by both processes (the same two sockets, inherited across
 * fork): the parent writes "abcdef" into one end; after the go file the
 * child reads three bytes from the other and sets O_NONBLOCK on it, and
 * the parent then reads "def" from that same socket and sees O_NONBLOCK
 * (one open file description). A pipe orders the two.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include "testlib.h"

static const int types[3] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
static const char *names[3] = {"stream", "dgram", "seqpacket"};

static void send_two(int fd, const char *who, int t)
{
    char m[32];
    for (int k = 1; k <= 2; k++) {
        int n = snprintf(m, sizeof m, "%s-%s-%d", who, names[t], k);
        check(write(fd, m, (size_t)n) == n, "%s: write %s: %s", who, names[t], strerror(errno));
    }
}

/* the two messages of `who` on fd, in order, with their boundaries
 * (a stream: the bytes of both) */
static void expect_two(int fd, const char *who, int t)
{
    char want[64], got[64];
    if (types[t] == SOCK_STREAM) {
        int n = snprintf(want, sizeof want, "%s-%s-1%s-%s-2", who, names[t], who, names[t]);
        int have = 0;
        while (have < n) {
            ssize_t r = read(fd, got + have, (size_t)(n - have));
            check(r > 0, "read %s: %s", names[t], r < 0 ? strerror(errno) : "end of file");
            have += (int)r;
        }
        check(!memcmp(got, want, (size_t)n), "%s: got %.*s, want %s", names[t], n, got, want);
        return;
    }
    for (int k = 1; k <= 2; k++) {
        int n = snprintf(want, sizeof want, "%s-%s-%d", who, names[t], k);
        ssize_t r = recv(fd, got, sizeof got, 0);
        check(r == n && !memcmp(got, want, (size_t)n), "%s message %d: got %zd bytes %.*s, "
              "want %s", names[t], k, r, r > 0 ? (int)r : 0, got, want);
    }
}

int main(void)
{
    test_go_setup(); /* the children wait for the go file too */
    int sp[3][2], both[2], c2p[2];
    for (int t = 0; t < 3; t++)
        check_sys(socketpair(AF_UNIX, types[t], 0, sp[t]));
    check_sys(socketpair(AF_UNIX, SOCK_STREAM, 0, both));
    check_sys(pipe(c2p));
    check(write(both[0], "abcdef", 6) == 6, "write: %s", strerror(errno));
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        close(c2p[0]);
        for (int t = 0; t < 3; t++) {
            close(sp[t][0]);
            send_two(sp[t][1], "child", t);
        }
        check(write(c2p[1], "r", 1) == 1, "child: write: %s", strerror(errno));
        while (!test_go_reached())
            test_sleep_ms(10);
        for (int t = 0; t < 3; t++)
            expect_two(sp[t][1], "parent", t);
        char b[3];
        check(read(both[1], b, 3) == 3 && !memcmp(b, "abc", 3), "child: the shared socket "
              "did not give abc");
        check_sys(fcntl(both[1], F_SETFL, fcntl(both[1], F_GETFL) | O_NONBLOCK));
        check(write(c2p[1], "d", 1) == 1, "child: write: %s", strerror(errno));
        _exit(0);
    }
    close(c2p[1]);
    for (int t = 0; t < 3; t++) {
        close(sp[t][1]);
        send_two(sp[t][0], "parent", t);
    }
    char c;
    check(read(c2p[0], &c, 1) == 1 && c == 'r', "the child did not start");
    test_ready();
    while (!test_go_reached())
        test_sleep_ms(10);
    for (int t = 0; t < 3; t++)
        expect_two(sp[t][0], "child", t);
    check(read(c2p[0], &c, 1) == 1 && c == 'd', "the child did not finish its part");
    check(fcntl(both[1], F_GETFL) & O_NONBLOCK,
          "O_NONBLOCK the child set is not on the parent's socket: not one description");
    char b[8];
    ssize_t r = read(both[1], b, sizeof b);
    check(r == 3 && !memcmp(b, "def", 3), "the shared socket gave %zd bytes, not def: not "
          "one socket", r);
    int st = 0;
    check(waitpid(k, &st, 0) == k, "waitpid(%d): %s", (int)k, strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
    pass();
}
