/* inet_outside - a TCP connection to a peer outside the process (an echo
 * server this program starts as a detached grandchild, so it is not a
 * child of the checkpointed process) comes back dead after restore: the
 * bytes already received are read first, then ECONNRESET, writes fail with
 * EPIPE, epoll reports EPOLLERR | EPOLLHUP; the program reconnects and the
 * server answers again. Without a restore in between (run under the shim
 * only, or without it) the connection simply still works. A non-blocking
 * connect() still in progress (SYN_SENT: the server's second listener has
 * a full accept queue) goes on after restore and completes once the
 * server accepts. */
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include "inetlib.h"

/* The echo server: greets every new connection with "hello\n" and echoes
 * what it reads; exits after 120 s without connections. Its second
 * listener (backlog 0: one connection fills its queue) is accepted from
 * only once a client said "drain". */
static void serve(int wfd)
{
    int l = tcp_listener(AF_INET, "127.0.0.1", 16, 0);
    int slow = tcp_listener(AF_INET, "127.0.0.1", 0, 0);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(l, (struct sockaddr *)&ss, &sl);
    int port[2] = {port_of(&ss), 0};
    sl = sizeof ss;
    getsockname(slow, (struct sockaddr *)&ss, &sl);
    port[1] = port_of(&ss);
    (void)!write(wfd, port, sizeof port);
    close(wfd);
    struct pollfd p[64];
    int n = 1, draining = 0;
    p[0].fd = l;
    p[0].events = POLLIN;
    for (;;) {
        int r = poll(p, (nfds_t)n, draining ? 10 : 120000);
        if (r < 0 || (r == 0 && !draining))
            _exit(0);
        while (draining) {
            int a = accept4(slow, NULL, NULL, SOCK_NONBLOCK);
            if (a < 0)
                break;
            close(a);
        }
        if ((p[0].revents & POLLIN) && n < 64) {
            int a = accept(l, NULL, NULL);
            if (a >= 0) {
                (void)!write(a, "hello\n", 6);
                p[n].fd = a;
                p[n++].events = POLLIN;
            }
        }
        for (int i = 1; i < n; i++) {
            if (!p[i].revents)
                continue;
            char b[4096];
            ssize_t k = read(p[i].fd, b, sizeof b);
            if (k <= 0) {
                close(p[i].fd);
                p[i--] = p[--n];
                continue;
            }
            if (k == 6 && !memcmp(b, "drain\n", 6))
                draining = 1;
            (void)!write(p[i].fd, b, (size_t)k);
        }
    }
}

static int slow_port;

static int start_server(char **argv)
{
    int pfd[2];
    check_sys(pipe(pfd));
    pid_t c = fork();
    check_sys(c);
    if (c == 0) {
        if (fork() == 0) {
            close(pfd[0]);
            setsid();
            char fdtext[16];
            snprintf(fdtext, sizeof fdtext, "%d", pfd[1]);
            unsetenv("LD_PRELOAD"); /* a plain program, not one of ckshim's */
            execl("/proc/self/exe", argv[0], "serve", fdtext, (char *)NULL);
            _exit(127);
        }
        _exit(0);
    }
    waitpid(c, NULL, 0);
    close(pfd[1]);
    int port[2] = {0, 0};
    check(read(pfd[0], port, sizeof port) == sizeof port, "the echo server did not start");
    close(pfd[0]);
    slow_port = port[1];
    return port[0];
}

static int dial(int port)
{
    struct sockaddr_storage ss;
    socklen_t l = mkaddr(&ss, AF_INET, "127.0.0.1", port);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    check_sys(s);
    check_sys(connect(s, (struct sockaddr *)&ss, l));
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "serve")) {
        serve(atoi(argv[2]));
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    int port = start_server(argv);
    int s = dial(port);
    char b[64];
    read_exact(s, b, 6);
    check(!memcmp(b, "hello\n", 6), "no greeting");
    write_all(s, "ping\n", 5);
    /* "hello\n" of a second connection and the echo stay unread */
    int s2 = dial(port);
    write_all(s2, "pong\n", 5);
    test_sleep_ms(100);
    int ep = epoll_create1(0);
    check_sys(ep);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = 7};
    check_sys(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
    /* a connect in progress: the slow listener's queue is full */
    int filler = dial(slow_port);
    int conn = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    check_sys(conn);
    struct sockaddr_storage sa;
    socklen_t sal = mkaddr(&sa, AF_INET, "127.0.0.1", slow_port);
    check(connect(conn, (struct sockaddr *)&sa, sal) < 0 && errno == EINPROGRESS,
          "the connect to a full listener did not wait: %s", strerror(errno));
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    check_sys(getsockopt(conn, IPPROTO_TCP, TCP_INFO, &ti, &tl));
    check(ti.tcpi_state == TCP_SYN_SENT, "the connect is in state %d, not SYN_SENT", ti.tcpi_state);
    int real_pid = test_kernel_pid();
    test_ready();
    test_wait_go();

    int restored = test_kernel_pid() != real_pid;
    /* the bytes that had arrived are there in any case */
    read_exact(s, b, 5);
    check(!memcmp(b, "ping\n", 5), "the echo that had arrived is lost");
    read_exact(s2, b, 11);
    check(!memcmp(b, "hello\npong\n", 11), "the bytes of the second connection are lost");
    if (restored) {
        struct epoll_event got;
        int n = epoll_wait(ep, &got, 1, 2000);
        check(n == 1 && (got.events & (EPOLLERR | EPOLLHUP)) == (EPOLLERR | EPOLLHUP) &&
                  got.data.u64 == 7,
              "epoll: %d events %#x, expected EPOLLERR|EPOLLHUP", n, n == 1 ? got.events : 0);
        ssize_t k = read(s, b, sizeof b);
        check(k < 0 && errno == ECONNRESET, "read of the dead connection: %zd (%s), not ECONNRESET",
              k, k < 0 ? strerror(errno) : "bytes");
        k = read(s, b, sizeof b);
        check(k == 0, "second read of the dead connection: %zd, not end of file", k);
        check(write(s, "x", 1) < 0 && errno == EPIPE, "write to the dead connection: %s",
              strerror(errno));
        check(write(s2, "x", 1) < 0, "write to the second dead connection succeeded");
        close(s);
        close(s2);
        /* the program's own reconnect logic */
        s = dial(port);
        read_exact(s, b, 6);
        check(!memcmp(b, "hello\n", 6), "no greeting after reconnecting");
    }
    write_all(s, "again\n", 6);
    read_exact(s, b, 6);
    check(!memcmp(b, "again\n", 6), "no echo");
    /* the server accepts now: the connect in progress completes */
    write_all(s, "drain\n", 6);
    read_exact(s, b, 6);
    struct pollfd pc = {.fd = conn, .events = POLLOUT};
    check(poll(&pc, 1, 8000) == 1, "the connect in progress never completed");
    int err = -1;
    socklen_t el = sizeof err;
    check_sys(getsockopt(conn, SOL_SOCKET, SO_ERROR, &err, &el));
    check(err == 0, "the connect in progress failed: %s", strerror(err));
    char pa[80], want[80];
    snprintf(want, sizeof want, "127.0.0.1:%d", slow_port);
    check(!strcmp(sockaddr_text(conn, 1, pa, sizeof pa), want), "connected to %s, not %s", pa,
          want);
    check(fcntl(conn, F_GETFL) & O_NONBLOCK, "the connecting socket lost O_NONBLOCK");
    (void)filler;
    test_msg("%s", restored ? "dead after restore, reconnected" : "not restored: still connected");
    pass();
}
