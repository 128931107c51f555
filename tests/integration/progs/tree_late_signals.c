/* tree_late_signals - signals children send their parent while the tree
 * is being taken.
 *
 * Three children each sigqueue() the parent SIGRTMIN+1 about every
 * millisecond, with value (child << 20) | sequence, and count what they
 * sent. In a tree checkpoint the parent parks before its children: what
 * a child sends between the parent's park and its own is in the child's
 * image as sent, so it must be in the parent's as pending (the shim's
 * manager keeps it at capture: quiesce_keep_late). The parent keeps the
 * signal blocked and takes it with sigtimedwait. After the go file each
 * child stops, writes its count to a pipe and exits; the parent takes
 * what is left and checks that every value of every child came exactly
 * once and in order.
 */
#include <sys/wait.h>

#include "testlib.h"

#define KIDS 3
#define MAXSEQ (1 << 18)

static unsigned next_seq[KIDS];

static void take(int sig, int wait_ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    struct timespec ts = {0, (long)wait_ms * 1000000L};
    siginfo_t si;
    while (sigtimedwait(&set, &si, &ts) == sig) {
        unsigned v = (unsigned)si.si_value.sival_int, k = v >> 20, seq = v & 0xfffff;
        if (si.si_code != SI_QUEUE || k >= KIDS)
            fail("a signal with code %d value 0x%x (expected SI_QUEUE from a child)", si.si_code,
                 v);
        if (seq != next_seq[k])
            fail("child %u: value %u came when %u was due (lost or repeated)", k, seq,
                 next_seq[k]);
        next_seq[k]++;
    }
}

int main(void)
{
    int sig = SIGRTMIN + 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    check(sigprocmask(SIG_BLOCK, &set, NULL) == 0, "sigprocmask");
    int p[2];
    check(pipe(p) == 0, "pipe");
    test_go_setup();
    pid_t kid[KIDS];
    pid_t parent = getpid();
    for (int k = 0; k < KIDS; k++) {
        kid[k] = fork();
        check(kid[k] >= 0, "fork");
        if (kid[k] == 0) {
            unsigned sent = 0;
            while (!test_go_reached() && sent < MAXSEQ) {
                union sigval v = {.sival_int = (int)(((unsigned)k << 20) | sent)};
                if (sigqueue(parent, sig, v) < 0) {
                    if (errno == EAGAIN) { /* the parent's queue is full: later */
                        usleep(1000);
                        continue;
                    }
                    _exit(10);
                }
                sent++;
                usleep(1000);
            }
            unsigned rec[2] = {(unsigned)k, sent};
            _exit(write(p[1], rec, sizeof rec) == sizeof rec ? 0 : 11);
        }
    }
    close(p[1]);
    take(sig, 0);
    test_ready();
    while (!test_go_reached())
        take(sig, 1);
    unsigned sent[KIDS] = {0};
    for (int k = 0; k < KIDS; k++) {
        unsigned rec[2];
        if (read(p[0], rec, sizeof rec) != sizeof rec || rec[0] >= KIDS)
            fail("no count from a child");
        sent[rec[0]] = rec[1];
    }
    for (int k = 0; k < KIDS; k++) {
        int st;
        if (waitpid(kid[k], &st, 0) != kid[k] || !WIFEXITED(st) || WEXITSTATUS(st))
            fail("child %d ended badly (status 0x%x)", k, st);
    }
    take(sig, 200);
    for (int k = 0; k < KIDS; k++)
        if (next_seq[k] != sent[k])
            fail("child %d sent %u signals, %u came", k, sent[k], next_seq[k]);
    pass();
}
