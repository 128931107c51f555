/* removed_cwd - a working directory that was removed (no descriptor holds
 * it) comes back removed, under its old name.
 *
 * Before READY: "w" made, made the working directory, removed.
 * After restore: the working directory is a directory with no links, the
 * name /proc/self/cwd gives starts with the one it had, and "w" is not
 * back in the directory above.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "testlib.h"

int main(void)
{
    int top = open(".", O_RDONLY | O_DIRECTORY);
    check_sys(top);
    char cwd0[4096];
    check(getcwd(cwd0, sizeof cwd0) != NULL, "getcwd: %s", strerror(errno));
    strcat(cwd0, "/w");
    check_sys(mkdir("w", 0700));
    check_sys(chdir("w"));
    check_sys(rmdir(cwd0));

    test_ready();
    test_wait_go();

    struct stat st;
    check_sys(stat(".", &st));
    check(S_ISDIR(st.st_mode) && st.st_nlink == 0, "the working directory has %ld links",
          (long)st.st_nlink);
    char cwd[4096];
    ssize_t n = readlink("/proc/self/cwd", cwd, sizeof cwd - 1);
    check(n > 0, "readlink cwd: %s", strerror(errno));
    cwd[n] = 0;
    check(!strncmp(cwd, cwd0, strlen(cwd0)), "the working directory is %s, was %s", cwd, cwd0);
    check(fstatat(top, "w", &st, 0) < 0 && errno == ENOENT, "w is back in the directory");
    pass();
}
