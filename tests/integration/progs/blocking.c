/* blocking - blocking calls that a signal handler interrupts with EINTR
 * even under SA_RESTART are not cut short by a checkpoint or a restore.
 *
 * One thread per call, each blocked before READY:
 *   without timeout: pause, poll, ppoll and pselect (with every signal in
 *   their mask), select, epoll_wait, epoll_pwait (every signal masked),
 *   epoll_pwait2, sigwaitinfo, sigtimedwait (NULL timeout), sem_wait,
 *   sem_timedwait (absolute, far away), msgrcv, semop, io_getevents
 *   (through syscall(), as programs without libaio make it).
 *   Each must still be blocked when the go file appears (a flag main sets
 *   only just before it wakes them); main then wakes each one (a write on
 *   its pipe, SIGUSR1 for pause, SIGUSR2 for the signal waits, sem_post,
 *   msgsnd, semop, an AIO write) and each must return what that wake-up
 *   gives.
 *   with a timeout of T_MS: poll, ppoll, select, pselect, epoll_wait,
 *   sigtimedwait, sem_timedwait (absolute), semtimedop, io_getevents: each
 *   must time out
 *   (0 / EAGAIN / ETIMEDOUT), not return EINTR, and not before T_MS on
 *   CLOCK_MONOTONIC. Time spent between checkpoint and restore does not
 *   count, so the upper bound allows for it.
 */
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/syscall.h>

#include "testlib.h"

#define T_MS 2500

enum {
    C_PAUSE, C_POLL, C_PPOLL, C_SELECT, C_PSELECT, C_EPOLL, C_EPWAIT, C_EPWAIT2,
    C_SIGWAITINFO, C_SIGTIMEDWAIT, C_SEMWAIT, C_SEMTIMED, C_MSGRCV, C_SEMOP, C_GETEVENTS,
    /* with timeouts */
    T_POLL, T_PPOLL, T_SELECT, T_PSELECT, T_EPOLL, T_SIGTIMED, T_SEMTIMED, T_SEMTIMEDOP,
    T_GETEVENTS,
    C_END
};
static const char *names[] = {
    "pause", "poll", "ppoll", "select", "pselect", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "sigwaitinfo", "sigtimedwait", "sem_wait", "sem_timedwait", "msgrcv", "semop",
    "io_getevents", "poll(T)", "ppoll(T)", "select(T)", "pselect(T)", "epoll_wait(T)",
    "sigtimedwait(T)", "sem_timedwait(T)", "semtimedop(T)", "io_getevents(T)",
};

static volatile int waking;           /* main is about to wake the untimed ones */
static int pipes[C_END][2];
static int epfd[C_END];
static sem_t sem_a, sem_b, sem_t1;
static int msqid = -1, semid = -1;
static aio_context_t actx[C_END];
static pthread_t th[C_END];
static volatile int usr1_seen;
static int64_t started_ns;

static void on_usr1(int sig)
{
    (void)sig;
    usr1_seen = 1;
}

struct msgbuf1 {
    long mtype;
    char text[16];
};

static int ep_for(int c)
{
    int e = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
    check_sys(e);
    check_sys(epoll_ctl(e, EPOLL_CTL_ADD, pipes[c][0], &ev));
    return e;
}

static void *run(void *arg)
{
    int c = (int)(long)arg;
    int fd = pipes[c][0];
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    struct epoll_event ev;
    sigset_t all, usr2;
    fd_set rs;
    struct timespec ts = {T_MS / 1000, (T_MS % 1000) * 1000000L}, abs;
    struct timeval tv = {T_MS / 1000, (T_MS % 1000) * 1000};
    siginfo_t si;
    struct msgbuf1 m;
    struct sembuf sop = {.sem_num = 0, .sem_op = -1, .sem_flg = 0};
    struct io_event aev;
    long r = -2;

    sigfillset(&all);
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    clock_gettime(CLOCK_REALTIME, &abs);
    int64_t t0 = test_now_ns();
    errno = 0;
    switch (c) {
    case C_PAUSE: r = pause(); break;
    case C_POLL: r = poll(&pf, 1, -1); break;
    case C_PPOLL: r = ppoll(&pf, 1, NULL, &all); break;
    case C_SELECT: r = select(fd + 1, &rs, NULL, NULL, NULL); break;
    case C_PSELECT: r = pselect(fd + 1, &rs, NULL, NULL, NULL, &all); break;
    case C_EPOLL: r = epoll_wait(epfd[c], &ev, 1, -1); break;
    case C_EPWAIT: r = epoll_pwait(epfd[c], &ev, 1, -1, &all); break;
    case C_EPWAIT2: r = epoll_pwait2(epfd[c], &ev, 1, NULL, NULL); break;
    case C_SIGWAITINFO: r = sigwaitinfo(&usr2, &si); break;
    case C_SIGTIMEDWAIT: r = sigtimedwait(&usr2, &si, NULL); break;
    case C_SEMWAIT: r = sem_wait(&sem_a); break;
    case C_SEMTIMED: abs.tv_sec += 3600; r = sem_timedwait(&sem_b, &abs); break;
    case C_MSGRCV: r = msgrcv(msqid, &m, sizeof m.text, 1, 0); break;
    case C_SEMOP: r = semop(semid, &sop, 1); break;
    case C_GETEVENTS: r = syscall(SYS_io_getevents, actx[c], 1, 1, &aev, NULL); break;
    case T_POLL: r = poll(&pf, 1, T_MS); break;
    case T_PPOLL: r = ppoll(&pf, 1, &ts, &all); break;
    case T_SELECT: r = select(fd + 1, &rs, NULL, NULL, &tv); break;
    case T_PSELECT: r = pselect(fd + 1, &rs, NULL, NULL, &ts, &all); break;
    case T_EPOLL: r = epoll_wait(epfd[c], &ev, 1, T_MS); break;
    case T_SIGTIMED: r = sigtimedwait(&usr2, &si, &ts); break;
    case T_SEMTIMED:
        abs.tv_sec += T_MS / 1000;
        abs.tv_nsec += (T_MS % 1000) * 1000000L;
        if (abs.tv_nsec >= 1000000000L) {
            abs.tv_sec++;
            abs.tv_nsec -= 1000000000L;
        }
        r = sem_timedwait(&sem_t1, &abs);
        break;
    case T_SEMTIMEDOP: sop.sem_num = 1; r = semtimedop(semid, &sop, 1, &ts); break;
    case T_GETEVENTS: r = syscall(SYS_io_getevents, actx[c], 1, 1, &aev, &ts); break;
    }
    int e = errno;
    int64_t dt = test_now_ns() - t0;
    const char *n = names[c];

    if (c < T_POLL) {
        check(waking, "%s returned %ld (%s) before it was woken, after %lld ms", n, r,
              strerror(e), (long long)(dt / 1000000));
        if (c == C_PAUSE)
            check(r == -1 && e == EINTR && usr1_seen, "pause returned %ld (%s)", r, strerror(e));
        else if (c == C_SIGWAITINFO || c == C_SIGTIMEDWAIT)
            check(r == SIGUSR2, "%s returned %ld (%s)", n, r, strerror(e));
        else if (c == C_POLL || c == C_PPOLL)
            check(r == 1 && (pf.revents & POLLIN), "%s returned %ld (%s)", n, r, strerror(e));
        else if (c == C_SELECT || c == C_PSELECT)
            check(r == 1 && FD_ISSET(fd, &rs), "%s returned %ld (%s)", n, r, strerror(e));
        else if (c == C_EPOLL || c == C_EPWAIT || c == C_EPWAIT2)
            check(r == 1 && ev.data.u32 == 7, "%s returned %ld (%s)", n, r, strerror(e));
        else if (c == C_GETEVENTS)
            check(r == 1 && aev.data == 42, "io_getevents returned %ld (%s)", r, strerror(e));
        else if (c == C_MSGRCV)
            check(r == 6 && !memcmp(m.text, "hello", 6), "msgrcv returned %ld (%s)", r,
                  strerror(e));
        else
            check(r == 0, "%s returned %ld (%s)", n, r, strerror(e));
        return NULL;
    }
    if (c == T_SIGTIMED || c == T_SEMTIMEDOP)
        check(r == -1 && e == EAGAIN, "%s returned %ld (%s), wanted EAGAIN", n, r, strerror(e));
    else if (c == T_SEMTIMED)
        check(r == -1 && e == ETIMEDOUT, "%s returned %ld (%s), wanted ETIMEDOUT", n, r,
              strerror(e));
    else
        check(r == 0, "%s returned %ld (%s), wanted a timeout", n, r, strerror(e));
    check(dt >= (int64_t)T_MS * 1000000 - 20000000, "%s timed out after only %lld ms", n,
          (long long)(dt / 1000000));
    /* not late: at most the time the program was away (checkpoint to
     * restore, twice) plus a margin */
    check(dt <= (int64_t)T_MS * 1000000 + 8000000000LL, "%s timed out after %lld ms", n,
          (long long)(dt / 1000000));
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    sigset_t usr2;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;   /* pause returns EINTR all the same */
    check_sys(sigaction(SIGUSR1, &sa, NULL));
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    check(pthread_sigmask(SIG_BLOCK, &usr2, NULL) == 0, "pthread_sigmask");
    for (int c = 0; c < C_END; c++)
        check_sys(pipe(pipes[c]));
    for (int c = C_EPOLL; c <= C_EPWAIT2; c++)
        epfd[c] = ep_for(c);
    epfd[T_EPOLL] = ep_for(T_EPOLL);
    check_sys(sem_init(&sem_a, 0, 0));
    check_sys(sem_init(&sem_b, 0, 0));
    check_sys(sem_init(&sem_t1, 0, 0));
    check_sys(msqid = msgget(IPC_PRIVATE, IPC_CREAT | 0600));
    check_sys(semid = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600));
    check_sys(syscall(SYS_io_setup, 4, &actx[C_GETEVENTS]));
    check_sys(syscall(SYS_io_setup, 4, &actx[T_GETEVENTS]));

    started_ns = test_now_ns();
    for (int c = 0; c < C_END; c++)
        check(pthread_create(&th[c], NULL, run, (void *)(long)c) == 0, "pthread_create");
    test_sleep_ms(100);
    test_ready();
    test_wait_go();

    /* the timed calls finish on their own */
    for (int c = T_POLL; c < C_END; c++)
        check(pthread_join(th[c], NULL) == 0, "join %s", names[c]);
    test_sleep_ms(50);
    waking = 1;
    check(pthread_kill(th[C_PAUSE], SIGUSR1) == 0, "pthread_kill");
    for (int c = C_POLL; c <= C_EPWAIT2; c++)
        check(write(pipes[c][1], "x", 1) == 1, "write");
    check(pthread_kill(th[C_SIGWAITINFO], SIGUSR2) == 0, "pthread_kill");
    check(pthread_kill(th[C_SIGTIMEDWAIT], SIGUSR2) == 0, "pthread_kill");
    check_sys(sem_post(&sem_a));
    check_sys(sem_post(&sem_b));
    struct msgbuf1 m = {.mtype = 1, .text = "hello"};
    check_sys(msgsnd(msqid, &m, 6, 0));
    struct sembuf up = {.sem_num = 0, .sem_op = 1, .sem_flg = 0};
    check_sys(semop(semid, &up, 1));
    static char byte = 'x';
    struct iocb cb = {.aio_data = 42, .aio_lio_opcode = IOCB_CMD_PWRITE, .aio_buf = (uint64_t)&byte,
                      .aio_nbytes = 1}, *cbp = &cb;
    check_sys(cb.aio_fildes = open("/dev/null", O_WRONLY));
    check(syscall(SYS_io_submit, actx[C_GETEVENTS], 1, &cbp) == 1, "io_submit: %s",
          strerror(errno));
    for (int c = 0; c < T_POLL; c++)
        check(pthread_join(th[c], NULL) == 0, "join %s", names[c]);
    msgctl(msqid, IPC_RMID, NULL);
    semctl(semid, 0, IPC_RMID);
    pass();
}
