/* aio - Linux AIO contexts (io_setup) keep their ids and their rings.
 *
 * Context A (io_setup(64)) has gone round its ring once (300 no-op writes
 * to /dev/null, each reaped) and holds 5 completed events not reaped yet
 * (their data fields 1000..1004); context B (io_setup(1)) was never used.
 * After restore, with the same context ids: A's ring header (nr, head,
 * tail) is unchanged; io_getevents on A returns exactly the 5 events, in
 * order; a new write through each context completes and is reaped; B's
 * io_getevents finds nothing (0, not EINVAL); io_destroy works on both.
 */
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sys/syscall.h>

#include "testlib.h"

struct ring {
    unsigned id, nr, head, tail, magic, compat, incompat, hlen;
};

static int devnull;
static char byte = 'x';

static void submit(aio_context_t ctx, uint64_t data)
{
    struct iocb cb, *cbp = &cb;
    memset(&cb, 0, sizeof cb);
    cb.aio_lio_opcode = IOCB_CMD_PWRITE;
    cb.aio_fildes = devnull;
    cb.aio_buf = (uint64_t)&byte;
    cb.aio_nbytes = 1;
    cb.aio_data = data;
    check(syscall(SYS_io_submit, ctx, 1, &cbp) == 1, "io_submit: %s", strerror(errno));
}

static long reap(aio_context_t ctx, struct io_event *ev, long max)
{
    struct timespec zero = { 0, 0 };
    return syscall(SYS_io_getevents, ctx, 0, max, ev, &zero);
}

int main(void)
{
    aio_context_t a = 0, b = 0;
    struct io_event ev[16];

    check_sys(devnull = open("/dev/null", O_WRONLY));
    check(syscall(SYS_io_setup, 64, &a) == 0, "io_setup: %s", strerror(errno));
    check(syscall(SYS_io_setup, 1, &b) == 0, "io_setup: %s", strerror(errno));
    for (int i = 0; i < 300; i++) {
        submit(a, i);
        check(reap(a, ev, 1) == 1 && ev[0].data == (uint64_t)i, "reap %d", i);
    }
    for (int i = 0; i < 5; i++)
        submit(a, 1000 + i);
    struct ring before = *(struct ring *)a;
    check(before.tail == (before.head + 5) % before.nr, "ring head %u tail %u nr %u",
          before.head, before.tail, before.nr);

    test_ready();
    test_wait_go();

    struct ring *r = (struct ring *)a;
    check(r->nr == before.nr && r->head == before.head && r->tail == before.tail,
          "ring nr/head/tail %u/%u/%u, were %u/%u/%u", r->nr, r->head, r->tail, before.nr,
          before.head, before.tail);
    long n = reap(a, ev, 16);
    check(n == 5, "io_getevents on A returned %ld (%s), wanted the 5 events", n,
          n < 0 ? strerror(errno) : "");
    for (int i = 0; i < 5; i++)
        check(ev[i].data == (uint64_t)(1000 + i) && ev[i].res == 1, "event %d: data %llu res %lld",
              i, (unsigned long long)ev[i].data, (long long)ev[i].res);
    n = reap(b, ev, 16);
    check(n == 0, "io_getevents on B returned %ld (%s)", n, n < 0 ? strerror(errno) : "");
    submit(a, 77);
    submit(b, 88);
    check(reap(a, ev, 16) == 1 && ev[0].data == 77, "new write on A not reaped");
    check(reap(b, ev, 16) == 1 && ev[0].data == 88, "new write on B not reaped");
    check(syscall(SYS_io_destroy, a) == 0, "io_destroy A: %s", strerror(errno));
    check(syscall(SYS_io_destroy, b) == 0, "io_destroy B: %s", strerror(errno));
    pass();
}
