/* tree_shm_kinds - shared memory of every other kind a parent and its
 * child map from before a fork stays shared across a checkpoint of the
 * tree: a POSIX shm object (/dev/shm, kept), a named semaphore kept and
 * one removed at once (sem_open + sem_unlink, as Python's multiprocessing
 * does: a deleted /dev/shm file only the mappings hold), a memfd whose
 * descriptor both closed, and a SysV segment marked for removal.
 *
 * After the go file the child writes a word into each and posts the
 * semaphores; the parent waits on them (so they must be the same) and
 * finds every word, then removes the shm object and the kept semaphore.
 */
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>

#include "testlib.h"

int main(void)
{
    test_go_setup(); /* the children wait for the go file too */
    char name[64], sname[64], kname[64];
    snprintf(kname, sizeof kname, "/ckshim-tree-kept-%d", (int)getpid());
    snprintf(name, sizeof name, "/ckshim-tree-shm-%d", (int)getpid());
    snprintf(sname, sizeof sname, "/ckshim-tree-sem-%d", (int)getpid());
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    check_sys(fd);
    check_sys(ftruncate(fd, 4096));
    char *posix = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check(posix != MAP_FAILED, "mmap: %s", strerror(errno));
    close(fd);
    sem_t *sem = sem_open(sname, O_CREAT | O_EXCL, 0600, 0);
    check(sem != SEM_FAILED, "sem_open: %s", strerror(errno));
    check_sys(sem_unlink(sname));
    sem_t *kept = sem_open(kname, O_CREAT | O_EXCL, 0600, 0);
    check(kept != SEM_FAILED, "sem_open: %s", strerror(errno));
    int mf = memfd_create("tree_shm_kinds", 0);
    check_sys(mf);
    check_sys(ftruncate(mf, 8192));
    char *mem = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mf, 0);
    check(mem != MAP_FAILED, "mmap: %s", strerror(errno));
    close(mf);
    int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    check_sys(id);
    char *sysv = shmat(id, NULL, 0);
    check(sysv != (void *)-1, "shmat: %s", strerror(errno));
    check_sys(shmctl(id, IPC_RMID, NULL));
    strcpy(posix + 8, "posix before");
    strcpy(mem + 4096, "memfd before");
    strcpy(sysv + 16, "sysv before");
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        while (!test_go_reached())
            test_sleep_ms(10);
        check(!strcmp(posix + 8, "posix before") && !strcmp(mem + 4096, "memfd before") &&
              !strcmp(sysv + 16, "sysv before"), "child: contents changed");
        strcpy(posix + 100, "posix from the child");
        strcpy(mem + 4196, "memfd from the child");
        strcpy(sysv + 200, "sysv from the child");
        check_sys(sem_post(sem));
        check_sys(sem_post(kept));
        _exit(0);
    }
    test_ready();
    while (!test_go_reached())
        test_sleep_ms(10);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    check(sem_timedwait(sem, &ts) == 0, "the child's sem_post did not reach the parent: %s",
          strerror(errno));
    check(sem_timedwait(kept, &ts) == 0, "the child's sem_post of the named semaphore did not "
          "reach the parent: %s", strerror(errno));
    check(!strcmp(posix + 100, "posix from the child"), "the POSIX shm object is not shared");
    check(!strcmp(mem + 4196, "memfd from the child"), "the memfd mapping is not shared");
    check(!strcmp(sysv + 200, "sysv from the child"), "the SysV segment is not shared");
    int st = 0;
    check(waitpid(k, &st, 0) == k, "waitpid(%d): %s", (int)k, strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
    shm_unlink(name);
    sem_unlink(kname);
    pass();
}
