/* tree_descs - open file descriptions a parent and its child share from
 * before a fork stay one description each across a checkpoint of the tree.
 *
 * Inherited by the child: a regular file opened read-only, a deleted
 * file, a memfd (also mapped MAP_SHARED by both through it), an eventfd
 * an epoll instance watching the eventfd, and both ends of a pipe. Before READY the child
 * reads 10 bytes of the read-only file and writes 4 into the deleted
 * file, so the offsets moved in both. After the go file the child moves
 * each offset again, writes into the memfd mapping, adds 3 to the
 * eventfd and sets O_NONBLOCK on the read-only file and the pipe's read
 * end; the parent then sees every change: offsets 20, 8 and 6, the
 * mapping's bytes, O_NONBLOCK on both,
 * an epoll_wait that reports the eventfd, and the counter 5 + 3.
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "testlib.h"

int main(void)
{
    test_go_setup(); /* the children wait for the go file too */
    char path[256], del[256];
    snprintf(path, sizeof path, "tree_descs.ro.%d", (int)getpid());
    snprintf(del, sizeof del, "tree_descs.del.%d", (int)getpid());
    int w = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    check_sys(w);
    char text[64];
    for (int i = 0; i < 64; i++)
        text[i] = (char)('a' + i % 26);
    check(write(w, text, sizeof text) == (ssize_t)sizeof text, "write: %s", strerror(errno));
    close(w);
    int ro = open(path, O_RDONLY);
    check_sys(ro);
    int dl = open(del, O_CREAT | O_TRUNC | O_RDWR, 0600);
    check_sys(dl);
    check_sys(unlink(del));
    check(write(dl, "0123", 4) == 4, "write: %s", strerror(errno));
    int mf = memfd_create("tree_descs", 0);
    check_sys(mf);
    check_sys(ftruncate(mf, 4096));
    char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mf, 0);
    check(map != MAP_FAILED, "mmap: %s", strerror(errno));
    int ev = eventfd(5, 0);
    check_sys(ev);
    int ep = epoll_create1(0);
    check_sys(ep);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 0xfeed};
    check_sys(epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e));
    int c2p[2], pp[2];
    check_sys(pipe(c2p));
    check_sys(pipe(pp));
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        char b[16];
        check(read(ro, b, 10) == 10, "child: read: %s", strerror(errno));
        check(write(dl, "4567", 4) == 4, "child: write: %s", strerror(errno));
        check(write(c2p[1], "r", 1) == 1, "child: write: %s", strerror(errno));
        while (!test_go_reached())
            test_sleep_ms(10);
        check(read(ro, b, 10) == 10, "child: read: %s", strerror(errno));
        check(write(mf, "xy", 2) == 2, "child: write: %s", strerror(errno));
        check(lseek(mf, 6, SEEK_SET) == 6, "child: lseek: %s", strerror(errno));
        check(lseek(dl, 8, SEEK_SET) == 8, "child: lseek: %s", strerror(errno));
        memcpy(map + 100, "from the child", 15);
        uint64_t three = 3;
        check(write(ev, &three, 8) == 8, "child: eventfd write: %s", strerror(errno));
        check_sys(fcntl(ro, F_SETFL, fcntl(ro, F_GETFL) | O_NONBLOCK));
        check_sys(fcntl(pp[0], F_SETFL, fcntl(pp[0], F_GETFL) | O_NONBLOCK));
        check(write(c2p[1], "d", 1) == 1, "child: write: %s", strerror(errno));
        _exit(0);
    }
    char c;
    check(read(c2p[0], &c, 1) == 1 && c == 'r', "the child did not start");
    test_ready();
    while (!test_go_reached())
        test_sleep_ms(10);
    check(read(c2p[0], &c, 1) == 1 && c == 'd', "the child did not finish its part");
    check(lseek(ro, 0, SEEK_CUR) == 20, "read-only file at %lld, not 20: its offset is not "
          "shared", (long long)lseek(ro, 0, SEEK_CUR));
    check(fcntl(ro, F_GETFL) & O_NONBLOCK, "O_NONBLOCK the child set is not on the parent's "
          "read-only file: not one description");
    check(fcntl(pp[0], F_GETFL) & O_NONBLOCK, "O_NONBLOCK the child set is not on the parent's "
          "pipe read end: not one description");
    check(lseek(dl, 0, SEEK_CUR) == 8, "deleted file at %lld, not 8: not shared",
          (long long)lseek(dl, 0, SEEK_CUR));
    char b[8] = "";
    check(pread(dl, b, 8, 0) == 8 && !memcmp(b, "01234567", 8), "deleted file holds %.8s", b);
    check(lseek(mf, 0, SEEK_CUR) == 6, "memfd at %lld, not 6: not shared",
          (long long)lseek(mf, 0, SEEK_CUR));
    check(!memcmp(map, "xy", 2), "the child's write to the memfd is not in the parent's mapping");
    check(!memcmp(map + 100, "from the child", 15), "the child's store into the memfd mapping "
          "is not in the parent's");
    struct epoll_event got;
    check(epoll_wait(ep, &got, 1, 1000) == 1 && got.data.u64 == 0xfeed,
          "epoll does not report the eventfd");
    uint64_t v = 0;
    check(read(ev, &v, 8) == 8 && v == 8, "eventfd counter %llu, not 5 + 3",
          (unsigned long long)v);
    int st = 0;
    check(waitpid(k, &st, 0) == k, "waitpid(%d): %s", (int)k, strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
    unlink(path);
    pass();
}
