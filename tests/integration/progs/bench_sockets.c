/* bench_sockets - the socket-count workload of tests/bench.sh (not a
 * correctness test; test_progs.sh skips bench_* programs).
 *
 *   bench_sockets N
 *
 * Opens N TCP and UDP sockets over loopback (raising its soft descriptor
 * limit as far as needed): one listener, then TCP connections with both
 * ends in the process (a few bytes waiting in each direction) for half of
 * them, bound UDP sockets with a datagram waiting for the other half;
 * prints "READY" and sleeps until killed. The bench times checkpoints of
 * it against N = 0.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
    perror(what);
    exit(1);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int made = 0;
    int l = -1;
    if (n > 0) {
        l = socket(AF_INET, SOCK_STREAM, 0);
        if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 128) < 0 ||
            getsockname(l, (struct sockaddr *)&a, &al) < 0)
            die("listener");
        made = 1;
    }
    while (made + 2 <= n / 2) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0)
            die("connect");
        int s = accept(l, NULL, NULL);
        if (s < 0)
            die("accept");
        if (write(c, "ping", 4) != 4 || write(s, "pong!", 5) != 5)
            die("write");
        made += 2;
    }
    struct sockaddr_in u = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    while (made < n) {
        int d = socket(AF_INET, SOCK_DGRAM, 0);
        socklen_t ul = sizeof u;
        u.sin_port = 0;
        if (d < 0 || bind(d, (struct sockaddr *)&u, sizeof u) < 0 ||
            getsockname(d, (struct sockaddr *)&u, &ul) < 0 ||
            sendto(d, "hi", 2, 0, (struct sockaddr *)&u, ul) != 2)
            die("udp");
        made++;
    }
    printf("READY %d sockets\n", made);
    fflush(stdout);
    for (;;)
        pause();
}
