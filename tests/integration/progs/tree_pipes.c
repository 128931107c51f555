/* tree_pipes - a process tree: a parent and forked workers joined by
 * pipes, checkpointed and restored as one.
 *
 * The parent forks NWORKERS workers. Each worker reads jobs (a sequence
 * number) from its own pipe and writes a result (its index, the number,
 * a value computed from both, and whether getppid() still names the
 * parent) into one results pipe shared by all. The parent keeps up to
 * INFLIGHT jobs waiting in every worker's pipe, so at any moment bytes
 * are in flight both ways, and checks every result: right value, each
 * worker's numbers in order with none lost or repeated.
 * After the go file: kill(worker, 0) by the pid the parent knows works,
 * WORKMORE more results arrive, the job pipes are closed, every worker
 * ends (exit status 7) and waitpid() by the pid the parent knows returns
 * it with that status (each worker says "worker N done" in the log they
 * all share, which must keep all three lines). Then PASS. Workers never print PASS/FAIL: a worker
 * that sees something wrong says so in a result.
 */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "testlib.h"

#define NWORKERS 3
#define INFLIGHT 4
#define WORKMORE 30

struct result {
    uint32_t worker;
    uint32_t ok_ppid;
    uint64_t seq;
    uint64_t value;
};

static uint64_t value_of(uint32_t w, uint64_t seq)
{
    return seq * seq * 31 + w * 1000003ULL + 17;
}

static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return got ? -1 : 0;
        got += (size_t)r;
    }
    return 1;
}

static void write_full(int fd, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, (const char *)buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(3);
        done += (size_t)w;
    }
}

static void worker(uint32_t w, int jobs, int results, pid_t parent)
{
    uint64_t seq;
    int r;
    while ((r = read_full(jobs, &seq, sizeof seq)) > 0) {
        struct result res = {w, getppid() == parent, seq, value_of(w, seq)};
        test_sleep_ms(2); /* a worker takes a moment per job */
        write_full(results, &res, sizeof res);
    }
    /* into the log the whole tree shares (one offset for all) */
    test_msg("worker %u done", w);
    _exit(r == 0 ? 7 : 4);
}

int main(void)
{
    int jobs[NWORKERS], res[2];
    pid_t kids[NWORKERS];
    uint64_t sent[NWORKERS] = {0}, got[NWORKERS] = {0};
    pid_t me = getpid();
    check_sys(pipe(res));
    for (uint32_t w = 0; w < NWORKERS; w++) {
        int p[2];
        check_sys(pipe(p));
        pid_t k = fork();
        check_sys(k);
        if (k == 0) {
            close(p[1]);
            close(res[0]);
            for (uint32_t o = 0; o < w; o++)
                close(jobs[o]);
            worker(w, p[0], res[1], me);
        }
        close(p[0]);
        jobs[w] = p[1];
        kids[w] = k;
    }
    close(res[1]);
    test_ready();

    long after_go = -1;
    for (;;) {
        for (uint32_t w = 0; w < NWORKERS; w++)
            while (sent[w] - got[w] < INFLIGHT) {
                write_full(jobs[w], &sent[w], sizeof sent[w]);
                sent[w]++;
            }
        struct result r;
        int rr = read_full(res[0], &r, sizeof r);
        check(rr == 1, "reading the results pipe: %s", rr == 0 ? "end of file" : strerror(errno));
        check(r.worker < NWORKERS, "a result from worker %u", r.worker);
        check(r.seq == got[r.worker], "worker %u: result %llu, expected %llu (lost or repeated)",
              r.worker, (unsigned long long)r.seq, (unsigned long long)got[r.worker]);
        check(r.value == value_of(r.worker, r.seq), "worker %u: wrong value for %llu", r.worker,
              (unsigned long long)r.seq);
        check(r.ok_ppid, "worker %u: getppid() is not the parent's pid %d", r.worker, (int)me);
        got[r.worker]++;
        if (after_go < 0 && test_go_reached()) {
            after_go = 0;
            for (uint32_t w = 0; w < NWORKERS; w++)
                check(kill(kids[w], 0) == 0, "kill(%d, 0): %s", (int)kids[w], strerror(errno));
        }
        if (after_go >= 0 && ++after_go >= WORKMORE)
            break;
    }
    /* The end: no more jobs; take the remaining results, reap everyone. */
    for (uint32_t w = 0; w < NWORKERS; w++)
        close(jobs[w]);
    struct result r;
    while (read_full(res[0], &r, sizeof r) == 1)
        check(r.worker < NWORKERS && r.seq == got[r.worker]++, "a late result out of order");
    for (uint32_t w = 0; w < NWORKERS; w++) {
        int st = 0;
        pid_t p = waitpid(kids[w], &st, 0);
        check(p == kids[w], "waitpid(%d): %d (%s)", (int)kids[w], (int)p, strerror(errno));
        check(WIFEXITED(st) && WEXITSTATUS(st) == 7, "worker %u: status 0x%x", w, st);
    }
    test_msg("results: %llu %llu %llu", (unsigned long long)got[0], (unsigned long long)got[1],
             (unsigned long long)got[2]);
    pass();
}
