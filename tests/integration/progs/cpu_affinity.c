/* cpu_affinity - each thread's CPU affinity survives.
 *
 * Before READY (on a machine with at least two CPUs this process may
 * use): the main thread is pinned to the first of them, a second thread
 * to the last. The restored threads start with the restoring coord's
 * affinity (every CPU) unless the shim sets theirs again. After the go
 * file each checks its own mask. With one CPU there is nothing to pin:
 * the program says so and passes.
 */
#include <sched.h>

#include "testlib.h"

static int first_cpu, last_cpu;
static volatile int thread_state; /* 1 pinned, 2 checked ok, -1 failed */
static char thread_why[96];

static int pinned_to(int cpu)
{
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof s, &s) != 0)
        return 0;
    return CPU_COUNT(&s) == 1 && CPU_ISSET(cpu, &s);
}

static int pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return sched_setaffinity(0, sizeof s, &s);
}

static void *thread_main(void *arg)
{
    if (pin(last_cpu) != 0) {
        snprintf(thread_why, sizeof thread_why, "pin: %s", strerror(errno));
        thread_state = -1;
        return arg;
    }
    thread_state = 1;
    while (!test_go_reached())
        test_sleep_ms(20);
    if (pinned_to(last_cpu)) {
        thread_state = 2;
    } else {
        cpu_set_t s;
        CPU_ZERO(&s);
        sched_getaffinity(0, sizeof s, &s);
        snprintf(thread_why, sizeof thread_why, "the thread has %d CPUs, expected only CPU %d",
                 CPU_COUNT(&s), last_cpu);
        thread_state = -1;
    }
    return arg;
}

int main(void)
{
    cpu_set_t all;
    check_sys(sched_getaffinity(0, sizeof all, &all));
    first_cpu = last_cpu = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) {
            if (first_cpu < 0)
                first_cpu = c;
            last_cpu = c;
        }
    if (first_cpu == last_cpu) {
        test_msg("one CPU: nothing to pin");
        test_ready();
        test_wait_go();
        pass();
    }
    test_go_setup();
    pthread_t t;
    check(pthread_create(&t, NULL, thread_main, NULL) == 0, "pthread_create");
    while (!thread_state)
        test_sleep_ms(5);
    check(thread_state == 1, "thread: %s", thread_why);
    check_sys(pin(first_cpu));
    test_ready();
    test_wait_go();
    check(pinned_to(first_cpu), "the main thread is not pinned to CPU %d any more", first_cpu);
    pthread_join(t, NULL);
    check(thread_state == 2, "%s", thread_why);
    pass();
}
