/* memfd_state - a memfd keeps its mode, seals, mappings and can be run.
 *
 *   a: mode 0642 (fchmod), seals F_SEAL_SHRINK|F_SEAL_GROW added after its
 *      contents were written: both the same after restore (and still
 *      enforced);
 *   b: made without MFD_ALLOW_SEALING: F_SEAL_SEAL only, no seal can be
 *      added after restore either;
 *   c: 6 bytes, mapped MAP_SHARED and MAP_PRIVATE (a page each, past its
 *      end): after restore a write through the shared mapping reaches the
 *      file and shows in the private mapping (whose page was never
 *      written), a write to the private mapping stays private;
 *   d: a "#!/bin/true" script held open read-write: execveat(fd, "",
 *      AT_EMPTY_PATH) in a child still works after restore (it failed with
 *      ETXTBSY when restore reopened the memfd for writing).
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testlib.h"

static int run_memfd(int fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {"true", NULL}, *envp[] = {NULL};
        syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
        _exit(100 + errno);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
    int a = memfd_create("ckshim-a", MFD_ALLOW_SEALING);
    check_sys(a);
    check(write(a, "sealed contents", 15) == 15, "write a");
    check_sys(fchmod(a, 0642));
    check_sys(fcntl(a, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));

    int b = memfd_create("ckshim-b", 0);
    check_sys(b);

    int c = memfd_create("ckshim-c", MFD_CLOEXEC);
    check_sys(c);
    check_sys(ftruncate(c, 6));
    char *sh = mmap(NULL, 6, PROT_READ | PROT_WRITE, MAP_SHARED, c, 0);
    check(sh != MAP_FAILED, "mmap shared");
    check(write(c, "write1", 6) == 6, "write c");
    char *pr = mmap(NULL, 6, PROT_READ | PROT_WRITE, MAP_PRIVATE, c, 0);
    check(pr != MAP_FAILED, "mmap private");

    int d = memfd_create("ckshim-d", 0);
    check_sys(d);
    check(write(d, "#!/bin/true\n", 12) == 12, "write d");
    check(run_memfd(d) == 0, "execveat of the memfd before the checkpoint: %d", run_memfd(d));

    test_ready();
    test_wait_go();

    struct stat st;
    check_sys(fstat(a, &st));
    check((st.st_mode & 07777) == 0642, "mode %o, not 642", st.st_mode & 07777);
    int seals = fcntl(a, F_GET_SEALS);
    check(seals == (F_SEAL_SHRINK | F_SEAL_GROW), "seals of a: %#x", seals);
    check(ftruncate(a, 100) < 0 && errno == EPERM, "F_SEAL_GROW not enforced");
    char buf[16] = "";
    check(pread(a, buf, 15, 0) == 15 && !memcmp(buf, "sealed contents", 15), "contents of a");
    seals = fcntl(b, F_GET_SEALS);
    check(seals == F_SEAL_SEAL, "seals of b: %#x", seals);
    check(fcntl(b, F_ADD_SEALS, F_SEAL_GROW) < 0 && errno == EPERM, "b can be sealed");

    check(!memcmp(sh, "write1", 6), "shared mapping: %.6s", sh);
    memcpy(sh, "write2", 6);
    check(pread(c, buf, 6, 0) == 6 && !memcmp(buf, "write2", 6),
          "a write to the shared mapping did not reach the memfd");
    check(!memcmp(pr, "write2", 6), "private mapping does not follow the memfd: %.6s", pr);
    memcpy(pr, "write3", 6);
    check(!memcmp(sh, "write2", 6), "a private write reached the shared mapping");
    check(fcntl(c, F_GETFD) == FD_CLOEXEC, "close-on-exec of c lost");

    int r = run_memfd(d);
    check(r == 0, "execveat of the memfd after restore: %s",
          r > 100 ? strerror(r - 100) : "child failed");
    pass();
    return 0;
}
