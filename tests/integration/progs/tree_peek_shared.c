/* tree_peek_shared - sockets with bytes waiting, held by every process of
 * a tree (inherited across fork), keep their queues and the program's
 * peek offset through checkpoints of the tree.
 *
 * The parent makes a unix stream pair (150,000 bytes waiting: the capture
 * peeks at them in several pieces, with SO_PEEK_OFF), a unix datagram
 * and a seqpacket pair (40 messages each), a TCP connection over loopback
 * (60,000 bytes waiting) and a UDP socket with 20 datagrams from itself;
 * the stream's reader has a peek offset of its own (SO_PEEK_OFF 3). Then
 * it forks three children that hold all of them and wait for the go file.
 * The capture runs in every process of the tree at once: only one of them
 * may walk a shared socket's queue (they would move each other's peek
 * offset). test_trees.sh checkpoints it 20 times in a row (each must
 * succeed); after the go file the parent checks the peek offset and reads
 * every byte and message back in order.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "inetlib.h"

#define NKIDS 3
#define STREAM_BYTES 150000
#define TCP_BYTES 60000
#define NMSGS 40
#define NUDP 20

static void put_all(int fd, const unsigned char *p, size_t n, const char *what)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        check(w > 0, "write %s: %s", what, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

static void read_all(int fd, unsigned char *p, size_t n, const char *what)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        check(r > 0, "read %s: %s", what, r < 0 ? strerror(errno) : "end of file");
        p += r;
        n -= (size_t)r;
    }
}

static void expect_msgs(int fd, const char *what)
{
    for (int k = 0; k < NMSGS; k++) {
        char want[32], got[64];
        int n = snprintf(want, sizeof want, "%s message %d", what, k);
        ssize_t r = recv(fd, got, sizeof got, MSG_DONTWAIT);
        check(r == n && !memcmp(got, want, (size_t)n), "%s message %d: got %zd bytes %.*s", what,
              k, r, r > 0 ? (int)r : 0, got);
    }
}

int main(void)
{
    test_go_setup(); /* the children wait for the go file too */
    static unsigned char data[STREAM_BYTES], back[STREAM_BYTES];
    test_fill(data, sizeof data, 77);
    int st[2], dg[2], sq[2];
    check_sys(socketpair(AF_UNIX, SOCK_STREAM, 0, st));
    check_sys(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg));
    check_sys(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq));
    int big = 1 << 20;
    setsockopt(st[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    put_all(st[0], data, STREAM_BYTES, "stream");
    for (int k = 0; k < NMSGS; k++) {
        char m[32];
        int n = snprintf(m, sizeof m, "dgram message %d", k);
        check(send(dg[0], m, (size_t)n, 0) == n, "send dgram: %s", strerror(errno));
        n = snprintf(m, sizeof m, "seqpacket message %d", k);
        check(send(sq[0], m, (size_t)n, 0) == n, "send seqpacket: %s", strerror(errno));
    }
    int off = 3;
    check_sys(setsockopt(st[1], SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off));

    struct sockaddr_storage a;
    socklen_t al = mkaddr(&a, AF_INET, "127.0.0.1", 0);
    int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
    check(l >= 0 && c >= 0, "socket: %s", strerror(errno));
    check_sys(quiet_bind(l, &a, al));
    check_sys(listen(l, 4));
    check_sys(getsockname(l, (struct sockaddr *)&a, &al));
    check_sys(connect(c, (struct sockaddr *)&a, al));
    int s = accept(l, NULL, NULL);
    check_sys(s);
    close(l);
    put_all(c, data, TCP_BYTES, "tcp");

    struct sockaddr_storage u;
    socklen_t ul = mkaddr(&u, AF_INET, "127.0.0.1", 0);
    int d = socket(AF_INET, SOCK_DGRAM, 0);
    check_sys(d);
    check_sys(quiet_bind(d, &u, ul));
    check_sys(getsockname(d, (struct sockaddr *)&u, &ul));
    for (int k = 0; k < NUDP; k++) {
        char m[32];
        int n = snprintf(m, sizeof m, "udp datagram %d", k);
        check(sendto(d, m, (size_t)n, 0, (struct sockaddr *)&u, ul) == n, "sendto: %s",
              strerror(errno));
    }
    /* every byte on its way: the TCP receiver has them all */
    for (int i = 0; i < 300; i++) {
        int inq = 0;
        ioctl(s, FIONREAD, &inq);
        if (inq >= TCP_BYTES)
            break;
        test_sleep_ms(10);
    }

    pid_t kids[NKIDS];
    for (int i = 0; i < NKIDS; i++) {
        kids[i] = fork();
        check_sys(kids[i]);
        if (kids[i] == 0) {
            while (!test_go_reached())
                test_sleep_ms(10);
            _exit(0);
        }
    }
    test_ready();
    while (!test_go_reached())
        test_sleep_ms(10);
    for (int i = 0; i < NKIDS; i++) {
        int ws = 0;
        check(waitpid(kids[i], &ws, 0) == kids[i], "waitpid(%d): %s", (int)kids[i],
              strerror(errno));
        check(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child %d status 0x%x", i, ws);
    }

    int v = -1;
    socklen_t vl = sizeof v;
    check_sys(getsockopt(st[1], SOL_SOCKET, SO_PEEK_OFF, &v, &vl));
    check(v == 3, "the stream's peek offset is %d, not 3", v);
    off = -1;
    check_sys(setsockopt(st[1], SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off));
    read_all(st[1], back, STREAM_BYTES, "stream");
    check(!memcmp(back, data, STREAM_BYTES), "the stream's bytes differ (at %ld)",
          test_check_fill(back, STREAM_BYTES, 77));
    expect_msgs(dg[1], "dgram");
    expect_msgs(sq[1], "seqpacket");
    read_all(s, back, TCP_BYTES, "tcp");
    check(!memcmp(back, data, TCP_BYTES), "the TCP bytes differ");
    for (int k = 0; k < NUDP; k++) {
        char want[32], got[64];
        int n = snprintf(want, sizeof want, "udp datagram %d", k);
        ssize_t r = recv(d, got, sizeof got, MSG_DONTWAIT);
        check(r == n && !memcmp(got, want, (size_t)n), "udp datagram %d: got %zd bytes", k, r);
    }
    char x;
    check(recv(st[1], &x, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "the stream has more bytes");
    pass();
}
