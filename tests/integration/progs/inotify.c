/* inotify - inotify watches survive with their paths, masks and numbers.
 *
 * Before READY, in its directory (cwd):
 *   I1 = inotify_init1(IN_NONBLOCK) watches
 *     1 "watched" (a relative path): IN_CREATE | IN_DELETE | IN_MOVED_TO;
 *     2 watched/f by its absolute path: IN_MODIFY | IN_CLOSE_WRITE, then
 *       IN_ATTRIB added with IN_MASK_ADD through the relative path;
 *     3 watched/r, removed again with inotify_rm_watch (a gap);
 *     4 the symbolic link "link" itself (IN_DONT_FOLLOW): IN_ATTRIB;
 *     5 "other": IN_CREATE | IN_ONESHOT;
 *     6 watched/r: IN_ATTRIB | IN_EXCL_UNLINK, then watched/r is renamed
 *       to watched/r2 (the path the program gave is gone; the watch
 *       follows the file);
 *     7 watched/held: IN_CLOSE_WRITE, then removed while the program
 *       keeps it open (H): the watch lives on, on a file with no path;
 *   the events all this made are read.
 *   I2 = inotify_init1(IN_CLOEXEC), blocking, watches "." for IN_CREATE
 *   (wd 1), and has an event queued (a file made in "."): such events are
 *   lost by a restore (docs/USER_GUIDE.md), so it is drained either way.
 *   P: an epoll instance watching I1 (data 1).
 * After restore: both are inotify instances with their flags; fdinfo lists
 * the same watches (wd, inode, device, mask); then each watch reports the
 * events of its file (a new file in watched, a write and a chmod of
 * watched/f, a touch of the link, a chmod of watched/r2, a file made in
 * "other" once, then IN_IGNORED), P reports I1 readable, I2 reports a
 * file made in "."; a new watch on I1 gets number 8, as it would have;
 * H, restored as a removed file, still has watch 7 (fdinfo, on its new
 * inode), which reports its close after a write.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "testlib.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The watches fdinfo shows for fd, "wd:.. ino:.. sdev:.. mask:.." each,
 * sorted, one per line, into out; the watch of inode skip (its
 * "wd:.. ino:.." prefix) into skipped, if given. */
static void watches(int fd, char *out, size_t len, unsigned long skip, char *skipped)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int f = open(path, O_RDONLY);
    check(f >= 0, "open %s: %s", path, strerror(errno));
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    check(n > 0, "read %s", path);
    buf[n] = 0;
    char *lines[64];
    int nl = 0;
    for (char *p = strstr(buf, "inotify wd:"); p && nl < 64; p = strstr(p, "inotify wd:")) {
        char *end = strstr(p, " ignored_mask");
        check(end != NULL, "fdinfo line without ignored_mask: %s", p);
        *end = 0;
        char ino[40];
        snprintf(ino, sizeof ino, " ino:%lx ", skip);
        if (skipped && strstr(p, ino)) {
            *strstr(p, " sdev:") = 0;
            strcpy(skipped, p + 8);
        } else {
            lines[nl++] = p + 8;
        }
        p = end + 1;
    }
    qsort(lines, nl, sizeof lines[0], cmp_str);
    out[0] = 0;
    for (int i = 0; i < nl; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s\n", lines[i]);
}

static char evbuf[4096] __attribute__((aligned(8)));
static size_t evlen, evoff;

/* The next event of fd (waiting up to 1 s for it). */
static const struct inotify_event *next_event(int fd, const char *what)
{
    if (evoff >= evlen) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        check(poll(&pf, 1, 1000) == 1, "%s: no event within 1 s", what);
        ssize_t n = read(fd, evbuf, sizeof evbuf);
        check(n > 0, "%s: read: %s", what, n < 0 ? strerror(errno) : "nothing");
        evlen = (size_t)n;
        evoff = 0;
    }
    const struct inotify_event *e = (const void *)(evbuf + evoff);
    evoff += sizeof *e + e->len;
    return e;
}

static void expect(int fd, int wd, uint32_t mask, const char *name, const char *what)
{
    const struct inotify_event *e = next_event(fd, what);
    check(e->wd == wd && (e->mask & ~IN_ISDIR) == mask &&
              !strcmp(e->len ? e->name : "", name ? name : ""),
          "%s: event wd %d mask %#x name '%s', expected wd %d mask %#x name '%s'", what, e->wd,
          e->mask, e->len ? e->name : "", wd, mask, name ? name : "");
}

static void drain(int fd)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    while (poll(&pf, 1, 0) == 1)
        check(read(fd, evbuf, sizeof evbuf) > 0, "drain: %s", strerror(errno));
    evlen = evoff = 0;
}

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    check(fd >= 0, "create %s: %s", path, strerror(errno));
    close(fd);
}

static int add(int fd, const char *path, uint32_t mask, int want)
{
    int wd = inotify_add_watch(fd, path, mask);
    check(wd >= 0, "inotify_add_watch(%s): %s", path, strerror(errno));
    check(want < 0 || wd == want, "inotify_add_watch(%s) gave wd %d, expected %d", path, wd,
          want);
    return wd;
}

int main(void)
{
    char cwd[2048], abs_f[2200], before1[2048], before2[1024], after[2048];
    check(getcwd(cwd, sizeof cwd) != NULL, "getcwd: %s", strerror(errno));
    check_sys(mkdir("watched", 0755));
    check_sys(mkdir("other", 0755));
    touch("watched/f");
    touch("watched/r");
    check_sys(symlink("watched/f", "link"));
    snprintf(abs_f, sizeof abs_f, "%s/watched/f", cwd);

    int i1, i2, p;
    check_sys(i1 = inotify_init1(IN_NONBLOCK));
    add(i1, "watched", IN_CREATE | IN_DELETE | IN_MOVED_TO, 1);
    add(i1, abs_f, IN_MODIFY | IN_CLOSE_WRITE, 2);
    int wr = add(i1, "watched/r", IN_ATTRIB, 3);
    check_sys(inotify_rm_watch(i1, wr));
    add(i1, "link", IN_ATTRIB | IN_DONT_FOLLOW, 4);
    add(i1, "watched/f", IN_ATTRIB | IN_MASK_ADD, 2);
    add(i1, "other", IN_CREATE | IN_ONESHOT, 5);
    add(i1, "watched/r", IN_ATTRIB | IN_EXCL_UNLINK, 6);
    check_sys(rename("watched/r", "watched/r2"));
    int held = open("watched/held", O_CREAT | O_RDWR, 0644);
    check_sys(held);
    add(i1, "watched/held", IN_CLOSE_WRITE, 7);
    check_sys(unlink("watched/held"));
    struct stat hs;
    check_sys(fstat(held, &hs));
    drain(i1);
    check_sys(i2 = inotify_init1(IN_CLOEXEC));
    add(i2, ".", IN_CREATE, 1);
    touch("queued");
    check_sys(p = epoll_create1(0));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
    check_sys(epoll_ctl(p, EPOLL_CTL_ADD, i1, &ev));
    char heldw[128] = "", want[128];
    watches(i1, before1, sizeof before1, hs.st_ino, heldw);
    check(!strncmp(heldw, "wd:7 ino:", 9), "no watch 7 on H (%s)", heldw);
    watches(i2, before2, sizeof before2, 0, NULL);
    test_msg("I1=%d I2=%d P=%d", i1, i2, p);

    test_ready();
    test_wait_go();

    test_check_fd(i1, "I1", "anon_inode:inotify", 1, 0);
    test_check_fd(i2, "I2", "anon_inode:inotify", 0, 1);
    check_sys(fstat(held, &hs));
    watches(i1, after, sizeof after, hs.st_ino, heldw);
    check(!strcmp(before1, after), "I1: watches\n%sbefore, now\n%s", before1, after);
    snprintf(want, sizeof want, "wd:7 ino:%lx", (unsigned long)hs.st_ino);
    check(!strcmp(heldw, want), "I1: watch of H is '%s', expected '%s'", heldw, want);
    watches(i2, after, sizeof after, 0, NULL);
    check(!strcmp(before2, after), "I2: watches\n%sbefore, now\n%s", before2, after);

    struct epoll_event out[2];
    check(epoll_wait(p, out, 2, 0) == 0, "P: I1 readable before anything happened");
    touch("watched/new");
    check(epoll_wait(p, out, 2, 1000) == 1 && out[0].data.u64 == 1, "P: I1 not reported");
    expect(i1, 1, IN_CREATE, "new", "watched: create");
    int fd = open("watched/f", O_WRONLY);
    check_sys(fd);
    check(write(fd, "x", 1) == 1, "write watched/f");
    close(fd);
    expect(i1, 2, IN_MODIFY, NULL, "watched/f: write");
    expect(i1, 2, IN_CLOSE_WRITE, NULL, "watched/f: close");
    check_sys(chmod("watched/f", 0600));
    expect(i1, 2, IN_ATTRIB, NULL, "watched/f: chmod");
    struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    check_sys(utimensat(AT_FDCWD, "link", ts, AT_SYMLINK_NOFOLLOW));
    expect(i1, 4, IN_ATTRIB, NULL, "link: touch");
    check_sys(chmod("watched/r2", 0600));
    expect(i1, 6, IN_ATTRIB, NULL, "watched/r2: chmod");
    touch("other/x");
    expect(i1, 5, IN_CREATE, "x", "other: create");
    expect(i1, 5, IN_IGNORED, NULL, "other: oneshot");
    add(i1, "other", IN_CREATE, 8);
    check(write(held, "x", 1) == 1, "write H: %s", strerror(errno));
    check_sys(close(held));
    expect(i1, 7, IN_CLOSE_WRITE, NULL, "H: close");
    drain(i1); /* H's IN_IGNORED, once the kernel lets it go */

    drain(i2);
    touch("after");
    expect(i2, 1, IN_CREATE, "after", "I2: create");
    pass();
}
