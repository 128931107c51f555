/* unix_listen - AF_UNIX sockets bound to paths and abstract names,
 * listeners with their backlog and waiting clients, accepted connections,
 * datagram sockets with messages from named and unnamed senders.
 *
 * Before READY (cwd: a fresh directory):
 *   L1: stream listener on the relative path "l1.sock" (file mode 0600),
 *       backlog 5, O_NONBLOCK;
 *   C1 -> A1: a connection L1 accepted; "to-server" waits in A1,
 *       "to-client" in C1;
 *   W1, W2: clients waiting in L1's accept queue (W1 bound to "w1.sock"),
 *       then a third whose client closed;
 *   L2: seqpacket listener on an abstract name, backlog 3; C2 -> A2
 *       accepted, messages "m1", "m2" waiting in A2;
 *   G:  datagram socket bound to the absolute path $PWD/g.sock, with
 *       "from-b" (sent by B, bound to an abstract name), "from-u" (sent
 *       by an unnamed socket, closed since) and "from-v" (sent by V,
 *       bound to an abstract name and closed since) waiting;
 *   K:  datagram socket connected to G.
 * After restore: every name as before (getsockname, getpeername), the
 * file's mode, L1's backlog (sock_diag), the waiting bytes and messages
 * (with their senders' names), the waiting clients accepted in their
 * order (the closed one as a connection at end of file), a new client can connect to l1.sock and to L2, K still sends to G.
 */
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "testlib.h"
#include "unixtest.h"

static int sock(int type)
{
    int fd = socket(AF_UNIX, type, 0);
    check_sys(fd);
    return fd;
}

/* fd's own (or, peer=1, its peer's) name as text: "@x" abstract, "" unnamed */
static const char *name_of(int fd, int peer)
{
    static char out[4][120];
    static int k;
    struct sockaddr_un sa;
    socklen_t l = sizeof sa;
    char *o = out[k++ & 3];
    int r = peer ? getpeername(fd, (struct sockaddr *)&sa, &l)
                 : getsockname(fd, (struct sockaddr *)&sa, &l);
    if (r < 0)
        return "(error)";
    size_t n = l - offsetof(struct sockaddr_un, sun_path);
    if (n == 0)
        o[0] = 0;
    else if (sa.sun_path[0] == 0)
        snprintf(o, 120, "@%.*s", (int)n - 1, sa.sun_path + 1);
    else
        snprintf(o, 120, "%.*s", (int)strnlen(sa.sun_path, n), sa.sun_path);
    return o;
}

static void expect_name(int fd, int peer, const char *want, const char *what)
{
    const char *got = name_of(fd, peer);
    check(!strcmp(got, want), "%s: %s name '%s', expected '%s'", what, peer ? "peer" : "own", got,
          want);
}

/* The backlog sock_diag reports for the listener fd. */
static int backlog_of(int fd)
{
    struct stat st;
    check_sys(fstat(fd, &st));
    int nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG);
    check_sys(nl);
    struct {
        struct nlmsghdr h;
        struct unix_diag_req r;
    } req = {.h = {.nlmsg_len = sizeof req, .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                   .nlmsg_flags = NLM_F_REQUEST},
             .r = {.sdiag_family = AF_UNIX, .udiag_states = ~0u, .udiag_ino = (unsigned)st.st_ino,
                   .udiag_show = UDIAG_SHOW_RQLEN, .udiag_cookie = {~0u, ~0u}}};
    check_sys(send(nl, &req, sizeof req, 0));
    static char buf[8192];
    ssize_t n = recv(nl, buf, sizeof buf, 0);
    close(nl);
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    check(n > 0 && h->nlmsg_type == SOCK_DIAG_BY_FAMILY, "sock_diag gave no answer");
    struct unix_diag_msg *m = NLMSG_DATA(h);
    struct rtattr *a = (struct rtattr *)(m + 1);
    int len = h->nlmsg_len - NLMSG_LENGTH(sizeof *m);
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == UNIX_DIAG_RQLEN)
            return (int)((struct unix_diag_rqlen *)RTA_DATA(a))->udiag_wqueue;
    fail("sock_diag: no backlog");
}

static void expect_msg(int fd, const char *want, const char *from, const char *what)
{
    char buf[64];
    struct sockaddr_un sa;
    socklen_t l = sizeof sa;
    ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&sa, &l);
    check(n == (ssize_t)strlen(want) && !memcmp(buf, want, n), "%s: got %zd bytes '%.*s', "
          "expected '%s'", what, n, n > 0 ? (int)n : 0, buf, want);
    if (!from)
        return;
    char got[120] = "";
    size_t an = l > offsetof(struct sockaddr_un, sun_path) ? l - offsetof(struct sockaddr_un,
                                                                           sun_path) : 0;
    if (an && sa.sun_path[0] == 0)
        snprintf(got, sizeof got, "@%.*s", (int)an - 1, sa.sun_path + 1);
    else if (an)
        snprintf(got, sizeof got, "%.*s", (int)strnlen(sa.sun_path, an), sa.sun_path);
    check(!strcmp(got, from), "%s: sender '%s', expected '%s'", what, got, from);
}

static void expect_empty(int fd, const char *what)
{
    char c;
    errno = 0;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    check(n < 0 && errno == EAGAIN, "%s: expected nothing waiting, got %zd (%s)", what, n,
          strerror(errno));
}

int main(void)
{
    struct sockaddr_un sa;
    char abs_l2[64], abs_b[64], abs_v[64], gpath[4200], cwd[4096];
    check(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    snprintf(abs_l2, sizeof abs_l2, "ckshim-test-l2-%d", getpid());
    snprintf(abs_b, sizeof abs_b, "ckshim-test-b-%d", getpid());
    snprintf(abs_v, sizeof abs_v, "ckshim-test-v-%d", getpid());
    snprintf(gpath, sizeof gpath, "%s/g.sock", cwd);

    int l1 = sock(SOCK_STREAM);
    check_sys(bind(l1, (struct sockaddr *)&sa, unix_addr(&sa, "l1.sock", 0)));
    check_sys(chmod("l1.sock", 0600));
    check_sys(listen(l1, 5));
    int c1 = sock(SOCK_STREAM);
    check_sys(connect(c1, (struct sockaddr *)&sa, unix_addr(&sa, "l1.sock", 0)));
    int a1 = accept(l1, NULL, NULL);
    check_sys(a1);
    check(send(c1, "to-server", 9, 0) == 9 && send(a1, "to-client", 9, 0) == 9, "send c1/a1");
    int w1 = sock(SOCK_STREAM), w2 = sock(SOCK_STREAM);
    check_sys(bind(w1, (struct sockaddr *)&sa, unix_addr(&sa, "w1.sock", 0)));
    check_sys(connect(w1, (struct sockaddr *)&sa, unix_addr(&sa, "l1.sock", 0)));
    check_sys(connect(w2, (struct sockaddr *)&sa, unix_addr(&sa, "l1.sock", 0)));
    int w3 = sock(SOCK_STREAM);
    check_sys(connect(w3, (struct sockaddr *)&sa, unix_addr(&sa, "l1.sock", 0)));
    close(w3);
    check_sys(fcntl(l1, F_SETFL, O_NONBLOCK | O_RDWR));

    int l2 = sock(SOCK_SEQPACKET);
    socklen_t l2len = unix_addr(&sa, abs_l2, 1);
    check_sys(bind(l2, (struct sockaddr *)&sa, l2len));
    check_sys(listen(l2, 3));
    int c2 = sock(SOCK_SEQPACKET);
    check_sys(connect(c2, (struct sockaddr *)&sa, l2len));
    int a2 = accept(l2, NULL, NULL);
    check_sys(a2);
    check(send(c2, "m1", 2, 0) == 2 && send(c2, "m2", 2, 0) == 2, "send c2");

    int g = sock(SOCK_DGRAM), b = sock(SOCK_DGRAM), u = sock(SOCK_DGRAM), k = sock(SOCK_DGRAM);
    socklen_t glen = unix_addr(&sa, gpath, 0);
    struct sockaddr_un gsa = sa;
    check_sys(bind(g, (struct sockaddr *)&gsa, glen));
    check_sys(bind(b, (struct sockaddr *)&sa, unix_addr(&sa, abs_b, 1)));
    check(sendto(b, "from-b", 6, 0, (struct sockaddr *)&gsa, glen) == 6, "send from-b");
    check(sendto(u, "from-u", 6, 0, (struct sockaddr *)&gsa, glen) == 6, "send from-u");
    close(u);
    int v = sock(SOCK_DGRAM);
    check_sys(bind(v, (struct sockaddr *)&sa, unix_addr(&sa, abs_v, 1)));
    check(sendto(v, "from-v", 6, 0, (struct sockaddr *)&gsa, glen) == 6, "send from-v");
    close(v);
    check_sys(connect(k, (struct sockaddr *)&gsa, glen));

    test_ready();
    test_wait_go();

    char at_b[80], at_l2[80], at_v[80];
    snprintf(at_b, sizeof at_b, "@%s", abs_b);
    snprintf(at_v, sizeof at_v, "@%s", abs_v);
    snprintf(at_l2, sizeof at_l2, "@%s", abs_l2);
    expect_name(l1, 0, "l1.sock", "L1");
    expect_name(a1, 0, "l1.sock", "A1");
    expect_name(c1, 1, "l1.sock", "C1");
    expect_name(w1, 0, "w1.sock", "W1");
    expect_name(l2, 0, at_l2, "L2");
    expect_name(c2, 1, at_l2, "C2");
    expect_name(g, 0, gpath, "G");
    expect_name(b, 0, at_b, "B");
    expect_name(k, 1, gpath, "K");
    struct stat st;
    check_sys(lstat("l1.sock", &st));
    check(S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600, "l1.sock mode %o",
          st.st_mode & 07777);
    check(backlog_of(l1) == 5, "L1 backlog %d, expected 5", backlog_of(l1));
    check(backlog_of(l2) == 3, "L2 backlog %d, expected 3", backlog_of(l2));
    check(fcntl(l1, F_GETFL) & O_NONBLOCK, "L1 lost O_NONBLOCK");

    expect_msg(a1, "to-server", NULL, "A1");
    expect_msg(c1, "to-client", NULL, "C1");
    expect_empty(a1, "A1");
    expect_msg(a2, "m1", NULL, "A2 first");
    expect_msg(a2, "m2", NULL, "A2 second");
    expect_empty(a2, "A2");
    expect_msg(g, "from-b", at_b, "G first");
    expect_msg(g, "from-u", "", "G second");
    expect_msg(g, "from-v", at_v, "G third");
    expect_empty(g, "G");

    /* the waiting clients, in order */
    int x1 = accept(l1, NULL, NULL);
    check(x1 >= 0, "accept W1: %s", strerror(errno));
    expect_name(x1, 1, "w1.sock", "first waiting client");
    int x2 = accept(l1, NULL, NULL);
    check(x2 >= 0, "accept W2: %s", strerror(errno));
    expect_name(x2, 1, "", "second waiting client");
    int x3 = accept(l1, NULL, NULL);
    check(x3 >= 0, "accept the closed client: %s", strerror(errno));
    char c3;
    check(recv(x3, &c3, 1, 0) == 0, "the closed client's connection is not at end of file");
    check(accept(l1, NULL, NULL) < 0 && errno == EAGAIN, "a fourth client was waiting");
    check(send(w1, "hi", 2, 0) == 2, "W1 send: %s", strerror(errno));
    expect_msg(x1, "hi", NULL, "X1");
    check(send(x2, "yo", 2, 0) == 2, "X2 send: %s", strerror(errno));
    expect_msg(w2, "yo", NULL, "W2");

    /* new clients */
    int n1 = sock(SOCK_STREAM);
    check(connect(n1, (struct sockaddr *)&sa, unix_addr(&sa, "l1.sock", 0)) == 0,
          "connect to l1.sock after restore: %s", strerror(errno));
    int y1 = accept(l1, NULL, NULL);
    check(y1 >= 0, "accept new client: %s", strerror(errno));
    int n2 = sock(SOCK_SEQPACKET);
    check(connect(n2, (struct sockaddr *)&sa, unix_addr(&sa, abs_l2, 1)) == 0,
          "connect to L2 after restore: %s", strerror(errno));
    check(send(c1, "more", 4, 0) == 4, "C1 send");
    expect_msg(a1, "more", NULL, "A1 more");
    check(send(a2, "r", 1, 0) == 1, "A2 send");
    expect_msg(c2, "r", NULL, "C2");
    check(send(k, "via-k", 5, 0) == 5, "K send: %s", strerror(errno));
    expect_msg(g, "via-k", "", "G from K");
    pass();
}
