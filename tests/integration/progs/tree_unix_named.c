/* tree_unix_named - Unix connections through a name between a parent and
 * its child survive a checkpoint of the tree.
 *
 * The parent listens on a named stream socket and has a named datagram
 * socket. The child connects twice: the parent accepts the first
 * connection (the child's "hello1" waits unread in it), the second waits
 * in the listener's accept queue; the child's named datagram socket sends
 * a datagram that waits unread in the parent's. After the go file the
 * parent answers the first connection, accepts the second and answers
 * what the child sends on it, and answers the datagram at its sender's
 * address; the child checks every answer.
 */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "testlib.h"

static socklen_t addr(struct sockaddr_un *sa, const char *name)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    snprintf(sa->sun_path, sizeof sa->sun_path, "%s", name);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1);
}

static void expect(int fd, const char *want, const char *who)
{
    char b[64];
    size_t n = strlen(want);
    ssize_t r = recv(fd, b, sizeof b, 0);
    check(r == (ssize_t)n && !memcmp(b, want, n), "%s: got %zd bytes %.*s, want %s", who, r,
          r > 0 ? (int)r : 0, b, want);
}

static void say(int fd, const char *what)
{
    check(write(fd, what, strlen(what)) == (ssize_t)strlen(what), "write %s: %s", what,
          strerror(errno));
}

int main(void)
{
    test_go_setup(); /* the child waits for the go file too */
    char ln[64], dn[64], cn[64];
    snprintf(ln, sizeof ln, "tun-l.%d", (int)getpid());
    snprintf(dn, sizeof dn, "tun-d.%d", (int)getpid());
    snprintf(cn, sizeof cn, "tun-c.%d", (int)getpid());
    struct sockaddr_un sl, sd, sc;
    socklen_t ll = addr(&sl, ln), dl = addr(&sd, dn), cl = addr(&sc, cn);
    int l = socket(AF_UNIX, SOCK_STREAM, 0), d = socket(AF_UNIX, SOCK_DGRAM, 0);
    check_sys(l);
    check_sys(d);
    check_sys(bind(l, (struct sockaddr *)&sl, ll));
    check_sys(listen(l, 4));
    check_sys(bind(d, (struct sockaddr *)&sd, dl));
    int c2p[2];
    check_sys(pipe(c2p));
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        close(l);
        close(d);
        int c1 = socket(AF_UNIX, SOCK_STREAM, 0), c2 = socket(AF_UNIX, SOCK_STREAM, 0);
        int g = socket(AF_UNIX, SOCK_DGRAM, 0);
        check_sys(connect(c1, (struct sockaddr *)&sl, ll));
        say(c1, "hello1");
        check_sys(connect(c2, (struct sockaddr *)&sl, ll));
        check_sys(bind(g, (struct sockaddr *)&sc, cl));
        check(sendto(g, "dgram", 5, 0, (struct sockaddr *)&sd, dl) == 5, "sendto: %s",
              strerror(errno));
        say(c2p[1], "r");
        while (!test_go_reached())
            test_sleep_ms(10);
        expect(c1, "reply1", "child, first connection");
        say(c2, "hello2");
        expect(c2, "reply2", "child, second connection");
        expect(g, "dreply", "child, datagram");
        _exit(0);
    }
    char ch;
    check(read(c2p[0], &ch, 1) == 1, "the child did not start");
    int a1 = accept(l, NULL, NULL);
    check_sys(a1);
    test_ready();
    while (!test_go_reached())
        test_sleep_ms(10);
    expect(a1, "hello1", "parent, first connection");
    say(a1, "reply1");
    int a2 = accept(l, NULL, NULL);
    check_sys(a2);
    expect(a2, "hello2", "parent, second connection");
    say(a2, "reply2");
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    char b[16];
    ssize_t r = recvfrom(d, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
    check(r == 5 && !memcmp(b, "dgram", 5), "parent: datagram of %zd bytes", r);
    check(fl > offsetof(struct sockaddr_un, sun_path) && !strcmp(from.sun_path, cn),
          "parent: the datagram came from %s, not %s", fl > 2 ? from.sun_path : "(unnamed)", cn);
    check(sendto(d, "dreply", 6, 0, (struct sockaddr *)&from, fl) == 6, "sendto: %s",
          strerror(errno));
    int st = 0;
    check(waitpid(k, &st, 0) == k, "waitpid(%d): %s", (int)k, strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
    unlink(ln);
    unlink(dn);
    unlink(cn);
    pass();
}
