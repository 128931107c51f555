/* stack - the main thread's stack survives, deep, and can still grow.
 *
 * The main thread recurses 1000 frames deep; every frame keeps a patterned
 * local buffer, its depth and a pointer to its caller's buffer. The
 * checkpoint happens at the bottom, while all those frames are live. After
 * restore the bottom frame recurses 10,000 frames deeper (about 5 MB more
 * stack, far below what the stack had ever used, so the stack must still
 * grow on demand), then every frame checks its locals while unwinding.
 */
#include "testlib.h"

#define DEPTH1 1000
#define DEPTH2 10000

static volatile unsigned long sink;

/* The deeper recursion after restore: 10,000 frames with 400-byte locals. */
__attribute__((noinline)) static unsigned long deeper(int d)
{
    unsigned char buf[400];

    test_fill(buf, sizeof(buf), 1000000 + d);
    unsigned long r = d == 0 ? 1 : deeper(d - 1) + 1;
    long bad = test_check_fill(buf, sizeof(buf), 1000000 + d);
    check(bad < 0, "deeper frame %d lost its locals at %ld", d, bad);
    sink += buf[d % sizeof(buf)];
    return r;
}

__attribute__((noinline)) static unsigned long recurse(int depth, unsigned char *parent_buf)
{
    unsigned char buf[200];
    volatile int my_depth = depth;
    unsigned char *volatile parent = parent_buf;
    unsigned long r;

    test_fill(buf, sizeof(buf), depth);
    if (depth == DEPTH1) {
        test_ready();
        test_wait_go();
        r = deeper(DEPTH2);
        check(r == DEPTH2 + 1, "deeper recursion returned %lu", r);
    } else {
        r = recurse(depth + 1, buf) + 1;
    }
    check(my_depth == depth, "frame %d: depth local is %d", depth, my_depth);
    check(parent == parent_buf, "frame %d: pointer local changed", depth);
    long bad = test_check_fill(buf, sizeof(buf), depth);
    check(bad < 0, "frame %d lost its buffer at byte %ld", depth, bad);
    if (parent_buf)
        check(test_check_fill(parent_buf, 200, depth - 1) < 0,
              "frame %d: caller's buffer changed", depth);
    sink += buf[depth % sizeof(buf)];
    return r;
}

int main(void)
{
    unsigned long r = recurse(0, NULL);
    check(r == DEPTH1 + DEPTH2 + 1, "recursion returned %lu, expected %d", r,
          DEPTH1 + DEPTH2 + 1);
    pass();
}
