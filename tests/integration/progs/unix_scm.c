/* unix_scm - descriptors in flight (SCM_RIGHTS) in unix socket queues come
 * back in flight.
 *
 * Before READY:
 *   D0/D1: datagram pair; waiting for D1: "file" carrying F (a file opened
 *          on a temporary file holding "0123456789", at offset 4, then
 *          closed by the program: only in flight), "keep" carrying G (a
 *          file the program still holds), "none" with no descriptor;
 *   S0/S1: stream pair; waiting for S1: "ab" carrying the read end of a
 *          pipe (the program closes it and keeps the write end W, with
 *          "pipe" written into the pipe), then "cd" carrying K1, one end
 *          of a stream pair (closed by the program, which keeps K0), with
 *          "queued" waiting in K1's own queue, then "ef" with nothing;
 *   E0/E1: datagram pair; "gone" carrying G waiting for E1, E0 closed.
 * After restore (a checkpoint without --kill came first), D1 gives the three
 * messages in order with their descriptors: F reads "456789" (its
 * offset), G's received copy shares G's offset; E1 gives "gone" with
 * G's description too; S1 gives its bytes and
 * the descriptors with them. No other descriptor of the program is
 * the file, pipe end or socket received (the copies ckshim keeps while
 * it captures them never show). The pipe's read end reads "pipe" and then
 * what W writes; K1 reads "queued" and talks to K0 both ways.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "testlib.h"

static void send_fd(int via, const char *data, int fd)
{
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {(void *)data, strlen(data)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(ctl, 0, sizeof ctl);
        mh.msg_control = ctl;
        mh.msg_controllen = sizeof ctl;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    check(sendmsg(via, &mh, 0) == (ssize_t)strlen(data), "sendmsg %s: %s", data, strerror(errno));
}

/* Receive up to len bytes into buf (NUL-terminated) and the descriptor
 * with them, or -1. */
static int recv_fd(int via, char *buf, size_t len, int *fd)
{
    char ctl[CMSG_SPACE(4 * sizeof(int))];
    struct iovec iov = {buf, len - 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = sizeof ctl};
    ssize_t n = recvmsg(via, &mh, MSG_DONTWAIT);
    check(n >= 0, "recvmsg: %s", strerror(errno));
    buf[n] = 0;
    *fd = -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            check(cm->cmsg_len == CMSG_LEN(sizeof(int)), "more than one descriptor");
            memcpy(fd, CMSG_DATA(cm), sizeof *fd);
        }
    return (int)n;
}

/* How many other descriptors of the process are the open file
 * description of fd (kcmp). */
static int others(int fd)
{
    DIR *d = opendir("/proc/self/fd");
    check(d != NULL, "opendir: %s", strerror(errno));
    pid_t pid = getpid();
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int o = atoi(e->d_name);
        if (e->d_name[0] != '.' && o != fd && o != dirfd(d))
            n += syscall(SYS_kcmp, pid, pid, KCMP_FILE, fd, o) == 0;
    }
    closedir(d);
    return n;
}

int main(void)
{
    int d[2], s[2], k[2], p[2], e[2];
    char path[] = "/tmp/unix_scm_XXXXXX";
    int f = mkstemp(path);
    check(f >= 0, "mkstemp: %s", strerror(errno));
    unlink(path);
    check(write(f, "0123456789", 10) == 10, "write file");
    check(lseek(f, 4, SEEK_SET) == 4, "lseek");
    int g = open("/proc/self/exe", O_RDONLY);
    check(g >= 0, "open exe");
    check(lseek(g, 100, SEEK_SET) == 100, "lseek exe");
    check_sys(socketpair(AF_UNIX, SOCK_DGRAM, 0, d));
    check_sys(socketpair(AF_UNIX, SOCK_STREAM, 0, s));
    check_sys(socketpair(AF_UNIX, SOCK_STREAM, 0, k));
    check_sys(pipe(p));
    send_fd(d[0], "file", f);
    close(f);
    send_fd(d[0], "keep", g);
    send_fd(d[0], "none", -1);
    check(write(p[1], "pipe", 4) == 4, "write pipe");
    send_fd(s[0], "ab", p[0]);
    close(p[0]);
    check(write(k[0], "queued", 6) == 6, "write k0");
    send_fd(s[0], "cd", k[1]);
    close(k[1]);
    send_fd(s[0], "ef", -1);
    check_sys(socketpair(AF_UNIX, SOCK_DGRAM, 0, e));
    send_fd(e[0], "gone", g);
    close(e[0]);

    test_ready();
    test_wait_go();

    char buf[64];
    int fd;
    check(recv_fd(d[1], buf, sizeof buf, &fd) == 4 && !strcmp(buf, "file") && fd >= 0,
          "datagram 1: '%s' fd %d", buf, fd);
    check(others(fd) == 0, "the file in flight is also in %d other descriptors", others(fd));
    check(read(fd, buf, sizeof buf) == 6 && !memcmp(buf, "456789", 6), "file in flight: not at "
          "its offset");
    close(fd);
    check(recv_fd(d[1], buf, sizeof buf, &fd) == 4 && !strcmp(buf, "keep") && fd >= 0,
          "datagram 2: '%s' fd %d", buf, fd);
    check(lseek(fd, 0, SEEK_CUR) == 100, "kept file's copy: offset %ld", (long)lseek(fd, 0, SEEK_CUR));
    check(lseek(g, 200, SEEK_SET) == 200 && lseek(fd, 0, SEEK_CUR) == 200,
          "kept file's copy does not share its offset");
    close(fd);
    check(recv_fd(d[1], buf, sizeof buf, &fd) == 4 && !strcmp(buf, "none") && fd < 0,
          "datagram 3: '%s' fd %d", buf, fd);

    check(recv_fd(e[1], buf, sizeof buf, &fd) == 4 && !strcmp(buf, "gone") && fd >= 0,
          "datagram from a closed sender: '%s' fd %d", buf, fd);
    check(lseek(fd, 0, SEEK_CUR) == 200, "its file does not share the kept file's offset");
    close(fd);

    /* the stream: the bytes come in order, each descriptor with them */
    char all[16] = "";
    int got[2] = {-1, -1}, ng = 0;
    while (strlen(all) < 6) {
        int n = recv_fd(s[1], buf, sizeof buf, &fd);
        check(n > 0, "stream: %zu bytes", strlen(all));
        strcat(all, buf);
        if (fd >= 0) {
            check(ng < 2, "stream: too many descriptors");
            got[ng++] = fd;
        }
    }
    check(!strcmp(all, "abcdef") && ng == 2, "stream: '%s' with %d descriptors", all, ng);
    check(others(got[0]) == 0 && others(got[1]) == 0, "the pipe end or socket in flight is also "
          "in other descriptors (%d, %d)", others(got[0]), others(got[1]));
    check(read(got[0], buf, 4) == 4 && !memcmp(buf, "pipe", 4), "pipe in flight: bytes lost");
    check(write(p[1], "more", 4) == 4 && read(got[0], buf, 4) == 4 && !memcmp(buf, "more", 4),
          "pipe in flight: does not carry new bytes");
    check(read(got[1], buf, 6) == 6 && !memcmp(buf, "queued", 6), "socket in flight: its queue");
    check(write(got[1], "hi", 2) == 2 && read(k[0], buf, 2) == 2 && !memcmp(buf, "hi", 2),
          "socket in flight: does not talk to its peer");
    check(write(k[0], "yo", 2) == 2 && read(got[1], buf, 2) == 2 && !memcmp(buf, "yo", 2),
          "socket in flight: does not hear its peer");
    pass();
    return 0;
}
