/* tree_fork_held - a child forked while the shim's manager holds coord's
 * connection and the image descriptor coord sent it.
 *
 * A before-checkpoint hook (which runs on the manager thread, with both
 * descriptors held, the program's threads still running) has the main
 * thread fork a child and waits for it: the tree changed, so coord takes
 * it again, with the child. The child was forked without exec, so
 * close-on-exec did not keep coord's descriptors from it: the shim must.
 * At birth the child looks at its descriptors: beyond those the program
 * started with, only its own shim's listening control socket may be there
 * (no file, no connected socket). After the go file every child exits with what it found, and
 * the root checks one child was forked per life (the hook forks once
 * after each restore). Without the shim: no hook, no child.
 */
#include <dirent.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testlib.h"
#include "../../../preload/ckshim.h"

#define MAXKIDS 16

static atomic_int armed = 1, fork_now, forked;
static pid_t root;
static char started_with[1024]; /* the descriptors the program started with */

static int hook(int event, void *arg)
{
    (void)arg;
    if (getpid() != root)
        return 0;
    if (event == CKSHIM_EVENT_AFTER_RESTORE)
        atomic_store(&armed, 1);
    if (event != CKSHIM_EVENT_BEFORE_CHECKPOINT || !atomic_exchange(&armed, 0))
        return 0;
    int before = atomic_load(&forked);
    atomic_store(&fork_now, 1);
    for (int i = 0; i < 400 && atomic_load(&forked) == before; i++)
        test_sleep_ms(5);
    return 0;
}

/* In a child at birth: 0 if it holds nothing but what the program
 * started with and listening sockets, else 3 with the first stranger
 * named. At the start (mark 1): note what the program holds. */
static int strangers(int mark)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        test_msg("child: opendir /proc/self/fd: %s", strerror(errno));
        return 4;
    }
    int bad = 0;
    for (struct dirent *e; !bad && (e = readdir(d));) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == dirfd(d) ||
            (fd < (int)sizeof started_with && started_with[fd]))
            continue;
        if (mark) {
            if (fd < (int)sizeof started_with)
                started_with[fd] = 1;
            continue;
        }
        struct stat st;
        int listening = 0;
        socklen_t l = sizeof listening;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) == 0 && listening)
            continue; /* its shim's control socket */
        char link[64], target[512];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        test_msg("child %d: fd %d (%s) came from its parent's shim", (int)getpid(), fd, target);
        bad = 3;
    }
    closedir(d);
    return bad;
}

int main(void)
{
    root = getpid();
    check(strangers(1) == 0, "cannot list the descriptors");
    int hooked = ckshim_try_register_hook(hook, NULL) == 0;
    pid_t kids[MAXKIDS];
    int nkids = 0;
    test_ready();
    while (!test_go_reached()) {
        if (atomic_exchange(&fork_now, 0) && nkids < MAXKIDS) {
            pid_t k = fork();
            check_sys(k);
            if (k == 0) {
                int r = strangers(0);
                test_wait_go();
                _exit(r);
            }
            kids[nkids++] = k;
            atomic_fetch_add(&forked, 1);
        }
        test_sleep_ms(2);
    }
    /* a child per checkpointed life: one per restore (the hook forks on the
     * first try of each; the try that takes the child in does not) */
    unsigned (*generation)(void);
    *(void **)&generation = dlsym(RTLD_DEFAULT, "ckshim_generation");
    unsigned gen = hooked && generation ? generation() : 0;
    check(nkids >= (int)gen, "%d children forked by the hook in %u restores", nkids, gen);
    for (int i = 0; i < nkids; i++) {
        int ws;
        check(waitpid(kids[i], &ws, 0) == kids[i], "waitpid %d: %s", (int)kids[i],
              strerror(errno));
        check(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
              "child %d ended with status 0x%x (3: it held a descriptor of its parent's shim)",
              (int)kids[i], ws);
    }
    pass();
    return 0;
}
