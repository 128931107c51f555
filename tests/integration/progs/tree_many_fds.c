/* tree_many_fds - a child with thousands of descriptors under a parent
 * whose soft NOFILE limit is 64.
 *
 * The parent lowers its soft NOFILE to 64 and forks; the child raises its
 * own to 4096 (or its hard limit) and holds a memfd at scattered numbers
 * up to about 4000 (3000 of them where the hard limit allows), each
 * holding its own number. After the go file each process checks its
 * limits, that every memfd it holds is at its number with its contents,
 * and that it holds nothing else (but sockets: the shim's); the child
 * exits with the verdict, which the parent waits for. A child forked by
 * its parent's restorer (CKSHIM_TREE_FORK=restorer) gets its table from a
 * preparer in batches, above limits its parent's restore must not have
 * set yet.
 */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testlib.h"

#define WANT 3000

static int nheld;
static int held[WANT];

static void hold(int n, int spread)
{
    for (int i = 0; i < n; i++) {
        int target = 10 + i + i / spread;
        char name[32];
        snprintf(name, sizeof name, "fd%d", target);
        int fd = memfd_create(name, 0);
        check_sys(fd);
        check(dprintf(fd, "%d", target) > 0, "write");
        if (fd != target) {
            check_sys(dup2(fd, target));
            close(fd);
        }
        held[nheld++] = target;
    }
}

/* 0, or 1 with what is wrong said */
static int verify(const char *who, rlim_t soft)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != soft) {
        test_msg("%s: soft NOFILE %llu, not %llu", who, (unsigned long long)rl.rlim_cur,
                 (unsigned long long)soft);
        return 1;
    }
    int top = nheld ? held[nheld - 1] : 0;
    for (int k = 0; k < nheld; k++) {
        char buf[32] = "";
        ssize_t r = pread(held[k], buf, sizeof buf - 1, 0);
        if (r <= 0 || atoi(buf) != held[k]) {
            test_msg("%s: fd %d holds '%s' (%zd)", who, held[k], buf, r);
            return 1;
        }
    }
    for (int fd = 3, k = 0; fd <= top + 64; fd++) {
        while (k < nheld && held[k] < fd)
            k++;
        if (k < nheld && held[k] == fd)
            continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && !S_ISSOCK(st.st_mode)) {
            char link[64], target[256];
            snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(link, target, sizeof target - 1);
            target[n > 0 ? n : 0] = 0;
            test_msg("%s: fd %d (%s) is not the program's", who, fd, target);
            return 1;
        }
    }
    return 0;
}

int main(void)
{
    test_go_setup(); /* (the child waits for the go file too) */
    struct rlimit rl;
    check_sys(getrlimit(RLIMIT_NOFILE, &rl));
    rlim_t child_soft = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
    int n = child_soft > 1100 ? (int)(child_soft - 1100) : 0;
    if (n > WANT)
        n = WANT;
    if (n < 100) {
        test_msg("hard NOFILE %llu: too low for this test", (unsigned long long)rl.rlim_max);
        test_ready();
        test_wait_go();
        pass();
        return 0;
    }
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        rl.rlim_cur = child_soft;
        check_sys(setrlimit(RLIMIT_NOFILE, &rl));
        hold(n, 3);
        test_wait_go();
        _exit(verify("child", child_soft) ? 3 : 0);
    }
    hold(20, 4);
    rl.rlim_cur = 64;
    check_sys(setrlimit(RLIMIT_NOFILE, &rl));
    test_msg("child %d holds %d descriptors", (int)k, n);
    test_ready();
    test_wait_go();
    check(verify("parent", 64) == 0, "the parent's descriptors or limit changed");
    int ws;
    check(waitpid(k, &ws, 0) == k, "waitpid %d: %s", (int)k, strerror(errno));
    check(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child ended with status 0x%x", ws);
    pass();
    return 0;
}
