/* procself - /proc paths built from getpid()/gettid() keep working.
 *
 * The program holds a file open and a second thread named "procself-thr".
 * After restore it names its process and that thread with the ids it
 * knows (getpid(), the thread's gettid()) and, through open, fopen,
 * opendir, stat, lstat, access, readlink and realpath:
 *   /proc/<pid>/fd/<fd> links to its file (same inode as fstat says);
 *   /proc/<pid>/fdinfo/<fd> opens; /proc/<pid>/fd lists the fd;
 *   /proc/<pid>/task/<tid>/comm and /proc/<tid>/comm and
 *   /proc/self/task/<tid>/comm hold the thread's name;
 *   /proc/self/exe and /proc/<pid>/exe link to the program, as before the
 *   checkpoint (readlink, realpath), and stat as the program does.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "testlib.h"

static volatile int go;
static volatile pid_t thr_tid;

static void *other(void *arg)
{
    prctl(PR_SET_NAME, "procself-thr", 0, 0, 0);
    thr_tid = gettid();
    while (!go)
        test_sleep_ms(20);
    return NULL;
}

static void check_comm(const char *path)
{
    char buf[64] = "";
    FILE *f = fopen(path, "r");
    check(f, "fopen %s: %s", path, strerror(errno));
    check(fgets(buf, sizeof buf, f), "read %s", path);
    fclose(f);
    check(!strcmp(buf, "procself-thr\n"), "%s holds '%s'", path, buf);
}

static void check_exe(const char *path, const char *exe)
{
    char buf[PATH_MAX], *rp;
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    check(n > 0, "readlink %s: %s", path, strerror(errno));
    buf[n] = 0;
    check(!strcmp(buf, exe), "%s links to %s, was %s", path, buf, exe);
    rp = realpath(path, NULL);
    check(rp && !strcmp(rp, exe), "realpath %s: %s", path, rp ? rp : strerror(errno));
    free(rp);
}

int main(void)
{
    pthread_t t;
    char exe[PATH_MAX], p[128], link[PATH_MAX];
    struct stat st, st2, sx, sx2;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

    check(n > 0, "readlink /proc/self/exe");
    exe[n] = 0;
    check_sys(stat(exe, &sx));
    int fd = open("procself.data", O_RDWR | O_CREAT, 0600);
    check_sys(fd);
    check(pthread_create(&t, NULL, other, NULL) == 0, "pthread_create");
    while (!thr_tid)
        test_sleep_ms(5);

    test_ready();
    test_wait_go();

    pid_t pid = getpid(), tid = thr_tid;
    check_sys(fstat(fd, &st));
    snprintf(p, sizeof p, "/proc/%d/fd/%d", pid, fd);
    check_sys(stat(p, &st2));
    check(st.st_ino == st2.st_ino && st.st_dev == st2.st_dev, "%s is another file", p);
    check_sys(lstat(p, &st2));
    n = readlink(p, link, sizeof link - 1);
    check(n > 0, "readlink %s: %s", p, strerror(errno));
    link[n] = 0;
    check(strstr(link, "/procself.data") != NULL, "%s links to %s", p, link);
    snprintf(p, sizeof p, "/proc/%d/fdinfo/%d", pid, fd);
    check_sys(access(p, R_OK));
    int fi = open(p, O_RDONLY);
    check(fi >= 0, "open %s: %s", p, strerror(errno));
    close(fi);
    snprintf(p, sizeof p, "/proc/%d/fd", pid);
    DIR *d = opendir(p);
    check(d, "opendir %s: %s", p, strerror(errno));
    int seen = 0;
    for (struct dirent *e; (e = readdir(d));)
        seen |= atoi(e->d_name) == fd;
    closedir(d);
    check(seen, "fd %d not listed in %s", fd, p);

    snprintf(p, sizeof p, "/proc/%d/task/%d/comm", pid, tid);
    check_comm(p);
    snprintf(p, sizeof p, "/proc/%d/comm", tid);
    check_comm(p);
    snprintf(p, sizeof p, "/proc/self/task/%d/comm", tid);
    check_comm(p);

    check_exe("/proc/self/exe", exe);
    snprintf(p, sizeof p, "/proc/%d/exe", pid);
    check_exe(p, exe);
    check_sys(stat("/proc/self/exe", &sx2));
    check(sx.st_ino == sx2.st_ino, "/proc/self/exe stats as another file");

    go = 1;
    check(pthread_join(t, NULL) == 0, "join");
    unlink("procself.data");
    pass();
}
