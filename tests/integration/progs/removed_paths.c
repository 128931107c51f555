/* removed_paths - descriptors on symbolic links (O_PATH), on regular files
 * opened O_PATH, and on directories that were removed, some of them the
 * working directory.
 *
 * Before READY (in the working directory, then in "w"):
 *   L:  "l", a symbolic link to "target-x" (which does not exist), opened
 *       O_PATH | O_NOFOLLOW;
 *   L2: "l2", a symbolic link to "elsewhere", opened the same way, removed;
 *   P:  "p", a regular file opened O_PATH;
 *   S:  "d/sub" opened, then "d/sub" and "d" removed;
 *   W:  "w" made, opened, made the working directory, removed.
 * After restore: L and L2 are symbolic links pointing where they pointed
 * ("l2" not back in the directory); P is still O_PATH on the file "p"; S
 * is a removed directory; W is the working directory, the same directory
 * as the descriptor, still removed, and /proc/self/cwd names it as it did.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "testlib.h"

static void expect_link(int fd, const char *want, const char *what)
{
    struct stat st;
    char buf[256];
    check_sys(fstat(fd, &st));
    check(S_ISLNK(st.st_mode), "%s: not a symbolic link (mode %o)", what, (unsigned)st.st_mode);
    ssize_t n = readlinkat(fd, "", buf, sizeof buf - 1);
    check(n >= 0, "%s: readlinkat: %s", what, strerror(errno));
    buf[n] = 0;
    check(!strcmp(buf, want), "%s: points to '%s', expected '%s'", what, buf, want);
}

int main(void)
{
    int top = open(".", O_RDONLY | O_DIRECTORY);
    check_sys(top);
    check_sys(symlink("target-x", "l"));
    int l = open("l", O_PATH | O_NOFOLLOW);
    check_sys(l);
    check_sys(symlink("elsewhere", "l2"));
    int l2 = open("l2", O_PATH | O_NOFOLLOW);
    check_sys(l2);
    check_sys(unlink("l2"));

    int pf = open("p", O_RDWR | O_CREAT, 0600);
    check_sys(pf);
    close(pf);
    int p = open("p", O_PATH);
    check_sys(p);

    check_sys(mkdir("d", 0700));
    check_sys(mkdir("d/sub", 0750));
    int sub = open("d/sub", O_RDONLY | O_DIRECTORY);
    check_sys(sub);
    check_sys(rmdir("d/sub"));
    check_sys(rmdir("d"));

    check_sys(mkdir("w", 0700));
    int w = open("w", O_RDONLY | O_DIRECTORY);
    check_sys(w);
    char cwd0[4096];
    check(getcwd(cwd0, sizeof cwd0) != NULL, "getcwd: %s", strerror(errno));
    strcat(cwd0, "/w");
    check_sys(chdir("w"));
    check_sys(rmdir(cwd0));

    test_ready();
    test_wait_go();

    expect_link(l, "target-x", "L");
    expect_link(l2, "elsewhere", "L2");
    struct stat st, st2;
    check(fstatat(top, "l2", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT,
          "L2: l2 is back in the directory");

    check(fcntl(p, F_GETFL) & O_PATH, "P: no longer O_PATH");
    check_sys(fstat(p, &st));
    check_sys(fstatat(top, "p", &st2, 0));
    check(st.st_ino == st2.st_ino && st.st_dev == st2.st_dev, "P: not the file p");

    check_sys(fstat(sub, &st));
    check(S_ISDIR(st.st_mode) && st.st_nlink == 0, "S: not a removed directory (mode %o, %ld links)",
          (unsigned)st.st_mode, (long)st.st_nlink);
    check((st.st_mode & 07777) == 0750, "S: mode %o", (unsigned)st.st_mode & 07777);

    check_sys(fstat(w, &st));
    check_sys(stat(".", &st2));
    check(st.st_ino == st2.st_ino && st.st_dev == st2.st_dev,
          "W: the working directory is not the directory of the descriptor");
    check(st.st_nlink == 0, "W: not removed");
    char cwd[4096];
    ssize_t n = readlink("/proc/self/cwd", cwd, sizeof cwd - 1);
    check(n > 0, "readlink cwd: %s", strerror(errno));
    cwd[n] = 0;
    check(!strncmp(cwd, cwd0, strlen(cwd0)), "W: the working directory is %s, was %s", cwd, cwd0);
    pass();
}
