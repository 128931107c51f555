/* mutexfix.c - mutexes and rwlocks whose owner is a tid, held across a restore.
 *
 * glibc records the owner of such a mutex as the owning thread's kernel
 * tid (__data.__owner) and compares it with the tid cached in the calling
 * thread's control block. A restore outside a pid namespace of the
 * program's own gives every thread a new tid, which the shim writes into
 * that cache (quiesce.c: quiesce_fixup_thread): a mutex a thread held at
 * the checkpoint still named its old tid, so unlock failed with EPERM and
 * a recursive relock (C++ std::recursive_mutex) waited for itself
 * forever. Every thread keeps the tids it had before its restores
 * (shim_tls.old_tid, the last SHIM_OLD_TIDS); the program's calls on such
 * a mutex whose owner is one of them make the owner its tid of now first.
 * A read-write lock's writer (__cur_writer) is mended the same way.
 * Until a thread was restored the check is one thread-local load.
 * Robust mutexes are mended at restore, from the thread's robust list
 * (quiesce.c: fix_robust_owners); priority-inheritance and -protected
 * ones keep the owner in the futex word, the kernel's, and are left alone.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

/* glibc's kind bits: the type (1 recursive, 2 error-checking), then
 * robust (16), priority inheritance (32) and protection (64) */
#define KIND_TYPE 3
#define KIND_FUTEX_OWNER 0x70

void shim_mutex_remember_tid(pid_t old, pid_t now)
{
    if (old <= 0 || old == now)
        return;
    shim_tls.old_tid[shim_tls.nold % SHIM_OLD_TIDS] = old;
    shim_tls.nold++;
}

/* An owner word that names one of the calling thread's old tids: its
 * tid of now. */
static void mend_owner(int *word)
{
    int owner = __atomic_load_n(word, __ATOMIC_RELAXED);
    uint32_t n = shim_tls.nold < SHIM_OLD_TIDS ? shim_tls.nold : SHIM_OLD_TIDS;
    for (uint32_t i = 0; owner > 0 && i < n; i++)
        if (shim_tls.old_tid[i] == owner) {
            int now = g_shim.tid_off > 0 ? *(volatile int *)((char *)pthread_self() +
                                                             g_shim.tid_off)
                                         : (int)syscall(SYS_gettid);
            __atomic_compare_exchange_n(word, &owner, now, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST);
            return;
        }
}

static void mend(pthread_mutex_t *m)
{
    if (m && (m->__data.__kind & KIND_TYPE) && !(m->__data.__kind & KIND_FUTEX_OWNER))
        mend_owner(&m->__data.__owner);
}

/* A read-write lock names its writer the same way (unlock tells a
 * writer's unlock from a reader's by it). */
static void mend_rw(pthread_rwlock_t *l)
{
    if (l)
        mend_owner(&l->__data.__cur_writer);
}

#define MENDED_BY(fix, ret, name, params, args)                                                    \
    static ret(*real_##name) params;                                                               \
    SHIM_API ret name params                                                                       \
    {                                                                                              \
        SHIM_RESOLVE(real_##name, #name);                                                               \
        if (__builtin_expect(shim_tls.nold != 0, 0))                                               \
            fix(m);                                                                                \
        return real_##name args;                                                                   \
    }
#define MENDED(...) MENDED_BY(mend, __VA_ARGS__)
#define MENDED_RW(...) MENDED_BY(mend_rw, __VA_ARGS__)

MENDED(int, pthread_mutex_lock, (pthread_mutex_t * m), (m))
MENDED(int, pthread_mutex_trylock, (pthread_mutex_t * m), (m))
MENDED(int, pthread_mutex_unlock, (pthread_mutex_t * m), (m))
MENDED(int, pthread_mutex_timedlock, (pthread_mutex_t * m, const struct timespec *t), (m, t))
MENDED(int, pthread_mutex_clocklock, (pthread_mutex_t * m, clockid_t c, const struct timespec *t),
       (m, c, t))
MENDED(int, pthread_cond_wait, (pthread_cond_t * c, pthread_mutex_t *m), (c, m))
MENDED(int, pthread_cond_timedwait,
       (pthread_cond_t * c, pthread_mutex_t *m, const struct timespec *t), (c, m, t))
MENDED(int, pthread_cond_clockwait,
       (pthread_cond_t * c, pthread_mutex_t *m, clockid_t k, const struct timespec *t),
       (c, m, k, t))
MENDED_RW(int, pthread_rwlock_unlock, (pthread_rwlock_t * m), (m))
MENDED_RW(int, pthread_rwlock_wrlock, (pthread_rwlock_t * m), (m))
MENDED_RW(int, pthread_rwlock_trywrlock, (pthread_rwlock_t * m), (m))
MENDED_RW(int, pthread_rwlock_rdlock, (pthread_rwlock_t * m), (m))
MENDED_RW(int, pthread_rwlock_tryrdlock, (pthread_rwlock_t * m), (m))
MENDED_RW(int, pthread_rwlock_timedwrlock, (pthread_rwlock_t * m, const struct timespec *t),
          (m, t))
MENDED_RW(int, pthread_rwlock_timedrdlock, (pthread_rwlock_t * m, const struct timespec *t),
          (m, t))
MENDED_RW(int, pthread_rwlock_clockwrlock,
          (pthread_rwlock_t * m, clockid_t c, const struct timespec *t), (m, c, t))
MENDED_RW(int, pthread_rwlock_clockrdlock,
          (pthread_rwlock_t * m, clockid_t c, const struct timespec *t), (m, c, t))
