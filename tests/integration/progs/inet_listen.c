/* inet_listen - TCP listeners over IPv4 and IPv6 (loopback, IPv6-only
 * wildcard, dual-stack wildcard) keep their address, port and backlog, and
 * accept again after restore; clients of the process itself that waited in
 * their accept queues at the checkpoint are accepted after it. */
#include "inetlib.h"

struct lis {
    const char *name;
    int family, v6only, backlog;
    const char *ip, *reach; /* bind to ip, connect to reach */
    int cfamily;            /* family of the client */
    int fd, client;
    char addr[80], caddr[80];
};

static int accept_checked(struct lis *l)
{
    struct pollfd p = {.fd = l->fd, .events = POLLIN};
    check(poll(&p, 1, 5000) == 1, "%s: nothing to accept", l->name);
    int a = accept(l->fd, NULL, NULL);
    check_sys(a);
    return a;
}

int main(void)
{
    struct lis ls[] = {
        {"v4", AF_INET, 0, 7, "127.0.0.1", "127.0.0.1", AF_INET, -1, -1, "", ""},
        {"v6", AF_INET6, 1, 5, "::1", "::1", AF_INET6, -1, -1, "", ""},
        {"v6only wildcard", AF_INET6, 1, 3, "::", "::1", AF_INET6, -1, -1, "", ""},
        {"dual-stack wildcard", AF_INET6, 0, 11, "::", "127.0.0.1", AF_INET, -1, -1, "", ""},
        {"v4 wildcard", AF_INET, 0, 9, "0.0.0.0", "127.0.0.1", AF_INET, -1, -1, "", ""},
    };
    int n = (int)(sizeof ls / sizeof ls[0]);
    for (int i = 0; i < n; i++) {
        struct lis *l = &ls[i];
        l->fd = tcp_listener(l->family, l->ip, l->backlog, l->v6only);
        sockaddr_text(l->fd, 0, l->addr, sizeof l->addr);
        if (i < 4) { /* a client waiting in the accept queue */
            l->client = tcp_connect_to(l->cfamily, l->reach, l->fd);
            sockaddr_text(l->client, 0, l->caddr, sizeof l->caddr);
        }
    }
    test_ready();
    test_wait_go();

    for (int i = 0; i < n; i++) {
        struct lis *l = &ls[i];
        check_addr(l->fd, 0, l->addr);
        int on = 0;
        socklen_t sl = sizeof on;
        check_sys(getsockopt(l->fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &sl));
        check(on, "%s: not listening", l->name);
        struct tcp_info ti;
        sl = sizeof ti;
        check_sys(getsockopt(l->fd, IPPROTO_TCP, TCP_INFO, &ti, &sl));
        check((int)ti.tcpi_sacked == l->backlog, "%s: backlog %u, was %d", l->name,
              ti.tcpi_sacked, l->backlog);
        if (l->family == AF_INET6) {
            int v = -1;
            sl = sizeof v;
            check_sys(getsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &sl));
            check(v == l->v6only, "%s: IPV6_V6ONLY %d, was %d", l->name, v, l->v6only);
        }
        if (l->client >= 0) {
            check_addr(l->client, 0, l->caddr);
            int a = accept_checked(l);
            char pa[80];
            sockaddr_text(a, 1, pa, sizeof pa);
            const char *pp = strrchr(pa, ':'), *cp = strrchr(l->caddr, ':');
            check(pp && cp && !strcmp(pp, cp), "%s: accepted a connection from %s, not from "
                  "the waiting client %s", l->name, pa, l->caddr);
            roundtrip(l->client, a, 1000, (uint64_t)i);
            roundtrip(a, l->client, 70000, (uint64_t)i + 10);
            close(a);
            close(l->client);
        }
        /* and a new one */
        int c = tcp_connect_to(l->cfamily, l->reach, l->fd);
        int a = accept_checked(l);
        roundtrip(c, a, 5000, 99);
        roundtrip(a, c, 5000, 98);
        close(a);
        close(c);
    }
    pass();
}
