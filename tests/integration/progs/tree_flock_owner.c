/* tree_flock_owner - a child holding an flock and an OFD lock of its own:
 * after restore /proc/locks names the child (by the pid it knows) for both, as
 * zdtm's file_locks tests check.
 *
 * A lock is shown with the pid of the process that took it; at restore
 * that must be the restored process, not a helper of coord's that took it
 * on its behalf and ended (a child forked by its parent's restorer gets
 * its descriptors from such a helper: so one holding locks is not).
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testlib.h"

/* 1 if /proc/locks has a lock of kind on inode ino with pid */
static int shown(const char *kind, unsigned long ino, int pid)
{
    FILE *f = fopen("/proc/locks", "r");
    char line[256];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) {
        char k[16];
        int p;
        unsigned maj, min;
        unsigned long i;
        if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%lu", k, &p, &maj, &min, &i) == 5 &&
            !strcmp(k, kind) && i == ino && p == pid)
            found = 1;
    }
    if (f)
        fclose(f);
    return found;
}

int main(void)
{
    test_go_setup(); /* (the child waits for the go file too) */
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        int fd = open("flocked", O_RDWR | O_CREAT, 0600);
        int fd2 = open("ofdlocked", O_RDWR | O_CREAT, 0600);
        if (fd < 0 || fd2 < 0 || flock(fd, LOCK_EX) < 0)
            _exit(2);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
        if (fcntl(fd2, F_OFD_SETLK, &fl) < 0)
            _exit(2);
        struct stat st, st2;
        if (fstat(fd, &st) < 0 || fstat(fd2, &st2) < 0)
            _exit(2);
        test_wait_go();
        int me = getpid(); /* (the shim shows /proc/locks with the pids the program knows) */
        if (!shown("FLOCK", (unsigned long)st.st_ino, me)) {
            test_msg("child: /proc/locks does not name %d for its flock (inode %lu)", me,
                     (unsigned long)st.st_ino);
            _exit(3);
        }
        if (!shown("OFDLCK", (unsigned long)st2.st_ino, -1) &&
            !shown("OFDLCK", (unsigned long)st2.st_ino, me)) {
            test_msg("child: /proc/locks lost its OFD lock");
            _exit(4);
        }
        _exit(0);
    }
    test_ready();
    test_wait_go();
    int ws;
    check(waitpid(k, &ws, 0) == k, "waitpid: %s", strerror(errno));
    check(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child: status 0x%x", ws);
    pass();
    return 0;
}
