/* tree_shm - MAP_SHARED anonymous memory inherited across fork stays
 * shared between parent and child across a checkpoint of the tree.
 *
 * The parent maps 3 pages MAP_SHARED|MAP_ANONYMOUS, fills the middle one
 * with a pattern, and forks a child. The child bumps a counter in the
 * first page every millisecond and copies into the last page whatever
 * the parent last put in the first page's "ping" field, until the parent
 * sets "stop". After the go file the parent checks that the pattern is
 * intact, that the counter still moves as it looks (the child's writes
 * reach it), that a ping it writes comes back (its writes reach the
 * child), then stops the child and waits for it (exit status 5).
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "testlib.h"

struct shared {
    volatile uint64_t counter;
    volatile uint64_t ping;
    volatile uint64_t stop;
};

int main(void)
{
    size_t pg = 4096;
    uint8_t *m = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    check(m != MAP_FAILED, "mmap: %s", strerror(errno));
    struct shared *s = (struct shared *)m;
    volatile uint64_t *pong = (volatile uint64_t *)(m + 2 * pg);
    test_fill(m + pg, pg, 42);
    pid_t k = fork();
    check_sys(k);
    if (k == 0) {
        while (!s->stop) {
            s->counter++;
            *pong = s->ping;
            test_sleep_ms(1);
        }
        _exit(5);
    }
    test_ready();
    while (!test_go_reached())
        test_sleep_ms(10);
    check(test_check_fill(m + pg, pg, 42) < 0, "the pattern in the shared page changed");
    uint64_t c0 = s->counter;
    test_sleep_ms(200);
    check(s->counter > c0, "the child's counter does not move here (%llu): not shared",
          (unsigned long long)c0);
    s->ping = 0x5eed1234;
    for (int i = 0; i < 200 && *pong != 0x5eed1234; i++)
        test_sleep_ms(5);
    check(*pong == 0x5eed1234, "the child does not see what the parent writes: not shared");
    s->stop = 1;
    int st = 0;
    check(waitpid(k, &st, 0) == k, "waitpid(%d): %s", (int)k, strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 5, "child status 0x%x", st);
    pass();
}
