/* pipe_packets - a pipe in packet mode (pipe2 with O_DIRECT) stays one.
 *
 * Before READY: a packet pipe with three packets waiting (5, 1 and 7
 * bytes), and a second one with O_DIRECT set on its write end by fcntl
 * (F_SETFL may turn packet mode on later). After the go file: both
 * ends of each keep their F_GETFL, the queued packets come out one per
 * read (a read asks for 100 bytes) with their boundaries, and a write of
 * two packets after the restore reads back as two.
 */
#include <fcntl.h>

#include "testlib.h"

static void expect_packet(int fd, const char *want, const char *what)
{
    char buf[100];
    ssize_t n = read(fd, buf, sizeof buf);
    check(n == (ssize_t)strlen(want) && !memcmp(buf, want, (size_t)n),
          "%s: read %zd bytes '%.*s', expected the packet '%s'", what, n, n > 0 ? (int)n : 0, buf,
          want);
}

int main(void)
{
    int p[2], q[2];
    check_sys(pipe2(p, O_DIRECT));
    check_sys(pipe(q));
    check_sys(fcntl(q[1], F_SETFL, fcntl(q[1], F_GETFL) | O_DIRECT));
    check(write(p[1], "hello", 5) == 5 && write(p[1], "x", 1) == 1 &&
              write(p[1], "goodbye", 7) == 7,
          "writing the packets");
    int fds[4] = {p[0], p[1], q[0], q[1]}, was[4];
    for (int i = 0; i < 4; i++)
        was[i] = fcntl(fds[i], F_GETFL);
    /* (pipe2 puts O_DIRECT on the write end only: packets are made there) */
    check(was[1] & O_DIRECT && was[3] & O_DIRECT, "no O_DIRECT to begin");
    test_ready();
    test_wait_go();

    static const char *names[4] = {"packet pipe read end", "packet pipe write end",
                                   "second pipe read end", "second pipe write end"};
    for (int i = 0; i < 4; i++)
        check(fcntl(fds[i], F_GETFL) == was[i], "%s (fd %d): F_GETFL %#o, was %#o", names[i],
              fds[i], fcntl(fds[i], F_GETFL), was[i]);
    expect_packet(p[0], "hello", "first queued packet");
    expect_packet(p[0], "x", "second queued packet");
    expect_packet(p[0], "goodbye", "third queued packet");
    check(write(p[1], "abc", 3) == 3 && write(p[1], "defg", 4) == 4, "writing after restore");
    expect_packet(p[0], "abc", "first new packet");
    expect_packet(p[0], "defg", "second new packet");
    check(write(q[1], "12", 2) == 2 && write(q[1], "345", 3) == 3, "writing to the second");
    expect_packet(q[0], "12", "second pipe, first packet");
    expect_packet(q[0], "345", "second pipe, second packet");
    pass();
}
