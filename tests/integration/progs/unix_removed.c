/* unix_removed - Unix sockets whose file was removed keep their names,
 * and what took their path since stays.
 *
 * Before READY (cwd: a fresh directory D):
 *   R1: stream listener bound to the relative name "r1.sock", its file
 *       removed, then the program moved to D/sub (the name no longer
 *       resolves from the working directory);
 *   R2: datagram socket bound to D/r2.sock with "queued" waiting, its
 *       file removed and a FIFO made at that path;
 *   R3: stream listener bound to D/r3.sock, its file removed, and R4, a
 *       new listener bound to the same path;
 *   R5: datagram socket bound to D/gone/r5.sock, C5 connected to it, the
 *       file and the directory gone removed;
 *   R6: stream listener bound to D/r6.sock with C6 -> A6 accepted, its
 *       file removed.
 * After restore: the names are as before; r1.sock is not in D or D/sub;
 * R2 reads "queued"; D/r2.sock is still the FIFO; a client connecting to
 * D/r3.sock reaches R4, not R3; C5's datagram reaches R5 and D/gone is
 * not there; C6 and A6 talk, C6's peer is still named D/r6.sock.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "testlib.h"
#include "unixtest.h"

static const char *own_name(int fd)
{
    static char out[120];
    struct sockaddr_un sa;
    socklen_t l = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &l) < 0)
        return "(error)";
    snprintf(out, sizeof out, "%.*s", (int)(l - offsetof(struct sockaddr_un, sun_path)),
             sa.sun_path);
    return out;
}

int main(void)
{
    struct sockaddr_un sa;
    char d[4096], p2[4200], p3[4200], p5[4200], p6[4200], gone[4200], r1file[4200];
    check(getcwd(d, sizeof d) != NULL, "getcwd");
    snprintf(p2, sizeof p2, "%s/r2.sock", d);
    snprintf(p3, sizeof p3, "%s/r3.sock", d);
    snprintf(r1file, sizeof r1file, "%s/r1.sock", d);
    snprintf(gone, sizeof gone, "%s/gone", d);
    snprintf(p5, sizeof p5, "%s/gone/r5.sock", d);
    snprintf(p6, sizeof p6, "%s/r6.sock", d);

    int r1 = socket(AF_UNIX, SOCK_STREAM, 0);
    check_sys(bind(r1, (struct sockaddr *)&sa, unix_addr(&sa, "r1.sock", 0)));
    check_sys(listen(r1, 2));
    check_sys(unlink("r1.sock"));
    check_sys(mkdir("sub", 0700));
    check_sys(chdir("sub"));

    int r2 = socket(AF_UNIX, SOCK_DGRAM, 0), tx = socket(AF_UNIX, SOCK_DGRAM, 0);
    socklen_t l2 = unix_addr(&sa, p2, 0);
    check_sys(bind(r2, (struct sockaddr *)&sa, l2));
    check(sendto(tx, "queued", 6, 0, (struct sockaddr *)&sa, l2) == 6, "send queued");
    close(tx);
    check_sys(unlink(p2));
    check_sys(mkfifo(p2, 0600));

    int r3 = socket(AF_UNIX, SOCK_STREAM, 0), r4 = socket(AF_UNIX, SOCK_STREAM, 0);
    socklen_t l3 = unix_addr(&sa, p3, 0);
    check_sys(bind(r3, (struct sockaddr *)&sa, l3));
    check_sys(listen(r3, 2));
    check_sys(unlink(p3));
    check_sys(bind(r4, (struct sockaddr *)&sa, l3));
    check_sys(listen(r4, 2));
    check_sys(fcntl(r3, F_SETFL, O_NONBLOCK | O_RDWR));
    check_sys(fcntl(r4, F_SETFL, O_NONBLOCK | O_RDWR));

    check_sys(mkdir(gone, 0700));
    int r5 = socket(AF_UNIX, SOCK_DGRAM, 0), c5 = socket(AF_UNIX, SOCK_DGRAM, 0);
    socklen_t l5 = unix_addr(&sa, p5, 0);
    check_sys(bind(r5, (struct sockaddr *)&sa, l5));
    check_sys(connect(c5, (struct sockaddr *)&sa, l5));
    check_sys(unlink(p5));
    check_sys(rmdir(gone));
    int r6 = socket(AF_UNIX, SOCK_STREAM, 0), c6 = socket(AF_UNIX, SOCK_STREAM, 0);
    socklen_t l6 = unix_addr(&sa, p6, 0);
    check_sys(bind(r6, (struct sockaddr *)&sa, l6));
    check_sys(listen(r6, 2));
    check_sys(connect(c6, (struct sockaddr *)&sa, l6));
    int a6 = accept(r6, NULL, NULL);
    check_sys(a6);
    check_sys(unlink(p6));

    test_ready();
    test_wait_go();

    check(!strcmp(own_name(r1), "r1.sock"), "R1 name '%s'", own_name(r1));
    check(!strcmp(own_name(r2), p2), "R2 name '%s'", own_name(r2));
    check(!strcmp(own_name(r3), p3), "R3 name '%s'", own_name(r3));
    check(!strcmp(own_name(r4), p3), "R4 name '%s'", own_name(r4));
    struct stat st;
    check(lstat(r1file, &st) < 0 && lstat("r1.sock", &st) < 0, "r1.sock came back as a file");
    check(lstat(p2, &st) == 0 && S_ISFIFO(st.st_mode), "%s is no longer the FIFO", p2);
    char buf[16];
    check(recv(r2, buf, sizeof buf, MSG_DONTWAIT) == 6 && !memcmp(buf, "queued", 6),
          "R2 lost its datagram");
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    check(connect(c, (struct sockaddr *)&sa, unix_addr(&sa, p3, 0)) == 0, "connect %s: %s", p3,
          strerror(errno));
    check(accept(r3, NULL, NULL) < 0 && errno == EAGAIN, "the client reached R3");
    check(accept(r4, NULL, NULL) >= 0, "R4 got no client: %s", strerror(errno));
    check(send(c5, "x", 1, 0) == 1, "C5 send: %s", strerror(errno));
    check(recv(r5, buf, sizeof buf, MSG_DONTWAIT) == 1, "R5 got nothing from C5");
    check(lstat(gone, &st) < 0, "%s came back", gone);
    check(!strcmp(own_name(r5), p5), "R5 name '%s'", own_name(r5));
    check(send(c6, "y", 1, 0) == 1 && recv(a6, buf, sizeof buf, 0) == 1, "C6 -> A6 broken");
    check(send(a6, "z", 1, 0) == 1 && recv(c6, buf, sizeof buf, 0) == 1, "A6 -> C6 broken");
    struct sockaddr_un pa;
    socklen_t pl = sizeof pa;
    check_sys(getpeername(c6, (struct sockaddr *)&pa, &pl));
    check(!strcmp(pa.sun_path, p6), "C6's peer is '%s', expected %s", pa.sun_path, p6);
    check(lstat(p6, &st) < 0, "%s came back", p6);
    pass();
}
