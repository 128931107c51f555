/* waits.c - blocking calls the checkpoint signal must not cut short.
 *
 * The checkpoint handler is installed with SA_RESTART, and the kernel
 * restarts most blocking calls after it (read and write on pipes, sockets
 * and terminals, wait*, flock and F_SETLKW, futex waits without a timeout,
 * sem_wait, pthread_cond_wait...); a restored thread re-enters such a call
 * with its original arguments. The calls below are the ones the kernel
 * never restarts after a handler (-ERESTARTNOHAND, -ERESTART_RESTARTBLOCK
 * or a plain -EINTR; signal(7) lists them), so without help a thread
 * parked in one of them saw EINTR at every checkpoint and after every
 * restore. Each wrapper notes the thread's checkpoint counter (bumped by
 * the handler) and, when the call failed with EINTR and the counter moved,
 * calls again:
 * - without a timeout, as it was (pause blocks again until a signal the
 *   program cares about);
 * - with a relative timeout, for what was left when the thread parked:
 *   the pause of the checkpoint, and the time between a checkpoint and its
 *   restore, do not count (as for sleep and nanosleep in wrappers.c);
 * - with an absolute one (sem_timedwait), with the same deadline.
 * io_getevents, made through syscall() (syscall.S sends it here), too.
 * A signal mask passed to ppoll, pselect or epoll_pwait loses the
 * checkpoint signal, as every mask does, or such a thread could never
 * park. A program signal delivered in the same call as a checkpoint ends
 * it with EINTR, as it would have: the checkpoint handler does not count
 * itself then (quiesce.c: a handler of the program's entered below its
 * frame, or one due as it returns).
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/msg.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rawsys.h"
#include "shim.h"

static int (*real_pause)(void);
static int (*real_poll)(struct pollfd *, nfds_t, int);
static int (*real_ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
static int (*real_select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
static int (*real_pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
                           const sigset_t *);
static int (*real_epoll_wait)(int, struct epoll_event *, int, int);
static int (*real_epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
static int (*real_epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *,
                                const sigset_t *);
static int (*real_sem_timedwait)(sem_t *, const struct timespec *);
static int (*real_sem_clockwait)(sem_t *, clockid_t, const struct timespec *);
static ssize_t (*real_msgrcv)(int, void *, size_t, long, int);
static int (*real_msgsnd)(int, const void *, size_t, int);
static int (*real_semop)(int, struct sembuf *, size_t);
static int (*real_semtimedop)(int, struct sembuf *, size_t, const struct timespec *);

/* The call failed because the checkpoint signal interrupted it. */
static int by_checkpoint(uint32_t seq, long r)
{
    return r < 0 && errno == EINTR && shim_tls.ckpt_seq != seq;
}

/* A relative timeout ending at *end (CLOCK_MONOTONIC) was interrupted by
 * a checkpoint: what was left when the thread parked, from now on. */
static int64_t left_after_park(int64_t *end)
{
    int64_t left = *end - shim_tls.park_mono_ns;
    if (left < 0)
        left = 0;
    *end = shim_now_ns(CLOCK_MONOTONIC) + left;
    return left;
}

/* Run call until it ends for another reason than a checkpoint; after a
 * checkpoint, run again: the statement to adjust its timeout first. */
#define RETRY(type, call, again)                                                                   \
    for (;;) {                                                                                     \
        uint32_t seq_ = shim_tls.ckpt_seq;                                                         \
        type r_ = call;                                                                            \
        if (!by_checkpoint(seq_, r_))                                                              \
            return r_;                                                                             \
        again;                                                                                     \
    }

/* Adjust a timespec timeout (t, own, end as ts_begin set them) or a
 * millisecond one (timeout, end) for the call after a checkpoint. */
#define TS_AGAIN                                                                                   \
    if (t)                                                                                         \
    own = ns_ts(left_after_park(&end))
#define MS_AGAIN                                                                                   \
    if (timeout > 0)                                                                               \
    timeout = ms_left(&end)

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static struct timespec ns_ts(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
    return ts;
}

/* Start of a relative timeout given as a timespec (NULL: none). */
static const struct timespec *ts_begin(const struct timespec *t, struct timespec *own, int64_t *end)
{
    if (!t)
        return NULL;
    *own = *t;
    *end = shim_now_ns(CLOCK_MONOTONIC) + ts_ns(t);
    return own;
}

/* Milliseconds (rounded up: never early) left of a poll-style timeout. */
static int ms_left(int64_t *end)
{
    return (int)((left_after_park(end) + 999999) / 1000000);
}

SHIM_API int pause(void)
{
    SHIM_RESOLVE(real_pause, "pause");
    RETRY(int, real_pause(), );
}

SHIM_API int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    SHIM_RESOLVE(real_poll, "poll");
    int64_t end = shim_now_ns(CLOCK_MONOTONIC) + (int64_t)timeout * 1000000;
    RETRY(int, real_poll(fds, n, timeout), MS_AGAIN);
}

SHIM_API int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        abort();
    return poll(fds, n, timeout);
}

SHIM_API int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask)
{
    SHIM_RESOLVE(real_ppoll, "ppoll");
    struct timespec own;
    sigset_t m;
    int64_t end = 0;
    t = ts_begin(t, &own, &end);
    mask = shim_strip_mask(mask, &m);
    RETRY(int, real_ppoll(fds, n, t, mask), TS_AGAIN);
}

SHIM_API int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *t,
                         const sigset_t *mask, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        abort();
    return ppoll(fds, n, t, mask);
}

static void select_left(struct timeval *tv, int64_t *end)
{
    int64_t left = left_after_park(end) + 999;
    tv->tv_sec = left / 1000000000LL;
    tv->tv_usec = (left % 1000000000LL) / 1000;
}

SHIM_API int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    SHIM_RESOLVE(real_select, "select");
    int64_t end = 0;
    if (tv)
        end = shim_now_ns(CLOCK_MONOTONIC) + (int64_t)tv->tv_sec * 1000000000LL +
              (int64_t)tv->tv_usec * 1000;
    /* the sets are unchanged on error; tv is what the retry waits */
    RETRY(int, real_select(nfds, r, w, e, tv), if (tv) select_left(tv, &end));
}

SHIM_API int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t,
                     const sigset_t *mask)
{
    SHIM_RESOLVE(real_pselect, "pselect");
    struct timespec own;
    sigset_t m;
    int64_t end = 0;
    t = ts_begin(t, &own, &end);
    mask = shim_strip_mask(mask, &m);
    RETRY(int, real_pselect(nfds, r, w, e, t, mask), TS_AGAIN);
}

SHIM_API int epoll_wait(int ep, struct epoll_event *ev, int max, int timeout)
{
    SHIM_RESOLVE(real_epoll_wait, "epoll_wait");
    int64_t end = shim_now_ns(CLOCK_MONOTONIC) + (int64_t)timeout * 1000000;
    RETRY(int, real_epoll_wait(ep, ev, max, timeout), MS_AGAIN);
}

SHIM_API int epoll_pwait(int ep, struct epoll_event *ev, int max, int timeout, const sigset_t *mask)
{
    SHIM_RESOLVE(real_epoll_pwait, "epoll_pwait");
    int64_t end = shim_now_ns(CLOCK_MONOTONIC) + (int64_t)timeout * 1000000;
    sigset_t m;
    mask = shim_strip_mask(mask, &m);
    RETRY(int, real_epoll_pwait(ep, ev, max, timeout, mask), MS_AGAIN);
}

SHIM_API int epoll_pwait2(int ep, struct epoll_event *ev, int max, const struct timespec *t,
                          const sigset_t *mask)
{
    SHIM_RESOLVE(real_epoll_pwait2, "epoll_pwait2");
    if (!real_epoll_pwait2) {
        errno = ENOSYS;
        return -1;
    }
    struct timespec own;
    sigset_t m;
    int64_t end = 0;
    t = ts_begin(t, &own, &end);
    mask = shim_strip_mask(mask, &m);
    RETRY(int, real_epoll_pwait2(ep, ev, max, t, mask), TS_AGAIN);
}

/* sigtimedwait with a relative timeout (wrappers.c strips the set). */
int waits_sigtimedwait(int (*real)(const sigset_t *, siginfo_t *, const struct timespec *),
                       const sigset_t *set, siginfo_t *info, const struct timespec *t)
{
    struct timespec own;
    int64_t end = 0;
    t = ts_begin(t, &own, &end);
    RETRY(int, real(set, info, t), TS_AGAIN);
}

/* POSIX semaphores: sem_wait is restarted by the kernel, the timed waits
 * (a futex wait with a timeout) are not. Their deadline is absolute. */
SHIM_API int sem_timedwait(sem_t *s, const struct timespec *abs)
{
    SHIM_RESOLVE(real_sem_timedwait, "sem_timedwait");
    RETRY(int, real_sem_timedwait(s, abs), );
}

SHIM_API int sem_clockwait(sem_t *s, clockid_t clk, const struct timespec *abs)
{
    SHIM_RESOLVE(real_sem_clockwait, "sem_clockwait");
    if (!real_sem_clockwait) {
        errno = ENOSYS;
        return -1;
    }
    RETRY(int, real_sem_clockwait(s, clk, abs), );
}

/* System V IPC waits. */
SHIM_API ssize_t msgrcv(int id, void *msg, size_t size, long type, int flags)
{
    SHIM_RESOLVE(real_msgrcv, "msgrcv");
    RETRY(ssize_t, real_msgrcv(id, msg, size, type, flags), );
}

SHIM_API int msgsnd(int id, const void *msg, size_t size, int flags)
{
    SHIM_RESOLVE(real_msgsnd, "msgsnd");
    RETRY(int, real_msgsnd(id, msg, size, flags), );
}

SHIM_API int semop(int id, struct sembuf *ops, size_t n)
{
    SHIM_RESOLVE(real_semop, "semop");
    RETRY(int, real_semop(id, ops, n), );
}

SHIM_API int semtimedop(int id, struct sembuf *ops, size_t n, const struct timespec *t)
{
    SHIM_RESOLVE(real_semtimedop, "semtimedop");
    struct timespec own;
    int64_t end = 0;
    t = ts_begin(t, &own, &end);
    RETRY(int, real_semtimedop(id, ops, n, t), TS_AGAIN);
}

/* syscall(SYS_io_getevents, ctx, min, nr, events, timeout) (syscall.S).
 * libaio's io_getevents() makes the raw call itself and is not seen. */
long shim_syscall_getevents(long nr, long ctx, long min, long max, long ev, long ts)
{
    struct timespec own;
    int64_t end = 0;
    const struct timespec *t = ts_begin((const struct timespec *)ts, &own, &end);
    for (;;) {
        uint32_t seq = shim_tls.ckpt_seq;
        long r = ck_sys6(nr, ctx, min, max, ev, (long)t, 0);
        if (r != -EINTR || shim_tls.ckpt_seq == seq)
            return shim_set_errno(r);
        TS_AGAIN;
    }
}
