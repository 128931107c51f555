/* sysv_shm - SysV shared memory the program has attached stays SysV
 * shared memory.
 *
 *   a: a segment with a key, 10000 bytes (not a multiple of the page),
 *      attached twice: read-write and read-only. After restore it is the
 *      same segment (same id, the key still finds it, 2 attaches), a write
 *      through one attach shows in the other, the read-only one is still
 *      read-only (mprotect cannot make it writable), shmdt works for both;
 *   b: a private segment marked for removal (IPC_RMID) while attached:
 *      after restore its contents are there and shmdt works.
 */
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#include "testlib.h"

#define ASZ 10000
#define BSZ (3 * 4096)

int main(void)
{
    key_t key = 0x4b530000 | (getpid() & 0xffff);
    int a = shmget(key, ASZ, IPC_CREAT | IPC_EXCL | 0600);
    check_sys(a);
    unsigned char *rw = shmat(a, NULL, 0);
    unsigned char *ro = shmat(a, NULL, SHM_RDONLY);
    check(rw != (void *)-1 && ro != (void *)-1, "shmat a: %s", strerror(errno));
    test_fill(rw, ASZ, 7);

    int b = shmget(IPC_PRIVATE, BSZ, IPC_CREAT | 0600);
    check_sys(b);
    unsigned char *pb = shmat(b, NULL, 0);
    check(pb != (void *)-1, "shmat b");
    test_fill(pb, BSZ, 8);
    check_sys(shmctl(b, IPC_RMID, NULL));

    test_ready();
    test_wait_go();

    int ok = test_check_fill(rw, ASZ, 7) < 0 && test_check_fill(ro, ASZ, 7) < 0;
    struct shmid_ds ds;
    int st = shmctl(a, IPC_STAT, &ds);
    int found = shmget(key, 0, 0);
    if (!ok || st < 0 || ds.shm_nattch != 2 || found != a) {
        shmctl(a, IPC_RMID, NULL);
        fail("segment a: contents %s, IPC_STAT %s, %d attaches, key finds %d (id %d)",
             ok ? "ok" : "changed", st < 0 ? strerror(errno) : "ok", (int)ds.shm_nattch, found,
             a);
    }
    shmctl(a, IPC_RMID, NULL);          /* gone once both are detached */
    memcpy(rw + 100, "shared", 6);
    check(!memcmp(ro + 100, "shared", 6), "the two attaches are no longer one segment");
    check(mprotect(ro, 4096, PROT_READ | PROT_WRITE) < 0, "the read-only attach became writable");
    check(shmdt(rw) == 0 && shmdt(ro) == 0, "shmdt a: %s", strerror(errno));
    check(test_check_fill(pb, BSZ, 8) < 0, "segment b lost its contents");
    check(shmdt(pb) == 0, "shmdt b: %s", strerror(errno));
    pass();
    return 0;
}
